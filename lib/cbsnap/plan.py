"""Dry run: what a request would do, checked against the cloud with read-only calls.

For every disk: it exists (DescribeDisks), can be snapshotted (SnapshotAbility,
state), has quota headroom (SnapshotCount against the 64-per-disk quota, after the
room its retention rules would make), has no snapshot already CREATING, and whether
this request already made its snapshot (a run would adopt it). With ``retention``, one
``"action": "delete"`` record per snapshot the rules would delete right after the create
(its ID, age, and which rule would have kept it otherwise), and a warning when the rules
can keep more than the quota; with ``copy``, the copies a run would make (or finds made).
Zero mutating calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cbsnap.cbs import DESCRIBE_SNAPSHOTS_MAX_DISKS, SNAPSHOT_QUOTA, DiskInfo, SnapshotInfo
from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.lookup import KeyedLookup
from cbsnap.models import CopyRef, DiskTarget, Retention, SnapshotResult
from cbsnap.ownership import KEY_TAG, disk_key
from cbsnap.request import Placed, Request
from cbsnap.scf import Deadline
from cbsnap.selectors import Resolution, failure
from cbsnap.snapshots import ApiProvider
from cbsnap.workers import Parallel, sequential

PLAN = "plan"

if TYPE_CHECKING:
    from cbsnap.janitor import Janitor


class Planner:
    """Predicts, per disk, what :meth:`SnapshotService.snapshot` would do."""

    def __init__(
        self,
        apis: ApiProvider,
        *,
        lookup: KeyedLookup,
        parallel: Parallel = sequential,
        quota: int = SNAPSHOT_QUOTA,
        janitor: Janitor | None = None,
    ) -> None:
        self._apis = apis
        self._lookup = lookup
        self._parallel = parallel
        self._quota = quota
        self._janitor = janitor

    def plan(self, request: Request, resolution: Resolution, deadline: Deadline) -> list[Placed]:
        """One ``action: "plan"`` result per eligible disk: code 0 when a run would succeed,
        else the code the run would end with and why."""
        placed: list[Placed] = []
        batches: list[list[DiskTarget]] = []
        for region in resolution.regions():
            in_region = [t for t in resolution.eligible if t.region == region]
            batches.extend(
                in_region[i : i + DESCRIBE_SNAPSHOTS_MAX_DISKS]
                for i in range(0, len(in_region), DESCRIBE_SNAPSHOTS_MAX_DISKS)
            )

        retention = request.options.retention if request.options is not None else None
        room: dict[str, int] = {}
        pruned: list[Placed] = []
        if retention is not None and self._janitor is not None and resolution.eligible:
            room, pruned = self._retention(resolution, retention, deadline)

        def check(batch: list[DiskTarget]) -> list[Placed]:
            return self._check_batch(batch, request, resolution.infos, deadline, room)

        for part in self._parallel(check, batches):
            placed.extend(part)
        if request.options is not None and request.options.copy_ is not None:
            placed = [(pos, self._with_copies(r, request, deadline)) for pos, r in placed]
        return placed + pruned

    def _retention(
        self, resolution: Resolution, retention: Retention, deadline: Deadline
    ) -> tuple[dict[str, int], list[Placed]]:
        """What the rules would delete right after each disk's new snapshot (listing only):
        per disk, how many it would free; and the records, "dry run: would delete: …"."""
        from cbsnap.janitor import DiskScope

        assert self._janitor is not None
        scopes = [
            DiskScope(t.disk_id, t.region or "", t.snapshot_name, t.position, expecting_new=True)
            for t in resolution.eligible
        ]
        plan = self._janitor.plan(scopes, retention, deadline)
        room = {d.scope.disk_id: len(d.to_delete) for d in plan.disks if d.error is None}
        return room, self._janitor.execute(plan, deadline, dry_run=True)

    def _with_copies(self, result: SnapshotResult, request: Request, deadline: Deadline) -> SnapshotResult:
        """A plan result with the copies a run would make: ``planned``, or ``exists`` when this
        request's snapshot was made already and its copy is in the region (looked up by name)."""
        spec = request.options.copy_ if request.options is not None else None
        if spec is None or not result.ok or result.action is not None:
            return result
        refs: list[CopyRef] = []
        for region in spec.regions:
            found = None
            if result.snapshotId and result.storageId:
                from cbsnap.copies import copy_name

                name = copy_name(result.snapshotId, disk_key(request.meta.request_key, result.storageId))
                try:
                    _total, page = self._apis(region).describe_snapshots(deadline, names=[name])
                    found = next((s for s in page if s.name == name), None)
                except (CloudError, DeadlineReached):
                    found = None
            if found is not None:
                refs.append(CopyRef(region=region, snapshotId=found.snapshot_id, state="exists"))
            else:
                refs.append(CopyRef(region=region, state="planned"))
        todo = [r.region for r in refs if r.state == "planned"]
        message = result.message
        if todo:
            expiry = f", each expiring {spec.retainDays} days after it is copied" if spec.retainDays else ""
            message = f"{message}; would copy to {', '.join(todo)}{expiry}"
        return result.model_copy(update={"copies": tuple(refs), "message": message})

    def _check_batch(
        self,
        batch: list[DiskTarget],
        request: Request,
        infos: dict[str, DiskInfo],
        deadline: Deadline,
        room: dict[str, int],
    ) -> list[Placed]:
        meta = request.meta
        region = batch[0].region or ""
        api = self._apis(region)
        disk_ids = [t.disk_id for t in batch]
        keys = {disk_key(meta.request_key, d): d for d in disk_ids}

        def match(snap: SnapshotInfo) -> str | None:
            key = snap.tags.get(KEY_TAG)
            return key if key in keys else None

        try:
            _, creating_page = api.describe_snapshots(deadline, disk_ids=disk_ids, states=["CREATING"])
            existing: dict[str, SnapshotInfo] = {}
            if not meta.key_is_fresh:
                found = self._lookup.find(api, disk_ids, match, len(keys), deadline)
                existing = {keys[k]: snap for k, snap in found.items()}
        except (CloudError, DeadlineReached) as exc:
            return [(t.position, failure(t, exc)) for t in batch]
        creating = {s.disk_id for s in creating_page}
        out: list[tuple[int, SnapshotResult]] = []
        for target in batch:
            info = infos.get(target.disk_id)
            adopted = existing.get(target.disk_id)
            if adopted is not None:
                result = SnapshotResult.success(target, adopted.snapshot_id, request_id=None, region=region)
                result = result.model_copy(
                    update={
                        "message": f"already made by this request: a run would adopt {adopted.snapshot_id}"
                    }
                )
            elif target.disk_id in creating:
                result = _would_fail(
                    target, SeedCode.CBS_CREATING_SNAPSHOT, "a snapshot is already being created on the disk"
                )
            elif info is not None and info.snapshot_count - room.get(target.disk_id, 0) >= self._quota:
                freeable = room.get(target.disk_id, 0)
                why = f"the disk holds {info.snapshot_count} snapshots (quota {self._quota})"
                if request.options is not None and request.options.retention is not None:
                    why += f" and its retention rules would delete only {freeable} of them"
                result = _would_fail(target, SeedCode.SNAPSHOT_QUOTA_EXCEEDED, why)
            else:
                result = _would_create(target, request, info, room.get(target.disk_id, 0))
            out.append((target.position, result))
        return out


def _would_fail(target: DiskTarget, code: SeedCode, why: str) -> SnapshotResult:
    return SnapshotResult.failure(
        target.disk_id, target.snapshot_name, code, f"dry run: would fail: {why}", region=target.region
    )


def _would_create(
    target: DiskTarget, request: Request, info: DiskInfo | None, freed: int = 0
) -> SnapshotResult:
    parts = [f"dry run: would create snapshot {target.snapshot_name!r}"]
    if request.expires_at:
        parts.append(f"expiring {request.expires_at}")
    if info is not None:
        if info.snapshot_count >= SNAPSHOT_QUOTA:
            parts.append(f"after retention makes room (the disk holds {info.snapshot_count})")
        else:
            parts.append(f"quota headroom {SNAPSHOT_QUOTA - info.snapshot_count}")
    retention = request.options.retention if request.options is not None else None
    if retention is not None:
        if freed:
            parts.append(f"retention would then delete {freed}")
        parts.extend(quota_warnings(retention))
    return SnapshotResult(
        storageId=target.disk_id,
        snapshotName=target.snapshot_name,
        code=SeedCode.SUCCESS,
        codeDesc=SeedCode.SUCCESS.desc,
        message=", ".join(parts),
        snapshotId=None,
        region=target.region,
    )


def quota_warnings(retention: Retention, quota: int = SNAPSHOT_QUOTA) -> list[str]:
    """Warnings for a rule set that can keep more snapshots of a disk than its quota allows:
    the count rules' total, or ``maxAgeDays`` (it keeps every younger snapshot, one a day or more)."""
    warnings = []
    most = retention.most_kept
    if most is not None and most > quota:
        warnings.append(
            f"warning: the retention rules can keep up to {most} snapshots, more than the "
            f"{quota}-per-disk quota (a full disk then gets 16006)"
        )
    if retention.maxAgeDays is not None and retention.maxAgeDays >= quota:
        warnings.append(
            f"warning: maxAgeDays {retention.maxAgeDays} keeps every snapshot younger than that: "
            f"more than {quota} at one snapshot a day"
        )
    return warnings
