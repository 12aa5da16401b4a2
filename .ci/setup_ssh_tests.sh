#!/usr/bin/env bash
# Prepares everything tests/ssh and bench/fleet_scaling.py need. Run as root; idempotent; seconds
# when everything is already there.
#   - Debian packages: OpenSSH server/client, iproute2 (ip netns, tc), nftables, util-linux (unshare),
#     qemu-user-static + binfmt-support (the emulated aarch64 device), chromium + chromium-driver
#     (the HTML report is opened in headless Chromium by tests/test_html_report.py), postgresql (the
#     shared history's tests start a server of their own in a temp dir, tests/lab/pgserver.py)
#   - /run/sshd (sshd's privilege-separation dir when run as root)
#   - binfmt_misc mounted and qemu-aarch64 enabled (with the F flag, so it works inside a chroot)
#   - the arm64 apt architecture and the cached aarch64 root file system
#     (~/.cache/harness-test/aarch64-rootfs/<recipe hash>, built by tests/ssh/aarch64.py)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "setup_ssh_tests: not root: the root-only SSH tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
packages=(openssh-server openssh-client iproute2 nftables util-linux procps qemu-user-static binfmt-support
          socat g++ chromium chromium-driver postgresql)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
updated=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get update -qq
  updated=1
fi
if [ ${#missing[@]} -gt 0 ]; then
  [ "$updated" = 1 ] || apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  updated=1
fi
# arm64 package lists present? (a machine where the architecture was added without an update)
if ! apt-cache policy python3.11:arm64 2>/dev/null | grep -q "Candidate: [0-9]"; then
  apt-get update -qq
fi
mkdir -p /run/sshd
chmod 755 /run/sshd
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
"$PY" tests/ssh/aarch64.py
