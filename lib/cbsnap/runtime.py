"""The composition root: builds the object graph from settings once per process
(an SCF container) and runs one request through it.

Handlers call :func:`get_runtime`; tests and the CLI build a :class:`Runtime`
with their own settings, stream and sleep and install it with :func:`set_runtime`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar

from aws_lambda_powertools import Logger

from cbsnap.client import CbsApi, RetryPolicy, make_sdk_client
from cbsnap.codes import SeedCode
from cbsnap.errors import ConfigurationError
from cbsnap.expiry import expires_at
from cbsnap.ledger import Ledger, NoLedger
from cbsnap.models import ParsedRequest, SnapshotResult, parse_request
from cbsnap.pacing import RateLimiter, Sleep, rate_limiter_for
from cbsnap.queue_sink import DELIVER_BY, QueueSink
from cbsnap.scf import Clock, Deadline, InvocationContext
from cbsnap.settings import Settings, get_settings
from cbsnap.sinks import DeliveryReport, LogSink, Redactor, RequestMeta, ResultSink, make_logger
from cbsnap.snapshots import Outcome, SnapshotService

A = TypeVar("A")

if TYPE_CHECKING:
    from cbsnap.fanout import FanOut
    from cbsnap.notify import Notifier
    from cbsnap.tdmq import TdmqApi


class PerRegion(Generic[A]):
    """One API client per region (one SDK client, one HTTP session), built on first use.

    Every client of a runtime shares its pacer and retry policy.
    """

    def __init__(self, build: Callable[[str], A]) -> None:
        self._build = build
        self._apis: dict[str, A] = {}
        self._lock = threading.Lock()

    def __call__(self, region: str) -> A:
        with self._lock:
            api = self._apis.get(region)
            if api is None:
                api = self._apis[region] = self._build(region)
            return api


def cbs_apis(
    settings: Settings, limiter: RateLimiter, *, policy: RetryPolicy | None = None, sleep: Sleep = time.sleep
) -> PerRegion[CbsApi]:
    """The CBS client of each region."""
    return PerRegion(
        lambda region: CbsApi(
            make_sdk_client(settings, region), region=region, rate_limiter=limiter, policy=policy, sleep=sleep
        )
    )


def tdmq_apis(
    settings: Settings, limiter: RateLimiter, *, policy: RetryPolicy | None = None, sleep: Sleep = time.sleep
) -> PerRegion[TdmqApi]:
    """The TDMQ (CMQ) client of each region, built on the first message sent.

    :mod:`cbsnap.tdmq` (and with it the TDMQ SDK, 1.3 MB of models) is imported
    only then, so invocations that send nothing to a queue don't pay for it.
    """

    def build(region: str) -> TdmqApi:
        from cbsnap import tdmq  # lazy: keeps the TDMQ SDK out of the cold start

        client = tdmq.make_tdmq_client(settings, region)
        return tdmq.TdmqApi(client, region=region, rate_limiter=limiter, policy=policy, sleep=sleep)

    return PerRegion(build)


class Runtime:
    """Settings, the snapshot service, the sinks and the logger of one process."""

    def __init__(
        self,
        settings: Settings,
        *,
        service: SnapshotService,
        logger: Logger,
        sinks: Sequence[ResultSink] = (),
        clock: Clock = time.monotonic,
        fanout: FanOut | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        notifier: Callable[[], Notifier] | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.fanout = fanout
        self._make_notifier = notifier  # completion events (cbsnap.notify), built on first use
        self._notifier: Notifier | None = None
        self.logger = logger
        self.service_api = service.api_for
        self.sinks: list[ResultSink] = [LogSink(logger), *sinks]
        self._clock = clock
        self._wall_clock = wall_clock

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        stream: IO[str] | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        policy: RetryPolicy | None = None,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> Runtime:
        """Wire the production object graph for ``settings``.

        ``wall_clock`` (aware UTC now) drives expiry and completion-event timeouts;
        tests pass the emulator's state clock.
        """
        wall_clock = wall_clock or (lambda: datetime.now(timezone.utc))
        limiter = rate_limiter_for(settings.rate_limit, clock=clock, sleep=sleep)
        ledger: Ledger = NoLedger()
        horizon = settings.retry_horizon_hours * 3600
        redis_store = _redis_support(settings) if settings.redis_url is not None else None
        if redis_store is not None and settings.redis_url is not None:
            client = redis_store.connect(settings.redis_url.get_secret_value())
            ledger = redis_store.RedisLedger(client, ttl_seconds=int(horizon), sleep=sleep, clock=clock)
            if settings.rate_limit > 0:
                limiter = redis_store.RedisRateLimiter(client, settings.rate_limit, clock=clock, sleep=sleep)
        apis = cbs_apis(settings, limiter, policy=policy, sleep=sleep)
        service = SnapshotService(
            apis,
            region=settings.region,
            concurrency=settings.concurrency,
            policy=policy,
            ledger=ledger,
            horizon_seconds=horizon,
            sleep=sleep,
            clock=clock,
        )
        redactor = Redactor(settings.secrets())
        logger = make_logger(settings.service_name, redactor, stream=stream or sys.stdout)
        # Always present: a request may name a replyTo even when nothing is configured.
        # It costs nothing until a message is sent (the TDMQ client is built lazily).
        tdmq = tdmq_apis(settings, limiter, policy=policy, sleep=sleep)
        fanout: FanOut | None = None
        if settings.fanout_queue or settings.fanout_topic:
            from cbsnap.fanout import FanOut, FanOutTarget

            fanout = FanOut(
                tdmq,
                FanOutTarget(settings.region, queue=settings.fanout_queue, topic=settings.fanout_topic),
                threshold=settings.fanout_threshold,
                chunk_size=settings.fanout_chunk,
            )
        queue_sink = QueueSink(
            tdmq,
            region=settings.region,
            queue=settings.result_queue,
            topic=settings.result_topic,
            logger=logger,
            redactor=redactor,
            fallback_budget=settings.request_timeout,
            clock=clock,
        )

        def make_notifier() -> Notifier:
            # completion events: re-checks on the work queue, events claimed in the ledger.
            # Built (and imported) on first use: most requests never ask for events.
            from cbsnap.notify import Notifier

            return Notifier(
                apis,
                tdmq,
                ledger,
                region=settings.region,
                queue=settings.fanout_queue,
                logger=logger,
                delay=settings.notify_delay,
                max_delay=settings.notify_max_delay,
                timeout=settings.notify_timeout,
                claim_ttl=int(settings.notify_timeout + horizon),
                grace_seconds=settings.safety_margin_ms / 2000.0,
                clock=clock,
                wall_clock=wall_clock,
            )

        return cls(
            settings,
            service=service,
            logger=logger,
            sinks=[queue_sink],
            clock=clock,
            fanout=fanout,
            wall_clock=wall_clock,
            notifier=make_notifier,
        )

    @property
    def notifier(self) -> Notifier | None:
        """The completion-event notifier, built on first use (None when not wired)."""
        if self._notifier is None and self._make_notifier is not None:
            self._notifier = self._make_notifier()
        return self._notifier

    def deadline_for(self, context: Any) -> Deadline:
        """The deadline of the invocation whose SCF context this is."""
        ctx = InvocationContext.from_scf(context)
        return Deadline.for_invocation(ctx, self.settings.safety_margin_ms, self._clock)

    def run(self, document: Any, meta: RequestMeta, deadline: Deadline) -> Outcome:
        """Validate ``document``, snapshot its disks, deliver the results to every sink.

        Never raises for bad input or cloud failures: every disk ends with a result.
        """
        parsed = parse_request(document)
        meta = replace(meta, reply_to=parsed.reply_to, correlation=parsed.correlation)
        if parsed.idempotency_key is not None:
            # An explicit key names the request whatever carried it (timer, queue, webhook).
            meta = replace(meta, request_key=f"key/{parsed.idempotency_key}", key_is_fresh=False)
        default_days = self.settings.default_retain_days(meta.trigger)
        parsed.expires_at, problem = expires_at(parsed, default_days, self._wall_clock())
        if parsed.deadline is None and parsed.retain_days is None and default_days:
            parsed.retain_days = default_days  # so fan-out chunks keep the trigger's default
        if problem is not None:
            parsed.reject_all_targets(problem)
        try:
            if parsed.action == "prune":  # retention janitor alone, no CreateSnapshot (cbsnap.janitor)
                resolution = self.service.resolve(parsed, deadline)
                outcome = Outcome(self.service.janitor.prune(parsed, resolution, deadline, document=document))
            else:
                outcome = self._execute(parsed, meta, deadline)
        except ConfigurationError as exc:
            outcome = _configuration_failure(parsed, f"configuration: {exc}")
        stamp: dict[str, Any] = {}
        if meta.message_id is not None:
            stamp["messageId"] = meta.message_id
        if meta.correlation is not None:
            stamp["correlation"] = meta.correlation
        if stamp:
            outcome.results = [r.model_copy(update=stamp) for r in outcome.results]
        outcome.meta = meta
        outcome.delivery = self.deliver(outcome.results, meta, deadline)
        # -- completion events: the first re-check goes on the work queue (cbsnap.notify) --
        if parsed.notify == "completed" and not parsed.dry_run and self.notifier is not None:
            outcome.delivery.extend(self.notifier.schedule(outcome.results, meta, deadline))
        return outcome

    def recheck(self, document: Any, meta: RequestMeta, deadline: Deadline) -> Outcome:
        """Answer a completion re-check from the work queue (``{"cbsnapRecheck": …}``, cbsnap.notify).

        Emits the events that are due to the original request's sinks and re-schedules
        the rest. A malformed re-check is one 9003 result. The outcome's ``unscheduled``
        (a :class:`~cbsnap.notify.RecheckOutcome`) names snapshots whose next re-check
        could not be sent: the message handler then raises so the platform redelivers.
        """
        from cbsnap.notify import parse_recheck

        recheck = parse_recheck(document)
        if isinstance(recheck, str):
            return self.reject(recheck, meta)
        if self.notifier is None:
            return self.reject("re-check message: completion events are not wired in this runtime", meta)
        return self.notifier.recheck(recheck, meta, deadline, self.deliver)

    def _execute(self, parsed: ParsedRequest, meta: RequestMeta, deadline: Deadline) -> Outcome:
        """Resolve the disks, then plan (dry run), fan out (too many disks) or snapshot."""
        resolution = self.service.resolve(parsed, deadline)
        # Each optional path imports its module only when a request takes it (cold starts).
        if parsed.dry_run:
            from cbsnap.plan import Planner

            return Planner(self.service).plan(parsed, resolution, meta, deadline)
        if parsed.consistent:
            from cbsnap.groups import ConsistentGroups

            return ConsistentGroups(self.service).snapshot(parsed, resolution, meta, deadline)
        if self.fanout is not None and self.fanout.should_split(resolution):
            outcome = self.fanout.dispatch(parsed, resolution, meta, deadline)
            self.logger.info(
                "fanout.dispatched", extra={"request_key": meta.request_key, **(outcome.fanout or {})}
            )
            return outcome
        return self.service.snapshot(parsed, resolution, meta, deadline)

    def reject(self, problem: str, meta: RequestMeta) -> Outcome:
        """Report an event that carried no usable request (one 9003 result), without raising."""
        result = SnapshotResult.failure(None, None, SeedCode.INVALID_PARAMETER, problem)
        if meta.message_id is not None:
            result = result.model_copy(update={"messageId": meta.message_id})
        outcome = Outcome([result], meta=meta)
        outcome.delivery = self.deliver(outcome.results, meta)
        return outcome

    def deliver(
        self, results: Sequence[SnapshotResult], meta: RequestMeta, deadline: Deadline | None = None
    ) -> list[DeliveryReport]:
        """Hand results to every sink; a failing sink is logged, reported, and the others still run.

        Sinks that send (the queue sink) may use the invocation's ``deadline`` plus half the
        safety margin: the snapshot work stops at the deadline, and the rest of the margin is
        kept for logging and returning the response.
        """
        if deadline is not None:
            grace = self.settings.safety_margin_ms / 2000.0
            deliver_by = Deadline.after(deadline.remaining() + grace, self._clock)
            meta = replace(meta, extra={**meta.extra, DELIVER_BY: deliver_by})
        reports: list[DeliveryReport] = []
        for sink in self.sinks:
            try:
                reports.extend(sink.emit(results, meta))
            except Exception as exc:  # a sink must never lose the results for the others
                self.logger.exception("sink.failed", extra={"sink": type(sink).__name__})
                reports.append(DeliveryReport(sink=type(sink).__name__, ok=False, message=str(exc)[:300]))
        return reports


def _redis_support(settings: Settings) -> ModuleType | None:
    """:mod:`cbsnap.redis_store`, or None when the package was built without redis.

    Imported only when CBSNAP_REDIS_URL is set: most functions never pay for the
    client. Without the package every guarantee still holds (tag lookups), so a
    missing extra is a loud warning, not a failure.
    """
    try:
        from cbsnap import redis_store
    except ImportError:
        logging.getLogger("cbsnap").warning(
            "CBSNAP_REDIS_URL is set but the redis package is not installed "
            "(build with scripts/build.sh --extra redis); continuing without Redis"
        )
        return None
    return redis_store


def _configuration_failure(parsed: ParsedRequest, message: str) -> Outcome:
    placed = parsed.placed_rejections()
    placed.extend(
        (t.position, SnapshotResult.failure(t.disk_id, t.snapshot_name, SeedCode.INTERNAL_ERROR, message))
        for t in parsed.targets
    )
    placed.sort(key=lambda pair: pair[0])
    return Outcome(results=[result for _, result in placed])


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()
RuntimeFactory = Callable[[], Runtime]


def get_runtime() -> Runtime:
    """The process's runtime, built from the environment on first use."""
    global _runtime  # noqa: PLW0603 - one per SCF container, by design
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime.from_settings(get_settings())
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Install ``runtime`` for the handlers (None: rebuild from the environment on next use)."""
    global _runtime  # noqa: PLW0603
    with _runtime_lock:
        _runtime = runtime
