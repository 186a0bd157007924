"""One metrics record per invocation: a fixed, documented schema on one JSON log line.

Tencent's custom-metrics API (``PutMonitorData``) is retired, so cbsnap's numbers travel the way
its results do: as a log line on stdout, which SCF ships to CLS, where alarms query it
(docs/alarms.md has ready definitions). Every handler is wrapped in :func:`metered`; whatever
the trigger and however the invocation ends (an answer, a redelivery request, an exception),
exactly one line is written, after everything else::

    {"level": "INFO", "message": "cbsnap.metrics", "type": "cbsnap.metrics", "schema": 1,
     "trigger": "timer", "requestKey": "timer/nightly/2026-11-28T02:00:00Z", "requests": 1,
     "disks": 3, "created": 2, "adopted": 0, "failed": {"16005": 1}, "failedTotal": 1,
     "notAttempted": 0, "coverage": {"ok": 0, "stale": 0, "none": 0, "stuck": 0},
     "stuckSnapshots": 0, "throttled": 0, "calls": {"DescribeDisks": 1, "CreateSnapshot": 3},
     "callsTotal": 4, "durationMs": 812, "redelivery": false, "error": null, …}

API calls are counted where they are made (:meth:`cbsnap.client.SignedApi._call` reports every
attempt sent, and whether the cloud answered ``RequestLimitExceeded``) into the *tallies*
active in the caller's context; :class:`cbsnap.workers.Workers` runs work in a copy of that
context, so calls from worker threads are counted too. A use case can open its own tally
(:func:`counting`) to state its call count, as the coverage report does.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from cbsnap.models import REPORT_ACTION

if TYPE_CHECKING:
    from cbsnap.models import SnapshotResult

METRICS_TYPE = "cbsnap.metrics"
SCHEMA_VERSION = 1
COVERAGE_STATUSES = ("ok", "stale", "none", "stuck")
# Results that say what *would* happen, not what did: never a failure of the run.
_NOT_RUN_ACTIONS = frozenset({"plan"})

H = TypeVar("H", bound=Callable[..., Any])


class CallTally:
    """API calls by action, and how many were answered ``RequestLimitExceeded`` (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self.throttled = 0

    def add(self, action: str, *, throttled: bool) -> None:
        """Count one attempt of ``action``."""
        with self._lock:
            self.calls[action] = self.calls.get(action, 0) + 1
            if throttled:
                self.throttled += 1

    @property
    def total(self) -> int:
        """Every call counted so far."""
        with self._lock:
            return sum(self.calls.values())

    def by_action(self) -> dict[str, int]:
        """A copy of the counts, actions sorted."""
        with self._lock:
            return dict(sorted(self.calls.items()))


_tallies: ContextVar[tuple[CallTally, ...]] = ContextVar("cbsnap_call_tallies", default=())


def record_call(action: str, *, throttled: bool = False) -> None:
    """Count one API call in every tally active in this context (cheap when none is)."""
    for tally in _tallies.get():
        tally.add(action, throttled=throttled)


@contextmanager
def counting() -> Iterator[CallTally]:
    """Count the API calls made inside the ``with`` block (and its worker threads)."""
    tally = CallTally()
    token = _tallies.set((*_tallies.get(), tally))
    try:
        yield tally
    finally:
        _tallies.reset(token)


class InvocationMetrics:
    """What one invocation did, accumulated from the outcomes it produced."""

    def __init__(self, trigger: str) -> None:
        self.trigger = trigger
        self.tally = CallTally()
        self.request_keys: list[str] = []
        self._lock = threading.Lock()
        self.disks: set[str] = set()
        self.created = 0
        self.adopted = 0
        self.failed: dict[str, int] = {}
        self.not_attempted = 0
        self.coverage = dict.fromkeys(COVERAGE_STATUSES, 0)
        self.stuck_snapshots = 0

    def observe(self, results: Sequence[SnapshotResult], request_key: str) -> None:
        """Count one request's results (see docs/alarms.md for what counts as what)."""
        with self._lock:
            if request_key not in self.request_keys:
                self.request_keys.append(request_key)
            for result in results:
                if result.storageId:
                    self.disks.add(result.storageId)
                if result.action == REPORT_ACTION:
                    if result.status in self.coverage:
                        self.coverage[result.status] += 1
                    self.stuck_snapshots += len(result.stuckSnapshotIds or ())
                if not result.attempted:
                    self.not_attempted += 1
                elif result.ok:
                    if result.action is None:
                        if result.adopted:
                            self.adopted += 1
                        else:
                            self.created += 1
                elif result.action not in _NOT_RUN_ACTIONS:
                    code = str(result.code)
                    self.failed[code] = self.failed.get(code, 0) + 1

    def record(self, *, duration_ms: int, redelivery: bool, error: str | None) -> dict[str, Any]:
        """The metrics record: the same keys, in the same order, for every trigger."""
        with self._lock:
            return {
                "type": METRICS_TYPE,
                "schema": SCHEMA_VERSION,
                "trigger": self.trigger,
                "requestKey": self.request_keys[0] if self.request_keys else None,
                "requests": len(self.request_keys),
                "disks": len(self.disks),
                "created": self.created,
                "adopted": self.adopted,
                "failed": dict(sorted(self.failed.items())),
                "failedTotal": sum(self.failed.values()),
                "notAttempted": self.not_attempted,
                "coverage": dict(self.coverage),
                "stuckSnapshots": self.stuck_snapshots,
                "throttled": self.tally.throttled,
                "calls": self.tally.by_action(),
                "callsTotal": self.tally.total,
                "durationMs": duration_ms,
                "redelivery": redelivery,
                "error": error,
            }


_current: ContextVar[InvocationMetrics | None] = ContextVar("cbsnap_invocation_metrics", default=None)


def observe(results: Sequence[SnapshotResult], request_key: str) -> None:
    """Count a request's results in the invocation being served (no-op outside one)."""
    metrics = _current.get()
    if metrics is not None:
        metrics.observe(results, request_key)


def metered(trigger: str, *, clock: Callable[[], float] = time.monotonic) -> Callable[[H], H]:
    """Wrap an SCF handler so that every invocation logs one metrics record when it ends.

    The record is written after the handler's own log lines, also when it raises (a
    redelivery request sets ``redelivery``; any other exception names itself in ``error``),
    and the exception is re-raised unchanged.
    """

    def wrap(handler: H) -> H:
        @functools.wraps(handler)
        def metered_handler(*args: Any, **kwargs: Any) -> Any:
            from cbsnap.errors import RedeliveryRequested

            metrics = InvocationMetrics(trigger)
            started = clock()
            current = _current.set(metrics)
            tallies = _tallies.set((*_tallies.get(), metrics.tally))
            redelivery, error = False, None
            try:
                return handler(*args, **kwargs)
            except RedeliveryRequested:
                redelivery = True
                raise
            except BaseException as exc:
                error = type(exc).__name__
                raise
            finally:
                _tallies.reset(tallies)
                _current.reset(current)
                duration_ms = max(0, round((clock() - started) * 1000))
                emit(metrics.record(duration_ms=duration_ms, redelivery=redelivery, error=error))

        return metered_handler  # type: ignore[return-value]

    return wrap


def emit(record: dict[str, Any]) -> None:
    """Write ``record`` through the runtime's log (whatever its level), or bare to stdout when
    the runtime itself could not be built (the line must not be lost with the invocation)."""
    try:
        from cbsnap.runtime import get_runtime

        logger = get_runtime().logger
    except Exception:  # no runtime (bad configuration): the record still goes out
        print(json.dumps({"level": "INFO", "message": METRICS_TYPE, **record}), file=sys.stdout)
        return
    logger.always(METRICS_TYPE, extra=record)
