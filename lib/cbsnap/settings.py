"""Settings from the environment, read once per process.

SCF injects the execution role's temporary credentials as
``TENCENTCLOUD_SECRETID``/``TENCENTCLOUD_SECRETKEY``/``TENCENTCLOUD_SESSIONTOKEN``,
which the SDK's own environment provider does not read; the SDK's names
(``TENCENTCLOUD_SECRET_ID``/``TENCENTCLOUD_SECRET_KEY``) are accepted too.
Everything cbsnap-specific is ``CBSNAP_*``.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

DEFAULT_REGION = "ap-guangzhou"
# The shortest webhook secret and push token accepted: SHA-256's output length (RFC 2104 §3
# discourages shorter HMAC keys). Kept in step with cbsnap.webauth.MIN_SECRET_BYTES, which
# this module does not import: settings load on every cold start, the webhook's code does not.
MIN_SECRET_BYTES = 32


_LOOPBACK_NAMES = ("localhost", "localhost.")


def _is_loopback(host: str) -> bool:
    """Whether a bare ``host[:port]`` names this machine (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:  # e.g. an unbalanced "[": not ours to judge here, the SDK will refuse it
        return False
    if name.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Endpoint(BaseModel):
    """Where API calls go: HttpProfile wants the scheme and the host apart."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    protocol: str = "https"
    host: str | None = None  # None: the SDK's default <service>.tencentcloudapi.com

    @classmethod
    def parse(cls, value: str | None) -> Endpoint:
        """Split ``http://127.0.0.1:9000`` into protocol and ``host:port``.

        A bare ``host[:port]`` means https, except on loopback (``127.0.0.1``, ``localhost``,
        ``::1``): nothing there is Tencent Cloud, and what a developer runs there (the emulator)
        speaks plain http; sending it TLS only fails with an SSL error. Write ``https://`` for a
        TLS endpoint on loopback. ``{service}`` in the host is replaced by the API's service name
        (``cbs``, ``tdmq``), for region-specific endpoints.
        """
        if not value or not value.strip():
            return cls()
        value = value.strip()
        if "://" not in value:
            host = value.strip("/")
            if ":" in host and not host.startswith("["):
                with contextlib.suppress(ValueError):  # a bare IPv6 address needs brackets
                    host = f"[{ipaddress.IPv6Address(host)}]"
            return cls(protocol="http" if _is_loopback(host) else "https", host=host)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"CBSNAP_ENDPOINT must look like https://host[:port] (or http://127.0.0.1:PORT for "
                f"the emulator), got {value!r}"
            )
        return cls(protocol=parts.scheme, host=parts.netloc)

    def host_for(self, service: str) -> str | None:
        """The endpoint host for one service, or None for the SDK default."""
        return self.host.replace("{service}", service) if self.host else None


class Settings(BaseModel):
    """Process-wide configuration (see the README's configuration table)."""

    # extra="forbid": a setting that was renamed or removed must not be accepted and ignored.
    model_config = ConfigDict(frozen=True, defer_build=True, extra="forbid")

    secret_id: str = ""
    secret_key: SecretStr = SecretStr("")
    session_token: SecretStr | None = None
    region: str = DEFAULT_REGION
    endpoint: Endpoint = Field(default_factory=Endpoint)
    request_timeout: float = Field(default=10.0, gt=0)
    rate_limit: float = Field(default=20.0, ge=0)  # requests/s per action; 0 turns pacing off
    concurrency: int = Field(default=8, ge=1, le=64)
    safety_margin_ms: int = Field(default=3000, ge=0)
    default_request: dict[str, Any] | None = None
    service_name: str = "cbsnap"
    log_level: str = "INFO"
    # webhook (API Gateway) authentication
    webhook_secret: SecretStr | None = None
    webhook_auth: str = Field(default="hmac", pattern="^(hmac|gateway)$")
    webhook_max_body: int = Field(default=256 * 1024, ge=1024)
    # CMQ topic pushes to the function URL (cbsnap.push): the token their endpoint carries
    push_token: SecretStr | None = None
    # at-least-once safety
    redis_url: SecretStr | None = None  # may carry a password: treated as a secret
    retry_horizon_hours: float = Field(default=24.0, gt=0)
    # default expiry (days) of snapshots per trigger when a request sets none; 0 = keep
    retain_days_timer: int = Field(default=0, ge=0, le=3650)
    retain_days_queue: int = Field(default=0, ge=0, le=3650)
    retain_days_webhook: int = Field(default=3, ge=0, le=3650)
    # fan-out of large requests by asynchronous self-invocation (cbsnap.fanout, cbsnap.selfinvoke);
    # None: the function serving the invocation (from the SCF context)
    fanout_function: str | None = Field(
        default=None,
        pattern=r"^(?:[A-Za-z0-9_-]{1,30}/)?[A-Za-z][A-Za-z0-9_-]{0,59}(?::[$A-Za-z0-9_.-]{1,64})?$",
    )
    fanout_threshold: int = Field(default=200, ge=1)
    fanout_chunk: int = Field(default=200, ge=1, le=1000)
    # result sinks besides the log (CMQ queue / topic names)
    result_queue: str | None = None
    result_topic: str | None = None
    # completion events (cbsnap.notify): a chain of re-check links, each an asynchronous self-invocation
    notify_poll: float = Field(default=5.0, gt=0, le=300)  # seconds between looks within a link
    notify_max_wait: int = Field(default=86_400, ge=1, le=7 * 86_400)  # then snapshot.timeout

    @field_validator("webhook_secret", "push_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """Refuse a short secret at start-up, when it is set: a guessable key protects nothing.

        The message names the variable and the length, never the value.
        """
        if value is None:
            return None
        size = len(value.get_secret_value().encode("utf-8", "surrogatepass"))
        if size < MIN_SECRET_BYTES:
            variable = {"webhook_secret": "CBSNAP_WEBHOOK_SECRET", "push_token": "CBSNAP_PUSH_TOKEN"}
            name = variable.get(info.field_name or "", info.field_name)
            raise ValueError(
                f"{name} must be at least {MIN_SECRET_BYTES} bytes, got {size}; "
                "generate one with `openssl rand -hex 32`"
            )
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from an environment mapping (``os.environ`` by default)."""
        env = os.environ if env is None else env

        def first(*names: str) -> str | None:
            for name in names:
                if env.get(name):
                    return env[name]
            return None

        token = first("TENCENTCLOUD_SESSIONTOKEN", "TENCENTCLOUD_SESSION_TOKEN")
        webhook_secret = first("CBSNAP_WEBHOOK_SECRET")
        push_token = first("CBSNAP_PUSH_TOKEN")
        redis_url = first("CBSNAP_REDIS_URL")
        default_request = first("CBSNAP_DEFAULT_REQUEST")
        values: dict[str, Any] = {
            "secret_id": (first("TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRET_ID") or "").strip(),
            "secret_key": SecretStr(
                (first("TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SECRET_KEY") or "").strip()
            ),
            "session_token": SecretStr(token) if token else None,
            "region": first("CBSNAP_REGION", "TENCENTCLOUD_REGION") or DEFAULT_REGION,
            "endpoint": Endpoint.parse(first("CBSNAP_ENDPOINT")),
            "default_request": json.loads(default_request) if default_request else None,
            "service_name": first("POWERTOOLS_SERVICE_NAME") or "cbsnap",
            "log_level": first("POWERTOOLS_LOG_LEVEL", "LOG_LEVEL") or "INFO",
            "webhook_secret": SecretStr(webhook_secret) if webhook_secret else None,
            "webhook_auth": first("CBSNAP_WEBHOOK_AUTH") or "hmac",
            "push_token": SecretStr(push_token) if push_token else None,
            "redis_url": SecretStr(redis_url) if redis_url else None,
            "fanout_function": first("CBSNAP_FANOUT_FUNCTION"),
            "result_queue": first("CBSNAP_RESULT_QUEUE"),
            "result_topic": first("CBSNAP_RESULT_TOPIC"),
        }
        numeric = {
            "request_timeout": "CBSNAP_REQUEST_TIMEOUT",
            "rate_limit": "CBSNAP_RATE_LIMIT",
            "concurrency": "CBSNAP_CONCURRENCY",
            "safety_margin_ms": "CBSNAP_SAFETY_MARGIN_MS",
            "webhook_max_body": "CBSNAP_WEBHOOK_MAX_BODY",
            "retry_horizon_hours": "CBSNAP_RETRY_HORIZON_HOURS",
            "fanout_threshold": "CBSNAP_FANOUT_THRESHOLD",
            "retain_days_timer": "CBSNAP_RETAIN_DAYS_TIMER",
            "retain_days_queue": "CBSNAP_RETAIN_DAYS_QUEUE",
            "retain_days_webhook": "CBSNAP_RETAIN_DAYS_WEBHOOK",
            "fanout_chunk": "CBSNAP_FANOUT_CHUNK",
            "notify_poll": "CBSNAP_NOTIFY_POLL",
            "notify_max_wait": "CBSNAP_NOTIFY_MAX_WAIT",
        }
        for field_name, env_name in numeric.items():
            raw = first(env_name)
            if raw is not None:
                values[field_name] = raw
        return cls.model_validate(values)

    def default_retain_days(self, trigger: str) -> int:
        """The configured expiry (days, 0 = none) for requests arriving by ``trigger``."""
        if trigger == "timer":
            return self.retain_days_timer
        if trigger == "webhook":
            return self.retain_days_webhook
        return self.retain_days_queue  # cmq, ckafka, tdmq

    def secrets(self) -> tuple[str, ...]:
        """Every secret value this process holds, for log redaction."""
        found = [self.secret_key.get_secret_value()]
        if self.session_token is not None:
            found.append(self.session_token.get_secret_value())
        if self.webhook_secret is not None:
            found.append(self.webhook_secret.get_secret_value())
        if self.push_token is not None:
            found.append(self.push_token.get_secret_value())
        if self.redis_url is not None:
            password = urlsplit(self.redis_url.get_secret_value()).password
            if password:
                found.append(password)
        return tuple(s for s in found if s)


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from ``os.environ`` on first use (SCF: once per container)."""
    return Settings.from_env()
