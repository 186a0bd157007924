"""Completion events: tell a request's sinks when its snapshots are usable (NORMAL).

A request with ``"notify": "completed"`` starts, after its run, a **re-check chain** of
asynchronous self-invocations (:mod:`cbsnap.invoke`) — one chain per request, not per
snapshot. Each link is one invocation of the function with the event::

    {"cbsnapRecheck": {"v": 2, "link": 1, "giveUpAt": "2026-11-29T02:00:00Z",
                       "requestKey": "key/predeploy-77", "trigger": "webhook",
                       "replyTo": {"queue": "deploy-events"}, "correlation": {"pipeline": "77"},
                       "snapshots": [{"snapshotId": "snap-…", "storageId": "disk-…",
                                      "region": "ap-guangzhou", "snapshotName": "predeploy"}]}}

A link polls DescribeSnapshots (by snapshot ID, batched per region) every
``CBSNAP_NOTIFY_POLL`` seconds until its own deadline, and emits, per snapshot:

* NORMAL → ``snapshot.completed`` (code 0);
* gone (deleted or never listed again) → ``snapshot.failed`` (code 6000, ``message`` says so);
* still in progress at ``giveUpAt`` (``CBSNAP_NOTIFY_MAX_WAIT`` after the request, default
  24 h) → ``snapshot.timeout`` (code 6000, the last state and percent).

While any remain, it invokes the next link with the rest. Events are
:class:`~cbsnap.models.SnapshotResult` records with ``action`` set, delivered like results to the
original request's sinks (log, configured queue/topic, its ``replyTo``), under its
``requestKey``, ``trigger`` and ``correlation``.

**At most once, where it can be promised.** A link may run twice (SCF retries a failed
asynchronous run; a lost ``Invoke`` reply may queue a second one). With ``CBSNAP_REDIS_URL``
each event is emitted only after ``ledger.claim("event/<snapshotId>")`` succeeded, so a retried
link sends no event twice. Without Redis nothing is shared between invocations: every event
carries the deterministic ``eventId`` ``event/<snapshotId>`` (one event per snapshot, whatever
its outcome) and consumers drop repeats by it (docs/pre-deploy.md).

A link whose follow-up cannot be handed on reports it (``Outcome.unscheduled``); the handler
then raises so SCF retries the link, and the claims keep that retry from re-sending events.

**Copies ride the same chain** (:mod:`cbsnap.copies`, docs/copies.md). The chain starts when a
request has ``notify`` *or* ``copy``; an item may carry ``copies`` (a :class:`~cbsnap.copies.CopyWork`:
regions, ``retainDays``, the key, the copy IDs made, the regions done) and ``notified`` (its
completion was handled, or never asked for: ``"notify": false`` on a link that only copies). Once
an item's snapshot is NORMAL, the link runs the copy step for it and keeps it pending while any
copy still needs copying, tagging or its expiry, or a conflict is being resolved. With ``notify``
each copy ends with ``snapshot.copied`` or ``snapshot.copy_failed`` (``eventId``
``copy/<snapshotId>/<region>``, claimed like the others); without it the outcomes are logged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from cbsnap.cbs import CbsApi, SnapshotInfo
from cbsnap.codes import SeedCode
from cbsnap.copies import CopyWork
from cbsnap.errors import CbsnapError, CloudError
from cbsnap.ledger import Ledger
from cbsnap.models import CopyRef, ReplyTo, SnapshotResult
from cbsnap.outcome import Outcome
from cbsnap.pacing import Sleep
from cbsnap.scf import Clock, Deadline
from cbsnap.sinks import DeliveryReport, RequestMeta

if TYPE_CHECKING:
    from cbsnap.copies import Copier
    from cbsnap.logs import Log

RECHECK_FIELD = "cbsnapRecheck"
COMPLETED = "snapshot.completed"
FAILED = "snapshot.failed"
TIMEOUT = "snapshot.timeout"
COPIED = "snapshot.copied"
COPY_FAILED = "snapshot.copy_failed"
USABLE_STATE = "NORMAL"
RECHECK_SINK = "recheck"  # DeliveryReport.sink of a link handed on: "recheck:invoke"
MAX_SNAPSHOTS_PER_LINK = 500  # ~80 KB of event: under Invoke's 128 KB for asynchronous runs
MAX_COPYING_PER_LINK = 150  # with copy work (≤ 3 regions, their copy IDs) ~500 bytes each
DESCRIBE_BATCH = 100  # snapshot IDs per DescribeSnapshots call
# Kept back from a link's deadline to invoke the next link and answer.
HAND_ON_RESERVE_SECONDS = 2.0
_REPORT_LIMIT = 300

Deliver = Callable[[Sequence[SnapshotResult], RequestMeta, Deadline], list[DeliveryReport]]
Send = Callable[[str, Deadline], "str | None"]
WallClock = Callable[[], datetime]

SnapshotId = Annotated[str, StringConstraints(pattern=r"^snap-[a-z0-9]{8}$", strict=True)]
RegionName = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,4}-[a-z0-9-]{2,32}$", strict=True)]


def event_id(snapshot_id: str) -> str:
    """The deterministic id of a snapshot's one completion event (and its claim key)."""
    return f"event/{snapshot_id}"


def copy_event_id(snapshot_id: str, region: str) -> str:
    """The deterministic id of the one copy event of a snapshot's copy to ``region``."""
    return f"copy/{snapshot_id}/{region}"


def is_recheck(event: Any) -> bool:
    """True when an event is a completion re-check link, not a request document."""
    return isinstance(event, dict) and RECHECK_FIELD in event


# -- the link event --------------------------------------------------------------------------


class PendingSnapshot(BaseModel):
    """A snapshot whose completion is still to be reported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    snapshotId: SnapshotId
    storageId: str | None = Field(default=None, max_length=64)
    region: RegionName
    snapshotName: str | None = Field(default=None, max_length=128)
    # True once the snapshot's completion was handled (emitted, or not asked for): the item
    # then stays only for its copy work.
    notified: bool = False
    copies: CopyWork | None = None  # cross-region copies still to make, tag or expire


class Recheck(BaseModel):
    """One link of a re-check chain (under ``cbsnapRecheck``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[2] = 2
    link: int = Field(default=1, ge=1, strict=True)
    notify: bool = True  # False: the chain only copies (a request with copy and no notify)
    snapshots: list[PendingSnapshot] = Field(min_length=1, max_length=MAX_SNAPSHOTS_PER_LINK)
    giveUpAt: AwareDatetime
    requestKey: str = Field(min_length=1, max_length=512)
    trigger: str = Field(default="queue", min_length=1, max_length=32)
    replyTo: ReplyTo | None = None
    correlation: dict[str, Any] | None = None

    def dumps(self) -> str:
        """The event: ``{"cbsnapRecheck": {...}}``, compact JSON."""
        data = self.model_dump(mode="json", exclude_none=True)
        return json.dumps({RECHECK_FIELD: data}, ensure_ascii=False, separators=(",", ":"), default=str)


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cbsnapRecheck: Recheck


def parse_recheck(event: Any) -> Recheck | str:
    """The re-check link of an event, or why it is not a usable one (never raises)."""
    try:
        return _Envelope.model_validate(event).cbsnapRecheck
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"re-check: {where}: {first.get('msg', 'invalid')}"[:200]


# -- the notifier ----------------------------------------------------------------------------


class Notifier:
    """Starts re-check chains after a run and runs their links (see the module docstring).

    Parameters
    ----------
    cbs:
        Region → CBS API (DescribeSnapshots).
    send:
        Hands one link event on as an asynchronous self-invocation; returns its id.
    ledger:
        Where events are claimed (:class:`~cbsnap.ledger.NoLedger`: always granted).
    region:
        The function's region (for snapshots whose result names none).
    poll_seconds, max_wait_seconds:
        ``CBSNAP_NOTIFY_POLL`` / ``CBSNAP_NOTIFY_MAX_WAIT``.
    claim_ttl:
        How long an event's claim is kept: longer than any link can still run.
    sleep, clock, wall_clock:
        Injected so tests move the emulator's clock with the poll loop.
    """

    def __init__(
        self,
        cbs: Callable[[str], CbsApi],
        send: Send,
        ledger: Ledger,
        *,
        region: str,
        logger: Log,
        poll_seconds: float = 5.0,
        max_wait_seconds: int = 86_400,
        claim_ttl: int = 2 * 86_400,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        wall_clock: WallClock = lambda: datetime.now(timezone.utc),
        copier: Callable[[], Copier] | None = None,
    ) -> None:
        self._cbs = cbs
        self._copier = copier
        self._send = send
        self._ledger = ledger
        self._region = region
        self._logger = logger
        self._poll = poll_seconds
        self._max_wait = max_wait_seconds
        self._claim_ttl = claim_ttl
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock

    # -- after a run -------------------------------------------------------------------------

    def start(
        self,
        results: Sequence[SnapshotResult],
        meta: RequestMeta,
        deadline: Deadline,
        *,
        notify: bool = True,
        copies: Mapping[str, CopyWork] | None = None,
    ) -> Outcome:
        """Start the chain for the request's new snapshots (code-0 creates with an ID): every
        one when ``notify``, else those with open copy work (``copies``, by snapshot ID).

        Returns the delivery reports of the first link(s) and, when one could not be handed
        on, their snapshot IDs in ``unscheduled`` (the trigger then asks for a redelivery,
        which adopts the snapshots and starts the chain again). Never raises.
        """
        work = copies or {}
        pending = [
            PendingSnapshot(
                snapshotId=r.snapshotId,
                storageId=r.storageId,
                region=r.region or self._region,
                snapshotName=r.snapshotName,
                notified=not notify,
                copies=work.get(r.snapshotId),
            )
            for r in results
            if r.ok and r.snapshotId and r.action is None and (notify or r.snapshotId in work)
        ]
        outcome = Outcome()
        if not pending:
            return outcome
        give_up = self._now() + timedelta(seconds=self._max_wait)
        size = MAX_COPYING_PER_LINK if work else MAX_SNAPSHOTS_PER_LINK
        for start in range(0, len(pending), size):
            link = Recheck(
                notify=notify,
                snapshots=pending[start : start + size],
                giveUpAt=give_up,
                requestKey=meta.request_key,
                trigger=meta.trigger,
                replyTo=meta.reply_to,
                correlation=meta.correlation,
            )
            self._hand_on(link, deadline, outcome)
        return outcome

    # -- a link ------------------------------------------------------------------------------

    def run_link(self, link: Recheck, carrier: RequestMeta, deadline: Deadline, deliver: Deliver) -> Outcome:
        """Poll the link's snapshots until its deadline, emit what is due, hand the rest on.

        ``carrier`` is the identity of the invocation that brought the link; events go out
        under the original request's identity.
        """
        meta = carrier.carrying(
            link.trigger,
            link.requestKey,
            carrier.source_id,
            reply_to=link.replyTo,
            correlation=link.correlation,
        )
        outcome = Outcome()
        pending = list(link.snapshots)
        last: dict[str, SnapshotInfo] = {}
        polls = 0
        while True:
            polls += 1
            found, unreadable = self._look(pending, deadline)
            last.update(found)
            events, pending = self._due(link, pending, found, unreadable, deadline)
            if link.notify:  # a chain that only copies logs its outcomes (cbsnap.copies) and emits nothing
                self._emit(events, meta, deadline, deliver, outcome)
            if not pending:
                break
            if self._now() >= link.giveUpAt:
                timeouts = [e for p in pending for e in self._given_up(link, p, last.get(p.snapshotId))]
                if link.notify:
                    self._emit(timeouts, meta, deadline, deliver, outcome)
                pending = []
                break
            if deadline.remaining() < self._poll + HAND_ON_RESERVE_SECONDS:
                break
            self._sleep(self._poll)
        if pending:
            follow = link.model_copy(update={"snapshots": pending, "link": link.link + 1})
            self._hand_on(follow, deadline, outcome)
        self._logger.info(
            "notify.link",
            extra={
                "request_key": link.requestKey,
                "link": link.link,
                "polls": polls,
                "emitted": [r.snapshotId for r in outcome.results],
                "pending": [p.snapshotId for p in pending],
            },
        )
        return outcome

    # -- helpers -----------------------------------------------------------------------------

    def _due(
        self,
        link: Recheck,
        pending: list[PendingSnapshot],
        found: dict[str, SnapshotInfo],
        unreadable: dict[str, str],
        deadline: Deadline,
    ) -> tuple[list[SnapshotResult], list[PendingSnapshot]]:
        """(events now due, snapshots still pending) after one look. A usable snapshot with
        copy work runs the copy step and stays pending while any copy is unfinished."""
        events: list[SnapshotResult] = []
        rest: list[PendingSnapshot] = []
        for item in pending:
            snap = item  # updated below as the snapshot's completion and copies are handled
            info = found.get(snap.snapshotId)
            if snap.snapshotId in unreadable:
                rest.append(snap)  # could not look: try again (the give-up time still bounds it)
            elif info is None:
                message = (
                    f"gone: snapshot {snap.snapshotId} no longer exists in {snap.region} "
                    "(deleted, or it failed, before it was usable)"
                )
                if not snap.notified:
                    events.append(_event(link, snap, None, FAILED, message))
                events.extend(
                    self._copies_failed(link, snap, SeedCode.INTERNAL_ERROR, f"not copied: {message}")
                )
            elif info.state == USABLE_STATE:
                if not snap.notified:
                    events.append(_event(link, snap, info, COMPLETED, f"usable: NORMAL, {info.percent}%"))
                    snap = snap.model_copy(update={"notified": True})
                if snap.copies is not None and snap.copies.open_regions:
                    snap, copy_events = self._copy_step(link, snap, deadline)
                    events.extend(copy_events)
                    if snap.copies is not None and snap.copies.open_regions:
                        rest.append(snap)
            else:
                rest.append(snap)
        return events, rest

    def _copy_step(
        self, link: Recheck, snap: PendingSnapshot, deadline: Deadline
    ) -> tuple[PendingSnapshot, list[SnapshotResult]]:
        """One copy step for a usable snapshot: the updated item and the copy events due."""
        assert snap.copies is not None
        if self._copier is None:
            message = "not copied: cross-region copies are not wired in this runtime"
            done = snap.copies.model_copy(update={"done": list(snap.copies.regions)})
            return snap.model_copy(update={"copies": done}), self._copies_failed(
                link, snap, SeedCode.INTERNAL_ERROR, message
            )
        work, _refs, finished = self._copier().step(snap.snapshotId, snap.region, snap.copies, deadline)
        events = [_copy_event(link, snap, ref) for ref in finished]
        return snap.model_copy(update={"copies": work}), events

    def _copies_failed(
        self, link: Recheck, snap: PendingSnapshot, code: SeedCode, message: str
    ) -> list[SnapshotResult]:
        """A ``snapshot.copy_failed`` event for every unfinished copy of ``snap``."""
        if snap.copies is None:
            return []
        refs = [
            CopyRef(
                region=region,
                snapshotId=snap.copies.made.get(region),
                state="failed",
                code=int(code),
                message=message[:_REPORT_LIMIT],
            )
            for region in snap.copies.open_regions
        ]
        for ref in refs:
            self._logger.warning("copy.failed", extra={"source": snap.snapshotId, "copy": ref.to_dict()})
        return [_copy_event(link, snap, ref) for ref in refs]

    def _given_up(
        self, link: Recheck, snap: PendingSnapshot, info: SnapshotInfo | None
    ) -> list[SnapshotResult]:
        """At the give-up time: the timeout event (if still owed) and every open copy's failure."""
        events = [] if snap.notified else [self._timeout(link, snap, info)]
        at = link.giveUpAt.astimezone(timezone.utc).isoformat(timespec="seconds")
        events.extend(
            self._copies_failed(link, snap, SeedCode.INTERNAL_ERROR, f"not copied: gave up at {at}")
        )
        return events

    def _timeout(self, link: Recheck, snap: PendingSnapshot, info: SnapshotInfo | None) -> SnapshotResult:
        at = link.giveUpAt.astimezone(timezone.utc).isoformat(timespec="seconds")
        seen = (
            f"it was still {info.state or 'in an unknown state'} at {info.percent}%"
            if info is not None
            else "its state could not be read"
        )
        return _event(link, snap, info, TIMEOUT, f"gave up at {at} after {link.link} link(s): {seen}")

    def _emit(
        self,
        events: list[SnapshotResult],
        meta: RequestMeta,
        deadline: Deadline,
        deliver: Deliver,
        outcome: Outcome,
    ) -> None:
        """Claim and deliver events; claimed already = another run of this link sent them."""
        emitted = [
            e
            for e in events
            if self._ledger.claim(e.eventId or event_id(e.snapshotId or ""), self._claim_ttl)
        ]
        if emitted:
            outcome.results.extend(emitted)
            outcome.delivery.extend(deliver(emitted, meta, deadline))

    def _hand_on(self, link: Recheck, deadline: Deadline, outcome: Outcome) -> None:
        ids = [s.snapshotId for s in link.snapshots]
        sink = f"{RECHECK_SINK}:invoke"
        try:
            request_id = self._send(link.dumps(), deadline)
        except CbsnapError as exc:  # CloudError, DeadlineReached, ConfigurationError
            problem = str(exc)[:_REPORT_LIMIT]
            self._logger.warning(
                "notify.unscheduled",
                extra={"request_key": link.requestKey, "link": link.link, "snapshots": ids, "error": problem},
            )
            outcome.delivery.append(
                DeliveryReport(
                    sink=sink, ok=False, message=f"re-check link {link.link} not handed on: {problem}"
                )
            )
            outcome.unscheduled.extend(ids)
            return
        self._logger.info(
            "notify.scheduled",
            extra={"request_key": link.requestKey, "link": link.link, "snapshots": ids, "id": request_id},
        )
        outcome.delivery.append(
            DeliveryReport(
                sink=sink,
                ok=True,
                message=f"re-check link {link.link} of {len(ids)} snapshot(s)",
                message_id=request_id,
            )
        )

    def _now(self) -> datetime:
        now = self._wall_clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)

    def _look(
        self, snapshots: Sequence[PendingSnapshot], deadline: Deadline
    ) -> tuple[dict[str, SnapshotInfo], dict[str, str]]:
        """(found by snapshot ID, unreadable ID → why). Absent from both: the snapshot is gone."""
        found: dict[str, SnapshotInfo] = {}
        unreadable: dict[str, str] = {}
        by_region: dict[str, list[str]] = {}
        for snap in snapshots:
            by_region.setdefault(snap.region, []).append(snap.snapshotId)
        for region, ids in by_region.items():
            for start in range(0, len(ids), DESCRIBE_BATCH):
                batch = ids[start : start + DESCRIBE_BATCH]
                try:
                    found.update(_describe(self._cbs(region), batch, deadline))
                except CbsnapError as exc:  # CloudError, DeadlineReached, ConfigurationError
                    why = str(exc)[:_REPORT_LIMIT]
                    self._logger.warning("notify.describe_failed", extra={"region": region, "error": why})
                    unreadable.update((sid, why) for sid in batch)
        return found, unreadable


def _describe(api: CbsApi, ids: Sequence[str], deadline: Deadline) -> dict[str, SnapshotInfo]:
    """DescribeSnapshots by IDs. An API that refuses a batch naming an unknown ID
    (``InvalidSnapshotId.NotFound``) is asked again one ID at a time to tell which."""
    try:
        _total, page = api.describe_snapshots(deadline, snapshot_ids=ids, limit=DESCRIBE_BATCH)
    except CloudError as err:
        if not err.code.startswith("InvalidSnapshotId.NotFound"):
            raise
        if len(ids) == 1:
            return {}
        found: dict[str, SnapshotInfo] = {}
        for sid in ids:
            found.update(_describe(api, [sid], deadline))
        return found
    wanted = set(ids)
    return {s.snapshot_id: s for s in page if s.snapshot_id in wanted}


def _copy_event(link: Recheck, snap: PendingSnapshot, ref: CopyRef) -> SnapshotResult:
    """``snapshot.copied`` (the copy is usable, cbsnap's and expiring) or ``snapshot.copy_failed``
    for one copy of ``snap``: the source's identity, the copy in ``copies``."""
    ok = ref.state != "failed"
    code = SeedCode.SUCCESS if ok else SeedCode(ref.code or SeedCode.INTERNAL_ERROR)
    message = f"copied to {ref.region}: {ref.snapshotId}" if ok else (ref.message or "not copied")
    event = _event(link, snap, None, COPIED if ok else COPY_FAILED, message, code=code)
    return event.model_copy(update={"eventId": copy_event_id(snap.snapshotId, ref.region), "copies": (ref,)})


def _event(
    link: Recheck,
    snap: PendingSnapshot,
    info: SnapshotInfo | None,
    action: str,
    message: str,
    *,
    code: SeedCode | None = None,
) -> SnapshotResult:
    if code is None:
        code = SeedCode.SUCCESS if action == COMPLETED else SeedCode.INTERNAL_ERROR
    return SnapshotResult(
        storageId=info.disk_id if info is not None and info.disk_id else snap.storageId,
        snapshotName=snap.snapshotName,
        code=int(code),
        codeDesc=code.desc,
        message=message,
        snapshotId=snap.snapshotId,
        region=snap.region,
        action=action,
        correlation=link.correlation,
        eventId=event_id(snap.snapshotId),
    )
