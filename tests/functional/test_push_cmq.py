"""TDMQ-CMQ topic pushes to the function URL (``POST /push/cmq?token=…``), end to end.

CMQ POSTs each message to the subscription's HTTP endpoint (JSON notify format by default,
or SIMPLIFIED), takes any 2xx as delivered and anything else, or no answer in about 15 s,
as "push again" (cloud.tencent.com/document/product/1496/65109). Real SDK, real emulator.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from cbsnap.ownership import KEY_TAG, disk_key
from cbsnap.push import PUSH_BUDGET_SECONDS, push_deadline
from cbsnap.runtime import set_runtime
from cbsnap.scf import Deadline
from cbsnap.webhook import Webhook
from cbsnap_emulator import Emulator
from handlers.index import main_handler
from tests.conftest import RuntimeHarness, emulator_settings, load_event, owned_snapshots, scf_context

TOKEN = "example-push-token-do-not-use-0123456789"  # the sample event's (events/function-url-cmq-push.json)
WEBHOOK_SECRET = "push-tests-webhook-secret-0123456789"


@pytest.fixture
def pushed(emulator: Emulator) -> Iterator[RuntimeHarness]:
    """A runtime with the push token (and a webhook secret, which a push does not use)."""
    h = RuntimeHarness(
        emulator_settings(emulator, push_token=SecretStr(TOKEN), webhook_secret=SecretStr(WEBHOOK_SECRET))
    )
    yield h
    set_runtime(None)


def push(document: Any = None, *, msg_id: str = "6942316962", token: str | None = TOKEN) -> dict[str, Any]:
    """The sample push with ``document`` as its message and ``token`` on the endpoint."""
    event = load_event("function-url-cmq-push.json")
    notify = json.loads(event["body"])
    if document is not None:
        notify["msgBody"] = document if isinstance(document, str) else json.dumps(document)
    notify["msgId"] = msg_id
    event["body"] = json.dumps(notify)
    event["headers"]["x-cmq-message-id"] = msg_id
    event["queryString"] = {} if token is None else {"token": token}
    return event


def answer(event: Any, context: Any = None) -> tuple[int, dict[str, Any]]:
    """Deliver through the deployed entry point; the integrated response, read."""
    response = main_handler(event, context or scf_context())
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def test_the_sample_push_makes_the_snapshot(emulator: Emulator, pushed: RuntimeHarness) -> None:
    status, body = answer(load_event("function-url-cmq-push.json"))
    assert status == 200 and body["acknowledged"] is True
    [result] = body["results"]
    assert result["code"] == 0 and result["messageId"] == "6942316962"
    assert body["requestKey"] == "cmq/6942316962"
    [snap] = owned_snapshots(emulator, "disk-g73hhs4o")
    assert snap["SnapshotId"] == result["snapshotId"] and snap["SnapshotName"] == "from-cmq-push"
    tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
    assert tags[KEY_TAG] == disk_key("cmq/6942316962", "disk-g73hhs4o")


def test_the_same_msg_id_pushed_again_makes_none(emulator: Emulator, pushed: RuntimeHarness) -> None:
    first = answer(push())[1]
    emulator.advance(5)  # the snapshot is NORMAL: only the key stops a second one
    emulator.reset_calls()
    status, again = answer(push())
    assert status == 200 and again["results"][0]["snapshotId"] == first["results"][0]["snapshotId"]
    assert emulator.calls(action="CreateSnapshot") == []
    assert len(owned_snapshots(emulator, "disk-g73hhs4o")) == 1


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "wrong-token-wrong-token-wrong-token-00",
        TOKEN[:-1],
        TOKEN + "x",
        TOKEN.upper(),
        "\ud800" * 3,
    ],
)
def test_a_wrong_or_missing_token_is_401_and_no_api_call(
    emulator: Emulator, pushed: RuntimeHarness, token: str | None
) -> None:
    status, body = answer(push(token=token))
    assert status == 401 and body["code"] == 4100
    assert emulator.calls() == [], "no cloud call of any kind"
    assert TOKEN not in pushed.stream.getvalue() and TOKEN not in json.dumps(body)


def test_no_token_configured_refuses_every_push(emulator: Emulator) -> None:
    RuntimeHarness(emulator_settings(emulator, webhook_secret=SecretStr(WEBHOOK_SECRET)))
    try:
        status, body = answer(push())
    finally:
        set_runtime(None)
    assert status == 401 and "CBSNAP_PUSH_TOKEN" in body["message"]
    assert emulator.calls() == []


def test_a_signed_webhook_request_is_not_a_push(emulator: Emulator, pushed: RuntimeHarness) -> None:
    """The push path takes the token only: the webhook's HMAC headers do not open it."""
    event = push(token=None)
    event["headers"].update({"x-cbsnap-timestamp": "1795831200", "x-cbsnap-signature": "sha256=" + "0" * 64})
    assert answer(event)[0] == 401
    assert emulator.calls() == []


def test_the_simplified_format_is_read_too(emulator: Emulator, pushed: RuntimeHarness) -> None:
    """NotifyContentFormat=SIMPLIFIED: the body is the message, the msgId is in a header."""
    event = push()
    event["body"] = json.dumps({"disks": ["disk-lzrg2pwi"], "snapshotName": "simplified"})
    event["headers"]["x-cmq-message-id"] = "1407374883553281"
    status, body = answer(event)
    assert status == 200 and body["requestKey"] == "cmq/1407374883553281"
    assert [r["code"] for r in body["results"]] == [0]
    assert owned_snapshots(emulator, "disk-lzrg2pwi")[0]["SnapshotName"] == "simplified"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("not json at all", "not a CMQ push"),
        (json.dumps({"msgId": "has space", "msgBody": "{}"}), "no usable msgId"),
        (json.dumps({"msgId": "m1", "msgBody": "{broken"}), "not valid JSON"),
        (json.dumps({"msgId": "m1", "msgBody": json.dumps({"storageId": "disk-BAD"})}), "disk-"),
        (json.dumps({"msgId": "m1", "msgBody": json.dumps({"storageId": "disk-g73hhs4o", "x": 1})}), "x"),
    ],
)
def test_an_unusable_push_is_acknowledged_with_a_9003(
    emulator: Emulator, pushed: RuntimeHarness, body: str, fragment: str
) -> None:
    """Pushing it again could never help: it is reported (a 9003 in the log) and acknowledged."""
    event = push()
    event["body"] = body
    del event["headers"]["x-cmq-message-id"]
    status, answered = answer(event)
    assert status == 200 and answered["acknowledged"] is True
    [result] = answered["results"]
    assert result["code"] == 9003 and fragment in result["message"]
    assert emulator.calls(action="CreateSnapshot") == []
    assert [r["result"]["code"] for r in pushed.log_records() if "result" in r] == [9003]


def test_final_failures_are_acknowledged(emulator: Emulator, pushed: RuntimeHarness) -> None:
    status, body = answer(push({"disks": ["disk-g73hhs4o", "disk-nosnap01", "disk-zzzzzzzz"]}))
    assert status == 200 and body["acknowledged"] is True
    assert sorted(r["code"] for r in body["results"]) == [0, 9003, 16026]


def test_unattempted_disks_answer_503_so_cmq_pushes_again(emulator: Emulator, pushed: RuntimeHarness) -> None:
    event = push({"disks": ["disk-g73hhs4o", "disk-lzrg2pwi"]})
    status, body = answer(event, scf_context(timeout_ms=0))
    assert status == 503 and body["acknowledged"] is False and body["notAttempted"] == 2
    assert emulator.calls(action="CreateSnapshot") == []
    status, body = answer(copy.deepcopy(event))  # CMQ's next push of the same message
    assert status == 200 and [r["code"] for r in body["results"]] == [0, 0]
    assert len(owned_snapshots(emulator, "disk-g73hhs4o")) == 1


def test_the_run_is_capped_at_the_push_budget_not_the_function_timeout(
    emulator: Emulator, pushed: RuntimeHarness
) -> None:
    """A 30 s function, a push budget spent: the disks are left for CMQ's next push (503)."""
    webhook = Webhook(pushed.runtime, push_budget=0.0)
    response = webhook.handle(push({"storageId": "disk-g73hhs4o"}), scf_context(timeout_ms=30_000))
    assert response["statusCode"] == 503 and json.loads(response["body"])["notAttempted"] == 1
    assert emulator.calls(action="CreateSnapshot") == []


def test_the_push_deadline_is_the_sooner_of_the_budget_and_the_function() -> None:
    now = [100.0]

    def clock() -> float:
        return now[0]

    assert push_deadline(Deadline.after(300.0, clock), clock).remaining() == PUSH_BUDGET_SECONDS
    assert push_deadline(Deadline.after(4.0, clock), clock).remaining() == 4.0
    assert push_deadline(Deadline.after(0.0, clock), clock).remaining() == 0.0
    assert 0 < PUSH_BUDGET_SECONDS < 15, "answered inside CMQ's push timeout (about 15 s)"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_only_post_is_a_push(emulator: Emulator, pushed: RuntimeHarness, method: str) -> None:
    event = push()
    event["httpMethod"] = method
    status, _ = answer(event)
    assert status == 405
    assert emulator.calls() == []
