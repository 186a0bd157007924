"""Rate-limit scope: one token bucket per action for the account (default), or per region and action."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cbsnap_emulator import Emulator
from cbsnap_emulator.cli import main


def _regions_limited_together(make_sdk: Any, emu: Emulator) -> bool:
    """With 1 request/s: after a guangzhou call, is an immediate shanghai call refused?"""
    make_sdk(emu).cbs("DescribeDisks")
    try:
        make_sdk(emu, region="ap-shanghai").cbs("DescribeDisks")
    except Exception as exc:  # the SDK's exception; only throttling is expected here
        assert getattr(exc, "code", None) == "RequestLimitExceeded"
        return True
    return False


def test_default_scope_is_one_bucket_per_action_for_the_account(make_sdk: Any) -> None:
    with Emulator(rate_limit=1) as emu:
        assert _regions_limited_together(make_sdk, emu)


def test_region_scope_gives_each_region_its_own_bucket(make_sdk: Any) -> None:
    with Emulator(rate_limit=1, rate_scope="region") as emu:
        assert not _regions_limited_together(make_sdk, emu)
        # within one region the limit still holds, and other actions have their own buckets
        err = make_sdk(emu).cbs_error("DescribeDisks")
        assert err.code == "RequestLimitExceeded"
        make_sdk(emu).cbs("DescribeSnapshots")


def test_scope_from_seed_settings_and_validation(make_sdk: Any) -> None:
    with Emulator({"settings": {"rateLimit": 1, "rateScope": "region"}}) as emu:
        assert not _regions_limited_together(make_sdk, emu)
    with pytest.raises(ValueError, match="rate scope"):
        Emulator(rate_scope="credential")
    with pytest.raises(ValueError, match="must be a string"):
        Emulator({"settings": {"rateScope": 1}})


def test_set_rate_scope_and_admin_route_and_reset(make_sdk: Any, admin: Any, emulator: Emulator) -> None:
    emulator.set_rate_limit(1)
    emulator.set_rate_scope("region")
    assert not _regions_limited_together(make_sdk, emulator)
    assert admin("POST", "rate-scope", {"scope": "action"}) == (200, {"ok": True})
    assert _regions_limited_together(make_sdk, emulator)
    assert admin("POST", "rate-scope", {"scope": "everything"})[0] == 400
    assert admin("POST", "rate-scope", {})[0] == 400
    with pytest.raises(ValueError, match="rate scope"):
        emulator.set_rate_scope("zone")
    emulator.set_rate_scope("region")
    emulator.reset()  # back to the configured scope (action)
    emulator.set_rate_limit(1)
    assert _regions_limited_together(make_sdk, emulator)


class _Remote:
    """An emulator in another process, as the SDK helper needs it: just its endpoint."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint


def test_cli_takes_the_new_settings(make_sdk: Any) -> None:
    import cbsnap_emulator

    lib = str(Path(cbsnap_emulator.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([lib, os.environ.get("PYTHONPATH", "")])}
    args = ["--port", "0", "--empty", "--rate-limit", "1", "--rate-scope", "region", "--copy-seconds", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cbsnap_emulator", "--command-seconds", "2", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        endpoint = line.split("http://", 1)[1].split(" ", 1)[0]
        guangzhou = make_sdk(_Remote(endpoint))
        shanghai = make_sdk(_Remote(endpoint), region="ap-shanghai")
        guangzhou.cbs("DescribeDisks")
        shanghai.cbs("DescribeDisks")  # its own bucket: not refused
        assert guangzhou.cbs_error("DescribeDisks").code == "RequestLimitExceeded"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_cli_refuses_an_unknown_scope(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--rate-scope", "zone", "--port", "0"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
