"""``cbsnap drain``: feed a running emulator's queue to the message handler, as SCF's CMQ trigger would."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error

from cbsnap_cli import handlers
from cbsnap_cli.errors import ExitCode, UsageError, report_handler_error

DESCRIPTION = """\
Receive every message waiting on a queue of a running emulator (`cbsnap emulator`) and hand
them to the message handler in CMQ trigger events, redelivering what the handler fails, until
the queue is empty. API calls go to CBSNAP_ENDPOINT with TENCENTCLOUD_SECRETID and
TENCENTCLOUD_SECRETKEY (the values `cbsnap emulator` prints). Prints a JSON summary."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``drain`` to the ``cbsnap`` parser."""
    parser = subparsers.add_parser(
        "drain",
        help="feed a running emulator's queue to the message handler",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--queue", default="cbsnap-work", help="the queue to drain (default: cbsnap-work)")
    parser.add_argument(
        "--emulator-url",
        default="http://127.0.0.1:9000",
        metavar="URL",
        help="the running emulator (default: http://127.0.0.1:9000)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> ExitCode:
    """Drain the queue; exit 0 when every result succeeded."""
    from cbsnap.runtime import Runtime, set_runtime
    from cbsnap_cli.config import cloud_settings
    from cbsnap_emulator.runner import drain, http_receive

    settings = cloud_settings(fix=None)  # the emulator's own values are what the fix names
    handler = handlers.load_handler("messages")
    set_runtime(Runtime.from_settings(settings, stream=sys.stderr))
    try:
        report = drain(http_receive(args.emulator_url, args.queue), handler, queue=args.queue)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise UsageError(
                f"the emulator has no queue {args.queue!r}", "pass --queue with one it has"
            ) from None
        raise UsageError(f"the emulator at {args.emulator_url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UsageError(
            f"nothing answers at {args.emulator_url} ({reason})",
            "start one with `cbsnap emulator --port 9000`, or pass --emulator-url",
        ) from None
    except Exception as exc:
        report_handler_error(exc, "drain")
        return ExitCode.FAILED
    finally:
        set_runtime(None)
    results = report.results()
    ok = sum(1 for r in results if r.get("code") == 0)
    summary = {
        "invocations": report.invocations,
        "messages": report.messages,
        "redeliveries": report.redeliveries,
        "results": len(results),
        "succeeded": ok,
    }
    print(json.dumps(summary, indent=2))
    return ExitCode.OK if ok == len(results) else ExitCode.FAILED
