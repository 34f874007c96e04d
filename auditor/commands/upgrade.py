"""`kumo-audit upgrade --to RELEASE [--from RELEASE] [PATH]`: what a KumoMTA upgrade changes for a policy.

The report lists, at file:line, the API the policy uses that the target release removes or
deprecates, the parameters it drops or makes strict, the breaking changes that touch the policy, the
defaults that change for settings the policy leaves unset, and the changes to review by hand; its
verdict is `safe`, `review` or `needs-changes` (exit 1 for needs-changes, or for review with
`--fail-on review`). `--record` writes an `upgrade-evaluated` runbook entry with the evidence.

`--from` defaults to `kumod --version` of a configured kumod binary, else to the release recorded in
the runbook of the policy's repository, else to `kumomta_release` in the configuration.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from auditor.commands.common import (
    add_format_options,
    add_record_options,
    output_plan,
    write_outputs,
)
from auditor.core.errors import ConfigError, UsageError

FORMATS = ("text", "json", "markdown", "html")
SCHEMA_VERSION = 1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "upgrade",
        help="evaluate a KumoMTA release upgrade against the policy",
        description="List what upgrading KumoMTA from one release to another changes for this "
        "policy, with a verdict (safe, review, needs-changes).",
    )
    parser.add_argument(
        "path",
        nargs="?",
        default=".",
        type=Path,
        help="policy directory or entry file (default: current directory)",
    )
    parser.add_argument(
        "--to", dest="to_release", required=True, metavar="RELEASE", help="target release"
    )
    parser.add_argument(
        "--from",
        dest="from_release",
        metavar="RELEASE",
        help="running release (default: kumod --version, the runbook, or kumomta_release)",
    )
    parser.add_argument(
        "--kumod", type=Path, metavar="BINARY", help="kumod binary to ask for the running release"
    )
    add_format_options(parser, FORMATS)
    parser.add_argument(
        "--fail-on",
        choices=("needs-changes", "review"),
        default="needs-changes",
        help="lowest verdict that makes the exit code 1 (default: needs-changes)",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="configuration file to use")
    add_record_options(parser, "write an upgrade-evaluated runbook entry")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from auditor.change.upgrade import evaluate
    from auditor.config.settings import load_config
    from auditor.pipeline.stages import audit_snapshot, resolve_target
    from auditor.source.snapshot import FsSnapshot

    root, entry = resolve_target(args.path)
    config, _source = load_config(root, args.config)
    start, origin = running_release(args, root, config)
    from auditor.change.upgrade import resolve_jump

    old, new = resolve_jump(start, args.to_release)
    result = audit_snapshot(
        FsSnapshot(root, size_limit=config.size_limit),
        config.replace(kumomta_release=old),
        entry=entry,
    )
    report = evaluate(result.context.model, result.context.data, old, new)
    doc = report_document(report, str(args.path), origin)
    renderers = {"text": render_text, "json": render_json, "markdown": render_markdown}
    plan = output_plan(args.output_order)
    rendered = {
        fmt: (render_html(doc) if fmt == "html" else renderers[fmt](doc)) for fmt, _ in plan
    }
    write_outputs(plan, rendered)
    if args.record:
        entry_rec = record_upgrade(args, root, report)
        print(
            f"recorded runbook entry {entry_rec.short_id} ({entry_rec.file_name()})",
            file=sys.stderr,
        )
    failing = ("needs-changes",) if args.fail_on == "needs-changes" else ("needs-changes", "review")
    return 1 if report.verdict in failing else 0


# ----- where the running release comes from ------------------------------------------------------


def running_release(args: argparse.Namespace, root: Path, config: Any) -> tuple[str, str]:
    """(release, where it came from) for --from."""
    if args.from_release:
        return args.from_release, "--from"
    binary = args.kumod or (Path(config.kumod_binary) if config.kumod_binary else None)
    if binary is not None:
        return kumod_version(binary), f"{binary} --version"
    recorded = recorded_release(root, args.runbook_branch, args.runbook_dir)
    if recorded:
        return recorded, "runbook"
    if config.kumomta_release:
        return config.kumomta_release, "kumomta_release in the configuration"
    raise UsageError(
        "--from is required: no kumod binary is configured, the runbook records no KumoMTA "
        "release and the configuration sets no kumomta_release"
    )


def kumod_version(binary: Path) -> str:
    """The release tag `kumod --version` prints."""
    try:
        proc = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise ConfigError(f"cannot run {binary} --version: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{binary} --version did not answer within 30 s") from None
    from auditor.kumo.versions import load_versions

    text = (proc.stdout or proc.stderr).strip()
    if proc.returncode != 0 or not text:
        raise ConfigError(f"{binary} --version failed (exit {proc.returncode})")
    return load_versions().resolve(text.splitlines()[0])


def recorded_release(root: Path, branch: str, runbook_dir: Path | None) -> str | None:
    """The KumoMTA release named by the newest runbook entry that records one."""
    from auditor.runbook.store import open_store

    try:
        store = open_store(root, branch, runbook_dir)
        summaries = store.summaries(store.state())
    except Exception:  # no repository, no branch, unreadable store: nothing is recorded
        return None
    best: tuple[str, str] | None = None
    for summary in summaries.values():
        release = summary.get("kumomta_release") if isinstance(summary, dict) else None
        stamp = str(summary.get("decided_at", ""))
        if isinstance(release, str) and release and (best is None or stamp > best[0]):
            best = (stamp, release)
    return best[1] if best else None


# ----- the runbook entry --------------------------------------------------------------------------


def record_upgrade(args: argparse.Namespace, root: Path, report: Any):  # type: ignore[no-untyped-def]
    from auditor.kumo.api import load_api
    from auditor.rules.registry import ruleset_hash
    from auditor.runbook.model import Link
    from auditor.runbook.record import EntryDraft, record
    from auditor.runbook.store import open_store

    counts = report.counts()
    summary = (
        f"KumoMTA {report.from_release} -> {report.to_release}: {report.verdict} "
        f"({counts['change']} to change, {counts['review']} to review, "
        f"{counts['manual']} for manual review)"
    )
    links: dict[str, str] = {}
    for item in report.items:
        if item.link:
            links.setdefault(item.change_id or item.subject, item.link)
    for change in report.manual:
        links.setdefault(change.id, change.link)
    upgrade = {
        "from_release": report.from_release,
        "to_release": report.to_release,
        "verdict": report.verdict,
        "items": [
            {
                "kind": i.kind,
                "severity": i.severity,
                "path": i.path,
                "line": i.line,
                "column": i.column,
                "subject": i.subject,
                "message": i.message,
                "release": i.release,
                "link": i.link,
            }
            for i in report.items
        ],
        "manual_review": [c.id for c in report.manual],
    }
    draft = EntryDraft(
        decision="upgrade-evaluated",
        summary=summary,
        kumomta_release=report.from_release,
        upgrade=upgrade,
        api_table_version=load_api().release,
        ruleset_hash=ruleset_hash(),
        links=[Link(title=title, url=url) for title, url in sorted(links.items())],
        environment=args.environment,
    )
    store = open_store(root, args.runbook_branch, args.runbook_dir)
    return record(store, draft, repo=None if args.runbook_dir else root)


# ----- rendering ----------------------------------------------------------------------------------

_SECTIONS = (
    ("change", "Needs changes", lambda i: i.severity == "change"),
    ("review", "To review", lambda i: i.severity == "review" and i.kind != "default"),
    ("default", "Defaults that change for settings left unset", lambda i: i.kind == "default"),
)


def report_document(report: Any, root: str, origin: str) -> dict[str, Any]:
    from auditor import __version__

    doc = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "kumo-audit", "version": __version__},
        "root": root,
        "from_origin": origin,
        **report.as_dict(),
    }
    doc["sections"] = [
        {"id": sid, "title": title, "items": [i.as_dict() for i in report.items if test(i)]}
        for sid, title, test in _SECTIONS
    ]
    return doc


def render_json(doc: dict[str, Any]) -> str:
    data = {k: v for k, v in doc.items() if k != "sections"}
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _headline(doc: dict[str, Any]) -> str:
    c = doc["counts"]
    return (
        f"KumoMTA upgrade {doc['from_release']} -> {doc['to_release']} "
        f"({len(doc['releases_crossed'])} releases crossed): {doc['verdict']}"
    ), (
        f"{c['change']} to change, {c['review']} to review, {c['manual']} for manual review; "
        f"{c['breaking_changes_crossed']} breaking changes in range"
    )


def render_text(doc: dict[str, Any]) -> str:
    head, counts = _headline(doc)
    out = [head, f"  {counts}", f"  running release from {doc['from_origin']}"]
    for section in doc["sections"]:
        if not section["items"]:
            continue
        out += ["", f"{section['title']}:"]
        for i in section["items"]:
            out.append(f"  {i['path']}:{i['line']}:{i['column']}  {i['message']} [{i['release']}]")
            if i["replacement"]:
                out.append(f"      fix: {i['replacement']}")
            if i["link"]:
                out.append(f"      {i['link']}")
    if doc["manual_review"]:
        out += ["", "Manual review (no static match possible):"]
        for c in doc["manual_review"]:
            out.append(f"  [{c['release']}] {c['summary']}")
            out.append(f"      {c['link']}")
    if not doc["items"] and not doc["manual_review"]:
        out += ["", "Nothing in this policy is touched by the releases crossed."]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: dict[str, Any]) -> str:
    head, counts = _headline(doc)
    out = [f"# {_md(head)}", "", f"{_md(counts)}. Running release from {_md(doc['from_origin'])}."]
    for section in doc["sections"]:
        if not section["items"]:
            continue
        out += [
            "",
            f"## {section['title']}",
            "",
            "| Location | What | Release | Fix |",
            "|---|---|---|---|",
        ]
        for i in section["items"]:
            what = _md(i["message"])
            if i["link"]:
                what += f" ([changelog]({i['link']}))"
            out.append(
                f"| `{_md(i['path'])}:{i['line']}` | {what} | {_md(i['release'])} "
                f"| {_md(i['replacement'])} |"
            )
    if doc["manual_review"]:
        out += ["", "## Manual review", ""]
        for c in doc["manual_review"]:
            out.append(f"- {_md(c['release'])}: {_md(c['summary'])} ([changelog]({c['link']}))")
    if not doc["items"] and not doc["manual_review"]:
        out += ["", "Nothing in this policy is touched by the releases crossed."]
    return "\n".join(out) + "\n"


def render_html(doc: dict[str, Any]) -> str:
    import jinja2
    from markupsafe import Markup

    from auditor.runbook.markdown import TEMPLATES_DIR

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    css = (Path(TEMPLATES_DIR) / "runbook-report.css").read_text(encoding="utf-8")
    head, counts = _headline(doc)
    return env.get_template("upgrade-report.html.j2").render(
        doc=doc, head=head, counts=counts, css=Markup(css.replace("</", "<\\/"))
    )
