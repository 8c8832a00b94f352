#!/usr/bin/env bash
# The registry view's speed (issue 12), called by make bench (bench.sh) or
# on its own. A hive of REG_KEYS keys with 10 values each is the image's
# SOFTWARE hive; the same tree, copied out of the view, is served from
# tmpfs by go-fuse's own loopback (the FUSE floor) and read from tmpfs
# directly. Every figure goes through bench-tool's pair (A/B interleaved,
# PAIRS pairs, medians and the pair ratio, > 1: offvm is faster) into
# RUNS, and so into bench.json; each side's work is checked after every
# run (the same tree read, the same hive written, as hivexregedit exports
# it). The load average is printed before each figure: on a shared
# machine it says what the seconds are worth.
#
# On its own: `scripts/bench-registry.sh` (root) prints the table;
# BENCH_JSON=FILE also writes it as bench.json; BENCH_QUICK=1 is a smoke
# test (200 keys, 2 pairs). From bench.sh: B, OFFVM, RUNS, BENCH_TOOL,
# PAIRS, REG_KEYS and BENCH_QUICK come from it. A benchmark, not a test:
# it fails only when the two sides did not do the same work.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export OFFVM=${OFFVM:-$ROOT/bin/offvm}
standalone=
if [ -z "${BENCH_TOOL:-}" ]; then
  standalone=1
  if [ -n "${BENCH_QUICK:-}" ]; then REG_KEYS=${REG_KEYS:-200} PAIRS=${BENCH_PAIRS:-2}; fi
  export PAIRS=${PAIRS:-${BENCH_PAIRS:-5}}
  export B=$(mktemp -d /var/tmp/offvm-regbench.XXXXXX)
  export RUNS=$B/runs.jsonl
  go build -o "$B/bench-tool" ./scripts/bench-tool
  export BENCH_TOOL=$B/bench-tool
  pair() { "$BENCH_TOOL" pair -out "$RUNS" -pairs "$PAIRS" "$@"; }
  tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64); }
  export -f pair tree_sum
fi
KEYS=${REG_KEYS:-2000}
export REG=$B/reg TREE=registry/HKLM/SOFTWARE/Bench
mkdir -p "$REG"/{lib,fill,tmpfs,m-peer,m-offvm,set-peer,set-offvm,m-set}

cleanup() {
  for m in "$REG"/m-* "$REG"/tmpfs "$REG"/fill; do
    mountpoint -q "$m" 2>/dev/null || continue
    case $m in
      */m-offvm | */m-set) "$OFFVM" unmount --discard "$m" 2>/dev/null || umount -l "$m" ;;
      *) fusermount3 -u "$m" 2>/dev/null || umount -l "$m" ;;
    esac
  done
  if [ -n "$standalone" ]; then rm -rf "$B"; else rm -rf "$REG"/{tmpfs,fill,set-peer,set-offvm,m-*}; fi
}
trap cleanup EXIT
load() { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"; }

echo "registry view: a hive of $KEYS keys, $((KEYS * 10)) values; $PAIRS pairs, A/B interleaved"
go build -o "$REG/newhive" ./internal/tools/newhive
go build -o "$REG/loopback" github.com/hanwen/go-fuse/v2/example/loopback
"$REG/newhive" "$REG/SOFTWARE"
awk -v n="$KEYS" 'BEGIN {
  print "Windows Registry Editor Version 5.00\n"
  print "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Bench]\n"   # hivex wants parents first
  for (g = 0; g < 50; g++) printf "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Bench\\Group%02d]\n\n", g
  for (k = 0; k < n; k++) {
    printf "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Bench\\Group%02d\\Key%05d]\n", k % 50, k
    for (v = 0; v < 10; v++) {
      if (v % 2) printf "\"Value%d\"=dword:%08x\n", v, k * 10 + v
      else printf "\"Value%d\"=\"text of value %d in key %d\"\n", v, v, k
    }
    print ""
  }
}' > "$REG/fill.reg"
hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$REG/SOFTWARE" "$REG/fill.reg"
size=$(( $(stat -c %s "$REG/SOFTWARE") / 1048576 + 32 ))
truncate -s ${size}M "$REG/win.img"
mkntfs -q -F -Q -L bench "$REG/win.img" 2>/dev/null
ntfs-3g "$REG/win.img" "$REG/fill"
mkdir -p "$REG/fill/Windows/System32/config"
cp "$REG/SOFTWARE" "$REG/fill/Windows/System32/config/SOFTWARE"
umount "$REG/fill"
while pgrep -f "ntfs-3g $REG/win.img" >/dev/null; do sleep 0.05; done
cp "$REG/win.img" "$REG/lib/win.img"

# The floor: the same tree as plain files on tmpfs.
mount -t tmpfs tmpfs "$REG/tmpfs"
"$OFFVM" mount --ro "$REG/lib" "$REG/m-offvm"
cp -r "$REG/m-offvm/win.img/$TREE" "$REG/tmpfs/Bench"
"$OFFVM" unmount "$REG/m-offvm" >/dev/null

# What the commands of a figure share: the side's tree under $R, a fresh
# mount of it (offvm read-only, or go-fuse's loopback over the tmpfs
# copy), and a full read.
regdir() { if [ "$SIDE" = peer ]; then echo "$R/Bench"; else echo "$R/win.img/$TREE"; fi; }
reg_mount() {
  if [ "$SIDE" = offvm ]; then "$OFFVM" mount --ro "$REG/lib" "$R"; return; fi
  "$REG/loopback" "$R" "$REG/tmpfs" >/dev/null 2>&1 &
  for _ in $(seq 200); do mountpoint -q "$R" && return 0; sleep 0.05; done
  echo "loopback did not mount $R" >&2; return 1
}
reg_umount() {
  if [ "$SIDE" = offvm ]; then "$OFFVM" unmount "$R" >/dev/null; return; fi
  fusermount3 -u "$R"
  while pgrep -f "$REG/loopback $R " >/dev/null; do sleep 0.05; done
}
readall() { find "$(regdir)" -type f -exec cat {} +; }
export -f regdir reg_mount reg_umount readall
N=$((KEYS * 10))

load
pair -id reg-read-cold -label "read all $N values (find -exec cat), fresh mount, cold" -peer "go-fuse loopback over tmpfs" \
  -cold -same-size -ra "$REG/m-peer" -rb "$REG/m-offvm" -setup reg_mount -teardown reg_umount \
  -run readall -check 'tree_sum "$(regdir)"'
load
pair -id reg-read-warm-loopback -label "read all $N values again (second pass)" -peer "go-fuse loopback, second pass" \
  -same-size -ra "$REG/m-peer" -rb "$REG/m-offvm" -setup 'reg_mount && readall >/dev/null' -teardown reg_umount \
  -run readall -check 'tree_sum "$(regdir)"'
load
# plain tmpfs: the peer's root is the tmpfs itself, read once before too
pair -id reg-read-warm-tmpfs -label "read all $N values again (second pass), against plain tmpfs" -peer "tmpfs, no FUSE" \
  -same-size -ra "$REG/tmpfs" -rb "$REG/m-offvm" \
  -setup 'if [ $SIDE = offvm ]; then reg_mount; fi; readall >/dev/null' \
  -teardown 'if [ $SIDE = offvm ]; then reg_umount; fi' \
  -run readall -check 'tree_sum "$(regdir)"'
load
pair -id reg-ls-cold -label "ls -lR of $KEYS keys, $N values, fresh mount, cold" -peer "go-fuse loopback over tmpfs" \
  -cold -ra "$REG/m-peer" -rb "$REG/m-offvm" -setup reg_mount -teardown reg_umount \
  -run 'ls -lR "$(regdir)"' -check 'cd "$(regdir)" && ls -R . | sha256sum'

# Setting 1,000 values (100 keys, 5 strings and 5 dwords each) and
# committing: through the view (echo > value, then unmount), and with
# `offvm reg import` of the .reg that hivexregedit --merges. Both sides
# must leave the same tree, as hivexregedit --export shows it.
awk 'BEGIN { print "Windows Registry Editor Version 5.00\n"
  for (k = 0; k < 100; k++) { printf "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Bench\\Group%02d\\Key%05d]\n", k % 50, k
    for (v = 0; v < 10; v++) {
      if (v % 2) printf "\"Value%d\"=dword:%08x\n", v, 1000000 + k * 10 + v
      else printf "\"Value%d\"=\"changed %d\"\n", v, v
    }
    print "" } }' > "$REG/set.reg"
set_view() { # DIR: the 1,000 values of set.reg, one echo each
  local k v d
  for ((k = 0; k < 100; k++)); do
    printf -v d '%s/Group%02d/Key%05d' "$1" $((k % 50)) "$k"
    for ((v = 0; v < 10; v += 2)); do
      echo "changed $v" > "$d/Value$v"
      echo $((1000000 + k * 10 + v + 1)) > "$d/Value$((v + 1))"
    done
  done
}
set_setup() {
  if [ "$SIDE" = peer ]; then cp "$REG/SOFTWARE" "$R/SOFTWARE"; return; fi
  rm -rf "$R"/win.img*; cp "$REG/win.img" "$R/win.img"
}
# the written hive as hivexregedit exports it, and how many values changed
set_check() {
  local h=$R/SOFTWARE
  if [ "$SIDE" = offvm ]; then h=$R/hive.out; ntfscat "$R/win.img" Windows/System32/config/SOFTWARE > "$h"; fi
  hivexregedit --export --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$h" '\Bench' > "$R/export.reg"
  local n; n=$(grep -c -e '^"Value[02468]"=hex(1):63,00,68,00' -e '^"Value[13579]"=dword:000f' "$R/export.reg" || true)
  [ "$n" = 1000 ] || { echo "$SIDE: $n of the 1,000 values changed" >&2; return 1; }
  echo "$n changed; $(sha256sum < "$R/export.reg" | cut -c1-64)"
}
export -f set_view set_setup set_check
merge='hivexregedit --merge --prefix "HKEY_LOCAL_MACHINE\\SOFTWARE" "$R/SOFTWARE" "$REG/set.reg"'
load
pair -id reg-set-view -label "set 1,000 values through the view (echo > value) + commit at unmount" -peer "hivexregedit --merge" \
  -ra "$REG/set-peer" -rb "$REG/set-offvm" -setup set_setup -check set_check -cold \
  -run-a "$merge" \
  -run-b '"$OFFVM" mount "$R" "$REG/m-set" && set_view "$REG/m-set/win.img/$TREE" && "$OFFVM" unmount "$REG/m-set" >/dev/null' ||
  echo "the 'set through the view' figure failed (see above)" >&2
load
# The same 1,000 echos into go-fuse's loopback over a tmpfs copy of the
# tree: what FUSE's round trips cost by themselves (OPEN, GETXATTR
# security.capability for O_TRUNC, FLUSH, WRITE, FLUSH, RELEASE), with no
# hive and no commit, so the floor the view's figure can reach.
floor_setup() {
  if [ "$SIDE" = offvm ]; then set_setup; return; fi
  rm -rf "$REG/tmpfs/SetBench"; cp -a "$REG/tmpfs/Bench" "$REG/tmpfs/SetBench"; reg_mount
}
floor_check() { # how many of the 1,000 values hold the new data
  if [ "$SIDE" = offvm ]; then set_check | cut -d';' -f1; return; fi
  local n; n=$(cat "$REG"/tmpfs/SetBench/Group*/Key000[0-9][0-9]/Value* | grep -c -e '^changed [02468]$' -e '^1000[0-9][0-9][0-9]$' || true)
  echo "$n changed"
}
export -f floor_setup floor_check
pair -id reg-set-view-floor -label "set 1,000 values through the view + commit, against the same echos into the FUSE floor" -peer "go-fuse loopback over tmpfs, no commit" \
  -ra "$REG/m-peer" -rb "$REG/set-offvm" -setup floor_setup -check floor_check -cold \
  -teardown 'if [ $SIDE = peer ]; then reg_umount; fi' \
  -run-a 'set_view "$R/SetBench"' \
  -run-b '"$OFFVM" mount "$R" "$REG/m-set" && set_view "$REG/m-set/win.img/$TREE" && "$OFFVM" unmount "$REG/m-set" >/dev/null' ||
  echo "the 'set through the view against the floor' figure failed (see above)" >&2
load
pair -id reg-import -label "set 1,000 values with offvm reg import (commits)" -peer "hivexregedit --merge" \
  -ra "$REG/set-peer" -rb "$REG/set-offvm" -setup set_setup -check set_check -cold \
  -run-a "$merge" -run-b '"$OFFVM" reg import "$R/win.img" "$REG/set.reg" >/dev/null'
load
pair -id reg-export -label "reg export of $KEYS keys" -peer "hivexregedit --export" -cold -same-output \
  -ra "$REG/SOFTWARE" -rb "$REG/lib/win.img" \
  -run-a 'hivexregedit --export --prefix "HKEY_LOCAL_MACHINE\\SOFTWARE" "$R" "\\Bench"' \
  -run-b '"$OFFVM" reg export "$R" "HKLM\\SOFTWARE\\Bench"'
load

if [ -n "$standalone" ]; then
  echo
  "$BENCH_TOOL" report -in "$RUNS" ${BENCH_JSON:+-json "$BENCH_JSON"}
fi
