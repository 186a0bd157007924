"""Results to CMQ queues and topics: timer handler → real SDK (TC3-signed) → emulator's TDMQ actions."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from pydantic import SecretStr

from cbsnap.codes import SeedCode
from cbsnap.logs import Log
from cbsnap.models import ReplyTo, SnapshotResult
from cbsnap.pacing import NoRateLimit
from cbsnap.queue_sink import MAX_MESSAGE_BYTES, QueueSink, build_messages
from cbsnap.runtime import Runtime, set_runtime, tdmq_apis
from cbsnap.scf import Deadline
from cbsnap.settings import Settings
from cbsnap.sinks import Redactor, RequestMeta
from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator, Fault
from handlers.timer import main_handler
from tests.conftest import FAST_POLICY, ROOT, RuntimeHarness, ckafka_event, emulator_settings, scf_context
from tests.functional.test_timer_handler import timer_event

QUEUE = "cbsnap-results"
TOPIC = "cbsnap-results-topic"
CORRELATION = {"pipeline": "run-77", "attempt": 2}


@pytest.fixture
def queues(emulator: Emulator) -> Emulator:
    emulator.add_queue(QUEUE)
    emulator.add_queue("other-queue")
    emulator.add_topic(TOPIC)
    return emulator


def bodies(emulator: Emulator, **where: str) -> list[dict[str, Any]]:
    return [json.loads(m["MsgContent"]) for m in emulator.messages(**where)]


def sends(emulator: Emulator) -> list[dict[str, Any]]:
    return emulator.calls(service="tdmq")


def run_timer(document: dict[str, Any]) -> dict[str, Any]:
    return main_handler(timer_event(document), scf_context())


def test_results_reach_the_reply_to_queue_with_the_correlation(
    queues: Emulator, harness: RuntimeHarness
) -> None:
    document = {
        "disks": ["disk-g73hhs4o", "disk-nosnap01", "disk-BAD"],
        "replyTo": {"queue": QUEUE},
        "correlation": CORRELATION,
    }
    response = run_timer(document)

    [body] = bodies(queues, queue=QUEUE)
    assert body["requestKey"] == response["requestKey"] and body["trigger"] == "timer"
    assert body["correlation"] == CORRELATION
    assert body["results"] == response["results"]
    assert body["summary"] == {"total": 3, "succeeded": 1, "failed": 2, "notAttempted": 0}
    assert (body["part"], body["parts"]) == (1, 1)
    # The report names the queue and the message CMQ accepted.
    [message] = queues.messages(queue=QUEUE)
    assert response["delivery"] == [{"sink": f"queue:{QUEUE}", "ok": True, "messageId": message["MsgId"]}]
    # Sent by the SDK, signed with TC3 and verified by the emulator, to the tdmq service.
    [call] = sends(queues)
    assert call["action"] == "SendCmqMsg" and call["error"] is None
    assert call["params"]["QueueName"] == QUEUE and call["params"]["DelaySeconds"] == 0
    # A consumer can receive it.
    [received] = queues.receive(QUEUE)
    assert json.loads(received["MsgContent"]) == body


def test_results_reach_the_configured_queue_from_the_environment(queues: Emulator) -> None:
    env = {
        "TENCENTCLOUD_SECRETID": DEFAULT_SECRET_ID,
        "TENCENTCLOUD_SECRETKEY": DEFAULT_SECRET_KEY,
        "CBSNAP_ENDPOINT": queues.url,
        "CBSNAP_RESULT_QUEUE": QUEUE,
    }
    RuntimeHarness(Settings.from_env(env))
    try:
        response = run_timer({"storageId": "disk-g73hhs4o", "correlation": CORRELATION})
    finally:
        set_runtime(None)
    [body] = bodies(queues, queue=QUEUE)
    assert body["correlation"] == CORRELATION
    assert [r["snapshotId"] for r in body["results"]] == [response["results"][0]["snapshotId"]]
    assert response["delivery"][0]["ok"] is True


def test_no_destination_means_no_tdmq_call_and_no_delivery_field(
    queues: Emulator, harness: RuntimeHarness
) -> None:
    response = run_timer({"storageId": "disk-g73hhs4o"})
    assert sends(queues) == [] and "delivery" not in response


def test_reply_to_topic(queues: Emulator, harness: RuntimeHarness) -> None:
    response = run_timer(
        {"storageId": "disk-g73hhs4o", "replyTo": {"topic": TOPIC}, "correlation": CORRELATION}
    )
    [body] = bodies(queues, topic=TOPIC)
    assert body["correlation"] == CORRELATION and body["results"] == response["results"]
    [call] = sends(queues)
    assert call["action"] == "PublishCmqMsg" and call["params"]["TopicName"] == TOPIC
    assert response["delivery"][0]["sink"] == f"topic:{TOPIC}" and response["delivery"][0]["ok"]


def test_configured_queue_and_request_queue_both_get_the_message(queues: Emulator) -> None:
    RuntimeHarness(emulator_settings(queues, result_queue=QUEUE, result_topic=TOPIC))
    try:
        response = run_timer(
            {"storageId": "disk-g73hhs4o", "replyTo": {"queue": "other-queue"}, "correlation": CORRELATION}
        )
    finally:
        set_runtime(None)
    sent = [bodies(queues, queue=QUEUE), bodies(queues, topic=TOPIC), bodies(queues, queue="other-queue")]
    assert all(len(b) == 1 for b in sent)
    assert sent[0] == sent[1] == sent[2]
    assert [d["sink"] for d in response["delivery"]] == [
        f"queue:{QUEUE}",
        f"topic:{TOPIC}",
        "queue:other-queue",
    ]
    assert all(d["ok"] for d in response["delivery"])


def test_the_same_destination_twice_is_sent_once(queues: Emulator) -> None:
    RuntimeHarness(emulator_settings(queues, result_queue=QUEUE))
    try:
        response = run_timer({"storageId": "disk-g73hhs4o", "replyTo": {"queue": QUEUE}})
    finally:
        set_runtime(None)
    assert len(queues.messages(queue=QUEUE)) == 1 and len(response["delivery"]) == 1


def test_missing_queue_is_reported_and_the_results_survive(queues: Emulator, harness: RuntimeHarness) -> None:
    response = run_timer({"storageId": "disk-g73hhs4o", "replyTo": {"queue": "no-such-queue"}})

    [result] = response["results"]
    assert result["code"] == 0 and result["snapshotId"].startswith("snap-")
    [report] = response["delivery"]
    [call] = sends(queues)
    assert report["sink"] == "queue:no-such-queue" and report["ok"] is False
    assert "ResourceNotFound" in report["message"] and call["request_id"] in report["message"]
    records = harness.log_records()
    # The snapshot result is in the log, and so is the failed delivery.
    assert [r["result"]["snapshotId"] for r in records if "result" in r] == [result["snapshotId"]]
    [failure] = [r for r in records if r["message"] == "sink.failed"]
    assert failure["level"] == "WARNING" and "ResourceNotFound" in failure["error"]


def test_one_failing_destination_does_not_stop_the_others(queues: Emulator) -> None:
    RuntimeHarness(emulator_settings(queues, result_queue="no-such-queue", result_topic=TOPIC))
    try:
        response = run_timer({"storageId": "disk-g73hhs4o", "replyTo": {"queue": QUEUE}})
    finally:
        set_runtime(None)
    assert [(d["sink"], d["ok"]) for d in response["delivery"]] == [
        ("queue:no-such-queue", False),
        (f"topic:{TOPIC}", True),
        (f"queue:{QUEUE}", True),
    ]


def test_a_transient_tdmq_error_is_retried(queues: Emulator, harness: RuntimeHarness) -> None:
    queues.add_fault(Fault(action="SendCmqMsg", code="InternalError", times=2))
    response = run_timer({"storageId": "disk-g73hhs4o", "replyTo": {"queue": QUEUE}})
    assert response["delivery"][0]["ok"] is True
    assert [c["error"] for c in sends(queues)] == ["InternalError", "InternalError", None]
    assert len(queues.messages(queue=QUEUE)) == 1


def test_a_permanent_tdmq_error_is_reported_once(queues: Emulator, harness: RuntimeHarness) -> None:
    queues.add_fault(Fault(action="PublishCmqMsg", code="FailedOperation"))
    response = run_timer({"storageId": "disk-g73hhs4o", "replyTo": {"topic": TOPIC}})
    [report] = response["delivery"]
    assert report["ok"] is False and "FailedOperation" in report["message"]
    assert len(sends(queues)) == 1 and response["results"][0]["code"] == 0


def test_a_rejected_event_still_reaches_the_configured_queue(queues: Emulator) -> None:
    RuntimeHarness(emulator_settings(queues, result_queue=QUEUE))
    try:
        response = main_handler(
            {"Type": "Timer", "TriggerName": "t", "Time": "x", "Message": "{oops"}, scf_context()
        )
    finally:
        set_runtime(None)
    [body] = bodies(queues, queue=QUEUE)
    assert [r["code"] for r in body["results"]] == [9003] == [r["code"] for r in response["results"]]
    assert body["correlation"] is None


def test_no_secret_reaches_the_message_or_the_log(queues: Emulator) -> None:
    token = "session-token-value-0123456789"
    queues.add_credential("AKIDtemporary0000000000000000000000", "temporary-secret-key-abcdefghijklmn", token)
    settings = emulator_settings(
        queues,
        secret_id="AKIDtemporary0000000000000000000000",
        secret_key=SecretStr("temporary-secret-key-abcdefghijklmn"),
        session_token=SecretStr(token),
        webhook_secret=SecretStr("webhook-shared-secret-xyz-0123456789"),
        result_queue=QUEUE,
    )
    h = RuntimeHarness(settings)
    try:
        # A caller even echoes a secret in the correlation object: it is redacted on the way out.
        response = run_timer({"storageId": "disk-g73hhs4o", "correlation": {"oops": token}})
    finally:
        set_runtime(None)
    [message] = queues.messages(queue=QUEUE)
    outputs = [message["MsgContent"], h.stream.getvalue(), json.dumps(response["delivery"])]
    for secret in (token, "temporary-secret-key-abcdefghijklmn", "webhook-shared-secret-xyz"):
        assert all(secret not in text for text in outputs)
    assert json.loads(message["MsgContent"])["correlation"] == {"oops": "***"}


# -- splitting ------------------------------------------------------------------------------------


def busy(i: int, message: str, name: str = "nightly-快照") -> SnapshotResult:
    return SnapshotResult.failure(f"disk-{i:08d}", name, SeedCode.DISK_BUSY, message)


def test_build_messages_splits_in_order_under_the_limit() -> None:
    meta = RequestMeta(trigger="timer", request_key="timer/t/x", correlation=CORRELATION)
    results = [busy(i, "x" * 200) for i in range(40)]
    parts = build_messages(results, meta, limit=2000)
    decoded = [json.loads(p) for p in parts]
    assert len(parts) > 1
    assert all(len(p.encode("utf-8")) <= 2000 for p in parts)
    assert [d["part"] for d in decoded] == list(range(1, len(parts) + 1))
    assert {d["parts"] for d in decoded} == {len(parts)}
    assert [r for d in decoded for r in d["results"]] == [r.to_dict() for r in results]
    assert all(d["summary"]["total"] == 40 and d["correlation"] == CORRELATION for d in decoded)
    # Greedy: every part but the last is as full as it can be.
    for first, second in itertools.pairwise(parts):
        nxt = json.dumps(json.loads(second)["results"][0], ensure_ascii=False, separators=(",", ":"))
        assert len(first.encode("utf-8")) + len(nxt.encode("utf-8")) + 1 > 2000


def test_build_messages_keeps_small_requests_whole() -> None:
    meta = RequestMeta(trigger="timer", request_key="k")
    [only] = build_messages([], meta)
    assert json.loads(only) == {
        "requestKey": "k",
        "trigger": "timer",
        "correlation": None,
        "part": 1,
        "parts": 1,
        "summary": {"total": 0, "succeeded": 0, "failed": 0, "notAttempted": 0},
        "results": [],
    }


def test_a_request_bigger_than_one_cmq_message_is_split_and_accepted(queues: Emulator) -> None:
    """Over 1 MB of results: several parts, each accepted by the emulator (which enforces 1 MB)."""
    settings = emulator_settings(queues)
    stream = io.StringIO()
    logger = Log("cbsnap", Redactor(settings.secrets()), stream=stream)
    sink = QueueSink(
        tdmq_apis(settings, NoRateLimit(), policy=FAST_POLICY),
        region="ap-guangzhou",
        queue=QUEUE,
        logger=logger,
        redactor=Redactor(settings.secrets()),
    )
    results = [busy(i, "m" * 500, "n") for i in range(3000)]
    meta = RequestMeta(trigger="timer", request_key="timer/big/1", correlation=CORRELATION)

    [report] = sink.emit(results, meta, Deadline.after(30))

    messages = queues.messages(queue=QUEUE)
    assert report.ok and report.message == f"{len(messages)} parts" and len(messages) >= 2
    assert report.message_id == ",".join(m["MsgId"] for m in messages)
    assert all(len(m["MsgContent"].encode("utf-8")) <= MAX_MESSAGE_BYTES for m in messages)
    decoded = [json.loads(m["MsgContent"]) for m in messages]
    assert [r["storageId"] for d in decoded for r in d["results"]] == [r.storageId for r in results]


@pytest.mark.parametrize(("margin_ms", "delivered"), [(0, False), (2000, True)])
def test_delivery_gets_half_the_safety_margin_after_the_deadline(
    queues: Emulator, margin_ms: int, delivered: bool
) -> None:
    """The snapshot work stops at the deadline; sending may use half the margin, not more."""
    settings = emulator_settings(queues, safety_margin_ms=margin_ms)
    runtime = Runtime.from_settings(settings, stream=io.StringIO(), policy=FAST_POLICY)
    meta = RequestMeta(trigger="timer", request_key="k", reply_to=ReplyTo(queue=QUEUE))
    expired = Deadline.after(-10.0)

    [report] = [r for r in runtime.pipeline.deliver([], meta, expired) if r.sink.startswith("queue:")]

    assert report.ok is delivered
    assert len(queues.messages(queue=QUEUE)) == int(delivered)
    if not delivered:
        assert "deadline" in report.message and sends(queues) == []


# -- cold start -----------------------------------------------------------------------------------


def test_the_tdmq_sdk_is_not_imported_until_a_message_is_sent() -> None:
    """The timer handler's import and a run without a destination leave the TDMQ SDK unloaded."""
    script = textwrap.dedent(
        """
        import sys
        sys.path[:0] = [{root!r}, {lib!r}]
        import handlers.timer
        import cbsnap.runtime
        rt = cbsnap.runtime.Runtime.from_settings(cbsnap.settings.Settings())
        assert "cbsnap.tdmq" not in sys.modules, "cbsnap.tdmq imported at cold start"
        assert not [m for m in sys.modules if m.startswith("tencentcloud.tdmq")], "TDMQ SDK imported"
        print("ok")
        """
    ).format(root=str(ROOT), lib=str(ROOT / "lib"))
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_one_message_per_request_of_a_queue_batch(queues: Emulator, harness: RuntimeHarness) -> None:
    from handlers.messages import main_handler as messages_handler

    def request(msg: str, disk: str) -> dict[str, Any]:
        return {"storageId": disk, "replyTo": {"queue": QUEUE}, "correlation": {"msg": msg}}

    event = ckafka_event(request("m-1", "disk-g73hhs4o"), request("m-2", "disk-lzrg2pwi"), topic="requests")
    messages_handler(event, scf_context())

    sent = sorted(bodies(queues, queue=QUEUE), key=lambda b: b["requestKey"])
    assert [b["requestKey"] for b in sent] == ["ckafka/requests/0/1", "ckafka/requests/0/2"]
    assert [b["correlation"] for b in sent] == [{"msg": "m-1"}, {"msg": "m-2"}]
    assert [[r["storageId"] for r in b["results"]] for b in sent] == [["disk-g73hhs4o"], ["disk-lzrg2pwi"]]
    assert [b["results"][0]["messageId"] for b in sent] == ["requests/0/1", "requests/0/2"]
