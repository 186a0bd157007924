"""What one request came to: its per-disk results, how they were delivered, and the
one summary every consumer (handler responses, queue messages, logs) counts with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cbsnap.models import SnapshotResult
from cbsnap.sinks import DeliveryReport, RequestMeta


def summarize(results: Sequence[SnapshotResult]) -> dict[str, int]:
    """``{"total", "succeeded", "failed", "notAttempted"}`` of a request's results.

    ``notAttempted`` counts results whose work was left for a redelivery
    (:attr:`SnapshotResult.attempted` False); they are also counted as failed.
    """
    succeeded = sum(1 for r in results if r.ok)
    return {
        "total": len(results),
        "succeeded": succeeded,
        "failed": len(results) - succeeded,
        "notAttempted": sum(1 for r in results if not r.attempted),
    }


@dataclass
class Outcome:
    """Results of one request, in the order the disks were named.

    ``fanout`` is set when the request was split into chunks (:mod:`cbsnap.fanout`);
    ``unscheduled`` names follow-up work (completion re-checks) that could not be handed
    on, which, like an unattempted disk, makes the trigger ask for a redelivery.
    """

    results: list[SnapshotResult] = field(default_factory=list)
    delivery: list[DeliveryReport] = field(default_factory=list)
    fanout: dict[str, Any] | None = None
    unscheduled: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None  # action "report": the coverage summary (cbsnap.report)

    @property
    def not_attempted(self) -> list[str]:
        """The disks (storage IDs, or ``"?"``) whose work was left for a redelivery."""
        return [r.storageId or "?" for r in self.results if not r.attempted]

    @property
    def needs_redelivery(self) -> bool:
        """True when the platform must deliver the request again to finish it."""
        return bool(self.unscheduled) or any(r.needs_redelivery for r in self.results)

    def summary(self) -> dict[str, int]:
        """See :func:`summarize`."""
        return summarize(self.results)

    def to_response(self, meta: RequestMeta) -> dict[str, Any]:
        """The handlers' return value: identity, counts, then every per-disk result."""
        return {
            "trigger": meta.trigger,
            "requestKey": meta.request_key,
            **self.summary(),
            "results": [r.to_dict() for r in self.results],
            **({"delivery": [d.to_dict() for d in self.delivery]} if self.delivery else {}),
            **({"chunks": self.fanout["chunks"], "fanout": self.fanout} if self.fanout else {}),
            **({"report": self.report} if self.report is not None else {}),
        }


def in_order(placed: Sequence[tuple[int, SnapshotResult]]) -> list[SnapshotResult]:
    """Results sorted by the position their disk was named at (stable for equal positions)."""
    return [result for _, result in sorted(placed, key=lambda pair: pair[0])]
