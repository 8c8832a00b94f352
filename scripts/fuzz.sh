#!/usr/bin/env bash
# make fuzz: runs every fuzz target for FUZZTIME (default 30s) each. New
# crashers land in the package's testdata/fuzz and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${FUZZTIME:-30s}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/func //' | sort -u); do
    echo "== $pkg $f"
    go test -run XXX -fuzz "^$f\$" -fuzztime "$T" -fuzzminimizetime 100x "$pkg"
  done
done
