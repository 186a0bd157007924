"""The composition root: builds the object graph from settings once per process
(an SCF container) and runs one request through it.

Handlers call :func:`get_runtime`; tests and the CLI build a :class:`Runtime`
with their own settings, stream and sleep and install it with :func:`set_runtime`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import IO, Any

from aws_lambda_powertools import Logger

from cbsnap.client import CbsApi, RetryPolicy, make_sdk_client
from cbsnap.codes import SeedCode
from cbsnap.errors import ConfigurationError
from cbsnap.models import ParsedRequest, SnapshotResult, parse_request
from cbsnap.pacing import RateLimiter, Sleep, rate_limiter_for
from cbsnap.scf import Clock, Deadline, InvocationContext
from cbsnap.settings import Settings, get_settings
from cbsnap.sinks import DeliveryReport, LogSink, Redactor, RequestMeta, ResultSink, make_logger
from cbsnap.snapshots import Outcome, SnapshotService


class ApiCache:
    """One :class:`CbsApi` (one SDK client, one HTTP session) per region, built on first use."""

    def __init__(
        self,
        settings: Settings,
        limiter: RateLimiter,
        *,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._settings = settings
        self._limiter = limiter
        self._policy = policy
        self._sleep = sleep
        self._apis: dict[str, CbsApi] = {}
        self._lock = threading.Lock()

    def __call__(self, region: str) -> CbsApi:
        with self._lock:
            api = self._apis.get(region)
            if api is None:
                api = CbsApi(
                    make_sdk_client(self._settings, region),
                    region=region,
                    rate_limiter=self._limiter,
                    policy=self._policy,
                    sleep=self._sleep,
                )
                self._apis[region] = api
            return api


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
    ) -> None:
        self.settings = settings
        self.service = service
        self.logger = logger
        self.service_api = service.api_for
        self.sinks: list[ResultSink] = [LogSink(logger), *sinks]
        self._clock = clock

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        stream: IO[str] | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        policy: RetryPolicy | None = None,
    ) -> Runtime:
        """Wire the production object graph for ``settings``."""
        limiter = rate_limiter_for(settings.rate_limit, clock=clock, sleep=sleep)
        apis = ApiCache(settings, limiter, policy=policy, sleep=sleep)
        service = SnapshotService(
            apis,
            region=settings.region,
            concurrency=settings.concurrency,
            policy=policy,
            sleep=sleep,
        )
        logger = make_logger(settings.service_name, Redactor(settings.secrets()), stream=stream or sys.stdout)
        return cls(settings, service=service, logger=logger, clock=clock)

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
        try:
            outcome = self.service.execute(parsed, meta, deadline)
        except ConfigurationError as exc:
            outcome = _configuration_failure(parsed, f"configuration: {exc}")
        if meta.message_id is not None:
            outcome.results = [r.model_copy(update={"messageId": meta.message_id}) for r in outcome.results]
        outcome.delivery = self.deliver(outcome.results, meta)
        return outcome

    def reject(self, problem: str, meta: RequestMeta) -> Outcome:
        """Report an event that carried no usable request (one 9003 result), without raising."""
        result = SnapshotResult.failure(None, None, SeedCode.INVALID_PARAMETER, problem)
        if meta.message_id is not None:
            result = result.model_copy(update={"messageId": meta.message_id})
        outcome = Outcome([result])
        outcome.delivery = self.deliver(outcome.results, meta)
        return outcome

    def deliver(self, results: Sequence[SnapshotResult], meta: RequestMeta) -> list[DeliveryReport]:
        """Hand results to every sink; a failing sink is logged, reported, and the others still run."""
        reports: list[DeliveryReport] = []
        for sink in self.sinks:
            try:
                reports.extend(sink.emit(results, meta))
            except Exception as exc:  # a sink must never lose the results for the others
                self.logger.exception("sink.failed", extra={"sink": type(sink).__name__})
                reports.append(DeliveryReport(sink=type(sink).__name__, ok=False, message=str(exc)[:300]))
        return reports


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
