"""Cross-region copies (issue 13): exactly one copy per (source snapshot, region), cbsnap's own and
expiring, through retries, redeliveries, lost replies and fresh processes; failures beside the source.

Everything runs through index.main_handler against the emulator over real HTTP with TC3 signatures:
request deliveries and re-check links here (with a sleep that moves the emulator's state clock) and
in fresh processes (the emulator's function runner, in real time).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from cbsnap.cbs_time import parse_cbs_time
from cbsnap.copies import copy_name
from cbsnap.ownership import KEY_TAG, OWNER_TAG, OWNER_VALUE, SOURCE_TAG, disk_key
from cbsnap.pacing import rate_limiter_for
from cbsnap.runtime import lazy_apis, scf_module, set_runtime
from cbsnap.scf import Deadline, FunctionRef
from cbsnap_emulator import Emulator, Fault, load_seed
from handlers.index import main_handler as index_handler
from tests.conftest import DISKS, ROOT, answer, emulator_settings, scf_context
from tests.functional.test_completion_chain import REPLY, Cloud, events

FUNCTION = "cbsnap-test"
DISK = "disk-g73hhs4o"
REGIONS = ["ap-shanghai", "ap-beijing"]


def make_emulator(*, creation: float = 2.0, copying: float = 2.0) -> Emulator:
    emulator = Emulator(load_seed(None), creation_seconds=creation, copy_seconds=copying, rng_seed=13)
    for disk_id, extra in DISKS.items():
        emulator.add_disk(disk_id, **extra)
    emulator.add_queue(REPLY)
    emulator.add_function(
        FUNCTION,
        code_dir=ROOT / "handlers",
        python_path=[ROOT / "lib"],
        environment={"CBSNAP_NOTIFY_POLL": "0.3", "CBSNAP_SAFETY_MARGIN_MS": "1000"},
        # room for a fresh process's cold start on a loaded machine; a link ends as soon as
        # nothing is pending, so a long limit costs nothing when all goes well
        timeout=30,
    )
    return emulator.start()


@pytest.fixture
def emu() -> Iterator[Emulator]:
    emulator = make_emulator()
    try:
        yield emulator
    finally:
        emulator.stop()
        set_runtime(None)


def copies_in(emulator: Emulator, region: str) -> list[dict[str, Any]]:
    return [s for s in emulator.snapshots(region=region) if s.get("CopyFromRemote")]


def tags(snapshot: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in snapshot.get("Tags", [])}


def invoke_async(emulator: Emulator, document: dict[str, Any]) -> None:
    """Deliver the request as SCF does an asynchronous invocation: it runs later, in a fresh process."""
    settings = emulator_settings(emulator)
    api = lazy_apis(scf_module, settings, rate_limiter_for(0))("ap-guangzhou")
    api.invoke_async(FunctionRef(FUNCTION), json.dumps(document), Deadline.after(10))


def dr_request(**extra: Any) -> dict[str, Any]:
    return {
        "disks": [DISK],
        "snapshotName": "dr",
        "idempotencyKey": "dr-77",
        "copy": {"regions": REGIONS, "retainDays": 7},
        **extra,
    }


@pytest.mark.slow
def test_ten_deliveries_with_lost_copy_replies_leave_exactly_one_owned_expiring_copy_per_region(
    emu: Emulator,
) -> None:
    """issue 13's done-when: copy to two regions, delivered 10 times, some in fresh processes."""
    Cloud(emu, notify_poll=1.0)  # deliveries here: a runtime whose sleep moves the emulator clock
    # lost replies: both first copy calls, and one of each follow-up call (tag, expiry)
    emu.add_fault(Fault(action="CopySnapshotCrossRegions", kind="lost_reply", times=2))
    emu.add_fault(Fault(action="TagResources", kind="lost_reply", times=1))
    emu.add_fault(Fault(action="ModifySnapshotAttribute", kind="lost_reply", times=1))
    document = dr_request()

    first = index_handler(document, scf_context())  # 1: the snapshot is made, still CREATING
    [result] = first["results"]
    source = result["snapshotId"]
    assert result["code"] == 0 and result["copies"] == [
        {"region": r, "snapshotId": None, "state": "pending"} for r in REGIONS
    ]
    for _ in range(3):  # 2-4: redeliveries that SCF runs later, in fresh processes
        invoke_async(emu, document)
    # 2-4 and every chain link (delivery 1's, and theirs) in fresh processes, in real time: the
    # first copy calls lose their replies there
    runs = emu.run_pending(max_rounds=40)
    assert runs and all(run["state"] == "done" for run in runs), [r["attempts"][-1] for r in runs]
    assert emu.invocations("pending") == []
    for _ in range(6):  # 5-10: here, later: every delivery adopts the snapshot and finds its copies
        late = index_handler(document, scf_context())
        assert late["results"][0]["snapshotId"] == source
        assert [(c["region"], c["state"]) for c in late["results"][0]["copies"]] == [
            (r, "normal") for r in REGIONS
        ]
    assert emu.invocations("pending") == [], "nothing left to do: no chain is started"

    key = disk_key("key/dr-77", DISK)
    for region in REGIONS:
        [copy] = copies_in(emu, region)  # exactly one, whatever ran where
        assert copy["SnapshotName"] == copy_name(source, key) and copy["SnapshotState"] == "NORMAL"
        assert tags(copy) | {OWNER_TAG: OWNER_VALUE, KEY_TAG: key, SOURCE_TAG: source} == tags(copy)
        began = parse_cbs_time(copy["CreateTime"])
        expires = parse_cbs_time(copy["DeadlineTime"])
        assert began is not None and expires is not None and copy["IsPermanent"] is False
        assert abs((expires - began) - timedelta(days=7)) <= timedelta(minutes=1)
    assert emu.faults_injected.get("lost_reply") == 4
    # one call per region sufficed: each lost reply was answered by finding the copy by its name
    assert sorted(
        c["params"]["DestinationRegions"][0] for c in emu.calls("CopySnapshotCrossRegions")
    ) == sorted(REGIONS)


def test_a_usable_source_is_copied_at_once_and_the_chain_finishes_tagging_and_expiry(emu: Emulator) -> None:
    cloud = Cloud(emu, notify_poll=1.0)
    index_handler(dr_request(), scf_context())
    emu.advance(3)
    emu.add_fault(Fault(action="CopySnapshotCrossRegions", kind="lost_reply", times=2))
    response = index_handler(dr_request(), scf_context())  # a redelivery: the source is NORMAL
    [result] = response["results"]
    assert [(c["region"], c["state"]) for c in result["copies"]] == [(r, "copying") for r in REGIONS]
    assert all(c["snapshotId"].startswith("snap-") for c in result["copies"])
    assert emu.faults_injected.get("lost_reply") == 2, "both replies were lost: found by name"
    cloud.run_links()
    for region, ref in zip(REGIONS, result["copies"], strict=True):
        [copy] = copies_in(emu, region)
        assert copy["SnapshotId"] == ref["snapshotId"] and tags(copy)[OWNER_TAG] == OWNER_VALUE
        assert copy["DeadlineTime"]


def test_without_retain_days_copies_are_permanent_and_tagged(emu: Emulator) -> None:
    cloud = Cloud(emu, notify_poll=1.0)
    index_handler(dr_request(copy={"regions": ["ap-singapore"]}), scf_context())
    cloud.run_links()
    [copy] = copies_in(emu, "ap-singapore")
    assert copy["IsPermanent"] is True and copy["DeadlineTime"] == "" and tags(copy)[OWNER_TAG] == OWNER_VALUE
    assert emu.calls("ModifySnapshotAttribute") == []


def test_a_copy_failure_is_reported_beside_the_source_and_as_snapshot_copy_failed(emu: Emulator) -> None:
    cloud = Cloud(emu, notify_poll=1.0)
    emu.add_fault(
        Fault(action="CopySnapshotCrossRegions", code="UnsupportedOperation.SnapshotNotSupportCopy", times=99)
    )
    document = dr_request(notify="completed", replyTo={"queue": REPLY}, copy={"regions": ["ap-shanghai"]})
    response, redelivery = answer(index_handler, document)
    assert not redelivery and response["results"][0]["code"] == 0
    cloud.run_links()
    by_action = {e["action"]: e for _, e, _ in events(emu)}
    assert by_action["snapshot.completed"]["code"] == 0
    failed = by_action["snapshot.copy_failed"]
    assert failed["code"] == 16026 and failed["eventId"] == f"copy/{failed['snapshotId']}/ap-shanghai"
    assert failed["copies"][0]["state"] == "failed" and "SnapshotNotSupportCopy" in failed["message"]
    assert copies_in(emu, "ap-shanghai") == []


def test_a_conflict_with_someone_elses_running_copy_waits_then_copies_once(emu: Emulator) -> None:
    cloud = Cloud(emu, notify_poll=1.0)
    index_handler(dr_request(copy={"regions": ["ap-shanghai"]}), scf_context())
    emu.advance(3)
    [source] = [s["SnapshotId"] for s in emu.snapshots(DISK) if s["SnapshotName"] == "dr"]
    # a copy by another tool, to the same region, still running: CopySnapshotConflict for cbsnap
    cloud.runtime.cbs("ap-guangzhou").copy_snapshot(source, "ap-shanghai", "theirs", Deadline.after(10))
    cloud.run_links()
    mine = [c for c in copies_in(emu, "ap-shanghai") if c["SnapshotName"].startswith("cbsnap-copy-of-")]
    theirs = [c for c in copies_in(emu, "ap-shanghai") if c["SnapshotName"] == "theirs"]
    assert len(mine) == 1 and tags(mine[0])[OWNER_TAG] == OWNER_VALUE
    assert len(theirs) == 1 and tags(theirs[0]) == {}, "the other tool's copy is never touched"
    assert any(
        c["error"] == "ResourceInUse.CopySnapshotConflict" for c in emu.calls("CopySnapshotCrossRegions")
    )


@pytest.mark.parametrize(
    ("copy", "problem"),
    [
        ({"regions": []}, "copy.regions"),
        ({"regions": ["ap-a", "ap-b", "ap-c", "ap-d"]}, "copy.regions"),
        ({"regions": ["mars-north-1"]}, "is not a CBS region"),
        ({"regions": ["ap-shanghai", "ap-shanghai"]}, "names a region twice"),
        ({"regions": ["ap-shanghai"], "retainDays": 0}, "copy.retainDays"),
    ],
)
def test_bad_copy_fields_are_9003(emu: Emulator, copy: dict[str, Any], problem: str) -> None:
    Cloud(emu)
    [result] = index_handler({"disks": [DISK], "copy": copy}, scf_context())["results"]
    assert result["code"] == 9003 and problem in result["message"]
    same = {"disks": [DISK], "region": "ap-guangzhou", "copy": {"regions": ["ap-guangzhou"]}}
    [result] = index_handler(same, scf_context())["results"]
    assert result["code"] == 9003 and "source region" in result["message"]
    assert emu.calls("CreateSnapshot") == []


def test_copy_travels_in_fan_out_chunks(emu: Emulator) -> None:
    cloud = Cloud(emu, fanout_threshold=1, fanout_chunk=1, notify_poll=1.0)
    document = {
        "disks": ["disk-aaaaaaa1", "disk-aaaaaaa2"],
        "copy": {"regions": ["ap-tokyo"], "retainDays": 3},
    }
    index_handler(document, scf_context())
    chunks = [json.loads(i["event"]) for i in emu.invocations("pending")]
    assert [c["request"]["copy"] for c in chunks] == [{"regions": ["ap-tokyo"], "retainDays": 3}] * 2
    emu.advance(3)
    cloud.run_links()
    assert len(copies_in(emu, "ap-tokyo")) == 2


def test_a_dry_run_lists_the_copies_it_would_make_and_mutates_nothing(emu: Emulator) -> None:
    Cloud(emu)
    response = index_handler(dr_request(dryRun=True), scf_context())
    [result] = response["results"]
    assert result["action"] == "plan" and result["copies"] == [
        {"region": r, "snapshotId": None, "state": "planned"} for r in REGIONS
    ]
    assert "would copy to ap-shanghai, ap-beijing" in result["message"]
    mutating = ("CreateSnapshot", "CopySnapshotCrossRegions", "TagResources", "ModifySnapshotAttribute")
    assert [c for c in emu.calls() if c["action"] in mutating] == [] and emu.invocations() == []


def test_copies_of_a_source_not_usable_by_the_give_up_time_fail_beside_its_timeout(emu: Emulator) -> None:
    cloud = Cloud(emu, notify_poll=1.0, notify_max_wait=1)  # the source takes 2 s to be usable
    document = dr_request(notify="completed", replyTo={"queue": REPLY})
    index_handler(document, scf_context())
    cloud.run_links()
    got = sorted((e["action"], (e.get("copies") or [{}])[0].get("region")) for _, e, _ in events(emu))
    assert got == [
        ("snapshot.copy_failed", "ap-beijing"),
        ("snapshot.copy_failed", "ap-shanghai"),
        ("snapshot.timeout", None),
    ]
    assert all("gave up at" in e["message"] for _, e, _ in events(emu))
    assert copies_in(emu, "ap-shanghai") == [] and copies_in(emu, "ap-beijing") == []
