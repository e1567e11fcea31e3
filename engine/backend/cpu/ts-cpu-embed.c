/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-embed — embedding lookup (CLIP token and position embeddings, the transformer's
 * token embedding and the VQ codebook lookup). Every id is checked against the table
 * before anything is written, so a bad id is an error and never an out-of-bounds read.
 */
#include "backend/cpu/ts-cpu.h"

ts_status
ts_cpu_embed_check (const ts_embed_args *a, ts_error *err)
{
  int64_t sizes[2], one = 1, n_elements;
  const char *name;
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "embed: args is NULL");
  sizes[0] = a->n, sizes[1] = a->dim;
  if ((st = ts_cpu_check_sizes ("embed", "n,dim", sizes, 2, err)) != TS_OK)
    return st;
  if (!a->table)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "embed: table is NULL");
  name = a->table->name ? a->table->name : "(unnamed)";
  if (a->table->n_dims != 2 || a->table->shape[1] != a->dim)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "embed: table '%s' must be [n_rows, dim = %lld] (it has %d dimensions, "
                         "last %lld)",
                         name, (long long) a->dim, a->table->n_dims,
                         (long long) a->table->shape[a->table->n_dims >= 1 && a->table->n_dims <= 4
                                                         ? a->table->n_dims - 1
                                                         : 0]);
  if (__builtin_mul_overflow (a->table->shape[0], a->dim, &n_elements))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "embed: table '%s' size overflows", name);
  if ((st = ts_cpu_check_weight ("embed", "table", a->table, n_elements, err)) != TS_OK
      || (st = ts_cpu_check_region ("embed", "ids", a->ids, sizeof (int32_t), 1, &a->n, &one, err))
             != TS_OK
      || (st = ts_cpu_check_matrix ("embed", "y", a->y, a->n, a->dim, a->dim, err)) != TS_OK)
    return st;
  return TS_OK;
}

ts_status
ts_cpu_embed (void *impl, const ts_embed_args *a, ts_error *err)
{
  ts_status st = ts_cpu_embed_check (a, err);
  const int32_t *ids;
  float *y;
  const float *table32;

  (void) impl;
  if (st != TS_OK)
    return st;
  ids = ts_cpu_i32 (a->ids);
  for (int64_t i = 0; i < a->n; i++)
    if (ids[i] < 0 || ids[i] >= a->table->shape[0])
      return ts_error_set (err, TS_ERR_INVALID_ARG,
                           "embed: id %d at position %lld is outside table '%s' of %lld rows",
                           (int) ids[i], (long long) i,
                           a->table->name ? a->table->name : "(unnamed)",
                           (long long) a->table->shape[0]);
  y = ts_cpu_f32 (a->y);
  table32 = ts_cpu_weight_f32 (a->table);
  for (int64_t i = 0; i < a->n; i++) {
    int64_t row = ids[i];
    if (table32)
      memcpy (y + i * a->dim, table32 + row * a->dim, (size_t) a->dim * sizeof (float));
    else
      for (int64_t j = 0; j < a->dim; j++)
        y[i * a->dim + j] = ts_cpu_weight_get (a->table, row * a->dim + j);
  }
  return TS_OK;
}
