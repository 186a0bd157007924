"""Expiry at creation (CreateSnapshot Deadline) and correlation echoed into results and tags."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from cbsnap_emulator import Emulator
from tests.conftest import RuntimeHarness, emulator_settings, owned_snapshots, run_timer


def run(document: dict[str, Any]) -> dict[str, Any]:
    return run_timer(document, name="x")


def sent_deadline(emulator: Emulator) -> str | None:
    [call] = emulator.calls(action="CreateSnapshot")
    deadline: str | None = call["params"].get("Deadline")
    return deadline


def test_retain_days_becomes_the_create_calls_deadline(emulator: Emulator, harness: RuntimeHarness) -> None:
    before = datetime.now(timezone.utc)
    response = run({"storageId": "disk-aaaaaaa1", "retainDays": 3})
    assert response["results"][0]["code"] == 0
    deadline = datetime.fromisoformat(sent_deadline(emulator) or "")
    assert deadline.utcoffset() == timedelta(0)
    assert timedelta(days=3) - timedelta(seconds=5) < deadline - before < timedelta(days=3, seconds=5)
    [snap] = owned_snapshots(emulator, "disk-aaaaaaa1")
    assert snap["IsPermanent"] is False and snap["DeadlineTime"]


def test_explicit_deadline_is_sent_in_utc(emulator: Emulator, harness: RuntimeHarness) -> None:
    when = (datetime.now(timezone(timedelta(hours=8))) + timedelta(days=10)).replace(microsecond=0)
    run({"storageId": "disk-aaaaaaa1", "deadline": when.isoformat()})
    assert sent_deadline(emulator) == when.astimezone(timezone.utc).isoformat()


def test_deadline_under_one_day_is_9003_without_an_api_call(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    soon = (datetime.now(timezone.utc) + timedelta(hours=20)).isoformat()
    response = run({"disks": ["disk-aaaaaaa1", "disk-aaaaaaa2"], "deadline": soon})
    assert [r["code"] for r in response["results"]] == [9003, 9003]
    assert (
        "at least one day" in response["results"][0]["message"]
        or "one day" in response["results"][0]["message"]
    )
    assert emulator.calls() == []


def test_deadline_without_zone_and_both_fields_are_refused(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    naive = run({"storageId": "disk-aaaaaaa1", "deadline": "2030-01-01T00:00:00"})
    both = run({"storageId": "disk-aaaaaaa1", "deadline": "2030-01-01T00:00:00+00:00", "retainDays": 2})
    assert naive["results"][0]["code"] == 9003 and "timezone" in naive["results"][0]["message"]
    assert both["results"][0]["code"] == 9003 and "not both" in both["results"][0]["message"]
    assert emulator.calls() == []


def test_trigger_default_applies_and_a_request_overrides_it(emulator: Emulator) -> None:
    RuntimeHarness(emulator_settings(emulator, retain_days_timer=7))
    run({"storageId": "disk-aaaaaaa1"})
    deadline = datetime.fromisoformat(sent_deadline(emulator) or "")
    assert timedelta(days=6, hours=23) < deadline - datetime.now(timezone.utc) < timedelta(days=7, minutes=1)
    emulator.reset_calls()
    emulator.advance(5)
    run({"storageId": "disk-aaaaaaa2", "retainDays": 2})
    deadline = datetime.fromisoformat(sent_deadline(emulator) or "")
    assert deadline - datetime.now(timezone.utc) < timedelta(days=2, minutes=1)


def test_no_expiry_by_default_for_timers(emulator: Emulator, harness: RuntimeHarness) -> None:
    run({"storageId": "disk-aaaaaaa1"})
    assert sent_deadline(emulator) is None


def test_correlation_is_echoed_into_results_and_tags(emulator: Emulator, harness: RuntimeHarness) -> None:
    correlation = {"pipeline": "run-77", "commit": "9f1c2e", "attempt": 2, "nested": {"ignored": "in tags"}}
    response = run({"disks": ["disk-aaaaaaa1", "disk-bad"], "correlation": correlation})
    assert all(r["correlation"] == correlation for r in response["results"])
    [snap] = owned_snapshots(emulator, "disk-aaaaaaa1")
    tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
    assert tags["cbsnap:corr:pipeline"] == "run-77"
    assert tags["cbsnap:corr:commit"] == "9f1c2e" and tags["cbsnap:corr:attempt"] == "2"
    assert not any("nested" in k for k in tags)
    records = [r for r in harness.log_records() if "result" in r]
    assert all(r["correlation"] == correlation for r in records)
