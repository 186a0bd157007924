"""The SCF timer trigger's event: ``{"Type":"Timer","TriggerName","Time","Message"}``.

``Message`` is the trigger's argument string (≤ 4 KB): the request document as
JSON. A retried firing keeps its ``Time``; the next firing has a new one, so
``TriggerName`` + ``Time`` identifies one firing.

``TriggerName`` and ``Time`` become the request key, so they must be text: one that
holds a lone surrogate (JSON ``"\ud800"``) is refused, and carried escaped
(:mod:`cbsnap.events.text`) so that the refusal itself can be keyed and logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cbsnap.events.text import escaped, is_text


@dataclass(frozen=True)
class TimerFiring:
    """What the timer handler needs from the event."""

    trigger_name: str
    time: str
    document: Any  # the request document (JSON text, a dict) or None when absent
    problem: str | None = None  # set when the event itself is malformed

    @property
    def request_key(self) -> str:
        """Identifies this firing; stable across SCF's retries of the same firing."""
        return f"timer/{self.trigger_name}/{self.time}"


def parse_timer_event(event: Any, default_request: dict[str, Any] | None) -> TimerFiring:
    """Read a timer event; never raises. An empty ``Message`` uses ``default_request``."""
    if not isinstance(event, dict):
        return TimerFiring("", "", None, f"timer event must be a JSON object, got {type(event).__name__}")
    name = event.get("TriggerName")
    fired = event.get("Time")
    kind = event.get("Type")
    name = name if isinstance(name, str) else ""
    fired = fired if isinstance(fired, str) else ""
    if not isinstance(kind, str) or kind.lower() != "timer":
        return TimerFiring(escaped(name), escaped(fired), None, "not a timer event: Type must be 'Timer'")
    for field, value in (("TriggerName", name), ("Time", fired)):
        if not is_text(value):  # it would be hashed into the request key, and logged
            problem = f"the timer's {field} is not valid Unicode text (it holds a lone surrogate)"
            return TimerFiring(escaped(name), escaped(fired), None, problem)
    message = event.get("Message", "")
    if message is None or (isinstance(message, str) and not message.strip()):
        if default_request is None:
            return TimerFiring(
                name, fired, None, "the timer's Message is empty and CBSNAP_DEFAULT_REQUEST is not set"
            )
        return TimerFiring(name, fired, default_request)
    if not isinstance(message, (str, dict)):
        return TimerFiring(name, fired, None, "the timer's Message must be a JSON string")
    return TimerFiring(name, fired, message)
