/* SPDX-License-Identifier: MIT
 *
 * test-cpu-backend — the CPU backend's object rather than its kernels: construction (and
 * TS_CPU_REFERENCE), buffers and transfers with their range checks, weight upload (the
 * reference keeps the source dtype, the fast path widens to f32 exactly), the f16/bf16
 * decoders over every bit pattern, the worker pool's parallel-for, and the abort hook
 * (ts_backend_set_abort) that stops a long op part way.
 */
#include "kernel-common.h"

#include "backend/cpu/ts-cpu.h"

#include <math.h>
#include <stdatomic.h>

static void
test_new_free (void)
{
  ts_error err = { 0 };
  ts_backend be;

  g_assert_cmpint (ts_backend_cpu_new (&be, false, 0, &err), ==, TS_OK);
  g_assert_cmpstr (ts_backend_name (&be), ==, "cpu");
  g_assert_cmpint (((ts_cpu *) be.impl)->n_threads, >=, 1);
  ts_backend_free (&be);
  g_assert_null (be.ops);
  ts_backend_free (&be); /* NULL-safe, twice */
  ts_backend_free (NULL);

  g_assert_cmpint (ts_backend_cpu_new (&be, true, 8, &err), ==, TS_OK);
  g_assert_cmpstr (ts_backend_name (&be), ==, "cpu-ref");
  g_assert_cmpint (((ts_cpu *) be.impl)->n_threads, ==, 1); /* the reference is serial */
  ts_backend_free (&be);

  g_setenv ("TS_CPU_REFERENCE", "1", TRUE);
  g_assert_cmpint (ts_backend_cpu_new (&be, false, 2, &err), ==, TS_OK);
  g_assert_cmpstr (ts_backend_name (&be), ==, "cpu-ref");
  ts_backend_free (&be);
  g_setenv ("TS_CPU_REFERENCE", "0", TRUE);
  g_assert_cmpint (ts_backend_cpu_new (&be, false, 2, &err), ==, TS_OK);
  g_assert_cmpstr (ts_backend_name (&be), ==, "cpu");
  ts_backend_free (&be);
  g_unsetenv ("TS_CPU_REFERENCE");

  tk_check_status ("NULL out", ts_backend_cpu_new (NULL, false, 1, &err), TS_ERR_INVALID_ARG, &err);
}

static void
test_buffers (void)
{
  tk_backends bks;

  tk_backends_init (&bks);
  for (int k = 0; k < 2; k++) {
    const ts_backend *be = k ? &bks.fast : &bks.ref;
    ts_error err = { 0 };
    float in[10], out[10] = { 0 };
    ts_buffer *buf = ts_buffer_new (be, 40, &err);

    for (int i = 0; i < 10; i++)
      in[i] = (float) i;
    g_assert_nonnull (buf);
    tk_check_status ("upload", ts_buffer_upload (be, ts_ref_at (buf, 0), in, 40, &err),
                     TS_OK, &err);
    tk_check_status ("download",
                     ts_buffer_download (be, ts_ref_at (buf, 8), out, 32, &err), TS_OK,
                     &err);
    g_assert_cmpfloat (out[0], ==, 2.0f);
    g_assert_cmpfloat (out[7], ==, 9.0f);
    tk_check_status ("upload past end", ts_buffer_upload (be, ts_ref_at (buf, 4), in, 40, &err),
                     TS_ERR_INVALID_ARG, &err);
    tk_check_status ("download wraps",
                     ts_buffer_download (be, ts_ref_at (buf, SIZE_MAX - 3), out, 8, &err),
                     TS_ERR_INVALID_ARG, &err);
    tk_check_status ("NULL buffer",
                     ts_buffer_upload (be, ts_ref_at (NULL, 0), in, 4, &err),
                     TS_ERR_INVALID_ARG, &err);
    tk_check_status ("sync", ts_backend_sync (be, &err), TS_OK, &err);
    ts_buffer_free (be, buf);
    ts_buffer_free (be, NULL);

    g_assert_null (ts_buffer_new (be, SIZE_MAX - 64, &err));
    g_assert_cmpint (err.code, ==, TS_ERR_NOMEM);
    g_assert_nonnull (strstr (err.message, "bytes"));
  }
  tk_backends_clear (&bks);
}

static void
test_weights (void)
{
  tk_backends bks;
  float values[6] = { 1.0f, -2.5f, 65504.0f, 1e-7f, 0.1f, -0.0f };
  int64_t shape[2] = { 2, 3 };

  tk_backends_init (&bks);
  for (int k = 0; k < 2; k++) {
    const ts_backend *be = k ? &bks.fast : &bks.ref;
    ts_error err = { 0 };
    ts_weight w;
    float copy[6];

    memcpy (copy, values, sizeof copy);
    tk_weight (be, &w, "blocks.0.weight", TS_DTYPE_F16, copy, 2, shape);
    g_assert_cmpint (w.n_elements, ==, 6);
    g_assert_cmpint (w.n_dims, ==, 2);
    g_assert_cmpint (w.shape[0], ==, 2);
    g_assert_cmpint (w.shape[1], ==, 3);
    g_assert_cmpstr (w.name, ==, "blocks.0.weight");
    g_assert_cmpint (w.dtype, ==, TS_DTYPE_F16); /* 2-D weights stay 16-bit on both */
    for (int i = 0; i < 6; i++) /* exactly the rounded values, whatever the storage */
      g_assert_cmpfloat (ts_cpu_weight_get (&w, i), ==, copy[i]);
    ts_weight_free (be, &w);
    memcpy (copy, values, sizeof copy);
    tk_weight (be, &w, "blocks.0.bias", TS_DTYPE_F16, copy, 1, (int64_t[]) { 6 });
    /* 1-D weights (biases, norm scales) are widened at upload on the fast path */
    g_assert_cmpint (w.dtype, ==, k ? TS_DTYPE_F32 : TS_DTYPE_F16);
    for (int i = 0; i < 6; i++) /* exactly the rounded values, whatever the storage */
      g_assert_cmpfloat (ts_cpu_weight_get (&w, i), ==, copy[i]);
    ts_weight_free (be, &w);
    g_assert_null (w.buf);
    ts_weight_free (be, &w); /* freeing twice is harmless */

    tk_check_status ("I64 weight",
                     ts_weight_upload (be, &w, "ids", TS_DTYPE_I64, values, 1,
                                       shape, &err),
                     TS_ERR_UNSUPPORTED, &err);
    g_assert_nonnull (strstr (err.message, "ids"));
    tk_check_status ("5 dims",
                     ts_weight_upload (be, &w, "w", TS_DTYPE_F32, values, 5, shape,
                                       &err),
                     TS_ERR_INVALID_ARG, &err);
    tk_check_status ("NULL data",
                     ts_weight_upload (be, &w, "w", TS_DTYPE_F32, NULL, 2, shape,
                                       &err),
                     TS_ERR_INVALID_ARG, &err);
  }
  tk_backends_clear (&bks);
}

static double
f16_definition (unsigned h)
{
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v = e == 0 ? ldexp (m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp (m + 1024, e - 25);
  return (h & 0x8000) ? -v : v;
}

static void
test_conversions (void)
{
  for (unsigned h = 0; h < 65536; h++) {
    float f = ts_cpu_f16_to_f32 ((uint16_t) h);
    double want = f16_definition (h);
    if (isnan (want))
      g_assert_true (isnan (f));
    else
      g_assert_cmpfloat ((double) f, ==, want);
    g_assert_cmpint (signbit (f) != 0, ==, (h & 0x8000) != 0);
    g_assert_cmpint (tk_f32_to_f16 (f), ==, isnan (f) ? tk_f32_to_f16 (f) : h);

    f = ts_cpu_bf16_to_f32 ((uint16_t) h);
    if (!isnan (f))
      g_assert_cmpint (tk_f32_to_bf16 (f), ==, h);
  }
  {
    /* ts_cpu_widen (F16C where the CPU has it) agrees with the scalar conversions on all
     * 65536 values, from an odd (unaligned) address and with a ragged tail. */
    guint8 *raw = g_malloc (2 * 65536 + 1);
    float *wide = g_new (float, 65536);
    for (int dt = 0; dt < 2; dt++) {
      for (unsigned h = 0; h < 65536; h++)
        memcpy (raw + 1 + 2 * h, &(uint16_t) { (uint16_t) h }, 2);
      ts_cpu_widen (dt ? TS_DTYPE_BF16 : TS_DTYPE_F16, raw + 1, wide, 65533);
      for (unsigned h = 0; h < 65533; h++) {
        float want = dt ? ts_cpu_bf16_to_f32 ((uint16_t) h) : ts_cpu_f16_to_f32 ((uint16_t) h);
        if (isnan (want))
          g_assert_true (isnan (wide[h]));
        else
          g_assert_cmpint (memcmp (&wide[h], &want, sizeof want), ==, 0);
      }
    }
    g_free (raw);
    g_free (wide);
  }
  g_assert_cmpfloat (ts_cpu_bf16_to_f32 (0x3f80), ==, 1.0f);
  g_assert_cmpfloat (ts_cpu_bf16_to_f32 (0xc049), ==, -3.140625f);
}

typedef struct {
  atomic_int *hits;
  atomic_int max_thread;
} pf_ctx;

static void
pf_task (void *data, int64_t begin, int64_t end, int thread)
{
  pf_ctx *ctx = data;
  for (int64_t i = begin; i < end; i++)
    atomic_fetch_add (&ctx->hits[i], 1);
  if (thread > atomic_load (&ctx->max_thread))
    atomic_store (&ctx->max_thread, thread);
}

static void
test_parallel_for (void)
{
  ts_error err = { 0 };
  ts_backend be;
  ts_cpu *cpu;
  static const int64_t sizes[] = { 0, 1, 7, 1000, 100003 };
  static const int64_t grains[] = { 1, 3, 64, 1000000 };

  g_assert_cmpint (ts_backend_cpu_new (&be, false, 3, &err), ==, TS_OK);
  cpu = be.impl;
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (guint g = 0; g < G_N_ELEMENTS (grains); g++)
      for (int rep = 0; rep < 3; rep++) {
        pf_ctx ctx = { .hits = g_new0 (atomic_int, sizes[s] + 1) };
        atomic_init (&ctx.max_thread, 0);
        ts_cpu_parallel_for (cpu, sizes[s], grains[g], pf_task, &ctx);
        for (int64_t i = 0; i < sizes[s]; i++)
          g_assert_cmpint (atomic_load (&ctx.hits[i]), ==, 1);
        g_assert_cmpint (atomic_load (&ctx.max_thread), <, cpu->n_threads);
        g_free (ctx.hits);
      }
  tk_check_status ("scratch", ts_cpu_scratch_reserve (cpu, 1000, "test", &err), TS_OK, &err);
  for (int t = 0; t < cpu->n_threads; t++)
    g_assert_cmpuint (cpu->scratch_floats[t], >=, 1000);
  ts_backend_free (&be);
}

typedef struct {
  atomic_int calls;
  int stop_after; /* answer true from this call on; -1: never */
} abort_ctx;

static bool
abort_after (void *data)
{
  abort_ctx *a = data;
  int n = atomic_fetch_add (&a->calls, 1);
  return a->stop_after >= 0 && n >= a->stop_after;
}

/* A matmul and an attention large enough to run as several blocks: stopped with
 * TS_ERR_CANCELLED when the hook says so, on every path (reference, fast with a pool,
 * fast single-threaded), and bit-identical to a run without the hook when it never
 * fires. */
static void
test_abort (void)
{
  enum { M = 256, N = 256, K = 128, H = 2, S = 256, D = 32 };
  static const struct {
    bool reference;
    int n_threads;
  } paths[] = { { true, 1 }, { false, 3 }, { false, 1 } };
  tk_rng rng;
  float *x = g_new (float, (size_t) M * K), *w = g_new (float, (size_t) N * K);
  float *qkv = g_new (float, (size_t) S * 3 * H * D);

  tk_rng_init (&rng, 17);
  tk_fill_uniform (&rng, x, (size_t) M * K, -1.0f, 1.0f);
  tk_fill_uniform (&rng, w, (size_t) N * K, -1.0f, 1.0f);
  tk_fill_uniform (&rng, qkv, (size_t) S * 3 * H * D, -1.0f, 1.0f);
  for (guint p = 0; p < G_N_ELEMENTS (paths); p++) {
    ts_error err = { 0 };
    ts_backend be;
    ts_weight wt;
    ts_buffer *xb, *yb, *qb, *ob;
    float *want_y, *got_y, *want_o, *got_o;
    const int64_t shape[2] = { N, K };
    ts_matmul_args mm;
    ts_attention_args at;

    g_assert_cmpint (ts_backend_cpu_new (&be, paths[p].reference, paths[p].n_threads, &err), ==,
                     TS_OK);
    tk_weight (&be, &wt, "w", TS_DTYPE_F32, w, 2, shape);
    xb = tk_buffer (&be, x, (size_t) M * K);
    yb = tk_buffer (&be, NULL, (size_t) M * N);
    qb = tk_buffer (&be, qkv, (size_t) S * 3 * H * D);
    ob = tk_buffer (&be, NULL, (size_t) S * H * D);
    mm = (ts_matmul_args) { .x = ts_ref_at (xb, 0), .ldx = K, .w = &wt, .y = ts_ref_at (yb, 0),
                            .ldy = N, .m = M, .n = N, .k = K };
    at = (ts_attention_args) { .q = ts_ref_at (qb, 0), .k = ts_ref_f32 (ts_ref_at (qb, 0), H * D),
                               .v = ts_ref_f32 (ts_ref_at (qb, 0), 2 * H * D),
                               .out = ts_ref_at (ob, 0), .ldq = 3 * H * D, .ldk = 3 * H * D,
                               .ldv = 3 * H * D, .ldo = H * D, .bs_q = S * 3 * H * D,
                               .bs_k = S * 3 * H * D, .bs_v = S * 3 * H * D, .bs_o = S * H * D,
                               .batch = 1, .heads = H, .seq_q = S, .seq_kv = S, .d_head = D,
                               .scale = 0.17f };

    /* without a hook: the expected outputs */
    tk_check_status ("matmul", ts_op_matmul (&be, &mm, &err), TS_OK, &err);
    tk_check_status ("attention", ts_op_attention (&be, &at, &err), TS_OK, &err);
    want_y = tk_download (&be, yb, 0, (size_t) M * N);
    want_o = tk_download (&be, ob, 0, (size_t) S * H * D);

    /* a hook that never fires: polled, same bits */
    {
      abort_ctx never = { .stop_after = -1 };
      atomic_init (&never.calls, 0);
      ts_backend_set_abort (&be, abort_after, &never);
      tk_check_status ("matmul, hook", ts_op_matmul (&be, &mm, &err), TS_OK, &err);
      tk_check_status ("attention, hook", ts_op_attention (&be, &at, &err), TS_OK, &err);
      got_y = tk_download (&be, yb, 0, (size_t) M * N);
      got_o = tk_download (&be, ob, 0, (size_t) S * H * D);
      g_assert_cmpmem (got_y, (size_t) M * N * 4, want_y, (size_t) M * N * 4);
      g_assert_cmpmem (got_o, (size_t) S * H * D * 4, want_o, (size_t) S * H * D * 4);
      g_assert_cmpint (atomic_load (&never.calls), >=, 2);
      g_free (got_y);
      g_free (got_o);
    }
    /* a hook that fires at its first poll (the only one sure to come before any block,
     * however the pool shares them): both ops stop and say so */
    for (int op = 0; op < 2; op++) {
      abort_ctx soon = { .stop_after = 0 };
      ts_status st;
      atomic_init (&soon.calls, 0);
      ts_backend_set_abort (&be, abort_after, &soon);
      st = op ? ts_op_attention (&be, &at, &err) : ts_op_matmul (&be, &mm, &err);
      tk_check_status (op ? "attention, cancelled" : "matmul, cancelled", st, TS_ERR_CANCELLED,
                       &err);
      g_assert_nonnull (strstr (err.message, "cancelled"));
    }
    /* cleared: runs to the end again */
    ts_backend_set_abort (&be, NULL, NULL);
    tk_check_status ("matmul, cleared", ts_op_matmul (&be, &mm, &err), TS_OK, &err);
    got_y = tk_download (&be, yb, 0, (size_t) M * N);
    g_assert_cmpmem (got_y, (size_t) M * N * 4, want_y, (size_t) M * N * 4);

    g_free (got_y);
    g_free (want_y);
    g_free (want_o);
    tk_buffer_free (&be, xb);
    tk_buffer_free (&be, yb);
    tk_buffer_free (&be, qb);
    tk_buffer_free (&be, ob);
    ts_weight_free (&be, &wt);
    ts_backend_free (&be);
  }
  g_free (x);
  g_free (w);
  g_free (qkv);
}

int
main (int argc, char **argv)
{
  tk_init (&argc, &argv);
  g_test_add_func ("/cpu-backend/new-free", test_new_free);
  g_test_add_func ("/cpu-backend/buffers", test_buffers);
  g_test_add_func ("/cpu-backend/weights", test_weights);
  g_test_add_func ("/cpu-backend/f16-bf16", test_conversions);
  g_test_add_func ("/cpu-backend/parallel-for", test_parallel_for);
  g_test_add_func ("/cpu-backend/abort", test_abort);
  return g_test_run ();
}
