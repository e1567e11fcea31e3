#!/bin/sh
# SPDX-License-Identifier: MIT
# Every file tessera-cli reads is checked to be a regular file before a byte is read
# (issue 17, item 2): a FIFO in a model folder or as an input PNG used to block the loader
# for ever, waiting for a writer. Each case here must exit non-zero within seconds with a
# message naming the file and what it is; `timeout` turns a hang into a failure. Also the
# words of item 8: "not found"/"missing" only when nothing is at the path, tokenize names
# the file really missing, tokenizer ids beyond the text encoder's vocabulary are refused at
# load (by inspect too), --cfg has a range, and inspect estimates memory at the model's own
# default size. Skips without the golden set (its tiny model is the folder the broken
# copies are made from).
set -eu
cli=${1:?usage: test-input-files.sh TESSERA_CLI}
golden=${TESSERA_GOLDEN_DIR:-}
if [ -z "$golden" ] || [ ! -f "$golden/index.json" ]; then
  echo "1..0 # SKIP golden set not found"
  exit 0
fi
model="$golden/models/tiny-meissonic"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { n=$((n + 1)); echo "not ok $n - $*"; [ -f "$tmp/err" ] && sed 's/^/# /' "$tmp/err"; exit 1; }

# expect_refusal NAME PATTERN CMD...: CMD exits non-zero (not by timeout) within 20 s, and
# its stderr matches PATTERN (grep -E).
expect_refusal() {
  name=$1 pattern=$2
  shift 2
  rc=0
  timeout 20 "$@" >/dev/null 2>"$tmp/err" </dev/null || rc=$?
  [ "$rc" -ne 0 ] || fail "$name: exit 0"
  [ "$rc" -ne 124 ] || fail "$name: hung (killed after 20 s)"
  grep -Eq -e "$pattern" "$tmp/err" || fail "$name: message"
  ok "$name"
}

# broken_copy NAME: a fresh copy of the tiny model in $tmp/NAME.
broken_copy() { rm -rf "$tmp/$1"; cp -R "$model" "$tmp/$1"; chmod -R u+w "$tmp/$1"; }

for f in tokenizer_config.json special_tokens_map.json vocab.json merges.txt; do
  broken_copy "fifo-$f"
  rm "$tmp/fifo-$f/tokenizer/$f"
  mkfifo "$tmp/fifo-$f/tokenizer/$f"
  expect_refusal "FIFO tokenizer/$f: tokenize" "tokenizer/$f' is a FIFO, not a regular file" \
    "$cli" tokenize "$tmp/fifo-$f" "a cat"
  expect_refusal "FIFO tokenizer/$f: generate" "tokenizer/$f' is a FIFO, not a regular file" \
    "$cli" generate --model "$tmp/fifo-$f" --prompt "a cat" --steps 1 --quiet --out "$tmp/x.png"
done
[ ! -e "$tmp/x.png" ] && ok "nothing written by the refused runs" || fail "nothing written"

for f in model_index.json transformer/config.json vqvae/config.json \
         text_encoder/config.json scheduler/scheduler_config.json; do
  name=$(echo "$f" | tr / -)
  broken_copy "fifo-$name"
  rm "$tmp/fifo-$name/$f"
  mkfifo "$tmp/fifo-$name/$f"
  expect_refusal "FIFO $f: inspect" "$f' is a FIFO, not a regular file" "$cli" inspect "$tmp/fifo-$name"
done

broken_copy fifo-weights
rm "$tmp/fifo-weights/vqvae/diffusion_pytorch_model.safetensors"
mkfifo "$tmp/fifo-weights/vqvae/diffusion_pytorch_model.safetensors"
expect_refusal "FIFO safetensors: generate" "diffusion_pytorch_model.safetensors' is a FIFO" \
  "$cli" generate --model "$tmp/fifo-weights" --prompt "a cat" --steps 1 --quiet --out "$tmp/x.png"

# A directory where a file should be: named as a directory, not "implausibly large".
broken_copy dir-config
rm "$tmp/dir-config/tokenizer/tokenizer_config.json"
mkdir "$tmp/dir-config/tokenizer/tokenizer_config.json"
expect_refusal "directory as tokenizer_config.json" \
  "tokenizer_config.json' is a directory, not a regular file" "$cli" tokenize "$tmp/dir-config" "a cat"
# A dangling link and a link loop are not "missing".
broken_copy links
rm "$tmp/links/scheduler/scheduler_config.json" "$tmp/links/tokenizer/vocab.json"
ln -s nowhere.json "$tmp/links/scheduler/scheduler_config.json"
ln -s vocab.json "$tmp/links/tokenizer/vocab.json"
expect_refusal "dangling symlink config" "scheduler_config.json' is a dangling symbolic link" \
  "$cli" inspect "$tmp/links"
rm "$tmp/links/scheduler/scheduler_config.json"
cp "$model/scheduler/scheduler_config.json" "$tmp/links/scheduler/"
expect_refusal "symlink loop vocab.json" "vocab.json' is a symbolic link loop" \
  "$cli" tokenize "$tmp/links" "a cat"

# PNG inputs.
mkfifo "$tmp/fifo.png"
"$cli" make-mask 64x64 0,0,32,64 "$tmp/mask.png" >/dev/null || fail "make-mask"
expect_refusal "FIFO png: info" "fifo.png' is a FIFO, not a regular file" "$cli" info "$tmp/fifo.png"
expect_refusal "FIFO png: inpaint --image" "fifo.png' is a FIFO, not a regular file" \
  "$cli" inpaint --model "$model" --image "$tmp/fifo.png" --mask "$tmp/mask.png" --prompt x \
  --steps 1 --quiet --out "$tmp/y.png"
expect_refusal "FIFO png: inpaint --mask" "fifo.png' is a FIFO, not a regular file" \
  "$cli" inpaint --model "$model" --image "$tmp/mask.png" --mask "$tmp/fifo.png" --prompt x \
  --steps 1 --quiet --out "$tmp/y.png"
expect_refusal "directory png: info" "is a directory, not a regular file" "$cli" info "$tmp"
expect_refusal "missing png: info" "nope.png' not found" "$cli" info "$tmp/nope.png"

# Item 8: messages that say what is really wrong.
broken_copy no-merges
rm "$tmp/no-merges/tokenizer/merges.txt"
expect_refusal "tokenize without merges.txt names merges.txt" "tokenizer/merges.txt' not found" \
  "$cli" tokenize "$tmp/no-merges" "a cat"
grep -q "vocab.json" "$tmp/err" && fail "tokenize without merges.txt: vocab.json not named" || true
echo "not a folder" > "$tmp/file-model"
expect_refusal "a file as the model folder" "file-model is a regular file, not a folder" \
  "$cli" inspect "$tmp/file-model"
expect_refusal "--cfg 1e308: a range error" "--cfg: '1e308' is not a number from 0 to 1000" \
  "$cli" generate --model "$model" --prompt x --cfg 1e308 --out "$tmp/x.png"
grep -q "finite" "$tmp/err" && fail "--cfg 1e308: not 'not finite'" || true
# The bundled demo model (598 tokens): an id past its text encoder's vocabulary.
demo="$(dirname "$0")/../data/demo-model"
if [ -f "$demo/model_index.json" ]; then
  rm -rf "$tmp/big-id"
  cp -R "$demo" "$tmp/big-id"
  chmod -R u+w "$tmp/big-id"
  sed 's/^{/{"zzz<\/w>": 700, /' "$demo/tokenizer/vocab.json" > "$tmp/big-id/tokenizer/vocab.json"
  expect_refusal "vocab id past the text encoder's vocabulary: generate" \
    "vocab.json has token id 700 .*beyond the text encoder's vocabulary of 598" \
    "$cli" generate --model "$tmp/big-id" --prompt x --steps 1 --quiet --out "$tmp/x.png"
  expect_refusal "vocab id past the text encoder's vocabulary: inspect too" \
    "vocab.json has token id 700" "$cli" inspect "$tmp/big-id"
  "$cli" inspect "$demo" > "$tmp/inspect.txt" 2>&1 || fail "inspect the demo model"
  grep -q "Estimated memory to generate at 128x128 (default size" "$tmp/inspect.txt" \
    && ok "inspect: memory at the demo model's 128x128" || fail "inspect: memory at the demo model's 128x128"
else
  n=$((n + 1)); echo "ok $n # SKIP no demo model at $demo"
fi
[ ! -e "$tmp/x.png" ] && ok "nothing written by the refused runs" || fail "nothing written"

echo "1..$n"
