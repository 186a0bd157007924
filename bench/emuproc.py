"""The CBS API emulator in its own process, driven through its loopback admin API.

The emulator runs in a separate interpreter so that it and the client under test
do not share a GIL: with both in one process, the server's TC3 verification and
JSON work would compete with the client's signing threads and the client would
look slower than it is (the real API is on another machine).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from types import TracebackType
from typing import Any

from common import LIB, clean_env


class EmulatorProcess:
    """``python -m cbsnap_emulator --empty --port 0`` with the given limit and latency."""

    def __init__(self, *, rate_limit: float, latency: float, rng_seed: int = 1) -> None:
        self.rate_limit = rate_limit
        self.latency = latency
        self._rng_seed = rng_seed
        self._proc: subprocess.Popen[str] | None = None
        self.endpoint = ""

    def start(self) -> EmulatorProcess:
        """Start the server and wait for its endpoint line."""
        cmd = [
            sys.executable, "-m", "cbsnap_emulator", "--port", "0", "--empty",
            "--rate-limit", str(self.rate_limit), "--latency", str(self.latency),
            "--creation-seconds", "3", "--rng-seed", str(self._rng_seed),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=clean_env({"PYTHONPATH": str(LIB)}),
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if "listening on http://" not in line:
            self.stop()
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.endpoint = line.split("http://", 1)[1].split()[0]
        return self

    def stop(self) -> None:
        """Terminate the server (our own child, by its Popen handle)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the admin API ----------------------------------------------------------------

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # loopback only
            f"http://{self.endpoint}/_emulator/{path}", data=data, method=method
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read() or b"{}")

    def add_disks(self, count: int, prefix: str) -> list[str]:
        """``count`` new disks in ap-guangzhou; their IDs."""
        disks = self._admin("POST", "disks", {"count": count, "prefix": prefix})["disks"]
        return [d["DiskId"] for d in disks]

    def calls(self, action: str | None = None) -> list[dict[str, Any]]:
        """Every request since the last reset (optionally of one action)."""
        query = f"?action={action}" if action else ""
        return list(self._admin("GET", f"calls{query}")["calls"])

    def reset_calls(self) -> None:
        """Forget the recorded calls, and let the rate limiter's bucket refill."""
        self._admin("DELETE", "calls")
        time.sleep(1.1)
