#!/usr/bin/env bash
# Makes a fresh clone runnable: npm dependencies, then a build when sources changed.
# Prints progress only when it does something. Usage: setup.sh [command]
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"

if ! command -v node >/dev/null 2>&1; then
  echo "berth: Node.js 20 or newer is required (apt-get install nodejs npm)" >&2
  exit 1
fi

# One setup at a time: `berth up` and `berth env` may start together on a fresh clone.
exec 9>"$root/.setup.lock"
flock 9

# The instance agent's container runtime drives these Debian packages. As root, `up` and
# `test` install the missing ones (apt-get update only when something is missing); otherwise
# this costs a few dpkg-query calls (milliseconds).
if [ "$(id -u)" = 0 ] && { [ "${1:-}" = up ] || [ "${1:-}" = test ] || [ "${1:-}" = registry ]; } && command -v dpkg-query >/dev/null 2>&1; then
  runtime_pkgs="runc conmon skopeo umoci docker-registry busybox-static golang-github-containers-common tini iproute2 nftables openssl e2fsprogs"
  # The security tests capture the bridge (test/security/agent-channel.test.ts).
  if [ "${1:-}" = test ]; then runtime_pkgs="$runtime_pkgs tcpdump"; fi
  missing=""
  for p in $runtime_pkgs; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "berth: installing container runtime packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $missing >/dev/null
  fi
fi

stamp=node_modules/.berth-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "berth: installing npm dependencies..."
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

build_stamp=dist/.tsbuildinfo
if [ ! -f "$build_stamp" ] || [ -n "$(find src test bench models tsconfig.json package.json -newer "$build_stamp" -print -quit 2>/dev/null)" ]; then
  echo "berth: building..."
  npx tsc -p tsconfig.json
  touch "$build_stamp"
fi
