"""The request document (validated once by :func:`cbsnap.request.prepare`) and the per-disk result."""

import json
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from cbsnap.models import DiskTarget, SnapshotResult
from cbsnap.request import prepare
from cbsnap.sinks import RequestMeta

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)


def parse_request(document: Any) -> SimpleNamespace:
    """The parts of a prepared request these tests look at."""
    request = prepare(document, RequestMeta("timer", "timer/t1/x"), now=NOW)
    return SimpleNamespace(
        targets=list(request.targets),
        rejected=[r for _, r in request.rejections],
        seed_form=request.seed_form,
        tags=request.options.tags if request.options is not None else {},
    )


def test_seed_form_with_name() -> None:
    parsed = parse_request({"storageId": "disk-g73hhs4o", "snapshotName": "mySnap"})
    assert parsed.seed_form
    assert parsed.targets == [DiskTarget("disk-g73hhs4o", "mySnap")]
    assert parsed.rejected == []


def test_seed_form_defaults_name_to_unnamed_and_accepts_disk_id_alias() -> None:
    parsed = parse_request({"diskId": "disk-g73hhs4o"})
    assert parsed.targets == [DiskTarget("disk-g73hhs4o", "Unnamed")]


def test_json_text_is_accepted() -> None:
    parsed = parse_request(json.dumps({"storageId": "disk-g73hhs4o"}))
    assert [t.disk_id for t in parsed.targets] == ["disk-g73hhs4o"]


def test_batch_form_mixes_strings_objects_and_names() -> None:
    parsed = parse_request(
        {
            "disks": ["disk-aaaaaaa1", {"storageId": "disk-aaaaaaa2", "snapshotName": "own"}],
            "snapshotName": "batch",
            "tags": {"team": "ops"},
        }
    )
    assert not parsed.seed_form
    assert parsed.targets == [DiskTarget("disk-aaaaaaa1", "batch"), DiskTarget("disk-aaaaaaa2", "own")]
    assert parsed.tags == {"team": "ops"}


def test_invalid_disk_gets_its_own_9003_and_the_valid_ones_proceed() -> None:
    parsed = parse_request({"disks": ["disk-aaaaaaa1", "disk-BADBAD12", "disk-aaaaaaa3", 7]})
    assert [t.disk_id for t in parsed.targets] == ["disk-aaaaaaa1", "disk-aaaaaaa3"]
    assert [r.code for r in parsed.rejected] == [9003, 9003]
    assert parsed.rejected[0].storageId == "disk-BADBAD12"
    assert "disks[1]" in parsed.rejected[0].message
    assert "8 lowercase letters or digits" in parsed.rejected[0].message
    assert parsed.rejected[1].storageId is None and "got int" in parsed.rejected[1].message
    assert all(r.snapshotId is None and r.codeDesc == "InvalidParameter" for r in parsed.rejected)


@pytest.mark.parametrize(
    "disk_id",
    ["disk-abc", "disk-ABCDEFGH", "disk-abcdefghi", "disc-abcdefgh", " disk-abcdefgh", "disk-abcdefg\n", ""],
)
def test_disk_id_shape_is_enforced(disk_id: str) -> None:
    parsed = parse_request({"storageId": disk_id})
    assert parsed.targets == []
    assert parsed.rejected[0].code == 9003


def test_snapshot_name_longer_than_60_is_rejected_per_disk() -> None:
    parsed = parse_request(
        {"disks": [{"storageId": "disk-aaaaaaa1", "snapshotName": "x" * 61}, "disk-aaaaaaa2"]}
    )
    assert [t.disk_id for t in parsed.targets] == ["disk-aaaaaaa2"]
    assert parsed.rejected[0].storageId == "disk-aaaaaaa1"
    assert "at most 60" in parsed.rejected[0].message


def test_request_level_problem_is_reported_once_per_named_disk() -> None:
    parsed = parse_request({"disks": ["disk-aaaaaaa1", "disk-aaaaaaa2"], "snapshotName": "y" * 61})
    assert parsed.targets == []
    assert [r.storageId for r in parsed.rejected] == ["disk-aaaaaaa1", "disk-aaaaaaa2"]
    assert all("snapshotName" in r.message for r in parsed.rejected)


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("not json", "not valid JSON"),
        ([1, 2], "must be a JSON object"),
        (None, "must be a JSON object"),
        ({}, "names no disks"),
        ({"disks": []}, "names no disks"),
        ({"storageId": "disk-aaaaaaa1", "disks": ["disk-aaaaaaa2"]}, "not both"),
        ({"storageId": "disk-aaaaaaa1", "bogus": 1}, "bogus"),
        ({"storageId": ["disk-aaaaaaa1"]}, "must be a disk ID string"),
        ({"disks": "disk-aaaaaaa1"}, "disks"),
        ({"disks": ["disk-aaaaaaa1"], "tags": {"qcloud:x": "y"}}, "reserved prefix"),
        ({"disks": ["disk-aaaaaaa1"], "tags": {"cbsnap:key": "y"}}, "reserved prefix"),
        ({"disks": ["disk-aaaaaaa1"], "tags": {"k": 1}}, "tags"),
    ],
)
def test_malformed_requests_become_9003_results(document: object, fragment: str) -> None:
    parsed = parse_request(document)
    assert parsed.targets == []
    assert parsed.rejected, "every request must end with at least one result"
    assert all(r.code == 9003 for r in parsed.rejected)
    assert fragment in parsed.rejected[0].message


def test_duplicate_disks_are_snapshotted_once() -> None:
    parsed = parse_request({"disks": ["disk-aaaaaaa1", {"storageId": "disk-aaaaaaa1"}]})
    assert parsed.targets == [DiskTarget("disk-aaaaaaa1", "Unnamed")]


def test_huge_input_is_not_echoed_whole() -> None:
    parsed = parse_request({"storageId": "disk-" + "a" * 100_000})
    assert len(parsed.rejected[0].storageId or "") < 100
    assert len(parsed.rejected[0].message) < 300


def test_result_dict_has_the_seed_contract_fields() -> None:
    ok = SnapshotResult.success(
        DiskTarget("disk-g73hhs4o", "mySnap"), "snap-o7zxxxr3", request_id="r-1", region="ap-guangzhou"
    ).to_dict()
    assert ok["code"] == 0 and ok["message"] == "" and ok["snapshotId"] == "snap-o7zxxxr3"
    assert {"storageId", "snapshotName", "code", "codeDesc", "message", "snapshotId"} <= ok.keys()
    failed = parse_request({"storageId": "nope"}).rejected[0].to_dict()
    assert failed["snapshotId"] is None and "requestId" not in failed


def test_an_explicit_key_names_the_request_whatever_carried_it() -> None:
    meta = RequestMeta("webhook", "webhook/abc", key_is_fresh=True)
    request = prepare({"storageId": "disk-aaaaaaa1", "idempotencyKey": "deploy-77"}, meta, now=NOW)
    assert request.meta.request_key == "key/deploy-77" and not request.meta.key_is_fresh
    untouched = prepare({"storageId": "disk-aaaaaaa1"}, meta, now=NOW)
    assert untouched.meta == meta


def test_the_request_keeps_what_the_caller_said_and_which_names_were_given() -> None:
    document = {"disks": ["disk-aaaaaaa1", {"storageId": "disk-aaaaaaa2", "snapshotName": "db"}]}
    request = prepare(document, RequestMeta("timer", "t"), now=NOW)
    assert request.options is not None and request.options.model_fields_set == {"disks"}
    assert [(t.snapshot_name, t.name_given) for t in request.targets] == [("Unnamed", False), ("db", True)]
    named = prepare({**document, "snapshotName": "nightly"}, RequestMeta("timer", "t"), now=NOW)
    assert [t.name_given for t in named.targets] == [True, True]


def test_expiry_comes_from_deadline_then_retain_days_then_the_trigger_default() -> None:
    meta = RequestMeta("webhook", "w")
    default = prepare({"storageId": "disk-aaaaaaa1"}, meta, default_retain_days=3, now=NOW)
    assert default.expires_at == "2026-12-01T02:00:00+00:00"
    days = prepare({"storageId": "disk-aaaaaaa1", "retainDays": 7}, meta, default_retain_days=3, now=NOW)
    assert days.expires_at == "2026-12-05T02:00:00+00:00"
    soon = prepare({"storageId": "disk-aaaaaaa1", "deadline": "2026-11-28T12:00:00Z"}, meta, now=NOW)
    assert soon.targets == () and "less than one day ahead" in soon.rejections[0][1].message


def test_not_attempted_is_typed_and_only_shown_when_true() -> None:
    left = SnapshotResult.not_attempted("disk-aaaaaaa1", "n", "out of time")
    assert not left.attempted and left.needs_redelivery and left.code == 6000
    assert left.to_dict()["attempted"] is False and left.message.startswith("not attempted: ")
    done = SnapshotResult.success(
        DiskTarget("disk-aaaaaaa1", "n"), "snap-aaaaaaa1", request_id=None, region=None
    )
    assert "attempted" not in done.to_dict() and not done.needs_redelivery
