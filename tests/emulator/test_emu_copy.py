"""CopySnapshotCrossRegions, ModifySnapshotAttribute and the DescribeSnapshots filters cbsnap uses,
through the real SDK."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from cbsnap_emulator import Emulator, Fault

BEIJING = timezone(timedelta(hours=8))
SOURCE_DISK = "disk-copy0001"


@pytest.fixture
def source(emulator: Emulator) -> str:
    """A NORMAL 80 GiB snapshot in ap-guangzhou, tagged, of a data disk."""
    emulator.add_disk(SOURCE_DISK, size=80)
    return emulator.add_snapshot(SOURCE_DISK, name="nightly", tags={"cbsnap:owner": "cbsnap"})


def _by_name(client: Any, name: str) -> list[dict[str, Any]]:
    found = client.cbs("DescribeSnapshots", Filters=[{"Name": "snapshot-name", "Values": [name]}])
    return list(found["SnapshotSet"])


def _iso(emu: Emulator, seconds_from_now: float) -> str:
    return datetime.fromtimestamp(emu.now + seconds_from_now, tz=timezone.utc).isoformat(timespec="seconds")


# -- CopySnapshotCrossRegions ----------------------------------------------------------------------
def test_copy_runs_through_its_states_in_the_destination(
    emulator: Emulator, sdk: Any, make_sdk: Any, source: str
) -> None:
    shanghai, beijing = make_sdk(region="ap-shanghai"), make_sdk(region="ap-beijing")
    # When a NORMAL snapshot is copied to two regions
    reply = sdk.cbs(
        "CopySnapshotCrossRegions", SnapshotId=source, DestinationRegions=["ap-shanghai", "ap-beijing"]
    )
    # Then each region gets its own result, in request order
    results = reply["SnapshotCopyResultSet"]
    assert [(r["DestinationRegion"], r["Code"], r["Message"]) for r in results] == [
        ("ap-shanghai", "Success", ""),
        ("ap-beijing", "Success", ""),
    ]
    copy_id = results[0]["SnapshotId"]
    assert copy_id.startswith("snap-") and copy_id != results[1]["SnapshotId"]
    # The copy lives in the destination, looks like a recorded real copy, and starts COPYING_FROM_REMOTE
    [copy] = _by_name(shanghai, f"Copied {source} from ap-guangzhou")
    assert copy["SnapshotId"] == copy_id and copy["SnapshotState"] == "COPYING_FROM_REMOTE"
    assert (copy["CopyFromRemote"], copy["DiskId"], copy["DiskSize"]) == (True, "", 80)
    assert copy["Tags"] == [] and copy["IsPermanent"] is True and copy["DeadlineTime"] == ""
    assert copy["Placement"]["Zone"] == "ap-shanghai-1"
    assert sdk.cbs("DescribeSnapshots", SnapshotIds=[copy_id])["TotalCount"] == 0  # not in the source region
    assert sdk.snapshot(source)["CopyingToRegions"] == ["ap-shanghai", "ap-beijing"]
    # Half-way (3 of 6 s) it is being checked; then NORMAL, and the source is no longer copying
    emulator.advance(3)
    assert shanghai.snapshot(copy_id)["SnapshotState"] == "CHECKING_COPIED"
    assert beijing.snapshot(results[1]["SnapshotId"])["SnapshotState"] == "CHECKING_COPIED"
    emulator.advance(3)
    done = shanghai.snapshot(copy_id)
    assert (done["SnapshotState"], done["Percent"]) == ("NORMAL", 100)
    assert sdk.snapshot(source)["CopyingToRegions"] == []
    # The source disk's count is untouched: the copy belongs to no disk
    assert sdk.cbs("DescribeDisks", DiskIds=[SOURCE_DISK])["DiskSet"][0]["SnapshotCount"] == 1


def test_copy_takes_a_name_and_copy_seconds_is_configurable(make_sdk: Any) -> None:
    with Emulator(copy_seconds=0) as emu:
        emu.add_disk(SOURCE_DISK)
        snap = emu.add_snapshot(SOURCE_DISK)
        client = make_sdk(emu)
        reply = client.cbs(
            "CopySnapshotCrossRegions",
            SnapshotId=snap,
            DestinationRegions=["ap-singapore"],
            SnapshotName="dr-copy",
        )
        [copy] = _by_name(make_sdk(emu, region="ap-singapore"), "dr-copy")
        assert copy["SnapshotId"] == reply["SnapshotCopyResultSet"][0]["SnapshotId"]
        assert copy["SnapshotState"] == "NORMAL"


def test_copy_conflicts_while_a_copy_to_that_region_runs(emulator: Emulator, sdk: Any, source: str) -> None:
    sdk.cbs("CopySnapshotCrossRegions", SnapshotId=source, DestinationRegions=["ap-shanghai"])
    err = sdk.cbs_error("CopySnapshotCrossRegions", SnapshotId=source, DestinationRegions=["ap-shanghai"])
    assert err.code == "ResourceInUse.CopySnapshotConflict"
    # all-or-nothing: a request naming a busy region starts no copy at all
    err = sdk.cbs_error(
        "CopySnapshotCrossRegions", SnapshotId=source, DestinationRegions=["ap-beijing", "ap-shanghai"]
    )
    assert err.code == "ResourceInUse.CopySnapshotConflict"
    assert len(emulator.snapshots(region="ap-beijing")) == 0
    # another region is free, and once the copy is done the region is free again
    sdk.cbs("CopySnapshotCrossRegions", SnapshotId=source, DestinationRegions=["ap-beijing"])
    emulator.advance(6)
    sdk.cbs("CopySnapshotCrossRegions", SnapshotId=source, DestinationRegions=["ap-shanghai"])
    assert len(emulator.snapshots(region="ap-shanghai")) == 2


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"SnapshotId": "snap-copy0001"}, "MissingParameter"),
        ({"DestinationRegions": ["ap-shanghai"]}, "MissingParameter"),
        ({"SnapshotId": "snap-copy0001", "DestinationRegions": ["mars-north-1"]}, "InvalidParameterValue"),
        ({"SnapshotId": "snap-copy0001", "DestinationRegions": ["ap-guangzhou"]}, "InvalidParameterValue"),
        (
            {"SnapshotId": "snap-copy0001", "DestinationRegions": ["ap-shanghai", "ap-shanghai"]},
            "InvalidParameterValue",
        ),
        (
            {"SnapshotId": "snap-copy0001", "DestinationRegions": ["ap-shanghai"], "SnapshotName": "x" * 61},
            "InvalidParameterValue",
        ),
        (
            {"SnapshotId": "snap-nothere1", "DestinationRegions": ["ap-shanghai"]},
            "InvalidSnapshotId.NotFound",
        ),
        (
            {"SnapshotId": "snap-creating", "DestinationRegions": ["ap-shanghai"]},
            "InvalidSnapshot.NotSupported",
        ),
    ],
)
def test_copy_refusals(emulator: Emulator, raw: Any, params: dict[str, Any], code: str) -> None:
    emulator.add_disk(SOURCE_DISK)
    emulator.add_snapshot(SOURCE_DISK, snapshot_id="snap-copy0001")
    emulator.add_snapshot(SOURCE_DISK, snapshot_id="snap-creating", state="CREATING")
    assert raw.error(raw.post(emulator, "CopySnapshotCrossRegions", json.dumps(params))) == code
    assert emulator.snapshots(region="ap-shanghai") == []


def test_copy_takes_no_tags_and_no_client_token(emulator: Emulator, raw: Any, source: str) -> None:
    for extra in ({"Tags": [{"Key": "k", "Value": "v"}]}, {"ClientToken": "abc"}):
        body = {"SnapshotId": source, "DestinationRegions": ["ap-shanghai"], **extra}
        assert (
            raw.error(raw.post(emulator, "CopySnapshotCrossRegions", json.dumps(body))) == "UnknownParameter"
        )


def test_copy_of_another_regions_snapshot_is_not_found(sdk: Any, make_sdk: Any, source: str) -> None:
    shanghai = make_sdk(region="ap-shanghai")
    err = shanghai.cbs_error("CopySnapshotCrossRegions", SnapshotId=source, DestinationRegions=["ap-beijing"])
    assert err.code == "InvalidSnapshotId.NotFound"


def test_source_and_running_copy_cannot_be_deleted(
    emulator: Emulator, sdk: Any, make_sdk: Any, source: str
) -> None:
    shanghai = make_sdk(region="ap-shanghai")
    copy_id = sdk.cbs("CopySnapshotCrossRegions", SnapshotId=source, DestinationRegions=["ap-shanghai"])[
        "SnapshotCopyResultSet"
    ][0]["SnapshotId"]
    assert sdk.cbs_error("DeleteSnapshots", SnapshotIds=[source]).code == "InvalidSnapshot.NotSupported"
    assert shanghai.cbs_error("DeleteSnapshots", SnapshotIds=[copy_id]).code == "InvalidSnapshot.NotSupported"
    emulator.advance(6)
    sdk.cbs("DeleteSnapshots", SnapshotIds=[source])
    shanghai.cbs("DeleteSnapshots", SnapshotIds=[copy_id])
    assert emulator.snapshots() == []


def test_lost_reply_after_the_copy_was_made(emulator: Emulator, sdk: Any, make_sdk: Any, source: str) -> None:
    emulator.add_fault(Fault("CopySnapshotCrossRegions", kind="lost_reply", times=1))
    with pytest.raises(TencentCloudSDKException) as info:
        sdk.cbs(
            "CopySnapshotCrossRegions",
            SnapshotId=source,
            DestinationRegions=["ap-shanghai"],
            SnapshotName="dr",
        )
    assert info.value.code == "ClientNetworkError"
    # the copy exists and can be found by name; a blind retry is refused while it runs
    [copy] = _by_name(make_sdk(region="ap-shanghai"), "dr")
    assert copy["SnapshotState"] == "COPYING_FROM_REMOTE"
    err = sdk.cbs_error("CopySnapshotCrossRegions", SnapshotId=source, DestinationRegions=["ap-shanghai"])
    assert err.code == "ResourceInUse.CopySnapshotConflict"
    assert emulator.calls(action="CopySnapshotCrossRegions")[0]["fault"] == "lost_reply"


def test_error_fault_scoped_to_one_source_snapshot(emulator: Emulator, sdk: Any, source: str) -> None:
    other = emulator.add_snapshot(SOURCE_DISK, name="other")
    emulator.add_fault(Fault("CopySnapshotCrossRegions", code="ResourceBusy", snapshot_id=source))
    assert sdk.cbs_error(
        "CopySnapshotCrossRegions", SnapshotId=source, DestinationRegions=["ap-shanghai"]
    ).code == ("ResourceBusy")
    sdk.cbs("CopySnapshotCrossRegions", SnapshotId=other, DestinationRegions=["ap-shanghai"])
    assert [s["SnapshotName"] for s in emulator.snapshots(region="ap-shanghai")] == [
        f"Copied {other} from ap-guangzhou"
    ]


def test_copy_is_rate_limited_per_action(emulator: Emulator, sdk: Any, source: str) -> None:
    emulator.set_rate_limit(1, "CopySnapshotCrossRegions")
    sdk.cbs("CopySnapshotCrossRegions", SnapshotId=source, DestinationRegions=["ap-shanghai"])
    err = sdk.cbs_error("CopySnapshotCrossRegions", SnapshotId=source, DestinationRegions=["ap-beijing"])
    assert err.code == "RequestLimitExceeded"
    assert emulator.snapshots(region="ap-beijing") == []


# -- ModifySnapshotAttribute -----------------------------------------------------------------------
def test_modify_renames_and_sets_a_deadline_shown_in_beijing_time(
    emulator: Emulator, sdk: Any, source: str
) -> None:
    deadline = _iso(emulator, 3 * 86_400)
    reply = sdk.cbs("ModifySnapshotAttribute", SnapshotId=source, SnapshotName="kept", Deadline=deadline)
    assert reply == {"RequestId": emulator.calls(action="ModifySnapshotAttribute")[0]["request_id"]}
    got = sdk.snapshot(source)
    assert got["SnapshotName"] == "kept" and got["IsPermanent"] is False
    expected = datetime.fromisoformat(deadline).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    assert got["DeadlineTime"] == expected
    # and the Deadline is honoured: the snapshot disappears once it passes
    emulator.advance(3 * 86_400 + 1)
    assert sdk.cbs("DescribeSnapshots", SnapshotIds=[source])["TotalCount"] == 0


def test_modify_is_permanent_wins_over_deadline_and_cancels_expiry(
    emulator: Emulator, sdk: Any, source: str
) -> None:
    sdk.cbs("ModifySnapshotAttribute", SnapshotId=source, Deadline=_iso(emulator, 2 * 86_400))
    # "Deadline only takes effect when IsPermanent is False": with True it is ignored
    sdk.cbs(
        "ModifySnapshotAttribute", SnapshotId=source, IsPermanent=True, Deadline=_iso(emulator, 86_400 * 5)
    )
    got = sdk.snapshot(source)
    assert (got["IsPermanent"], got["DeadlineTime"]) == (True, "")
    emulator.advance(10 * 86_400)
    assert sdk.snapshot(source)["SnapshotId"] == source


def test_modify_moving_the_deadline_later_keeps_the_snapshot(
    emulator: Emulator, sdk: Any, source: str
) -> None:
    sdk.cbs("ModifySnapshotAttribute", SnapshotId=source, Deadline=_iso(emulator, 2 * 86_400))
    sdk.cbs(
        "ModifySnapshotAttribute", SnapshotId=source, IsPermanent=False, Deadline=_iso(emulator, 4 * 86_400)
    )
    emulator.advance(3 * 86_400)
    assert sdk.snapshot(source)["IsPermanent"] is False
    emulator.advance(86_400 + 1)
    assert sdk.cbs("DescribeSnapshots", SnapshotIds=[source])["TotalCount"] == 0


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "MissingParameter"),
        ({"SnapshotId": "snap-nothere1"}, "InvalidSnapshotId.NotFound"),
        ({"SnapshotId": "snap-mod00001", "SnapshotName": "x" * 61}, "InvalidParameterValue"),
        ({"SnapshotId": "snap-mod00001", "IsPermanent": False}, "InvalidParameterValue"),
        ({"SnapshotId": "snap-mod00001", "Deadline": "next tuesday"}, "InvalidParameterValue"),
        ({"SnapshotId": "snap-mod00001", "Deadline": "2099-01-01T00:00:00"}, "InvalidParameterValue"),
        ({"SnapshotId": "snap-mod00001", "Deadline": "2000-01-01T00:00:00+00:00"}, "InvalidParameterValue"),
        (
            {"SnapshotId": "snap-modcreat", "Deadline": "2099-01-01T00:00:00+00:00"},
            "InvalidSnapshot.NotSupported",
        ),
        (
            {"SnapshotId": "snap-modimage", "Deadline": "2099-01-01T00:00:00+00:00"},
            "UnsupportedOperation.SnapshotHasBindedImage",
        ),
        ({"SnapshotId": "snap-mod00001", "Tags": []}, "UnknownParameter"),
    ],
)
def test_modify_refusals_change_nothing(
    emulator: Emulator, raw: Any, params: dict[str, Any], code: str
) -> None:
    emulator.add_disk(SOURCE_DISK)
    emulator.add_snapshot(SOURCE_DISK, snapshot_id="snap-mod00001", name="before")
    emulator.add_snapshot(SOURCE_DISK, snapshot_id="snap-modcreat", state="CREATING")
    emulator.add_snapshot(SOURCE_DISK, snapshot_id="snap-modimage", images=["img-00000001"])
    assert raw.error(raw.post(emulator, "ModifySnapshotAttribute", json.dumps(params))) == code
    snaps = {s["SnapshotId"]: s for s in emulator.snapshots()}
    assert snaps["snap-mod00001"]["SnapshotName"] == "before"
    assert all(s["IsPermanent"] for s in snaps.values())


def test_modify_renames_a_creating_snapshot(emulator: Emulator, sdk: Any) -> None:
    emulator.add_disk(SOURCE_DISK)
    snap = sdk.cbs("CreateSnapshot", DiskId=SOURCE_DISK)["SnapshotId"]
    sdk.cbs("ModifySnapshotAttribute", SnapshotId=snap, SnapshotName="renamed")
    assert sdk.snapshot(snap)["SnapshotName"] == "renamed"


# -- DescribeSnapshots filters ---------------------------------------------------------------------
def test_describe_snapshots_filters_cbsnap_uses(emulator: Emulator, sdk: Any, source: str) -> None:
    made = sdk.cbs("CreateSnapshot", DiskId=SOURCE_DISK, SnapshotName="other")["SnapshotId"]

    def ids(*filters: dict[str, Any]) -> list[str]:
        found = sdk.cbs("DescribeSnapshots", Filters=list(filters), Order="ASC")["SnapshotSet"]
        return [s["SnapshotId"] for s in found]

    assert ids({"Name": "snapshot-name", "Values": ["nightly"]}) == [source]
    assert ids({"Name": "snapshot-id", "Values": [made, "snap-nothere1"]}) == [made]
    assert ids({"Name": "disk-id", "Values": [SOURCE_DISK]}) == [source, made]
    assert ids({"Name": "snapshot-state", "Values": ["CREATING"]}) == [made]
    assert ids(
        {"Name": "disk-id", "Values": [SOURCE_DISK]}, {"Name": "snapshot-state", "Values": ["NORMAL"]}
    ) == [source]


@pytest.mark.parametrize("name", ["tag-key", "tag-value", "tag:cbsnap:owner", "no-such-filter"])
def test_describe_snapshots_refuses_undocumented_filters(sdk: Any, source: str, name: str) -> None:
    err = sdk.cbs_error("DescribeSnapshots", Filters=[{"Name": name, "Values": ["cbsnap"]}])
    assert err.code == "InvalidFilter"
