"""docs/alarms.md: every documented CLS alarm, its CreateAlarm body and its query's logic.

How (docs/alarms.md, "How these definitions are tested"): the bodies load into the CLS SDK's
``CreateAlarmRequest`` without an unknown-field warning; the handlers run against the emulator
and their real metrics lines become the log; each query runs over those lines in SQLite after a
small mechanical translation (CQL search -> substring filter, ``json_extract_scalar`` ->
``json_extract``, the query window -> a time filter), and the condition is evaluated with CLS's
operators, ``TriggerCount`` times at the policy's period.
"""

from __future__ import annotations

import ast
import json
import re
import sqlite3
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from tencentcloud.cls.v20201016 import models as cls_models

from cbsnap.metrics import metered
from cbsnap.runtime import set_runtime
from cbsnap_emulator import Emulator, load_seed
from handlers.messages import main_handler as messages_handler
from tests.conftest import ROOT, RuntimeHarness, ckafka_event, emulator_settings, run_timer

MINUTE = 60
HOUR = 3600
T0 = 1_800_000_000  # the history's origin (any instant: only differences matter)


def documented_alarms() -> dict[str, dict[str, Any]]:
    text = (ROOT / "docs" / "alarms.md").read_text(encoding="utf-8")
    bodies = [json.loads(b) for b in re.findall(r"```json alarm\n(.*?)```", text, flags=re.S)]
    return {body["Name"]: body for body in bodies}


ALARMS = documented_alarms()
ANY_FAILURE = "cbsnap: any failure"
RPO_GUARD = "cbsnap: no successful nightly run for 26 h"
STUCK = "cbsnap: snapshots stuck in CREATING"
THROTTLING = "cbsnap: throttled by the API"


def test_the_page_documents_the_four_alarms() -> None:
    assert set(ALARMS) == {ANY_FAILURE, RPO_GUARD, STUCK, THROTTLING}


@pytest.mark.parametrize("name", sorted(ALARMS))
def test_each_body_is_a_create_alarm_request(name: str) -> None:
    body = ALARMS[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        request = cls_models.CreateAlarmRequest()
        request.from_json_string(json.dumps(body))
    assert [str(w.message) for w in caught] == [], "every field is the SDK's"
    [target] = request.AlarmTargets
    assert -1440 <= target.StartTimeOffset < target.EndTimeOffset <= 0 and target.SyntaxRule == 1
    assert request.MonitorTime.Type == "Period" and 1 <= request.MonitorTime.Time <= 1440
    assert 1 <= request.TriggerCount <= 2000 and 0 <= request.AlarmPeriod <= 1440


# -- real metrics lines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lines:
    """One real metrics line of each kind of run."""

    nightly_ok: str
    nightly_failed: str
    weekly_ok: str
    report_stuck: str
    report_clean: str
    throttled: str
    messages_ok: str
    crashed: str


def _metrics(harness: RuntimeHarness) -> str:
    lines = [
        x for x in harness.stream.getvalue().splitlines() if json.loads(x).get("type") == "cbsnap.metrics"
    ]
    harness.stream.seek(0)
    harness.stream.truncate()
    return lines[-1]


@pytest.fixture(scope="module")
def lines() -> Iterator[Lines]:
    # snapshots take a month here, so a CREATING snapshot seeded 8 h ago is stuck
    emu = Emulator(load_seed(None), creation_seconds=30 * 24 * HOUR, rng_seed=3)
    emu.add_disk("disk-stuck001")
    emu.add_snapshot("disk-stuck001", state="CREATING", created_at=emu.now - 8 * HOUR)
    emu.add_disk("disk-fresh001")
    emu.add_snapshot("disk-fresh001", created_at=emu.now - HOUR)
    emu.start()
    harness = RuntimeHarness(emulator_settings(emu, rate_limit=0))
    try:
        run_timer({"disks": ["disk-g73hhs4o"]}, name="nightly")
        nightly_ok = _metrics(harness)
        run_timer({"disks": ["disk-r5n8c2wd"]}, name="nightly", time="2026-11-29T02:00:00Z")
        nightly_failed = _metrics(harness)
        run_timer({"disks": ["disk-q7m3x9ab"]}, name="weekly")
        weekly_ok = _metrics(harness)
        run_timer({"action": "report", "disks": ["disk-stuck001", "disk-fresh001"]}, name="coverage")
        report_stuck = _metrics(harness)
        run_timer({"action": "report", "disks": ["disk-fresh001"]}, name="coverage2")
        report_clean = _metrics(harness)
        emu.set_rate_limit(1, "CreateSnapshot")
        run_timer({"disks": ["disk-w9f4h1sz", "disk-u2j6t8ye", "disk-k2v8p4tq"]}, name="burst")
        throttled = _metrics(harness)
        emu.set_rate_limit(20, "CreateSnapshot")
        messages_handler(ckafka_event({"disks": ["disk-s8h3m6qa"], "region": "ap-shanghai"}), None)
        messages_ok = _metrics(harness)

        @metered("timer")
        def broken(event: Any, context: Any) -> None:
            raise KeyError("bug")

        with pytest.raises(KeyError):
            broken({}, None)
        crashed = _metrics(harness)
        yield Lines(
            nightly_ok, nightly_failed, weekly_ok, report_stuck, report_clean, throttled, messages_ok, crashed
        )
    finally:
        set_runtime(None)
        emu.stop()


def test_the_lines_are_what_their_names_say(lines: Lines) -> None:
    line = {name: json.loads(getattr(lines, name)) for name in Lines.__dataclass_fields__}
    assert line["nightly_ok"]["created"] == 1 and line["nightly_ok"]["failedTotal"] == 0
    assert line["nightly_failed"]["failed"] == {"16026": 1}
    assert line["report_stuck"]["stuckSnapshots"] == 1 and line["report_clean"]["stuckSnapshots"] == 0
    assert line["throttled"]["throttled"] * 20 > line["throttled"]["callsTotal"]
    assert line["messages_ok"]["trigger"] == "messages" and line["crashed"]["error"] == "KeyError"


# -- the query logic ------------------------------------------------------------------------------------

History = list[tuple[int, str]]  # (unix seconds, SCF_Message)


def run_query(query: str, history: History, start: int, end: int) -> dict[str, Any]:
    """The first result row of a documented query over ``history`` within [start, end]."""
    search, sql = query.split("|", 1)
    phrases = re.findall(r'(\w+):"([^"]*)"', search)
    assert phrases and re.sub(r'(\w+):"([^"]*)"', "", search).replace("AND", "").strip() == "", search
    sql = re.sub(r"json_extract_scalar\(", "json_extract(", sql.strip(), flags=re.IGNORECASE)
    parsed = re.match(r"(?is)^select\s+(.*?)(?:\s+where\s+(.*))?$", sql)
    assert parsed is not None, sql
    conditions = [f"instr({field}, ?) > 0" for field, _ in phrases] + ["t BETWEEN ? AND ?"]
    if parsed.group(2):
        conditions.append(f"({parsed.group(2)})")
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    db.execute("CREATE TABLE logs (t INTEGER, SCF_Message TEXT)")
    db.executemany("INSERT INTO logs VALUES (?, ?)", history)
    statement = f"SELECT {parsed.group(1)} FROM logs WHERE {' AND '.join(conditions)}"
    row = db.execute(statement, [p for _, p in phrases] + [start, end]).fetchone()
    return dict(row)


_ALLOWED = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.Compare, ast.Gt, ast.GtE, ast.Lt, ast.LtE, ast.Eq,
    ast.NotEq, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.Name, ast.Load, ast.Constant,
)  # fmt: skip


def condition_holds(condition: str, row: dict[str, Any]) -> bool:
    """CLS's trigger condition (``$1.name``, arithmetic, comparisons, ``&&``, ``||``) over ``row``."""
    text = re.sub(r"\$1\.([A-Za-z]\w*)", r"v_\1", condition).replace("&&", " and ").replace("||", " or ")
    tree = ast.parse(text, mode="eval")
    assert all(isinstance(node, _ALLOWED) for node in ast.walk(tree)), condition
    try:
        return bool(
            eval(
                compile(tree, "<condition>", "eval"),
                {"__builtins__": {}},
                {f"v_{k}": v for k, v in row.items()},
            )
        )
    except TypeError:  # a NULL compared: no alarm
        return False


def fires(name: str, history: History, at: int) -> bool:
    """Whether the policy alarms at ``at``: its condition held on its last TriggerCount runs."""
    body = ALARMS[name]
    [target] = body["AlarmTargets"]
    period = body["MonitorTime"]["Time"] * MINUTE
    for run in range(body["TriggerCount"]):
        now = at - run * period
        row = run_query(
            target["Query"],
            history,
            now + target["StartTimeOffset"] * MINUTE,
            now + target["EndTimeOffset"] * MINUTE,
        )
        if not condition_holds(body["Condition"], row):
            return False
    return True


def test_any_failure(lines: Lines) -> None:
    now = T0
    quiet = [(now - 4 * MINUTE, lines.nightly_ok), (now - 2 * MINUTE, lines.messages_ok)]
    assert not fires(ANY_FAILURE, quiet, now)
    assert fires(ANY_FAILURE, [*quiet, (now - MINUTE, lines.nightly_failed)], now)
    assert fires(ANY_FAILURE, [*quiet, (now - MINUTE, lines.crashed)], now)
    assert fires(ANY_FAILURE, [(now - MINUTE, lines.report_stuck)], now), "a coverage gap is a failure"
    assert not fires(ANY_FAILURE, [*quiet, (now - 6 * MINUTE, lines.nightly_failed)], now), "outside 5 min"
    assert not fires(ANY_FAILURE, [], now)


def test_no_successful_run_within_the_rpo(lines: Lines) -> None:
    success = T0
    # afterwards: failed nightly runs, a successful weekly run, reports, messages: none is a nightly success
    noise = [
        (success + 24 * HOUR, lines.nightly_failed),
        (success + 20 * HOUR, lines.weekly_ok),
        (success + 23 * HOUR, lines.report_clean),
        (success + 25 * HOUR, lines.messages_ok),
    ]
    history = [(success, lines.nightly_ok), *noise]
    assert not fires(RPO_GUARD, history, success + 25 * HOUR), "25 h: within the RPO"
    assert not fires(RPO_GUARD, history, success + 26 * HOUR - MINUTE)
    assert fires(RPO_GUARD, history, success + 26 * HOUR + MINUTE), "26 h without a nightly success"
    assert fires(RPO_GUARD, noise, success + 30 * HOUR), "never a success: the schedule may be gone"
    later = [*history, (success + 25 * HOUR, lines.nightly_ok)]
    assert not fires(RPO_GUARD, later, success + 27 * HOUR), "a new success resets the clock"


def test_snapshots_stuck(lines: Lines) -> None:
    now = T0
    assert fires(STUCK, [(now - 20 * HOUR, lines.report_stuck)], now)
    assert not fires(STUCK, [(now - 2 * HOUR, lines.report_clean), (now - HOUR, lines.nightly_ok)], now)
    assert not fires(STUCK, [(now - 25 * HOUR, lines.report_stuck)], now), "yesterday's report is old news"


def test_throttling(lines: Lines) -> None:
    now = T0
    assert fires(THROTTLING, [(now - 5 * MINUTE, lines.throttled)], now)
    calm = [(now - m * MINUTE, lines.nightly_ok) for m in range(1, 14)]
    assert not fires(THROTTLING, calm, now)
    # one throttled run among enough calm ones that under 5 % of the calls were throttled: no alarm
    throttled, calm_calls = (
        json.loads(lines.throttled)["throttled"],
        json.loads(lines.messages_ok)["callsTotal"],
    )
    many = [(now - 10, lines.messages_ok)] * (throttled * 20 // calm_calls + 1)
    assert not fires(THROTTLING, [*many, (now - MINUTE, lines.throttled)], now)
