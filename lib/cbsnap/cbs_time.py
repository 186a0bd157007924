"""CBS ``datetime`` text (``CreateTime``, ``DeadlineTime``): the one place cbsnap reads and writes it.

CBS writes these times as ``YYYY-MM-DD HH:MM:SS`` with no zone. The zone is Beijing time (UTC+8):
Tencent's own Cloud Custodian provider reads snapshot ``CreateTime`` as Asia/Shanghai, and the
Terraform provider parses it in the (Chinese) local zone; docs/facts-corrections.md has the evidence.
China keeps no daylight saving time, so a fixed +08:00 offset is exact. Everything cbsnap computes
with is an aware UTC ``datetime``; the conversion happens here and nowhere else.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

CBS_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CBS_ZONE = timezone(timedelta(hours=8), "UTC+08:00")


def parse_cbs_time(text: str | None) -> datetime | None:
    """The instant a CBS ``datetime`` text names, as an aware UTC datetime.

    Returns None for None, ``""`` (a permanent snapshot's DeadlineTime) and anything that is not
    ``YYYY-MM-DD HH:MM:SS``: callers treat an unreadable time as unknown rather than failing.
    """
    if not text:
        return None
    try:
        local = datetime.strptime(text.strip(), CBS_TIME_FORMAT)
    except ValueError:
        return None
    return local.replace(tzinfo=CBS_ZONE).astimezone(timezone.utc)


def format_cbs_time(moment: datetime | float) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in Beijing time, as CBS writes it, for an aware datetime or epoch seconds.

    Raises ValueError for a naive datetime: its zone would be a guess.
    """
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("format_cbs_time needs a timezone-aware datetime")
        return moment.astimezone(CBS_ZONE).strftime(CBS_TIME_FORMAT)
    return datetime.fromtimestamp(moment, tz=CBS_ZONE).strftime(CBS_TIME_FORMAT)
