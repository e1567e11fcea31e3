/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-act — the activations of the three networks: SiLU (VQ-VAE, timestep and
 * conditioning MLPs), GELU with the tanh approximation (transformer feed-forwards) and
 * exact erf GELU (CLIP MLP). The formulas are torch's: silu(x) = x / (1 + exp(-x)),
 * gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), gelu(x) =
 * 0.5 x (1 + erf(x / sqrt(2))), evaluated in fp32 with libm's expf/tanhf/erff on the
 * reference path. The fast path splits rows over the pool and runs SiLU and tanh-GELU
 * through the vector loops of ts-cpu-simd.c (erf-GELU, used only by CLIP, stays on erff).
 */
#include "backend/cpu/ts-cpu.h"

#include <math.h>

static float
act_one (ts_act_kind kind, float x)
{
  switch (kind) {
  case TS_ACT_SILU:
    return x / (1.0f + expf (-x));
  case TS_ACT_GELU_TANH: {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    float cube = x * x * x;
    return 0.5f * x * (1.0f + tanhf (k * (x + 0.044715f * cube)));
  }
  case TS_ACT_GELU_ERF:
    return 0.5f * x * (1.0f + erff (x * 0.7071067811865476f));
  }
  return x;
}

/* Rows [r0, r1). */
static void
act_rows (const ts_act_args *a, int64_t r0, int64_t r1)
{
  const float *x = ts_cpu_f32 (a->x);
  float *y = ts_cpu_f32 (a->y);

  for (int64_t r = r0; r < r1; r++)
    for (int64_t c = 0; c < a->cols; c++)
      y[r * a->ldy + c] = act_one (a->kind, x[r * a->ldx + c]);
}

static void
act_task (void *data, int64_t begin, int64_t end, int thread)
{
  const ts_act_args *a = data;

  (void) thread;
  for (int64_t r = begin; r < end; r++) {
    const float *xr = ts_cpu_f32 (a->x) + r * a->ldx;
    float *yr = ts_cpu_f32 (a->y) + r * a->ldy;
    if (a->kind == TS_ACT_SILU)
      ts_cpu_silu (xr, yr, a->cols);
    else if (a->kind == TS_ACT_GELU_TANH)
      ts_cpu_gelu_tanh (xr, yr, a->cols);
    else
      act_rows (a, r, r + 1);
  }
}

ts_status
ts_cpu_act (void *impl, const ts_act_args *a, ts_error *err)
{
  ts_cpu *cpu = impl;

  (void) err; /* cannot fail: the arguments were checked above the backends */
  if (cpu->reference)
    act_rows (a, 0, a->rows);
  else
    ts_cpu_parallel_for (cpu, a->rows, 1 + 4096 / (a->cols + 1), act_task, (void *) a);
  return TS_OK;
}
