# SPDX-License-Identifier: MIT
"""The three networks of the demo model in plain torch, with the official parameter names.

diffusers and transformers are not available here, so this file re-creates the modules the
Meissonic pipeline loads: VQModel (diffusers), CLIPTextModelWithProjection (transformers)
and Meissonic's Transformer2DModel. Attribute names mirror the official classes so that
`state_dict()` keys equal the checkpoint keys that the engine's config modules
(engine/stages/ts-*-config.c) enumerate, and each forward computes what the golden set's
README.md ("Quirks"; the set is ../shared/golden from the source root, or
$TESSERA_GOLDEN_DIR) says the official code computes, which is what the C engine runs. Only
the parts the pipeline uses are here (no attention in the VQ mid block, no dropout, no fp16
paths).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- VQModel (diffusers)

class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-6)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class Downsample2D(nn.Module):
    """Zero-pad right and bottom by 1, then a 3x3 stride-2 conv (diffusers padding=0)."""
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample2D(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ResnetStack(nn.Module):
    """Down/Up(En/De)coderBlock2D and UNetMidBlock2D: resnets plus an optional resampler."""
    def __init__(self, resnets, sampler_name=None, sampler=None):
        super().__init__()
        self.resnets = nn.ModuleList(resnets)
        if sampler_name:
            setattr(self, sampler_name, nn.ModuleList([sampler]))
        self.sampler_name = sampler_name

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        if self.sampler_name:
            x = getattr(self, self.sampler_name)[0](x)
        return x


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, g, n = cfg["block_out_channels"], cfg["norm_num_groups"], cfg["layers_per_block"]
        self.conv_in = nn.Conv2d(cfg["in_channels"], ch[0], 3, padding=1)
        blocks, prev = [], ch[0]
        for i, out in enumerate(ch):
            res = [ResnetBlock2D(prev if j == 0 else out, out, g) for j in range(n)]
            last = i == len(ch) - 1
            blocks.append(ResnetStack(res, None if last else "downsamplers",
                                      None if last else Downsample2D(out)))
            prev = out
        self.down_blocks = nn.ModuleList(blocks)
        self.mid_block = ResnetStack([ResnetBlock2D(ch[-1], ch[-1], g) for _ in range(2)])
        self.conv_norm_out = nn.GroupNorm(g, ch[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(ch[-1], cfg["latent_channels"], 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for b in self.down_blocks:
            x = b(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        ch, g, n = cfg["block_out_channels"], cfg["norm_num_groups"], cfg["layers_per_block"]
        rev = list(reversed(ch))
        self.conv_in = nn.Conv2d(cfg["latent_channels"], ch[-1], 3, padding=1)
        self.mid_block = ResnetStack([ResnetBlock2D(ch[-1], ch[-1], g) for _ in range(2)])
        blocks, prev = [], rev[0]
        for i, out in enumerate(rev):
            res = [ResnetBlock2D(prev if j == 0 else out, out, g) for j in range(n + 1)]
            last = i == len(rev) - 1
            blocks.append(ResnetStack(res, None if last else "upsamplers",
                                      None if last else Upsample2D(out)))
            prev = out
        self.up_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = nn.GroupNorm(g, ch[0], eps=1e-6)
        self.conv_out = nn.Conv2d(ch[0], cfg["out_channels"], 3, padding=1)

    def forward(self, z):
        x = self.mid_block(self.conv_in(z))
        for b in self.up_blocks:
            x = b(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class VectorQuantizer(nn.Module):
    def __init__(self, n, dim):
        super().__init__()
        self.embedding = nn.Embedding(n, dim)

    def indices(self, z):
        """Nearest code (Euclidean) per position of an NCHW latent -> (B, H, W) long."""
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        d = torch.cdist(flat, self.embedding.weight)
        return d.argmin(1).view(b, h, w)

    def lookup(self, idx):
        return self.embedding(idx).permute(0, 3, 1, 2)


class VQModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        lat, n = cfg["latent_channels"], cfg["num_vq_embeddings"]
        self.encoder = Encoder(cfg)
        self.quant_conv = nn.Conv2d(lat, lat, 1)
        self.quantize = VectorQuantizer(n, lat)
        self.post_quant_conv = nn.Conv2d(lat, lat, 1)
        self.decoder = Decoder(cfg)

    def encode(self, x):
        return self.quant_conv(self.encoder(x))

    def decode_latent(self, zq):
        return self.decoder(self.post_quant_conv(zq))

    def decode_indices(self, idx):
        return self.decode_latent(self.quantize.lookup(idx))


# ---------------------------------------------------- CLIPTextModelWithProjection

class CLIPAttention(nn.Module):
    def __init__(self, h, heads):
        super().__init__()
        self.heads = heads
        self.k_proj = nn.Linear(h, h)
        self.v_proj = nn.Linear(h, h)
        self.q_proj = nn.Linear(h, h)
        self.out_proj = nn.Linear(h, h)

    def forward(self, x, mask):
        b, n, c = x.shape
        hd = c // self.heads

        def split(t):
            return t.view(b, n, self.heads, hd).transpose(1, 2)
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        a = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
        o = a.softmax(-1) @ v
        return self.out_proj(o.transpose(1, 2).reshape(b, n, c))


class CLIPMLP(nn.Module):
    def __init__(self, h, inter):
        super().__init__()
        self.fc1 = nn.Linear(h, inter)
        self.fc2 = nn.Linear(inter, h)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact erf GELU (hidden_act "gelu")


class CLIPEncoderLayer(nn.Module):
    def __init__(self, h, heads, inter):
        super().__init__()
        self.self_attn = CLIPAttention(h, heads)
        self.layer_norm1 = nn.LayerNorm(h, eps=1e-5)
        self.mlp = CLIPMLP(h, inter)
        self.layer_norm2 = nn.LayerNorm(h, eps=1e-5)

    def forward(self, x, mask):
        x = x + self.self_attn(self.layer_norm1(x), mask)
        return x + self.mlp(self.layer_norm2(x))


class CLIPEmbeddings(nn.Module):
    def __init__(self, vocab, h, n_pos):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, h)
        self.position_embedding = nn.Embedding(n_pos, h)


class CLIPEncoder(nn.Module):
    def __init__(self, h, heads, inter, n):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(h, heads, inter) for _ in range(n)])


class CLIPTextTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h = cfg["hidden_size"]
        self.embeddings = CLIPEmbeddings(cfg["vocab_size"], h, cfg["max_position_embeddings"])
        self.encoder = CLIPEncoder(h, cfg["num_attention_heads"], cfg["intermediate_size"],
                                   cfg["num_hidden_layers"])
        self.final_layer_norm = nn.LayerNorm(h, eps=1e-5)


class CLIPTextModelWithProjection(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.text_model = CLIPTextTransformer(cfg)
        self.text_projection = nn.Linear(cfg["hidden_size"], cfg["projection_dim"], bias=False)

    def forward(self, ids):
        """ids (B, 77) -> (hidden_states[-2], text_embeds), what the pipeline uses."""
        tm = self.text_model
        n = ids.shape[1]
        pos = torch.arange(n, device=ids.device)
        x = tm.embeddings.token_embedding(ids) + tm.embeddings.position_embedding(pos)[None]
        mask = torch.full((n, n), float("-inf"), device=ids.device).triu(1)
        states = [x]
        for layer in tm.encoder.layers:
            x = layer(x, mask)
            states.append(x)
        last = tm.final_layer_norm(x)
        # eos_token_id is 2 in the config (legacy), so transformers pools at argmax(ids).
        pooled = last[torch.arange(ids.shape[0]), ids.argmax(-1)]
        return states[-2], self.text_projection(pooled)


# ------------------------------------------------------- Meissonic Transformer2DModel

class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def channels_last_norm(norm, x):
    """Applies a channel RMSNorm to an NCHW tensor (the NHWC permute of the official code)."""
    return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def sinusoidal(t, dim=256):
    """get_timestep_embedding(flip_sin_to_cos=True, downscale_freq_shift=0) -> [cos | sin]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(a), torch.sin(a)], -1)


class Lin2(nn.Module):
    """TimestepEmbedding / PixArtAlphaTextProjection: Linear - SiLU - Linear."""
    def __init__(self, cin, cout, bias=True):
        super().__init__()
        self.linear_1 = nn.Linear(cin, cout, bias=bias)
        self.linear_2 = nn.Linear(cout, cout, bias=bias)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class TimeTextEmbed(nn.Module):
    def __init__(self, inner, pooled_dim):
        super().__init__()
        self.timestep_embedder = Lin2(256, inner)
        self.text_embedder = Lin2(pooled_dim, inner)

    def forward(self, t, pooled):
        return self.timestep_embedder(sinusoidal(t * 1000)) + self.text_embedder(pooled)


def rope_table(ids, axes):
    """ids (L, 3) -> cos, sin (L, head_dim): float64 per axis, interleaved pairs (quirk 4)."""
    cos, sin = [], []
    for i, d in enumerate(axes):
        freqs = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        a = ids[:, i].double()[:, None] * freqs[None]
        cos.append(torch.cos(a).repeat_interleave(2, -1).float())
        sin.append(torch.sin(a).repeat_interleave(2, -1).float())
    return torch.cat(cos, -1), torch.cat(sin, -1)


def apply_rope(x, cos, sin):
    """x (B, H, L, D): out[2j] = x0 cos - x1 sin, out[2j+1] = x1 cos + x0 sin."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    rot = torch.stack([-x1, x0], -1).flatten(-2)
    return x * cos + rot * sin


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


class Attention(nn.Module):
    def __init__(self, inner, hd, dual):
        super().__init__()
        self.heads, self.hd = inner // hd, hd
        self.norm_q, self.norm_k = RMSNorm(hd), RMSNorm(hd)
        self.to_q, self.to_k, self.to_v = (nn.Linear(inner, inner) for _ in range(3))
        if dual:
            self.add_k_proj, self.add_v_proj, self.add_q_proj = (nn.Linear(inner, inner)
                                                                 for _ in range(3))
            self.norm_added_q, self.norm_added_k = RMSNorm(hd), RMSNorm(hd)
            self.to_out = nn.ModuleList([nn.Linear(inner, inner)])
            self.to_add_out = nn.Linear(inner, inner)

    def heads_of(self, x):
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.hd).transpose(1, 2)

    def qkv(self, x, q, k, v, nq, nk):
        return nq(self.heads_of(q(x))), nk(self.heads_of(k(x))), self.heads_of(v(x))

    def attend(self, q, k, v, rope):
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        a = ((q @ k.transpose(-1, -2)) / math.sqrt(self.hd)).softmax(-1)
        o = a @ v
        b, h, n, d = o.shape
        return o.transpose(1, 2).reshape(b, n, h * d)

    def forward_single(self, x, rope):
        return self.attend(*self.qkv(x, self.to_q, self.to_k, self.to_v, self.norm_q,
                                     self.norm_k), rope)

    def forward_dual(self, img, ctx, rope):
        qi, ki, vi = self.qkv(img, self.to_q, self.to_k, self.to_v, self.norm_q, self.norm_k)
        qc, kc, vc = self.qkv(ctx, self.add_q_proj, self.add_k_proj, self.add_v_proj,
                              self.norm_added_q, self.norm_added_k)
        o = self.attend(torch.cat([qc, qi], 2), torch.cat([kc, ki], 2), torch.cat([vc, vi], 2),
                        rope)
        nc = ctx.shape[1]
        return self.to_out[0](o[:, nc:]), self.to_add_out(o[:, :nc])


class AdaNorm(nn.Module):
    """AdaLayerNormZero(Single): Linear(SiLU(temb)) chunks; LayerNorm without affine."""
    def __init__(self, inner, n):
        super().__init__()
        self.linear = nn.Linear(inner, n * inner)
        self.n = n

    def forward(self, x, temb):
        mods = self.linear(F.silu(temb)).chunk(self.n, -1)
        shift, scale = mods[0], mods[1]
        y = F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + scale[:, None]) + shift[:, None]
        return (y,) + tuple(mods[2:])


def modulate(x, shift, scale):
    return F.layer_norm(x, x.shape[-1:], eps=1e-6) * (1 + scale[:, None]) + shift[:, None]


class FeedForward(nn.Module):
    class Proj(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.proj = nn.Linear(cin, cout)

    def __init__(self, inner):
        super().__init__()
        self.net = nn.ModuleList([FeedForward.Proj(inner, 4 * inner), nn.Identity(),
                                  nn.Linear(4 * inner, inner)])

    def forward(self, x):
        return self.net[2](gelu_tanh(self.net[0].proj(x)))


class DualBlock(nn.Module):
    def __init__(self, inner, hd):
        super().__init__()
        self.norm1, self.norm1_context = AdaNorm(inner, 6), AdaNorm(inner, 6)
        self.attn = Attention(inner, hd, dual=True)
        self.ff, self.ff_context = FeedForward(inner), FeedForward(inner)

    def forward(self, img, ctx, temb, rope):
        ni, g, sh, sc, gm = self.norm1(img, temb)
        nc, cg, csh, csc, cgm = self.norm1_context(ctx, temb)
        ai, ac = self.attn.forward_dual(ni, nc, rope)
        img = img + g[:, None] * ai
        img = img + gm[:, None] * self.ff(modulate(img, sh, sc))
        ctx = ctx + cg[:, None] * ac
        ctx = ctx + cgm[:, None] * self.ff_context(modulate(ctx, csh, csc))
        return img, ctx


class SingleBlock(nn.Module):
    def __init__(self, inner, hd):
        super().__init__()
        self.norm = AdaNorm(inner, 3)
        self.proj_mlp = nn.Linear(inner, 4 * inner)
        self.proj_out = nn.Linear(5 * inner, inner)
        self.attn = Attention(inner, hd, dual=False)

    def forward(self, x, temb, rope):
        n, gate = self.norm(x, temb)
        y = torch.cat([self.attn.forward_single(n, rope), gelu_tanh(self.proj_mlp(n))], -1)
        return x + gate[:, None] * self.proj_out(y)


class ConvEmbed(nn.Module):
    def __init__(self, vocab, inner):
        super().__init__()
        self.embeddings = nn.Embedding(vocab, inner)
        self.layer_norm = RMSNorm(inner)
        self.conv = nn.Conv2d(inner, inner, 1, bias=False)

    def forward(self, ids):
        return self.conv(self.layer_norm(self.embeddings(ids)).permute(0, 3, 1, 2))


class Resample(nn.Module):
    def __init__(self, inner, transpose):
        super().__init__()
        self.norm = RMSNorm(inner)
        cls = nn.ConvTranspose2d if transpose else nn.Conv2d
        self.conv = cls(inner, inner, 2, stride=2, bias=False)
        self.transpose = transpose

    def forward(self, x):
        x = channels_last_norm(self.norm, x)
        if not self.transpose:
            x = F.pad(x, (0, 1, 0, 1))
        return self.conv(x)


class DownBlock(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.downsample = Resample(inner, transpose=False)


class UpBlock(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.upsample = Resample(inner, transpose=True)


class MlmLayer(nn.Module):
    def __init__(self, inner, codebook):
        super().__init__()
        self.conv1 = nn.Conv2d(inner, inner, 1, bias=False)
        self.layer_norm = RMSNorm(inner)
        self.conv2 = nn.Conv2d(inner, codebook, 1, bias=False)

    def forward(self, x):
        return self.conv2(channels_last_norm(self.layer_norm, self.conv1(x)))


class Transformer2DModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        hd = cfg["attention_head_dim"]
        inner = cfg["num_attention_heads"] * hd
        self.cfg = cfg
        self.time_text_embed = TimeTextEmbed(inner, cfg["pooled_projection_dim"])
        self.context_embedder = nn.Linear(cfg["joint_attention_dim"], inner)
        self.transformer_blocks = nn.ModuleList([DualBlock(inner, hd)
                                                 for _ in range(cfg["num_layers"])])
        self.single_transformer_blocks = nn.ModuleList([SingleBlock(inner, hd)
                                                        for _ in range(cfg["num_single_layers"])])
        self.embed = ConvEmbed(cfg["vocab_size"], inner)
        self.mlm_layer = MlmLayer(inner, cfg["codebook_size"])
        self.cond_embed = Lin2(5 * 256 + cfg["pooled_projection_dim"], inner, bias=False)
        self.encoder_proj_layer_norm = RMSNorm(inner)
        self.project_to_hidden_norm = RMSNorm(inner)
        self.project_to_hidden = nn.Linear(inner, inner, bias=False)
        self.project_from_hidden_norm = RMSNorm(inner)
        self.project_from_hidden = nn.Linear(inner, inner, bias=False)
        if cfg["downsample"]:
            self.down_block = DownBlock(inner)
        if cfg["upsample"]:
            self.up_block = UpBlock(inner)

    def forward(self, ids, text_hidden, pooled, t, micro_conds):
        """ids (B, H, W) long; text_hidden (B, 77, J); pooled (B, P); t (1,) long step
        counter; micro_conds (5,) floats -> logits (B, codebook, H, W)."""
        b = ids.shape[0]
        micro = sinusoidal(micro_conds).reshape(1, -1).expand(b, -1)
        pooled = self.cond_embed(torch.cat([pooled, micro], 1))
        x = self.embed(ids)
        if self.cfg["downsample"]:
            x = self.down_block.downsample(x)
        _, c, h, w = x.shape
        x = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        x = self.project_to_hidden(self.project_to_hidden_norm(x))
        ctx = self.encoder_proj_layer_norm(self.context_embedder(text_hidden))
        temb = self.time_text_embed(t, pooled)
        # Position ids: text rows are 0; image = (0, row, col) of the grid the blocks see.
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        img_ids = torch.stack([torch.zeros_like(rows), rows, cols], -1).reshape(-1, 3)
        ids_all = torch.cat([torch.zeros(ctx.shape[1], 3, dtype=img_ids.dtype), img_ids])
        rope = rope_table(ids_all, self.cfg["axes_dims_rope"])
        for blk in self.transformer_blocks:
            x, ctx = blk(x, ctx, temb, rope)
        nc = ctx.shape[1]
        y = torch.cat([ctx, x], 1)
        for blk in self.single_transformer_blocks:
            y = blk(y, temb, rope)
        x = self.project_from_hidden(self.project_from_hidden_norm(y[:, nc:]))
        x = x.reshape(b, h, w, c).permute(0, 3, 1, 2)
        if self.cfg["upsample"]:
            x = self.up_block.upsample(x)
        return self.mlm_layer(x)
