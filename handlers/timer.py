"""SCF timer trigger → snapshots.

The timer's ``Message`` holds the request document as JSON; an empty Message
uses ``CBSNAP_DEFAULT_REQUEST``. A request that fails validation is reported, not
raised (a retry could not fix it). When some disk's work is unfinished (out of time,
or a transient failure), the handler raises after logging every result: SCF retries
an asynchronous timer run, and the ``TriggerName`` + ``Time`` key makes the retry
adopt what was already made (docs/triggers.md).

Example event (``events/timer.json``)::

    {"Type": "Timer", "TriggerName": "nightly", "Time": "2026-11-28T02:00:00Z",
     "Message": "{\\"disks\\": [\\"disk-g73hhs4o\\"], \\"snapshotName\\": \\"nightly\\"}"}
"""

from __future__ import annotations

from typing import Any

from cbsnap.errors import RunUnfinished
from cbsnap.events.timer import parse_timer_event
from cbsnap.metrics import metered
from cbsnap.runtime import get_runtime
from cbsnap.sinks import RequestMeta


@metered("timer")
def main_handler(event: Any, context: Any) -> dict[str, Any]:
    """Snapshot the disks named by a timer firing; returns ``{"results": [...], …summary}``."""
    runtime = get_runtime()
    deadline = runtime.begin_invocation(context)
    firing = parse_timer_event(event, runtime.settings.default_request)
    meta = RequestMeta(trigger="timer", request_key=firing.request_key, source_id=firing.trigger_name or None)
    if firing.problem is not None:
        return runtime.pipeline.reject(firing.problem, meta, deadline).to_response(meta)
    request = runtime.pipeline.prepare(firing.document, meta)
    outcome = runtime.pipeline.handle(request, deadline)
    response = outcome.to_response(request.meta)
    if outcome.needs_redelivery:
        raise RunUnfinished(response, outcome.not_attempted, outcome.unscheduled)
    return response
