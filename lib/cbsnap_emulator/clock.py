"""The emulator's state clock and the time formats of the CBS API.

The state clock is wall time plus an offset that :meth:`StateClock.advance` grows, so snapshots progress
in real time (the demo) and tests can jump forward without sleeping. Signature expiry deliberately uses
the real wall clock instead (a signed request is only valid for 5 minutes of *real* time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

# Output format of CreateTime/DeadlineTime ("2023-03-09 10:45:11"). Tencent does not state the zone
# (probably UTC+8); the emulator uses UTC, see docs/emulator.md.
API_DATETIME = "%Y-%m-%d %H:%M:%S"


class StateClock:
    """Wall time plus an offset moved forward by :meth:`advance`; thread-safe."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Current emulator time, seconds since the epoch."""
        with self._lock:
            return self._wall() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (must be >= 0) and return the new time."""
        if seconds < 0:
            raise ValueError("the state clock only moves forward")
        with self._lock:
            self._offset += seconds
            return self._wall() + self._offset

    def reset(self) -> None:
        """Drop the accumulated offset (back to wall time)."""
        with self._lock:
            self._offset = 0.0

    @property
    def offset(self) -> float:
        """Seconds the clock has been advanced beyond wall time."""
        with self._lock:
            return self._offset


def format_datetime(epoch: float) -> str:
    """Format as the API's ``datetime`` type, ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime(API_DATETIME)


def format_date(epoch: float) -> str:
    """Format as the API's ``date`` type, ``YYYY-MM-DD`` (UTC)."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d")


def format_iso(epoch: float) -> str:
    """Format as the API's ``datetime_iso`` type, e.g. ``2020-09-22T00:00:00+00:00``."""
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc).isoformat()


def parse_datetime(text: str) -> float:
    """Parse ``YYYY-MM-DD HH:MM:SS`` (UTC) into epoch seconds; raises ValueError."""
    return datetime.strptime(text, API_DATETIME).replace(tzinfo=timezone.utc).timestamp()


def parse_iso8601(text: str) -> float:
    """Parse an ISO-8601 timestamp **with** an explicit offset (``Z`` allowed) into epoch seconds.

    A naive timestamp is rejected: the API demands UTC, and a naive local time is a caller bug worth
    surfacing. ``datetime.fromisoformat`` on Python 3.10 does not take ``Z``, hence the rewrite.
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return parsed.timestamp()
