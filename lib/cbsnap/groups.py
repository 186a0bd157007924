"""Consistent groups: the disks of one instance snapshotted together with CreateSnapshotGroup.

A lone disk on its instance is a group of one. Disks that cannot be grouped (not
attached to an instance) are reported, never quietly snapshotted one by one. Every
member result carries the group's ID.

What "consistent" means is Tencent's to promise, and its documents disagree (the SDK
calls the only group type, ``NORMAL``, "not a consistency snapshot"); docs/retention.md
says so, and ``hooks`` give application consistency.

Idempotency is the single-disk one (:mod:`cbsnap.lookup`): the group's key travels as a
tag in the CreateSnapshotGroup call (members inherit it); a retry or redelivery looks for
members carrying it — newest first, to the retry horizon — and adopts the group it finds.
A look that fails leaves the members *not attempted*, never "create anyway"; and a group
that was created is never reported failed: when its members cannot be read back, they
are reported created (code 0, with the group ID) and left for a redelivery to fill in.
"""

from __future__ import annotations

from collections.abc import Sequence

from cbsnap.cbs import CbsApi, SnapshotInfo
from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.idempotent import IdempotentCreator
from cbsnap.lookup import KeyedLookup
from cbsnap.models import DiskTarget, SnapshotResult
from cbsnap.ownership import KEY_TAG, correlation_tags, owner_tags
from cbsnap.request import Placed, Request
from cbsnap.scf import Deadline
from cbsnap.selectors import Resolution, failure
from cbsnap.snapshots import ApiProvider
from cbsnap.workers import Parallel, sequential

UNCHECKED = "could not look for a snapshot group this request made earlier"


class ConsistentGroups:
    """Snapshots a request's disks per instance with CreateSnapshotGroup."""

    def __init__(
        self,
        apis: ApiProvider,
        *,
        lookup: KeyedLookup,
        creator: IdempotentCreator,
        parallel: Parallel = sequential,
    ) -> None:
        self._apis = apis
        self._lookup = lookup
        self._creator = creator
        self._parallel = parallel

    def snapshot(self, request: Request, resolution: Resolution, deadline: Deadline) -> list[Placed]:
        """One group per (region, instance); one placed result per disk."""
        placed: list[Placed] = []
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

        def work(item: tuple[tuple[str, str], list[DiskTarget]]) -> list[Placed]:
            (region, instance), members = item
            return self._one_group(self._apis(region), instance, members, request, deadline)

        for part in self._parallel(work, list(groups.items())):
            placed.extend(part)
        return placed

    def _one_group(
        self, api: CbsApi, instance: str, members: list[DiskTarget], request: Request, deadline: Deadline
    ) -> list[Placed]:
        meta = request.meta
        tags = {
            **(request.options.tags if request.options is not None else {}),
            **correlation_tags(meta.correlation),
            **owner_tags(meta.request_key, f"group/{instance}", meta.trigger),
        }
        key = tags[KEY_TAG]
        disk_ids = [t.disk_id for t in members]

        def match(snap: SnapshotInfo) -> str | None:
            return snap.disk_id if snap.tags.get(KEY_TAG) == key and snap.disk_id in disk_ids else None

        def find() -> dict[str, SnapshotInfo] | None:
            found: dict[str, SnapshotInfo] = {}
            for start in range(0, len(disk_ids), 10):
                batch = disk_ids[start : start + 10]
                found.update(self._lookup.find(api, batch, match, len(batch), deadline))
            return found or None

        if not meta.key_is_fresh:
            try:
                existing = find()
            except (CloudError, DeadlineReached) as exc:
                return _not_attempted(members, f"{UNCHECKED}: {_why(exc)}", api.region)
            if existing:
                return _answer(api, members, existing, deadline, adopted=True)
        attempt = self._creator.create(
            lambda: api.create_snapshot_group(disk_ids, request.snapshot_name, deadline, tags=tags),
            find,
            deadline,
        )
        if attempt.found:
            return _answer(api, members, attempt.found, deadline, adopted=True)
        if attempt.created is not None:
            return self._created(api, members, attempt.created.snapshot_id, deadline)
        assert attempt.error is not None
        if not attempt.attempted:
            why = f"the outcome of CreateSnapshotGroup is unknown: {_why(attempt.error)}"
            return _not_attempted(members, why, api.region)
        error = attempt.error
        return [(t.position, failure(t, error, suffix=attempt.suffix)) for t in members]

    def _created(
        self, api: CbsApi, members: Sequence[DiskTarget], group_id: str, deadline: Deadline
    ) -> list[Placed]:
        """Results for a group just created: its member snapshots, read back (a read, so
        retried until the deadline); members not readable stay code 0 and redeliverable."""
        problem = ""
        for _ in range(3):
            try:
                member_ids = api.snapshot_group_members(group_id, deadline)
                _, snaps = (
                    api.describe_snapshots(deadline, snapshot_ids=member_ids) if member_ids else (0, [])
                )
                by_disk = {s.disk_id: s for s in snaps}
                if all(t.disk_id in by_disk for t in members):
                    return _answer(api, members, by_disk, deadline, group_id=group_id)
                problem = "the group does not list every member yet"
            except (CloudError, DeadlineReached) as exc:
                problem = _why(exc)
                if isinstance(exc, DeadlineReached):
                    break
        return [(t.position, _created_unread(t, group_id, problem, api.region)) for t in members]


def _answer(
    api: CbsApi,
    members: Sequence[DiskTarget],
    by_disk: dict[str, SnapshotInfo],
    deadline: Deadline,
    *,
    group_id: str | None = None,
    adopted: bool = False,
) -> list[Placed]:
    if group_id is None and by_disk:
        try:
            found = api.snapshot_group_of(next(iter(by_disk.values())).snapshot_id, deadline)
        except (CloudError, DeadlineReached):
            found = None  # the member IDs are what matters; the group ID is context
        group_id = found[0] if found else None
    placed: list[Placed] = []
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


def _created_unread(target: DiskTarget, group_id: str, problem: str, region: str) -> SnapshotResult:
    """Code 0 (the group exists), no snapshot ID yet, and left for a redelivery to fill in."""
    return SnapshotResult(
        storageId=target.disk_id,
        snapshotName=target.snapshot_name,
        code=SeedCode.SUCCESS,
        codeDesc=SeedCode.SUCCESS.desc,
        message=f"created in snapshot group {group_id}; its member snapshot could not be read yet: {problem}",
        snapshotId=None,
        region=region,
        groupId=group_id,
        attempted=False,
    )


def _not_attempted(members: Sequence[DiskTarget], why: str, region: str) -> list[Placed]:
    return [
        (t.position, SnapshotResult.not_attempted(t.disk_id, t.snapshot_name, why, region=region))
        for t in members
    ]


def _why(exc: CloudError | DeadlineReached) -> str:
    return exc.describe() if isinstance(exc, CloudError) else str(exc)
