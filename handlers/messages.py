"""Queue triggers (CKafka; TDMQ for Pulsar through EventBridge) → snapshots.

Every message body is a request document. Records are independent: a malformed record
becomes a 9003 result naming its message and the rest of the batch runs. Every disk ends
with a result in the log; the handler raises only afterwards, when some disk's work is
unfinished (not attempted, or a transient failure), so the platform redelivers the event.

Example event (``events/ckafka.json``, abridged)::

    {"Records": [{"Ckafka": {"topic": "cbsnap-requests", "partition": 0, "offset": 42,
                             "msgBody": "{\\"storageId\\": \\"disk-g73hhs4o\\"}"}}]}
"""

from __future__ import annotations

from typing import Any

from cbsnap.events.queue import BatchReport, parse_queue_event
from cbsnap.metrics import metered
from cbsnap.runtime import get_runtime


@metered("messages")
def main_handler(event: Any, context: Any) -> dict[str, Any]:
    """Snapshot the disks of every message; returns ``{"results": [...], …summary}``.

    Raises :class:`~cbsnap.events.queue.MessagesNotAttempted` when disks were left
    unfinished (or their completion re-check could not be handed on).
    """
    runtime = get_runtime()
    deadline = runtime.begin_invocation(context)
    pipeline = runtime.pipeline
    batch = parse_queue_event(event)
    report = BatchReport(batch.source)
    for message in batch.messages:
        meta = message.meta()
        if message.problem is not None:
            outcome = pipeline.reject(message.problem, meta, deadline)
        else:
            outcome = pipeline.run(message.document, meta, deadline)
        report.add(message, outcome)
    report.raise_if_unattempted()
    return report.to_response()
