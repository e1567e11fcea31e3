#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cancel-latency benchmark (issue 17: a cancel is honoured within a second at any size).
# Starts `tessera-cli generate` on a model whose transformer is small but whose image is
# large (the golden set's tiny model at 2048x2048 by default), sends SIGINT at a random
# point of the generation (the delay counts from the "generating" line, once the model
# has loaded), and measures the time from the signal to the process's exit. Prints
# one line per trial and the median and maximum against the 1 s goal. It asserts nothing:
# it is a benchmark, and timings belong in reports, not in tests.
#
# Usage: tools/bench-cancel.sh CLI [MODEL_DIR] [SIZE] [TRIALS] [BACKEND] [MAX_DELAY_S] [FROM]
#   CLI          path to tessera-cli
#   MODEL_DIR    default: $TESSERA_GOLDEN_DIR/models/tiny-meissonic
#   SIZE         default: 2048x2048
#   TRIALS       default: 5
#   BACKEND      default: cpu
#   MAX_DELAY_S  the signal comes uniformly within [1, MAX_DELAY_S] s of the start of the
#                generation; default 40 (a
#                full run of the default takes about 45 s on 2 cores: 4 steps, then the
#                VQ decode, whose convolutions are the longest ops)
#   FROM         the progress line (an extended regex) the delay counts from; default
#                '^generating'. '^step 4/4' puts every signal after the last step, in
#                the VQ decode when MAX_DELAY_S is shorter than the decode
set -euo pipefail
cli=${1:?usage: bench-cancel.sh CLI [MODEL_DIR] [SIZE] [TRIALS] [BACKEND] [MAX_DELAY_S] [FROM]}
model=${2:-${TESSERA_GOLDEN_DIR:-../shared/golden}/models/tiny-meissonic}
size=${3:-2048x2048}
trials=${4:-5}
backend=${5:-cpu}
max_delay=${6:-40}
from=${7:-^generating}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }
echo "# cancel latency: $backend, $size, $trials trials, SIGINT within 1..${max_delay} s of /$from/"
lat=()
for t in $(seq 1 "$trials"); do
  delay=$(awk -v s="$RANDOM" -v m="$max_delay" 'BEGIN { srand(s); printf "%.2f", 1 + rand() * (m - 1) }')
  "$cli" generate --model "$model" --backend "$backend" --size "$size" --steps 4 --seed "$t" \
    --prompt "cancel me" --out "$tmp/out.png" >/dev/null 2>"$tmp/err.txt" &
  pid=$!
  # Loading is not what is measured (and SIGINT before the handler is set just kills).
  while kill -0 "$pid" 2>/dev/null && ! grep -Eq "$from" "$tmp/err.txt"; do sleep 0.05; done
  sleep "$delay"
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" || true
    echo "trial $t: the run ended before the signal at ${delay} s; lower MAX_DELAY_S"
    continue
  fi
  t0=$(now)
  kill -INT "$pid"
  rc=0
  wait "$pid" || rc=$?
  t1=$(now)
  ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
  written=no
  [ -e "$tmp/out.png" ] && written=yes
  echo "trial $t: SIGINT at ${delay} s, exit ${rc} after ${ms} ms, output written: $written"
  lat+=("$ms")
  rm -f "$tmp/out.png"
done
if [ "${#lat[@]}" -gt 0 ]; then
  printf '%s\n' "${lat[@]}" | sort -n | awk '{ v[NR] = $1 } END {
    med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "median %.0f ms, max %.0f ms over %d trials (goal: <= 1000 ms): %s\n", med, v[NR], NR,
           v[NR] <= 1000 ? "met" : "NOT met" }'
fi
