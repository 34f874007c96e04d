"""One registry of rules: metadata for `rules`/`explain`/SARIF and the check functions themselves."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from auditor.core.findings import Finding, Severity, Span

CATEGORIES = {
    "E1": "load",
    "E2": "api",
    "E3": "data",
    "E4": "reference",
    "R": "reload",
    "S": "security",
    "D": "delivery",
    "C": "change",
    "X": "suppression",
}


@dataclass(frozen=True, slots=True)
class RuleMeta:
    code: str
    name: str
    severity: Severity
    category: str
    summary: str
    doc: str
    bad: str
    good: str
    fix: str
    suppressible: bool = True
    change: bool = False  # only runs when auditing a change between two states

    def finding(
        self, path: str, span: Span, message: str, *, key: str = "", fix: str | None = None
    ) -> Finding:
        """Build a finding of this rule; `key` is the semantic identity used for the fingerprint."""
        return Finding(
            code=self.code,
            name=self.name,
            severity=self.severity,
            message=message,
            path=path,
            span=span,
            key=key,
            fix=self.fix if fix is None else fix,
        )


CheckFn = Callable[[Any], Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    meta: RuleMeta
    check: (
        CheckFn | None
    )  # None: findings of this code are produced by a pipeline stage, not a rule pass


class DuplicateRuleError(RuntimeError):
    pass


_RULES: dict[str, Rule] = {}
_NAMES: dict[str, str] = {}


def category_of(code: str) -> str:
    return CATEGORIES.get(code[:2]) or CATEGORIES.get(code[:1], "other")


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


def make_meta(code: str, name: str, severity: str, summary: str, **kw: Any) -> RuleMeta:
    return RuleMeta(
        code=code,
        name=name,
        severity=Severity.parse(severity),
        category=category_of(code),
        summary=summary,
        doc=kw["doc"].strip(),
        bad=kw["bad"].strip("\n"),
        good=kw["good"].strip("\n"),
        fix=kw["fix"].strip(),
        suppressible=kw["suppressible"],
        change=kw["change"],
    )


_loaded: set[str] = set()

# Which family module defines the codes with a prefix (see auditor.rules.FAMILIES).
_FAMILY_OF_PREFIX = {
    "E1": "load",
    "E2": "api_use",
    "E3": "data",
    "E4": "references",
    "R": "reload",
    "S": "security",
    "D": "delivery",
    "C": "change",
    "X": "suppression",
}


def _ensure_loaded(code: str | None = None) -> None:
    """Import the family that defines `code`, or every family; the hook needs only a few."""
    from importlib import import_module

    from auditor.rules import FAMILIES

    families = FAMILIES
    if code is not None:
        family = _FAMILY_OF_PREFIX.get(code[:2]) or _FAMILY_OF_PREFIX.get(code[:1])
        families = (family,) if family else FAMILIES
    for family in families:
        if family not in _loaded:
            _loaded.add(family)
            import_module(f"auditor.rules.{family}")


def all_rules() -> list[Rule]:
    """Every registered rule, sorted by code."""
    _ensure_loaded()
    return [_RULES[c] for c in sorted(_RULES)]


def get(code: str) -> Rule | None:
    code = code.upper()
    if code not in _RULES:
        _ensure_loaded(code)
    return _RULES.get(code)


def iter_checks(*, change: bool = False) -> Iterator[Rule]:
    """The rules with a check of their own: the change rules, or every other one."""
    _ensure_loaded("C101" if change else None)
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
