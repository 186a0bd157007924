"""The SCF side of the Python facade and the admin API: register functions, list and run invocations.

A run copies what it needs out of the state under the emulator lock, runs the handler in a child process
*without* the lock (the function calls the emulator's API), then records the outcome under the lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import scf_rules as rules
from .errors import ApiError
from .scf_actions import DEFAULT_NAMESPACE, render_function, run_spec
from .scf_runner import LocalHandler, run_here
from .scf_state import Attempt, ScfFunction

if TYPE_CHECKING:
    from .gateway import Gateway

INVOCATION_STATES = ("pending", "running", "done", "failed")


def add_function(
    gateway: Gateway,
    name: str,
    *,
    code_dir: str | Path,
    handler: str,
    environment: Mapping[str, str] | None,
    timeout: int,
    memory_size: int,
    runtime: str,
    namespace: str,
    region: str,
    python_path: Sequence[str | Path],
) -> dict[str, Any]:
    """Register an Active function whose code is a local directory; return its GetFunction view."""
    directory = Path(code_dir).resolve()
    if not directory.is_dir():
        raise ValueError(f"code_dir {directory} is not a directory")
    extra = tuple(Path(p).resolve() for p in python_path)
    try:
        rules.function_name(name)
        variables = rules.environment(
            {"Variables": [{"Key": k, "Value": v} for k, v in (environment or {}).items()]}
        )
        checked = (
            rules.runtime(runtime),
            rules.handler(handler),
            rules.timeout(timeout),
            rules.memory_size(memory_size),
        )
    except ApiError as exc:
        raise ValueError(f"{exc.code}: {exc.message}") from exc
    with gateway.lock:
        state = gateway.runtime.state
        state.check_region(region)
        if state.scf.function(region, namespace, name) is not None:
            raise ValueError(f"function {name} already exists in {region}/{namespace}")
        now = gateway.clock.now()
        fn = ScfFunction(
            region=region,
            namespace=namespace,
            name=name,
            function_id=state.ids.new("lam", {f.function_id for f in state.scf.functions.values()}),
            init_timeout=65,
            description="",
            role="",
            environment=variables,
            added_at=now,
            modified_at=now,
            code_dirs=(directory, *extra),
            busy_until=now,  # registered directly: Active at once
            runtime=checked[0],
            handler=checked[1],
            timeout=checked[2],
            memory_size=checked[3],
        )
        state.scf.functions[fn.key] = fn
        return render_function(fn, now)


def functions(gateway: Gateway, region: str | None = None) -> list[dict[str, Any]]:
    """GetFunction views of every function (optionally of one region), with async retry settings."""
    with gateway.lock:
        now = gateway.clock.now()
        return [
            {**render_function(fn, now), "Region": fn.region, "RetryNum": fn.retry_num, "MsgTTL": fn.msg_ttl}
            for fn in gateway.runtime.state.scf.functions.values()
            if region is None or fn.region == region
        ]


def invocations(gateway: Gateway, state: str | None = None) -> list[dict[str, Any]]:
    """Every invocation (optionally only those in ``state``), oldest first."""
    if state is not None and state not in INVOCATION_STATES:
        raise ValueError(f"state must be one of {', '.join(INVOCATION_STATES)}, got {state!r}")
    with gateway.lock:
        return [
            inv.to_dict()
            for inv in gateway.runtime.state.scf.invocations.values()
            if state is None or inv.state == state
        ]


def run_invocation(gateway: Gateway, request_id: str, here: LocalHandler | None = None) -> dict[str, Any]:
    """Run one pending invocation once; a failure with retries left makes it pending again.

    ``here``: run it with this handler in this process (see :func:`~.scf_runner.run_here`).
    """
    with gateway.lock:
        scf = gateway.runtime.state.scf
        invocation = scf.invocations.get(request_id)
        if invocation is None:
            raise KeyError(f"no invocation {request_id}")
        if invocation.state != "pending":
            raise ValueError(f"invocation {request_id} is {invocation.state}, not pending")
        fn = scf.functions.get(invocation.key)
        runner = scf.runner
        spec = run_spec(fn, invocation) if fn is not None else None
        invocation.state = "running"
    if spec is None:
        attempt = Attempt(
            ok=False, error_type="ResourceNotFound.Function", error_message="the function is gone"
        )
    elif here is not None and runner is not None:
        attempt = run_here(here, spec, runner.context(spec))
    elif runner is None:
        attempt = Attempt(ok=False, error_type="InternalError", error_message="no function runner")
    else:
        attempt = runner.run(spec)
    with gateway.lock:
        invocation.attempts.append(attempt)
        if attempt.ok:
            invocation.state = "done"
        elif invocation.retries_left > 0 and spec is not None:
            invocation.retries_left -= 1
            invocation.state = "pending"  # SCF would retry a minute later; here the next run does
        else:
            invocation.state = "failed"
        return invocation.to_dict()


def run_pending(
    gateway: Gateway, max_rounds: int = 10, here: LocalHandler | None = None
) -> list[dict[str, Any]]:
    """Run pending invocations round after round until none is pending (a run may invoke again, and a
    failure may be retried), at most ``max_rounds`` rounds; returns every run's invocation record."""
    if max_rounds < 1:
        raise ValueError("max_rounds must be >= 1")
    ran: list[dict[str, Any]] = []
    for _ in range(max_rounds):
        pending = [inv["id"] for inv in invocations(gateway, "pending")]
        if not pending:
            break
        ran.extend(run_invocation(gateway, request_id, here) for request_id in pending)
    return ran


__all__ = ["DEFAULT_NAMESPACE", "add_function", "functions", "invocations", "run_invocation", "run_pending"]
