"""EventBridge's batched delivery (``{"EventList": [...]}``) end to end: real SDK, emulator.

With batching on, EventBridge hands the function an array of the CloudEvents it would
otherwise deliver one by one (cloud.tencent.com/document/product/248/87558). Each event is
its own message: one that cannot be used is one 9003 and the others run; each is keyed by
its ``data.msgId`` (``tdmq/<msgId>``), so a redelivered batch makes no second snapshot.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cbsnap.events.queue import MessagesNotAttempted
from cbsnap.ownership import KEY_TAG, disk_key
from cbsnap_emulator import Emulator
from handlers.index import main_handler
from tests.conftest import RuntimeHarness, load_event, owned_snapshots, scf_context


def batch(*bodies: Any) -> dict[str, Any]:
    """The sample batch's events with these message bodies (one event per body)."""
    sample = load_event("eventbridge-batch.json")["EventList"]
    events = []
    for i, body in enumerate(bodies):
        event = copy.deepcopy(sample[i % len(sample)])
        event["id"] = f"event-{i}"
        event["data"]["msgId"] = f"msg-{i}"
        event["data"]["msgBody"] = body if isinstance(body, str) else json.dumps(body)
        events.append(event)
    return {"EventList": events}


def creates(emu: Emulator) -> list[str]:
    return [c["params"]["DiskId"] for c in emu.calls(action="CreateSnapshot")]


def test_the_sample_batch_snapshots_every_event(emulator: Emulator, harness: RuntimeHarness) -> None:
    event = load_event("eventbridge-batch.json")
    response = main_handler(event, scf_context())
    assert response["trigger"] == "tdmq" and response["messages"] == 3
    assert [r["code"] for r in response["results"]] == [0, 0, 0]
    msg_ids = [e["data"]["msgId"] for e in event["EventList"]]
    assert [r["messageId"] for r in response["results"]] == msg_ids
    for result, msg_id in zip(response["results"], msg_ids, strict=True):
        [snap] = owned_snapshots(emulator, result["storageId"])
        tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
        assert tags[KEY_TAG] == disk_key(f"tdmq/{msg_id}", result["storageId"])


def test_three_events_one_invalid_make_two_snapshots_and_one_9003(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    event = batch({"storageId": "disk-g73hhs4o"}, "{not json", {"disks": ["disk-lzrg2pwi"]})
    response = main_handler(event, scf_context())
    codes = [r["code"] for r in response["results"]]
    assert codes == [0, 9003, 0]
    bad = response["results"][1]
    assert bad["messageId"] == "msg-1" and bad["message"].startswith("EventList[1] (msgId msg-1): ")
    assert sorted(creates(emulator)) == ["disk-g73hhs4o", "disk-lzrg2pwi"]
    logged = [r["result"]["code"] for r in harness.log_records() if "result" in r]
    assert sorted(logged) == [0, 0, 9003]


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("not an event", "must be a JSON object"),
        ({"hello": "world"}, "not a CloudEvent"),
        ({"specversion": "0", "type": "connector:tdmq", "id": "e-9"}, "no data object"),
        ({"specversion": "0", "type": "connector:tdmq", "data": {"msgBody": "{}"}}, "no usable data.msgId"),
    ],
)
def test_an_unusable_event_is_one_9003_and_the_others_run(
    emulator: Emulator, harness: RuntimeHarness, bad: Any, fragment: str
) -> None:
    event = batch({"storageId": "disk-g73hhs4o"}, {"storageId": "disk-lzrg2pwi"})
    event["EventList"].insert(1, bad)
    response = main_handler(event, scf_context())
    assert [r["code"] for r in response["results"]] == [0, 9003, 0]
    assert (
        "EventList[1]" in response["results"][1]["message"] and fragment in response["results"][1]["message"]
    )
    assert sorted(creates(emulator)) == ["disk-g73hhs4o", "disk-lzrg2pwi"]


def test_a_redelivered_batch_makes_no_second_snapshot(emulator: Emulator, harness: RuntimeHarness) -> None:
    event = batch({"storageId": "disk-g73hhs4o"}, {"disks": ["disk-lzrg2pwi", "disk-aaaaaaa1"]})
    first = main_handler(event, scf_context())
    emulator.advance(5)  # the first snapshots are NORMAL: only the keys stop a second one
    emulator.reset_calls()
    again = main_handler(copy.deepcopy(event), scf_context())
    assert [r["snapshotId"] for r in again["results"]] == [r["snapshotId"] for r in first["results"]]
    assert creates(emulator) == []
    for disk in ("disk-g73hhs4o", "disk-lzrg2pwi", "disk-aaaaaaa1"):
        assert len(owned_snapshots(emulator, disk)) == 1


def test_unattempted_events_fail_the_invocation_naming_their_msg_ids(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    event = batch({"storageId": "disk-g73hhs4o"}, {"storageId": "disk-lzrg2pwi"})
    with pytest.raises(MessagesNotAttempted, match="msg-0, msg-1"):
        main_handler(event, scf_context(timeout_ms=0))
    assert creates(emulator) == []
    response = main_handler(event, scf_context())  # EventBridge delivers it again
    assert [r["code"] for r in response["results"]] == [0, 0]


@pytest.mark.parametrize(("event", "fragment"), [({"EventList": []}, "empty"), ({"EventList": {}}, "a list")])
def test_an_empty_or_malformed_event_list_is_one_9003(
    emulator: Emulator, harness: RuntimeHarness, event: Any, fragment: str
) -> None:
    response = main_handler(event, scf_context())
    [result] = response["results"]
    assert result["code"] == 9003 and fragment in result["message"]
    assert emulator.calls() == []
