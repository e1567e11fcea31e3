/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-matmul — the linear layer y = x w^T + bias of every stage (nn.Linear layout, w is
 * [n, k]), and 1x1 convolutions over NHWC data. The reference path is the textbook triple
 * loop with an fp32 accumulator, reading F16/BF16 weights element by element.
 */
#include "ts-cpu.h"

static ts_status
matmul_check (const ts_matmul_args *a, ts_error *err)
{
  int64_t sizes[5];
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "matmul: args is NULL");
  sizes[0] = a->m, sizes[1] = a->n, sizes[2] = a->k, sizes[3] = a->ldx, sizes[4] = a->ldy;
  if ((st = ts_cpu_check_sizes ("matmul", "m,n,k,ldx,ldy", sizes, 5, err)) != TS_OK
      || (st = ts_cpu_check_matrix ("matmul", "x", a->x, a->m, a->k, a->ldx, err)) != TS_OK
      || (st = ts_cpu_check_matrix ("matmul", "y", a->y, a->m, a->n, a->ldy, err)) != TS_OK)
    return st;
  if (a->k > 0 && a->n > INT64_MAX / a->k)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "matmul: n * k overflows");
  if ((st = ts_cpu_check_weight ("matmul", "w", a->w, a->n * a->k, err)) != TS_OK)
    return st;
  if (a->w->n_dims >= 2 && a->w->shape[0] != a->n)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "matmul: weight '%s' has %lld rows (outputs), the op needs n = %lld",
                         a->w->name ? a->w->name : "(unnamed)", (long long) a->w->shape[0],
                         (long long) a->n);
  if (a->bias && (st = ts_cpu_check_weight ("matmul", "bias", a->bias, a->n, err)) != TS_OK)
    return st;
  return TS_OK;
}

static void
matmul_ref (const ts_matmul_args *a)
{
  const float *x = ts_cpu_f32 (a->x);
  float *y = ts_cpu_f32 (a->y);

  for (int64_t i = 0; i < a->m; i++) {
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

ts_status
ts_cpu_matmul (void *impl, const ts_matmul_args *a, ts_error *err)
{
  ts_status st = matmul_check (a, err);

  (void) impl;
  if (st != TS_OK)
    return st;
  matmul_ref (a);
  return TS_OK;
}
