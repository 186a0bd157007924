"""The request document every trigger hands to the library, and the per-disk result.

Validation is per disk: an invalid disk ID becomes its own 9003 result and the
valid disks of the same request still proceed. :func:`parse_request` never raises
for bad input; nothing invalid leaves this module as a :class:`DiskTarget`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from cbsnap.codes import SeedCode

DISK_ID_RE = re.compile(r"disk-[a-z0-9]{8}")
SNAPSHOT_ID_RE = re.compile(r"snap-[a-z0-9]{8}")
DEFAULT_SNAPSHOT_NAME = "Unnamed"
MAX_SNAPSHOT_NAME = 60
# Tencent allows 50 tags per resource; cbsnap keeps some for its own tags.
MAX_USER_TAGS = 40
RESERVED_TAG_PREFIXES = ("qcloud", "tencent", "project", "cbsnap:")
MAX_CORRELATION_BYTES = 2048
# Echoing attacker-sized input into logs helps nobody.
_ECHO_LIMIT = 80

DiskId = Annotated[str, StringConstraints(pattern=r"^disk-[a-z0-9]{8}$", strict=True)]
SnapshotName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SNAPSHOT_NAME, strict=True)]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=127, strict=True)]
TagValue = Annotated[str, StringConstraints(max_length=255, strict=True)]
QueueName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$", strict=True)]
IdempotencyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$", strict=True)
]


class DiskEntry(BaseModel):
    """One element of ``disks`` in object form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    storageId: DiskId = Field(validation_alias=AliasChoices("storageId", "diskId"))
    snapshotName: SnapshotName | None = None


class ReplyTo(BaseModel):
    """Where the request's results go besides the log: a CMQ queue or a topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue: QueueName | None = None
    topic: QueueName | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ReplyTo:
        if (self.queue is None) == (self.topic is None):
            raise ValueError("give exactly one of queue or topic")
        return self


class RequestOptions(BaseModel):
    """Request-level fields of the document (the disks are validated one by one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    storageId: Any = Field(default=None, validation_alias=AliasChoices("storageId", "diskId"))
    snapshotName: SnapshotName | None = None
    disks: list[Any] | None = None
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=MAX_USER_TAGS)
    idempotencyKey: IdempotencyKey | None = None
    replyTo: ReplyTo | None = None
    correlation: dict[str, Any] | None = None

    @field_validator("correlation")
    @classmethod
    def _small_correlation(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """Free-form, but it travels in every result and message: keep it small."""
        if value is not None and len(json.dumps(value, default=str)) > MAX_CORRELATION_BYTES:
            raise ValueError(f"must serialise to at most {MAX_CORRELATION_BYTES} bytes")
        return value

    @field_validator("tags")
    @classmethod
    def _no_reserved_tag_keys(cls, tags: dict[str, str]) -> dict[str, str]:
        """Tencent reserves some key prefixes, and cbsnap writes its own ``cbsnap:`` tags."""
        for key in tags:
            if key.lower().startswith(RESERVED_TAG_PREFIXES):
                raise ValueError(f"key {key[:_ECHO_LIMIT]!r} uses a reserved prefix")
        return tags


_DISK_ID_RULE = "must be 'disk-' followed by 8 lowercase letters or digits"


def _entry(item: Any, where: str) -> DiskEntry | str:
    """Validate one ``disks`` element (a disk ID string or an object); message on failure."""
    if isinstance(item, str):
        if DISK_ID_RE.fullmatch(item):
            return DiskEntry(storageId=item)
        return f"{where}: {_DISK_ID_RULE}"
    if isinstance(item, dict) and where != "storageId":
        try:
            return DiskEntry.model_validate(item)
        except ValidationError as exc:
            return _describe(exc, where)
    expected = "a disk ID string" if where == "storageId" else "a disk ID string or an object"
    return f"{where}: must be {expected}, got {type(item).__name__}"


@dataclass(frozen=True, slots=True)
class DiskTarget:
    """A validated disk to snapshot, with its resolved snapshot name."""

    disk_id: str
    snapshot_name: str
    # Where the disk was named in the request, so results keep the caller's order.
    position: int = field(default=0, compare=False)


@dataclass(slots=True)
class ParsedRequest:
    """What :func:`parse_request` made of a document: valid targets and 9003 results."""

    targets: list[DiskTarget] = field(default_factory=list)
    rejected: list[SnapshotResult] = field(default_factory=list)
    rejected_at: list[int] = field(default_factory=list)  # positions of the rejected entries
    tags: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    reply_to: ReplyTo | None = None
    correlation: dict[str, Any] | None = None
    # True when the document named one disk with top-level storageId (the seed form).
    seed_form: bool = False

    def reject(self, result: SnapshotResult, position: int) -> None:
        """Record a 9003 result for the entry named at ``position``."""
        self.rejected.append(result)
        self.rejected_at.append(position)

    def placed_rejections(self) -> list[tuple[int, SnapshotResult]]:
        """The rejected results with the positions they were named at."""
        return list(zip(self.rejected_at, self.rejected, strict=True))


class SnapshotResult(BaseModel):
    """The per-disk result: the seed's ``code``/``message``/``snapshotId`` plus context."""

    model_config = ConfigDict(frozen=True)

    storageId: str | None
    snapshotName: str | None
    code: int
    codeDesc: str
    message: str
    snapshotId: str | None
    requestId: str | None = None
    region: str | None = None
    messageId: str | None = None  # the queue message that carried the request

    @classmethod
    def success(
        cls, target: DiskTarget, snapshot_id: str, *, request_id: str | None, region: str | None
    ) -> SnapshotResult:
        """A code-0 result for a created (or adopted) snapshot."""
        return cls(
            storageId=target.disk_id,
            snapshotName=target.snapshot_name,
            code=SeedCode.SUCCESS,
            codeDesc=SeedCode.SUCCESS.desc,
            message="",
            snapshotId=snapshot_id,
            requestId=request_id,
            region=region,
        )

    @classmethod
    def failure(
        cls,
        storage_id: str | None,
        snapshot_name: str | None,
        code: SeedCode,
        message: str,
        *,
        request_id: str | None = None,
        region: str | None = None,
    ) -> SnapshotResult:
        """A failed result: ``snapshotId`` is null and ``message`` says what happened."""
        return cls(
            storageId=storage_id,
            snapshotName=snapshot_name,
            code=code,
            codeDesc=code.desc,
            message=message,
            snapshotId=None,
            requestId=request_id,
            region=region,
        )

    @property
    def ok(self) -> bool:
        """True for code 0."""
        return self.code == SeedCode.SUCCESS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the six contract fields always, context fields when set."""
        data = self.model_dump()
        for extra in ("requestId", "region", "messageId"):
            if data[extra] is None:
                del data[extra]
        return data


def _echo(value: Any) -> str | None:
    """A disk reference safe to put in a result: strings only, truncated."""
    if not isinstance(value, str):
        return None
    return value if len(value) <= _ECHO_LIMIT else value[:_ECHO_LIMIT] + "…"


def _describe(error: ValidationError, prefix: str = "") -> str:
    """One readable line for the first pydantic error, without echoing the input."""
    first = error.errors(include_url=False, include_input=False)[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    where = f"{prefix}{'.' if prefix and loc else ''}{loc}"
    msg = first.get("msg", "invalid")
    if first.get("type") == "string_pattern_mismatch" and "disk-" in str(first.get("ctx", "")):
        msg = _DISK_ID_RULE
    return f"{where}: {msg}" if where else msg


def _invalid(storage_id: Any, name: Any, message: str) -> SnapshotResult:
    return SnapshotResult.failure(
        _echo(storage_id),
        name if isinstance(name, str) and len(name) <= MAX_SNAPSHOT_NAME else None,
        SeedCode.INVALID_PARAMETER,
        message,
    )


def parse_request(document: Any) -> ParsedRequest:
    """Validate a request document (a dict, or JSON text) disk by disk.

    Returns the valid :class:`DiskTarget` list and one 9003 result for each
    problem found. Never raises for bad input.

    Example
    -------
    >>> parsed = parse_request({"disks": ["disk-g73hhs4o", "disk-BAD"]})
    >>> [t.disk_id for t in parsed.targets], [r.code for r in parsed.rejected]
    (['disk-g73hhs4o'], [9003])
    """
    parsed = ParsedRequest()
    if isinstance(document, (str, bytes, bytearray)):
        try:
            document = json.loads(document)
        except (ValueError, RecursionError) as exc:
            parsed.reject(_invalid(None, None, f"request is not valid JSON: {exc}"[:200]), 0)
            return parsed
    if not isinstance(document, dict):
        kind = type(document).__name__
        parsed.reject(_invalid(None, None, f"request must be a JSON object, got {kind}"), 0)
        return parsed

    # Collect the raw disk references first so that a request-level problem can
    # still be reported once per disk the caller named.
    raw_single = document.get("storageId", document.get("diskId"))
    raw_disks = document.get("disks")
    parsed.seed_form = raw_single is not None and raw_disks is None
    raw_items: list[Any] = []
    if raw_single is not None:
        raw_items.append(raw_single)
    if isinstance(raw_disks, list):
        raw_items.extend(raw_disks)

    def reject_all(message: str) -> ParsedRequest:
        if not raw_items:
            parsed.reject(_invalid(None, None, message), 0)
        for position, item in enumerate(raw_items):
            ref = item.get("storageId", item.get("diskId")) if isinstance(item, dict) else item
            parsed.reject(_invalid(ref, None, message), position)
        return parsed

    try:
        options = RequestOptions.model_validate(document)
    except ValidationError as exc:
        return reject_all(_describe(exc))

    if options.storageId is not None and options.disks is not None:
        return reject_all("give either storageId (seed form) or disks (batch form), not both")
    if options.storageId is None and not options.disks:
        return reject_all("request names no disks: set storageId or a non-empty disks list")

    parsed.tags = dict(options.tags)
    parsed.idempotency_key = options.idempotencyKey
    parsed.reply_to = options.replyTo
    parsed.correlation = options.correlation
    default_name = options.snapshotName or DEFAULT_SNAPSHOT_NAME
    seen: set[str] = set()
    if options.storageId is not None:
        items: list[tuple[str, Any]] = [("storageId", options.storageId)]
    else:
        items = [(f"disks[{i}]", item) for i, item in enumerate(options.disks or [])]

    for position, (where, item) in enumerate(items):
        entry = _entry(item, where)
        if isinstance(entry, str):
            ref = item.get("storageId", item.get("diskId")) if isinstance(item, dict) else item
            name = item.get("snapshotName") if isinstance(item, dict) else None
            parsed.reject(_invalid(ref, name, entry), position)
            continue
        target = DiskTarget(entry.storageId, entry.snapshotName or default_name, position)
        if target.disk_id in seen:  # one snapshot per disk per request
            continue
        seen.add(target.disk_id)
        parsed.targets.append(target)
    return parsed
