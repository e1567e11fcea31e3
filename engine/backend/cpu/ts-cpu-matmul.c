/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-matmul — the linear layer y = x w^T + bias of every stage (nn.Linear layout, w is
 * [n, k]), and 1x1 convolutions over NHWC data. The reference path is the textbook triple
 * loop with an fp32 accumulator, reading F16/BF16 weights element by element. The fast
 * path is cblas_sgemm (x * w^T, beta = 0 or 1 for accumulate) on the f32 weights, split
 * into one slab per pool thread along the larger of m and n; OpenBLAS itself runs
 * single-threaded (see ts-cpu-backend.c), so every slab is a plain serial sgemm.
 */
#include "backend/cpu/ts-cpu.h"

#include <cblas.h>
#include <limits.h>

/* Work per pool task of a large fast-path product (multiply-adds), and the narrowest
 * slab such a product is cut into. */
#define MATMUL_TASK_MACS 2.5e8
#define MATMUL_MIN_BLOCK 256

static void
matmul_ref (ts_cpu *cpu, const ts_matmul_args *a)
{
  const float *x = ts_cpu_f32 (a->x);
  float *y = ts_cpu_f32 (a->y);

  for (int64_t i = 0; i < a->m && !ts_cpu_should_stop (cpu, 0); i++) {
    for (int64_t j = 0; j < a->n; j++) {
      float acc = 0.0f;
      for (int64_t p = 0; p < a->k; p++)
        acc += x[i * a->ldx + p] * ts_cpu_weight_get (a->w, j * a->k + p);
      if (a->bias)
        acc += ts_cpu_weight_get (a->bias, j);
      y[i * a->ldy + j] = a->accumulate ? y[i * a->ldy + j] + acc : acc;
    }
  }
}

typedef struct {
  const ts_matmul_args *a;
  const float *w, *bias;
  bool split_m;
  int64_t block; /* rows of y (split_m) or columns of y per task */
} matmul_job;

/* y[i0:i1, j0:j1] = (accumulate ? y : 0) + x[i0:i1] w[j0:j1]^T + bias[j0:j1] */
static void
matmul_block (const matmul_job *job, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
  const ts_matmul_args *a = job->a;
  const float *x = ts_cpu_f32 (a->x) + i0 * a->ldx;
  float *y = ts_cpu_f32 (a->y) + i0 * a->ldy + j0;

  if (a->k > 0)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) (i1 - i0), (int) (j1 - j0),
                 (int) a->k, 1.0f, x, (int) a->ldx, job->w + j0 * a->k, (int) a->k,
                 a->accumulate ? 1.0f : 0.0f, y, (int) a->ldy);
  else if (!a->accumulate)
    for (int64_t i = 0; i < i1 - i0; i++)
      memset (y + i * a->ldy, 0, (size_t) (j1 - j0) * sizeof (float));
  if (job->bias)
    for (int64_t i = 0; i < i1 - i0; i++)
      for (int64_t j = 0; j < j1 - j0; j++)
        y[i * a->ldy + j] += job->bias[j0 + j];
}

static void
matmul_task (void *data, int64_t begin, int64_t end, int thread)
{
  const matmul_job *job = data;
  int64_t m = job->a->m, n = job->a->n;

  (void) thread;
  for (int64_t t = begin; t < end; t++) {
    int64_t lo = t * job->block, hi = lo + job->block;
    if (job->split_m)
      matmul_block (job, lo, hi < m ? hi : m, 0, n);
    else
      matmul_block (job, 0, m, lo, hi < n ? hi : n);
  }
}

ts_status
ts_cpu_matmul (void *impl, const ts_matmul_args *a, ts_error *err)
{
  ts_cpu *cpu = impl;
  matmul_job job;
  int64_t extent, n_tasks;
  double macs;

  (void) err; /* cannot fail: the arguments were checked above the backends */
  if (a->m == 0 || a->n == 0)
    return TS_OK;
  job.w = ts_cpu_weight_f32 (a->w);
  job.bias = a->bias ? ts_cpu_weight_f32 (a->bias) : NULL;
  /* The reference loop also covers what BLAS cannot take: narrow weights made by a
   * reference instance and sizes beyond BLAS's int. */
  if (cpu->reference || !job.w || (a->bias && !job.bias) || a->m > INT_MAX || a->n > INT_MAX
      || a->k > INT_MAX || a->ldx > INT_MAX || a->ldy > INT_MAX) {
    matmul_ref (cpu, a);
    return TS_OK;
  }
  job.a = a;
  job.split_m = a->m >= a->n;
  extent = job.split_m ? a->m : a->n;
  /* One slab per thread, rounded to 16 so that only the last slab has a ragged edge;
   * small products are not worth the hand-off. A large product gets more slabs, each
   * about MATMUL_TASK_MACS (tens of ms), so that a cancel is seen between them
   * (ts_cpu_parallel_for), but none under MATMUL_MIN_BLOCK rows or columns, so that
   * packing the other operand stays a small part of each call. A slab computes its
   * elements exactly as the whole product would: the split changes no result. */
  macs = (double) a->m * (double) a->n * (double) (a->k + 1);
  n_tasks = macs < 262144.0 ? 1 : cpu->n_threads;
  if (macs / n_tasks > MATMUL_TASK_MACS)
    n_tasks = (int64_t) (macs / MATMUL_TASK_MACS) + 1;
  job.block = (extent + n_tasks - 1) / n_tasks;
  job.block = (job.block + 15) / 16 * 16;
  if (n_tasks > cpu->n_threads && job.block < MATMUL_MIN_BLOCK)
    job.block = MATMUL_MIN_BLOCK;
  n_tasks = (extent + job.block - 1) / job.block;
  ts_cpu_parallel_for (cpu, n_tasks, 1, matmul_task, &job);
  return TS_OK;
}
