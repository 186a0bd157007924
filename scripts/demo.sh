#!/usr/bin/env bash
# The demo on a fresh machine: a pinned virtualenv, then `cbsnap demo`, which
# starts the embedded CBS API emulator, fires the timer handler at it and shows
# the snapshots progressing to NORMAL.
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"
venv="$(make_venv 3.11)"
exec "$venv/bin/cbsnap" demo "$@"
