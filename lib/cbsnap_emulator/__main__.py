"""``python -m cbsnap_emulator``: run the emulator in the foreground."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
