"""The fast data-file validator: generated from the pydantic models, and never more lenient."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from auditor.data import fast
from auditor.data.locate import load_located
from auditor.data.schemas import FORMATS
from auditor.data.schemas.fastspec import render_spec
from tests.conftest import ROOT, write_tree
from tests.test_imports import probe

sys.path.insert(0, str(ROOT / "bench"))
from gen_policy import generate

KINDS = {
    "shaping.toml": "shaping",
    "shaping-extra.json": "shaping",
    "shaping-overrides.json": "shaping",
    "queues.toml": "queues",
    "sources.toml": "sources",
    "listener_domains.toml": "listener_domains",
    "dkim_data.toml": "dkim",
}


def pydantic_accepts(value: Any, kind: str) -> bool:
    try:
        FORMATS[kind].model.model_validate(value)
    except (ValidationError, RecursionError):
        return False
    return True


def documents(tmp: Path) -> list[tuple[str, str, Any]]:
    generate(tmp / "gen", 2_000)
    found = []
    for root in (tmp / "gen", ROOT / "examples", ROOT / "tests" / "fixtures"):
        for path in sorted(root.rglob("*")):
            kind = KINDS.get(path.name)
            if kind is None:
                continue
            try:
                located = load_located(path.read_text(encoding="utf-8"), path.suffix[1:])
            except Exception:
                continue
            found.append((str(path), kind, located.value))
    return found


def test_spec_file_is_current() -> None:
    assert fast.SPEC_FILE.read_text(encoding="utf-8") == render_spec(), (
        "regenerate: python -m auditor.data.schemas.fastspec > auditor/data/fast_spec.json"
    )


def test_fast_and_pydantic_agree_on_every_sample(tmp_path: Path) -> None:
    samples = documents(tmp_path)
    assert len(samples) >= 12
    proven = 0
    for path, kind, value in samples:
        accepted = pydantic_accepts(value, kind)
        if fast.proven_valid(value, kind):
            proven += 1
            assert accepted, f"{path}: proven valid, but pydantic rejects it"
        if "/gen/" in path:
            assert accepted and fast.proven_valid(value, kind), path  # the common case is fast
    assert proven >= 6


_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "10/s", "5m", "Immediate", "Suspend", "10.0.0.0/8", "x", "Required"]),
    st.lists(st.sampled_from(["a", "10.0.0.1", "Suspend"]), max_size=2),
    st.dictionaries(st.sampled_from(["Threshold", "name", "value", "x"]), st.text(max_size=4)),
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


@pytest.fixture(scope="module")
def valid_samples(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Any]]:
    samples = documents(tmp_path_factory.mktemp("docs"))
    return [(kind, value) for _, kind, value in samples if fast.proven_valid(value, kind)]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_mutated_file_is_never_proven_valid_when_pydantic_rejects_it(
    valid_samples: list[tuple[str, Any]], data: st.DataObject
) -> None:
    kind, original = data.draw(st.sampled_from(valid_samples))
    value = copy.deepcopy(original)
    path = data.draw(st.sampled_from(_paths(value)))
    action = data.draw(st.sampled_from(["replace", "add", "delete"]))
    parent: Any = value
    for part in path[:-1]:
        parent = parent[part]
    if not path:
        value = data.draw(_LEAVES) if action == "replace" else value
    elif action == "replace":
        parent[path[-1]] = data.draw(_LEAVES)
    elif action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == "add" and isinstance(parent[path[-1]], dict):
        key = data.draw(st.sampled_from(["selector", "typo", "weight", "connection_limit", "x"]))
        parent[path[-1]][key] = data.draw(_LEAVES)
    if fast.proven_valid(value, kind):
        assert pydantic_accepts(value, kind), (kind, path, action)


def test_typical_repo_with_valid_data_files_never_loads_pydantic(tmp_path: Path) -> None:
    generate(tmp_path / "p", 300)
    assert probe("check", str(tmp_path / "p"), cache=tmp_path / "cache") == ""


def test_an_invalid_data_file_still_gets_exact_findings(tmp_path: Path) -> None:
    from tests.conftest import audit

    write_tree(
        tmp_path,
        {
            "init.lua": "local dkim_sign = require 'policy-extras.dkim_sign'\n"
            "local s = dkim_sign:setup { '/opt/kumomta/etc/policy/dkim_data.toml' }\n",
            "dkim_data.toml": '[domain."example.com"]\nselectr = "s1"\nalgo = "md5"\n',
        },
    )
    codes = sorted(f.code for f in audit(tmp_path).findings if f.code.startswith("E3"))
    assert codes == ["E301", "E302"]
