"""The one mapping from API 3.0 error codes to the seed's numeric codes."""

import pytest

from cbsnap.codes import SeedCode, seed_code_for

# Every row of the table, plus the documented fallbacks.
TABLE = {
    9003: [
        "InvalidParameter",
        "InvalidParameter.ProjectIdNotExist",
        "InvalidParameterValue",
        "InvalidParameterValue.LimitExceeded",
        "MissingParameter",
        "InvalidDiskId.NotFound",
    ],
    16005: [
        "InvalidDisk.Busy",
        "ResourceBusy",
        "ResourceInUse",
        "ResourceInUse.DiskMigrating",
        "ResourceInUse.DiskRollbacking",
    ],
    16006: ["InsufficientSnapshotQuota", "ResourceInsufficient.OverQuota"],
    16007: [
        "InvalidDisk.NotSupported",
        "InvalidDisk.TypeError",
        "ResourceUnavailable.NotSupported",
        "UnsupportedOperation.DiskEncrypt",
    ],
    16026: [
        "InvalidDisk.NotSupportSnapshot",
        "ResourceUnavailable.NotSupportSnapshot",
        "UnsupportedOperation.ShareDiskNotSupportSnap",
    ],
    16027: [
        "InvalidDisk.SnapshotCreating",
        "ResourceUnavailable.SnapshotCreating",
        "ResourceUnavailable.TooManyCreatingSnapshot",
    ],
    4100: [
        "AuthFailure.SignatureFailure",
        "AuthFailure.SecretIdNotFound",
        "UnauthorizedOperation",
        "InvalidCredential",
    ],
    4400: ["RequestLimitExceeded", "RequestLimitExceeded.UinLimitExceeded"],
    6000: [
        "InternalError",
        "InternalError.ResourceOpFailed",
        "ClientNetworkError",
        "ServerNetworkError",
        "SomethingNobodyDocumented",
        "",
        "ResourceInsufficient",
    ],
}


@pytest.mark.parametrize(
    ("api_code", "seed"), [(code, seed) for seed, codes in TABLE.items() for code in codes]
)
def test_api_codes_map_to_seed_codes(api_code: str, seed: int) -> None:
    assert seed_code_for(api_code) == seed


def test_descriptions_are_the_seed_pages_english_text() -> None:
    assert SeedCode(9003).desc == "InvalidParameter"
    assert SeedCode(16005).desc == "IncorrectInstanceStatus.DiskBusy"
    assert SeedCode(16006).desc == "SnapshotQuotaExceeded"
    assert SeedCode(16007).desc == "IncorrectInstanceStatus.DiskTypeInvalid"
    assert SeedCode(16026).desc == "IncorrectInstanceStatus.SnapshotNotSupported"
    assert SeedCode(16027).desc == "IncorrectInstanceStatus.CbsCreatingSnapshot"
    assert SeedCode(0).desc == "Success"


def test_no_code_maps_to_success() -> None:
    codes = [c for cs in TABLE.values() for c in cs]
    assert all(seed_code_for(c) != SeedCode.SUCCESS for c in codes)
