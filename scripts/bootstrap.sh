#!/usr/bin/env bash
# Installs the Debian packages lunet needs to build and test (idempotent: a second run
# installs nothing). Run by `make test` and `make demo`; safe to run by hand.
# Set LUNET_BENCH=1 to also install the CPU references used by bench/ (python3-torch,
# python3-torchvision).
set -euo pipefail

pkgs=(build-essential cmake pkg-config
      lua5.4 liblua5.4-dev lua-busted
      libdnnl-dev libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev
      dataset-fashion-mnist)
[ "${LUNET_BENCH:-0}" = 1 ] && pkgs+=(python3-torch python3-torchvision)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "bootstrap: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
