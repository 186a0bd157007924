"""Regressions for issue 9's findings 1 to 8: ways the at-least-once pipeline lost or duplicated
snapshots. Every test goes through the handlers, the real SDK and real HTTP to the emulator.

Each test failed against the code before the fix (commit 0d88d4d, run with this file and
``answer`` inlined) and passes now; its docstring names the finding and what the old code did.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from cbsnap.runtime import set_runtime
from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator, Fault
from handlers import messages, timer
from tests.conftest import ROOT, RuntimeHarness, answer, emulator_settings, owned_snapshots, scf_context
from tests.fakes.stalling_proxy import StallingProxy

# The demo seed: ins-3xa9k2lm holds disk-g73hhs4o and disk-k2v8p4tq.
PAIR = ["disk-g73hhs4o", "disk-k2v8p4tq"]
DISK = "disk-aaaaaaa1"


def firing(document: Any, *, name: str = "nightly", time_: str = "2026-11-28T02:00:00Z") -> dict[str, Any]:
    return {"Type": "Timer", "TriggerName": name, "Time": time_, "Message": json.dumps(document)}


def ckafka(document: Any, offset: int = 42) -> dict[str, Any]:
    record = {"topic": "cbsnap-requests", "partition": 0, "offset": offset, "msgBody": json.dumps(document)}
    return {"Records": [{"Ckafka": record}]}


def answers(response: dict[str, Any]) -> list[tuple[int, str]]:
    """(code, message) of every result: what a failed assertion should show."""
    return [(r["code"], r["message"][:100]) for r in response["results"]]


def by_disk(response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["storageId"]: r for r in response["results"] if r.get("storageId")}


def redeliver_until_done(
    handler: Any, event: dict[str, Any], *, times: int = 5, pause: float = 0.0
) -> dict[str, Any]:
    """What the platform does: deliver again while the handler asks for it."""
    for _ in range(times):
        response, redelivery = answer(handler, event)
        if not redelivery:
            return response
        time.sleep(pause)
    raise AssertionError(f"still unfinished after {times} deliveries: {response}")


@pytest.fixture
def installed() -> Iterator[None]:
    """Tests that install their own runtimes leave none behind."""
    yield
    set_runtime(None)


# -- finding 1: consistent groups -----------------------------------------------------------------


def test_finding1_a_group_redelivery_that_cannot_look_does_not_create_a_second_group(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    """Finding 1 (look). Old code: the failed look-before-create (4 InternalErrors on
    DescribeSnapshots) was taken as "nothing found", CreateSnapshotGroup ran again, and the
    instance got a second group."""
    event = firing({"disks": PAIR, "consistent": True})
    first, redelivery = answer(timer.main_handler, event)
    assert not redelivery and [r["code"] for r in first["results"]] == [0, 0]
    emulator.advance(5)  # the first group is NORMAL: CBS would accept another one
    emulator.add_fault(Fault(action="DescribeSnapshots", code="InternalError", times=4))

    response, redelivery = answer(timer.main_handler, event)

    assert len(emulator.snapshot_groups()) == 1, "never create blind"
    assert redelivery and response["notAttempted"] == 2
    final = redeliver_until_done(timer.main_handler, event)
    assert [(r["snapshotId"], r["groupId"]) for r in final["results"]] == [
        (r["snapshotId"], r["groupId"]) for r in first["results"]
    ]
    assert len(emulator.calls(action="CreateSnapshotGroup")) == 1


def test_finding1_a_created_group_whose_members_cannot_be_read_is_reported_and_redelivered(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    """Finding 1 (read-back). Old code: CreateSnapshotGroup succeeded, reading its members back
    failed, and every member was reported 6000 ("group None holds no snapshot") without the group
    ID — and since nothing asked for a redelivery, nobody ever learnt the snapshots existed."""
    event = firing({"disks": PAIR, "consistent": True})
    emulator.add_fault(Fault(action="DescribeSnapshotGroups", code="InternalError"))

    response, redelivery = answer(timer.main_handler, event)

    [group] = emulator.snapshot_groups()
    assert [(r["code"], r.get("groupId")) for r in response["results"]] == [
        (0, group["SnapshotGroupId"])
    ] * 2, "a group that exists is never reported failed"
    assert redelivery and response["notAttempted"] == 2, "the members' IDs are left for a redelivery"
    emulator.clear_faults()
    final = redeliver_until_done(timer.main_handler, event)
    assert sorted(r["snapshotId"] for r in final["results"]) == sorted(group["SnapshotIdSet"])
    assert {r["groupId"] for r in final["results"]} == {group["SnapshotGroupId"]}
    assert len(emulator.snapshot_groups()) == 1


# -- finding 2: a Redis lock left behind by a killed process ----------------------------------------

_DOOMED = """
import json, sys
from handlers.messages import main_handler
main_handler(json.loads(sys.argv[1]), {"time_limit_in_ms": int(sys.argv[2]), "request_id": "doomed"})
"""


def _spawn_handler(emulator: Emulator, redis_url: str, event: dict[str, Any], limit_ms: int) -> Any:
    """The messages handler in a process of its own (an SCF instance), configured as SCF would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CBSNAP_", "TENCENTCLOUD_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "lib")]),
        CBSNAP_ENDPOINT=emulator.url,
        TENCENTCLOUD_SECRETID=DEFAULT_SECRET_ID,
        TENCENTCLOUD_SECRETKEY=DEFAULT_SECRET_KEY,
        TENCENTCLOUD_REGION="ap-guangzhou",
        CBSNAP_REDIS_URL=redis_url,
        CBSNAP_SAFETY_MARGIN_MS="500",
    )
    return subprocess.Popen(
        [sys.executable, "-c", _DOOMED, json.dumps(event), str(limit_ms)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.redis
def test_finding2_a_lock_left_by_a_killed_process_is_redelivered_and_expires_with_its_invocation(
    emulator: Emulator, redis_url: str, installed: None
) -> None:
    """Finding 2. Old code: a process SIGKILLed inside CreateSnapshot left its 30 s Redis lock;
    the retry waited for it (up to 10 s), answered 16027 and returned normally, so the platform
    never redelivered and the disk was never snapshotted (33 of 360 lost in the soak)."""
    import redis

    event = ckafka({"storageId": DISK}, offset=7)
    # The doomed process's create hangs in the cloud (and then fails without effect).
    emulator.add_fault(Fault(action="CreateSnapshot", kind="latency", latency=8.0, times=1))
    emulator.add_fault(Fault(action="CreateSnapshot", code="InternalError", times=1))
    doomed = _spawn_handler(emulator, redis_url, event, limit_ms=3000)
    try:
        give_up = time.monotonic() + 30
        while not emulator.faults_injected.get("latency"):  # it holds the lock, and it is creating
            assert doomed.poll() is None and time.monotonic() < give_up, "the doomed process did not start"
            time.sleep(0.02)
        assert redis.Redis.from_url(redis_url).keys("cbsnap:lock:*"), "it holds the disk's lock"
        os.kill(doomed.pid, signal.SIGKILL)
        killed_at = time.monotonic()
    finally:
        doomed.kill()
        doomed.wait()

    RuntimeHarness(emulator_settings(emulator, redis_url=SecretStr(redis_url)))  # another instance
    response, redelivery = answer(messages.main_handler, event, scf_context(timeout_ms=3000))

    assert redelivery, f"a disk whose lock another delivery holds must come back: {answers(response)}"
    [result] = response["results"]
    assert result["attempted"] is False and "lock" in result["message"]
    assert owned_snapshots(emulator, DISK) == []
    # The platform keeps redelivering; the lock lives as long as the killed invocation could
    # have (3 s limit less the margin, plus a 5 s grace), not 30 s.
    final = redeliver_until_done(messages.main_handler, event, times=15, pause=0.5)
    assert time.monotonic() - killed_at < 12
    [snap] = owned_snapshots(emulator, DISK)
    assert final["results"][0]["snapshotId"] == snap["SnapshotId"]


# -- finding 3: a hung Redis ---------------------------------------------------------------------------


@pytest.mark.redis
def test_finding3_a_hung_redis_costs_one_timeout_not_the_invocation(
    emulator: Emulator, redis_url: str, installed: None
) -> None:
    """Finding 3. Old code: with Redis answering after 1 s per operation, every recall, lock,
    record and pace waited for it; invocations ran far past their time limit (SCF would have
    killed them) and 40 of 60 disks were lost over 9 deliveries."""
    disks = emulator.add_disks(8)
    event = ckafka({"disks": disks, "snapshotName": "hung"}, offset=9)
    target = urlsplit(redis_url)
    limit = 4.0
    with StallingProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        proxy.delay = 1.0
        RuntimeHarness(emulator_settings(emulator, redis_url=SecretStr(proxy.url(target.path.lstrip("/")))))
        slowest = 0.0
        for _ in range(5):
            started = time.monotonic()
            response, redelivery = answer(
                messages.main_handler, event, scf_context(timeout_ms=int(limit * 1000))
            )
            slowest = max(slowest, time.monotonic() - started)
            if not redelivery:
                break
        assert proxy.stalled_chunks > 0, "Redis was hung for the whole run"
    assert slowest < limit, f"an invocation took {slowest:.2f} s of its {limit} s"
    assert not redelivery and response["succeeded"] == len(disks)
    for disk, result in by_disk(response).items():
        assert [s["SnapshotId"] for s in owned_snapshots(emulator, disk)] == [result["snapshotId"]]


# -- finding 4: a DescribeDisks blip ---------------------------------------------------------------------


def test_finding4_a_describe_disks_blip_is_not_attempted_and_redelivered(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    """Finding 4. Old code: four InternalErrors on DescribeDisks gave every disk a final 6000 and
    the handler returned normally: no redelivery, no snapshot."""
    event = ckafka({"disks": [DISK, "disk-aaaaaaa2"]}, offset=4)
    emulator.add_fault(Fault(action="DescribeDisks", code="InternalError", times=4))

    response, redelivery = answer(messages.main_handler, event)

    assert redelivery, answers(response)
    assert response["notAttempted"] == 2
    assert emulator.calls(action="CreateSnapshot") == []
    final = redeliver_until_done(messages.main_handler, event)
    assert final["succeeded"] == 2
    for disk, result in by_disk(final).items():
        assert [s["SnapshotId"] for s in owned_snapshots(emulator, disk)] == [result["snapshotId"]]


# -- finding 5: a selector resolved after the deadline ------------------------------------------------------


def test_finding5_a_selector_the_deadline_cut_short_is_not_attempted(
    emulator: Emulator, installed: None
) -> None:
    """Finding 5. Old code: when the deadline came before the selector's DescribeDisks could
    start, the selector got a 6000 with notAttempted=0 and the handler returned normally: the
    disks it would have matched were never snapshotted."""
    tagged = emulator.add_disks(3, tags={"backup": "finding5"})
    event = ckafka({"disks": [DISK], "selector": {"tags": {"backup": "finding5"}}}, offset=5)
    # One DescribeDisks every 4 s: the selector's call cannot start inside a 2.5 s deadline.
    RuntimeHarness(emulator_settings(emulator, rate_limit=0.25))

    response, redelivery = answer(messages.main_handler, event, scf_context(timeout_ms=3000))

    assert redelivery, answers(response)
    assert response["notAttempted"] == 1
    [selector] = [r for r in response["results"] if r.get("storageId") is None]
    assert selector["attempted"] is False and "selector" in selector["message"]
    RuntimeHarness(emulator_settings(emulator))  # the redelivery runs on another instance
    final = redeliver_until_done(messages.main_handler, event)
    assert final["succeeded"] == 4
    for disk in [DISK, *tagged]:
        assert len(owned_snapshots(emulator, disk)) == 1, disk


# -- finding 6: the timer never asked for a retry ---------------------------------------------------------


def test_finding6_an_unfinished_timer_run_raises_and_its_retry_adopts_and_finishes(
    emulator: Emulator, installed: None
) -> None:
    """Finding 6. Old code: a timer run the deadline cut short (30 disks, 2 calls/s, 5 s limit)
    returned normally with 19 disks "not attempted", so SCF never retried the firing."""
    disks = emulator.add_disks(10)
    event = firing({"disks": disks, "snapshotName": "nightly"}, name="finding6")
    RuntimeHarness(emulator_settings(emulator, rate_limit=2.0))

    first, redelivery = answer(timer.main_handler, event, scf_context(timeout_ms=2000))

    assert redelivery, f"SCF must retry the firing: {first['notAttempted']} disks not attempted"
    made = {r["storageId"]: r["snapshotId"] for r in first["results"] if r["code"] == 0}
    assert 0 < len(made) < len(disks) and first["notAttempted"] == len(disks) - len(made)
    RuntimeHarness(emulator_settings(emulator))  # SCF's retry: same TriggerName and Time
    again, redelivery = answer(timer.main_handler, event)
    assert not redelivery and again["succeeded"] == len(disks)
    for disk, result in by_disk(again).items():
        snaps = [s["SnapshotId"] for s in owned_snapshots(emulator, disk)]
        assert snaps == [result["snapshotId"]], disk
        if disk in made:
            assert result["snapshotId"] == made[disk], "the retry adopts what the first run made"


# -- finding 7: the deadline did not bound HTTP calls -----------------------------------------------------


def test_finding7_slow_api_calls_end_inside_the_time_limit(emulator: Emulator, installed: None) -> None:
    """Finding 7 (scaled down from 12 s latency, 10 s request timeout, 15 s limit). Old code: a
    timed-out call was retried with the full request timeout, past the deadline: the handler
    answered after 20.2 s of a 15 s limit (here: about 4 s of 3 s), so SCF killed it first."""
    emulator.set_latency(2.4)
    RuntimeHarness(emulator_settings(emulator, request_timeout=2.0, safety_margin_ms=600))
    event = firing({"storageId": DISK}, name="finding7")

    started = time.monotonic()
    response, redelivery = answer(timer.main_handler, event, scf_context(timeout_ms=3000))
    took = time.monotonic() - started

    assert took < 3.0, f"answered after {took:.2f} s of a 3 s limit"
    assert redelivery and response["notAttempted"] == 1
    emulator.set_latency(0)
    final = redeliver_until_done(timer.main_handler, event)
    assert [s["SnapshotId"] for s in owned_snapshots(emulator, DISK)] == [final["results"][0]["snapshotId"]]


# -- finding 8: the janitor and a snapshot already gone ------------------------------------------------------


def test_finding8_a_delete_answered_not_found_is_a_deletion(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    """Finding 8. Old code: DeleteSnapshots committed, its reply was lost, the retry answered
    InvalidSnapshotId.NotFound, and each snapshot that was gone was reported 6000."""
    day = 86_400
    old = [
        emulator.add_snapshot(
            DISK, name="nightly", tags={"cbsnap:owner": "cbsnap"}, created_at=int(emulator.now - age * day)
        )
        for age in (5, 4, 3)
    ]
    emulator.add_fault(Fault(action="DeleteSnapshots", kind="lost_reply", times=1))
    document = {"storageId": DISK, "snapshotName": "nightly", "action": "prune", "retention": {"keepLast": 1}}

    response, redelivery = answer(timer.main_handler, firing(document, name="finding8"))

    records = {r["snapshotId"]: r for r in response["results"]}
    assert sorted(records) == sorted(old[:2])
    assert [records[s]["code"] for s in old[:2]] == [0, 0], [r["message"] for r in records.values()]
    assert not redelivery
    assert [s["SnapshotId"] for s in emulator.snapshots(DISK)] == [old[2]]
