#!/usr/bin/env bash
# Runs the whole test suite (unit, API, end-to-end) after setting up a fresh clone.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$root"
scripts/setup.sh test
exec node --enable-source-maps --test --test-concurrency="${BERTH_TEST_CONCURRENCY:-2}" "$@" dist/test/
