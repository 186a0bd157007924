#!/usr/bin/env bash
# The demo on a fresh machine: a pinned virtualenv (built once, with progress on stderr), then
# `cbsnap demo`, which starts the embedded CBS API emulator, fires a timer event at
# index.main_handler and shows the snapshots progressing to NORMAL.
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"
venv="$(make_venv 3.11)"
exec "$venv/bin/cbsnap" demo "$@"
