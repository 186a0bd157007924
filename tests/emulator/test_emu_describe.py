"""DescribeDisks and DescribeSnapshots: filters, paging, ordering."""

from __future__ import annotations

from typing import Any

import pytest

from cbsnap_emulator import Emulator


@pytest.fixture
def fleet(emulator: Emulator) -> Emulator:
    web = {"instance_id": "ins-web00001"}
    emulator.add_disk("disk-web00001", **web, tags={"app": "web", "backup": "nightly"}, name="web-data",
                      created_at="2026-01-01 00:00:01")  # fmt: skip
    emulator.add_disk("disk-web00002", **web, tags={"app": "web"}, disk_usage="SYSTEM_DISK",
                      disk_type="CLOUD_SSD", created_at="2026-01-01 00:00:02")  # fmt: skip
    emulator.add_disk("disk-db000001", zone="ap-guangzhou-4", tags={"app": "db", "backup": "weekly"},
                      created_at="2026-01-01 00:00:03", fields={"DiskChargeType": "PREPAID"})  # fmt: skip
    emulator.add_disk("disk-free0001", disk_state="UNATTACHED", created_at="2026-01-01 00:00:04")
    emulator.add_disk("disk-othr0001", region="ap-shanghai", tags={"app": "web"})
    return emulator


def _ids(resp: dict[str, Any], key: str = "DiskSet") -> list[str]:
    return [item["DiskId"] if key == "DiskSet" else item["SnapshotId"] for item in resp[key]]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([{"Name": "tag:app", "Values": ["web"]}], {"disk-web00001", "disk-web00002"}),
        ([{"Name": "tag:app", "Values": ["web", "db"]}], {"disk-web00001", "disk-web00002", "disk-db000001"}),
        (
            [{"Name": "tag:backup", "Values": ["nightly"]}, {"Name": "tag:app", "Values": ["web"]}],
            {"disk-web00001"},
        ),
        ([{"Name": "tag-key", "Values": ["backup"]}], {"disk-web00001", "disk-db000001"}),
        ([{"Name": "tag-value", "Values": ["weekly"]}], {"disk-db000001"}),
        ([{"Name": "instance-id", "Values": ["ins-web00001"]}], {"disk-web00001", "disk-web00002"}),
        ([{"Name": "disk-id", "Values": ["disk-free0001", "disk-othr0001"]}], {"disk-free0001"}),
        ([{"Name": "zone", "Values": ["ap-guangzhou-4"]}], {"disk-db000001"}),
        ([{"Name": "disk-state", "Values": ["UNATTACHED"]}], {"disk-free0001"}),
        ([{"Name": "disk-usage", "Values": ["SYSTEM_DISK"]}], {"disk-web00002"}),
        ([{"Name": "disk-type", "Values": ["CLOUD_SSD"]}], {"disk-web00002"}),
        ([{"Name": "disk-name", "Values": ["web-data"]}], {"disk-web00001"}),
        (
            [{"Name": "project-id", "Values": ["0"]}],
            {"disk-web00001", "disk-web00002", "disk-db000001", "disk-free0001"},
        ),
        ([{"Name": "portable", "Values": ["FALSE"]}], {"disk-web00002"}),
        ([{"Name": "disk-charge-type", "Values": ["PREPAID"]}], {"disk-db000001"}),
        ([{"Name": "instance-name", "Values": ["web"]}], set()),
        ([{"Name": "tag:nope", "Values": ["x"]}], set()),
    ],
)
def test_disk_filters(fleet: Emulator, sdk: Any, filters: list[dict[str, Any]], expected: set[str]) -> None:
    resp = sdk.cbs("DescribeDisks", Filters=filters)
    assert set(_ids(resp)) == expected
    assert resp["TotalCount"] == len(expected)


def test_disk_ids_lookup_skips_unknown(fleet: Emulator, sdk: Any) -> None:
    resp = sdk.cbs("DescribeDisks", DiskIds=["disk-web00001", "disk-nothere1", "disk-othr0001"])
    assert _ids(resp) == ["disk-web00001"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Filters": [{"Name": "snapshot-id", "Values": ["x"]}]}, "InvalidFilter"),
        ({"Filters": [{"Name": "tag:", "Values": ["x"]}]}, "InvalidFilter"),
        (
            {"DiskIds": ["disk-web00001"], "Filters": [{"Name": "zone", "Values": ["x"]}]},
            "InvalidParameterValue",
        ),
        ({"Limit": 101}, "InvalidParameterValue"),
        ({"Limit": 0}, "InvalidParameterValue"),
        ({"Offset": -1}, "InvalidParameterValue"),
        ({"Order": "UP"}, "InvalidParameterValue"),
        ({"OrderField": "SIZE"}, "InvalidParameterValue"),
    ],
)
def test_describe_disks_errors(fleet: Emulator, sdk: Any, params: dict[str, Any], code: str) -> None:
    assert sdk.cbs_error("DescribeDisks", **params).code == code


def test_disk_paging_and_order(fleet: Emulator, sdk: Any) -> None:
    asc = ["disk-web00001", "disk-web00002", "disk-db000001", "disk-free0001"]
    first = sdk.cbs("DescribeDisks", Limit=3, Order="ASC")
    assert (first["TotalCount"], _ids(first)) == (4, asc[:3])
    second = sdk.cbs("DescribeDisks", Limit=3, Offset=3, Order="ASC", OrderField="CREATE_TIME")
    assert (second["TotalCount"], _ids(second)) == (4, asc[3:])
    assert _ids(sdk.cbs("DescribeDisks", Order="DESC")) == asc[::-1]
    assert _ids(sdk.cbs("DescribeDisks")) == asc[::-1]  # documented default: newest first
    assert sdk.cbs("DescribeDisks", Offset=10)["DiskSet"] == []


def test_default_limit_is_20(emulator: Emulator, sdk: Any) -> None:
    emulator.add_disks(25)
    resp = sdk.cbs("DescribeDisks")
    assert (resp["TotalCount"], len(resp["DiskSet"])) == (25, 20)
    assert len(sdk.cbs("DescribeDisks", Limit=100)["DiskSet"]) == 25


def test_disk_object_shape(fleet: Emulator, sdk: Any) -> None:
    disk = sdk.cbs("DescribeDisks", DiskIds=["disk-web00001"])["DiskSet"][0]
    assert disk["DiskState"] == "ATTACHED" and disk["Attached"] is True
    assert disk["InstanceId"] == "ins-web00001" and disk["InstanceIdList"] == ["ins-web00001"]
    assert disk["SnapshotAbility"] is True and disk["Shareable"] is False and disk["Encrypt"] is False
    assert disk["Tags"] == [{"Key": "app", "Value": "web"}, {"Key": "backup", "Value": "nightly"}]
    assert disk["Placement"]["Zone"] == "ap-guangzhou-3" and disk["Placement"]["ProjectId"] == 0
    assert disk["CreateTime"] == "2026-01-01 00:00:01"
    assert disk["AutoSnapshotPolicyIds"] is None
    bound = sdk.cbs("DescribeDisks", DiskIds=["disk-web00001"], ReturnBindAutoSnapshotPolicy=True)
    assert bound["DiskSet"][0]["AutoSnapshotPolicyIds"] == []
    free = sdk.cbs("DescribeDisks", DiskIds=["disk-free0001"])["DiskSet"][0]
    assert (free["Attached"], free["InstanceId"], free["InstanceIdList"]) == (False, "", [])


# -- DescribeSnapshots ------------------------------------------------------------------------------
@pytest.fixture
def snaps(fleet: Emulator) -> dict[str, str]:
    e = fleet
    return {
        "a": e.add_snapshot("disk-web00001", name="a", created_at="2026-02-01 00:00:00", tags={"k": "1"}),
        "b": e.add_snapshot("disk-web00001", name="b", created_at="2026-02-02 00:00:00"),
        # c and d share a CreateTime: ties break by creation order
        "c": e.add_snapshot(
            "disk-web00002", name="c", created_at="2026-02-03 00:00:00", disk_usage="SYSTEM_DISK"
        ),
        "d": e.add_snapshot("disk-db000001", name="d", created_at="2026-02-03 00:00:00", state="ROLLBACKING"),
        "x": e.add_snapshot("disk-othr0001", name="x", created_at="2026-02-04 00:00:00"),
    }


def test_snapshot_order_is_deterministic(snaps: dict[str, str], sdk: Any) -> None:
    order = [snaps[k] for k in "abcd"]
    assert _ids(sdk.cbs("DescribeSnapshots", Order="ASC"), "SnapshotSet") == order
    assert (
        _ids(sdk.cbs("DescribeSnapshots", Order="DESC", OrderField="CREATE_TIME"), "SnapshotSet")
        == order[::-1]
    )
    assert _ids(sdk.cbs("DescribeSnapshots"), "SnapshotSet") == order[::-1]  # default DESC
    page = sdk.cbs("DescribeSnapshots", Order="DESC", Limit=2, Offset=1)
    assert (page["TotalCount"], _ids(page, "SnapshotSet")) == (4, order[::-1][1:3])


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([{"Name": "disk-id", "Values": ["disk-web00001"]}], "ab"),
        ([{"Name": "snapshot-name", "Values": ["b", "c"]}], "bc"),
        ([{"Name": "snapshot-state", "Values": ["ROLLBACKING"]}], "d"),
        ([{"Name": "disk-usage", "Values": ["SYSTEM_DISK"]}], "c"),
        ([{"Name": "zone", "Values": ["ap-guangzhou-4"]}], "d"),
        ([{"Name": "project-id", "Values": ["0"]}], "abcd"),
        ([{"Name": "encrypt", "Values": ["TRUE"]}], ""),
        ([{"Name": "snapshot-type", "Values": ["PRIVATE_SNAPSHOT"]}], "abcd"),
        ([{"Name": "disk-id", "Values": ["disk-web00001"]}, {"Name": "snapshot-name", "Values": ["b"]}], "b"),
    ],
)
def test_snapshot_filters(
    snaps: dict[str, str], sdk: Any, filters: list[dict[str, Any]], expected: str
) -> None:
    resp = sdk.cbs("DescribeSnapshots", Filters=filters, Order="ASC")
    assert _ids(resp, "SnapshotSet") == [snaps[k] for k in expected]


def test_snapshot_ids_lookup(snaps: dict[str, str], sdk: Any) -> None:
    resp = sdk.cbs("DescribeSnapshots", SnapshotIds=[snaps["a"], "snap-nothere1", snaps["x"]])
    assert _ids(resp, "SnapshotSet") == [snaps["a"]]
    assert resp["SnapshotSet"][0]["Tags"] == [{"Key": "k", "Value": "1"}]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (
            {"Filters": [{"Name": "disk-id", "Values": [f"disk-{i:08d}" for i in range(11)]}]},
            "InvalidParameterValue",
        ),
        ({"Filters": [{"Name": "tag-key", "Values": ["cbsnap"]}]}, "InvalidFilter"),
        ({"Filters": [{"Name": "tag:cbsnap", "Values": ["x"]}]}, "InvalidFilter"),
        (
            {"SnapshotIds": ["snap-aaaaaaaa"], "Filters": [{"Name": "zone", "Values": ["x"]}]},
            "InvalidParameterValue",
        ),
        ({"Limit": 101}, "InvalidParameterValue"),
        ({"OrderField": "DEADLINE"}, "InvalidParameterValue"),
        ({"Order": "desc"}, "InvalidParameterValue"),
    ],
)
def test_describe_snapshots_errors(
    snaps: dict[str, str], sdk: Any, params: dict[str, Any], code: str
) -> None:
    assert sdk.cbs_error("DescribeSnapshots", **params).code == code


def test_ten_disk_ids_are_allowed(snaps: dict[str, str], sdk: Any) -> None:
    values = ["disk-web00001"] + [f"disk-{i:08d}" for i in range(9)]
    resp = sdk.cbs("DescribeSnapshots", Filters=[{"Name": "disk-id", "Values": values}])
    assert resp["TotalCount"] == 2
