"""Dry run: what a request would do, checked against the cloud with read-only calls.

For every disk: it exists (DescribeDisks), can be snapshotted (SnapshotAbility,
state), has quota headroom (SnapshotCount against the 64-per-disk quota), has no
snapshot already CREATING, and whether this request already made its snapshot
(a run would adopt it). Zero CreateSnapshot/DeleteSnapshots calls.
"""

from __future__ import annotations

from cbsnap.client import DESCRIBE_SNAPSHOTS_MAX_DISKS, DiskInfo, SnapshotInfo
from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.models import DiskTarget, ParsedRequest, SnapshotResult
from cbsnap.ownership import disk_key
from cbsnap.scf import Deadline
from cbsnap.selectors import Resolution, failure
from cbsnap.sinks import RequestMeta
from cbsnap.snapshots import Outcome, SnapshotService

SNAPSHOT_QUOTA = 64  # per disk, Tencent's documented limit
PLAN = "plan"


class Planner:
    """Predicts, per disk, what :meth:`SnapshotService.snapshot` would do."""

    def __init__(self, service: SnapshotService, quota: int = SNAPSHOT_QUOTA) -> None:
        self._service = service
        self._quota = quota

    def plan(
        self, parsed: ParsedRequest, resolution: Resolution, meta: RequestMeta, deadline: Deadline
    ) -> Outcome:
        """One ``action: "plan"`` result per disk: code 0 when a run would succeed,
        else the code the run would end with and why."""
        placed = parsed.placed_rejections() + resolution.refused
        batches: list[list[DiskTarget]] = []
        for region in resolution.regions():
            in_region = [t for t in resolution.eligible if t.region == region]
            batches.extend(
                in_region[i : i + DESCRIBE_SNAPSHOTS_MAX_DISKS]
                for i in range(0, len(in_region), DESCRIBE_SNAPSHOTS_MAX_DISKS)
            )

        def check(batch: list[DiskTarget]) -> list[tuple[int, SnapshotResult]]:
            return self._check_batch(batch, parsed, resolution.infos, meta, deadline)

        for part in self._service.fan_out(check, batches):
            placed.extend(part)
        placed.sort(key=lambda pair: pair[0])
        outcome = Outcome(results=[r.model_copy(update={"action": PLAN}) for _, r in placed])
        return outcome

    def _check_batch(
        self,
        batch: list[DiskTarget],
        parsed: ParsedRequest,
        infos: dict[str, DiskInfo],
        meta: RequestMeta,
        deadline: Deadline,
    ) -> list[tuple[int, SnapshotResult]]:
        region = batch[0].region or ""
        api = self._service.api_for(region)
        disk_ids = [t.disk_id for t in batch]
        keys = {disk_key(meta.request_key, d): d for d in disk_ids}
        try:
            _, creating_page = api.describe_snapshots(deadline, disk_ids=disk_ids, states=["CREATING"])
            existing: dict[str, SnapshotInfo] = {}
            if not meta.key_is_fresh:
                found = self._service.find_keyed(api, disk_ids, set(keys), deadline)
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
                result = _would_create(target, parsed, info)
            out.append((target.position, result))
        return out


def _would_fail(target: DiskTarget, code: SeedCode, why: str) -> SnapshotResult:
    return SnapshotResult.failure(
        target.disk_id, target.snapshot_name, code, f"dry run: would fail: {why}", region=target.region
    )


def _would_create(target: DiskTarget, parsed: ParsedRequest, info: DiskInfo | None) -> SnapshotResult:
    parts = [f"dry run: would create snapshot {target.snapshot_name!r}"]
    if parsed.expires_at:
        parts.append(f"expiring {parsed.expires_at}")
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
