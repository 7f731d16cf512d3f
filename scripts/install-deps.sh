#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Installs the Debian packages uraid needs to build, test and run. Idempotent: installs only
# what is missing, and does nothing (no network, no root) when everything is present.
set -euo pipefail

pkgs=(gcc make pkg-config libisal-dev liburing-dev libnbd-dev libnbd-bin nbdkit fio libgnutls28-dev gnutls-bin
      libjansson-dev clang-format python3 iproute2)
# make fuzz also needs clang and its libFuzzer runtime.
if [ "${1:-}" = "--fuzz" ]; then
	pkgs+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
	sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
