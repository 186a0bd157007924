"""``cbsnap deploy``: make SCF match serverless.yml through the official SCF API (docs/deploy.md).

Modules: ``config`` (reading the file), ``model`` (the desired state), ``planner`` (the diff), ``scf_api``
(the SDK wrapper), ``executor`` (making the changes) and ``command`` (the CLI). Importing this package is
cheap; the SDK and PyYAML are imported when the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``deploy`` subcommand to the ``cbsnap`` parser's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "deploy", help="make SCF match serverless.yml (function, triggers, async retries)"
    )
    parser.add_argument(
        "--config", default="serverless.yml", help="the configuration file (default serverless.yml)"
    )
    parser.add_argument("--stage", help="the stage for ${stage} (default: the file's stage, else dev)")
    parser.add_argument("--zip", help="the code package (default: dist/cbsnap-scf.zip beside the file)")
    parser.add_argument("--plan", action="store_true", help="print the changes and make none")
    parser.add_argument("--yes", action="store_true", help="delete triggers without asking")

    def run(args: argparse.Namespace) -> int:
        from .command import main

        return main(args)

    parser.set_defaults(func=run)
    return parser
