/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-sample — the per-token part of the MaskGIT sampler step (ts_sample_args) on the
 * CPU: both paths run the sampler's own reference, ts_sampler_sample_tokens, so the CPU
 * backend samples exactly as ts_sampler_step does (torch's summation order, libm's expf
 * and logf) and the Vulkan kernel (shaders/sample.comp) is tested against it.
 */
#include "backend/cpu/ts-cpu.h"
#include "stages/ts-sampler.h"

#include <limits.h>

ts_status
ts_cpu_sample_check (const ts_sample_args *a, ts_error *err)
{
  int64_t sizes[2], one = 1, dims[3];
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sample: args is NULL");
  sizes[0] = a->codebook_size, sizes[1] = a->n_tokens;
  if ((st = ts_cpu_check_sizes ("sample", "codebook_size,n_tokens", sizes, 2, err)) != TS_OK)
    return st;
  if (a->codebook_size < 1 || a->codebook_size > INT_MAX || a->n_tokens < 1
      || a->n_tokens > INT_MAX)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sample: codebook_size %lld and n_tokens "
                         "%lld must be 1 to %d", (long long) a->codebook_size,
                         (long long) a->n_tokens, INT_MAX);
  if (a->step_index > INT_MAX)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sample: step index %u is too large",
                         (unsigned) a->step_index);
  if (a->n_rows != 1 && a->n_rows != 2)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sample: n_rows is %d, not 1 or 2 (with "
                         "guidance)", a->n_rows);
  if (a->draw_codes.buf == NULL && a->draw_gumbel.buf != NULL)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sample: recorded Gumbel noise without "
                         "recorded codes");
  dims[0] = a->n_rows, dims[1] = a->codebook_size, dims[2] = a->n_tokens;
  if ((st = ts_cpu_check_dense ("sample", "logits", a->logits, 3, dims, err)) != TS_OK
      || (st = ts_cpu_check_region ("sample", "sample", a->sample, sizeof (int32_t), 1,
                                    &a->n_tokens, &one, err)) != TS_OK
      || (st = ts_cpu_check_region ("sample", "codes", a->codes, sizeof (int32_t), 1,
                                    &a->n_tokens, &one, err)) != TS_OK
      || (st = ts_cpu_check_dense ("sample", "confidence", a->confidence, 1, &a->n_tokens,
                                   err)) != TS_OK)
    return st;
  if (a->draw_codes.buf
      && ((st = ts_cpu_check_region ("sample", "draw_codes", a->draw_codes, sizeof (int32_t),
                                     1, &a->n_tokens, &one, err)) != TS_OK
          || (a->noise
              && (st = ts_cpu_check_dense ("sample", "draw_gumbel", a->draw_gumbel, 1,
                                           &a->n_tokens, err)) != TS_OK)))
    return st;
  return TS_OK;
}

ts_status
ts_cpu_sample (void *impl, const ts_sample_args *a, ts_error *err)
{
  ts_status st = ts_cpu_sample_check (a, err);
  ts_sampler_tokens_args ta;

  (void) impl;
  if (st != TS_OK)
    return st;
  ta = (ts_sampler_tokens_args) {
    .codebook_size = (int) a->codebook_size,
    .n_tokens = (int) a->n_tokens,
    .logits = ts_cpu_f32 (a->logits),
    .cond_logits = a->n_rows == 2 ? ts_cpu_f32 (a->logits) + a->codebook_size * a->n_tokens
                                  : NULL,
    .guidance_scale = a->guidance_scale,
    .sample = ts_cpu_i32 (a->sample),
    .mask_token_id = a->mask_token_id,
    .step_index = (int) a->step_index,
    .temperature = a->temperature,
    .noise = a->noise,
    .codes = (int32_t *) (void *) (a->codes.buf->data + a->codes.offset),
    .confidence = ts_cpu_f32 (a->confidence),
  };
  if (a->draw_codes.buf) {
    ta.draws.kind = TS_SAMPLER_DRAWS_RECORDED;
    ta.draws.multinomial = ts_cpu_i32 (a->draw_codes);
    ta.draws.gumbel = a->noise ? ts_cpu_f32 (a->draw_gumbel) : NULL;
  } else {
    ta.draws.kind = TS_SAMPLER_DRAWS_RNG;
    ta.draws.seed = a->seed;
    ta.draws.image_index = a->image_index;
  }
  return ts_sampler_sample_tokens (&ta, err);
}
