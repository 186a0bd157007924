"""Coverage report (action "report"): every disk classified from its snapshots, read-only, and cheap.

The fleet lives in an emulator whose snapshots take 30 days to finish, so a CREATING snapshot
seeded hours ago is still CREATING (stuck) when the report runs. Snapshot times are seeded
relative to the emulator's clock, which is the wall clock the product reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tencentcloud.cbs.v20170312 import cbs_client
from tencentcloud.cbs.v20170312 import models as cbs_models
from tencentcloud.common.credential import Credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from cbsnap.runtime import set_runtime
from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator, Fault
from tests.conftest import RuntimeHarness, emulator_settings, run_timer

HOUR = 3600.0
OWNER = {"cbsnap:owner": "cbsnap"}
READ_ONLY = {"DescribeDisks", "DescribeSnapshots"}


class Fleet:
    """30 disks in two regions, six of each kind; ``kinds`` maps disk id -> kind."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.kinds: dict[str, str] = {}
        now = emu.now
        for region, count in (("ap-guangzhou", 20), ("ap-shanghai", 10)):
            for i in range(count):
                kind = ("fresh", "stale", "never", "stuck", "doomed")[i % 5]
                # doomed: fresh, but DeleteSnapshot=1 (its snapshots die with it)
                fields = {"DeleteSnapshot": 1} if kind == "doomed" else None
                disk = emu.add_disk(region=region, fields=fields)["DiskId"]
                self.kinds[disk] = kind
                if kind in ("fresh", "doomed"):
                    emu.add_snapshot(disk, created_at=now - 2 * HOUR, tags=OWNER)
                    emu.add_snapshot(disk, created_at=now - 50 * HOUR)
                elif kind == "stale":
                    emu.add_snapshot(disk, created_at=now - 40 * HOUR, tags=OWNER)
                elif kind == "stuck":
                    emu.add_snapshot(disk, created_at=now - 3 * HOUR)
                    emu.add_snapshot(disk, state="CREATING", created_at=now - 8 * HOUR)

    def of(self, kind: str) -> list[str]:
        return [d for d, k in self.kinds.items() if k == kind]


@pytest.fixture
def fleet_emulator() -> Iterator[Emulator]:
    emu = Emulator(None, creation_seconds=30 * 24 * HOUR, rng_seed=14)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def fleet(fleet_emulator: Emulator) -> Fleet:
    return Fleet(fleet_emulator)


@pytest.fixture
def harness(fleet_emulator: Emulator) -> Iterator[RuntimeHarness]:
    h = RuntimeHarness(emulator_settings(fleet_emulator))
    yield h
    set_runtime(None)


EVERYWHERE = {"action": "report", "selector": {"all": True, "regions": ["ap-guangzhou", "ap-shanghai"]}}
EXPECTED = {"fresh": ("ok", 0), "doomed": ("ok", 0), "stale": ("stale", 16101), "never": ("none", 16102)}
EXPECTED["stuck"] = ("stuck", 16103)


def by_disk(response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["storageId"]: r for r in response["results"]}


def test_thirty_disks_in_two_regions_are_classified_read_only(
    fleet_emulator: Emulator, fleet: Fleet, harness: RuntimeHarness
) -> None:
    fleet_emulator.reset_calls()
    response = run_timer(EVERYWHERE, name="coverage")  # never raises: a report asks for no redelivery
    results = by_disk(response)
    assert set(results) == set(fleet.kinds)
    for disk, kind in fleet.kinds.items():
        r = results[disk]
        assert (r["status"], r["code"]) == EXPECTED[kind], (kind, r)
        assert r["action"] == "report" and r["deleteWithDisk"] is (kind == "doomed")
    stale = results[fleet.of("stale")[0]]
    assert 39.5 < stale["ageHours"] < 40.5 and "RPO 26 h" in stale["message"]
    stuck = results[fleet.of("stuck")[0]]
    assert stuck["creating"] == 1 and len(stuck["stuckSnapshotIds"]) == 1 and stuck["lastSnapshotId"]
    never = results[fleet.of("never")[0]]
    assert never["lastSnapshotId"] is None and never["snapshotCount"] == 0 and never["ageHours"] is None
    fresh = results[fleet.of("fresh")[0]]
    assert (
        fresh["snapshotCount"] == 2
        and len(fresh["last30Days"]) == 30
        and fresh["last30Days"][-2:] in ("01", "10")  # 2 h ago: today's UTC day, or yesterday's
    )
    assert "DeleteSnapshot=1" in results[fleet.of("doomed")[0]]["message"]

    summary = response["report"]
    assert {k: summary[k] for k in ("disks", "ok", "stale", "none", "stuck", "error")} == {
        "disks": 30, "ok": 12, "stale": 6, "none": 6, "stuck": 6, "error": 0,
    }  # fmt: skip
    assert summary["deleteWithDisk"] == 6 and summary["stuckSnapshots"] == 6
    calls = fleet_emulator.calls()
    assert {c["action"] for c in calls} <= READ_ONLY, "a report makes no mutating call"
    assert summary["apiCallsTotal"] == len(calls)
    assert summary["apiCalls"] == {
        a: sum(1 for c in calls if c["action"] == a) for a in {c["action"] for c in calls}
    }
    # one DescribeDisks page per region; Guangzhou's 20 disks need 2 by-disk calls, so one
    # region-wide page (all 29 of its snapshots) replaces them; Shanghai's 10 disks need one.
    assert summary["apiCalls"] == {"DescribeDisks": 2, "DescribeSnapshots": 2}
    assert summary["listing"] == {"ap-guangzhou": "region", "ap-shanghai": "by-disk"}


def test_owned_only_counts_cbsnaps_snapshots(
    fleet_emulator: Emulator, fleet: Fleet, harness: RuntimeHarness
) -> None:
    response = run_timer({**EVERYWHERE, "ownedOnly": True, "rpoHours": 48}, name="owned")
    results = by_disk(response)
    # stuck disks hold only foreign snapshots: for cbsnap they have none
    assert {results[d]["status"] for d in fleet.of("stuck")} == {"none"}
    # stale ones (40 h, owned) are within a 48 h RPO
    assert {results[d]["status"] for d in fleet.of("stale")} == {"ok"}
    assert {results[d]["snapshotCount"] for d in fleet.of("fresh")} == {1}
    assert response["report"]["rpoHours"] == 48 and response["report"]["ownedOnly"] is True


def test_by_disk_listing_when_the_region_holds_many_other_snapshots(
    fleet_emulator: Emulator, harness: RuntimeHarness
) -> None:
    others = fleet_emulator.add_disks(5, prefix="other")
    for disk in others:
        for hours in range(50):
            fleet_emulator.add_snapshot(disk, created_at=fleet_emulator.now - (hours + 1) * HOUR)
    mine = fleet_emulator.add_disks(12, prefix="mine", tags={"team": "db"})
    for disk in mine:
        fleet_emulator.add_snapshot(disk, created_at=fleet_emulator.now - HOUR)
    fleet_emulator.reset_calls()
    response = run_timer({"action": "report", "selector": {"tags": {"team": "db"}}}, name="db")
    assert {r["status"] for r in response["results"]} == {"ok"} and len(response["results"]) == 12
    report = response["report"]
    # by disk: 2 calls (10 + 2 disks); region-wide would be 3 pages (262 snapshots), so after
    # the one probing page the report lists by disk
    assert report["listing"] == {"ap-guangzhou": "by-disk"}
    assert report["apiCalls"] == {"DescribeDisks": 1, "DescribeSnapshots": 3}
    describe = fleet_emulator.calls(action="DescribeSnapshots")
    assert [len(c["params"].get("Filters") or []) for c in describe] == [0, 1, 1]


def test_copies_in_progress_and_finished_are_listed(
    fleet_emulator: Emulator, harness: RuntimeHarness
) -> None:
    [source_disk] = fleet_emulator.add_disks(1, region="ap-shanghai", prefix="src")
    snap = fleet_emulator.add_snapshot(source_disk, created_at=fleet_emulator.now - HOUR)
    # enough Guangzhou disks that its snapshots are listed region-wide (where finished copies are seen)
    for disk in fleet_emulator.add_disks(11, region="ap-guangzhou", prefix="gz"):
        fleet_emulator.add_snapshot(disk, created_at=fleet_emulator.now - HOUR)
    cbs = cbs_client.CbsClient(
        Credential(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY),
        "ap-shanghai",
        ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=fleet_emulator.endpoint)),
    )
    req = cbs_models.CopySnapshotCrossRegionsRequest()
    req.from_json_string(json.dumps({"SnapshotId": snap, "DestinationRegions": ["ap-guangzhou"]}))
    cbs.CopySnapshotCrossRegions(req)
    during = run_timer({**EVERYWHERE, "disks": [source_disk], "region": "ap-shanghai"}, name="c1")
    assert by_disk(during)[source_disk]["copies"] == ["ap-guangzhou"]  # CopyingToRegions
    fleet_emulator.advance(60)  # the copy finishes: only its name links it to the source now
    after = run_timer({**EVERYWHERE, "disks": [source_disk], "region": "ap-shanghai"}, name="c2")
    assert after["report"]["listing"]["ap-guangzhou"] == "region"
    assert by_disk(after)[source_disk]["copies"] == ["ap-guangzhou"]


def test_unknown_disks_and_failed_listings_are_reported_not_guessed(
    fleet_emulator: Emulator, fleet: Fleet, harness: RuntimeHarness
) -> None:
    [disk] = fleet.of("fresh")[:1]
    fleet_emulator.add_fault(Fault(action="DescribeSnapshots", code="UnauthorizedOperation", times=None))
    response = run_timer({"action": "report", "disks": [disk, "disk-zzzzzzzz"]}, name="bad")
    first, second = response["results"]
    assert (first["status"], first["code"]) == ("error", 4100) and "UnauthorizedOperation" in first["message"]
    assert (second["status"], second["code"]) == ("error", 9003) and "NotFound" in second["message"]
    assert response["report"]["error"] == 2


def test_a_lookup_that_may_pass_is_reported_not_redelivered(
    fleet_emulator: Emulator, fleet: Fleet, harness: RuntimeHarness
) -> None:
    fleet_emulator.add_fault(Fault(action="DescribeDisks", code="InternalError"))
    response = run_timer({"action": "report", "disks": fleet.of("fresh")[:2]}, name="flaky")  # no raise
    assert {(r["status"], r["code"]) for r in response["results"]} == {("error", 6000)}
    assert "attempted" not in response["results"][0]


def test_report_requests_refuse_create_options(harness: RuntimeHarness) -> None:
    response = run_timer({**EVERYWHERE, "retainDays": 3, "snapshotName": "x"}, name="bad")
    [result] = response["results"]
    assert result["code"] == 9003 and "snapshotName, retainDays" in result["message"]
    snapshot_all = run_timer({"selector": {"all": True}}, name="bad2")
    assert "report only" in snapshot_all["results"][0]["message"]


def test_report_goes_to_the_sinks_and_the_metrics_line(
    fleet_emulator: Emulator, fleet: Fleet, harness: RuntimeHarness
) -> None:
    fleet_emulator.add_queue("reports")
    run_timer({**EVERYWHERE, "replyTo": {"queue": "reports"}}, name="to-queue")
    [message] = fleet_emulator.messages(queue="reports")
    body = json.loads(message["MsgContent"])
    assert len(body["results"]) == 30 and body["summary"]["failed"] == 18
    records = harness.log_records()
    [summary] = [r for r in records if r["message"] == "report.summary"]
    assert summary["none"] == 6
    [metrics] = [r for r in records if r.get("type") == "cbsnap.metrics"]
    assert metrics["coverage"] == {"ok": 12, "stale": 6, "none": 6, "stuck": 6}
    assert metrics["failed"] == {"16101": 6, "16102": 6, "16103": 6} and metrics["created"] == 0
    assert metrics["stuckSnapshots"] == 6 and metrics["redelivery"] is False
