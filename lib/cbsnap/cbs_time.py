"""CBS's zone-less times (``CreateTime``, ``DeadlineTime``: ``YYYY-MM-DD HH:MM:SS``), read in one place.

The text carries no zone. Tencent-authored code reads it as Beijing time (UTC+8): Cloud
Custodian's Tencent provider parses snapshot ``CreateTime`` with ``Asia/Shanghai``
(docs/facts-corrections.md has the evidence), and the emulator emits it the same way.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

CBS_ZONE = timezone(timedelta(hours=8), "Asia/Shanghai")
_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_cbs_time(text: str | None) -> datetime | None:
    """An aware UTC datetime for a CBS time text, or None when it does not parse."""
    if not text:
        return None
    try:
        return datetime.strptime(text, _FORMAT).replace(tzinfo=CBS_ZONE).astimezone(timezone.utc)
    except ValueError:
        return None


def format_cbs_time(moment: datetime) -> str:
    """The CBS text for an aware datetime (Beijing time, no zone)."""
    return moment.astimezone(CBS_ZONE).strftime(_FORMAT)
