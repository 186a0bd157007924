"""Reading CKafka and TDMQ events into messages (the retired CMQ trigger's records refused), a
TDMQ-CMQ topic's HTTP push, and the batch's answer (no I/O)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from cbsnap.codes import SeedCode
from cbsnap.events.queue import (
    BatchReport,
    MessagesNotAttempted,
    QueueMessage,
    parse_cmq_push,
    parse_queue_event,
)
from cbsnap.events.text import escaped, is_text
from cbsnap.events.timer import parse_timer_event
from cbsnap.models import SnapshotResult
from cbsnap.outcome import Outcome
from tests.conftest import load_event

SEED = {"storageId": "disk-g73hhs4o", "snapshotName": "mySnap"}

# The documented shapes (tencent-facts §4.1, qcloud-documents), verbatim but for the bodies.
# CMQ_DOC is the retired CMQ trigger's: SCF no longer delivers it, and cbsnap refuses it (9003).
CMQ_DOC = {
    "Records": [
        {
            "CMQ": {
                "type": "topic",
                "topicOwner": 120000000,
                "topicName": "testtopic",
                "subscriptionName": "xxxxxx",
                "publishTime": "1970-01-01T00:00:00.000Z",
                "msgId": "123345346",
                "requestId": "123345346",
                "msgBody": "Hello from CMQ!",
                "msgTag": "tag1,tag2",
            }
        }
    ]
}
# The first record of the CMQ trigger's sample event (events/cmq.json, deleted with the trigger).
RETIRED_CMQ_RECORD = {
    "CMQ": {
        "type": "topic",
        "topicOwner": 1253970226,
        "topicName": "cbsnap-requests",
        "subscriptionName": "cbsnap-fn",
        "publishTime": "2026-11-28T02:00:00.000Z",
        "msgId": "1407374883553281",
        "requestId": "1407374883553281",
        "msgBody": json.dumps(SEED),
        "msgTag": "snapshot",
    }
}
CKAFKA_DOC = {
    "Records": [
        {"Ckafka": {"topic": "test-topic", "partition": 1, "offset": 36, "msgKey": "None", "msgBody": "x"}},
        {"Ckafka": {"topic": "test-topic", "partition": 1, "offset": 37, "msgKey": "None", "msgBody": "y"}},
    ]
}
TDMQ_DOC = {
    "specversion": "0",
    "id": "13a3f42d-7258-4ada-da6d-023a333b4662",
    "type": "connector:tdmq",
    "source": "tdmq.cloud.tencent",
    "subjuect": "qcs::tdmq:$region:$account:topicName/$topicSets.clusterId",
    "time": "1615430559146",
    "region": "ap-guangzhou",
    "datacontenttype": "application/json;charset=utf-8",
    "data": {
        "topic": "persistent://appid/namespace/topic-1",
        "tags": "testtopic",
        "TopicType": 0,
        "subscriptionName": "xxxxxx",
        "toTimestamp": "1603352765001",
        "partitions": "0",
        "msgId": "123345346",
        "msgBody": "Hello from TDMQ!",
    },
}


def with_bodies(event: dict[str, Any], *documents: Any) -> dict[str, Any]:
    """``event`` with each message body replaced by a request document."""
    event = copy.deepcopy(event)
    bodies = [d if isinstance(d, str) else json.dumps(d) for d in documents]
    if "Records" in event:
        for record, body in zip(event["Records"], bodies, strict=True):
            next(iter(record.values()))["msgBody"] = body
    else:
        event["data"]["msgBody"] = bodies[0]
    return event


CMQ_REASON = "a CMQ trigger record: SCF has no CMQ trigger"


@pytest.mark.parametrize(
    "record",
    [
        with_bodies(CMQ_DOC, SEED)["Records"][0],
        RETIRED_CMQ_RECORD,
        {"cmq": RETIRED_CMQ_RECORD["CMQ"]},  # the key's case is not trusted
        {"Cmq": {"msgId": 1407374883553281, "msgBody": json.dumps(SEED)}},
        {"CMQ": {}},
        {"CMQ": "not an object"},
    ],
)
def test_a_cmq_trigger_record_is_refused_naming_why(record: Any) -> None:
    """SCF has no CMQ trigger since CMQ's retirement: such a record, even a well-formed one
    naming a real disk, is a problem that says so (a 9003), never a request nor dropped."""
    parsed = parse_queue_event({"Records": [record]})
    [message] = parsed.messages
    assert (parsed.source, message.source, message.message_id) == ("queue", "queue", "Records[0]")
    assert message.document is None and message.request_key == "queue/Records[0]"
    assert message.problem is not None and message.problem.startswith(f"Records[0]: {CMQ_REASON}")
    assert "TDMQ-CMQ push" in message.problem


def test_documented_ckafka_shape() -> None:
    parsed = parse_queue_event(with_bodies(CKAFKA_DOC, SEED, {"disks": ["disk-lzrg2pwi"]}))
    assert parsed.source == "ckafka"
    assert [m.request_key for m in parsed.messages] == ["ckafka/test-topic/1/36", "ckafka/test-topic/1/37"]
    assert [m.message_id for m in parsed.messages] == ["test-topic/1/36", "test-topic/1/37"]
    assert parsed.messages[1].document == {"disks": ["disk-lzrg2pwi"]}


def test_documented_tdmq_shape() -> None:
    parsed = parse_queue_event(with_bodies(TDMQ_DOC, SEED))
    [message] = parsed.messages
    assert parsed.source == "tdmq" and message.request_key == "tdmq/123345346"
    assert message.topic == "persistent://appid/namespace/topic-1" and message.document == SEED


@pytest.mark.parametrize("name", ["ckafka.json", "tdmq.json", "eventbridge-batch.json"])
def test_sample_events_parse_cleanly(name: str) -> None:
    parsed = parse_queue_event(load_event(name))
    assert parsed.messages and all(m.problem is None for m in parsed.messages)
    assert all(isinstance(m.document, dict) for m in parsed.messages)


def test_variants_seen_in_other_docs() -> None:
    event = with_bodies(CKAFKA_DOC, SEED, SEED)
    kafka = event["Records"][0]["Ckafka"]
    del kafka["msgKey"]
    kafka.update(offset=2**40, timestamp="1615430559146", headers={"k": "v"})
    first, _ = parse_queue_event(event).messages
    assert first.request_key == f"ckafka/test-topic/1/{2**40}" and first.problem is None
    # The record key's case is not trusted; a numeric-text offset is fine.
    for key in ("ckafka", "CKafka", "CKAFKA"):
        kafka = {"Records": [{key: {"topic": "t", "partition": "0", "offset": "9", "msgBody": "{}"}}]}
        assert parse_queue_event(kafka).messages[0].request_key == "ckafka/t/0/9"


def test_a_base64_body_of_json_is_accepted() -> None:
    body = base64.b64encode(json.dumps(SEED).encode()).decode()
    message, _ = parse_queue_event(with_bodies(CKAFKA_DOC, body, "{}")).messages
    assert message.document == SEED and message.problem is None


def problems(event: Any) -> list[tuple[str | None, str]]:
    messages = parse_queue_event(event).messages
    assert all(m.problem is not None for m in messages)
    return [(m.message_id, m.problem or "") for m in messages]


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        (None, "must be a JSON object"),
        ([{"Ckafka": {}}], "must be a JSON object"),
        ("Records", "must be a JSON object"),
        ({}, "not a queue event"),
        ({"Type": "Timer", "Message": "{}"}, "not a queue event"),
        ({"Records": None}, "Records must be a list"),
        ({"Records": {"Ckafka": {}}}, "Records must be a list"),
        ({"Records": []}, "Records is empty"),
    ],
)
def test_unusable_events_become_one_problem(event: Any, fragment: str) -> None:
    [(message_id, problem)] = problems(event)
    assert message_id == "event" and fragment in problem


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ("text", "must be a JSON object"),
        ({"Cos": {}}, "not a Ckafka message"),
        ({"Ckafka": "not an object"}, "not a Ckafka message"),
        ({"CMQ": {"msgId": "m1", "msgBody": json.dumps(SEED)}}, CMQ_REASON),
        ({"Ckafka": {"topic": "t", "partition": 0, "msgBody": "{}"}}, "topic, partition and offset"),
        ({"Ckafka": {"partition": 0, "offset": 1, "msgBody": "{}"}}, "topic, partition and offset"),
        ({"Ckafka": {"topic": "", "partition": 0, "offset": 1, "msgBody": "{}"}}, "topic, partition"),
        ({"Ckafka": {"topic": 7, "partition": 0, "offset": 1, "msgBody": "{}"}}, "topic, partition"),
        ({"Ckafka": {"topic": "t", "partition": -1, "offset": 1, "msgBody": "{}"}}, "topic, partition"),
        ({"Ckafka": {"topic": "t", "partition": True, "offset": 1, "msgBody": "{}"}}, "topic, partition"),
        ({"Ckafka": {"topic": "t", "partition": 0, "offset": 1.5, "msgBody": "{}"}}, "topic, partition"),
    ],
)
def test_a_record_without_identity_is_named_by_its_index(record: Any, fragment: str) -> None:
    good = {"Ckafka": {"topic": "t", "partition": 0, "offset": 0, "msgBody": json.dumps(SEED)}}
    messages = parse_queue_event({"Records": [good, record]}).messages
    assert messages[0].problem is None
    bad = messages[1]
    assert bad.message_id == "Records[1]" and bad.problem is not None
    assert bad.problem.startswith("Records[1]: ") and fragment in bad.problem


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (None, "must be a string, got NoneType"),
        (42, "must be a string, got int"),
        ({"storageId": "disk-g73hhs4o"}, "must be a string, got dict"),
        ("", "msgBody is empty"),
        ("   ", "msgBody is empty"),
        ("Hello from CKafka!", "not valid JSON"),
        (base64.b64encode(b"not json").decode(), "not valid JSON"),
        ("[" * 100_000, "not valid JSON"),
    ],
)
def test_bad_bodies_name_their_message(body: Any, fragment: str) -> None:
    event = copy.deepcopy(CKAFKA_DOC)
    del event["Records"][1]
    event["Records"][0]["Ckafka"]["msgBody"] = body
    [(message_id, problem)] = problems(event)
    assert message_id == "test-topic/1/36"
    assert problem.startswith("Records[0] (test-topic/1/36): ") and fragment in problem


@pytest.mark.parametrize(
    ("data", "message_id", "fragment"),
    [
        (None, "13a3f42d-7258-4ada-da6d-023a333b4662", "no data object"),
        ({"msgBody": "{}"}, "13a3f42d-7258-4ada-da6d-023a333b4662", "no usable data.msgId"),
        ({"msgId": "m1", "msgBody": 7}, "m1", "must be a string"),
    ],
)
def test_bad_tdmq_events(data: Any, message_id: str, fragment: str) -> None:
    event = copy.deepcopy(TDMQ_DOC)
    event["data"] = data
    [(got_id, problem)] = problems(event)
    assert got_id == message_id and fragment in problem


def test_a_mixed_batch_keeps_every_record() -> None:
    event = {
        "Records": [
            {"Ckafka": {"topic": "t", "partition": 0, "offset": 0, "msgBody": json.dumps(SEED)}},
            {"Ckafka": {"topic": "t", "partition": 0, "offset": 1, "msgBody": "nope"}},
            42,
            RETIRED_CMQ_RECORD,
            {
                "Ckafka": {
                    "topic": "t",
                    "partition": 0,
                    "offset": 4,
                    "msgBody": json.dumps({"disks": ["disk-BAD"]}),
                }
            },
        ]
    }
    parsed = parse_queue_event(event)
    assert parsed.source == "queue"  # mixed sources
    assert [m.message_id for m in parsed.messages] == ["t/0/0", "t/0/1", "Records[2]", "Records[3]", "t/0/4"]
    # validation of the document itself is the runtime's (per disk, 9003)
    assert [m.problem is None for m in parsed.messages] == [True, False, False, False, True]
    assert CMQ_REASON in (parsed.messages[3].problem or "")


# -- the batch's answer -------------------------------------------------------------------


def _result(disk: str, code: SeedCode, message: str = "", msg_id: str = "m") -> SnapshotResult:
    if code == SeedCode.SUCCESS:
        base = SnapshotResult(
            storageId=disk,
            snapshotName="n",
            code=0,
            codeDesc="Success",
            message="",
            snapshotId="snap-aaaaaaaa",
        )
    else:
        base = SnapshotResult.failure(disk, "n", code, message)
    return base.model_copy(update={"messageId": msg_id})


def _message(msg_id: str) -> QueueMessage:
    return QueueMessage(source="ckafka", message_id=msg_id, request_key=f"ckafka/{msg_id}")


def test_report_collects_results_and_does_not_raise_for_final_failures() -> None:
    report = BatchReport("ckafka")
    report.add(_message("m1"), Outcome([_result("disk-g73hhs4o", SeedCode.SUCCESS, msg_id="m1")]))
    report.add(
        _message("m2"), Outcome([_result("disk-lzrg2pwi", SeedCode.SNAPSHOT_NOT_SUPPORTED, "no", "m2")])
    )
    report.raise_if_unattempted()
    response = report.to_response()
    assert response["trigger"] == "ckafka" and response["messages"] == 2
    assert (response["total"], response["succeeded"], response["failed"], response["notAttempted"]) == (
        2,
        1,
        1,
        0,
    )
    assert [r["messageId"] for r in response["results"]] == ["m1", "m2"]


def test_unattempted_disks_raise_naming_their_messages() -> None:
    report = BatchReport("ckafka")
    done = Outcome([_result("disk-g73hhs4o", SeedCode.SUCCESS, msg_id="t/0/1")])
    late = Outcome(
        [
            SnapshotResult.not_attempted("disk-lzrg2pwi", "n", "out of time").model_copy(
                update={"messageId": "t/0/2"}
            )
        ]
    )
    report.add(_message("t/0/1"), done)
    report.add(_message("t/0/2"), late)
    assert report.to_response()["notAttempted"] == 1
    with pytest.raises(MessagesNotAttempted, match="t/0/2") as info:
        report.raise_if_unattempted()
    assert info.value.message_ids == ["t/0/2"]
    assert "t/0/1" not in str(info.value)


def test_a_transient_failure_asks_for_a_redelivery_too() -> None:
    report = BatchReport("ckafka")
    report.add(_message("t/0/3"), Outcome([_result("disk-lzrg2pwi", SeedCode.DISK_BUSY, "busy", "t/0/3")]))
    assert report.to_response()["notAttempted"] == 0
    with pytest.raises(MessagesNotAttempted, match="t/0/3"):
        report.raise_if_unattempted()


def test_the_exception_lists_at_most_twenty_ids() -> None:
    error = MessagesNotAttempted([f"m{i}" for i in range(25)])
    assert "m19" in str(error) and "m20," not in str(error) and "and 5 more" in str(error)
    assert len(error.message_ids) == 25


# -- EventBridge batches --------------------------------------------------------------------------


def test_an_event_list_is_one_message_per_event() -> None:
    first, second = with_bodies(TDMQ_DOC, SEED), with_bodies(TDMQ_DOC, {"disks": ["disk-q7m3x9ab"]})
    second["data"]["msgId"] = "m2"
    parsed = parse_queue_event({"EventList": [first, second]})
    assert parsed.source == "tdmq"
    assert [(m.request_key, m.message_id, m.problem) for m in parsed.messages] == [
        ("tdmq/123345346", "123345346", None),
        ("tdmq/m2", "m2", None),
    ]


@pytest.mark.parametrize(
    ("item", "fragment", "message_id"),
    [
        (7, "must be a JSON object", "EventList[1]"),
        ({"data": {"msgId": "x", "msgBody": "{}"}}, "not a CloudEvent", "EventList[1]"),
        ({**TDMQ_DOC, "data": None}, "no data object", "13a3f42d-7258-4ada-da6d-023a333b4662"),
        (
            {**TDMQ_DOC, "data": {"msgBody": "{}"}},
            "no usable data.msgId",
            "13a3f42d-7258-4ada-da6d-023a333b4662",
        ),
    ],
)
def test_a_bad_event_in_a_list_is_named_and_alone(item: Any, fragment: str, message_id: str) -> None:
    good = with_bodies(TDMQ_DOC, SEED)
    messages = parse_queue_event({"EventList": [good, item, good]}).messages
    assert [m.problem is None for m in messages] == [True, False, True]
    assert messages[1].message_id == message_id
    assert (messages[1].problem or "").startswith("EventList[1]: ") and fragment in (
        messages[1].problem or ""
    )


# -- text that is not text, and digits that are not ASCII (issue 9, finding 9) ---------------------


@pytest.mark.parametrize("partition", ["\u00b2", "\u0663", "\uff11", "1\u00b2", " 1", "+1"])
def test_only_ascii_digits_are_a_kafka_offset(partition: str) -> None:
    record = {"Ckafka": {"topic": "t", "partition": partition, "offset": 1, "msgBody": "{}"}}
    [message] = parse_queue_event({"Records": [record]}).messages
    assert message.problem is not None and "partition" in message.problem


def test_identifiers_that_are_not_text_never_reach_a_key() -> None:
    kafka = {"Ckafka": {"topic": "t\ud800", "partition": 0, "offset": 1, "msgBody": "{}"}}
    [first] = parse_queue_event({"Records": [kafka]}).messages
    tdmq = with_bodies(TDMQ_DOC, SEED)
    tdmq["data"]["topic"] = "q\udfff"
    [second] = parse_queue_event(tdmq).messages
    assert first.problem is not None and "not valid Unicode text" in first.problem
    assert second.problem is None and second.topic == "q\\udfff"  # a source id only: escaped
    for message in (first, second):
        for text in (
            message.request_key,
            message.message_id or "",
            message.topic or "",
            message.problem or "",
        ):
            text.encode("utf-8")


@pytest.mark.parametrize("field", ["TriggerName", "Time"])
def test_a_timer_identifier_that_is_not_text_is_refused_with_a_writable_key(field: str) -> None:
    event = {"Type": "Timer", "TriggerName": "n", "Time": "t", "Message": "{}", field: "x\ud800"}
    firing = parse_timer_event(event, None)
    assert firing.problem is not None and field in firing.problem
    firing.request_key.encode("utf-8")
    assert firing.request_key == parse_timer_event(event, None).request_key, "stable across retries"


def test_escaping_is_stable_and_keeps_values_apart() -> None:
    assert escaped("plain") == "plain" and is_text("plain")
    assert not is_text("a\ud800") and is_text(escaped("a\ud800"))
    assert escaped("a\ud800") != escaped("a\ud801")


# -- CMQ topic pushes -------------------------------------------------------------------------------

NOTIFY = {
    "TopicOwner": 100015036,
    "topicName": "MyTopic",
    "subscriptionName": "mysubscription",
    "msgId": "6942316962",
    "msgBody": json.dumps(SEED),
    "publishTime": 11203432,
}  # the documented JSON notify (cloud.tencent.com/document/product/1496/65109), our body


def test_the_documented_json_notify() -> None:
    message = parse_cmq_push(json.dumps(NOTIFY).encode(), {"x-cmq-message-id": "6942316962"})
    assert (message.source, message.request_key, message.message_id) == (
        "cmq",
        "cmq/6942316962",
        "6942316962",
    )
    assert message.topic == "MyTopic" and message.document == SEED and message.problem is None


def test_the_simplified_format_takes_the_header_id() -> None:
    message = parse_cmq_push(json.dumps(SEED).encode(), {"x-cmq-message-id": "6942316962"})
    assert message.request_key == "cmq/6942316962" and message.document == SEED


@pytest.mark.parametrize(
    ("body", "headers", "fragment"),
    [
        (b"\xed\xa0\x80", {}, "not valid UTF-8"),
        (b"{}", {}, "not a CMQ push"),
        (json.dumps({**NOTIFY, "msgId": None}).encode(), {}, "no usable msgId"),
        (json.dumps({**NOTIFY, "msgBody": 7}).encode(), {}, "must be a string"),
        (b"Hello from CMQ!", {"x-cmq-message-id": "m9"}, "not valid JSON"),
    ],
)
def test_unusable_pushes_become_one_problem(body: bytes, headers: dict[str, str], fragment: str) -> None:
    message = parse_cmq_push(body, headers)
    assert message.source == "cmq" and message.problem is not None and fragment in message.problem
