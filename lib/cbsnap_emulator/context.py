"""What an action handler gets: the state, the request's region and the state-clock time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .state import State


@dataclass(frozen=True)
class Context:
    """The environment of one action call (the state lock is held for its duration)."""

    state: State
    region: str
    now: float


Handler = Callable[[Context, dict[str, Any]], dict[str, Any]]
