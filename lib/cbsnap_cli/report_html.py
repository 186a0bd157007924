"""One self-contained HTML page for a coverage report (``cbsnap report --html FILE``).

No external asset (no script, font, stylesheet or image is fetched): the page opens from a mail
attachment or an object store as it is. On top, the summary; then one row per disk, worst status
first, with its 30-day strip: one cell per UTC day, oldest on the left, darker the more usable
snapshots were made that day, so a gap shows at a glance.

It renders what the function answered (the report results and summary); it calls nothing.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

STATUS_ORDER = ("error", "none", "stuck", "stale", "ok")
STATUS_LABEL = {
    "error": "unknown",
    "none": "no snapshot",
    "stuck": "stuck",
    "stale": "stale",
    "ok": "ok",
}
_CSS = """
:root { --ok:#1a7f37; --stale:#b7791f; --none:#c62828; --stuck:#6f42c1; --error:#57606a; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; }
body { color: #1f2328; }
h1 { font-size: 20px; margin: 0 0 4px; }
.meta { color: #57606a; margin-bottom: 16px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 20px; }
.card { border: 1px solid #d0d7de; border-radius: 8px; padding: 10px 16px; min-width: 110px; }
.card b { display: block; font-size: 26px; line-height: 1.1; }
.card.ok b { color: var(--ok); } .card.stale b { color: var(--stale); } .card.none b { color: var(--none); }
.card.stuck b { color: var(--stuck); } .card.error b { color: var(--error); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #eaeef2; vertical-align: middle; }
th, td { white-space: nowrap; } td:last-child { white-space: normal; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #57606a; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; }
.badge.ok { background: var(--ok); } .badge.stale { background: var(--stale); }
.badge.none { background: var(--none); } .badge.stuck { background: var(--stuck); }
.badge.error { background: var(--error); }
.msg.flag { color: var(--none); }
.strip { display: flex; gap: 2px; }
.day { width: 9px; height: 18px; border-radius: 2px; background: #eaeef2; }
.day.n1 { background: #9be9a8; } .day.n2 { background: #40c463; } .day.n3 { background: #216e39; }
.day.today { outline: 1px solid #57606a; }
.msg { color: #57606a; font-size: 12px; max-width: 360px; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
"""


def render(response: Mapping[str, Any], *, generated: datetime | None = None) -> str:
    """The page for a report answer (``{"results": [...], "report": {...}}``)."""
    generated = generated or datetime.now(timezone.utc)
    summary: Mapping[str, Any] = response.get("report") or {}
    results = [r for r in response.get("results", []) if r.get("action") == "report"]
    rows = "\n".join(_row(r, generated.date()) for r in worst_first(results))
    calls = summary.get("apiCalls") or {}
    calls_text = ", ".join(f"{k} {v}" for k, v in calls.items()) or "none"
    listing = summary.get("listing") or {}
    regions = ", ".join(f"{r} ({how})" for r, how in listing.items()) or "-"
    cards = "".join(
        f'<div class="card {s}"><b>{int(summary.get(s, 0))}</b>{_e(STATUS_LABEL[s])}</div>'
        for s in STATUS_ORDER
        if s != "error" or summary.get("error")
    )
    cards += f'<div class="card"><b>{int(summary.get("deleteWithDisk", 0))}</b>deleted with disk</div>'
    owned = " (cbsnap's snapshots only)" if summary.get("ownedOnly") else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cbsnap coverage report</title>
<style>{_CSS}</style></head>
<body>
<h1>Snapshot coverage{_e(owned)}</h1>
<div class="meta">{len(results)} disks · RPO {_e(summary.get("rpoHours", "?"))} h · stuck after
{_e(summary.get("stuckHours", "?"))} h · regions {_e(regions)} · {int(summary.get("apiCallsTotal", 0))} API
calls ({_e(calls_text)}, all read-only) · generated {_e(generated.strftime("%Y-%m-%d %H:%M UTC"))}</div>
<div class="cards">{cards}</div>
<table>
<thead><tr><th>Status</th><th>Disk</th><th>Region</th><th>Newest usable snapshot</th><th>Age (h)</th>
<th>Snapshots</th><th>Creating</th><th>Last 30 days (UTC)</th><th>Notes</th></tr></thead>
<tbody>
{rows}
</tbody></table>
</body></html>
"""


def worst_first(results: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Worst status first; within one, the oldest newest-snapshot first; then by disk."""
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}

    def key(r: Mapping[str, Any]) -> tuple[int, float, str]:
        age = r.get("ageHours")
        return (
            rank.get(r.get("status") or "error", 0),
            -(age if age is not None else 1e12),
            str(r.get("storageId")),
        )

    return sorted(results, key=key)


def _row(r: Mapping[str, Any], today: date) -> str:
    status = str(r.get("status") or "error")
    age = r.get("ageHours")
    last = r.get("lastSnapshotAt")
    newest = (
        f"<code>{_e(r.get('lastSnapshotId'))}</code> {_e(str(last)[:16].replace('T', ' '))}" if last else "-"
    )
    notes = []
    if r.get("copies"):
        notes.append("copies: " + _e(", ".join(r["copies"])))
    if r.get("message"):
        flag = " flag" if r.get("deleteWithDisk") else ""
        notes.append(f'<span class="msg{flag}">{_e(r["message"])}</span>')
    label = STATUS_LABEL.get(status, status)
    cells = [
        f'<td><span class="badge {_e(status)}">{_e(label)}</span></td>',
        f"<td><code>{_e(r.get('storageId'))}</code></td>",
        f"<td>{_e(r.get('region'))}</td>",
        f"<td>{newest}</td>",
        f'<td class="num">{"-" if age is None else f"{age:.1f}"}</td>',
        f'<td class="num">{_e(r.get("snapshotCount", "-"))}</td>',
        f'<td class="num">{_e(r.get("creating", "-"))}</td>',
        f"<td>{_strip(str(r.get('last30Days') or ''), today)}</td>",
        f"<td>{'<br>'.join(notes)}</td>",
    ]
    return f'<tr class="{_e(status)}">{"".join(cells)}</tr>'


def _strip(days: str, today: date) -> str:
    """30 day cells, oldest first; the title of each says the date and the count."""
    cells = []
    for i, digit in enumerate(days):
        count = int(digit) if digit.isdigit() else 0
        day = today - timedelta(days=len(days) - 1 - i)
        level = "" if count == 0 else f" n{min(count, 3)}"
        mark = " today" if i == len(days) - 1 else ""
        plural = "" if count == 1 else "s"
        cells.append(
            f'<span class="day{level}{mark}" title="{day.isoformat()}: {count} snapshot{plural}"></span>'
        )
    return f'<div class="strip">{"".join(cells)}</div>'


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))
