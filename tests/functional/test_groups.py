"""Consistent groups: CreateSnapshotGroup per instance, the group ID in every member's result."""

from __future__ import annotations

from typing import Any

from cbsnap_emulator import Emulator, Fault
from tests.conftest import RuntimeHarness, run_timer


def run(document: dict[str, Any], time_: str = "2026-11-28T02:00:00Z") -> dict[str, Any]:
    return run_timer(document, name="g", time=time_)


def test_disks_of_one_instance_share_one_group(emulator: Emulator, harness: RuntimeHarness) -> None:
    # demo seed: ins-3xa9k2lm holds disk-g73hhs4o and disk-k2v8p4tq; ins-5pq8r3vn holds disk-w9f4h1sz alone
    response = run(
        {
            "disks": ["disk-g73hhs4o", "disk-k2v8p4tq", "disk-w9f4h1sz"],
            "consistent": True,
            "snapshotName": "pre",
        }
    )
    results = {r["storageId"]: r for r in response["results"]}
    assert all(r["code"] == 0 and r["snapshotId"] for r in results.values())
    assert results["disk-g73hhs4o"]["groupId"] == results["disk-k2v8p4tq"]["groupId"]
    assert results["disk-w9f4h1sz"]["groupId"] != results["disk-g73hhs4o"]["groupId"], (
        "a lone disk: group of one"
    )
    groups = emulator.calls(action="CreateSnapshotGroup")
    assert sorted(len(c["params"]["DiskIds"]) for c in groups) == [1, 2]
    assert emulator.calls(action="CreateSnapshot") == [], "never quietly one by one"
    assert {g["SnapshotGroupId"] for g in emulator.snapshot_groups()} == {
        r["groupId"] for r in results.values()
    }


def test_unattached_disk_is_reported_not_snapshotted_alone(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    response = run({"disks": ["disk-u2j6t8ye", "disk-q7m3x9ab"], "consistent": True})
    results = {r["storageId"]: r for r in response["results"]}
    assert results["disk-u2j6t8ye"]["code"] == 16007 and "not attached" in results["disk-u2j6t8ye"]["message"]
    assert results["disk-q7m3x9ab"]["code"] == 0
    assert emulator.calls(action="CreateSnapshot") == []


def test_consistent_with_expiry_is_9003(emulator: Emulator, harness: RuntimeHarness) -> None:
    response = run({"disks": ["disk-g73hhs4o"], "consistent": True, "retainDays": 3})
    assert response["results"][0]["code"] == 9003 and "Deadline" in response["results"][0]["message"]
    assert emulator.calls() == []


def test_a_redelivered_group_request_adopts_the_group(emulator: Emulator, harness: RuntimeHarness) -> None:
    first = run({"disks": ["disk-g73hhs4o", "disk-k2v8p4tq"], "consistent": True})
    emulator.advance(5)
    again = run({"disks": ["disk-g73hhs4o", "disk-k2v8p4tq"], "consistent": True})
    assert [(r["snapshotId"], r["groupId"]) for r in again["results"]] == [
        (r["snapshotId"], r["groupId"]) for r in first["results"]
    ]
    assert len(emulator.calls(action="CreateSnapshotGroup")) == 1


def test_lost_group_reply_is_adopted_not_duplicated(emulator: Emulator, harness: RuntimeHarness) -> None:
    emulator.add_fault(Fault(action="CreateSnapshotGroup", kind="lost_reply", times=1))
    response = run({"disks": ["disk-g73hhs4o", "disk-k2v8p4tq"], "consistent": True})
    assert all(r["code"] == 0 and r["groupId"] for r in response["results"])
    assert len(emulator.snapshot_groups()) == 1
