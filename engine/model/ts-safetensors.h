/* SPDX-License-Identifier: MIT
 *
 * ts-safetensors — a zero-copy reader for the safetensors format, the first stage of
 * loading a model: every weight file of the diffusers folder goes through it.
 *
 * A file is mmap'd read-only; tensor data pointers point into the mapping and stay valid
 * until the file is freed. Validation follows the format's rules strictly (header length,
 * JSON object, unique names, known dtypes, shape x dtype size == byte range with
 * overflow-checked arithmetic, ranges that tile the data section exactly: no overlap, no
 * gap, no trailing bytes), and every failure is a returned TS_ERR_FORMAT/TS_ERR_IO that
 * names the file and the tensor. Tensor data is little-endian, read in place.
 *
 * The mapping is MAP_PRIVATE and read-only: a file truncated by another process while it
 * is open makes later reads of the data fault (SIGBUS), as with any mmap reader.
 *
 * Thread-safety: an opened file or set is immutable, so concurrent readers are safe;
 * opening and freeing are Unsafe per object.
 *
 * A ts_st_set groups the files of one checkpoint: a single file, a sharded checkpoint
 * (`NAME.safetensors.index.json` + shards) or a variant (`NAME.fp16.safetensors`).
 */
#ifndef TS_SAFETENSORS_H
#define TS_SAFETENSORS_H

#include "tessera.h"

#define TS_ST_MAX_DIMS 8
/* The largest JSON header accepted. The real Meissonic checkpoints' headers are 100,688
 * bytes (transformer, 868 entries), 46,752 (text encoder) and 31,248 (VQ-VAE), about 116
 * bytes per tensor; 2 MiB is a 20x margin, room for about 18,000 tensors. The format's
 * own 100 MB limit let a hostile header cost 1.7 GB of RSS and 7.7 s of parsing. */
#define TS_ST_MAX_HEADER (2u * 1024u * 1024u)

typedef struct {
  const char *name;   /* owned by the ts_safetensors (a copy of the header's key) */
  ts_dtype dtype;
  int n_dims;
  int64_t shape[TS_ST_MAX_DIMS];
  size_t n_elements;
  const void *data;   /* into the mapping (may be unaligned for odd offsets) */
  size_t size_bytes;
  const char *file;   /* path of the file that holds it (owned by the ts_safetensors) */
  bool mapped;        /* data is in a read-only file mapping (ts_safetensors_open) */
} ts_st_tensor;

typedef struct ts_safetensors ts_safetensors;

/* Maps and validates one file. NULL on failure with err naming the file (and tensor):
 * TS_ERR_NOT_FOUND when it does not exist, TS_ERR_IO when it cannot be read or mapped,
 * TS_ERR_FORMAT when it breaks the format, TS_ERR_UNSUPPORTED for a valid file this
 * reader cannot represent (more than TS_ST_MAX_DIMS dimensions, dtypes outside ts_dtype
 * such as F4 or C64). */
ts_safetensors *ts_safetensors_open (const char *path, ts_error *err);
/* Parses a buffer the caller keeps alive (for tests and fuzzing); `name` is used in
 * messages. The buffer is not copied. */
ts_safetensors *ts_safetensors_open_memory (const void *data, size_t size, const char *name,
                                            ts_error *err);
void ts_safetensors_free (ts_safetensors *st);

size_t ts_safetensors_n_tensors (const ts_safetensors *st);
/* Tensors in name order (strcmp); NULL when i is out of range. */
const ts_st_tensor *ts_safetensors_tensor (const ts_safetensors *st, size_t i);
/* Binary search by exact name; NULL when absent. */
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
 * sharded index. TS_ERR_NOT_FOUND when neither exists. For a sharded checkpoint every
 * weight_map value must be a plain file name in dir (no '/', no ".."), every listed
 * tensor must be in its shard, every shard tensor must be listed, and no name may be in
 * two shards; a violation is a TS_ERR_FORMAT naming the index file. Tensors are in name
 * order across all files; ts_st_set_file() lists the files actually opened. */
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

/* Bit-exact IEEE conversions. Narrowing rounds to nearest even (subnormals included),
 * overflows to +-inf and keeps NaN a NaN (quieted, sign and top payload bits kept). */
float ts_f16_to_f32 (uint16_t h);
float ts_bf16_to_f32 (uint16_t h);
uint16_t ts_f32_to_f16 (float f);
uint16_t ts_f32_to_bf16 (float f);

/* Widens the n_elements values of a float tensor (F32/F16/BF16/F64/F8_E4M3/F8_E5M2) into
 * out, which holds n_elements floats. F64 beyond the f32 range becomes +-inf. F8_E4M3 is
 * the "fn" flavour (no inf; S.1111.111 is NaN). TS_ERR_UNSUPPORTED for other dtypes.
 * Handles unaligned sources. */
ts_status ts_st_tensor_to_f32 (const ts_st_tensor *t, float *out, ts_error *err);
/* Reads the n_elements values of an integer tensor (BOOL/U8/I8/I16/U16/I32/U32/I64/U64)
 * into out as int64 (BOOL as 0/1). TS_ERR_UNSUPPORTED for float dtypes and for a U64
 * value above INT64_MAX. */
ts_status ts_st_tensor_to_i64 (const ts_st_tensor *t, int64_t *out, ts_error *err);

/* Checks that no element of a float tensor is NaN or infinite: a branch-free scan of the
 * raw bits (an all-ones exponent), several elements per 64-bit word; the 3 GB of the real
 * model's f16 weights take about 0.4-0.6 s (docs/reliability.md). TS_ERR_FORMAT naming
 * the file, the tensor and the first bad element otherwise. Integer tensors always pass. */
ts_status ts_st_tensor_check_finite (const ts_st_tensor *t, ts_error *err);

/* Tells the kernel that t's bytes will not be read again soon: the whole pages inside them
 * leave the process's resident set (they stay in the page cache and read back from the
 * file if touched). Once a tensor is copied into a backend this keeps a load from holding
 * the file's pages and the copies at the same time. Does nothing for a tensor of a memory
 * buffer (ts_safetensors_open_memory). The data stays valid. */
void ts_st_tensor_release (const ts_st_tensor *t);

#endif /* TS_SAFETENSORS_H */
