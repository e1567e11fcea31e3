# SPDX-License-Identifier: MIT
"""Checks that the C engine computes what modules.py computes, on an exported demo model.

Writes a small reference set in the golden set's format (index.json + cases/*.safetensors
+ models/demo -> the model folder) from the torch modules: the text encoder on a few
captions, a transformer forward on a masked token grid with CFG batch order, and a VQ
decode. `tessera-cli check-golden DIR` then runs the engine's own golden runners on it
with the documented tolerances. It also compares the Python BPE with `tessera-cli tokenize`.

Usage: check_export.py --model DIR --out DIR [--cli build/app/cli/tessera-cli]
"""
import argparse
import json
import os
import subprocess

import torch

import bpe
import export
from modules import CLIPTextModelWithProjection, Transformer2DModel, VQModel
from safetensors_read import load

PROMPTS = ["", "a large red circle on the left, blue background",
           "a yellow star and a green square", "A small WHITE triangle at the top!"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cli", default="build/app/cli/tessera-cli")
    a = ap.parse_args()
    torch.manual_seed(0)
    m = os.path.abspath(a.model)
    cfg = {c: json.load(open("%s/%s/config.json" % (m, c)))
           for c in ("text_encoder", "transformer", "vqvae")}
    te = CLIPTextModelWithProjection(cfg["text_encoder"])
    te.load_state_dict(load(m + "/text_encoder/model.safetensors"))
    tr = Transformer2DModel(cfg["transformer"])
    tr.load_state_dict(load(m + "/transformer/diffusion_pytorch_model.safetensors"))
    vq = VQModel(cfg["vqvae"])
    vq.load_state_dict(load(m + "/vqvae/diffusion_pytorch_model.safetensors"))
    with open(m + "/tokenizer/merges.txt", encoding="utf-8") as f:
        tok = bpe.BPE([tuple(x.split()) for x in f.read().split("\n")[1:] if x])

    os.makedirs(a.out + "/cases", exist_ok=True)
    os.makedirs(a.out + "/models", exist_ok=True)
    link = a.out + "/models/demo"
    if not os.path.islink(link):
        os.symlink(m, link)
    cases = {}

    # Tokenizer: Python BPE against the engine's tokenizer.
    out = subprocess.run([a.cli, "tokenize", m] + PROMPTS, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    for p, line in zip(PROMPTS, out):
        c_ids = [int(x) for x in line.replace(",", " ").split()]
        assert c_ids == tok.encode(p), (p, c_ids[:16], tok.encode(p)[:16])
    print("tokenizer: %d prompts identical" % len(PROMPTS))

    with torch.no_grad():
        ids = torch.tensor([tok.encode(p) for p in PROMPTS])
        hidden, pooled = te(ids)
        tm = te.text_model
        x = tm.embeddings.token_embedding(ids) + tm.embeddings.position_embedding.weight[None]
        mask = torch.full((77, 77), float("-inf")).triu(1)
        clip = {"in.input_ids": ids, "mid.embeddings": x, "mid.hidden_states_all.0": x}
        for i, layer in enumerate(tm.encoder.layers):
            x = layer(x, mask)
            clip["mid.hidden_states_all.%d" % (i + 1)] = x
        last = tm.final_layer_norm(x)
        pooled_index = ids.argmax(-1)
        clip.update({"out.hidden_states_m2": hidden, "out.last_hidden_state": last,
                     "out.text_embeds": pooled, "mid.pooled_index": pooled_index,
                     "mid.pooled_output": last[torch.arange(len(PROMPTS)), pooled_index]})
        export.write_safetensors(a.out + "/cases/clip_text.safetensors", clip)
        cases["clip_text"] = {"kind": "clip_text", "prompts": PROMPTS,
                              "file": "cases/clip_text.safetensors"}

        tc = cfg["transformer"]
        grid = torch.randint(0, tc["codebook_size"], (1, 16, 16))
        grid[torch.rand(1, 16, 16) < 0.45] = tc["vocab_size"] - 1
        grid = grid.expand(2, 16, 16).contiguous()
        enc, pool = hidden[:2], pooled[:2]
        micro = torch.tensor([[128.0, 128, 0, 0, 6]] * 2)
        t = torch.tensor([10])
        logits = tr(grid, enc, pool, t, micro[0])
        h = 16 // 2 if tc["downsample"] else 16
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(h), indexing="ij")
        img_ids = torch.stack([torch.zeros_like(rows), rows, cols], -1).reshape(-1, 3)
        tensors = {"in.hidden_states": grid, "in.encoder_hidden_states": enc,
                   "in.pooled_projections": pool, "in.micro_conds": micro, "in.timestep": t,
                   "in.img_ids": img_ids, "in.txt_ids": torch.zeros(77, 3),
                   "out.logits": logits}
        export.write_safetensors(a.out + "/cases/transformer.safetensors", tensors)
        cases["transformer"] = {
            "kind": "transformer_forward", "model": "models/demo/transformer",
            "height_px": 128, "width_px": 128, "vae_scale_factor": 8, "latent_grid": [16, 16],
            "num_inference_steps": 16, "step_index": 5, "timestep": 10,
            "mask_token_id": tc["vocab_size"] - 1, "file": "cases/transformer.safetensors",
            "tensors": {k: {"shape": list(v.shape)} for k, v in tensors.items()}}

        idx = torch.randint(0, cfg["vqvae"]["num_vq_embeddings"], (2, 5, 7))
        dec = vq.decoder
        vqd = {"in.indices": idx, "mid.quant": vq.quantize.lookup(idx)}
        vqd["mid.post_quant_conv_out"] = vq.post_quant_conv(vqd["mid.quant"])
        vqd["mid.dec_conv_in_out"] = y = dec.conv_in(vqd["mid.post_quant_conv_out"])
        vqd["mid.dec_mid_block_out"] = y = dec.mid_block(y)
        for i, blk in enumerate(dec.up_blocks):
            vqd["mid.dec_up_block%d_out" % i] = y = blk(y)
        vqd["mid.dec_conv_norm_out"] = y = dec.conv_norm_out(y)
        sample = dec.conv_out(torch.nn.functional.silu(y))
        assert torch.equal(sample, vq.decode_indices(idx))
        clipped = sample.clamp(0, 1)
        vqd.update({"out.sample": sample, "out.sample_clipped": clipped,
                    "out.image_uint8": (clipped * 255).round().to(torch.uint8)
                    .permute(0, 2, 3, 1).numpy()})
        export.write_safetensors(a.out + "/cases/vq_decode.safetensors", vqd)
        cases["vq_decode"] = {"kind": "vq_decode", "image_size": [40, 56],
                              "file": "cases/vq_decode.safetensors"}

    with open(a.out + "/index.json", "w") as f:
        json.dump({"set": "demo-model export check", "cases": cases}, f, indent=1)
    r = subprocess.run([a.cli, "check-golden", a.out, "--backend", "cpu"])
    raise SystemExit(r.returncode)


if __name__ == "__main__":
    main()
