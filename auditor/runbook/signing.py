"""SSH signatures of runbook entries: signing with `ssh-keygen -Y sign`, checking in batches.

An entry's signature is an OpenSSH `SSHSIG` signature in the namespace `kumo-audit-runbook` over
the entry's hash (the 64 hex digits, which commit to its whole canonical record). The signing key is
an SSH key, chosen like Git's `gpg.format = ssh`: `KUMO_AUDIT_SIGNING_KEY`, else the Git config key
`kumo-audit.signingKey`, else `user.signingKey` when `gpg.format` is `ssh`. A key is a path to a
private key, or to a public key whose private half is in the SSH agent, or `key::<public key>`.

Checking: an OpenSSH `allowed_signers` file maps keys to principals; here a principal is a writer id
pattern (`human:laptop-*`, `ci:github:acme/policy:*`, `daemon:cfg-*`), so a signature is good only
when its key is allowed for the writer of the entry it signs. Signatures by Ed25519, ECDSA and RSA
keys are checked in this process (thousands per second); other kinds (certificates, FIDO keys) by
`ssh-keygen -Y verify`, one process each.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from auditor.core.errors import AuditError
from auditor.core.small_file import SmallFileError, read_small_file
from auditor.source.git import config_value, git_bytes

NAMESPACE = "kumo-audit-runbook"
ALLOWED_SIGNERS_PATH = ".kumo-audit/allowed_signers"
"""The default allowed signers file: committed in the policy repository, so a new signer is reviewed."""
_MAGIC = b"SSHSIG"
_ARMOR_START = "-----BEGIN SSH SIGNATURE-----"
_ARMOR_END = "-----END SSH SIGNATURE-----"
_KEY_TYPE_RE = re.compile(r"^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.\-]+$")


class SignatureFormatError(ValueError):
    """Not a readable SSH signature."""


# --- signing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """Where the signing key is: a key file, or a public key literal (`key::...`) for the agent."""

    spec: str

    def describe(self) -> str:
        return "a key in the SSH agent" if self.spec.startswith("key::") else self.spec


def configured_key(repo: Path | None, env: Mapping[str, str] | None = None) -> SigningKey | None:
    """The signing key configured for `repo` (or the environment), or None."""
    env = os.environ if env is None else env
    spec = env.get("KUMO_AUDIT_SIGNING_KEY", "").strip()
    if not spec and repo is not None:
        spec = config_value(repo, "kumo-audit.signingKey") or ""
        if not spec and (config_value(repo, "gpg.format") or "").lower() == "ssh":
            spec = config_value(repo, "user.signingKey") or ""
    if not spec or spec.lower() == "none":
        return None
    if not spec.startswith("key::"):
        spec = os.path.expanduser(spec)
    return SigningKey(spec)


def message(entry_hash: str) -> bytes:
    """What a signature covers: the entry's hash."""
    return entry_hash.encode("ascii")


class InProcessKey(SigningKey):
    """An Ed25519 key object of `cryptography`, signing in this process (bulk signing, benchmarks)."""

    def __init__(self, private_key: Any, spec: str = "in-process key") -> None:
        super().__init__(spec)
        object.__setattr__(self, "private_key", private_key)

    def describe(self) -> str:
        return self.spec


def sign(key: SigningKey, data: bytes) -> str:
    """An armored SSH signature of `data` by `key` (`ssh-keygen -Y sign`); AuditError on failure."""
    if isinstance(key, InProcessKey):
        return sign_in_process(key.private_key, data)  # type: ignore[attr-defined]
    with contextlib.ExitStack() as stack:
        path = key.spec
        if path.startswith("key::"):
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="kumo-audit-sign-"))
            path = os.path.join(tmp, "key.pub")
            Path(path).write_text(key.spec[5:].strip() + "\n")
        elif not os.path.exists(path):
            raise AuditError(f"signing key {path} does not exist")
        try:
            proc = subprocess.run(
                ["ssh-keygen", "-q", "-Y", "sign", "-n", NAMESPACE, "-f", path],
                input=data,
                capture_output=True,
                check=False,
                timeout=60,
            )
        except FileNotFoundError:
            raise AuditError("ssh-keygen is not installed: cannot sign runbook entries") from None
        except subprocess.TimeoutExpired:
            raise AuditError(f"signing with {key.describe()} timed out") from None
    text = proc.stdout.decode("ascii", "replace").strip()
    if proc.returncode != 0 or _ARMOR_START not in text:
        first = next(
            (
                ln.strip()
                for ln in proc.stderr.decode("utf-8", "replace").splitlines()
                if ln.strip()
            ),
            f"exit {proc.returncode}",
        )
        raise AuditError(f"cannot sign with {key.describe()}: {first}")
    return text


# --- the SSHSIG format ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signature:
    public_key: bytes  # the SSH wire form of the signer's public key
    namespace: str
    hash_algorithm: str
    signature: bytes  # string(type) string(blob)
    reserved: bytes = b""

    @property
    def key_type(self) -> str:
        return _read_string(self.public_key, 0)[0].decode("ascii", "replace")

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.public_key)

    def signed_data(self, data: bytes) -> bytes:
        algo = hashlib.sha512 if self.hash_algorithm == "sha512" else hashlib.sha256
        return (
            _MAGIC
            + _string(self.namespace.encode())
            + _string(self.reserved)
            + _string(self.hash_algorithm.encode())
            + _string(algo(data).digest())
        )


def parse_signature(text: str) -> Signature:
    text = text.strip()
    if not text.startswith(_ARMOR_START) or not text.endswith(_ARMOR_END):
        raise SignatureFormatError("not an armored SSH signature")
    body = "".join(text[len(_ARMOR_START) : -len(_ARMOR_END)].split())
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureFormatError("signature is not base64") from None
    if not blob.startswith(_MAGIC) or len(blob) < 10:
        raise SignatureFormatError("not an SSHSIG signature")
    version = int.from_bytes(blob[6:10], "big")
    if version != 1:
        raise SignatureFormatError(f"SSHSIG version {version}")
    parts: list[bytes] = []
    pos, end = 10, len(blob)
    for _ in range(5):
        size = int.from_bytes(blob[pos : pos + 4], "big")
        pos += 4
        if pos + size > end:
            raise SignatureFormatError("truncated SSHSIG signature")
        parts.append(blob[pos : pos + size])
        pos += size
    if pos != end:
        raise SignatureFormatError("trailing bytes after the SSHSIG signature")
    public_key, namespace, reserved, hash_algorithm, signature = parts
    return Signature(
        public_key=public_key,
        namespace=namespace.decode("utf-8", "replace"),
        hash_algorithm=hash_algorithm.decode("ascii", "replace"),
        signature=signature,
        reserved=reserved,
    )


def armor(sig: Signature) -> str:
    blob = (
        _MAGIC
        + (1).to_bytes(4, "big")
        + _string(sig.public_key)
        + _string(sig.namespace.encode())
        + _string(sig.reserved)
        + _string(sig.hash_algorithm.encode())
        + _string(sig.signature)
    )
    text = base64.b64encode(blob).decode()
    lines = [text[i : i + 70] for i in range(0, len(text), 70)]
    return "\n".join([_ARMOR_START, *lines, _ARMOR_END])


def sign_in_process(private_key: Any, data: bytes) -> str:
    """Sign with an Ed25519 key object of `cryptography` (bulk signing, e.g. benchmarks).

    The result is the same SSHSIG signature `ssh-keygen -Y sign` makes.
    """
    from cryptography.hazmat.primitives import serialization

    public = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key_blob = _string(b"ssh-ed25519") + _string(public)
    draft = Signature(key_blob, NAMESPACE, "sha512", b"")
    raw = private_key.sign(draft.signed_data(data))
    return armor(Signature(key_blob, NAMESPACE, "sha512", _string(b"ssh-ed25519") + _string(raw)))


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _read_string(blob: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(blob):
        raise IndexError(pos)
    size = int.from_bytes(blob[pos : pos + 4], "big")
    end = pos + 4 + size
    if end > len(blob):
        raise IndexError(pos)
    return blob[pos + 4 : end], end


# --- allowed signers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowedKey:
    principals: tuple[str, ...]
    key: bytes
    namespaces: tuple[str, ...] | None = None
    valid_after: datetime | None = None
    valid_before: datetime | None = None
    cert_authority: bool = False
    line: int = 0


@dataclass
class AllowedSigners:
    """An OpenSSH allowed_signers file, parsed; `source` names where it came from."""

    source: str
    text: str
    keys: list[AllowedKey] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def for_key(self, public_key: bytes) -> list[AllowedKey]:
        return [k for k in self.keys if k.key == public_key and not k.cert_authority]

    def has_cert_authorities(self) -> bool:
        return any(k.cert_authority for k in self.keys)


_TOKEN_RE = re.compile(r'(?:"[^"]*"|[^\s"])+')


def parse_allowed_signers(text: str, source: str) -> AllowedSigners:
    """Parse the OpenSSH `allowed_signers` format; an unreadable line is a one-line AuditError."""
    result = AllowedSigners(source, text)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = _TOKEN_RE.findall(line)
        if len(tokens) < 3:
            raise AuditError(f"{source}:{number}: expected 'principals [options] keytype key'")
        principals, rest = tokens[0], tokens[1:]
        options: dict[str, str | None] = {}
        if not _KEY_TYPE_RE.match(rest[0]):
            for option in _split_options(rest[0]):
                name, _, value = option.partition("=")
                options[name.lower()] = value.strip('"') if value else None
            rest = rest[1:]
        if len(rest) < 2 or not _KEY_TYPE_RE.match(rest[0]):
            raise AuditError(f"{source}:{number}: no key type and key")
        try:
            key = base64.b64decode(rest[1], validate=True)
        except (binascii.Error, ValueError):
            raise AuditError(f"{source}:{number}: the key is not base64") from None
        namespaces = options.get("namespaces")
        result.keys.append(
            AllowedKey(
                principals=tuple(p.strip() for p in principals.strip('"').split(",") if p.strip()),
                key=key,
                namespaces=tuple(namespaces.split(",")) if namespaces else None,
                valid_after=_ssh_time(options.get("valid-after"), source, number),
                valid_before=_ssh_time(options.get("valid-before"), source, number),
                cert_authority="cert-authority" in options,
                line=number,
            )
        )
    return result


def _split_options(text: str) -> list[str]:
    return [part for part in re.findall(r'(?:"[^"]*"|[^,])+', text) if part]


def _ssh_time(value: str | None, source: str, number: int) -> datetime | None:
    if not value:
        return None
    digits = value.rstrip("Zz")
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    try:
        moment = datetime.strptime(digits, formats[len(digits)])
    except (KeyError, ValueError):
        raise AuditError(f"{source}:{number}: invalid time {value!r}") from None
    if value.endswith(("Z", "z")):
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def pattern_list_matches(patterns: tuple[str, ...], name: str) -> bool:
    """OpenSSH pattern lists: `*` and `?` wildcards; a matching `!pattern` denies."""
    allowed = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        if _pattern_re(pattern[1:] if negated else pattern).fullmatch(name):
            if negated:
                return False
            allowed = True
    return allowed


@lru_cache(maxsize=512)
def _pattern_re(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    )


def load_allowed_signers(repo: Path | None, explicit: Path | None = None) -> AllowedSigners | None:
    """The allowed signers: `explicit`, else Git config `kumo-audit.allowedSignersFile`, else the file
    committed at `.kumo-audit/allowed_signers` on the policy repository's HEAD; None if there is none."""
    path = explicit
    if path is None and repo is not None:
        configured = config_value(repo, "kumo-audit.allowedSignersFile")
        if configured:
            path = Path(os.path.expanduser(configured))
            if not path.is_absolute():
                path = repo / path
    if path is not None:
        try:
            text = read_small_file(path).decode("utf-8")
        except SmallFileError as exc:
            raise AuditError(f"allowed signers file: {exc}") from None
        except UnicodeDecodeError as exc:
            raise AuditError(f"cannot read allowed signers file {path}: {exc}") from None
        return parse_allowed_signers(text, str(path))
    if repo is None:
        return None
    blob = git_bytes(repo, "show", f"HEAD:{ALLOWED_SIGNERS_PATH}", check=False)
    if not blob:
        return None
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        raise AuditError(f"HEAD:{ALLOWED_SIGNERS_PATH} is not UTF-8") from None
    return parse_allowed_signers(text, f"HEAD:{ALLOWED_SIGNERS_PATH}")


@lru_cache(maxsize=1)
def _crypto() -> Any:
    """The `cryptography` names the checks use, imported once (None when it is not installed)."""
    from types import SimpleNamespace

    try:
        from cryptography import exceptions
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
    except ImportError:
        return None
    return SimpleNamespace(
        InvalidSignature=exceptions.InvalidSignature,
        UnsupportedAlgorithm=exceptions.UnsupportedAlgorithm,
        ECDSA=ec.ECDSA,
        EllipticCurvePublicKey=ec.EllipticCurvePublicKey,
        Ed25519PublicKey=ed25519.Ed25519PublicKey,
        PKCS1v15=padding.PKCS1v15,
        RSAPublicKey=rsa.RSAPublicKey,
        encode_dss_signature=utils.encode_dss_signature,
        SHA256=hashes.SHA256,
        SHA384=hashes.SHA384,
        SHA512=hashes.SHA512,
        load_ssh_public_key=serialization.load_ssh_public_key,
    )


# --- checking ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome for one signature.

    status: good | bad (does not verify, wrong namespace, unreadable) | unknown-signer (key not
    allowed) | wrong-signer (key allowed, but not for this writer) | unchecked (no allowed signers).
    """

    status: str
    fingerprint: str = ""
    principals: str = ""
    detail: str = ""


class Checker:
    """Checks many signatures against one allowed signers file, caching parsed public keys."""

    def __init__(self, allowed: AllowedSigners | None, now: datetime | None = None) -> None:
        self.allowed = allowed
        self.now = now or datetime.now(UTC)
        self._keys: dict[bytes, Any] = {}
        self._who: dict[tuple[bytes, str], Check] = {}

    def check(self, armored: str, data: bytes, writer: str) -> Check:
        try:
            sig = parse_signature(armored)
        except SignatureFormatError as exc:
            return Check("bad", detail=str(exc))
        if sig.namespace != NAMESPACE:
            return Check("bad", sig.fingerprint, detail=f"made for namespace {sig.namespace!r}")
        if sig.hash_algorithm not in ("sha256", "sha512"):
            return Check("bad", sig.fingerprint, detail=f"hash algorithm {sig.hash_algorithm!r}")
        valid = self._verify(sig, data)
        if valid is None:
            return self._external(armored, data, writer, sig.fingerprint)
        if not valid:
            return Check("bad", sig.fingerprint, detail="the signature does not match the entry")
        who = self._who.get((sig.public_key, writer))
        if who is None:
            who = self._who[(sig.public_key, writer)] = self._signer(sig.public_key, writer)
        return who

    def _signer(self, public_key: bytes, writer: str) -> Check:
        """Whether the allowed signers let this key sign for this writer."""
        fingerprint = fingerprint_of(public_key)
        if self.allowed is None:
            return Check("unchecked", fingerprint, detail="no allowed signers file")
        lines = self.allowed.for_key(public_key)
        if not lines:
            return Check(
                "unknown-signer",
                fingerprint,
                detail=f"key {fingerprint} is not in {self.allowed.source}",
            )
        usable = [k for k in lines if self._usable(k)]
        for k in usable:
            if pattern_list_matches(k.principals, writer):
                return Check("good", fingerprint, ",".join(k.principals))
        names = ";".join(",".join(k.principals) for k in (usable or lines))
        why = "" if usable else " (outside its validity or namespaces)"
        return Check(
            "wrong-signer",
            fingerprint,
            names,
            f"key {fingerprint} is allowed for {names}{why}, not for writer {writer}",
        )

    def _usable(self, key: AllowedKey) -> bool:
        if key.namespaces is not None and not pattern_list_matches(key.namespaces, NAMESPACE):
            return False
        if key.valid_after and self.now < key.valid_after:
            return False
        return not (key.valid_before and self.now > key.valid_before)

    def _verify(self, sig: Signature, data: bytes) -> bool | None:
        """True/False when this process can check the signature, None for other key kinds."""
        crypto = _crypto()
        if crypto is None:
            return None
        key = self._keys.get(sig.public_key)
        if key is None:
            key_type = sig.key_type
            if key_type.endswith("-cert-v01@openssh.com") or key_type.startswith("sk-"):
                return None
            try:
                line = f"{key_type} {base64.b64encode(sig.public_key).decode()}".encode()
                key = crypto.load_ssh_public_key(line)
            except (ValueError, TypeError, crypto.UnsupportedAlgorithm):
                return None
            self._keys[sig.public_key] = key
        try:
            sig_type_raw, pos = _read_string(sig.signature, 0)
            raw, _ = _read_string(sig.signature, pos)
        except IndexError:
            return False
        signed = sig.signed_data(data)
        try:
            if isinstance(key, crypto.Ed25519PublicKey):
                if sig_type_raw != b"ssh-ed25519":
                    return False
                key.verify(raw, signed)
            elif isinstance(key, crypto.RSAPublicKey):
                if sig_type_raw not in (b"rsa-sha2-256", b"rsa-sha2-512"):
                    return False
                algo = crypto.SHA512() if sig_type_raw.endswith(b"512") else crypto.SHA256()
                key.verify(raw, signed, crypto.PKCS1v15(), algo)
            elif isinstance(key, crypto.EllipticCurvePublicKey):
                if not sig_type_raw.startswith(b"ecdsa-"):
                    return False
                r, pos = _read_string(raw, 0)
                s, _ = _read_string(raw, pos)
                der = crypto.encode_dss_signature(
                    int.from_bytes(r, "big"), int.from_bytes(s, "big")
                )
                size = key.curve.key_size
                algo = (
                    crypto.SHA256()
                    if size <= 256
                    else crypto.SHA384()
                    if size <= 384
                    else crypto.SHA512()
                )
                key.verify(der, signed, crypto.ECDSA(algo))
            else:
                return None
        except (crypto.InvalidSignature, IndexError, ValueError):
            return False
        return True

    def _external(self, armored: str, data: bytes, writer: str, fingerprint: str) -> Check:
        """`ssh-keygen -Y verify` for key kinds this process does not check itself."""
        if self.allowed is None:
            return Check("unchecked", fingerprint, detail="no allowed signers file")
        with tempfile.TemporaryDirectory(prefix="kumo-audit-verify-") as tmp:
            signers = Path(tmp) / "allowed_signers"
            signers.write_text(self.allowed.text)
            sig_path = Path(tmp) / "entry.sig"
            sig_path.write_text(armored + "\n")
            try:
                proc = subprocess.run(
                    [
                        "ssh-keygen",
                        "-Y",
                        "verify",
                        "-f",
                        str(signers),
                        "-I",
                        writer,
                        "-n",
                        NAMESPACE,
                        "-s",
                        str(sig_path),
                    ],
                    input=data,
                    capture_output=True,
                    check=False,
                    timeout=60,
                )
            except (FileNotFoundError, subprocess.TimeoutExpired):
                return Check(
                    "bad", fingerprint, detail="ssh-keygen is needed to check this key type"
                )
        if proc.returncode == 0:
            return Check("good", fingerprint, writer)
        first = next(
            (
                ln.strip()
                for ln in proc.stderr.decode("utf-8", "replace").splitlines()
                if ln.strip()
            ),
            "rejected",
        )
        return Check("bad", fingerprint, detail=f"ssh-keygen: {first}")


def fingerprint_of(public_key: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(public_key).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def signers_by_fingerprint(allowed: AllowedSigners) -> dict[str, str]:
    """Key fingerprint -> the principals allowed_signers gives it (for display, not for checking)."""
    names: dict[str, list[str]] = {}
    for key in allowed.keys:
        names.setdefault(fingerprint_of(key.key), []).extend(key.principals)
    return {fp: ",".join(dict.fromkeys(p)) for fp, p in names.items()}
