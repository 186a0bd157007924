"""The generation rules (cbsnap.gfs) and their use in the janitor's pure select(): restic's semantics."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cbsnap.cbs import SnapshotInfo
from cbsnap.cbs_time import format_cbs_time
from cbsnap.gfs import Dated, apply_rules, zone_named
from cbsnap.janitor import DiskScope, select
from cbsnap.models import Retention
from cbsnap.ownership import OWNER_TAG, OWNER_VALUE

START = datetime(2026, 1, 1, 2, 0, tzinfo=timezone.utc)  # a Thursday
DAY = 86_400.0


def daily(n: int, start: datetime = START) -> list[Dated]:
    return [Dated(f"s{i:03d}", (start + timedelta(days=i)).timestamp()) for i in range(n)]


def kept(snapshots: list[Dated], rules: dict[str, int], zone: str = "UTC") -> set[str]:
    tz = zone_named(zone)
    assert tz is not None
    return {sid for sid, v in apply_rules(snapshots, rules, tz).items() if v.kept}


def test_daily_keeps_the_newest_of_each_of_the_last_n_days_that_have_a_snapshot() -> None:
    # two a day for 10 days, and a gap of three days: days without snapshots are not counted
    snaps = [Dated(f"a{i}", (START + timedelta(days=i)).timestamp()) for i in range(10)]
    snaps += [Dated(f"b{i}", (START + timedelta(days=i, hours=5)).timestamp()) for i in range(10)]
    snaps += [Dated("late", (START + timedelta(days=13)).timestamp())]
    assert kept(snaps, {"daily": 3}) == {"late", "b9", "b8"}


def test_weekly_monthly_yearly_use_iso_weeks_and_calendar_months() -> None:
    snaps = daily(400)
    got = kept(snaps, {"weekly": 2, "monthly": 2, "yearly": 2})
    by_id = {s.snapshot_id: datetime.fromtimestamp(s.created, timezone.utc) for s in snaps}
    dates = sorted(by_id[s].date().isoformat() for s in got)
    # newest 2027-02-04 (a Thursday): its own week, month and year; the week before ends on Sunday
    # 2027-01-31, which is also January's last day; 2026 ends on 2026-12-31
    assert dates == ["2026-12-31", "2027-01-31", "2027-02-04"]


def test_a_snapshot_kept_by_any_rule_stays_and_verdicts_say_what_would_keep_the_rest() -> None:
    snaps = daily(30)
    tz = zone_named("UTC")
    assert tz is not None
    verdicts = apply_rules(snaps, {"keepLast": 2, "daily": 7, "weekly": 4}, tz)
    assert {s for s, v in verdicts.items() if v.kept} == kept(snaps, {"daily": 7}) | kept(
        snaps, {"weekly": 4}
    )
    # the oldest day is the 30th day back; daily ≥ 30 would have kept it
    assert verdicts["s000"].would_keep.get("daily") == 30 and not verdicts["s000"].kept


def test_buckets_follow_the_requested_time_zone() -> None:
    # 2026-03-01 20:00 UTC is already 2026-03-02 in Shanghai: different days, different months
    a = Dated("a", datetime(2026, 2, 28, 20, 0, tzinfo=timezone.utc).timestamp())
    b = Dated("b", datetime(2026, 2, 28, 15, 0, tzinfo=timezone.utc).timestamp())
    assert kept([a, b], {"daily": 5}) == {"a"}  # one UTC day
    assert kept([a, b], {"daily": 5}, "Asia/Shanghai") == {"a", "b"}  # 03-01 04:00 and 02-28 23:00
    assert kept([a, b], {"monthly": 5}, "Asia/Shanghai") == {"a", "b"}


def test_retention_validates_the_time_zone_and_needs_a_rule() -> None:
    assert Retention(daily=7, timezone="Europe/Berlin").generations == {"daily": 7}
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        Retention(daily=7, timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="needs keepLast, maxAgeDays or one of"):
        Retention(timezone="UTC")
    assert Retention(keepLast=3, daily=7, weekly=4, monthly=12, yearly=50).most_kept == 76


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=1, max_value=60 * 60 * 40), min_size=1, max_size=120),
    rules=st.fixed_dictionaries(
        {},
        optional={
            "keepLast": st.integers(1, 5),
            "daily": st.integers(1, 10),
            "weekly": st.integers(1, 6),
            "monthly": st.integers(1, 4),
            "yearly": st.integers(1, 2),
        },
    ).filter(bool),
)
def test_pruning_as_you_go_equals_the_rules_over_everything(gaps: list[int], rules: dict[str, int]) -> None:
    """Deleting what the rules do not keep never removes what they would keep later."""
    everything: list[Dated] = []
    alive: list[Dated] = []
    t = START.timestamp()
    for i, gap in enumerate(gaps):
        t += gap
        new = Dated(f"s{i}", t)
        everything.append(new)
        alive.append(new)
        keep = kept(alive, rules)
        alive = [s for s in alive if s.snapshot_id in keep]
        assert {s.snapshot_id for s in alive} == kept(everything, rules)


def snapshot(sid: str, created: datetime, *, owned: bool = True, name: str = "nightly") -> SnapshotInfo:
    return SnapshotInfo(
        snapshot_id=sid,
        disk_id="disk-gfs00001",
        state="NORMAL",
        percent=100,
        name=name,
        create_time=format_cbs_time(created),
        deadline_time=None,
        image_count=0,
        tags={OWNER_TAG: OWNER_VALUE} if owned else {},
    )


def test_select_with_generations_and_max_age_protects_young_snapshots() -> None:
    now = START + timedelta(days=29, hours=1)
    listed = [snapshot(f"snap-{i:08d}", START + timedelta(days=i)) for i in range(30)]
    listed.append(snapshot("snap-foreign1", START, owned=False))
    scope = DiskScope("disk-gfs00001", "ap-guangzhou", "nightly")
    plan = select(listed, scope, Retention(daily=7, weekly=4), now.timestamp())
    gone = {s.snapshot_id for s in plan.to_delete}
    assert "snap-foreign1" not in gone and len(gone) == 30 - len(plan.kept)
    expected = kept(
        [Dated(s.snapshot_id, START.timestamp() + i * DAY) for i, s in enumerate(listed[:30])],
        {
            "daily": 7,
            "weekly": 4,
        },
    )
    assert {s.snapshot_id for s in plan.kept} == expected
    # with maxAgeDays 20, nothing younger than 20 days goes
    young = select(listed, scope, Retention(daily=7, weekly=4, maxAgeDays=20), now.timestamp())
    assert {s.snapshot_id for s in young.to_delete} == {s for s in gone if int(s[5:]) <= 9}
    assert all("would have kept it" in c.why or "no rule" in c.why for c in plan.candidates)


def test_the_copy_regions_are_the_emulators_regions() -> None:
    from cbsnap.regions import KNOWN_REGIONS
    from cbsnap_emulator.state import KNOWN_REGIONS as EMULATED

    assert KNOWN_REGIONS == EMULATED


def test_shared_and_image_bound_snapshots_are_never_deleted() -> None:
    from dataclasses import replace

    now = START + timedelta(days=10)
    listed = [snapshot(f"snap-{i:08d}", START + timedelta(days=i)) for i in range(10)]
    listed[0] = replace(listed[0], share_count=2)
    listed[1] = replace(listed[1], shared_in=True)
    listed[2] = replace(listed[2], image_count=1)
    plan = select(
        listed, DiskScope("disk-gfs00001", "ap-guangzhou", "nightly"), Retention(daily=3), now.timestamp()
    )
    skipped = {c.snapshot.snapshot_id: c for c in plan.skipped}
    assert set(skipped) == {"snap-00000000", "snap-00000001", "snap-00000002"}
    assert skipped["snap-00000000"].skip == 16026 and "SnapHasShared" in skipped["snap-00000000"].reason
    assert {s.snapshot_id for s in plan.to_delete} == {f"snap-{i:08d}" for i in range(3, 7)}
