"""The admin control plane: unsigned JSON under ``/_emulator/`` (loopback clients only).

Lets other processes (the CLI demo, multi-process soak tests) inspect and steer a running emulator.
Routes are listed in :data:`ROUTES` and documented in docs/emulator.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .faults import Fault
from .seed import disk_kwargs, snapshot_kwargs

if TYPE_CHECKING:
    from .emulator import Emulator

Reply = tuple[int, Any]


class AdminError(Exception):
    """An admin request error answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _number(body: dict[str, Any], key: str, *, required: bool = True, default: float = 0.0) -> float:
    value = body.get(key)
    if value is None:
        if required:
            raise AdminError(400, f"missing number {key!r}")
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AdminError(400, f"{key!r} must be a number")
    return float(value)


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise AdminError(400, f"{key!r} must be a string or null")
    return value


class AdminApi:
    """Routes admin requests to an :class:`Emulator`."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.routes: dict[tuple[str, str], Callable[[dict[str, str], Any], Reply]] = {
            ("GET", "health"): lambda q, b: (200, {"ok": True}),
            ("GET", "state"): self._state,
            ("GET", "calls"): self._calls,
            ("DELETE", "calls"): self._reset_calls,
            ("GET", "faults"): lambda q, b: (200, {"faults": [f.to_dict() for f in self.emu.faults()]}),
            ("POST", "faults"): self._add_fault,
            ("DELETE", "faults"): self._clear_faults,
            ("GET", "messages"): self._messages,
            ("POST", "disks"): self._add_disks,
            ("POST", "snapshots"): self._add_snapshots,
            ("POST", "queues"): lambda q, b: self._add_named(b, self.emu.add_queue),
            ("POST", "topics"): lambda q, b: self._add_named(b, self.emu.add_topic),
            ("POST", "advance"): self._advance,
            ("POST", "reset"): self._reset,
            ("POST", "rate-limit"): self._rate_limit,
            ("POST", "latency"): self._latency,
            ("POST", "receive"): self._receive,
            ("GET", "functions"): lambda q, b: (200, {"functions": self.emu.functions(q.get("region"))}),
            ("POST", "functions"): self._add_function,
            ("GET", "invocations"): lambda q, b: (200, {"invocations": self.emu.invocations(q.get("state"))}),
            ("POST", "invocations/run"): self._run_invocation,
            ("POST", "invocations/run-pending"): self._run_pending,
            ("POST", "rate-scope"): self._rate_scope,
            ("POST", "tat/agents"): self._tat_agent,
            ("POST", "tat/outcomes"): self._tat_outcome,
            ("DELETE", "tat/outcomes"): self._tat_clear,
            ("GET", "tat/commands"): lambda q, b: (
                200,
                {"commands": self.emu.commands(q.get("instance_id"))},
            ),
        }

    def handle(self, method: str, route: str, query: str, body: bytes) -> Reply:
        """Answer one admin request: (HTTP status, JSON payload)."""
        handler = self.routes.get((method, route))
        if handler is None:
            allowed = sorted(m for m, r in self.routes if r == route)
            if allowed:
                return 405, {"error": f"{method} not allowed on {route}; use {', '.join(allowed)}"}
            return 404, {"error": f"no admin route {route!r}", "routes": sorted({r for _, r in self.routes})}
        try:
            payload = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (UnicodeDecodeError, ValueError):
            return 400, {"error": "the body must be JSON"}
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            return handler(params, payload)
        except AdminError as exc:
            return exc.status, {"error": str(exc)}
        except (ValueError, TypeError, KeyError) as exc:
            return 400, {"error": str(exc)}

    @staticmethod
    def _object(payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise AdminError(400, "the body must be a JSON object")
        return payload

    def _state(self, query: dict[str, str], _: Any) -> Reply:
        region = query.get("region")
        return 200, {
            "now": self.emu.now,
            "disks": self.emu.disks(region),
            "snapshots": self.emu.snapshots(region=region),
            "snapshot_groups": self.emu.snapshot_groups(region),
            "messages": self.emu.messages(),
            "faults": [f.to_dict() for f in self.emu.faults()],
            "faults_injected": self.emu.faults_injected,
        }

    def _calls(self, query: dict[str, str], _: Any) -> Reply:
        calls = self.emu.calls(action=query.get("action"), service=query.get("service"))
        return 200, {"calls": calls, "rejected": self.emu.rejected}

    def _reset_calls(self, _: dict[str, str], __: Any) -> Reply:
        self.emu.reset_calls()
        return 200, {"ok": True}

    def _add_fault(self, _: dict[str, str], payload: Any) -> Reply:
        fault = self.emu.add_fault(Fault.from_dict(self._object(payload)))
        return 200, {"fault": fault.to_dict()}

    def _clear_faults(self, _: dict[str, str], __: Any) -> Reply:
        self.emu.clear_faults()
        return 200, {"ok": True}

    def _messages(self, query: dict[str, str], _: Any) -> Reply:
        return 200, {"messages": self.emu.messages(queue=query.get("queue"), topic=query.get("topic"))}

    def _add_disks(self, _: dict[str, str], payload: Any) -> Reply:
        if isinstance(payload, dict) and "count" in payload:
            options = dict(payload)
            count = options.pop("count")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise AdminError(400, "'count' must be a non-negative integer")
            prefix = options.pop("prefix", None)
            ids = self.emu.add_disks(count, prefix=prefix, **disk_kwargs(options))
            return 200, {"disks": [d for d in self.emu.disks() if d["DiskId"] in set(ids)]}
        entries = payload if isinstance(payload, list) else [self._object(payload)]
        return 200, {"disks": [self.emu.add_disk(**disk_kwargs(self._object(e))) for e in entries]}

    def _add_snapshots(self, _: dict[str, str], payload: Any) -> Reply:
        entries = payload if isinstance(payload, list) else [self._object(payload)]
        ids = [self.emu.add_snapshot(self._object(e)["DiskId"], **snapshot_kwargs(e)) for e in entries]
        return 200, {"snapshots": [s for s in self.emu.snapshots() if s["SnapshotId"] in set(ids)]}

    def _add_named(self, payload: Any, add: Callable[[str], None]) -> Reply:
        name = self._object(payload).get("name")
        if not isinstance(name, str):
            raise AdminError(400, "missing string 'name'")
        add(name)
        return 200, {"ok": True}

    def _advance(self, _: dict[str, str], payload: Any) -> Reply:
        seconds = _number(self._object(payload), "seconds")
        return 200, {"now": self.emu.advance(seconds)}

    def _reset(self, _: dict[str, str], __: Any) -> Reply:
        self.emu.reset()
        return 200, {"ok": True}

    def _rate_limit(self, _: dict[str, str], payload: Any) -> Reply:
        body = self._object(payload)
        self.emu.set_rate_limit(_number(body, "rps"), _optional_str(body, "action"))
        return 200, {"ok": True}

    def _latency(self, _: dict[str, str], payload: Any) -> Reply:
        body = self._object(payload)
        self.emu.set_latency(_number(body, "seconds"), _optional_str(body, "action"))
        return 200, {"ok": True}

    def _add_function(self, _: dict[str, str], payload: Any) -> Reply:
        body = self._object(payload)
        name, code_dir = _optional_str(body, "name"), _optional_str(body, "codeDir")
        if name is None or code_dir is None:
            raise AdminError(400, "missing string 'name' or 'codeDir'")
        environment = body.get("environment") or {}
        python_path = body.get("pythonPath") or []
        if not isinstance(environment, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in environment.items()
        ):
            raise AdminError(400, "'environment' must be an object of strings")
        if not isinstance(python_path, list) or not all(isinstance(p, str) for p in python_path):
            raise AdminError(400, "'pythonPath' must be a list of strings")
        view = self.emu.add_function(
            name,
            code_dir=code_dir,
            handler=_optional_str(body, "handler") or "index.main_handler",
            environment=environment,
            timeout=int(_number(body, "timeout", required=False, default=3)),
            memory_size=int(_number(body, "memorySize", required=False, default=128)),
            runtime=_optional_str(body, "runtime") or "Python3.10",
            namespace=_optional_str(body, "namespace") or "default",
            region=_optional_str(body, "region") or "ap-guangzhou",
            python_path=python_path,
        )
        return 200, {"function": view}

    def _run_invocation(self, _: dict[str, str], payload: Any) -> Reply:
        request_id = _optional_str(self._object(payload), "id")
        if request_id is None:
            raise AdminError(400, "missing string 'id'")
        try:
            return 200, {"invocation": self.emu.run_invocation(request_id)}
        except KeyError:
            return 404, {"error": f"no invocation {request_id!r}"}

    def _run_pending(self, _: dict[str, str], payload: Any) -> Reply:
        rounds = int(_number(self._object(payload), "max_rounds", required=False, default=10))
        return 200, {"ran": self.emu.run_pending(rounds), "pending": self.emu.invocations("pending")}

    def _receive(self, _: dict[str, str], payload: Any) -> Reply:
        body = self._object(payload)
        queue = _optional_str(body, "queue")
        if queue is None:
            raise AdminError(400, "missing string 'queue'")
        max_messages = int(_number(body, "max_messages", required=False, default=10))
        try:
            messages = self.emu.receive(queue, max_messages)
        except KeyError:
            return 404, {"error": f"no queue named {queue!r}"}
        return 200, {"messages": messages}

    def _rate_scope(self, _: dict[str, str], payload: Any) -> Reply:
        scope = _optional_str(self._object(payload), "scope")
        if scope is None:
            raise AdminError(400, "missing string 'scope' (action or region)")
        self.emu.set_rate_scope(scope)
        return 200, {"ok": True}

    @staticmethod
    def _instance(body: dict[str, Any]) -> str:
        instance = _optional_str(body, "instance_id")
        if instance is None:
            raise AdminError(400, "missing string 'instance_id'")
        return instance

    def _tat_agent(self, _: dict[str, str], payload: Any) -> Reply:
        body = self._object(payload)
        online = body.get("online", True)
        if not isinstance(online, bool):
            raise AdminError(400, "'online' must be true or false")
        self.emu.set_agent(self._instance(body), online=online)
        return 200, {"ok": True}

    def _tat_outcome(self, _: dict[str, str], payload: Any) -> Reply:
        body = dict(self._object(payload))
        instance = self._instance(body)
        unknown = sorted(set(body) - {"instance_id", "outcome", "exit_code", "output", "duration", "match"})
        if unknown:
            raise AdminError(400, f"unknown key(s): {', '.join(unknown)}")
        exit_code = body.get("exit_code")
        if exit_code is not None and (isinstance(exit_code, bool) or not isinstance(exit_code, int)):
            raise AdminError(400, "'exit_code' must be an integer")
        duration = body.get("duration")
        self.emu.set_command_outcome(
            instance,
            _optional_str(body, "outcome") or "success",
            exit_code=exit_code,
            output=_optional_str(body, "output") or "",
            duration=None if duration is None else _number(body, "duration"),
            match=_optional_str(body, "match"),
        )
        return 200, {"ok": True}

    def _tat_commands(self, query: dict[str, str], _: Any) -> Reply:
        return 200, {"commands": self.emu.commands(query.get("instance_id"))}

    def _tat_clear(self, query: dict[str, str], _: Any) -> Reply:
        self.emu.clear_command_outcomes(query.get("instance_id"))
        return 200, {"ok": True}
