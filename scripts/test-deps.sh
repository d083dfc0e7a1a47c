#!/usr/bin/env bash
# Installs the Debian packages listed in scripts/test-packages.txt that are missing, so `make test` works on a
# fresh Debian machine with Go. Needs root (or sudo) only when something is missing.
set -euo pipefail
cd "$(dirname "$0")"
missing=()
while read -r pkg; do
	pkg=${pkg%%#*}
	pkg=$(echo "$pkg" | tr -d '[:space:]')
	[ -z "$pkg" ] && continue
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done <test-packages.txt
[ ${#missing[@]} -eq 0 ] && exit 0
echo "test-deps: installing ${missing[*]}"
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
