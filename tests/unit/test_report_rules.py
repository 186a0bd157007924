"""The coverage report's rules, without I/O: classification, the 30-day history, worst-first order,
and the request options a report accepts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cbsnap.cbs import DiskInfo, SnapshotInfo
from cbsnap.cbs_time import format_cbs_time
from cbsnap.metrics import InvocationMetrics
from cbsnap.models import DiskTarget
from cbsnap.report import classify, history, worst_first
from cbsnap.request import prepare
from cbsnap.sinks import RequestMeta

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
DISK = DiskInfo("disk-aaaaaaa1", True, "ATTACHED", "ins-aaaaaaa1", "ap-guangzhou-3", 0)
TARGET = DiskTarget("disk-aaaaaaa1", "", 0, "ap-guangzhou")


def snap(sid: str, hours_ago: float, state: str = "NORMAL", **extra: object) -> SnapshotInfo:
    at = format_cbs_time(NOW - timedelta(hours=hours_ago))
    return SnapshotInfo(sid, DISK.disk_id, state, 100, "n", at, None, 0, **extra)  # type: ignore[arg-type]


def status(*snaps: SnapshotInfo, rpo: int = 26, stuck: int = 6) -> str:
    result = classify(TARGET, DISK, snaps, {}, now=NOW, rpo_hours=rpo, stuck_hours=stuck)
    return str(result.status)


def test_statuses_and_their_precedence() -> None:
    assert status() == "none"
    assert status(snap("snap-aaaaaaa1", 25.9)) == "ok"
    assert status(snap("snap-aaaaaaa1", 26.1)) == "stale"
    assert status(snap("snap-aaaaaaa1", 1, state="CREATING")) == "none", "CREATING is not usable"
    assert status(snap("snap-aaaaaaa1", 1), snap("snap-aaaaaaa2", 7, state="CREATING")) == "stuck"
    assert status(snap("snap-aaaaaaa1", 1), snap("snap-aaaaaaa2", 5, state="CREATING")) == "ok"
    assert status(snap("snap-aaaaaaa2", 7, state="CREATING")) == "none", "no usable snapshot beats stuck"


def test_the_newest_usable_snapshot_is_reported() -> None:
    result = classify(
        TARGET,
        DISK,
        [snap("snap-aaaaaaa1", 48), snap("snap-aaaaaaa2", 3), snap("snap-aaaaaaa3", 1, state="CREATING")],
        {"snap-aaaaaaa1": {"ap-shanghai"}},
        now=NOW,
        rpo_hours=26,
        stuck_hours=6,
    )
    assert (result.lastSnapshotId, result.ageHours, result.creating, result.snapshotCount) == (
        "snap-aaaaaaa2",
        3.0,
        1,
        3,
    )
    assert result.copies == ["ap-shanghai"] and result.code == 0 and result.to_dict()["status"] == "ok"


def test_a_report_result_shows_every_report_field() -> None:
    data = classify(TARGET, DISK, [], {}, now=NOW, rpo_hours=26, stuck_hours=6).to_dict()
    assert data["lastSnapshotId"] is None and data["ageHours"] is None and data["code"] == 16102
    assert data["deleteWithDisk"] is False and data["stuckSnapshotIds"] == []


def test_history_counts_usable_snapshots_per_utc_day_capped_at_nine() -> None:
    today = NOW.replace(hour=1)
    usable = [(today, snap("snap-aaaaaaa1", 0))] * 12 + [(today - timedelta(days=29), snap("x", 0))]
    usable.append((today - timedelta(days=30), snap("y", 0)))  # outside the window
    days = history(usable, NOW)
    assert len(days) == 30 and days[-1] == "9" and days[0] == "1" and set(days[1:-1]) == {"0"}


def test_worst_first() -> None:
    results = [
        classify(TARGET, DISK, [snap("snap-aaaaaaa1", h)], {}, now=NOW, rpo_hours=26, stuck_hours=6)
        for h in (1, 30, 60)
    ] + [classify(TARGET, DISK, [], {}, now=NOW, rpo_hours=26, stuck_hours=6)]
    assert [(r.status, r.ageHours) for r in worst_first(results)] == [
        ("none", None),
        ("stale", 60.0),
        ("stale", 30.0),
        ("ok", 1.0),
    ]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"action": "report", "disks": ["disk-aaaaaaa1"], "retainDays": 3}, "a report makes no snapshots"),
        ({"action": "report", "disks": ["disk-aaaaaaa1"], "tags": {"a": "b"}}, "tags"),
        ({"disks": ["disk-aaaaaaa1"], "rpoHours": 12}, "belong to action report"),
        ({"action": "report", "disks": ["disk-aaaaaaa1"], "rpoHours": 0}, "rpoHours"),
        ({"selector": {"all": True}}, "report only"),
        ({"action": "report", "selector": {"all": True, "tags": {"a": "b"}}}, "takes no tags"),
    ],
)
def test_report_options_are_checked(document: dict[str, object], problem: str) -> None:
    request = prepare(document, RequestMeta("timer", "timer/t/1"))
    assert request.rejections and problem in request.rejections[0][1].message


def test_metrics_count_what_each_result_is() -> None:
    metrics = InvocationMetrics("timer")
    stale = classify(TARGET, DISK, [snap("snap-aaaaaaa1", 30)], {}, now=NOW, rpo_hours=26, stuck_hours=6)
    metrics.observe([stale, stale.model_copy(update={"action": "plan", "code": 16026})], "timer/t/1")
    record = metrics.record(duration_ms=1, redelivery=False, error=None)
    assert record["failed"] == {"16101": 1} and record["coverage"]["stale"] == 1 and record["requests"] == 1
