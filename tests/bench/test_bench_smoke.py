"""The benchmark's quick mode still runs end to end (it must not rot).

Only completion and the presence of every section are checked, never the goals:
machines here are noisy, and the figures are for a person to read (bench/README.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

BENCH = ROOT / "bench" / "bench.py"
SECTIONS = (
    "== cold start ==",
    "== throughput ==",
    "== memory at size ==",
    "== deploy size ==",
    "== fleet ==",
    "== summary ==",
)


def run_bench(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CBSNAP_", "TENCENTCLOUD_"))}
    return subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_quick_mode_runs_every_section(tmp_path: Path, redis_url: str) -> None:
    out = tmp_path / "bench.json"
    proc = run_bench("--quick", "--no-download", "--json", str(out), "--fleet-redis", redis_url, timeout=420)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for header in SECTIONS:
        assert header in proc.stdout, f"{header!r} missing from:\n{proc.stdout}"
    for line in ("cpu:", "nproc:", "python:", "platform:"):
        assert line in proc.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["mode"] == "quick"
    sections = {row["section"] for row in report["rows"]}
    assert {"cold start (source tree)", "throughput", "memory at size", "deploy size"} <= sections
    measured = {row["measure"] for row in report["rows"]}
    for handler in ("timer", "messages", "webhook"):
        assert f"{handler}: import ratio to baseline" in measured
    assert any(m.startswith("speed-up over a sequential SDK loop") for m in measured)
    assert any(m.startswith("peak RSS") for m in measured)
    assert all(row["status"] in {"PASS", "MISS", "INFO", "SKIP"} for row in report["rows"])
    # The fleet's rate is for a person to judge; its losses are not: none, with and without Redis.
    clean = [r for r in report["rows"] if r["measure"].startswith("failed / lost / duplicated")]
    assert [r["section"] for r in clean] == ["fleet (without Redis)", "fleet (with Redis)"]
    assert all(r["value"] == "0 / 0 / 0; 0" for r in clean), clean


def test_deploy_section_measures_a_given_zip(tmp_path: Path) -> None:
    package = tmp_path / "pkg.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("timer.py", "x" * 1000)
        zf.writestr("cbsnap/__init__.py", "y" * 2000)
    proc = run_bench("--sections", "deploy", "--zip", str(package), "--no-download", timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "unzipped in 2 files" in proc.stdout, proc.stdout
