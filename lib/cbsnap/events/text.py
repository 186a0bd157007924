"""Text from events that may not be text: identifiers are checked before they become keys.

An event is JSON, and JSON text can carry what UTF-8 cannot: ``"\\ud800"`` decodes to a lone
surrogate. Such a string raises ``UnicodeEncodeError`` wherever it is hashed or written, so a
trigger name, a time or a topic that becomes part of a request key must be checked first. The
readers refuse an identifier that is not text (the event is reported as a 9003) and carry
:func:`escaped` forms of it, so that even the refusal's key and log line stay writable and the
same event always yields the same key.
"""

from __future__ import annotations

import re

# A decimal number as Kafka writes one: ASCII digits only. str.isdigit() also accepts "²", "٣"
# and the fullwidth digits, which int() then refuses or reads, so it is not used.
ASCII_DIGITS = re.compile(r"[0-9]{1,20}")


def is_text(value: str) -> bool:
    """True when ``value`` can be encoded as UTF-8 (it holds no surrogate code point)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def escaped(value: str) -> str:
    """``value`` with each surrogate written as ``\\udXXX``: always encodable, and stable
    (the same input gives the same text, and different inputs stay different).

    >>> escaped("nightly\\ud800")
    'nightly\\\\ud800'
    """
    return value if is_text(value) else value.encode("utf-8", "backslashreplace").decode("utf-8")
