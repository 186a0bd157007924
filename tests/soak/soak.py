#!/usr/bin/env python
"""Soak test of the at-least-once guarantee: queue events delivered more than once, from
several processes at a time, against a faulty, rate-limited CBS.

One emulator runs in this (the parent) process: snapshots take ``--creation-seconds``
(CBS allows one CREATING snapshot per disk), the API is rate-limited, and faults fire
at random: ``InternalError`` answers, replies lost after the action committed, latency.
N CMQ-shaped events (``events/cmq.json``), each naming 1-5 of M disks, are delivered
once each plus random redeliveries of the same message, some racing the first delivery
from another process, some later. Worker processes (multiprocessing, spawn) play SCF
function instances: each builds its runtime from environment variables the way SCF
would (``CBSNAP_ENDPOINT``, ``TENCENTCLOUD_SECRETID``/``SECRETKEY``, ``CBSNAP_RATE_LIMIT``,
optionally ``CBSNAP_REDIS_URL``) and calls ``handlers.messages.main_handler``. A raised
``MessagesNotAttempted`` means "the platform would redeliver": the event is delivered
again later. The results an invocation logged before raising count as reported (SCF
ships them to CLS).

Then the emulator's state is checked against every result reported. A snapshot carries
``cbsnap:key`` = ``disk_key("cmq/<msgId>", disk_id)``; for every (request, disk):

* some delivery reported success → exactly one snapshot has the key, and every success
  reported for the pair carries its ID (else: "duplicates", "lost");
* no delivery reported success → no snapshot has the key (else: "unreported");
* no snapshot has a key that no request could have made ("unknown keys").

Run by hand::

    python tests/soak/soak.py --requests 500 --disks 200 --processes 4 --duplicates 0.3
    python tests/soak/soak.py --redis redis://127.0.0.1:6379/15 --json

Every random choice of the plan (requests, disks, duplicates, their timing) comes from
``--seed``, and so do the emulator's disk IDs and fault draws; the interleaving of the
worker processes is the operating system's. The exit status is 1 when a guarantee was
broken (duplicates, lost, unreported, unknown keys, handler errors).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import queue
import random
import sys
import time
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
for _path in (str(ROOT / "lib"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from cbsnap.ownership import KEY_TAG, disk_key  # noqa: E402
from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator, Fault  # noqa: E402

# Entries that fail validation (9003) and must never reach the API.
INVALID_ENTRIES = ("disk-NOT-VALID", "disk-short", {"storageId": "disk-UPPER001"}, 42)
REGION = "ap-guangzhou"
# Failures after which a snapshot may exist: the call may have been committed.
AMBIGUOUS = ("ClientNetworkError", "ServerNetworkError", "InternalError")
QUEUE_TOPIC = "cbsnap-requests"


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
    max_redeliveries: int = 5  # platform redeliveries after MessagesNotAttempted
    # The platform redelivers a failed event after a pause (SCF: about a minute for async
    # retries), scaled down: long enough for a snapshot another request is creating on the
    # disk (a 16027, retried since it may pass) to finish.
    redelivery_delay: float = 1.0
    seed: int = 1
    redis: str | None = None  # CBSNAP_REDIS_URL for the workers
    log_dir: str | None = None  # keep each worker's log (stdout → CLS) here


@dataclass
class Request:
    index: int
    msg_id: str
    document: dict[str, Any]
    disks: list[str]  # the valid disks named, in order, without repeats

    def event(self) -> dict[str, Any]:
        """The CMQ trigger's event for this request (shape of events/cmq.json)."""
        return {
            "Records": [
                {
                    "CMQ": {
                        "type": "topic",
                        "topicOwner": 1253970226,
                        "topicName": QUEUE_TOPIC,
                        "subscriptionName": "cbsnap-fn",
                        "publishTime": "2026-11-28T02:00:00.000Z",
                        "msgId": self.msg_id,
                        "requestId": self.msg_id,
                        "msgBody": json.dumps(self.document),
                        "msgTag": "snapshot",
                    }
                }
            ]
        }


@dataclass
class Delivery:
    request: int
    kind: str  # "first", "duplicate" (planned redelivery), "redelivery" (after MessagesNotAttempted)
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
    redeliveries: int = 0  # after MessagesNotAttempted / a raised error
    redeliveries_exhausted: int = 0
    not_attempted_raised: int = 0
    handler_errors: int = 0
    handler_error_samples: list[str] = field(default_factory=list)
    overran_timeout: int = 0  # deliveries that took longer than the function's time limit
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
        requests.append(Request(i, f"{run_id}-{i:06d}", document, disks))

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


def _worker(index: int, env: dict[str, str], tasks: Any, results: Any, log_dir: str | None) -> None:
    """One SCF function instance: its runtime comes from the environment, as on SCF."""
    for name in list(os.environ):
        if name.startswith(("CBSNAP_", "TENCENTCLOUD_", "POWERTOOLS_")):
            del os.environ[name]
    os.environ.update(env)
    capture = _Capture(str(Path(log_dir) / f"worker-{index}.log") if log_dir else None)
    sys.stdout = capture  # the runtime's log sink writes to stdout

    from cbsnap.events.queue import MessagesNotAttempted
    from cbsnap.runtime import get_runtime
    from handlers.messages import main_handler

    get_runtime()  # the cold start, before the clock runs
    results.put({"ready": index})
    while True:
        task = tasks.get()
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
        except MessagesNotAttempted as exc:
            outcome, error = "not_attempted", str(exc)[:300]
        except Exception as exc:  # SCF would retry; the soak reports it
            outcome, error = "raised", f"{type(exc).__name__}: {exc}"[:300]
        ended = time.time()
        logged = capture.take()
        messages = Counter(str(r.get("message")) for r in logged if "result" in r)
        results.put(
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


def _worker_env(config: SoakConfig, emu: Emulator) -> dict[str, str]:
    env = {
        "CBSNAP_ENDPOINT": f"http://{emu.endpoint}",
        "TENCENTCLOUD_SECRETID": DEFAULT_SECRET_ID,
        "TENCENTCLOUD_SECRETKEY": DEFAULT_SECRET_KEY,
        "TENCENTCLOUD_REGION": REGION,
        "CBSNAP_RATE_LIMIT": str(config.client_rate_limit),
        "CBSNAP_SAFETY_MARGIN_MS": str(config.safety_margin_ms),
    }
    if config.redis:
        env["CBSNAP_REDIS_URL"] = config.redis
    return env


def run_soak(config: SoakConfig) -> Report:
    """Run one soak and check the emulator's state against every reported result."""
    report = Report(config=asdict(config))
    # Message IDs are unique per run when a shared Redis remembers earlier runs' keys.
    run_id = f"soak{config.seed}" + (f"-{uuid.uuid4().hex[:8]}" if config.redis else "")
    emu, disk_ids = _start_emulator(config)
    ctx = multiprocessing.get_context("spawn")
    tasks: Any = ctx.Queue()
    done: Any = ctx.Queue()
    env = _worker_env(config, emu)
    if config.log_dir:
        Path(config.log_dir).mkdir(parents=True, exist_ok=True)
    workers = [
        ctx.Process(target=_worker, args=(i, env, tasks, done, config.log_dir), daemon=True)
        for i in range(config.processes)
    ]
    try:
        for w in workers:
            w.start()
        for _ in workers:
            done.get(timeout=120)  # every instance warm
        requests, schedule = make_plan(config, disk_ids, run_id)
        records = _dispatch(config, requests, schedule, tasks, done, workers, report)
    finally:
        for _ in workers:
            tasks.put(None)
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.terminate()
        emu.stop()
    _check(config, requests, records, emu, report)
    return report


def _dispatch(
    config: SoakConfig,
    requests: list[Request],
    schedule: list[list[Delivery]],
    tasks: Any,
    done: Any,
    workers: list[Any],
    report: Report,
) -> list[dict[str, Any]]:
    """Feed the schedule to the workers; a group starts only when enough of them are idle."""
    rng = random.Random(config.seed + 1)
    pending = deque(schedule)
    redelivered: Counter[int] = Counter()
    records: list[dict[str, Any]] = []
    idle, in_flight, sent = config.processes, 0, 0
    started = time.monotonic()
    busy: Counter[int] = Counter()  # deliveries in flight per request
    while pending or in_flight:
        group = _next_group(pending, idle, busy, window=2 * config.processes)
        if group is not None:
            start_at = time.time() + (0.02 if len(group) > 1 else 0.0)
            for delivery in group:
                tasks.put(
                    {
                        "delivery_id": f"d{sent}",
                        "request": delivery.request,
                        "event": requests[delivery.request].event(),
                        "timeout_ms": config.timeout_ms,
                        "start_at": start_at,
                    }
                )
                sent += 1
                busy[delivery.request] += 1
                report.deliveries += 1
                report.duplicate_deliveries += delivery.kind == "duplicate"
                report.concurrent_planned += delivery.concurrent and delivery.kind == "duplicate"
                report.redeliveries += delivery.kind == "redelivery"
            idle -= len(group)
            in_flight += len(group)
            continue
        try:
            # wake up soon when only delayed redeliveries are waiting
            record = done.get(timeout=5 if in_flight else 0.05)
        except queue.Empty:
            if not all(w.is_alive() for w in workers):
                raise RuntimeError("a worker process died") from None
            continue
        idle += 1
        in_flight -= 1
        busy[record["request"]] -= 1
        records.append(record)
        if record["outcome"] != "returned":
            if record["outcome"] == "raised":
                report.handler_errors += 1
                if len(report.handler_error_samples) < 5:
                    report.handler_error_samples.append(record["error"])
            else:
                report.not_attempted_raised += 1
            index = record["request"]
            if redelivered[index] < config.max_redeliveries:
                redelivered[index] += 1
                # the platform redelivers a little later: behind a few other events
                position = min(len(pending), rng.randint(config.processes, 3 * config.processes))
                not_before = time.monotonic() + config.redelivery_delay
                pending.insert(position, [Delivery(index, "redelivery", not_before=not_before)])
            else:
                report.redeliveries_exhausted += 1
    report.elapsed_seconds = round(time.monotonic() - started, 2)
    return records


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
            owner[disk_key(f"cmq/{req.msg_id}", disk)] = (req.index, disk)
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
            "  redeliveries after MessagesNotAttempted",
            f"{report.redeliveries} (exhausted {report.redeliveries_exhausted})",
        ),
        ("MessagesNotAttempted raised", report.not_attempted_raised),
        ("pairs left not attempted at the end", report.left_not_attempted),
        ("handler errors", report.handler_errors),
        (
            "deliveries over the time limit",
            f"{report.overran_timeout} (slowest {report.slowest_delivery_seconds} s)",
        ),
        ("faults injected", report.faults_injected),
        ("throttled API calls", report.throttled_calls),
        ("API calls", report.api_calls),
        ("results by code", report.results_by_code),
        ("logged created / adopted", f"{report.created_logged} / {report.adopted_logged}"),
        ("snapshots expected / found", f"{report.snapshots_expected} / {report.snapshots_found}"),
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
        ("a failure", [f"{code}: {message}" for code, message in sorted(report.failure_samples.items())]),
        ("duplicates", report.duplicate_samples),
        ("lost", report.lost_samples),
        ("unreported", report.unreported_samples),
    ):
        lines.extend(f"  {title}: {s}" for s in samples)
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> SoakConfig:
    defaults = SoakConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    for f in fields(SoakConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
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
