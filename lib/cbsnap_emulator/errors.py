"""API error type and the default English messages of the codes the emulator returns."""

from __future__ import annotations

# Default messages, worded after Tencent's documented descriptions (cbs-error-codes.txt and the
# common error table). Actions usually pass a more specific message naming the offending value.
DEFAULT_MESSAGES: dict[str, str] = {
    "AuthFailure.InvalidAuthorization": "The Authorization header is malformed or missing.",
    "AuthFailure.SecretIdNotFound": "The SecretId does not exist.",
    "AuthFailure.SignatureExpire": "The signature has expired: the request timestamp is more than 5 minutes "
    "from the server time.",
    "AuthFailure.SignatureFailure": "The provided credentials could not be validated. "
    "Please check your signature is correct.",
    "AuthFailure.TokenFailure": "The session token is invalid.",
    "FailedOperation": "The operation failed.",
    "InsufficientSnapshotQuota": "Insufficient snapshot quota.",
    "InternalError": "An internal error occurred.",
    "InvalidAction": "The requested action does not exist.",
    "InvalidDisk.Busy": "The cloud disk is busy. Try again later.",
    "InvalidDisk.NotSupportSnapshot": "The cloud disk does not support snapshots.",
    "InvalidDisk.NotSupported": "The operation is not supported for the cloud disk.",
    "InvalidDisk.SnapshotCreating": "A snapshot is being created for the disk. Try again later.",
    "InvalidDiskId.NotFound": "The DiskId entered does not exist.",
    "InvalidFilter": "The specified filter is not supported.",
    "InvalidParameter": "Invalid parameter.",
    "InvalidParameterValue": "Invalid parameter value.",
    "InvalidSnapshot.NotSupported": "The snapshot does not support this operation.",
    "InvalidSnapshotId.NotFound": "The SnapshotId entered does not exist.",
    "MissingParameter": "A required parameter is missing.",
    "NoSuchProduct": "The requested product does not exist.",
    "NoSuchVersion": "The requested API version does not exist.",
    "RequestLimitExceeded": "The request rate limit was exceeded.",
    "RequestSizeLimitExceeded": "The request body is too large.",
    "ResourceInUse.DiskRollbacking": "The cloud disk is being rolled back. Try again later.",
    "ResourceNotFound": "The resource does not exist.",
    "ResourceUnavailable.SnapshotCreating": "The snapshot is still being created.",
    "UnknownParameter": "Unknown parameter.",
    "UnsupportedOperation.ShareDiskNotSupportSnap": "Shared cloud disks do not support snapshots.",
    "UnsupportedOperation.SnapshotGroupDiskAttachMultiInstance": "The disks of a snapshot group must be "
    "attached to the same instance.",
    "UnsupportedOperation.SnapshotHasBindedImage": "The snapshot has custom images bound to it; "
    "delete the images first.",
    "UnsupportedRegion": "The region is not supported.",
}


def default_message(code: str) -> str:
    """Return the default message for ``code`` (a generic one for codes without an entry)."""
    return DEFAULT_MESSAGES.get(code, f"The request failed with {code}.")


class ApiError(Exception):
    """An API-level error answered as ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``."""

    def __init__(self, code: str, message: str | None = None) -> None:
        self.code = code
        self.message = message if message is not None else default_message(code)
        super().__init__(f"{code}: {self.message}")
