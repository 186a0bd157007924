"""The message-queue handler end to end: real SDK → real HTTP → emulator (signatures verified)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cbsnap.events.queue import MessagesNotAttempted
from cbsnap.ownership import TRIGGER_TAG
from cbsnap_emulator import Emulator, Fault
from handlers.messages import main_handler
from tests.conftest import (
    SAMPLE_REQUESTS,
    RuntimeHarness,
    answer,
    ckafka_event,
    emulator_settings,
    load_event,
    owned_snapshots,
    scf_context,
)
from tests.conftest import ckafka_id as m
from tests.unit.test_queue_events import CKAFKA_DOC, RETIRED_CMQ_RECORD, TDMQ_DOC, with_bodies


def by_disk(response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["storageId"]: r for r in response["results"] if r.get("storageId")}


def creates(emulator: Emulator) -> list[dict[str, Any]]:
    return emulator.calls(action="CreateSnapshot")


def test_a_queue_batch_names_each_disk_and_message(emulator: Emulator, harness: RuntimeHarness) -> None:
    """The retired CMQ sample's two requests, delivered as CKafka records."""
    response = main_handler(ckafka_event(*SAMPLE_REQUESTS, start=1407), scf_context())

    assert response["trigger"] == "ckafka" and response["messages"] == 2
    results = by_disk(response)
    assert set(results) == {"disk-g73hhs4o", "disk-q7m3x9ab", "disk-w9f4h1sz"}
    assert all(r["code"] == 0 and r["snapshotId"].startswith("snap-") for r in results.values())
    assert results["disk-g73hhs4o"]["messageId"] == "cbsnap-requests/0/1407"
    assert results["disk-g73hhs4o"]["snapshotName"] == "mySnap"
    assert results["disk-w9f4h1sz"]["messageId"] == "cbsnap-requests/0/1408"
    assert results["disk-w9f4h1sz"]["snapshotName"] == "db"
    [snap] = owned_snapshots(emulator, "disk-q7m3x9ab")
    tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
    assert tags[TRIGGER_TAG] == "ckafka" and tags["team"] == "ops"


def test_a_cmq_trigger_record_is_refused_with_the_reason(emulator: Emulator, harness: RuntimeHarness) -> None:
    """SCF has no CMQ trigger since CMQ's retirement: such a record (the deleted sample's,
    verbatim) is a 9003 that says so, next to a CKafka record that still runs; never dropped."""
    event = ckafka_event({"storageId": "disk-lzrg2pwi"})
    event["Records"].insert(0, RETIRED_CMQ_RECORD)

    response = main_handler(event, scf_context())

    refused, ran = response["results"]
    assert response["messages"] == 2 and response["trigger"] == "queue"
    assert (refused["messageId"], refused["storageId"], refused["code"]) == ("Records[0]", None, 9003)
    assert refused["message"].startswith("Records[0]: ")
    assert "CMQ trigger" in refused["message"] and "TDMQ-CMQ push" in refused["message"]
    assert (ran["messageId"], ran["code"]) == (m(1), 0)
    assert [c["params"]["DiskId"] for c in creates(emulator)] == ["disk-lzrg2pwi"]
    logged = [r["result"] for r in harness.log_records() if "result" in r]
    assert [r["code"] for r in logged] == [9003, 0], "the refusal is logged too"


def test_ckafka_sample_event(emulator: Emulator, harness: RuntimeHarness) -> None:
    response = main_handler(load_event("ckafka.json"), scf_context())
    assert response["trigger"] == "ckafka" and response["succeeded"] == 3 and response["failed"] == 0
    assert by_disk(response)["disk-u2j6t8ye"]["messageId"] == "cbsnap-requests/0/37"


def test_tdmq_sample_event(emulator: Emulator, harness: RuntimeHarness) -> None:
    response = main_handler(load_event("tdmq.json"), scf_context())
    assert response["trigger"] == "tdmq" and response["succeeded"] == 2
    assert {r["messageId"] for r in response["results"]} == {"CAIQBBgAIAA="}


@pytest.mark.parametrize(("shape", "trigger"), [(CKAFKA_DOC, "ckafka"), (TDMQ_DOC, "tdmq")])
def test_documented_tencent_shapes(
    emulator: Emulator, harness: RuntimeHarness, shape: dict[str, Any], trigger: str
) -> None:
    documents = [{"storageId": "disk-g73hhs4o"}, {"disks": ["disk-lzrg2pwi"], "snapshotName": "b"}]
    count = len(shape.get("Records", [None]))
    response = main_handler(with_bodies(shape, *documents[:count]), scf_context())
    assert response["trigger"] == trigger
    assert response["total"] == count and response["succeeded"] == count
    assert len(creates(emulator)) == count


def test_a_mixed_batch_reports_every_record_and_runs_the_good_ones(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    event = ckafka_event(
        {"storageId": "disk-g73hhs4o"},
        "not json at all",
        {"disks": ["disk-lzrg2pwi", "disk-SHOUTING"]},
        {"storageId": "disk-aaaaaaa1", "surprise": True},
    )
    event["Records"].insert(2, {"Cos": {"key": "x"}})
    event["Records"].append("junk")

    response = main_handler(event, scf_context())

    rows = [(r["messageId"], r.get("storageId"), r["code"]) for r in response["results"]]
    assert rows == [
        (m(1), "disk-g73hhs4o", 0),
        (m(2), None, 9003),
        ("Records[2]", None, 9003),
        (m(3), "disk-lzrg2pwi", 0),
        (m(3), "disk-SHOUTING", 9003),
        (m(4), "disk-aaaaaaa1", 9003),
        ("Records[5]", None, 9003),
    ]
    assert response["messages"] == 6 and response["failed"] == 5
    assert f"Records[1] ({m(2)})" in response["results"][1]["message"]
    assert "Records[2]" in response["results"][2]["message"]
    assert sorted(c["params"]["DiskId"] for c in creates(emulator)) == ["disk-g73hhs4o", "disk-lzrg2pwi"]
    logged = [r["result"] for r in harness.log_records() if "result" in r]
    assert len(logged) == 7 and all("messageId" in r for r in logged)


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "Records",
        {},
        {"Records": "x"},
        {"Records": []},
        {"Records": [None, 1, "x", [], {}]},
        {"Records": [{"Ckafka": {"topic": "t", "partition": 0, "offset": 1, "msgBody": None}}]},
        {
            "Records": [
                {
                    "Ckafka": {
                        "topic": "t",
                        "partition": 0,
                        "offset": 1,
                        "msgBody": {"storageId": "disk-g73hhs4o"},
                    }
                }
            ]
        },
        {"Records": [{"CMQ": {"msgId": "m1", "msgBody": json.dumps({"storageId": "disk-g73hhs4o"})}}]},
        {"Records": [{"Ckafka": {"topic": "t", "partition": 0, "offset": 1, "msgBody": "[1, 2]"}}]},
        {"specversion": "0", "type": "connector:tdmq", "data": "x"},
        {"Type": "Timer", "TriggerName": "t", "Time": "x", "Message": "{}"},
    ],
)
def test_malformed_events_are_reported_not_raised(
    emulator: Emulator, harness: RuntimeHarness, event: Any
) -> None:
    response = main_handler(event, scf_context())
    assert response["results"] and all(r["code"] == 9003 for r in response["results"])
    assert all(r.get("messageId") for r in response["results"])
    assert emulator.calls() == []
    assert harness.log_records(), "the problem must be logged too"


def test_a_disk_still_busy_is_16005_and_its_message_is_redelivered(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    emulator.add_fault(Fault(action="CreateSnapshot", code="InvalidDisk.Busy", disk_id="disk-g73hhs4o"))
    with pytest.raises(MessagesNotAttempted) as info:
        main_handler(
            ckafka_event({"storageId": "disk-g73hhs4o"}, {"storageId": "disk-lzrg2pwi"}), scf_context()
        )
    assert info.value.message_ids == [m(1)], "only the message with the busy disk comes back"
    assert info.value.response is not None
    results = by_disk(info.value.response)
    assert results["disk-g73hhs4o"]["code"] == 16005 and results["disk-lzrg2pwi"]["code"] == 0
    assert info.value.response["notAttempted"] == 0


@pytest.mark.parametrize(
    ("api_code", "seed_code", "redelivered"),
    [
        ("InsufficientSnapshotQuota", 16006, False),
        ("AuthFailure.UnauthorizedOperation", 4100, False),
        ("InternalError", 6000, True),
    ],
)
def test_cloud_failures_end_with_their_code_and_transient_ones_are_redelivered(
    emulator: Emulator, harness: RuntimeHarness, api_code: str, seed_code: int, redelivered: bool
) -> None:
    emulator.add_fault(Fault(action="CreateSnapshot", code=api_code))
    response, redelivery = answer(main_handler, ckafka_event({"storageId": "disk-g73hhs4o"}))
    [result] = response["results"]
    assert result["code"] == seed_code and result["messageId"] == m(1)
    assert redelivery == redelivered


def test_out_of_time_raises_after_logging_every_result(emulator: Emulator) -> None:
    # 2 calls/s per action and 1.2 s: DescribeDisks at 0 s, creates at 0, 0.5 and 1.0 s.
    h = RuntimeHarness(emulator_settings(emulator, rate_limit=2.0, concurrency=1, safety_margin_ms=0))
    disks = ["disk-g73hhs4o", "disk-lzrg2pwi", "disk-aaaaaaa1", "disk-aaaaaaa2"]
    late, later = emulator.add_disks(2)
    event = ckafka_event({"disks": disks}, {"storageId": late}, {"storageId": later}, {"disks": ["disk-BAD"]})

    with pytest.raises(MessagesNotAttempted) as info:
        main_handler(event, scf_context(timeout_ms=1200))

    # offset 1 ran out of time part-way, 2 before its create, 3 before its DescribeDisks;
    # 4 was invalid, which is final.
    assert info.value.message_ids == [m(1), m(2), m(3)]
    assert m(4) not in str(info.value)
    logged = [r["result"] for r in h.log_records() if "result" in r]
    assert {(r["messageId"], r["storageId"]) for r in logged} == {
        *((m(1), d) for d in disks),
        (m(2), late),
        (m(3), later),
        (m(4), "disk-BAD"),
    }
    attempted = {c["params"]["DiskId"] for c in creates(emulator)}
    assert attempted and attempted < set(disks)
    not_attempted = {r["storageId"] for r in logged if r["code"] == 6000}
    assert not_attempted == set(disks) - attempted | {late, later}


def test_an_expired_invocation_attempts_nothing_and_raises(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    with pytest.raises(MessagesNotAttempted) as info:
        main_handler(ckafka_event({"storageId": "disk-g73hhs4o"}), scf_context(timeout_ms=0))
    assert info.value.message_ids == [m(1)] and m(1) in str(info.value)
    assert creates(emulator) == []
    [logged] = [r["result"] for r in harness.log_records() if "result" in r]
    assert logged["code"] == 6000 and logged["messageId"] == m(1)


def test_the_exception_and_logs_never_carry_secrets(emulator: Emulator) -> None:
    secret = "whsec-DISTINCTIVE-queue-9f27-0123456789"
    h = RuntimeHarness(emulator_settings(emulator, webhook_secret=secret, secret_key="wrong-key-DISTINCT-77"))
    response = main_handler(ckafka_event({"storageId": "disk-g73hhs4o"}), scf_context())
    assert response["results"][0]["code"] == 4100
    assert secret not in h.stream.getvalue() and "wrong-key-DISTINCT-77" not in h.stream.getvalue()
    with pytest.raises(MessagesNotAttempted) as info:
        main_handler(ckafka_event({"storageId": "disk-g73hhs4o"}), scf_context(timeout_ms=0))
    assert secret not in str(info.value) and "wrong-key-DISTINCT-77" not in str(info.value)


def test_a_redelivered_message_does_not_snapshot_twice(emulator: Emulator, harness: RuntimeHarness) -> None:
    event = ckafka_event({"storageId": "disk-g73hhs4o"})
    first = main_handler(event, scf_context())["results"][0]
    again = main_handler(event, scf_context())["results"][0]
    assert first["code"] == again["code"] == 0
    assert again["snapshotId"] == first["snapshotId"]
    assert len(owned_snapshots(emulator, "disk-g73hhs4o")) == 1
