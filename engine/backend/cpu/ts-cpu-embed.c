/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-embed — embedding lookup (CLIP token and position embeddings, the transformer's
 * token embedding and the VQ codebook lookup). Every id is checked against the table
 * before anything is written, so a bad id is an error and never an out-of-bounds read.
 */
#include "backend/cpu/ts-cpu.h"

ts_status
ts_cpu_embed (void *impl, const ts_embed_args *a, ts_error *err)
{
  const int32_t *ids;
  float *y;
  const float *table32;

  (void) impl;
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
      ts_cpu_widen (a->table->dtype,
                    a->table->buf->data + (size_t) (row * a->dim) * ts_dtype_size (a->table->dtype),
                    y + i * a->dim, a->dim);
  }
  return TS_OK;
}
