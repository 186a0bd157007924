"""Queue triggers (CKafka, TDMQ via EventBridge) and cbsnap's own work items → snapshots.

Every message body is a request document, a fan-out chunk (``{"cbsnapChunk": …}``) or a
completion re-check (``{"cbsnapRecheck": …}``). Records are independent: a malformed record
becomes a 9003 result naming its message and the rest of the batch runs. Every disk ends
with a result in the log; the handler raises only afterwards, when some disk's work is
unfinished (not attempted, or a transient failure), so the platform redelivers the event.

Example event (``events/ckafka.json``, abridged)::

    {"Records": [{"Ckafka": {"topic": "cbsnap-requests", "partition": 0, "offset": 42,
                             "msgBody": "{\\"storageId\\": \\"disk-g73hhs4o\\"}"}}]}
"""

from __future__ import annotations

from typing import Any

from cbsnap.events.queue import BatchReport, is_recheck, parse_queue_event
from cbsnap.fanout import is_chunk
from cbsnap.metrics import metered
from cbsnap.runtime import get_runtime


@metered("messages")
def main_handler(event: Any, context: Any) -> dict[str, Any]:
    """Snapshot the disks of every message; returns ``{"results": [...], …summary}``.

    Raises :class:`~cbsnap.events.queue.MessagesNotAttempted` when disks were left
    unfinished, and :class:`~cbsnap.events.queue.RechecksNotScheduled` when a completion
    re-check could not hand on its follow-up.
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
        elif is_recheck(message.document):
            outcome = pipeline.recheck(message.document, meta, deadline)
        elif is_chunk(message.document):
            outcome = pipeline.run_chunk(message.document, meta, deadline)
        else:
            outcome = pipeline.run(message.document, meta, deadline)
        report.add(message, outcome)
    report.raise_if_unattempted()
    return report.to_response()
