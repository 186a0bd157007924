"""Where a command's API calls go: an embedded emulator, or ``CBSNAP_ENDPOINT``/the cloud.

Configuration mistakes become :class:`~cbsnap_cli.errors.UsageError` (exit 2) before any handler
runs, so a bad ``CBSNAP_ENDPOINT`` or missing credentials say so once instead of showing up as a
code-6000 result per disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cbsnap_cli.endpoint_check import check_endpoint
from cbsnap_cli.errors import UsageError

if TYPE_CHECKING:
    from cbsnap.settings import Settings
    from cbsnap_emulator import Emulator

EMULATOR_FIX = "or add --emulator to run against an embedded emulator"


def settings_from_env() -> Settings:
    """``Settings.from_env()``, with a bad variable reported by name."""
    from pydantic import ValidationError

    from cbsnap.settings import Settings

    try:
        return Settings.from_env()
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"CBSNAP_DEFAULT_REQUEST is not valid JSON: {exc.msg} at column {exc.colno}",
            'set it to a request document, e.g. \'{"disks": ["disk-g73hhs4o"]}\'',
        ) from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            problems.append(f"CBSNAP_{field.upper()}: {error['msg']}")
        raise UsageError(
            "bad configuration: " + "; ".join(problems), "fix or unset the variable (README, Configuration)"
        ) from None
    except ValueError as exc:  # Endpoint.parse names CBSNAP_ENDPOINT and the expected form
        raise UsageError(str(exc)) from None


def emulator_settings(emulator: Emulator, base: Settings, **overrides: Any) -> Settings:
    """``base`` pointed at ``emulator``, with the emulator's credentials."""
    from pydantic import SecretStr

    from cbsnap.settings import Endpoint
    from cbsnap_emulator import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY

    values: dict[str, Any] = {
        "secret_id": DEFAULT_SECRET_ID,
        "secret_key": SecretStr(DEFAULT_SECRET_KEY),
        "session_token": None,
        "endpoint": Endpoint(protocol="http", host=emulator.endpoint),
        **overrides,
    }
    return base.model_copy(update=values)


def cloud_settings(fix: str | None = EMULATOR_FIX, **overrides: Any) -> Settings:
    """Settings from the environment for real API calls: credentials present, endpoint answering.

    ``fix`` is the command's own alternative, appended to each error's fix ("or add --emulator").
    """
    settings = settings_from_env()
    if not settings.secret_id or not settings.secret_key.get_secret_value():
        raise UsageError(
            "no API credentials: TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY are not set",
            "export them (for the emulator: the values `cbsnap emulator` prints)"
            + (f", {fix}" if fix else ""),
        )
    check_endpoint(settings.endpoint.protocol, settings.endpoint.host_for("cbs"), fix)
    return settings.model_copy(update=overrides) if overrides else settings


@contextmanager
def api_settings(
    use_emulator: bool,
    seed: str | None = None,
    *,
    creation_seconds: float | None = None,
    **overrides: Any,
) -> Iterator[Settings]:
    """Settings for one command: an embedded emulator (stopped on exit) or the environment's API."""
    if not use_emulator:
        if seed is not None:
            raise UsageError("--seed only applies with --emulator", "add --emulator, or drop --seed")
        yield cloud_settings(**overrides)
        return
    base = settings_from_env()
    with started_emulator(seed, creation_seconds=creation_seconds) as emulator:
        yield emulator_settings(emulator, base, **overrides)


@contextmanager
def started_emulator(seed: str | None, *, creation_seconds: float | None = None) -> Iterator[Emulator]:
    """An embedded emulator on a free loopback port, seeded from ``seed`` (default: the demo seed)."""
    from cbsnap_emulator import Emulator, load_seed

    try:
        data = load_seed(seed)
    except FileNotFoundError:
        raise UsageError(f"the seed file {seed} does not exist", "see docs/emulator.md, Seeds") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"the seed file {seed} is not valid JSON: {exc}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"bad seed file {seed}: {exc}", "see docs/emulator.md, Seeds") from None
    try:
        emulator = Emulator(data, creation_seconds=creation_seconds)
        emulator.start()
    except ValueError as exc:
        raise UsageError(f"bad seed file {seed}: {exc}", "see docs/emulator.md, Seeds") from None
    try:
        yield emulator
    finally:
        emulator.stop()
