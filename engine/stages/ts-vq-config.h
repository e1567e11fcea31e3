/* SPDX-License-Identifier: MIT
 *
 * ts-vq-config — the VQ stage's config: diffusers VQModel (v0.31.0), restricted to what
 * Meissonic uses, as read from vqvae/config.json, and the tensors its `state_dict()` holds
 * (names and shapes), which the model folder's checkpoint is checked against and the
 * parameter count is computed from.
 */
#ifndef TS_VQ_CONFIG_H
#define TS_VQ_CONFIG_H

#include "model/ts-config.h"

#define TS_VQ_MAX_BLOCKS 8

typedef struct {
  char class_name[TS_CONFIG_NAME_MAX];
  int in_channels;
  int out_channels;
  int latent_channels;
  int n_blocks;
  int block_out_channels[TS_VQ_MAX_BLOCKS];
  int layers_per_block;    /* encoder resnets per block; the decoder has one more */
  int norm_num_groups;
  int num_vq_embeddings;   /* codebook entries */
  int vq_embed_dim;        /* codebook width; `null` means latent_channels */
  int sample_size;
  bool mid_block_add_attention; /* always false here: true is TS_ERR_UNSUPPORTED */
  bool lookup_from_codebook;
  bool force_upcast;
  double scaling_factor;
  int vae_scale_factor;    /* 2^(n_blocks - 1): pixels per latent position */
} ts_vq_config;

/* `path` is read and parsed; `_from_json_text` parses `len` bytes (no NUL needed) and
 * uses `name` in messages. On failure *out is unspecified and err names the file and key
 * (the rules are in model/ts-config.h). */
ts_status ts_vq_config_from_file (const char *path, ts_vq_config *out, ts_error *err);
ts_status ts_vq_config_from_json_text (const char *text, size_t len, const char *name,
                                       ts_vq_config *out, ts_error *err);

/* Appends every tensor of the VQModel's state_dict (encoder, quantizer and decoder), in
 * module order, to `out` (which is not cleared first). Only fails with TS_ERR_NOMEM. The
 * config must come from one of the parsers above. */
ts_status ts_vq_config_tensors (const ts_vq_config *config, ts_tensor_list *out,
                                ts_error *err);
/* The parameter count computed from the config alone (the same enumeration, counted). */
uint64_t ts_vq_config_n_params (const ts_vq_config *config);
/* A one-line summary for `tessera-cli inspect`. */
void ts_vq_config_summary (const ts_vq_config *config, char *buf, size_t size);

#endif /* TS_VQ_CONFIG_H */
