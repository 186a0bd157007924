"""``cbsnap report``: which disks have a recent usable snapshot, as a table, JSON and one HTML page.

Runs the function's own ``"action": "report"`` (:mod:`cbsnap.report`) with read-only calls: against
``CBSNAP_ENDPOINT``/Tencent Cloud with ``TENCENTCLOUD_SECRETID``/``TENCENTCLOUD_SECRETKEY``, or
``--emulator``. Without a request document every disk of the function's region is reported
(``{"action": "report", "selector": {"all": true}}``); ``rpoHours``, ``stuckHours``, ``ownedOnly``,
``selector`` and ``disks`` work as in any request. Exit 0 when every disk is ``ok``, 1 otherwise.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cbsnap_cli import report_html
from cbsnap_cli.errors import ExitCode, UsageError
from cbsnap_cli.files import parse_json, read_text

if TYPE_CHECKING:
    from cbsnap.settings import Settings

EVERY_DISK: dict[str, Any] = {"action": "report", "selector": {"all": True}}
# (result field, header, width)
COLUMNS = (
    ("status", "status", 6),
    ("storageId", "disk", 14),
    ("region", "region", 14),
    ("lastSnapshotId", "newest usable", 13),
    ("ageHours", "age h", 7),
    ("snapshotCount", "snaps", 5),
    ("message", "notes", 60),
)


REQUEST_FIX = (
    'pass a report request as JSON, e.g. \'{"selector": {"tags": {"backup": "nightly"}}}\', or --file FILE'
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report`` to the ``cbsnap`` parser."""
    parser = subparsers.add_parser(
        "report",
        help="coverage: which disks lack a recent usable snapshot (read-only API calls)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("request", nargs="?", metavar="REQUEST", help="a report request document, as JSON")
    parser.add_argument("--file", metavar="FILE", help="read the request document from this file instead")
    parser.add_argument(
        "--html", metavar="FILE", help="also write the report as one self-contained HTML page"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the function's JSON answer")
    parser.add_argument("--timeout", type=float, default=300.0, help="the function timeout it sees (s)")
    parser.add_argument("--emulator", action="store_true", help="against an embedded emulator")
    parser.add_argument("--seed", help="the embedded emulator's seed file (with --emulator)")
    parser.set_defaults(func=run)


def document_of(args: argparse.Namespace) -> dict[str, Any]:
    """The request: REQUEST or --file, ``action`` set to ``report``; every disk when none is given."""
    if args.request and args.file:
        raise UsageError("give the request as an argument or with --file, not both", REQUEST_FIX)
    text = read_text(args.file, "the request file", REQUEST_FIX) if args.file else args.request
    if not text:
        return dict(EVERY_DISK)
    document = parse_json(text, "the request", REQUEST_FIX)
    if not isinstance(document, dict):
        raise UsageError("the request must be a JSON object", REQUEST_FIX)
    return {**document, "action": "report"}


def run(args: argparse.Namespace) -> ExitCode:
    """Run the report; print a table; write --html/--json; exit 0 only when every disk is ok."""
    from cbsnap_cli.config import api_settings

    document = document_of(args)
    with api_settings(args.emulator, args.seed) as settings:
        response = answer(document, settings, args.timeout)
    if args.json:
        Path(args.json).write_text(
            json.dumps(response, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    if args.html:
        Path(args.html).write_text(report_html.render(response), encoding="utf-8")
    print(table(response))
    summary = response.get("report") or {}
    counts = ", ".join(f"{summary.get(s, 0)} {s}" for s in report_html.STATUS_ORDER)
    calls = summary.get("apiCallsTotal", 0)
    print(f"\n{summary.get('disks', 0)} disks: {counts}; {calls} API calls, all read-only.")
    ok = bool(response.get("results")) and all(r.get("code") == 0 for r in response["results"])
    return ExitCode.OK if ok else ExitCode.FAILED


def answer(document: dict[str, Any], settings: Settings, timeout: float) -> dict[str, Any]:
    """The function's answer to ``document``, run in this process (logs discarded)."""
    from cbsnap.runtime import Runtime
    from cbsnap.sinks import RequestMeta

    runtime = Runtime.from_settings(settings, stream=io.StringIO())
    meta = RequestMeta(trigger="cli", request_key=f"report/{int(time.time())}", key_is_fresh=True)
    request = runtime.pipeline.prepare(document, meta)
    context = {"time_limit_in_ms": int(timeout * 1000), "request_id": meta.request_key}
    outcome = runtime.pipeline.handle(request, runtime.begin_invocation(context))
    return outcome.to_response(request.meta)


def table(response: dict[str, Any]) -> str:
    """The results as a fixed-width table, worst first."""

    def cell(value: Any, width: int) -> str:
        text = "-" if value is None or value == "" else str(value)
        return text if len(text) <= width else text[: width - 1] + "…"

    rows = report_html.worst_first([r for r in response.get("results", []) if r.get("action") == "report"])
    rejected = [r for r in response.get("results", []) if r.get("action") != "report"]
    lines = ["  ".join(head.ljust(w) for _, head, w in COLUMNS), "  ".join("-" * w for _, _, w in COLUMNS)]
    for row in [*rows, *rejected]:
        lines.append("  ".join(cell(row.get(name), w).ljust(w) for name, _, w in COLUMNS).rstrip())
    return "\n".join(lines)
