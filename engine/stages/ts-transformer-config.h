/* SPDX-License-Identifier: MIT
 *
 * ts-transformer-config — the transformer stage's config: Meissonic's Transformer2DModel
 * (src/transformer.py, viiika/Meissonic @ 9360def) as read from transformer/config.json,
 * and the tensors its `state_dict()` holds (names and shapes), which the model folder's
 * checkpoint is checked against and the parameter count is computed from.
 */
#ifndef TS_TRANSFORMER_CONFIG_H
#define TS_TRANSFORMER_CONFIG_H

#include "model/ts-config.h"

typedef struct {
  char class_name[TS_CONFIG_NAME_MAX]; /* `_class_name`, "" when absent */
  int attention_head_dim;
  int num_attention_heads;
  int inner_dim;          /* num_attention_heads x attention_head_dim */
  int num_layers;         /* dual-stream (MMDiT) blocks */
  int num_single_layers;  /* single-stream blocks */
  int joint_attention_dim;   /* text hidden size entering context_embedder */
  int pooled_projection_dim; /* must equal inner_dim (README "Models") */
  int codebook_size;         /* logits per position */
  int vocab_size;            /* token embedding rows: codebook + mask and extra ids */
  int axes_dims_rope[3];     /* RoPE widths per position axis; sum = attention_head_dim */
  bool downsample;           /* 2x2 down_block before the blocks */
  bool upsample;             /* 2x2 up_block after them */
  int in_channels;           /* unused by the forward pass, kept for display */
  int patch_size;            /* unused by the forward pass, kept for display */
} ts_transformer_config;

/* `path` is read and parsed; `_from_json_text` parses `len` bytes (no NUL needed) and
 * uses `name` in messages. On failure *out is unspecified and err names the file and key
 * (the rules are in model/ts-config.h). */
ts_status ts_transformer_config_from_file (const char *path, ts_transformer_config *out,
                                           ts_error *err);
ts_status ts_transformer_config_from_json_text (const char *text, size_t len,
                                                const char *name,
                                                ts_transformer_config *out, ts_error *err);

/* Appends every tensor of the transformer's state_dict, in module order, to `out` (which
 * is not cleared first). Only fails with TS_ERR_NOMEM. The config must come from one of
 * the parsers above (sizes within the TS_CONFIG_MAX_* bounds). */
ts_status ts_transformer_config_tensors (const ts_transformer_config *config,
                                         ts_tensor_list *out, ts_error *err);
/* The parameter count computed from the config alone (the same enumeration, counted). */
uint64_t ts_transformer_config_n_params (const ts_transformer_config *config);
/* A one-line summary for `tessera-cli inspect`. */
void ts_transformer_config_summary (const ts_transformer_config *config, char *buf,
                                    size_t size);

#endif /* TS_TRANSFORMER_CONFIG_H */
