"""The policy model: every Lua file the policy loads, what it registers and calls, and in which context.

Built from a snapshot and an entry file. `require` is resolved through KumoMTA's package.path mapped
into the tree; each function gets the set of *contexts* it runs in: ``"file"`` (the policy's top level,
run again for every new Lua context) or an event name (it runs inside that event's handler), following
literal calls, requires and memoized functions to a fixed point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import field

from auditor.core.findings import Finding, Span
from auditor.core.record import dataclass
from auditor.kumo.api import HelperSpec, KumoApi
from auditor.kumo.paths import PACKAGE_PATH, PathMap
from auditor.lua.facts import FILE_LEVEL, CallFact, FieldPath, FileFacts
from auditor.lua.literal import Lit, Table, Value

FILE = "file"  # context: the policy's top level

Contexts = frozenset[str]


@dataclass(slots=True)
class LuaModule:
    """One Lua file of the policy, with its facts and text."""

    path: str  # tree-relative
    name: str | None  # module name it was required as; None for the entry file
    facts: FileFacts
    text: str


@dataclasses.dataclass(slots=True)
class CallSite:
    """A call in a module, with the contexts (file level, handlers) it runs in."""

    module: str
    call: CallFact
    contexts: Contexts

    @property
    def span(self) -> Span:
        return self.call.span

    def arg(self, index: int) -> Value | None:
        return self.call.args[index] if index < len(self.call.args) else None

    def table_arg(self, index: int = 0) -> Table | None:
        value = self.arg(index)
        return value if isinstance(value, Table) else None

    def str_arg(self, index: int = 0) -> str | None:
        value = self.arg(index)
        return value.value if isinstance(value, Lit) and isinstance(value.value, str) else None


@dataclass(slots=True)
class Handler:
    """One handler registration for an event, by the policy (`kumo.on`) or by a helper's setup."""

    event: str
    module: str
    span: Span  # the registering call
    event_span: Span  # the event name argument (or the call for helpers)
    contexts: Contexts  # where the registration itself runs
    origin: str  # "policy" or "helper:<key>"
    function: tuple[str, int] | None = None  # (module path, function id) when defined in the policy
    ref: FieldPath | None = None


@dataclass(slots=True)
class DataRef:
    """A data file the policy loads."""

    written: str  # the path as written in the policy
    tree_path: str | None  # where it is in the audited tree; None when outside every mapped prefix
    module: str
    span: Span
    data_format: str  # helper data format ("shaping", "queues", ...), or "" for plain loads
    loader: str  # e.g. "sources:setup", "kumo.toml_load", "shaping default"
    contexts: Contexts
    implicit: bool = False  # loaded without being named (shaping's bundled defaults)


@dataclass(slots=True)
class HelperSetup:
    """A policy-extras helper's setup call and the data files it loads."""

    helper: HelperSpec
    method: str
    site: CallSite
    data: list[DataRef] = field(default_factory=list)

    @property
    def options(self) -> Table | None:
        return self.site.table_arg(0)


@dataclass(slots=True)
class RequireEdge:
    """One `require` and what it resolved to."""

    module: str  # requiring file
    name: str  # module name
    span: Span
    contexts: Contexts
    target: str | None  # tree path when resolved inside the tree
    helper: HelperSpec | None


@dataclass(slots=True)
class GlobalSite:
    """A global assignment in a module, with its contexts."""

    module: str
    name: str
    span: Span
    contexts: Contexts
    func: int
    is_function: bool


@dataclass
class PolicyModel:
    """The policy as the rules see it: modules, calls, handlers, helpers and data."""

    entry: str
    path_map: PathMap
    api: KumoApi
    modules: dict[str, LuaModule] = field(default_factory=dict)
    calls: list[CallSite] = field(default_factory=list)
    handlers: list[Handler] = field(default_factory=list)
    helper_setups: list[HelperSetup] = field(default_factory=list)
    requires: list[RequireEdge] = field(default_factory=list)
    data_refs: list[DataRef] = field(default_factory=list)
    mode: str = "policy"  # "policy", "module" (a module or snippet audited alone), "data:<helper>"
    globals: list[GlobalSite] = field(default_factory=list)
    load_findings: list[Finding] = field(default_factory=list)
    function_contexts: dict[tuple[str, int], Contexts] = field(default_factory=dict)

    def site_at(self, module: str, span: Span) -> CallSite | None:
        """The call site of a module whose whole call is at `span` (indexed on first use)."""
        index = self.__dict__.get("_site_index")
        if index is None:
            index = {(c.module, c.call.span): c for c in self.calls}
            self.__dict__["_site_index"] = index
        return index.get((module, span))

    def sites_of(self, *names: str) -> list[CallSite]:
        """Calls of the dotted names, in name order (the calls are indexed by callee on first use)."""
        index = self.__dict__.get("_callee_index")
        if index is None:
            index = {}
            for site in self.calls:
                index.setdefault(site.call.callee, []).append(site)
            self.__dict__["_callee_index"] = index
        return [site for name in names for site in index.get(tuple(name.split(".")), ())]

    def calls_to(self, *names: str) -> Iterator[CallSite]:
        """Calls whose callee is one of the dotted names (e.g. ``kumo.start_esmtp_listener``)."""
        wanted = {tuple(n.split(".")) for n in names}
        for site in self.calls:
            if site.call.callee in wanted:
                yield site

    def kumo_calls(self) -> Iterator[tuple[str, CallSite]]:
        """Every call of a `kumo.*` function, with its dotted name."""
        for site in self.calls:
            callee = site.call.callee
            if (
                callee
                and callee[0] == "kumo"
                and all(isinstance(p, str) and p != "()" for p in callee)
            ):
                yield ".".join(callee), site  # type: ignore[arg-type]

    def handlers_for(self, event: str) -> list[Handler]:
        return [h for h in self.handlers if h.event == event]

    def contexts_of(self, module: str, func: int) -> Contexts:
        if func == FILE_LEVEL:
            return self.function_contexts.get((module, FILE_LEVEL), frozenset())
        return self.function_contexts.get((module, func), frozenset())

    def setups_of(self, helper_key: str) -> list[HelperSetup]:
        return [s for s in self.helper_setups if s.helper.key == helper_key]

    def lua_files(self) -> list[str]:
        return sorted(self.modules)


# ----- construction --------------------------------------------------------------------------------------


class ModelBuilder:
    """Assembles a PolicyModel from per-file facts; `load_file` supplies facts (and reports problems)."""

    def __init__(self, entry: str, path_map: PathMap, api: KumoApi, load_file, exists) -> None:  # type: ignore[no-untyped-def]
        self.model = PolicyModel(entry=entry, path_map=path_map, api=api)
        self._load_file = load_file  # (tree_path) -> tuple[FileFacts, str] | None
        self._exists = exists  # (tree_path) -> bool
        self._entry_dir = entry.rsplit("/", 1)[0] if "/" in entry else ""
        self._builtin_modules = builtin_modules(api)

    def build(self) -> PolicyModel:
        self._load_module(self.model.entry, None, ())
        self._resolve_contexts()
        self._collect()
        return self.model

    # --- modules --------------------------------------------------------------------------------------
    def _load_module(self, path: str, name: str | None, chain: tuple[str, ...]) -> None:
        if path in self.model.modules:
            return
        loaded = self._load_file(path)
        if loaded is None:
            return
        facts, text = loaded
        self.model.modules[path] = LuaModule(path, name, facts, text)
        for call in facts.calls:
            if call.callee != ("global", "require") or not call.args:
                continue
            arg = call.args[0]
            if not (isinstance(arg, Lit) and isinstance(arg.value, str)):
                continue
            module_name = arg.value
            target = self.resolve_module(module_name)
            helper = self.model.api.helper_for_module(module_name)
            edge = RequireEdge(path, module_name, call.span, frozenset(), target, helper)
            self.model.requires.append(edge)
            if target is not None:
                if target in chain or target == path:
                    self._report_cycle(path, call, (*chain, path), target)
                    continue
                self._load_module(target, module_name, (*chain, path))

    def _report_cycle(self, path: str, call: CallFact, chain: tuple[str, ...], target: str) -> None:
        from auditor.core.load_codes import REQUIRE_CYCLE

        start = chain.index(target) if target in chain else 0
        loop = " -> ".join((*chain[start:], target))
        self.model.load_findings.append(
            REQUIRE_CYCLE.finding(
                path,
                call.span,
                f"require cycle {loop}: Lua raises 'loop or previous error loading module' when the "
                "policy loads, so no Lua context can be created",
                key=f"cycle:{loop}",
            )
        )

    def resolve_module(self, name: str) -> str | None:
        """Tree path of the module `require(name)` loads, or None (KumoMTA-bundled or not in the tree)."""
        if name == "kumo" or self.model.api.helper_for_module(name) is not None:
            return None
        if name in self._builtin_modules:
            return None  # a module kumod provides itself (sqlite, redis, ...)
        rel = name.replace(".", "/")
        candidates: list[str] = []
        for template in PACKAGE_PATH:
            mapped = self.model.path_map.to_tree(template.replace("?", rel))
            if mapped is not None:
                candidates.append(mapped)
        base = f"{self._entry_dir}/" if self._entry_dir else ""
        candidates += [f"{base}{rel}.lua", f"{base}{rel}/init.lua"]
        for candidate in candidates:
            if self._exists(candidate):
                return candidate
        return None

    # --- contexts -------------------------------------------------------------------------------------
    def _function_key(self, module: str, ref: FieldPath | None) -> tuple[str, int] | None:
        """The policy function a reference denotes, across modules where the reference is literal."""
        if ref is None:
            return None
        if ref[0] == "fn":
            return (module, int(ref[1]))  # type: ignore[arg-type]
        if ref[0] == "memoized":
            return self._function_key(module, ref[1:])
        if ref[0] == "global" and len(ref) == 2:
            for path, mod in self.model.modules.items():
                fid = mod.facts.global_functions.get(str(ref[1]))
                if fid is not None:
                    return (path, fid)
            return None
        if ref[0] == "require" and len(ref) >= 3:
            target = self.resolve_module(str(ref[1]))
            mod = self.model.modules.get(target) if target else None
            if mod is None:
                return None
            if len(ref) == 3:
                wanted = (
                    {f"{mod.facts.returns_table}.{ref[2]}"} if mod.facts.returns_table else set()
                )
                for fn in mod.facts.functions:
                    if fn.name in wanted and fn.parent == FILE_LEVEL:
                        return (target, fn.id)  # type: ignore[return-value]
        return None

    def _resolve_contexts(self) -> None:
        ctx: dict[tuple[str, int], set[str]] = {(self.model.entry, FILE_LEVEL): {FILE}}
        edges: dict[tuple[str, int], set[tuple[str, int]]] = {}

        def add_edge(src: tuple[str, int], dst: tuple[str, int]) -> None:
            edges.setdefault(src, set()).add(dst)

        for path, mod in self.model.modules.items():
            for call in mod.facts.calls:
                src = (path, call.func)
                callee = call.callee
                if callee == ("global", "require") and call.args:
                    arg = call.args[0]
                    if isinstance(arg, Lit) and isinstance(arg.value, str):
                        target = self.resolve_module(arg.value)
                        if target in self.model.modules:
                            add_edge(src, (target, FILE_LEVEL))  # type: ignore[arg-type]
                    continue
                if callee[:2] == ("kumo", "on") and len(call.args) >= 2:
                    event = call.args[0]
                    handler = self._function_key(path, call.arg_refs[1])
                    if isinstance(event, Lit) and isinstance(event.value, str) and handler:
                        ctx.setdefault(handler, set()).add(event.value)
                    continue
                target_fn = self._function_key(path, callee)
                if target_fn is not None:
                    add_edge(src, target_fn)
        # fixed point over the literal call graph
        work = list(ctx)
        while work:
            node = work.pop()
            for dst in edges.get(node, ()):
                before = ctx.setdefault(dst, set())
                new = ctx[node] - before
                if new:
                    before |= new
                    work.append(dst)
        # nested functions that are never called by name still belong to their parent for scope purposes
        # only when they are the parent (no inheritance): leave them unreached.
        self.model.function_contexts = {k: frozenset(v) for k, v in ctx.items()}

    # --- collection -----------------------------------------------------------------------------------
    def _collect(self) -> None:
        model = self.model
        for path, mod in model.modules.items():
            for call in mod.facts.calls:
                contexts = model.contexts_of(path, call.func)
                site = CallSite(path, call, contexts)
                model.calls.append(site)
                self._classify(site)
            for write in mod.facts.globals:
                model.globals.append(
                    GlobalSite(
                        path,
                        write.name,
                        write.span,
                        model.contexts_of(path, write.func),
                        write.func,
                        write.is_function,
                    )
                )
        for edge in model.requires:
            src = model.site_at(edge.module, edge.span)
            edge.contexts = src.contexts if src else frozenset()
            if edge.helper is not None:
                for event in edge.helper.registers_on_require:
                    model.handlers.append(
                        Handler(
                            event,
                            edge.module,
                            edge.span,
                            edge.span,
                            edge.contexts,
                            f"helper:{edge.helper.key}",
                        )
                    )

    def _classify(self, site: CallSite) -> None:
        call = site.call
        callee = call.callee
        if callee[:2] == ("kumo", "on") and len(callee) == 2:
            self._registration(site)
        elif callee[0] == "require" and len(callee) == 3:
            helper = self.model.api.helper_for_module(str(callee[1]))
            if helper is not None and callee[2] in helper.setup_methods:
                self._helper_setup(site, helper, str(callee[2]))
        elif callee in DATA_LOADERS and call.args:
            written = site.str_arg(0)
            if written is not None:
                self._data_ref(site, written, "", ".".join(map(str, callee)))

    def _registration(self, site: CallSite) -> None:
        call = site.call
        event = site.arg(0)
        if not (isinstance(event, Lit) and isinstance(event.value, str)):
            return
        ref = call.arg_refs[1] if len(call.arg_refs) > 1 else None
        self.model.handlers.append(
            Handler(
                event=event.value,
                module=site.module,
                span=call.span,
                event_span=event.span,
                contexts=site.contexts,
                origin="policy",
                function=self._function_key(site.module, ref),
                ref=ref,
            )
        )

    def _helper_setup(self, site: CallSite, helper: HelperSpec, method: str) -> None:
        setup = HelperSetup(helper, method, site)
        self.model.helper_setups.append(setup)
        options = site.table_arg(0)
        registers = list(helper.registers_for(method))
        if helper.key == "queue" and options is not None:
            skip = options.get("skip_queue_config_hook")
            if isinstance(skip, Lit) and skip.value is True:
                registers = [e for e in registers if e != "get_queue_config"]
        for event in registers:
            self.model.handlers.append(
                Handler(
                    event,
                    site.module,
                    site.span,
                    site.call.name_span,
                    site.contexts,
                    f"helper:{helper.key}",
                )
            )
        if not helper.data_format:
            return
        for written, span in self._helper_files(site, helper):
            setup.data.append(
                self._data_ref(site, written, helper.data_format, f"{helper.key}:{method}", span)
            )
        if helper.default_files and not _flag(options, "no_default_files"):
            for default in helper.default_files:
                ref = self._data_ref(
                    site, default, helper.data_format, f"{helper.key} default", implicit=True
                )
                setup.data.append(ref)

    def _helper_files(self, site: CallSite, helper: HelperSpec) -> list[tuple[str, Span]]:
        value = site.arg(0)
        source = helper.files_from
        if source.startswith("option:") and isinstance(value, Table):
            # the list form of setup (e.g. `shaping:setup{...}`) passes files directly
            listed = value.get(source.split(":", 1)[1])
            if listed is None and value.array():
                listed = value
            value = listed
        if isinstance(value, Lit) and isinstance(value.value, str):
            return [(value.value, value.span)]
        if not isinstance(value, Table):
            return []
        return [
            (item.value, item.span)
            for item in value.array()
            if isinstance(item, Lit) and isinstance(item.value, str)
        ]

    def _data_ref(
        self,
        site: CallSite,
        written: str,
        data_format: str,
        loader: str,
        span: Span | None = None,
        *,
        implicit: bool = False,
    ) -> DataRef:
        tree_path = self.model.path_map.to_tree(written, base_dir=self._entry_dir)
        relative = not written.startswith("/")
        if relative and tree_path is not None and not self._exists(tree_path):
            # kumod reads a relative path from its working directory: the audited root is as
            # likely a working directory as the policy's own directory
            from_root = self.model.path_map.to_tree(written)
            if from_root is not None and self._exists(from_root):
                tree_path = from_root
        ref = DataRef(
            written,
            tree_path,
            site.module,
            span or site.span,
            data_format,
            loader,
            site.contexts,
            implicit,
        )
        self.model.data_refs.append(ref)
        return ref


def builtin_modules(api: KumoApi) -> frozenset[str]:
    """Modules kumod itself provides to `require` (`kumo`, `sqlite`, `redis`, ...), from the API table."""
    names: set[str] = set()
    for function in api.functions:
        parts = function.split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return frozenset(names)


DATA_LOADERS = {
    ("kumo", "toml_load"),
    ("kumo", "json_load"),
    ("kumo", "serde", "toml_load"),
    ("kumo", "serde", "json_load"),
    ("kumo", "serde", "yaml_load"),
    ("kumo", "serde", "json5_load"),
}


def _flag(options: Table | None, key: str) -> bool:
    if options is None:
        return False
    value = options.get(key)
    return isinstance(value, Lit) and value.value is True
