/* SPDX-License-Identifier: MIT
 *
 * ts-text-encoder-config — the CLIP text encoder's config.json → ts_clip_text_config, and
 * its expected tensor table. See ts-text-encoder-config.h.
 *
 * The defaults mirror transformers `CLIPTextConfig.__init__` (4.46); the tensor table
 * mirrors the modules CLIPTextModelWithProjection builds, named by the `state_dict()` keys
 * of the checkpoint.
 */
#include "stages/ts-text-encoder-config.h"

#include "model/ts-json.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* ---- CLIPTextConfig --------------------------------------------------------------- */

ts_status
ts_clip_text_config_from_json_text (const char *text, size_t len, const char *name,
                                    ts_clip_text_config *out, ts_error *err)
{
  /* Defaults of transformers CLIPTextConfig.__init__. */
  ts_clip_text_config cfg = {
    .vocab_size = 49408,
    .hidden_size = 512,
    .intermediate_size = 2048,
    .num_hidden_layers = 12,
    .num_attention_heads = 8,
    .max_position_embeddings = 77,
    .projection_dim = 512,
    .layer_norm_eps = 1e-5,
    .hidden_act = TS_CLIP_ACT_QUICK_GELU,
    .eos_token_id = 49407,
    .bos_token_id = 49406,
    .pad_token_id = 1,
  };
  cJSON *root = NULL;
  const cJSON *obj, *text_config, *arch;
  const char *act = "quick_gelu";
  char sub_name[512];
  bool is_null;
  ts_status st;
  ts_json_ctx c;

  TS_TRY (ts_json_parse_object (text, len, name, &root, err));
  obj = root;
  /* A full CLIPConfig: transformers reads the text tower from "text_config". */
  text_config = cJSON_GetObjectItemCaseSensitive (root, "text_config");
  if (text_config) {
    if (!cJSON_IsObject (text_config)) {
      c = (ts_json_ctx) { root, name, "CLIPConfig", err };
      st = ts_json_type_error (&c, "text_config", "an object", text_config);
      goto fail;
    }
    obj = text_config;
    snprintf (sub_name, sizeof sub_name, "%s (text_config)", name);
    name = sub_name;
  }
  c = (ts_json_ctx) { obj, name, "CLIPTextConfig", err };

  {
    const char *model_type = NULL;
    ts_json_ctx top = { root, name, "CLIPTextConfig", err };
    TS_TRY (ts_json_string (&top, "model_type", TS_JSON_OPTIONAL, &model_type));
    if (model_type && strcmp (model_type, "clip_text_model") != 0 &&
        strcmp (model_type, "clip") != 0) {
      st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                         "%s: model_type is '%s': expected a CLIP text model (clip_text_model)",
                         name, model_type);
      goto fail;
    }
  }
  arch = cJSON_GetObjectItemCaseSensitive (root, "architectures");
  if (arch) {
    const cJSON *first = cJSON_IsArray (arch) ? cJSON_GetArrayItem (arch, 0) : NULL;
    if (!cJSON_IsArray (arch) || (first && !cJSON_IsString (first))) {
      c.obj = root;
      st = ts_json_type_error (&c, "architectures", "an array of strings", arch);
      goto fail;
    }
    if (first)
      ts_json_copy_name (cfg.class_name, first->valuestring);
  }

  TS_TRY (ts_json_size (&c, "vocab_size", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.vocab_size));
  TS_TRY (ts_json_size (&c, "hidden_size", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.hidden_size));
  TS_TRY (ts_json_size (&c, "intermediate_size", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM,
                        &cfg.intermediate_size));
  TS_TRY (ts_json_size (&c, "num_hidden_layers", TS_JSON_OPTIONAL, TS_CONFIG_MAX_LAYERS,
                        &cfg.num_hidden_layers));
  TS_TRY (ts_json_size (&c, "num_attention_heads", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM,
                        &cfg.num_attention_heads));
  TS_TRY (ts_json_size (&c, "max_position_embeddings", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM,
                        &cfg.max_position_embeddings));
  TS_TRY (ts_json_size (&c, "projection_dim", TS_JSON_OPTIONAL, TS_CONFIG_MAX_DIM,
                        &cfg.projection_dim));
  TS_TRY (ts_json_number (&c, "layer_norm_eps", TS_JSON_OPTIONAL, &cfg.layer_norm_eps));
  TS_TRY (ts_json_string (&c, "hidden_act", TS_JSON_OPTIONAL, &act));
  TS_TRY (ts_json_int64 (&c, "eos_token_id", TS_JSON_NULLABLE, &cfg.eos_token_id, &is_null));
  if (is_null)
    cfg.eos_token_id = -1;
  TS_TRY (ts_json_int64 (&c, "bos_token_id", TS_JSON_NULLABLE, &cfg.bos_token_id, &is_null));
  if (is_null)
    cfg.bos_token_id = -1;
  TS_TRY (ts_json_int64 (&c, "pad_token_id", TS_JSON_NULLABLE, &cfg.pad_token_id, &is_null));
  if (is_null)
    cfg.pad_token_id = -1;

  if (strcmp (act, "gelu") == 0) {
    cfg.hidden_act = TS_CLIP_ACT_GELU;
  } else if (strcmp (act, "quick_gelu") == 0) {
    cfg.hidden_act = TS_CLIP_ACT_QUICK_GELU;
  } else if (strcmp (act, "gelu_new") == 0) {
    cfg.hidden_act = TS_CLIP_ACT_GELU_NEW;
  } else {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                       "%s: hidden_act is '%s': supported are gelu, quick_gelu and gelu_new",
                       name, act);
    goto fail;
  }
  if (cfg.hidden_size % cfg.num_attention_heads != 0) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "%s: hidden_size (%d) is not a multiple of num_attention_heads (%d)",
                       name, cfg.hidden_size, cfg.num_attention_heads);
    goto fail;
  }
  if (!(cfg.layer_norm_eps > 0.0) || !isfinite (cfg.layer_norm_eps)) {
    st = ts_error_set (err, TS_ERR_FORMAT, "%s: layer_norm_eps is %g: must be positive", name,
                       cfg.layer_norm_eps);
    goto fail;
  }
  cJSON_Delete (root);
  *out = cfg;
  return TS_OK;

fail:
  cJSON_Delete (root);
  return st;
}

TS_JSON_DEFINE_FROM_FILE (ts_clip_text_config_from_file, ts_clip_text_config_from_json_text,
                          ts_clip_text_config)

const char *
ts_clip_act_name (ts_clip_act act)
{
  switch (act) {
  case TS_CLIP_ACT_GELU: return "gelu";
  case TS_CLIP_ACT_QUICK_GELU: return "quick_gelu";
  case TS_CLIP_ACT_GELU_NEW: return "gelu_new";
  }
  return "?";
}

/* ---- CLIP tensors ---- */

static void
enumerate_clip (const ts_clip_text_config *c, ts_spec_sink *s)
{
  const int64_t h = c->hidden_size;
  char p[TS_TENSOR_NAME_MAX];

  ts_spec_add_2d (s, "text_model.embeddings", "token_embedding.weight", c->vocab_size, h);
  ts_spec_add_2d (s, "text_model.embeddings", "position_embedding.weight",
                  c->max_position_embeddings, h);
  for (int i = 0; i < c->num_hidden_layers; i++) {
    snprintf (p, sizeof p, "text_model.encoder.layers.%d", i);
    ts_spec_add_linear (s, p, "self_attn.k_proj", h, h, true);
    ts_spec_add_linear (s, p, "self_attn.v_proj", h, h, true);
    ts_spec_add_linear (s, p, "self_attn.q_proj", h, h, true);
    ts_spec_add_linear (s, p, "self_attn.out_proj", h, h, true);
    ts_spec_add_norm (s, p, "layer_norm1", h, true);
    ts_spec_add_linear (s, p, "mlp.fc1", c->intermediate_size, h, true);
    ts_spec_add_linear (s, p, "mlp.fc2", h, c->intermediate_size, true);
    ts_spec_add_norm (s, p, "layer_norm2", h, true);
  }
  ts_spec_add_norm (s, "text_model", "final_layer_norm", h, true);
  ts_spec_add_linear (s, "", "text_projection", c->projection_dim, h, false);
}

ts_status
ts_clip_text_config_tensors (const ts_clip_text_config *config, ts_tensor_list *out,
                             ts_error *err)
{
  ts_spec_sink s = { .list = out, .err = err };
  enumerate_clip (config, &s);
  return s.status;
}

uint64_t
ts_clip_text_config_n_params (const ts_clip_text_config *config)
{
  ts_spec_sink s = { 0 };
  enumerate_clip (config, &s);
  return s.n_params;
}

void
ts_clip_text_config_summary (const ts_clip_text_config *c, char *buf, size_t size)
{
  snprintf (buf, size,
            "%d layers, hidden %d, %d heads, MLP %d (%s), projection %d, vocab %d, "
            "%d positions, eos id %" PRId64,
            c->num_hidden_layers, c->hidden_size, c->num_attention_heads, c->intermediate_size,
            ts_clip_act_name (c->hidden_act), c->projection_dim, c->vocab_size,
            c->max_position_embeddings, c->eos_token_id);
}
