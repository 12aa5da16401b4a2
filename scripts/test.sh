#!/usr/bin/env bash
# Set up (virtualenv, extras, test packages when root) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test-deps
exec .venv/bin/pytest "$@"
