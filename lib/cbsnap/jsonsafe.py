"""JSON text that every consumer can read, whatever the value holds: the last line of defence.

The readers and validators refuse bad text and numbers at the boundary (docs/triggers.md,
"Bad bytes"); this module is what stands behind them where cbsnap *writes* JSON (each log
line, the webhook's answer), so that something they missed costs one replaced character,
never a lost log line or a non-JSON body:

* ``NaN`` / ``Infinity`` are not JSON (RFC 8259 §6) and CLS, ``jq`` and most parsers refuse
  them: they are written as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
* a lone surrogate (``"\\ud800"`` in JSON text decodes to one) cannot be encoded as UTF-8, so
  writing it to SCF's stdout raises and the logging module drops the whole line: every
  surrogate code point is replaced with U+FFFD;
* U+0085, U+2028 and U+2029 end a line for many readers (``str.splitlines``, JavaScript) but
  are left raw by ``ensure_ascii=False``: they are written as ``\\u`` escapes, so a record is
  one line to every reader (the same string once decoded);
* anything else :func:`json.dumps` cannot serialise (a cycle, an object without ``default``'s
  help) gives a small JSON object saying so, never an exception.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

REPLACEMENT = "\ufffd"
_SURROGATES = re.compile("[\ud800-\udfff]")
# Line breaks that json.dumps(ensure_ascii=False) leaves raw (it escapes those below U+0020).
# They can only occur inside JSON strings, where the escape means the same character.
_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}
_MAX_DEPTH = 100  # deeper than anything cbsnap logs; bounds the repair walk on a cycle


def clean_text(text: str) -> str:
    """``text`` with every surrogate code point replaced by U+FFFD: always encodable as UTF-8."""
    return _SURROGATES.sub(REPLACEMENT, text)


def _finite(value: Any, depth: int = 0) -> Any:
    """``value`` with non-finite floats as strings; cut (as a string) past :data:`_MAX_DEPTH`."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if depth >= _MAX_DEPTH:
        return "…" if isinstance(value, (dict, list, tuple)) else value
    if isinstance(value, dict):
        return {k: _finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, depth + 1) for v in value]
    return value


def safe_dumps(
    value: Any,
    *,
    default: Callable[[Any], Any] | None = str,
    separators: tuple[str, str] | None = None,
    indent: int | str | None = None,
) -> str:
    """``json.dumps(value, ensure_ascii=False)`` that is always valid UTF-8 JSON and never raises.

    Example
    -------
    >>> safe_dumps({"score": float("nan"), "name": "a\\ud800"})
    '{"score": "NaN", "name": "a\ufffd"}'
    >>> safe_dumps(["one\\u2028line"])
    '["one\\\\u2028line"]'
    """
    options: dict[str, Any] = {
        "ensure_ascii": False,
        "allow_nan": False,
        "default": default,
        "separators": separators,
        "indent": indent,
    }
    try:
        text = json.dumps(value, **options)
    except (ValueError, TypeError, RecursionError):  # a non-finite float, a cycle, an odd object
        try:
            text = json.dumps(_finite(value), **options)
        except (ValueError, TypeError, RecursionError) as exc:
            text = json.dumps({"unserialisable": type(value).__name__, "error": type(exc).__name__})
    return clean_text(text).translate(_LINE_BREAKS)
