# shellcheck shell=bash
# The write figure of `make bench`, sourced by scripts/bench.sh and
# scripts/bench-write.sh: WRITE_MIB MiB in one file and WRITE_FILES files
# of 2,000 bytes copied into a fresh NTFS volume until durable in the image
# (ntfs-3g: cp, umount, the daemon's exit and an fsync; offvm: mount, cp,
# unmount, which commits). The written image must hold the files (read
# back by ntfs-3g) and pass ntfsresize's consistency check.
# Needs B (with m-peer and m-offvm), OFFVM, peer_umount, tree_sum and pair.

# write_setup builds the source tree and the empty volume in $B/write.
write_setup() {
  export WB=$B/write
  mkdir -p "$WB/src/small" "$WB/peer" "$WB/offvm"
  head -c "${WRITE_MIB}M" /dev/urandom > "$WB/src/big.bin"
  head -c $((WRITE_FILES * 2000)) /dev/urandom | (cd "$WB/src/small" && split -b 2000 -a 4 -d - s-)
  truncate -s $((WRITE_MIB * 2 + 256))M "$WB/base.img"
  mkntfs -q -F -Q -L write "$WB/base.img" 2>/dev/null
}

write_check() { # IMAGE
  ntfsresize --info --force --no-progress-bar "$1" >/dev/null || { echo "ntfsresize --info refused $1" >&2; return 1; }
  local m; m=$(mktemp -d); ntfs-3g -o ro "$1" "$m"; tree_sum "$m/w"; umount "$m"; rmdir "$m"
}
export -f write_check

# write_pair [bench-tool pair flags...]
write_pair() {
  pair -id write -label "write ${WRITE_MIB} MiB + ${WRITE_FILES} files until durable in the image" -peer ntfs-3g -cold \
    -ra "$WB/peer" -rb "$WB/offvm" \
    -setup 'rm -rf "$R"/*; cp --sparse=always "$WB/base.img" "$R/vol.img"' \
    -run-a 'ntfs-3g "$R/vol.img" "$B/m-peer" && mkdir "$B/m-peer/w" && cp -r "$WB/src/." "$B/m-peer/w/" && peer_umount "$B/m-peer" "$R/vol.img"' \
    -run-b '"$OFFVM" mount "$R" "$B/m-offvm" && mkdir "$B/m-offvm/vol.img/p0/w" && cp -r "$WB/src/." "$B/m-offvm/vol.img/p0/w/" && "$OFFVM" unmount "$B/m-offvm" >/dev/null' \
    -check 'write_check "$R/vol.img"' -expect 'tree_sum "$WB/src"' "$@"
}
