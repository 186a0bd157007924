"""SCF message-queue triggers (CMQ topic, CKafka, TDMQ via EventBridge) → snapshots.

Every message body is a request document. Records are independent: a malformed
record becomes a 9003 result naming its message and the rest of the batch runs.
Every attempted disk ends with a final result and is never raised; the handler
raises only when disks were left unattempted because the invocation ran out of
time, after every result was logged, so the platform redelivers the event.

Example event (``events/cmq.json``)::

    {"Records": [{"CMQ": {"type": "topic", "topicName": "cbsnap-requests",
                          "msgId": "1407374883553281",
                          "msgBody": "{\\"storageId\\": \\"disk-g73hhs4o\\"}"}}]}
"""

from __future__ import annotations

from typing import Any

from cbsnap.events.queue import BatchReport, is_recheck, parse_queue_event
from cbsnap.runtime import get_runtime


def main_handler(event: Any, context: Any) -> dict[str, Any]:
    """Snapshot the disks of every message; returns ``{"results": [...], …summary}``.

    Raises :class:`~cbsnap.events.queue.MessagesNotAttempted` when disks were left unattempted,
    and :class:`~cbsnap.events.queue.RechecksNotScheduled` when a completion re-check
    (``{"cbsnapRecheck": …}``, :mod:`cbsnap.notify`) could not send its follow-up.
    """
    runtime = get_runtime()
    deadline = runtime.deadline_for(context)
    batch = parse_queue_event(event)
    report = BatchReport(batch.source)
    for message in batch.messages:
        meta = message.meta()
        if message.problem is not None:
            outcome = runtime.reject(message.problem, meta)
        elif is_recheck(message.document):  # a completion re-check from cbsnap's own work queue
            outcome = runtime.recheck(message.document, meta, deadline)
        else:
            outcome = runtime.run(message.document, meta, deadline)
        report.add(message, outcome)
    report.raise_if_unattempted()
    return report.to_response()
