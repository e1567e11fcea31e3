/* SPDX-License-Identifier: MIT
 *
 * test-kernel-softmax — in-place row softmax (ts_op_softmax): against double precision,
 * with logits large enough that exp() overflows without the max subtraction and rows with
 * -inf (masked) entries; fast path against the reference.
 */
#include "kernel-common.h"

#include <math.h>

static float *
softmax_run (const ts_backend *be, const float *x, int64_t rows, int64_t dim)
{
  ts_error err = { 0 };
  ts_buffer *buf = tk_buffer (be, x, rows * dim);
  ts_softmax_args a = { .x = ts_ref_at (buf, 0), .rows = rows, .dim = dim };
  float *out;

  if (ts_op_softmax (be, &a, &err) != TS_OK)
    g_error ("%s: softmax: %s", ts_backend_name (be), err.message);
  out = tk_download (be, buf, 0, rows * dim);
  tk_buffer_free (be, buf);
  return out;
}

static float *
make_logits (int64_t rows, int64_t dim, guint64 stream)
{
  tk_rng rng;
  float *x = g_new (float, rows * dim);

  tk_rng_init (&rng, stream);
  for (int64_t r = 0; r < rows; r++) {
    /* rows of growing spread, up to logits of several hundred */
    float spread = r % 4 == 3 ? 400.0f : 3.0f * (float) (r % 4 + 1);
    tk_fill_uniform (&rng, x + r * dim, dim, -spread, spread);
    if (r % 5 == 1 && dim > 1) /* masked entries, never a whole row */
      for (int64_t j = dim / 2; j < dim; j += 3)
        x[r * dim + j] = -INFINITY;
  }
  return x;
}

static void
test_reference_vs_double (void)
{
  const int64_t rows = 11, dim = 77 + 33;
  tk_backends be;
  float *x = make_logits (rows, dim, 500);
  double *want = g_new (double, rows * dim);
  float *got;

  tk_backends_init (&be);
  got = softmax_run (&be.ref, x, rows, dim);
  for (int64_t r = 0; r < rows; r++) {
    double max = -INFINITY, sum = 0.0;
    for (int64_t j = 0; j < dim; j++)
      max = fmax (max, x[r * dim + j]);
    for (int64_t j = 0; j < dim; j++)
      sum += exp ((double) x[r * dim + j] - max);
    for (int64_t j = 0; j < dim; j++)
      want[r * dim + j] = exp ((double) x[r * dim + j] - max) / sum;
  }
  tk_check_finite ("softmax ref", got, rows * dim);
  /* probabilities in [0, 1]: expf's ulp errors and an fp32 sum of 110 terms */
  tk_check_close ("softmax ref", got, want, rows * dim, 1e-7, 2e-6);
  g_free (got);
  g_free (want);
  g_free (x);
  tk_backends_clear (&be);
}

static void
test_fast_vs_reference (void)
{
  static const int64_t shapes[][2] = { { 11, 110 }, { 301, 77 }, { 64, 4173 }, { 3, 1 } };
  tk_backends be;

  tk_backends_init (&be);
  for (guint i = 0; i < G_N_ELEMENTS (shapes); i++) {
    int64_t rows = shapes[i][0], dim = shapes[i][1];
    float *x = make_logits (rows, dim, 510 + i);
    float *ref = softmax_run (&be.ref, x, rows, dim);
    float *fast = softmax_run (&be.fast, x, rows, dim);
    g_autofree char *what = g_strdup_printf ("softmax fast %lldx%lld", (long long) rows,
                                             (long long) dim);

    tk_check_finite (what, fast, rows * dim);
    tk_check_nmse (what, ref, fast, rows * dim, 1e-7);
    g_free (x);
    g_free (ref);
    g_free (fast);
  }
  tk_backends_clear (&be);
}

static void
check_invalid (const ts_backend *be)
{
  ts_error err = { 0 };
  ts_buffer *buf = tk_buffer (be, NULL, 12);
  ts_softmax_args a = { .x = ts_ref_at (buf, 0), .rows = 3, .dim = 4 };

  tk_check_status ("valid", ts_op_softmax (be, &a, &err), TS_OK, &err);
  a.rows = 4;
  tk_check_status ("rows beyond buffer", ts_op_softmax (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a.rows = -1;
  tk_check_status ("negative rows", ts_op_softmax (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a.rows = 1, a.x.buf = NULL;
  tk_check_status ("absent x", ts_op_softmax (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  tk_buffer_free (be, buf);
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
  g_test_add_func ("/kernels/softmax/reference-vs-double", test_reference_vs_double);
  g_test_add_func ("/kernels/softmax/fast-vs-reference", test_fast_vs_reference);
  g_test_add_func ("/kernels/softmax/invalid", test_invalid);
  return g_test_run ();
}
