"""Tag API (2018-08-13): TagResources, UnTagResources, GetResources through the real SDK, and the
shared tags of CBS snapshots and disks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.tag.v20180813 import models as tag_models
from tencentcloud.tag.v20180813 import tag_client

from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Emulator, Fault

DISK = "disk-tag00001"
UIN = "100000000001"


class Tag:
    """The Tag API through the SDK's typed models (region optional: the API is global)."""

    def __init__(self, emu: Emulator, region: str = "") -> None:
        profile = ClientProfile(
            httpProfile=HttpProfile(protocol="http", endpoint=emu.endpoint, reqTimeout=10)
        )
        self.client = tag_client.TagClient(Credential(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY), region, profile)

    def __call__(self, action: str, **params: Any) -> dict[str, Any]:
        req = getattr(tag_models, action + "Request")()
        req.from_json_string(json.dumps(params))
        return json.loads(getattr(self.client, action)(req).to_json_string())

    def error(self, action: str, **params: Any) -> str:
        with pytest.raises(TencentCloudSDKException) as info:
            self(action, **params)
        assert info.value.requestId
        return str(info.value.code)


@pytest.fixture
def tag(emulator: Emulator) -> Tag:
    return Tag(emulator)


@pytest.fixture
def snap(emulator: Emulator, sdk: Any) -> str:
    """A snapshot made by CreateSnapshot with tags, in ap-guangzhou."""
    emulator.add_disk(DISK, tags={"app": "web"})
    return str(
        sdk.cbs("CreateSnapshot", DiskId=DISK, Tags=[{"Key": "cbsnap:owner", "Value": "cbsnap"}])[
            "SnapshotId"
        ]
    )


def snap_name(snapshot_id: str, region: str = "ap-guangzhou") -> str:
    return f"qcs::cvm:{region}:uin/{UIN}:snapshot/{snapshot_id}"


def tags_of(reply: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        m["Resource"]: {t["TagKey"]: t["TagValue"] for t in m["Tags"]}
        for m in reply["ResourceTagMappingList"]
    }


def test_create_snapshot_tags_are_visible_to_get_resources(emulator: Emulator, tag: Tag, snap: str) -> None:
    assert emulator.account_uin == UIN
    # the account segment may be given in full, as "uin/", or left empty; answers are canonical
    for account in (f"uin/{UIN}", "uin/", ""):
        reply = tag("GetResources", ResourceList=[f"qcs::cvm:ap-guangzhou:{account}:snapshot/{snap}"])
        assert tags_of(reply) == {snap_name(snap): {"cbsnap:owner": "cbsnap"}}
        assert reply["PaginationToken"] == ""
    # the disk is there too, as a cvm volume
    reply = tag("GetResources", ResourceList=[f"qcs::cvm:ap-guangzhou:uin/:volume/{DISK}"])
    assert tags_of(reply) == {f"qcs::cvm:ap-guangzhou:uin/{UIN}:volume/{DISK}": {"app": "web"}}


def test_tags_written_here_are_the_ones_describe_snapshots_shows(
    emulator: Emulator, sdk: Any, tag: Tag, snap: str
) -> None:
    reply = tag(
        "TagResources",
        ResourceList=[snap_name(snap)],
        Tags=[{"TagKey": "cbsnap:owner", "TagValue": "other"}, {"TagKey": "cbsnap:key", "TagValue": "k1"}],
    )
    assert reply["FailedResources"] == []
    # an existing key takes the new value in place; a new key is appended
    assert sdk.snapshot(snap)["Tags"] == [
        {"Key": "cbsnap:owner", "Value": "other"},
        {"Key": "cbsnap:key", "Value": "k1"},
    ]
    tag("UnTagResources", ResourceList=[snap_name(snap)], TagKeys=["cbsnap:owner", "never-set"])
    assert sdk.snapshot(snap)["Tags"] == [{"Key": "cbsnap:key", "Value": "k1"}]


def test_disk_tags_written_here_drive_describe_disks_filters(sdk: Any, tag: Tag, snap: str) -> None:
    tag(
        "TagResources",
        ResourceList=[f"qcs::cvm:ap-guangzhou:uin/{UIN}:volume/{DISK}"],
        Tags=[{"TagKey": "backup", "TagValue": "nightly"}],
    )
    found = sdk.cbs("DescribeDisks", Filters=[{"Name": "tag:backup", "Values": ["nightly"]}])
    assert [d["DiskId"] for d in found["DiskSet"]] == [DISK]


def test_a_cross_region_copy_is_tagged_in_its_region(
    emulator: Emulator, sdk: Any, make_sdk: Any, tag: Tag, snap: str
) -> None:
    emulator.advance(3)
    copy_id = sdk.cbs("CopySnapshotCrossRegions", SnapshotId=snap, DestinationRegions=["ap-shanghai"])[
        "SnapshotCopyResultSet"
    ][0]["SnapshotId"]
    # the copy carries no tags; ownership goes on through the Tag API, named in its own region
    wrong_region = tag(
        "TagResources", ResourceList=[snap_name(copy_id)], Tags=[{"TagKey": "a", "TagValue": "b"}]
    )
    assert [f["Code"] for f in wrong_region["FailedResources"]] == ["InvalidParameterValue.ResourceIdInvalid"]
    tag(
        "TagResources",
        ResourceList=[snap_name(copy_id, "ap-shanghai")],
        Tags=[{"TagKey": "cbsnap:owner", "TagValue": "cbsnap"}],
    )
    assert make_sdk(region="ap-shanghai").snapshot(copy_id)["Tags"] == [
        {"Key": "cbsnap:owner", "Value": "cbsnap"}
    ]


def test_a_missing_snapshot_fails_alone(emulator: Emulator, tag: Tag, snap: str) -> None:
    reply = tag(
        "TagResources",
        ResourceList=[snap_name("snap-nothere1"), snap_name(snap)],
        Tags=[{"TagKey": "team", "TagValue": "ops"}],
    )
    assert reply["FailedResources"] == [
        {
            "Resource": snap_name("snap-nothere1"),
            "Code": "InvalidParameterValue.ResourceIdInvalid",
            "Message": "The snapshot `snap-nothere1` does not exist in ap-guangzhou.",
        }
    ]
    assert {"Key": "team", "Value": "ops"} in emulator.snapshots()[0]["Tags"]


def test_get_resources_filters_by_tags(emulator: Emulator, tag: Tag) -> None:
    emulator.add_disk(DISK)
    a = emulator.add_snapshot(DISK, tags={"env": "prod", "team": "ops"})
    b = emulator.add_snapshot(DISK, tags={"env": "dev", "team": "ops"})
    c = emulator.add_snapshot(DISK, tags={"env": "prod"})
    emulator.add_snapshot(DISK)  # untagged: the tag service does not list it

    def listed(*filters: dict[str, Any]) -> list[str]:
        reply = tag("GetResources", TagFilters=list(filters))
        return [m["Resource"].rsplit("/", 1)[1] for m in reply["ResourceTagMappingList"]]

    assert listed() == [a, b, c]
    assert listed({"TagKey": "team"}) == [a, b]  # key only: any value
    assert listed({"TagKey": "env", "TagValue": ["prod", "staging"]}) == [a, c]  # values OR
    assert listed({"TagKey": "env", "TagValue": ["prod"]}, {"TagKey": "team", "TagValue": ["ops"]}) == [
        a
    ]  # AND
    assert listed({"TagKey": "nope"}) == []
    # with a ResourceList the filters narrow the named resources
    reply = tag(
        "GetResources",
        ResourceList=[snap_name(a), snap_name(b)],
        TagFilters=[{"TagKey": "env", "TagValue": ["dev"]}],
    )
    assert list(tags_of(reply)) == [snap_name(b)]


def test_get_resources_pages_with_a_token(emulator: Emulator, tag: Tag) -> None:
    emulator.add_disk(DISK)
    made = [emulator.add_snapshot(DISK, tags={"n": str(i)}) for i in range(5)]
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        reply = tag("GetResources", MaxResults=2, PaginationToken=token)
        seen += [m["Resource"].rsplit("/", 1)[1] for m in reply["ResourceTagMappingList"]]
        pages += 1
        token = reply["PaginationToken"]
        if not token:
            break
    assert (seen, pages) == (made, 3)
    assert (
        tag.error("GetResources", PaginationToken="not-a-token") == "InvalidParameter.PaginationTokenInvalid"
    )
    assert tag.error("GetResources", MaxResults=201) == "InvalidParameter"


@pytest.mark.parametrize(
    "name",
    [
        "snap-xxxxxxxx",
        "qcs:cvm:ap-guangzhou:uin/1:snapshot/snap-xxxxxxxx",
        "qcs::cvm:ap-guangzhou:uin/1:snapshot",
        "qcs::cvm:ap-guangzhou:uin/1:snapshot/snap-x/extra",
        "qcs::cvm:ap-guangzhou:user/1:snapshot/snap-xxxxxxxx",
        "qcs::CVM:ap-guangzhou:uin/1:snapshot/snap-xxxxxxxx",
    ],
)
def test_malformed_resource_names_are_refused(emulator: Emulator, tag: Tag, name: str) -> None:
    code = tag.error("TagResources", ResourceList=[name], Tags=[{"TagKey": "a", "TagValue": "b"}])
    assert code == "InvalidParameterValue.ResourceDescriptionError"
    assert tag.error("GetResources", ResourceList=[name]) == "InvalidParameterValue.ResourceDescriptionError"


def test_another_account_or_an_unknown_region_is_refused(tag: Tag) -> None:
    other = "qcs::cvm:ap-guangzhou:uin/200000000002:snapshot/snap-xxxxxxxx"
    assert tag.error("GetResources", ResourceList=[other]) == "InvalidParameterValue.UinInvalid"
    moon = f"qcs::cvm:moon-base-1:uin/{UIN}:snapshot/snap-xxxxxxxx"
    assert tag.error("GetResources", ResourceList=[moon]) == "InvalidParameterValue.RegionInvalid"


def test_fifty_tags_per_resource_at_most_and_nothing_changes(emulator: Emulator, tag: Tag) -> None:
    emulator.add_disk(DISK)
    full = emulator.add_snapshot(DISK, tags={f"k{i}": "v" for i in range(45)})
    spare = emulator.add_snapshot(DISK)
    six = [{"TagKey": f"new{i}", "TagValue": "v"} for i in range(6)]
    code = tag.error("TagResources", ResourceList=[snap_name(spare), snap_name(full)], Tags=six)
    assert code == "LimitExceeded.ResourceAttachedTags"
    assert [len(s["Tags"]) for s in emulator.snapshots()] == [45, 0]
    # overwriting existing keys does not add to the count
    tag(
        "TagResources",
        ResourceList=[snap_name(full)],
        Tags=[{"TagKey": f"k{i}", "TagValue": "w"} for i in range(5)] + six[:5],
    )
    assert len(emulator.snapshots()[0]["Tags"]) == 50


@pytest.mark.parametrize(
    ("tags", "code"),
    [
        ([{"TagKey": f"k{i}", "TagValue": "v"} for i in range(11)], "LimitExceeded.TagNumPerRequest"),
        ([{"TagKey": "", "TagValue": "v"}], "InvalidParameterValue.TagKeyEmpty"),
        ([{"TagKey": "k", "TagValue": ""}], "InvalidParameterValue.TagValueEmpty"),
        ([{"TagKey": "k" * 128, "TagValue": "v"}], "InvalidParameterValue.TagKeyLengthExceeded"),
        ([{"TagKey": "k", "TagValue": "v" * 256}], "InvalidParameterValue.TagValueLengthExceeded"),
        ([{"TagKey": "qcloud:x", "TagValue": "v"}], "InvalidParameter.ReservedTagKey"),
        ([{"TagKey": "Project", "TagValue": "v"}], "InvalidParameter.ReservedTagKey"),
        ([{"TagKey": "qcs:x", "TagValue": "v"}], "InvalidParameter.ReservedTagKey"),
        ([{"TagKey": "bad\tkey", "TagValue": "v"}], "InvalidParameterValue.TagKeyCharacterIllegal"),
        ([{"TagKey": " lead", "TagValue": "v"}], "InvalidParameterValue.TagKeyCharacterIllegal"),
        ([{"TagKey": "k", "TagValue": "a*b"}], "InvalidParameterValue.TagValueCharacterIllegal"),
        (
            [{"TagKey": "k", "TagValue": "a"}, {"TagKey": "k", "TagValue": "b"}],
            "InvalidParameterValue.TagKeyDuplicate",
        ),
        ([], "MissingParameter"),
    ],
)
def test_tag_rules(emulator: Emulator, tag: Tag, tags: list[dict[str, str]], code: str) -> None:
    emulator.add_disk(DISK)
    target = emulator.add_snapshot(DISK)
    assert tag.error("TagResources", ResourceList=[snap_name(target)], Tags=tags) == code
    assert emulator.snapshots()[0]["Tags"] == []


def test_tag_keys_allow_the_documented_characters(emulator: Emulator, tag: Tag) -> None:
    emulator.add_disk(DISK)
    target = emulator.add_snapshot(DISK)
    tags = [{"TagKey": "cbsnap:corr:run id", "TagValue": "a+b=c.d_e/f@(g)[h],i;j>k<l 项目值"}]
    tag("TagResources", ResourceList=[snap_name(target)], Tags=tags)
    assert emulator.snapshots()[0]["Tags"] == [
        {"Key": "cbsnap:corr:run id", "Value": "a+b=c.d_e/f@(g)[h],i;j>k<l 项目值"}
    ]


def test_request_size_limits(emulator: Emulator, tag: Tag) -> None:
    names = [snap_name(f"snap-{i:08d}") for i in range(11)]
    assert tag.error("TagResources", ResourceList=names, Tags=[{"TagKey": "a", "TagValue": "b"}]) == (
        "LimitExceeded.ResourceNumPerRequest"
    )
    assert tag.error("UnTagResources", ResourceList=names[:1], TagKeys=[f"k{i}" for i in range(11)]) == (
        "LimitExceeded.TagNumPerRequest"
    )
    filters = [{"TagKey": f"k{i}"} for i in range(7)]
    assert tag.error("GetResources", TagFilters=filters) == "LimitExceeded.TagNumPerRequest"
    many = [{"TagKey": "k", "TagValue": [str(i) for i in range(11)]}]
    assert tag.error("GetResources", TagFilters=many) == "InvalidParameterValue.TagFiltersLengthExceeded"
    assert tag.error("UnTagResources", ResourceList=names[:1], TagKeys=[]) == "MissingParameter"


def test_other_resources_are_kept_by_name(emulator: Emulator, tag: Tag) -> None:
    instance = f"qcs::cvm:ap-guangzhou:uin/{UIN}:instance/ins-abcdefgh"
    tag("TagResources", ResourceList=[instance], Tags=[{"TagKey": "role", "TagValue": "db"}])
    assert tags_of(tag("GetResources", ResourceList=[instance])) == {instance: {"role": "db"}}
    tag("UnTagResources", ResourceList=[instance], TagKeys=["role"])
    assert tag("GetResources", ResourceList=[instance])["ResourceTagMappingList"] == []


def test_a_wrong_name_for_a_snapshot_does_not_tag_the_snapshot(
    emulator: Emulator, sdk: Any, tag: Tag, snap: str
) -> None:
    # Well-formed but not how CBS snapshots are named: the tag service keeps it, the snapshot never
    # shows it. This is the mistake an emulator test must be able to catch.
    wrong = f"qcs::cbs:ap-guangzhou:uin/{UIN}:snap/{snap}"
    tag("TagResources", ResourceList=[wrong], Tags=[{"TagKey": "team", "TagValue": "ops"}])
    assert sdk.snapshot(snap)["Tags"] == [{"Key": "cbsnap:owner", "Value": "cbsnap"}]


def test_region_is_optional_and_checked_when_sent(emulator: Emulator, tag: Tag, snap: str) -> None:
    assert tag("GetResources", ResourceList=[snap_name(snap)])["ResourceTagMappingList"]
    assert emulator.calls(service="tag")[0]["region"] is None  # the SDK sent no X-TC-Region
    shanghai = Tag(emulator, "ap-shanghai")
    assert shanghai("GetResources", ResourceList=[snap_name(snap)])["ResourceTagMappingList"]
    assert Tag(emulator, "mars-north-1").error("GetResources") == "UnsupportedRegion"


def test_lost_reply_after_tagging(emulator: Emulator, sdk: Any, tag: Tag, snap: str) -> None:
    emulator.add_fault(Fault("TagResources", kind="lost_reply", times=1))
    with pytest.raises(TencentCloudSDKException) as info:
        tag("TagResources", ResourceList=[snap_name(snap)], Tags=[{"TagKey": "team", "TagValue": "ops"}])
    assert info.value.code == "ClientNetworkError"
    assert {"Key": "team", "Value": "ops"} in sdk.snapshot(snap)["Tags"]


def test_error_fault_and_rate_limit_apply_to_tag_actions(emulator: Emulator, tag: Tag) -> None:
    emulator.add_fault(Fault("GetResources", code="FailedOperation.ResourceTagProcessing", times=1))
    assert tag.error("GetResources") == "FailedOperation.ResourceTagProcessing"
    emulator.set_rate_limit(1, "GetResources")
    tag("GetResources")
    assert tag.error("GetResources") == "RequestLimitExceeded"


def test_wrong_version_for_the_tag_service(emulator: Emulator, raw: Any) -> None:
    resp = raw.post(emulator, "GetResources", "{}", service="tag", version="2017-03-12")
    assert raw.error(resp) == "NoSuchVersion"
    ok = raw.post(emulator, "GetResources", "{}", service="tag", version="2018-08-13", region=None)
    assert ok.json()["Response"]["ResourceTagMappingList"] == []
