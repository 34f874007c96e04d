"""Validators for the value syntaxes KumoMTA accepts (durations, throttles, limits, CIDRs, addresses).

Each `parse_*` function mirrors the Rust parser KumoMTA uses for that field and raises `ValueError`
with a short human message. `check_type` applies a small type grammar (used by the API table and
the helper data schemas) to a Python value produced by the Lua literal evaluator or by TOML/JSON.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any

from auditor.kumo.types import Type
from auditor.kumo.types import parse as parse_type

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# humantime 2.x units (the crate KumoMTA's duration-serde delegates strings to), in seconds.
_DURATION_UNITS: dict[str, float] = {}
for _names, _secs in (
    (("nanos", "nsec", "ns"), 1e-9),
    (("usec", "us", "µs"), 1e-6),
    (("millis", "msec", "ms"), 1e-3),
    (("seconds", "second", "secs", "sec", "s"), 1),
    (("minutes", "minute", "min", "mins", "m"), 60),
    (("hours", "hour", "hr", "hrs", "h"), 3600),
    (("days", "day", "d"), 86400),
    (("weeks", "week", "w"), 604800),
    (("months", "month", "M"), 2_630_016),
    (("years", "year", "y"), 31_557_600),
):
    for _name in _names:
        _DURATION_UNITS[_name] = _secs

_U64_MAX = 2**64 - 1


def is_unknown(value: object) -> bool:
    """True for the evaluator's placeholder of a value that is not a literal."""
    return getattr(value, "is_unknown", False) is True


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def describe(value: object) -> str:
    """A short type name for messages (never the value itself: it may be a secret)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if _is_int(value):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def parse_duration(value: object) -> float:
    """Seconds of a KumoMTA duration: a non-negative number of seconds, or a humantime string.

    Strings need a unit on every number ("60" alone is rejected, as humantime does); spans may be
    combined ("1h 30m", "2h30m") and separated by whitespace.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration (e.g. '5 minutes'), got a boolean")
    if _is_number(value):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("a duration must be a finite number of seconds")
        if value < 0:
            raise ValueError("a duration must not be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration (e.g. '5 minutes'), got {describe(value)}")
    return _parse_humantime(value)


def _parse_humantime(text: str) -> float:
    total = 0.0
    i, n = 0, len(text)
    seen = False
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        if not ("0" <= text[i] <= "9"):
            raise ValueError(f"invalid duration {text!r}: expected a number at offset {i}")
        number = 0
        while i < n and (("0" <= text[i] <= "9") or text[i].isspace()):
            if not text[i].isspace():
                number = number * 10 + ord(text[i]) - 48
                if number > _U64_MAX:
                    raise ValueError(f"invalid duration {text!r}: number is too large")
            i += 1
        start = i
        if i < n and ((text[i].isascii() and text[i].isalpha()) or text[i] == "µ"):
            i += 1
            while i < n and text[i].isascii() and text[i].isalpha():
                i += 1
        elif i < n:
            raise ValueError(f"invalid duration {text!r}: invalid character at offset {i}")
        unit = text[start:i]
        if i < n and not (text[i].isspace() or "0" <= text[i] <= "9"):
            raise ValueError(f"invalid duration {text!r}: invalid character at offset {i}")
        if not unit:
            raise ValueError(f"invalid duration {text!r}: a time unit is needed, e.g. '{number}s'")
        scale = _DURATION_UNITS.get(unit)
        if scale is None:
            raise ValueError(
                f"invalid duration {text!r}: unknown time unit {unit!r} "
                "(use ms, s, sec, min, m, h, hours, d, days, w, weeks, months, y)"
            )
        total += number * scale
        seen = True
    if not seen:
        raise ValueError("a duration must not be empty")
    return total


_RATE_PERIODS = {
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "m": 60,
    "min": 60,
    "minute": 60,
    "s": 1,
    "sec": 1,
    "second": 1,
    "d": 86400,
    "day": 86400,
}


def _separated_number(text: str, what: str) -> int:
    digits = text.replace("_", "").replace(",", "")
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError(
            f"invalid {what} {text!r}: expected a whole number (1,000 and 1_000 are ok)"
        )
    number = int(digits)
    if number > _U64_MAX:
        raise ValueError(f"invalid {what} {text!r}: number is too large")
    return number


def parse_rate(value: object) -> tuple[int, int]:
    """(limit, period seconds) of a throttle spec: "100/s", "10/min", "1,000/h", "local:5/30m".

    Grammar (crates/throttle ThrottleSpec): optional "local:", LIMIT "/" [SCALE] UNIT with UNIT one of
    s|sec|second|m|min|minute|h|hr|hour|d|day, then optional ",max_burst=N". Plural units are rejected.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a rate string like '100/s', got {describe(value)}")
    text = value
    text = text.removeprefix("local:")
    if ",max_burst=" in text:
        text, burst = text.split(",max_burst=", 1)
        _separated_number(burst, "max_burst")
    if "/" not in text:
        raise ValueError(f"invalid rate {value!r}: expected 'limit/period', e.g. '100/s'")
    limit_text, period_text = text.split("/", 1)
    match = re.fullmatch(r"([0-9]*)(.*)", period_text, re.S)
    assert match is not None
    scale_text, unit = match.groups()
    if not unit:
        raise ValueError(f"invalid rate {value!r}: the period needs a unit (s, min, h, day)")
    if unit not in _RATE_PERIODS:
        raise ValueError(
            f"invalid rate {value!r}: unknown period {unit!r} (use s, sec, second, m, min, minute, "
            "h, hr, hour, d, day)"
        )
    scale = int(scale_text) if scale_text else 1
    limit = _separated_number(limit_text, "rate limit")
    if limit == 0:
        raise ValueError(f"invalid rate {value!r}: the limit must be greater than 0")
    period = _RATE_PERIODS[unit] * scale
    if period == 0:
        raise ValueError(f"invalid rate {value!r}: the period must be greater than 0")
    return limit, period


def parse_limit(value: object) -> int:
    """A connection limit (LimitSpec): a positive integer, or a string "1,000" / "local:20"."""
    if isinstance(value, bool):
        raise ValueError("expected a limit (a positive integer), got a boolean")
    if _is_int(value):
        if value < 1:
            raise ValueError("a limit must be 1 or larger")
        return int(value)
    if not isinstance(value, str):
        raise ValueError(
            f"expected a limit (a positive integer or a string), got {describe(value)}"
        )
    limit = _separated_number(value.removeprefix("local:"), "limit")
    if limit == 0:
        raise ValueError(f"invalid limit {value!r}: it must be greater than 0")
    return limit


def _short_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """The cidr crate's short IPv4 form: "10" is 10.0.0.0, "192.168" is 192.168.0.0."""
    parts = text.split(".")
    if len(parts) > 4:
        return None
    octets = [0, 0, 0, 0]
    for index, part in enumerate(parts):
        if not part or not part.isascii() or not part.isdigit() or int(part) > 255:
            return None
        octets[index] = int(part)
    return ipaddress.IPv4Address(bytes(octets))


def _address(text: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        short = _short_ipv4(text)
        if short is None:
            raise ValueError(f"{text!r} is not an IP address") from None
        return short


def parse_cidr(value: object) -> IPNetwork:
    """A network as KumoMTA's CidrSet parses it (cidr crate `AnyIpCidr`), strict about host bits.

    Accepts "10.0.0.0/8", "::1", bare addresses (a single host), the short IPv4 forms "10/8" and
    "0/0", and "any" (everything; returned as 0.0.0.0/0, prefix length 0).
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a CIDR string like '10.0.0.0/8', got {describe(value)}")
    text = value
    if text == "any":
        return ipaddress.IPv4Network("0.0.0.0/0")
    if "/" not in text:
        address = _address(text)
        return ipaddress.ip_network(address)
    addr_text, _, length_text = text.rpartition("/")
    address = _address(addr_text)
    if not length_text.isascii() or not length_text.isdigit():
        raise ValueError(f"{text!r} is not a valid CIDR: bad prefix length {length_text!r}")
    length = int(length_text)
    if length > address.max_prefixlen:
        raise ValueError(
            f"{text!r} is not a valid CIDR: prefix length {length} is larger than "
            f"{address.max_prefixlen}"
        )
    network = ipaddress.ip_network((address, length), strict=False)
    if network.network_address != address:
        raise ValueError(
            f"{text!r} is not a valid CIDR: host bits are set. Did you mean {network}?"
        )
    return network


def parse_ip(value: object) -> IPAddress:
    """An IP address literal (Rust's `IpAddr` parser: no short forms, no brackets)."""
    if not isinstance(value, str):
        raise ValueError(f"expected an IP address string, got {describe(value)}")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


_HOST_LABEL = re.compile(r"[A-Za-z0-9_*](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _is_hostname(host: str) -> bool:
    host = host.removesuffix(".")
    if not host or len(host) > 253:
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in host.split("."))


def parse_socket_address(value: object) -> tuple[str, int | None]:
    """(host, port) of "1.2.3.4:25", "[::1]:25", "[1.2.3.4]:25", "host.example:25" or a unix
    socket path "/run/x.sock" (port None)."""
    if not isinstance(value, str):
        raise ValueError(
            f"expected a socket address string like '10.0.0.1:25', got {describe(value)}"
        )
    text = value
    if text.startswith("/"):
        if "\0" in text or len(text.encode()) >= 108:
            raise ValueError(f"{text!r} is not a usable unix socket path")
        return text, None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{text!r} is not a socket address: expected '[address]:port'")
        parse_ip(host)
        return host, _port(rest[1:], text)
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"{text!r} is not a socket address: the ':port' is missing")
    if ":" in host:
        raise ValueError(f"{text!r} is not a socket address: write IPv6 addresses as '[addr]:port'")
    port = _port(port_text, text)
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        if not _is_hostname(host):
            raise ValueError(f"{text!r} is not a socket address: bad host {host!r}") from None
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        raise ValueError(f"{whole!r} is not a socket address: bad port {text!r}")
    return int(text)


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_size(value: object) -> float | int:
    """A size or threshold: a non-negative integer, "10%" (returned as a fraction, 0.1), or a
    byte count with a unit ("1GB", "512 MiB")."""
    if isinstance(value, bool):
        raise ValueError("expected a size, got a boolean")
    if _is_int(value):
        if value < 0:
            raise ValueError("a size must not be negative")
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a size like '10%' or '1GB', got {describe(value)}")
    text = value.strip()
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            raise ValueError(f"invalid size {value!r}: bad percentage") from None
        if not 0 <= percent <= 100:
            raise ValueError(f"invalid size {value!r}: a percentage must be within 0-100%")
        return percent / 100
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)", text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"invalid size {value!r}: expected e.g. '10%', '500MB' or '1GiB'")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


_KEY_SOURCE_SHAPES = (
    ({"key_data"}, set()),
    ({"vault_mount", "vault_path"}, {"vault_address", "vault_token", "vault_key"}),
    ({"event_name", "event_args"}, set()),
)


def _check_key_source(value: object) -> str | None:
    if isinstance(value, str):
        return None
    if not isinstance(value, dict):
        return f"expected a key source (a file path string or a table), got {describe(value)}"
    keys = set(value)
    for required, optional in _KEY_SOURCE_SHAPES:
        if required <= keys and keys <= required | optional:
            return _key_source_members(value, required)
    return (
        "expected a key source: a file path, {key_data=...}, "
        "{vault_mount=..., vault_path=...} or {event_name=..., event_args=...}"
    )


def _key_source_members(value: dict[Any, Any], required: set[str]) -> str | None:
    """KumoMTA reads every field of a key source as a string (the optional Vault fields may be
    null in JSON), except `event_args`; any other type matches none of its shapes, and the helper
    fails to load the file. The value itself is never shown: it may be a secret."""
    for key in sorted(value):
        member = value[key]
        if key == "event_args" or isinstance(member, str):
            continue
        if member is None and key not in required:
            continue
        return f"expected a key source: its {key} must be a string, got {describe(member)}"
    return None


# ---------------------------------------------------------------------------------------------
# The type grammar


def _parser_check(fn: Any, what: str) -> Any:
    def check(value: object) -> str | None:
        try:
            fn(value)
        except ValueError as err:
            return str(err)
        return None

    check.__name__ = what
    return check


def _simple(predicate: Any, expected: str) -> Any:
    def check(value: object) -> str | None:
        return None if predicate(value) else f"expected {expected}, got {describe(value)}"

    return check


def _cidr_list(value: object) -> str | None:
    if isinstance(value, dict) and not value:
        return None
    if not isinstance(value, list | tuple):
        return f"expected a list of CIDR strings, got {describe(value)}"
    return None


_SCALARS: dict[str, Any] = {
    "string": _simple(lambda v: isinstance(v, str), "a string"),
    "boolean": _simple(lambda v: isinstance(v, bool), "a boolean (true or false)"),
    "integer": _simple(_is_int, "an integer"),
    "unsigned": _simple(lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    "port": _simple(lambda v: _is_int(v) and 0 <= v <= 65535, "a port number (0-65535)"),
    "number": _simple(_is_number, "a number"),
    "duration": _parser_check(parse_duration, "duration"),
    "rate": _parser_check(parse_rate, "rate"),
    "limit": _parser_check(parse_limit, "limit"),
    "cidr": _parser_check(parse_cidr, "cidr"),
    "ip": _parser_check(parse_ip, "ip"),
    "socket_address": _parser_check(parse_socket_address, "socket_address"),
    "size": _parser_check(parse_size, "size"),
    "key_source": _check_key_source,
    "table": _simple(lambda v: isinstance(v, dict) or v == [], "a table"),
    "function": _simple(lambda v: False, "a function"),
    "any": lambda v: None,
}

_EXPECTED = {
    "string": "a string",
    "boolean": "a boolean",
    "integer": "an integer",
    "unsigned": "a non-negative integer",
    "port": "a port number",
    "number": "a number",
    "duration": "a duration",
    "rate": "a rate like '100/s'",
    "limit": "a limit",
    "cidr": "a CIDR",
    "ip": "an IP address",
    "socket_address": "a socket address",
    "size": "a size",
    "key_source": "a key source",
    "table": "a table",
    "function": "a function",
    "any": "any value",
    "cidr_list": "a list of CIDRs",
}


def expected_text(type_expr: str | Type) -> str:
    """Human wording of what a type expression accepts."""
    head, args = parse_type(type_expr) if isinstance(type_expr, str) else type_expr
    if head == "alt":
        return " or ".join(expected_text(a) for a in args)
    if head == "enum":
        return "one of " + ", ".join(repr(v) for v in args)
    if head == "list":
        return f"a list of {_plural(expected_text(args[0]))}"
    if head == "map":
        return f"a table of {_plural(expected_text(args[0]))}"
    return _EXPECTED.get(head, head)


def _plural(text: str) -> str:
    for article in ("a ", "an "):
        if text.startswith(article):
            return text[len(article) :] + "s"
    return text


def find_type_error(
    type_expr: str | Type, value: object
) -> tuple[tuple[str | int, ...], str] | None:
    """(sub-path inside `value`, message) of the first violation of `type_expr`, or None.

    The sub-path lets callers point at the offending list element or table entry.
    """
    if is_unknown(value):
        return None
    parsed = parse_type(type_expr) if isinstance(type_expr, str) else type_expr
    head, args = parsed
    if head == "alt":
        errors = [find_type_error(alt, value) for alt in args]
        if any(e is None for e in errors):
            return None
        # prefer the message of an alternative whose basic shape matched (deeper path or parser text)
        best = max(errors, key=lambda e: len(e[0]) if e else -1)
        if best and best[0]:
            return best
        shaped = [e for e in errors if e and "got " not in e[1]]
        if len(shaped) == 1:
            return shaped[0]
        return (), f"expected {expected_text(parsed)}, got {describe(value)}"
    if head == "enum":
        if isinstance(value, str) and value in args:
            return None
        if isinstance(value, str):
            return (), f"{value!r} is not one of {', '.join(repr(c) for c in args)}"
        return (), f"expected {expected_text(parsed)}, got {describe(value)}"
    if head == "list":
        if isinstance(value, dict) and not value:
            return None
        if not isinstance(value, list | tuple):
            return (), f"expected {expected_text(parsed)}, got {describe(value)}"
        for index, item in enumerate(value):
            error = find_type_error(args[0], item)
            if error:
                return (index, *error[0]), error[1]
        return None
    if head == "map":
        if isinstance(value, list | tuple) and not value:
            return None
        if not isinstance(value, dict):
            return (), f"expected {expected_text(parsed)}, got {describe(value)}"
        for key, item in value.items():
            error = find_type_error(args[0], item)
            if error:
                return (key, *error[0]), error[1]
        return None
    if head == "cidr_list":
        return find_type_error("list(cidr)", value)
    message = _SCALARS[head](value)
    return None if message is None else ((), message)


def check_type(type_expr: str, value: object) -> str | None:
    """An error message if `value` does not match `type_expr`, else None.

    Grammar: string, boolean, integer, unsigned, port, number, duration, rate, limit, cidr,
    cidr_list, ip, socket_address, size, key_source, table, function, any, enum(A|B|C), list(T),
    map(T), and alternatives T|U at the top level. Unknown (non-literal) values always pass.
    """
    error = find_type_error(type_expr, value)
    if error is None:
        return None
    path, message = error
    if path:
        where = "".join(f"[{p}]" if isinstance(p, int) else f"[{p!r}]" for p in path)
        return f"{where}: {message}"
    return message


def validate_type_expr(type_expr: str) -> None:
    """Raise ValueError if `type_expr` is not in the grammar (for checking data tables at load)."""
    parse_type(type_expr)
