"""``cbsnap serve``: the deployed function behind a local HTTP endpoint, as API Gateway calls it.

Each HTTP request becomes the event SCF would deliver (``cbsnap_cli.http_events``) and goes to
``index.main_handler``; the handler's integrated response becomes the HTTP response. So the
README's pre-deploy script, curl or any pipeline step can be tried against
``http://127.0.0.1:PORT/release`` before anything is deployed.
"""

from __future__ import annotations

import argparse
import errno
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from cbsnap_cli import handlers
from cbsnap_cli.args import port_number, positive_seconds
from cbsnap_cli.errors import ExitCode, UsageError, report_handler_error
from cbsnap_cli.http_events import (
    APIGW,
    SHAPES,
    HttpRequest,
    UnsupportedRequest,
    apigw_event,
    error_answer,
    function_url_event,
    http_answer,
)

if TYPE_CHECKING:
    from cbsnap.settings import Settings

DEFAULT_PORT = 8080
DEFAULT_STAGE = "release"  # serverless.yml's API Gateway environment
MAX_BODY = 10 * 1024 * 1024  # far above CBSNAP_WEBHOOK_MAX_BODY: the function decides, not us

DESCRIPTION = """\
Serve the function over HTTP on this machine: every request becomes the event API Gateway (or,
with --shape url, a function URL) would deliver to index.main_handler, and the handler's answer
becomes the HTTP response. Point the README's pre-deploy script at it with
API=http://127.0.0.1:PORT/release (the stage prefix is optional).

API calls go to an embedded emulator (the demo seed's disks) unless CBSNAP_ENDPOINT is set; then
to that endpoint with TENCENTCLOUD_SECRETID/TENCENTCLOUD_SECRETKEY. Webhook calls are checked
against CBSNAP_WEBHOOK_SECRET, as deployed (CBSNAP_WEBHOOK_AUTH=gateway turns the check off).
One invocation runs at a time, like one SCF instance. Stop with Ctrl-C."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the ``cbsnap`` parser."""
    parser = subparsers.add_parser(
        "serve",
        help="serve the function over local HTTP, as API Gateway would call it",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help="port to listen on; 0 = any free port (default: 8080)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default=APIGW,
        help="the event shape: apigw (API Gateway trigger) or url (function URL) (default: apigw)",
    )
    parser.add_argument(
        "--stage",
        default=DEFAULT_STAGE,
        help="API Gateway stage: stripped from request paths and put in the event (default: release)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=handlers.DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="the function timeout each invocation sees (default: 60, as in serverless.yml)",
    )
    parser.add_argument(
        "--seed", metavar="FILE", help="the embedded emulator's seed (default: the demo seed)"
    )
    parser.add_argument(
        "--creation-seconds",
        type=positive_seconds,
        default=3.0,
        metavar="SECONDS",
        help="how long an emulated snapshot stays CREATING (default: 3)",
    )
    parser.set_defaults(func=run)


class FunctionServer(ThreadingHTTPServer):
    """An HTTP server whose every request is one invocation of ``handler``."""

    daemon_threads = True  # Ctrl-C must not wait for a long ?wait=N poll

    def __init__(
        self,
        address: tuple[str, int],
        handler: handlers.Handler,
        *,
        shape: str = APIGW,
        stage: str = DEFAULT_STAGE,
        timeout_s: float = handlers.DEFAULT_TIMEOUT_S,
        log: Callable[[str], None] = print,
    ) -> None:
        super().__init__(address, _RequestHandler)
        self.function = handler
        self.shape = shape
        self.stage = stage.strip("/")
        self.timeout_s = timeout_s
        self.log = log
        self.invocation = threading.Lock()  # one at a time, like one SCF instance

    @property
    def url(self) -> str:
        """The base URL callers use (with the stage for API Gateway events)."""
        host, port = self.server_address[:2]
        host = "127.0.0.1" if host == "0.0.0.0" else str(host)  # a wildcard bind answers on loopback
        base = f"http://{host}:{port}"
        return f"{base}/{self.stage}" if self.shape == APIGW and self.stage else base

    def invoke(self, request: HttpRequest) -> tuple[int, dict[str, str], bytes]:
        """Run the function for one request; always answers (a raising handler is a 502)."""
        request_id = str(uuid.uuid4())
        try:
            if self.shape == APIGW:
                event = apigw_event(request, stage=self.stage, request_id=request_id)
            else:
                event = function_url_event(request)
        except UnsupportedRequest as exc:
            answer = error_answer(400, str(exc))
            return answer.status, answer.headers, answer.body
        with self.invocation:
            try:
                raw: Any = self.function(event, handlers.scf_context(self.timeout_s, request_id))
                answer = http_answer(raw)
            except Exception as exc:  # the function failed; SCF answers the caller with an error
                report_handler_error(exc, "serve")
                answer = error_answer(502, f"the function raised {type(exc).__name__}")
        return answer.status, answer.headers, answer.body


class _RequestHandler(BaseHTTPRequestHandler):
    server: FunctionServer

    def _serve(self) -> None:
        started = time.monotonic()
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._send(411, {"Content-Type": "text/plain"}, b"send a Content-Length\n")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._send(400, {"Content-Type": "text/plain"}, b"bad Content-Length\n")
            return
        body = self.rfile.read(length) if length else b""
        request = HttpRequest(
            self.command, self.path, list(self.headers.items()), body, self.client_address[0]
        )
        status, headers, payload = self.server.invoke(request)
        self._send(status, headers, payload)
        self.server.log(f"{self.command} {self.path} -> {status} ({time.monotonic() - started:.1f} s)")

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the server logs one line per invocation itself (``FunctionServer.log``)."""


@contextmanager
def _server(args: argparse.Namespace, handler: handlers.Handler) -> Iterator[FunctionServer]:
    try:
        server = FunctionServer(
            (args.host, args.port),
            handler,
            shape=args.shape,
            stage=args.stage,
            timeout_s=args.timeout,
            log=lambda line: print(line, flush=True),
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {args.port} is in use", "pick another with --port, or --port 0 for any free port"
            ) from None
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    try:
        yield server
    finally:
        server.server_close()


def _check_webhook_auth(settings: Settings) -> None:
    if settings.webhook_secret is None and settings.webhook_auth != "gateway":
        raise UsageError(
            "CBSNAP_WEBHOOK_SECRET is not set, so the webhook would refuse every call with 401",
            "export the secret your calls are signed with (cbsnap sign reads the same variable), "
            "or CBSNAP_WEBHOOK_AUTH=gateway to turn the check off locally",
        )


@contextmanager
def _api(args: argparse.Namespace) -> Iterator[tuple[Settings, str]]:
    """Settings for the function, and one line saying where its API calls go."""
    from cbsnap_cli.config import cloud_settings, emulator_settings, settings_from_env, started_emulator

    base = settings_from_env()
    if base.endpoint.host is not None:
        if args.seed is not None:
            raise UsageError(
                "--seed applies to the embedded emulator", "unset CBSNAP_ENDPOINT, or drop --seed"
            )
        settings = cloud_settings(fix="or unset CBSNAP_ENDPOINT to use an embedded emulator")
        yield (
            settings,
            f"API calls go to {settings.endpoint.protocol}://{settings.endpoint.host} (CBSNAP_ENDPOINT)",
        )
        return
    with started_emulator(args.seed, creation_seconds=args.creation_seconds) as emulator:
        where = (
            f"API calls go to an embedded emulator at {emulator.url} "
            f"({len(emulator.disks())} disks; admin API at {emulator.url}/_emulator/)"
        )
        yield emulator_settings(emulator, base), where


def run(args: argparse.Namespace) -> ExitCode:
    """Serve until Ctrl-C or SIGTERM."""
    from cbsnap.runtime import Runtime, set_runtime
    from cbsnap_cli.config import settings_from_env
    from cbsnap_emulator.cli import stop_on_signals  # at run time: the emulator costs 0.1 s to import

    _check_webhook_auth(settings_from_env())  # before anything starts: nothing to undo
    handler = handlers.load_handler("index")
    stop = threading.Event()
    # signals are handled from the start: a signal during start-up still stops cleanly
    with stop_on_signals(stop), _server(args, handler) as server, _api(args) as (settings, where):
        set_runtime(Runtime.from_settings(settings, stream=sys.stderr))
        thread = threading.Thread(target=server.serve_forever, name="cbsnap-serve", daemon=True)
        thread.start()
        shape = "API Gateway events" if args.shape == APIGW else "function URL events"
        print(f"cbsnap serve: index.main_handler on {server.url} ({shape})")
        print(f"  export API={server.url}")
        print(f"  {where}")
        print("  the function's log records go to stderr; one line per request here")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
            set_runtime(None)
    print("cbsnap serve stopped.", flush=True)
    return ExitCode.OK
