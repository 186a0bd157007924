"""``cbsnap report --html``: one self-contained page, opened in a headless Chromium.

The page comes from a real report (the CLI against an emulator fleet with 30 days of history).
Chromium is Debian's ``chromium`` (README, "Set up"); without it the browser test skips locally
with the reason, and fails under CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cbsnap_cli import report, report_html
from cbsnap_emulator import Emulator
from tests.conftest import emulator_settings

HOUR = 3600.0
DAY = 24 * HOUR
OWNER = {"cbsnap:owner": "cbsnap"}
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def build_fleet(emu: Emulator) -> None:
    """A fleet worth looking at: daily snapshots with gaps, stale, never, stuck, doomed, copied disks."""
    now = emu.now

    def disk(region: str, name: str, **fields: Any) -> str:
        return str(emu.add_disk(region=region, name=name, fields=fields or None)["DiskId"])

    def daily(disk_id: str, days: range, skip: tuple[int, ...] = ()) -> None:
        for back in days:
            if back not in skip:
                emu.add_snapshot(disk_id, created_at=now - back * DAY - 2 * HOUR, tags=OWNER)

    for i in range(4):
        daily(disk("ap-guangzhou", f"web-{i}"), range(30), skip=(9, 10) if i == 1 else ())
    daily(disk("ap-guangzhou", "db-primary", DeleteSnapshot=1), range(30))
    daily(disk("ap-guangzhou", "db-replica"), range(3, 30))  # stopped three days ago
    daily(disk("ap-guangzhou", "queue"), range(12, 30, 2))  # every other day, then nothing
    stuck = disk("ap-guangzhou", "analytics")
    daily(stuck, range(1, 30))
    emu.add_snapshot(stuck, state="CREATING", created_at=now - 9 * HOUR)
    disk("ap-guangzhou", "scratch")  # never snapshotted
    for i in range(3):
        daily(disk("ap-shanghai", f"sh-app-{i}"), range(0, 30, 1 if i else 7))
    disk("ap-shanghai", "sh-legacy")


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    emu = Emulator(None, creation_seconds=30 * DAY, rng_seed=21)
    build_fleet(emu)
    emu.start()
    try:
        emu.reset_calls()
        document = {"action": "report", "selector": {"all": True, "regions": ["ap-guangzhou", "ap-shanghai"]}}
        response = report.answer(document, emulator_settings(emu), timeout=120)
        assert {c["action"] for c in emu.calls()} == {"DescribeDisks", "DescribeSnapshots"}
    finally:
        emu.stop()
    path = tmp_path / "report.html"
    path.write_text(report_html.render(response), encoding="utf-8")
    yield path, response


def test_the_page_is_self_contained_and_worst_first(page: tuple[Path, dict[str, Any]]) -> None:
    path, response = page
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"(?i)\b(src|href)\s*=|url\(|@import|https?://|<script", text), "no external asset"
    statuses = re.findall(r'<tr class="(\w+)">', text)
    assert len(statuses) == response["report"]["disks"] == 13
    order = [report_html.STATUS_ORDER.index(s) for s in statuses]
    assert order == sorted(order), "worst first"
    assert [statuses.count(s) for s in ("none", "stuck", "stale", "ok")] == [2, 1, 2, 8]
    # a gap shows: web-1 missed two days, so its strip has two empty cells among green ones
    assert text.count('class="day"') > 0 and text.count('class="day n1') > 200
    assert "are deleted with the disk" in text and "CREATING for more than 6 h" in text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_page_opens_in_a_headless_browser(page: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI needs Chromium for this test (apt-get install chromium)")
        pytest.skip("no chromium on PATH (apt-get install chromium) to open the page with")
    path, response = page
    profile = tmp_path / "profile"
    profile.mkdir()
    common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run(
        [*common, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120, check=False
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert len(re.findall(r'<tr class="\w+">', dom.stdout)) == response["report"]["disks"]
    errors = [line for line in dom.stderr.splitlines() if "Uncaught" in line or "net::ERR_" in line]
    assert errors == [], errors
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1280,1000", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cbsnap_report_command_exit_status_and_files(tmp_path: Path) -> None:
    html_file, json_file = tmp_path / "r.html", tmp_path / "r.json"
    from cbsnap_cli.main import main

    status = main(["report", "--emulator", "--html", str(html_file), "--json", str(json_file)])
    assert status == 1, "the demo seed's disks are not all covered"
    assert html_file.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert '"report"' in json_file.read_text(encoding="utf-8")
    bad = subprocess.run(
        [str(Path(os.sys.executable).parent / "cbsnap"), "report", "not json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0 and "not valid JSON" in bad.stderr
