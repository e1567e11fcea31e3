/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-matmul — the linear layer y = x w^T + bias of every stage (nn.Linear layout, w is
 * [n, k]), and 1x1 convolutions over NHWC data. The reference path is the textbook triple
 * loop with an fp32 accumulator, reading F16/BF16 weights element by element. The fast
 * path is cblas_sgemm (x * w^T, beta = 0 or 1 for accumulate) on the f32 weights, split
 * into one slab per pool thread along the larger of m and n; OpenBLAS itself runs
 * single-threaded (see ts-cpu-backend.c), so every slab is a plain serial sgemm.
 *
 * A weight kept 16-bit (ts-cpu.h) is widened just before its GEMM, into the same partition
 * the f32 weight would get, so the results are those of the f32 weight bit for bit: split
 * along m, every slab needs all of w, which is widened once per call into the shared
 * buffer (O(n k) against the product's O(m n k), m >= n); split along n, each task widens
 * its own slab of w's rows into its thread's scratch.
 *
 * The partition does change the last bits: OpenBLAS's kernels sum an element in an order
 * that depends on where it falls in the call (measured on 0.3.21, Zen 3: the last columns
 * of each call differ from the same columns inside a wider call, and row splits of most
 * sizes differ too). Results therefore vary in the last bits with the thread count, well
 * inside the golden fp32 tolerances; for a given thread count they are deterministic.
 *
 * Precision bf16 (docs/precision.md): the weights of 2 dimensions are stored bf16; the
 * reference rounds each input element to bf16 and sums the exact products in f32, and the
 * fast path hands the product to oneDNN's bf16 matmul (ts-cpu-dnnl.c), which computes the
 * same up to the order of the sums.
 */
#include "backend/cpu/ts-cpu.h"

#include <cblas.h>
#include <limits.h>

/* Work per pool task of a large fast-path product (multiply-adds), and the narrowest
 * slab such a product is cut into. */
#define MATMUL_TASK_MACS 2.5e8
#define MATMUL_MIN_BLOCK 256
/* The fp32 products oneDNN takes (see ts_cpu_matmul). */
#define DNNL_F32_MIN_M 512
#define DNNL_F32_MAX_SMALL_M 16

/* Precision bf16 (ts_cpu.precision): a matmul whose weight is stored bf16 multiplies it
 * with its input rounded to bf16 (each product exact in f32, sums in f32). */
static bool
matmul_bf16 (const ts_cpu *cpu, const ts_matmul_args *a)
{
  return cpu->precision == TS_PRECISION_BF16 && a->w->dtype == TS_DTYPE_BF16;
}

static void
matmul_ref (ts_cpu *cpu, const ts_matmul_args *a)
{
  const float *x = ts_cpu_f32 (a->x);
  float *y = ts_cpu_f32 (a->y);
  bool bf16 = matmul_bf16 (cpu, a);

  for (int64_t i = 0; i < a->m && !ts_cpu_should_stop (cpu, 0); i++) {
    for (int64_t j = 0; j < a->n; j++) {
      float acc = 0.0f;
      for (int64_t p = 0; p < a->k; p++)
        acc += (bf16 ? ts_cpu_round_bf16 (x[i * a->ldx + p]) : x[i * a->ldx + p])
               * ts_cpu_weight_get (a->w, j * a->k + p);
      if (a->bias)
        acc += ts_cpu_weight_get (a->bias, j);
      y[i * a->ldy + j] = a->accumulate ? y[i * a->ldy + j] + acc : acc;
    }
  }
}

typedef struct {
  ts_cpu *cpu;
  const ts_matmul_args *a;
  const float *w, *bias; /* w NULL: a 16-bit weight, widened per task (split along n) */
  bool split_m;
  int64_t block; /* rows of y (split_m) or columns of y per task */
} matmul_job;

/* y[i0:i1, j0:j1] = (accumulate ? y : 0) + x[i0:i1] w[j0:j1]^T + bias[j0:j1]; w_rows is
 * w[j0:j1] widened, when job->w is NULL. */
static void
matmul_block (const matmul_job *job, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
              const float *w_rows)
{
  const ts_matmul_args *a = job->a;
  const float *x = ts_cpu_f32 (a->x) + i0 * a->ldx;
  float *y = ts_cpu_f32 (a->y) + i0 * a->ldy + j0;
  const float *w = job->w ? job->w + j0 * a->k : w_rows;

  if (a->k > 0)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, (int) (i1 - i0), (int) (j1 - j0),
                 (int) a->k, 1.0f, x, (int) a->ldx, w, (int) a->k,
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

  for (int64_t t = begin; t < end; t++) {
    int64_t lo = t * job->block, hi = lo + job->block;
    if (job->split_m) {
      matmul_block (job, lo, hi < m ? hi : m, 0, n, NULL);
    } else {
      const ts_weight *w = job->a->w;
      float *w_rows = job->cpu->scratch[thread];
      hi = hi < n ? hi : n;
      if (!job->w)
        ts_cpu_widen (w->dtype, w->buf->data + (size_t) (lo * job->a->k) * ts_dtype_size (w->dtype),
                      w_rows, (hi - lo) * job->a->k);
      matmul_block (job, 0, m, lo, hi, w_rows);
    }
  }
}

ts_status
ts_cpu_matmul (void *impl, const ts_matmul_args *a, ts_error *err)
{
  ts_cpu *cpu = impl;
  matmul_job job;
  int64_t extent, n_tasks;
  double macs;
  ts_status st;

  if (a->m == 0 || a->n == 0)
    return TS_OK;
  job.w = ts_cpu_weight_f32 (a->w);
  job.bias = a->bias ? ts_cpu_weight_f32 (a->bias) : NULL;
  /* The reference loop also covers what BLAS cannot take: narrow biases made by a
   * reference instance and sizes beyond BLAS's int. */
  if (cpu->reference || (a->bias && !job.bias) || a->m > INT_MAX || a->n > INT_MAX
      || a->k > INT_MAX || a->ldx > INT_MAX || a->ldy > INT_MAX) {
    matmul_ref (cpu, a);
    return TS_OK;
  }
  if (matmul_bf16 (cpu, a))
    return cpu->dnnl ? ts_cpu_dnnl_matmul (cpu, TS_DTYPE_BF16, ts_cpu_f32 (a->x), a->ldx,
                                           a->w->buf->data, job.bias, ts_cpu_f32 (a->y), a->ldy,
                                           a->m, a->n, a->k, a->accumulate, err)
                     : (matmul_ref (cpu, a), TS_OK);
  /* fp32: oneDNN where it measured faster than OpenBLAS in our split (bench-cpu-kernels,
   * docs/benchmarks.md). AVX2 (Zen 3): the image streams' products (m >= DNNL_F32_MIN_M)
   * and the modulation's few rows (m <= DNNL_F32_MAX_SMALL_M), OpenBLAS for the text
   * stream. AVX-512 (Zen 5): every shape, the text stream's at 2.1x OpenBLAS's rate. */
  if (cpu->dnnl_f32
      && (cpu->dnnl_f32_wide || a->m >= DNNL_F32_MIN_M || a->m <= DNNL_F32_MAX_SMALL_M)) {
    const float *w = ts_cpu_weight_wide (cpu, a->w, "matmul", err);
    if (!w)
      return TS_ERR_NOMEM;
    return ts_cpu_dnnl_matmul (cpu, TS_DTYPE_F32, ts_cpu_f32 (a->x), a->ldx, w, job.bias,
                               ts_cpu_f32 (a->y), a->ldy, a->m, a->n, a->k, a->accumulate, err);
  }
  job.cpu = cpu;
  job.a = a;
  job.split_m = a->m >= a->n;
  if (!job.w && job.split_m && !(job.w = ts_cpu_weight_wide (cpu, a->w, "matmul", err)))
    return TS_ERR_NOMEM;
  extent = job.split_m ? a->m : a->n;
  /* One slab per thread, rounded to 16 so that only the last slab has a ragged edge;
   * small products are not worth the hand-off. A large product gets more slabs, each
   * about MATMUL_TASK_MACS (tens of ms), so that a cancel is seen between them
   * (ts_cpu_parallel_for), but none under MATMUL_MIN_BLOCK rows or columns, so that
   * packing the other operand stays a small part of each call (the split changes the
   * last bits, see the top of the file). */
  macs = (double) a->m * (double) a->n * (double) (a->k + 1);
  n_tasks = macs < 262144.0 ? 1 : cpu->n_threads;
  if (macs / n_tasks > MATMUL_TASK_MACS)
    n_tasks = (int64_t) (macs / MATMUL_TASK_MACS) + 1;
  job.block = (extent + n_tasks - 1) / n_tasks;
  job.block = (job.block + 15) / 16 * 16;
  if (n_tasks > cpu->n_threads && job.block < MATMUL_MIN_BLOCK)
    job.block = MATMUL_MIN_BLOCK;
  n_tasks = (extent + job.block - 1) / job.block;
  if (!job.w && (st = ts_cpu_scratch_reserve (cpu, (size_t) (job.block * a->k), "matmul", err))
                    != TS_OK)
    return st;
  ts_cpu_parallel_for (cpu, n_tasks, 1, matmul_task, &job);
  return TS_OK;
}
