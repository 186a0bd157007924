"""Request parameter decoding and typed access, with the API's error codes.

POST bodies are JSON; GET requests carry the SDK's flattened form (``Tags.0.Key=k``) whose values are all
strings, so the getters accept the string spelling of numbers and booleans too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from .errors import ApiError

# TC3 POST bodies may be up to 10 MB (tencent-facts.md 2.2).
MAX_BODY_BYTES = 10 * 1024 * 1024


def decode_json_body(body: bytes) -> dict[str, Any]:
    """Decode a JSON request body (empty means no parameters)."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError("InvalidParameter", f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ApiError("InvalidParameter", "The request body must be a JSON object.")
    return data


def decode_form(query: str) -> dict[str, Any]:
    """Decode the SDK's flattened form (``DiskIds.0=…&Filters.0.Values.1=…``) into nested objects."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ApiError("InvalidParameter", f"Parameter `{key}` conflicts with another parameter.")
            node = child
        node[parts[-1]] = value
    return _listify(root)  # type: ignore[no-any-return]


def _listify(node: Any) -> Any:
    """Turn dicts whose keys are all indexes (``{"0": a, "1": b}``) into lists, recursively."""
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


@dataclass(frozen=True)
class Filter:
    """One ``{"Name", "Values"}`` filter."""

    name: str
    values: tuple[str, ...]


class Params:
    """Typed, validated access to one request's parameters."""

    def __init__(self, raw: dict[str, Any], allowed: Iterable[str]) -> None:
        allowed_set = set(allowed)
        unknown = sorted(k for k in raw if k not in allowed_set)
        if unknown:
            raise ApiError("UnknownParameter", f"The parameter `{unknown[0]}` is not recognized.")
        self.raw = raw

    def has(self, name: str) -> bool:
        """Whether the caller sent ``name`` (a JSON null counts as absent, as the SDK omits None)."""
        return self.raw.get(name) is not None

    def string(self, name: str, *, required: bool = False) -> str | None:
        """A string parameter, or None when absent."""
        value = self.raw.get(name)
        if value is None:
            if required:
                raise ApiError("MissingParameter", f"The request is missing a required parameter `{name}`.")
            return None
        if not isinstance(value, str):
            raise ApiError("InvalidParameter", f"The parameter `{name}` must be a string.")
        return value

    def integer(self, name: str, default: int | None = None, *, required: bool = False) -> int | None:
        """An integer parameter (``"20"`` accepted for GET requests)."""
        value = self.raw.get(name)
        if value is None:
            if required:
                raise ApiError("MissingParameter", f"The request is missing a required parameter `{name}`.")
            return default
        if isinstance(value, bool):
            raise ApiError("InvalidParameter", f"The parameter `{name}` must be an integer.")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise ApiError("InvalidParameter", f"The parameter `{name}` must be an integer.")

    def boolean(self, name: str, default: bool = False) -> bool:
        """A boolean parameter (``"true"``/``"False"`` accepted for GET requests)."""
        value = self.raw.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ApiError("InvalidParameter", f"The parameter `{name}` must be a boolean.")

    def strings(self, name: str) -> list[str] | None:
        """An array of strings, or None when absent."""
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ApiError("InvalidParameter", f"The parameter `{name}` must be an array of strings.")
        return value

    def filters(self) -> list[Filter] | None:
        """The ``Filters`` array, or None when absent."""
        value = self.raw.get("Filters")
        if value is None:
            return None
        if not isinstance(value, list):
            raise ApiError("InvalidParameter", "The parameter `Filters` must be an array of Filter.")
        result = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ApiError("InvalidParameter", f"`Filters.{i}` must be an object with Name and Values.")
            name, values = item.get("Name"), item.get("Values")
            if name is None or values is None:
                missing = "Name" if name is None else "Values"
                raise ApiError("MissingParameter", f"The request is missing `Filters.{i}.{missing}`.")
            if not isinstance(name, str) or not isinstance(values, list):
                raise ApiError(
                    "InvalidParameter", f"`Filters.{i}` must have a string Name and an array Values."
                )
            if not values or not all(isinstance(v, str) for v in values):
                raise ApiError(
                    "InvalidParameterValue", f"`Filters.{i}.Values` must be a non-empty array of strings."
                )
            result.append(Filter(name, tuple(values)))
        return result

    def tags(self, name: str = "Tags") -> list[dict[str, str]]:
        """Validated ``Tags`` (Key 1 to 127 chars, Value ≤ 255, at most 50, keys unique); [] when absent."""
        value = self.raw.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise ApiError("InvalidParameter", f"The parameter `{name}` must be an array of Tag.")
        if len(value) > MAX_TAGS:
            raise ApiError("InvalidParameterValue", f"At most {MAX_TAGS} tags may be bound to a resource.")
        tags: list[dict[str, str]] = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ApiError("InvalidParameter", f"`{name}.{i}` must be an object with Key and Value.")
            tags.append(validate_tag(item, f"{name}.{i}"))
        keys = [t["Key"] for t in tags]
        if len(set(keys)) != len(keys):
            raise ApiError("InvalidParameterValue", f"The tag keys in `{name}` must be unique.")
        return tags


MAX_TAGS = 50


def validate_tag(item: dict[str, Any], where: str) -> dict[str, str]:
    """Validate one ``{"Key", "Value"}`` tag; both are required (Tencent's Tag model marks them so)."""
    key, value = item.get("Key"), item.get("Value")
    if not isinstance(key, str) or not isinstance(value, str):
        raise ApiError("InvalidParameterValue", f"`{where}` needs a string Key and a string Value.")
    if not 1 <= len(key) <= 127:
        raise ApiError("InvalidParameterValue", f"`{where}.Key` must be 1 to 127 characters long.")
    if len(value) > 255:
        raise ApiError("InvalidParameterValue", f"`{where}.Value` must be at most 255 characters long.")
    extra = sorted(set(item) - {"Key", "Value"})
    if extra:
        raise ApiError("UnknownParameter", f"The parameter `{where}.{extra[0]}` is not recognized.")
    return {"Key": key, "Value": value}


def paging(params: Params) -> tuple[int, int]:
    """``Offset`` (default 0, >= 0) and ``Limit`` (default 20, 1..100) as Tencent documents them."""
    limit = params.integer("Limit", 20)
    offset = params.integer("Offset", 0)
    assert limit is not None and offset is not None  # defaults given
    if not 1 <= limit <= 100:
        raise ApiError("InvalidParameterValue", f"`Limit` must be between 1 and 100, got {limit}.")
    if offset < 0:
        raise ApiError("InvalidParameterValue", f"`Offset` must not be negative, got {offset}.")
    return offset, limit


def order(params: Params, fields: tuple[str, ...], *, default_order: str) -> tuple[str, bool]:
    """Validate ``OrderField``/``Order``; return (field, descending)."""
    field = params.string("OrderField") or fields[0]
    if field not in fields:
        raise ApiError(
            "InvalidParameterValue", f"`OrderField` must be one of {', '.join(fields)}, got {field}."
        )
    direction = params.string("Order") or default_order
    if direction not in ("ASC", "DESC"):
        raise ApiError("InvalidParameterValue", f"`Order` must be ASC or DESC, got {direction}.")
    return field, direction == "DESC"
