"""SCF management actions through the real tencentcloud-sdk-python-scf client (TC3-signed, over HTTP)."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from typing import Any

import pytest
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.scf.v20180416 import models as scf_models
from tencentcloud.scf.v20180416 import scf_client

from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator


class Scf:
    """The SCF SDK client bound to an emulator; typed requests in, plain dicts out."""

    def __init__(self, emu: Emulator, region: str = "ap-guangzhou") -> None:
        http = HttpProfile(protocol="http", endpoint=emu.endpoint, reqTimeout=60)
        profile = ClientProfile(httpProfile=http, language="en-US")
        self.client = scf_client.ScfClient(Credential(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY), region, profile)

    def __call__(self, action: str, **params: Any) -> dict[str, Any]:
        req = getattr(scf_models, action + "Request")()
        req.from_json_string(json.dumps(params))
        return json.loads(getattr(self.client, action)(req).to_json_string())

    def error(self, action: str, **params: Any) -> str:
        """Run an action that must fail; return its error code (the SDK exception carries a RequestId)."""
        with pytest.raises(TencentCloudSDKException) as info:
            self(action, **params)
        assert info.value.requestId
        return str(info.value.code)


def zip_b64(files: dict[str, str]) -> str:
    """A base64 zip holding ``files``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return base64.b64encode(buffer.getvalue()).decode()


CODE = zip_b64({"index.py": "def main_handler(event, context):\n    return {'got': event}\n"})


def create(scf: Scf, name: str = "fn", **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "FunctionName": name,
        "Code": {"ZipFile": CODE},
        "Handler": "index.main_handler",
        "Runtime": "Python3.10",
        "MemorySize": 256,
        "Timeout": 60,
        "InitTimeout": 10,
        "Description": "test",
        "Role": "cbsnap-scf-exec",
        "Environment": {"Variables": [{"Key": "A", "Value": "1"}]},
        **extra,
    }
    return scf("CreateFunction", **params)


@pytest.fixture
def emu() -> Any:
    with Emulator(rng_seed=3, scf_transition_seconds=5) as emulator:
        yield emulator


@pytest.fixture
def scf(emu: Emulator) -> Scf:
    return Scf(emu)


@pytest.fixture
def active(emu: Emulator, scf: Scf) -> Scf:
    """A function `fn`, Active."""
    create(scf)
    emu.advance(5)
    return scf


def test_create_then_active_after_the_transition(emu: Emulator, scf: Scf) -> None:
    assert set(create(scf)) == {"RequestId"}
    got = scf("GetFunction", FunctionName="fn")
    assert got["Status"] == "Creating"
    assert (got["Runtime"], got["Handler"], got["MemorySize"], got["Timeout"], got["InitTimeout"]) == (
        "Python3.10",
        "index.main_handler",
        256,
        60,
        10,
    )
    assert got["Environment"]["Variables"] == [{"Key": "A", "Value": "1"}]
    assert (got["Role"], got["Description"], got["Namespace"]) == ("cbsnap-scf-exec", "test", "default")
    assert got["FunctionId"].startswith("lam-") and got["CodeSize"] > 0
    # The state clock is wall time plus the advances: leave real time (a loaded machine's) room.
    emu.advance(3.0)
    assert scf("GetFunction", FunctionName="fn")["Status"] == "Creating"
    emu.advance(2.1)
    assert scf("GetFunction", FunctionName="fn")["Status"] == "Active"


@pytest.mark.parametrize(
    ("action", "params", "code"),
    [
        ("UpdateFunctionCode", {"ZipFile": CODE}, "FailedOperation.UpdateFunctionCode"),
        ("UpdateFunctionConfiguration", {"Timeout": 9}, "FailedOperation.UpdateFunctionConfiguration"),
        ("CreateTrigger", {"TriggerName": "t", "Type": "timer", "TriggerDesc": "0 0 2 * * * *"},
         "FailedOperation.CreateTrigger"),
        ("UpdateFunctionEventInvokeConfig", {"AsyncTriggerConfig": {"RetryConfig": [{"RetryNum": 1}]}},
         "FailedOperation.FunctionVersionStatusNotActive"),
        ("Invoke", {"InvocationType": "Event", "ClientContext": "{}"}, "FailedOperation.FunctionStatusError"),
    ],
)  # fmt: skip
def test_mutating_a_function_that_is_not_active_is_refused(
    scf: Scf, action: str, params: dict[str, Any], code: str
) -> None:
    create(scf)
    assert scf.error(action, FunctionName="fn", **params) == code


def test_updates_make_the_function_updating_then_active(emu: Emulator, active: Scf) -> None:
    new_code = zip_b64({"index.py": "def main_handler(e, c):\n    return 2\n"})
    before = active("GetFunctionAddress", FunctionName="fn")["CodeSha256"]
    active("UpdateFunctionCode", FunctionName="fn", ZipFile=new_code, Handler="index.main_handler")
    assert active("GetFunction", FunctionName="fn")["Status"] == "Updating"
    assert active.error("UpdateFunctionConfiguration", FunctionName="fn", Timeout=9) == (
        "FailedOperation.UpdateFunctionConfiguration"
    )
    emu.advance(5)
    after = active("GetFunctionAddress", FunctionName="fn")["CodeSha256"]
    assert after != before and after == __import__("hashlib").sha256(base64.b64decode(new_code)).hexdigest()
    active(
        "UpdateFunctionConfiguration",
        FunctionName="fn",
        Timeout=9,
        Environment={"Variables": [{"Key": "B", "Value": "2"}]},
    )
    got = active("GetFunction", FunctionName="fn")
    assert (got["Status"], got["Timeout"], got["MemorySize"]) == ("Updating", 9, 256)
    assert got["Environment"]["Variables"] == [{"Key": "B", "Value": "2"}]  # replaced, not merged


def test_unknown_function_and_duplicate(active: Scf) -> None:
    for action in ("GetFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration", "Invoke",
                   "GetFunctionEventInvokeConfig", "DeleteFunction"):  # fmt: skip
        assert active.error(action, FunctionName="nope") == "ResourceNotFound.Function"
    assert (
        active.error("CreateFunction", FunctionName="fn", Code={"ZipFile": CODE}) == "ResourceInUse.Function"
    )


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"Runtime": "Python3.11"}, "InvalidParameterValue.Runtime"),
        ({"Runtime": "python3.10"}, "InvalidParameterValue.Runtime"),
        ({"Handler": "index"}, "InvalidParameterValue.Handler"),
        ({"MemorySize": 100}, "InvalidParameterValue.MemorySize"),
        ({"Timeout": 901}, "LimitExceeded.Timeout"),
        ({"Environment": {"Variables": [{"Key": "A", "Value": ""}]}}, "InvalidParameterValue.Environment"),
        ({"Environment": {"Variables": [{"Key": "SCF_X", "Value": "1"}]}},
         "InvalidParameterValue.EnvironmentSystemProtect"),
        ({"Environment": {"Variables": [{"Key": "TENCENTCLOUD_X", "Value": "1"}]}},
         "InvalidParameterValue.EnvironmentSystemProtect"),
        ({"Environment": {"Variables": [{"Key": f"K{i}", "Value": "v" * 100} for i in range(41)]}},
         "InvalidParameterValue.EnvironmentExceededLimit"),
        ({"Code": {"ZipFile": "not base64!"}}, "InvalidParameterValue.ZipFileBase64BinasciiError"),
        ({"Code": {"ZipFile": base64.b64encode(b"not a zip").decode()}}, "InvalidParameterValue.ZipFile"),
        ({"Code": {}}, "MissingParameter.Code"),
        ({"FunctionName": "9starts-with-digit"}, "InvalidParameterValue.FunctionName"),
    ],
)  # fmt: skip
def test_create_function_validation(scf: Scf, extra: dict[str, Any], code: str) -> None:
    assert scf.error("CreateFunction", **{**_base(), **extra}) == code


def _base() -> dict[str, Any]:
    return {
        "FunctionName": "fn",
        "Code": {"ZipFile": CODE},
        "Handler": "index.main_handler",
        "Runtime": "Python3.10",
    }


def test_every_listed_python_runtime_is_accepted(scf: Scf) -> None:
    for i, runtime in enumerate(("Python2.7", "Python3.6", "Python3.7", "Python3.9", "Python3.10")):
        create(scf, f"fn{i}", Runtime=runtime)
    assert scf("GetFunction", FunctionName="fn0")["Runtime"] == "Python2.7"


def test_a_body_over_the_10_mb_request_limit_is_refused(scf: Scf) -> None:
    big = base64.b64encode(b"\0" * (8 * 1024 * 1024)).decode()  # 10.7 MB once base64-encoded
    assert scf.error("CreateFunction", **{**_base(), "Code": {"ZipFile": big}}) == "RequestSizeLimitExceeded"


def test_state_is_per_region_and_namespace(emu: Emulator, scf: Scf) -> None:
    create(scf)
    create(scf, Namespace="other")
    assert scf("GetFunction", FunctionName="fn", Namespace="other")["Namespace"] == "other"
    assert Scf(emu, "ap-shanghai").error("GetFunction", FunctionName="fn") == "ResourceNotFound.Function"


def test_timer_trigger_lifecycle(active: Scf) -> None:
    info = active(
        "CreateTrigger",
        FunctionName="fn",
        TriggerName="nightly",
        Type="timer",
        TriggerDesc="0 0 2 * * * *",
        CustomArgument='{"disks": []}',
        Qualifier="$DEFAULT",
        Enable="OPEN",
    )["TriggerInfo"]
    assert json.loads(info["TriggerDesc"]) == {"cron": "0 0 2 * * * *"}
    assert (info["TriggerName"], info["Enable"], info["CustomArgument"]) == ("nightly", 1, '{"disks": []}')
    listed = active("ListTriggers", FunctionName="fn")
    assert listed["TotalCount"] == 1 and listed["Triggers"][0]["Qualifier"] == "$DEFAULT"
    assert active("GetFunction", FunctionName="fn")["Triggers"][0]["TriggerName"] == "nightly"
    assert (
        active.error(
            "CreateTrigger",
            FunctionName="fn",
            TriggerName="nightly",
            Type="timer",
            TriggerDesc="0 0 3 * * * *",
        )
        == "ResourceInUse.Trigger"
    )
    # The qualifier is part of the trigger's identity for DeleteTrigger (default $LATEST).
    assert active.error("DeleteTrigger", FunctionName="fn", TriggerName="nightly", Type="timer") == (
        "ResourceNotFound.Trigger"
    )
    active("DeleteTrigger", FunctionName="fn", TriggerName="nightly", Type="timer", Qualifier="$DEFAULT")
    after = active("ListTriggers", FunctionName="fn")
    assert (after["TotalCount"], after["Triggers"]) == (0, [])


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Type": "timer", "TriggerDesc": "0 0 2 * * *"}, "InvalidParameterValue.TriggerDesc"),
        ({"Type": "timer", "TriggerDesc": "0 0 2 * * * *", "TriggerName": "bad name"},
         "InvalidParameterValue.TriggerName"),
        ({"Type": "cmq", "TriggerDesc": "{}"}, "InvalidParameterValue.Type"),
        ({"Type": "apigw", "TriggerDesc": "{}"}, "InvalidParameterValue.Type"),
        ({"Type": "ckafka", "TriggerDesc": '{"maxMsgNum": "10"}'}, "InvalidParameterValue.TriggerDesc"),
        ({"Type": "http", "TriggerDesc": '{"AuthType": "KEY"}'}, "InvalidParameterValue.TriggerDesc"),
        ({"Type": "timer", "TriggerDesc": "0 0 2 * * * *", "Enable": "ON"}, "InvalidParameterValue.Enable"),
        ({"Type": "timer", "TriggerDesc": "0 0 2 * * * *", "Qualifier": "7"}, "ResourceNotFound.Qualifier"),
        ({"Type": "timer", "TriggerDesc": "0 0 2 * * * *", "CustomArgument": "x" * 4097},
         "InvalidParameterValue.CustomArgument"),
    ],
)  # fmt: skip
def test_create_trigger_validation(active: Scf, params: dict[str, Any], code: str) -> None:
    assert active.error("CreateTrigger", **{"FunctionName": "fn", "TriggerName": "t", **params}) == code


def test_at_most_ten_timers(active: Scf) -> None:
    for i in range(10):
        active(
            "CreateTrigger", FunctionName="fn", TriggerName=f"t{i}", Type="timer", TriggerDesc="0 0 2 * * * *"
        )
    assert (
        active.error(
            "CreateTrigger", FunctionName="fn", TriggerName="t10", Type="timer", TriggerDesc="0 0 2 * * * *"
        )
        == "LimitExceeded.Trigger"
    )


def test_function_url_is_named_by_scf_and_unique(active: Scf) -> None:
    desc = {"AuthType": "NONE", "NetConfig": {"EnableIntranet": False, "EnableExtranet": True}}
    info = active(
        "CreateTrigger", FunctionName="fn", TriggerName="web", Type="http", TriggerDesc=json.dumps(desc)
    )
    stored = json.loads(info["TriggerInfo"]["TriggerDesc"])
    assert info["TriggerInfo"]["TriggerName"] != "web"
    assert stored["AuthType"] == "NONE" and stored["NetConfig"]["ExtranetUrl"].startswith("https://")
    assert (
        active.error(
            "CreateTrigger", FunctionName="fn", TriggerName="web2", Type="http", TriggerDesc=json.dumps(desc)
        )
        == "ResourceInUse.Trigger"
    )


def test_ckafka_trigger_and_list_filters(active: Scf) -> None:
    desc = {"maxMsgNum": "10", "offset": "latest", "retry": "3", "timeOut": "60"}
    active("CreateTrigger", FunctionName="fn", TriggerName="ckafka-abc-topic", Type="ckafka",
           TriggerDesc=json.dumps(desc))  # fmt: skip
    active("CreateTrigger", FunctionName="fn", TriggerName="t1", Type="timer", TriggerDesc="0 0 2 * * * *")
    only = active("ListTriggers", FunctionName="fn", Filters=[{"Name": "TriggerName", "Values": ["t1"]}])
    assert [t["Type"] for t in only["Triggers"]] == ["timer"]
    page = active("ListTriggers", FunctionName="fn", Limit=1, OrderBy="add_time", Order="ASC")
    assert page["TotalCount"] == 2 and [t["Type"] for t in page["Triggers"]] == ["ckafka"]
    assert active.error("ListTriggers", FunctionName="fn", Filters=[{"Name": "Nope", "Values": ["x"]}]) == (
        "InvalidParameterValue.Filters"
    )


def test_async_retry_config(active: Scf) -> None:
    got = active("GetFunctionEventInvokeConfig", FunctionName="fn")["AsyncTriggerConfig"]
    assert got == {"RetryConfig": [{"RetryNum": 2}], "MsgTTL": 21600}
    active("UpdateFunctionEventInvokeConfig", FunctionName="fn",
           AsyncTriggerConfig={"RetryConfig": [{"RetryNum": 0}], "MsgTTL": 3600})  # fmt: skip
    got = active("GetFunctionEventInvokeConfig", FunctionName="fn")["AsyncTriggerConfig"]
    assert got == {"RetryConfig": [{"RetryNum": 0}], "MsgTTL": 3600}
    too_many = {"RetryConfig": [{"RetryNum": 3}]}
    assert active.error(
        "UpdateFunctionEventInvokeConfig", FunctionName="fn", AsyncTriggerConfig=too_many
    ) == ("LimitExceeded.RetryNum")
    assert active.error("UpdateFunctionEventInvokeConfig", FunctionName="fn",
                        AsyncTriggerConfig={"MsgTTL": 10}) == "LimitExceeded.MsgTTL"  # fmt: skip


def test_delete_function(active: Scf) -> None:
    active("DeleteFunction", FunctionName="fn")
    assert active.error("GetFunction", FunctionName="fn") == "ResourceNotFound.Function"
    assert active("ListTriggers", FunctionName="fn")["TotalCount"] == 0


def test_invoke_has_its_documented_100_per_second_limit(active: Scf) -> None:
    # A burst of 30 passes: the bucket holds 100 for Invoke where the general limit (20/s) holds 20.
    for _ in range(30):
        active("Invoke", FunctionName="fn", InvocationType="Event", ClientContext="{}")
