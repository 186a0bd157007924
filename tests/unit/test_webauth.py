"""HMAC signing and verification of webhook calls (no I/O)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cbsnap.webauth import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AuthError,
    auth_headers,
    canonical_query,
    sign,
    signing_payload,
    verify,
)

SECRET = "s3cret"
NOW = 1795831200
BODY = b'{"storageId": "disk-g73hhs4o"}'


def test_known_vector() -> None:
    # HMAC-SHA256("s3cret", "1795831200.<body>"), computed independently with hmac.
    expected = hmac.new(b"s3cret", b"1795831200." + BODY, hashlib.sha256).hexdigest()
    assert expected == "19344c3302e78d8423190fb9adf454289dc75eb90b65ead146f757369e8ed1e6"
    assert sign(SECRET, NOW, BODY) == "sha256=" + expected


def test_payload_is_the_body_or_else_the_sorted_query() -> None:
    query = {"storageId": "disk-g73hhs4o", "Action": "CreateSnapshot", "snapshotName": "my snap"}
    assert signing_payload(BODY, query) == BODY
    assert (
        signing_payload(b"", query) == b"Action=CreateSnapshot&snapshotName=my+snap&storageId=disk-g73hhs4o"
    )
    assert signing_payload(b"", {}) == b""


def test_canonical_query_encodes_repeats_and_specials() -> None:
    assert canonical_query({"b": ["2", "1"], "a": "x&y=z"}) == "a=x%26y%3Dz&b=2&b=1"
    assert canonical_query({"名": "快照"}) == "%E5%90%8D=%E5%BF%AB%E7%85%A7"


def test_headers_verify_within_the_window() -> None:
    headers = auth_headers(SECRET, BODY, NOW)
    assert headers[TIMESTAMP_HEADER] == str(NOW)
    verify(SECRET, headers, BODY, NOW)
    verify(SECRET, headers, BODY, NOW + 300)
    verify(SECRET, headers, BODY, NOW - 300)


@pytest.mark.parametrize("skew", [301, -301, 10_000])
def test_a_timestamp_past_the_window_is_refused(skew: int) -> None:
    headers = auth_headers(SECRET, BODY, NOW)
    with pytest.raises(AuthError, match="300 s"):
        verify(SECRET, headers, BODY, NOW + skew)


def test_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in auth_headers(SECRET, BODY, NOW).items()}
    verify(SECRET, headers, BODY, NOW)
    verify(SECRET, {k.upper(): v for k, v in headers.items()}, BODY, NOW)


def test_uppercase_hex_is_accepted() -> None:
    headers = auth_headers(SECRET, BODY, NOW)
    headers[SIGNATURE_HEADER] = "sha256=" + headers[SIGNATURE_HEADER][7:].upper()
    verify(SECRET, headers, BODY, NOW)


def _bad(headers: dict[str, str], payload: bytes = BODY, secret: str = SECRET) -> str:
    with pytest.raises(AuthError) as info:
        verify(secret, headers, payload, NOW)
    return info.value.reason


def test_refusals_say_why_without_the_expected_signature() -> None:
    good = auth_headers(SECRET, BODY, NOW)
    expected_hex = good[SIGNATURE_HEADER][7:]
    reasons = [
        _bad({}),
        _bad({TIMESTAMP_HEADER: good[TIMESTAMP_HEADER]}),
        _bad({SIGNATURE_HEADER: good[SIGNATURE_HEADER]}),
        _bad({**good, TIMESTAMP_HEADER: "yesterday"}),
        _bad({**good, TIMESTAMP_HEADER: "-5"}),
        _bad({**good, SIGNATURE_HEADER: expected_hex}),  # no sha256= prefix
        _bad({**good, SIGNATURE_HEADER: "sha256=abc"}),
        _bad(good, payload=BODY + b" "),  # tampered body
        _bad(good, secret="another-secret"),
        _bad({**good, TIMESTAMP_HEADER: str(NOW + 1)}),  # re-dated signature
        _bad({**good, "x-cbsnap-signature": good[SIGNATURE_HEADER]}),  # the header twice
        _bad(good, secret=""),
    ]
    assert all(reasons)
    assert not any(expected_hex in r for r in reasons)


@given(secret=st.text(min_size=1, max_size=40), body=st.binary(max_size=200), flip=st.integers(0, 199))
def test_any_change_to_the_payload_breaks_the_signature(secret: str, body: bytes, flip: int) -> None:
    headers = auth_headers(secret, body, NOW)
    verify(secret, headers, body, NOW)
    if body:
        i = flip % len(body)
        tampered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        with pytest.raises(AuthError):
            verify(secret, headers, tampered, NOW)
