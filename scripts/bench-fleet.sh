#!/usr/bin/env bash
# Part of make bench (scripts/bench.sh runs it with B, OFFVM, RUNS,
# BENCH_TOOL, PAIRS and BENCH_QUICK set and the function single exported);
# alone, it builds what it needs and prints its figures. The library
# figures of issue 16, through bench-tool (a warm-up whose work is checked,
# then PAIRS timed runs, medians):
#   - offvm ls of LS_IMAGES images, cold (page cache dropped, inventory
#     cache emptied; goal <= 2 s on 2 cores) and unchanged (the cache
#     warm; goal <= 0.2 s), for a library of Windows images (copies of one
#     NTFS image holding the corpus' 11 MiB SYSTEM hive, as the issue
#     measured) and one of Debian images (ext4);
#     With OFFVM_BASE set (a previous offvm binary), the cold ls is also
#     paired against it, both printing the same bytes;
#   - patch apply over PATCH_IMAGES images with 1, 2 and 4 shards run side
#     by side (as that many hosts would): every image applied exactly once
#     (checked after every run), throughput in images/s.
# Root (drop_caches, mounts for building the Windows image).
set -euo pipefail
cd "$(dirname "$0")/.."
export OFFVM=${OFFVM:-$PWD/bin/offvm} OFFVM_BASE=${OFFVM_BASE:-}
if [ -n "${BENCH_QUICK:-}" ]; then
  LS_IMAGES=${BENCH_LS_IMAGES:-100} PATCH_IMAGES=${BENCH_PATCH_IMAGES:-20}
else
  LS_IMAGES=${BENCH_LS_IMAGES:-1000} PATCH_IMAGES=${BENCH_PATCH_IMAGES:-200}
fi
if [ -z "${BENCH_TOOL:-}" ]; then # run alone: what bench.sh would provide
  export B=$(mktemp -d /var/tmp/offvm-fleet.XXXXXX) PAIRS=${BENCH_PAIRS:-5}
  export RUNS=$B/runs.jsonl BENCH_TOOL=$B/bench-tool
  trap 'rm -rf "$B"' EXIT
  go build -o "$BENCH_TOOL" ./scripts/bench-tool
  single() { "$BENCH_TOOL" single -out "$RUNS" -pairs "$PAIRS" "$@"; }
  export -f single
  ALONE=1
fi
export FB=$B/fleet
mkdir -p "$FB"
export OFFVM_CACHE_DIR=$FB/cache # the inventory cache, emptied for each cold run
echo "fleet: ls of $LS_IMAGES images, patch apply over $PATCH_IMAGES, $(nproc) CPUs"

# one Debian-like guest: MBR, ext4 made by mkfs.ext4 -d, as qcow2
mkdir -p "$FB/root/etc" "$FB/root/var/lib/dpkg" "$FB/bundle/files/p1/etc"
echo fleet > "$FB/root/etc/hostname"
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\n' > "$FB/root/etc/os-release"
printf 'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n' > "$FB/root/var/lib/dpkg/status"
truncate -s 32M "$FB/ext4.img"; mkfs.ext4 -q -F -d "$FB/root" "$FB/ext4.img"
truncate -s 34M "$FB/base.raw"; printf 'label: dos\nsize=32MiB, type=83\n' | sfdisk -q "$FB/base.raw"
dd if="$FB/ext4.img" of="$FB/base.raw" bs=1M seek=1 conv=notrunc,sparse status=none
qemu-img convert -O qcow2 "$FB/base.raw" "$FB/linux.qcow2"
rm -f "$FB/ext4.img" "$FB/base.raw"
printf 'id = "bench-motd"\ntitle = "bench"\n[applies]\nos = "linux"\n' > "$FB/bundle/patch.toml"
echo "patched" > "$FB/bundle/files/p1/etc/motd"

# one Windows-shaped guest: GPT, NTFS made by mkntfs, the corpus' SYSTEM
# hive (11 MiB, 30,756 keys) with SAM and SECURITY, as qcow2
CORPUS=../shared/corpus/regipy
if [ -d "$CORPUS" ]; then
  truncate -s 64M "$FB/ntfs.img"; mkntfs -q -F -Q -L fleet "$FB/ntfs.img" 2>/dev/null
  mkdir -p "$FB/fill"; ntfs-3g "$FB/ntfs.img" "$FB/fill"
  mkdir -p "$FB/fill/Windows/System32/config"
  for h in SYSTEM SAM SECURITY; do xz -dc "$CORPUS/$h.xz" > "$FB/fill/Windows/System32/config/$h"; done
  umount "$FB/fill"; while pgrep -a ntfs-3g | grep -qF -- "$FB/ntfs.img"; do sleep 0.05; done
  truncate -s 66M "$FB/disk.raw"
  printf 'label: gpt\nsize=64MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' | sfdisk -q "$FB/disk.raw"
  dd if="$FB/ntfs.img" of="$FB/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
  qemu-img convert -O qcow2 "$FB/disk.raw" "$FB/windows.qcow2"
  rm -f "$FB/ntfs.img" "$FB/disk.raw"
else
  echo "(../shared/corpus absent: no Windows library figures)" >&2
fi

library() { # DIR COUNT TEMPLATE: COUNT copies of TEMPLATE in 10 folders
  mkdir -p "$1"
  for i in $(seq 1 "$2"); do d="$1/site-$((i % 10))"; mkdir -p "$d"; cp "$3" "$d/vm-$i.qcow2"; done
}
export -f library

for os in windows linux; do
  [ -f "$FB/$os.qcow2" ] || continue
  library "$FB/ls-$os" "$LS_IMAGES" "$FB/$os.qcow2"
  # ls prints one line per image after its header; an image it could
  # not read shows no OS
  export LS_OS=$([ $os = windows ] && echo windows || echo Debian)
  single -id "fleet-ls-cold-$os" -label "offvm ls of $LS_IMAGES $os images (qcow2), cold: page cache dropped, inventory cache empty (goal <= 2 s)" -cold \
    -rb "$FB/ls-$os" -setup 'rm -rf "$OFFVM_CACHE_DIR"' -run '"$OFFVM" -q ls "$R"' \
    -verify '"$OFFVM" -q ls "$R" | tail -n +2 | grep -c " $LS_OS"' -expect "echo $LS_IMAGES"
  if [ -n "${OFFVM_BASE:-}" ]; then
    # A/B against a previous binary (OFFVM_BASE=path): interleaved cold
    # pairs; -same-output makes bench-tool check that both print the same
    # bytes (SHA-256 of each side's ls)
    "$BENCH_TOOL" pair -out "$RUNS" -pairs "$PAIRS" -id "fleet-ls-cold-$os-ab" -peer "offvm (OFFVM_BASE)" \
      -label "offvm ls of $LS_IMAGES $os images (qcow2), cold, the previous binary against this one" -cold -same-output \
      -ra "$FB/ls-$os" -rb "$FB/ls-$os" -setup 'rm -rf "$OFFVM_CACHE_DIR"' \
      -run-a '"$OFFVM_BASE" -q ls "$R"' -run-b '"$OFFVM" -q ls "$R"'
  fi
  single -id "fleet-ls-unchanged-$os" -label "offvm ls of the $LS_IMAGES $os images again, unchanged (goal <= 0.2 s)" \
    -rb "$FB/ls-$os" -run '"$OFFVM" -q ls "$R"' \
    -verify '"$OFFVM" -q ls "$R" | tail -n +2 | wc -l' -expect "echo $LS_IMAGES"
  rm -rf "$FB/ls-$os" "$OFFVM_CACHE_DIR"
done

# patch apply, SHARDS processes side by side, one shard each; after every
# run: every image applied once, none failed
shard_run() { # SHARDS
  local i
  for i in $(seq 0 $(($1 - 1))); do
    "$OFFVM" -q patch apply --shard "$i/$1" --jobs 1 --json "$FB/bundle" "$R" > "$FB/out-$i.jsonl" &
  done
  wait
}
shard_check() {
  echo "$(cat "$FB"/out-*.jsonl | grep -c '"status":"applied"') applied, $(cat "$FB"/out-*.jsonl | grep -vc '"status":"applied"') other," \
    "$(cat "$FB"/out-*.jsonl | grep -o '"image":"[^"]*"' | sort -u | wc -l) distinct images"
}
export -f shard_run shard_check
for shards in 1 2 4; do
  single -id "fleet-patch-$shards" -label "patch apply over $PATCH_IMAGES images, $shards shard(s) side by side" -cold \
    -rb "$FB/p" -setup 'rm -rf "$R" "$FB"/out-*.jsonl; library "$R" '"$PATCH_IMAGES"' "$FB/linux.qcow2"' \
    -run "shard_run $shards" -check shard_check \
    -expect "echo '$PATCH_IMAGES applied, 0 other, $PATCH_IMAGES distinct images'"
  # images/s of every timed run, into bench.json beside the times
  rates=$(jq -r --arg id "fleet-patch-$shards" 'select(.id == $id) | .offvm_s[]' "$RUNS" | tail -n "$PAIRS" |
    awk -v n="$PATCH_IMAGES" '{printf "%.2f ", n / $1}')
  # shellcheck disable=SC2086 # one argument per run
  "$BENCH_TOOL" value -out "$RUNS" -id "fleet-patch-rate-$shards" -label "patch apply throughput, $shards shard(s) side by side" \
    -unit " images/s" -verified "every run: $PATCH_IMAGES applied once each, none failed" $rates
done
rm -rf "$FB"

if [ -n "${ALONE:-}" ]; then
  "$BENCH_TOOL" report -in "$RUNS"
fi
