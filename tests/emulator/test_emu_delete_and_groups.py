"""DeleteSnapshots (all-or-nothing) and snapshot groups."""

from __future__ import annotations

from typing import Any

import pytest

from cbsnap_emulator import Emulator


@pytest.fixture
def disk(emulator: Emulator) -> str:
    emulator.add_disk("disk-del00001")
    return "disk-del00001"


def test_delete_normal_snapshots(emulator: Emulator, sdk: Any, disk: str) -> None:
    a = emulator.add_snapshot(disk)
    b = emulator.add_snapshot(disk)
    assert sdk.cbs("DeleteSnapshots", SnapshotIds=[a, b, a])["RequestId"]
    assert emulator.snapshots() == []
    assert sdk.cbs("DescribeDisks", DiskIds=[disk])["DiskSet"][0]["SnapshotCount"] == 0


@pytest.mark.parametrize(
    ("blocker", "code"),
    [
        ({"snapshot_id": "snap-nothere1"}, "InvalidSnapshotId.NotFound"),
        ({"state": "CREATING"}, "ResourceUnavailable.SnapshotCreating"),
        ({"state": "ROLLBACKING"}, "InvalidSnapshot.NotSupported"),
        ({"images": ["img-abcdefgh"]}, "UnsupportedOperation.SnapshotHasBindedImage"),
    ],
)
def test_delete_is_all_or_nothing(
    emulator: Emulator, sdk: Any, disk: str, blocker: dict[str, Any], code: str
) -> None:
    ok = emulator.add_snapshot(disk)
    if blocker.get("snapshot_id") == "snap-nothere1":
        bad = "snap-nothere1"
    else:
        bad = emulator.add_snapshot(disk, **blocker)
    err = sdk.cbs_error("DeleteSnapshots", SnapshotIds=[ok, bad])
    assert err.code == code and bad in err.message
    assert ok in {s["SnapshotId"] for s in emulator.snapshots()}


def test_delete_bind_images_forces(emulator: Emulator, sdk: Any, disk: str) -> None:
    snap = emulator.add_snapshot(disk, images=[{"ImageId": "img-abcdefgh", "ImageName": "golden"}])
    described = sdk.snapshot(snap)
    assert described["ImageCount"] == 1 and described["Images"][0]["ImageId"] == "img-abcdefgh"
    sdk.cbs("DeleteSnapshots", SnapshotIds=[snap], DeleteBindImages=True)
    assert emulator.snapshots() == []


def test_delete_missing_ids(sdk: Any) -> None:
    assert sdk.cbs_error("DeleteSnapshots").code == "MissingParameter"
    assert sdk.cbs_error("DeleteSnapshots", SnapshotIds=[]).code == "MissingParameter"


def test_created_snapshot_deletable_once_normal(emulator: Emulator, sdk: Any, disk: str) -> None:
    snap = sdk.cbs("CreateSnapshot", DiskId=disk)["SnapshotId"]
    assert sdk.cbs_error("DeleteSnapshots", SnapshotIds=[snap]).code == "ResourceUnavailable.SnapshotCreating"
    emulator.advance(3)
    sdk.cbs("DeleteSnapshots", SnapshotIds=[snap])
    assert sdk.cbs("DescribeSnapshots", SnapshotIds=[snap])["TotalCount"] == 0


# -- snapshot groups --------------------------------------------------------------------------------
@pytest.fixture
def instance(emulator: Emulator) -> list[str]:
    emulator.add_disk("disk-grp00001", instance_id="ins-grp00001", disk_usage="SYSTEM_DISK")
    emulator.add_disk("disk-grp00002", instance_id="ins-grp00001")
    emulator.add_disk("disk-grp00003", instance_id="ins-other001")
    emulator.add_disk("disk-grp00004", disk_state="UNATTACHED")
    return ["disk-grp00001", "disk-grp00002"]


def test_snapshot_group_lifecycle(emulator: Emulator, sdk: Any, instance: list[str]) -> None:
    group_id = sdk.cbs(
        "CreateSnapshotGroup",
        DiskIds=instance,
        SnapshotGroupName="nightly",
        Tags=[{"Key": "k", "Value": "v"}],
    )["SnapshotGroupId"]
    assert group_id.startswith("csnap-") and len(group_id) == 14
    members = sdk.cbs("DescribeSnapshots", Filters=[{"Name": "disk-id", "Values": instance}], Order="ASC")
    names = {s["DiskId"]: s["SnapshotName"] for s in members["SnapshotSet"]}
    assert names == {"disk-grp00001": "nightly_0", "disk-grp00002": "nightly_1"}
    assert all(s["Tags"] == [{"Key": "k", "Value": "v"}] for s in members["SnapshotSet"])
    [group] = sdk.cbs("DescribeSnapshotGroups")["SnapshotGroupSet"]
    assert group["SnapshotGroupId"] == group_id and group["SnapshotGroupState"] == "CREATING"
    assert group["ContainRootSnapshot"] is True and len(group["SnapshotIdSet"]) == 2
    assert group["SnapshotGroupName"] == "nightly" and group["CreateTime"].endswith("+00:00")
    emulator.advance(3)
    by_state = sdk.cbs(
        "DescribeSnapshotGroups", Filters=[{"Name": "snapshot-group-state", "Values": ["NORMAL"]}]
    )
    assert by_state["TotalCount"] == 1 and by_state["SnapshotGroupSet"][0]["Percent"] == 100
    member = group["SnapshotIdSet"][0]
    for name, values in (
        ("snapshot-group-id", [group_id]),
        ("snapshot-id", [member]),
        ("snapshot-group-name", ["nightly"]),
    ):
        assert (
            sdk.cbs("DescribeSnapshotGroups", Filters=[{"Name": name, "Values": values}])["TotalCount"] == 1
        )
    assert (
        sdk.cbs(
            "DescribeSnapshotGroups", Filters=[{"Name": "snapshot-group-id", "Values": ["csnap-nothere1"]}]
        )["TotalCount"]
        == 0
    )


@pytest.mark.parametrize(
    ("disk_ids", "code"),
    [
        ([], "MissingParameter"),
        (["disk-grp00001", "disk-grp00003"], "UnsupportedOperation.SnapshotGroupDiskAttachMultiInstance"),
        (["disk-grp00004"], "UnsupportedOperation.SnapshotGroupDiskAttachMultiInstance"),
        (["disk-grp00001", "disk-nothere1"], "InvalidDiskId.NotFound"),
        (["disk-grp00001", "disk-grp00001"], "InvalidParameterValue"),
        (["bad"], "InvalidParameterValue"),
    ],
)
def test_snapshot_group_errors(
    emulator: Emulator, sdk: Any, instance: list[str], disk_ids: list[str], code: str
) -> None:
    assert sdk.cbs_error("CreateSnapshotGroup", DiskIds=disk_ids, SnapshotGroupName="g").code == code
    assert emulator.snapshots() == []


def test_snapshot_group_applies_per_disk_checks_atomically(
    emulator: Emulator, sdk: Any, instance: list[str]
) -> None:
    sdk.cbs("CreateSnapshot", DiskId="disk-grp00002")
    err = sdk.cbs_error("CreateSnapshotGroup", DiskIds=instance, SnapshotGroupName="g")
    assert err.code == "InvalidDisk.SnapshotCreating"
    assert len(emulator.snapshots()) == 1  # nothing was created for disk-grp00001
    assert (
        sdk.cbs_error("DescribeSnapshotGroups", Filters=[{"Name": "zone", "Values": ["x"]}]).code
        == "InvalidFilter"
    )


def test_default_seed_group_on_shared_instance(make_sdk: Any) -> None:
    from cbsnap_emulator import load_seed

    with Emulator(load_seed(None)) as emu:
        client = make_sdk(emu)
        group = client.cbs(
            "CreateSnapshotGroup", DiskIds=["disk-g73hhs4o", "disk-k2v8p4tq"], SnapshotGroupName="web"
        )
        assert group["SnapshotGroupId"] in {g["SnapshotGroupId"] for g in emu.snapshot_groups()}
