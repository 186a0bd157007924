"""Dry run: what a request would do, checked against the cloud with read-only calls.

For every disk: it exists (DescribeDisks), can be snapshotted (SnapshotAbility,
state), has quota headroom (SnapshotCount against the 64-per-disk quota), has no
snapshot already CREATING, and whether this request already made its snapshot
(a run would adopt it). Zero CreateSnapshot/DeleteSnapshots calls.
"""

from __future__ import annotations

from cbsnap.cbs import DESCRIBE_SNAPSHOTS_MAX_DISKS, SNAPSHOT_QUOTA, DiskInfo, SnapshotInfo
from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.lookup import KeyedLookup
from cbsnap.models import DiskTarget, SnapshotResult
from cbsnap.ownership import KEY_TAG, disk_key
from cbsnap.request import Placed, Request
from cbsnap.scf import Deadline
from cbsnap.selectors import Resolution, failure
from cbsnap.snapshots import ApiProvider
from cbsnap.workers import Parallel, sequential

PLAN = "plan"


class Planner:
    """Predicts, per disk, what :meth:`SnapshotService.snapshot` would do."""

    def __init__(
        self,
        apis: ApiProvider,
        *,
        lookup: KeyedLookup,
        parallel: Parallel = sequential,
        quota: int = SNAPSHOT_QUOTA,
    ) -> None:
        self._apis = apis
        self._lookup = lookup
        self._parallel = parallel
        self._quota = quota

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

        def check(batch: list[DiskTarget]) -> list[Placed]:
            return self._check_batch(batch, request, resolution.infos, deadline)

        for part in self._parallel(check, batches):
            placed.extend(part)
        return placed

    def _check_batch(
        self, batch: list[DiskTarget], request: Request, infos: dict[str, DiskInfo], deadline: Deadline
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
            elif info is not None and info.snapshot_count >= self._quota:
                result = _would_fail(
                    target,
                    SeedCode.SNAPSHOT_QUOTA_EXCEEDED,
                    f"the disk holds {info.snapshot_count} snapshots (quota {self._quota})",
                )
            else:
                result = _would_create(target, request, info)
            out.append((target.position, result))
        return out


def _would_fail(target: DiskTarget, code: SeedCode, why: str) -> SnapshotResult:
    return SnapshotResult.failure(
        target.disk_id, target.snapshot_name, code, f"dry run: would fail: {why}", region=target.region
    )


def _would_create(target: DiskTarget, request: Request, info: DiskInfo | None) -> SnapshotResult:
    parts = [f"dry run: would create snapshot {target.snapshot_name!r}"]
    if request.expires_at:
        parts.append(f"expiring {request.expires_at}")
    if info is not None:
        parts.append(f"quota headroom {SNAPSHOT_QUOTA - info.snapshot_count}")
    return SnapshotResult(
        storageId=target.disk_id,
        snapshotName=target.snapshot_name,
        code=SeedCode.SUCCESS,
        codeDesc=SeedCode.SUCCESS.desc,
        message=", ".join(parts),
        snapshotId=None,
        region=target.region,
    )
