#!/usr/bin/env bash
# Build the SCF code package: dist/cbsnap-scf.zip (see scripts/build_package.py and docs/deploy.md).
#
#   scripts/build.sh                      # runtime deps from manylinux wheels, bytecode for 3.10
#   scripts/build.sh --extra redis        # also the redis client (CBSNAP_REDIS_URL)
#   scripts/build.sh --bytecode all|none  # every module compiled / none (for measurements)
#
# Two builds of the same commit give byte-identical zips (tests/package/test_build_zip.py checks it).
# Needs a CPython 3.10 (python3.10 on PATH or pyenv): SCF's runtime is Python3.10 and the bytecode
# must be compiled by the same minor version. Wheels come from your pip index; nothing is built.
set -euo pipefail
# shellcheck source=scripts/_venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"

# Reproducible: every zip entry carries the commit's time (reproducible-builds.org's variable), so two
# builds of one commit are byte-identical; outside git the build uses 1980-01-01.
if [ -z "${SOURCE_DATE_EPOCH:-}" ] && commit_time="$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null)"; then
  export SOURCE_DATE_EPOCH="$commit_time"
fi

PY310="$(find_python 3.10)"
exec "$PY310" "$ROOT/scripts/build_package.py" --python "$PY310" "$@"
