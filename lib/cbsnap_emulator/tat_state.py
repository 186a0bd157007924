"""TAT (TencentCloud Automation Tools) state: agents, scripted command outcomes, invocations, tasks.

Instances are the ones disks are attached to. Every agent is Online unless a test says otherwise. A
command's fate on an instance is scripted with :class:`Outcome` rules; a task's status is a pure
function of the state clock (RUNNING from its start until its end, then the final status), so nothing
needs a tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

OUTCOME_KINDS = ("success", "failure", "timeout")
AGENT_VERSION = "1.1.10"


@dataclass(frozen=True)
class Outcome:
    """What happens to a command on an instance.

    ``kind`` is ``success`` (exit 0), ``failure`` (``exit_code``, non-zero) or ``timeout`` (runs until
    the command's Timeout). ``duration`` is the run time in state-clock seconds (None: the emulator's
    ``command_seconds``); a run longer than the command's Timeout ends as TIMEOUT. ``match`` limits the
    rule to commands whose decoded content contains it.
    """

    kind: str = "success"
    exit_code: int = 0
    output: str = ""
    duration: float | None = None
    match: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in OUTCOME_KINDS:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOME_KINDS)}, got {self.kind!r}")
        if self.kind == "success" and self.exit_code != 0:
            raise ValueError("a success exits with code 0")
        if self.kind == "failure" and self.exit_code == 0:
            raise ValueError("a failure needs a non-zero exit_code")
        if self.duration is not None and (self.duration < 0 or not math.isfinite(self.duration)):
            raise ValueError("duration must be a finite number of seconds >= 0")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (admin API)."""
        return {
            "outcome": self.kind,
            "exit_code": self.exit_code,
            "output": self.output,
            "duration": self.duration,
            "match": self.match,
        }


@dataclass
class Agent:
    """The automation agent of one instance."""

    instance_id: str
    online: bool = True
    environment: str = "Linux"
    changed_at: float = 0.0  # state-clock time of the last status change (the last heartbeat if offline)


@dataclass
class Task:
    """One command on one instance (an InvocationTask)."""

    task_id: str
    invocation_id: str
    command_id: str
    instance_id: str
    region: str
    content: str  # decoded, parameters substituted: what ran
    content_b64: str  # as sent
    command_type: str
    timeout: int
    working_directory: str
    username: str
    command_name: str
    created_at: float
    outcome: Outcome
    run_seconds: float

    @property
    def timed_out(self) -> bool:
        """Whether the command runs past its Timeout."""
        return self.outcome.kind == "timeout" or self.run_seconds > self.timeout

    @property
    def end_at(self) -> float:
        """State-clock time the task reaches its final status."""
        return self.created_at + (self.timeout if self.timed_out else self.run_seconds)

    def status(self, now: float) -> str:
        """The TaskStatus at ``now``."""
        if now < self.end_at:
            return "RUNNING"
        if self.timed_out:
            return "TIMEOUT"
        return "SUCCESS" if self.outcome.kind == "success" else "FAILED"

    def exit_code(self, now: float) -> int:
        """ExitCode at ``now``: 0 while running; -1 for a command killed by its Timeout."""
        status = self.status(now)
        if status == "RUNNING":
            return 0
        if status == "TIMEOUT":
            return -1
        return self.outcome.exit_code

    def record(self, now: float) -> dict[str, Any]:
        """The emulator's record of this command (``Emulator.commands()``), in state-clock seconds."""
        status = self.status(now)
        return {
            "InvocationId": self.invocation_id,
            "InvocationTaskId": self.task_id,
            "CommandId": self.command_id,
            "InstanceId": self.instance_id,
            "Region": self.region,
            "Content": self.content,
            "CommandType": self.command_type,
            "Timeout": self.timeout,
            "TaskStatus": status,
            "ExitCode": None if status == "RUNNING" else self.exit_code(now),
            "Output": "" if status == "RUNNING" else self.outcome.output,
            "start": self.created_at,
            "end": None if status == "RUNNING" else self.end_at,
        }


@dataclass
class Invocation:
    """One RunCommand call."""

    invocation_id: str
    command_id: str
    region: str
    command_name: str
    description: str
    content_b64: str
    command_type: str
    timeout: int
    working_directory: str
    username: str
    parameters: str
    default_parameters: str
    created_at: float
    task_ids: list[str] = field(default_factory=list)


class TatState:
    """Agents, outcome rules, invocations and tasks (callers hold the emulator lock)."""

    def __init__(self, command_seconds: float) -> None:
        self.command_seconds = command_seconds
        self.agents: dict[str, Agent] = {}
        self.rules: dict[str, list[Outcome]] = {}
        self.invocations: dict[str, Invocation] = {}
        self.tasks: dict[str, Task] = {}

    def agent(self, instance_id: str) -> Agent:
        """The agent of ``instance_id`` (Online unless set otherwise)."""
        return self.agents.setdefault(instance_id, Agent(instance_id))

    def set_agent(self, instance_id: str, *, online: bool, now: float) -> None:
        """Put an instance's agent Online or Offline."""
        agent = self.agent(instance_id)
        if agent.online != online:
            agent.online = online
            agent.changed_at = now

    def add_rule(self, instance_id: str, outcome: Outcome) -> None:
        """Script an outcome; a later rule with the same ``match`` replaces the earlier one."""
        rules = [r for r in self.rules.get(instance_id, []) if r.match != outcome.match]
        rules.append(outcome)
        self.rules[instance_id] = rules

    def clear_rules(self, instance_id: str | None = None) -> None:
        """Forget the scripted outcomes of one instance, or of all."""
        if instance_id is None:
            self.rules.clear()
        else:
            self.rules.pop(instance_id, None)

    def outcome_for(self, instance_id: str, content: str) -> Outcome:
        """The newest rule whose ``match`` is in ``content`` (or has none); success by default."""
        for rule in reversed(self.rules.get(instance_id, [])):
            if rule.match is None or rule.match in content:
                return rule
        return Outcome()

    def run_seconds(self, outcome: Outcome) -> float:
        """How long a command with ``outcome`` runs."""
        return self.command_seconds if outcome.duration is None else outcome.duration
