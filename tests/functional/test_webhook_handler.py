"""The webhook end to end: API Gateway event → auth → routes → real SDK → emulator.

The wall clock is injected (``main_handler(..., clock=...)``): no test sleeps.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

import pytest
from pydantic import SecretStr

from cbsnap.codes import SeedCode
from cbsnap.events.apigw import parse_apigw_event
from cbsnap.models import SnapshotResult
from cbsnap.outcome import Outcome
from cbsnap.runtime import set_runtime
from cbsnap.webauth import auth_headers, signing_payload
from cbsnap.webhook import outcome_response, status_for
from cbsnap_cli.main import main as cli_main
from cbsnap_emulator import Emulator, Fault
from handlers.webhook import main_handler
from tests.conftest import RuntimeHarness, emulator_settings, load_event, owned_snapshots, scf_context

NOW = 1795831200  # 2026-11-28T02:00:00Z, the timestamp the sample events are signed with
SAMPLE_SECRET = "example-webhook-secret-do-not-use"  # docs/triggers.md
SECRET = "whsec-DISTINCTIVE-7c1e-do-not-leak"

# The documented API Gateway event (tencent-facts §4.1), verbatim but for what each test sets.
APIGW_DOC: dict[str, Any] = {
    "requestContext": {
        "serviceId": "service-f94sy04v",
        "path": "/test/{path}",
        "httpMethod": "POST",
        "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "identity": {"secretId": "abdcdxxxxxxxsdfs"},
        "sourceIp": "10.0.2.14",
        "stage": "release",
    },
    "headers": {
        "Accept-Language": "en-US,en,cn",
        "Accept": "text/html,application/xml,application/json",
        "Host": "service-3ei3tii4-251000691.ap-guangzhou.apigateway.myqloud.com",
        "User-Agent": "User Agent String",
    },
    "body": '{"test":"body"}',
    "pathParameters": {"path": "value"},
    "queryStringParameters": {"foo": "bar"},
    "headerParameters": {"Refer": "10.0.2.14"},
    "stageVariables": {"stage": "release"},
    "path": "/test/value",
    "queryString": {"foo": "bar", "bob": "alice"},
    "httpMethod": "POST",
}


def request(
    method: str,
    path: str,
    *,
    body: str | bytes | None = None,
    query: dict[str, Any] | None = None,
    secret: str | None = SECRET,
    ts: int = NOW,
    headers: dict[str, str] | None = None,
    lower: bool = False,
    b64: bool = False,
    request_id: str | None = "req-0001",
) -> dict[str, Any]:
    """A documented-shape API Gateway event, signed with ``secret`` at ``ts`` (unless None)."""
    event = copy.deepcopy(APIGW_DOC)
    raw = body.encode() if isinstance(body, str) else body
    event.update(httpMethod=method, path=path, queryString=query or {}, queryStringParameters={})
    event["requestContext"].update(httpMethod=method, path=path, requestId=request_id)
    if request_id is None:
        del event["requestContext"]["requestId"]
    if raw is None:
        del event["body"]
    else:
        event["body"] = base64.b64encode(raw).decode() if b64 else raw.decode()
        event["isBase64Encoded"] = b64
    if secret is not None:
        # an Idempotency-Key among the headers is signed with the rest (cbsnap.webauth)
        key = next((v for k, v in (headers or {}).items() if k.lower() == "idempotency-key"), None)
        signed = auth_headers(secret, signing_payload(raw or b"", query or {}), ts, key=key)
        signed.pop("Idempotency-Key", None)  # the caller's own spelling of it follows
        event["headers"].update(signed)
    event["headers"].update(headers or {})
    if lower:
        event["headers"] = {k.lower(): v for k, v in event["headers"].items()}
    return event


def identity(ts: int, payload: bytes, query: dict[str, Any] | None = None, key: str | None = None) -> str:
    """The request key's digest, computed independently: SHA-256 of the signed message."""
    signed = payload or signing_payload(b"", query or {})
    message = f"{ts}.".encode() + signed if key is None else f"{ts}\n{key}\n".encode() + signed
    return hashlib.sha256(message).hexdigest()[:32]


def post(document: Any, **kwargs: Any) -> dict[str, Any]:
    body = document if isinstance(document, (str, bytes)) else json.dumps(document)
    return request("POST", "/snapshots", body=body, **kwargs)


def v2(params: dict[str, Any], method: str = "GET", **kwargs: Any) -> dict[str, Any]:
    return request(method, "/v2/index.php", query=params, **kwargs)


def call(event: Any, *, now: float = NOW, timeout_ms: int = 30_000) -> tuple[int, dict[str, Any]]:
    """Invoke the handler at wall-clock ``now``; check the integrated-response shape."""
    response = main_handler(event, scf_context(timeout_ms), clock=lambda: now)
    assert set(response) == {"isBase64Encoded", "statusCode", "headers", "body"}
    assert response["isBase64Encoded"] is False and isinstance(response["statusCode"], int)
    assert response["headers"]["Content-Type"] == "application/json"
    assert isinstance(response["body"], str)
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def web(emulator: Emulator) -> Iterator[RuntimeHarness]:
    """A runtime with the distinctive webhook secret, wired to the emulator."""
    h = RuntimeHarness(emulator_settings(emulator, webhook_secret=SecretStr(SECRET), webhook_max_body=2048))
    yield h
    set_runtime(None)


@pytest.fixture
def sample_web(emulator: Emulator) -> Iterator[RuntimeHarness]:
    """A runtime with the documented example secret the sample events are signed with."""
    h = RuntimeHarness(emulator_settings(emulator, webhook_secret=SecretStr(SAMPLE_SECRET)))
    yield h
    set_runtime(None)


SEED = {"storageId": "disk-g73hhs4o", "snapshotName": "mySnap"}


# -- sample events and documented shapes -------------------------------------------------


def test_sample_seed_form(emulator: Emulator, sample_web: RuntimeHarness) -> None:
    status, body = call(load_event("apigw-seed.json"))
    assert status == 200
    assert body["code"] == 0 and body["message"] == "" and body["snapshotId"].startswith("snap-")
    assert body["storageId"] == "disk-g73hhs4o" and body["snapshotName"] == "mySnap"
    # named by what was signed, not by API Gateway's request id (a replay gets a new one)
    sample = load_event("apigw-seed.json")
    assert body["requestKey"] == "webhook/" + identity(NOW, sample["body"].encode())
    [snap] = owned_snapshots(emulator, "disk-g73hhs4o")
    assert snap["SnapshotId"] == body["snapshotId"]


def test_sample_batch_with_lowercased_headers(emulator: Emulator, sample_web: RuntimeHarness) -> None:
    event = load_event("apigw-snapshots.json")
    assert "x-cbsnap-signature" in event["headers"]
    status, body = call(event)
    assert status == 200 and body["code"] == 0 and body["message"] == ""
    assert [(r["storageId"], r["code"]) for r in body["results"]] == [
        ("disk-g73hhs4o", 0),
        ("disk-q7m3x9ab", 0),
    ]
    assert body["results"][1]["snapshotName"] == "db-before-deploy"


@pytest.mark.parametrize(
    ("name", "disk"), [("apigw-v2-get.json", "disk-g73hhs4o"), ("apigw-v2-post.json", "disk-q7m3x9ab")]
)
def test_sample_v2_endpoint(emulator: Emulator, sample_web: RuntimeHarness, name: str, disk: str) -> None:
    status, body = call(load_event(name))
    assert status == 200
    assert (body["code"], body["message"], body["storageId"]) == (0, "", disk)
    assert body["snapshotId"] == owned_snapshots(emulator, disk)[0]["SnapshotId"]


def test_sample_snapshot_status(emulator: Emulator, sample_web: RuntimeHarness) -> None:
    # snap-m4nu4l01 is a manual snapshot in the emulator's default seed
    status, body = call(load_event("apigw-snapshot-status.json"))
    assert status == 200
    assert body == {
        "code": 0,
        "message": "",
        "snapshotId": "snap-m4nu4l01",
        "storageId": "disk-g73hhs4o",
        "state": "NORMAL",
        "percent": 100,
        "name": "manual-before-upgrade",
        "createTime": body["createTime"],
    }
    assert len(body["createTime"]) == 19  # "YYYY-MM-DD HH:MM:SS"


def test_the_samples_fail_once_their_window_has_passed(
    emulator: Emulator, sample_web: RuntimeHarness
) -> None:
    status, _ = call(load_event("apigw-seed.json"), now=NOW + 301)
    assert status == 401 and emulator.calls() == []


def test_documented_event_shape_with_a_request_document(emulator: Emulator, web: RuntimeHarness) -> None:
    status, body = call(post(SEED))
    assert status == 200 and body["code"] == 0
    assert body["requestKey"] == "webhook/" + identity(NOW, json.dumps(SEED).encode())


def test_create_then_poll_the_snapshot(emulator: Emulator, web: RuntimeHarness) -> None:
    _, created = call(post(SEED))
    status, body = call(request("GET", f"/snapshots/{created['snapshotId']}"))
    assert status == 200 and body["snapshotId"] == created["snapshotId"]
    assert body["storageId"] == "disk-g73hhs4o" and body["name"] == "mySnap"
    assert body["state"] in ("CREATING", "NORMAL") and 0 <= body["percent"] <= 100


def test_unknown_and_malformed_snapshot_ids(emulator: Emulator, web: RuntimeHarness) -> None:
    status, body = call(request("GET", "/snapshots/snap-zzzzzzzz"))
    assert (status, body["code"]) == (404, 9003) and "snap-zzzzzzzz" in body["message"]
    emulator.reset_calls()
    for bad in ("snap-SHOUT123", "disk-g73hhs4o", "snap-short", "snap-aaaaaaaaa"):
        status, body = call(request("GET", f"/snapshots/{bad}"))
        assert (status, body["code"]) == (400, 9003)
    assert emulator.calls() == []


def test_a_stage_prefix_in_the_path_is_tolerated(emulator: Emulator, web: RuntimeHarness) -> None:
    status, _ = call(request("POST", "/release/snapshots", body=json.dumps(SEED)))
    assert status == 200


def test_base64_bodies_are_decoded_and_the_signature_covers_the_bytes(
    emulator: Emulator, web: RuntimeHarness
) -> None:
    status, body = call(post(SEED, b64=True))
    assert status == 200 and body["code"] == 0
    broken = post(SEED, b64=True)
    broken["body"] = "%%% not base64 %%%"
    assert call(broken)[0] == 401


# -- authentication ----------------------------------------------------------------------


def _without(event: dict[str, Any], *names: str) -> dict[str, Any]:
    event["headers"] = {k: v for k, v in event["headers"].items() if k.lower() not in names}
    return event


def _tampered_body() -> dict[str, Any]:
    event = post(SEED)
    event["body"] = event["body"].replace("disk-g73hhs4o", "disk-lzrg2pwi")
    return event


def _tampered_query() -> dict[str, Any]:
    event = v2({"Action": "CreateSnapshot", "storageId": "disk-g73hhs4o"})
    event["queryString"]["storageId"] = "disk-lzrg2pwi"
    return event


def _added_query() -> dict[str, Any]:
    event = v2({"Action": "CreateSnapshot", "storageId": "disk-g73hhs4o"})
    event["queryString"]["snapshotName"] = "sneaky"
    return event


def _redated() -> dict[str, Any]:
    event = post(SEED)
    event["headers"]["X-Cbsnap-Timestamp"] = str(NOW + 5)
    return event


UNAUTHENTICATED = {
    "no headers": lambda: post(SEED, secret=None),
    "no signature": lambda: _without(post(SEED), "x-cbsnap-signature"),
    "no timestamp": lambda: _without(post(SEED), "x-cbsnap-timestamp"),
    "wrong secret": lambda: post(SEED, secret="not-the-secret"),
    "bare hex signature": lambda: post(SEED, headers={"X-Cbsnap-Signature": "ab" * 32}),
    "tampered body": _tampered_body,
    "tampered query": _tampered_query,
    "added query parameter": _added_query,
    "re-dated signature": _redated,
    "timestamp 301 s old": lambda: post(SEED, ts=NOW - 301),
    "timestamp 301 s ahead": lambda: post(SEED, ts=NOW + 301),
    "timestamp not a number": lambda: post(SEED, headers={"X-Cbsnap-Timestamp": "now"}),
    "unknown route": lambda: request("DELETE", "/admin", secret=None),
    "a timer event": lambda: {"Type": "Timer", "TriggerName": "t", "Time": "x", "Message": "{}"},
    "not an object": lambda: None,
}


@pytest.mark.parametrize("make", UNAUTHENTICATED.values(), ids=UNAUTHENTICATED.keys())
def test_unauthenticated_requests_get_401_and_no_api_call(
    emulator: Emulator, web: RuntimeHarness, make: Any
) -> None:
    status, body = call(make())
    assert status == 401
    assert body["code"] == 4100 and body["codeDesc"] == "AuthFailure" and body["message"]
    assert emulator.calls() == []
    [refusal] = [r for r in web.log_records() if r.get("message") == "webhook.refused"]
    assert refusal["status"] == 401 and "result" not in refusal


@pytest.mark.parametrize(
    "make",
    [
        lambda: post(SEED, lower=True),
        lambda: post(SEED, headers={}, lower=False),
        lambda: post(SEED, ts=NOW - 300),
        lambda: post(SEED, ts=NOW + 300),
        lambda: v2({"Action": "CreateSnapshot", "storageId": "disk-g73hhs4o", "snapshotName": "a b&c"}),
    ],
    ids=["lower-cased names", "canonical names", "300 s old", "300 s ahead", "query with specials"],
)
def test_correctly_signed_requests_pass(emulator: Emulator, web: RuntimeHarness, make: Any) -> None:
    status, body = call(make())
    assert status == 200 and body["code"] == 0


def test_upper_cased_header_names_pass(emulator: Emulator, web: RuntimeHarness) -> None:
    event = post(SEED)
    event["headers"] = {k.upper(): v for k, v in event["headers"].items()}
    assert call(event)[0] == 200


def test_a_replay_inside_the_window_is_accepted(emulator: Emulator, web: RuntimeHarness) -> None:
    event = post(SEED)
    first_status, first = call(event)
    again_status, again = call(copy.deepcopy(event), now=NOW + 120)
    assert first_status == again_status == 200
    # Same API Gateway requestId, same request key: the snapshot is adopted, not repeated.
    assert again["snapshotId"] == first["snapshotId"]
    assert len(owned_snapshots(emulator, "disk-g73hhs4o")) == 1


def test_no_secret_refuses_everything(emulator: Emulator) -> None:
    RuntimeHarness(emulator_settings(emulator))
    try:
        for event in (post(SEED, secret=None), post(SEED, secret="anything"), request("GET", "/nowhere")):
            status, body = call(event)
            assert status == 401 and "not configured" in body["message"]
        assert emulator.calls() == []
    finally:
        set_runtime(None)


def test_gateway_mode_delegates_auth_to_api_gateway(emulator: Emulator) -> None:
    RuntimeHarness(emulator_settings(emulator, webhook_auth="gateway"))
    try:
        status, body = call(post(SEED, secret=None))
        assert status == 200 and body["code"] == 0
        assert call(request("GET", "/nowhere", secret=None))[0] == 404
    finally:
        set_runtime(None)


def test_gateway_mode_with_a_secret_still_checks_it(emulator: Emulator) -> None:
    RuntimeHarness(emulator_settings(emulator, webhook_auth="gateway", webhook_secret=SecretStr(SECRET)))
    try:
        assert call(post(SEED, secret=None))[0] == 401
        assert call(post(SEED))[0] == 200
    finally:
        set_runtime(None)


# -- request-level errors ------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_after_auth(emulator: Emulator, web: RuntimeHarness) -> None:
    big = {"disks": ["disk-g73hhs4o"], "correlation": {"pad": "x" * 2100}}
    status, body = call(post(big))
    assert (status, body["code"]) == (413, 9003) and "2048 bytes" in body["message"]
    assert call(post(big, secret=None))[0] == 401
    assert emulator.calls() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("POST", "/snapshot"),
        ("POST", "/snapshots/snap-aaaaaaaa/extra"),
        ("GET", "/v2/other.php"),
    ],
)
def test_unknown_routes_are_404(emulator: Emulator, web: RuntimeHarness, method: str, path: str) -> None:
    status, body = call(request(method, path, body="{}" if method == "POST" else None))
    assert (status, body["code"]) == (404, 9003)
    assert emulator.calls() == []


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/snapshots", "POST"),
        ("DELETE", "/snapshots", "POST"),
        ("POST", "/snapshots/snap-aaaaaaaa", "GET"),
        ("DELETE", "/snapshots/snap-aaaaaaaa", "GET"),
        ("PUT", "/v2/index.php", "GET, POST"),
    ],
)
def test_wrong_methods_are_405(
    emulator: Emulator, web: RuntimeHarness, method: str, path: str, allow: str
) -> None:
    response = main_handler(request(method, path), scf_context(), clock=lambda: NOW)
    assert response["statusCode"] == 405 and response["headers"]["Allow"] == allow
    assert emulator.calls() == []


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        (post("{not json"), "not valid JSON"),
        (post("[1, 2]"), "must be a JSON object"),
        (post(""), "body is empty"),
        (post({"storageId": "disk-SHOUTING"}), "disk-"),
        (post({"storageId": "disk-g73hhs4o", "surprise": 1}), "surprise"),
        (post({"disks": []}), "names no disks"),
        (v2({"Action": "DeleteSnapshots", "storageId": "disk-g73hhs4o"}), "Action=DeleteSnapshots"),
        (v2({"storageId": "disk-g73hhs4o"}), "no Action"),
        (
            v2({"Action": "CreateSnapshot", "storageId": "disk-g73hhs4o", "force": "1"}),
            "unknown parameter force",
        ),
        (v2({"Action": "CreateSnapshot", "storageId": ["disk-g73hhs4o", "disk-lzrg2pwi"]}), "more than once"),
        (v2({"Action": "CreateSnapshot"}), "names no disks"),
        (
            request(
                "POST", "/v2/index.php", body="Action=CreateSnapshot&storageId=disk-g73hhs4o&storageId=x"
            ),
            "more than once",
        ),
        (request("POST", "/v2/index.php", body="no equals sign"), "form-encoded"),
        (post(SEED, headers={"Idempotency-Key": "has spaces in it"}), "Idempotency-Key"),
        (post({**SEED, "idempotencyKey": "k-1"}, headers={"Idempotency-Key": "k-2"}), "disagree"),
    ],
)
def test_invalid_requests_are_400_9003_with_no_api_call(
    emulator: Emulator, web: RuntimeHarness, event: dict[str, Any], fragment: str
) -> None:
    status, body = call(event)
    assert (status, body["code"], body["codeDesc"]) == (400, 9003, "InvalidParameter")
    # the seed shape (one result at the top) or the batch shape (its one result below)
    [result] = body.get("results", [body])
    assert fragment in result["message"] and result["snapshotId"] is None
    assert emulator.calls() == []


def test_v2_refuses_parameters_split_between_query_and_body(emulator: Emulator, web: RuntimeHarness) -> None:
    event = request(
        "POST", "/v2/index.php", body="storageId=disk-g73hhs4o", query={"Action": "CreateSnapshot"}
    )
    status, body = call(event)
    assert (status, body["code"]) == (400, 9003) and "not both" in body["message"]


def test_v2_ignores_legacy_common_parameters(emulator: Emulator, web: RuntimeHarness) -> None:
    params = {
        "Action": "CreateSnapshot",
        "storageId": "disk-g73hhs4o",
        "Region": "gz",
        "Nonce": "1",
        "Signature": "x",
    }
    status, body = call(v2(params, method="POST"))
    assert status == 200 and body["code"] == 0 and body["snapshotName"] == "Unnamed"


# -- cloud failures and statuses -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("InvalidDisk.Busy", 409, 16005),
        ("InvalidDisk.SnapshotCreating", 409, 16027),
        ("InsufficientSnapshotQuota", 409, 16006),
        ("InvalidDisk.NotSupported", 422, 16007),
        ("AuthFailure.UnauthorizedOperation", 502, 4100),
        ("InternalError", 502, 6000),
        ("InvalidAccount.InsufficientBalance", 502, 6000),
    ],
)
def test_cloud_failures_map_to_non_2xx(
    emulator: Emulator, web: RuntimeHarness, fault: str, status: int, code: int
) -> None:
    emulator.add_fault(Fault(action="CreateSnapshot", code=fault))
    got, body = call(post(SEED))
    assert (got, body["code"]) == (status, code) and body["snapshotId"] is None
    assert fault in body["message"]


def test_snapshot_not_supported_and_unknown_disks(emulator: Emulator, web: RuntimeHarness) -> None:
    status, body = call(post({"storageId": "disk-nosnap01"}))
    assert (status, body["code"]) == (422, 16026)
    status, body = call(post({"storageId": "disk-zzzzzzzz"}))
    assert (status, body["code"]) == (400, 9003) and "InvalidDiskId.NotFound" in body["message"]


def test_throttled_until_the_deadline_is_503(emulator: Emulator, web: RuntimeHarness) -> None:
    emulator.add_fault(Fault(action="CreateSnapshot", code="RequestLimitExceeded"))
    status, body = call(post(SEED), timeout_ms=900)
    assert (status, body["code"]) == (503, 4400)


def test_not_attempted_is_503(emulator: Emulator, web: RuntimeHarness) -> None:
    status, body = call(post({"disks": ["disk-g73hhs4o", "disk-lzrg2pwi"]}), timeout_ms=0)
    assert (status, body["code"]) == (503, 6000) and "2 not attempted" in body["message"]
    assert body["notAttempted"] == 2
    assert all(r["attempted"] is False and r["message"].startswith("not attempted") for r in body["results"])
    assert emulator.calls(action="CreateSnapshot") == []


def test_a_mixed_batch_answers_its_worst_status(emulator: Emulator, web: RuntimeHarness) -> None:
    emulator.add_fault(Fault(action="CreateSnapshot", code="InvalidDisk.Busy", disk_id="disk-lzrg2pwi"))
    status, body = call(post({"disks": ["disk-g73hhs4o", "disk-lzrg2pwi", "disk-BAD", "disk-nosnap01"]}))
    assert status == 422  # max(200, 409, 400, 422)
    assert body["code"] == 16026 and body["message"] == "3 of 4 disks failed"
    assert [r["code"] for r in body["results"]] == [0, 16005, 9003, 16026]
    assert (body["total"], body["succeeded"], body["failed"]) == (4, 1, 3)


def test_a_batch_of_one_keeps_the_batch_shape(emulator: Emulator, web: RuntimeHarness) -> None:
    status, body = call(post({"disks": ["disk-g73hhs4o"]}))
    assert status == 200 and body["code"] == 0 and len(body["results"]) == 1 and "snapshotId" not in body


def test_status_lookup_failures(emulator: Emulator, web: RuntimeHarness) -> None:
    emulator.add_fault(Fault(action="DescribeSnapshots", code="AuthFailure.UnauthorizedOperation"))
    status, body = call(request("GET", "/snapshots/snap-aaaaaaaa"))
    assert (status, body["code"]) == (502, 4100)
    emulator.clear_faults()
    emulator.add_fault(Fault(action="DescribeSnapshots", code="InvalidSnapshotId.NotFound"))
    assert call(request("GET", "/snapshots/snap-aaaaaaaa"))[0] == 404


# -- request keys -------------------------------------------------------------------------------


def test_idempotency_key_header_names_the_request(emulator: Emulator, web: RuntimeHarness) -> None:
    first = call(post(SEED, headers={"Idempotency-Key": "deploy-42"}, request_id="r1"))[1]
    again = call(post(SEED, headers={"idempotency-key": "deploy-42"}, request_id="r2"))[1]
    assert first["requestKey"] == again["requestKey"] == "key/deploy-42"
    assert first["snapshotId"] == again["snapshotId"]
    assert len(owned_snapshots(emulator, "disk-g73hhs4o")) == 1


def test_idempotency_key_field_names_the_request_too(emulator: Emulator, web: RuntimeHarness) -> None:
    _, body = call(post({**SEED, "idempotencyKey": "deploy-43"}, headers={"Idempotency-Key": "deploy-43"}))
    assert body["requestKey"] == "key/deploy-43"
    _, body = call(post({"disks": ["disk-lzrg2pwi"], "idempotencyKey": "deploy-44"}))
    assert body["requestKey"] == "key/deploy-44"


def test_without_a_key_the_signed_request_names_itself(emulator: Emulator, web: RuntimeHarness) -> None:
    """``webhook/<digest of what was signed>``: the same signed call is one request (a replay,
    whatever its request id, or none through a function URL); another body or time is another."""
    _, first = call(post(SEED, request_id=None))
    _, again = call(post(SEED, request_id="another-gateway-id"))
    _, later = call(post(SEED, request_id=None, ts=NOW + 1), now=NOW + 1)
    _, other = call(post({"storageId": "disk-lzrg2pwi"}, request_id=None))
    assert first["requestKey"] == again["requestKey"] == "webhook/" + identity(NOW, json.dumps(SEED).encode())
    assert len({first["requestKey"], later["requestKey"], other["requestKey"]}) == 3
    assert again["snapshotId"] == first["snapshotId"]


def test_gateway_mode_without_a_secret_names_calls_by_the_gateway_request_id(emulator: Emulator) -> None:
    RuntimeHarness(emulator_settings(emulator, webhook_auth="gateway"))
    try:
        _, first = call(post(SEED, secret=None, request_id="gw-1"))
        _, second = call(post({"storageId": "disk-lzrg2pwi"}, secret=None, request_id=None))
    finally:
        set_runtime(None)
    assert first["requestKey"] == "webhook/gw-1"
    assert second["requestKey"].startswith("webhook/") and len(second["requestKey"]) > len("webhook/")


# -- secrets ------------------------------------------------------------------------------------


def test_the_secret_never_appears_in_responses_or_logs(emulator: Emulator, web: RuntimeHarness) -> None:
    emulator.add_fault(Fault(action="CreateSnapshot", code="InternalError", disk_id="disk-lzrg2pwi"))
    events = [
        post(SEED),
        post({"disks": ["disk-lzrg2pwi", "disk-BAD"]}),
        post(SEED, secret="guess"),
        post(SEED, ts=NOW - 1000),
        post("{broken"),
        request("GET", "/snapshots/snap-zzzzzzzz"),
        request("PATCH", "/snapshots"),
        post(SEED, headers={"X-Cbsnap-Signature": SECRET}),
    ]
    answers = [main_handler(e, scf_context(), clock=lambda: NOW) for e in events]
    assert SECRET not in json.dumps(answers)
    assert SECRET not in web.stream.getvalue()
    assert web.log_records()


# -- cbsnap sign: the caller's side ----------------------------------------------------------------


def _sign(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    assert cli_main(["sign", "--secret-file", str(secret_file), "--timestamp", str(NOW), *args]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out
    return out


def test_cbsnap_sign_prints_the_two_headers(
    emulator: Emulator, web: RuntimeHarness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.dumps(SEED)
    out = _sign(tmp_path, capsys, "--body", body)
    headers = dict(line.split(": ", 1) for line in out.splitlines())
    assert set(headers) == {"X-Cbsnap-Timestamp", "X-Cbsnap-Signature"}
    event = request("POST", "/snapshots", body=body, secret=None, headers=headers)
    assert call(event)[0] == 200


def _event_from_curl(command: str) -> dict[str, Any]:
    """What API Gateway would hand the function for this curl command line."""
    words = shlex.split(command)
    assert words[:2] == ["curl", "--fail-with-body"]
    method = words[words.index("-X") + 1]
    headers = dict(words[i + 1].split(": ", 1) for i, w in enumerate(words) if w == "-H")
    body = words[words.index("--data-binary") + 1] if "--data-binary" in words else None
    url = urlsplit(words[-1])
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    return request(method, url.path, body=body, query=query, secret=None, headers=headers)


def test_cbsnap_sign_curl_for_a_document(
    emulator: Emulator, web: RuntimeHarness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _sign(
        tmp_path, capsys, "--body", json.dumps({"disks": ["disk-g73hhs4o"]}), "--curl", "https://x/snapshots"
    )
    assert "Content-Type: application/json" in out
    status, body = call(_event_from_curl(out))
    assert status == 200 and body["succeeded"] == 1


def test_cbsnap_sign_curl_for_the_v2_query(
    emulator: Emulator, web: RuntimeHarness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "storageId=disk-lzrg2pwi&Action=CreateSnapshot&snapshotName=before deploy"
    out = _sign(tmp_path, capsys, "--query", query, "--curl", "https://x/v2/index.php")
    assert " -X GET " in out and "snapshotName=before%20deploy" in out
    status, body = call(_event_from_curl(out))
    assert status == 200 and body["snapshotName"] == "before deploy"


def test_cbsnap_sign_signs_an_idempotency_key(
    emulator: Emulator, web: RuntimeHarness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = json.dumps(SEED)
    lines = _sign(tmp_path, capsys, "--body", body, "--idempotency-key", "deploy-77").splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [
        "X-Cbsnap-Timestamp",
        "X-Cbsnap-Signature",
        "Idempotency-Key",
    ], "the two auth headers stay lines 1 and 2 (the README's pre-deploy script reads them so)"
    out = _sign(
        tmp_path, capsys, "--body", body, "--idempotency-key", "deploy-77", "--curl", "https://x/snapshots"
    )
    assert "Idempotency-Key: deploy-77" in out
    first = call(_event_from_curl(out))[1]
    emulator.advance(5)
    retried = call(_event_from_curl(out), now=NOW + 30)[1]
    assert first["requestKey"] == retried["requestKey"] == "key/deploy-77"
    assert retried["snapshotId"] == first["snapshotId"]
    assert len(owned_snapshots(emulator, "disk-g73hhs4o")) == 1
    capsys.readouterr()
    assert cli_main(["sign", "--body", body, "--idempotency-key", "has space"]) == 2
    assert "printable ASCII" in capsys.readouterr().err


def test_cbsnap_sign_needs_a_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["sign", "--secret-env", "CBSNAP_TEST_UNSET_SECRET_VAR", "--body", "{}"]) == 2
    assert "no webhook secret" in capsys.readouterr().err


# -- library pieces without the cloud ------------------------------------------------------------


def _r(code: SeedCode, message: str = "x", disk: str = "disk-g73hhs4o") -> SnapshotResult:
    if code == SeedCode.SUCCESS:
        return SnapshotResult(
            storageId=disk,
            snapshotName="n",
            code=0,
            codeDesc="Success",
            message="",
            snapshotId="snap-aaaaaaaa",
        )
    return SnapshotResult.failure(disk, "n", code, message)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (SeedCode.SUCCESS, 200),
        (SeedCode.INVALID_PARAMETER, 400),
        (SeedCode.DISK_BUSY, 409),
        (SeedCode.CBS_CREATING_SNAPSHOT, 409),
        (SeedCode.SNAPSHOT_QUOTA_EXCEEDED, 409),
        (SeedCode.DISK_TYPE_INVALID, 422),
        (SeedCode.SNAPSHOT_NOT_SUPPORTED, 422),
        (SeedCode.AUTH_FAILURE, 502),
        (SeedCode.REQUEST_LIMIT_EXCEEDED, 503),
        (SeedCode.INTERNAL_ERROR, 502),
    ],
)
def test_status_table(code: SeedCode, status: int) -> None:
    assert status_for(_r(code)) == status


def test_status_of_a_not_attempted_result() -> None:
    assert status_for(SnapshotResult.not_attempted("disk-g73hhs4o", "n", "out of time")) == 503
    assert status_for(_r(SeedCode.INTERNAL_ERROR)) == 502


def test_worst_status_is_the_largest() -> None:
    outcome = Outcome(
        [
            _r(SeedCode.SUCCESS),
            _r(SeedCode.INTERNAL_ERROR, disk="disk-lzrg2pwi"),
            SnapshotResult.not_attempted("disk-aaaaaaa1", "n", "out of time"),
        ]
    )
    response = outcome_response(outcome, "k", seed_shape=False)
    assert response.status == 503 and response.body["code"] == 6000
    assert response.body["message"].startswith("2 of 3 disks failed")


def test_apigw_event_reading() -> None:
    event = request("GET", "/snapshots/snap-aaaaaaaa", query={"a": "1", "r": ["x", "y"]}, lower=True)
    parsed = parse_apigw_event(event)
    assert (parsed.method, parsed.path, parsed.request_id) == ("GET", "/snapshots/snap-aaaaaaaa", "req-0001")
    assert parsed.query == {"a": "1", "r": ["x", "y"]} and parsed.body == b""
    assert parsed.header("X-CBSNAP-TIMESTAMP") == str(NOW)
    # queryStringParameters (declared parameters only) is the fallback
    fallback = {**event, "queryString": None, "queryStringParameters": {"b": 2}}
    assert parse_apigw_event(fallback).query == {"b": "2"}
    assert parse_apigw_event({"path": "/x"}).problem == "not an HTTP event: httpMethod is missing"
    assert parse_apigw_event({**event, "body": {"a": 1}}).problem is not None


# -- bad bytes (issue 9, finding 9) ----------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def strict_body(response: dict[str, Any]) -> dict[str, Any]:
    """The answer's body as a strict JSON consumer reads it: UTF-8, no NaN or Infinity."""
    text: str = response["body"]
    text.encode("utf-8")
    body: dict[str, Any] = json.loads(text, parse_constant=_refuse_constant)
    return body


def signed_raw(body: str, *, query: dict[str, Any] | None = None) -> dict[str, Any]:
    """A POST whose body text is signed over the bytes it stands for, lone surrogates included
    (``surrogatepass``: the product's own reading of text that is not valid Unicode)."""
    event = request("POST", "/snapshots", body=None, query=query, secret=None)
    event["body"] = body
    event["isBase64Encoded"] = False
    payload = signing_payload(body.encode("utf-8", "surrogatepass"), query or {})
    event["headers"].update(auth_headers(SECRET, payload, NOW))
    return event


@pytest.mark.parametrize(
    "body",
    [
        '{"storageId": "disk-g73hhs4o\ud800"}',  # a lone surrogate in the body text itself
        '{"storageId": "disk-g73hhs4o", "snapshotName": "x\udfff"}',
        "\ud83d",
    ],
)
def test_a_lone_surrogate_in_the_body_is_a_400(emulator: Emulator, web: RuntimeHarness, body: str) -> None:
    response = main_handler(signed_raw(body), scf_context(), clock=lambda: NOW)
    assert response["statusCode"] == 400
    assert strict_body(response)["code"] == 9003
    assert emulator.calls(action="CreateSnapshot") == []


def test_an_escaped_lone_surrogate_is_refused_by_the_field_that_holds_it(
    emulator: Emulator, web: RuntimeHarness
) -> None:
    """Valid UTF-8 text whose JSON escapes decode to a lone surrogate: the field refuses it."""
    status, body = call(post('{"storageId": "disk-g73hhs4o", "correlation": {"k": "\\udc00"}}'))
    assert status == 400 and "correlation" in body["message"]
    response = main_handler(post('{"storageId": "disk-\\ud800zzz"}'), scf_context(), clock=lambda: NOW)
    assert response["statusCode"] == 400 and strict_body(response)["code"] == 9003
    assert emulator.calls(action="CreateSnapshot") == []


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_correlation_are_a_400_with_a_json_body(
    emulator: Emulator, web: RuntimeHarness, constant: str
) -> None:
    event = post(f'{{"storageId": "disk-g73hhs4o", "correlation": {{"score": {constant}}}}}')
    response = main_handler(event, scf_context(), clock=lambda: NOW)
    assert response["statusCode"] == 400
    body = strict_body(response)
    assert body["code"] == 9003 and "correlation" in body["message"] and "score" in body["message"]
    assert emulator.calls(action="CreateSnapshot") == []


def test_a_lone_surrogate_in_the_query_is_not_a_500(emulator: Emulator, web: RuntimeHarness) -> None:
    query = {"Action": "CreateSnapshot", "storageId": "disk-g73hhs4o", "snapshotName": "x\ud800"}
    event = request("GET", "/v2/index.php", query=query, secret=None)
    canonical = "&".join(
        f"{quote_plus(k)}={quote_plus(v, errors='surrogatepass')}" for k, v in sorted(query.items())
    )
    event["headers"].update(auth_headers(SECRET, canonical.encode("ascii"), NOW))
    response = main_handler(event, scf_context(), clock=lambda: NOW)
    assert response["statusCode"] == 400 and strict_body(response)["code"] == 9003
    assert emulator.calls(action="CreateSnapshot") == []


# -- replays inside the signature window (issue 9, finding 10) --------------------------------------


def test_a_replay_with_an_added_idempotency_key_makes_no_snapshot(
    emulator: Emulator, web: RuntimeHarness
) -> None:
    """A captured signed request replayed four times, each with a new (unsigned) Idempotency-Key."""
    captured = post(SEED)
    assert call(captured)[0] == 200
    answers = []
    for n in range(4):
        emulator.advance(5)  # the earlier snapshot is NORMAL: nothing but the key stops a new one
        replay = copy.deepcopy(captured)
        replay["headers"]["Idempotency-Key"] = f"replay-{n}"
        replay["requestContext"]["requestId"] = f"replayed-{n}"
        answers.append(call(replay, now=NOW + 60 * n))
    snapshots = owned_snapshots(emulator, "disk-g73hhs4o")
    assert len(snapshots) == 1, f"4 replays made {len(snapshots) - 1} more snapshot(s)"
    assert [(status, body["code"]) for status, body in answers] == [(401, 4100)] * 4


def test_a_replay_with_new_gateway_request_ids_makes_no_snapshot(
    emulator: Emulator, web: RuntimeHarness
) -> None:
    """A captured signed request replayed unchanged five times; API Gateway gives each a new requestId."""
    captured = post(SEED)
    status, first = call(captured)
    assert status == 200
    answers = []
    for n in range(5):
        emulator.advance(5)
        replay = copy.deepcopy(captured)
        replay["requestContext"]["requestId"] = f"replayed-{n}"
        answers.append(call(replay, now=NOW + 50 * n))
    snapshots = owned_snapshots(emulator, "disk-g73hhs4o")
    assert len(snapshots) == 1, f"5 replays made {len(snapshots) - 1} more snapshot(s)"
    for status, again in answers:  # each replay is answered with the first call's snapshot
        assert status == 200 and again["snapshotId"] == first["snapshotId"]
        assert again["requestKey"] == first["requestKey"]


# -- the function URL: the same webhook, the same rules ----------------------------------------------


def function_url(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` as the function URL delivers it: API Gateway's shape without requestContext,
    isBase64Encoded, headerParameters, pathParameters, queryStringParameters."""
    keep = ("body", "headers", "httpMethod", "path", "queryString")
    return {k: v for k, v in event.items() if k in keep}


def test_the_sample_webhook_call_through_the_function_url(
    emulator: Emulator, sample_web: RuntimeHarness
) -> None:
    event = load_event("function-url-webhook.json")
    assert "requestContext" not in event and "isBase64Encoded" not in event
    status, body = call(event)
    assert status == 200 and body["succeeded"] == 1
    assert body["requestKey"] == "webhook/" + identity(NOW, event["body"].encode())
    [snap] = owned_snapshots(emulator, "disk-q7m3x9ab")
    assert snap["SnapshotName"] == "via-function-url"


@pytest.mark.parametrize(
    "make",
    [
        lambda: post(SEED, secret=None),
        lambda: post(SEED, secret="not-the-secret-not-the-secret-0000"),
        lambda: post(SEED, ts=NOW - 301),
        lambda: {**post(SEED), "body": json.dumps({"storageId": "disk-lzrg2pwi"})},
    ],
)
def test_function_url_requests_are_authenticated_alike(
    emulator: Emulator, web: RuntimeHarness, make: Any
) -> None:
    status, body = call(function_url(make()))
    assert status == 401 and body["code"] == 4100
    assert emulator.calls() == []


def test_function_url_routes_and_statuses_are_the_webhooks(emulator: Emulator, web: RuntimeHarness) -> None:
    status, created = call(function_url(post(SEED)))
    assert status == 200 and created["code"] == 0
    polled = call(function_url(request("GET", f"/snapshots/{created['snapshotId']}")))
    assert polled[0] == 200 and polled[1]["storageId"] == "disk-g73hhs4o"
    v2_call = function_url(v2({"Action": "CreateSnapshot", "storageId": "disk-lzrg2pwi"}))
    assert call(v2_call)[0] == 200
    assert call(function_url(request("DELETE", "/snapshots")))[0] == 405
    assert call(function_url(request("GET", "/nowhere")))[0] == 404


def test_a_function_url_replay_is_the_same_request(emulator: Emulator, web: RuntimeHarness) -> None:
    """No request id at all through a function URL: the signed content names the request."""
    captured = function_url(post(SEED))
    first = call(captured)[1]
    emulator.advance(5)
    again = call(copy.deepcopy(captured), now=NOW + 100)[1]
    assert again["requestKey"] == first["requestKey"] and again["snapshotId"] == first["snapshotId"]
    assert len(owned_snapshots(emulator, "disk-g73hhs4o")) == 1


def test_gateway_mode_refuses_what_did_not_come_through_api_gateway(emulator: Emulator) -> None:
    """CBSNAP_WEBHOOK_AUTH=gateway trusts API Gateway's authentication; a function URL has none."""
    RuntimeHarness(emulator_settings(emulator, webhook_auth="gateway"))
    try:
        status, body = call(function_url(post(SEED, secret=None)))
        assert status == 401 and "API Gateway" in body["message"]
        # API Gateway's own events carry requestContext.serviceId
        assert call(post(SEED, secret=None))[0] == 200
    finally:
        set_runtime(None)
    assert len(owned_snapshots(emulator, "disk-g73hhs4o")) == 1


def test_function_url_event_reading() -> None:
    event = function_url(post(SEED, headers={"Idempotency-Key": "k1"}))
    parsed = parse_apigw_event(event)
    assert (parsed.method, parsed.path, parsed.request_id, parsed.via_gateway) == (
        "POST",
        "/snapshots",
        None,
        False,
    )
    assert parsed.body == json.dumps(SEED).encode() and parsed.header("idempotency-key") == "k1"
    assert parse_apigw_event(post(SEED)).via_gateway is True
    # no isBase64Encoded flag: the body is the text as sent
    assert parse_apigw_event({**event, "body": "e30="}).body == b"e30="
