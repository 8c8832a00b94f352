#!/usr/bin/env bash
# The write figure of `make bench` alone (scripts/write-pair.sh), then
# where its time goes: each side's run split into its phases, timed apart
# (mount, cp into the mount, and the unmount that makes it durable:
# ntfs-3g's umount, daemon exit and fsync; offvm's commit), cold, the two
# sides interleaved.
#
#   OFFVM        the offvm under test (default bin/offvm)
#   WRITE_MIB    size of the big file (default 256, as make bench)
#   WRITE_FILES  files of 2,000 bytes (default 1000)
#   PAIRS        timed pairs of the figure and rounds of phases (default 5)
#   WRITE_PAIR=0 leaves out the figure (phases only)
#   BENCH_JSON   where the figure's record goes (default bin/bench-write.json)
# OFFVM_CPUPROFILE (cmd/offvm/profile.go) is passed on: the daemons write
# their profiles at unmount. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export OFFVM=${OFFVM:-$ROOT/bin/offvm}
export WRITE_MIB=${WRITE_MIB:-256} WRITE_FILES=${WRITE_FILES:-1000} PAIRS=${PAIRS:-5}
OUT_JSON=${BENCH_JSON:-$ROOT/bin/bench-write.json}
. scripts/bench-lib.sh
bench_scratch offvm-bench-write
pair() { "$BENCH_TOOL" pair -out "$RUNS" -pairs "$PAIRS" "$@"; }
. scripts/write-pair.sh
write_setup

echo "load before: $(cat /proc/loadavg)"
if [ "${WRITE_PAIR:-1}" != 0 ]; then
  write_pair
  "$BENCH_TOOL" report -in "$RUNS" -json "$OUT_JSON"
fi

# phases: the uptime clock (monotonic) around each step; differences by bc
now() { awk '{print $1}' /proc/uptime; }
phases() { # SIDE: prints "mount cp durable" seconds
  local R=$WB/$1 m=$B/m-$1 d a b c e
  rm -rf "${R:?}"/*; cp --sparse=always "$WB/base.img" "$R/vol.img"
  sync; echo 3 > /proc/sys/vm/drop_caches
  a=$(now)
  if [ "$1" = peer ]; then ntfs-3g "$R/vol.img" "$m"; d=$m; else "$OFFVM" mount "$R" "$m"; d=$m/vol.img/p0; fi
  b=$(now)
  mkdir "$d/w" && cp -r "$WB/src/." "$d/w/"
  c=$(now)
  if [ "$1" = peer ]; then peer_umount "$m" "$R/vol.img"; else "$OFFVM" unmount "$m" >/dev/null; fi
  e=$(now)
  echo "$(echo "$b - $a" | bc) $(echo "$c - $b" | bc) $(echo "$e - $c" | bc)"
  [ "$(write_check "$R/vol.img")" = "$(tree_sum "$WB/src")" ] || { echo "bench-write: $1 did not write the files" >&2; return 1; }
}
echo "phases (seconds: mount, cp into the mount, until durable), ${PAIRS} rounds, sides alternating:"
for p in $(seq 1 "$PAIRS"); do
  order="peer offvm"; [ $((p % 2)) = 0 ] && order="offvm peer"
  for s in $order; do r=$(phases "$s") || exit 1; echo "$s $r"; done
done | tee "$B/phases.txt"
awk '{ n[$1]++; m[$1, n[$1]] = $2; c[$1, n[$1]] = $3; d[$1, n[$1]] = $4 }
  function med(a, s, k,   i, j, t, v) { for (i = 1; i <= k; i++) v[i] = a[s, i]
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2 }
  END { for (s in n) printf "%-6s median: mount %.2fs  cp %.2fs  durable %.2fs\n", s, med(m, s, n[s]), med(c, s, n[s]), med(d, s, n[s]) }' "$B/phases.txt"
echo "load after: $(cat /proc/loadavg)"
