#!/usr/bin/env bash
# Set up (virtualenv, extras, test packages when root) and run the whole test suite.
#
# Without test paths in the arguments, two pytest sessions run side by side: tests/ssh and
# tests/lab (the emulated aarch64 device, sshd fleets, lab services: mostly one qemu core, or
# waiting) and everything else. Each runs its tests in order; the remote session's output is
# printed when both are done, and the exit status is the first failure's. With paths (or
# HARNESS_TEST_SERIAL=1), one plain pytest session runs what was asked.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test-deps

REMOTE=(tests/ssh tests/lab)
for arg in "$@"; do
  if [[ "$arg" != -* ]]; then HARNESS_TEST_SERIAL=1; fi
done
if [ "${HARNESS_TEST_SERIAL:-0}" = 1 ]; then
  exec .venv/bin/pytest "$@"
fi

log=$(mktemp -t harness-tests-remote.XXXXXX)
.venv/bin/pytest "$@" "${REMOTE[@]}" >"$log" 2>&1 &
remote=$!
trap 'kill "$remote" 2>/dev/null || true; rm -f "$log"' EXIT INT TERM
set +e
.venv/bin/pytest "$@" "${REMOTE[@]/#/--ignore=}"
local_status=$?
wait "$remote"
remote_status=$?
set -e
echo "---- tests/ssh, tests/lab (run beside the rest) ----"
cat "$log"
echo "---- local: exit $local_status; ssh/lab: exit $remote_status ----"
if [ "$local_status" -ne 0 ]; then exit "$local_status"; fi
exit "$remote_status"
