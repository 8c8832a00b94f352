#!/usr/bin/env bash
# make bench: offvm against ntfs-3g on the same NTFS content, cold cache,
# printed as ratios (>1.0: offvm is faster). A benchmark, not a test: it
# never fails on a number. Needs root (drop_caches, mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
OFFVM=${OFFVM:-$PWD/bin/offvm}
SIZE_MIB=${BENCH_FILE_MIB:-1024}
FILES=${BENCH_FILES:-5000}
B=$(mktemp -d /var/tmp/offvm-bench.XXXXXX)
trap 'for m in "$B"/m*; do mountpoint -q "$m" && { "$OFFVM" unmount --discard "$m" 2>/dev/null || umount -l "$m"; }; done; rm -rf "$B"' EXIT

echo "building a $((SIZE_MIB + 640)) MiB NTFS volume: one ${SIZE_MIB} MiB file, a ${FILES}-file directory ..."
mkdir -p "$B/lib" "$B/m3g" "$B/moff" "$B/fill"
truncate -s $((SIZE_MIB + 640))M "$B/lib/vol.img"
mkntfs -q -F -Q -L bench "$B/lib/vol.img" 2>/dev/null
ntfs-3g "$B/lib/vol.img" "$B/fill"
head -c "${SIZE_MIB}M" /dev/urandom > "$B/fill/big.bin"
mkdir "$B/fill/many"
# $FILES small files of 2,000 bytes each
head -c $((FILES * 2000)) /dev/urandom | (cd "$B/fill/many" && split -b 2000 -a 5 -d - file-)
umount "$B/fill"

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f", e-s}'; }

bench_pair() { # label, path inside ntfs-3g mount, path inside offvm mount, command
  local label=$1 a=$2 b=$3; shift 3
  drop; local t3g; t3g=$(secs "$@" "$a")
  drop; local toff; toff=$(secs "$@" "$b")
  printf '%-34s ntfs-3g %7.3fs   offvm %7.3fs   ratio %5.2f\n' "$label" "$t3g" "$toff" "$(awk -v a="$t3g" -v b="$toff" 'BEGIN{printf "%.2f", a/b}')"
}

ntfs-3g -o ro "$B/lib/vol.img" "$B/m3g"
"$OFFVM" mount --ro "$B/lib" "$B/moff"
OV=$B/moff/vol.img/p0
bench_pair "cold read ${SIZE_MIB} MiB file (raw)" "$B/m3g/big.bin" "$OV/big.bin" cat
bench_pair "ls -l of ${FILES} files (raw)" "$B/m3g/many" "$OV/many" ls -l
catall() { find "$1" -type f -exec cat {} + ; }
bench_pair "stat+read ${FILES} small files" "$B/m3g/many" "$OV/many" catall
"$OFFVM" unmount "$B/moff"
umount "$B/m3g"

# Writing: 256 MiB and 1,000 small files, through each, until they are in
# the image (ntfs-3g: umount; offvm: unmount, i.e. the journaled commit).
mkdir -p "$B/src/small"
head -c 256M /dev/urandom > "$B/src/big256.bin"
head -c 2000000 /dev/urandom | (cd "$B/src/small" && split -b 2000 -a 4 -d - s-)
cp --sparse=always "$B/lib/vol.img" "$B/vol-3g.img"
write3g() { ntfs-3g "$B/vol-3g.img" "$B/m3g" && mkdir -p "$B/m3g/w" && cp -r "$B/src/." "$B/m3g/w/"; umount "$B/m3g"; sync; }
writeoff() { "$OFFVM" mount "$B/lib" "$B/moff" && mkdir -p "$B/moff/vol.img/p0/w" && cp -r "$B/src/." "$B/moff/vol.img/p0/w/"; "$OFFVM" unmount "$B/moff" >/dev/null; sync; }
drop; t3g=$(secs write3g)
drop; toff=$(secs writeoff)
printf '%-34s ntfs-3g %7.3fs   offvm %7.3fs   ratio %5.2f\n' "write 256 MiB + 1,000 files, commit" "$t3g" "$toff" "$(awk -v a="$t3g" -v b="$toff" 'BEGIN{printf "%.2f", a/b}')"
ntfs-3g -o ro "$B/lib/vol.img" "$B/m3g"

# The same volume inside each container format, read through offvm,
# against ntfs-3g on the raw volume.
for fmt in qcow2 vhdx vmdk vpc; do
  rm -rf "$B/lib2"; mkdir -p "$B/lib2"
  qemu-img convert -O "$fmt" "$B/lib/vol.img" "$B/lib2/vol.$fmt" 2>/dev/null || { echo "qemu-img cannot make $fmt"; continue; }
  "$OFFVM" mount --ro "$B/lib2" "$B/moff"
  bench_pair "cold read ${SIZE_MIB} MiB file ($fmt)" "$B/m3g/big.bin" "$B/moff/vol.$fmt/p0/big.bin" cat
  "$OFFVM" unmount "$B/moff"
done
umount "$B/m3g"
./scripts/bench_ntfs_bigdir.sh

echo
echo "commit of a 10 MiB change into a 100 GiB dynamic image (cost follows the change, not the size):"
go test -run XXX -bench Commit10MiB -benchtime 3x ./mount | grep Benchmark

# --- Registry: the view against hivex on the same hive ---
echo
echo "registry: 20,000 values in 2,000 keys"
R=$B/reg; mkdir -p "$R/lib" "$R/fill" "$R/m"
go run ./internal/tools/newhive "$R/SOFTWARE"
{
  echo "Windows Registry Editor Version 5.00"; echo
  echo '[HKEY_LOCAL_MACHINE\SOFTWARE\Bench]'; echo
  for k in $(seq 1 2000); do
    echo "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Bench\\Key$k]"
    for v in $(seq 1 10); do echo "\"Value$v\"=\"data $k $v\""; done
    echo
  done
} > "$R/big.reg"
hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$R/SOFTWARE" "$R/big.reg"
truncate -s 64M "$R/ntfs.img"; mkntfs -q -F -Q "$R/ntfs.img" 2>/dev/null
ntfs-3g "$R/ntfs.img" "$R/fill"; mkdir -p "$R/fill/Windows/System32/config"; cp "$R/SOFTWARE" "$R/fill/Windows/System32/config/"; umount "$R/fill"
cp "$R/ntfs.img" "$R/lib/win.img"
"$OFFVM" mount --ro "$R/lib" "$R/m"
t_hivex=$(secs hivexregedit --export "$R/SOFTWARE" '\')
t_view=$(secs sh -c "find '$R/m/win.img/registry/HKLM/SOFTWARE/Bench' -type f -exec cat {} +")
printf '%-34s hivex   %7.3fs   offvm %7.3fs   ratio %5.2f\n' "read every value" "$t_hivex" "$t_view" "$(awk -v a="$t_hivex" -v b="$t_view" 'BEGIN{printf "%.2f", a/b}')"
"$OFFVM" unmount "$R/m"
{ echo "Windows Registry Editor Version 5.00"; echo; echo '[HKEY_LOCAL_MACHINE\SOFTWARE\Bench\Key7]'; for v in $(seq 1 1000); do echo "\"New$v\"=dword:$(printf %08x $v)"; done; } > "$R/set.reg"
cp "$R/SOFTWARE" "$R/SOFTWARE.copy"
t_hivex=$(secs hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$R/SOFTWARE.copy" "$R/set.reg")
t_view=$(secs "$OFFVM" reg import "$R/lib/win.img" "$R/set.reg")
printf '%-34s hivex   %7.3fs   offvm %7.3fs   ratio %5.2f\n' "set 1,000 values + commit" "$t_hivex" "$t_view" "$(awk -v a="$t_hivex" -v b="$t_view" 'BEGIN{printf "%.2f", a/b}')"

# --- offvm ls of a 200-image library ---
echo
mkdir -p "$B/lib200"
qemu-img convert -c -O qcow2 "$R/lib/win.img" "$B/lib200/base.qcow2"
for i in $(seq 1 200); do cp "$B/lib200/base.qcow2" "$B/lib200/vm$i.qcow2"; done
rm "$B/lib200/base.qcow2"
drop; t=$(secs "$OFFVM" ls "$B/lib200")
printf '%-34s %7.3fs (cold cache)\n' "offvm ls of 200 Windows images" "$t"

# the daemon's memory against the size of the library (BENCH_IMAGES, default 1,000)
./scripts/bench_memory.sh
