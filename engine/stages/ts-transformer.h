/* SPDX-License-Identifier: MIT
 *
 * ts-transformer — the Meissonic transformer (`Transformer2DModel`, viiika/Meissonic
 * src/transformer.py @ 9360def, on diffusers v0.31.0 building blocks): one denoising
 * step's forward pass from a latent token grid, the CLIP text states and the pooled text
 * embedding to per-position codebook logits. It sits between the text encoder and the
 * sampler (ts-sampler) in the pipeline, and runs all compute through ts-backend.h.
 *
 * The network, in order: micro-conditioning and timestep embeddings → temb; token
 * embedding → RMSNorm → 1×1 conv → optional 2×2 down_block; text stream
 * context_embedder → RMSNorm; N dual-stream (MMDiT) blocks on [text ; image]; M
 * single-stream blocks; RMSNorm → Linear → optional up_block → MLM head. The golden
 * README's quirks 1–9 are what this reproduces (RoPE ids from the actual token grid,
 * timestep ×1000, [cos | sin] sinusoids, eps 1e-6 norms, GELU tanh, [text ; image]
 * order).
 *
 * Activations stay [batch, seq, channels] row-major on the backend; the NCHW parts
 * (down/up block convolutions) go through transposes. Scratch memory is one backend
 * buffer kept in the object and grown to the largest request seen; it holds no N×N
 * attention matrix.
 *
 * Thread-safety: Unsafe — one thread at a time per object (like its backend).
 */
#ifndef TS_TRANSFORMER_H
#define TS_TRANSFORMER_H

#include "backend/ts-backend.h"
#include "model/ts-safetensors.h"
#include "stages/ts-stage.h"
#include "stages/ts-transformer-config.h"

/* Width of one sinusoidal embedding (timestep and each micro-condition), as in the
 * official forward (`micro_cond_encode_dim = 256`, Timesteps(num_channels=256)). */
#define TS_TRANSFORMER_SINUSOID_DIM 256
/* Number of micro-conditions: width, height, crop_top, crop_left, aesthetic score. */
#define TS_TRANSFORMER_N_MICRO_CONDS 5

typedef struct ts_transformer ts_transformer;

/* Uploads every weight of the transformer from `weights` (looked up by checkpoint key;
 * F32, F16 or BF16 on disk, the backend picks the storage). A missing tensor or a shape
 * that does not follow from `cfg` is a TS_ERR_FORMAT naming the key; a config this code
 * cannot run (pooled_projection_dim != inner dim, downsample without upsample, RoPE axes
 * not summing to the head dim) is TS_ERR_UNSUPPORTED. `be` must outlive the object;
 * `cfg` is copied; `weights` may be freed after the call. NULL on failure. */
ts_transformer *ts_transformer_new (const ts_backend *be, const ts_transformer_config *cfg,
                                    const ts_st_set *weights, ts_error *err);
/* Frees the scratch buffer (activations, about 0.7 GB at the real size and 1024²); the
 * next forward allocates it again. The pipeline calls it before the VQ decode so the two
 * stages' activations are never resident together. NULL-safe. */
void ts_transformer_trim (ts_transformer *tf);

/* NULL-safe. Frees the weights and the scratch buffer. */
void ts_transformer_free (ts_transformer *tf);

/* Checks that a latent token grid can go through this model: both sides >= 1, and even
 * when the model has the 2×2 down/up blocks (an odd side would come back from the
 * upsample one row or column larger). TS_ERR_INVALID_ARG with a message naming the
 * grid and what the model takes otherwise. */
ts_status ts_transformer_check_grid (const ts_transformer_config *cfg, int grid_h, int grid_w,
                                     ts_error *err);

typedef struct {
  /* [batch, grid_h, grid_w] latent token ids in [0, vocab_size) (the mask id included). */
  const int32_t *tokens;
  int batch, grid_h, grid_w;
  /* [batch, text_len, joint_attention_dim]: CLIP hidden_states[-2]. */
  const float *encoder_hidden_states;
  int text_len; /* 77 for the real pipeline */
  /* [batch, pooled_projection_dim]: CLIP text_embeds. */
  const float *pooled_projections;
  /* width, height, crop_top, crop_left, aesthetic score: the same row for every batch
   * entry (as the pipeline builds it). */
  float micro_conds[TS_TRANSFORMER_N_MICRO_CONDS];
  /* The integer step counter t the pipeline passes (N-1 … 0); the forward uses t·1000. */
  int64_t timestep;
  /* Out, one of the two: logits, a caller-owned host array [batch, codebook_size, grid_h,
   * grid_w]; or, when logits is NULL, logits_ref, set to where that tensor lies in backend
   * memory: borrowed from the transformer, valid until its next forward, trim or free, and
   * possibly still being computed (the backend orders later ops after it). */
  float *logits;
  ts_ref *logits_ref;
} ts_transformer_forward_args;

/* Runs one forward pass. Inputs are host arrays (uploaded inside), the logits come back
 * into a->logits or stay on the backend (a->logits_ref). With `cap` set every intermediate the golden set names
 * ("mid.cond_embed_input" … "mid.up_block_out", see the golden README) is downloaded and
 * passed to it in the reference layout. `abort` (optional) is polled between blocks and
 * gives TS_ERR_CANCELLED. TS_ERR_INVALID_ARG for a grid check_grid rejects, a token id
 * outside the vocabulary or non-positive sizes; backend failures pass through. */
ts_status ts_transformer_forward (ts_transformer *tf, const ts_transformer_forward_args *a,
                                  const ts_capture *cap, const ts_abort *abort, ts_error *err);

#endif /* TS_TRANSFORMER_H */
