# SPDX-License-Identifier: MIT
"""Reads an F32 safetensors file into a dict of torch tensors (for check_export.py)."""
import json
import struct

import numpy as np
import torch


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (name, t["dtype"])
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").copy()
                                     .reshape(t["shape"]))
    return out
