"""CBS 2017-03-12 actions: CreateSnapshot, DescribeSnapshots, DescribeDisks, DeleteSnapshots,
CreateSnapshotGroup and DescribeSnapshotGroups.

Preconditions are checked in a fixed, documented order (docs/emulator.md) and an error never changes
state; multi-resource calls are all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from . import ids
from .clock import parse_iso8601
from .context import Context, Handler
from .errors import ApiError
from .params import Filter, Params, order, paging
from .resources import DISK_USAGES, Disk, Snapshot, SnapshotGroup

MAX_NAME_LENGTH = 60
MIN_RETENTION_SECONDS = 86_400  # Deadline must be at least one day after now
# Tolerance on that minimum so a caller computing "now + 1 day" is not refused for the milliseconds
# (and the whole seconds it truncates) between its clock read and ours.
DEADLINE_GRACE_SECONDS = 60
_T = TypeVar("_T")

# Disk states in which CreateSnapshot is refused, with the code Tencent documents for each.
BUSY_STATES = {
    "ROLLBACKING": ("ResourceInUse.DiskRollbacking", "is being rolled back"),
    "EXPANDING": ("InvalidDisk.Busy", "is being expanded"),
    "ATTACHING": ("InvalidDisk.Busy", "is being attached"),
    "DETACHING": ("InvalidDisk.Busy", "is being detached"),
    "DUMPING": ("InvalidDisk.Busy", "is being dumped"),
    "TORECYCLE": ("InvalidDisk.NotSupported", "is in the recycle bin (TORECYCLE)"),
}
MAX_DISK_ID_FILTER_VALUES = 10
# Default Order when the caller sends none. Tencent documents CREATE_TIME as the default field but no
# default direction; the emulator lists newest first. Callers that care pass Order explicitly.
DEFAULT_ORDER = "DESC"


def _disk_id(value: str, where: str = "DiskId") -> str:
    if not ids.DISK_ID.match(value):
        raise ApiError(
            "InvalidParameterValue", f"`{where}` `{value}` is not a valid disk id (disk-xxxxxxxx)."
        )
    return value


def _name(params: Params, key: str) -> str:
    name = params.string(key) or "Unnamed"
    if len(name) > MAX_NAME_LENGTH:
        raise ApiError("InvalidParameterValue", f"`{key}` must be at most {MAX_NAME_LENGTH} characters long.")
    return name


def _find_disk(ctx: Context, disk_id: str) -> Disk:
    disk = ctx.state.disk_in(ctx.region, disk_id)
    if disk is None:
        raise ApiError("InvalidDiskId.NotFound", f"The disk `{disk_id}` does not exist in {ctx.region}.")
    return disk


def check_can_snapshot(ctx: Context, disk: Disk) -> None:
    """The per-disk preconditions of CreateSnapshot/CreateSnapshotGroup, in order."""
    did = disk.disk_id
    if not disk.api.get("SnapshotAbility", True):
        raise ApiError("InvalidDisk.NotSupportSnapshot", f"The disk `{did}` does not support snapshots.")
    if disk.api.get("Shareable"):
        raise ApiError("UnsupportedOperation.ShareDiskNotSupportSnap", f"The disk `{did}` is a shared disk.")
    if disk.state in BUSY_STATES:
        code, why = BUSY_STATES[disk.state]
        raise ApiError(code, f"The disk `{did}` {why}.")
    snaps = ctx.state.disk_snapshots(did)
    creating = [s.snapshot_id for s in snaps if s.state == "CREATING"]
    if creating:
        raise ApiError(
            "InvalidDisk.SnapshotCreating", f"The disk `{did}` is already creating `{creating[0]}`."
        )
    if len(snaps) >= ctx.state.quota:
        raise ApiError(
            "InsufficientSnapshotQuota",
            f"The disk `{did}` already has {len(snaps)} of {ctx.state.quota} snapshots.",
        )


def create_snapshot(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """CreateSnapshot: start a snapshot of one disk."""
    p = Params(raw, ("DiskId", "SnapshotName", "Deadline", "DiskBackupId", "Tags", "LocalSnap", "DiskUsage"))
    disk_id = p.string("DiskId", required=True)
    assert disk_id is not None
    _disk_id(disk_id)
    name = _name(p, "SnapshotName")
    deadline = None
    deadline_text = p.string("Deadline")
    if deadline_text is not None:
        try:
            deadline = parse_iso8601(deadline_text)
        except ValueError as exc:
            raise ApiError(
                "InvalidParameterValue",
                f"`Deadline` `{deadline_text}` is not an ISO-8601 UTC time like 2022-01-08T09:47:55+00:00.",
            ) from exc
        if deadline < ctx.now + MIN_RETENTION_SECONDS - DEADLINE_GRACE_SECONDS:
            raise ApiError(
                "InvalidParameterValue", "`Deadline` must be at least one day after the current time."
            )
    tags = p.tags()
    usage = p.string("DiskUsage")
    if usage is not None and usage not in DISK_USAGES:
        raise ApiError("InvalidParameterValue", f"`DiskUsage` must be SYSTEM_DISK or DATA_DISK, got {usage}.")
    p.boolean("LocalSnap")
    p.string("DiskBackupId")  # accepted and ignored: backup points are not emulated
    disk = _find_disk(ctx, disk_id)
    check_can_snapshot(ctx, disk)
    snap = ctx.state.add_snapshot(
        disk,
        name=name,
        state="CREATING",
        created_at=ctx.now,
        deadline=deadline,
        tags=tags,
        images=[],
        disk_usage=usage,
    )
    ctx.state.tick(ctx.now)  # creation_seconds=0 finishes at once
    return {"SnapshotId": snap.snapshot_id}


# -- DescribeDisks ---------------------------------------------------------------------------------
def _values_in(getter: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any], tuple[str, ...]], bool]:
    return lambda d, values: str(getter(d)) in values


def _bool_in(getter: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any], tuple[str, ...]], bool]:
    return lambda d, values: ("TRUE" if getter(d) else "FALSE") in {v.upper() for v in values}


def _never(_: dict[str, Any], __: tuple[str, ...]) -> bool:
    # Documented filters on data the emulator does not model (instance names/IPs, cluster groups).
    return False


_DISK_FILTERS: dict[str, Callable[[dict[str, Any], tuple[str, ...]], bool]] = {
    "disk-usage": _values_in(lambda d: d["DiskUsage"]),
    "disk-charge-type": _values_in(lambda d: d["DiskChargeType"]),
    "portable": _bool_in(lambda d: d["Portable"]),
    "project-id": _values_in(lambda d: d["Placement"]["ProjectId"]),
    "disk-id": _values_in(lambda d: d["DiskId"]),
    "disk-name": _values_in(lambda d: d["DiskName"]),
    "disk-type": _values_in(lambda d: d["DiskType"]),
    "disk-state": _values_in(lambda d: d["DiskState"]),
    "instance-id": lambda d, values: bool({d["InstanceId"], *d["InstanceIdList"]} & set(values)),
    "zone": _values_in(lambda d: d["Placement"]["Zone"]),
    "tag-key": lambda d, values: any(t["Key"] in values for t in d["Tags"]),
    "tag-value": lambda d, values: any(t["Value"] in values for t in d["Tags"]),
    "dedicated-cluster-id": _values_in(lambda d: d["Placement"]["DedicatedClusterId"]),
    "instance-ip-address": _never,
    "instance-name": _never,
    "cluster-group-id": _never,
}


def _disk_predicate(f: Filter) -> Callable[[dict[str, Any]], bool]:
    if f.name.startswith("tag:") and len(f.name) > 4:
        key = f.name[4:]
        return lambda d: any(t["Key"] == key and t["Value"] in f.values for t in d["Tags"])
    match = _DISK_FILTERS.get(f.name)
    if match is None:
        raise ApiError("InvalidFilter", f"The filter `{f.name}` is not supported by DescribeDisks.")
    return lambda d: match(d, f.values)


def _page(items: list[_T], offset: int, limit: int) -> list[_T]:
    return items[offset : offset + limit]


def describe_disks(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """DescribeDisks: DiskIds xor Filters, ordered and paged."""
    p = Params(
        raw, ("Filters", "Limit", "OrderField", "Offset", "ReturnBindAutoSnapshotPolicy", "DiskIds", "Order")
    )
    disk_ids, filters = p.strings("DiskIds"), p.filters()
    if disk_ids is not None and filters is not None:
        raise ApiError("InvalidParameterValue", "`DiskIds` and `Filters` cannot be specified together.")
    predicates = [_disk_predicate(f) for f in filters or []]
    offset, limit = paging(p)
    field, descending = order(p, ("CREATE_TIME", "DEADLINE"), default_order=DEFAULT_ORDER)
    bind_policy = p.boolean("ReturnBindAutoSnapshotPolicy")
    wanted = set(disk_ids) if disk_ids is not None else None
    rows: list[tuple[tuple[str, int], Disk]] = []
    for disk in ctx.state.disks.values():
        if disk.region != ctx.region or (wanted is not None and disk.disk_id not in wanted):
            continue
        # Filters and order read only stored fields (never the live snapshot counts), so they run on
        # the stored object; only the returned page is rendered (a deep copy each): a fleet's
        # selector pages through thousands of disks.
        api = disk.api
        if all(pred(api) for pred in predicates):
            key = api["CreateTime"] if field == "CREATE_TIME" else api["DeadlineTime"]
            rows.append(((str(key), disk.seq), disk))
    rows.sort(key=lambda r: r[0], reverse=descending)
    page = [ctx.state.render_disk(disk) for disk in _page([r[1] for r in rows], offset, limit)]
    if bind_policy:
        for api in page:
            if api["AutoSnapshotPolicyIds"] is None:
                api["AutoSnapshotPolicyIds"] = []
    return {"TotalCount": len(rows), "DiskSet": page}


# -- DescribeSnapshots -----------------------------------------------------------------------------
_SNAPSHOT_FILTERS: dict[str, Callable[[Snapshot, tuple[str, ...]], bool]] = {
    "snapshot-id": lambda s, v: s.snapshot_id in v,
    "snapshot-name": lambda s, v: s.name in v,
    "snapshot-state": lambda s, v: s.state in v,
    "disk-usage": lambda s, v: s.disk_usage in v,
    "project-id": lambda s, v: str(s.placement["ProjectId"]) in v,
    "disk-id": lambda s, v: s.disk_id in v,
    "encrypt": lambda s, v: ("TRUE" if s.encrypt else "FALSE") in {x.upper() for x in v},
    "snapshot-type": lambda s, v: "PRIVATE_SNAPSHOT" in v,
    "zone": lambda s, v: s.placement["Zone"] in v,
}


def _snapshot_predicate(f: Filter) -> Callable[[Snapshot], bool]:
    match = _SNAPSHOT_FILTERS.get(f.name)
    if match is None:
        raise ApiError("InvalidFilter", f"The filter `{f.name}` is not supported by DescribeSnapshots.")
    if f.name == "disk-id" and len(f.values) > MAX_DISK_ID_FILTER_VALUES:
        raise ApiError(
            "InvalidParameterValue",
            f"The `disk-id` filter takes at most {MAX_DISK_ID_FILTER_VALUES} values, got {len(f.values)}.",
        )
    return lambda s: match(s, f.values)


def _snapshot_candidates(ctx: Context, wanted: set[str] | None, filters: list[Filter]) -> list[Snapshot]:
    """The snapshots a DescribeSnapshots could match, from the indexes where the request names
    snapshot or disk IDs (the usual look-ups); every filter is still applied to them."""
    if wanted is not None:
        return [ctx.state.snapshots[i] for i in wanted if i in ctx.state.snapshots]
    by_disk = [f for f in filters if f.name == "disk-id"]
    if by_disk:
        disks = set.intersection(*(set(f.values) for f in by_disk))
        return [snap for disk_id in disks for snap in ctx.state.disk_snapshots(disk_id)]
    return list(ctx.state.snapshots.values())


def describe_snapshots(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """DescribeSnapshots: SnapshotIds xor Filters, ordered by CREATE_TIME (ties by creation order)."""
    p = Params(raw, ("SnapshotIds", "Filters", "Limit", "OrderField", "Offset", "Order"))
    snapshot_ids, filters = p.strings("SnapshotIds"), p.filters()
    if snapshot_ids is not None and filters is not None:
        raise ApiError("InvalidParameterValue", "`SnapshotIds` and `Filters` cannot be specified together.")
    predicates = [_snapshot_predicate(f) for f in filters or []]
    offset, limit = paging(p)
    _, descending = order(p, ("CREATE_TIME",), default_order=DEFAULT_ORDER)
    wanted = set(snapshot_ids) if snapshot_ids is not None else None
    matched = [
        s
        for s in _snapshot_candidates(ctx, wanted, filters or [])
        if s.region == ctx.region
        and (wanted is None or s.snapshot_id in wanted)
        and all(pred(s) for pred in predicates)
    ]
    matched.sort(key=lambda s: (s.created_at, s.seq), reverse=descending)
    page = [ctx.state.render_snapshot(s, ctx.now) for s in matched[offset : offset + limit]]
    return {"TotalCount": len(matched), "SnapshotSet": page}


# -- DeleteSnapshots -------------------------------------------------------------------------------
def delete_snapshots(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """DeleteSnapshots: all-or-nothing; only NORMAL snapshots without bound images (unless forced)."""
    p = Params(raw, ("SnapshotIds", "DeleteBindImages"))
    requested = p.strings("SnapshotIds")
    if not requested:
        raise ApiError("MissingParameter", "The request is missing a required parameter `SnapshotIds`.")
    force = p.boolean("DeleteBindImages")
    snaps: list[Snapshot] = []
    for snap_id in dict.fromkeys(requested):
        snap = ctx.state.snapshots.get(snap_id)
        if snap is None or snap.region != ctx.region:
            raise ApiError(
                "InvalidSnapshotId.NotFound", f"The snapshot `{snap_id}` does not exist in {ctx.region}."
            )
        snaps.append(snap)
    for snap in snaps:
        if snap.state == "CREATING":
            raise ApiError(
                "ResourceUnavailable.SnapshotCreating",
                f"The snapshot `{snap.snapshot_id}` is still being created.",
            )
        if snap.state != "NORMAL":
            raise ApiError(
                "InvalidSnapshot.NotSupported",
                f"The snapshot `{snap.snapshot_id}` is {snap.state}, not NORMAL.",
            )
        copying_to = ctx.state.copying_to(snap.snapshot_id)
        if copying_to:
            raise ApiError(
                "InvalidSnapshot.NotSupported",
                f"The snapshot `{snap.snapshot_id}` is being copied to {', '.join(copying_to)}.",
            )
        if snap.images and not force:
            raise ApiError(
                "UnsupportedOperation.SnapshotHasBindedImage",
                f"The snapshot `{snap.snapshot_id}` has bound images; pass DeleteBindImages=true.",
            )
    for snap in snaps:
        ctx.state.remove_snapshot(snap.snapshot_id)
    return {}


# -- snapshot groups -------------------------------------------------------------------------------
def create_snapshot_group(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """CreateSnapshotGroup: one consistent snapshot per disk of a single instance."""
    p = Params(raw, ("DiskIds", "SnapshotGroupName", "Tags"))
    disk_ids = p.strings("DiskIds")
    if not disk_ids:
        raise ApiError("MissingParameter", "The request is missing a required parameter `DiskIds`.")
    for i, disk_id in enumerate(disk_ids):
        _disk_id(disk_id, f"DiskIds.{i}")
    if len(set(disk_ids)) != len(disk_ids):
        raise ApiError("InvalidParameterValue", "`DiskIds` contains duplicates.")
    name = _name(p, "SnapshotGroupName")
    tags = p.tags()
    disks = [_find_disk(ctx, d) for d in disk_ids]
    instances = {d.instance_id for d in disks}
    if len(instances) != 1 or "" in instances:
        raise ApiError(
            "UnsupportedOperation.SnapshotGroupDiskAttachMultiInstance",
            "The disks of a snapshot group must all be attached to the same instance.",
        )
    for disk in disks:
        check_can_snapshot(ctx, disk)
    members = [
        ctx.state.add_snapshot(
            d, name=f"{name}_{i}", state="CREATING", created_at=ctx.now, deadline=None, tags=tags, images=[]
        )
        for i, d in enumerate(disks)
    ]
    group = SnapshotGroup(
        group_id=ctx.state.ids.new("csnap", ctx.state.groups),
        region=ctx.region,
        seq=ctx.state.next_seq(),
        name=name,
        snapshot_ids=[s.snapshot_id for s in members],
        created_at=ctx.now,
        tags=tags,
    )
    ctx.state.groups[group.group_id] = group
    ctx.state.tick(ctx.now)
    return {"SnapshotGroupId": group.group_id}


def describe_snapshot_groups(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """DescribeSnapshotGroups: filter by id, state, name or member snapshot id; newest first."""
    p = Params(raw, ("Filters", "Offset", "Limit"))
    filters = p.filters() or []
    offset, limit = paging(p)
    rendered = []
    for group in sorted(ctx.state.groups.values(), key=lambda g: (g.created_at, g.seq), reverse=True):
        if group.region == ctx.region:
            rendered.append(ctx.state.render_group(group, ctx.now))
    matchers: dict[str, Callable[[dict[str, Any], tuple[str, ...]], bool]] = {
        "snapshot-group-id": lambda g, v: g["SnapshotGroupId"] in v,
        "snapshot-group-state": lambda g, v: g["SnapshotGroupState"] in v,
        "snapshot-group-name": lambda g, v: g["SnapshotGroupName"] in v,
        "snapshot-id": lambda g, v: bool(set(g["SnapshotIdSet"]) & set(v)),
    }
    for f in filters:
        if f.name not in matchers:
            raise ApiError(
                "InvalidFilter", f"The filter `{f.name}` is not supported by DescribeSnapshotGroups."
            )
    matched = [g for g in rendered if all(matchers[f.name](g, f.values) for f in filters)]
    return {"TotalCount": len(matched), "SnapshotGroupSet": _page(matched, offset, limit)}


CBS_ACTIONS: dict[str, Handler] = {
    "CreateSnapshot": create_snapshot,
    "DescribeSnapshots": describe_snapshots,
    "DescribeDisks": describe_disks,
    "DeleteSnapshots": delete_snapshots,
    "CreateSnapshotGroup": create_snapshot_group,
    "DescribeSnapshotGroups": describe_snapshot_groups,
}
