"""SCF parameter rules and their error codes, as the SDK (tencentcloud-sdk-python-scf 3.1.100 models and
errorcodes.py) and the per-action error lists of the Go SDK document them; docs/emulator.md has the table.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import zipfile
from typing import Any

from .errors import ApiError

# CreateFunction's Runtime list in the SDK model (3.1.100); the default is Python2.7.
RUNTIMES = (
    "Python2.7", "Python3.6", "Python3.7", "Python3.9", "Python3.10",
    "Nodejs6.10", "Nodejs8.9", "Nodejs10.15", "Nodejs12.16", "Nodejs14.18", "Nodejs16.13", "Nodejs18.15",
    "Php5.6", "Php7", "Php7.4", "Php8.0", "Go1", "Java8", "CustomRuntime",
)  # fmt: skip
DEFAULT_RUNTIME = "Python2.7"

# "zip包大小上限为 50MB" (Code.ZipFile, CreateFunction); "最大支持20M" (UpdateFunctionCode.ZipFile).
CREATE_ZIP_LIMIT = 50 * 1024 * 1024
UPDATE_ZIP_LIMIT = 20 * 1024 * 1024
# Invoke.ClientContext: 6 MB synchronous, 128 KB asynchronous.
SYNC_EVENT_LIMIT = 6 * 1024 * 1024
ASYNC_EVENT_LIMIT = 128 * 1024
ROUTING_KEY_LIMIT = 1024
ENV_TOTAL_LIMIT = 4 * 1024  # errorcodes.py: environment variables must stay within 4KB
RESERVED_ENV_PREFIXES = ("SCF_", "QCLOUD_", "TENCENTCLOUD_")
DESCRIPTION_LIMIT = 1000
CUSTOM_ARGUMENT_LIMIT = 4 * 1024  # a timer's argument arrives as event["Message"], at most 4 KB
TIMERS_PER_FUNCTION = 10
TRIGGER_TYPES = ("timer", "ckafka", "http", "cos", "cls")  # CreateTrigger.Type in the SDK model
QUALIFIERS = ("$LATEST", "$DEFAULT")  # versions are not emulated; $DEFAULT is the alias of $LATEST
MAX_RETRY_NUM = 2
MSG_TTL_RANGE = (60, 21600)

_FUNCTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]$")
_HANDLER_PART = r"[A-Za-z](?:[A-Za-z0-9_-]*[A-Za-z])?"
_HANDLER = re.compile(rf"^{_HANDLER_PART}\.{_HANDLER_PART}$")
_TIMER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,#-]+$")


def function_name(value: str) -> str:
    """2-60 of letters, digits, ``-``, ``_``; starts with a letter, ends with a letter or digit."""
    if not _FUNCTION_NAME.match(value):
        raise ApiError(
            "InvalidParameterValue.FunctionName",
            f"FunctionName `{value}` must be 2-60 letters, digits, '-' or '_', start with a letter and "
            "not end with '-' or '_'.",
        )
    return value


def runtime(value: str | None) -> str:
    """One of :data:`RUNTIMES` (default Python2.7, as the API's)."""
    if value is None:
        return DEFAULT_RUNTIME
    if value not in RUNTIMES:
        raise ApiError(
            "InvalidParameterValue.Runtime",
            f"Runtime `{value}` is not supported; use one of {', '.join(RUNTIMES)}.",
        )
    return value


def handler(value: str) -> str:
    """``file.function``, each part starting and ending with a letter, 2-60 characters in all."""
    if not 2 <= len(value) <= 60 or not _HANDLER.match(value):
        raise ApiError(
            "InvalidParameterValue.Handler",
            f"Handler `{value}` must look like file.function (a letter at both ends of each part, "
            "2-60 chars).",
        )
    return value


def memory_size(value: int) -> int:
    """64, or 128-3072 in steps of 128 (MB)."""
    if value != 64 and not (128 <= value <= 3072 and value % 128 == 0):
        raise ApiError(
            "InvalidParameterValue.MemorySize",
            f"MemorySize {value} must be 64, or 128 to 3072 in steps of 128.",
        )
    return value


def timeout(value: int) -> int:
    """1-900 seconds."""
    if not 1 <= value <= 900:
        raise ApiError("LimitExceeded.Timeout", f"Timeout {value} must be between 1 and 900 seconds.")
    return value


def init_timeout(value: int) -> int:
    """3-300 seconds (the serverless component's range; the API documents only the 65 s default)."""
    if not 3 <= value <= 300:
        raise ApiError("LimitExceeded.InitTimeout", f"InitTimeout {value} must be between 3 and 300 seconds.")
    return value


def description(value: str) -> str:
    """At most 1000 characters."""
    if len(value) > DESCRIPTION_LIMIT:
        raise ApiError(
            "InvalidParameterValue.Description", f"Description exceeds {DESCRIPTION_LIMIT} characters."
        )
    return value


def environment(value: Any) -> list[dict[str, str]]:
    """``{"Variables": [{"Key", "Value"}]}``: non-empty keys and values, no reserved prefix, ≤ 4 KB."""
    if not isinstance(value, dict) or set(value) - {"Variables"}:
        raise ApiError("InvalidParameterValue.Environment", 'Environment must be {"Variables": [...]}.')
    variables = value.get("Variables") or []
    if not isinstance(variables, list):
        raise ApiError("InvalidParameterValue.Environment", "Environment.Variables must be an array.")
    result: list[dict[str, str]] = []
    seen: set[str] = set()
    total = 0
    for i, item in enumerate(variables):
        key = item.get("Key") if isinstance(item, dict) else None
        val = item.get("Value") if isinstance(item, dict) else None
        if not isinstance(key, str) or not isinstance(val, str) or not key or not val:
            raise ApiError(
                "InvalidParameterValue.Environment",
                f"Environment.Variables.{i} needs a non-empty Key and a non-empty Value.",
            )
        if key.upper().startswith(RESERVED_ENV_PREFIXES):
            raise ApiError(
                "InvalidParameterValue.EnvironmentSystemProtect",
                f"Environment variable `{key}` uses a reserved prefix ({', '.join(RESERVED_ENV_PREFIXES)}).",
            )
        if key in seen:
            raise ApiError("InvalidParameterValue.Environment", f"Environment variable `{key}` is repeated.")
        seen.add(key)
        total += len(key.encode()) + len(val.encode())
        result.append({"Key": key, "Value": val})
    if total > ENV_TOTAL_LIMIT:
        raise ApiError(
            "InvalidParameterValue.EnvironmentExceededLimit",
            f"Environment variables take {total} bytes; keep them within 4KB.",
        )
    return result


def zip_file(encoded: str, limit: int) -> bytes:
    """Decode a base64 ``ZipFile`` and check that it is a zip within ``limit`` bytes."""
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(
            "InvalidParameterValue.ZipFileBase64BinasciiError", f"ZipFile is not valid base64: {exc}."
        ) from exc
    if len(data) > limit:
        raise ApiError(
            "InvalidParameterValue.ZipFile",
            f"The zip file has {len(data)} bytes; the limit is {limit // (1024 * 1024)} MB.",
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.namelist()
    except zipfile.BadZipFile as exc:
        raise ApiError("InvalidParameterValue.ZipFile", "ZipFile is not a standard zip file.") from exc
    return data


def qualifier(value: str | None, default: str, code: str = "ResourceNotFound.Qualifier") -> str:
    """``$LATEST`` or ``$DEFAULT`` (no published versions are emulated)."""
    chosen = value or default
    if chosen not in QUALIFIERS:
        raise ApiError(code, f"The version or alias `{chosen}` does not exist.")
    return chosen


def enable(value: str | None) -> int:
    """``OPEN`` → 1, ``CLOSE`` → 0 (default OPEN)."""
    if value is None or value == "OPEN":
        return 1
    if value == "CLOSE":
        return 0
    raise ApiError("InvalidParameterValue.Enable", f"Enable must be OPEN or CLOSE, got `{value}`.")


def cron(value: str) -> str:
    """A 7-field cron expression (second minute hour day month weekday year)."""
    fields = value.split()
    if len(fields) != 7 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ApiError(
            "InvalidParameterValue.TriggerDesc",
            f"TriggerDesc `{value}` is not a 7-field cron expression "
            "(second minute hour day month week year).",
        )
    return " ".join(fields)


def json_object(value: str | None, what: str) -> dict[str, Any]:
    """A JSON object given as a string (TriggerDesc of non-timer triggers)."""
    try:
        parsed = json.loads(value or "")
    except ValueError as exc:
        raise ApiError("InvalidParameterValue.TriggerDesc", f"{what} must be a JSON object.") from exc
    if not isinstance(parsed, dict):
        raise ApiError("InvalidParameterValue.TriggerDesc", f"{what} must be a JSON object.")
    return parsed


def timer_name(value: str) -> str:
    """Up to 100 letters, digits, ``-`` and ``_``."""
    if not _TIMER_NAME.match(value):
        raise ApiError(
            "InvalidParameterValue.TriggerName",
            f"TriggerName `{value}` must be up to 100 letters, digits, '-' or '_'.",
        )
    return value


def ckafka_desc(desc: dict[str, Any]) -> dict[str, Any]:
    """maxMsgNum, offset, retry and timeOut are required strings; timeOut is 1-60."""
    for key in ("maxMsgNum", "offset", "retry", "timeOut"):
        if not isinstance(desc.get(key), str) or not desc[key]:
            raise ApiError("InvalidParameterValue.TriggerDesc", f"CKafka TriggerDesc needs a string `{key}`.")
    if not desc["timeOut"].isdigit() or not 1 <= int(desc["timeOut"]) <= 60:
        raise ApiError("InvalidParameterValue.TriggerDesc", "CKafka `timeOut` must be 1 to 60.")
    return desc


def http_desc(desc: dict[str, Any]) -> dict[str, Any]:
    """``{"AuthType": "NONE"|"CAM", "NetConfig": {"EnableIntranet": bool, "EnableExtranet": bool}}``."""
    if desc.get("AuthType") not in ("NONE", "CAM"):
        raise ApiError("InvalidParameterValue.TriggerDesc", "Function URL AuthType must be NONE or CAM.")
    net = desc.get("NetConfig")
    if not isinstance(net, dict) or not all(
        isinstance(net.get(k, False), bool) for k in ("EnableIntranet", "EnableExtranet")
    ):
        raise ApiError(
            "InvalidParameterValue.TriggerDesc",
            'Function URL NetConfig must be {"EnableIntranet": bool, "EnableExtranet": bool}.',
        )
    if not (net.get("EnableIntranet") or net.get("EnableExtranet")):
        raise ApiError(
            "InvalidParameterValue.TriggerDesc", "A function URL needs the intranet or extranet on."
        )
    return desc
