/* SPDX-License-Identifier: MIT
 *
 * ts-sample-math — the per-token half of a MaskGIT sampler step (softmax statistics in
 * torch's order, the draw, the confidence), which both backends run: the CPU backend calls
 * ts_sampler_sample_tokens (backend/cpu/ts-cpu-sample.c), shaders/sample.comp mirrors it,
 * and the sampler stage (stages/ts-sampler.c) runs it for ts_sampler_step. See
 * ts-sample-math.h.
 *
 * Mirrors src/scheduler.py (Scheduler.step, gumbel_noise) and the CFG line of
 * src/pipeline.py in viiika/Meissonic (last changed in 9360def), as run by torch 1.13 on the
 * CPU.
 *
 * The logits arrive channel-major ([codebook][tokens] per image, the transformer's NCHW
 * layout). Rather than gather a strided column per token, each pass below sweeps the
 * codebook rows in order with the tokens in the inner loop, so memory is read
 * sequentially and scratch space is O(n_tokens) (the real model's logits are 8192 x 4096
 * floats per image). Per token the arithmetic is still sequential over the codebook.
 */
#include "backend/ts-sample-math.h"

#include "core/ts-common.h"
#include "core/ts-rng.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* torch's clamp(1e-20) on fp32 tensors: the bound is the double 1e-20 rounded to fp32. */
#define CLAMP_MIN 1e-20f

void
ts_sampler_cfg_combine (const float *uncond, const float *cond, float g, float *out, size_t n)
{
  /* uncond_logits + guidance_scale * (cond_logits - uncond_logits): three fp32 tensor ops,
   * each rounded. Separate statements keep compilers that contract within an expression
   * (clang's default) from fusing the multiply-add; GCC does not contract in ISO C mode. */
  for (size_t i = 0; i < n; i++) {
    float diff = cond[i] - uncond[i];
    float scaled = g * diff;
    out[i] = uncond[i] + scaled;
  }
}

float
ts_sampler_gumbel (float u)
{
  /* gumbel_noise: -log((-log(noise.clamp(1e-20))).clamp(1e-20)) */
  float inner = -logf (fmaxf (u, CLAMP_MIN));
  return -logf (fmaxf (inner, CLAMP_MIN));
}

/* torch's CPU softmax sums exp (l - max) in 8-lane vectors (code c into lane c % 8). */
#define SOFTMAX_LANES 8

/* Per-image scratch of the per-token part, O(n_tokens). */
typedef struct {
  float *max;       /* max logit per token */
  float *lanes;     /* [SOFTMAX_LANES][n_tokens] partial sums of exp (l - max) */
  float *sum;       /* the softmax denominator, reduced from lanes as torch does */
  float *cdf_sum;   /* sum of exp (l - max) in code order, for the inverse CDF */
  float *threshold; /* u * cdf_sum (RNG draws) */
  float *running;   /* running sum of the inverse-CDF scan */
  float *guided;    /* one codebook row of guided logits */
  int32_t *code;    /* chosen code per token */
  unsigned char *unknown;
} tokens_scratch;

static void
tokens_scratch_free (tokens_scratch *s)
{
  free (s->max);
  free (s->lanes);
  free (s->sum);
  free (s->cdf_sum);
  free (s->threshold);
  free (s->running);
  free (s->guided);
  free (s->code);
  free (s->unknown);
}

static ts_status
tokens_scratch_init (tokens_scratch *s, size_t n, bool guided, ts_error *err)
{
  memset (s, 0, sizeof *s);
  s->max = malloc (n * sizeof *s->max);
  s->lanes = malloc (SOFTMAX_LANES * n * sizeof *s->lanes);
  s->sum = malloc (n * sizeof *s->sum);
  s->cdf_sum = malloc (n * sizeof *s->cdf_sum);
  s->threshold = malloc (n * sizeof *s->threshold);
  s->running = malloc (n * sizeof *s->running);
  s->guided = guided ? malloc (n * sizeof *s->guided) : NULL;
  s->code = malloc (n * sizeof *s->code);
  s->unknown = malloc (n);
  if (!s->max || !s->lanes || !s->sum || !s->cdf_sum || !s->threshold || !s->running
      || (guided && !s->guided) || !s->code || !s->unknown) {
    tokens_scratch_free (s);
    return ts_error_set (err, TS_ERR_NOMEM, "sampler: out of memory for %zu tokens", n);
  }
  return TS_OK;
}

ts_status
ts_sampler_draws_check (const ts_sampler_draws *d, bool noise, ts_error *err)
{
  switch (d->kind) {
  case TS_SAMPLER_DRAWS_RNG:
    break;
  case TS_SAMPLER_DRAWS_RECORDED:
    if (!d->multinomial || (noise && !d->gumbel && !d->uniform))
      return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: recorded draws need "
                           "multinomial draws and gumbel or uniform noise");
    break;
  default:
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: unknown draw source %d",
                         (int) d->kind);
  }
  return TS_OK;
}

ts_status
ts_sampler_sizes_check (int n_images, int codebook_size, int n_tokens, ts_error *err)
{
  size_t n;

  if (n_images < 1 || codebook_size < 1 || n_tokens < 1)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: bad sizes (%d images, codebook "
                         "%d, %d tokens)", n_images, codebook_size, n_tokens);
  if (!ts_mul_size ((size_t) n_images, (size_t) codebook_size, &n)
      || !ts_mul_size (n, (size_t) n_tokens, &n) || n > SIZE_MAX / sizeof (float)
      || (size_t) n_tokens > SIZE_MAX / (SOFTMAX_LANES * sizeof (float)))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: logits size overflows");
  return TS_OK;
}

/* Codebook row c of the logits the step samples from: the input row, or with guidance the
 * row combined by ts_sampler_cfg_combine into scratch (the same fp32 operations whether
 * the combination is done here or beforehand over the whole tensor). */
static const float *
logits_row (const ts_sampler_tokens_args *a, int c, tokens_scratch *s)
{
  const size_t n = (size_t) a->n_tokens;
  const float *uncond = a->logits + (size_t) c * n;

  if (!a->cond_logits)
    return uncond;
  ts_sampler_cfg_combine (uncond, a->cond_logits + (size_t) c * n, a->guidance_scale,
                          s->guided, n);
  return s->guided;
}

/* Softmax statistics of one image: per token the max logit and two sums of exp (l - max).
 *
 * sum is the softmax denominator in torch 1.13's order (_vec_softmax_lastdim with AVX2
 * vectors): vec::reduce_all accumulates code c into lane c % 8, then vec_reduce_all folds
 * the 8 lanes by shuffles: lane i + lane i^4, then + lane i^2, then lane 0 + lane 1. With
 * it, 94 of the golden case's 99 sampled probabilities are bit-equal to torch's (the rest
 * differ by torch's Sleef expf against libm's), against 18 with a plain sequential sum.
 *
 * cdf_sum is the plain sum in code order, which the inverse-CDF scan repeats exactly. */
static ts_status
softmax_stats (const ts_sampler_tokens_args *a, int row, tokens_scratch *s, ts_error *err)
{
  const size_t n = (size_t) a->n_tokens;

  for (size_t t = 0; t < n; t++) {
    s->max[t] = -INFINITY;
    s->cdf_sum[t] = 0.0f;
  }
  memset (s->lanes, 0, SOFTMAX_LANES * n * sizeof *s->lanes);
  for (int c = 0; c < a->codebook_size; c++) {
    const float *l = logits_row (a, c, s);
    for (size_t t = 0; t < n; t++)
      if (l[t] > s->max[t])
        s->max[t] = l[t];
  }
  for (int c = 0; c < a->codebook_size; c++) {
    const float *l = logits_row (a, c, s);
    float *lane = s->lanes + (size_t) (c % SOFTMAX_LANES) * n;
    for (size_t t = 0; t < n; t++) {
      float e = expf (l[t] - s->max[t]);
      lane[t] += e;
      s->cdf_sum[t] += e;
    }
  }
  for (size_t t = 0; t < n; t++) {
    float v[SOFTMAX_LANES], w[SOFTMAX_LANES];
    for (int i = 0; i < SOFTMAX_LANES; i++)
      v[i] = s->lanes[(size_t) i * n + t] + s->lanes[(size_t) (i ^ 4) * n + t];
    for (int i = 0; i < SOFTMAX_LANES; i++)
      w[i] = v[i] + v[i ^ 2];
    s->sum[t] = w[0] + w[1];
  }
  for (size_t t = 0; t < n; t++)
    if (!isfinite (s->max[t]) || !isfinite (s->sum[t]) || !isfinite (s->cdf_sum[t]))
      return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: logits of token %zu of image "
                           "%d are not finite", t, row);
  return TS_OK;
}

/* Inverse-CDF draw for the unknown tokens from the Philox stream. The scan sums
 * exp (l - max) in the same order as cdf_sum, so its final value is cdf_sum[t] bit for
 * bit, and u * cdf_sum < cdf_sum for u < 1 (u <= 1 - 2^-24 and cdf_sum >= 1, the max
 * code's term): some code always crosses the threshold. */
static void
draw_rng (const ts_sampler_tokens_args *a, tokens_scratch *s)
{
  const size_t n = (size_t) a->n_tokens;
  size_t n_pending = 0;

  for (size_t t = 0; t < n; t++) {
    if (s->unknown[t]) {
      float u = ts_rng_uniform (a->draws.seed, a->draws.image_index, (uint32_t) a->step_index,
                                TS_RNG_PURPOSE_MULTINOMIAL, (uint32_t) t);
      s->threshold[t] = u * s->cdf_sum[t];
      s->running[t] = 0.0f;
      s->code[t] = -1;
      n_pending++;
    }
  }
  for (int c = 0; c < a->codebook_size && n_pending > 0; c++) {
    const float *l = logits_row (a, c, s);
    for (size_t t = 0; t < n; t++) {
      if (!s->unknown[t] || s->code[t] >= 0)
        continue;
      s->running[t] += expf (l[t] - s->max[t]);
      if (s->running[t] > s->threshold[t]) {
        s->code[t] = c;
        n_pending--;
      }
    }
  }
  TS_ASSERT (n_pending == 0);
}

static ts_status
draw_recorded (const ts_sampler_tokens_args *a, int row, tokens_scratch *s, ts_error *err)
{
  const size_t n = (size_t) a->n_tokens;
  const int32_t *draws = a->draws.multinomial;

  for (size_t t = 0; t < n; t++) {
    if (!s->unknown[t])
      continue;
    if (draws[t] < 0 || draws[t] >= a->codebook_size)
      return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: recorded draw %d for token "
                           "%zu of image %d is outside the codebook (%d codes)",
                           (int) draws[t], t, row, a->codebook_size);
    s->code[t] = draws[t];
  }
  return TS_OK;
}

static float
token_gumbel (const ts_sampler_tokens_args *a, size_t t)
{
  if (a->draws.kind == TS_SAMPLER_DRAWS_RECORDED && a->draws.gumbel)
    return a->draws.gumbel[t];
  if (a->draws.kind == TS_SAMPLER_DRAWS_RECORDED)
    return ts_sampler_gumbel (a->draws.uniform[t]);
  return ts_sampler_gumbel (ts_rng_uniform (a->draws.seed, a->draws.image_index,
                                            (uint32_t) a->step_index, TS_RNG_PURPOSE_GUMBEL,
                                            (uint32_t) t));
}

/* The per-token part for one image (`row` only names it in messages). */
static ts_status
sample_tokens (const ts_sampler_tokens_args *a, int row, tokens_scratch *s, ts_error *err)
{
  const size_t n = (size_t) a->n_tokens;
  ts_status st;

  /* Read the whole input grid first: the outputs may overwrite it. */
  for (size_t t = 0; t < n; t++) {
    s->unknown[t] = a->sample[t] == a->mask_token_id;
    s->code[t] = a->sample[t];
    if (!s->unknown[t] && (a->sample[t] < 0 || a->sample[t] >= a->codebook_size))
      return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: token %zu of image %d is %d, "
                           "neither a code below %d nor the mask id %d", t, row,
                           (int) a->sample[t], a->codebook_size, (int) a->mask_token_id);
  }

  if ((st = softmax_stats (a, row, s, err)) != TS_OK)
    return st;
  if (a->draws.kind == TS_SAMPLER_DRAWS_RNG)
    draw_rng (a, s);
  else if ((st = draw_recorded (a, row, s, err)) != TS_OK)
    return st;

  /* selected_probs: softmax output (exp (l - max) * (1 / sum)) of the chosen code, and
   * finfo(float32).max where the token was given; then
   * confidence = log(probs.clamp(1e-20)) + temperature * gumbel_noise(probs). */
  for (size_t t = 0; t < n; t++) {
    float p = FLT_MAX;
    if (s->unknown[t]) {
      size_t i = (size_t) s->code[t] * n + t;
      float l = a->logits[i];
      float inv_sum;
      if (a->cond_logits)
        ts_sampler_cfg_combine (&a->logits[i], &a->cond_logits[i], a->guidance_scale, &l, 1);
      inv_sum = 1.0f / s->sum[t];
      p = expf (l - s->max[t]) * inv_sum;
    }
    if (a->selected_probs)
      a->selected_probs[t] = p;
    if (a->confidence) {
      float conf = logf (fmaxf (p, CLAMP_MIN));
      if (a->noise) {
        float noise = a->temperature * token_gumbel (a, t);
        conf = conf + noise;
      }
      a->confidence[t] = conf;
    }
  }
  memcpy (a->codes, s->code, n * sizeof *a->codes);
  return TS_OK;
}

ts_status
ts_sampler_sample_tokens (const ts_sampler_tokens_args *a, ts_error *err)
{
  tokens_scratch s;
  ts_status st;

  if (!a || !a->logits || !a->sample || !a->codes)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: sampling needs logits, a sample "
                         "and a code grid");
  if ((st = ts_sampler_sizes_check (1, a->codebook_size, a->n_tokens, err)) != TS_OK)
    return st;
  if (a->step_index < 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: step index %d is negative",
                         a->step_index);
  if (!isfinite (a->temperature) || !isfinite (a->guidance_scale))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: temperature or guidance scale "
                         "is not finite");
  if ((st = ts_sampler_draws_check (&a->draws, a->noise, err)) != TS_OK)
    return st;
  if ((st = tokens_scratch_init (&s, (size_t) a->n_tokens, a->cond_logits != NULL, err)) != TS_OK)
    return st;
  st = sample_tokens (a, a->image, &s, err);
  tokens_scratch_free (&s);
  return st;
}
