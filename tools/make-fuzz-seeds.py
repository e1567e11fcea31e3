#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora of the libFuzzer harnesses in tests/fuzz/ (tests/fuzz/corpus/NAME/).

The seeds are tiny, deterministic files that reach the interesting paths of each parser
quickly; libFuzzer mutates from there. Rerun after changing a generator and commit the
result:  python3 tools/make-fuzz-seeds.py
"""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")

DTYPE_SIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2,
    "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}


def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes) in file order."""
    header, data, offset = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        n = 1
        for d in shape:
            n *= d
        assert len(raw) == n * DTYPE_SIZE[dtype], name
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    """Valid files: the harness's error paths are reached by mutation within seconds."""
    seeds = {}
    seeds["f32-metadata.safetensors"] = safetensors(
        [("w.weight", "F32", [2, 2], struct.pack("<4f", 1.0, -2.0, 0.5, 3.0))],
        metadata={"format": "pt"})
    tensors = [("a.odd", "U8", [1], b"\x5a")]  # makes every later tensor unaligned
    for dtype, size in DTYPE_SIZE.items():
        tensors.append(("t." + dtype.lower(), dtype, [2], bytes(range(1, 2 * size + 1))))
    seeds["all-dtypes.safetensors"] = safetensors(tensors, pad=False)
    seeds["zero-size-scalar.safetensors"] = safetensors([
        ("empty", "F16", [3, 0], b""),
        ("scalar", "F64", [], struct.pack("<d", 1.5)),
        ("tail", "I64", [0], b""),
    ])
    seeds["f16-bf16-nan-inf.safetensors"] = safetensors([
        ("h", "F16", [4], struct.pack("<4H", 0x7c00, 0xfc00, 0x7e01, 0x0001)),
        ("b", "BF16", [4], struct.pack("<4H", 0x7f80, 0xff80, 0x7fc1, 0x0001)),
        ("e4", "F8_E4M3", [2], b"\x7f\x01"),
    ])
    seeds["four-dims.safetensors"] = safetensors(
        [("x", "I32", [1, 2, 1, 2], struct.pack("<4i", -1, 0, 1, 2**31 - 1))])
    return seeds


def parameters_seeds():
    """A1111 infotexts (the PNG `parameters` text) as other tools and Tessera write them."""
    return {
        "a1111.txt": (b"a red fox in the snow, highly detailed\n"
                      b"Negative prompt: blurry, lowres\n"
                      b"Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234567890, "
                      b"Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
                      b"Version: v1.6.0"),
        "tessera.txt": (b"a red fox in the snow\nNegative prompt: blurry\n"
                        b"Steps: 4, Sampler: MaskGIT, CFG scale: 9, Seed: 42, Size: 256x256, "
                        b"Model: tiny-meissonic"),
        "quoted.txt": (b"prompt only, no settings\nSteps: 1, Seed: 18446744073709551615, "
                       b"Lora hashes: \"a: 1, b: 2\", Size: 1x1, CFG scale: -0.5"),
        "multiline.txt": (b"line one\nline two: with a colon\nNegative prompt: x\n"
                          b"more negative\nSteps: 3, Size: 8192x8192, Seed: 0"),
    }


def main():
    for name, gen in (("safetensors", safetensors_seeds), ("parameters", parameters_seeds)):
        out = os.path.join(CORPUS, name)
        os.makedirs(out, exist_ok=True)
        for seed, blob in gen().items():
            assert len(blob) < 2048, seed
            with open(os.path.join(out, seed), "wb") as f:
                f.write(blob)
            print(f"{name}/{seed}: {len(blob)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
