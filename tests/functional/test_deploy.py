"""`cbsnap deploy` end to end against the emulator: the repository's serverless.yml, the real SCF SDK over
HTTP with TC3 signatures, and the emulator's function states (Creating/Updating → Active)."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from cbsnap_cli.deploy.command import Io, main
from cbsnap_cli.deploy.scf_api import MUTATING
from cbsnap_cli.main import build_parser
from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator, Fault

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = "cbsnap-dev"


def small_zip(path: Path, marker: str = "v1") -> Path:
    """A tiny code package (the deploy logic does not care what is inside)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("index.py", f"def main_handler(event, context):\n    return {marker!r}\n")
    return path


class Deployer:
    """Runs `cbsnap deploy` (parsed by the real CLI parser) against one emulator and workspace."""

    def __init__(self, emu: Emulator, workdir: Path) -> None:
        self.emu = emu
        self.config = workdir / "serverless.yml"
        shutil.copy(ROOT / "serverless.yml", self.config)
        self.zip = small_zip(workdir / "code.zip")
        self.env: dict[str, str] = {
            "TENCENTCLOUD_SECRET_ID": DEFAULT_SECRET_ID,
            "TENCENTCLOUD_SECRET_KEY": DEFAULT_SECRET_KEY,
            "CBSNAP_ENDPOINT": emu.url,
            "CBSNAP_WEBHOOK_SECRET": "s3cret-for-tests-0123456789abcdef0123",
        }
        self.slept: list[float] = []
        self.stdout = ""
        self.stderr = ""

    def sleep(self, seconds: float) -> None:
        """The wait loop's sleep: moves the emulator's state clock instead of the wall clock."""
        self.slept.append(seconds)
        self.emu.advance(seconds)

    def __call__(self, *extra: str, interactive: bool = False, answer: str = "") -> int:
        args = build_parser().parse_args(
            ["deploy", "--config", str(self.config), "--zip", str(self.zip), *extra]
        )
        out, err = io.StringIO(), io.StringIO()
        code = main(
            args,
            Io(
                env=self.env,
                stdout=out,
                stderr=err,
                stdin=io.StringIO(answer),
                interactive=interactive,
                sleep=self.sleep,
                clock=lambda: self.emu.now,
            ),
        )
        self.stdout, self.stderr = out.getvalue(), err.getvalue()
        return code

    def edit(self, old: str, new: str) -> None:
        text = self.config.read_text(encoding="utf-8")
        assert old in text
        self.config.write_text(text.replace(old, new), encoding="utf-8")

    def mutating(self) -> list[str]:
        """Mutating SCF calls since the last reset_calls()."""
        return [c["action"] for c in self.emu.calls(service="scf") if c["action"] in MUTATING]

    def triggers(self) -> dict[str, dict[str, Any]]:
        [fn] = [f for f in self.emu.functions() if f["FunctionName"] == FUNCTION]
        return {f"{t['Type']}/{t['TriggerName']}": t for t in fn["Triggers"]}


@pytest.fixture
def emu() -> Any:
    with Emulator(rng_seed=11, scf_transition_seconds=3) as emulator:
        yield emulator


@pytest.fixture
def deploy(emu: Emulator, tmp_path: Path) -> Deployer:
    return Deployer(emu, tmp_path)


def test_first_deploy_creates_function_triggers_and_async_config(emu: Emulator, deploy: Deployer) -> None:
    assert deploy("--yes") == 0, deploy.stderr
    [fn] = emu.functions()
    assert (fn["FunctionName"], fn["Runtime"], fn["Handler"]) == (
        FUNCTION,
        "Python3.10",
        "index.main_handler",
    )
    assert (fn["MemorySize"], fn["Timeout"], fn["InitTimeout"], fn["Role"]) == (
        128,
        60,
        10,
        "cbsnap-scf-exec",
    )
    assert fn["Status"] == "Active"
    env = {v["Key"]: v["Value"] for v in fn["Environment"]["Variables"]}
    assert (
        env["CBSNAP_WEBHOOK_SECRET"] == "s3cret-for-tests-0123456789abcdef0123"
    )  # ${env:…} resolved from the shell
    assert env["CBSNAP_RATE_LIMIT"] == "20" and env["POWERTOOLS_SERVICE_NAME"] == "cbsnap"
    triggers = deploy.triggers()
    timer = triggers["timer/nightly"]
    assert json.loads(timer["TriggerDesc"]) == {"cron": "0 0 2 * * * *"}
    assert json.loads(timer["CustomArgument"])["snapshotName"] == "nightly"
    assert timer["Qualifier"] == "$DEFAULT" and timer["Enable"] == 1
    [url] = [t for t in triggers.values() if t["Type"] == "http"]
    desc = json.loads(url["TriggerDesc"])
    assert desc["AuthType"] == "NONE" and desc["NetConfig"]["ExtranetUrl"].startswith("https://")
    assert len(triggers) == 2  # no apigw (Serverless CLI's) and no cmq
    assert (fn["RetryNum"], fn["MsgTTL"]) == (2, 21600)
    assert deploy.mutating() == [
        "CreateFunction",
        "UpdateFunctionEventInvokeConfig",
        "CreateTrigger",
        "CreateTrigger",
    ]
    assert deploy.slept, "it waited for the function to become Active before configuring it"
    assert "apigw" in deploy.stdout  # says why the apigw block is left alone


def test_second_run_makes_zero_mutating_calls(emu: Emulator, deploy: Deployer) -> None:
    assert deploy("--yes") == 0
    emu.reset_calls()
    assert deploy("--yes") == 0, deploy.stderr
    assert deploy.mutating() == []
    assert "up to date" in deploy.stdout


def test_changing_the_cron_changes_exactly_that_trigger(emu: Emulator, deploy: Deployer) -> None:
    assert deploy("--yes") == 0
    url_before = {k for k in deploy.triggers() if k.startswith("http/")}
    deploy.edit("cronExpression: '0 0 2 * * * *'", "cronExpression: '0 30 3 * * * *'")
    emu.reset_calls()
    assert deploy("--yes") == 0, deploy.stderr
    calls = [
        (c["action"], c["params"].get("TriggerName"))
        for c in emu.calls(service="scf")
        if c["action"] in MUTATING
    ]
    assert calls == [("DeleteTrigger", "nightly"), ("CreateTrigger", "nightly")]
    triggers = deploy.triggers()
    assert json.loads(triggers["timer/nightly"]["TriggerDesc"]) == {"cron": "0 30 3 * * * *"}
    assert {k for k in triggers if k.startswith("http/")} == url_before  # the function URL kept its address


def test_plan_lists_the_change_and_makes_no_mutating_call(emu: Emulator, deploy: Deployer) -> None:
    assert deploy("--yes") == 0
    deploy.edit("cronExpression: '0 0 2 * * * *'", "cronExpression: '0 30 3 * * * *'")
    deploy.edit("memorySize: 128", "memorySize: 256")
    emu.reset_calls()
    assert deploy("--plan") == 0, deploy.stderr
    assert deploy.mutating() == []
    assert "update function configuration: memorySize 128 -> 256" in deploy.stdout
    assert "timer/nightly" in deploy.stdout and "'0 0 2 * * * *' -> '0 30 3 * * * *'" in deploy.stdout
    assert "nothing was changed" in deploy.stdout


def test_plan_on_an_empty_account_lists_creations(emu: Emulator, deploy: Deployer) -> None:
    assert deploy("--plan") == 0
    assert deploy.mutating() == [] and emu.functions() == []
    assert (
        "+ create function cbsnap-dev" in deploy.stdout and "+ create trigger timer/nightly" in deploy.stdout
    )
    assert "+ create trigger function URL" in deploy.stdout


def test_an_unset_env_variable_stops_before_any_call(emu: Emulator, deploy: Deployer) -> None:
    del deploy.env["CBSNAP_WEBHOOK_SECRET"]
    assert deploy("--yes") == 2
    assert "CBSNAP_WEBHOOK_SECRET" in deploy.stderr and "not set" in deploy.stderr
    assert emu.calls(service="scf") == []
    deploy.env["CBSNAP_WEBHOOK_SECRET"] = ""
    assert deploy("--yes") == 2 and "CBSNAP_WEBHOOK_SECRET is empty" in deploy.stderr
    assert emu.calls() == []


def test_stage_names_the_function(emu: Emulator, deploy: Deployer) -> None:
    assert deploy("--yes", "--stage", "prod") == 0, deploy.stderr
    assert [f["FunctionName"] for f in emu.functions()] == ["cbsnap-prod"]


def test_code_and_configuration_updates_wait_for_active(
    emu: Emulator, deploy: Deployer, tmp_path: Path
) -> None:
    assert deploy("--yes") == 0
    deploy.zip = small_zip(tmp_path / "code2.zip", "v2")
    deploy.edit("timeout: 60", "timeout: 90")
    emu.reset_calls()
    deploy.slept.clear()
    assert deploy("--yes") == 0, deploy.stderr
    assert deploy.mutating() == ["UpdateFunctionCode", "UpdateFunctionConfiguration"]
    assert deploy.slept  # UpdateFunctionConfiguration was only sent once the code update had finished
    [fn] = emu.functions()
    assert fn["Timeout"] == 90 and fn["Status"] == "Active"
    emu.reset_calls()
    assert deploy("--yes") == 0 and deploy.mutating() == []


def test_removing_a_trigger_asks_first(emu: Emulator, deploy: Deployer) -> None:
    assert deploy("--yes") == 0
    deploy.edit("cbsnap:\n  functionUrl:", "cbsnap:\n  functionUrl: false\n  unused:")
    emu.reset_calls()
    assert deploy() == 2  # not on a terminal and no --yes: refuses, changes nothing
    assert "--yes" in deploy.stderr and deploy.mutating() == []
    assert deploy(interactive=True, answer="n\n") == 2 and deploy.mutating() == []
    assert "Delete trigger function URL?" in deploy.stdout
    assert deploy(interactive=True, answer="y\n") == 0
    assert deploy.mutating() == ["DeleteTrigger"]
    assert not [k for k in deploy.triggers() if k.startswith("http/")]


def test_a_failed_call_reports_code_request_id_progress_and_rerun(emu: Emulator, deploy: Deployer) -> None:
    emu.add_fault(
        Fault(action="CreateTrigger", code="InternalError.System", message="backend hiccup", times=1)
    )
    assert deploy("--yes") == 1
    err = deploy.stderr
    assert "CreateTrigger failed" in err and "InternalError.System: backend hiccup" in err
    [failed] = [c for c in emu.calls(action="CreateTrigger") if c["error"]]
    assert f"RequestId: {failed['request_id']}" in err
    assert "already changed:" in err and "+ create function cbsnap-dev" in err
    assert "re-run `cbsnap deploy --config" in err
    emu.reset_calls()
    assert deploy("--yes") == 0, deploy.stderr  # the re-run makes only what is missing
    assert deploy.mutating() == ["CreateTrigger", "CreateTrigger"]


def test_api_refusals_exit_1_with_the_documented_code(emu: Emulator, deploy: Deployer) -> None:
    deploy.edit("memorySize: 128", "memorySize: 100")
    assert deploy("--yes") == 1
    assert "CreateFunction failed" in deploy.stderr and "InvalidParameterValue.MemorySize" in deploy.stderr
    assert "nothing was changed" in deploy.stderr


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    - timer:", "    - cmq:\n        parameters: {name: x}\n    - timer:", "cmq trigger"),
        ("runtime: Python3.10", "runtime: ${env:NOPE_NOT_SET}", "NOPE_NOT_SET is not set"),
        ("cronExpression: '0 0 2 * * * *'", "cronExpression: '0 0 2 * *'", "7 fields"),
        ("name: cbsnap-${stage}", "name: cbsnap-${stagez}", "unknown variable ${stagez}"),
    ],
)
def test_configuration_errors_exit_2_before_any_call(
    emu: Emulator, deploy: Deployer, old: str, new: str, message: str
) -> None:
    deploy.edit(old, new)
    assert deploy("--yes") == 2
    assert message in deploy.stderr and emu.calls() == []


def test_missing_credentials_and_zip_exit_2(emu: Emulator, deploy: Deployer, tmp_path: Path) -> None:
    del deploy.env["TENCENTCLOUD_SECRET_ID"]
    assert deploy("--yes") == 2 and "TENCENTCLOUD_SECRET_ID" in deploy.stderr
    deploy.env["TENCENTCLOUD_SECRETID"] = DEFAULT_SECRET_ID  # SCF's own spelling works too
    deploy.zip = tmp_path / "missing.zip"
    assert deploy("--yes") == 2 and "scripts/build.sh" in deploy.stderr
    assert emu.calls() == []


def test_a_runtime_change_is_refused(emu: Emulator, deploy: Deployer) -> None:
    assert deploy("--yes") == 0
    deploy.edit("runtime: Python3.10", "runtime: Python3.9")
    emu.reset_calls()
    assert deploy("--yes") == 2 and "cannot change a function's runtime" in deploy.stderr
    assert deploy.mutating() == []


def test_ckafka_trigger_from_the_file(emu: Emulator, deploy: Deployer) -> None:
    text = deploy.config.read_text(encoding="utf-8")
    block = text[text.index("    # - ckafka:") : text.index("    # API Gateway routes")]
    deploy.config.write_text(text.replace(block, block.replace("    # ", "    ")), encoding="utf-8")
    deploy.env["CBSNAP_CKAFKA_INSTANCE"] = "ckafka-abcd1234"
    assert deploy("--yes") == 0, deploy.stderr
    kafka = deploy.triggers()["ckafka/ckafka-abcd1234-cbsnap-requests"]
    assert json.loads(kafka["TriggerDesc"]) == {
        "maxMsgNum": "10",
        "offset": "latest",
        "retry": "3",
        "timeOut": "60",
    }
    emu.reset_calls()
    assert deploy("--yes") == 0 and deploy.mutating() == []


def test_the_cli_registers_deploy() -> None:
    args = build_parser().parse_args(["deploy", "--plan", "--stage", "x"])
    assert (args.command, args.plan, args.stage, args.yes, args.config) == (
        "deploy",
        True,
        "x",
        False,
        "serverless.yml",
    )
