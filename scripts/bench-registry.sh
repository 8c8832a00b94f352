#!/usr/bin/env bash
# The registry view's speed (issue 12), called by make bench (bench.sh) or
# on its own. A hive of KEYS keys with 10 values each is the image's
# SOFTWARE hive; the same tree, copied out of the view, is served from
# tmpfs by go-fuse's own loopback (the FUSE floor) and read from tmpfs
# directly. Each case runs A/B interleaved, REPS times; medians and ratios
# are printed (ratio = other / offvm: >1.0 means offvm is faster). A
# benchmark, not a test: it never fails on a number. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
OFFVM=${OFFVM:-$PWD/bin/offvm}
KEYS=${BENCH_REG_KEYS:-2000}
REPS=${BENCH_REPS:-5}
B=$(mktemp -d /var/tmp/offvm-regbench.XXXXXX)
cleanup() {
  for m in "$B"/moff "$B"/mlb "$B"/fill "$B"/tmpfs; do
    mountpoint -q "$m" 2>/dev/null || continue
    case $m in
      */moff) "$OFFVM" unmount --discard "$m" 2>/dev/null || umount -l "$m" ;;
      *) fusermount3 -u "$m" 2>/dev/null || umount -l "$m" ;;
    esac
  done
  rm -rf "$B"
}
trap cleanup EXIT
mkdir -p "$B/lib" "$B/moff" "$B/mlb" "$B/fill" "$B/tmpfs"

echo "registry view: a hive of $KEYS keys, $((KEYS * 10)) values; median of $REPS, A/B interleaved"
go build -o "$B/newhive" ./internal/tools/newhive
go build -o "$B/loopback" github.com/hanwen/go-fuse/v2/example/loopback
"$B/newhive" "$B/SOFTWARE"
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
}' > "$B/fill.reg"
hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$B/SOFTWARE" "$B/fill.reg"
size=$(( $(stat -c %s "$B/SOFTWARE") / 1048576 + 32 ))
truncate -s ${size}M "$B/lib/win.img"
mkntfs -q -F -Q -L bench "$B/lib/win.img" 2>/dev/null
ntfs-3g "$B/lib/win.img" "$B/fill"
mkdir -p "$B/fill/Windows/System32/config"
cp "$B/SOFTWARE" "$B/fill/Windows/System32/config/SOFTWARE"
umount "$B/fill"

# The floor: the same tree as plain files.
mount -t tmpfs tmpfs "$B/tmpfs"
"$OFFVM" mount --ro "$B/lib" "$B/moff"
cp -r "$B/moff/win.img/registry/HKLM/SOFTWARE/Bench" "$B/tmpfs/Bench"
"$OFFVM" unmount "$B/moff" >/dev/null
TREE=registry/HKLM/SOFTWARE/Bench

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f", e-s}'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
readall() { find "$1" -type f -exec cat {} + ; }
listall() { ls -lR "$1"; }

# One round of each side: fresh mount, cold pass, warm pass, listing on a
# second fresh mount.
offvm_round() {
  drop; "$OFFVM" mount --ro "$B/lib" "$B/moff"
  oc+=" $(secs readall "$B/moff/win.img/$TREE")"; ow+=" $(secs readall "$B/moff/win.img/$TREE")"
  "$OFFVM" unmount "$B/moff" >/dev/null
  drop; "$OFFVM" mount --ro "$B/lib" "$B/moff"
  ol+=" $(secs listall "$B/moff/win.img/$TREE")"
  "$OFFVM" unmount "$B/moff" >/dev/null
}
loop_round() {
  drop; "$B/loopback" "$B/mlb" "$B/tmpfs" >/dev/null & local pid=$!
  for _ in $(seq 50); do mountpoint -q "$B/mlb" && break; sleep 0.1; done
  lc+=" $(secs readall "$B/mlb/Bench")"; lw+=" $(secs readall "$B/mlb/Bench")"
  fusermount3 -u "$B/mlb"; wait "$pid" || true
  drop; "$B/loopback" "$B/mlb" "$B/tmpfs" >/dev/null & pid=$!
  for _ in $(seq 50); do mountpoint -q "$B/mlb" && break; sleep 0.1; done
  ll+=" $(secs listall "$B/mlb/Bench")"
  fusermount3 -u "$B/mlb"; wait "$pid" || true
  tw+=" $(secs readall "$B/tmpfs/Bench")"
}
oc= ow= ol= lc= lw= ll= tw=
for _ in $(seq "$REPS"); do offvm_round; loop_round; done

# Setting 1,000 values and committing, against hivexregedit --merge.
awk 'BEGIN { print "Windows Registry Editor Version 5.00\n"
  for (k = 0; k < 100; k++) { printf "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Bench\\Group%02d\\Key%05d]\n", k % 50, k
    for (v = 0; v < 10; v++) printf "\"Value%d\"=\"changed %d\"\n", v, v; print "" } }' > "$B/set.reg"
setoff() {
  "$OFFVM" mount "$B/lib" "$B/moff"
  local k v
  for k in $(seq 0 99); do
    local d; d=$(printf '%s/win.img/%s/Group%02d/Key%05d' "$B/moff" "$TREE" $((k % 50)) "$k")
    for v in 0 2 4 6 8 0 2 4 6 8; do echo "changed $v" > "$d/Value$v"; done
  done
  "$OFFVM" unmount "$B/moff"
}
sethivex() { cp "$B/SOFTWARE" "$B/S2"; hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$B/S2" "$B/set.reg"; }
cp "$B/lib/win.img" "$B/win.orig"
so= sh= eo= eh=
for _ in $(seq "$REPS"); do
  cp "$B/win.orig" "$B/lib/win.img"; rm -rf "$B/lib/.offvm" 2>/dev/null || true
  drop; so+=" $(secs setoff)"
  drop; sh+=" $(secs sethivex)"
  drop; eo+=" $(secs "$OFFVM" reg export "$B/lib/win.img" 'HKLM\SOFTWARE\Bench')"
  drop; eh+=" $(secs hivexregedit --export --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$B/SOFTWARE" '\Bench')"
done

row() { # label, offvm times, other label, other times
  local a b; a=$(echo "$2" | median); b=$(echo "$4" | median)
  printf '%-40s offvm %7.3fs   %-16s %7.3fs   ratio %5.2f\n' "$1" "$a" "$3" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.2f", b/a}')"
}
row "read $((KEYS * 10)) values, cold" "$oc" "loopback" "$lc"
row "read $((KEYS * 10)) values, second pass" "$ow" "plain tmpfs" "$tw"
row "read $((KEYS * 10)) values, second pass" "$ow" "loopback warm" "$lw"
row "ls -lR, cold" "$ol" "loopback" "$ll"
row "set 1,000 values + commit" "$so" "hivex --merge" "$sh"
row "reg export of $KEYS keys" "$eo" "hivex --export" "$eh"
