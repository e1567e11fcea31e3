/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-group-norm — nn.GroupNorm over NCHW (biased variance, per-channel affine) with the
 * SiLU that follows it in every VQ-VAE ResnetBlock2D and before conv_out fused in. As in
 * ts-cpu-norm, the group statistics are accumulated in double on both paths so the result
 * is correctly rounded fp32 whatever the group size (c/groups * h * w can be large). The
 * fast path spreads the (batch, group) pairs over the pool and sums in double lanes.
 */
#include "ts-cpu.h"

#include <math.h>

ts_status
ts_cpu_group_norm_check (const ts_group_norm_args *a, ts_error *err)
{
  int64_t dims[3];
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "group_norm: args is NULL");
  dims[0] = a->batch, dims[1] = a->c, dims[2] = a->hw;
  if ((st = ts_cpu_check_sizes ("group_norm", "batch,c,hw", dims, 3, err)) != TS_OK)
    return st;
  if (a->groups < 1 || a->c % a->groups != 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "group_norm: %d groups do not divide %lld channels", a->groups,
                         (long long) a->c);
  if ((st = ts_cpu_check_dense ("group_norm", "x", a->x, 3, dims, err)) != TS_OK
      || (st = ts_cpu_check_dense ("group_norm", "y", a->y, 3, dims, err)) != TS_OK)
    return st;
  if (a->weight && (st = ts_cpu_check_weight ("group_norm", "weight", a->weight, a->c, err)) != TS_OK)
    return st;
  if (a->bias && (st = ts_cpu_check_weight ("group_norm", "bias", a->bias, a->c, err)) != TS_OK)
    return st;
  return TS_OK;
}

/* Normalises group `g` of batch entry `b` (x and y may alias). */
static void
group_norm_one (const ts_group_norm_args *a, int64_t b, int64_t g)
{
  int64_t cg = a->c / a->groups, n = cg * a->hw;
  const float *x = ts_cpu_f32 (a->x) + (b * a->c + g * cg) * a->hw;
  float *y = ts_cpu_f32 (a->y) + (b * a->c + g * cg) * a->hw;
  double mean = 0.0, var = 0.0, rstd;

  for (int64_t i = 0; i < n; i++)
    mean += x[i];
  mean /= (double) n;
  for (int64_t i = 0; i < n; i++)
    var += ((double) x[i] - mean) * ((double) x[i] - mean);
  var /= (double) n;
  rstd = 1.0 / sqrt (var + (double) a->eps);

  for (int64_t ci = 0; ci < cg; ci++) {
    int64_t ch = g * cg + ci;
    float w = a->weight ? ts_cpu_weight_get (a->weight, ch) : 1.0f;
    float bias = a->bias ? ts_cpu_weight_get (a->bias, ch) : 0.0f;
    for (int64_t i = ci * a->hw; i < (ci + 1) * a->hw; i++) {
      float v = (float) (((double) x[i] - mean) * rstd) * w + bias;
      y[i] = a->silu ? v / (1.0f + expf (-v)) : v;
    }
  }
}

typedef struct {
  const ts_group_norm_args *a;
  const float *w, *b;
} group_norm_job;

static void
group_norm_task (void *data, int64_t begin, int64_t end, int thread)
{
  const group_norm_job *job = data;
  const ts_group_norm_args *a = job->a;
  int64_t cg = a->c / a->groups, n = cg * a->hw;

  (void) thread;
  for (int64_t t = begin; t < end; t++) {
    int64_t b = t / a->groups, g = t % a->groups;
    const float *x = ts_cpu_f32 (a->x) + (b * a->c + g * cg) * a->hw;
    float *y = ts_cpu_f32 (a->y) + (b * a->c + g * cg) * a->hw;
    double mean = ts_cpu_sum_f64 (x, n) / (double) n;
    double rstd = 1.0 / sqrt (ts_cpu_sum_sq_f64 (x, n, mean) / (double) n + (double) a->eps);

    for (int64_t ci = 0; ci < cg; ci++) {
      int64_t ch = g * cg + ci;
      float w = job->w ? job->w[ch] : 1.0f, bias = job->b ? job->b[ch] : 0.0f;
      const float *xc = x + ci * a->hw;
      float *yc = y + ci * a->hw;
      for (int64_t i = 0; i < a->hw; i++)
        yc[i] = (float) (((double) xc[i] - mean) * rstd) * w + bias;
      if (a->silu)
        ts_cpu_silu (yc, yc, a->hw);
    }
  }
}

ts_status
ts_cpu_group_norm (void *impl, const ts_group_norm_args *a, ts_error *err)
{
  ts_cpu *cpu = impl;
  ts_status st = ts_cpu_group_norm_check (a, err);
  group_norm_job job;

  if (st != TS_OK)
    return st;
  if (a->hw == 0 || a->c == 0)
    return TS_OK;
  job.a = a;
  job.w = a->weight ? ts_cpu_weight_f32 (a->weight) : NULL;
  job.b = a->bias ? ts_cpu_weight_f32 (a->bias) : NULL;
  if (cpu->reference || (a->weight && !job.w) || (a->bias && !job.b)) {
    for (int64_t b = 0; b < a->batch; b++)
      for (int64_t g = 0; g < a->groups; g++)
        group_norm_one (a, b, g);
    return TS_OK;
  }
  ts_cpu_parallel_for (cpu, a->batch * a->groups, 1 + 16384 / (a->c / a->groups * a->hw),
                       group_norm_task, &job);
  return TS_OK;
}
