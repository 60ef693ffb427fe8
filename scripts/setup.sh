#!/usr/bin/env bash
# Installs what a fresh machine lacks (Debian packages: iproute2, user-mode-linux for the kernel suite,
# iperf3, ping, ethtool, libssl-dev for the ESP codec, clang for the fuzzers) and builds tunctl: `npm ci` compiles
# the TypeScript and the native encapsulator addon.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in iproute2 user-mode-linux kmod iputils-ping iperf3 procps ethtool gcc make g++ python3 groff-base libssl-dev clang; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
npm ci --no-audit --no-fund
