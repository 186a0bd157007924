"""HMAC signing and verification of webhook calls, and the secret's length (no I/O)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from cbsnap.settings import Settings
from cbsnap.webauth import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AuthError,
    auth_headers,
    canonical_query,
    sign,
    signing_message,
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


# -- the key is signed (issue 9, finding 10) -------------------------------------------------------

KEY = "deploy-42"


def test_known_vector_with_a_key() -> None:
    # HMAC-SHA256("s3cret", "1795831200\ndeploy-42\n<body>"), computed independently with hmac.
    expected = hmac.new(b"s3cret", b"1795831200\ndeploy-42\n" + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY, KEY) == "sha256=" + expected
    headers = auth_headers(SECRET, BODY, NOW, key=KEY)
    assert headers == {
        TIMESTAMP_HEADER: str(NOW),
        SIGNATURE_HEADER: "sha256=" + expected,
        IDEMPOTENCY_HEADER: KEY,
    }
    verify(SECRET, headers, BODY, NOW)
    verify(SECRET, {k.lower(): v for k, v in headers.items()}, BODY, NOW)


def test_a_key_added_to_a_request_signed_without_one_fails() -> None:
    captured = auth_headers(SECRET, BODY, NOW)
    for key in (KEY, "replay-1", "x"):
        reason = _bad({**captured, IDEMPOTENCY_HEADER: key})
        assert "signature mismatch" in reason


def test_a_key_removed_or_changed_fails() -> None:
    keyed = auth_headers(SECRET, BODY, NOW, key=KEY)
    assert "signature mismatch" in _bad({k: v for k, v in keyed.items() if k != IDEMPOTENCY_HEADER})
    assert "signature mismatch" in _bad({**keyed, IDEMPOTENCY_HEADER: "deploy-43"})


def test_the_key_is_sent_once() -> None:
    keyed = auth_headers(SECRET, BODY, NOW, key=KEY)
    assert "more than once" in _bad({**keyed, "idempotency-key": KEY})


@given(
    ts=st.integers(min_value=0, max_value=10**12 - 1),
    key=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=128),
    payload=st.binary(max_size=64),
    other=st.binary(max_size=64),
)
def test_no_unkeyed_message_equals_a_keyed_one(ts: int, key: str, payload: bytes, other: bytes) -> None:
    """The formats cannot collide: after the digits, one has '.' and the other a newline."""
    assert signing_message(ts, payload) != signing_message(ts, other, key)


@given(
    key=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8),
    other=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8),
    payload=st.binary(max_size=16),
    tail=st.binary(max_size=16),
)
def test_valid_keys_and_payloads_split_one_way(key: str, other: str, payload: bytes, tail: bytes) -> None:
    """A valid key holds no newline, so (key, payload) is recovered from the message uniquely."""
    if (key, payload) != (other, tail):
        assert signing_message(NOW, payload, key) != signing_message(NOW, tail, other)


def test_verify_returns_the_digest_of_what_was_signed() -> None:
    plain = verify(SECRET, auth_headers(SECRET, BODY, NOW), BODY, NOW + 5)
    keyed = verify(SECRET, auth_headers(SECRET, BODY, NOW, key=KEY), BODY, NOW + 5)
    assert plain == hashlib.sha256(b"1795831200." + BODY).hexdigest()
    assert keyed == hashlib.sha256(b"1795831200\ndeploy-42\n" + BODY).hexdigest()
    # a replay is the same request; a re-signed call (another second) is another
    assert verify(SECRET, auth_headers(SECRET, BODY, NOW), BODY, NOW + 200) == plain
    assert verify(SECRET, auth_headers(SECRET, BODY, NOW + 1), BODY, NOW + 1) != plain


def test_a_query_that_is_not_valid_unicode_is_signed_not_raised() -> None:
    assert canonical_query({"snapshotName": "x\ud800"}) == "snapshotName=x%ED%A0%80"


# -- the secret's length --------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["CBSNAP_WEBHOOK_SECRET", "CBSNAP_PUSH_TOKEN"])
def test_a_secret_shorter_than_32_bytes_is_refused_at_start_up(variable: str) -> None:
    short = "s" * 31
    with pytest.raises(ValidationError) as info:
        Settings.from_env({variable: short})
    message = str(info.value)
    assert f"{variable} must be at least 32 bytes, got 31" in message
    assert short not in message, "the message never carries the secret"


def test_a_secret_of_32_bytes_is_accepted_and_redacted() -> None:
    settings = Settings.from_env({"CBSNAP_WEBHOOK_SECRET": "w" * 32, "CBSNAP_PUSH_TOKEN": "p" * 32})
    assert settings.webhook_secret is not None and settings.push_token is not None
    assert {"w" * 32, "p" * 32} <= set(settings.secrets())
    # counted in bytes: 11 three-byte characters are 33 bytes
    assert Settings(webhook_secret=SecretStr("密" * 11)).webhook_secret is not None
    with pytest.raises(ValidationError):
        Settings(webhook_secret=SecretStr("密" * 10))
