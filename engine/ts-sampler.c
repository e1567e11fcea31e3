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
#include "ts-sampler.h"

#include "ts-common.h"
#include "ts-rng.h"

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
  /* at::native linspace_kernel (RangeFactoriesKernel.cpp) through cpu_serial_kernel_vec:
   * full blocks of 2 x 8 lanes use Vectorized<float>::arange (lane k = base + k * step),
   * the remainder the scalar lambda. */
  const int lanes = 8;
  float step, base;
  int halfway, vec_end, base_index, lane;

  TS_ASSERT (step_index >= 0 && step_index < n_steps);
  if (n_steps == 1)
    return start;
  step = (end - start) / (float) (n_steps - 1);
  halfway = n_steps / 2;
  vec_end = n_steps - n_steps % (2 * lanes);
  base_index = step_index < vec_end ? step_index - step_index % lanes : step_index;
  if (base_index < halfway)
    base = start + step * (float) base_index;
  else
    base = end - step * (float) (n_steps - base_index - 1);
  lane = step_index - base_index;
  if (lane == 0)
    return base;
  return base + (float) lane * step;
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

/* torch's CPU softmax sums exp (l - max) in 8-lane vectors (code c into lane c % 8). */
#define SOFTMAX_LANES 8

/* Per-row scratch, O(n_tokens). */
typedef struct {
  float *max;       /* max logit per token */
  float *lanes;     /* [SOFTMAX_LANES][n_tokens] partial sums of exp (l - max) */
  float *sum;       /* the softmax denominator, reduced from lanes as torch does */
  float *cdf_sum;   /* sum of exp (l - max) in code order, for the inverse CDF */
  float *threshold; /* u * cdf_sum (RNG draws) */
  float *running;   /* running sum of the inverse-CDF scan */
  float *conf;      /* selected probability, then confidence, per token */
  float *select;    /* a copy of conf that the selection reorders */
  int32_t *code;    /* chosen code per token */
  unsigned char *unknown;
} step_scratch;

static void
step_scratch_free (step_scratch *s)
{
  free (s->max);
  free (s->lanes);
  free (s->sum);
  free (s->cdf_sum);
  free (s->threshold);
  free (s->running);
  free (s->conf);
  free (s->select);
  free (s->code);
  free (s->unknown);
}

static ts_status
check_args (const ts_sampler_step_args *a, ts_error *err)
{
  size_t n;

  if (!a || !a->logits || !a->sample || !a->pred_original_sample || !a->prev_sample)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: step needs logits, sample and "
                         "both output grids");
  if (a->n_images < 1 || a->codebook_size < 1 || a->n_tokens < 1)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: bad sizes (%d images, codebook "
                         "%d, %d tokens)", a->n_images, a->codebook_size, a->n_tokens);
  if (!ts_mul_size ((size_t) a->n_images, (size_t) a->codebook_size, &n)
      || !ts_mul_size (n, (size_t) a->n_tokens, &n) || n > SIZE_MAX / sizeof (float)
      || (size_t) a->n_tokens > SIZE_MAX / (SOFTMAX_LANES * sizeof (float)))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: logits size overflows");
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
  switch (a->draws.kind) {
  case TS_SAMPLER_DRAWS_RNG:
    break;
  case TS_SAMPLER_DRAWS_RECORDED:
    if (!a->draws.multinomial
        || (a->step_index < a->n_steps - 1 && !a->draws.gumbel && !a->draws.uniform))
      return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: recorded draws need "
                           "multinomial draws and gumbel or uniform noise");
    break;
  default:
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: unknown draw source %d",
                         (int) a->draws.kind);
  }
  return TS_OK;
}

/* Softmax statistics of one row: per token the max logit and two sums of exp (l - max).
 *
 * sum is the softmax denominator in torch 1.13's order (_vec_softmax_lastdim with AVX2
 * vectors): vec::reduce_all accumulates code c into lane c % 8, then vec_reduce_all folds
 * the 8 lanes by shuffles: lane i + lane i^4, then + lane i^2, then lane 0 + lane 1. With
 * it, 94 of the golden case's 99 sampled probabilities are bit-equal to torch's (the rest
 * differ by torch's Sleef expf against libm's), against 18 with a plain sequential sum.
 *
 * cdf_sum is the plain sum in code order, which the inverse-CDF scan repeats exactly. */
static ts_status
row_softmax_stats (const ts_sampler_step_args *a, int row, const float *logits,
                   step_scratch *s, ts_error *err)
{
  const size_t n = (size_t) a->n_tokens;

  for (size_t t = 0; t < n; t++) {
    s->max[t] = -INFINITY;
    s->cdf_sum[t] = 0.0f;
  }
  memset (s->lanes, 0, SOFTMAX_LANES * n * sizeof *s->lanes);
  for (int c = 0; c < a->codebook_size; c++) {
    const float *l = logits + (size_t) c * n;
    for (size_t t = 0; t < n; t++)
      if (l[t] > s->max[t])
        s->max[t] = l[t];
  }
  for (int c = 0; c < a->codebook_size; c++) {
    const float *l = logits + (size_t) c * n;
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

/* Inverse-CDF draw for the unknown tokens of a row from the Philox stream. The scan sums
 * exp (l - max) in the same order as cdf_sum, so its final value is cdf_sum[t] bit for
 * bit, and u * cdf_sum < cdf_sum for u < 1 (u <= 1 - 2^-24 and cdf_sum >= 1, the max
 * code's term): some code always crosses the threshold. */
static void
row_draw_rng (const ts_sampler_step_args *a, int row, const float *logits, step_scratch *s)
{
  const size_t n = (size_t) a->n_tokens;
  const uint32_t image = a->draws.image_index + (uint32_t) row;
  size_t n_pending = 0;

  for (size_t t = 0; t < n; t++) {
    if (s->unknown[t]) {
      float u = ts_rng_uniform (a->draws.seed, image, (uint32_t) a->step_index,
                                TS_RNG_PURPOSE_MULTINOMIAL, (uint32_t) t);
      s->threshold[t] = u * s->cdf_sum[t];
      s->running[t] = 0.0f;
      s->code[t] = -1;
      n_pending++;
    }
  }
  for (int c = 0; c < a->codebook_size && n_pending > 0; c++) {
    const float *l = logits + (size_t) c * n;
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
row_draw_recorded (const ts_sampler_step_args *a, int row, step_scratch *s, ts_error *err)
{
  const size_t n = (size_t) a->n_tokens;
  const int32_t *draws = a->draws.multinomial + (size_t) row * n;

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
row_gumbel (const ts_sampler_step_args *a, int row, size_t t)
{
  const size_t i = (size_t) row * (size_t) a->n_tokens + t;
  float u, inner;

  if (a->draws.kind == TS_SAMPLER_DRAWS_RECORDED && a->draws.gumbel)
    return a->draws.gumbel[i];
  if (a->draws.kind == TS_SAMPLER_DRAWS_RECORDED)
    u = a->draws.uniform[i];
  else
    u = ts_rng_uniform (a->draws.seed, a->draws.image_index + (uint32_t) row,
                        (uint32_t) a->step_index, TS_RNG_PURPOSE_GUMBEL, (uint32_t) t);
  /* gumbel_noise: -log((-log(noise.clamp(1e-20))).clamp(1e-20)) */
  inner = -logf (fmaxf (u, CLAMP_MIN));
  return -logf (fmaxf (inner, CLAMP_MIN));
}

static ts_status
step_row (const ts_sampler_step_args *a, int row, step_scratch *s, ts_error *err)
{
  const size_t n = (size_t) a->n_tokens;
  const size_t off = (size_t) row * n;
  const float *logits = a->logits + (size_t) row * (size_t) a->codebook_size * n;
  const int32_t *sample = a->sample + off;
  int32_t *pred = a->pred_original_sample + off;
  int32_t *prev = a->prev_sample + off;
  int n_unknown = 0, mask_len;
  float cut_off;
  ts_status st;

  /* Read the whole input row first: the outputs may overwrite it. */
  for (size_t t = 0; t < n; t++) {
    s->unknown[t] = sample[t] == a->mask_token_id;
    s->code[t] = sample[t];
    if (s->unknown[t]) {
      n_unknown++;
    } else if (sample[t] < 0 || sample[t] >= a->codebook_size) {
      return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: token %zu of image %d is %d, "
                           "neither a code below %d nor the mask id %d", t, row,
                           (int) sample[t], a->codebook_size, (int) a->mask_token_id);
    }
  }

  st = row_softmax_stats (a, row, logits, s, err);
  if (st != TS_OK)
    return st;
  if (a->draws.kind == TS_SAMPLER_DRAWS_RNG) {
    row_draw_rng (a, row, logits, s);
  } else {
    st = row_draw_recorded (a, row, s, err);
    if (st != TS_OK)
      return st;
  }

  /* selected_probs: softmax output (exp (l - max) * (1 / sum)) of the chosen code, and
   * finfo(float32).max where the token was given. s->conf holds it until the log below. */
  for (size_t t = 0; t < n; t++) {
    if (s->unknown[t]) {
      float l = logits[(size_t) s->code[t] * n + t];
      float inv_sum = 1.0f / s->sum[t];
      s->conf[t] = expf (l - s->max[t]) * inv_sum;
    } else {
      s->conf[t] = FLT_MAX;
    }
    if (a->selected_probs)
      a->selected_probs[off + t] = s->conf[t];
    pred[t] = s->code[t];
  }

  mask_len = ts_sampler_mask_len_scaled (a->schedule, a->step_index, a->n_steps, a->n_tokens,
                                         n_unknown,
                                         a->starting_mask_ratio > 0.0f ? a->starting_mask_ratio : 1.0f);
  if (a->mask_len)
    a->mask_len[row] = mask_len;
  if (mask_len == 0) {
    for (size_t t = 0; t < n; t++)
      prev[t] = pred[t];
    return TS_OK;
  }

  /* confidence = log(probs.clamp(1e-20)) + temperature * gumbel_noise(probs) */
  for (size_t t = 0; t < n; t++) {
    float noise = a->temperature * row_gumbel (a, row, t);
    s->conf[t] = logf (fmaxf (s->conf[t], CLAMP_MIN)) + noise;
    if (a->confidence)
      a->confidence[off + t] = s->conf[t];
  }
  /* torch.sort + gather(mask_len): the mask_len-th smallest, found by selection on a copy. */
  memcpy (s->select, s->conf, n * sizeof *s->select);
  cut_off = ts_sampler_kth_smallest (s->select, n, (size_t) mask_len);
  for (size_t t = 0; t < n; t++)
    prev[t] = s->conf[t] < cut_off ? a->mask_token_id : pred[t];
  return TS_OK;
}

ts_status
ts_sampler_step (const ts_sampler_step_args *a, ts_error *err)
{
  step_scratch s = { 0 };
  size_t n;
  ts_status st;

  st = check_args (a, err);
  if (st != TS_OK)
    return st;
  n = (size_t) a->n_tokens;
  s.max = malloc (n * sizeof *s.max);
  s.lanes = malloc (SOFTMAX_LANES * n * sizeof *s.lanes);
  s.sum = malloc (n * sizeof *s.sum);
  s.cdf_sum = malloc (n * sizeof *s.cdf_sum);
  s.threshold = malloc (n * sizeof *s.threshold);
  s.running = malloc (n * sizeof *s.running);
  s.conf = malloc (n * sizeof *s.conf);
  s.select = malloc (n * sizeof *s.select);
  s.code = malloc (n * sizeof *s.code);
  s.unknown = malloc (n);
  if (!s.max || !s.lanes || !s.sum || !s.cdf_sum || !s.threshold || !s.running || !s.conf
      || !s.select || !s.code || !s.unknown) {
    st = ts_error_set (err, TS_ERR_NOMEM, "sampler: out of memory for %zu tokens", n);
    goto fail;
  }
  for (int row = 0; row < a->n_images; row++) {
    st = step_row (a, row, &s, err);
    if (st != TS_OK)
      goto fail;
  }
  st = TS_OK;
fail:
  step_scratch_free (&s);
  return st;
}
