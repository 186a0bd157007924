"""Fan-out: a request that resolves to more disks than one invocation should
handle is split into chunks, each sent as a request document to cbsnap's own
work queue (or topic) and snapshotted by ``handlers/messages.py``.

Scaling is the platform's: SCF runs as many message-handler instances as the
queue needs, and the shared API rate limit is the only ceiling (README, "Fleet
scale"). Every chunk carries an ``idempotencyKey`` derived from the parent
request, and per-disk keys depend only on that key and the disk ID — so a
redelivered parent or chunk, or a chunk boundary that moved because the
selector matched one more disk, never yields a second snapshot of a disk.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.models import DiskTarget, ParsedRequest, SnapshotResult
from cbsnap.scf import Deadline
from cbsnap.selectors import Resolution
from cbsnap.sinks import RequestMeta
from cbsnap.snapshots import Outcome

if TYPE_CHECKING:
    from cbsnap.tdmq import TdmqApi

DEFAULT_THRESHOLD = 200
DEFAULT_CHUNK_SIZE = 100  # ~6 KB a message: far under the 128 KB async event limit


def chunk_key(request_key: str) -> str:
    """The idempotency key every chunk of a request carries (≤ 128 printable chars)."""
    return "fanout-" + hashlib.sha256(request_key.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class FanOutTarget:
    """Where chunks go: a CMQ queue or topic, in the function's region."""

    region: str
    queue: str | None = None
    topic: str | None = None

    @property
    def name(self) -> str:
        """``queue:<name>`` or ``topic:<name>``, for reports."""
        return f"queue:{self.queue}" if self.queue else f"topic:{self.topic}"


class FanOut:
    """Splits large requests into chunk messages on the work queue."""

    def __init__(
        self,
        tdmq: Callable[[str], TdmqApi],
        target: FanOutTarget,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self._tdmq = tdmq
        self._target = target
        self._threshold = threshold
        self._chunk_size = max(1, min(chunk_size, threshold))

    def should_split(self, resolution: Resolution) -> bool:
        """True when the request has more eligible disks than one invocation should take."""
        return len(resolution.eligible) > self._threshold

    def chunks(
        self, parsed: ParsedRequest, resolution: Resolution, meta: RequestMeta
    ) -> list[dict[str, Any]]:
        """The chunk request documents, one region each, in a deterministic order."""
        key = chunk_key(meta.request_key)
        by_region: dict[str, list[DiskTarget]] = {}
        for target in sorted(resolution.eligible, key=lambda t: (t.region or "", t.position)):
            by_region.setdefault(target.region or "", []).append(target)
        documents: list[dict[str, Any]] = []
        for region, targets in by_region.items():
            for start in range(0, len(targets), self._chunk_size):
                part = targets[start : start + self._chunk_size]
                document: dict[str, Any] = {
                    "disks": [{"storageId": t.disk_id, "snapshotName": t.snapshot_name} for t in part],
                    "region": region,
                    "idempotencyKey": key,
                }
                if parsed.tags:
                    document["tags"] = parsed.tags
                # Expiry travels as the parent gave it: a relative retainDays stays
                # relative (a chunk consumed later must not fall under the 1-day minimum).
                if parsed.deadline is not None:
                    document["deadline"] = parsed.deadline.isoformat()
                elif parsed.retain_days is not None:
                    document["retainDays"] = parsed.retain_days
                if parsed.correlation is not None:
                    document["correlation"] = parsed.correlation
                if parsed.retention is not None:
                    document["retention"] = parsed.retention.model_dump(exclude_none=True)
                if parsed.notify is not None:
                    document["notify"] = parsed.notify
                if parsed.reply_to is not None:
                    document["replyTo"] = parsed.reply_to.model_dump(exclude_none=True)
                if parsed.notify is not None:  # each chunk schedules its snapshots' completion events
                    document["notify"] = parsed.notify
                documents.append(document)
        return documents

    def dispatch(
        self, parsed: ParsedRequest, resolution: Resolution, meta: RequestMeta, deadline: Deadline
    ) -> Outcome:
        """Send every chunk; the parent answers for the disks it refused and for unsent chunks.

        A chunk that cannot be sent leaves its disks "not attempted", so a queue
        trigger raises and the platform redelivers the parent (safe: same keys).
        """
        outcome = Outcome(not_attempted=list(resolution.not_attempted))
        placed = parsed.placed_rejections() + resolution.refused
        documents = self.chunks(parsed, resolution, meta)
        api = self._tdmq(self._target.region)
        positions = {t.disk_id: t.position for t in resolution.eligible}
        sent = dispatched = 0
        for index, document in enumerate(documents):
            body = json.dumps(document, separators=(",", ":"))
            try:
                if self._target.queue:
                    api.send_queue_message(self._target.queue, body, deadline)
                else:
                    assert self._target.topic is not None
                    api.publish_topic_message(self._target.topic, body, deadline)
                sent += 1
                dispatched += len(document["disks"])
            except (CloudError, DeadlineReached) as exc:
                why = exc.describe() if isinstance(exc, CloudError) else str(exc)
                for disk in document["disks"]:
                    message = f"fan-out: chunk {index + 1} of {len(documents)} not queued: {why}"
                    result = SnapshotResult.failure(
                        disk["storageId"],
                        disk["snapshotName"],
                        SeedCode.INTERNAL_ERROR,
                        message,
                        region=document["region"],
                    )
                    placed.append((positions[disk["storageId"]], result))
                    outcome.not_attempted.append(disk["storageId"])
        placed.sort(key=lambda pair: pair[0])
        outcome.results = [result for _, result in placed]
        outcome.fanout = {
            "chunks": sent,
            "chunksFailed": len(documents) - sent,
            "dispatched": dispatched,
            "to": self._target.name,
            "idempotencyKey": chunk_key(meta.request_key),
        }
        return outcome
