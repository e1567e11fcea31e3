# SPDX-License-Identifier: MIT
"""Trains the demo model on procedural shapes and exports it in the diffusers layout.

Stages (each saves into --work, so a later stage can be rerun alone with --stages):
  tokenizer    learn a CLIP-format BPE from the training captions (bpe.py)
  vq           train the VQ-VAE (VQModel block structure): autoencoder, then k-means
               codebook start, then VQ training
  encode       render the training scenes at 128x128 and encode them to 16x16 token grids
  transformer  train the text encoder and the Meissonic transformer jointly with the
               MaskGIT objective (cosine mask ratio, loss on masked tokens) and 10 %
               caption dropout, so classifier-free guidance has an unconditional model
  export       write the model folder (export.py)

Everything is seeded: the same command gives the same files (on the same torch build and
the same --procs). Runs on the CPU; the default budget fits in under two hours on 2 cores.

Parallelism: Debian's torch calls OpenBLAS (pthreads) for matmuls, and OpenBLAS threads,
torch's OpenMP threads and a second process all fight over two cores (2 torch threads ran
2.3x slower than 1). So every process here is single-threaded (OPENBLAS_NUM_THREADS=1,
one torch thread), and the two stages that dominate the time, encode and transformer, run
--procs processes instead: encode splits the scenes, transformer splits each batch and
sums the gradients (gloo all-reduce), which is the same update as one process taking the
whole batch. At width 64 and batch 64, two processes took 0.30 s a transformer step
and one 0.60 s; the bundled width 128 takes 0.72 s with two.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy/torch load OpenBLAS

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bpe  # noqa: E402
import export  # noqa: E402
import make_dataset as ds  # noqa: E402
from modules import CLIPTextModelWithProjection, Transformer2DModel, VQModel  # noqa: E402

IMAGE_SIZE = 128
MICRO_CONDS = [IMAGE_SIZE, IMAGE_SIZE, 0, 0, 6]  # width, height, crop top/left, aesthetic

VQ_CONFIG = {
    "_class_name": "VQModel", "_diffusers_version": "0.31.0", "act_fn": "silu",
    "block_out_channels": [8, 16, 32, 32],
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
    "force_upcast": True, "in_channels": 3, "out_channels": 3, "latent_channels": 8,
    "layers_per_block": 1, "lookup_from_codebook": True, "mid_block_add_attention": False,
    "norm_num_groups": 1, "norm_type": "group", "num_vq_embeddings": 256,
    "sample_size": IMAGE_SIZE, "scaling_factor": 0.18215, "vq_embed_dim": None,
}
TRANSFORMER_CONFIG = {
    "_class_name": "Transformer2DModel", "_diffusers_version": "0.31.0",
    "attention_head_dim": 32, "axes_dims_rope": [8, 12, 12], "codebook_size": 256,
    "downsample": True, "guidance_embeds": False, "in_channels": 64,
    "joint_attention_dim": 64, "num_attention_heads": 4, "num_layers": 2,
    "num_single_layers": 2, "patch_size": 1, "pooled_projection_dim": 128, "upsample": True,
    "vocab_size": 257,
}
TEXT_CONFIG = {
    "architectures": ["CLIPTextModelWithProjection"], "attention_dropout": 0.0,
    "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "gelu",
    "hidden_size": 64, "initializer_factor": 1.0, "initializer_range": 0.02,
    "intermediate_size": 256, "layer_norm_eps": 1e-05, "max_position_embeddings": 77,
    "model_type": "clip_text_model", "num_attention_heads": 2, "num_hidden_layers": 3,
    "pad_token_id": 1, "projection_dim": 128, "torch_dtype": "float32",
    "vocab_size": None,  # set from the learned tokenizer
}


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def to_tensor(images):
    a = np.stack([np.asarray(im, dtype=np.float32) / 255.0 for im in images])
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()


def stage_tokenizer(a):
    caps = [ds.caption(s) for s in ds.training_scenes(a.seed, 20000)]
    tok = bpe.BPE.learn(caps + [""])
    os.makedirs(a.work + "/tokenizer", exist_ok=True)
    tok.save(a.work + "/tokenizer")
    log("tokenizer: %d merges, vocab %d; '%s' -> %s" % (
        len(tok.merges), len(tok.vocab), caps[0], tok.encode(caps[0])[:16]))


def load_tokenizer(a):
    with open(a.work + "/tokenizer/merges.txt", encoding="utf-8") as f:
        merges = [tuple(line.split()) for line in f.read().split("\n")[1:] if line]
    return bpe.BPE(merges)


def kmeans(x, k, iters, gen):
    """Plain k-means (random distinct starts), to start the codebook on real latents."""
    c = x[torch.randperm(x.shape[0], generator=gen)[:k]].clone()
    for _ in range(iters):
        idx = torch.cdist(x, c).argmin(1)
        for j in range(k):
            sel = x[idx == j]
            if len(sel):
                c[j] = sel.mean(0)
    return c


def render_set(seed, n):
    """n random training scenes (held-out combinations excluded) as uint8 NCHW."""
    scenes = ds.training_scenes(seed, n)
    a = np.stack([np.asarray(ds.render(s, IMAGE_SIZE)) for s in scenes])
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()


def edge_weights(x, weight):
    """1 on flat colour, 1 + weight within a pixel of a colour edge: plain MSE on scenes
    that are mostly flat is small even when every outline is blurred into a blob, and
    the outlines are what tells a star from a circle."""
    gx = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().sum(1, keepdim=True)
    gy = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().sum(1, keepdim=True)
    g = F.pad(gx, (0, 1, 0, 0)) + F.pad(gy, (0, 0, 0, 1))
    edge = F.max_pool2d(g, 3, stride=1, padding=1) > 0.05
    return 1.0 + weight * edge.float()


def train_vq_phase(a, vq, opt, data, gen, phase, t0):
    """One phase: (name, steps, batch, side, quantise, peak lr, edge weight)."""
    name, steps, batch, side, quantise, peak, edge = phase
    val = data[:16].float() / 255
    codes = vq.quantize.embedding.weight
    n_codes = codes.shape[0]
    usage, dead = torch.zeros(n_codes), []
    for step in range(steps):
        lr = peak * min(1.0, (step + 1) / 50) * (0.55 + 0.45 * math.cos(math.pi * step / steps))
        for pg in opt.param_groups:
            pg["lr"] = lr
        x = data[torch.randint(16, len(data), (batch,), generator=gen)].float() / 255
        if side < IMAGE_SIZE:
            oy, ox = (8 * torch.randint(0, (IMAGE_SIZE - side) // 8 + 1, (2,),
                                        generator=gen)).tolist()
            x = x[:, :, oy:oy + side, ox:ox + side]
        z = vq.encode(x)
        if quantise:
            flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
            idx = torch.cdist(flat, codes).argmin(1)
            zq = codes[idx]
            loss_q = F.mse_loss(zq, flat.detach()) + 0.25 * F.mse_loss(flat, zq.detach())
            zq = flat + (zq - flat).detach()
            z = zq.view(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
            usage += torch.bincount(idx, minlength=n_codes).float()
        else:
            loss_q = torch.zeros(())
        rec = vq.decode_latent(z)
        if edge:
            w = edge_weights(x, edge)
            d = rec - x
            loss = (w * (d * d + 0.5 * d.abs())).sum() / (w.sum() * 3) + loss_q
        else:
            loss = F.mse_loss(rec, x) + 0.5 * (rec - x).abs().mean() + loss_q
        opt.zero_grad()
        loss.backward()
        opt.step()
        if quantise and step % 50 == 49:
            with torch.no_grad():  # restart dead codes on random encoder outputs
                dead = (usage == 0).nonzero().flatten()
                if len(dead):
                    codes[dead] = flat[torch.randint(0, flat.shape[0], (len(dead),),
                                                     generator=gen)].detach()
            usage.zero_()
        if step % 100 == 99 or step == steps - 1:
            with torch.no_grad():
                zv = vq.encode(val)
                if quantise:
                    zv = vq.quantize.lookup(vq.quantize.indices(zv))
                err = (vq.decode_latent(zv).clamp(0, 1) - val).abs().mean().item()
            log("vq %s %d/%d loss %.4f q %.4f dead %d, held-back L1 %.4f (%.0fs)" % (
                name, step + 1, steps, loss.item(), loss_q.item(), len(dead), err,
                time.time() - t0))
            torch.save(vq.state_dict(), a.work + "/vq.pt")


def stage_vq(a):
    """Phases on a fixed set of rendered scenes, with one Adam optimiser throughout:
    1. plain autoencoder on random 64x64 crops (aligned to the 8 px token grid): a quarter
       of the pixels per sample, so many more steps fit in the budget (the GroupNorms see
       crop statistics, yet whole images reconstruct as well as crops);
    2. optionally, plain autoencoder on whole 128x128 images;
    3. k-means on the encoder's latents starts the codebook, then training with
       quantisation (codebook + 0.25 commitment loss, straight-through gradients,
       dead-code restarts) on whole images.
    The learning rate follows a cosine within each phase, from --vq-lr in the first and
    from a third of it in the later ones: a fresh start at the full rate undid much of
    what the first phase had learnt."""
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed + 5)
    data = render_set(a.seed + 1, a.vq_images)
    vq = VQModel(VQ_CONFIG)
    # Zero-initialised second convs make every resnet start as its shortcut, so the
    # untrained network is shallow and learns colours and edges first.
    for m in vq.modules():
        if hasattr(m, "conv2"):
            torch.nn.init.zeros_(m.conv2.weight)
            torch.nn.init.zeros_(m.conv2.bias)
    codes = vq.quantize.embedding.weight
    opt = torch.optim.Adam(vq.parameters(), lr=a.vq_lr)
    t0 = time.time()
    train_vq_phase(a, vq, opt, data, gen, ("crops", a.vq_crop_steps, 16, 64, False, a.vq_lr, 0), t0)
    train_vq_phase(a, vq, opt, data, gen,
                   ("whole", a.vq_whole_steps, 4, IMAGE_SIZE, False, a.vq_lr / 3, 0), t0)
    with torch.no_grad():
        lat = torch.cat([vq.encode(data[i:i + 32].float() / 255)
                         for i in range(16, 16 + 8 * 32, 32)])
        lat = lat.permute(0, 2, 3, 1).reshape(-1, lat.shape[1])
        codes.copy_(kmeans(lat, codes.shape[0], 15, gen))
    train_vq_phase(a, vq, opt, data, gen,
                   ("quantised", a.vq_steps, 4, IMAGE_SIZE, True, a.vq_lr / 3, 0), t0)
    torch.save(vq.state_dict(), a.work + "/vq.pt")


def stage_vq_sharpen(a):
    """Goes on from vq.pt with quantisation and the edge-weighted loss (edge_weights):
    after stage vq the reconstructions are right on average (mean error 0.02) but round
    every corner, so stars and triangles come back as circles."""
    torch.manual_seed(a.seed + 6)
    gen = torch.Generator().manual_seed(a.seed + 7)
    data = render_set(a.seed + 1, a.vq_images)
    vq = VQModel(VQ_CONFIG)
    vq.load_state_dict(torch.load(a.work + "/vq.pt"))
    opt = torch.optim.Adam(vq.parameters(), lr=a.vq_lr)
    train_vq_phase(a, vq, opt, data, gen, ("sharpen", a.vq_sharpen_steps, 4, IMAGE_SIZE, True,
                                           a.vq_lr / 3, a.vq_edge_weight), time.time())
    torch.save(vq.state_dict(), a.work + "/vq.pt")


def encode_chunk(work, chunk):
    """Token grids (int16) and the first image's L1 error for a list of scenes."""
    torch.set_num_threads(1)
    vq = VQModel(VQ_CONFIG)
    vq.load_state_dict(torch.load(work + "/vq.pt"))
    vq.eval()
    grids, err = [], 0.0
    with torch.no_grad():
        for i in range(0, len(chunk), 64):
            x = to_tensor([ds.render(s, IMAGE_SIZE) for s in chunk[i:i + 64]])
            idx = vq.quantize.indices(vq.encode(x))
            if i == 0:
                err = (vq.decode_indices(idx).clamp(0, 1) - x).abs().mean().item()
            grids.append(idx.short())
    return torch.cat(grids), err


def stage_encode(a):
    """Renders --n-train scenes and encodes them; --procs processes take a contiguous
    share each, and the grids are joined in scene order."""
    tok = load_tokenizer(a)
    scenes = ds.training_scenes(a.seed + 2, a.n_train)
    per = -(-len(scenes) // a.procs)
    shares = [scenes[i:i + per] for i in range(0, len(scenes), per)]
    if a.procs > 1:
        with mp.get_context("spawn").Pool(a.procs) as pool:
            parts = pool.starmap(encode_chunk, [(a.work, sh) for sh in shares])
    else:
        parts = [encode_chunk(a.work, shares[0])]
    grids = torch.cat([p[0] for p in parts])
    caps = [tok.encode(ds.caption(s)) for s in scenes]
    torch.save({"grids": grids, "ids": torch.tensor(caps, dtype=torch.int16)},
               a.work + "/tokens.pt")
    log("encode: %d grids %s, %d codes used, first-scene-chunk L1 %.4f" % (
        len(grids), tuple(grids.shape[1:]), len(grids.unique()), parts[0][1]))


def transformer_worker(rank, a):
    """One of --procs processes: every process draws the same whole batch (same seeds),
    runs its slice of it, and the summed gradients make the same update everywhere."""
    torch.set_num_threads(a.threads)
    if a.procs > 1:
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % a.port,
                                rank=rank, world_size=a.procs)
    torch.manual_seed(a.seed + 3)
    tok = load_tokenizer(a)
    tcfg = dict(TEXT_CONFIG, vocab_size=len(tok.vocab))
    te = CLIPTextModelWithProjection(tcfg)
    tr = Transformer2DModel(TRANSFORMER_CONFIG)
    if a.tr_resume:  # go on from transformer.pt with a new schedule (and a new seed)
        ck = torch.load(a.work + "/transformer.pt")
        te.load_state_dict(ck["text_encoder"])
        tr.load_state_dict(ck["transformer"])
        torch.manual_seed(a.seed + 3 + a.tr_resume)
    data = torch.load(a.work + "/tokens.pt")
    grids, ids = data["grids"].long(), data["ids"].long()
    empty = torch.tensor(tok.encode(""))
    mask_id = TRANSFORMER_CONFIG["vocab_size"] - 1
    params = list(te.parameters()) + list(tr.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.99), weight_decay=0.01)
    micro = torch.tensor(MICRO_CONDS, dtype=torch.float32)
    n, hw = grids.shape[0], grids.shape[1] * grids.shape[2]
    g = torch.Generator().manual_seed(a.seed + 4 + 1000 * a.tr_resume)
    lo, hi = rank * a.tr_batch // a.procs, (rank + 1) * a.tr_batch // a.procs
    t0, ema = time.time(), None
    for step in range(a.tr_steps):
        lr = a.lr * min(1.0, (step + 1) / 100) * (0.5 + 0.5 * math.cos(math.pi * step / a.tr_steps))
        for pg in opt.param_groups:
            pg["lr"] = lr
        sel = torch.randint(0, n, (a.tr_batch,), generator=g)
        target = grids[sel]
        cap = ids[sel].clone()
        drop = torch.rand(a.tr_batch, generator=g) < 0.1
        cap[drop] = empty
        # MaskGIT: mask ratio cos(pi/2 r), r ~ U(0,1); at least one masked token.
        r = torch.rand(a.tr_batch, generator=g)
        n_mask = (torch.cos(math.pi / 2 * r) * hw).ceil().clamp(min=1)
        score = torch.rand(a.tr_batch, hw, generator=g)
        rank_of = score.argsort(1).argsort(1)
        masked = (rank_of < n_mask[:, None]).view_as(target)
        inp = target.masked_fill(masked, mask_id)
        t = torch.randint(0, 64, (1,), generator=g)  # the step counter; taught to be ignored
        hidden, pooled = te(cap[lo:hi])
        logits = tr(inp[lo:hi], hidden, pooled, t, micro)
        m = masked[lo:hi]
        # Mean over the masked tokens of the whole batch, as one process would take it.
        loss = F.cross_entropy(logits.permute(0, 2, 3, 1)[m], target[lo:hi][m],
                               reduction="sum") / masked.sum()
        opt.zero_grad()
        loss.backward()
        if a.procs > 1:
            # One all-reduce a step: every gradient, and the loss at the end for the log.
            flat = torch.cat([p.grad.flatten() for p in params] + [loss.detach().view(1)])
            dist.all_reduce(flat)
            off = 0
            for p in params:
                p.grad.copy_(flat[off:off + p.numel()].view_as(p))
                off += p.numel()
            loss_v = flat[-1].item()
        else:
            loss_v = loss.item()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema = loss_v if ema is None else 0.98 * ema + 0.02 * loss_v
        if rank:
            continue
        if step % 50 == 49 or step == a.tr_steps - 1:
            log("transformer %d/%d loss %.4f (ema %.4f) lr %.2e (%.1fs)" % (
                step + 1, a.tr_steps, loss_v, ema, lr, time.time() - t0))
        names = []
        if step % 100 == 99 or step == a.tr_steps - 1:
            names.append("transformer.pt")
        if a.tr_keep and (step + 1) % a.tr_keep == 0:
            names.append("transformer-%d.pt" % (step + 1))
        for name in names:
            torch.save({"text_encoder": te.state_dict(), "transformer": tr.state_dict(),
                        "text_config": tcfg}, a.work + "/" + name)
    if a.procs > 1:
        dist.destroy_process_group()


def stage_transformer(a):
    if a.procs > 1:
        mp.spawn(transformer_worker, args=(a,), nprocs=a.procs)
    else:
        transformer_worker(0, a)


def stage_export(a):
    ck = torch.load(a.work + "/transformer.pt")
    vq = torch.load(a.work + "/vq.pt")
    export.write_model(a.out, a.work + "/tokenizer", VQ_CONFIG, vq, ck["text_config"],
                       ck["text_encoder"], TRANSFORMER_CONFIG, ck["transformer"],
                       guidance_scale=a.guidance)
    log("export: wrote %s" % a.out)


STAGES = {"tokenizer": stage_tokenizer, "vq": stage_vq, "vq-sharpen": stage_vq_sharpen,
          "encode": stage_encode,
          "transformer": stage_transformer, "export": stage_export}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="demo-work", help="checkpoints and intermediate files")
    ap.add_argument("--out", default="demo-model", help="the model folder to write")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 is fastest on a 2-core machine shared with "
                         "anything else, where OpenMP teams of 2 stall")
    ap.add_argument("--procs", type=int, default=2,
                    help="processes for the encode and transformer stages (one per core)")
    ap.add_argument("--port", type=int, default=29517,
                    help="local TCP port the transformer processes meet on")
    ap.add_argument("--vq-images", type=int, default=3000, help="rendered scenes for the VQ")
    ap.add_argument("--vq-crop-steps", type=int, default=1500)
    ap.add_argument("--vq-whole-steps", type=int, default=0)
    ap.add_argument("--vq-steps", type=int, default=1200, help="steps with quantisation")
    ap.add_argument("--vq-sharpen-steps", type=int, default=1500)
    ap.add_argument("--vq-edge-weight", type=float, default=9.0)
    ap.add_argument("--vq-lr", type=float, default=1e-3)
    ap.add_argument("--n-train", type=int, default=48000)
    ap.add_argument("--tr-steps", type=int, default=2000)
    ap.add_argument("--tr-batch", type=int, default=64)
    ap.add_argument("--tr-keep", type=int, default=0,
                    help="N > 0: also keep transformer-STEP.pt every N steps")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--guidance", type=float, default=1.5,
                    help="the default guidance scale written into the export (chosen on "
                         "validation captions with demo-eval; the official 9 is far too "
                         "strong for a model this small)")
    ap.add_argument("--tr-resume", type=int, default=0,
                    help="N > 0: round N of going on from transformer.pt (new optimiser, "
                         "schedule and draws) instead of starting afresh")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)
    with open(a.work + "/args.json", "w") as f:
        json.dump(vars(a), f, indent=1)
    for name in a.stages.split(","):
        t0 = time.time()
        STAGES[name](a)
        log("stage %s done in %.0fs" % (name, time.time() - t0))


if __name__ == "__main__":
    main()
