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
