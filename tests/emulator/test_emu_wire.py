"""Wire protocol: envelopes, content type, services/versions/actions, regions, parameters, keep-alive."""

from __future__ import annotations

import http.client
import json
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator
from cbsnap_emulator.signature import authorization_header

EXAMPLES = Path("/work/shared/reference/events-from-docs/cbs_official_examples_from_tccli.json")


def test_success_envelope_and_headers(emulator: Emulator, raw: Any) -> None:
    resp = raw.post(emulator, "DescribeDisks")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"  # exactly: the SDK ignores errors otherwise
    assert int(resp.headers["Content-Length"]) == len(resp.content)
    body = resp.json()
    assert set(body) == {"Response"}
    assert body["Response"]["TotalCount"] == 0
    assert len(body["Response"]["RequestId"]) == 36


def test_errors_are_http_200_with_error_object(emulator: Emulator, raw: Any) -> None:
    resp = raw.post(emulator, "CreateSnapshot", b"{}")
    assert raw.error(resp) == "MissingParameter"
    error = resp.json()["Response"]["Error"]
    assert set(error) == {"Code", "Message"} and "DiskId" in error["Message"]


def test_sdk_surfaces_error_code_message_and_request_id(sdk: Any) -> None:
    err = sdk.cbs_error("CreateSnapshot", DiskId="disk-nothere1")
    assert err.code == "InvalidDiskId.NotFound"
    assert "disk-nothere1" in err.message
    assert len(err.requestId) == 36


@pytest.mark.parametrize(
    ("service", "version", "action", "code"),
    [
        ("cbs", "2017-03-13", "DescribeDisks", "NoSuchVersion"),
        ("tdmq", "2017-03-12", "SendCmqMsg", "NoSuchVersion"),
        ("cbs", "2017-03-12", "DescribeInstances", "InvalidAction"),
        ("cbs", "2017-03-12", "SendCmqMsg", "InvalidAction"),
        ("cvm", "2017-03-12", "DescribeInstances", "NoSuchProduct"),
        ("cbs", "", "DescribeDisks", "MissingParameter"),
        ("cbs", "2017-03-12", "", "MissingParameter"),
    ],
)
def test_service_version_action_resolution(
    emulator: Emulator, raw: Any, service: str, version: str, action: str, code: str
) -> None:
    assert raw.error(raw.post(emulator, action, service=service, version=version)) == code
    [call] = emulator.calls()
    assert call["error"] == code


def test_invalid_action_through_sdk(sdk: Any) -> None:
    with pytest.raises(TencentCloudSDKException) as info:
        sdk.cbs_client.call_json("CreateDisks", {})
    assert info.value.code == "InvalidAction"


def test_unknown_parameter(sdk: Any) -> None:
    with pytest.raises(TencentCloudSDKException) as info:
        sdk.cbs_client.call_json("DescribeDisks", {"Limit": 1, "Bogus": True})
    assert info.value.code == "UnknownParameter"
    assert "Bogus" in info.value.message


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "InvalidParameter"),
        (b"[1, 2]", "InvalidParameter"),
        (b'{"Limit": "many"}', "InvalidParameter"),
        (b'{"DiskIds": "disk-aaaa0001"}', "InvalidParameter"),
        (b'{"Filters": [{"Name": "zone"}]}', "MissingParameter"),
        (b'{"Filters": [{"Name": "zone", "Values": []}]}', "InvalidParameterValue"),
    ],
)
def test_parameter_types(emulator: Emulator, raw: Any, body: bytes, code: str) -> None:
    assert raw.error(raw.post(emulator, "DescribeDisks", body)) == code


def test_region_is_required_and_must_exist(emulator: Emulator, make_sdk: Any, raw: Any) -> None:
    assert raw.error(raw.post(emulator, "DescribeDisks", region=None)) == "MissingParameter"
    assert make_sdk(region="xx-nowhere").cbs_error("DescribeDisks").code == "UnsupportedRegion"
    assert make_sdk(region="").cbs_error("DescribeDisks").code == "MissingParameter"  # SDK omits the header


def test_regions_are_separate_namespaces(emulator: Emulator, make_sdk: Any) -> None:
    emulator.add_disk("disk-gz000001", region="ap-guangzhou")
    emulator.add_disk("disk-sh000001", region="ap-shanghai")
    gz, sh = make_sdk(region="ap-guangzhou"), make_sdk(region="ap-shanghai")
    assert [d["DiskId"] for d in gz.cbs("DescribeDisks")["DiskSet"]] == ["disk-gz000001"]
    assert [d["DiskId"] for d in sh.cbs("DescribeDisks")["DiskSet"]] == ["disk-sh000001"]
    assert gz.cbs_error("CreateSnapshot", DiskId="disk-sh000001").code == "InvalidDiskId.NotFound"
    snap = sh.cbs("CreateSnapshot", DiskId="disk-sh000001")["SnapshotId"]
    assert gz.cbs("DescribeSnapshots", SnapshotIds=[snap])["TotalCount"] == 0
    assert gz.cbs_error("DeleteSnapshots", SnapshotIds=[snap]).code == "InvalidSnapshotId.NotFound"
    assert [s["SnapshotId"] for s in emulator.snapshots(region="ap-shanghai")] == [snap]


def test_get_requests_with_nested_parameters(emulator: Emulator, make_sdk: Any) -> None:
    emulator.add_disk("disk-get00001")
    client = make_sdk(method="GET")
    snap = client.cbs(
        "CreateSnapshot", DiskId="disk-get00001", SnapshotName="via-get", Tags=[{"Key": "k", "Value": "v"}]
    )["SnapshotId"]
    found = client.cbs(
        "DescribeSnapshots", Filters=[{"Name": "snapshot-name", "Values": ["via-get"]}], Limit=5
    )
    assert [s["SnapshotId"] for s in found["SnapshotSet"]] == [snap]
    assert found["SnapshotSet"][0]["Tags"] == [{"Key": "k", "Value": "v"}]


def test_responses_match_sdk_models_exactly(emulator: Emulator, sdk: Any) -> None:
    # The SDK warns "<field> fileds are useless." for any field its models lack: there must be none.
    emulator.add_disk("disk-shape001", instance_id="ins-shape001")
    emulator.add_disk("disk-shape002", instance_id="ins-shape001")
    sdk.cbs("CreateSnapshotGroup", DiskIds=["disk-shape001", "disk-shape002"], SnapshotGroupName="g")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sdk.cbs("DescribeDisks")
        sdk.cbs("DescribeSnapshots")
        sdk.cbs("DescribeSnapshotGroups")
    assert [str(w.message) for w in caught] == []


@pytest.mark.skipif(not EXAMPLES.exists(), reason="shared reference examples not available")
@pytest.mark.parametrize(
    ("action", "list_key"),
    [
        ("DescribeDisks", "DiskSet"),
        ("DescribeSnapshots", "SnapshotSet"),
        ("DescribeSnapshotGroups", "SnapshotGroupSet"),
    ],
)
def test_objects_have_every_field_of_the_official_examples(
    emulator: Emulator, sdk: Any, action: str, list_key: str
) -> None:
    emulator.add_disk("disk-exmpl001", instance_id="ins-exmpl001")
    sdk.cbs("CreateSnapshotGroup", DiskIds=["disk-exmpl001"], SnapshotGroupName="g")
    example = json.loads(json.loads(EXAMPLES.read_text())[action][0]["output"])["Response"][list_key][0]
    ours = sdk.cbs_client.call_json(action, {})["Response"][list_key][0]
    assert set(example) <= set(ours)
    assert set(example["Placement"]) <= set(ours["Placement"]) if "Placement" in example else True


def test_keep_alive_serves_several_requests_per_connection(emulator: Emulator) -> None:
    conn = http.client.HTTPConnection(emulator.endpoint, timeout=5)
    try:
        for limit in (1, 2, 3):
            body = json.dumps({"Limit": limit}).encode()
            ts = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "Host": emulator.endpoint,
                "X-TC-Action": "DescribeDisks",
                "X-TC-Version": "2017-03-12",
                "X-TC-Region": "ap-guangzhou",
                "X-TC-Timestamp": str(ts),
                "Authorization": authorization_header(
                    DEFAULT_SECRET_ID,
                    DEFAULT_SECRET_KEY,
                    service="cbs",
                    timestamp=ts,
                    host=emulator.endpoint,
                    body=body,
                ),
            }
            conn.request("POST", "/", body=body, headers=headers)
            resp = conn.getresponse()
            assert resp.status == 200 and resp.getheader("Connection") is None
            assert json.loads(resp.read())["Response"]["TotalCount"] == 0
    finally:
        conn.close()


def test_unknown_path_and_method(emulator: Emulator) -> None:
    conn = http.client.HTTPConnection(emulator.endpoint, timeout=5)
    conn.request("GET", "/v2/index.php")
    assert conn.getresponse().status == 404
    conn.close()
