#!/usr/bin/env bash
# Set up a fresh machine for harness: a virtualenv with harness and its extras, and (with --test-deps,
# as root) the Debian packages the tests use (sshd, nftables, qemu, socat, g++, postgresql).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[convert,onnx,tflm,serial,lab,dev]'
if [ "${1:-}" = "--test-deps" ]; then
  # Debian packages, sshd, binfmt/qemu and the cached aarch64 root fs (as root; else tests skip)
  .ci/setup_ssh_tests.sh
fi
