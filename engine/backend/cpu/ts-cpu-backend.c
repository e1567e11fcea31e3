/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-backend — the CPU backend's object: host buffers, weight upload (kept in the
 * source dtype, except the fast path's 1-D weights, widened to f32 once; see ts-cpu.h),
 * the ops vtable and the persistent worker pool used by the fast path. The kernels
 * themselves live in one file per family (ts-cpu-<family>.c).
 */
#include "backend/cpu/ts-cpu.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifdef TS_HAVE_OPENBLAS_THREADS
#include <cblas.h>
#endif
#ifdef TS_HAVE_OPENMP
#include <omp.h>
#endif

#define TS_CPU_MAX_THREADS 256
/* How often the calling thread polls the abort hook while it waits for the workers. */
#define ABORT_POLL_NS 10000000L

/* ---- worker pool ----
 *
 * Two implementations of one contract (ts_cpu_parallel_for). In a build with oneDNN and
 * OpenMP (TS_HAVE_OPENMP) the chunks run on OpenMP's thread team, the same threads that run
 * oneDNN's matmuls: libgomp's workers spin for a while after each parallel region, and a
 * second pool of our own would find them still holding the cores after every oneDNN call
 * (measured: a bf16 step 7 % slower, the softmax between attention's two products 2x
 * slower). Otherwise a persistent pthread pool runs them. */

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
  ts_cpu *cpu;
  ts_cpu_task_fn fn;
  void *ctx;
  int64_t n, grain;
  atomic_int_fast64_t next;
  atomic_int busy; /* OpenMP: threads besides the caller inside a chunk loop */
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
    if (begin >= pool->n || ts_cpu_should_stop (pool->cpu, thread))
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
  atomic_init (&pool->busy, 0);
  pool->threads = calloc ((size_t) n_workers + 1, sizeof *pool->threads);
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

static void
pool_set_job (ts_cpu_pool *pool, ts_cpu *cpu, int64_t n, int64_t grain, ts_cpu_task_fn fn,
              void *ctx)
{
  pool->cpu = cpu;
  pool->fn = fn;
  pool->ctx = ctx;
  pool->n = n;
  pool->grain = grain;
  atomic_store (&pool->next, 0);
}

#ifdef TS_HAVE_OPENMP
/* One parallel region over the team. The caller (thread 0) keeps polling the abort hook,
 * every ABORT_POLL_NS, while other threads finish their last chunks. */
static void
pool_run_openmp (ts_cpu *cpu, ts_cpu_pool *pool)
{
#pragma omp parallel num_threads (cpu->n_threads)
  {
    int thread = omp_get_thread_num ();

    if (thread != 0) {
      atomic_fetch_add (&pool->busy, 1); /* before claiming a chunk: thread 0 waits for it */
      pool_run_chunks (pool, thread);
      atomic_fetch_sub (&pool->busy, 1);
    } else {
      struct timespec last, now;
      pool_run_chunks (pool, 0);
      clock_gettime (CLOCK_MONOTONIC, &last);
      for (unsigned spin = 0; atomic_load (&pool->busy) > 0; spin++) {
        if (!cpu->abort_fn || (spin & 1023) != 0)
          continue;
        clock_gettime (CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - last.tv_sec) * 1000000000L + (now.tv_nsec - last.tv_nsec)
            >= ABORT_POLL_NS) {
          ts_cpu_should_stop (cpu, 0);
          last = now;
        }
      }
    }
  }
}
#endif

void
ts_cpu_parallel_for (ts_cpu *cpu, int64_t n, int64_t grain, ts_cpu_task_fn fn, void *ctx)
{
  ts_cpu_pool *pool = cpu->pool;

  if (n <= 0)
    return;
  if (grain < 1)
    grain = 1;
  if (!pool || n <= grain) {
    /* Chunk by chunk when the op may be cancelled: the tasks are independent per item,
     * so the split changes nothing in the results. */
    int64_t step = cpu->abort_fn ? grain : n;
    for (int64_t begin = 0; begin < n && !ts_cpu_should_stop (cpu, 0); begin += step)
      fn (ctx, begin, begin + step < n ? begin + step : n, 0);
    return;
  }
  if (ts_cpu_should_stop (cpu, 0))
    return;
#ifdef TS_HAVE_OPENMP
  if (pool->n_workers == 0) {
    pool_set_job (pool, cpu, n, grain, fn, ctx);
    atomic_store (&pool->busy, 0);
    pool_run_openmp (cpu, pool);
    return;
  }
#endif
  pthread_mutex_lock (&pool->mutex);
  pool_set_job (pool, cpu, n, grain, fn, ctx);
  pool->n_busy = pool->n_workers;
  pool->generation++;
  pthread_cond_broadcast (&pool->start);
  pthread_mutex_unlock (&pool->mutex);

  pool_run_chunks (pool, 0);

  /* The abort hook is only polled on this thread, which may find no chunk left while the
   * workers still run theirs: it polls every ABORT_POLL_NS while it waits for them. */
  pthread_mutex_lock (&pool->mutex);
  while (pool->n_busy > 0) {
    if (cpu->abort_fn) {
      struct timespec until;
      clock_gettime (CLOCK_REALTIME, &until);
      until.tv_nsec += ABORT_POLL_NS;
      if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
      }
      if (pthread_cond_timedwait (&pool->done, &pool->mutex, &until) != 0)
        ts_cpu_should_stop (cpu, 0);
    } else {
      pthread_cond_wait (&pool->done, &pool->mutex);
    }
  }
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

typedef struct {
  const ts_weight *w;
  float *dst;
} widen_job;

#define WIDEN_CHUNK 65536

static void
widen_task (void *data, int64_t begin, int64_t end, int thread)
{
  const widen_job *job = data;
  int64_t n = job->w->n_elements, i0 = begin * WIDEN_CHUNK;
  int64_t i1 = end * WIDEN_CHUNK < n ? end * WIDEN_CHUNK : n;
  size_t esize = ts_dtype_size (job->w->dtype);

  (void) thread;
  ts_cpu_widen (job->w->dtype, job->w->buf->data + (size_t) i0 * esize, job->dst + i0,
                i1 - i0);
}

const float *
ts_cpu_weight_wide (ts_cpu *cpu, const ts_weight *w, const char *op, ts_error *err)
{
  const float *f32 = ts_cpu_weight_f32 (w);
  widen_job job;
  size_t n = (size_t) w->n_elements;

  if (f32)
    return f32;
  if (cpu->wide_floats < n) {
    float *p = n <= SIZE_MAX / sizeof (float) ? malloc (n * sizeof (float)) : NULL;
    if (!p) {
      ts_error_set (err, TS_ERR_NOMEM, "%s: cannot allocate %zu bytes to widen '%s'", op,
                    n * sizeof (float), w->name ? w->name : "(unnamed)");
      return NULL;
    }
    free (cpu->wide);
    cpu->wide = p;
    cpu->wide_floats = n;
  }
  job.w = w;
  job.dst = cpu->wide;
  /* O(weight) against the GEMM's O(weight x rows), but serial it would still idle the
   * other threads for milliseconds per call. A cancel may leave the buffer half done; the
   * op then reports TS_ERR_CANCELLED and nothing reads it (every call widens afresh). */
  ts_cpu_parallel_for (cpu, ((int64_t) n + WIDEN_CHUNK - 1) / WIDEN_CHUNK, 1, widen_task, &job);
  return cpu->wide;
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
cpu_upload (void *impl, ts_ref dst, const void *src, size_t size_bytes, ts_error *err)
{
  (void) impl;
  (void) err;
  if (size_bytes)
    memcpy (dst.buf->data + dst.offset, src, size_bytes);
  return TS_OK;
}

static ts_status
cpu_download (void *impl, ts_ref src, void *dst, size_t size_bytes, ts_error *err)
{
  (void) impl;
  (void) err;
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

  memset (w, 0, sizeof *w);
  for (int i = 0; i < n_dims; i++)
    n *= shape[i];

  /* The fast path keeps weights of 2+ dimensions 16-bit (widened per GEMM panel, see
   * ts-cpu.h) and widens the small 1-D ones here, once. In precision bf16, weights of 2
   * dimensions (the linear layers' and the embedding tables) are stored bf16, rounded to
   * nearest even from F32 or F16, on both paths. */
  store = cpu->reference || n_dims >= 2 ? src_dtype : TS_DTYPE_F32;
  if (cpu->precision == TS_PRECISION_BF16 && n_dims == 2)
    store = TS_DTYPE_BF16;
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
  } else if (store == TS_DTYPE_BF16) {
    uint16_t *dst = (uint16_t *) (void *) w->buf->data;
    float tmp[256];
    for (int64_t i = 0; i < n; i += 256) {
      int64_t len = n - i < 256 ? n - i : 256;
      ts_cpu_widen (src_dtype, (const unsigned char *) data + (size_t) i * ts_dtype_size (src_dtype),
                    tmp, len);
      for (int64_t j = 0; j < len; j++)
        dst[i + j] = ts_cpu_f32_to_bf16 (tmp[j]);
    }
  } else {
    ts_cpu_widen (src_dtype, data, (float *) (void *) w->buf->data, n);
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
  free (cpu->wide);
  free (cpu->wino);
  free (cpu->xbf);
  free (cpu->attn);
  ts_cpu_dnnl_free (cpu->dnnl);
  free (cpu);
}

static ts_precision
cpu_precision_get (void *impl)
{
  return ((ts_cpu *) impl)->precision;
}

/* Before the first weight is uploaded (the storage rule depends on it). */
static ts_status
cpu_precision_set (void *impl, ts_precision requested, ts_precision *resolved, ts_error *err)
{
  ts_cpu *cpu = impl;
  ts_cpu_bf16_level level = ts_cpu_dnnl_bf16_level ();
  ts_precision p = requested;

  if (p == TS_PRECISION_AUTO)
    p = !cpu->reference && level == TS_CPU_BF16_NATIVE ? TS_PRECISION_BF16 : TS_PRECISION_FP32;
  if (p != TS_PRECISION_FP32 && p != TS_PRECISION_BF16)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "cpu: unknown precision %d", (int) p);
  if (p == TS_PRECISION_BF16 && !cpu->reference) {
    if (level == TS_CPU_BF16_NONE)
      return ts_error_set (err, TS_ERR_UNSUPPORTED,
                           "cpu: precision bf16 needs a CPU with AVX-512 (%s computes bf16 "
                           "only there) and this one has none; use precision fp32 or auto, or "
                           "the cpu-ref backend's slow emulation",
                           ts_cpu_dnnl_version () ? ts_cpu_dnnl_version () : "oneDNN");
    if (!cpu->dnnl && !(cpu->dnnl = ts_cpu_dnnl_new (cpu->n_threads, err)))
      return err ? err->code : TS_ERR_UNSUPPORTED;
  }
  cpu->precision = p;
  if (resolved)
    *resolved = p;
  TS_LOG_D ("cpu: precision %s", ts_precision_name (p));
  return TS_OK;
}

static void
cpu_abort_set (void *impl, ts_should_abort_fn fn, void *data)
{
  ts_cpu *cpu = impl;

  cpu->abort_fn = fn;
  cpu->abort_data = data;
  atomic_store (&cpu->stop, false);
}

/* The ops as the vtable sees them: each starts with the stop latch clear and fails with
 * TS_ERR_CANCELLED when the abort callback stopped it part way (its output is then
 * incomplete). */
#define CPU_OP(FAMILY, ARGS)                                                                 \
  static ts_status cpu_##FAMILY (void *impl, const ARGS *a, ts_error *err)                 \
  {                                                                                          \
    ts_cpu *cpu = impl;                                                                      \
    ts_status st;                                                                            \
    atomic_store_explicit (&cpu->stop, false, memory_order_relaxed);                        \
    st = ts_cpu_##FAMILY (impl, a, err);                                                     \
    if (atomic_exchange (&cpu->stop, false) && st == TS_OK)                                  \
      st = ts_error_set (err, TS_ERR_CANCELLED, #FAMILY ": cancelled");                     \
    return st;                                                                               \
  }

CPU_OP (matmul, ts_matmul_args)
CPU_OP (norm, ts_norm_args)
CPU_OP (softmax, ts_softmax_args)
CPU_OP (attention, ts_attention_args)
CPU_OP (rope, ts_rope_args)
CPU_OP (act, ts_act_args)
CPU_OP (elementwise, ts_elementwise_args)
CPU_OP (transpose, ts_transpose_args)
CPU_OP (conv2d, ts_conv2d_args)
CPU_OP (conv_transpose2d, ts_conv_transpose2d_args)
CPU_OP (group_norm, ts_group_norm_args)
CPU_OP (upsample, ts_upsample_args)

#define CPU_OPS_INIT(NAME, BATCH_INVARIANT)                                                  \
  {                                                                                          \
    .name = NAME, .batch_invariant = BATCH_INVARIANT, .buffer_new = cpu_buffer_new, .buffer_free = cpu_buffer_free,              \
    .upload = cpu_upload, .download = cpu_download, .weight_upload = cpu_weight_upload,      \
    .weight_free = cpu_weight_free, .matmul = cpu_matmul, .norm = cpu_norm,                  \
    .softmax = cpu_softmax, .attention = cpu_attention, .rope = cpu_rope,                    \
    .act = cpu_act, .elementwise = cpu_elementwise, .transpose = cpu_transpose,              \
    .conv2d = cpu_conv2d, .conv_transpose2d = cpu_conv_transpose2d,                          \
    .group_norm = cpu_group_norm, .upsample = cpu_upsample, .embed = ts_cpu_embed,           \
    .sample = ts_cpu_sample, .max_operand_bytes = cpu_max_operand_bytes,                    \
    .abort_set = cpu_abort_set, .precision_set = cpu_precision_set, .sync = cpu_sync,       \
    .precision_get = cpu_precision_get, .destroy = cpu_destroy,                              \
  }

/* The reference path's loops do the same arithmetic for a row whatever the batch; the fast
 * path's OpenBLAS GEMMs and their slabs depend on the row count, and round differently. */
static const ts_backend_ops cpu_ref_ops = CPU_OPS_INIT ("cpu-ref", true);
static const ts_backend_ops cpu_fast_ops = CPU_OPS_INIT ("cpu", false);

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
  cpu->precision = TS_PRECISION_FP32;
  {
    const char *v = getenv ("TESSERA_CPU_WINOGRAD");
    cpu->winograd = !reference && !(v && strcmp (v, "0") == 0);
  }
  atomic_init (&cpu->stop, false);
  cpu->scratch = calloc ((size_t) n_threads, sizeof *cpu->scratch);
  cpu->scratch_floats = calloc ((size_t) n_threads, sizeof *cpu->scratch_floats);
  if (!cpu->scratch || !cpu->scratch_floats)
    goto nomem;
  if (n_threads > 1) {
#ifdef TS_HAVE_OPENMP
    cpu->pool = pool_new (0, err); /* the job's fields; OpenMP's team runs it */
#else
    cpu->pool = pool_new (n_threads - 1, err);
#endif
    if (!cpu->pool) {
      st = err ? err->code : TS_ERR_NOMEM;
      goto fail;
    }
  }
  if (!reference && ts_cpu_dnnl_version ()) {
    const char *v = getenv ("TESSERA_CPU_DNNL");
    ts_error dnnl_err = { TS_OK, "" };
    cpu->dnnl = ts_cpu_dnnl_new (n_threads, &dnnl_err);
    if (!cpu->dnnl)
      TS_LOG_W ("%s: fp32 matmuls stay on OpenBLAS", dnnl_err.message);
    cpu->dnnl_f32 = cpu->dnnl && !(v && strcmp (v, "0") == 0);
    cpu->dnnl_f32_wide = cpu->dnnl_f32 && ts_cpu_dnnl_bf16_level () != TS_CPU_BF16_NONE;
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
