"""Handing work on to a later invocation of this function (fan-out chunks, re-check links).

The SCF SDK client (:mod:`cbsnap.scf_api`) is built on the first send: deciding *whether*
work can be handed on (is there a function to invoke?) costs no import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from cbsnap.errors import ConfigurationError
from cbsnap.scf import Deadline, FunctionRef, current_function


class AsyncInvoker(Protocol):
    """What a self-invocation needs from SCF (:class:`cbsnap.scf_api.ScfApi` implements it)."""

    def invoke_async(self, function: FunctionRef, event: str, deadline: Deadline) -> str | None:
        """Queue one asynchronous run of ``function`` with ``event``; its FunctionRequestId."""
        ...


class SelfInvoker:
    """Sends events to this function (or ``CBSNAP_FANOUT_FUNCTION``) as asynchronous runs."""

    def __init__(
        self, apis: Callable[[str], AsyncInvoker], *, region: str, target: FunctionRef | None = None
    ) -> None:
        self._apis = apis
        self._region = region
        self._target = target

    def target(self) -> FunctionRef:
        """The function the events go to; ConfigurationError when it cannot be known."""
        function = self._target or current_function.get()
        if function is None:
            raise ConfigurationError(
                "cannot hand work on: no function to invoke (set CBSNAP_FANOUT_FUNCTION outside SCF)"
            )
        return function

    def send(self, event: str, deadline: Deadline) -> str | None:
        """One asynchronous run with ``event``; returns its FunctionRequestId."""
        return self._apis(self._region).invoke_async(self.target(), event, deadline)


class InvokeChunkTransport:
    """Fan-out chunks as asynchronous self-invocations (:class:`~cbsnap.fanout.ChunkTransport`)."""

    def __init__(self, invoker: SelfInvoker) -> None:
        self._invoker = invoker

    @property
    def ready(self) -> bool:
        """True when there is a function to invoke (on SCF, or with CBSNAP_FANOUT_FUNCTION)."""
        try:
            self._invoker.target()
        except ConfigurationError:
            return False
        return True

    @property
    def name(self) -> str:
        """``invoke:<namespace>/<name>:<qualifier>`` for reports."""
        try:
            return f"invoke:{self._invoker.target()}"
        except ConfigurationError:
            return "invoke:?"

    def send(self, body: str, deadline: Deadline) -> str | None:
        """Invoke the function with one chunk; its FunctionRequestId."""
        return self._invoker.send(body, deadline)
