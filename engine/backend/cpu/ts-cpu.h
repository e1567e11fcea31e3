/* SPDX-License-Identifier: MIT
 *
 * ts-cpu — internals shared by the files of the CPU backend (engine/backend/cpu/). The backend
 * implements every op of ts-backend.h twice, selected per instance at run time:
 *
 *   - the reference path ("cpu-ref"): plain scalar loops, single-threaded, fp32
 *     accumulation, weights kept in their source dtype (F32/F16/BF16) and widened per
 *     element on use. It is what every other backend is tested against, so it favours
 *     being obviously correct over being fast. Norm statistics (mean, variance, mean of
 *     squares) are accumulated in double: that is the most accurate choice and keeps the
 *     reference within the golden fp32 tolerances without relying on summation order.
 *   - the fast path ("cpu"): GEMM-shaped work (matmul, convolutions, attention) through
 *     OpenBLAS's cblas_sgemm or oneDNN (ts-cpu-dnnl.c: bf16, and fp32 where it measured
 *     faster), everything else as loops split over a small worker pool (OpenMP's team,
 *     the one oneDNN runs on, in a GCC build with oneDNN; else persistent pthreads;
 *     ts-cpu-backend.c). Weights of two or more dimensions stay in their F16/BF16 file dtype
 *     (half the memory of f32) and are widened to f32 just before their GEMM, into the
 *     partition the GEMM would have with f32 weights (ts-cpu-matmul.c, ts-cpu-conv2d.c):
 *     widening is exact, so the results are those of f32 weights bit for bit. The 1-D
 *     weights (biases, norm scales) are small and are widened once at upload. The pool
 *     also splits the GEMMs: each thread calls a single-threaded sgemm on its own slab
 *     (OpenBLAS is set to one thread), so there is one set of worker threads and no
 *     nested parallelism; oneDNN's calls are made from the calling thread and spread over
 *     the same team. 3x3 stride-1 convolutions run as Winograd F(2x2, 3x3)
 *     (ts-cpu-winograd.c).
 *
 * Setting TS_CPU_REFERENCE=1 in the environment makes ts_backend_cpu_new() build the
 * reference path whatever the caller asked for (as ggml's reference mode does).
 *
 * The ops assume valid arguments: the wrappers of ts-backend.h run the checks of
 * ts-op-check.h first (refs inside their buffers, sizes, strides, weights). What only the
 * data can tell (embed's ids, the sampler's logits) is still checked here.
 */
#ifndef TS_CPU_H
#define TS_CPU_H

#include "backend/ts-backend.h"
#include "core/ts-common.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* One unit of parallel work: items [begin, end) run on pool thread `thread` (0 is the
 * calling thread; every thread index is below ts_cpu.n_threads). */
typedef void (*ts_cpu_task_fn) (void *ctx, int64_t begin, int64_t end, int thread);

typedef struct ts_cpu_pool ts_cpu_pool;
typedef struct ts_cpu_dnnl ts_cpu_dnnl;

typedef struct {
  bool reference;
  int n_threads;
  ts_cpu_pool *pool;      /* NULL on the reference path and with one thread */
  float **scratch;        /* per-thread scratch, n_threads entries */
  size_t *scratch_floats; /* capacity of each entry */
  float *wide;            /* a whole 16-bit weight widened for one convolution call */
  size_t wide_floats;
  /* Precision mode (ts_precision, resolved: FP32 or BF16). In BF16, weights of 2
   * dimensions are stored bf16 and matmul rounds its input to bf16 (ts-cpu-matmul.c). */
  ts_precision precision;
  ts_cpu_dnnl *dnnl;      /* oneDNN state (ts-cpu-dnnl.c); NULL in a build without it */
  bool dnnl_f32;          /* fp32 matmuls of some shapes through oneDNN (ts-cpu-matmul.c;
                           * TESSERA_CPU_DNNL=0 keeps them all on OpenBLAS) */
  bool dnnl_f32_wide;     /* and, with AVX-512, every fp32 matmul and long attention: there
                           * oneDNN measured ahead at every shape (docs/benchmarks.md) */
  uint16_t *xbf;          /* a matmul's input rounded to bf16, for oneDNN */
  size_t xbf_elems;
  void *attn;             /* oneDNN attention's scores, K, V^T and bf16 weights */
  size_t attn_bytes;
  bool winograd;          /* 3x3 convolutions as Winograd F(2x2, 3x3) (ts-cpu-winograd.c) */
  float *wino;            /* its transformed filters, for one call */
  size_t wino_floats;
  /* ts_backend_set_abort: polled by the calling thread between the chunks of a
   * ts_cpu_parallel_for and between the outer iterations of the reference loops; when it
   * asks to stop, `stop` tells the pool threads to skip their remaining chunks and the op
   * returns TS_ERR_CANCELLED (ts-cpu-backend.c's op wrappers). */
  ts_should_abort_fn abort_fn;
  void *abort_data;
  atomic_bool stop;
} ts_cpu;

/* Whether the current op should stop: polls the abort callback (calling thread only, as
 * ts_should_abort_fn promises) and latches the answer in cpu->stop. Costs a load and a
 * branch when no callback is set. */
static inline bool
ts_cpu_should_stop (ts_cpu *cpu, int thread)
{
  if (atomic_load_explicit (&cpu->stop, memory_order_relaxed))
    return true;
  if (thread == 0 && cpu->abort_fn && cpu->abort_fn (cpu->abort_data)) {
    atomic_store_explicit (&cpu->stop, true, memory_order_relaxed);
    return true;
  }
  return false;
}

/* Runs fn over [0, n) in chunks of `grain` items, spread over the pool; returns when all
 * chunks are done. Runs inline on the calling thread when n <= grain or there is no pool.
 * Every chunk starts with ts_cpu_should_stop: once it is true the remaining chunks are
 * skipped (the op's output is then garbage, and the op wrapper reports TS_ERR_CANCELLED). */
void ts_cpu_parallel_for (ts_cpu *cpu, int64_t n, int64_t grain, ts_cpu_task_fn fn, void *ctx);

/* Makes every thread's scratch hold at least n_floats floats. TS_ERR_NOMEM naming `op`. */
ts_status ts_cpu_scratch_reserve (ts_cpu *cpu, size_t n_floats, const char *op, ts_error *err);

/* ---- element access ---- */

static inline float *
ts_cpu_f32 (ts_ref r)
{
  return (float *) (void *) (r.buf->data + r.offset);
}

static inline const int32_t *
ts_cpu_i32 (ts_ref r)
{
  return (const int32_t *) (const void *) (r.buf->data + r.offset);
}

/* IEEE 754 binary16 to binary32, exact, including subnormals, infinities and NaNs. */
static inline float
ts_cpu_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
  uint32_t expo = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  float f;

  if (expo == 0) {
    /* zero or subnormal: mant * 2^-24, exact in binary32 */
    f = (float) mant * 0x1p-24f;
    return sign ? -f : f;
  }
  if (expo == 31)
    bits = sign | 0x7f800000u | (mant << 13);
  else
    bits = sign | ((expo + 112u) << 23) | (mant << 13);
  memcpy (&f, &bits, sizeof f);
  return f;
}

/* bfloat16 is the upper half of a binary32. */
static inline float
ts_cpu_bf16_to_f32 (uint16_t h)
{
  uint32_t bits = (uint32_t) h << 16;
  float f;
  memcpy (&f, &bits, sizeof f);
  return f;
}

/* binary32 to bfloat16, rounded to nearest even (as oneDNN and PyTorch convert); a NaN
 * stays a (quiet) NaN. */
static inline uint16_t
ts_cpu_f32_to_bf16 (float f)
{
  uint32_t u;
  memcpy (&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t) ((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t) (u >> 16);
}

/* f rounded to the nearest bfloat16, as a binary32 (the reference path's bf16 operand). */
static inline float
ts_cpu_round_bf16 (float f)
{
  uint32_t u = (uint32_t) ts_cpu_f32_to_bf16 (f) << 16;
  memcpy (&f, &u, sizeof f);
  return f;
}

/* Element i of a weight in whatever dtype it is stored (validated beforehand). */
static inline float
ts_cpu_weight_get (const ts_weight *w, int64_t i)
{
  const void *p = w->buf->data;
  if (w->dtype == TS_DTYPE_F16)
    return ts_cpu_f16_to_f32 (((const uint16_t *) p)[i]);
  if (w->dtype == TS_DTYPE_BF16)
    return ts_cpu_bf16_to_f32 (((const uint16_t *) p)[i]);
  return ((const float *) p)[i];
}

/* The fast path's view of a weight: its f32 data, or NULL when it is stored narrower (a
 * weight of 2+ dimensions from a 16-bit file, which matmul and the convolutions widen as
 * they go, or a small one made by a reference instance, for which ops run the reference
 * loop). */
static inline const float *
ts_cpu_weight_f32 (const ts_weight *w)
{
  return w && w->dtype == TS_DTYPE_F32 ? (const float *) (const void *) w->buf->data : NULL;
}

/* ---- fast-path building blocks ---- */

/* dst[0, n) = src[0, n) as f32, src in `dtype` (F32, F16 or BF16): exact. F16 through F16C
 * where the CPU has it (ts-cpu-simd.c). */
void ts_cpu_widen (ts_dtype dtype, const void *src, float *dst, int64_t n);

/* The f32 data of weight w, widened into cpu->wide when it is stored narrower; NULL when
 * that buffer cannot be had (err set). Valid until the next call. */
const float *ts_cpu_weight_wide (ts_cpu *cpu, const ts_weight *w, const char *op,
                                 ts_error *err);

/* Sums in TS_CPU_LANES independent double accumulators, a form the compiler vectorises
 * without reassociating anything (plain -O2, no -ffast-math). */
#define TS_CPU_LANES 8

static inline double
ts_cpu_sum_f64 (const float *x, int64_t n)
{
  double lane[TS_CPU_LANES] = { 0 }, s = 0.0;
  int64_t j = 0;

  for (; j + TS_CPU_LANES <= n; j += TS_CPU_LANES)
    for (int l = 0; l < TS_CPU_LANES; l++)
      lane[l] += (double) x[j + l];
  for (; j < n; j++)
    s += (double) x[j];
  for (int l = 0; l < TS_CPU_LANES; l++)
    s += lane[l];
  return s;
}

/* sum (x - center)^2, likewise. */
static inline double
ts_cpu_sum_sq_f64 (const float *x, int64_t n, double center)
{
  double lane[TS_CPU_LANES] = { 0 }, s = 0.0;
  int64_t j = 0;

  for (; j + TS_CPU_LANES <= n; j += TS_CPU_LANES)
    for (int l = 0; l < TS_CPU_LANES; l++) {
      double d = (double) x[j + l] - center;
      lane[l] += d * d;
    }
  for (; j < n; j++)
    s += ((double) x[j] - center) * ((double) x[j] - center);
  for (int l = 0; l < TS_CPU_LANES; l++)
    s += lane[l];
  return s;
}

/* ---- oneDNN (ts-cpu-dnnl.c) ---- */

typedef enum {
  TS_CPU_BF16_NONE = TS_BF16_NONE,
  TS_CPU_BF16_EMULATED = TS_BF16_EMULATED,
  TS_CPU_BF16_NATIVE = TS_BF16_NATIVE,
} ts_cpu_bf16_level;

/* NULL with err set (TS_ERR_UNSUPPORTED in a build without oneDNN). */
ts_cpu_dnnl *ts_cpu_dnnl_new (int n_threads, ts_error *err);
void ts_cpu_dnnl_free (ts_cpu_dnnl *d);
/* What oneDNN can do in bf16 on this CPU (NONE in a build without oneDNN). */
ts_cpu_bf16_level ts_cpu_dnnl_bf16_level (void);
/* y[m, n] = (accumulate ? y : 0) + x w^T + bias through oneDNN: x [m, k] F32 (row stride
 * ldx), w [n, k] in `dtype` (F32, or BF16 and then x is rounded to bf16 chunk by chunk into
 * cpu->xbf), bias (optional) and y F32. oneDNN runs on the calling thread's OpenMP team of
 * cpu->n_threads; the abort hook is polled between row chunks. */
ts_status ts_cpu_dnnl_matmul (ts_cpu *cpu, ts_dtype dtype, const float *x, int64_t ldx,
                              const void *w, const float *bias, float *y, int64_t ldy,
                              int64_t m, int64_t n, int64_t k, bool accumulate, ts_error *err);
/* y[m, n] = x w^T with x [m, k] already bf16 (row stride ldx), w bf16 [n, k], y F32 (row
 * stride ldy): one primitive call, so the caller bounds m for the abort hook's sake. */
ts_status ts_cpu_dnnl_matmul_bf16 (ts_cpu *cpu, const uint16_t *x, int64_t ldx,
                                   const uint16_t *w, float *y, int64_t ldy, int64_t m,
                                   int64_t n, int64_t k, ts_error *err);
/* c[b] = a[b] x[b] for b < batch (a [m, k], x [k, n], c [m, n], f32, contiguous), run by
 * pool thread `thread` alone, inside a ts_cpu_parallel_for task: per-thread primitives,
 * stream and scratchpad. Returns a status without a message; the caller falls back. */
ts_status ts_cpu_dnnl_batched_local (ts_cpu *cpu, int thread, int64_t batch, int64_t m,
                                     int64_t n, int64_t k, const float *a, const float *x,
                                     float *c);
/* "oneDNN 2.6.3", or NULL in a build without it. */
const char *ts_cpu_dnnl_version (void);

/* The fast path's in-place softmax of one row (shared by softmax and attention). */
void ts_cpu_softmax_row_fast (float *x, int64_t n);

/* ts-cpu-simd.c: vectorised where the CPU allows (AVX2), libm loops elsewhere. */
/* x[i] = exp(x[i] - shift); returns the sum of the new values. */
float ts_cpu_exp_sub_sum (float *x, int64_t n, float shift);
/* x[i] = exp(x[i] * scale - shift), returning their sum. */
float ts_cpu_exp_scale_sub_sum (float *x, int64_t n, float scale, float shift);
/* y[i] = x[i] * mul rounded to bf16 (nearest even; AVX512_BF16 where the CPU has it, which
 * flushes subnormal inputs to zero). */
void ts_cpu_bf16_row (const float *x, uint16_t *y, int64_t n, float mul);
/* y = x / (1 + exp(-x)); y may equal x. */
void ts_cpu_silu (const float *x, float *y, int64_t n);
/* y = gelu_tanh(x); y may equal x. */
void ts_cpu_gelu_tanh (const float *x, float *y, int64_t n);

/* ---- the ops, one file per kernel family ---- */

ts_status ts_cpu_matmul (void *impl, const ts_matmul_args *a, ts_error *err);
ts_status ts_cpu_norm (void *impl, const ts_norm_args *a, ts_error *err);
ts_status ts_cpu_softmax (void *impl, const ts_softmax_args *a, ts_error *err);
ts_status ts_cpu_attention (void *impl, const ts_attention_args *a, ts_error *err);
ts_status ts_cpu_rope (void *impl, const ts_rope_args *a, ts_error *err);
ts_status ts_cpu_act (void *impl, const ts_act_args *a, ts_error *err);
ts_status ts_cpu_elementwise (void *impl, const ts_elementwise_args *a, ts_error *err);
ts_status ts_cpu_transpose (void *impl, const ts_transpose_args *a, ts_error *err);
ts_status ts_cpu_conv2d (void *impl, const ts_conv2d_args *a, ts_error *err);
ts_status ts_cpu_conv_transpose2d (void *impl, const ts_conv_transpose2d_args *a,
                                   ts_error *err);
/* ts-cpu-winograd.c: whether conv2d takes the Winograd path for these arguments, and that
 * path (w and bias in f32). */
bool ts_cpu_winograd_applies (const ts_cpu *cpu, const ts_conv2d_args *a);
ts_status ts_cpu_conv2d_winograd (ts_cpu *cpu, const ts_conv2d_args *a, const float *w,
                                  const float *bias, ts_error *err);
ts_status ts_cpu_group_norm (void *impl, const ts_group_norm_args *a, ts_error *err);
ts_status ts_cpu_upsample (void *impl, const ts_upsample_args *a, ts_error *err);
ts_status ts_cpu_embed (void *impl, const ts_embed_args *a, ts_error *err);
ts_status ts_cpu_sample (void *impl, const ts_sample_args *a, ts_error *err);

#endif /* TS_CPU_H */
