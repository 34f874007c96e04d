"""Rule codes named by configuration and suppressions must exist: a typo must not switch rules off.

`select = ["S1O1"]` would otherwise select nothing and report "no problems". Every code or prefix in
select, ignore, severity, per-path ignores and waivers (and on the command line) must name a rule or
be the beginning of one; otherwise it is a configuration error with the closest real code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from auditor.core.errors import ConfigError


def known_codes() -> list[str]:
    from auditor.rules import registry

    return [r.meta.code for r in registry.all_rules()]


def code_problem(code: str, codes: list[str], *, prefix: bool = True) -> str | None:
    """Why `code` names no rule (with the closest real code), or None when it does."""
    text = code.strip().upper()
    if text in codes or (prefix and text and any(c.startswith(text) for c in codes)):
        return None
    candidates = (
        codes + sorted({c[:1] for c in codes} | {c[:2] for c in codes}) if prefix else codes
    )
    lookalike = text[:1] + text[1:].replace("O", "0").replace("I", "1").replace("L", "1")
    if lookalike in candidates:
        close = [lookalike]
    else:
        import difflib

        close = difflib.get_close_matches(lookalike, candidates, n=1, cutoff=0.5)
    what = "rule code or prefix" if prefix else "rule code"
    hint = f" (did you mean '{close[0]}'?)" if close else " (see `kumo-audit rules`)"
    return f"'{code}' is not a {what}{hint}"


def check_codes(named: Iterable[tuple[str, str, bool]], source: str) -> None:
    """Raise ConfigError for the first unknown code. `named`: (where, code, prefix allowed)."""
    items = list(named)
    if not items:
        return
    codes = known_codes()
    for where, code, prefix in items:
        problem = code_problem(code, codes, prefix=prefix)
        if problem:
            raise ConfigError(f"{source}: {where}: {problem}" if where else f"{source}: {problem}")


def config_codes(config: Any) -> list[tuple[str, str, bool]]:
    """Every code a configuration names: (where, code, prefix allowed)."""
    out: list[tuple[str, str, bool]] = []
    out += [("select", c, True) for c in config.select]
    out += [("ignore", c, True) for c in config.ignore]
    out += [("severity", c, False) for c in config.severity]
    for i, p in enumerate(config.per_path_ignores):
        out += [(f"per_path_ignores[{i}].codes", c, True) for c in p.codes]
    for i, w in enumerate(config.waiver):
        out.append((f"waiver[{i}].code", w.code, True))
    return out


def check_config_codes(config: Any, source: str = "configuration") -> None:
    check_codes(config_codes(config), source)


__all__ = ["check_codes", "check_config_codes", "code_problem", "config_codes", "known_codes"]
