"""Snapshot expiry at creation: ``retainDays`` or ``deadline`` become CreateSnapshot's
``Deadline`` so the cloud deletes the snapshot itself — nothing has to clean up.

Tencent requires the Deadline in UTC ISO-8601 and at least one day ahead.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cbsnap.models import ParsedRequest

MINIMUM = timedelta(days=1)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def expires_at(
    parsed: ParsedRequest, default_days: int | None, now: datetime
) -> tuple[str | None, str | None]:
    """``(Deadline for CreateSnapshot or None, problem or None)`` for one request.

    An explicit ``deadline`` wins over ``retainDays``, which wins over the
    trigger's configured default (``0``/None: keep forever).
    """
    if parsed.deadline is not None:
        if parsed.deadline - now < MINIMUM:
            return None, (
                f"deadline: {_iso(parsed.deadline)} is less than one day ahead; "
                "Tencent's minimum Deadline is one day after now"
            )
        return _iso(parsed.deadline), None
    days = parsed.retain_days if parsed.retain_days is not None else default_days
    if not days:
        return None, None
    return _iso(now + timedelta(days=days)), None
