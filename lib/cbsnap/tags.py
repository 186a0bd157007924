"""The Tag API (``tag``, 2018-08-13): tags for resources whose create call takes none.

CopySnapshotCrossRegions takes no ``Tags`` (its request has only ``DestinationRegions``,
``SnapshotId`` and ``SnapshotName``), so a copy gets cbsnap's owner and key tags here, after it
exists, with ``TagResources``. A snapshot is named for the Tag API as
``qcs::cvm:<region>:uin/:snapshot/<snapshot-id>``: the Terraform provider's
``BuildTagResourceName("cvm", "snapshot", …)`` (an empty account segment stands for the
caller's own), docs/facts-corrections.md. The tags written there are the very tags
DescribeSnapshots shows.

The Tag SDK is imported only when a copy is tagged (:func:`tag_apis`), so no cold start pays
for it; :class:`SignedTagApi` shares the CBS client's credentials, endpoint override, pacing,
retries and exception translation (:class:`~cbsnap.client.SignedApi`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from cbsnap.client import RetryPolicy, SignedApi, make_credential, make_profile
from cbsnap.errors import CloudError
from cbsnap.pacing import RateLimiter, Sleep
from cbsnap.scf import Deadline
from cbsnap.settings import Settings

MAX_RESOURCES_PER_CALL = 10  # TagResources: "ResourceList.N … 0~9"
MAX_TAGS_PER_CALL = 10  # and at most 10 tags a call
# The Tag API is global: its requests need no region, and the SDK sends none for "".
TAG_REGION = ""


def snapshot_resource(region: str, snapshot_id: str) -> str:
    """The Tag API's name of a CBS snapshot (see the module docstring)."""
    return f"qcs::cvm:{region}:uin/:snapshot/{snapshot_id}"


class TagApi(Protocol):
    """What cbsnap needs from the Tag API."""

    def tag_resources(self, resources: Sequence[str], tags: Mapping[str, str], deadline: Deadline) -> None:
        """TagResources: add (or overwrite) ``tags`` on every resource; raises
        :class:`~cbsnap.errors.CloudError` when the call or any resource failed."""
        ...


class SignedTagApi(SignedApi):
    """The SDK implementation of :class:`TagApi` (see :class:`~cbsnap.client.SignedApi`)."""

    def tag_resources(self, resources: Sequence[str], tags: Mapping[str, str], deadline: Deadline) -> None:
        """TagResources in one call (≤ 10 resources, ≤ 10 tags). Writing the same tags again
        changes nothing, so ambiguous failures are retried like reads. A resource reported
        in ``FailedResources`` fails the call: its first entry's code and message."""
        if not 0 < len(resources) <= MAX_RESOURCES_PER_CALL or not 0 < len(tags) <= MAX_TAGS_PER_CALL:
            raise ValueError("TagResources takes 1 to 10 resources and 1 to 10 tags a call")
        from tencentcloud.tag.v20180813 import models as tag_models

        req = tag_models.TagResourcesRequest()
        req.ResourceList = list(resources)
        req.Tags = []
        for key, value in tags.items():
            tag = tag_models.Tag()
            tag.TagKey, tag.TagValue = key, value
            req.Tags.append(tag)
        resp = self._call("TagResources", req, deadline)
        for failed in resp.FailedResources or ():
            raise CloudError(
                "TagResources",
                str(failed.Code or "FailedOperation"),
                f"{failed.Resource}: {failed.Message or 'not tagged'}",
                resp.RequestId,
            )


def tag_apis(
    settings: Settings, limiter: RateLimiter, *, policy: RetryPolicy | None = None, sleep: Sleep = time.sleep
) -> Callable[[], TagApi]:
    """The Tag API client, built (and its SDK imported) on first use."""
    built: list[TagApi] = []

    def get() -> TagApi:
        if not built:
            from tencentcloud.tag.v20180813 import tag_client

            client = tag_client.TagClient(
                make_credential(settings), TAG_REGION, make_profile(settings, "tag")
            )
            built.append(
                SignedTagApi(client, region=TAG_REGION, rate_limiter=limiter, policy=policy, sleep=sleep)
            )
        return built[0]

    return get
