"""At-least-once safety: one snapshot per request and disk through retries,
redeliveries and lost replies — with and without Redis."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import pytest
from pydantic import SecretStr

from cbsnap.ownership import KEY_TAG, disk_key
from cbsnap.runtime import Runtime
from cbsnap.sinks import RequestMeta
from cbsnap_emulator import Emulator, Fault
from handlers.timer import main_handler
from tests.conftest import RuntimeHarness, emulator_settings, owned_snapshots, scf_context


def firing(document: Any, *, time_: str = "2026-11-28T02:00:00Z", name: str = "nightly") -> dict[str, Any]:
    return {"Type": "Timer", "TriggerName": name, "Time": time_, "Message": json.dumps(document)}


def contract(response: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The seed contract's fields of every result (RequestIds differ between calls)."""
    return [
        (r["storageId"], r["snapshotName"], r["code"], r["message"], r["snapshotId"])
        for r in response["results"]
    ]


def creates(emulator: Emulator) -> list[dict[str, Any]]:
    return emulator.calls(action="CreateSnapshot")


DISKS = ["disk-g73hhs4o", "disk-q7m3x9ab", "disk-w9f4h1sz"]


def test_retried_firing_creates_nothing_new_and_the_next_firing_does(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    first = main_handler(firing({"disks": DISKS}), scf_context())
    emulator.advance(5)  # the snapshots finished
    emulator.reset_calls()

    retried = main_handler(firing({"disks": DISKS}), scf_context())  # SCF retries keep Time

    assert contract(retried) == contract(first), "a retry answers with the same snapshot IDs"
    assert creates(emulator) == []
    assert len(emulator.calls(action="DescribeSnapshots")) == 1, "3 disks: one lookup call"
    assert all(len(owned_snapshots(emulator, d)) == 1 for d in DISKS)
    assert any(r.get("adopted") for r in harness.log_records() if "result" in r)

    nxt = main_handler(firing({"disks": DISKS}, time_="2026-11-29T02:00:00Z"), scf_context())
    assert all(r["code"] == 0 for r in nxt["results"])
    assert {r["snapshotId"] for r in nxt["results"]}.isdisjoint({r["snapshotId"] for r in first["results"]})
    assert all(len(owned_snapshots(emulator, d)) == 2 for d in DISKS)


def test_retry_while_the_first_snapshot_is_still_creating_adopts_it(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    first = main_handler(firing({"storageId": "disk-g73hhs4o"}), scf_context())
    again = main_handler(firing({"storageId": "disk-g73hhs4o"}), scf_context())  # still CREATING
    assert again["results"][0]["snapshotId"] == first["results"][0]["snapshotId"]
    assert len(creates(emulator)) == 1


def test_explicit_idempotency_key_spans_firings_and_triggers(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    doc = {"storageId": "disk-g73hhs4o", "idempotencyKey": "deploy-1234"}
    a = main_handler(firing(doc, time_="2026-11-28T02:00:00Z"), scf_context())
    emulator.advance(5)
    b = main_handler(firing(doc, time_="2026-11-28T03:00:00Z", name="other"), scf_context())
    assert a["requestKey"] == b["requestKey"] == "key/deploy-1234"
    assert a["results"][0]["snapshotId"] == b["results"][0]["snapshotId"]
    [snap] = owned_snapshots(emulator, "disk-g73hhs4o")
    tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
    assert tags[KEY_TAG] == disk_key("key/deploy-1234", "disk-g73hhs4o")


def test_lookup_batches_ten_disks_per_call_and_pages_to_the_horizon(emulator: Emulator) -> None:
    harness = RuntimeHarness(emulator_settings(emulator, retry_horizon_hours=1.0))
    disks = emulator.add_disks(25)
    # An old history on one disk: 150 foreign snapshots well past the horizon. The
    # first page (100, newest first) is already older than the horizon, so paging stops.
    for _ in range(150):
        emulator.add_snapshot(disks[0], created_at="2020-01-01 00:00:00")
    main_handler(firing({"disks": disks}), scf_context())
    lookups = emulator.calls(action="DescribeSnapshots")
    assert sorted(len(c["params"]["Filters"][0]["Values"]) for c in lookups) == [5, 10, 10]
    assert all(c["params"].get("Order") == "DESC" for c in lookups)
    assert harness.log_records()


def test_lookup_pages_until_it_finds_the_key(emulator: Emulator, harness: RuntimeHarness) -> None:
    first = main_handler(firing({"storageId": "disk-aaaaaaa1"}), scf_context())
    emulator.advance(5)
    # 150 newer foreign snapshots push ours off the first page (quota raised for the test).
    for _ in range(150):
        emulator.add_snapshot("disk-aaaaaaa1")
    emulator.reset_calls()
    again = main_handler(firing({"storageId": "disk-aaaaaaa1"}), scf_context())
    assert again["results"][0]["snapshotId"] == first["results"][0]["snapshotId"]
    assert creates(emulator) == []
    assert len(emulator.calls(action="DescribeSnapshots")) == 2


def test_sixty_disks_under_twenty_per_second_all_succeed_in_seconds(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    emulator.set_rate_limit(20)
    disks = emulator.add_disks(60)
    started = time.monotonic()
    response = main_handler(firing({"disks": disks}), scf_context(timeout_ms=60_000))
    elapsed = time.monotonic() - started
    assert response["succeeded"] == 60
    assert elapsed < 10, f"took {elapsed:.1f}s"
    assert not [c for c in emulator.calls() if c["error"] == "RequestLimitExceeded"]


def test_throttling_from_the_emulator_limit_is_retried_not_reported(emulator: Emulator) -> None:
    # cbsnap paces at 50/s but the API only allows 10/s: throttles happen and are retried.
    RuntimeHarness(emulator_settings(emulator, rate_limit=50.0))
    emulator.set_rate_limit(10)
    disks = emulator.add_disks(20)
    response = main_handler(firing({"disks": disks}), scf_context(timeout_ms=60_000))
    assert response["succeeded"] == 20
    assert [c for c in emulator.calls() if c["error"] == "RequestLimitExceeded"]


# -- Redis --------------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_ledger_answers_a_redelivery_without_describe_calls(emulator: Emulator, redis_url: str) -> None:
    RuntimeHarness(emulator_settings(emulator, redis_url=SecretStr(redis_url)))
    first = main_handler(firing({"disks": DISKS}), scf_context())
    emulator.advance(5)
    emulator.reset_calls()
    RuntimeHarness(emulator_settings(emulator, redis_url=SecretStr(redis_url)))  # a fresh instance
    again = main_handler(firing({"disks": DISKS}), scf_context())
    assert contract(again) == contract(first)
    assert emulator.calls(action="CreateSnapshot") == []
    assert emulator.calls(action="DescribeSnapshots") == []


@pytest.mark.redis
def test_redis_lock_serialises_concurrent_deliveries(emulator: Emulator, redis_url: str) -> None:
    # Snapshots finish instantly, so CBS's one-at-a-time rule cannot stop a race:
    # only the per-disk lock does.
    emulator.add_fault(Fault(action="CreateSnapshot", kind="latency", latency=0.3))
    settings = emulator_settings(emulator, redis_url=SecretStr(redis_url))
    responses: list[dict[str, Any]] = []

    def deliver() -> None:
        responses.append(main_handler(firing({"storageId": "disk-aaaaaaa2"}), scf_context()))

    RuntimeHarness(settings)
    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(creates(emulator)) == 1
    assert len({r["results"][0]["snapshotId"] for r in responses}) == 1
    assert len(owned_snapshots(emulator, "disk-aaaaaaa2")) == 1


@pytest.mark.redis
def test_redis_rate_limit_is_shared_between_instances(emulator: Emulator, redis_url: str) -> None:
    emulator.set_rate_limit(20)
    disks = emulator.add_disks(40)
    settings = emulator_settings(emulator, redis_url=SecretStr(redis_url), rate_limit=20.0)
    halves = [disks[:20], disks[20:]]
    out: list[dict[str, Any]] = []

    def instance(part: list[str]) -> None:
        # each thread plays a separate function instance with its own runtime
        runtime = Runtime.from_settings(settings, stream=io.StringIO())
        deadline = runtime.begin_invocation(scf_context(timeout_ms=60_000))
        meta = RequestMeta(trigger="timer", request_key=f"r/{part[0]}")
        out.append(runtime.pipeline.run({"disks": part}, meta, deadline).summary())

    threads = [threading.Thread(target=instance, args=(h,)) for h in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [o["succeeded"] for o in out] == [20, 20]
    assert not [c for c in emulator.calls() if c["error"] == "RequestLimitExceeded"]
    # One shared pace: 40 creates from two instances are spaced like one 20/s caller
    # (two independent 20/s pacers would finish in half the time).
    times = sorted(c["time"] for c in creates(emulator))
    assert times[-1] - times[0] >= 39 * 0.05 * 0.9


@pytest.mark.redis
def test_redis_down_degrades_to_tag_lookups(emulator: Emulator) -> None:
    dead = "redis://127.0.0.1:1/0"
    RuntimeHarness(emulator_settings(emulator, redis_url=SecretStr(dead)))
    first = main_handler(firing({"storageId": "disk-g73hhs4o"}), scf_context())
    again = main_handler(firing({"storageId": "disk-g73hhs4o"}), scf_context())
    assert first["results"][0]["code"] == 0
    assert again["results"][0]["snapshotId"] == first["results"][0]["snapshotId"]
    assert len(creates(emulator)) == 1


@pytest.mark.slow
def test_a_create_delayed_past_the_fresh_look_window_looks_again(emulator: Emulator) -> None:
    # Two deliveries of one request race without Redis. B looks first, then its pacer
    # holds its create of disk-aaaaaaa2 for 2.5 s; meanwhile A creates that disk's snapshot,
    # which finishes (so CBS's one-CREATING-snapshot rule no longer protects it). B's look is
    # stale by then (> FRESH_LOOK_SECONDS): it must look again and adopt A's snapshot.
    emu = emulator
    from cbsnap.snapshots import FRESH_LOOK_SECONDS

    assert FRESH_LOOK_SECONDS < 2.5
    event = firing({"disks": ["disk-aaaaaaa1", "disk-aaaaaaa2"]})
    b_runtime = Runtime.from_settings(emulator_settings(emu, rate_limit=0.4), stream=io.StringIO())
    a_runtime = Runtime.from_settings(emulator_settings(emu, rate_limit=0.0), stream=io.StringIO())
    meta = RequestMeta(trigger="timer", request_key="timer/nightly/2026-11-28T02:00:00Z")
    out: dict[str, Any] = {}

    def deliver_b() -> None:
        deadline = b_runtime.begin_invocation(scf_context(timeout_ms=30_000))
        out["b"] = b_runtime.pipeline.run(json.loads(event["Message"]), meta, deadline)

    thread = threading.Thread(target=deliver_b)
    thread.start()
    time.sleep(0.5)  # B has looked, created disk-aaaaaaa1 and waits for its next CreateSnapshot slot
    a = a_runtime.pipeline.run({"disks": ["disk-aaaaaaa2"]}, meta, a_runtime.begin_invocation(scf_context()))
    emu.advance(5)  # A's snapshot is NORMAL: a second create would now succeed
    thread.join()

    [mine] = owned_snapshots(emu, "disk-aaaaaaa2")
    assert a.results[0].snapshotId == mine["SnapshotId"]
    b_result = next(r for r in out["b"].results if r.storageId == "disk-aaaaaaa2")
    assert b_result.code == 0 and b_result.snapshotId == mine["SnapshotId"]
    creates = [c for c in emu.calls(action="CreateSnapshot") if c["params"]["DiskId"] == "disk-aaaaaaa2"]
    assert len(creates) == 1


def _deliver_in_a_fresh_process(emulator: Emulator, event: dict[str, Any]) -> dict[str, Any]:
    """One SCF-like cold start: a new interpreter, configured only through the environment."""
    import os
    import subprocess
    import sys

    from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY
    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CBSNAP_", "TENCENTCLOUD_"))}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), str(ROOT)]),
            "CBSNAP_ENDPOINT": emulator.url,
            "TENCENTCLOUD_SECRETID": DEFAULT_SECRET_ID,
            "TENCENTCLOUD_SECRETKEY": DEFAULT_SECRET_KEY,
            "TENCENTCLOUD_REGION": "ap-guangzhou",
        }
    )
    script = (
        "import json, sys\n"
        "from handlers.messages import main_handler\n"
        "answer = main_handler(json.load(sys.stdin), {'time_limit_in_ms': 30000, 'request_id': 'r'})\n"
        "sys.stderr.flush()\n"
        "print('ANSWER ' + json.dumps(answer))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    [line] = [x for x in proc.stdout.splitlines() if x.startswith("ANSWER ")]
    answer: dict[str, Any] = json.loads(line.removeprefix("ANSWER "))
    return answer


def test_a_queue_message_redelivered_to_a_fresh_process_returns_the_same_snapshots(
    emulator: Emulator,
) -> None:
    from tests.conftest import SAMPLE_REQUESTS, ckafka_event

    event = ckafka_event(*SAMPLE_REQUESTS)  # DISKS, over two messages
    first = _deliver_in_a_fresh_process(emulator, event)
    assert first["results"] and all(r["code"] == 0 for r in first["results"])
    emulator.advance(5)  # the snapshots finished; CBS would now accept a second one
    emulator.reset_calls()

    again = _deliver_in_a_fresh_process(emulator, event)

    assert contract(again) == contract(first)
    assert emulator.calls(action="CreateSnapshot") == []
    for result in first["results"]:
        assert len(owned_snapshots(emulator, result["storageId"])) == 1
