#!/usr/bin/env bash
# Part of make bench (scripts/bench.sh runs it with B, OFFVM, RUNS,
# BENCH_TOOL, PAIRS and BENCH_QUICK set and the functions pair and
# peer_umount exported); alone, it builds what it needs and prints its
# figure. Create then delete 2,000 files in a 40,000-entry directory shaped
# like Windows\System32 (long names, so that the index $BITMAP is
# non-resident), through offvm (mount, work, unmount: the journaled commit
# included) against ntfs-3g (mount, work, umount until its daemon is gone)
# on fresh copies of the same volume, A/B interleaved by bench-tool. After
# every run the written image is checked: ntfsresize --info passes, ntfs-3g
# reads the directory back with its 40,000 names and none of the new ones,
# and $MFT (read by ntfscat) holds 2,000 records used and freed since the
# volume was made (a side that made nothing fails the check).
# Alone, for working on it: OFFVM_BASE=path to an older offvm binary adds
# that binary against this one (the base as the "peer": above 1, OFFVM is
# faster), BIGDIR_PEER=0 leaves out ntfs-3g, BENCH_JSON names the records
# (default bin/bench-bigdir.json); OFFVM_CPUPROFILE reaches the daemons.
set -euo pipefail
cd "$(dirname "$0")/.."
export OFFVM=${OFFVM:-$PWD/bin/offvm}
if [ -n "${BENCH_QUICK:-}" ]; then
  NAMES=${BENCH_DIR_NAMES:-4000} CHANGES=${BENCH_DIR_CHANGES:-200}
else
  NAMES=${BENCH_DIR_NAMES:-40000} CHANGES=${BENCH_DIR_CHANGES:-2000}
fi
export CHANGES
if [ -z "${BENCH_TOOL:-}" ]; then # run alone: what bench.sh would provide
  export BIGDIR_ALONE=1 OFFVM_BASE=${OFFVM_BASE:-}
  export B=$(mktemp -d /var/tmp/offvm-bench-bigdir.XXXXXX) PAIRS=${BENCH_PAIRS:-${PAIRS:-5}}
  export RUNS=$B/runs.jsonl BENCH_TOOL=$B/bench-tool
  mkdir -p "$B/m-peer" "$B/m-offvm"
  trap 'for m in "$B"/m-*; do mountpoint -q "$m" && { "$OFFVM" unmount --discard "$m" 2>/dev/null || umount "$m"; }; done; rm -rf "$B"' EXIT
  go build -o "$BENCH_TOOL" ./scripts/bench-tool
  pair() { "$BENCH_TOOL" pair -out "$RUNS" -pairs "$PAIRS" "$@"; }
  peer_umount() { umount "$1"; while pgrep -a ntfs-3g | grep -qF -- "$2"; do sleep 0.05; done; sync "$2"; }
  export -f peer_umount
fi
export DB=$B/bigdir
mkdir -p "$DB/fill" "$DB/peer" "$DB/offvm"
truncate -s 512M "$DB/sys.img"
mkntfs -q -F -Q "$DB/sys.img" 2>/dev/null
ntfs-3g "$DB/sys.img" "$DB/fill"
mkdir -p "$DB/fill/Windows/System32"
(cd "$DB/fill/Windows/System32" && seq -f 'microsoft-windows-component-servicing-%05g-long-file-name-for-system32.dll' 0 $((NAMES - 1)) | xargs touch)
peer_umount "$DB/fill" "$DB/sys.img"
ntfscat -f "$DB/sys.img" '$MFT' >"$DB/before.mft"

# How many MFT records the run used and freed, from $MFT as ntfscat reads
# it against the same before the run: a record freed again is not in use
# and its sequence number moved on (a record the run added to $MFT has one
# of 2 or more; one $MFT growth formatted and left unused has 1). Both
# engines keep the records of deleted files, so a side that made nothing
# frees none. (Names are no proof: ntfs-3g leaves a freed record's bytes
# past its end, offvm clears them.)
records_freed() { # BEFORE.mft IMAGE
  ntfscat -f "$2" '$MFT' | python3 -c '
import struct, sys
rs = lambda d: [d[i:i + 1024] for i in range(0, len(d) - 1023, 1024)]
before, after = rs(open(sys.argv[1], "rb").read()), rs(sys.stdin.buffer.read())
freed = 0
for i, r in enumerate(after):
    if r[:4] != b"FILE" or struct.unpack_from("<H", r, 0x16)[0] & 1:
        continue
    seq = struct.unpack_from("<H", r, 0x10)[0]
    b = before[i] if i < len(before) else b""
    old = struct.unpack_from("<H", b, 0x10)[0] if b[:4] == b"FILE" else None
    freed += seq != old if old is not None else seq >= 2
print(freed)' "$1"
}

bigdir_work() { # DIRECTORY: create CHANGES files, then delete them
  local d=$1 i
  for ((i = 0; i < CHANGES; i++)); do : >"$d/new-patch-file-$i-with-a-long-name.dll"; done
  # one rm for all: the file systems are timed, not 2,000 forks
  for ((i = 0; i < CHANGES; i++)); do echo "new-patch-file-$i-with-a-long-name.dll"; done | (cd "$d" && xargs rm)
}
bigdir_check() { # IMAGE: prints the same line for every run that did the work
  ntfsresize --info --force --no-progress-bar "$1" >/dev/null || { echo "ntfsresize --info refused $1" >&2; return 1; }
  local m n left
  m=$(mktemp -d); ntfs-3g -o ro "$1" "$m"
  n=$(ls -f "$m/Windows/System32" | grep -vc '^\.\.\?$' || true)
  left=$(ls -f "$m/Windows/System32" | grep -c '^new-patch-file-' || true)
  umount "$m"; rmdir "$m"
  echo "System32 holds $n names, $left new; $(records_freed "$DB/before.mft" "$1") MFT records used and freed"
}
export -f records_freed bigdir_work bigdir_check

[ "${BIGDIR_PEER:-1}" = 0 ] || pair -id ntfs-bigdir -label "create + delete $CHANGES files in a $NAMES-entry directory, mount to durable" -peer ntfs-3g -cold \
  -ra "$DB/peer" -rb "$DB/offvm" \
  -setup 'rm -rf "$R"/*; cp --sparse=always "$DB/sys.img" "$R/sys.img"' \
  -run-a 'ntfs-3g "$R/sys.img" "$B/m-peer" && bigdir_work "$B/m-peer/Windows/System32" && peer_umount "$B/m-peer" "$R/sys.img"' \
  -run-b '"$OFFVM" mount "$R" "$B/m-offvm" && bigdir_work "$B/m-offvm/sys.img/p0/Windows/System32" && "$OFFVM" unmount "$B/m-offvm" >/dev/null' \
  -check 'bigdir_check "$R/sys.img"' -expect "echo 'System32 holds $NAMES names, 0 new; $CHANGES MFT records used and freed'"
if [ -n "${BIGDIR_ALONE:-}" ] && [ -n "${OFFVM_BASE:-}" ]; then
  pair -id ntfs-bigdir-base -label "create + delete $CHANGES files in a $NAMES-entry directory, mount to durable" -peer "offvm (OFFVM_BASE)" -cold \
    -ra "$DB/peer" -rb "$DB/offvm" \
    -setup 'rm -rf "$R"/*; cp --sparse=always "$DB/sys.img" "$R/sys.img"' \
    -run-a '"$OFFVM_BASE" mount "$R" "$B/m-peer" && bigdir_work "$B/m-peer/sys.img/p0/Windows/System32" && "$OFFVM_BASE" unmount "$B/m-peer" >/dev/null' \
    -run-b '"$OFFVM" mount "$R" "$B/m-offvm" && bigdir_work "$B/m-offvm/sys.img/p0/Windows/System32" && "$OFFVM" unmount "$B/m-offvm" >/dev/null' \
    -check 'bigdir_check "$R/sys.img"' -expect "echo 'System32 holds $NAMES names, 0 new; $CHANGES MFT records used and freed'"
fi
rm -rf "$DB"
if [ -n "${BIGDIR_ALONE:-}" ]; then
  "$BENCH_TOOL" report -in "$RUNS" -json "${BENCH_JSON:-bin/bench-bigdir.json}"
fi
