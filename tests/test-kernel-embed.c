/* SPDX-License-Identifier: MIT
 *
 * test-kernel-embed — embedding gather (ts_op_embed) from F32, F16 and BF16 tables: rows
 * must come out exactly as stored (widened to f32); ids outside the table are
 * TS_ERR_INVALID_ARG and nothing is written.
 */
#include "kernel-common.h"

#include <string.h>

enum { N_ROWS = 96, DIM = 53, N_IDS = 37 };

static float *
embed_run (const ts_backend *be, ts_dtype dtype, float *table, const int32_t *ids, int64_t n,
           ts_status expect)
{
  ts_error err = { 0 };
  int64_t shape[2] = { N_ROWS, DIM };
  ts_weight t;
  ts_buffer *bi = tk_buffer (be, NULL, (size_t) n), *by = tk_buffer (be, NULL, n * DIM);
  ts_embed_args a = { .table = &t, .ids = ts_ref_at (bi, 0), .y = ts_ref_at (by, 0), .n = n,
                      .dim = DIM };
  float *out;

  tk_weight (be, &t, "embed.weight", dtype, table, 2, shape);
  ts_buffer_upload (be, a.ids, ids, (size_t) n * sizeof (int32_t), &err);
  tk_check_status ("embed", ts_op_embed (be, &a, &err), expect, &err);
  out = tk_download (be, by, 0, n * DIM);
  ts_weight_free (be, &t);
  tk_buffer_free (be, bi);
  tk_buffer_free (be, by);
  return out;
}

static void
test_embed (void)
{
  static const ts_dtype dtypes[] = { TS_DTYPE_F32, TS_DTYPE_F16, TS_DTYPE_BF16 };
  tk_backends be;

  tk_backends_init (&be);
  for (guint di = 0; di < G_N_ELEMENTS (dtypes); di++) {
    float *table = g_new (float, N_ROWS * DIM), *want = g_new (float, N_IDS * DIM);
    int32_t ids[N_IDS];
    tk_rng rng;

    tk_rng_init (&rng, 1700 + di);
    tk_fill_normal (&rng, table, N_ROWS * DIM, 0.0f, 1.0f);
    tk_round_to (dtypes[di], table, N_ROWS * DIM);
    for (int i = 0; i < N_IDS; i++)
      ids[i] = i == 0 ? 0 : i == 1 ? N_ROWS - 1 : (int32_t) tk_uniform (&rng, 0.0f, N_ROWS - 0.5f);
    for (int i = 0; i < N_IDS; i++)
      memcpy (want + i * DIM, table + ids[i] * DIM, DIM * sizeof (float));
    for (int k = 0; k < 2; k++) {
      const ts_backend *bk = k ? &be.fast : &be.ref;
      float *got = embed_run (bk, dtypes[di], table, ids, N_IDS, TS_OK);
      tk_check_equal (ts_dtype_name (dtypes[di]), got, want, N_IDS * DIM);
      g_free (got);
    }
    g_free (table);
    g_free (want);
  }
  tk_backends_clear (&be);
}

static void
check_bad_ids (const ts_backend *be)
{
  float table[N_ROWS * DIM] = { 1.0f };
  int32_t ids[3] = { 5, N_ROWS, 2 };
  float *got;

  got = embed_run (be, TS_DTYPE_F32, table, ids, 3, TS_ERR_INVALID_ARG);
  for (int i = 0; i < 3 * DIM; i++) /* nothing written, not even the good first row */
    g_assert_cmpfloat (got[i], ==, 0.0f);
  g_free (got);
  ids[1] = -1;
  g_free (embed_run (be, TS_DTYPE_F32, table, ids, 3, TS_ERR_INVALID_ARG));
  ids[1] = INT32_MIN;
  g_free (embed_run (be, TS_DTYPE_F32, table, ids, 3, TS_ERR_INVALID_ARG));
}

static void
check_invalid (const ts_backend *be)
{
  ts_error err = { 0 };
  float tv[4 * 6] = { 0 };
  int64_t shape[2] = { 4, 6 };
  ts_weight t;
  ts_buffer *ids = tk_buffer (be, NULL, 3), *y = tk_buffer (be, NULL, 3 * 6);
  ts_embed_args ok = { .table = &t, .ids = ts_ref_at (ids, 0), .y = ts_ref_at (y, 0), .n = 3,
                       .dim = 6 };
  ts_embed_args a;

  tk_weight (be, &t, "t", TS_DTYPE_F32, tv, 2, shape);
  tk_check_status ("valid", ts_op_embed (be, &ok, &err), TS_OK, &err);
  a = ok, a.n = 4;
  tk_check_status ("ids beyond buffer", ts_op_embed (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.dim = 5;
  tk_check_status ("dim mismatch", ts_op_embed (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.table = NULL;
  tk_check_status ("no table", ts_op_embed (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.ids = ts_ref_at (ids, 2);
  tk_check_status ("misaligned ids", ts_op_embed (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  ts_weight_free (be, &t);
  tk_buffer_free (be, ids);
  tk_buffer_free (be, y);
}

static void
test_invalid (void)
{
  tk_backends be;

  tk_backends_init (&be);
  check_bad_ids (&be.ref);
  check_bad_ids (&be.fast);
  check_invalid (&be.ref);
  check_invalid (&be.fast);
  tk_backends_clear (&be);
}

int
main (int argc, char **argv)
{
  tk_init (&argc, &argv);
  g_test_add_func ("/kernels/embed/exact", test_embed);
  g_test_add_func ("/kernels/embed/invalid", test_invalid);
  return g_test_run ();
}
