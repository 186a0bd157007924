"""The SCF message-queue triggers' events, read into one request per message.

These shapes arrive at the same handler (samples in ``events/``)::

    CKafka     {"Records": [{"Ckafka": {"topic", "partition", "offset", "msgKey", "msgBody"}}]}
    TDMQ       {"specversion", "id", "type": "connector:tdmq", "source": "tdmq.cloud.tencent",
                "data": {"topic", "msgId", "msgBody", …}}          (one message, via EventBridge)
    TDMQ batch {"EventList": [<the CloudEvent above>, …]}          (EventBridge, batching on)

SCF's CMQ trigger is gone with CMQ (retired 2022-12-31): a ``Records[].CMQ`` record is refused
like any unknown record. A TDMQ-CMQ topic pushes over HTTP to the function URL instead, read
by :func:`parse_cmq_push` for the webhook's push route (key ``cmq/<msgId>``).

Each ``msgBody`` is a request document (JSON text; base64 of JSON text is accepted
too). Records are independent: a malformed record becomes a message with a
``problem``, reported as a 9003 result, and the others still run. Nothing here raises
for bad input.

Request keys are stable across redeliveries of the same message:
``ckafka/<topic>/<partition>/<offset>``, ``tdmq/<data.msgId>``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cbsnap.errors import RedeliveryRequested
from cbsnap.events.text import ASCII_DIGITS, escaped, is_text
from cbsnap.models import SnapshotResult
from cbsnap.outcome import Outcome, summarize
from cbsnap.sinks import DeliveryReport, RequestMeta

_ID_RE = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces
_TOPIC_MAX = 255
_LISTED_IDS = 20  # message ids named in the exception; the rest are counted


@dataclass(frozen=True)
class QueueMessage:
    """One message of a queue event: its identity and its request document (or the problem)."""

    source: str  # "cmq" | "ckafka" | "tdmq" | "queue" (not recognisable)
    message_id: str | None  # stamped on every result; "Records[i]" when the record has no id
    request_key: str
    topic: str | None = None
    document: Any = None  # the parsed request document
    problem: str | None = None

    def meta(self) -> RequestMeta:
        """The request identity handed to the runtime."""
        return RequestMeta(
            trigger=self.source,
            request_key=self.request_key,
            source_id=self.topic,
            message_id=self.message_id,
        )


@dataclass(frozen=True)
class QueueEvent:
    """Every message of one invocation, in delivery order."""

    source: str
    messages: list[QueueMessage] = field(default_factory=list)


def _decode_body(body: Any) -> tuple[Any, str | None]:
    """(document, problem) for a message body: JSON text, or base64 of JSON text."""
    if not isinstance(body, str):
        return None, f"msgBody must be a string, got {type(body).__name__}"
    if not body.strip():
        return None, "msgBody is empty"
    try:
        return json.loads(body), None
    except (ValueError, RecursionError) as exc:
        problem = f"msgBody is not valid JSON: {exc}"[:200]
    # JSON text is never valid base64 (braces, quotes), so this cannot misread a document.
    try:
        decoded = base64.b64decode(body.strip(), validate=True).decode("utf-8")
        return json.loads(decoded), None
    except (binascii.Error, ValueError, RecursionError):
        return None, problem


def _text_id(value: Any) -> str | None:
    """A message id as text when it is usable (string or integer, printable, ≤ 128)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    return text if _ID_RE.fullmatch(text) else None


def _topic(value: Any) -> str | None:
    """A topic name for a result's ``source_id``; escaped when it is not text (never keyed)."""
    return escaped(value[:_TOPIC_MAX]) if isinstance(value, str) and value else None


def _offset(value: Any) -> int | None:
    """A Kafka partition or offset: a non-negative integer (or its ASCII decimal text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and ASCII_DIGITS.fullmatch(value):
        return int(value)
    return None


def _malformed(source: str, where: str, problem: str, message_id: str | None = None) -> QueueMessage:
    return QueueMessage(
        source=source,
        message_id=message_id or where,
        request_key=f"{source}/{message_id or where}",
        problem=f"{where}: {problem}",
    )


def _message(source: str, msg_id: str, topic: str | None, body: Any, where: str) -> QueueMessage:
    """A message with a usable id; its body decoded, or the problem named with ``where``."""
    document, problem = _decode_body(body)
    return QueueMessage(
        source=source,
        message_id=msg_id,
        request_key=f"{source}/{msg_id}",
        topic=topic,
        document=document,
        problem=f"{where}: {problem}" if problem else None,
    )


def _ckafka(record: Mapping[str, Any], where: str) -> QueueMessage:
    raw_topic = record.get("topic")
    if isinstance(raw_topic, str) and not is_text(raw_topic):  # it would be part of the key
        return _malformed("ckafka", where, "the Ckafka record's topic is not valid Unicode text")
    topic = _topic(raw_topic)
    partition, offset = _offset(record.get("partition")), _offset(record.get("offset"))
    if topic is None or partition is None or offset is None:
        return _malformed(
            "ckafka", where, "the Ckafka record needs topic, partition and offset (offsets in ASCII digits)"
        )
    msg_id = f"{topic}/{partition}/{offset}"
    return _message("ckafka", msg_id, topic, record.get("msgBody"), f"{where} ({msg_id})")


def _tdmq(event: Mapping[str, Any], where: str = "data") -> QueueMessage:
    """One TDMQ CloudEvent; ``where`` names it in a batch (``EventList[2]``)."""
    event_id = _text_id(event.get("id"))
    data = event.get("data")
    if not isinstance(data, Mapping):
        return _malformed("tdmq", where, "the TDMQ event has no data object", event_id)
    msg_id = _text_id(data.get("msgId"))
    if msg_id is None:
        return _malformed("tdmq", where, "the TDMQ message has no usable data.msgId", event_id)
    return _message(
        "tdmq", msg_id, _topic(data.get("topic")), data.get("msgBody"), f"{where} (msgId {msg_id})"
    )


def _event_list(events: Any) -> QueueEvent:
    """EventBridge's batched delivery, ``{"EventList": [<CloudEvent>, …]}``: each event is its
    own message, so one that cannot be used is one 9003 and the others still run."""
    if not isinstance(events, list):
        problem = f"EventList must be a list, got {type(events).__name__}"
        return QueueEvent("tdmq", [_malformed("tdmq", "event", problem)])
    if not events:
        return QueueEvent("tdmq", [_malformed("tdmq", "event", "EventList is empty: no messages")])
    messages: list[QueueMessage] = []
    for index, item in enumerate(events):
        where = f"EventList[{index}]"
        if not isinstance(item, Mapping):
            problem = f"an event must be a JSON object, got {type(item).__name__}"
            messages.append(_malformed("tdmq", where, problem))
        elif not _is_cloud_event(item):
            messages.append(_malformed("tdmq", where, "not a CloudEvent (no specversion, no connector type)"))
        else:
            messages.append(_tdmq(item, where))
    return QueueEvent("tdmq", messages)


def _record(record: Any, index: int) -> QueueMessage:
    where = f"Records[{index}]"
    if not isinstance(record, Mapping):
        return _malformed("queue", where, f"a record must be a JSON object, got {type(record).__name__}")
    # The documented key is "Ckafka"; the spelling is not trusted beyond case.
    kinds = {str(k).lower(): v for k, v in record.items()}
    if isinstance(kinds.get("ckafka"), Mapping):
        return _ckafka(kinds["ckafka"], where)
    if "cmq" in kinds:
        problem = "a CMQ trigger record: SCF has no CMQ trigger since CMQ's retirement; use a TDMQ-CMQ push"
        return _malformed("queue", where, problem)
    return _malformed("queue", where, "the record is not a Ckafka message")


def _is_cloud_event(event: Mapping[str, Any]) -> bool:
    kind = event.get("type")
    return "specversion" in event or (isinstance(kind, str) and kind.startswith("connector:"))


def parse_queue_event(event: Any) -> QueueEvent:
    """Read a CKafka or TDMQ (EventBridge, single or batched) event into messages; never raises.

    Example
    -------
    >>> body = json.dumps({"storageId": "disk-g73hhs4o"})
    >>> record = {"Ckafka": {"topic": "t", "partition": 0, "offset": 7, "msgBody": body}}
    >>> [(m.request_key, m.document) for m in parse_queue_event({"Records": [record]}).messages]
    [('ckafka/t/0/7', {'storageId': 'disk-g73hhs4o'})]
    """
    if not isinstance(event, Mapping):
        problem = f"a queue event must be a JSON object, got {type(event).__name__}"
        return QueueEvent("queue", [_malformed("queue", "event", problem)])
    if "Records" in event:
        records = event["Records"]
        if not isinstance(records, list):
            problem = f"Records must be a list, got {type(records).__name__}"
            return QueueEvent("queue", [_malformed("queue", "event", problem)])
        if not records:
            return QueueEvent("queue", [_malformed("queue", "event", "Records is empty: no messages")])
        messages = [_record(r, i) for i, r in enumerate(records)]
        sources = {m.source for m in messages}
        return QueueEvent(sources.pop() if len(sources) == 1 else "queue", messages)
    if "EventList" in event:
        return _event_list(event["EventList"])
    if _is_cloud_event(event):
        return QueueEvent("tdmq", [_tdmq(event)])
    problem = "not a queue event: expected Records (CKafka), a TDMQ CloudEvent or an EventList of them"
    return QueueEvent("queue", [_malformed("queue", "event", problem)])


# -- a CMQ topic's HTTP push (cbsnap.push) -----------------------------------------------

CMQ_MESSAGE_ID_HEADER = "x-cmq-message-id"


def parse_cmq_push(body: bytes, headers: Mapping[str, str]) -> QueueMessage:
    """Read one TDMQ-CMQ topic push (an HTTP POST) into a message; never raises.

    Both of CMQ's notify formats (``CreateCmqSubscribe``'s ``NotifyContentFormat``):

    * ``JSON`` (the default): the body is ``{"TopicOwner", "topicName", "subscriptionName",
      "msgId", "msgBody", "publishTime"}`` and ``msgBody`` is the request document;
    * ``SIMPLIFIED``: the body is the request document itself and the message id comes in
      the ``x-cmq-message-id`` header (``headers`` are keyed by lower-cased name).

    A request document has neither ``msgId`` nor ``msgBody`` (unknown fields are refused),
    so the two cannot be mistaken for each other. The key is ``cmq/<msgId>``, as for CMQ's
    old SCF trigger: a message that reaches cbsnap both ways is one request.

    Example
    -------
    >>> notify = {"topicName": "t", "msgId": "6942316962", "msgBody": '{"storageId": "disk-g73hhs4o"}'}
    >>> message = parse_cmq_push(json.dumps(notify).encode(), {})
    >>> message.request_key, message.document
    ('cmq/6942316962', {'storageId': 'disk-g73hhs4o'})
    """
    where = "push"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _malformed("cmq", where, "the push body is not valid UTF-8 text")
    try:
        notify = json.loads(text)
    except (ValueError, RecursionError):
        notify = None
    if isinstance(notify, dict) and "msgId" in notify and "msgBody" in notify:
        msg_id = _text_id(notify.get("msgId"))
        if msg_id is None:
            return _malformed("cmq", where, "the CMQ notify has no usable msgId")
        topic = _topic(notify.get("topicName"))
        return _message("cmq", msg_id, topic, notify.get("msgBody"), f"{where} (msgId {msg_id})")
    header_id = _text_id(headers.get(CMQ_MESSAGE_ID_HEADER))
    if header_id is not None:  # SIMPLIFIED: the body is the message as published
        return _message("cmq", header_id, None, text, f"{where} (msgId {header_id})")
    problem = (
        "not a CMQ push: the body is not CMQ's JSON notify ({msgId, msgBody, …}) "
        f"and there is no {CMQ_MESSAGE_ID_HEADER} header"
    )
    return _malformed("cmq", where, problem)


# -- the batch's answer ----------------------------------------------------------------


def _listed(message_ids: list[str]) -> str:
    """The first ids and a count of the rest: an exception message stays readable."""
    listed = ", ".join(message_ids[:_LISTED_IDS])
    more = len(message_ids) - _LISTED_IDS
    return listed + (f" and {more} more" if more > 0 else "")


class MessagesNotAttempted(RedeliveryRequested):
    """Raised after a batch when some messages had disks whose work is unfinished: not
    attempted (out of time, the look for an earlier snapshot failed, a lock held by
    another delivery) or ended with a transient code (busy, throttled, internal error).

    The platform then redelivers the event (CKafka: the trigger's retry count); the
    per-disk idempotency keys make re-processing safe.
    """

    def __init__(self, message_ids: list[str], response: dict[str, Any] | None = None) -> None:
        self.message_ids = list(message_ids)
        super().__init__(
            f"{len(message_ids)} message(s) had disks whose work is unfinished (not attempted, or a "
            "transient failure); failing the invocation so the platform redelivers them: "
            + _listed(message_ids),
            response,
        )


@dataclass
class BatchReport:
    """The results of every message of one queue event, gathered for the handler's answer."""

    source: str
    messages: int = 0
    results: list[SnapshotResult] = field(default_factory=list)
    delivery: list[DeliveryReport] = field(default_factory=list)
    unattempted_messages: list[str] = field(default_factory=list)

    def add(self, message: QueueMessage, outcome: Outcome) -> None:
        """Record one message's outcome."""
        self.messages += 1
        self.results.extend(outcome.results)
        self.delivery.extend(outcome.delivery)
        if outcome.needs_redelivery:
            self.unattempted_messages.append(message.message_id or message.request_key)

    def to_response(self) -> dict[str, Any]:
        """``{"trigger", "messages", counts…, "results": [...]}``, each result with its messageId."""
        response: dict[str, Any] = {
            "trigger": self.source,
            "messages": self.messages,
            **summarize(self.results),
            "results": [r.to_dict() for r in self.results],
        }
        if self.delivery:
            response["delivery"] = [d.to_dict() for d in self.delivery]
        return response

    def raise_if_unattempted(self) -> None:
        """Raise :class:`MessagesNotAttempted` when any message's work is unfinished."""
        if self.unattempted_messages:
            raise MessagesNotAttempted(self.unattempted_messages, self.to_response())
