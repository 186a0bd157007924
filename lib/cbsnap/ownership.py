"""The tags cbsnap writes on every snapshot it creates, in the CreateSnapshot call itself.

``cbsnap:key`` carries the per-disk idempotency key: a retry or a redelivery
finds the snapshot it already made by this tag instead of making another one.
``cbsnap:owner`` marks snapshots cbsnap made, so cleanup never touches others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

OWNER_TAG = "cbsnap:owner"
OWNER_VALUE = "cbsnap"
KEY_TAG = "cbsnap:key"
TRIGGER_TAG = "cbsnap:trigger"
CORRELATION_PREFIX = "cbsnap:corr:"
# On cross-region copies (cbsnap.copies): the snapshot and region a copy was made from.
SOURCE_TAG = "cbsnap:source"
SOURCE_REGION_TAG = "cbsnap:source-region"
# 50 tags per resource: ≤ 40 from the caller, 3 of cbsnap's own, ≤ 5 correlation.
MAX_CORRELATION_TAGS = 5


def disk_key(request_key: str, disk_id: str) -> str:
    """The per-disk idempotency key: a digest of the request's key and the disk ID."""
    return hashlib.sha256(f"{request_key}\n{disk_id}".encode()).hexdigest()[:32]


def owner_tags(request_key: str, disk_id: str, trigger: str) -> dict[str, str]:
    """cbsnap's own tags for one disk of one request."""
    return {
        OWNER_TAG: OWNER_VALUE,
        KEY_TAG: disk_key(request_key, disk_id),
        TRIGGER_TAG: trigger[:255],
    }


def correlation_tags(correlation: Mapping[str, Any] | None) -> dict[str, str]:
    """The request's correlation as snapshot tags, within Tencent's tag limits.

    Scalar values only (nested ones stay in results and logs), at most
    ``MAX_CORRELATION_TAGS`` keys in sorted order, keys ≤ 127 and values ≤ 255 characters.
    """
    if not correlation:
        return {}
    tags: dict[str, str] = {}
    for key in sorted(correlation):
        value = correlation[key]
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            continue
        tags[f"{CORRELATION_PREFIX}{key}"[:127]] = text[:255]
        if len(tags) == MAX_CORRELATION_TAGS:
            break
    return tags
