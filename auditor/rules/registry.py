"""One registry of rules: metadata for `rules`/`explain`/SARIF and the check functions themselves."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from auditor.core.codes import RuleMeta, make_meta, prefix_of
from auditor.core.findings import Finding
from auditor.core.record import dataclass

CheckFn = Callable[[Any], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A registered rule: its metadata and its check, if it has one."""

    meta: RuleMeta
    check: (
        CheckFn | None
    )  # None: findings of this code are produced by a pipeline stage, not a rule pass


class DuplicateRuleError(RuntimeError):
    pass


_RULES: dict[str, Rule] = {}
_NAMES: dict[str, str] = {}


def register(meta: RuleMeta, check: CheckFn | None) -> Rule:
    if meta.code in _RULES:
        raise DuplicateRuleError(f"rule code {meta.code} is registered twice")
    if meta.name in _NAMES:
        raise DuplicateRuleError(
            f"rule name {meta.name} is used by {_NAMES[meta.name]} and {meta.code}"
        )
    rule_obj = Rule(meta, check)
    _RULES[meta.code] = rule_obj
    _NAMES[meta.name] = meta.code
    return rule_obj


def register_all(module: Any) -> None:
    """Register every code metadata (RuleMeta) a module defines, as produced by a pipeline stage."""
    for value in vars(module).values():
        if isinstance(value, RuleMeta):
            register(value, None)


def declare(
    code: str,
    name: str,
    severity: str,
    summary: str,
    *,
    doc: str,
    bad: str,
    good: str,
    fix: str,
    suppressible: bool = True,
    change: bool = False,
    check: CheckFn | None = None,
) -> RuleMeta:
    """Register a rule. Without `check`, its findings come from a pipeline stage (parsing, loading,
    filtering) that builds them with the returned metadata."""
    meta = make_meta(
        code, name, severity, summary,
        doc=doc, bad=bad, good=good, fix=fix, suppressible=suppressible, change=change,
    )  # fmt: skip
    register(meta, check)
    return meta


def rule(
    code: str, name: str, severity: str, summary: str, **kw: Any
) -> Callable[[CheckFn], RuleMeta]:
    """Decorator: register `fn(ctx) -> Iterable[Finding]` as the check for `code` (keywords as for
    `declare`); returns the rule's metadata."""

    def wrap(fn: CheckFn) -> RuleMeta:
        return declare(code, name, severity, summary, check=fn, **kw)

    return wrap


_loaded: set[str] = set()


def _ensure_loaded(code: str | None = None) -> None:
    """Import the family that defines `code`, or every family; the hook needs only a few."""
    from auditor.rules import FAMILIES

    families = FAMILIES
    if code is not None:
        found = prefix_of(code)
        families = (found.family,) if found else FAMILIES
    _ensure_families(families)


def all_rules() -> list[Rule]:
    """Every registered rule, sorted by code."""
    _ensure_loaded()
    return [_RULES[c] for c in sorted(_RULES)]


def get(code: str) -> Rule | None:
    code = code.upper()
    if code not in _RULES:
        _ensure_loaded(code)
    if code not in _RULES:  # a code outside its prefix's family (E103 is a data code)
        _ensure_loaded()
    return _RULES.get(code)


def _ensure_families(families: tuple[str, ...]) -> None:
    from importlib import import_module

    for family in families:
        if family not in _loaded:
            _loaded.add(family)
            import_module(f"auditor.rules.{family}")


def iter_checks(*, change: bool = False) -> Iterator[Rule]:
    """The rules with a check of their own: the change rules, or every other one (only the families
    that have such rules are imported)."""
    from auditor.rules import CHANGE_CHECK_FAMILIES, SNAPSHOT_CHECK_FAMILIES

    _ensure_families(CHANGE_CHECK_FAMILIES if change else SNAPSHOT_CHECK_FAMILIES)
    for code in sorted(_RULES):
        r = _RULES[code]
        if r.check is not None and r.meta.change == change:
            yield r


def ruleset_hash() -> str:
    """Identifies the rule set (codes, names, severities, tool version) that produced a verdict."""
    import hashlib

    from auditor import __version__

    h = hashlib.sha256(__version__.encode())
    for r in all_rules():
        h.update(
            f"\0{r.meta.code}:{r.meta.name}:{r.meta.severity.value}:{r.meta.suppressible}".encode()
        )
    return h.hexdigest()[:16]
