"""SCF Invoke and the function runner: handlers run in fresh Python processes that call back into the
emulator through the real SDK; async runs are recorded, run on demand and retried as SCF does."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests

from cbsnap_emulator import Emulator
from tests.emulator.test_emu_scf import Scf, zip_b64

ROOT = Path(__file__).resolve().parents[2]

# A function that reports what it saw, fails on request, calls CBS and can invoke itself asynchronously.
HANDLER = textwrap.dedent(
    """
    import json, os, sys

    def main_handler(event, context):
        print("handling", json.dumps(event, sort_keys=True))
        print("to stderr", file=sys.stderr)
        if event.get("fail"):
            raise ValueError("asked to fail")
        if event.get("sleep"):
            import time
            time.sleep(event["sleep"])
        ours = sorted(m for m in sys.modules if m.startswith("cbsnap"))
        answer = {"event": event, "context": context, "modules": ours}
        names = ("A", "CBSNAP_ENDPOINT", "TENCENTCLOUD_SECRETID", "TENCENTCLOUD_REGION",
                 "SCF_FUNCTIONNAME", "PYTHONPATH")
        answer["env"] = {k: os.environ.get(k) for k in names}
        if event.get("cloud") or event.get("again"):
            from tencentcloud.common.credential import Credential
            from tencentcloud.common.profile.client_profile import ClientProfile
            from tencentcloud.common.profile.http_profile import HttpProfile
            endpoint = os.environ["CBSNAP_ENDPOINT"].split("://", 1)[1]
            profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint))
            cred = Credential(os.environ["TENCENTCLOUD_SECRETID"], os.environ["TENCENTCLOUD_SECRETKEY"])
            region = os.environ["TENCENTCLOUD_REGION"]
        if event.get("cloud"):
            from tencentcloud.cbs.v20170312 import cbs_client, models
            disks = cbs_client.CbsClient(cred, region, profile).DescribeDisks(models.DescribeDisksRequest())
            answer["disks"] = disks.TotalCount
        if event.get("again"):
            from tencentcloud.scf.v20180416 import scf_client, models as scf_models
            req = scf_models.InvokeRequest()
            again = json.dumps({"again": event["again"] - 1})
            req.from_json_string(json.dumps({"FunctionName": context["function_name"],
                                             "InvocationType": "Event", "ClientContext": again}))
            scf_client.ScfClient(cred, region, profile).Invoke(req)
        return answer
    """
)


@pytest.fixture
def emu() -> Any:
    with Emulator(rng_seed=5, scf_transition_seconds=1) as emulator:
        yield emulator


@pytest.fixture
def scf(emu: Emulator) -> Scf:
    return Scf(emu)


@pytest.fixture
def fn(emu: Emulator, tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "index.py").write_text(HANDLER, encoding="utf-8")
    return emu.add_function("worker", code_dir=tmp_path, environment={"A": "1"}, timeout=30, memory_size=256)


def test_add_function_is_active_and_visible_to_the_api(fn: dict[str, Any], scf: Scf) -> None:
    got = scf("GetFunction", FunctionName="worker")
    assert (got["Status"], got["Runtime"], got["Timeout"], got["MemorySize"]) == (
        "Active",
        "Python3.10",
        30,
        256,
    )


def test_async_invoke_records_and_runs_in_a_fresh_process(
    emu: Emulator, scf: Scf, fn: dict[str, Any]
) -> None:
    emu.add_disk()
    resp = scf("Invoke", FunctionName="worker", InvocationType="Event", ClientContext='{"cloud": true}')
    request_id = resp["Result"]["FunctionRequestId"]
    assert resp["Result"]["RetMsg"] is None or resp["Result"]["RetMsg"] == ""  # async: only the request id
    [pending] = emu.invocations("pending")
    assert (pending["id"], pending["functionName"], pending["qualifier"], pending["event"]) == (
        request_id,
        "worker",
        "$LATEST",
        '{"cloud": true}',
    )
    record = emu.run_invocation(request_id)
    assert record["state"] == "done"
    [attempt] = record["attempts"]
    result = attempt["result"]
    assert result["event"] == {"cloud": True}
    assert result["disks"] == 1  # the function called CBS through the SDK, signed with SCF's credentials
    assert result["modules"] == []  # nothing of cbsnap is imported into a generic function
    assert result["env"] == {
        "A": "1",
        "CBSNAP_ENDPOINT": emu.url,
        "TENCENTCLOUD_SECRETID": result["env"]["TENCENTCLOUD_SECRETID"],
        "TENCENTCLOUD_REGION": "ap-guangzhou",
        "SCF_FUNCTIONNAME": "worker",
        "PYTHONPATH": None,
    }
    context = result["context"]
    assert (context["function_name"], context["namespace"], context["function_version"]) == (
        "worker",
        "default",
        "$LATEST",
    )
    assert (context["request_id"], context["time_limit_in_ms"], context["memory_limit_in_mb"]) == (
        request_id,
        30_000,
        256,
    )
    assert "handling" in attempt["stdout"] and "to stderr" in attempt["stderr"]
    assert attempt["durationMs"] > 0
    assert emu.invocations("pending") == [] and [i["id"] for i in emu.invocations("done")] == [request_id]


def test_sync_invoke_returns_the_result_model(scf: Scf, fn: dict[str, Any]) -> None:
    result = scf("Invoke", FunctionName="worker", ClientContext='{"x": 1}', LogType="Tail")["Result"]
    assert json.loads(result["RetMsg"])["event"] == {"x": 1}
    assert result["ErrMsg"] == "" and result["InvokeResult"] == 0 and "handling" in result["Log"]
    failed = scf("InvokeFunction", FunctionName="worker", Event='{"fail": true}')["Result"]
    assert json.loads(failed["ErrMsg"])["errorMessage"] == "asked to fail" and failed["RetMsg"] == ""


def test_a_failed_async_run_is_retried_as_configured(emu: Emulator, scf: Scf, fn: dict[str, Any]) -> None:
    scf("Invoke", FunctionName="worker", InvocationType="Event", ClientContext='{"fail": true}')
    [record] = emu.run_pending()[-1:]
    assert record["state"] == "failed" and len(record["attempts"]) == 3  # the first run and 2 retries
    assert {a["errorType"] for a in record["attempts"]} == {"ValueError"}
    assert record["attempts"][0]["errorMessage"] == "asked to fail"
    scf("UpdateFunctionEventInvokeConfig", FunctionName="worker",
        AsyncTriggerConfig={"RetryConfig": [{"RetryNum": 0}]})  # fmt: skip
    scf("Invoke", FunctionName="worker", InvocationType="Event", ClientContext='{"fail": true}')
    [record] = emu.run_pending()
    assert record["state"] == "failed" and len(record["attempts"]) == 1


def test_run_pending_follows_invocations_made_by_runs(emu: Emulator, scf: Scf, fn: dict[str, Any]) -> None:
    scf("Invoke", FunctionName="worker", InvocationType="Event", ClientContext='{"again": 2}')
    ran = emu.run_pending()
    assert [json.loads(r["event"]) for r in ran] == [{"again": 2}, {"again": 1}, {"again": 0}]
    assert emu.invocations("pending") == [] and len(emu.invocations("done")) == 3


def test_run_pending_stops_after_max_rounds(emu: Emulator, scf: Scf, fn: dict[str, Any]) -> None:
    scf("Invoke", FunctionName="worker", InvocationType="Event", ClientContext='{"again": 5}')
    assert len(emu.run_pending(max_rounds=2)) == 2
    assert len(emu.invocations("pending")) == 1


def test_a_function_over_its_timeout_is_stopped(emu: Emulator, tmp_path: Path, scf: Scf) -> None:
    (tmp_path / "index.py").write_text(HANDLER, encoding="utf-8")
    emu.add_function("slow", code_dir=tmp_path, timeout=1)
    scf("UpdateFunctionEventInvokeConfig", FunctionName="slow",
        AsyncTriggerConfig={"RetryConfig": [{"RetryNum": 0}]})  # fmt: skip
    scf("Invoke", FunctionName="slow", InvocationType="Event", ClientContext='{"sleep": 5}')
    [record] = emu.run_pending()
    assert record["attempts"][0]["errorType"] == "TimeLimitExceeded"


def test_a_zip_uploaded_through_the_api_runs(emu: Emulator, scf: Scf) -> None:
    code = zip_b64({"app.py": "def handle(event, context):\n    return {'zip': event['n'] * 2}\n"})
    scf(
        "CreateFunction",
        FunctionName="zipped",
        Code={"ZipFile": code},
        Handler="app.handle",
        Runtime="Python3.10",
    )
    emu.advance(1)
    result = scf("Invoke", FunctionName="zipped", ClientContext='{"n": 21}')["Result"]
    assert json.loads(result["RetMsg"]) == {"zip": 42}


def test_the_repository_handlers_run_with_lib_on_the_path(emu: Emulator, scf: Scf) -> None:
    emu.add_function(
        "cbsnap",
        code_dir=ROOT / "handlers",
        python_path=[ROOT / "lib"],
        environment={"CBSNAP_RATE_LIMIT": "0"},
        timeout=30,
    )
    disk = emu.add_disk()["DiskId"]
    event = {"Type": "Timer", "TriggerName": "t", "Time": "2026-11-28T02:00:00Z",
             "Message": json.dumps({"storageId": disk, "snapshotName": "from-scf"})}  # fmt: skip
    result = scf("Invoke", FunctionName="cbsnap", ClientContext=json.dumps(event))["Result"]
    assert result["ErrMsg"] == "", result
    [snapshot] = emu.snapshots(disk_id=disk)
    assert snapshot["SnapshotName"] == "from-scf"


def test_invoke_validation(scf: Scf, fn: dict[str, Any]) -> None:
    assert scf.error("Invoke", FunctionName="nope", InvocationType="Event") == "ResourceNotFound.Function"
    assert (
        scf.error("Invoke", FunctionName="worker", InvocationType="Later")
        == "InvalidParameterValue.InvokeType"
    )
    assert (
        scf.error("Invoke", FunctionName="worker", ClientContext="{not json") == "InvalidParameterValue.Param"
    )
    big = json.dumps({"x": "y" * (128 * 1024)})
    assert scf.error("Invoke", FunctionName="worker", InvocationType="Event", ClientContext=big) == (
        "InvalidParameterValue.ClientContext"
    )


def test_admin_api_lists_and_runs_invocations(emu: Emulator, scf: Scf, fn: dict[str, Any]) -> None:
    request_id = scf("Invoke", FunctionName="worker", InvocationType="Event", ClientContext="{}")["Result"][
        "FunctionRequestId"
    ]
    listed = requests.get(f"{emu.url}/_emulator/invocations?state=pending", timeout=10).json()["invocations"]
    assert [i["id"] for i in listed] == [request_id]
    ran = requests.post(f"{emu.url}/_emulator/invocations/run", json={"id": request_id}, timeout=60).json()
    assert ran["invocation"]["state"] == "done"
    missing = requests.post(f"{emu.url}/_emulator/invocations/run", json={"id": "nope"}, timeout=10)
    assert missing.status_code == 404
    scf("Invoke", FunctionName="worker", InvocationType="Event", ClientContext="{}")
    drained = requests.post(f"{emu.url}/_emulator/invocations/run-pending", json={}, timeout=60).json()
    assert len(drained["ran"]) == 1 and drained["pending"] == []
    functions = requests.get(f"{emu.url}/_emulator/functions", timeout=10).json()["functions"]
    assert [f["FunctionName"] for f in functions] == ["worker"]


def test_admin_api_adds_a_function_that_async_invocations_run(
    emu: Emulator, scf: Scf, tmp_path: Path
) -> None:
    (tmp_path / "index.py").write_text(HANDLER, encoding="utf-8")
    body = {"name": "remote", "codeDir": str(tmp_path), "environment": {"GREETING": "hi"}, "timeout": 20}
    added = requests.post(f"{emu.url}/_emulator/functions", json=body, timeout=10)
    assert added.status_code == 200 and added.json()["function"]["Timeout"] == 20
    got = scf("GetFunction", FunctionName="remote")
    assert got["Runtime"] == "Python3.10" and got["Status"] == "Active"
    request_id = scf("Invoke", FunctionName="remote", InvocationType="Event", ClientContext="{}")["Result"][
        "FunctionRequestId"
    ]
    ran = requests.post(f"{emu.url}/_emulator/invocations/run", json={"id": request_id}, timeout=60).json()
    assert ran["invocation"]["state"] == "done"
    bad = requests.post(f"{emu.url}/_emulator/functions", json={"name": "x", "codeDir": 3}, timeout=10)
    assert bad.status_code == 400 and "codeDir" in bad.json()["error"]
    env = requests.post(
        f"{emu.url}/_emulator/functions",
        json={"name": "y", "codeDir": str(tmp_path), "environment": {"A": 1}},
        timeout=10,
    )
    assert env.status_code == 400 and "environment" in env.json()["error"]
