"""Shared pieces of the benchmark: paths, the result table, statistics, machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib"
HANDLERS = ROOT / "handlers"
MB = 1024 * 1024

# Variables that change what cbsnap does; every child starts without them.
CLEARED_PREFIXES = ("CBSNAP_", "TENCENTCLOUD_", "POWERTOOLS_", "PYTHON")


@dataclass
class Row:
    """One line of the summary table."""

    section: str
    measure: str
    value: str
    goal: str = ""
    status: str = "INFO"  # PASS, MISS, INFO or SKIP


def verdict(ok: bool) -> str:
    """PASS or MISS."""
    return "PASS" if ok else "MISS"


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> str:
    """``min-max`` of ``values``, for the detail lines."""
    return f"{min(values):.1f}-{max(values):.1f}" if values else "-"


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` without cbsnap's, the SDK's, powertools' and Python's variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED_PREFIXES)}
    env.update(extra or {})
    return env


def machine_info() -> dict[str, str]:
    """Where the figures come from."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines()
            if line.startswith("MemTotal:")
        )
        memory = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown"
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(os.cpu_count())
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "nproc": nproc,
        "memory": memory,
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "load average at start": load,
    }


def table(rows: Iterable[Row]) -> str:
    """The summary as a fixed-width text table."""
    header = ("section", "measure", "value", "goal", "result")
    lines = [(r.section, r.measure, r.value, r.goal, r.status) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out.extend(fmt.format(*line) for line in lines)
    return "\n".join(line.rstrip() for line in out)


def markdown_table(rows: Iterable[Row]) -> str:
    """The summary as a Markdown table (for bench/README.md)."""
    out = ["| section | measure | value | goal | result |", "|---|---|---|---|---|"]
    out.extend(f"| {r.section} | {r.measure} | {r.value} | {r.goal} | {r.status} |" for r in rows)
    return "\n".join(out)
