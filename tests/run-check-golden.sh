#!/bin/sh
# SPDX-License-Identifier: MIT
# `tessera-cli check-golden` over the golden set on one backend, as a test: every case
# kind must pass (not implemented counts as a failure). Skips (77) without the golden set.
# PRECISION (default fp32) bf16 runs the bf16 rule; on a CPU without AVX-512 the fast
# backend must refuse it naming AVX-512, and the test then skips.
cli=${1:?usage: run-check-golden.sh TESSERA_CLI BACKEND [PRECISION]}
backend=${2:?usage: run-check-golden.sh TESSERA_CLI BACKEND [PRECISION]}
precision=${3:-fp32}
golden=${TESSERA_GOLDEN_DIR:-}
if [ -z "$golden" ] || [ ! -f "$golden/index.json" ]; then
  echo "golden set not found (TESSERA_GOLDEN_DIR=$golden): skipping"
  exit 77
fi
if [ "$precision" = bf16 ] && [ "$backend" = cpu ]; then
  out=$("$cli" check-golden "$golden" --backend cpu --precision bf16 2>&1) && { echo "$out"; exit 0; }
  echo "$out"
  if echo "$out" | grep -q "precision bf16 needs a CPU with AVX-512"; then
    echo "no AVX-512 here: bf16 refused as it should be; skipping"
    exit 77
  fi
  exit 1
fi
exec "$cli" check-golden "$golden" --backend "$backend" --precision "$precision"
