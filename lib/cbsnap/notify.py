"""Completion events: tell a request's sinks when its snapshots are usable (NORMAL, 100 %).

A request with ``"notify": "completed"`` gets, after its run, one **re-check message** on
cbsnap's own work queue (``CBSNAP_FANOUT_QUEUE``, the queue fan-out chunks use), delayed
``CBSNAP_NOTIFY_DELAY`` seconds with CMQ's ``DelaySeconds``. No function waits: the
message handler receives the re-check when the delay has passed, asks DescribeSnapshots,
and then, per snapshot,

* NORMAL → a ``snapshot.completed`` event (code 0);
* gone (not found) → a ``snapshot.timeout`` event (code 6000, ``message`` starts ``gone:``);
* anything else, before ``timeoutAt`` → still pending: the pending snapshots go back on the
  work queue as the next re-check, ``attempt + 1``, delayed
  ``min(CBSNAP_NOTIFY_DELAY · 2^attempt, CBSNAP_NOTIFY_MAX_DELAY, time left)``;
* anything else, at or after ``timeoutAt`` (``CBSNAP_NOTIFY_TIMEOUT`` after the request) →
  a ``snapshot.timeout`` event (code 6000, the last state and percent in ``message``).

Events are :class:`~cbsnap.models.SnapshotResult` records with ``action`` set, delivered
like results to the original request's sinks (log, configured queue/topic, its ``replyTo``),
with its ``requestKey``, ``trigger`` and ``correlation``. The re-check body is
``{"cbsnapRecheck": {...}}``, a key no request document may carry (request documents refuse
unknown fields), so it can never be mistaken for a request, and a request can never
smuggle one in through the timer or the webhook::

    {"cbsnapRecheck": {"v": 1, "attempt": 1, "timeoutAt": "2026-11-28T03:00:15Z",
                       "requestKey": "key/predeploy-77", "trigger": "webhook",
                       "replyTo": {"queue": "deploy-events"}, "correlation": {"pipeline": "77"},
                       "snapshots": [{"snapshotId": "snap-…", "storageId": "disk-…",
                                      "region": "ap-guangzhou", "snapshotName": "predeploy"}]}}

**At most once.** Re-check messages are delivered at least once, so the same snapshot may
be seen NORMAL by two invocations. Each event is emitted only after
``ledger.claim("event/<snapshotId>", ttl)`` succeeded: with ``CBSNAP_REDIS_URL`` that is a
Redis ``SET NX EX``, and only the first claimant emits. Without Redis nothing is shared
between invocations and cbsnap cannot promise at-most-once: every event carries the
deterministic ``eventId`` ``event/<snapshotId>`` (one event per snapshot, whichever its
outcome), and consumers drop repeats by it. docs/pre-deploy.md explains the limits.

A re-check whose follow-up cannot be sent makes the invocation raise (after its events went
out), so the platform redelivers it; the claims make that redelivery emit nothing twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from cbsnap.cbs import CbsApi, SnapshotInfo
from cbsnap.codes import SeedCode
from cbsnap.errors import CbsnapError, CloudError
from cbsnap.events.queue import RECHECK_FIELD
from cbsnap.ledger import Ledger
from cbsnap.models import ReplyTo, SnapshotResult
from cbsnap.outcome import Outcome
from cbsnap.scf import Clock, Deadline
from cbsnap.sinks import DeliveryReport, RequestMeta

if TYPE_CHECKING:
    from cbsnap.logs import Log
    from cbsnap.tdmq import TdmqApi

RECHECK_VERSION = 1
COMPLETED = "snapshot.completed"
TIMEOUT = "snapshot.timeout"
USABLE_STATE = "NORMAL"
RECHECK_SINK = "recheck"  # DeliveryReport.sink prefix: "recheck:queue:<work queue>"
MAX_SNAPSHOTS_PER_MESSAGE = 100  # one DescribeSnapshots page; ~15 KB of message
MAX_DELAY_SECONDS = 3600  # CMQ's largest DelaySeconds
NO_WORK_QUEUE = (
    "completion re-checks need cbsnap's work queue: set CBSNAP_FANOUT_QUEUE "
    "(a CMQ queue; a topic cannot delay messages); no snapshot.completed events will follow"
)
_REPORT_LIMIT = 300

Deliver = Callable[[Sequence[SnapshotResult], RequestMeta, Deadline], list[DeliveryReport]]
WallClock = Callable[[], datetime]

SnapshotId = Annotated[str, StringConstraints(pattern=r"^snap-[a-z0-9]{8}$", strict=True)]
RegionName = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,4}-[a-z0-9-]{2,32}$", strict=True)]


def event_id(snapshot_id: str) -> str:
    """The deterministic id of a snapshot's one completion event (and its claim key)."""
    return f"event/{snapshot_id}"


# -- the re-check message ------------------------------------------------------------------


class PendingSnapshot(BaseModel):
    """A snapshot whose completion is still to be reported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    snapshotId: SnapshotId
    storageId: str | None = Field(default=None, max_length=64)
    region: RegionName
    snapshotName: str | None = Field(default=None, max_length=128)


class Recheck(BaseModel):
    """The body of a re-check message (under ``cbsnapRecheck``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1  # RECHECK_VERSION
    snapshots: list[PendingSnapshot] = Field(min_length=1, max_length=MAX_SNAPSHOTS_PER_MESSAGE)
    attempt: int = Field(ge=1, strict=True)
    timeoutAt: AwareDatetime
    requestKey: str = Field(min_length=1, max_length=512)
    trigger: str = Field(default="queue", min_length=1, max_length=32)
    replyTo: ReplyTo | None = None
    correlation: dict[str, Any] | None = None

    def dumps(self) -> str:
        """The message body: ``{"cbsnapRecheck": {...}}``, compact JSON."""
        data = self.model_dump(mode="json", exclude_none=True)
        return json.dumps({RECHECK_FIELD: data}, ensure_ascii=False, separators=(",", ":"), default=str)


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cbsnapRecheck: Recheck


def parse_recheck(document: Any) -> Recheck | str:
    """The re-check of a message body, or why it is not a usable one (never raises)."""
    try:
        return _Envelope.model_validate(document).cbsnapRecheck
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"re-check message: {where}: {first.get('msg', 'invalid')}"[:200]


# -- the notifier ----------------------------------------------------------------------------


class Notifier:
    """Schedules re-checks after a run and answers them (see the module docstring).

    Parameters
    ----------
    cbs, tdmq:
        Region → CBS API (DescribeSnapshots) and region → TDMQ API (SendCmqMsg).
    ledger:
        Where events are claimed (:class:`~cbsnap.ledger.NoLedger`: always granted).
    region:
        The work queue's region (the function's).
    queue:
        The work queue (``CBSNAP_FANOUT_QUEUE``); None: nothing can be scheduled (reported).
    delay, max_delay, timeout:
        ``CBSNAP_NOTIFY_DELAY`` / ``_MAX_DELAY`` / ``_TIMEOUT``, seconds.
    claim_ttl:
        How long an event's claim is kept: longer than any re-check can still arrive.
    grace_seconds, clock:
        Sends after a run may use the run's deadline plus this grace (as the sinks do).
    wall_clock:
        Aware UTC now, for ``timeoutAt`` (tests pass the emulator's state clock).
    """

    def __init__(
        self,
        cbs: Callable[[str], CbsApi],
        tdmq: Callable[[str], TdmqApi],
        ledger: Ledger,
        *,
        region: str,
        queue: str | None,
        logger: Log,
        delay: int = 15,
        max_delay: int = 300,
        timeout: int = 3600,
        claim_ttl: int = 3600 + 86400,
        grace_seconds: float = 1.5,
        clock: Clock,
        wall_clock: WallClock,
    ) -> None:
        self._cbs = cbs
        self._tdmq = tdmq
        self._ledger = ledger
        self._region = region
        self._queue = queue
        self._logger = logger
        self._delay = delay
        self._max_delay = max_delay
        self._timeout = timeout
        self._claim_ttl = claim_ttl
        self._grace = grace_seconds
        self._clock = clock
        self._wall_clock = wall_clock

    # -- after a run -------------------------------------------------------------------------

    def schedule(
        self, results: Sequence[SnapshotResult], meta: RequestMeta, deadline: Deadline
    ) -> list[DeliveryReport]:
        """Send the first re-check(s) for the request's new snapshots; one report per message.

        Only code-0 create results with a snapshot ID count. Never raises: a missing work
        queue or a failed send is logged and reported, and the results stand as they are.
        """
        try:
            return self._schedule(results, meta, deadline)
        except Exception as exc:  # a bug here must not cost the request its answer
            self._logger.exception("notify.unscheduled", extra={"request_key": meta.request_key})
            problem = f"completion re-checks not scheduled: {type(exc).__name__}: {exc}"[:_REPORT_LIMIT]
            return [DeliveryReport(sink=RECHECK_SINK, ok=False, message=problem)]

    def _schedule(
        self, results: Sequence[SnapshotResult], meta: RequestMeta, deadline: Deadline
    ) -> list[DeliveryReport]:
        pending = [
            PendingSnapshot(
                snapshotId=r.snapshotId,
                storageId=r.storageId,
                region=r.region or self._region,
                snapshotName=r.snapshotName,
            )
            for r in results
            if r.ok and r.snapshotId and r.action is None
        ]
        if not pending:
            return []
        if not self._queue:
            self._logger.warning(
                "notify.unscheduled",
                extra={"request_key": meta.request_key, "snapshots": len(pending), "reason": NO_WORK_QUEUE},
            )
            return [DeliveryReport(sink=RECHECK_SINK, ok=False, message=NO_WORK_QUEUE)]
        pending.sort(key=lambda p: p.region)  # grouped per region: one DescribeSnapshots batch each
        timeout_at = self._now() + timedelta(seconds=self._timeout)
        send_by = Deadline.after(deadline.remaining() + self._grace, self._clock)
        reports = []
        for start in range(0, len(pending), MAX_SNAPSHOTS_PER_MESSAGE):
            recheck = Recheck(
                snapshots=pending[start : start + MAX_SNAPSHOTS_PER_MESSAGE],
                attempt=1,
                timeoutAt=timeout_at,
                requestKey=meta.request_key,
                trigger=meta.trigger,
                replyTo=meta.reply_to,
                correlation=meta.correlation,
            )
            reports.append(self._send(recheck, self._delay, send_by, meta.request_key))
        return reports

    # -- a re-check message ---------------------------------------------------------------

    def recheck(
        self, recheck: Recheck, carrier: RequestMeta, deadline: Deadline, deliver: Deliver
    ) -> Outcome:
        """Poll the snapshots of ``recheck``, emit the events that are due, re-schedule the rest.

        ``carrier`` is the identity of the queue message that brought the re-check;
        events go out under the original request's identity. The outcome's
        ``unscheduled`` lists the snapshots whose next re-check could not be sent: the
        caller must then fail the invocation so that the platform redelivers.
        """
        now = self._now()
        timed_out = now >= recheck.timeoutAt
        found, unreadable = self._look(recheck.snapshots, deadline)
        events: list[SnapshotResult] = []
        pending: list[PendingSnapshot] = []
        for snap in recheck.snapshots:
            info = found.get(snap.snapshotId)
            if snap.snapshotId in unreadable:
                if timed_out:
                    why = f"its state could not be read: {unreadable[snap.snapshotId]}"
                    events.append(
                        self._event(recheck, snap, None, TIMEOUT, self._timeout_message(recheck, why))
                    )
                else:
                    pending.append(snap)
            elif info is None:
                message = (
                    f"gone: snapshot {snap.snapshotId} no longer exists in {snap.region} "
                    "(deleted before it was reported usable)"
                )
                events.append(self._event(recheck, snap, None, TIMEOUT, message))
            elif info.state == USABLE_STATE:
                events.append(self._event(recheck, snap, info, COMPLETED, f"usable: NORMAL, {info.percent}%"))
            elif timed_out:
                why = f"it was still {info.state or 'in an unknown state'} at {info.percent}%"
                events.append(self._event(recheck, snap, info, TIMEOUT, self._timeout_message(recheck, why)))
            else:
                pending.append(snap)

        emitted: list[SnapshotResult] = []
        duplicates: list[str] = []  # claimed already: another delivery of this re-check emitted them
        for event in events:
            key = event_id(event.snapshotId or "")
            if self._ledger.claim(key, self._claim_ttl):
                emitted.append(event)
            else:
                duplicates.append(key)
        outcome = Outcome(results=emitted)
        meta = RequestMeta(
            trigger=recheck.trigger,
            request_key=recheck.requestKey,
            source_id=carrier.message_id,
            invocation_id=carrier.invocation_id,
            reply_to=recheck.replyTo,
            correlation=recheck.correlation,
        )
        if emitted:
            outcome.delivery.extend(deliver(emitted, meta, deadline))
        if pending:
            left = (recheck.timeoutAt - now).total_seconds()
            follow_up = recheck.model_copy(update={"snapshots": pending, "attempt": recheck.attempt + 1})
            report = self._send(
                follow_up, self.next_delay(recheck.attempt, left), deadline, recheck.requestKey
            )
            outcome.delivery.append(report)
            if not report.ok:
                outcome.unscheduled = [p.snapshotId for p in pending]
        self._logger.info(
            "notify.rechecked",
            extra={
                "request_key": recheck.requestKey,
                "attempt": recheck.attempt,
                "events": [f"{e.snapshotId}:{e.action}" for e in emitted],
                "duplicates_skipped": duplicates,
                "pending": [p.snapshotId for p in pending],
                **({"unreadable": sorted(unreadable)} if unreadable else {}),
            },
        )
        return outcome

    def next_delay(self, attempt: int, seconds_left: float) -> int:
        """DelaySeconds of the re-check after ``attempt``: exponential, capped, never past the timeout."""
        backoff: int = min(self._delay * 2 ** min(attempt, 30), self._max_delay, MAX_DELAY_SECONDS)
        return max(1, min(backoff, math.ceil(max(seconds_left, 0.0))))

    # -- helpers ---------------------------------------------------------------------------

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
            try:
                found.update(self._describe(self._cbs(region), ids, deadline))
            except CbsnapError as exc:  # CloudError, DeadlineReached, ConfigurationError
                why = str(exc)[:_REPORT_LIMIT]
                self._logger.warning("notify.describe_failed", extra={"region": region, "error": why})
                unreadable.update((sid, why) for sid in ids)
        return found, unreadable

    @staticmethod
    def _describe(api: CbsApi, ids: Sequence[str], deadline: Deadline) -> dict[str, SnapshotInfo]:
        """DescribeSnapshots by IDs. An API that refuses a batch naming an unknown ID
        (``InvalidSnapshotId.NotFound``) is asked again one ID at a time to tell which."""
        found: dict[str, SnapshotInfo] = {}
        try:
            _total, page = api.describe_snapshots(deadline, snapshot_ids=ids, limit=MAX_SNAPSHOTS_PER_MESSAGE)
        except CloudError as err:
            if not err.code.startswith("InvalidSnapshotId.NotFound"):
                raise
            if len(ids) == 1:
                return found
            for sid in ids:
                found.update(Notifier._describe(api, [sid], deadline))
            return found
        wanted = set(ids)
        found.update((s.snapshot_id, s) for s in page if s.snapshot_id in wanted)
        return found

    def _timeout_message(self, recheck: Recheck, why: str) -> str:
        at = recheck.timeoutAt.astimezone(timezone.utc).isoformat(timespec="seconds")
        return f"timed out at {at} after {recheck.attempt} re-check(s): {why}"

    @staticmethod
    def _event(
        recheck: Recheck, snap: PendingSnapshot, info: SnapshotInfo | None, action: str, message: str
    ) -> SnapshotResult:
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
            correlation=recheck.correlation,
            eventId=event_id(snap.snapshotId),
        )

    def _send(self, recheck: Recheck, delay: int, deadline: Deadline, request_key: str) -> DeliveryReport:
        """SendCmqMsg of one re-check to the work queue; a report, never an exception."""
        sink = f"{RECHECK_SINK}:queue:{self._queue}"
        ids = [s.snapshotId for s in recheck.snapshots]
        try:
            if not self._queue:
                raise CbsnapError(NO_WORK_QUEUE)
            api = self._tdmq(self._region)
            sent = api.send_queue_message(self._queue, recheck.dumps(), deadline, delay_seconds=delay)
        except Exception as exc:  # CloudError, DeadlineReached, ConfigurationError, or a bug
            problem = str(exc) if isinstance(exc, CbsnapError) else f"{type(exc).__name__}: {exc}"
            problem = problem[:_REPORT_LIMIT]
            record = {
                "request_key": request_key,
                "attempt": recheck.attempt,
                "snapshots": ids,
                "error": problem,
            }
            if isinstance(exc, CbsnapError):
                self._logger.warning("notify.unscheduled", extra=record)
            else:
                self._logger.exception("notify.unscheduled", extra=record)
            return DeliveryReport(
                sink=sink, ok=False, message=f"re-check {recheck.attempt} not sent: {problem}"
            )
        self._logger.info(
            "notify.scheduled",
            extra={
                "request_key": request_key,
                "attempt": recheck.attempt,
                "delay_seconds": delay,
                "snapshots": ids,
                "message_id": sent.message_id,
            },
        )
        return DeliveryReport(
            sink=sink,
            ok=True,
            message=f"re-check {recheck.attempt} of {len(ids)} snapshot(s) in {delay} s",
            message_id=sent.message_id,
        )
