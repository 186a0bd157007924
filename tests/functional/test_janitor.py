"""The retention janitor against the emulator, over real HTTP (nothing patched).

After a create (``retention`` on a snapshot request) and on its own
(``"action": "prune"``): rules, scope, skips, all-or-nothing batches, dry run,
and a randomized run over mixed owners, states, images, names and ages.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from cbsnap.janitor import DRY_RUN_MESSAGE, DiskScope, Janitor
from cbsnap.models import Retention
from cbsnap.ownership import OWNER_TAG, OWNER_VALUE
from cbsnap.runtime import set_runtime
from cbsnap.scf import Deadline
from cbsnap_emulator import Emulator, Fault, load_seed
from tests.conftest import RuntimeHarness, emulator_settings, run_timer

DAY = 86_400
OWNED = {OWNER_TAG: OWNER_VALUE, "cbsnap:key": "k", "cbsnap:trigger": "timer/x"}
REGION = "ap-guangzhou"


def run(document: dict[str, Any]) -> dict[str, Any]:
    return run_timer(document, name="ret")


def ids(emu: Emulator, disk_id: str) -> set[str]:
    return {s["SnapshotId"] for s in emu.snapshots(disk_id)}


def deletes(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in response["results"] if r.get("action") == "delete"]


def deleted_ids(emu: Emulator) -> list[str]:
    return [
        i
        for c in emu.calls(action="DeleteSnapshots")
        if c["error"] is None
        for i in c["params"]["SnapshotIds"]
    ]


def aged(emu: Emulator, disk_id: str, days: float, *, name: str = "nightly", **kw: Any) -> str:
    """An owned snapshot ``days`` old (unless ``tags`` says otherwise)."""
    kw.setdefault("tags", OWNED)
    return emu.add_snapshot(disk_id, name=name, created_at=int(emu.now - days * DAY), **kw)


@pytest.fixture
def slow() -> Iterator[Emulator]:
    """An emulator whose snapshots stay CREATING (for decades), without rate limits."""
    emu = Emulator(load_seed(None), creation_seconds=1e9, rate_limit=0, rng_seed=11)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def slow_harness(slow: Emulator) -> Iterator[RuntimeHarness]:
    h = RuntimeHarness(emulator_settings(slow, rate_limit=0))
    yield h
    set_runtime(None)


def janitor_for(h: RuntimeHarness, emu: Emulator, **kw: Any) -> Janitor:
    return Janitor(h.runtime.cbs, region=REGION, wall_clock=lambda: emu.now, **kw)


# -- after a create --------------------------------------------------------------------------------


def test_keep_last_after_create_records_follow_each_disks_create(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    d1, d2 = emulator.add_disks(2)
    old1 = [aged(emulator, d1, days) for days in (1, 2, 3, 4, 5)]
    old2 = [aged(emulator, d2, days) for days in (1, 2)]
    response = run({"disks": [d1, d2], "snapshotName": "nightly", "retention": {"keepLast": 3}})

    results = response["results"]
    assert [(r["storageId"], r.get("action", "create")) for r in results] == [
        (d1, "create"),
        (d1, "delete"),
        (d1, "delete"),
        (d1, "delete"),
        (d2, "create"),
    ]
    assert "action" not in results[0]
    made = results[0]["snapshotId"]
    # the three oldest go, oldest first; the new one and the two newest old ones stay
    assert [r["snapshotId"] for r in deletes(response)] == [old1[4], old1[3], old1[2]]
    assert all(
        r["code"] == 0 and r["message"] == "" and r["snapshotName"] == "nightly" for r in deletes(response)
    )
    assert all(r["codeDesc"] == "Success" and r["region"] == REGION for r in deletes(response))
    assert ids(emulator, d1) == {made, old1[0], old1[1]}
    assert ids(emulator, d2) == {results[4]["snapshotId"], *old2}
    assert len(emulator.calls(action="DeleteSnapshots")) == 1  # one batch


def test_the_snapshot_just_made_is_never_deleted(emulator: Emulator, harness: RuntimeHarness) -> None:
    [disk] = emulator.add_disks(1)
    older = aged(emulator, disk, 1)
    response = run({"storageId": disk, "snapshotName": "nightly", "retention": {"keepLast": 1}})
    made = response["results"][0]["snapshotId"]
    assert [r["snapshotId"] for r in deletes(response)] == [older]
    assert ids(emulator, disk) == {made}
    # and with only maxAgeDays, a new snapshot is never old enough, nor a candidate
    emulator.advance(2)  # the first one is NORMAL now: the disk takes another snapshot
    again = run({"storageId": disk, "snapshotName": "nightly", "retention": {"maxAgeDays": 1}})
    assert again["results"][0]["code"] == 0 and deletes(again) == []
    assert ids(emulator, disk) == {made, again["results"][0]["snapshotId"]}


def test_a_failed_create_runs_no_janitor(emulator: Emulator, harness: RuntimeHarness) -> None:
    [disk] = emulator.add_disks(1)
    old = aged(emulator, disk, 9)
    emulator.add_fault(Fault(action="CreateSnapshot", code="InvalidDisk.NotSupported"))
    response = run({"storageId": disk, "snapshotName": "nightly", "retention": {"maxAgeDays": 1}})
    assert [r["code"] for r in response["results"]] == [16007]
    assert emulator.calls(action="DeleteSnapshots") == [] and ids(emulator, disk) == {old}
    # only the create's own idempotency lookup (newest first) listed snapshots, not the janitor (oldest first)
    assert all(c["params"]["Order"] == "DESC" for c in emulator.calls(action="DescribeSnapshots"))


def test_scope_is_the_name_just_used(emulator: Emulator, harness: RuntimeHarness) -> None:
    [disk] = emulator.add_disks(1)
    nightly = aged(emulator, disk, 3)
    predeploy = [aged(emulator, disk, days, name="pre-deploy") for days in (4, 5)]
    response = run({"storageId": disk, "snapshotName": "nightly", "retention": {"keepLast": 1}})
    assert [r["snapshotId"] for r in deletes(response)] == [nightly]
    assert set(predeploy) <= ids(emulator, disk)


# -- the rules, via prune --------------------------------------------------------------------------


def prune(disks: list[str], retention: dict[str, int], **extra: Any) -> dict[str, Any]:
    return run({"action": "prune", "disks": disks, "retention": retention, **extra})


def test_max_age_days(emulator: Emulator, harness: RuntimeHarness) -> None:
    [disk] = emulator.add_disks(1)
    young = [aged(emulator, disk, days) for days in (1, 3, 6.9)]
    old = [aged(emulator, disk, days) for days in (7.1, 10)]
    response = prune([disk], {"maxAgeDays": 7}, snapshotName="nightly")
    assert [r["snapshotId"] for r in response["results"]] == [old[1], old[0]]
    assert all(r["action"] == "delete" and r["code"] == 0 for r in response["results"])
    assert ids(emulator, disk) == set(young)
    assert emulator.calls(action="CreateSnapshot") == []


def test_both_rules_delete_the_intersection(emulator: Emulator, harness: RuntimeHarness) -> None:
    [disk] = emulator.add_disks(1)
    snaps = {days: aged(emulator, disk, days) for days in (1, 2, 3, 9, 10)}
    # keepLast 4 alone would delete the 10-day one; maxAgeDays 7 alone the 9- and 10-day ones
    response = prune([disk], {"keepLast": 4, "maxAgeDays": 7})
    assert [r["snapshotId"] for r in response["results"]] == [snaps[10]]
    assert snaps[9] in ids(emulator, disk)


def test_prune_scope_by_name_or_every_owned_snapshot(emulator: Emulator, harness: RuntimeHarness) -> None:
    d1, d2 = emulator.add_disks(2)
    n1 = aged(emulator, d1, 10)
    p1 = aged(emulator, d1, 10, name="pre-deploy")
    n2 = aged(emulator, d2, 10)
    p2 = aged(emulator, d2, 10, name="pre-deploy")
    # d1: the request's name; d2: its own entry's name
    response = run(
        {
            "action": "prune",
            "disks": [d1, {"storageId": d2, "snapshotName": "pre-deploy"}],
            "snapshotName": "nightly",
            "retention": {"maxAgeDays": 1},
        }
    )
    assert [r["snapshotId"] for r in response["results"]] == [n1, p2]
    assert ids(emulator, d1) == {p1} and ids(emulator, d2) == {n2}
    # no name at all: every owned snapshot of the disk
    again = prune([d1, d2], {"maxAgeDays": 1})
    assert [r["snapshotId"] for r in again["results"]] == [p1, n2]


def test_foreign_snapshots_are_untouched_and_unreported(emulator: Emulator, harness: RuntimeHarness) -> None:
    [disk] = emulator.add_disks(1)
    foreign = [
        aged(emulator, disk, 30, tags=None),
        aged(emulator, disk, 30, tags={OWNER_TAG: "someone-else"}),
        aged(emulator, disk, 30, tags={"cbsnap:key": "k", "team": "ops"}),
        aged(emulator, disk, 30, tags={OWNER_TAG: OWNER_VALUE.upper()}),
    ]
    mine = aged(emulator, disk, 30)
    response = prune([disk], {"keepLast": 1, "maxAgeDays": 1})
    assert response["results"] == []  # the one owned snapshot is the newest in scope: kept
    response = prune([disk], {"maxAgeDays": 1})
    assert [r["snapshotId"] for r in response["results"]] == [mine]
    assert ids(emulator, disk) == set(foreign)
    assert set(deleted_ids(emulator)) == {mine}


def test_creating_and_other_states_are_skipped_and_reported(
    slow: Emulator, slow_harness: RuntimeHarness
) -> None:
    [disk] = slow.add_disks(1)
    creating = aged(slow, disk, 10, state="CREATING")
    rolling = aged(slow, disk, 11, state="ROLLBACKING")
    normal = aged(slow, disk, 12)
    response = prune([disk], {"maxAgeDays": 1})
    by_id = {r["snapshotId"]: r for r in response["results"]}
    assert by_id[normal]["code"] == 0
    assert by_id[creating]["code"] == 16027
    assert by_id[creating]["codeDesc"] == "IncorrectInstanceStatus.CbsCreatingSnapshot"
    assert "ResourceUnavailable.SnapshotCreating" in by_id[creating]["message"]
    assert by_id[rolling]["code"] == 6000 and "ROLLBACKING" in by_id[rolling]["message"]
    assert ids(slow, disk) == {creating, rolling}
    assert deleted_ids(slow) == [normal]


def test_image_bound_snapshots_are_skipped_and_reported(emulator: Emulator, harness: RuntimeHarness) -> None:
    [disk] = emulator.add_disks(1)
    bound = aged(emulator, disk, 10, images=["img-abcdefgh"])
    free = aged(emulator, disk, 11)
    response = prune([disk], {"maxAgeDays": 1})
    by_id = {r["snapshotId"]: r for r in response["results"]}
    assert by_id[bound]["code"] == 6000
    assert "UnsupportedOperation.SnapshotHasBindedImage" in by_id[bound]["message"]
    assert by_id[free]["code"] == 0
    assert ids(emulator, disk) == {bound}
    # never even sent: a batch holding it would have failed as a whole
    assert all(bound not in c["params"]["SnapshotIds"] for c in emulator.calls(action="DeleteSnapshots"))


# -- all-or-nothing batches ------------------------------------------------------------------------


def test_a_failed_batch_falls_back_to_one_by_one(emulator: Emulator, harness: RuntimeHarness) -> None:
    [disk] = emulator.add_disks(1)
    old = [aged(emulator, disk, 10 + i) for i in range(4)]
    emulator.add_fault(Fault(action="DeleteSnapshots", code="InvalidSnapshotId.NotFound", times=1))
    response = prune([disk], {"maxAgeDays": 1})
    assert [r["code"] for r in response["results"]] == [0, 0, 0, 0]
    calls = emulator.calls(action="DeleteSnapshots")
    assert [len(c["params"]["SnapshotIds"]) for c in calls] == [4, 1, 1, 1, 1]
    assert calls[0]["error"] == "InvalidSnapshotId.NotFound" and ids(emulator, disk) == set()
    assert sorted(old) == sorted(deleted_ids(emulator))


def test_one_snapshot_gone_behind_the_janitors_back(emulator: Emulator, harness: RuntimeHarness) -> None:
    [disk] = emulator.add_disks(1)
    old = [aged(emulator, disk, 10 + i) for i in range(3)]
    janitor = janitor_for(harness, emulator)
    deadline = Deadline.after(30)
    plan = janitor.plan([DiskScope(disk, REGION, "nightly")], Retention(maxAgeDays=1), deadline)
    assert sorted(s.snapshot_id for s in plan.disks[0].to_delete) == sorted(old)
    harness.runtime.cbs(REGION).delete_snapshots([old[1]], deadline)  # someone else
    records = {r.snapshotId: r for _, r in janitor.execute(plan, deadline)}
    assert ids(emulator, disk) == set()
    assert records[old[0]].message == "" and records[old[2]].message == ""
    # the one gone meanwhile is deleted (issue 9, finding 8: it used to be a 6000), with the
    # RequestId of the call that found it gone
    assert (records[old[1]].code, records[old[1]].message) == (0, "already deleted")
    assert records[old[1]].requestId
    errors = [c["error"] for c in emulator.calls(action="DeleteSnapshots")]
    assert errors == [None, "InvalidSnapshotId.NotFound", None, "InvalidSnapshotId.NotFound", None]


def test_many_snapshots_are_paged_and_batched(slow: Emulator, slow_harness: RuntimeHarness) -> None:
    [disk] = slow.add_disks(1)
    snaps = [aged(slow, disk, 1 + i / 24) for i in range(130)]  # beyond the quota: add_snapshot ignores it
    response = prune([disk], {"keepLast": 5})
    assert len(response["results"]) == 125 and response["succeeded"] == 125
    assert ids(slow, disk) == set(snaps[:5])
    # batches run concurrently (the service's worker pool): compare sizes, not order
    assert (
        sorted(len(c["params"]["SnapshotIds"]) for c in slow.calls(action="DeleteSnapshots"))
        == [5] + [20] * 6
    )
    listing = slow.calls(action="DescribeSnapshots")
    assert [c["params"]["Offset"] for c in listing] == [0, 100]
    assert all(c["params"]["Order"] == "ASC" and c["params"]["Limit"] == 100 for c in listing)


def test_listing_failure_is_reported_per_disk_and_deletes_nothing(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    d1, d2 = emulator.add_disks(2)
    aged(emulator, d1, 10)
    aged(emulator, d2, 10)
    emulator.add_fault(Fault(action="DescribeSnapshots", code="UnauthorizedOperation"))
    response = prune([d1, d2], {"maxAgeDays": 1})
    assert [(r["storageId"], r["code"], r["snapshotId"]) for r in response["results"]] == [
        (d1, 4100, None),
        (d2, 4100, None),
    ]
    assert all(
        "UnauthorizedOperation" in r["message"] and r["action"] == "delete" for r in response["results"]
    )
    assert emulator.calls(action="DeleteSnapshots") == []


def test_out_of_time_leaves_not_attempted_records(emulator: Emulator, harness: RuntimeHarness) -> None:
    [disk] = emulator.add_disks(1)
    old = aged(emulator, disk, 10)
    janitor = janitor_for(harness, emulator)
    plan = janitor.plan([DiskScope(disk, REGION, None)], Retention(maxAgeDays=1), Deadline.after(30))
    [(_, record)] = janitor.execute(plan, Deadline.after(0))
    assert (record.snapshotId, record.code) == (old, 6000) and record.message.startswith("not attempted")
    [(_, listing)] = janitor.run([DiskScope(disk, REGION, None)], Retention(maxAgeDays=1), Deadline.after(0))
    assert listing.code == 6000 and listing.snapshotId is None
    assert emulator.calls(action="DeleteSnapshots") == [] and ids(emulator, disk) == {old}


# -- prune with a selector, dry run ----------------------------------------------------------------


def test_prune_with_a_selector_across_two_regions(emulator: Emulator, harness: RuntimeHarness) -> None:
    gz = emulator.add_disks(2, tags={"backup": "fleet"})
    sh = emulator.add_disks(1, region="ap-shanghai", tags={"backup": "fleet"})
    other = emulator.add_disks(1, tags={"backup": "never"})
    old = {d: aged(emulator, d, 10) for d in [*gz, *sh, *other]}
    keep = {d: aged(emulator, d, 1) for d in [*gz, *sh]}
    response = run(
        {
            "action": "prune",
            "selector": {"tags": {"backup": "fleet"}, "regions": ["ap-guangzhou", "ap-shanghai"]},
            "retention": {"keepLast": 1},
        }
    )
    assert sorted(r["snapshotId"] for r in response["results"]) == sorted(old[d] for d in [*gz, *sh])
    assert {r["storageId"]: r["region"] for r in response["results"]}[sh[0]] == "ap-shanghai"
    for d in [*gz, *sh]:
        assert ids(emulator, d) == {keep[d]}
    assert ids(emulator, other[0]) == {old[other[0]]}
    shanghai = [c for c in emulator.calls(action="DeleteSnapshots") if c["region"] == "ap-shanghai"]
    assert [c["params"]["SnapshotIds"] for c in shanghai] == [[old[sh[0]]]]
    assert emulator.calls(action="CreateSnapshot") == []


def test_prune_reports_unknown_disks_and_still_prunes_unsnapshottable_ones(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    emulator.add_disk("disk-recycle1", disk_state="TORECYCLE")
    old = aged(emulator, "disk-recycle1", 10)
    response = prune(["disk-recycle1", "disk-missing1"], {"maxAgeDays": 1})
    assert [(r["storageId"], r["code"], r["action"]) for r in response["results"]] == [
        ("disk-recycle1", 0, "delete"),
        ("disk-missing1", 9003, "delete"),
    ]
    assert response["results"][0]["snapshotId"] == old


def test_dry_run_makes_no_mutating_call(emulator: Emulator, harness: RuntimeHarness) -> None:
    [disk] = emulator.add_disks(1)
    old = [aged(emulator, disk, days) for days in (10, 11)]
    bound = aged(emulator, disk, 12, images=["img-abcdefgh"])
    response = prune([disk], {"maxAgeDays": 1}, dryRun=True)
    assert [(r["snapshotId"], r["code"]) for r in response["results"]] == [
        (bound, 6000),
        (old[1], 0),
        (old[0], 0),
    ]
    assert [r["message"].startswith(f"{DRY_RUN_MESSAGE}: ") for r in response["results"][1:]] == [True] * 2
    assert all(r["action"] == "delete" for r in response["results"])
    assert emulator.calls(action="DeleteSnapshots") == []
    assert emulator.calls(action="CreateSnapshot") == []
    assert ids(emulator, disk) == {*old, bound}
    # a snapshot request with retention, as a dry run: nothing created, nothing deleted
    run({"storageId": disk, "snapshotName": "nightly", "retention": {"keepLast": 1}, "dryRun": True})
    assert emulator.calls(action="DeleteSnapshots") == [] and emulator.calls(action="CreateSnapshot") == []
    assert ids(emulator, disk) == {*old, bound}


# -- randomized: mixed owners, states, images, names and ages --------------------------------------

NAMES = ("nightly", "pre-deploy", "Unnamed")
STATES = ("NORMAL",) * 6 + ("CREATING", "CREATING", "ROLLBACKING", "TORECYCLE")
OWNERS: tuple[dict[str, str] | None, ...] = (
    OWNED,
    OWNED,
    OWNED,
    None,
    {OWNER_TAG: "terraform"},
    {"cbsnap:key": "k"},
)


def oracle(
    snaps: list[dict[str, Any]], scope: DiskScope, retention: Retention, now: int
) -> tuple[set[str], set[str]]:
    """(IDs the rules select, IDs deletable among them), computed independently of cbsnap.janitor."""
    scoped = [s for s in snaps if s["owner"] == OWNED and (scope.name is None or s["name"] == scope.name)]
    # newest first: the just-made one, then by age (ages are distinct)
    scoped.sort(key=lambda s: (s["id"] not in scope.just_made, s["age"]))
    selected = set()
    for rank, s in enumerate(scoped):
        by_count = retention.keepLast is None or rank >= retention.keepLast
        by_age = retention.maxAgeDays is None or s["age"] > retention.maxAgeDays * DAY
        if by_count and by_age and s["id"] not in scope.just_made:
            selected.add(s["id"])
    deletable = {
        s["id"] for s in scoped if s["id"] in selected and s["state"] == "NORMAL" and not s["images"]
    }
    return selected, deletable


def test_randomized_never_deletes_foreign_creating_bound_or_just_made(
    slow: Emulator, slow_harness: RuntimeHarness
) -> None:
    rng = random.Random(20261128)
    now = int(slow.now)
    janitor = Janitor(slow_harness.runtime.cbs, region=REGION, wall_clock=lambda: now, batch_size=4)
    deadline = Deadline.after(120)
    for case in range(50):
        keep_last = rng.choice([None, 1, 2, 3, 5])
        max_age = rng.choice([None, 1, 3, 7]) if keep_last else rng.choice([1, 3, 7])
        retention = Retention(keepLast=keep_last, maxAgeDays=max_age)
        disks = slow.add_disks(rng.randint(1, 3), prefix=f"case{case}")
        scopes: list[DiskScope] = []
        made: dict[str, list[dict[str, Any]]] = {}
        for position, disk in enumerate(disks):
            ages = rng.sample(range(60, 12 * DAY), rng.randint(0, 14))  # distinct, 1 min to 12 days
            snaps = []
            for age in ages:
                s = {
                    "age": age,
                    "name": rng.choice(NAMES),
                    "owner": rng.choice(OWNERS),
                    "state": rng.choice(STATES),
                    "images": ["img-abcdefgh"] if rng.random() < 0.15 else [],
                }
                s["id"] = slow.add_snapshot(
                    disk,
                    state=s["state"],
                    tags=s["owner"],
                    name=s["name"],
                    created_at=now - age,
                    images=s["images"],
                )
                snaps.append(s)
            made[disk] = snaps
            name = rng.choice([*NAMES, None])
            mine = [s["id"] for s in snaps if s["owner"] == OWNED and (name is None or s["name"] == name)]
            just_made = frozenset(rng.sample(mine, 1)) if mine and rng.random() < 0.5 else frozenset()
            scopes.append(DiskScope(disk, REGION, name, position, just_made))
        slow.reset_calls()
        behind_back: set[str] = set()
        plan = janitor.plan(scopes, retention, deadline)
        planned = [s.snapshot_id for d in plan.disks for s in d.to_delete]
        if planned and rng.random() < 0.3:  # one deleted by someone else between listing and deleting
            victim = rng.choice(planned)
            slow_harness.runtime.cbs(REGION).delete_snapshots([victim], deadline)
            behind_back.add(victim)
        faulted = rng.random() < 0.3
        if faulted:  # the first DeleteSnapshots call fails (as a whole; a batch of one fails alone)
            slow.add_fault(Fault(action="DeleteSnapshots", code="InvalidParameterValue", times=1))
        records = [r for _, r in janitor.execute(plan, deadline)]
        slow.clear_faults()

        sent = {i for c in slow.calls(action="DeleteSnapshots") for i in c["params"]["SnapshotIds"]}
        for scope in scopes:
            snaps = made[scope.disk_id]
            selected, deletable = oracle(snaps, scope, retention, now)
            remaining = ids(slow, scope.disk_id)
            gone = {s["id"] for s in snaps} - remaining
            context = (
                f"case {case} disk {scope.disk_id} {retention} scope={scope.name} just={set(scope.just_made)}"
            )
            for s in snaps:
                untouchable = (
                    s["owner"] != OWNED or s["state"] != "NORMAL" or s["images"] or s["id"] in scope.just_made
                )
                if untouchable:
                    assert s["id"] in remaining, f"{context}: {s} was deleted"
                    assert s["id"] not in sent, f"{context}: {s} was sent to DeleteSnapshots"
            # everything gone was owned, NORMAL, imageless, in scope and selected by the rules
            assert gone <= deletable, f"{context}: gone {gone - deletable} not deletable"
            # one record per selected snapshot, none for anything else (foreign ones included)
            disk_records = {r.snapshotId: r for r in records if r.storageId == scope.disk_id}
            assert set(disk_records) == selected, f"{context}: records {set(disk_records)} != {selected}"
            for sid, record in disk_records.items():
                assert record.action == "delete"
                # code 0 only for what is gone; what the janitor deleted itself is code 0; one gone
                # behind its back is "already deleted" unless the injected fault answered for it
                if record.code == 0:
                    assert sid in gone, f"{context}: {record}"
                if sid in gone and sid not in behind_back:
                    assert record.code == 0, f"{context}: {record}"
                if sid in behind_back and record.code == 0:
                    assert record.message == "already deleted", f"{context}: {record}"
                if sid in deletable and sid not in gone:
                    assert "InvalidParameterValue" in record.message, f"{context}: {record}"
            if not faulted:  # nothing else stood in the way: every deletable snapshot went
                assert gone == deletable, f"{context}: gone {gone} != deletable {deletable}"
