"""The function `cbsnap deploy` creates answers its function URL: a function-URL event (API Gateway's shape
without requestContext, SCF doc 583/96099) reaches the webhook, run by the emulator in a fresh process."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

from cbsnap.webauth import auth_headers, signing_payload
from cbsnap_emulator import Emulator
from tests.emulator.test_emu_scf import Scf
from tests.functional.test_deploy import Deployer

ROOT = Path(__file__).resolve().parents[2]


def source_zip(path: Path) -> Path:
    """handlers/*.py at the root and lib/cbsnap as the cbsnap package (dependencies: this interpreter's)."""
    with zipfile.ZipFile(path, "w") as archive:
        for handler in sorted((ROOT / "handlers").glob("*.py")):
            if handler.name != "__init__.py":
                archive.write(handler, handler.name)
        for module in sorted((ROOT / "lib" / "cbsnap").rglob("*.py")):
            archive.write(module, str(module.relative_to(ROOT / "lib")))
    return path


def function_url_event(
    method: str, path: str, body: str = "", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "body": body,
        "headers": {"content-type": "application/json", "host": "1250000000-x-ap-guangzhou.scf.tencentcs.com"}
        | (headers or {}),
        "httpMethod": method,
        "path": path,
        "queryString": {},
    }


def test_the_deployed_function_url_reaches_the_webhook(tmp_path: Path) -> None:
    with Emulator(rng_seed=2, scf_transition_seconds=1) as emu:
        deploy = Deployer(emu, tmp_path)
        deploy.zip = source_zip(tmp_path / "cbsnap-src.zip")
        deploy.edit("CBSNAP_RATE_LIMIT: '20'", "CBSNAP_RATE_LIMIT: '0'")
        assert deploy("--yes") == 0, deploy.stderr
        disk = emu.add_disk()["DiskId"]
        scf = Scf(emu)

        unsigned = function_url_event("POST", "/snapshots", json.dumps({"storageId": disk}))
        result = scf("Invoke", FunctionName="cbsnap-dev", ClientContext=json.dumps(unsigned))["Result"]
        assert result["ErrMsg"] == "", result
        answer = json.loads(result["RetMsg"])
        assert answer["statusCode"] == 401  # the webhook's answer, not the message handler's 9003

        body = json.dumps({"storageId": disk, "snapshotName": "via-url"})
        headers = auth_headers(
            "s3cret-for-tests-0123456789abcdef0123", signing_payload(body.encode(), {}), time.time()
        )
        signed = function_url_event("POST", "/snapshots", body, {k.lower(): v for k, v in headers.items()})
        result = scf("Invoke", FunctionName="cbsnap-dev", ClientContext=json.dumps(signed))["Result"]
        answer = json.loads(result["RetMsg"])
        assert answer["statusCode"] == 200, answer
        [snapshot] = emu.snapshots(disk_id=disk)
        assert snapshot["SnapshotName"] == "via-url"
