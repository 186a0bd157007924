"""cbsnap benchmarks: ratios measured side by side, in one run, on this machine.

    python bench/bench.py            # the full run (about 14 minutes; figures in bench/README.md)
    python bench/bench.py --sections fleet   # only the fleet run (about 10 minutes)
    python bench/bench.py --quick    # small sizes, for CI (well under a minute)

Sections (see bench/README.md for the method and the goals):

* cold start: fresh-process import of each handler vs. its third-party dependencies alone
  (source tree, and the built zip with its precompiled bytecode when there is one);
* throughput: one request for many disks against the emulator at 20 req/s and 200 ms a
  call, vs. a sequential SDK loop; a CBSNAP_CONCURRENCY sweep;
* memory at size: peak RSS and wall time of one large invocation, no latency or limit;
* deploy size: the unzipped package vs. the monolithic SDK;
* fleet: 10,000 disks over two regions fanned out by SCF ``Invoke``, every chunk in its own
  process against one account-wide API limit, without and with Redis (about 10 minutes).

Run it with an interpreter that has cbsnap's dependencies (the project's venv); ``lib/``
is put on ``sys.path`` by the children themselves. Exit status 0 whatever the figures:
the goals are judged by a person reading the table, not by a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import coldstart
import deploy
import fleet
import load
from common import ROOT, Row, machine_info, markdown_table, table

SECTIONS = ("coldstart", "throughput", "memory", "deploy", "fleet")


def _python310(explicit: str | None) -> tuple[str | None, str]:
    """A CPython 3.10 for the zip's bytecode: (path, "") or (None, why not)."""
    if explicit:
        return coldstart.resolve_python(explicit), ""
    if sys.version_info[:2] == (3, 10):
        return sys.executable, ""
    # Like scripts/_venv.sh: python3.10 on PATH, the project's 3.10 venv, or pyenv's 3.10.
    candidates = [shutil.which("python3.10"), str(ROOT / ".venv" / "py3.10" / "bin" / "python")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates += [str(p) for p in sorted(pyenv_root.glob("versions/3.10*/bin/python3.10"))]
    for candidate in candidates:
        if candidate and coldstart.python_version(candidate).startswith("3.10."):
            return coldstart.resolve_python(candidate), ""
    return None, "no CPython 3.10 found (the zip's bytecode is for SCF's Python 3.10)"


def _zip(args: argparse.Namespace, tmp: Path) -> tuple[Path | None, str]:
    """The package to measure: --zip, dist/cbsnap-scf.zip, or a fresh build (full runs only)."""
    if args.zip is not None:
        return (args.zip, "") if args.zip.exists() else (None, f"{args.zip} does not exist")
    if deploy.DIST_ZIP.exists():
        copy = tmp / "cbsnap-scf.zip"  # a snapshot: others may rebuild dist/ meanwhile
        shutil.copyfile(deploy.DIST_ZIP, copy)
        return copy, ""
    if args.no_build:
        return None, "no dist/cbsnap-scf.zip; --quick and --no-build runs do not build one"
    print("no dist/cbsnap-scf.zip: building one into a temporary folder with scripts/build.sh", flush=True)
    return deploy.build_zip(tmp / "build")


def _header(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for CI")
    parser.add_argument("--runs", type=int, help="cold-start samples per variant (default 11; quick 3)")
    parser.add_argument("--attribution-runs", type=int, help="-X importtime runs (default 5; quick 0)")
    parser.add_argument("--disks", type=int, help="disks per throughput run (default 200; quick 40)")
    parser.add_argument("--concurrency", help="CBSNAP_CONCURRENCY sweep (default 2,4,16; quick 4)")
    parser.add_argument("--memory-disks", type=int, help="disks of the size run (default 1000; quick 250)")
    parser.add_argument("--memory-runs", type=int, help="size runs (default 3; quick 1)")
    parser.add_argument("--fleet-disks", type=int, help="disks of the fleet run (default 10000; quick 400)")
    parser.add_argument("--fleet-chunk", type=int, help="disks a chunk (default 200 as in cbsnap; quick 50)")
    parser.add_argument(
        "--fleet-limit", type=float, default=20.0, help="API limit per region and action (20)"
    )
    parser.add_argument(
        "--fleet-latency", type=float, default=0.1, help="seconds added to each API call (0.1)"
    )
    parser.add_argument(
        "--fleet-redis",
        default=fleet.DEFAULT_REDIS,
        help=f"Redis the fleet run flushes and uses ({fleet.DEFAULT_REDIS})",
    )
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    parser.add_argument("--zip", type=Path, help="the package to measure (default dist/cbsnap-scf.zip)")
    parser.add_argument("--no-build", action="store_true", help="never run scripts/build.sh")
    parser.add_argument("--no-download", action="store_true", help="never pip download the monolith")
    parser.add_argument("--python310", help="CPython 3.10 for the zip's cold start (default python3.10)")
    parser.add_argument("--json", type=Path, help="also write the rows and the machine as JSON here")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args(argv)
    quick = args.quick
    runs = args.runs or (3 if quick else 11)
    attribution_runs = args.attribution_runs if args.attribution_runs is not None else (0 if quick else 5)
    disks = args.disks or (40 if quick else 200)
    sweep = [int(c) for c in (args.concurrency or ("4" if quick else "2,4,16")).split(",") if c]
    memory_disks = args.memory_disks or (250 if quick else 1000)  # over the fan-out threshold
    memory_runs = args.memory_runs or (1 if quick else 3)
    fleet_disks = args.fleet_disks or (400 if quick else 10000)
    fleet_chunk = args.fleet_chunk or (50 if quick else 200)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {', '.join(SECTIONS)}")
    if quick:
        args.no_build = True

    started = time.perf_counter()
    machine = machine_info()
    print(f"cbsnap benchmark ({'quick' if quick else 'full'} run)")
    for key, value in machine.items():
        print(f"  {key}: {value}")
    rows: list[Row] = []
    timings: dict[str, float] = {}

    with tempfile.TemporaryDirectory(prefix="cbsnap-bench-") as tmp_name:
        tmp = Path(tmp_name)
        zip_path, why_no_zip = (None, "section not run")
        if "coldstart" in sections or "deploy" in sections:
            zip_path, why_no_zip = _zip(args, tmp)

        if "coldstart" in sections:
            t0 = time.perf_counter()
            _header("cold start")
            print(f"baseline imports: {coldstart.describe_baseline()}")
            handlers = coldstart.handler_names()
            rows += coldstart.run_layout(
                coldstart.source_layout(sys.executable), handlers, runs, attribution_runs
            )
            py310, why_no_310 = _python310(args.python310)
            if zip_path is None or py310 is None:
                why = why_no_zip if zip_path is None else why_no_310
                print(f"[built zip] skipped: {why}", flush=True)
                rows.append(Row("cold start (built zip)", "every handler", f"skipped ({why})", "", "SKIP"))
            else:
                unpacked = coldstart.unpacked_zip(zip_path, tmp / "unpacked")
                layout = coldstart.zip_layout(py310, unpacked)
                rows += coldstart.run_layout(
                    layout, coldstart.zip_handlers(unpacked, handlers), runs, attribution_runs
                )
            timings["cold start"] = time.perf_counter() - t0

        if "throughput" in sections:
            t0 = time.perf_counter()
            _header("throughput")
            rows += load.throughput(disks, sweep)
            timings["throughput"] = time.perf_counter() - t0

        if "memory" in sections:
            t0 = time.perf_counter()
            _header("memory at size")
            rows += load.memory(memory_disks, memory_runs)
            timings["memory at size"] = time.perf_counter() - t0

        if "deploy" in sections:
            t0 = time.perf_counter()
            _header("deploy size")
            rows += deploy.deploy_size(zip_path, why_no_zip, download=not args.no_download)
            timings["deploy size"] = time.perf_counter() - t0

        if "fleet" in sections:
            t0 = time.perf_counter()
            _header("fleet")
            rows += fleet.fleet(
                fleet_disks, fleet_chunk, args.fleet_limit, args.fleet_latency, args.fleet_redis
            )
            timings["fleet"] = time.perf_counter() - t0

    total = time.perf_counter() - started
    _header("summary")
    print(table(rows))
    if args.markdown:
        print()
        print(markdown_table(rows))
    missed = [r for r in rows if r.status == "MISS"]
    print(
        f"\n{sum(r.status == 'PASS' for r in rows)} PASS, {len(missed)} MISS, "
        f"{sum(r.status == 'SKIP' for r in rows)} SKIP; "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        + f"; total {total:.0f} s"
    )
    if args.json:
        payload = {
            "mode": "quick" if quick else "full",
            "machine": machine,
            "rows": [r.__dict__ for r in rows],
            "seconds": {**timings, "total": total},
        }
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
