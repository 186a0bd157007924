"""TAT 2020-10-28 actions: DescribeAutomationAgentStatus, RunCommand, DescribeInvocationTasks and
DescribeInvocations.

Instances are those the region's disks are attached to. RunCommand is all-or-nothing: an unknown
instance, or one whose agent is offline, fails the whole call (the API documents that a call naming an
instance without an online agent fails). Tasks then run on the state clock as scripted (tat_state.py).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from . import ids
from .context import Context, Handler
from .errors import ApiError
from .params import Filter, Params
from .tat_state import AGENT_VERSION, Invocation, Task

MAX_CONTENT_LENGTH = 64 * 1024  # "Base64 编码后的字符串长度不能超过 64KB"
MAX_RUN_INSTANCES = 200
MAX_QUERY_IDS = 100
MAX_FILTERS, MAX_FILTER_VALUES = 10, 5
TIMEOUT_RANGE = (1, 86_400)
DEFAULT_TIMEOUT = 60
MAX_OUTPUT_BYTES = 24 * 1024  # TaskResult.Output: "最大长度24KB"
COMMAND_TYPES = ("SHELL", "POWERSHELL", "BAT")
LINUX_COMMAND_TYPES = ("SHELL",)
MAX_COMMAND_NAME_BYTES = 60
MAX_DESCRIPTION_LENGTH = 120
_COMMAND_NAME = re.compile(r"^[\w.\-]+$")
_PARAMETER = re.compile(r"\{\{\s*([A-Za-z0-9_-]{1,64})\s*\}\}")


def iso(epoch: float | None) -> str | None:
    """TAT's ``datetime_iso``, e.g. ``2020-11-05T07:49:58+00:00`` (None stays null)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc).isoformat()


def instances_in(ctx: Context) -> dict[str, str]:
    """Instances the region knows (through its disks) -> their first disk's id (creation order)."""
    found: dict[str, str] = {}
    for disk in ctx.state.disks.values():
        if disk.region != ctx.region:
            continue
        for instance in (disk.instance_id, *disk.api.get("InstanceIdList", [])):
            if instance:
                found.setdefault(instance, disk.disk_id)
    return found


def _paging(p: Params) -> tuple[int, int]:
    limit = p.integer("Limit", 20)
    offset = p.integer("Offset", 0)
    assert limit is not None and offset is not None
    if not 1 <= limit <= 100 or offset < 0:
        raise ApiError("InvalidParameterValue", "`Limit` must be 1 to 100 and `Offset` must be >= 0.")
    return offset, limit


def _ids_xor_filters(p: Params, ids_key: str) -> tuple[list[str] | None, list[Filter] | None]:
    wanted, filters = p.strings(ids_key), p.filters()
    if wanted is not None and filters is not None:
        raise ApiError("InvalidParameter.ConflictParameter", f"`{ids_key}` and `Filters` cannot be combined.")
    if wanted is not None and len(wanted) > MAX_QUERY_IDS:
        raise ApiError("InvalidParameterValue.LimitExceeded", f"At most {MAX_QUERY_IDS} `{ids_key}`.")
    if filters is not None:
        if len(filters) > MAX_FILTERS:
            raise ApiError("InvalidParameterValue.LimitExceeded", f"At most {MAX_FILTERS} `Filters`.")
        for f in filters:
            if len(f.values) > MAX_FILTER_VALUES:
                raise ApiError(
                    "LimitExceeded.FilterValueExceeded", f"The filter `{f.name}` has more than 5 values."
                )
    return wanted, filters


def _check_ids(values: tuple[str, ...] | list[str], shape: re.Pattern[str], code: str, what: str) -> None:
    for value in values:
        if not shape.match(value):
            raise ApiError(code, f"`{value}` is not a valid {what}.")


def _filtered(
    rows: list[dict[str, Any]],
    filters: list[Filter] | None,
    fields: dict[str, Callable[[dict[str, Any]], str]],
) -> list[dict[str, Any]]:
    for f in filters or []:
        if f.name not in fields:
            raise ApiError("InvalidParameterValue.InvalidFilter", f"The filter `{f.name}` is not supported.")
    return [r for r in rows if all(fields[f.name](r) in f.values for f in filters or [])]


# -- DescribeAutomationAgentStatus -----------------------------------------------------------------
def describe_automation_agent_status(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """DescribeAutomationAgentStatus: the agent of each instance the region knows."""
    p = Params(raw, ("InstanceIds", "Filters", "Limit", "Offset"))
    wanted, filters = _ids_xor_filters(p, "InstanceIds")
    _check_ids(wanted or [], ids.INSTANCE_ID, "InvalidParameterValue.InvalidInstanceId", "instance id")
    offset, limit = _paging(p)
    rows: list[dict[str, Any]] = []
    for instance in instances_in(ctx):
        if wanted is not None and instance not in wanted:
            continue
        agent = ctx.state.tat.agent(instance)
        rows.append(
            {
                "InstanceId": instance,
                "Version": AGENT_VERSION,
                # An online agent beats every few seconds; an offline one stopped when it went offline.
                "LastHeartbeatTime": iso(ctx.now if agent.online else agent.changed_at),
                "AgentStatus": "Online" if agent.online else "Offline",
                "Environment": agent.environment,
                "SupportFeatures": [],
            }
        )
    rows = _filtered(
        rows,
        filters,
        {
            "agent-status": lambda r: str(r["AgentStatus"]),
            "environment": lambda r: str(r["Environment"]),
            "instance-id": lambda r: str(r["InstanceId"]),
        },
    )
    return {"TotalCount": len(rows), "AutomationAgentSet": rows[offset : offset + limit]}


# -- RunCommand ------------------------------------------------------------------------------------
def _decoded_content(p: Params) -> tuple[str, str]:
    content = p.string("Content", required=True)
    assert content is not None
    if len(content) > MAX_CONTENT_LENGTH:
        raise ApiError(
            "InvalidParameterValue.TooLong", f"`Content` is longer than {MAX_CONTENT_LENGTH} characters."
        )
    try:
        text = base64.b64decode(content.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ApiError(
            "InvalidParameterValue.InvalidContent", "`Content` is not Base64 of UTF-8 text."
        ) from exc
    if not text:
        raise ApiError("InvalidParameterValue.InvalidContent", "`Content` is empty.")
    return content, text


def _json_object(p: Params, key: str) -> dict[str, str]:
    text = p.string(key)
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ApiError(
            "InvalidParameterValue.ParameterInvalidJsonFormat", f"`{key}` is not a JSON object."
        ) from exc
    if not isinstance(value, dict):
        raise ApiError("InvalidParameterValue.ParameterInvalidJsonFormat", f"`{key}` is not a JSON object.")
    if not all(isinstance(v, str) for v in value.values()):
        raise ApiError(
            "InvalidParameterValue.ParameterValueNotString", f"Every value of `{key}` is a string."
        )
    return value


def _with_parameters(p: Params, text: str) -> tuple[str, str, str]:
    """Substitute ``{{name}}`` placeholders when EnableParameter is true (Parameters over defaults)."""
    enabled = p.boolean("EnableParameter")
    if p.has("DefaultParameterConfs"):
        raise ApiError("UnsupportedOperation", "The emulator does not take `DefaultParameterConfs`.")
    if not enabled:
        if p.has("Parameters") or p.has("DefaultParameters"):
            raise ApiError(
                "InvalidParameterValue.ParameterDisabled", "Parameters need `EnableParameter` set to true."
            )
        return text, "", ""
    values = {**_json_object(p, "DefaultParameters"), **_json_object(p, "Parameters")}
    missing = sorted({m.group(1) for m in _PARAMETER.finditer(text)} - set(values))
    if missing:
        raise ApiError("InvalidParameterValue.LackOfParameterInfo", f"No value for parameter `{missing[0]}`.")
    return (
        _PARAMETER.sub(lambda m: values[m.group(1)], text),
        p.string("Parameters") or "",
        p.string("DefaultParameters") or "",
    )


def _command_options(p: Params) -> tuple[str, int, str, str]:
    command_type = p.string("CommandType") or "SHELL"
    if command_type not in COMMAND_TYPES:
        raise ApiError(
            "InvalidParameterValue", f"`CommandType` must be SHELL, POWERSHELL or BAT, got {command_type}."
        )
    timeout = p.integer("Timeout", DEFAULT_TIMEOUT)
    assert timeout is not None
    if not TIMEOUT_RANGE[0] <= timeout <= TIMEOUT_RANGE[1]:
        raise ApiError("InvalidParameterValue.Range", f"`Timeout` must be within 1..86400, got {timeout}.")
    name = p.string("CommandName") or ""
    if name and (len(name.encode("utf-8")) > MAX_COMMAND_NAME_BYTES or not _COMMAND_NAME.match(name)):
        raise ApiError("InvalidParameterValue.InvalidCommandName", f"`CommandName` `{name}` is not valid.")
    description = p.string("Description") or ""
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise ApiError("InvalidParameterValue.TooLong", "`Description` is longer than 120 characters.")
    return command_type, timeout, name, description


def run_command(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """RunCommand: one invocation, one task per instance, each running as scripted."""
    p = Params(
        raw,
        (
            "Content", "InstanceIds", "CommandName", "Description", "CommandType", "WorkingDirectory",
            "Timeout", "SaveCommand", "EnableParameter", "DefaultParameters", "DefaultParameterConfs",
            "Parameters", "Tags", "Username", "OutputCOSBucketUrl", "OutputCOSKeyPrefix",
        ),
    )  # fmt: skip
    content_b64, text = _decoded_content(p)
    instances = p.strings("InstanceIds")
    if not instances:
        raise ApiError("MissingParameter", "The request is missing a required parameter `InstanceIds`.")
    if len(instances) > MAX_RUN_INSTANCES:
        raise ApiError(
            "InvalidParameterValue.LimitExceeded",
            f"At most {MAX_RUN_INSTANCES} `InstanceIds`, got {len(instances)}.",
        )
    _check_ids(instances, ids.INSTANCE_ID, "InvalidParameterValue.InvalidInstanceId", "instance id")
    command_type, timeout, name, description = _command_options(p)
    text, parameters, defaults = _with_parameters(p, text)
    p.boolean("SaveCommand")  # accepted; saved commands are not emulated
    p.tags()
    known = instances_in(ctx)
    targets = list(dict.fromkeys(instances))
    for instance in targets:
        if instance not in known:
            raise ApiError("ResourceNotFound.InstanceNotFound", f"The instance `{instance}` does not exist.")
        agent = ctx.state.tat.agent(instance)
        if not agent.online:
            raise ApiError(
                "ResourceUnavailable.AgentStatusNotOnline", f"The agent of `{instance}` is not online."
            )
        if agent.environment == "Linux" and command_type not in LINUX_COMMAND_TYPES:
            raise ApiError(
                "InvalidParameterValue.AgentUnsupportedCommandType",
                f"The Linux agent of `{instance}` cannot run {command_type}.",
            )
    tat = ctx.state.tat
    invocation = Invocation(
        invocation_id=ctx.state.ids.new("inv", tat.invocations),
        command_id=ctx.state.ids.new("cmd", {i.command_id for i in tat.invocations.values()}),
        region=ctx.region,
        command_name=name,
        description=description,
        content_b64=content_b64,
        command_type=command_type,
        timeout=timeout,
        working_directory=p.string("WorkingDirectory") or "/root",
        username=p.string("Username") or "root",
        parameters=parameters,
        default_parameters=defaults,
        created_at=ctx.now,
    )
    for instance in targets:
        outcome = tat.outcome_for(instance, text)
        task = Task(
            task_id=ctx.state.ids.new("invt", tat.tasks),
            invocation_id=invocation.invocation_id,
            command_id=invocation.command_id,
            instance_id=instance,
            region=ctx.region,
            content=text,
            content_b64=content_b64,
            command_type=command_type,
            timeout=timeout,
            working_directory=invocation.working_directory,
            username=invocation.username,
            command_name=name,
            created_at=ctx.now,
            outcome=outcome,
            run_seconds=tat.run_seconds(outcome),
        )
        tat.tasks[task.task_id] = task
        invocation.task_ids.append(task.task_id)
    tat.invocations[invocation.invocation_id] = invocation
    return {"CommandId": invocation.command_id, "InvocationId": invocation.invocation_id}


# -- DescribeInvocationTasks -----------------------------------------------------------------------
def _output(task: Task, now: float, hide: bool) -> tuple[str, int]:
    """Base64 output (at most 24 KB of it) and the bytes dropped."""
    if hide or task.status(now) == "RUNNING":
        return "", 0
    data = task.outcome.output.encode("utf-8")
    return base64.b64encode(data[:MAX_OUTPUT_BYTES]).decode("ascii"), max(0, len(data) - MAX_OUTPUT_BYTES)


def render_task(task: Task, now: float, *, hide_output: bool) -> dict[str, Any]:
    """The API InvocationTask at ``now``."""
    status = task.status(now)
    end = None if status == "RUNNING" else task.end_at
    output, dropped = _output(task, now, hide_output)
    return {
        "InvocationId": task.invocation_id,
        "InvocationTaskId": task.task_id,
        "CommandId": task.command_id,
        "TaskStatus": status,
        "InstanceId": task.instance_id,
        "TaskResult": {
            "ExitCode": task.exit_code(now),
            "Output": output,
            "ExecStartTime": iso(task.created_at),
            "ExecEndTime": iso(end),
            "Dropped": dropped,
            "OutputUrl": "",
            "OutputUploadCOSErrorInfo": "",
        },
        "StartTime": iso(task.created_at),
        "EndTime": iso(end),
        "CreatedTime": iso(task.created_at),
        "UpdatedTime": iso(end if end is not None else task.created_at),
        "CommandDocument": {
            "Content": task.content_b64,
            "CommandType": task.command_type,
            "Timeout": task.timeout,
            "WorkingDirectory": task.working_directory,
            "Username": task.username,
            "OutputCOSBucketUrl": "",
            "OutputCOSKeyPrefix": "",
        },
        "ErrorInfo": "Command timed out." if status == "TIMEOUT" else "",
        "InvocationSource": "USER",
        "CommandName": task.command_name,
    }


def describe_invocation_tasks(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """DescribeInvocationTasks: tasks by id or filter, newest first; output hidden unless asked."""
    p = Params(raw, ("InvocationTaskIds", "Filters", "Limit", "Offset", "HideOutput"))
    wanted, filters = _ids_xor_filters(p, "InvocationTaskIds")
    _check_ids(
        wanted or [], ids.INVOCATION_TASK_ID, "InvalidParameterValue.InvalidInvocationTaskId", "task id"
    )
    shapes = {
        "invocation-id": (ids.INVOCATION_ID, "InvalidParameterValue.InvalidInvocationId"),
        "invocation-task-id": (ids.INVOCATION_TASK_ID, "InvalidParameterValue.InvalidInvocationTaskId"),
        "instance-id": (ids.INSTANCE_ID, "InvalidParameterValue.InvalidInstanceId"),
        "command-id": (ids.COMMAND_ID, "InvalidParameterValue.InvalidCommandId"),
    }
    for f in filters or []:
        if f.name in shapes:
            _check_ids(f.values, shapes[f.name][0], shapes[f.name][1], f.name)
    offset, limit = _paging(p)
    hide = p.boolean("HideOutput", default=True)
    tasks = [
        t
        for t in reversed(ctx.state.tat.tasks.values())
        if t.region == ctx.region and (wanted is None or t.task_id in wanted)
    ]
    rows = _filtered(
        [render_task(t, ctx.now, hide_output=hide) for t in tasks],
        filters,
        {
            "invocation-id": lambda r: str(r["InvocationId"]),
            "invocation-task-id": lambda r: str(r["InvocationTaskId"]),
            "instance-id": lambda r: str(r["InstanceId"]),
            "command-id": lambda r: str(r["CommandId"]),
        },
    )
    return {"TotalCount": len(rows), "InvocationTaskSet": rows[offset : offset + limit]}


# -- DescribeInvocations ---------------------------------------------------------------------------
def _invocation_status(statuses: list[str]) -> str:
    if "RUNNING" in statuses:
        return "RUNNING"
    if len(set(statuses)) == 1:
        return statuses[0]
    return "PARTIAL_FAILED"


def describe_invocations(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """DescribeInvocations: RunCommand calls with their tasks' states, newest first."""
    p = Params(raw, ("InvocationIds", "Filters", "Limit", "Offset"))
    wanted, filters = _ids_xor_filters(p, "InvocationIds")
    _check_ids(wanted or [], ids.INVOCATION_ID, "InvalidParameterValue.InvalidInvocationId", "invocation id")
    offset, limit = _paging(p)
    tat = ctx.state.tat
    rows: list[dict[str, Any]] = []
    for inv in reversed(tat.invocations.values()):
        if inv.region != ctx.region or (wanted is not None and inv.invocation_id not in wanted):
            continue
        tasks = [tat.tasks[t] for t in inv.task_ids]
        statuses = [t.status(ctx.now) for t in tasks]
        ends = [t.end_at for t in tasks]
        rows.append(
            {
                "InvocationId": inv.invocation_id,
                "CommandId": inv.command_id,
                "CommandName": inv.command_name,
                "InvocationStatus": _invocation_status(statuses),
                "InvocationTaskBasicInfoSet": [
                    {"InvocationTaskId": t.task_id, "TaskStatus": s, "InstanceId": t.instance_id}
                    for t, s in zip(tasks, statuses, strict=True)
                ],
                "Description": inv.description,
                "StartTime": iso(inv.created_at),
                "EndTime": None if "RUNNING" in statuses else iso(max(ends)),
                "CreatedTime": iso(inv.created_at),
                "UpdatedTime": iso(inv.created_at if "RUNNING" in statuses else max(ends)),
                "Parameters": inv.parameters,
                "DefaultParameters": inv.default_parameters,
                "InstanceKind": "CVM",
                "Username": inv.username,
                "InvocationSource": "USER",
                "CommandContent": inv.content_b64,
                "CommandType": inv.command_type,
                "Timeout": inv.timeout,
                "WorkingDirectory": inv.working_directory,
                "OutputCOSBucketUrl": "",
                "OutputCOSKeyPrefix": "",
            }
        )
    rows = _filtered(
        rows,
        filters,
        {
            "invocation-id": lambda r: str(r["InvocationId"]),
            "command-id": lambda r: str(r["CommandId"]),
            "command-created-by": lambda r: "USER",
            "instance-kind": lambda r: str(r["InstanceKind"]),
        },
    )
    return {"TotalCount": len(rows), "InvocationSet": rows[offset : offset + limit]}


TAT_ACTIONS: dict[str, Handler] = {
    "DescribeAutomationAgentStatus": describe_automation_agent_status,
    "RunCommand": run_command,
    "DescribeInvocationTasks": describe_invocation_tasks,
    "DescribeInvocations": describe_invocations,
}
