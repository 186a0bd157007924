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
        ("", "https", None),
        # a bare host:port on loopback is the emulator (or another local tool): plain http
        ("127.0.0.1:9000", "http", "127.0.0.1:9000"),
        (" 127.0.0.1:9000/ ", "http", "127.0.0.1:9000"),
        ("localhost:9000", "http", "localhost:9000"),
        ("127.0.0.2:9000", "http", "127.0.0.2:9000"),
        ("[::1]:9000", "http", "[::1]:9000"),
        ("::1", "http", "[::1]"),
        # anywhere else a bare host keeps https, and an explicit scheme always wins
        ("10.0.0.5:9000", "https", "10.0.0.5:9000"),
        ("cbs.internal.example:8443", "https", "cbs.internal.example:8443"),
        ("https://127.0.0.1:9443", "https", "127.0.0.1:9443"),
    ],
)
def test_endpoint_is_split_into_protocol_and_host(raw: str | None, protocol: str, host: str | None) -> None:
    e = Endpoint.parse(raw)
    assert (e.protocol, e.host) == (protocol, host)
    assert e.host is None or "://" not in e.host


def test_endpoint_service_placeholder() -> None:
    e = Endpoint.parse("https://{service}.ap-shanghai-fsi.tencentcloudapi.com")
    assert e.host_for("tdmq") == "tdmq.ap-shanghai-fsi.tencentcloudapi.com"


def test_bad_endpoint_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"CBSNAP_ENDPOINT.*http://127\.0\.0\.1:PORT"):
        Endpoint.parse("ftp://x")


def test_the_environment_variable_goes_through_the_same_rule() -> None:
    endpoint = Settings.from_env({"CBSNAP_ENDPOINT": "127.0.0.1:9000"}).endpoint
    assert (endpoint.protocol, endpoint.host_for("cbs")) == ("http", "127.0.0.1:9000")


def test_numeric_settings_are_validated() -> None:
    assert Settings.from_env({"CBSNAP_RATE_LIMIT": "0"}).rate_limit == 0
    with pytest.raises(ValidationError):
        Settings.from_env({"CBSNAP_RATE_LIMIT": "-1"})
    with pytest.raises(ValidationError):
        Settings.from_env({"CBSNAP_CONCURRENCY": "lots"})


def test_default_request_is_json() -> None:
    s = Settings.from_env({"CBSNAP_DEFAULT_REQUEST": '{"disks": ["disk-aaaaaaa1"]}'})
    assert s.default_request == {"disks": ["disk-aaaaaaa1"]}
