/* SPDX-License-Identifier: MIT
 *
 * test-kernel-act — SiLU, GELU (tanh) and GELU (erf) (ts_op_act) on strided rows and in
 * place, against double-precision formulas, including large magnitudes where exp()
 * overflows; NaN and infinities must come out the same on both paths.
 */
#include "kernel-common.h"

#include <math.h>

static const ts_act_kind kinds[] = { TS_ACT_SILU, TS_ACT_GELU_TANH, TS_ACT_GELU_ERF };
static const char *kind_names[] = { "silu", "gelu_tanh", "gelu_erf" };

static double
act_double (ts_act_kind kind, double x)
{
  switch (kind) {
  case TS_ACT_SILU:
    return x / (1.0 + exp (-x));
  case TS_ACT_GELU_TANH:
    return 0.5 * x * (1.0 + tanh (sqrt (2.0 / G_PI) * (x + 0.044715 * x * x * x)));
  case TS_ACT_GELU_ERF:
    return 0.5 * x * (1.0 + erf (x / sqrt (2.0)));
  }
  g_assert_not_reached ();
}

static float *
act_run (const ts_backend *be, ts_act_kind kind, const float *x, int64_t rows, int64_t cols,
         int64_t ldx, int64_t ldy, gboolean in_place)
{
  ts_error err = { 0 };
  ts_buffer *bx = tk_buffer (be, x, rows * ldx);
  ts_buffer *by = in_place ? bx : tk_buffer (be, NULL, rows * ldy);
  ts_act_args a = {
    .kind = kind, .x = ts_ref_at (bx, 0), .y = ts_ref_at (by, 0), .rows = rows, .cols = cols,
    .ldx = ldx, .ldy = in_place ? ldx : ldy,
  };
  float *out;

  if (ts_op_act (be, &a, &err) != TS_OK)
    g_error ("%s: act: %s", ts_backend_name (be), err.message);
  out = tk_download (be, by, 0, rows * a.ldy);
  if (by != bx)
    tk_buffer_free (be, by);
  tk_buffer_free (be, bx);
  return out;
}

static void
check_act (const tk_backends *be, guint ki, const int64_t *shape, gboolean in_place,
           guint64 stream)
{
  const int64_t rows = shape[0], cols = shape[1], ldx = shape[2], ldy = shape[3];
  int64_t ld_out = in_place ? ldx : ldy;
  float *x = g_new (float, rows * ldx);
  double *want = g_new (double, rows * ld_out);
  float *ref, *fast;
  tk_rng rng;
  g_autofree char *what = g_strdup_printf ("act %s %lldx%lld%s", kind_names[ki],
                                           (long long) rows, (long long) cols,
                                           in_place ? " in place" : "");

  tk_rng_init (&rng, stream);
  tk_fill_uniform (&rng, x, rows * ldx, -8.0f, 8.0f);
  x[0] = 0.0f, x[1] = -0.0f, x[2] = 90.0f, x[3] = -90.0f, x[4] = 1e-30f, x[5] = -1e4f;
  for (int64_t i = 0; i < rows * ld_out; i++) {
    int64_t r = i / ld_out, c = i % ld_out;
    if (c < cols)
      want[i] = act_double (kinds[ki], x[r * ldx + c]);
    else
      want[i] = in_place ? x[i] : 0.0;
  }
  ref = act_run (&be->ref, kinds[ki], x, rows, cols, ldx, ldy, in_place);
  fast = act_run (&be->fast, kinds[ki], x, rows, cols, ldx, ldy, in_place);
  tk_check_finite (what, ref, rows * ld_out);
  /* libm's expf/tanhf/erff are within a few ulp; gelu_tanh loses relative accuracy
   * where 1 + tanh() cancels (x << 0), so the absolute term covers that */
  tk_check_close (what, ref, want, rows * ld_out, 2e-7, 4e-6);
  tk_check_nmse (what, ref, fast, rows * ld_out, 1e-7);
  g_free (x);
  g_free (want);
  g_free (ref);
  g_free (fast);
}

static void
test_act (void)
{
  /* rows, cols, ldx, ldy; the second shape is large enough for the fast path to split it
   * over threads, the third (1.5 M elements) for a CPU-type Vulkan device to run it in
   * pieces of 3 and 2 rows (TS_VK_PIECE_ELEMENTS_CPU) */
  static const int64_t shapes[][4] = { { 37, 53, 59, 56 }, { 300, 257, 260, 257 },
                                        { 5, 300001, 300004, 300002 } };
  tk_backends be;

  tk_backends_init (&be);
  for (guint si = 0; si < G_N_ELEMENTS (shapes); si++)
    for (guint ki = 0; ki < G_N_ELEMENTS (kinds); ki++)
      for (int in_place = 0; in_place < 2; in_place++)
        check_act (&be, ki, shapes[si], in_place, 900 + 10 * si + 2 * ki + (guint64) in_place);
  tk_backends_clear (&be);
}

static void
test_non_finite (void)
{
  static const float special[] = { NAN, INFINITY, -INFINITY, 3.0e38f, -3.0e38f, 1.0f };
  tk_backends be;

  tk_backends_init (&be);
  for (guint ki = 0; ki < G_N_ELEMENTS (kinds); ki++) {
    float *ref = act_run (&be.ref, kinds[ki], special, 1, 6, 6, 6, FALSE);
    float *fast = act_run (&be.fast, kinds[ki], special, 1, 6, 6, 6, FALSE);
    g_assert_true (isnan (ref[0]));
    tk_check_nmse (kind_names[ki], ref, fast, 6, 1e-7);
    g_free (ref);
    g_free (fast);
  }
  tk_backends_clear (&be);
}

static void
check_invalid (const ts_backend *be)
{
  ts_error err = { 0 };
  ts_buffer *x = tk_buffer (be, NULL, 20);
  ts_act_args ok = {
    .kind = TS_ACT_SILU, .x = ts_ref_at (x, 0), .y = ts_ref_at (x, 0), .rows = 4, .cols = 5,
    .ldx = 5, .ldy = 5,
  };
  ts_act_args a;

  tk_check_status ("valid", ts_op_act (be, &ok, &err), TS_OK, &err);
  a = ok, a.ldy = 6;
  tk_check_status ("y beyond buffer", ts_op_act (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.kind = (ts_act_kind) 42;
  tk_check_status ("kind", ts_op_act (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.cols = -1;
  tk_check_status ("negative cols", ts_op_act (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  tk_buffer_free (be, x);
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
  g_test_add_func ("/kernels/act/reference-fast-double", test_act);
  g_test_add_func ("/kernels/act/non-finite", test_non_finite);
  g_test_add_func ("/kernels/act/invalid", test_invalid);
  return g_test_run ();
}
