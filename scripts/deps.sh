#!/usr/bin/env bash
# Installs what offvm's tests, demo and benchmarks need, when missing.
# Debian/Ubuntu with apt-get; run as root (make test does).
set -euo pipefail
need=()
check() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
check fusermount3 fuse3
check qemu-img qemu-utils
check qemu-io qemu-utils
check ntfs-3g ntfs-3g
check gcab gcab
check cabextract cabextract
check mkntfs ntfs-3g
check mkfs.vfat dosfstools
check mcopy mtools
check mkfs.ext4 e2fsprogs
check hivexsh libhivex-bin
check hivexregedit libwin-hivex-perl
check fls sleuthkit
check setfattr attr
check sfdisk fdisk
check xz xz-utils
check unzip unzip
check python3 python3
check chromium chromium
check genisoimage genisoimage
check vhdiinfo libvhdi-utils
check wimcapture wimtools
check virt-xml-validate libvirt-clients
check xmllint libxml2-utils
# the CLI's conventions: man pages rendered, the systemd unit verified,
# progress bars seen in a pty
check man man-db
check col bsdextrautils
check systemd-analyze systemd
check script bsdutils
check make make
# make test-long: a real single-node Slurm
if [ -n "${OFFVM_DEPS_LONG:-}" ]; then
  check slurmctld slurm-wlm
  check munged munge
fi
check dislocker-file dislocker
check vgcfgrestore lvm2
check cryptsetup cryptsetup-bin
check mkfs.xfs xfsprogs
check xfs_repair xfsprogs
check mkfs.btrfs btrfs-progs
# v4 XFS written by offvm, read back by a kernel that still mounts it:
# libguestfs' appliance with Debian's kernel (CONFIG_XFS_SUPPORT_V4=y);
# without it the v4 tests check with xfs_repair and xfs_db only
if [ -n "${OFFVM_DEPS_GUESTFS:-}" ]; then
  check guestfish libguestfs-tools
  ls /boot/vmlinuz-* >/dev/null 2>&1 || need+=(linux-image-amd64)
fi
check fallocate util-linux
check chattr e2fsprogs
check regfexport libregf-utils
check rsync rsync
check clamscan clamav
check jq jq
check mmdebstrap mmdebstrap
check rpm rpm
check db5.3_load db5.3-util
# Debian's python3 (not a pyenv one earlier on PATH) carries the bindings
/usr/bin/python3 -c 'import hivex' 2>/dev/null || need+=(python3-hivex)
/usr/bin/python3 -c 'import pyvhdi' 2>/dev/null || need+=(python3-libvhdi)
/usr/bin/python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
/usr/bin/python3 -c 'import cryptography' 2>/dev/null || need+=(python3-cryptography)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
