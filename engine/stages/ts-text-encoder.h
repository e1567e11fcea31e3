/* SPDX-License-Identifier: MIT
 *
 * ts-text-encoder — the CLIP text encoder stage (transformers `CLIPTextModelWithProjection`,
 * 4.46): token ids from ts-tokenizer in, the two things the Meissonic pipeline takes from
 * it out: `text_embeds` (pooled + projected, the transformer's pooled_projections) and
 * `hidden_states[-2]` (the output of the second-to-last layer, no final norm: the
 * transformer's encoder_hidden_states). Compute runs through a ts_backend; weights are
 * uploaded once from the checkpoint (F16 or F32 on disk, computed in fp32).
 *
 * Thread-safety: Unsafe — one thread at a time per ts_text_encoder (the backend is shared
 * state too).
 */
#ifndef TS_TEXT_ENCODER_H
#define TS_TEXT_ENCODER_H

#include "model/ts-safetensors.h"
#include "stages/ts-stage.h"
#include "stages/ts-text-encoder-config.h"

/* Tokens per prompt: the pipeline tokenizes with padding="max_length", max_length 77. */
#define TS_TEXT_ENCODER_SEQ_LEN 77

typedef struct ts_text_encoder ts_text_encoder;

/* Uploads every weight the config implies from `weights` (the text_encoder checkpoint,
 * keys as in the official state_dict). The config and weights need not outlive the call;
 * `be` must outlive the encoder. NULL on failure: TS_ERR_FORMAT naming a missing tensor or
 * one whose shape or dtype does not match the config, TS_ERR_UNSUPPORTED for a
 * `hidden_act` the backend has no op for ("quick_gelu") or max_position_embeddings < 77. */
ts_text_encoder *ts_text_encoder_new (const ts_backend *be, const ts_clip_text_config *cfg,
                                      const ts_st_set *weights, ts_error *err);
/* NULL-safe; frees the backend weights and scratch buffers. */
void ts_text_encoder_free (ts_text_encoder *te);

/* Runs `batch` rows of TS_TEXT_ENCODER_SEQ_LEN token ids (row-major [batch, 77]).
 *   text_embeds  [batch, projection_dim]: text_projection(final_layer_norm(pooled row)),
 *                where the pooled row is argmax(ids) (first occurrence) when the config's
 *                eos_token_id is 2 (transformers' legacy path), else the first position
 *                holding eos_token_id (0 when there is none), as transformers does;
 *   hidden_m2    [batch, 77, hidden_size]: hidden_states[-2];
 *   last_hidden  [batch, 77, hidden_size] or NULL: last_hidden_state (final norm applied).
 * With a capture hook it also reports "mid.embeddings", "mid.hidden_states_all.<i>" (i = 0
 * the embeddings ... num_hidden_layers, before the final norm), "mid.pooled_output"
 * [batch, hidden] and "mid.pooled_index" [batch] (as floats).
 * TS_ERR_INVALID_ARG for batch < 1 or an id outside [0, vocab_size). */
ts_status ts_text_encoder_forward (ts_text_encoder *te, const int32_t *ids, int batch,
                                   float *text_embeds, float *hidden_m2, float *last_hidden,
                                   const ts_capture *cap, ts_error *err);

#endif /* TS_TEXT_ENCODER_H */
