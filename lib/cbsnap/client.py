"""The thin signed client: a typed wrapper over the SDK's ``CbsClient``.

It owns credentials, region, endpoint, timeouts, pacing and retries, and it is
the only module that sees ``TencentCloudSDKException``: every SDK failure leaves
here as :class:`~cbsnap.errors.CloudError` (``raise … from``).

Retries follow the call's nature:

* ``RequestLimitExceeded*`` is paced and retried until the invocation's deadline.
* Transient errors (``InternalError*``, ``ResourceBusy``, ``InvalidDisk.Busy``,
  network errors) get a few attempts with capped exponential backoff and jitter.
* For CreateSnapshot, an *ambiguous* failure (network error, ``InternalError*``)
  may have created the snapshot, so it is not retried here: it is raised for the
  use case, which looks for the snapshot by its idempotency tag before trying
  again. The SDK's StandardRetryer is not used: it re-raises a stale error after
  a success (see docs/sdk-traps.md).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tencentcloud.cbs.v20170312 import cbs_client
from tencentcloud.cbs.v20170312 import models as cbs_models
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.http.request import ProxyConnection
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from cbsnap.cbs import (
    DESCRIBE_DISKS_MAX_IDS,
    DESCRIBE_SNAPSHOTS_MAX_DISKS,
    MAX_PAGES,
    PAGE_LIMIT,
    CopyStarted,
    CreatedSnapshot,
    DiskInfo,
    SnapshotInfo,
)
from cbsnap.errors import CloudError, ConfigurationError, DeadlineReached
from cbsnap.metrics import record_call
from cbsnap.pacing import RateLimiter, Sleep
from cbsnap.scf import Deadline
from cbsnap.settings import Settings

T = TypeVar("T")

# A call is not started with less time than this left: it could not get an answer back.
MIN_CALL_SECONDS = 0.05
# The time left to the current call's deadline, per thread (see _DeadlineBoundConnection).
_call_budget = threading.local()


class _DeadlineBoundConnection(ProxyConnection):  # type: ignore[misc]
    """The SDK's HTTP connection with each request's timeout capped by the time left.

    The SDK reads one fixed ``timeout`` per client, and one client serves several worker
    threads; a request sent near the deadline with the full timeout would outlive the
    invocation (SCF kills it, and every result is lost). ``timeout`` becomes a property:
    the configured value, or the calling thread's budget (set by :meth:`SignedApi._call`)
    when that is smaller. Never instantiated: :func:`bound_to_deadline` swaps it onto
    the SDK's own connection object.
    """

    @property
    def timeout(self) -> float:
        configured = float(self.__dict__["_configured_timeout"])
        budget = getattr(_call_budget, "seconds", None)
        return configured if budget is None else max(min(configured, budget), MIN_CALL_SECONDS)

    @timeout.setter
    def timeout(self, value: float) -> None:
        self.__dict__["_configured_timeout"] = value


def bound_to_deadline(sdk: Any) -> Any:
    """Make ``sdk``'s requests honour the calling thread's deadline (see above); returns ``sdk``."""
    conn = getattr(getattr(sdk, "request", None), "conn", None)
    if isinstance(conn, ProxyConnection) and not isinstance(conn, _DeadlineBoundConnection):
        configured = conn.__dict__.pop("timeout", 60)
        conn.__class__ = _DeadlineBoundConnection
        conn.timeout = configured
    return sdk


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry. Delays use "equal jitter": half fixed, half random."""

    transient_attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 2.0
    throttle_base_delay: float = 0.05
    throttle_max_delay: float = 1.0

    def delay(self, failures: int, rng: random.Random, *, throttle: bool = False) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1-based)."""
        base, cap = (
            (self.throttle_base_delay, self.throttle_max_delay)
            if throttle
            else (self.base_delay, self.max_delay)
        )
        ceiling: float = min(cap, base * 2.0 ** max(failures - 1, 0))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


def make_credential(settings: Settings) -> credential.Credential:
    """The SDK credential from settings, built explicitly.

    The SDK's environment provider does not read SCF's
    ``TENCENTCLOUD_SECRETID``/``…SECRETKEY``/``…SESSIONTOKEN``.
    """
    if not settings.secret_id or not settings.secret_key.get_secret_value():
        raise ConfigurationError(
            "no API credentials: bind an execution role to the function (SCF then sets "
            "TENCENTCLOUD_SECRETID/TENCENTCLOUD_SECRETKEY/TENCENTCLOUD_SESSIONTOKEN)"
        )
    token = settings.session_token.get_secret_value() if settings.session_token else None
    try:
        return credential.Credential(settings.secret_id, settings.secret_key.get_secret_value(), token)
    except TencentCloudSDKException as exc:
        # The SDK's message names the problem, never the secret itself.
        raise ConfigurationError(f"unusable credentials: {exc.message}") from exc


def make_profile(settings: Settings, service: str) -> ClientProfile:
    """The SDK client profile for one service: endpoint override, timeout, no breaker."""
    http = HttpProfile(
        protocol=settings.endpoint.protocol,
        endpoint=settings.endpoint.host_for(service),
        reqTimeout=settings.request_timeout,
    )
    # The region breaker stays off: with it on, a network failure surfaces as an
    # AttributeError on None (docs/sdk-traps.md).
    return ClientProfile(httpProfile=http, language="en-US", disable_region_breaker=True)


def make_sdk_client(settings: Settings, region: str) -> cbs_client.CbsClient:
    """Build the SDK's CbsClient for one region from settings."""
    return cbs_client.CbsClient(make_credential(settings), region, make_profile(settings, "cbs"))


def _tag_models(tags: Mapping[str, str]) -> list[Any]:
    """SDK Tag models for a request's Tags.N."""
    models = []
    for key, value in tags.items():
        tag = cbs_models.Tag()
        tag.Key, tag.Value = key, value
        models.append(tag)
    return models


def _tags(raw: Iterable[Any] | None) -> dict[str, str]:
    return {t.Key: t.Value for t in raw or () if t is not None and t.Key is not None}


def _snapshot_info(s: Any) -> SnapshotInfo:
    return SnapshotInfo(
        snapshot_id=s.SnapshotId,
        disk_id=s.DiskId,
        state=s.SnapshotState or "",
        percent=int(s.Percent or 0),
        name=s.SnapshotName or "",
        create_time=s.CreateTime or "",
        deadline_time=s.DeadlineTime or None,
        image_count=int(s.ImageCount or 0),
        tags=_tags(s.Tags),
        share_count=int(getattr(s, "ShareReference", 0) or 0),
        shared_in=getattr(s, "SnapshotType", None) == "SHARED_SNAPSHOT",
        is_permanent=s.IsPermanent is not False,
        copy_from_remote=bool(s.CopyFromRemote),
        copying_to=tuple(s.CopyingToRegions or ()),
    )


def _disk_info(d: Any) -> DiskInfo:
    return DiskInfo(
        disk_id=d.DiskId,
        snapshot_ability=bool(d.SnapshotAbility),
        state=d.DiskState or "",
        instance_id=d.InstanceId or None,
        zone=d.Placement.Zone if d.Placement is not None else None,
        snapshot_count=int(d.SnapshotCount or 0),
        tags=_tags(d.Tags),
        encrypted=bool(d.Encrypt),
        shareable=bool(d.Shareable),
        delete_with_disk=bool(d.DeleteSnapshot),
    )


class SignedApi:
    """Pacing, retries and exception translation around one SDK client.

    Parameters
    ----------
    sdk:
        An SDK client (``CbsClient``, ``TdmqClient``) whose action methods take a request model.
    region:
        The region the client signs for; echoed in results.
    rate_limiter:
        Grants each call its start time (see :mod:`cbsnap.pacing`).
    policy, sleep, rng:
        Retry behaviour; tests inject a recording ``sleep`` and a seeded ``rng``.
    """

    def __init__(
        self,
        sdk: Any,
        *,
        region: str,
        rate_limiter: RateLimiter,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._sdk = bound_to_deadline(sdk)
        self.region = region
        self._limiter = rate_limiter
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()

    # -- the retry loop ------------------------------------------------------------

    def _call(
        self,
        action: str,
        request: Any,
        deadline: Deadline,
        *,
        retry_ambiguous: bool = True,
        before_send: Callable[[], None] | None = None,
    ) -> Any:
        """Call ``action`` until it succeeds, fails for good, or time runs out.

        ``before_send`` runs once the pacer has granted an attempt, right before it
        is sent: the last moment to check a precondition (it may raise to abort).
        """
        method: Callable[[Any], Any] = getattr(self._sdk, action)
        throttles = transients = 0
        last: tuple[CloudError, BaseException] | None = None
        while True:
            if not self._limiter.acquire(f"{self.region}/{action}", deadline):
                if last is not None:  # the real reason beats "out of time"
                    raise last[0] from last[1]
                raise DeadlineReached(action)
            if before_send is not None:
                before_send()
            if deadline.remaining() <= MIN_CALL_SECONDS:
                if last is not None:
                    raise last[0] from last[1]
                raise DeadlineReached(action)
            _call_budget.seconds = deadline.remaining()
            try:
                response = method(request)
            except TencentCloudSDKException as exc:
                error = CloudError(action, str(exc.code or "Unknown"), str(exc.message or ""), exc.requestId)
                last = (error, exc)
                record_call(action, throttled=error.is_throttle)  # every attempt sent counts (metrics)
            else:
                record_call(action)
                return response
            finally:
                _call_budget.seconds = None
            if error.is_throttle:
                throttles += 1
                wait = self._policy.delay(throttles, self._rng, throttle=True)
            elif error.is_transient and (retry_ambiguous or not error.is_ambiguous):
                transients += 1
                if transients >= self._policy.transient_attempts:
                    gave_up = CloudError(
                        action,
                        error.code,
                        f"{error.message} (gave up after {transients} attempts)",
                        error.request_id,
                    )
                    raise gave_up from last[1]
                wait = self._policy.delay(transients, self._rng)
            else:
                raise error from last[1]
            if wait >= deadline.remaining():
                raise error from last[1]
            self._sleep(wait)


class SignedCbsApi(SignedApi):
    """The SDK implementation of :class:`~cbsnap.cbs.CbsApi`: typed CBS calls for one region
    (see :class:`SignedApi` for the parameters)."""

    def describe_disks(self, disk_ids: Sequence[str], deadline: Deadline) -> dict[str, DiskInfo]:
        """Look up disks by ID, 100 per call; unknown IDs are simply absent."""
        found: dict[str, DiskInfo] = {}
        for start in range(0, len(disk_ids), DESCRIBE_DISKS_MAX_IDS):
            chunk = list(disk_ids[start : start + DESCRIBE_DISKS_MAX_IDS])
            req = cbs_models.DescribeDisksRequest()
            req.DiskIds = chunk
            req.Limit = PAGE_LIMIT
            resp = self._call("DescribeDisks", req, deadline)
            for disk in resp.DiskSet or ():
                info = _disk_info(disk)
                found[info.disk_id] = info
        return found

    def find_disks(self, filters: Mapping[str, Sequence[str]], deadline: Deadline) -> list[DiskInfo]:
        """Every disk matching ``filters`` (names as DescribeDisks documents them, e.g.
        ``tag:backup`` or ``instance-id``), 100 a page, up to ``MAX_PAGES`` pages."""
        found: list[DiskInfo] = []
        for page in range(MAX_PAGES):
            req = cbs_models.DescribeDisksRequest()
            req.Filters = []
            for name, values in filters.items():
                flt = cbs_models.Filter()
                flt.Name, flt.Values = name, list(values)
                req.Filters.append(flt)
            req.Limit = PAGE_LIMIT
            req.Offset = page * PAGE_LIMIT
            resp = self._call("DescribeDisks", req, deadline)
            batch = [_disk_info(d) for d in resp.DiskSet or ()]
            found.extend(batch)
            if len(batch) < PAGE_LIMIT or len(found) >= int(resp.TotalCount or 0):
                return found
        raise CloudError(
            "DescribeDisks", "LimitExceeded.Paging", f"more than {MAX_PAGES * PAGE_LIMIT} disks matched"
        )

    def describe_snapshots(
        self,
        deadline: Deadline,
        *,
        disk_ids: Sequence[str] = (),
        snapshot_ids: Sequence[str] = (),
        states: Sequence[str] = (),
        names: Sequence[str] = (),
        offset: int = 0,
        limit: int = PAGE_LIMIT,
        newest_first: bool = True,
    ) -> tuple[int, list[SnapshotInfo]]:
        """One page of snapshots, by snapshot IDs, by up to 10 disk IDs or by ``names``
        (optionally in ``states``).

        Returns ``(TotalCount, page)``.
        """
        req = cbs_models.DescribeSnapshotsRequest()
        if snapshot_ids:
            req.SnapshotIds = list(snapshot_ids)
        if disk_ids:
            if len(disk_ids) > DESCRIBE_SNAPSHOTS_MAX_DISKS:
                raise ValueError("the disk-id filter takes at most 10 values")
            flt = cbs_models.Filter()
            flt.Name = "disk-id"
            flt.Values = list(disk_ids)
            req.Filters = [flt]
        if states:
            state_filter = cbs_models.Filter()
            state_filter.Name = "snapshot-state"
            state_filter.Values = list(states)
            req.Filters = [*(req.Filters or []), state_filter]
        if names:
            name_filter = cbs_models.Filter()
            name_filter.Name = "snapshot-name"
            name_filter.Values = list(names)
            req.Filters = [*(req.Filters or []), name_filter]
        req.Offset = offset
        req.Limit = limit
        req.OrderField = "CREATE_TIME"
        req.Order = "DESC" if newest_first else "ASC"
        resp = self._call("DescribeSnapshots", req, deadline)
        return int(resp.TotalCount or 0), [_snapshot_info(s) for s in resp.SnapshotSet or ()]

    def create_snapshot(
        self,
        disk_id: str,
        name: str,
        deadline: Deadline,
        *,
        tags: Mapping[str, str] | None = None,
        expires_at: str | None = None,
        before_send: Callable[[], None] | None = None,
    ) -> CreatedSnapshot:
        """CreateSnapshot with everything in the one call (tags, ``Deadline``).

        Tagging after creation leaves untagged orphans when the second call
        fails, so the tags travel with the create. Throttles and busy disks are
        retried here; an ambiguous failure is raised (see the module docstring).
        A reply without a SnapshotId is an error, not a success.
        """
        req = cbs_models.CreateSnapshotRequest()
        req.DiskId = disk_id
        req.SnapshotName = name
        if expires_at is not None:
            req.Deadline = expires_at
        if tags:
            req.Tags = _tag_models(tags)
        resp = self._call("CreateSnapshot", req, deadline, retry_ambiguous=False, before_send=before_send)
        if not resp.SnapshotId:
            raise CloudError(
                "CreateSnapshot",
                "InternalError.NoSnapshotId",
                "the reply carried no SnapshotId",
                resp.RequestId,
            )
        return CreatedSnapshot(snapshot_id=resp.SnapshotId, request_id=resp.RequestId)

    def create_snapshot_group(
        self, disk_ids: Sequence[str], name: str, deadline: Deadline, *, tags: Mapping[str, str]
    ) -> CreatedSnapshot:
        """CreateSnapshotGroup: one crash-consistent snapshot of several disks of one
        instance, tags in the same call. Returns the group ID (as ``snapshot_id``)."""
        req = cbs_models.CreateSnapshotGroupRequest()
        req.DiskIds = list(disk_ids)
        req.SnapshotGroupName = name
        req.Tags = _tag_models(tags)
        resp = self._call("CreateSnapshotGroup", req, deadline, retry_ambiguous=False)
        if not resp.SnapshotGroupId:
            raise CloudError(
                "CreateSnapshotGroup",
                "InternalError.NoSnapshotGroupId",
                "the reply carried no SnapshotGroupId",
                resp.RequestId,
            )
        return CreatedSnapshot(snapshot_id=resp.SnapshotGroupId, request_id=resp.RequestId)

    def snapshot_group_of(self, snapshot_id: str, deadline: Deadline) -> tuple[str, list[str]] | None:
        """The group holding ``snapshot_id``: ``(group ID, member snapshot IDs)``, or None."""
        return self._one_group("snapshot-id", snapshot_id, deadline)

    def snapshot_group_members(self, group_id: str, deadline: Deadline) -> list[str]:
        """The member snapshot IDs of a snapshot group."""
        found = self._one_group("snapshot-group-id", group_id, deadline)
        return found[1] if found else []

    def _one_group(self, filter_name: str, value: str, deadline: Deadline) -> tuple[str, list[str]] | None:
        req = cbs_models.DescribeSnapshotGroupsRequest()
        flt = cbs_models.Filter()
        flt.Name, flt.Values = filter_name, [value]
        req.Filters = [flt]
        resp = self._call("DescribeSnapshotGroups", req, deadline)
        for group in resp.SnapshotGroupSet or ():
            return str(group.SnapshotGroupId), list(group.SnapshotIdSet or [])
        return None

    def delete_snapshots(self, snapshot_ids: Sequence[str], deadline: Deadline) -> str | None:
        """DeleteSnapshots (all-or-nothing on the cloud side); returns the RequestId."""
        req = cbs_models.DeleteSnapshotsRequest()
        req.SnapshotIds = list(snapshot_ids)
        resp = self._call("DeleteSnapshots", req, deadline)
        return str(resp.RequestId) if resp.RequestId else None

    def copy_snapshot(self, snapshot_id: str, destination: str, name: str, deadline: Deadline) -> CopyStarted:
        """CopySnapshotCrossRegions to one region. It takes no client token, so an ambiguous
        failure is raised rather than retried here: the caller looks for the copy by name
        first (cbsnap.copies). A ``SnapshotCopyResult`` whose ``Code`` is not ``Success``
        becomes a CloudError with that code and message."""
        req = cbs_models.CopySnapshotCrossRegionsRequest()
        req.SnapshotId = snapshot_id
        req.DestinationRegions = [destination]
        req.SnapshotName = name
        resp = self._call("CopySnapshotCrossRegions", req, deadline, retry_ambiguous=False)
        for result in resp.SnapshotCopyResultSet or ():
            if result.DestinationRegion != destination:
                continue
            if (result.Code or "Success") != "Success" or not result.SnapshotId:
                raise CloudError(
                    "CopySnapshotCrossRegions",
                    str(result.Code or "InternalError.NoSnapshotId"),
                    str(result.Message or "the copy result carried no SnapshotId"),
                    resp.RequestId,
                )
            return CopyStarted(snapshot_id=str(result.SnapshotId), request_id=resp.RequestId)
        raise CloudError(
            "CopySnapshotCrossRegions",
            "InternalError.NoCopyResult",
            f"the reply carried no result for {destination}",
            resp.RequestId,
        )

    def set_snapshot_deadline(self, snapshot_id: str, expires_at: str, deadline: Deadline) -> str | None:
        """ModifySnapshotAttribute with ``IsPermanent=False`` and ``Deadline``: the API takes the
        Deadline only when IsPermanent is false ("该参数仅在参数IsPermanent为False时生效").
        Setting the same Deadline twice changes nothing, so it is retried like a read."""
        req = cbs_models.ModifySnapshotAttributeRequest()
        req.SnapshotId = snapshot_id
        req.IsPermanent = False
        req.Deadline = expires_at
        resp = self._call("ModifySnapshotAttribute", req, deadline)
        return str(resp.RequestId) if resp.RequestId else None
