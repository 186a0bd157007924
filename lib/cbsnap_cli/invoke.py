"""``cbsnap invoke``: run one handler on an event file, like ``sls invoke local``."""

from __future__ import annotations

import argparse
import json
import sys

from cbsnap_cli import handlers
from cbsnap_cli.answers import read_answer
from cbsnap_cli.args import positive_seconds
from cbsnap_cli.errors import ExitCode, report_handler_error
from cbsnap_cli.files import read_json

DESCRIPTION = """\
Run one SCF handler on an event file, like `sls invoke local`: the handler's answer is printed on
stdout as JSON, the function's log records (one JSON line each) go to stderr, and one summary
line ends stderr.

API calls go to CBSNAP_ENDPOINT (e.g. http://127.0.0.1:9000 for `cbsnap emulator`; unset means
Tencent Cloud) with TENCENTCLOUD_SECRETID/TENCENTCLOUD_SECRETKEY, or with --emulator to an
embedded emulator that holds the disks the sample events name. The endpoint is checked before
the handler runs.

handlers:
""" + "\n".join(f"  {name:<9} {what}" for name, what in handlers.HANDLERS.items())

EVENT_FIX = "pass --event with a JSON event, e.g. --event events/timer.json (samples are in events/)"
WEBHOOK_401_FIX = (
    "the webhook refused the event's signature: set CBSNAP_WEBHOOK_SECRET to the secret it was "
    "signed with, or CBSNAP_WEBHOOK_AUTH=gateway to skip the check locally (the samples' "
    "signatures have expired)"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``invoke`` to the ``cbsnap`` parser."""
    parser = subparsers.add_parser(
        "invoke",
        help="run a handler locally on an event file",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "handler",
        metavar="HANDLER",
        choices=tuple(handlers.HANDLERS),
        help=f"the handler to run: {', '.join(handlers.HANDLERS)} (listed above)",
    )
    parser.add_argument("--event", required=True, metavar="FILE", help="the event, a JSON file (see events/)")
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=handlers.DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="the function timeout the handler sees (default: 60, as in serverless.yml)",
    )
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="send API calls to an embedded emulator instead of CBSNAP_ENDPOINT or the cloud",
    )
    parser.add_argument(
        "--seed",
        metavar="FILE",
        help="the embedded emulator's seed (default: the demo seed; needs --emulator)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> ExitCode:
    """Invoke the handler once; exit 0 only if every disk succeeded (and the webhook said 2xx)."""
    from cbsnap.errors import RedeliveryRequested
    from cbsnap.runtime import Runtime, set_runtime
    from cbsnap_cli.config import api_settings

    event = read_json(args.event, "the event file", EVENT_FIX)
    handler = handlers.load_handler(args.handler)
    with api_settings(args.emulator, args.seed) as settings:
        set_runtime(Runtime.from_settings(settings, stream=sys.stderr))
        try:
            raw = handler(event, handlers.scf_context(args.timeout))
        except RedeliveryRequested as exc:  # unfinished disks: on SCF the platform delivers it again
            print(f"cbsnap invoke: {exc}", file=sys.stderr)
            raw = exc.response
        except Exception as exc:  # the function failed: SCF would log it and retry async events
            report_handler_error(exc, "invoke")
            return ExitCode.FAILED
        finally:
            set_runtime(None)
    print(json.dumps(raw, indent=2, ensure_ascii=False, default=str))
    answer = read_answer(raw)
    print(f"cbsnap invoke: {answer.summary()}", file=sys.stderr)
    if answer.status == 401:
        print(f"cbsnap invoke: {WEBHOOK_401_FIX}", file=sys.stderr)
    return answer.exit_code()
