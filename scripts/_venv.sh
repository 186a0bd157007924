# shellcheck shell=bash
# Shared helpers for scripts/demo.sh and scripts/test.sh: find a CPython of a
# given minor version and build a virtualenv with the pinned dependencies.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

find_python() {  # find_python 3.10 -> prints an interpreter path
  local want="$1" cand
  for cand in "python$want" "$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/$want"*/bin/"python$want"; do
    if [ -n "$cand" ] && "$cand" -c 'import sys; assert "%d.%d" % sys.version_info[:2] == "'"$want"'"' >/dev/null 2>&1; then
      command -v "$cand" 2>/dev/null || echo "$cand"
      return 0
    fi
  done
  echo "Python $want not found (install it, e.g. 'pyenv install $want')" >&2
  return 1
}

make_venv() {  # make_venv 3.11 -> prints the venv dir; installs constraints.txt pins + cbsnap[dev] editable
  local ver="$1" py venv="$ROOT/.venv/py$1" stamp
  py="$(find_python "$ver")"
  stamp="$(cat "$ROOT/constraints.txt" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
  if [ ! -f "$venv/.cbsnap-stamp" ] || [ "$(cat "$venv/.cbsnap-stamp")" != "$stamp" ]; then
    echo "==> building $venv with $py" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      -c "$ROOT/constraints.txt" -e "$ROOT[dev]" >&2
    echo "$stamp" > "$venv/.cbsnap-stamp"
  fi
  echo "$venv"
}
