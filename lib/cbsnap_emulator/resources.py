"""The emulated resources (disks, snapshots, snapshot groups) and their API shapes.

Field sets follow the SDK models (``tencentcloud.cbs.v20170312.models``) and the official examples in
``cbs_official_examples_from_tccli.json``; the emulator fills every field so callers never see a
missing key where the real API would answer one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .clock import format_date, format_datetime, format_iso

DISK_STATES = (
    "UNATTACHED",
    "ATTACHING",
    "ATTACHED",
    "DETACHING",
    "EXPANDING",
    "ROLLBACKING",
    "TORECYCLE",
    "DUMPING",
)
DISK_TYPES = ("CLOUD_BASIC", "CLOUD_PREMIUM", "CLOUD_BSSD", "CLOUD_SSD", "CLOUD_HSSD", "CLOUD_TSSD")
DISK_USAGES = ("SYSTEM_DISK", "DATA_DISK")
SNAPSHOT_STATES = ("NORMAL", "CREATING", "ROLLBACKING", "COPYING_FROM_REMOTE", "CHECKING_COPIED", "TORECYCLE")

# Every field of the SDK's Disk model. Seeds may set any of them.
DISK_FIELDS = frozenset(
    {
        "DeleteWithInstance", "RenewFlag", "DiskType", "DiskState", "SnapshotCount", "AutoRenewFlagError",
        "Rollbacking", "InstanceIdList", "Encrypt", "DiskName", "BackupDisk", "Tags", "InstanceId",
        "AttachMode", "AutoSnapshotPolicyIds", "ThroughputPerformance", "Migrating", "DiskId", "SnapshotSize",
        "Placement", "IsReturnable", "DeadlineTime", "Attached", "DiskSize", "MigratePercent", "DiskUsage",
        "DiskChargeType", "Portable", "SnapshotAbility", "DeadlineError", "RollbackPercent",
        "DifferDaysOfDeadline", "ReturnFailCode", "Shareable", "CreateTime", "DeleteSnapshot",
        "DiskBackupQuota", "DiskBackupCount", "InstanceType", "LastAttachInsId", "ErrorPrompt",
        "BurstPerformance", "EncryptType", "KmsKeyId",
    }
)  # fmt: skip


def placement(zone: str, project_id: int = 0) -> dict[str, Any]:
    """A Placement object as in the official examples."""
    return {
        "Zone": zone,
        "CageId": "",
        "CdcId": "",
        "CdcName": "",
        "DedicatedClusterId": "",
        "ProjectId": project_id,
        "ProjectName": "",
    }


@dataclass
class Disk:
    """A cloud disk; ``api`` holds the Disk object except the computed snapshot counters."""

    disk_id: str
    region: str
    seq: int
    api: dict[str, Any]

    @property
    def state(self) -> str:
        """The DiskState."""
        return str(self.api["DiskState"])

    @property
    def instance_id(self) -> str:
        """The instance the disk is attached to, or ""."""
        return str(self.api.get("InstanceId") or "")

    def render(self, snapshot_count: int, snapshot_size_mib: int) -> dict[str, Any]:
        """The API Disk object (a deep copy)."""
        out = copy.deepcopy(self.api)
        out["SnapshotCount"] = snapshot_count
        out["SnapshotSize"] = snapshot_size_mib
        return out


def new_disk_api(
    *,
    disk_id: str,
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
) -> dict[str, Any]:
    """Build a complete Disk object with realistic defaults for the fields callers rarely set."""
    attached = bool(instance_id)
    return {
        "DiskId": disk_id,
        "DiskName": name,
        "DiskType": disk_type,
        "DiskState": disk_state,
        "DiskUsage": disk_usage,
        "DiskSize": size,
        "DiskChargeType": "POSTPAID_BY_HOUR",
        "Portable": disk_usage == "DATA_DISK",
        "SnapshotAbility": snapshot_ability,
        "SnapshotCount": 0,
        "SnapshotSize": 0,
        "Encrypt": encrypt,
        "EncryptType": "ENCRYPT_V2" if encrypt else "",
        "KmsKeyId": "",
        "Attached": attached,
        "InstanceId": instance_id,
        "InstanceIdList": [instance_id] if attached else [],
        "InstanceType": "CVM",
        "Shareable": shareable,
        "Placement": placement(zone),
        "Tags": [dict(t) for t in tags],
        "Rollbacking": disk_state == "ROLLBACKING",
        "RollbackPercent": 0,
        "Migrating": False,
        "MigratePercent": 0,
        "DeadlineTime": "",
        "DifferDaysOfDeadline": 0,
        "CreateTime": format_datetime(created_at),
        "DeleteWithInstance": disk_usage == "SYSTEM_DISK",
        "RenewFlag": "",
        "AutoSnapshotPolicyIds": None,
        "BackupDisk": False,
        "DiskBackupQuota": 0,
        "DiskBackupCount": 0,
        "DeleteSnapshot": 0,
        "ReturnFailCode": 0,
        "IsReturnable": False,
        "AttachMode": "PF" if attached else "",
        "ThroughputPerformance": 0,
        "BurstPerformance": False,
        "LastAttachInsId": instance_id,
        "ErrorPrompt": "",
        "AutoRenewFlagError": False,
        "DeadlineError": False,
    }


COPY_STATES = ("COPYING_FROM_REMOTE", "CHECKING_COPIED")


@dataclass
class Snapshot:
    """A disk snapshot. ``CREATING`` ones progress with the state clock (see :meth:`percent`), and so
    do cross-region copies (``COPYING_FROM_REMOTE`` then ``CHECKING_COPIED``) over ``copy_seconds``."""

    snapshot_id: str
    region: str
    disk_id: str
    seq: int
    name: str
    state: str
    created_at: float
    modified_at: float
    deadline: float | None
    disk_usage: str
    disk_size: int
    encrypt: bool
    placement: dict[str, Any]
    tags: list[dict[str, str]] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)
    copy_from_remote: bool = False
    copy_seconds: float = 0.0  # how long a copy takes (fixed when the copy starts)

    def percent(self, now: float, creation_seconds: float) -> int:
        """Progress: linear from 0 to 99 over the creation (or copy) time; 100 once NORMAL."""
        if self.state == "CREATING":
            duration = creation_seconds
        elif self.state in COPY_STATES:
            duration = self.copy_seconds
        else:
            return 100
        if duration <= 0:
            return 99
        return max(0, min(99, int(100 * (now - self.created_at) / duration)))

    def render(
        self, now: float, creation_seconds: float, copying_to: list[str] | None = None
    ) -> dict[str, Any]:
        """The API Snapshot object; ``copying_to`` lists the regions this snapshot is being copied to."""
        return {
            "Placement": dict(self.placement),
            "CopyFromRemote": self.copy_from_remote,
            "SnapshotState": self.state,
            "IsPermanent": self.deadline is None,
            "SnapshotName": self.name,
            "DeadlineTime": format_datetime(self.deadline) if self.deadline is not None else "",
            "Percent": self.percent(now, creation_seconds),
            "Images": [dict(i) for i in self.images],
            "ShareReference": 0,
            "SnapshotType": "PRIVATE_SNAPSHOT",
            "DiskSize": self.disk_size,
            "DiskId": self.disk_id,
            "CopyingToRegions": list(copying_to or []),
            "Encrypt": self.encrypt,
            "CreateTime": format_datetime(self.created_at),
            "ImageCount": len(self.images),
            "DiskUsage": self.disk_usage,
            "SnapshotId": self.snapshot_id,
            "TimeStartShare": format_date(self.created_at),
            "Tags": [dict(t) for t in self.tags],
            "IsLocked": False,
            "LatestModifyTime": format_iso(self.modified_at),
            "AutoSnapshotPolicyId": "",
            "SnapshotMode": "STANDARD_SNAPSHOT",
        }


@dataclass
class SnapshotGroup:
    """A consistent multi-disk snapshot group (CreateSnapshotGroup)."""

    group_id: str
    region: str
    seq: int
    name: str
    snapshot_ids: list[str]
    created_at: float
    tags: list[dict[str, str]] = field(default_factory=list)

    def render(self, members: list[Snapshot], now: float, creation_seconds: float) -> dict[str, Any]:
        """The API SnapshotGroup object; state and progress derive from the member snapshots."""
        creating = [s for s in members if s.state == "CREATING"]
        percents = [s.percent(now, creation_seconds) for s in members] or [100]
        modified = max([s.modified_at for s in members] or [self.created_at])
        return {
            "SnapshotGroupId": self.group_id,
            "SnapshotGroupType": "NORMAL",
            "ContainRootSnapshot": any(s.disk_usage == "SYSTEM_DISK" for s in members),
            "SnapshotIdSet": [s.snapshot_id for s in members],
            "SnapshotGroupState": "CREATING" if creating else "NORMAL",
            "Percent": min(percents),
            "CreateTime": format_iso(self.created_at),
            "ModifyTime": format_iso(modified),
            "Images": [],
            "SnapshotGroupName": self.name,
            "ImageCount": 0,
            "IsPermanent": True,
            "DeadlineTime": None,
            "AutoSnapshotPolicyId": "",
        }
