"""Dry run: predictions per disk with read-only calls only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cbsnap_emulator import Emulator
from tests.conftest import RuntimeHarness, run_timer

MUTATING = ("CreateSnapshot", "DeleteSnapshots", "CreateSnapshotGroup", "SendCmqMsg", "PublishCmqMsg")


def run(document: dict[str, Any]) -> dict[str, Any]:
    return run_timer(document, name="p")


def mutating_calls(emulator: Emulator) -> list[dict[str, Any]]:
    return [c for c in emulator.calls() if c["action"] in MUTATING]


def test_dry_run_predicts_every_outcome_without_mutating(emulator: Emulator, harness: RuntimeHarness) -> None:
    full = emulator.add_disk("disk-fullquot", tags={"plan": "me"})["DiskId"]
    for _ in range(64):
        emulator.add_snapshot(full)
    busy = emulator.add_disk("disk-busy0001", tags={"plan": "me"})["DiskId"]
    emulator.add_snapshot(busy, state="CREATING")
    fine = emulator.add_disk("disk-fine0001", tags={"plan": "me"})["DiskId"]
    emulator.add_disk("disk-noabil01", tags={"plan": "me"}, snapshot_ability=False)

    response = run({"selector": {"tags": {"plan": "me"}}, "dryRun": True, "disks": ["disk-zzzzzzzz", "bad"]})

    codes = {r["storageId"]: r["code"] for r in response["results"]}
    assert codes == {
        "disk-zzzzzzzz": 9003,
        "bad": 9003,
        full: 16006,
        busy: 16027,
        fine: 0,
        "disk-noabil01": 16026,
    }
    assert all(r["action"] == "plan" and r["snapshotId"] is None for r in response["results"])
    assert "would create" in next(r for r in response["results"] if r["storageId"] == fine)["message"]
    assert mutating_calls(emulator) == []


def test_dry_run_after_a_real_run_predicts_adoption(emulator: Emulator, harness: RuntimeHarness) -> None:
    real = run({"storageId": "disk-aaaaaaa1"})
    emulator.advance(5)
    emulator.reset_calls()
    planned = run({"storageId": "disk-aaaaaaa1", "dryRun": True})
    [result] = planned["results"]
    assert result["code"] == 0 and result["snapshotId"] == real["results"][0]["snapshotId"]
    assert "adopt" in result["message"]
    assert mutating_calls(emulator) == []


def test_dry_run_never_fans_out(emulator: Emulator, tmp_path: Path) -> None:
    from tests.conftest import emulator_settings

    (tmp_path / "index.py").write_text("def main_handler(event, context):\n    return {}\n", encoding="utf-8")
    emulator.add_function("cbsnap-plan", code_dir=tmp_path)
    RuntimeHarness(emulator_settings(emulator, fanout_function="cbsnap-plan", fanout_threshold=2))
    emulator.add_disks(5, tags={"many": "yes"})
    response = run({"selector": {"tags": {"many": "yes"}}, "dryRun": True})
    assert response["total"] == 5 and "fanout" not in response
    assert mutating_calls(emulator) == [] and emulator.calls(action="Invoke") == []
    # The same request for real is fanned out: the dry run did not escape fan-out by accident.
    real = run({"selector": {"tags": {"many": "yes"}}})
    assert real["fanout"]["chunks"] >= 2 and len(emulator.calls(action="Invoke")) == real["fanout"]["chunks"]
