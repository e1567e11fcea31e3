/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-softmax — in-place softmax over contiguous rows, max-subtracted so that large
 * logits do not overflow, with an fp32 sum (as torch.softmax on fp32 tensors). The fast
 * path splits rows over the pool and keeps TS_CPU_LANES independent partial maxima and
 * sums so the loops vectorise; the attention kernel runs the same row routine on its
 * score blocks.
 */
#include "backend/cpu/ts-cpu.h"

#include <math.h>

static void
softmax_row_ref (float *x, int64_t dim)
{
  float max = -INFINITY, sum = 0.0f;

  for (int64_t j = 0; j < dim; j++)
    max = x[j] > max ? x[j] : max;
  for (int64_t j = 0; j < dim; j++) {
    x[j] = expf (x[j] - max);
    sum += x[j];
  }
  for (int64_t j = 0; j < dim; j++)
    x[j] /= sum;
}

void
ts_cpu_softmax_row_fast (float *x, int64_t n)
{
  float lane[TS_CPU_LANES], max = -INFINITY, sum, inv;
  int64_t j = 0;

  for (int l = 0; l < TS_CPU_LANES; l++)
    lane[l] = -INFINITY;
  for (; j + TS_CPU_LANES <= n; j += TS_CPU_LANES)
    for (int l = 0; l < TS_CPU_LANES; l++)
      lane[l] = x[j + l] > lane[l] ? x[j + l] : lane[l];
  for (; j < n; j++)
    max = x[j] > max ? x[j] : max;
  for (int l = 0; l < TS_CPU_LANES; l++)
    max = lane[l] > max ? lane[l] : max;

  sum = ts_cpu_exp_sub_sum (x, n, max);
  inv = 1.0f / sum;
  for (j = 0; j < n; j++)
    x[j] *= inv;
}

typedef struct {
  float *x;
  int64_t dim;
} softmax_job;

static void
softmax_task (void *data, int64_t begin, int64_t end, int thread)
{
  const softmax_job *job = data;

  (void) thread;
  for (int64_t r = begin; r < end; r++)
    ts_cpu_softmax_row_fast (job->x + r * job->dim, job->dim);
}

ts_status
ts_cpu_softmax (void *impl, const ts_softmax_args *a, ts_error *err)
{
  ts_cpu *cpu = impl;
  float *x;

  (void) err; /* cannot fail: the arguments were checked above the backends */
  x = ts_cpu_f32 (a->x);
  if (cpu->reference) {
    for (int64_t r = 0; r < a->rows; r++)
      softmax_row_ref (x + r * a->dim, a->dim);
  } else {
    softmax_job job = { x, a->dim };
    ts_cpu_parallel_for (cpu, a->rows, 1 + 16384 / (a->dim + 1), softmax_task, &job);
  }
  return TS_OK;
}
