"""What cbsnap needs from CBS, as a protocol: the use cases depend on this, never on the SDK.

:class:`~cbsnap.client.SignedCbsApi` implements it over the official SDK (signing, pacing,
retries, error translation); the fast use-case tests implement it in memory
(``tests/fakes/memory_cbs.py``). Every call takes the invocation's
:class:`~cbsnap.scf.Deadline` and raises :class:`~cbsnap.errors.CloudError` or
:class:`~cbsnap.errors.DeadlineReached`, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cbsnap.scf import Deadline

DESCRIBE_DISKS_MAX_IDS = 100  # DiskIds per DescribeDisks call (Limit max)
DESCRIBE_SNAPSHOTS_MAX_DISKS = 10  # values of the disk-id filter per call
PAGE_LIMIT = 100
# Snapshots one disk may hold ("each CBS disk can save up to 64 snapshots", shared/reference
# tencent-facts.md §1.6); CreateSnapshot answers InsufficientSnapshotQuota past it.
SNAPSHOT_QUOTA = 64
# A cap on paging, as cloud-custodian's Tencent provider keeps one: a selector
# matching more than 100,000 disks is a mistake, not a workload.
MAX_PAGES = 1000


@dataclass(frozen=True)
class DiskInfo:
    """What cbsnap needs to know about a disk (from DescribeDisks)."""

    disk_id: str
    snapshot_ability: bool
    state: str
    instance_id: str | None
    zone: str | None
    snapshot_count: int
    tags: Mapping[str, str] = field(default_factory=dict)
    encrypted: bool = False
    shareable: bool = False
    # Disk.DeleteSnapshot = 1: "销毁云盘时删除关联的非永久保留快照" (its non-permanent snapshots die with it)
    delete_with_disk: bool = False


@dataclass(frozen=True)
class SnapshotInfo:
    """What cbsnap needs to know about a snapshot (from DescribeSnapshots)."""

    snapshot_id: str
    disk_id: str
    state: str
    percent: int
    name: str
    create_time: str
    deadline_time: str | None
    image_count: int
    tags: Mapping[str, str] = field(default_factory=dict)
    # ShareReference: how many accounts it is shared with (the janitor never deletes a shared one);
    # shared_in: SnapshotType SHARED_SNAPSHOT, another account's snapshot shared with this one.
    share_count: int = 0
    shared_in: bool = False
    is_permanent: bool = True
    copy_from_remote: bool = False  # a cross-region copy (its DiskId is "")
    copying_to: tuple[str, ...] = ()  # regions a copy of it is being made to


@dataclass(frozen=True)
class CreatedSnapshot:
    """A successful CreateSnapshot: the snapshot ID and the call's RequestId."""

    snapshot_id: str
    request_id: str | None


@dataclass(frozen=True)
class CopyStarted:
    """A copy CopySnapshotCrossRegions started: the copy's ID (in the destination) and the RequestId."""

    snapshot_id: str
    request_id: str | None


class CbsApi(Protocol):
    """The CBS calls of one region (see the module docstring)."""

    region: str

    def describe_disks(self, disk_ids: Sequence[str], deadline: Deadline) -> dict[str, DiskInfo]:
        """Disks by ID, 100 per call; unknown IDs are simply absent."""
        ...

    def find_disks(self, filters: Mapping[str, Sequence[str]], deadline: Deadline) -> list[DiskInfo]:
        """Every disk matching DescribeDisks ``filters`` (all pages, up to ``MAX_PAGES``)."""
        ...

    def describe_snapshots(
        self,
        deadline: Deadline,
        *,
        disk_ids: Sequence[str] = (),
        snapshot_ids: Sequence[str] = (),
        states: Sequence[str] = (),
        names: Sequence[str] = (),
        offset: int = 0,
        limit: int = PAGE_LIMIT,
        newest_first: bool = True,
    ) -> tuple[int, list[SnapshotInfo]]:
        """One page of snapshots, by snapshot IDs, by up to 10 disk IDs or by names
        (the ``snapshot-name`` filter): ``(TotalCount, page)``."""
        ...

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
        """CreateSnapshot with tags and ``Deadline`` in the one call; ``before_send`` runs
        right before the request goes out (it may raise to abort)."""
        ...

    def create_snapshot_group(
        self, disk_ids: Sequence[str], name: str, deadline: Deadline, *, tags: Mapping[str, str]
    ) -> CreatedSnapshot:
        """CreateSnapshotGroup; the group ID comes back as ``snapshot_id``."""
        ...

    def snapshot_group_of(self, snapshot_id: str, deadline: Deadline) -> tuple[str, list[str]] | None:
        """The group holding ``snapshot_id``: ``(group ID, member snapshot IDs)``, or None."""
        ...

    def snapshot_group_members(self, group_id: str, deadline: Deadline) -> list[str]:
        """The member snapshot IDs of a snapshot group."""
        ...

    def delete_snapshots(self, snapshot_ids: Sequence[str], deadline: Deadline) -> str | None:
        """DeleteSnapshots (all-or-nothing); returns the RequestId."""
        ...

    def copy_snapshot(self, snapshot_id: str, destination: str, name: str, deadline: Deadline) -> CopyStarted:
        """CopySnapshotCrossRegions of one NORMAL snapshot of this region to one ``destination``.

        Raises :class:`~cbsnap.errors.CloudError` for a refused call and for the region's own
        non-``Success`` result; an ambiguous failure is raised, never retried blind (the
        caller looks for the copy by ``name`` first).
        """
        ...

    def set_snapshot_deadline(self, snapshot_id: str, expires_at: str, deadline: Deadline) -> str | None:
        """ModifySnapshotAttribute: ``IsPermanent`` false with ``Deadline`` ``expires_at``
        (UTC ISO-8601); returns the RequestId."""
        ...
