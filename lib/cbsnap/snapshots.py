"""The snapshot use case: from validated disk targets to one result per disk.

Pure of event and HTTP concerns: it receives a :class:`~cbsnap.models.ParsedRequest`,
the request's identity (:class:`~cbsnap.sinks.RequestMeta`) and a deadline, and
talks to the cloud only through :class:`~cbsnap.client.CbsApi`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from cbsnap.cbs_time import parse_cbs_time
from cbsnap.client import DESCRIBE_SNAPSHOTS_MAX_DISKS, CbsApi, RetryPolicy, SnapshotInfo
from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.ledger import Ledger, NoLedger
from cbsnap.models import DiskTarget, ParsedRequest, SnapshotResult
from cbsnap.ownership import KEY_TAG, correlation_tags, disk_key, owner_tags
from cbsnap.pacing import Sleep
from cbsnap.scf import Clock, Deadline
from cbsnap.selectors import NOT_ATTEMPTED, DiskResolver, Resolution, failure
from cbsnap.sinks import DeliveryReport, RequestMeta

if TYPE_CHECKING:
    from cbsnap.janitor import Janitor

ApiProvider = Callable[[str], CbsApi]
T = TypeVar("T")
R = TypeVar("R")
C = TypeVar("C")
F = TypeVar("F")

# SCF retries async run errors for minutes, over-limit errors for up to 24 h, and
# async events live 6 h by default: a day covers every redelivery path.
DEFAULT_HORIZON_SECONDS = 24 * 3600.0
# CreateTime is read as Beijing time (cbs_time). Should the service ever write UTC instead, that
# reading makes a snapshot look 8 h older than it is, and the newest-first scan could stop before a
# key it still needs: the cut-off keeps 8 h of slack so a wrong zone costs a longer scan, never a miss.
CREATE_TIME_ZONE_SLACK = 8 * 3600.0
LOCK_WAIT_SECONDS = 10.0
# How long a look-before-create's "nothing yet" is trusted. A CBS snapshot stays
# CREATING far longer than this (tens of seconds at least), and CBS refuses a second
# snapshot of a disk while one is CREATING: so a create sent within this window of
# the look cannot duplicate a concurrent delivery's snapshot (docs/at-least-once.md).
FRESH_LOOK_SECONDS = 2.0

# Codes after which the disk may already carry *our* snapshot (a lost reply).
_CREATING_CODES = frozenset({"InvalidDisk.SnapshotCreating", "ResourceUnavailable.SnapshotCreating"})
NOT_ATTEMPTED_UNCHECKED = "not attempted: could not look for a snapshot this request made earlier"
__all__ = ["NOT_ATTEMPTED", "NOT_ATTEMPTED_UNCHECKED", "Outcome", "SnapshotService"]


@dataclass(frozen=True)
class Attempt(Generic[C, F]):
    """How a mutating call ended: created, found (made earlier), or failed."""

    created: C | None = None
    found: F | None = None
    error: CloudError | DeadlineReached | None = None
    attempted: bool = True
    request_id: str | None = None
    suffix: str = ""


@dataclass
class Outcome:
    """Results of one request, in the order the disks were named."""

    results: list[SnapshotResult] = field(default_factory=list)
    not_attempted: list[str] = field(default_factory=list)
    delivery: list[DeliveryReport] = field(default_factory=list)
    # The request's effective identity (an explicit idempotencyKey replaces the trigger's).
    meta: RequestMeta | None = None
    # Set when the request was split into chunks on the work queue (see cbsnap.fanout).
    fanout: dict[str, Any] | None = None

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

    def to_response(self, meta: RequestMeta | None = None) -> dict[str, Any]:
        """The handlers' return value: identity, counts, then every per-disk result."""
        meta = self.meta or meta
        if meta is None:
            raise ValueError("an outcome without request identity")
        return {
            "trigger": meta.trigger,
            "requestKey": meta.request_key,
            **self.summary(),
            "results": [r.to_dict() for r in self.results],
            **({"delivery": [d.to_dict() for d in self.delivery]} if self.delivery else {}),
            **({"chunks": self.fanout["chunks"], "fanout": self.fanout} if self.fanout else {}),
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
    ledger:
        Optional shared key → snapshot records and per-disk locks (Redis).
    horizon_seconds:
        How far back a redelivery can come from; lookups stop paging there.
    """

    def __init__(
        self,
        apis: ApiProvider,
        *,
        region: str,
        concurrency: int = 8,
        policy: RetryPolicy | None = None,
        ledger: Ledger | None = None,
        horizon_seconds: float = DEFAULT_HORIZON_SECONDS,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
        wall_clock: Clock = time.time,
        clock: Clock = time.monotonic,
    ) -> None:
        self._apis = apis
        self._clock = clock
        self._region = region
        self._concurrency = max(1, concurrency)
        self._policy = policy or RetryPolicy()
        self._ledger: Ledger = ledger or NoLedger()
        self._horizon = horizon_seconds
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._wall_clock = wall_clock
        self._resolver = DiskResolver(apis, region, self.fan_out)
        self._janitor: Janitor | None = None

    def api_for(self, region: str) -> CbsApi:
        """The API client this service uses for ``region``."""
        return self._apis(region)

    @property
    def janitor(self) -> Janitor:
        """The retention janitor (after creates, and alone for action "prune"), built and
        imported on first use: most requests carry no retention rule."""
        if self._janitor is None:
            from cbsnap.janitor import Janitor

            self._janitor = Janitor(
                self._apis, region=self._region, wall_clock=self._wall_clock, fan_out=self.fan_out
            )
        return self._janitor

    def resolve(self, parsed: ParsedRequest, deadline: Deadline) -> Resolution:
        """Which disks ``parsed`` means and which of them can be snapshotted (no creates)."""
        return self._resolver.resolve(parsed, deadline)

    def execute(self, parsed: ParsedRequest, meta: RequestMeta, deadline: Deadline) -> Outcome:
        """Resolve and snapshot every disk of ``parsed``; rejected entries pass through as results.

        Results come back in the order the request named the disks.
        """
        return self.snapshot(parsed, self.resolve(parsed, deadline), meta, deadline)

    def snapshot(
        self, parsed: ParsedRequest, resolution: Resolution, meta: RequestMeta, deadline: Deadline
    ) -> Outcome:
        """Create (or adopt) a snapshot for every eligible disk of ``resolution``.

        Unless the request key is fresh, each disk is first looked for (nothing in
        an SCF event says "redelivery"): the ledger in one round trip, then
        DescribeSnapshots 10 disks a call. The lookups run inside the same worker
        pool as the creates, a batch at a time, so they overlap the paced creates
        instead of adding a phase in front of them.
        """
        placed: list[tuple[int, SnapshotResult]] = parsed.placed_rejections() + resolution.refused
        outcome = Outcome(not_attempted=list(resolution.not_attempted))
        eligible = resolution.eligible
        lookups: dict[str, _BatchLookup] = {}
        if eligible and not meta.key_is_fresh:
            keys = {t.disk_id: disk_key(meta.request_key, t.disk_id) for t in eligible}
            recalled = self._ledger.recall(list(keys.values()))
            unknown: list[DiskTarget] = []
            for target in eligible:
                snapshot_id = recalled.get(keys[target.disk_id])
                if snapshot_id is None:
                    unknown.append(target)
                else:
                    placed.append((target.position, _adopted(target, snapshot_id, target.region or "")))
            eligible = unknown
            for region in dict.fromkeys(t.region for t in eligible):
                in_region = [t for t in eligible if t.region == region]
                api = self._apis(region or self._region)
                for start in range(0, len(in_region), DESCRIBE_SNAPSHOTS_MAX_DISKS):
                    batch = in_region[start : start + DESCRIBE_SNAPSHOTS_MAX_DISKS]
                    lookup = _BatchLookup(
                        self, api, [t.disk_id for t in batch], {keys[t.disk_id] for t in batch}, self._clock
                    )
                    lookups.update((t.disk_id, lookup) for t in batch)

        def work(target: DiskTarget) -> tuple[SnapshotResult, bool]:
            api = self._apis(target.region or self._region)
            lookup = lookups.get(target.disk_id)
            if lookup is not None:
                key = disk_key(meta.request_key, target.disk_id)
                looked = lookup.result(deadline)
                if isinstance(looked, (CloudError, DeadlineReached)):
                    # Without the look we cannot tell a redelivery from a first delivery, and
                    # creating blind could make a second snapshot: leave the disk for a redelivery.
                    why = looked.describe() if isinstance(looked, CloudError) else str(looked)
                    message = f"{NOT_ATTEMPTED_UNCHECKED}: {why}"
                    return SnapshotResult.failure(
                        target.disk_id,
                        target.snapshot_name,
                        SeedCode.INTERNAL_ERROR,
                        message,
                        region=api.region,
                    ), False
                found = looked.get(key)
                if found is not None:
                    self._ledger.record(key, found.snapshot_id)
                    return _adopted(target, found.snapshot_id, api.region), True
            looked_at = lookup.started_at if lookup is not None else None
            return self._snapshot_one(api, target, parsed, meta, deadline, looked_at=looked_at)

        for (result, attempted), target in zip(self.fan_out(work, eligible), eligible, strict=True):
            placed.append((target.position, result))
            if not attempted:
                outcome.not_attempted.append(target.disk_id)
        if parsed.retention is not None:  # retention janitor: each disk's delete records follow its create
            placed.extend(
                self.janitor.after_create(parsed.retention, placed, deadline, dry_run=parsed.dry_run)
            )
        placed.sort(key=lambda pair: pair[0])
        outcome.results = [result for _, result in placed]
        return outcome

    # -- steps ---------------------------------------------------------------------

    def fan_out(self, work: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``work`` over ``items`` on up to ``concurrency`` threads, results in order."""
        workers = min(self._concurrency, len(items))
        if workers <= 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cbsnap") as pool:
            return list(pool.map(work, items))

    def find_keyed(
        self, api: CbsApi, disk_ids: Sequence[str], keys: set[str], deadline: Deadline
    ) -> dict[str, SnapshotInfo]:
        """Snapshots of up to 10 disks carrying any of ``keys``, keyed by key.

        Pages newest first and stops once everything is found or the page is
        older than the retry horizon: a key older than that cannot come back.
        DescribeSnapshots has no documented tag filter, so tags are matched here.
        """
        cutoff = self._wall_clock() - self._horizon - CREATE_TIME_ZONE_SLACK
        found: dict[str, SnapshotInfo] = {}
        offset = 0
        while True:
            total, page = api.describe_snapshots(deadline, disk_ids=disk_ids, offset=offset)
            for snap in page:
                key = snap.tags.get(KEY_TAG)
                if key in keys and key not in found:
                    found[key] = snap
            offset += len(page)
            oldest = _create_time(page[-1].create_time) if page else None
            if (
                len(found) == len(keys)
                or not page
                or offset >= total
                or (oldest is not None and oldest < cutoff)
            ):
                return found

    def _snapshot_one(
        self,
        api: CbsApi,
        target: DiskTarget,
        parsed: ParsedRequest,
        meta: RequestMeta,
        deadline: Deadline,
        *,
        looked_at: float | None = None,
    ) -> tuple[SnapshotResult, bool]:
        """Create (or adopt) the snapshot of one disk. Returns (result, attempted).

        With a ledger, the per-disk lock keeps a concurrent delivery of the same
        request from racing to the API; it re-checks the ledger once inside.
        """
        tags = {
            **parsed.tags,
            **correlation_tags(meta.correlation),
            **owner_tags(meta.request_key, target.disk_id, meta.trigger),
        }
        key = tags[KEY_TAG]
        with self._ledger.hold(key, wait_seconds=min(LOCK_WAIT_SECONDS, deadline.remaining() / 2)) as held:
            recorded = self._ledger.recall([key]).get(key)
            if recorded is not None:
                return _adopted(target, recorded, api.region), True
            if not held:
                message = "another delivery of this request is creating this snapshot; retry later"
                return (
                    SnapshotResult.failure(
                        target.disk_id,
                        target.snapshot_name,
                        SeedCode.CBS_CREATING_SNAPSHOT,
                        message,
                        region=api.region,
                    ),
                    True,
                )
            result, attempted = self._create(
                api, target, tags, deadline, expires_at=parsed.expires_at, looked_at=looked_at
            )
            if result.ok and result.snapshotId:
                self._ledger.record(key, result.snapshotId)
            return result, attempted

    def _create(
        self,
        api: CbsApi,
        target: DiskTarget,
        tags: dict[str, str],
        deadline: Deadline,
        *,
        expires_at: str | None = None,
        looked_at: float | None = None,
    ) -> tuple[SnapshotResult, bool]:
        """CreateSnapshot with recovery from ambiguous failures. Returns (result, attempted).

        The look-before-create only proves "no snapshot yet" for a moment: a concurrent
        delivery may create one right after it. CBS refuses a second snapshot while one
        is CREATING, which covers any create sent within FRESH_LOOK_SECONDS of the look
        (a CBS snapshot is never done that fast). When pacing or throttling delays the
        create longer, it looks again just before sending.
        """
        key = tags[KEY_TAG]
        last_look = [looked_at]

        def find() -> SnapshotInfo | None:
            last_look[0] = self._clock()
            return self.find_keyed(api, [target.disk_id], {key}, deadline).get(key)

        def look_again_if_stale() -> None:
            if last_look[0] is None or self._clock() - last_look[0] <= FRESH_LOOK_SECONDS:
                return
            try:
                found = find()
            except (CloudError, DeadlineReached) as exc:
                raise _LookFailed(exc) from exc
            if found is not None:
                raise _AlreadyMade(found)

        try:
            attempt = self.create_idempotently(
                lambda: api.create_snapshot(
                    target.disk_id,
                    target.snapshot_name,
                    deadline,
                    tags=tags,
                    expires_at=expires_at,
                    before_send=look_again_if_stale,
                ),
                find,
                deadline,
            )
        except _AlreadyMade as made:
            return _adopted(target, made.snapshot.snapshot_id, api.region), True
        except _LookFailed as failed:
            why = failed.cause.describe() if isinstance(failed.cause, CloudError) else str(failed.cause)
            message = f"{NOT_ATTEMPTED_UNCHECKED}: {why}"
            result = SnapshotResult.failure(
                target.disk_id, target.snapshot_name, SeedCode.INTERNAL_ERROR, message, region=api.region
            )
            return result, False
        if attempt.created is not None:
            created = attempt.created
            result = SnapshotResult.success(
                target, created.snapshot_id, request_id=created.request_id, region=api.region
            )
            return result, True
        if attempt.found is not None:
            return _adopted(target, attempt.found.snapshot_id, api.region, attempt.request_id), True
        assert attempt.error is not None
        return failure(target, attempt.error, suffix=attempt.suffix), attempt.attempted

    def create_idempotently(
        self, create: Callable[[], C], find: Callable[[], F | None], deadline: Deadline
    ) -> Attempt[C, F]:
        """Run a mutating ``create``; after any ambiguous failure (it may have been
        committed although we never heard back) run ``find`` for what it made
        before trying again, so a lost reply never yields a second resource."""
        last: CloudError | None = None
        ambiguous = 0
        # True while the last failure may have created something we could not find
        # (the look failed too): such an end is "not attempted", so a queue trigger
        # raises and the redelivery's look-before-create settles it.
        unresolved = False
        while True:
            try:
                return Attempt(created=create())
            except DeadlineReached as exc:
                if last is None:
                    return Attempt(error=exc, attempted=False)
                return Attempt(error=last, attempted=not unresolved)
            except CloudError as err:
                last = err
                if not (err.is_ambiguous or err.code in _CREATING_CODES):
                    return Attempt(error=err)
                try:
                    found = find()
                    unresolved = False
                except (CloudError, DeadlineReached):
                    found = None
                    unresolved = True
                if found is not None:
                    return Attempt(found=found, request_id=err.request_id)
                if err.code in _CREATING_CODES:  # somebody else's snapshot is in progress
                    return Attempt(error=err, attempted=not unresolved)
                ambiguous += 1
                if ambiguous >= self._policy.transient_attempts:
                    suffix = f" (gave up after {ambiguous} attempts)"
                    return Attempt(error=err, suffix=suffix, attempted=not unresolved)
                wait = self._policy.delay(ambiguous, self._rng)
                if wait >= deadline.remaining():
                    return Attempt(error=err, attempted=not unresolved)
                self._sleep(wait)


class _AlreadyMade(Exception):
    """Raised by the last-moment look: this request's snapshot exists after all."""

    def __init__(self, snapshot: SnapshotInfo) -> None:
        super().__init__(snapshot.snapshot_id)
        self.snapshot = snapshot


class _LookFailed(Exception):
    """Raised by the last-moment look when it could not look: do not create blind."""

    def __init__(self, cause: CloudError | DeadlineReached) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _BatchLookup:
    """One DescribeSnapshots lookup shared by up to 10 disks: the first worker to
    need it runs it, the others wait for its answer."""

    def __init__(
        self, service: SnapshotService, api: CbsApi, disk_ids: list[str], keys: set[str], clock: Clock
    ) -> None:
        self._service = service
        self._api = api
        self._disk_ids = disk_ids
        self._keys = keys
        self._clock = clock
        self.started_at: float | None = None  # when the look began: how fresh its "nothing" is
        self._lock = threading.Lock()
        self._found: dict[str, SnapshotInfo] | CloudError | DeadlineReached | None = None

    def result(self, deadline: Deadline) -> dict[str, SnapshotInfo] | CloudError | DeadlineReached:
        """Snapshots found per key, or why the lookup failed (then nothing may be created)."""
        with self._lock:
            if self._found is None:
                self.started_at = self._clock()
                try:
                    self._found = self._service.find_keyed(self._api, self._disk_ids, self._keys, deadline)
                except (CloudError, DeadlineReached) as exc:
                    self._found = exc
            return self._found


def _adopted(
    target: DiskTarget, snapshot_id: str, region: str, request_id: str | None = None
) -> SnapshotResult:
    """A success answered by a snapshot this request made earlier (a retry or redelivery)."""
    return SnapshotResult.success(target, snapshot_id, request_id=request_id, region=region).model_copy(
        update={"adopted": True}
    )


def _create_time(value: str) -> float | None:
    """Seconds since the epoch of a CreateTime (Beijing time, see cbs_time); None if unreadable."""
    moment = parse_cbs_time(value)
    return None if moment is None else moment.timestamp()
