"""Consistent groups: the disks of one instance snapshotted together with
CreateSnapshotGroup (crash-consistent across the instance's disks).

A lone disk on its instance is a group of one. Disks that cannot be grouped
(not attached to an instance) are reported, never quietly snapshotted one by
one. Every member result carries the group's ID. Idempotency works as for
single snapshots: the group's key travels as a tag in the CreateSnapshotGroup
call (members inherit it), and a retry or redelivery adopts the group it finds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from cbsnap.client import DESCRIBE_SNAPSHOTS_MAX_DISKS, CbsApi, SnapshotInfo
from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.models import DiskTarget, ParsedRequest, SnapshotResult
from cbsnap.ownership import KEY_TAG, correlation_tags, owner_tags
from cbsnap.scf import Deadline
from cbsnap.selectors import Resolution, failure
from cbsnap.sinks import RequestMeta
from cbsnap.snapshots import Outcome, SnapshotService

Placed = list[tuple[int, SnapshotResult]]
T = TypeVar("T")


class ConsistentGroups:
    """Snapshots a request's disks per instance with CreateSnapshotGroup."""

    def __init__(self, service: SnapshotService) -> None:
        self._service = service

    def snapshot(
        self, parsed: ParsedRequest, resolution: Resolution, meta: RequestMeta, deadline: Deadline
    ) -> Outcome:
        """One group per (region, instance); results per disk, in request order."""
        placed: Placed = parsed.placed_rejections() + resolution.refused
        groups: dict[tuple[str, str], list[DiskTarget]] = {}
        for target in resolution.eligible:
            info = resolution.infos.get(target.disk_id)
            instance = info.instance_id if info is not None else None
            if not instance:
                message = (
                    f"consistent: {target.disk_id} is not attached to an instance, so it cannot join "
                    "a consistent group; snapshot it without consistent"
                )
                result = SnapshotResult.failure(
                    target.disk_id,
                    target.snapshot_name,
                    SeedCode.DISK_TYPE_INVALID,
                    message,
                    region=target.region,
                )
                placed.append((target.position, result))
                continue
            groups.setdefault((target.region or "", instance), []).append(target)

        def work(item: tuple[tuple[str, str], list[DiskTarget]]) -> Placed:
            (region, instance), members = item
            return self._one_group(region, instance, members, parsed=parsed, meta=meta, deadline=deadline)

        for part in self._service.fan_out(work, list(groups.items())):
            placed.extend(part)
        placed.sort(key=lambda pair: pair[0])
        return Outcome(results=[result for _, result in placed])

    def _one_group(
        self,
        region: str,
        instance: str,
        members: list[DiskTarget],
        *,
        parsed: ParsedRequest,
        meta: RequestMeta,
        deadline: Deadline,
    ) -> Placed:
        api = self._service.api_for(region)
        tags = {
            **parsed.tags,
            **correlation_tags(meta.correlation),
            **owner_tags(meta.request_key, f"group/{instance}", meta.trigger),
        }
        key = tags[KEY_TAG]
        disk_ids = [t.disk_id for t in members]

        def find() -> dict[str, SnapshotInfo] | None:
            return _keyed_members(api, disk_ids, key, deadline) or None

        existing = None if meta.key_is_fresh else _quietly(find)
        if existing:
            return self._answer(api, members, existing, deadline, adopted=True)
        attempt = self._service.create_idempotently(
            lambda: api.create_snapshot_group(disk_ids, parsed.snapshot_name, deadline, tags=tags),
            find,
            deadline,
        )
        if attempt.found:
            return self._answer(api, members, attempt.found, deadline, adopted=True)
        if attempt.created is not None:
            group_id = attempt.created.snapshot_id
            try:
                member_ids = api.snapshot_group_members(group_id, deadline)
                _, snaps = (
                    api.describe_snapshots(deadline, snapshot_ids=member_ids) if member_ids else (0, [])
                )
            except (CloudError, DeadlineReached):
                snaps = []
            by_disk = {s.disk_id: s for s in snaps}
            return self._answer(api, members, by_disk, deadline, group_id=group_id)
        assert attempt.error is not None
        error = attempt.error
        return [(t.position, failure(t, error, suffix=attempt.suffix)) for t in members]

    @staticmethod
    def _answer(
        api: CbsApi,
        members: Sequence[DiskTarget],
        by_disk: dict[str, SnapshotInfo],
        deadline: Deadline,
        *,
        group_id: str | None = None,
        adopted: bool = False,
    ) -> Placed:
        if group_id is None and by_disk:
            found = _quietly(
                lambda: api.snapshot_group_of(next(iter(by_disk.values())).snapshot_id, deadline)
            )
            group_id = found[0] if found else None
        placed: Placed = []
        for target in members:
            snap = by_disk.get(target.disk_id)
            if snap is None:
                message = f"consistent: group {group_id} holds no snapshot of {target.disk_id}"
                result = SnapshotResult.failure(
                    target.disk_id, target.snapshot_name, SeedCode.INTERNAL_ERROR, message, region=api.region
                )
            else:
                result = SnapshotResult.success(target, snap.snapshot_id, request_id=None, region=api.region)
                result = result.model_copy(
                    update={
                        "groupId": group_id,
                        "snapshotName": snap.name or target.snapshot_name,
                        "adopted": adopted,
                    }
                )
            placed.append((target.position, result))
        return placed


def _keyed_members(
    api: CbsApi, disk_ids: Sequence[str], key: str, deadline: Deadline
) -> dict[str, SnapshotInfo]:
    """The newest snapshot carrying ``key`` on each of ``disk_ids`` (group members share one key)."""
    found: dict[str, SnapshotInfo] = {}
    for start in range(0, len(disk_ids), DESCRIBE_SNAPSHOTS_MAX_DISKS):
        batch = disk_ids[start : start + DESCRIBE_SNAPSHOTS_MAX_DISKS]
        _, page = api.describe_snapshots(deadline, disk_ids=batch)
        for snap in page:
            if snap.tags.get(KEY_TAG) == key and snap.disk_id not in found:
                found[snap.disk_id] = snap
    return found


def _quietly(call: Callable[[], T]) -> T | None:
    """``call()``, or None when the cloud call failed (the caller has a fallback)."""
    try:
        return call()
    except (CloudError, DeadlineReached):
        return None
