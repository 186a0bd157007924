"""The metrics line: one per invocation, the documented fields in order, on every trigger."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from cbsnap.errors import RunUnfinished
from cbsnap.metrics import metered
from cbsnap.runtime import set_runtime
from cbsnap_emulator import Emulator, Fault
from handlers.messages import main_handler as messages_handler
from tests.conftest import ROOT, RuntimeHarness, ckafka_event, emulator_settings, run_timer, scf_context
from tests.functional.test_webhook_handler import call, post, request

SEED = {"storageId": "disk-g73hhs4o", "snapshotName": "mySnap"}


def documented_fields() -> list[str]:
    """The field column of docs/alarms.md's schema table, in order."""
    text = (ROOT / "docs" / "alarms.md").read_text(encoding="utf-8")
    table = text.split("| field | type | meaning |", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", table, flags=re.MULTILINE)


def metrics_lines(harness: RuntimeHarness) -> list[dict[str, Any]]:
    return [r for r in harness.log_records() if r.get("type") == "cbsnap.metrics"]


def fields_of(record: dict[str, Any]) -> list[str]:
    envelope = {"level", "location", "message", "timestamp", "service", "request_id"}
    return [k for k in record if k not in envelope]


def test_timer_line_is_last_and_has_the_documented_fields(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    run_timer({"disks": ["disk-g73hhs4o", "disk-r5n8c2wd"], "snapshotName": "n"}, name="nightly")
    records = harness.log_records()
    [line] = metrics_lines(harness)
    assert records[-1] is not None and records[-1].get("type") == "cbsnap.metrics", "written after everything"
    assert fields_of(line) == documented_fields()
    assert line["message"] == "cbsnap.metrics" and line["request_id"] == "test-request-id"
    assert (line["trigger"], line["requestKey"], line["requests"]) == (
        "timer",
        "timer/nightly/2026-11-28T02:00:00Z",
        1,
    )
    assert (line["disks"], line["created"], line["adopted"]) == (2, 1, 0)
    assert line["failed"] == {"16026": 1} and line["failedTotal"] == 1 and line["notAttempted"] == 0
    assert line["calls"] == {"CreateSnapshot": 1, "DescribeDisks": 1, "DescribeSnapshots": 1}
    assert line["callsTotal"] == len(emulator.calls()) == 3
    assert line["redelivery"] is False and line["error"] is None and isinstance(line["durationMs"], int)


def test_a_redelivered_timer_run_adopts_and_says_so(emulator: Emulator, harness: RuntimeHarness) -> None:
    run_timer(SEED, name="again")
    run_timer(SEED, name="again")
    first, second = metrics_lines(harness)
    assert (first["created"], first["adopted"]) == (1, 0) and (second["created"], second["adopted"]) == (0, 1)


def test_messages_line_counts_every_request_of_the_batch(emulator: Emulator, harness: RuntimeHarness) -> None:
    messages_handler(ckafka_event({"disks": ["disk-g73hhs4o"]}, {"disks": ["disk-q7m3x9ab"]}), None)
    [line] = metrics_lines(harness)
    assert fields_of(line) == documented_fields()
    assert (line["trigger"], line["requests"], line["created"]) == ("messages", 2, 2)


def test_invoked_line(emulator: Emulator, harness: RuntimeHarness) -> None:
    from handlers.invoked import main_handler as invoked_handler

    invoked_handler({"disks": ["disk-g73hhs4o"], "idempotencyKey": "direct-1"}, scf_context())
    [line] = metrics_lines(harness)
    assert fields_of(line) == documented_fields()
    assert (line["trigger"], line["requestKey"], line["created"]) == ("invoked", "key/direct-1", 1)


def test_webhook_line(emulator: Emulator) -> None:
    harness = RuntimeHarness(emulator_settings(emulator, webhook_auth="gateway"))
    try:
        status, _ = call(post(SEED, secret=None))
        assert status == 200
        assert call(request("GET", "/nowhere", secret=None))[0] == 404
    finally:
        set_runtime(None)
    created, refused = metrics_lines(harness)
    assert fields_of(created) == fields_of(refused) == documented_fields()
    assert (created["trigger"], created["created"]) == ("webhook", 1)
    assert (refused["requests"], refused["requestKey"], refused["callsTotal"]) == (0, None, 0)


def test_unfinished_run_is_a_redelivery_with_its_line_first(
    emulator: Emulator, harness: RuntimeHarness
) -> None:
    emulator.add_fault(Fault(action="CreateSnapshot", code="InternalError"))
    with pytest.raises(RunUnfinished):
        run_timer(SEED, name="broken")
    [line] = metrics_lines(harness)
    assert line["redelivery"] is True and line["error"] is None
    assert (
        line["failed"] == {"6000": 1} and line["calls"]["CreateSnapshot"] == 4
    )  # four attempts, all counted


def test_throttled_calls_are_counted(emulator: Emulator) -> None:
    # pacing off, and the emulator allows 1 CreateSnapshot a second: the burst is throttled and retried
    harness = RuntimeHarness(emulator_settings(emulator, rate_limit=0))
    emulator.set_rate_limit(1, "CreateSnapshot")
    try:
        run_timer({"disks": ["disk-g73hhs4o", "disk-q7m3x9ab", "disk-w9f4h1sz"]}, name="busy")
    finally:
        set_runtime(None)
    [line] = metrics_lines(harness)
    throttled = [c for c in emulator.calls(action="CreateSnapshot") if c["error"] == "RequestLimitExceeded"]
    assert line["created"] == 3 and line["throttled"] == len(throttled) > 0
    assert line["calls"]["CreateSnapshot"] == len(emulator.calls(action="CreateSnapshot"))


def test_the_line_is_written_at_any_log_level(emulator: Emulator) -> None:
    harness = RuntimeHarness(emulator_settings(emulator, log_level="ERROR"))
    try:
        run_timer(SEED, name="quiet")
    finally:
        set_runtime(None)
    assert [r["message"] for r in harness.log_records()] == ["cbsnap.metrics"]


def test_an_unexpected_exception_is_named_and_re_raised(emulator: Emulator, harness: RuntimeHarness) -> None:
    @metered("timer")
    def broken(event: Any, context: Any) -> None:
        raise LookupError("boom")

    with pytest.raises(LookupError):
        broken({}, None)
    [line] = metrics_lines(harness)
    assert line["error"] == "LookupError" and line["requests"] == 0 and fields_of(line) == documented_fields()


def test_without_a_runtime_the_line_still_reaches_stdout(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cbsnap.settings import get_settings

    set_runtime(None)
    monkeypatch.setenv("CBSNAP_CONCURRENCY", "many")  # a bad environment: no runtime can be built
    get_settings.cache_clear()
    try:
        metered("webhook")(lambda event, context: None)({}, None)
    finally:
        get_settings.cache_clear()
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["type"] == "cbsnap.metrics" and line["trigger"] == "webhook"
    assert fields_of(line) == documented_fields()


def test_secrets_never_reach_the_line(emulator: Emulator, harness: RuntimeHarness) -> None:
    run_timer({**SEED, "correlation": {"token": "cbsnapEmulatorSecretKey0000000000000"}}, name="s")
    assert metrics_lines(harness) and "cbsnapEmulatorSecretKey" not in harness.stream.getvalue()
