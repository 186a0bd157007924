"""The deployed entry point: ``index.main_handler`` routes each event to its trigger's handler.

Also the bad-bytes regressions (issue 9, finding 9), through the entry point and with a log
stream that encodes strictly to UTF-8, as SCF's stdout does: a line that cannot be encoded
is not written at all, so "the result reached CLS" means "the line is in the stream".
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from cbsnap.runtime import Runtime, set_runtime
from cbsnap_emulator import Emulator
from handlers.index import main_handler, route
from tests.conftest import (
    EVENTS,
    FAST_POLICY,
    RuntimeHarness,
    ckafka_event,
    emulator_settings,
    load_event,
    scf_context,
)

# A sample's file name starts with its trigger; SCF's CMQ trigger is retired (no cmq sample:
# TDMQ-CMQ pushes through the function URL, function-url-cmq-push.json).
EXPECTED = {
    "timer": "timer",
    "ckafka": "messages",
    "tdmq": "messages",
    "eventbridge": "messages",
    "apigw": "webhook",
    "function": "webhook",  # function-url-*.json: the function URL's HTTP events
}


def _prefix(name: str) -> str:
    return name.split("-", maxsplit=1)[0].split(".", maxsplit=1)[0]


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in EVENTS.glob("*.json")),
)
def test_every_sample_event_has_a_route(name: str) -> None:
    assert _prefix(name) in EXPECTED, f"{name}: no route expected for its prefix"
    assert route(load_event(name)) == EXPECTED[_prefix(name)]


def test_the_samples_are_today_s_triggers_and_each_route_has_one() -> None:
    """No table entry outlives its samples (the retired CMQ trigger's), and no sample is one."""
    assert {_prefix(p.name) for p in EVENTS.glob("*.json")} == set(EXPECTED)
    for path in EVENTS.glob("*.json"):
        records = load_event(path.name).get("Records") or []
        kinds = {str(key).lower() for record in records for key in record}
        assert "cmq" not in kinds, f"{path.name} holds a CMQ trigger record"


@pytest.mark.parametrize(
    "event", [None, 42, [], "Timer", {}, {"Type": "Cos"}, {"requestContext": "x"}, {"Records": "x"}]
)
def test_anything_else_goes_to_the_messages_handler(event: Any) -> None:
    assert route(event) == "messages"


# The function URL's event: API Gateway's shape without requestContext, isBase64Encoded,
# headerParameters, pathParameters and queryStringParameters (cloud.tencent.com/document/product/583/96099).
FUNCTION_URL_EVENT = {
    "body": '{"storageId": "disk-g73hhs4o"}',
    "headers": {"content-type": "application/json", "x-scf-remote-addr": "203.0.113.7"},
    "httpMethod": "POST",
    "path": "/snapshots",
    "queryString": {},
}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (FUNCTION_URL_EVENT, "webhook"),
        ({**FUNCTION_URL_EVENT, "path": "/push/cmq", "queryString": {"token": "t"}}, "webhook"),
        ({"httpMethod": "GET", "path": "/snapshots/snap-abcdefgh"}, "webhook"),
        ({"EventList": [load_event("tdmq.json")]}, "messages"),
        ({"EventList": []}, "messages"),
        (load_event("tdmq.json"), "messages"),
        ({"storageId": "disk-g73hhs4o"}, "invoked"),  # a plain request document (Invoke)
        ({"cbsnapChunk": {}}, "invoked"),  # asynchronous self-invocations
        ({"cbsnapRecheck": {}}, "invoked"),
        # an HTTP look-alike that is not one: no method, or a path that is not text
        ({"path": "/snapshots"}, "messages"),
        ({"httpMethod": "POST", "path": 7}, "messages"),
    ],
)
def test_every_shape_scf_delivers_today_is_told_apart(event: Any, expected: str) -> None:
    assert route(event) == expected


def test_a_timer_event_through_the_entry_point(emulator: Emulator, harness: RuntimeHarness) -> None:
    response = main_handler(load_event("timer-seed-example.json"), scf_context())
    [result] = response["results"]
    assert response["trigger"] == "timer" and result["code"] == 0
    assert result["snapshotId"] in [s["SnapshotId"] for s in emulator.snapshots("disk-g73hhs4o")]


def test_an_unrecognisable_event_is_reported_not_raised(emulator: Emulator, harness: RuntimeHarness) -> None:
    response = main_handler({"hello": "world"}, scf_context())
    assert [r["code"] for r in response["results"]] == [9003]
    assert emulator.calls() == []


# -- bad bytes: every result reaches the log as valid JSON, whatever the input -----------------


class StrictLog:
    """A runtime whose log stream encodes strictly to UTF-8, like SCF's stdout."""

    def __init__(self, emu: Emulator) -> None:
        self.buffer = io.BytesIO()
        self.stream = io.TextIOWrapper(self.buffer, encoding="utf-8", errors="strict", write_through=True)
        settings = emulator_settings(emu, webhook_secret=SecretStr("strict-log-webhook-secret-0123456789"))
        self.runtime = Runtime.from_settings(settings, stream=self.stream, policy=FAST_POLICY)
        set_runtime(self.runtime)

    def records(self) -> list[dict[str, Any]]:
        """Every line written, each checked to be UTF-8 JSON without NaN or Infinity."""
        self.stream.flush()
        return [strict_json(line) for line in self.buffer.getvalue().decode("utf-8").splitlines() if line]

    def results(self) -> list[dict[str, Any]]:
        """The per-disk results that reached the log."""
        return [r["result"] for r in self.records() if "result" in r]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def strict_json(text: str) -> Any:
    """``json.loads`` as a strict consumer reads: UTF-8 encodable, no NaN / Infinity."""
    text.encode("utf-8")
    return json.loads(text, parse_constant=_refuse_constant)


@pytest.fixture
def strict(emulator: Emulator) -> Iterator[StrictLog]:
    log = StrictLog(emulator)
    yield log
    set_runtime(None)


def creates(emu: Emulator) -> list[dict[str, Any]]:
    return emu.calls(action="CreateSnapshot")


SURROGATE = "\ud800"


@pytest.mark.parametrize("field", ["TriggerName", "Time"])
def test_a_timer_identifier_that_is_not_text_is_refused_not_raised(
    emulator: Emulator, strict: StrictLog, field: str
) -> None:
    event = load_event("timer-seed-example.json")
    event[field] = "nightly" + SURROGATE
    response = main_handler(event, scf_context())
    [result] = response["results"]
    assert result["code"] == 9003 and field in result["message"]
    strict_json(json.dumps(response, ensure_ascii=False).replace(SURROGATE, ""))
    assert creates(emulator) == []
    assert [r["code"] for r in strict.results()] == [9003]


def test_a_ckafka_topic_that_is_not_text_is_one_bad_record(emulator: Emulator, strict: StrictLog) -> None:
    event = load_event("ckafka.json")
    bad = json.loads(json.dumps(event["Records"][0]))
    bad["Ckafka"]["topic"] = "cbsnap" + SURROGATE
    event["Records"].insert(0, bad)
    response = main_handler(event, scf_context())
    codes = [r["code"] for r in response["results"]]
    assert codes[0] == 9003 and "Records[0]" in response["results"][0]["message"]
    assert codes[1:] and all(c == 0 for c in codes[1:])
    assert len(strict.results()) == len(codes)


# superscript two, Arabic-Indic three, fullwidth one, NKo zero: str.isdigit() says yes to each
@pytest.mark.parametrize("partition", ["\u00b2", "\u0663", "\uff11", "\u07c0"])
def test_a_unicode_digit_partition_is_one_bad_record_and_its_neighbour_runs(
    emulator: Emulator, strict: StrictLog, partition: str
) -> None:
    good = {"topic": "t", "partition": 0, "offset": 7, "msgBody": json.dumps({"storageId": "disk-lzrg2pwi"})}
    bad = {**good, "partition": partition, "offset": 8}
    response = main_handler({"Records": [{"Ckafka": bad}, {"Ckafka": good}]}, scf_context())
    first, second = response["results"]
    assert first["code"] == 9003 and "partition" in first["message"]
    assert second["code"] == 0 and second["messageId"] == "t/0/7"
    assert [c["params"]["DiskId"] for c in creates(emulator)] == ["disk-lzrg2pwi"]


def test_a_correlation_string_that_is_not_text_is_a_9003_naming_the_field(
    emulator: Emulator, strict: StrictLog
) -> None:
    body = '{"storageId": "disk-g73hhs4o", "correlation": {"pipeline": "run-\\ud800"}}'
    response = main_handler(ckafka_event(body, topic="strict", start=1), scf_context())
    [result] = response["results"]
    assert result["code"] == 9003 and "correlation" in result["message"] and "pipeline" in result["message"]
    assert creates(emulator) == [], "nothing is snapshotted that the log could not report"
    assert [r["code"] for r in strict.results()] == [9003], "the result reached the log"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_correlation_number_is_a_9003_naming_the_field(
    emulator: Emulator, strict: StrictLog, constant: str
) -> None:
    body = f'{{"storageId": "disk-g73hhs4o", "correlation": {{"run": {{"score": {constant}}}}}}}'
    response = main_handler(ckafka_event(body, topic="strict", start=2), scf_context())
    [result] = response["results"]
    assert result["code"] == 9003 and "correlation" in result["message"] and "score" in result["message"]
    json.dumps(response, allow_nan=False)
    assert creates(emulator) == []
    assert [r["code"] for r in strict.results()] == [9003]


def test_a_lone_surrogate_echoed_from_a_bad_disk_still_reaches_the_log(
    emulator: Emulator, strict: StrictLog
) -> None:
    """The last line of defence: text that reaches a result unvalidated is replaced in the line."""
    body = '{"disks": ["disk-g73hhs4o", "disk-\\udfff\\ud800x"]}'  # reversed: not a pair
    response = main_handler(ckafka_event(body, topic="strict", start=3), scf_context())
    assert sorted(r["code"] for r in response["results"]) == [0, 9003]
    logged = strict.results()
    assert sorted(r["code"] for r in logged) == [0, 9003]
    assert any("\ufffd" in (r["storageId"] or "") for r in logged)


@pytest.mark.parametrize("separator", ["\x85", "\u2028", "\u2029"])
def test_a_unicode_line_separator_keeps_the_record_on_one_line(
    emulator: Emulator, strict: StrictLog, separator: str
) -> None:
    """Valid text that many readers (str.splitlines, JavaScript) take for a line break: found by
    the fuzz tests in a timer's TriggerName, which every record of the firing carries."""
    event = load_event("timer-seed-example.json")
    event["TriggerName"] = f"nightly{separator}run"
    response = main_handler(event, scf_context())
    assert [r["code"] for r in response["results"]] == [0]
    assert [r["code"] for r in strict.results()] == [0]
    assert len(strict.buffer.getvalue().decode("utf-8").splitlines()) == len(strict.records())
