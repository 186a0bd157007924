"""Coverage report (``"action": "report"``): which disks have a recent usable snapshot, and which do not.

For every disk the request resolves (explicit disks, a selector, or ``"selector": {"all": true}``
for every disk of the regions) one result::

    {"action": "report", "storageId": "disk-…", "region": "ap-guangzhou", "code": 0, "status": "ok",
     "lastSnapshotId": "snap-…", "lastSnapshotAt": "2026-11-29T18:00:04+00:00", "ageHours": 8.1,
     "snapshotCount": 7, "creating": 0, "copies": [], "stuckSnapshotIds": [],
     "deleteWithDisk": false, "last30Days": "000…111"}

``status`` (worst first): ``none`` — no usable (NORMAL) snapshot; ``stuck`` — a snapshot has been
CREATING longer than ``stuckHours`` (default 6); ``stale`` — usable ones, all older than
``rpoHours`` (default 26); ``ok``. Every snapshot of the disk counts, whoever made it, unless
``ownedOnly`` limits the report to cbsnap's (the ``cbsnap:owner`` tag). ``code`` is 0 for ``ok``
and 16101/16102/16103 otherwise (:mod:`cbsnap.codes`), so alarms can key on it; a report never
asks for a redelivery. ``deleteWithDisk`` is the disk's ``DeleteSnapshot`` flag: its
non-permanent snapshots are deleted when the disk is. ``copies`` lists regions holding (or
receiving) a cross-region copy of one of its snapshots, as far as the report can see: copies in
progress from the source's ``CopyingToRegions``, finished copies only where the report lists a
region wholesale and the copy still carries Tencent's default name ``Copied snap-… from …``
(a copy has no ``DiskId``). ``last30Days`` has one digit per UTC day, oldest first, ending
today: the number of usable snapshots created that day (9 means nine or more).

Read-only and cheap at fleet size: the disks come from DescribeDisks (100 a page), their
snapshots from DescribeSnapshots either by disk (the ``disk-id`` filter, 10 disks a call, 100
snapshots a page) or, when that needs more calls, as one region-wide listing (100 a page).
The choice is made per region from the disks' ``SnapshotCount``: when listing by disk needs more
than one call, one region-wide page is read, and its ``TotalCount`` tells whether paging the
region is cheaper (that first page is then reused). The summary states every call made.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cbsnap.cbs import DESCRIBE_SNAPSHOTS_MAX_DISKS, MAX_PAGES, PAGE_LIMIT, CbsApi, DiskInfo, SnapshotInfo
from cbsnap.cbs_time import parse_cbs_time
from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.models import REPORT_ACTION, DiskTarget, SnapshotResult
from cbsnap.ownership import OWNER_TAG
from cbsnap.request import Placed, Request
from cbsnap.scf import Deadline
from cbsnap.selectors import Resolution
from cbsnap.workers import Parallel, sequential

DEFAULT_RPO_HOURS = 26
DEFAULT_STUCK_HOURS = 6
HISTORY_DAYS = 30
USABLE = "NORMAL"
CREATING = "CREATING"
# Worst first: the order of the summary, the HTML table and the CLI's table.
STATUSES = ("error", "none", "stuck", "stale", "ok")  # "error": the listing failed (coverage unknown)
_CODES = {
    "ok": SeedCode.SUCCESS,
    "stale": SeedCode.COVERAGE_STALE,
    "none": SeedCode.COVERAGE_NONE,
    "stuck": SeedCode.SNAPSHOT_STUCK,
}
# Tencent's default name of a cross-region copy (a recorded DescribeSnapshots answer; see
# docs/facts-corrections.md): the only link from a finished copy back to its source.
_COPY_NAME = re.compile(r"^Copied (snap-[a-z0-9]{8}) from ([a-z0-9-]+)$")

WallClock = Callable[[], datetime]


@dataclass
class _Listing:
    """What one region's listing found: snapshots by disk, copies by source, how it listed."""

    by_disk: dict[str, list[SnapshotInfo]] = field(default_factory=dict)
    copies: dict[str, set[str]] = field(default_factory=dict)  # source snapshot id -> regions
    failed: dict[str, CloudError | DeadlineReached] = field(default_factory=dict)  # disk -> why
    mode: str = "by-disk"


class CoverageReport:
    """Classifies the resolved disks' snapshot coverage (see the module docstring)."""

    def __init__(
        self,
        apis: Callable[[str], CbsApi],
        *,
        parallel: Parallel = sequential,
        wall_clock: WallClock = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._apis = apis
        self._parallel = parallel
        self._wall_clock = wall_clock

    def report(
        self, request: Request, resolution: Resolution, deadline: Deadline
    ) -> tuple[list[Placed], dict[str, Any]]:
        """One placed result per disk in scope, and the summary (counts, settings, API calls).

        Disks the resolver refused for snapshotting (SnapshotAbility false, shared, recycling)
        are still in scope: a report covers what exists, not what cbsnap could snapshot.
        """
        options = request.options
        assert options is not None
        rpo = options.rpoHours or DEFAULT_RPO_HOURS
        stuck_after = options.stuckHours or DEFAULT_STUCK_HOURS
        targets, placed = _in_scope(resolution)
        now = self._wall_clock()
        regions = list(dict.fromkeys(t.region or "" for t in targets))

        def list_region(region: str) -> _Listing:
            in_region = [t for t in targets if (t.region or "") == region]
            return self._list_region(region, in_region, resolution, deadline)

        listings = dict(zip(regions, self._parallel(list_region, regions), strict=True))
        copies: dict[str, set[str]] = {}
        for listing in listings.values():
            for source, where in listing.copies.items():
                copies.setdefault(source, set()).update(where)
        for target in targets:
            listing = listings[target.region or ""]
            info = resolution.infos[target.disk_id]
            failed = listing.failed.get(target.disk_id)
            if failed is not None:
                placed.append((target.position, _error(target, failed, info)))
                continue
            snaps = listing.by_disk.get(target.disk_id, [])
            if options.ownedOnly:
                snaps = [s for s in snaps if s.tags.get(OWNER_TAG)]
            result = classify(target, info, snaps, copies, now=now, rpo_hours=rpo, stuck_hours=stuck_after)
            placed.append((target.position, result))
        summary = summarize(
            [r for _, r in placed if r.action == REPORT_ACTION],
            rpo_hours=rpo,
            stuck_hours=stuck_after,
            owned_only=options.ownedOnly,
        )
        summary["listing"] = {region: listing.mode for region, listing in listings.items()}
        return placed, summary

    # -- listing ---------------------------------------------------------------------------------

    def _list_region(
        self, region: str, targets: list[DiskTarget], resolution: Resolution, deadline: Deadline
    ) -> _Listing:
        api = self._apis(region)
        disk_ids = [t.disk_id for t in targets]
        listing = _Listing(by_disk={d: [] for d in disk_ids})
        batches = [
            disk_ids[i : i + DESCRIBE_SNAPSHOTS_MAX_DISKS]
            for i in range(0, len(disk_ids), DESCRIBE_SNAPSHOTS_MAX_DISKS)
        ]
        by_disk_calls = sum(
            max(1, math.ceil(sum(resolution.infos[d].snapshot_count for d in batch) / PAGE_LIMIT))
            for batch in batches
        )
        if by_disk_calls > 1:
            try:
                total, first = api.describe_snapshots(deadline, offset=0, limit=PAGE_LIMIT)
            except (CloudError, DeadlineReached) as exc:
                listing.failed = dict.fromkeys(disk_ids, exc)
                return listing
            if max(1, math.ceil(total / PAGE_LIMIT)) <= by_disk_calls:
                listing.mode = "region"
                try:
                    snaps = first + _pages(api, deadline, total, start=len(first))
                except (CloudError, DeadlineReached) as exc:
                    listing.failed = dict.fromkeys(disk_ids, exc)
                    return listing
                self._file(listing, snaps, region)
                return listing

        def batch_work(batch: list[str]) -> list[SnapshotInfo] | CloudError | DeadlineReached:
            try:
                total, first = api.describe_snapshots(deadline, disk_ids=batch, offset=0, limit=PAGE_LIMIT)
                return first + _pages(api, deadline, total, start=len(first), disk_ids=batch)
            except (CloudError, DeadlineReached) as exc:
                return exc

        for batch, found in zip(batches, self._parallel(batch_work, batches), strict=True):
            if isinstance(found, list):
                self._file(listing, found, region)
            else:
                listing.failed.update(dict.fromkeys(batch, found))
        return listing

    @staticmethod
    def _file(listing: _Listing, snaps: Sequence[SnapshotInfo], region: str) -> None:
        """Sort snapshots into their disks (deduplicated: paging may repeat one) and note copies."""
        seen: set[str] = set()
        for snap in snaps:
            if snap.snapshot_id in seen:
                continue
            seen.add(snap.snapshot_id)
            if snap.disk_id in listing.by_disk:
                listing.by_disk[snap.disk_id].append(snap)
            if snap.copy_from_remote:
                match = _COPY_NAME.match(snap.name)
                if match:
                    listing.copies.setdefault(match.group(1), set()).add(region)


def _pages(
    api: CbsApi, deadline: Deadline, total: int, *, start: int, disk_ids: Sequence[str] = ()
) -> list[SnapshotInfo]:
    """The pages after the first ``start`` snapshots (newest first, 100 a page) up to ``total``."""
    found: list[SnapshotInfo] = []
    offset = start
    for _ in range(MAX_PAGES):
        if offset >= total:
            break
        _, page = api.describe_snapshots(deadline, disk_ids=disk_ids, offset=offset, limit=PAGE_LIMIT)
        if not page:  # the listing shrank under us (expiry): what was read is all there is
            break
        found.extend(page)
        offset += len(page)
    return found


def _in_scope(resolution: Resolution) -> tuple[list[DiskTarget], list[Placed]]:
    """The disks DescribeDisks found (eligible or refused for snapshotting), and the results
    of those it did not (not found, lookup failed), kept as the resolver gave them."""
    targets = [t for t in resolution.eligible if t.disk_id in resolution.infos]
    placed: list[Placed] = []
    for position, result in resolution.refused:
        if result.storageId is not None and result.storageId in resolution.infos:
            targets.append(DiskTarget(result.storageId, "", position, result.region))
        else:
            # A report never asks for a redelivery: a lookup that may pass is reported, not retried.
            update = {"action": REPORT_ACTION, "status": "error", "attempted": True}
            placed.append((position, result.model_copy(update=update)))
    return targets, placed


def classify(
    target: DiskTarget,
    info: DiskInfo,
    snaps: Sequence[SnapshotInfo],
    copies: dict[str, set[str]],
    *,
    now: datetime,
    rpo_hours: int,
    stuck_hours: int,
) -> SnapshotResult:
    """One disk's coverage result from its snapshots (pure: no calls)."""
    dated = [(parse_cbs_time(s.create_time), s) for s in snaps]
    usable = sorted(
        ((at, s) for at, s in dated if s.state == USABLE and at is not None),
        key=lambda pair: (pair[0], pair[1].snapshot_id),
    )
    creating = [(at, s) for at, s in dated if s.state == CREATING]
    stuck_cut = now - timedelta(hours=stuck_hours)
    stuck = sorted(s.snapshot_id for at, s in creating if at is not None and at <= stuck_cut)
    last_at, last = usable[-1] if usable else (None, None)
    age = (now - last_at).total_seconds() / 3600 if last_at is not None else None
    if last is None:
        status, message = "none", "no usable (NORMAL) snapshot"
    elif stuck:
        status = "stuck"
        message = f"{', '.join(stuck)} CREATING for more than {stuck_hours} h"
    elif age is not None and age > rpo_hours:
        status, message = "stale", f"newest usable snapshot is {age:.1f} h old (RPO {rpo_hours} h)"
    else:
        status, message = "ok", ""
    if status == "none" and stuck:
        message += f"; {', '.join(stuck)} CREATING for more than {stuck_hours} h"
    if info.delete_with_disk:
        doomed = sum(1 for s in snaps if not s.is_permanent)
        message += ("; " if message else "") + (
            f"DeleteSnapshot=1: its non-permanent snapshots ({doomed} now) are deleted with the disk"
        )
    regions: set[str] = set()
    for snap in snaps:
        regions.update(snap.copying_to)
        regions.update(copies.get(snap.snapshot_id, ()))
    code = _CODES[status]
    return SnapshotResult.record(
        target.disk_id,
        None,
        code,
        message,
        region=target.region,
        action=REPORT_ACTION,
        status=status,
        lastSnapshotId=last.snapshot_id if last is not None else None,
        lastSnapshotAt=last_at.isoformat() if last_at is not None else None,
        ageHours=round(age, 1) if age is not None else None,
        snapshotCount=len(snaps),
        creating=len(creating),
        copies=sorted(regions),
        stuckSnapshotIds=stuck,
        deleteWithDisk=info.delete_with_disk,
        last30Days=history(usable, now),
    )


def history(usable: Sequence[tuple[datetime, SnapshotInfo]], now: datetime) -> str:
    """One digit per UTC day of the last :data:`HISTORY_DAYS`, oldest first: usable snapshots made."""
    today = now.astimezone(timezone.utc).date()
    counts = [0] * HISTORY_DAYS
    for at, _ in usable:
        back = (today - at.astimezone(timezone.utc).date()).days
        if 0 <= back < HISTORY_DAYS:
            counts[HISTORY_DAYS - 1 - back] += 1
    return "".join(str(min(c, 9)) for c in counts)


def _error(target: DiskTarget, exc: CloudError | DeadlineReached, info: DiskInfo) -> SnapshotResult:
    """A disk whose snapshots could not be listed: the cloud's code (6000 when out of time)."""
    if isinstance(exc, CloudError):
        code, message, request_id = exc.seed_code, exc.describe(), exc.request_id
    else:
        code, message, request_id = SeedCode.INTERNAL_ERROR, str(exc), None
    return SnapshotResult.failure(
        target.disk_id, None, code, message, request_id=request_id, region=target.region
    ).model_copy(update={"action": REPORT_ACTION, "status": "error", "deleteWithDisk": info.delete_with_disk})


def summarize(
    results: Sequence[SnapshotResult], *, rpo_hours: int, stuck_hours: int, owned_only: bool
) -> dict[str, Any]:
    """Counts per status (worst first), flagged disks, and the settings the report used."""
    counts = dict.fromkeys(STATUSES, 0)
    for result in results:
        counts[result.status or "error"] += 1
    return {
        "disks": len(results),
        **counts,
        "deleteWithDisk": sum(1 for r in results if r.deleteWithDisk),
        "stuckSnapshots": sum(len(r.stuckSnapshotIds or ()) for r in results),
        "rpoHours": rpo_hours,
        "stuckHours": stuck_hours,
        "ownedOnly": owned_only,
    }


def worst_first(results: Sequence[SnapshotResult]) -> list[SnapshotResult]:
    """Report results sorted worst status first, then oldest last snapshot first, then by disk."""
    rank = {status: i for i, status in enumerate(STATUSES)}

    def key(r: SnapshotResult) -> tuple[int, float, str]:
        age = r.ageHours if r.ageHours is not None else math.inf
        return rank.get(r.status or "error", len(STATUSES)), -age, r.storageId or ""

    return sorted(results, key=key)
