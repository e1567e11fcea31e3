#!/bin/sh
# SPDX-License-Identifier: MIT
# `tessera-cli check-golden` over the golden set on one backend, as a test: every case
# kind must pass (not implemented counts as a failure). Skips (77) without the golden set.
cli=${1:?usage: run-check-golden.sh TESSERA_CLI BACKEND}
backend=${2:?usage: run-check-golden.sh TESSERA_CLI BACKEND}
golden=${TESSERA_GOLDEN_DIR:-}
if [ -z "$golden" ] || [ ! -f "$golden/index.json" ]; then
  echo "golden set not found (TESSERA_GOLDEN_DIR=$golden): skipping"
  exit 77
fi
exec "$cli" check-golden "$golden" --backend "$backend"
