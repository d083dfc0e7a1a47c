#!/bin/sh
# vendor-ui.sh fetches the web UI's third-party assets from the npm registry with `npm pack`, checks each
# tarball against the npm integrity (sha512) pinned below, copies the needed dist files and the package's
# LICENSE under appliance/ui/static/vendor/<pkg>/, and writes VENDOR.md with every file's sha256.
#
#   scripts/vendor-ui.sh           re-fetch, verify, and rewrite the vendored files
#   scripts/vendor-ui.sh --check   re-fetch, verify, and fail if the committed files differ
#
# There is no Node build step: the files are served as npm publishes them.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/appliance/ui/static/vendor"
check=0
[ "${1:-}" = "--check" ] && check=1

# package@version | npm integrity | files to keep (relative to package/)
pins='htmx.org@2.0.11|sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA==|dist/htmx.min.js LICENSE
htmx-ext-sse@2.2.4|sha512-LJmxVhykyflBWgh5PvbRidcyuqMHlgfajmmzumvKctv9puvsufeH6OaejSMZTNTnEI8O2wXXn4ZZtBdpEMqmEQ==|dist/sse.min.js LICENSE
@picocss/pico@2.1.1|sha512-kIDugA7Ps4U+2BHxiNHmvgPIQDWPDU4IeU6TNRdvXQM1uZX+FibqDQT2xUOnnO2yq/LUHcwnGlu1hvf4KfXnMg==|css/pico.min.css LICENSE.md'

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/out"
mkdir -p "$out"

{
	echo "# Vendored UI assets"
	echo
	echo "Fetched from the npm registry by \`scripts/vendor-ui.sh\` (\`npm pack\`), verified against the npm"
	echo "integrity below before use. Served as published; there is no build step. Do not edit these files."
	echo
	echo "| package | version | npm integrity | file | sha256 |"
	echo "|---|---|---|---|---|"
} >"$out/VENDOR.md"

echo "$pins" | while IFS='|' read -r spec integrity files; do
	name=${spec%@*}
	version=${spec##*@}
	tgz=$(cd "$work" && npm pack --silent "$spec")
	got="sha512-$(openssl dgst -sha512 -binary "$work/$tgz" | base64 -w0)"
	if [ "$got" != "$integrity" ]; then
		echo "vendor-ui: $spec: integrity $got, want $integrity" >&2
		exit 1
	fi
	dir="$out/$(basename "$name")"
	mkdir -p "$dir" "$work/x-$version-$(basename "$name")"
	tar -xzf "$work/$tgz" -C "$work/x-$version-$(basename "$name")"
	for f in $files; do
		cp "$work/x-$version-$(basename "$name")/package/$f" "$dir/$(basename "$f")"
		sum=$(sha256sum "$dir/$(basename "$f")" | cut -d' ' -f1)
		echo "| $name | $version | \`$integrity\` | $(basename "$name")/$(basename "$f") | \`$sum\` |" >>"$out/VENDOR.md"
	done
done

if [ "$check" = 1 ]; then
	if ! diff -r "$out" "$dest" >/dev/null; then
		diff -r "$out" "$dest" >&2 || true
		echo "vendor-ui: committed files differ from the registry's; run scripts/vendor-ui.sh" >&2
		exit 1
	fi
	echo "vendor-ui: vendored files match the pinned packages"
	exit 0
fi
rm -rf "$dest"
mkdir -p "$dest"
cp -r "$out"/. "$dest"/
echo "vendor-ui: wrote $dest"
