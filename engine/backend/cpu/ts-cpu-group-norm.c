/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-group-norm — nn.GroupNorm over NCHW (biased variance, per-channel affine) with the
 * SiLU that follows it in every VQ-VAE ResnetBlock2D and before conv_out fused in. As in
 * ts-cpu-norm, the group statistics are accumulated in double on both paths so the result
 * is correctly rounded fp32 whatever the group size (c/groups * h * w can be large). The
 * fast path spreads the (batch, group) pairs over the pool and sums in double lanes.
 *
 * The split passes (TS_GN_STATS, TS_GN_APPLY) keep fp32 (mean, variance) pairs between
 * ops; a part's statistics are merged into them in double with Chan et al.'s pairwise
 * update, so a tensor normalised in parts differs from the one-op result only by the fp32
 * rounding of the kept mean and variance.
 */
#include "backend/cpu/ts-cpu.h"

#include <math.h>

typedef struct {
  const ts_group_norm_args *a;
  const float *w, *b; /* widened weights on the fast path; NULL on the reference path */
  bool fast;
} group_norm_job;

/* Mean and biased variance of n values, both accumulated in double. */
static void
group_moments (const float *x, int64_t n, bool fast, double *mean, double *var)
{
  double m = 0.0, v = 0.0;

  if (fast) {
    m = ts_cpu_sum_f64 (x, n) / (double) n;
    v = ts_cpu_sum_sq_f64 (x, n, m) / (double) n;
  } else {
    for (int64_t i = 0; i < n; i++)
      m += x[i];
    m /= (double) n;
    for (int64_t i = 0; i < n; i++)
      v += ((double) x[i] - m) * ((double) x[i] - m);
    v /= (double) n;
  }
  *mean = m;
  *var = v;
}

/* Group `g` of batch entry `b`: merges its statistics into a->stats (TS_GN_STATS), or
 * normalises it (x and y may alias). */
static void
group_norm_one (const group_norm_job *job, int64_t b, int64_t g)
{
  const ts_group_norm_args *a = job->a;
  int64_t cg = a->c / a->groups, n = cg * a->hw;
  const float *x = ts_cpu_f32 (a->x) + (b * a->c + g * cg) * a->hw;
  float *stats = a->pass == TS_GN_FULL ? NULL : ts_cpu_f32 (a->stats) + (b * a->groups + g) * 2;
  double mean, var, rstd;

  if (a->pass == TS_GN_APPLY) {
    mean = stats[0];
    var = stats[1];
  } else {
    group_moments (x, n, job->fast, &mean, &var);
  }
  if (a->pass == TS_GN_STATS) {
    if (a->hw_done > 0) {
      /* Chan, Golub and LeVeque's pairwise update of (count, mean, M2) */
      double n_a = (double) cg * (double) a->hw_done, n_b = (double) n, n_ab = n_a + n_b;
      double delta = mean - (double) stats[0];
      double m2 = (double) stats[1] * n_a + var * n_b + delta * delta * n_a * n_b / n_ab;
      mean = (double) stats[0] + delta * n_b / n_ab;
      var = m2 / n_ab;
    }
    stats[0] = (float) mean;
    stats[1] = (float) var;
    return;
  }
  rstd = 1.0 / sqrt (var + (double) a->eps);

  float *y = ts_cpu_f32 (a->y) + (b * a->c + g * cg) * a->hw;
  for (int64_t ci = 0; ci < cg; ci++) {
    int64_t ch = g * cg + ci;
    float w, bias;
    const float *xc = x + ci * a->hw;
    float *yc = y + ci * a->hw;
    if (job->fast) {
      w = job->w ? job->w[ch] : 1.0f;
      bias = job->b ? job->b[ch] : 0.0f;
    } else {
      w = a->weight ? ts_cpu_weight_get (a->weight, ch) : 1.0f;
      bias = a->bias ? ts_cpu_weight_get (a->bias, ch) : 0.0f;
    }
    for (int64_t i = 0; i < a->hw; i++)
      yc[i] = (float) (((double) xc[i] - mean) * rstd) * w + bias;
    if (!a->silu)
      continue;
    if (job->fast) {
      ts_cpu_silu (yc, yc, a->hw);
    } else {
      for (int64_t i = 0; i < a->hw; i++)
        yc[i] = yc[i] / (1.0f + expf (-yc[i]));
    }
  }
}

static void
group_norm_task (void *data, int64_t begin, int64_t end, int thread)
{
  const group_norm_job *job = data;

  (void) thread;
  for (int64_t t = begin; t < end; t++)
    group_norm_one (job, t / job->a->groups, t % job->a->groups);
}

ts_status
ts_cpu_group_norm (void *impl, const ts_group_norm_args *a, ts_error *err)
{
  ts_cpu *cpu = impl;
  group_norm_job job;

  (void) err; /* cannot fail: the arguments were checked above the backends */
  if (a->hw == 0 || a->c == 0)
    return TS_OK;
  job.a = a;
  job.w = a->weight ? ts_cpu_weight_f32 (a->weight) : NULL;
  job.b = a->bias ? ts_cpu_weight_f32 (a->bias) : NULL;
  job.fast = !(cpu->reference || (a->weight && !job.w) || (a->bias && !job.b));
  if (!job.fast) {
    group_norm_task (&job, 0, a->batch * a->groups, 0);
    return TS_OK;
  }
  ts_cpu_parallel_for (cpu, a->batch * a->groups, 1 + 16384 / (a->c / a->groups * a->hw),
                       group_norm_task, &job);
  return TS_OK;
}
