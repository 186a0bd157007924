"""Completion events through a re-check chain of asynchronous self-invocations (cbsnap.notify).

A request with ``"notify": "completed"`` hands on one re-check link (SCF ``Invoke``, recorded by
the emulator); each link runs through ``index.main_handler``, polls DescribeSnapshots until its
deadline, emits ``snapshot.completed`` / ``snapshot.failed`` / ``snapshot.timeout`` to the
request's sinks and hands the rest on to the next link. Most tests run the links in this process
with a sleep that moves the emulator's state clock (snapshots take two emulated minutes); one runs
them in fresh processes in real time.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from pydantic import SecretStr

from cbsnap.cbs_time import parse_cbs_time
from cbsnap.notify import RECHECK_FIELD, event_id, parse_recheck
from cbsnap.runtime import Runtime, set_runtime
from cbsnap.scf import Deadline
from cbsnap.webhook import handle_webhook
from cbsnap_emulator import Emulator, Fault, load_seed
from handlers.index import main_handler as index_handler
from handlers.timer import main_handler as timer_handler
from tests.conftest import DISKS, FAST_POLICY, ROOT, answer, emulator_settings, scf_context
from tests.functional.test_webhook_handler import NOW, SECRET, post

FUNCTION = "cbsnap-test"
REPLY = "deploy-events"
CREATION = 120.0  # emulated seconds from CREATING to NORMAL
CORRELATION = {"pipeline": "4711", "commit": "9fceb02"}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """The demo seed plus the test disks; snapshots take two (emulated) minutes; the function exists."""
    emulator = Emulator(load_seed(None), creation_seconds=CREATION, rng_seed=11)
    for disk_id, extra in DISKS.items():
        emulator.add_disk(disk_id, **extra)
    emulator.add_queue(REPLY)
    emulator.add_function(FUNCTION, code_dir=ROOT / "handlers", python_path=[ROOT / "lib"], timeout=30)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
        set_runtime(None)


class Cloud:
    """A runtime on the emulator whose clocks are the emulator's: ``sleep`` moves its state clock
    (snapshot progress) and a monotonic clock (the invocation's deadline) together."""

    def __init__(self, emulator: Emulator, **overrides: Any) -> None:
        self.emulator = emulator
        self.stream = io.StringIO()
        self.t = 0.0
        self._lock = threading.Lock()
        values: dict[str, Any] = {"notify_poll": 10.0, **overrides}
        self.runtime = Runtime.from_settings(
            emulator_settings(emulator, **values),
            stream=self.stream,
            policy=FAST_POLICY,
            sleep=self.sleep,
            clock=self.monotonic,
            wall_clock=lambda: datetime.fromtimestamp(emulator.now, timezone.utc),
        )
        set_runtime(self.runtime)

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.t += seconds
            self.emulator.advance(seconds)

    def run_links(self, max_rounds: int = 20) -> list[dict[str, Any]]:
        """Run every pending link (and the links they hand on) through index.main_handler, here."""
        return self.emulator.run_pending(max_rounds, here=index_handler)

    def logs(self, message: str) -> list[dict[str, Any]]:
        records = [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]
        return [r for r in records if r.get("message") == message]


def links(emulator: Emulator) -> list[dict[str, Any]]:
    """Every re-check link handed on (the Invoke events), oldest first."""
    events = [json.loads(i["event"]) for i in emulator.invocations()]
    return [e[RECHECK_FIELD] for e in events if RECHECK_FIELD in e]


def events(emulator: Emulator) -> list[tuple[dict[str, Any], dict[str, Any], float]]:
    """(envelope, event, when it was sent) for every completion event on the reply queue."""
    found = []
    for message in emulator.messages(queue=REPLY):
        envelope = json.loads(message["MsgContent"])
        found.extend((envelope, r, message["time"]) for r in envelope["results"] if r.get("action"))
    return found


def notified(disks: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "disks": disks,
        "notify": "completed",
        "replyTo": {"queue": REPLY},
        "correlation": CORRELATION,
        **extra,
    }


def firing(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "Timer",
        "TriggerName": "predeploy",
        "Time": "2026-11-28T02:00:00Z",
        "Message": json.dumps(document),
    }


def normal_at(emulator: Emulator, snapshot_id: str) -> float:
    """When the emulator made the snapshot NORMAL (its CreateTime plus the creation time)."""
    [snap] = [s for s in emulator.snapshots() if s["SnapshotId"] == snapshot_id]
    created = parse_cbs_time(snap["CreateTime"])
    assert created is not None
    return created.timestamp() + CREATION


def test_one_completion_event_per_snapshot_reaches_the_reply_queue_after_it_is_normal(emu: Emulator) -> None:
    """issue 10: notify + replyTo through the chain, each link through index.main_handler."""
    web = Cloud(emu, webhook_secret=SecretStr(SECRET))
    document = notified(["disk-g73hhs4o", "disk-lzrg2pwi"], idempotencyKey="predeploy-4711")
    reply = handle_webhook(post(document), scf_context(), web.runtime, clock=lambda: NOW)
    body = json.loads(reply["body"])
    assert reply["statusCode"] == 200 and body["succeeded"] == 2
    snapshots = {r["snapshotId"]: r["storageId"] for r in body["results"]}

    # One link for the whole request, handed on by Invoke and reported to the caller.
    [first] = links(emu)
    assert first["link"] == 1 and first["v"] == 2 and first["requestKey"] == "key/predeploy-4711"
    assert {s["snapshotId"]: s["storageId"] for s in first["snapshots"]} == snapshots
    assert first["replyTo"] == {"queue": REPLY} and first["correlation"] == CORRELATION
    [report] = [d for d in body["delivery"] if d["sink"].startswith("recheck")]
    assert report == {**report, "sink": "recheck:invoke", "ok": True} and report["messageId"]
    assert events(emu) == [], "nothing is usable yet"

    runs = web.run_links()

    assert all(run["state"] == "done" for run in runs)
    assert len(runs) > 1, "a link polls until its own deadline, then hands the rest on"
    got = events(emu)
    assert sorted(e["snapshotId"] for _, e, _ in got) == sorted(snapshots), "exactly one event each"
    for envelope, event, sent_at in got:
        assert envelope["requestKey"] == "key/predeploy-4711" and envelope["trigger"] == "webhook"
        assert (event["action"], event["code"], event["message"]) == (
            "snapshot.completed",
            0,
            "usable: NORMAL, 100%",
        )
        assert event["storageId"] == snapshots[event["snapshotId"]] and event["region"] == "ap-guangzhou"
        assert event["correlation"] == CORRELATION and event["eventId"] == event_id(event["snapshotId"])
        assert sent_at >= normal_at(emu, event["snapshotId"]) - 1, "never before the snapshot is usable"
    assert [link["link"] for link in links(emu)] == list(range(1, len(runs) + 1))
    # The first message on the reply queue is the request's own results, without action.
    first_message = json.loads(emu.messages(queue=REPLY)[0]["MsgContent"])
    assert [r.get("action") for r in first_message["results"]] == [None, None]


def test_a_snapshot_that_disappears_yields_snapshot_failed(emu: Emulator) -> None:
    cloud = Cloud(emu)
    response = timer_handler(firing(notified(["disk-g73hhs4o", "disk-lzrg2pwi"])), scf_context())
    [doomed, fine] = [r["snapshotId"] for r in response["results"]]
    emu.advance(CREATION + 1)  # usable, and then deleted before the first link looks
    cloud.runtime.cbs("ap-guangzhou").delete_snapshots([doomed], Deadline.after(10))

    cloud.run_links()

    by_id = {e["snapshotId"]: e for _, e, _ in events(emu)}
    assert by_id[doomed]["action"] == "snapshot.failed" and by_id[doomed]["code"] == 6000
    assert by_id[doomed]["message"].startswith(f"gone: snapshot {doomed} no longer exists in ap-guangzhou")
    assert by_id[fine]["action"] == "snapshot.completed"


def test_a_snapshot_not_usable_before_the_give_up_time_gets_snapshot_timeout(emu: Emulator) -> None:
    cloud = Cloud(emu, notify_max_wait=60)  # creation takes 120 s
    timer_handler(firing(notified(["disk-g73hhs4o"])), scf_context())

    cloud.run_links()

    [(_, event, _)] = events(emu)
    assert event["action"] == "snapshot.timeout" and event["code"] == 6000
    assert "it was still CREATING at" in event["message"] and event["eventId"] == event_id(
        event["snapshotId"]
    )
    assert emu.invocations("pending") == []


def test_a_link_run_twice_without_redis_repeats_the_event_with_the_same_event_id(emu: Emulator) -> None:
    cloud = Cloud(emu, notify_poll=30.0)
    timer_handler(firing(notified(["disk-g73hhs4o"])), scf_context())
    emu.advance(CREATION + 1)  # usable before the first link runs
    [link] = [json.loads(i["event"]) for i in emu.invocations("pending")]

    cloud.run_links()
    index_handler(link, scf_context())  # SCF ran the same link again (a retry, a lost Invoke reply)

    ids = [e["eventId"] for _, e, _ in events(emu)]
    assert len(ids) == 2 and len(set(ids)) == 1, "consumers drop the repeat by eventId"


@pytest.mark.redis
def test_with_redis_a_link_run_twice_emits_one_event(emu: Emulator, redis_url: str) -> None:
    cloud = Cloud(emu, notify_poll=30.0, redis_url=SecretStr(redis_url))
    timer_handler(firing(notified(["disk-g73hhs4o"])), scf_context())
    emu.advance(CREATION + 1)
    [link] = [json.loads(i["event"]) for i in emu.invocations("pending")]

    cloud.run_links()
    again = index_handler(link, scf_context())

    assert len(events(emu)) == 1 and again["results"] == []


def test_a_link_that_cannot_hand_on_fails_so_scf_retries_it(emu: Emulator) -> None:
    cloud = Cloud(emu, notify_poll=10.0)
    timer_handler(firing(notified(["disk-g73hhs4o"])), scf_context())
    [link] = [json.loads(i["event"]) for i in emu.invocations("pending")]
    emu.add_fault(Fault(action="Invoke", code="InternalError", times=99))
    response, redelivery = answer(index_handler, link, scf_context())
    assert redelivery, "the follow-up link was not handed on: SCF must retry this one"
    assert [d["ok"] for d in response["delivery"] if d["sink"].startswith("recheck")] == [False]
    emu.clear_faults()

    cloud.run_links()  # SCF's retry of the link (pending again), and the chain goes on
    [(_, event, _)] = [(a, e, t) for a, e, t in events(emu) if e["action"] == "snapshot.completed"]
    assert event["eventId"] == event_id(event["snapshotId"])


def test_a_first_link_that_cannot_be_handed_on_makes_the_request_redelivered(emu: Emulator) -> None:
    Cloud(emu)
    emu.add_fault(Fault(action="Invoke", code="InternalError", times=99))
    response, redelivery = answer(timer_handler, firing(notified(["disk-g73hhs4o"])), scf_context())
    assert redelivery and response["succeeded"] == 1, "the snapshot stands; the retry restarts the chain"
    emu.clear_faults()
    again = timer_handler(firing(notified(["disk-g73hhs4o"])), scf_context())
    assert again["results"][0]["snapshotId"] == response["results"][0]["snapshotId"]
    assert len(emu.invocations("pending")) == 1


def test_no_chain_for_a_dry_run_or_without_notify(emu: Emulator) -> None:
    Cloud(emu)
    timer_handler(firing({"disks": ["disk-g73hhs4o"]}), scf_context())
    timer_handler(firing(notified(["disk-lzrg2pwi"], dryRun=True)), scf_context())
    assert emu.calls(action="Invoke") == []


def test_a_malformed_link_is_one_9003_result(emu: Emulator) -> None:
    Cloud(emu)
    response = index_handler({RECHECK_FIELD: {"v": 2, "snapshots": []}}, scf_context())
    [result] = response["results"]
    assert result["code"] == 9003 and result["message"].startswith("re-check: ")


def test_links_round_trip() -> None:
    link = {
        RECHECK_FIELD: {
            "v": 2,
            "link": 3,
            "giveUpAt": "2026-11-29T02:00:00Z",
            "requestKey": "key/k",
            "trigger": "timer",
            "snapshots": [{"snapshotId": "snap-aaaaaaa1", "region": "ap-guangzhou"}],
        }
    }
    parsed = parse_recheck(link)
    assert not isinstance(parsed, str)
    assert json.loads(parsed.dumps())[RECHECK_FIELD]["link"] == 3
    assert isinstance(parse_recheck({RECHECK_FIELD: {"v": 1}}), str)


@pytest.mark.slow
def test_the_chain_in_fresh_processes_in_real_time(emulator: Emulator) -> None:
    """The chain as SCF runs it: each link a fresh process with the function's own environment."""
    emulator.add_queue(REPLY)
    emulator.add_function(
        FUNCTION,
        code_dir=ROOT / "handlers",
        python_path=[ROOT / "lib"],
        environment={"CBSNAP_NOTIFY_POLL": "0.3", "CBSNAP_SAFETY_MARGIN_MS": "1000"},
        timeout=20,  # a fresh interpreter's imports take seconds on a loaded machine
    )
    Cloud(emulator)  # only for the first request; the links run with the function's settings
    response = timer_handler(firing(notified(["disk-aaaaaaa1", "disk-aaaaaaa2"])), scf_context())
    made = {r["snapshotId"] for r in response["results"]}

    runs = emulator.run_pending()

    assert runs and all(run["state"] == "done" for run in runs), [run["attempts"][-1] for run in runs]
    assert sorted(e["snapshotId"] for _, e, _ in events(emulator)) == sorted(made)
    assert {e["action"] for _, e, _ in events(emulator)} == {"snapshot.completed"}
