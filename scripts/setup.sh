#!/usr/bin/env bash
# Installs what minik and its tests need on a Debian 12 machine (run as root).
set -euo pipefail

packages=(
	ca-certificates git iproute2 iptables
	containerd runc containernetworking-plugins busybox-static
	etcd-server
	systemd nftables netcat-openbsd bind9-dnsutils
)

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Go: the toolchain named in go.mod is fetched through the module proxy by
# any Go from 1.21 on.
if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		echo "setup: add /usr/local/go/bin to PATH" >&2
	else
		echo "setup: Go 1.21 or newer is required (https://go.dev/dl)" >&2
	fi
	exit 1
fi
# The upgrade test builds the previous release from the repository's
# history, which a shallow clone lacks.
repo="$(cd "$(dirname "$0")/.." && pwd)"
if [ "$(git -C "$repo" rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then
	git -C "$repo" fetch --unshallow --quiet ||
		echo "setup: could not fetch the repository's history; TestIntegrationUpgrade will fail" >&2
fi
echo "setup: ok ($(go version))"
