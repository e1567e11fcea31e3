/* SPDX-License-Identifier: MIT
 *
 * ts-sampler — the MaskGIT schedule and scheduler step on the CPU. See ts-sampler.h.
 *
 * Mirrors src/scheduler.py (Scheduler.set_timesteps, Scheduler.step, mask_by_random_topk,
 * gumbel_noise) and the CFG line of src/pipeline.py in viiika/Meissonic (last changed in
 * 9360def), as run by torch 1.13 on the CPU.
 *
 * The logits arrive channel-major ([codebook][tokens] per image, the transformer's NCHW
 * layout). Rather than gather a strided column per token, each pass below sweeps the
 * codebook rows in order with the tokens in the inner loop, so memory is read
 * sequentially and scratch space is O(n_tokens) (the real model's logits are 8192 x 4096
 * floats per image). Per token the arithmetic is still sequential over the codebook.
 */
#include "stages/ts-sampler.h"

#include "core/ts-common.h"
#include "core/ts-rng.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* torch's clamp(1e-20) on fp32 tensors: the bound is the double 1e-20 rounded to fp32. */
#define CLAMP_MIN 1e-20f

ts_status
ts_sampler_schedule_from_name (const char *name, ts_sampler_schedule *out, ts_error *err)
{
  if (name && strcmp (name, "cosine") == 0) {
    *out = TS_SAMPLER_SCHEDULE_COSINE;
    return TS_OK;
  }
  if (name && strcmp (name, "linear") == 0) {
    *out = TS_SAMPLER_SCHEDULE_LINEAR;
    return TS_OK;
  }
  return ts_error_set (err, TS_ERR_UNSUPPORTED,
                       "sampler: unknown masking_schedule '%s' (expected cosine or linear)",
                       name ? name : "(null)");
}

int
ts_sampler_timestep (int step_index, int n_steps)
{
  TS_ASSERT (step_index >= 0 && step_index < n_steps);
  return n_steps - 1 - step_index;
}

float
ts_sampler_mask_ratio (ts_sampler_schedule schedule, int step_index, int n_steps)
{
  /* math.pi enters torch's fp32 multiply as a wrapped scalar cast to fp32. */
  const float pi_f32 = 3.14159265358979323846f;
  float ratio, angle;

  TS_ASSERT (step_index >= 0 && step_index < n_steps);
  /* (step_idx + 1) / len(timesteps): int64 tensor / int promotes to fp32 and divides. */
  ratio = (float) (step_index + 1) / (float) n_steps;
  switch (schedule) {
  case TS_SAMPLER_SCHEDULE_COSINE:
    angle = ratio * pi_f32;
    angle = angle / 2.0f;
    /* torch takes an fp32 cosine (Sleef, 1 ulp); the double cosine rounded once to fp32
     * is the correctly rounded value, which agrees with every golden table entry
     * (including ratio 2/3 at seq_len 256 and 1024, where 1 ulp changes mask_len). */
    return (float) cos ((double) angle);
  case TS_SAMPLER_SCHEDULE_LINEAR:
    return 1.0f - ratio;
  }
  TS_ASSERT (!"unknown ts_sampler_schedule");
  return 0.0f;
}

int
ts_sampler_mask_len (ts_sampler_schedule schedule, int step_index, int n_steps, int seq_len,
                     int n_unknown)
{
  return ts_sampler_mask_len_scaled (schedule, step_index, n_steps, seq_len, n_unknown, 1.0f);
}

int
ts_sampler_mask_len_scaled (ts_sampler_schedule schedule, int step_index, int n_steps,
                            int seq_len, int n_unknown, float starting_mask_ratio)
{
  float product, mask_ratio;
  int mask_len;

  TS_ASSERT (seq_len > 0);
  if (step_index == n_steps - 1)
    return 0;
  /* mask_ratio = starting_mask_ratio * mask_ratio (inpainting), then
   * (seq_len * mask_ratio).floor(), each an fp32 tensor operation. */
  mask_ratio = ts_sampler_mask_ratio (schedule, step_index, n_steps) * starting_mask_ratio;
  product = (float) seq_len * mask_ratio;
  mask_len = (int) floorf (product);
  if (n_unknown - 1 < mask_len)
    mask_len = n_unknown - 1;
  if (mask_len < 1)
    mask_len = 1;
  return mask_len;
}

float
ts_sampler_temperature (float start, float end, int step_index, int n_steps)
{
  /* Mirrors linspace_kernel in aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp (torch
   * 1.13) as the AVX2 build of that file runs it: torch 1.13 dispatches AVX2 kernels on
   * AVX-512 hosts too (AVX-512 is opt-in since pytorch#80253), so Vectorized<float> has 8
   * lanes on every host the golden set came from. cpu_serial_kernel_vec (vectorized_loop
   * in native/cpu/Loops.h) writes full blocks of 2 x 8 lanes with the vector lambda
   * (Vectorized<float>::arange in cpu/vec/vec256/vec256_float.h) and the remaining
   * n % 16 elements with the scalar one.
   *
   * The per-capability kernel files are compiled with -mavx2 -mfma, and GCC contracts
   * C++ across statements, so which operations fuse depends on the generated code. In
   * Debian's libtorch_cpu.so 1.13.1 (and GCC 12 on a replica of the loop):
   * - the scalar lambda's start + step * idx and end - step * (steps - idx - 1), and the
   *   same expressions that build each vector's base (lane 0), are one vfmadd/vfnmadd:
   *   a single rounding, hence fmaf;
   * - the other lanes, base + k * step, are not fused: k * step does not depend on the
   *   idx < halfway branch, so it is computed (and rounded) once ahead of it, and GCC
   *   only fuses a multiply with adds in its own basic block; the add is a separate
   *   vaddss after the branch. So lane k is base + round (k * step), two roundings.
   *   Separate statements keep clang, which contracts within an expression, from
   *   fusing it.
   * The golden scheduler tables (64, 48 and 16 steps reach the vector path) rule out
   * fused lanes and 16-lane vectors; fmaf in the scalar path gives linspace (2, 0, 10)[3]
   * = 0x3faaaaab where two roundings give 0x3faaaaaa. */
  const int lanes = 8;
  float step, base, offset;
  int halfway, vec_end, base_index, lane;

  TS_ASSERT (step_index >= 0 && step_index < n_steps);
  if (n_steps == 1)
    return start;
  step = (end - start) / (float) (n_steps - 1);
  halfway = n_steps / 2;
  vec_end = n_steps - n_steps % (2 * lanes);
  base_index = step_index < vec_end ? step_index - step_index % lanes : step_index;
  if (base_index < halfway)
    base = fmaf (step, (float) base_index, start);
  else
    base = fmaf (-step, (float) (n_steps - base_index - 1), end);
  lane = step_index - base_index;
  if (lane == 0)
    return base;
  offset = (float) lane * step;
  return base + offset;
}

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

static inline void
swap_f32 (float *a, float *b)
{
  float t = *a;
  *a = *b;
  *b = t;
}

float
ts_sampler_kth_smallest (float *a, size_t n, size_t k)
{
  /* Hoare's FIND with a median-of-three pivot: partition [lo, hi] around a value taken
   * from it, keep the side that holds index k. */
  ptrdiff_t lo = 0, hi = (ptrdiff_t) n - 1, kk = (ptrdiff_t) k;

  TS_ASSERT (k < n);
  while (lo < hi) {
    ptrdiff_t mid = lo + (hi - lo) / 2, i = lo, j = hi;
    float pivot;

    if (a[mid] < a[lo])
      swap_f32 (&a[mid], &a[lo]);
    if (a[hi] < a[lo])
      swap_f32 (&a[hi], &a[lo]);
    if (a[hi] < a[mid])
      swap_f32 (&a[hi], &a[mid]);
    pivot = a[mid];
    do {
      while (a[i] < pivot)
        i++;
      while (pivot < a[j])
        j--;
      if (i <= j) {
        swap_f32 (&a[i], &a[j]);
        i++;
        j--;
      }
    } while (i <= j);
    /* Now a[lo..j] <= pivot <= a[i..hi] and everything strictly between equals pivot. */
    if (j < kk)
      lo = i;
    if (kk < i)
      hi = j;
  }
  return a[kk];
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

static ts_status
check_draws (const ts_sampler_draws *d, bool noise, ts_error *err)
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

/* Sizes shared by both entry points: the logits of one image must be addressable and the
 * lane scratch must not overflow. */
static ts_status
check_sizes (int n_images, int codebook_size, int n_tokens, ts_error *err)
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

static ts_status
check_args (const ts_sampler_step_args *a, ts_error *err)
{
  ts_status st;

  if (!a || !a->logits || !a->sample || !a->pred_original_sample || !a->prev_sample)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: step needs logits, sample and "
                         "both output grids");
  if ((st = check_sizes (a->n_images, a->codebook_size, a->n_tokens, err)) != TS_OK)
    return st;
  if (a->n_steps < 1 || a->step_index < 0 || a->step_index >= a->n_steps)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: step index %d out of range for "
                         "%d steps", a->step_index, a->n_steps);
  if (a->schedule != TS_SAMPLER_SCHEDULE_COSINE && a->schedule != TS_SAMPLER_SCHEDULE_LINEAR)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: unknown schedule %d",
                         (int) a->schedule);
  if (!isfinite (a->temperature))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: temperature is not finite");
  if (a->step_index < a->n_steps - 1 && a->n_tokens < 2)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: re-masking needs at least 2 "
                         "tokens, got %d", a->n_tokens);
  return check_draws (&a->draws, a->step_index < a->n_steps - 1, err);
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
  if ((st = check_sizes (1, a->codebook_size, a->n_tokens, err)) != TS_OK)
    return st;
  if (a->step_index < 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: step index %d is negative",
                         a->step_index);
  if (!isfinite (a->temperature) || !isfinite (a->guidance_scale))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: temperature or guidance scale "
                         "is not finite");
  if ((st = check_draws (&a->draws, a->noise, err)) != TS_OK)
    return st;
  if ((st = tokens_scratch_init (&s, (size_t) a->n_tokens, a->cond_logits != NULL, err)) != TS_OK)
    return st;
  st = sample_tokens (a, 0, &s, err);
  tokens_scratch_free (&s);
  return st;
}

ts_status
ts_sampler_remask (const ts_sampler_remask_args *a, int *mask_len_out, ts_error *err)
{
  const size_t n = (size_t) a->n_tokens;
  float *select, cut_off;
  int mask_len;

  for (size_t t = 0; t < n; t++)
    if (a->codes[t] < 0 || a->codes[t] >= a->codebook_size)
      return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: token %zu has no code below %d "
                           "(got %d: its logits are not finite or a recorded draw is outside "
                           "the codebook)", t, a->codebook_size, (int) a->codes[t]);
  mask_len = ts_sampler_mask_len_scaled (a->schedule, a->step_index, a->n_steps, a->n_tokens,
                                         a->n_unknown,
                                         a->starting_mask_ratio > 0.0f ? a->starting_mask_ratio
                                                                       : 1.0f);
  if (mask_len_out)
    *mask_len_out = mask_len;
  if (mask_len == 0) {
    memmove (a->prev_sample, a->codes, n * sizeof *a->prev_sample);
    return TS_OK;
  }
  /* torch.sort + gather(mask_len): the mask_len-th smallest, found by selection on a copy. */
  select = malloc (n * sizeof *select);
  if (!select)
    return ts_error_set (err, TS_ERR_NOMEM, "sampler: out of memory for %zu tokens", n);
  memcpy (select, a->confidence, n * sizeof *select);
  cut_off = ts_sampler_kth_smallest (select, n, (size_t) mask_len);
  free (select);
  for (size_t t = 0; t < n; t++)
    a->prev_sample[t] = a->confidence[t] < cut_off ? a->mask_token_id : a->codes[t];
  return TS_OK;
}

static ts_status
step_row (const ts_sampler_step_args *a, int row, tokens_scratch *s, float *confidence,
          ts_error *err)
{
  const size_t n = (size_t) a->n_tokens;
  const size_t off = (size_t) row * n;
  ts_sampler_tokens_args ta = {
    .codebook_size = a->codebook_size,
    .n_tokens = a->n_tokens,
    .logits = a->logits + (size_t) row * (size_t) a->codebook_size * n,
    .sample = a->sample + off,
    .mask_token_id = a->mask_token_id,
    .step_index = a->step_index,
    .temperature = a->temperature,
    .noise = a->step_index < a->n_steps - 1,
    .draws = a->draws,
    .codes = a->pred_original_sample + off,
    .selected_probs = a->selected_probs ? a->selected_probs + off : NULL,
    .confidence = confidence,
  };
  ts_sampler_remask_args ra = {
    .codebook_size = a->codebook_size,
    .n_tokens = a->n_tokens,
    .mask_token_id = a->mask_token_id,
    .codes = a->pred_original_sample + off,
    .confidence = confidence,
    .step_index = a->step_index,
    .n_steps = a->n_steps,
    .schedule = a->schedule,
    .starting_mask_ratio = a->starting_mask_ratio,
    .prev_sample = a->prev_sample + off,
  };
  int mask_len;
  ts_status st;

  for (size_t t = 0; t < n; t++)
    ra.n_unknown += a->sample[off + t] == a->mask_token_id;
  ta.draws.image_index += (uint32_t) row;
  if (a->draws.kind == TS_SAMPLER_DRAWS_RECORDED) {
    ta.draws.multinomial += off;
    if (ta.draws.gumbel)
      ta.draws.gumbel += off;
    if (ta.draws.uniform)
      ta.draws.uniform += off;
  }
  if ((st = sample_tokens (&ta, row, s, err)) != TS_OK)
    return st;
  if ((st = ts_sampler_remask (&ra, &mask_len, err)) != TS_OK)
    return st;
  if (a->mask_len)
    a->mask_len[row] = mask_len;
  if (a->confidence)
    memcpy (a->confidence + off, confidence, n * sizeof *confidence);
  return TS_OK;
}

ts_status
ts_sampler_step (const ts_sampler_step_args *a, ts_error *err)
{
  tokens_scratch s;
  float *confidence;
  ts_status st;

  if ((st = check_args (a, err)) != TS_OK)
    return st;
  confidence = malloc ((size_t) a->n_tokens * sizeof *confidence);
  if (!confidence)
    return ts_error_set (err, TS_ERR_NOMEM, "sampler: out of memory for %d tokens",
                         a->n_tokens);
  if ((st = tokens_scratch_init (&s, (size_t) a->n_tokens, false, err)) != TS_OK) {
    free (confidence);
    return st;
  }
  for (int row = 0; row < a->n_images && st == TS_OK; row++)
    st = step_row (a, row, &s, confidence, err);
  tokens_scratch_free (&s);
  free (confidence);
  return st;
}
