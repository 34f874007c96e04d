#!/usr/bin/env python3
"""Generate ``auditor/kumo/api_versions.json`` from a KumoMTA Git repository.

For every release tag (``YYYY.MM.DD-<hash>``) the script reads, with Git plumbing only (a bare
repository is fine):

* the Lua functions registered in the Rust sources (``get_or_create_module`` /
  ``get_or_create_sub_module`` tables and their ``.set("name", ...)`` calls) and documented under
  ``docs/reference/kumo*/``;
* the parameter struct a function deserialises its table into, the struct's fields (following
  ``#[serde(flatten)]`` and ``rename``), whether it denies unknown fields, and the defaults that
  can be read from ``default = "fn"`` attributes (integers, booleans, strings, durations);
* the events (``declare_event!`` declarations, ``CallbackSignature::new*`` and literal
  ``call_callback("name", ...)`` calls, and ``docs/reference/events``) with single/multiple;
* the policy-extras helpers (``assets/policy-extras/*.lua``): their members and the keys of the
  ``typing`` records that describe their data files.

It then folds the per-release facts into one table in which every function, parameter, event,
helper member and data-file key carries ``since`` / ``removed`` (and ``deprecated`` where the
documentation marks it so; parameter defaults carry ``default_changed``). Only facts are written:
names, release tags, types of change and normalised default values; no text or code is copied.

Usage: ``python scripts/gen_api_versions.py --repo PATH [--out FILE] [--tags-from DATE]``.
The output is deterministic (sorted keys, no timestamps).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1
MAINLINE = "main"  # the unreleased mainline, after every tag
TAG_RE = re.compile(r"^\d{4}\.\d{2}\.\d{2}-[0-9a-f]{8}$")

_MODULE_VAR = re.compile(
    r"let\s+(?:mut\s+)?(\w+)\s*=\s*(?:config::|::config::|crate::)?"
    r"get_or_create_(sub_)?module\(\s*(?:&?\w+)\s*,\s*\"([\w.]+)\"\s*\)"
)
_SET_CALL = re.compile(r"\b(\w+)\s*\.set\(\s*\"(\w+)\"\s*,")
_STRUCT_HINTS = (
    re.compile(r"SerdeWrappedValue<\s*(\w+)\s*>"),
    re.compile(r"from_lua_value::<\s*(\w+)\s*>"),
    re.compile(r"from_value::<\s*(\w+)\s*>"),
    re.compile(r"let\s+(?:mut\s+)?\w+\s*:\s*(\w+)\s*=\s*(?:config::)?from_lua_value\("),
    re.compile(r"let\s+(?:mut\s+)?\w+\s*:\s*(\w+)\s*=\s*lua\.from_value\("),
    re.compile(r"\|\s*\w+\s*,\s*\w+\s*:\s*(\w+)\s*\|"),
)
_STRUCT_DEF = re.compile(
    r"((?:#\[[^\n]*\]\s*)*)pub(?:\([^)]*\))?\s+struct\s+(\w+)(?:<[^>{]*>)?\s*\{"
)
_FN_DEF = re.compile(r"\bfn\s+(\w+)\s*\(\s*\)\s*->\s*[^{]+\{")
_EVENT_DECL = re.compile(r"\b(Single|Multiple)\(\s*\"([\w.*-]+)\"")
_EVENT_SIG = re.compile(
    r"CallbackSignature(?:::<[^;]*?>)?::(new_with_multiple|new)\(\s*\"([\w.-]+)\""
)
_EVENT_CALL = re.compile(r"call_callback(?:::<[^>]*>)?\(\s*\"([\w.-]+)\"")
_LUA_FUNCTION = re.compile(r"^function\s+\w+[.:](\w+)\s*\(", re.M)
_LUA_FIELD_FN = re.compile(r"^\s+(\w+)\s*=\s*function\s*\(", re.M)
_LUA_RECORD = re.compile(r"(?:typing\.record|\bRecord)\(\s*['\"](\w+)['\"]\s*,\s*\{")
_LUA_KEY = re.compile(r"^\s*(?:(\w+)|\[\s*['\"]([\w-]+)['\"]\s*\])\s*=", re.M)
_DOC_LINK = re.compile(r"\]\(\.\./(kumo(?:\.\w+)?)/(\w+)\.md")


class GitRepo:
    """Read-only access to a (possibly bare) Git repository through one ``cat-file --batch``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._batch: subprocess.Popen[bytes] | None = None

    def run(self, *args: str) -> str:
        out = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, check=True)
        return out.stdout.decode("utf-8", "replace")

    def tags(self) -> list[str]:
        return sorted(t for t in self.run("tag", "--list").split() if TAG_RE.match(t))

    def commit(self, rev: str) -> str:
        return self.run("rev-parse", f"{rev}^{{commit}}").strip()

    def files(self, rev: str) -> dict[str, str]:
        """path -> blob id for every file of ``rev``."""
        listing = self.run("ls-tree", "-r", "--full-tree", rev)
        result = {}
        for line in listing.splitlines():
            meta, _, path = line.partition("\t")
            parts = meta.split()
            if len(parts) == 3 and parts[1] == "blob":
                result[path] = parts[2]
        return result

    def blob(self, oid: str) -> str | None:
        """The text of a blob, or None when the object is missing from the repository."""
        if self._batch is None:
            self._batch = subprocess.Popen(
                ["git", "-C", str(self.path), "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        assert self._batch.stdin is not None and self._batch.stdout is not None
        self._batch.stdin.write(oid.encode() + b"\n")
        self._batch.stdin.flush()
        header = self._batch.stdout.readline().split()
        if len(header) < 3 or header[1] == b"missing":
            return None
        size = int(header[2])
        data = self._batch.stdout.read(size + 1)[:size]
        return data.decode("utf-8", "replace")

    def close(self) -> None:
        if self._batch is not None:
            assert self._batch.stdin is not None
            self._batch.stdin.close()
            self._batch.wait()
            self._batch = None


# ----- one release ------------------------------------------------------------------------------


@dataclass
class Struct:
    name: str
    strict: bool
    fields: dict[str, str]  # name -> default ("" when none is known)
    flatten: list[str]


@dataclass
class Release:
    tag: str
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)  # name -> single/multiple/""
    doc_events: set[str] = field(default_factory=set)
    helpers: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    structs: dict[str, Struct] = field(default_factory=dict)


def _matching(text: str, start: int, open_: str = "{", close: str = "}") -> int:
    """Index just after the bracket closing the one at ``start``."""
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def _split_top(body: str) -> list[str]:
    """Split a struct body on commas outside brackets."""
    parts, depth, cur = [], 0, []
    for ch in body:
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


_INT = re.compile(r"^-?[\d_]+(?:u\d+|i\d+|usize|isize)?$")


def _eval_int(expr: str) -> int | None:
    expr = expr.replace("_", "").strip()
    expr = re.sub(r"(\d+)(?:u\d+|i\d+|usize|isize)", r"\1", expr)
    if not re.fullmatch(r"[\d\s*+()]+", expr):
        return None
    try:
        return int(eval(expr, {"__builtins__": {}}, {}))  # digits and * + ( ) only
    except (SyntaxError, ValueError, TypeError):
        return None


def normalize_default(body: str) -> str:
    """A default function's body as a canonical value, or "" when it is not a plain constant."""
    expr = re.sub(r"\s+", " ", _strip_comments(body)).strip().rstrip(";").strip()
    some = re.fullmatch(r"Some\((.*)\)", expr)
    if some:
        expr = some.group(1).strip()
    for unit, suffix in (("secs", "s"), ("millis", "ms"), ("mins", "m"), ("hours", "h")):
        m = re.fullmatch(rf"(?:std::time::)?Duration::from_{unit}\((.*)\)", expr)
        if m:
            value = _eval_int(m.group(1))
            return f"{value}{suffix}" if value is not None else ""
    if expr in ("true", "false"):
        return expr
    if _INT.match(expr.replace(" ", "")) or re.fullmatch(r"[\d_\s*+()]+", expr):
        value = _eval_int(expr)
        return str(value) if value is not None else ""
    m = re.fullmatch(r"\"([^\"\\]*)\"(?:\.to_string\(\)|\.to_owned\(\)|\.into\(\))?", expr)
    if m:
        return json.dumps(m.group(1))
    return ""


_IMPL_DEFAULT = re.compile(r"impl\s+Default\s+for\s+(\w+)\s*\{")


def _literal_defaults(text: str) -> dict[str, str]:
    """field -> value from the struct literals of this file's ``impl Default`` blocks."""
    result: dict[str, str] = {}
    for m in _IMPL_DEFAULT.finditer(text):
        end = _matching(text, m.end() - 1)
        block = text[m.end() : end - 1]
        lit = next(
            (
                x
                for x in re.finditer(rf"\b(?:Self|{re.escape(m.group(1))})\s*\{{", block)
                if not block[: x.start()].rstrip().endswith("->")
            ),
            None,
        )
        if not lit:
            continue
        body = _strip_comments(block[lit.end() : _matching(block, lit.end() - 1) - 1])
        for part in _split_top(body):
            fm = re.match(r"\s*(\w+)\s*:\s*(.+)$", part, re.S)
            if fm:
                value = normalize_default(fm.group(2))
                if value:
                    result.setdefault(fm.group(1), value)
    return result


def _parse_structs(text: str, defaults: dict[str, str]) -> dict[str, Struct]:
    found = {}
    literal = _literal_defaults(text)
    for m in _STRUCT_DEF.finditer(text):
        attrs, name = m.group(1), m.group(2)
        if "Deserialize" not in attrs and "deserialize" not in attrs:
            continue
        end = _matching(text, m.end() - 1)
        body = _strip_comments(text[m.end() : end - 1])
        fields: dict[str, str] = {}
        flatten: list[str] = []
        for part in _split_top(body):
            chunk = part.strip()
            attrs_f = " ".join(re.findall(r"#\[(.*?)\]\s*(?=#|pub|\w)", chunk, re.S))
            decl = re.sub(r"#\[.*?\]\s*(?=#|pub|\w)", "", chunk, flags=re.S).strip()
            fm = re.match(r"(?:pub(?:\([^)]*\))?\s+)?(r#)?(\w+)\s*:\s*(.+)$", decl, re.S)
            if not fm:
                continue
            fname, ftype = fm.group(2), re.sub(r"\s+", "", fm.group(3))
            if "skip_deserializing" in attrs_f or re.search(r"\bskip\b", attrs_f):
                continue
            if "flatten" in attrs_f:
                flatten.append(re.sub(r"^(?:Option|Box)<(.*)>$", r"\1", ftype))
                continue
            rename = re.search(r"rename\s*=\s*\"([\w-]+)\"", attrs_f)
            key = rename.group(1) if rename else fname
            default = ""
            dm = re.search(r"default\s*=\s*\"([\w:]+)\"", attrs_f)
            if dm:
                default = defaults.get(dm.group(1).split("::")[-1], "")
            fields[key] = default or literal.get(fname, "")
        found[name] = Struct(name, "deny_unknown_fields" in attrs, fields, flatten)
    return found


def _default_fns(text: str) -> dict[str, str]:
    result = {}
    for m in _FN_DEF.finditer(text):
        end = _matching(text, m.end() - 1)
        body = text[m.end() : end - 1]
        if len(body) < 200:
            value = normalize_default(body)
            if value:
                result[m.group(1)] = value
    return result


def _registrations(text: str) -> list[tuple[str, str]]:
    """(full function name, registration body) for every ``module.set("name", ...)``."""
    modules = {}
    for m in _MODULE_VAR.finditer(text):
        modules[m.group(1)] = "kumo" if not m.group(2) else f"kumo.{m.group(3)}"
        if not m.group(2) and m.group(3) != "kumo":
            modules[m.group(1)] = m.group(3)
    if not modules:
        return []
    calls = [m for m in _SET_CALL.finditer(text) if m.group(1) in modules]
    result = []
    for i, m in enumerate(calls):
        end = calls[i + 1].start() if i + 1 < len(calls) else min(len(text), m.end() + 4000)
        result.append((f"{modules[m.group(1)]}.{m.group(2)}", text[m.end() : end]))
    return result


def _doc_function(path: str) -> tuple[str, str] | None:
    """(function, parameter or "") documented by a ``docs/reference`` page, if any."""
    m = re.match(r"docs/reference/(kumo(?:\.[\w.]+)?)/(\w+)(?:/(\w+))?\.md$", path)
    if not m:
        return None
    module, name, sub = m.groups()
    if name in ("index", "_index") and sub is None:
        return None
    if sub is None:
        return f"{module}.{name}", ""
    if sub in ("index", "_index"):
        return f"{module}.{name}", ""
    return f"{module}.{name}", sub


def read_release(repo: GitRepo, tag: str) -> Release:
    files = repo.files(tag)
    rel = Release(tag)
    rust = {p: o for p, o in files.items() if p.startswith("crates/") and p.endswith(".rs")}
    texts: dict[str, str] = {}
    defaults: dict[str, str] = {}
    for path in sorted(rust):
        text = repo.blob(rust[path])
        if text is None:
            continue
        texts[path] = text
        defaults.update(_default_fns(text))
    for text in texts.values():
        rel.structs.update(_parse_structs(text, defaults))
    for path, text in texts.items():
        for name, body in _registrations(text):
            entry = rel.functions.setdefault(name, {"source": path, "doc": "", "struct": ""})
            if not entry["struct"]:
                for hint in _STRUCT_HINTS:
                    sm = hint.search(body)
                    if sm and sm.group(1) in rel.structs:
                        entry["struct"] = sm.group(1)
                        break
        for m in _EVENT_DECL.finditer(text):
            if "declare_event" in text[max(0, m.start() - 200) : m.start()]:
                rel.events[m.group(2)] = "multiple" if m.group(1) == "Multiple" else "single"
        for m in _EVENT_SIG.finditer(text):
            rel.events.setdefault(m.group(2), "multiple" if "multiple" in m.group(1) else "single")
        for m in _EVENT_CALL.finditer(text):
            rel.events.setdefault(m.group(1), "")
    for path in sorted(files):
        doc = _doc_function(path)
        if doc:
            name, param = doc
            entry = rel.functions.setdefault(name, {"source": "", "doc": "", "struct": ""})
            if not param:
                entry["doc"] = path
                text = repo.blob(files[path]) or ""
                front = text.split("\n---", 1)[0] if text.startswith("---") else ""
                if re.search(r"^status:\s*deprecated\s*$", front, re.M):
                    entry["deprecated"] = True
                    links = [f"{mod}.{n}" for mod, n in _DOC_LINK.findall(text) if n != "index"]
                    moved = re.findall(r"\]\(\.\./(kumo\.\w+)/index\.md", text)
                    entry["links"] = links + [f"{mod}.{name.rsplit('.', 1)[1]}" for mod in moved]
            else:
                entry.setdefault("doc_params", set()).add(param)
        em = re.match(r"docs/reference/events/([\w.-]+)\.md$", path)
        if em and em.group(1) not in ("index", "_index"):
            rel.doc_events.add(em.group(1))
        hm = re.match(r"assets/policy-extras/(\w+)\.lua$", path)
        if hm:
            text = repo.blob(files[path]) or ""
            rel.helpers[hm.group(1)] = _helper_facts(text)
    return rel


def _helper_facts(text: str) -> dict[str, set[str]]:
    members = set(_LUA_FUNCTION.findall(text)) | set(_LUA_FIELD_FN.findall(text))
    keys: set[str] = set()
    for m in _LUA_RECORD.finditer(text):
        end = _matching(text, m.end() - 1)
        body = text[m.end() : end - 1]
        depth, top = 0, []
        for line in body.splitlines():
            if depth == 0:
                top.append(line)
            depth += line.count("{") + line.count("(") - line.count("}") - line.count(")")
        for km in _LUA_KEY.finditer("\n".join(top)):
            key = km.group(1) or km.group(2)
            if key and not key.startswith("_"):
                keys.add(f"{m.group(1)}.{key}")
    return {"members": members, "data_keys": keys}


# ----- folding releases into ranges -------------------------------------------------------------


def _ranges(tags: list[str], present: list[bool]) -> dict[str, str]:
    """since/removed of a fact present in some releases (the last appearance range wins)."""
    since = removed = ""
    for tag, here in zip(tags, present, strict=True):
        if here and (not since or removed):
            since, removed = tag, ""
        elif not here and since and not removed:
            removed = tag
    return {"since": since, "removed": removed}


def _canonical(value: str) -> str:
    """Defaults compare equal across a change of unit spelling (``300`` seconds vs ``300s``)."""
    return value[:-1] if re.fullmatch(r"\d+s", value) else value


def _first(tags: list[str], flags: list[bool]) -> str:
    for tag, flag in zip(tags, flags, strict=True):
        if flag:
            return tag
    return ""


def struct_fields(rel: Release, name: str, seen: frozenset[str] = frozenset()) -> dict[str, str]:
    struct = rel.structs.get(name)
    if struct is None or name in seen:
        return {}
    fields = dict(struct.fields)
    for inner in struct.flatten:
        for key, value in struct_fields(rel, inner, seen | {name}).items():
            fields.setdefault(key, value)
    return fields


def fold(releases: list[Release]) -> dict[str, Any]:
    tags = [r.tag for r in releases]
    out: dict[str, Any] = {"format": FORMAT, "releases": tags}

    functions: dict[str, Any] = {}
    for name in sorted({n for r in releases for n in r.functions}):
        entries = [r.functions.get(name) for r in releases]
        info = _ranges(tags, [e is not None for e in entries])
        info["deprecated"] = _first(tags, [bool(e and e.get("deprecated")) for e in entries])
        last = next(e for e in reversed(entries) if e is not None)
        info["source"] = last["source"]
        info["doc"] = last["doc"]
        if info["deprecated"]:
            links = [x for x in last.get("links", []) if x != name]
            info["replacement"] = links[0] if links else ""
        # parameters: struct fields and per-parameter doc pages
        per_release: list[dict[str, str] | None] = []
        strict_flags = []
        for rel, e in zip(releases, entries, strict=True):
            if e is None:
                per_release.append(None)
                strict_flags.append(False)
                continue
            params = struct_fields(rel, e["struct"]) if e["struct"] else {}
            for p in e.get("doc_params", ()):
                params.setdefault(p, "")
            per_release.append(params)
            st = rel.structs.get(e["struct"]) if e["struct"] else None
            strict_flags.append(bool(st and st.strict))
        info["struct"] = last["struct"]
        info["strict_since"] = _first(tags, strict_flags) if strict_flags[-1] else ""
        params_out = {}
        for pname in sorted({p for pr in per_release if pr for p in pr}):
            flags = [bool(pr is not None and pname in pr) for pr in per_release]
            pinfo = _ranges(tags, flags)
            changes, prev = [], None
            for tag, pr in zip(tags, per_release, strict=True):
                if pr is None or pname not in pr:
                    continue
                value = pr[pname]
                if value and prev and _canonical(value) != _canonical(prev):
                    changes.append({"release": tag, "from": prev, "to": value})
                prev = value or prev
            pinfo["default"] = per_release[-1].get(pname, "") if per_release[-1] else ""
            if changes:
                pinfo["default_changed"] = changes
            params_out[pname] = pinfo
        if params_out:
            info["params"] = params_out
        functions[name] = info
    out["functions"] = functions

    # An event exists where the Rust sources dispatch it; the reference pages count only for
    # events no release's sources show (a page can describe an event that is not fired yet).
    events = {}
    in_sources = {n for r in releases for n in r.events}
    for name in sorted(in_sources | {n for r in releases for n in r.doc_events}):
        kinds = [r.events.get(name) for r in releases]
        if name in in_sources:
            present = [k is not None for k in kinds]
        else:
            present = [name in r.doc_events for r in releases]
        info = _ranges(tags, present)
        known = [k for k in kinds if k]
        info["handlers"] = known[-1] if known else ""
        info["multiple_since"] = _first(tags, [k == "multiple" for k in kinds])
        events[name] = info
    out["events"] = events

    helpers = {}
    for name in sorted({n for r in releases for n in r.helpers}):
        facts = [r.helpers.get(name) for r in releases]
        info: dict[str, Any] = _ranges(tags, [f is not None for f in facts])
        for kind in ("members", "data_keys"):
            items = sorted({x for f in facts if f for x in f[kind]})
            info[kind] = {
                item: _ranges(tags, [bool(f and item in f[kind]) for f in facts]) for item in items
            }
        helpers[name] = info
    out["helpers"] = helpers
    return out


def generate(repo_path: Path, tags_from: str = "", mainline: str = "HEAD") -> dict[str, Any]:
    """The folded table of every release tag (from ``tags_from``) and, unless ``mainline`` is
    empty, the unreleased mainline as a last release named ``main``."""
    repo = GitRepo(repo_path)
    try:
        tags = [t for t in repo.tags() if t >= tags_from]
        if not tags:
            raise SystemExit(f"no release tags (YYYY.MM.DD-hash) in {repo_path}")
        releases = []
        for tag in tags:
            print(f"reading {tag}", file=sys.stderr)
            releases.append(read_release(repo, tag))
        commits = {"tags": repo.commit(tags[-1])}
        if mainline:
            head = repo.commit(mainline)
            if head != commits["tags"]:
                main = read_release(repo, head)
                main.tag = MAINLINE
                releases.append(main)
                commits["main"] = head
        table = fold(releases)
        table["newest_tag_commit"] = commits["tags"]
        table["mainline_commit"] = commits.get("main", "")
        return table
    finally:
        repo.close()


def dumps(table: dict[str, Any]) -> str:
    return json.dumps(table, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, type=Path, help="KumoMTA git repository")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "auditor/kumo/api_versions.json",
    )
    parser.add_argument("--tags-from", default="", help="ignore tags older than this")
    parser.add_argument(
        "--mainline",
        default="HEAD",
        help="revision read as the unreleased mainline (release `main`); '' to skip it",
    )
    args = parser.parse_args(argv)
    table = generate(args.repo, args.tags_from, args.mainline)
    args.out.write_text(dumps(table), encoding="utf-8")
    print(
        f"{len(table['releases'])} releases, {len(table['functions'])} functions, "
        f"{len(table['events'])} events, {len(table['helpers'])} helpers -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
