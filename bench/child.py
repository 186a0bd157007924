"""One measured run in a fresh process; writes its figures as JSON to ``--out``.

``invoke``: one timer invocation through ``handlers.timer.main_handler``, configured
only by the environment the parent passes (``CBSNAP_*``, ``TENCENTCLOUD_*``), as SCF
would. Its per-disk log records go to stdout, which the parent discards.

``naive``: the baseline a hand-written function would be: a sequential loop of the
SDK's ``CbsClient.CreateSnapshot`` over the same kind of disks.

Only the standard library is imported before the measured part starts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def invoke(disks: list[str], name: str) -> dict[str, Any]:
    """One timer invocation over ``disks``."""
    sys.path[:0] = [str(ROOT), str(ROOT / "lib")]
    import handlers.timer

    rss_import = _rss_kb()
    event = {
        "Type": "Timer",
        "TriggerName": name,
        "Time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "Message": json.dumps({"disks": disks, "snapshotName": name}),
    }
    context = {
        "memory_limit_in_mb": 64,
        "time_limit_in_ms": 900_000,
        "request_id": f"bench-{name}",
        "function_name": "cbsnap-bench",
        "namespace": "default",
    }
    start = time.perf_counter()
    response = handlers.timer.main_handler(event, context)
    wall = time.perf_counter() - start
    failures = Counter(
        f"{r['code']} {str(r.get('message') or '').split(':')[0][:40]}"
        for r in response["results"]
        if r["code"] != 0
    )
    return {
        "wall_s": wall,
        "total": response["total"],
        "succeeded": response["succeeded"],
        "failed": response["failed"],
        "not_attempted": response["notAttempted"],
        "failures": dict(failures.most_common(5)),
        "rss_after_import_kb": rss_import,
        "peak_rss_kb": _rss_kb(),
    }


def naive(disks: list[str], name: str) -> dict[str, Any]:
    """A plain sequential loop over the SDK's CreateSnapshot."""
    from tencentcloud.cbs.v20170312 import cbs_client, models
    from tencentcloud.common.credential import Credential
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile

    host = os.environ["CBSNAP_ENDPOINT"].split("://", 1)[-1]
    cred = Credential(os.environ["TENCENTCLOUD_SECRETID"], os.environ["TENCENTCLOUD_SECRETKEY"])
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=host))
    client = cbs_client.CbsClient(cred, "ap-guangzhou", profile)
    errors: Counter[str] = Counter()
    ok = 0
    start = time.perf_counter()
    for disk_id in disks:
        req = models.CreateSnapshotRequest()
        req.DiskId = disk_id
        req.SnapshotName = name
        try:
            client.CreateSnapshot(req)
            ok += 1
        except TencentCloudSDKException as exc:
            errors[str(exc.code)] += 1
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "total": len(disks),
        "succeeded": ok,
        "failed": len(disks) - ok,
        "not_attempted": 0,
        "failures": dict(errors),
        "peak_rss_kb": _rss_kb(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("invoke", "naive"))
    parser.add_argument("--disks", type=Path, required=True, help="JSON list of disk IDs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default="bench")
    args = parser.parse_args()
    disks = json.loads(args.disks.read_text(encoding="utf-8"))
    run = invoke if args.mode == "invoke" else naive
    args.out.write_text(json.dumps(run(disks, args.name)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
