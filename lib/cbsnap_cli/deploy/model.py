"""The desired state ``cbsnap deploy`` makes the cloud match: a function, its triggers, its async settings."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

# SCF's own defaults for a function's asynchronous retries (UpdateFunctionEventInvokeConfig).
DEFAULT_RETRY_NUM = 2
DEFAULT_MSG_TTL = 21600


@dataclass(frozen=True)
class FunctionSpec:
    """The function's configuration as CreateFunction/UpdateFunctionConfiguration take it."""

    name: str
    namespace: str
    region: str
    runtime: str
    handler: str
    memory_size: int
    timeout: int
    init_timeout: int
    description: str
    role: str
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerSpec:
    """One trigger. ``name`` is None for the function URL, which SCF names itself (one per function)."""

    type: str  # "timer", "ckafka" or "http"
    name: str | None
    desc: dict[str, object]  # timer: {"cron"}; ckafka: its four strings; http: AuthType and NetConfig flags
    argument: str = ""  # timer only: the event's Message
    enable: bool = True
    qualifier: str = "$DEFAULT"

    @property
    def key(self) -> tuple[str, str | None]:
        """Identity across runs: type and name (the function URL: type alone)."""
        return (self.type, self.name if self.type != "http" else None)

    @property
    def label(self) -> str:
        """``timer/nightly``, ``ckafka/ckafka-x-topic``, ``function URL``."""
        return "function URL" if self.type == "http" else f"{self.type}/{self.name}"


@dataclass(frozen=True)
class AsyncSpec:
    """Asynchronous retry settings: retries of a failed run and how long an event is kept."""

    retry_num: int = DEFAULT_RETRY_NUM
    msg_ttl: int = DEFAULT_MSG_TTL


@dataclass(frozen=True)
class CodePackage:
    """The zip to upload, with its SHA-256 (compared with GetFunctionAddress's CodeSha256)."""

    path: Path
    data: bytes

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the zip bytes."""
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Desired:
    """Everything the configuration file asks for."""

    stage: str
    function: FunctionSpec
    triggers: tuple[TriggerSpec, ...]
    async_config: AsyncSpec
    ignored: tuple[str, ...] = ()  # notes on what the file holds for other tools (apigw…)
