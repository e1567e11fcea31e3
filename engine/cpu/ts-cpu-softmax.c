/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-softmax — in-place softmax over contiguous rows, max-subtracted so that large
 * logits do not overflow, with an fp32 sum (as torch.softmax on fp32 tensors). The
 * attention kernels use the same row routine on their score blocks.
 */
#include "ts-cpu.h"

#include <math.h>

static ts_status
softmax_check (const ts_softmax_args *a, ts_error *err)
{
  int64_t sizes[2];
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "softmax: args is NULL");
  sizes[0] = a->rows, sizes[1] = a->dim;
  if ((st = ts_cpu_check_sizes ("softmax", "rows,dim", sizes, 2, err)) != TS_OK)
    return st;
  return ts_cpu_check_matrix ("softmax", "x", a->x, a->rows, a->dim, a->dim, err);
}

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

ts_status
ts_cpu_softmax (void *impl, const ts_softmax_args *a, ts_error *err)
{
  ts_status st = softmax_check (a, err);
  float *x;

  (void) impl;
  if (st != TS_OK)
    return st;
  x = ts_cpu_f32 (a->x);
  for (int64_t r = 0; r < a->rows; r++)
    softmax_row_ref (x + r * a->dim, a->dim);
  return TS_OK;
}
