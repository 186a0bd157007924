"""Fixtures for the emulator tests: a running Emulator and real-SDK clients pointed at it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
from tencentcloud.cbs.v20170312 import cbs_client
from tencentcloud.cbs.v20170312 import models as cbs_models
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.tdmq.v20200217 import models as tdmq_models
from tencentcloud.tdmq.v20200217 import tdmq_client

from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator


class Sdk:
    """Calls the emulator through the official SDK's typed models and returns plain dicts."""

    def __init__(
        self,
        emu: Emulator,
        *,
        region: str = "ap-guangzhou",
        secret_id: str = DEFAULT_SECRET_ID,
        secret_key: str = DEFAULT_SECRET_KEY,
        token: str | None = None,
        method: str = "POST",
        unsigned_payload: bool = False,
    ) -> None:
        http = HttpProfile(protocol="http", endpoint=emu.endpoint, reqTimeout=10, reqMethod=method)
        profile = ClientProfile(httpProfile=http, language="en-US")
        if unsigned_payload:
            profile.unsignedPayload = True
        cred = Credential(secret_id, secret_key, token)
        self.cbs_client = cbs_client.CbsClient(cred, region, profile)
        self.tdmq_client = tdmq_client.TdmqClient(cred, region, profile)

    def cbs(self, action: str, **params: Any) -> dict[str, Any]:
        """Run a CBS action through its typed request/response models."""
        req = getattr(cbs_models, action + "Request")()
        req.from_json_string(json.dumps(params))
        return json.loads(getattr(self.cbs_client, action)(req).to_json_string())

    def tdmq(self, action: str, **params: Any) -> dict[str, Any]:
        """Run a TDMQ action through its typed request/response models."""
        req = getattr(tdmq_models, action + "Request")()
        req.from_json_string(json.dumps(params))
        return json.loads(getattr(self.tdmq_client, action)(req).to_json_string())

    def cbs_error(self, action: str, **params: Any) -> TencentCloudSDKException:
        """Run a CBS action that must fail; return the SDK exception (with a RequestId)."""
        with pytest.raises(TencentCloudSDKException) as info:
            self.cbs(action, **params)
        assert info.value.requestId, "API errors must carry a RequestId"
        return info.value

    def tdmq_error(self, action: str, **params: Any) -> TencentCloudSDKException:
        """Run a TDMQ action that must fail; return the SDK exception."""
        with pytest.raises(TencentCloudSDKException) as info:
            self.tdmq(action, **params)
        assert info.value.requestId
        return info.value

    def snapshot(self, snapshot_id: str) -> dict[str, Any]:
        """DescribeSnapshots for one id."""
        found = self.cbs("DescribeSnapshots", SnapshotIds=[snapshot_id])["SnapshotSet"]
        assert len(found) == 1, found
        return found[0]


def _sign_raw(
    emu: Emulator,
    action: str,
    body: bytes | str = b"{}",
    *,
    service: str = "cbs",
    version: str = "2017-03-12",
    region: str | None = "ap-guangzhou",
    timestamp: int | None = None,
    secret_id: str = DEFAULT_SECRET_ID,
    secret_key: str = DEFAULT_SECRET_KEY,
    scope_date: str | None = None,
    token: str | None = None,
    content_type: str = "application/json",
    authorization: str | None = None,
) -> requests.Response:
    """Build and send a TC3-signed POST by hand (hashlib/hmac per tencent-facts.md 2.2)."""
    payload = body.encode() if isinstance(body, str) else body
    ts = int(time.time()) if timestamp is None else timestamp
    date = scope_date or datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")
    canonical = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type}\nhost:{emu.endpoint}\n",
            "content-type;host",
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(ts),
            f"{date}/{service}/tc3_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )

    def _h(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    k = _h(_h(_h(("TC3" + secret_key).encode(), date), service), "tc3_request")
    signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": content_type,
        "Host": emu.endpoint,
        "X-TC-Action": action,
        "X-TC-Version": version,
        "X-TC-Timestamp": str(ts),
        "Authorization": authorization
        if authorization is not None
        else (
            f"TC3-HMAC-SHA256 Credential={secret_id}/{date}/{service}/tc3_request, "
            f"SignedHeaders=content-type;host, Signature={signature}"
        ),
    }
    if authorization == "":
        del headers["Authorization"]  # "" means: send no Authorization header at all
    if region is not None:
        headers["X-TC-Region"] = region
    if token is not None:
        headers["X-TC-Token"] = token
    return requests.post(emu.url + "/", data=payload, headers=headers, timeout=10)


def _raw_error(resp: requests.Response) -> str:
    """The Error.Code of a raw response (asserting the envelope is the documented one)."""
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    body = resp.json()["Response"]
    assert body["RequestId"]
    return str(body["Error"]["Code"])


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A started, empty emulator (3 s snapshot creation, default 20/s rate limit, seeded ids)."""
    with Emulator(rng_seed=7) as emu:
        yield emu


class Raw:
    """Hand-built requests: ``raw.post(emu, action, body, **options)`` and ``raw.error(resp)``."""

    post = staticmethod(_sign_raw)
    error = staticmethod(_raw_error)


@pytest.fixture
def raw() -> Raw:
    """Hand-signed raw requests (see :func:`_sign_raw`)."""
    return Raw()


@pytest.fixture
def make_sdk(emulator: Emulator) -> Any:
    """Factory for SDK clients: ``make_sdk(emu=None, region=..., secret_id=..., token=..., method=...)``."""

    def make(emu: Emulator | None = None, **options: Any) -> Sdk:
        return Sdk(emu or emulator, **options)

    return make


@pytest.fixture
def sdk(emulator: Emulator) -> Sdk:
    """SDK clients (CBS and TDMQ, ap-guangzhou, default credentials) bound to ``emulator``."""
    return Sdk(emulator)


@pytest.fixture
def admin(emulator: Emulator) -> Any:
    """A tiny JSON client for the admin API of ``emulator``."""

    class Admin:
        def __call__(self, method: str, route: str, body: Any = None) -> tuple[int, Any]:
            resp = requests.request(method, f"{emulator.url}/_emulator/{route}", json=body, timeout=10)
            assert resp.headers["Content-Type"] == "application/json"
            return resp.status_code, resp.json()

    return Admin()
