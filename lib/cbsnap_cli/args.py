"""argparse types shared by the commands: values are checked where they are parsed (exit 2)."""

from __future__ import annotations

import argparse
import math


def port_number(text: str) -> int:
    """A TCP port, 0-65535 (0: any free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range: a port is 0-65535 (0 = any free port)")
    return port


def positive_seconds(text: str) -> float:
    """A number of seconds greater than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds greater than 0")
    return value
