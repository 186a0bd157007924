"""From a request document to an immutable :class:`Request`: parsed once, identity resolved once.

:func:`prepare` is the first half of the pipeline (:mod:`cbsnap.pipeline`): every trigger
hands it the document it carried and the identity the trigger gives it
(:class:`~cbsnap.sinks.RequestMeta`), and gets back everything the use cases need:

* ``options`` — the validated :class:`~cbsnap.models.RequestOptions`, exactly what the caller
  said (unset fields stay unset, so a fan-out chunk re-serialises the caller's own words);
* ``targets`` — the valid disks, each with its snapshot name and position;
* ``rejections`` — one 9003 result per problem, at the position it was named;
* ``meta`` — the effective identity: an explicit ``idempotencyKey`` names the request
  ``key/<key>`` whatever carried it (the rule lives here and nowhere else);
* ``expires_at`` — CreateSnapshot's ``Deadline`` from ``deadline``/``retainDays``/the
  trigger's default.

Never raises for bad input: a document that is not JSON, not an object, or fails a
request-level rule becomes rejections, one per disk the caller named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import ValidationError

from cbsnap.codes import SeedCode
from cbsnap.models import (
    DEFAULT_SNAPSHOT_NAME,
    DISK_ID_RE,
    MAX_SNAPSHOT_NAME,
    DiskEntry,
    DiskTarget,
    RequestOptions,
    SnapshotResult,
)
from cbsnap.sinks import RequestMeta

# Echoing attacker-sized input into results helps nobody.
_ECHO_LIMIT = 80
_DISK_ID_RULE = "must be 'disk-' followed by 8 lowercase letters or digits"
# Tencent's minimum for CreateSnapshot's Deadline: one day after now.
MINIMUM_EXPIRY = timedelta(days=1)

Placed = tuple[int, SnapshotResult]


@dataclass(frozen=True)
class Request:
    """One request, validated: what the use cases act on (see the module docstring)."""

    meta: RequestMeta
    options: RequestOptions | None = None  # None: the document itself was unusable
    targets: tuple[DiskTarget, ...] = ()
    rejections: tuple[Placed, ...] = ()
    expires_at: str | None = None
    # True when the document named one disk with top-level storageId (the seed form).
    seed_form: bool = False

    @property
    def runnable(self) -> bool:
        """True when there is anything to resolve: valid disks or a selector."""
        return self.options is not None and (bool(self.targets) or self.options.selector is not None)

    @property
    def snapshot_name(self) -> str:
        """The request-level snapshot name (selector disks get it)."""
        name = self.options.snapshotName if self.options is not None else None
        return name or DEFAULT_SNAPSHOT_NAME


def prepare(
    document: Any, meta: RequestMeta, *, default_retain_days: int = 0, now: datetime | None = None
) -> Request:
    """Validate ``document`` and resolve the request's identity and expiry (never raises).

    ``default_retain_days`` is the trigger's configured expiry (0: keep); ``now`` is
    aware UTC (the expiry is counted from it).

    Example
    -------
    >>> req = prepare({"disks": ["disk-g73hhs4o", "disk-BAD"]}, RequestMeta("timer", "timer/t/1"))
    >>> [t.disk_id for t in req.targets], [r.code for _, r in req.rejections]
    (['disk-g73hhs4o'], [9003])
    """
    document, problem = _decoded(document)
    if problem is not None:
        return Request(meta, rejections=((0, _invalid(None, None, problem)),))
    seed_form, raw_items = _raw_items(document)

    def reject_all(message: str, options: RequestOptions | None = None) -> Request:
        placed: list[Placed] = []
        for position, item in enumerate(raw_items):
            ref = item.get("storageId", item.get("diskId")) if isinstance(item, dict) else item
            placed.append((position, _invalid(ref, None, message)))
        if not placed:
            placed.append((0, _invalid(None, None, message)))
        return Request(_identity(meta, options), options, rejections=tuple(placed), seed_form=seed_form)

    try:
        options = RequestOptions.model_validate(document)
    except ValidationError as exc:
        return reject_all(describe(exc))
    if options.storageId is not None and options.disks is not None:
        return reject_all("give either storageId (seed form) or disks (batch form), not both", options)
    if options.storageId is None and not options.disks and options.selector is None:
        return reject_all(
            "request names no disks: set storageId, a non-empty disks list, or a selector", options
        )
    expires_at, problem = expiry(options, default_retain_days, now or datetime.now(timezone.utc))
    if problem is not None:
        return reject_all(problem, options)
    targets, rejections = _targets(options)
    return Request(
        _identity(meta, options),
        options,
        targets=tuple(targets),
        rejections=tuple(rejections),
        expires_at=expires_at,
        seed_form=seed_form,
    )


def rejection(meta: RequestMeta, problem: str) -> Request:
    """A request whose event carried no usable document: one 9003 result naming ``problem``."""
    return Request(meta, rejections=((0, _invalid(None, None, problem)),))


def expiry(options: RequestOptions, default_days: int, now: datetime) -> tuple[str | None, str | None]:
    """``(CreateSnapshot Deadline or None, problem or None)``.

    An explicit ``deadline`` wins over ``retainDays``, which wins over the trigger's
    configured default (0: keep forever). Tencent requires the Deadline in UTC
    ISO-8601 and at least one day ahead.
    """
    if options.deadline is not None:
        if options.deadline - now < MINIMUM_EXPIRY:
            return None, (
                f"deadline: {_iso(options.deadline)} is less than one day ahead; "
                "Tencent's minimum Deadline is one day after now"
            )
        return _iso(options.deadline), None
    days = options.retainDays if options.retainDays is not None else default_days
    if not days:
        return None, None
    return _iso(now + timedelta(days=days)), None


def describe(error: ValidationError, prefix: str = "") -> str:
    """One readable line for the first pydantic error, without echoing the input."""
    first = error.errors(include_url=False, include_input=False)[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    where = f"{prefix}{'.' if prefix and loc else ''}{loc}"
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if first.get("type") == "string_pattern_mismatch" and "disk-" in str(first.get("ctx", "")):
        msg = _DISK_ID_RULE
    return f"{where}: {msg}" if where else msg


# -- helpers -----------------------------------------------------------------------------------


def _identity(meta: RequestMeta, options: RequestOptions | None) -> RequestMeta:
    """The effective identity: the document's replyTo/correlation, and the key rule."""
    if options is None:
        return meta
    meta = replace(meta, reply_to=options.replyTo, correlation=options.correlation)
    if options.idempotencyKey is not None:
        # An explicit key names the request whatever carried it (timer, queue, webhook, chunk).
        meta = replace(meta, request_key=f"key/{options.idempotencyKey}", key_is_fresh=False)
    return meta


def _decoded(document: Any) -> tuple[dict[str, Any], str | None]:
    if isinstance(document, (str, bytes, bytearray)):
        try:
            document = json.loads(document)
        except (ValueError, RecursionError) as exc:
            return {}, f"request is not valid JSON: {exc}"[:200]
    if not isinstance(document, dict):
        return {}, f"request must be a JSON object, got {type(document).__name__}"
    return document, None


def _targets(options: RequestOptions) -> tuple[list[DiskTarget], list[Placed]]:
    """The valid disks (deduplicated: one snapshot per disk per request) and the 9003s."""
    named_request_wide = options.snapshotName is not None
    default_name = options.snapshotName or DEFAULT_SNAPSHOT_NAME
    if options.storageId is not None:
        items: list[tuple[str, Any]] = [("storageId", options.storageId)]
    else:
        items = [(f"disks[{i}]", item) for i, item in enumerate(options.disks or [])]
    targets: list[DiskTarget] = []
    rejections: list[Placed] = []
    seen: set[str] = set()
    for position, (where, item) in enumerate(items):
        entry = _entry(item, where)
        if isinstance(entry, str):
            ref = item.get("storageId", item.get("diskId")) if isinstance(item, dict) else item
            name = item.get("snapshotName") if isinstance(item, dict) else None
            rejections.append((position, _invalid(ref, name, entry)))
            continue
        if entry.storageId in seen:
            continue
        seen.add(entry.storageId)
        targets.append(
            DiskTarget(
                entry.storageId,
                entry.snapshotName or default_name,
                position,
                name_given=named_request_wide or entry.snapshotName is not None,
            )
        )
    return targets, rejections


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
            return describe(exc, where)
    expected = "a disk ID string" if where == "storageId" else "a disk ID string or an object"
    return f"{where}: must be {expected}, got {type(item).__name__}"


def _raw_items(document: dict[str, Any]) -> tuple[bool, list[Any]]:
    """(seed form?, every disk entry as given) before any validation, so that a
    request-level problem can still be reported once per disk the caller named."""
    raw_single = document.get("storageId", document.get("diskId"))
    raw_disks = document.get("disks")
    raw_items: list[Any] = [] if raw_single is None else [raw_single]
    if isinstance(raw_disks, list):
        raw_items.extend(raw_disks)
    return raw_single is not None and raw_disks is None, raw_items


def _echo(value: Any) -> str | None:
    """A disk reference safe to put in a result: strings only, truncated."""
    if not isinstance(value, str):
        return None
    return value if len(value) <= _ECHO_LIMIT else value[:_ECHO_LIMIT] + "…"


def _invalid(storage_id: Any, name: Any, message: str) -> SnapshotResult:
    return SnapshotResult.failure(
        _echo(storage_id),
        name if isinstance(name, str) and len(name) <= MAX_SNAPSHOT_NAME else None,
        SeedCode.INVALID_PARAMETER,
        message,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()
