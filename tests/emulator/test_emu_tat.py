"""TAT (2020-10-28): agents, RunCommand, DescribeInvocationTasks and DescribeInvocations through the
real SDK, with scripted outcomes set through the Python facade and the admin API."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.tat.v20201028 import models as tat_models
from tencentcloud.tat.v20201028 import tat_client

from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator, Fault

WEB, DB = "ins-tatweb01", "ins-tatdb001"
FREEZE, THAW = "fsfreeze -f /data", "fsfreeze -u /data"


class Tat:
    """The TAT API through the SDK's typed models."""

    def __init__(self, emu: Emulator, region: str = "ap-guangzhou") -> None:
        profile = ClientProfile(
            httpProfile=HttpProfile(protocol="http", endpoint=emu.endpoint, reqTimeout=10)
        )
        self.client = tat_client.TatClient(Credential(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY), region, profile)

    def __call__(self, action: str, **params: Any) -> dict[str, Any]:
        req = getattr(tat_models, action + "Request")()
        req.from_json_string(json.dumps(params))
        return json.loads(getattr(self.client, action)(req).to_json_string())

    def error(self, action: str, **params: Any) -> str:
        with pytest.raises(TencentCloudSDKException) as info:
            self(action, **params)
        assert info.value.requestId
        return str(info.value.code)

    def run(self, script: str, *instances: str, **params: Any) -> str:
        """RunCommand; returns the InvocationId."""
        content = base64.b64encode(script.encode()).decode()
        reply = self("RunCommand", Content=content, InstanceIds=list(instances), **params)
        assert reply["CommandId"].startswith("cmd-")
        return str(reply["InvocationId"])

    def tasks(self, invocation_id: str, **params: Any) -> list[dict[str, Any]]:
        reply = self(
            "DescribeInvocationTasks",
            Filters=[{"Name": "invocation-id", "Values": [invocation_id]}],
            **params,
        )
        return list(reply["InvocationTaskSet"])


@pytest.fixture
def tat(emulator: Emulator) -> Tat:
    emulator.add_disk("disk-tatweb01", instance_id=WEB)
    emulator.add_disk("disk-tatweb02", instance_id=WEB)
    emulator.add_disk("disk-tatdb001", instance_id=DB)
    return Tat(emulator)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- agents ----------------------------------------------------------------------------------------
def test_agents_default_online_and_can_go_offline(emulator: Emulator, tat: Tat) -> None:
    reply = tat("DescribeAutomationAgentStatus", InstanceIds=[WEB, DB, "ins-unknown1"])
    assert reply["TotalCount"] == 2
    web = reply["AutomationAgentSet"][0]
    assert (web["InstanceId"], web["AgentStatus"], web["Environment"]) == (WEB, "Online", "Linux")
    assert web["LastHeartbeatTime"].endswith("+00:00") and web["Version"]
    emulator.set_agent(DB, online=False)
    offline = tat("DescribeAutomationAgentStatus", Filters=[{"Name": "agent-status", "Values": ["Offline"]}])
    assert [a["InstanceId"] for a in offline["AutomationAgentSet"]] == [DB]
    assert tat("DescribeAutomationAgentStatus")["TotalCount"] == 2  # all the region knows
    assert Tat(emulator, "ap-shanghai")("DescribeAutomationAgentStatus")["TotalCount"] == 0


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"InstanceIds": ["i-123"]}, "InvalidParameterValue.InvalidInstanceId"),
        (
            {"InstanceIds": [WEB], "Filters": [{"Name": "instance-id", "Values": [WEB]}]},
            "InvalidParameter.ConflictParameter",
        ),
        ({"Filters": [{"Name": "zone", "Values": ["x"]}]}, "InvalidParameterValue.InvalidFilter"),
        ({"Filters": [{"Name": "instance-id", "Values": [WEB] * 6}]}, "LimitExceeded.FilterValueExceeded"),
        ({"Limit": 101}, "InvalidParameterValue"),
    ],
)
def test_agent_query_refusals(tat: Tat, params: dict[str, Any], code: str) -> None:
    assert tat.error("DescribeAutomationAgentStatus", **params) == code


# -- RunCommand and its tasks ----------------------------------------------------------------------
def test_command_runs_on_the_state_clock_and_reports_its_output(emulator: Emulator, tat: Tat) -> None:
    emulator.set_command_outcome(WEB, "success", output="frozen\n", duration=2)
    inv = tat.run(FREEZE, WEB, Timeout=30)
    assert inv.startswith("inv-")
    [running] = tat.tasks(inv, HideOutput=False)
    assert running["TaskStatus"] == "RUNNING" and running["EndTime"] is None
    assert running["TaskResult"]["ExecEndTime"] is None
    assert (
        running["CommandDocument"]["Content"] == b64(FREEZE) and running["CommandDocument"]["Timeout"] == 30
    )
    emulator.advance(2)
    [done] = tat.tasks(inv, HideOutput=False)
    assert (done["TaskStatus"], done["TaskResult"]["ExitCode"]) == ("SUCCESS", 0)
    assert base64.b64decode(done["TaskResult"]["Output"]) == b"frozen\n"
    assert done["InvocationTaskId"].startswith("invt-") and done["InstanceId"] == WEB
    assert done["TaskResult"]["ExecStartTime"].endswith("+00:00") and done["EndTime"].endswith("+00:00")
    # HideOutput defaults to true
    assert tat.tasks(inv)[0]["TaskResult"]["Output"] == ""


def test_default_run_takes_command_seconds(make_sdk: Any) -> None:
    with Emulator(command_seconds=5) as emu:
        emu.add_disk("disk-tatweb01", instance_id=WEB)
        tat = Tat(emu)
        inv = tat.run("true", WEB)
        emu.advance(4.9)
        assert tat.tasks(inv)[0]["TaskStatus"] == "RUNNING"
        emu.advance(0.2)
        assert tat.tasks(inv)[0]["TaskStatus"] == "SUCCESS"


def test_failure_exits_with_the_scripted_code(emulator: Emulator, tat: Tat) -> None:
    emulator.set_command_outcome(DB, "failure", exit_code=3, output="fsfreeze: busy")
    inv = tat.run(FREEZE, DB)
    emulator.advance(1)
    [task] = tat.tasks(inv, HideOutput=False)
    assert (task["TaskStatus"], task["TaskResult"]["ExitCode"]) == ("FAILED", 3)
    assert base64.b64decode(task["TaskResult"]["Output"]) == b"fsfreeze: busy"


def test_timeout_after_the_commands_timeout(emulator: Emulator, tat: Tat) -> None:
    emulator.set_command_outcome(WEB, "timeout")
    emulator.set_command_outcome(DB, "success", duration=100)  # longer than its Timeout: also TIMEOUT
    inv = tat.run(FREEZE, WEB, DB, Timeout=10)
    emulator.advance(9.5)
    assert [t["TaskStatus"] for t in tat.tasks(inv)] == ["RUNNING", "RUNNING"]
    emulator.advance(1)
    tasks = tat.tasks(inv)
    assert [t["TaskStatus"] for t in tasks] == ["TIMEOUT", "TIMEOUT"]
    assert tasks[0]["ErrorInfo"] and tasks[0]["TaskResult"]["ExitCode"] == -1


def test_rules_match_on_content_newest_first(emulator: Emulator, tat: Tat) -> None:
    emulator.set_command_outcome(WEB, "success")
    emulator.set_command_outcome(WEB, "failure", exit_code=2, match="fsfreeze -u")
    freeze, thaw = tat.run(FREEZE, WEB), tat.run(THAW, WEB)
    emulator.advance(1)
    assert tat.tasks(freeze)[0]["TaskStatus"] == "SUCCESS"
    assert tat.tasks(thaw)[0]["TaskResult"]["ExitCode"] == 2
    emulator.clear_command_outcomes(WEB)
    again = tat.run(THAW, WEB)
    emulator.advance(1)
    assert tat.tasks(again)[0]["TaskStatus"] == "SUCCESS"


def test_offline_agent_fails_the_whole_call(emulator: Emulator, tat: Tat) -> None:
    emulator.set_agent(DB, online=False)
    assert tat.error("RunCommand", Content=b64(FREEZE), InstanceIds=[WEB, DB]) == (
        "ResourceUnavailable.AgentStatusNotOnline"
    )
    assert emulator.commands() == []
    emulator.set_agent(DB, online=True)
    tat.run(FREEZE, WEB, DB)
    assert [c["InstanceId"] for c in emulator.commands()] == [WEB, DB]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"InstanceIds": [WEB]}, "MissingParameter"),
        ({"Content": b64("x")}, "MissingParameter"),
        ({"Content": "not base64!", "InstanceIds": [WEB]}, "InvalidParameterValue.InvalidContent"),
        ({"Content": "A" * (64 * 1024 + 4), "InstanceIds": [WEB]}, "InvalidParameterValue.TooLong"),
        ({"Content": b64("x"), "InstanceIds": ["i-1"]}, "InvalidParameterValue.InvalidInstanceId"),
        ({"Content": b64("x"), "InstanceIds": ["ins-nothere1"]}, "ResourceNotFound.InstanceNotFound"),
        ({"Content": b64("x"), "InstanceIds": [WEB] * 201}, "InvalidParameterValue.LimitExceeded"),
        ({"Content": b64("x"), "InstanceIds": [WEB], "Timeout": 0}, "InvalidParameterValue.Range"),
        ({"Content": b64("x"), "InstanceIds": [WEB], "Timeout": 86_401}, "InvalidParameterValue.Range"),
        ({"Content": b64("x"), "InstanceIds": [WEB], "CommandType": "PYTHON"}, "InvalidParameterValue"),
        (
            {"Content": b64("x"), "InstanceIds": [WEB], "CommandType": "POWERSHELL"},
            "InvalidParameterValue.AgentUnsupportedCommandType",
        ),
        (
            {"Content": b64("x"), "InstanceIds": [WEB], "Parameters": '{"a": "b"}'},
            "InvalidParameterValue.ParameterDisabled",
        ),
        (
            {"Content": b64("echo {{who}}"), "InstanceIds": [WEB], "EnableParameter": True},
            "InvalidParameterValue.LackOfParameterInfo",
        ),
    ],
)
def test_run_command_refusals_record_nothing(
    emulator: Emulator, tat: Tat, params: dict[str, Any], code: str
) -> None:
    assert tat.error("RunCommand", **params) == code
    assert emulator.commands() == []


def test_a_command_in_another_region_is_not_found(emulator: Emulator, tat: Tat) -> None:
    assert Tat(emulator, "ap-shanghai").error("RunCommand", Content=b64("x"), InstanceIds=[WEB]) == (
        "ResourceNotFound.InstanceNotFound"
    )


def test_parameters_are_substituted(emulator: Emulator, tat: Tat) -> None:
    tat.run(
        "fsfreeze {{mode}} {{path}}",
        WEB,
        EnableParameter=True,
        DefaultParameters='{"mode": "-f", "path": "/var"}',
        Parameters='{"path": "/data"}',
    )
    assert emulator.commands()[0]["Content"] == FREEZE


def test_the_record_orders_commands_against_other_calls(emulator: Emulator, sdk: Any, tat: Tat) -> None:
    # pre-freeze, the snapshot, post-thaw: the record proves the order on the state clock
    emulator.set_command_outcome(WEB, "success", duration=1)
    tat.run(FREEZE, WEB)
    emulator.advance(1)
    sdk.cbs("CreateSnapshot", DiskId="disk-tatweb01")
    emulator.advance(0.5)
    tat.run(THAW, WEB)
    emulator.advance(1)
    pre, post = emulator.commands(WEB)
    created = emulator.calls(action="CreateSnapshot")[0]["time"]
    assert (pre["Content"], post["Content"]) == (FREEZE, THAW)
    assert pre["end"] <= created < post["start"] < post["end"]
    assert (pre["TaskStatus"], post["TaskStatus"], post["ExitCode"]) == ("SUCCESS", "SUCCESS", 0)


def test_invocations_summarise_their_tasks(emulator: Emulator, tat: Tat) -> None:
    emulator.set_command_outcome(DB, "failure", exit_code=1)
    mixed = tat.run(FREEZE, WEB, DB, CommandName="pre-freeze", Description="freeze before the snapshot")
    ok = tat.run(FREEZE, WEB)
    reply = tat("DescribeInvocations", InvocationIds=[mixed, ok])
    assert [i["InvocationStatus"] for i in reply["InvocationSet"]] == ["RUNNING", "RUNNING"]
    emulator.advance(1)
    by_id = {i["InvocationId"]: i for i in tat("DescribeInvocations")["InvocationSet"]}
    assert by_id[mixed]["InvocationStatus"] == "PARTIAL_FAILED" and by_id[ok]["InvocationStatus"] == "SUCCESS"
    assert [t["InstanceId"] for t in by_id[mixed]["InvocationTaskBasicInfoSet"]] == [WEB, DB]
    assert (by_id[mixed]["CommandName"], by_id[mixed]["CommandContent"]) == ("pre-freeze", b64(FREEZE))
    # tasks can be found by instance as well, newest first
    found = tat("DescribeInvocationTasks", Filters=[{"Name": "instance-id", "Values": [WEB]}])
    assert [t["InvocationId"] for t in found["InvocationTaskSet"]] == [ok, mixed]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (
            {"Filters": [{"Name": "invocation-id", "Values": ["inv-1"]}]},
            "InvalidParameterValue.InvalidInvocationId",
        ),
        ({"Filters": [{"Name": "status", "Values": ["x"]}]}, "InvalidParameterValue.InvalidFilter"),
        (
            {"InvocationTaskIds": ["invt-00000001"], "Filters": [{"Name": "instance-id", "Values": [WEB]}]},
            "InvalidParameter.ConflictParameter",
        ),
        ({"InvocationTaskIds": ["task-1"]}, "InvalidParameterValue.InvalidInvocationTaskId"),
    ],
)
def test_task_query_refusals(tat: Tat, params: dict[str, Any], code: str) -> None:
    assert tat.error("DescribeInvocationTasks", **params) == code


def test_faults_apply_to_tat_actions(emulator: Emulator, tat: Tat) -> None:
    emulator.add_fault(Fault("RunCommand", kind="lost_reply", times=1))
    with pytest.raises(TencentCloudSDKException) as info:
        tat.run(FREEZE, WEB)
    assert info.value.code == "ClientNetworkError"
    assert [c["Content"] for c in emulator.commands()] == [FREEZE]  # it ran though the reply was lost
    emulator.add_fault(Fault("DescribeInvocationTasks", code="InternalError", times=1))
    assert tat.error("DescribeInvocationTasks") == "InternalError"


# -- admin API -------------------------------------------------------------------------------------
def test_admin_api_scripts_outcomes_and_reads_the_record(emulator: Emulator, tat: Tat, admin: Any) -> None:
    assert admin("POST", "tat/agents", {"instance_id": DB, "online": False}) == (200, {"ok": True})
    assert (
        tat("DescribeAutomationAgentStatus", InstanceIds=[DB])["AutomationAgentSet"][0]["AgentStatus"]
        == "Offline"
    )
    outcome = {
        "instance_id": WEB,
        "outcome": "failure",
        "exit_code": 7,
        "output": "no",
        "duration": 3,
        "match": "-u",
    }
    assert admin("POST", "tat/outcomes", outcome) == (200, {"ok": True})
    tat.run(THAW, WEB)
    emulator.advance(3)
    status, body = admin("GET", "tat/commands?instance_id=" + WEB)
    assert status == 200
    [record] = body["commands"]
    assert (record["Content"], record["TaskStatus"], record["ExitCode"], record["Output"]) == (
        THAW,
        "FAILED",
        7,
        "no",
    )
    assert record["end"] - record["start"] == pytest.approx(3)
    assert admin("DELETE", "tat/outcomes") == (200, {"ok": True})
    assert admin("POST", "tat/outcomes", {"instance_id": "ins-nothere1"})[0] == 400
    assert admin("POST", "tat/outcomes", {"instance_id": WEB, "outcome": "explode"})[0] == 400
    assert admin("POST", "tat/outcomes", {"instance_id": WEB, "outcome": "failure", "exit_code": 0})[0] == 400
    assert admin("POST", "tat/outcomes", {"instance_id": WEB, "when": "x"})[0] == 400
    assert admin("POST", "tat/agents", {"instance_id": WEB, "online": "no"})[0] == 400
    assert admin("POST", "tat/agents", {})[0] == 400


def test_facade_validates_instances_and_outcomes(emulator: Emulator, tat: Tat) -> None:
    with pytest.raises(ValueError, match="no disk"):
        emulator.set_agent("ins-nothere1", online=False)
    with pytest.raises(ValueError, match="ins-"):
        emulator.set_command_outcome("web-1")
    with pytest.raises(ValueError, match="exits with code 0"):
        emulator.set_command_outcome(WEB, "success", exit_code=1)
    with pytest.raises(ValueError, match="duration"):
        emulator.set_command_outcome(WEB, duration=-1)
    emulator.reset()  # scripted state goes with the rest of the runtime
    assert emulator.commands() == []
