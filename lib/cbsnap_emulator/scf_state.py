"""SCF state: functions (per region and namespace), their triggers and async settings, invocations.

Like the rest of :class:`~cbsnap_emulator.state.State` it is not thread-safe: the emulator lock guards
it. A function's status is a pure function of the state clock: after a create or an update it is
``Creating``/``Updating`` until ``busy_until``, then ``Active`` (SCF's status page, doc 583/115197).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .scf_runner import ScfRunner

# SCF keeps 2 retries of a failed asynchronous run unless UpdateFunctionEventInvokeConfig says otherwise,
# and keeps an undelivered event 6 h (21600 s).
DEFAULT_RETRY_NUM = 2
DEFAULT_MSG_TTL = 21600

FunctionKey = tuple[str, str, str]  # (region, namespace, function name)


@dataclass
class ScfTrigger:
    """One trigger of a function, as ListTriggers shows it."""

    type: str
    name: str
    desc: str  # as stored and returned (timer: {"cron": …}; http: with the URLs SCF assigns)
    custom_argument: str
    enable: int
    qualifier: str
    description: str
    added_at: float
    modified_at: float
    resource_id: str


@dataclass
class ScfFunction:
    """A function's configuration and code; ``busy_until`` drives Creating/Updating → Active."""

    region: str
    namespace: str
    name: str
    function_id: str
    runtime: str
    handler: str
    memory_size: int
    timeout: int
    init_timeout: int
    description: str
    role: str
    environment: list[dict[str, str]]
    added_at: float
    modified_at: float
    code_zip: bytes | None = None  # uploaded through the API
    code_dirs: tuple[Path, ...] = ()  # registered by add_function: directories put on sys.path
    busy_status: str = "Creating"
    busy_until: float = 0.0
    retry_num: int = DEFAULT_RETRY_NUM
    msg_ttl: int = DEFAULT_MSG_TTL
    triggers: list[ScfTrigger] = field(default_factory=list)

    @property
    def key(self) -> FunctionKey:
        """The function's identity: region, namespace, name."""
        return (self.region, self.namespace, self.name)

    def status(self, now: float) -> str:
        """``Creating``/``Updating`` until ``busy_until`` on the state clock, then ``Active``."""
        return self.busy_status if now < self.busy_until else "Active"

    def set_busy(self, status: str, now: float, seconds: float) -> None:
        """Enter a transitional status for ``seconds`` of state-clock time."""
        self.busy_status = status
        self.busy_until = now + seconds
        self.modified_at = now

    @property
    def code_sha256(self) -> str:
        """SHA-256 (hex) of the uploaded zip; of the directory listing and contents for add_function."""
        if self.code_zip is not None:
            return hashlib.sha256(self.code_zip).hexdigest()
        digest = hashlib.sha256()
        for directory in self.code_dirs:
            digest.update(str(directory).encode())
        return digest.hexdigest()

    @property
    def code_size(self) -> int:
        """Bytes of the uploaded zip (0 for a directory-backed function)."""
        return len(self.code_zip) if self.code_zip is not None else 0


@dataclass
class Attempt:
    """One run of an invocation: the return value or the error, the captured output, the duration."""

    ok: bool
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    stdout: str = ""
    stderr: str = ""
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (admin API and facade)."""
        return {
            "ok": self.ok,
            "result": self.result,
            "errorType": self.error_type,
            "errorMessage": self.error_message,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "durationMs": self.duration_ms,
        }


@dataclass
class Invocation:
    """An Invoke request: ``pending`` until run, then ``done``/``failed``; a failed async run with retries
    left goes back to ``pending`` (the emulator does not wait SCF's minute between attempts)."""

    request_id: str
    key: FunctionKey
    qualifier: str
    event: str
    invocation_type: str  # "Event" or "RequestResponse"
    routing_key: str | None
    created_at: float
    retries_left: int
    state: str = "pending"  # pending | running | done | failed
    attempts: list[Attempt] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (admin API and facade)."""
        region, namespace, name = self.key
        return {
            "id": self.request_id,
            "requestId": self.request_id,
            "functionName": name,
            "namespace": namespace,
            "region": region,
            "qualifier": self.qualifier,
            "event": self.event,
            "invocationType": self.invocation_type,
            "routingKey": self.routing_key,
            "createdAt": self.created_at,
            "state": self.state,
            "retriesLeft": self.retries_left,
            "attempts": [a.to_dict() for a in self.attempts],
        }


class ScfState:
    """Functions by (region, namespace, name) and invocations in arrival order."""

    def __init__(self, transition_seconds: float) -> None:
        self.transition_seconds = transition_seconds
        self.functions: dict[FunctionKey, ScfFunction] = {}
        self.invocations: dict[str, Invocation] = {}
        self.runner: ScfRunner | None = None  # set by the Emulator: runs handlers in child processes

    def function(self, region: str, namespace: str, name: str) -> ScfFunction | None:
        """The function, or None."""
        return self.functions.get((region, namespace, name))
