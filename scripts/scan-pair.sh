# shellcheck shell=bash
# The parallel-scan figure of `make bench`, sourced by scripts/bench.sh and
# scripts/bench-scan.sh: `find | xargs -P4 sha256sum` over the scan tree,
# cold, both sides printing as many bytes, and the sorted sums of both the
# same as those of the source tree.
# scan_pair PEER_ROOT OFFVM_ROOT SOURCE_TREE [bench-tool pair flags...]
# (pair: the function bench.sh defines; -id, -label and -peer may be
# overridden by the extra flags, the last one given wins.)
scan_pair() {
  local pr=$1 or=$2 src=$3; shift 3
  local n; n=$(find "$src" -type f | wc -l)
  pair -id parallel-scan -label "find | xargs -P4 sha256sum, ${n} files of 4–64 KiB" -peer ntfs-3g -cold -same-size \
    -ra "$pr" -rb "$or" -run 'cd "$R" && find . -type f -print0 | xargs -0 -P4 -n 64 sha256sum' \
    -verify 'cd "$R" && find . -type f -print0 | xargs -0 -P4 -n 64 sha256sum | sort | sha256sum' \
    -expect "cd '$src' && find . -type f -print0 | xargs -0 -P4 -n 64 sha256sum | sort | sha256sum" "$@"
}
