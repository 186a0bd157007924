"""Generations retention and the snapshot quota against the emulator (issue 13): `cbsnap plan` lists
exactly what would go with no mutating call; a full disk gets room made by its own rules, or 16006;
and a stretch of daily runs through the timer handler keeps exactly what the rules keep."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
from datetime import datetime, timezone
from typing import Any

from cbsnap.cbs_time import parse_cbs_time
from cbsnap.runtime import Runtime, set_runtime
from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator
from tests.conftest import FAST_POLICY, ROOT, RuntimeHarness, emulator_settings, run_timer
from tests.unit.test_gfs_simulation import oracle

DAY = 86_400.0
DISK = "disk-gfs00001"
OWNED = {"cbsnap:owner": "cbsnap"}
MUTATING = (
    "CreateSnapshot",
    "DeleteSnapshots",
    "CopySnapshotCrossRegions",
    "ModifySnapshotAttribute",
    "TagResources",
    "Invoke",
)


def mutating(emulator: Emulator) -> list[dict[str, Any]]:
    return [c for c in emulator.calls() if c["action"] in MUTATING]


def owned_ids(emulator: Emulator, disk: str = DISK) -> set[str]:
    return {
        s["SnapshotId"]
        for s in emulator.snapshots(disk)
        if {t["Key"]: t["Value"] for t in s["Tags"]}.get("cbsnap:owner") == "cbsnap"
    }


def test_cbsnap_plan_lists_exactly_the_daily_snapshots_that_would_go(emulator: Emulator) -> None:
    """issue 13's done-when: 30 owned daily snapshots, {"daily": 7, "weekly": 4}, `cbsnap plan`."""
    emulator.add_disk(DISK)
    now = emulator.now
    made: list[tuple[str, float]] = []
    for back in range(30, 0, -1):  # oldest first, one a day, the newest two hours ago
        at = now - back * DAY + DAY - 7200
        made.append((emulator.add_snapshot(DISK, name="nightly", tags=OWNED, created_at=at), at))
    foreign = emulator.add_snapshot(DISK, name="nightly", created_at=now - 40 * DAY)
    emulator.reset_calls()
    request = {"disks": [DISK], "snapshotName": "nightly", "retention": {"daily": 7, "weekly": 4}}
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), str(ROOT)]),
        "CBSNAP_ENDPOINT": f"http://{emulator.endpoint}",
        "TENCENTCLOUD_SECRETID": DEFAULT_SECRET_ID,
        "TENCENTCLOUD_SECRETKEY": DEFAULT_SECRET_KEY,
        "TENCENTCLOUD_REGION": "ap-guangzhou",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cbsnap_cli.main",
            "plan",
            json.dumps(request),
            "--json",
            "--trigger",
            "timer",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    # the rules over the 30 and the snapshot the run would make now (the newest)
    local = [(sid, datetime.fromtimestamp(at, timezone.utc)) for sid, at in made]
    kept = oracle([*local, ("(new)", datetime.fromtimestamp(now, timezone.utc))], {"daily": 7, "weekly": 4})
    would_go = {sid for sid, _ in made} - kept
    deletes = [r for r in results if r.get("action") == "delete"]
    assert {r["snapshotId"] for r in deletes} == would_go and len(deletes) == len(would_go)
    assert foreign not in {r["snapshotId"] for r in deletes}
    for record in deletes:
        assert record["message"].startswith("dry run: would delete: ") and "days old" in record["message"]
        assert "would have kept it" in record["message"] or "no rule would keep it" in record["message"]
    [plan] = [r for r in results if r.get("action") == "plan"]
    assert plan["code"] == 0 and f"retention would then delete {len(would_go)}" in plan["message"]
    assert mutating(emulator) == []
    assert len(owned_ids(emulator)) == 30


def test_a_full_disk_gets_room_from_its_own_rules_before_the_create(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    emulator.add_disk(DISK)
    for back in range(64, 0, -1):
        emulator.add_snapshot(DISK, name="nightly", tags=OWNED, created_at=emulator.now - back * DAY)
    oldest = min(owned_ids(emulator), key=lambda s: emulator_snapshot(emulator, s)["CreateTime"])
    response = run_timer({"disks": [DISK], "snapshotName": "nightly", "retention": {"keepLast": 64}})
    create, *deletes = response["results"]
    assert create["code"] == 0 and create["snapshotId"]
    assert [(d["action"], d["snapshotId"], d["code"]) for d in deletes] == [("delete", oldest, 0)]
    order = [c["action"] for c in emulator.calls() if c["action"] in ("DeleteSnapshots", "CreateSnapshot")]
    assert order[:2] == ["DeleteSnapshots", "CreateSnapshot"]
    assert len(emulator.snapshots(DISK)) == 64


def test_a_full_disk_whose_rules_keep_everything_is_16006_and_says_so(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    emulator.add_disk(DISK)
    for back in range(60, 0, -1):  # someone else's
        emulator.add_snapshot(DISK, name="nightly", created_at=emulator.now - back * DAY - 3600)
    for back in range(4, 0, -1):  # cbsnap's: four days, all kept by daily 7
        emulator.add_snapshot(DISK, name="nightly", tags=OWNED, created_at=emulator.now - back * DAY)
    response = run_timer({"disks": [DISK], "snapshotName": "nightly", "retention": {"daily": 7}})
    [result] = response["results"]
    assert result["code"] == 16006 and "they keep the rest, so no snapshot was made" in result["message"]
    assert mutating(emulator) == [] and len(emulator.snapshots(DISK)) == 64


def test_the_plan_warns_when_the_rules_can_keep_more_than_the_quota(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    emulator.add_disk(DISK)
    retention = {"keepLast": 10, "daily": 30, "weekly": 12, "monthly": 12, "yearly": 5}
    [plan] = run_timer({"disks": [DISK], "retention": retention, "dryRun": True})["results"]
    assert (
        plan["code"] == 0
        and "can keep up to 69 snapshots, more than the 64-per-disk quota" in plan["message"]
    )


def test_daily_runs_through_the_timer_keep_exactly_what_the_rules_keep(emulator: Emulator) -> None:
    """The simulation of tests/unit/test_gfs_simulation.py, shorter, on the emulator over HTTP."""
    rng = random.Random(2026)
    emulator.add_disk(DISK)
    offset = [0.0]
    # the runtime's wall clock is the emulator's, minutes off (the function's clock skew)
    set_runtime(
        Runtime.from_settings(
            emulator_settings(emulator),
            stream=io.StringIO(),
            policy=FAST_POLICY,
            wall_clock=lambda: datetime.fromtimestamp(emulator.now + offset[0], timezone.utc),
        )
    )
    rules = {"daily": 5, "weekly": 3, "monthly": 2}
    document = {"disks": [DISK], "snapshotName": "nightly", "retention": rules}
    ours: list[tuple[str, datetime]] = []
    foreign: set[str] = set()
    for day in range(75):
        emulator.advance(DAY + rng.uniform(-600, 600))
        if rng.random() < 0.1:
            continue
        if rng.random() < 0.08:
            foreign.add(emulator.add_snapshot(DISK, name="nightly", created_at=emulator.now - 60))
        offset[0] = rng.uniform(-300, 300)
        [create, *_] = run_timer(document, name="nightly", time=f"day-{day}")["results"]
        assert create["code"] == 0, create
        made = emulator_snapshot(emulator, create["snapshotId"])
        ours.append((create["snapshotId"], parse(made["CreateTime"])))
        assert owned_ids(emulator) == oracle(ours, rules), f"day {day}"
        assert foreign <= {s["SnapshotId"] for s in emulator.snapshots(DISK)}
        assert len(emulator.snapshots(DISK)) <= 64
    set_runtime(None)


def emulator_snapshot(emulator: Emulator, snapshot_id: str) -> dict[str, Any]:
    [snap] = [s for s in emulator.snapshots() if s["SnapshotId"] == snapshot_id]
    return snap


def parse(create_time: str) -> datetime:
    moment = parse_cbs_time(create_time)
    assert moment is not None
    return moment
