"""Runs an SCF function's handler once, in a fresh Python process, the way the SCF runtime would.

The child is ``sys.executable -I`` (no PYTHONPATH, no user site) with the function's code first on
``sys.path``: the unzipped code package, or the directories ``add_function`` registered. Its environment
is the function's variables plus what SCF sets (credentials, region, function name…) and
``CBSNAP_ENDPOINT`` pointing back at the emulator. The handler gets the event and an SCF-shaped dict
context; its return value (JSON) or its exception comes back through a result file, while stdout and
stderr are captured as the function's log. Nothing of the function is imported into the emulator.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .scf_state import Attempt

# The child's whole program: read the job, import the handler, call it, write the outcome. Kept as text
# so the child imports nothing of the emulator.
_BOOTSTRAP = r"""
import importlib, json, sys, traceback
job = json.load(sys.stdin)
for path in reversed(job["paths"]):
    sys.path.insert(0, path)
module_name, _, function_name = job["handler"].rpartition(".")
try:
    handler = getattr(importlib.import_module(module_name), function_name)
    result = handler(job["event"], job["context"])
    outcome = {"ok": True, "result": json.loads(json.dumps(result, default=str))}
except BaseException as exc:
    traceback.print_exc()
    outcome = {"ok": False, "errorType": type(exc).__name__, "errorMessage": str(exc)}
with open(job["result"], "w", encoding="utf-8") as out:
    json.dump(outcome, out)
"""

# Variables of the emulator's own process that the child keeps (everything else comes from the function
# and from SCF's set): enough to find the interpreter's libraries and to write temporary files.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, copied out of the state under the lock."""

    function_name: str
    namespace: str
    region: str
    runtime: str
    handler: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    code_zip: bytes | None
    code_dirs: tuple[Path, ...]
    code_sha256: str
    qualifier: str
    event: Any
    request_id: str


class ScfRunner:
    """Runs handlers in child processes; knows where the emulator listens and which credential to hand out."""

    def __init__(
        self,
        *,
        endpoint: Callable[[], str | None],
        credential: Callable[[], tuple[str, str]],
        python: str = sys.executable,
    ) -> None:
        self._endpoint = endpoint
        self._credential = credential
        self._python = python
        self._workdir = tempfile.mkdtemp(prefix="cbsnap-scf-")
        # Removed with the runner (or at exit) without the warning an unclosed TemporaryDirectory gives.
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._workdir, ignore_errors=True)
        self._unzip_lock = threading.Lock()

    def close(self) -> None:
        """Remove the unzipped code packages and result files."""
        self._cleanup()

    def environment(self, spec: RunSpec) -> dict[str, str]:
        """The child's environment: inherited basics, the function's variables, then SCF's own."""
        env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        env.update(spec.environment)
        secret_id, secret_key = self._credential()
        env.update(
            {
                "TENCENTCLOUD_SECRETID": secret_id,
                "TENCENTCLOUD_SECRETKEY": secret_key,
                "TENCENTCLOUD_REGION": spec.region,
                "TENCENTCLOUD_RUNENV": "SCF",
                "TENCENTCLOUD_TZ": "UTC",
                "SCF_FUNCTIONNAME": spec.function_name,
                "SCF_FUNCTIONVERSION": spec.qualifier,
                "SCF_NAMESPACE": spec.namespace,
                "SCF_RUNTIME": spec.runtime,
                "PYTHONDONTWRITEBYTECODE": "1",  # SCF's code directory is read-only
            }
        )
        endpoint = self._endpoint()
        if endpoint is not None:
            env["CBSNAP_ENDPOINT"] = endpoint
        return env

    def context(self, spec: RunSpec) -> dict[str, Any]:
        """The SCF-shaped dict context (fields as documented in SCF's basic concepts page)."""
        return {
            "function_name": spec.function_name,
            "namespace": spec.namespace,
            "function_version": spec.qualifier,
            "request_id": spec.request_id,
            "time_limit_in_ms": spec.timeout * 1000,
            "memory_limit_in_mb": spec.memory_size,
            "tencentcloud_region": spec.region,
            "tencentcloud_appid": "1250000000",
            "tencentcloud_uin": "100000000001",
        }

    def run(self, spec: RunSpec) -> Attempt:
        """Run the handler once; never raises for the function's own failures."""
        if not spec.runtime.startswith("Python3"):
            return Attempt(
                ok=False,
                error_type="RuntimeNotEmulated",
                error_message=f"the emulator runs Python 3 functions only, not {spec.runtime}",
            )
        paths = [str(p) for p in spec.code_dirs] if spec.code_zip is None else [str(self._unzipped(spec))]
        with tempfile.NamedTemporaryFile("r", suffix=".json", dir=self._workdir, delete=False) as out:
            result_path = Path(out.name)
        job = {
            "paths": paths,
            "handler": spec.handler,
            "event": spec.event,
            "context": self.context(spec),
            "result": str(result_path),
        }
        started = time.perf_counter()
        try:
            proc = subprocess.run(  # noqa: S603 - our own interpreter and bootstrap
                [self._python, "-I", "-c", _BOOTSTRAP],
                input=json.dumps(job),
                capture_output=True,
                text=True,
                env=self.environment(spec),
                cwd=paths[0] if paths else None,
                timeout=spec.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            result_path.unlink(missing_ok=True)
            return Attempt(
                ok=False,
                error_type="TimeLimitExceeded",
                error_message=f"Invocation timed out after {spec.timeout} s",
                stdout=_text(exc.stdout),
                stderr=_text(exc.stderr),
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        duration = (time.perf_counter() - started) * 1000
        try:
            outcome = json.loads(result_path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            outcome = None
        finally:
            result_path.unlink(missing_ok=True)
        if not isinstance(outcome, dict):
            return Attempt(
                ok=False,
                error_type="RuntimeError",
                error_message=f"the function's process exited with {proc.returncode} without a result",
                stdout=proc.stdout,
                stderr=proc.stderr,
                duration_ms=duration,
            )
        return Attempt(
            ok=bool(outcome.get("ok")),
            result=outcome.get("result"),
            error_type=outcome.get("errorType"),
            error_message=outcome.get("errorMessage"),
            stdout=proc.stdout,
            stderr=proc.stderr,
            duration_ms=duration,
        )

    def _unzipped(self, spec: RunSpec) -> Path:
        """The code package unzipped once per content hash (the zip was validated on upload)."""
        target = Path(self._workdir) / f"code-{spec.code_sha256[:16]}"
        with self._unzip_lock:
            if not target.exists():
                staging = Path(tempfile.mkdtemp(dir=self._workdir))
                assert spec.code_zip is not None
                with zipfile.ZipFile(io.BytesIO(spec.code_zip)) as archive:
                    archive.extractall(staging)
                staging.rename(target)
        return target


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


LocalHandler = Callable[[Any, dict[str, Any]], Any]


def run_here(handler: LocalHandler, spec: RunSpec, context: dict[str, Any]) -> Attempt:
    """Run ``handler(event, context)`` in this process instead of a child: for tests that drive a
    handler with their own runtime and clock (the function's environment is not applied)."""
    started = time.perf_counter()
    try:
        result = handler(spec.event, context)
    except Exception as exc:  # the function's own failure: recorded, retried per RetryNum
        return Attempt(
            ok=False,
            error_type=type(exc).__name__,
            error_message=str(exc)[:2000],
            duration_ms=(time.perf_counter() - started) * 1000,
        )
    return Attempt(ok=True, result=result, duration_ms=(time.perf_counter() - started) * 1000)
