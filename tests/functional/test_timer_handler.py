"""The timer handler end to end: real SDK → real HTTP → emulator (signatures verified)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cbsnap.codes import TRANSIENT_CODES
from cbsnap.ownership import KEY_TAG, OWNER_TAG, TRIGGER_TAG
from cbsnap_emulator import Emulator, Fault
from handlers.timer import main_handler
from tests.conftest import RuntimeHarness, answer, emulator_settings, load_event, owned_snapshots, scf_context


def timer_event(document: Any, *, name: str = "t1", time: str = "2026-11-28T02:00:00Z") -> dict[str, Any]:
    message = document if isinstance(document, str) else json.dumps(document)
    return {"Type": "Timer", "TriggerName": name, "Time": time, "Message": message}


def creates(emulator: Emulator) -> list[dict[str, Any]]:
    return emulator.calls(action="CreateSnapshot")


def test_the_seed_example(emulator: Emulator, harness: RuntimeHarness) -> None:
    response = main_handler(load_event("timer-seed-example.json"), scf_context())

    [result] = response["results"]
    assert result["code"] == 0
    assert result["message"] == ""
    assert result["snapshotId"].startswith("snap-")
    assert result["storageId"] == "disk-g73hhs4o" and result["snapshotName"] == "mySnap"
    [snap] = owned_snapshots(emulator, "disk-g73hhs4o")
    assert snap["SnapshotId"] == result["snapshotId"]
    assert snap["SnapshotName"] == "mySnap"
    tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
    assert tags[OWNER_TAG] == "cbsnap" and tags[TRIGGER_TAG] == "timer" and len(tags[KEY_TAG]) == 32
    # The call that created it was signed by the SDK and verified by the emulator.
    [call] = creates(emulator)
    assert call["params"]["DiskId"] == "disk-g73hhs4o" and call["error"] is None


def test_sample_event_mixes_success_and_per_disk_failures(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    response = main_handler(load_event("timer.json"), scf_context())
    results = response["results"]
    # results keep the order in which the request named the disks
    assert [r["storageId"] for r in results] == [
        "disk-g73hhs4o",
        "disk-q7m3x9ab",
        "disk-w9f4h1sz",
        "disk-r5n8c2wd",
        "disk-NOT-VALID",
    ]
    assert [r["code"] for r in results] == [0, 0, 0, 16026, 9003]
    assert results[1]["snapshotName"] == "db-nightly" and results[0]["snapshotName"] == "nightly"
    assert response["total"] == 5 and response["succeeded"] == 3 and response["failed"] == 2
    assert sorted(c["params"]["DiskId"] for c in creates(emulator)) == [
        "disk-g73hhs4o",
        "disk-q7m3x9ab",
        "disk-w9f4h1sz",
    ]


# Each row of the mapping table, produced by the emulator and seen through the SDK.
TABLE_ROWS = [
    ("InvalidParameterValue", 9003, "InvalidParameter"),
    ("MissingParameter", 9003, "InvalidParameter"),
    ("InvalidDiskId.NotFound", 9003, "InvalidParameter"),
    ("InvalidDisk.Busy", 16005, "IncorrectInstanceStatus.DiskBusy"),
    ("ResourceBusy", 16005, "IncorrectInstanceStatus.DiskBusy"),
    ("ResourceInUse.DiskRollbacking", 16005, "IncorrectInstanceStatus.DiskBusy"),
    ("InsufficientSnapshotQuota", 16006, "SnapshotQuotaExceeded"),
    ("ResourceInsufficient.OverQuota", 16006, "SnapshotQuotaExceeded"),
    ("InvalidDisk.NotSupported", 16007, "IncorrectInstanceStatus.DiskTypeInvalid"),
    ("InvalidDisk.TypeError", 16007, "IncorrectInstanceStatus.DiskTypeInvalid"),
    ("ResourceUnavailable.NotSupported", 16007, "IncorrectInstanceStatus.DiskTypeInvalid"),
    ("UnsupportedOperation.DiskEncrypt", 16007, "IncorrectInstanceStatus.DiskTypeInvalid"),
    ("InvalidDisk.NotSupportSnapshot", 16026, "IncorrectInstanceStatus.SnapshotNotSupported"),
    ("ResourceUnavailable.NotSupportSnapshot", 16026, "IncorrectInstanceStatus.SnapshotNotSupported"),
    ("UnsupportedOperation.ShareDiskNotSupportSnap", 16026, "IncorrectInstanceStatus.SnapshotNotSupported"),
    ("InvalidDisk.SnapshotCreating", 16027, "IncorrectInstanceStatus.CbsCreatingSnapshot"),
    ("ResourceUnavailable.SnapshotCreating", 16027, "IncorrectInstanceStatus.CbsCreatingSnapshot"),
    ("ResourceUnavailable.TooManyCreatingSnapshot", 16027, "IncorrectInstanceStatus.CbsCreatingSnapshot"),
    ("AuthFailure.UnauthorizedOperation", 4100, "AuthFailure"),
    ("InvalidAccount.InsufficientBalance", 6000, "InternalError"),
]


@pytest.mark.parametrize(("api_code", "seed_code", "desc"), TABLE_ROWS)
def test_each_cloud_error_maps_to_its_seed_code(
    emulator: Emulator, harness: RuntimeHarness, api_code: str, seed_code: int, desc: str
) -> None:
    emulator.add_fault(Fault(action="CreateSnapshot", code=api_code, disk_id="disk-g73hhs4o"))

    response, redelivery = answer(main_handler, timer_event({"storageId": "disk-g73hhs4o"}))

    [result] = response["results"]
    assert (result["code"], result["codeDesc"], result["snapshotId"]) == (seed_code, desc, None)
    # A code that may pass (busy, creating, internal) makes SCF retry the run; a final one does not.
    assert redelivery == (seed_code in TRANSIENT_CODES)
    assert api_code in result["message"]
    request_id = creates(emulator)[-1]["request_id"]
    assert request_id and request_id in result["message"] and result["requestId"] == request_id
    assert owned_snapshots(emulator, "disk-g73hhs4o") == []


def test_invalid_input_never_reaches_the_api(emulator: Emulator, harness: RuntimeHarness) -> None:
    bad = {"disks": ["disk-SHOUTING", "disk-short", {"storageId": "disk-aaaaaaa1", "snapshotName": "n" * 61}]}
    response = main_handler(timer_event(bad), scf_context())
    assert [r["code"] for r in response["results"]] == [9003, 9003, 9003]
    assert emulator.calls() == []


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "Timer",
        {"Type": "Timer", "TriggerName": "t", "Time": "x", "Message": "{not json"},
        {"Type": "Timer", "TriggerName": "t", "Time": "x", "Message": 42},
        {"Type": "Cos", "Records": []},
        {"Type": "Timer", "TriggerName": "t", "Time": "x", "Message": ""},
    ],
)
def test_malformed_timer_events_are_reported_not_raised(
    emulator: Emulator, harness: RuntimeHarness, event: Any
) -> None:
    response = main_handler(event, scf_context())
    assert response["results"] and all(r["code"] == 9003 for r in response["results"])
    assert emulator.calls() == []
    assert harness.log_records(), "the problem must be logged too"


def test_empty_message_uses_the_configured_default_request(emulator: Emulator) -> None:
    h = RuntimeHarness(emulator_settings(emulator, default_request={"disks": ["disk-aaaaaaa1"]}))
    response = main_handler(timer_event(""), scf_context())
    assert [(r["storageId"], r["code"]) for r in response["results"]] == [("disk-aaaaaaa1", 0)]
    assert h.log_records()


def test_unknown_disk_is_9003_without_a_create_call(emulator: Emulator, harness: RuntimeHarness) -> None:
    [result] = main_handler(timer_event({"storageId": "disk-zzzzzzzz"}), scf_context())["results"]
    assert result["code"] == 9003 and "InvalidDiskId.NotFound" in result["message"]
    assert creates(emulator) == []


def test_transient_internal_error_is_retried_to_success(emulator: Emulator, harness: RuntimeHarness) -> None:
    emulator.add_fault(Fault(action="CreateSnapshot", code="InternalError", times=2))
    [result] = main_handler(timer_event({"storageId": "disk-g73hhs4o"}), scf_context())["results"]
    assert result["code"] == 0
    assert len(owned_snapshots(emulator, "disk-g73hhs4o")) == 1
    assert [c["error"] for c in creates(emulator)] == ["InternalError", "InternalError", None]


def test_busy_disk_gets_a_few_attempts_then_a_16005(emulator: Emulator, harness: RuntimeHarness) -> None:
    emulator.add_fault(Fault(action="CreateSnapshot", code="InvalidDisk.Busy", disk_id="disk-g73hhs4o"))
    emulator.add_fault(
        Fault(action="CreateSnapshot", code="InvalidDisk.Busy", disk_id="disk-aaaaaaa1", times=1)
    )
    response, redelivery = answer(main_handler, timer_event({"disks": ["disk-g73hhs4o", "disk-aaaaaaa1"]}))
    by_disk = {r["storageId"]: r for r in response["results"]}
    assert redelivery, "a disk still busy after its attempts is retried by the platform"
    assert by_disk["disk-g73hhs4o"]["code"] == 16005
    assert "gave up after 4 attempts" in by_disk["disk-g73hhs4o"]["message"]
    assert by_disk["disk-aaaaaaa1"]["code"] == 0
    assert len([c for c in creates(emulator) if c["params"]["DiskId"] == "disk-g73hhs4o"]) == 4


def test_reply_lost_after_commit_ends_with_one_snapshot_and_success(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    emulator.add_fault(Fault(action="CreateSnapshot", kind="lost_reply", times=1))
    [result] = main_handler(timer_event({"storageId": "disk-g73hhs4o"}), scf_context())["results"]
    [snap] = owned_snapshots(emulator, "disk-g73hhs4o")
    assert result["code"] == 0 and result["snapshotId"] == snap["SnapshotId"]
    # The lost reply was resolved by finding the snapshot by its key, not by a second create:
    # one look before creating, one after the reply was lost.
    assert len(creates(emulator)) == 1
    assert len(emulator.calls(action="DescribeSnapshots")) == 2


def test_throttling_is_retried_not_reported(emulator: Emulator, harness: RuntimeHarness) -> None:
    emulator.add_fault(Fault(action="CreateSnapshot", code="RequestLimitExceeded", times=3))
    [result] = main_handler(timer_event({"storageId": "disk-g73hhs4o"}), scf_context())["results"]
    assert result["code"] == 0


def test_out_of_time_disks_are_reported_not_attempted(emulator: Emulator) -> None:
    RuntimeHarness(emulator_settings(emulator, rate_limit=2.0, concurrency=1, safety_margin_ms=0))
    disks = ["disk-g73hhs4o", "disk-lzrg2pwi", "disk-aaaaaaa1", "disk-aaaaaaa2"]
    response, redelivery = answer(main_handler, timer_event({"disks": disks}), scf_context(timeout_ms=1200))
    codes = {r["storageId"]: r["code"] for r in response["results"]}
    assert redelivery, "unattempted disks make the timer raise, so SCF retries the run"
    assert set(codes) == set(disks), "every disk ends with a result"
    assert response["notAttempted"] >= 1
    assert 6000 in codes.values() and 0 in codes.values()
    attempted = {c["params"]["DiskId"] for c in creates(emulator)}
    assert all(codes[d] == 6000 for d in disks if d not in attempted)


def test_wrong_credentials_are_4100_and_the_secret_never_leaks(emulator: Emulator) -> None:
    secret = "not-the-right-secret-key-12345"
    h = RuntimeHarness(emulator_settings(emulator, secret_key=secret))
    response = main_handler(timer_event({"storageId": "disk-g73hhs4o"}), scf_context())
    [result] = response["results"]
    assert result["code"] == 4100 and "AuthFailure" in result["message"]
    assert secret not in json.dumps(response)
    assert secret not in h.stream.getvalue()


def test_one_log_record_per_disk_result(emulator: Emulator, harness: RuntimeHarness) -> None:
    main_handler(timer_event({"disks": ["disk-g73hhs4o", "disk-lzrg2pwi", "disk-bad"]}), scf_context())
    records = [r for r in harness.log_records() if "result" in r]
    assert len(records) == 3
    assert {r["result"]["storageId"] for r in records} == {"disk-g73hhs4o", "disk-lzrg2pwi", "disk-bad"}
    assert all(r["service"] == "cbsnap" and r["trigger"] == "timer" for r in records)
    assert {r["level"] for r in records} == {"INFO", "WARNING"}


def test_many_disks_are_paced_under_the_rate_limit(emulator: Emulator, harness: RuntimeHarness) -> None:
    disks = emulator.add_disks(30)
    response = main_handler(timer_event({"disks": disks}), scf_context())
    assert response["succeeded"] == 30
    assert not [c for c in emulator.calls() if c["error"] == "RequestLimitExceeded"]


def test_a_deadline_gone_before_the_first_call_leaves_every_disk_not_attempted(emulator: Emulator) -> None:
    RuntimeHarness(emulator_settings(emulator, safety_margin_ms=0))
    response, redelivery = answer(
        main_handler, timer_event({"disks": ["disk-aaaaaaa1", "disk-aaaaaaa2"]}), scf_context(timeout_ms=0)
    )
    assert redelivery and response["notAttempted"] == 2
    assert [r["code"] for r in response["results"]] == [6000, 6000]
    assert emulator.calls() == []
