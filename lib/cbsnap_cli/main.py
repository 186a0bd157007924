"""The ``cbsnap`` command: the parser, and dispatch to one module per command.

A command is a module of this package with ``register(subparsers)``, which adds its subparser and
sets ``func`` (``args -> ExitCode``); adding one is one line in :data:`COMMANDS`. Commands import
the product (pydantic, the SDK) inside ``func``, so ``cbsnap --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from cbsnap_cli.errors import EXIT_STATUS_HELP, ExitCode, UsageError

COMMANDS = (
    "cbsnap_cli.invoke",
    "cbsnap_cli.serve",
    "cbsnap_cli.plan",
    "cbsnap_cli.sign",
    "cbsnap_cli.demo",
    "cbsnap_cli.emulator_cmd",
    "cbsnap_cli.deploy",
    "cbsnap_cli.report",
)

DESCRIPTION = """\
cbsnap: event-driven CBS snapshots on Tencent Cloud SCF. These commands run the function on this
machine: against an embedded API emulator, a running one (CBSNAP_ENDPOINT=http://127.0.0.1:PORT)
or Tencent Cloud (TENCENTCLOUD_SECRETID/TENCENTCLOUD_SECRETKEY). `cbsnap COMMAND --help` tells
more about each command."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = argparse.ArgumentParser(
        prog="cbsnap",
        description=DESCRIPTION,
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cbsnap`` console script; returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")  # exits 2 with the usage
    args.extra = extra
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"cbsnap {args.command}: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print(f"cbsnap {args.command}: interrupted", file=sys.stderr)
        return 130  # the shell's convention for SIGINT
    except BrokenPipeError:  # `cbsnap plan … | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at interpreter exit
        return 141  # the shell's convention for SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
