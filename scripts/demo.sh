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
printf 'NAME="Debian GNU/Linux"\nVERSION_ID="12"\n' > "$W/root/etc/os-release"
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
run head -c 400 "$MNT/windows/web01.img/info.json"; echo
run "$OFFVM" unmount "$MNT"
echo
echo "The sample library stays in $LIB; mount it again with: $OFFVM mount $LIB $MNT"
