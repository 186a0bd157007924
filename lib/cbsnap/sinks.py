"""Where per-disk results go. The log sink is always on: SCF ships stdout to CLS,
one structured JSON record per disk result."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cbsnap.models import ReplyTo, SnapshotResult
from cbsnap.scf import Deadline

if TYPE_CHECKING:
    from cbsnap.logs import Log


@dataclass(frozen=True)
class RequestMeta:
    """Context of one request, carried into every log record and sink message."""

    trigger: str
    request_key: str
    source_id: str | None = None  # trigger name, API request id, queue message id
    message_id: str | None = None  # queue triggers: stamped on every result as messageId
    # True when request_key was made up for this call (no key from the caller or the
    # platform): nothing can exist for it yet, so the look-before-create is skipped.
    key_is_fresh: bool = False
    invocation_id: str | None = None
    reply_to: ReplyTo | None = None  # from the request document
    correlation: dict[str, Any] | None = None  # from the request document, echoed back

    def carrying(self, trigger: str, request_key: str, source_id: str | None, **context: Any) -> RequestMeta:
        """The identity of a request this invocation carries for someone else (a fan-out chunk's
        parent, a re-check link's request): theirs, with this invocation's message and id."""
        return RequestMeta(
            trigger=trigger,
            request_key=request_key,
            source_id=source_id,
            message_id=self.message_id,
            invocation_id=self.invocation_id,
            **context,
        )


@dataclass(frozen=True)
class DeliveryReport:
    """How a sink fared with one request's results (reported in the handler's answer)."""

    sink: str  # e.g. "queue:cbsnap-results"
    ok: bool
    message: str = ""
    message_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data: dict[str, Any] = {"sink": self.sink, "ok": self.ok}
        if self.message:
            data["message"] = self.message
        if self.message_id:
            data["messageId"] = self.message_id
        return data


class ResultSink(Protocol):
    """Receives the results of one request."""

    def emit(
        self, results: Sequence[SnapshotResult], meta: RequestMeta, deliver_by: Deadline
    ) -> Sequence[DeliveryReport]:
        """Deliver the results by ``deliver_by``; report delivery problems rather than raise them."""
        ...


class Redactor:
    """Replaces known secret values in text, raw and JSON-escaped."""

    def __init__(self, secrets: Iterable[str]) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if len(secret) >= 4:  # shorter strings would shred ordinary text
                variants.add(secret)
                variants.add(json.dumps(secret)[1:-1])
        self._secrets = sorted(variants, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


class LogSink:
    """One JSON log record per disk result (SCF: stdout → CLS)."""

    def __init__(self, logger: Log) -> None:
        self._logger = logger

    def emit(
        self, results: Sequence[SnapshotResult], meta: RequestMeta, deliver_by: Deadline | None = None
    ) -> Sequence[DeliveryReport]:
        """Log every result at INFO (success) or WARNING (failure)."""
        for result in results:
            record: dict[str, Any] = {
                "result": result.to_dict(),
                "trigger": meta.trigger,
                "request_key": meta.request_key,
                **({"source_id": meta.source_id} if meta.source_id else {}),
                **({"invocation_id": meta.invocation_id} if meta.invocation_id else {}),
            }
            if meta.correlation:
                record["correlation"] = meta.correlation
            if result.adopted:
                record["adopted"] = True
            name = _record_name(result)
            if result.ok:
                self._logger.info(name, extra=record)
            else:
                self._logger.warning(name, extra=record)
        return ()


def _record_name(result: SnapshotResult) -> str:
    """The log record's message: what happened, so CLS queries can filter on it."""
    if result.action is None or result.action == "create":
        if not result.ok:
            return "snapshot.failed"
        return "snapshot.adopted" if result.adopted else "snapshot.created"
    if result.action.startswith("snapshot."):  # completion events name themselves
        return result.action
    return f"snapshot.{result.action}" + ("" if result.ok else ".failed")  # snapshot.delete, snapshot.plan
