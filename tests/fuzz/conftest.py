"""The fuzz tests' long-lived emulator and runtime, and the hypothesis profiles.

Profiles (``HYPOTHESIS_PROFILE``, default ``ci``)::

    ci     the default: the whole fuzz module in about 15 s
    long   ~8 times the examples, for a run by hand:
           HYPOTHESIS_PROFILE=long python -m pytest tests/fuzz -q -p no:cacheprovider

Only the fuzz tests read the profile (:func:`fuzz_settings`); the rest of the suite's
hypothesis tests keep hypothesis' own defaults.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from pydantic import SecretStr

from cbsnap.runtime import set_runtime
from cbsnap_emulator import Emulator, load_seed
from tests.conftest import RuntimeHarness, emulator_settings

WEBHOOK_SECRET = "fuzz-webhook-secret-0123456789-0123456789"
PUSH_TOKEN = "fuzz-push-token-0123456789-0123456789"

_COMMON = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    "print_blob": True,
}
settings.register_profile("ci", max_examples=300, **_COMMON)
settings.register_profile("long", max_examples=2500, **_COMMON)
# Any other registered profile name works too (its max_examples is the budget).
PROFILE_SETTINGS = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def fuzz_settings(share: float) -> settings:
    """The profile's settings with ``share`` of its example budget (tests differ in cost)."""
    return settings(PROFILE_SETTINGS, max_examples=max(1, int(PROFILE_SETTINGS.max_examples * share)))


@pytest.fixture(scope="module")
def fuzz_emulator() -> Iterator[Emulator]:
    """One emulator for the whole module: the demo seed, instant snapshots, no rate limit,
    no practical quota (examples add up on the same disks)."""
    emu = Emulator(load_seed(None), creation_seconds=0.0, rate_limit=0, quota=1_000_000, rng_seed=4)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def fuzz_harness(fuzz_emulator: Emulator) -> RuntimeHarness:
    """The production runtime pointed at the module's emulator, with the webhook secret and
    the push token set."""
    return RuntimeHarness(
        emulator_settings(
            fuzz_emulator,
            rate_limit=0.0,
            webhook_secret=SecretStr(WEBHOOK_SECRET),
            push_token=SecretStr(PUSH_TOKEN),
        )
    )


@pytest.fixture
def installed(fuzz_harness: RuntimeHarness) -> Iterator[RuntimeHarness]:
    """Install the module's runtime for the handlers for one test (other modules install theirs)."""
    set_runtime(fuzz_harness.runtime)
    yield fuzz_harness
    set_runtime(None)
