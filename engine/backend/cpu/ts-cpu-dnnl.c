/* SPDX-License-Identifier: MIT
 *
 * ts-cpu-dnnl — oneDNN (DNNL 2.6, Debian's libdnnl-dev) behind the CPU backend: the bf16
 * linear layer of precision mode bf16, and the same matmul in fp32 for comparison with
 * OpenBLAS (bench-cpu-kernels, /kernels/matmul/dnnl-f32).
 *
 * y[m, n] = (accumulate ? y : 0) + x[m, k] w[n, k]^T + bias[n], x and w both f32 or both
 * bf16, y and bias f32, accumulation in f32: one oneDNN matmul primitive whose weights are
 * w viewed as k x n with strides (1, k), so the nn.Linear layout is used as it is stored.
 * Primitives are created once per shape (a small cache; a model has a dozen linear shapes)
 * and run on the calling thread, which oneDNN's OpenMP runtime spreads over n_threads
 * threads. Large products run in row chunks of at most CHUNK_ROWS, so that the abort hook
 * is polled about every 0.1 s even at 2048².
 *
 * oneDNN 2.6 implements bf16 matmul only for AVX-512 (natively with AVX512_BF16 or AMX,
 * emulated on plain AVX512_CORE); below that, ts_cpu_dnnl_bf16_level says NONE and the
 * backend does not offer bf16.
 */
#include "backend/cpu/ts-cpu.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef TS_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>

/* libgomp's, through which oneDNN sizes its parallel regions (declared here so that no
 * OpenMP compiler flag is needed). */
extern void omp_set_num_threads (int n);

#define CACHE_SIZE 48
#define CHUNK_ROWS 2048

typedef struct {
  ts_dtype dtype;
  int64_t m, n, k, ldx, ldy;
  bool accumulate, bias;
  dnnl_primitive_t prim;
  uint64_t used;
} cache_entry;

/* Batched products run by one pool thread on its own (ts_cpu_dnnl_batched_local): a
 * primitive cache, a stream and a scratchpad per thread index, so that no two threads
 * share anything. Primitives created inside the pool's parallel region are built for one
 * thread. */
#define LOCAL_CACHE_SIZE 8

typedef struct {
  int64_t batch, m, n, k;
  dnnl_primitive_t prim;
  size_t scratch_bytes;
  uint64_t used;
} local_entry;

typedef struct {
  dnnl_stream_t stream;
  local_entry cache[LOCAL_CACHE_SIZE];
  uint64_t clock;
  void *scratch;
  size_t scratch_bytes;
} local_state;

struct ts_cpu_dnnl {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  int n_threads;
  cache_entry cache[CACHE_SIZE];
  uint64_t clock;
  local_state *local; /* n_threads entries */
};

static ts_status
dnnl_fail (ts_error *err, dnnl_status_t s, const char *what)
{
  return ts_error_set (err, s == dnnl_out_of_memory ? TS_ERR_NOMEM : TS_ERR_DEVICE,
                       "cpu: oneDNN: %s failed (status %d)", what, (int) s);
}

ts_cpu_dnnl *
ts_cpu_dnnl_new (int n_threads, ts_error *err)
{
  ts_cpu_dnnl *d = calloc (1, sizeof *d);
  dnnl_status_t s;

  if (!d) {
    ts_error_set (err, TS_ERR_NOMEM, "cpu: cannot allocate the oneDNN state");
    return NULL;
  }
  d->n_threads = n_threads > 0 ? n_threads : 1;
  if (!(d->local = calloc ((size_t) d->n_threads, sizeof *d->local))) {
    ts_error_set (err, TS_ERR_NOMEM, "cpu: cannot allocate the oneDNN state");
    free (d);
    return NULL;
  }
  if ((s = dnnl_engine_create (&d->engine, dnnl_cpu, 0)) != dnnl_success) {
    dnnl_fail (err, s, "creating the CPU engine");
    free (d->local);
    free (d);
    return NULL;
  }
  if ((s = dnnl_stream_create (&d->stream, d->engine, dnnl_stream_default_flags))
      != dnnl_success) {
    dnnl_fail (err, s, "creating a stream");
    dnnl_engine_destroy (d->engine);
    free (d->local);
    free (d);
    return NULL;
  }
  return d;
}

void
ts_cpu_dnnl_free (ts_cpu_dnnl *d)
{
  if (!d)
    return;
  for (int i = 0; i < CACHE_SIZE; i++)
    if (d->cache[i].prim)
      dnnl_primitive_destroy (d->cache[i].prim);
  for (int t = 0; t < d->n_threads; t++) {
    local_state *l = &d->local[t];
    for (int i = 0; i < LOCAL_CACHE_SIZE; i++)
      if (l->cache[i].prim)
        dnnl_primitive_destroy (l->cache[i].prim);
    if (l->stream)
      dnnl_stream_destroy (l->stream);
    free (l->scratch);
  }
  free (d->local);
  dnnl_stream_destroy (d->stream);
  dnnl_engine_destroy (d->engine);
  free (d);
}

ts_cpu_bf16_level
ts_cpu_dnnl_bf16_level (void)
{
  dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa ();

  if ((isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16
      || (isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx)
    return TS_CPU_BF16_NATIVE;
  if ((isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core)
    return TS_CPU_BF16_EMULATED;
  return TS_CPU_BF16_NONE;
}

/* The four operands' descriptors, in the order OPERAND_*: x [m, k] (row stride ldx),
 * w [n, k] viewed as k x n with strides (1, k), y [m, n] (row stride ldy), bias [1, n]. */
enum { OPERAND_X, OPERAND_W, OPERAND_Y, OPERAND_BIAS };

static dnnl_status_t
operand_mds (const cache_entry *key, dnnl_memory_desc_t md[4])
{
  dnnl_data_type_t dt = key->dtype == TS_DTYPE_BF16 ? dnnl_bf16 : dnnl_f32;
  dnnl_dims_t dims[4] = { { key->m, key->k }, { key->k, key->n }, { key->m, key->n },
                          { 1, key->n } };
  dnnl_dims_t strides[4] = { { key->ldx, 1 }, { 1, key->k }, { key->ldy, 1 }, { key->n, 1 } };
  dnnl_data_type_t dts[4] = { dt, dt, dnnl_f32, dnnl_f32 };
  dnnl_status_t s = dnnl_success;

  for (int i = 0; i < 4 && s == dnnl_success; i++)
    s = dnnl_memory_desc_init_by_strides (&md[i], 2, dims[i], dts[i], strides[i]);
  return s;
}

static ts_status
primitive_new (ts_cpu_dnnl *d, const cache_entry *key, dnnl_primitive_t *out, ts_error *err)
{
  dnnl_memory_desc_t md[4];
  dnnl_matmul_desc_t desc;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t ops = NULL;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_status_t s;

  *out = NULL;
  if ((s = operand_mds (key, md)) != dnnl_success)
    return dnnl_fail (err, s, "describing a matmul's operands");
  if ((s = dnnl_matmul_desc_init (&desc, &md[OPERAND_X], &md[OPERAND_W],
                                   key->bias ? &md[OPERAND_BIAS] : NULL, &md[OPERAND_Y]))
      != dnnl_success)
    return dnnl_fail (err, s, "describing a matmul");
  if ((s = dnnl_primitive_attr_create (&attr)) != dnnl_success)
    return dnnl_fail (err, s, "creating primitive attributes");
  if (key->accumulate) {
    if ((s = dnnl_post_ops_create (&ops)) != dnnl_success
        || (s = dnnl_post_ops_append_sum (ops, 1.0f)) != dnnl_success
        || (s = dnnl_primitive_attr_set_post_ops (attr, ops)) != dnnl_success)
      goto fail;
  }
  if ((s = dnnl_primitive_desc_create (&pd, &desc, attr, d->engine, NULL)) != dnnl_success)
    goto fail;
  s = dnnl_primitive_create (out, pd);
fail:
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  if (ops)
    dnnl_post_ops_destroy (ops);
  dnnl_primitive_attr_destroy (attr);
  if (s != dnnl_success) {
    *out = NULL;
    return ts_error_set (err, s == dnnl_out_of_memory ? TS_ERR_NOMEM : TS_ERR_UNSUPPORTED,
                         "cpu: oneDNN has no %s matmul for %lld x %lld x %lld (status %d)",
                         key->dtype == TS_DTYPE_BF16 ? "bf16" : "f32", (long long) key->m,
                         (long long) key->n, (long long) key->k, (int) s);
  }
  return TS_OK;
}

/* The cached primitive for key, created on a miss (the least recently used is evicted). */
static ts_status
primitive_get (ts_cpu_dnnl *d, const cache_entry *key, dnnl_primitive_t *out, ts_error *err)
{
  cache_entry *victim = &d->cache[0];
  ts_status st;

  for (int i = 0; i < CACHE_SIZE; i++) {
    cache_entry *e = &d->cache[i];
    if (e->prim && e->dtype == key->dtype && e->m == key->m && e->n == key->n && e->k == key->k
        && e->ldx == key->ldx && e->ldy == key->ldy && e->accumulate == key->accumulate
        && e->bias == key->bias) {
      e->used = ++d->clock;
      *out = e->prim;
      return TS_OK;
    }
    if (!e->prim || (victim->prim && e->used < victim->used))
      victim = e;
  }
  if ((st = primitive_new (d, key, out, err)) != TS_OK)
    return st;
  if (victim->prim)
    dnnl_primitive_destroy (victim->prim);
  *victim = *key;
  victim->prim = *out;
  victim->used = ++d->clock;
  return TS_OK;
}

/* Wraps the n_args buffers ptr[i] (described by md[i], passed as arg ids[i]) in memory
 * objects, runs prim on stream and waits for it. */
static dnnl_status_t
run_primitive (dnnl_engine_t engine, dnnl_stream_t stream, dnnl_primitive_t prim, int n_args,
               const dnnl_memory_desc_t *md, const void *const *ptr, const int *ids)
{
  dnnl_memory_t mem[4] = { NULL, NULL, NULL, NULL };
  dnnl_exec_arg_t args[4];
  dnnl_status_t s = dnnl_success;

  for (int i = 0; i < n_args && s == dnnl_success; i++) {
    s = dnnl_memory_create (&mem[i], &md[i], engine, (void *) ptr[i]);
    args[i].arg = ids[i];
    args[i].memory = mem[i];
  }
  if (s == dnnl_success)
    s = dnnl_primitive_execute (prim, stream, n_args, args);
  if (s == dnnl_success)
    s = dnnl_stream_wait (stream);
  for (int i = 0; i < n_args; i++)
    if (mem[i])
      dnnl_memory_destroy (mem[i]);
  return s;
}

static ts_status
execute (ts_cpu_dnnl *d, dnnl_primitive_t prim, const cache_entry *key, const void *x,
         const void *w, const float *bias, float *y, ts_error *err)
{
  dnnl_memory_desc_t md[4];
  const void *ptr[4] = { x, w, y, bias };
  const int ids[4] = { DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS };
  dnnl_status_t s = operand_mds (key, md);

  if (s == dnnl_success)
    s = run_primitive (d->engine, d->stream, prim, key->bias ? 4 : 3, md, ptr, ids);
  return s == dnnl_success ? TS_OK : dnnl_fail (err, s, "running a matmul");
}

typedef struct {
  const float *x;
  int64_t ldx;
  uint16_t *dst;
  int64_t k;
} round_job;

static void
round_rows (void *data, int64_t begin, int64_t end, int thread)
{
  const round_job *job = data;
  (void) thread;
  for (int64_t i = begin; i < end; i++)
    ts_cpu_bf16_row (job->x + i * job->ldx, job->dst + i * job->k, job->k, 1.0f);
}

ts_status
ts_cpu_dnnl_matmul (ts_cpu *cpu, ts_dtype dtype, const float *x, int64_t ldx, const void *w,
                    const float *bias, float *y, int64_t ldy, int64_t m, int64_t n, int64_t k,
                    bool accumulate, ts_error *err)
{
  ts_cpu_dnnl *d = cpu->dnnl;
  bool bf16 = dtype == TS_DTYPE_BF16;
  int64_t chunk = m < CHUNK_ROWS ? m : CHUNK_ROWS;

  if (!d)
    return ts_error_set (err, TS_ERR_UNSUPPORTED, "cpu: this backend has no oneDNN state");
  if (dtype != TS_DTYPE_F32 && dtype != TS_DTYPE_BF16)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "cpu: oneDNN matmul of dtype %d", (int) dtype);
  if (bf16 && cpu->xbf_elems < (size_t) (chunk * k)) {
    uint16_t *p = realloc (cpu->xbf, (size_t) (chunk * k) * sizeof *p);
    if (!p)
      return ts_error_set (err, TS_ERR_NOMEM, "matmul: cannot allocate %lld bytes for bf16 input",
                           (long long) (chunk * k * 2));
    cpu->xbf = p;
    cpu->xbf_elems = (size_t) (chunk * k);
  }
  omp_set_num_threads (d->n_threads);
  for (int64_t i0 = 0; i0 < m; i0 += CHUNK_ROWS) {
    cache_entry key = { .dtype = dtype, .m = m - i0 < CHUNK_ROWS ? m - i0 : CHUNK_ROWS,
                        .n = n, .k = k, .ldx = bf16 ? k : ldx, .ldy = ldy,
                        .accumulate = accumulate, .bias = bias != NULL };
    const void *xs = x + i0 * ldx;
    dnnl_primitive_t prim;
    ts_status st;

    if (ts_cpu_should_stop (cpu, 0))
      return TS_OK; /* the op wrapper reports the cancel */
    if (bf16) {
      round_job job = { x + i0 * ldx, ldx, cpu->xbf, k };
      ts_cpu_parallel_for (cpu, key.m, 64, round_rows, &job);
      xs = cpu->xbf;
    }
    if ((st = primitive_get (d, &key, &prim, err)) != TS_OK
        || (st = execute (d, prim, &key, xs, w, bias, y + i0 * ldy, err)) != TS_OK)
      return st;
  }
  return TS_OK;
}

ts_status
ts_cpu_dnnl_matmul_bf16 (ts_cpu *cpu, const uint16_t *x, int64_t ldx, const uint16_t *w,
                         float *y, int64_t ldy, int64_t m, int64_t n, int64_t k, ts_error *err)
{
  ts_cpu_dnnl *d = cpu->dnnl;
  cache_entry key = { .dtype = TS_DTYPE_BF16, .m = m, .n = n, .k = k, .ldx = ldx, .ldy = ldy };
  dnnl_primitive_t prim;
  ts_status st;

  if (!d)
    return ts_error_set (err, TS_ERR_UNSUPPORTED, "cpu: this backend has no oneDNN state");
  omp_set_num_threads (d->n_threads);
  if ((st = primitive_get (d, &key, &prim, err)) != TS_OK)
    return st;
  return execute (d, prim, &key, x, w, NULL, y, err);
}

/* c[b] = a[b] x[b] for b < batch, a [m, k], x [k, n], c [m, n], all f32 row-major and
 * contiguous: the three operands' descriptors. */
static dnnl_status_t
batched_mds (const local_entry *key, dnnl_memory_desc_t md[3])
{
  dnnl_dims_t dims[3] = { { key->batch, key->m, key->k }, { key->batch, key->k, key->n },
                          { key->batch, key->m, key->n } };
  dnnl_status_t s = dnnl_success;

  for (int i = 0; i < 3 && s == dnnl_success; i++)
    s = dnnl_memory_desc_init_by_tag (&md[i], 3, dims[i], dnnl_f32, dnnl_abc);
  return s;
}

static dnnl_status_t
batched_new (ts_cpu_dnnl *d, local_entry *key)
{
  dnnl_memory_desc_t md[3];
  dnnl_matmul_desc_t desc;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_status_t s;

  if ((s = batched_mds (key, md)) != dnnl_success
      || (s = dnnl_matmul_desc_init (&desc, &md[0], &md[1], NULL, &md[2])) != dnnl_success
      || (s = dnnl_primitive_attr_create (&attr)) != dnnl_success)
    return s;
  if ((s = dnnl_primitive_attr_set_scratchpad_mode (attr, dnnl_scratchpad_mode_user))
          == dnnl_success
      && (s = dnnl_primitive_desc_create (&pd, &desc, attr, d->engine, NULL)) == dnnl_success) {
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
    key->scratch_bytes = sp ? dnnl_memory_desc_get_size (sp) : 0;
    s = dnnl_primitive_create (&key->prim, pd);
  }
  if (pd)
    dnnl_primitive_desc_destroy (pd);
  dnnl_primitive_attr_destroy (attr);
  return s;
}

ts_status
ts_cpu_dnnl_batched_local (ts_cpu *cpu, int thread, int64_t batch, int64_t m, int64_t n,
                           int64_t k, const float *a, const float *x, float *c)
{
  ts_cpu_dnnl *d = cpu->dnnl;
  local_state *l;
  local_entry key = { .batch = batch, .m = m, .n = n, .k = k }, *e = NULL, *victim;
  dnnl_memory_desc_t md[4];
  const void *ptr[4] = { a, x, c, NULL };
  const int ids[4] = { DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD };
  int n_args = 3;
  dnnl_status_t s;

  if (!d || thread < 0 || thread >= d->n_threads)
    return TS_ERR_UNSUPPORTED;
  l = &d->local[thread];
  if (!l->stream && dnnl_stream_create (&l->stream, d->engine, dnnl_stream_default_flags)
                        != dnnl_success)
    return TS_ERR_DEVICE;
  victim = &l->cache[0];
  for (int i = 0; i < LOCAL_CACHE_SIZE && !e; i++) {
    local_entry *c2 = &l->cache[i];
    if (c2->prim && c2->batch == batch && c2->m == m && c2->n == n && c2->k == k)
      e = c2;
    else if (!c2->prim || (victim->prim && c2->used < victim->used))
      victim = c2;
  }
  if (!e) {
    if (batched_new (d, &key) != dnnl_success)
      return TS_ERR_UNSUPPORTED;
    if (victim->prim)
      dnnl_primitive_destroy (victim->prim);
    *victim = key;
    e = victim;
  }
  e->used = ++l->clock;
  if (e->scratch_bytes > l->scratch_bytes) {
    void *p = realloc (l->scratch, e->scratch_bytes);
    if (!p)
      return TS_ERR_NOMEM;
    l->scratch = p;
    l->scratch_bytes = e->scratch_bytes;
  }
  s = batched_mds (e, md);
  if (s == dnnl_success && e->scratch_bytes > 0) {
    dnnl_dims_t dim = { (dnnl_dim_t) e->scratch_bytes };
    s = dnnl_memory_desc_init_by_tag (&md[3], 1, dim, dnnl_u8, dnnl_a);
    n_args = 4;
  }
  ptr[3] = l->scratch;
  if (s == dnnl_success)
    s = run_primitive (d->engine, l->stream, e->prim, n_args, md, ptr, ids);
  return s == dnnl_success ? TS_OK : TS_ERR_DEVICE;
}

const char *
ts_cpu_dnnl_version (void)
{
  static char buf[32];
  const dnnl_version_t *v = dnnl_version ();
  snprintf (buf, sizeof buf, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
  return buf;
}

#else /* !TS_HAVE_DNNL */

ts_cpu_dnnl *
ts_cpu_dnnl_new (int n_threads, ts_error *err)
{
  (void) n_threads;
  ts_error_set (err, TS_ERR_UNSUPPORTED, "cpu: this build has no oneDNN");
  return NULL;
}

void
ts_cpu_dnnl_free (ts_cpu_dnnl *d)
{
  (void) d;
}

ts_cpu_bf16_level
ts_cpu_dnnl_bf16_level (void)
{
  return TS_CPU_BF16_NONE;
}

ts_status
ts_cpu_dnnl_matmul (ts_cpu *cpu, ts_dtype dtype, const float *x, int64_t ldx, const void *w,
                    const float *bias, float *y, int64_t ldy, int64_t m, int64_t n, int64_t k,
                    bool accumulate, ts_error *err)
{
  (void) cpu, (void) dtype, (void) x, (void) ldx, (void) w, (void) bias, (void) y, (void) ldy;
  (void) m, (void) n, (void) k, (void) accumulate;
  return ts_error_set (err, TS_ERR_UNSUPPORTED, "cpu: this build has no oneDNN");
}

ts_status
ts_cpu_dnnl_matmul_bf16 (ts_cpu *cpu, const uint16_t *x, int64_t ldx, const uint16_t *w,
                         float *y, int64_t ldy, int64_t m, int64_t n, int64_t k, ts_error *err)
{
  (void) cpu, (void) x, (void) ldx, (void) w, (void) y, (void) ldy, (void) m, (void) n, (void) k;
  return ts_error_set (err, TS_ERR_UNSUPPORTED, "cpu: this build has no oneDNN");
}

ts_status
ts_cpu_dnnl_batched_local (ts_cpu *cpu, int thread, int64_t batch, int64_t m, int64_t n,
                           int64_t k, const float *a, const float *x, float *c)
{
  (void) cpu, (void) thread, (void) batch, (void) m, (void) n, (void) k, (void) a, (void) x;
  (void) c;
  return TS_ERR_UNSUPPORTED;
}

const char *
ts_cpu_dnnl_version (void)
{
  return NULL;
}

#endif

ts_bf16_support
ts_cpu_bf16_support (void)
{
  return (ts_bf16_support) ts_cpu_dnnl_bf16_level ();
}
