"""The cbsnap command in a fresh process, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), str(ROOT)])}
    for name in ("CBSNAP_ENDPOINT", "TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "cbsnap_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
        check=False,
    )


def test_invoke_timer_against_an_embedded_emulator() -> None:
    proc = run_cli("invoke", "timer", "--event", "events/timer-seed-example.json", "--emulator")
    assert proc.returncode == 0, proc.stderr
    response = json.loads(proc.stdout)
    [result] = response["results"]
    assert result["code"] == 0 and result["message"] == "" and result["snapshotId"].startswith("snap-")
    # the structured log records went to stderr: one per disk, then the invocation's metrics line
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert [r["result"]["snapshotId"] for r in records if "result" in r] == [result["snapshotId"]]
    assert records[-1]["type"] == "cbsnap.metrics" and records[-1]["created"] == 1


def test_demo_runs_end_to_end() -> None:
    proc = run_cli("demo", "--creation-seconds", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "3 of 5 disks snapshotted" in out
    assert "All snapshots are NORMAL." in out
    assert "[##############################] 100%" in out
    assert "16026" in out and "9003" in out


def test_invoke_without_credentials_reports_instead_of_crashing() -> None:
    proc = run_cli("invoke", "timer", "--event", "events/timer-seed-example.json")
    assert proc.returncode == 0, proc.stderr
    [result] = json.loads(proc.stdout)["results"]
    assert result["code"] == 6000 and "no API credentials" in result["message"]
