#!/bin/sh
# SPDX-License-Identifier: MIT
# The check backend end to end through tessera-cli on the bundled demo model: `generate`
# on CHECK (check:cpu, check:vulkan:0) passes, says what it checked and gives the same
# pixels as PLAIN (cpu, vulkan:0) gives (the PNG's metadata names the backend, so the
# image data is compared); a perturbed device output (TESSERA_CHECK_INJECT, the test
# hook) fails the run with a non-zero exit, no PNG and a message naming the op, the stage
# and the layer; `bench` says that its times include the checking. Skips when PLAIN is a
# Vulkan device that `tessera-cli devices` does not list.
set -eu
cli=${1:?usage: test-check-backend.sh TESSERA_CLI CHECK PLAIN}
check=${2:?usage: test-check-backend.sh TESSERA_CLI CHECK PLAIN}
plain=${3:?usage: test-check-backend.sh TESSERA_CLI CHECK PLAIN}
model="${TESSERA_SOURCE_ROOT:?}/data/demo-model"
case "$plain" in
  vulkan*)
    if ! "$cli" devices 2>/dev/null | grep -q "^$plain "; then
      echo "1..0 # SKIP no Vulkan device $plain"
      exit 0
    fi ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { n=$((n + 1)); echo "not ok $n - $*"; exit 1; }

gen() { "$cli" generate --model "$model" --steps 4 --prompt "a red circle on the left" --seed 3 \
          --quiet "$@"; }

# The image data of a PNG: every chunk but the text ones.
pixels() {
  python3 - "$1" <<'EOF'
import struct, sys
d = open(sys.argv[1], 'rb').read()
i = 8
while i < len(d):
    n, = struct.unpack('>I', d[i:i + 4])
    if d[i + 4:i + 8] not in (b'tEXt', b'iTXt', b'zTXt'):
        sys.stdout.write(d[i + 4:i + 12 + n].hex() + '\n')
    i += 12 + n
EOF
}

gen --backend "$check" --out "$tmp/check.png" >/dev/null 2>"$tmp/check.err" \
  || { cat "$tmp/check.err"; fail "generate on $check"; }
grep -q "^check: [0-9]* ops on .* matched cpu-ref within tolerance" "$tmp/check.err" \
  && grep -q "^check:   matmul  *[0-9]* ops  worst" "$tmp/check.err" \
  && ok "generate on $check passes and reports the worst error per op kind" \
  || { cat "$tmp/check.err"; fail "generate on $check reports what it checked"; }

gen --backend "$plain" --out "$tmp/plain.png" >/dev/null 2>&1 || fail "generate on $plain"
pixels "$tmp/check.png" > "$tmp/check.hex"
pixels "$tmp/plain.png" > "$tmp/plain.hex"
[ -s "$tmp/check.hex" ] && cmp -s "$tmp/check.hex" "$tmp/plain.hex" \
  && ok "$check gives the image $plain gives" || fail "$check gives the image $plain gives"
"$cli" info "$tmp/check.png" | grep -q "Backend: \"check:" && ok "the PNG names the check backend" \
  || fail "the PNG names the check backend"

# A wrong device output must fail, naming the op, the stage and the layer.
inject() {
  what=$1 pattern=$2
  if TESSERA_CHECK_INJECT=$what gen --backend "$check" --out "$tmp/bad.png" >/dev/null \
       2>"$tmp/bad.err"; then
    cat "$tmp/bad.err"
    fail "TESSERA_CHECK_INJECT=$what fails the run"
  fi
  [ ! -e "$tmp/bad.png" ] && grep -Eq "^tessera-cli: check: $pattern" "$tmp/bad.err" \
    && ok "TESSERA_CHECK_INJECT=$what: non-zero exit, no PNG, the op, stage and layer named" \
    || { cat "$tmp/bad.err"; fail "TESSERA_CHECK_INJECT=$what: the message"; }
}
inject attention:3 "attention in transformer (dual|single) block [0-9]+ \(batch=2 .*attention call 3\) out of tolerance: max error at out\[0, 0, 0\]: reference .*, device .* > tolerance 1e-04"
inject embed "embed in text encoder \(n=[0-9]+ dim=[0-9]+, table '[a-z_.]+'; embed call 0\) differs from the reference, which it must match bit for bit"
inject group_norm:6 "group_norm in vq decoder up block [0-9]+ \(full pass.*group_norm call 6\) out of tolerance"
inject sample:2 "sample in sampler \(codebook=[0-9]+ tokens=[0-9]+ .*sample call 2\) out of tolerance: codes\[0\]"

"$cli" bench --model "$model" --steps 1 --backend "$check" >"$tmp/bench.txt" 2>"$tmp/bench.err" \
  || { cat "$tmp/bench.err"; fail "bench on $check"; }
grep -q "include the checking" "$tmp/bench.txt" && grep -q "^check: .* within tolerance" "$tmp/bench.err" \
  && ok "bench on $check says its times include the checking" \
  || { cat "$tmp/bench.txt" "$tmp/bench.err"; fail "bench on $check says its times include the checking"; }
echo "1..$n"
