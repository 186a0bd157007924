"""Property-based fuzzing of every SCF handler against one long-lived emulator (issue 4).

Arbitrary JSON, request documents with wrong types in every field, disk IDs that look
right but are not, deep nesting, huge and strange strings, bad bytes (lone surrogates,
NaN and Infinity, Unicode digits), events with keys dropped and JSON text cut short,
thrown at the timer, the queue handler (CKafka, TDMQ alone and batched, and the retired CMQ
trigger's records, which it must refuse), the webhook
through API Gateway and through the function URL (unsigned, and signed with the configured
secret so the payload reaches validation), CMQ pushes to the function URL, and the deployed
entry point with all of them mixed. For every example:

* the handler returns; it never raises (the queue handler's MessagesNotAttempted
  would mean a disk ran out of time, which no example here can cause);
* the answer is structured: every per-disk result has an int ``code``, a ``message``
  string and a ``snapshotId`` that is None unless the code is 0; the webhook answers
  SCF's integrated-response dict, a 4xx for invalid data, with a JSON body;
* every log line and every webhook body is JSON a strict consumer reads: it encodes as
  UTF-8, and it holds no ``NaN`` / ``Infinity`` (issue 9: such a line never reached CLS);
* invalid data reaches no API: a CreateSnapshot call may only name a valid disk ID
  present in the input, and with none in the input there is no CBS call at all.

A last property mixes valid disks with invalid entries in one request and checks
that exactly the valid ones are snapshotted, once each, under the request's key.

Budget: ``HYPOTHESIS_PROFILE`` (tests/fuzz/conftest.py); ``ci`` by default.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
from hypothesis import event as note_event
from hypothesis import given
from hypothesis import strategies as st

from cbsnap.codes import SeedCode
from cbsnap.events.apigw import parse_apigw_event
from cbsnap.events.queue import MessagesNotAttempted
from cbsnap.models import SNAPSHOT_ID_RE
from cbsnap.ownership import KEY_TAG, disk_key
from cbsnap.webauth import SIGNATURE_HEADER, TIMESTAMP_HEADER, auth_headers, signing_payload
from cbsnap_emulator import Emulator
from handlers import index as index_handler
from handlers import messages as messages_handler
from handlers import timer as timer_handler
from handlers import webhook as webhook_handler
from tests.conftest import RuntimeHarness, scf_context
from tests.fuzz import strategies as fs
from tests.fuzz.conftest import PUSH_TOKEN, WEBHOOK_SECRET, fuzz_settings

NOW = 1_795_831_200.0  # the webhook's wall clock in these tests
SEED_CODES = {int(code) for code in SeedCode}
_unique = itertools.count()


# -- delivering an event ------------------------------------------------------------------


def _fresh(emulator: Emulator, harness: RuntimeHarness) -> None:
    """Forget the previous example: recorded calls and log output."""
    emulator.reset_calls()
    harness.stream.seek(0)
    harness.stream.truncate(0)


def _call_timer(event: Any) -> dict[str, Any]:
    return timer_handler.main_handler(event, scf_context())


def _call_messages(event: Any) -> dict[str, Any]:
    try:
        return messages_handler.main_handler(event, scf_context())
    except MessagesNotAttempted as exc:  # pragma: no cover - a failure, reported with context
        pytest.fail(f"MessagesNotAttempted for an event with nothing to run out of time on: {exc}")


def _call_webhook(event: Any) -> dict[str, Any]:
    return webhook_handler.main_handler(event, scf_context(), clock=lambda: NOW)


def signed(event: Any) -> Any:
    """``event`` with correct signature headers for what the webhook will read from it.

    The payload is computed from the product's own reading of the event (decoded
    body, stringified query), so the signature always matches and the fuzzed payload
    reaches validation. Fuzzed headers that would shadow the signature are dropped.
    """
    if not isinstance(event, dict):
        return event
    request = parse_apigw_event(event)
    raw = event.get("headers")
    shadowed = {TIMESTAMP_HEADER.lower(), SIGNATURE_HEADER.lower()}
    headers = (
        {k: v for k, v in raw.items() if str(k).lower() not in shadowed} if isinstance(raw, dict) else {}
    )
    key = request.header("Idempotency-Key")  # signed with the rest, as the product reads it
    signed_headers = auth_headers(WEBHOOK_SECRET, signing_payload(request.body, request.query), NOW, key=key)
    signed_headers.pop("Idempotency-Key", None)  # the event's own stays as it is
    headers.update(signed_headers)
    return {**event, "headers": headers}


# -- the properties -------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise AssertionError(f"{name} is not JSON")


def strict_json(text: str) -> Any:
    """``text`` read as a strict consumer (CLS, jq) reads it: UTF-8, no NaN / Infinity."""
    text.encode("utf-8")
    return json.loads(text, parse_constant=_refuse_constant)


def assert_log_lines(harness: RuntimeHarness) -> None:
    """Every line the example logged is UTF-8 JSON without NaN or Infinity."""
    for line in harness.stream.getvalue().splitlines():
        if line.strip():
            assert isinstance(strict_json(line), dict)


def assert_results(response: Any, *, queue: bool = False) -> list[dict[str, Any]]:
    """The timer/queue answer: JSON-ready, counts that add up, every result well-formed."""
    assert isinstance(response, dict)
    json.dumps(response, allow_nan=False)  # SCF serialises the return value
    results = response["results"]
    assert isinstance(results, list) and results, "every event ends with at least one result"
    note_event("codes " + ",".join(sorted({str(r["code"]) for r in results})))
    note_event("first message " + re.sub(r"\(.*?\)|\[\d+\]", "", results[0]["message"])[:40])
    assert response["total"] == len(results)
    assert response["succeeded"] + response["failed"] == response["total"]
    for result in results:
        code = result["code"]
        assert type(code) is int and code in SEED_CODES, result
        assert isinstance(result["message"], str) and isinstance(result["codeDesc"], str)
        if code == 0:
            assert isinstance(result["snapshotId"], str) and SNAPSHOT_ID_RE.fullmatch(result["snapshotId"])
        else:
            assert result["snapshotId"] is None, result
            assert result["message"], "a failure says why"
        storage_id = result["storageId"]
        assert storage_id is None or (isinstance(storage_id, str) and len(storage_id) <= 81), (
            "caller input is echoed truncated"
        )
        if queue:
            assert isinstance(result.get("messageId"), str), "every queue result names its message"
    return results


def assert_webhook_answer(response: Any) -> tuple[int, dict[str, Any]]:
    """SCF's integrated response: int status, JSON headers, a JSON object body with code/message."""
    assert isinstance(response, dict)
    assert set(response) == {"isBase64Encoded", "statusCode", "headers", "body"}
    assert response["isBase64Encoded"] is False
    status = response["statusCode"]
    assert type(status) is int
    assert response["headers"]["Content-Type"] == "application/json"
    body = strict_json(response["body"])
    assert isinstance(body, dict)
    assert type(body["code"]) is int and isinstance(body["message"], str)
    if "results" in body:
        assert_results(body)
    note_event(f"status {status}: {body['message'][:40]}")
    return status, body


def assert_no_api_call_for_invalid_data(
    emulator: Emulator, event: Any, *, reads: tuple[str, ...] = ()
) -> None:
    """CreateSnapshot names only valid disk IDs found in the input; none in it → no CBS call
    (besides ``reads``: the webhook's snapshot-status route may look a snapshot up)."""
    allowed = fs.valid_disk_ids_in(event)
    creates = emulator.calls(action="CreateSnapshot")
    assert {c["params"].get("DiskId") for c in creates} <= allowed, creates
    if not allowed:
        stray = [c for c in emulator.calls(service="cbs") if c["action"] not in reads]
        assert stray == [], [(c["action"], c["params"]) for c in stray]
        assert creates == []


# -- timer ------------------------------------------------------------------------------------


@fuzz_settings(1.0)
@given(event=fs.timer_events())
def test_timer_answers_every_event_without_touching_the_api(
    fuzz_emulator: Emulator, installed: RuntimeHarness, event: Any
) -> None:
    _fresh(fuzz_emulator, installed)
    response = _call_timer(event)
    results = assert_results(response)
    assert all(r["code"] != 0 for r in results)
    assert_no_api_call_for_invalid_data(fuzz_emulator, event)
    assert_log_lines(installed)


@fuzz_settings(0.5)
@given(message=st.one_of(fs.anything, fs.document_texts(fs.invalid_documents), fs.invalid_documents))
def test_timer_message_alone_fuzzed(fuzz_emulator: Emulator, installed: RuntimeHarness, message: Any) -> None:
    """A well-formed firing whose Message (the request document) is anything at all."""
    _fresh(fuzz_emulator, installed)
    event = {"Type": "Timer", "TriggerName": "fuzz", "Time": f"t{next(_unique)}", "Message": message}
    results = assert_results(_call_timer(event))
    assert all(r["code"] == SeedCode.INVALID_PARAMETER for r in results)
    assert_no_api_call_for_invalid_data(fuzz_emulator, event)
    assert_log_lines(installed)


# -- queue ------------------------------------------------------------------------------------


@fuzz_settings(1.0)
@given(event=fs.queue_events())
def test_queue_handler_answers_every_event_without_touching_the_api(
    fuzz_emulator: Emulator, installed: RuntimeHarness, event: Any
) -> None:
    _fresh(fuzz_emulator, installed)
    response = _call_messages(event)
    results = assert_results(response, queue=True)
    assert all(r["code"] != 0 for r in results)
    for field in ("Records", "EventList"):
        items = event.get(field) if isinstance(event, dict) else None
        if isinstance(items, list) and items:
            assert response["messages"] == len(items), (
                f"one message per item of {field}, malformed ones included"
            )
            break
    records = event.get("Records") if isinstance(event, dict) else None
    for index, record in enumerate(records if isinstance(records, list) else []):
        if fs.is_cmq_record(record):  # the retired CMQ trigger's: refused by name, never dropped
            [refused] = [r for r in results if r["messageId"] == f"Records[{index}]"]
            assert refused["code"] == SeedCode.INVALID_PARAMETER and "CMQ trigger" in refused["message"]
            note_event("a CMQ trigger record refused")
    assert_no_api_call_for_invalid_data(fuzz_emulator, event)
    assert_log_lines(installed)


@fuzz_settings(0.5)
@given(
    body=st.one_of(fs.document_texts(fs.invalid_documents), fs.anything),
    kind=st.sampled_from(["ckafka", "tdmq", "eventbridge", "retired-cmq"]),
)
def test_queue_message_body_alone_fuzzed(
    fuzz_emulator: Emulator, installed: RuntimeHarness, body: Any, kind: str
) -> None:
    """Well-formed envelopes of each kind whose msgBody is anything at all; and the retired CMQ
    trigger's envelope, refused as such whatever its body."""
    _fresh(fuzz_emulator, installed)
    n = next(_unique)
    event = _envelope(kind, n, body)
    results = assert_results(_call_messages(event), queue=True)
    assert [r["code"] for r in results] == [SeedCode.INVALID_PARAMETER] * len(results)
    if kind == "retired-cmq":
        [result] = results
        assert result["messageId"] == "Records[0]" and "CMQ trigger" in result["message"]
    assert_no_api_call_for_invalid_data(fuzz_emulator, event)
    assert_log_lines(installed)


def _envelope(kind: str, n: int, body: Any) -> dict[str, Any]:
    if kind == "retired-cmq":  # SCF's CMQ trigger, gone with CMQ
        return {
            "Records": [{"CMQ": {"type": "topic", "topicName": "fuzz", "msgId": f"m{n}", "msgBody": body}}]
        }
    if kind == "ckafka":
        return {"Records": [{"Ckafka": {"topic": "fuzz", "partition": 0, "offset": n, "msgBody": body}}]}
    if kind == "eventbridge":
        return {"EventList": [_envelope("tdmq", n, body)]}
    return {
        "specversion": "0",
        "id": f"e{n}",
        "type": "connector:tdmq",
        "source": "tdmq.cloud.tencent",
        "data": {"topic": "fuzz", "msgId": f"t{n}", "msgBody": body},
    }


# -- webhook ----------------------------------------------------------------------------------

WEBHOOK_READS = ("DescribeSnapshots",)  # GET /snapshots/{id} with a well-formed id looks it up


@fuzz_settings(0.6)
@given(event=fs.webhook_events())
def test_webhook_refuses_unsigned_events(
    fuzz_emulator: Emulator, installed: RuntimeHarness, event: Any
) -> None:
    _fresh(fuzz_emulator, installed)
    status, _ = assert_webhook_answer(_call_webhook(event))
    assert status == 401
    assert fuzz_emulator.calls() == []
    assert_log_lines(installed)


@fuzz_settings(1.5)
@given(event=fs.webhook_events().map(signed))
def test_webhook_signed_invalid_requests_are_4xx_without_creating(
    fuzz_emulator: Emulator, installed: RuntimeHarness, event: Any
) -> None:
    _fresh(fuzz_emulator, installed)
    status, _ = assert_webhook_answer(_call_webhook(event))
    assert 400 <= status < 500, status
    assert_no_api_call_for_invalid_data(fuzz_emulator, event, reads=WEBHOOK_READS)
    assert_log_lines(installed)


@fuzz_settings(0.5)
@given(
    document=fs.invalid_documents,
    route=st.sampled_from(["document", "v2-query", "v2-form"]),
    idempotency=st.one_of(st.none(), fs.idempotency_keys.filter(lambda k: isinstance(k, str))),
)
def test_webhook_signed_documents_reach_validation(
    fuzz_emulator: Emulator, installed: RuntimeHarness, document: Any, route: str, idempotency: str | None
) -> None:
    """Well-formed, signed webhook calls carrying a fuzzed document: always a 4xx, never a create."""
    _fresh(fuzz_emulator, installed)
    event = _webhook_event(document, route, idempotency)
    status, _body = assert_webhook_answer(_call_webhook(signed(event)))
    assert 400 <= status < 500, status
    assert_no_api_call_for_invalid_data(fuzz_emulator, event)
    assert_log_lines(installed)


def _webhook_event(document: Any, route: str, idempotency: str | None) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    if idempotency is not None:
        headers["Idempotency-Key"] = idempotency
    event: dict[str, Any] = {
        "httpMethod": "POST",
        "path": "/snapshots",
        "headers": headers,
        "requestContext": {"requestId": f"req-{next(_unique)}", "stage": "release"},
        "isBase64Encoded": False,
    }
    if route == "document":
        event["body"] = fs.dumps_or_null(document, False)
        return event
    params = document if isinstance(document, dict) else {"storageId": document}
    pairs = [("Action", "CreateSnapshot")] + [
        (k, v if isinstance(v, str) else fs.dumps_or_null(v, True)) for k, v in params.items()
    ]
    event["path"] = "/v2/index.php"
    if route == "v2-query":
        event.update(httpMethod="GET", queryString=dict(pairs))
    else:
        event["body"] = fs.form_encode(pairs)
    return event


# -- CMQ pushes to the function URL, and the entry point --------------------------------------------


@fuzz_settings(0.4)
@given(event=fs.cmq_pushes(PUSH_TOKEN))
def test_cmq_pushes_are_acknowledged_or_refused_without_creating(
    fuzz_emulator: Emulator, installed: RuntimeHarness, event: Any
) -> None:
    """A push of invalid data is read and acknowledged (200, its 9003 logged) when its token is
    right, refused (401) with no call at all when it is not; never a 5xx, never a create."""
    _fresh(fuzz_emulator, installed)
    status, body = assert_webhook_answer(_call_webhook(event))
    query = event.get("queryString")
    right = isinstance(query, dict) and query.get("token") == PUSH_TOKEN
    if not right:
        assert status == 401 and fuzz_emulator.calls() == []
    elif event["httpMethod"].upper() != "POST":
        assert status == 405
    else:
        assert status in (200, 413), status
        assert status == 413 or (body["acknowledged"] is True and body["results"])
    assert_no_api_call_for_invalid_data(fuzz_emulator, event)
    assert_log_lines(installed)


@fuzz_settings(0.5)
@given(event=fs.index_events(PUSH_TOKEN))
def test_the_entry_point_answers_every_shape(
    fuzz_emulator: Emulator, installed: RuntimeHarness, event: Any
) -> None:
    """``index.main_handler`` with anything SCF may deliver: it routes, answers, logs valid JSON."""
    _fresh(fuzz_emulator, installed)
    try:
        response = index_handler.main_handler(event, scf_context())
    except MessagesNotAttempted as exc:  # pragma: no cover - a failure, reported with context
        pytest.fail(f"MessagesNotAttempted for an event with nothing to run out of time on: {exc}")
    if index_handler.route(event) == "webhook":
        status, _ = assert_webhook_answer(response)
        assert status < 500, status
    else:
        results = assert_results(response)
        assert all(r["code"] != 0 for r in results)
    assert_no_api_call_for_invalid_data(fuzz_emulator, event, reads=WEBHOOK_READS)
    assert_log_lines(installed)


# -- valid and invalid mixed ---------------------------------------------------------------------


@pytest.mark.parametrize("trigger", ["timer", "ckafka", "webhook"])
@fuzz_settings(0.3)
@given(
    mixed=fs.mixed_disk_lists(),
    batch_name=st.one_of(st.none(), st.text(fs.weird_chars, min_size=1, max_size=60)),
)
def test_only_the_valid_disks_of_a_mixed_request_are_snapshotted(
    fuzz_emulator: Emulator,
    installed: RuntimeHarness,
    trigger: str,
    mixed: tuple[list[Any], list[str], int, set[str]],
    batch_name: str | None,
) -> None:
    entries, valid_slots, invalid, refused = mixed
    _fresh(fuzz_emulator, installed)
    disks = fuzz_emulator.add_disks(fs.SLOTS)  # fresh disks: short histories, nothing CREATING
    document: dict[str, Any] = {"disks": fs.materialise(entries, disks)}
    if batch_name is not None:
        document["snapshotName"] = batch_name
    valid = {fs.materialise(s, disks) for s in valid_slots}
    n = next(_unique)

    if trigger == "timer":
        response = _call_timer(
            {"Type": "Timer", "TriggerName": "mixed", "Time": f"t{n}", "Message": json.dumps(document)}
        )
        request_key = response["requestKey"]
    elif trigger == "ckafka":
        response = _call_messages(_envelope("ckafka", n, json.dumps(document)))
        request_key = f"ckafka/fuzz/0/{n}"
    else:
        event = _webhook_event(document, "document", None)
        status, response = assert_webhook_answer(_call_webhook(signed(event)))
        if "results" not in response:
            # The body itself could not be read as text (a raw lone surrogate): the request is
            # refused as a whole, 400, and nothing reaches the cloud.
            assert status == 400 and "text" in response["message"], response
            assert fuzz_emulator.calls(action="CreateSnapshot") == []
            return
        request_key = response["requestKey"]
        failures = invalid + len(refused)
        assert (status == 200) == (failures == 0), status
        assert failures == 0 or status in (400, 422)
    results = assert_results(response, queue=trigger == "ckafka")

    creates = fuzz_emulator.calls(action="CreateSnapshot")
    assert sorted(c["params"]["DiskId"] for c in creates) == sorted(valid), (
        "each valid disk once, nothing else"
    )
    assert all(c["error"] is None for c in creates)
    succeeded = {r["storageId"]: r["snapshotId"] for r in results if r["code"] == 0}
    assert set(succeeded) == valid
    assert len(results) == len(valid) + invalid + len(refused)
    assert sorted(r["code"] for r in results if r["code"] != 0) == sorted(
        [SeedCode.INVALID_PARAMETER] * invalid
        + [
            SeedCode.SNAPSHOT_NOT_SUPPORTED if d == "disk-r5n8c2wd" else SeedCode.INVALID_PARAMETER
            for d in refused
        ]
    )
    for disk, snapshot_id in succeeded.items():
        [snap] = [s for s in fuzz_emulator.snapshots(disk) if s["SnapshotId"] == snapshot_id]
        tags = {t["Key"]: t["Value"] for t in snap["Tags"]}
        assert tags[KEY_TAG] == disk_key(request_key, disk)
