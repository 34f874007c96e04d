"""The KumoMTA value parsers and the type grammar."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditor.kumo import values
from auditor.kumo.values import (
    check_type,
    parse_cidr,
    parse_duration,
    parse_ip,
    parse_limit,
    parse_rate,
    parse_size,
    parse_socket_address,
)


class Unknown:
    is_unknown = True


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10),
        ("5 minutes", 300),
        ("1h 30m", 5400),
        ("1h30m", 5400),
        ("3 days", 259200),
        ("60 seconds", 60),
        ("90m", 5400),
        ("500ms", 0.5),
        ("2 weeks", 1209600),
        ("1month", 2_630_016),
        (" 20 min 17 nsec ", 1200 + 17e-9),
        (30, 30.0),
        (1.5, 1.5),
    ],
)
def test_duration_accepts(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("60", "time unit is needed"),
        ("5 parsecs", "unknown time unit 'parsecs'"),
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("m5", "expected a number"),
        ("1.5h", "invalid character"),
        ("-5s", "expected a number"),
        (-1, "must not be negative"),
        (True, "boolean"),
        ({"a": 1}, "got a table"),
    ],
)
def test_duration_rejects(text: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_duration(text)


_UNITS = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "minutes": 60,
    "h": 3600,
    "hours": 3600,
    "d": 86400,
    "days": 86400,
    "w": 604800,
}


@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(sorted(_UNITS))), min_size=1, max_size=6
    ),
    st.sampled_from(["", " "]),
)
def test_duration_composed_of_units_is_the_sum(parts: list[tuple[int, str]], sep: str) -> None:
    text = " ".join(f"{n}{sep}{unit}" for n, unit in parts)
    assert parse_duration(text) == pytest.approx(sum(n * _UNITS[u] for n, u in parts))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/s", (100, 1)),
        ("10/min", (10, 60)),
        ("1,000/h", (1000, 3600)),
        ("1_000/hr", (1000, 3600)),
        ("100/day", (100, 86400)),
        ("local:5/30m", (5, 1800)),
        ("500/d,max_burst=1", (500, 86400)),
        ("1/minute", (1, 60)),
    ],
)
def test_rate_accepts(text: str, expected: tuple[int, int]) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("100", "expected 'limit/period'"),
        ("0/s", "greater than 0"),
        ("100/minutes", "unknown period 'minutes'"),
        ("100/hours", "unknown period"),
        ("1.5/s", "whole number"),
        ("100/60", "needs a unit"),
        (100, "got an integer"),
    ],
)
def test_rate_rejects(text: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_rate(text)


@given(st.integers(1, 10**12), st.sampled_from(["s", "min", "h", "day"]), st.integers(1, 100))
def test_rate_round_trips(limit: int, unit: str, scale: int) -> None:
    assert parse_rate(f"{limit:,}/{scale}{unit}") == (
        limit,
        scale * {"s": 1, "min": 60, "h": 3600, "day": 86400}[unit],
    )


def test_limit() -> None:
    assert parse_limit(32) == 32
    assert parse_limit("1,000") == 1000
    assert parse_limit("local:20") == 20
    for bad in (0, -3, "0", "ten", 1.5, True, None):
        with pytest.raises(ValueError):
            parse_limit(bad)


def test_cidr_is_strict_about_host_bits() -> None:
    with pytest.raises(ValueError, match=r"host bits are set. Did you mean 192.168.1.0/24"):
        parse_cidr("192.168.1.1/24")
    assert parse_cidr("192.168.1.0/24") == ipaddress.ip_network("192.168.1.0/24")
    assert parse_cidr("10.0.0.1") == ipaddress.ip_network("10.0.0.1/32")
    assert parse_cidr("::1") == ipaddress.ip_network("::1/128")
    assert parse_cidr("::/0").prefixlen == 0
    assert parse_cidr("0/0") == ipaddress.ip_network("0.0.0.0/0")
    assert parse_cidr("10/8") == ipaddress.ip_network("10.0.0.0/8")
    assert parse_cidr("any").prefixlen == 0
    for bad in ("10.0.0.0/33", "300.1.1.1", "example.com", "10.0.0.0/x", "", 5):
        with pytest.raises(ValueError):
            parse_cidr(bad)


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), st.data())
def test_any_network_formatted_by_ipaddress_round_trips(
    address: ipaddress._BaseAddress, data: st.DataObject
) -> None:
    length = data.draw(st.integers(0, address.max_prefixlen))
    network = ipaddress.ip_network((address, length), strict=False)
    assert parse_cidr(str(network)) == network
    assert parse_cidr(str(network.network_address)) == ipaddress.ip_network(network.network_address)


def test_ip_and_socket_address() -> None:
    assert str(parse_ip("10.1.2.3")) == "10.1.2.3"
    with pytest.raises(ValueError):
        parse_ip("10.1.2")
    assert parse_socket_address("10.0.0.1:25") == ("10.0.0.1", 25)
    assert parse_socket_address("[::1]:2525") == ("::1", 2525)
    assert parse_socket_address("[10.0.0.1]:25") == ("10.0.0.1", 25)
    assert parse_socket_address("proxy.example.com:1080") == ("proxy.example.com", 1080)
    assert parse_socket_address("/run/kumo.sock") == ("/run/kumo.sock", None)
    for bad in ("10.0.0.1", "::1:25", "10.0.0.1:70000", "[::1]", "bad host:25", "relative/path"):
        with pytest.raises(ValueError):
            parse_socket_address(bad)


def test_size() -> None:
    assert parse_size("10%") == pytest.approx(0.1)
    assert parse_size("1GB") == 10**9
    assert parse_size("512 MiB") == 512 * 1024**2
    assert parse_size(4096) == 4096
    for bad in ("110%", "lots", -1, True):
        with pytest.raises(ValueError):
            parse_size(bad)


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("string", "x"),
        ("boolean", False),
        ("integer", 3),
        ("number", 2.5),
        ("number", 2),
        ("duration", "5m"),
        ("rate", "1/s"),
        ("limit", "local:3"),
        ("cidr", "10.0.0.0/8"),
        ("cidr_list", ["10.0.0.0/8", "::1"]),
        ("cidr_list", {}),
        ("cidr_list", []),
        ("ip", "::1"),
        ("socket_address", "1.2.3.4:25"),
        ("size", "10%"),
        ("key_source", "/etc/key.pem"),
        ("key_source", {"vault_mount": "secret", "vault_path": "dkim/x"}),
        ("key_source", {"key_data": "-----BEGIN"}),
        ("key_source", {"event_name": "get_key", "event_args": [1, {"a": 2}]}),
        ("key_source", {"vault_mount": "s", "vault_path": "p", "vault_token": None}),
        ("enum(A|B|C)", "B"),
        ("list(string)", ["a", "b"]),
        ("list(string)", {}),
        ("map(rate)", {"a": "1/s"}),
        ("table", {"a": 1}),
        ("any", object()),
        ("boolean|enum(Ignore|LogThenRelay)", "Ignore"),
        ("boolean|enum(Ignore|LogThenRelay)", True),
        ("string|list(string)", ["x"]),
        ("duration", Unknown()),
        ("list(cidr)", ["10.0.0.0/8", Unknown()]),
    ],
)
def test_check_type_accepts(expr: str, value: object) -> None:
    assert check_type(expr, value) is None


@pytest.mark.parametrize(
    ("expr", "value", "fragment"),
    [
        ("string", 1, "expected a string, got an integer"),
        ("boolean", "true", "expected a boolean"),
        ("integer", True, "got a boolean"),
        ("integer", 1.5, "got a number"),
        ("enum(A|B|C)", "D", "'D' is not one of 'A', 'B', 'C'"),
        ("list(cidr)", ["10.0.0.0/8", "10.0.0.1/8"], "[1]: '10.0.0.1/8' is not a valid CIDR"),
        ("map(rate)", {"x": "fast"}, "['x']: invalid rate"),
        ("cidr_list", "10.0.0.0/8", "expected a list of CIDRs"),
        ("key_source", {"path": "x"}, "expected a key source"),
        ("key_source", {"key_data": 5}, "its key_data must be a string, got an integer"),
        ("key_source", {"event_name": 1, "event_args": []}, "its event_name must be a string"),
        ("function", "f", "expected a function"),
        ("boolean|enum(Ignore|LogThenRelay)", "Maybe", "'Maybe' is not one of"),
        ("boolean|enum(Ignore|LogThenRelay)", 3, "expected a boolean or one of"),
    ],
)
def test_check_type_rejects(expr: str, value: object, fragment: str) -> None:
    message = check_type(expr, value)
    assert message is not None
    assert fragment in message


def test_key_source_message_never_contains_the_value() -> None:
    message = check_type("key_source", {"key_data": "hunter2", "extra": "s3cret"})
    assert message is not None and "hunter2" not in message and "s3cret" not in message


def test_malformed_type_expressions_are_rejected() -> None:
    with pytest.raises(ValueError):
        values.validate_type_expr("lst(string)")
    with pytest.raises(ValueError):
        values.validate_type_expr("durations")
    values.validate_type_expr("list(map(boolean|enum(A|B)))")
