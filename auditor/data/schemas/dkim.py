"""DKIM signing data (policy-extras.dkim_sign): the DkimSignConfig records of
assets/policy-extras/dkim_sign.lua, with their exact keys per section and their enums.
"""

from __future__ import annotations

from auditor.data.schemas.base import StrictModel, typed

_DOMAIN_POLICY = "enum(Always)"
_SIGNATURE_POLICY = "enum(Always|OnlyIfMissingDomainBlock)"
_ALGO = "enum(sha256|ed25519)"


class DkimBase(StrictModel):
    section = "dkim [base] section"
    vault_mount: typed("string") = None  # type: ignore[valid-type]
    vault_path_prefix: typed("string") = None  # type: ignore[valid-type]
    additional_signatures: typed("list(string)") = None  # type: ignore[valid-type]
    policy: typed(_DOMAIN_POLICY) = None  # type: ignore[valid-type]
    selector: typed("string") = None  # type: ignore[valid-type]
    expiration: typed("number") = None  # type: ignore[valid-type]
    headers: typed("list(string)") = None  # type: ignore[valid-type]
    header_canonicalization: typed("string") = None  # type: ignore[valid-type]
    body_canonicalization: typed("string") = None  # type: ignore[valid-type]
    over_sign: typed("boolean") = None  # type: ignore[valid-type]


class DkimDomain(StrictModel):
    section = "dkim domain section"
    selector: typed("string") = None  # type: ignore[valid-type]
    headers: typed("list(string)") = None  # type: ignore[valid-type]
    policy: typed(_DOMAIN_POLICY) = None  # type: ignore[valid-type]
    algo: typed(_ALGO) = None  # type: ignore[valid-type]
    expiration: typed("number") = None  # type: ignore[valid-type]
    filename: typed("string") = None  # type: ignore[valid-type]
    header_canonicalization: typed("string") = None  # type: ignore[valid-type]
    body_canonicalization: typed("string") = None  # type: ignore[valid-type]
    over_sign: typed("boolean") = None  # type: ignore[valid-type]


class DkimSignature(DkimDomain):
    section = "dkim signature section"
    domain: typed("string", optional=False)  # type: ignore[valid-type]
    policy: typed(_SIGNATURE_POLICY) = None  # type: ignore[valid-type]


class DkimFile(StrictModel):
    section = "dkim data file"
    base: DkimBase | None = None
    domain: dict[str, DkimDomain] | None = None
    signature: dict[str, DkimSignature] | None = None


DOMAIN_SLOTS: tuple[tuple[str | None, ...], ...] = (("domain", None),)
NOT_DOMAINS: frozenset[str] = frozenset()
