/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-elementwise — the glue between layers: residual adds, products, gated residuals
 * (AdaLN gate_msa / gate_mlp), classifier-free guidance, bias adds, strided copies for
 * concatenating and splitting streams, and the per-batch 2-D transpose that turns NCHW
 * into NHWC and back. All memory-bound, one pass each; the fast path splits rows (or
 * 32 x 32 transpose tiles) over the pool.
 */
#include "backend/cpu/ts-cpu.h"

/* Rows [r0, r1). Each element is read before it is written, so y may alias a or b. */
static void
ew_rows (const ts_elementwise_args *a, int64_t r0, int64_t r1)
{
  const float *pa = ts_cpu_f32 (a->a);
  const float *pb = a->b.buf ? ts_cpu_f32 (a->b) : NULL;
  const float *pg = a->gate.buf ? ts_cpu_f32 (a->gate) : NULL;
  float *py = ts_cpu_f32 (a->y);

  for (int64_t r = r0; r < r1; r++) {
    const float *ar = pa + r * a->lda;
    float *yr = py + r * a->ldy;
    const float *br = NULL, *gr = NULL;
    if (a->kind == TS_EW_ADD || a->kind == TS_EW_MUL || a->kind == TS_EW_GATED_ADD
        || a->kind == TS_EW_CFG)
      br = pb + r * a->ldb;
    if (a->kind == TS_EW_GATED_ADD || a->kind == TS_EW_BIAS_ADD)
      gr = pg + (r / a->rows_per_batch) * a->gate_stride;
    switch (a->kind) {
    case TS_EW_ADD:
      for (int64_t c = 0; c < a->cols; c++)
        yr[c] = ar[c] + br[c];
      break;
    case TS_EW_MUL:
      for (int64_t c = 0; c < a->cols; c++)
        yr[c] = ar[c] * br[c];
      break;
    case TS_EW_GATED_ADD:
      for (int64_t c = 0; c < a->cols; c++)
        yr[c] = ar[c] + br[c] * gr[c];
      break;
    case TS_EW_CFG:
      for (int64_t c = 0; c < a->cols; c++)
        yr[c] = ar[c] + a->s * (br[c] - ar[c]);
      break;
    case TS_EW_COPY:
      for (int64_t c = 0; c < a->cols; c++)
        yr[c] = ar[c];
      break;
    case TS_EW_BIAS_ADD:
      for (int64_t c = 0; c < a->cols; c++)
        yr[c] = ar[c] + gr[c];
      break;
    }
  }
}

static void
ew_task (void *data, int64_t begin, int64_t end, int thread)
{
  (void) thread;
  ew_rows (data, begin, end);
}

ts_status
ts_cpu_elementwise (void *impl, const ts_elementwise_args *a, ts_error *err)
{
  ts_cpu *cpu = impl;

  (void) err; /* cannot fail: the arguments were checked above the backends */
  if (cpu->reference)
    ew_rows (a, 0, a->rows);
  else
    ts_cpu_parallel_for (cpu, a->rows, 1 + 32768 / (a->cols + 1), ew_task, (void *) a);
  return TS_OK;
}

/* ---- transpose ---- */

/* Tiles of TILE x TILE keep both the reads and the writes within a few cache lines. */
#define TILE 32

/* Tile rows [begin, end) over all batches: t -> (batch, block of TILE rows of x). */
static void
transpose_task (void *data, int64_t begin, int64_t end, int thread)
{
  const ts_transpose_args *a = data;
  int64_t row_blocks = (a->rows + TILE - 1) / TILE;

  (void) thread;
  for (int64_t t = begin; t < end; t++) {
    int64_t b = t / row_blocks, r0 = (t % row_blocks) * TILE;
    int64_t r1 = r0 + TILE < a->rows ? r0 + TILE : a->rows;
    const float *xb = ts_cpu_f32 (a->x) + b * a->rows * a->cols;
    float *yb = ts_cpu_f32 (a->y) + b * a->rows * a->cols;
    for (int64_t c0 = 0; c0 < a->cols; c0 += TILE) {
      int64_t c1 = c0 + TILE < a->cols ? c0 + TILE : a->cols;
      for (int64_t c = c0; c < c1; c++)
        for (int64_t r = r0; r < r1; r++)
          yb[c * a->rows + r] = xb[r * a->cols + c];
    }
  }
}

ts_status
ts_cpu_transpose (void *impl, const ts_transpose_args *a, ts_error *err)
{
  ts_cpu *cpu = impl;
  const float *x;
  float *y;

  (void) err; /* cannot fail: the arguments were checked above the backends */
  if (!cpu->reference) {
    int64_t n_tiles = a->batch * ((a->rows + TILE - 1) / TILE);
    ts_cpu_parallel_for (cpu, n_tiles, 1 + 16384 / (TILE * a->cols + 1), transpose_task,
                         (void *) a);
    return TS_OK;
  }
  x = ts_cpu_f32 (a->x);
  y = ts_cpu_f32 (a->y);
  for (int64_t b = 0; b < a->batch; b++) {
    const float *xb = x + b * a->rows * a->cols;
    float *yb = y + b * a->rows * a->cols;
    for (int64_t r = 0; r < a->rows; r++)
      for (int64_t c = 0; c < a->cols; c++)
        yb[c * a->rows + r] = xb[r * a->cols + c];
  }
  return TS_OK;
}
