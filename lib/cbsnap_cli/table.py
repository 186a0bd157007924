"""Plain-text tables that fit the terminal without cutting anything off.

Identifier columns (disk and snapshot IDs, codes) keep their full width. Free-text columns (the
message, a snapshot name) give way: they shrink to what is left of the terminal and wrap onto
continuation lines, so the one column that explains a failure is never truncated.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GAP = "  "
MIN_WRAP_WIDTH = 16  # below this a wrapped column is unreadable; the table overflows instead
FALLBACK_WIDTH = 120  # not a terminal (CI logs, a pipe): logs are usually wide


@dataclass(frozen=True)
class Column:
    """One column: the row key it shows, its title, and whether its text may wrap."""

    key: str
    title: str
    wrap: bool = False


RESULT_COLUMNS = (
    Column("storageId", "storageId"),
    Column("snapshotName", "snapshotName", wrap=True),
    Column("code", "code"),
    Column("snapshotId", "snapshotId"),
    Column("message", "message", wrap=True),
)


def terminal_width() -> int:
    """The terminal's width (``COLUMNS`` wins), or a wide default when output is not a terminal."""
    return shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else " ".join(str(value).split())


def _widths(columns: Sequence[Column], cells: list[list[str]], width: int) -> list[int]:
    widths = [max([len(c.title), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    excess = sum(widths) + len(GAP) * (len(columns) - 1) - width
    # take the excess from the widest wrapping column first, never below the readable minimum
    while excess > 0:
        wrapping = [i for i, c in enumerate(columns) if c.wrap and widths[i] > MIN_WRAP_WIDTH]
        if not wrapping:
            break
        widest = max(wrapping, key=lambda i: widths[i])
        floor = max([MIN_WRAP_WIDTH] + [widths[i] for i in wrapping if i != widest])
        step = min(excess, max(1, widths[widest] - floor))  # down to the next widest, then in turn
        widths[widest] -= step
        excess -= step
    return widths


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column], width: int | None = None) -> str:
    """``rows`` as a table at most ``width`` characters wide (the terminal's by default)."""
    width = terminal_width() if width is None else width
    cells = [[_text(row.get(c.key)) for c in columns] for row in rows]
    widths = _widths(columns, cells, width)
    lines = [GAP.join(c.title.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append(GAP.join("-" * w for w in widths))
    for row in cells:
        wrapped = [
            textwrap.wrap(text, w, break_on_hyphens=False) or [""] if c.wrap else [text]
            for c, w, text in zip(columns, widths, row, strict=True)
        ]
        for n in range(max(len(part) for part in wrapped)):
            line = GAP.join(
                (part[n] if n < len(part) else "").ljust(w) for part, w in zip(wrapped, widths, strict=True)
            )
            lines.append(line.rstrip())
    return "\n".join(lines)
