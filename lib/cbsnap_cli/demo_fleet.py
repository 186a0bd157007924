"""``cbsnap demo --fleet``: a whole fan-out and completion chain, end to end, on this machine.

The emulator gets a function (this checkout's handlers) and a fleet of tagged disks in two regions.
A timer firing with a selector and ``notify`` reaches ``index.main_handler``; the request is over
the fan-out threshold, so the parent only hands chunks on with SCF ``Invoke``. Then every pending
invocation runs as SCF would run it — a fresh Python process with the function's environment — and
those runs invoke the completion chain's links in turn. At the end each disk must have exactly one
snapshot and one ``snapshot.completed`` event.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from typing import Any, TextIO

from cbsnap_cli import handlers
from cbsnap_cli.errors import ExitCode

FUNCTION = "cbsnap-demo"
EVENTS_QUEUE = "fleet-events"
REGIONS = ("ap-guangzhou", "ap-shanghai")


def run_fleet(disks: int, threshold: int, creation_seconds: float, out: TextIO) -> ExitCode:
    """Run the fleet demo with ``disks`` disks; 0 when every disk has one snapshot and one event."""
    from cbsnap.runtime import Runtime, set_runtime
    from cbsnap_cli.config import emulator_settings, settings_from_env, started_emulator

    with started_emulator(None, creation_seconds=creation_seconds) as emu:
        emu.set_rate_limit(0)  # a demo of the mechanism, not of the pace: the bench measures that
        emu.add_queue(EVENTS_QUEUE)
        per_region = [disks - disks // 2, disks // 2]
        for region, count in zip(REGIONS, per_region, strict=True):
            emu.add_disks(count, region=region, tags={"fleet": "demo"})
        environment = {
            "CBSNAP_RATE_LIMIT": "0",
            "CBSNAP_FANOUT_THRESHOLD": str(threshold),
            "CBSNAP_FANOUT_CHUNK": str(max(1, threshold // 2)),
            "CBSNAP_NOTIFY_POLL": "0.5",
            "CBSNAP_SAFETY_MARGIN_MS": "1000",
        }
        emu.add_function(
            FUNCTION,
            code_dir=handlers.REPO_ROOT / "handlers",
            python_path=[handlers.REPO_ROOT / "lib"],
            environment=environment,
            timeout=30,
        )
        print(f"emulator {emu.url}: {disks} disks tagged fleet=demo in {', '.join(REGIONS)}", file=out)
        print(f"function {FUNCTION}: this checkout's handlers, fan-out above {threshold} disks", file=out)

        settings = emulator_settings(emu, settings_from_env()).model_copy(
            update={"rate_limit": 0.0, "fanout_threshold": threshold, "fanout_chunk": max(1, threshold // 2)}
        )
        set_runtime(Runtime.from_settings(settings, stream=io.StringIO()))
        try:
            document = {
                "selector": {"tags": {"fleet": "demo"}, "regions": list(REGIONS)},
                "snapshotName": "fleet-demo",
                "notify": "completed",
                "replyTo": {"queue": EVENTS_QUEUE},
            }
            event = {"Type": "Timer", "TriggerName": "fleet", "Time": _now(), "Message": json.dumps(document)}
            context = {**handlers.scf_context(60), "function_name": FUNCTION}
            parent = handlers.load_handler("index")(event, context)
        finally:
            set_runtime(None)
        fanout = parent.get("fanout") or {}
        creates = len(emu.calls(action="CreateSnapshot"))
        chunks, handed = fanout.get("chunks", 0), fanout.get("dispatched", 0)
        print(
            f"\nparent: {chunks} chunks handed on with Invoke, {handed} disks; its own CreateSnapshot calls: "
            f"{creates}",
            file=out,
        )
        started = time.monotonic()
        rounds = 0
        while emu.invocations("pending") and rounds < 40:
            rounds += 1
            ran = emu.run_pending(max_rounds=1)
            kinds = Counter(_kind(r["event"]) for r in ran)
            failed = sum(1 for r in ran if r["state"] == "failed")
            print(
                f"round {rounds}: ran {len(ran)} invocation(s) in fresh processes "
                f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})"
                + (f", {failed} failed" if failed else ""),
                file=out,
            )
        return _verdict(emu, disks, time.monotonic() - started, out)


def _verdict(emu: Any, disks: int, elapsed: float, out: TextIO) -> ExitCode:
    owned = Counter(
        s["DiskId"] for s in emu.snapshots() if any(t["Key"] == "cbsnap:owner" for t in s.get("Tags") or [])
    )
    events = Counter(
        r["snapshotId"]
        for m in emu.messages(queue=EVENTS_QUEUE)
        for r in json.loads(m["MsgContent"])["results"]
        if r.get("action") == "snapshot.completed"
    )
    once = sum(1 for n in owned.values() if n == 1)
    print(
        f"\n{len(owned)} of {disks} disks have a snapshot ({once} exactly one); "
        f"{len(events)} snapshot.completed events ({sum(1 for n in events.values() if n > 1)} repeated); "
        f"{elapsed:.1f} s of invocations",
        file=out,
    )
    ok = len(owned) == disks == once and len(events) == disks
    print(
        "fleet demo: every disk snapshotted once and reported completed" if ok else "fleet demo: FAILED",
        file=out,
    )
    return ExitCode.OK if ok else ExitCode.FAILED


def _kind(event: str) -> str:
    try:
        parsed = json.loads(event)
    except ValueError:
        return "other"
    if "cbsnapChunk" in parsed:
        return "chunk"
    return "re-check link" if "cbsnapRecheck" in parsed else "other"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
