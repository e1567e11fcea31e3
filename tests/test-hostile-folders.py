#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile model folders: every way a model folder can be broken gets a clean, named error.

Each variant is a copy of a valid model folder (the bundled demo model, F32 weights) with
one thing broken: a config (missing, truncated, wrong types, absurd sizes), a safetensors
file (every way the format can fail, and wrong dtypes, shapes or missing tensors for the
model), the tokenizer, a directory or a symlink loop in place of a file, NaN or Inf
weights. For each one `tessera-cli generate --model DIR --prompt x --steps 1 --out OUT`
(on the CPU backend: the loader is under test, and lavapipe's JIT would trip LeakSanitizer)
must exit non-zero (not by a signal, not by a hang: 60 s limit, no sanitizer report in
sanitizer builds), print a message naming the file (and the tensor where there is one),
and leave nothing at OUT or beside it.

FIFOs in place of files are not in this table: the tokenizer's optional files are opened
without the regular-file check that stops a FIFO from blocking the loader (issue 17,
item 2, fixed separately); docs/reliability.md lists the messages.

Usage: test-hostile-folders.py TESSERA_CLI MODEL_DIR [--table]   (TAP on stdout; --table
prints the markdown table of variants and messages for docs/reliability.md instead)
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "U8": 1, "I64": 8, "F64": 8}

TRANSFORMER = "transformer/diffusion_pytorch_model.safetensors"
VQ = "vqvae/diffusion_pytorch_model.safetensors"
TEXT = "text_encoder/model.safetensors"


# ---- safetensors helpers ----

def st_read(path):
    """[(name, dtype, shape, raw bytes)] in file (offset) order, and the metadata."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    meta = header.pop("__metadata__", None)
    tensors = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    return [(k, v["dtype"], list(v["shape"]), data[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in tensors], meta


def st_pack(tensors, meta=None):
    """Header dict and data bytes, the tensors packed in order."""
    header, data = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return header, data


def st_write(path, header, data, header_text=None):
    text = header_text if header_text is not None else json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def biggest(tensors, n_dims=None):
    """The largest tensor (a weight matrix every model uses), optionally of n_dims."""
    pool = [t for t in tensors if n_dims is None or len(t[2]) == n_dims]
    return max(pool, key=lambda t: (len(t[3]), t[0]))


def st_edit(rel, fn):
    """A mutation rewriting the safetensors file `rel` with fn(tensors) -> (header, data),
    or a (header, data, header_text) triple for a raw header."""
    def mutate(d, ctx):
        path = os.path.join(d, rel)
        tensors, meta = st_read(path)
        out = fn(tensors, ctx)
        if len(out) == 2:
            out = (*out, None)
        header, data, text = out
        if header is not None and meta is not None and "__metadata__" not in header:
            header = {"__metadata__": meta, **header}
        st_write(path, header, data, text)
    return mutate


def raw_edit(rel, fn):
    """A mutation rewriting the bytes of file `rel` with fn(bytes) -> bytes."""
    def mutate(d, ctx):
        path = os.path.join(d, rel)
        with open(path, "rb") as f:
            blob = f.read()
        with open(path, "wb") as f:
            f.write(fn(blob))
    return mutate


def json_edit(rel, fn):
    def mutate(d, ctx):
        path = os.path.join(d, rel)
        with open(path) as f:
            cfg = json.load(f)
        fn(cfg)
        with open(path, "w") as f:
            json.dump(cfg, f)
    return mutate


def remove(rel):
    def mutate(d, ctx):
        os.remove(os.path.join(d, rel))
    return mutate


def as_dir(rel):
    def mutate(d, ctx):
        p = os.path.join(d, rel)
        os.remove(p)
        os.mkdir(p)
    return mutate


def symlink_loop(rel):
    def mutate(d, ctx):
        p = os.path.join(d, rel)
        os.remove(p)
        os.symlink(os.path.basename(p), p)  # points at itself: ELOOP
    return mutate


def truncate_json(rel):
    return raw_edit(rel, lambda b: b[:len(b) // 2])


def garbage(rel):
    return raw_edit(rel, lambda b: bytes(range(256)) * 4)


# ---- tensor mutations (each records the tensor it breaks in ctx["tensor"]) ----

def set_value(rel, bits, pick=None, element=0):
    """Element `element` of a tensor (the biggest, or pick(tensors)) set to the f32 `bits`."""
    def fn(tensors, ctx):
        t = pick(tensors) if pick else biggest(tensors)
        ctx["tensor"] = t[0]
        raw = bytearray(t[3])
        raw[4 * element:4 * element + 4] = struct.pack("<I", bits)
        return st_pack([(n, dt, s, bytes(raw) if n == t[0] else r) for n, dt, s, r in tensors])
    return st_edit(rel, fn)


def by_name(name):
    return lambda tensors: next(t for t in tensors if t[0] == name)


def fill(rel, name, value):
    """Every element of tensor `name` set to the f32 value (finite: overflows later)."""
    def fn(tensors, ctx):
        out = []
        for n, dt, s, r in tensors:
            if n == name:
                r = struct.pack("<f", value) * (len(r) // 4)
            out.append((n, dt, s, r))
        return st_pack(out)
    return st_edit(rel, fn)


def wrong_dtype(rel, dtype):
    """The biggest tensor relabelled `dtype` with its bytes as they are."""
    def fn(tensors, ctx):
        t = biggest(tensors)
        ctx["tensor"] = t[0]
        header, data = st_pack(tensors)
        header[t[0]]["dtype"] = dtype
        return header, data
    return st_edit(rel, fn)


def wrong_shape(rel):
    """The biggest non-square matrix transposed in its shape (same element count)."""
    def fn(tensors, ctx):
        t = max((t for t in tensors if len(t[2]) == 2 and t[2][0] != t[2][1]),
                key=lambda t: len(t[3]))
        ctx["tensor"] = t[0]
        return st_pack([(n, dt, s[::-1] if n == t[0] else s, r) for n, dt, s, r in tensors])
    return st_edit(rel, fn)


def missing_tensor(rel):
    def fn(tensors, ctx):
        t = biggest(tensors)
        ctx["tensor"] = t[0]
        return st_pack([x for x in tensors if x[0] != t[0]])
    return st_edit(rel, fn)


def offsets(rel, how):
    """Data offsets of the last tensor (by offset) broken: past the end, or overlapping
    the one before."""
    def fn(tensors, ctx):
        header, data = st_pack(tensors)
        last, prev = tensors[-1][0], tensors[-2][0]
        ctx["tensor"] = last
        b, e = header[last]["data_offsets"]
        if how == "past-end":
            header[last]["data_offsets"] = [b + 4, e + 4]
        else:
            header[last]["data_offsets"] = [b - 4, e - 4]
            data = data[:-4]
        return header, data
    return st_edit(rel, fn)


def header_size(blob):
    return struct.unpack("<Q", blob[:8])[0]


def header_text(rel, text):
    return st_edit(rel, lambda tensors, ctx: (None, st_pack(tensors)[1], text))


def header_len(rel, fn):
    """The 8-byte header length replaced by fn(old length, file size)."""
    def edit(blob):
        (n,) = struct.unpack("<Q", blob[:8])
        return struct.pack("<Q", fn(n, len(blob))) + blob[8:]
    return raw_edit(rel, edit)


def big_header(rel, size):
    """A valid header padded with spaces to `size` bytes."""
    def fn(tensors, ctx):
        header, data = st_pack(tensors)
        text = json.dumps(header).encode()
        return None, data, text + b" " * (size - len(text))
    return st_edit(rel, fn)


def big_file(rel, size):
    def mutate(d, ctx):
        with open(os.path.join(d, rel), "wb") as f:
            f.write(b" " * size)
    return mutate


def set_key(key, value):
    def fn(cfg):
        cfg[key] = value
    return fn


# (name, mutation, [substrings the message must hold]; "{tensor}" is the broken tensor)
VARIANTS = [
    # configs
    ("model_index.json missing", remove("model_index.json"), ["model_index.json"]),
    ("model_index.json truncated", truncate_json("model_index.json"), ["model_index.json"]),
    ("model_index.json garbage", garbage("model_index.json"), ["model_index.json"]),
    ("model_index.json wrong class", json_edit("model_index.json",
                                               set_key("vqvae", ["diffusers", "AutoencoderKL"])),
     ["model_index.json", "AutoencoderKL"]),
    ("transformer config missing", remove("transformer/config.json"), ["transformer/config.json"]),
    ("transformer config truncated", truncate_json("transformer/config.json"),
     ["transformer/config.json"]),
    ("transformer config a JSON array", raw_edit("transformer/config.json", lambda b: b"[1, 2]"),
     ["transformer/config.json"]),
    ("transformer num_layers a string", json_edit("transformer/config.json",
                                                  set_key("num_layers", "two")),
     ["transformer/config.json", "num_layers"]),
    ("transformer num_layers absurd", json_edit("transformer/config.json",
                                                set_key("num_layers", 1000000000)),
     ["transformer/config.json", "num_layers"]),
    ("transformer attention_head_dim 2^40", json_edit("transformer/config.json",
                                                      set_key("attention_head_dim", 2 ** 40)),
     ["transformer/config.json", "attention_head_dim"]),
    ("vqvae config missing", remove("vqvae/config.json"), ["vqvae/config.json"]),
    ("vqvae block_out_channels a string", json_edit("vqvae/config.json",
                                                    set_key("block_out_channels", "x")),
     ["vqvae/config.json", "block_out_channels"]),
    ("vqvae num_vq_embeddings negative", json_edit("vqvae/config.json",
                                                   set_key("num_vq_embeddings", -5)),
     ["vqvae/config.json", "num_vq_embeddings"]),
    ("text encoder config missing", remove("text_encoder/config.json"),
     ["text_encoder/config.json"]),
    ("text encoder config truncated", truncate_json("text_encoder/config.json"),
     ["text_encoder/config.json"]),
    ("text encoder hidden_size 1e12", json_edit("text_encoder/config.json",
                                                set_key("hidden_size", 10 ** 12)),
     ["text_encoder/config.json", "hidden_size"]),
    ("scheduler config garbage", garbage("scheduler/scheduler_config.json"),
     ["scheduler/scheduler_config.json"]),
    ("scheduler config missing", remove("scheduler/scheduler_config.json"),
     ["scheduler/scheduler_config.json"]),
    # safetensors: the format
    ("transformer weights missing", remove(TRANSFORMER), ["transformer"]),
    ("transformer weights empty", raw_edit(TRANSFORMER, lambda b: b""), [TRANSFORMER]),
    ("header length cut (5 bytes)", raw_edit(TRANSFORMER, lambda b: b[:5]), [TRANSFORMER]),
    ("header cut halfway", raw_edit(TRANSFORMER, lambda b: b[:8 + header_size(b) // 2]),
     [TRANSFORMER, "runs past the end"]),
    ("header length beyond the file", header_len(VQ, lambda n, size: 2 * 1024 * 1024),
     [VQ, "runs past the end"]),
    ("header length 2^56", header_len(TRANSFORMER, lambda n, size: 1 << 56),
     [TRANSFORMER, "exceeds the limit of 2097152 bytes"]),
    ("header over the 2 MiB limit", big_header(TRANSFORMER, 2 * 1024 * 1024 + 1),
     [TRANSFORMER, "exceeds the limit of 2097152 bytes"]),
    ("header garbage JSON", header_text(TRANSFORMER, b"{\"a\": [1, 2"),
     [TRANSFORMER, "not valid JSON"]),
    ("header not UTF-8", header_text(VQ, b"{\"\xff\": 1}"), [VQ, "UTF-8"]),
    ("header a JSON array", header_text(TEXT, b"[]"), [TEXT, "not a JSON object"]),
    ("data offsets past the end", offsets(VQ, "past-end"), [VQ, "{tensor}"]),
    ("data offsets overlapping", offsets(TRANSFORMER, "overlap"), [TRANSFORMER, "{tensor}"]),
    ("data truncated", raw_edit(TEXT, lambda b: b[:len(b) - 1000]), [TEXT]),
    ("dtype unknown (Q4)", wrong_dtype(TRANSFORMER, "Q4"), [TRANSFORMER, "{tensor}"]),
    ("dtype F16 over F32 bytes", wrong_dtype(VQ, "F16"), [VQ, "{tensor}"]),
    # safetensors: valid files that do not fit the model
    ("dtype I32 for a weight", wrong_dtype(TEXT, "I32"), [TEXT, "{tensor}", "I32"]),
    ("shape transposed", wrong_shape(TRANSFORMER), [TRANSFORMER, "{tensor}"]),
    ("tensor missing", missing_tensor(VQ), [VQ, "{tensor}"]),
    # non-finite weights
    ("NaN in a transformer weight", set_value(TRANSFORMER, 0x7FC00000, element=7),
     [TRANSFORMER, "{tensor}", "element 7", "NaN"]),
    ("+Inf in a text encoder weight", set_value(TEXT, 0x7F800000),
     [TEXT, "{tensor}", "+inf"]),
    ("NaN in the VQ conv_out weight", set_value(VQ, 0xFFC00001,
                                                by_name("decoder.conv_out.weight")),
     [VQ, "decoder.conv_out.weight", "NaN"]),
    ("-Inf in the VQ codebook", set_value(VQ, 0xFF800000, by_name("quantize.embedding.weight")),
     [VQ, "quantize.embedding.weight", "-inf"]),
    ("VQ weights that overflow to Inf", fill(VQ, "decoder.conv_out.weight", 3e38),
     ["vqvae", "decoded image", "non-finite"]),
    # tokenizer
    ("vocab.json missing", remove("tokenizer/vocab.json"), ["tokenizer/vocab.json"]),
    ("merges.txt missing", remove("tokenizer/merges.txt"), ["tokenizer/merges.txt"]),
    ("vocab.json garbage", garbage("tokenizer/vocab.json"), ["tokenizer/vocab.json"]),
    ("vocab.json a JSON array", raw_edit("tokenizer/vocab.json", lambda b: b"[1]"),
     ["tokenizer/vocab.json"]),
    ("merges.txt not UTF-8", raw_edit("tokenizer/merges.txt",
                                      lambda b: b"#version: 0.2\na \xc3\n"),
     ["tokenizer/merges.txt"]),
    ("vocab.json over the 16 MiB limit", big_file("tokenizer/vocab.json", (16 << 20) + 1),
     ["tokenizer/vocab.json", "over the limit of 16777216 bytes"]),
    ("merges.txt over the 8 MiB limit", big_file("tokenizer/merges.txt", (8 << 20) + 1),
     ["tokenizer/merges.txt", "over the limit of 8388608 bytes"]),
    ("tokenizer_config.json truncated", truncate_json("tokenizer/tokenizer_config.json"),
     ["tokenizer/tokenizer_config.json"]),
    ("special_tokens_map.json garbage", garbage("tokenizer/special_tokens_map.json"),
     ["tokenizer/special_tokens_map.json"]),
    # directories and symlink loops in place of files
    ("model_index.json a directory", as_dir("model_index.json"), ["model_index.json"]),
    ("transformer config a directory", as_dir("transformer/config.json"),
     ["transformer/config.json"]),
    ("VQ weights a directory", as_dir(VQ), ["vqvae"]),
    ("vocab.json a directory", as_dir("tokenizer/vocab.json"), ["tokenizer/vocab.json"]),
    ("tokenizer_config.json a directory", as_dir("tokenizer/tokenizer_config.json"),
     ["tokenizer/tokenizer_config.json"]),
    ("model_index.json a symlink loop", symlink_loop("model_index.json"), ["model_index.json"]),
    ("text encoder weights a symlink loop", symlink_loop(TEXT), ["text_encoder"]),
    ("merges.txt a symlink loop", symlink_loop("tokenizer/merges.txt"),
     ["tokenizer/merges.txt"]),
]


def run_variant(cli, model, tmp, i, name, mutate, expect):
    d = os.path.join(tmp, "m%02d" % i)
    shutil.copytree(model, d, symlinks=True)
    ctx = {}
    mutate(d, ctx)
    out_dir = os.path.join(tmp, "out%02d" % i)
    os.mkdir(out_dir)
    out = os.path.join(out_dir, "x.png")
    try:
        p = subprocess.run([cli, "generate", "--model", d, "--prompt", "x", "--steps", "1",
                            "--backend", "cpu", "--quiet", "--out", out], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60)
        rc, err = p.returncode, p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired:
        rc, err = None, "(hung for 60 s)"
    problems = []
    if rc is None:
        problems.append("hangs")
    elif rc == 0:
        problems.append("exit 0")
    elif rc < 0 or rc >= 128:
        problems.append("killed by a signal (%d)" % rc)
    for report in ("Sanitizer", "runtime error:"):  # ASan/LSan/UBSan builds
        if report in err:
            problems.append("a sanitizer report")
    for s in expect:
        s = s.replace("{tensor}", ctx.get("tensor", "?"))
        if s not in err:
            problems.append("no '%s' in the message" % s)
    if os.listdir(out_dir):
        problems.append("left %s in the output folder" % os.listdir(out_dir))
    shutil.rmtree(d, ignore_errors=True)
    message = " ".join(line for line in err.strip().splitlines() if line.strip())
    return problems, message.replace(d + "/", "").replace(d, "MODEL")


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cli, model = sys.argv[1], sys.argv[2]
    table = "--table" in sys.argv[3:]
    tmp = tempfile.mkdtemp(prefix="tessera-hostile-")
    failed = 0
    try:
        if table:
            print("| # | variant | message |\n|---:|---|---|")
        else:
            print("1..%d" % len(VARIANTS))
        for i, (name, mutate, expect) in enumerate(VARIANTS, 1):
            problems, message = run_variant(cli, model, tmp, i, name, mutate, expect)
            if table:
                print("| %d | %s | %s |" % (i, name, message.replace("|", "\\|")))
            elif problems:
                failed += 1
                print("not ok %d - %s: %s" % (i, name, "; ".join(problems)))
                print("# message: %s" % message)
            else:
                print("ok %d - %s" % (i, name))
            sys.stdout.flush()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
