#!/usr/bin/env python
"""Soak test of the at-least-once guarantee: queue events delivered more than once, from
several processes at a time, against a faulty, rate-limited CBS.

One emulator runs in this (the parent) process: snapshots take ``--creation-seconds``
(CBS allows one CREATING snapshot per disk), the API is rate-limited, and faults fire
at random: ``InternalError`` answers, replies lost after the action committed, latency.
N CKafka-trigger events (``events/ckafka.json``: topic, partition, offset), each naming 1-5
of M disks, are delivered once each plus random redeliveries of the same record, some
racing the first delivery from another process, some later. Worker processes
(multiprocessing, spawn) play SCF function instances: each builds its runtime from
environment variables the way SCF would (``CBSNAP_ENDPOINT``, ``TENCENTCLOUD_SECRETID``/
``SECRETKEY``, ``CBSNAP_RATE_LIMIT``, optionally ``CBSNAP_REDIS_URL``) and calls
``handlers.messages.main_handler``. A raised ``RedeliveryRequested`` (any subclass) means
"the platform redelivers": the event is delivered again later. The results an invocation
logged before raising count as reported (SCF ships them to CLS).

Two kinds of trouble can be added to a run with a private Redis (``--own-redis``):

* **kills**: a share of the deliveries have their worker process SIGKILLed as soon as it
  holds a Redis lock of its request (nothing it would have logged is reported); the
  platform redelivers the event and a fresh worker process takes the dead one's place.
  ``--redis-kill-at`` also SIGKILLs the Redis server itself mid-run and restarts it, empty,
  ``--redis-down-seconds`` later;
* **a hang**: the workers reach Redis through a proxy that, from ``--hang-from`` for
  ``--hang-seconds``, answers every operation ``--hang-delay`` seconds late. The slowest
  delivery is measured against the function's time limit.

Then the emulator's state is checked against every result reported. A snapshot carries
``cbsnap:key`` = ``disk_key("ckafka/<topic>/<partition>/<offset>", disk_id)``; for every
(request, disk):

* some delivery reported success → exactly one snapshot has the key, and every success
  reported for the pair carries its ID (else: "duplicates", "lost");
* no delivery reported success → no snapshot has the key (else: "unreported");
* no snapshot has a key that no request could have made ("unknown keys").

Run by hand::

    python tests/soak/soak.py --requests 500 --disks 200 --processes 4 --duplicates 0.3
    python tests/soak/soak.py --redis redis://127.0.0.1:6379/15 --json
    python tests/soak/soak.py --own-redis --kill-share 0.3 --max-kills 6 --redis-kill-at 6 \\
        --timeout-ms 4000 --create-latency 0.3 --max-redeliveries 15
    python tests/soak/soak.py --own-redis --hang-from 2 --hang-seconds 8 --timeout-ms 4000

Every random choice of the plan (requests, disks, duplicates, their timing, which deliveries
are killed) comes from ``--seed``, and so do the emulator's disk IDs and fault draws; the
interleaving of the worker processes is the operating system's. The exit status is 1 when
a guarantee was broken (duplicates, lost, unreported, unknown keys, handler errors).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import asdict, dataclass, field, fields, replace
from multiprocessing import connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
for _path in (str(ROOT / "lib"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from cbsnap.ownership import KEY_TAG, disk_key  # noqa: E402
from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator, Fault  # noqa: E402
from tests.fakes.stalling_proxy import StallingProxy  # noqa: E402

# Entries that fail validation (9003) and must never reach the API.
INVALID_ENTRIES = ("disk-NOT-VALID", "disk-short", {"storageId": "disk-UPPER001"}, 42)
REGION = "ap-guangzhou"
# Failures after which a snapshot may exist: the call may have been committed.
AMBIGUOUS = ("ClientNetworkError", "ServerNetworkError", "InternalError")
QUEUE_TOPIC = "cbsnap-requests"
PARTITIONS = 3
# A delivery still running this long after its time limit is SIGKILLed, as SCF would (the
# slack covers process scheduling on a busy machine; the limit itself is what is reported).
LIMIT_SLACK_SECONDS = 0.5


@dataclass
class SoakConfig:
    """Every knob of one soak run (the command line mirrors it)."""

    requests: int = 500
    disks: int = 200
    processes: int = 4
    max_disks: int = 5  # disks per request: 1..max_disks
    duplicates: float = 0.3  # share of requests redelivered (1 or 2 extra deliveries)
    concurrent: float = 0.5  # share of those redeliveries that race the first delivery
    # A snapshot is CREATING this long (one per disk at a time). Real CBS snapshots take tens of
    # seconds at least; cbsnap relies on "longer than FRESH_LOOK_SECONDS" (2 s), so 3 s is the
    # harshest realistic setting (docs/at-least-once.md).
    creation_seconds: float = 3.0
    api_rate_limit: float = 20.0  # the emulator: requests/s per action
    client_rate_limit: float = 20.0  # CBSNAP_RATE_LIMIT in every worker
    internal_error: float = 0.05  # chance an API call answers InternalError
    lost_reply: float = 0.05  # chance an API call commits and then drops the connection
    latency: float = 0.05  # seconds added to ...
    latency_share: float = 0.2  # ... this share of the API calls
    invalid: float = 0.05  # share of requests that also name an invalid disk entry
    timeout_ms: int = 15_000  # the function's time limit (context.time_limit_in_ms)
    safety_margin_ms: int = 1_000  # CBSNAP_SAFETY_MARGIN_MS
    max_redeliveries: int = 5  # platform redeliveries after RedeliveryRequested (or a kill)
    # The platform redelivers a failed event after a pause (SCF: about a minute for async
    # retries), scaled down: long enough for a snapshot another request is creating on the
    # disk (a 16027, retried since it may pass) to finish.
    redelivery_delay: float = 1.0
    seed: int = 1
    redis: str | None = None  # CBSNAP_REDIS_URL for the workers
    log_dir: str | None = None  # keep each worker's log (stdout → CLS) here
    # -- trouble (0 = off) --
    create_latency: float = 0.0  # seconds every CreateSnapshot takes: a lock stays held that long
    own_redis: bool = False  # start a private redis-server for the run (kills and hangs need one)
    kill_share: float = 0.0  # share of deliveries SIGKILLed once their worker holds a lock of the request
    max_kills: int = 0  # ... at most this many in the run
    redis_kill_at: float = 0.0  # seconds into the run (then mid-invocation) Redis is SIGKILLed ...
    redis_down_seconds: float = 2.0  # ... and restarted, empty, this much later
    hang_from: float = 0.0  # seconds into the run (then mid-invocation) Redis starts to hang ...
    hang_seconds: float = 0.0  # ... for this long ...
    hang_delay: float = 1.0  # ... answering every operation this many seconds late


@dataclass
class Request:
    index: int
    topic: str
    partition: int
    offset: int
    document: dict[str, Any]
    disks: list[str]  # the valid disks named, in order, without repeats

    @property
    def msg_id(self) -> str:
        """The record's identity, as the handler names it (``messageId`` of the results)."""
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def key(self) -> str:
        """The request key the handler derives from the record: stable across redeliveries."""
        return f"ckafka/{self.msg_id}"

    def event(self) -> dict[str, Any]:
        """The CKafka trigger's event for this request (shape of events/ckafka.json)."""
        record = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "msgKey": "None",
            "msgBody": json.dumps(self.document),
        }
        return {"Records": [{"Ckafka": record}]}


@dataclass
class Delivery:
    request: int
    kind: str  # "first", "duplicate" (planned redelivery), "redelivery" (after RedeliveryRequested or a kill)
    concurrent: bool = False  # planned to race another delivery of the same message
    not_before: float = 0.0  # time.monotonic() before which it may not start (redeliveries)


@dataclass
class Report:
    """What a soak run measured."""

    config: dict[str, Any]
    elapsed_seconds: float = 0.0
    requests: int = 0
    pairs: int = 0  # (request, valid disk) pairs
    deliveries: int = 0
    duplicate_deliveries: int = 0  # planned redeliveries of a message
    concurrent_planned: int = 0
    concurrent_measured: int = 0  # deliveries that overlapped another delivery of the same message
    redeliveries: int = 0  # after RedeliveryRequested / a raised error / a kill
    redeliveries_exhausted: int = 0
    exhausted_samples: list[str] = field(default_factory=list)  # what the last deliveries answered
    not_attempted_raised: int = 0  # deliveries that raised RedeliveryRequested (any subclass)
    workers_killed: int = 0  # SIGKILLed while holding a Redis lock of their request
    kills_missed: int = 0  # deliveries chosen for a kill that ended before holding a lock
    redis_kills: int = 0  # the Redis server SIGKILLed (and restarted empty)
    redis_outage_seconds: float = 0.0
    deliveries_during_outage: int = 0  # deliveries overlapping the Redis outage
    hang_seconds: float = 0.0  # how long Redis hung
    redis_stalled_ops: int = 0  # operations the hang delayed
    deliveries_during_hang: int = 0  # deliveries overlapping the hang
    handler_errors: int = 0
    handler_error_samples: list[str] = field(default_factory=list)
    overran_timeout: int = 0  # deliveries that took longer than the function's time limit
    killed_at_limit: int = 0  # ... and were SIGKILLed for it, reporting nothing (as on SCF)
    slowest_delivery_seconds: float = 0.0
    faults_injected: dict[str, int] = field(default_factory=dict)
    throttled_calls: int = 0
    api_calls: dict[str, int] = field(default_factory=dict)
    results_by_code: dict[str, int] = field(default_factory=dict)
    failure_samples: dict[str, str] = field(default_factory=dict)  # code → one message
    created_logged: int = 0
    adopted_logged: int = 0
    snapshots_expected: int = 0  # pairs with a success
    snapshots_found: int = 0  # snapshots carrying a known key
    without_snapshot: int = 0  # pairs that never got one (their last answer was a final failure)
    duplicates: int = 0  # extra snapshots for one key
    duplicates_overlapping: int = 0  # ... of messages whose deliveries overlapped in time
    duplicate_samples: list[str] = field(default_factory=list)
    lost: int = 0  # success reported, no snapshot, or another snapshot's ID
    lost_samples: list[str] = field(default_factory=list)
    unreported: int = 0  # snapshots of pairs no delivery reported as a success
    unreported_ambiguous: int = 0  # ... whose failure named an unknown outcome (lost reply, InternalError)
    unreported_samples: list[str] = field(default_factory=list)
    unknown_keys: int = 0
    left_not_attempted: int = 0  # pairs whose last answer was still "not attempted"

    @property
    def broken(self) -> bool:
        """True when a guarantee did not hold."""
        return bool(
            self.duplicates or self.lost or self.unreported or self.unknown_keys or self.handler_errors
        )


# -- the plan --------------------------------------------------------------------------------


def make_plan(
    config: SoakConfig, disk_ids: list[str], run_id: str
) -> tuple[list[Request], list[list[Delivery]]]:
    """The requests and the delivery schedule: groups of deliveries started together, in order."""
    rng = random.Random(config.seed)
    topic = f"{QUEUE_TOPIC}-{run_id}"
    requests: list[Request] = []
    for i in range(config.requests):
        disks = rng.sample(disk_ids, rng.randint(1, min(config.max_disks, len(disk_ids))))
        entries: list[Any] = list(disks)
        if rng.random() < config.invalid:
            entries.insert(rng.randrange(len(entries) + 1), rng.choice(INVALID_ENTRIES))
        name = f"soak-{i}"
        if len(entries) == 1 and rng.random() < 0.5:
            document: dict[str, Any] = {"storageId": entries[0], "snapshotName": name}
        else:
            document = {"disks": entries, "snapshotName": name}
        requests.append(Request(i, topic, i % PARTITIONS, i // PARTITIONS, document, disks))

    spread = max(3, config.requests // 10)
    slots: list[tuple[float, int, list[Delivery]]] = []
    for i in range(config.requests):
        group = [Delivery(i, "first")]
        extra = 0
        if rng.random() < config.duplicates:
            extra = 2 if rng.random() < 0.3 else 1
        for _ in range(extra):
            if rng.random() < config.concurrent and len(group) < config.processes:
                group.append(Delivery(i, "duplicate", concurrent=True))
            else:  # a redelivery some time later (maybe while the first is still running)
                slots.append((i + rng.randint(1, spread) + 0.5, len(slots), [Delivery(i, "duplicate")]))
        if len(group) > 1:
            group[0].concurrent = True
        slots.append((float(i), len(slots), group))
    slots.sort(key=lambda s: (s[0], s[1]))
    return requests, [group for _, _, group in slots]


# -- the worker process ----------------------------------------------------------------------


class _Capture(io.TextIOBase):
    """The worker's stdout: what the runtime logs (SCF ships it to CLS), kept per delivery."""

    def __init__(self, path: str | None) -> None:
        self._lines: list[str] = []
        self._partial = ""
        self._file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self._file is not None:
            self._file.write(text)
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        self._lines.extend(complete)
        return len(text)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def take(self) -> list[dict[str, Any]]:
        """The JSON records logged since the last call."""
        lines, self._lines = self._lines, []
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records


def _worker(index: int, env: dict[str, str], conn: Any, log_dir: str | None) -> None:
    """One SCF function instance: its runtime comes from the environment, as on SCF.

    Tasks arrive on ``conn`` (its own pipe: a worker killed mid-task corrupts nothing
    shared) and each delivery's record goes back on it.
    """
    for name in list(os.environ):
        if name.startswith(("CBSNAP_", "TENCENTCLOUD_", "POWERTOOLS_")):
            del os.environ[name]
    os.environ.update(env)
    capture = _Capture(str(Path(log_dir) / f"worker-{index}.log") if log_dir else None)
    sys.stdout = capture  # the runtime's log sink writes to stdout

    from cbsnap.errors import RedeliveryRequested
    from cbsnap.runtime import get_runtime
    from handlers.messages import main_handler

    get_runtime()  # the cold start, before the clock runs
    conn.send({"ready": index, "pid": os.getpid()})
    while True:
        try:
            task = conn.recv()
        except EOFError:
            break
        if task is None:
            break
        wait = task["start_at"] - time.time()
        if wait > 0:
            time.sleep(wait)
        context = {
            "memory_limit_in_mb": 128,
            "time_limit_in_ms": task["timeout_ms"],
            "request_id": task["delivery_id"],
            "function_name": "cbsnap-soak",
            "function_version": "$LATEST",
            "namespace": "default",
            "tencentcloud_region": REGION,
        }
        capture.take()
        started = time.time()
        outcome, error, returned = "returned", None, None
        try:
            returned = main_handler(task["event"], context)["results"]
        except RedeliveryRequested as exc:  # MessagesNotAttempted, RechecksNotScheduled, …
            outcome, error = "redelivery", f"{type(exc).__name__}: {exc}"[:300]
        except Exception as exc:  # SCF would retry; the soak reports it
            outcome, error = "raised", f"{type(exc).__name__}: {exc}"[:300]
        ended = time.time()
        logged = capture.take()
        messages = Counter(str(r.get("message")) for r in logged if "result" in r)
        conn.send(
            {
                "delivery_id": task["delivery_id"],
                "request": task["request"],
                "worker": index,
                "started": started,
                "ended": ended,
                "outcome": outcome,
                "error": error,
                # what the handler returned, or what it logged before raising
                "results": returned
                if returned is not None
                else [r["result"] for r in logged if "result" in r],
                "created": messages["snapshot.created"],
                "adopted": messages["snapshot.adopted"],
            }
        )
    capture.flush()


# -- the run ------------------------------------------------------------------------------------


def _start_emulator(config: SoakConfig) -> tuple[Emulator, list[str]]:
    emu = Emulator(
        None,
        creation_seconds=config.creation_seconds,
        rate_limit=config.api_rate_limit,
        rng_seed=config.seed,
    )
    disk_ids = emu.add_disks(config.disks, region=REGION)
    if config.create_latency > 0:
        emu.add_fault(Fault(action="CreateSnapshot", kind="latency", latency=config.create_latency))
    # Error first, then lost reply: at most one of them fires per call.
    if config.internal_error > 0:
        emu.add_fault(Fault(action="*", code="InternalError", probability=config.internal_error))
    if config.lost_reply > 0:
        emu.add_fault(Fault(action="*", kind="lost_reply", probability=config.lost_reply))
    if config.latency > 0 and config.latency_share > 0:
        emu.add_fault(
            Fault(action="*", kind="latency", latency=config.latency, probability=config.latency_share)
        )
    emu.start()
    return emu, disk_ids


def _worker_env(config: SoakConfig, emu: Emulator, redis_url: str | None) -> dict[str, str]:
    env = {
        "CBSNAP_ENDPOINT": f"http://{emu.endpoint}",
        "TENCENTCLOUD_SECRETID": DEFAULT_SECRET_ID,
        "TENCENTCLOUD_SECRETKEY": DEFAULT_SECRET_KEY,
        "TENCENTCLOUD_REGION": REGION,
        "CBSNAP_RATE_LIMIT": str(config.client_rate_limit),
        "CBSNAP_SAFETY_MARGIN_MS": str(config.safety_margin_ms),
    }
    if redis_url:
        env["CBSNAP_REDIS_URL"] = redis_url
    return env


class RedisServer:
    """A private ``redis-server`` on a free loopback port, without persistence: this run may
    kill it (a restart comes back empty) without touching anybody else's Redis."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: --own-redis needs it")
        self._binary = binary
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        import redis

        command = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        give_up = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.RedisError:
                if time.monotonic() > give_up or self._process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; every connection drops."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
        self._process = None


@dataclass
class _Slot:
    """One worker process and the delivery it runs."""

    index: int
    process: Any
    conn: Any
    ready: bool = False
    task: dict[str, Any] | None = None
    kill: bool = False  # chosen to be SIGKILLed once it holds a lock of its request
    known_locks: frozenset[bytes] = frozenset()  # lock tokens of the request before it started


class _Trouble:
    """What a run does to its workers and its Redis while deliveries run (see the module docstring)."""

    def __init__(
        self,
        config: SoakConfig,
        report: Report,
        server: RedisServer | None,
        proxy: StallingProxy | None,
        redis_url: str | None,
    ) -> None:
        self._config = config
        self._report = report
        self._server = server
        self._proxy = proxy
        self._rng = random.Random(config.seed + 2)
        self._client: Any = None
        if redis_url and config.kill_share > 0:
            import redis

            self._client = redis.Redis.from_url(redis_url, socket_timeout=0.2, socket_connect_timeout=0.2)
        self.outage: tuple[float, float] | None = None  # wall-clock spans, for the report
        self.hang: tuple[float, float] | None = None
        self._down_since: float | None = None
        self._hang_since: float | None = None

    @property
    def watching(self) -> bool:
        """True while something may have to happen soon (the parent then polls often)."""
        c = self._config
        return bool(c.kill_share or c.redis_kill_at or c.hang_seconds)

    def choose_kill(self) -> bool:
        """Whether the delivery being dispatched is to be killed once it holds a lock."""
        c = self._config
        if self._client is None or self._report.workers_killed >= c.max_kills:
            return False
        return self._rng.random() < c.kill_share

    def lock_tokens(self, request: Request) -> frozenset[bytes]:
        """The tokens of the locks some disk of ``request`` holds right now."""
        if self._client is None:
            return frozenset()
        import redis

        keys = [f"cbsnap:lock:{disk_key(request.key, disk)}" for disk in request.disks]
        try:
            return frozenset(v for v in self._client.mget(keys) if v is not None)
        except redis.RedisError:
            return frozenset()  # the server is down: nobody holds anything

    def tick(self, elapsed: float, in_flight: bool) -> None:
        """Kill or restart the Redis server, start or end the hang, as the run's clock says.

        Trouble starts only while some delivery is in flight (mid-invocation), at the first
        such moment after its time; it ends after its duration whatever runs then.
        """
        c = self._config
        if self._server is not None and c.redis_kill_at > 0:
            if self._down_since is None and self.outage is None:
                if elapsed >= c.redis_kill_at and in_flight:
                    self._server.kill()
                    self._report.redis_kills += 1
                    self._down_since = time.time()
            elif self._down_since is not None and time.time() >= self._down_since + c.redis_down_seconds:
                self._server.start()
                self.outage = (self._down_since, time.time())
                self._down_since = None
        if self._proxy is not None and c.hang_seconds > 0:
            if self._hang_since is None and self.hang is None:
                if elapsed >= c.hang_from and in_flight:
                    self._proxy.delay = c.hang_delay
                    self._hang_since = time.time()
            elif self._hang_since is not None and time.time() >= self._hang_since + c.hang_seconds:
                self._proxy.delay = 0.0
                self.hang = (self._hang_since, time.time())
                self._hang_since = None

    def finish(self) -> None:
        """Close spans still open when the run ended."""
        now = time.time()
        if self._down_since is not None:
            self.outage = (self._down_since, now)
        if self._hang_since is not None:
            self.hang = (self._hang_since, now)
        if self._proxy is not None:
            self._proxy.delay = 0.0


def run_soak(config: SoakConfig) -> Report:
    """Run one soak and check the emulator's state against every reported result."""
    server = RedisServer().start() if config.own_redis else None
    redis_url = server.url if server is not None else config.redis
    report = Report(config=asdict(replace(config, redis=redis_url)))
    # Record keys are unique per run when a shared Redis remembers earlier runs' keys.
    run_id = f"soak{config.seed}" + (f"-{uuid.uuid4().hex[:8]}" if redis_url else "")
    proxy: StallingProxy | None = None
    worker_redis = redis_url
    if redis_url and config.hang_seconds > 0:
        target = urlsplit(redis_url)
        proxy = StallingProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
        worker_redis = proxy.url(target.path.lstrip("/") or 0)
    emu, disk_ids = _start_emulator(config)
    ctx = multiprocessing.get_context("spawn")
    env = _worker_env(config, emu, worker_redis)
    if config.log_dir:
        Path(config.log_dir).mkdir(parents=True, exist_ok=True)
    spawned = [0]

    def spawn() -> _Slot:
        index = spawned[0]
        spawned[0] += 1
        ours, theirs = ctx.Pipe()
        process = ctx.Process(target=_worker, args=(index, env, theirs, config.log_dir), daemon=True)
        process.start()
        theirs.close()
        return _Slot(index, process, ours)

    slots: list[_Slot] = []
    trouble = _Trouble(config, report, server, proxy, redis_url)
    try:
        slots.extend(spawn() for _ in range(config.processes))
        for slot in slots:  # every instance warm
            try:
                if not slot.conn.poll(120):
                    raise EOFError
                slot.conn.recv()
            except EOFError:
                raise RuntimeError(f"worker {slot.index} did not start") from None
            slot.ready = True
        requests, schedule = make_plan(config, disk_ids, run_id)
        records = _dispatch(config, requests, schedule, slots, spawn, trouble, report)
    finally:
        trouble.finish()
        for slot in slots:
            with contextlib.suppress(OSError, ValueError):
                slot.conn.send(None)
        for slot in slots:
            slot.process.join(timeout=10)
            if slot.process.is_alive():
                slot.process.terminate()
        emu.stop()
        if proxy is not None:
            report.redis_stalled_ops = proxy.stalled_chunks
            proxy.stop()
        if server is not None:
            server.kill()
    _count_trouble(trouble, records, report)
    _check(config, requests, records, emu, report)
    return report


def _count_trouble(trouble: _Trouble, records: list[dict[str, Any]], report: Report) -> None:
    """How many deliveries ran while Redis was down or hung."""

    def overlapping(span: tuple[float, float] | None) -> int:
        if span is None:
            return 0
        return sum(1 for r in records if r["started"] < span[1] and r["ended"] > span[0])

    if trouble.outage is not None:
        report.redis_outage_seconds = round(trouble.outage[1] - trouble.outage[0], 2)
    if trouble.hang is not None:
        report.hang_seconds = round(trouble.hang[1] - trouble.hang[0], 2)
    report.deliveries_during_outage = overlapping(trouble.outage)
    report.deliveries_during_hang = overlapping(trouble.hang)


def _dispatch(
    config: SoakConfig,
    requests: list[Request],
    schedule: list[list[Delivery]],
    slots: list[_Slot],
    spawn: Any,
    trouble: _Trouble,
    report: Report,
) -> list[dict[str, Any]]:
    """Feed the schedule to the workers; a group starts only when enough of them are idle.

    A delivery that raised (or whose worker was killed) is redelivered a little later, as
    the platform would; a killed worker is replaced by a fresh process.
    """
    rng = random.Random(config.seed + 1)
    pending = deque(schedule)
    redelivered: Counter[int] = Counter()
    records: list[dict[str, Any]] = []
    sent = 0
    started = time.monotonic()
    busy: Counter[int] = Counter()  # deliveries in flight per request
    limit = config.timeout_ms / 1000

    def redeliver(index: int) -> None:
        if redelivered[index] < config.max_redeliveries:
            redelivered[index] += 1
            # the platform redelivers a little later: behind a few other events
            position = min(len(pending), rng.randint(config.processes, 3 * config.processes))
            not_before = time.monotonic() + config.redelivery_delay
            pending.insert(position, [Delivery(index, "redelivery", not_before=not_before)])
        else:
            report.redeliveries_exhausted += 1
            if len(report.exhausted_samples) < 3:
                report.exhausted_samples.append(_last_answers(requests[index], records))

    while pending or any(s.task is not None for s in slots):
        trouble.tick(time.monotonic() - started, any(s.task is not None for s in slots))
        idle = [s for s in slots if s.ready and s.task is None]
        group = _next_group(pending, len(idle), busy, window=2 * config.processes)
        if group is not None:
            start_at = time.time() + (0.02 if len(group) > 1 else 0.0)
            for delivery, slot in zip(group, idle, strict=False):
                slot.task = {
                    "delivery_id": f"d{sent}",
                    "request": delivery.request,
                    "event": requests[delivery.request].event(),
                    "timeout_ms": config.timeout_ms,
                    "start_at": start_at,
                }
                slot.kill = trouble.choose_kill()
                if slot.kill:  # a lock left by an earlier, killed delivery is not this one's
                    slot.known_locks = trouble.lock_tokens(requests[delivery.request])
                slot.conn.send(slot.task)
                sent += 1
                busy[delivery.request] += 1
                report.deliveries += 1
                report.duplicate_deliveries += delivery.kind == "duplicate"
                report.concurrent_planned += delivery.concurrent and delivery.kind == "duplicate"
                report.redeliveries += delivery.kind == "redelivery"
            continue

        ends = [s.task["start_at"] + limit + LIMIT_SLACK_SECONDS for s in slots if s.task is not None]
        # poll often while a kill or a Redis event may be due; else wake up for the next time
        # limit or, with nothing in flight, for delayed redeliveries
        if trouble.watching:
            timeout = 0.01
        elif ends:
            timeout = min(5.0, max(0.01, min(ends) - time.time()))
        else:
            timeout = 0.05
        listening = {s.conn: s for s in slots if s.task is not None or not s.ready}
        for conn in connection.wait(list(listening), timeout=timeout):
            slot = listening[conn]
            try:
                message = conn.recv()
            except (EOFError, OSError):
                raise RuntimeError(f"worker {slot.index} died") from None
            if "ready" in message:
                slot.ready = True
                continue
            slot.task = None
            if slot.kill:
                report.kills_missed += 1
                slot.kill = False
            busy[message["request"]] -= 1
            records.append(message)
            if message["outcome"] != "returned":
                if message["outcome"] == "raised":
                    report.handler_errors += 1
                    if len(report.handler_error_samples) < 5:
                        report.handler_error_samples.append(message["error"])
                else:
                    report.not_attempted_raised += 1
                redeliver(message["request"])

        for position, slot in enumerate(slots):
            task = slot.task
            if task is None:
                continue
            if time.time() > task["start_at"] + limit + LIMIT_SLACK_SECONDS:
                outcome = "timed_out"  # SCF kills a function at its time limit
            elif (
                slot.kill
                and busy[task["request"]] == 1
                and (
                    # alone with its request, so a lock that was not there before is surely its own
                    trouble.lock_tokens(requests[task["request"]]) - slot.known_locks
                )
            ):
                outcome = "killed"
            else:
                continue
            os.kill(slot.process.pid, signal.SIGKILL)
            slot.process.join()
            slot.conn.close()
            if outcome == "killed":
                report.workers_killed += 1
            else:
                report.killed_at_limit += 1
            busy[task["request"]] -= 1
            records.append(
                {
                    "delivery_id": task["delivery_id"],
                    "request": task["request"],
                    "worker": slot.index,
                    "started": task["start_at"],
                    "ended": time.time(),
                    "outcome": outcome,
                    "error": None,
                    "results": [],  # a killed invocation reports nothing
                    "created": 0,
                    "adopted": 0,
                }
            )
            redeliver(task["request"])
            slots[position] = spawn()  # the platform starts another instance
    report.elapsed_seconds = round(time.monotonic() - started, 2)
    return records


def _last_answers(request: Request, records: list[dict[str, Any]], last: int = 4) -> str:
    """The last deliveries of a request whose redeliveries ran out: what each answered per disk."""
    lines = [f"{request.msg_id} {request.disks}:"]
    for record in [r for r in records if r["request"] == request.index][-last:]:
        answers = [(x.get("storageId"), x["code"], str(x["message"])[:70]) for x in record["results"]]
        lines.append(f"    {record['delivery_id']} {record['outcome']}: {answers}")
    return "\n".join(lines)


def _next_group(
    pending: deque[list[Delivery]], idle: int, busy: Counter[int], *, window: int
) -> list[Delivery] | None:
    """Take the first group (among the next ``window``) that can start now.

    A group needs enough idle workers. A delivery that is not planned to race waits
    until no other delivery of its message is in flight: the platform redelivers after
    an invocation failed or timed out, not during it.
    """
    now = time.monotonic()
    for position, group in enumerate(list(pending)[:window]):
        if any(d.not_before > now for d in group):
            continue
        if len(group) > idle:
            if position == 0:
                return None  # keep the order: let the head group gather its workers
            continue
        if len(group) == 1 and busy[group[0].request] and not group[0].concurrent:
            continue
        del pending[position]
        return group
    return None


def _check(
    config: SoakConfig, requests: list[Request], records: list[dict[str, Any]], emu: Emulator, report: Report
) -> None:
    """Compare the emulator's snapshots with every result any delivery reported."""
    report.requests = len(requests)
    owner: dict[str, tuple[int, str]] = {}
    for req in requests:
        for disk in req.disks:
            owner[disk_key(req.key, disk)] = (req.index, disk)
    report.pairs = len(owner)

    successes: dict[tuple[int, str], list[str]] = defaultdict(list)
    failures: dict[tuple[int, str], list[str]] = defaultdict(list)
    last: dict[tuple[int, str], tuple[float, str]] = {}  # pair → (delivery end, message)
    codes: Counter[str] = Counter()
    intervals: dict[int, list[tuple[float, float]]] = defaultdict(list)
    limit = config.timeout_ms / 1000
    for record in records:
        intervals[record["request"]].append((record["started"], record["ended"]))
        took = record["ended"] - record["started"]
        report.slowest_delivery_seconds = max(report.slowest_delivery_seconds, round(took, 2))
        report.overran_timeout += took > limit
        report.created_logged += record["created"]
        report.adopted_logged += record["adopted"]
        for result in record["results"]:
            pair = (record["request"], result["storageId"])
            if pair not in last or last[pair][0] < record["ended"]:
                last[pair] = (record["ended"], str(result["message"]))
            codes[str(result["code"])] += 1
            if result["code"] != 0:
                report.failure_samples.setdefault(str(result["code"]), str(result["message"])[:160])
            if result["code"] == 0:
                successes[(record["request"], result["storageId"])].append(result["snapshotId"])
            else:
                failures[(record["request"], result["storageId"])].append(str(result["message"]))
    report.results_by_code = dict(sorted(codes.items()))
    report.left_not_attempted = sum(1 for _, message in last.values() if message.startswith("not attempted"))
    overlapped: set[int] = set()
    for index, spans in intervals.items():
        spans.sort()
        overlapping = sum(1 for i in range(1, len(spans)) if any(spans[i][0] < spans[j][1] for j in range(i)))
        report.concurrent_measured += overlapping
        if overlapping:
            overlapped.add(index)

    found: dict[str, list[str]] = defaultdict(list)
    for snap in emu.snapshots():
        tags = {t["Key"]: t["Value"] for t in snap.get("Tags") or []}
        key = tags.get(KEY_TAG)
        if key is None:
            continue
        if key in owner:
            found[key].append(snap["SnapshotId"])
        else:
            report.unknown_keys += 1
    report.snapshots_found = sum(len(v) for v in found.values())

    for key, (index, disk) in owner.items():
        snaps = found.get(key, [])
        reported = successes.get((index, disk), [])
        report.duplicates += max(0, len(snaps) - 1)
        if index in overlapped:
            report.duplicates_overlapping += max(0, len(snaps) - 1)
        label = f"{requests[index].msg_id}/{disk}"
        if len(snaps) > 1 and len(report.duplicate_samples) < 5:
            report.duplicate_samples.append(f"{label}: {snaps}\n{_trace(emu, disk, key, records, index)}")
        if reported:
            report.snapshots_expected += 1
            wrong = [sid for sid in reported if sid not in snaps]
            if not snaps or wrong:
                report.lost += 1
                if len(report.lost_samples) < 5:
                    trace = _trace(emu, disk, key, records, index)
                    report.lost_samples.append(
                        f"{label}: reported {sorted(set(reported))}, found {snaps}\n{trace}"
                    )
        elif snaps:
            report.unreported += 1
            if any(code in m for m in failures.get((index, disk), []) for code in AMBIGUOUS):
                report.unreported_ambiguous += 1
            if len(report.unreported_samples) < 5:
                report.unreported_samples.append(
                    f"{label}: {snaps}\n{_trace(emu, disk, key, records, index)}"
                )

    report.without_snapshot = report.pairs - report.snapshots_expected
    report.faults_injected = dict(sorted(emu.faults_injected.items()))
    calls = emu.calls()
    report.api_calls = dict(sorted(Counter(c["action"] for c in calls).items()))
    report.throttled_calls = sum(1 for c in calls if c["error"] == "RequestLimitExceeded")


# -- the command line ----------------------------------------------------------------------------


def _trace(emu: Emulator, disk: str, key: str, records: list[dict[str, Any]], index: int) -> str:
    """The calls behind one key, in time order: what happened, to explain a broken guarantee."""
    t0 = min((r["started"] for r in records if r["request"] == index), default=0.0)
    lines = []
    for r in records:
        if r["request"] == index:
            answers = [(x["code"], x["snapshotId"]) for x in r["results"] if x.get("storageId") == disk]
            span = f"{r['started'] - t0:+.3f}..{r['ended'] - t0:+.3f} s"
            lines.append(
                f"    delivery {r['delivery_id']} on worker {r['worker']}: {span} {r['outcome']} {answers}"
            )
    for call in emu.calls():
        params = call["params"]
        tags = {t.get("Key"): t.get("Value") for t in params.get("Tags") or [] if isinstance(t, dict)}
        values = [v for f in params.get("Filters") or [] for v in f.get("Values") or []]
        if tags.get(KEY_TAG) == key or (call["action"] == "DescribeSnapshots" and disk in values):
            lines.append(
                f"    {call['time'] - t0:+.3f} s {call['action']} error={call['error']} fault={call['fault']}"
            )
    for snap in emu.snapshots(disk):
        if any(t["Key"] == KEY_TAG and t["Value"] == key for t in snap.get("Tags") or []):
            lines.append(f"    snapshot {snap['SnapshotId']} created {snap['CreateTime']}")
    return "\n".join(lines)


def format_report(report: Report) -> str:
    c = report.config
    rows = [
        ("mode", "redis ledger/lock/pace" if c["redis"] else "tags only (no Redis)"),
        ("requests / disks / processes", f"{report.requests} / {c['disks']} / {c['processes']}"),
        ("(request, disk) pairs", report.pairs),
        ("elapsed", f"{report.elapsed_seconds} s"),
        ("deliveries", report.deliveries),
        ("  duplicate deliveries", report.duplicate_deliveries),
        (
            "  concurrent duplicates (planned / overlapping)",
            f"{report.concurrent_planned} / {report.concurrent_measured}",
        ),
        (
            "  redeliveries (after RedeliveryRequested or a kill)",
            f"{report.redeliveries} (exhausted {report.redeliveries_exhausted})",
        ),
        ("RedeliveryRequested raised", report.not_attempted_raised),
        *_trouble_rows(report),
        ("pairs left not attempted at the end", report.left_not_attempted),
        ("handler errors", report.handler_errors),
        (
            "deliveries over the time limit (killed at it)",
            f"{report.overran_timeout} ({report.killed_at_limit}; "
            f"slowest {report.slowest_delivery_seconds} s)",
        ),
        ("faults injected", report.faults_injected),
        ("throttled API calls", report.throttled_calls),
        ("API calls", report.api_calls),
        ("results by code", report.results_by_code),
        ("logged created / adopted", f"{report.created_logged} / {report.adopted_logged}"),
        ("snapshots expected / found", f"{report.snapshots_expected} / {report.snapshots_found}"),
        ("pairs without a snapshot (final failures)", report.without_snapshot),
        (
            "duplicates (extra snapshots)",
            f"{report.duplicates} ({report.duplicates_overlapping} from overlapping deliveries)",
        ),
        ("lost (success without its snapshot)", report.lost),
        (
            "unreported (snapshot without a success)",
            f"{report.unreported} ({report.unreported_ambiguous} after a lost reply or InternalError)",
        ),
        ("unknown keys", report.unknown_keys),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    for title, samples in (
        ("handler errors", report.handler_error_samples),
        ("redeliveries exhausted", report.exhausted_samples),
        ("a failure", [f"{code}: {message}" for code, message in sorted(report.failure_samples.items())]),
        ("duplicates", report.duplicate_samples),
        ("lost", report.lost_samples),
        ("unreported", report.unreported_samples),
    ):
        lines.extend(f"  {title}: {s}" for s in samples)
    return "\n".join(lines)


def _trouble_rows(report: Report) -> list[tuple[str, Any]]:
    """Report rows for the kills and the hang, when the run had them."""
    c = report.config
    rows: list[tuple[str, Any]] = []
    if c["kill_share"] > 0:
        rows.append(
            (
                "workers SIGKILLed holding a lock",
                f"{report.workers_killed} ({report.kills_missed} chosen ended before holding one)",
            )
        )
    if c["redis_kill_at"] > 0:
        rows.append(
            (
                "Redis server killed / down / deliveries meanwhile",
                f"{report.redis_kills} / {report.redis_outage_seconds} s / {report.deliveries_during_outage}",
            )
        )
    if c["hang_seconds"] > 0:
        rows.append(
            (
                "Redis hang / operations delayed / deliveries meanwhile",
                f"{report.hang_seconds} s at {c['hang_delay']} s per operation / "
                f"{report.redis_stalled_ops} / {report.deliveries_during_hang}",
            )
        )
    return rows


def parse_args(argv: list[str] | None = None) -> SoakConfig:
    defaults = SoakConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    for f in fields(SoakConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
            continue
        kind = type(default) if default is not None else str
        parser.add_argument(flag, type=kind, default=default, help=f"default: {default}")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = vars(parser.parse_args(argv))
    args.pop("json")
    return SoakConfig(**args)


def main(argv: list[str] | None = None) -> int:
    as_json = "--json" in (argv if argv is not None else sys.argv[1:])
    config = parse_args(argv)
    report = run_soak(config)
    if as_json:
        print(json.dumps({**asdict(report), "broken": report.broken}, indent=2))
    else:
        print(format_report(report))
    return 1 if report.broken else 0


if __name__ == "__main__":
    sys.exit(main())
