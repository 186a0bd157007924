"""A local stand-in for SCF's CMQ trigger: pops messages from an emulator queue
and invokes the message handler with them, the way the platform would.

Used by ``cbsnap drain`` and by tests to run fan-out chunks and delayed
re-checks end to end on one machine. Dev/test only (excluded from the deploy zip).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Receive = Callable[[int], list[dict[str, Any]]]
Handler = Callable[[Any, Any], Any]


def cmq_event(messages: list[dict[str, Any]], queue: str) -> dict[str, Any]:
    """The CMQ trigger event SCF would deliver for these emulator messages."""
    return {
        "Records": [
            {
                "CMQ": {
                    "type": "queue",
                    "topicOwner": 0,
                    "topicName": queue,
                    "subscriptionName": "cbsnap-local-runner",
                    "publishTime": "1970-01-01T00:00:00.000Z",
                    "msgId": m["MsgId"],
                    "requestId": m["MsgId"],
                    "msgBody": m["MsgContent"],
                    "msgTag": "",
                }
            }
            for m in messages
        ]
    }


def http_receive(emulator_url: str, queue: str) -> Receive:
    """``receive`` through the emulator's admin API (another process's emulator)."""

    def receive(max_messages: int) -> list[dict[str, Any]]:
        body = json.dumps({"queue": queue, "max_messages": max_messages}).encode()
        request = urllib.request.Request(  # noqa: S310 - the emulator on loopback
            f"{emulator_url.rstrip('/')}/_emulator/receive",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            messages: list[dict[str, Any]] = json.loads(response.read())["messages"]
            return messages

    return receive


@dataclass
class DrainReport:
    """What a drain did: invocations, messages, redeliveries, and every handler answer."""

    invocations: int = 0
    messages: int = 0
    redeliveries: int = 0
    responses: list[Any] = field(default_factory=list)

    def results(self) -> list[dict[str, Any]]:
        """Every per-disk result of every answer."""
        return [r for resp in self.responses if isinstance(resp, dict) for r in resp.get("results", [])]


def drain(
    receive: Receive,
    handler: Handler,
    *,
    queue: str,
    context: dict[str, Any] | None = None,
    batch: int = 10,
    max_redeliveries: int = 2,
    max_invocations: int = 10_000,
) -> DrainReport:
    """Deliver every visible message of ``queue`` to ``handler`` until the queue is empty.

    An invocation that raises is delivered again (as SCF retries an async event),
    up to ``max_redeliveries`` times.
    """
    report = DrainReport()
    context = context or {"time_limit_in_ms": 60_000, "request_id": "local-drain", "function_name": "local"}
    while report.invocations < max_invocations:
        messages = receive(batch)
        if not messages:
            return report
        report.messages += len(messages)
        event = cmq_event(messages, queue)
        for attempt in range(max_redeliveries + 1):
            report.invocations += 1
            try:
                report.responses.append(handler(event, context))
                break
            except Exception:  # the platform would retry the event; so do we
                if attempt == max_redeliveries:
                    raise
                report.redeliveries += 1
    return report
