"""The diff: what the cloud has (``Observed``) against what the file asks for (``Desired``), as a list of
changes, each with the API call that makes it and the fields that differ. Pure: no calls here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .model import CodePackage, Desired, FunctionSpec, TriggerSpec

MANAGED_TRIGGER_TYPES = ("timer", "ckafka", "http")


@dataclass(frozen=True)
class Observed:
    """The cloud's side: GetFunction (None: no such function), the code hash, triggers, async settings."""

    function: dict[str, Any] | None
    code_sha256: str = ""
    triggers: tuple[dict[str, Any], ...] = ()
    async_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """One change: a verb, the resource, the differing fields (name, old, new) and the call to make."""

    verb: str  # create | update | delete
    resource: str
    fields: tuple[tuple[str, str, str], ...]
    action: str  # the SCF action
    params: dict[str, Any]

    def describe(self) -> str:
        """``~ update function configuration: timeout 60 -> 90`` (environment values are never shown)."""
        mark = {"create": "+", "update": "~", "delete": "-"}[self.verb]
        details = "; ".join(
            f"{name} {old} -> {new}" if old or new else name for name, old, new in self.fields
        )
        return f"{mark} {self.verb} {self.resource}" + (f": {details}" if details else "")


def plan(desired: Desired, observed: Observed, code: CodePackage) -> list[Change]:
    """Every change needed, in the order they must be made (function, async settings, triggers)."""
    spec = desired.function
    changes: list[Change] = []
    if observed.function is None:
        changes.append(_create_function(spec, code))
        async_change = _set_async(desired, {}, always=True)
        assert async_change is not None  # always=True always gives one
        changes.append(async_change)
        changes.extend(_create_trigger(spec, t, "create") for t in desired.triggers)
        return changes
    current = observed.function
    if current.get("Runtime") != spec.runtime:
        raise ConfigError(
            f"{spec.name} runs {current.get('Runtime')} and the file asks for {spec.runtime}: SCF cannot "
            "change a function's runtime (UpdateFunctionConfiguration). Delete the function or keep its "
            "runtime."
        )
    code_change = _update_code(spec, current, observed.code_sha256, code)
    if code_change is not None:
        changes.append(code_change)
    config_change = _update_configuration(spec, current)
    if config_change is not None:
        changes.append(config_change)
    async_change = _set_async(desired, observed.async_config, always=False)
    if async_change is not None:
        changes.append(async_change)
    changes.extend(_trigger_changes(spec, desired.triggers, observed.triggers))
    return changes


def _environment(spec: FunctionSpec) -> dict[str, Any]:
    return {"Variables": [{"Key": k, "Value": v} for k, v in spec.environment.items()]}


def _create_function(spec: FunctionSpec, code: CodePackage) -> Change:
    import base64

    params = {
        "FunctionName": spec.name,
        "Namespace": spec.namespace,
        "Runtime": spec.runtime,
        "Handler": spec.handler,
        "MemorySize": spec.memory_size,
        "Timeout": spec.timeout,
        "InitTimeout": spec.init_timeout,
        "Description": spec.description,
        "Role": spec.role,
        "Environment": _environment(spec),
        "Code": {"ZipFile": base64.b64encode(code.data).decode("ascii")},
    }
    if not spec.role:
        del params["Role"]
    fields = (
        ("runtime", "", spec.runtime),
        ("handler", "", spec.handler),
        ("memory", "", f"{spec.memory_size} MB"),
        ("timeout", "", f"{spec.timeout} s"),
        ("environment", "", ", ".join(sorted(spec.environment)) or "(none)"),
        ("code", "", f"{len(code.data) / 1048576:.1f} MB sha256 {code.sha256[:12]}"),
    )
    return Change("create", f"function {spec.name}", fields, "CreateFunction", params)


def _update_code(spec: FunctionSpec, current: dict[str, Any], sha: str, code: CodePackage) -> Change | None:
    import base64

    fields: list[tuple[str, str, str]] = []
    if sha != code.sha256:
        fields.append(("code sha256", sha[:12] or "(unknown)", code.sha256[:12]))
    if current.get("Handler") != spec.handler:
        fields.append(("handler", str(current.get("Handler")), spec.handler))
    if not fields:
        return None
    params = {
        "FunctionName": spec.name,
        "Namespace": spec.namespace,
        "Handler": spec.handler,
        "ZipFile": base64.b64encode(code.data).decode("ascii"),
    }
    return Change("update", "function code", tuple(fields), "UpdateFunctionCode", params)


def _update_configuration(spec: FunctionSpec, current: dict[str, Any]) -> Change | None:
    fields: list[tuple[str, str, str]] = []
    params: dict[str, Any] = {"FunctionName": spec.name, "Namespace": spec.namespace}
    simple = (
        ("description", "Description", spec.description),
        ("memorySize", "MemorySize", spec.memory_size),
        ("timeout", "Timeout", spec.timeout),
        ("initTimeout", "InitTimeout", spec.init_timeout),
        ("role", "Role", spec.role),
    )
    for label, key, wanted in simple:
        have = current.get(key)
        if (have or "") != (wanted or "") and have != wanted:
            fields.append((label, str(have), str(wanted)))
            params[key] = wanted
    variables = (current.get("Environment") or {}).get("Variables") or []
    have_env = {str(v.get("Key")): str(v.get("Value")) for v in variables}
    if have_env != spec.environment:
        added = sorted(set(spec.environment) - set(have_env))
        removed = sorted(set(have_env) - set(spec.environment))
        changed = sorted(
            k for k in set(have_env) & set(spec.environment) if have_env[k] != spec.environment[k]
        )
        summary = [f"+{k}" for k in added] + [f"-{k}" for k in removed] + [f"~{k}" for k in changed]
        fields.append(("environment " + " ".join(summary), "", ""))  # names only: values may be secrets
        params["Environment"] = _environment(spec)
    if not fields:
        return None
    return Change("update", "function configuration", tuple(fields), "UpdateFunctionConfiguration", params)


def _set_async(desired: Desired, current: dict[str, Any], *, always: bool) -> Change | None:
    wanted = desired.async_config
    retry = (current.get("RetryConfig") or [{}])[0].get("RetryNum")
    ttl = current.get("MsgTTL")
    if not always and (retry, ttl) == (wanted.retry_num, wanted.msg_ttl):
        return None
    fields = (
        ("RetryNum", "" if retry is None else str(retry), str(wanted.retry_num)),
        ("MsgTTL", "" if ttl is None else str(ttl), str(wanted.msg_ttl)),
    )
    params = {
        "FunctionName": desired.function.name,
        "Namespace": desired.function.namespace,
        "AsyncTriggerConfig": {"RetryConfig": [{"RetryNum": wanted.retry_num}], "MsgTTL": wanted.msg_ttl},
    }
    verb = "create" if always else "update"
    return Change(verb, "async retry settings", fields, "UpdateFunctionEventInvokeConfig", params)


# -- triggers ------------------------------------------------------------------------------------------
def _trigger_key(trigger: dict[str, Any]) -> tuple[str, str | None]:
    kind = str(trigger.get("Type"))
    return (kind, None if kind == "http" else str(trigger.get("TriggerName")))


def _observed_desc(trigger: dict[str, Any]) -> dict[str, Any]:
    text = str(trigger.get("TriggerDesc") or "")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if trigger.get("Type") == "timer":
        cron = parsed.get("cron") if isinstance(parsed, dict) else text
        return {"cron": " ".join(str(cron or "").split())}
    return parsed if isinstance(parsed, dict) else {}


def _differences(wanted: TriggerSpec, have: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Fields of the trigger that differ (timer cron/argument, ckafka settings, function URL access)."""
    desc = _observed_desc(have)
    diffs: list[tuple[str, str, str]] = []
    if wanted.type == "http":
        net = desc.get("NetConfig") or {}
        have_view: dict[str, Any] = {
            "AuthType": desc.get("AuthType"),
            "EnableIntranet": bool(net.get("EnableIntranet", False)),
            "EnableExtranet": bool(net.get("EnableExtranet", False)),
        }
        wanted_net = wanted.desc["NetConfig"]
        assert isinstance(wanted_net, dict)
        wanted_view = {"AuthType": wanted.desc["AuthType"], **wanted_net}
    else:
        have_view = {k: desc.get(k) for k in wanted.desc}
        wanted_view = dict(wanted.desc)
    for key, value in wanted_view.items():
        if have_view.get(key) != value:
            diffs.append((key, repr(have_view.get(key)), repr(value)))
    if wanted.type == "timer" and str(have.get("CustomArgument") or "") != wanted.argument:
        diffs.append(("argument", repr(have.get("CustomArgument") or ""), repr(wanted.argument)))
    if bool(have.get("Enable")) != wanted.enable:
        diffs.append(("enable", str(bool(have.get("Enable"))), str(wanted.enable)))
    if str(have.get("Qualifier") or "$LATEST") != wanted.qualifier:
        diffs.append(("qualifier", str(have.get("Qualifier")), wanted.qualifier))
    return diffs


def _create_trigger(
    spec: FunctionSpec, trigger: TriggerSpec, verb: str, fields: tuple[tuple[str, str, str], ...] = ()
) -> Change:
    if trigger.type == "timer":
        desc = str(trigger.desc["cron"])
    else:
        desc = json.dumps(trigger.desc, separators=(",", ":"))
    params: dict[str, Any] = {
        "FunctionName": spec.name,
        "Namespace": spec.namespace,
        "Type": trigger.type,
        # SCF names a function URL itself; the name sent is not kept.
        "TriggerName": trigger.name or f"{spec.name}-url",
        "TriggerDesc": desc,
        "Qualifier": trigger.qualifier,
        "Enable": "OPEN" if trigger.enable else "CLOSE",
    }
    if trigger.argument:
        params["CustomArgument"] = trigger.argument
    if not fields:
        shown = (
            trigger.desc.get("cron") if trigger.type == "timer" else json.dumps(trigger.desc, sort_keys=True)
        )
        fields = (("config", "", str(shown)),)
    return Change(verb, f"trigger {trigger.label}", fields, "CreateTrigger", params)


def _delete_trigger(spec: FunctionSpec, have: dict[str, Any], label: str) -> Change:
    params = {
        "FunctionName": spec.name,
        "Namespace": spec.namespace,
        "Type": have.get("Type"),
        "TriggerName": have.get("TriggerName"),
        "Qualifier": have.get("Qualifier") or "$LATEST",
    }
    return Change("delete", f"trigger {label}", (), "DeleteTrigger", params)


def _trigger_changes(
    spec: FunctionSpec, wanted: tuple[TriggerSpec, ...], observed: tuple[dict[str, Any], ...]
) -> list[Change]:
    """Deletes first (removed or differing triggers), then creates (new or differing ones)."""
    have = {_trigger_key(t): t for t in observed if t.get("Type") in MANAGED_TRIGGER_TYPES}
    deletes: list[Change] = []
    creates: list[Change] = []
    for trigger in wanted:
        current = have.pop(trigger.key, None)
        if current is None:
            creates.append(_create_trigger(spec, trigger, "create"))
            continue
        diffs = _differences(trigger, current)
        if diffs:
            # CreateTrigger/DeleteTrigger only: a differing trigger is replaced (a function URL gets a new
            # address).
            deletes.append(_delete_trigger(spec, current, f"{trigger.label} (to replace it)"))
            creates.append(_create_trigger(spec, trigger, "update", tuple(diffs)))
    for key, current in sorted(have.items(), key=lambda item: str(item[0])):
        label = "function URL" if key[0] == "http" else f"{key[0]}/{key[1]}"
        deletes.append(_delete_trigger(spec, current, label))
    return deletes + creates
