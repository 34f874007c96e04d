"""Authoritative syntax check with real Lua 5.4: the chunk is compiled with `load` and never called."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from auditor.core.record import dataclass

_MESSAGE = re.compile(r"^(?:.*?):(\d+): (.*)$", re.DOTALL)
# Lua quotes the token it stopped at; a string literal's text may be a secret, so it is not shown.
_NEAR_STRING = re.compile(r"near '(?:[\"']|\[=*\[).*'$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class LuaSyntaxError:
    """Lua's own compile error: line and message."""

    line: int
    message: str


@cache
def _runtime() -> Any:
    from lupa import lua54  # KumoMTA embeds Lua 5.4; lupa.LuaRuntime would be a newer Lua

    return lua54.LuaRuntime(register_eval=False, register_builtins=False)


@cache
def _loader() -> Any:
    # `load` in text mode with an empty environment: compiling cannot reach any global.
    return _runtime().eval(
        "function(src, name) local f, err = load(src, name, 't', {}) return err end"
    )


@cache
def _bytes_loader() -> Any:
    """`_loader` for a source that is not UTF-8: Lua's message may quote its bytes, which are
    written as Lua writes a stray byte (`<\\255>`) so that the message is text."""
    return _runtime().eval(
        "function(src, name) local f, err = load(src, name, 't', {}) "
        "if err then err = err:gsub('[\\128-\\255]', function(c) "
        "return string.format('<\\\\%d>', c:byte()) end) end return err end"
    )


def compile_lua(source: str | bytes, chunkname: str) -> LuaSyntaxError | None:
    """None when Lua 5.4 compiles `source`; else the line and Lua's own message. `source` is
    bytes for a file that is not UTF-8 (Lua's file loader reads bytes)."""
    loader = _bytes_loader() if isinstance(source, bytes) else _loader()
    err = loader(source, "=" + chunkname)
    if err is None:
        return None
    message = str(err).split("\nstack traceback:", 1)[0].strip()
    match = _MESSAGE.match(message)
    if match:
        text = _NEAR_STRING.sub("near a string literal (its text is not shown)", match.group(2))
        return LuaSyntaxError(int(match.group(1)), text.strip())
    if message == "C stack overflow":
        message = "nesting too deep for the Lua compiler (C stack overflow)"
    return LuaSyntaxError(1, message)
