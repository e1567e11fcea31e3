/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-winograd — the fast path's 3x3 stride-1 convolutions (the VQ-VAE's resnets and
 * conv_in/conv_out) as Winograd F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2015): each 2x2 block of output pixels ("tile") comes
 * from a 4x4 input patch d as
 *
 *     Y = A^T [ sum over c_in of (G g G^T) .* (B^T d B) ] A
 *
 * with g a 3x3 filter. The sum over input channels at each of the 16 positions xi of the
 * transformed tile is a matrix product, so a block of T tiles costs 16 GEMMs
 * U[xi] (c_out x c_in) . V[xi] (c_in x T): 16 multiplies per tile and channel pair where
 * the direct form needs 36, 2.25x fewer.
 *
 *   B^T = | 1  0 -1  0 |   G = |  1    0    0  |   A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |       | 1/2  1/2  1/2 |         | 0  1 -1 -1 |
 *         | 0 -1  1  0 |       | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |       |  0    0    1  |
 *
 * The filter transform U = G g G^T is made once per call for all (c_out, c_in) into a
 * shared buffer (16 c_out c_in floats; O(weights) against the convolution's O(weights x
 * pixels)). Each pool task takes T tiles of one image: input transform into its scratch,
 * the 16 products (one oneDNN batched matmul on the task's thread where fp32 goes to
 * oneDNN, else 16 single-threaded sgemm calls), output transform (plus bias) into y; tiles hanging over the edge read
 * zeros outside the padded input and write only the pixels that exist.
 *
 * The transforms' additions and the halving in G round differently from the direct sum:
 * measured against the golden fp32 cases in docs/benchmarks.md. TESSERA_CPU_WINOGRAD=0 in
 * the environment turns it off (the im2col path of ts-cpu-conv2d.c then runs).
 */
#include "backend/cpu/ts-cpu.h"

#include <cblas.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Per-thread scratch: V (16 x c_in x T) and M (16 x c_out x T) together, in floats (8 MiB). */
#define WINO_SCRATCH_FLOATS (2 * 1024 * 1024)
/* Below this many channels the transforms cost more than the multiplies they save. */
#define WINO_MIN_CHANNELS 16

bool
ts_cpu_winograd_applies (const ts_cpu *cpu, const ts_conv2d_args *a)
{
  return cpu->winograd && a->kh == 3 && a->kw == 3 && a->stride == 1
         && a->c_in >= WINO_MIN_CHANNELS && a->c_out >= WINO_MIN_CHANNELS
         && a->c_in <= INT_MAX / 16 && a->c_out <= INT_MAX / 16 && a->h_out >= 1
         && a->w_out >= 1;
}

typedef struct {
  ts_cpu *cpu;
  const ts_conv2d_args *a;
  const float *w, *bias;
  float *u;                   /* [16][c_out][c_in] */
  atomic_bool dnnl;           /* the 16 products as one oneDNN batched matmul per block;
                               * cleared when that fails, so later blocks take sgemm
                               * without retrying */
  int64_t tiles_y, tiles_x, tiles, block, n_blocks;
} wino_job;

/* U[xi][o][c] = (G g G^T)[xi] for filters o in [begin, end). */
static void
filter_task (void *data, int64_t begin, int64_t end, int thread)
{
  const wino_job *job = data;
  int64_t c_in = job->a->c_in, c_out = job->a->c_out, plane = c_out * c_in;

  (void) thread;
  for (int64_t o = begin; o < end; o++) {
    for (int64_t c = 0; c < c_in; c++) {
      const float *g = job->w + (o * c_in + c) * 9;
      float t[4][3], u[4][4];
      for (int j = 0; j < 3; j++) {
        t[0][j] = g[j];
        t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
        t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
        t[3][j] = g[6 + j];
      }
      for (int i = 0; i < 4; i++) {
        u[i][0] = t[i][0];
        u[i][1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        u[i][2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        u[i][3] = t[i][2];
      }
      for (int xi = 0; xi < 16; xi++)
        job->u[xi * plane + o * c_in + c] = u[xi / 4][xi % 4];
    }
  }
}

/* Eight tiles at a time in GCC/Clang vector extensions (plain SSE2 code on the baseline
 * ISA, AVX2 in the target clone where the CPU has it); the loads and stores are memcpy so
 * nothing needs aligning. */
typedef float v8f __attribute__ ((vector_size (32)));
typedef int32_t v8i __attribute__ ((vector_size (32)));

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__)) \
  && !defined(__SANITIZE_ADDRESS__)
#define WINO_CLONES __attribute__ ((target_clones ("avx2", "default")))
#else
#define WINO_CLONES
#endif

/* {a0 b0 a1 b1 a2 b2 a3 b3} and {a4 b4 ... a7 b7} */
#ifdef __clang__
#define INTERLEAVE_LO(a, b) __builtin_shufflevector (a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define INTERLEAVE_HI(a, b) __builtin_shufflevector (a, b, 4, 12, 5, 13, 6, 14, 7, 15)
#else
#define INTERLEAVE_LO(a, b) __builtin_shuffle (a, b, (v8i) { 0, 8, 1, 9, 2, 10, 3, 11 })
#define INTERLEAVE_HI(a, b) __builtin_shuffle (a, b, (v8i) { 4, 12, 5, 13, 6, 14, 7, 15 })
#endif

/* Loads and stores through memcpy, as macros so that no vector crosses a call (whose ABI
 * would differ between the clones). */
#define LOAD8(dst, p) memcpy (&(dst), (p), sizeof (v8f))
#define STORE8(p, v)                                                                        \
  do {                                                                                      \
    v8f v8_ = (v);                                                                          \
    memcpy ((p), &v8_, sizeof v8_);                                                         \
  } while (0)

/* The four input rows under tile row ty of channel plane xc, zero-padded and split into
 * even and odd columns: tile tx reads columns 2 tx .. 2 tx + 3 of the padded row i, that
 * is even[i][tx], odd[i][tx], even[i][tx + 1], odd[i][tx + 1], with no bounds to check.
 * `row` is 2 tiles_x + 2 floats of scratch, even and odd tiles_x + 1 (+ 8 of slack for the
 * vector loads) each per row. */
static void
split_rows (const wino_job *job, const float *xc, int64_t ty, float *row, float *even,
            float *odd, int64_t half)
{
  const ts_conv2d_args *a = job->a;
  int64_t len = 2 * half;

  for (int i = 0; i < 4; i++) {
    int64_t iy = 2 * ty - a->pad_top + i;
    float *e = even + i * (half + 8), *o = odd + i * (half + 8);

    memset (row, 0, (size_t) len * sizeof (float));
    if (iy >= 0 && iy < a->h) {
      /* input column ix lands at ix + pad_left; columns past len are never read */
      int64_t lo = a->pad_left, n = a->w_in;
      if (lo < len) {
        if (lo + n > len)
          n = len - lo;
        memcpy (row + lo, xc + iy * a->w_in, (size_t) n * sizeof (float));
      }
    }
    for (int64_t m = 0; m < half; m++) {
      e[m] = row[2 * m];
      o[m] = row[2 * m + 1];
    }
    memset (e + half, 0, 8 * sizeof (float));
    memset (o + half, 0, 8 * sizeof (float));
  }
}

/* out[xi * plane + k] = (B^T d B)[xi] of tiles tx0 + k, k < run, of one tile row. */
WINO_CLONES static void
input_run (const float *even, const float *odd, int64_t stride, int64_t tx0, int64_t run,
           float *out, int64_t plane)
{
  int64_t k = 0;

  for (; k + 8 <= run; k += 8) {
    v8f d[4][4], s[4][4];
    for (int i = 0; i < 4; i++) {
      const float *e = even + i * stride + tx0 + k, *o = odd + i * stride + tx0 + k;
      LOAD8 (d[i][0], e);
      LOAD8 (d[i][1], o);
      LOAD8 (d[i][2], e + 1);
      LOAD8 (d[i][3], o + 1);
    }
    for (int q = 0; q < 4; q++) {
      s[0][q] = d[0][q] - d[2][q];
      s[1][q] = d[1][q] + d[2][q];
      s[2][q] = d[2][q] - d[1][q];
      s[3][q] = d[1][q] - d[3][q];
    }
    for (int i = 0; i < 4; i++) {
      STORE8 (out + (4 * i + 0) * plane + k, s[i][0] - s[i][2]);
      STORE8 (out + (4 * i + 1) * plane + k, s[i][1] + s[i][2]);
      STORE8 (out + (4 * i + 2) * plane + k, s[i][2] - s[i][1]);
      STORE8 (out + (4 * i + 3) * plane + k, s[i][1] - s[i][3]);
    }
  }
  for (; k < run; k++) {
    float d[4][4], s[4][4];
    for (int i = 0; i < 4; i++) {
      const float *e = even + i * stride + tx0 + k, *o = odd + i * stride + tx0 + k;
      d[i][0] = e[0];
      d[i][1] = o[0];
      d[i][2] = e[1];
      d[i][3] = o[1];
    }
    for (int q = 0; q < 4; q++) {
      s[0][q] = d[0][q] - d[2][q];
      s[1][q] = d[1][q] + d[2][q];
      s[2][q] = d[2][q] - d[1][q];
      s[3][q] = d[1][q] - d[3][q];
    }
    for (int i = 0; i < 4; i++) {
      out[(4 * i + 0) * plane + k] = s[i][0] - s[i][2];
      out[(4 * i + 1) * plane + k] = s[i][1] + s[i][2];
      out[(4 * i + 2) * plane + k] = s[i][2] - s[i][1];
      out[(4 * i + 3) * plane + k] = s[i][1] - s[i][3];
    }
  }
}

/* V[xi][c][t] = (B^T d B)[xi] for the block's np tiles from tile t0 of image x; `scratch`
 * holds 2 tiles_x + 2 + 8 (tiles_x + 9) floats. */
static void
input_transform (const wino_job *job, const float *x, int64_t t0, int64_t np, float *v,
                 float *scratch)
{
  const ts_conv2d_args *a = job->a;
  int64_t plane = a->c_in * np, half = job->tiles_x + 1;
  float *row = scratch, *even = row + 2 * half, *odd = even + 4 * (half + 8);

  for (int64_t c = 0; c < a->c_in; c++) {
    const float *xc = x + c * a->h * a->w_in;
    for (int64_t t = t0; t < t0 + np;) {
      int64_t ty = t / job->tiles_x, tx0 = t % job->tiles_x;
      int64_t run = job->tiles_x - tx0 < t0 + np - t ? job->tiles_x - tx0 : t0 + np - t;

      split_rows (job, xc, ty, row, even, odd, half);
      input_run (even, odd, half + 8, tx0, run, v + c * np + (t - t0), plane);
      t += run;
    }
  }
}

/* The two output rows of `run` tiles from M (m[xi * plane + k]), plus b: y0 and y1 get
 * 2 run pixels each. */
WINO_CLONES static void
output_run (const float *m, int64_t plane, int64_t run, float b, float *y0, float *y1)
{
  int64_t k = 0;

  for (; k + 8 <= run; k += 8) {
    v8f r[2][4], p00, p01, p10, p11;
    for (int q = 0; q < 4; q++) {
      v8f k0, k1, k2, k3;
      LOAD8 (k0, m + (0 + q) * plane + k);
      LOAD8 (k1, m + (4 + q) * plane + k);
      LOAD8 (k2, m + (8 + q) * plane + k);
      LOAD8 (k3, m + (12 + q) * plane + k);
      r[0][q] = k0 + k1 + k2;
      r[1][q] = k1 - k2 - k3;
    }
    p00 = r[0][0] + r[0][1] + r[0][2] + b;
    p01 = r[0][1] - r[0][2] - r[0][3] + b;
    p10 = r[1][0] + r[1][1] + r[1][2] + b;
    p11 = r[1][1] - r[1][2] - r[1][3] + b;
    STORE8 (y0 + 2 * k, INTERLEAVE_LO (p00, p01));
    STORE8 (y0 + 2 * k + 8, INTERLEAVE_HI (p00, p01));
    STORE8 (y1 + 2 * k, INTERLEAVE_LO (p10, p11));
    STORE8 (y1 + 2 * k + 8, INTERLEAVE_HI (p10, p11));
  }
  for (; k < run; k++) {
    float r[2][4];
    for (int q = 0; q < 4; q++) {
      float k0 = m[(0 + q) * plane + k], k1 = m[(4 + q) * plane + k];
      float k2 = m[(8 + q) * plane + k], k3 = m[(12 + q) * plane + k];
      r[0][q] = k0 + k1 + k2;
      r[1][q] = k1 - k2 - k3;
    }
    y0[2 * k] = r[0][0] + r[0][1] + r[0][2] + b;
    y0[2 * k + 1] = r[0][1] - r[0][2] - r[0][3] + b;
    y1[2 * k] = r[1][0] + r[1][1] + r[1][2] + b;
    y1[2 * k + 1] = r[1][1] - r[1][2] - r[1][3] + b;
  }
}

/* y's 2x2 pixels of each tile from M[xi][o][t], plus the bias; `scratch` holds 4 tiles_x
 * floats (two output rows). */
static void
output_transform (const wino_job *job, const float *m, int64_t t0, int64_t np, float *y,
                  float *scratch)
{
  const ts_conv2d_args *a = job->a;
  int64_t plane = a->c_out * np, hw = a->h_out * a->w_out, len = 2 * job->tiles_x;
  float *y0 = scratch, *y1 = scratch + len;

  for (int64_t o = 0; o < a->c_out; o++) {
    float *yo = y + o * hw;
    for (int64_t t = t0; t < t0 + np;) {
      int64_t ty = t / job->tiles_x, tx0 = t % job->tiles_x;
      int64_t run = job->tiles_x - tx0 < t0 + np - t ? job->tiles_x - tx0 : t0 + np - t;
      int64_t ox0 = 2 * tx0, n_out = 2 * run;

      output_run (m + o * np + (t - t0), plane, run, job->bias ? job->bias[o] : 0.0f, y0, y1);
      if (ox0 + n_out > a->w_out)
        n_out = a->w_out - ox0;
      memcpy (yo + 2 * ty * a->w_out + ox0, y0, (size_t) n_out * sizeof (float));
      if (2 * ty + 1 < a->h_out)
        memcpy (yo + (2 * ty + 1) * a->w_out + ox0, y1, (size_t) n_out * sizeof (float));
      t += run;
    }
  }
}

static void
tile_task (void *data, int64_t begin, int64_t end, int thread)
{
  wino_job *job = data; /* not const: the dnnl flag may be cleared */
  const ts_conv2d_args *a = job->a;

  for (int64_t t = begin; t < end; t++) {
    int64_t b = t / job->n_blocks, t0 = (t % job->n_blocks) * job->block;
    int64_t np = t0 + job->block <= job->tiles ? job->block : job->tiles - t0;
    const float *x = ts_cpu_f32 (a->x) + b * a->c_in * a->h * a->w_in;
    float *y = ts_cpu_f32 (a->y) + b * a->c_out * a->h_out * a->w_out;
    float *v = job->cpu->scratch[thread], *m = v + 16 * a->c_in * job->block;
    float *rows = m + 16 * a->c_out * job->block;

    input_transform (job, x, t0, np, v, rows);
    if (!atomic_load_explicit (&job->dnnl, memory_order_relaxed)
        || ts_cpu_dnnl_batched_local (job->cpu, thread, 16, a->c_out, np, a->c_in, job->u, v, m)
               != TS_OK) {
      atomic_store_explicit (&job->dnnl, false, memory_order_relaxed);
      for (int xi = 0; xi < 16; xi++)
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) a->c_out, (int) np,
                     (int) a->c_in, 1.0f, job->u + xi * a->c_out * a->c_in, (int) a->c_in,
                     v + xi * a->c_in * np, (int) np, 0.0f, m + xi * a->c_out * np, (int) np);
    }
    output_transform (job, m, t0, np, y, rows);
  }
}

ts_status
ts_cpu_conv2d_winograd (ts_cpu *cpu, const ts_conv2d_args *a, const float *w,
                        const float *bias, ts_error *err)
{
  wino_job job = { .cpu = cpu, .a = a, .w = w, .bias = bias };
  size_t u_floats = (size_t) (16 * a->c_out * a->c_in);
  int64_t per_tile = 16 * (a->c_in + a->c_out), want;
  ts_status st;

  job.tiles_y = (a->h_out + 1) / 2;
  job.tiles_x = (a->w_out + 1) / 2;
  job.tiles = job.tiles_y * job.tiles_x;
  /* Tiles per task: as many as the scratch holds (a multiple of 16 for the GEMMs' edge),
   * but at least two tasks per thread when the image has them. */
  job.block = WINO_SCRATCH_FLOATS / per_tile / 16 * 16;
  if (job.block < 16)
    job.block = 16;
  want = (2 * cpu->n_threads + a->batch - 1) / a->batch;
  if ((job.tiles + want - 1) / want < job.block)
    job.block = ((job.tiles + want - 1) / want + 15) / 16 * 16;
  if (job.block > job.tiles)
    job.block = job.tiles;
  job.n_blocks = (job.tiles + job.block - 1) / job.block;

  if (cpu->wino_floats < u_floats) {
    float *p = malloc (u_floats * sizeof (float));
    if (!p)
      return ts_error_set (err, TS_ERR_NOMEM, "conv2d: cannot allocate %zu bytes of Winograd filters",
                           u_floats * sizeof (float));
    free (cpu->wino);
    cpu->wino = p;
    cpu->wino_floats = u_floats;
  }
  job.u = cpu->wino;
#ifdef TS_HAVE_OPENMP
  /* Where oneDNN runs fp32 products on AVX-512 (ts_cpu.dnnl_f32_wide), and each pool
   * thread is a thread of OpenMP's team, inside whose region oneDNN stays on its caller. */
  atomic_init (&job.dnnl, cpu->dnnl_f32_wide);
#else
  atomic_init (&job.dnnl, false);
#endif
  if ((st = ts_cpu_scratch_reserve (cpu, (size_t) (per_tile * job.block + 12 * job.tiles_x + 96),
                                    "conv2d", err))
      != TS_OK)
    return st;
  ts_cpu_parallel_for (cpu, a->c_out, 1, filter_task, &job);
  ts_cpu_parallel_for (cpu, a->batch * job.n_blocks, 1, tile_task, &job);
  return TS_OK;
}
