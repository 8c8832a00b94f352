#!/usr/bin/env bash
# make bench, fleet part: offvm ls over a 1,000-image library (cold cache
# and again unchanged), and patch apply throughput over 200 images with 1,
# 2 and 4 shards run side by side (as that many hosts would). Medians of
# RUNS runs. A benchmark, not a test: it never fails on a number. Root
# (drop_caches).
set -euo pipefail
cd "$(dirname "$0")/.."
OFFVM=${OFFVM:-$PWD/bin/offvm}
LS_IMAGES=${BENCH_LS_IMAGES:-1000}
PATCH_IMAGES=${BENCH_PATCH_IMAGES:-200}
RUNS=${BENCH_RUNS:-3}
B=$(mktemp -d /var/tmp/offvm-fleet.XXXXXX)
trap 'rm -rf "$B"' EXIT
export OFFVM_CACHE_DIR=$B/cache   # the inventory cache, emptied for each cold run

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# one Debian-like guest: MBR, ext4 made by mkfs.ext4 -d, copied as qcow2
mkdir -p "$B/root/etc" "$B/root/var/lib/dpkg" "$B/bundle/files/p1/etc"
echo fleet > "$B/root/etc/hostname"
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\n' > "$B/root/etc/os-release"
printf 'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n' > "$B/root/var/lib/dpkg/status"
truncate -s 32M "$B/ext4.img"; mkfs.ext4 -q -F -d "$B/root" "$B/ext4.img"
truncate -s 34M "$B/base.raw"; printf 'label: dos\nsize=32MiB, type=83\n' | sfdisk -q "$B/base.raw"
dd if="$B/ext4.img" of="$B/base.raw" bs=1M seek=1 conv=notrunc,sparse status=none
qemu-img convert -O qcow2 "$B/base.raw" "$B/base.qcow2"
printf 'id = "bench-motd"\ntitle = "bench"\n[applies]\nos = "linux"\n' > "$B/bundle/patch.toml"
echo "patched" > "$B/bundle/files/p1/etc/motd"

library() { # dir, count
  mkdir -p "$1"
  for i in $(seq 1 "$2"); do d="$1/site-$((i % 10))"; mkdir -p "$d"; cp "$B/base.qcow2" "$d/vm-$i.qcow2"; done
}

echo "fleet: ls of $LS_IMAGES qcow2 images, patch apply over $PATCH_IMAGES, medians of $RUNS runs, $(nproc) CPUs"
library "$B/ls" "$LS_IMAGES"
cold=() warm=()
for r in $(seq "$RUNS"); do
  rm -rf "$OFFVM_CACHE_DIR"; drop; s=$(now); "$OFFVM" -q ls "$B/ls" > /dev/null; e=$(now); cold+=("$(awk -v s="$s" -v e="$e" 'BEGIN{print e-s}')")
  s=$(now); "$OFFVM" -q ls "$B/ls" > /dev/null; e=$(now); warm+=("$(awk -v s="$s" -v e="$e" 'BEGIN{print e-s}')")
done
c=$(printf '%s\n' "${cold[@]}" | median); w=$(printf '%s\n' "${warm[@]}" | median)
printf '%-44s %7.3fs   (goal 2 s)\n' "offvm ls of $LS_IMAGES images, cold cache" "$c"
printf '%-44s %7.3fs   (goal 0.2 s)\n' "offvm ls of $LS_IMAGES images, unchanged" "$w"
rm -rf "$B/ls"
[ "$PATCH_IMAGES" -gt 0 ] || exit 0

base_rate=""
for shards in 1 2 4; do
  rates=()
  for r in $(seq "$RUNS"); do
    rm -rf "$B/p"; library "$B/p" "$PATCH_IMAGES"; drop
    s=$(now)
    for i in $(seq 0 $((shards - 1))); do
      "$OFFVM" -q patch apply --shard "$i/$shards" --jobs 1 --json "$B/bundle" "$B/p" > "$B/out-$i.jsonl" &
    done
    wait
    e=$(now)
    n=$(cat "$B"/out-*.jsonl | grep -c '"status":"applied"' || true)
    [ "$n" -eq "$PATCH_IMAGES" ] || echo "  warning: $n of $PATCH_IMAGES applied" >&2
    rm -f "$B"/out-*.jsonl
    rates+=("$(awk -v s="$s" -v e="$e" -v n="$PATCH_IMAGES" 'BEGIN{print n/(e-s)}')")
  done
  rate=$(printf '%s\n' "${rates[@]}" | median)
  base_rate=${base_rate:-$rate}
  printf '%-44s %7.1f images/s   ratio %4.2f\n' "patch apply, $shards shard(s) side by side" "$rate" "$(awk -v a="$rate" -v b="$base_rate" 'BEGIN{print a/b}')"
done
