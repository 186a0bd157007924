"""Emulator state: regions, disks, snapshots, snapshot groups, CMQ queues/topics and their messages,
tags of resources the emulator does not model, and TAT agents and commands.

A :class:`State` is not thread-safe; the emulator's single lock guards every read and write. Time-driven
changes (CREATING → NORMAL, cross-region copies, Deadline expiry) are applied lazily by
:meth:`State.tick`, which every action and every inspection calls first with the current state-clock
time, so results are a pure function of that time.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from .errors import ApiError
from .ids import IdFactory
from .resources import Disk, Snapshot, SnapshotGroup, new_disk_api, placement
from .scf_state import ScfState
from .tag_store import TagStore
from .tat_state import TatState

# Regions the emulator answers for without any disk in them; any region a disk is added to joins too.
# Others get UnsupportedRegion, as a typo would from the real API.
KNOWN_REGIONS = frozenset(
    {
        "ap-guangzhou", "ap-shanghai", "ap-nanjing", "ap-beijing", "ap-chengdu", "ap-chongqing",
        "ap-hongkong", "ap-taipei", "ap-singapore", "ap-jakarta", "ap-bangkok", "ap-seoul", "ap-tokyo",
        "ap-mumbai", "na-siliconvalley", "na-ashburn", "na-toronto", "eu-frankfurt", "eu-moscow",
        "sa-saopaulo", "ap-shanghai-fsi", "ap-shenzhen-fsi", "ap-beijing-fsi", "ap-guangzhou-open",
    }
)  # fmt: skip


class State:
    """All emulated resources (not thread-safe: the caller holds the emulator lock)."""

    def __init__(
        self,
        ids: IdFactory,
        *,
        creation_seconds: float,
        quota: int,
        scf_transition_seconds: float = 1.0,
        copy_seconds: float = 6.0,
        command_seconds: float = 1.0,
    ) -> None:
        self.ids = ids
        self.creation_seconds = creation_seconds
        self.quota = quota
        self.copy_seconds = copy_seconds
        self.tag_store = TagStore()
        self.tat = TatState(command_seconds)
        self.regions: set[str] = set(KNOWN_REGIONS)
        self.disks: dict[str, Disk] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.groups: dict[str, SnapshotGroup] = {}
        self.queues: dict[str, deque[dict[str, Any]]] = {}
        self.topics: set[str] = set()
        self.messages: list[dict[str, Any]] = []
        self.scf = ScfState(scf_transition_seconds)  # SCF functions, triggers, invocations
        self._by_disk: dict[str, dict[str, None]] = {}  # disk id -> its snapshot ids, creation order
        self._creating: dict[str, None] = {}
        self._copies: dict[str, tuple[str, str]] = {}  # running copy id -> (source id, destination)
        self._deadlines: list[tuple[float, int, str]] = []  # heap of (deadline, seq, snapshot id)
        self._seq = 0

    # -- bookkeeping -----------------------------------------------------------------------------
    def next_seq(self) -> int:
        """A strictly increasing sequence number (creation order, used to break time ties)."""
        self._seq += 1
        return self._seq

    def check_region(self, region: str | None) -> str:
        """Validate a request's X-TC-Region."""
        if not region:
            raise ApiError("MissingParameter", "The request is missing a required parameter `Region`.")
        if region not in self.regions:
            raise ApiError("UnsupportedRegion", f"The region `{region}` is not supported.")
        return region

    def tick(self, now: float) -> None:
        """Apply what the passage of time does: finish CREATING snapshots, move copies on, delete
        expired snapshots."""
        for snap_id in list(self._creating):
            snap = self.snapshots[snap_id]
            done_at = snap.created_at + self.creation_seconds
            if now >= done_at:
                snap.state = "NORMAL"
                snap.modified_at = done_at
                del self._creating[snap_id]
        for copy_id in list(self._copies):
            self._advance_copy(copy_id, now)
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, snap_id = heapq.heappop(self._deadlines)
            expiring = self.snapshots.get(snap_id)
            # An entry is stale once ModifySnapshotAttribute moved or cleared the snapshot's Deadline.
            if expiring is not None and expiring.deadline == deadline:
                self.remove_snapshot(snap_id)

    def _advance_copy(self, copy_id: str, now: float) -> None:
        """A copy spends the first half of ``copy_seconds`` COPYING_FROM_REMOTE, the second half
        CHECKING_COPIED, then is NORMAL."""
        snap = self.snapshots.get(copy_id)
        if snap is None:
            del self._copies[copy_id]
            return
        elapsed = now - snap.created_at
        if elapsed >= snap.copy_seconds:
            snap.state = "NORMAL"
            snap.modified_at = snap.created_at + snap.copy_seconds
            del self._copies[copy_id]
        elif elapsed >= snap.copy_seconds / 2 and snap.state == "COPYING_FROM_REMOTE":
            snap.state = "CHECKING_COPIED"
            snap.modified_at = snap.created_at + snap.copy_seconds / 2

    # -- disks -----------------------------------------------------------------------------------
    def add_disk(
        self,
        *,
        disk_id: str,
        region: str,
        zone: str,
        instance_id: str,
        tags: list[dict[str, str]],
        snapshot_ability: bool,
        disk_state: str,
        disk_type: str,
        disk_usage: str,
        size: int,
        encrypt: bool,
        shareable: bool,
        name: str,
        created_at: float,
        overrides: dict[str, Any] | None = None,
    ) -> Disk:
        """Register a disk (already validated by the caller)."""
        api = new_disk_api(
            disk_id=disk_id,
            zone=zone,
            instance_id=instance_id,
            tags=tags,
            snapshot_ability=snapshot_ability,
            disk_state=disk_state,
            disk_type=disk_type,
            disk_usage=disk_usage,
            size=size,
            encrypt=encrypt,
            shareable=shareable,
            name=name,
            created_at=created_at,
        )
        extra = dict(overrides or {})
        if isinstance(extra.get("Placement"), dict):
            api["Placement"].update(extra.pop("Placement"))  # merge, so a partial Placement keeps the rest
        api.update(extra)
        disk = Disk(disk_id, region, self.next_seq(), api)
        self.regions.add(region)
        self.disks[disk_id] = disk
        self._by_disk.setdefault(disk_id, {})
        return disk

    def disk_in(self, region: str, disk_id: str) -> Disk | None:
        """The disk ``disk_id`` if it lives in ``region``."""
        disk = self.disks.get(disk_id)
        return disk if disk is not None and disk.region == region else None

    def render_disk(self, disk: Disk) -> dict[str, Any]:
        """The API Disk object with live SnapshotCount/SnapshotSize."""
        snaps = self.disk_snapshots(disk.disk_id)
        # The real SnapshotSize is the incremental data kept; the emulator charges each snapshot the
        # full disk size (an upper bound) in MiB.
        return disk.render(len(snaps), sum(s.disk_size * 1024 for s in snaps))

    # -- snapshots -------------------------------------------------------------------------------
    def disk_snapshots(self, disk_id: str) -> list[Snapshot]:
        """Snapshots of a disk, in creation order."""
        return [self.snapshots[i] for i in self._by_disk.get(disk_id, {})]

    def add_snapshot(
        self,
        disk: Disk,
        *,
        name: str,
        state: str,
        created_at: float,
        deadline: float | None,
        tags: list[dict[str, str]],
        images: list[dict[str, str]],
        disk_usage: str | None = None,
        snapshot_id: str | None = None,
    ) -> Snapshot:
        """Create a snapshot record of ``disk`` (no precondition checks: the CBS actions do those)."""
        snap = Snapshot(
            snapshot_id=snapshot_id or self.ids.new("snap", self.snapshots),
            region=disk.region,
            disk_id=disk.disk_id,
            seq=self.next_seq(),
            name=name,
            state=state,
            created_at=created_at,
            modified_at=created_at,
            deadline=deadline,
            disk_usage=disk_usage or str(disk.api["DiskUsage"]),
            disk_size=int(disk.api["DiskSize"]),
            encrypt=bool(disk.api["Encrypt"]),
            placement=placement(
                str(disk.api["Placement"]["Zone"]), int(disk.api["Placement"].get("ProjectId", 0))
            ),
            tags=[dict(t) for t in tags],
            images=[dict(i) for i in images],
        )
        self.snapshots[snap.snapshot_id] = snap
        self._by_disk.setdefault(disk.disk_id, {})[snap.snapshot_id] = None
        if state == "CREATING":
            self._creating[snap.snapshot_id] = None
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, snap.seq, snap.snapshot_id))
        return snap

    def add_copy(self, source: Snapshot, destination: str, name: str, now: float) -> Snapshot:
        """Start a cross-region copy of ``source`` into ``destination`` (checks are the caller's).

        The copy looks like the one Tencent returned in a recorded DescribeSnapshots: no DiskId (its
        disk lives in another region), the source's DiskSize, ``CopyFromRemote`` true, no tags and
        permanent. It belongs to no disk, so it counts against no disk's quota.
        """
        snap = Snapshot(
            snapshot_id=self.ids.new("snap", self.snapshots),
            region=destination,
            disk_id="",
            seq=self.next_seq(),
            name=name,
            state="COPYING_FROM_REMOTE",
            created_at=now,
            modified_at=now,
            deadline=None,
            disk_usage=source.disk_usage,
            disk_size=source.disk_size,
            encrypt=source.encrypt,
            placement=placement(f"{destination}-1", int(source.placement.get("ProjectId", 0))),
            copy_from_remote=True,
            copy_seconds=self.copy_seconds,
        )
        self.snapshots[snap.snapshot_id] = snap
        self._copies[snap.snapshot_id] = (source.snapshot_id, destination)
        self._advance_copy(snap.snapshot_id, now)  # copy_seconds=0 finishes at once
        return snap

    def copying_to(self, snapshot_id: str) -> list[str]:
        """Regions a running copy of ``snapshot_id`` goes to, in the order the copies started."""
        return [dest for source, dest in self._copies.values() if source == snapshot_id]

    def set_deadline(self, snap: Snapshot, deadline: float | None) -> None:
        """Make ``snap`` expire at ``deadline`` (None: permanent)."""
        snap.deadline = deadline
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, snap.seq, snap.snapshot_id))

    def remove_snapshot(self, snapshot_id: str) -> None:
        """Delete a snapshot and drop it from its disk and group."""
        snap = self.snapshots.pop(snapshot_id)
        self._by_disk.get(snap.disk_id, {}).pop(snapshot_id, None)
        self._creating.pop(snapshot_id, None)
        self._copies.pop(snapshot_id, None)
        for group_id, group in list(self.groups.items()):
            if snapshot_id in group.snapshot_ids:
                group.snapshot_ids.remove(snapshot_id)
                if not group.snapshot_ids:
                    del self.groups[group_id]

    def render_snapshot(self, snap: Snapshot, now: float) -> dict[str, Any]:
        """The API Snapshot object at time ``now``."""
        return snap.render(now, self.creation_seconds, self.copying_to(snap.snapshot_id))

    def render_group(self, group: SnapshotGroup, now: float) -> dict[str, Any]:
        """The API SnapshotGroup object at time ``now``."""
        members = [self.snapshots[i] for i in group.snapshot_ids if i in self.snapshots]
        return group.render(members, now, self.creation_seconds)

    # -- CMQ -------------------------------------------------------------------------------------
    def add_queue(self, name: str) -> None:
        """Create a CMQ queue (idempotent)."""
        self.queues.setdefault(name, deque())

    def add_topic(self, name: str) -> None:
        """Create a CMQ topic (idempotent)."""
        self.topics.add(name)

    def record_message(self, message: dict[str, Any]) -> None:
        """Log a sent message and, for a queue, make it receivable."""
        self.messages.append(message)
        if "QueueName" in message:
            self.queues[message["QueueName"]].append(message)

    def receive(self, queue: str, max_messages: int, now: float) -> list[dict[str, Any]]:
        """Pop up to ``max_messages`` whose delay has elapsed, oldest first."""
        if queue not in self.queues:
            raise KeyError(f"no queue named {queue!r}")
        ready: list[dict[str, Any]] = []
        kept: deque[dict[str, Any]] = deque()
        for message in self.queues[queue]:
            if len(ready) < max_messages and message["VisibleAt"] <= now:
                ready.append(dict(message))
            else:
                kept.append(message)
        self.queues[queue] = kept
        return ready
