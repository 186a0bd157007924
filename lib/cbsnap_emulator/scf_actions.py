"""SCF 2018-04-16 actions: function management, triggers, async retry settings and Invoke.

Parameter and response shapes follow tencentcloud-sdk-python-scf 3.1.100 (``scf/v20180416/models.py``);
error codes follow its ``errorcodes.py`` and the per-action lists of the Go SDK (docs/emulator.md).
State lives in ``ctx.state.scf`` per region (the request's X-TC-Region) and namespace.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from . import scf_rules as rules
from .clock import format_datetime
from .context import Context, Handler
from .errors import ApiError
from .params import Params, paging
from .scf_runner import RunSpec
from .scf_state import Attempt, Invocation, ScfFunction, ScfTrigger

DEFAULT_NAMESPACE = "default"
NOT_ACTIVE = {
    "UpdateFunctionCode": "FailedOperation.UpdateFunctionCode",
    "UpdateFunctionConfiguration": "FailedOperation.UpdateFunctionConfiguration",
    "CreateTrigger": "FailedOperation.CreateTrigger",
    "UpdateFunctionEventInvokeConfig": "FailedOperation.FunctionVersionStatusNotActive",
    "Invoke": "FailedOperation.FunctionStatusError",
    "InvokeFunction": "FailedOperation.FunctionStatusError",
    "DeleteFunction": "FailedOperation.FunctionStatusError",
}
LOG_TAIL_BYTES = 4096

# Request parameters of each action in the SDK model; parameters the emulator does not act on are
# accepted and ignored (VPC, CLS, layers…) so that any SDK request is understood.
_CREATE = (
    "FunctionName", "Code", "Handler", "Description", "MemorySize", "Timeout", "Environment", "Runtime",
    "VpcConfig", "Namespace", "Role", "InstallDependency", "ClsLogsetId", "ClsTopicId", "Type", "CodeSource",
    "Layers", "DeadLetterConfig", "PublicNetConfig", "CfsConfig", "InitTimeout", "Tags", "AsyncRunEnable",
    "TraceEnable", "AutoDeployClsTopicIndex", "AutoCreateClsTopic", "ProtocolType", "ProtocolParams",
    "InstanceConcurrencyConfig", "DnsCache", "IntranetConfig",
)  # fmt: skip
_UPDATE_CODE = (
    "FunctionName", "Handler", "CosBucketName", "CosObjectName", "ZipFile", "Namespace", "CosBucketRegion",
    "InstallDependency", "EnvId", "Publish", "Code", "CodeSource",
)  # fmt: skip
_UPDATE_CONFIG = (
    "FunctionName", "Description", "MemorySize", "Timeout", "Runtime", "Environment", "Namespace",
    "VpcConfig", "Role", "InstallDependency", "ClsLogsetId", "ClsTopicId", "Publish", "L5Enable", "Layers",
    "DeadLetterConfig", "PublicNetConfig", "CfsConfig", "InitTimeout", "ProtocolParams",
    "InstanceConcurrencyConfig", "DnsCache", "IntranetConfig", "IgnoreSysLog",
)  # fmt: skip


class AfterLock(dict[str, Any]):
    """An action result that needs work outside the emulator lock (a synchronous Invoke runs a function
    that calls back into the emulator). The gateway calls :meth:`work` without the lock, then
    :meth:`complete` with it; the empty dict itself is never sent."""

    def __init__(self, work: Callable[[], Any], complete: Callable[[Any], dict[str, Any]]) -> None:
        super().__init__()
        self.work = work
        self.complete = complete


# -- helpers ---------------------------------------------------------------------------------------
def _namespace(p: Params) -> str:
    return p.string("Namespace") or DEFAULT_NAMESPACE


def _lookup(ctx: Context, p: Params) -> ScfFunction:
    name = p.string("FunctionName", required=True)
    assert name is not None
    fn = ctx.state.scf.function(ctx.region, _namespace(p), name)
    if fn is None:
        raise ApiError("ResourceNotFound.Function", f"The function `{name}` does not exist.")
    return fn


def _require_active(fn: ScfFunction, ctx: Context, action: str) -> None:
    status = fn.status(ctx.now)
    if status != "Active":
        raise ApiError(
            NOT_ACTIVE[action],
            f"The function `{fn.name}` is {status}; {action} needs it Active. Retry when GetFunction "
            "shows Status Active.",
        )


def _integer(p: Params, name: str, default: int) -> int:
    value = p.integer(name, default)
    assert value is not None
    return value


def _object(p: Params, name: str) -> dict[str, Any] | None:
    value = p.raw.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError("InvalidParameter", f"The parameter `{name}` must be an object.")
    return value


def render_trigger(trigger: ScfTrigger, *, listing: bool = False) -> dict[str, Any]:
    """The Trigger model (GetFunction, CreateTrigger) or TriggerInfo (ListTriggers)."""
    rendered: dict[str, Any] = {
        "ModTime": format_datetime(trigger.modified_at),
        "Type": trigger.type,
        "TriggerDesc": trigger.desc,
        "TriggerName": trigger.name,
        "AddTime": format_datetime(trigger.added_at),
        "Enable": trigger.enable,
        "CustomArgument": trigger.custom_argument,
        "AvailableStatus": "Available",
        "ResourceId": trigger.resource_id,
        "BindStatus": "on",
        "TriggerAttribute": "single",
        "Qualifier": trigger.qualifier,
        "Description": trigger.description,
    }
    if listing:
        rendered["BoundResources"] = ""
    return rendered


def render_function(fn: ScfFunction, now: float) -> dict[str, Any]:
    """The GetFunction response (the fields the emulator keeps; others at their empty values)."""
    status = fn.status(now)
    return {
        "ModTime": format_datetime(fn.modified_at),
        "AddTime": format_datetime(fn.added_at),
        "CodeInfo": "",
        "Description": fn.description,
        "Triggers": [render_trigger(t) for t in fn.triggers],
        "Handler": fn.handler,
        "CodeSize": fn.code_size,
        "Timeout": fn.timeout,
        "FunctionVersion": "$LATEST",
        "Qualifier": "$LATEST",
        "MemorySize": fn.memory_size,
        "Runtime": fn.runtime,
        "FunctionName": fn.name,
        "VpcConfig": {"VpcId": "", "SubnetId": ""},
        "UseGpu": "FALSE",
        "Environment": {"Variables": [dict(v) for v in fn.environment]},
        "CodeResult": "success",
        "CodeError": "",
        "ErrNo": 0,
        "Namespace": fn.namespace,
        "Role": fn.role,
        "InstallDependency": "FALSE",
        "Status": status,
        "StatusDesc": "" if status == "Active" else f"the function is {status.lower()}",
        "StatusReasons": [],
        "ClsLogsetId": "",
        "ClsTopicId": "",
        "FunctionId": fn.function_id,
        "Tags": [],
        "Type": "Event",
        "L5Enable": "FALSE",
        "Layers": [],
        "AvailableStatus": "Available",
        "InitTimeout": fn.init_timeout,
        "AsyncRunEnable": "FALSE",
        "TraceEnable": "FALSE",
        "DnsCache": "FALSE",
    }


def _code_zip(p: Params, limit: int, *, required: bool) -> bytes | None:
    """The zip from ``Code.ZipFile`` (or UpdateFunctionCode's top-level ``ZipFile``)."""
    code = _object(p, "Code") or {}
    encoded = code.get("ZipFile") if code else p.raw.get("ZipFile")
    if encoded is None:
        if code.get("CosBucketName") or p.raw.get("CosBucketName") or code.get("DemoId"):
            raise ApiError(
                "InvalidParameterValue.CodeSource", "Only Code.ZipFile is emulated (not COS or demos)."
            )
        if required:
            raise ApiError("MissingParameter.Code", "The request needs Code.ZipFile.")
        return None
    if not isinstance(encoded, str):
        raise ApiError("InvalidParameterValue.ZipFile", "ZipFile must be a base64 string.")
    return rules.zip_file(encoded, limit)


# -- functions ---------------------------------------------------------------------------------------
def create_function(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """CreateFunction: a new function in ``Creating`` for the transition time, then ``Active``."""
    p = Params(raw, _CREATE)
    name = p.string("FunctionName", required=True)
    assert name is not None
    rules.function_name(name)
    namespace = _namespace(p)
    if ctx.state.scf.function(ctx.region, namespace, name) is not None:
        raise ApiError("ResourceInUse.Function", f"The function `{name}` already exists in `{namespace}`.")
    function_type = p.string("Type") or "Event"
    if function_type != "Event":
        raise ApiError("InvalidParameterValue.Type", "Only event functions (Type Event) are emulated.")
    runtime = rules.runtime(p.string("Runtime"))
    handler = rules.handler(p.string("Handler") or "index.main_handler")
    env = rules.environment(_object(p, "Environment") or {"Variables": []})
    zip_bytes = _code_zip(p, rules.CREATE_ZIP_LIMIT, required=True)
    fn = ScfFunction(
        region=ctx.region,
        namespace=namespace,
        name=name,
        function_id=ctx.state.ids.new("lam", {f.function_id for f in ctx.state.scf.functions.values()}),
        runtime=runtime,
        handler=handler,
        memory_size=rules.memory_size(_integer(p, "MemorySize", 128)),
        timeout=rules.timeout(_integer(p, "Timeout", 3)),
        init_timeout=rules.init_timeout(_integer(p, "InitTimeout", 65)),
        description=rules.description(p.string("Description") or ""),
        role=p.string("Role") or "",
        environment=env,
        added_at=ctx.now,
        modified_at=ctx.now,
        code_zip=zip_bytes,
    )
    fn.set_busy("Creating", ctx.now, ctx.state.scf.transition_seconds)
    ctx.state.scf.functions[fn.key] = fn
    return {}


def get_function(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """GetFunction: configuration, status and triggers."""
    p = Params(raw, ("FunctionName", "Qualifier", "Namespace", "ShowCode"))
    rules.qualifier(p.string("Qualifier"), "$LATEST", "InvalidParameterValue.Qualifier")
    return render_function(_lookup(ctx, p), ctx.now)


def get_function_address(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """GetFunctionAddress: where the code package is, and its SHA-256."""
    p = Params(raw, ("FunctionName", "Qualifier", "Namespace"))
    fn = _lookup(ctx, p)
    return {
        "Url": f"https://scf-emulator.invalid/{fn.region}/{fn.namespace}/{fn.name}.zip",
        "CodeSha256": fn.code_sha256,
    }


def update_function_code(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """UpdateFunctionCode: new zip (and optionally handler); ``Updating`` for the transition time."""
    p = Params(raw, _UPDATE_CODE)
    fn = _lookup(ctx, p)
    _require_active(fn, ctx, "UpdateFunctionCode")
    zip_bytes = _code_zip(p, rules.UPDATE_ZIP_LIMIT, required=True)
    handler = p.string("Handler")
    if handler is not None:
        fn.handler = rules.handler(handler)
    fn.code_zip = zip_bytes
    fn.code_dirs = ()
    fn.set_busy("Updating", ctx.now, ctx.state.scf.transition_seconds)
    return {}


def update_function_configuration(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """UpdateFunctionConfiguration: the given settings only; ``Updating`` for the transition time."""
    p = Params(raw, _UPDATE_CONFIG)
    fn = _lookup(ctx, p)
    _require_active(fn, ctx, "UpdateFunctionConfiguration")
    runtime = p.string("Runtime")
    if runtime is not None and runtime != fn.runtime:
        raise ApiError("InvalidParameterValue.Runtime", "Runtime is set at creation and cannot be changed.")
    # Validate everything before changing anything: a refused update leaves the function as it was.
    changes: dict[str, Any] = {}
    if p.has("Description"):
        changes["description"] = rules.description(p.string("Description") or "")
    if p.has("MemorySize"):
        changes["memory_size"] = rules.memory_size(_integer(p, "MemorySize", 128))
    if p.has("Timeout"):
        changes["timeout"] = rules.timeout(_integer(p, "Timeout", 3))
    if p.has("InitTimeout"):
        changes["init_timeout"] = rules.init_timeout(_integer(p, "InitTimeout", 65))
    if p.has("Environment"):
        changes["environment"] = rules.environment(_object(p, "Environment"))
    if p.has("Role"):
        changes["role"] = p.string("Role") or ""
    for attribute, value in changes.items():
        setattr(fn, attribute, value)
    fn.set_busy("Updating", ctx.now, ctx.state.scf.transition_seconds)
    return {}


def delete_function(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """DeleteFunction: the function and its triggers."""
    p = Params(raw, ("FunctionName", "Namespace", "Qualifier"))
    fn = _lookup(ctx, p)
    _require_active(fn, ctx, "DeleteFunction")
    del ctx.state.scf.functions[fn.key]
    return {}


# -- triggers ----------------------------------------------------------------------------------------
def create_trigger(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """CreateTrigger for timer, ckafka, http (function URL), cos and cls."""
    p = Params(
        raw,
        (
            "FunctionName", "TriggerName", "Type", "TriggerDesc", "Namespace", "Qualifier", "Enable",
            "CustomArgument", "Description",
        ),
    )  # fmt: skip
    fn = _lookup(ctx, p)
    trigger_type = p.string("Type", required=True)
    name = p.string("TriggerName", required=True)
    assert trigger_type is not None and name is not None
    if trigger_type not in rules.TRIGGER_TYPES:
        raise ApiError(
            "InvalidParameterValue.Type",
            f"Trigger type `{trigger_type}` is not supported; use one of {', '.join(rules.TRIGGER_TYPES)}.",
        )
    _require_active(fn, ctx, "CreateTrigger")
    qualifier = rules.qualifier(p.string("Qualifier"), "$LATEST")
    enable = rules.enable(p.string("Enable"))
    argument = p.string("CustomArgument") or ""
    if argument and trigger_type != "timer":
        raise ApiError("InvalidParameterValue.CustomArgument", "CustomArgument is for timer triggers only.")
    if len(argument.encode()) > rules.CUSTOM_ARGUMENT_LIMIT:
        raise ApiError("InvalidParameterValue.CustomArgument", "CustomArgument exceeds 4 KB.")
    raw_desc = p.string("TriggerDesc")
    if trigger_type == "timer":
        rules.timer_name(name)
        desc = json.dumps({"cron": rules.cron(raw_desc or "")})
        if sum(t.type == "timer" for t in fn.triggers) >= rules.TIMERS_PER_FUNCTION:
            raise ApiError(
                "LimitExceeded.Trigger", f"A function has at most {rules.TIMERS_PER_FUNCTION} timers."
            )
    elif trigger_type == "ckafka":
        desc = json.dumps(rules.ckafka_desc(rules.json_object(raw_desc, "CKafka TriggerDesc")))
    elif trigger_type == "http":
        if any(t.type == "http" for t in fn.triggers):
            raise ApiError("ResourceInUse.Trigger", f"The function `{fn.name}` already has a function URL.")
        config = rules.http_desc(rules.json_object(raw_desc, "Function URL TriggerDesc"))
        # SCF names a function URL itself and returns its addresses (the caller's TriggerName is not kept).
        name = ctx.state.ids.new("url", set()).removeprefix("url-")
        net = dict(config["NetConfig"])
        if net.get("EnableExtranet"):
            # https://<app-id>-<url-id>-<region>.scf.tencentcs.com (SCF's function URL overview, 583/96099)
            net["ExtranetUrl"] = f"https://1250000000-{name}-{ctx.region}.scf.tencentcs.com"
        if net.get("EnableIntranet"):
            net["IntranetUrl"] = f"https://1250000000-{name}-{ctx.region}-in.scf.tencentcs.com"
        desc = json.dumps({**config, "NetConfig": net})
    else:
        desc = json.dumps(rules.json_object(raw_desc, f"{trigger_type} TriggerDesc"))
    if any(t.type == trigger_type and t.name == name for t in fn.triggers):
        raise ApiError("ResourceInUse.Trigger", f"A {trigger_type} trigger named `{name}` already exists.")
    trigger = ScfTrigger(
        type=trigger_type,
        name=name,
        desc=desc,
        custom_argument=argument,
        enable=enable,
        qualifier=qualifier,
        description=p.string("Description") or "",
        added_at=ctx.now,
        modified_at=ctx.now,
        resource_id=f"qcs::scf:{ctx.region}:uin/100000000001:lam/{fn.function_id}/{qualifier}/"
        f"{trigger_type.upper()}/{name}",
    )
    fn.triggers.append(trigger)
    return {"TriggerInfo": render_trigger(trigger)}


def delete_trigger(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """DeleteTrigger by type, name and qualifier (default $LATEST, as documented)."""
    p = Params(raw, ("FunctionName", "TriggerName", "Type", "Namespace", "TriggerDesc", "Qualifier"))
    fn = _lookup(ctx, p)
    trigger_type = p.string("Type", required=True)
    name = p.string("TriggerName", required=True)
    qualifier = p.string("Qualifier") or "$LATEST"
    for trigger in fn.triggers:
        if (trigger.type, trigger.name, trigger.qualifier) == (trigger_type, name, qualifier):
            fn.triggers.remove(trigger)
            return {}
    raise ApiError(
        "ResourceNotFound.Trigger", f"No {trigger_type} trigger `{name}` on `{fn.name}` for {qualifier}."
    )


def list_triggers(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """ListTriggers with Offset/Limit, OrderBy add_time|mod_time, Order and the documented Filters.

    An unknown function lists no triggers: ListTriggers documents no ResourceNotFound code.
    """
    p = Params(raw, ("FunctionName", "Namespace", "Offset", "Limit", "OrderBy", "Order", "Filters"))
    name = p.string("FunctionName", required=True)
    assert name is not None
    fn = ctx.state.scf.function(ctx.region, _namespace(p), name)
    triggers = list(fn.triggers) if fn is not None else []
    filters = p.filters() or []
    attributes = {"Qualifier": "qualifier", "TriggerName": "name", "Description": "description"}
    for flt in filters:
        if flt.name not in attributes:
            raise ApiError("InvalidParameterValue.Filters", f"Unsupported filter `{flt.name}`.")
        triggers = [t for t in triggers if getattr(t, attributes[flt.name]) in flt.values]
    order_by = p.string("OrderBy") or "mod_time"
    order = p.string("Order") or "DESC"
    if order_by not in ("add_time", "mod_time") or order not in ("ASC", "DESC"):
        raise ApiError("InvalidParameterValue.Order", "OrderBy is add_time|mod_time and Order ASC|DESC.")
    triggers.sort(
        key=lambda t: t.added_at if order_by == "add_time" else t.modified_at, reverse=order == "DESC"
    )
    offset, limit = paging(p)
    page = triggers[offset : offset + limit]
    return {"TotalCount": len(triggers), "Triggers": [render_trigger(t, listing=True) for t in page]}


# -- async retry settings ----------------------------------------------------------------------------
def update_function_event_invoke_config(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """UpdateFunctionEventInvokeConfig: RetryConfig[0].RetryNum (0-2) and MsgTTL (60-21600 s)."""
    p = Params(raw, ("AsyncTriggerConfig", "FunctionName", "Namespace"))
    fn = _lookup(ctx, p)
    config = _object(p, "AsyncTriggerConfig")
    if config is None:
        raise ApiError(
            "MissingParameter", "The request is missing a required parameter `AsyncTriggerConfig`."
        )
    _require_active(fn, ctx, "UpdateFunctionEventInvokeConfig")
    retry = config.get("RetryConfig")
    retry_num = fn.retry_num
    if retry is not None:
        if not isinstance(retry, list) or len(retry) != 1 or not isinstance(retry[0], dict):
            raise ApiError("InvalidParameterValue.AsyncTriggerConfig", "RetryConfig holds one {RetryNum}.")
        value = retry[0].get("RetryNum")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError("InvalidParameterValue.AsyncTriggerConfig", "RetryNum must be an integer.")
        if not 0 <= value <= rules.MAX_RETRY_NUM:
            raise ApiError("LimitExceeded.RetryNum", f"RetryNum must be 0 to {rules.MAX_RETRY_NUM}.")
        retry_num = value
    msg_ttl = config.get("MsgTTL", fn.msg_ttl)
    low, high = rules.MSG_TTL_RANGE
    if isinstance(msg_ttl, bool) or not isinstance(msg_ttl, int) or not low <= msg_ttl <= high:
        raise ApiError("LimitExceeded.MsgTTL", f"MsgTTL must be {low} to {high} seconds.")
    fn.retry_num, fn.msg_ttl = retry_num, msg_ttl
    return {}


def get_function_event_invoke_config(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """GetFunctionEventInvokeConfig."""
    p = Params(raw, ("FunctionName", "Namespace", "Qualifier"))
    fn = _lookup(ctx, p)
    return {"AsyncTriggerConfig": {"RetryConfig": [{"RetryNum": fn.retry_num}], "MsgTTL": fn.msg_ttl}}


# -- invocation --------------------------------------------------------------------------------------
def run_spec(fn: ScfFunction, invocation: Invocation) -> RunSpec:
    """What the runner needs, copied out of the state (the lock is released while the function runs)."""
    return RunSpec(
        function_name=fn.name,
        namespace=fn.namespace,
        region=fn.region,
        runtime=fn.runtime,
        handler=fn.handler,
        timeout=fn.timeout,
        memory_size=fn.memory_size,
        environment={v["Key"]: v["Value"] for v in fn.environment},
        code_zip=fn.code_zip,
        code_dirs=fn.code_dirs,
        code_sha256=fn.code_sha256,
        qualifier=invocation.qualifier,
        event=json.loads(invocation.event) if invocation.event else {},
        request_id=invocation.request_id,
    )


def _event(text: str | None, limit: int) -> str:
    if text is None:
        return ""
    if len(text.encode()) > limit:
        raise ApiError(
            "InvalidParameterValue.ClientContext", f"ClientContext exceeds {limit // 1024} KB for this call."
        )
    try:
        json.loads(text)
    except ValueError as exc:
        raise ApiError("InvalidParameterValue.Param", "ClientContext is not valid JSON.") from exc
    return text


def _result(attempt: Attempt, request_id: str, with_log: bool) -> dict[str, Any]:
    """Invoke's Result model for a synchronous run."""
    log = (attempt.stdout + attempt.stderr).encode()[-LOG_TAIL_BYTES:].decode("utf-8", "replace")
    error = (
        ""
        if attempt.ok
        else json.dumps(
            {"errorCode": 1, "errorMessage": attempt.error_message, "errorType": attempt.error_type}
        )
    )
    return {
        "Log": log if with_log else "",
        "RetMsg": json.dumps(attempt.result) if attempt.ok else "",
        "ErrMsg": error,
        "MemUsage": 0,
        "Duration": round(attempt.duration_ms, 3),
        "BillDuration": int(attempt.duration_ms) + 1,
        "FunctionRequestId": request_id,
        "InvokeResult": 0 if attempt.ok else -1,
    }


def _invoke(
    ctx: Context, p: Params, *, event_param: str, action: str, sync: bool, default_qualifier: str = "$LATEST"
) -> dict[str, Any]:
    fn = _lookup(ctx, p)
    qualifier = rules.qualifier(p.string("Qualifier"), default_qualifier)
    routing_key = p.string("RoutingKey")
    if routing_key is not None and len(routing_key.encode()) > rules.ROUTING_KEY_LIMIT:
        raise ApiError("InvalidParameterValue", "RoutingKey exceeds 1024 bytes.")
    event = _event(p.string(event_param), rules.SYNC_EVENT_LIMIT if sync else rules.ASYNC_EVENT_LIMIT)
    _require_active(fn, ctx, action)
    invocation = Invocation(
        request_id=str(uuid.uuid4()),
        key=fn.key,
        qualifier=qualifier,
        event=event,
        invocation_type="RequestResponse" if sync else "Event",
        routing_key=routing_key,
        created_at=ctx.now,
        retries_left=0 if sync else fn.retry_num,
    )
    ctx.state.scf.invocations[invocation.request_id] = invocation
    if not sync:
        return {"Result": {"FunctionRequestId": invocation.request_id}}
    invocation.state = "running"
    spec = run_spec(fn, invocation)
    runner = ctx.state.scf.runner
    if runner is None:
        raise ApiError("InternalError", "This emulator has no function runner.")
    with_log = p.string("LogType") == "Tail"

    def complete(attempt: Attempt) -> dict[str, Any]:
        invocation.attempts.append(attempt)
        invocation.state = "done" if attempt.ok else "failed"
        return {"Result": _result(attempt, invocation.request_id, with_log)}

    return AfterLock(lambda: runner.run(spec), complete)


def invoke(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """Invoke: ``Event`` records an asynchronous invocation; ``RequestResponse`` (default) runs it."""
    p = Params(
        raw,
        (
            "FunctionName",
            "InvocationType",
            "Qualifier",
            "ClientContext",
            "LogType",
            "Namespace",
            "RoutingKey",
        ),
    )
    kind = p.string("InvocationType") or "RequestResponse"
    if kind not in ("Event", "RequestResponse"):
        raise ApiError(
            "InvalidParameterValue.InvokeType", f"InvocationType `{kind}` is not Event or RequestResponse."
        )
    return _invoke(ctx, p, event_param="ClientContext", action="Invoke", sync=kind == "RequestResponse")


def invoke_function(ctx: Context, raw: dict[str, Any]) -> dict[str, Any]:
    """InvokeFunction: synchronous only; the event is ``Event``; the qualifier defaults to $DEFAULT."""
    p = Params(raw, ("FunctionName", "Qualifier", "Event", "LogType", "Namespace", "RoutingKey"))
    return _invoke(
        ctx, p, event_param="Event", action="InvokeFunction", sync=True, default_qualifier="$DEFAULT"
    )


SCF_ACTIONS: dict[str, Handler] = {
    "CreateFunction": create_function,
    "GetFunction": get_function,
    "GetFunctionAddress": get_function_address,
    "UpdateFunctionCode": update_function_code,
    "UpdateFunctionConfiguration": update_function_configuration,
    "DeleteFunction": delete_function,
    "CreateTrigger": create_trigger,
    "DeleteTrigger": delete_trigger,
    "ListTriggers": list_triggers,
    "UpdateFunctionEventInvokeConfig": update_function_event_invoke_config,
    "GetFunctionEventInvokeConfig": get_function_event_invoke_config,
    "Invoke": invoke,
    "InvokeFunction": invoke_function,
}

# Documented per-action rate limits that differ from the emulator's default (requests per second).
SCF_RATE_LIMITS: dict[str, float] = {"Invoke": 100.0, "InvokeFunction": 10000.0, "CreateTrigger": 100.0}
