"""Look-before-create: finding the snapshots a request already made, by their key tag.

Nothing in an SCF event says "this is a redelivery", so before creating, cbsnap asks
DescribeSnapshots for the disk's snapshots and matches its own ``cbsnap:key`` tag
(DescribeSnapshots has no documented tag filter). Pages come newest first, and paging
stops once everything looked for is found or the page is older than the retry horizon:
a key older than that cannot come back. Single disks and consistent groups use the same
look; only what counts as "found" differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from cbsnap.cbs import CbsApi, SnapshotInfo
from cbsnap.cbs_time import parse_cbs_time
from cbsnap.scf import Clock, Deadline

# SCF retries async run errors for minutes, over-limit errors for up to 24 h, and
# async events live 6 h by default: a day covers every redelivery path.
DEFAULT_HORIZON_SECONDS = 24 * 3600.0
# Margin on the horizon: clock skew between this function and CBS, and the zone of
# CreateTime (read as UTC+8, see cbsnap.cbs_time) being wrong by up to 8 hours.
HORIZON_SLACK_SECONDS = 9 * 3600.0

Match = Callable[[SnapshotInfo], "str | None"]


class KeyedLookup:
    """Finds tagged snapshots of up to 10 disks within the retry horizon."""

    def __init__(self, *, horizon_seconds: float = DEFAULT_HORIZON_SECONDS, wall_clock: Clock = time.time):
        self._horizon = horizon_seconds
        self._wall_clock = wall_clock

    def find(
        self, api: CbsApi, disk_ids: Sequence[str], match: Match, expected: int, deadline: Deadline
    ) -> dict[str, SnapshotInfo]:
        """The newest snapshot for each name ``match`` gives (None: not ours), up to ``expected`` names.

        Raises :class:`~cbsnap.errors.CloudError`/:class:`~cbsnap.errors.DeadlineReached`
        when it cannot look: the caller must then not create (it cannot tell a first
        delivery from a redelivery).
        """
        cutoff = self._wall_clock() - self._horizon - HORIZON_SLACK_SECONDS
        found: dict[str, SnapshotInfo] = {}
        offset = 0
        while True:
            total, page = api.describe_snapshots(deadline, disk_ids=disk_ids, offset=offset)
            for snap in page:
                name = match(snap)
                if name is not None and name not in found:
                    found[name] = snap
            offset += len(page)
            oldest = parse_cbs_time(page[-1].create_time) if page else None
            if (
                len(found) >= expected
                or not page
                or offset >= total
                or (oldest is not None and oldest.timestamp() < cutoff)
            ):
                return found
