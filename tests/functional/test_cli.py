"""The cbsnap command in a fresh process, as a user runs it: outputs and exit codes.

Exit codes (lib/cbsnap_cli/errors.py, the README): 0 every disk succeeded (plan: would);
1 a disk failed or the webhook answered non-2xx; 2 a usage or configuration error.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cbsnap_cli.main import main
from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator
from tests.conftest import ROOT

CLI = [sys.executable, "-m", "cbsnap_cli.main"]
# What a user's shell might carry that would change what these runs mean.
CLEARED = ("CBSNAP_", "TENCENTCLOUD_")


def cli_env(**extra: str) -> dict[str, str]:
    """A clean environment for the CLI: no CBSNAP_*/TENCENTCLOUD_* from the caller, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "lib"), str(ROOT)])
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """``cbsnap ARGS`` in a fresh process from the repository root."""
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=cli_env(**env),
        check=False,
    )


def emulator_env(emu: Emulator, endpoint: str | None = None) -> dict[str, str]:
    """The variables a user exports to reach ``emu`` (``endpoint`` as they typed it)."""
    return {
        "CBSNAP_ENDPOINT": endpoint or emu.url,
        "TENCENTCLOUD_SECRETID": DEFAULT_SECRET_ID,
        "TENCENTCLOUD_SECRETKEY": DEFAULT_SECRET_KEY,
    }


def log_records(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


# -- invoke ---------------------------------------------------------------------------------------


def test_invoke_timer_against_an_embedded_emulator() -> None:
    proc = run_cli("invoke", "timer", "--event", "events/timer-seed-example.json", "--emulator")
    assert proc.returncode == 0, proc.stderr
    response = json.loads(proc.stdout)
    [result] = response["results"]
    assert result["code"] == 0 and result["message"] == "" and result["snapshotId"].startswith("snap-")
    # the structured log records went to stderr: one per disk, the invocation's metrics line, then
    # one summary line
    records = log_records(proc.stderr)
    assert [r["result"]["snapshotId"] for r in records if "result" in r] == [result["snapshotId"]]
    assert records[-1]["type"] == "cbsnap.metrics" and records[-1]["created"] == 1
    assert proc.stderr.splitlines()[-1] == "cbsnap invoke: 1 of 1 disks succeeded"


def test_invoke_index_routes_like_the_deployed_function() -> None:
    timer = run_cli("invoke", "index", "--event", "events/timer-seed-example.json", "--emulator")
    assert timer.returncode == 0, timer.stderr
    assert json.loads(timer.stdout)["trigger"] == "timer"
    queue_event = run_cli("invoke", "index", "--event", "events/ckafka.json", "--emulator")
    assert queue_event.returncode == 0, queue_event.stderr
    assert json.loads(queue_event.stdout)["trigger"] == "ckafka"


def test_invoke_exits_1_when_any_disk_fails() -> None:
    proc = run_cli("invoke", "timer", "--event", "events/timer.json", "--emulator")
    assert proc.returncode == 1, proc.stderr
    codes = sorted(r["code"] for r in json.loads(proc.stdout)["results"])
    assert codes == [0, 0, 0, 9003, 16026]
    assert proc.stderr.splitlines()[-1] == "cbsnap invoke: 3 of 5 disks succeeded"


def test_invoke_exits_1_when_the_webhook_answers_401_and_says_how_to_fix_it() -> None:
    proc = run_cli("invoke", "webhook", "--event", "events/apigw-seed.json", "--emulator")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["statusCode"] == 401
    assert "CBSNAP_WEBHOOK_AUTH=gateway" in proc.stderr and "Traceback" not in proc.stderr


def test_invoke_webhook_with_gateway_auth_succeeds() -> None:
    proc = run_cli(
        "invoke", "webhook", "--event", "events/apigw-seed.json", "--emulator", CBSNAP_WEBHOOK_AUTH="gateway"
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["code"] == 0


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Background:
    """A long-running ``cbsnap`` command (emulator, serve) in its own process. Its stdout is read by
    a thread, so a process that dies or hangs fails the test instead of blocking it."""

    def __init__(self, *args: str, sigint_ignored: bool = False, **env: str) -> None:
        # sigint_ignored: start it as a shell starts a background job, with SIGINT ignored.
        self.proc = subprocess.Popen(
            [*CLI, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=cli_env(**env),
            preexec_fn=_ignore_sigint if sigint_ignored else None,  # noqa: PLW1509 - one signal call
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr = ""
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        self._pump = threading.Thread(target=self._read, args=(stdout,), daemon=True)
        self._pump.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put("")

    def read_until(self, text: str) -> str:
        """stdout up to and including the first line containing ``text``."""
        while True:
            line = self.lines.get(timeout=60)
            assert line, "the process ended early:\n" + "".join(self.stdout) + self.finish(None)
            self.stdout.append(line)
            if text in line:
                return "".join(self.stdout)

    def rest(self) -> str:
        """stdout after the process ended (call :meth:`finish` first)."""
        self._pump.join(timeout=30)
        while not self.lines.empty():
            self.stdout.append(self.lines.get())
        return "".join(self.stdout)

    def finish(self, signal_number: int | None = signal.SIGINT) -> str:
        """Send ``signal_number`` (Ctrl-C by default), wait for the exit; returns stderr."""
        if signal_number is not None and self.proc.poll() is None:
            self.proc.send_signal(signal_number)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # leave no process behind for a later test to trip over
            self.proc.wait()
            raise
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()
        self.proc.stderr.close()
        self._pump.join(timeout=30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return self.stderr


@pytest.fixture
def running_emulator() -> Iterator[dict[str, str]]:
    """``cbsnap emulator --port 0`` in its own process: the variables its banner exports."""
    emulator = Background("emulator", "--port", "0")
    try:
        banner = emulator.read_until("Press Ctrl-C")
        yield dict(re.findall(r"^export (\w+)=(\S+)$", banner, re.MULTILINE))
    finally:
        emulator.finish()
    assert emulator.proc.returncode == 0 and "Traceback" not in emulator.stderr


def test_the_emulator_banner_exports_values_that_work_as_pasted(running_emulator: dict[str, str]) -> None:
    """The issue's first stumble: the banner's CBSNAP_ENDPOINT, pasted, must work."""
    exports = running_emulator
    assert exports["CBSNAP_ENDPOINT"].startswith("http://127.0.0.1:")
    proc = run_cli("invoke", "timer", "--event", "events/timer-seed-example.json", **exports)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["code"] == 0


def test_a_bare_loopback_host_port_endpoint_is_taken_as_http(emulator: Emulator) -> None:
    proc = run_cli(
        "invoke",
        "timer",
        "--event",
        "events/timer-seed-example.json",
        **emulator_env(emulator, emulator.endpoint),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["snapshotId"] in {
        s["SnapshotId"] for s in emulator.snapshots()
    }


# -- plan -----------------------------------------------------------------------------------------


def test_plan_names_its_trigger_and_exits_1_when_a_disk_would_fail() -> None:
    proc = run_cli("plan", "--emulator", '{"selector": {"tags": {"backup": "nightly"}}}', COLUMNS="100")
    assert proc.returncode == 1, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("Planned as a webhook request (--trigger webhook, the default")
    assert "expire after 3 days (CBSNAP_RETAIN_DAYS_WEBHOOK=3)" in first
    assert "3 of 4 disks would be snapshotted." in proc.stdout
    table = proc.stdout.split("\n\n")[1].splitlines()
    assert all(len(line) <= 100 for line in table), "the table fits the terminal"
    # the failing disk's whole message is there, wrapped rather than cut
    assert "SnapshotAbility=false: cannot be snapshotted" in " ".join(" ".join(table).split())


def test_plan_exits_0_when_every_disk_would_succeed_and_json_is_the_handlers_answer() -> None:
    proc = run_cli("plan", "--emulator", "--trigger", "timer", "--json", '{"disks": ["disk-g73hhs4o"]}')
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["trigger"] == "timer" and [r["action"] for r in answer["results"]] == ["plan"]
    assert "Planned as a timer request" in proc.stderr and "would be kept" in proc.stderr


# -- demo, sign, help -----------------------------------------------------------------------------


def test_demo_runs_end_to_end() -> None:
    proc = run_cli("demo", "--creation-seconds", "1")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "3 of 5 disks snapshotted" in out
    assert "All snapshots are NORMAL." in out
    assert "[##############################] 100%" in out
    assert "16026" in out and "9003" in out
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_demo_fleet_plays_a_whole_fan_out_and_completion_chain() -> None:
    proc = run_cli("demo", "--fleet", "--disks", "30", "--threshold", "10", "--creation-seconds", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "parent: 6 chunks handed on with Invoke, 30 disks; its own CreateSnapshot calls: 0" in out
    assert "30 of 30 disks have a snapshot (30 exactly one); 30 snapshot.completed events (0 repeated)" in out
    assert "re-check link" in out and "Traceback" not in proc.stderr


def test_demo_fleet_refuses_a_fleet_under_its_threshold() -> None:
    proc = run_cli("demo", "--fleet", "--disks", "5", "--threshold", "10")
    assert proc.returncode == 2 and "--disks > --threshold" in proc.stderr and "Traceback" not in proc.stderr


def test_sign_prints_two_headers_and_exits_0(tmp_path: Path) -> None:
    proc = run_cli("sign", "--query", "wait=50", "--timestamp", "1795831200", CBSNAP_WEBHOOK_SECRET="s3cret")
    assert proc.returncode == 0, proc.stderr
    names = [line.split(": ", 1)[0] for line in proc.stdout.splitlines()]
    assert names == ["X-Cbsnap-Timestamp", "X-Cbsnap-Signature"]
    assert "s3cret" not in proc.stdout


def help_text(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """``cbsnap ARGS --help`` (in this process: argparse prints and exits 0)."""
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", ["invoke", "serve", "plan", "sign", "demo", "emulator", "deploy"])
def test_every_option_says_what_it_does(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys, command)
    options = re.findall(r"^  (--[\w-]+)", text, re.MULTILINE)
    assert options, text
    for option in options:  # each option line, or the line after it, carries a description
        block = text.split(f"  {option}", 1)[1].split("\n  -", 1)[0]
        assert len(block.split()) > 2, f"{command} {option} has no description"
    assert "internal" not in text.lower() and "TODO" not in text


def test_the_top_level_help_lists_every_command_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys)
    for command in ("invoke", "serve", "plan", "sign", "demo", "emulator", "deploy"):
        assert re.search(rf"^    {command}\s", text, re.MULTILINE), command
    assert "exit status" in text
    for code in ("0", "1", "2"):
        assert re.search(rf"^  {code}  ", text, re.MULTILINE)
    assert "import" not in text, "no notes about the code"
