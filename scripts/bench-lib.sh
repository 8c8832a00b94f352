# shellcheck shell=bash
# Helpers of the bench scripts (bench.sh, bench-scan.sh, bench-write.sh).

# ntfs-3g on an image file is a plain FUSE mount: umount returns before the
# daemon has written everything, so wait for it to exit, then fsync.
peer_umount() { # MOUNTPOINT IMAGE
  umount "$1"
  while pgrep -a ntfs-3g | grep -qF -- "$2"; do sleep 0.05; done
  sync "$2"
}
# sha256 of every file under a directory, by relative path.
tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64); }
export -f peer_umount tree_sum
