/* SPDX-License-Identifier: MIT
 *
 * ts-transformer-config — Transformer2DModel's config.json → ts_transformer_config, and the
 * transformer's expected tensor table. See ts-transformer-config.h.
 *
 * The defaults mirror Meissonic `Transformer2DModel.__init__` (src/transformer.py,
 * viiika/Meissonic @ 9360def); the tensor table mirrors the modules it builds, named by
 * the `state_dict()` keys of the checkpoint.
 */
#include "stages/ts-transformer-config.h"

#include "model/ts-json.h"

#include <inttypes.h>
#include <string.h>

/* ---- Transformer2DModel ----------------------------------------------------------- */

ts_status
ts_transformer_config_from_json_text (const char *text, size_t len, const char *name,
                                      ts_transformer_config *out, ts_error *err)
{
  /* Defaults of Meissonic's Transformer2DModel.__init__. */
  ts_transformer_config cfg = {
    .attention_head_dim = 128,
    .num_attention_heads = 24,
    .num_layers = 19,
    .num_single_layers = 38,
    .joint_attention_dim = 4096,
    .pooled_projection_dim = 768,
    .codebook_size = 8192,
    .vocab_size = 8256,
    .axes_dims_rope = { 16, 56, 56 },
    .downsample = false,
    .upsample = false,
    .in_channels = 64,
    .patch_size = 1,
  };
  cJSON *root = NULL;
  const char *class_name = "";
  bool guidance_embeds = false;
  int n_axes = 3, axes_sum;
  int64_t inner;
  ts_status st;
  ts_json_ctx c;

  TS_TRY (ts_json_parse_object (text, len, name, &root, err));
  c = (ts_json_ctx) { root, name, "Transformer2DModel", err };

  TS_TRY (ts_json_string (&c, "_class_name", TS_JSON_OPTIONAL, &class_name));
  ts_json_copy_name (cfg.class_name, class_name);
  TS_TRY (ts_json_size (&c, "attention_head_dim", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM,
                        &cfg.attention_head_dim));
  TS_TRY (ts_json_size (&c, "num_attention_heads", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM,
                        &cfg.num_attention_heads));
  TS_TRY (ts_json_size (&c, "num_layers", TS_JSON_OPTIONAL, TS_CONFIG_MAX_LAYERS,
                        &cfg.num_layers));
  TS_TRY (ts_json_size (&c, "num_single_layers", TS_JSON_OPTIONAL, TS_CONFIG_MAX_LAYERS,
                        &cfg.num_single_layers));
  TS_TRY (ts_json_size (&c, "joint_attention_dim", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM,
                        &cfg.joint_attention_dim));
  TS_TRY (ts_json_size (&c, "pooled_projection_dim", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM,
                        &cfg.pooled_projection_dim));
  TS_TRY (ts_json_size (&c, "codebook_size", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM,
                        &cfg.codebook_size));
  TS_TRY (ts_json_size (&c, "vocab_size", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.vocab_size));
  TS_TRY (ts_json_size_array (&c, "axes_dims_rope", TS_JSON_OPTIONAL, cfg.axes_dims_rope, 3,
                              &n_axes));
  TS_TRY (ts_json_bool (&c, "downsample", TS_JSON_OPTIONAL, &cfg.downsample));
  TS_TRY (ts_json_bool (&c, "upsample", TS_JSON_OPTIONAL, &cfg.upsample));
  TS_TRY (ts_json_bool (&c, "guidance_embeds", TS_JSON_OPTIONAL, &guidance_embeds));
  TS_TRY (ts_json_size (&c, "in_channels", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.in_channels));
  TS_TRY (ts_json_size (&c, "patch_size", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.patch_size));

  inner = (int64_t) cfg.num_attention_heads * cfg.attention_head_dim;
  if (inner > TS_CONFIG_MAX_DIM) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "%s: num_attention_heads x attention_head_dim = %" PRId64
                       " is larger than %d",
                       name, inner, TS_CONFIG_MAX_DIM);
    goto fail;
  }
  cfg.inner_dim = (int) inner;
  if (n_axes != 3) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "%s: axes_dims_rope has %d entries; the position ids have 3 axes",
                       name, n_axes);
    goto fail;
  }
  axes_sum = cfg.axes_dims_rope[0] + cfg.axes_dims_rope[1] + cfg.axes_dims_rope[2];
  for (int i = 0; i < 3; i++) {
    if (cfg.axes_dims_rope[i] % 2 != 0) {
      st = ts_error_set (err, TS_ERR_FORMAT,
                         "%s: axes_dims_rope[%d] is %d: each RoPE axis needs an even width",
                         name, i, cfg.axes_dims_rope[i]);
      goto fail;
    }
  }
  if (axes_sum != cfg.attention_head_dim) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "%s: axes_dims_rope [%d,%d,%d] sums to %d but attention_head_dim is %d",
                       name, cfg.axes_dims_rope[0], cfg.axes_dims_rope[1],
                       cfg.axes_dims_rope[2], axes_sum, cfg.attention_head_dim);
    goto fail;
  }
  if (cfg.pooled_projection_dim != cfg.inner_dim) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "%s: pooled_projection_dim (%d) must equal num_attention_heads x "
                       "attention_head_dim (%d): cond_embed's output feeds "
                       "time_text_embed.text_embedder",
                       name, cfg.pooled_projection_dim, cfg.inner_dim);
    goto fail;
  }
  if (cfg.vocab_size <= cfg.codebook_size) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "%s: vocab_size (%d) must be larger than codebook_size (%d): the mask "
                       "token id lies above the codebook",
                       name, cfg.vocab_size, cfg.codebook_size);
    goto fail;
  }
  if (guidance_embeds) {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                       "%s: guidance_embeds is true: guidance-distilled Meissonic models are "
                       "not supported",
                       name);
    goto fail;
  }
  cJSON_Delete (root);
  *out = cfg;
  return TS_OK;

fail:
  cJSON_Delete (root);
  return st;
}

TS_JSON_DEFINE_FROM_FILE (ts_transformer_config_from_file, ts_transformer_config_from_json_text,
                          ts_transformer_config)

/* ---- transformer tensors ---- */

static void
enumerate_transformer (const ts_transformer_config *c, ts_spec_sink *s)
{
  const int64_t inner = c->inner_dim, hd = c->attention_head_dim, mlp = 4 * inner;
  /* Micro-conditioning: 5 values x 256 sinusoidal channels (quirk 3). */
  const int64_t micro_cond_dim = 5 * 256, timestep_channels = 256;
  char p[TS_TENSOR_NAME_MAX];

  /* CombinedTimestepTextProjEmbeddings */
  ts_spec_add_linear (s, "time_text_embed.timestep_embedder", "linear_1", inner,
                      timestep_channels, true);
  ts_spec_add_linear (s, "time_text_embed.timestep_embedder", "linear_2", inner, inner, true);
  ts_spec_add_linear (s, "time_text_embed.text_embedder", "linear_1", inner,
                      c->pooled_projection_dim, true);
  ts_spec_add_linear (s, "time_text_embed.text_embedder", "linear_2", inner, inner, true);
  ts_spec_add_linear (s, "", "context_embedder", inner, c->joint_attention_dim, true);

  for (int i = 0; i < c->num_layers; i++) {
    snprintf (p, sizeof p, "transformer_blocks.%d", i);
    /* AdaLayerNormZero: Linear(inner, 6 inner) */
    ts_spec_add_linear (s, p, "norm1.linear", 6 * inner, inner, true);
    ts_spec_add_linear (s, p, "norm1_context.linear", 6 * inner, inner, true);
    snprintf (p, sizeof p, "transformer_blocks.%d.attn", i);
    ts_spec_add_norm (s, p, "norm_q", hd, false);
    ts_spec_add_norm (s, p, "norm_k", hd, false);
    ts_spec_add_linear (s, p, "to_q", inner, inner, true);
    ts_spec_add_linear (s, p, "to_k", inner, inner, true);
    ts_spec_add_linear (s, p, "to_v", inner, inner, true);
    ts_spec_add_linear (s, p, "add_k_proj", inner, inner, true);
    ts_spec_add_linear (s, p, "add_v_proj", inner, inner, true);
    ts_spec_add_linear (s, p, "add_q_proj", inner, inner, true);
    ts_spec_add_norm (s, p, "norm_added_q", hd, false);
    ts_spec_add_norm (s, p, "norm_added_k", hd, false);
    ts_spec_add_linear (s, p, "to_out.0", inner, inner, true);
    ts_spec_add_linear (s, p, "to_add_out", inner, inner, true);
    snprintf (p, sizeof p, "transformer_blocks.%d", i);
    /* FeedForward(gelu-approximate): net.0 = GELU(proj), net.2 = Linear */
    ts_spec_add_linear (s, p, "ff.net.0.proj", mlp, inner, true);
    ts_spec_add_linear (s, p, "ff.net.2", inner, mlp, true);
    ts_spec_add_linear (s, p, "ff_context.net.0.proj", mlp, inner, true);
    ts_spec_add_linear (s, p, "ff_context.net.2", inner, mlp, true);
  }
  for (int i = 0; i < c->num_single_layers; i++) {
    snprintf (p, sizeof p, "single_transformer_blocks.%d", i);
    /* AdaLayerNormZeroSingle: Linear(inner, 3 inner) */
    ts_spec_add_linear (s, p, "norm.linear", 3 * inner, inner, true);
    ts_spec_add_linear (s, p, "proj_mlp", mlp, inner, true);
    ts_spec_add_linear (s, p, "proj_out", inner, inner + mlp, true);
    snprintf (p, sizeof p, "single_transformer_blocks.%d.attn", i);
    ts_spec_add_norm (s, p, "norm_q", hd, false);
    ts_spec_add_norm (s, p, "norm_k", hd, false);
    ts_spec_add_linear (s, p, "to_q", inner, inner, true);
    ts_spec_add_linear (s, p, "to_k", inner, inner, true);
    ts_spec_add_linear (s, p, "to_v", inner, inner, true);
  }

  /* UVit2DConvEmbed(inner, inner, vocab_size, affine, 1e-6, bias=False) */
  ts_spec_add_2d (s, "embed", "embeddings.weight", c->vocab_size, inner);
  ts_spec_add_norm (s, "embed", "layer_norm", inner, false);
  ts_spec_add_conv (s, "embed", "conv", inner, inner, 1, false);
  /* ConvMlmLayer(inner, inner, bias=False, ..., codebook_size) */
  ts_spec_add_conv (s, "mlm_layer", "conv1", inner, inner, 1, false);
  ts_spec_add_norm (s, "mlm_layer", "layer_norm", inner, false);
  ts_spec_add_conv (s, "mlm_layer", "conv2", c->codebook_size, inner, 1, false);
  /* TimestepEmbedding(1280 + pooled_projection_dim, inner, sample_proj_bias=False) */
  ts_spec_add_linear (s, "cond_embed", "linear_1", inner,
                      micro_cond_dim + c->pooled_projection_dim, false);
  ts_spec_add_linear (s, "cond_embed", "linear_2", inner, inner, false);
  ts_spec_add_norm (s, "", "encoder_proj_layer_norm", inner, false);
  ts_spec_add_norm (s, "", "project_to_hidden_norm", inner, false);
  ts_spec_add_linear (s, "", "project_to_hidden", inner, inner, false);
  ts_spec_add_norm (s, "", "project_from_hidden_norm", inner, false);
  ts_spec_add_linear (s, "", "project_from_hidden", inner, inner, false);
  if (c->downsample) {
    /* Downsample2D(rms_norm, kernel 2, bias=False) */
    ts_spec_add_norm (s, "down_block.downsample", "norm", inner, false);
    ts_spec_add_conv (s, "down_block.downsample", "conv", inner, inner, 2, false);
  }
  if (c->upsample) {
    /* Upsample2D(rms_norm, conv transpose kernel 2, bias=False): weight [in, out, 2, 2] */
    ts_spec_add_norm (s, "up_block.upsample", "norm", inner, false);
    ts_spec_add_conv (s, "up_block.upsample", "conv", inner, inner, 2, false);
  }
}

ts_status
ts_transformer_config_tensors (const ts_transformer_config *config, ts_tensor_list *out,
                               ts_error *err)
{
  ts_spec_sink s = { .list = out, .err = err };
  enumerate_transformer (config, &s);
  return s.status;
}

uint64_t
ts_transformer_config_n_params (const ts_transformer_config *config)
{
  ts_spec_sink s = { 0 };
  enumerate_transformer (config, &s);
  return s.n_params;
}

void
ts_transformer_config_summary (const ts_transformer_config *c, char *buf, size_t size)
{
  const char *resample = c->downsample && c->upsample ? "2x down/upsampled token grid"
                         : c->downsample              ? "2x downsampled token grid"
                         : c->upsample                ? "2x upsampled token grid"
                                                      : "full-resolution token grid";

  snprintf (buf, size,
            "%d dual-stream + %d single-stream blocks, %d heads x %d = %d wide, text %d -> %d, "
            "codebook %d (vocab %d), RoPE axes [%d,%d,%d], %s",
            c->num_layers, c->num_single_layers, c->num_attention_heads, c->attention_head_dim,
            c->inner_dim, c->joint_attention_dim, c->inner_dim, c->codebook_size,
            c->vocab_size, c->axes_dims_rope[0], c->axes_dims_rope[1], c->axes_dims_rope[2],
            resample);
}
