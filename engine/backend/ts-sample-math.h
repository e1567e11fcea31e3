/* SPDX-License-Identifier: MIT
 *
 * ts-sample-math — the per-token half of a MaskGIT sampler step, which sits below the
 * backends because both run it: for every token of one image, softmax over the codebook in
 * torch's order, a code drawn for a masked token (from the Philox stream or from recorded
 * draws), and the confidence the re-masking ranks by. The CPU backend's `sample` op calls
 * ts_sampler_sample_tokens (backend/cpu/ts-cpu-sample.c), the Vulkan backend's
 * shaders/sample.comp mirrors it, and the sampler stage (stages/ts-sampler.h, which
 * includes this header) builds ts_sampler_step from it and the per-image re-masking. The
 * names keep the sampler's prefix: they are that stage's arithmetic, placed where the
 * backends may use it.
 *
 * Mirrors src/scheduler.py (Scheduler.step, gumbel_noise) and the CFG line of
 * src/pipeline.py of the reference (viiika/Meissonic, files last changed in 9360def), run
 * by torch 1.13 on the CPU in fp32; README.md of the golden set, quirk 10, lists the rules.
 *
 * Thread-safety: every function is reentrant; distinct calls may run concurrently.
 */
#ifndef TS_SAMPLE_MATH_H
#define TS_SAMPLE_MATH_H

#include "tessera.h"

/* Classifier-free guidance as src/pipeline.py writes it, elementwise in fp32:
 * out = uncond + g * (cond - uncond), rounded after each operation (no fused multiply-add).
 * out may alias either input. */
void ts_sampler_cfg_combine (const float *uncond, const float *cond, float g, float *out,
                             size_t n);

typedef enum {
  /* ts-rng's Philox stream: for token t of row r the multinomial uniform is
   * ts_rng_uniform (seed, image_index + r, step_index, TS_RNG_PURPOSE_MULTINOMIAL, t), the
   * Gumbel uniform the same with TS_RNG_PURPOSE_GUMBEL. Draws are made only where they are
   * used (the multinomial for masked tokens, the Gumbel noise on steps that re-mask); the
   * counter layout makes skipping free. */
  TS_SAMPLER_DRAWS_RNG,
  /* Draws recorded from the reference, indexed [row * n_tokens + t]. */
  TS_SAMPLER_DRAWS_RECORDED,
} ts_sampler_draws_kind;

typedef struct {
  ts_sampler_draws_kind kind;
  /* TS_SAMPLER_DRAWS_RNG */
  uint64_t seed;
  uint32_t image_index; /* the stream's image index of row 0 */
  /* TS_SAMPLER_DRAWS_RECORDED (borrowed). multinomial: the code torch.multinomial drew for
   * every token (values at unmasked tokens are ignored, all must be in
   * [0, codebook_size)). gumbel: the Gumbel noise; when NULL it is computed from uniform
   * with the reference's -log (max (-log (max (u, 1e-20)), 1e-20)). Neither is read on
   * the last step. */
  const int32_t *multinomial;
  const float *gumbel;
  const float *uniform;
} ts_sampler_draws;

/* Fails with TS_ERR_INVALID_ARG, naming the problem, when a draw source of that kind lacks
 * what a step with (or without) noise reads, or its kind is unknown. */
ts_status ts_sampler_draws_check (const ts_sampler_draws *d, bool noise, ts_error *err);

/* Fails with TS_ERR_INVALID_ARG unless n_images, codebook_size and n_tokens are positive,
 * the logits of n_images images are addressable and the per-token scratch cannot
 * overflow. */
ts_status ts_sampler_sizes_check (int n_images, int codebook_size, int n_tokens,
                                  ts_error *err);

/* The reference's Gumbel noise from a uniform draw u:
 * -log (max (-log (max (u, 1e-20)), 1e-20)) in fp32. */
float ts_sampler_gumbel (float u);

typedef struct {
  int codebook_size;
  int n_tokens;
  /* [codebook_size][n_tokens] of one image, laid out as ts_sampler_step_args.logits. */
  const float *logits;
  /* NULL, or the conditional logits of the same image and layout: the step then samples
   * from ts_sampler_cfg_combine (logits, cond_logits, guidance_scale), combined as it reads
   * them (bit for bit the same as combining beforehand). */
  const float *cond_logits;
  float guidance_scale;
  const int32_t *sample; /* [n_tokens]; mask_token_id marks unknown tokens */
  int32_t mask_token_id;
  int step_index;        /* the RNG stream's step */
  float temperature;
  bool noise;            /* add temperature * Gumbel noise (every step but the last) */
  /* As in ts_sampler_step_args with image_index naming this image and the recorded arrays
   * indexed [t]. */
  ts_sampler_draws draws;
  int image; /* names the image in messages (ts_sampler_step's row; 0 otherwise) */

  /* Outputs [n_tokens]; codes may be the same array as sample. codes: the sampled code at
   * unknown tokens, the input elsewhere. selected_probs (optional) and confidence
   * (optional) as in ts_sampler_step_args, confidence with the noise only when `noise`. */
  int32_t *codes;
  float *selected_probs;
  float *confidence;
} ts_sampler_tokens_args;

/* The per-token part of ts_sampler_step for one image, with its arithmetic. Fails with
 * TS_ERR_INVALID_ARG on bad sizes, a known token outside [0, codebook_size), a recorded
 * draw outside it, non-finite logits, temperature or guidance scale; TS_ERR_NOMEM when
 * scratch memory (O(n_tokens)) cannot be allocated. */
ts_status ts_sampler_sample_tokens (const ts_sampler_tokens_args *a, ts_error *err);

#endif /* TS_SAMPLE_MATH_H */
