#!/usr/bin/env bash
# The parallel-scan figure of `make bench` alone (scripts/scan-pair.sh:
# `find | xargs -P4 sha256sum` over SCAN files of 4-64 KiB, cold), for
# working on it: offvm against ntfs-3g and, with OFFVM_BASE=path to an older
# offvm binary, that binary against this one (A/B, the base as the "peer":
# a ratio above 1 means OFFVM is faster than OFFVM_BASE).
#
#   OFFVM       the offvm under test (default bin/offvm)
#   OFFVM_BASE  an older offvm binary to compare with (default: none)
#   SCAN        files in the tree (default 20000, as make bench)
#   PAIRS       timed pairs of each comparison (default 5)
#   SCAN_KEEP   folder that keeps the source tree and the NTFS image between
#               runs (built there when absent); default: a scratch folder
#   SCAN_PEER=0 leaves out the ntfs-3g comparison
#   BENCH_JSON  where the records go (default bin/bench-scan.json)
# OFFVM_CPUPROFILE (cmd/offvm/profile.go) is passed on: the daemons write
# their profiles when this script unmounts them. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export OFFVM=${OFFVM:-$ROOT/bin/offvm}
SCAN=${SCAN:-20000}
export PAIRS=${PAIRS:-5}
OUT_JSON=${BENCH_JSON:-$ROOT/bin/bench-scan.json}
B=$(mktemp -d /var/tmp/offvm-bench-scan.XXXXXX)
K=${SCAN_KEEP:-$B/keep}
RUNS=$B/runs.jsonl
mkdir -p "$B/m-peer" "$B/m-offvm" "$B/m-base" "$K"

cleanup() {
  for m in "$B"/m-*; do
    mountpoint -q "$m" || continue
    case $m in
      */m-peer) umount "$m" || umount -l "$m" ;;
      */m-base) "$OFFVM_BASE" unmount "$m" >/dev/null || umount -l "$m" ;;
      *) "$OFFVM" unmount "$m" >/dev/null || umount -l "$m" ;;
    esac
  done
  rm -rf "$B"
}
trap cleanup EXIT

go build -o "$B/bench-tool" ./scripts/bench-tool
BENCH_TOOL=$B/bench-tool
. scripts/bench-lib.sh
. scripts/scan-pair.sh

# the volume: built once into SCAN_KEEP, with the tree it was built from
if [ ! -f "$K/lib/vol.img" ] || [ "$(cat "$K/files" 2>/dev/null)" != "$SCAN" ]; then
  echo "building a ${SCAN}-file scan tree and its NTFS volume in $K ..."
  rm -rf "$K/src" "$K/lib" "$K/files"
  mkdir -p "$K/src" "$K/lib" "$B/fill"
  python3 scripts/scan-tree.py "$K/src" "$SCAN"
  truncate -s $((SCAN * 40 / 1000 + 256))M "$K/lib/vol.img"
  mkntfs -q -F -Q -L scan "$K/lib/vol.img" 2>/dev/null
  ntfs-3g "$K/lib/vol.img" "$B/fill"
  cp -r "$K/src/scan" "$B/fill/scan"
  peer_umount "$B/fill" "$K/lib/vol.img"
  echo "$SCAN" > "$K/files"
fi

echo "load before: $(cat /proc/loadavg)"
"$OFFVM" mount --ro --pid-file "$B/offvm.pid" "$K/lib" "$B/m-offvm"
O=$B/m-offvm/vol.img/p0/scan
if [ "${SCAN_PEER:-1}" != 0 ]; then
  ntfs-3g -o ro "$K/lib/vol.img" "$B/m-peer"
  daemons='if [ $SIDE = peer ]; then pgrep -f "^ntfs-3g -o ro '"$K"'/lib/vol.img"; else cat "'"$B"'/offvm.pid"; fi'
  pair() { "$BENCH_TOOL" pair -out "$RUNS" -pairs "$PAIRS" -pids "$daemons" "$@"; }
  scan_pair "$B/m-peer/scan" "$O" "$K/src/scan"
  umount "$B/m-peer"
fi
if [ -n "${OFFVM_BASE:-}" ]; then
  "$OFFVM_BASE" mount --ro --pid-file "$B/base.pid" "$K/lib" "$B/m-base"
  daemons='if [ $SIDE = peer ]; then cat "'"$B"'/base.pid"; else cat "'"$B"'/offvm.pid"; fi'
  pair() { "$BENCH_TOOL" pair -out "$RUNS" -pairs "$PAIRS" -pids "$daemons" "$@"; }
  scan_pair "$B/m-base/vol.img/p0/scan" "$O" "$K/src/scan" -id parallel-scan-base -peer "offvm (OFFVM_BASE)"
  "$OFFVM_BASE" unmount "$B/m-base" >/dev/null
fi
"$OFFVM" unmount "$B/m-offvm" >/dev/null
echo "load after: $(cat /proc/loadavg)"
"$BENCH_TOOL" report -in "$RUNS" -json "$OUT_JSON"
echo "records: $OUT_JSON"
