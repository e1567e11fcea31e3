/* SPDX-License-Identifier: MIT
 *
 * ts-weights — checked weight uploads for the stages. See ts-weights.h.
 */
#include "model/ts-weights.h"

#include "model/ts-config.h"

#include <stdarg.h>
#include <string.h>

typedef struct {
  ts_weight w;
  char name[TS_TENSOR_NAME_MAX];
} entry;

struct ts_weight_set {
  const ts_backend *be;
  const char *component;
  entry **items; /* pointers, so a returned ts_weight never moves */
  size_t n, capacity;
};

ts_weight_set *
ts_weight_set_new (const ts_backend *be, const char *component)
{
  ts_weight_set *ws = calloc (1, sizeof *ws);
  if (ws) {
    ws->be = be;
    ws->component = component;
  }
  return ws;
}

void
ts_weight_set_free (ts_weight_set *ws)
{
  if (!ws)
    return;
  for (size_t i = 0; i < ws->n; i++) {
    ts_weight_free (ws->be, &ws->items[i]->w);
    free (ws->items[i]);
  }
  free (ws->items);
  free (ws);
}

/* Per thread: loads on different threads (the app's worker, tests) do not see each other's. */
static _Thread_local bool (*load_abort_fn) (void *data);
static _Thread_local void *load_abort_data;

void
ts_weights_set_abort (bool (*fn) (void *data), void *data)
{
  load_abort_fn = fn;
  load_abort_data = fn ? data : NULL;
}

const ts_weight *
ts_weight_set_load (ts_weight_set *ws, const ts_st_set *ckpt, int n_dims, const int64_t *shape,
                    int upload_n_dims, ts_error *err, const char *fmt, ...)
{
  const ts_st_tensor *t;
  entry *e;
  va_list ap;
  bool same;

  if (load_abort_fn && load_abort_fn (load_abort_data)) {
    ts_error_set (err, TS_ERR_CANCELLED, "%s: loading cancelled", ws->component);
    return NULL;
  }
  if (ws->n == ws->capacity) {
    size_t cap = ws->capacity ? 2 * ws->capacity : 64;
    entry **grown = realloc (ws->items, cap * sizeof *grown);
    if (!grown) {
      ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory", ws->component);
      return NULL;
    }
    ws->items = grown;
    ws->capacity = cap;
  }
  e = calloc (1, sizeof *e);
  if (!e) {
    ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory", ws->component);
    return NULL;
  }
  va_start (ap, fmt);
  vsnprintf (e->name, sizeof e->name, fmt, ap);
  va_end (ap);

  t = ts_st_set_find (ckpt, e->name);
  if (!t) {
    ts_error_set (err, TS_ERR_FORMAT, "%s: tensor '%s' is missing from the checkpoint",
                  ws->component, e->name);
    goto fail;
  }
  if (t->dtype != TS_DTYPE_F32 && t->dtype != TS_DTYPE_F16 && t->dtype != TS_DTYPE_BF16) {
    ts_error_set (err, TS_ERR_FORMAT, "%s: tensor '%s': expected F32, F16 or BF16, got %s",
                  ws->component, e->name, ts_dtype_name (t->dtype));
    goto fail;
  }
  same = t->n_dims == n_dims;
  for (int i = 0; same && i < n_dims; i++)
    same = t->shape[i] == shape[i];
  if (!same) {
    char want[96], got[96];
    ts_tensor_shape_format (shape, n_dims, want, sizeof want);
    ts_tensor_shape_format (t->shape, t->n_dims, got, sizeof got);
    ts_error_set (err, TS_ERR_FORMAT, "%s: tensor '%s': expected shape %s, got %s %s",
                  ws->component, e->name, want, got, ts_dtype_name (t->dtype));
    goto fail;
  }
  /* NaN or Inf in a weight would otherwise surface steps later as non-finite logits (or,
   * in the VQ-VAE, a silently black image) with no file named. */
  if (ts_st_tensor_check_finite (t, err) != TS_OK) {
    ts_error_prefix (err, "%s", ws->component);
    goto fail;
  }
  if (upload_n_dims == 2 && n_dims == 4) {
    TS_ASSERT (shape[2] == 1 && shape[3] == 1);
  } else {
    upload_n_dims = n_dims;
  }
  if (ts_weight_upload (ws->be, &e->w, e->name, t->dtype, t->data, upload_n_dims,
                        shape, err) != TS_OK) {
    ts_error_prefix (err, "%s: uploading '%s'", ws->component, e->name);
    goto fail;
  }
  /* The backend holds its copy now: the file's pages need not stay resident beside it. */
  ts_st_tensor_release (t);
  ws->items[ws->n++] = e;
  return &e->w;

fail:
  free (e);
  return NULL;
}
