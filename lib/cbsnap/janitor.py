"""The retention janitor: deletes cbsnap's own old snapshots of a disk, and nothing else.

A request's ``retention`` (``keepLast`` and/or ``maxAgeDays``) is applied per disk,
after that disk's snapshot was made, or on its own with ``"action": "prune"``.
The design and its reasons are in docs/retention.md; in short:

* **Scope.** Only snapshots of the disk that carry ``cbsnap:owner=cbsnap`` *and*
  the scope's SnapshotName (after a create: the name just used; for a prune: the
  request's ``snapshotName`` when one was given, else every owned snapshot).
  Nothing outside the scope is ever a candidate or gets a record.
* **Rules** (:func:`select`, pure). ``keepLast N`` keeps the N newest in scope
  (the snapshot just made is one of them); ``maxAgeDays D`` makes those created
  more than D days ago candidates. With both, a snapshot is a candidate only when
  both rules pick it. The snapshot just made is never a candidate.
* **Skips.** A candidate still CREATING, in any other non-NORMAL state, or bound to
  an image is not deleted; it gets a record saying why.
* **Deleting** (:meth:`Janitor.execute`). DeleteSnapshots is all-or-nothing, so IDs
  go in batches of :data:`BATCH_SIZE`; a failed batch is retried one ID at a time
  so that one bad ID does not keep the others. Every ID ends with a record.
* **Dry run.** The same plan, reported with "dry run: would delete" and no
  DeleteSnapshots call.

Records are :class:`~cbsnap.models.SnapshotResult` with ``action="delete"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timezone
from functools import lru_cache

from cbsnap.cbs import DESCRIBE_SNAPSHOTS_MAX_DISKS, MAX_PAGES, SNAPSHOT_QUOTA, CbsApi, SnapshotInfo
from cbsnap.cbs_time import format_cbs_time, parse_cbs_time
from cbsnap.codes import SeedCode, seed_code_for
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.gfs import Dated, Verdict, apply_rules, describe_would_keep, zone_named
from cbsnap.models import Retention, SnapshotResult
from cbsnap.ownership import OWNER_TAG, OWNER_VALUE
from cbsnap.request import Placed, Request
from cbsnap.scf import Clock, Deadline
from cbsnap.selectors import Resolution
from cbsnap.workers import Parallel, sequential

__all__ = [
    "BATCH_SIZE",
    "DELETE_ACTION",
    "DRY_RUN_MESSAGE",
    "Candidate",
    "DiskPlan",
    "DiskScope",
    "Janitor",
    "Plan",
    "select",
]

DELETE_ACTION = "delete"
# IDs per DeleteSnapshots call. Tencent documents no maximum; the call is
# all-or-nothing, so a batch is also the blast radius of one bad ID: 20 keeps the
# one-by-one fallback to one second of calls at the documented 20 requests/s,
# keeps the request small, and still deletes a whole disk's worth (≤ 64) in a few calls.
BATCH_SIZE = 20
DAY_SECONDS = 86_400.0
DRY_RUN_MESSAGE = "dry run: would delete"
JANITOR_NOT_ATTEMPTED = "not attempted: the invocation's time ran out before this snapshot's turn"
LISTING_NOT_ATTEMPTED = "retention not applied: the invocation's time ran out before this disk's turn"
ALREADY_GONE = "already deleted"
EXPECTED_ID = "(new)"  # the snapshot about to be made, in plans only
_NOT_FOUND = "InvalidSnapshotId.NotFound"
# Disk refusals that concern creating a snapshot, not keeping old ones: a prune
# still applies to such a disk (e.g. one in the recycle bin keeps its snapshots).
_PRUNABLE_REFUSALS = frozenset({SeedCode.SNAPSHOT_NOT_SUPPORTED, SeedCode.DISK_TYPE_INVALID})
# Errors for which retrying a failed batch one ID at a time cannot help.
_WHOLE_BATCH_CODES = frozenset({SeedCode.AUTH_FAILURE, SeedCode.REQUEST_LIMIT_EXCEEDED})
_CREATING = "ResourceUnavailable.SnapshotCreating"
_HAS_IMAGE = "UnsupportedOperation.SnapshotHasBindedImage"
_SHARED = "UnsupportedOperation.SnapHasShared"
_NOT_NORMAL = "InvalidSnapshot.NotSupported"


# -- the plan (pure) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiskScope:
    """One disk the janitor looks at, and which of its snapshots are in scope.

    ``name`` None means every owned snapshot of the disk; ``just_made`` are the
    snapshots this request made (or adopted), never deleted; ``position`` places
    the disk's records among the request's results.
    """

    disk_id: str
    region: str
    name: str | None
    position: int = 0
    just_made: frozenset[str] = frozenset()
    # True when a snapshot is about to be made (dry runs, quota room): the rules then count a
    # new snapshot of the scope's name as the newest; it is never in any record. Made "now" in a
    # dry run's prediction. ``cautious`` (making room) dates it like the newest snapshot in scope,
    # and keeps that one: the new snapshot's CreateTime is not known yet, and whatever it turns
    # out to be, the rules then delete at least what this plan does (docs/retention.md).
    expecting_new: bool = False
    cautious: bool = False


@dataclass(frozen=True)
class Candidate:
    """A snapshot the rules select: deleted unless ``skip`` says why not."""

    snapshot: SnapshotInfo
    skip: SeedCode | None = None
    reason: str = ""
    why: str = ""  # its age and which rule would have kept it (dry runs report it)


@dataclass(frozen=True)
class DiskPlan:
    """What the rules decided for one disk, oldest candidate first.

    ``error`` is set (and nothing is planned) when the disk's snapshots could not be listed.
    """

    scope: DiskScope
    candidates: tuple[Candidate, ...] = ()
    kept: tuple[SnapshotInfo, ...] = ()  # in scope, not selected by the rules
    error: SnapshotResult | None = None

    @property
    def to_delete(self) -> list[SnapshotInfo]:
        """Candidates that will be deleted."""
        return [c.snapshot for c in self.candidates if c.skip is None]

    @property
    def skipped(self) -> list[Candidate]:
        """Candidates that will not be deleted, with the reason."""
        return [c for c in self.candidates if c.skip is not None]


@dataclass
class Plan:
    """Every disk's :class:`DiskPlan`, in the order the scopes were given."""

    disks: list[DiskPlan] = field(default_factory=list)


def owned(snapshot: SnapshotInfo) -> bool:
    """True for a snapshot cbsnap made (it carries the owner tag)."""
    return snapshot.tags.get(OWNER_TAG) == OWNER_VALUE


@lru_cache(maxsize=4096)  # a disk's snapshots are ranked and bucketed many times a run
def create_time(value: str) -> float | None:
    """Epoch seconds of a zone-less ``YYYY-MM-DD HH:MM:SS`` CreateTime; None if unreadable.

    Read as Beijing time (UTC+8), the zone CBS writes it in (cbs_time has the
    evidence). ``maxAgeDays`` therefore counts from the real creation instant.
    """
    moment = parse_cbs_time(value)
    return None if moment is None else moment.timestamp()


def in_scope(snapshot: SnapshotInfo, scope: DiskScope) -> bool:
    """Owned, of the scope's disk, and of the scope's name (when it has one)."""
    return (
        snapshot.disk_id == scope.disk_id
        and owned(snapshot)
        and (scope.name is None or snapshot.name == scope.name)
    )


def select(snapshots: Iterable[SnapshotInfo], scope: DiskScope, retention: Retention, now: float) -> DiskPlan:
    """Apply ``retention`` to one disk's snapshots (as listed, any order) at wall time ``now``.

    Pure: no I/O. Foreign and out-of-scope snapshots are ignored entirely. The count rules
    (``keepLast``, ``daily``…, :mod:`cbsnap.gfs`) each keep some snapshots; a snapshot no count
    rule keeps is a candidate when it is also older than ``maxAgeDays`` (when set). The
    snapshots just made rank newest and are never candidates; an unreadable CreateTime ranks
    next for ``keepLast``, has no day for the generations (so they keep it), and is never old
    enough for ``maxAgeDays``.
    """
    listed = list({s.snapshot_id: s for s in snapshots}.values())
    if scope.expecting_new:
        made_at, keep = now, frozenset({EXPECTED_ID})
        if scope.cautious:
            dated = [
                (t, s.snapshot_id) for s in listed if in_scope(s, scope) and (t := create_time(s.create_time))
            ]
            if dated:
                made_at, newest = max(dated)
                keep |= {newest}
        listed.insert(0, _expected(scope, made_at))
        scope = replace(scope, just_made=scope.just_made | keep)
    scoped = [(i, s) for i, s in enumerate(listed) if in_scope(s, scope)]

    def newest_first(pair: tuple[int, SnapshotInfo]) -> tuple[int, float, int]:
        index, snap = pair
        if snap.snapshot_id in scope.just_made:
            return (0, 0.0, -index)
        created = create_time(snap.create_time)
        if created is None:
            return (1, 0.0, -index)
        return (2, -created, -index)

    ranked = [s for _, s in sorted(scoped, key=newest_first)]
    verdicts = _count_verdicts(ranked, scope, retention, now)
    cutoff = None if retention.maxAgeDays is None else now - retention.maxAgeDays * DAY_SECONDS
    candidates: list[Candidate] = []
    kept: list[SnapshotInfo] = []
    for snap in ranked:
        created = create_time(snap.create_time)
        verdict = verdicts.get(snap.snapshot_id)
        by_count = verdict is None or not verdict.kept
        by_age = cutoff is None or (created is not None and created < cutoff)
        if snap.snapshot_id in scope.just_made or not (by_count and by_age):
            kept.append(snap)
            continue
        candidates.append(_judge(snap, _why(snap, created, verdict, retention, now)))
    candidates.reverse()  # oldest first
    return DiskPlan(scope, tuple(candidates), tuple(s for s in kept if s.snapshot_id != EXPECTED_ID))


def _expected(scope: DiskScope, now: float) -> SnapshotInfo:
    """The snapshot about to be made, as the listing will show it."""
    return SnapshotInfo(
        snapshot_id=EXPECTED_ID,
        disk_id=scope.disk_id,
        state="CREATING",
        percent=0,
        name=scope.name or "",
        create_time=format_cbs_time(now),
        deadline_time=None,
        image_count=0,
        tags={OWNER_TAG: OWNER_VALUE},
    )


def _count_verdicts(
    ranked: Sequence[SnapshotInfo], scope: DiskScope, retention: Retention, now: float
) -> dict[str, Verdict]:
    """The count rules' verdicts on the snapshots in scope, ``ranked`` newest first.

    Empty when there are no count rules (``maxAgeDays`` alone). ``keepLast`` counts by rank,
    so the snapshots just made and those of unknown time take their places at the top; the
    generations count by creation instant, and a snapshot of unknown time (it has no day,
    week…) is kept by them outright. A snapshot just made that the listing shows without a
    readable time is dated ``now``.
    """
    rules = retention.count_rules
    if not rules:
        return {}
    # keepLast by rank: giving rank r the instant -r keeps the order whatever the times are.
    verdicts: dict[str, Verdict] = {}
    if retention.keepLast is not None:
        by_rank = [Dated(s.snapshot_id, -float(rank)) for rank, s in enumerate(ranked)]
        verdicts = apply_rules(by_rank, {"keepLast": retention.keepLast}, timezone.utc)
    generations = retention.generations
    if generations:
        zone = zone_named(retention.timezone or "UTC") or timezone.utc
        dated: list[Dated] = []
        for snap in ranked:
            created = create_time(snap.create_time)
            if created is None and snap.snapshot_id in scope.just_made:
                created = now
            if created is None:
                verdicts[snap.snapshot_id] = Verdict(("unknown time",))
                continue
            dated.append(Dated(snap.snapshot_id, created))
        for sid, verdict in apply_rules(dated, generations, zone).items():
            verdicts[sid] = _merged(verdicts.get(sid), verdict)
    return verdicts


def _merged(first: Verdict | None, second: Verdict) -> Verdict:
    if first is None:
        return second
    kept_by = first.kept_by + second.kept_by
    return Verdict(kept_by, {} if kept_by else {**first.would_keep, **second.would_keep})


def _why(
    snap: SnapshotInfo, created: float | None, verdict: Verdict | None, retention: Retention, now: float
) -> str:
    """Why a candidate goes, for dry runs: its age and what would have kept it."""
    age = "of unknown age" if created is None else f"{(now - created) / DAY_SECONDS:.1f} days old"
    parts = [age]
    if verdict is not None:
        parts.append(describe_would_keep(verdict))
    if retention.maxAgeDays is not None:
        parts.append(f"older than maxAgeDays {retention.maxAgeDays}")
    return "; ".join(parts)


def _judge(snap: SnapshotInfo, why: str = "") -> Candidate:
    """A selected snapshot: deletable, or the reason DeleteSnapshots would refuse it."""
    sid = snap.snapshot_id
    if snap.state == "CREATING":
        return Candidate(
            snap, SeedCode.CBS_CREATING_SNAPSHOT, f"not deleted: {_CREATING}: {sid} is still being created"
        )
    if snap.state != "NORMAL":
        state = snap.state or "in an unknown state"
        return Candidate(snap, seed_code_for(_NOT_NORMAL), f"not deleted: {_NOT_NORMAL}: {sid} is {state}")
    if snap.share_count > 0 or snap.shared_in:
        return Candidate(
            snap,
            seed_code_for(_SHARED),
            f"not deleted: {_SHARED}: {sid} is shared with {snap.share_count or 'this'} account(s)",
        )
    if snap.image_count > 0:
        return Candidate(
            snap,
            seed_code_for(_HAS_IMAGE),
            f"not deleted: {_HAS_IMAGE}: {sid} is bound to {snap.image_count} image(s)",
        )
    return Candidate(snap, why=why)


# -- records ---------------------------------------------------------------------------------------


def _named_per_disk(request: Request, disk_id: str) -> bool:
    """True when the request's ``disks`` entry for ``disk_id`` gave its own snapshot name."""
    return any(t.disk_id == disk_id and t.name_given for t in request.targets)


def _record(
    scope: DiskScope,
    snapshot_id: str | None,
    name: str | None,
    code: SeedCode,
    message: str,
    *,
    request_id: str | None = None,
) -> SnapshotResult:
    return SnapshotResult.record(
        scope.disk_id,
        name,
        code,
        message,
        snapshotId=snapshot_id,
        requestId=request_id,
        region=scope.region,
        action=DELETE_ACTION,
    )


@dataclass(frozen=True)
class _Done:
    """How one DeleteSnapshots attempt ended for one ID."""

    code: SeedCode
    message: str
    request_id: str | None = None
    attempted: bool = True


def _from_error(exc: CloudError | DeadlineReached) -> _Done:
    if isinstance(exc, DeadlineReached):
        return _Done(SeedCode.INTERNAL_ERROR, JANITOR_NOT_ATTEMPTED, attempted=False)
    if exc.code.startswith(_NOT_FOUND):  # gone already (a lost reply, another delete): deleted
        return _Done(SeedCode.SUCCESS, ALREADY_GONE, exc.request_id)
    # A delete that may work later (throttled, internal or network error) is left for a
    # redelivery, which lists again and deletes what is still there.
    return _Done(
        exc.seed_code, exc.describe(), exc.request_id, attempted=not (exc.is_transient or exc.is_throttle)
    )


# -- the janitor -----------------------------------------------------------------------------------


class Janitor:
    """Lists, plans and deletes, region by region.

    Parameters
    ----------
    apis:
        Returns the :class:`CbsApi` for a region (pacing and retries live there).
    region:
        The region for scopes and targets that carry none.
    wall_clock:
        Epoch seconds now, for ``maxAgeDays``.
    parallel:
        Runs listing and deleting batches (possibly on threads); sequential by default.
    batch_size:
        Snapshot IDs per DeleteSnapshots call.
    """

    def __init__(
        self,
        apis: Callable[[str], CbsApi],
        *,
        region: str,
        wall_clock: Clock = time.time,
        parallel: Parallel = sequential,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._apis = apis
        self._region = region
        self._wall_clock = wall_clock
        self._parallel = parallel
        self._batch_size = max(1, batch_size)

    # -- entry points ------------------------------------------------------------------------------

    def run(
        self, scopes: Sequence[DiskScope], retention: Retention, deadline: Deadline, *, dry_run: bool = False
    ) -> list[Placed]:
        """Plan and execute: the records, each with its disk's position."""
        return self.execute(self.plan(scopes, retention, deadline), deadline, dry_run=dry_run)

    def after_create(
        self,
        retention: Retention,
        placed: Sequence[Placed],
        deadline: Deadline,
        *,
        dry_run: bool = False,
    ) -> list[Placed]:
        """Apply ``retention`` to every disk whose create (or adoption) in ``placed`` succeeded.

        The scope is the name just used; the snapshot just made is never deleted.
        Records come back with the position of the disk's create result.
        """
        scopes = [
            DiskScope(
                result.storageId,
                result.region or self._region,
                result.snapshotName or "",
                position,
                frozenset({result.snapshotId}),
            )
            for position, result in placed
            if result.ok
            and result.action in (None, "create")
            and result.groupId is None  # consistent groups are not covered yet
            and result.storageId
            and result.snapshotId
        ]
        return self.run(scopes, retention, deadline, dry_run=dry_run) if scopes else []

    def prune(self, request: Request, resolution: Resolution, deadline: Deadline) -> list[Placed]:
        """``"action": "prune"``: the janitor alone over the request's disks, no CreateSnapshot.

        A disk whose snapshot name the caller gave (per disk or request-wide) is pruned
        within that name; otherwise every owned snapshot of the disk is in scope. Disks
        refused for creating (not snapshottable, say) can still be pruned. Every record
        carries ``action="delete"``; refusals that are not prunable pass through as they are
        (the pipeline marks every result of a prune as a delete record).
        """
        retention = request.options.retention if request.options is not None else None
        if retention is None:
            raise ValueError("prune needs a retention rule")
        placed: list[Placed] = []
        scopes: list[DiskScope] = []
        for target in resolution.eligible:
            name = target.snapshot_name if target.name_given else None
            scopes.append(DiskScope(target.disk_id, target.region or self._region, name, target.position))
        for position, refused in resolution.refused:
            if refused.code in _PRUNABLE_REFUSALS and refused.storageId and refused.region:
                named = request.options is not None and (
                    request.options.snapshotName is not None or _named_per_disk(request, refused.storageId)
                )
                name = refused.snapshotName if named else None
                scopes.append(DiskScope(refused.storageId, refused.region, name, position))
            else:
                placed.append((position, refused))
        dry_run = request.options is not None and request.options.dryRun
        placed.extend(self.run(scopes, retention, deadline, dry_run=dry_run))
        return placed

    def make_room(
        self, resolution: Resolution, retention: Retention, deadline: Deadline, *, quota: int = SNAPSHOT_QUOTA
    ) -> tuple[Resolution, list[Placed]]:
        """Before creating: apply ``retention`` to every eligible disk at its snapshot quota.

        The rules count the snapshot about to be made as the newest, so only what they would
        delete right after the create goes (one fewer kept by ``keepLast``, say). A disk the
        rules cannot free a place on leaves the eligible list with a 16006 result saying so,
        and no CreateSnapshot is sent for it. A disk whose listing failed is left to
        CreateSnapshot, which answers for the quota itself. Returns the narrowed resolution
        and the delete records (each at its disk's position; the 16006s are in ``refused``).
        """
        full = [
            t
            for t in resolution.eligible
            if (info := resolution.infos.get(t.disk_id)) is not None and info.snapshot_count >= quota
        ]
        if not full:
            return resolution, []
        scopes = [
            DiskScope(
                t.disk_id,
                t.region or self._region,
                t.snapshot_name,
                t.position,
                expecting_new=True,
                cautious=True,
            )
            for t in full
        ]
        plan = self.plan(scopes, retention, deadline)
        # Delete only where it makes room: on a disk the rules cannot free a place on, deleting
        # would lose snapshots they still keep, for a snapshot that is not made after all.
        fits = Plan([d for d in plan.disks if d.error is None and self._frees(d, resolution, quota)])
        records = self.execute(fits, deadline)
        freed: dict[str, int] = {}
        for fitting in fits.disks:
            ids = {s.snapshot_id for s in fitting.to_delete}
            freed[fitting.scope.disk_id] = sum(1 for _, r in records if r.ok and r.snapshotId in ids)
        listed = {d.scope.disk_id: d for d in plan.disks if d.error is None}
        refused: list[Placed] = []
        eligible = []
        for target in resolution.eligible:
            info = resolution.infos.get(target.disk_id)
            listing = listed.get(target.disk_id)
            if target in full and listing is not None and info is not None:
                left = info.snapshot_count - freed.get(target.disk_id, 0)
                if left >= quota:
                    message = (
                        f"the disk holds {info.snapshot_count} of its {quota} snapshots and the retention "
                        f"rules would delete {len(listing.to_delete)} of them (freed "
                        f"{freed.get(target.disk_id, 0)}): they keep the rest, so no snapshot was made"
                    )
                    refused.append(
                        (
                            target.position,
                            SnapshotResult.failure(
                                target.disk_id,
                                target.snapshot_name,
                                SeedCode.SNAPSHOT_QUOTA_EXCEEDED,
                                message,
                                region=target.region,
                            ),
                        )
                    )
                    continue
            eligible.append(target)
        narrowed = replace(resolution, eligible=eligible, refused=[*resolution.refused, *refused])
        return narrowed, [*refused, *records]

    @staticmethod
    def _frees(disk: DiskPlan, resolution: Resolution, quota: int) -> bool:
        """True when deleting what ``disk``'s plan selects brings the disk under ``quota``."""
        info = resolution.infos.get(disk.scope.disk_id)
        return info is not None and info.snapshot_count - len(disk.to_delete) < quota

    # -- planning ----------------------------------------------------------------------------------

    def plan(self, scopes: Sequence[DiskScope], retention: Retention, deadline: Deadline) -> Plan:
        """List every scope's disk (10 disks a DescribeSnapshots call, all pages) and apply the rules.

        No mutating call. A disk whose listing failed gets an ``error`` and no candidates.
        """
        now = self._wall_clock()
        unique: dict[tuple[str, str], DiskScope] = {}
        for scope in scopes:  # a disk named twice is looked at once (its first scope)
            unique.setdefault((scope.region, scope.disk_id), scope)
        batches: list[tuple[str, list[DiskScope]]] = []
        for region in dict.fromkeys(s.region for s in unique.values()):
            in_region = [s for s in unique.values() if s.region == region]
            for start in range(0, len(in_region), DESCRIBE_SNAPSHOTS_MAX_DISKS):
                batches.append((region, in_region[start : start + DESCRIBE_SNAPSHOTS_MAX_DISKS]))

        def list_batch(
            batch: tuple[str, list[DiskScope]],
        ) -> list[SnapshotInfo] | CloudError | DeadlineReached:
            region, members = batch
            try:
                return self._list(self._apis(region), [s.disk_id for s in members], deadline)
            except (CloudError, DeadlineReached) as exc:
                return exc

        plans: dict[tuple[str, str], DiskPlan] = {}
        for (_, members), listed in zip(batches, self._parallel(list_batch, batches), strict=True):
            for scope in members:
                if isinstance(listed, list):
                    plans[(scope.region, scope.disk_id)] = select(listed, scope, retention, now)
                else:
                    if isinstance(listed, DeadlineReached) or listed.is_transient or listed.is_throttle:
                        why = (
                            LISTING_NOT_ATTEMPTED
                            if isinstance(listed, DeadlineReached)
                            else f"retention not applied: {listed.describe()}"
                        )
                        error = SnapshotResult.not_attempted(
                            scope.disk_id, scope.name, why, region=scope.region, action=DELETE_ACTION
                        )
                    else:
                        message = f"retention not applied: {listed.describe()}"
                        error = _record(
                            scope, None, scope.name, listed.seed_code, message, request_id=listed.request_id
                        )
                    plans[(scope.region, scope.disk_id)] = DiskPlan(scope, error=error)
        return Plan([plans[key] for key in unique])

    @staticmethod
    def _list(api: CbsApi, disk_ids: Sequence[str], deadline: Deadline) -> list[SnapshotInfo]:
        """Every snapshot of up to 10 disks, oldest first (new ones append at the end, so
        paging by offset is not shifted by snapshots made meanwhile)."""
        found: dict[str, SnapshotInfo] = {}
        offset = 0
        for _ in range(MAX_PAGES):
            total, page = api.describe_snapshots(
                deadline, disk_ids=disk_ids, offset=offset, newest_first=False
            )
            for snap in page:
                found.setdefault(snap.snapshot_id, snap)
            offset += len(page)
            if not page or offset >= total:
                return list(found.values())
        raise CloudError("DescribeSnapshots", "LimitExceeded.Paging", f"more than {offset} snapshots listed")

    # -- executing ---------------------------------------------------------------------------------

    def execute(self, plan: Plan, deadline: Deadline, *, dry_run: bool = False) -> list[Placed]:
        """Delete what ``plan`` says (nothing when ``dry_run``); one record per candidate.

        Records come per disk in plan order, each disk's oldest candidate first,
        with the disk's position.
        """
        done: dict[str, _Done] = {}
        if dry_run:
            for disk in plan.disks:
                done.update(
                    (c.snapshot.snapshot_id, _Done(SeedCode.SUCCESS, f"{DRY_RUN_MESSAGE}: {c.why}"))
                    for c in disk.candidates
                    if c.skip is None
                )
        else:
            batches: list[tuple[str, list[str]]] = []
            for region in dict.fromkeys(d.scope.region for d in plan.disks):
                ids = [s.snapshot_id for d in plan.disks if d.scope.region == region for s in d.to_delete]
                ids = list(dict.fromkeys(ids))
                for start in range(0, len(ids), self._batch_size):
                    batches.append((region, ids[start : start + self._batch_size]))
            for outcome in self._parallel(lambda b: self._delete_batch(b[0], b[1], deadline), batches):
                done.update(outcome)

        records: list[Placed] = []
        for disk in plan.disks:
            scope = disk.scope
            if disk.error is not None:
                records.append((scope.position, disk.error))
                continue
            for candidate in disk.candidates:
                snap = candidate.snapshot
                if candidate.skip is not None:
                    result = _record(scope, snap.snapshot_id, snap.name, candidate.skip, candidate.reason)
                else:
                    how = done[snap.snapshot_id]
                    result = _record(
                        scope, snap.snapshot_id, snap.name, how.code, how.message, request_id=how.request_id
                    )
                    if not how.attempted:  # left for a redelivery, which lists and deletes again
                        result = result.model_copy(update={"attempted": False})
                records.append((scope.position, result))
        return records

    def _delete_batch(self, region: str, ids: list[str], deadline: Deadline) -> dict[str, _Done]:
        """One DeleteSnapshots call for ``ids``; when it fails, one call per ID."""
        api = self._apis(region)
        try:
            request_id = api.delete_snapshots(ids, deadline)
            return {i: _Done(SeedCode.SUCCESS, "", request_id) for i in ids}
        except DeadlineReached as exc:
            return {i: _from_error(exc) for i in ids}
        except CloudError as err:
            if len(ids) == 1:
                return {ids[0]: _from_error(err)}
            if err.seed_code in _WHOLE_BATCH_CODES:
                return {i: _from_error(err) for i in ids}
        # All-or-nothing: a refused batch deleted nothing (after a reply lost past the client's
        # retries it may have deleted everything; the single calls then answer NotFound).
        # One call per ID finds the bad one and deletes the rest.
        done: dict[str, _Done] = {}
        for index, snapshot_id in enumerate(ids):
            try:
                request_id = api.delete_snapshots([snapshot_id], deadline)
                done[snapshot_id] = _Done(SeedCode.SUCCESS, "", request_id)
            except DeadlineReached as exc:
                done.update((i, _from_error(exc)) for i in ids[index:])
                break
            except CloudError as err:
                done[snapshot_id] = _from_error(err)
        return done
