/* SPDX-License-Identifier: MIT
 *
 * ts-st-writer — writes a safetensors file from tensors whose data is produced on the fly
 * by a callback, so a full-size checkpoint (gigabytes of random weights for benchmarks,
 * `tessera-cli make-random-model`) never has to sit in memory. The layout is the format's
 * canonical one: tensors packed in name order, the JSON header space-padded to a multiple
 * of 8. The file is written to a temporary name and renamed into place when complete.
 */
#ifndef TS_ST_WRITER_H
#define TS_ST_WRITER_H

#include "tessera.h"

/* Fills n elements (starting at element `first`) of the tensor into dst, in the tensor's
 * dtype. */
typedef void (*ts_st_fill_fn) (void *user_data, const char *name, ts_dtype dtype, size_t first,
                               size_t n, void *dst);

typedef struct {
  const char *name;
  ts_dtype dtype;
  int n_dims;
  int64_t shape[4];
} ts_st_writer_tensor;

/* Writes path with the given tensors (names must be unique). metadata: NULL or
 * NULL-terminated key, value pairs for `__metadata__`. */
ts_status ts_st_write_file (const char *path, const ts_st_writer_tensor *tensors, size_t n,
                            const char *const *metadata, ts_st_fill_fn fill, void *user_data,
                            ts_error *err);

#endif /* TS_ST_WRITER_H */
