"""The tags cbsnap writes on every snapshot it creates, in the CreateSnapshot call itself.

``cbsnap:key`` carries the per-disk idempotency key: a retry or a redelivery
finds the snapshot it already made by this tag instead of making another one.
``cbsnap:owner`` marks snapshots cbsnap made, so cleanup never touches others.
"""

from __future__ import annotations

import hashlib

OWNER_TAG = "cbsnap:owner"
OWNER_VALUE = "cbsnap"
KEY_TAG = "cbsnap:key"
TRIGGER_TAG = "cbsnap:trigger"


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
