/* SPDX-License-Identifier: MIT
 *
 * test-kernel-group-norm — GroupNorm over NCHW with per-channel affine and the optional
 * fused SiLU (ts_op_group_norm), in place and not, on odd spatial sizes: reference
 * against double precision, fast path against the reference.
 */
#include "kernel-common.h"

#include <math.h>

typedef struct {
  int64_t batch, c, hw;
  int groups;
  gboolean silu, affine, in_place;
  ts_dtype dtype;
} gn_case;

static float *
gn_run (const ts_backend *be, const gn_case *c, const float *x, float *wv, float *bv)
{
  ts_error err = { 0 };
  int64_t n = c->batch * c->c * c->hw, shape[1] = { c->c };
  ts_weight w, b;
  ts_buffer *bx = tk_buffer (be, x, n), *by = c->in_place ? bx : tk_buffer (be, NULL, n);
  ts_group_norm_args a = {
    .x = ts_ref_at (bx, 0), .y = ts_ref_at (by, 0), .weight = c->affine ? &w : NULL,
    .bias = c->affine ? &b : NULL, .batch = c->batch, .c = c->c, .hw = c->hw,
    .groups = c->groups, .eps = 1e-6f, .silu = c->silu,
  };
  float *out;

  tk_weight (be, &w, "norm.weight", c->dtype, wv, 1, shape);
  tk_weight (be, &b, "norm.bias", c->dtype, bv, 1, shape);
  if (ts_op_group_norm (be, &a, &err) != TS_OK)
    g_error ("%s: group_norm: %s", be->ops->name, err.message);
  out = tk_download (be, by, 0, n);
  be->ops->weight_free (be->impl, &w);
  be->ops->weight_free (be->impl, &b);
  if (by != bx)
    tk_buffer_free (be, by);
  tk_buffer_free (be, bx);
  return out;
}

static const gn_case cases[] = {
  { 2, 12, 5 * 7, 4, FALSE, TRUE, FALSE, TS_DTYPE_F32 },
  { 2, 12, 5 * 7, 4, TRUE, TRUE, TRUE, TS_DTYPE_F16 },
  { 1, 9, 3 * 11, 3, TRUE, FALSE, FALSE, TS_DTYPE_F32 },
  { 3, 8, 1, 2, FALSE, TRUE, TRUE, TS_DTYPE_BF16 },
  { 2, 32, 48 * 80, 4, TRUE, TRUE, FALSE, TS_DTYPE_F32 }, /* VQ decoder-like */
};

static void
test_group_norm (void)
{
  tk_backends be;

  tk_backends_init (&be);
  for (guint ci = 0; ci < G_N_ELEMENTS (cases); ci++) {
    const gn_case *c = &cases[ci];
    int64_t n = c->batch * c->c * c->hw, cg = c->c / c->groups;
    float *x = g_new (float, n), *wv = g_new (float, c->c), *bv = g_new (float, c->c);
    double *want = g_new (double, n);
    float *ref, *fast;
    tk_rng rng;
    g_autofree char *what = g_strdup_printf ("group_norm case %u", ci);

    tk_rng_init (&rng, 1500 + ci);
    tk_fill_normal (&rng, x, n, -0.7f, 2.5f);
    tk_fill_normal (&rng, wv, c->c, 1.0f, 0.2f);
    tk_fill_normal (&rng, bv, c->c, 0.0f, 0.2f);
    ref = gn_run (&be.ref, c, x, wv, bv); /* rounds wv, bv */
    fast = gn_run (&be.fast, c, x, wv, bv);
    for (int64_t b = 0; b < c->batch; b++)
      for (int g = 0; g < c->groups; g++) {
        const float *xg = x + (b * c->c + g * cg) * c->hw;
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < cg * c->hw; i++)
          mean += xg[i];
        mean /= (double) (cg * c->hw);
        for (int64_t i = 0; i < cg * c->hw; i++)
          var += (xg[i] - mean) * (xg[i] - mean);
        var /= (double) (cg * c->hw);
        for (int64_t i = 0; i < cg * c->hw; i++) {
          int64_t ch = g * cg + i / c->hw;
          double v = (xg[i] - mean) / sqrt (var + 1e-6);
          if (c->affine)
            v = v * wv[ch] + bv[ch];
          if (c->silu)
            v = v / (1.0 + exp (-v));
          want[(b * c->c + g * cg) * c->hw + i] = v;
        }
      }
    /* normalised values exact to fp32 rounding, then an fp32 affine and SiLU */
    tk_check_close (what, ref, want, n, 2e-6, 2e-6);
    tk_check_finite (what, fast, n);
    tk_check_nmse (what, ref, fast, n, 1e-7);
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
  float wv[6] = { 1, 1, 1, 1, 1, 1 };
  int64_t shape[1] = { 6 };
  ts_weight w;
  ts_buffer *x = tk_buffer (be, NULL, 6 * 10);
  ts_group_norm_args ok = {
    .x = ts_ref_at (x, 0), .y = ts_ref_at (x, 0), .weight = &w, .batch = 1, .c = 6, .hw = 10,
    .groups = 3, .eps = 1e-6f,
  };
  ts_group_norm_args a;

  tk_weight (be, &w, "w", TS_DTYPE_F32, wv, 1, shape);
  tk_check_status ("valid", ts_op_group_norm (be, &ok, &err), TS_OK, &err);
  a = ok, a.groups = 4;
  tk_check_status ("groups do not divide c", ts_op_group_norm (be, &a, &err),
                   TS_ERR_INVALID_ARG, &err);
  a = ok, a.groups = 0;
  tk_check_status ("no groups", ts_op_group_norm (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.hw = 11;
  tk_check_status ("x beyond buffer", ts_op_group_norm (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.c = 3, a.hw = 20;
  tk_check_status ("weight size", ts_op_group_norm (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  be->ops->weight_free (be->impl, &w);
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
  g_test_add_func ("/kernels/group-norm/reference-fast-double", test_group_norm);
  g_test_add_func ("/kernels/group-norm/invalid", test_invalid);
  return g_test_run ();
}
