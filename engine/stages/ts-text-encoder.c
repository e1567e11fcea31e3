/* SPDX-License-Identifier: MIT
 *
 * ts-text-encoder — CLIP text encoder on a ts_backend. Mirrors `CLIPTextTransformer` and
 * `CLIPTextModelWithProjection` in transformers (huggingface/transformers f0e640a,
 * 4.46.0.dev0, src/transformers/models/clip/modeling_clip.py): token + position embedding,
 * num_hidden_layers pre-LN layers (LayerNorm → causal self-attention with biased q/k/v/out
 * projections → residual; LayerNorm → fc1 → activation → fc2 → residual), final LayerNorm,
 * pooling and a bias-free text projection.
 *
 * Activations live in one scratch buffer per encoder, grown to the largest batch seen:
 * x (the residual stream), hn (normed input of each sub-block), qkv packed [rows, 3·hidden]
 * so that one attention op reads q, k and v through row strides, attn, the MLP hidden and
 * the projected output.
 */
#include "stages/ts-text-encoder.h"

#include "model/ts-weights.h"

#include "core/ts-common.h"

#include <math.h>
#include <string.h>

typedef struct {
  const ts_weight *ln1_w, *ln1_b;
  const ts_weight *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
  const ts_weight *ln2_w, *ln2_b;
  const ts_weight *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} te_layer;

struct ts_text_encoder {
  const ts_backend *be;
  ts_clip_text_config cfg;
  ts_act_kind act;

  ts_weight_set *weights;

  const ts_weight *tok_emb, *pos_emb;
  te_layer *layers;
  const ts_weight *final_w, *final_b;
  const ts_weight *proj;

  ts_buffer *scratch;
  size_t scratch_size;
  int scratch_batch;
  /* byte offsets into scratch for the current scratch_batch */
  size_t off_ids, off_pos_ids, off_x, off_hn, off_qkv, off_attn, off_mlp, off_proj;
};

ts_text_encoder *
ts_text_encoder_new (const ts_backend *be, const ts_clip_text_config *cfg,
                     const ts_st_set *weights, ts_error *err)
{
  TS_ASSERT (be && cfg && weights);
  ts_text_encoder *te = calloc (1, sizeof *te);
  if (!te) {
    ts_error_set (err, TS_ERR_NOMEM, "text_encoder: out of memory");
    return NULL;
  }
  te->be = be;
  te->cfg = *cfg;
  te->weights = ts_weight_set_new (be, "text_encoder");
  if (!te->weights) {
    free (te);
    ts_error_set (err, TS_ERR_NOMEM, "text_encoder: out of memory");
    return NULL;
  }

  switch (cfg->hidden_act) {
  case TS_CLIP_ACT_GELU:
    te->act = TS_ACT_GELU_ERF;
    break;
  case TS_CLIP_ACT_GELU_NEW:
    te->act = TS_ACT_GELU_TANH;
    break;
  case TS_CLIP_ACT_QUICK_GELU:
  default:
    ts_error_set (err, TS_ERR_UNSUPPORTED,
                  "text_encoder: hidden_act \"%s\" is not supported (no backend op for it)",
                  ts_clip_act_name (cfg->hidden_act));
    goto fail;
  }

  const int64_t H = cfg->hidden_size, I = cfg->intermediate_size;
  if (H < 1 || I < 1 || cfg->num_hidden_layers < 1 || cfg->num_attention_heads < 1
      || H % cfg->num_attention_heads != 0 || cfg->vocab_size < 1 || cfg->projection_dim < 1) {
    ts_error_set (err, TS_ERR_FORMAT,
                  "text_encoder: config: hidden_size %lld must be a positive multiple of "
                  "num_attention_heads %d, with at least one layer",
                  (long long) H, cfg->num_attention_heads);
    goto fail;
  }
  if (cfg->max_position_embeddings < TS_TEXT_ENCODER_SEQ_LEN) {
    ts_error_set (err, TS_ERR_UNSUPPORTED,
                  "text_encoder: max_position_embeddings %d is below the pipeline's %d tokens",
                  cfg->max_position_embeddings, TS_TEXT_ENCODER_SEQ_LEN);
    goto fail;
  }

  te->layers = calloc ((size_t) cfg->num_hidden_layers, sizeof *te->layers);
  if (!te->layers) {
    ts_error_set (err, TS_ERR_NOMEM, "text_encoder: out of memory");
    goto fail;
  }

  const int64_t s_tok[2] = { cfg->vocab_size, H };
  const int64_t s_pos[2] = { cfg->max_position_embeddings, H };
  const int64_t s_h[1] = { H }, s_i[1] = { I };
  const int64_t s_hh[2] = { H, H }, s_ih[2] = { I, H }, s_hi[2] = { H, I };
  const int64_t s_proj[2] = { cfg->projection_dim, H };

#define LOAD(dst, nd, shape, ...)                                   \
  do {                                                              \
    if (!((dst) = ts_weight_set_load (te->weights, weights, nd, shape, 0, err, __VA_ARGS__))) \
      goto fail;                                                    \
  } while (0)

  LOAD (te->tok_emb, 2, s_tok, "text_model.embeddings.token_embedding.weight");
  LOAD (te->pos_emb, 2, s_pos, "text_model.embeddings.position_embedding.weight");
  for (int l = 0; l < cfg->num_hidden_layers; l++) {
    te_layer *L = &te->layers[l];
    const char *p = "text_model.encoder.layers";
    LOAD (L->ln1_w, 1, s_h, "%s.%d.layer_norm1.weight", p, l);
    LOAD (L->ln1_b, 1, s_h, "%s.%d.layer_norm1.bias", p, l);
    LOAD (L->q_w, 2, s_hh, "%s.%d.self_attn.q_proj.weight", p, l);
    LOAD (L->q_b, 1, s_h, "%s.%d.self_attn.q_proj.bias", p, l);
    LOAD (L->k_w, 2, s_hh, "%s.%d.self_attn.k_proj.weight", p, l);
    LOAD (L->k_b, 1, s_h, "%s.%d.self_attn.k_proj.bias", p, l);
    LOAD (L->v_w, 2, s_hh, "%s.%d.self_attn.v_proj.weight", p, l);
    LOAD (L->v_b, 1, s_h, "%s.%d.self_attn.v_proj.bias", p, l);
    LOAD (L->o_w, 2, s_hh, "%s.%d.self_attn.out_proj.weight", p, l);
    LOAD (L->o_b, 1, s_h, "%s.%d.self_attn.out_proj.bias", p, l);
    LOAD (L->ln2_w, 1, s_h, "%s.%d.layer_norm2.weight", p, l);
    LOAD (L->ln2_b, 1, s_h, "%s.%d.layer_norm2.bias", p, l);
    LOAD (L->fc1_w, 2, s_ih, "%s.%d.mlp.fc1.weight", p, l);
    LOAD (L->fc1_b, 1, s_i, "%s.%d.mlp.fc1.bias", p, l);
    LOAD (L->fc2_w, 2, s_hi, "%s.%d.mlp.fc2.weight", p, l);
    LOAD (L->fc2_b, 1, s_h, "%s.%d.mlp.fc2.bias", p, l);
  }
  LOAD (te->final_w, 1, s_h, "text_model.final_layer_norm.weight");
  LOAD (te->final_b, 1, s_h, "text_model.final_layer_norm.bias");
  LOAD (te->proj, 2, s_proj, "text_projection.weight");
#undef LOAD

  return te;

fail:
  ts_text_encoder_free (te);
  return NULL;
}

void
ts_text_encoder_free (ts_text_encoder *te)
{
  if (!te)
    return;
  if (te->scratch)
    ts_buffer_free (te->be, te->scratch);
  ts_weight_set_free (te->weights);
  free (te->layers);
  free (te);
}

/* Appends a region of `bytes` to a layout, 256-byte aligned (a safe alignment for any
 * backend's storage buffers). false on overflow. */
static bool
te_layout_add (size_t *end, size_t bytes, size_t *offset)
{
  size_t aligned;
  if (!ts_add_size (*end, 255, &aligned))
    return false;
  aligned &= ~(size_t) 255;
  *offset = aligned;
  return ts_add_size (aligned, bytes, end);
}

static ts_status
te_scratch_reserve (ts_text_encoder *te, int batch, ts_error *err)
{
  if (te->scratch && batch <= te->scratch_batch)
    return TS_OK;

  const size_t rows = (size_t) batch * TS_TEXT_ENCODER_SEQ_LEN;
  const size_t H = (size_t) te->cfg.hidden_size, I = (size_t) te->cfg.intermediate_size;
  size_t end = 0, n;
  bool ok = true;
#define REGION(off, elems, esize) \
  ok = ok && ts_mul_size ((elems), (esize), &n) && te_layout_add (&end, n, &(off))
  REGION (te->off_ids, rows, sizeof (int32_t));
  REGION (te->off_pos_ids, rows, sizeof (int32_t));
  REGION (te->off_x, rows * H, sizeof (float));
  REGION (te->off_hn, rows * H, sizeof (float));
  REGION (te->off_qkv, rows * 3 * H, sizeof (float));
  REGION (te->off_attn, rows * H, sizeof (float));
  REGION (te->off_mlp, rows * I, sizeof (float));
  REGION (te->off_proj, (size_t) batch * (size_t) te->cfg.projection_dim, sizeof (float));
#undef REGION
  if (!ok)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "text_encoder: batch %d is too large", batch);

  if (te->scratch)
    ts_buffer_free (te->be, te->scratch);
  te->scratch = NULL;
  te->scratch_batch = 0;
  te->scratch = ts_buffer_new (te->be, end, err);
  if (!te->scratch) {
    ts_error_prefix (err, "text_encoder: scratch (%zu bytes)", end);
    return err ? err->code : TS_ERR_NOMEM;
  }
  te->scratch_size = end;
  te->scratch_batch = batch;
  return TS_OK;
}

/* Downloads `n` floats at ref and hands them to the capture hook. */
static ts_status
te_capture (ts_text_encoder *te, const ts_capture *cap, const char *name, ts_ref ref,
            int n_dims, const int64_t *shape, ts_error *err)
{
  size_t n = 1;
  for (int i = 0; i < n_dims; i++)
    n *= (size_t) shape[i];
  float *host = malloc (n * sizeof *host);
  if (!host)
    return ts_error_set (err, TS_ERR_NOMEM, "text_encoder: out of memory capturing %s", name);
  ts_status st = ts_buffer_download (te->be, ref, host, n * sizeof *host, err);
  if (st == TS_OK)
    cap->fn (cap->user_data, name, host, n_dims, shape);
  free (host);
  return st;
}

/* The row transformers pools (CLIPTextTransformer.forward): argmax(ids) — the first
 * occurrence of the largest id — when eos_token_id == 2 (configs from before the eos fix),
 * otherwise the first position equal to eos_token_id, and 0 when there is none (argmax of
 * an all-zero mask). */
static int
te_pooled_index (const ts_clip_text_config *cfg, const int32_t *row)
{
  int best = 0;
  if (cfg->eos_token_id == 2) {
    for (int j = 1; j < TS_TEXT_ENCODER_SEQ_LEN; j++)
      if (row[j] > row[best])
        best = j;
    return best;
  }
  for (int j = 0; j < TS_TEXT_ENCODER_SEQ_LEN; j++)
    if (row[j] == cfg->eos_token_id)
      return j;
  return 0;
}

ts_status
ts_text_encoder_forward (ts_text_encoder *te, const int32_t *ids, int batch,
                         float *text_embeds, float *hidden_m2, float *last_hidden,
                         const ts_capture *cap, ts_error *err)
{
  TS_ASSERT (te && ids && text_embeds && hidden_m2);
  const ts_backend *be = te->be;
  const ts_clip_text_config *cfg = &te->cfg;
  const int64_t S = TS_TEXT_ENCODER_SEQ_LEN;
  const int64_t H = cfg->hidden_size, I = cfg->intermediate_size, P = cfg->projection_dim;
  const int64_t heads = cfg->num_attention_heads, d_head = H / heads;
  const int L = cfg->num_hidden_layers;
  const bool capturing = ts_capture_wanted (cap);
  int32_t *pos_ids = NULL;
  float *pooled = NULL;
  ts_status st;

  if (batch < 1)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "text_encoder: batch %d must be positive",
                         batch);
  for (int64_t i = 0; i < (int64_t) batch * S; i++)
    if (ids[i] < 0 || ids[i] >= cfg->vocab_size)
      return ts_error_set (err, TS_ERR_INVALID_ARG,
                           "text_encoder: token id %d at [%lld, %lld] is outside [0, %d)",
                           (int) ids[i], (long long) (i / S), (long long) (i % S),
                           cfg->vocab_size);

  if ((st = te_scratch_reserve (te, batch, err)) != TS_OK)
    return st;
  ts_backend_scope_set (be, "text encoder", -1);

  const int64_t rows = (int64_t) batch * S;
  ts_buffer *buf = te->scratch;
  const ts_ref r_ids = ts_ref_at (buf, te->off_ids), r_pos_ids = ts_ref_at (buf, te->off_pos_ids);
  const ts_ref x = ts_ref_at (buf, te->off_x), hn = ts_ref_at (buf, te->off_hn);
  const ts_ref qkv = ts_ref_at (buf, te->off_qkv), attn = ts_ref_at (buf, te->off_attn);
  const ts_ref mlp = ts_ref_at (buf, te->off_mlp), proj = ts_ref_at (buf, te->off_proj);
  const int64_t shape_bsh[3] = { batch, S, H };

  pos_ids = malloc ((size_t) rows * sizeof *pos_ids);
  if (!pos_ids) {
    st = ts_error_set (err, TS_ERR_NOMEM, "text_encoder: out of memory");
    goto fail;
  }
  for (int64_t i = 0; i < rows; i++)
    pos_ids[i] = (int32_t) (i % S);

  TS_TRY (ts_buffer_upload (be, r_ids, ids, (size_t) rows * sizeof (int32_t), err));
  TS_TRY (ts_buffer_upload (be, r_pos_ids, pos_ids, (size_t) rows * sizeof (int32_t), err));

  /* CLIPTextEmbeddings: token_embedding(ids) + position_embedding(0..76). */
  ts_embed_args emb = { .table = te->tok_emb, .ids = r_ids, .y = x, .n = rows, .dim = H };
  TS_TRY (ts_op_embed (be, &emb, err));
  emb = (ts_embed_args) { .table = te->pos_emb, .ids = r_pos_ids, .y = hn, .n = rows, .dim = H };
  TS_TRY (ts_op_embed (be, &emb, err));
  ts_elementwise_args add = { .kind = TS_EW_ADD, .a = x, .b = hn, .y = x, .rows = rows,
                              .cols = H, .lda = H, .ldb = H, .ldy = H };
  TS_TRY (ts_op_elementwise (be, &add, err));

  if (capturing) {
    TS_TRY (te_capture (te, cap, "mid.embeddings", x, 3, shape_bsh, err));
    TS_TRY (te_capture (te, cap, "mid.hidden_states_all.0", x, 3, shape_bsh, err));
  }
  /* hidden_states[i] is the stream after i layers; [-2] is i = L - 1. */
  if (L - 1 == 0)
    TS_TRY (ts_buffer_download (be, x, hidden_m2, (size_t) rows * H * sizeof (float), err));

  for (int l = 0; l < L; l++) {
    const te_layer *ly = &te->layers[l];
    ts_backend_scope_set (be, "text encoder layer", l);

    ts_norm_args norm = { .kind = TS_NORM_LAYER, .x = x, .ldx = H, .y = hn, .ldy = H,
                          .rows = rows, .dim = H, .eps = (float) cfg->layer_norm_eps,
                          .weight = ly->ln1_w, .bias = ly->ln1_b, .rows_per_batch = rows };
    TS_TRY (ts_op_norm (be, &norm, err));

    const ts_weight *qkv_w[3] = { ly->q_w, ly->k_w, ly->v_w };
    const ts_weight *qkv_b[3] = { ly->q_b, ly->k_b, ly->v_b };
    for (int j = 0; j < 3; j++) {
      ts_matmul_args mm = { .x = hn, .ldx = H, .w = qkv_w[j], .bias = qkv_b[j],
                            .y = ts_ref_f32 (qkv, j * H), .ldy = 3 * H,
                            .m = rows, .n = H, .k = H };
      TS_TRY (ts_op_matmul (be, &mm, err));
    }

    ts_attention_args at = {
      .q = qkv, .k = ts_ref_f32 (qkv, H), .v = ts_ref_f32 (qkv, 2 * H), .out = attn,
      .ldq = 3 * H, .ldk = 3 * H, .ldv = 3 * H, .ldo = H,
      .bs_q = S * 3 * H, .bs_k = S * 3 * H, .bs_v = S * 3 * H, .bs_o = S * H,
      .batch = batch, .heads = heads, .seq_q = S, .seq_kv = S, .d_head = d_head,
      .scale = (float) (1.0 / sqrt ((double) d_head)), .causal = true,
    };
    TS_TRY (ts_op_attention (be, &at, err));

    ts_matmul_args mo = { .x = attn, .ldx = H, .w = ly->o_w, .bias = ly->o_b, .y = x,
                          .ldy = H, .m = rows, .n = H, .k = H, .accumulate = true };
    TS_TRY (ts_op_matmul (be, &mo, err));

    norm.weight = ly->ln2_w;
    norm.bias = ly->ln2_b;
    TS_TRY (ts_op_norm (be, &norm, err));

    ts_matmul_args m1 = { .x = hn, .ldx = H, .w = ly->fc1_w, .bias = ly->fc1_b, .y = mlp,
                          .ldy = I, .m = rows, .n = I, .k = H };
    TS_TRY (ts_op_matmul (be, &m1, err));
    ts_act_args act = { .kind = te->act, .x = mlp, .y = mlp, .rows = rows, .cols = I,
                        .ldx = I, .ldy = I };
    TS_TRY (ts_op_act (be, &act, err));
    ts_matmul_args m2 = { .x = mlp, .ldx = I, .w = ly->fc2_w, .bias = ly->fc2_b, .y = x,
                          .ldy = H, .m = rows, .n = H, .k = I, .accumulate = true };
    TS_TRY (ts_op_matmul (be, &m2, err));

    if (capturing) {
      char name[64];
      snprintf (name, sizeof name, "mid.hidden_states_all.%d", l + 1);
      TS_TRY (te_capture (te, cap, name, x, 3, shape_bsh, err));
    }
    if (l + 1 == L - 1)
      TS_TRY (ts_buffer_download (be, x, hidden_m2, (size_t) rows * H * sizeof (float), err));
  }

  ts_backend_scope_set (be, "text encoder", -1);
  ts_norm_args fnorm = { .kind = TS_NORM_LAYER, .x = x, .ldx = H, .y = hn, .ldy = H,
                         .rows = rows, .dim = H, .eps = (float) cfg->layer_norm_eps,
                         .weight = te->final_w, .bias = te->final_b, .rows_per_batch = rows };
  TS_TRY (ts_op_norm (be, &fnorm, err));
  if (last_hidden)
    TS_TRY (ts_buffer_download (be, hn, last_hidden, (size_t) rows * H * sizeof (float), err));

  if (capturing) {
    pooled = malloc ((size_t) batch * (size_t) (H + 1) * sizeof *pooled);
    if (!pooled) {
      st = ts_error_set (err, TS_ERR_NOMEM, "text_encoder: out of memory");
      goto fail;
    }
  }
  for (int b = 0; b < batch; b++) {
    const int idx = te_pooled_index (cfg, ids + (size_t) b * S);
    const ts_ref row = ts_ref_f32 (hn, ((int64_t) b * S + idx) * H);
    ts_matmul_args mp = { .x = row, .ldx = H, .w = te->proj, .y = ts_ref_f32 (proj, b * P),
                          .ldy = P, .m = 1, .n = P, .k = H };
    TS_TRY (ts_op_matmul (be, &mp, err));
    if (capturing) {
      pooled[(size_t) batch * H + b] = (float) idx;
      TS_TRY (ts_buffer_download (be, row, pooled + (size_t) b * H, (size_t) H * sizeof (float),
                                  err));
    }
  }
  TS_TRY (ts_buffer_download (be, proj, text_embeds, (size_t) batch * P * sizeof (float), err));
  if (capturing) {
    const int64_t shape_bh[2] = { batch, H }, shape_b[1] = { batch };
    cap->fn (cap->user_data, "mid.pooled_output", pooled, 2, shape_bh);
    cap->fn (cap->user_data, "mid.pooled_index", pooled + (size_t) batch * H, 1, shape_b);
  }
  st = TS_OK;

fail:
  free (pooled);
  free (pos_ids);
  return st;
}
