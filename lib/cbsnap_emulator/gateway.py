"""The API request pipeline, independent of HTTP.

Order for every request (docs/emulator.md explains the accounting):

1. authenticate (TC3 signature, timestamp, token) — failures go to ``rejected`` only;
2. decode parameters, resolve service/version/action — errors are logged in ``calls``;
3. rate limit — a refusal is logged in ``calls`` *and* in ``rejected``;
4. faults and latency (sleeping outside the lock);
5. run the action under the lock (region check first), log it in ``calls``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .auth import Credential, authenticate
from .cbs_actions import CBS_ACTIONS
from .cbs_copy import CBS_COPY_ACTIONS
from .clock import StateClock
from .context import Context, Handler
from .errors import ApiError
from .faults import FaultSet
from .ids import IdFactory
from .params import decode_form, decode_json_body
from .ratelimit import RateLimiter
from .scf_actions import SCF_ACTIONS, SCF_RATE_LIMITS, AfterLock
from .signature import MalformedAuthorization, parse_authorization
from .state import State
from .tag_actions import TAG_ACTIONS
from .tat_actions import TAT_ACTIONS
from .tdmq_actions import TDMQ_ACTIONS

log = logging.getLogger("cbsnap_emulator")

# service (credential scope) -> (API version, actions)
SERVICES: dict[str, tuple[str, dict[str, Handler]]] = {
    "cbs": ("2017-03-12", {**CBS_ACTIONS, **CBS_COPY_ACTIONS}),
    "tdmq": ("2020-02-17", TDMQ_ACTIONS),
    "scf": ("2018-04-16", SCF_ACTIONS),
    "tag": ("2018-08-13", TAG_ACTIONS),
    "tat": ("2020-10-28", TAT_ACTIONS),
}
# Services whose API is global: X-TC-Region is optional ("本接口不需要传递此参数"), validated if sent.
REGIONLESS_SERVICES = frozenset({"tag"})


@dataclass(frozen=True)
class ApiRequest:
    """An API request as received: method, raw query, headers with lower-case names, raw body."""

    method: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class ApiReply:
    """The response envelope to send, or ``None`` to drop the connection (a lost reply)."""

    payload: dict[str, Any] | None


@dataclass
class Settings:
    """Behaviour knobs restored by ``reset()``."""

    creation_seconds: float = 3.0
    rate_limit: float = 20.0
    quota: int = 64
    latency: float = 0.0
    scf_transition_seconds: float = 1.0  # state-clock seconds an SCF function is Creating/Updating
    copy_seconds: float = 6.0
    command_seconds: float = 1.0
    rate_scope: str = "action"


@dataclass
class Runtime:
    """Everything ``reset()`` rebuilds."""

    state: State
    rng: random.Random
    faults: FaultSet = field(default_factory=FaultSet)
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(20.0))
    latency_default: float = 0.0
    latency_overrides: dict[str, float] = field(default_factory=dict)
    credentials: dict[str, Credential] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def latency_for(self, action: str) -> float:
        """Configured latency for ``action`` (override, else the default)."""
        return self.latency_overrides.get(action, self.latency_default)


def envelope(
    request_id: str, result: dict[str, Any] | None = None, error: ApiError | None = None
) -> dict[str, Any]:
    """``{"Response": {...result, "RequestId"}}`` or the error form."""
    if error is not None:
        return {
            "Response": {"Error": {"Code": error.code, "Message": error.message}, "RequestId": request_id}
        }
    return {"Response": {**(result or {}), "RequestId": request_id}}


def disk_ids_named(params: dict[str, Any]) -> list[str]:
    """Disk ids a request names: DiskId, DiskIds, or ``disk-id`` filter values (for fault matching)."""
    found: list[str] = []
    if isinstance(params.get("DiskId"), str):
        found.append(params["DiskId"])
    if isinstance(params.get("DiskIds"), list):
        found.extend(d for d in params["DiskIds"] if isinstance(d, str))
    filters = params.get("Filters")
    if isinstance(filters, list):
        for f in filters:
            if isinstance(f, dict) and f.get("Name") == "disk-id" and isinstance(f.get("Values"), list):
                found.extend(v for v in f["Values"] if isinstance(v, str))
    return found


def snapshot_ids_named(params: dict[str, Any]) -> list[str]:
    """Snapshot ids a request names: SnapshotId or SnapshotIds (for fault matching)."""
    found = [params["SnapshotId"]] if isinstance(params.get("SnapshotId"), str) else []
    if isinstance(params.get("SnapshotIds"), list):
        found.extend(s for s in params["SnapshotIds"] if isinstance(s, str))
    return found


def _scope_service(headers: dict[str, str]) -> str | None:
    """Best-effort service of a request whose authentication failed (for the ``rejected`` record)."""
    try:
        return parse_authorization(headers.get("authorization", "")).service
    except MalformedAuthorization:
        return None


class Gateway:
    """Runs API requests against the runtime under one lock."""

    def __init__(
        self,
        runtime: Runtime,
        clock: StateClock,
        *,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.lock = threading.RLock()
        self.runtime = runtime
        self.clock = clock
        self._wall = wall
        self._sleep = sleep

    @staticmethod
    def new_runtime(settings: Settings, rng_seed: int | None, credentials: list[Credential]) -> Runtime:
        """A fresh runtime for ``settings`` (no resources yet)."""
        rng = random.Random(rng_seed)
        state = State(
            IdFactory(rng),
            creation_seconds=settings.creation_seconds,
            quota=settings.quota,
            scf_transition_seconds=settings.scf_transition_seconds,
            copy_seconds=settings.copy_seconds,
            command_seconds=settings.command_seconds,
        )
        limiter = RateLimiter(settings.rate_limit, scope=settings.rate_scope)
        if settings.rate_limit > 0:  # SCF documents other limits for these actions
            for action, rate in SCF_RATE_LIMITS.items():
                limiter.set_rate(rate, action)
        return Runtime(
            state=state,
            rng=rng,
            limiter=limiter,
            latency_default=settings.latency,
            credentials={c.secret_id: c for c in credentials},
        )

    # -- pipeline --------------------------------------------------------------------------------
    def handle(self, req: ApiRequest) -> ApiReply:
        """Process one API request and return the reply to send."""
        with self.lock:
            rt = self.runtime
            credentials = dict(rt.credentials)
        trace = _Trace(
            gateway=self,
            runtime=rt,
            request_id=str(uuid.uuid4()),
            action=req.headers.get("x-tc-action", "").strip(),
            region=req.headers.get("x-tc-region", "").strip() or None,
        )
        try:
            identity = authenticate(
                req.method, req.query, req.headers, req.body, credentials=credentials, wall_now=self._wall()
            )
        except ApiError as err:
            trace.service = _scope_service(req.headers)
            return trace.reject(err)
        trace.service = identity.service
        try:
            trace.params = self._decode(req)
            handler = self._resolve(
                identity.service, req.headers.get("x-tc-version", "").strip(), trace.action
            )
        except ApiError as err:
            return trace.fail(err)

        with self.lock:
            if not rt.limiter.allow(trace.action, trace.region):
                limit = rt.limiter.rate_for(trace.action)
                throttled = ApiError(
                    "RequestLimitExceeded", f"Request rate for {trace.action} exceeds {limit:g} per second."
                )
                trace.fail(throttled)
                return trace.reject(throttled)
            injection = rt.faults.select(
                trace.action,
                trace.region,
                disk_ids_named(trace.params),
                rt.rng,
                snapshot_ids=snapshot_ids_named(trace.params),
            )
            delay = injection.delay + rt.latency_for(trace.action)
        if delay > 0:
            self._sleep(delay)  # outside the lock: slow calls must not serialise the others

        fault = injection.fault
        if fault is not None and fault.kind == "error":
            return trace.fail(ApiError(fault.code or "InternalError", fault.message), fault="error")

        with self.lock:
            now = self.clock.now()
            rt.state.tick(now)
            result: dict[str, Any] | None = None
            error: ApiError | None = None
            try:
                regionless = identity.service in REGIONLESS_SERVICES and not trace.region
                region = "" if regionless else rt.state.check_region(trace.region)
                result = handler(Context(rt.state, region, now), trace.params)
            except ApiError as err:
                error = err
            except Exception as exc:  # a bug in the emulator: answer like a server would, and log it
                log.exception("emulator action %s failed", trace.action)
                error = ApiError("InternalError", f"Emulator error: {type(exc).__name__}: {exc}")
            trace.record(error.code if error else None, fault.kind if fault else None)
        if isinstance(result, AfterLock):  # e.g. a synchronous Invoke: the function runs without the lock
            value = result.work()
            with self.lock:
                result = result.complete(value)
        if fault is not None and fault.kind == "lost_reply":
            return ApiReply(None)
        return ApiReply(envelope(trace.request_id, result, error))

    @staticmethod
    def _decode(req: ApiRequest) -> dict[str, Any]:
        if req.method == "GET":
            return decode_form(req.query)
        content_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "application/x-www-form-urlencoded":
            return decode_form(req.body.decode("utf-8", "replace"))
        return decode_json_body(req.body)

    @staticmethod
    def _resolve(service: str, version: str, action: str) -> Handler:
        if service not in SERVICES:
            emulated = ", ".join(sorted(SERVICES))
            raise ApiError("NoSuchProduct", f"The product `{service}` is not emulated ({emulated} are).")
        expected, actions = SERVICES[service]
        if not version:
            raise ApiError("MissingParameter", "The request is missing a required parameter `Version`.")
        if version != expected:
            raise ApiError("NoSuchVersion", f"The API version `{version}` of {service} does not exist.")
        if not action:
            raise ApiError("MissingParameter", "The request is missing a required parameter `Action`.")
        handler = actions.get(action)
        if handler is None:
            raise ApiError("InvalidAction", f"The action `{action}` of {service} {version} does not exist.")
        return handler


@dataclass
class _Trace:
    """One request's identity, for the ``calls`` and ``rejected`` records."""

    gateway: Gateway
    runtime: Runtime
    request_id: str
    action: str
    region: str | None
    service: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def record(self, error: str | None, fault: str | None = None) -> None:
        """Append to ``calls`` (requests that passed authentication)."""
        with self.gateway.lock:
            self.runtime.calls.append(
                {
                    "service": self.service,
                    "action": self.action,
                    "region": self.region,
                    "params": self.params,
                    "error": error,
                    "request_id": self.request_id,
                    "time": self.gateway.clock.now(),
                    "fault": fault,
                }
            )

    def fail(self, err: ApiError, fault: str | None = None) -> ApiReply:
        """Record ``err`` in ``calls`` and return its envelope."""
        self.record(err.code, fault)
        return ApiReply(envelope(self.request_id, error=err))

    def reject(self, err: ApiError) -> ApiReply:
        """Append to ``rejected`` (authentication or rate-limit refusals) and return the envelope."""
        with self.gateway.lock:
            self.runtime.rejected.append(
                {
                    "service": self.service,
                    "action": self.action,
                    "region": self.region,
                    "code": err.code,
                    "message": err.message,
                    "request_id": self.request_id,
                    "time": self.gateway.clock.now(),
                }
            )
        return ApiReply(envelope(self.request_id, error=err))
