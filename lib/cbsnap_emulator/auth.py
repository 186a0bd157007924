"""Request authentication: TC3 signature, timestamp window and session token."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from . import signature as tc3
from .errors import ApiError

DEFAULT_SECRET_ID = "AKIDcbsnapEMULATOR00000000000000000000"  # noqa: S105 - public, for the emulator only
DEFAULT_SECRET_KEY = "cbsnapEmulatorSecretKey0000000000000"  # noqa: S105 - public, for the emulator only

# Tencent rejects a timestamp more than 5 minutes away from server time (AuthFailure.SignatureExpire).
MAX_SKEW_SECONDS = 300


@dataclass(frozen=True)
class Credential:
    """A key pair the emulator accepts; ``token`` set means requests must carry exactly it."""

    secret_id: str
    secret_key: str
    token: str | None = None


@dataclass(frozen=True)
class Identity:
    """Who signed a request, and for which service (the credential scope's)."""

    secret_id: str
    service: str


def authenticate(
    method: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    credentials: Mapping[str, Credential],
    wall_now: float,
) -> Identity:
    """Verify a TC3-signed request (``headers`` keyed by lower-case name); raise ApiError AuthFailure.*."""
    raw = headers.get("authorization")
    if not raw:
        raise ApiError("AuthFailure.InvalidAuthorization", "The request has no Authorization header.")
    try:
        auth = tc3.parse_authorization(raw)
    except tc3.MalformedAuthorization as exc:
        raise ApiError(
            "AuthFailure.InvalidAuthorization", f"Authorization header is malformed: {exc}."
        ) from exc
    ts_text = headers.get("x-tc-timestamp", "").strip()
    if not ts_text.isdigit():
        raise ApiError("AuthFailure.InvalidAuthorization", "X-TC-Timestamp must be an integer of seconds.")
    cred = credentials.get(auth.secret_id)
    if cred is None:
        raise ApiError("AuthFailure.SecretIdNotFound", f"The SecretId `{auth.secret_id}` does not exist.")
    timestamp = int(ts_text)
    # Whole seconds, as the header carries: a timestamp exactly 300 s off is still accepted.
    if abs(int(wall_now) - timestamp) > MAX_SKEW_SECONDS:
        raise ApiError(
            "AuthFailure.SignatureExpire",
            f"Signature expired: the timestamp {timestamp} is more than {MAX_SKEW_SECONDS}s "
            f"from the server time {int(wall_now)}.",
        )
    if auth.date != tc3.scope_date(timestamp):
        # Tencent documents that a scope date not derived from the timestamp in UTC always fails.
        raise ApiError(
            "AuthFailure.SignatureFailure",
            f"The credential scope date {auth.date} is not the UTC date of X-TC-Timestamp "
            f"({tc3.scope_date(timestamp)}).",
        )
    unsigned = headers.get("x-tc-content-sha256", "").strip() == tc3.UNSIGNED_PAYLOAD
    canonical = tc3.canonical_request(
        method, query, headers, auth.signed_headers, tc3.payload_hash(body, unsigned=unsigned)
    )
    expected = tc3.signature(
        cred.secret_key,
        auth.date,
        auth.service,
        tc3.string_to_sign(ts_text, auth.date, auth.service, canonical),
    )
    if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
        raise ApiError("AuthFailure.SignatureFailure")
    token = headers.get("x-tc-token", "")
    if cred.token is not None and not hmac.compare_digest(token.encode(), cred.token.encode()):
        raise ApiError("AuthFailure.TokenFailure", "The X-TC-Token does not match the credential's token.")
    if cred.token is None and token:
        raise ApiError("AuthFailure.TokenFailure", "A token was sent for a credential that has none.")
    return Identity(auth.secret_id, auth.service)
