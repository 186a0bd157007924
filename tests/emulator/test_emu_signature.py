"""TC3-HMAC-SHA256 verification: the published test vectors and every AuthFailure over the wire."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from cbsnap_emulator import Emulator
from cbsnap_emulator import signature as tc3

# tencent-facts.md 2.2 (computed with the SDK's Sign.sign_tc3 and Tencent's demo; 7019a55b… is in the docs)
VECTOR_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
VECTOR_TS = 1551113065
VECTOR_BODY = json.dumps({"Limit": 1, "Filters": [{"Values": ["未命名"], "Name": "instance-name"}]}).encode()
VECTOR_HEADERS = {
    "content-type": "application/json; charset=utf-8",
    "host": "cvm.tencentcloudapi.com",
    "x-tc-action": "DescribeInstances",
}


@pytest.mark.parametrize(
    ("signed", "hashed_canonical", "expected"),
    [
        (
            ("content-type", "host", "x-tc-action"),
            "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84",
            "644be983de9a8a3f00db8eadaba61467c3b429e2215758ba897b738ca469fd26",
        ),
        (
            ("content-type", "host"),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031",
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
        ),
    ],
)
def test_published_vectors(signed: tuple[str, ...], hashed_canonical: str, expected: str) -> None:
    # Given the documented example request
    payload_hash = tc3.payload_hash(VECTOR_BODY)
    assert payload_hash == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    # When the emulator builds the canonical request (header values lower-cased) and signs it
    canonical = tc3.canonical_request("POST", "", VECTOR_HEADERS, signed, payload_hash)
    to_sign = tc3.string_to_sign(str(VECTOR_TS), tc3.scope_date(VECTOR_TS), "cvm", canonical)
    # Then both the hashed canonical request and the signature match the vectors
    assert to_sign.endswith(hashed_canonical)
    assert tc3.signature(VECTOR_KEY, "2019-02-25", "cvm", to_sign) == expected


def test_authorization_header_round_trip() -> None:
    header = tc3.authorization_header(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        VECTOR_KEY,
        service="cvm",
        timestamp=VECTOR_TS,
        host="cvm.tencentcloudapi.com",
        content_type="application/json; charset=utf-8",
        body=VECTOR_BODY,
    )
    assert header.endswith("Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")
    parsed = tc3.parse_authorization(header)
    assert (parsed.secret_id, parsed.date, parsed.service) == (
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "2019-02-25",
        "cvm",
    )


@pytest.mark.parametrize(
    "header",
    [
        "HMAC-SHA1 Credential=a/2020-01-01/cbs/tc3_request, SignedHeaders=content-type;host, Signature=x",
        "TC3-HMAC-SHA256 Credential=a/2020-01-01/cbs, SignedHeaders=content-type;host, Signature=x",
        "TC3-HMAC-SHA256 Credential=a/20200101/cbs/tc3_request, SignedHeaders=content-type;host, Signature=x",
        "TC3-HMAC-SHA256 Credential=a/2020-01-01/cbs/tc3_request, SignedHeaders=host, Signature=x",
        "TC3-HMAC-SHA256 Credential=a/2020-01-01/cbs/tc3_request, Signature=x",
        "TC3-HMAC-SHA256 garbage",
        "Bearer abc",
        "",
    ],
)
def test_malformed_authorization_is_invalid_authorization(emulator: Emulator, raw: Any, header: str) -> None:
    resp = raw.post(emulator, "DescribeDisks", authorization=header)
    assert raw.error(resp) == "AuthFailure.InvalidAuthorization"


def test_hand_signed_request_is_accepted(emulator: Emulator, raw: Any) -> None:
    resp = raw.post(emulator, "DescribeDisks", b'{"Limit": 5}')
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json()["Response"]["TotalCount"] == 0


@pytest.mark.parametrize(("skew", "ok"), [(-302, False), (302, False), (-299, True), (299, True)])
def test_timestamp_window_is_five_minutes(emulator: Emulator, raw: Any, skew: int, ok: bool) -> None:
    resp = raw.post(emulator, "DescribeDisks", timestamp=int(time.time()) + skew)
    body = resp.json()["Response"]
    if ok:
        assert "Error" not in body
    else:
        assert raw.error(resp) == "AuthFailure.SignatureExpire"


def test_advancing_the_state_clock_does_not_expire_signatures(emulator: Emulator, sdk: Any) -> None:
    emulator.advance(86_400 * 30)
    assert sdk.cbs("DescribeDisks")["TotalCount"] == 0


def test_scope_date_must_be_utc_date_of_timestamp(emulator: Emulator, raw: Any) -> None:
    resp = raw.post(emulator, "DescribeDisks", scope_date="2001-01-01")
    assert raw.error(resp) == "AuthFailure.SignatureFailure"


def test_tampered_body_fails_signature(emulator: Emulator, raw: Any) -> None:
    good = raw.post(emulator, "DescribeDisks", b'{"Limit": 5}')
    assert "Error" not in good.json()["Response"]
    # Same headers, different body: replay the Authorization of one body with another.
    auth = good.request.headers["Authorization"]
    resp = raw.post(emulator, "DescribeDisks", b'{"Limit": 6}', authorization=auth)
    assert raw.error(resp) == "AuthFailure.SignatureFailure"


def test_unknown_secret_id(make_sdk: Any) -> None:
    err = make_sdk(secret_id="AKIDnobody").cbs_error("DescribeDisks")
    assert err.code == "AuthFailure.SecretIdNotFound"


def test_wrong_secret_key(make_sdk: Any) -> None:
    err = make_sdk(secret_key="not-the-key").cbs_error("DescribeDisks")
    assert err.code == "AuthFailure.SignatureFailure"


def test_token_rules(emulator: Emulator, make_sdk: Any) -> None:
    # A credential without a token refuses any token
    assert make_sdk(token="stray").cbs_error("DescribeDisks").code == "AuthFailure.TokenFailure"
    # A credential with a token demands exactly it
    emulator.add_credential("AKIDtemporary", "temp-key", token="session-token-1")
    assert (
        make_sdk(secret_id="AKIDtemporary", secret_key="temp-key", token="session-token-1").cbs(
            "DescribeDisks"
        )["TotalCount"]
        == 0
    )
    for token in (None, "session-token-2"):
        err = make_sdk(secret_id="AKIDtemporary", secret_key="temp-key", token=token).cbs_error(
            "DescribeDisks"
        )
        assert err.code == "AuthFailure.TokenFailure"


def test_seed_credentials_with_token(make_sdk: Any, raw: Any) -> None:
    seed = {"credentials": [{"SecretId": "AKIDscf", "SecretKey": "scf-key", "Token": "scf-token"}]}
    with Emulator(seed) as emu:
        assert make_sdk(emu, secret_id="AKIDscf", secret_key="scf-key", token="scf-token").cbs(
            "DescribeDisks"
        )
        assert raw.error(raw.post(emu, "DescribeDisks", secret_id="AKIDscf", secret_key="scf-key")) == (
            "AuthFailure.TokenFailure"
        )


def test_unsigned_payload_and_get_are_verified(emulator: Emulator, make_sdk: Any) -> None:
    emulator.add_disk("disk-aaaa0001", tags={"backup": "nightly"})
    for client in (make_sdk(unsigned_payload=True), make_sdk(method="GET")):
        found = client.cbs("DescribeDisks", Filters=[{"Name": "tag:backup", "Values": ["nightly"]}])
        assert [d["DiskId"] for d in found["DiskSet"]] == ["disk-aaaa0001"]


def test_auth_failures_are_rejected_not_called(emulator: Emulator, make_sdk: Any) -> None:
    with pytest.raises(TencentCloudSDKException):
        make_sdk(secret_key="wrong").cbs("DescribeDisks")
    assert emulator.calls() == []
    [rejected] = emulator.rejected
    assert rejected["code"] == "AuthFailure.SignatureFailure"
    assert rejected["action"] == "DescribeDisks"
    assert rejected["service"] == "cbs"
