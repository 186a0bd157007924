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
