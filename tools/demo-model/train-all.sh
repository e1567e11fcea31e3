#!/bin/sh
# SPDX-License-Identifier: MIT
# Trains the bundled demo model from nothing, exactly as data/demo-model was made, and
# writes the model folder: train-all.sh [WORK_DIR] [OUT_DIR]
# (defaults demo-work and demo-model). Needs Debian's python3-torch, python3-numpy and
# python3-pil. About 105 minutes on 2 CPU cores (VQ-VAE 30, encode 5.5, transformer 69);
# every stage is seeded, and each stage leaves its checkpoint in WORK_DIR, so a stage can
# be rerun alone (train.py --stages NAME).
#
# The sequence is the one the bundled model went through: the VQ-VAE (autoencoder on
# crops, k-means codebook, quantised training), three rounds of edge-weighted sharpening
# (each stronger round was added after the one before still left small stars and
# triangles round: the checker scored the VQ's reconstructions of the held-out scenes at
# 62 %, 80 % and then 85 % right shapes), then 48000 token grids, the text encoder +
# transformer (5800 steps at batch 64, two processes), and the export.
set -eu
here=$(dirname "$0")
work=${1:-demo-work}
out=${2:-demo-model}
py=/usr/bin/python3
"$py" "$here/train.py" --work "$work" --out "$out" --stages tokenizer,vq,vq-sharpen
"$py" "$here/train.py" --work "$work" --out "$out" --stages vq-sharpen \
  --vq-sharpen-steps 2500 --vq-edge-weight 20
"$py" "$here/train.py" --work "$work" --out "$out" --stages vq-sharpen \
  --vq-sharpen-steps 1500 --vq-edge-weight 40
"$py" "$here/train.py" --work "$work" --out "$out" --stages encode,transformer,export \
  --tr-steps 5800 --guidance 1.5
