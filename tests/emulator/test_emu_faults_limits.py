"""Fault injection, rate limiting, latency and concurrency."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from cbsnap_emulator import Emulator, Fault


@pytest.fixture
def disks(emulator: Emulator) -> list[str]:
    emulator.add_disk("disk-flt00001")
    emulator.add_disk("disk-flt00002")
    return ["disk-flt00001", "disk-flt00002"]


def test_error_fault_counts_down_and_changes_nothing(emulator: Emulator, sdk: Any, disks: list[str]) -> None:
    fault = emulator.add_fault(
        Fault("CreateSnapshot", code="InternalError.ComponentError", times=2, message="boom")
    )
    for _ in range(2):
        err = sdk.cbs_error("CreateSnapshot", DiskId=disks[0])
        assert (err.code, err.message) == ("InternalError.ComponentError", "boom")
    assert emulator.snapshots() == [] and fault.times == 0
    assert sdk.cbs("CreateSnapshot", DiskId=disks[0])["SnapshotId"]
    assert emulator.faults_injected == {"InternalError.ComponentError": 2}
    assert [c["fault"] for c in emulator.calls()] == ["error", "error", None]
    assert emulator.faults() == []


def test_fault_scope_by_disk_region_and_action(emulator: Emulator, sdk: Any, disks: list[str]) -> None:
    emulator.add_fault(Fault("*", code="ResourceBusy", disk_id=disks[1]))
    emulator.add_fault(Fault("DescribeDisks", code="InternalError", region="ap-shanghai"))
    assert sdk.cbs("CreateSnapshot", DiskId=disks[0])["SnapshotId"]
    assert sdk.cbs_error("CreateSnapshot", DiskId=disks[1]).code == "ResourceBusy"
    assert sdk.cbs_error("DescribeDisks", DiskIds=disks[1:]).code == "ResourceBusy"
    assert (
        sdk.cbs_error("DescribeSnapshots", Filters=[{"Name": "disk-id", "Values": disks[1:]}]).code
        == "ResourceBusy"
    )
    assert sdk.cbs("DescribeDisks")["TotalCount"] == 2  # no disk named, not in ap-shanghai
    assert emulator.faults_injected == {"ResourceBusy": 3}


def test_fault_probability_uses_seeded_rng(disks: list[str], make_sdk: Any) -> None:
    def run() -> list[bool]:
        with Emulator(rng_seed=42, rate_limit=0) as emu:
            emu.add_fault(Fault("DescribeDisks", code="InternalError", probability=0.5))
            client = make_sdk(emu)
            outcomes = []
            for _ in range(20):
                try:
                    client.cbs("DescribeDisks")
                    outcomes.append(True)
                except TencentCloudSDKException:
                    outcomes.append(False)
            return outcomes

    first = run()
    assert first == run() and 0 < sum(first) < 20


def test_lost_reply_commits_then_drops_the_connection(emulator: Emulator, sdk: Any, disks: list[str]) -> None:
    emulator.add_fault(Fault("CreateSnapshot", kind="lost_reply", times=1))
    with pytest.raises(TencentCloudSDKException) as info:
        sdk.cbs("CreateSnapshot", DiskId=disks[0], SnapshotName="lost")
    assert info.value.code == "ClientNetworkError"
    [snap] = emulator.snapshots()
    assert snap["SnapshotName"] == "lost" and snap["SnapshotState"] == "CREATING"
    # the caller can find it, and a blind retry is refused while it is CREATING
    found = sdk.cbs("DescribeSnapshots", Filters=[{"Name": "snapshot-name", "Values": ["lost"]}])
    assert found["TotalCount"] == 1
    assert sdk.cbs_error("CreateSnapshot", DiskId=disks[0]).code == "InvalidDisk.SnapshotCreating"
    assert emulator.faults_injected == {"lost_reply": 1}
    assert emulator.calls(action="CreateSnapshot")[0]["fault"] == "lost_reply"


def test_latency_fault_and_setting(emulator: Emulator, sdk: Any, disks: list[str]) -> None:
    emulator.add_fault(Fault("DescribeDisks", kind="latency", latency=0.2, times=1))
    started = time.monotonic()
    sdk.cbs("DescribeDisks")
    assert time.monotonic() - started >= 0.2
    emulator.set_latency(0.15, "DescribeSnapshots")
    started = time.monotonic()
    sdk.cbs("DescribeDisks")
    assert time.monotonic() - started < 0.15
    started = time.monotonic()
    sdk.cbs("DescribeSnapshots")
    assert time.monotonic() - started >= 0.15
    assert emulator.faults_injected == {"latency": 1}


def test_latency_sleeps_outside_the_lock(emulator: Emulator, make_sdk: Any) -> None:
    emulator.set_latency(0.3)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: make_sdk().cbs("DescribeDisks"), range(8)))
    assert time.monotonic() - started < 1.2  # 8 x 0.3 s would be 2.4 s if serialised


def test_sdk_timeout_against_latency(emulator: Emulator) -> None:
    from tencentcloud.cbs.v20170312 import cbs_client, models
    from tencentcloud.common.credential import Credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY

    emulator.set_latency(0.5)
    profile = ClientProfile(
        httpProfile=HttpProfile(protocol="http", endpoint=emulator.endpoint, reqTimeout=0.2)
    )
    client = cbs_client.CbsClient(Credential(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY), "ap-guangzhou", profile)
    with pytest.raises(TencentCloudSDKException) as info:
        client.DescribeDisks(models.DescribeDisksRequest())
    assert info.value.code == "ClientNetworkError"


def test_burst_over_the_limit_is_throttled(emulator: Emulator, sdk: Any) -> None:
    # 2/s, burst 2: 40 back-to-back calls cannot all pass unless they take 19 s (a slow machine's
    # calls still come faster than that; at the default 20/s a loaded one could refill in time)
    emulator.set_rate_limit(2, "DescribeDisks")
    started = time.monotonic()
    codes = []
    for _ in range(40):
        try:
            sdk.cbs("DescribeDisks")
            codes.append(None)
        except TencentCloudSDKException as exc:
            codes.append(exc.code)
    elapsed = time.monotonic() - started
    passed = codes.count(None)
    assert set(codes) == {None, "RequestLimitExceeded"}
    assert codes[:2] == [None] * 2
    assert passed <= 2 + int(elapsed * 2) + 1
    # throttling one action leaves the others alone
    assert sdk.cbs("DescribeSnapshots")["TotalCount"] == 0


def test_callers_paced_at_the_limit_are_never_throttled(emulator: Emulator, sdk: Any) -> None:
    rate = 100.0
    emulator.set_rate_limit(rate, "DescribeDisks")
    # 1.2 s worth at exactly the limit: more calls than the burst, on an absolute schedule
    start = time.monotonic()
    for i in range(120):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sdk.cbs("DescribeDisks")
    assert [c for c in emulator.calls() if c["error"]] == []


def test_rate_limit_accounting(emulator: Emulator, sdk: Any) -> None:
    emulator.set_rate_limit(1, "DescribeDisks")
    sdk.cbs("DescribeDisks")
    err = sdk.cbs_error("DescribeDisks")
    assert err.code == "RequestLimitExceeded"
    # a throttled request is in calls() (error RequestLimitExceeded) and in rejected
    assert [c["error"] for c in emulator.calls()] == [None, "RequestLimitExceeded"]
    [rejected] = emulator.rejected
    assert (rejected["code"], rejected["request_id"]) == ("RequestLimitExceeded", err.requestId)
    emulator.reset_calls()
    assert emulator.calls() == [] and emulator.rejected == []


def test_rate_limit_zero_disables_and_none_resets_overrides(emulator: Emulator, sdk: Any) -> None:
    emulator.set_rate_limit(1, "DescribeDisks")
    emulator.set_rate_limit(0)  # all actions, overrides dropped
    for _ in range(50):
        sdk.cbs("DescribeDisks")
    with pytest.raises(ValueError, match=">= 0"):
        emulator.set_rate_limit(-1)


def test_concurrent_clients_with_keep_alive(make_sdk: Any) -> None:
    with Emulator(rate_limit=0, creation_seconds=0) as emu:
        ids = emu.add_disks(50, prefix="conc")
        emu.add_queue("cbsnap-results")
        errors: list[BaseException] = []
        barrier = threading.Barrier(50)

        def worker(disk_id: str) -> None:
            try:
                client = make_sdk(emu)  # one keep-alive session per worker
                barrier.wait()
                for _ in range(3):
                    client.cbs("DescribeDisks", DiskIds=[disk_id])
                snap = client.cbs("CreateSnapshot", DiskId=disk_id)["SnapshotId"]
                client.tdmq("SendCmqMsg", QueueName="cbsnap-results", MsgContent=snap, DelaySeconds=0)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(d,)) for d in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert len(emu.snapshots()) == 50
        assert len(emu.receive("cbsnap-results", max_messages=100)) == 50
        assert len(emu.calls()) == 250
        assert len({c["request_id"] for c in emu.calls()}) == 250


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="kind"):
        Fault(kind="explode")
    with pytest.raises(ValueError, match="probability"):
        Fault(probability=2)
    assert Fault().code == "InternalError"
    with pytest.raises(ValueError, match="unknown Fault field"):
        Fault.from_dict({"action": "*", "colour": "red"})
