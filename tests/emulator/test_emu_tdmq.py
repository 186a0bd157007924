"""TDMQ CMQ: SendCmqMsg / PublishCmqMsg and the local consumer."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cbsnap_emulator import Emulator


@pytest.fixture
def cmq(emulator: Emulator) -> Emulator:
    emulator.add_queue("cbsnap-results")
    emulator.add_topic("cbsnap-events")
    return emulator


def test_send_and_receive_with_delay(cmq: Emulator, sdk: Any) -> None:
    now = sdk.tdmq("SendCmqMsg", QueueName="cbsnap-results", MsgContent='{"ok": true}', DelaySeconds=0)
    later = sdk.tdmq("SendCmqMsg", QueueName="cbsnap-results", MsgContent="later", DelaySeconds=60)
    assert now["Result"] is True and re.fullmatch(r"[0-9A-F]{32}", now["MsgId"])
    assert [m["MsgId"] for m in cmq.receive("cbsnap-results")] == [now["MsgId"]]
    assert cmq.receive("cbsnap-results") == []
    cmq.advance(60)
    [message] = cmq.receive("cbsnap-results")
    assert (message["MsgId"], message["MsgContent"], message["DelaySeconds"]) == (later["MsgId"], "later", 60)
    assert message["QueueName"] == "cbsnap-results" and message["VisibleAt"] == pytest.approx(
        message["time"] + 60
    )
    assert len(cmq.messages(queue="cbsnap-results")) == 2  # the log keeps received messages


def test_receive_max_and_explicit_now(cmq: Emulator, sdk: Any) -> None:
    for i in range(5):
        sdk.tdmq("SendCmqMsg", QueueName="cbsnap-results", MsgContent=f"m{i}", DelaySeconds=10)
    assert cmq.receive("cbsnap-results", now=cmq.now) == []
    got = cmq.receive("cbsnap-results", max_messages=3, now=cmq.now + 10)
    assert [m["MsgContent"] for m in got] == ["m0", "m1", "m2"]
    with pytest.raises(KeyError):
        cmq.receive("no-such-queue")


def test_publish_to_topic(cmq: Emulator, sdk: Any) -> None:
    resp = sdk.tdmq("PublishCmqMsg", TopicName="cbsnap-events", MsgContent="done", MsgTag=["snapshot", "ok"])
    [message] = cmq.messages(topic="cbsnap-events")
    assert (message["MsgId"], message["MsgTag"], message["TopicName"]) == (
        resp["MsgId"],
        ["snapshot", "ok"],
        "cbsnap-events",
    )
    assert cmq.messages(queue="cbsnap-results") == []


Q, T, BAD = "cbsnap-results", "cbsnap-events", "InvalidParameterValue"


@pytest.mark.parametrize(
    ("action", "params", "code"),
    [
        ("SendCmqMsg", {"QueueName": "nope", "MsgContent": "x", "DelaySeconds": 0}, "ResourceNotFound"),
        ("PublishCmqMsg", {"TopicName": "nope", "MsgContent": "x"}, "ResourceNotFound"),
        ("SendCmqMsg", {"QueueName": Q, "MsgContent": "x" * (1024 * 1024 + 1), "DelaySeconds": 0}, BAD),
        ("PublishCmqMsg", {"TopicName": T, "MsgContent": "é" * (512 * 1024 + 1)}, BAD),
        ("SendCmqMsg", {"QueueName": Q, "MsgContent": "x"}, "MissingParameter"),
        ("SendCmqMsg", {"QueueName": Q, "DelaySeconds": 0}, "MissingParameter"),
        ("SendCmqMsg", {"MsgContent": "x", "DelaySeconds": 0}, "MissingParameter"),
        ("SendCmqMsg", {"QueueName": Q, "MsgContent": "x", "DelaySeconds": -1}, BAD),
        ("SendCmqMsg", {"QueueName": Q, "MsgContent": "x", "DelaySeconds": 3601}, BAD),
        ("SendCmqMsg", {"QueueName": Q, "MsgContent": "", "DelaySeconds": 0}, BAD),
        ("PublishCmqMsg", {"TopicName": T, "MsgContent": "x", "MsgTag": ["t" * 65]}, BAD),
    ],
)
def test_tdmq_errors(cmq: Emulator, sdk: Any, action: str, params: dict[str, Any], code: str) -> None:
    assert sdk.tdmq_error(action, **params).code == code
    assert cmq.messages() == []


def test_one_megabyte_is_allowed(cmq: Emulator, sdk: Any) -> None:
    sdk.tdmq("SendCmqMsg", QueueName="cbsnap-results", MsgContent="x" * (1024 * 1024), DelaySeconds=0)
    assert len(cmq.messages()) == 1


def test_tdmq_calls_are_recorded_by_service(cmq: Emulator, sdk: Any) -> None:
    sdk.tdmq("PublishCmqMsg", TopicName="cbsnap-events", MsgContent="x")
    sdk.cbs("DescribeDisks")
    [call] = cmq.calls(service="tdmq")
    assert (call["action"], call["params"]["TopicName"], call["error"]) == (
        "PublishCmqMsg",
        "cbsnap-events",
        None,
    )
    assert [c["action"] for c in cmq.calls(action="DescribeDisks")] == ["DescribeDisks"]
