"""HMAC authentication of webhook calls: what a caller signs and how cbsnap checks it.

A caller sends two headers::

    X-Cbsnap-Timestamp: 1764295200
    X-Cbsnap-Signature: sha256=<hex HMAC-SHA256(secret, message)>

where ``message`` is

* ``"<timestamp>.<payload>"`` for a request without an ``Idempotency-Key`` header, and
* ``"<timestamp>\\n<key>\\n<payload>"`` for a request with one (``key`` is the header's value).

``payload`` is the raw request body; when the body is empty it is the query parameters
sorted by name and form-encoded (``urlencode(sorted(params.items()))``), so a signed
``GET`` cannot have its parameters changed. A timestamp more than :data:`MAX_SKEW_SECONDS`
from the server's clock is refused. Comparison is constant-time.

Why the key is signed, and why in a second format
-------------------------------------------------
The key names the request: two calls with one key make one snapshot per disk. Unsigned,
it let anyone holding a captured request replay it under fresh keys inside the window,
one new snapshot each. Signed, a replay can only repeat the key it was captured with.

The format of a keyed message cannot be confused with the old one, so no signature made
for one can validate the other (HMAC is only as unambiguous as the bytes it covers):

* The timestamp is 1 to 12 ASCII digits (checked before anything is computed). In the old
  format the first byte after it is ``.``; in the keyed format it is ``\\n``. So an old
  message and a keyed message always differ, whatever the key and payloads: adding an
  ``Idempotency-Key`` header to a captured unkeyed request, or removing it from a keyed
  one, leaves a signature over bytes that the server no longer computes.
* A valid key is printable ASCII without spaces (``[\\x21-\\x7e]{1,128}``), so it holds no
  ``\\n``: the key ends at the second ``\\n``, and the payload (which may hold anything)
  follows it. Two (key, payload) pairs give the same message only if they are equal.
  A header that is not a valid key could make that ambiguous, but such a request is
  refused with a 400 before anything runs, so its signature buys nothing.

The method and path are not signed (the format is the contract callers implement);
every route re-validates what it reads, and the one read-only route
(``GET /snapshots/{id}``) reveals only a snapshot's state.

The request's identity
----------------------
:func:`verify` returns a digest of the signed message. The webhook names a request
without a key by it (``webhook/<digest>``): a replay, whatever request id API Gateway
gives it, is the same request and is answered with the snapshots the first call made.

Example
-------
>>> headers = auth_headers("s3cret", b'{"storageId": "disk-g73hhs4o"}', now=1764295200)
>>> headers["X-Cbsnap-Timestamp"], headers["X-Cbsnap-Signature"][:7]
('1764295200', 'sha256=')
>>> len(verify("s3cret", headers, b'{"storageId": "disk-g73hhs4o"}', now=1764295260))
64
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

TIMESTAMP_HEADER = "X-Cbsnap-Timestamp"
SIGNATURE_HEADER = "X-Cbsnap-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_SKEW_SECONDS = 300
SIGNATURE_PREFIX = "sha256="
# The shortest webhook secret accepted (settings refuse shorter ones at start-up): SHA-256's
# output length. RFC 2104 §3: keys shorter than it "would decrease the security strength".
MIN_SECRET_BYTES = 32

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

    A repeated parameter (a list of values) is encoded once per value, in order. Text
    that is not valid Unicode (a lone surrogate) is encoded with ``surrogatepass`` rather
    than raising: such a request is refused later, but must not crash the check.
    """
    items = sorted((str(k), v if isinstance(v, str) else list(v)) for k, v in params.items())
    return urlencode(items, doseq=True, encoding="utf-8", errors="surrogatepass")


def signing_payload(body: bytes, params: Mapping[str, QueryValue]) -> bytes:
    """What the signature covers: the raw body, or the canonical query when the body is empty."""
    return body if body else canonical_query(params).encode("utf-8")


def signing_message(timestamp: int | str, payload: bytes, key: str | None = None) -> bytes:
    """The bytes that are signed: ``<timestamp>.<payload>``, or ``<timestamp>\\n<key>\\n<payload>``
    when the request carries an ``Idempotency-Key`` (see the module's docstring for why)."""
    stamp = str(timestamp).encode("ascii")
    if key is None:
        return stamp + b"." + payload
    return stamp + b"\n" + key.encode("utf-8", "surrogatepass") + b"\n" + payload


def sign(secret: str, timestamp: int | str, payload: bytes, key: str | None = None) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, :func:`signing_message`)."""
    message = signing_message(timestamp, payload, key)
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def auth_headers(secret: str, payload: bytes, now: float, key: str | None = None) -> dict[str, str]:
    """The headers that authenticate ``payload`` at time ``now`` (unix seconds): the timestamp,
    the signature, and ``Idempotency-Key`` when a key is given (it is signed with the rest)."""
    timestamp = int(now)
    headers = {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, payload, key)}
    if key is not None:
        headers[IDEMPOTENCY_HEADER] = key
    return headers


def _values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of a header by case-insensitive name (API Gateway may lower-case names)."""
    wanted = name.lower()
    return [v for k, v in headers.items() if k.lower() == wanted]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    found = _values(headers, name)
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
) -> str:
    """Check the signature headers of a request; raise :class:`AuthError` if they fail.

    ``headers`` are matched by case-insensitive name; an ``Idempotency-Key`` among them
    is part of what must have been signed. Returns the hex SHA-256 of the signed message:
    the request's identity, the same for every replay of it.
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
    keys = _values(headers, IDEMPOTENCY_HEADER)
    if len(keys) > 1:
        raise AuthError(f"the {IDEMPOTENCY_HEADER} header is sent more than once")
    key = keys[0] if keys else None  # exactly as sent: the key is compared byte for byte later
    message = signing_message(timestamp, payload, key)
    expected = SIGNATURE_PREFIX + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), signature.lower().encode("ascii")):
        if key is not None:  # the likeliest cause: a client still signing the unkeyed format
            raise AuthError(f"signature mismatch (a request with {IDEMPOTENCY_HEADER} signs the key too)")
        raise AuthError("signature mismatch")
    return hashlib.sha256(message).hexdigest()
