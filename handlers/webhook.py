"""SCF HTTP events (API Gateway with integrated response, or the function URL) → snapshots.

Routes: ``POST /snapshots`` (a JSON request document), ``GET|POST /v2/index.php?Action=CreateSnapshot&…``
(the seed's endpoint), ``GET /snapshots/{snapshotId}`` and ``POST /push/cmq?token=…`` (a TDMQ-CMQ
topic's HTTP push). Every request but a push carries ``X-Cbsnap-Timestamp`` and
``X-Cbsnap-Signature`` (``cbsnap sign`` makes them), whichever way it came in;
statuses and auth are documented in docs/triggers.md.

Example event (``events/apigw-snapshots.json``, abridged)::

    {"httpMethod": "POST", "path": "/snapshots",
     "headers": {"x-cbsnap-timestamp": "1764295200", "x-cbsnap-signature": "sha256=…"},
     "body": "{\\"storageId\\": \\"disk-g73hhs4o\\", \\"snapshotName\\": \\"mySnap\\"}",
     "requestContext": {"requestId": "…", "stage": "release"}}
"""

from __future__ import annotations

import time
from typing import Any

from cbsnap.metrics import metered
from cbsnap.runtime import get_runtime
from cbsnap.webhook import WallClock, handle_webhook


@metered("webhook")
def main_handler(event: Any, context: Any, *, clock: WallClock = time.time) -> dict[str, Any]:
    """Answer one HTTP event: ``{"isBase64Encoded", "statusCode", "headers", "body"}``."""
    return handle_webhook(event, context, get_runtime(), clock=clock)
