"""The ``cbsnap deploy`` command: read, observe, plan, confirm, execute, report.

Exit codes: 0 done or up to date; 1 a cloud call failed (what was already changed is listed); 2 a usage or
configuration error (nothing was called).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from cbsnap.settings import Endpoint

from . import config
from .errors import CloudError, ConfigError
from .executor import DeployFailed, execute
from .model import CodePackage, Desired
from .planner import Change, Observed, plan
from .scf_api import Connection, ScfApi

DEFAULT_ZIP = Path("dist") / "cbsnap-scf.zip"
# Code.ZipFile limits in the SCF SDK models, and the 10 MB limit of any TC3-signed request body.
CREATE_ZIP_LIMIT = 50 * 1024 * 1024
UPDATE_ZIP_LIMIT = 20 * 1024 * 1024
REQUEST_BODY_LIMIT = 10 * 1024 * 1024
_REQUEST_OVERHEAD = 64 * 1024  # the rest of a CreateFunction body: configuration and environment


@dataclass
class Io:
    """The command's surroundings, injectable for tests: environment, streams, terminal, time."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    interactive: bool | None = None  # None: whether stdin and stdout are terminals
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def is_interactive(self) -> bool:
        """Whether a person can be asked."""
        if self.interactive is not None:
            return self.interactive
        return self.stdin.isatty() and self.stdout.isatty()


def main(args: argparse.Namespace, io: Io | None = None) -> int:
    """Run ``cbsnap deploy`` with parsed ``args``; return the exit code."""
    io = io or Io()
    try:
        desired, code, connection = _prepare(args, io.env)
    except ConfigError as exc:
        print(f"cbsnap deploy: {exc}", file=io.stderr)
        return 2
    api = ScfApi(connection, sleep=io.sleep, clock=io.clock)
    fn = desired.function
    out = io.stdout
    print(
        f"cbsnap deploy: function {fn.name} in {fn.region}/{fn.namespace} (stage {desired.stage})", file=out
    )
    for note in desired.ignored:
        print(f"  note: {note}", file=out)
    try:
        observed = _observe(api, desired)
        changes = plan(desired, observed, code)
    except CloudError as exc:
        _failure(io.stderr, exc, [], args)
        return 1
    except ConfigError as exc:
        print(f"cbsnap deploy: {exc}", file=io.stderr)
        return 2
    if not changes:
        print(f"{fn.name} is up to date: 0 changes.", file=out)
        return 0
    print(f"Plan ({len(changes)} change{'s' if len(changes) != 1 else ''}):", file=out)
    for change in changes:
        print(f"  {change.describe()}", file=out)
    if args.plan:
        print("--plan: nothing was changed.", file=out)
        return 0
    deletes = [c for c in changes if c.verb == "delete"]
    if deletes and not args.yes and not _confirm(io, deletes):
        return 2
    try:
        execute(
            api,
            fn,
            changes,
            function_exists=observed.function is not None,
            report=lambda change: print(f"  done: {change.describe()}", file=out),
        )
    except DeployFailed as exc:
        _failure(io.stderr, exc.error, exc.done, args)
        return 1
    print(f"{fn.name} deployed: {len(changes)} change{'s' if len(changes) != 1 else ''} made.", file=out)
    return 0


def _prepare(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Desired, CodePackage, Connection]:
    """Everything that can fail before a call: the file, the credentials, the endpoint, the zip."""
    path = Path(args.config)
    desired = config.load(path, stage=args.stage, env=env)
    connection = _connection(env, desired.function.region)
    if connection.endpoint:  # a local endpoint that does not answer: say so now, not per call
        from cbsnap_cli.endpoint_check import check_endpoint
        from cbsnap_cli.errors import UsageError

        try:
            check_endpoint(connection.protocol, connection.endpoint, None)
        except UsageError as exc:
            raise ConfigError(str(exc)) from exc
    zip_path = Path(args.zip) if args.zip else path.parent / DEFAULT_ZIP
    return desired, _code(zip_path), connection


def _code(path: Path) -> CodePackage:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the code package {path} ({exc.strerror or exc}): build it with scripts/build.sh "
            "or pass --zip"
        ) from exc
    if not data.startswith(b"PK"):
        raise ConfigError(f"{path} is not a zip file")
    encoded = (len(data) + 2) // 3 * 4
    if len(data) > UPDATE_ZIP_LIMIT or encoded + _REQUEST_OVERHEAD > REQUEST_BODY_LIMIT:
        raise ConfigError(
            f"{path} has {len(data) / 1048576:.1f} MB: as Code.ZipFile (base64) it would not fit a 10 MB "
            "API request (UpdateFunctionCode also caps the zip at 20 MB, CreateFunction at 50 MB). Trim "
            "the package or upload it to COS and deploy with the Serverless CLI."
        )
    return CodePackage(path, data)


def _connection(env: Mapping[str, str], region: str) -> Connection:
    def first(*names: str) -> str | None:
        return next((env[n] for n in names if env.get(n)), None)

    secret_id = first("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRETID")
    secret_key = first("TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_SECRETKEY")
    if not secret_id or not secret_key:
        raise ConfigError(
            "no credentials: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY "
            "(or TENCENTCLOUD_SECRETID/TENCENTCLOUD_SECRETKEY)"
        )
    token = first("TENCENTCLOUD_SESSION_TOKEN", "TENCENTCLOUD_SESSIONTOKEN")
    try:  # the product's own reading of CBSNAP_ENDPOINT (a bare loopback host:port means http)
        endpoint = Endpoint.parse(env.get("CBSNAP_ENDPOINT"))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if endpoint.host is None:
        return Connection(secret_id, secret_key, token, region)
    return Connection(secret_id, secret_key, token, region, endpoint.protocol, endpoint.host_for("scf"))


def _observe(api: ScfApi, desired: Desired) -> Observed:
    """Read-only calls: the function, its code hash, its triggers and async settings."""
    fn = desired.function
    current = api.get_function(fn.name, fn.namespace)
    if current is None:
        return Observed(None)
    return Observed(
        current,
        api.code_sha256(fn.name, fn.namespace),
        tuple(api.list_triggers(fn.name, fn.namespace)),
        api.async_config(fn.name, fn.namespace),
    )


def _confirm(io: Io, deletes: list[Change]) -> bool:
    names = ", ".join(c.resource for c in deletes)
    if not io.is_interactive():
        print(
            f"cbsnap deploy: the plan deletes {names}; not on a terminal, so nothing was changed. "
            "Re-run with --yes to allow it.",
            file=io.stderr,
        )
        return False
    print(f"Delete {names}? [y/N] ", end="", file=io.stdout, flush=True)
    answer = io.stdin.readline().strip().lower()
    if answer in ("y", "yes"):
        return True
    print("Nothing was changed.", file=io.stdout)
    return False


def _failure(err: TextIO, error: CloudError, done: list[Change], args: argparse.Namespace) -> None:
    print(f"cbsnap deploy: {error.action} failed", file=err)
    print(f"  error: {error.code}: {error.message}", file=err)
    print(f"  RequestId: {error.request_id or '(none: the call did not reach the API)'}", file=err)
    if done:
        print("  already changed:", file=err)
        for change in done:
            print(f"    {change.describe()}", file=err)
    else:
        print("  nothing was changed.", file=err)
    again = " ".join(
        ["cbsnap deploy", f"--config {args.config}"]
        + ([f"--stage {args.stage}"] if args.stage else [])
        + ([f"--zip {args.zip}"] if args.zip else [])
    )
    print(
        f"  Fix the cause and re-run `{again}`: it compares again and makes only the changes still missing.",
        file=err,
    )
