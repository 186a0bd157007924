"""The pure parts of cross-region copies: names, codes, the request field, and copy work in a link."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from cbsnap.codes import SeedCode, seed_code_for
from cbsnap.copies import CopyWork, copy_name
from cbsnap.models import MAX_SNAPSHOT_NAME, CopyRef, RequestOptions, SnapshotResult
from cbsnap.notify import RECHECK_FIELD, parse_recheck
from cbsnap.ownership import disk_key
from cbsnap.tags import snapshot_resource


def test_a_copy_name_carries_the_source_and_the_key_and_fits_a_snapshot_name() -> None:
    key = disk_key("key/dr-77", "disk-g73hhs4o")
    name = copy_name("snap-o7zxxxr3", key)
    assert name == f"cbsnap-copy-of-snap-o7zxxxr3-{key[:16]}" and len(name) <= MAX_SNAPSHOT_NAME
    assert copy_name("snap-o7zxxxr3", disk_key("key/other", "disk-g73hhs4o")) != name


def test_the_snapshots_tag_api_name_is_the_terraform_providers() -> None:
    assert (
        snapshot_resource("ap-shanghai", "snap-o7zxxxr3")
        == "qcs::cvm:ap-shanghai:uin/:snapshot/snap-o7zxxxr3"
    )


@pytest.mark.parametrize(
    ("api_code", "seed"),
    [
        ("ResourceInUse.CopySnapshotConflict", SeedCode.DISK_BUSY),
        ("UnsupportedOperation.SnapshotNotSupportCopy", SeedCode.SNAPSHOT_NOT_SUPPORTED),
        ("UnsupportedOperation.SnapHasShared", SeedCode.SNAPSHOT_NOT_SUPPORTED),
        ("InsufficientSnapshotQuota", SeedCode.SNAPSHOT_QUOTA_EXCEEDED),
        ("InvalidParameterValue", SeedCode.INVALID_PARAMETER),
        ("LimitExceeded.ResourceAttachedTags", SeedCode.INVALID_PARAMETER),
        ("InvalidAccount.InsufficientBalance", SeedCode.INTERNAL_ERROR),
        ("InternalError.ComponentError", SeedCode.INTERNAL_ERROR),
        ("UnauthorizedOperation", SeedCode.AUTH_FAILURE),
    ],
)
def test_copy_errors_map_through_the_one_table(api_code: str, seed: SeedCode) -> None:
    assert seed_code_for(api_code) == seed


def test_the_copy_field_and_its_alias() -> None:
    options = RequestOptions.model_validate(
        {"disks": ["disk-g73hhs4o"], "copy": {"regions": ["ap-shanghai"], "retainDays": 3}}
    )
    assert options.copy_ is not None and options.copy_.regions == ["ap-shanghai"]
    # a fan-out chunk re-serialises the caller's own words, under the field's own name
    assert options.model_dump(mode="json", exclude_unset=True, by_alias=True)["copy"] == {
        "regions": ["ap-shanghai"],
        "retainDays": 3,
    }
    with pytest.raises(ValidationError, match="a prune makes no snapshot"):
        RequestOptions.model_validate(
            {
                "disks": ["disk-g73hhs4o"],
                "action": "prune",
                "retention": {"keepLast": 1},
                "copy": {"regions": ["ap-tokyo"]},
            }
        )


def test_copies_show_in_a_result_only_when_set() -> None:
    base = SnapshotResult.failure("disk-g73hhs4o", "n", SeedCode.INTERNAL_ERROR, "x")
    assert "copies" not in base.to_dict()
    with_copies = base.model_copy(
        update={"copies": (CopyRef(region="ap-tokyo", state="failed", code=16026, message="no"),)}
    )
    assert with_copies.to_dict()["copies"] == [
        {"region": "ap-tokyo", "snapshotId": None, "state": "failed", "code": 16026, "message": "no"}
    ]


def test_copy_work_travels_in_a_recheck_link() -> None:
    work = CopyWork(
        regions=["ap-tokyo", "ap-seoul"], retainDays=3, key="ab" * 16, made={"ap-tokyo": "snap-aaaaaaa1"}
    )
    event = {
        RECHECK_FIELD: {
            "v": 2,
            "notify": False,
            "giveUpAt": "2026-11-29T02:00:00Z",
            "requestKey": "key/k",
            "snapshots": [
                {
                    "snapshotId": "snap-bbbbbbb2",
                    "region": "ap-guangzhou",
                    "notified": True,
                    "copies": work.model_dump(mode="json"),
                }
            ],
        }
    }
    link = parse_recheck(event)
    assert not isinstance(link, str)
    again = parse_recheck(json.loads(link.dumps()))
    assert not isinstance(again, str) and again.snapshots[0].copies == work
    assert again.notify is False and work.open_regions == ["ap-tokyo", "ap-seoul"]
