"""The deployed function's single entry point: ``index.main_handler`` (see serverless.yml).

One SCF function carries all three triggers (docs/deploy.md explains why). This module
routes each event, by its shape, to the trigger's own handler module:

* ``{"Type": "Timer", …}`` → :mod:`timer`
* an API Gateway event (``{"requestContext": {…}, "httpMethod": …}``) or a function URL's
  (``{"httpMethod": …, "headers": {…}, "path": …}``) → :mod:`webhook`
* everything else → :mod:`messages`: CMQ topic and CKafka ``Records``, a TDMQ CloudEvent,
  and anything unrecognisable, which it reports as a 9003 result instead of raising.

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


def route(event: Any) -> str:
    """The name of the handler module for ``event``."""
    if isinstance(event, dict):
        kind = event.get("Type")
        if isinstance(kind, str) and kind.lower() == "timer":
            return "timer"
        if isinstance(event.get("requestContext"), dict):
            return "webhook"
        # A function URL's event is API Gateway's without requestContext (SCF doc 583/96099).
        if isinstance(event.get("httpMethod"), str) and isinstance(event.get("headers"), dict):
            return "webhook"
        if any(
            key in event
            for key in ("cbsnapChunk", "cbsnapRecheck", "storageId", "diskId", "disks", "selector")
        ):
            return "invoked"  # a self-invocation (chunk, re-check) or a request document
    return "messages"


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
