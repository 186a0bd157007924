"""The deployed function's single entry point: ``index.main_handler`` (see serverless.yml).

One SCF function carries every trigger (docs/deploy.md explains why). This module tells
the event shapes SCF delivers today apart (docs/triggers.md) and routes each to its
trigger's handler module:

* ``{"Type": "Timer", …}`` → :mod:`timer`
* an HTTP event → :mod:`webhook`: API Gateway's (``requestContext`` + ``httpMethod``) or the
  function URL's (``httpMethod`` and ``path``, no ``requestContext``), which also carries
  TDMQ-CMQ topic pushes (``POST /push/cmq``)
* a direct invocation → :mod:`invoked`: cbsnap's own asynchronous self-invocations
  (``{"cbsnapChunk": …}``, ``{"cbsnapRecheck": …}``) and plain request documents
* everything else → :mod:`messages`: CKafka ``Records``, an EventBridge CloudEvent (TDMQ for
  Pulsar) or a batch of them (``{"EventList": [...]}``), and anything unrecognisable, which
  it reports as a 9003 result instead of raising.

The shapes cannot be mistaken for one another: a request document refuses unknown fields,
so it never has ``Type``, ``httpMethod``, ``Records``, ``EventList`` or ``specversion``.

Each handler module is imported on its first event only, so a timer invocation does not
import the webhook's code. The modules sit beside this one at the zip root (SCF) or in the
``handlers`` package (the repository, tests); both layouts work.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any, Any], Any]

_loaded: dict[str, Handler] = {}

# What each kind of event is handled by: a self-invocation (a fan-out chunk, a re-check link)
# or a request document invoked directly goes to ``invoked``.
HANDLER_FOR_KIND = {
    "timer": "timer",
    "http": "webhook",
    "eventbridge": "messages",
    "queue": "messages",
    "invoke": "invoked",
    "unknown": "messages",
}
SELF_INVOCATION_MARKERS = ("cbsnapChunk", "cbsnapRecheck")


def kind(event: Any) -> str:
    """What ``event`` is: ``timer``, ``http``, ``eventbridge``, ``queue``, ``invoke`` or ``unknown``."""
    if not isinstance(event, dict):
        return "unknown"
    timer = event.get("Type")
    if isinstance(timer, str) and timer.lower() == "timer":
        return "timer"
    if isinstance(event.get("requestContext"), dict):
        return "http"  # API Gateway
    if isinstance(event.get("httpMethod"), str) and isinstance(event.get("path"), str):
        return "http"  # the function URL: API Gateway's shape without requestContext
    connector = event.get("type")
    if (
        "EventList" in event
        or "specversion" in event
        or (isinstance(connector, str) and connector.startswith("connector:"))
    ):
        return "eventbridge"
    if "Records" in event:
        return "queue"
    if any(marker in event for marker in SELF_INVOCATION_MARKERS):
        return "invoke"
    if "storageId" in event or "diskId" in event or "disks" in event or "selector" in event:
        return "invoke"  # a plain request document, invoked directly
    return "unknown"


def route(event: Any) -> str:
    """The name of the handler module for ``event``."""
    return HANDLER_FOR_KIND[kind(event)]


def _handler(name: str) -> Handler:
    handler = _loaded.get(name)
    if handler is None:
        module = importlib.import_module(f"{__package__}.{name}" if __package__ else name)
        handler = module.main_handler
        _loaded[name] = handler
    return handler


def main_handler(event: Any, context: Any) -> Any:
    """Handle any of the function's events with the handler of its trigger."""
    return _handler(route(event))(event, context)
