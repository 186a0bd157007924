"""The webhook (API Gateway or the function URL, integrated response): auth, routing, statuses.

Routes::

    POST     /snapshots                 a JSON request document (seed or batch form)
    GET|POST /v2/index.php?Action=CreateSnapshot&storageId=…&snapshotName=…
                                        the seed-compatible endpoint (query or form body)
    GET      /snapshots/{snapshotId}    state and progress of one snapshot;
                                        ``?wait=N``: wait up to N s for NORMAL (200, else 202)
    POST     /push/cmq?token=…          a TDMQ-CMQ topic's HTTP push (:mod:`cbsnap.push`)

Both ways in read alike (:mod:`cbsnap.events.apigw`) and follow the same rules. Every
request but a push is authenticated first (:mod:`cbsnap.webauth`), fail-closed: with no
secret configured everything is refused unless ``CBSNAP_WEBHOOK_AUTH=gateway``
delegates authentication to API Gateway (and then only requests that came through it
are accepted: a function URL has no gateway in front). A push carries a token instead.
Then the body size is checked, then the route. Routing is by hand: four routes do not
justify powertools' REST resolver, which also mis-reads Tencent events (``queryString``,
``multiValueHeaders``).

Statuses (see docs/triggers.md): every disk succeeded → 200; otherwise the
largest status among the per-disk results (:data:`STATUS_FOR_CODE`; a disk left
unattempted for lack of time → 503). 401 unauthenticated, 413 body too large,
404 unknown route or snapshot, 405 wrong method, 400 invalid request.
"""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

from pydantic import TypeAdapter, ValidationError

from cbsnap.codes import SeedCode
from cbsnap.errors import CloudError, ConfigurationError, DeadlineReached
from cbsnap.events.apigw import HttpRequest, parse_http_event
from cbsnap.events.queue import parse_cmq_push
from cbsnap.jsonsafe import safe_dumps
from cbsnap.models import SNAPSHOT_ID_RE, IdempotencyKey, SnapshotResult
from cbsnap.outcome import Outcome
from cbsnap.push import (
    PUSH_BUDGET_SECONDS,
    PUSH_PATH,
    push_deadline,
    push_inline_limit,
    push_status,
    token_problem,
)
from cbsnap.runtime import Runtime
from cbsnap.scf import Clock, Deadline
from cbsnap.selectors import OUT_OF_TIME
from cbsnap.sinks import RequestMeta
from cbsnap.webauth import IDEMPOTENCY_HEADER, AuthError, signing_payload, verify

WallClock = Callable[[], float]
Sleep = Callable[[float], None]

TRIGGER = "webhook"
_IDENTITY_CHARS = 32  # of the signed message's SHA-256: 128 bits name a request
SNAPSHOTS_PATH = "/snapshots"
V2_PATH = "/v2/index.php"
V2_ACTION = "CreateSnapshot"
# v2 common parameters a legacy caller may still send; cbsnap's own auth replaces them.
V2_IGNORED = frozenset({"Region", "Timestamp", "Nonce", "SecretId", "Signature", "SignatureMethod", "Token"})
V2_ACCEPTED = frozenset({"Action", "storageId", "diskId", "snapshotName"})

# Per-disk result code → HTTP status. A batch answers the largest status among its results.
STATUS_FOR_CODE: dict[int, int] = {
    SeedCode.SUCCESS: 200,
    SeedCode.INVALID_PARAMETER: 400,  # invalid request, unknown disk included
    SeedCode.DISK_BUSY: 409,  # transient: try again later
    SeedCode.CBS_CREATING_SNAPSHOT: 409,  # transient: try again later
    SeedCode.SNAPSHOT_QUOTA_EXCEEDED: 409,  # the disk's state: delete snapshots first
    SeedCode.DISK_TYPE_INVALID: 422,  # this disk can never be snapshotted
    SeedCode.SNAPSHOT_NOT_SUPPORTED: 422,
    SeedCode.AUTH_FAILURE: 502,  # the function's credentials, not the caller's
    SeedCode.REQUEST_LIMIT_EXCEEDED: 503,  # the account's API rate: try again later
    SeedCode.INTERNAL_ERROR: 502,
}
NOT_ATTEMPTED_STATUS = 503
_ECHO = 100

# -- GET /snapshots/{id}?wait=N (completion waits; docs/pre-deploy.md) --
WAIT_PARAM = "wait"
MAX_WAIT_SECONDS = 900  # SCF's longest function timeout
WAIT_POLL_SECONDS = 1.0  # DescribeSnapshots about once a second while waiting
WAIT_RESERVE_SECONDS = 2.0  # kept back from the invocation's deadline for the last look and the answer
USABLE_STATE = "NORMAL"
NOT_YET_STATUS = 202  # with ?wait: the snapshot is not usable (yet); ask again
_WAIT_RE = re.compile(r"[0-9]{1,4}")


@functools.cache
def _idempotency_key() -> TypeAdapter[str]:
    """Built on first use: a validator costs milliseconds at import, and most calls carry no key."""
    return TypeAdapter(IdempotencyKey)


@dataclass
class HttpResponse:
    """A response before it is shaped for SCF's integrated response."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def to_scf(self) -> dict[str, Any]:
        """SCF's integrated-response shape (``statusCode`` an int, ``body`` a string)."""
        return {
            "isBase64Encoded": False,
            "statusCode": self.status,
            "headers": {"Content-Type": "application/json", **self.headers},
            # never NaN, never a lone surrogate, never an exception (cbsnap.jsonsafe)
            "body": safe_dumps(self.body),
        }


def _echo(text: str) -> str:
    """Caller-controlled text, printable and short, for messages."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= _ECHO else clean[:_ECHO] + "…"


def error_response(status: int, code: SeedCode, message: str, **extra: Any) -> HttpResponse:
    """A request-level error: the seed's ``code``/``codeDesc``/``message`` at the top level."""
    return HttpResponse(status, {"code": int(code), "codeDesc": code.desc, "message": message, **extra})


def status_for(result: SnapshotResult) -> int:
    """The HTTP status of one per-disk result (not attempted: 503, try again)."""
    if not result.attempted:
        return NOT_ATTEMPTED_STATUS
    return STATUS_FOR_CODE.get(result.code, 502)


def outcome_response(outcome: Outcome, request_key: str, *, seed_shape: bool) -> HttpResponse:
    """The answer to a create: the one result at the top level (seed shape) or a batch."""
    statuses = [status_for(r) for r in outcome.results]
    status = max(statuses, default=400)
    if seed_shape and len(outcome.results) == 1:
        return HttpResponse(status, {**outcome.results[0].to_dict(), "requestKey": request_key})
    summary = outcome.summary()
    if status == 200:
        code, desc, message = 0, SeedCode.SUCCESS.desc, ""
    else:
        worst = outcome.results[statuses.index(status)] if outcome.results else None
        code = worst.code if worst is not None else int(SeedCode.INVALID_PARAMETER)
        desc = worst.codeDesc if worst is not None else SeedCode.INVALID_PARAMETER.desc
        message = f"{summary['failed']} of {summary['total']} disks failed"
        if summary["notAttempted"]:
            message += f" ({summary['notAttempted']} not attempted: out of time)"
    body: dict[str, Any] = {
        "code": code,
        "codeDesc": desc,
        "message": message,
        "requestKey": request_key,
        **summary,
        "results": [r.to_dict() for r in outcome.results],
    }
    if outcome.delivery:
        body["delivery"] = [d.to_dict() for d in outcome.delivery]
    return HttpResponse(status, body)


class Webhook:
    """Serves one API Gateway event with a runtime and a wall clock (injectable for tests).

    ``sleep`` and ``monotonic`` pace and bound ``GET /snapshots/{id}?wait=N``; tests pass a
    sleep that moves the emulator's state clock and a fake monotonic clock with it.
    ``push_budget`` caps a CMQ push's run (:data:`cbsnap.push.PUSH_BUDGET_SECONDS`).
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: WallClock = time.time,
        sleep: Sleep = time.sleep,
        monotonic: Clock = time.monotonic,
        push_budget: float = PUSH_BUDGET_SECONDS,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic
        self.push_budget = push_budget

    # -- entry ---------------------------------------------------------------------

    def handle(self, event: Any, context: Any) -> dict[str, Any]:
        """Answer one event in the integrated-response shape; never raises."""
        try:
            return self._handle(event, context).to_scf()
        except Exception:  # the caller gets a JSON 500, the log gets the traceback
            self.runtime.logger.exception("webhook.error")
            return error_response(500, SeedCode.INTERNAL_ERROR, "internal error").to_scf()

    def _handle(self, event: Any, context: Any) -> HttpResponse:
        request = parse_http_event(event)
        if request.path == PUSH_PATH:  # CMQ cannot sign: a push carries a token instead
            return self._push(request, context)
        problem, request = self._authenticate(request)
        if problem is not None:
            return self._refuse(request, error_response(401, SeedCode.AUTH_FAILURE, problem))
        if request.problem is not None:
            return self._refuse(request, error_response(400, SeedCode.INVALID_PARAMETER, request.problem))
        limit = self.settings.webhook_max_body
        if len(request.body) > limit:
            message = f"the request body exceeds {limit} bytes"
            return self._refuse(request, error_response(413, SeedCode.INVALID_PARAMETER, message))
        return self._route(request, context)

    def _authenticate(self, request: HttpRequest) -> tuple[str | None, HttpRequest]:
        """(None, the request with its identity) when it may proceed, else (the reason, it).

        Fail-closed. A verified request's identity is the digest of what its caller signed.
        """
        secret = self.settings.webhook_secret
        if secret is None:
            if self.settings.webhook_auth != "gateway":
                return "webhook authentication is not configured", request
            if not request.via_gateway:  # a function URL has no gateway in front to have checked
                return "CBSNAP_WEBHOOK_AUTH=gateway accepts only requests through API Gateway", request
            return None, request  # API Gateway authenticated the caller (app auth, keys, …)
        # With a secret the signature is checked even in gateway mode: defence in depth.
        if request.problem is not None:
            return f"cannot verify the signature: {request.problem}", request
        try:
            payload = signing_payload(request.body, request.query)
            identity = verify(secret.get_secret_value(), request.headers, payload, self.clock())
        except AuthError as exc:
            return exc.reason, request
        return None, replace(request, identity=identity)

    def _refuse(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        """Log a request answered with an error and no request run (nothing goes to the sinks)."""
        self.runtime.logger.warning(
            "webhook.refused",
            extra={
                "status": response.status,
                "reason": response.body.get("message", ""),
                "method": _echo(request.method),
                "path": _echo(request.path),
                **({"source_id": request.request_id} if request.request_id else {}),
            },
        )
        return response

    def _route(self, request: HttpRequest, context: Any) -> HttpResponse:
        path, method = request.path, request.method
        if path == SNAPSHOTS_PATH:
            if method != "POST":
                return self._not_allowed(request, "POST")
            return self._create_from_document(request, context)
        if path == V2_PATH:
            if method not in ("GET", "POST"):
                return self._not_allowed(request, "GET, POST")
            return self._create_from_v2(request, context)
        if path.startswith(SNAPSHOTS_PATH + "/") and path.count("/") == 2:
            if method != "GET":
                return self._not_allowed(request, "GET")
            return self._describe(request, path.rsplit("/", 1)[1], context)
        message = f"no route for {_echo(method)} {_echo(path)}"
        return self._refuse(request, error_response(404, SeedCode.INVALID_PARAMETER, message))

    def _not_allowed(self, request: HttpRequest, allow: str) -> HttpResponse:
        message = f"method {_echo(request.method)} is not allowed on {_echo(request.path)}; use {allow}"
        response = error_response(405, SeedCode.INVALID_PARAMETER, message)
        response.headers["Allow"] = allow
        return self._refuse(request, response)

    # -- creating ----------------------------------------------------------------------

    def _meta(self, request: HttpRequest, key: str | None) -> RequestMeta:
        """The request's identity.

        An ``Idempotency-Key`` names the request as an explicit ``idempotencyKey`` does
        (``key/<key>``, the runtime's rule for every trigger; the header is signed). Otherwise
        a signed request is named by what was signed (``webhook/<digest>``): a replay of it,
        whatever API Gateway request id it arrives with, is the same request. An unsigned one
        (gateway mode) is ``webhook/<API Gateway requestId>``, or a random id when the event
        has none (the only key nothing can exist for yet).
        """
        if key is not None:
            return RequestMeta(trigger=TRIGGER, request_key=f"key/{key}", source_id=request.request_id)
        if request.identity:
            request_key = f"{TRIGGER}/{request.identity[:_IDENTITY_CHARS]}"
            return RequestMeta(trigger=TRIGGER, request_key=request_key, source_id=request.request_id)
        if request.request_id:
            request_key = f"{TRIGGER}/{request.request_id}"
            return RequestMeta(trigger=TRIGGER, request_key=request_key, source_id=request.request_id)
        return RequestMeta(trigger=TRIGGER, request_key=f"{TRIGGER}/{uuid.uuid4()}", key_is_fresh=True)

    def _reject(self, request: HttpRequest, problem: str) -> HttpResponse:
        """An authenticated but invalid request: one 9003 result, delivered like any result."""
        meta = self._meta(request, None)
        outcome = self.runtime.pipeline.reject(problem, meta)
        return outcome_response(outcome, meta.request_key, seed_shape=True)

    def _header_key(self, request: HttpRequest) -> tuple[str | None, str | None]:
        """(Idempotency-Key header value, problem)."""
        raw = request.header(IDEMPOTENCY_HEADER)
        if raw is None:
            return None, None
        try:
            return _idempotency_key().validate_python(raw), None
        except ValidationError:
            return None, f"the {IDEMPOTENCY_HEADER} header must be 1-128 printable ASCII characters"

    def _run(
        self, request: HttpRequest, document: dict[str, Any], context: Any, *, seed_shape: bool
    ) -> HttpResponse:
        header_key, problem = self._header_key(request)
        if problem is not None:
            return self._reject(request, problem)
        pipeline = self.runtime.pipeline
        prepared = pipeline.prepare(document, self._meta(request, header_key))
        document_key = prepared.options.idempotencyKey if prepared.options is not None else None
        if header_key and document_key and header_key != document_key:
            return self._reject(
                request, f"the {IDEMPOTENCY_HEADER} header and the idempotencyKey field disagree"
            )
        outcome = pipeline.handle(prepared, self.runtime.begin_invocation(context))
        return outcome_response(
            outcome, prepared.meta.request_key, seed_shape=seed_shape or prepared.seed_form
        )

    def _create_from_document(self, request: HttpRequest, context: Any) -> HttpResponse:
        if not request.body.strip():
            return self._reject(request, "the request body is empty: send a JSON request document")
        try:
            # Strictly, unlike json.loads(bytes) (which passes lone surrogates through, and
            # with them into results and log lines): the encoding as JSON detects it (RFC 8259).
            text = request.body.decode(json.detect_encoding(request.body))
        except UnicodeDecodeError:
            return self._reject(request, "the request body is not valid UTF-8 text")
        try:
            document = json.loads(text)
        except (ValueError, RecursionError) as exc:
            return self._reject(request, f"request is not valid JSON: {exc}"[:200])
        if not isinstance(document, dict):
            return self._reject(request, f"request must be a JSON object, got {type(document).__name__}")
        return self._run(request, document, context, seed_shape=False)

    def _create_from_v2(self, request: HttpRequest, context: Any) -> HttpResponse:
        params, problem = _v2_params(request)
        if problem is not None:
            return self._reject(request, problem)
        action = params.get("Action")
        if action != V2_ACTION:
            named = f"Action={_echo(action)}" if action else "no Action"
            return self._reject(request, f"{named}: this endpoint only serves Action={V2_ACTION}")
        unknown = sorted(set(params) - V2_ACCEPTED - V2_IGNORED)
        if unknown:
            return self._reject(request, f"unknown parameter {_echo(unknown[0])}")
        document: dict[str, Any] = {k: v for k, v in params.items() if k in V2_ACCEPTED and k != "Action"}
        return self._run(request, document, context, seed_shape=True)

    # -- CMQ topic pushes (cbsnap.push) --------------------------------------------------------

    def _push(self, request: HttpRequest, context: Any) -> HttpResponse:
        """One TDMQ-CMQ push: token, method, size, then the message as a queue message.

        Answered 200 (acknowledged) whatever the per-disk results, except 503 when a disk was
        left unattempted: CMQ then pushes the message again, under the same ``cmq/<msgId>`` key.
        """
        token = self.settings.push_token
        problem = token_problem(token.get_secret_value() if token else None, request.query)
        if problem is not None:  # before anything else, and no cloud call
            return self._refuse(request, error_response(401, SeedCode.AUTH_FAILURE, problem))
        if request.method != "POST":
            return self._not_allowed(request, "POST")
        limit = self.settings.webhook_max_body
        if len(request.body) > limit:
            too_large = f"the push body exceeds {limit} bytes"
            return self._refuse(request, error_response(413, SeedCode.INVALID_PARAMETER, too_large))
        message = parse_cmq_push(request.body, request.headers)
        meta = message.meta()
        pipeline = self.runtime.pipeline
        deadline = push_deadline(self.runtime.begin_invocation(context), self.monotonic, self.push_budget)
        if request.problem is not None:
            outcome = pipeline.reject(f"push: {request.problem}", meta, deadline)
        elif message.problem is not None:
            outcome = pipeline.reject(message.problem, meta, deadline)
        else:
            # Answer before CMQ's push timeout: a request too large to finish within the budget
            # is handed on in chunks (asynchronous self-invocations) and answered 202.
            prepared = pipeline.prepare(message.document, meta)
            outcome = pipeline.handle(
                prepared, deadline, split_above=push_inline_limit(self.settings.rate_limit)
            )
            meta = prepared.meta
        response = outcome_response(outcome, meta.request_key, seed_shape=False)
        response.status = push_status(outcome.needs_redelivery, handed_on=outcome.fanout is not None)
        response.body["acknowledged"] = not outcome.needs_redelivery
        if outcome.needs_redelivery:
            self.runtime.logger.warning(
                "push.not_acknowledged",
                extra={"request_key": meta.request_key, "notAttempted": len(outcome.not_attempted)},
            )
        return response

    # -- describing ----------------------------------------------------------------------

    def _describe(self, request: HttpRequest, snapshot_id: str, context: Any) -> HttpResponse:
        if not SNAPSHOT_ID_RE.fullmatch(snapshot_id):
            message = "snapshotId must be 'snap-' followed by 8 lowercase letters or digits"
            return self._refuse(request, error_response(400, SeedCode.INVALID_PARAMETER, message))
        wait, problem = _wait_seconds(request)
        if problem is not None:
            return self._refuse(request, error_response(400, SeedCode.INVALID_PARAMETER, problem))
        deadline = self.runtime.begin_invocation(context)
        found = self._lookup(snapshot_id, deadline)
        polls = 1
        if wait and isinstance(found, dict) and found["state"] != USABLE_STATE:
            found, polls = self._wait(snapshot_id, found, wait, deadline)
        if isinstance(found, HttpResponse):
            return self._refuse(request, found)
        # Without ?wait the route answers 200 whatever the state (as it always did); with it,
        # 200 means usable and 202 "not yet": a pipeline loops on 202 and stops on anything else.
        status = 200 if wait is None or found["state"] == USABLE_STATE else NOT_YET_STATUS
        self.runtime.logger.info(
            "webhook.snapshot_status",
            extra={
                "snapshotId": snapshot_id,
                "state": found["state"],
                "percent": found["percent"],
                "status": status,
                **({"wait": wait, "polls": polls} if wait is not None else {}),
                "source_id": request.request_id,
            },
        )
        return HttpResponse(status, found)

    def _wait(
        self, snapshot_id: str, last: dict[str, Any], wait: int, deadline: Deadline
    ) -> tuple[dict[str, Any] | HttpResponse, int]:
        """Poll until the snapshot is NORMAL, for at most ``wait`` seconds and never past the
        invocation's deadline less :data:`WAIT_RESERVE_SECONDS`. Returns (final answer, polls)."""
        budget = min(float(wait), deadline.remaining() - WAIT_RESERVE_SECONDS)
        until = Deadline.after(max(budget, 0.0), self.monotonic)
        polls = 1
        while not until.expired:
            self.sleep(min(WAIT_POLL_SECONDS, until.remaining()))
            found = self._lookup(snapshot_id, deadline)
            polls += 1
            if isinstance(found, HttpResponse):
                if found.status == NOT_ATTEMPTED_STATUS and found.body.get("message") == OUT_OF_TIME:
                    return last, polls  # out of time for another look: answer what was seen last
                return found, polls  # gone (404) or a cloud failure
            last = found
            if found["state"] == USABLE_STATE:
                break
        return last, polls

    def _lookup(self, snapshot_id: str, deadline: Deadline) -> dict[str, Any] | HttpResponse:
        region = self.settings.region
        not_found = error_response(
            404,
            SeedCode.INVALID_PARAMETER,
            f"snapshot {snapshot_id} does not exist in region {region}",
            snapshotId=snapshot_id,
        )
        try:
            api = self.runtime.cbs(region)
            _total, page = api.describe_snapshots(deadline, snapshot_ids=[snapshot_id])
        except ConfigurationError as exc:
            return error_response(502, SeedCode.INTERNAL_ERROR, f"configuration: {exc}")
        except DeadlineReached:
            return error_response(NOT_ATTEMPTED_STATUS, SeedCode.INTERNAL_ERROR, OUT_OF_TIME)
        except CloudError as err:
            if err.code.startswith("InvalidSnapshotId.NotFound"):
                return not_found
            code = err.seed_code
            return error_response(STATUS_FOR_CODE.get(code, 502), code, err.describe())
        snap = next((s for s in page if s.snapshot_id == snapshot_id), None)
        if snap is None:
            return not_found
        return {
            "code": 0,
            "message": "",
            "snapshotId": snap.snapshot_id,
            "storageId": snap.disk_id,
            "state": snap.state,
            "percent": snap.percent,
            "name": snap.name,
            "createTime": snap.create_time,
        }


def _wait_seconds(request: HttpRequest) -> tuple[int | None, str | None]:
    """``?wait=N`` of ``GET /snapshots/{id}``: (seconds or None, problem)."""
    raw = request.query.get(WAIT_PARAM)
    if raw is None:
        return None, None
    if not isinstance(raw, str) or not _WAIT_RE.fullmatch(raw) or int(raw) > MAX_WAIT_SECONDS:
        return None, f"{WAIT_PARAM} must be whole seconds from 0 to {MAX_WAIT_SECONDS}"
    return int(raw), None


def _v2_params(request: HttpRequest) -> tuple[dict[str, str], str | None]:
    """The v2 endpoint's parameters: from the query string or the form body, not both."""
    pairs: list[tuple[str, str | list[str]]]
    if request.body:
        if request.query:
            return {}, "send the parameters in the query string or the form body, not both"
        try:
            form = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return {}, "the body must be form-encoded (application/x-www-form-urlencoded)"
        pairs = list(form)
    else:
        pairs = list(request.query.items())
    params: dict[str, str] = {}
    for name, value in pairs:
        if not isinstance(value, str) or name in params:
            return {}, f"parameter {_echo(name)} is given more than once"
        params[name] = value
    return params, None


def handle_webhook(
    event: Any,
    context: Any,
    runtime: Runtime,
    *,
    clock: WallClock = time.time,
    sleep: Sleep = time.sleep,
    monotonic: Clock = time.monotonic,
) -> dict[str, Any]:
    """Serve one API Gateway or function URL event (see :class:`Webhook`)."""
    return Webhook(runtime, clock=clock, sleep=sleep, monotonic=monotonic).handle(event, context)
