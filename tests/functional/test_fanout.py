"""Fan-out by asynchronous self-invocation: a request over the threshold is split into chunks,
each handed on with SCF's ``Invoke`` (``InvocationType=Event``) to the running function, and each
chunk arrives at ``index.main_handler`` as its own event. Against the emulator's SCF, over real
HTTP with the real SDK; chunk runs happen in fresh processes (``emulator.run_pending``) or, to
replay one, in this process.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from cbsnap.fanout import chunk_key
from cbsnap_emulator import Emulator
from handlers.index import main_handler as index_handler
from handlers.timer import main_handler as timer_handler
from tests.conftest import ROOT, RuntimeHarness, answer, emulator_settings, scf_context

FUNCTION = "cbsnap-test"  # the function name in tests.conftest.scf_context


def firing(document: dict[str, Any], time_: str = "2026-11-28T02:00:00Z") -> dict[str, Any]:
    return {"Type": "Timer", "TriggerName": "fleet", "Time": time_, "Message": json.dumps(document)}


def owned_counts(emulator: Emulator) -> Counter[str]:
    """How many cbsnap snapshots each disk has."""
    counts: Counter[str] = Counter()
    for snap in emulator.snapshots():
        if any(t["Key"] == "cbsnap:owner" for t in snap.get("Tags") or []):
            counts[snap["DiskId"]] += 1
    return counts


def register(emulator: Emulator, **environment: str) -> None:
    """The function the chunks are invoked on: this repository's handlers, run in fresh processes."""
    emulator.add_function(
        FUNCTION,
        code_dir=ROOT / "handlers",
        python_path=[ROOT / "lib"],
        environment={"CBSNAP_RATE_LIMIT": "0", "CBSNAP_SAFETY_MARGIN_MS": "1000", **environment},
        timeout=60,
    )


SELECTOR = {"selector": {"tags": {"backup": "fleet"}, "regions": ["ap-guangzhou", "ap-shanghai"]}}


@pytest.fixture
def fleet(emulator: Emulator) -> tuple[list[str], list[str]]:
    emulator.set_rate_limit(0)  # the split, not pacing, is under test here
    gz = emulator.add_disks(250, tags={"backup": "fleet"})
    sh = emulator.add_disks(200, region="ap-shanghai", tags={"backup": "fleet"})
    register(emulator)
    return gz, sh


@pytest.mark.slow
def test_a_450_disk_request_is_handed_on_in_chunks_and_each_disk_is_snapshotted_once(
    emulator: Emulator, fleet: tuple[list[str], list[str]]
) -> None:
    gz, sh = fleet
    RuntimeHarness(emulator_settings(emulator, rate_limit=0, fanout_threshold=200, fanout_chunk=100))

    parent = timer_handler(firing(SELECTOR), scf_context(timeout_ms=60_000))

    # The parent only hands on: Invoke calls, no CreateSnapshot, no CMQ message.
    assert emulator.calls(action="CreateSnapshot") == [] and emulator.calls(service="tdmq") == []
    invokes = emulator.calls(action="Invoke")
    assert len(invokes) == 5 and all(
        c["error"] is None for c in invokes
    )  # 3 in ap-guangzhou, 2 in ap-shanghai
    assert parent["chunks"] == 5 and parent["fanout"]["dispatched"] == 450
    pending = emulator.invocations("pending")
    assert sorted(parent["fanout"]["ids"]) == sorted(p["requestId"] for p in pending)
    envelopes = [json.loads(p["event"]) for p in pending]
    assert {e["request"]["idempotencyKey"] for e in envelopes} == {chunk_key(parent["requestKey"])}
    assert Counter(e["cbsnapChunk"]["region"] for e in envelopes) == {"ap-guangzhou": 3, "ap-shanghai": 2}
    assert all(p["functionName"] == FUNCTION and p["invocationType"] == "Event" for p in pending)

    runs = emulator.run_pending()  # each chunk in a fresh process, through index.main_handler

    assert [r["state"] for r in runs] == ["done"] * 5, [r["attempts"][-1] for r in runs]
    counts = owned_counts(emulator)
    assert set(counts) == set(gz) | set(sh) and set(counts.values()) == {1}
    answered = [r for run in runs for r in run["attempts"][-1]["result"]["results"]]
    assert len(answered) == 450 and all(r["code"] == 0 for r in answered)

    # Any chunk run twice more (SCF's async retries, a lost Invoke reply) adds nothing.
    emulator.advance(5)
    emulator.reset_calls()
    RuntimeHarness(emulator_settings(emulator, rate_limit=0))
    for envelope in envelopes[:2]:
        for _ in range(2):
            again = index_handler(envelope, scf_context(timeout_ms=60_000))
            assert again["succeeded"] == again["total"] == len(envelope["request"]["disks"])
    assert emulator.calls(action="CreateSnapshot") == []
    assert set(owned_counts(emulator).values()) == {1}


@pytest.mark.slow
def test_a_retried_parent_hands_on_the_same_chunks_and_nothing_is_snapshotted_twice(
    emulator: Emulator, fleet: tuple[list[str], list[str]]
) -> None:
    RuntimeHarness(emulator_settings(emulator, rate_limit=0))  # default threshold and chunk size
    first = timer_handler(firing(SELECTOR), scf_context(timeout_ms=60_000))
    emulator.run_pending()
    timer_handler(firing(SELECTOR), scf_context(timeout_ms=60_000))  # SCF retries the parent
    emulator.reset_calls()
    runs = emulator.run_pending()
    assert first["chunks"] >= 2 and len(runs) == first["chunks"]
    assert emulator.calls(action="CreateSnapshot") == []
    assert set(owned_counts(emulator).values()) == {1}


def test_under_the_threshold_runs_inline(emulator: Emulator) -> None:
    register(emulator)
    RuntimeHarness(emulator_settings(emulator, fanout_threshold=5))
    disks = emulator.add_disks(5, tags={"small": "yes"})
    response = timer_handler(firing({"selector": {"tags": {"small": "yes"}}}), scf_context())
    assert response["succeeded"] == 5 and "chunks" not in response
    assert emulator.calls(action="Invoke") == []
    assert sorted(r["storageId"] for r in response["results"]) == sorted(disks)


def test_chunks_that_cannot_be_handed_on_leave_their_disks_not_attempted(emulator: Emulator) -> None:
    # no function registered: Invoke answers ResourceNotFound.Function
    RuntimeHarness(emulator_settings(emulator, fanout_threshold=2))
    emulator.add_disks(5, tags={"few": "yes"})
    response, redelivery = answer(timer_handler, firing({"selector": {"tags": {"few": "yes"}}}))
    assert redelivery, "the parent is retried, so its chunks are handed on again"
    assert response["chunks"] == 0 and response["fanout"]["chunksFailed"] == 3
    assert response["notAttempted"] == 5
    assert all(r["code"] == 6000 and "ResourceNotFound" in r["message"] for r in response["results"])
    assert emulator.calls(action="CreateSnapshot") == []


def test_outside_scf_without_a_function_name_a_large_request_runs_whole(emulator: Emulator) -> None:
    RuntimeHarness(emulator_settings(emulator, fanout_threshold=2))
    emulator.add_disks(3, tags={"local": "yes"})
    context = {k: v for k, v in scf_context().items() if k != "function_name"}
    response = timer_handler(firing({"selector": {"tags": {"local": "yes"}}}), context)
    assert response["succeeded"] == 3 and emulator.calls(action="Invoke") == []


def test_chunks_carry_the_callers_own_options_and_their_share_of_the_rate(emulator: Emulator) -> None:
    register(emulator)
    RuntimeHarness(emulator_settings(emulator, rate_limit=20.0, fanout_threshold=2, fanout_chunk=2))
    emulator.add_disks(5, tags={"share": "yes"})
    document = {
        "selector": {"tags": {"share": "yes"}},
        "snapshotName": "shared",
        "retainDays": 7,
        "correlation": {"run": "r1"},
    }
    timer_handler(firing(document), scf_context())
    envelopes = [json.loads(p["event"]) for p in emulator.invocations("pending")]
    assert len(envelopes) == 3
    for envelope in envelopes:
        request = envelope["request"]
        assert {k for k in request if k != "disks"} == {
            "snapshotName",
            "retainDays",
            "correlation",
            "region",
            "idempotencyKey",
        }
        assert envelope["cbsnapChunk"]["rate"] == pytest.approx(20.0 / 3)
        assert envelope["cbsnapChunk"]["trigger"] == "timer"
    # The three chunks of the region start their paces 1/20 s apart: no burst of first calls.
    phases = sorted(e["cbsnapChunk"]["phase"] for e in envelopes)
    assert phases == pytest.approx([0.0, 0.05, 0.10])


def test_a_chunk_paces_to_its_share(emulator: Emulator) -> None:
    register(emulator)
    RuntimeHarness(emulator_settings(emulator, rate_limit=20.0, fanout_threshold=4, fanout_chunk=4))
    emulator.set_rate_limit(0)
    emulator.add_disks(8, tags={"paced": "yes"})
    timer_handler(firing({"selector": {"tags": {"paced": "yes"}}}), scf_context())
    [first, _second] = [json.loads(p["event"]) for p in emulator.invocations("pending")]
    assert first["cbsnapChunk"]["rate"] == pytest.approx(10.0)
    emulator.reset_calls()
    index_handler(first, scf_context())
    times = sorted(c["time"] for c in emulator.calls(action="CreateSnapshot"))
    # 4 creates at 10/s are spaced 0.1 s apart (the configured 20/s would be 0.05 s)
    assert len(times) == 4 and times[-1] - times[0] >= 3 * 0.1 * 0.9
