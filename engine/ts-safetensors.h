/* SPDX-License-Identifier: MIT
 *
 * ts-safetensors — a zero-copy reader for the safetensors format, the first stage of
 * loading a model: every weight file of the diffusers folder goes through it.
 *
 * A file is mmap'd read-only; tensor data pointers point into the mapping and stay valid
 * until the file is freed. Validation follows the format's rules strictly (header length,
 * JSON object, unique names, known dtypes, shape x dtype size == byte range with
 * overflow-checked arithmetic, ranges inside the data section and not overlapping), and
 * every failure is a returned TS_ERR_FORMAT/TS_ERR_IO that names the file and the tensor.
 *
 * A ts_st_set groups the files of one checkpoint: a single file, a sharded checkpoint
 * (`NAME.safetensors.index.json` + shards) or a variant (`NAME.fp16.safetensors`).
 */
#ifndef TS_SAFETENSORS_H
#define TS_SAFETENSORS_H

#include "tessera.h"

#define TS_ST_MAX_DIMS 8
#define TS_ST_MAX_HEADER (100u * 1024u * 1024u)

typedef struct {
  const char *name;   /* borrowed from the file */
  ts_dtype dtype;
  int n_dims;
  int64_t shape[TS_ST_MAX_DIMS];
  size_t n_elements;
  const void *data;   /* into the mapping (may be unaligned for odd offsets) */
  size_t size_bytes;
  const char *file;   /* path of the file that holds it (borrowed) */
} ts_st_tensor;

typedef struct ts_safetensors ts_safetensors;

/* Maps and validates one file. NULL on failure with err naming the file (and tensor). */
ts_safetensors *ts_safetensors_open (const char *path, ts_error *err);
/* Parses a buffer the caller keeps alive (for tests and fuzzing); `name` is used in
 * messages. The buffer is not copied. */
ts_safetensors *ts_safetensors_open_memory (const void *data, size_t size, const char *name,
                                            ts_error *err);
void ts_safetensors_free (ts_safetensors *st);

size_t ts_safetensors_n_tensors (const ts_safetensors *st);
/* Tensors in name order. */
const ts_st_tensor *ts_safetensors_tensor (const ts_safetensors *st, size_t i);
const ts_st_tensor *ts_safetensors_find (const ts_safetensors *st, const char *name);
/* The `__metadata__` value for key, or NULL. */
const char *ts_safetensors_metadata (const ts_safetensors *st, const char *key);
/* Total file size in bytes. */
size_t ts_safetensors_size_bytes (const ts_safetensors *st);

/* ---- checkpoints: one or more files ---- */

typedef struct ts_st_set ts_st_set;

/* Opens the checkpoint `base` (e.g. "diffusion_pytorch_model" or "model") in dir.
 * With variant non-NULL (e.g. "fp16") `base.variant.safetensors` (or its sharded index
 * `base.safetensors.index.variant.json` / `base.variant.safetensors.index.json`) is
 * preferred and the plain file is the fallback. Looks for the single file first, then the
 * sharded index. TS_ERR_NOT_FOUND when neither exists. Duplicate tensor names across
 * shards are a TS_ERR_FORMAT. */
ts_st_set *ts_st_set_open (const char *dir, const char *base, const char *variant,
                           ts_error *err);
void ts_st_set_free (ts_st_set *set);
const ts_st_tensor *ts_st_set_find (const ts_st_set *set, const char *name);
size_t ts_st_set_n_tensors (const ts_st_set *set);
const ts_st_tensor *ts_st_set_tensor (const ts_st_set *set, size_t i);
size_t ts_st_set_n_files (const ts_st_set *set);
const char *ts_st_set_file (const ts_st_set *set, size_t i);
size_t ts_st_set_size_bytes (const ts_st_set *set);

/* ---- element conversion ---- */

float ts_f16_to_f32 (uint16_t h);
float ts_bf16_to_f32 (uint16_t h);
uint16_t ts_f32_to_f16 (float f);   /* round to nearest even */
uint16_t ts_f32_to_bf16 (float f);  /* round to nearest even */

/* Widens n elements of a float tensor (F32/F16/BF16/F64) to f32. TS_ERR_UNSUPPORTED for
 * other dtypes. Handles unaligned sources. */
ts_status ts_st_tensor_to_f32 (const ts_st_tensor *t, float *out, ts_error *err);
/* Reads an integer tensor (I64/I32/U8/...) into int64. */
ts_status ts_st_tensor_to_i64 (const ts_st_tensor *t, int64_t *out, ts_error *err);

#endif /* TS_SAFETENSORS_H */
