"""Change rules (C101-C106) pinned by code, file, line and column, each at the edge of what it reports."""

from __future__ import annotations

from pathlib import Path

from tests.test_change_pins import files
from tests.test_changeset_fields import INIT, SHAPING, change


def column(text: str, line: int, needle: str) -> int:
    return text.splitlines()[line - 1].index(needle) + 1


def found(result, code: str) -> list[tuple[str, int, int]]:  # type: ignore[no-untyped-def]
    return sorted((f.path, f.span.line, f.span.column) for f in result.introduced if f.code == code)


def init_with(old: str, new: str) -> dict[str, str]:
    assert old in INIT, old
    return {"init.lua": INIT.replace(old, new)}


DATA_SPOOL = (
    "kumo.define_spool { name = 'data', path = '/var/spool/kumomta/data', kind = 'RocksDB' }"
)


def test_c101_spool_path_and_kind(tmp_path: Path) -> None:
    moved = change(tmp_path / "p", init_with("'/var/spool/kumomta/data'", "'/data/spool'"))
    head = moved.head.context.texts["init.lua"]
    assert found(moved, "C101") == [("init.lua", 11, column(head, 11, "'/data/spool'"))]
    kind = change(tmp_path / "k", init_with("kind = 'RocksDB' }\n  kumo.define_spool { name = 'meta'",
                                             "kind = 'LocalDisk' }\n  kumo.define_spool { name = 'meta'"))  # fmt: skip
    head = kind.head.context.texts["init.lua"]
    assert found(kind, "C101") == [("init.lua", 11, column(head, 11, "'LocalDisk'"))]
    # no kind is LocalDisk: naming the default is no change, dropping RocksDB is one
    base = {**files(), **init_with(", kind = 'RocksDB' }\n  kumo.define_spool { name = 'meta'",
                                   " }\n  kumo.define_spool { name = 'meta'")}  # fmt: skip
    named = base["init.lua"].replace(
        "path = '/var/spool/kumomta/data' }",
        "path = '/var/spool/kumomta/data', kind = 'LocalDisk' }",
    )
    assert found(change(tmp_path / "d", {"init.lua": named}, base), "C101") == []
    dropped = change(
        tmp_path / "x", init_with(", kind = 'RocksDB' }\n  kumo.define_spool { name = 'meta'",
                                  " }\n  kumo.define_spool { name = 'meta'"))  # fmt: skip
    assert found(dropped, "C101") == [("init.lua", 11, 3)]
    same = change(tmp_path / "s", init_with("0.0.0.0:25", "0.0.0.0:2525"))
    assert found(same, "C101") == []


def test_c101_spool_removed_or_renamed(tmp_path: Path) -> None:
    removed = change(tmp_path / "r", init_with("  " + DATA_SPOOL + "\n", ""))
    assert found(removed, "C101") == [("init.lua", 11, 3)]  # reported at the remaining spool
    renamed = change(tmp_path / "n", init_with("name = 'data'", "name = 'data2'"))
    assert found(renamed, "C101") == [("init.lua", 11, 3)]
    meta = "  kumo.define_spool { name = 'meta', path = '/var/spool/kumomta/meta', kind = 'RocksDB' }\n"
    none_left = change(tmp_path / "0", init_with("  " + DATA_SPOOL + "\n" + meta, ""))
    assert found(none_left, "C101") == []


def test_c102_log_dir(tmp_path: Path) -> None:
    moved = change(tmp_path / "m", init_with("'/var/log/kumomta'", "'/srv/log'"))
    head = moved.head.context.texts["init.lua"]
    assert found(moved, "C102") == [("init.lua", 13, column(head, 13, "'/srv/log'"))]
    no_logs = {
        **files(),
        **init_with("  kumo.configure_local_logs { log_dir = '/var/log/kumomta' }\n", ""),
    }
    added = change(tmp_path / "a", {"init.lua": INIT}, no_logs)
    assert found(added, "C102") == []  # logging configured for the first time: nothing moved


def test_c103_at_each_restart_element(tmp_path: Path) -> None:
    result = change(tmp_path, init_with("0.0.0.0:25", "0.0.0.0:2525"))
    assert found(result, "C103") == [("init.lua", 10, 1)]
    epoch = change(
        tmp_path / "e",
        init_with("queue_helper:apply(msg)", "queue_helper:apply(msg)\n  local x = 1"),
    )
    assert found(epoch, "C103") == []


def test_c104_limits_keys_and_spans(tmp_path: Path) -> None:
    base = {**files(), "shaping.toml": SHAPING + "connection_limit = 10\nmax_age = 10\n"}

    def c104(old: str, new: str, where: str) -> list[tuple[str, int, int]]:
        head = {"shaping.toml": base["shaping.toml"].replace(old, new)}
        return found(change(tmp_path / where, head, base), "C104")

    assert c104("connection_limit = 10", "connection_limit = 20", "limit-2x") == []
    assert c104("connection_limit = 10", "connection_limit = 21", "limit-over") == [
        ("shaping.toml", 6, 20)
    ]
    assert c104("max_age = 10", "max_age = 100", "not-a-rate") == []
    zero = {**files(), "shaping.toml": SHAPING.replace('"10/s"', '"0/s"')}
    from_zero = change(tmp_path / "zero", {"shaping.toml": SHAPING}, zero)
    assert found(from_zero, "C104") == []  # from nothing: no factor
    added = change(
        tmp_path / "added",
        {"shaping.toml": SHAPING + '\n["new.example"]\nmax_message_rate = "1000/s"\n'},
    )
    assert found(added, "C104") == []
    spanned = change(tmp_path / "span", {"shaping.toml": SHAPING.replace('"10/s"', '"100/s"')})
    assert found(spanned, "C104") == [("shaping.toml", 5, 20)]
    garbage = change(tmp_path / "bad", {"shaping.toml": SHAPING.replace('"10/s"', '"lots"')})
    assert found(garbage, "C104") == []


def test_c105_removed_sections_still_in_use(tmp_path: Path) -> None:
    gone = SHAPING.replace('["example.com"]\nmax_message_rate = "10/s"\n', "")
    used = change(tmp_path / "u", {"shaping.toml": gone})  # queues.toml names example.com
    assert found(used, "C105") == [("shaping.toml", 1, 1)]
    unused_base = {**files(), "queues.toml": '[queue."other.example"]\nmax_age = "2 days"\n'}
    unused = change(tmp_path / "n", {"shaping.toml": gone}, unused_base)
    assert found(unused, "C105") == []
    named = {**files(), "init.lua": INIT + "-- the 'default' section\n"}
    default_gone = change(
        tmp_path / "d",
        {"shaping.toml": SHAPING.replace('["default"]\nmax_message_rate = "100/s"\n', "")},
        named,
    )
    assert found(default_gone, "C105") == []  # the defaults are not a domain
    provider_base = {**files(), "shaping.toml": SHAPING + '\n[provider."big"]\nmatch = [{ MXSuffix = ".big.example" }]\n',
                     "init.lua": INIT + "-- uses 'big'\n"}  # fmt: skip
    provider = change(tmp_path / "p", {"shaping.toml": SHAPING + "\n"}, provider_base)
    assert [(f.path, f.code) for f in provider.introduced if f.code == "C105"] == [
        ("shaping.toml", "C105")
    ]


def test_c105_removed_handler(tmp_path: Path) -> None:
    handler = (
        "\nkumo.on('smtp_server_message_received', function(msg)\n  queue_helper:apply(msg)\nend)\n"
    )
    result = change(tmp_path, init_with(handler, "\n"))
    assert found(result, "C105") == [("init.lua", 1, 1)]
    first = change(tmp_path / "first", {})
    assert found(first, "C105") == []


def test_c106_only_for_data_files(tmp_path: Path) -> None:
    result = change(tmp_path, {"old.toml": "a = 1\n", "old.json": "{}\n", "old.lua": "return 1\n"})
    assert found(result, "C106") == [("old.json", 1, 1), ("old.toml", 1, 1)]


def test_c104_limits_that_are_counts(tmp_path: Path) -> None:
    base = {
        **files(),
        "shaping.toml": SHAPING + "max_deliveries_per_connection = 10\n"
        '\n[provider."big"]\nmatch = [{ MXSuffix = ".big.example" }]\nprovider_connection_limit = 5\n',
    }

    def c104(old: str, new: str, where: str) -> list[tuple[str, int, int]]:
        head = {"shaping.toml": base["shaping.toml"].replace(old, new)}
        return [(p, line) for p, line, _ in found(change(tmp_path / where, head, base), "C104")]

    assert (
        c104("max_deliveries_per_connection = 10", "max_deliveries_per_connection = 20", "d2") == []
    )
    assert c104(
        "max_deliveries_per_connection = 10", "max_deliveries_per_connection = 21", "d3"
    ) == [("shaping.toml", 6)]
    assert c104("provider_connection_limit = 5", "provider_connection_limit = 11", "p") == [
        ("shaping.toml", 10)
    ]
