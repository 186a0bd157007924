"""The signed TAT client: run a shell script on an instance through its automation agent.

A typed wrapper on top of :class:`~cbsnap.client.SignedApi` (credentials, endpoint override,
pacing, retries, exception translation, deadline-capped timeouts) for TAT, service ``tat``,
version ``2020-10-28``. Like :mod:`cbsnap.tdmq` it is imported only when a request has ``hooks``
(:mod:`cbsnap.hooks`).

It signs with the official SDK's generic ``CommonClient`` (``tencentcloud-sdk-python-common``,
TC3-HMAC-SHA256 like every other client) rather than the TAT split package: that package would
add 0.5 MB (a 240 KB ``models.py`` and its bytecode) to an SCF zip that must stay under 15 MB,
for three actions whose parameters are spelled out here. The names and limits are those of
``tencentcloud-sdk-python-tat`` 3.1.106's models (a dev dependency: the emulator's TAT tests use
it, and the emulator answers ``UnknownParameter`` to any misspelt field):

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tencentcloud.common.common_client import CommonClient

from cbsnap.client import SignedApi, make_credential, make_profile
from cbsnap.errors import CloudError
from cbsnap.scf import Deadline
from cbsnap.settings import Settings

TAT_SERVICE, TAT_VERSION = "tat", "2020-10-28"
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


class TatActions:
    """``CommonClient`` in the shape :class:`~cbsnap.client.SignedApi` calls: one method per action,
    taking the parameters and returning the ``Response`` object (errors raise the SDK's exception)."""

    def __init__(self, client: CommonClient) -> None:
        self._client = client
        self.request = client.request  # the HTTP connection SignedApi caps with the call's deadline

    def __getattr__(self, action: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def call(params: dict[str, Any]) -> dict[str, Any]:
            response: dict[str, Any] = self._client.call_json(action, params)["Response"]
            return response

        return call


def make_tat_client(settings: Settings, region: str) -> TatActions:
    """The TAT client for one region (credentials and endpoint rules as for CBS)."""
    client = CommonClient(
        TAT_SERVICE, TAT_VERSION, make_credential(settings), region, make_profile(settings, TAT_SERVICE)
    )
    return TatActions(client)


class TatApi(SignedApi):
    """Typed TAT calls for one region (see :class:`~cbsnap.client.SignedApi` for the parameters)."""

    def agent_status(self, instance_ids: Sequence[str], deadline: Deadline) -> dict[str, str]:
        """``AgentStatus`` per instance (``Online``/``Offline``); instances TAT does not know are absent."""
        found: dict[str, str] = {}
        ids = list(dict.fromkeys(instance_ids))
        for start in range(0, len(ids), AGENT_QUERY_MAX):
            params = {"InstanceIds": ids[start : start + AGENT_QUERY_MAX], "Limit": AGENT_QUERY_MAX}
            resp = self._call("DescribeAutomationAgentStatus", params, deadline)
            for agent in resp.get("AutomationAgentSet") or ():
                found[str(agent.get("InstanceId"))] = str(agent.get("AgentStatus") or "")
        return found

    def run_command(
        self, instance_id: str, script: str, *, timeout: int, name: str, deadline: Deadline
    ) -> str:
        """RunCommand: ``script`` as SHELL on one instance; returns the InvocationId.

        An ambiguous failure (network error, InternalError) is raised, not retried: the script
        may be running, and the caller decides what that means.
        """
        params = {
            "Content": base64.b64encode(script.encode("utf-8")).decode("ascii"),
            "InstanceIds": [instance_id],
            "CommandType": "SHELL",
            "Timeout": timeout,
            "CommandName": name,
            "Description": "cbsnap snapshot hook",
        }
        resp = self._call("RunCommand", params, deadline, retry_ambiguous=False)
        invocation = resp.get("InvocationId")
        if not invocation:
            raise CloudError(
                "RunCommand", "InternalError.NoInvocationId", "no InvocationId", resp.get("RequestId")
            )
        return str(invocation)

    def invocation_tasks(self, invocation_id: str, deadline: Deadline) -> list[TaskInfo]:
        """The tasks of one RunCommand, with their (decoded) output."""
        params = {
            "Filters": [{"Name": "invocation-id", "Values": [invocation_id]}],
            "HideOutput": False,
            "Limit": 100,
        }
        resp = self._call("DescribeInvocationTasks", params, deadline)
        tasks = []
        for task in resp.get("InvocationTaskSet") or ():
            result = task.get("TaskResult") or {}
            exit_code = result.get("ExitCode")
            tasks.append(
                TaskInfo(
                    instance_id=str(task.get("InstanceId")),
                    status=str(task.get("TaskStatus") or ""),
                    exit_code=None if exit_code is None else int(exit_code),
                    output=_decoded(result.get("Output")),
                    error_info=str(task.get("ErrorInfo") or ""),
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
