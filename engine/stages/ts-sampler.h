/* SPDX-License-Identifier: MIT
 *
 * ts-sampler — Meissonic's MaskGIT sampler, the stage between the transformer and the VQ
 * decoder: the mask schedule, the per-step temperature, classifier-free guidance and one
 * scheduler step (sample a code for every masked token, then re-mask the least confident
 * ones). This is the CPU reference on plain float arrays.
 *
 * It mirrors `Scheduler` in src/scheduler.py and the CFG line of src/pipeline.py of the
 * reference (viiika/Meissonic, files last changed in 9360def), which is diffusers'
 * AmusedScheduler renamed, run by torch 1.13 on the CPU in fp32. Where torch's fp32
 * arithmetic decides an integer result (mask_len) or the value is compared bit for bit
 * (temperatures), the code below repeats torch's operation order; README.md of the golden
 * set, quirk 10, lists the rules.
 *
 * Randomness comes from a draw source: either the engine's Philox stream (ts-rng, keyed by
 * the seed) or draws recorded from the reference, which is how the golden tests replay a
 * torch run exactly.
 *
 * Thread-safety: every function is reentrant; distinct calls may run concurrently.
 */
#ifndef TS_SAMPLER_H
#define TS_SAMPLER_H

#include "tessera.h"
#include "backend/ts-sample-math.h"
#include "stages/ts-sampler-config.h"

/* The timestep the reference passes to the transformer at step_index: timesteps are
 * arange(n_steps).flip(0), i.e. n_steps - 1 - step_index. */
int ts_sampler_timestep (int step_index, int n_steps);

/* The fraction of tokens left masked after step_index (0-based) of n_steps, in fp32 the
 * way torch computes it: ratio = (float) (step_index + 1) / (float) n_steps, then
 * cos (ratio * (float) pi / 2) with the cosine of the fp32 angle rounded to fp32, or
 * 1 - ratio. Requires 0 <= step_index < n_steps. */
float ts_sampler_mask_ratio (ts_masking_schedule schedule, int step_index, int n_steps);

/* How many of the seq_len tokens a step re-masks when n_unknown are masked on entry:
 * max (1, min (n_unknown - 1, floor (seq_len * mask_ratio))) with the product in fp32, and
 * 0 at the last step (timestep 0), which re-masks nothing. Note the reference's corner
 * case, kept as is: with n_unknown <= 1 a step that is not the last still re-masks one
 * token. Requires 0 <= step_index < n_steps and seq_len > 0. */
int ts_sampler_mask_len (ts_masking_schedule schedule, int step_index, int n_steps,
                         int seq_len, int n_unknown);

/* The same with the inpainting pipeline's starting_mask_ratio (masked / total tokens at
 * the start), which scales the schedule's ratio in fp32 before the floor:
 * Scheduler.step(..., starting_mask_ratio=...) in src/pipeline_inpaint.py. */
int ts_sampler_mask_len_scaled (ts_masking_schedule schedule, int step_index, int n_steps,
                                int seq_len, int n_unknown, float starting_mask_ratio);

/* Element step_index of torch.linspace (start, end, n_steps) in fp32, bit for bit as
 * torch 1.13's CPU kernel (AVX2 build) computes it: step = (end - start) / (n_steps - 1);
 * the kernel writes 8-lane vectors two at a time, lane 0 of each vector being
 * start + step * i below the halfway index n_steps / 2 and end - step * (n_steps - 1 - i)
 * from there on, each a fused multiply-add, the other lanes lane 0 + (lane * step) with
 * two roundings; the last n_steps % 16 elements use the fused lane-0 formula each. The
 * reference's default is start 2, end 0 (a single value T means T to 0.01f).
 * Requires 0 <= step_index < n_steps. */
float ts_sampler_temperature (float start, float end, int step_index, int n_steps);

/* The k-th smallest (0-based) of n floats, by selection; reorders a. Requires k < n and
 * no NaN in a. */
float ts_sampler_kth_smallest (float *a, size_t n, size_t k);

/* ---- one scheduler step ---- */

typedef struct {
  int n_images;      /* batch rows */
  int codebook_size; /* logits per token */
  int n_tokens;      /* tokens per image (H * W of the token grid) */
  /* [n_images][codebook_size][n_tokens]: the transformer's NCHW output with H * W
   * flattened, so the logit of code c for token t of row r is
   * logits[(r * codebook_size + c) * n_tokens + t]. */
  const float *logits;
  const int32_t *sample;  /* [n_images][n_tokens]; mask_token_id marks unknown tokens */
  int32_t mask_token_id;
  int step_index;         /* 0 .. n_steps - 1 */
  int n_steps;
  ts_masking_schedule schedule;
  float temperature;      /* usually ts_sampler_temperature (2, 0, step_index, n_steps) */
  /* Inpainting: scales the mask ratio (see ts_sampler_mask_len_scaled); 0 means 1. */
  float starting_mask_ratio;
  ts_sampler_draws draws;

  /* Outputs, [n_images][n_tokens]; they may be the same array as each other or as
   * sample. pred_original_sample: the sampled code at unknown tokens, the input elsewhere.
   * prev_sample: the same with the re-masked tokens set to mask_token_id. */
  int32_t *pred_original_sample;
  int32_t *prev_sample;
  /* Optional (NULL to skip). selected_probs: the softmax probability of the sampled code,
   * FLT_MAX at tokens that were known on entry. confidence: log (max (p, 1e-20)) +
   * temperature * gumbel with p = selected_probs (so ln FLT_MAX + ... at known tokens);
   * on the last step, which draws no Gumbel noise, log (max (p, 1e-20)) alone.
   * mask_len: [n_images], the number re-masked per row (0 on the last step). */
  float *selected_probs;
  float *confidence;
  int *mask_len;
} ts_sampler_step_args;

/* Runs one step of Scheduler.step for every row.
 *
 * Per token: softmax over the codebook in fp32 in torch's order (subtract the max, exp,
 * sum in 8 interleaved lanes folded pairwise, multiply by 1 / sum). Unknown tokens get a
 * code from the draw source; with the RNG it is the first code c whose running sum of
 * exp (l_c - max), in code order, exceeds u times the same sum over all codes (inverse
 * CDF; one always does). Known tokens keep their value. Unless this is the last step,
 * cut_off is the mask_len-th smallest confidence of the row (0-based) and tokens whose
 * confidence is strictly below it are re-masked.
 *
 * Fails with TS_ERR_INVALID_ARG (the outputs are then unspecified) on bad sizes or step
 * indices, a known token outside [0, codebook_size), a recorded draw outside it, a token
 * whose logits are not finite (torch.multinomial rejects such probabilities), a
 * non-finite temperature, or a non-final step over a single token (the reference indexes
 * past the end); TS_ERR_NOMEM when scratch memory (O(n_tokens)) cannot be allocated. */
ts_status ts_sampler_step (const ts_sampler_step_args *a, ts_error *err);

/* ---- the two halves of a step ----
 *
 * ts_sampler_step is a per-token part, independent for every token (softmax statistics,
 * the draw, the confidence), followed by a per-image part that needs the whole grid
 * (mask_len, the cut-off, re-masking). The pipeline runs the first where the logits are,
 * through the backend's `sample` op (ts-backend.h: the CPU backend calls
 * ts_sampler_sample_tokens of backend/ts-sample-math.h, included above, the Vulkan backend
 * runs shaders/sample.comp), and the second on the host with ts_sampler_remask, so only
 * codes and confidences leave the device. */

typedef struct {
  int codebook_size;
  int n_tokens;
  int n_unknown; /* masked tokens on entry to the step */
  int32_t mask_token_id;
  const int32_t *codes;    /* [n_tokens]: the per-token part's codes */
  const float *confidence; /* [n_tokens]: its confidences (read unless the last step) */
  int step_index;
  int n_steps;
  ts_masking_schedule schedule;
  float starting_mask_ratio; /* as in ts_sampler_step_args; 0 means 1 */
  int32_t *prev_sample;      /* out [n_tokens]; may be the same array as codes */
} ts_sampler_remask_args;

/* The per-image part: mask_len from the schedule (returned in *mask_len when not NULL),
 * then prev_sample = codes with the tokens whose confidence is strictly below the
 * mask_len-th smallest set to mask_token_id (none on the last step). Fails with
 * TS_ERR_INVALID_ARG when a code lies outside [0, codebook_size) (a GPU writes -1 for a
 * token it could not sample: non-finite logits or a recorded draw outside the codebook),
 * TS_ERR_NOMEM when the O(n_tokens) selection copy cannot be allocated. Requires
 * 0 <= step_index < n_steps and n_tokens >= 2 unless it is the last step. */
ts_status ts_sampler_remask (const ts_sampler_remask_args *a, int *mask_len, ts_error *err);

#endif /* TS_SAMPLER_H */
