"""The one request pipeline every trigger uses: prepare → execute → deliver → follow-ups.

* :meth:`Pipeline.prepare` parses the document once into an immutable
  :class:`~cbsnap.request.Request` (identity, expiry, options; :mod:`cbsnap.request`);
* :meth:`Pipeline.execute` resolves the disks (:mod:`cbsnap.selectors`) and dispatches to the
  one use case the request asks for — a coverage report (``action: "report"``,
  :mod:`cbsnap.report`), retention alone (``action: "prune"``,
  :mod:`cbsnap.janitor`), a dry run (:mod:`cbsnap.plan`), scripts around the snapshots
  (``hooks``, :mod:`cbsnap.hooks`), consistent groups
  (:mod:`cbsnap.groups`), fan-out of a large request (:mod:`cbsnap.fanout`), or snapshots
  (:mod:`cbsnap.snapshots`, followed by retention when the request has a rule);
* :meth:`Pipeline.handle` stamps the request's context on the results, hands them to every
  sink (a failing sink never costs the others), and schedules completion re-checks.

Handlers only read their event into a document and an identity, call :meth:`run` (or
:meth:`prepare` + :meth:`handle` when they need the request first, as the webhook does),
and turn the :class:`~cbsnap.outcome.Outcome` into the trigger's answer. Optional use
cases are imported the first time a request takes them: cold starts pay only for what
their event needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from cbsnap import metrics
from cbsnap.codes import SeedCode
from cbsnap.errors import ConfigurationError
from cbsnap.idempotent import IdempotentCreator
from cbsnap.ledger import Ledger, NoLedger
from cbsnap.lookup import KeyedLookup
from cbsnap.models import REPORT_ACTION, SnapshotResult
from cbsnap.outcome import Outcome, in_order
from cbsnap.request import Placed, Request, prepare, rejection
from cbsnap.scf import Clock, Deadline
from cbsnap.selectors import DiskResolver, Resolution
from cbsnap.sinks import DeliveryReport, RequestMeta, ResultSink
from cbsnap.snapshots import ApiProvider, SnapshotService
from cbsnap.workers import Parallel, sequential

if TYPE_CHECKING:
    from cbsnap.copies import Copier, CopyWork
    from cbsnap.fanout import FanOut
    from cbsnap.hooks import HookRunner, TatCalls
    from cbsnap.janitor import Janitor
    from cbsnap.logs import Log
    from cbsnap.notify import Notifier

WallClock = Callable[[], datetime]
DRY_RUN_ACTION = "plan"
DELETE_ACTION = "delete"
# What Tencent promises for a snapshot group: the SDK calls the only type, NORMAL, "非一致性快照"
# (not a consistency snapshot); a product page calls groups crash-consistent in a limited beta.
GROUP_CONSISTENCY = "not-guaranteed"


class Pipeline:
    """Runs requests (see the module docstring).

    Parameters
    ----------
    apis:
        Region → :class:`~cbsnap.cbs.CbsApi`.
    region:
        The function's region: disks named without one live here.
    sinks:
        Where results go (the log sink first); each gets the results of every request.
    logger:
        The runtime's log, for the pipeline's own records (failed sinks, fan-out).
    default_retain_days:
        Trigger name → the configured expiry of snapshots whose request sets none (0: keep).
    pace:
        Narrows this invocation's API pace to a fan-out chunk's share of the rate limit.
    delivery_grace:
        Seconds past the work deadline the sinks may still use: the work stops at the
        deadline, and the rest of the safety margin is kept for logging and answering.
    """

    def __init__(
        self,
        apis: ApiProvider,
        *,
        region: str,
        sinks: Sequence[ResultSink],
        logger: Log,
        lookup: KeyedLookup,
        creator: IdempotentCreator,
        ledger: Ledger | None = None,
        parallel: Parallel = sequential,
        fanout: FanOut | None = None,
        notifier: Callable[[], Notifier] | None = None,
        copier: Callable[[], Copier] | None = None,
        tat: Callable[[str], TatCalls] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        default_retain_days: Callable[[str], int] = lambda trigger: 0,
        pace: Callable[[float | None, float], None] = lambda rate, phase: None,
        delivery_grace: float = 0.0,
        clock: Clock = time.monotonic,
        wall_clock: WallClock = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.apis = apis
        self._region = region
        self._sinks = list(sinks)
        self._logger = logger
        self._lookup = lookup
        self._creator = creator
        self.ledger: Ledger = ledger or NoLedger()
        self._parallel = parallel
        self._fanout = fanout
        self._make_notifier = notifier
        self._notifier: Notifier | None = None
        self._make_copier = copier
        self._copier: Copier | None = None
        self._default_retain_days = default_retain_days
        self._pace = pace
        self._grace = delivery_grace
        self._clock = clock
        self._wall_clock = wall_clock
        self._resolver = DiskResolver(apis, region, parallel)
        self._snapshots = SnapshotService(
            apis, lookup=lookup, creator=creator, ledger=self.ledger, parallel=parallel, clock=clock
        )
        self._janitor: Janitor | None = None
        self._tat = tat
        self._sleep = sleep
        self._hooks: HookRunner | None = None

    # -- the four steps ------------------------------------------------------------------------

    def prepare(self, document: Any, meta: RequestMeta) -> Request:
        """Parse ``document`` once: see :func:`cbsnap.request.prepare`. Never raises for bad input."""
        return prepare(
            document,
            meta,
            default_retain_days=self._default_retain_days(meta.trigger),
            now=self._wall_clock(),
        )

    def execute(self, request: Request, deadline: Deadline, *, split_above: int | None = None) -> Outcome:
        """Resolve the disks and run the use case the request asks for; one result per disk.

        Never raises for cloud failures: every disk ends with a result. A configuration
        problem (no credentials…) is every disk's result. ``split_above`` lowers the fan-out
        threshold for this request (a caller that must answer quickly).
        """
        options = request.options
        if options is None or not request.runnable:
            return Outcome(in_order(request.rejections))
        report: dict[str, Any] | None = None
        try:
            if options.action == REPORT_ACTION:
                placed, report = self._report(request, deadline)
                fanout = None
            else:
                resolution = self._resolver.resolve(request, deadline)
                placed, fanout = self._dispatch(request, resolution, deadline, split_above)
        except ConfigurationError as exc:
            message = f"configuration: {exc}"
            placed = [
                (
                    t.position,
                    SnapshotResult.failure(t.disk_id, t.snapshot_name, SeedCode.INTERNAL_ERROR, message),
                )
                for t in request.targets
            ] or [(0, SnapshotResult.failure(None, None, SeedCode.INTERNAL_ERROR, message))]
            fanout = None
        results = in_order([*request.rejections, *placed])
        if options.action == "prune":  # every result of a prune is a delete record, dry run or not
            results = [r if r.action else r.model_copy(update={"action": DELETE_ACTION}) for r in results]
        elif options.dryRun:
            # retention's "would delete" records keep their action, as in a prune's dry run
            results = [r if r.action else r.model_copy(update={"action": DRY_RUN_ACTION}) for r in results]
        return Outcome(results, fanout=fanout, report=report)

    def handle(self, request: Request, deadline: Deadline, *, split_above: int | None = None) -> Outcome:
        """Execute ``request``, copy what is usable already, deliver its results to every sink,
        and schedule its follow-ups (completion events, copies of snapshots not usable yet)."""
        outcome = self.execute(request, deadline, split_above=split_above)
        meta = request.meta
        options = request.options
        copy_work: dict[str, CopyWork] = {}
        spec = options.copy_ if options is not None and not options.dryRun else None
        if spec is not None and self.copier is not None:  # what is usable already is copied now
            outcome.results, copy_work = self.copier.at_once(outcome.results, spec, meta, deadline)
        outcome.results = self._stamped(outcome.results, meta)
        metrics.observe(outcome.results, meta.request_key)
        if outcome.report is not None:
            self._logger.info("report.summary", extra={"request_key": meta.request_key, **outcome.report})
        outcome.delivery = self.deliver(outcome.results, meta, deadline)
        notify = options is not None and options.notify == "completed" and not options.dryRun
        if notify or copy_work:
            notifier = self.notifier
            if notifier is not None:
                chain = notifier.start(outcome.results, meta, deadline, notify=notify, copies=copy_work)
                outcome.delivery.extend(chain.delivery)
                outcome.unscheduled.extend(chain.unscheduled)
        return outcome

    def run(self, document: Any, meta: RequestMeta, deadline: Deadline) -> Outcome:
        """:meth:`prepare` then :meth:`handle`."""
        return self.handle(self.prepare(document, meta), deadline)

    def run_chunk(self, document: Any, carrier: RequestMeta, deadline: Deadline) -> Outcome:
        """Run one fan-out chunk (:mod:`cbsnap.fanout`) under its parent's trigger name.

        ``carrier`` is the identity of whatever brought the chunk; the chunk's own
        ``idempotencyKey`` (derived from the parent's key) names the request.
        """
        from cbsnap.fanout import parse_chunk

        chunk = parse_chunk(document)
        if isinstance(chunk, str):
            return self.reject(chunk, carrier, deadline)
        info = chunk.cbsnapChunk
        self._pace(info.rate, info.phase)  # the chunk's siblings run at once, in other instances
        meta = carrier.carrying(info.trigger, carrier.request_key, info.parentKey)
        return self.handle(self.prepare(chunk.request, meta), deadline)

    def reject(self, problem: str, meta: RequestMeta, deadline: Deadline | None = None) -> Outcome:
        """An event that carried no usable request: one 9003 result, delivered like any result."""
        return self.handle(rejection(meta, problem), deadline or Deadline.after(0, self._clock))

    def deliver(
        self, results: Sequence[SnapshotResult], meta: RequestMeta, deadline: Deadline
    ) -> list[DeliveryReport]:
        """Hand results to every sink; a failing sink is logged, reported, and the others still run."""
        deliver_by = Deadline.after(deadline.remaining() + self._grace, self._clock)
        reports: list[DeliveryReport] = []
        for sink in self._sinks:
            try:
                reports.extend(sink.emit(results, meta, deliver_by))
            except Exception as exc:  # a sink must never lose the results for the others
                self._logger.exception("sink.failed", extra={"sink": type(sink).__name__})
                reports.append(DeliveryReport(sink=type(sink).__name__, ok=False, message=str(exc)[:300]))
        return reports

    def recheck(self, document: Any, meta: RequestMeta, deadline: Deadline) -> Outcome:
        """Run one link of a completion re-check chain (``{"cbsnapRecheck": …}``, :mod:`cbsnap.notify`)."""
        from cbsnap.notify import parse_recheck

        recheck = parse_recheck(document)
        if isinstance(recheck, str):
            return self.reject(recheck, meta, deadline)
        notifier = self.notifier
        if notifier is None:
            return self.reject("re-check: completion events are not wired in this runtime", meta, deadline)
        outcome = notifier.run_link(recheck, meta, deadline, self.deliver)
        metrics.observe(outcome.results, meta.request_key)
        return outcome

    # -- collaborators built on first use ---------------------------------------------------------

    @property
    def notifier(self) -> Notifier | None:
        """The completion-event notifier, built on first use (None when not wired)."""
        if self._notifier is None and self._make_notifier is not None:
            self._notifier = self._make_notifier()
        return self._notifier

    @property
    def copier(self) -> Copier | None:
        """The cross-region copier, built on first use (None when not wired)."""
        if self._copier is None and self._make_copier is not None:
            self._copier = self._make_copier()
        return self._copier

    @property
    def janitor(self) -> Janitor:
        """The retention janitor, built (and imported) on first use: most requests have no rule."""
        if self._janitor is None:
            from cbsnap.janitor import Janitor

            self._janitor = Janitor(
                self.apis,
                region=self._region,
                wall_clock=lambda: self._wall_clock().timestamp(),
                parallel=self._parallel,
            )
        return self._janitor

    @property
    def hooks(self) -> HookRunner:
        """Scripts around snapshots through TAT, built (and imported) on first use."""
        if self._hooks is None:
            if self._tat is None:
                raise ConfigurationError("hooks need TAT, which this runtime does not wire")
            from cbsnap.groups import ConsistentGroups
            from cbsnap.hooks import HookRunner

            self._hooks = HookRunner(
                self._tat,
                snapshots=self._snapshots,
                groups=lambda: ConsistentGroups(
                    self.apis, lookup=self._lookup, creator=self._creator, parallel=self._parallel
                ),
                logger=self._logger,
                parallel=self._parallel,
                sleep=self._sleep,
                clock=self._clock,
            )
        return self._hooks

    # -- dispatch ---------------------------------------------------------------------------------

    def _report(self, request: Request, deadline: Deadline) -> tuple[list[Placed], dict[str, Any]]:
        """A coverage report (:mod:`cbsnap.report`): read-only, every call counted in its summary."""
        from cbsnap.report import CoverageReport

        report = CoverageReport(self.apis, parallel=self._parallel, wall_clock=self._wall_clock)
        with metrics.counting() as tally:  # the resolver's DescribeDisks pages count too
            resolution = self._resolver.resolve(request, deadline)
            placed, summary = report.report(request, resolution, deadline)
        summary["apiCalls"] = tally.by_action()
        summary["apiCallsTotal"] = tally.total
        return placed, summary

    def _dispatch(
        self, request: Request, resolution: Resolution, deadline: Deadline, split_above: int | None
    ) -> tuple[list[Placed], dict[str, Any] | None]:
        options = request.options
        assert options is not None
        placed: list[Placed] = list(resolution.refused)
        if options.action == "prune":
            return self.janitor.prune(request, resolution, deadline), None
        if options.dryRun:
            from cbsnap.plan import Planner

            janitor = self.janitor if options.retention is not None else None
            planner = Planner(self.apis, lookup=self._lookup, parallel=self._parallel, janitor=janitor)
            return placed + planner.plan(request, resolution, deadline), None
        if options.hooks is not None:  # never fanned out: an instance's disks stay in one invocation
            hooked = self.hooks.snapshot(request, resolution, deadline)
            if options.retention is not None:
                hooked.extend(self.janitor.after_create(options.retention, hooked, deadline))
            return placed + hooked, None
        if options.consistent:
            from cbsnap.groups import ConsistentGroups

            groups = ConsistentGroups(
                self.apis, lookup=self._lookup, creator=self._creator, parallel=self._parallel
            )
            grouped = [
                (p, r.model_copy(update={"consistency": GROUP_CONSISTENCY}) if r.ok and r.groupId else r)
                for p, r in groups.snapshot(request, resolution, deadline)
            ]
            return placed + grouped, None
        if self._fanout is not None and self._fanout.should_split(resolution, split_above):
            handed, report = self._fanout.dispatch(request, resolution, deadline)
            summary = report.to_dict()
            self._logger.info("fanout.dispatched", extra={"request_key": request.meta.request_key, **summary})
            return placed + handed, summary
        made_room: list[Placed] = []
        if options.retention is not None:  # a disk at its quota gets its retention first
            resolution, made_room = self.janitor.make_room(resolution, options.retention, deadline)
        created = self._snapshots.snapshot(request, resolution, deadline)
        placed.extend(created)
        placed.extend(made_room)  # after the disk's create result (a stable sort by position)
        if options.retention is not None:  # each disk's delete records follow its create
            placed.extend(self.janitor.after_create(options.retention, created, deadline))
        return placed, None

    @staticmethod
    def _stamped(results: list[SnapshotResult], meta: RequestMeta) -> list[SnapshotResult]:
        """The request's context on every result: the carrying message and the correlation."""
        stamp: dict[str, Any] = {}
        if meta.message_id is not None:
            stamp["messageId"] = meta.message_id
        if meta.correlation is not None:
            stamp["correlation"] = meta.correlation
        return [r.model_copy(update=stamp) for r in results] if stamp else results
