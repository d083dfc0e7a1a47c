#!/usr/bin/env bash
# Builds the amtedge .deb and .rpm into OUTDIR (default dist/) with nfpm (`build.sh --print-version`: only print
# the package version); `make package` and
# packaging/packaging_test.go run it. Reproducible: the same commit, VERSION and SOURCE_DATE_EPOCH give
# byte-identical packages.
#
# Environment: NFPM (the nfpm v2.45.2 binary; the Makefile builds it), VERSION (the binary's version, default
# `git describe`), PKG_VERSION (the package version, default derived from VERSION), SOURCE_DATE_EPOCH (default:
# the last commit's time), GOARCH (default: go env GOARCH), CATALOG (default systemd/amtedge.catalog), GO,
# BINARY (a prebuilt amtedge; default: built here from ./daemon).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
GO=${GO:-go}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
# Debian and RPM versions must start with a digit and RPM's may not contain "-":
#   v1.2.3 -> 1.2.3;  v1.2.3-rc1 -> 1.2.3~rc1;  v1.2.3-4-gabcdef -> 1.2.3+4.gabcdef;
#   abcdef-dirty (no tag) -> 0.0.0+git.abcdef.dirty
if [ -z "${PKG_VERSION:-}" ]; then
	v=${VERSION#v}
	if echo "$v" | grep -Eq '^[0-9]+\.[0-9]+'; then
		PKG_VERSION=$(echo "$v" | sed -E 's/-(alpha|beta|rc)/~\1/; s/-([0-9]+)-g/+\1.g/; s/-/./g')
	else
		PKG_VERSION=0.0.0+git.$(echo "$v" | tr -- '-' '.')
	fi
fi
if [ "$out" = --print-version ]; then
	echo "$PKG_VERSION"
	exit 0
fi
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
GOARCH=${GOARCH:-$($GO env GOARCH)}
: "${NFPM:?set NFPM to the nfpm v2.45.2 binary (make package builds it into ~/.cache/amtedge/tools)}"
CATALOG=${CATALOG:-systemd/amtedge.catalog}
[ -f "$CATALOG" ] || { echo "build.sh: $CATALOG is missing (the journald catalog, written by appliance/events)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "${BINARY:-}" ]; then
	BINARY=$work/amtedge
	CGO_ENABLED=0 GOOS=linux GOARCH=$GOARCH $GO build -trimpath -buildvcs=false \
		-ldflags "-s -w -buildid= -X main.version=$VERSION" -o "$BINARY" ./daemon
fi

# gzip -n: no name or time stamp in the header, so the bytes depend on the content only.
MANPAGE=$work/amtedge.8.gz CHANGELOG=$work/changelog.gz
gzip -n -9 -c packaging/amtedge.8 >"$MANPAGE"
gzip -n -9 -c packaging/changelog >"$CHANGELOG"

mkdir -p "$out"
out=$(cd "$out" && pwd)
# nfpm reads its inputs from a snapshot: a file edited while nfpm copies it would break the archive.
src=$work/src
mkdir -p "$src"
cp -a nfpm.yaml README.md systemd packaging "$src/"
cp "$CATALOG" "$src/catalog"
cp "$BINARY" "$src/amtedge"
CATALOG=$src/catalog BINARY=$src/amtedge
export VERSION=$PKG_VERSION SOURCE_DATE_EPOCH GOARCH CATALOG BINARY MANPAGE CHANGELOG
case "$GOARCH" in amd64) rpmarch=x86_64 ;; arm64) rpmarch=aarch64 ;; *) rpmarch=$GOARCH ;; esac
(cd "$src" && "$NFPM" package --config nfpm.yaml --packager deb --target "$out/amtedge_${PKG_VERSION}_${GOARCH}.deb") >"$work/nfpm.log" || { cat "$work/nfpm.log" >&2; exit 1; }
(cd "$src" && "$NFPM" package --config nfpm.yaml --packager rpm --target "$out/amtedge-${PKG_VERSION}.${rpmarch}.rpm") >"$work/nfpm.log" || { cat "$work/nfpm.log" >&2; exit 1; }
echo "$out/amtedge_${PKG_VERSION}_${GOARCH}.deb"
echo "$out/amtedge-${PKG_VERSION}.${rpmarch}.rpm"
