/* SPDX-License-Identifier: MIT
 *
 * test-kernel-conv2d — NCHW convolution (ts_op_conv2d) with the geometries of the
 * networks: 3x3 stride 1 pad 1 (VQ resnets), 3x3 stride 2 padded right/bottom only (VQ
 * Downsample2D), 2x2 stride 2 padded right/bottom (transformer down_block), 1x1, on odd
 * spatial sizes with F32/F16/BF16 weights; and the k = stride transposed convolution
 * (ts_op_conv_transpose2d, the up_block). Reference against double, fast against
 * reference.
 */
#include "kernel-common.h"

#include "backend/cpu/ts-cpu.h"

#include <string.h>

typedef struct {
  int64_t batch, c_in, h, w, c_out;
  int kh, kw, stride, pt, pl, pb, pr;
  ts_dtype dtype;
  gboolean bias;
} conv_case;

static int64_t
out_size (int64_t in, int k, int s, int p0, int p1)
{
  return (in + p0 + p1 - k) / s + 1;
}

typedef struct {
  float *x, *w, *b;
  int64_t h_out, w_out, n_x, n_w, n_y;
} conv_data;

static void
conv_data_init (conv_data *d, const conv_case *c, guint64 stream)
{
  tk_rng rng;

  tk_rng_init (&rng, stream);
  d->h_out = out_size (c->h, c->kh, c->stride, c->pt, c->pb);
  d->w_out = out_size (c->w, c->kw, c->stride, c->pl, c->pr);
  d->n_x = c->batch * c->c_in * c->h * c->w;
  d->n_w = c->c_out * c->c_in * c->kh * c->kw;
  d->n_y = c->batch * c->c_out * d->h_out * d->w_out;
  d->x = g_new (float, d->n_x);
  d->w = g_new (float, d->n_w);
  d->b = g_new (float, c->c_out);
  tk_fill_uniform (&rng, d->x, d->n_x, -1.0f, 1.0f);
  tk_fill_normal (&rng, d->w, d->n_w, 0.0f, 0.3f);
  tk_fill_normal (&rng, d->b, c->c_out, 0.0f, 0.3f);
}

static void
conv_data_clear (conv_data *d)
{
  g_free (d->x);
  g_free (d->w);
  g_free (d->b);
}

static float *
conv_run (const ts_backend *be, const conv_case *c, conv_data *d)
{
  ts_error err = { 0 };
  ts_weight w, b;
  int64_t wshape[4] = { c->c_out, c->c_in, c->kh, c->kw }, bshape[1] = { c->c_out };
  ts_buffer *x = tk_buffer (be, d->x, d->n_x), *y = tk_buffer (be, NULL, d->n_y);
  ts_conv2d_args a = {
    .x = ts_ref_at (x, 0), .y = ts_ref_at (y, 0), .w = &w, .bias = c->bias ? &b : NULL,
    .batch = c->batch, .c_in = c->c_in, .h = c->h, .w_in = c->w, .c_out = c->c_out,
    .h_out = d->h_out, .w_out = d->w_out, .kh = c->kh, .kw = c->kw, .stride = c->stride,
    .pad_top = c->pt, .pad_left = c->pl, .pad_bottom = c->pb, .pad_right = c->pr,
  };
  float *out;

  tk_weight (be, &w, "conv.weight", c->dtype, d->w, 4, wshape);
  tk_weight (be, &b, "conv.bias", c->dtype, d->b, 1, bshape);
  if (ts_op_conv2d (be, &a, &err) != TS_OK)
    g_error ("%s: conv2d: %s", ts_backend_name (be), err.message);
  out = tk_download (be, y, 0, d->n_y);
  ts_weight_free (be, &w);
  ts_weight_free (be, &b);
  tk_buffer_free (be, x);
  tk_buffer_free (be, y);
  return out;
}

static void
conv_expected (const conv_case *c, const conv_data *d, double *want)
{
  for (int64_t n = 0; n < c->batch; n++)
    for (int64_t o = 0; o < c->c_out; o++)
      for (int64_t oy = 0; oy < d->h_out; oy++)
        for (int64_t ox = 0; ox < d->w_out; ox++) {
          double s = c->bias ? d->b[o] : 0.0;
          for (int64_t ci = 0; ci < c->c_in; ci++)
            for (int ky = 0; ky < c->kh; ky++)
              for (int kx = 0; kx < c->kw; kx++) {
                int64_t iy = oy * c->stride + ky - c->pt, ix = ox * c->stride + kx - c->pl;
                if (iy >= 0 && iy < c->h && ix >= 0 && ix < c->w)
                  s += (double) d->x[((n * c->c_in + ci) * c->h + iy) * c->w + ix]
                       * d->w[((o * c->c_in + ci) * c->kh + ky) * c->kw + kx];
              }
          want[((n * c->c_out + o) * d->h_out + oy) * d->w_out + ox] = s;
        }
}

static const conv_case cases[] = {
  { 2, 5, 5, 7, 7, 3, 3, 1, 1, 1, 1, 1, TS_DTYPE_F32, TRUE },  /* resnet conv */
  { 2, 5, 5, 7, 7, 3, 3, 1, 1, 1, 1, 1, TS_DTYPE_F16, TRUE },
  { 1, 4, 5, 7, 6, 3, 3, 2, 0, 0, 1, 1, TS_DTYPE_F32, TRUE },  /* VQ Downsample2D */
  { 2, 6, 5, 7, 3, 2, 2, 2, 0, 0, 1, 1, TS_DTYPE_BF16, FALSE }, /* down_block, odd size */
  { 1, 6, 6, 8, 5, 2, 2, 2, 0, 0, 1, 1, TS_DTYPE_F32, FALSE }, /* pad never reached */
  { 2, 9, 5, 7, 4, 1, 1, 1, 0, 0, 0, 0, TS_DTYPE_F16, FALSE }, /* 1x1 */
  { 1, 3, 4, 3, 2, 3, 3, 1, 2, 0, 0, 1, TS_DTYPE_F32, TRUE },  /* odd asymmetric pads */
};

static void
test_reference_vs_double (void)
{
  tk_backends be;

  tk_backends_init (&be);
  for (guint ci = 0; ci < G_N_ELEMENTS (cases); ci++) {
    const conv_case *c = &cases[ci];
    conv_data d;
    double *want;
    float *got;
    g_autofree char *what = g_strdup_printf ("conv2d ref case %u (%dx%d s%d, %s)", ci, c->kh,
                                             c->kw, c->stride, ts_dtype_name (c->dtype));

    conv_data_init (&d, c, 1200 + ci);
    got = conv_run (&be.ref, c, &d);
    want = g_new (double, d.n_y);
    conv_expected (c, &d, want);
    /* fp32 sums of <= 45 products of O(0.3) values */
    tk_check_close (what, got, want, d.n_y, 2e-6, 1e-6);
    g_free (want);
    g_free (got);
    conv_data_clear (&d);
  }
  tk_backends_clear (&be);
}

static void
test_fast_vs_reference (void)
{
  static const conv_case big[] = {
    { 2, 32, 17, 23, 24, 3, 3, 1, 1, 1, 1, 1, TS_DTYPE_F16, TRUE },
    { 1, 24, 33, 31, 16, 3, 3, 2, 0, 0, 1, 1, TS_DTYPE_F32, TRUE },
    { 2, 40, 9, 11, 48, 1, 1, 1, 0, 0, 0, 0, TS_DTYPE_BF16, TRUE },
    { 1, 16, 64, 96, 8, 3, 3, 1, 1, 1, 1, 1, TS_DTYPE_F32, FALSE }, /* many output pixels */
    /* 0.16 and 0.11 GFLOP: on a CPU-type device (lavapipe) each runs as several dispatches
     * of output pixels (TS_VK_CONV_FLOP_CPU), ending mid-row, with scalar and vec4 stores */
    { 1, 16, 160, 211, 16, 3, 3, 1, 1, 1, 1, 1, TS_DTYPE_F32, TRUE },
    { 2, 8, 120, 256, 12, 3, 3, 1, 1, 1, 1, 1, TS_DTYPE_F16, FALSE },
  };
  tk_backends be;

  tk_backends_init (&be);
  for (guint ci = 0; ci < G_N_ELEMENTS (cases) + G_N_ELEMENTS (big); ci++) {
    const conv_case *c = ci < G_N_ELEMENTS (cases) ? &cases[ci] : &big[ci - G_N_ELEMENTS (cases)];
    conv_data d;
    float *ref, *fast;
    g_autofree char *what = g_strdup_printf ("conv2d fast case %u", ci);

    conv_data_init (&d, c, 1300 + ci);
    ref = conv_run (&be.ref, c, &d);
    fast = conv_run (&be.fast, c, &d);
    tk_check_finite (what, fast, d.n_y);
    tk_check_nmse (what, ref, fast, d.n_y, 1e-7);
    if (c->dtype != TS_DTYPE_F32) {
      /* the fast path keeps the weight 16-bit and widens it per call: exactly the result of
       * the same values stored as F32 */
      conv_case wide = *c;
      float *f32;
      wide.dtype = TS_DTYPE_F32;
      f32 = conv_run (&be.fast, &wide, &d);
      g_assert_cmpint (memcmp (f32, fast, (size_t) d.n_y * sizeof (float)), ==, 0);
      g_free (f32);
    }
    g_free (ref);
    g_free (fast);
    conv_data_clear (&d);
  }
  tk_backends_clear (&be);
}

/* The CPU fast path's Winograd F(2x2, 3x3) (ts-cpu-winograd.c): odd sizes (ragged tiles on
 * both edges), asymmetric and missing padding, images of one row or column, exactly the
 * minimum channel count, batches, 16-bit weights; against double sums, and the switch. */
static void
test_winograd (void)
{
  static const conv_case wcases[] = {
    { 2, 24, 17, 23, 20, 3, 3, 1, 1, 1, 1, 1, TS_DTYPE_F32, TRUE },
    { 3, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, TS_DTYPE_BF16, FALSE },
    { 1, 20, 9, 6, 33, 3, 3, 1, 0, 0, 0, 0, TS_DTYPE_F32, TRUE },  /* valid: 7 x 4 */
    { 1, 18, 6, 7, 17, 3, 3, 1, 2, 0, 0, 1, TS_DTYPE_F16, TRUE },  /* asymmetric pads */
    { 1, 24, 1, 13, 20, 3, 3, 1, 1, 1, 1, 1, TS_DTYPE_F32, TRUE }, /* one row */
    { 2, 16, 11, 1, 16, 3, 3, 1, 1, 1, 1, 1, TS_DTYPE_F32, FALSE }, /* one column */
    { 1, 32, 20, 22, 24, 3, 3, 1, 1, 1, 1, 1, TS_DTYPE_F16, TRUE }, /* several tasks */
  };
  tk_backends be;

  tk_backends_init (&be);
  if (strcmp (ts_backend_name (&be.fast), "cpu") != 0) {
    g_test_skip ("the Winograd path belongs to the CPU backend");
    tk_backends_clear (&be);
    return;
  }
  for (guint ci = 0; ci < G_N_ELEMENTS (wcases); ci++) {
    const conv_case *c = &wcases[ci];
    conv_data d;
    double *want;
    float *fast, *ref;
    ts_conv2d_args probe = { .batch = c->batch, .c_in = c->c_in, .h = c->h, .w_in = c->w,
                             .c_out = c->c_out, .kh = c->kh, .kw = c->kw,
                             .stride = c->stride, .pad_top = c->pt, .pad_left = c->pl,
                             .pad_bottom = c->pb, .pad_right = c->pr };
    g_autofree char *what = g_strdup_printf ("conv2d winograd case %u", ci);

    conv_data_init (&d, c, 1500 + ci);
    probe.h_out = d.h_out;
    probe.w_out = d.w_out;
    g_assert_true (ts_cpu_winograd_applies (be.fast.impl, &probe));
    fast = conv_run (&be.fast, c, &d);
    ref = conv_run (&be.ref, c, &d);
    want = g_new (double, d.n_y);
    conv_expected (c, &d, want);
    /* fp32 sums of up to 576 products of O(0.3) values, through the transforms (their
     * sums of up to 16 inputs, and G's halving) */
    tk_check_close (what, fast, want, d.n_y, 2e-5, 1e-5);
    tk_check_nmse (what, ref, fast, d.n_y, 1e-7);
    g_free (want);
    g_free (fast);
    g_free (ref);
    conv_data_clear (&d);
  }
  tk_backends_clear (&be);

  {
    ts_backend off;
    ts_error err = { 0 };
    ts_conv2d_args probe = { .batch = 1, .c_in = 32, .h = 8, .w_in = 8, .c_out = 32,
                             .h_out = 8, .w_out = 8, .kh = 3, .kw = 3, .stride = 1,
                             .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1 };
    g_setenv ("TESSERA_CPU_WINOGRAD", "0", TRUE);
    g_assert_cmpint (ts_backend_cpu_new (&off, false, 1, &err), ==, TS_OK);
    g_unsetenv ("TESSERA_CPU_WINOGRAD");
    g_assert_false (ts_cpu_winograd_applies (off.impl, &probe));
    ts_backend_free (&off);
    probe.c_in = 8; /* too few channels to pay for the transforms */
    g_assert_cmpint (ts_backend_cpu_new (&off, false, 1, &err), ==, TS_OK);
    g_assert_false (ts_cpu_winograd_applies (off.impl, &probe));
    probe.c_in = 32;
    probe.stride = 2;
    g_assert_false (ts_cpu_winograd_applies (off.impl, &probe));
    ts_backend_free (&off);
  }
}

/* ---- transposed convolution ---- */

typedef struct {
  int64_t batch, c_in, h, w, c_out;
  int k;
  ts_dtype dtype;
  gboolean bias;
} convt_case;

static float *
convt_run (const ts_backend *be, const convt_case *c, float *x, float *wv, float *bv)
{
  ts_error err = { 0 };
  ts_weight w, b;
  int64_t wshape[4] = { c->c_in, c->c_out, c->k, c->k }, bshape[1] = { c->c_out };
  int64_t n_y = c->batch * c->c_out * c->h * c->k * c->w * c->k;
  ts_buffer *bx = tk_buffer (be, x, c->batch * c->c_in * c->h * c->w);
  ts_buffer *by = tk_buffer (be, NULL, n_y);
  ts_conv_transpose2d_args a = {
    .x = ts_ref_at (bx, 0), .y = ts_ref_at (by, 0), .w = &w, .bias = c->bias ? &b : NULL,
    .batch = c->batch, .c_in = c->c_in, .h = c->h, .w_in = c->w, .c_out = c->c_out, .k = c->k,
  };
  float *out;

  tk_weight (be, &w, "up.weight", c->dtype, wv, 4, wshape);
  tk_weight (be, &b, "up.bias", c->dtype, bv, 1, bshape);
  if (ts_op_conv_transpose2d (be, &a, &err) != TS_OK)
    g_error ("%s: conv_transpose2d: %s", ts_backend_name (be), err.message);
  out = tk_download (be, by, 0, n_y);
  ts_weight_free (be, &w);
  ts_weight_free (be, &b);
  tk_buffer_free (be, bx);
  tk_buffer_free (be, by);
  return out;
}

static void
test_transpose2d (void)
{
  static const convt_case cases_t[] = {
    { 2, 6, 3, 5, 5, 2, TS_DTYPE_F32, TRUE },
    { 1, 7, 5, 7, 3, 2, TS_DTYPE_F16, FALSE },
    { 1, 4, 3, 2, 2, 3, TS_DTYPE_BF16, TRUE },
    { 2, 48, 9, 13, 40, 2, TS_DTYPE_F32, TRUE },
    { 1, 64, 40, 37, 64, 2, TS_DTYPE_F32, TRUE }, /* in pieces on a CPU-type device */
  };
  tk_backends be;

  tk_backends_init (&be);
  for (guint ci = 0; ci < G_N_ELEMENTS (cases_t); ci++) {
    const convt_case *c = &cases_t[ci];
    int64_t k = c->k, h_out = c->h * k, w_out = c->w * k;
    int64_t n_x = c->batch * c->c_in * c->h * c->w, n_w = c->c_in * c->c_out * k * k;
    int64_t n_y = c->batch * c->c_out * h_out * w_out;
    float *x = g_new (float, n_x), *wv = g_new (float, n_w), *bv = g_new (float, c->c_out);
    double *want = g_new (double, n_y);
    float *ref, *fast;
    tk_rng rng;
    g_autofree char *what = g_strdup_printf ("conv_transpose2d case %u (k %d, %s)", ci, c->k,
                                             ts_dtype_name (c->dtype));

    tk_rng_init (&rng, 1400 + ci);
    tk_fill_uniform (&rng, x, n_x, -1.0f, 1.0f);
    tk_fill_normal (&rng, wv, n_w, 0.0f, 0.3f);
    tk_fill_normal (&rng, bv, c->c_out, 0.0f, 0.3f);
    ref = convt_run (&be.ref, c, x, wv, bv); /* rounds wv, bv to the dtype */
    fast = convt_run (&be.fast, c, x, wv, bv);
    for (int64_t n = 0; n < c->batch; n++)
      for (int64_t o = 0; o < c->c_out; o++)
        for (int64_t oy = 0; oy < h_out; oy++)
          for (int64_t ox = 0; ox < w_out; ox++) {
            double s = c->bias ? bv[o] : 0.0;
            for (int64_t ch = 0; ch < c->c_in; ch++)
              s += (double) x[((n * c->c_in + ch) * c->h + oy / k) * c->w + ox / k]
                   * wv[((ch * c->c_out + o) * k + oy % k) * k + ox % k];
            want[((n * c->c_out + o) * h_out + oy) * w_out + ox] = s;
          }
    tk_check_close (what, ref, want, n_y, 1e-5, 1e-6);
    tk_check_finite (what, fast, n_y);
    tk_check_nmse (what, ref, fast, n_y, 1e-7);
    if (c->dtype != TS_DTYPE_F32) { /* as in test_fast_vs_reference */
      convt_case wide = *c;
      float *f32;
      wide.dtype = TS_DTYPE_F32;
      f32 = convt_run (&be.fast, &wide, x, wv, bv);
      g_assert_cmpint (memcmp (f32, fast, (size_t) n_y * sizeof (float)), ==, 0);
      g_free (f32);
    }
    g_free (x);
    g_free (wv);
    g_free (bv);
    g_free (want);
    g_free (ref);
    g_free (fast);
  }
  tk_backends_clear (&be);
}

static void
check_invalid (const ts_backend *be)
{
  ts_error err = { 0 };
  float wv[4 * 3 * 3 * 3] = { 0 };
  int64_t wshape[4] = { 4, 3, 3, 3 }, wshape_t[4] = { 3, 4, 3, 3 };
  ts_weight w, wt;
  ts_buffer *x = tk_buffer (be, NULL, 3 * 5 * 7), *y = tk_buffer (be, NULL, 4 * 5 * 7);
  ts_conv2d_args ok = {
    .x = ts_ref_at (x, 0), .y = ts_ref_at (y, 0), .w = &w, .batch = 1, .c_in = 3, .h = 5,
    .w_in = 7, .c_out = 4, .h_out = 5, .w_out = 7, .kh = 3, .kw = 3, .stride = 1,
    .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
  };
  ts_conv2d_args a;
  ts_conv_transpose2d_args t = {
    .x = ts_ref_at (x, 0), .y = ts_ref_at (y, 0), .w = &wt, .batch = 1, .c_in = 3, .h = 1,
    .w_in = 3, .c_out = 4, .k = 3,
  };

  tk_weight (be, &w, "w", TS_DTYPE_F32, wv, 4, wshape);
  tk_weight (be, &wt, "wt", TS_DTYPE_F32, wv, 4, wshape_t);
  tk_check_status ("valid", ts_op_conv2d (be, &ok, &err), TS_OK, &err);
  a = ok, a.h_out = 4;
  tk_check_status ("wrong h_out", ts_op_conv2d (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.batch = 2;
  tk_check_status ("x beyond buffer", ts_op_conv2d (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.w = &wt; /* same element count, transposed layout */
  tk_check_status ("weight shape", ts_op_conv2d (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  g_assert_nonnull (strstr (err.message, "wt"));
  a = ok, a.pad_top = a.pad_bottom = 0, a.h = 1, a.h_out = 0;
  tk_check_status ("kernel > input", ts_op_conv2d (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.stride = 0;
  tk_check_status ("stride 0", ts_op_conv2d (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.pad_right = -1;
  tk_check_status ("negative pad", ts_op_conv2d (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  tk_check_status ("transpose valid", ts_op_conv_transpose2d (be, &t, &err), TS_OK, &err);
  t.h = 2; /* y needs 4 * 6 * 9 floats */
  tk_check_status ("transpose y range", ts_op_conv_transpose2d (be, &t, &err),
                   TS_ERR_INVALID_ARG, &err);
  t.h = 1, t.w = &w;
  tk_check_status ("transpose weight", ts_op_conv_transpose2d (be, &t, &err),
                   TS_ERR_INVALID_ARG, &err);
  ts_weight_free (be, &w);
  ts_weight_free (be, &wt);
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
  g_test_add_func ("/kernels/conv2d/reference-vs-double", test_reference_vs_double);
  g_test_add_func ("/kernels/conv2d/fast-vs-reference", test_fast_vs_reference);
  g_test_add_func ("/kernels/conv2d/winograd", test_winograd);
  g_test_add_func ("/kernels/conv2d/transpose2d", test_transpose2d);
  g_test_add_func ("/kernels/conv2d/invalid", test_invalid);
  return g_test_run ();
}
