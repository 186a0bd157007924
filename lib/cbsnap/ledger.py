"""Optional shared memory of what cbsnap already did: key → snapshot records and
short per-disk locks. Without it (no ``CBSNAP_REDIS_URL``) every guarantee still
holds through the snapshot tags; the ledger only saves API calls and closes the
race between two concurrent deliveries of the same request.

A ledger is optional in production, so it must never cost a snapshot: a lock held by
another delivery makes the disk *not attempted* (the platform redelivers), a lock lives
no longer than the invocation that took it, and an unreachable or hung store is left
alone for the rest of the invocation after its first failure.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from cbsnap.scf import Deadline


class Ledger(Protocol):
    """Records which snapshot answers which per-disk key, and serialises work on one key."""

    def begin_invocation(self, deadline: Deadline) -> None:
        """A new invocation starts: forget an earlier failure, budget this one's time."""
        ...

    def recall(self, keys: Sequence[str]) -> dict[str, str]:
        """The snapshot IDs recorded for those of ``keys`` that have one."""
        ...

    def record(self, key: str, snapshot_id: str) -> None:
        """Remember that ``key`` is answered by ``snapshot_id``."""
        ...

    def hold(self, key: str, deadline: Deadline) -> AbstractContextManager[bool]:
        """Hold the per-key lock while the block runs (it expires with ``deadline``);
        yields False when another holder kept it."""
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

    def begin_invocation(self, deadline: Deadline) -> None:
        """Nothing to reset."""

    def recall(self, keys: Sequence[str]) -> dict[str, str]:
        """Nothing is ever recorded."""
        return {}

    def record(self, key: str, snapshot_id: str) -> None:
        """Nothing to record into."""

    @contextmanager
    def hold(self, key: str, deadline: Deadline) -> Iterator[bool]:
        """No lock: always granted."""
        yield True

    # -- completion events (cbsnap.notify) --
    def claim(self, key: str, ttl_seconds: int) -> bool:
        """Nothing shared to claim in: always True (at-most-once needs Redis; see docs/pre-deploy.md)."""
        return True
