"""Direct invocations → snapshots: fan-out chunks and completion re-check links (cbsnap's own
asynchronous self-invocations), and request documents invoked directly.

When some disk's work is unfinished (or a re-check link could not hand on the next one), the
handler raises after logging every result: SCF retries an asynchronous run (the function's
async retry setting), and the request's keys make the retry adopt what was already made.

Example event (a chunk, abridged)::

    {"cbsnapChunk": {"v": 1, "parentKey": "timer/nightly/…", "trigger": "timer", "index": 1,
                     "of": 3, "region": "ap-guangzhou"},
     "request": {"disks": [{"storageId": "disk-g73hhs4o", "snapshotName": "nightly"}],
                 "region": "ap-guangzhou", "idempotencyKey": "fanout-…"}}
"""

from __future__ import annotations

from typing import Any

from cbsnap.errors import RunUnfinished
from cbsnap.events.invoked import TRIGGER, invoked_kind
from cbsnap.metrics import metered
from cbsnap.runtime import get_runtime
from cbsnap.scf import InvocationContext
from cbsnap.sinks import RequestMeta


@metered("invoked")
def main_handler(event: Any, context: Any) -> dict[str, Any]:
    """Run one directly invoked event; returns ``{"results": [...], …summary}``."""
    runtime = get_runtime()
    deadline = runtime.begin_invocation(context)
    request_id = InvocationContext.from_scf(context).request_id or None
    meta = RequestMeta(
        trigger=TRIGGER, request_key=f"{TRIGGER}/{request_id}", source_id=request_id, invocation_id=request_id
    )
    pipeline = runtime.pipeline
    kind = invoked_kind(event)
    if kind == "chunk":
        outcome = pipeline.run_chunk(event, meta, deadline)
    elif kind == "recheck":
        outcome = pipeline.recheck(event, meta, deadline)
    else:
        request = pipeline.prepare(event, meta)
        outcome = pipeline.handle(request, deadline)
        meta = request.meta
    response = outcome.to_response(meta)
    if outcome.needs_redelivery:
        raise RunUnfinished(response, outcome.not_attempted, outcome.unscheduled)
    return response
