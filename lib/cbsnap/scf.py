"""The SCF invocation context and the deadline derived from it.

On SCF ``context`` is a plain dict (``time_limit_in_ms``, ``request_id``,
``function_name``, …) with no remaining-time function, so the remaining time is
computed from the limit and the moment the handler started. Objects with
attributes (a Lambda-style context, a test double) are accepted too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

Clock = Callable[[], float]

DEFAULT_TIME_LIMIT_MS = 3000  # SCF's API default timeout


def _get(context: Any, name: str, default: Any = None) -> Any:
    if isinstance(context, dict):
        return context.get(name, default)
    return getattr(context, name, default)


@dataclass(frozen=True, slots=True)
class InvocationContext:
    """The parts of the SCF context cbsnap uses, whatever shape it arrived in."""

    request_id: str
    function_name: str
    time_limit_ms: int
    memory_limit_mb: int
    namespace: str
    function_version: str = "$LATEST"

    @classmethod
    def from_scf(cls, context: Any) -> InvocationContext:
        """Adapt an SCF dict context, an attribute-style object, or None (local runs)."""
        try:
            limit = int(_get(context, "time_limit_in_ms", DEFAULT_TIME_LIMIT_MS))
        except (TypeError, ValueError):
            limit = DEFAULT_TIME_LIMIT_MS
        getter = _get(context, "get_remaining_time_in_millis")
        if callable(getter):  # a Lambda-style object knows its remaining time better
            limit = int(getter())
        try:
            memory = int(_get(context, "memory_limit_in_mb", 128))
        except (TypeError, ValueError):
            memory = 128
        return cls(
            request_id=str(_get(context, "request_id", "") or _get(context, "aws_request_id", "") or ""),
            function_name=str(_get(context, "function_name", "") or "local"),
            time_limit_ms=limit,
            memory_limit_mb=memory,
            namespace=str(_get(context, "namespace", "") or "default"),
            function_version=str(_get(context, "function_version", "") or "$LATEST"),
        )


_FUNCTION_RE = re.compile(
    r"^(?:(?P<namespace>[A-Za-z0-9_-]{1,30})/)?(?P<name>[A-Za-z][A-Za-z0-9_-]{0,59})(?::(?P<qualifier>[$A-Za-z0-9_.-]{1,64}))?$"
)


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """An SCF function to invoke: ``[namespace/]name[:qualifier]``."""

    name: str
    namespace: str = "default"
    qualifier: str = "$LATEST"

    @classmethod
    def parse(cls, text: str) -> FunctionRef:
        """Read ``[namespace/]name[:qualifier]`` (``CBSNAP_FANOUT_FUNCTION``); ValueError when malformed."""
        match = _FUNCTION_RE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"expected [namespace/]name[:qualifier], got {text!r}")
        return cls(
            name=match["name"],
            namespace=match["namespace"] or "default",
            qualifier=match["qualifier"] or "$LATEST",
        )

    @classmethod
    def running(cls, context: InvocationContext) -> FunctionRef:
        """The function (and version) this invocation runs in, from the SCF context."""
        return cls(context.function_name, context.namespace, context.function_version)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.qualifier}"


# The function serving the current invocation (set by the runtime when one begins):
# cbsnap's asynchronous self-invocations go to it unless CBSNAP_FANOUT_FUNCTION says otherwise.
current_function: ContextVar[FunctionRef | None] = ContextVar("cbsnap_current_function", default=None)


class Deadline:
    """When this invocation must have returned its results.

    It is the function's time limit minus a safety margin, counted from when
    the handler started, so that results are logged and returned before SCF
    kills the function.
    """

    def __init__(self, expires_at: float, clock: Clock = time.monotonic) -> None:
        self._expires_at = expires_at
        self._clock = clock

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        """A deadline ``seconds`` from now on ``clock``."""
        return cls(clock() + seconds, clock)

    @classmethod
    def for_invocation(
        cls, context: InvocationContext, safety_margin_ms: int, clock: Clock = time.monotonic
    ) -> Deadline:
        """The deadline for one SCF invocation: its time limit less the safety margin.

        The margin is capped at a third of the limit so short functions still get work done.
        """
        margin = min(safety_margin_ms, context.time_limit_ms // 3)
        return cls.after(max(context.time_limit_ms - margin, 0) / 1000.0, clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(self._expires_at - self._clock(), 0.0)

    @property
    def expired(self) -> bool:
        """True once no time is left."""
        return self.remaining() <= 0.0
