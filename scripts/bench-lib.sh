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

# bench_scratch PREFIX: a scratch folder $B under /var/tmp with the mount
# points m-peer and m-offvm, removed at exit (unmounting what is still
# mounted there), the records file $RUNS in it, and bench-tool built into
# it as $BENCH_TOOL.
bench_scratch() {
  B=$(mktemp -d "/var/tmp/$1.XXXXXX")
  export B RUNS=$B/runs.jsonl
  mkdir -p "$B/m-peer" "$B/m-offvm"
  trap bench_cleanup EXIT
  go build -o "$B/bench-tool" ./scripts/bench-tool
  export BENCH_TOOL=$B/bench-tool
}
bench_cleanup() {
  for m in "$B"/m-*; do
    mountpoint -q "$m" || continue
    "$OFFVM" unmount --discard "$m" 2>/dev/null || umount "$m" 2>/dev/null || umount -l "$m"
  done
  rm -rf "$B"
}
