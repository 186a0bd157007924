"""A small in-memory CBS for fast simulations of retention: one region, disks, snapshots, the
64-per-disk quota, all-or-nothing DeleteSnapshots, and a record of every violation it sees.

It implements the parts of :class:`cbsnap.cbs.CbsApi` the snapshot use case and the janitor
call; CBS's clock is the world's (``now``), the function's may be skewed from it. CreateTime is
written the way CBS writes it (Beijing time, seconds) through cbsnap.cbs_time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from cbsnap.cbs import SNAPSHOT_QUOTA, CreatedSnapshot, DiskInfo, SnapshotInfo
from cbsnap.cbs_time import format_cbs_time
from cbsnap.errors import CloudError
from cbsnap.ownership import OWNER_TAG, OWNER_VALUE
from cbsnap.scf import Deadline


@dataclass
class World:
    """The cloud's state and clock (epoch seconds), shared by every API object."""

    now: float
    quota: int = SNAPSHOT_QUOTA
    disks: dict[str, DiskInfo] = field(default_factory=dict)
    snapshots: dict[str, SnapshotInfo] = field(default_factory=dict)
    created_at: dict[str, float] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    most_on_a_disk: int = 0
    _next: int = 0

    def add_disk(self, disk_id: str) -> None:
        self.disks[disk_id] = DiskInfo(disk_id, True, "ATTACHED", None, "ap-guangzhou-3", 0)

    def add_snapshot(self, disk_id: str, name: str, tags: Mapping[str, str]) -> str:
        """A snapshot made now (CreateSnapshot's path, or someone else's); quota enforced."""
        on_disk = self.count(disk_id)
        if on_disk >= self.quota:
            raise CloudError("CreateSnapshot", "InsufficientSnapshotQuota", f"{disk_id} holds {on_disk}")
        self._next += 1
        sid = f"snap-{self._next:08d}"
        moment = int(self.now)
        self.snapshots[sid] = SnapshotInfo(
            snapshot_id=sid,
            disk_id=disk_id,
            state="NORMAL",  # made usable at once: the simulation runs a day apart
            percent=100,
            name=name,
            create_time=format_cbs_time(float(moment)),
            deadline_time=None,
            image_count=0,
            tags=dict(tags),
        )
        self.created_at[sid] = float(moment)
        self.most_on_a_disk = max(self.most_on_a_disk, on_disk + 1)
        return sid

    def count(self, disk_id: str) -> int:
        return sum(1 for s in self.snapshots.values() if s.disk_id == disk_id)


class MemoryCbs:
    """One region's CBS over a :class:`World` (the CbsApi protocol, as far as retention needs it)."""

    def __init__(self, world: World, region: str = "ap-guangzhou") -> None:
        self.world = world
        self.region = region

    def describe_disks(self, disk_ids: Sequence[str], deadline: Deadline) -> dict[str, DiskInfo]:
        return {
            d: replace(self.world.disks[d], snapshot_count=self.world.count(d))
            for d in disk_ids
            if d in self.world.disks
        }

    def describe_snapshots(
        self,
        deadline: Deadline,
        *,
        disk_ids: Sequence[str] = (),
        snapshot_ids: Sequence[str] = (),
        states: Sequence[str] = (),
        names: Sequence[str] = (),
        offset: int = 0,
        limit: int = 100,
        newest_first: bool = True,
    ) -> tuple[int, list[SnapshotInfo]]:
        chosen = [
            s
            for s in self.world.snapshots.values()
            if (not disk_ids or s.disk_id in disk_ids)
            and (not snapshot_ids or s.snapshot_id in snapshot_ids)
            and (not states or s.state in states)
            and (not names or s.name in names)
        ]
        chosen.sort(key=lambda s: (self.world.created_at[s.snapshot_id], s.snapshot_id), reverse=newest_first)
        return len(chosen), chosen[offset : offset + limit]

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
        if before_send is not None:
            before_send()
        return CreatedSnapshot(self.world.add_snapshot(disk_id, name, tags or {}), "rid-create")

    def delete_snapshots(self, snapshot_ids: Sequence[str], deadline: Deadline) -> str | None:
        for sid in snapshot_ids:  # all-or-nothing, as CBS
            if sid not in self.world.snapshots:
                raise CloudError("DeleteSnapshots", "InvalidSnapshotId.NotFound", f"{sid} not found")
        for sid in snapshot_ids:
            snap = self.world.snapshots.pop(sid)
            if snap.tags.get(OWNER_TAG) != OWNER_VALUE:
                self.world.violations.append(f"deleted foreign snapshot {sid}")
        return "rid-delete"

    def __getattr__(self, name: str) -> Callable[..., object]:
        def unsupported(*args: object, **kwargs: object) -> object:
            raise NotImplementedError(f"MemoryCbs.{name}")

        return unsupported
