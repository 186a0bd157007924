"""The signed TDMQ (CMQ) client: SendCmqMsg to a queue, PublishCmqMsg to a topic.

A typed wrapper over the SDK's ``TdmqClient`` (service ``tdmq``, version
``2020-02-17``) on top of :class:`~cbsnap.client.SignedApi`, so it shares the
CBS client's credentials, endpoint override, pacing, retries and
exception translation: every SDK failure leaves here as
:class:`~cbsnap.errors.CloudError`.

The TDMQ SDK module is large (``models.py`` alone is 1.3 MB of source), so
nothing imports this module at cold start: :mod:`cbsnap.runtime` imports it on
the first message actually sent. Handlers that never send to a queue don't pay
for it (``tests/functional/test_queue_sink.py`` pins that).

Sending is retried on ambiguous failures too (a network error, ``InternalError``),
so a consumer may, rarely, see the same message twice: messages carry
``requestKey`` and ``part`` for de-duplication. A lost result message is worse
than a duplicate one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tencentcloud.tdmq.v20200217 import models as tdmq_models
from tencentcloud.tdmq.v20200217 import tdmq_client

from cbsnap.client import SignedApi, make_credential, make_profile
from cbsnap.errors import CloudError
from cbsnap.scf import Deadline
from cbsnap.settings import Settings

MAX_MESSAGE_BYTES = 1024 * 1024  # "MsgContent … total ≤ 1024 KB" (PublishCmqMsg; SendCmqMsg alike)
MAX_TAG_LENGTH = 64


@dataclass(frozen=True)
class SentMessage:
    """An accepted message: its CMQ message ID and the call's RequestId."""

    message_id: str | None
    request_id: str | None


def make_tdmq_client(settings: Settings, region: str) -> tdmq_client.TdmqClient:
    """Build the SDK's TdmqClient for one region (credentials and endpoint rules as for CBS)."""
    return tdmq_client.TdmqClient(make_credential(settings), region, make_profile(settings, "tdmq"))


class TdmqApi(SignedApi):
    """Typed CMQ sends for one region (see :class:`~cbsnap.client.SignedApi` for the parameters)."""

    def send_queue_message(
        self, queue: str, content: str, deadline: Deadline, delay_seconds: int = 0
    ) -> SentMessage:
        """SendCmqMsg: put ``content`` on ``queue``.

        ``DelaySeconds`` is always sent: TDMQ's API description marks it required.
        """
        req = tdmq_models.SendCmqMsgRequest()
        req.QueueName = queue
        req.MsgContent = content
        req.DelaySeconds = delay_seconds
        return self._accepted("SendCmqMsg", self._call("SendCmqMsg", req, deadline))

    def publish_topic_message(
        self, topic: str, content: str, deadline: Deadline, tags: Sequence[str] = ()
    ) -> SentMessage:
        """PublishCmqMsg: publish ``content`` to ``topic``, with optional filter tags (≤ 64 chars each)."""
        for tag in tags:
            if not tag or len(tag) > MAX_TAG_LENGTH:
                raise ValueError(f"a CMQ message tag must be 1..{MAX_TAG_LENGTH} characters")
        req = tdmq_models.PublishCmqMsgRequest()
        req.TopicName = topic
        req.MsgContent = content
        if tags:
            req.MsgTag = list(tags)
        return self._accepted("PublishCmqMsg", self._call("PublishCmqMsg", req, deadline))

    @staticmethod
    def _accepted(action: str, resp: Any) -> SentMessage:
        """A reply whose ``Result`` is not true is a failure, not a send."""
        request_id = str(resp.RequestId) if resp.RequestId else None
        if resp.Result is not True:
            raise CloudError(action, "FailedOperation", "the reply's Result was not true", request_id)
        return SentMessage(message_id=str(resp.MsgId) if resp.MsgId else None, request_id=request_id)


class CmqChunkTransport:
    """Fan-out chunks as messages on cbsnap's CMQ work queue or topic (:mod:`cbsnap.fanout`)."""

    def __init__(
        self,
        apis: Callable[[str], TdmqApi],
        *,
        region: str,
        queue: str | None = None,
        topic: str | None = None,
    ) -> None:
        if not (queue or topic):
            raise ValueError("give a queue or a topic")
        self._apis = apis
        self._region = region
        self._queue = queue
        self._topic = topic
        self.name = f"queue:{queue}" if queue else f"topic:{topic}"

    def send(self, body: str, deadline: Deadline) -> str | None:
        """Send one chunk; returns its message id."""
        api = self._apis(self._region)
        if self._queue:
            return api.send_queue_message(self._queue, body, deadline).message_id
        assert self._topic is not None
        return api.publish_topic_message(self._topic, body, deadline).message_id
