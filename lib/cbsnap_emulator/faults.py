"""Fault injection: answer an error, lose the reply after committing, or add latency."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

FAULT_KINDS = ("error", "lost_reply", "latency")


@dataclass
class Fault:
    """One injected fault.

    Parameters
    ----------
    action:
        API action name (``"CreateSnapshot"``) or ``"*"`` for every action.
    code:
        Error code answered by ``kind="error"`` (default ``InternalError``).
    kind:
        ``"error"``: answer the error envelope, change nothing. ``"lost_reply"``: perform the action
        (state is committed) and close the connection without a response, so the SDK raises
        ``ClientNetworkError``. ``"latency"``: sleep ``latency`` seconds before handling.
    disk_id:
        Only requests naming this disk (``DiskId``, any of ``DiskIds`` or a ``disk-id`` filter value).
    snapshot_id:
        Only requests naming this snapshot (``SnapshotId`` or any of ``SnapshotIds``), e.g. one
        CopySnapshotCrossRegions source.
    region:
        Only requests to this region.
    times:
        How many more injections; None means forever. Decremented per injection; at 0 the fault is gone.
    probability:
        Chance that a matching request is hit (drawn from the emulator's seeded RNG).
    """

    action: str = "*"
    code: str | None = None
    kind: str = "error"
    disk_id: str | None = None
    region: str | None = None
    times: int | None = None
    probability: float = 1.0
    latency: float = 0.0
    message: str | None = None
    snapshot_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Fault.kind must be one of {FAULT_KINDS}, got {self.kind!r}")
        if self.kind == "error" and self.code is None:
            self.code = "InternalError"
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("Fault.probability must be within [0, 1]")
        if self.times is not None and self.times < 0:
            raise ValueError("Fault.times must be >= 0 or None")
        if self.latency < 0:
            raise ValueError("Fault.latency must be >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Build a Fault from its JSON form (the admin API); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown Fault field(s): {', '.join(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the fault."""
        return asdict(self)

    def matches(
        self, action: str, region: str | None, disk_ids: Iterable[str], snapshot_ids: Iterable[str] = ()
    ) -> bool:
        """Whether a request (action, region, disk and snapshot ids it names) is in this fault's scope."""
        if self.times == 0:
            return False
        if self.action not in ("*", action):
            return False
        if self.region is not None and self.region != region:
            return False
        if self.snapshot_id is not None and self.snapshot_id not in set(snapshot_ids):
            return False
        return self.disk_id is None or self.disk_id in set(disk_ids)


@dataclass(frozen=True)
class Injection:
    """What the faults decided for one request."""

    delay: float = 0.0
    fault: Fault | None = None  # the error or lost_reply fault to apply, if any


class FaultSet:
    """The active faults; callers hold the emulator lock."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.injected: dict[str, int] = {}

    def add(self, fault: Fault) -> Fault:
        """Activate a fault (the same object is returned; its ``times`` counts down)."""
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault (the injection counters are kept)."""
        self.faults.clear()

    def select(
        self,
        action: str,
        region: str | None,
        disk_ids: list[str],
        rng: random.Random,
        snapshot_ids: list[str] | None = None,
    ) -> Injection:
        """Decide the faults for one request: all matching latency faults add up; the first matching
        error or lost_reply fault (in insertion order) is applied."""
        delay = 0.0
        chosen: Fault | None = None
        for fault in list(self.faults):
            if fault.kind != "latency" and chosen is not None:
                continue
            if not fault.matches(action, region, disk_ids, snapshot_ids or ()):
                continue
            if fault.probability < 1.0 and rng.random() >= fault.probability:
                continue
            self._consume(fault)
            if fault.kind == "latency":
                delay += fault.latency
            else:
                chosen = fault
        return Injection(delay, chosen)

    def _consume(self, fault: Fault) -> None:
        key = fault.code if fault.kind == "error" and fault.code else fault.kind
        self.injected[key] = self.injected.get(key, 0) + 1
        if fault.times is not None:
            fault.times -= 1
            if fault.times == 0:
                self.faults.remove(fault)
