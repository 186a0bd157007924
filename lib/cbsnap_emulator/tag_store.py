"""Tags the Tag API keeps for resources the emulator does not model (anything but CBS disks and
snapshots, whose tags live on the resources themselves so DescribeDisks/DescribeSnapshots show them).

Tencent's tag service stores tags per six-segment resource name; the emulator does the same for every
other well-formed name, keyed by its canonical form.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StoredResource:
    """One resource's tags (``{"Key", "Value"}``, insertion order); ``seq`` orders listings."""

    seq: int
    tags: list[dict[str, str]] = field(default_factory=list)


class TagStore:
    """Canonical resource name -> its tags (callers hold the emulator lock)."""

    def __init__(self) -> None:
        self.resources: dict[str, StoredResource] = {}

    def tags_of(self, name: str) -> list[dict[str, str]] | None:
        """The live tag list of ``name``, or None if the store never saw it."""
        entry = self.resources.get(name)
        return None if entry is None else entry.tags

    def ensure(self, name: str, seq: int) -> list[dict[str, str]]:
        """The live tag list of ``name``, created empty (at ``seq``) if new."""
        entry = self.resources.setdefault(name, StoredResource(seq))
        return entry.tags
