"""``cbsnap emulator``: serve the CBS/TDMQ API emulator (its own options: ``cbsnap emulator --help``)."""

from __future__ import annotations

import argparse

from cbsnap_cli.errors import ExitCode


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``emulator`` to the ``cbsnap`` parser; every argument after it is the emulator's."""
    parser = subparsers.add_parser(
        "emulator",
        help="serve the CBS + TDMQ API emulator until Ctrl-C (cbsnap emulator --help)",
        add_help=False,  # --help belongs to the emulator's own parser
    )
    parser.set_defaults(func=run, passthrough=True)


def run(args: argparse.Namespace) -> ExitCode:
    """Run the emulator's command line with the remaining arguments."""
    from cbsnap_emulator.cli import main as emulator_main

    return ExitCode(emulator_main(list(args.extra), prog="cbsnap emulator"))
