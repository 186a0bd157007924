"""Reading the part of ``serverless.yml`` that ``cbsnap deploy`` uses (docs/deploy.md lists it).

Values may use ``${stage}``, ``${app}`` and ``${env:NAME}``. Only the values deploy reads are resolved, so an
``${env:…}`` in a block for another tool (``apigw``) does not matter; an unset or empty variable in a value
deploy reads is a :class:`ConfigError` naming it — never the string "undefined".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .model import DEFAULT_MSG_TTL, DEFAULT_RETRY_NUM, AsyncSpec, Desired, FunctionSpec, TriggerSpec

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# Event types the Serverless component knows that cbsnap deploy leaves to other tools, and why.
_OTHER_TOOLS = {
    "apigw": "API Gateway triggers are created from API Gateway's side (the Serverless CLI does it); "
    "cbsnap deploy exposes the webhook through the function URL instead",
}


class Resolver:
    """Resolves ``${stage}``, ``${app}`` and ``${env:NAME}`` inside string values."""

    def __init__(self, stage: str, app: str, env: Mapping[str, str]) -> None:
        self.stage = stage
        self.app = app
        self.env = env

    def __call__(self, value: Any, where: str) -> Any:
        """``value`` with its variables replaced (non-strings unchanged)."""
        if not isinstance(value, str):
            return value

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name == "stage":
                return self.stage
            if name == "app":
                return self.app
            if name.startswith("env:"):
                variable = name[4:].strip()
                found = self.env.get(variable)
                if not found:
                    state = "empty" if found == "" else "not set"
                    raise ConfigError(f"environment variable {variable} is {state} (used by {where})")
                return found
            raise ConfigError(
                f"unknown variable ${{{name}}} in {where} (cbsnap deploy resolves stage, app, env:NAME)"
            )

        return _VARIABLE.sub(substitute, value)


def load(path: Path, *, stage: str | None, env: Mapping[str, str]) -> Desired:
    """Read ``path`` and build the desired state for ``stage`` (default: the file's ``stage``, else dev)."""
    try:
        import yaml
    except ImportError as exc:  # the CLI extra is missing
        raise ConfigError("cbsnap deploy needs PyYAML: pip install 'cbsnap[deploy]'") from exc
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), dict):
        raise ConfigError(f"{path} has no 'inputs' block (the scf component's format)")
    chosen_stage = stage or str(document.get("stage") or "dev")
    resolve = Resolver(chosen_stage, str(document.get("app") or ""), env)
    inputs: dict[str, Any] = document["inputs"]
    function = _function(inputs, resolve)
    triggers, ignored = _events(inputs.get("events") or [], resolve)
    url = _function_url(document.get("cbsnap"), resolve)
    if url is not None:
        triggers.append(url)
    keys = [t.key for t in triggers]
    duplicates = sorted({f"{k[0]}/{k[1]}" for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ConfigError(f"triggers named twice: {', '.join(duplicates)}")
    async_config = AsyncSpec(
        retry_num=_integer(inputs, "retryNum", DEFAULT_RETRY_NUM, resolve),
        msg_ttl=_integer(inputs, "msgTTL", DEFAULT_MSG_TTL, resolve),
    )
    return Desired(chosen_stage, function, tuple(triggers), async_config, tuple(ignored))


def _string(block: Mapping[str, Any], key: str, default: str | None, resolve: Resolver, where: str) -> str:
    value = block.get(key)
    if value is None:
        if default is None:
            raise ConfigError(f"{where}.{key} is required")
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}.{key} must be a string")
    return str(resolve(str(value), f"{where}.{key}"))


def _integer(
    block: Mapping[str, Any], key: str, default: int, resolve: Resolver, where: str = "inputs"
) -> int:
    value = resolve(block.get(key, default), f"{where}.{key}")
    if isinstance(value, bool):
        raise ConfigError(f"{where}.{key} must be a whole number")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}.{key} must be a whole number, got {value!r}") from exc


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"{where} must be true or false")


def _function(inputs: Mapping[str, Any], resolve: Resolver) -> FunctionSpec:
    variables = (inputs.get("environment") or {}).get("variables") or {}
    if not isinstance(variables, dict):
        raise ConfigError("inputs.environment.variables must be a mapping")
    environment: dict[str, str] = {}
    for key, raw in variables.items():
        where = f"inputs.environment.variables.{key}"
        if raw is None:
            raise ConfigError(f"{where} has no value (SCF refuses empty environment values)")
        value = ("true" if raw else "false") if isinstance(raw, bool) else str(resolve(str(raw), where))
        environment[str(key)] = value
    return FunctionSpec(
        name=_string(inputs, "name", None, resolve, "inputs"),
        namespace=_string(inputs, "namespace", "default", resolve, "inputs"),
        region=_string(inputs, "region", "ap-guangzhou", resolve, "inputs"),
        runtime=_string(inputs, "runtime", None, resolve, "inputs"),
        handler=_string(inputs, "handler", "index.main_handler", resolve, "inputs"),
        memory_size=_integer(inputs, "memorySize", 128, resolve),
        timeout=_integer(inputs, "timeout", 3, resolve),
        init_timeout=_integer(inputs, "initTimeout", 65, resolve),
        description=_string(inputs, "description", "", resolve, "inputs"),
        role=_string(inputs, "role", "", resolve, "inputs"),
        environment=environment,
    )


def _events(events: Any, resolve: Resolver) -> tuple[list[TriggerSpec], list[str]]:
    if not isinstance(events, list):
        raise ConfigError("inputs.events must be a list")
    triggers: list[TriggerSpec] = []
    ignored: list[str] = []
    for i, event in enumerate(events):
        if not isinstance(event, dict) or len(event) != 1:
            raise ConfigError(f"inputs.events[{i}] must be a mapping with one trigger type")
        [(kind, body)] = event.items()
        where = f"inputs.events[{i}].{kind}.parameters"
        params = (body or {}).get("parameters") or {} if isinstance(body, dict) else {}
        if kind == "timer":
            triggers.append(_timer(params, resolve, where))
        elif kind == "ckafka":
            triggers.append(_ckafka(params, resolve, where))
        elif kind in _OTHER_TOOLS:
            ignored.append(f"inputs.events[{i}] ({kind}): {_OTHER_TOOLS[kind]}")
        elif kind == "cmq":
            raise ConfigError(
                f"inputs.events[{i}] is a cmq trigger: SCF's CreateTrigger no longer has that type "
                "(CMQ was retired); remove it"
            )
        else:
            raise ConfigError(
                f"inputs.events[{i}]: cbsnap deploy manages timer and ckafka triggers, not {kind}"
            )
    return triggers, ignored


def _timer(params: Mapping[str, Any], resolve: Resolver, where: str) -> TriggerSpec:
    cron = _string(params, "cronExpression", None, resolve, where)
    fields = cron.split()
    if len(fields) != 7:
        raise ConfigError(f"{where}.cronExpression must have 7 fields (second … year), got {cron!r}")
    return TriggerSpec(
        type="timer",
        name=_string(params, "name", None, resolve, where),
        desc={"cron": " ".join(fields)},
        argument=_string(params, "argument", "", resolve, where),
        enable=_flag(params.get("enable", True), f"{where}.enable"),
        qualifier=_string(params, "qualifier", "$DEFAULT", resolve, where),
    )


def _ckafka(params: Mapping[str, Any], resolve: Resolver, where: str) -> TriggerSpec:
    instance = _string(params, "name", None, resolve, where)
    topic = _string(params, "topic", None, resolve, where)
    desc: dict[str, object] = {
        "maxMsgNum": str(_integer(params, "maxMsgNum", 100, resolve, where)),
        "offset": _string(params, "offset", "latest", resolve, where),
        "retry": str(_integer(params, "retry", 10000, resolve, where)),
        "timeOut": str(_integer(params, "timeout", 60, resolve, where)),
    }
    return TriggerSpec(
        type="ckafka",
        name=f"{instance}-{topic}",
        desc=desc,
        enable=_flag(params.get("enable", True), f"{where}.enable"),
        qualifier=_string(params, "qualifier", "$DEFAULT", resolve, where),
    )


def _function_url(block: Any, resolve: Resolver) -> TriggerSpec | None:
    """The top-level ``cbsnap.functionUrl`` block (read by cbsnap deploy only)."""
    if block is None:
        return None
    if not isinstance(block, dict):
        raise ConfigError("the top-level 'cbsnap' block must be a mapping")
    url = block.get("functionUrl")
    if url is None or url is False:
        return None
    if not isinstance(url, dict):
        raise ConfigError("cbsnap.functionUrl must be a mapping (or false)")
    where = "cbsnap.functionUrl"
    auth = _string(url, "authType", "NONE", resolve, where)
    if auth not in ("NONE", "CAM"):
        raise ConfigError(f"{where}.authType must be NONE or CAM")
    intranet = _flag(url.get("enableIntranet", False), f"{where}.enableIntranet")
    extranet = _flag(url.get("enableExtranet", True), f"{where}.enableExtranet")
    if not (intranet or extranet):
        raise ConfigError(f"{where}: enable the intranet or the extranet address (or set functionUrl: false)")
    return TriggerSpec(
        type="http",
        name=None,
        desc={"AuthType": auth, "NetConfig": {"EnableIntranet": intranet, "EnableExtranet": extranet}},
        qualifier=_string(url, "qualifier", "$DEFAULT", resolve, where),
    )
