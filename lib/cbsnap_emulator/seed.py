"""Seed files: the emulator's initial disks, snapshots, queues, topics, credentials and settings.

Format (all keys optional)::

    {"disks": [{"DiskId": "disk-g73hhs4o", "Region": "ap-guangzhou", "Zone": "ap-guangzhou-3",
                "InstanceId": "ins-…", "Tags": [{"Key": "backup", "Value": "nightly"}],
                "SnapshotAbility": true, "DiskState": "ATTACHED", … any other Disk field}],
     "snapshots": [{"DiskId": "…", "SnapshotId"?, "SnapshotName"?, "SnapshotState"?, "Tags"?,
                    "CreateTime"?, "DeadlineTime"?, "Images"?, "DiskUsage"?}],
     "queues": ["cbsnap-results"], "topics": ["cbsnap-events"],
     "credentials": [{"SecretId": "…", "SecretKey": "…", "Token"?: "…"}],
     "settings": {"creationSeconds": 3, "rateLimit": 20, "quota": 64, "latency": 0,
                  "copySeconds": 6, "commandSeconds": 1, "rateScope": "action"}}

A zone-less ``CreateTime``/``DeadlineTime`` is Beijing time (UTC+8), the zone the API writes it in, so
the text reappears unchanged in DescribeDisks/DescribeSnapshots.
"""

from __future__ import annotations

import json
from importlib import resources
from os import PathLike
from typing import TYPE_CHECKING, Any

from .auth import Credential

if TYPE_CHECKING:
    from .emulator import Emulator

SEED_KEYS = frozenset({"disks", "snapshots", "queues", "topics", "credentials", "settings"})
SETTING_KEYS = frozenset(
    {"creationSeconds", "rateLimit", "quota", "latency", "copySeconds", "commandSeconds", "rateScope"}
)
_TEXT_SETTINGS = frozenset({"rateScope"})

# Seed disk keys that map onto Emulator.add_disk arguments; every other key must be a Disk API field.
_DISK_ARGS = {
    "DiskId": "disk_id",
    "Region": "region",
    "Zone": "zone",
    "InstanceId": "instance_id",
    "Tags": "tags",
    "SnapshotAbility": "snapshot_ability",
    "DiskState": "disk_state",
    "DiskType": "disk_type",
    "DiskUsage": "disk_usage",
    "DiskSize": "size",
    "Encrypt": "encrypt",
    "Shareable": "shareable",
    "DiskName": "name",
    "CreateTime": "created_at",
}
_SNAPSHOT_ARGS = {
    "SnapshotId": "snapshot_id",
    "SnapshotName": "name",
    "SnapshotState": "state",
    "Tags": "tags",
    "CreateTime": "created_at",
    "DeadlineTime": "deadline",
    "Images": "images",
    "DiskUsage": "disk_usage",
}


def load_seed(path: str | PathLike[str] | None = None) -> dict[str, Any]:
    """Read a seed JSON file, or the packaged default seed when ``path`` is None.

    Raises ValueError if the file is not a JSON object with only the known top-level keys.
    """
    if path is None:
        text = resources.files("cbsnap_emulator").joinpath("default_seed.json").read_text(encoding="utf-8")
    else:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("a seed must be a JSON object")
    unknown = sorted(set(data) - SEED_KEYS)
    if unknown:
        raise ValueError(f"unknown seed key(s): {', '.join(unknown)} (known: {', '.join(sorted(SEED_KEYS))})")
    return data


def seed_settings(seed: dict[str, Any] | None) -> dict[str, Any]:
    """The seed's ``settings`` object, validated."""
    settings = (seed or {}).get("settings") or {}
    if not isinstance(settings, dict):
        raise ValueError("seed settings must be an object")
    unknown = sorted(set(settings) - SETTING_KEYS)
    if unknown:
        raise ValueError(f"unknown seed setting(s): {', '.join(unknown)}")
    for key, value in settings.items():
        if key in _TEXT_SETTINGS:
            if not isinstance(value, str):
                raise ValueError(f"seed setting {key} must be a string")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"seed setting {key} must be a number")
    return settings


def seed_credentials(seed: dict[str, Any] | None) -> list[Credential]:
    """The seed's extra credentials."""
    result = []
    for i, entry in enumerate((seed or {}).get("credentials") or []):
        if not isinstance(entry, dict) or not entry.get("SecretId") or not entry.get("SecretKey"):
            raise ValueError(f"credentials[{i}] needs SecretId and SecretKey")
        unknown = sorted(set(entry) - {"SecretId", "SecretKey", "Token"})
        if unknown:
            raise ValueError(f"credentials[{i}] has unknown key(s): {', '.join(unknown)}")
        result.append(Credential(str(entry["SecretId"]), str(entry["SecretKey"]), entry.get("Token")))
    return result


def disk_kwargs(entry: dict[str, Any]) -> dict[str, Any]:
    """Translate a seed/admin disk object into :meth:`Emulator.add_disk` keyword arguments."""
    kwargs: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for key, value in entry.items():
        if key in _DISK_ARGS:
            kwargs[_DISK_ARGS[key]] = value
        elif key == "ProjectId":
            fields.setdefault("Placement", {})["ProjectId"] = value
        else:
            fields[key] = value
    if "Placement" in fields:
        # A partial Placement is merged over the default one by the emulator, zone included.
        zone = fields["Placement"].get("Zone")
        if zone is not None:
            kwargs.setdefault("zone", zone)
    if fields:
        kwargs["fields"] = fields
    return kwargs


def snapshot_kwargs(entry: dict[str, Any]) -> dict[str, Any]:
    """Translate a seed/admin snapshot object into :meth:`Emulator.add_snapshot` keyword arguments."""
    unknown = sorted(set(entry) - set(_SNAPSHOT_ARGS) - {"DiskId", "Region"})
    if unknown:
        raise ValueError(f"unknown snapshot key(s): {', '.join(unknown)}")
    if not entry.get("DiskId"):
        raise ValueError("a snapshot needs a DiskId")
    return {_SNAPSHOT_ARGS[k]: v for k, v in entry.items() if k in _SNAPSHOT_ARGS}


def apply_seed(emu: Emulator, seed: dict[str, Any]) -> None:
    """Create the seed's disks, snapshots, queues and topics in ``emu``. Errors name the entry."""
    for kind in ("disks", "snapshots", "queues", "topics"):
        if not isinstance(seed.get(kind) or [], list):
            raise ValueError(f"seed {kind} must be an array")
    for i, entry in enumerate(seed.get("disks") or []):
        try:
            if not isinstance(entry, dict):
                raise ValueError("must be an object")
            emu.add_disk(**disk_kwargs(entry))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"seed disks[{i}]: {exc}") from exc
    for i, entry in enumerate(seed.get("snapshots") or []):
        try:
            if not isinstance(entry, dict):
                raise ValueError("must be an object")
            emu.add_snapshot(entry["DiskId"], **snapshot_kwargs(entry))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"seed snapshots[{i}]: {exc}") from exc
    for kind, add in (("queues", emu.add_queue), ("topics", emu.add_topic)):
        for i, entry in enumerate(seed.get(kind) or []):
            name = entry.get("Name") if isinstance(entry, dict) else entry
            if not isinstance(name, str):
                raise ValueError(f'seed {kind}[{i}] must be a name or {{"Name": …}}')
            add(name)
