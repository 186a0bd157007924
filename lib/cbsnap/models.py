"""The request document's models (what a caller may say) and the per-disk result.

:mod:`cbsnap.request` validates a document against these models disk by disk and
turns it into an immutable :class:`~cbsnap.request.Request`; nothing invalid
leaves it as a :class:`DiskTarget`.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from cbsnap.codes import TRANSIENT_CODES, SeedCode

DISK_ID_RE = re.compile(r"disk-[a-z0-9]{8}")
SNAPSHOT_ID_RE = re.compile(r"snap-[a-z0-9]{8}")
DEFAULT_SNAPSHOT_NAME = "Unnamed"
MAX_SNAPSHOT_NAME = 60
# Tencent allows 50 tags per resource; cbsnap keeps some for its own tags.
MAX_USER_TAGS = 40
RESERVED_TAG_PREFIXES = ("qcloud", "tencent", "project", "cbsnap:")
MAX_CORRELATION_BYTES = 2048
MAX_CORRELATION_DEPTH = 8
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


# Every model here sets defer_build: pydantic then builds a validator on first use
# instead of at import, so a cold start pays only for the models its event needs.
class DiskEntry(BaseModel):
    """One element of ``disks`` in object form."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    storageId: DiskId = Field(validation_alias=AliasChoices("storageId", "diskId"))
    snapshotName: SnapshotName | None = None


class ReplyTo(BaseModel):
    """Where the request's results go besides the log: a CMQ queue or a topic."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    queue: QueueName | None = None
    topic: QueueName | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ReplyTo:
        if (self.queue is None) == (self.topic is None):
            raise ValueError("give exactly one of queue or topic")
        return self


InstanceId = Annotated[str, StringConstraints(pattern=r"^ins-[a-z0-9]{8}$", strict=True)]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,4}-[a-z0-9-]{2,32}$", strict=True)]


class Selector(BaseModel):
    """Disks chosen by what they are rather than by ID, resolved with DescribeDisks filters.

    ``tags`` and ``instanceIds`` narrow together (as one DescribeDisks call would);
    ``exclude`` removes disks from everything the request resolved, explicit ones included.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=10)
    instanceIds: list[InstanceId] = Field(default_factory=list, max_length=100)
    regions: list[Region] = Field(default_factory=list, max_length=30)
    exclude: list[DiskId] = Field(default_factory=list, max_length=10_000)
    # Every disk of the regions: only a report may ask for that (RequestOptions checks it).
    all: bool = Field(default=False, strict=True)

    @model_validator(mode="after")
    def _narrows_something(self) -> Selector:
        # An empty selector would mean "every disk in the account": make that explicit, not accidental.
        if self.all and (self.tags or self.instanceIds):
            raise ValueError("all: true takes no tags or instanceIds")
        if not self.all and not self.tags and not self.instanceIds:
            raise ValueError("needs tags or instanceIds (an empty selector would match every disk)")
        return self


class Retention(BaseModel):
    """Which of cbsnap's own snapshots of a disk to delete (docs/retention.md).

    The count rules (``keepLast`` and the generations ``daily``/``weekly``/``monthly``/
    ``yearly``, restic's ``--keep-*`` semantics) each keep some snapshots, and a snapshot
    kept by any of them stays. ``maxAgeDays`` protects every snapshot younger than D days:
    with count rules a snapshot goes only when no rule keeps it *and* it is older than D.
    Generations fall into calendar buckets of ``timezone`` (an IANA name; UTC by default).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    keepLast: int | None = Field(default=None, ge=1, le=64, strict=True)
    maxAgeDays: int | None = Field(default=None, ge=1, le=3650, strict=True)
    # Bounds: ten years of each generation; Tencent's own policy stops at 100 of each.
    daily: int | None = Field(default=None, ge=1, le=3650, strict=True)
    weekly: int | None = Field(default=None, ge=1, le=520, strict=True)
    monthly: int | None = Field(default=None, ge=1, le=120, strict=True)
    yearly: int | None = Field(default=None, ge=1, le=100, strict=True)
    timezone: str | None = Field(default=None, min_length=1, max_length=64, strict=True)

    @model_validator(mode="after")
    def _some_rule(self) -> Retention:
        if self.keepLast is None and self.maxAgeDays is None and not self.generations:
            raise ValueError("needs keepLast, maxAgeDays or one of daily/weekly/monthly/yearly")
        if self.timezone is not None:
            from cbsnap.gfs import zone_named

            if zone_named(self.timezone) is None:
                raise ValueError(f"timezone: unknown IANA time zone {self.timezone[:_ECHO_LIMIT]!r}")
        return self

    @property
    def generations(self) -> dict[str, int]:
        """The generation rules that are set: ``{"daily": 7, "weekly": 4}``."""
        rules = {"daily": self.daily, "weekly": self.weekly, "monthly": self.monthly, "yearly": self.yearly}
        return {name: count for name, count in rules.items() if count is not None}

    @property
    def count_rules(self) -> dict[str, int]:
        """Every rule that keeps a number of snapshots (``keepLast`` and the generations)."""
        rules = {"keepLast": self.keepLast} if self.keepLast is not None else {}
        return {**rules, **self.generations}

    @property
    def most_kept(self) -> int | None:
        """The most snapshots the count rules can keep (they may overlap, so often fewer);
        None when only ``maxAgeDays`` is set (it keeps every young snapshot, however many)."""
        return sum(self.count_rules.values()) if self.count_rules else None


MAX_COPY_REGIONS = 3


class CopySpec(BaseModel):
    """``copy``: copy each new snapshot to other regions, once it is usable (docs/copies.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    regions: list[Region] = Field(min_length=1, max_length=MAX_COPY_REGIONS)
    retainDays: int | None = Field(default=None, ge=1, le=3650, strict=True)

    @field_validator("regions")
    @classmethod
    def _known_and_distinct(cls, regions: list[str]) -> list[str]:
        from cbsnap.regions import KNOWN_REGIONS

        for region in regions:
            if region not in KNOWN_REGIONS:
                raise ValueError(f"{region[:_ECHO_LIMIT]!r} is not a CBS region")
        if len(set(regions)) != len(regions):
            raise ValueError("names a region twice")
        return regions


# TAT RunCommand.Content: "Base64 编码后的字符串长度不能超过 64KB" (tencentcloud-sdk-python-tat).
MAX_SCRIPT_BASE64 = 64 * 1024
MAX_HOOK_TIMEOUT = 600


class Hooks(BaseModel):
    """Application-consistent snapshots: scripts run on each instance through TAT around the create.

    ``pre`` quiesces the application (e.g. ``fsfreeze -f``), ``post`` resumes it and runs whenever
    ``pre`` was started. ``onFailure`` says what a failed, timed-out or impossible ``pre`` means:
    ``crash`` snapshots anyway (crash-consistent, as AWS DLM falls back), ``skip`` snapshots nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    pre: str = Field(min_length=1, strict=True)
    post: str = Field(min_length=1, strict=True)
    timeoutSeconds: int = Field(default=30, ge=1, le=MAX_HOOK_TIMEOUT, strict=True)
    onFailure: Literal["crash", "skip"] = "crash"

    @field_validator("pre", "post")
    @classmethod
    def _fits_run_command(cls, script: str) -> str:
        size = len(base64.b64encode(script.encode("utf-8")))
        if size > MAX_SCRIPT_BASE64:
            raise ValueError(f"is {size} bytes in base64; TAT RunCommand takes at most {MAX_SCRIPT_BASE64}")
        return script


# Fields that only make sense when snapshots are made: a report refuses them.
_CREATE_ONLY = ("snapshotName", "retainDays", "deadline", "retention", "notify", "hooks")


class RequestOptions(BaseModel):
    """Request-level fields of the document (the disks are validated one by one)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    storageId: Any = Field(default=None, validation_alias=AliasChoices("storageId", "diskId"))
    snapshotName: SnapshotName | None = None
    disks: list[Any] | None = None
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=MAX_USER_TAGS)
    idempotencyKey: IdempotencyKey | None = None
    replyTo: ReplyTo | None = None
    correlation: dict[str, Any] | None = None
    selector: Selector | None = None
    region: Region | None = None
    action: Literal["snapshot", "prune", "report"] = "snapshot"
    retainDays: int | None = Field(default=None, ge=1, le=3650, strict=True)
    deadline: AwareDatetime | None = None
    retention: Retention | None = None
    notify: Literal["completed"] | None = None
    dryRun: bool = Field(default=False, strict=True)
    consistent: bool = Field(default=False, strict=True)
    copy_: CopySpec | None = Field(default=None, alias="copy")
    # action "report" (cbsnap.report): the RPO, when CREATING counts as stuck, only cbsnap's snapshots
    rpoHours: int | None = Field(default=None, ge=1, le=24 * 366, strict=True)
    stuckHours: int | None = Field(default=None, ge=1, le=24 * 30, strict=True)
    ownedOnly: bool = Field(default=False, strict=True)
    hooks: Hooks | None = None

    @model_validator(mode="after")
    def _coherent(self) -> RequestOptions:
        if self.action == "report":
            given = [f for f in _CREATE_ONLY if getattr(self, f) is not None] + [
                f for f in ("dryRun", "consistent") if getattr(self, f)
            ]
            if self.tags:
                given.append("tags")
            if given:
                raise ValueError(f"a report makes no snapshots: drop {', '.join(given)}")
        elif self.rpoHours is not None or self.stuckHours is not None or self.ownedOnly:
            raise ValueError("rpoHours, stuckHours and ownedOnly belong to action report")
        if self.selector is not None and self.selector.all and self.action != "report":
            raise ValueError("selector.all (every disk) is for action report only")
        if self.hooks is not None and self.action != "snapshot":
            raise ValueError("hooks run around snapshots: they need action snapshot")
        if self.retainDays is not None and self.deadline is not None:
            raise ValueError("give retainDays or deadline, not both")
        if self.consistent and (self.retainDays is not None or self.deadline is not None):
            # CreateSnapshotGroup takes no Deadline, and the janitor does not cover groups yet.
            raise ValueError("consistent snapshots cannot expire: CreateSnapshotGroup takes no Deadline")
        if self.consistent and self.retention is not None:
            raise ValueError("retention does not cover snapshot groups yet: drop consistent or retention")
        if self.action == "prune" and self.retention is None:
            raise ValueError("action prune needs a retention rule")
        if self.copy_ is not None:
            if self.action == "prune":
                raise ValueError("copy: a prune makes no snapshot to copy")
            sources = {self.region, *(self.selector.regions if self.selector else [])}
            same = sorted(r for r in self.copy_.regions if r in sources)
            if same:
                raise ValueError(f"copy.regions: {same[0]} is a source region of this request")
        return self

    @field_validator("correlation")
    @classmethod
    def _small_correlation(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """Free-form, but it travels in every result and message: keep it small and shallow.

        The depth is measured without recursion first: serialising a value nested
        near the interpreter's limit would raise RecursionError instead of a 9003.
        """
        if value is None:
            return None
        if _depth(value) > MAX_CORRELATION_DEPTH:
            raise ValueError(f"must nest at most {MAX_CORRELATION_DEPTH} levels deep")
        problem = _unwritable(value)
        if problem is not None:
            # Refused, not rewritten: the caller asked for exactly this to be echoed back.
            raise ValueError(problem)
        if len(json.dumps(value, default=str)) > MAX_CORRELATION_BYTES:
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


@dataclass(frozen=True, slots=True)
class DiskTarget:
    """A validated disk to snapshot, with its resolved snapshot name."""

    disk_id: str
    snapshot_name: str
    # Where the disk was named in the request, so results keep the caller's order.
    position: int = field(default=0, compare=False)
    region: str | None = None  # None: the request's or the function's region
    # True when the caller named the snapshot (per disk or request-wide) rather than
    # leaving the default "Unnamed": a prune without a name covers every owned snapshot.
    name_given: bool = field(default=True, compare=False)


NOT_ATTEMPTED_PREFIX = "not attempted: "
REPORT_ACTION = "report"
# Context fields shown only when set; a report result shows every REPORT_FIELDS entry (null when unknown).
_CONTEXT_FIELDS = (
    "requestId", "region", "messageId", "action", "groupId", "correlation", "eventId",
    "consistency", "freezeMs", "hooks",
)  # fmt: skip
REPORT_FIELDS = (
    "status", "lastSnapshotId", "lastSnapshotAt", "ageHours", "snapshotCount", "creating", "copies",
    "stuckSnapshotIds", "deleteWithDisk", "last30Days",
)  # fmt: skip


class CopyRef(BaseModel):
    """One cross-region copy of a result's snapshot (:mod:`cbsnap.copies`).

    ``state``: ``pending`` (not started: the source is not usable yet, or a running copy is
    being found), ``copying`` (the copy exists and is not finished: not NORMAL, or not yet
    tagged or given its expiry), ``normal`` (usable, cbsnap's, expiring as asked), ``failed``
    (``code``/``message`` say why; the source's own result stays what it was), ``planned``
    (a dry run: the copy a run would make) and ``exists`` (a dry run found it made already).
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    region: str
    snapshotId: str | None = None
    state: str
    code: int | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without the unset ``code``/``message``."""
        data = self.model_dump()
        for extra in ("code", "message"):
            if data[extra] is None:
                del data[extra]
        return data


class SnapshotResult(BaseModel):
    """The per-disk result: the seed's ``code``/``message``/``snapshotId`` plus context.

    ``attempted`` is the typed "was this disk's work finished?" state: False means the
    invocation left the disk for a redelivery (out of time, a look that could not be
    made, a lock held by another delivery…), and the trigger's handler makes the
    platform deliver the request again. It is the only place that state lives.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    storageId: str | None
    snapshotName: str | None
    code: int
    codeDesc: str
    message: str
    snapshotId: str | None
    requestId: str | None = None
    region: str | None = None
    messageId: str | None = None  # the queue message that carried the request
    # None for a create; "delete" for the janitor's records; "snapshot.completed" /
    # "snapshot.timeout" for completion events; "plan" for dry runs.
    action: str | None = None
    groupId: str | None = None  # consistent groups: the CreateSnapshotGroup ID
    correlation: dict[str, Any] | None = None  # echoed from the request
    eventId: str | None = None  # completion events: "event/<snapshotId>", one per snapshot (cbsnap.notify)
    # hooks (cbsnap.hooks): "application" or "crash", the freeze window, what the scripts did
    consistency: str | None = None
    freezeMs: int | None = None
    hooks: dict[str, Any] | None = None
    # action "report" (cbsnap.report): always shown on report results, null when unknown
    status: str | None = None
    lastSnapshotId: str | None = None
    lastSnapshotAt: str | None = None
    ageHours: float | None = None
    snapshotCount: int | None = None
    creating: int | None = None
    # a snapshot's cross-region copies (cbsnap.copies); on a report result, the regions holding one
    copies: tuple[CopyRef, ...] | list[str] | None = None
    stuckSnapshotIds: list[str] | None = None
    deleteWithDisk: bool | None = None
    last30Days: str | None = None
    attempted: bool = True
    # True when a retry or redelivery was answered by the snapshot made earlier;
    # logged, but not part of the contract's result.
    adopted: bool = Field(default=False, exclude=True)

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
        return cls.record(storage_id, snapshot_name, code, message, requestId=request_id, region=region)

    @classmethod
    def record(
        cls, storage_id: str | None, snapshot_name: str | None, code: SeedCode, message: str, **context: Any
    ) -> SnapshotResult:
        """Any result: the seed fields from ``code`` (its ``codeDesc`` too) and ``message``, the
        context fields (``snapshotId``, ``region``, ``action``, a report's fields…) by name."""
        fields: dict[str, Any] = {"snapshotId": None, **context}
        return cls(
            storageId=storage_id,
            snapshotName=snapshot_name,
            code=code,
            codeDesc=code.desc,
            message=message,
            **fields,
        )

    @classmethod
    def not_attempted(
        cls,
        storage_id: str | None,
        snapshot_name: str | None,
        why: str,
        *,
        region: str | None = None,
        request_id: str | None = None,
        action: str | None = None,
    ) -> SnapshotResult:
        """A disk left for a redelivery: code 6000, ``attempted`` False, ``message`` says why."""
        return cls(
            storageId=storage_id,
            snapshotName=snapshot_name,
            code=SeedCode.INTERNAL_ERROR,
            codeDesc=SeedCode.INTERNAL_ERROR.desc,
            message=NOT_ATTEMPTED_PREFIX + why,
            snapshotId=None,
            requestId=request_id,
            region=region,
            action=action,
            attempted=False,
        )

    @property
    def ok(self) -> bool:
        """True for code 0."""
        return self.code == SeedCode.SUCCESS

    @property
    def needs_redelivery(self) -> bool:
        """True when this disk's work is unfinished and a later delivery may finish it:
        not attempted, or a create that ended with a transient code (busy, throttled,
        internal error). Other records (retention deletes and skips, plans, events) ask
        for one only when they were not attempted."""
        if not self.attempted:
            return True
        if self.action is not None or self.ok:
            return False
        return self.code in TRANSIENT_CODES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the six contract fields always, context fields when set
        (``attempted`` only when False)."""
        data = self.model_dump()
        report = self.action == REPORT_ACTION
        for extra in _CONTEXT_FIELDS + (() if report else REPORT_FIELDS):
            if data[extra] is None:
                del data[extra]
        if isinstance(self.copies, tuple):  # a snapshot's copies (a report's are region names)
            data["copies"] = [c.to_dict() for c in self.copies]
        if data["attempted"]:
            del data["attempted"]
        return data


def _depth(value: Any) -> int:
    """Nesting depth of a JSON-like value, computed iteratively (no recursion limit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_CORRELATION_DEPTH:
            return deepest
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return deepest


def _unwritable(value: Any) -> str | None:
    """Where ``value`` holds what JSON or UTF-8 cannot carry, named; None when it is clean.

    ``NaN`` and ``±Infinity`` (Python's json reads them) are not JSON: an answer echoing one
    is not JSON either. A lone surrogate (JSON ``"\ud800"``) cannot be encoded as UTF-8: the
    log line echoing it cannot be written. Both are found here, iteratively (the depth is
    bounded before this runs), with the path of the first one in the message.
    """
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            spelled = "NaN" if math.isnan(node) else ("Infinity" if node > 0 else "-Infinity")
            return f"{path or 'value'}: must be a finite number, got {spelled}"
        if isinstance(node, str) and not _is_text(node):
            return f"{path or 'value'}: is not valid Unicode text (it holds a lone surrogate)"
        if isinstance(node, dict):
            for key, child in reversed(list(node.items())):
                text = str(key)
                label = (text if text.isprintable() else ascii(text))[:_ECHO_LIMIT]
                if not _is_text(text):
                    return f"key {label}: is not valid Unicode text (it holds a lone surrogate)"
                stack.append((child, f"{path}.{label}" if path else label))
        elif isinstance(node, list):
            stack.extend((child, f"{path}[{i}]") for i, child in reversed(list(enumerate(node))))
    return None


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
