/* SPDX-License-Identifier: MIT
 *
 * ts-st-writer — streaming safetensors writer. See ts-st-writer.h.
 */
#include "devkit/ts-st-writer.h"

#include "core/ts-common.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

static int
cmp_tensor_name (const void *a, const void *b)
{
  const ts_st_writer_tensor *const *x = a, *const *y = b;
  return strcmp ((*x)->name, (*y)->name);
}

static ts_status
write_all (FILE *f, const void *data, size_t n, const char *path, ts_error *err)
{
  if (fwrite (data, 1, n, f) != n)
    return ts_error_set (err, TS_ERR_IO, "%s: write failed: %s", path, strerror (errno));
  return TS_OK;
}

ts_status
ts_st_write_file (const char *path, const ts_st_writer_tensor *tensors, size_t n,
                  const char *const *metadata, ts_st_fill_fn fill, void *user_data,
                  ts_error *err)
{
  const ts_st_writer_tensor **sorted = NULL;
  cJSON *root = NULL;
  char *header = NULL, *tmp_path = NULL;
  unsigned char *chunk = NULL;
  FILE *f = NULL;
  size_t offset = 0, header_len, padded_len;
  ts_status status = TS_OK;
  const size_t chunk_elems = 1u << 20;

  sorted = calloc (n ? n : 1, sizeof *sorted);
  root = cJSON_CreateObject ();
  chunk = malloc (chunk_elems * 8);
  tmp_path = malloc (strlen (path) + 16);
  if (!sorted || !root || !chunk || !tmp_path) {
    status = ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory", path);
    goto fail;
  }
  for (size_t i = 0; i < n; i++)
    sorted[i] = &tensors[i];
  qsort (sorted, n, sizeof *sorted, cmp_tensor_name);

  if (metadata && metadata[0]) {
    cJSON *meta = cJSON_AddObjectToObject (root, "__metadata__");
    for (size_t i = 0; metadata[i] && metadata[i + 1]; i += 2)
      cJSON_AddStringToObject (meta, metadata[i], metadata[i + 1]);
  }
  for (size_t i = 0; i < n; i++) {
    const ts_st_writer_tensor *t = sorted[i];
    size_t count = 1, bytes;
    cJSON *obj, *shape, *offs;

    if (i > 0 && strcmp (sorted[i - 1]->name, t->name) == 0) {
      status = ts_error_set (err, TS_ERR_INVALID_ARG, "%s: duplicate tensor '%s'", path, t->name);
      goto fail;
    }
    for (int d = 0; d < t->n_dims; d++)
      if (t->shape[d] < 0 || !ts_mul_size (count, (size_t) t->shape[d], &count)) {
        status = ts_error_set (err, TS_ERR_INVALID_ARG, "%s: tensor '%s': bad shape", path, t->name);
        goto fail;
      }
    if (!ts_mul_size (count, ts_dtype_size (t->dtype), &bytes) || ts_dtype_size (t->dtype) == 0) {
      status = ts_error_set (err, TS_ERR_INVALID_ARG, "%s: tensor '%s': bad size", path, t->name);
      goto fail;
    }
    obj = cJSON_AddObjectToObject (root, t->name);
    cJSON_AddStringToObject (obj, "dtype", ts_dtype_name (t->dtype));
    shape = cJSON_AddArrayToObject (obj, "shape");
    for (int d = 0; d < t->n_dims; d++)
      cJSON_AddItemToArray (shape, cJSON_CreateNumber ((double) t->shape[d]));
    offs = cJSON_AddArrayToObject (obj, "data_offsets");
    cJSON_AddItemToArray (offs, cJSON_CreateNumber ((double) offset));
    cJSON_AddItemToArray (offs, cJSON_CreateNumber ((double) (offset + bytes)));
    offset += bytes;
  }
  header = cJSON_PrintUnformatted (root);
  if (!header) {
    status = ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory", path);
    goto fail;
  }
  header_len = strlen (header);
  padded_len = (header_len + 7) & ~(size_t) 7;

  snprintf (tmp_path, strlen (path) + 16, "%s.partial", path);
  f = fopen (tmp_path, "wb");
  if (!f) {
    status = ts_error_set (err, TS_ERR_IO, "%s: %s", tmp_path, strerror (errno));
    goto fail;
  }
  {
    unsigned char len8[8];
    uint64_t v = padded_len;
    for (int i = 0; i < 8; i++)
      len8[i] = (unsigned char) (v >> (8 * i));
    if ((status = write_all (f, len8, 8, path, err)) != TS_OK
        || (status = write_all (f, header, header_len, path, err)) != TS_OK
        || (status = write_all (f, "       ", padded_len - header_len, path, err)) != TS_OK)
      goto fail;
  }
  for (size_t i = 0; i < n; i++) {
    const ts_st_writer_tensor *t = sorted[i];
    size_t count = 1, esize = ts_dtype_size (t->dtype);
    for (int d = 0; d < t->n_dims; d++)
      count *= (size_t) t->shape[d];
    for (size_t first = 0; first < count; first += chunk_elems) {
      size_t m = count - first < chunk_elems ? count - first : chunk_elems;
      fill (user_data, t->name, t->dtype, first, m, chunk);
      if ((status = write_all (f, chunk, m * esize, path, err)) != TS_OK)
        goto fail;
    }
  }
  if (fflush (f) != 0 || fsync (fileno (f)) != 0) {
    status = ts_error_set (err, TS_ERR_IO, "%s: %s", path, strerror (errno));
    goto fail;
  }
  if (fclose (f) != 0) {
    f = NULL;
    status = ts_error_set (err, TS_ERR_IO, "%s: %s", path, strerror (errno));
    goto fail;
  }
  f = NULL;
  if (rename (tmp_path, path) != 0) {
    status = ts_error_set (err, TS_ERR_IO, "%s: %s", path, strerror (errno));
    goto fail;
  }

fail:
  if (f)
    fclose (f);
  if (status != TS_OK && tmp_path)
    unlink (tmp_path);
  free (tmp_path);
  free (chunk);
  free (header);
  cJSON_Delete (root);
  free (sorted);
  return status;
}
