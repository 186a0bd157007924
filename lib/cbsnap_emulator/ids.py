"""Resource id generation (``disk-``/``snap-``/``csnap-``/``ins-``/``inv-``… + 8 of ``[a-z0-9]``), id
shapes, and the emulated account's UIN."""

from __future__ import annotations

import random
import re
import string
from collections.abc import Container

_ALPHABET = string.ascii_lowercase + string.digits

DISK_ID = re.compile(r"^disk-[a-z0-9]{8}$")
SNAPSHOT_ID = re.compile(r"^snap-[a-z0-9]{8}$")
GROUP_ID = re.compile(r"^csnap-[a-z0-9]{8}$")
INSTANCE_ID = re.compile(r"^ins-[a-z0-9]{8}$")
INVOCATION_ID = re.compile(r"^inv-[a-z0-9]{8}$")
INVOCATION_TASK_ID = re.compile(r"^invt-[a-z0-9]{8}$")
COMMAND_ID = re.compile(r"^cmd-[a-z0-9]{8}$")

# The emulated account's UIN: the ``uin/<UIN>`` segment of six-segment resource names (Tag API).
ACCOUNT_UIN = "100000000001"


class IdFactory:
    """Draws ids from one ``random.Random`` so a fixed ``rng_seed`` gives the same ids run after run."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def new(self, prefix: str, taken: Container[str]) -> str:
        """Return ``<prefix>-<8 chars>`` not in ``taken``."""
        while True:
            candidate = prefix + "-" + "".join(self.rng.choice(_ALPHABET) for _ in range(8))
            if candidate not in taken:
                return candidate

    def msg_id(self) -> str:
        """A CMQ message id: 32 upper-case hex digits, like ``09A51113003621B8D17C0DF3DC2403DC``."""
        return f"{self.rng.getrandbits(128):032X}"
