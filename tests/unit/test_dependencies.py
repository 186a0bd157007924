"""cbsnap stays free of the AWS SDK (boto3/botocore) and of the monolithic Tencent SDK.

powertools' idempotency and parameters utilities import boto3, so they are off limits;
this test fails if any source imports boto3, if a dependency file names it, or if
importing every cbsnap module and handler loads it.
"""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT

FORBIDDEN = re.compile(r"^\s*(?:import|from)\s+(boto3|botocore)\b", re.MULTILINE)
SOURCES = [*sorted((ROOT / "lib").rglob("*.py")), *sorted((ROOT / "handlers").glob("*.py"))]


def test_no_source_imports_the_aws_sdk() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in SOURCES if FORBIDDEN.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_dependency_files_name_neither_the_aws_sdk_nor_the_monolith() -> None:
    for name in ("pyproject.toml", "constraints.txt"):
        text = (ROOT / name).read_text(encoding="utf-8").lower()
        assert "boto" not in text, name
        assert not re.search(r"tencentcloud-sdk-python(?![-\w])", text), name


def test_importing_everything_loads_no_aws_sdk() -> None:
    script = (
        "import importlib, pkgutil, sys\n"
        "import cbsnap\n"
        "for m in pkgutil.walk_packages(cbsnap.__path__, 'cbsnap.'):\n"
        "    importlib.import_module(m.name)\n"
        "for h in ('timer', 'messages', 'webhook', 'index'):\n"
        "    importlib.import_module('handlers.' + h)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'lib'}:{ROOT}", "PATH": ""},
    )
    assert out.stdout.strip() == "[]"
