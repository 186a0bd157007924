"""A small, faithful in-memory CBS behind cbsnap's own :class:`~cbsnap.cbs.CbsApi` protocol.

The fast use-case tests drive :class:`~cbsnap.snapshots.SnapshotService`,
:class:`~cbsnap.groups.ConsistentGroups` and :class:`~cbsnap.janitor.Janitor` against it
instead of the SDK and the emulator. It is a fake, not a mock: it keeps state and behaves
as CBS does where cbsnap relies on it —

* disks (snapshot ability, state, instance, tags) and snapshots (name, tags, state,
  ``CreateTime``, images); a snapshot is CREATING for ``creation_seconds`` of the clock,
  then NORMAL; CBS refuses a second snapshot of a disk while one is CREATING;
* DescribeSnapshots pages (offset/limit, ``TotalCount``), newest first by ``CreateTime``
  (ties by creation order) or oldest first, filtered by up to 10 disk IDs, snapshot IDs
  and states;
* snapshot groups of one instance's disks, whose members inherit the group's tags;
* DeleteSnapshots all-or-nothing, with CBS's refusals (missing, CREATING, not NORMAL,
  bound to an image);
* scripted failures per action (and disk or snapshot): an error answered without any
  change, or a *lost reply* — the call is committed, then an ambiguous
  ``ClientNetworkError`` is raised, as when the connection drops after the commit.

Every call is recorded in :attr:`MemoryCbs.calls`. Times come from a :class:`ManualClock`
that the tests advance; nothing sleeps.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from cbsnap.cbs import (
    DESCRIBE_SNAPSHOTS_MAX_DISKS,
    PAGE_LIMIT,
    CreatedSnapshot,
    DiskInfo,
    SnapshotInfo,
)
from cbsnap.cbs_time import format_cbs_time
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.scf import Deadline

REGION = "ap-guangzhou"
START = datetime(2026, 11, 28, 2, 0, 0, tzinfo=timezone.utc).timestamp()


class ManualClock:
    """One clock for everything a test controls: monotonic time, wall time and sleep.

    ``sleep`` advances it, so retries and backoff cost no real time.
    """

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        """A sleep that only moves the clock."""
        self.slept.append(seconds)
        self.now += max(seconds, 0.0)

    def wall(self) -> datetime:
        """The clock as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now, tz=timezone.utc)


@dataclass
class Failure:
    """A scripted failure of the next ``times`` matching calls.

    ``lost_reply``: the call is committed, then ``ClientNetworkError`` is raised (the
    reply was lost). Otherwise ``code`` is answered and nothing changes. ``disk_id`` /
    ``snapshot_id`` narrow it to calls naming that disk or snapshot.
    """

    action: str
    code: str = "InternalError"
    lost_reply: bool = False
    times: int | None = 1  # None: every matching call
    disk_id: str | None = None
    snapshot_id: str | None = None

    def matches(self, action: str, disks: Sequence[str], snapshots: Sequence[str]) -> bool:
        if self.times == 0 or self.action not in ("*", action):
            return False
        if self.disk_id is not None and self.disk_id not in disks:
            return False
        return self.snapshot_id is None or self.snapshot_id in snapshots


@dataclass
class Disk:
    disk_id: str
    instance_id: str | None = None
    snapshot_ability: bool = True
    state: str = "ATTACHED"
    tags: dict[str, str] = field(default_factory=dict)
    shareable: bool = False


@dataclass
class Snapshot:
    snapshot_id: str
    disk_id: str
    name: str
    created_at: float
    seq: int
    tags: dict[str, str] = field(default_factory=dict)
    state: str = "CREATING"  # CREATING turns NORMAL on the clock; other states stay
    images: int = 0
    deadline: str | None = None


@dataclass
class Group:
    group_id: str
    name: str
    snapshot_ids: list[str]
    tags: dict[str, str]


@dataclass(frozen=True)
class Call:
    """One protocol call as the fake saw it (before any scripted failure)."""

    action: str
    disks: tuple[str, ...] = ()
    snapshots: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)


class MemoryCbs:
    """The CBS of one region, in memory (see the module docstring)."""

    def __init__(
        self,
        region: str = REGION,
        *,
        clock: ManualClock | None = None,
        creation_seconds: float = 30.0,
        quota: int = 64,
    ) -> None:
        self.region = region
        self.clock = clock or ManualClock()
        self.creation_seconds = creation_seconds
        self.quota = quota
        self.disks: dict[str, Disk] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.groups: dict[str, Group] = {}
        self.failures: list[Failure] = []
        self.calls: list[Call] = []
        # Test hooks to make something happen "meanwhile" (a concurrent delivery, time
        # passing): ``on_call`` runs once a call was recorded, before it is answered;
        # ``after_reply`` once a read's answer is computed, before the caller sees it.
        self.on_call: Callable[[Call], None] | None = None
        self.after_reply: Callable[[Call], None] | None = None
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)

    # -- arranging -------------------------------------------------------------------------------

    def add_disk(
        self,
        disk_id: str,
        *,
        instance_id: str | None = None,
        snapshot_ability: bool = True,
        state: str = "ATTACHED",
        tags: Mapping[str, str] | None = None,
        shareable: bool = False,
    ) -> str:
        """A disk (``instance_id`` None: not attached)."""
        self.disks[disk_id] = Disk(disk_id, instance_id, snapshot_ability, state, dict(tags or {}), shareable)
        return disk_id

    def add_snapshot(
        self,
        disk_id: str,
        *,
        name: str = "Unnamed",
        tags: Mapping[str, str] | None = None,
        age_seconds: float = 0.0,
        state: str = "NORMAL",
        images: int = 0,
        snapshot_id: str | None = None,
    ) -> str:
        """A snapshot made earlier (by cbsnap or anybody), ``age_seconds`` old."""
        snap = Snapshot(
            snapshot_id or self._new_id("snap"),
            disk_id,
            name,
            self.clock() - age_seconds,
            next(self._seq),
            dict(tags or {}),
            state,
            images,
        )
        self.snapshots[snap.snapshot_id] = snap
        return snap.snapshot_id

    def fail(
        self,
        action: str,
        code: str = "InternalError",
        *,
        times: int | None = 1,
        disk_id: str | None = None,
        snapshot_id: str | None = None,
    ) -> Failure:
        """Answer ``code`` to the next ``times`` matching calls, changing nothing."""
        return self._script(Failure(action, code, False, times, disk_id, snapshot_id))

    def lose_reply(self, action: str, *, times: int | None = 1, disk_id: str | None = None) -> Failure:
        """Commit the next ``times`` matching calls, then raise ``ClientNetworkError``."""
        return self._script(Failure(action, "ClientNetworkError", True, times, disk_id))

    def _script(self, failure: Failure) -> Failure:
        self.failures.append(failure)
        return failure

    # -- inspecting ------------------------------------------------------------------------------

    def snapshots_of(self, disk_id: str, *, tag: tuple[str, str] | None = None) -> list[Snapshot]:
        """The disk's snapshots in creation order (optionally only those carrying ``tag``)."""
        self._tick()
        found = sorted((s for s in self.snapshots.values() if s.disk_id == disk_id), key=_age_order)
        if tag is not None:
            found = [s for s in found if s.tags.get(tag[0]) == tag[1]]
        return found

    def count(self, action: str) -> int:
        """How many calls of ``action`` were made (failed ones included)."""
        return sum(1 for c in self.calls if c.action == action)

    # -- the protocol ----------------------------------------------------------------------------

    def describe_disks(self, disk_ids: Sequence[str], deadline: Deadline) -> dict[str, DiskInfo]:
        self._enter(Call("DescribeDisks", tuple(disk_ids)), deadline)
        return {d: self._disk_info(self.disks[d]) for d in disk_ids if d in self.disks}

    def find_disks(self, filters: Mapping[str, Sequence[str]], deadline: Deadline) -> list[DiskInfo]:
        self._enter(Call("DescribeDisks", params={"filters": dict(filters)}), deadline)
        found = []
        for disk in sorted(self.disks.values(), key=lambda d: d.disk_id):
            ok = True
            for name, values in filters.items():
                if name.startswith("tag:"):
                    ok = ok and disk.tags.get(name[4:]) in values
                elif name == "instance-id":
                    ok = ok and disk.instance_id in values
                else:
                    raise CloudError("DescribeDisks", "InvalidFilter", f"filter {name} is not supported")
            if ok:
                found.append(self._disk_info(disk))
        return found

    def describe_snapshots(
        self,
        deadline: Deadline,
        *,
        disk_ids: Sequence[str] = (),
        snapshot_ids: Sequence[str] = (),
        states: Sequence[str] = (),
        offset: int = 0,
        limit: int = PAGE_LIMIT,
        newest_first: bool = True,
    ) -> tuple[int, list[SnapshotInfo]]:
        if len(disk_ids) > DESCRIBE_SNAPSHOTS_MAX_DISKS:
            raise ValueError("the disk-id filter takes at most 10 values")
        call = Call(
            "DescribeSnapshots",
            tuple(disk_ids),
            tuple(snapshot_ids),
            {"offset": offset, "limit": limit, "newest_first": newest_first},
        )
        self._enter(call, deadline)
        matched = [
            s
            for s in self.snapshots.values()
            if (not disk_ids or s.disk_id in disk_ids)
            and (not snapshot_ids or s.snapshot_id in snapshot_ids)
            and (not states or s.state in states)
        ]
        matched.sort(key=_age_order, reverse=newest_first)
        page = [self._snapshot_info(s) for s in matched[offset : offset + limit]]
        if self.after_reply is not None:
            self.after_reply(call)
        return len(matched), page

    def create_snapshot(
        self,
        disk_id: str,
        name: str,
        deadline: Deadline,
        *,
        tags: Mapping[str, str] | None = None,
        expires_at: str | None = None,
        before_send: Callable[[], None] | None = None,
    ) -> CreatedSnapshot:
        if deadline.expired:
            raise DeadlineReached("CreateSnapshot")
        if before_send is not None:
            before_send()
        failure = self._enter(Call("CreateSnapshot", (disk_id,), params={"name": name}), deadline, defer=True)
        self._can_snapshot(self._disk("CreateSnapshot", disk_id), "CreateSnapshot")
        snap = Snapshot(self._new_id("snap"), disk_id, name, self.clock(), next(self._seq), dict(tags or {}))
        snap.deadline = expires_at
        self.snapshots[snap.snapshot_id] = snap
        self._tick()
        self._after_commit(failure, "CreateSnapshot")
        return CreatedSnapshot(snap.snapshot_id, f"req-{snap.seq}")

    def create_snapshot_group(
        self, disk_ids: Sequence[str], name: str, deadline: Deadline, *, tags: Mapping[str, str]
    ) -> CreatedSnapshot:
        action = "CreateSnapshotGroup"
        failure = self._enter(Call(action, tuple(disk_ids), params={"name": name}), deadline, defer=True)
        disks = [self._disk(action, d) for d in disk_ids]
        instances = {d.instance_id for d in disks}
        if len(instances) != 1 or None in instances:
            raise CloudError(
                action, "UnsupportedOperation.SnapshotGroupDiskAttachMultiInstance", "not one instance"
            )
        for disk in disks:
            self._can_snapshot(disk, action)
        members = []
        for index, disk in enumerate(disks):
            snap = Snapshot(
                self._new_id("snap"),
                disk.disk_id,
                f"{name}_{index}",
                self.clock(),
                next(self._seq),
                dict(tags),
            )
            self.snapshots[snap.snapshot_id] = snap
            members.append(snap.snapshot_id)
        group = Group(self._new_id("csnap"), name, members, dict(tags))
        self.groups[group.group_id] = group
        self._tick()
        self._after_commit(failure, action)
        return CreatedSnapshot(group.group_id, f"req-group-{len(self.groups)}")

    def snapshot_group_of(self, snapshot_id: str, deadline: Deadline) -> tuple[str, list[str]] | None:
        self._enter(Call("DescribeSnapshotGroups", snapshots=(snapshot_id,)), deadline)
        for group in self.groups.values():
            if snapshot_id in group.snapshot_ids:
                return group.group_id, list(group.snapshot_ids)
        return None

    def snapshot_group_members(self, group_id: str, deadline: Deadline) -> list[str]:
        self._enter(Call("DescribeSnapshotGroups", params={"group_id": group_id}), deadline)
        group = self.groups.get(group_id)
        return list(group.snapshot_ids) if group is not None else []

    def delete_snapshots(self, snapshot_ids: Sequence[str], deadline: Deadline) -> str | None:
        action = "DeleteSnapshots"
        disks = tuple(self.snapshots[s].disk_id for s in snapshot_ids if s in self.snapshots)
        failure = self._enter(Call(action, disks, tuple(snapshot_ids)), deadline, defer=True)
        self._tick()
        for sid in dict.fromkeys(snapshot_ids):  # all or nothing: check everything first
            snap = self.snapshots.get(sid)
            if snap is None:
                raise CloudError(action, "InvalidSnapshotId.NotFound", f"{sid} does not exist")
            if snap.state == "CREATING":
                raise CloudError(action, "ResourceUnavailable.SnapshotCreating", f"{sid} is being created")
            if snap.state != "NORMAL":
                raise CloudError(action, "InvalidSnapshot.NotSupported", f"{sid} is {snap.state}")
            if snap.images:
                raise CloudError(action, "UnsupportedOperation.SnapshotHasBindedImage", f"{sid} has images")
        for sid in snapshot_ids:
            self.snapshots.pop(sid, None)
            for group in self.groups.values():
                if sid in group.snapshot_ids:
                    group.snapshot_ids.remove(sid)
        self._after_commit(failure, action)
        return f"req-delete-{len(self.calls)}"

    # -- internals -------------------------------------------------------------------------------

    def _enter(self, call: Call, deadline: Deadline, *, defer: bool = False) -> Failure | None:
        """Record ``call``, run the hook, apply time and scripted errors.

        A scripted lost reply is returned (``defer``: the caller commits, then raises it
        through :meth:`_after_commit`); for read-only calls it is raised at once, as the
        answer is lost either way.
        """
        if deadline.expired:
            raise DeadlineReached(call.action)
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)
        self._tick()
        for failure in self.failures:
            if failure.matches(call.action, call.disks, call.snapshots):
                if failure.times is not None:
                    failure.times -= 1
                if failure.lost_reply and defer:
                    return failure
                message = "the reply was lost" if failure.lost_reply else "scripted failure"
                raise CloudError(call.action, failure.code, message, f"req-failed-{len(self.calls)}")
        return None

    @staticmethod
    def _after_commit(failure: Failure | None, action: str) -> None:
        if failure is not None:
            raise CloudError(action, failure.code, "the connection dropped after the call was committed")

    def _tick(self) -> None:
        now = self.clock()
        for snap in self.snapshots.values():
            if snap.state == "CREATING" and now >= snap.created_at + self.creation_seconds:
                snap.state = "NORMAL"

    def _disk(self, action: str, disk_id: str) -> Disk:
        disk = self.disks.get(disk_id)
        if disk is None:
            raise CloudError(action, "InvalidDiskId.NotFound", f"{disk_id} does not exist in {self.region}")
        return disk

    def _can_snapshot(self, disk: Disk, action: str) -> None:
        if not disk.snapshot_ability:
            raise CloudError(
                action, "InvalidDisk.NotSupportSnapshot", f"{disk.disk_id} cannot be snapshotted"
            )
        mine = [s for s in self.snapshots.values() if s.disk_id == disk.disk_id]
        creating = [s.snapshot_id for s in mine if s.state == "CREATING"]
        if creating:
            raise CloudError(
                action, "InvalidDisk.SnapshotCreating", f"{disk.disk_id} is already creating {creating[0]}"
            )
        if len(mine) >= self.quota:
            raise CloudError(action, "InsufficientSnapshotQuota", f"{disk.disk_id} is at its quota")

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):08d}"

    def _snapshot_info(self, snap: Snapshot) -> SnapshotInfo:
        if snap.state == "CREATING":
            elapsed = self.clock() - snap.created_at
            percent = min(99, int(100 * elapsed / self.creation_seconds)) if self.creation_seconds else 99
        else:
            percent = 100
        return SnapshotInfo(
            snapshot_id=snap.snapshot_id,
            disk_id=snap.disk_id,
            state=snap.state,
            percent=percent,
            name=snap.name,
            create_time=format_cbs_time(datetime.fromtimestamp(snap.created_at, tz=timezone.utc)),
            deadline_time=snap.deadline,
            image_count=snap.images,
            tags=dict(snap.tags),
        )

    @staticmethod
    def _disk_info(disk: Disk) -> DiskInfo:
        return DiskInfo(
            disk_id=disk.disk_id,
            snapshot_ability=disk.snapshot_ability,
            state=disk.state,
            instance_id=disk.instance_id,
            zone=f"{REGION}-3",
            snapshot_count=0,
            tags=dict(disk.tags),
            shareable=disk.shareable,
        )


def _age_order(snap: Snapshot) -> tuple[int, int]:
    # CreateTime has whole seconds; CBS breaks ties by creation order.
    return int(snap.created_at), snap.seq
