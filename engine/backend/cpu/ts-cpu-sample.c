/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-sample — the per-token part of the MaskGIT sampler step (ts_sample_args) on the
 * CPU: both paths run the sampler's own reference, ts_sampler_sample_tokens
 * (backend/ts-sample-math.c), so the CPU backend samples exactly as ts_sampler_step does
 * (torch's summation order, libm's expf and logf) and the Vulkan kernel
 * (shaders/sample.comp) is tested against it.
 */
#include "backend/cpu/ts-cpu.h"
#include "backend/ts-sample-math.h"

ts_status
ts_cpu_sample (void *impl, const ts_sample_args *a, ts_error *err)
{
  ts_sampler_tokens_args ta;

  (void) impl;
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
