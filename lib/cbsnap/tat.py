"""The signed TAT client: run a shell script on an instance through its automation agent.

A typed wrapper over the SDK's ``TatClient`` (service ``tat``, version ``2020-10-28``) on top of
:class:`~cbsnap.client.SignedApi` (credentials, endpoint override, pacing, retries, exception
translation, deadline-capped timeouts). Like :mod:`cbsnap.tdmq` it is imported only when a
request has ``hooks`` (:mod:`cbsnap.hooks`), so no other invocation pays for the TAT SDK.

What is used, as the pinned ``tencentcloud-sdk-python-tat`` 3.1.106 documents it:

* ``DescribeAutomationAgentStatus`` — ``InstanceIds`` (at most 100 a call), answers
  ``AutomationAgentSet[].AgentStatus`` ``Online``/``Offline``;
* ``RunCommand`` — ``Content`` base64 ("Base64 编码后的字符串长度不能超过 64KB"), ``CommandType``
  ``SHELL``, ``Timeout`` 1 to 86400 s (default 60), ``InstanceIds`` (≤ 200); answers an
  ``InvocationId``. It is never re-sent after an ambiguous failure (a second run of a freeze
  script is not harmless), and it has no client token;
* ``DescribeInvocationTasks`` — filter ``invocation-id``, ``HideOutput`` false; ``TaskStatus``
  is final in ``SUCCESS``, ``FAILED``, ``TIMEOUT``, ``TASK_TIMEOUT``, ``DELIVER_FAILED``,
  ``START_FAILED``, ``CANCELLED``, ``TERMINATED``; ``TaskResult.Output`` is base64 (≤ 24 KB).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from tencentcloud.tat.v20201028 import models as tat_models
from tencentcloud.tat.v20201028 import tat_client

from cbsnap.client import SignedApi, make_credential, make_profile
from cbsnap.errors import CloudError
from cbsnap.scf import Deadline
from cbsnap.settings import Settings

AGENT_QUERY_MAX = 100  # DescribeAutomationAgentStatus: "每次请求的上限为 100"
FINAL_STATES = frozenset(
    {"SUCCESS", "FAILED", "TIMEOUT", "TASK_TIMEOUT", "DELIVER_FAILED", "START_FAILED"}
    | {"CANCELLED", "TERMINATED"}
)


@dataclass(frozen=True)
class TaskInfo:
    """One instance's run of a command (an InvocationTask)."""

    instance_id: str
    status: str
    exit_code: int | None = None
    output: str = ""  # decoded; TAT keeps at most 24 KB of it
    error_info: str = ""

    @property
    def final(self) -> bool:
        """True once the task will not change any more."""
        return self.status in FINAL_STATES


def make_tat_client(settings: Settings, region: str) -> tat_client.TatClient:
    """Build the SDK's TatClient for one region (credentials and endpoint rules as for CBS)."""
    return tat_client.TatClient(make_credential(settings), region, make_profile(settings, "tat"))


class TatApi(SignedApi):
    """Typed TAT calls for one region (see :class:`~cbsnap.client.SignedApi` for the parameters)."""

    def agent_status(self, instance_ids: Sequence[str], deadline: Deadline) -> dict[str, str]:
        """``AgentStatus`` per instance (``Online``/``Offline``); instances TAT does not know are absent."""
        found: dict[str, str] = {}
        ids = list(dict.fromkeys(instance_ids))
        for start in range(0, len(ids), AGENT_QUERY_MAX):
            req = tat_models.DescribeAutomationAgentStatusRequest()
            req.InstanceIds = ids[start : start + AGENT_QUERY_MAX]
            req.Limit = AGENT_QUERY_MAX
            resp = self._call("DescribeAutomationAgentStatus", req, deadline)
            for agent in resp.AutomationAgentSet or ():
                found[str(agent.InstanceId)] = str(agent.AgentStatus or "")
        return found

    def run_command(
        self, instance_id: str, script: str, *, timeout: int, name: str, deadline: Deadline
    ) -> str:
        """RunCommand: ``script`` as SHELL on one instance; returns the InvocationId.

        An ambiguous failure (network error, InternalError) is raised, not retried: the script
        may be running, and the caller decides what that means.
        """
        req = tat_models.RunCommandRequest()
        req.Content = base64.b64encode(script.encode("utf-8")).decode("ascii")
        req.InstanceIds = [instance_id]
        req.CommandType = "SHELL"
        req.Timeout = timeout
        req.CommandName = name
        req.Description = "cbsnap snapshot hook"
        resp = self._call("RunCommand", req, deadline, retry_ambiguous=False)
        if not resp.InvocationId:
            raise CloudError("RunCommand", "InternalError.NoInvocationId", "no InvocationId", resp.RequestId)
        return str(resp.InvocationId)

    def invocation_tasks(self, invocation_id: str, deadline: Deadline) -> list[TaskInfo]:
        """The tasks of one RunCommand, with their (decoded) output."""
        req = tat_models.DescribeInvocationTasksRequest()
        flt = tat_models.Filter()
        flt.Name, flt.Values = "invocation-id", [invocation_id]
        req.Filters = [flt]
        req.HideOutput = False
        req.Limit = 100
        resp = self._call("DescribeInvocationTasks", req, deadline)
        tasks = []
        for task in resp.InvocationTaskSet or ():
            result = task.TaskResult
            tasks.append(
                TaskInfo(
                    instance_id=str(task.InstanceId),
                    status=str(task.TaskStatus or ""),
                    exit_code=None if result is None or result.ExitCode is None else int(result.ExitCode),
                    output=_decoded(result.Output if result is not None else None),
                    error_info=str(task.ErrorInfo or ""),
                )
            )
        return tasks


def _decoded(output: str | None) -> str:
    """TaskResult.Output is base64; undecodable output is reported as such, not raised."""
    if not output:
        return ""
    try:
        return base64.b64decode(output).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return "<output is not base64>"
