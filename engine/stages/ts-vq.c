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
 * Activations are NCHW F32 feature maps stored as horizontal row bands, each band a dense
 * [batch, c, rows, w] tensor in its own backend buffer of at most a byte budget (32 MiB,
 * or the device's maxStorageBufferRange when smaller), in the decoder and the encoder
 * alike. A convolution computes one output band at a time from a gathered copy of the
 * input rows it reads (the band plus its halo, through a nearest 2× upsample where a
 * decoder block has one, or every other row for the encoder's stride-2 downsample with
 * its right/bottom zero pad); GroupNorm keeps whole-tensor statistics gathered band by
 * band (TS_GN_STATS) and normalises the gathered rows (TS_GN_APPLY); input bands are
 * released as soon as no later band reads them. So at 1024² the decoder holds about two
 * full-resolution 128-channel maps (0.5 GB each) instead of three 256-channel ones, and no
 * op binds more than a band. A map that fits one band runs exactly the ops of a
 * whole-tensor pass.
 *
 * The encoder's nearest-codebook search runs the −2·z·e term as a backend matmul (as
 * torch.cdist does for more than 25 rows) over chunks of latent rows whose scores fit the
 * budget, and finishes the argmin on the host.
 */
#include "stages/ts-vq.h"

#include "model/ts-weights.h"

#include "core/ts-common.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define VQ_GN_EPS 1e-6f
#define VQ_BAND_BYTES_DEFAULT ((size_t) 32 << 20)
/* Rows a band's temporaries hold beyond the band: a 3×3 halo, plus the row a nearest 2×
 * upsample of the gathered low-resolution rows adds at either end. */
#define VQ_BAND_EXTRA_ROWS 4

/* The decoder's temporaries, each grown to the largest band it has held. */
enum {
  VQ_TMP_IN,    /* the rows a convolution reads, gathered (and normalised) */
  VQ_TMP_LO,    /* low-resolution rows gathered for a 2× upsample */
  VQ_TMP_UP,    /* their upsample */
  VQ_TMP_OUT,   /* a convolution's output band on its way to a residual add or the host */
  VQ_TMP_STATS, /* GroupNorm statistics [batch, groups, 2] */
  VQ_N_TMP
};

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

  ts_buffer *ids_buf;
  size_t ids_bytes;
  ts_buffer *tmp[VQ_N_TMP];
  size_t tmp_bytes[VQ_N_TMP];
  size_t band_bytes; /* TESSERA_VQ_BAND_BYTES; 0: VQ_BAND_BYTES_DEFAULT */
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

  /* Encoder (vae.py Encoder.__init__): block i goes block_out[i-1] → block_out[i]. */
  TS_TRY (vq_load_conv (vq, set, "encoder.conv_in", bo[0], c->in_channels, 3, &vq->enc_in_w,
                        &vq->enc_in_b, err));
  for (int i = 0; i < n; i++) {
    snprintf (p, sizeof p, "encoder.down_blocks.%d", i);
    TS_TRY (vq_load_block (vq, set, p, c->layers_per_block, i == 0 ? bo[0] : bo[i - 1], bo[i],
                           i < n - 1, "downsamplers", &vq->enc_blocks[i], err));
  }
  for (int j = 0; j < 2; j++) {
    snprintf (p, sizeof p, "encoder.mid_block.resnets.%d", j);
    TS_TRY (vq_load_resnet (vq, set, p, bo[n - 1], bo[n - 1], &vq->enc_mid[j], err));
  }
  TS_TRY (vq_load_norm (vq, set, "encoder.conv_norm_out", bo[n - 1], &vq->enc_norm_w,
                        &vq->enc_norm_b, err));
  TS_TRY (vq_load_conv (vq, set, "encoder.conv_out", c->latent_channels, bo[n - 1], 3,
                        &vq->enc_out_w, &vq->enc_out_b, err));
  TS_TRY (vq_load_conv (vq, set, "quant_conv", D, c->latent_channels, 1, &vq->quant_w,
                        &vq->quant_b, err));

  const int64_t s_cb[2] = { c->num_vq_embeddings, D };
  VQ_LOAD (vq->codebook, 2, s_cb, "quantize.embedding.weight");

  /* Decoder (vae.py Decoder.__init__): up block i goes reversed[i-1] → reversed[i], with
   * layers_per_block + 1 resnets. */
  TS_TRY (vq_load_conv (vq, set, "post_quant_conv", c->latent_channels, D, 1, &vq->post_quant_w,
                        &vq->post_quant_b, err));
  TS_TRY (vq_load_conv (vq, set, "decoder.conv_in", bo[n - 1], c->latent_channels, 3,
                        &vq->dec_in_w, &vq->dec_in_b, err));
  for (int j = 0; j < 2; j++) {
    snprintf (p, sizeof p, "decoder.mid_block.resnets.%d", j);
    TS_TRY (vq_load_resnet (vq, set, p, bo[n - 1], bo[n - 1], &vq->dec_mid[j], err));
  }
  for (int i = 0; i < n; i++) {
    const int c_out = bo[n - 1 - i], c_in = i == 0 ? bo[n - 1] : bo[n - i];
    snprintf (p, sizeof p, "decoder.up_blocks.%d", i);
    TS_TRY (vq_load_block (vq, set, p, c->layers_per_block + 1, c_in, c_out, i < n - 1,
                           "upsamplers", &vq->dec_blocks[i], err));
  }
  TS_TRY (vq_load_norm (vq, set, "decoder.conv_norm_out", bo[0], &vq->dec_norm_w, &vq->dec_norm_b,
                        err));
  TS_TRY (vq_load_conv (vq, set, "decoder.conv_out", c->out_channels, bo[0], 3, &vq->dec_out_w,
                        &vq->dec_out_b, err));

  /* Host copy of the codebook: squared norms for the nearest-entry search and the
   * entries themselves for captures. */
  const ts_st_tensor *t = ts_st_set_find (set, "quantize.embedding.weight");
  const size_t n_cb = (size_t) c->num_vq_embeddings * (size_t) D;
  vq->codebook_host = malloc (n_cb * sizeof *vq->codebook_host);
  vq->code_norms = malloc ((size_t) c->num_vq_embeddings * sizeof *vq->code_norms);
  if (!vq->codebook_host || !vq->code_norms)
    return ts_error_set (err, TS_ERR_NOMEM, "vqvae: out of memory");
  if ((st = ts_st_tensor_check_finite (t, err)) != TS_OK) {
    ts_error_prefix (err, "vqvae");
    return st;
  }
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

fail:
  return st;
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
  /* TESSERA_VQ_BAND_BYTES=<bytes> shrinks the bands, so that tests run the banded decoder
   * on small images. */
  const char *band_env = getenv ("TESSERA_VQ_BAND_BYTES");
  vq->band_bytes = band_env ? (size_t) strtoull (band_env, NULL, 10) : 0;
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
  ts_vq_trim (vq);
  if (vq->ids_buf)
    ts_buffer_free (vq->be, vq->ids_buf);
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
  for (int i = 0; i < VQ_N_TMP; i++) {
    if (vq->tmp[i])
      ts_buffer_free (vq->be, vq->tmp[i]);
    vq->tmp[i] = NULL;
    vq->tmp_bytes[i] = 0;
  }
}


/* Grows the id buffer to `n_ids`. */
static ts_status
vq_ids_reserve (ts_vq *vq, size_t n_ids, ts_error *err)
{
  const ts_backend *be = vq->be;
  size_t bytes;
  if (!ts_mul_size (n_ids, sizeof (int32_t), &bytes))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "vqvae: request too large");
  if (bytes > vq->ids_bytes) {
    if (vq->ids_buf)
      ts_buffer_free (be, vq->ids_buf);
    vq->ids_bytes = 0;
    vq->ids_buf = ts_buffer_new (be, bytes, err);
    if (!vq->ids_buf) {
      ts_error_prefix (err, "vqvae: ids (%zu bytes)", bytes);
      return err ? err->code : TS_ERR_NOMEM;
    }
    vq->ids_bytes = bytes;
  }
  return TS_OK;
}

/* ---- banded feature maps ---- */

/* A feature map [batch, c, h, w] as bands of `rows` rows (the last may have fewer), band k
 * a dense [batch, c, rows_k, w] tensor; NULL until written and after release. */
typedef struct {
  int64_t batch, c, h, w, rows;
  int n_bands;
  ts_buffer **band;
} vq_map;

/* A GroupNorm in front of a convolution. */
typedef struct {
  const ts_weight *w, *b;
  bool silu;      /* fused into the GroupNorm op (ResnetBlock2D's nonlinearity) */
  bool act;       /* SiLU as its own op after the norm (conv_norm_out, then conv_act) */
  bool parts;     /* set by vq_norm_prepare: statistics in VQ_TMP_STATS, not one op */
  float *capture; /* host [batch, c, h, w] receiving the normalised rows, or NULL */
} vq_norm;

typedef struct {
  const ts_weight *w, *b;
  int64_t c_out;
  int k, stride, pad_top, pad_left, pad_bottom, pad_right;
} vq_conv_desc;

static vq_conv_desc
vq_conv_same (const ts_weight *w, const ts_weight *b, int64_t c_out, int k)
{
  vq_conv_desc d = { .w = w, .b = b, .c_out = c_out, .k = k, .stride = 1, .pad_top = k / 2,
                     .pad_left = k / 2, .pad_bottom = k / 2, .pad_right = k / 2 };
  return d;
}

static size_t
vq_band_budget (const ts_vq *vq)
{
  size_t budget = vq->band_bytes ? vq->band_bytes : VQ_BAND_BYTES_DEFAULT;
  size_t limit = ts_backend_max_operand_bytes (vq->be);
  return budget < limit ? budget : limit;
}

static int64_t
vq_band_rows (const vq_map *m, int k)
{
  const int64_t r0 = (int64_t) k * m->rows;
  return m->h - r0 < m->rows ? m->h - r0 : m->rows;
}

/* Sets up an empty map. Its bands are sized so that `c_band` channels (the most that a
 * convolution writing or reading the map holds per row) of a band plus
 * VQ_BAND_EXTRA_ROWS rows stay within the budget. */
static ts_status
vq_map_init (const ts_vq *vq, vq_map *m, int64_t batch, int64_t c, int64_t h, int64_t w,
             int64_t c_band, ts_error *err)
{
  const size_t row_bytes = (size_t) batch * (size_t) c_band * (size_t) w * sizeof (float);
  const int64_t fit = (int64_t) (vq_band_budget (vq) / row_bytes) - VQ_BAND_EXTRA_ROWS;
  *m = (vq_map) { .batch = batch, .c = c, .h = h, .w = w };
  m->rows = fit < 1 ? 1 : fit > h ? h : fit;
  m->n_bands = (int) ((h + m->rows - 1) / m->rows);
  m->band = calloc ((size_t) m->n_bands, sizeof *m->band);
  if (!m->band)
    return ts_error_set (err, TS_ERR_NOMEM, "vqvae: out of memory");
  return TS_OK;
}

static void
vq_map_clear (const ts_vq *vq, vq_map *m)
{
  for (int k = 0; m->band && k < m->n_bands; k++)
    if (m->band[k])
      ts_buffer_free (vq->be, m->band[k]);
  free (m->band);
  m->band = NULL;
}

/* Frees the bands that end at or above row `row` (no later band reads them). */
static void
vq_map_release (const ts_vq *vq, vq_map *m, int64_t row)
{
  for (int k = 0; k < m->n_bands && (int64_t) k * m->rows + vq_band_rows (m, k) <= row; k++)
    if (m->band[k]) {
      ts_buffer_free (vq->be, m->band[k]);
      m->band[k] = NULL;
    }
}

static ts_status
vq_map_band_new (const ts_vq *vq, vq_map *m, int k, ts_ref *out, ts_error *err)
{
  const size_t bytes = (size_t) (m->batch * m->c * vq_band_rows (m, k) * m->w) * sizeof (float);
  if (!m->band[k]) {
    m->band[k] = ts_buffer_new (vq->be, bytes, err);
    if (!m->band[k]) {
      ts_error_prefix (err, "vqvae: activation band (%zu bytes)", bytes);
      return err ? err->code : TS_ERR_NOMEM;
    }
  }
  *out = ts_ref_at (m->band[k], 0);
  return TS_OK;
}

/* Temporary `i`, grown to at least `bytes`. */
static ts_status
vq_tmp (ts_vq *vq, int i, size_t bytes, ts_ref *out, ts_error *err)
{
  if (bytes > vq->tmp_bytes[i]) {
    if (vq->tmp[i])
      ts_buffer_free (vq->be, vq->tmp[i]);
    vq->tmp_bytes[i] = 0;
    vq->tmp[i] = ts_buffer_new (vq->be, bytes, err);
    if (!vq->tmp[i]) {
      ts_error_prefix (err, "vqvae: band temporary (%zu bytes)", bytes);
      return err ? err->code : TS_ERR_NOMEM;
    }
    vq->tmp_bytes[i] = bytes;
  }
  *out = ts_ref_at (vq->tmp[i], 0);
  return TS_OK;
}

/* Copies rows [r0, r1) of every plane of m into dst, dense [batch, c, r1 - r0, w]. */
static ts_status
vq_map_gather (const ts_vq *vq, const vq_map *m, int64_t r0, int64_t r1, ts_ref dst,
               ts_error *err)
{
  for (int k = (int) (r0 / m->rows); k < m->n_bands && (int64_t) k * m->rows < r1; k++) {
    const int64_t b0 = (int64_t) k * m->rows, n = vq_band_rows (m, k);
    const int64_t s = r0 > b0 ? r0 : b0, e = r1 < b0 + n ? r1 : b0 + n;
    TS_ASSERT (m->band[k]);
    ts_elementwise_args cp = { .kind = TS_EW_COPY,
                               .a = ts_ref_f32 (ts_ref_at (m->band[k], 0), (s - b0) * m->w),
                               .y = ts_ref_f32 (dst, (s - r0) * m->w),
                               .rows = m->batch * m->c, .cols = (e - s) * m->w,
                               .lda = n * m->w, .ldy = (r1 - r0) * m->w };
    ts_status st = ts_op_elementwise (vq->be, &cp, err);
    if (st != TS_OK)
      return st;
  }
  return TS_OK;
}

/* Moves `rows` rows of each of `planes` planes between backend memory dev (dense
 * [planes, rows, w]) and rows [r0, r0 + rows) of a host [planes, h, w] tensor: from src
 * when it is given (an upload), else into dst. */
static ts_status
vq_copy_rows (const ts_vq *vq, ts_ref dev, int64_t planes, int64_t rows, int64_t r0, int64_t h,
              int64_t w, const float *src, float *dst, ts_error *err)
{
  const ts_backend *be = vq->be;
  const size_t bytes = (size_t) (rows * w) * sizeof (float);
  for (int64_t p = 0; p < planes; p++) {
    const ts_ref d = ts_ref_f32 (dev, p * rows * w);
    const int64_t at = (p * h + r0) * w;
    ts_status st = src ? ts_buffer_upload (be, d, src + at, bytes, err)
                       : ts_buffer_download (be, d, dst + at, bytes, err);
    if (st != TS_OK)
      return st;
  }
  return TS_OK;
}

/* Downloads map m into host [batch, c, h, w]. */
static ts_status
vq_map_download (const ts_vq *vq, const vq_map *m, float *host, ts_error *err)
{
  ts_status st = TS_OK;
  for (int k = 0; st == TS_OK && k < m->n_bands; k++)
    st = vq_copy_rows (vq, ts_ref_at (m->band[k], 0), m->batch * m->c, vq_band_rows (m, k),
                       (int64_t) k * m->rows, m->h, m->w, NULL, host, err);
  return st;
}

/* Prepares the norm in front of a convolution from map x into a map of n_out bands: one
 * GroupNorm op when both are a single band (the whole-tensor decode), else x's
 * statistics band by band into VQ_TMP_STATS. */
static ts_status
vq_norm_prepare (ts_vq *vq, const vq_map *x, vq_norm *nm, int n_out, ts_error *err)
{
  const int64_t groups = vq->cfg.norm_num_groups;
  ts_ref stats;
  ts_status st;
  nm->parts = x->n_bands > 1 || n_out > 1;
  if (!nm->parts)
    return TS_OK;
  if ((st = vq_tmp (vq, VQ_TMP_STATS, (size_t) (x->batch * groups) * 2 * sizeof (float), &stats,
                    err)) != TS_OK)
    return st;
  for (int k = 0; k < x->n_bands; k++) {
    ts_group_norm_args a = { .pass = TS_GN_STATS, .x = ts_ref_at (x->band[k], 0),
                             .batch = x->batch, .c = x->c, .hw = vq_band_rows (x, k) * x->w,
                             .groups = (int) groups, .eps = VQ_GN_EPS, .stats = stats,
                             .hw_done = (int64_t) k * x->rows * x->w };
    if ((st = ts_op_group_norm (vq->be, &a, err)) != TS_OK)
      return st;
  }
  return TS_OK;
}

/* Rows [in0, in1) of x (at twice its resolution when up is 2), normalised by nm when given,
 * as a dense tensor *src: a band of x itself when it is exactly that, else a temporary. */
static ts_status
vq_map_rows (ts_vq *vq, const vq_map *x, int up, const vq_norm *nm, int64_t in0, int64_t in1,
             ts_ref *src, ts_error *err)
{
  const int64_t B = x->batch, C = x->c, w = x->w * up, n = in1 - in0;
  const size_t plane_row = (size_t) (B * C * w) * sizeof (float);
  const int k = (int) (in0 / x->rows);
  ts_ref tin;
  ts_status st;

  if (up == 1 && !nm && in0 == (int64_t) k * x->rows && n == vq_band_rows (x, k)) {
    *src = ts_ref_at (x->band[k], 0);
    return TS_OK;
  }
  if ((st = vq_tmp (vq, VQ_TMP_IN, (size_t) n * plane_row, &tin, err)) != TS_OK)
    return st;
  *src = tin;
  if (up == 1 && nm && !nm->parts) {
    /* the whole map, one band: one GroupNorm op, as a whole-tensor decode runs it */
    ts_group_norm_args a = { .x = ts_ref_at (x->band[0], 0), .y = tin, .weight = nm->w,
                             .bias = nm->b, .batch = B, .c = C, .hw = x->h * x->w,
                             .groups = vq->cfg.norm_num_groups, .eps = VQ_GN_EPS,
                             .silu = nm->silu };
    TS_ASSERT (x->n_bands == 1 && n == x->h);
    if ((st = ts_op_group_norm (vq->be, &a, err)) != TS_OK)
      return st;
  } else if (up == 1) {
    if ((st = vq_map_gather (vq, x, in0, in1, tin, err)) != TS_OK)
      return st;
  } else {
    /* nearest 2×: rows [in0, in1) come from low rows [in0 / 2, (in1 - 1) / 2] */
    const int64_t lo0 = in0 / 2, lo1 = (in1 - 1) / 2 + 1;
    ts_ref lo, upb;
    if ((st = vq_tmp (vq, VQ_TMP_LO, (size_t) (lo1 - lo0) * plane_row / 2, &lo, err)) != TS_OK
        || (st = vq_tmp (vq, VQ_TMP_UP, (size_t) (lo1 - lo0) * 2 * plane_row, &upb, err))
               != TS_OK
        || (st = vq_map_gather (vq, x, lo0, lo1, lo, err)) != TS_OK)
      return st;
    ts_upsample_args ua = { .x = lo, .y = upb, .batch = B, .c = C, .h = lo1 - lo0, .w = x->w };
    if ((st = ts_op_upsample (vq->be, &ua, err)) != TS_OK)
      return st;
    ts_elementwise_args cp = { .kind = TS_EW_COPY, .a = ts_ref_f32 (upb, (in0 - 2 * lo0) * w),
                               .y = tin, .rows = B * C, .cols = n * w,
                               .lda = (lo1 - lo0) * 2 * w, .ldy = n * w };
    if ((st = ts_op_elementwise (vq->be, &cp, err)) != TS_OK)
      return st;
  }
  if (nm && nm->parts) {
    ts_group_norm_args a = { .pass = TS_GN_APPLY, .x = tin, .y = tin, .weight = nm->w,
                             .bias = nm->b, .batch = B, .c = C, .hw = n * w,
                             .groups = vq->cfg.norm_num_groups, .eps = VQ_GN_EPS,
                             .silu = nm->silu, .stats = ts_ref_at (vq->tmp[VQ_TMP_STATS], 0) };
    TS_ASSERT (up == 1);
    if ((st = ts_op_group_norm (vq->be, &a, err)) != TS_OK)
      return st;
  }
  if (nm && nm->capture
      && (st = vq_copy_rows (vq, tin, B * C, n, in0, x->h, w, NULL, nm->capture, err)) != TS_OK)
    return st;
  if (nm && nm->act) {
    ts_act_args act = { .kind = TS_ACT_SILU, .x = tin, .y = tin, .rows = B * C, .cols = n * w,
                        .ldx = n * w, .ldy = n * w };
    if ((st = ts_op_act (vq->be, &act, err)) != TS_OK)
      return st;
  }
  return TS_OK;
}

/* Output rows [r0, r1) of convolution d over map x (upsampled 2× first when up is 2, and
 * normalised by nm when given) into y, dense [batch, d.c_out, r1 - r0, w_out]. */
static ts_status
vq_conv_band (ts_vq *vq, const vq_map *x, int up, const vq_norm *nm, const vq_conv_desc *d,
              int64_t r0, int64_t r1, ts_ref y, ts_error *err)
{
  const int64_t h_in = x->h * up, w_in = x->w * up;
  int64_t in0 = r0 * d->stride - d->pad_top, in1 = (r1 - 1) * d->stride - d->pad_top + d->k;
  const int pad_top = in0 < 0 ? (int) -in0 : 0, pad_bottom = in1 > h_in ? (int) (in1 - h_in) : 0;
  ts_ref src;
  ts_status st;

  in0 = in0 < 0 ? 0 : in0;
  in1 = in1 > h_in ? h_in : in1;
  if ((st = vq_map_rows (vq, x, up, nm, in0, in1, &src, err)) != TS_OK)
    return st;
  ts_conv2d_args a = { .x = src, .y = y, .w = d->w, .bias = d->b, .batch = x->batch,
                       .c_in = x->c, .h = in1 - in0, .w_in = w_in, .c_out = d->c_out,
                       .h_out = r1 - r0,
                       .w_out = (w_in + d->pad_left + d->pad_right - d->k) / d->stride + 1,
                       .kh = d->k, .kw = d->k, .stride = d->stride, .pad_top = pad_top,
                       .pad_left = d->pad_left, .pad_bottom = pad_bottom,
                       .pad_right = d->pad_right };
  return ts_op_conv2d (vq->be, &a, err);
}

/* y = convolution d of x (2× upsampled first when up is 2, or normalised by nm when
 * given), into a new map; x is released band by band as the output passes it. */
static ts_status
vq_map_conv (ts_vq *vq, vq_map *x, int up, vq_norm *nm, const vq_conv_desc *d, vq_map *y,
             ts_error *err)
{
  const int64_t h = (x->h * up + d->pad_top + d->pad_bottom - d->k) / d->stride + 1;
  const int64_t w = (x->w * up + d->pad_left + d->pad_right - d->k) / d->stride + 1;
  /* a stride-s band reads s² times its area of input (s·rows + 1 rows, s·w wide) */
  const int64_t c_in = x->c * d->stride * d->stride;
  ts_status st = vq_map_init (vq, y, x->batch, d->c_out, h, w, c_in > d->c_out ? c_in : d->c_out,
                              err);
  if (st == TS_OK && nm)
    st = vq_norm_prepare (vq, x, nm, y->n_bands, err);
  for (int k = 0; st == TS_OK && k < y->n_bands; k++) {
    const int64_t r0 = (int64_t) k * y->rows, r1 = r0 + vq_band_rows (y, k);
    ts_ref out;
    if ((st = vq_map_band_new (vq, y, k, &out, err)) == TS_OK)
      st = vq_conv_band (vq, x, up, nm, d, r0, r1, out, err);
    /* the next band reads from input row (r1 - pad) / up on */
    vq_map_release (vq, x, (r1 * d->stride - d->pad_top) / up);
  }
  vq_map_clear (vq, x);
  return st;
}

/* ResnetBlock2D (temb None) on map *x, which it replaces by the output: norm1 → SiLU →
 * conv1 → norm2 → SiLU → conv2, plus the input (through conv_shortcut when channels
 * change). With a shortcut the input is consumed band by band while conv1 runs. */
static ts_status
vq_map_resnet (ts_vq *vq, const vq_resnet *r, vq_map *x, ts_error *err)
{
  const int64_t c_band = r->c_in > r->c_out ? r->c_in : r->c_out;
  const vq_conv_desc c1 = vq_conv_same (r->c1_w, r->c1_b, r->c_out, 3);
  const vq_conv_desc c2 = vq_conv_same (r->c2_w, r->c2_b, r->c_out, 3);
  const vq_conv_desc sc = vq_conv_same (r->sc_w, r->sc_b, r->c_out, 1);
  vq_norm n1 = { .w = r->n1_w, .b = r->n1_b, .silu = true };
  vq_norm n2 = { .w = r->n2_w, .b = r->n2_b, .silu = true };
  vq_map h = { 0 }, s = { 0 };
  ts_ref out, t;
  ts_status st;

  TS_TRY (vq_map_init (vq, &h, x->batch, r->c_out, x->h, x->w, c_band, err));
  if (r->sc_w)
    TS_TRY (vq_map_init (vq, &s, x->batch, r->c_out, x->h, x->w, c_band, err));
  TS_TRY (vq_norm_prepare (vq, x, &n1, h.n_bands, err));
  for (int k = 0; k < h.n_bands; k++) {
    const int64_t r0 = (int64_t) k * h.rows, r1 = r0 + vq_band_rows (&h, k);
    TS_TRY (vq_map_band_new (vq, &h, k, &out, err));
    TS_TRY (vq_conv_band (vq, x, 1, &n1, &c1, r0, r1, out, err));
    if (r->sc_w) {
      TS_TRY (vq_map_band_new (vq, &s, k, &out, err));
      TS_TRY (vq_conv_band (vq, x, 1, NULL, &sc, r0, r1, out, err));
      vq_map_release (vq, x, r1 - 1);
    }
  }
  if (r->sc_w) {
    vq_map_clear (vq, x);
    *x = s;
    s.band = NULL;
  }
  TS_TRY (vq_norm_prepare (vq, &h, &n2, x->n_bands, err));
  for (int k = 0; k < x->n_bands; k++) {
    const int64_t r0 = (int64_t) k * x->rows, r1 = r0 + vq_band_rows (x, k);
    const size_t bytes = (size_t) (x->batch * x->c * (r1 - r0) * x->w) * sizeof (float);
    TS_TRY (vq_tmp (vq, VQ_TMP_OUT, bytes, &t, err));
    TS_TRY (vq_conv_band (vq, &h, 1, &n2, &c2, r0, r1, t, err));
    out = ts_ref_at (x->band[k], 0);
    ts_elementwise_args add = { .kind = TS_EW_ADD, .a = out, .b = t, .y = out,
                                .rows = x->batch * x->c, .cols = (r1 - r0) * x->w,
                                .lda = (r1 - r0) * x->w, .ldb = (r1 - r0) * x->w,
                                .ldy = (r1 - r0) * x->w };
    TS_TRY (ts_op_elementwise (vq->be, &add, err));
    vq_map_release (vq, &h, r1 - 1);
  }
  st = TS_OK;

fail:
  vq_map_clear (vq, &h);
  vq_map_clear (vq, &s);
  return st;
}

static ts_status
vq_map_capture (const ts_vq *vq, const ts_capture *cap, const char *name, const vq_map *m,
                ts_error *err)
{
  if (!ts_capture_wanted (cap))
    return TS_OK;
  const int64_t shape[4] = { m->batch, m->c, m->h, m->w };
  float *host = malloc ((size_t) (m->batch * m->c * m->h * m->w) * sizeof *host);
  ts_status st;
  if (!host)
    return ts_error_set (err, TS_ERR_NOMEM, "vqvae: out of memory capturing %s", name);
  st = vq_map_download (vq, m, host, err);
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
  vq_map m = { 0 }, y = { 0 }, o = { 0 };
  float *norm_host = NULL;
  ts_ref out, t;
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

  if ((st = vq_ids_reserve (vq, n_ids, err)) != TS_OK)
    return st;
  ts_backend_scope_set (be, "vq decoder", -1);

  TS_TRY (ts_buffer_upload (be, ts_ref_at (vq->ids_buf, 0), ids, n_ids * sizeof (int32_t),
                            err));

  /* VectorQuantizer.get_codebook_entry: embedding(ids).view(B, h, w, D).permute(0, 3, 1, 2),
   * band by band */
  TS_TRY (vq_map_init (vq, &m, B, D, h, w, D, err));
  for (int k = 0; k < m.n_bands; k++) {
    const int64_t r0 = (int64_t) k * m.rows, np = vq_band_rows (&m, k) * w;
    TS_TRY (vq_map_band_new (vq, &m, k, &out, err));
    TS_TRY (vq_tmp (vq, VQ_TMP_OUT, (size_t) (B * np * D) * sizeof (float), &t, err));
    for (int64_t b = 0; b < B; b++) {
      ts_embed_args emb = { .table = vq->codebook,
                            .ids = ts_ref_at (vq->ids_buf, (size_t) ((b * h + r0) * w)
                                                               * sizeof (int32_t)),
                            .y = ts_ref_f32 (t, b * np * D), .n = np, .dim = D };
      TS_TRY (ts_op_embed (be, &emb, err));
    }
    ts_transpose_args tr = { .x = t, .y = out, .batch = B, .rows = np, .cols = D };
    TS_TRY (ts_op_transpose (be, &tr, err));
  }
  TS_TRY (vq_map_capture (vq, cap, "mid.quant", &m, err));

  const vq_conv_desc post_quant = vq_conv_same (vq->post_quant_w, vq->post_quant_b, C_lat, 1);
  TS_TRY (vq_map_conv (vq, &m, 1, NULL, &post_quant, &y, err));
  m = y, y = (vq_map) { 0 };
  TS_TRY (vq_map_capture (vq, cap, "mid.post_quant_conv_out", &m, err));

  const int64_t c_top = c->block_out_channels[n - 1];
  const vq_conv_desc conv_in = vq_conv_same (vq->dec_in_w, vq->dec_in_b, c_top, 3);
  TS_TRY (vq_map_conv (vq, &m, 1, NULL, &conv_in, &y, err));
  m = y, y = (vq_map) { 0 };
  TS_TRY (vq_map_capture (vq, cap, "mid.dec_conv_in_out", &m, err));

  ts_backend_scope_set (be, "vq decoder mid block", -1);
  for (int j = 0; j < 2; j++)
    TS_TRY (vq_map_resnet (vq, &vq->dec_mid[j], &m, err));
  TS_TRY (vq_map_capture (vq, cap, "mid.dec_mid_block_out", &m, err));

  for (int i = 0; i < n; i++) {
    const vq_block *blk = &vq->dec_blocks[i];
    ts_backend_scope_set (be, "vq decoder up block", i);
    for (int j = 0; j < blk->n_resnets; j++)
      TS_TRY (vq_map_resnet (vq, &blk->resnets[j], &m, err));
    if (blk->sample_w) {
      const vq_conv_desc upc = vq_conv_same (blk->sample_w, blk->sample_b, blk->c_out, 3);
      TS_TRY (vq_map_conv (vq, &m, 2, NULL, &upc, &y, err));
      m = y, y = (vq_map) { 0 };
    }
    if (ts_capture_wanted (cap)) {
      char name[48];
      snprintf (name, sizeof name, "mid.dec_up_block%d_out", i);
      TS_TRY (vq_map_capture (vq, cap, name, &m, err));
    }
  }

  /* conv_norm_out and conv_act are separate modules; the golden hook sits between them. */
  ts_backend_scope_set (be, "vq decoder", -1);
  const int64_t c_bot = c->block_out_channels[0], C_out = c->out_channels;
  const vq_conv_desc conv_out = vq_conv_same (vq->dec_out_w, vq->dec_out_b, C_out, 3);
  vq_norm norm_out = { .w = vq->dec_norm_w, .b = vq->dec_norm_b, .act = true };
  if (ts_capture_wanted (cap)) {
    norm_host = malloc ((size_t) (B * c_bot * m.h * m.w) * sizeof *norm_host);
    if (!norm_host) {
      st = ts_error_set (err, TS_ERR_NOMEM, "vqvae: out of memory capturing conv_norm_out");
      goto fail;
    }
    norm_out.capture = norm_host;
  }
  TS_TRY (vq_map_init (vq, &o, B, C_out, m.h, m.w, c_bot > C_out ? c_bot : C_out, err));
  TS_TRY (vq_norm_prepare (vq, &m, &norm_out, o.n_bands, err));
  for (int k = 0; k < o.n_bands; k++) {
    const int64_t r0 = (int64_t) k * o.rows, r1 = r0 + vq_band_rows (&o, k);
    TS_TRY (vq_tmp (vq, VQ_TMP_OUT, (size_t) (B * C_out * (r1 - r0) * o.w) * sizeof (float), &t,
                    err));
    TS_TRY (vq_conv_band (vq, &m, 1, &norm_out, &conv_out, r0, r1, t, err));
    TS_TRY (vq_copy_rows (vq, t, B * C_out, r1 - r0, r0, o.h, o.w, NULL, image, err));
    vq_map_release (vq, &m, r1 - 1);
  }
  if (norm_host) {
    const int64_t shape[4] = { B, c_bot, m.h, m.w };
    cap->fn (cap->user_data, "mid.dec_conv_norm_out", norm_host, 4, shape);
  }
  st = TS_OK;

fail:
  vq_map_clear (vq, &m);
  vq_map_clear (vq, &y);
  vq_map_clear (vq, &o);
  free (norm_host);
  return st;
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

ts_status
ts_vq_check_finite (const float *image_nchw, int batch, int height, int width, ts_error *err)
{
  const size_t plane = (size_t) height * (size_t) width, n = (size_t) batch * 3 * plane;
  size_t n_bad = 0, first = 0;

  for (size_t i = 0; i < n; i++)
    if (!isfinite (image_nchw[i]) && n_bad++ == 0)
      first = i;
  if (!n_bad)
    return TS_OK;
  return ts_error_set (err, TS_ERR_FORMAT,
                       "vqvae: the decoded image has %zu non-finite values of %zu (the first "
                       "is %s, channel %zu at pixel (%zu, %zu)): the VQ-VAE's weights or "
                       "activations overflow", n_bad, n,
                       isnan (image_nchw[first]) ? "NaN" : "infinite", first / plane % 3,
                       first % plane % (size_t) width, first % plane / (size_t) width);
}

/* ---- encode ---- */

/* The nearest codebook entry of every position of the latent map z [batch, D, h, w] into
 * ids [batch, h, w]: per chunk of rows whose scores [batch·rows·w, K] fit the band budget,
 * the rows gathered, transposed to [batch, rows·w, D] and multiplied by the codebook; the
 * argmin of ||e||² − 2·z·e is taken on the host (||z||² is the same for every entry). */
static ts_status
vq_nearest_codes (ts_vq *vq, const vq_map *z, int32_t *ids, ts_error *err)
{
  const int64_t B = z->batch, D = z->c, K = vq->cfg.num_vq_embeddings, R = z->h * z->w;
  const size_t row_bytes = (size_t) (B * z->w * K) * sizeof (float);
  const int64_t fit = (int64_t) (vq_band_budget (vq) / row_bytes);
  const int64_t rows = fit < 1 ? 1 : fit > z->h ? z->h : fit;
  float *scores = malloc ((size_t) (B * rows * z->w * K) * sizeof *scores);
  ts_ref src, zt, sc;
  ts_status st = TS_OK;

  if (!scores)
    return ts_error_set (err, TS_ERR_NOMEM, "vqvae: encode: out of memory");
  for (int64_t r0 = 0; st == TS_OK && r0 < z->h; r0 += rows) {
    const int64_t np = (r0 + rows < z->h ? rows : z->h - r0) * z->w;
    if ((st = vq_map_rows (vq, z, 1, NULL, r0, r0 + np / z->w, &src, err)) != TS_OK
        || (st = vq_tmp (vq, VQ_TMP_UP, (size_t) (B * np * D) * sizeof (float), &zt, err))
               != TS_OK
        || (st = vq_tmp (vq, VQ_TMP_OUT, (size_t) (B * np * K) * sizeof (float), &sc, err))
               != TS_OK)
      break;
    ts_transpose_args tr = { .x = src, .y = zt, .batch = B, .rows = D, .cols = np };
    ts_matmul_args mm = { .x = zt, .ldx = D, .w = vq->codebook, .y = sc, .ldy = K,
                          .m = B * np, .n = K, .k = D };
    if ((st = ts_op_transpose (vq->be, &tr, err)) != TS_OK
        || (st = ts_op_matmul (vq->be, &mm, err)) != TS_OK
        || (st = ts_buffer_download (vq->be, sc, scores,
                                     (size_t) (B * np * K) * sizeof *scores, err)) != TS_OK)
      break;
    for (int64_t b = 0; b < B; b++)
      for (int64_t p = 0; p < np; p++) {
        const float *row = scores + (b * np + p) * K;
        int best = 0;
        double best_d = vq->code_norms[0] - 2.0 * (double) row[0];
        for (int k = 1; k < K; k++) {
          const double d = vq->code_norms[k] - 2.0 * (double) row[k];
          if (d < best_d) {
            best_d = d;
            best = k;
          }
        }
        ids[b * R + r0 * z->w + p] = best;
      }
  }
  free (scores);
  return st;
}

ts_status
ts_vq_encode (ts_vq *vq, const float *image, int batch, int height, int width, int32_t *ids,
              float *latents, const ts_capture *cap, ts_error *err)
{
  TS_ASSERT (vq && image && ids);
  const ts_vq_config *c = &vq->cfg;
  const int n = c->n_blocks, f = vq->factor;
  const int64_t B = batch, D = vq->embed_dim, K = c->num_vq_embeddings;
  const int64_t C_in = c->in_channels, c0 = c->block_out_channels[0];
  vq_map m = { 0 }, y = { 0 };
  float *host_lat = NULL, *extra = NULL;
  ts_ref out;
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

  ts_backend_scope_set (vq->be, "vq encoder", -1);
  TS_TRY (vq_map_init (vq, &m, B, C_in, height, width, C_in > c0 ? C_in : c0, err));
  for (int k = 0; k < m.n_bands; k++) {
    TS_TRY (vq_map_band_new (vq, &m, k, &out, err));
    TS_TRY (vq_copy_rows (vq, out, B * C_in, vq_band_rows (&m, k), (int64_t) k * m.rows, height,
                          width, image, NULL, err));
  }
  const vq_conv_desc conv_in = vq_conv_same (vq->enc_in_w, vq->enc_in_b, c0, 3);
  TS_TRY (vq_map_conv (vq, &m, 1, NULL, &conv_in, &y, err));
  m = y, y = (vq_map) { 0 };
  TS_TRY (vq_map_capture (vq, cap, "mid.enc_conv_in_out", &m, err));

  for (int i = 0; i < n; i++) {
    const vq_block *blk = &vq->enc_blocks[i];
    ts_backend_scope_set (vq->be, "vq encoder down block", i);
    for (int j = 0; j < blk->n_resnets; j++)
      TS_TRY (vq_map_resnet (vq, &blk->resnets[j], &m, err));
    if (blk->sample_w) {
      /* Downsample2D with padding=0: F.pad(x, (0, 1, 0, 1)) then a 3×3 stride-2 conv. */
      const vq_conv_desc down = { .w = blk->sample_w, .b = blk->sample_b, .c_out = blk->c_out,
                                  .k = 3, .stride = 2, .pad_bottom = 1, .pad_right = 1 };
      TS_TRY (vq_map_conv (vq, &m, 1, NULL, &down, &y, err));
      m = y, y = (vq_map) { 0 };
    }
    if (ts_capture_wanted (cap)) {
      char name[48];
      snprintf (name, sizeof name, "mid.enc_down_block%d_out", i);
      TS_TRY (vq_map_capture (vq, cap, name, &m, err));
    }
  }
  TS_ASSERT (m.h == h_lat && m.w == w_lat);

  ts_backend_scope_set (vq->be, "vq encoder mid block", -1);
  for (int j = 0; j < 2; j++)
    TS_TRY (vq_map_resnet (vq, &vq->enc_mid[j], &m, err));
  TS_TRY (vq_map_capture (vq, cap, "mid.enc_mid_block_out", &m, err));

  /* conv_norm_out → conv_act (fused) → conv_out → quant_conv */
  ts_backend_scope_set (vq->be, "vq encoder", -1);
  vq_norm norm_out = { .w = vq->enc_norm_w, .b = vq->enc_norm_b, .silu = true };
  const vq_conv_desc conv_out = vq_conv_same (vq->enc_out_w, vq->enc_out_b,
                                              c->latent_channels, 3);
  TS_TRY (vq_map_conv (vq, &m, 1, &norm_out, &conv_out, &y, err));
  m = y, y = (vq_map) { 0 };
  TS_TRY (vq_map_capture (vq, cap, "mid.enc_conv_out_out", &m, err));
  const vq_conv_desc quant = vq_conv_same (vq->quant_w, vq->quant_b, D, 1);
  TS_TRY (vq_map_conv (vq, &m, 1, NULL, &quant, &y, err));
  m = y, y = (vq_map) { 0 };
  if (latents)
    TS_TRY (vq_map_download (vq, &m, latents, err));

  /* VectorQuantizer.forward: argmin over torch.cdist(z, codebook). */
  TS_TRY (vq_nearest_codes (vq, &m, ids, err));

  if (ts_capture_wanted (cap)) {
    /* The chosen entries (NCHW) and, per position, second-best minus best Euclidean
     * distance in double from the fp32 latents, as the golden margin is computed. */
    host_lat = malloc ((size_t) B * D * R * sizeof *host_lat);
    extra = malloc (((size_t) B * D * R + n_ids) * sizeof *extra);
    if (!host_lat || !extra) {
      st = ts_error_set (err, TS_ERR_NOMEM, "vqvae: encode: out of memory");
      goto fail;
    }
    TS_TRY (vq_map_download (vq, &m, host_lat, err));
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
  st = TS_OK;

fail:
  vq_map_clear (vq, &m);
  vq_map_clear (vq, &y);
  free (host_lat);
  free (extra);
  return st;
}
