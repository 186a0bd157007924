"""Admin control plane, seeds, reset, determinism and the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator, Fault, load_seed


def test_admin_state_and_calls(emulator: Emulator, sdk: Any, admin: Any) -> None:
    emulator.add_disk("disk-adm00001", tags={"backup": "nightly"})
    emulator.add_queue("q1")
    snap = sdk.cbs("CreateSnapshot", DiskId="disk-adm00001")["SnapshotId"]
    status, state = admin("GET", "state")
    assert status == 200
    assert [d["DiskId"] for d in state["disks"]] == ["disk-adm00001"]
    assert [s["SnapshotId"] for s in state["snapshots"]] == [snap]
    assert state["messages"] == [] and state["faults_injected"] == {}
    status, calls = admin("GET", "calls?action=CreateSnapshot")
    assert [c["params"]["DiskId"] for c in calls["calls"]] == ["disk-adm00001"] and calls["rejected"] == []
    assert admin("DELETE", "calls") == (200, {"ok": True})
    assert emulator.calls() == []


def test_admin_faults_advance_and_rate_limit(emulator: Emulator, sdk: Any, admin: Any) -> None:
    emulator.add_disk("disk-adm00002")
    status, body = admin("POST", "faults", {"action": "CreateSnapshot", "code": "ResourceBusy", "times": 1})
    assert status == 200 and body["fault"]["times"] == 1
    assert sdk.cbs_error("CreateSnapshot", DiskId="disk-adm00002").code == "ResourceBusy"
    assert admin("GET", "state")[1]["faults_injected"] == {"ResourceBusy": 1}
    admin("POST", "faults", {"action": "*", "code": "InternalError"})
    assert admin("DELETE", "faults") == (200, {"ok": True})
    snap = sdk.cbs("CreateSnapshot", DiskId="disk-adm00002")["SnapshotId"]
    status, body = admin("POST", "advance", {"seconds": 5})
    assert status == 200 and body["now"] >= emulator.now - 1
    assert sdk.snapshot(snap)["SnapshotState"] == "NORMAL"
    assert admin("POST", "rate-limit", {"rps": 1, "action": "DescribeDisks"})[0] == 200
    sdk.cbs("DescribeDisks")
    assert sdk.cbs_error("DescribeDisks").code == "RequestLimitExceeded"
    assert admin("POST", "latency", {"seconds": 0.0})[0] == 200


def test_admin_disks_snapshots_queues_receive(emulator: Emulator, sdk: Any, admin: Any) -> None:
    status, body = admin(
        "POST", "disks", {"DiskId": "disk-adm00003", "Tags": [{"Key": "app", "Value": "web"}]}
    )
    assert status == 200 and body["disks"][0]["Tags"] == [{"Key": "app", "Value": "web"}]
    status, body = admin("POST", "disks", {"count": 3, "prefix": "bulk", "Region": "ap-shanghai"})
    assert status == 200 and [d["DiskName"] for d in body["disks"]] == ["bulk-0000", "bulk-0001", "bulk-0002"]
    status, body = admin(
        "POST",
        "snapshots",
        {"DiskId": "disk-adm00003", "SnapshotName": "old", "CreateTime": "2026-01-01 00:00:00"},
    )
    assert status == 200 and body["snapshots"][0]["CreateTime"] == "2026-01-01 00:00:00"
    assert admin("POST", "queues", {"name": "work"}) == (200, {"ok": True})
    sdk.tdmq("SendCmqMsg", QueueName="work", MsgContent="job", DelaySeconds=0)
    status, body = admin("POST", "receive", {"queue": "work"})
    assert status == 200 and [m["MsgContent"] for m in body["messages"]] == ["job"]
    assert admin("POST", "receive", {"queue": "nope"})[0] == 404


def test_admin_errors(emulator: Emulator, admin: Any) -> None:
    assert admin("GET", "nowhere")[0] == 404
    assert admin("PUT", "state")[0] == 405
    assert admin("POST", "advance", {"seconds": "soon"})[0] == 400
    assert admin("POST", "advance", {"seconds": -1})[0] == 400
    assert admin("POST", "faults", {"kind": "explode"})[0] == 400
    assert admin("POST", "disks", {"DiskId": "not-a-disk"})[0] == 400
    resp = requests.post(f"{emulator.url}/_emulator/advance", data=b"{nope", timeout=5)
    assert resp.status_code == 400


def test_admin_reset(emulator: Emulator, sdk: Any, admin: Any) -> None:
    emulator.add_disk("disk-adm00004")
    sdk.cbs("CreateSnapshot", DiskId="disk-adm00004")
    assert admin("POST", "reset") == (200, {"ok": True})
    assert emulator.disks() == [] and emulator.calls() == []


def test_default_seed_contents() -> None:
    seed = load_seed()
    with Emulator(seed) as emu:
        gz = {d["DiskId"]: d for d in emu.disks("ap-guangzhou")}
        assert 5 <= len(gz) <= 8 and "disk-g73hhs4o" in gz
        assert any(not d["SnapshotAbility"] for d in gz.values())
        instances = [d["InstanceId"] for d in gz.values() if d["InstanceId"]]
        assert any(instances.count(i) >= 2 for i in instances)
        tags = {(t["Key"], t["Value"]) for d in gz.values() for t in d["Tags"]}
        assert {("backup", "nightly"), ("app", "web")} <= tags
        assert emu.disks("ap-shanghai")
        assert [s["SnapshotName"] for s in emu.snapshots()] == ["manual-before-upgrade"]
    for queue in ("cbsnap-results", "cbsnap-work"):
        assert queue in seed["queues"]
    assert seed["topics"] == ["cbsnap-events"]


def test_reset_returns_to_seed_and_repeats_ids(make_sdk: Any) -> None:
    with Emulator(load_seed(), rng_seed=3) as emu:
        client = make_sdk(emu)
        first = client.cbs("CreateSnapshot", DiskId="disk-g73hhs4o")["SnapshotId"]
        emu.add_disk("disk-extra001")
        emu.add_fault(Fault(code="ResourceBusy"))
        emu.set_rate_limit(1)
        emu.advance(1000)
        emu.reset()
        assert "disk-extra001" not in {d["DiskId"] for d in emu.disks()}
        assert len(emu.snapshots()) == 1 and emu.faults() == [] and emu.faults_injected == {}
        assert abs(emu.now - __import__("time").time()) < 5
        assert client.cbs("CreateSnapshot", DiskId="disk-g73hhs4o")["SnapshotId"] == first
        client.cbs("DescribeDisks")
        client.cbs("DescribeDisks")  # rate limit back to 20/s


def test_deterministic_bulk_ids() -> None:
    assert Emulator(rng_seed=11).add_disks(5) == Emulator(rng_seed=11).add_disks(5)
    assert Emulator(rng_seed=11).add_disks(5) != Emulator(rng_seed=12).add_disks(5)


def test_seed_file_settings_and_validation(tmp_path: Path, make_sdk: Any) -> None:
    path = tmp_path / "seed.json"
    path.write_text(
        json.dumps(
            {
                "disks": [
                    {
                        "DiskId": "disk-seed0001",
                        "Region": "ap-beijing",
                        "DiskChargeType": "PREPAID",
                        "ProjectId": 7,
                    }
                ],
                "snapshots": [
                    {
                        "DiskId": "disk-seed0001",
                        "SnapshotState": "NORMAL",
                        "DeadlineTime": "2099-01-01 00:00:00",
                    }
                ],
                "queues": [{"Name": "q"}],
                "settings": {"creationSeconds": 0, "quota": 1},
            }
        )
    )
    with Emulator(load_seed(path)) as emu:
        [disk] = emu.disks()
        assert (disk["DiskChargeType"], disk["Placement"]["ProjectId"], disk["Placement"]["Zone"]) == (
            "PREPAID",
            7,
            "ap-beijing-3",
        )
        assert emu.snapshots()[0]["DeadlineTime"] == "2099-01-01 00:00:00"
        client = make_sdk(emu, region="ap-beijing")
        assert client.cbs_error("CreateSnapshot", DiskId="disk-seed0001").code == "InsufficientSnapshotQuota"
    # explicit arguments beat seed settings
    with Emulator(load_seed(path), quota=5) as emu:
        assert make_sdk(emu, region="ap-beijing").cbs("CreateSnapshot", DiskId="disk-seed0001")["SnapshotId"]
    for bad, match in [
        ({"disk": []}, "unknown seed key"),
        ({"disks": [{"DiskId": "disk-x"}]}, r"disks\[0\]"),
        ({"disks": [{"DiskId": "disk-seed0002", "Colour": "red"}]}, "unknown Disk field"),
        ({"snapshots": [{"DiskId": "disk-nothere1"}]}, r"snapshots\[0\]"),
        ({"settings": {"speed": 1}}, "unknown seed setting"),
        ({"credentials": [{"SecretId": "a"}]}, "SecretKey"),
    ]:
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=match):
            Emulator(load_seed(path))


def test_add_disk_validation(emulator: Emulator) -> None:
    emulator.add_disk("disk-dup00001")
    for kwargs, match in [
        ({"disk_id": "disk-dup00001"}, "already exists"),
        ({"region": "Guangzhou"}, "region"),
        ({"disk_state": "BROKEN"}, "disk_state"),
        ({"instance_id": "i-123"}, "instance_id"),
        ({"instance_id": "ins-abcdefgh", "disk_state": "UNATTACHED"}, "UNATTACHED"),
        ({"size": 0}, "size"),
        ({"tags": [{"Key": "k"}]}, "tags"),
    ]:
        with pytest.raises(ValueError, match=match):
            emulator.add_disk(**kwargs)
    with pytest.raises(ValueError, match="no disk"):
        emulator.add_snapshot("disk-nothere1")
    with pytest.raises(RuntimeError):
        _ = Emulator().endpoint


def test_cli_serves_until_interrupted(tmp_path: Path) -> None:
    import cbsnap_emulator

    lib = str(Path(cbsnap_emulator.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([lib, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cbsnap_emulator",
            "--port",
            "0",
            "--creation-seconds",
            "0",
            "--rate-limit",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(5)]
        exports = dict(
            line.removeprefix("export ").strip().split("=", 1) for line in lines if line.startswith("export")
        )
        assert exports["TENCENTCLOUD_SECRETID"] == DEFAULT_SECRET_ID
        assert exports["TENCENTCLOUD_SECRETKEY"] == DEFAULT_SECRET_KEY
        assert exports["CBSNAP_ENDPOINT"].startswith("http://"), "the scheme: a pasted value must work"
        state = requests.get(f"{exports['CBSNAP_ENDPOINT']}/_emulator/state", timeout=5).json()
        assert "disk-g73hhs4o" in {d["DiskId"] for d in state["disks"]}
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "stopped" in out


def test_cli_reports_bad_seed(tmp_path: Path) -> None:
    from cbsnap_emulator.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert main(["--seed", str(bad), "--port", "0"]) == 2
