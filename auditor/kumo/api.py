"""KumoMTA's Lua API as data: typed, read-only views of ``api.toml``.

The table is loaded once per process (``load_api`` is cached) and never mutated.
Rules read facts from here instead of hard-coding them.

Field conventions that are not obvious from the names:

* ``FunctionSpec.where``: ``init`` (init only; a change needs a restart), ``pre_init``
  (pre_init or init, before pools are created), ``top_level`` (policy file level: ``kumo.on``,
  ``kumo.memoize``), ``realtime`` (meant inside event handlers), ``anywhere``.
* ``FunctionSpec.table_arg``: 1-based position of the parameter table that ``params`` describe.
* ``FunctionSpec.deprecated_by``: the replacement function name, ``"(no replacement)"`` for a
  deprecated no-op, or ``""`` when not deprecated.
* ``FunctionSpec.since``: ``YYYY.MM.DD`` of the release that introduced it, ``"dev"`` when
  it is newer than the described release, ``""`` when unknown.
* ``FunctionSpec.doc`` is ``""`` for undocumented functions; ``source`` then names the Rust file.
* ``ParamSpec.struct`` names an entry of ``KumoApi.structs`` describing the keys of a nested
  table (or of each element / value for ``list(table)`` / ``map(table)``).
* Event names containing ``*`` are families (``make.*``, ``log_disposition_*``): ``event()``
  matches them with shell-style wildcards when no exact entry exists.
* ``HelperSpec.setup_returns`` is what the first setup method returns: ``handler`` (pass it to
  ``kumo.on``), ``object``, ``function`` (call it yourself), ``none``; ``returns_by_method``
  overrides it per method. ``files_from`` describes the option-taking setup method; the plain
  ``setup(list)`` form always takes its data files from the list argument.
  ``registers_dynamic`` holds event-name templates (``make.{name}.log_hook``);
  ``registers_dynamic_by_method`` overrides them per method.
* ``KumoApi.blocking_stdlib``: dotted names of Lua standard-library functions (``io.open``) that
  block the thread running the event (``[lua_stdlib] blocking`` in the table).
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import marshal
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from auditor.core.record import dataclass

WHERE_VALUES = frozenset({"init", "pre_init", "top_level", "realtime", "anywhere"})
RESTART_SCOPES = frozenset(
    {
        "",
        "listener",
        "spool",
        "logging",
        "thread_pool",
        "memory",
        "cache",
        "throttle",
        "classifier",
        "task",
        "monitor",
        "other",
    }
)
HANDLER_KINDS = frozenset({"single", "multiple"})
PHASES = frozenset(
    {"pre_init", "init", "realtime", "validate", "script", "shutdown", "tsa", "proxy"}
)
SETUP_RETURNS = frozenset({"handler", "object", "function", "none"})
DATA_FORMATS = frozenset({"sources", "queues", "shaping", "listener_domains", "dkim", ""})
FILES_FROM = frozenset({"arg", "option:file_names", "option:extra_files", ""})


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a KumoMTA function or struct: its type and whether it is required."""

    name: str
    type: str
    required: bool = False
    struct: str = ""


@dataclass(frozen=True)
class StructSpec:
    """Keys of a nested table (listener ``peer`` overrides, pool entries, ...)."""

    name: str
    source: str
    strict: bool
    params: MappingProxyType[str, ParamSpec]


@dataclass(frozen=True)
class FunctionSpec:
    """One `kumo.*` function: where it may run, its parameters and its release facts."""

    name: str
    where: str
    since: str
    doc: str
    strict: bool
    blocking: bool
    deprecated_by: str
    restart_scope: str
    table_arg: int
    params: MappingProxyType[str, ParamSpec]
    source: str = ""

    @property
    def documented(self) -> bool:
        return bool(self.doc)

    @property
    def deprecated(self) -> bool:
        return bool(self.deprecated_by)


@dataclass(frozen=True)
class EventSpec:
    """One KumoMTA event: single or multiple handlers, phase and parameters."""

    name: str
    handlers: str
    phase: str
    params: tuple[str, ...]
    since: str
    doc: str
    obsolete: bool
    replaced_by: str

    @property
    def multi(self) -> bool:
        return self.handlers == "multiple"

    @property
    def is_family(self) -> bool:
        return "*" in self.name


@dataclass(frozen=True)
class HelperSpec:
    """One policy-extras helper: setup methods, what they return and register, its data files."""

    key: str
    module: str
    setup_methods: tuple[str, ...]
    setup_returns: str
    registers: tuple[str, ...]
    registers_on_require: tuple[str, ...]
    module_members: tuple[str, ...]
    object_members: tuple[str, ...]
    removed_members: MappingProxyType[str, str]
    memoize_names: tuple[str, ...]
    data_format: str
    files_from: str
    default_files: tuple[str, ...]
    invalidate_with_epoch: bool
    options: tuple[str, ...]
    returns_by_method: MappingProxyType[str, str] = field(
        default_factory=lambda: MappingProxyType({})
    )
    registers_dynamic: tuple[str, ...] = ()
    registers_by_method: MappingProxyType[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    registers_dynamic_by_method: MappingProxyType[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def registers_for(self, method: str) -> tuple[str, ...]:
        """The events calling setup ``method`` registers (``registers`` unless the method differs)."""
        return self.registers_by_method.get(method, self.registers)

    def dynamic_for(self, method: str) -> tuple[str, ...]:
        """The event-name templates calling setup ``method`` registers (``registers_dynamic``
        unless the method differs)."""
        return self.registers_dynamic_by_method.get(method, self.registers_dynamic)

    def returns_for(self, method: str) -> str:
        """What calling ``method`` returns (see module docstring for the values)."""
        return self.returns_by_method.get(method, self.setup_returns)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        # cached models refer to helpers by key; the spec itself comes from this process's table
        return (helper_spec, (self.key,))


def helper_spec(key: str) -> HelperSpec:
    """The helper `key` of the API table (how pickled references to helpers are restored)."""
    return load_api().helpers[key]


@dataclass(frozen=True, eq=False)
class KumoApi:
    """The API table of one KumoMTA release (read-only, shared)."""

    release: str
    commit: str
    table_version: int
    functions: Mapping[str, FunctionSpec]
    events: MappingProxyType[str, EventSpec]
    helpers: MappingProxyType[str, HelperSpec]
    builtin_caches: tuple[str, ...]
    helper_caches: tuple[str, ...]
    structs: MappingProxyType[str, StructSpec]
    digest: str
    event_families: tuple[EventSpec, ...] = ()
    helpers_by_module: MappingProxyType[str, HelperSpec] = field(
        default_factory=lambda: MappingProxyType({})
    )
    blocking_stdlib: tuple[str, ...] = ()

    def function(self, name: str) -> FunctionSpec | None:
        return self.functions.get(name)

    def event(self, name: str) -> EventSpec | None:
        """Exact event entry, else the first wildcard family (``make.*``) that matches."""
        spec = self.events.get(name)
        if spec is not None:
            return spec
        for family in self.event_families:
            if fnmatch.fnmatchcase(name, family.name):
                return family
        return None

    def struct(self, name: str) -> StructSpec | None:
        return self.structs.get(name)

    def helper_for_module(self, module_name: str) -> HelperSpec | None:
        """Helper for a ``require`` name: ``policy-extras.queue`` (or ``policy-extras/queue``)."""
        normalized = module_name.replace("/", ".")
        return self.helpers_by_module.get(normalized)

    def is_multi(self, event: str) -> bool:
        spec = self.event(event)
        return spec is not None and spec.multi

    def closest_event(self, name: str) -> str | None:
        """Suggest an event for an unknown or obsolete name (``message_requeued`` -> ...)."""
        spec = self.events.get(name)
        if spec is not None and spec.obsolete:
            return spec.replaced_by or None
        candidates = [
            n for n, e in self.events.items() if not e.obsolete and not e.is_family and n != name
        ]
        import difflib  # only needed for suggestions; keeps load_api() imports small

        match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        if match:
            return match[0]
        # Word-order changes (``message_requeued`` vs ``requeue_message``) defeat difflib.
        words = set(name.replace(".", "_").split("_"))
        best = max(candidates, key=lambda c: _word_overlap(words, c), default=None)
        if best is not None and _word_overlap(words, best) >= 0.5:
            return best
        return None

    def closest_function(self, name: str) -> str | None:
        """Suggest a function for an unknown name, preferring non-deprecated ones."""
        spec = self.functions.get(name)
        if spec is not None and spec.deprecated_by in self.functions:
            return spec.deprecated_by
        candidates = [n for n, f in self.functions.items() if n != name and not f.deprecated]
        import difflib

        match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
        return match[0] if match else None

    def api_hash(self) -> str:
        """sha256 of the table's bytes, for cache keys."""
        return self.digest


def _stem(word: str) -> str:
    return word.removesuffix("d").removesuffix("e")


def _word_overlap(words: set[str], candidate: str) -> float:
    """Jaccard overlap of crudely stemmed ``_``-separated words."""
    stems = {_stem(w) for w in words}
    other = {_stem(w) for w in candidate.replace(".", "_").split("_")}
    return len(stems & other) / max(len(stems | other), 1)


def _params(raw: dict[str, Any]) -> MappingProxyType[str, ParamSpec]:
    return MappingProxyType(
        {
            name: ParamSpec(
                name=name,
                type=spec["type"],
                required=bool(spec.get("required", False)),
                struct=spec.get("struct", ""),
            )
            for name, spec in raw.items()
        }
    )


_Spec = TypeVar("_Spec")


class _Specs(Mapping[str, _Spec], Generic[_Spec]):
    """Read-only specs built from the raw table on first lookup: a run looks up a few dozen of
    the table's ~250 functions, and building them all cost more than the rest of loading it."""

    __slots__ = ("_build", "_built", "_raw")

    def __init__(self, raw: dict[str, Any], build: Callable[[str, dict[str, Any]], _Spec]) -> None:
        self._raw, self._build = raw, build
        self._built: dict[str, _Spec] = {}

    def __getitem__(self, name: str) -> _Spec:
        spec = self._built.get(name)
        if spec is None:
            spec = self._built[name] = self._build(name, self._raw[name])
        return spec

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _function(name: str, raw: dict[str, Any]) -> FunctionSpec:
    return FunctionSpec(
        name=name,
        where=raw["where"],
        since=raw.get("since", ""),
        doc=raw.get("doc", ""),
        strict=bool(raw.get("strict", False)),
        blocking=bool(raw.get("blocking", False)),
        deprecated_by=raw.get("deprecated_by", ""),
        restart_scope=raw.get("restart_scope", ""),
        table_arg=int(raw.get("table_arg", 1)),
        params=_params(raw.get("params", {})),
        source=raw.get("source", ""),
    )


def _event(name: str, raw: dict[str, Any]) -> EventSpec:
    return EventSpec(
        name=name,
        handlers=raw["handlers"],
        phase=raw["phase"],
        params=tuple(raw.get("params", ())),
        since=raw.get("since", ""),
        doc=raw.get("doc", ""),
        obsolete=bool(raw.get("obsolete", False)),
        replaced_by=raw.get("replaced_by", ""),
    )


def _helper(key: str, raw: dict[str, Any]) -> HelperSpec:
    return HelperSpec(
        key=key,
        module=raw["module"],
        setup_methods=tuple(raw.get("setup_methods", ())),
        setup_returns=raw.get("setup_returns", "none"),
        registers=tuple(raw.get("registers", ())),
        registers_on_require=tuple(raw.get("registers_on_require", ())),
        module_members=tuple(raw.get("module_members", ())),
        object_members=tuple(raw.get("object_members", ())),
        removed_members=MappingProxyType(dict(raw.get("removed_members", {}))),
        memoize_names=tuple(raw.get("memoize_names", ())),
        data_format=raw.get("data_format", ""),
        files_from=raw.get("files_from", ""),
        default_files=tuple(raw.get("default_files", ())),
        invalidate_with_epoch=bool(raw.get("invalidate_with_epoch", False)),
        options=tuple(raw.get("options", ())),
        returns_by_method=MappingProxyType(dict(raw.get("returns_by_method", {}))),
        registers_dynamic=tuple(raw.get("registers_dynamic", ())),
        registers_by_method=MappingProxyType(
            {m: tuple(e) for m, e in raw.get("registers_by_method", {}).items()}
        ),
        registers_dynamic_by_method=MappingProxyType(
            {m: tuple(e) for m, e in raw.get("registers_dynamic_by_method", {}).items()}
        ),
    )


def parse_api(data: bytes, *, use_cache: bool = False) -> KumoApi:
    """Build a :class:`KumoApi` from the bytes of an ``api.toml``.

    With ``use_cache`` the parsed table is kept in a per-user cache file keyed by the sha256
    of ``data`` (parsing the TOML costs ~35 ms; reading the cache ~1 ms).
    """
    digest = hashlib.sha256(data).hexdigest()
    raw = (_packaged_table(digest) or _cached_table(data, digest)) if use_cache else None
    if raw is None:
        raw = _parse_toml(data)
    meta = raw["meta"]
    caches = raw.get("caches", {})
    events = {n: _event(n, e) for n, e in raw.get("events", {}).items()}
    helpers = {k: _helper(k, h) for k, h in raw.get("helpers", {}).items()}
    return KumoApi(
        release=meta["kumomta_release"],
        commit=meta["kumomta_commit"],
        table_version=int(meta["table_version"]),
        functions=_Specs(raw.get("functions", {}), _function),
        events=MappingProxyType(events),
        helpers=MappingProxyType(helpers),
        builtin_caches=tuple(caches.get("builtin", ())),
        helper_caches=tuple(caches.get("helper", ())),
        structs=MappingProxyType(
            {
                n: StructSpec(
                    name=n,
                    source=s.get("source", ""),
                    strict=bool(s.get("strict", False)),
                    params=_params(s.get("params", {})),
                )
                for n, s in raw.get("structs", {}).items()
            }
        ),
        digest=digest,
        event_families=tuple(e for e in events.values() if e.is_family),
        helpers_by_module=MappingProxyType({h.module: h for h in helpers.values()}),
        blocking_stdlib=tuple(raw.get("lua_stdlib", {}).get("blocking", ())),
    )


def _parse_toml(data: bytes) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(data.decode("utf-8"))


PACKAGED_TABLE = Path(__file__).with_name("api_table.json")


def _packaged_table(digest: str) -> dict[str, Any] | None:
    """The table parsed at build time (``api_table.json``, generated from ``api.toml``), when it was
    made from exactly these bytes: a fresh install or CI runner needs no TOML parse (~30 ms)."""
    import json

    try:
        packaged = json.loads(PACKAGED_TABLE.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(packaged, dict) or packaged.get("api_toml_sha256") != digest:
        return None  # made from another api.toml: parse the TOML instead
    table = packaged.get("table")
    return table if isinstance(table, dict) and isinstance(table.get("meta"), dict) else None


def render_packaged_table(data: bytes | None = None) -> str:
    """``api_table.json`` for the packaged ``api.toml`` (or ``data``): its sha256 and parsed table.

    Regenerate after editing ``api.toml``: ``python -m auditor.kumo.api > auditor/kumo/api_table.json``
    """
    import json

    data = api_bytes() if data is None else data
    payload = {"api_toml_sha256": hashlib.sha256(data).hexdigest(), "table": _parse_toml(data)}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n"


def cache_dir() -> Path:
    """Per-user cache directory (``$KUMO_AUDIT_CACHE_DIR``, else XDG cache)."""
    explicit = os.environ.get("KUMO_AUDIT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kumo-audit"


def _cached_table(data: bytes, digest: str) -> dict[str, Any]:
    """The parsed table from the marshal cache, (re)writing the cache on a miss.

    Cache problems (unwritable directory, corrupt file) fall back to parsing the TOML.
    """
    path = cache_dir() / f"api-{digest[:24]}-{sys.implementation.cache_tag}.marshal"
    try:
        raw = marshal.loads(path.read_bytes())
        if isinstance(raw, dict) and isinstance(raw.get("meta"), dict):
            return raw
    except (OSError, ValueError, EOFError, TypeError):
        pass
    raw = _parse_toml(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(marshal.dumps(raw))
        os.replace(tmp, path)
    except (OSError, ValueError):
        pass
    return raw


def api_bytes() -> bytes:
    """The raw bytes of the packaged ``api.toml`` (package data)."""
    beside = Path(__file__).with_name("api.toml")
    if beside.is_file():
        return beside.read_bytes()
    from importlib import resources  # zipped or otherwise non-file installs

    return resources.files(__package__).joinpath("api.toml").read_bytes()


@functools.cache
def load_api(release: str | None = None) -> KumoApi:
    """The packaged KumoMTA API table (loaded once per process).

    Without ``release``: the newest release, as ``api.toml`` describes it. With one (a tag, its
    date, or ``main``): that release's view, derived through the generated version table
    (``auditor.kumo.versions``); an unknown name raises ``ConfigError``.
    """
    if release is None:
        return parse_api(api_bytes(), use_cache=True)
    from auditor.kumo.versions import load_versions

    return derive_api(load_api(), load_versions().resolve(release))


def derive_api(base: KumoApi, release: str) -> KumoApi:
    """The API table as ``release`` has it, from the newest table ``base``."""
    from dataclasses import replace

    from auditor.kumo.versions import load_overlay, load_versions

    table = load_versions()
    if release == table.newest:
        return base
    overlay = load_overlay()
    functions: dict[str, FunctionSpec] = {}
    for name, spec in base.functions.items():
        entry = table.functions.get(name)
        if entry is None:
            functions[name] = spec
            continue
        if not table.present(entry, release):
            continue
        ranges = entry.get("params", {})
        params = {
            p: ps
            for p, ps in spec.params.items()
            if p not in ranges or table.present(ranges[p], release)
        }
        strict = spec.strict and (
            not entry.get("strict_since") or table.at_or_before(entry["strict_since"], release)
        )
        deprecated_by = spec.deprecated_by
        if (
            deprecated_by
            and entry.get("deprecated")
            and not table.at_or_before(entry["deprecated"], release)
        ):
            deprecated_by = ""
        functions[name] = replace(
            spec,
            params=MappingProxyType(params),
            strict=strict,
            deprecated_by=deprecated_by,
        )
    for name, entry in table.functions.items():
        if name in functions or not table.present(entry, release):
            continue
        extra = overlay.get("functions", {}).get(name, {})
        params = {
            p: ParamSpec(name=p, type="any")
            for p, r in entry.get("params", {}).items()
            if table.present(r, release)
        }
        functions[name] = FunctionSpec(
            name=name,
            where=extra.get("where", "anywhere"),
            since=entry.get("since", ""),
            doc=entry.get("doc", ""),
            strict=False,
            blocking=False,
            deprecated_by="",
            restart_scope=extra.get("restart_scope", ""),
            table_arg=1,
            params=MappingProxyType(params),
            source=entry.get("source", ""),
        )
    events: dict[str, EventSpec] = {}
    for name, spec in base.events.items():
        entry = table.events.get(name)
        if entry is None:
            events[name] = spec
        elif table.present(entry, release):
            if entry.get("handlers"):
                multi = table.at_or_before(entry.get("multiple_since", ""), release)
            else:
                multi = spec.handlers == "multiple"
            events[name] = replace(
                spec, obsolete=False, replaced_by="", handlers="multiple" if multi else "single"
            )
        elif spec.obsolete:
            events[name] = spec
    for name, entry in table.events.items():
        if name not in events and table.present(entry, release):
            events[name] = EventSpec(
                name=name,
                handlers="multiple"
                if table.at_or_before(entry.get("multiple_since", ""), release)
                else "single",
                phase=overlay.get("events", {}).get(name, {}).get("phase", "realtime"),
                params=(),
                since=entry.get("since", ""),
                doc="",
                obsolete=False,
                replaced_by="",
            )
    helpers = {}
    for key, spec in base.helpers.items():
        entry = table.helpers.get(key)
        if entry is None:
            helpers[key] = spec
            continue
        if not table.present(entry, release):
            continue
        members = entry.get("members", {})

        def keep(names: tuple[str, ...], members: dict[str, Any] = members) -> tuple[str, ...]:
            return tuple(m for m in names if m not in members or table.present(members[m], release))

        removed = {
            m: why
            for m, why in spec.removed_members.items()
            if m not in members or not table.present(members[m], release)
        }
        revived = tuple(m for m in spec.removed_members if m not in removed)
        helpers[key] = replace(
            spec,
            module_members=keep(spec.module_members),
            object_members=keep(spec.object_members) + revived,
            removed_members=MappingProxyType(removed),
        )
    return replace(
        base,
        release=release,
        functions=MappingProxyType(functions),
        events=MappingProxyType(events),
        helpers=MappingProxyType(helpers),
        digest=hashlib.sha256(f"{base.digest}:{release}".encode()).hexdigest(),
        event_families=tuple(e for e in events.values() if e.is_family),
        helpers_by_module=MappingProxyType({h.module: h for h in helpers.values()}),
    )


if __name__ == "__main__":
    sys.stdout.write(render_packaged_table())
