#!/usr/bin/env bash
# The rsync figures of `make bench` alone (scripts/rsync-pair.sh): rsync of
# RSYNC small files into a mounted NTFS volume, and a second rsync that
# finds nothing to copy, against ntfs-3g and, with OFFVM_BASE=path to an
# older offvm binary, that binary against this one (the base as the
# "peer": a ratio above 1 means OFFVM is faster than OFFVM_BASE).
#
#   OFFVM          the offvm under test (default bin/offvm)
#   OFFVM_BASE     an older offvm binary to compare with (default: none)
#   RSYNC          files (default 2000, as make bench)
#   PAIRS          timed pairs of each figure (default 5)
#   RSYNC_PEER=0   leaves out the ntfs-3g comparison
#   BENCH_JSON     where the records go (default bin/bench-rsync.json)
# OFFVM_CPUPROFILE (cmd/offvm/profile.go) is passed on. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export OFFVM=${OFFVM:-$ROOT/bin/offvm}
RSYNC=${RSYNC:-2000} PAIRS=${PAIRS:-5}
OUT_JSON=${BENCH_JSON:-$ROOT/bin/bench-rsync.json}
. scripts/bench-lib.sh
bench_scratch offvm-bench-rsync
pair() { "$BENCH_TOOL" pair -out "$RUNS" -pairs "$PAIRS" "$@"; }
. scripts/rsync-pair.sh
# the scan tree's first files (scan-tree.py is seeded: the same bytes as
# make bench's) and the write figure's empty volume
python3 scripts/scan-tree.py "$B/src" "$RSYNC"
truncate -s 768M "$B/empty.img"
mkntfs -q -F -Q -L write "$B/empty.img" 2>/dev/null
rsync_setup "$B/src/scan" "$B/empty.img" "$RSYNC"

echo "load before: $(cat /proc/loadavg)"
[ "${RSYNC_PEER:-1}" = 0 ] || rsync_pairs "" ntfs-3g
if [ -n "${OFFVM_BASE:-}" ]; then
  export RS_BASE=$OFFVM_BASE
  rsync_pairs -base "offvm (OFFVM_BASE)"
  unset RS_BASE
fi
echo "load after: $(cat /proc/loadavg)"
"$BENCH_TOOL" report -in "$RUNS" -json "$OUT_JSON"
echo "records: $OUT_JSON"
