#!/usr/bin/env bash
# The whole test suite on a fresh machine: pinned virtualenvs for Python 3.10 (SCF's runtime) and
# 3.11, pytest under both, then ruff and mypy. The two pytest runs and the linters run side by
# side, and each pytest spreads its tests over CBSNAP_TEST_WORKERS processes (pytest-xdist;
# default: the number of cores; 0 runs them in one process). Most tests wait on sockets,
# subprocesses and emulated time rather than the CPU, so this takes a fraction of a sequential run.
# The package test (tests/package: the 3.10 zip, built and run with CPython 3.10) runs once.
# Extra arguments go to pytest, e.g. scripts/test.sh -k emulator
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"

started=$SECONDS
workers="${CBSNAP_TEST_WORKERS:-$(nproc 2>/dev/null || echo 2)}"
venv310="$(make_venv 3.10)"
venv311="$(make_venv 3.11)"
logs="$ROOT/.venv/logs"
mkdir -p "$logs"

xdist=()
if [ "$workers" -gt 0 ]; then
  # loadgroup: tests go to whichever worker is free, except an xdist_group's, which share one
  # worker (the package tests: the zip is built once)
  xdist=(-n "$workers" --dist loadgroup)
fi
once=()
if [ "$#" -eq 0 ]; then
  # The package test builds the SCF zip with CPython 3.10 and runs it in a clean 3.10 whatever
  # Python runs pytest, so a second run under 3.11 would repeat the same work: it runs once.
  once=(--ignore=tests/package)
fi

# pytest_run VERSION VENV DB_OFFSET: each run flushes its own Redis databases (tests/conftest.py:
# the base database minus the worker number minus this offset)
pytest_run() {
  CBSNAP_TEST_REDIS_DB_OFFSET="$3" "$2/bin/python" -m pytest -p no:cacheprovider "${xdist[@]}" "${@:4}" \
    >"$logs/pytest-$1.log" 2>&1
}
lint_run() {
  { echo "--- ruff check"; "$venv311/bin/ruff" check . && echo "--- ruff format --check" \
      && "$venv311/bin/ruff" format --check . && echo "--- mypy" && "$venv311/bin/mypy"; } \
    >"$logs/lint.log" 2>&1
}

log "pytest on Python 3.10 and 3.11 side by side (${workers} workers each), ruff and mypy; logs in .venv/logs/"
pytest_run 3.10 "$venv310" 0 "$@" & pid310=$!
pytest_run 3.11 "$venv311" "$workers" "${once[@]}" "$@" & pid311=$!
lint_run & pidlint=$!

progress() {  # the last "[ NN%]" of a pytest log, or "starting"
  local p
  p="$(grep -o '\[ *[0-9]*%\]' "$logs/pytest-$1.log" 2>/dev/null | tail -1 | tr -d '[ ]')" || true
  echo "${p:-starting}"
}
next=$((SECONDS + 15))
while kill -0 "$pid310" 2>/dev/null || kill -0 "$pid311" 2>/dev/null; do
  sleep 1
  if [ "$SECONDS" -ge "$next" ]; then
    log "… $((SECONDS - started)) s: Python 3.10 $(progress 3.10), Python 3.11 $(progress 3.11)"
    next=$((SECONDS + 15))
  fi
done

status=0
for ver in 3.10 3.11; do
  pid=$pid310; [ "$ver" = 3.11 ] && pid=$pid311
  set +e; wait "$pid"; rc=$?; set -e
  log "pytest on Python $ver (exit $rc)"
  cat "$logs/pytest-$ver.log"
  # Exit code 5 means "no tests collected": that is a failure, not a pass.
  if [ "$rc" -ne 0 ]; then echo "pytest on Python $ver failed (exit $rc)" >&2; status=1; fi
done
set +e; wait "$pidlint"; rc=$?; set -e
log "ruff and mypy (exit $rc)"
cat "$logs/lint.log"
[ "$rc" -eq 0 ] || status=1

log "done in $((SECONDS - started)) s"
for ver in 3.10 3.11; do  # the two verdicts, last, where a reader (or CI) looks
  log "Python $ver:"
  grep -E '^=+ .* in [0-9.]+s' "$logs/pytest-$ver.log" | tail -1 || echo "(no pytest summary: see above)"
done
exit "$status"
