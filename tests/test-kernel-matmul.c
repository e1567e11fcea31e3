/* SPDX-License-Identifier: MIT
 *
 * test-kernel-matmul — the linear layer y = x w^T + bias (ts_op_matmul). The CPU reference
 * is checked against double-precision sums on odd shapes with F32, F16 and BF16 weights,
 * strided rows (gaps between rows must stay untouched), bias and accumulate; the fast path
 * is compared with the reference by NMSE; bad arguments must be refused. Precision bf16:
 * the reference against double sums of bf16-rounded operands, oneDNN's bf16 path (where the
 * CPU offers it) against that reference, and oneDNN's f32 matmul against the reference.
 */
#include "kernel-common.h"

#include "backend/cpu/ts-cpu.h"

#include <math.h>
#include <string.h>

#define SENTINEL 12345.0f

typedef struct {
  int64_t m, n, k, ldx, ldy;
  ts_dtype dtype;
  gboolean bias, accumulate;
} mm_case;

typedef struct {
  float *x, *w, *bias, *y0; /* host inputs; w and bias rounded to the weight dtype */
} mm_data;

static void
mm_data_init (mm_data *d, const mm_case *c, guint64 stream)
{
  tk_rng rng;

  tk_rng_init (&rng, stream);
  d->x = g_new (float, c->m * c->ldx + 1);
  d->w = g_new (float, c->n * c->k + 1);
  d->bias = g_new (float, c->n + 1);
  d->y0 = g_new (float, c->m * c->ldy + 1);
  tk_fill_uniform (&rng, d->x, c->m * c->ldx, -1.0f, 1.0f);
  tk_fill_normal (&rng, d->w, c->n * c->k, 0.0f, 0.5f);
  tk_fill_uniform (&rng, d->bias, c->n, -0.5f, 0.5f);
  for (int64_t i = 0; i < c->m * c->ldy; i++)
    d->y0[i] = (i % c->ldy) < c->n ? tk_uniform (&rng, -2.0f, 2.0f) : SENTINEL;
  if (!c->accumulate) /* must be overwritten, never read */
    for (int64_t i = 0; i < c->m; i++)
      for (int64_t j = 0; j < c->n; j++)
        d->y0[i * c->ldy + j] = NAN;
}

static void
mm_data_clear (mm_data *d)
{
  g_free (d->x);
  g_free (d->w);
  g_free (d->bias);
  g_free (d->y0);
}

/* Runs the case on `be` and returns y (m * ldy floats). */
static float *
mm_run (const ts_backend *be, const mm_case *c, mm_data *d)
{
  ts_error err = { 0 };
  ts_weight w, bias;
  int64_t wshape[2] = { c->n, c->k }, bshape[1] = { c->n };
  ts_buffer *x = tk_buffer (be, d->x, c->m * c->ldx);
  ts_buffer *y = tk_buffer (be, d->y0, c->m * c->ldy);
  ts_matmul_args a = {
    .x = ts_ref_at (x, 0), .ldx = c->ldx, .w = &w, .bias = c->bias ? &bias : NULL,
    .y = ts_ref_at (y, 0), .ldy = c->ldy, .m = c->m, .n = c->n, .k = c->k,
    .accumulate = c->accumulate,
  };
  float *out;

  tk_weight (be, &w, "test.weight", c->dtype, d->w, 2, wshape);
  tk_weight (be, &bias, "test.bias", c->dtype, d->bias, 1, bshape);
  if (ts_op_matmul (be, &a, &err) != TS_OK)
    g_error ("%s: matmul: %s", ts_backend_name (be), err.message);
  out = tk_download (be, y, 0, c->m * c->ldy);
  ts_weight_free (be, &w);
  ts_weight_free (be, &bias);
  tk_buffer_free (be, x);
  tk_buffer_free (be, y);
  return out;
}

static float
bf16_round (float f)
{
  guint32 bits = (guint32) tk_f32_to_bf16 (f) << 16;
  memcpy (&f, &bits, sizeof f);
  return f;
}

/* The expected y in double sums (bf16: of the operands rounded to bf16; the 1-D bias keeps
 * its file precision); SENTINEL in the gaps between rows. */
static void
mm_want (const mm_case *c, const mm_data *d, gboolean bf16, double *want)
{
  for (int64_t i = 0; i < c->m; i++) {
    for (int64_t j = 0; j < c->ldy; j++) {
      double s = 0.0;
      if (j >= c->n) {
        want[i * c->ldy + j] = SENTINEL;
        continue;
      }
      for (int64_t p = 0; p < c->k; p++)
        s += bf16 ? (double) bf16_round (d->x[i * c->ldx + p]) * bf16_round (d->w[j * c->k + p])
                  : (double) d->x[i * c->ldx + p] * d->w[j * c->k + p];
      if (c->bias)
        s += d->bias[j];
      if (c->accumulate)
        s += d->y0[i * c->ldy + j];
      want[i * c->ldy + j] = s;
    }
  }
}

static const mm_case ref_cases[] = {
  { 37, 53, 29, 29, 53, TS_DTYPE_F32, FALSE, FALSE },
  { 37, 53, 29, 32, 60, TS_DTYPE_F32, TRUE, FALSE },
  { 37, 53, 29, 31, 57, TS_DTYPE_F16, TRUE, TRUE },
  { 37, 53, 29, 29, 53, TS_DTYPE_BF16, TRUE, FALSE },
  { 1, 7, 130, 130, 9, TS_DTYPE_F32, FALSE, TRUE },
  { 5, 3, 0, 0, 3, TS_DTYPE_F32, TRUE, FALSE }, /* k = 0: y = bias */
};

static void
test_reference_vs_double (void)
{
  tk_backends be;

  tk_backends_init (&be);
  for (guint ci = 0; ci < G_N_ELEMENTS (ref_cases); ci++) {
    const mm_case *c = &ref_cases[ci];
    mm_data d;
    double *want = g_new (double, c->m * c->ldy);
    float *got;
    g_autofree char *what = g_strdup_printf ("matmul ref %lldx%lldx%lld %s", (long long) c->m,
                                             (long long) c->n, (long long) c->k,
                                             ts_dtype_name (c->dtype));

    mm_data_init (&d, c, 100 + ci);
    got = mm_run (&be.ref, c, &d); /* also rounds d.w / d.bias to the dtype */
    mm_want (c, &d, FALSE, want);
    /* fp32 accumulation of <= 130 products of magnitude <= ~2: worst case a few 1e-6 */
    tk_check_close (what, got, want, c->m * c->ldy, 1e-5, 1e-6);
    g_free (want);
    g_free (got);
    mm_data_clear (&d);
  }
  tk_backends_clear (&be);
}

static const mm_case fast_cases[] = {
  { 37, 53, 29, 29, 53, TS_DTYPE_F32, TRUE, FALSE },
  { 37, 53, 29, 33, 61, TS_DTYPE_F16, TRUE, TRUE },
  { 37, 53, 29, 29, 53, TS_DTYPE_BF16, FALSE, FALSE },
  { 2, 130, 257, 257, 130, TS_DTYPE_F32, TRUE, FALSE }, /* temb-like: tiny m */
  { 331, 97, 200, 210, 100, TS_DTYPE_F16, TRUE, TRUE },
  { 154, 256, 64, 192, 256, TS_DTYPE_F32, FALSE, FALSE }, /* packed-qkv-like ldx */
  /* n a multiple of 4 but not of the 16-column tiles: Vulkan's transposed-weight GEMM on
   * CPU-type devices, with edge tiles in both directions */
  { 77, 100, 70, 70, 100, TS_DTYPE_F16, TRUE, TRUE },
  /* m >= 512: Vulkan's ROWS kernel at 16 rows per lane, with 16-bit weights, a ragged last
   * row block, odd k (scalar loads of x) and an n that is no multiple of 4 (no [k, n]) */
  { 600, 72, 36, 36, 72, TS_DTYPE_BF16, TRUE, TRUE },
  { 530, 40, 33, 35, 44, TS_DTYPE_F16, FALSE, FALSE },
  { 520, 30, 12, 12, 30, TS_DTYPE_F32, TRUE, FALSE },
  /* m <= 16 with n a multiple of 4: Vulkan's COLS kernel on CPU-type devices */
  { 2, 68, 33, 33, 70, TS_DTYPE_F16, TRUE, TRUE },
  { 13, 36, 40, 40, 36, TS_DTYPE_BF16, TRUE, FALSE },
  { 0, 5, 7, 7, 5, TS_DTYPE_F32, TRUE, FALSE },
  { 3, 4, 0, 0, 4, TS_DTYPE_F32, TRUE, TRUE },
};

static void
test_fast_vs_reference (void)
{
  tk_backends be;

  tk_backends_init (&be);
  for (guint ci = 0; ci < G_N_ELEMENTS (fast_cases); ci++) {
    const mm_case *c = &fast_cases[ci];
    mm_data d;
    float *ref, *fast;
    size_t n = c->m * c->ldy;
    g_autofree char *what = g_strdup_printf ("matmul fast %lldx%lldx%lld %s", (long long) c->m,
                                             (long long) c->n, (long long) c->k,
                                             ts_dtype_name (c->dtype));

    mm_data_init (&d, c, 200 + ci);
    ref = mm_run (&be.ref, c, &d);
    fast = mm_run (&be.fast, c, &d);
    tk_check_finite (what, ref, n);
    tk_check_finite (what, fast, n);
    /* Both sides read the same weight values (tk_weight rounds them to the dtype first;
     * backends keeping f16/bf16 in 16 bits widen exactly) and accumulate in f32, so they
     * differ only in summation order: far below 1e-7 for every weight dtype */
    tk_check_nmse (what, ref, fast, n, 1e-7);
    for (int64_t i = 0; i < c->m; i++)
      for (int64_t j = c->n; j < c->ldy; j++)
        g_assert_cmpfloat (fast[i * c->ldy + j], ==, SENTINEL);
    g_free (ref);
    g_free (fast);
    mm_data_clear (&d);
  }
  tk_backends_clear (&be);
}

/* 16-bit weights that the fast path keeps narrow and widens per call: split along n
 * (m < n), each task widening its own slab of rows of w, and along m, with w widened
 * once into the shared buffer; ragged last slabs, strided x and y, accumulate. Small
 * enough for the unoptimised ASan build. */
static const mm_case narrow_cases[] = {
  { 37, 100, 3000, 3000, 100, TS_DTYPE_F16, TRUE, FALSE },
  { 300, 70, 600, 603, 75, TS_DTYPE_BF16, TRUE, TRUE },
  { 3, 300, 64, 64, 300, TS_DTYPE_F16, FALSE, FALSE },
  { 64, 200, 500, 500, 200, TS_DTYPE_F16, TRUE, FALSE },
};

/* Widening gives exactly the product of the same values stored as F32 (the same partition,
 * the same sgemm calls). Also close to the reference. */
static void
test_narrow_exact (void)
{
  tk_backends be;

  tk_backends_init (&be);
  if (strcmp (ts_backend_name (&be.fast), "cpu") != 0) {
    /* the partition and the widening belong to the CPU backend; rows of k = 3000 floats
     * also exceed the binding cap of the Vulkan "pieces" runs */
    g_test_skip ("the CPU backend's 16-bit weights");
    tk_backends_clear (&be);
    return;
  }
  for (guint ci = 0; ci < G_N_ELEMENTS (narrow_cases); ci++) {
    const mm_case *c = &narrow_cases[ci];
    mm_case wide = *c;
    mm_data d;
    float *narrow, *f32, *ref;
    size_t n = c->m * c->ldy;
    g_autofree char *what = g_strdup_printf ("matmul narrow %lldx%lldx%lld %s",
                                             (long long) c->m, (long long) c->n,
                                             (long long) c->k, ts_dtype_name (c->dtype));

    mm_data_init (&d, c, 300 + ci);
    narrow = mm_run (&be.fast, c, &d); /* rounds d.w and d.bias to the dtype */
    wide.dtype = TS_DTYPE_F32;
    f32 = mm_run (&be.fast, &wide, &d);
    tk_check_finite (what, narrow, n);
    if (memcmp (narrow, f32, n * sizeof (float)) != 0)
      g_error ("%s: differs from the same weight stored as F32", what);
    ref = mm_run (&be.ref, c, &d);
    tk_check_nmse (what, ref, narrow, n, 1e-7);
    g_free (narrow);
    g_free (f32);
    g_free (ref);
    mm_data_clear (&d);
  }
  tk_backends_clear (&be);
}

static const mm_case bf16_cases[] = {
  { 37, 53, 29, 29, 53, TS_DTYPE_F32, TRUE, FALSE },
  { 37, 53, 130, 131, 57, TS_DTYPE_F16, TRUE, TRUE },
  { 5, 64, 64, 64, 64, TS_DTYPE_BF16, FALSE, FALSE },
  { 300, 70, 60, 63, 75, TS_DTYPE_F32, TRUE, TRUE },
};

/* Precision bf16 on the reference path: every weight of 2 dimensions stored bf16 (rounded
 * to nearest even from F32 and F16), every input element rounded likewise, the exact
 * products summed in f32. */
static void
test_bf16_reference (void)
{
  ts_backend ref, ref32;

  tk_cpu_backend_new (&ref, TRUE, TS_PRECISION_BF16);
  tk_cpu_backend_new (&ref32, TRUE, TS_PRECISION_FP32);
  for (guint ci = 0; ci < G_N_ELEMENTS (bf16_cases); ci++) {
    const mm_case *c = &bf16_cases[ci];
    mm_data d;
    double *want = g_new (double, c->m * c->ldy);
    float *got, *fp32;
    double nmse;
    g_autofree char *what = g_strdup_printf ("matmul bf16 ref %lldx%lldx%lld %s",
                                             (long long) c->m, (long long) c->n,
                                             (long long) c->k, ts_dtype_name (c->dtype));

    mm_data_init (&d, c, 400 + ci);
    got = mm_run (&ref, c, &d); /* rounds d.w and d.bias to the file dtype */
    fp32 = mm_run (&ref32, c, &d);
    mm_want (c, &d, TRUE, want);
    tk_check_close (what, got, want, c->m * c->ldy, 1e-5, 1e-6);
    /* and the mode took effect: bf16 operands move the result by about 2^-9 relative
     * (measured on the outputs, not the sentinel columns between rows) */
    {
      double num = 0.0, den = 0.0;
      for (int64_t i = 0; i < c->m; i++)
        for (int64_t j = 0; j < c->n; j++) {
          double e = (double) got[i * c->ldy + j] - fp32[i * c->ldy + j];
          num += e * e;
          den += (double) fp32[i * c->ldy + j] * fp32[i * c->ldy + j];
        }
      nmse = num / den;
    }
    if (!(nmse > 1e-9 && nmse < 1e-3))
      g_error ("%s: NMSE %g against fp32, expected bf16 rounding's 1e-9..1e-3", what, nmse);
    g_free (want);
    g_free (got);
    g_free (fp32);
    mm_data_clear (&d);
  }
  ts_backend_free (&ref);
  ts_backend_free (&ref32);
}

/* Precision bf16 on the fast path (oneDNN) against the bf16 reference: the same rounded
 * operands and exact products, summed in another order. Where the CPU has no AVX-512 the
 * mode must be refused, saying why, and auto must give fp32. */
static void
test_bf16_fast (void)
{
  ts_backend fast, ref;
  ts_error err = { 0 };
  ts_precision got;
  ts_bf16_support support = ts_cpu_bf16_support ();

  if (ts_backend_cpu_new (&fast, FALSE, 2, &err) != TS_OK)
    g_error ("cpu backend: %s", err.message);
  g_assert_cmpint (ts_backend_set_precision (&fast, TS_PRECISION_AUTO, &got, &err), ==, TS_OK);
  g_assert_cmpint (got, ==,
                   support == TS_BF16_NATIVE ? TS_PRECISION_BF16 : TS_PRECISION_FP32);
  if (support == TS_BF16_NONE) {
    tk_check_status ("bf16 without AVX-512",
                     ts_backend_set_precision (&fast, TS_PRECISION_BF16, &got, &err),
                     TS_ERR_UNSUPPORTED, &err);
    g_assert_nonnull (strstr (err.message, "AVX-512"));
    g_assert_cmpint (ts_backend_precision (&fast), ==, TS_PRECISION_FP32);
    ts_backend_free (&fast);
    g_test_skip ("this CPU has no AVX-512: oneDNN offers no bf16 (the refusal was checked)");
    return;
  }
  ts_backend_free (&fast);
  tk_cpu_backend_new (&fast, FALSE, TS_PRECISION_BF16);
  tk_cpu_backend_new (&ref, TRUE, TS_PRECISION_BF16);
  for (guint ci = 0; ci < G_N_ELEMENTS (bf16_cases); ci++) {
    const mm_case *c = &bf16_cases[ci];
    mm_data d;
    float *r, *f;
    g_autofree char *what = g_strdup_printf ("matmul bf16 fast %lldx%lldx%lld %s",
                                             (long long) c->m, (long long) c->n,
                                             (long long) c->k, ts_dtype_name (c->dtype));

    mm_data_init (&d, c, 500 + ci);
    r = mm_run (&ref, c, &d);
    f = mm_run (&fast, c, &d);
    tk_check_finite (what, f, c->m * c->ldy);
    tk_check_nmse (what, r, f, c->m * c->ldy, 1e-7);
    for (int64_t i = 0; i < c->m; i++)
      for (int64_t j = c->n; j < c->ldy; j++)
        g_assert_cmpfloat (f[i * c->ldy + j], ==, SENTINEL);
    g_free (r);
    g_free (f);
    mm_data_clear (&d);
  }
  ts_backend_free (&fast);
  ts_backend_free (&ref);
}

/* oneDNN's f32 matmul, which bench-cpu-kernels weighs against OpenBLAS, against the
 * reference: strided operands, bias, accumulate, and more rows than one chunk. */
static void
test_dnnl_f32 (void)
{
  static const mm_case cases[] = {
    { 37, 53, 29, 32, 60, TS_DTYPE_F32, TRUE, TRUE },
    { 2, 130, 257, 257, 130, TS_DTYPE_F32, FALSE, FALSE },
    { 2100, 20, 24, 26, 22, TS_DTYPE_F32, TRUE, FALSE },
  };
  ts_backend fast, ref;
  ts_error err = { 0 };
  ts_cpu *cpu;

  if (!ts_cpu_dnnl_version ()) {
    g_test_skip ("this build has no oneDNN");
    return;
  }
  tk_cpu_backend_new (&fast, FALSE, TS_PRECISION_FP32);
  tk_cpu_backend_new (&ref, TRUE, TS_PRECISION_FP32);
  cpu = fast.impl;
  if (!cpu->dnnl && !(cpu->dnnl = ts_cpu_dnnl_new (2, &err)))
    g_error ("oneDNN: %s", err.message);
  for (guint ci = 0; ci < G_N_ELEMENTS (cases); ci++) {
    const mm_case *c = &cases[ci];
    mm_data d;
    float *r, *y;
    size_t n = c->m * c->ldy;
    g_autofree char *what = g_strdup_printf ("matmul oneDNN f32 %lldx%lldx%lld",
                                             (long long) c->m, (long long) c->n,
                                             (long long) c->k);

    mm_data_init (&d, c, 600 + ci);
    r = mm_run (&ref, c, &d);
    y = g_memdup2 (d.y0, n * sizeof (float));
    if (ts_cpu_dnnl_matmul (cpu, TS_DTYPE_F32, d.x, c->ldx, d.w, c->bias ? d.bias : NULL, y,
                            c->ldy, c->m, c->n, c->k, c->accumulate, &err) != TS_OK)
      g_error ("%s: %s", what, err.message);
    tk_check_nmse (what, r, y, n, 1e-7);
    for (int64_t i = 0; i < c->m; i++)
      for (int64_t j = c->n; j < c->ldy; j++)
        g_assert_cmpfloat (y[i * c->ldy + j], ==, SENTINEL);
    g_free (r);
    g_free (y);
    mm_data_clear (&d);
  }
  ts_backend_free (&fast);
  ts_backend_free (&ref);
}

static void
check_invalid (const ts_backend *be)
{
  ts_error err = { 0 };
  float wv[6 * 4] = { 0 };
  int64_t wshape[2] = { 6, 4 }, bshape[1] = { 5 };
  ts_weight w, bias5;
  ts_buffer *x = tk_buffer (be, NULL, 3 * 4), *y = tk_buffer (be, NULL, 3 * 6);
  ts_matmul_args ok = {
    .x = ts_ref_at (x, 0), .ldx = 4, .w = &w, .y = ts_ref_at (y, 0), .ldy = 6,
    .m = 3, .n = 6, .k = 4,
  };
  ts_matmul_args a;

  tk_weight (be, &w, "w", TS_DTYPE_F32, wv, 2, wshape);
  tk_weight (be, &bias5, "bias5", TS_DTYPE_F32, wv, 1, bshape);
  tk_check_status ("valid", ts_op_matmul (be, &ok, &err), TS_OK, &err);

  a = ok, a.m = 4; /* x and y too small by one row */
  tk_check_status ("m beyond buffer", ts_op_matmul (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  g_assert_nonnull (strstr (err.message, "matmul"));
  a = ok, a.x = ts_ref_at (x, 4); /* offset pushes the last row out */
  tk_check_status ("x offset", ts_op_matmul (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.y = ts_ref_at (y, (size_t) -8); /* offset + size wraps around */
  tk_check_status ("y offset overflow", ts_op_matmul (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.y = ts_ref_at (y, 2);
  tk_check_status ("misaligned y", ts_op_matmul (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.ldx = 3;
  tk_check_status ("ldx < k", ts_op_matmul (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.ldy = INT64_MAX;
  tk_check_status ("huge ldy", ts_op_matmul (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.n = -1;
  tk_check_status ("negative n", ts_op_matmul (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.x.buf = NULL;
  tk_check_status ("absent x", ts_op_matmul (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.w = NULL;
  tk_check_status ("no weight", ts_op_matmul (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.m = 2, a.k = 3, a.n = 8, a.ldy = 8; /* same element count (24), wrong shape */
  tk_check_status ("weight shape", ts_op_matmul (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.bias = &bias5;
  tk_check_status ("bias size", ts_op_matmul (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  g_assert_nonnull (strstr (err.message, "bias5"));
  tk_check_status ("NULL args", ts_op_matmul (be, NULL, &err), TS_ERR_INVALID_ARG, &err);

  ts_weight_free (be, &w);
  ts_weight_free (be, &bias5);
  tk_buffer_free (be, x);
  tk_buffer_free (be, y);
}

static void
test_invalid (void)
{
  tk_backends be;

  tk_backends_init (&be);
  check_invalid (&be.ref);
  check_invalid (&be.fast);
  tk_backends_clear (&be);
}

int
main (int argc, char **argv)
{
  tk_init (&argc, &argv);
  g_test_add_func ("/kernels/matmul/reference-vs-double", test_reference_vs_double);
  g_test_add_func ("/kernels/matmul/fast-vs-reference", test_fast_vs_reference);
  g_test_add_func ("/kernels/matmul/narrow-exact", test_narrow_exact);
  g_test_add_func ("/kernels/matmul/invalid", test_invalid);
  g_test_add_func ("/kernels/matmul/bf16-reference", test_bf16_reference);
  g_test_add_func ("/kernels/matmul/bf16-fast", test_bf16_fast);
  g_test_add_func ("/kernels/matmul/dnnl-f32", test_dnnl_f32);
  return g_test_run ();
}
