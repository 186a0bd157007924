"""Results to a TDMQ CMQ queue and/or topic: one message per request.

Destinations, in this order, each at most once:

1. the configured queue (``CBSNAP_RESULT_QUEUE``),
2. the configured topic (``CBSNAP_RESULT_TOPIC``),
3. the request's ``replyTo`` (``{"queue": …}`` or ``{"topic": …}``).

So a request naming a queue while one is configured goes to both; naming the
configured queue again sends once.

The message (JSON, UTF-8)::

    {"requestKey": "timer/nightly/2026-11-28T02:00:00Z", "trigger": "timer",
     "correlation": {"pipeline": "run-77"},            # the request's, or null
     "part": 1, "parts": 1,
     "summary": {"total": 2, "succeeded": 1, "failed": 1, "notAttempted": 0},
     "results": [{"storageId": "disk-…", "code": 0, "snapshotId": "snap-…", …}, …]}

``summary`` always counts the whole request. When the results would make the
message larger than CMQ's 1 MB (1,048,576 bytes of UTF-8), they are split in
order over several messages, ``part`` 1..``parts``, each with the same
envelope, each as full as it can be. A consumer reassembles by ``requestKey``
and ``part``; the pair also identifies a duplicate (sends are retried, so a
message may, rarely, arrive twice).

A failed send never raises and never loses the results (the log sink has them
already, and the handler returns them): it is logged and reported as
``DeliveryReport(ok=False)`` with the cloud's error code and RequestId.
Message bodies and reports pass through the runtime's secret redactor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cbsnap.errors import CbsnapError, CloudError
from cbsnap.models import ReplyTo, SnapshotResult
from cbsnap.outcome import summarize
from cbsnap.scf import Deadline
from cbsnap.sinks import DeliveryReport, Redactor, RequestMeta

if TYPE_CHECKING:
    from cbsnap.logs import Log
    from cbsnap.tdmq import SentMessage, TdmqApi

# CMQ's message size limit ("MsgContent … total ≤ 1024 KB"); cbsnap.tdmq has the same
# constant, but importing it here would load the TDMQ SDK at cold start.
MAX_MESSAGE_BYTES = 1024 * 1024
_REPORT_LIMIT = 300
_MESSAGE_LIMIT = 200  # of the cloud's error message, in a report

TdmqApiProvider = Callable[[str], "TdmqApi"]


@dataclass(frozen=True)
class Destination:
    """A CMQ queue or topic, by name."""

    kind: Literal["queue", "topic"]
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def destinations(queue: str | None, topic: str | None, reply_to: ReplyTo | None) -> list[Destination]:
    """Where one request's results go besides the log, in order, without duplicates."""
    found: list[Destination] = []
    candidates: list[Destination] = []
    if queue:
        candidates.append(Destination("queue", queue))
    if topic:
        candidates.append(Destination("topic", topic))
    if reply_to is not None:
        if reply_to.queue:
            candidates.append(Destination("queue", reply_to.queue))
        if reply_to.topic:
            candidates.append(Destination("topic", reply_to.topic))
    for dest in candidates:
        if dest not in found:
            found.append(dest)
    return found


def _dumps(value: Any) -> str:
    # Compact, UTF-8 (not \u escapes: a CJK snapshot name stays 3 bytes, not 6), never raising
    # on a correlation value json cannot encode.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def build_messages(
    results: Sequence[SnapshotResult], meta: RequestMeta, *, limit: int = MAX_MESSAGE_BYTES
) -> list[str]:
    """The message bodies for one request: one, or several parts when one would exceed ``limit`` bytes.

    Results are never dropped: one result that cannot fit even alone still gets its own part
    (its send then fails and is reported).
    """
    summary = summarize(results)

    def envelope(part: int, parts: int, chunk: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {
            "requestKey": meta.request_key,
            "trigger": meta.trigger,
            "correlation": meta.correlation,
            "part": part,
            "parts": parts,
            "summary": summary,
            "results": list(chunk),
        }

    items = [r.to_dict() for r in results]
    whole = _dumps(envelope(1, 1, items))
    if _size(whole) <= limit:
        return [whole]
    # Compact JSON of a list is "[" + items joined by "," + "]", so sizes add up exactly.
    # The overhead uses the largest possible part numbers, so no part can outgrow its estimate.
    most = max(len(items), 1)
    overhead = _size(_dumps(envelope(most, most, [])))
    chunks: list[list[dict[str, Any]]] = [[]]
    used = overhead
    for item in items:
        cost = _size(_dumps(item)) + (1 if chunks[-1] else 0)
        if chunks[-1] and used + cost > limit:
            chunks.append([])
            used = overhead
            cost -= 1
        chunks[-1].append(item)
        used += cost
    return [_dumps(envelope(i, len(chunks), chunk)) for i, chunk in enumerate(chunks, 1)]


def _describe(exc: Exception) -> str:
    """One line for the report: the cloud's code and RequestId always survive the length cap."""
    if isinstance(exc, CloudError):
        rid = f" (RequestId {exc.request_id})" if exc.request_id else ""
        return f"{exc.action} failed: {exc.code}: {exc.message[:_MESSAGE_LIMIT]}{rid}"
    text = str(exc) if isinstance(exc, CbsnapError) else f"{type(exc).__name__}: {exc}"
    return text[:_REPORT_LIMIT]


class QueueSink:
    """Sends each request's results to its CMQ destinations (see the module docstring).

    Parameters
    ----------
    apis:
        Region → :class:`~cbsnap.tdmq.TdmqApi`; the runtime's provider builds the
        client (and imports the TDMQ SDK) on the first send only.
    region:
        The region of the queues and topics (the function's region).
    queue, topic:
        The configured destinations (``CBSNAP_RESULT_QUEUE`` / ``CBSNAP_RESULT_TOPIC``), if any.
    logger, redactor:
        Failures are logged; bodies and reports are redacted.
    limit:
        Message size limit in bytes (CMQ: 1 MB); tests lower it to exercise splitting.
    """

    def __init__(
        self,
        apis: TdmqApiProvider,
        *,
        region: str,
        queue: str | None = None,
        topic: str | None = None,
        logger: Log,
        redactor: Redactor,
        limit: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._apis = apis
        self._region = region
        self._queue = queue
        self._topic = topic
        self._logger = logger
        self._redact = redactor
        self._limit = limit

    def emit(
        self, results: Sequence[SnapshotResult], meta: RequestMeta, deliver_by: Deadline
    ) -> Sequence[DeliveryReport]:
        """Send the results to every destination; one report per destination. Never raises."""
        targets = destinations(self._queue, self._topic, meta.reply_to)
        if not targets:
            return ()
        try:
            bodies = [self._redact(body) for body in build_messages(results, meta, limit=self._limit)]
        except Exception as exc:  # a bug here must not cost the other sinks or the response
            self._logger.exception("sink.failed", extra={"sink": "queue", "request_key": meta.request_key})
            message = self._redact(f"could not build the message: {type(exc).__name__}: {exc}")
            return [DeliveryReport(sink=str(t), ok=False, message=message[:_REPORT_LIMIT]) for t in targets]
        return [self._send(target, bodies, deliver_by, meta) for target in targets]

    def _send(
        self, target: Destination, bodies: Sequence[str], deadline: Deadline, meta: RequestMeta
    ) -> DeliveryReport:
        sent: list[str] = []
        part = 1
        try:
            api = self._apis(self._region)
            for part, body in enumerate(bodies, 1):  # noqa: B007 - part is reported on failure
                receipt: SentMessage
                if target.kind == "queue":
                    receipt = api.send_queue_message(target.name, body, deadline)
                else:
                    receipt = api.publish_topic_message(target.name, body, deadline)
                sent.append(receipt.message_id or "")
        except Exception as exc:  # CloudError, DeadlineReached, ConfigurationError, or a bug
            problem = _describe(exc)
            if len(bodies) > 1:
                problem = f"part {part}/{len(bodies)}: {problem}"
            problem = self._redact(problem)
            record = {"sink": str(target), "request_key": meta.request_key, "error": problem}
            if isinstance(exc, CbsnapError):
                self._logger.warning("sink.failed", extra=record)
            else:
                self._logger.exception("sink.failed", extra=record)
            return DeliveryReport(
                sink=str(target), ok=False, message=problem, message_id=",".join(filter(None, sent)) or None
            )
        self._logger.info(
            "sink.delivered",
            extra={"sink": str(target), "request_key": meta.request_key, "message_ids": sent},
        )
        note = f"{len(bodies)} parts" if len(bodies) > 1 else ""
        return DeliveryReport(sink=str(target), ok=True, message=note, message_id=",".join(sent) or None)
