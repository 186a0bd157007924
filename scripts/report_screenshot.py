#!/usr/bin/env python3
"""Regenerate docs/report.png: ``cbsnap report --html`` of an emulated fleet, as headless Chromium
draws it (the fleet is tests/functional/test_report_html.py's). Needs Debian's ``chromium``.

    .venv/py3.11/bin/python scripts/report_screenshot.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "lib")]

from cbsnap_cli import report, report_html  # noqa: E402
from cbsnap_emulator import Emulator  # noqa: E402
from tests.conftest import emulator_settings  # noqa: E402
from tests.functional.test_report_html import CHROMIUM_FLAGS, DAY, build_fleet  # noqa: E402


def main() -> int:
    """Build the fleet, run the report, render it, screenshot it."""
    browser = shutil.which("chromium")
    if browser is None:
        print("needs chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    with Emulator(None, creation_seconds=30 * DAY, rng_seed=21) as emu:
        build_fleet(emu)
        document = {"action": "report", "selector": {"all": True, "regions": ["ap-guangzhou", "ap-shanghai"]}}
        response = report.answer(document, emulator_settings(emu), timeout=120)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(report_html.render(response), encoding="utf-8")
        shot = ROOT / "docs" / "report.png"
        subprocess.run(  # noqa: S603 - Chromium with our own arguments, no shell
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp}/profile", f"--screenshot={shot}",
             "--window-size=1400,1040", page.as_uri()],
            check=True, capture_output=True,
        )  # fmt: skip
    print(f"wrote {shot.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
