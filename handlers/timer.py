"""SCF timer trigger → snapshots.

The timer's ``Message`` holds the request document as JSON; an empty Message
uses ``CBSNAP_DEFAULT_REQUEST``. A request that fails validation is reported,
not raised: raising makes SCF retry an async event twice for nothing.

Example event (``events/timer.json``)::

    {"Type": "Timer", "TriggerName": "nightly", "Time": "2026-11-28T02:00:00Z",
     "Message": "{\\"disks\\": [\\"disk-g73hhs4o\\"], \\"snapshotName\\": \\"nightly\\"}"}
"""

from __future__ import annotations

from typing import Any

from cbsnap.events.timer import parse_timer_event
from cbsnap.runtime import get_runtime
from cbsnap.sinks import RequestMeta


def main_handler(event: Any, context: Any) -> dict[str, Any]:
    """Snapshot the disks named by a timer firing; returns ``{"results": [...], …summary}``."""
    runtime = get_runtime()
    deadline = runtime.deadline_for(context)
    firing = parse_timer_event(event, runtime.settings.default_request)
    meta = RequestMeta(trigger="timer", request_key=firing.request_key, source_id=firing.trigger_name or None)
    if firing.problem is not None:
        outcome = runtime.reject(firing.problem, meta)
    else:
        outcome = runtime.run(firing.document, meta, deadline)
    return outcome.to_response()
