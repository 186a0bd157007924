"""CBS times are Beijing time (UTC+8) on the wire; seeds and the product read them the same way."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from cbsnap.cbs_time import format_cbs_time, parse_cbs_time
from cbsnap.janitor import create_time
from cbsnap_emulator import Emulator

NEW_YEAR_UTC = datetime(2026, 1, 1, tzinfo=timezone.utc)  # 08:00 in Beijing
DISK = "disk-time0001"


def test_create_and_deadline_time_are_written_in_beijing_time(emulator: Emulator, sdk: Any) -> None:
    emulator.add_disk(DISK, created_at=NEW_YEAR_UTC)
    deadline = datetime(2099, 1, 31, 16, 0, tzinfo=timezone.utc)
    snap = emulator.add_snapshot(DISK, created_at=NEW_YEAR_UTC.timestamp(), deadline=deadline)
    got = sdk.snapshot(snap)
    assert got["CreateTime"] == "2026-01-01 08:00:00"
    assert got["DeadlineTime"] == "2099-02-01 00:00:00"  # 16:00 UTC on 31 January
    assert got["TimeStartShare"] == "2026-01-01"
    assert sdk.cbs("DescribeDisks", DiskIds=[DISK])["DiskSet"][0]["CreateTime"] == "2026-01-01 08:00:00"


def test_a_snapshot_made_late_in_the_utc_day_is_dated_the_next_beijing_day(
    emulator: Emulator, sdk: Any
) -> None:
    emulator.add_disk(DISK)
    snap = emulator.add_snapshot(DISK, created_at="2026-07-01T20:30:00+00:00")
    got = sdk.snapshot(snap)
    assert (got["CreateTime"], got["TimeStartShare"]) == ("2026-07-02 04:30:00", "2026-07-02")


def test_zone_less_seed_times_are_beijing_time_and_read_back_verbatim(make_sdk: Any) -> None:
    seed = {
        "disks": [{"DiskId": DISK, "Region": "ap-guangzhou", "CreateTime": "2026-03-01 09:15:00"}],
        "snapshots": [{"DiskId": DISK, "SnapshotName": "old", "CreateTime": "2026-03-02 00:30:00"}],
    }
    with Emulator(seed) as emu:
        client = make_sdk(emu)
        [snap] = client.cbs("DescribeSnapshots")["SnapshotSet"]
        assert snap["CreateTime"] == "2026-03-02 00:30:00"
        assert client.cbs("DescribeDisks")["DiskSet"][0]["CreateTime"] == "2026-03-01 09:15:00"
        # the seed text means 16:30 UTC the day before
        assert parse_cbs_time(snap["CreateTime"]) == datetime(2026, 3, 1, 16, 30, tzinfo=timezone.utc)


def test_snapshot_groups_keep_iso_times_with_an_offset(emulator: Emulator, sdk: Any) -> None:
    emulator.add_disk(DISK, instance_id="ins-time0001")
    sdk.cbs("CreateSnapshotGroup", DiskIds=[DISK])
    group = sdk.cbs("DescribeSnapshotGroups")["SnapshotGroupSet"][0]
    assert group["CreateTime"].endswith("+00:00")


def test_the_product_reads_the_emulators_create_time_as_the_creation_instant(
    emulator: Emulator, sdk: Any
) -> None:
    emulator.add_disk(DISK)
    emulator.advance(3 * 3600)  # whatever the wall clock, a state-clock instant in the past and future
    snap_id = sdk.cbs("CreateSnapshot", DiskId=DISK)["SnapshotId"]
    created_at = emulator.calls(action="CreateSnapshot")[0]["time"]
    text = sdk.snapshot(snap_id)["CreateTime"]
    parsed = parse_cbs_time(text)
    assert parsed is not None and parsed.tzinfo is not None and parsed.utcoffset() == timedelta(0)
    # CreateTime has whole seconds: the reading is the creation second
    assert created_at - 1 < parsed.timestamp() <= created_at
    assert create_time(text) == parsed.timestamp()


def test_cbs_time_round_trips_and_refuses_guesses() -> None:
    moment = datetime(2026, 11, 28, 23, 59, 59, tzinfo=timezone.utc)
    assert format_cbs_time(moment) == "2026-11-29 07:59:59"
    assert format_cbs_time(moment.timestamp()) == "2026-11-29 07:59:59"
    assert format_cbs_time(moment.astimezone(timezone(timedelta(hours=-5)))) == "2026-11-29 07:59:59"
    assert parse_cbs_time(format_cbs_time(moment)) == moment
    for unreadable in (None, "", "   ", "2026-11-29T07:59:59", "29/11/2026 07:59:59", "2026-02-30 00:00:00"):
        assert parse_cbs_time(unreadable) is None
    with pytest.raises(ValueError, match="aware"):
        format_cbs_time(datetime(2026, 1, 1))  # naive on purpose
