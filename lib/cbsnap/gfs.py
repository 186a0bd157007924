"""Generations (grandfather-father-son) retention rules: pure functions, no I/O.

The semantics are restic's ``forget --keep-*`` (and Tencent's AdvancedRetentionPolicy in
spirit): snapshots are taken newest first, and each count rule keeps

* ``keepLast N`` — the N newest;
* ``daily N`` — the newest snapshot of each of the last N **days that have a snapshot**;
* ``weekly N`` — likewise per ISO week (Monday to Sunday), ``monthly N`` per calendar month,
  ``yearly N`` per calendar year.

A snapshot kept by any rule stays. Days, weeks, months and years are calendar buckets in one
time zone (UTC unless the request names an IANA zone), computed from the snapshot's creation
instant (read through :mod:`cbsnap.cbs_time`). Because a new snapshot is always the newest,
adding one only pushes older snapshots out of the rules' reach, never back in: deleting what
the rules do not keep today never removes something they would keep tomorrow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import Any

__all__ = ["GENERATIONS", "RULE_ORDER", "Dated", "Verdict", "apply_rules", "zone_named"]

Bucket = Callable[[datetime], Any]

GENERATIONS: dict[str, Bucket] = {
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: tuple(t.isocalendar())[:2],
    "monthly": lambda t: (t.year, t.month),
    "yearly": lambda t: t.year,
}
RULE_ORDER = ("keepLast", "daily", "weekly", "monthly", "yearly")


def zone_named(name: str) -> tzinfo | None:
    """The IANA time zone ``name`` (``"UTC"``, ``"Asia/Shanghai"``…), or None if unknown.

    ``zoneinfo`` reads the system's tz database (or the ``tzdata`` package, if installed). The
    SCF package does not ship ``tzdata`` (size); on a runtime without a tz database every zone
    but UTC is unknown, and the request says so (9003) instead of bucketing in a wrong zone.
    """
    if name in ("UTC", "Etc/UTC"):
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


@dataclass(frozen=True)
class Dated:
    """A snapshot with a known creation instant (epoch seconds)."""

    snapshot_id: str
    created: float


@dataclass(frozen=True)
class Verdict:
    """What the count rules say about one snapshot.

    ``kept_by`` names the rules that keep it. For one they do not keep, ``would_keep`` says,
    per rule, the count that would have kept it (it is the newest of its day, week… and that
    bucket is the k-th most recent with a snapshot): ``{"daily": 9}`` reads "daily ≥ 9 would
    have kept it".
    """

    kept_by: tuple[str, ...] = ()
    would_keep: Mapping[str, int] = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        """True when any rule keeps the snapshot."""
        return bool(self.kept_by)


def apply_rules(
    snapshots: Sequence[Dated], rules: Mapping[str, int], zone: tzinfo, *, explain: bool = True
) -> dict[str, Verdict]:
    """Every snapshot's :class:`Verdict` under the count ``rules`` (``keepLast`` and generations).

    ``snapshots`` may come in any order; ties in time keep their given order (the first
    given counts as the newer). With ``explain`` False the verdicts of snapshots no rule
    keeps carry no ``would_keep`` (each rule stops at its last kept bucket). Pure.
    """
    order = sorted(range(len(snapshots)), key=lambda i: (-snapshots[i].created, i))
    local: list[datetime] | None = None
    kept: dict[str, list[str]] = {s.snapshot_id: [] for s in snapshots}
    would: dict[str, dict[str, int]] = {}
    for rule in RULE_ORDER:
        count = rules.get(rule)
        if not count:
            continue
        bucket_of = GENERATIONS.get(rule)
        if bucket_of is not None and local is None:
            local = [datetime.fromtimestamp(s.created, zone) for s in snapshots]
        last: object = object()
        ordinal = 0
        for rank, index in enumerate(order):
            snap = snapshots[index]
            bucket: object = rank if bucket_of is None or local is None else bucket_of(local[index])
            if bucket == last:
                continue  # an older snapshot of a bucket already represented
            last = bucket
            ordinal += 1
            if ordinal <= count:
                kept[snap.snapshot_id].append(rule)
            elif not explain:
                break
            else:
                would.setdefault(snap.snapshot_id, {})[rule] = ordinal
    return {sid: Verdict(tuple(by), {} if by else would.get(sid, {})) for sid, by in kept.items()}


def describe_would_keep(verdict: Verdict) -> str:
    """``"daily ≥ 9 or weekly ≥ 5 would have kept it"``, or that no rule would have."""
    if not verdict.would_keep:
        return "no rule would keep it (not the newest of its day, week, month or year)"
    parts = [f"{rule} ≥ {count}" for rule, count in verdict.would_keep.items()]
    return " or ".join(parts) + " would have kept it"
