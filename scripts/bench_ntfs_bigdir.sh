#!/usr/bin/env bash
# Part of make bench: create then delete 2,000 files in a 40,000-entry
# directory shaped like Windows\System32 (long names, so that ntfs-3g's
# index $BITMAP is non-resident), through offvm (mount, work, unmount: the
# journaled commit included) against ntfs-3g (mount, work, umount) on
# copies of the same volume. Prints the ratio (>1.0: offvm is faster).
set -euo pipefail
cd "$(dirname "$0")/.."
OFFVM=${OFFVM:-$PWD/bin/offvm}
NAMES=${BENCH_DIR_NAMES:-40000}
CHANGES=${BENCH_DIR_CHANGES:-2000}
B=$(mktemp -d /var/tmp/offvm-bench-bigdir.XXXXXX)
trap 'mountpoint -q "$B/m3g" && umount "$B/m3g"; mountpoint -q "$B/moff" && "$OFFVM" unmount --discard "$B/moff"; rm -rf "$B"' EXIT
mkdir -p "$B/lib" "$B/m3g" "$B/moff"
truncate -s 512M "$B/lib/sys.img"
mkntfs -q -F -Q "$B/lib/sys.img" 2>/dev/null
ntfs-3g "$B/lib/sys.img" "$B/m3g"
mkdir -p "$B/m3g/Windows/System32"
(cd "$B/m3g/Windows/System32" && seq -f 'microsoft-windows-component-servicing-%05g-long-file-name-for-system32.dll' 0 $((NAMES - 1)) | xargs touch)
umount "$B/m3g"
cp --sparse=always "$B/lib/sys.img" "$B/sys-3g.img"

workload() { # directory: create CHANGES files, then delete them
  local d=$1 i
  for ((i = 0; i < CHANGES; i++)); do : >"$d/new-patch-file-$i-with-a-long-name.dll"; done
  # one rm for all: the file systems are timed, not 2,000 forks
  for ((i = 0; i < CHANGES; i++)); do echo "new-patch-file-$i-with-a-long-name.dll"; done | (cd "$d" && xargs rm)
}
run3g() { ntfs-3g "$B/sys-3g.img" "$B/m3g" && workload "$B/m3g/Windows/System32" && umount "$B/m3g"; }
runoff() { "$OFFVM" mount "$B/lib" "$B/moff" && workload "$B/moff/sys.img/p0/Windows/System32" && "$OFFVM" unmount "$B/moff" >/dev/null; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f", e-s}'; }
drop; t3g=$(secs run3g)
drop; toff=$(secs runoff)
printf '%-34s ntfs-3g %7.3fs   offvm %7.3fs   ratio %5.2f\n' "create+delete $CHANGES in $NAMES-dir" "$t3g" "$toff" \
  "$(awk -v a="$t3g" -v b="$toff" 'BEGIN{printf "%.2f", a/b}')"
