# SPDX-License-Identifier: MIT
"""Writes the VQ-VAE's reconstructions of the held-out scenes, for the C checker.

    vq_reconstruct.py WORK_DIR/vq.pt OUT_DIR && build/tools/demo-eval --images OUT_DIR

Each held-out scene of eval-prompts.txt (make_dataset.eval_scenes, seed 1) is rendered at
128x128, encoded to token ids, decoded back and saved with its caption in captions.tsv.
The checker's score on these is the ceiling of the whole model: the transformer can only
pick tokens, and an outline the VQ-VAE cannot draw comes out wrong however well it picks.
"""
import os
import sys

import numpy as np
import torch
from PIL import Image

import make_dataset as ds
import train
from modules import VQModel


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().split("\n")[2].strip())
    torch.set_num_threads(1)
    vq = VQModel(train.VQ_CONFIG)
    vq.load_state_dict(torch.load(sys.argv[1]))
    vq.eval()
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "captions.tsv"), "w") as f, torch.no_grad():
        for i, scene in enumerate(ds.eval_scenes(1, 60, 20)):
            x = train.to_tensor([ds.render(scene, train.IMAGE_SIZE)])
            rec = vq.decode_indices(vq.quantize.indices(vq.encode(x))).clamp(0, 1)
            pixels = (rec[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            name = "%06d.png" % i
            Image.fromarray(pixels).save(os.path.join(out, name))
            f.write("%s\t%s\n" % (name, ds.caption(scene)))


if __name__ == "__main__":
    main()
