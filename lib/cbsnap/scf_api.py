"""The SCF client wrapper: ``Invoke`` with ``InvocationType=Event`` (see :mod:`cbsnap.selfinvoke`).

SCF has no delayed messages and no trigger for a TDMQ-CMQ queue (docs/triggers.md), so cbsnap
hands work on to later — fan-out chunks (:mod:`cbsnap.fanout`) and completion re-checks
(:mod:`cbsnap.notify`) — by invoking its own function asynchronously with the work as the
event (``ClientContext``, at most 128 KB). The function's name, namespace and version come
from the invocation's SCF context (:data:`cbsnap.scf.current_function`), or from
``CBSNAP_FANOUT_FUNCTION`` (``[namespace/]name[:qualifier]``). SCF retries a failed
asynchronous run (``UpdateFunctionEventInvokeConfig``; default 2 retries), which is what makes
an unfinished chunk or re-check come back.

Imported on first use only: most invocations hand nothing on, and the SCF SDK's models cost
cold-start time.
"""

from __future__ import annotations

from typing import Any

from tencentcloud.scf.v20180416 import models as scf_models
from tencentcloud.scf.v20180416 import scf_client

from cbsnap.client import SignedApi, make_credential, make_profile
from cbsnap.errors import CloudError
from cbsnap.scf import Deadline, FunctionRef
from cbsnap.settings import Settings

MAX_ASYNC_EVENT_BYTES = 128 * 1024  # Invoke's ClientContext for InvocationType=Event


def make_scf_client(settings: Settings, region: str) -> scf_client.ScfClient:
    """The SDK's ScfClient for one region from settings."""
    return scf_client.ScfClient(make_credential(settings), region, make_profile(settings, "scf"))


class ScfApi(SignedApi):
    """SCF calls for one region (see :class:`~cbsnap.client.SignedApi` for the parameters)."""

    def invoke_async(self, function: FunctionRef, event: str, deadline: Deadline) -> str | None:
        """Queue one asynchronous run of ``function`` with ``event`` (JSON text); its FunctionRequestId.

        A lost reply may leave the run queued although the call failed; a retry then queues a
        second one. That is safe for cbsnap's events (chunks and re-checks are idempotent), so
        ambiguous failures are retried like any transient one.
        """
        size = len(event.encode("utf-8"))
        if size > MAX_ASYNC_EVENT_BYTES:
            raise CloudError(
                "Invoke",
                "InvalidParameterValue.ClientContext",
                f"the event is {size} bytes; asynchronous invocations take at most {MAX_ASYNC_EVENT_BYTES}",
            )
        req = scf_models.InvokeRequest()
        req.FunctionName = function.name
        req.Namespace = function.namespace
        req.Qualifier = function.qualifier
        req.InvocationType = "Event"
        req.ClientContext = event
        resp = self._call("Invoke", req, deadline)
        result: Any = resp.Result
        return str(result.FunctionRequestId) if result is not None and result.FunctionRequestId else None
