# shellcheck shell=bash
# The rsync figures of `make bench`, sourced by scripts/bench.sh and
# scripts/bench-rsync.sh: rsync -rt of a tree of small files into a fresh
# NTFS volume mounted writable, then a second rsync into a volume that
# already holds them (it finds nothing to copy). ntfs-3g, or with
# RS_BASE=path an older offvm binary, is the peer. Needs B (with m-peer
# and m-offvm), OFFVM, peer_umount and pair.

# rsync_setup SCAN_DIR EMPTY_IMAGE N: the first directories of SCAN_DIR
# holding N files or more, the empty volume, and a copy of it that holds
# them already (written by ntfs-3g), in $RB.
rsync_setup() {
  export RB=$B/rsync RB_EMPTY=$2
  mkdir -p "$RB/src" "$RB/peer" "$RB/offvm"
  for d in "$1"/d*; do
    [ "$(find "$RB/src" -type f | wc -l)" -ge "$3" ] && break
    cp -a "$d" "$RB/src/"
  done
  cp --sparse=always "$2" "$RB/base.img"
  ntfs-3g "$RB/base.img" "$B/m-peer"; rsync -rt "$RB/src/" "$B/m-peer/rs/"; peer_umount "$B/m-peer" "$RB/base.img"
}
# rs_mount IMAGE: the side's fresh copy of IMAGE, mounted writable, its
# volume opened: ntfs-3g opens it (boot sector, $MFT, $UpCase, $Bitmap)
# as it mounts, offvm at the first lookup inside the image, which would
# otherwise fall in the timed part on one side only.
rs_mount() {
  rm -f "$R"/*; cp --sparse=always "$1" "$R/vol.img"
  if [ "$SIDE" = offvm ]; then "$OFFVM" mount "$R" "$B/m-offvm"
  elif [ -n "${RS_BASE:-}" ]; then "$RS_BASE" mount "$R" "$B/m-peer"
  else ntfs-3g "$R/vol.img" "$B/m-peer"; fi
  stat "$(rs_root)" >/dev/null
}
rs_root() { # the volume's root directory
  if [ "$SIDE" = offvm ]; then echo "$B/m-offvm/vol.img/p0"
  elif [ -n "${RS_BASE:-}" ]; then echo "$B/m-peer/vol.img/p0"
  else echo "$B/m-peer"; fi
}
rs_dir() { echo "$(rs_root)/rs"; }
rs_umount() {
  if [ "$SIDE" = offvm ]; then "$OFFVM" unmount --discard "$B/m-offvm" >/dev/null
  elif [ -n "${RS_BASE:-}" ]; then "$RS_BASE" unmount --discard "$B/m-peer" >/dev/null
  else peer_umount "$B/m-peer" "$R/vol.img"; fi
}
export -f rs_mount rs_root rs_dir rs_umount

# rsync_pairs ID_SUFFIX PEER_LABEL: the two figures.
rsync_pairs() {
  local n_rs
  n_rs=$(find "$RB/src" -type f | wc -l)
  pair -id "rsync$1" -label "rsync of ${n_rs} files into a mounted volume" -peer "$2" -cold \
    -ra "$RB/peer" -rb "$RB/offvm" -setup 'rs_mount "$RB_EMPTY"' -teardown rs_umount \
    -run 'rsync -rt "$RB/src/" "$(rs_dir)/"' -check 'echo "$(rsync -r --checksum --dry-run --out-format=%n "$RB/src/" "$(rs_dir)/" | grep -vc /\$) differ; $(find "$(rs_dir)" -type f | wc -l) files"'
  pair -id "rsync-again$1" -label "second rsync of the ${n_rs} files (nothing to copy)" -peer "$2" -cold -same-output \
    -ra "$RB/peer" -rb "$RB/offvm" -setup 'rs_mount "$RB/base.img"' -teardown rs_umount \
    -run 'rsync -rt -i "$RB/src/" "$(rs_dir)/"' -check 'echo "$(find "$(rs_dir)" -type f | wc -l) files"' \
    -expect "echo '$n_rs files'"
}
