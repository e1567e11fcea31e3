#!/bin/sh
# SPDX-License-Identifier: MIT
# tools/gpu-report.sh's logic on lavapipe: device selection (a CPU-type device only with
# --allow-cpu-device), the golden set plain and through the check backend, bench, and the
# summary table with every row filled. The kernel tests and the build are skipped (they
# run in their own suites), and bench uses the tiny golden model instead of a random one
# at the real size. Skips (77) without the golden set or without a Vulkan device.
src=${1:?usage: test-gpu-report.sh SOURCE_ROOT BUILD_ROOT}
build=${2:?usage: test-gpu-report.sh SOURCE_ROOT BUILD_ROOT}
golden=${TESSERA_GOLDEN_DIR:-}
if [ -z "$golden" ] || [ ! -f "$golden/index.json" ]; then
  echo "golden set not found: skipping"; exit 77
fi
"$build/app/cli/tessera-cli" devices | grep -q '^vulkan:0 ' || { echo "no Vulkan device: skipping"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; cat "$tmp/out.txt" 2>/dev/null | tail -n 40; exit 1; }

# Bad usage and a CPU-type device without the flag: exit 2 with a reason.
"$src/tools/gpu-report.sh" --bogus >"$tmp/out.txt" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "unknown option '--bogus'" "$tmp/out.txt" || fail "unknown option (rc $rc)"
if ! "$build/app/cli/tessera-cli" devices | grep -q -E 'type (discrete|integrated|virtual|other)'; then
  "$src/tools/gpu-report.sh" --no-build --build "$build" --skip-kernels >"$tmp/out.txt" 2>&1; rc=$?
  [ $rc = 2 ] && grep -q 'allow-cpu-device' "$tmp/out.txt" || fail "CPU-type device taken without the flag (rc $rc)"
fi

"$src/tools/gpu-report.sh" --no-build --build "$build" --device 0 --allow-cpu-device \
  --skip-kernels --golden "$golden" --model "$golden/models/tiny-meissonic" --size 256x256 \
  --steps 1 --out "$tmp/table.md" >"$tmp/out.txt" 2>&1; rc=$?
[ $rc = 0 ] || fail "gpu-report exited $rc"
t=$tmp/table.md
grep -q '^| device | vulkan:0 ' "$t" || fail "no device row"
grep -q '^| driver | [^u]' "$t" || fail "no driver"
grep -q -E '^\| check-golden vulkan:0 \| ([0-9]+) cases: \1 passed, 0 failed' "$t" || fail "check-golden row"
grep -q -E '^\| check backend \(check:vulkan:0, golden set\) \| ([0-9]+) cases: \1 passed, 0 failed' "$t" || fail "check backend row"
for row in 'load' 'text encoder' 'transformer step' 'VQ decode' 'estimate for a full image'; do
  grep -q -E "^\| $row \| [0-9]+\.[0-9]+ s \|" "$t" || fail "no figure for $row"
done
grep -q -E '^\| sampler step \(CFG \+ scheduler\) \| [0-9]+\.[0-9]+ s \|' "$t" || fail "no sampler figure"
grep -q -E '^\| transformer GFLOP/s \| [0-9.]+ GFLOP/s \|' "$t" || fail "no GFLOP/s"
grep -q -E '^\| peak device memory \| [0-9.]+ GB \|' "$t" || fail "no device memory"
grep -q '^| result | all checks passed |' "$t" || fail "result row"
cat "$t"
echo "gpu-report: table complete"
