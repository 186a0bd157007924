"""What every ``cbsnap`` command exits with, and the one exception for a mistake the user can fix.

Commands raise :class:`UsageError` for anything the person at the keyboard can correct (a missing
file, a bad flag value, a bad environment variable, an endpoint that does not answer); ``main``
catches it once and prints one line instead of a traceback. Outcomes (a disk failed, the webhook
answered 4xx/5xx) are not exceptions: commands return :class:`ExitCode` values.
"""

from __future__ import annotations

import os
import sys
import traceback
from enum import IntEnum


class ExitCode(IntEnum):
    """The exit status of every command (the same table is in ``cbsnap --help`` and the README)."""

    OK = 0  # every disk succeeded (plan: would succeed); a server stopped cleanly
    FAILED = 1  # a disk failed, the webhook answered non-2xx, or the handler raised
    USAGE = 2  # bad flags, bad files, bad configuration, endpoint unreachable at start


EXIT_STATUS_HELP = """\
exit status (the same for every command):
  0  every disk succeeded (plan: every disk would); sign printed its output; serve and
     emulator were stopped with Ctrl-C
  1  a disk failed, the webhook answered non-2xx, or the handler raised
  2  usage or configuration error: a bad flag, an unreadable or malformed event or request file,
     a bad CBSNAP_* variable, no credentials or webhook secret, an endpoint that does not answer
     at start, a port out of range or in use"""


class UsageError(Exception):
    """A mistake the user can fix: ``message`` says what is wrong, ``fix`` how to put it right."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}; {self.fix}" if self.fix else self.message


def report_handler_error(exc: BaseException, command: str) -> None:
    """One line on stderr for a handler that raised; the traceback only when CBSNAP_DEBUG is set.

    A raising handler is the function failing (SCF would log it and, for async events, retry), not
    a mistake of the user's; the line names the exception so the log records above it make sense.
    """
    if os.environ.get("CBSNAP_DEBUG"):
        traceback.print_exception(exc, file=sys.stderr)
    first = str(exc).splitlines()[0] if str(exc) else ""
    print(
        f"cbsnap {command}: the handler raised {type(exc).__name__}: {first} "
        "(set CBSNAP_DEBUG=1 for the traceback)",
        file=sys.stderr,
    )
