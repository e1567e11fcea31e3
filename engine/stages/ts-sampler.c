/* SPDX-License-Identifier: MIT
 *
 * ts-sampler — the MaskGIT schedule and scheduler step on the CPU. See ts-sampler.h.
 *
 * Mirrors src/scheduler.py (Scheduler.set_timesteps, Scheduler.step, mask_by_random_topk)
 * in viiika/Meissonic (last changed in 9360def), as run by torch 1.13 on the CPU. The
 * per-token half of a step (softmax, draw, confidence) is backend/ts-sample-math.c, which
 * the backends' `sample` op runs too; this file adds the schedule and the re-masking.
 */
#include "stages/ts-sampler.h"

#include "core/ts-common.h"

#include <math.h>
#include <string.h>

int
ts_sampler_timestep (int step_index, int n_steps)
{
  TS_ASSERT (step_index >= 0 && step_index < n_steps);
  return n_steps - 1 - step_index;
}

float
ts_sampler_mask_ratio (ts_masking_schedule schedule, int step_index, int n_steps)
{
  /* math.pi enters torch's fp32 multiply as a wrapped scalar cast to fp32. */
  const float pi_f32 = 3.14159265358979323846f;
  float ratio, angle;

  TS_ASSERT (step_index >= 0 && step_index < n_steps);
  /* (step_idx + 1) / len(timesteps): int64 tensor / int promotes to fp32 and divides. */
  ratio = (float) (step_index + 1) / (float) n_steps;
  switch (schedule) {
  case TS_MASKING_COSINE:
    angle = ratio * pi_f32;
    angle = angle / 2.0f;
    /* torch takes an fp32 cosine (Sleef, 1 ulp); the double cosine rounded once to fp32
     * is the correctly rounded value, which agrees with every golden table entry
     * (including ratio 2/3 at seq_len 256 and 1024, where 1 ulp changes mask_len). */
    return (float) cos ((double) angle);
  case TS_MASKING_LINEAR:
    return 1.0f - ratio;
  }
  TS_ASSERT (!"unknown ts_masking_schedule");
  return 0.0f;
}

int
ts_sampler_mask_len (ts_masking_schedule schedule, int step_index, int n_steps, int seq_len,
                     int n_unknown)
{
  return ts_sampler_mask_len_scaled (schedule, step_index, n_steps, seq_len, n_unknown, 1.0f);
}

int
ts_sampler_mask_len_scaled (ts_masking_schedule schedule, int step_index, int n_steps,
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

static ts_status
check_args (const ts_sampler_step_args *a, ts_error *err)
{
  ts_status st;

  if (!a || !a->logits || !a->sample || !a->pred_original_sample || !a->prev_sample)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: step needs logits, sample and "
                         "both output grids");
  if ((st = ts_sampler_sizes_check (a->n_images, a->codebook_size, a->n_tokens, err)) != TS_OK)
    return st;
  if (a->n_steps < 1 || a->step_index < 0 || a->step_index >= a->n_steps)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: step index %d out of range for "
                         "%d steps", a->step_index, a->n_steps);
  if (a->schedule != TS_MASKING_COSINE && a->schedule != TS_MASKING_LINEAR)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: unknown schedule %d",
                         (int) a->schedule);
  if (!isfinite (a->temperature))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: temperature is not finite");
  if (a->step_index < a->n_steps - 1 && a->n_tokens < 2)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sampler: re-masking needs at least 2 "
                         "tokens, got %d", a->n_tokens);
  return ts_sampler_draws_check (&a->draws, a->step_index < a->n_steps - 1, err);
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
step_row (const ts_sampler_step_args *a, int row, float *confidence, ts_error *err)
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
    .image = row,
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
  if ((st = ts_sampler_sample_tokens (&ta, err)) != TS_OK)
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
  float *confidence;
  ts_status st;

  if ((st = check_args (a, err)) != TS_OK)
    return st;
  confidence = malloc ((size_t) a->n_tokens * sizeof *confidence);
  if (!confidence)
    return ts_error_set (err, TS_ERR_NOMEM, "sampler: out of memory for %d tokens",
                         a->n_tokens);
  for (int row = 0; row < a->n_images && st == TS_OK; row++)
    st = step_row (a, row, confidence, err);
  free (confidence);
  return st;
}
