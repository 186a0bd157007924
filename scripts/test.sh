#!/usr/bin/env bash
# The whole test suite on a fresh machine: pinned virtualenvs for Python 3.10
# (SCF's runtime) and 3.11, pytest under both, then ruff and mypy.
# Extra arguments go to pytest, e.g. scripts/test.sh -k emulator
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"

status=0
for ver in 3.10 3.11; do
  venv="$(make_venv "$ver")"
  echo "==> pytest on Python $ver"
  set +e
  "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
  rc=$?
  set -e
  # Exit code 5 means "no tests collected": that is a failure, not a pass.
  if [ "$rc" -ne 0 ]; then echo "pytest on Python $ver failed (exit $rc)" >&2; status=1; fi
done

venv="$ROOT/.venv/py3.11"
echo "==> ruff"
"$venv/bin/ruff" check . || status=1
"$venv/bin/ruff" format --check . || status=1
echo "==> mypy"
"$venv/bin/mypy" || status=1
exit "$status"
