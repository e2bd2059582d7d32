#!/usr/bin/env bash
# Create the virtual environment $1 with $2 (python3). Debian's python3 lacks ensurepip until
# python3-venv is installed: install it then (root or sudo), since `make demo` must work on a
# fresh Debian machine.
set -euo pipefail
venv=$1
python=${2:-python3}
[ -x "$venv/bin/pip" ] && exit 0
if ! "$python" -m venv "$venv" 2>/dev/null; then
  rm -rf "$venv"
  if command -v apt-get >/dev/null; then
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    ver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    echo "installing python3-venv (needed by '$python -m venv')"
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python${ver}-venv" || \
      $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
  fi
  "$python" -m venv "$venv"
fi
"$venv/bin/pip" install -q --upgrade pip
