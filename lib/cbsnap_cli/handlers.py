"""The SCF handlers as the CLI runs them: by name, with an SCF-shaped context.

The handlers live in the repository's ``handlers/`` package (at the zip root once deployed). The
CLI imports them as ``handlers.<name>`` with the repository root on ``sys.path``, so
``index.main_handler`` can import its siblings exactly as it does in the tests.
"""

from __future__ import annotations

import importlib
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cbsnap_cli.errors import UsageError

Handler = Callable[[Any, Any], Any]

# name -> what it handles (shown by `cbsnap invoke --help`)
HANDLERS: dict[str, str] = {
    "index": "the deployed entry point (serverless.yml): routes each event by its shape",
    "timer": "timer trigger events (events/timer*.json)",
    "messages": "CKafka and EventBridge (TDMQ) events (events/ckafka.json, tdmq.json, eventbridge-*.json)",
    "webhook": "API Gateway and function URL events (events/apigw-*.json, function-url-*.json)",
    "invoked": "cbsnap's own asynchronous invocations and request documents invoked directly",
}
DEFAULT_TIMEOUT_S = 60.0  # serverless.yml's function timeout
REPO_ROOT = Path(__file__).resolve().parents[2]


def _handlers_root() -> Path:
    """The directory that holds the ``handlers`` package: this checkout first, then the cwd."""
    for root in (REPO_ROOT, Path.cwd()):
        if (root / "handlers" / "index.py").is_file():
            return root
    raise UsageError(
        "cannot find the handlers/ directory (it is not installed with the package)",
        "run cbsnap from a clone of the repository",
    )


def load_handler(name: str) -> Handler:
    """The ``main_handler`` of ``handlers/<name>.py``."""
    if name not in HANDLERS:
        raise UsageError(f"no handler named {name!r}", f"use one of: {', '.join(HANDLERS)}")
    root = str(_handlers_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module(f"handlers.{name}")
    handler: Handler = module.main_handler
    return handler


def scf_context(timeout_s: float = DEFAULT_TIMEOUT_S, request_id: str | None = None) -> dict[str, Any]:
    """An SCF-shaped dict context for one local invocation."""
    return {
        "memory_limit_in_mb": 128,
        "time_limit_in_ms": int(timeout_s * 1000),
        "request_id": request_id or f"local-{int(time.time())}-{uuid.uuid4().hex[:8]}",
        "function_name": "cbsnap-local",
        "function_version": "$LATEST",
        "namespace": "default",
    }
