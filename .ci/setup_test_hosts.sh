#!/usr/bin/env bash
# Debian packages the integration tests need (run as root; idempotent).
set -euo pipefail
packages=(openssh-server openssh-client iproute2 nftables socat qemu-user-static binfmt-support)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
mkdir -p /run/sshd
