#!/usr/bin/env bash
# Set up a fresh machine for harness: a virtualenv with harness and its extras, and (with --test-deps,
# as root) the Debian packages the tests use (sshd, nftables, qemu, socat, g++, postgresql).
# Prints a few lines; pip and apt stay quiet unless something fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# pip, quiet; a pip configuration on this machine that names an index directory that does not
# exist (extra-index-url = file:///...) makes pip warn "Location '...' is ignored" on every
# package it looks up: that is the machine's set-up, not the project's, so those lines are dropped.
pip_quiet() {
  { .venv/bin/python -m pip --quiet --disable-pip-version-check "$@" 2>&1 1>&3 3>&- \
      | sed -u "/^WARNING: Location '.*' is ignored/d" >&2; } 3>&1
}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
echo "setup: installing harness into .venv (TensorFlow, LiteRT, ONNX Runtime, tflite-micro)"
pip_quiet install --upgrade pip
# (setuptools' note on editable installs is information, not a problem: not shown)
PYTHONWARNINGS="ignore:Editable installation" pip_quiet install -e '.[convert,onnx,tflm,serial,lab,dev]'
if [ "${1:-}" = "--test-deps" ]; then
  # Debian packages, sshd, binfmt/qemu and the cached aarch64 root fs (as root; else tests skip)
  echo "setup: test dependencies (Debian packages, sshd, qemu, aarch64 root file system)"
  .ci/setup_ssh_tests.sh
fi
echo "setup: done: .venv/bin/harness --help"
