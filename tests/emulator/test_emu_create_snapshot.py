"""CreateSnapshot: every precondition in its documented order, progress, Deadline, quota, tags."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from cbsnap_emulator import Emulator

BEIJING = timezone(timedelta(hours=8))


def _iso(emu: Emulator, seconds_from_now: float) -> str:
    return datetime.fromtimestamp(emu.now + seconds_from_now, tz=timezone.utc).isoformat(timespec="seconds")


def test_snapshot_progresses_to_normal(emulator: Emulator, sdk: Any) -> None:
    # Given a disk
    emulator.add_disk("disk-prog0001", size=80)
    # When a snapshot is created
    snap_id = sdk.cbs("CreateSnapshot", DiskId="disk-prog0001", SnapshotName="nightly")["SnapshotId"]
    # Then it starts CREATING and rises linearly with the state clock to NORMAL/100
    assert snap_id.startswith("snap-") and len(snap_id) == 13
    first = sdk.snapshot(snap_id)
    assert first["SnapshotState"] == "CREATING" and first["Percent"] < 10
    emulator.advance(1.5)
    mid = sdk.snapshot(snap_id)
    assert mid["SnapshotState"] == "CREATING" and 50 <= mid["Percent"] <= 60
    emulator.advance(1.6)
    done = sdk.snapshot(snap_id)
    assert (done["SnapshotState"], done["Percent"]) == ("NORMAL", 100)
    assert done["SnapshotName"] == "nightly" and done["DiskId"] == "disk-prog0001" and done["DiskSize"] == 80
    assert done["IsPermanent"] is True and done["DeadlineTime"] == ""
    assert done["Placement"]["Zone"] == "ap-guangzhou-3"
    assert len(done["CreateTime"]) == 19 and done["CreateTime"][10] == " "
    disk = sdk.cbs("DescribeDisks", DiskIds=["disk-prog0001"])["DiskSet"][0]
    assert (disk["SnapshotCount"], disk["SnapshotSize"]) == (1, 80 * 1024)


def test_zero_creation_seconds_is_immediately_normal(make_sdk: Any) -> None:
    with Emulator(creation_seconds=0) as emu:
        emu.add_disk("disk-inst0001")
        client = make_sdk(emu)
        snap = client.cbs("CreateSnapshot", DiskId="disk-inst0001")["SnapshotId"]
        assert client.snapshot(snap)["SnapshotState"] == "NORMAL"
        assert client.snapshot(snap)["SnapshotName"] == "Unnamed"


def test_tags_deadline_and_usage_are_stored(emulator: Emulator, sdk: Any) -> None:
    emulator.add_disk("disk-tags0001", disk_usage="SYSTEM_DISK")
    deadline = _iso(emulator, 7 * 86_400)
    snap = sdk.cbs(
        "CreateSnapshot",
        DiskId="disk-tags0001",
        Tags=[{"Key": "cbsnap", "Value": "managed"}, {"Key": "empty", "Value": ""}],
        Deadline=deadline,
        DiskUsage="DATA_DISK",
        DiskBackupId="dbp-ignored1",
    )["SnapshotId"]
    got = sdk.snapshot(snap)
    assert got["Tags"] == [{"Key": "cbsnap", "Value": "managed"}, {"Key": "empty", "Value": ""}]
    assert got["IsPermanent"] is False
    # DeadlineTime is written in Beijing time (UTC+8), like CreateTime
    expected = datetime.fromisoformat(deadline).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    assert got["DeadlineTime"] == expected
    assert got["DiskUsage"] == "DATA_DISK"


def test_deadline_expiry_removes_the_snapshot(emulator: Emulator, sdk: Any) -> None:
    emulator.add_disk("disk-expi0001")
    snap = sdk.cbs("CreateSnapshot", DiskId="disk-expi0001", Deadline=_iso(emulator, 2 * 86_400))[
        "SnapshotId"
    ]
    keep = emulator.add_snapshot("disk-expi0001", name="permanent")
    emulator.advance(2 * 86_400 - 10)
    assert sdk.cbs("DescribeSnapshots", SnapshotIds=[snap])["TotalCount"] == 1
    emulator.advance(20)
    assert sdk.cbs("DescribeSnapshots", SnapshotIds=[snap, keep])["SnapshotSet"][0]["SnapshotId"] == keep
    assert sdk.cbs("DescribeDisks", DiskIds=["disk-expi0001"])["DiskSet"][0]["SnapshotCount"] == 1


@pytest.mark.parametrize(
    "deadline",
    [
        "tomorrow",
        "2030-01-01 00:00:00",  # not ISO-8601 with T
        "2030-01-01T00:00:00",  # naive: the API wants UTC
        "2020-01-01T00:00:00+00:00",  # in the past
    ],
)
def test_bad_deadline(emulator: Emulator, sdk: Any, deadline: str) -> None:
    emulator.add_disk("disk-dead0001")
    assert (
        sdk.cbs_error("CreateSnapshot", DiskId="disk-dead0001", Deadline=deadline).code
        == "InvalidParameterValue"
    )


def test_deadline_must_be_at_least_one_day_ahead(emulator: Emulator, sdk: Any) -> None:
    emulator.add_disk("disk-dead0002")
    short = _iso(emulator, 86_400 - 3600)
    assert (
        sdk.cbs_error("CreateSnapshot", DiskId="disk-dead0002", Deadline=short).code
        == "InvalidParameterValue"
    )
    # exactly one day (second precision, as callers send it) is accepted, Z suffix too
    exact = datetime.fromtimestamp(int(emulator.now) + 86_400, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sdk.cbs("CreateSnapshot", DiskId="disk-dead0002", Deadline=exact)["SnapshotId"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "MissingParameter"),
        ({"SnapshotName": "x"}, "MissingParameter"),
        ({"DiskId": "disk-123"}, "InvalidParameterValue"),
        ({"DiskId": "vol-12345678"}, "InvalidParameterValue"),
        ({"DiskId": "disk-ok000001", "SnapshotName": "n" * 61}, "InvalidParameterValue"),
        ({"DiskId": "disk-ok000001", "DiskUsage": "ROOT"}, "InvalidParameterValue"),
        ({"DiskId": "disk-ok000001", "Tags": [{"Key": "", "Value": "v"}]}, "InvalidParameterValue"),
        ({"DiskId": "disk-ok000001", "Tags": [{"Key": "k" * 128, "Value": "v"}]}, "InvalidParameterValue"),
        ({"DiskId": "disk-ok000001", "Tags": [{"Key": "k", "Value": "v" * 256}]}, "InvalidParameterValue"),
        ({"DiskId": "disk-ok000001", "Tags": [{"Key": "k"}]}, "InvalidParameterValue"),
        ({"DiskId": "disk-ok000001", "Tags": [{"Value": "v"}]}, "InvalidParameterValue"),
        (
            {"DiskId": "disk-ok000001", "Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(51)]},
            "InvalidParameterValue",
        ),
        (
            {"DiskId": "disk-ok000001", "Tags": [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]},
            "InvalidParameterValue",
        ),
        ({"DiskId": "disk-nothere1"}, "InvalidDiskId.NotFound"),
    ],
)
def test_parameter_errors(emulator: Emulator, sdk: Any, params: dict[str, Any], code: str) -> None:
    emulator.add_disk("disk-ok000001")
    assert sdk.cbs_error("CreateSnapshot", **params).code == code
    assert emulator.snapshots() == []


def test_limits_that_are_allowed(emulator: Emulator, sdk: Any) -> None:
    emulator.add_disk("disk-ok000002")
    tags = [{"Key": f"k{i:03d}" + "x" * 123, "Value": "v" * 255} for i in range(50)]
    assert sdk.cbs("CreateSnapshot", DiskId="disk-ok000002", SnapshotName="n" * 60, Tags=tags)["SnapshotId"]


@pytest.mark.parametrize(
    ("disk", "code"),
    [
        ({"snapshot_ability": False}, "InvalidDisk.NotSupportSnapshot"),
        ({"shareable": True}, "UnsupportedOperation.ShareDiskNotSupportSnap"),
        ({"disk_state": "ROLLBACKING"}, "ResourceInUse.DiskRollbacking"),
        ({"disk_state": "EXPANDING"}, "InvalidDisk.Busy"),
        ({"disk_state": "ATTACHING"}, "InvalidDisk.Busy"),
        ({"disk_state": "DETACHING"}, "InvalidDisk.Busy"),
        ({"disk_state": "DUMPING"}, "InvalidDisk.Busy"),
        ({"disk_state": "TORECYCLE"}, "InvalidDisk.NotSupported"),
        # the order matters: ability is checked before sharing, sharing before state
        (
            {"snapshot_ability": False, "shareable": True, "disk_state": "TORECYCLE"},
            "InvalidDisk.NotSupportSnapshot",
        ),
        ({"shareable": True, "disk_state": "ROLLBACKING"}, "UnsupportedOperation.ShareDiskNotSupportSnap"),
    ],
)
def test_disk_preconditions(emulator: Emulator, sdk: Any, disk: dict[str, Any], code: str) -> None:
    emulator.add_disk("disk-cond0001", **disk)
    assert sdk.cbs_error("CreateSnapshot", DiskId="disk-cond0001").code == code
    assert emulator.snapshots() == []


def test_unattached_disks_can_be_snapshotted(emulator: Emulator, sdk: Any) -> None:
    emulator.add_disk("disk-unat0001", disk_state="UNATTACHED")
    assert sdk.cbs("CreateSnapshot", DiskId="disk-unat0001")["SnapshotId"]


def test_one_creating_snapshot_per_disk(emulator: Emulator, sdk: Any) -> None:
    emulator.add_disk("disk-busy0001")
    emulator.add_disk("disk-busy0002")
    sdk.cbs("CreateSnapshot", DiskId="disk-busy0001")
    err = sdk.cbs_error("CreateSnapshot", DiskId="disk-busy0001")
    assert err.code == "InvalidDisk.SnapshotCreating"
    assert sdk.cbs("CreateSnapshot", DiskId="disk-busy0002")["SnapshotId"]  # other disks are unaffected
    emulator.advance(3)
    assert sdk.cbs("CreateSnapshot", DiskId="disk-busy0001")["SnapshotId"]


def test_quota_per_disk(make_sdk: Any) -> None:
    with Emulator(quota=3, creation_seconds=0) as emu:
        emu.add_disk("disk-quot0001")
        emu.add_disk("disk-quot0002")
        client = make_sdk(emu)
        made = [client.cbs("CreateSnapshot", DiskId="disk-quot0001")["SnapshotId"] for _ in range(3)]
        assert client.cbs_error("CreateSnapshot", DiskId="disk-quot0001").code == "InsufficientSnapshotQuota"
        assert client.cbs("CreateSnapshot", DiskId="disk-quot0002")["SnapshotId"]
        client.cbs("DeleteSnapshots", SnapshotIds=made[:1])
        assert client.cbs("CreateSnapshot", DiskId="disk-quot0001")["SnapshotId"]


def test_snapshot_creating_is_checked_before_quota(make_sdk: Any) -> None:
    with Emulator(quota=1) as emu:
        emu.add_disk("disk-quot0003")
        client = make_sdk(emu)
        client.cbs("CreateSnapshot", DiskId="disk-quot0003")
        assert (
            client.cbs_error("CreateSnapshot", DiskId="disk-quot0003").code == "InvalidDisk.SnapshotCreating"
        )
        emu.advance(5)
        assert client.cbs_error("CreateSnapshot", DiskId="disk-quot0003").code == "InsufficientSnapshotQuota"


def test_default_quota_is_64(emulator: Emulator, sdk: Any) -> None:
    emulator.add_disk("disk-quot0064")
    for _ in range(63):
        emulator.add_snapshot("disk-quot0064")
    assert sdk.cbs("CreateSnapshot", DiskId="disk-quot0064")["SnapshotId"]
    emulator.advance(5)
    assert sdk.cbs_error("CreateSnapshot", DiskId="disk-quot0064").code == "InsufficientSnapshotQuota"


def test_state_clock_changes_create_time(emulator: Emulator, sdk: Any) -> None:
    emulator.add_disk("disk-time0001")
    emulator.advance(timedelta(days=400).total_seconds())
    snap = sdk.cbs("CreateSnapshot", DiskId="disk-time0001")["SnapshotId"]
    created = datetime.strptime(sdk.snapshot(snap)["CreateTime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    assert abs(created.timestamp() - emulator.now) < 5
