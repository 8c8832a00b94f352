#!/usr/bin/env bash
# make demo: builds a small sample library with real tools, mounts it with
# offvm, and walks through what an administrator sees. Run as root (it
# formats NTFS through ntfs-3g); leaves demo/ behind to play with.
set -euo pipefail
cd "$(dirname "$0")/.."
OFFVM=${OFFVM:-$PWD/bin/offvm}
DEMO=$PWD/demo
LIB=$DEMO/library
MNT=$DEMO/mnt
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

if mountpoint -q "$MNT" 2>/dev/null; then "$OFFVM" unmount --discard "$MNT" || umount -l "$MNT"; fi
rm -rf "$DEMO"; mkdir -p "$LIB/windows" "$LIB/linux" "$MNT" "$DEMO/work"
W=$DEMO/work

echo "Building the sample library in $LIB ..."
# A Windows-like disk: GPT, an EFI FAT32 partition and an NTFS partition
# filled through ntfs-3g.
truncate -s 40M "$W/esp.img"; mkfs.vfat -F 32 -n SYSTEM "$W/esp.img" >/dev/null
mmd -i "$W/esp.img" ::/EFI ::/EFI/Boot
echo "bootloader" > "$W/bootx64.efi"; mcopy -i "$W/esp.img" "$W/bootx64.efi" ::/EFI/Boot/
truncate -s 96M "$W/ntfs.img"; mkntfs -q -F -Q -L Windows "$W/ntfs.img"
mkdir -p "$W/nt"; ntfs-3g "$W/ntfs.img" "$W/nt"
mkdir -p "$W/nt/Windows/System32/drivers/etc" "$W/nt/Windows/System32/config" "$W/nt/Users/alice/Documents" "$W/nt/Program Files/Contoso"
# Hives: an empty hive from offvm's writer, filled by hivex (a real tool).
for h in SYSTEM SOFTWARE; do
  go run ./internal/tools/newhive "$W/$h"
  hivexregedit --merge --prefix "HKEY_LOCAL_MACHINE\\$h" "$W/$h" scripts/demo/$h.reg
  cp "$W/$h" "$W/nt/Windows/System32/config/$h"
done
printf '127.0.0.1 localhost\r\n' > "$W/nt/Windows/System32/drivers/etc/hosts"
echo "Contoso Agent 1.2.3" > "$W/nt/Program Files/Contoso/agent.txt"
echo "Quarterly numbers" > "$W/nt/Users/alice/Documents/report.txt"
umount "$W/nt"
truncate -s 140M "$LIB/windows/web01.img"
printf 'label: gpt\nsize=40MiB, type=U\nsize=96MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' | sfdisk -q "$LIB/windows/web01.img"
dd if="$W/esp.img" of="$LIB/windows/web01.img" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$W/ntfs.img" of="$LIB/windows/web01.img" bs=1M seek=41 conv=notrunc,sparse status=none

# A Linux disk: MBR with one ext4 partition made by mkfs.ext4 -d.
mkdir -p "$W/root/etc"; echo "db01" > "$W/root/etc/hostname"
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n' > "$W/root/etc/os-release"
mkdir -p "$W/root/var/lib/dpkg"
printf 'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n\nPackage: postgresql-15\nStatus: install ok installed\nArchitecture: amd64\nVersion: 15.6-0+deb12u1\n' > "$W/root/var/lib/dpkg/status"
truncate -s 32M "$W/ext4.img"; mkfs.ext4 -q -F -L root -d "$W/root" "$W/ext4.img"
truncate -s 34M "$LIB/linux/db01.img"
printf 'label: dos\nsize=32MiB, type=83\n' | sfdisk -q "$LIB/linux/db01.img"
dd if="$W/ext4.img" of="$LIB/linux/db01.img" bs=1M seek=1 conv=notrunc,sparse status=none
for fmt in qcow2 vhdx vmdk; do
  case $fmt in vhdx) o="-o subformat=dynamic";; *) o="";; esac
  qemu-img convert -O "$fmt" $o "$LIB/linux/db01.img" "$LIB/linux/db01-copy.$fmt" 2>/dev/null || true
done

run "$OFFVM" ls "$LIB"
run "$OFFVM" mount "$LIB" "$MNT"
run ls "$MNT" "$MNT/windows" "$MNT/windows/web01.img"
run cat "$MNT/windows/web01.img/p2/windows/system32/drivers/etc/HOSTS"
run ls -la "$MNT/windows/web01.img/p2/Users/alice/Documents"
run ls -R "$MNT/windows/web01.img/p1"
run cat "$MNT/linux/db01.img/p1/etc/hostname"
say "jq '{os, drives, updates, applications}' $MNT/windows/web01.img/info.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({k: d[k] for k in ("os","updates","applications")}, indent=1))' "$MNT/windows/web01.img/info.json"

echo; echo "--- Offline maintenance: edit the registry and the files with ordinary tools ---"
SPOOLER="$MNT/windows/web01.img/registry/HKLM/SYSTEM/CurrentControlSet/Services/Spooler"
run ls "$SPOOLER"
run getfattr -n user.reg.type "$SPOOLER/Start"
run cat "$SPOOLER/Start"
say "echo 4 > $SPOOLER/Start        # disable the print spooler"
echo 4 > "$SPOOLER/Start"
say "mkdir -p .../registry/HKLM/SOFTWARE/Contoso/Agent && echo 1.2.4 > .../Version"
mkdir -p "$MNT/windows/web01.img/registry/HKLM/SOFTWARE/Contoso/Agent"
echo 1.2.4 > "$MNT/windows/web01.img/registry/HKLM/SOFTWARE/Contoso/Agent/Version"
say "cp agent-1.2.4.dll .../p2/Program Files/Contoso/"
head -c 300000 /dev/urandom > "$W/agent-1.2.4.dll"
cp "$W/agent-1.2.4.dll" "$MNT/windows/web01.img/p2/Program Files/Contoso/"
run "$OFFVM" unmount "$MNT"

echo; echo "--- Checked by tools offvm did not write ---"
dd if="$LIB/windows/web01.img" of="$W/ntfs-after.img" bs=1M skip=41 count=96 status=none
ntfscat "$W/ntfs-after.img" /Windows/System32/config/SYSTEM > "$W/SYSTEM.after"
run hivexget "$W/SYSTEM.after" 'ControlSet001\Services\Spooler' Start
run ntfsresize --info --force --no-action "$W/ntfs-after.img"
ntfscat "$W/ntfs-after.img" "/Program Files/Contoso/agent-1.2.4.dll" | cmp - "$W/agent-1.2.4.dll" && echo "agent-1.2.4.dll: identical (ntfscat)"
run "$OFFVM" rollback "$LIB/windows/web01.img"

echo; echo "--- Patching the whole library with a bundle: files + registry, all or nothing per image ---"
run find scripts/demo/bundle -type f
run "$OFFVM" patch apply --dry-run scripts/demo/bundle "$LIB"
run "$OFFVM" patch apply --jobs 2 scripts/demo/bundle "$LIB"
run "$OFFVM" patch apply scripts/demo/bundle "$LIB/windows/web01.img"
say "offvm inspect --json $LIB/windows/web01.img   (applications and patches)"
"$OFFVM" inspect --json "$LIB/windows/web01.img" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({k: d[k] for k in ("applications","patches")}, indent=1))'
run "$OFFVM" patch apply --jobs 2 scripts/demo/bundle-linux "$LIB"
dd if="$LIB/linux/db01.img" of="$W/ext4-after.img" bs=1M skip=1 count=32 status=none
run e2fsck -fn "$W/ext4-after.img"
run debugfs -R "cat /etc/motd" "$W/ext4-after.img"
run "$OFFVM" report --max-age 90 --require KB4532691,KB5034439 "$LIB"
run "$OFFVM" rollback "$LIB/windows/web01.img"
echo
echo "The sample library stays in $LIB; mount it again with: $OFFVM mount $LIB $MNT"
