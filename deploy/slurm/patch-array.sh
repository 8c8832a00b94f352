#!/usr/bin/env bash
# Patch a library of VM images with Slurm: one job array whose task I runs
#   offvm patch apply --shard I/N BUNDLE LIBRARY
# on its own part of the library (no two tasks write the same image), and
# a job that runs after every task and merges their results into one report.
#
#   patch-array.sh [-n SHARDS] [-o OUTDIR] [-c CPUS] [-w] [-- SBATCH-OPTIONS...] BUNDLE LIBRARY
#
#   -n SHARDS  tasks in the array (default 8); each task patches about 1/N
#   -o OUTDIR  where results go (default ./offvm-patch-<date>); must be on
#              storage every node sees, like the library itself
#   -c CPUS    CPUs per task, also offvm's --jobs (default 1)
#   -w         wait for the merge job and exit with its status
#   after --   options passed to both sbatch calls (--partition, --account, ...)
#
# OUTDIR then holds apply-I.jsonl (one JSON object per image, the output of
# patch apply --json), inventory-I.json (offvm ls --json of the shard after
# patching), task-I.log, and after the merge: apply.jsonl (all shards),
# report.json and report.txt (offvm report --merge), merge.log.
# A shard run again (a failed task resubmitted) redoes only the images not
# patched yet: the others say "already applied".
# $OFFVM names the offvm binary (default: offvm on PATH).
set -euo pipefail
shards=8 out="" cpus=1 wait=0 extra=()
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    -n) shards=$2; shift 2;;
    -o) out=$2; shift 2;;
    -c) cpus=$2; shift 2;;
    -w) wait=1; shift;;
    -h|--help) usage;;
    --) shift; while [ $# -gt 2 ]; do extra+=("$1"); shift; done;;
    -*) echo "patch-array.sh: unknown option $1" >&2; exit 2;;
    *) break;;
  esac
done
[ $# -eq 2 ] || usage
case $shards in ''|*[!0-9]*|0) echo "patch-array.sh: -n takes a number of shards, not '$shards'" >&2; exit 2;; esac
bundle=$(realpath "$1") lib=$(realpath "$2")
offvm=$(command -v "${OFFVM:-offvm}") || { echo "patch-array.sh: no offvm binary (set OFFVM)" >&2; exit 1; }
out=$(realpath -m "${out:-offvm-patch-$(date +%Y%m%d-%H%M%S)}")
mkdir -p "$out"
q() { printf '%q ' "$@"; }   # words for a command line
q1() { printf '%q' "$1"; }     # one word, to be followed by more of itself

# Task I: patch shard I, then record the shard's inventory. The task fails
# (exit 1) when an image failed; the merge job runs anyway (afterany).
task="i=\$SLURM_ARRAY_TASK_ID
$(q "$offvm") -q patch apply --shard \$i/$shards --jobs $cpus --json $(q "$bundle" "$lib") > $(q1 "$out")/apply-\$i.jsonl
rc=\$?
$(q "$offvm") -q ls --json --shard \$i/$shards --jobs $cpus $(q "$lib") > $(q1 "$out")/inventory-\$i.json || rc=1
exit \$rc"
array=$(sbatch --parsable --job-name=offvm-patch --array=0-$((shards - 1)) --cpus-per-task="$cpus" \
  --output="$out/task-%a.log" "${extra[@]}" --wrap="$task")
array=${array%%;*}

# The merge: one report over every shard, and a failure when any image failed.
merge="set -e; cd $(q "$out")
cat apply-*.jsonl > apply.jsonl
$(q "$offvm") report --json --merge inventory-*.json > report.json
$(q "$offvm") report --merge inventory-*.json > report.txt
want=$shards; got=\$(ls inventory-*.json | wc -l)
[ \"\$got\" -eq \"\$want\" ] || { echo \"only \$got of \$want shards reported\"; exit 1; }
failed=\$(grep -c '\"status\":\"failed\"' apply.jsonl || true)
echo \"\$(wc -l < apply.jsonl) images, \$failed failed\"
[ \"\$failed\" -eq 0 ]"
waitopt=()
[ "$wait" -eq 1 ] && waitopt=(--wait)
echo "array job $array: $shards tasks over $lib; results in $out"
set +e
merge_id=$(sbatch --parsable --job-name=offvm-merge --dependency=afterany:"$array" \
  --output="$out/merge.log" "${waitopt[@]}" "${extra[@]}" --wrap="$merge")
rc=$?
set -e
echo "merge job ${merge_id%%;*}: $out/report.txt"
exit $rc
