"""CBS 2017-03-12 actions on existing snapshots: CopySnapshotCrossRegions and ModifySnapshotAttribute.

Checks run in a fixed, documented order (docs/emulator.md); an error never changes state.
"""

from __future__ import annotations

from typing import Any

from .cbs_actions import DEADLINE_GRACE_SECONDS, MAX_NAME_LENGTH, MIN_RETENTION_SECONDS
from .clock import parse_iso8601
from .context import Context, Handler
from .errors import ApiError
from .params import Params
from .resources import Snapshot


def _snapshot_in(ctx: Context, snapshot_id: str) -> Snapshot:
    snap = ctx.state.snapshots.get(snapshot_id)
    if snap is None or snap.region != ctx.region:
        raise ApiError(
            "InvalidSnapshotId.NotFound", f"The snapshot `{snapshot_id}` does not exist in {ctx.region}."
        )
    return snap


def _required_snapshot_id(p: Params) -> str:
    # api.json marks SnapshotId optional for the copy, but nothing can be copied without one.
    snapshot_id = p.string("SnapshotId", required=True)
    assert snapshot_id is not None
    return snapshot_id


def _optional_name(p: Params) -> str | None:
    name = p.string("SnapshotName")
    if name is not None and not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ApiError(
            "InvalidParameterValue", f"`SnapshotName` must be 1 to {MAX_NAME_LENGTH} characters long."
        )
    return name


# -- CopySnapshotCrossRegions ----------------------------------------------------------------------
def copy_snapshot_cross_regions(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """CopySnapshotCrossRegions: start one asynchronous copy of a NORMAL snapshot per destination."""
    p = Params(raw, ("DestinationRegions", "SnapshotId", "SnapshotName"))
    destinations = p.strings("DestinationRegions")
    if not destinations:
        raise ApiError(
            "MissingParameter", "The request is missing a required parameter `DestinationRegions`."
        )
    snapshot_id = _required_snapshot_id(p)
    name = _optional_name(p)
    for region in destinations:
        if region not in ctx.state.regions:
            raise ApiError(
                "InvalidParameterValue", f"`DestinationRegions` names `{region}`, which is not a CBS region."
            )
        if region == ctx.region:
            raise ApiError(
                "InvalidParameterValue", f"`DestinationRegions` names the snapshot's own region `{region}`."
            )
    if len(set(destinations)) != len(destinations):
        raise ApiError("InvalidParameterValue", "`DestinationRegions` names a region twice.")
    source = _snapshot_in(ctx, snapshot_id)
    if source.state != "NORMAL":
        raise ApiError(
            "InvalidSnapshot.NotSupported",
            f"The snapshot `{snapshot_id}` is {source.state}; only a NORMAL snapshot can be copied.",
        )
    running = set(ctx.state.copying_to(snapshot_id)) & set(destinations)
    if running:
        raise ApiError(
            "ResourceInUse.CopySnapshotConflict",
            f"The snapshot `{snapshot_id}` is already being copied to {', '.join(sorted(running))}.",
        )
    results = []
    for region in destinations:
        copy = ctx.state.add_copy(source, region, name or f"Copied {snapshot_id} from {ctx.region}", ctx.now)
        results.append(
            {"SnapshotId": copy.snapshot_id, "DestinationRegion": region, "Code": "Success", "Message": ""}
        )
    return {"SnapshotCopyResultSet": results}


# -- ModifySnapshotAttribute -----------------------------------------------------------------------
def _deadline(p: Params, now: float) -> float | None:
    text = p.string("Deadline")
    if text is None:
        return None
    try:
        deadline = parse_iso8601(text)
    except ValueError as exc:
        raise ApiError(
            "InvalidParameterValue",
            f"`Deadline` `{text}` is not an ISO-8601 UTC time like 2022-01-08T09:47:55+00:00.",
        ) from exc
    # Tencent documents no minimum for this action; the emulator applies CreateSnapshot's (one day).
    if deadline < now + MIN_RETENTION_SECONDS - DEADLINE_GRACE_SECONDS:
        raise ApiError("InvalidParameterValue", "`Deadline` must be at least one day after the current time.")
    return deadline


def modify_snapshot_attribute(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """ModifySnapshotAttribute: rename, give a Deadline (non-permanent), or make permanent."""
    p = Params(raw, ("SnapshotId", "IsPermanent", "SnapshotName", "Deadline"))
    snapshot_id = _required_snapshot_id(p)
    name = _optional_name(p)
    permanent = p.boolean("IsPermanent") if p.has("IsPermanent") else None
    # "该参数仅在参数IsPermanent为False时生效": with IsPermanent=true the Deadline is ignored.
    deadline = None if permanent else _deadline(p, ctx.now)
    snap = _snapshot_in(ctx, snapshot_id)
    changes_retention = permanent is not None or deadline is not None
    if changes_retention and snap.state != "NORMAL":
        raise ApiError(
            "InvalidSnapshot.NotSupported",
            f"The snapshot `{snapshot_id}` is {snap.state}; its retention can change once it is NORMAL.",
        )
    if permanent is False and deadline is None and snap.deadline is None:
        raise ApiError(
            "InvalidParameterValue", "A snapshot made non-permanent needs a `Deadline` to expire at."
        )
    if (deadline is not None or permanent is False) and snap.images:
        raise ApiError(
            "UnsupportedOperation.SnapshotHasBindedImage",
            f"The snapshot `{snapshot_id}` has bound images and cannot be given an expiry.",
        )
    if name is not None:
        snap.name = name
    if permanent:
        ctx.state.set_deadline(snap, None)
    elif deadline is not None:
        ctx.state.set_deadline(snap, deadline)
    snap.modified_at = ctx.now
    return {}


CBS_COPY_ACTIONS: dict[str, Handler] = {
    "CopySnapshotCrossRegions": copy_snapshot_cross_regions,
    "ModifySnapshotAttribute": modify_snapshot_attribute,
}
