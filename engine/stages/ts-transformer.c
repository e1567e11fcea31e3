/* SPDX-License-Identifier: MIT
 *
 * ts-transformer — the Meissonic transformer forward pass over the backend interface.
 * Mirrors `Transformer2DModel.forward` in viiika/Meissonic src/transformer.py (commit
 * 9360def) with the diffusers v0.31.0 modules it builds on (FluxAttnProcessor2_0,
 * AdaLayerNormZero(Single), FeedForward "gelu-approximate", RMSNorm, Downsample2D /
 * Upsample2D with norm_type "rms_norm", CombinedTimestepTextProjEmbeddings,
 * get_timestep_embedding, FluxPosEmbed). See ts-transformer.h for the outline.
 *
 * Buffer plan for one call (all F32 in one scratch buffer):
 *   X, Y   [batch, H·W, max(inner, codebook)]  front end / back end ping-pong (NHWC or NCHW)
 *   ctx    [batch, T, inner]   text stream          img [batch, N, inner]  image stream
 *   hs     [batch, T+N, inner] joint stream of the single blocks
 *   q k v att nrm tmp [batch, T+N, inner]; big [batch, T+N, inner + mlp] (FF hidden, and
 *   the [attn | mlp] concatenation of the single blocks)
 * where T is the text length and N = h·w the token count after the down_block.
 */
#include "stages/ts-transformer.h"

#include "model/ts-weights.h"

#include "core/ts-common.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#define TS_TF_EPS 1e-6f
#define TS_TF_MLP_RATIO 4
#define TS_TF_ALIGN 256

/* One stream of a dual-stream block: the image stream uses norm1, to_q/k/v, norm_q/k,
 * to_out.0 and ff; the text stream norm1_context, add_q/k/v_proj, norm_added_q/k,
 * to_add_out and ff_context. */
typedef struct {
  const ts_weight *mod_w, *mod_b;
  const ts_weight *q_w, *q_b, *k_w, *k_b, *v_w, *v_b;
  const ts_weight *norm_q, *norm_k;
  const ts_weight *out_w, *out_b;
  const ts_weight *ff1_w, *ff1_b, *ff2_w, *ff2_b;
} ts_tf_stream;

typedef struct {
  ts_tf_stream img, txt;
} ts_tf_dual_block;

typedef struct {
  const ts_weight *mod_w, *mod_b;
  const ts_weight *q_w, *q_b, *k_w, *k_b, *v_w, *v_b;
  const ts_weight *norm_q, *norm_k;
  const ts_weight *mlp_w, *mlp_b;
  const ts_weight *out_w, *out_b;
} ts_tf_single_block;

struct ts_transformer {
  const ts_backend *be;
  ts_transformer_config cfg;
  int inner, d_head, heads, mlp;

  ts_weight_set *weights;

  const ts_weight *cond_1_w, *cond_2_w;
  const ts_weight *time_1_w, *time_1_b, *time_2_w, *time_2_b;
  const ts_weight *text_1_w, *text_1_b, *text_2_w, *text_2_b;
  const ts_weight *ctx_w, *ctx_b, *ctx_norm;
  const ts_weight *embed_table, *embed_norm, *embed_conv;
  const ts_weight *down_norm, *down_conv, *up_norm, *up_conv;
  const ts_weight *to_hidden_norm, *to_hidden_w, *from_hidden_norm, *from_hidden_w;
  const ts_weight *mlm_conv1, *mlm_norm, *mlm_conv2;
  ts_tf_dual_block *dual;
  ts_tf_single_block *single;

  ts_buffer *scratch;
  size_t scratch_size;
};

/* ---- weights ---- */

typedef struct {
  int n_dims;
  int64_t d[4];
} ts_tf_shape;

static ts_tf_shape
tf_shape1 (int64_t a)
{
  ts_tf_shape s = { 1, { a, 0, 0, 0 } };
  return s;
}

static ts_tf_shape
tf_shape2 (int64_t a, int64_t b)
{
  ts_tf_shape s = { 2, { a, b, 0, 0 } };
  return s;
}

static ts_tf_shape
tf_shape4 (int64_t a, int64_t b, int64_t c, int64_t d)
{
  ts_tf_shape s = { 4, { a, b, c, d } };
  return s;
}

/* Checked upload of printf(fmt, ...) with the shape the config implies; a 1×1 conv
 * kernel [out, in, 1, 1] goes up as the matrix [out, in] (upload_n_dims 2) so that it runs
 * through the matmul op over NHWC data. */
#define tf_weight(tf, set, shape, upload_n_dims, err, ...)                                   \
  ts_weight_set_load ((tf)->weights, (set), (shape).n_dims, (shape).d, (upload_n_dims), (err), \
                      __VA_ARGS__)

#define TF_W(field, shape, ...)                                                  \
  do {                                                                           \
    if (!((field) = tf_weight (tf, weights, (shape), 0, err, __VA_ARGS__))) \
      goto fail;                                                                 \
  } while (0)

#define TF_W_1X1(field, shape, ...)                                             \
  do {                                                                          \
    if (!((field) = tf_weight (tf, weights, (shape), 2, err, __VA_ARGS__))) \
      goto fail;                                                                \
  } while (0)

static ts_status
tf_check_config (const ts_transformer_config *cfg, ts_error *err)
{
  if (cfg->num_attention_heads <= 0 || cfg->attention_head_dim <= 0 || cfg->num_layers < 0
      || cfg->num_single_layers < 0 || cfg->joint_attention_dim <= 0 || cfg->codebook_size <= 0
      || cfg->vocab_size <= 0 || cfg->pooled_projection_dim <= 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "transformer: config has non-positive sizes");
  int inner = cfg->num_attention_heads * cfg->attention_head_dim;
  if (cfg->pooled_projection_dim != inner)
    return ts_error_set (err, TS_ERR_UNSUPPORTED,
                         "transformer: pooled_projection_dim %d must equal the inner dim %d "
                         "(cond_embed feeds time_text_embed.text_embedder)",
                         cfg->pooled_projection_dim, inner);
  if (cfg->downsample != cfg->upsample)
    return ts_error_set (err, TS_ERR_UNSUPPORTED,
                         "transformer: downsample=%s with upsample=%s would change the token grid",
                         cfg->downsample ? "true" : "false", cfg->upsample ? "true" : "false");
  int sum = 0;
  for (int i = 0; i < 3; i++) {
    if (cfg->axes_dims_rope[i] <= 0 || cfg->axes_dims_rope[i] % 2)
      return ts_error_set (err, TS_ERR_UNSUPPORTED,
                           "transformer: axes_dims_rope[%d] = %d is not a positive even width", i,
                           cfg->axes_dims_rope[i]);
    sum += cfg->axes_dims_rope[i];
  }
  if (sum != cfg->attention_head_dim)
    return ts_error_set (err, TS_ERR_UNSUPPORTED,
                         "transformer: axes_dims_rope sum %d differs from attention_head_dim %d",
                         sum, cfg->attention_head_dim);
  return TS_OK;
}

static ts_status
tf_load_stream (ts_transformer *tf, const ts_st_set *weights, ts_tf_stream *s, int block,
                bool text, ts_error *err)
{
  const int64_t D = tf->inner, F = tf->mlp, dh = tf->d_head;
  const char *pre = "transformer_blocks";
  TF_W (s->mod_w, tf_shape2 (6 * D, D), "%s.%d.%s.linear.weight", pre, block,
        text ? "norm1_context" : "norm1");
  TF_W (s->mod_b, tf_shape1 (6 * D), "%s.%d.%s.linear.bias", pre, block,
        text ? "norm1_context" : "norm1");
  const char *qn = text ? "add_q_proj" : "to_q", *kn = text ? "add_k_proj" : "to_k",
             *vn = text ? "add_v_proj" : "to_v";
  TF_W (s->q_w, tf_shape2 (D, D), "%s.%d.attn.%s.weight", pre, block, qn);
  TF_W (s->q_b, tf_shape1 (D), "%s.%d.attn.%s.bias", pre, block, qn);
  TF_W (s->k_w, tf_shape2 (D, D), "%s.%d.attn.%s.weight", pre, block, kn);
  TF_W (s->k_b, tf_shape1 (D), "%s.%d.attn.%s.bias", pre, block, kn);
  TF_W (s->v_w, tf_shape2 (D, D), "%s.%d.attn.%s.weight", pre, block, vn);
  TF_W (s->v_b, tf_shape1 (D), "%s.%d.attn.%s.bias", pre, block, vn);
  TF_W (s->norm_q, tf_shape1 (dh), "%s.%d.attn.%s.weight", pre, block,
        text ? "norm_added_q" : "norm_q");
  TF_W (s->norm_k, tf_shape1 (dh), "%s.%d.attn.%s.weight", pre, block,
        text ? "norm_added_k" : "norm_k");
  const char *on = text ? "to_add_out" : "to_out.0";
  TF_W (s->out_w, tf_shape2 (D, D), "%s.%d.attn.%s.weight", pre, block, on);
  TF_W (s->out_b, tf_shape1 (D), "%s.%d.attn.%s.bias", pre, block, on);
  const char *ff = text ? "ff_context" : "ff";
  TF_W (s->ff1_w, tf_shape2 (F, D), "%s.%d.%s.net.0.proj.weight", pre, block, ff);
  TF_W (s->ff1_b, tf_shape1 (F), "%s.%d.%s.net.0.proj.bias", pre, block, ff);
  TF_W (s->ff2_w, tf_shape2 (D, F), "%s.%d.%s.net.2.weight", pre, block, ff);
  TF_W (s->ff2_b, tf_shape1 (D), "%s.%d.%s.net.2.bias", pre, block, ff);
  return TS_OK;
fail:
  return err ? err->code : TS_ERR_FORMAT;
}

static ts_status
tf_load_single (ts_transformer *tf, const ts_st_set *weights, ts_tf_single_block *s, int block,
                ts_error *err)
{
  const int64_t D = tf->inner, F = tf->mlp, dh = tf->d_head;
  const char *pre = "single_transformer_blocks";
  TF_W (s->mod_w, tf_shape2 (3 * D, D), "%s.%d.norm.linear.weight", pre, block);
  TF_W (s->mod_b, tf_shape1 (3 * D), "%s.%d.norm.linear.bias", pre, block);
  TF_W (s->q_w, tf_shape2 (D, D), "%s.%d.attn.to_q.weight", pre, block);
  TF_W (s->q_b, tf_shape1 (D), "%s.%d.attn.to_q.bias", pre, block);
  TF_W (s->k_w, tf_shape2 (D, D), "%s.%d.attn.to_k.weight", pre, block);
  TF_W (s->k_b, tf_shape1 (D), "%s.%d.attn.to_k.bias", pre, block);
  TF_W (s->v_w, tf_shape2 (D, D), "%s.%d.attn.to_v.weight", pre, block);
  TF_W (s->v_b, tf_shape1 (D), "%s.%d.attn.to_v.bias", pre, block);
  TF_W (s->norm_q, tf_shape1 (dh), "%s.%d.attn.norm_q.weight", pre, block);
  TF_W (s->norm_k, tf_shape1 (dh), "%s.%d.attn.norm_k.weight", pre, block);
  TF_W (s->mlp_w, tf_shape2 (F, D), "%s.%d.proj_mlp.weight", pre, block);
  TF_W (s->mlp_b, tf_shape1 (F), "%s.%d.proj_mlp.bias", pre, block);
  TF_W (s->out_w, tf_shape2 (D, D + F), "%s.%d.proj_out.weight", pre, block);
  TF_W (s->out_b, tf_shape1 (D), "%s.%d.proj_out.bias", pre, block);
  return TS_OK;
fail:
  return err ? err->code : TS_ERR_FORMAT;
}

ts_transformer *
ts_transformer_new (const ts_backend *be, const ts_transformer_config *cfg,
                    const ts_st_set *weights, ts_error *err)
{
  ts_transformer *tf = NULL;
  if (tf_check_config (cfg, err) != TS_OK)
    return NULL;

  tf = calloc (1, sizeof *tf);
  if (!tf)
    goto nomem;
  tf->be = be;
  tf->cfg = *cfg;
  tf->heads = cfg->num_attention_heads;
  tf->d_head = cfg->attention_head_dim;
  tf->inner = tf->heads * tf->d_head;
  tf->mlp = tf->inner * TS_TF_MLP_RATIO;
  tf->weights = ts_weight_set_new (be, "transformer");
  tf->dual = calloc ((size_t) cfg->num_layers + 1, sizeof *tf->dual);
  tf->single = calloc ((size_t) cfg->num_single_layers + 1, sizeof *tf->single);
  if (!tf->weights || !tf->dual || !tf->single)
    goto nomem;

  const int64_t D = tf->inner, P = cfg->pooled_projection_dim, J = cfg->joint_attention_dim;
  const int64_t S = TS_TRANSFORMER_SINUSOID_DIM;
  TF_W (tf->cond_1_w, tf_shape2 (D, P + TS_TRANSFORMER_N_MICRO_CONDS * S),
        "cond_embed.linear_1.weight");
  TF_W (tf->cond_2_w, tf_shape2 (D, D), "cond_embed.linear_2.weight");
  TF_W (tf->time_1_w, tf_shape2 (D, S), "time_text_embed.timestep_embedder.linear_1.weight");
  TF_W (tf->time_1_b, tf_shape1 (D), "time_text_embed.timestep_embedder.linear_1.bias");
  TF_W (tf->time_2_w, tf_shape2 (D, D), "time_text_embed.timestep_embedder.linear_2.weight");
  TF_W (tf->time_2_b, tf_shape1 (D), "time_text_embed.timestep_embedder.linear_2.bias");
  TF_W (tf->text_1_w, tf_shape2 (D, P), "time_text_embed.text_embedder.linear_1.weight");
  TF_W (tf->text_1_b, tf_shape1 (D), "time_text_embed.text_embedder.linear_1.bias");
  TF_W (tf->text_2_w, tf_shape2 (D, D), "time_text_embed.text_embedder.linear_2.weight");
  TF_W (tf->text_2_b, tf_shape1 (D), "time_text_embed.text_embedder.linear_2.bias");
  TF_W (tf->ctx_w, tf_shape2 (D, J), "context_embedder.weight");
  TF_W (tf->ctx_b, tf_shape1 (D), "context_embedder.bias");
  TF_W (tf->ctx_norm, tf_shape1 (D), "encoder_proj_layer_norm.weight");
  TF_W (tf->embed_table, tf_shape2 (cfg->vocab_size, D), "embed.embeddings.weight");
  TF_W (tf->embed_norm, tf_shape1 (D), "embed.layer_norm.weight");
  TF_W_1X1 (tf->embed_conv, tf_shape4 (D, D, 1, 1), "embed.conv.weight");
  if (cfg->downsample) {
    TF_W (tf->down_norm, tf_shape1 (D), "down_block.downsample.norm.weight");
    TF_W (tf->down_conv, tf_shape4 (D, D, 2, 2), "down_block.downsample.conv.weight");
  }
  if (cfg->upsample) {
    TF_W (tf->up_norm, tf_shape1 (D), "up_block.upsample.norm.weight");
    TF_W (tf->up_conv, tf_shape4 (D, D, 2, 2), "up_block.upsample.conv.weight");
  }
  TF_W (tf->to_hidden_norm, tf_shape1 (D), "project_to_hidden_norm.weight");
  TF_W (tf->to_hidden_w, tf_shape2 (D, D), "project_to_hidden.weight");
  TF_W (tf->from_hidden_norm, tf_shape1 (D), "project_from_hidden_norm.weight");
  TF_W (tf->from_hidden_w, tf_shape2 (D, D), "project_from_hidden.weight");
  TF_W_1X1 (tf->mlm_conv1, tf_shape4 (D, D, 1, 1), "mlm_layer.conv1.weight");
  TF_W (tf->mlm_norm, tf_shape1 (D), "mlm_layer.layer_norm.weight");
  TF_W_1X1 (tf->mlm_conv2, tf_shape4 (cfg->codebook_size, D, 1, 1), "mlm_layer.conv2.weight");

  for (int i = 0; i < cfg->num_layers; i++) {
    if (tf_load_stream (tf, weights, &tf->dual[i].img, i, false, err) != TS_OK
        || tf_load_stream (tf, weights, &tf->dual[i].txt, i, true, err) != TS_OK)
      goto fail;
  }
  for (int i = 0; i < cfg->num_single_layers; i++)
    if (tf_load_single (tf, weights, &tf->single[i], i, err) != TS_OK)
      goto fail;
  return tf;

nomem:
  ts_error_set (err, TS_ERR_NOMEM, "transformer: out of memory");
fail:
  ts_transformer_free (tf);
  return NULL;
}

void
ts_transformer_trim (ts_transformer *tf)
{
  if (tf && tf->scratch) {
    ts_buffer_free (tf->be, tf->scratch);
    tf->scratch = NULL;
    tf->scratch_size = 0;
  }
}

void
ts_transformer_free (ts_transformer *tf)
{
  if (!tf)
    return;
  ts_weight_set_free (tf->weights);
  if (tf->scratch)
    ts_buffer_free (tf->be, tf->scratch);
  free (tf->dual);
  free (tf->single);
  free (tf);
}

ts_status
ts_transformer_check_grid (const ts_transformer_config *cfg, int grid_h, int grid_w,
                           ts_error *err)
{
  if (grid_h < 1 || grid_w < 1)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "transformer: token grid %d×%d is empty; it needs at least one token",
                         grid_h, grid_w);
  if (grid_h > (1 << 15) || grid_w > (1 << 15))
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "transformer: token grid %d×%d is too large (at most 32768 per side)",
                         grid_h, grid_w);
  if (cfg->downsample && (grid_h % 2 || grid_w % 2))
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "transformer: token grid %d×%d has an odd side, but this model's 2×2 "
                         "down/up blocks need even sides (image sizes a multiple of twice the "
                         "VQ scale factor)",
                         grid_h, grid_w);
  return TS_OK;
}

/* ---- host-side embeddings ---- */

/* exp as torch 1.13 computes it on the CPU for float tensors: Sleef_expf8_u10 (AVX2 with
 * FMA). It is not always correctly rounded, and get_timestep_embedding multiplies the
 * result by up to t·1000 before the sin/cos, so a 1-ulp difference in a frequency turns
 * into ~1e-4 in mid.timestep_proj. Mirrors xexpf in SLEEF's sleefsimdsp.c. */
static float
tf_expf_sleef (float d)
{
  const float r_ln2 = 1.442695040888963407359924681001892137426645954152985934135449406931f;
  const float l2u = 0.693145751953125f;
  const float l2l = 1.428606765330187045e-06f;
  float q = rintf (d * r_ln2);
  float s = fmaf (q, -l2u, d);
  s = fmaf (q, -l2l, s);
  float u = 0.000198527617612853646278381f;
  u = fmaf (u, s, 0.00139304355252534151077271f);
  u = fmaf (u, s, 0.00833336077630519866943359f);
  u = fmaf (u, s, 0.0416664853692054748535156f);
  u = fmaf (u, s, 0.166666671633720397949219f);
  u = fmaf (u, s, 0.5f);
  u = 1.0f + fmaf (s * s, u, s);
  u = ldexpf (u, (int) q);
  if (d < -104.0f)
    u = 0.0f;
  if (d > 104.0f)
    u = INFINITY;
  return u;
}

/* diffusers get_timestep_embedding (v0.31.0) for one value with flip_sin_to_cos=True,
 * downscale_freq_shift=0, scale 1, max_period 10000, in fp32 and in its operation order:
 * exponent = (-ln 10000 · k) / half, freq = exp(exponent), arg = value · freq,
 * out = [cos(arg) | sin(arg)]. */
static void
tf_sinusoid (float value, float *out, int dim)
{
  const int half = dim / 2;
  const float neg_log_period = (float) -log (10000.0);
  for (int k = 0; k < half; k++) {
    float exponent = (neg_log_period * (float) k) / (float) half;
    float arg = value * tf_expf_sleef (exponent);
    out[k] = cosf (arg);
    out[half + k] = sinf (arg);
  }
}

/* FluxPosEmbed over ids [text (0,0,0) ×T ; image (0, row, col) row-major]: per axis
 * angle = pos / 10000^(2j/d) in float64, cos/sin cast to fp32, each repeated for the
 * channel pair (2j, 2j+1); axes concatenated in order. */
static void
tf_rope_tables (const ts_transformer_config *cfg, int text_len, int h, int w, float *cos_t,
                float *sin_t)
{
  const int dh = cfg->attention_head_dim;
  const int64_t seq = (int64_t) text_len + (int64_t) h * w;
  for (int64_t i = 0; i < seq; i++) {
    double pos[3] = { 0.0, 0.0, 0.0 };
    if (i >= text_len) {
      int64_t p = i - text_len;
      pos[1] = (double) (p / w);
      pos[2] = (double) (p % w);
    }
    float *c = cos_t + i * dh, *s = sin_t + i * dh;
    int ch = 0;
    for (int axis = 0; axis < 3; axis++) {
      const int d = cfg->axes_dims_rope[axis];
      for (int j = 0; j < d / 2; j++) {
        double freq = 1.0 / pow (10000.0, (double) (2 * j) / (double) d);
        double angle = pos[axis] * freq;
        float cv = (float) cos (angle), sv = (float) sin (angle);
        c[ch] = cv;
        c[ch + 1] = cv;
        s[ch] = sv;
        s[ch + 1] = sv;
        ch += 2;
      }
    }
  }
}

/* ---- op helpers ---- */

typedef struct {
  ts_transformer *tf;
  const ts_backend *be;
  const ts_capture *cap;
  ts_error *err;
  int64_t B, H, W, h, w, HW, N, T, S, D, F, C, J, P, dh, heads;
  ts_ref X, Y, ids, enc, ctx, img, hs, q, k, v, att, nrm, tmp, big, mod_a, mod_b;
  ts_ref rope_cos, rope_sin, cond_in, c1, cond_out, tproj, t1, t2, p1, temb, stemb;
  float *host; /* capture staging, sized for the largest captured tensor */
} ts_tf_run;

static ts_status
mm (ts_tf_run *r, ts_ref x, int64_t ldx, const ts_weight *w, const ts_weight *bias, ts_ref y,
    int64_t ldy, int64_t m, int64_t n, int64_t k)
{
  ts_matmul_args a = { .x = x, .ldx = ldx, .w = w, .bias = bias, .y = y, .ldy = ldy,
                       .m = m, .n = n, .k = k, .accumulate = false };
  return ts_op_matmul (r->be, &a, r->err);
}

/* RMSNorm (eps 1e-6, learned weight) over rows of `dim`, contiguous, in place allowed. */
static ts_status
rms (ts_tf_run *r, ts_ref x, ts_ref y, int64_t rows, int64_t dim, const ts_weight *w)
{
  ts_norm_args a = { .kind = TS_NORM_RMS, .x = x, .ldx = dim, .y = y, .ldy = dim, .rows = rows,
                     .dim = dim, .eps = TS_TF_EPS, .weight = w, .rows_per_batch = rows };
  return ts_op_norm (r->be, &a, r->err);
}

/* LayerNorm without affine (eps 1e-6), then ·(1 + scale[b]) + shift[b] with b = row /
 * rows_per_batch: AdaLayerNormZero(Single) and norm2 / norm2_context. */
static ts_status
ada_norm (ts_tf_run *r, ts_ref x, ts_ref y, int64_t rows, int64_t rows_per_batch, ts_ref shift,
          ts_ref scale, int64_t mod_stride)
{
  ts_norm_args a = { .kind = TS_NORM_LAYER, .x = x, .ldx = r->D, .y = y, .ldy = r->D,
                     .rows = rows, .dim = r->D, .eps = TS_TF_EPS, .shift = shift,
                     .scale = scale, .rows_per_batch = rows_per_batch, .mod_stride = mod_stride };
  return ts_op_norm (r->be, &a, r->err);
}

static ts_status
act (ts_tf_run *r, ts_act_kind kind, ts_ref x, int64_t rows, int64_t cols, int64_t ld)
{
  ts_act_args a = { .kind = kind, .x = x, .y = x, .rows = rows, .cols = cols, .ldx = ld,
                    .ldy = ld };
  return ts_op_act (r->be, &a, r->err);
}

/* y += b * gate[row / rows_per_batch] over rows × D. */
static ts_status
gated_add (ts_tf_run *r, ts_ref y, ts_ref b, ts_ref gate, int64_t rows, int64_t rows_per_batch,
           int64_t gate_stride)
{
  ts_elementwise_args a = { .kind = TS_EW_GATED_ADD, .a = y, .b = b, .y = y, .gate = gate,
                            .rows = rows, .cols = r->D, .lda = r->D, .ldb = r->D, .ldy = r->D,
                            .rows_per_batch = rows_per_batch, .gate_stride = gate_stride };
  return ts_op_elementwise (r->be, &a, r->err);
}

static ts_status
copy2d (ts_tf_run *r, ts_ref src, int64_t lda, ts_ref dst, int64_t ldy, int64_t rows,
        int64_t cols)
{
  ts_elementwise_args a = { .kind = TS_EW_COPY, .a = src, .y = dst, .rows = rows, .cols = cols,
                            .lda = lda, .ldy = ldy };
  return ts_op_elementwise (r->be, &a, r->err);
}

static ts_status
transpose (ts_tf_run *r, ts_ref x, ts_ref y, int64_t batch, int64_t rows, int64_t cols)
{
  ts_transpose_args a = { .x = x, .y = y, .batch = batch, .rows = rows, .cols = cols };
  return ts_op_transpose (r->be, &a, r->err);
}

/* Downloads n_dims/shape elements from src and hands them to the capture hook. */
static ts_status
capture (ts_tf_run *r, const char *name, ts_ref src, int n_dims, const int64_t *shape)
{
  if (!ts_capture_wanted (r->cap))
    return TS_OK;
  int64_t n = 1;
  for (int i = 0; i < n_dims; i++)
    n *= shape[i];
  ts_status st = ts_buffer_download (r->be, src, r->host, (size_t) n * sizeof (float),
                                     r->err);
  if (st != TS_OK)
    return st;
  r->cap->fn (r->cap->user_data, name, r->host, n_dims, shape);
  return TS_OK;
}

/* Captures NHWC data [B, hh·ww, c] in the reference NCHW layout [B, c, hh, ww]. */
static ts_status
capture_nhwc (ts_tf_run *r, const char *name, ts_ref src, int64_t hh, int64_t ww, int64_t c)
{
  if (!ts_capture_wanted (r->cap))
    return TS_OK;
  const int64_t n = r->B * hh * ww * c, hw = hh * ww;
  float *nchw = malloc ((size_t) n * sizeof (float));
  if (!nchw)
    return ts_error_set (r->err, TS_ERR_NOMEM, "transformer: out of memory capturing '%s'", name);
  ts_status st = ts_buffer_download (r->be, src, r->host, (size_t) n * sizeof (float),
                                     r->err);
  if (st == TS_OK) {
    for (int64_t b = 0; b < r->B; b++)
      for (int64_t p = 0; p < hw; p++)
        for (int64_t ch = 0; ch < c; ch++)
          nchw[(b * c + ch) * hw + p] = r->host[(b * hw + p) * c + ch];
    const int64_t shape[4] = { r->B, c, hh, ww };
    r->cap->fn (r->cap->user_data, name, nchw, 4, shape);
  }
  free (nchw);
  return st;
}

/* ---- blocks ---- */

/* Modulation, normalisation and Q/K/V of one dual-block stream of `len` rows per batch
 * entry that sits at sequence offset `seq_off` of the joint [text ; image] sequence. */
static ts_status
stream_qkv (ts_tf_run *r, const ts_tf_stream *s, ts_ref x, int64_t len, int64_t seq_off,
            ts_ref mod)
{
  const int64_t D = r->D;
  ts_status st;
  TS_TRY (mm (r, r->stemb, D, s->mod_w, s->mod_b, mod, 6 * D, r->B, 6 * D, D));
  TS_TRY (ada_norm (r, x, r->nrm, r->B * len, len, mod, ts_ref_f32 (mod, D), 6 * D));
  for (int64_t b = 0; b < r->B; b++) {
    ts_ref xb = ts_ref_f32 (r->nrm, b * len * D);
    int64_t off = (b * r->S + seq_off) * D;
    TS_TRY (mm (r, xb, D, s->q_w, s->q_b, ts_ref_f32 (r->q, off), D, len, D, D));
    TS_TRY (mm (r, xb, D, s->k_w, s->k_b, ts_ref_f32 (r->k, off), D, len, D, D));
    TS_TRY (mm (r, xb, D, s->v_w, s->v_b, ts_ref_f32 (r->v, off), D, len, D, D));
    TS_TRY (rms (r, ts_ref_f32 (r->q, off), ts_ref_f32 (r->q, off), len * r->heads, r->dh,
                 s->norm_q));
    TS_TRY (rms (r, ts_ref_f32 (r->k, off), ts_ref_f32 (r->k, off), len * r->heads, r->dh,
                 s->norm_k));
  }
fail:
  return st;
}

/* After the joint attention: output projection, gated residual, norm2 + FF, gated
 * residual (FluxTransformerBlock order; the context path's fp16 clamp does not apply in
 * fp32). */
static ts_status
stream_out (ts_tf_run *r, const ts_tf_stream *s, ts_ref x, int64_t len, int64_t seq_off,
            ts_ref mod)
{
  const int64_t D = r->D, F = r->F, rows = r->B * len;
  ts_status st;
  for (int64_t b = 0; b < r->B; b++)
    TS_TRY (mm (r, ts_ref_f32 (r->att, (b * r->S + seq_off) * D), D, s->out_w, s->out_b,
                ts_ref_f32 (r->tmp, b * len * D), D, len, D, D));
  TS_TRY (gated_add (r, x, r->tmp, ts_ref_f32 (mod, 2 * D), rows, len, 6 * D));
  TS_TRY (ada_norm (r, x, r->nrm, rows, len, ts_ref_f32 (mod, 3 * D), ts_ref_f32 (mod, 4 * D),
                    6 * D));
  TS_TRY (mm (r, r->nrm, D, s->ff1_w, s->ff1_b, r->big, F, rows, F, D));
  TS_TRY (act (r, TS_ACT_GELU_TANH, r->big, rows, F, F));
  TS_TRY (mm (r, r->big, F, s->ff2_w, s->ff2_b, r->tmp, D, rows, D, F));
  TS_TRY (gated_add (r, x, r->tmp, ts_ref_f32 (mod, 5 * D), rows, len, 6 * D));
fail:
  return st;
}

/* RoPE on q and k [B, S, D] followed by attention into `out` (row stride ldo). */
static ts_status
joint_attention (ts_tf_run *r, ts_ref out, int64_t ldo)
{
  const int64_t D = r->D, S = r->S;
  ts_status st;
  ts_rope_args ra = { .x = r->q, .ldx = D, .bs_x = S * D, .cos = r->rope_cos,
                      .sin = r->rope_sin, .batch = r->B, .seq = S, .heads = r->heads,
                      .d_head = r->dh };
  TS_TRY (ts_op_rope (r->be, &ra, r->err));
  ra.x = r->k;
  TS_TRY (ts_op_rope (r->be, &ra, r->err));
  ts_attention_args aa = { .q = r->q, .k = r->k, .v = r->v, .out = out, .ldq = D, .ldk = D,
                           .ldv = D, .ldo = ldo, .bs_q = S * D, .bs_k = S * D, .bs_v = S * D,
                           .bs_o = S * ldo, .batch = r->B, .heads = r->heads, .seq_q = S,
                           .seq_kv = S, .d_head = r->dh,
                           .scale = (float) (1.0 / sqrt ((double) r->dh)), .causal = false };
  TS_TRY (ts_op_attention (r->be, &aa, r->err));
fail:
  return st;
}

static ts_status
dual_block (ts_tf_run *r, const ts_tf_dual_block *blk, int index)
{
  ts_status st;
  TS_TRY (stream_qkv (r, &blk->txt, r->ctx, r->T, 0, r->mod_a));
  TS_TRY (stream_qkv (r, &blk->img, r->img, r->N, r->T, r->mod_b));
  TS_TRY (joint_attention (r, r->att, r->D));
  TS_TRY (stream_out (r, &blk->img, r->img, r->N, r->T, r->mod_b));
  TS_TRY (stream_out (r, &blk->txt, r->ctx, r->T, 0, r->mod_a));
  if (ts_capture_wanted (r->cap)) {
    char name[64];
    const int64_t s0[3] = { r->B, r->T, r->D }, s1[3] = { r->B, r->N, r->D };
    snprintf (name, sizeof name, "mid.mm_block%d.0", index);
    TS_TRY (capture (r, name, r->ctx, 3, s0));
    snprintf (name, sizeof name, "mid.mm_block%d.1", index);
    TS_TRY (capture (r, name, r->img, 3, s1));
  }
fail:
  return st;
}

static ts_status
single_block (ts_tf_run *r, const ts_tf_single_block *blk, int index)
{
  const int64_t D = r->D, F = r->F, rows = r->B * r->S, ldc = D + F;
  ts_status st;
  TS_TRY (mm (r, r->stemb, D, blk->mod_w, blk->mod_b, r->mod_a, 3 * D, r->B, 3 * D, D));
  TS_TRY (ada_norm (r, r->hs, r->nrm, rows, r->S, r->mod_a, ts_ref_f32 (r->mod_a, D), 3 * D));
  TS_TRY (mm (r, r->nrm, D, blk->q_w, blk->q_b, r->q, D, rows, D, D));
  TS_TRY (mm (r, r->nrm, D, blk->k_w, blk->k_b, r->k, D, rows, D, D));
  TS_TRY (mm (r, r->nrm, D, blk->v_w, blk->v_b, r->v, D, rows, D, D));
  TS_TRY (rms (r, r->q, r->q, rows * r->heads, r->dh, blk->norm_q));
  TS_TRY (rms (r, r->k, r->k, rows * r->heads, r->dh, blk->norm_k));
  /* [attn | mlp] concatenation built in place: attention writes columns [0, D), the MLP
   * columns [D, D + F) of `big`. */
  TS_TRY (joint_attention (r, r->big, ldc));
  TS_TRY (mm (r, r->nrm, D, blk->mlp_w, blk->mlp_b, ts_ref_f32 (r->big, D), ldc, rows, F, D));
  TS_TRY (act (r, TS_ACT_GELU_TANH, ts_ref_f32 (r->big, D), rows, F, ldc));
  TS_TRY (mm (r, r->big, ldc, blk->out_w, blk->out_b, r->tmp, D, rows, D, ldc));
  TS_TRY (gated_add (r, r->hs, r->tmp, ts_ref_f32 (r->mod_a, 2 * D), rows, r->S, 3 * D));
  if (ts_capture_wanted (r->cap)) {
    char name[64];
    const int64_t shape[3] = { r->B, r->S, D };
    snprintf (name, sizeof name, "mid.single_block%d", index);
    TS_TRY (capture (r, name, r->hs, 3, shape));
  }
fail:
  return st;
}

/* ---- scratch layout ---- */

typedef struct {
  size_t used;
  bool overflow;
} ts_tf_layout;

static size_t
tf_take (ts_tf_layout *l, int64_t n_elements)
{
  size_t off = l->used, bytes, end;
  if (!ts_mul_size ((size_t) n_elements, sizeof (float), &bytes)
      || !ts_add_size (off, bytes, &end) || !ts_add_size (end, TS_TF_ALIGN - 1, &end)) {
    l->overflow = true;
    return 0;
  }
  l->used = end / TS_TF_ALIGN * TS_TF_ALIGN;
  return off;
}

static ts_status
tf_plan (ts_tf_run *r, ts_error *err)
{
  ts_transformer *tf = r->tf;
  ts_tf_layout l = { 0, false };
  const int64_t wide = r->D > r->C ? r->D : r->C;
  const int64_t sd = r->B * r->S * r->D;
  size_t o_X = tf_take (&l, r->B * r->HW * wide), o_Y = tf_take (&l, r->B * r->HW * wide);
  size_t o_ids = tf_take (&l, r->B * r->HW); /* I32, same size as F32 */
  size_t o_enc = tf_take (&l, r->B * r->T * r->J);
  size_t o_ctx = tf_take (&l, r->B * r->T * r->D), o_img = tf_take (&l, r->B * r->N * r->D);
  size_t o_hs = tf_take (&l, sd), o_q = tf_take (&l, sd), o_k = tf_take (&l, sd);
  size_t o_v = tf_take (&l, sd), o_att = tf_take (&l, sd), o_nrm = tf_take (&l, sd);
  size_t o_tmp = tf_take (&l, sd), o_big = tf_take (&l, r->B * r->S * (r->D + r->F));
  size_t o_ma = tf_take (&l, r->B * 6 * r->D), o_mb = tf_take (&l, r->B * 6 * r->D);
  size_t o_rc = tf_take (&l, r->S * r->dh), o_rs = tf_take (&l, r->S * r->dh);
  size_t o_ci = tf_take (&l, r->B * (r->P + TS_TRANSFORMER_N_MICRO_CONDS
                                                * TS_TRANSFORMER_SINUSOID_DIM));
  size_t o_c1 = tf_take (&l, r->B * r->D), o_co = tf_take (&l, r->B * r->D);
  size_t o_tp = tf_take (&l, TS_TRANSFORMER_SINUSOID_DIM), o_t1 = tf_take (&l, r->D);
  size_t o_t2 = tf_take (&l, r->D), o_p1 = tf_take (&l, r->B * r->D);
  size_t o_te = tf_take (&l, r->B * r->D), o_st = tf_take (&l, r->B * r->D);
  if (l.overflow)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "transformer: scratch size for batch %lld, grid %lld×%lld overflows",
                         (long long) r->B, (long long) r->H, (long long) r->W);
  if (l.used > tf->scratch_size) {
    if (tf->scratch)
      ts_buffer_free (tf->be, tf->scratch);
    tf->scratch_size = 0;
    tf->scratch = ts_buffer_new (tf->be, l.used, err);
    if (!tf->scratch) {
      ts_error_prefix (err, "transformer: scratch buffer of %zu bytes", l.used);
      return err ? err->code : TS_ERR_NOMEM;
    }
    tf->scratch_size = l.used;
  }
  ts_buffer *sb = tf->scratch;
  r->X = ts_ref_at (sb, o_X);
  r->Y = ts_ref_at (sb, o_Y);
  r->ids = ts_ref_at (sb, o_ids);
  r->enc = ts_ref_at (sb, o_enc);
  r->ctx = ts_ref_at (sb, o_ctx);
  r->img = ts_ref_at (sb, o_img);
  r->hs = ts_ref_at (sb, o_hs);
  r->q = ts_ref_at (sb, o_q);
  r->k = ts_ref_at (sb, o_k);
  r->v = ts_ref_at (sb, o_v);
  r->att = ts_ref_at (sb, o_att);
  r->nrm = ts_ref_at (sb, o_nrm);
  r->tmp = ts_ref_at (sb, o_tmp);
  r->big = ts_ref_at (sb, o_big);
  r->mod_a = ts_ref_at (sb, o_ma);
  r->mod_b = ts_ref_at (sb, o_mb);
  r->rope_cos = ts_ref_at (sb, o_rc);
  r->rope_sin = ts_ref_at (sb, o_rs);
  r->cond_in = ts_ref_at (sb, o_ci);
  r->c1 = ts_ref_at (sb, o_c1);
  r->cond_out = ts_ref_at (sb, o_co);
  r->tproj = ts_ref_at (sb, o_tp);
  r->t1 = ts_ref_at (sb, o_t1);
  r->t2 = ts_ref_at (sb, o_t2);
  r->p1 = ts_ref_at (sb, o_p1);
  r->temb = ts_ref_at (sb, o_te);
  r->stemb = ts_ref_at (sb, o_st);
  return TS_OK;
}

/* ---- forward ---- */

static ts_status
tf_validate (const ts_transformer *tf, const ts_transformer_forward_args *a, ts_error *err)
{
  ts_status st;
  if (!a->tokens || !a->encoder_hidden_states || !a->pooled_projections
      || (!a->logits && !a->logits_ref))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "transformer: forward needs tokens, "
                                                  "encoder_hidden_states, pooled_projections "
                                                  "and logits");
  if (a->batch < 1 || a->batch > 4096 || a->text_len < 1 || a->text_len > 65536)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "transformer: batch %d / text length %d out of range", a->batch,
                         a->text_len);
  if ((st = ts_transformer_check_grid (&tf->cfg, a->grid_h, a->grid_w, err)) != TS_OK)
    return st;
  const int64_t per = (int64_t) a->grid_h * a->grid_w;
  for (int64_t i = 0; i < (int64_t) a->batch * per; i++) {
    int32_t id = a->tokens[i];
    if (id < 0 || id >= tf->cfg.vocab_size)
      return ts_error_set (err, TS_ERR_INVALID_ARG,
                           "transformer: token %d at [%lld, %lld, %lld] is outside the "
                           "vocabulary (%d ids)",
                           (int) id, (long long) (i / per), (long long) (i % per / a->grid_w),
                           (long long) (i % a->grid_w), tf->cfg.vocab_size);
  }
  return TS_OK;
}

ts_status
ts_transformer_forward (ts_transformer *tf, const ts_transformer_forward_args *a,
                        const ts_capture *cap, const ts_abort *abort, ts_error *err)
{
  ts_status st = tf_validate (tf, a, err);
  if (st != TS_OK)
    return st;

  ts_tf_run run = { .tf = tf, .be = tf->be, .cap = cap, .err = err };
  ts_tf_run *r = &run;
  const ts_transformer_config *cfg = &tf->cfg;
  const int ds = cfg->downsample ? 2 : 1;
  r->B = a->batch;
  r->H = a->grid_h;
  r->W = a->grid_w;
  r->h = r->H / ds;
  r->w = r->W / ds;
  r->HW = r->H * r->W;
  r->N = r->h * r->w;
  r->T = a->text_len;
  r->S = r->T + r->N;
  r->D = tf->inner;
  r->F = tf->mlp;
  r->C = cfg->codebook_size;
  r->J = cfg->joint_attention_dim;
  r->P = cfg->pooled_projection_dim;
  r->dh = tf->d_head;
  r->heads = tf->heads;
  const int64_t B = r->B, D = r->D, T = r->T, N = r->N, S = r->S, C = r->C;
  const int64_t SD = TS_TRANSFORMER_SINUSOID_DIM;
  const int64_t n_cond = r->P + TS_TRANSFORMER_N_MICRO_CONDS * SD;
  const ts_backend *be = tf->be;

  float *cond_host = NULL, *rope_host = NULL, tproj_host[TS_TRANSFORMER_SINUSOID_DIM];
  TS_TRY (tf_plan (r, err));
  ts_backend_scope_set (be, "transformer", -1);

  /* Capture staging: the largest tensor handed to the hook. */
  if (ts_capture_wanted (cap)) {
    const int64_t wide = D > C ? D : C;
    int64_t n = B * r->HW * wide;
    if (B * S * D > n)
      n = B * S * D;
    r->host = malloc ((size_t) n * sizeof (float));
    if (!r->host) {
      st = ts_error_set (err, TS_ERR_NOMEM, "transformer: out of memory");
      goto fail;
    }
  }

  /* Conditioning: cat(pooled, micro-cond sinusoids) → cond_embed; timestep·1000 →
   * sinusoid → timestep_embedder; temb = timestep_emb + text_embedder(cond). */
  cond_host = malloc ((size_t) (B * n_cond) * sizeof (float));
  rope_host = malloc ((size_t) (2 * S * r->dh) * sizeof (float));
  if (!cond_host || !rope_host) {
    st = ts_error_set (err, TS_ERR_NOMEM, "transformer: out of memory");
    goto fail;
  }
  for (int64_t b = 0; b < B; b++) {
    float *row = cond_host + b * n_cond;
    memcpy (row, a->pooled_projections + b * r->P, (size_t) r->P * sizeof (float));
    for (int j = 0; j < TS_TRANSFORMER_N_MICRO_CONDS; j++)
      tf_sinusoid (a->micro_conds[j], row + r->P + j * SD, (int) SD);
  }
  tf_sinusoid ((float) a->timestep * 1000.0f, tproj_host, (int) SD);
  tf_rope_tables (cfg, (int) T, (int) r->h, (int) r->w, rope_host, rope_host + S * r->dh);

  TS_TRY (ts_buffer_upload (be, r->cond_in, cond_host, (size_t) (B * n_cond) * sizeof (float),
                            err));
  TS_TRY (ts_buffer_upload (be, r->tproj, tproj_host, sizeof tproj_host, err));
  TS_TRY (ts_buffer_upload (be, r->rope_cos, rope_host, (size_t) (S * r->dh) * sizeof (float),
                            err));
  TS_TRY (ts_buffer_upload (be, r->rope_sin, rope_host + S * r->dh,
                            (size_t) (S * r->dh) * sizeof (float), err));
  TS_TRY (ts_buffer_upload (be, r->ids, a->tokens, (size_t) (B * r->HW) * sizeof (int32_t),
                            err));
  TS_TRY (ts_buffer_upload (be, r->enc, a->encoder_hidden_states,
                            (size_t) (B * T * r->J) * sizeof (float), err));
  if (ts_capture_wanted (cap)) {
    const int64_t s_ci[2] = { B, n_cond }, s_tp[2] = { 1, SD }, s_rope[2] = { S, r->dh };
    cap->fn (cap->user_data, "mid.cond_embed_input", cond_host, 2, s_ci);
    cap->fn (cap->user_data, "mid.timestep_proj", tproj_host, 2, s_tp);
    cap->fn (cap->user_data, "mid.rope.0", rope_host, 2, s_rope);
    cap->fn (cap->user_data, "mid.rope.1", rope_host + S * r->dh, 2, s_rope);
  }

  const int64_t s_bd[2] = { B, D };
  TS_TRY (mm (r, r->cond_in, n_cond, tf->cond_1_w, NULL, r->c1, D, B, D, n_cond));
  TS_TRY (act (r, TS_ACT_SILU, r->c1, B, D, D));
  TS_TRY (mm (r, r->c1, D, tf->cond_2_w, NULL, r->cond_out, D, B, D, D));
  TS_TRY (capture (r, "mid.cond_embed_out", r->cond_out, 2, s_bd));
  TS_TRY (mm (r, r->tproj, SD, tf->time_1_w, tf->time_1_b, r->t1, D, 1, D, SD));
  TS_TRY (act (r, TS_ACT_SILU, r->t1, 1, D, D));
  TS_TRY (mm (r, r->t1, D, tf->time_2_w, tf->time_2_b, r->t2, D, 1, D, D));
  TS_TRY (mm (r, r->cond_out, D, tf->text_1_w, tf->text_1_b, r->p1, D, B, D, D));
  TS_TRY (act (r, TS_ACT_SILU, r->p1, B, D, D));
  TS_TRY (mm (r, r->p1, D, tf->text_2_w, tf->text_2_b, r->temb, D, B, D, D));
  {
    /* The (1, D) timestep embedding broadcasts over the batch rows. */
    ts_elementwise_args ea = { .kind = TS_EW_BIAS_ADD, .a = r->temb, .y = r->temb,
                               .gate = r->t2, .rows = B, .cols = D, .lda = D, .ldy = D,
                               .rows_per_batch = B, .gate_stride = D };
    TS_TRY (ts_op_elementwise (be, &ea, err));
  }
  TS_TRY (capture (r, "mid.temb", r->temb, 2, s_bd));
  /* Every block's AdaLN starts with SiLU(temb); it is the same for all of them. */
  TS_TRY (copy2d (r, r->temb, D, r->stemb, D, B, D));
  TS_TRY (act (r, TS_ACT_SILU, r->stemb, B, D, D));

  /* Image front end: Embedding → RMSNorm → 1×1 conv (NHWC in X/Y). */
  {
    ts_embed_args ea = { .table = tf->embed_table, .ids = r->ids, .y = r->X, .n = B * r->HW,
                         .dim = D };
    TS_TRY (ts_op_embed (be, &ea, err));
  }
  TS_TRY (rms (r, r->X, r->X, B * r->HW, D, tf->embed_norm));
  TS_TRY (mm (r, r->X, D, tf->embed_conv, NULL, r->Y, D, B * r->HW, D, D));
  TS_TRY (capture_nhwc (r, "mid.embed_out", r->Y, r->H, r->W, D));
  ts_ref cur = r->Y;
  if (cfg->downsample) {
    /* Downsample2D: RMSNorm over channels, pad right/bottom by 1, conv 2×2 stride 2. */
    TS_TRY (rms (r, r->Y, r->Y, B * r->HW, D, tf->down_norm));
    TS_TRY (transpose (r, r->Y, r->X, B, r->HW, D));
    ts_conv2d_args ca = { .x = r->X, .y = r->Y, .w = tf->down_conv, .batch = B, .c_in = D,
                          .h = r->H, .w_in = r->W, .c_out = D, .h_out = r->h, .w_out = r->w,
                          .kh = 2, .kw = 2, .stride = 2, .pad_bottom = 1, .pad_right = 1 };
    TS_TRY (ts_op_conv2d (be, &ca, err));
    const int64_t s_down[4] = { B, D, r->h, r->w };
    TS_TRY (capture (r, "mid.down_block_out", r->Y, 4, s_down));
    TS_TRY (transpose (r, r->Y, r->X, B, D, N));
    cur = r->X;
  } else {
    TS_TRY (capture_nhwc (r, "mid.down_block_out", cur, r->h, r->w, D));
  }
  TS_TRY (rms (r, cur, cur, B * N, D, tf->to_hidden_norm));
  TS_TRY (mm (r, cur, D, tf->to_hidden_w, NULL, r->img, D, B * N, D, D));
  const int64_t s_img[3] = { B, N, D }, s_ctx[3] = { B, T, D };
  TS_TRY (capture (r, "mid.project_to_hidden_out", r->img, 3, s_img));

  /* Text stream: context_embedder → encoder_proj_layer_norm. */
  TS_TRY (mm (r, r->enc, r->J, tf->ctx_w, tf->ctx_b, r->ctx, D, B * T, D, r->J));
  TS_TRY (capture (r, "mid.context_embedder_out", r->ctx, 3, s_ctx));
  TS_TRY (rms (r, r->ctx, r->ctx, B * T, D, tf->ctx_norm));
  TS_TRY (capture (r, "mid.encoder_hidden_states_in", r->ctx, 3, s_ctx));

  for (int i = 0; i < cfg->num_layers; i++) {
    if (ts_abort_requested (abort))
      goto cancelled;
    ts_backend_scope_set (be, "transformer dual block", i);
    TS_TRY (dual_block (r, &tf->dual[i], i));
  }
  ts_backend_scope_set (be, "transformer", -1);
  /* [text ; image] per batch entry: each stream's rows of one entry are contiguous. */
  TS_TRY (copy2d (r, r->ctx, T * D, r->hs, S * D, B, T * D));
  TS_TRY (copy2d (r, r->img, N * D, ts_ref_f32 (r->hs, T * D), S * D, B, N * D));
  for (int i = 0; i < cfg->num_single_layers; i++) {
    if (ts_abort_requested (abort))
      goto cancelled;
    ts_backend_scope_set (be, "transformer single block", i);
    TS_TRY (single_block (r, &tf->single[i], i));
  }
  ts_backend_scope_set (be, "transformer", -1);
  if (ts_abort_requested (abort))
    goto cancelled;

  /* Back end: image rows → RMSNorm → Linear → up_block → MLM head. */
  TS_TRY (copy2d (r, ts_ref_f32 (r->hs, T * D), S * D, r->img, N * D, B, N * D));
  TS_TRY (rms (r, r->img, r->img, B * N, D, tf->from_hidden_norm));
  TS_TRY (mm (r, r->img, D, tf->from_hidden_w, NULL, r->X, D, B * N, D, D));
  TS_TRY (capture (r, "mid.project_from_hidden_out", r->X, 3, s_img));
  cur = r->X;
  ts_ref other = r->Y;
  if (cfg->upsample) {
    /* Upsample2D: RMSNorm over channels, ConvTranspose2d k2 s2. */
    TS_TRY (rms (r, r->X, r->X, B * N, D, tf->up_norm));
    TS_TRY (transpose (r, r->X, r->Y, B, N, D));
    ts_conv_transpose2d_args ca = { .x = r->Y, .y = r->X, .w = tf->up_conv, .bias = NULL,
                                    .batch = B, .c_in = D, .h = r->h, .w_in = r->w,
                                    .c_out = D, .k = 2 };
    TS_TRY (ts_op_conv_transpose2d (be, &ca, err));
    const int64_t s_up[4] = { B, D, r->H, r->W };
    TS_TRY (capture (r, "mid.up_block_out", r->X, 4, s_up));
    TS_TRY (transpose (r, r->X, r->Y, B, D, r->HW));
    cur = r->Y;
    other = r->X;
  } else {
    TS_TRY (capture_nhwc (r, "mid.up_block_out", cur, r->H, r->W, D));
  }
  /* ConvMlmLayer: 1×1 conv → RMSNorm over channels → 1×1 conv to codebook logits. */
  TS_TRY (mm (r, cur, D, tf->mlm_conv1, NULL, other, D, B * r->HW, D, D));
  TS_TRY (rms (r, other, other, B * r->HW, D, tf->mlm_norm));
  TS_TRY (mm (r, other, D, tf->mlm_conv2, NULL, cur, C, B * r->HW, C, D));
  TS_TRY (transpose (r, cur, other, B, r->HW, C));
  if (a->logits)
    TS_TRY (ts_buffer_download (be, other, a->logits,
                                (size_t) (B * C * r->HW) * sizeof (float), err));
  else
    *a->logits_ref = other;
  st = TS_OK;
  goto out;

cancelled:
  st = ts_error_set (err, TS_ERR_CANCELLED, "transformer: cancelled");
  goto out;
fail:
  if (err && err->code == TS_OK)
    ts_error_set (err, st, "transformer: forward failed (%s)", ts_status_name (st));
out:
  free (r->host);
  free (cond_host);
  free (rope_host);
  return st;
}
