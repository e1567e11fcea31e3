/* SPDX-License-Identifier: MIT
 *
 * ts-vq — the VQ-VAE on a ts_backend. Mirrors diffusers v0.31.0 (89e4d62):
 * `models/autoencoders/vq_model.py` (VQModel.encode/decode, lookup_from_codebook),
 * `models/autoencoders/vae.py` (Encoder, Decoder with norm_type "group"),
 * `models/unets/unet_2d_blocks.py` (DownEncoderBlock2D, UpDecoderBlock2D, UNetMidBlock2D
 * without attention), `models/resnet.py` (ResnetBlock2D without temb, output_scale_factor 1),
 * `models/downsampling.py` (Downsample2D: zero pad right/bottom by 1, 3×3 stride 2, no
 * padding) and `models/upsampling.py` (Upsample2D: nearest 2×, then 3×3 conv).
 *
 * Activations are NCHW F32 in three backend buffers ("slots") of the largest feature map
 * the request needs; a resnet reads one slot and uses the other two, so the working set is
 * three feature maps. The nearest-codebook search runs the −2·z·e term as a backend
 * matmul (as torch.cdist does for more than 25 rows) and finishes the argmin on the host.
 */
#include "ts-vq.h"

#include "ts-weights.h"

#include "ts-common.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define VQ_GN_EPS 1e-6f
#define VQ_N_SLOTS 3

typedef struct {
  int c_in, c_out;
  const ts_weight *n1_w, *n1_b, *c1_w, *c1_b, *n2_w, *n2_b, *c2_w, *c2_b;
  const ts_weight *sc_w, *sc_b; /* conv_shortcut (1×1), NULL when c_in == c_out */
} vq_resnet;

typedef struct {
  vq_resnet *resnets;
  int n_resnets;
  int c_in, c_out;
  const ts_weight *sample_w, *sample_b; /* up/downsampler conv; NULL on the last block */
} vq_block;

struct ts_vq {
  const ts_backend *be;
  ts_vq_config cfg;
  int factor;
  int embed_dim; /* codebook width (vq_embed_dim, or latent_channels) */

  ts_weight_set *weights;

  /* encoder */
  const ts_weight *enc_in_w, *enc_in_b;
  vq_block enc_blocks[TS_VQ_MAX_BLOCKS];
  vq_resnet enc_mid[2];
  const ts_weight *enc_norm_w, *enc_norm_b, *enc_out_w, *enc_out_b;
  const ts_weight *quant_w, *quant_b;
  /* codebook */
  const ts_weight *codebook;
  float *codebook_host; /* [K, embed_dim] */
  double *code_norms;   /* ||e_k||² */
  /* decoder */
  const ts_weight *post_quant_w, *post_quant_b;
  const ts_weight *dec_in_w, *dec_in_b;
  vq_resnet dec_mid[2];
  vq_block dec_blocks[TS_VQ_MAX_BLOCKS];
  const ts_weight *dec_norm_w, *dec_norm_b, *dec_out_w, *dec_out_b;

  ts_buffer *slot[VQ_N_SLOTS];
  size_t slot_bytes;
  ts_buffer *ids_buf;
  size_t ids_bytes;
};

#define VQ_LOAD(dst, nd, shape, ...)                                   \
  do {                                                                 \
    if (!((dst) = ts_weight_set_load (vq->weights, set, nd, shape, 0, err, __VA_ARGS__))) \
      return err ? err->code : TS_ERR_FORMAT;                          \
  } while (0)

static ts_status
vq_load_conv (ts_vq *vq, const ts_st_set *set, const char *prefix, int c_out, int c_in, int k,
              const ts_weight **w, const ts_weight **b, ts_error *err)
{
  const int64_t sw[4] = { c_out, c_in, k, k }, sb[1] = { c_out };
  VQ_LOAD (*w, 4, sw, "%s.weight", prefix);
  VQ_LOAD (*b, 1, sb, "%s.bias", prefix);
  return TS_OK;
}

static ts_status
vq_load_norm (ts_vq *vq, const ts_st_set *set, const char *prefix, int c,
              const ts_weight **w, const ts_weight **b, ts_error *err)
{
  const int64_t s[1] = { c };
  if (c % vq->cfg.norm_num_groups != 0)
    return ts_error_set (err, TS_ERR_FORMAT,
                         "vqvae: %s: %d channels are not divisible by norm_num_groups %d",
                         prefix, c, vq->cfg.norm_num_groups);
  VQ_LOAD (*w, 1, s, "%s.weight", prefix);
  VQ_LOAD (*b, 1, s, "%s.bias", prefix);
  return TS_OK;
}

static ts_status
vq_load_resnet (ts_vq *vq, const ts_st_set *set, const char *prefix, int c_in, int c_out,
                vq_resnet *r, ts_error *err)
{
  char p[192];
  ts_status st;
  r->c_in = c_in;
  r->c_out = c_out;
  snprintf (p, sizeof p, "%s.norm1", prefix);
  if ((st = vq_load_norm (vq, set, p, c_in, &r->n1_w, &r->n1_b, err)) != TS_OK)
    return st;
  snprintf (p, sizeof p, "%s.conv1", prefix);
  if ((st = vq_load_conv (vq, set, p, c_out, c_in, 3, &r->c1_w, &r->c1_b, err)) != TS_OK)
    return st;
  snprintf (p, sizeof p, "%s.norm2", prefix);
  if ((st = vq_load_norm (vq, set, p, c_out, &r->n2_w, &r->n2_b, err)) != TS_OK)
    return st;
  snprintf (p, sizeof p, "%s.conv2", prefix);
  if ((st = vq_load_conv (vq, set, p, c_out, c_out, 3, &r->c2_w, &r->c2_b, err)) != TS_OK)
    return st;
  if (c_in != c_out) {
    snprintf (p, sizeof p, "%s.conv_shortcut", prefix);
    if ((st = vq_load_conv (vq, set, p, c_out, c_in, 1, &r->sc_w, &r->sc_b, err)) != TS_OK)
      return st;
  }
  return TS_OK;
}

static ts_status
vq_load_block (ts_vq *vq, const ts_st_set *set, const char *prefix, int n_resnets, int c_in,
               int c_out, bool sampler, const char *sampler_name, vq_block *blk, ts_error *err)
{
  char p[192];
  ts_status st;
  blk->c_in = c_in;
  blk->c_out = c_out;
  blk->resnets = calloc ((size_t) n_resnets, sizeof *blk->resnets);
  if (!blk->resnets)
    return ts_error_set (err, TS_ERR_NOMEM, "vqvae: out of memory");
  blk->n_resnets = n_resnets;
  for (int j = 0; j < n_resnets; j++) {
    snprintf (p, sizeof p, "%s.resnets.%d", prefix, j);
    if ((st = vq_load_resnet (vq, set, p, j == 0 ? c_in : c_out, c_out, &blk->resnets[j], err))
        != TS_OK)
      return st;
  }
  if (sampler) {
    snprintf (p, sizeof p, "%s.%s.0.conv", prefix, sampler_name);
    if ((st = vq_load_conv (vq, set, p, c_out, c_out, 3, &blk->sample_w, &blk->sample_b, err))
        != TS_OK)
      return st;
  }
  return TS_OK;
}

static ts_status
vq_load_all (ts_vq *vq, const ts_st_set *set, ts_error *err)
{
  const ts_vq_config *c = &vq->cfg;
  const int n = c->n_blocks, D = vq->embed_dim;
  const int *bo = c->block_out_channels;
  char p[64];
  ts_status st;

#define TRY(call)               \
  do {                          \
    if ((st = (call)) != TS_OK) \
      return st;                \
  } while (0)

  /* Encoder (vae.py Encoder.__init__): block i goes block_out[i-1] → block_out[i]. */
  TRY (vq_load_conv (vq, set, "encoder.conv_in", bo[0], c->in_channels, 3, &vq->enc_in_w,
                     &vq->enc_in_b, err));
  for (int i = 0; i < n; i++) {
    snprintf (p, sizeof p, "encoder.down_blocks.%d", i);
    TRY (vq_load_block (vq, set, p, c->layers_per_block, i == 0 ? bo[0] : bo[i - 1], bo[i],
                        i < n - 1, "downsamplers", &vq->enc_blocks[i], err));
  }
  for (int j = 0; j < 2; j++) {
    snprintf (p, sizeof p, "encoder.mid_block.resnets.%d", j);
    TRY (vq_load_resnet (vq, set, p, bo[n - 1], bo[n - 1], &vq->enc_mid[j], err));
  }
  TRY (vq_load_norm (vq, set, "encoder.conv_norm_out", bo[n - 1], &vq->enc_norm_w,
                     &vq->enc_norm_b, err));
  TRY (vq_load_conv (vq, set, "encoder.conv_out", c->latent_channels, bo[n - 1], 3,
                     &vq->enc_out_w, &vq->enc_out_b, err));
  TRY (vq_load_conv (vq, set, "quant_conv", D, c->latent_channels, 1, &vq->quant_w,
                     &vq->quant_b, err));

  const int64_t s_cb[2] = { c->num_vq_embeddings, D };
  VQ_LOAD (vq->codebook, 2, s_cb, "quantize.embedding.weight");

  /* Decoder (vae.py Decoder.__init__): up block i goes reversed[i-1] → reversed[i], with
   * layers_per_block + 1 resnets. */
  TRY (vq_load_conv (vq, set, "post_quant_conv", c->latent_channels, D, 1, &vq->post_quant_w,
                     &vq->post_quant_b, err));
  TRY (vq_load_conv (vq, set, "decoder.conv_in", bo[n - 1], c->latent_channels, 3,
                     &vq->dec_in_w, &vq->dec_in_b, err));
  for (int j = 0; j < 2; j++) {
    snprintf (p, sizeof p, "decoder.mid_block.resnets.%d", j);
    TRY (vq_load_resnet (vq, set, p, bo[n - 1], bo[n - 1], &vq->dec_mid[j], err));
  }
  for (int i = 0; i < n; i++) {
    const int c_out = bo[n - 1 - i], c_in = i == 0 ? bo[n - 1] : bo[n - i];
    snprintf (p, sizeof p, "decoder.up_blocks.%d", i);
    TRY (vq_load_block (vq, set, p, c->layers_per_block + 1, c_in, c_out, i < n - 1,
                        "upsamplers", &vq->dec_blocks[i], err));
  }
  TRY (vq_load_norm (vq, set, "decoder.conv_norm_out", bo[0], &vq->dec_norm_w, &vq->dec_norm_b,
                     err));
  TRY (vq_load_conv (vq, set, "decoder.conv_out", c->out_channels, bo[0], 3, &vq->dec_out_w,
                     &vq->dec_out_b, err));
#undef TRY

  /* Host copy of the codebook: squared norms for the nearest-entry search and the
   * entries themselves for captures. */
  const ts_st_tensor *t = ts_st_set_find (set, "quantize.embedding.weight");
  const size_t n_cb = (size_t) c->num_vq_embeddings * (size_t) D;
  vq->codebook_host = malloc (n_cb * sizeof *vq->codebook_host);
  vq->code_norms = malloc ((size_t) c->num_vq_embeddings * sizeof *vq->code_norms);
  if (!vq->codebook_host || !vq->code_norms)
    return ts_error_set (err, TS_ERR_NOMEM, "vqvae: out of memory");
  if ((st = ts_st_tensor_to_f32 (t, vq->codebook_host, err)) != TS_OK)
    return st;
  for (int k = 0; k < c->num_vq_embeddings; k++) {
    double s = 0;
    for (int d = 0; d < D; d++) {
      const double e = vq->codebook_host[(size_t) k * D + d];
      s += e * e;
    }
    vq->code_norms[k] = s;
  }
  return TS_OK;
}
#undef VQ_LOAD

ts_vq *
ts_vq_new (const ts_backend *be, const ts_vq_config *cfg, const ts_st_set *weights,
           ts_error *err)
{
  TS_ASSERT (be && cfg && weights);
  ts_vq *vq = calloc (1, sizeof *vq);
  if (!vq) {
    ts_error_set (err, TS_ERR_NOMEM, "vqvae: out of memory");
    return NULL;
  }
  vq->be = be;
  vq->cfg = *cfg;
  vq->weights = ts_weight_set_new (be, "vqvae");
  if (!vq->weights) {
    ts_error_set (err, TS_ERR_NOMEM, "vqvae: out of memory");
    goto fail;
  }

  if (cfg->mid_block_add_attention) {
    ts_error_set (err, TS_ERR_UNSUPPORTED, "vqvae: mid_block_add_attention true is not supported");
    goto fail;
  }
  if (cfg->n_blocks < 1 || cfg->n_blocks > TS_VQ_MAX_BLOCKS || cfg->layers_per_block < 1
      || cfg->norm_num_groups < 1 || cfg->num_vq_embeddings < 1 || cfg->latent_channels < 1
      || cfg->in_channels < 1 || cfg->out_channels < 1) {
    ts_error_set (err, TS_ERR_FORMAT,
                  "vqvae: config: %d blocks (1..%d), layers_per_block %d, norm_num_groups %d, "
                  "%d codes: values out of range",
                  cfg->n_blocks, TS_VQ_MAX_BLOCKS, cfg->layers_per_block, cfg->norm_num_groups,
                  cfg->num_vq_embeddings);
    goto fail;
  }
  vq->factor = 1 << (cfg->n_blocks - 1);
  vq->embed_dim = cfg->vq_embed_dim > 0 ? cfg->vq_embed_dim : cfg->latent_channels;

  if (vq_load_all (vq, weights, err) != TS_OK)
    goto fail;
  return vq;

fail:
  ts_vq_free (vq);
  return NULL;
}

static void
vq_block_clear (vq_block *blk)
{
  free (blk->resnets);
  blk->resnets = NULL;
}

void
ts_vq_free (ts_vq *vq)
{
  if (!vq)
    return;
  for (int i = 0; i < VQ_N_SLOTS; i++)
    if (vq->slot[i])
      vq->be->ops->buffer_free (vq->be->impl, vq->slot[i]);
  if (vq->ids_buf)
    vq->be->ops->buffer_free (vq->be->impl, vq->ids_buf);
  ts_weight_set_free (vq->weights);
  for (int i = 0; i < TS_VQ_MAX_BLOCKS; i++) {
    vq_block_clear (&vq->enc_blocks[i]);
    vq_block_clear (&vq->dec_blocks[i]);
  }
  free (vq->codebook_host);
  free (vq->code_norms);
  free (vq);
}

const ts_vq_config *
ts_vq_get_config (const ts_vq *vq)
{
  return &vq->cfg;
}

int
ts_vq_scale_factor (const ts_vq *vq)
{
  return vq->factor;
}

/* ---- scratch ---- */

void
ts_vq_trim (ts_vq *vq)
{
  if (!vq)
    return;
  for (int i = 0; i < VQ_N_SLOTS; i++) {
    if (vq->slot[i])
      vq->be->ops->buffer_free (vq->be->impl, vq->slot[i]);
    vq->slot[i] = NULL;
  }
  vq->slot_bytes = 0;
}

/* Grows the three activation slots to `elems` floats each and the id buffer to `n_ids`. */
static ts_status
vq_scratch_reserve (ts_vq *vq, size_t elems, size_t n_ids, ts_error *err)
{
  const ts_backend *be = vq->be;
  size_t bytes;
  if (!ts_mul_size (elems, sizeof (float), &bytes))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "vqvae: request too large");
  if (bytes > vq->slot_bytes) {
    for (int i = 0; i < VQ_N_SLOTS; i++) {
      if (vq->slot[i])
        be->ops->buffer_free (be->impl, vq->slot[i]);
      vq->slot[i] = NULL;
    }
    vq->slot_bytes = 0;
    for (int i = 0; i < VQ_N_SLOTS; i++) {
      vq->slot[i] = be->ops->buffer_new (be->impl, bytes, err);
      if (!vq->slot[i]) {
        ts_error_prefix (err, "vqvae: activations (3 x %zu bytes)", bytes);
        return err ? err->code : TS_ERR_NOMEM;
      }
    }
    vq->slot_bytes = bytes;
  }
  if (!ts_mul_size (n_ids, sizeof (int32_t), &bytes))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "vqvae: request too large");
  if (bytes > vq->ids_bytes) {
    if (vq->ids_buf)
      be->ops->buffer_free (be->impl, vq->ids_buf);
    vq->ids_bytes = 0;
    vq->ids_buf = be->ops->buffer_new (be->impl, bytes, err);
    if (!vq->ids_buf) {
      ts_error_prefix (err, "vqvae: ids (%zu bytes)", bytes);
      return err ? err->code : TS_ERR_NOMEM;
    }
    vq->ids_bytes = bytes;
  }
  return TS_OK;
}

/* Raises *max to batch·c·h·w; SIZE_MAX on overflow, which the reservation then rejects. */
static void
vq_note (size_t *max, int64_t batch, int64_t c, int64_t h, int64_t w)
{
  size_t n;
  if (!ts_mul_size ((size_t) batch, (size_t) c, &n) || !ts_mul_size (n, (size_t) h, &n)
      || !ts_mul_size (n, (size_t) w, &n))
    n = SIZE_MAX;
  if (n > *max)
    *max = n;
}

/* Largest feature map (floats) of a decode of an h × w grid; every tensor the decode
 * writes is noted, walking the same loop as vq_decode_run. */
static size_t
vq_decode_max_elems (const ts_vq *vq, int64_t B, int64_t h, int64_t w)
{
  size_t m = 0;
  vq_note (&m, B, vq->embed_dim, h, w);
  vq_note (&m, B, vq->cfg.latent_channels, h, w);
  for (int i = 0; i < vq->cfg.n_blocks; i++) {
    const vq_block *blk = &vq->dec_blocks[i];
    vq_note (&m, B, blk->c_in, h, w);
    vq_note (&m, B, blk->c_out, h, w);
    if (blk->sample_w) {
      h *= 2;
      w *= 2;
      vq_note (&m, B, blk->c_out, h, w);
    }
  }
  vq_note (&m, B, vq->cfg.out_channels, h, w);
  return m;
}

static size_t
vq_encode_max_elems (const ts_vq *vq, int64_t B, int64_t h, int64_t w)
{
  size_t m = 0;
  vq_note (&m, B, vq->cfg.in_channels, h, w);
  for (int i = 0; i < vq->cfg.n_blocks; i++) {
    const vq_block *blk = &vq->enc_blocks[i];
    vq_note (&m, B, blk->c_in, h, w);
    vq_note (&m, B, blk->c_out, h, w);
    if (blk->sample_w) {
      h /= 2;
      w /= 2;
    }
  }
  vq_note (&m, B, vq->cfg.latent_channels, h, w);
  vq_note (&m, B, vq->embed_dim, h, w);
  vq_note (&m, B, vq->cfg.num_vq_embeddings, h, w); /* distance scores */
  return m;
}

/* ---- ops ---- */

static ts_status
vq_conv (const ts_vq *vq, ts_ref x, ts_ref y, const ts_weight *w, const ts_weight *b,
         int64_t batch, int64_t c_in, int64_t h, int64_t wd, int64_t c_out, int k, ts_error *err)
{
  const int pad = k / 2;
  ts_conv2d_args a = { .x = x, .y = y, .w = w, .bias = b, .batch = batch, .c_in = c_in,
                       .h = h, .w_in = wd, .c_out = c_out, .h_out = h, .w_out = wd,
                       .kh = k, .kw = k, .stride = 1, .pad_top = pad, .pad_left = pad,
                       .pad_bottom = pad, .pad_right = pad };
  return ts_op_conv2d (vq->be, &a, err);
}

static ts_status
vq_group_norm (const ts_vq *vq, ts_ref x, ts_ref y, const ts_weight *w, const ts_weight *b,
               int64_t batch, int64_t c, int64_t hw, bool silu, ts_error *err)
{
  ts_group_norm_args a = { .x = x, .y = y, .weight = w, .bias = b, .batch = batch, .c = c,
                           .hw = hw, .groups = vq->cfg.norm_num_groups, .eps = VQ_GN_EPS,
                           .silu = silu };
  return ts_op_group_norm (vq->be, &a, err);
}

static ts_ref
vq_slot (const ts_vq *vq, int i)
{
  return ts_ref_at (vq->slot[i % VQ_N_SLOTS], 0);
}

/* ResnetBlock2D (temb None): norm1 → SiLU → conv1 → norm2 → SiLU → conv2, plus the input
 * (through conv_shortcut when channels change). Reads slot *cur, leaves the result in
 * *cur (which may change). */
static ts_status
vq_resnet_run (const ts_vq *vq, const vq_resnet *r, int64_t B, int64_t h, int64_t w, int *cur,
               ts_error *err)
{
  const int x = *cur, t1 = (x + 1) % VQ_N_SLOTS, t2 = (x + 2) % VQ_N_SLOTS;
  const int64_t hw = h * w;
  ts_status st;
  if ((st = vq_group_norm (vq, vq_slot (vq, x), vq_slot (vq, t1), r->n1_w, r->n1_b, B, r->c_in,
                           hw, true, err)) != TS_OK
      || (st = vq_conv (vq, vq_slot (vq, t1), vq_slot (vq, t2), r->c1_w, r->c1_b, B, r->c_in, h,
                        w, r->c_out, 3, err)) != TS_OK
      || (st = vq_group_norm (vq, vq_slot (vq, t2), vq_slot (vq, t2), r->n2_w, r->n2_b, B,
                              r->c_out, hw, true, err)) != TS_OK
      || (st = vq_conv (vq, vq_slot (vq, t2), vq_slot (vq, t1), r->c2_w, r->c2_b, B, r->c_out, h,
                        w, r->c_out, 3, err)) != TS_OK)
    return st;

  ts_elementwise_args add = { .kind = TS_EW_ADD, .rows = B * r->c_out, .cols = hw,
                              .lda = hw, .ldb = hw, .ldy = hw };
  if (r->sc_w) {
    if ((st = vq_conv (vq, vq_slot (vq, x), vq_slot (vq, t2), r->sc_w, r->sc_b, B, r->c_in, h, w,
                       r->c_out, 1, err)) != TS_OK)
      return st;
    add.a = vq_slot (vq, t2);
    add.b = vq_slot (vq, t1);
    add.y = vq_slot (vq, t2);
    *cur = t2;
  } else {
    add.a = vq_slot (vq, x);
    add.b = vq_slot (vq, t1);
    add.y = vq_slot (vq, x);
  }
  return ts_op_elementwise (vq->be, &add, err);
}

static ts_status
vq_capture (const ts_vq *vq, const ts_capture *cap, const char *name, ts_ref ref, int64_t b,
            int64_t c, int64_t h, int64_t w, ts_error *err)
{
  if (!ts_capture_wanted (cap))
    return TS_OK;
  const int64_t shape[4] = { b, c, h, w };
  const size_t n = (size_t) b * (size_t) c * (size_t) h * (size_t) w;
  float *host = malloc (n * sizeof *host);
  if (!host)
    return ts_error_set (err, TS_ERR_NOMEM, "vqvae: out of memory capturing %s", name);
  ts_status st = vq->be->ops->download (vq->be->impl, ref, host, n * sizeof *host, err);
  if (st == TS_OK)
    cap->fn (cap->user_data, name, host, 4, shape);
  free (host);
  return st;
}

/* ---- decode ---- */

ts_status
ts_vq_decode (ts_vq *vq, const int32_t *ids, int batch, int h, int w, float *image,
              const ts_capture *cap, ts_error *err)
{
  TS_ASSERT (vq && ids && image);
  const ts_backend *be = vq->be;
  const ts_vq_config *c = &vq->cfg;
  const int64_t B = batch, D = vq->embed_dim, C_lat = c->latent_channels;
  const int n = c->n_blocks;
  ts_status st;

  if (batch < 1 || h < 1 || w < 1)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "vqvae: decode: batch %d and grid %d x %d must be positive", batch, h, w);
  if ((int64_t) h * vq->factor > INT32_MAX || (int64_t) w * vq->factor > INT32_MAX)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "vqvae: decode: grid %d x %d is too large", h,
                         w);
  size_t n_ids;
  if (!ts_mul_size ((size_t) batch, (size_t) h, &n_ids) || !ts_mul_size (n_ids, (size_t) w, &n_ids))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "vqvae: decode: request too large");
  for (size_t i = 0; i < n_ids; i++)
    if (ids[i] < 0 || ids[i] >= c->num_vq_embeddings)
      return ts_error_set (err, TS_ERR_INVALID_ARG,
                           "vqvae: decode: codebook id %d at position %zu is outside [0, %d)",
                           (int) ids[i], i, c->num_vq_embeddings);

  if ((st = vq_scratch_reserve (vq, vq_decode_max_elems (vq, B, h, w), n_ids, err)) != TS_OK)
    return st;

#define TRY(call)               \
  do {                          \
    if ((st = (call)) != TS_OK) \
      return st;                \
  } while (0)

  int64_t hh = h, ww = w;
  const ts_ref r_ids = ts_ref_at (vq->ids_buf, 0);
  TRY (be->ops->upload (be->impl, r_ids, ids, n_ids * sizeof (int32_t), err));

  /* VectorQuantizer.get_codebook_entry: embedding(ids).view(B, h, w, D).permute(0, 3, 1, 2) */
  ts_embed_args emb = { .table = vq->codebook, .ids = r_ids, .y = vq_slot (vq, 0),
                        .n = (int64_t) n_ids, .dim = D };
  TRY (ts_op_embed (be, &emb, err));
  ts_transpose_args tr = { .x = vq_slot (vq, 0), .y = vq_slot (vq, 1), .batch = B,
                           .rows = hh * ww, .cols = D };
  TRY (ts_op_transpose (be, &tr, err));
  TRY (vq_capture (vq, cap, "mid.quant", vq_slot (vq, 1), B, D, hh, ww, err));

  TRY (vq_conv (vq, vq_slot (vq, 1), vq_slot (vq, 2), vq->post_quant_w, vq->post_quant_b, B, D,
                hh, ww, C_lat, 1, err));
  TRY (vq_capture (vq, cap, "mid.post_quant_conv_out", vq_slot (vq, 2), B, C_lat, hh, ww, err));

  const int64_t c_top = c->block_out_channels[n - 1];
  TRY (vq_conv (vq, vq_slot (vq, 2), vq_slot (vq, 0), vq->dec_in_w, vq->dec_in_b, B, C_lat, hh,
                ww, c_top, 3, err));
  TRY (vq_capture (vq, cap, "mid.dec_conv_in_out", vq_slot (vq, 0), B, c_top, hh, ww, err));

  int cur = 0;
  for (int j = 0; j < 2; j++)
    TRY (vq_resnet_run (vq, &vq->dec_mid[j], B, hh, ww, &cur, err));
  TRY (vq_capture (vq, cap, "mid.dec_mid_block_out", vq_slot (vq, cur), B, c_top, hh, ww, err));

  for (int i = 0; i < n; i++) {
    const vq_block *blk = &vq->dec_blocks[i];
    for (int j = 0; j < blk->n_resnets; j++)
      TRY (vq_resnet_run (vq, &blk->resnets[j], B, hh, ww, &cur, err));
    if (blk->sample_w) {
      const int up = (cur + 1) % VQ_N_SLOTS, out = (cur + 2) % VQ_N_SLOTS;
      ts_upsample_args ua = { .x = vq_slot (vq, cur), .y = vq_slot (vq, up), .batch = B,
                              .c = blk->c_out, .h = hh, .w = ww };
      TRY (ts_op_upsample (be, &ua, err));
      hh *= 2;
      ww *= 2;
      TRY (vq_conv (vq, vq_slot (vq, up), vq_slot (vq, out), blk->sample_w, blk->sample_b, B,
                    blk->c_out, hh, ww, blk->c_out, 3, err));
      cur = out;
    }
    if (ts_capture_wanted (cap)) {
      char name[48];
      snprintf (name, sizeof name, "mid.dec_up_block%d_out", i);
      TRY (vq_capture (vq, cap, name, vq_slot (vq, cur), B, blk->c_out, hh, ww, err));
    }
  }

  /* conv_norm_out and conv_act are separate modules; the golden hook sits between them. */
  const int64_t c_bot = c->block_out_channels[0];
  const int nx = (cur + 1) % VQ_N_SLOTS, ox = (cur + 2) % VQ_N_SLOTS;
  TRY (vq_group_norm (vq, vq_slot (vq, cur), vq_slot (vq, nx), vq->dec_norm_w, vq->dec_norm_b,
                      B, c_bot, hh * ww, false, err));
  TRY (vq_capture (vq, cap, "mid.dec_conv_norm_out", vq_slot (vq, nx), B, c_bot, hh, ww, err));
  ts_act_args act = { .kind = TS_ACT_SILU, .x = vq_slot (vq, nx), .y = vq_slot (vq, nx),
                      .rows = B * c_bot, .cols = hh * ww, .ldx = hh * ww, .ldy = hh * ww };
  TRY (ts_op_act (be, &act, err));
  TRY (vq_conv (vq, vq_slot (vq, nx), vq_slot (vq, ox), vq->dec_out_w, vq->dec_out_b, B, c_bot,
                hh, ww, c->out_channels, 3, err));
  TRY (be->ops->download (be->impl, vq_slot (vq, ox), image,
                          (size_t) B * c->out_channels * hh * ww * sizeof (float), err));
#undef TRY
  return TS_OK;
}

void
ts_vq_to_uint8 (const float *image_nchw, int batch, int height, int width, uint8_t *rgb)
{
  const size_t plane = (size_t) height * (size_t) width;
  for (int b = 0; b < batch; b++)
    for (size_t p = 0; p < plane; p++)
      for (int ch = 0; ch < 3; ch++) {
        float v = image_nchw[((size_t) b * 3 + (size_t) ch) * plane + p];
        if (!(v > 0.0f)) /* also NaN */
          v = 0.0f;
        if (v > 1.0f)
          v = 1.0f;
        /* numpy: (images * 255).round() on float32 — an fp32 product, then
         * round-half-to-even (the default rounding mode). */
        const float scaled = v * 255.0f;
        rgb[((size_t) b * plane + p) * 3 + (size_t) ch] = (uint8_t) nearbyintf (scaled);
      }
}

/* ---- encode ---- */

ts_status
ts_vq_encode (ts_vq *vq, const float *image, int batch, int height, int width, int32_t *ids,
              float *latents, const ts_capture *cap, ts_error *err)
{
  TS_ASSERT (vq && image && ids);
  const ts_backend *be = vq->be;
  const ts_vq_config *c = &vq->cfg;
  const int n = c->n_blocks, f = vq->factor;
  const int64_t B = batch, D = vq->embed_dim, K = c->num_vq_embeddings;
  float *scores = NULL, *host_lat = NULL, *extra = NULL;
  ts_status st;

  if (batch < 1)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "vqvae: encode: batch %d must be positive",
                         batch);
  if (height < 1 || width < 1 || height % f != 0 || width % f != 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "vqvae: encode: image size %d x %d must be a positive multiple of %d",
                         width, height, f);

  const int64_t h_lat = height / f, w_lat = width / f, R = h_lat * w_lat;
  size_t n_ids, n_scores;
  if (!ts_mul_size ((size_t) B, (size_t) R, &n_ids)
      || !ts_mul_size (n_ids, (size_t) K, &n_scores))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "vqvae: encode: request too large");
  if ((st = vq_scratch_reserve (vq, vq_encode_max_elems (vq, B, height, width), n_ids, err))
      != TS_OK)
    return st;

#define TRY(call)               \
  do {                          \
    if ((st = (call)) != TS_OK) \
      goto fail;                \
  } while (0)

  int64_t hh = height, ww = width;
  TRY (be->ops->upload (be->impl, vq_slot (vq, 0), image,
                        (size_t) B * c->in_channels * hh * ww * sizeof (float), err));
  const int64_t c0 = c->block_out_channels[0];
  TRY (vq_conv (vq, vq_slot (vq, 0), vq_slot (vq, 1), vq->enc_in_w, vq->enc_in_b, B,
                c->in_channels, hh, ww, c0, 3, err));
  TRY (vq_capture (vq, cap, "mid.enc_conv_in_out", vq_slot (vq, 1), B, c0, hh, ww, err));

  int cur = 1;
  for (int i = 0; i < n; i++) {
    const vq_block *blk = &vq->enc_blocks[i];
    for (int j = 0; j < blk->n_resnets; j++)
      TRY (vq_resnet_run (vq, &blk->resnets[j], B, hh, ww, &cur, err));
    if (blk->sample_w) {
      /* Downsample2D with padding=0: F.pad(x, (0, 1, 0, 1)) then a 3×3 stride-2 conv. */
      const int out = (cur + 1) % VQ_N_SLOTS;
      ts_conv2d_args a = { .x = vq_slot (vq, cur), .y = vq_slot (vq, out), .w = blk->sample_w,
                           .bias = blk->sample_b, .batch = B, .c_in = blk->c_out, .h = hh,
                           .w_in = ww, .c_out = blk->c_out, .h_out = (hh + 1 - 3) / 2 + 1,
                           .w_out = (ww + 1 - 3) / 2 + 1, .kh = 3, .kw = 3, .stride = 2,
                           .pad_top = 0, .pad_left = 0, .pad_bottom = 1, .pad_right = 1 };
      TRY (ts_op_conv2d (be, &a, err));
      hh = a.h_out;
      ww = a.w_out;
      cur = out;
    }
    if (ts_capture_wanted (cap)) {
      char name[48];
      snprintf (name, sizeof name, "mid.enc_down_block%d_out", i);
      TRY (vq_capture (vq, cap, name, vq_slot (vq, cur), B, blk->c_out, hh, ww, err));
    }
  }
  TS_ASSERT (hh == h_lat && ww == w_lat);

  const int64_t c_top = c->block_out_channels[n - 1];
  for (int j = 0; j < 2; j++)
    TRY (vq_resnet_run (vq, &vq->enc_mid[j], B, hh, ww, &cur, err));
  TRY (vq_capture (vq, cap, "mid.enc_mid_block_out", vq_slot (vq, cur), B, c_top, hh, ww, err));

  const int nx = (cur + 1) % VQ_N_SLOTS, ox = (cur + 2) % VQ_N_SLOTS;
  TRY (vq_group_norm (vq, vq_slot (vq, cur), vq_slot (vq, nx), vq->enc_norm_w, vq->enc_norm_b,
                      B, c_top, R, true, err));
  TRY (vq_conv (vq, vq_slot (vq, nx), vq_slot (vq, ox), vq->enc_out_w, vq->enc_out_b, B, c_top,
                hh, ww, c->latent_channels, 3, err));
  TRY (vq_capture (vq, cap, "mid.enc_conv_out_out", vq_slot (vq, ox), B, c->latent_channels, hh,
                   ww, err));
  TRY (vq_conv (vq, vq_slot (vq, ox), vq_slot (vq, cur), vq->quant_w, vq->quant_b, B,
                c->latent_channels, hh, ww, D, 1, err));
  const int lat = cur;
  if (latents)
    TRY (be->ops->download (be->impl, vq_slot (vq, lat), latents,
                            (size_t) B * D * R * sizeof (float), err));

  /* VectorQuantizer.forward: argmin over torch.cdist(z, codebook). −2·z·e on the backend,
   * ||e||² added on the host; ||z||² is the same for every entry and drops out. */
  ts_transpose_args tr = { .x = vq_slot (vq, lat), .y = vq_slot (vq, nx), .batch = B,
                           .rows = D, .cols = R };
  TRY (ts_op_transpose (be, &tr, err));
  ts_matmul_args mm = { .x = vq_slot (vq, nx), .ldx = D, .w = vq->codebook, .y = vq_slot (vq, ox),
                        .ldy = K, .m = B * R, .n = K, .k = D };
  TRY (ts_op_matmul (be, &mm, err));
  scores = malloc (n_scores * sizeof *scores);
  if (!scores) {
    st = ts_error_set (err, TS_ERR_NOMEM, "vqvae: encode: out of memory");
    goto fail;
  }
  TRY (be->ops->download (be->impl, vq_slot (vq, ox), scores, n_scores * sizeof *scores, err));
  for (size_t i = 0; i < n_ids; i++) {
    const float *row = scores + i * (size_t) K;
    int best = 0;
    double best_d = vq->code_norms[0] - 2.0 * (double) row[0];
    for (int k = 1; k < K; k++) {
      const double d = vq->code_norms[k] - 2.0 * (double) row[k];
      if (d < best_d) {
        best_d = d;
        best = k;
      }
    }
    ids[i] = best;
  }

  if (ts_capture_wanted (cap)) {
    /* The chosen entries (NCHW) and, per position, second-best minus best Euclidean
     * distance in double from the fp32 latents, as the golden margin is computed. */
    host_lat = malloc ((size_t) B * D * R * sizeof *host_lat);
    extra = malloc (((size_t) B * D * R + n_ids) * sizeof *extra);
    if (!host_lat || !extra) {
      st = ts_error_set (err, TS_ERR_NOMEM, "vqvae: encode: out of memory");
      goto fail;
    }
    TRY (be->ops->download (be->impl, vq_slot (vq, lat), host_lat,
                            (size_t) B * D * R * sizeof (float), err));
    float *margin = extra + (size_t) B * D * R;
    for (int64_t b = 0; b < B; b++)
      for (int64_t p = 0; p < R; p++) {
        const size_t i = (size_t) (b * R + p);
        double d1 = DBL_MAX, d2 = DBL_MAX;
        for (int64_t k = 0; k < K; k++) {
          double s = 0;
          for (int64_t d = 0; d < D; d++) {
            const double diff = (double) host_lat[(b * D + d) * R + p]
                                - (double) vq->codebook_host[k * D + d];
            s += diff * diff;
          }
          if (s < d1) {
            d2 = d1;
            d1 = s;
          } else if (s < d2) {
            d2 = s;
          }
        }
        margin[i] = K > 1 ? (float) (sqrt (d2) - sqrt (d1)) : 0.0f;
        for (int64_t d = 0; d < D; d++)
          extra[(b * D + d) * R + p] = vq->codebook_host[(int64_t) ids[i] * D + d];
      }
    const int64_t shape_q[4] = { B, D, h_lat, w_lat }, shape_m[1] = { (int64_t) n_ids };
    cap->fn (cap->user_data, "out.quantized", extra, 4, shape_q);
    cap->fn (cap->user_data, "mid.distance_margin_f64", margin, 1, shape_m);
  }
#undef TRY
  st = TS_OK;

fail:
  free (scores);
  free (host_lat);
  free (extra);
  return st;
}
