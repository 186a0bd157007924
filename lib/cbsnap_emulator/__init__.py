"""Local Tencent Cloud API emulator for cbsnap: CBS snapshots, TDMQ CMQ, the Tag API and TAT over the
real wire protocol.

The official ``tencentcloud-sdk-python`` talks to it unchanged through
``HttpProfile(protocol="http", endpoint=emu.endpoint)``; requests are TC3-signed and verified, answers use
Tencent's exact envelopes and error codes. See docs/emulator.md.
"""

from __future__ import annotations

from .auth import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY
from .emulator import Emulator
from .faults import Fault
from .seed import load_seed

__all__ = ["DEFAULT_SECRET_ID", "DEFAULT_SECRET_KEY", "Emulator", "Fault", "load_seed"]
