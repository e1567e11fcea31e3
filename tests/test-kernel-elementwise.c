/* SPDX-License-Identifier: MIT
 *
 * test-kernel-elementwise — add, mul, gated add, CFG, strided copy and bias add
 * (ts_op_elementwise), in place on either operand and with strided rows, plus the
 * per-batch transpose (ts_op_transpose). Each element is one or two fp32 operations, so
 * both paths must match the same expression evaluated here bit for bit.
 */
#include "kernel-common.h"

#include <string.h>

typedef enum { OUT_SEPARATE, OUT_ALIAS_A, OUT_ALIAS_B } out_mode;

typedef struct {
  ts_ew_kind kind;
  const char *name;
  gboolean uses_b, uses_gate;
} ew_kind_info;

static const ew_kind_info kinds[] = {
  { TS_EW_ADD, "add", TRUE, FALSE },         { TS_EW_MUL, "mul", TRUE, FALSE },
  { TS_EW_GATED_ADD, "gated_add", TRUE, TRUE }, { TS_EW_CFG, "cfg", TRUE, FALSE },
  { TS_EW_COPY, "copy", FALSE, FALSE },      { TS_EW_BIAS_ADD, "bias_add", FALSE, TRUE },
};

/* rows x cols with lda = ldb (so the aliasing cases share a layout); y has its own stride
 * unless it aliases an input. The large shape makes the fast path split rows over threads;
 * the last (2.4 M elements) runs on a CPU-type Vulkan device in pieces of 2 rows, and of
 * 2 and 1 rows of each 3-row batch of the gate (TS_VK_PIECE_ELEMENTS_CPU). */
typedef struct {
  int64_t rows, cols, ld, ldy, rows_per_batch, gate_stride;
} ew_shape;

static const ew_shape shapes[] = {
  { 74, 53, 57, 55, 37, 61 },
  { 2 * 1101, 300, 303, 301, 1101, 300 },
  { 6, 400001, 400004, 400003, 3, 400001 },
};

static float
expected_one (ts_ew_kind kind, float a, float b, float g, float s)
{
  switch (kind) {
  case TS_EW_ADD: return a + b;
  case TS_EW_MUL: return a * b;
  case TS_EW_GATED_ADD: return a + b * g;
  case TS_EW_CFG: return a + s * (b - a);
  case TS_EW_COPY: return a;
  case TS_EW_BIAS_ADD: return a + g;
  }
  g_assert_not_reached ();
}

static float *
ew_run (const ts_backend *be, const ew_shape *sh, const ew_kind_info *k, out_mode mode,
        const float *a, const float *b, const float *gate, int64_t rows_per_batch,
        const float *y0)
{
  ts_error err = { 0 };
  int64_t ldy = mode == OUT_SEPARATE ? sh->ldy : sh->ld;
  ts_buffer *ba = tk_buffer (be, a, sh->rows * sh->ld), *bb = tk_buffer (be, b, sh->rows * sh->ld);
  ts_buffer *bg = tk_buffer (be, gate, 2 * sh->gate_stride);
  ts_buffer *by = mode == OUT_ALIAS_A   ? ba
                  : mode == OUT_ALIAS_B ? bb
                                        : tk_buffer (be, y0, sh->rows * sh->ldy);
  ts_elementwise_args args = {
    .kind = k->kind, .a = ts_ref_at (ba, 0), .y = ts_ref_at (by, 0), .rows = sh->rows,
    .cols = sh->cols, .lda = sh->ld, .ldy = ldy, .s = 7.5f,
  };
  float *out;

  if (k->uses_b)
    args.b = ts_ref_at (bb, 0), args.ldb = sh->ld;
  if (k->uses_gate)
    args.gate = ts_ref_at (bg, 0), args.gate_stride = sh->gate_stride,
    args.rows_per_batch = rows_per_batch;
  if (ts_op_elementwise (be, &args, &err) != TS_OK)
    g_error ("%s: elementwise %s: %s", ts_backend_name (be), k->name, err.message);
  out = tk_download (be, by, 0, sh->rows * ldy);
  if (by != ba && by != bb)
    tk_buffer_free (be, by);
  tk_buffer_free (be, ba);
  tk_buffer_free (be, bb);
  tk_buffer_free (be, bg);
  return out;
}

static void
check_shape (const tk_backends *be, const ew_shape *sh, guint64 stream)
{
  int64_t n_in = sh->rows * sh->ld, n_y = sh->rows * sh->ldy;
  float *a = g_new (float, n_in), *b = g_new (float, n_in);
  float *gate = g_new (float, 2 * sh->gate_stride), *y0 = g_new (float, n_y);
  tk_rng rng;

  tk_rng_init (&rng, stream);
  tk_fill_normal (&rng, a, n_in, 0.0f, 3.0f);
  tk_fill_normal (&rng, b, n_in, 0.0f, 3.0f);
  tk_fill_normal (&rng, gate, 2 * sh->gate_stride, 0.0f, 1.0f);
  tk_fill_normal (&rng, y0, n_y, 0.0f, 1.0f);
  for (guint ki = 0; ki < G_N_ELEMENTS (kinds); ki++) {
    const ew_kind_info *k = &kinds[ki];
    for (out_mode mode = OUT_SEPARATE; mode <= OUT_ALIAS_B; mode++) {
      int64_t ldy = mode == OUT_SEPARATE ? sh->ldy : sh->ld;
      /* bias add: one gate row for all rows, as the header prescribes */
      int64_t rpb = k->kind == TS_EW_BIAS_ADD ? sh->rows : sh->rows_per_batch;
      float *want, *got[2];
      g_autofree char *what = NULL;

      if (mode == OUT_ALIAS_B && !k->uses_b)
        continue;
      what = g_strdup_printf ("elementwise %s %lldx%lld (%s)", k->name, (long long) sh->rows,
                              (long long) sh->cols,
                              mode == OUT_SEPARATE  ? "separate y"
                              : mode == OUT_ALIAS_A ? "y = a"
                                                    : "y = b");
      want = g_memdup2 (mode == OUT_ALIAS_A ? a : mode == OUT_ALIAS_B ? b : y0,
                        sh->rows * ldy * sizeof (float));
      for (int64_t r = 0; r < sh->rows; r++)
        for (int64_t c = 0; c < sh->cols; c++)
          want[r * ldy + c] = expected_one (k->kind, a[r * sh->ld + c], b[r * sh->ld + c],
                                            gate[(r / rpb) * sh->gate_stride + c], 7.5f);
      got[0] = ew_run (&be->ref, sh, k, mode, a, b, gate, rpb, y0);
      got[1] = ew_run (&be->fast, sh, k, mode, a, b, gate, rpb, y0);
      tk_check_equal (what, got[0], want, sh->rows * ldy);
      tk_check_equal (what, got[1], want, sh->rows * ldy);
      g_free (want);
      g_free (got[0]);
      g_free (got[1]);
    }
  }
  g_free (a);
  g_free (b);
  g_free (gate);
  g_free (y0);
}

static void
test_elementwise (void)
{
  tk_backends be;

  tk_backends_init (&be);
  for (guint si = 0; si < G_N_ELEMENTS (shapes); si++)
    check_shape (&be, &shapes[si], 1000 + si);
  tk_backends_clear (&be);
}

static void
test_transpose (void)
{
  static const int64_t tshapes[][3] = { { 2, 13, 35 }, { 1, 1, 7 },    { 3, 77, 5 },
                                        { 2, 64, 96 }, { 2, 300, 257 } };
  tk_backends be;

  tk_backends_init (&be);
  for (guint si = 0; si < G_N_ELEMENTS (tshapes); si++) {
    int64_t batch = tshapes[si][0], rows = tshapes[si][1], cols = tshapes[si][2];
    size_t n = batch * rows * cols;
    float *x = g_new (float, n), *want = g_new (float, n);
    tk_rng rng;

    tk_rng_init (&rng, 1100 + si);
    tk_fill_uniform (&rng, x, n, -1.0f, 1.0f);
    for (int64_t b = 0; b < batch; b++)
      for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
          want[(b * cols + c) * rows + r] = x[(b * rows + r) * cols + c];
    for (int p = 0; p < 2; p++) {
      const ts_backend *bk = p ? &be.fast : &be.ref;
      ts_error err = { 0 };
      ts_buffer *bx = tk_buffer (bk, x, n), *by = tk_buffer (bk, NULL, n);
      ts_transpose_args a = { .x = ts_ref_at (bx, 0), .y = ts_ref_at (by, 0), .batch = batch,
                              .rows = rows, .cols = cols };
      float *got;
      if (ts_op_transpose (bk, &a, &err) != TS_OK)
        g_error ("%s: transpose: %s", ts_backend_name (bk), err.message);
      got = tk_download (bk, by, 0, n);
      tk_check_equal ("transpose", got, want, n);
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
  ts_buffer *m = tk_buffer (be, NULL, 4 * 6), *g = tk_buffer (be, NULL, 6);
  ts_elementwise_args ok = {
    .kind = TS_EW_GATED_ADD, .a = ts_ref_at (m, 0), .b = ts_ref_at (m, 0), .y = ts_ref_at (m, 0),
    .gate = ts_ref_at (g, 0), .rows = 4, .cols = 6, .lda = 6, .ldb = 6, .ldy = 6,
    .rows_per_batch = 4, .gate_stride = 6,
  };
  ts_elementwise_args a;
  ts_transpose_args t = { .x = ts_ref_at (m, 0), .y = ts_ref_at (g, 0), .batch = 1, .rows = 2, .cols = 3 };

  tk_check_status ("valid", ts_op_elementwise (be, &ok, &err), TS_OK, &err);
  a = ok, a.rows_per_batch = 2; /* two gate rows needed, one present */
  tk_check_status ("gate range", ts_op_elementwise (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.rows_per_batch = 0;
  tk_check_status ("rows_per_batch 0", ts_op_elementwise (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.b.buf = NULL;
  tk_check_status ("absent b", ts_op_elementwise (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.kind = TS_EW_COPY, a.lda = 7;
  tk_check_status ("a beyond buffer", ts_op_elementwise (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.kind = (ts_ew_kind) 99;
  tk_check_status ("kind", ts_op_elementwise (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  tk_check_status ("transpose valid", ts_op_transpose (be, &t, &err), TS_OK, &err);
  t.cols = 4;
  tk_check_status ("transpose y range", ts_op_transpose (be, &t, &err), TS_ERR_INVALID_ARG, &err);
  tk_buffer_free (be, m);
  tk_buffer_free (be, g);
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
  g_test_add_func ("/kernels/elementwise/exact", test_elementwise);
  g_test_add_func ("/kernels/elementwise/transpose", test_transpose);
  g_test_add_func ("/kernels/elementwise/invalid", test_invalid);
  return g_test_run ();
}
