#!/usr/bin/env bash
# Install everything the toolkit, its lab and its tests need on a fresh Debian 12 machine:
# Debian packages, a Python venv at .venv with the project installed, and the lab's builds.
# Idempotent: a second run only checks. Needs root (apt, network namespaces).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

if [ "$(id -u)" -ne 0 ]; then
  echo "lab/setup.sh: needs root (apt-get, network namespaces); run it with sudo" >&2
  exit 1
fi

APT_PACKAGES=(
  python3 python3-venv python3-dev gcc
  iproute2 nftables procps psmisc util-linux openssl ca-certificates openssh-client
  bind9 bind9-utils bind9-dnsutils
  golang-go golang-github-vmware-govmomi-dev
  mmdebstrap zstd patch
  haproxy nginx libnginx-mod-stream wrk keepalived
  chromium
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian packages' own daemons are not wanted: the lab runs its own instances.
for svc in named bind9 haproxy nginx keepalived; do
  if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: Python >= 3.11 is needed (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.exha-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q -U pip
  .venv/bin/pip install -q -e '.[test,lab]'
  touch "$stamp"
fi
echo "setup: ready (venv: $here/.venv)"
