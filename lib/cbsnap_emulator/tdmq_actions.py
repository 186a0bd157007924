"""TDMQ 2020-02-17 CMQ actions: SendCmqMsg (queue) and PublishCmqMsg (topic).

Queues and topics are account-wide in the emulator (not per region); each message records the region
it was sent to.
"""

from __future__ import annotations

from typing import Any

from .context import Context, Handler
from .errors import ApiError
from .params import Params

MAX_MSG_BYTES = 1024 * 1024  # "MsgContent … total ≤ 1024 KB"
MAX_DELAY_SECONDS = 3600  # CMQ's largest message delay
MAX_TAG_LENGTH = 64


def _content(p: Params) -> str:
    content = p.string("MsgContent", required=True)
    assert content is not None
    if not content:
        raise ApiError("InvalidParameterValue", "`MsgContent` must not be empty.")
    if len(content.encode("utf-8")) > MAX_MSG_BYTES:
        raise ApiError("InvalidParameterValue", f"`MsgContent` exceeds {MAX_MSG_BYTES} bytes.")
    return content


def send_cmq_msg(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """SendCmqMsg: enqueue a message, visible after DelaySeconds of state-clock time."""
    p = Params(raw, ("QueueName", "MsgContent", "DelaySeconds"))
    queue = p.string("QueueName", required=True)
    assert queue is not None
    content = _content(p)
    # api.json marks DelaySeconds required; the emulator enforces that so a caller omitting it finds out.
    delay = p.integer("DelaySeconds", required=True)
    assert delay is not None
    if not 0 <= delay <= MAX_DELAY_SECONDS:
        raise ApiError(
            "InvalidParameterValue", f"`DelaySeconds` must be within 0..{MAX_DELAY_SECONDS}, got {delay}."
        )
    if queue not in ctx.state.queues:
        raise ApiError("ResourceNotFound", f"The queue `{queue}` does not exist.")
    msg_id = ctx.state.ids.msg_id()
    ctx.state.record_message(
        {
            "MsgId": msg_id,
            "MsgContent": content,
            "DelaySeconds": delay,
            "VisibleAt": ctx.now + delay,
            "MsgTag": [],
            "QueueName": queue,
            "Region": ctx.region,
            "time": ctx.now,
        }
    )
    return {"Result": True, "MsgId": msg_id}


def publish_cmq_msg(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """PublishCmqMsg: publish a message to a topic (recorded; topics have no consumers here)."""
    p = Params(raw, ("TopicName", "MsgContent", "MsgTag"))
    topic = p.string("TopicName", required=True)
    assert topic is not None
    content = _content(p)
    tags = p.strings("MsgTag") or []
    for tag in tags:
        if len(tag) > MAX_TAG_LENGTH:
            raise ApiError(
                "InvalidParameterValue", f"Each `MsgTag` must be at most {MAX_TAG_LENGTH} characters."
            )
    if topic not in ctx.state.topics:
        raise ApiError("ResourceNotFound", f"The topic `{topic}` does not exist.")
    msg_id = ctx.state.ids.msg_id()
    ctx.state.record_message(
        {
            "MsgId": msg_id,
            "MsgContent": content,
            "DelaySeconds": 0,
            "VisibleAt": ctx.now,
            "MsgTag": list(tags),
            "TopicName": topic,
            "Region": ctx.region,
            "time": ctx.now,
        }
    )
    return {"Result": True, "MsgId": msg_id}


TDMQ_ACTIONS: dict[str, Handler] = {
    "SendCmqMsg": send_cmq_msg,
    "PublishCmqMsg": publish_cmq_msg,
}
