/* SPDX-License-Identifier: MIT
 *
 * ts-text-encoder-config — the text encoder stage's config: transformers CLIPTextConfig,
 * as used by CLIPTextModelWithProjection, read from text_encoder/config.json, and the
 * tensors that module's `state_dict()` holds (names and shapes), which the model folder's
 * checkpoint is checked against and the parameter count is computed from.
 */
#ifndef TS_TEXT_ENCODER_CONFIG_H
#define TS_TEXT_ENCODER_CONFIG_H

#include "model/ts-config.h"

typedef enum {
  TS_CLIP_ACT_GELU,       /* "gelu": exact erf GELU (Meissonic's CLIP-ViT-H) */
  TS_CLIP_ACT_QUICK_GELU, /* "quick_gelu": x * sigmoid(1.702 x) (the class default) */
  TS_CLIP_ACT_GELU_NEW,   /* "gelu_new": tanh approximation */
} ts_clip_act;

typedef struct {
  char class_name[TS_CONFIG_NAME_MAX]; /* `architectures[0]`, "" when absent */
  int vocab_size;
  int hidden_size;
  int intermediate_size;
  int num_hidden_layers;
  int num_attention_heads;
  int max_position_embeddings;
  int projection_dim;
  double layer_norm_eps;
  ts_clip_act hidden_act;
  int64_t eos_token_id; /* 2 in Meissonic's config: legacy argmax pooling (quirk 11) */
  int64_t bos_token_id; /* -1 when the config has null */
  int64_t pad_token_id; /* -1 when the config has null */
} ts_clip_text_config;

/* `path` is read and parsed; `_from_json_text` parses `len` bytes (no NUL needed) and
 * uses `name` in messages. On failure *out is unspecified and err names the file and key
 * (the rules are in model/ts-config.h). Also accepts a full CLIPConfig (the text tower is
 * read from its `text_config`), as transformers' CLIPTextConfig.from_pretrained does. */
ts_status ts_clip_text_config_from_file (const char *path, ts_clip_text_config *out,
                                         ts_error *err);
ts_status ts_clip_text_config_from_json_text (const char *text, size_t len, const char *name,
                                              ts_clip_text_config *out, ts_error *err);

/* "gelu", "quick_gelu" or "gelu_new", for messages and summaries. */
const char *ts_clip_act_name (ts_clip_act act);

/* Appends every tensor of CLIPTextModelWithProjection's state_dict, in module order, to
 * `out` (which is not cleared first). Only fails with TS_ERR_NOMEM. The config must come
 * from one of the parsers above. */
ts_status ts_clip_text_config_tensors (const ts_clip_text_config *config, ts_tensor_list *out,
                                       ts_error *err);
/* The parameter count computed from the config alone (the same enumeration, counted). */
uint64_t ts_clip_text_config_n_params (const ts_clip_text_config *config);
/* A one-line summary for `tessera-cli inspect`. */
void ts_clip_text_config_summary (const ts_clip_text_config *config, char *buf, size_t size);

#endif /* TS_TEXT_ENCODER_CONFIG_H */
