/* SPDX-License-Identifier: MIT
 *
 * test-kernel-group-norm — GroupNorm over NCHW with per-channel affine and the optional
 * fused SiLU (ts_op_group_norm), in place and not, on odd spatial sizes: reference
 * against double precision, fast path against the reference. The same cases also run
 * split into three uneven parts along hw (TS_GN_STATS over each part, then TS_GN_APPLY),
 * as the VQ decoder normalises its row bands; that result must match the double
 * computation as closely as the one-op result does.
 */
#include "kernel-common.h"

#include <math.h>
#include <string.h>

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
    g_error ("%s: group_norm: %s", ts_backend_name (be), err.message);
  out = tk_download (be, by, 0, n);
  ts_weight_free (be, &w);
  ts_weight_free (be, &b);
  if (by != bx)
    tk_buffer_free (be, by);
  tk_buffer_free (be, bx);
  return out;
}

/* The tensor as three dense parts [batch, c, hw_k] along hw: statistics merged part by
 * part, then each part normalised (in place when the case says so) and gathered back. */
static float *
gn_run_parts (const ts_backend *be, const gn_case *c, const float *x, float *wv, float *bv)
{
  ts_error err = { 0 };
  int64_t n = c->batch * c->c * c->hw, shape[1] = { c->c }, planes = c->batch * c->c;
  int64_t bounds[4] = { 0, c->hw / 3, c->hw - c->hw / 4, c->hw };
  ts_weight w, b;
  ts_buffer *stats = tk_buffer (be, NULL, (size_t) (c->batch * c->groups * 2));
  ts_buffer *px[3], *py[3];
  float *out = g_new (float, n);

  tk_weight (be, &w, "norm.weight", c->dtype, wv, 1, shape);
  tk_weight (be, &b, "norm.bias", c->dtype, bv, 1, shape);
  for (int k = 0; k < 3; k++) {
    int64_t hw = bounds[k + 1] - bounds[k];
    float *part = g_new (float, planes * hw);
    for (int64_t p = 0; p < planes; p++)
      memcpy (part + p * hw, x + p * c->hw + bounds[k], (size_t) hw * sizeof (float));
    px[k] = tk_buffer (be, part, (size_t) (planes * hw));
    py[k] = c->in_place ? px[k] : tk_buffer (be, NULL, (size_t) (planes * hw));
    g_free (part);
  }
  for (int pass = 0; pass < 2; pass++)
    for (int k = 0; k < 3; k++) {
      ts_group_norm_args a = {
        .pass = pass == 0 ? TS_GN_STATS : TS_GN_APPLY, .x = ts_ref_at (px[k], 0),
        .y = ts_ref_at (py[k], 0), .weight = c->affine ? &w : NULL,
        .bias = c->affine ? &b : NULL, .batch = c->batch, .c = c->c,
        .hw = bounds[k + 1] - bounds[k], .groups = c->groups, .eps = 1e-6f, .silu = c->silu,
        .stats = ts_ref_at (stats, 0), .hw_done = bounds[k],
      };
      if (ts_op_group_norm (be, &a, &err) != TS_OK)
        g_error ("%s: group_norm part %d: %s", ts_backend_name (be), k, err.message);
    }
  for (int k = 0; k < 3; k++) {
    int64_t hw = bounds[k + 1] - bounds[k];
    float *part = tk_download (be, py[k], 0, (size_t) (planes * hw));
    for (int64_t p = 0; p < planes; p++)
      memcpy (out + p * c->hw + bounds[k], part + p * hw, (size_t) hw * sizeof (float));
    g_free (part);
    if (py[k] != px[k])
      tk_buffer_free (be, py[k]);
    tk_buffer_free (be, px[k]);
  }
  ts_weight_free (be, &w);
  ts_weight_free (be, &b);
  tk_buffer_free (be, stats);
  return out;
}

static const gn_case cases[] = {
  { 2, 12, 5 * 7, 4, FALSE, TRUE, FALSE, TS_DTYPE_F32 },
  { 2, 12, 5 * 7, 4, TRUE, TRUE, TRUE, TS_DTYPE_F16 },
  { 1, 9, 3 * 11, 3, TRUE, FALSE, FALSE, TS_DTYPE_F32 },
  { 3, 8, 1, 2, FALSE, TRUE, TRUE, TS_DTYPE_BF16 },
  { 2, 32, 48 * 80, 4, TRUE, TRUE, FALSE, TS_DTYPE_F32 }, /* VQ decoder-like */
  /* 3.8 M elements: on a CPU-type Vulkan device the normalising pass of the first two
   * parts runs in two pieces of each group (TS_VK_PIECE_ELEMENTS_CPU) */
  { 4, 8, 300 * 400, 4, TRUE, TRUE, TRUE, TS_DTYPE_F32 },
  /* groups past llvmpipe's loop limit (65535 iterations of a shader's loops per
   * invocation, then they are cut): 1 M elements a group, as the VQ decoder's first
   * full-resolution GroupNorm of a 1024x1024 image, and one 4 M-element group whose
   * parts are still over 1 M elements each; the statistics run in pieces */
  { 1, 16, 512 * 512, 4, TRUE, TRUE, FALSE, TS_DTYPE_F32 },
  { 1, 16, 512 * 512, 1, FALSE, TRUE, TRUE, TS_DTYPE_F32 },
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
    if (c->hw >= 3) {
      g_autofree char *what_parts = g_strdup_printf ("group_norm case %u in parts", ci);
      float *ref_parts = gn_run_parts (&be.ref, c, x, wv, bv);
      float *fast_parts = gn_run_parts (&be.fast, c, x, wv, bv);
      /* the kept fp32 mean and variance add about one fp32 rounding relative to the
       * normalised values (|x - mean| / std up to ~5 here) */
      tk_check_close (what_parts, ref_parts, want, n, 1e-5, 1e-5);
      tk_check_finite (what_parts, fast_parts, n);
      tk_check_nmse (what_parts, ref, ref_parts, n, 1e-11);
      tk_check_nmse (what_parts, ref_parts, fast_parts, n, 1e-7);
      g_free (ref_parts);
      g_free (fast_parts);
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
  a = ok, a.pass = TS_GN_STATS;
  tk_check_status ("statistics without a stats buffer", ts_op_group_norm (be, &a, &err),
                   TS_ERR_INVALID_ARG, &err);
  a = ok, a.pass = TS_GN_APPLY, a.stats = ts_ref_at (x, 6 * 10 * sizeof (float) - 4);
  tk_check_status ("stats beyond buffer", ts_op_group_norm (be, &a, &err), TS_ERR_INVALID_ARG,
                   &err);
  a = ok, a.pass = TS_GN_STATS, a.stats = ts_ref_at (x, 0), a.hw_done = -1;
  tk_check_status ("negative hw_done", ts_op_group_norm (be, &a, &err), TS_ERR_INVALID_ARG,
                   &err);
  ts_weight_free (be, &w);
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
