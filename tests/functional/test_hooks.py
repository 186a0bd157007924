"""Application-consistent snapshots: pre/post scripts through TAT around the creates.

Everything goes through the real SDKs to the emulator (TAT and CBS, TC3-signed). The runtime's
sleep advances the emulator's clock instead of waiting, so a TAT command "runs" for its scripted
duration without the test waiting for it. The order of calls is read from the emulator's record.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from cbsnap.runtime import Runtime, set_runtime
from cbsnap_emulator import Emulator, Fault
from tests.conftest import FAST_POLICY, emulator_settings, scf_context, timer_event

WEB = "ins-3xa9k2lm"  # demo seed: disk-g73hhs4o and disk-k2v8p4tq
WEB_DISKS = ["disk-g73hhs4o", "disk-k2v8p4tq"]
LONE = "ins-5pq8r3vn"  # disk-w9f4h1sz
PRE = "#!/bin/sh\n# cbsnap-test-pre\nsync && fsfreeze -f /data\n"
POST = "#!/bin/sh\n# cbsnap-test-post\nfsfreeze -u /data\n"
FULL_ORDER = ["DescribeAutomationAgentStatus", "RunCommand:pre", "CreateSnapshot", "CreateSnapshot"]
FULL_ORDER.append("RunCommand:post")
ORDERED = {"DescribeAutomationAgentStatus", "RunCommand", "CreateSnapshot", "CreateSnapshotGroup"}


class Hooked:
    """A runtime wired to the emulator whose sleep advances the emulator's clock."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.stream = io.StringIO()
        self.runtime = Runtime.from_settings(
            emulator_settings(emu), stream=self.stream, policy=FAST_POLICY, sleep=emu.advance
        )
        set_runtime(self.runtime)

    def run(self, document: dict[str, Any], *, timeout_ms: int = 120_000, name: str = "h") -> dict[str, Any]:
        from handlers.timer import main_handler

        response: dict[str, Any] = main_handler(timer_event(document, name=name), scf_context(timeout_ms))
        return response

    def order(self) -> list[str]:
        """TAT and create calls in the order the emulator received them; RunCommand as pre/post."""
        steps = []
        for call in self.emu.calls():
            if call["action"] not in ORDERED:
                continue
            if call["action"] == "RunCommand":
                script = base64.b64decode(call["params"]["Content"]).decode()
                steps.append("RunCommand:pre" if "cbsnap-test-pre" in script else "RunCommand:post")
            else:
                steps.append(call["action"])
        return steps

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def hooked(emulator: Emulator) -> Iterator[Hooked]:
    yield Hooked(emulator)
    set_runtime(None)


def request(**hooks: Any) -> dict[str, Any]:
    return {
        "disks": WEB_DISKS,
        "snapshotName": "app",
        "hooks": {"pre": PRE, "post": POST, "timeoutSeconds": 5, **hooks},
    }


def test_pre_succeeds_application_consistent_and_post_after_the_creates(
    emulator: Emulator, hooked: Hooked
) -> None:
    response = hooked.run(request())
    results = response["results"]
    assert [r["code"] for r in results] == [0, 0]
    for r in results:
        assert r["consistency"] == "application" and isinstance(r["freezeMs"], int) and r["freezeMs"] >= 0
        assert r["hooks"] == {"instanceId": WEB, "pre": "SUCCESS", "post": "SUCCESS"}
    assert hooked.order() == FULL_ORDER
    pre, post = emulator.commands(WEB)
    assert "cbsnap-test-pre" in pre["Content"] and pre["TaskStatus"] == "SUCCESS"
    creates = emulator.calls(action="CreateSnapshot")
    assert pre["end"] <= min(c["time"] for c in creates) <= max(c["time"] for c in creates) <= post["start"]
    # the scripts never reach the log; their runs do
    logs = hooked.logs()
    assert not any("fsfreeze" in json.dumps(r) for r in logs)
    assert [r["message"] for r in logs if r["message"].startswith("hooks.")] == ["hooks.pre", "hooks.post"]
    [metrics] = [r for r in logs if r.get("type") == "cbsnap.metrics"]
    assert metrics["created"] == 2 and metrics["calls"]["RunCommand"] == 2


def test_pre_fails_with_crash_fallback_snapshots_and_still_runs_post(
    emulator: Emulator, hooked: Hooked
) -> None:
    emulator.set_command_outcome(
        WEB, "failure", exit_code=3, output="fsfreeze: /data busy", match="cbsnap-test-pre"
    )
    response = hooked.run(request(onFailure="crash"))
    for r in response["results"]:
        assert r["code"] == 0 and r["consistency"] == "crash" and "freezeMs" not in r
        assert r["hooks"]["pre"] == "FAILED" and r["hooks"]["post"] == "SUCCESS"
        assert "exit 3" in r["hooks"]["reason"]
    assert hooked.order() == FULL_ORDER
    [failed] = [r for r in hooked.logs() if r["message"] == "hooks.pre.failed"]
    assert failed["exit_code"] == 3 and "busy" in failed["output"]


def test_create_fails_post_still_runs(emulator: Emulator, hooked: Hooked) -> None:
    emulator.add_fault(Fault(action="CreateSnapshot", code="InvalidDisk.NotSupportSnapshot"))
    response = hooked.run(request())
    assert [r["code"] for r in response["results"]] == [16026, 16026]
    assert all(r["hooks"]["post"] == "SUCCESS" and "consistency" not in r for r in response["results"])
    assert hooked.order()[-1] == "RunCommand:post" and hooked.order().count("RunCommand:post") == 1
    assert hooked.order().index("RunCommand:post") > hooked.order().index("CreateSnapshot")


def test_agent_offline_is_crash_without_running_anything(emulator: Emulator, hooked: Hooked) -> None:
    emulator.set_agent(WEB, online=False)
    response = hooked.run(request())
    for r in response["results"]:
        assert r["code"] == 0 and r["consistency"] == "crash"
        assert r["hooks"]["pre"] == "NOT_RUN" and "Offline" in r["hooks"]["reason"]
    assert hooked.order() == ["DescribeAutomationAgentStatus", "CreateSnapshot", "CreateSnapshot"]
    assert emulator.commands() == []


def test_agent_offline_with_skip_makes_no_snapshot(emulator: Emulator, hooked: Hooked) -> None:
    emulator.set_agent(WEB, online=False)
    response = hooked.run(request(onFailure="skip"))
    assert [r["code"] for r in response["results"]] == [16110, 16110]
    assert "onFailure is skip" in response["results"][0]["message"]
    assert emulator.calls(action="CreateSnapshot") == [] and emulator.commands() == []


def test_not_enough_time_left_means_no_freeze(emulator: Emulator, hooked: Hooked) -> None:
    # 20 s to live; pre (30 s), the creates and post (30 s) cannot fit
    response = hooked.run(request(timeoutSeconds=30), timeout_ms=20_000)
    for r in response["results"]:
        assert r["code"] == 0 and r["consistency"] == "crash" and "not enough time" in r["hooks"]["reason"]
    assert emulator.commands() == [] and "RunCommand:pre" not in hooked.order()


def test_pre_timeout_with_skip_runs_post_and_snapshots_nothing(emulator: Emulator, hooked: Hooked) -> None:
    emulator.set_command_outcome(WEB, "timeout", match="cbsnap-test-pre")
    response = hooked.run(request(onFailure="skip"))
    assert [r["code"] for r in response["results"]] == [16110, 16110]
    assert response["results"][0]["hooks"]["pre"] == "TIMEOUT"
    assert emulator.calls(action="CreateSnapshot") == []
    assert hooked.order() == ["DescribeAutomationAgentStatus", "RunCommand:pre", "RunCommand:post"]


def test_consistent_hooks_make_one_group_between_pre_and_post(emulator: Emulator, hooked: Hooked) -> None:
    response = hooked.run({**request(), "consistent": True})
    results = response["results"]
    assert {r["consistency"] for r in results} == {"application"} and len(
        {r["groupId"] for r in results}
    ) == 1
    assert hooked.order() == [
        "DescribeAutomationAgentStatus",
        "RunCommand:pre",
        "CreateSnapshotGroup",
        "RunCommand:post",
    ]


def test_instances_are_hooked_separately(emulator: Emulator, hooked: Hooked) -> None:
    emulator.set_agent(LONE, online=False)
    response = hooked.run({**request(), "disks": [*WEB_DISKS, "disk-w9f4h1sz", "disk-u2j6t8ye"]})
    by_disk = {r["storageId"]: r for r in response["results"]}
    assert {by_disk[d]["consistency"] for d in WEB_DISKS} == {"application"}
    assert by_disk["disk-w9f4h1sz"]["consistency"] == "crash"  # its agent is offline
    assert by_disk["disk-u2j6t8ye"]["hooks"]["reason"] == "not attached to an instance"
    assert [c["InstanceId"] for c in emulator.commands()] == [WEB, WEB]


def test_consistent_alone_promises_nothing(emulator: Emulator, hooked: Hooked) -> None:
    response = hooked.run({"disks": WEB_DISKS, "consistent": True})
    assert {r["consistency"] for r in response["results"]} == {"not-guaranteed"}


@pytest.mark.parametrize(
    ("hooks", "problem"),
    [
        ({"pre": "x" * 50_000, "post": POST}, "base64"),
        ({"pre": PRE, "post": POST, "timeoutSeconds": 601}, "less than or equal to 600"),
        ({"pre": PRE}, "post"),
        ({"pre": PRE, "post": POST, "onFailure": "retry"}, "onFailure"),
    ],
)
def test_bad_hooks_are_refused(
    emulator: Emulator, hooked: Hooked, hooks: dict[str, Any], problem: str
) -> None:
    response = hooked.run({"disks": WEB_DISKS, "hooks": hooks})
    assert {r["code"] for r in response["results"]} == {9003}
    assert problem in response["results"][0]["message"]
    assert emulator.calls() == []


def test_hooks_belong_to_snapshots(emulator: Emulator, hooked: Hooked) -> None:
    response = hooked.run({"action": "report", "disks": WEB_DISKS, "hooks": {"pre": PRE, "post": POST}})
    assert response["results"][0]["code"] == 9003 and "hooks" in response["results"][0]["message"]
