/* SPDX-License-Identifier: MIT
 *
 * ts-vq-config — VQModel's config.json → ts_vq_config, and the VQ-VAE's expected tensor
 * table. See ts-vq-config.h.
 *
 * The defaults mirror diffusers `VQModel.__init__` (v0.31.0); the tensor table mirrors the
 * modules it builds, named by the `state_dict()` keys of the checkpoint.
 */
#include "stages/ts-vq-config.h"

#include "model/ts-json.h"

#include <math.h>
#include <string.h>

/* Checks an array of block type names: n entries, each equal to `expected`. Absent →
 * the class default, a single `expected`. */
static ts_status
json_block_types (const ts_json_ctx *c, const char *key, const char *expected, int n)
{
  const cJSON *item, *elem;
  ts_status st = ts_json_lookup (c, key, TS_JSON_OPTIONAL, &item);
  int count = 1, i = 0;

  if (st != TS_OK)
    return st;
  if (item) {
    if (!cJSON_IsArray (item))
      return ts_json_type_error (c, key, "an array of strings", item);
    count = cJSON_GetArraySize (item);
    cJSON_ArrayForEach (elem, item)
    {
      if (!cJSON_IsString (elem) || !elem->valuestring)
        return ts_error_set (c->err, TS_ERR_FORMAT,
                             "%s: key '%s[%d]': expected a string, got %s", c->file, key, i,
                             ts_json_type_name (elem));
      if (strcmp (elem->valuestring, expected) != 0)
        return ts_error_set (c->err, TS_ERR_UNSUPPORTED,
                             "%s: %s[%d] is '%s': only %s is supported", c->file, key, i,
                             elem->valuestring, expected);
      i++;
    }
  }
  if (count != n)
    return ts_error_set (c->err, TS_ERR_FORMAT,
                         "%s: key '%s' has %d entr%s but block_out_channels has %d%s",
                         c->file, key, count, count == 1 ? "y" : "ies", n,
                         item ? "" : " (absent: the default is 1)");
  return TS_OK;
}

/* ---- VQModel ---------------------------------------------------------------------- */

ts_status
ts_vq_config_from_json_text (const char *text, size_t len, const char *name, ts_vq_config *out,
                             ts_error *err)
{
  /* Defaults of diffusers VQModel.__init__ (v0.31.0). */
  ts_vq_config cfg = {
    .in_channels = 3,
    .out_channels = 3,
    .latent_channels = 3,
    .n_blocks = 1,
    .block_out_channels = { 64 },
    .layers_per_block = 1,
    .norm_num_groups = 32,
    .num_vq_embeddings = 256,
    .vq_embed_dim = 0,
    .sample_size = 32,
    .mid_block_add_attention = true,
    .lookup_from_codebook = false,
    .force_upcast = false,
    .scaling_factor = 0.18215,
  };
  cJSON *root = NULL;
  const char *class_name = "", *act_fn = "silu", *norm_type = "group";
  int64_t vq_embed_dim;
  bool vq_embed_dim_null;
  ts_status st;
  ts_json_ctx c;

  TS_TRY (ts_json_parse_object (text, len, name, &root, err));
  c = (ts_json_ctx) { root, name, "VQModel", err };

  TS_TRY (ts_json_string (&c, "_class_name", TS_JSON_OPTIONAL, &class_name));
  ts_json_copy_name (cfg.class_name, class_name);
  TS_TRY (ts_json_size (&c, "in_channels", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.in_channels));
  TS_TRY (ts_json_size (&c, "out_channels", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM,
                        &cfg.out_channels));
  TS_TRY (ts_json_size (&c, "latent_channels", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM,
                        &cfg.latent_channels));
  TS_TRY (ts_json_size_array (&c, "block_out_channels", TS_JSON_OPTIONAL, cfg.block_out_channels,
                              TS_VQ_MAX_BLOCKS, &cfg.n_blocks));
  TS_TRY (json_block_types (&c, "down_block_types", "DownEncoderBlock2D", cfg.n_blocks));
  TS_TRY (json_block_types (&c, "up_block_types", "UpDecoderBlock2D", cfg.n_blocks));
  /* 256 resnets per block is far beyond any VQ-VAE and keeps the counts bounded. */
  TS_TRY (ts_json_size (&c, "layers_per_block", TS_JSON_OPTIONAL, 256, &cfg.layers_per_block));
  TS_TRY (ts_json_size (&c, "norm_num_groups", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM,
                        &cfg.norm_num_groups));
  TS_TRY (ts_json_size (&c, "num_vq_embeddings", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM,
                        &cfg.num_vq_embeddings));
  /* Absent or null: the codebook is latent_channels wide. */
  vq_embed_dim = cfg.latent_channels;
  TS_TRY (ts_json_int64 (&c, "vq_embed_dim", TS_JSON_NULLABLE, &vq_embed_dim, &vq_embed_dim_null));
  if (vq_embed_dim_null)
    vq_embed_dim = cfg.latent_channels;
  TS_TRY (ts_json_check_range (&c, "vq_embed_dim", vq_embed_dim, 1, TS_CONFIG_MAX_DIM));
  cfg.vq_embed_dim = (int) vq_embed_dim;
  TS_TRY (ts_json_size (&c, "sample_size", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.sample_size));
  TS_TRY (ts_json_bool (&c, "mid_block_add_attention", TS_JSON_OPTIONAL,
                        &cfg.mid_block_add_attention));
  TS_TRY (ts_json_bool (&c, "lookup_from_codebook", TS_JSON_OPTIONAL, &cfg.lookup_from_codebook));
  TS_TRY (ts_json_bool (&c, "force_upcast", TS_JSON_OPTIONAL, &cfg.force_upcast));
  TS_TRY (ts_json_number (&c, "scaling_factor", TS_JSON_OPTIONAL, &cfg.scaling_factor));
  TS_TRY (ts_json_string (&c, "act_fn", TS_JSON_OPTIONAL, &act_fn));
  TS_TRY (ts_json_string (&c, "norm_type", TS_JSON_OPTIONAL, &norm_type));

  if (strcmp (act_fn, "silu") != 0) {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                       "%s: act_fn is '%s': only silu is supported", name, act_fn);
    goto fail;
  }
  if (strcmp (norm_type, "group") != 0) {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                       "%s: norm_type is '%s': only group is supported", name, norm_type);
    goto fail;
  }
  if (cfg.mid_block_add_attention) {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                       "%s: mid_block_add_attention is %s: VQ mid-block attention is not "
                       "supported yet (Meissonic's VQ-VAE has none)",
                       name, cJSON_GetObjectItemCaseSensitive (root, "mid_block_add_attention")
                               ? "true"
                               : "absent (default true)");
    goto fail;
  }
  for (int i = 0; i < cfg.n_blocks; i++) {
    if (cfg.block_out_channels[i] % cfg.norm_num_groups != 0) {
      st = ts_error_set (err, TS_ERR_FORMAT,
                         "%s: block_out_channels[%d] = %d is not a multiple of "
                         "norm_num_groups (%d)",
                         name, i, cfg.block_out_channels[i], cfg.norm_num_groups);
      goto fail;
    }
  }
  if (!isfinite (cfg.scaling_factor)) {
    st = ts_error_set (err, TS_ERR_FORMAT, "%s: scaling_factor is not finite", name);
    goto fail;
  }
  cfg.vae_scale_factor = 1 << (cfg.n_blocks - 1);
  cJSON_Delete (root);
  *out = cfg;
  return TS_OK;

fail:
  cJSON_Delete (root);
  return st;
}

TS_JSON_DEFINE_FROM_FILE (ts_vq_config_from_file, ts_vq_config_from_json_text, ts_vq_config)

/* ---- VQ tensors ---- */

/* ResnetBlock2D(in, out, groups): GroupNorm → conv3x3 → GroupNorm → conv3x3, plus a 1x1
 * conv shortcut when the channel count changes. */
static void
add_resnet (ts_spec_sink *s, const char *prefix, int64_t in, int64_t out)
{
  ts_spec_add_norm (s, prefix, "norm1", in, true);
  ts_spec_add_conv (s, prefix, "conv1", out, in, 3, true);
  ts_spec_add_norm (s, prefix, "norm2", out, true);
  ts_spec_add_conv (s, prefix, "conv2", out, out, 3, true);
  if (in != out)
    ts_spec_add_conv (s, prefix, "conv_shortcut", out, in, 1, true);
}

/* UNetMidBlock2D without attention: two resnets at the deepest width. */
static void
add_mid_block (ts_spec_sink *s, const char *prefix, int64_t ch)
{
  char p[TS_TENSOR_NAME_MAX];

  for (int j = 0; j < 2; j++) {
    snprintf (p, sizeof p, "%s.mid_block.resnets.%d", prefix, j);
    add_resnet (s, p, ch, ch);
  }
}

static void
enumerate_vq (const ts_vq_config *c, ts_spec_sink *s)
{
  const int n = c->n_blocks;
  char p[TS_TENSOR_NAME_MAX];
  int64_t prev;

  /* Encoder */
  ts_spec_add_conv (s, "encoder", "conv_in", c->block_out_channels[0], c->in_channels, 3, true);
  prev = c->block_out_channels[0];
  for (int i = 0; i < n; i++) {
    const int64_t out = c->block_out_channels[i];
    /* DownEncoderBlock2D(layers_per_block resnets, Downsample2D on all but the last) */
    for (int j = 0; j < c->layers_per_block; j++) {
      snprintf (p, sizeof p, "encoder.down_blocks.%d.resnets.%d", i, j);
      add_resnet (s, p, j == 0 ? prev : out, out);
    }
    if (i != n - 1) {
      snprintf (p, sizeof p, "encoder.down_blocks.%d.downsamplers.0", i);
      ts_spec_add_conv (s, p, "conv", out, out, 3, true);
    }
    prev = out;
  }
  add_mid_block (s, "encoder", c->block_out_channels[n - 1]);
  ts_spec_add_norm (s, "encoder", "conv_norm_out", c->block_out_channels[n - 1], true);
  ts_spec_add_conv (s, "encoder", "conv_out", c->latent_channels, c->block_out_channels[n - 1],
                    3, true);

  ts_spec_add_conv (s, "", "quant_conv", c->vq_embed_dim, c->latent_channels, 1, true);
  ts_spec_add_2d (s, "quantize", "embedding.weight", c->num_vq_embeddings, c->vq_embed_dim);
  ts_spec_add_conv (s, "", "post_quant_conv", c->latent_channels, c->vq_embed_dim, 1, true);

  /* Decoder: up blocks walk block_out_channels in reverse. */
  ts_spec_add_conv (s, "decoder", "conv_in", c->block_out_channels[n - 1], c->latent_channels,
                    3, true);
  add_mid_block (s, "decoder", c->block_out_channels[n - 1]);
  prev = c->block_out_channels[n - 1];
  for (int i = 0; i < n; i++) {
    const int64_t out = c->block_out_channels[n - 1 - i];
    /* UpDecoderBlock2D(layers_per_block + 1 resnets, Upsample2D on all but the last) */
    for (int j = 0; j < c->layers_per_block + 1; j++) {
      snprintf (p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
      add_resnet (s, p, j == 0 ? prev : out, out);
    }
    if (i != n - 1) {
      snprintf (p, sizeof p, "decoder.up_blocks.%d.upsamplers.0", i);
      ts_spec_add_conv (s, p, "conv", out, out, 3, true);
    }
    prev = out;
  }
  ts_spec_add_norm (s, "decoder", "conv_norm_out", c->block_out_channels[0], true);
  ts_spec_add_conv (s, "decoder", "conv_out", c->out_channels, c->block_out_channels[0], 3,
                    true);
}

ts_status
ts_vq_config_tensors (const ts_vq_config *config, ts_tensor_list *out, ts_error *err)
{
  ts_spec_sink s = { .list = out, .err = err };
  enumerate_vq (config, &s);
  return s.status;
}

uint64_t
ts_vq_config_n_params (const ts_vq_config *config)
{
  ts_spec_sink s = { 0 };
  enumerate_vq (config, &s);
  return s.n_params;
}

void
ts_vq_config_summary (const ts_vq_config *c, char *buf, size_t size)
{
  char channels[TS_VQ_MAX_BLOCKS * 12 + 4];
  size_t used = 0;

  channels[0] = '\0';
  for (int i = 0; i < c->n_blocks; i++)
    used += (size_t) snprintf (channels + used, sizeof channels - used, "%s%d", i ? "," : "",
                               c->block_out_channels[i]);
  snprintf (buf, size,
            "%d blocks [%s] x %d resnets, %d groups, latent %d, %d codes x %d, "
            "%dx downscale, sample size %d",
            c->n_blocks, channels, c->layers_per_block, c->norm_num_groups, c->latent_channels,
            c->num_vq_embeddings, c->vq_embed_dim, c->vae_scale_factor, c->sample_size);
}
