"""The snapshot use case: from resolved disk targets to one result per disk.

Pure of event and HTTP concerns: it receives a :class:`~cbsnap.request.Request`, the
disks :mod:`cbsnap.selectors` resolved and a deadline, and talks to the cloud only
through the :class:`~cbsnap.cbs.CbsApi` protocol. Idempotency (docs/at-least-once.md):

* every create carries the per-disk key tag (``cbsnap:key``) in the same call;
* unless the request key is fresh, each disk is looked for first: the ledger in one round
  trip, then DescribeSnapshots 10 disks a call (:mod:`cbsnap.lookup`), inside the same
  worker pool as the creates so the looks overlap the paced creates;
* a look that fails leaves the disk *not attempted* — creating blind could duplicate;
* after an ambiguous failure the create looks again before retrying (:mod:`cbsnap.idempotent`);
* with a ledger, a per-disk lock keeps concurrent deliveries from racing; a lock held by
  another delivery leaves the disk not attempted (the platform redelivers).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from cbsnap.cbs import DESCRIBE_SNAPSHOTS_MAX_DISKS, CbsApi, SnapshotInfo
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.idempotent import IdempotentCreator
from cbsnap.ledger import Ledger, NoLedger
from cbsnap.lookup import KeyedLookup
from cbsnap.models import DiskTarget, SnapshotResult
from cbsnap.ownership import KEY_TAG, correlation_tags, disk_key, owner_tags
from cbsnap.request import Placed, Request
from cbsnap.scf import Clock, Deadline
from cbsnap.selectors import Resolution, failure
from cbsnap.workers import Parallel, sequential

ApiProvider = Callable[[str], CbsApi]

# How long a look-before-create's "nothing yet" is trusted. A CBS snapshot stays
# CREATING far longer than this (tens of seconds at least), and CBS refuses a second
# snapshot of a disk while one is CREATING: so a create sent within this window of
# the look cannot duplicate a concurrent delivery's snapshot (docs/at-least-once.md).
FRESH_LOOK_SECONDS = 2.0

UNCHECKED = "could not look for a snapshot this request made earlier"
LOCKED = "another delivery of this request holds this disk's lock"


class SnapshotService:
    """Creates one snapshot per eligible disk, concurrently and idempotently.

    Parameters
    ----------
    apis:
        Returns the :class:`CbsApi` for a region.
    lookup:
        Finds snapshots this request made earlier (by key tag, within the retry horizon).
    creator:
        Runs the creates with retries that survive lost replies.
    ledger:
        Optional shared key → snapshot records and per-disk locks (Redis).
    parallel:
        Runs the per-disk work on threads, results in order.
    """

    def __init__(
        self,
        apis: ApiProvider,
        *,
        lookup: KeyedLookup,
        creator: IdempotentCreator,
        ledger: Ledger | None = None,
        parallel: Parallel = sequential,
        clock: Clock = time.monotonic,
    ) -> None:
        self._apis = apis
        self._lookup = lookup
        self._creator = creator
        self._ledger: Ledger = ledger or NoLedger()
        self._parallel = parallel
        self._clock = clock

    def snapshot(self, request: Request, resolution: Resolution, deadline: Deadline) -> list[Placed]:
        """Create (or adopt) a snapshot for every eligible disk; one placed result each."""
        meta = request.meta
        placed: list[Placed] = []
        eligible = list(resolution.eligible)
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
            for region in dict.fromkeys(t.region or "" for t in eligible):
                in_region = [t for t in eligible if (t.region or "") == region]
                api = self._apis(region)
                for start in range(0, len(in_region), DESCRIBE_SNAPSHOTS_MAX_DISKS):
                    batch = in_region[start : start + DESCRIBE_SNAPSHOTS_MAX_DISKS]
                    wanted = {keys[t.disk_id] for t in batch}
                    lookup = _BatchLookup(self._lookup, api, [t.disk_id for t in batch], wanted, self._clock)
                    lookups.update((t.disk_id, lookup) for t in batch)

        def work(target: DiskTarget) -> SnapshotResult:
            api = self._apis(target.region or "")
            lookup = lookups.get(target.disk_id)
            if lookup is not None:
                key = disk_key(meta.request_key, target.disk_id)
                looked = lookup.result(deadline)
                if isinstance(looked, (CloudError, DeadlineReached)):
                    # Without the look a redelivery cannot be told from a first delivery, and
                    # creating blind could make a second snapshot: leave the disk for a redelivery.
                    return _unchecked(target, looked, api.region)
                found = looked.get(key)
                if found is not None:
                    self._ledger.record(key, found.snapshot_id)
                    return _adopted(target, found.snapshot_id, api.region)
            return self._snapshot_one(api, target, request, deadline, batch=lookup)

        placed.extend(zip((t.position for t in eligible), self._parallel(work, eligible), strict=True))
        return placed

    def _snapshot_one(
        self,
        api: CbsApi,
        target: DiskTarget,
        request: Request,
        deadline: Deadline,
        *,
        batch: _BatchLookup | None = None,
    ) -> SnapshotResult:
        """Create (or adopt) the snapshot of one disk under its ledger lock."""
        meta = request.meta
        tags = {
            **(request.options.tags if request.options is not None else {}),
            **correlation_tags(meta.correlation),
            **owner_tags(meta.request_key, target.disk_id, meta.trigger),
        }
        key = tags[KEY_TAG]
        with self._ledger.hold(key, deadline) as held:
            recorded = self._ledger.recall([key]).get(key)
            if recorded is not None:
                return _adopted(target, recorded, api.region)
            if not held:
                return SnapshotResult.not_attempted(
                    target.disk_id, target.snapshot_name, LOCKED, region=api.region
                )
            result = self._create(api, target, tags, deadline, expires_at=request.expires_at, batch=batch)
            if result.ok and result.snapshotId:
                self._ledger.record(key, result.snapshotId)
            return result

    def _create(
        self,
        api: CbsApi,
        target: DiskTarget,
        tags: dict[str, str],
        deadline: Deadline,
        *,
        expires_at: str | None,
        batch: _BatchLookup | None,
    ) -> SnapshotResult:
        """CreateSnapshot with recovery from ambiguous failures.

        The look-before-create only proves "no snapshot yet" for a moment: a concurrent
        delivery may create one right after it. CBS refuses a second snapshot while one
        is CREATING, which covers any create sent within FRESH_LOOK_SECONDS of the look.
        When pacing or throttling delays the create longer, it looks again just before sending:
        through its batch (one DescribeSnapshots refreshes the look for the batch's ten disks,
        which a paced chunk creates over several seconds), or for this disk alone.
        """
        key = tags[KEY_TAG]
        last_look = [batch.started_at if batch is not None else None]

        def match(snap: SnapshotInfo) -> str | None:
            return key if snap.tags.get(KEY_TAG) == key else None

        def find() -> SnapshotInfo | None:
            last_look[0] = self._clock()
            return self._lookup.find(api, [target.disk_id], match, 1, deadline).get(key)

        def look_again_if_stale() -> None:
            if last_look[0] is None or self._clock() - last_look[0] <= FRESH_LOOK_SECONDS:
                return
            try:
                if batch is not None:
                    looked, last_look[0] = batch.fresh(deadline)
                    found = looked.get(key)
                else:
                    found = find()
            except (CloudError, DeadlineReached) as exc:
                raise _LookFailed(exc) from exc
            if found is not None:
                raise _AlreadyMade(found)

        try:
            attempt = self._creator.create(
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
            return _adopted(target, made.snapshot.snapshot_id, api.region)
        except _LookFailed as failed:
            return _unchecked(target, failed.cause, api.region)
        if attempt.created is not None:
            created = attempt.created
            return SnapshotResult.success(
                target, created.snapshot_id, request_id=created.request_id, region=api.region
            )
        if attempt.found is not None:
            return _adopted(target, attempt.found.snapshot_id, api.region, attempt.request_id)
        assert attempt.error is not None
        result = failure(target, attempt.error, suffix=attempt.suffix)
        if not attempt.attempted and result.attempted:
            why = f"the outcome of an ambiguous failure is unknown: {result.message}"
            return SnapshotResult.not_attempted(
                target.disk_id, target.snapshot_name, why, region=api.region, request_id=result.requestId
            )
        return result


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
    """One DescribeSnapshots look shared by up to 10 disks: the first worker to
    need it runs it, the others wait for its answer."""

    def __init__(
        self, lookup: KeyedLookup, api: CbsApi, disk_ids: Sequence[str], keys: set[str], clock: Clock
    ) -> None:
        self._lookup = lookup
        self._api = api
        self._disk_ids = list(disk_ids)
        self._keys = keys
        self._clock = clock
        self.started_at: float | None = None  # when the look began: how fresh its "nothing" is
        self._lock = threading.Lock()
        self._found: dict[str, SnapshotInfo] | CloudError | DeadlineReached | None = None

    def _match(self, snap: SnapshotInfo) -> str | None:
        key = snap.tags.get(KEY_TAG)
        return key if key in self._keys else None

    def result(self, deadline: Deadline) -> dict[str, SnapshotInfo] | CloudError | DeadlineReached:
        """Snapshots found per key, or why the look failed (then nothing may be created)."""
        with self._lock:
            if self._found is None:
                self.started_at = self._clock()
                try:
                    self._found = self._lookup.find(
                        self._api, self._disk_ids, self._match, len(self._keys), deadline
                    )
                except (CloudError, DeadlineReached) as exc:
                    self._found = exc
            return self._found

    def fresh(self, deadline: Deadline) -> tuple[dict[str, SnapshotInfo], float]:
        """A look begun at most :data:`FRESH_LOOK_SECONDS` ago, and when it began: the batch's
        last one, or a new one shared with the batch's other disks.

        Raises :class:`CloudError`/:class:`DeadlineReached` when a new look fails; the failure
        is not kept, so the next disk of the batch tries again.
        """
        with self._lock:
            if (
                isinstance(self._found, dict)
                and self.started_at is not None
                and self._clock() - self.started_at <= FRESH_LOOK_SECONDS
            ):
                return self._found, self.started_at
            started = self._clock()
            found = self._lookup.find(self._api, self._disk_ids, self._match, len(self._keys), deadline)
            self._found, self.started_at = found, started
            return found, started


def _unchecked(target: DiskTarget, cause: CloudError | DeadlineReached, region: str) -> SnapshotResult:
    why = cause.describe() if isinstance(cause, CloudError) else str(cause)
    return SnapshotResult.not_attempted(
        target.disk_id, target.snapshot_name, f"{UNCHECKED}: {why}", region=region
    )


def _adopted(
    target: DiskTarget, snapshot_id: str, region: str, request_id: str | None = None
) -> SnapshotResult:
    """A success answered by a snapshot this request made earlier (a retry or redelivery)."""
    return SnapshotResult.success(target, snapshot_id, request_id=request_id, region=region).model_copy(
        update={"adopted": True}
    )
