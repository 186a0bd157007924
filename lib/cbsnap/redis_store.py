"""Redis-backed ledger and rate limiter (``CBSNAP_REDIS_URL``; TencentDB for Redis in production).

Imported only when Redis is configured. Every Redis failure degrades to the
Redis-less behaviour (which keeps the guarantees, with more API calls) and is
logged once per process, never raised into a snapshot result.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from cbsnap.pacing import LocalRateLimiter, Sleep
from cbsnap.scf import Clock, Deadline

_log = logging.getLogger("cbsnap.redis")

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
        url, socket_timeout=1.0, socket_connect_timeout=1.0, health_check_interval=30
    )
    return client


class _Degraded:
    """Logs the first Redis failure of a process; later ones quietly."""

    def __init__(self) -> None:
        self._warned = False
        self._lock = threading.Lock()

    def note(self, what: str, exc: Exception) -> None:
        with self._lock:
            level = logging.DEBUG if self._warned else logging.WARNING
            self._warned = True
        _log.log(level, "redis unavailable during %s, continuing without it: %s", what, type(exc).__name__)


class RedisLedger:
    """Key → snapshot records and per-key locks in Redis."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_seconds: int,
        lock_seconds: float = 30.0,
        prefix: str = "cbsnap",
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self._redis = client
        self._ttl = max(int(ttl_seconds), 1)
        self._lock_ms = int(lock_seconds * 1000)
        self._prefix = prefix
        self._sleep = sleep
        self._clock = clock
        self._degraded = _Degraded()
        self._unlock: Any = client.register_script(_UNLOCK)

    def recall(self, keys: Sequence[str]) -> dict[str, str]:
        """Recorded snapshot IDs for ``keys`` (one MGET)."""
        if not keys:
            return {}
        try:
            values = self._redis.mget([f"{self._prefix}:snap:{k}" for k in keys])
        except redis.RedisError as exc:
            self._degraded.note("recall", exc)
            return {}
        return {
            k: v.decode() if isinstance(v, bytes) else str(v)
            for k, v in zip(keys, values, strict=True)
            if v is not None
        }

    def record(self, key: str, snapshot_id: str) -> None:
        """Remember the snapshot for the retry horizon."""
        try:
            self._redis.set(f"{self._prefix}:snap:{key}", snapshot_id, ex=self._ttl)
        except redis.RedisError as exc:
            self._degraded.note("record", exc)

    @contextmanager
    def hold(self, key: str, wait_seconds: float) -> Iterator[bool]:
        """Hold ``lock:<key>`` (expires by itself after ``lock_seconds``).

        Yields False when another holder kept it past ``wait_seconds``; yields
        True without a lock when Redis is unreachable (degraded mode).
        """
        name = f"{self._prefix}:lock:{key}"
        token = secrets.token_hex(8)
        give_up = self._clock() + max(wait_seconds, 0.0)
        owned = False
        try:
            while True:
                if self._redis.set(name, token, nx=True, px=self._lock_ms):
                    owned = True
                    break
                if self._clock() >= give_up:
                    break
                self._sleep(0.05)
        except redis.RedisError as exc:
            self._degraded.note("lock", exc)
            yield True
            return
        try:
            yield owned
        finally:
            if owned:
                try:
                    self._unlock(keys=[name], args=[token])
                except redis.RedisError as exc:
                    self._degraded.note("unlock", exc)

    # -- completion events (cbsnap.notify) --
    def claim(self, key: str, ttl_seconds: int) -> bool:
        """``SET claim:<key> NX EX ttl``: True only for the first caller within the TTL.

        Redis unreachable → True (degraded: the event may be emitted twice; its
        ``eventId`` lets consumers drop the duplicate), never an exception.
        """
        try:
            taken = self._redis.set(f"{self._prefix}:claim:{key}", b"1", nx=True, ex=max(int(ttl_seconds), 1))
        except redis.RedisError as exc:
            self._degraded.note("claim", exc)
            return True
        return bool(taken)


class RedisRateLimiter:
    """One pace per action shared by every function instance (GCRA on Redis's clock).

    Falls back to an in-process limiter of the same rate when Redis fails.
    """

    def __init__(
        self,
        client: redis.Redis,
        rate: float,
        *,
        prefix: str = "cbsnap",
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._interval_us = int(1_000_000 / rate)
        self._prefix = prefix
        self._sleep = sleep
        self._fallback = LocalRateLimiter(rate, clock=clock, sleep=sleep)
        self._pace: Any = client.register_script(_PACE)
        self._degraded = _Degraded()

    def acquire(self, action: str, deadline: Deadline) -> bool:
        """Reserve the next shared slot for ``action`` and sleep until it comes."""
        try:
            wait_us = int(self._pace(keys=[f"{self._prefix}:rate:{action}"], args=[self._interval_us]))
        except redis.RedisError as exc:
            self._degraded.note("rate limit", exc)
            return self._fallback.acquire(action, deadline)
        wait = wait_us / 1_000_000
        if wait >= deadline.remaining():
            return False
        if wait > 0:
            self._sleep(wait)
        return True
