"""Selectors: disks chosen by tag and instance, per region, with exclusions."""

from __future__ import annotations

from typing import Any

from cbsnap_emulator import Emulator
from tests.conftest import RuntimeHarness, run_timer


def run(document: dict[str, Any]) -> dict[str, Any]:
    return run_timer(document, name="sel")


def created_disks(emulator: Emulator) -> list[str]:
    return sorted(c["params"]["DiskId"] for c in emulator.calls(action="CreateSnapshot"))


def test_tag_selector_across_two_regions(emulator: Emulator, harness: RuntimeHarness) -> None:
    gz = emulator.add_disks(3, tags={"backup": "fleet"})
    sh = emulator.add_disks(2, region="ap-shanghai", tags={"backup": "fleet"})
    emulator.add_disks(2, tags={"backup": "never"})

    response = run({"selector": {"tags": {"backup": "fleet"}, "regions": ["ap-guangzhou", "ap-shanghai"]}})

    assert response["succeeded"] == 5 and response["total"] == 5
    assert created_disks(emulator) == sorted(gz + sh)
    regions = {r["storageId"]: r["region"] for r in response["results"]}
    assert {regions[d] for d in sh} == {"ap-shanghai"} and {regions[d] for d in gz} == {"ap-guangzhou"}
    shanghai_creates = [c for c in emulator.calls(action="CreateSnapshot") if c["region"] == "ap-shanghai"]
    assert sorted(c["params"]["DiskId"] for c in shanghai_creates) == sorted(sh)


def test_tags_and_instances_narrow_together(emulator: Emulator, harness: RuntimeHarness) -> None:
    # the demo seed: ins-3xa9k2lm holds disk-g73hhs4o (app=web) and disk-k2v8p4tq (app=web);
    # ins-7hd2k4pz holds disk-q7m3x9ab (app=db) and disk-r5n8c2wd (no SnapshotAbility)
    response = run({"selector": {"tags": {"app": "web"}, "instanceIds": ["ins-3xa9k2lm", "ins-7hd2k4pz"]}})
    assert sorted(r["storageId"] for r in response["results"]) == ["disk-g73hhs4o", "disk-k2v8p4tq"]
    [flt] = [c for c in emulator.calls(action="DescribeDisks") if c["params"].get("Filters")]
    names = {f["Name"] for f in flt["params"]["Filters"]}
    assert names == {"tag:app", "instance-id"} and flt["params"]["Limit"] == 100


def test_explicit_and_selector_combine_dedupe_and_exclude(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    response = run(
        {
            "disks": [{"storageId": "disk-g73hhs4o", "snapshotName": "explicit"}, "disk-aaaaaaa1"],
            "selector": {"instanceIds": ["ins-3xa9k2lm"], "exclude": ["disk-k2v8p4tq", "disk-aaaaaaa1"]},
        }
    )
    by_disk = {r["storageId"]: r for r in response["results"]}
    # g73hhs4o named explicitly and matched by the selector: once, with the explicit name;
    # aaaaaaa1 named explicitly but excluded; k2v8p4tq matched but excluded
    assert set(by_disk) == {"disk-g73hhs4o"}
    assert by_disk["disk-g73hhs4o"]["snapshotName"] == "explicit"
    assert created_disks(emulator) == ["disk-g73hhs4o"]


def test_unsnapshottable_disks_are_answered_without_a_create(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    emulator.add_disk("disk-recycle1", tags={"fleet": "x"}, disk_state="TORECYCLE")
    emulator.add_disk("disk-shared01", tags={"fleet": "x"}, shareable=True)
    emulator.add_disk("disk-noabil01", tags={"fleet": "x"}, snapshot_ability=False)
    emulator.add_disk("disk-fine0001", tags={"fleet": "x"})
    response = run({"selector": {"tags": {"fleet": "x"}}})
    codes = {r["storageId"]: r["code"] for r in response["results"]}
    assert codes == {
        "disk-recycle1": 16007,
        "disk-shared01": 16026,
        "disk-noabil01": 16026,
        "disk-fine0001": 0,
    }
    assert created_disks(emulator) == ["disk-fine0001"]


def test_request_region_applies_to_explicit_disks(emulator: Emulator, harness: RuntimeHarness) -> None:
    [sh] = emulator.add_disks(1, region="ap-shanghai")
    response = run({"disks": [sh], "region": "ap-shanghai"})
    assert response["results"][0]["code"] == 0 and response["results"][0]["region"] == "ap-shanghai"
    # the same disk asked for in the function's region does not exist there
    again = run({"disks": [sh]})
    assert again["results"][0]["code"] == 9003 and "ap-guangzhou" in again["results"][0]["message"]


def test_selector_that_matches_nothing_and_an_empty_selector(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    none = run({"selector": {"tags": {"nobody": "uses-this"}}})
    assert none["total"] == 0 and none["results"] == []
    empty = run({"selector": {"regions": ["ap-guangzhou"]}})
    assert [r["code"] for r in empty["results"]] == [9003]
    assert "every disk" in empty["results"][0]["message"]
    assert emulator.calls(action="CreateSnapshot") == []


def test_selector_failure_in_one_region_is_reported_the_other_proceeds(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    from cbsnap_emulator import Fault

    gz = emulator.add_disks(2, tags={"t": "1"})
    emulator.add_fault(Fault(action="DescribeDisks", code="UnauthorizedOperation", region="ap-shanghai"))
    response = run({"selector": {"tags": {"t": "1"}, "regions": ["ap-guangzhou", "ap-shanghai"]}})
    failed = [r for r in response["results"] if r["code"] != 0]
    assert [r["code"] for r in failed] == [4100] and "ap-shanghai" in failed[0]["message"]
    assert created_disks(emulator) == sorted(gz)
