"""Which disks a request means, and whether each can be snapshotted at all.

Explicit disks are looked up by ID (100 a DescribeDisks call); a ``selector`` is
resolved with DescribeDisks filters (``tag:KEY``, ``instance-id``), paging 100
at a time, per region. Disks that cannot be snapshotted get their result here,
without a CreateSnapshot call.

A lookup that fails for a reason that may pass (out of time, throttled, an internal or
network error) leaves its disks *not attempted*, so the trigger asks for a redelivery;
only a failure that will not pass by itself (auth, invalid parameters) is final.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from cbsnap.cbs import CbsApi, DiskInfo
from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.models import DiskTarget, Selector, SnapshotResult
from cbsnap.request import Request
from cbsnap.scf import Deadline

T = TypeVar("T")
R = TypeVar("R")


class FanOut(Protocol):
    """Runs ``work`` over ``items`` (possibly on threads), results in order."""

    def __call__(self, work: Callable[[T], R], items: Sequence[T], /) -> list[R]: ...


# States in which CBS refuses a snapshot for good (not "busy, try again").
_UNSNAPSHOTTABLE_STATES = frozenset({"TORECYCLE"})


@dataclass
class Resolution:
    """The request's disks: those to snapshot (region set) and those already answered."""

    eligible: list[DiskTarget] = field(default_factory=list)
    refused: list[tuple[int, SnapshotResult]] = field(default_factory=list)
    excluded: int = 0
    infos: dict[str, DiskInfo] = field(default_factory=dict)  # what DescribeDisks said, per disk

    def regions(self) -> list[str]:
        """The regions of the eligible disks, in first-seen order."""
        return list(dict.fromkeys(t.region or "" for t in self.eligible))


def selector_filters(selector: Selector) -> dict[str, list[str]]:
    """DescribeDisks filters for a selector: every tag and the instance list narrow together."""
    filters = {f"tag:{key}": [value] for key, value in selector.tags.items()}
    if selector.instanceIds:
        filters["instance-id"] = list(selector.instanceIds)
    return filters


class DiskResolver:
    """Resolves explicit disks and selectors into eligible targets, region by region."""

    def __init__(self, apis: Callable[[str], CbsApi], default_region: str, fan_out: FanOut) -> None:
        self._apis = apis
        self._default_region = default_region
        self._fan_out = fan_out

    def resolve(self, request: Request, deadline: Deadline) -> Resolution:
        """Explicit disks and the selector's matches, deduplicated, exclusions applied."""
        resolution = Resolution()
        options = request.options
        selector = options.selector if options is not None else None
        region = (options.region if options is not None else None) or self._default_region
        excluded = set(selector.exclude) if selector else set()
        explicit = [replace(t, region=region) for t in request.targets if t.disk_id not in excluded]
        resolution.excluded = len(request.targets) - len(explicit)
        seen = {t.disk_id for t in explicit}

        infos: dict[str, DiskInfo] = {}
        if explicit:
            try:
                infos.update(self._apis(region).describe_disks([t.disk_id for t in explicit], deadline))
            except (CloudError, DeadlineReached) as exc:
                resolution.refused.extend((t.position, lookup_failure(t, exc)) for t in explicit)
                explicit = []
            for target in explicit:
                info = infos.get(target.disk_id)
                if info is None:
                    message = f"InvalidDiskId.NotFound: {target.disk_id} does not exist in region {region}"
                    resolution.refused.append(
                        (target.position, _result(target, SeedCode.INVALID_PARAMETER, message))
                    )
                else:
                    self._classify(target, info, resolution)

        if selector is not None:
            self._resolve_selector(
                request,
                selector,
                region=region,
                excluded=excluded,
                seen=seen,
                into=resolution,
                deadline=deadline,
            )
        return resolution

    def _resolve_selector(
        self,
        request: Request,
        selector: Selector,
        *,
        region: str,
        excluded: set[str],
        seen: set[str],
        into: Resolution,
        deadline: Deadline,
    ) -> None:
        resolution = into
        regions = list(selector.regions) or [region]
        filters = selector_filters(selector)
        base = len(request.rejections) + len(request.targets)

        def find(r: str) -> tuple[str, list[DiskInfo] | CloudError | DeadlineReached]:
            try:
                return r, self._apis(r).find_disks(filters, deadline)
            except (CloudError, DeadlineReached) as exc:
                return r, exc

        position = base
        for r, found in self._fan_out(find, regions):
            if not isinstance(found, list):
                why = f"selector in region {r}: {found}"
                if may_pass(found):  # the disks it would have matched are unknown: redeliver
                    where = SnapshotResult.not_attempted(None, None, why, region=r)
                else:
                    assert isinstance(found, CloudError)
                    where = SnapshotResult.failure(None, None, found.seed_code, why, region=r)
                resolution.refused.append((position, where))
                position += 1
                continue
            for info in sorted(found, key=lambda d: d.disk_id):
                if info.disk_id in seen:
                    continue
                seen.add(info.disk_id)
                if info.disk_id in excluded:
                    resolution.excluded += 1
                    continue
                target = DiskTarget(
                    info.disk_id,
                    request.snapshot_name,
                    position,
                    r,
                    name_given=request.options is not None and request.options.snapshotName is not None,
                )
                position += 1
                self._classify(target, info, resolution)

    @staticmethod
    def _classify(target: DiskTarget, info: DiskInfo, resolution: Resolution) -> None:
        """Eligible, or answered now with the code the API would give."""
        refusal: tuple[SeedCode, str] | None = None
        not_supported = SeedCode.SNAPSHOT_NOT_SUPPORTED
        if not info.snapshot_ability:
            refusal = (not_supported, "SnapshotAbility=false: cannot be snapshotted")
        elif info.shareable:
            refusal = (not_supported, "UnsupportedOperation.ShareDiskNotSupportSnap: shared disk")
        elif info.state in _UNSNAPSHOTTABLE_STATES:
            refusal = (SeedCode.DISK_TYPE_INVALID, f"DiskState={info.state}: not snapshottable in this state")
        resolution.infos[target.disk_id] = info
        if refusal is None:
            resolution.eligible.append(target)
        else:
            code, why = refusal
            resolution.refused.append((target.position, _result(target, code, f"{target.disk_id}: {why}")))


def _result(target: DiskTarget, code: SeedCode, message: str) -> SnapshotResult:
    return SnapshotResult.failure(target.disk_id, target.snapshot_name, code, message, region=target.region)


def may_pass(exc: CloudError | DeadlineReached) -> bool:
    """True for a failure a later delivery may not meet: out of time, throttled, busy,
    an internal or network error."""
    return isinstance(exc, DeadlineReached) or exc.is_throttle or exc.is_transient


def lookup_failure(target: DiskTarget, exc: CloudError | DeadlineReached) -> SnapshotResult:
    """The result of a disk whose read-only lookup failed: not attempted when the failure
    may pass (nothing was done, so a redelivery is safe), else final with the cloud's code."""
    if may_pass(exc):
        why = exc.describe() if isinstance(exc, CloudError) else OUT_OF_TIME
        return SnapshotResult.not_attempted(target.disk_id, target.snapshot_name, why, region=target.region)
    return failure(target, exc)


def failure(target: DiskTarget, exc: CloudError | DeadlineReached, *, suffix: str = "") -> SnapshotResult:
    """The result of a disk whose read-only lookup failed or whose call never started.

    Out of time → not attempted. A cloud error keeps its code (a transient one makes
    the result ask for a redelivery through its code, see
    :attr:`~cbsnap.models.SnapshotResult.needs_redelivery`).
    """
    if isinstance(exc, DeadlineReached):
        return SnapshotResult.not_attempted(
            target.disk_id, target.snapshot_name, OUT_OF_TIME, region=target.region
        )
    return SnapshotResult.failure(
        target.disk_id,
        target.snapshot_name,
        exc.seed_code,
        exc.describe() + suffix,
        request_id=exc.request_id,
        region=target.region,
    )


OUT_OF_TIME = "the invocation's time ran out before this disk's turn"
