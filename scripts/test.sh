#!/usr/bin/env bash
# Set up (virtualenv, extras, test packages when root) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test-deps
# two workers, one per test group (tests/conftest.py: the emulated and remote devices beside the rest)
exec .venv/bin/pytest -n 2 --dist loadgroup "$@"
