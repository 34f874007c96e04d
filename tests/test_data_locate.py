"""Positions of keys and values in TOML and JSON data files."""

from __future__ import annotations

import pytest

from auditor.core.findings import Span
from auditor.data.locate import DataSyntaxError, load_located

TOML = '''# comment line
["default"]
connection_limit = 10
nested.key = "x"

[gmail.com]
x = 1

[["default".automation]]
regex = [
  "a",
  'b',
]
action = [ {SetConfig={name="max_message_rate", value="1/minute"}}, "Suspend" ]
duration = """
ninety
minutes"""

[["default".automation]]
regex = "z"   # trailing comment

[provider."a.b".sources.'s1']
when = 1979-05-27 07:32:00Z # a datetime with a space
inline = { a = { "b.c" = 2 } }
'''


@pytest.fixture(scope="module")
def toml():  # type: ignore[no-untyped-def]
    return load_located(TOML, "toml")


@pytest.mark.parametrize(
    ("path", "key", "value"),
    [
        (("default",), (2, 2, 2, 11), (2, 1, 2, 12)),
        (("default", "connection_limit"), (3, 1, 3, 17), (3, 20, 3, 22)),
        (("default", "nested", "key"), (4, 8, 4, 11), (4, 14, 4, 17)),
        (("gmail", "com", "x"), (7, 1, 7, 2), (7, 5, 7, 6)),
        (("default", "automation", 0, "regex", 1), (12, 3, 12, 6), (12, 3, 12, 6)),
        (
            ("default", "automation", 0, "action", 0, "SetConfig", "value"),
            (14, 49, 14, 54),
            (14, 55, 14, 65),
        ),
        (("default", "automation", 0, "action", 1), (14, 69, 14, 78), (14, 69, 14, 78)),
        (("default", "automation", 0, "duration"), (15, 1, 15, 9), (15, 12, 17, 11)),
        (("default", "automation", 1), (19, 13, 19, 23), (19, 1, 19, 25)),
        (("default", "automation", 1, "regex"), (20, 1, 20, 6), (20, 9, 20, 12)),
        (("provider", "a.b", "sources", "s1"), (22, 25, 22, 29), (22, 1, 22, 30)),
        (("provider", "a.b", "sources", "s1", "when"), (23, 1, 23, 5), (23, 8, 23, 28)),
        (
            ("provider", "a.b", "sources", "s1", "inline", "a", "b.c"),
            (24, 18, 24, 23),
            (24, 26, 24, 27),
        ),
    ],
)
def test_toml_spans(toml, path, key, value) -> None:  # type: ignore[no-untyped-def]
    assert toml.key_span(path) == Span(*key)
    assert toml.value_span(path) == Span(*value)


def test_toml_values_come_from_tomllib(toml) -> None:  # type: ignore[no-untyped-def]
    assert toml.value["default"]["automation"][0]["duration"] == "ninety\nminutes"
    assert toml.value["gmail"] == {"com": {"x": 1}}


def test_toml_unknown_path_falls_back_to_nearest_ancestor(toml) -> None:  # type: ignore[no-untyped-def]
    assert toml.key_span(("default", "nope", "deeper")) == Span(2, 2, 2, 11)
    assert toml.key_span(("nothing",)) == Span(1, 1, 1, 1)


def test_toml_headers_keep_raw_text_and_quoting(toml) -> None:  # type: ignore[no-untyped-def]
    raw = [(h.raw, h.path, h.is_array) for h in toml.headers]
    assert raw[1] == ("[gmail.com]", ("gmail", "com"), False)
    assert raw[2] == ('[["default".automation]]', ("default", "automation", 0), True)
    assert raw[3][1] == ("default", "automation", 1)
    header = toml.headers[4]
    assert [(s.text, s.quoted) for s in header.segments] == [
        ("provider", False),
        ("a.b", True),
        ("sources", False),
        ("s1", True),
    ]
    assert header.segments[1].span == Span(22, 11, 22, 16)


def test_nested_arrays_of_tables() -> None:
    text = "[[x]]\n[[x.y]]\na = 1\n[[x]]\n[[x.y]]\n[[x.y]]\na = 2\n"
    located = load_located(text, "toml")
    assert located.value == {"x": [{"y": [{"a": 1}]}, {"y": [{}, {"a": 2}]}]}
    assert located.key_span(("x", 1, "y", 1, "a")) == Span(7, 1, 7, 2)
    assert located.value_span(("x", 1, "y", 1)) == Span(6, 1, 6, 8)


def test_escaped_and_unicode_keys_count_characters() -> None:
    text = '["d\\u00e9j\\u00e0.example"]\n"clé" = "värde"\nnext = 1\n'
    located = load_located(text, "toml")
    assert "déjà.example" in located.value
    assert located.value_span(("déjà.example", "clé")) == Span(2, 9, 2, 16)
    assert located.key_span(("déjà.example", "next")) == Span(3, 1, 3, 5)


def test_toml_syntax_error_position() -> None:
    with pytest.raises(DataSyntaxError) as err:
        load_located("a = 1\nb = \n", "toml")
    assert (err.value.line, err.value.column) == (2, 5)
    assert "(at line" not in err.value.message


JSON = """{
  "a.com": {"relay_to": true, "relay_from": ["10.0.0.0/8", "::1"]},
  /* block
     comment */
  "b": [1, {"c": "x\\"y"}, [2]],
  # shell comment
  "e": "http://example.com" // trailing
}
"""


def test_json_spans() -> None:
    located = load_located(JSON, "json")
    assert located.value["e"] == "http://example.com"
    assert located.key_span(("a.com",)) == Span(2, 3, 2, 10)
    assert located.value_span(("a.com", "relay_from", 1)) == Span(2, 60, 2, 65)
    assert located.key_span(("b", 1, "c")) == Span(5, 13, 5, 16)
    assert located.value_span(("b", 1, "c")) == Span(5, 18, 5, 24)
    assert located.value_span(("b", 2, 0)) == Span(5, 28, 5, 29)
    assert located.key_span(("e",)) == Span(7, 3, 7, 6)
    assert located.value_span(()) == Span(1, 1, 8, 2)
    assert located.value_span(("b", 7)) == located.value_span(("b",))


def test_json_nan_is_rejected() -> None:
    with pytest.raises(DataSyntaxError) as err:
        load_located('{"a": "NaN", "b": NaN}', "json")
    assert (err.value.line, err.value.column) == (1, 19)


def test_json_duplicate_keys_point_at_the_repeat_and_last_wins() -> None:
    located = load_located('{"a": {"x": 1, "x": 2}, "b": [{"x": 1}, {"x": 2}]}', "json")
    assert [(p.line, p.column) for p in located.problems] == [(1, 16)]
    assert located.value_span(("a", "x")) == Span(1, 21, 1, 22)


def test_located_results_survive_pickling_for_the_cache() -> None:
    import pickle

    from auditor.data.locate import load_located

    for text, fmt in (('{"a": {"b": [1, 2]}}', "json"), ("[a]\nb = 1\n", "toml")):
        located = pickle.loads(pickle.dumps(load_located(text, fmt)))
        assert located.value_span(("a",)).line == 1
