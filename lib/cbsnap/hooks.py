"""Application-consistent snapshots: ``pre`` and ``post`` scripts around each instance's snapshots.

A request with ``hooks`` (:class:`~cbsnap.models.Hooks`) is handled instance by instance, in
parallel (disks not attached to an instance have no application to quiesce: they are
snapshotted as usual and labelled ``crash``):

1. one ``DescribeAutomationAgentStatus`` per region tells whose TAT agent is ``Online``;
2. time is checked first: ``pre`` only runs when the invocation has time for ``pre``'s timeout,
   the creates, and ``post``'s timeout after them; otherwise nothing is frozen;
3. ``RunCommand(pre)``, then ``DescribeInvocationTasks`` until the task reaches a final state
   (or its timeout passes);
4. the instance's disks are snapshotted — as one CreateSnapshotGroup with ``consistent: true`` —
   with a deadline that keeps ``post``'s time in reserve;
5. ``RunCommand(post)`` runs **whenever ``pre`` was started** (also when ``pre`` failed or timed out,
   when a create failed, or when the creates ran out of time), and is waited for like ``pre``.

Each result says ``"consistency": "application"`` (``pre`` succeeded; ``freezeMs`` is the time from
``pre``'s success to ``post``'s start) or ``"crash"`` (``pre`` failed, timed out, could not run, or
there was no time, with ``onFailure: "crash"``); with ``onFailure: "skip"`` such disks get a 16110
``Hooks.Failed`` result and no snapshot. ``hooks`` in each result names the instance and both
scripts' final states. The scripts themselves are never logged; their output (at most 1 KB, after
the runtime's secret redaction) is, one ``hooks.pre``/``hooks.post`` record per run.

A redelivered request runs the scripts again around the adoption of the snapshots it made before
(the per-disk keys still prevent a second snapshot).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, DeadlineReached
from cbsnap.models import DiskTarget, Hooks, SnapshotResult
from cbsnap.pacing import Sleep
from cbsnap.request import Placed, Request
from cbsnap.scf import Clock, Deadline
from cbsnap.selectors import Resolution
from cbsnap.snapshots import SnapshotService
from cbsnap.workers import Parallel, sequential

if TYPE_CHECKING:
    from cbsnap.groups import ConsistentGroups
    from cbsnap.logs import Log
    from cbsnap.tat import TaskInfo

APPLICATION = "application"
CRASH = "crash"
ONLINE = "Online"
POLL_INTERVAL = 1.0  # TAT commands take seconds; polling faster only spends the 20/s budget
POLL_MAX_INTERVAL = 3.0
# Beyond a script's own timeout: how long TAT may take to report the final state.
POLL_GRACE = 5.0
# Kept for one instance's creates when deciding whether there is time to freeze.
CREATE_BUDGET = 10.0
OUTPUT_LOG_LIMIT = 1024


class TatCalls(Protocol):
    """The TAT calls hooks need (:class:`cbsnap.tat.TatApi` implements them over the SDK)."""

    region: str

    def agent_status(self, instance_ids: Sequence[str], deadline: Deadline) -> dict[str, str]:
        """AgentStatus per known instance."""
        ...

    def run_command(
        self, instance_id: str, script: str, *, timeout: int, name: str, deadline: Deadline
    ) -> str:
        """Start ``script`` on one instance; returns the InvocationId."""
        ...

    def invocation_tasks(self, invocation_id: str, deadline: Deadline) -> list[TaskInfo]:
        """The tasks of one invocation."""
        ...


@dataclass(frozen=True)
class ScriptRun:
    """What became of one script: ``started`` means it may have run (a post is then owed)."""

    status: str  # a TAT TaskStatus, or NOT_STARTED / UNKNOWN (ambiguous start) / RUNNING (gave up waiting)
    started: bool = False
    invocation_id: str | None = None
    exit_code: int | None = None
    detail: str = ""
    sent_at: float | None = None  # when RunCommand returned (the runtime's clock)

    @property
    def succeeded(self) -> bool:
        """True for a final SUCCESS."""
        return self.status == "SUCCESS"


NOT_RUN = ScriptRun("NOT_RUN")


@dataclass(frozen=True)
class _Job:
    """One request's hooks run: what every step needs."""

    request: Request
    resolution: Resolution
    deadline: Deadline
    hooks: Hooks


class HookRunner:
    """Runs a request with ``hooks`` (see the module docstring)."""

    def __init__(
        self,
        tat: Callable[[str], TatCalls],
        *,
        snapshots: SnapshotService,
        groups: Callable[[], ConsistentGroups],
        logger: Log,
        parallel: Parallel = sequential,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self._tat = tat
        self._snapshots = snapshots
        self._groups = groups
        self._logger = logger
        self._parallel = parallel
        self._sleep = sleep
        self._clock = clock

    def snapshot(self, request: Request, resolution: Resolution, deadline: Deadline) -> list[Placed]:
        """One placed result per eligible disk, instance by instance."""
        options = request.options
        assert options is not None and options.hooks is not None
        instances: dict[tuple[str, str], list[DiskTarget]] = {}
        loose: list[DiskTarget] = []
        for target in resolution.eligible:
            info = resolution.infos.get(target.disk_id)
            if info is None or not info.instance_id:
                loose.append(target)
            else:
                instances.setdefault((target.region or "", info.instance_id), []).append(target)
        agents = self._agents(instances, deadline)
        job = _Job(request, resolution, deadline, options.hooks)

        def work(item: tuple[tuple[str, str], list[DiskTarget]]) -> list[Placed]:
            where, members = item
            return self._instance(job, where, members, agents[where])

        placed: list[Placed] = []
        for part in self._parallel(work, list(instances.items())):
            placed.extend(part)
        if loose:
            unattached = {
                "pre": NOT_RUN.status,
                "post": NOT_RUN.status,
                "reason": "not attached to an instance",
            }
            placed.extend(_decorated(self._create(job, loose, deadline), CRASH, None, unattached))
        return placed

    # -- one instance ------------------------------------------------------------------------------

    def _instance(
        self, job: _Job, where: tuple[str, str], members: list[DiskTarget], agent: str
    ) -> list[Placed]:
        region, instance = where
        hooks, deadline = job.hooks, job.deadline
        tat = self._tat(region)
        post_reserve = hooks.timeoutSeconds + POLL_GRACE
        if agent != ONLINE:
            return self._unfrozen(job, members, f"TAT agent {agent}", instance)
        if deadline.remaining() < hooks.timeoutSeconds + POLL_GRACE + CREATE_BUDGET + post_reserve:
            why = (
                f"not enough time left for pre ({hooks.timeoutSeconds} s), the snapshots and post "
                f"({hooks.timeoutSeconds} s): nothing was frozen"
            )
            return self._unfrozen(job, members, why, instance)
        # pre may use what the creates and post do not need
        pre = self._run(
            job, tat, instance, "pre", _shortened(deadline, CREATE_BUDGET + post_reserve, self._clock)
        )
        frozen_at = self._clock() if pre.succeeded else None
        created: list[Placed] = []
        try:
            if pre.succeeded or hooks.onFailure == "crash":
                created = self._create(job, members, _shortened(deadline, post_reserve, self._clock))
        finally:  # post runs whenever pre was started, whatever happened in between
            post = self._run(job, tat, instance, "post", deadline) if pre.started else NOT_RUN
        info: dict[str, Any] = {"instanceId": instance, "pre": pre.status, "post": post.status}
        if pre.succeeded:
            freeze_ms = None
            if frozen_at is not None and post.sent_at is not None:
                freeze_ms = max(0, round((post.sent_at - frozen_at) * 1000))
            return _decorated(created, APPLICATION, freeze_ms, info)
        info["reason"] = _why(pre)
        if hooks.onFailure == "crash":
            return _decorated(created, CRASH, None, info)
        return _skipped(members, f"pre-script {_why(pre)} on {instance}", info)

    def _unfrozen(self, job: _Job, members: list[DiskTarget], why: str, instance: str) -> list[Placed]:
        """Nothing was started on the instance: crash-consistent snapshots, or none (skip)."""
        info = {"instanceId": instance, "pre": NOT_RUN.status, "post": NOT_RUN.status, "reason": why}
        self._logger.warning("hooks.not_run", extra={"instance_id": instance, "reason": why})
        if job.hooks.onFailure == "skip":
            return _skipped(members, f"{why} on {instance}", info)
        return _decorated(self._create(job, members, job.deadline), CRASH, None, info)

    def _create(self, job: _Job, members: list[DiskTarget], deadline: Deadline) -> list[Placed]:
        """The members' snapshots, as a group with ``consistent``, through the usual idempotent paths."""
        request, resolution = job.request, job.resolution
        part = Resolution(
            eligible=list(members),
            infos={t.disk_id: resolution.infos[t.disk_id] for t in members if t.disk_id in resolution.infos},
        )
        if request.options is not None and request.options.consistent:
            return self._groups().snapshot(request, part, deadline)
        return self._snapshots.snapshot(request, part, deadline)

    # -- TAT ----------------------------------------------------------------------------------------

    def _agents(
        self, instances: dict[tuple[str, str], list[DiskTarget]], deadline: Deadline
    ) -> dict[tuple[str, str], str]:
        """Agent status per (region, instance); a failed look reads as "status unknown"."""
        found: dict[tuple[str, str], str] = {}
        for region in dict.fromkeys(r for r, _ in instances):
            wanted = [i for r, i in instances if r == region]
            try:
                status = self._tat(region).agent_status(wanted, deadline)
            except (CloudError, DeadlineReached) as exc:
                why = exc.describe() if isinstance(exc, CloudError) else str(exc)
                self._logger.warning("hooks.agent_status.failed", extra={"region": region, "error": why})
                status = {}
            for instance in wanted:
                found[(region, instance)] = status.get(instance) or "status unknown"
        return found

    def _run(self, job: _Job, tat: TatCalls, instance: str, which: str, deadline: Deadline) -> ScriptRun:
        """Run one script and wait for its final state (or until its timeout or ``deadline`` passes)."""
        hooks = job.hooks
        script = hooks.pre if which == "pre" else hooks.post
        try:
            invocation = tat.run_command(
                instance, script, timeout=hooks.timeoutSeconds, name=f"cbsnap-{which}", deadline=deadline
            )
        except DeadlineReached as exc:
            run = ScriptRun("NOT_STARTED", detail=str(exc))
        except CloudError as exc:
            # After an ambiguous failure the script may be running: a post is owed all the same.
            status = "UNKNOWN" if exc.is_ambiguous else "NOT_STARTED"
            run = ScriptRun(status, started=exc.is_ambiguous, detail=exc.describe())
        else:
            run = self._wait(tat, instance, invocation, hooks.timeoutSeconds + POLL_GRACE, deadline)
        self._log(which, instance, tat.region, run, job.request)
        return run

    def _wait(
        self, tat: TatCalls, instance: str, invocation: str, patience: float, deadline: Deadline
    ) -> ScriptRun:
        sent_at = self._clock()
        waited, interval = 0.0, POLL_INTERVAL
        last_error = ""
        while True:
            pause = min(interval, deadline.remaining())
            if pause <= 0 or waited >= patience:
                why = f"still running after {waited:.0f} s" + (f"; {last_error}" if last_error else "")
                return ScriptRun("RUNNING", True, invocation, detail=why, sent_at=sent_at)
            self._sleep(pause)
            waited += pause
            interval = min(interval * 1.5, POLL_MAX_INTERVAL)
            try:
                tasks = tat.invocation_tasks(invocation, deadline)
            except (CloudError, DeadlineReached) as exc:  # keep waiting: the script runs regardless
                last_error = exc.describe() if isinstance(exc, CloudError) else str(exc)
                continue
            task = next((t for t in tasks if t.instance_id == instance), None)
            if task is not None and task.final:
                detail = task.output[-OUTPUT_LOG_LIMIT:] if task.output else task.error_info
                return ScriptRun(task.status, True, invocation, task.exit_code, detail, sent_at)

    def _log(self, which: str, instance: str, region: str, run: ScriptRun, request: Request) -> None:
        """One record per script run: its state, exit code and (truncated) output; never the script."""
        record = {
            "request_key": request.meta.request_key,
            "instance_id": instance,
            "region": region,
            "invocation_id": run.invocation_id,
            "status": run.status,
            "exit_code": run.exit_code,
            "output": run.detail[-OUTPUT_LOG_LIMIT:],
        }
        if run.succeeded:
            self._logger.info(f"hooks.{which}", extra=record)
        elif which == "post" and run.started is False and run.status != NOT_RUN.status:
            # pre ran but post could not start: the application may still be frozen
            self._logger.error("hooks.post.failed", extra=record)
        else:
            self._logger.warning(f"hooks.{which}.failed", extra=record)


def _why(run: ScriptRun) -> str:
    exit_code = f" (exit {run.exit_code})" if run.exit_code not in (None, 0) else ""
    return f"{run.status}{exit_code}" + (f": {run.detail[:200]}" if run.detail and not run.started else "")


def _shortened(deadline: Deadline, reserve: float, clock: Clock) -> Deadline:
    """A deadline ``reserve`` seconds before ``deadline``."""
    return Deadline.after(max(deadline.remaining() - reserve, 0.0), clock)


def _decorated(
    placed: list[Placed], consistency: str, freeze_ms: int | None, info: dict[str, Any]
) -> list[Placed]:
    """Every snapshot result gets the consistency it has; every result the hooks' story."""
    return [
        (
            position,
            result.model_copy(
                update={"consistency": consistency, "freezeMs": freeze_ms, "hooks": info}
                if result.ok and result.action is None
                else {"hooks": info}
            ),
        )
        for position, result in placed
    ]


def _skipped(members: list[DiskTarget], why: str, info: dict[str, Any]) -> list[Placed]:
    """``onFailure: "skip"``: a clear failure per disk, and no snapshot."""
    message = f"hooks: {why}; onFailure is skip, so no snapshot was made"
    return [
        (
            t.position,
            SnapshotResult.failure(
                t.disk_id, t.snapshot_name, SeedCode.HOOKS_FAILED, message, region=t.region
            ).model_copy(update={"hooks": info}),
        )
        for t in members
    ]
