"""Running one request's independent calls on a few threads, results in order."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Parallel(Protocol):
    """Runs ``work`` over ``items`` (possibly on threads), results in the items' order."""

    def __call__(self, work: Callable[[T], R], items: Sequence[T], /) -> list[R]: ...


class Workers:
    """Up to ``concurrency`` threads per call; the pacer, not the pool, keeps calls under
    the API rate limit, so a few threads are enough to hide network latency."""

    def __init__(self, concurrency: int = 8) -> None:
        self._concurrency = max(1, concurrency)

    def __call__(self, work: Callable[[T], R], items: Sequence[T], /) -> list[R]:
        """``work`` over ``items``, results in order (sequential for one worker or one item)."""
        workers = min(self._concurrency, len(items))
        if workers <= 1:
            return [work(item) for item in items]
        # Each item runs in its own copy of the caller's context: the invocation's request id
        # (cbsnap.logs) and call tallies (cbsnap.metrics) follow the work onto the threads.
        contexts = [contextvars.copy_context() for _ in items]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cbsnap") as pool:
            return list(pool.map(lambda ctx, item: ctx.run(work, item), contexts, items))


def sequential(work: Callable[[T], R], items: Sequence[T], /) -> list[R]:
    """:class:`Parallel` without threads."""
    return [work(item) for item in items]
