# shellcheck shell=bash
# Shared helpers for scripts/demo.sh, scripts/test.sh and scripts/build.sh: find a CPython of a
# given minor version and build a virtualenv with the pinned dependencies (constraints.txt).
#
# Environments are built with uv (a fast installer, installed from PyPI into .venv/tools the first
# time, at the version constraints.txt pins); where uv cannot be had, with pip. CBSNAP_NO_UV=1
# forces pip. Progress goes to stderr as "==> …" lines; stdout carries only the result.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { echo "==> $*" >&2; }

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

pinned() {  # pinned uv -> the version constraints.txt pins
  sed -n "s/^$1==//p" "$ROOT/constraints.txt"
}

uv_bin() {  # prints the uv executable, or nothing when uv cannot be had (the caller then uses pip)
  [ -z "${CBSNAP_NO_UV:-}" ] || return 0
  local tool="$ROOT/.venv/tools" version py
  version="$(pinned uv)"
  if [ -x "$tool/bin/uv" ] && [ "$(cat "$tool/.uv-version" 2>/dev/null)" = "$version" ]; then
    echo "$tool/bin/uv"
    return 0
  fi
  py="$(find_python 3.11 2>/dev/null || find_python 3.10 2>/dev/null)" || return 0
  log "installing uv $version from PyPI into .venv/tools (once; it builds the environments in seconds)"
  rm -rf "$tool"
  # -qq: pip's notes about this machine's own index settings are not ours to show
  if "$py" -m venv "$tool" >&2 \
    && "$tool/bin/python" -m pip install -qq --disable-pip-version-check "uv==$version" >&2; then
    echo "$version" > "$tool/.uv-version"
    echo "$tool/bin/uv"
  else
    log "could not install uv: building with pip instead (slower)"
    rm -rf "$tool"
  fi
}

_install_with_uv() {  # _install_with_uv UV PYTHON VENV
  local uv="$1" py="$2" venv="$3"
  # --seed: pip in the venv too, for anyone who runs `.venv/py3.11/bin/python -m pip`
  "$uv" venv --quiet --seed --python "$py" "$venv" >&2 || return 1
  # uv's summary lines (resolved, prepared, installed) stay; the one line per package does not
  VIRTUAL_ENV="$venv" "$uv" pip install --python "$venv/bin/python" \
    -c "$ROOT/constraints.txt" -e "$ROOT[dev]" 2>&1 | sed -u '/^ [-+~] /d' >&2
}

_install_with_pip() {  # _install_with_pip PYTHON VENV
  local py="$1" venv="$2"
  "$py" -m venv "$venv" >&2
  log "  pip: upgrading pip"
  "$venv/bin/python" -m pip install -qq --disable-pip-version-check --upgrade "pip>=24" >&2
  log "  pip: installing cbsnap[dev] and its pinned dependencies (a minute or two)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    -c "$ROOT/constraints.txt" -e "$ROOT[dev]" >&2
}

make_venv() {  # make_venv 3.11 -> prints the venv dir; installs constraints.txt pins + cbsnap[dev] editable
  local ver="$1" py venv="$ROOT/.venv/py$1" stamp uv started
  py="$(find_python "$ver")"
  stamp="$(cat "$ROOT/constraints.txt" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
  if [ -f "$venv/.cbsnap-stamp" ] && [ "$(cat "$venv/.cbsnap-stamp")" = "$stamp" ]; then
    echo "$venv"
    return 0
  fi
  started=$SECONDS
  rm -rf "$venv"
  uv="$(uv_bin)"
  if [ -n "$uv" ]; then
    log "building .venv/py$ver with uv ($("$py" -V 2>&1)): cbsnap[dev] at the pins of constraints.txt"
    if ! _install_with_uv "$uv" "$py" "$venv"; then
      log "uv failed: building .venv/py$ver with pip instead"
      rm -rf "$venv"
      _install_with_pip "$py" "$venv"
    fi
  else
    log "building .venv/py$ver with pip ($("$py" -V 2>&1)): cbsnap[dev] at the pins of constraints.txt"
    _install_with_pip "$py" "$venv"
  fi
  echo "$stamp" > "$venv/.cbsnap-stamp"
  log ".venv/py$ver ready in $((SECONDS - started)) s"
  echo "$venv"
}
