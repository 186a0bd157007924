"""An in-memory :class:`~cbsnap.ledger.Ledger`: key → snapshot records, per-key locks, claims.

It shares its state between "deliveries" the way Redis does between function instances:
a test can hold a key's lock as another delivery (:meth:`MemoryLedger.held_elsewhere`)
or forget everything (a Redis that restarted empty).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from cbsnap.scf import Deadline


class MemoryLedger:
    """See the module docstring."""

    def __init__(self) -> None:
        self.records: dict[str, str] = {}
        self.locks: dict[str, str] = {}  # key → holder
        self.claims: set[str] = set()
        self.invocations = 0
        self.refused: list[str] = []  # keys whose lock was refused, in order
        self._holders = 0

    def begin_invocation(self, deadline: Deadline) -> None:
        self.invocations += 1

    def recall(self, keys: Sequence[str]) -> dict[str, str]:
        return {k: self.records[k] for k in keys if k in self.records}

    def record(self, key: str, snapshot_id: str) -> None:
        self.records[key] = snapshot_id

    @contextmanager
    def hold(self, key: str, deadline: Deadline) -> Iterator[bool]:
        if key in self.locks:
            self.refused.append(key)
            yield False
            return
        self._holders += 1
        holder = f"holder-{self._holders}"
        self.locks[key] = holder
        try:
            yield True
        finally:
            if self.locks.get(key) == holder:
                del self.locks[key]

    def claim(self, key: str, ttl_seconds: int) -> bool:
        if key in self.claims:
            return False
        self.claims.add(key)
        return True

    # -- arranging -------------------------------------------------------------------------------

    def held_elsewhere(self, key: str) -> None:
        """Another delivery holds ``key``'s lock (and keeps it)."""
        self.locks[key] = "another delivery"

    def forget(self) -> None:
        """Everything gone, as after a restart of a Redis without persistence."""
        self.records.clear()
        self.locks.clear()
        self.claims.clear()
