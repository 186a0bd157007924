"""The composition root: builds the object graph from settings once per process (an SCF
container). It only wires; the work is :class:`~cbsnap.pipeline.Pipeline`'s.

Handlers call :func:`get_runtime`; tests and the CLI build a :class:`Runtime` with their
own settings, stream and sleep and install it with :func:`set_runtime`. Each runtime owns
its logger (:mod:`cbsnap.logs`): two runtimes in one process share nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar

from cbsnap.cbs import CbsApi
from cbsnap.client import RetryPolicy, SignedApi, SignedCbsApi, make_sdk_client
from cbsnap.idempotent import IdempotentCreator
from cbsnap.ledger import Ledger, NoLedger
from cbsnap.logs import Log
from cbsnap.lookup import KeyedLookup
from cbsnap.pacing import RateLimiter, Sleep, rate_limiter_for
from cbsnap.pipeline import Pipeline
from cbsnap.queue_sink import QueueSink
from cbsnap.scf import Clock, Deadline, FunctionRef, InvocationContext, current_function
from cbsnap.selfinvoke import InvokeChunkTransport, SelfInvoker
from cbsnap.settings import Settings, get_settings
from cbsnap.sinks import LogSink, Redactor
from cbsnap.workers import Workers

A = TypeVar("A")

if TYPE_CHECKING:
    from cbsnap.copies import Copier
    from cbsnap.fanout import FanOut
    from cbsnap.notify import Notifier
    from cbsnap.scf_api import ScfApi
    from cbsnap.tat import TatApi
    from cbsnap.tdmq import TdmqApi


class PerRegion(Generic[A]):
    """One API client per region (one SDK client, one HTTP session), built on first use."""

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


class Runtime:
    """Settings, the logger, the pipeline and the API clients of one process."""

    def __init__(
        self,
        settings: Settings,
        *,
        pipeline: Pipeline,
        logger: Log,
        cbs: Callable[[str], CbsApi],
        ledger: Ledger,
        limiter: RateLimiter,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.logger = logger
        self.cbs = cbs
        self._ledger = ledger
        self._limiter = limiter
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
        wall_clock: Callable[[], datetime] | None = None,
    ) -> Runtime:
        """Wire the production object graph for ``settings``.

        ``wall_clock`` (aware UTC now) drives expiry, retention and completion-event
        timeouts; tests pass the emulator's state clock.
        """
        now = wall_clock or (lambda: datetime.now(timezone.utc))
        redactor = Redactor(settings.secrets())
        logger = Log(settings.service_name, redactor, stream=stream, level=settings.log_level)
        limiter, ledger = _shared_state(settings, logger, clock=clock, sleep=sleep)
        cbs: PerRegion[CbsApi] = PerRegion(
            lambda region: SignedCbsApi(
                make_sdk_client(settings, region),
                region=region,
                rate_limiter=limiter,
                policy=policy,
                sleep=sleep,
            )
        )
        tdmq = tdmq_apis(settings, limiter, policy=policy, sleep=sleep)
        tat = lazy_apis(_tat, settings, limiter, policy=policy, sleep=sleep)
        invoker = SelfInvoker(
            lazy_apis(scf_module, settings, limiter, policy=policy, sleep=sleep),
            region=settings.region,
            target=FunctionRef.parse(settings.fanout_function) if settings.fanout_function else None,
        )
        queue_sink = QueueSink(
            tdmq,
            region=settings.region,
            queue=settings.result_queue,
            topic=settings.result_topic,
            logger=logger,
            redactor=redactor,
        )
        horizon = settings.retry_horizon_hours * 3600
        copiers: list[Copier] = []

        def make_copier() -> Copier:
            # cross-region copies, built (and the Tag API wired) on first use: one per process
            if not copiers:
                from cbsnap.copies import Copier
                from cbsnap.tags import tag_apis

                tags = tag_apis(settings, limiter, policy=policy, sleep=sleep)
                copiers.append(Copier(cbs, tags, logger=logger, wall_clock=now))
            return copiers[0]

        def make_notifier() -> Notifier:
            # completion events, built (and imported) on first use: most requests never ask
            from cbsnap.notify import Notifier

            return Notifier(
                cbs,
                invoker.send,
                ledger,
                region=settings.region,
                logger=logger,
                poll_seconds=settings.notify_poll,
                max_wait_seconds=settings.notify_max_wait,
                claim_ttl=int(settings.notify_max_wait + horizon),
                sleep=sleep,
                clock=clock,
                wall_clock=now,
                copier=make_copier,
            )

        pipeline = Pipeline(
            cbs,
            region=settings.region,
            sinks=[LogSink(logger), queue_sink],
            logger=logger,
            lookup=KeyedLookup(horizon_seconds=horizon, wall_clock=lambda: now().timestamp()),
            creator=IdempotentCreator(policy, sleep=sleep),
            ledger=ledger,
            parallel=Workers(settings.concurrency),
            fanout=_fanout(settings, invoker),
            notifier=make_notifier,
            copier=make_copier,
            tat=tat,
            sleep=sleep,
            default_retain_days=settings.default_retain_days,
            pace=limiter.limit_to,
            delivery_grace=settings.safety_margin_ms / 2000.0,
            clock=clock,
            wall_clock=now,
        )
        return cls(
            settings, pipeline=pipeline, logger=logger, cbs=cbs, ledger=ledger, limiter=limiter, clock=clock
        )

    def begin_invocation(self, context: Any) -> Deadline:
        """Start serving one SCF invocation: its deadline, and its request id on every log record."""
        ctx = InvocationContext.from_scf(context)
        deadline = Deadline.for_invocation(ctx, self.settings.safety_margin_ms, self._clock)
        self.logger.begin_invocation(ctx.request_id)
        self._ledger.begin_invocation(deadline)
        self._limiter.limit_to(None)  # a chunk's narrower share ends with its invocation
        current_function.set(FunctionRef.running(ctx) if ctx.function_name != "local" else None)
        return deadline


def _shared_state(
    settings: Settings, logger: Log, *, clock: Clock, sleep: Sleep
) -> tuple[RateLimiter, Ledger]:
    """The rate limiter and the ledger: Redis-backed when configured, in-process otherwise."""
    limiter = rate_limiter_for(settings.rate_limit, clock=clock, sleep=sleep)
    if settings.redis_url is None:
        return limiter, NoLedger()
    store = _redis_support(logger)
    if store is None:
        return limiter, NoLedger()
    client = store.connect(settings.redis_url.get_secret_value())
    health = store.RedisHealth(warn=logger.warning)
    ttl = int(settings.retry_horizon_hours * 3600)
    ledger = store.RedisLedger(client, ttl_seconds=ttl, health=health, sleep=sleep, clock=clock)
    if settings.rate_limit > 0:
        limiter = store.RedisRateLimiter(client, settings.rate_limit, health=health, clock=clock, sleep=sleep)
    return limiter, ledger


S = TypeVar("S", bound=SignedApi)
ApiModule = tuple[Callable[[Settings, str], Any], type[S]]  # (SDK client factory, wrapper class)


def lazy_apis(
    load: Callable[[], ApiModule[S]],
    settings: Settings,
    limiter: RateLimiter,
    *,
    policy: RetryPolicy | None = None,
    sleep: Sleep = time.sleep,
) -> PerRegion[S]:
    """The paced, retrying client of each region, its module (and SDK) imported on first use.

    ``load`` imports the wrapper module — and with it an SDK: the TDMQ models alone are 1.3 MB — only
    when a region's client is first needed, so invocations that never send, invoke or run a command
    don't pay for it.
    """

    def build(region: str) -> S:
        make_client, api = load()
        client = make_client(settings, region)
        return api(client, region=region, rate_limiter=limiter, policy=policy, sleep=sleep)

    return PerRegion(build)


def _tdmq() -> ApiModule[TdmqApi]:
    from cbsnap import tdmq

    return tdmq.make_tdmq_client, tdmq.TdmqApi


def _tat() -> ApiModule[TatApi]:
    from cbsnap import tat

    return tat.make_tat_client, tat.TatApi


def scf_module() -> ApiModule[ScfApi]:
    """The SCF wrapper (``Invoke`` for cbsnap's self-invocations), imported on first use."""
    from cbsnap import scf_api

    return scf_api.make_scf_client, scf_api.ScfApi


def tdmq_apis(
    settings: Settings, limiter: RateLimiter, *, policy: RetryPolicy | None = None, sleep: Sleep = time.sleep
) -> PerRegion[TdmqApi]:
    """The TDMQ (CMQ) client of each region, built on the first message sent (the result sinks)."""
    return lazy_apis(_tdmq, settings, limiter, policy=policy, sleep=sleep)


def _fanout(settings: Settings, invoker: SelfInvoker) -> FanOut:
    """Fan-out of large requests, by asynchronous self-invocation."""
    from cbsnap.fanout import FanOut

    return FanOut(
        InvokeChunkTransport(invoker),
        threshold=settings.fanout_threshold,
        chunk_size=settings.fanout_chunk,
        rate_limit=settings.rate_limit,
    )


def _redis_support(logger: Log) -> ModuleType | None:
    """:mod:`cbsnap.redis_store`, or None when the package was built without redis.

    Imported only when CBSNAP_REDIS_URL is set: most functions never pay for the
    client. Without the package every guarantee still holds (tag lookups), so a
    missing extra is a loud warning, not a failure.
    """
    try:
        from cbsnap import redis_store
    except ImportError:
        logger.warning(
            "CBSNAP_REDIS_URL is set but the redis package is not installed "
            "(build with scripts/build.sh --extra redis); continuing without Redis"
        )
        return None
    return redis_store


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


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
