"""What counts as a secret, and how a secret is shown: one definition for rule S106 and the change set.

A value is a secret by the name of the key (or variable) that holds it, by its shape (private key
material, a URL with a password), or by where it is used (an auth handler compares its password
parameter with it: rule S106 finds those). A secret is never shown; where a change must say that one
changed, it is replaced by a marker with a short salted digest, so two changes can be compared
without revealing the value.

The salt is `KUMO_AUDIT_SECRET_SALT` when set (share it between CI jobs to compare digests across
them), else a random value kept in the repository's Git directory (`kumo-audit/secret-salt`, created
on first use), else a fixed one (digests then resist casual comparison only).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from auditor.core.lazyre import lazy

SALT_ENV = "KUMO_AUDIT_SECRET_SALT"
FIXED_SALT = b"kumo-audit secret digest v1"

# Keys whose string value is always the secret itself (never a path).
INLINE_KEYS = frozenset({"key_data", "vault_token", "socks5_proxy_password"})
# Words that make a key name a secret's name; the last word naming a reference keeps it public.
_SECRET_WORDS = frozenset(
    {"password", "passwd", "passphrase", "secret", "token", "apikey", "credential", "credentials"}
)
_SECRET_PAIRS = (("api", "key"), ("private", "key"), ("secret", "key"), ("access", "key"))
_REFERENCE_WORDS = frozenset(
    {"path", "file", "filename", "dir", "name", "user", "username", "env", "var", "type", "kind"}
)
_PEM_PRIVATE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")
_URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@")
MARKER_PREFIX = "<redacted"
# Text without any of these cannot hold a secret by name or by shape (a cheap test before a walk).
_MAYBE_WORDS = ("pass", "secret", "token", "private", "key_data", "credential")
_MAYBE_KEY = re.compile(r"(?:api|access)[\W_]?key")
_MAYBE_URL = re.compile(r"://[^\s'\"]*@")


def may_hold_secrets(text: str) -> bool:
    """False when no name or shape of a secret occurs in `text` at all (plain substring tests on
    the lowered text first: a case-insensitive alternation scans a whole file far slower)."""
    lowered = text.lower()
    if any(word in lowered for word in _MAYBE_WORDS):
        return True
    if "key" in lowered and _MAYBE_KEY.search(lowered):
        return True
    return "://" in text and "@" in text and _MAYBE_URL.search(text) is not None


def _words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def secret_name(key: object) -> bool:
    """True when a key or variable with this name holds a secret (`socks5_proxy_password`)."""
    if not isinstance(key, str) or not key:
        return False
    return _secret_name(key)


@functools.lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    """`secret_name` of a non-empty string (remembered: data files repeat a few keys thousands of
    times, and a change audit walks both states)."""
    if key in INLINE_KEYS:
        return True
    words = _words(key)
    if not words or words[-1] in _REFERENCE_WORDS:
        return False
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair == tuple(words[i : i + 2]) for pair in _SECRET_PAIRS for i in range(len(words)))


def secret_shape(value: object) -> str | None:
    """Why a string is a secret by its shape alone, or None."""
    if not isinstance(value, str) or len(value) < 8:
        return None
    if _PEM_PRIVATE.search(value):
        return "private key material written inline"
    if _URL_PASSWORD.match(value):
        return "a URL with a password written inline"
    return None


def path_like(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~"))


def secret_reason(key: object, value: object) -> str | None:
    """Why a key/value pair holds a literal secret, or None. `value` is a scalar."""
    if not isinstance(value, str) or not value:
        return None
    shape = secret_shape(value)
    if shape:
        return shape
    if key in INLINE_KEYS:
        return "written inline"
    if key == "smtp_auth_plain_password" and not path_like(value):
        return (
            "written inline (KumoMTA also reads a plain string here as the path of a file, so "
            "a password written directly fails authentication)"
        )
    if secret_name(key) and not path_like(value):
        return "written inline"
    return None


# Secrets in free text (a decision's why, a commit message): formats that are secrets by their
# shape, a URL's password, and `name = value` where the name is a secret's name.
_TEXT_PEM = lazy(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
    r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"
)
_TEXT_URL_PASSWORD = lazy(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:([^/@\s]+)@")
_TEXT_TOKENS = lazy(
    r"\b(?:"
    r"(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub tokens
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|[sr]k_(?:live|test)_[0-9A-Za-z]{16,}"  # Stripe keys
    r"|hv[sb]\.[A-Za-z0-9_-]{20,}"  # HashiCorp Vault tokens
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JSON Web Token
    r")(?![A-Za-z0-9_-])"
)
# A name and its separator only: the value is read after it, so a name inside another name's value
# (`reason: password=...`) is found too.
_TEXT_NAME = lazy(r"([A-Za-z][A-Za-z0-9_.-]*)[ \t]*[:=][ \t]*")
_TEXT_VALUE = lazy(r"\"([^\"\n]*)\"|'([^'\n]*)'|([^\s,;'\"]+)")
_TRAILING = ".,;:!?)]}>"


def secrets_in_text(text: str | None) -> set[str]:
    """Every secret in free text: by shape (private key material, known token formats, a URL's
    password) or written after a secret's name (`password=...`, `api_key: '...'`)."""
    if not text:
        return set()
    found = {m.group(0) for m in _TEXT_PEM.finditer(text)}
    found.update(m.group(1) for m in _TEXT_URL_PASSWORD.finditer(text))
    found.update(m.group(0) for m in _TEXT_TOKENS.finditer(text))
    for name in _TEXT_NAME.finditer(text):
        if not _secret_name(name.group(1)) or text.startswith(MARKER_PREFIX, name.end()):
            continue
        match = _TEXT_VALUE.match(text, name.end())
        if match is None:
            continue
        quoted = match.group(1) if match.group(1) is not None else match.group(2)
        value = quoted if quoted is not None else match.group(3).rstrip(_TRAILING)
        if len(value) >= 4 and not path_like(value) and not is_marker(value):
            found.add(value)
    return found


def is_marker(value: object) -> bool:
    return isinstance(value, str) and value.startswith(MARKER_PREFIX) and value.endswith(">")


class Redactor:
    """Replaces secrets by markers with a short salted digest; the salt is read on first need."""

    def __init__(self, salt: bytes | Callable[[], bytes] = FIXED_SALT) -> None:
        self._salt = salt

    def salt(self) -> bytes:
        if callable(self._salt):
            self._salt = self._salt()
        return self._salt

    def digest(self, value: object) -> str:
        data = (
            value.encode("utf-8", "surrogatepass")
            if isinstance(value, str)
            else repr(value).encode()
        )
        return hashlib.blake2b(data, key=self.salt()[:64], digest_size=4).hexdigest()

    def marker(self, value: object) -> str:
        return f"{MARKER_PREFIX} {self.digest(value)}>"

    def value(self, value: Any, key: object = None) -> Any:
        """`value` with every secret in it (at any depth) replaced by its marker."""
        if isinstance(value, dict):
            return {k: self.value(v, k) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v, key) for v in value]
        if isinstance(value, str) and not is_marker(value) and secret_reason(key, value):
            return self.marker(value)
        return value

    def text(self, text: str, values: set[str]) -> str:
        """`text` with every occurrence of the given secret values replaced by their markers, and a
        secret's beginning that ends the text (a label cut at a line break or a length) as well."""
        for secret in sorted(values, key=len, reverse=True):
            if secret and secret in text:
                text = text.replace(secret, self.marker(secret))
        for secret in values:
            cut = text[:-3] if text.endswith("...") else text
            for size in range(min(len(secret), len(cut)), 3, -1):
                if cut.endswith(secret[:size]):
                    text = cut[:-size] + self.marker(secret) + text[len(cut) :]
                    break
        return text


def secrets_in(value: Any, key: object = None) -> set[str]:
    """Every secret string in a parsed data value."""
    out: set[str] = set()
    stack: list[tuple[object, Any]] = [(key, value)]
    while stack:
        k, node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.items())
        elif isinstance(node, list | tuple):
            stack.extend((k, item) for item in node)
        elif isinstance(node, str) and secret_reason(k, node):
            out.add(node)
    return out


def repository_salt(start: Path | None) -> bytes:
    """The salt for digests of secrets found under `start` (see the module docstring)."""
    env = os.environ.get(SALT_ENV)
    if env:
        return env.encode("utf-8", "surrogateescape")
    git_dir = _git_common_dir(start) if start is not None else None
    if git_dir is None:
        return FIXED_SALT
    salt_file = git_dir / "kumo-audit" / "secret-salt"
    try:
        return bytes.fromhex(salt_file.read_text().strip())
    except (OSError, ValueError):
        pass
    try:
        salt_file.parent.mkdir(exist_ok=True)
        import secrets

        fresh = secrets.token_hex(32)
        fd = os.open(salt_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(fresh + "\n")
        return bytes.fromhex(fresh)
    except FileExistsError:
        try:
            return bytes.fromhex(salt_file.read_text().strip())
        except (OSError, ValueError):
            return FIXED_SALT
    except OSError:
        return FIXED_SALT


def _git_common_dir(start: Path) -> Path | None:
    try:
        here = start.resolve()
    except OSError:
        return None
    for folder in (here, *here.parents):
        dot = folder / ".git"
        try:
            if dot.is_dir():
                return dot
            if dot.is_file():
                text = dot.read_text().strip()
                if not text.startswith("gitdir:"):
                    return None
                git_dir = (folder / text.split(":", 1)[1].strip()).resolve()
                common = git_dir / "commondir"
                if common.is_file():
                    return (git_dir / common.read_text().strip()).resolve()
                return git_dir
        except OSError:
            return None
    return None


__all__ = [
    "Redactor",
    "is_marker",
    "path_like",
    "repository_salt",
    "secret_name",
    "secret_reason",
    "secret_shape",
    "secrets_in",
]
