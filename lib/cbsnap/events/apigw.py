"""An HTTP event read into a plain HTTP request: API Gateway's, and the function URL's.

API Gateway's shape (``events/apigw-*.json``)::

    {"httpMethod": "POST", "path": "/snapshots", "headers": {...},
     "queryString": {"a": "1", "r": ["x", "y"]}, "queryStringParameters": {...},
     "body": "<text>", "isBase64Encoded": false,
     "requestContext": {"serviceId": "service-…", "requestId": "...", "stage": "release", ...}}

The function URL's shape (``events/function-url-*.json``; Tencent documents it as API Gateway's
"without headerParameters, isBase64Encoded, pathParameters, queryStringParameters and
requestContext", cloud.tencent.com/document/product/583/96099)::

    {"httpMethod": "POST", "path": "/", "headers": {..., "x-scf-remote-addr": "<client IP>"},
     "queryString": {"a": "1"}, "body": "<text>"}

* ``queryString`` holds every parameter the caller sent (a list for a repeated one);
  ``queryStringParameters`` only those declared on the API, so it is the fallback.
* ``path`` is the real path; ``requestContext.path`` is the route template.
* ``body`` is absent for a body-less request and base64 text when ``isBase64Encoded``; a
  function URL event has no flag, so its body is the text as sent.
* ``requestContext`` (with ``serviceId`` and ``requestId``) is API Gateway's alone: a function
  URL event has no request id, and :attr:`HttpRequest.via_gateway` is False for it.
* Header names may arrive lower-cased; they are matched case-insensitively.
* The body is the bytes the text stands for: UTF-8, with a lone surrogate (which JSON
  text can carry and UTF-8 cannot) kept as its ``surrogatepass`` bytes. A signature can
  then be checked over them, and the webhook refuses them as "not valid UTF-8" (a 400)
  instead of failing to encode them (a 500).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_MAX_ID = 128


@dataclass(frozen=True)
class HttpRequest:
    """What the webhook needs from an HTTP event (API Gateway or function URL)."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    query: dict[str, str | list[str]] = field(default_factory=dict)
    body: bytes = b""
    request_id: str | None = None  # API Gateway's requestContext.requestId; None via a function URL
    problem: str | None = None  # the event could not be read (no method, undecodable body, …)
    via_gateway: bool = False  # the event came through API Gateway (its requestContext.serviceId)
    # The digest of what the caller signed (cbsnap.webauth), set once the signature checks out:
    # the request's identity when it names no key (a replay has the same one).
    identity: str | None = None

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name."""
        return self.headers.get(name.lower())


def _headers(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        return {}
    headers: dict[str, str] = {}
    for key, raw_value in raw.items():
        # a repeated header keeps every value visible (and so fails a strict check)
        value = ", ".join(str(v) for v in raw_value) if isinstance(raw_value, list) else str(raw_value)
        name = str(key).lower()
        # the same header under two spellings is ambiguous: keep both, as a repeat
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _query(event: Mapping[str, Any]) -> dict[str, str | list[str]]:
    raw = event.get("queryString")
    if not isinstance(raw, Mapping) or not raw:
        raw = event.get("queryStringParameters")
    if not isinstance(raw, Mapping):
        return {}
    query: dict[str, str | list[str]] = {}
    for key, value in raw.items():
        if isinstance(value, list):
            values = ["" if v is None else str(v) for v in value]
            query[str(key)] = values[0] if len(values) == 1 else values
        else:
            query[str(key)] = "" if value is None else str(value)
    return query


def _body(event: Mapping[str, Any]) -> tuple[bytes, str | None]:
    raw = event.get("body")
    if raw is None:
        return b"", None
    if not isinstance(raw, str):
        return b"", f"the event's body must be a string, got {type(raw).__name__}"
    if event.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(raw, validate=True), None
        except (binascii.Error, ValueError):
            return b"", "the event's body is marked base64 but does not decode"
    # surrogatepass: text that is not valid Unicode still has bytes (refused later, as a 400)
    return raw.encode("utf-8", "surrogatepass"), None


def parse_http_event(event: Any) -> HttpRequest:
    """Read an API Gateway or function URL event; never raises. A malformed event sets ``problem``."""
    if not isinstance(event, Mapping):
        return HttpRequest("", "", problem=f"event must be a JSON object, got {type(event).__name__}")
    context = event.get("requestContext")
    context = context if isinstance(context, Mapping) else {}
    method = event.get("httpMethod") or context.get("httpMethod")
    path = event.get("path")
    request_id = context.get("requestId")
    request_id = str(request_id)[:_MAX_ID] if isinstance(request_id, (str, int)) and request_id else None
    service_id = context.get("serviceId")
    body, problem = _body(event)
    if not isinstance(method, str) or not method:
        problem = problem or "not an HTTP event: httpMethod is missing"
        method = ""
    if not isinstance(path, str) or not path:
        problem = problem or "not an HTTP event: path is missing"
        path = ""
    path = "/" + path.strip("/")
    stage = context.get("stage")
    if isinstance(stage, str) and stage and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]  # a custom domain may keep the stage in the path
    return HttpRequest(
        method=method.upper(),
        path=path,
        headers=_headers(event.get("headers")),
        query=_query(event),
        body=body,
        request_id=request_id,
        problem=problem,
        via_gateway=isinstance(service_id, str) and bool(service_id),
    )


# The name the webhook, the tests and `cbsnap serve` have used since API Gateway was the only way in.
parse_apigw_event = parse_http_event
