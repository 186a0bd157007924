"""``cbsnap plan``: a dry run of a request document, through the handler of the trigger it assumes.

The document gets ``"dryRun": true`` and is wrapped in the event of the chosen trigger, so the plan
sees what that trigger would: its request key and its default expiry
(``CBSNAP_RETAIN_DAYS_<TRIGGER>``). The product checks each disk with read-only calls only.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import uuid
from datetime import datetime, timezone
from typing import Any

from cbsnap_cli import handlers
from cbsnap_cli.answers import read_answer
from cbsnap_cli.args import positive_seconds
from cbsnap_cli.errors import ExitCode, UsageError, report_handler_error
from cbsnap_cli.files import parse_json, read_text
from cbsnap_cli.table import RESULT_COLUMNS, render

# trigger -> (what the settings call it, why one would pick it)
TRIGGERS: dict[str, tuple[str, str]] = {
    "webhook": ("webhook", "POST /snapshots, as the pre-deploy recipe calls it"),
    "timer": ("timer", "the document as a timer's Message"),
    "ckafka": ("ckafka", "the document as a CKafka message"),
}
REQUEST_FIX = 'pass the request document as JSON, e.g. \'{"disks": ["disk-g73hhs4o"]}\', or --file FILE'

DESCRIPTION = """\
Dry run: what a request document would do, per disk, checked with read-only API calls only
(existence, SnapshotAbility, disk state, quota headroom, a snapshot already CREATING). Nothing is
created or deleted.

The document is delivered as the chosen trigger would deliver it (default: webhook, the
pre-deploy recipe's trigger), because the trigger decides the default expiry when the document
sets neither retainDays nor deadline: CBSNAP_RETAIN_DAYS_WEBHOOK (default 3 days),
CBSNAP_RETAIN_DAYS_TIMER and CBSNAP_RETAIN_DAYS_QUEUE (default 0 = keep).

API calls go to CBSNAP_ENDPOINT (unset: Tencent Cloud) with TENCENTCLOUD_SECRETID and
TENCENTCLOUD_SECRETKEY, or with --emulator to an embedded emulator. Exit 0 when every disk would
be snapshotted, 1 otherwise."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``plan`` to the ``cbsnap`` parser."""
    parser = subparsers.add_parser(
        "plan",
        help="dry run: what a request would do, per disk (read-only API calls)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("request", nargs="?", metavar="REQUEST", help="the request document, as JSON text")
    parser.add_argument("--file", metavar="FILE", help="read the request document from this file instead")
    parser.add_argument(
        "--trigger",
        default="webhook",
        choices=tuple(TRIGGERS),
        help="the trigger the request arrives by (default: webhook; see above)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the handler's JSON answer instead of a table"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=handlers.DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="the function timeout the handler sees (default: 60)",
    )
    parser.add_argument("--emulator", action="store_true", help="check against an embedded emulator")
    parser.add_argument(
        "--seed",
        metavar="FILE",
        help="the embedded emulator's seed (default: the demo seed; needs --emulator)",
    )
    parser.set_defaults(func=run)


def _document(args: argparse.Namespace) -> Any:
    if args.file and args.request:
        raise UsageError("give the request as an argument or with --file, not both")
    if args.file:
        return parse_json(
            read_text(args.file, "the request file", REQUEST_FIX), f"the request file {args.file}"
        )
    if not args.request:
        raise UsageError("no request document", REQUEST_FIX)
    return parse_json(args.request, "the request", REQUEST_FIX)


def trigger_event(trigger: str, document: Any) -> dict[str, Any]:
    """The event that delivers ``document`` by ``trigger`` (shapes of events/*.json)."""
    body = json.dumps(document, ensure_ascii=False)
    if trigger == "timer":
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"Type": "Timer", "TriggerName": "cbsnap-plan", "Time": now, "Message": body}
    if trigger == "ckafka":
        offset = uuid.uuid4().int % 10**12  # a fresh offset: a new message, never a redelivery
        record = {"topic": "cbsnap-plan", "partition": 0, "offset": offset, "msgKey": "", "msgBody": body}
        return {"Records": [{"Ckafka": record}]}
    request_id = str(uuid.uuid4())
    return {
        "requestContext": {
            "serviceId": "service-local",  # through API Gateway: the gateway-auth mode accepts it
            "requestId": request_id,
            "stage": "release",
            "httpMethod": "POST",
            "path": "/snapshots",
        },
        "httpMethod": "POST",
        "path": "/snapshots",
        "headers": {"content-type": "application/json"},
        "queryString": {},
        "body": body,
        "isBase64Encoded": False,
    }


def run(args: argparse.Namespace) -> ExitCode:
    """Plan the request; exit 0 when every disk would succeed."""
    from cbsnap.runtime import Runtime, set_runtime
    from cbsnap_cli.config import api_settings

    document = _document(args)
    if isinstance(document, dict):
        document = {**document, "dryRun": True}
    handler = handlers.load_handler("index")
    # The CLI's own call needs no webhook signature: the user runs the function, not a caller.
    with api_settings(args.emulator, args.seed, webhook_auth="gateway", webhook_secret=None) as settings:
        name, why = TRIGGERS[args.trigger]
        days = settings.default_retain_days(name)
        expiry = f"expire after {days} days" if days else "be kept"
        default = ", the default" if args.trigger == "webhook" else ""
        assumed = (
            f"Planned as a {args.trigger} request (--trigger {args.trigger}{default}: {why}). The trigger "
            f"sets the default expiry: without retainDays or deadline, snapshots would {expiry} "
            f"(CBSNAP_RETAIN_DAYS_{name.upper()}={days})."
        )
        set_runtime(Runtime.from_settings(settings, stream=io.StringIO()))  # the table is the output
        try:
            raw = handler(trigger_event(args.trigger, document), handlers.scf_context(args.timeout))
        except Exception as exc:
            report_handler_error(exc, "plan")
            return ExitCode.FAILED
        finally:
            set_runtime(None)
    answer = read_answer(raw)
    if args.json:
        print(assumed, file=sys.stderr)
        shown = answer.body if answer.status is None else {"statusCode": answer.status, "body": answer.body}
        print(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        print(assumed + "\n")
        print(render(answer.results, RESULT_COLUMNS))
        # retention's "would delete" records are rows of their own, not disks
        disks = [r for r in answer.results if r.get("action") != "delete"]
        ok = sum(1 for r in disks if r.get("code") == 0)
        print(f"\n{ok} of {len(disks)} disks would be snapshotted.")
        deletes = len(answer.results) - len(disks)
        if deletes:
            print(f"{deletes} snapshot(s) would be deleted by retention.")
    return answer.exit_code()
