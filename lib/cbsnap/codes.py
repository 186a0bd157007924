"""Seed result codes (the legacy CreateSnapshot v2 contract) and the one mapping
from API 3.0 error codes to them.

The seed page documents six business codes. Everything the seed does not cover
gets one of three fallback codes, borrowed from the v2 API's common error codes
so callers that already branch on v2 numbers keep working:

=====  ====================  ==========================================================
code   codeDesc              when
=====  ====================  ==========================================================
4100   AuthFailure           credentials, signature or CAM permission refused
4400   RequestLimitExceeded  still throttled when the invocation's deadline came
6000   InternalError         anything else: InternalError*, network errors, unknown codes,
                             disks left unattempted because the invocation ran out of time
=====  ====================  ==========================================================

cbsnap's own results that are not a cloud error use codes of the same style, in a range the
seed and the v2 API leave unused (161xx), so alarms can key on them:

=====  ==========================  ====================================================
code   codeDesc                    when
=====  ==========================  ====================================================
16101  Coverage.Stale              report: the newest usable snapshot is older than the RPO
16102  Coverage.NoUsableSnapshot   report: the disk has no usable (NORMAL) snapshot
16103  Coverage.SnapshotStuck      report: a snapshot has been CREATING longer than stuckHours
16110  Hooks.Failed                hooks with ``onFailure: "skip"``: the pre-script failed, timed
                                   out or could not run, so the disk was not snapshotted
=====  ==========================  ====================================================

None of them is transient: a report or a skipped disk never asks for a redelivery.
"""

from __future__ import annotations

from enum import IntEnum


class SeedCode(IntEnum):
    """Numeric result codes of the seed contract (plus the documented fallbacks)."""

    SUCCESS = 0
    INVALID_PARAMETER = 9003
    DISK_BUSY = 16005
    SNAPSHOT_QUOTA_EXCEEDED = 16006
    DISK_TYPE_INVALID = 16007
    SNAPSHOT_NOT_SUPPORTED = 16026
    CBS_CREATING_SNAPSHOT = 16027
    AUTH_FAILURE = 4100
    REQUEST_LIMIT_EXCEEDED = 4400
    INTERNAL_ERROR = 6000
    COVERAGE_STALE = 16101
    COVERAGE_NONE = 16102
    SNAPSHOT_STUCK = 16103
    HOOKS_FAILED = 16110

    @property
    def desc(self) -> str:
        """The English description the seed page gives for this code."""
        return _DESCRIPTIONS[self]

    @property
    def transient(self) -> bool:
        """True when the same call may well succeed later (busy, throttled, internal error):
        a disk that ends with such a code makes the trigger ask for a redelivery."""
        return self in TRANSIENT_CODES


TRANSIENT_CODES: frozenset[int] = frozenset(
    {
        SeedCode.DISK_BUSY,
        SeedCode.CBS_CREATING_SNAPSHOT,
        SeedCode.REQUEST_LIMIT_EXCEEDED,
        SeedCode.INTERNAL_ERROR,
    }
)


_DESCRIPTIONS: dict[SeedCode, str] = {
    SeedCode.SUCCESS: "Success",
    SeedCode.INVALID_PARAMETER: "InvalidParameter",
    SeedCode.DISK_BUSY: "IncorrectInstanceStatus.DiskBusy",
    SeedCode.SNAPSHOT_QUOTA_EXCEEDED: "SnapshotQuotaExceeded",
    SeedCode.DISK_TYPE_INVALID: "IncorrectInstanceStatus.DiskTypeInvalid",
    SeedCode.SNAPSHOT_NOT_SUPPORTED: "IncorrectInstanceStatus.SnapshotNotSupported",
    SeedCode.CBS_CREATING_SNAPSHOT: "IncorrectInstanceStatus.CbsCreatingSnapshot",
    SeedCode.AUTH_FAILURE: "AuthFailure",
    SeedCode.REQUEST_LIMIT_EXCEEDED: "RequestLimitExceeded",
    SeedCode.INTERNAL_ERROR: "InternalError",
    SeedCode.COVERAGE_STALE: "Coverage.Stale",
    SeedCode.COVERAGE_NONE: "Coverage.NoUsableSnapshot",
    SeedCode.SNAPSHOT_STUCK: "Coverage.SnapshotStuck",
    SeedCode.HOOKS_FAILED: "Hooks.Failed",
}

# Exact API 3.0 codes first; entries ending in "*" match by plain prefix (longest wins),
# so "InvalidParameter*" also covers InvalidParameterValue and its sub-codes.
_API_TO_SEED: dict[str, SeedCode] = {
    "InvalidParameter*": SeedCode.INVALID_PARAMETER,  # also covers InvalidParameterValue*
    "MissingParameter": SeedCode.INVALID_PARAMETER,
    "UnknownParameter": SeedCode.INVALID_PARAMETER,
    "InvalidFilter": SeedCode.INVALID_PARAMETER,
    "InvalidDiskId.NotFound": SeedCode.INVALID_PARAMETER,
    "InvalidDisk.Busy": SeedCode.DISK_BUSY,
    "ResourceBusy": SeedCode.DISK_BUSY,
    "ResourceInUse*": SeedCode.DISK_BUSY,
    "InsufficientSnapshotQuota": SeedCode.SNAPSHOT_QUOTA_EXCEEDED,
    "ResourceInsufficient.OverQuota": SeedCode.SNAPSHOT_QUOTA_EXCEEDED,
    "InvalidDisk.NotSupported": SeedCode.DISK_TYPE_INVALID,
    "InvalidDisk.TypeError": SeedCode.DISK_TYPE_INVALID,
    "ResourceUnavailable.NotSupported": SeedCode.DISK_TYPE_INVALID,
    "UnsupportedOperation.DiskEncrypt": SeedCode.DISK_TYPE_INVALID,
    "InvalidDisk.NotSupportSnapshot": SeedCode.SNAPSHOT_NOT_SUPPORTED,
    "ResourceUnavailable.NotSupportSnapshot": SeedCode.SNAPSHOT_NOT_SUPPORTED,
    "UnsupportedOperation.ShareDiskNotSupportSnap": SeedCode.SNAPSHOT_NOT_SUPPORTED,
    "InvalidDisk.SnapshotCreating": SeedCode.CBS_CREATING_SNAPSHOT,
    "ResourceUnavailable.SnapshotCreating": SeedCode.CBS_CREATING_SNAPSHOT,
    "ResourceUnavailable.TooManyCreatingSnapshot": SeedCode.CBS_CREATING_SNAPSHOT,
    "AuthFailure*": SeedCode.AUTH_FAILURE,
    "UnauthorizedOperation*": SeedCode.AUTH_FAILURE,
    "InvalidCredential": SeedCode.AUTH_FAILURE,
    "RequestLimitExceeded*": SeedCode.REQUEST_LIMIT_EXCEEDED,
    # Cross-region copies (docs/copies.md): CopySnapshotCrossRegions' codes as the Go SDK lists
    # them, ModifySnapshotAttribute's and the Tag API's. A copy's code is reported beside its
    # source's result and never replaces it. The entries that say INTERNAL_ERROR are the
    # documented fallback, written out so the table names every copy code.
    "ResourceInUse.CopySnapshotConflict": SeedCode.DISK_BUSY,  # a copy to that region still runs
    "UnsupportedOperation.SnapshotNotSupportCopy": SeedCode.SNAPSHOT_NOT_SUPPORTED,
    "InvalidSnapshot.NotSupported": SeedCode.INTERNAL_ERROR,  # not NORMAL (yet): cbsnap waits
    "InvalidAccount.InsufficientBalance": SeedCode.INTERNAL_ERROR,  # billing: no seed code fits
    "InternalError.ComponentError": SeedCode.INTERNAL_ERROR,
    "UnsupportedOperation.SnapHasShared": SeedCode.SNAPSHOT_NOT_SUPPORTED,  # no expiry on a shared one
    "UnsupportedOperation.SnapshotHasBindedImage": SeedCode.INTERNAL_ERROR,  # as the janitor reports it
    "LimitExceeded.ResourceAttachedTags": SeedCode.INVALID_PARAMETER,  # a copy with 50 tags already
}
_EXACT = {k: v for k, v in _API_TO_SEED.items() if not k.endswith("*")}
_PREFIXES = sorted(
    ((k[:-1], v) for k, v in _API_TO_SEED.items() if k.endswith("*")), key=lambda kv: -len(kv[0])
)


def seed_code_for(api_code: str) -> SeedCode:
    """Map an API 3.0 error code (or an SDK client-side code) to its seed code.

    Unknown codes fall back to :attr:`SeedCode.INTERNAL_ERROR`; this never raises.
    """
    exact = _EXACT.get(api_code)
    if exact is not None:
        return exact
    for prefix, code in _PREFIXES:
        if api_code.startswith(prefix):
            return code
    return SeedCode.INTERNAL_ERROR
