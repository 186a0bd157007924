"""Settings from the environment."""

import pytest
from pydantic import ValidationError

from cbsnap.settings import Endpoint, Settings


def test_scf_credential_names_are_read() -> None:
    s = Settings.from_env(
        {
            "TENCENTCLOUD_SECRETID": "AKIDscf",
            "TENCENTCLOUD_SECRETKEY": "scf-key",
            "TENCENTCLOUD_SESSIONTOKEN": "scf-token",
            "TENCENTCLOUD_REGION": "ap-shanghai",
        }
    )
    assert s.secret_id == "AKIDscf"
    assert s.secret_key.get_secret_value() == "scf-key"
    assert s.session_token is not None and s.session_token.get_secret_value() == "scf-token"
    assert s.region == "ap-shanghai"


def test_sdk_credential_names_are_accepted_too() -> None:
    s = Settings.from_env({"TENCENTCLOUD_SECRET_ID": "AKIDsdk", "TENCENTCLOUD_SECRET_KEY": "sdk-key"})
    assert (s.secret_id, s.secret_key.get_secret_value(), s.session_token) == ("AKIDsdk", "sdk-key", None)


def test_secrets_never_show_in_repr() -> None:
    s = Settings.from_env(
        {
            "TENCENTCLOUD_SECRETID": "AKIDx",
            "TENCENTCLOUD_SECRETKEY": "very-secret-key",
            "TENCENTCLOUD_SESSIONTOKEN": "very-secret-token",
        }
    )
    assert "very-secret" not in repr(s) and "very-secret" not in str(s.model_dump())
    assert set(s.secrets()) == {"very-secret-key", "very-secret-token"}


@pytest.mark.parametrize(
    ("raw", "protocol", "host"),
    [
        ("http://127.0.0.1:9000", "http", "127.0.0.1:9000"),
        (
            "https://cbs.ap-shanghai-fsi.tencentcloudapi.com/",
            "https",
            "cbs.ap-shanghai-fsi.tencentcloudapi.com",
        ),
        ("cbs.tencentcloudapi.com", "https", "cbs.tencentcloudapi.com"),
        (None, "https", None),
    ],
)
def test_endpoint_is_split_into_protocol_and_host(raw: str | None, protocol: str, host: str | None) -> None:
    e = Endpoint.parse(raw)
    assert (e.protocol, e.host) == (protocol, host)
    assert e.host is None or "://" not in e.host


def test_endpoint_service_placeholder() -> None:
    e = Endpoint.parse("https://{service}.ap-shanghai-fsi.tencentcloudapi.com")
    assert e.host_for("tdmq") == "tdmq.ap-shanghai-fsi.tencentcloudapi.com"


def test_bad_endpoint_is_refused() -> None:
    with pytest.raises(ValueError, match="CBSNAP_ENDPOINT"):
        Endpoint.parse("ftp://x")


def test_numeric_settings_are_validated() -> None:
    assert Settings.from_env({"CBSNAP_RATE_LIMIT": "0"}).rate_limit == 0
    with pytest.raises(ValidationError):
        Settings.from_env({"CBSNAP_RATE_LIMIT": "-1"})
    with pytest.raises(ValidationError):
        Settings.from_env({"CBSNAP_CONCURRENCY": "lots"})


def test_default_request_is_json() -> None:
    s = Settings.from_env({"CBSNAP_DEFAULT_REQUEST": '{"disks": ["disk-aaaaaaa1"]}'})
    assert s.default_request == {"disks": ["disk-aaaaaaa1"]}
