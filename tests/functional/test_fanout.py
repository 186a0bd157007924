"""Fan-out: a 1,000-disk selector split into chunks on the work queue and
snapshotted by the message handler, end to end on this machine."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from cbsnap.fanout import chunk_key
from cbsnap_emulator import Emulator
from cbsnap_emulator.runner import drain
from handlers.messages import main_handler as messages_handler
from handlers.timer import main_handler as timer_handler
from tests.conftest import RuntimeHarness, answer, emulator_settings, scf_context


def firing(document: dict[str, Any], time_: str = "2026-11-28T02:00:00Z") -> dict[str, Any]:
    return {"Type": "Timer", "TriggerName": "fleet", "Time": time_, "Message": json.dumps(document)}


def owned_keys(emulator: Emulator) -> Counter[str]:
    """How many cbsnap snapshots each disk has."""
    counts: Counter[str] = Counter()
    for snap in emulator.snapshots():
        if any(t["Key"] == "cbsnap:owner" for t in snap.get("Tags") or []):
            counts[snap["DiskId"]] += 1
    return counts


@pytest.fixture
def fleet(emulator: Emulator) -> tuple[list[str], list[str]]:
    emulator.set_rate_limit(0)  # speed, not pacing, is under test here
    gz = emulator.add_disks(600, tags={"backup": "fleet"})
    sh = emulator.add_disks(400, region="ap-shanghai", tags={"backup": "fleet"})
    return gz, sh


SELECTOR = {"selector": {"tags": {"backup": "fleet"}, "regions": ["ap-guangzhou", "ap-shanghai"]}}


@pytest.mark.slow
def test_thousand_disk_selector_through_fanout_and_the_message_handler(
    emulator: Emulator, fleet: tuple[list[str], list[str]]
) -> None:
    gz, sh = fleet
    RuntimeHarness(emulator_settings(emulator, fanout_queue="cbsnap-work", rate_limit=0, concurrency=16))

    parent = timer_handler(firing(SELECTOR), scf_context(timeout_ms=60_000))

    assert parent["chunks"] == 10 and parent["fanout"]["dispatched"] == 1000
    assert emulator.calls(action="CreateSnapshot") == [], "the parent only dispatches"
    envelopes = [json.loads(m["MsgContent"]) for m in emulator.messages(queue="cbsnap-work")]
    chunks = [e["request"] for e in envelopes]
    assert sorted(len(c["disks"]) for c in chunks) == [100] * 10
    assert {c["region"] for c in chunks} == {"ap-guangzhou", "ap-shanghai"}
    assert {c["idempotencyKey"] for c in chunks} == {chunk_key(parent["requestKey"])}
    # each chunk is the caller's own request (the selector's words are gone, the disks are its own)
    assert all(set(c) == {"disks", "region", "idempotencyKey"} for c in chunks)
    infos = [e["cbsnapChunk"] for e in envelopes]
    assert {i["parentKey"] for i in infos} == {parent["requestKey"]} and {i["trigger"] for i in infos} == {
        "timer"
    }
    assert sorted(i["index"] for i in infos) == list(range(1, 11)) and {i["of"] for i in infos} == {10}

    report = drain(
        lambda n: emulator.receive("cbsnap-work", n), messages_handler, queue="cbsnap-work", batch=1
    )

    results = report.results()
    assert len(results) == 1000 and all(r["code"] == 0 for r in results)
    counts = owned_keys(emulator)
    assert set(counts) == set(gz) | set(sh) and set(counts.values()) == {1}


@pytest.mark.slow
def test_redelivered_parent_and_chunks_create_nothing_new(
    emulator: Emulator, fleet: tuple[list[str], list[str]]
) -> None:
    RuntimeHarness(emulator_settings(emulator, fanout_queue="cbsnap-work", rate_limit=0, concurrency=16))
    timer_handler(firing(SELECTOR), scf_context(timeout_ms=60_000))
    drain(lambda n: emulator.receive("cbsnap-work", n), messages_handler, queue="cbsnap-work")
    emulator.advance(5)
    emulator.reset_calls()

    timer_handler(firing(SELECTOR), scf_context(timeout_ms=60_000))  # the parent again (SCF retry)
    report = drain(lambda n: emulator.receive("cbsnap-work", n), messages_handler, queue="cbsnap-work")

    assert len(report.results()) == 1000 and all(r["code"] == 0 for r in report.results())
    assert emulator.calls(action="CreateSnapshot") == []
    assert set(owned_keys(emulator).values()) == {1}


def test_under_the_threshold_runs_inline(emulator: Emulator) -> None:
    RuntimeHarness(emulator_settings(emulator, fanout_queue="cbsnap-work", fanout_threshold=5))
    disks = emulator.add_disks(5, tags={"small": "yes"})
    response = timer_handler(firing({"selector": {"tags": {"small": "yes"}}}), scf_context())
    assert response["succeeded"] == 5 and "chunks" not in response
    assert emulator.messages(queue="cbsnap-work") == []
    assert sorted(r["storageId"] for r in response["results"]) == sorted(disks)


def test_unsendable_chunks_leave_disks_not_attempted(emulator: Emulator) -> None:
    RuntimeHarness(emulator_settings(emulator, fanout_queue="no-such-queue", fanout_threshold=2))
    emulator.add_disks(5, tags={"few": "yes"})
    response, redelivery = answer(timer_handler, firing({"selector": {"tags": {"few": "yes"}}}))
    assert redelivery, "the parent is retried, so its unsent chunks are sent again"
    assert response["chunks"] == 0 and response["fanout"]["chunksFailed"] == 3
    assert response["notAttempted"] == 5
    assert all(r["code"] == 6000 and "ResourceNotFound" in r["message"] for r in response["results"])
