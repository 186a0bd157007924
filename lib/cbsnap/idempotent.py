"""Mutating calls that survive lost replies: create, and after any ambiguous failure
look for what the call may have made before trying again.

A network error or an ``InternalError`` on CreateSnapshot (or CreateSnapshotGroup) may
have been committed although no answer came back. Retrying blind could make a second
snapshot; so the use case passes a ``find`` that looks for the resource by the request's
key tag, and :func:`create_idempotently` runs it after every ambiguous failure.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cbsnap.client import RetryPolicy
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.pacing import Sleep
from cbsnap.scf import Deadline

C = TypeVar("C")
F = TypeVar("F")

# Codes after which the disk may already carry *our* snapshot (a lost reply).
CREATING_CODES = frozenset({"InvalidDisk.SnapshotCreating", "ResourceUnavailable.SnapshotCreating"})


@dataclass(frozen=True)
class Attempt(Generic[C, F]):
    """How a mutating call ended: created, found (made earlier), or failed.

    ``attempted`` is False when the end is unresolved: the call may have made something
    the look could not find (the look itself failed), or it never started. Such a disk
    is left for a redelivery, whose look-before-create settles it.
    """

    created: C | None = None
    found: F | None = None
    error: CloudError | DeadlineReached | None = None
    attempted: bool = True
    request_id: str | None = None
    suffix: str = ""


class IdempotentCreator:
    """Runs :meth:`create` with the retry policy, sleep and randomness it is given."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()

    def create(
        self, create: Callable[[], C], find: Callable[[], F | None], deadline: Deadline
    ) -> Attempt[C, F]:
        """Run a mutating ``create``; after any ambiguous failure run ``find`` for what it
        made before trying again, so a lost reply never yields a second resource."""
        last: CloudError | None = None
        ambiguous = 0
        unresolved = False  # the last failure may have created something we could not find
        while True:
            try:
                return Attempt(created=create())
            except DeadlineReached as exc:
                if last is None:
                    return Attempt(error=exc, attempted=False)
                return Attempt(error=last, attempted=not unresolved)
            except CloudError as err:
                last = err
                if not (err.is_ambiguous or err.code in CREATING_CODES):
                    return Attempt(error=err)
                try:
                    found = find()
                    unresolved = False
                except (CloudError, DeadlineReached):
                    found = None
                    unresolved = True
                if found is not None:
                    return Attempt(found=found, request_id=err.request_id)
                if err.code in CREATING_CODES:  # somebody else's snapshot is in progress
                    return Attempt(error=err, attempted=not unresolved)
                ambiguous += 1
                if ambiguous >= self._policy.transient_attempts:
                    suffix = f" (gave up after {ambiguous} attempts)"
                    return Attempt(error=err, suffix=suffix, attempted=not unresolved)
                wait = self._policy.delay(ambiguous, self._rng)
                if wait >= deadline.remaining():
                    return Attempt(error=err, attempted=not unresolved)
                self._sleep(wait)
