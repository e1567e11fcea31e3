/* SPDX-License-Identifier: MIT
 *
 * test-kernel-norm — LayerNorm and RMSNorm over rows (ts_op_norm), with and without
 * affine weight/bias, with the AdaLN modulation y * (1 + scale[b]) + shift[b], strided
 * rows and in place. The reference is checked against double precision, the fast path
 * against the reference.
 */
#include "kernel-common.h"

#include <math.h>

typedef struct {
  ts_norm_kind kind;
  int64_t rows, dim, ldx, ldy;
  gboolean weight, bias, modulate, in_place;
  int64_t rows_per_batch;
  ts_dtype dtype;
} norm_case;

typedef struct {
  float *x, *w, *b, *mod; /* mod: [n_batches, 2 * dim] = [shift | scale] per batch */
  int64_t n_batches;
} norm_data;

static void
norm_data_init (norm_data *d, const norm_case *c, guint64 stream)
{
  tk_rng rng;

  tk_rng_init (&rng, stream);
  d->n_batches = c->modulate ? (c->rows + c->rows_per_batch - 1) / c->rows_per_batch : 0;
  d->x = g_new (float, c->rows * c->ldx + 1);
  d->w = g_new (float, c->dim + 1);
  d->b = g_new (float, c->dim + 1);
  d->mod = g_new (float, d->n_batches * 2 * c->dim + 1);
  /* an offset mean makes LayerNorm's mean subtraction matter */
  tk_fill_normal (&rng, d->x, c->rows * c->ldx, 1.5f, 2.0f);
  tk_fill_normal (&rng, d->w, c->dim, 1.0f, 0.2f);
  tk_fill_normal (&rng, d->b, c->dim, 0.0f, 0.2f);
  tk_fill_normal (&rng, d->mod, d->n_batches * 2 * c->dim, 0.0f, 0.5f);
}

static void
norm_data_clear (norm_data *d)
{
  g_free (d->x);
  g_free (d->w);
  g_free (d->b);
  g_free (d->mod);
}

static float *
norm_run (const ts_backend *be, const norm_case *c, norm_data *d)
{
  ts_error err = { 0 };
  ts_weight w, b;
  int64_t shape[1] = { c->dim };
  int64_t ldy = c->in_place ? c->ldx : c->ldy;
  ts_buffer *x = tk_buffer (be, d->x, c->rows * c->ldx);
  ts_buffer *y = c->in_place ? x : tk_buffer (be, NULL, c->rows * ldy);
  ts_buffer *mod = tk_buffer (be, d->mod, d->n_batches * 2 * c->dim);
  ts_norm_args a = {
    .kind = c->kind, .x = ts_ref_at (x, 0), .ldx = c->ldx, .y = ts_ref_at (y, 0), .ldy = ldy,
    .rows = c->rows, .dim = c->dim, .eps = 1e-6f,
    .weight = c->weight ? &w : NULL, .bias = c->bias ? &b : NULL,
  };
  float *out;

  if (c->modulate) {
    a.shift = ts_ref_at (mod, 0);
    a.scale = ts_ref_f32 (a.shift, c->dim);
    a.rows_per_batch = c->rows_per_batch;
    a.mod_stride = 2 * c->dim;
  }
  tk_weight (be, &w, "norm.weight", c->dtype, d->w, 1, shape);
  tk_weight (be, &b, "norm.bias", c->dtype, d->b, 1, shape);
  if (ts_op_norm (be, &a, &err) != TS_OK)
    g_error ("%s: norm: %s", ts_backend_name (be), err.message);
  out = tk_download (be, y, 0, c->rows * ldy);
  ts_weight_free (be, &w);
  ts_weight_free (be, &b);
  if (y != x)
    tk_buffer_free (be, y);
  tk_buffer_free (be, x);
  tk_buffer_free (be, mod);
  return out;
}

static void
norm_expected (const norm_case *c, const norm_data *d, double *want, int64_t ldy)
{
  for (int64_t r = 0; r < c->rows; r++) {
    const float *xr = d->x + r * c->ldx;
    double mean = 0.0, var = 0.0, rstd;
    for (int64_t j = 0; j < c->dim; j++)
      mean += xr[j];
    mean /= (double) c->dim;
    for (int64_t j = 0; j < c->dim; j++)
      var += c->kind == TS_NORM_LAYER ? (xr[j] - mean) * (xr[j] - mean) : (double) xr[j] * xr[j];
    rstd = 1.0 / sqrt (var / (double) c->dim + 1e-6);
    for (int64_t j = 0; j < c->dim; j++) {
      double v = ((double) xr[j] - (c->kind == TS_NORM_LAYER ? mean : 0.0)) * rstd;
      if (c->weight)
        v *= d->w[j];
      if (c->bias)
        v += d->b[j];
      if (c->modulate) {
        const float *m = d->mod + (r / c->rows_per_batch) * 2 * c->dim;
        v = v * (1.0 + m[c->dim + j]) + m[j];
      }
      want[r * ldy + j] = v;
    }
  }
}

static const norm_case cases[] = {
  { TS_NORM_LAYER, 37, 53, 53, 53, FALSE, FALSE, FALSE, FALSE, 1, TS_DTYPE_F32 },
  { TS_NORM_LAYER, 37, 53, 60, 57, TRUE, TRUE, FALSE, FALSE, 1, TS_DTYPE_F32 },
  { TS_NORM_LAYER, 74, 64, 64, 64, FALSE, FALSE, TRUE, TRUE, 37, TS_DTYPE_F32 }, /* AdaLN */
  { TS_NORM_LAYER, 2 * 110, 96, 100, 96, FALSE, FALSE, TRUE, FALSE, 110, TS_DTYPE_F32 },
  { TS_NORM_RMS, 37, 53, 53, 53, TRUE, FALSE, FALSE, FALSE, 1, TS_DTYPE_F32 },
  { TS_NORM_RMS, 77 + 33, 32, 96, 96, TRUE, FALSE, FALSE, TRUE, 1, TS_DTYPE_F16 }, /* q/k norm */
  { TS_NORM_RMS, 29, 1031, 1031, 1040, TRUE, FALSE, FALSE, FALSE, 1, TS_DTYPE_BF16 },
  { TS_NORM_RMS, 9, 47, 47, 47, FALSE, TRUE, TRUE, FALSE, 4, TS_DTYPE_F32 },
};

static void
test_reference_vs_double (void)
{
  tk_backends be;

  tk_backends_init (&be);
  for (guint ci = 0; ci < G_N_ELEMENTS (cases); ci++) {
    const norm_case *c = &cases[ci];
    int64_t ldy = c->in_place ? c->ldx : c->ldy;
    norm_data d;
    double *want = g_new0 (double, c->rows * ldy);
    float *got;
    g_autofree char *what = g_strdup_printf ("norm ref case %u", ci);

    norm_data_init (&d, c, 300 + ci);
    got = norm_run (&be.ref, c, &d);
    norm_expected (c, &d, want, ldy);
    for (int64_t r = 0; r < c->rows; r++)
      for (int64_t j = c->dim; j < ldy; j++) /* gaps: untouched input or zeros */
        want[r * ldy + j] = c->in_place ? d.x[r * c->ldx + j] : 0.0;
    /* outputs are O(1-10): the normalised value is exact to fp32 rounding, then up to
     * three fp32 operations (weight, bias, modulation) */
    tk_check_close (what, got, want, c->rows * ldy, 4e-6, 2e-6);
    g_free (want);
    g_free (got);
    norm_data_clear (&d);
  }
  tk_backends_clear (&be);
}

static void
test_fast_vs_reference (void)
{
  static const norm_case big[] = {
    { TS_NORM_LAYER, 2 * 173, 1024, 1024, 1024, FALSE, FALSE, TRUE, TRUE, 173, TS_DTYPE_F32 },
    { TS_NORM_RMS, 513, 64, 192, 64, TRUE, FALSE, FALSE, FALSE, 1, TS_DTYPE_F16 },
  };
  tk_backends be;

  tk_backends_init (&be);
  for (guint ci = 0; ci < G_N_ELEMENTS (cases) + G_N_ELEMENTS (big); ci++) {
    const norm_case *c = ci < G_N_ELEMENTS (cases) ? &cases[ci] : &big[ci - G_N_ELEMENTS (cases)];
    int64_t n = c->rows * (c->in_place ? c->ldx : c->ldy);
    norm_data d;
    float *ref, *fast;
    g_autofree char *what = g_strdup_printf ("norm fast case %u", ci);

    norm_data_init (&d, c, 400 + ci);
    ref = norm_run (&be.ref, c, &d);
    fast = norm_run (&be.fast, c, &d);
    tk_check_finite (what, fast, n);
    /* same double statistics on both paths; only the fp32 epilogue may differ */
    tk_check_nmse (what, ref, fast, n, 1e-7);
    g_free (ref);
    g_free (fast);
    norm_data_clear (&d);
  }
  tk_backends_clear (&be);
}

static void
check_invalid (const ts_backend *be)
{
  ts_error err = { 0 };
  float wv[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
  int64_t shape7[1] = { 7 };
  ts_weight w7;
  ts_buffer *x = tk_buffer (be, NULL, 4 * 8), *mod = tk_buffer (be, NULL, 2 * 16);
  ts_norm_args ok = {
    .kind = TS_NORM_RMS, .x = ts_ref_at (x, 0), .ldx = 8, .y = ts_ref_at (x, 0), .ldy = 8,
    .rows = 4, .dim = 8, .eps = 1e-6f, .shift = ts_ref_at (mod, 0),
    .scale = ts_ref_at (mod, 32), .rows_per_batch = 2, .mod_stride = 16,
  };
  ts_norm_args a;

  tk_weight (be, &w7, "w7", TS_DTYPE_F32, wv, 1, shape7);
  tk_check_status ("valid", ts_op_norm (be, &ok, &err), TS_OK, &err);
  a = ok, a.rows = 5;
  tk_check_status ("rows beyond x", ts_op_norm (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.scale.buf = NULL;
  tk_check_status ("shift without scale", ts_op_norm (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.rows_per_batch = 0;
  tk_check_status ("rows_per_batch 0", ts_op_norm (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.rows_per_batch = 1; /* four batches of modulation do not fit */
  tk_check_status ("modulation range", ts_op_norm (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.weight = &w7;
  tk_check_status ("weight size", ts_op_norm (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.kind = (ts_norm_kind) 7;
  tk_check_status ("kind", ts_op_norm (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.dim = -8;
  tk_check_status ("negative dim", ts_op_norm (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  ts_weight_free (be, &w7);
  tk_buffer_free (be, x);
  tk_buffer_free (be, mod);
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
  g_test_add_func ("/kernels/norm/reference-vs-double", test_reference_vs_double);
  g_test_add_func ("/kernels/norm/fast-vs-reference", test_fast_vs_reference);
  g_test_add_func ("/kernels/norm/invalid", test_invalid);
  return g_test_run ();
}
