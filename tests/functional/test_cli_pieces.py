"""The CLI's pure pieces: HTTP requests as SCF events, answers as HTTP, tables that fit, exit codes."""

from __future__ import annotations

import base64
import json

import pytest

from cbsnap_cli.answers import read_answer
from cbsnap_cli.errors import ExitCode
from cbsnap_cli.http_events import (
    HttpRequest,
    UnsupportedRequest,
    apigw_event,
    error_answer,
    function_url_event,
    http_answer,
)
from cbsnap_cli.table import RESULT_COLUMNS, render
from tests.conftest import load_event

POST = HttpRequest(
    method="POST",
    target="/release/snapshots?a=1&r=x&r=y",
    headers=[("Content-Type", "application/json"), ("X-Cbsnap-Timestamp", "1795831200")],
    body=b'{"storageId": "disk-g73hhs4o"}',
    client_ip="203.0.113.7",
)


def test_an_http_request_becomes_the_api_gateway_event() -> None:
    event = apigw_event(POST, stage="release", request_id="req-1")
    assert set(event) == set(load_event("apigw-snapshots.json")), "the same fields as the sample event"
    assert (event["httpMethod"], event["path"]) == ("POST", "/snapshots"), "the stage is not in the path"
    assert event["queryString"] == {"a": "1", "r": ["x", "y"]}
    assert event["body"] == '{"storageId": "disk-g73hhs4o"}' and event["isBase64Encoded"] is False
    assert event["requestContext"]["requestId"] == "req-1" and event["requestContext"]["stage"] == "release"
    assert event["requestContext"]["sourceIp"] == "203.0.113.7"
    assert event["headers"]["X-Cbsnap-Timestamp"] == "1795831200"


def test_a_body_less_get_has_no_body_and_a_binary_body_is_base64() -> None:
    get = HttpRequest("GET", "/snapshots/snap-m4nu4l01?wait=50", [], b"", "127.0.0.1")
    event = apigw_event(get, stage="release", request_id="r")
    assert "body" not in event and event["path"] == "/snapshots/snap-m4nu4l01"
    binary = HttpRequest("POST", "/release/snapshots", [], b"\xff\x00", "127.0.0.1")
    event = apigw_event(binary, stage="release", request_id="r")
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\xff\x00"


def test_an_http_request_becomes_the_documented_function_url_event() -> None:
    event = function_url_event(POST)
    # the documented shape: API Gateway's without requestContext, isBase64Encoded, pathParameters,
    # queryStringParameters and headerParameters (docs/triggers.md, Function URL)
    assert set(event) == {"body", "headers", "httpMethod", "path", "queryString"}
    assert set(event) == set(load_event("function-url-snapshots.json"))
    assert event["path"] == "/release/snapshots", "a function URL has no stage"
    assert event["headers"]["content-type"] == "application/json", "header names lower-cased"
    assert event["headers"]["x-scf-remote-addr"] == "203.0.113.7"
    get = HttpRequest("GET", "/snapshots/snap-m4nu4l01", [], b"", "203.0.113.7")
    assert set(function_url_event(get)) == set(load_event("function-url-snapshot-status.json"))
    with pytest.raises(UnsupportedRequest, match="binary"):
        function_url_event(HttpRequest("POST", "/snapshots", [], b"\xff", "127.0.0.1"))


def test_an_integrated_response_becomes_that_http_response() -> None:
    answer = http_answer(
        {"isBase64Encoded": False, "statusCode": 409, "headers": {"Allow": "GET"}, "body": '{"code": 16005}'}
    )
    assert (answer.status, answer.headers["Allow"], json.loads(answer.body)) == (409, "GET", {"code": 16005})
    assert answer.headers["Content-Type"] == "application/json"
    encoded = http_answer(
        {"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(b"\x00").decode()}
    )
    assert encoded.body == b"\x00"


def test_failures_outside_the_function_have_the_seeds_shape() -> None:
    refused = error_answer(400, "binary body")
    assert (refused.status, json.loads(refused.body)["code"]) == (400, 9003)
    failed = error_answer(502, "the function raised KeyError")
    assert (failed.status, json.loads(failed.body)["code"]) == (502, 6000)


def test_any_other_answer_is_a_200_json_body() -> None:
    answer = http_answer({"trigger": "ckafka", "results": []})
    assert answer.status == 200 and json.loads(answer.body) == {"trigger": "ckafka", "results": []}


def test_exit_codes_follow_the_results_and_the_http_status() -> None:
    ok = {"code": 0, "storageId": "disk-aaaaaaa1", "snapshotId": "snap-aaaaaaa1"}
    busy = {"code": 16005, "storageId": "disk-aaaaaaa2", "snapshotId": None}
    assert read_answer({"results": [ok]}).exit_code() == ExitCode.OK
    assert read_answer({"results": [ok, busy]}).exit_code() == ExitCode.FAILED
    webhook_ok = {"statusCode": 200, "body": json.dumps(ok)}  # the seed's single-result shape
    assert read_answer(webhook_ok).results == [ok] and read_answer(webhook_ok).exit_code() == ExitCode.OK
    refused = {"statusCode": 401, "body": json.dumps({"code": 4100, "message": "bad signature"})}
    assert read_answer(refused).exit_code() == ExitCode.FAILED
    assert read_answer(refused).summary() == "HTTP 401: bad signature"


ROWS = [
    {
        "storageId": "disk-g73hhs4o",
        "snapshotName": "nightly",
        "code": 0,
        "snapshotId": "snap-o7zxxxr3",
        "message": "",
    },
    {
        "storageId": "disk-r5n8c2wd",
        "snapshotName": "nightly",
        "code": 16026,
        "snapshotId": None,
        "message": "InvalidDisk.NotSupportSnapshot: the disk cannot be snapshotted (RequestId 0d7c2b1e-7a3b)",
    },
]


@pytest.mark.parametrize("width", [72, 80, 100, 200])
def test_a_table_fits_its_width_and_keeps_every_character(width: int) -> None:
    table = render(ROWS, RESULT_COLUMNS, width)
    lines = table.splitlines()
    assert all(len(line) <= width for line in lines), table
    flat = "".join(table.split())
    for row in ROWS:
        for value in row.values():
            if value not in (None, ""):
                assert "".join(str(value).split()) in flat, f"{value!r} was cut"
    # identifiers are never wrapped: each sits whole on its row's first line
    assert any(line.startswith("disk-r5n8c2wd  nightly       16026") for line in lines)


def test_a_terminal_too_narrow_for_the_identifiers_overflows_rather_than_cutting() -> None:
    table = render(ROWS, RESULT_COLUMNS, 30)
    assert "disk-r5n8c2wd" in table and "snap-o7zxxxr3" in table
