"""Deploy size: the unzipped SCF package vs. the monolithic ``tencentcloud-sdk-python``.

The package is ``dist/cbsnap-scf.zip`` (or ``--zip``); when there is none, the build
(``scripts/build.sh``) is run into a temporary folder, so the benchmark never writes
``dist/``. The monolith is the ``tencentcloud-sdk-python`` wheel at the version
``constraints.txt`` pins for ``tencentcloud-sdk-python-common``, fetched with
``pip download`` (cached) and unpacked: its installed size, without bytecode.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from common import MB, ROOT, Row

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cbsnap-bench"
DIST_ZIP = ROOT / "dist" / "cbsnap-scf.zip"


def pinned_sdk_version() -> str:
    """The pinned version of ``tencentcloud-sdk-python-common`` (the monolith ships the same)."""
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        name, _, version = line.split("#", 1)[0].strip().partition("==")
        if name.strip().lower().replace("_", "-") == "tencentcloud-sdk-python-common":
            return version.strip()
    raise RuntimeError("constraints.txt pins no tencentcloud-sdk-python-common")


def build_zip(dest: Path) -> tuple[Path | None, str]:
    """Run ``scripts/build.sh`` into ``dest``; (zip, "") or (None, why not)."""
    script = ROOT / "scripts" / "build.sh"
    if not script.exists():
        return None, "scripts/build.sh does not exist"
    out = dest / "cbsnap-scf.zip"
    proc = subprocess.run(
        ["bash", str(script), "--out", str(out), "--staging", str(dest / "staging"), "-q"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return None, f"scripts/build.sh failed (exit {proc.returncode}): {' | '.join(tail)}"
    return out, ""


def unzipped_size(zip_path: Path) -> tuple[int, int, dict[str, int]]:
    """(bytes, files, bytes by top-level entry) of a zip's contents."""
    total = files = 0
    tops: dict[str, int] = {}
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            total += info.file_size
            files += 1
            top = info.filename.split("/", 1)[0]
            tops[top] = tops.get(top, 0) + info.file_size
    return total, files, tops


def monolith_wheel(version: str, download: bool) -> tuple[Path | None, str]:
    """The cached monolith wheel, downloaded with pip if needed and allowed."""
    CACHE.mkdir(parents=True, exist_ok=True)
    pattern = f"tencentcloud_sdk_python-{version}-*.whl"
    found = sorted(CACHE.glob(pattern))
    if found:
        return found[0], ""
    if not download:
        return None, "monolith wheel not cached and --no-download given"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "-d", str(CACHE), f"tencentcloud-sdk-python=={version}"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    found = sorted(CACHE.glob(pattern))
    if proc.returncode != 0 or not found:
        tail = proc.stderr.strip().splitlines()[-2:]
        return None, f"pip download tencentcloud-sdk-python=={version} failed: {' | '.join(tail)}"
    return found[0], ""


def deploy_size(zip_path: Path | None, why_no_zip: str, download: bool) -> list[Row]:
    """Rows for the deploy-size section (printing its details)."""
    section = "deploy size"
    version = pinned_sdk_version()
    rows: list[Row] = []
    wheel, why_no_wheel = monolith_wheel(version, download)
    mono = 0
    if wheel is None:
        print(f"  monolith: skipped: {why_no_wheel}", flush=True)
        rows.append(Row(section, f"monolith tencentcloud-sdk-python=={version}", "skipped", "", "SKIP"))
    else:
        mono, mono_files, _ = unzipped_size(wheel)
        print(f"  monolith {wheel.name}: {mono / MB:.1f} MB installed in {mono_files} files", flush=True)
        rows.append(
            Row(section, f"monolith tencentcloud-sdk-python=={version}, installed", f"{mono / MB:.1f} MB")
        )
    if zip_path is None:
        print(f"  package: skipped: {why_no_zip}", flush=True)
        rows.append(Row(section, "cbsnap-scf.zip unzipped", f"skipped ({why_no_zip})", "", "SKIP"))
        return rows
    size, files, tops = unzipped_size(zip_path)
    zipped = zip_path.stat().st_size
    print(
        f"  package {zip_path}: {zipped / MB:.2f} MB zipped, {size / MB:.2f} MB unzipped in {files} files",
        flush=True,
    )
    largest = sorted(tops.items(), key=lambda kv: -kv[1])[:6]
    print("    largest: " + ", ".join(f"{name} {b / MB:.2f} MB" for name, b in largest), flush=True)
    value = f"{size / MB:.1f} MB ({zipped / MB:.1f} MB zipped)"
    if mono:
        value += f" = {size / mono:.2f}x the monolith"
    # The issue sets no figure for this one: it is reported, not judged.
    rows.append(Row(section, "cbsnap-scf.zip unzipped (our code + every runtime dependency)", value))
    return rows
