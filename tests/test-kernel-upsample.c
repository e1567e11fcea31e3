/* SPDX-License-Identifier: MIT
 *
 * test-kernel-upsample — nearest-neighbour 2x upsampling over NCHW (ts_op_upsample) on
 * odd sizes: a pure copy, so both paths must match the definition exactly.
 */
#include "kernel-common.h"

static void
test_upsample (void)
{
  /* the last (2.5 M outputs) runs on a CPU-type Vulkan device in pieces of 68 planes
   * (TS_VK_PIECE_ELEMENTS_CPU), across the batch boundary */
  static const int64_t shapes[][4] = { { 2, 3, 5, 7 }, { 1, 1, 1, 1 }, { 2, 16, 12, 20 },
                                        { 2, 64, 33, 45 }, { 2, 80, 60, 64 } };
  tk_backends be;

  tk_backends_init (&be);
  for (guint si = 0; si < G_N_ELEMENTS (shapes); si++) {
    int64_t batch = shapes[si][0], c = shapes[si][1], h = shapes[si][2], w = shapes[si][3];
    int64_t n_x = batch * c * h * w, n_y = 4 * n_x;
    float *x = g_new (float, n_x), *want = g_new (float, n_y);
    tk_rng rng;

    tk_rng_init (&rng, 1600 + si);
    tk_fill_uniform (&rng, x, n_x, -1.0f, 1.0f);
    for (int64_t p = 0; p < batch * c; p++)
      for (int64_t i = 0; i < 2 * h; i++)
        for (int64_t j = 0; j < 2 * w; j++)
          want[(p * 2 * h + i) * 2 * w + j] = x[(p * h + i / 2) * w + j / 2];
    for (int k = 0; k < 2; k++) {
      const ts_backend *bk = k ? &be.fast : &be.ref;
      ts_error err = { 0 };
      ts_buffer *bx = tk_buffer (bk, x, n_x), *by = tk_buffer (bk, NULL, n_y);
      ts_upsample_args a = { .x = ts_ref_at (bx, 0), .y = ts_ref_at (by, 0), .batch = batch,
                             .c = c, .h = h, .w = w };
      float *got;

      if (ts_op_upsample (bk, &a, &err) != TS_OK)
        g_error ("%s: upsample: %s", ts_backend_name (bk), err.message);
      got = tk_download (bk, by, 0, n_y);
      tk_check_equal (ts_backend_name (bk), got, want, n_y);
      g_free (got);
      tk_buffer_free (bk, bx);
      tk_buffer_free (bk, by);
    }
    g_free (x);
    g_free (want);
  }
  tk_backends_clear (&be);
}

static void
check_invalid (const ts_backend *be)
{
  ts_error err = { 0 };
  ts_buffer *x = tk_buffer (be, NULL, 2 * 3 * 5), *y = tk_buffer (be, NULL, 4 * 2 * 3 * 5);
  ts_upsample_args ok = { .x = ts_ref_at (x, 0), .y = ts_ref_at (y, 0), .batch = 1, .c = 2,
                          .h = 3, .w = 5 };
  ts_upsample_args a;

  tk_check_status ("valid", ts_op_upsample (be, &ok, &err), TS_OK, &err);
  a = ok, a.y = ts_ref_at (y, 4);
  tk_check_status ("y offset", ts_op_upsample (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.h = 4;
  tk_check_status ("x beyond buffer", ts_op_upsample (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.w = INT64_MAX / 2 + 1;
  tk_check_status ("overflow", ts_op_upsample (be, &a, &err), TS_ERR_INVALID_ARG, &err);
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
  g_test_add_func ("/kernels/upsample/exact", test_upsample);
  g_test_add_func ("/kernels/upsample/invalid", test_invalid);
  return g_test_run ();
}
