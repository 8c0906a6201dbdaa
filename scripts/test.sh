#!/usr/bin/env bash
# The test command: installs test prerequisites, then builds and runs every test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec mvn -B -ntp verify "$@"
