"""Redis-backed ledger and rate limiter (``CBSNAP_REDIS_URL``; TencentDB for Redis in production).

Imported only when Redis is configured. Redis is optional, so it must never cost a
snapshot or an invocation's time:

* every operation has a short socket timeout (:data:`SOCKET_TIMEOUT`), and none is
  started with less than :data:`MIN_TIME_LEFT` seconds left in the invocation;
* after the first failure in an invocation (:class:`RedisHealth`), Redis is not used
  again until the next invocation begins: a hung server costs one timeout, not one per call;
* every failure degrades to the Redis-less behaviour (snapshot tags, the in-process
  pacer), which keeps the guarantees with more API calls, and is reported once per
  invocation through the runtime's logger — never raised into a snapshot result.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from cbsnap.pacing import LocalRateLimiter, Sleep
from cbsnap.scf import Clock, Deadline

SOCKET_TIMEOUT = 0.5  # seconds; a healthy in-VPC Redis answers in about a millisecond
MIN_TIME_LEFT = 2 * SOCKET_TIMEOUT + 0.5
LOCK_GRACE_SECONDS = 5.0  # a lock outlives its invocation's deadline by this much, no more
LOCK_WAIT_SECONDS = 2.0  # how long to wait for another delivery's lock before giving up the disk
LOCK_POLL_SECONDS = 0.05

Warn = Callable[[str], None]

# Release a lock only if we still own it.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# GCRA: reserve the next start time for an action on Redis's own clock, so every
# function instance shares one pace; returns how many microseconds to wait.
_PACE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.floor((tat + interval - now) / 1000) + 1000)
return tat - now
"""


def connect(url: str) -> redis.Redis:
    """A client with short timeouts: Redis must never hold a snapshot run hostage."""
    client: redis.Redis = redis.Redis.from_url(
        url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT, health_check_interval=30
    )
    return client


def _quiet(_: str) -> None:
    """The default warning sink: nothing (the runtime passes its logger's warning)."""


class RedisHealth:
    """Whether Redis may be used right now, shared by the ledger and the rate limiter.

    Closed (usable) at the start of every invocation; opened by the first failure, after
    which every caller takes its Redis-less path until the next invocation. Also refuses
    when the invocation has too little time left to wait for a timeout.
    """

    def __init__(self, warn: Warn = _quiet) -> None:
        self._warn = warn
        self._lock = threading.Lock()
        self._failed = False
        self._deadline: Deadline | None = None

    def begin_invocation(self, deadline: Deadline) -> None:
        """Forget an earlier failure; budget Redis time against ``deadline``."""
        with self._lock:
            self._failed = False
            self._deadline = deadline

    @property
    def usable(self) -> bool:
        """True while no operation failed this invocation and enough time is left."""
        with self._lock:
            if self._failed:
                return False
            return self._deadline is None or self._deadline.remaining() >= MIN_TIME_LEFT

    def failed(self, what: str, exc: Exception) -> None:
        """Note a failure: Redis is left alone for the rest of the invocation."""
        with self._lock:
            first = not self._failed
            self._failed = True
        if first:
            self._warn(
                f"redis unavailable during {what} ({type(exc).__name__}); "
                "continuing without it for the rest of this invocation"
            )


class RedisLedger:
    """Key → snapshot records, per-key locks and event claims in Redis (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_seconds: int,
        health: RedisHealth | None = None,
        prefix: str = "cbsnap",
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self._redis = client
        self._ttl = max(int(ttl_seconds), 1)
        self.health = health or RedisHealth()
        self._prefix = prefix
        self._sleep = sleep
        self._clock = clock
        self._unlock: Any = client.register_script(_UNLOCK)

    def begin_invocation(self, deadline: Deadline) -> None:
        """See :meth:`RedisHealth.begin_invocation`."""
        self.health.begin_invocation(deadline)

    def recall(self, keys: Sequence[str]) -> dict[str, str]:
        """Recorded snapshot IDs for ``keys`` (one MGET); nothing when Redis is unusable."""
        if not keys or not self.health.usable:
            return {}
        try:
            values = self._redis.mget([f"{self._prefix}:snap:{k}" for k in keys])
        except redis.RedisError as exc:
            self.health.failed("recall", exc)
            return {}
        return {
            k: v.decode() if isinstance(v, bytes) else str(v)
            for k, v in zip(keys, values, strict=True)
            if v is not None
        }

    def record(self, key: str, snapshot_id: str) -> None:
        """Remember the snapshot for the retry horizon (best effort)."""
        if not self.health.usable:
            return
        try:
            self._redis.set(f"{self._prefix}:snap:{key}", snapshot_id, ex=self._ttl)
        except redis.RedisError as exc:
            self.health.failed("record", exc)

    @contextmanager
    def hold(self, key: str, deadline: Deadline) -> Iterator[bool]:
        """Hold ``lock:<key>`` while the block runs.

        The lock expires :data:`LOCK_GRACE_SECONDS` after ``deadline``: a process killed
        while holding it blocks a redelivery no longer than its own invocation could have
        run. Yields False when another holder kept it past a short wait (the caller
        leaves the disk not attempted, so the platform redelivers); yields True without
        a lock when Redis is unusable (the tags still prevent a duplicate).
        """
        if not self.health.usable:
            yield True
            return
        name = f"{self._prefix}:lock:{key}"
        token = secrets.token_hex(8)
        lifetime_ms = int((deadline.remaining() + LOCK_GRACE_SECONDS) * 1000)
        give_up = self._clock() + min(LOCK_WAIT_SECONDS, deadline.remaining() / 4)
        owned = False
        try:
            while True:
                if self._redis.set(name, token, nx=True, px=max(lifetime_ms, 1)):
                    owned = True
                    break
                if self._clock() >= give_up:
                    break
                self._sleep(LOCK_POLL_SECONDS)
        except redis.RedisError as exc:
            self.health.failed("lock", exc)
            yield True
            return
        try:
            yield owned
        finally:
            if owned and self.health.usable:
                try:
                    self._unlock(keys=[name], args=[token])
                except redis.RedisError as exc:
                    self.health.failed("unlock", exc)

    # -- completion events (cbsnap.notify) --
    def claim(self, key: str, ttl_seconds: int) -> bool:
        """``SET claim:<key> NX EX ttl``: True only for the first caller within the TTL.

        Redis unusable → True (degraded: the event may be emitted twice; its ``eventId``
        lets consumers drop the duplicate), never an exception.
        """
        if not self.health.usable:
            return True
        try:
            taken = self._redis.set(f"{self._prefix}:claim:{key}", b"1", nx=True, ex=max(int(ttl_seconds), 1))
        except redis.RedisError as exc:
            self.health.failed("claim", exc)
            return True
        return bool(taken)


class RedisRateLimiter:
    """One pace per action shared by every function instance (GCRA on Redis's clock).

    Falls back to an in-process limiter of the same rate while Redis is unusable.
    """

    def __init__(
        self,
        client: redis.Redis,
        rate: float,
        *,
        health: RedisHealth | None = None,
        prefix: str = "cbsnap",
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._interval_us = int(1_000_000 / rate)
        self._prefix = prefix
        self._sleep = sleep
        self.health = health or RedisHealth()
        self._fallback = LocalRateLimiter(rate, clock=clock, sleep=sleep)
        self._pace: Any = client.register_script(_PACE)

    def limit_to(self, rate: float | None, phase: float = 0.0) -> None:
        """Only the fallback narrows: the shared pace already counts every instance's calls."""
        self._fallback.limit_to(rate, phase)

    def acquire(self, action: str, deadline: Deadline) -> bool:
        """Reserve the next shared slot for ``action`` and sleep until it comes."""
        if not self.health.usable:
            return self._fallback.acquire(action, deadline)
        try:
            wait_us = int(self._pace(keys=[f"{self._prefix}:rate:{action}"], args=[self._interval_us]))
        except redis.RedisError as exc:
            self.health.failed("rate limit", exc)
            return self._fallback.acquire(action, deadline)
        wait = wait_us / 1_000_000
        if wait >= deadline.remaining():
            return False
        if wait > 0:
            self._sleep(wait)
        return True
