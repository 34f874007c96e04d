"""The `check` pipeline for one snapshot: load -> data files -> rules -> filter -> report."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.config.settings import DEFAULT, Config
from auditor.core.errors import AuditError
from auditor.core.findings import Finding, Severity, Span, Suppression, dedupe_fingerprints
from auditor.core.record import dataclass
from auditor.kumo.digest import api_table_digest
from auditor.kumo.paths import ENTRY_CANDIDATES, PathMap
from auditor.rules.context import AuditContext
from auditor.source.snapshot import FileProblem, Snapshot

if TYPE_CHECKING:  # the pipeline's modules load only when a tree is actually audited
    from auditor.kumo.api import KumoApi
    from auditor.kumo.loader import PolicyLoader
    from auditor.kumo.model import PolicyModel


@dataclass
class AuditResult:
    """What auditing one snapshot found, with the context the rules saw."""

    entry: str
    findings: list[Finding]
    context: AuditContext
    suppressions: list[Suppression] = field(default_factory=list)
    mode: str = "policy"  # "policy", "module" or "data:<helper>" (see audit_mode)

    def counted(self) -> list[Finding]:
        return [f for f in self.findings if not f.suppressed]

    def summary(self) -> dict[str, Any]:
        return summarize(self.findings, len(self.context.texts))


@dataclass
class CheckSummary:
    """What `kumo-audit check` prints of a result; cached on its own, so an unchanged tree needs
    none of the pipeline's modules."""

    entry: str
    findings: list[Finding]
    suppressions: list[Suppression]
    files: int
    mode: str = "policy"

    def summary(self) -> dict[str, Any]:
        return summarize(self.findings, self.files)


def summarize(findings: list[Finding], files: int) -> dict[str, Any]:
    counted = [f for f in findings if not f.suppressed]
    counts = {s.value: 0 for s in Severity}
    for finding in counted:
        counts[finding.severity.value] += 1
    return {
        "files": files,
        "findings": len(counted),
        "suppressed": len(findings) - len(counted),
        "by_severity": counts,
    }


def find_entry(snapshot: Snapshot, configured: str | None) -> str:
    if configured:
        if not snapshot.exists(configured):
            raise AuditError(f"configured entry file {configured} does not exist")
        return configured
    for candidate in ENTRY_CANDIDATES:
        if snapshot.exists(candidate) and not snapshot.is_dir(candidate):
            return candidate
    raise AuditError(
        f"no init.lua found in {snapshot.label} (looked for {', '.join(ENTRY_CANDIDATES)}); "
        "pass the policy file itself or set `entry` in kumo-audit.toml"
    )


def make_path_map(entry: str, config: Config, overrides: dict[str, str] | None = None) -> PathMap:
    path_map = PathMap.default_for(entry).with_overrides(config.path_map)
    return path_map.with_overrides(overrides or {})


def audit_snapshot(
    snapshot: Snapshot,
    config: Config = DEFAULT,
    *,
    entry: str | None = None,
    path_map_overrides: dict[str, str] | None = None,
    cached: Callable[[str, str, Callable[[], object]], object] | None = None,
    use_suppressions: bool = True,
    today: Any = None,
    kind: str | None = None,
    cache_result: bool = True,
) -> AuditResult:
    """Run the whole check pipeline on one snapshot.

    A data file given as the entry is audited alone, as the helper data file `kind` (default: told
    from its name, else from its content).

    With `cached`, the whole result is also cached under everything it depends on (every file's
    content id, the configuration, the options, the day), so an unchanged tree is not audited again;
    `cache_result=False` keeps only the per-file entries (for callers that cache a summary instead).
    """
    import datetime

    from auditor.kumo.api import load_api

    api = load_api(config.kumomta_release)
    entry = find_entry(snapshot, entry or config.entry)
    path_map = make_path_map(entry, config, path_map_overrides)
    today = today or datetime.date.today()

    fresh: list[AuditResult] = []

    def compute() -> StoredResult:
        result = _audit(
            snapshot, config, entry, path_map, api, cached, use_suppressions, today, kind
        )
        fresh.append(result)
        return StoredResult(result.entry, result.findings, result.suppressions)

    stored: StoredResult = (
        compute()
        if cached is None or not cache_result
        else _cached_result(
            cached,
            snapshot_key(snapshot, config, entry, path_map, use_suppressions, today, kind),
            compute,
        )
    )
    if fresh:
        context = fresh[0].context
    else:  # a hit: the findings are known; the model, texts and data come from per-file entries
        context, _ = _load(snapshot, config, entry, path_map, api, cached, kind)
    return AuditResult(
        stored.entry,
        list(stored.findings),
        context,
        list(stored.suppressions),
        getattr(context.model, "mode", "policy"),
    )


@dataclass
class StoredResult:
    """What the result cache keeps of an audit: its findings, which the rules are expensive to
    recompute. Not the model, texts and data: they would repeat every file's facts and text (a
    2,000-line tree's result was 315 KB for 67 KB of input), and they are rebuilt on a hit from the
    per-file entries at a fraction of the rules' cost."""

    entry: str
    findings: list[Finding]
    suppressions: list[Suppression]


def check_tree(
    snapshot: Snapshot,
    config: Config = DEFAULT,
    *,
    entry: str | None = None,
    path_map_overrides: dict[str, str] | None = None,
    cached: Callable[[str, str, Callable[[], object]], object] | None = None,
    use_suppressions: bool = True,
    today: Any = None,
    kind: str | None = None,
) -> CheckSummary:
    """`audit_snapshot` for callers that only report findings: with a cache, an unchanged tree is
    answered from its summary without loading the model, the rules or the data schemas."""
    import datetime

    today = today or datetime.date.today()
    resolved = find_entry(snapshot, entry or config.entry)
    path_map = make_path_map(resolved, config, path_map_overrides)

    def compute() -> CheckSummary:
        result = audit_snapshot(
            snapshot,
            config,
            entry=resolved,
            path_map_overrides=path_map_overrides,
            cached=cached,
            use_suppressions=use_suppressions,
            today=today,
            kind=kind,
            cache_result=False,  # the summary below is all a check needs again
        )
        return CheckSummary(
            result.entry,
            result.findings,
            result.suppressions,
            len(result.context.texts),
            result.mode,
        )

    if cached is None:
        return compute()
    key = snapshot_key(snapshot, config, resolved, path_map, use_suppressions, today, kind)
    return compute() if key is None else cached("summary", key, compute)  # type: ignore[return-value]


def _cached_result(
    cached: Any, key: str | None, compute: Callable[[], StoredResult]
) -> StoredResult:
    return compute() if key is None else cached("result", key, compute)


def snapshot_key(
    snapshot: Snapshot,
    config: Config,
    entry: str,
    path_map: PathMap,
    use_suppressions: bool,
    today: Any,
    kind: str | None = None,
) -> str | None:
    """Everything a check result depends on, hashed: each file and its content id, problems seen while
    listing, the configuration, the entry and path map, suppressions on or off, the day (suppressions
    and waivers expire) and the API table (the tool version is part of every cache key)."""
    import hashlib
    import json

    if not getattr(snapshot, "walks", True):
        return None  # only the files read are known: nothing to key a whole result on
    h = hashlib.sha256()
    for path in snapshot.files():
        content_id = snapshot.content_id(path)
        if content_id is None:
            return None  # a file that cannot be read: its finding may depend on more than its id
        h.update(f"{path}\0{content_id}\n".encode())
    for problem in snapshot.problems():
        h.update(f"!{problem.path}\0{problem.reason}\n".encode())
    h.update(
        json.dumps(
            [
                config.as_dict(),
                entry,
                path_map.as_dict(),
                use_suppressions,
                str(today),
                api_table_digest(),
                snapshot.size_limit,
                kind,
            ],
            sort_keys=True,
            default=str,
        ).encode()
    )
    return h.hexdigest()


def _audit(
    snapshot: Snapshot,
    config: Config,
    entry: str,
    path_map: PathMap,
    api: KumoApi,
    cached: Callable[[str, str, Callable[[], object]], object] | None,
    use_suppressions: bool,
    today: Any,
    kind: str | None = None,
) -> AuditResult:
    from auditor.filter.apply import apply_filters
    from auditor.rules import registry

    context, findings = _load(snapshot, config, entry, path_map, api, cached, kind)
    for rule_obj in registry.iter_checks():
        if rule_obj.check is not None:
            findings.extend(rule_obj.check(context))
    findings = by_default(findings, context.model)
    findings = dedupe_fingerprints(findings)
    filtered, used = apply_filters(
        findings, context, use_suppressions=use_suppressions, today=today
    )
    return AuditResult(entry, filtered, context, used)


def _load(
    snapshot: Snapshot,
    config: Config,
    entry: str,
    path_map: PathMap,
    api: KumoApi,
    cached: Callable[[str, str, Callable[[], object]], object] | None,
    kind: str | None,
) -> tuple[AuditContext, list[Finding]]:
    """The context the rules see (model, texts, data files) and the findings of loading it."""
    from auditor.kumo.loader import PolicyLoader

    loader = PolicyLoader(snapshot, entry, path_map, api, cached)
    if is_data_entry(entry):
        loaded = data_file_model(snapshot, entry, path_map, api, kind)
    else:
        loaded = loader.load(lambda model: audit_mode(model, entry, config))
    context = AuditContext(loaded.model, api, config, snapshot, loaded.texts)
    findings = list(loaded.findings)
    findings.extend(load_data_files(context, loader, cached))
    return context, findings


def by_default(findings: list[Finding], model: PolicyModel) -> list[Finding]:
    """Say "by default (when X is unset)" on findings about a value that holds only by default
    (`os.getenv('X') or 'v'`): the finding sits on that value, or names it within the same call."""
    from auditor.lua.literal import Lit, Table

    defaults: dict[str, list[tuple[Span, Lit]]] = {}
    for site in model.calls:
        stack: list[object] = list(site.call.args)
        while stack:
            value = stack.pop()
            if isinstance(value, Table):
                stack.extend(e.value for e in value.entries)
            elif isinstance(value, Lit) and value.when:
                defaults.setdefault(site.module, []).append((site.call.span, value))
    if not defaults:
        return findings
    out = []
    for finding in findings:
        whens: list[str] = []  # every default the finding rests on, e.g. the address and the relay
        for call_span, lit in defaults.get(finding.path, ()):
            if lit.when not in whens and (
                _within(finding.span, lit.span)
                or (_within(finding.span, call_span) and str(lit.value) in finding.message)
            ):
                whens.append(lit.when)  # type: ignore[arg-type]
        if whens:
            when = " and ".join(sorted(whens))
            finding = dataclasses.replace(
                finding, message=f"{finding.message}; this holds by default (when {when})"
            )
        out.append(finding)
    return out


def _within(inner: Span, outer: Span) -> bool:
    return (
        (outer.line, outer.column)
        <= (inner.line, inner.column)
        <= (
            outer.end_line,
            outer.end_column,
        )
    )


def is_data_entry(entry: str) -> bool:
    from auditor.data.role import is_data_file

    return is_data_file(entry)


# Events whose handler makes a Lua file a policy entry: kumod's `init`, tsa-daemon's `tsa_init`,
# kumo-proxy's `proxy_init` (K:docs/reference/events/init.md, tsa_init.md, proxy_init.md), and
# `main` of `kumod --script`.
ENTRY_EVENTS = frozenset({"init", "tsa_init", "proxy_init", "main"})


def audit_mode(model: PolicyModel, entry: str, config: Config) -> str:
    """ "policy" for a policy entry (named init.lua, the configured entry, or registering an init-like
    handler); "module" for any other Lua file (a module or a snippet): whole-policy rules do not apply
    to it, and what its top level does depends on where it is required."""
    if entry.rsplit("/", 1)[-1] == "init.lua" or (config.entry and config.entry == entry):
        return "policy"
    for handler in model.handlers:
        if handler.module == entry and handler.origin == "policy" and handler.event in ENTRY_EVENTS:
            return "policy"
    return "module"


def data_file_model(
    snapshot: Snapshot, entry: str, path_map: PathMap, api: KumoApi, kind: str | None
) -> Any:
    """A model holding one data file as if a helper loaded it (`check shaping.toml`)."""
    from auditor.core.load_codes import UNREADABLE_FILE
    from auditor.data.role import KINDS, infer_role
    from auditor.kumo.loader import LoadResult, decode_text
    from auditor.kumo.model import DataRef, PolicyModel

    model = PolicyModel(entry, path_map, api)
    try:
        text = decode_text(entry, snapshot.read(entry), snapshot.size_limit)
    except FileProblem as problem:
        model.mode = f"data:{kind or 'unknown'}"
        finding = UNREADABLE_FILE.finding(
            entry, Span.point(1, 1), f"{entry} {problem.reason}", key=entry
        )
        return LoadResult(model, [finding], {})
    if kind is not None and kind not in KINDS:
        raise AuditError(f"unknown --kind {kind!r} (expected one of {', '.join(KINDS)})")
    role = kind or infer_role(entry, text)
    if role is None:
        raise AuditError(
            f"cannot tell which helper reads {entry}: name it like shaping.toml, queues.toml, "
            "sources.toml, listener_domains.toml or dkim_data.toml, or pass --kind "
            f"{'|'.join(KINDS)}"
        )
    model.mode = f"data:{role}"
    model.data_refs.append(
        DataRef(entry, entry, entry, Span.point(1, 1), role, f"{role} data file", frozenset())
    )
    return LoadResult(model, [], {})


def load_context(
    snapshot: Snapshot,
    config: Config = DEFAULT,
    *,
    entry: str | None = None,
    path_map_overrides: dict[str, str] | None = None,
    cached: Callable[[str, str, Callable[[], object]], object] | None = None,
) -> tuple[AuditContext, list[Finding]]:
    """The first stages only (load the policy, parse its data files): the rule context and the
    findings of loading, without running the rules (for commands that explain the model)."""
    from auditor.kumo.api import load_api

    api = load_api(config.kumomta_release)
    entry = find_entry(snapshot, entry or config.entry)
    path_map = make_path_map(entry, config, path_map_overrides)
    return _load(snapshot, config, entry, path_map, api, cached, None)


def load_data_files(
    context: AuditContext,
    loader: PolicyLoader,
    cached: Callable[[str, str, Callable[[], object]], object] | None,
) -> Iterable[Finding]:
    """Validate every data file the policy loads (once per file); report missing ones at the reference."""
    from auditor.core.load_codes import MISSING_FILE, UNREADABLE_FILE
    from auditor.kumo.loader import decode_text

    seen: set[str] = set()
    for ref in context.model.data_refs:
        if ref.tree_path is None:
            continue
        if not context.snapshot.exists(ref.tree_path):
            if ref.implicit:
                continue
            if not ref.written.startswith("/"):
                # relative to kumod's working directory, which the tree does not tell
                yield MISSING_FILE.finding(
                    ref.module,
                    ref.span,
                    f"data file {ref.written} ({ref.loader}) is a relative path: kumod reads it "
                    "from its working directory, and it is neither under the audited root nor "
                    "beside the policy, so whether it loads depends on where kumod is started; "
                    "use an absolute path",
                    key=f"data:{ref.written}",
                    severity=Severity.WARNING,
                )
                continue
            if context.model.mode == "module":
                # a module (or snippet) alone: the tree it is deployed with is not the audited one
                yield MISSING_FILE.finding(
                    ref.module,
                    ref.span,
                    f"data file {ref.written} ({ref.loader}) is not in the audited tree (expected "
                    f"at {ref.tree_path}); this file is audited as a module on its own, so whether "
                    "it loads depends on the policy tree the module is deployed with",
                    key=f"data:{ref.written}",
                    severity=Severity.WARNING,
                )
                continue
            yield MISSING_FILE.finding(
                ref.module,
                ref.span,
                f"data file {ref.written} ({ref.loader}) is not in the audited tree (expected at "
                f"{ref.tree_path}): the helper fails to load it at run time",
                key=f"data:{ref.written}",
            )
            continue
        if ref.tree_path in seen:
            continue
        seen.add(ref.tree_path)
        try:
            data = context.snapshot.read(ref.tree_path)
            text = decode_text(ref.tree_path, data, context.snapshot.size_limit)
        except FileProblem as problem:
            if any(f.code == "E102" and f.path == ref.tree_path for f in loader.findings):
                continue  # already reported (e.g. a symlink that leaves the tree)
            yield UNREADABLE_FILE.finding(
                ref.tree_path,
                Span.point(1, 1),
                f"{ref.tree_path} {problem.reason}",
                key=ref.tree_path,
            )
            continue
        context.texts[ref.tree_path] = text
        content_id = context.snapshot.content_id(ref.tree_path) or ""
        fmt = ref.data_format or "plain"

        def compute(path: str = ref.tree_path, text: str = text, fmt: str = fmt) -> object:
            if fmt == "plain":
                return parse_plain_data(path, text)
            from auditor.data.validate import validate_data

            return validate_data(path, text, fmt)

        result = cached(f"data-{fmt}", content_id, compute) if cached and content_id else compute()
        context.data[ref.tree_path] = result
        yield from result.findings  # type: ignore[attr-defined]


def parse_plain_data(path: str, text: str) -> Any:
    """A data file loaded directly (`kumo.toml_load`, `kumo.serde.json_load`): syntax only (E103)."""
    from auditor.data.locate import DataSyntaxError, load_located
    from auditor.data.result import DataResult
    from auditor.data.validate import unloadable_finding

    if not path.endswith((".toml", ".json")):
        return DataResult(None, None, [])  # YAML, JSON5, ...: not parsed here
    try:
        located = load_located(text, "toml" if path.endswith(".toml") else "json")
    except DataSyntaxError as err:
        return DataResult(None, None, [unloadable_finding(path, err, f"{path}:syntax")])
    return DataResult(located.value, located, [])


def resolve_target(target: Path) -> tuple[Path, str | None]:
    """`check PATH`: a directory is the root; a file is the entry, its directory the root (or the
    directory above when the file sits in `policy/`)."""
    if not target.exists():
        raise AuditError(f"{target} does not exist")
    if target.is_dir():
        return target, None
    parent = target.parent
    if parent.name == "policy":
        return parent.parent, f"policy/{target.name}"
    return parent, target.name
