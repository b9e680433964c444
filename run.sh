#!/usr/bin/env bash
# QuantGPU developer entry point. The README's two commands:
#   ./run.sh demo    set up (when needed) and run `quantgpu demo` on the bundled sample phantoms
#   ./run.sh test    set up (when needed) and run the whole test suite
# Set-up: Debian packages (when run as root and missing), then .venv with the pinned
# versions of constraints.txt, then this project in editable mode.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

DEB_PACKAGES=(chromium chromium-driver dicom3tools dcmtk libosmesa6 libegl1 libgl1 libglu1-mesa libxrender1 libxt6 poppler-utils)

ensure_debian_packages() {
  command -v dpkg-query >/dev/null 2>&1 || return 0
  local missing=()
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ]; then
    echo "run.sh: installing Debian packages: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "run.sh: missing Debian packages (run as root to install): ${missing[*]}" >&2
  fi
}

ensure_venv() {
  local stamp=.venv/.quantgpu-installed
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ constraints.txt -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
    touch "$stamp"
  fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  demo)
    ensure_debian_packages
    ensure_venv
    exec .venv/bin/quantgpu demo "$@"
    ;;
  test)
    ensure_debian_packages
    ensure_venv
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    exec .venv/bin/python -m pytest -n 2 "$@"
    ;;
  *)
    echo "usage: ./run.sh demo [quantgpu demo options] | ./run.sh test [pytest options]" >&2
    exit 2
    ;;
esac
