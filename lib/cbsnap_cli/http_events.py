"""Real HTTP requests as the events SCF hands a function, and its answers back as HTTP responses.

Two event shapes (docs/triggers.md has the sources):

* **API Gateway** (integration request, ``events/apigw-*.json``): ``httpMethod``, ``path`` without the
  stage, ``headers``, ``queryString`` (every parameter; a list for a repeated one),
  ``queryStringParameters`` (the API's declared ones; none are declared here), ``body`` (absent
  when empty), ``isBase64Encoded``, ``requestContext`` with ``requestId``, ``stage``, ``sourceIp``.
* **Function URL** (``events/function-url-*.json``): the API Gateway shape without
  ``requestContext``, ``isBase64Encoded``, ``pathParameters``, ``queryStringParameters`` and
  ``headerParameters``; header names lower-cased, the client address in ``x-scf-remote-addr``.

Answers: an integrated response ``{"statusCode", "headers", "body", "isBase64Encoded"}`` becomes
that HTTP response; any other return value becomes a 200 JSON body (the function URL's documented
inference, and what API Gateway would pass through without integrated response).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

APIGW = "apigw"
FUNCTION_URL = "url"
SHAPES = (APIGW, FUNCTION_URL)


class UnsupportedRequest(ValueError):
    """A request the chosen event shape cannot carry (answered 400 by the server)."""


@dataclass(frozen=True)
class HttpRequest:
    """One request as it arrived: method, raw target (path and query), headers, body, client."""

    method: str
    target: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    client_ip: str


@dataclass(frozen=True)
class HttpAnswer:
    """The HTTP response for one handler answer."""

    status: int
    headers: dict[str, str]
    body: bytes


def _header_dict(headers: Sequence[tuple[str, str]], *, lower: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.lower() if lower else name
        out[key] = f"{out[key]}, {value}" if key in out else value  # a repeat keeps every value
    return out


def _query(query: str) -> dict[str, str | list[str]]:
    out: dict[str, str | list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        previous = out.get(name)
        if previous is None:
            out[name] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            out[name] = [previous, value]
    return out


def _strip_stage(path: str, stage: str) -> str:
    """API Gateway's URL carries the stage (``/release/snapshots``); its event's path does not."""
    prefix = f"/{stage}"
    if stage and (path == prefix or path.startswith(prefix + "/")):
        return path[len(prefix) :] or "/"
    return path


def apigw_event(request: HttpRequest, *, stage: str, request_id: str) -> dict[str, Any]:
    """The API Gateway trigger's event for ``request`` (integration request)."""
    url = urlsplit(request.target)
    path = _strip_stage(url.path or "/", stage)
    headers = _header_dict(request.headers, lower=False)
    headers.setdefault("X-Api-RequestId", request_id)
    event: dict[str, Any] = {
        "requestContext": {
            "serviceId": "service-local",
            "path": path,
            "httpMethod": request.method,
            "requestId": request_id,
            "identity": {},
            "sourceIp": request.client_ip,
            "stage": stage,
        },
        "headers": headers,
        "pathParameters": {},
        "queryStringParameters": {},
        "headerParameters": {},
        "stageVariables": {"stage": stage},
        "path": path,
        "queryString": _query(url.query),
        "httpMethod": request.method,
        "isBase64Encoded": False,
    }
    if request.body:
        try:
            event["body"] = request.body.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def function_url_event(request: HttpRequest) -> dict[str, Any]:
    """The function URL's event for ``request`` (an event function behind a function URL)."""
    url = urlsplit(request.target)
    headers = _header_dict(request.headers, lower=True)
    headers["x-scf-remote-addr"] = request.client_ip
    event: dict[str, Any] = {
        "headers": headers,
        "httpMethod": request.method,
        "path": url.path or "/",
        "queryString": _query(url.query),
    }
    if request.body:
        try:
            event["body"] = request.body.decode("utf-8")
        except UnicodeDecodeError:
            # The documented event has no isBase64Encoded flag, so a binary body has no known form.
            raise UnsupportedRequest(
                "the function URL event documents no encoding for a binary (non-UTF-8) body"
            ) from None
    return event


def http_answer(answer: Any) -> HttpAnswer:
    """The HTTP response a caller gets for the handler's return value."""
    if isinstance(answer, dict) and isinstance(answer.get("statusCode"), int):
        headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
        raw = answer.get("body")
        text = "" if raw is None else raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
        if answer.get("isBase64Encoded") is True:
            try:
                body = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                return error_answer(502, "the function's answer is marked base64 but does not decode")
        else:
            body = text.encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
        return HttpAnswer(answer["statusCode"], headers, body)
    body = json.dumps(answer, ensure_ascii=False, default=str).encode("utf-8")
    return HttpAnswer(200, {"Content-Type": "application/json"}, body)


def error_answer(status: int, message: str) -> HttpAnswer:
    """A JSON error in the seed's shape, for failures outside the function's answer: 9003 for a
    request that cannot be delivered (4xx), 6000 for a function that failed (5xx)."""
    code, desc = (9003, "InvalidParameter") if status < 500 else (6000, "InternalError")
    body = {"code": code, "codeDesc": desc, "message": message}
    return HttpAnswer(status, {"Content-Type": "application/json"}, json.dumps(body).encode("utf-8"))
