"""Ordinary mistakes: each is exit 2 and one line on stderr saying what is wrong and how to fix it,
never a traceback.

The mistakes the issue names run ``cbsnap`` as a subprocess, as a user would; the other checks call
``main()`` in this process (same code path, a fraction of the start-up cost).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from cbsnap_cli.main import main
from cbsnap_emulator import Emulator
from tests.functional.test_cli import CLEARED, emulator_env, run_cli

EMU_CREDENTIALS = {
    "TENCENTCLOUD_SECRETID": "AKIDcbsnapEMULATOR00000000000000000000",
    "TENCENTCLOUD_SECRETKEY": "cbsnapEmulatorSecretKey0000000000000",
}
Case = Callable[[str], tuple[tuple[str, ...], dict[str, str], tuple[str, ...]]]


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def check_message(returncode: int | str | None, stderr: str, expected: tuple[str, ...]) -> str:
    assert returncode == 2, stderr
    assert "Traceback" not in stderr, stderr
    message = [line for line in stderr.splitlines() if line.strip()][-1]
    for text in expected:
        assert text in message, message
    return message


def assert_usage_error(args: tuple[str, ...], env: dict[str, str], *expected: str) -> str:
    proc = run_cli(*args, **env)
    return check_message(proc.returncode, proc.stderr, expected)


@pytest.fixture
def bad_json(tmp_path: Path) -> str:
    path = tmp_path / "event.json"
    path.write_text('{"Type": "Timer", "Message": }', encoding="utf-8")
    return str(path)


# The list: a missing or malformed event file, an out-of-range port, a command that talks to
# a running endpoint with nothing listening (deploy, now that drain went with the CMQ trigger), a bad
# CBSNAP_ENDPOINT; and a bad flag. Each in a fresh process.
IN_A_SUBPROCESS: dict[str, Case] = {
    "missing event file": lambda bad: (
        ("invoke", "timer", "--event", "events/nope.json", "--emulator"),
        {},
        ("events/nope.json does not exist", "events/timer.json"),
    ),
    "malformed event file": lambda bad: (
        ("invoke", "timer", "--event", bad, "--emulator"),
        {},
        ("is not valid JSON", "line 1, column 30"),
    ),
    "serve with an out-of-range port": lambda bad: (
        ("serve", "--port", "70000"),
        {"CBSNAP_WEBHOOK_SECRET": "s" * 32},
        ("70000 is out of range", "0-65535"),
    ),
    "emulator with an out-of-range port": lambda bad: (
        ("emulator", "--port", "-1"),
        {},
        ("-1 is out of range",),
    ),
    "deploy with nothing listening": lambda bad: (
        ("deploy", "--plan"),
        {
            "CBSNAP_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
            "CBSNAP_WEBHOOK_SECRET": "s" * 32,
            **EMU_CREDENTIALS,
        },
        ("nothing answers at http://127.0.0.1:",),
    ),
    "malformed CBSNAP_ENDPOINT": lambda bad: (
        ("invoke", "timer", "--event", "events/timer.json"),
        {"CBSNAP_ENDPOINT": "ftp://x", **EMU_CREDENTIALS},
        ("CBSNAP_ENDPOINT must look like https://host[:port]", "http://127.0.0.1:PORT"),
    ),
    "nothing listening at CBSNAP_ENDPOINT": lambda bad: (
        ("invoke", "timer", "--event", "events/timer.json"),
        {"CBSNAP_ENDPOINT": f"127.0.0.1:{closed_port()}", **EMU_CREDENTIALS},
        ("nothing answers at http://127.0.0.1:", "cbsnap emulator --port"),
    ),
    "an unknown flag": lambda bad: (("demo", "--fast"), {}, ("unrecognized arguments: --fast",)),
}


@pytest.mark.parametrize("case", sorted(IN_A_SUBPROCESS))
def test_a_user_mistake_is_one_line_and_exit_2(case: str, bad_json: str) -> None:
    args, env, expected = IN_A_SUBPROCESS[case](bad_json)
    assert_usage_error(args, env, *expected)


def test_https_to_the_plain_http_emulator_names_the_fix(emulator: Emulator) -> None:
    """What pasting the old banner's value with https:// gave: an SSL error per disk, exit 0."""
    env = emulator_env(emulator, f"https://{emulator.endpoint}")
    message = assert_usage_error(
        ("invoke", "timer", "--event", "events/timer.json"), env, "does not speak TLS"
    )
    assert f"CBSNAP_ENDPOINT=http://{emulator.endpoint}" in message


IN_PROCESS: dict[str, Case] = {
    "event file is a directory": lambda bad: (
        ("invoke", "timer", "--event", "events", "--emulator"),
        {},
        ("is a directory",),
    ),
    "unknown handler": lambda bad: (
        ("invoke", "nope", "--event", "events/timer.json"),
        {},
        ("invalid choice: 'nope'", "'index', 'timer', 'messages', 'webhook'"),
    ),
    "no credentials": lambda bad: (
        ("invoke", "timer", "--event", "events/timer.json"),
        {},
        ("no API credentials", "TENCENTCLOUD_SECRETID", "--emulator"),
    ),
    "unresolvable CBSNAP_ENDPOINT": lambda bad: (
        ("plan", '{"disks": ["disk-g73hhs4o"]}'),
        {"CBSNAP_ENDPOINT": "https://cbs.nowhere.invalid", **EMU_CREDENTIALS},
        ("cannot resolve cbs.nowhere.invalid",),
    ),
    "bad numeric variable": lambda bad: (
        ("invoke", "timer", "--event", "events/timer.json", "--emulator"),
        {"CBSNAP_CONCURRENCY": "lots"},
        ("CBSNAP_CONCURRENCY",),
    ),
    "seed without --emulator": lambda bad: (
        ("invoke", "timer", "--event", "events/timer.json", "--seed", "x.json"),
        {},
        ("--seed only applies with --emulator",),
    ),
    "missing seed file": lambda bad: (
        ("invoke", "timer", "--event", "events/timer.json", "--emulator", "--seed", "nope.json"),
        {},
        ("the seed file nope.json does not exist",),
    ),
    "timeout not a number": lambda bad: (
        ("invoke", "timer", "--event", "events/timer.json", "--timeout", "soon"),
        {},
        ("'soon' is not a number of seconds",),
    ),
    "plan without a request": lambda bad: (("plan", "--emulator"), {}, ("no request document",)),
    "plan with malformed JSON": lambda bad: (
        ("plan", "--emulator", "{disks: 1}"),
        {},
        ("the request is not valid JSON", "--file"),
    ),
    "sign without a secret": lambda bad: (
        ("sign", "--body", "{}"),
        {},
        ("CBSNAP_WEBHOOK_SECRET is not set", "--secret-file"),
    ),
    "sign with a malformed query": lambda bad: (
        ("sign", "--query", "a&&b"),
        {"CBSNAP_WEBHOOK_SECRET": "s" * 32},
        ("is not name=value pairs",),
    ),
    "serve without a webhook secret": lambda bad: (
        ("serve", "--port", "0"),
        {},
        ("CBSNAP_WEBHOOK_SECRET is not set", "CBSNAP_WEBHOOK_AUTH=gateway"),
    ),
}


@pytest.mark.parametrize("case", sorted(IN_PROCESS))
def test_more_mistakes_in_process(
    case: str, bad_json: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args, env, expected = IN_PROCESS[case](bad_json)
    for name in [n for n in os.environ if n.startswith(CLEARED)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # the paths above are repository-relative
    try:
        returncode: int | str | None = main(list(args))
    except SystemExit as exit_:  # argparse's own errors
        returncode = exit_.code
    check_message(returncode, capsys.readouterr().err, expected)


def test_serve_on_a_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_usage_error(
            ("serve", "--port", str(port)),
            {"CBSNAP_WEBHOOK_SECRET": "s" * 32},
            f"port {port} is in use",
            "--port 0",
        )
