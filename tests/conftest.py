"""Shared fixtures: a real emulator on loopback, settings and a runtime pointed at it.

Every test that involves the cloud goes through the real SDK, over real HTTP,
with real TC3 signatures that the emulator verifies. Nothing is patched.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from cbsnap.client import RetryPolicy
from cbsnap.runtime import Runtime, set_runtime
from cbsnap.settings import Endpoint, Settings
from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator, load_seed

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"

# Quick retries so fault tests take milliseconds, same shape as production.
FAST_POLICY = RetryPolicy(base_delay=0.01, max_delay=0.05, throttle_base_delay=0.01, throttle_max_delay=0.05)


def load_event(name: str) -> Any:
    """A sample event from the top-level events/ directory."""
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def timer_event(document: Any, *, name: str = "t1", time: str = "2026-11-28T02:00:00Z") -> dict[str, Any]:
    """An SCF timer event whose Message is ``document`` (JSON text as given, else serialised)."""
    message = document if isinstance(document, str) else json.dumps(document)
    return {"Type": "Timer", "TriggerName": name, "Time": time, "Message": message}


def run_timer(document: Any, *, name: str = "t1", time: str = "2026-11-28T02:00:00Z") -> dict[str, Any]:
    """Fire the timer handler once with ``document`` (the runtime installed by the test)."""
    from handlers.timer import main_handler

    response: dict[str, Any] = main_handler(timer_event(document, name=name, time=time), scf_context())
    return response


def ckafka_event(
    *bodies: Any, topic: str = "cbsnap-requests", partition: int = 0, start: int = 1
) -> dict[str, Any]:
    """A CKafka trigger event with one record per body (JSON-encoded unless already text).

    The records sit at offsets ``start``, ``start + 1`` … of ``topic``/``partition``: their
    message ids are ``"<topic>/<partition>/<offset>"`` (see :func:`ckafka_id`) and their
    request keys ``ckafka/<message id>``, the same on every redelivery of the event.
    """
    records = []
    for offset, body in enumerate(bodies, start=start):
        text = body if isinstance(body, str) else json.dumps(body)
        record = {"topic": topic, "partition": partition, "offset": offset, "msgKey": "None", "msgBody": text}
        records.append({"Ckafka": record})
    return {"Records": records}


def ckafka_id(offset: int, *, topic: str = "cbsnap-requests", partition: int = 0) -> str:
    """The message id :func:`ckafka_event` gives the record at ``offset``."""
    return f"{topic}/{partition}/{offset}"


# The request documents of the retired CMQ trigger's sample (events/cmq.json, deleted with the
# trigger): a single disk with its own name, and a list with a per-disk name and a tag. The tests
# that delivered that sample send the same documents as CKafka records.
SAMPLE_REQUESTS = (
    {"storageId": "disk-g73hhs4o", "snapshotName": "mySnap"},
    {
        "disks": ["disk-q7m3x9ab", {"storageId": "disk-w9f4h1sz", "snapshotName": "db"}],
        "snapshotName": "from-queue",
        "tags": {"team": "ops"},
    },
)


def answer(handler: Any, event: Any, context: Any = None) -> tuple[dict[str, Any], bool]:
    """A handler's response, and whether it asked the platform for a redelivery.

    A handler with unfinished disks raises :class:`~cbsnap.errors.RedeliveryRequested`
    after logging every result; the exception carries the response SCF would discard.
    """
    from cbsnap.errors import RedeliveryRequested

    try:
        response: dict[str, Any] = handler(event, scf_context() if context is None else context)
    except RedeliveryRequested as exc:
        assert exc.response is not None, "a redelivery request carries the results"
        return exc.response, True
    return response, False


def scf_context(timeout_ms: int = 30_000) -> dict[str, Any]:
    """An SCF-shaped dict context."""
    return {
        "memory_limit_in_mb": 128,
        "time_limit_in_ms": timeout_ms,
        "request_id": "test-request-id",
        "function_name": "cbsnap-test",
        "function_version": "$LATEST",
        "namespace": "default",
        "tencentcloud_region": "ap-guangzhou",
    }


# Test disks added to the demo seed (which already holds disk-g73hhs4o, the seed
# page's example disk, with one foreign snapshot on it).
DISKS = {
    "disk-lzrg2pwi": {},
    "disk-aaaaaaa1": {},
    "disk-aaaaaaa2": {},
    "disk-nosnap01": {"snapshot_ability": False},
}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator: the demo's seed (the disks the sample events name) plus a few
    test disks; snapshots take 1 s to finish."""
    emu = Emulator(load_seed(None), creation_seconds=1.0, rng_seed=7)
    for disk_id, extra in DISKS.items():
        emu.add_disk(disk_id, **extra)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


def owned_snapshots(emu: Emulator, disk_id: str) -> list[dict[str, Any]]:
    """The disk's snapshots that cbsnap made (they carry its owner tag)."""
    return [s for s in emu.snapshots(disk_id) if any(t["Key"] == "cbsnap:owner" for t in s.get("Tags") or [])]


def emulator_settings(emu: Emulator, **overrides: Any) -> Settings:
    """Settings pointing at ``emu`` with its credentials."""
    values: dict[str, Any] = {
        "secret_id": DEFAULT_SECRET_ID,
        "secret_key": SecretStr(DEFAULT_SECRET_KEY),
        "endpoint": Endpoint(protocol="http", host=emu.endpoint),
        "region": "ap-guangzhou",
        "safety_margin_ms": 500,
    }
    values.update(overrides)
    return Settings(**values)


class RuntimeHarness:
    """A runtime installed for the handlers, with its log output captured."""

    def __init__(self, settings: Settings, policy: RetryPolicy = FAST_POLICY) -> None:
        self.stream = io.StringIO()
        self.runtime = Runtime.from_settings(settings, stream=self.stream, policy=policy)
        set_runtime(self.runtime)

    def log_records(self) -> list[dict[str, Any]]:
        """Every JSON log line written so far."""
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def harness(emulator: Emulator) -> Iterator[RuntimeHarness]:
    """The production runtime wired to the emulator, installed for the handlers."""
    h = RuntimeHarness(emulator_settings(emulator))
    yield h
    set_runtime(None)


REDIS_URL = os.environ.get("CBSNAP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _worker_redis_url(base: str) -> str:
    """The database this test process may flush: the base URL's (default 15), minus the pytest-xdist
    worker number (``gw1`` → 14) and ``CBSNAP_TEST_REDIS_DB_OFFSET`` (scripts/test.sh gives each Python
    version its own block). Parallel workers each flush their own database, never a neighbour's."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(base)
    path = parts.path.strip("/")
    database = int(path) if path.isdigit() else 0
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    database -= int(worker) if worker.isdigit() else 0
    database -= int(os.environ.get("CBSNAP_TEST_REDIS_DB_OFFSET", "0"))
    if database < 0:
        pytest.fail(f"no Redis database left for this worker under {base}: use fewer workers or a higher one")
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
def redis_url() -> str:
    """The Redis server for tests (database 15, or this worker's under xdist; flushed first).

    Skips with a reason when Redis is absent locally; under CI (CI=true) an
    absent Redis fails the test instead, because .ci/run must have started it.
    """
    import redis

    url = _worker_redis_url(REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"Redis at {url} is required in CI but unreachable: {exc}")
        pytest.skip(f"Redis at {url} is not reachable ({exc}); start redis-server to run this test")
    client.flushdb()
    client.close()
    return url
