#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs each libFuzzer harness for a given time and reports, as a markdown table, the
# executions, the coverage (libFuzzer's final `cov:` edges and `ft:` features), the corpus
# size and the crashes, for docs/reliability.md. CI runs each harness for 30 s; this is the
# long run before a release or after a parser changes.
#
#   tools/fuzz-long.sh [-t SECONDS] [-j JOBS] [-b BUILD_DIR] [NAME...]
#
#   -t  seconds per harness (default 600)
#   -j  harnesses run at the same time (default 1; each uses one core)
#   -b  the fuzzing build (default build-asan: -Dfuzzing=true with ASan+UBSan, see .ci/run)
#   NAME  harnesses to run (config, png, ...); default all of BUILD_DIR/tests/fuzz/fuzz-*
#
# New inputs go to tests/fuzz/corpus-out/NAME (ignored by git), which later runs resume
# from; the seeds in tests/fuzz/corpus/NAME are only read. Crashing inputs go to
# tests/fuzz/corpus-out/crashes/, logs to tests/fuzz/corpus-out/NAME.log. A crash stops
# that harness (the table shows the executions up to it) and the script exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600 jobs=1 build=build-asan
while getopts "t:j:b:h" opt; do
  case $opt in
    t) seconds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    b) build=$OPTARG ;;
    *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in "$build"/tests/fuzz/fuzz-*; do
    [ -f "$f" ] && [ -x "$f" ] && names+=("${f##*/fuzz-}")
  done
fi
if [ ${#names[@]} -eq 0 ]; then
  echo "fuzz-long: no harnesses in $build/tests/fuzz (configure with -Dfuzzing=true)" >&2
  exit 2
fi

out=tests/fuzz/corpus-out
mkdir -p "$out/crashes"

run_one() {
  local name=$1 exe="$build/tests/fuzz/fuzz-$1" rc=0
  mkdir -p "$out/$name"
  # -timeout: an input taking over 10 s counts as a hang (a crash); -rss_limit_mb as CI.
  "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/crashes/$name-" "$out/$name" "tests/fuzz/corpus/$name" \
    >"$out/$name.log" 2>&1 || rc=$?
  echo "$rc" >"$out/$name.rc"
}

running=0
for name in "${names[@]}"; do
  [ -x "$build/tests/fuzz/fuzz-$name" ] || { echo "fuzz-long: no harness fuzz-$name" >&2; exit 2; }
  rm -f "$out/$name.rc"
  run_one "$name" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

status=0
echo "| harness | seconds | executions | exec/s | cov | ft | corpus | crashes |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for name in "${names[@]}"; do
  log="$out/$name.log"
  execs=$(awk -F: '/^stat::number_of_executed_units/ {gsub(/ /, "", $2); print $2}' "$log" | tail -n 1)
  # The last status line ("#N DONE cov: C ft: F corp: K/...") has the final coverage; a
  # crashed run has no DONE line, so take the last line with cov: at all.
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  rc=$(cat "$out/$name.rc" 2>/dev/null || echo "?")
  crashes=0
  if [ "$rc" != 0 ]; then
    crashes=$(ls "$out/crashes/" 2>/dev/null | grep -c "^$name-" || true)
    [ "$crashes" -gt 0 ] || crashes="exit $rc"
    status=1
  fi
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  rate=$(awk -v e="${execs:-0}" -v s="$seconds" 'BEGIN {printf "%d", e / s}')
  echo "| $name | $seconds | ${execs:-?} | $rate | ${cov:-?} | ${ft:-?} | ${corp:-?} | $crashes |"
done
exit $status
