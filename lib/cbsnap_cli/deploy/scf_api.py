"""The one place ``cbsnap deploy`` talks to SCF: typed SDK requests in, plain dicts out, SDK exceptions
turned into :class:`CloudError`, and the wait-until-Active loop on an injected clock and sleep (the way
chalice's ``TypedAWSClient(sleep=…)`` makes its waits testable)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import CloudError

NOT_FOUND = ("ResourceNotFound.Function", "ResourceNotFound.FunctionName")
MUTATING = (
    "CreateFunction",
    "UpdateFunctionCode",
    "UpdateFunctionConfiguration",
    "CreateTrigger",
    "DeleteTrigger",
    "UpdateFunctionEventInvokeConfig",
)


@dataclass(frozen=True)
class Connection:
    """Where and as whom to call: credentials, region and an optional endpoint (``CBSNAP_ENDPOINT``)."""

    secret_id: str
    secret_key: str
    token: str | None
    region: str
    protocol: str = "https"
    endpoint: str | None = None  # host[:port]; None: scf.tencentcloudapi.com


class ScfApi:
    """SCF calls for deploy. ``sleep`` and ``clock`` are injected so waits can be driven by a test."""

    def __init__(
        self,
        connection: Connection,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: float = 1.0,
        wait_seconds: float = 300.0,
    ) -> None:
        from tencentcloud.common.credential import Credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.scf.v20180416 import scf_client

        http = HttpProfile(protocol=connection.protocol, reqTimeout=120)
        if connection.endpoint:
            http.endpoint = connection.endpoint
        credential = Credential(connection.secret_id, connection.secret_key, connection.token)
        self._client = scf_client.ScfClient(credential, connection.region, ClientProfile(httpProfile=http))
        self._sleep = sleep
        self._clock = clock
        self.poll_seconds = poll_seconds
        self.wait_seconds = wait_seconds
        self.calls: list[str] = []  # actions called, in order (for "what was already changed")

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        """Call ``action`` with ``params``; return the response as a dict or raise :class:`CloudError`."""
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
        from tencentcloud.scf.v20180416 import models

        request = getattr(models, f"{action}Request")()
        request.from_json_string(json.dumps(params))
        self.calls.append(action)
        try:
            response = getattr(self._client, action)(request)
        except TencentCloudSDKException as exc:
            raise CloudError(action, str(exc.code), str(exc.message), exc.requestId) from exc
        result: dict[str, Any] = json.loads(response.to_json_string())
        return result

    @property
    def mutating_calls(self) -> list[str]:
        """The mutating actions called so far."""
        return [c for c in self.calls if c in MUTATING]

    # -- reads ---------------------------------------------------------------------------------
    def get_function(self, name: str, namespace: str) -> dict[str, Any] | None:
        """GetFunction, or None when the function does not exist."""
        try:
            return self.call("GetFunction", FunctionName=name, Namespace=namespace)
        except CloudError as exc:
            if exc.code in NOT_FOUND:
                return None
            raise

    def code_sha256(self, name: str, namespace: str) -> str:
        """GetFunctionAddress's CodeSha256 (GetFunction has no code hash)."""
        return str(
            self.call("GetFunctionAddress", FunctionName=name, Namespace=namespace).get("CodeSha256") or ""
        )

    def list_triggers(self, name: str, namespace: str) -> list[dict[str, Any]]:
        """Every trigger of the function (all pages)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.call(
                "ListTriggers", FunctionName=name, Namespace=namespace, Offset=len(found), Limit=100
            )
            triggers = page.get("Triggers") or []
            found.extend(triggers)
            if not triggers or len(found) >= int(page.get("TotalCount") or 0):
                return found

    def async_config(self, name: str, namespace: str) -> dict[str, Any]:
        """GetFunctionEventInvokeConfig's AsyncTriggerConfig."""
        response = self.call("GetFunctionEventInvokeConfig", FunctionName=name, Namespace=namespace)
        config: dict[str, Any] = response.get("AsyncTriggerConfig") or {}
        return config

    # -- waiting -------------------------------------------------------------------------------
    def wait_active(self, name: str, namespace: str) -> dict[str, Any]:
        """Poll GetFunction until ``Status`` is Active; a failed status or the time limit raises."""
        deadline = self._clock() + self.wait_seconds
        while True:
            function = self.get_function(name, namespace)
            if function is None:
                raise CloudError("GetFunction", "ResourceNotFound.Function", f"{name} disappeared", None)
            status = str(function.get("Status") or "")
            if status == "Active":
                return function
            if status.endswith("Failed"):
                reasons = "; ".join(
                    f"{r.get('ErrorCode')}: {r.get('ErrorMessage')}"
                    for r in function.get("StatusReasons") or []
                )
                raise CloudError(
                    "GetFunction", f"Status.{status}", reasons or "the function is " + status, None
                )
            if self._clock() >= deadline:
                raise CloudError(
                    "GetFunction", "Timeout", f"{name} still {status} after {self.wait_seconds:g} s", None
                )
            self._sleep(self.poll_seconds)
