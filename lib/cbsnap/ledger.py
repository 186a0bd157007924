"""Optional shared memory of what cbsnap already did: key → snapshot records and
short per-disk locks. Without it (no ``CBSNAP_REDIS_URL``) every guarantee still
holds through the snapshot tags; the ledger only saves API calls and closes the
race between two concurrent deliveries of the same request.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Ledger(Protocol):
    """Records which snapshot answers which per-disk key, and serialises work on one key."""

    def recall(self, keys: Sequence[str]) -> dict[str, str]:
        """The snapshot IDs recorded for those of ``keys`` that have one."""
        ...

    def record(self, key: str, snapshot_id: str) -> None:
        """Remember that ``key`` is answered by ``snapshot_id``."""
        ...

    def hold(self, key: str, wait_seconds: float) -> AbstractContextManager[bool]:
        """Hold the per-key lock while the block runs; yields False if it could not be had in time."""
        ...

    # -- completion events (cbsnap.notify) --
    def claim(self, key: str, ttl_seconds: int) -> bool:
        """Take ``key`` for ``ttl_seconds`` if nobody has: True for the first caller only.

        Used to emit each completion event at most once. A ledger that cannot tell
        (none configured, Redis unreachable) answers True: the event is emitted and
        consumers de-duplicate by its ``eventId``.
        """
        ...


class NoLedger:
    """The default: nothing shared, nothing to wait for."""

    def recall(self, keys: Sequence[str]) -> dict[str, str]:
        """Nothing is ever recorded."""
        return {}

    def record(self, key: str, snapshot_id: str) -> None:
        """Nothing to record into."""

    @contextmanager
    def hold(self, key: str, wait_seconds: float) -> Iterator[bool]:
        """No lock: always granted."""
        yield True

    # -- completion events (cbsnap.notify) --
    def claim(self, key: str, ttl_seconds: int) -> bool:
        """Nothing shared to claim in: always True (at-most-once needs Redis; see docs/pre-deploy.md)."""
        return True
