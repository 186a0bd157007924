"""Tag 2018-08-13 actions: TagResources, UnTagResources and GetResources.

Resources are six-segment names, ``qcs::<service>:<region>:uin/<uin>:<prefix>/<id>``. CBS snapshots are
``qcs::cvm:<region>:uin/<uin>:snapshot/<snap-id>`` and disks ``…:volume/<disk-id>`` (the names the
Terraform provider tags them by, and the Tag API's own example); their tags are the very tags
DescribeSnapshots/DescribeDisks show, so CreateSnapshot's tags are visible here and tags written here
are visible there. Every other well-formed name is kept in a plain store, as the tag service would.

The Tag API is global: the request's region is optional and ignored. Requests are all-or-nothing
except that a snapshot or disk that does not exist is reported in ``FailedResources``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .context import Context, Handler
from .errors import ApiError
from .ids import ACCOUNT_UIN
from .params import MAX_TAGS, Params

MAX_RESOURCES_PER_REQUEST = 10  # ResourceList.N: "N ranges over 0~9"
MAX_TAGS_PER_REQUEST = 10  # Tags.N: "N ranges over 0~9"; Use Limits: "at most 10 at a time"
MAX_TAG_FILTERS = 6  # GetResources: "at most 6 groups of tags"
MAX_FILTER_VALUES = 10  # "at most 10 TagValue per group"
MAX_RESULTS_DEFAULT, MAX_RESULTS_LIMIT = 50, 200
MAX_KEY_LENGTH, MAX_VALUE_LENGTH = 127, 255
# Reserved key prefixes: the Use Limits page (qcs:, project, 项目) and the ReservedTagKey error text
# (qcloud, tencent, project); the emulator refuses the union, case-insensitively.
RESERVED_PREFIXES = ("qcs:", "project", "项目", "qcloud", "tencent")
# Besides letters and digits (any script) and inner spaces, the Use Limits page allows these.
_SPECIAL = set("+-=._:/@()[],;><") | set("\uff08\uff09\u3010\u3011\uff1a")  # full-width ( ) [ ] :

_NAME = re.compile(
    r"^qcs::(?P<service>[a-z][a-z0-9_-]*):(?P<region>[a-z0-9-]*):(?P<account>(?:ui[nd]/(?P<uin>[0-9]*))?)"
    r":(?P<prefix>[A-Za-z][A-Za-z0-9_-]*)/(?P<id>[^/\s:]+)$"
)
_PAGE_TOKEN_PREFIX = "cbsnap-emulator-page:"  # noqa: S105 - a paging marker, not a secret


@dataclass(frozen=True)
class ResourceName:
    """A parsed six-segment resource name."""

    service: str
    region: str
    prefix: str
    resource_id: str

    @property
    def canonical(self) -> str:
        """The name with the account filled in, as GetResources answers it."""
        return f"qcs::{self.service}:{self.region}:uin/{ACCOUNT_UIN}:{self.prefix}/{self.resource_id}"


def parse_resource_name(text: str, known_regions: set[str]) -> ResourceName:
    """Parse one ``ResourceList`` entry; raises the Tag API's errors for malformed names."""
    match = _NAME.match(text)
    if match is None:
        raise ApiError(
            "InvalidParameterValue.ResourceDescriptionError",
            f"`{text}` is not a six-segment resource name like "
            f"qcs::cvm:ap-guangzhou:uin/{ACCOUNT_UIN}:snapshot/snap-xxxxxxxx.",
        )
    uin = match.group("uin")
    if uin and uin != ACCOUNT_UIN:
        raise ApiError("InvalidParameterValue.UinInvalid", f"`{text}` names another account ({uin}).")
    region = match.group("region")
    if region and region not in known_regions:
        raise ApiError("InvalidParameterValue.RegionInvalid", f"`{text}` names an unknown region `{region}`.")
    return ResourceName(match.group("service"), region, match.group("prefix"), match.group("id"))


def _resource_names(ctx: Context, p: Params, *, required: bool) -> list[ResourceName] | None:
    names = p.strings("ResourceList")
    if not names:
        if required:
            raise ApiError("MissingParameter", "The request is missing a required parameter `ResourceList`.")
        return None
    if len(names) > MAX_RESOURCES_PER_REQUEST:
        raise ApiError(
            "LimitExceeded.ResourceNumPerRequest",
            f"At most {MAX_RESOURCES_PER_REQUEST} resources per request, got {len(names)}.",
        )
    return [parse_resource_name(n, ctx.state.regions) for n in names]


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not key:
        raise ApiError("InvalidParameterValue.TagKeyEmpty", f"`{where}.TagKey` must not be empty.")
    if len(key) > MAX_KEY_LENGTH:
        raise ApiError(
            "InvalidParameterValue.TagKeyLengthExceeded",
            f"`{where}.TagKey` is longer than {MAX_KEY_LENGTH} characters.",
        )
    if key.lower().startswith(RESERVED_PREFIXES):
        raise ApiError("InvalidParameter.ReservedTagKey", f"The tag key `{key}` uses a reserved prefix.")
    if not _legal(key):
        raise ApiError(
            "InvalidParameterValue.TagKeyCharacterIllegal", f"The tag key `{key}` has an illegal character."
        )
    return key


def _legal(text: str) -> bool:
    return text == text.strip(" ") and all(c.isalnum() or c == " " or c in _SPECIAL for c in text)


def _request_tags(p: Params) -> list[dict[str, str]]:
    """``Tags`` as ``{"Key", "Value"}`` (the CBS form the resources keep), validated."""
    raw = p.raw.get("Tags")
    if not raw:
        raise ApiError("MissingParameter", "The request is missing a required parameter `Tags`.")
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ApiError("InvalidParameter.Tag", "`Tags` must be an array of {TagKey, TagValue}.")
    if len(raw) > MAX_TAGS_PER_REQUEST:
        raise ApiError(
            "LimitExceeded.TagNumPerRequest",
            f"At most {MAX_TAGS_PER_REQUEST} tags per request, got {len(raw)}.",
        )
    tags: list[dict[str, str]] = []
    for i, item in enumerate(raw):
        extra = sorted(set(item) - {"TagKey", "TagValue", "Category"})
        if extra:
            raise ApiError("UnknownParameter", f"The parameter `Tags.{i}.{extra[0]}` is not recognized.")
        key = _check_key(item.get("TagKey"), f"Tags.{i}")
        value = item.get("TagValue")
        if not isinstance(value, str) or not value:
            raise ApiError("InvalidParameterValue.TagValueEmpty", f"`Tags.{i}.TagValue` must not be empty.")
        if len(value) > MAX_VALUE_LENGTH:
            raise ApiError(
                "InvalidParameterValue.TagValueLengthExceeded",
                f"`Tags.{i}.TagValue` is longer than {MAX_VALUE_LENGTH} characters.",
            )
        if not _legal(value):
            raise ApiError(
                "InvalidParameterValue.TagValueCharacterIllegal",
                f"The tag value `{value}` has an illegal character.",
            )
        tags.append({"Key": key, "Value": value})
    if len({t["Key"] for t in tags}) != len(tags):
        raise ApiError("InvalidParameterValue.TagKeyDuplicate", "`Tags` names a tag key twice.")
    return tags


def _modelled_tags(ctx: Context, name: ResourceName) -> tuple[bool, list[dict[str, str]] | None]:
    """(is a snapshot/disk name, its live tag list or None when it does not exist)."""
    if name.service != "cvm" or name.prefix not in ("snapshot", "volume"):
        return False, None
    if name.prefix == "snapshot":
        snap = ctx.state.snapshots.get(name.resource_id)
        return True, snap.tags if snap is not None and snap.region == name.region else None
    disk = ctx.state.disk_in(name.region, name.resource_id)
    return True, disk.api["Tags"] if disk is not None else None


def _targets(
    ctx: Context, names: list[ResourceName], *, create: bool
) -> tuple[list[list[dict[str, str]]], list[dict[str, str]]]:
    """Live tag lists to change, and the FailedResources for snapshots/disks that do not exist."""
    targets: list[list[dict[str, str]]] = []
    failed: list[dict[str, str]] = []
    for name in names:
        modelled, tags = _modelled_tags(ctx, name)
        if modelled and tags is None:
            failed.append(
                {
                    "Resource": name.canonical,
                    "Code": "InvalidParameterValue.ResourceIdInvalid",
                    "Message": f"The {name.prefix} `{name.resource_id}` does not exist in {name.region}.",
                }
            )
        elif modelled:
            assert tags is not None
            targets.append(tags)
        else:
            stored = ctx.state.tag_store.tags_of(name.canonical)
            if stored is None and create:
                stored = ctx.state.tag_store.ensure(name.canonical, ctx.state.next_seq())
            if stored is not None:
                targets.append(stored)
    return targets, failed


def tag_resources(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """TagResources: bind tags to resources; an existing key takes the new value."""
    p = Params(raw, ("ResourceList", "Tags"))
    names = _resource_names(ctx, p, required=True)
    assert names is not None
    tags = _request_tags(p)
    # Check every limit before creating store entries or changing anything (all-or-nothing).
    for name in names:
        modelled, current = _modelled_tags(ctx, name)
        existing = current if modelled else ctx.state.tag_store.tags_of(name.canonical)
        keys = {t["Key"] for t in existing or []} | {t["Key"] for t in tags}
        if len(keys) > MAX_TAGS:
            raise ApiError(
                "LimitExceeded.ResourceAttachedTags",
                f"`{name.canonical}` would carry {len(keys)} tags; a resource takes at most {MAX_TAGS}.",
            )
    targets, failed = _targets(ctx, names, create=True)
    for target in targets:
        for tag in tags:
            for have in target:
                if have["Key"] == tag["Key"]:
                    have["Value"] = tag["Value"]
                    break
            else:
                target.append(dict(tag))
    return {"FailedResources": failed}


def untag_resources(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """UnTagResources: unbind tag keys (keys a resource does not carry are ignored)."""
    p = Params(raw, ("ResourceList", "TagKeys"))
    names = _resource_names(ctx, p, required=True)
    assert names is not None
    keys = p.strings("TagKeys")
    if not keys:
        raise ApiError("MissingParameter", "The request is missing a required parameter `TagKeys`.")
    if len(keys) > MAX_TAGS_PER_REQUEST:
        raise ApiError(
            "LimitExceeded.TagNumPerRequest",
            f"At most {MAX_TAGS_PER_REQUEST} tag keys per request, got {len(keys)}.",
        )
    for i, key in enumerate(keys):
        if not key:
            raise ApiError("InvalidParameterValue.TagKeyEmpty", f"`TagKeys.{i}` must not be empty.")
    if len(set(keys)) != len(keys):
        raise ApiError("InvalidParameterValue.TagKeyDuplicate", "`TagKeys` names a key twice.")
    targets, failed = _targets(ctx, names, create=False)
    for target in targets:
        target[:] = [t for t in target if t["Key"] not in set(keys)]
    return {"FailedResources": failed}


@dataclass(frozen=True)
class _TagFilter:
    key: str
    values: frozenset[str]

    def matches(self, tags: list[dict[str, str]]) -> bool:
        return any(t["Key"] == self.key and (not self.values or t["Value"] in self.values) for t in tags)


def _tag_filters(p: Params) -> list[_TagFilter]:
    raw = p.raw.get("TagFilters")
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(f, dict) for f in raw):
        raise ApiError("InvalidParameter", "`TagFilters` must be an array of {TagKey, TagValue}.")
    if len(raw) > MAX_TAG_FILTERS:
        raise ApiError(
            "LimitExceeded.TagNumPerRequest", f"At most {MAX_TAG_FILTERS} TagFilters, got {len(raw)}."
        )
    filters: list[_TagFilter] = []
    for i, item in enumerate(raw):
        extra = sorted(set(item) - {"TagKey", "TagValue"})
        if extra:
            raise ApiError(
                "UnknownParameter", f"The parameter `TagFilters.{i}.{extra[0]}` is not recognized."
            )
        key = item.get("TagKey")
        if not isinstance(key, str) or not key:
            raise ApiError("InvalidParameterValue.TagKeyEmpty", f"`TagFilters.{i}.TagKey` must not be empty.")
        values = item.get("TagValue") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ApiError("InvalidParameter", f"`TagFilters.{i}.TagValue` must be an array of strings.")
        if len(values) > MAX_FILTER_VALUES:
            raise ApiError(
                "InvalidParameterValue.TagFiltersLengthExceeded",
                f"`TagFilters.{i}` has more than {MAX_FILTER_VALUES} values.",
            )
        filters.append(_TagFilter(key, frozenset(values)))
    if len({f.key for f in filters}) != len(filters):
        raise ApiError("InvalidParameterValue.TagKeyDuplicate", "`TagFilters` names a tag key twice.")
    return filters


def _tagged(ctx: Context) -> Iterator[tuple[int, str, list[dict[str, str]]]]:
    """Every resource carrying at least one tag: (seq, canonical name, tags)."""
    for snap in ctx.state.snapshots.values():
        if snap.tags:
            yield (
                snap.seq,
                ResourceName("cvm", snap.region, "snapshot", snap.snapshot_id).canonical,
                snap.tags,
            )
    for disk in ctx.state.disks.values():
        if disk.api["Tags"]:
            yield (
                disk.seq,
                ResourceName("cvm", disk.region, "volume", disk.disk_id).canonical,
                disk.api["Tags"],
            )
    for name, stored in ctx.state.tag_store.resources.items():
        if stored.tags:
            yield stored.seq, name, stored.tags


def _page_start(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ApiError("InvalidParameter.PaginationTokenInvalid", "The PaginationToken is invalid.") from exc
    digits = text.removeprefix(_PAGE_TOKEN_PREFIX)
    if not text.startswith(_PAGE_TOKEN_PREFIX) or not digits.isdigit():
        raise ApiError("InvalidParameter.PaginationTokenInvalid", "The PaginationToken is invalid.")
    return int(digits)


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_PAGE_TOKEN_PREFIX}{offset}".encode("ascii")).decode("ascii")


def _mapping(name: str, tags: list[dict[str, str]]) -> dict[str, Any]:
    return {"Resource": name, "Tags": [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in tags]}


def get_resources(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """GetResources: tagged resources, by name and/or tags; paged by an opaque PaginationToken."""
    p = Params(raw, ("ResourceList", "TagFilters", "PaginationToken", "MaxResults"))
    names = _resource_names(ctx, p, required=False)
    filters = _tag_filters(p)
    max_results = p.integer("MaxResults", MAX_RESULTS_DEFAULT)
    assert max_results is not None
    if not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise ApiError(
            "InvalidParameter", f"`MaxResults` must be 1 to {MAX_RESULTS_LIMIT}, got {max_results}."
        )
    start = _page_start(p.string("PaginationToken"))
    if names is not None:
        # "With ResourceList, every matching resource is returned and MaxResults is ignored": no paging.
        wanted = {n.canonical for n in names}
        found = [(name, tags) for _, name, tags in sorted(_tagged(ctx)) if name in wanted]
        rows = [_mapping(name, tags) for name, tags in found if all(f.matches(tags) for f in filters)]
        return {"PaginationToken": "", "ResourceTagMappingList": rows}
    matched = [
        _mapping(name, tags)
        for _, name, tags in sorted(_tagged(ctx), key=lambda r: r[0])
        if all(f.matches(tags) for f in filters)
    ]
    page = matched[start : start + max_results]
    more = start + max_results < len(matched)
    return {
        "PaginationToken": _page_token(start + max_results) if more else "",
        "ResourceTagMappingList": page,
    }


TAG_ACTIONS: dict[str, Handler] = {
    "TagResources": tag_resources,
    "UnTagResources": untag_resources,
    "GetResources": get_resources,
}
