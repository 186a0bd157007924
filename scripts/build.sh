#!/usr/bin/env bash
# Build the SCF code package: dist/cbsnap-scf.zip (see scripts/build_package.py and docs/deploy.md).
#
#   scripts/build.sh                      # runtime deps from manylinux wheels, bytecode for 3.10
#   scripts/build.sh --extra redis        # also the redis client (CBSNAP_REDIS_URL)
#   scripts/build.sh --bytecode all|none  # every module compiled / none (for measurements)
#
# Needs a CPython 3.10 (python3.10 on PATH or pyenv): SCF's runtime is Python3.10 and the bytecode
# must be compiled by the same minor version. Wheels come from your pip index; nothing is built.
set -euo pipefail
# shellcheck source=scripts/_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"

PY310="$(find_python 3.10)"
exec "$PY310" "$ROOT/scripts/build_package.py" --python "$PY310" "$@"
