#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test-animate.sh — `tessera-cli animate` end to end on the bundled demo model: an 8-step
# generation's PNG becomes an animated WebP of 8 frames of 128x128 (decoded with libwebp's
# WebPAnimDecoder by test-animate), in both styles; a PNG without a trajectory is refused.
# Usage: test-animate.sh TESSERA_CLI TEST_ANIMATE DEMO_MODEL_DIR
set -euo pipefail
cli=${1:?usage}; check=${2:?usage}; model=${3:?usage}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0; failed=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
fail () { n=$((n + 1)); echo "not ok $n - $1"; failed=1; }

"$cli" generate --model "$model" --prompt "a red fox in the snow" --seed 5 --steps 8 --size 128x128 \
  --quiet --out "$tmp/fox.png" >/dev/null || fail "generate"
"$cli" animate --image "$tmp/fox.png" --out "$tmp/fox.webp" >/dev/null \
  && "$check" "$tmp/fox.webp" 8 128 128 >/dev/null \
  && ok "animate: 8 steps give 8 frames of 128x128" || fail "animate: 8 frames"
"$cli" animate --image "$tmp/fox.png" --out "$tmp/fox-codebook.webp" --codebook >/dev/null \
  && "$check" "$tmp/fox-codebook.webp" 8 128 128 >/dev/null \
  && ok "animate --codebook: 8 frames" || fail "animate --codebook"
"$cli" make-mask 64x64 0,0,8,8 "$tmp/plain.png" >/dev/null
if "$cli" animate --image "$tmp/plain.png" --out "$tmp/plain.webp" 2>"$tmp/err"; then
  fail "a PNG without a trajectory is refused"
else
  grep -q "trajectory" "$tmp/err" && [ ! -e "$tmp/plain.webp" ] \
    && ok "a PNG without a trajectory is refused" || fail "refusal message"
fi
echo "1..$n"
exit $failed
