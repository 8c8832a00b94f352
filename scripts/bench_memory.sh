#!/usr/bin/env bash
# Memory of the daemon against the size of the library (make bench runs
# it): peak RSS while reading the info.json of N images (default 1,000),
# RSS right after, and RSS once the images have been idle long enough to
# be closed. Goal: peak <= 256 MB whatever N. A benchmark: it prints, it
# never fails on a number. Needs root (mounts). Run by scripts/bench.sh
# (BENCH_TOOL and RUNS set), its figures also go to bench.json as value
# records (bench-tool value), so the README's table has them.
set -euo pipefail
cd "$(dirname "$0")/.."
OFFVM=${OFFVM:-$PWD/bin/offvm}
N=${BENCH_IMAGES:-1000}
IDLE=${BENCH_IDLE:-60s}
CORPUS=../shared/corpus/regipy
B=$(mktemp -d /var/tmp/offvm-benchmem.XXXXXX)
trap 'mountpoint -q "$B/mnt" && { "$OFFVM" unmount --discard "$B/mnt" 2>/dev/null || umount -l "$B/mnt"; }; rm -rf "$B"' EXIT
mkdir -p "$B/lib" "$B/mnt" "$B/fill"

# one Windows-shaped template (a real SYSTEM hive when the corpus is
# there), and N qcow2 linked clones of it: each is an image of its own,
# with its own locks, tables, file systems and registry
truncate -s 64M "$B/ntfs.img"
mkntfs -q -F -Q -L bench "$B/ntfs.img" 2>/dev/null
ntfs-3g "$B/ntfs.img" "$B/fill"
mkdir -p "$B/fill/Windows/System32/config"
if [ -d "$CORPUS" ]; then
  for h in SYSTEM SAM SECURITY; do xz -dc "$CORPUS/$h.xz" > "$B/fill/Windows/System32/config/$h"; done
else
  echo "(../shared/corpus absent: the template has no hives)"
fi
umount "$B/fill"
truncate -s 66M "$B/disk.raw"
printf 'label: gpt\nsize=64MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' | sfdisk -q "$B/disk.raw"
dd if="$B/ntfs.img" of="$B/disk.raw" bs=1M seek=1 conv=notrunc status=none
qemu-img convert -O qcow2 "$B/disk.raw" "$B/template.qcow2"
for i in $(seq -w 1 "$N"); do
  qemu-img create -q -f qcow2 -F qcow2 -b "$B/template.qcow2" "$B/lib/vm$i.qcow2"
done

# one image whose SOFTWARE hive holds 30,000 keys, walked whole after the
# info.json reads
KEYS=${BENCH_HIVE_KEYS:-30000}
go run ./internal/tools/newhive "$B/SOFTWARE"
{
  echo "Windows Registry Editor Version 5.00"; echo
  echo '[HKEY_LOCAL_MACHINE\SOFTWARE\Walk]'; echo
  for g in $(seq 0 99); do printf '[HKEY_LOCAL_MACHINE\\SOFTWARE\\Walk\\G%d]\n\n' "$g"; done
  for k in $(seq 1 "$KEYS"); do printf '[HKEY_LOCAL_MACHINE\\SOFTWARE\\Walk\\G%d\\Key%d]\n"V"="%d"\n\n' $((k % 100)) "$k" "$k"; done
} > "$B/walk.reg"
hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$B/SOFTWARE" "$B/walk.reg"
truncate -s 64M "$B/hive-ntfs.img"; mkntfs -q -F -Q "$B/hive-ntfs.img" 2>/dev/null
ntfs-3g "$B/hive-ntfs.img" "$B/fill"; mkdir -p "$B/fill/Windows/System32/config"
cp "$B/SOFTWARE" "$B/fill/Windows/System32/config/"; umount "$B/fill"
mv "$B/hive-ntfs.img" "$B/lib/walk.img"

rss() { awk '/^'"$1"':/ {printf "%d", $2/1024}' "/proc/$PID/status"; }
elapsed() { awk -v s="$1" -v e="$2" 'BEGIN{printf "%.2f", e-s}'; }
OFFVM_IDLE_CLOSE=$IDLE "$OFFVM" mount --pid-file "$B/pid" "$B/lib" "$B/mnt"
PID=$(cat "$B/pid")
start=$(date +%s.%N)
for f in "$B"/mnt/vm*.qcow2/info.json "$B/mnt/walk.img/info.json"; do cat "$f" > /dev/null; done
end=$(date +%s.%N)
read_s=$(elapsed "$start" "$end")
printf 'daemon memory, %d images (info.json of each, idle close after %s):\n' "$N" "$IDLE"
printf '  read every info.json in %ss\n' "$read_s"
open_images() { ls -l "/proc/$PID/fd" 2>/dev/null | grep -c 'lib/vm.*qcow2$' || true; }
held=$(open_images)
printf '  image files held open: %d\n' "$held"
peak_read=$(rss VmHWM) rss_read=$(rss VmRSS)
printf '  peak RSS %d MB, RSS after reading %d MB\n' "$peak_read" "$rss_read"
start=$(date +%s.%N)
keys=$(find "$B/mnt/walk.img/registry/HKLM/SOFTWARE/Walk" -type d | wc -l)
end=$(date +%s.%N)
walk_s=$(elapsed "$start" "$end")
peak_walk=$(rss VmHWM)
printf '  walked %d keys of one hive in %ss: peak RSS %d MB (goal <= 256 MB), RSS %d MB\n' "$keys" "$walk_s" "$peak_walk" "$(rss VmRSS)"
secs=$(awk -v d="${IDLE%s}" 'BEGIN{print d*1.5+2}')
sleep "$secs"
idle_rss=$(rss VmRSS) idle_held=$(open_images)
printf '  RSS %ss later, the images idle: %d MB (image files held open: %d)\n' "$secs" "$idle_rss" "$idle_held"
"$OFFVM" unmount "$B/mnt"

# into bench.json: the work each figure stands for is checked here (every
# info.json read, every key walked), so a figure of nothing is never kept
if [ -n "${BENCH_TOOL:-}" ] && [ -n "${RUNS:-}" ]; then
  want_keys=$((KEYS + 100 + 1))
  if [ "$keys" -ne "$want_keys" ]; then
    echo "bench_memory: walked $keys keys, want $want_keys: memory figures left out" >&2
    exit 1
  fi
  how="info.json of all $((N + 1)) images read, $keys keys walked"
  v() { "$BENCH_TOOL" value -out "$RUNS" -verified "$how" "$@"; }
  v -id memory-read-time -label "read the info.json of $N images (daemon memory run)" -unit s "$read_s"
  v -id memory-peak-read -label "daemon peak RSS after reading $N images' info.json" -unit MB "$peak_read"
  v -id memory-walk-time -label "walk $keys registry keys of one hive" -unit s "$walk_s"
  v -id memory-peak-walk -label "daemon peak RSS after the walk (goal <= 256 MB)" -unit MB "$peak_walk"
  v -id memory-idle -label "daemon RSS once the $N images idle ${secs}s (image files held: $idle_held)" -unit MB "$idle_rss"
fi
