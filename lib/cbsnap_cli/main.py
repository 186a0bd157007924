"""The ``cbsnap`` command: run handlers locally, the demo, the emulator, sign webhook calls.

Heavy modules are imported inside each command so ``cbsnap --help`` stays quick.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from cbsnap_cli import deploy

if TYPE_CHECKING:
    from cbsnap.settings import Settings
    from cbsnap_emulator import Emulator

HANDLERS = ("timer", "messages", "webhook")
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _handlers_dir() -> Path:
    for candidate in (Path.cwd() / "handlers", _REPO_ROOT / "handlers"):
        if (candidate / "timer.py").is_file():
            return candidate
    raise SystemExit("cannot find the handlers/ directory: run cbsnap from the repository root")


def load_handler(name: str) -> Callable[[Any, Any], Any]:
    """Import ``handlers/<name>.py`` by path and return its ``main_handler``."""
    path = _handlers_dir() / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"handlers.{name}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load handler {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Callable[[Any, Any], Any] = module.main_handler
    return handler


def _emulator_settings(emulator: Emulator, base: Settings | None = None) -> Settings:
    """Settings that point every API call at ``emulator`` with its credentials."""
    from pydantic import SecretStr

    from cbsnap.settings import Endpoint, Settings
    from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY

    base = base or Settings.from_env({})
    return base.model_copy(
        update={
            "secret_id": DEFAULT_SECRET_ID,
            "secret_key": SecretStr(DEFAULT_SECRET_KEY),
            "session_token": None,
            "endpoint": Endpoint(protocol="http", host=emulator.endpoint),
        }
    )


def _context(timeout_s: float) -> dict[str, Any]:
    """An SCF-shaped dict context for local runs."""
    return {
        "memory_limit_in_mb": 128,
        "time_limit_in_ms": int(timeout_s * 1000),
        "request_id": f"local-{int(time.time())}",
        "function_name": "cbsnap-local",
        "function_version": "$LATEST",
        "namespace": "default",
    }


# -- invoke ---------------------------------------------------------------------------


def cmd_invoke(args: argparse.Namespace) -> int:
    """Run one handler with an event file, like ``sls invoke local``."""
    from cbsnap.errors import RedeliveryRequested
    from cbsnap.runtime import Runtime, set_runtime
    from cbsnap.settings import Settings

    event = json.loads(Path(args.event).read_text(encoding="utf-8"))
    handler = load_handler(args.handler)

    def call() -> Any:
        try:
            return handler(event, _context(args.timeout))
        except RedeliveryRequested as exc:  # on SCF the platform would deliver the event again
            print(f"cbsnap: {exc}", file=sys.stderr)
            return exc.response

    if args.emulator:
        from cbsnap_emulator import Emulator, load_seed

        with Emulator(load_seed(args.seed)) as emu:
            set_runtime(
                Runtime.from_settings(_emulator_settings(emu, Settings.from_env()), stream=sys.stderr)
            )
            result = call()
    else:
        set_runtime(Runtime.from_settings(Settings.from_env(), stream=sys.stderr))
        result = call()
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


# -- demo -----------------------------------------------------------------------------

_COLUMNS = (("storageId", 15), ("snapshotName", 14), ("code", 6), ("snapshotId", 14), ("message", 58))


def _table(rows: Sequence[dict[str, Any]]) -> str:
    def cell(value: Any, width: int) -> str:
        text = "-" if value is None or value == "" else str(value)
        return text if len(text) <= width else text[: width - 1] + "…"

    lines = ["  ".join(name.ljust(width) for name, width in _COLUMNS)]
    lines.append("  ".join("-" * width for _, width in _COLUMNS))
    for row in rows:
        lines.append("  ".join(cell(row.get(name), width).ljust(width) for name, width in _COLUMNS))
    return "\n".join(lines)


def _bar(percent: int, width: int = 30) -> str:
    filled = width * max(0, min(percent, 100)) // 100
    return "[" + "#" * filled + "." * (width - filled) + f"] {percent:3d}%"


def cmd_demo(args: argparse.Namespace) -> int:
    """Emulator + timer handler + snapshot progress, end to end on this machine."""
    from cbsnap.runtime import Runtime, set_runtime
    from cbsnap.scf import Deadline
    from cbsnap_emulator import Emulator, load_seed

    event_path = Path(args.event) if args.event else _REPO_ROOT / "events" / "timer.json"
    event = json.loads(event_path.read_text(encoding="utf-8"))
    out = sys.stdout
    logs = io.StringIO()
    with Emulator(load_seed(None), creation_seconds=args.creation_seconds) as emu:
        print(f"CBS API emulator listening on {emu.url} (TC3-HMAC-SHA256 signatures verified)", file=out)
        runtime = Runtime.from_settings(_emulator_settings(emu), stream=logs)
        set_runtime(runtime)
        print(f"Timer event {event_path.name}: Message = {event.get('Message')}", file=out)
        response = load_handler("timer")(event, _context(60))
        print(
            f"\n{response['succeeded']} of {response['total']} disks snapshotted "
            f"(request key {response['requestKey']}):\n",
            file=out,
        )
        print(_table(response["results"]), file=out)
        records = [line for line in logs.getvalue().splitlines() if line.strip()]
        print(f"\n{len(records)} structured log records went to stdout (→ CLS); the first:", file=out)
        if records:
            print("  " + records[0], file=out)

        snapshot_ids = [r["snapshotId"] for r in response["results"] if r.get("snapshotId")]
        if snapshot_ids:
            print("\nSnapshot progress (DescribeSnapshots):", file=out)
            api = runtime.cbs(runtime.settings.region)
            _watch_progress(
                api, snapshot_ids, out, timeout=args.creation_seconds * 4 + 10, deadline_cls=Deadline
            )
    return 0


def _watch_progress(
    api: Any, snapshot_ids: list[str], out: Any, *, timeout: float, deadline_cls: Any
) -> None:
    """Poll DescribeSnapshots until every snapshot is NORMAL: bars redrawn in place on a
    terminal, one compact line per poll otherwise (logs, CI), the bars again at the end."""
    tty = out.isatty()
    started = time.monotonic()
    drawn = 0
    while True:
        _, snaps = api.describe_snapshots(deadline_cls.after(10), snapshot_ids=snapshot_ids)
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
            return
        time.sleep(0.5)


# -- emulator -------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace) -> int:
    """Dry run: what a request would do, checked with read-only API calls."""
    from cbsnap.runtime import Runtime
    from cbsnap.settings import Settings
    from cbsnap.sinks import RequestMeta

    text = Path(args.file).read_text(encoding="utf-8") if args.file else args.request
    if not text:
        raise SystemExit("give a request document (JSON) or --file")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"the request is not valid JSON: {exc}") from exc
    if isinstance(document, dict):
        document["dryRun"] = True

    def run(settings: Settings) -> dict[str, Any]:
        runtime = Runtime.from_settings(settings, stream=io.StringIO())
        meta = RequestMeta(trigger=args.trigger, request_key=f"plan/{int(time.time())}", key_is_fresh=True)
        request = runtime.pipeline.prepare(document, meta)  # an idempotencyKey names the request
        outcome = runtime.pipeline.handle(request, runtime.begin_invocation(_context(args.timeout)))
        return outcome.to_response(request.meta)

    if args.emulator:
        from cbsnap_emulator import Emulator, load_seed

        with Emulator(load_seed(args.seed)) as emu:
            response = run(_emulator_settings(emu, Settings.from_env()))
    else:
        response = run(Settings.from_env())
    if args.json:
        print(json.dumps(response, indent=2, ensure_ascii=False))
    else:
        print(_table(response["results"]))
        # retention's "would delete" records are rows of their own, not disks
        disks = [r for r in response["results"] if r.get("action") != "delete"]
        ready = sum(1 for r in disks if r.get("code") == 0)
        print(f"\n{ready} of {len(disks)} disks would be snapshotted.")
        deletes = len(response["results"]) - len(disks)
        if deletes:
            print(f"{deletes} snapshot(s) would be deleted by retention.")
    return 0 if response["succeeded"] == response["total"] else 1


def cmd_drain(args: argparse.Namespace) -> int:
    """Feed a running emulator's queue to the message handler, as SCF's CMQ trigger would."""
    from cbsnap.runtime import Runtime, set_runtime
    from cbsnap.settings import Settings
    from cbsnap_emulator.runner import drain, http_receive

    set_runtime(Runtime.from_settings(Settings.from_env(), stream=sys.stderr))
    report = drain(http_receive(args.emulator_url, args.queue), load_handler("messages"), queue=args.queue)
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
    return 0 if ok == len(results) else 1


def cmd_emulator(args: argparse.Namespace) -> int:
    """Serve the CBS/TDMQ API emulator (pass-through to ``python -m cbsnap_emulator``)."""
    from cbsnap_emulator.cli import main as emulator_main

    return emulator_main(args.rest)


# -- sign -----------------------------------------------------------------------------


def _sign_secret(args: argparse.Namespace) -> str:
    """The webhook secret from a file or an environment variable (never from argv: ps shows it)."""
    import os

    if args.secret_file:
        secret = Path(args.secret_file).read_text(encoding="utf-8").strip()
    else:
        secret = os.environ.get(args.secret_env, "")
    if not secret:
        raise SystemExit(f"no secret: set {args.secret_env} or pass --secret-file")
    return secret


def cmd_sign(args: argparse.Namespace) -> int:
    """Print the webhook's auth headers for a body or a query, or a ready curl command.

    With ``--idempotency-key`` the key is signed too and printed as a third header
    (after the two auth headers, so scripts reading lines 1 and 2 keep working).
    """
    import shlex
    from urllib.parse import parse_qsl, quote, urlencode

    from cbsnap.webauth import auth_headers, signing_payload

    params: dict[str, str] = {}
    if args.body_file is not None:
        body = Path(args.body_file).read_bytes()
    else:
        body = (args.body or "").encode("utf-8")
    if args.query:
        if body:
            raise SystemExit("give a body or a query, not both: a body-less request signs its query")
        for name, value in parse_qsl(args.query, keep_blank_values=True, strict_parsing=True):
            if name in params:
                raise SystemExit(f"query parameter {name!r} is given twice")
            params[name] = value
    now = float(args.timestamp) if args.timestamp is not None else time.time()
    key = args.idempotency_key
    if key is not None and not (1 <= len(key) <= 128 and all("\x21" <= c <= "\x7e" for c in key)):
        raise SystemExit("--idempotency-key must be 1-128 printable ASCII characters, no spaces")
    headers = auth_headers(_sign_secret(args), signing_payload(body, params), now, key=key)
    if not args.curl:
        for name, value in headers.items():
            print(f"{name}: {value}")
        return 0
    method = args.method or ("POST" if body else "GET")
    url = args.curl
    if params:  # what is sent is what was signed: the same sorted parameters
        url += ("&" if "?" in url else "?") + urlencode(sorted(params.items()), quote_via=quote)
    words = ["curl", "--fail-with-body", "-sS", "-X", method]
    if body:
        content_type = args.content_type or (
            "application/json"
            if body.lstrip().startswith((b"{", b"["))
            else "application/x-www-form-urlencoded"
        )
        words += ["-H", f"Content-Type: {content_type}"]
    for name, value in headers.items():
        words += ["-H", f"{name}: {value}"]
    if args.body_file is not None:
        words += ["--data-binary", f"@{args.body_file}"]
    elif body:
        words += ["--data-binary", body.decode("utf-8")]
    words.append(url)
    print(shlex.join(words))
    return 0


# -- entry point ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="cbsnap", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    invoke = sub.add_parser("invoke", help="run a handler locally with an event file")
    invoke.add_argument("handler", choices=HANDLERS)
    invoke.add_argument("--event", required=True, help="path to the event JSON (see events/)")
    invoke.add_argument("--timeout", type=float, default=60.0, help="function timeout in seconds")
    invoke.add_argument("--emulator", action="store_true", help="run against an embedded emulator")
    invoke.add_argument("--seed", help="emulator seed file (with --emulator)")
    invoke.set_defaults(func=cmd_invoke)

    demo = sub.add_parser("demo", help="emulator + timer handler + progress, end to end")
    demo.add_argument("--event", help="timer event file (default events/timer.json)")
    demo.add_argument("--creation-seconds", type=float, default=5.0, help="emulated snapshot duration")
    demo.set_defaults(func=cmd_demo)

    sign = sub.add_parser("sign", help="sign a webhook call: print its auth headers or a curl command")
    what = sign.add_mutually_exclusive_group()
    what.add_argument("--body", help="the exact request body (e.g. a JSON request document)")
    what.add_argument("--body-file", help="read the exact request body from this file")
    sign.add_argument("--query", help="query parameters of a body-less call, e.g. 'Action=CreateSnapshot&…'")
    sign.add_argument(
        "--secret-env", default="CBSNAP_WEBHOOK_SECRET", help="environment variable holding the secret"
    )
    sign.add_argument("--secret-file", help="read the secret from this file instead")
    sign.add_argument("--timestamp", type=int, help="unix seconds to sign with (default: now)")
    sign.add_argument(
        "--idempotency-key", help="send (and sign) an Idempotency-Key header: retries make no second snapshot"
    )
    sign.add_argument("--curl", metavar="URL", help="print a ready curl command for this URL")
    sign.add_argument("--method", help="HTTP method for --curl (default: POST with a body, else GET)")
    sign.add_argument("--content-type", help="Content-Type for --curl (default: guessed from the body)")
    sign.set_defaults(func=cmd_sign)

    plan = sub.add_parser("plan", help="dry run: what a request would do (read-only API calls)")
    plan.add_argument("request", nargs="?", help="the request document as JSON")
    plan.add_argument("--file", help="read the request document from a file")
    plan.add_argument("--trigger", default="webhook", choices=("timer", "cmq", "webhook"))
    plan.add_argument("--json", action="store_true", help="print the JSON answer instead of a table")
    plan.add_argument("--timeout", type=float, default=60.0)
    plan.add_argument("--emulator", action="store_true", help="against an embedded emulator")
    plan.add_argument("--seed", help="emulator seed file (with --emulator)")
    plan.set_defaults(func=cmd_plan)

    drain_cmd = sub.add_parser("drain", help="feed an emulator queue to the message handler")
    drain_cmd.add_argument("--queue", default="cbsnap-work", help="the queue to drain (default cbsnap-work)")
    drain_cmd.add_argument("--emulator-url", default="http://127.0.0.1:9000", help="the running emulator")
    drain_cmd.set_defaults(func=cmd_drain)

    deploy.register(sub)  # cbsnap deploy: lib/cbsnap_cli/deploy/

    emulator = sub.add_parser("emulator", help="serve the API emulator", add_help=False)
    emulator.add_argument("rest", nargs=argparse.REMAINDER)
    emulator.set_defaults(func=cmd_emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cbsnap`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["emulator"]:  # everything after it belongs to the emulator's own parser
        return cmd_emulator(argparse.Namespace(rest=argv[1:]))
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
