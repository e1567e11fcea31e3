/* SPDX-License-Identifier: MIT
 *
 * test-kernel-rope — interleaved rotary embedding (ts_op_rope) in place on Q inside a
 * packed QKV buffer, with the table layout the transformer builds (each angle twice:
 * channels 2j and 2j+1 share a frequency; text positions have angle 0). The neighbouring
 * K and V columns must stay untouched.
 */
#include "kernel-common.h"

#include <math.h>

typedef struct {
  int64_t batch, seq, heads, d_head;
} rope_case;

/* cos/sin [seq, d_head]: position s gets angle s * 10000^(-2j/d) for pair j, except the
 * first n_text positions, which get angle 0 (the text stream's ids are zeros). */
static void
make_tables (const rope_case *c, int64_t n_text, float *cos_t, float *sin_t)
{
  for (int64_t s = 0; s < c->seq; s++)
    for (int64_t j = 0; j < c->d_head / 2; j++) {
      double pos = s < n_text ? 0.0 : (double) (s - n_text + 1);
      double angle = pos * pow (10000.0, -2.0 * (double) j / (double) c->d_head);
      cos_t[s * c->d_head + 2 * j] = cos_t[s * c->d_head + 2 * j + 1] = (float) cos (angle);
      sin_t[s * c->d_head + 2 * j] = sin_t[s * c->d_head + 2 * j + 1] = (float) sin (angle);
    }
}

static float *
rope_run (const ts_backend *be, const rope_case *c, const float *qkv, const float *cos_t,
          const float *sin_t)
{
  ts_error err = { 0 };
  int64_t width = c->heads * c->d_head, ld = 3 * width;
  size_t n = c->batch * c->seq * ld;
  ts_buffer *x = tk_buffer (be, qkv, n);
  ts_buffer *tab = tk_buffer (be, NULL, 2 * c->seq * c->d_head + 3);
  ts_rope_args a = {
    .x = ts_ref_at (x, 0), .ldx = ld, .bs_x = c->seq * ld,
    .cos = ts_ref_f32 (ts_ref_at (tab, 0), 3), /* tables need not start at offset 0 */
    .sin = ts_ref_f32 (ts_ref_at (tab, 0), 3 + c->seq * c->d_head),
    .batch = c->batch, .seq = c->seq, .heads = c->heads, .d_head = c->d_head,
  };
  float *out;

  ts_buffer_upload (be, a.cos, cos_t, c->seq * c->d_head * sizeof (float), &err);
  ts_buffer_upload (be, a.sin, sin_t, c->seq * c->d_head * sizeof (float), &err);
  if (ts_op_rope (be, &a, &err) != TS_OK)
    g_error ("%s: rope: %s", ts_backend_name (be), err.message);
  out = tk_download (be, x, 0, n);
  tk_buffer_free (be, x);
  tk_buffer_free (be, tab);
  return out;
}

static const rope_case cases[] = {
  { 2, 77 + 33, 3, 32 },
  { 1, 37, 2, 6 },
  { 2, 301, 4, 64 },
};

static void
test_rope (void)
{
  tk_backends be;

  tk_backends_init (&be);
  for (guint ci = 0; ci < G_N_ELEMENTS (cases); ci++) {
    const rope_case *c = &cases[ci];
    int64_t width = c->heads * c->d_head, ld = 3 * width;
    size_t n = c->batch * c->seq * ld;
    float *qkv = g_new (float, n);
    float *cos_t = g_new (float, c->seq * c->d_head), *sin_t = g_new (float, c->seq * c->d_head);
    double *want = g_new (double, n);
    float *ref, *fast;
    tk_rng rng;
    g_autofree char *what = g_strdup_printf ("rope case %u", ci);

    tk_rng_init (&rng, 800 + ci);
    tk_fill_normal (&rng, qkv, n, 0.0f, 1.0f);
    make_tables (c, MIN (c->seq / 2, 77), cos_t, sin_t);
    for (size_t i = 0; i < n; i++)
      want[i] = qkv[i];
    for (int64_t b = 0; b < c->batch; b++)
      for (int64_t s = 0; s < c->seq; s++)
        for (int64_t h = 0; h < c->heads; h++)
          for (int64_t j = 0; j < c->d_head; j += 2) {
            size_t at = (b * c->seq + s) * ld + h * c->d_head + j;
            double co = cos_t[s * c->d_head + j], si = sin_t[s * c->d_head + j];
            want[at] = (double) qkv[at] * co - (double) qkv[at + 1] * si;
            want[at + 1] = (double) qkv[at + 1] * co + (double) qkv[at] * si;
          }
    ref = rope_run (&be.ref, c, qkv, cos_t, sin_t);
    fast = rope_run (&be.fast, c, qkv, cos_t, sin_t);
    /* two products and a sum of O(1) values in fp32 */
    tk_check_close (what, ref, want, n, 1e-6, 1e-6);
    tk_check_finite (what, fast, n);
    tk_check_nmse (what, ref, fast, n, 1e-7);
    g_free (qkv);
    g_free (cos_t);
    g_free (sin_t);
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
  ts_buffer *x = tk_buffer (be, NULL, 2 * 3 * 8), *tab = tk_buffer (be, NULL, 2 * 3 * 4);
  ts_rope_args ok = {
    .x = ts_ref_at (x, 0), .ldx = 8, .bs_x = 24, .cos = ts_ref_at (tab, 0),
    .sin = ts_ref_at (tab, 48), .batch = 2, .seq = 3, .heads = 2, .d_head = 4,
  };
  ts_rope_args a;

  tk_check_status ("valid", ts_op_rope (be, &ok, &err), TS_OK, &err);
  a = ok, a.d_head = 3, a.heads = 1;
  tk_check_status ("odd d_head", ts_op_rope (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.sin = ts_ref_at (tab, 52);
  tk_check_status ("sin beyond buffer", ts_op_rope (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.bs_x = 25;
  tk_check_status ("x batch stride", ts_op_rope (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.cos.buf = NULL;
  tk_check_status ("absent cos", ts_op_rope (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  tk_buffer_free (be, x);
  tk_buffer_free (be, tab);
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
  g_test_add_func ("/kernels/rope/reference-fast-double", test_rope);
  g_test_add_func ("/kernels/rope/invalid", test_invalid);
  return g_test_run ();
}
