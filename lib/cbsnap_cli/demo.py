"""``cbsnap demo``: the emulator, a timer firing through the deployed entry point, snapshot progress."""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any, TextIO

from cbsnap_cli import handlers
from cbsnap_cli.args import positive_seconds
from cbsnap_cli.errors import ExitCode, UsageError
from cbsnap_cli.files import read_json
from cbsnap_cli.table import RESULT_COLUMNS, render

DEFAULT_EVENT = handlers.REPO_ROOT / "events" / "timer.json"

DESCRIPTION = """\
End to end on this machine: start the CBS API emulator (TC3 signatures verified), fire a timer
event at index.main_handler (the deployed entry point), print the per-disk results, then follow
the new snapshots to NORMAL through the webhook's GET /snapshots/{id} route. The sample event
names five disks of which two fail on purpose (an invalid ID, a disk that cannot be snapshotted).
Exit 0 when the demo ran to the end, 1 if the snapshots never finished.

With --fleet: a fleet of tagged disks in two regions and one request over the fan-out threshold.
The parent hands chunks on with SCF Invoke; every pending invocation then runs in a fresh Python
process, as SCF runs it (the chunks, then the completion re-check links they start). Exit 0 when
every disk has exactly one snapshot and one snapshot.completed event."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the ``cbsnap`` parser."""
    parser = subparsers.add_parser(
        "demo",
        help="emulator + timer event + snapshot progress, end to end",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--event", metavar="FILE", help="the timer event (default: events/timer.json)")
    parser.add_argument(
        "--creation-seconds",
        type=positive_seconds,
        default=5.0,
        metavar="SECONDS",
        help="how long an emulated snapshot stays CREATING (default: 5)",
    )
    parser.add_argument(
        "--fleet", action="store_true", help="fan-out and completion events end to end instead (see above)"
    )
    parser.add_argument(
        "--disks", type=int, default=60, metavar="N", help="with --fleet: how many disks (default: 60)"
    )
    parser.add_argument(
        "--threshold",
        type=int,
        default=20,
        metavar="N",
        help="with --fleet: the fan-out threshold; chunks hold half of it (default: 20)",
    )
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class Progress:
    """One snapshot's state as the webhook's status route reports it."""

    snapshot_id: str
    disk_id: str
    state: str
    percent: int


def _status_event(snapshot_id: str) -> dict[str, Any]:
    """``GET /snapshots/{id}`` as API Gateway delivers it."""
    path = f"/snapshots/{snapshot_id}"
    return {
        "requestContext": {
            "serviceId": "service-local",  # through API Gateway: the gateway-auth mode accepts it
            "requestId": str(uuid.uuid4()),
            "stage": "release",
            "httpMethod": "GET",
            "path": path,
        },
        "httpMethod": "GET",
        "path": path,
        "headers": {},
        "queryString": {},
        "isBase64Encoded": False,
    }


def _progress(handler: handlers.Handler, snapshot_id: str) -> Progress:
    answer = handler(_status_event(snapshot_id), handlers.scf_context(10))
    body = json.loads(answer["body"])
    return Progress(
        snapshot_id, str(body.get("storageId")), str(body.get("state")), int(body.get("percent") or 0)
    )


def run(args: argparse.Namespace) -> ExitCode:
    """Run the demo; see DESCRIPTION."""
    if args.fleet:
        from cbsnap_cli.demo_fleet import run_fleet

        if args.disks < 2 or args.threshold < 2 or args.disks <= args.threshold:
            raise UsageError("--fleet needs --disks > --threshold >= 2", "e.g. --disks 60 --threshold 20")
        return run_fleet(args.disks, args.threshold, args.creation_seconds, sys.stdout)
    from cbsnap.runtime import Runtime, set_runtime
    from cbsnap_cli.config import emulator_settings, settings_from_env, started_emulator

    event_path = args.event or str(DEFAULT_EVENT)
    event = read_json(event_path, "the event file", "pass --event with a timer event, e.g. events/timer.json")
    out = sys.stdout
    logs = io.StringIO()
    handler = handlers.load_handler("index")
    base = settings_from_env()
    with started_emulator(None, creation_seconds=args.creation_seconds) as emu:
        print(f"CBS API emulator listening on {emu.url} (TC3-HMAC-SHA256 signatures verified)", file=out)
        # The status polls are the CLI's own calls to the function: no webhook signature needed.
        settings = emulator_settings(emu, base, webhook_auth="gateway", webhook_secret=None)
        set_runtime(Runtime.from_settings(settings, stream=logs))
        try:
            name = event_path.rsplit("/", 1)[-1]
            message = event.get("Message") if isinstance(event, dict) else None
            print(f"Timer event {name} → index.main_handler: Message = {message}", file=out)
            response = handler(event, handlers.scf_context())
            results = response.get("results", []) if isinstance(response, dict) else []
            ok = sum(1 for r in results if r.get("code") == 0)
            key = response.get("requestKey") if isinstance(response, dict) else None
            print(f"\n{ok} of {len(results)} disks snapshotted (request key {key}):\n", file=out)
            print(render(results, RESULT_COLUMNS), file=out)
            records = [line for line in logs.getvalue().splitlines() if line.strip()]
            print(f"\n{len(records)} structured log records went to stdout (→ CLS); the first:", file=out)
            if records:
                print("  " + records[0], file=out)
            snapshot_ids = [r["snapshotId"] for r in results if r.get("snapshotId")]
            if not snapshot_ids:
                return ExitCode.OK
            print("\nSnapshot progress (GET /snapshots/{id} → DescribeSnapshots):", file=out)
            done = watch(
                lambda: [_progress(handler, s) for s in snapshot_ids],
                out,
                timeout=args.creation_seconds * 4 + 10,
            )
        finally:
            set_runtime(None)
    return ExitCode.OK if done else ExitCode.FAILED


def _bar(percent: int, width: int = 30) -> str:
    filled = width * max(0, min(percent, 100)) // 100
    return "[" + "#" * filled + "." * (width - filled) + f"] {percent:3d}%"


def watch(poll: Any, out: TextIO, *, timeout: float) -> bool:
    """Poll until every snapshot is NORMAL: bars redrawn in place on a terminal, one compact line
    per poll otherwise (logs, CI), the bars again at the end. True when all finished in time."""
    tty = out.isatty()
    started = time.monotonic()
    drawn = 0
    while True:
        snaps: list[Progress] = poll()
        done = all(s.state == "NORMAL" for s in snaps)
        timed_out = time.monotonic() - started > timeout
        if tty or done or timed_out:
            if drawn:
                out.write(f"\x1b[{drawn}F")  # back to the first bar: redraw in place
            out.write(
                "".join(f"  {s.snapshot_id}  {s.disk_id}  {s.state:<9} {_bar(s.percent)}\n" for s in snaps)
            )
            drawn = len(snaps) if tty else 0
        else:
            out.write(" | ".join(f"{s.snapshot_id} {s.percent}%" for s in snaps) + "\n")
        out.flush()
        if done or timed_out:
            out.write(
                "All snapshots are NORMAL.\n" if done else "Gave up waiting for the snapshots to finish.\n"
            )
            return done
        time.sleep(0.5)
