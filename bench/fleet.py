"""Fleet: one request over thousands of disks in two regions, fanned out by SCF ``Invoke``.

The emulator runs in its own process with an API limit per region and action that is the
*account's*: every caller shares it, as on Tencent Cloud (``rate-scope region``). It gets a
function whose code is this checkout's handlers. A timer event naming the whole fleet by tag is
invoked once; that parent run only hands chunks on with ``Invoke``. Then every pending
invocation runs at the same time, each in its own fresh Python process (the emulator's SCF
runner), as SCF would run them in separate instances. Without Redis each chunk paces itself to
its fair share of its region's limit (``rate`` in the chunk); with Redis they share one pace.

Measured per run: the aggregate CreateSnapshot rate in each region ÷ the limit (over the span
from the region's first to its last successful create), throttled calls (RequestLimitExceeded),
failed disks, lost disks (no snapshot at the end) and duplicated ones (more than one), and the
wall time of the chunk phase against the ideal: disks per region ÷ the limit.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from common import HANDLERS, LIB, Row, verdict
from emuproc import EmulatorProcess

REGIONS = ("ap-guangzhou", "ap-shanghai")
FUNCTION = "cbsnap-fleet"
TAG = {"fleet": "bench"}
GOAL_RATIO = 0.85
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
OWNER_TAG = "cbsnap:owner"


@dataclass
class FleetRun:
    """What one fleet run did, as the emulator saw it."""

    label: str
    disks: int
    limit: float
    chunks: int = 0
    parent_creates: int = 0
    parent_s: float = 0.0
    wall_s: float = 0.0
    rounds: int = 0
    rates: dict[str, float] = field(default_factory=dict)
    creates: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    throttled_by: dict[str, int] = field(default_factory=dict)
    failed_runs: int = 0
    failed_disks: int = 0
    lost: int = 0
    duplicated: int = 0

    @property
    def ideal_s(self) -> float:
        """Disks of the busiest region ÷ the limit: regions run side by side."""
        return max(self.creates.values(), default=0) / self.limit if self.limit > 0 else 0.0

    @property
    def wall_ratio(self) -> float:
        """Chunk-phase wall time ÷ the ideal (NaN without an ideal)."""
        return self.wall_s / self.ideal_s if self.ideal_s else float("nan")

    @property
    def worst_ratio(self) -> float:
        """The lowest region's aggregate create rate ÷ the limit."""
        return min(self.rates.values(), default=0.0) / self.limit

    def describe(self) -> str:
        """Detail lines for the console."""
        per_region = ", ".join(
            f"{r} {self.creates.get(r, 0)} creates at {self.rates.get(r, 0.0):.2f}/s "
            f"({self.rates.get(r, 0.0) / self.limit:.2f}x)"
            for r in REGIONS
        )
        return (
            f"  {self.label}: {self.disks} disks, {self.chunks} chunks (parent {self.parent_s:.1f} s, "
            f"{self.parent_creates} creates of its own); {per_region}\n"
            f"    chunk phase {self.wall_s:.1f} s vs ideal {self.ideal_s:.1f} s "
            f"({self.wall_ratio:.2f}x) in {self.rounds} round(s); "
            f"throttled {self.throttled} {self.throttled_by or ''}, failed runs {self.failed_runs}, "
            f"failed disks {self.failed_disks}, "
            f"lost {self.lost}, duplicated {self.duplicated}"
        )


class _Admin:
    """The emulator's admin API and its TC3-signed SCF API (through the real SDK)."""

    def __init__(self, emu: EmulatorProcess) -> None:
        self.emu = emu

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # loopback only
            f"http://{self.emu.endpoint}/_emulator/{path}", data=data, method=method
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}")

    def invoke_async(self, event: dict[str, Any]) -> str:
        """SCF ``Invoke`` with ``InvocationType=Event``, signed by the SDK; the FunctionRequestId."""
        from tencentcloud.common.credential import Credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.scf.v20180416 import models, scf_client

        from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY

        profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=self.emu.endpoint))
        client = scf_client.ScfClient(Credential(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY), REGIONS[0], profile)
        request = models.InvokeRequest()
        request.from_json_string(
            json.dumps(
                {"FunctionName": FUNCTION, "InvocationType": "Event", "ClientContext": json.dumps(event)}
            )
        )
        return str(client.Invoke(request).Result.FunctionRequestId)


def _run_all(admin: _Admin, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    """Run invocations at the same time, each in its own process; their records."""
    with ThreadPoolExecutor(max_workers=max(1, len(ids))) as pool:
        return list(
            pool.map(
                lambda i: admin.call("POST", "invocations/run", {"id": i}, timeout=timeout)["invocation"], ids
            )
        )


def _flush_redis(url: str) -> str | None:
    """Empty the bench's Redis database; None, or why Redis cannot be used."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=2)
        client.flushdb()
        client.close()
    except redis.RedisError as exc:
        return f"Redis at {url} unusable: {exc}"
    return None


def run_fleet(
    label: str, *, disks: int, chunk: int, limit: float, latency: float, redis_url: str | None, timeout: int
) -> FleetRun:
    """One fleet run in a fresh emulator; see the module docstring."""
    import sys

    if str(LIB) not in sys.path:
        sys.path.insert(0, str(LIB))
    run = FleetRun(label, disks, limit)
    with EmulatorProcess(rate_limit=limit, latency=latency) as emu:
        admin = _Admin(emu)
        admin.call("POST", "rate-scope", {"scope": "region"})
        per_region = [disks - disks // 2, disks // 2]
        for region, count in zip(REGIONS, per_region, strict=True):
            admin.call("POST", "disks", {"count": count, "Region": region, "Tags": TAG, "prefix": region})
        environment = {
            "CBSNAP_RATE_LIMIT": f"{limit:g}",
            "CBSNAP_FANOUT_THRESHOLD": str(chunk),
            "CBSNAP_FANOUT_CHUNK": str(chunk),
        }
        if redis_url:
            environment["CBSNAP_REDIS_URL"] = redis_url
        admin.call(
            "POST",
            "functions",
            {
                "name": FUNCTION,
                "codeDir": str(HANDLERS),
                "pythonPath": [str(LIB)],
                "environment": environment,
                "timeout": timeout,
                "memorySize": 512,
            },
        )
        admin.call("DELETE", "calls")
        time.sleep(1.1)  # every bucket full again
        document = {"selector": {"tags": TAG, "regions": list(REGIONS)}, "snapshotName": "fleet"}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        event = {"Type": "Timer", "TriggerName": "fleet", "Time": stamp, "Message": json.dumps(document)}

        t0 = time.perf_counter()
        parent = _run_all(admin, [admin.invoke_async(event)], timeout + 60)[0]
        run.parent_s = time.perf_counter() - t0
        run.parent_creates = len(admin.call("GET", "calls?action=CreateSnapshot")["calls"])
        fanout = ((parent.get("attempts") or [{}])[-1].get("result") or {}).get("fanout") or {}
        run.chunks = int(fanout.get("chunks", 0))

        records: list[dict[str, Any]] = []
        t1 = time.perf_counter()
        while run.rounds < 5:
            pending = [i["id"] for i in admin.call("GET", "invocations?state=pending")["invocations"]]
            if not pending:
                break
            run.rounds += 1
            records += _run_all(admin, pending, timeout + 60)
        run.wall_s = time.perf_counter() - t1

        recorded = admin.call("GET", "calls?action=CreateSnapshot", timeout=300)
        made = [c for c in recorded["calls"] if c["error"] is None]
        for region in REGIONS:
            times = sorted(float(c["time"]) for c in made if c["region"] == region)
            run.creates[region] = len(times)
            span = times[-1] - times[0] if len(times) > 1 else 0.0
            run.rates[region] = (len(times) - 1) / span if span > 0 else 0.0
        throttles = Counter(
            f"{r['region']} {r['action']}"
            for r in recorded["rejected"]
            if r["code"] == "RequestLimitExceeded" and r["service"] == "cbs"
        )
        run.throttled, run.throttled_by = sum(throttles.values()), dict(throttles.most_common())
        for record in records:
            last = (record.get("attempts") or [{}])[-1]
            if record.get("state") != "done":
                run.failed_runs += 1
            result = last.get("result") or {}
            run.failed_disks += int(result.get("failed", 0) or 0)
        state = admin.call("GET", "state", timeout=300)
        owned = Counter(
            s["DiskId"]
            for s in state["snapshots"]
            if any(t.get("Key") == OWNER_TAG for t in s.get("Tags") or [])
        )
        all_disks = {d["DiskId"] for d in state["disks"]}
        run.lost = sum(1 for d in all_disks if owned[d] == 0)
        run.duplicated = sum(1 for n in owned.values() if n > 1)
    return run


def fleet(disks: int, chunk: int, limit: float, latency: float, redis_url: str) -> list[Row]:
    """The fleet section: the same fan-out without and with Redis; summary rows."""
    rows: list[Row] = []
    per_chunk_s = chunk / (limit / max(1, (disks // 2) // chunk))
    timeout = int(min(900, max(60, per_chunk_s * 3)))
    print(
        f"{disks} disks over {', '.join(REGIONS)}; CreateSnapshot limit {limit:g}/s per region for the whole "
        f"account; {chunk} disks a chunk; API latency {latency * 1000:.0f} ms; function timeout {timeout} s",
        flush=True,
    )
    for label, url in (("without Redis", None), ("with Redis", redis_url)):
        section = f"fleet ({label})"
        if url is not None:
            why = _flush_redis(url)
            if why is not None:
                print(f"  {label}: skipped: {why}", flush=True)
                rows.append(Row(section, "aggregate rate / limit", f"skipped ({why})", "", "SKIP"))
                continue
        run = run_fleet(
            label, disks=disks, chunk=chunk, limit=limit, latency=latency, redis_url=url, timeout=timeout
        )
        print(run.describe(), flush=True)
        clean = run.failed_disks == 0 and run.lost == 0 and run.duplicated == 0 and run.parent_creates == 0
        rows += [
            Row(
                section,
                "aggregate create rate / limit (worst region)",
                f"{run.worst_ratio:.2f}x ({', '.join(f'{run.rates[r]:.1f}/s' for r in REGIONS)})",
                f">= {GOAL_RATIO}x",
                verdict(run.worst_ratio >= GOAL_RATIO),
            ),
            Row(
                section,
                "failed / lost / duplicated disks; parent creates",
                f"{run.failed_disks} / {run.lost} / {run.duplicated}; {run.parent_creates}",
                "0 / 0 / 0; 0",
                verdict(clean),
            ),
            Row(section, "throttled CreateSnapshot/other calls", str(run.throttled), "retried, never failed"),
            Row(
                section,
                "chunk phase wall time / ideal (disks per region / limit)",
                f"{run.wall_s:.0f} s / {run.ideal_s:.0f} s = {run.wall_ratio:.2f}x",
            ),
        ]
    return rows
