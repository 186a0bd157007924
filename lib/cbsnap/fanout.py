"""Fan-out: a request that resolves to more disks than one invocation should handle is
split into chunks, each handed on as its own request and snapshotted by another invocation.

A chunk is an envelope around a request document serialised from the caller's own
validated options (:attr:`~cbsnap.request.Request.options`, unset fields left out) with
its share of the disks::

    {"cbsnapChunk": {"v": 1, "parentKey": "timer/nightly/2026-11-28T02:00:00Z",
                     "trigger": "timer", "index": 2, "of": 5, "region": "ap-guangzhou",
                     "rate": 4.0, "phase": 0.05},
     "request": {"disks": [{"storageId": "disk-…", "snapshotName": "nightly"}, …],
                 "region": "ap-guangzhou", "idempotencyKey": "fanout-…", …}}

Every chunk carries an ``idempotencyKey`` derived from the parent request's key, and per-disk
keys depend only on that key and the disk ID, so a redelivered parent or chunk, or a chunk
boundary that moved because the selector matched one more disk, never yields a second
snapshot of a disk. The chunk runs under the parent's trigger name (so the trigger's default
expiry and the ``cbsnap:trigger`` tag are the parent's). ``rate`` is the chunk's share of the
per-region API rate limit: the chunks run at once in separate instances and share the
account's limit. ``phase`` staggers their starts: the n-th chunk of a region makes its first
call of each action n/limit seconds in, so together they keep to the limit from the first call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.models import DiskTarget, SnapshotResult
from cbsnap.request import Placed, Request
from cbsnap.scf import Deadline
from cbsnap.selectors import Resolution

DEFAULT_THRESHOLD = 200
# ~12 KB a chunk: far under the 128 KB async event limit. Not smaller: with fair shares every
# chunk of a region runs as long as the whole region takes (its disks / the limit), so more
# chunks only thin each one's pace, and below one create per FRESH_LOOK_SECONDS each create
# needs its own look-before-create refresh, which caps the region at 1/1.1 of the limit
# (bench/README.md, fleet).
DEFAULT_CHUNK_SIZE = 200
CHUNK_FIELD = "cbsnapChunk"
# Options a chunk never inherits: the disks are the chunk's own, and the key is derived.
_NOT_INHERITED = frozenset({"storageId", "disks", "selector", "region", "idempotencyKey"})


def chunk_key(request_key: str) -> str:
    """The idempotency key every chunk of a request carries (≤ 128 printable chars)."""
    return "fanout-" + hashlib.sha256(request_key.encode()).hexdigest()[:40]


class ChunkInfo(BaseModel):
    """The envelope's ``cbsnapChunk``: where a chunk came from and its share of the rate."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    v: int = Field(default=1, ge=1, le=1)
    parentKey: str = Field(min_length=1, max_length=512)
    trigger: str = Field(min_length=1, max_length=32)
    index: int = Field(ge=1)
    of: int = Field(ge=1)
    region: str = Field(min_length=1, max_length=64)
    rate: float | None = Field(default=None, gt=0)
    # Seconds before the chunk's first call of each action: the chunks of a region start their
    # paces 1/limit apart, so their first calls together keep to the limit instead of a burst.
    phase: float = Field(default=0.0, ge=0, le=3600)


class Chunk(BaseModel):
    """A whole chunk envelope (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    cbsnapChunk: ChunkInfo
    request: dict[str, Any]


def is_chunk(event: Any) -> bool:
    """True when an event (or message body) is a fan-out chunk envelope."""
    return isinstance(event, dict) and CHUNK_FIELD in event


def parse_chunk(event: Any) -> Chunk | str:
    """The chunk envelope, or why it is not a usable one (never raises)."""
    try:
        return Chunk.model_validate(event)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"fan-out chunk: {where}: {first.get('msg', 'invalid')}"[:200]


class ChunkTransport(Protocol):
    """Hands one chunk (its JSON body) to another invocation; returns the platform's id for it."""

    @property
    def name(self) -> str:
        """Where chunks go, for reports."""
        ...

    @property
    def ready(self) -> bool:
        """False when chunks cannot be handed on here (then requests run whole)."""
        ...

    def send(self, body: str, deadline: Deadline) -> str | None:
        """Send one chunk; raises :class:`CloudError`/:class:`DeadlineReached` when it could not."""
        ...


@dataclass(frozen=True)
class FanOutReport:
    """What the parent did: chunks sent, disks handed on, and each chunk's platform id."""

    chunks: int
    failed: int
    dispatched: int
    to: str
    idempotency_key: str
    ids: tuple[str | None, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the parent's response and log."""
        return {
            "chunks": self.chunks,
            "chunksFailed": self.failed,
            "dispatched": self.dispatched,
            "to": self.to,
            "idempotencyKey": self.idempotency_key,
            "ids": list(self.ids),
        }


class FanOut:
    """Splits large requests into chunks and sends them through a :class:`ChunkTransport`."""

    def __init__(
        self,
        transport: ChunkTransport,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        rate_limit: float = 0.0,
    ) -> None:
        self._transport = transport
        self._threshold = threshold
        self._chunk_size = max(1, min(chunk_size, threshold))
        self._rate_limit = rate_limit

    def should_split(self, resolution: Resolution, threshold: int | None = None) -> bool:
        """True when the request has more eligible disks than one invocation should take
        (the configured threshold, or a lower one the caller needs), and chunks can be
        handed on from here."""
        limit = self._threshold if threshold is None else min(threshold, self._threshold)
        return len(resolution.eligible) > limit and self._transport.ready

    def chunks(self, request: Request, resolution: Resolution) -> list[Chunk]:
        """The chunk envelopes, one region each, in a deterministic order."""
        assert request.options is not None
        base = request.options.model_dump(
            mode="json", exclude_unset=True, exclude=set(_NOT_INHERITED), by_alias=True
        )
        key = chunk_key(request.meta.request_key)
        by_region: dict[str, list[DiskTarget]] = {}
        for target in sorted(resolution.eligible, key=lambda t: (t.region or "", t.position)):
            by_region.setdefault(target.region or "", []).append(target)
        parts = [
            (region, targets[start : start + self._chunk_size])
            for region, targets in by_region.items()
            for start in range(0, len(targets), self._chunk_size)
        ]
        per_region = {region: sum(1 for r, _ in parts if r == region) for region in by_region}
        placed_in_region: dict[str, int] = {}
        chunks: list[Chunk] = []
        for index, (region, part) in enumerate(parts, 1):
            position = placed_in_region[region] = placed_in_region.get(region, -1) + 1
            document = {
                **base,
                "disks": [{"storageId": t.disk_id, "snapshotName": t.snapshot_name} for t in part],
                "region": region,
                "idempotencyKey": key,
            }
            share = self._rate_limit / per_region[region] if self._rate_limit > 0 else None
            info = ChunkInfo(
                parentKey=request.meta.request_key,
                trigger=request.meta.trigger,
                index=index,
                of=len(parts),
                region=region,
                rate=share,
                phase=position / self._rate_limit if self._rate_limit > 0 else 0.0,
            )
            chunks.append(Chunk(cbsnapChunk=info, request=document))
        return chunks

    def dispatch(
        self, request: Request, resolution: Resolution, deadline: Deadline
    ) -> tuple[list[Placed], FanOutReport]:
        """Send every chunk; the parent answers only for the disks of chunks it could not send.

        Such disks are *not attempted*, so the trigger asks for a redelivery of the parent
        (safe: the same keys).
        """
        placed: list[Placed] = []
        chunks = self.chunks(request, resolution)
        positions = {t.disk_id: t.position for t in resolution.eligible}
        ids: list[str | None] = []
        dispatched = 0
        for chunk in chunks:
            body = json.dumps(chunk.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False)
            disks = chunk.request["disks"]
            try:
                ids.append(self._transport.send(body, deadline))
                dispatched += len(disks)
            except (CloudError, DeadlineReached) as exc:
                why = exc.describe() if isinstance(exc, CloudError) else str(exc)
                info = chunk.cbsnapChunk
                for disk in disks:
                    result = SnapshotResult.not_attempted(
                        disk["storageId"],
                        disk["snapshotName"],
                        f"fan-out: chunk {info.index} of {info.of} not handed on: {why}",
                        region=info.region,
                    )
                    placed.append((positions[disk["storageId"]], result))
        report = FanOutReport(
            chunks=len(ids),
            failed=len(chunks) - len(ids),
            dispatched=dispatched,
            to=self._transport.name,
            idempotency_key=chunk_key(request.meta.request_key),
            ids=tuple(ids),
        )
        return placed, report
