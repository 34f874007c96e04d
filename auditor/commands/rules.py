"""`kumo-audit rules` (the catalog) and `kumo-audit explain CODE` (one rule's documentation)."""

from __future__ import annotations

import argparse
import json
import sys

from auditor.core.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    rules = sub.add_parser("rules", help="list every rule with its code, name and default severity")
    rules.add_argument("--format", choices=("text", "json"), default="text")
    rules.add_argument(
        "--version",
        action="store_true",
        help="show the tool version and the KumoMTA releases the API table describes",
    )
    rules.set_defaults(func=run_rules)
    explain = sub.add_parser("explain", help="show the documentation of one rule")
    explain.add_argument("code", help="rule code (e.g. R101) or name (e.g. init-only-outside-init)")
    explain.set_defaults(func=run_explain)


def _catalog():  # type: ignore[no-untyped-def]
    from auditor.rules.registry import all_rules

    return all_rules()


def release_info() -> dict[str, object]:
    """The KumoMTA releases of the API table: which is newest and which rules use by default."""
    from auditor.kumo.api import load_api
    from auditor.kumo.versions import load_versions

    table = load_versions()
    return {
        "default_release": table.newest,
        "newest_release": table.newest,
        "newest_tagged_release": table.newest_tag,
        "newest_commit": table.mainline_commit or table.newest_tag_commit,
        "oldest_release": table.releases[0],
        "releases": len(table.releases),
        "api_table": load_api().release,
    }


def run_version(args: argparse.Namespace) -> int:
    from auditor import __version__

    info = release_info()
    if args.format == "json":
        doc = {"version": __version__, "kumomta": info}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    sys.stdout.write(
        f"kumo-audit {__version__}\n"
        f"KumoMTA API table: {info['releases']} releases, {info['oldest_release']} .. "
        f"{info['newest_release']}\n"
        f"newest release: {info['newest_release']} (commit {str(info['newest_commit'])[:12]}; "
        f"newest tag {info['newest_tagged_release']})\n"
        f"default release: {info['default_release']} "
        "(set `kumomta_release` in kumo-audit.toml or pass check --kumomta-release)\n"
    )
    return 0


def run_rules(args: argparse.Namespace) -> int:
    if getattr(args, "version", False):
        return run_version(args)
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
