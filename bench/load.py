"""Throughput against a rate-limited, slow API, and memory and speed at size.

Both run the real timer handler in a fresh child process (``child.py``) against the
emulator in another process (``emuproc.py``); every run gets fresh disks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import LIB, MB, Row, clean_env, median, verdict
from emuproc import EmulatorProcess

CHILD = Path(__file__).resolve().with_name("child.py")
API_RATE = 20.0  # Tencent's documented limit for the snapshot actions, and cbsnap's default pace
API_LATENCY = 0.2


def _credentials() -> dict[str, str]:
    if str(LIB) not in sys.path:
        sys.path.insert(0, str(LIB))
    from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY

    return {"TENCENTCLOUD_SECRETID": DEFAULT_SECRET_ID, "TENCENTCLOUD_SECRETKEY": DEFAULT_SECRET_KEY}


@dataclass
class Run:
    """One child run and what the emulator saw of it."""

    label: str
    figures: dict[str, Any]
    creates: int = 0
    create_rate: float = float("nan")
    throttled: int = 0
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def wall(self) -> float:
        return float(self.figures["wall_s"])

    @property
    def failed(self) -> int:
        return int(self.figures["failed"])

    @property
    def peak_rss_mb(self) -> float:
        return float(self.figures["peak_rss_kb"]) * 1024 / MB

    def describe(self) -> str:
        f = self.figures
        text = (
            f"  {self.label:<28} wall {self.wall:7.2f} s  creates {self.creates:4d}  "
            f"rate {self.create_rate:6.2f}/s  throttled {self.throttled:3d}  "
            f"ok {f['succeeded']}/{f['total']}  failed {f['failed']}  peak RSS {self.peak_rss_mb:5.1f} MB"
        )
        if f.get("failures"):
            text += f"\n    failures: {f['failures']}"
        if self.calls:
            text += "\n    calls: " + ", ".join(f"{k} {v}" for k, v in sorted(self.calls.items()))
        return text


def _run_child(
    emu: EmulatorProcess, mode: str, count: int, label: str, env: dict[str, str], tmp: Path
) -> Run:
    """Fresh disks, a clean call record, one child run; then the emulator's view of it."""
    disks = emu.add_disks(count, prefix=label)
    emu.reset_calls()
    disks_file = tmp / f"{label}.disks.json"
    out_file = tmp / f"{label}.out.json"
    disks_file.write_text(json.dumps(disks), encoding="utf-8")
    child_env = clean_env({"CBSNAP_ENDPOINT": f"http://{emu.endpoint}", **_credentials(), **env})
    proc = subprocess.run(
        [
            sys.executable,
            str(CHILD),
            mode,
            "--disks",
            str(disks_file),
            "--out",
            str(out_file),
            "--name",
            label,
        ],
        env=child_env,
        stdout=subprocess.DEVNULL,  # the per-disk log records
        stderr=subprocess.PIPE,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run {label} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    run = Run(label, json.loads(out_file.read_text(encoding="utf-8")))
    calls = emu.calls()
    for call in calls:
        key = call["action"] + (f" ({call['error']})" if call["error"] else "")
        run.calls[key] = run.calls.get(key, 0) + 1
    created = sorted(c["time"] for c in calls if c["action"] == "CreateSnapshot" and c["error"] is None)
    run.creates = len(created)
    run.throttled = sum(1 for c in calls if c["error"] == "RequestLimitExceeded")
    if len(created) >= 2 and created[-1] > created[0]:
        run.create_rate = (len(created) - 1) / (created[-1] - created[0])
    return run


def throughput(disks: int, sweep: list[int]) -> list[Row]:
    """cbsnap vs a naive SDK loop at 20 req/s and 200 ms per call; CBSNAP_CONCURRENCY sweep."""
    section = "throughput"
    print(
        f"emulator in its own process: rate limit {API_RATE:g}/s per action, latency {API_LATENCY:g} s "
        f"on every call; {disks} fresh disks per run; CBSNAP_RATE_LIMIT={API_RATE:g}",
        flush=True,
    )
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="cbsnap-bench-") as tmp,
        EmulatorProcess(rate_limit=API_RATE, latency=API_LATENCY) as emu,
    ):
        paced = {"CBSNAP_RATE_LIMIT": f"{API_RATE:g}"}
        main = _run_child(emu, "invoke", disks, "cbsnap-default", paced, Path(tmp))
        print(main.describe(), flush=True)
        naive = _run_child(emu, "naive", disks, "naive-sdk-loop", {}, Path(tmp))
        print(naive.describe(), flush=True)
        sweep_runs = []
        for concurrency in sweep:
            env = {**paced, "CBSNAP_CONCURRENCY": str(concurrency)}
            run = _run_child(emu, "invoke", disks, f"cbsnap-concurrency-{concurrency}", env, Path(tmp))
            print(run.describe(), flush=True)
            sweep_runs.append((concurrency, run))

    ratio = main.create_rate / API_RATE
    speedup = naive.wall / main.wall
    rows.append(
        Row(
            section,
            f"CreateSnapshot rate ÷ {API_RATE:g} ({disks} disks, default concurrency)",
            f"{ratio:.3f} ({main.create_rate:.2f}/s)",
            "≥ 0.9",
            verdict(ratio >= 0.9),
        )
    )
    rows.append(Row(section, "failed results", str(main.failed), "0", verdict(main.failed == 0)))
    rows.append(
        Row(
            section,
            "speed-up over a sequential SDK loop",
            f"{speedup:.2f}x ({naive.wall:.2f} s ÷ {main.wall:.2f} s)",
            "≥ 3.5x",
            verdict(speedup >= 3.5),
        )
    )
    for concurrency, run in sweep_runs:
        rows.append(
            Row(
                section,
                f"CBSNAP_CONCURRENCY={concurrency}",
                f"wall {run.wall:.2f} s, rate ÷ {API_RATE:g} = {run.create_rate / API_RATE:.3f}, "
                f"failed {run.failed}, throttled {run.throttled}",
            )
        )
    return rows


def memory(disks: int, runs: int) -> list[Row]:
    """Peak RSS and wall time of one invocation over ``disks`` disks, no latency, no limit."""
    section = "memory at size"
    print(
        f"emulator in its own process: no rate limit, no latency; one timer invocation over {disks} "
        f"fresh disks per run in a fresh process; CBSNAP_RATE_LIMIT=0, fan-out off (threshold above "
        f"the disk count); {runs} run(s)",
        flush=True,
    )
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="cbsnap-bench-") as tmp,
        EmulatorProcess(rate_limit=0, latency=0) as emu,
    ):
        for i in range(runs):
            # Fan-out off: the threshold above the disk count (the child's context names a function,
            # so a request over the default 200 would otherwise be handed on in chunks).
            env = {"CBSNAP_RATE_LIMIT": "0", "CBSNAP_FANOUT_THRESHOLD": str(disks + 1)}
            run = _run_child(emu, "invoke", disks, f"size-{i}", env, Path(tmp))
            print(run.describe(), flush=True)
            results.append(run)
    peak = max(r.peak_rss_mb for r in results)
    after_import = max(float(r.figures["rss_after_import_kb"]) * 1024 / MB for r in results)
    wall = median([r.wall for r in results])
    failed = sum(r.failed for r in results)
    return [
        Row(
            section,
            f"peak RSS, one {disks}-disk invocation (max of {runs})",
            f"{peak:.1f} MB (after imports: {after_import:.1f} MB)",
            "≤ 64 MB",
            verdict(peak <= 64),
        ),
        Row(
            section,
            f"wall time, {disks} disks, no latency or limit (median of {runs})",
            f"{wall:.2f} s",
            "≤ 5 s",
            verdict(wall <= 5),
        ),
        Row(section, "failed results", str(failed), "0", verdict(failed == 0)),
    ]
