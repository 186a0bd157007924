"""TC3-HMAC-SHA256 (API 3.0 signature v3), computed the way Tencent's servers verify it.

Pure functions over strings and bytes; :mod:`cbsnap_emulator.auth` applies them to a request.
The recipe follows tencent-facts.md section 2.2 and Tencent's signature-process demo: canonical header
values are lower-cased and trimmed (the official demo signs ``x-tc-action:describeinstances``), the
SignedHeaders list is whatever the client declared, and the scope date is the UTC date of the timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

ALGORITHM = "TC3-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HEADER_NAME = re.compile(r"^[a-z0-9-]+$")


class MalformedAuthorization(ValueError):
    """The Authorization header cannot be parsed as TC3-HMAC-SHA256."""


@dataclass(frozen=True)
class Authorization:
    """The parts of a ``TC3-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`` header."""

    secret_id: str
    date: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Authorization:
    """Parse an Authorization header; raise :class:`MalformedAuthorization` if it is not TC3."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise MalformedAuthorization(f"unsupported algorithm {algorithm!r}, expected {ALGORITHM}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            raise MalformedAuthorization(f"bad Authorization component {part.strip()!r}")
        fields[key.strip()] = val.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        raise MalformedAuthorization(f"Authorization lacks {', '.join(missing)}")
    scope = fields["Credential"].split("/")
    if len(scope) != 4 or scope[3] != "tc3_request" or not all(scope[:3]):
        raise MalformedAuthorization("Credential must be <SecretId>/<YYYY-MM-DD>/<service>/tc3_request")
    if not _DATE.match(scope[1]):
        raise MalformedAuthorization(f"bad credential scope date {scope[1]!r}")
    signed = tuple(fields["SignedHeaders"].split(";"))
    if not all(_HEADER_NAME.match(name) for name in signed):
        raise MalformedAuthorization("SignedHeaders must be lower-case header names joined by ';'")
    if "content-type" not in signed or "host" not in signed:
        raise MalformedAuthorization("SignedHeaders must include content-type and host")
    return Authorization(scope[0], scope[1], scope[2], signed, fields["Signature"])


def scope_date(timestamp: int) -> str:
    """The credential-scope date for ``timestamp``: its UTC date, ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d")


def payload_hash(body: bytes, *, unsigned: bool = False) -> str:
    """``HashedRequestPayload``: hex sha256 of the body, or of ``UNSIGNED-PAYLOAD`` when so declared."""
    return hashlib.sha256(UNSIGNED_PAYLOAD.encode() if unsigned else body).hexdigest()


def canonical_request(
    method: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    hashed_payload: str,
) -> str:
    """Build the CanonicalRequest. ``headers`` maps lower-case names to raw values."""
    canonical_headers = "".join(
        f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed_headers
    )
    return "\n".join([method, "/", query, canonical_headers, ";".join(signed_headers), hashed_payload])


def string_to_sign(timestamp: str, date: str, service: str, canonical: str) -> str:
    """Build the StringToSign from the timestamp, scope and CanonicalRequest."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return "\n".join([ALGORITHM, timestamp, f"{date}/{service}/tc3_request", digest])


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signature(secret_key: str, date: str, service: str, to_sign: str) -> str:
    """Derive the signing key (TC3+key → date → service → tc3_request) and sign ``to_sign``."""
    k_signing = _hmac(_hmac(_hmac(("TC3" + secret_key).encode("utf-8"), date), service), "tc3_request")
    return hmac.new(k_signing, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization_header(
    secret_id: str,
    secret_key: str,
    *,
    service: str,
    timestamp: int,
    host: str,
    content_type: str = "application/json",
    body: bytes = b"",
    method: str = "POST",
    query: str = "",
    extra_signed: Mapping[str, str] | None = None,
) -> str:
    """Sign a request client-side and return its Authorization header (used by tests and tools)."""
    headers = {
        "content-type": content_type,
        "host": host,
        **{k.lower(): v for k, v in (extra_signed or {}).items()},
    }
    signed = tuple(sorted(headers))
    date = scope_date(timestamp)
    canonical = canonical_request(method, query, headers, signed, payload_hash(body))
    sig = signature(secret_key, date, service, string_to_sign(str(timestamp), date, service, canonical))
    return (
        f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, "
        f"SignedHeaders={';'.join(signed)}, Signature={sig}"
    )
