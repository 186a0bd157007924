"""Completion events end to end: a request with ``"notify": "completed"`` → a delayed re-check on
the work queue (CMQ DelaySeconds, recorded by the emulator) → the message handler, run locally by
``drain`` once the emulator's state clock passed the delay → DescribeSnapshots → ``snapshot.completed``
on the request's replyTo queue. Plus the webhook's ``GET /snapshots/{id}?wait=N`` and the paste-able
pre-deploy script of docs/pre-deploy.md, run verbatim with bash and curl against the webhook handler.

cbsnap's wall clock is the emulator's state clock here (``wall_clock=``), so ``emulator.advance``
moves snapshot progress, message delays and the re-checks' ``timeoutAt`` together. Nothing is patched.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from pydantic import SecretStr

from cbsnap.events.queue import RECHECK_FIELD, RechecksNotScheduled, is_recheck
from cbsnap.notify import event_id, parse_recheck
from cbsnap.runtime import Runtime, set_runtime
from cbsnap.scf import Deadline
from cbsnap.webhook import handle_webhook
from cbsnap_emulator import Emulator, Fault, load_seed
from cbsnap_emulator.runner import DrainReport, cmq_event, drain
from handlers.messages import main_handler as messages_handler
from handlers.timer import main_handler as timer_handler
from tests.conftest import DISKS, FAST_POLICY, ROOT, emulator_settings, owned_snapshots, scf_context
from tests.functional.test_webhook_handler import NOW, SECRET, post, request

WORK = "cbsnap-work"  # in the demo seed
REPLY = "deploy-events"
CREATION = 120.0  # emulated seconds from CREATING to NORMAL
CORRELATION = {"pipeline": "4711", "commit": "9fceb02"}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """The demo seed plus the test disks; snapshots take two (emulated) minutes."""
    emulator = Emulator(load_seed(None), creation_seconds=CREATION, rng_seed=11)
    for disk_id, extra in DISKS.items():
        emulator.add_disk(disk_id, **extra)
    emulator.add_queue(REPLY)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
        set_runtime(None)


class Cloud:
    """A runtime on the emulator whose wall clock is the emulator's state clock, installed for the
    handlers; plus a fake monotonic clock and a sleep that moves both (for the webhook's waits)."""

    def __init__(self, emulator: Emulator, **overrides: Any) -> None:
        self.emulator = emulator
        self.stream = io.StringIO()
        values: dict[str, Any] = {"fanout_queue": WORK, **overrides}
        self.settings = emulator_settings(emulator, **values)
        self.runtime = Runtime.from_settings(
            self.settings,
            stream=self.stream,
            policy=FAST_POLICY,
            wall_clock=lambda: datetime.fromtimestamp(emulator.now, timezone.utc),
        )
        set_runtime(self.runtime)
        self.t = 0.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.t += seconds
            self.emulator.advance(seconds)

    def logs(self, message: str | None = None) -> list[dict[str, Any]]:
        records = [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]
        return [r for r in records if message is None or r.get("message") == message]


def firing(document: dict[str, Any], name: str = "predeploy") -> dict[str, Any]:
    return {
        "Type": "Timer",
        "TriggerName": name,
        "Time": "2026-11-28T02:00:00Z",
        "Message": json.dumps(document),
    }


def run_timer(document: dict[str, Any]) -> dict[str, Any]:
    return timer_handler(firing(document), scf_context())


def drain_work(emulator: Emulator, **kwargs: Any) -> DrainReport:
    return drain(lambda n: emulator.receive(WORK, n), messages_handler, queue=WORK, **kwargs)


def rechecks(emulator: Emulator) -> list[tuple[int, dict[str, Any]]]:
    """Every re-check message sent to the work queue: (DelaySeconds, body)."""
    bodies = [(m["DelaySeconds"], json.loads(m["MsgContent"])) for m in emulator.messages(queue=WORK)]
    return [(delay, body[RECHECK_FIELD]) for delay, body in bodies if is_recheck(body)]


def events(emulator: Emulator, queue: str = REPLY) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(envelope, result) for every completion event sent to ``queue``."""
    found = []
    for message in emulator.messages(queue=queue):
        envelope = json.loads(message["MsgContent"])
        found.extend((envelope, r) for r in envelope["results"] if r.get("action"))
    return found


def notified(disks: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "disks": disks,
        "notify": "completed",
        "replyTo": {"queue": REPLY},
        "correlation": CORRELATION,
        **extra,
    }


# -- the delayed-message path -----------------------------------------------------------------


def test_a_completion_event_reaches_the_reply_queue_through_the_delayed_recheck(emu: Emulator) -> None:
    """The queue variant of docs/pre-deploy.md: POST with notify + replyTo, then wait for the events."""
    web = Cloud(emu, webhook_secret=SecretStr(SECRET))
    document = notified(["disk-g73hhs4o", "disk-lzrg2pwi"], idempotencyKey="predeploy-4711")
    answer = handle_webhook(post(document), scf_context(), web.runtime, clock=lambda: NOW)
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 200 and body["succeeded"] == 2
    snapshots = {r["snapshotId"]: r["storageId"] for r in body["results"]}

    # One re-check for the whole request, delayed CBSNAP_NOTIFY_DELAY (15 s), reported to the caller.
    [(delay, recheck)] = rechecks(emu)
    assert delay == 15 and recheck["attempt"] == 1 and recheck["v"] == 1
    assert {s["snapshotId"]: s["storageId"] for s in recheck["snapshots"]} == snapshots
    assert recheck["requestKey"] == "key/predeploy-4711" and recheck["replyTo"] == {"queue": REPLY}
    assert recheck["correlation"] == CORRELATION
    [report] = [d for d in body["delivery"] if d["sink"].startswith("recheck")]
    assert report["sink"] == f"recheck:queue:{WORK}" and report["ok"] is True and report["messageId"]

    # Not visible before its delay: the platform would not deliver it yet.
    assert drain_work(emu).messages == 0
    emu.advance(CREATION + 1)  # past the delay and the snapshots' creation
    run = drain_work(emu)

    assert run.messages == 1 and run.invocations == 1
    got = events(emu)
    assert sorted(r["snapshotId"] for _, r in got) == sorted(snapshots)
    for envelope, event in got:
        assert envelope["requestKey"] == "key/predeploy-4711" and envelope["trigger"] == "webhook"
        assert envelope["correlation"] == CORRELATION
        assert event["action"] == "snapshot.completed" and event["code"] == 0
        assert event["message"] == "usable: NORMAL, 100%"
        assert event["storageId"] == snapshots[event["snapshotId"]]
        assert event["correlation"] == CORRELATION and event["eventId"] == event_id(event["snapshotId"])
        assert event["region"] == "ap-guangzhou"
    # The handler's answer lists the events; nothing is left to re-check.
    assert sorted(r["snapshotId"] for r in run.results()) == sorted(snapshots)
    assert len(rechecks(emu)) == 1
    # The first message on the reply queue is the request's own results, without action.
    first = json.loads(emu.messages(queue=REPLY)[0]["MsgContent"])
    assert [r.get("action") for r in first["results"]] == [None, None]


def test_still_creating_reschedules_with_a_growing_delay(emu: Emulator) -> None:
    cloud = Cloud(emu)
    response = run_timer(notified(["disk-g73hhs4o"]))
    [snapshot_id] = [r["snapshotId"] for r in response["results"]]

    emu.advance(16)  # the first re-check is due; the snapshot is 13 % done
    first = drain_work(emu)
    assert first.messages == 1 and first.results() == [] and events(emu) == []
    assert [(d, r["attempt"]) for d, r in rechecks(emu)] == [(15, 1), (30, 2)]
    assert rechecks(emu)[1][1]["snapshots"] == rechecks(emu)[0][1]["snapshots"]
    assert drain_work(emu).messages == 0, "the follow-up waits for its own delay"

    emu.advance(30)  # t = 46 s: still creating
    drain_work(emu)
    emu.advance(60)  # t = 106 s: still creating
    drain_work(emu)
    assert [d for d, _ in rechecks(emu)] == [15, 30, 60, 120]
    assert events(emu) == []

    emu.advance(120)  # t = 226 s: NORMAL
    drain_work(emu)
    [(_, event)] = events(emu)
    assert (event["snapshotId"], event["action"], event["code"]) == (snapshot_id, "snapshot.completed", 0)
    assert len(rechecks(emu)) == 4, "a completed snapshot is not re-checked again"
    [rechecked] = [r for r in cloud.logs("notify.rechecked") if r["events"]]
    assert rechecked["attempt"] == 4


def test_a_snapshot_not_usable_by_the_timeout_gets_snapshot_timeout(emu: Emulator) -> None:
    Cloud(emu, notify_timeout=60)  # the shortest allowed; creation takes 120 s
    run_timer(notified(["disk-g73hhs4o"]))

    emu.advance(16)
    drain_work(emu)  # t = 16: pending, next in 30 s
    emu.advance(30)
    drain_work(emu)  # t = 46: pending, next in min(60, 14 s left) = 14 s
    assert [d for d, _ in rechecks(emu)] == [15, 30, 14]
    emu.advance(15)
    run = drain_work(emu)  # t = 61: past timeoutAt, still CREATING

    [(envelope, event)] = events(emu)
    assert event["action"] == "snapshot.timeout" and event["code"] == 6000
    assert event["codeDesc"] == "InternalError"
    assert re.search(
        r"timed out at .* after 3 re-check\(s\): it was still CREATING at \d+%", event["message"]
    )
    assert event["eventId"] == event_id(event["snapshotId"]) and envelope["correlation"] == CORRELATION
    assert [r["action"] for r in run.results()] == ["snapshot.timeout"]
    assert len(rechecks(emu)) == 3, "no re-check after the timeout"


def test_a_snapshot_deleted_before_it_was_reported_is_a_gone_timeout(emu: Emulator) -> None:
    cloud = Cloud(emu)
    response = run_timer(notified(["disk-g73hhs4o"]))
    [snapshot_id] = [r["snapshotId"] for r in response["results"]]
    emu.advance(CREATION + 1)
    cloud.runtime.service_api("ap-guangzhou").delete_snapshots([snapshot_id], Deadline.after(10))

    drain_work(emu)

    [(_, event)] = events(emu)
    assert event["action"] == "snapshot.timeout" and event["code"] == 6000
    assert event["message"].startswith(f"gone: snapshot {snapshot_id} no longer exists in ap-guangzhou")


def test_fanned_out_chunks_schedule_their_own_rechecks(emu: Emulator) -> None:
    """A large request's chunks carry notify on: the work queue then holds chunks and re-checks."""
    emu.set_rate_limit(0)
    disks = emu.add_disks(5, tags={"tier": "web"})
    Cloud(emu, fanout_threshold=2, fanout_chunk=2, rate_limit=0)
    parent = run_timer({**notified([]), "disks": None, "selector": {"tags": {"tier": "web"}}})
    assert parent["chunks"] == 3 and [r for r in parent["results"] if r["code"] == 0] == []

    chunks = drain_work(emu)  # the chunks are due at once; each schedules its own re-check
    assert chunks.messages == 3 and len(chunks.results()) == 5
    assert [(d, len(r["snapshots"])) for d, r in rechecks(emu)] == [(15, 2), (15, 2), (15, 1)]
    emu.advance(CREATION + 1)
    drain_work(emu)

    got = events(emu)
    assert sorted(r["storageId"] for _, r in got) == sorted(disks)
    assert {r["action"] for _, r in got} == {"snapshot.completed"}
    assert {e["correlation"]["pipeline"] for e, _ in got} == {"4711"}


# -- at most once ------------------------------------------------------------------------------


def deliver_twice(emu: Emulator, *, concurrently: bool) -> list[dict[str, Any]]:
    """Receive the due re-check once and hand the same event to the handler twice."""
    messages = emu.receive(WORK, 10)
    assert len(messages) == 1
    event = cmq_event(messages, WORK)
    answers: list[dict[str, Any]] = []
    if not concurrently:
        return [messages_handler(event, scf_context()) for _ in range(2)]
    barrier = threading.Barrier(4)

    def invoke() -> None:
        barrier.wait()
        answers.append(messages_handler(event, scf_context()))

    threads = [threading.Thread(target=invoke) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@pytest.mark.redis
@pytest.mark.parametrize("concurrently", [False, True], ids=["in-turn", "concurrent"])
def test_with_redis_a_recheck_delivered_twice_emits_one_event(
    emu: Emulator, redis_url: str, concurrently: bool
) -> None:
    cloud = Cloud(emu, redis_url=SecretStr(redis_url))
    response = run_timer(notified(["disk-g73hhs4o", "disk-lzrg2pwi"]))
    emu.advance(CREATION + 1)

    answers = deliver_twice(emu, concurrently=concurrently)

    got = events(emu)
    assert sorted(r["snapshotId"] for _, r in got) == sorted(r["snapshotId"] for r in response["results"])
    assert {r["action"] for _, r in got} == {"snapshot.completed"}
    assert sum(a["total"] for a in answers) == 2, "the answers carry the two events once between them"
    skipped = [e for r in cloud.logs("notify.rechecked") for e in r["duplicates_skipped"]]
    assert sorted(skipped) == sorted([event_id(r["snapshotId"]) for _, r in got] * (len(answers) - 1))


def test_without_redis_a_duplicate_event_carries_the_same_event_id(emu: Emulator) -> None:
    Cloud(emu)
    response = run_timer(notified(["disk-g73hhs4o"]))
    [snapshot_id] = [r["snapshotId"] for r in response["results"]]
    emu.advance(CREATION + 1)

    deliver_twice(emu, concurrently=False)

    got = [r for _, r in events(emu)]
    assert len(got) == 2, "nothing shared without Redis: the duplicate delivery emits again"
    assert {r["eventId"] for r in got} == {event_id(snapshot_id)}
    assert got[0] == got[1], "the duplicate is identical: consumers drop it by eventId"


# -- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"fanout_queue": None}, "set CBSNAP_FANOUT_QUEUE"),
        ({"fanout_queue": None, "fanout_topic": "cbsnap-events"}, "set CBSNAP_FANOUT_QUEUE"),
        ({"fanout_queue": "no-such-queue"}, "ResourceNotFound"),
    ],
    ids=["no-work-queue", "topic-only", "queue-missing"],
)
def test_a_recheck_that_cannot_be_scheduled_is_reported_and_the_results_stand(
    emu: Emulator, overrides: dict[str, Any], reason: str
) -> None:
    cloud = Cloud(emu, **overrides)
    response = run_timer(notified(["disk-g73hhs4o", "disk-lzrg2pwi", "disk-nosnap01"]))

    assert [r["code"] for r in response["results"]] == [0, 0, 16026]
    assert len(owned_snapshots(emu, "disk-g73hhs4o")) == 1
    [report] = [d for d in response["delivery"] if d["sink"].startswith("recheck")]
    assert report["ok"] is False and reason in report["message"]
    assert {"sink": f"queue:{REPLY}", "ok": True} == {
        k: v for k, v in response["delivery"][0].items() if k in ("sink", "ok")
    }, "the results were still delivered"
    assert cloud.logs("notify.unscheduled")[0]["level"] == "WARNING"
    assert emu.messages(queue=WORK) == []


def test_no_recheck_for_a_dry_run_or_without_notify(emu: Emulator) -> None:
    Cloud(emu)
    run_timer({"disks": ["disk-g73hhs4o"], "dryRun": True, "notify": "completed"})
    run_timer({"disks": ["disk-lzrg2pwi"]})
    assert emu.messages(queue=WORK) == []


def test_a_follow_up_that_cannot_be_sent_fails_the_invocation_and_the_redelivery_recovers(
    emu: Emulator,
) -> None:
    Cloud(emu)
    run_timer(notified(["disk-g73hhs4o"]))
    emu.advance(16)
    emu.add_fault(Fault(action="SendCmqMsg", code="FailedOperation", times=1))

    messages = emu.receive(WORK, 10)
    with pytest.raises(RechecksNotScheduled, match=messages[0]["MsgId"]):
        messages_handler(cmq_event(messages, WORK), scf_context())
    assert len(rechecks(emu)) == 1

    # The platform redelivers the same event; now the follow-up goes out.
    messages_handler(cmq_event(messages, WORK), scf_context())
    assert [(d, r["attempt"]) for d, r in rechecks(emu)] == [(15, 1), (30, 2)]


def test_a_malformed_recheck_is_one_9003_result(emu: Emulator) -> None:
    Cloud(emu)
    body = json.dumps({RECHECK_FIELD: {"v": 1, "snapshots": [], "attempt": 1}})
    event = {"Records": [{"CMQ": {"msgId": "m-1", "msgBody": body}}]}
    answer = messages_handler(event, scf_context())
    [result] = answer["results"]
    assert result["code"] == 9003 and result["message"].startswith("re-check message:")
    # ... and a request document cannot smuggle a re-check in through another trigger
    response = run_timer({"disks": ["disk-g73hhs4o"], RECHECK_FIELD: {}})
    assert [r["code"] for r in response["results"]] == [9003]


def test_recheck_bodies_are_recognised_and_round_trip() -> None:
    assert is_recheck({RECHECK_FIELD: {}}) and not is_recheck({"disks": []}) and not is_recheck("x")
    body = {
        "v": 1,
        "attempt": 2,
        "timeoutAt": "2026-11-28T03:00:00+00:00",
        "requestKey": "key/k",
        "trigger": "cmq",
        "snapshots": [
            {"snapshotId": "snap-abcdefgh", "storageId": "disk-g73hhs4o", "region": "ap-guangzhou"}
        ],
    }
    parsed = parse_recheck({RECHECK_FIELD: body})
    assert not isinstance(parsed, str)
    sent = json.loads(parsed.dumps())
    assert sent == {RECHECK_FIELD: {**body, "timeoutAt": "2026-11-28T03:00:00Z"}}
    assert parse_recheck(sent) == parsed
    assert isinstance(parse_recheck({RECHECK_FIELD: {**body, "timeoutAt": "2026-11-28T03:00:00"}}), str)


# -- GET /snapshots/{id}?wait=N --------------------------------------------------------------------


def get_status(
    cloud: Cloud, snapshot_id: str, query: dict[str, Any], timeout_ms: int = 60_000
) -> tuple[int, dict[str, Any]]:
    event = request("GET", f"/snapshots/{snapshot_id}", query=query)
    answer = handle_webhook(
        event,
        scf_context(timeout_ms),
        cloud.runtime,
        clock=lambda: NOW,
        sleep=cloud.sleep,
        monotonic=cloud.monotonic,
    )
    return answer["statusCode"], json.loads(answer["body"])


@pytest.fixture
def web(emu: Emulator) -> tuple[Cloud, str]:
    """A webhook runtime (no pacing: waits poll many times) and one fresh CREATING snapshot."""
    emu.set_rate_limit(0)
    cloud = Cloud(emu, webhook_secret=SecretStr(SECRET), rate_limit=0)
    answer = handle_webhook(
        post({"storageId": "disk-g73hhs4o"}), scf_context(), cloud.runtime, clock=lambda: NOW
    )
    return cloud, json.loads(answer["body"])["snapshotId"]


def test_wait_returns_normal_once_the_snapshot_finishes(web: tuple[Cloud, str]) -> None:
    cloud, snapshot_id = web
    status, body = get_status(cloud, snapshot_id, {"wait": "50"})
    assert status == 202 and body["state"] == "CREATING" and 0 < body["percent"] < 99
    assert sum(cloud.slept) == pytest.approx(50) and max(cloud.slept) <= 1.0

    status, body = get_status(cloud, snapshot_id, {"wait": "50"})
    assert (status, body["state"]) == (202, "CREATING")

    status, body = get_status(cloud, snapshot_id, {"wait": "50"})
    assert status == 200 and (body["state"], body["percent"]) == ("NORMAL", 100)
    assert body["snapshotId"] == snapshot_id and body["storageId"] == "disk-g73hhs4o"
    # (no lower bound: the emulator's clock is wall time plus the sleeps, so on a loaded machine the
    # real seconds the test takes let a little less sleep reach NORMAL; the 200 above shows it waited)
    assert sum(cloud.slept) < CREATION + 2, "it answered as soon as the snapshot was NORMAL"
    [last] = cloud.logs("webhook.snapshot_status")[-1:]
    assert last["status"] == 200 and last["wait"] == 50 and last["polls"] > 1


def test_wait_is_bounded_by_the_functions_remaining_time(web: tuple[Cloud, str]) -> None:
    cloud, snapshot_id = web
    # 10 s function, 0.5 s safety margin (the test settings), 2 s kept for the last look.
    status, body = get_status(cloud, snapshot_id, {"wait": "50"}, timeout_ms=10_000)
    assert (status, body["state"]) == (202, "CREATING")
    assert 7.0 < sum(cloud.slept) <= 7.5


def test_without_wait_the_route_is_unchanged_and_bad_waits_are_400(web: tuple[Cloud, str]) -> None:
    cloud, snapshot_id = web
    assert get_status(cloud, snapshot_id, {})[0] == 200  # CREATING, as before
    assert get_status(cloud, snapshot_id, {"wait": "0"})[0] == 202  # no wait, but "not yet" says so
    assert cloud.slept == []
    for bad in ("-1", "1.5", "abc", "901", ""):
        status, body = get_status(cloud, snapshot_id, {"wait": bad})
        assert status == 400 and body["code"] == 9003 and "wait" in body["message"]
    assert get_status(cloud, "snap-00000000", {"wait": "5"})[0] == 404


# -- the pre-deploy script of docs/pre-deploy.md, verbatim -------------------------------------------

SCRIPT = re.search(
    r"<!-- BEGIN pre-deploy\.sh[^>]*-->\s*```bash\n(.*?)```\s*<!-- END pre-deploy\.sh -->",
    (ROOT / "docs" / "pre-deploy.md").read_text(encoding="utf-8"),
    re.DOTALL,
)


def test_the_readme_carries_the_same_pre_deploy_script() -> None:
    assert SCRIPT is not None
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "```bash\n" + SCRIPT.group(1) + "```" in readme, (
        "README's pre-deploy block drifted from docs/pre-deploy.md"
    )


class Gateway:
    """API Gateway on loopback: real HTTP in, the documented event shape to the webhook handler,
    its integrated response back out. Waits move the emulator's clock (``Cloud.sleep``)."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.calls: list[tuple[str, str, int]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else None
                event: dict[str, Any] = {
                    "httpMethod": self.command,
                    "path": url.path,
                    "headers": dict(self.headers.items()),
                    "queryString": dict(parse_qsl(url.query, keep_blank_values=True)),
                    "isBase64Encoded": False,
                    "requestContext": {
                        "requestId": str(uuid.uuid4()),
                        "stage": "release",
                        "httpMethod": self.command,
                    },
                }
                if body is not None:
                    event["body"] = body
                answer = handle_webhook(
                    event, scf_context(60_000), cloud.runtime, sleep=cloud.sleep, monotonic=cloud.monotonic
                )
                gateway.calls.append((self.command, self.path, answer["statusCode"]))
                payload = answer["body"].encode()
                self.send_response(answer["statusCode"])
                for name, value in answer["headers"].items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Gateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/release"


def run_script(
    tmp_path: Path, gateway: Gateway, instances: str, **env: str
) -> subprocess.CompletedProcess[str]:
    assert SCRIPT is not None, "docs/pre-deploy.md must keep its BEGIN/END pre-deploy.sh block"
    script = tmp_path / "pre-deploy.sh"
    script.write_text(SCRIPT.group(1), encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    cbsnap = bin_dir / "cbsnap"  # the console script, as `pip install` would make it
    cbsnap.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cbsnap_cli.main "$@"\n', encoding="utf-8")
    cbsnap.chmod(0o755)
    environment = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT / "lib"),
        "HOME": str(tmp_path),
        "API": gateway.url,
        "CBSNAP_WEBHOOK_SECRET": SECRET,
        "INSTANCE_IDS": instances,
        "CI_PIPELINE_ID": "4711",
        "CI_COMMIT_SHA": "9fceb02",
        **env,
    }
    return subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=environment, timeout=120, check=False
    )


needs_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "curl", "jq")),
    reason="the pre-deploy script needs bash, curl and jq",
)


@pytest.fixture
def service(emu: Emulator) -> tuple[Cloud, list[str]]:
    """A service instance with two data disks, and the webhook in front of the emulator."""
    emu.set_rate_limit(0)
    disks = [emu.add_disk(instance_id="ins-predepl1", region="ap-guangzhou")["DiskId"] for _ in range(2)]
    cloud = Cloud(emu, webhook_secret=SecretStr(SECRET), rate_limit=0)
    return cloud, disks


@needs_tools
def test_the_pre_deploy_script_waits_until_every_snapshot_is_usable(
    tmp_path: Path, emu: Emulator, service: tuple[Cloud, list[str]]
) -> None:
    cloud, disks = service
    with Gateway(cloud) as gateway:
        started = time.monotonic()
        proc = run_script(tmp_path, gateway, "ins-predepl1")
        assert proc.returncode == 0, proc.stderr
        assert time.monotonic() - started < 60

        snapshots = {d: owned_snapshots(emu, d) for d in disks}
        assert all(len(s) == 1 and s[0]["SnapshotState"] == "NORMAL" for s in snapshots.values())
        for disk, [snap] in snapshots.items():
            assert f"pre-deploy: {snap['SnapshotId']} {disk} NORMAL 100%" in proc.stdout
        assert proc.stdout.rstrip().endswith("every snapshot is usable")
        # the sequence of calls: one POST, then signed ?wait=50 polls until 200 for each snapshot
        statuses = [(method, status) for method, _, status in gateway.calls]
        assert statuses[0] == ("POST", 200)
        assert [s for _, s in statuses[1:]] == [202, 202, 200, 200]
        assert all("?wait=50" in path for _, path, _ in gateway.calls[1:])
        for [snap] in snapshots.values():  # traceable to the pipeline
            tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
            assert tags["cbsnap:corr:pipeline"] == "4711" and tags["cbsnap:corr:commit"] == "9fceb02"
            assert snap["SnapshotName"] == "predeploy-4711" and snap["IsPermanent"] is False

        # A retried job: the same snapshots (idempotencyKey), nothing new, and usable at once.
        again = run_script(tmp_path, gateway, "ins-predepl1")
        assert again.returncode == 0, again.stderr
        assert all(len(owned_snapshots(emu, d)) == 1 for d in disks)


@needs_tools
def test_the_pre_deploy_script_fails_when_a_disk_cannot_be_snapshotted(
    tmp_path: Path, emu: Emulator, service: tuple[Cloud, list[str]]
) -> None:
    cloud, _ = service
    emu.add_disk(instance_id="ins-predepl1", snapshot_ability=False)
    with Gateway(cloud) as gateway:
        proc = run_script(tmp_path, gateway, "ins-predepl1")
    assert proc.returncode != 0
    assert "the snapshot request failed" in proc.stderr and '"code": 16026' in proc.stderr
    assert [(m, s) for m, _, s in gateway.calls] == [("POST", 422)], "no waiting after a failed request"


@needs_tools
def test_the_pre_deploy_script_fails_when_snapshots_are_not_usable_in_time(
    tmp_path: Path, emu: Emulator, service: tuple[Cloud, list[str]]
) -> None:
    cloud, _ = service
    with Gateway(cloud) as gateway:
        proc = run_script(tmp_path, gateway, "ins-predepl1", CBSNAP_MAX_WAIT="100")  # creation takes 120 s
    assert proc.returncode != 0
    assert "is not usable after 100s" in proc.stderr and '"state":"CREATING"' in proc.stderr
    assert [s for _, _, s in gateway.calls] == [200, 202, 202]
