"""Cross-region copies: exactly one copy per (source snapshot, region), cbsnap's own, expiring.

A request with ``"copy": {"regions": [...], "retainDays": N}`` copies each snapshot it made
(or adopted) to every listed region once the snapshot is usable (NORMAL): at once when it
already is, else from the completion re-check chain (:mod:`cbsnap.notify`), whose links carry
the copy work. The design and its sources are in docs/copies.md. In short:

* **Exactly one copy.** CopySnapshotCrossRegions takes no client token and no tags, so the
  copy is named for what it is a copy of — :func:`copy_name` holds the source snapshot ID and
  the request's per-disk key — and found by that name in the destination (``snapshot-name``
  filter; a copy's ``DiskId`` is ``""``, so ``disk-id`` cannot find it). Every step looks
  before it copies; an ambiguous failure (a lost reply) and ``ResourceInUse.CopySnapshotConflict``
  ("a copy to that region is running") are answered by looking again, never by copying again.
  The copy's ID, once known, travels in the chain's link (:class:`CopyWork`).
* **Owned.** Once the copy exists it gets cbsnap's owner and key tags through the Tag API
  (:mod:`cbsnap.tags`), and once it is NORMAL its expiry (ModifySnapshotAttribute ``Deadline``,
  ``retainDays`` after the copy began). Until both are done the work stays pending.
* **Beside, never instead.** A copy's failure is reported in its source's result
  (``copies``) and, with ``notify``, as ``snapshot.copy_failed``; the source's result keeps
  its own code.

Every step is observation-driven (describe, then act on what is missing), so running a step
twice — a retried link, a redelivered request, two chains of one request — does nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from cbsnap.cbs import PAGE_LIMIT, CbsApi, SnapshotInfo
from cbsnap.cbs_time import parse_cbs_time
from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.models import MAX_COPY_REGIONS, CopyRef, CopySpec, SnapshotResult
from cbsnap.ownership import (
    KEY_TAG,
    OWNER_TAG,
    OWNER_VALUE,
    SOURCE_REGION_TAG,
    SOURCE_TAG,
    TRIGGER_TAG,
    disk_key,
)
from cbsnap.scf import Deadline
from cbsnap.sinks import RequestMeta
from cbsnap.tags import TagApi, snapshot_resource

if TYPE_CHECKING:
    from cbsnap.logs import Log

USABLE = "NORMAL"
PENDING, COPYING, DONE, FAILED = "pending", "copying", "normal", "failed"
CONFLICT = "ResourceInUse.CopySnapshotConflict"
COPY_NAME_PREFIX = "cbsnap-copy-of-"
KEY_DIGITS = 16  # of the per-disk key in a copy's name: 64 bits tell requests apart
# CreateSnapshot's documented minimum expiry is a day; ModifySnapshotAttribute documents none,
# so cbsnap keeps the same minimum, with a margin for the clock between computing and arriving.
MIN_EXPIRY = timedelta(days=1, minutes=10)

SnapshotId = Annotated[str, StringConstraints(pattern=r"^snap-[a-z0-9]{8}$", strict=True)]
RegionName = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,4}-[a-z0-9-]{2,32}$", strict=True)]
WallClock = Callable[[], datetime]


def copy_name(source_id: str, key: str) -> str:
    """The name of ``source_id``'s copies: ``cbsnap-copy-of-snap-…-<16 hex of the key>`` (45 chars,
    within the 60 a snapshot name may have)."""
    return f"{COPY_NAME_PREFIX}{source_id}-{key[:KEY_DIGITS]}"


class CopyWork(BaseModel):
    """The copy work of one source snapshot, as a re-check link carries it.

    ``made`` records each copy's ID once known (so later steps look it up by ID); ``done``
    lists the regions finished (usable, tagged, expiring) or failed for good.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    regions: list[RegionName] = Field(min_length=1, max_length=MAX_COPY_REGIONS)
    retainDays: int | None = Field(default=None, ge=1, le=3650)
    key: str = Field(min_length=KEY_DIGITS, max_length=64, pattern=r"^[0-9a-f]+$")
    trigger: str = Field(default="queue", min_length=1, max_length=32)
    made: dict[RegionName, SnapshotId] = Field(default_factory=dict)
    done: list[RegionName] = Field(default_factory=list)

    @property
    def open_regions(self) -> list[str]:
        """Regions whose copy is not finished yet."""
        return [r for r in self.regions if r not in self.done]


class Copier:
    """Runs the copy step (see the module docstring).

    Parameters
    ----------
    cbs:
        Region → CBS API (the source's region copies; the destination's describes and expires).
    tags:
        The Tag API client, built on first use.
    wall_clock:
        Aware UTC now, for the copies' expiry.
    """

    def __init__(
        self,
        cbs: Callable[[str], CbsApi],
        tags: Callable[[], TagApi],
        *,
        logger: Log,
        wall_clock: WallClock = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._cbs = cbs
        self._tags = tags
        self._logger = logger
        self._wall_clock = wall_clock

    def step(
        self, source_id: str, source_region: str, work: CopyWork, deadline: Deadline
    ) -> tuple[CopyWork, list[CopyRef], list[CopyRef]]:
        """Advance every open copy of a NORMAL source once.

        Returns the updated work, every region's current :class:`CopyRef` (for results) and
        the refs that finished with this step (``normal`` or ``failed``, for events).
        """
        made = dict(work.made)
        done = list(work.done)
        refs: list[CopyRef] = []
        finished: list[CopyRef] = []
        for region in work.regions:
            if region in done:
                refs.append(CopyRef(region=region, snapshotId=made.get(region), state=DONE))
                continue
            ref = self._advance(
                source_id, source_region, region, work, known_id=made.get(region), deadline=deadline
            )
            if ref.snapshotId:
                made[region] = ref.snapshotId
            if ref.state in (DONE, FAILED):
                done.append(region)
                finished.append(ref)
                self._logger.info(
                    "copy.finished",
                    extra={"source": source_id, "copy": ref.to_dict()},
                )
            refs.append(ref)
        return work.model_copy(update={"made": made, "done": done}), refs, finished

    def at_once(
        self, results: Sequence[SnapshotResult], spec: CopySpec, meta: RequestMeta, deadline: Deadline
    ) -> tuple[list[SnapshotResult], dict[str, CopyWork]]:
        """The copy step for a request's new snapshots, right after the run.

        Sources already NORMAL (an adopted snapshot, say) are copied now; the others, and every
        copy not finished by this step, come back as work for the re-check chain, keyed by
        source snapshot ID. Every source result gets its ``copies``.
        """
        sources = [r for r in results if r.ok and r.snapshotId and r.action is None]
        states: dict[str, SnapshotInfo] = {}
        for region in dict.fromkeys(r.region or "" for r in sources):
            ids = [r.snapshotId or "" for r in sources if (r.region or "") == region]
            for start in range(0, len(ids), PAGE_LIMIT):
                try:
                    _total, page = self._cbs(region).describe_snapshots(
                        deadline, snapshot_ids=ids[start : start + PAGE_LIMIT], limit=PAGE_LIMIT
                    )
                except (CloudError, DeadlineReached):
                    continue  # not known to be usable: the chain copies it later
                states.update((s.snapshot_id, s) for s in page)
        work: dict[str, CopyWork] = {}
        out: list[SnapshotResult] = []
        is_source = {id(r) for r in sources}
        for result in results:
            if id(result) not in is_source or result.snapshotId is None:
                out.append(result)
                continue
            item = CopyWork(
                regions=list(spec.regions),
                retainDays=spec.retainDays,
                key=disk_key(meta.request_key, result.storageId or result.snapshotId),
                trigger=meta.trigger,
            )
            info = states.get(result.snapshotId)
            refs: Sequence[CopyRef]
            if info is not None and info.state == USABLE and not deadline.expired:
                item, refs, _finished = self.step(result.snapshotId, result.region or "", item, deadline)
            else:
                refs = pending_refs(item.regions)
            if item.open_regions:
                work[result.snapshotId] = item
            out.append(result.model_copy(update={"copies": tuple(refs)}))
        return out, work

    # -- one region ----------------------------------------------------------------------------

    def _advance(
        self,
        source_id: str,
        source_region: str,
        region: str,
        work: CopyWork,
        *,
        known_id: str | None,
        deadline: Deadline,
    ) -> CopyRef:
        name = copy_name(source_id, work.key)
        if region == source_region:
            return _failed(
                region, None, SeedCode.INVALID_PARAMETER, "a copy cannot go to its source's region"
            )
        api = self._cbs(region)
        try:
            copy = self._find(api, name, known_id, deadline)
            if copy is None and known_id is not None:
                return _failed(
                    region,
                    known_id,
                    SeedCode.INTERNAL_ERROR,
                    f"copy {known_id} disappeared from {region} before it was usable",
                )
            if copy is None:
                started = self._start(
                    source_id, source_region, region, name=name, dest=api, deadline=deadline
                )
                if started.state != COPYING:
                    return started
                copy_id = started.snapshotId
                assert copy_id is not None
            else:
                copy_id = copy.snapshot_id
            if copy is None or not self._is_ours(copy, work):
                try:
                    self._tags().tag_resources(
                        [snapshot_resource(region, copy_id)],
                        self._copy_tags(source_id, source_region, work),
                        deadline,
                    )
                except CloudError as err:
                    if copy is not None and copy.state == USABLE and not _retryable(err):
                        return _failed(region, copy_id, err.seed_code, f"not tagged: {err.describe()}")
                    return CopyRef(region=region, snapshotId=copy_id, state=COPYING)  # try again next look
            if copy is None or copy.state != USABLE:
                return CopyRef(region=region, snapshotId=copy_id, state=COPYING)
            if work.retainDays is not None and not copy.deadline_time:
                api.set_snapshot_deadline(copy_id, self._expiry(copy, work.retainDays), deadline)
            return CopyRef(region=region, snapshotId=copy_id, state=DONE)
        except DeadlineReached:
            return CopyRef(region=region, snapshotId=known_id, state=COPYING if known_id else PENDING)
        except CloudError as err:
            if _retryable(err):
                return CopyRef(region=region, snapshotId=known_id, state=COPYING if known_id else PENDING)
            return _failed(region, known_id, err.seed_code, err.describe())

    def _start(
        self, source_id: str, source_region: str, region: str, *, name: str, dest: CbsApi, deadline: Deadline
    ) -> CopyRef:
        """CopySnapshotCrossRegions, right after a look that found nothing.

        A lost reply or a conflict may mean the copy exists: look again, and copy again only
        on a later step after another look (a conflict that no look explains is another
        party's running copy: wait for it).
        """
        try:
            started = self._cbs(source_region).copy_snapshot(source_id, region, name, deadline)
        except CloudError as err:
            if not (err.code == CONFLICT or err.is_ambiguous):
                raise
            try:
                found = self._find(dest, name, None, deadline)
            except (CloudError, DeadlineReached):
                found = None
            if found is not None:
                return CopyRef(region=region, snapshotId=found.snapshot_id, state=COPYING)
            self._logger.info(
                "copy.unresolved", extra={"source": source_id, "region": region, "error": err.describe()}
            )
            return CopyRef(region=region, state=PENDING)
        self._logger.info(
            "copy.started",
            extra={
                "source": source_id,
                "region": region,
                "copy": started.snapshot_id,
                "id": started.request_id,
            },
        )
        return CopyRef(region=region, snapshotId=started.snapshot_id, state=COPYING)

    @staticmethod
    def _find(api: CbsApi, name: str, known_id: str | None, deadline: Deadline) -> SnapshotInfo | None:
        """The copy: by ID once known, else by exact name (the oldest, should there be two)."""
        if known_id is not None:
            try:
                _total, page = api.describe_snapshots(deadline, snapshot_ids=[known_id])
            except CloudError as err:
                if err.code.startswith("InvalidSnapshotId.NotFound"):
                    return None
                raise
            return next((s for s in page if s.snapshot_id == known_id), None)
        _total, page = api.describe_snapshots(deadline, names=[name], newest_first=False)
        return next((s for s in page if s.name == name), None)

    @staticmethod
    def _is_ours(copy: SnapshotInfo, work: CopyWork) -> bool:
        return copy.tags.get(OWNER_TAG) == OWNER_VALUE and copy.tags.get(KEY_TAG) == work.key

    @staticmethod
    def _copy_tags(source_id: str, source_region: str, work: CopyWork) -> dict[str, str]:
        return {
            OWNER_TAG: OWNER_VALUE,
            KEY_TAG: work.key,
            TRIGGER_TAG: work.trigger,
            SOURCE_TAG: source_id,
            SOURCE_REGION_TAG: source_region,
        }

    def _expiry(self, copy: SnapshotInfo, retain_days: int) -> str:
        """``retainDays`` after the copy began (its CreateTime), never under the one-day minimum."""
        now = self._wall_clock()
        began = parse_cbs_time(copy.create_time) or now
        at = max(began + timedelta(days=retain_days), now + MIN_EXPIRY)
        return at.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def _retryable(err: CloudError) -> bool:
    """Worth another look later rather than a failure: throttled, busy, transient, or the
    source/copy not in a state for the call yet."""
    return (
        err.is_throttle
        or err.is_transient
        or err.code == CONFLICT
        or err.code.startswith("InvalidSnapshot.NotSupported")
    )


def _failed(region: str, snapshot_id: str | None, code: SeedCode, message: str) -> CopyRef:
    return CopyRef(region=region, snapshotId=snapshot_id, state=FAILED, code=int(code), message=message[:300])


def pending_refs(regions: Sequence[str]) -> tuple[CopyRef, ...]:
    """Every region's copy, not started yet (the source is not usable yet)."""
    return tuple(CopyRef(region=r, state=PENDING) for r in regions)
