"""Waiting for snapshots from a pipeline: the webhook's ``GET /snapshots/{id}?wait=N`` and the
paste-able pre-deploy script of docs/pre-deploy.md, run verbatim with bash and curl against the
webhook handler. (Completion events pushed to a queue: tests/functional/test_completion_chain.py.)

cbsnap's wall clock is the emulator's state clock here (``wall_clock=``), so ``emulator.advance``
moves snapshot progress and the waits together. Nothing is patched.
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

from cbsnap.runtime import Runtime, set_runtime
from cbsnap.webhook import handle_webhook
from cbsnap_emulator import Emulator, load_seed
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
        values: dict[str, Any] = {**overrides}
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
    started = time.monotonic()  # the emulator's clock also runs in real time, beside the waits
    status, body = get_status(cloud, snapshot_id, {"wait": "50"})
    assert status == 202 and body["state"] == "CREATING" and 0 < body["percent"] < 99
    assert sum(cloud.slept) == pytest.approx(50) and max(cloud.slept) <= 1.0

    status, body = get_status(cloud, snapshot_id, {"wait": "50"})
    assert (status, body["state"]) == (202, "CREATING")

    status, body = get_status(cloud, snapshot_id, {"wait": "50"})
    assert status == 200 and (body["state"], body["percent"]) == ("NORMAL", 100)
    assert body["snapshotId"] == snapshot_id and body["storageId"] == "disk-g73hhs4o"
    # NORMAL once CREATION seconds passed on the emulator's clock: the waits plus the real time
    # the test took (a few tenths of a second, more on a loaded machine).
    real = time.monotonic() - started
    assert CREATION - real - 1 <= sum(cloud.slept) < CREATION + 2, "it answered as soon as it was NORMAL"
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
