#!/usr/bin/env bash
# `make fuzz`: run every `go test -fuzz` target for the given time each (default 30s). The seed corpora in
# testdata/fuzz/ also run as ordinary tests in `make test`.
set -euo pipefail
fuzztime=${1:-30s}
cd "$(dirname "$0")/.."
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do
	dir=$(dirname "$file")
	for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
		echo "== $dir $name ($fuzztime)"
		# A short minimisation budget: minimising large inputs otherwise stalls a run on a small machine.
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$dir"
	done
done
