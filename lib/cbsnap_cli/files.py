"""Reading the files a user names on the command line, with one-line errors instead of tracebacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cbsnap_cli.errors import UsageError


def read_text(path: str, what: str, fix: str | None = None) -> str:
    """The UTF-8 text of ``path``; ``what`` names the file in the error ("the event file")."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist", fix) from None
    except IsADirectoryError:
        raise UsageError(f"{what} {path} is a directory, not a file", fix) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {path} is not UTF-8 text ({exc.reason} at byte {exc.start})", fix) from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}", fix) from None


def parse_json(text: str, what: str, fix: str | None = None) -> Any:
    """``text`` as JSON; a syntax error names the line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", fix
        ) from None


def read_json(path: str, what: str, fix: str | None = None) -> Any:
    """The JSON document in ``path``."""
    return parse_json(read_text(path, what, fix), f"{what} {path}", fix)


def read_bytes(path: str, what: str, fix: str | None = None) -> bytes:
    """The bytes of ``path``."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist", fix) from None
    except IsADirectoryError:
        raise UsageError(f"{what} {path} is a directory, not a file", fix) from None
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}", fix) from None
