#!/usr/bin/env bash
# make bench: offvm against the tools users know (ntfs-3g, hivex, rsync and
# clamscan through ntfs-3g), on the same content. Every figure is measured
# A/B interleaved by scripts/bench-tool: a warm-up of each side whose work is
# checked (same bytes read, same files written, the written image checked by
# ntfs-3g), then PAIRS timed pairs, the page cache dropped before each cold
# run; printed as medians and the median pair ratio with its min–max
# (> 1: offvm is faster). Results: bench.json (BENCH_JSON), and with
# BENCH_README=1 the README's table is rewritten from it.
#
# BENCH_SKIP_READS=1 leaves out the read figures (and the scan tree and
# container copies they need): for finishing a run that stopped after them.
# BENCH_QUICK=1: small sizes and 2 pairs, a smoke test of the whole script
# (a couple of minutes; no number means anything). A benchmark, not a test:
# it fails only when the two sides did not do the same work. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export OFFVM=${OFFVM:-$ROOT/bin/offvm}
if [ -n "${BENCH_QUICK:-}" ]; then
  SIZE_MIB=64 FILES=500 SCAN=1000 RSYNC=200 WRITE_MIB=32 WRITE_FILES=200 REG_KEYS=200 PAIRS=${BENCH_PAIRS:-2} BT=1x
else
  SIZE_MIB=1024 FILES=5000 SCAN=20000 RSYNC=2000 WRITE_MIB=256 WRITE_FILES=1000 REG_KEYS=2000 PAIRS=${BENCH_PAIRS:-5} BT=5x
fi
export PAIRS
# a smoke run never overwrites the figures of a full one
if [ -n "${BENCH_QUICK:-}" ]; then OUT_JSON=${BENCH_JSON:-$ROOT/bin/bench-quick.json}; else OUT_JSON=${BENCH_JSON:-$ROOT/bench.json}; fi
# peer_umount, tree_sum, bench_scratch
. scripts/bench-lib.sh
bench_scratch offvm-bench
pair() { "$BENCH_TOOL" pair -out "$RUNS" -pairs "$PAIRS" "$@"; }
single() { "$BENCH_TOOL" single -out "$RUNS" -pairs "$PAIRS" "$@"; }
export -f pair single

# the parallel-scan figure, shared with scripts/bench-scan.sh
. scripts/scan-pair.sh
# the write figure, shared with scripts/bench-write.sh
. scripts/write-pair.sh
# the rsync figures, shared with scripts/bench-rsync.sh
. scripts/rsync-pair.sh

# --- the read volume: a big file, a directory of small files, a scan tree ---
VOL_MIB=$((SIZE_MIB + FILES * 4 / 1000 + SCAN * 40 / 1000 + 256))
echo "building a ${VOL_MIB} MiB NTFS volume: ${SIZE_MIB} MiB file, ${FILES} small files, ${SCAN}-file scan tree ..."
mkdir -p "$B/lib" "$B/fill" "$B/src"
python3 scripts/scan-tree.py "$B/src" "$SCAN"
truncate -s ${VOL_MIB}M "$B/lib/vol.img"
mkntfs -q -F -Q -L bench "$B/lib/vol.img" 2>/dev/null
ntfs-3g "$B/lib/vol.img" "$B/fill"
head -c "${SIZE_MIB}M" /dev/urandom > "$B/fill/big.bin"
mkdir "$B/fill/many"
head -c $((FILES * 2000)) /dev/urandom | (cd "$B/fill/many" && split -b 2000 -a 5 -d - file-)
[ -n "${BENCH_SKIP_READS:-}" ] || cp -r "$B/src/scan" "$B/fill/scan"
peer_umount "$B/fill" "$B/lib/vol.img"

# clamscan with one signature, the hash of one file of the tree: the scan
# must find it, so a scan that skipped files shows.
MARK=$(find "$B/src/scan" -type f | sort | sed -n 7p)
echo "$(md5sum < "$MARK" | cut -c1-32):$(stat -c %s "$MARK"):Bench.Marker" > "$B/bench.hdb"

if [ -z "${BENCH_SKIP_READS:-}" ]; then
# the same volume in every container format, in one offvm library
for fmt in qcow2 vhdx vmdk vpc; do
  qemu-img convert -O "$fmt" "$B/lib/vol.img" "$B/lib/vol.$fmt"
done
ntfs-3g -o ro "$B/lib/vol.img" "$B/m-peer"
"$OFFVM" mount --ro --pid-file "$B/offvm.pid" "$B/lib" "$B/m-offvm"
P=$B/m-peer O=$B/m-offvm/vol.img/p0
# the two daemons serve every run: their CPU time counts with the run's
daemons='if [ $SIDE = peer ]; then pgrep -f "^ntfs-3g -o ro $B/lib/vol.img"; else cat "$B/offvm.pid"; fi'
pair() { "$BENCH_TOOL" pair -out "$RUNS" -pairs "$PAIRS" -pids "$daemons" "$@"; }
echo
for fmt in img qcow2 vhdx vmdk vpc; do
  name=$fmt; [ "$fmt" = img ] && name=raw; [ "$fmt" = vpc ] && name=vhd
  pair -id "cold-read-$name" -label "cold read ${SIZE_MIB} MiB file ($name)" -peer ntfs-3g -cold -same-output \
    -ra "$P" -rb "$B/m-offvm/vol.$fmt/p0" -run 'cat "$R/big.bin"'
done
pair -id ls-l -label "ls -l of ${FILES} files" -peer ntfs-3g -cold \
  -ra "$P" -rb "$O" -run 'ls -l "$R/many"' -verify 'ls "$R/many" | sha256sum'
pair -id stat-read -label "stat + read of ${FILES} small files" -peer ntfs-3g -cold -same-size \
  -ra "$P" -rb "$O" -run 'find "$R/many" -type f -exec cat {} +' -verify 'tree_sum "$R/many"'
scan_pair "$P/scan" "$O/scan" "$B/src/scan"
pair -id clamscan -label "clamscan -r, the same ${SCAN} files" -peer ntfs-3g -cold -same-output \
  -ra "$P" -rb "$O" \
  -run "cd \"\$R/scan\" && { clamscan -r -d '$B/bench.hdb' . || [ \$? -eq 1 ]; } | grep -E 'FOUND|^Scanned files|^Data scanned' | sort"
"$OFFVM" unmount "$B/m-offvm"
umount "$B/m-peer"
pair() { "$BENCH_TOOL" pair -out "$RUNS" -pairs "$PAIRS" "$@"; }
fi

# --- guestmount (libguestfs), where it is installed: the tool users know. ---
# Without /dev/kvm its appliance runs under TCG (emulated CPU): the labels
# say so. Fewer pairs: each launch boots a VM.
if [ -n "${BENCH_QUICK:-}" ]; then
  echo "guestmount figures are left out of BENCH_QUICK (each launch boots a VM)" >&2
elif command -v guestmount >/dev/null; then
  # KVM inside this VM fails (qemu cannot set its MSRs): TCG unless told
  accel=TCG; [ -n "${BENCH_GUESTFS_KVM:-}" ] && accel=KVM
  [ $accel = TCG ] && export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
  GP=$(( PAIRS < 3 ? PAIRS : 3 )) GD=$(( PAIRS < 2 ? PAIRS : 2 ))
  export LIBGUESTFS_BACKEND=direct
  gm_mount() { guestmount --ro --format=raw -a "$B/lib/vol.img" -m /dev/sda "$1"; }
  export -f gm_mount
  pair -id guestmount-launch -label "mount, ls, unmount (guestmount under $accel)" -peer guestmount -pairs "$GP" -same-output \
    -ra "$B/m-peer" -rb "$B/m-offvm" \
    -run-a 'gm_mount "$R" && ls "$R" && guestunmount "$R"' \
    -run-b '"$OFFVM" mount --ro "$B/lib" "$R" && ls "$R/vol.img/p0" && "$OFFVM" unmount "$R" >/dev/null' ||
    echo "guestmount figure failed (see above): left out" >&2
  gm_setup='if [ $SIDE = peer ]; then gm_mount "$R"; else "$OFFVM" mount --ro "$B/lib" "$R"; fi'
  gm_teardown='if [ $SIDE = peer ]; then guestunmount "$R"; else "$OFFVM" unmount "$R" >/dev/null; fi'
  gm_dir='d=$R; [ $SIDE = offvm ] && d=$R/vol.img/p0'
  pair -id guestmount-stat-read -label "stat + read of ${FILES} small files (guestmount under $accel)" -peer guestmount -pairs "$GD" -cold -same-size \
    -ra "$B/m-peer" -rb "$B/m-offvm" -setup "$gm_setup" -teardown "$gm_teardown" \
    -run "$gm_dir"'; find "$d/many" -type f -exec cat {} +' || echo "guestmount figure failed (see above): left out" >&2
  pair -id guestmount-cold-read -label "cold read ${SIZE_MIB} MiB file (guestmount under $accel)" -peer guestmount -pairs "$GD" -cold -same-output \
    -ra "$B/m-peer" -rb "$B/m-offvm" -setup "$gm_setup" -teardown "$gm_teardown" \
    -run "$gm_dir"'; cat "$d/big.bin"' || echo "guestmount figure failed (see above): left out" >&2
else
  echo "guestmount (apt-get install guestmount linux-image-amd64) not installed: no comparison with it" >&2
fi

# --- writing until durable: ntfs-3g umount against offvm's journaled commit ---
write_setup
write_pair

# --- rsync into a mounted volume, and a second rsync that finds nothing ---
rsync_setup "$B/src/scan" "$WB/base.img" "$RSYNC"
rsync_pairs "" ntfs-3g

# --- commit cost follows the change, not the image (go test -bench) ---
go test -c -o "$B/mount.test" ./mount
(cd mount && "$B/mount.test" -test.run XXX -test.bench Commit10MiB -test.benchtime "$BT") | tee "$B/commit.txt" | grep Benchmark || true
awk '/^BenchmarkCommit10MiB\// { split($1, a, "/"); sub(/-[0-9]+$/, "", a[2]);
  printf "{\"id\":\"commit-10mib-%s\",\"label\":\"commit of 10 MiB into a 100 GiB dynamic %s (go test -bench, mean)\",\"unit\":\"ms\",\"offvm_s\":[%.1f]}\n", a[2], a[2], $3/1e6 }' \
  "$B/commit.txt" >> "$RUNS"

# where a commit's time goes: 64 MiB staged, journaled, applied (txn/doc.go)
go test -c -o "$B/txn.test" ./txn
(cd txn && "$B/txn.test" -test.run XXX -test.bench CommitPhases -test.benchtime "$BT") | tee "$B/phases.txt" | grep Benchmark || true
awk '/^BenchmarkCommitPhases\// { split($1, a, "/"); sub(/-[0-9]+$/, "", a[2]);
  for (i = 4; i < NF; i++) { if ($(i+1) == "stage-ms/op") s = $i; if ($(i+1) == "journal-ms/op") j = $i; if ($(i+1) == "apply-ms/op") p = $i }
  for (k = 1; k <= 3; k++) { ph = k == 1 ? "stage" : k == 2 ? "journal" : "apply"; v = k == 1 ? s : k == 2 ? j : p
    printf "{\"id\":\"commit-phase-%s-%s\",\"label\":\"commit of 64 MiB over %s: %s phase (go test -bench, mean)\",\"unit\":\"ms\",\"offvm_s\":[%s]}\n", a[2], ph, a[2] == "zeros" ? "free space (zeros)" : "space that held data", ph, v } }' \
  "$B/phases.txt" >> "$RUNS"

# --- registry: the view against hivex ---
# scripts/bench-registry.sh, when its owner adds it, replaces the built-in
# registry figures. It runs with B (scratch folder), OFFVM, RUNS, BENCH_TOOL,
# PAIRS, REG_KEYS and BENCH_QUICK in its environment, and the functions
# pair, single (bench-tool recording into RUNS), peer_umount and tree_sum.
if [ -x scripts/bench-registry.sh ]; then
  REG_KEYS=$REG_KEYS ./scripts/bench-registry.sh
else
  R=$B/reg; mkdir -p "$R/lib" "$R/fill" "$R/m" "$R/peer" "$R/offvm"
  go run ./internal/tools/newhive "$R/SOFTWARE"
  {
    echo "Windows Registry Editor Version 5.00"; echo
    echo '[HKEY_LOCAL_MACHINE\SOFTWARE\Bench]'; echo
    for k in $(seq 1 "$REG_KEYS"); do
      echo "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Bench\\Key$k]"
      for v in $(seq 1 10); do echo "\"Value$v\"=\"data $k $v\""; done
      echo
    done
  } > "$R/big.reg"
  hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$R/SOFTWARE" "$R/big.reg"
  truncate -s 64M "$R/win.img"; mkntfs -q -F -Q "$R/win.img" 2>/dev/null
  ntfs-3g "$R/win.img" "$R/fill"; mkdir -p "$R/fill/Windows/System32/config"; cp "$R/SOFTWARE" "$R/fill/Windows/System32/config/"
  peer_umount "$R/fill" "$R/win.img"
  cp "$R/win.img" "$R/lib/win.img"
  "$OFFVM" mount --ro "$R/lib" "$R/m"
  export REGB=$R
  pair -id reg-read -label "read all $((REG_KEYS * 10)) values of a hive" -peer hivexregedit -cold \
    -ra "$R/SOFTWARE" -rb "$R/m/win.img/registry/HKLM/SOFTWARE/Bench" \
    -run-a 'hivexregedit --export "$R" "\\"' -run-b 'find "$R" -type f -exec cat {} +' \
    -verify 'if [ $SIDE = peer ]; then hivexregedit --export "$R" "\\Bench" | grep -c "^\"Value"; else find "$R" -type f -name "Value*" | wc -l; fi'
  "$OFFVM" unmount "$R/m"
  { echo "Windows Registry Editor Version 5.00"; echo; echo '[HKEY_LOCAL_MACHINE\SOFTWARE\Bench\Key7]'
    for v in $(seq 1 1000); do echo "\"New$v\"=dword:$(printf %08x "$v")"; done; } > "$R/set.reg"
  pair -id reg-set -label "set 1,000 values + commit (reg import)" -peer "hivexregedit --merge" \
    -ra "$R/peer" -rb "$R/offvm" \
    -setup 'if [ $SIDE = peer ]; then cp "$REGB/SOFTWARE" "$R/SOFTWARE"; else cp "$REGB/win.img" "$R/win.img"; rm -f "$R"/*.offvm-*; fi' \
    -run-a 'hivexregedit --merge --prefix "HKEY_LOCAL_MACHINE\\SOFTWARE" "$R/SOFTWARE" "$REGB/set.reg"' \
    -run-b '"$OFFVM" reg import "$R/win.img" "$REGB/set.reg" >/dev/null' \
    -check 'h=$R/SOFTWARE; if [ $SIDE = offvm ]; then h=$R/hive; ntfscat "$R/win.img" Windows/System32/config/SOFTWARE > "$h"; fi; hivexregedit --export "$h" "\\Bench\\Key7" | grep -c "^\"New"' \
    -expect 'echo 1000'
fi

# The figures of scripts of their own: one that fails (its two sides did
# not do the same work) is left out of bench.json, the others are kept,
# and make bench fails at the end naming it.
failed=()
part() { echo; "$@" || { echo "bench: $1 failed: its figures are left out" >&2; failed+=("$1"); }; }
# --- the library (issue 16): ls cold and unchanged, patch apply by shards ---
part ./scripts/bench-fleet.sh
# NTFS in a System32-sized directory: create + delete, A/B like the rest
part ./scripts/bench_ntfs_bigdir.sh
# the daemon's memory against the library's size (value records)
if [ -n "${BENCH_QUICK:-}" ]; then
  BENCH_IMAGES=50 BENCH_IDLE=5s BENCH_HIVE_KEYS=2000 part ./scripts/bench_memory.sh
else
  part ./scripts/bench_memory.sh
fi

echo
"$BENCH_TOOL" report -in "$RUNS" -json "$OUT_JSON" ${BENCH_README:+-readme "$ROOT/README.md"}
echo "bench.json: $OUT_JSON"
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: failed: ${failed[*]}" >&2
  exit 1
fi
