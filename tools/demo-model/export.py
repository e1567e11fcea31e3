# SPDX-License-Identifier: MIT
"""Writes a trained demo model as a Meissonic folder in the diffusers layout.

The layout is the one the official pipeline (and `tessera-cli generate --model DIR`)
loads: model_index.json, scheduler/, text_encoder/, tokenizer/, transformer/, vqvae/, each
with its config and an f32 safetensors file whose tensor names are the official keys.
The safetensors writer is the format's plain definition (8-byte little-endian header
length, JSON header with dtype/shape/data_offsets, raw little-endian data).
"""
import json
import os
import shutil
import struct

import numpy as np

MODEL_INDEX = {
    "_class_name": "Pipeline", "_diffusers_version": "0.31.0",
    "scheduler": ["scheduler", "Scheduler"],
    "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "transformer": ["transformer", "Transformer2DModel"],
    "vqvae": ["diffusers", "VQModel"],
}
SPECIAL_TOKENS_MAP = {
    "bos_token": {"content": "<|startoftext|>", "lstrip": False, "normalized": True,
                  "rstrip": False, "single_word": False},
    "eos_token": {"content": "<|endoftext|>", "lstrip": False, "normalized": True,
                  "rstrip": False, "single_word": False},
    "pad_token": "!",
    "unk_token": {"content": "<|endoftext|>", "lstrip": False, "normalized": True,
                  "rstrip": False, "single_word": False},
}


ST_DTYPES = {"float32": ("F32", "<f4"), "int64": ("I64", "<i8"), "uint8": ("U8", "u1")}


def write_safetensors(path, state):
    """Tensors (torch or numpy) by name; float tensors are written as F32."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(state):
        v = state[name]
        a = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        if a.dtype.kind == "f":
            a = a.astype(np.float32)
        tag, np_type = ST_DTYPES[str(a.dtype)]
        raw = np.ascontiguousarray(a).astype(np_type).tobytes()
        header[name] = {"dtype": tag, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def tokenizer_config(vocab):
    def added(content, normalized):
        return {"content": content, "lstrip": False, "normalized": normalized,
                "rstrip": False, "single_word": False, "special": True}
    return {
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(vocab["!"]): added("!", False),
            str(vocab["<|startoftext|>"]): added("<|startoftext|>", True),
            str(vocab["<|endoftext|>"]): added("<|endoftext|>", True),
        },
        "bos_token": "<|startoftext|>", "clean_up_tokenization_spaces": True,
        "do_lower_case": True, "eos_token": "<|endoftext|>", "errors": "replace",
        "model_max_length": 77, "pad_token": "!", "tokenizer_class": "CLIPTokenizer",
        "unk_token": "<|endoftext|>",
    }


def write_model(out, tokenizer_dir, vq_cfg, vq_state, text_cfg, text_state, tr_cfg,
                tr_state, guidance_scale=None):
    """guidance_scale: written as Tessera's private "_tessera_guidance_scale" in
    model_index.json (diffusers ignores keys that start with '_'), the default scale
    Tessera uses for this model instead of the official 9."""
    for sub in ("scheduler", "text_encoder", "tokenizer", "transformer", "vqvae"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    index = dict(MODEL_INDEX)
    if guidance_scale is not None:
        index["_tessera_guidance_scale"] = guidance_scale
    write_json(out + "/model_index.json", index)
    write_json(out + "/scheduler/scheduler_config.json", {
        "_class_name": "Scheduler", "_diffusers_version": "0.31.0",
        "mask_token_id": tr_cfg["vocab_size"] - 1, "masking_schedule": "cosine"})
    for f in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(tokenizer_dir, f), os.path.join(out, "tokenizer", f))
    with open(os.path.join(tokenizer_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    write_json(out + "/tokenizer/tokenizer_config.json", tokenizer_config(vocab))
    write_json(out + "/tokenizer/special_tokens_map.json", SPECIAL_TOKENS_MAP)
    write_json(out + "/text_encoder/config.json", text_cfg)
    write_safetensors(out + "/text_encoder/model.safetensors", text_state)
    write_json(out + "/transformer/config.json", tr_cfg)
    write_safetensors(out + "/transformer/diffusion_pytorch_model.safetensors", tr_state)
    write_json(out + "/vqvae/config.json", vq_cfg)
    write_safetensors(out + "/vqvae/diffusion_pytorch_model.safetensors", vq_state)
