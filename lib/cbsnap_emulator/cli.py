"""Command line: serve the emulator until interrupted and print what a client needs to export."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

from .auth import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY
from .emulator import Emulator
from .seed import load_seed


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0-65535 (0 = any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range: a port is 0-65535 (0 = any free port)")
    return port


def _start_problem(exc: Exception, args: argparse.Namespace) -> str:
    """One line saying why the emulator did not start, and what to do about it."""
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"port {args.port} is in use: pick another with --port, or --port 0 for any free port"
    if isinstance(exc, OSError) and exc.filename and args.seed:
        return f"cannot read the seed file {args.seed}: {exc.strerror or exc}"
    if isinstance(exc, json.JSONDecodeError):
        return f"the seed file {args.seed} is not valid JSON: {exc}"
    if isinstance(exc, OSError):
        return f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
    return f"bad seed {args.seed or '(packaged)'}: {exc}"


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Local Tencent Cloud API emulator for cbsnap: CBS, TDMQ CMQ, SCF, Tag and TAT.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_number, default=9000, help="port to bind, 0 for any free port (default 9000)"
    )
    parser.add_argument("--seed", metavar="FILE", help="seed JSON (default: the packaged demo seed)")
    parser.add_argument("--empty", action="store_true", help="start with no disks, queues or topics")
    parser.add_argument(
        "--creation-seconds", type=float, help="seconds a snapshot stays CREATING (default 3)"
    )
    parser.add_argument("--rate-limit", type=float, help="requests/s per action, 0 = unlimited (default 20)")
    parser.add_argument(
        "--rate-scope",
        choices=("action", "region"),
        help="one token bucket per action (default) or per region and action",
    )
    parser.add_argument(
        "--copy-seconds", type=float, help="seconds a cross-region snapshot copy takes (default 6)"
    )
    parser.add_argument("--command-seconds", type=float, help="seconds a TAT command runs (default 1)")
    parser.add_argument("--latency", type=float, help="seconds added to every API call (default 0)")
    parser.add_argument("--quota", type=int, help="snapshots per disk (default 64)")
    parser.add_argument("--rng-seed", type=int, help="seed for ids, for reproducible runs")
    return parser


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM (docker stop, a CI step's cleanup) or SIGINT (Ctrl-C) while the block
    runs; the previous handlers come back after it. Also used by ``cbsnap serve``.

    SIGINT is handled explicitly: a shell starts background jobs with SIGINT ignored, and Python then
    raises no KeyboardInterrupt, so `kill -INT` (or Ctrl-C after `fg`) would not stop the server.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None, prog: str = "python -m cbsnap_emulator") -> int:
    """Run the emulator until Ctrl-C or SIGTERM; return the exit status (2: it could not start)."""
    args = _parser(prog).parse_args(argv)
    try:
        seed = None if args.empty else load_seed(args.seed)
        emu = Emulator(
            seed,
            host=args.host,
            port=args.port,
            creation_seconds=args.creation_seconds,
            rate_limit=args.rate_limit,
            latency=args.latency,
            quota=args.quota,
            rng_seed=args.rng_seed,
            rate_scope=args.rate_scope,
            copy_seconds=args.copy_seconds,
            command_seconds=args.command_seconds,
        )
        emu.start()
    except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        print(f"cbsnap emulator: {_start_problem(exc, args)}", file=sys.stderr)
        return 2
    stop = threading.Event()
    try:
        # from the start: a signal while the banner prints still stops cleanly
        with stop_on_signals(stop):
            disks = emu.disks()
            # A wildcard bind is reachable on loopback; print an address clients can actually use.
            endpoint = emu.endpoint
            for wildcard, loopback in (("0.0.0.0:", "127.0.0.1:"), ("[::]:", "[::1]:")):
                if endpoint.startswith(wildcard):
                    endpoint = loopback + endpoint[len(wildcard) :]
            print(
                f"cbsnap emulator listening on http://{endpoint} ({len(disks)} disks; "
                "admin API at /_emulator/)"
            )
            # with the scheme: a bare host:port outside loopback would mean https to cbsnap
            print(f"export CBSNAP_ENDPOINT=http://{endpoint}")
            print(f"export TENCENTCLOUD_SECRETID={DEFAULT_SECRET_ID}")
            print(f"export TENCENTCLOUD_SECRETKEY={DEFAULT_SECRET_KEY}")
            print("Press Ctrl-C to stop.", flush=True)
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    with contextlib.suppress(OSError):  # stdout may be a closed pipe by now
        print("cbsnap emulator stopped.", flush=True)
    return 0
