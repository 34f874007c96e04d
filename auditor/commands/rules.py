"""`kumo-audit rules` (the catalog) and `kumo-audit explain CODE` (one rule's documentation)."""

from __future__ import annotations

import argparse
import json
import sys

from auditor.core.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    rules = sub.add_parser("rules", help="list every rule with its code, name and default severity")
    rules.add_argument("--format", choices=("text", "json"), default="text")
    rules.set_defaults(func=run_rules)
    explain = sub.add_parser("explain", help="show the documentation of one rule")
    explain.add_argument("code", help="rule code (e.g. R101) or name (e.g. init-only-outside-init)")
    explain.set_defaults(func=run_explain)


def _catalog():  # type: ignore[no-untyped-def]
    from auditor.rules.registry import all_rules

    return all_rules()


def run_rules(args: argparse.Namespace) -> int:
    rules = _catalog()
    if args.format == "json":
        doc = [
            {
                "code": r.meta.code,
                "name": r.meta.name,
                "severity": r.meta.severity.value,
                "category": r.meta.category,
                "summary": r.meta.summary,
                "suppressible": r.meta.suppressible,
                "change_only": r.meta.change,
            }
            for r in rules
        ]
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    width = max(len(r.meta.name) for r in rules)
    for r in rules:
        flags = "" if r.meta.suppressible else "  (not suppressible)"
        sys.stdout.write(
            f"{r.meta.code}  {r.meta.name:<{width}}  {r.meta.severity.value:<7}  "
            f"{r.meta.summary}{flags}\n"
        )
    return 0


def run_explain(args: argparse.Namespace) -> int:
    wanted = args.code.strip()
    match = next(
        (r for r in _catalog() if r.meta.code == wanted.upper() or r.meta.name == wanted.lower()),
        None,
    )
    if match is None:
        raise UsageError(f"no rule {wanted!r}; `kumo-audit rules` lists them")
    m = match.meta
    out = [
        f"{m.code} {m.name} ({m.severity.value}, {m.category})",
        "",
        m.summary + ".",
        "",
        m.doc,
        "",
        "Bad:",
        *("    " + line for line in m.bad.splitlines()),
        "",
        "Good:",
        *("    " + line for line in m.good.splitlines()),
        "",
        f"Fix: {m.fix}",
    ]
    if not m.suppressible:
        out += ["", "This rule cannot be suppressed."]
    elif not m.change:
        out += ["", f'Suppress (with a reason): -- kumo-audit: allow({m.code}) reason="..."']
    sys.stdout.write("\n".join(out) + "\n")
    return 0
