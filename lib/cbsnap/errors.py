"""cbsnap's exceptions. SDK exceptions become :class:`CloudError` in one place
(:mod:`cbsnap.client`); nothing else in the package sees the SDK's types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cbsnap.codes import SeedCode, seed_code_for

# SDK client-side codes meaning the request may or may not have reached the
# server: for a mutating call the outcome is unknown.
NETWORK_CODES = frozenset({"ClientNetworkError", "ServerNetworkError"})


class CbsnapError(Exception):
    """Base class of cbsnap's own exceptions."""


class ConfigurationError(CbsnapError):
    """The function's environment is unusable (missing credentials, bad setting)."""


class DeadlineReached(CbsnapError):
    """A call was not started because the invocation's deadline would pass first."""

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__(f"{action} not started: the invocation's deadline came first")


class CloudError(CbsnapError):
    """A Tencent Cloud API call failed.

    ``code`` is the API 3.0 error code (or the SDK's client-side code such as
    ``ClientNetworkError``), ``request_id`` the cloud's RequestId when there was one.
    """

    def __init__(self, action: str, code: str, message: str, request_id: str | None = None) -> None:
        self.action = action
        self.code = code
        self.message = message
        self.request_id = request_id
        super().__init__(self.describe())

    @property
    def seed_code(self) -> SeedCode:
        """The seed contract's numeric code for this error."""
        return seed_code_for(self.code)

    @property
    def is_throttle(self) -> bool:
        """The API refused the call for rate: nothing happened, try again later."""
        return self.code.startswith("RequestLimitExceeded")

    @property
    def is_network(self) -> bool:
        """No readable answer: a mutating call may or may not have been committed."""
        return self.code in NETWORK_CODES

    @property
    def is_transient(self) -> bool:
        """Worth a few quick retries: the same call may well succeed in seconds."""
        return (
            self.is_network
            or self.code.startswith("InternalError")
            or self.code in ("ResourceBusy", "InvalidDisk.Busy")
        )

    @property
    def is_ambiguous(self) -> bool:
        """After this failure a mutating call may or may not have been committed."""
        return self.is_network or self.code.startswith("InternalError")

    def describe(self) -> str:
        """One line for results and logs: action, cloud code, message, RequestId."""
        rid = f" (RequestId {self.request_id})" if self.request_id else ""
        return f"{self.action} failed: {self.code}: {self.message}{rid}"


class RedeliveryRequested(CbsnapError):
    """Raised by a handler, after every result was logged, when some disk's work is unfinished
    (not attempted, or ended with a transient code): the platform then delivers the event
    again, and the per-disk keys make the redelivery adopt what was already made.

    ``response`` is what the handler would have returned (SCF discards it; local runs,
    the CLI and tests read it).
    """

    def __init__(self, message: str, response: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.response = response


class RunUnfinished(RedeliveryRequested):
    """A run (timer firing, direct invocation) left work unfinished: raised after every result
    was logged, so that SCF retries the asynchronous run with the same event."""

    def __init__(
        self, response: dict[str, Any], not_attempted: Sequence[str], unscheduled: Sequence[str] = ()
    ) -> None:
        self.request_key = str(response.get("requestKey"))
        listed = ", ".join(not_attempted[:20]) + (" …" if len(not_attempted) > 20 else "")
        parts = [
            f"run {self.request_key} is unfinished ({response.get('notAttempted')} disk(s) not attempted, "
            f"{response.get('failed')} failed of {response.get('total')})"
        ]
        if unscheduled:
            parts.append(f"{len(unscheduled)} snapshot(s) whose completion re-check was not handed on")
        super().__init__(
            "; ".join(parts)
            + "; failing the invocation so SCF retries it"
            + (f": {listed}" if listed else ""),
            response,
        )
