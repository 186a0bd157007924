"""The snapshot use case: from validated disk targets to one result per disk.

Pure of event and HTTP concerns: it receives a :class:`~cbsnap.models.ParsedRequest`,
the request's identity (:class:`~cbsnap.sinks.RequestMeta`) and a deadline, and
talks to the cloud only through :class:`~cbsnap.client.CbsApi`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cbsnap.client import CbsApi, DiskInfo, RetryPolicy, SnapshotInfo
from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.models import DiskTarget, ParsedRequest, SnapshotResult
from cbsnap.ownership import KEY_TAG, owner_tags
from cbsnap.pacing import Sleep
from cbsnap.scf import Deadline
from cbsnap.sinks import DeliveryReport, RequestMeta

ApiProvider = Callable[[str], CbsApi]

# Codes after which the disk may already carry *our* snapshot (a lost reply).
_CREATING_CODES = frozenset({"InvalidDisk.SnapshotCreating", "ResourceUnavailable.SnapshotCreating"})
NOT_ATTEMPTED = "not attempted: the invocation's time ran out before this disk's turn"


@dataclass
class Outcome:
    """Results of one request, in the order the disks were named."""

    results: list[SnapshotResult] = field(default_factory=list)
    not_attempted: list[str] = field(default_factory=list)
    delivery: list[DeliveryReport] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        """Number of code-0 results."""
        return sum(1 for r in self.results if r.ok)

    def summary(self) -> dict[str, int]:
        """Counts for the handler's return value."""
        return {
            "total": len(self.results),
            "succeeded": self.succeeded,
            "failed": len(self.results) - self.succeeded,
            "notAttempted": len(self.not_attempted),
        }

    def to_response(self, meta: RequestMeta) -> dict[str, Any]:
        """The handlers' return value: identity, counts, then every per-disk result."""
        return {
            "trigger": meta.trigger,
            "requestKey": meta.request_key,
            **self.summary(),
            "results": [r.to_dict() for r in self.results],
            **({"delivery": [d.to_dict() for d in self.delivery]} if self.delivery else {}),
        }


class SnapshotService:
    """Creates one snapshot per valid disk target, concurrently and idempotently.

    Parameters
    ----------
    apis:
        Returns the :class:`CbsApi` for a region (one SDK client, one HTTP session each).
    region:
        The region for disks named without one.
    concurrency:
        Worker threads per request; the pacer keeps them under the API rate limit.
    """

    def __init__(
        self,
        apis: ApiProvider,
        *,
        region: str,
        concurrency: int = 8,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._apis = apis
        self._region = region
        self._concurrency = max(1, concurrency)
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()

    def api_for(self, region: str) -> CbsApi:
        """The API client this service uses for ``region``."""
        return self._apis(region)

    def execute(self, parsed: ParsedRequest, meta: RequestMeta, deadline: Deadline) -> Outcome:
        """Snapshot every target of ``parsed``; the rejected entries pass through as results.

        Results come back in the order the request named the disks.
        """
        placed: list[tuple[int, SnapshotResult]] = parsed.placed_rejections()
        outcome = Outcome()
        if parsed.targets:
            api = self._apis(self._region)
            eligible, refused = self._precheck(api, parsed.targets, deadline)
            placed.extend(refused)

            def work(target: DiskTarget) -> tuple[SnapshotResult, bool]:
                return self._snapshot_one(api, target, parsed.tags, meta, deadline)

            workers = min(self._concurrency, len(eligible))
            if workers <= 1:
                done = [work(t) for t in eligible]
            else:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cbsnap") as pool:
                    done = list(pool.map(work, eligible))
            for (result, attempted), target in zip(done, eligible, strict=True):
                placed.append((target.position, result))
                if not attempted:
                    outcome.not_attempted.append(target.disk_id)
        placed.sort(key=lambda pair: pair[0])
        outcome.results = [result for _, result in placed]
        return outcome

    # -- steps ---------------------------------------------------------------------

    def _precheck(
        self, api: CbsApi, targets: Sequence[DiskTarget], deadline: Deadline
    ) -> tuple[list[DiskTarget], list[tuple[int, SnapshotResult]]]:
        """DescribeDisks (100 IDs a call): unknown disks and disks without
        SnapshotAbility get their result here, without a CreateSnapshot call."""
        try:
            disks = api.describe_disks([t.disk_id for t in targets], deadline)
        except (CloudError, DeadlineReached) as exc:
            return [], [(t.position, self._failure(t, exc, api.region)) for t in targets]
        eligible: list[DiskTarget] = []
        refused: list[tuple[int, SnapshotResult]] = []
        for target in targets:
            info: DiskInfo | None = disks.get(target.disk_id)
            if info is None:
                message = f"InvalidDiskId.NotFound: {target.disk_id} does not exist in region {api.region}"
                refused.append(
                    (
                        target.position,
                        SnapshotResult.failure(
                            target.disk_id,
                            target.snapshot_name,
                            SeedCode.INVALID_PARAMETER,
                            message,
                            region=api.region,
                        ),
                    )
                )
            elif not info.snapshot_ability:
                refused.append(
                    (
                        target.position,
                        SnapshotResult.failure(
                            target.disk_id,
                            target.snapshot_name,
                            SeedCode.SNAPSHOT_NOT_SUPPORTED,
                            f"SnapshotAbility=false: {target.disk_id} cannot be snapshotted",
                            region=api.region,
                        ),
                    )
                )
            else:
                eligible.append(target)
        return eligible, refused

    def _snapshot_one(
        self,
        api: CbsApi,
        target: DiskTarget,
        user_tags: dict[str, str],
        meta: RequestMeta,
        deadline: Deadline,
    ) -> tuple[SnapshotResult, bool]:
        """Create (or adopt) the snapshot of one disk. Returns (result, attempted)."""
        tags = {**user_tags, **owner_tags(meta.request_key, target.disk_id, meta.trigger)}
        key = tags[KEY_TAG]
        last: CloudError | None = None
        ambiguous = 0
        while True:
            try:
                created = api.create_snapshot(target.disk_id, target.snapshot_name, deadline, tags=tags)
                return (
                    SnapshotResult.success(
                        target, created.snapshot_id, request_id=created.request_id, region=api.region
                    ),
                    True,
                )
            except DeadlineReached as exc:
                if last is None:
                    return self._failure(target, exc, api.region), False
                return self._failure(target, last, api.region), True
            except CloudError as err:
                last = err
                if not (err.is_ambiguous or err.code in _CREATING_CODES):
                    return self._failure(target, err, api.region), True
                # The snapshot may exist although we never heard back: look for
                # our key before trying again, or we would make a second one.
                try:
                    found = self._find_by_key(api, target.disk_id, key, deadline)
                except (CloudError, DeadlineReached):
                    found = None
                if found is not None:
                    return (
                        SnapshotResult.success(
                            target, found.snapshot_id, request_id=err.request_id, region=api.region
                        ),
                        True,
                    )
                if err.code in _CREATING_CODES:  # somebody else's snapshot is in progress
                    return self._failure(target, err, api.region), True
                ambiguous += 1
                if ambiguous >= self._policy.transient_attempts:
                    suffix = f" (gave up after {ambiguous} attempts)"
                    return self._failure(target, err, api.region, suffix=suffix), True
                wait = self._policy.delay(ambiguous, self._rng)
                if wait >= deadline.remaining():
                    return self._failure(target, err, api.region), True
                self._sleep(wait)

    def _find_by_key(self, api: CbsApi, disk_id: str, key: str, deadline: Deadline) -> SnapshotInfo | None:
        """The disk's snapshot carrying ``cbsnap:key=key``, newest first, if any.

        DescribeSnapshots has no documented tag filter, so tags are matched here.
        """
        _total, page = api.describe_snapshots(deadline, disk_ids=[disk_id])
        for snap in page:
            if snap.tags.get(KEY_TAG) == key:
                return snap
        return None

    @staticmethod
    def _failure(
        target: DiskTarget, exc: CloudError | DeadlineReached, region: str, *, suffix: str = ""
    ) -> SnapshotResult:
        if isinstance(exc, DeadlineReached):
            return SnapshotResult.failure(
                target.disk_id, target.snapshot_name, SeedCode.INTERNAL_ERROR, NOT_ATTEMPTED, region=region
            )
        return SnapshotResult.failure(
            target.disk_id,
            target.snapshot_name,
            exc.seed_code,
            exc.describe() + suffix,
            request_id=exc.request_id,
            region=region,
        )
