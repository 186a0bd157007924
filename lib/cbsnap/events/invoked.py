"""Events of direct invocations: cbsnap's own asynchronous self-invocations and plain request
documents (``Invoke`` by a user, ``tccli scf Invoke``, the console's test button).

Three shapes arrive at ``index.main_handler`` as the event itself:

* ``{"cbsnapChunk": {…}, "request": {…}}`` — a fan-out chunk (:mod:`cbsnap.fanout`);
* ``{"cbsnapRecheck": {…}}`` — a link of a completion re-check chain (:mod:`cbsnap.notify`);
* any other JSON object — a request document.

A request document invoked directly is named by its ``idempotencyKey`` when it has one, else
``invoke/<SCF request id>``. Checked by key alone here so that the router and the handler
import neither the chunk nor the re-check models.
"""

from __future__ import annotations

from typing import Any, Literal

CHUNK_FIELD = "cbsnapChunk"
RECHECK_FIELD = "cbsnapRecheck"
TRIGGER = "invoke"

InvokedKind = Literal["chunk", "recheck", "document"]


def invoked_kind(event: Any) -> InvokedKind:
    """What a directly invoked event carries."""
    if isinstance(event, dict):
        if CHUNK_FIELD in event:
            return "chunk"
        if RECHECK_FIELD in event:
            return "recheck"
    return "document"


def is_self_invocation(event: Any) -> bool:
    """True for cbsnap's own asynchronous invocations (a chunk or a re-check link)."""
    return invoked_kind(event) != "document"
