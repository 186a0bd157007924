"""``cbsnap serve``: the README's pre-deploy script, verbatim, against the function on local HTTP.

Real everything: the script runs under bash with the real curl and jq, signs with the real
``cbsnap sign``; ``cbsnap serve`` turns each request into an API Gateway event for
``index.main_handler``, whose API calls go over HTTP to the embedded emulator.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.functional.test_cli import Background

SECRET = "local-serve-secret-0123456789abcdef"  # >= 32 bytes, as the webhook requires
README = (ROOT / "README.md").read_text(encoding="utf-8")
# The README's pre-deploy block: the first bash block of its "Pre-deploy snapshots" section.
SCRIPT = re.search(
    r"^## Pre-deploy snapshots in a CI pipeline\n.*?^```bash\n(.*?)^```", README, re.DOTALL | re.M
)

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "curl", "jq")),
    reason="the pre-deploy script needs bash, curl and jq",
)


class Served:
    """A running ``cbsnap serve``: the API base URL and the embedded emulator's URL."""

    def __init__(self, server: Background, banner: str) -> None:
        self.server = server
        api = re.search(r"^  export API=(\S+)$", banner, re.MULTILINE)
        emulator = re.search(r"embedded emulator at (http://\S+) ", banner)
        assert api and emulator, banner
        self.api = api.group(1)
        self.emulator = emulator.group(1)

    def admin(self, path: str, body: Any) -> Any:
        """POST to the embedded emulator's admin API (docs/emulator.md)."""
        request = urllib.request.Request(
            f"{self.emulator}/_emulator/{path}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.emulator}/_emulator/state", timeout=10) as response:
            state: dict[str, Any] = json.loads(response.read())
            return state


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """``cbsnap serve --port 0`` with snapshots that take one second, shared by this module's tests
    (each uses its own instance and pipeline id); stopped with Ctrl-C at the end."""
    server = Background("serve", "--port", "0", "--creation-seconds", "1", CBSNAP_WEBHOOK_SECRET=SECRET)
    try:
        yield Served(server, server.read_until("Press Ctrl-C"))
    finally:
        stderr = server.finish()  # SIGINT, as Ctrl-C sends
    assert server.proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert server.rest().rstrip().endswith("cbsnap serve stopped.")


def run_pre_deploy(tmp_path: Path, api: str, instances: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The README's script, as a CI job runs it: bash, with ``cbsnap`` on PATH."""
    assert SCRIPT is not None, "README.md must keep its pre-deploy bash block"
    script = tmp_path / "pre-deploy.sh"
    script.write_text(SCRIPT.group(1), encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    cbsnap = bin_dir / "cbsnap"  # the console script, as `pip install` makes it
    cbsnap.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cbsnap_cli.main "$@"\n', encoding="utf-8")
    cbsnap.chmod(0o755)
    environment = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT / "lib"),
        "HOME": str(tmp_path),
        "API": api,
        "CBSNAP_WEBHOOK_SECRET": SECRET,
        "INSTANCE_IDS": instances,
        "CI_PIPELINE_ID": "4711",
        "CI_COMMIT_SHA": "9fceb02",
        **env,
    }
    return subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=environment, timeout=300, check=False
    )


def test_the_readme_pre_deploy_script_succeeds_against_cbsnap_serve(tmp_path: Path, served: Served) -> None:
    # ins-3xa9k2lm: the demo seed's web server, two disks (docs/emulator.md)
    proc = run_pre_deploy(tmp_path, served.api, "ins-3xa9k2lm")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("pre-deploy: every snapshot is usable")
    made = [s for s in served.state()["snapshots"] if s["SnapshotName"] == "predeploy-4711"]
    assert sorted(s["DiskId"] for s in made) == ["disk-g73hhs4o", "disk-k2v8p4tq"]
    for snap in made:
        assert snap["SnapshotState"] == "NORMAL"
        assert f"pre-deploy: {snap['SnapshotId']} {snap['DiskId']} NORMAL 100%" in proc.stdout
    # one line per request on serve's stdout: the POST, then the signed ?wait=50 polls
    served.server.read_until("?wait=50 -> 200")

    # a retried job gets the same snapshots (idempotencyKey), through the same server
    again = run_pre_deploy(tmp_path, served.api, "ins-3xa9k2lm")
    assert again.returncode == 0, again.stderr
    assert len([s for s in served.state()["snapshots"] if s["SnapshotName"] == "predeploy-4711"]) == 2


def test_the_readme_pre_deploy_script_fails_on_a_busy_disk(tmp_path: Path, served: Served) -> None:
    served.admin("disks", {"DiskId": "disk-busy0001", "InstanceId": "ins-busy0001", "DiskState": "EXPANDING"})
    proc = run_pre_deploy(tmp_path, served.api, "ins-busy0001", CI_PIPELINE_ID="4713")
    assert proc.returncode != 0
    assert "pre-deploy: the snapshot request failed" in proc.stderr
    assert '"code": 16005' in proc.stderr  # IncorrectInstanceStatus.DiskBusy, answered 409
    assert not [s for s in served.state()["snapshots"] if s["DiskId"] == "disk-busy0001"]


def test_a_wrong_secret_is_refused_with_401(tmp_path: Path, served: Served) -> None:
    proc = run_pre_deploy(
        tmp_path, served.api, "ins-3xa9k2lm", CBSNAP_WEBHOOK_SECRET="not-the-secret", CI_PIPELINE_ID="4712"
    )
    assert proc.returncode != 0
    assert "the snapshot request failed" in proc.stderr and '"code": 4100' in proc.stderr


def test_the_stage_prefix_is_optional(served: Served) -> None:
    """API Gateway's URL carries the stage; a caller may leave it out locally."""
    base = served.api.removesuffix("/release")
    with pytest.raises(urllib.error.HTTPError) as refused:  # unsigned: the function answers 401
        urllib.request.urlopen(f"{base}/snapshots/snap-m4nu4l01", timeout=30)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["code"] == 4100


def test_sigterm_stops_serve_cleanly() -> None:
    server = Background("serve", "--port", "0", CBSNAP_WEBHOOK_AUTH="gateway")
    server.read_until("Press Ctrl-C")
    stderr = server.finish(signal.SIGTERM)
    assert server.proc.returncode == 0 and "Traceback" not in stderr
    assert server.rest().rstrip().endswith("cbsnap serve stopped.")


@pytest.mark.parametrize("command", [("serve",), ("emulator",)])
def test_sigint_stops_a_server_started_as_a_background_job(command: tuple[str, ...]) -> None:
    # A shell starts `cbsnap serve &` with SIGINT ignored; `kill -INT` must still stop it cleanly.
    server = Background(*command, "--port", "0", sigint_ignored=True, CBSNAP_WEBHOOK_AUTH="gateway")
    server.read_until("Press Ctrl-C")
    stderr = server.finish(signal.SIGINT)
    assert server.proc.returncode == 0 and "Traceback" not in stderr
    assert server.rest().rstrip().endswith("stopped.")
