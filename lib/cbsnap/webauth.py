"""HMAC authentication of webhook calls: what a caller signs and how cbsnap checks it.

A caller sends two headers::

    X-Cbsnap-Timestamp: 1764295200
    X-Cbsnap-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<payload>")>

``payload`` is the raw request body; when the body is empty it is the query
parameters sorted by name and form-encoded (``urlencode(sorted(params.items()))``),
so a signed ``GET`` cannot have its parameters changed. A timestamp more than
:data:`MAX_SKEW_SECONDS` from the server's clock is refused, which bounds how long
a captured request can be replayed. Comparison is constant-time.

The path and method are not signed (the format is the contract callers
implement); every route re-validates what it reads, and the one read-only route
(``GET /snapshots/{id}``) reveals only a snapshot's state.

Example
-------
>>> headers = auth_headers("s3cret", b'{"storageId": "disk-g73hhs4o"}', now=1764295200)
>>> headers["X-Cbsnap-Timestamp"], headers["X-Cbsnap-Signature"][:7]
('1764295200', 'sha256=')
>>> verify("s3cret", headers, b'{"storageId": "disk-g73hhs4o"}', now=1764295260) is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

TIMESTAMP_HEADER = "X-Cbsnap-Timestamp"
SIGNATURE_HEADER = "X-Cbsnap-Signature"
MAX_SKEW_SECONDS = 300
SIGNATURE_PREFIX = "sha256="

_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_SIGNATURE_RE = re.compile(r"sha256=[0-9a-fA-F]{64}")

QueryValue = str | Sequence[str]


class AuthError(Exception):
    """A request failed authentication; ``reason`` is safe to show the caller."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def canonical_query(params: Mapping[str, QueryValue]) -> str:
    """The query parameters as signed: sorted by name, form-encoded.

    A repeated parameter (a list of values) is encoded once per value, in order.
    """
    items = sorted((str(k), v if isinstance(v, str) else list(v)) for k, v in params.items())
    return urlencode(items, doseq=True)


def signing_payload(body: bytes, params: Mapping[str, QueryValue]) -> bytes:
    """What the signature covers: the raw body, or the canonical query when the body is empty."""
    return body if body else canonical_query(params).encode("utf-8")


def sign(secret: str, timestamp: int | str, payload: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``"<timestamp>.<payload>"``)."""
    message = str(timestamp).encode("ascii") + b"." + payload
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def auth_headers(secret: str, payload: bytes, now: float) -> dict[str, str]:
    """The two headers that authenticate ``payload`` at time ``now`` (unix seconds)."""
    timestamp = int(now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, payload)}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value by case-insensitive name (API Gateway may lower-case names)."""
    wanted = name.lower()
    found = [v for k, v in headers.items() if k.lower() == wanted]
    if len(found) != 1:  # absent, or sent twice under different spellings
        return None
    return found[0].strip()


def verify(
    secret: str,
    headers: Mapping[str, str],
    payload: bytes,
    now: float,
    *,
    max_skew: int = MAX_SKEW_SECONDS,
) -> None:
    """Check the signature headers of a request; raise :class:`AuthError` if they fail.

    ``headers`` are matched by case-insensitive name. A replay of a correctly
    signed request inside the window passes: replays are the idempotency layer's concern.
    """
    if not secret:
        raise AuthError("the webhook has no secret configured")
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if timestamp is None or signature is None:
        raise AuthError(f"send the {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers")
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise AuthError(f"{TIMESTAMP_HEADER} must be unix seconds")
    if abs(now - int(timestamp)) > max_skew:
        raise AuthError(f"{TIMESTAMP_HEADER} is more than {max_skew} s from the server's clock")
    if not _SIGNATURE_RE.fullmatch(signature):
        raise AuthError(f"{SIGNATURE_HEADER} must be sha256=<64 hex digits>")
    expected = sign(secret, timestamp, payload)
    if not hmac.compare_digest(expected.encode("ascii"), signature.lower().encode("ascii")):
        raise AuthError("signature mismatch")
