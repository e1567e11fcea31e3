/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-elementwise — the glue between layers: residual adds, products, gated residuals
 * (AdaLN gate_msa / gate_mlp), classifier-free guidance, bias adds, strided copies for
 * concatenating and splitting streams, and the per-batch 2-D transpose that turns NCHW
 * into NHWC and back. All memory-bound, one pass each; the fast path splits rows (or
 * 32 x 32 transpose tiles) over the pool.
 */
#include "backend/cpu/ts-cpu.h"

static const char *
ew_name (ts_ew_kind kind)
{
  switch (kind) {
  case TS_EW_ADD: return "elementwise(add)";
  case TS_EW_MUL: return "elementwise(mul)";
  case TS_EW_GATED_ADD: return "elementwise(gated_add)";
  case TS_EW_CFG: return "elementwise(cfg)";
  case TS_EW_COPY: return "elementwise(copy)";
  case TS_EW_BIAS_ADD: return "elementwise(bias_add)";
  }
  return "elementwise";
}

ts_status
ts_cpu_elementwise_check (const ts_elementwise_args *a, ts_error *err)
{
  int64_t sizes[5];
  const char *op;
  bool need_b, need_gate;
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "elementwise: args is NULL");
  if (a->kind != TS_EW_ADD && a->kind != TS_EW_MUL && a->kind != TS_EW_GATED_ADD
      && a->kind != TS_EW_CFG && a->kind != TS_EW_COPY && a->kind != TS_EW_BIAS_ADD)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "elementwise: unknown kind %d", (int) a->kind);
  op = ew_name (a->kind);
  need_b = a->kind == TS_EW_ADD || a->kind == TS_EW_MUL || a->kind == TS_EW_GATED_ADD
           || a->kind == TS_EW_CFG;
  need_gate = a->kind == TS_EW_GATED_ADD || a->kind == TS_EW_BIAS_ADD;
  sizes[0] = a->rows, sizes[1] = a->cols, sizes[2] = a->lda, sizes[3] = a->ldy;
  sizes[4] = need_b ? a->ldb : 0;
  if ((st = ts_cpu_check_sizes (op, "rows,cols,lda,ldy,ldb", sizes, 5, err)) != TS_OK
      || (st = ts_cpu_check_matrix (op, "a", a->a, a->rows, a->cols, a->lda, err)) != TS_OK
      || (st = ts_cpu_check_matrix (op, "y", a->y, a->rows, a->cols, a->ldy, err)) != TS_OK)
    return st;
  if (need_b && (st = ts_cpu_check_matrix (op, "b", a->b, a->rows, a->cols, a->ldb, err)) != TS_OK)
    return st;
  if (need_gate) {
    int64_t n_batches;
    if (a->rows_per_batch <= 0)
      return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: rows_per_batch = %lld must be positive",
                           op, (long long) a->rows_per_batch);
    n_batches = a->rows / a->rows_per_batch + (a->rows % a->rows_per_batch != 0);
    if ((st = ts_cpu_check_matrix (op, "gate", a->gate, n_batches, a->cols, a->gate_stride, err))
        != TS_OK)
      return st;
  }
  return TS_OK;
}

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
  ts_status st = ts_cpu_elementwise_check (a, err);

  if (st != TS_OK)
    return st;
  if (cpu->reference)
    ew_rows (a, 0, a->rows);
  else
    ts_cpu_parallel_for (cpu, a->rows, 1 + 32768 / (a->cols + 1), ew_task, (void *) a);
  return TS_OK;
}

/* ---- transpose ---- */

ts_status
ts_cpu_transpose_check (const ts_transpose_args *a, ts_error *err)
{
  int64_t dims[3];
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "transpose: args is NULL");
  dims[0] = a->batch, dims[1] = a->rows, dims[2] = a->cols;
  if ((st = ts_cpu_check_sizes ("transpose", "batch,rows,cols", dims, 3, err)) != TS_OK
      || (st = ts_cpu_check_dense ("transpose", "x", a->x, 3, dims, err)) != TS_OK
      || (st = ts_cpu_check_dense ("transpose", "y", a->y, 3, dims, err)) != TS_OK)
    return st;
  return TS_OK;
}

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
  ts_status st = ts_cpu_transpose_check (a, err);
  const float *x;
  float *y;

  if (st != TS_OK)
    return st;
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
