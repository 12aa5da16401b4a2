#!/usr/bin/env bash
# Set up a fresh machine for harness: a virtualenv with harness and its extras, and (as root, or with
# HARNESS_SETUP_APT=1 and sudo) the Debian packages the tests use (sshd, nftables, qemu, socat).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[convert,onnx,tflm,serial,dev]'
if [ "${1:-}" = "--test-deps" ] && [ -x .ci/setup_test_hosts.sh ]; then
  if [ "$(id -u)" = 0 ]; then
    .ci/setup_test_hosts.sh
  else
    echo "note: not root: skipping Debian test packages (SSH/netns/qemu tests will be skipped)" >&2
  fi
fi
