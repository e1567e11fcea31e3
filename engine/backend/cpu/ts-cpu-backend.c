/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-backend — the CPU backend's object: host buffers, weight upload (kept in the
 * source dtype on the reference path, widened to f32 once on the fast path), the ops
 * vtable, the persistent worker pool used by the fast path, and the argument checks every
 * op runs first. The kernels themselves live in one file per family (ts-cpu-<family>.c).
 */
#include "backend/cpu/ts-cpu.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef TS_HAVE_OPENBLAS_THREADS
#include <cblas.h>
#endif

#define TS_CPU_MAX_THREADS 256

/* ---- argument validation ---- */

ts_status
ts_cpu_check_sizes (const char *op, const char *names, const int64_t *values, int n,
                    ts_error *err)
{
  const char *name = names;

  for (int i = 0; i < n; i++) {
    const char *comma = strchr (name, ',');
    int len = comma ? (int) (comma - name) : (int) strlen (name);
    if (values[i] < 0)
      return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %.*s = %lld is negative", op, len,
                           name, (long long) values[i]);
    name = comma ? comma + 1 : name + len;
  }
  return TS_OK;
}

ts_status
ts_cpu_check_region (const char *op, const char *arg, ts_ref r, size_t elem_size, int n_dims,
                     const int64_t *counts, const int64_t *strides, ts_error *err)
{
  uint64_t last = 0; /* index of the last element touched */
  size_t end;

  if (!r.buf)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %s is absent (NULL buffer)", op, arg);
  if (r.offset % elem_size != 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "%s: %s offset %zu is not a multiple of the element size %zu", op, arg,
                         r.offset, elem_size);
  for (int i = 0; i < n_dims; i++) {
    uint64_t span;
    if (counts[i] < 0 || strides[i] < 0)
      return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %s has a negative size or stride",
                           op, arg);
    if (counts[i] == 0)
      return TS_OK;
    if (__builtin_mul_overflow ((uint64_t) (counts[i] - 1), (uint64_t) strides[i], &span)
        || __builtin_add_overflow (last, span, &last))
      goto too_big;
  }
  if (last >= SIZE_MAX || !ts_mul_size ((size_t) last + 1, elem_size, &end)
      || !ts_add_size (end, r.offset, &end))
    goto too_big;
  if (end > r.buf->size)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "%s: %s needs bytes [%zu, %zu) but its buffer holds %zu bytes", op, arg,
                         r.offset, end, r.buf->size);
  return TS_OK;

too_big:
  return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %s: extent overflows the address space", op,
                       arg);
}

ts_status
ts_cpu_check_matrix (const char *op, const char *arg, ts_ref r, int64_t rows, int64_t cols,
                     int64_t ld, ts_error *err)
{
  return ts_cpu_check_batched (op, arg, r, 1, 0, rows, cols, ld, err);
}

ts_status
ts_cpu_check_batched (const char *op, const char *arg, ts_ref r, int64_t batch, int64_t bs,
                      int64_t rows, int64_t cols, int64_t ld, ts_error *err)
{
  int64_t counts[3] = { batch, rows, cols };
  int64_t strides[3] = { bs, ld, 1 };

  if (ld < cols)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "%s: %s row stride %lld is smaller than its %lld columns", op, arg,
                         (long long) ld, (long long) cols);
  if (bs < 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %s batch stride %lld is negative", op,
                         arg, (long long) bs);
  return ts_cpu_check_region (op, arg, r, sizeof (float), 3, counts, strides, err);
}

ts_status
ts_cpu_check_dense (const char *op, const char *arg, ts_ref r, int n_dims, const int64_t *dims,
                    ts_error *err)
{
  int64_t total = 1, stride = 1;

  for (int i = 0; i < n_dims; i++) {
    if (dims[i] < 0)
      return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %s has a negative dimension", op, arg);
    if (__builtin_mul_overflow (total, dims[i], &total))
      return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %s: size overflows", op, arg);
  }
  return ts_cpu_check_region (op, arg, r, sizeof (float), 1, &total, &stride, err);
}

ts_status
ts_cpu_check_weight (const char *op, const char *arg, const ts_weight *w, int64_t n_elements,
                     ts_error *err)
{
  size_t need;
  const char *name;

  if (!w)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: weight %s is NULL", op, arg);
  name = w->name ? w->name : "(unnamed)";
  if (!w->buf)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: weight %s '%s' has no buffer", op, arg,
                         name);
  if (w->dtype != TS_DTYPE_F32 && w->dtype != TS_DTYPE_F16 && w->dtype != TS_DTYPE_BF16)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: weight %s '%s' is stored as %s", op, arg,
                         name, ts_dtype_name (w->dtype) ? ts_dtype_name (w->dtype) : "?");
  if (w->n_elements != n_elements)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "%s: weight %s '%s' has %lld elements, the op needs %lld", op, arg,
                         name, (long long) w->n_elements, (long long) n_elements);
  if (n_elements < 0 || !ts_mul_size ((size_t) n_elements, ts_dtype_size (w->dtype), &need)
      || need > w->buf->size)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: weight %s '%s' does not fit its buffer",
                         op, arg, name);
  return TS_OK;
}

/* ---- worker pool ---- */

struct ts_cpu_pool {
  pthread_mutex_t mutex;
  pthread_cond_t start, done;
  pthread_t *threads;
  int n_workers;  /* threads besides the caller */
  int n_started;
  uint64_t generation;
  int n_busy;
  bool quit;
  /* the job being run */
  ts_cpu_task_fn fn;
  void *ctx;
  int64_t n, grain;
  atomic_int_fast64_t next;
};

typedef struct {
  ts_cpu_pool *pool;
  int index;
} ts_cpu_worker;

static void
pool_run_chunks (ts_cpu_pool *pool, int thread)
{
  for (;;) {
    int64_t begin = atomic_fetch_add (&pool->next, pool->grain);
    if (begin >= pool->n)
      break;
    pool->fn (pool->ctx, begin, begin + pool->grain < pool->n ? begin + pool->grain : pool->n,
              thread);
  }
}

static void *
pool_worker_main (void *data)
{
  ts_cpu_worker *self = data;
  ts_cpu_pool *pool = self->pool;
  int index = self->index;
  uint64_t seen = 0;

  free (self);
  pthread_mutex_lock (&pool->mutex);
  for (;;) {
    while (pool->generation == seen && !pool->quit)
      pthread_cond_wait (&pool->start, &pool->mutex);
    if (pool->quit)
      break;
    seen = pool->generation;
    pthread_mutex_unlock (&pool->mutex);

    pool_run_chunks (pool, index);

    pthread_mutex_lock (&pool->mutex);
    if (--pool->n_busy == 0)
      pthread_cond_signal (&pool->done);
  }
  pthread_mutex_unlock (&pool->mutex);
  return NULL;
}

static void
pool_free (ts_cpu_pool *pool)
{
  if (!pool)
    return;
  pthread_mutex_lock (&pool->mutex);
  pool->quit = true;
  pthread_cond_broadcast (&pool->start);
  pthread_mutex_unlock (&pool->mutex);
  for (int i = 0; i < pool->n_started; i++)
    pthread_join (pool->threads[i], NULL);
  pthread_cond_destroy (&pool->start);
  pthread_cond_destroy (&pool->done);
  pthread_mutex_destroy (&pool->mutex);
  free (pool->threads);
  free (pool);
}

static ts_cpu_pool *
pool_new (int n_workers, ts_error *err)
{
  ts_cpu_pool *pool = calloc (1, sizeof *pool);

  if (!pool) {
    ts_error_set (err, TS_ERR_NOMEM, "cpu: cannot allocate the worker pool");
    return NULL;
  }
  pthread_mutex_init (&pool->mutex, NULL);
  pthread_cond_init (&pool->start, NULL);
  pthread_cond_init (&pool->done, NULL);
  atomic_init (&pool->next, 0);
  pool->threads = calloc ((size_t) n_workers, sizeof *pool->threads);
  if (!pool->threads) {
    ts_error_set (err, TS_ERR_NOMEM, "cpu: cannot allocate the worker pool");
    goto fail;
  }
  pool->n_workers = n_workers;
  for (int i = 0; i < n_workers; i++) {
    ts_cpu_worker *w = malloc (sizeof *w);
    int rc;
    if (!w) {
      ts_error_set (err, TS_ERR_NOMEM, "cpu: cannot allocate the worker pool");
      goto fail;
    }
    w->pool = pool;
    w->index = i + 1;
    rc = pthread_create (&pool->threads[i], NULL, pool_worker_main, w);
    if (rc != 0) {
      free (w);
      ts_error_set (err, TS_ERR_NOMEM, "cpu: cannot start worker thread %d of %d (error %d)",
                    i + 1, n_workers, rc);
      goto fail;
    }
    pool->n_started++;
  }
  return pool;

fail:
  pool_free (pool);
  return NULL;
}

void
ts_cpu_parallel_for (ts_cpu *cpu, int64_t n, int64_t grain, ts_cpu_task_fn fn, void *ctx)
{
  ts_cpu_pool *pool = cpu->pool;

  if (n <= 0)
    return;
  if (grain < 1)
    grain = 1;
  if (!pool || n <= grain) {
    fn (ctx, 0, n, 0);
    return;
  }
  pthread_mutex_lock (&pool->mutex);
  pool->fn = fn;
  pool->ctx = ctx;
  pool->n = n;
  pool->grain = grain;
  atomic_store (&pool->next, 0);
  pool->n_busy = pool->n_workers;
  pool->generation++;
  pthread_cond_broadcast (&pool->start);
  pthread_mutex_unlock (&pool->mutex);

  pool_run_chunks (pool, 0);

  pthread_mutex_lock (&pool->mutex);
  while (pool->n_busy > 0)
    pthread_cond_wait (&pool->done, &pool->mutex);
  pthread_mutex_unlock (&pool->mutex);
}

ts_status
ts_cpu_scratch_reserve (ts_cpu *cpu, size_t n_floats, const char *op, ts_error *err)
{
  for (int t = 0; t < cpu->n_threads; t++) {
    float *p;
    if (cpu->scratch_floats[t] >= n_floats)
      continue;
    if (n_floats > SIZE_MAX / sizeof (float) || !(p = malloc (n_floats * sizeof (float))))
      return ts_error_set (err, TS_ERR_NOMEM, "%s: cannot allocate %zu bytes of scratch", op,
                           n_floats * sizeof (float));
    free (cpu->scratch[t]);
    cpu->scratch[t] = p;
    cpu->scratch_floats[t] = n_floats;
  }
  return TS_OK;
}

/* ---- buffers ---- */

/* Buffers from this size up are private anonymous mappings of their own rather than
 * malloc memory. glibc raises its mmap threshold (up to 32 MiB) after such a block is
 * freed and then serves blocks of that size from the heap, where a freed block need not go
 * back to the system: the VQ decoder's stream of band buffers then kept hundreds of MB of
 * freed memory resident. A mapping is returned on free and reads as zeros. */
#define CPU_MMAP_BYTES ((size_t) 1 << 20)

static ts_buffer *
cpu_buffer_new (void *impl, size_t size_bytes, ts_error *err)
{
  ts_buffer *buf = calloc (1, sizeof *buf);

  (void) impl;
  if (!buf || size_bytes > PTRDIFF_MAX) /* no allocator can return more than PTRDIFF_MAX */
    goto fail;
  /* A fresh buffer reads as zeros, which keeps runs reproducible; large ones cost nothing
   * until touched. */
  if (size_bytes >= CPU_MMAP_BYTES) {
    void *p = mmap (NULL, size_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    buf->data = p == MAP_FAILED ? NULL : p;
  } else {
    buf->data = calloc (size_bytes ? size_bytes : 1, 1);
  }
  if (!buf->data)
    goto fail;
  buf->size = size_bytes;
  return buf;

fail:
  free (buf);
  ts_error_set (err, TS_ERR_NOMEM, "cpu: cannot allocate a buffer of %zu bytes", size_bytes);
  return NULL;
}

static void
cpu_buffer_free (void *impl, ts_buffer *buf)
{
  (void) impl;
  if (!buf)
    return;
  if (buf->size >= CPU_MMAP_BYTES)
    munmap (buf->data, buf->size);
  else
    free (buf->data);
  free (buf);
}

static ts_status
check_transfer (const char *op, ts_ref r, const void *host, size_t size_bytes, ts_error *err)
{
  size_t end;

  if (!r.buf)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: buffer is NULL", op);
  if (!host && size_bytes > 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: host pointer is NULL", op);
  if (!ts_add_size (r.offset, size_bytes, &end) || end > r.buf->size)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "%s: %zu bytes at offset %zu exceed the buffer's %zu bytes", op,
                         size_bytes, r.offset, r.buf->size);
  return TS_OK;
}

static ts_status
cpu_upload (void *impl, ts_ref dst, const void *src, size_t size_bytes, ts_error *err)
{
  ts_status st = check_transfer ("upload", dst, src, size_bytes, err);

  (void) impl;
  if (st != TS_OK)
    return st;
  if (size_bytes)
    memcpy (dst.buf->data + dst.offset, src, size_bytes);
  return TS_OK;
}

static ts_status
cpu_download (void *impl, ts_ref src, void *dst, size_t size_bytes, ts_error *err)
{
  ts_status st = check_transfer ("download", src, dst, size_bytes, err);

  (void) impl;
  if (st != TS_OK)
    return st;
  if (size_bytes)
    memcpy (dst, src.buf->data + src.offset, size_bytes);
  return TS_OK;
}

/* ---- weights ---- */

static ts_status
cpu_weight_upload (void *impl, ts_weight *w, const char *name, ts_dtype src_dtype,
                   const void *data, int n_dims, const int64_t *shape, ts_error *err)
{
  ts_cpu *cpu = impl;
  const char *label = name ? name : "(unnamed)";
  ts_dtype store;
  int64_t n = 1;
  size_t n_bytes;

  if (!w)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "weight_upload: '%s': weight is NULL", label);
  memset (w, 0, sizeof *w);
  if (src_dtype != TS_DTYPE_F32 && src_dtype != TS_DTYPE_F16 && src_dtype != TS_DTYPE_BF16)
    return ts_error_set (err, TS_ERR_UNSUPPORTED,
                         "weight_upload: '%s': dtype %s is not F32, F16 or BF16", label,
                         ts_dtype_name (src_dtype) ? ts_dtype_name (src_dtype) : "?");
  if (n_dims < 1 || n_dims > 4 || !shape)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "weight_upload: '%s': %d dimensions (1 to 4)",
                         label, n_dims);
  for (int i = 0; i < n_dims; i++) {
    if (shape[i] < 0 || __builtin_mul_overflow (n, shape[i], &n))
      return ts_error_set (err, TS_ERR_INVALID_ARG, "weight_upload: '%s': bad shape", label);
  }
  if (!data && n > 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "weight_upload: '%s': data is NULL", label);

  store = cpu->reference ? src_dtype : TS_DTYPE_F32;
  if (!ts_mul_size ((size_t) n, ts_dtype_size (store), &n_bytes))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "weight_upload: '%s': too large", label);
  w->buf = cpu_buffer_new (impl, n_bytes, err);
  if (!w->buf) {
    ts_error_prefix (err, "weight_upload: '%s'", label);
    return TS_ERR_NOMEM;
  }
  if (store == src_dtype) {
    if (n_bytes)
      memcpy (w->buf->data, data, n_bytes);
  } else {
    /* The fast path widens once here so that GEMMs run on f32 (the values are exact). */
    const uint16_t *src = data;
    float *dst = (float *) (void *) w->buf->data;
    if (src_dtype == TS_DTYPE_F16) {
      for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy (&h, src + i, sizeof h);
        dst[i] = ts_cpu_f16_to_f32 (h);
      }
    } else {
      for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy (&h, src + i, sizeof h);
        dst[i] = ts_cpu_bf16_to_f32 (h);
      }
    }
  }
  w->dtype = store;
  w->n_dims = n_dims;
  for (int i = 0; i < 4; i++)
    w->shape[i] = i < n_dims ? shape[i] : 1;
  w->n_elements = n;
  w->name = name;
  return TS_OK;
}

static void
cpu_weight_free (void *impl, ts_weight *w)
{
  if (!w)
    return;
  cpu_buffer_free (impl, w->buf);
  memset (w, 0, sizeof *w);
}

/* ---- the object ---- */

/* Host memory: an operand may span any buffer. */
static size_t
cpu_max_operand_bytes (void *impl)
{
  (void) impl;
  return SIZE_MAX;
}

static ts_status
cpu_sync (void *impl, ts_error *err)
{
  (void) impl;
  (void) err;
  return TS_OK; /* every op has finished when it returns */
}

static void
cpu_destroy (void *impl)
{
  ts_cpu *cpu = impl;

  if (!cpu)
    return;
  pool_free (cpu->pool);
  for (int t = 0; cpu->scratch && t < cpu->n_threads; t++)
    free (cpu->scratch[t]);
  free (cpu->scratch);
  free (cpu->scratch_floats);
  free (cpu);
}

#define CPU_OPS_INIT(NAME)                                                                   \
  {                                                                                          \
    .name = NAME, .buffer_new = cpu_buffer_new, .buffer_free = cpu_buffer_free,              \
    .upload = cpu_upload, .download = cpu_download, .weight_upload = cpu_weight_upload,      \
    .weight_free = cpu_weight_free, .matmul = ts_cpu_matmul, .norm = ts_cpu_norm,            \
    .softmax = ts_cpu_softmax, .attention = ts_cpu_attention, .rope = ts_cpu_rope,           \
    .act = ts_cpu_act, .elementwise = ts_cpu_elementwise, .transpose = ts_cpu_transpose,     \
    .conv2d = ts_cpu_conv2d, .conv_transpose2d = ts_cpu_conv_transpose2d,                    \
    .group_norm = ts_cpu_group_norm, .upsample = ts_cpu_upsample, .embed = ts_cpu_embed,     \
    .sample = ts_cpu_sample, .max_operand_bytes = cpu_max_operand_bytes,                    \
    .sync = cpu_sync, .destroy = cpu_destroy,                                                \
  }

static const ts_backend_ops cpu_ref_ops = CPU_OPS_INIT ("cpu-ref");
static const ts_backend_ops cpu_fast_ops = CPU_OPS_INIT ("cpu");

static bool
env_forces_reference (void)
{
  const char *v = getenv ("TS_CPU_REFERENCE");
  return v && *v && strcmp (v, "0") != 0;
}

ts_status
ts_backend_cpu_new (ts_backend *out, bool reference, int n_threads, ts_error *err)
{
  ts_cpu *cpu = NULL;
  ts_status st;

  if (!out)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "cpu: output backend is NULL");
  out->ops = NULL;
  out->impl = NULL;

  if (!reference && env_forces_reference ()) {
    TS_LOG_I ("cpu: TS_CPU_REFERENCE is set: using the reference path");
    reference = true;
  }
  if (n_threads <= 0) {
    long n = sysconf (_SC_NPROCESSORS_ONLN);
    n_threads = n > 0 ? (int) (n < TS_CPU_MAX_THREADS ? n : TS_CPU_MAX_THREADS) : 1;
  }
  if (n_threads > TS_CPU_MAX_THREADS)
    n_threads = TS_CPU_MAX_THREADS;
  if (reference)
    n_threads = 1;

  cpu = calloc (1, sizeof *cpu);
  if (!cpu)
    goto nomem;
  cpu->reference = reference;
  cpu->n_threads = n_threads;
  cpu->scratch = calloc ((size_t) n_threads, sizeof *cpu->scratch);
  cpu->scratch_floats = calloc ((size_t) n_threads, sizeof *cpu->scratch_floats);
  if (!cpu->scratch || !cpu->scratch_floats)
    goto nomem;
  if (n_threads > 1) {
    cpu->pool = pool_new (n_threads - 1, err);
    if (!cpu->pool) {
      st = err ? err->code : TS_ERR_NOMEM;
      goto fail;
    }
  }
#ifdef TS_HAVE_OPENBLAS_THREADS
  /* Every GEMM is split over our own pool, and the attention and convolution kernels call
   * sgemm from several pool threads at once. A threaded OpenBLAS would serialise those
   * calls on its level-3 lock (OpenBLAS PR #1875) or oversubscribe the cores, while
   * single-threaded calls run concurrently; the split measured as fast as OpenBLAS's own
   * threading for the transformer's shapes. The setting is process-wide. */
  if (!reference)
    openblas_set_num_threads (1);
#endif
  TS_LOG_D ("cpu: %s path, %d thread%s", reference ? "reference" : "fast", n_threads,
            n_threads == 1 ? "" : "s");

  out->ops = reference ? &cpu_ref_ops : &cpu_fast_ops;
  out->impl = cpu;
  return TS_OK;

nomem:
  st = ts_error_set (err, TS_ERR_NOMEM, "cpu: cannot allocate the backend");
fail:
  cpu_destroy (cpu);
  return st;
}
