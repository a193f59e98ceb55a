#!/usr/bin/env bash
# fuzz.sh: run every Fuzz* target of every package for ${FUZZTIME:-15s} each.
# go test -fuzz takes one target of one package at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-15s}
n=0
for pkg in $(go list ./...); do
	# -list prints the matching names, then "ok pkg ..."; only Fuzz lines count.
	targets=$(go test -list '^Fuzz' "$pkg" | grep -E '^Fuzz' || true)
	for target in $targets; do
		echo "fuzz: $pkg $target for $fuzztime"
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg"
		n=$((n + 1))
	done
done
echo "fuzz: ran $n targets"
