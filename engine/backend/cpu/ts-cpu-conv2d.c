/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-conv2d — NCHW convolutions: nn.Conv2d with zero padding that may be asymmetric
 * (the transformer's down_block pads right and bottom only, the VQ encoder's Downsample2D
 * likewise), and nn.ConvTranspose2d with kernel = stride (the transformer's up_block), in
 * which every input pixel writes its own k x k output patch. The reference path is the
 * direct loop nest with an fp32 accumulator over (c_in, kh, kw).
 *
 * The fast path turns both into GEMMs over blocks of output pixels, one block per pool
 * task, so the scratch stays bounded whatever the image size (a 16-bit weight is widened
 * whole first, ts_cpu_weight_wide):
 *   conv2d:    y[b][c_out, P] = w[c_out, c_in*kh*kw] . col[c_in*kh*kw, P], where col is
 *              the block's im2col (zero where the window hangs over the padding); a 1x1
 *              stride-1 unpadded convolution multiplies x directly.
 *   transpose: t[c_out*k*k, P] = w[c_in, c_out*k*k]^T . x[b][c_in, P], then each column of
 *              t is scattered to its k x k output patch.
 */
#include "backend/cpu/ts-cpu.h"

#include <cblas.h>
#include <limits.h>

/* Scratch per task, in floats (2 MiB): the im2col block or the transposed-conv patch. */
#define CONV_SCRATCH_FLOATS (512 * 1024)

static void
conv2d_ref (ts_cpu *cpu, const ts_conv2d_args *a)
{
  const float *x = ts_cpu_f32 (a->x);
  float *y = ts_cpu_f32 (a->y);
  int64_t hw_in = a->h * a->w_in, hw_out = a->h_out * a->w_out;

  for (int64_t b = 0; b < a->batch; b++) {
    for (int64_t o = 0; o < a->c_out; o++) {
      for (int64_t oy = 0; oy < a->h_out && !ts_cpu_should_stop (cpu, 0); oy++) {
        for (int64_t ox = 0; ox < a->w_out; ox++) {
          float acc = 0.0f;
          for (int64_t c = 0; c < a->c_in; c++) {
            const float *xc = x + (b * a->c_in + c) * hw_in;
            for (int64_t ky = 0; ky < a->kh; ky++) {
              int64_t iy = oy * a->stride - a->pad_top + ky;
              if (iy < 0 || iy >= a->h)
                continue;
              for (int64_t kx = 0; kx < a->kw; kx++) {
                int64_t ix = ox * a->stride - a->pad_left + kx;
                if (ix < 0 || ix >= a->w_in)
                  continue;
                acc += xc[iy * a->w_in + ix]
                       * ts_cpu_weight_get (a->w, ((o * a->c_in + c) * a->kh + ky) * a->kw + kx);
              }
            }
          }
          if (a->bias)
            acc += ts_cpu_weight_get (a->bias, o);
          y[(b * a->c_out + o) * hw_out + oy * a->w_out + ox] = acc;
        }
      }
    }
  }
}

/* Splits P output pixels of each of `batch` images into blocks of at most `cap` pixels
 * (a multiple of 16 when possible), with at least two blocks per thread overall when the
 * image allows it so that the pool stays busy. */
static int64_t
pixel_block (int64_t batch, int64_t pixels, int64_t cap, int n_threads)
{
  int64_t want = 2 * (int64_t) n_threads, per_image = (want + batch - 1) / batch;
  int64_t block = (pixels + per_image - 1) / per_image;

  block = (block + 15) / 16 * 16;
  if (block > cap)
    block = cap >= 16 ? cap / 16 * 16 : cap;
  return block < 1 ? 1 : block;
}

/* One im2col row: for kernel tap (ky, kx) of channel plane xc, the input values under
 * output pixels [p0, p0 + np) (zero over the padding), written to row[0, np). */
static void
im2col_row (const ts_conv2d_args *a, const float *xc, int ky, int kx, int64_t p0, int64_t np,
            float *row)
{
  int64_t p = p0, end = p0 + np;

  while (p < end) {
    int64_t oy = p / a->w_out, ox0 = p % a->w_out;
    int64_t ox1 = a->w_out < ox0 + (end - p) ? a->w_out : ox0 + (end - p);
    int64_t iy = oy * a->stride - a->pad_top + ky;
    float *dst = row + (p - p0);

    if (iy < 0 || iy >= a->h) {
      memset (dst, 0, (size_t) (ox1 - ox0) * sizeof (float));
    } else {
      const float *src = xc + iy * a->w_in;
      for (int64_t ox = ox0; ox < ox1; ox++) {
        int64_t ix = ox * a->stride - a->pad_left + kx;
        dst[ox - ox0] = ix >= 0 && ix < a->w_in ? src[ix] : 0.0f;
      }
    }
    p += ox1 - ox0;
  }
}

typedef struct {
  ts_cpu *cpu;
  const ts_conv2d_args *a;
  const float *w, *bias;
  int64_t kdim, pixels, block, n_blocks;
  bool direct; /* 1x1, stride 1, no padding: x is already the column matrix */
} conv2d_job;

static void
conv2d_task (void *data, int64_t begin, int64_t end, int thread)
{
  const conv2d_job *job = data;
  const ts_conv2d_args *a = job->a;
  float *col = job->cpu->scratch[thread];

  for (int64_t t = begin; t < end; t++) {
    int64_t b = t / job->n_blocks, p0 = (t % job->n_blocks) * job->block;
    int64_t np = p0 + job->block <= job->pixels ? job->block : job->pixels - p0;
    const float *x = ts_cpu_f32 (a->x) + b * a->c_in * a->h * a->w_in;
    float *y = ts_cpu_f32 (a->y) + b * a->c_out * job->pixels + p0;
    const float *bmat;
    int64_t ldb;

    if (job->direct) {
      bmat = x + p0;
      ldb = job->pixels;
    } else {
      /* col[(c, ky, kx), p] for p in [p0, p0 + np) */
      for (int64_t c = 0; c < a->c_in; c++)
        for (int ky = 0; ky < a->kh; ky++)
          for (int kx = 0; kx < a->kw; kx++)
            im2col_row (a, x + c * a->h * a->w_in, ky, kx, p0, np,
                        col + ((c * a->kh + ky) * a->kw + kx) * np);
      bmat = col;
      ldb = np;
    }
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, (int) a->c_out, (int) np,
                 (int) job->kdim, 1.0f, job->w, (int) job->kdim, bmat, (int) ldb, 0.0f, y,
                 (int) job->pixels);
    if (job->bias)
      for (int64_t o = 0; o < a->c_out; o++)
        for (int64_t p = 0; p < np; p++)
          y[o * job->pixels + p] += job->bias[o];
  }
}

ts_status
ts_cpu_conv2d (void *impl, const ts_conv2d_args *a, ts_error *err)
{
  ts_cpu *cpu = impl;
  ts_status st;
  conv2d_job job;
  int64_t cap;

  job.pixels = a->h_out * a->w_out;
  job.kdim = a->c_in * a->kh * a->kw;
  if (a->batch == 0 || a->c_out == 0 || job.pixels == 0)
    return TS_OK;
  job.bias = a->bias ? ts_cpu_weight_f32 (a->bias) : NULL;
  if (cpu->reference || (a->bias && !job.bias) || job.kdim == 0 || job.kdim > INT_MAX
      || a->c_out > INT_MAX || job.pixels > INT_MAX) {
    conv2d_ref (cpu, a);
    return TS_OK;
  }
  if (!(job.w = ts_cpu_weight_wide (cpu, a->w, "conv2d", err)))
    return TS_ERR_NOMEM;
  if (ts_cpu_winograd_applies (cpu, a))
    return ts_cpu_conv2d_winograd (cpu, a, job.w, job.bias, err);
  job.cpu = cpu;
  job.a = a;
  job.direct = a->kh == 1 && a->kw == 1 && a->stride == 1 && a->pad_top == 0
               && a->pad_left == 0 && a->pad_bottom == 0 && a->pad_right == 0;
  cap = job.direct ? job.pixels : CONV_SCRATCH_FLOATS / job.kdim;
  job.block = pixel_block (a->batch, job.pixels, cap < 1 ? 1 : cap, cpu->n_threads);
  job.n_blocks = (job.pixels + job.block - 1) / job.block;
  if (!job.direct
      && (st = ts_cpu_scratch_reserve (cpu, (size_t) (job.kdim * job.block), "conv2d", err))
             != TS_OK)
    return st;
  ts_cpu_parallel_for (cpu, a->batch * job.n_blocks, 1, conv2d_task, &job);
  return TS_OK;
}

/* ---- transposed convolution, kernel = stride ---- */

static void
conv_transpose2d_ref (ts_cpu *cpu, const ts_conv_transpose2d_args *a)
{
  const float *x = ts_cpu_f32 (a->x);
  float *y = ts_cpu_f32 (a->y);
  int64_t k = a->k, h_out = a->h * k, w_out = a->w_in * k;

  for (int64_t b = 0; b < a->batch; b++) {
    for (int64_t o = 0; o < a->c_out; o++) {
      for (int64_t oy = 0; oy < h_out && !ts_cpu_should_stop (cpu, 0); oy++) {
        for (int64_t ox = 0; ox < w_out; ox++) {
          int64_t i = oy / k, p = oy % k, j = ox / k, q = ox % k;
          float acc = 0.0f;
          for (int64_t c = 0; c < a->c_in; c++)
            acc += x[((b * a->c_in + c) * a->h + i) * a->w_in + j]
                   * ts_cpu_weight_get (a->w, ((c * a->c_out + o) * k + p) * k + q);
          if (a->bias)
            acc += ts_cpu_weight_get (a->bias, o);
          y[((b * a->c_out + o) * h_out + oy) * w_out + ox] = acc;
        }
      }
    }
  }
}

typedef struct {
  ts_cpu *cpu;
  const ts_conv_transpose2d_args *a;
  const float *w, *bias;
  int64_t pixels, block, n_blocks, rows; /* rows = c_out * k * k */
} convt_job;

static void
convt_task (void *data, int64_t begin, int64_t end, int thread)
{
  const convt_job *job = data;
  const ts_conv_transpose2d_args *a = job->a;
  float *t_mat = job->cpu->scratch[thread];
  int64_t k = a->k, w_out = a->w_in * k, plane = job->pixels * k * k;

  for (int64_t t = begin; t < end; t++) {
    int64_t b = t / job->n_blocks, p0 = (t % job->n_blocks) * job->block;
    int64_t np = p0 + job->block <= job->pixels ? job->block : job->pixels - p0;
    const float *x = ts_cpu_f32 (a->x) + b * a->c_in * job->pixels + p0;
    float *y = ts_cpu_f32 (a->y) + b * a->c_out * plane;

    cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, (int) job->rows, (int) np,
                 (int) a->c_in, 1.0f, job->w, (int) job->rows, x, (int) job->pixels, 0.0f,
                 t_mat, (int) np);
    for (int64_t o = 0; o < a->c_out; o++) {
      float bias = job->bias ? job->bias[o] : 0.0f;
      for (int64_t pq = 0; pq < k * k; pq++) {
        const float *src = t_mat + (o * k * k + pq) * np;
        int64_t dy = pq / k, dx = pq % k;
        for (int64_t p = 0; p < np; p++) {
          int64_t i = (p0 + p) / a->w_in, j = (p0 + p) % a->w_in;
          y[o * plane + (i * k + dy) * w_out + j * k + dx] = src[p] + bias;
        }
      }
    }
  }
}

ts_status
ts_cpu_conv_transpose2d (void *impl, const ts_conv_transpose2d_args *a, ts_error *err)
{
  ts_cpu *cpu = impl;
  ts_status st;
  convt_job job;
  int64_t cap;

  job.pixels = a->h * a->w_in;
  job.rows = a->c_out * a->k * a->k;
  if (a->batch == 0 || job.rows == 0 || job.pixels == 0)
    return TS_OK;
  job.bias = a->bias ? ts_cpu_weight_f32 (a->bias) : NULL;
  if (cpu->reference || (a->bias && !job.bias) || a->c_in == 0 || a->c_in > INT_MAX
      || job.rows > INT_MAX || job.pixels > INT_MAX) {
    conv_transpose2d_ref (cpu, a);
    return TS_OK;
  }
  if (!(job.w = ts_cpu_weight_wide (cpu, a->w, "conv_transpose2d", err)))
    return TS_ERR_NOMEM;
  job.cpu = cpu;
  job.a = a;
  cap = CONV_SCRATCH_FLOATS / job.rows;
  job.block = pixel_block (a->batch, job.pixels, cap < 1 ? 1 : cap, cpu->n_threads);
  job.n_blocks = (job.pixels + job.block - 1) / job.block;
  if ((st = ts_cpu_scratch_reserve (cpu, (size_t) (job.rows * job.block), "conv_transpose2d",
                                    err))
      != TS_OK)
    return st;
  ts_cpu_parallel_for (cpu, a->batch * job.n_blocks, 1, convt_task, &job);
  return TS_OK;
}
