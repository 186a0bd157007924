"""The emulator's state clock and the time formats of the CBS API.

The state clock is wall time plus an offset that :meth:`StateClock.advance` grows, so snapshots progress
in real time (the demo) and tests can jump forward without sleeping. Signature expiry deliberately uses
the real wall clock instead (a signed request is only valid for 5 minutes of *real* time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

# Output format of CreateTime/DeadlineTime ("2023-03-09 10:45:11"). The text carries no zone; Tencent
# writes it in Beijing time (UTC+8), as Tencent's own tools read it (docs/facts-corrections.md), so the
# emulator does too. China has no daylight saving time, so a fixed offset is exact.
API_DATETIME = "%Y-%m-%d %H:%M:%S"
CBS_ZONE = timezone(timedelta(hours=8), "UTC+08:00")


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
    """Format as the CBS ``datetime`` type, ``YYYY-MM-DD HH:MM:SS`` in Beijing time (UTC+8)."""
    return datetime.fromtimestamp(epoch, tz=CBS_ZONE).strftime(API_DATETIME)


def format_date(epoch: float) -> str:
    """Format as the CBS ``date`` type, ``YYYY-MM-DD`` in Beijing time (UTC+8)."""
    return datetime.fromtimestamp(epoch, tz=CBS_ZONE).strftime("%Y-%m-%d")


def format_iso(epoch: float) -> str:
    """Format as the API's ``datetime_iso`` type, e.g. ``2020-09-22T00:00:00+00:00``."""
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc).isoformat()


def parse_datetime(text: str) -> float:
    """Parse a zone-less ``YYYY-MM-DD HH:MM:SS`` as Beijing time (UTC+8), the zone the API writes it
    in, into epoch seconds; raises ValueError. A seed's CreateTime text thus reappears verbatim."""
    return datetime.strptime(text, API_DATETIME).replace(tzinfo=CBS_ZONE).timestamp()


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
