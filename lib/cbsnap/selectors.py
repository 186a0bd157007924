"""Which disks a request means, and whether each can be snapshotted at all.

Explicit disks are looked up by ID (100 a DescribeDisks call); a ``selector`` is
resolved with DescribeDisks filters (``tag:KEY``, ``instance-id``), paging 100
at a time, per region. Disks that cannot be snapshotted get their result here,
without a CreateSnapshot call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from cbsnap.client import CbsApi, DiskInfo
from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.models import DiskTarget, ParsedRequest, Selector, SnapshotResult
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
    not_attempted: list[str] = field(default_factory=list)  # out of time before DescribeDisks

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

    def resolve(self, parsed: ParsedRequest, deadline: Deadline) -> Resolution:
        """Explicit disks and the selector's matches, deduplicated, exclusions applied."""
        resolution = Resolution()
        region = parsed.region or self._default_region
        excluded = set(parsed.selector.exclude) if parsed.selector else set()
        explicit = [replace(t, region=region) for t in parsed.targets if t.disk_id not in excluded]
        resolution.excluded = len(parsed.targets) - len(explicit)
        seen = {t.disk_id for t in explicit}

        infos: dict[str, DiskInfo] = {}
        if explicit:
            try:
                infos.update(self._apis(region).describe_disks([t.disk_id for t in explicit], deadline))
            except (CloudError, DeadlineReached) as exc:
                resolution.refused.extend((t.position, failure(t, exc)) for t in explicit)
                if isinstance(exc, DeadlineReached):
                    resolution.not_attempted.extend(t.disk_id for t in explicit)
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

        if parsed.selector is not None:
            self._resolve_selector(
                parsed, region=region, excluded=excluded, seen=seen, into=resolution, deadline=deadline
            )
        return resolution

    def _resolve_selector(
        self,
        parsed: ParsedRequest,
        *,
        region: str,
        excluded: set[str],
        seen: set[str],
        into: Resolution,
        deadline: Deadline,
    ) -> None:
        resolution = into
        assert parsed.selector is not None
        selector = parsed.selector
        regions = list(selector.regions) or [region]
        filters = selector_filters(selector)
        base = len(parsed.rejected) + len(parsed.targets)

        def find(r: str) -> tuple[str, list[DiskInfo] | CloudError | DeadlineReached]:
            try:
                return r, self._apis(r).find_disks(filters, deadline)
            except (CloudError, DeadlineReached) as exc:
                return r, exc

        position = base
        for r, found in self._fan_out(find, regions):
            if not isinstance(found, list):
                where = SnapshotResult.failure(
                    None,
                    None,
                    found.seed_code if isinstance(found, CloudError) else SeedCode.INTERNAL_ERROR,
                    f"selector in region {r}: {found}",
                    region=r,
                )
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
                target = DiskTarget(info.disk_id, parsed.snapshot_name, position, r)
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


def failure(target: DiskTarget, exc: CloudError | DeadlineReached, *, suffix: str = "") -> SnapshotResult:
    """The result of a disk whose call failed (or never started)."""
    if isinstance(exc, DeadlineReached):
        return _result(target, SeedCode.INTERNAL_ERROR, NOT_ATTEMPTED)
    return SnapshotResult.failure(
        target.disk_id,
        target.snapshot_name,
        exc.seed_code,
        exc.describe() + suffix,
        request_id=exc.request_id,
        region=target.region,
    )


NOT_ATTEMPTED = "not attempted: the invocation's time ran out before this disk's turn"
