#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One command for a machine with a real GPU: builds Tessera, lists the Vulkan devices, runs
# the kernel tests, check-golden and the check backend (every op on the device and on the
# CPU reference) on one device, then `bench` at the real size on a model folder with random
# weights. Prints one summary table (markdown) at the end: device, driver, test results,
# per-stage times, GFLOP/s and peak device memory. Meant to finish in well under 10
# minutes on an H100-class GPU; docs/architecture.md, "Bringing up a GPU", says how to read it.
#
# Usage: tools/gpu-report.sh [options]
#   --build DIR         build folder (default build-gpu; configured as a release build)
#   --no-build          use DIR as it is (a build carried from elsewhere)
#   --device N          the Vulkan device (default: the first that is not CPU-type)
#   --allow-cpu-device  accept a CPU-type device such as lavapipe (to test this script)
#   --golden DIR        the golden set (default ../shared/golden beside the source tree)
#   --model DIR         bench this model folder instead of writing a random one
#   --size WxH          bench size (default 1024x1024, the real model's)
#   --steps N           bench steps (default 2)
#   --skip-kernels      skip the kernel tests (they take a minute or two)
#   --out FILE          also write the summary table to FILE
# Exit status: 0 when every check passed, 1 when one failed (the table says which), 2 for
# bad usage or a missing tool.
set -uo pipefail
cd "$(dirname "$0")/.."
src=$PWD

build=build-gpu
do_build=1
device=
allow_cpu=0
golden=$src/../shared/golden
model=
size=1024x1024
steps=2
kernels=1
out=

usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
need() { [ $# -ge 2 ] || { echo "gpu-report: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case $1 in
    --build) need "$@"; build=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --device) need "$@"; device=$2; shift 2 ;;
    --allow-cpu-device) allow_cpu=1; shift ;;
    --golden) need "$@"; golden=$2; shift 2 ;;
    --model) need "$@"; model=$2; shift 2 ;;
    --size) need "$@"; size=$2; shift 2 ;;
    --steps) need "$@"; steps=$2; shift 2 ;;
    --skip-kernels) kernels=0; shift ;;
    --out) need "$@"; out=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-report: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case $device in ''|[0-9]|[0-9][0-9]) ;; *) echo "gpu-report: --device takes an index" >&2; exit 2 ;; esac
case $size in [0-9]*x[0-9]*) ;; *) echo "gpu-report: --size takes WxH" >&2; exit 2 ;; esac
case $steps in [1-9]|[1-9][0-9]) ;; *) echo "gpu-report: --steps takes 1 to 99" >&2; exit 2 ;; esac

t0=$(date +%s)
log=$(mktemp -d "${TMPDIR:-/tmp}/gpu-report.XXXXXX")
step() { echo; echo "=== $* ($(( $(date +%s) - t0 )) s)"; }
failed=0
declare -A row

# ---- build ----
if [ $do_build = 1 ]; then
  step "build ($build)"
  for tool in meson ninja glslc; do
    command -v $tool >/dev/null || { echo "gpu-report: $tool not found (tools/debian-packages.txt lists what a build needs)" >&2; exit 2; }
  done
  if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" --buildtype=release -Dapp=disabled -Dvulkan=enabled \
      -Dgolden_dir="$golden" >"$log/setup.log" 2>&1 \
      || { tail -n 30 "$log/setup.log"; echo "gpu-report: meson setup failed" >&2; exit 2; }
  fi
  ninja -C "$build" >"$log/build.log" 2>&1 \
    || { tail -n 30 "$log/build.log"; echo "gpu-report: build failed" >&2; exit 2; }
fi
cli=$build/app/cli/tessera-cli
[ -x "$cli" ] || { echo "gpu-report: $cli not found (build first, or drop --no-build)" >&2; exit 2; }

# ---- devices ----
step "devices"
if ! "$cli" devices >"$log/devices.txt" 2>&1; then
  cat "$log/devices.txt"
  echo "gpu-report: no Vulkan device (is a driver installed? VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset})" >&2
  exit 2
fi
cat "$log/devices.txt"
# "vulkan:N  NAME" lines, each followed by "    type T, Vulkan V, ..." and "    driver ...".
pick=$(awk -v want="$device" -v allow="$allow_cpu" '
  /^vulkan:[0-9]+ / { idx = substr($1, 8); name = $0; sub(/^vulkan:[0-9]+ +/, "", name); next }
  /^    type / && idx != "" {
    type = $2; sub(/,$/, "", type)
    if ((want == "" && (type != "cpu" || allow == 1)) || want == idx) {
      if (want == "" || want == idx) { print idx "\t" type "\t" name; exit }
    }
    idx = ""
  }' "$log/devices.txt")
if [ -z "$pick" ]; then
  if [ -n "$device" ]; then echo "gpu-report: no device vulkan:$device" >&2
  else echo "gpu-report: no GPU found (only CPU-type devices; --allow-cpu-device takes them)" >&2; fi
  exit 2
fi
IFS=$'\t' read -r dev dev_type dev_name <<<"$pick"
if [ "$dev_type" = cpu ] && [ $allow_cpu = 0 ]; then
  echo "gpu-report: vulkan:$dev is a CPU-type device ($dev_name); pass --allow-cpu-device to use it" >&2
  exit 2
fi
driver=$(awk -v d="vulkan:$dev" '$1 == d { f = 1; next } /^vulkan:/ { f = 0 }
  f && /^    driver / { sub(/^    driver /, ""); print; exit }' "$log/devices.txt")
row[device]="vulkan:$dev $dev_name ($dev_type)"
row[driver]=${driver:-unknown}
export TESSERA_VK_DEVICE=$dev

# ---- kernel tests ----
if [ $kernels = 1 ]; then
  step "kernel tests on vulkan:$dev"
  # The kernel programs compare every op against the CPU reference on the device that
  # TESSERA_VK_DEVICE names (tests/kernel-common.c).
  meson test -C "$build" --suite kernels --no-rebuild --print-errorlogs >"$log/kernels.log" 2>&1
  k_ok=$(awk '/^Ok:/ {print $2}' "$log/kernels.log")
  k_fail=$(awk '/^Fail:/ {print $2}' "$log/kernels.log")
  k_skip=$(awk '/^Skipped:/ {print $2}' "$log/kernels.log")
  row[kernels]="${k_ok:-0} passed, ${k_fail:-?} failed, ${k_skip:-0} skipped"
  [ "${k_fail:-1}" = 0 ] || { failed=1; grep -E 'FAIL|TIMEOUT' "$log/kernels.log" | head -n 20; }
else
  row[kernels]="skipped (--skip-kernels)"
fi

# ---- golden set, plain and through the check backend ----
run_golden() { # backend label
  if [ ! -f "$golden/index.json" ]; then row[$2]="skipped (no golden set at $golden)"; return; fi
  step "check-golden --backend $1"
  "$cli" check-golden "$golden" --backend "$1" >"$log/$2.log" 2>&1
  local rc=$?
  local summary
  summary=$(grep -E '^[0-9]+ of [0-9]+ cases passed|cases? passed|passed,' "$log/$2.log" | tail -n 1)
  row[$2]="${summary:-exit $rc}"
  if [ $rc != 0 ]; then
    failed=1
    row[$2]="${row[$2]}; FAILED: $(grep -m1 -E 'FAIL|out of tolerance|tessera-cli:' "$log/$2.log" | cut -c1-160)"
  fi
  tail -n 3 "$log/$2.log"
}
run_golden "vulkan:$dev" golden
run_golden "check:vulkan:$dev" check

# ---- bench at the real size ----
if [ -z "$model" ]; then
  model=$log/random-model
  step "make-random-model (real configs, f16)"
  if ! "$cli" make-random-model --configs "$golden/real-configs" --out "$model" --dtype f16 \
       >"$log/make-model.log" 2>&1; then
    tail -n 5 "$log/make-model.log"
    echo "gpu-report: could not write the random model" >&2
    model=
    failed=1
  fi
fi
if [ -n "$model" ]; then
  step "bench --size $size --steps $steps on vulkan:$dev"
  if "$cli" bench --model "$model" --size "$size" --steps "$steps" --backend "vulkan:$dev" \
       >"$log/bench.log" 2>&1; then
    cat "$log/bench.log"
  else
    tail -n 10 "$log/bench.log"
    failed=1
  fi
fi
# "  label        12.345  (...)": the number after the label.
bench_value() {
  awk -v l="$1" 'index($0, "  " l " ") == 1 { split(substr($0, length(l) + 4), a, " "); print a[1]; exit }' \
    "$log/bench.log" 2>/dev/null
}
for stage in "load" "text encoder" "transformer step" "sampler step (CFG + scheduler)" \
             "VQ decode" "estimate for a full image"; do
  v=$(bench_value "$stage")
  row["s:$stage"]=${v:-n/a}
done
gflops=$(grep -m1 -oE '[0-9.]+ GFLOP/s' "$log/bench.log" 2>/dev/null)
devmem=$(awk 'index($0, "  peak device memory ") == 1 { print $4, $5; exit }' "$log/bench.log" 2>/dev/null)

# ---- summary ----
elapsed=$(( $(date +%s) - t0 ))
table=$log/summary.md
{
  echo "| tessera gpu-report | $(git -C "$src" describe --always --dirty 2>/dev/null || echo unknown) |"
  echo "|---|---|"
  echo "| device | ${row[device]} |"
  echo "| driver | ${row[driver]} |"
  echo "| kernel tests | ${row[kernels]} |"
  echo "| check-golden vulkan:$dev | ${row[golden]} |"
  echo "| check backend (check:vulkan:$dev, golden set) | ${row[check]} |"
  echo "| bench model | ${model:-none}, $size, $steps steps |"
  for stage in "load" "text encoder" "transformer step" "sampler step (CFG + scheduler)" \
               "VQ decode" "estimate for a full image"; do
    echo "| $stage | ${row["s:$stage"]} s |"
  done
  echo "| transformer GFLOP/s | ${gflops:-n/a} |"
  echo "| peak device memory | ${devmem:-n/a} |"
  echo "| report time | $elapsed s |"
  echo "| result | $([ $failed = 0 ] && echo "all checks passed" || echo "SOME CHECKS FAILED (logs in $log)") |"
} >"$table"
echo
cat "$table"
[ -n "$out" ] && cp "$table" "$out"
exit $failed
