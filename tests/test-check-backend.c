/* SPDX-License-Identifier: MIT
 *
 * test-check-backend — the check backend (engine/backend/check/) proves that it can fail:
 * its names, ops through "check:cpu" that pass and, with TESSERA_CHECK_INJECT, one that
 * fails naming the op, the stage and layer (ts_backend_scope_set) and the weight; then the
 * comparison rules on hand-made outputs: the per-element tolerance (a single wrong
 * element fails although its NMSE would pass), bit-for-bit ops (-0 against +0), NaN and
 * Inf agreement, writes between the rows of a strided output, and the sampler's codes
 * (a near-tie at a CDF step is accepted, any other difference is not) and confidences.
 * The end-to-end runs over the models are tests/test-check-backend.sh.
 */
#include "backend/check/ts-check.h"
#include "core/ts-rng.h"

#include <float.h>
#include <glib.h>
#include <math.h>

static void
test_names (void)
{
  g_assert_true (ts_backend_name_valid ("check:cpu"));
  g_assert_true (ts_backend_name_valid ("check:vulkan"));
  g_assert_true (ts_backend_name_valid ("check:vulkan:3"));
  g_assert_false (ts_backend_name_valid ("check:"));
  g_assert_false (ts_backend_name_valid ("check"));
  g_assert_false (ts_backend_name_valid ("check:cpu-ref"));
  g_assert_false (ts_backend_name_valid ("check:auto"));
  g_assert_false (ts_backend_name_valid ("check:check:cpu"));
  g_assert_false (ts_backend_name_valid ("check:vulkan:x"));
  g_assert_nonnull (strstr (ts_backend_names (), "check:cpu"));
}

/* y = x w^T through the backend, twice; the second result is returned. */
static ts_status
run_matmuls (const ts_backend *be, float *y_host, ts_error *err)
{
  float x[2 * 3] = { 1, 2, 3, -1, 0.5f, 4 };
  float w[2 * 3] = { 0.25f, -1, 2, 1, 1, 1 };
  const int64_t shape[2] = { 2, 3 };
  ts_weight wt;
  ts_buffer *xb, *yb;
  ts_status st;

  g_assert_cmpint (ts_weight_upload (be, &wt, "w.test", TS_DTYPE_F32, w, 2, shape, err), ==,
                   TS_OK);
  xb = ts_buffer_new (be, sizeof x, err);
  yb = ts_buffer_new (be, 4 * sizeof (float), err);
  g_assert_nonnull (xb);
  g_assert_nonnull (yb);
  g_assert_cmpint (ts_buffer_upload (be, ts_ref_at (xb, 0), x, sizeof x, err), ==, TS_OK);
  ts_matmul_args a = { .x = ts_ref_at (xb, 0), .ldx = 3, .w = &wt, .y = ts_ref_at (yb, 0),
                       .ldy = 2, .m = 2, .n = 2, .k = 3 };
  ts_backend_scope_set (be, "test layer", 1);
  st = ts_op_matmul (be, &a, err);
  if (st == TS_OK) {
    ts_backend_scope_set (be, "test layer", 2);
    a.accumulate = true;
    st = ts_op_matmul (be, &a, err);
  }
  if (st == TS_OK)
    st = ts_buffer_download (be, ts_ref_at (yb, 0), y_host, 4 * sizeof (float), err);
  ts_buffer_free (be, xb);
  ts_buffer_free (be, yb);
  ts_weight_free (be, &wt);
  return st;
}

static void
test_ops_pass (void)
{
  ts_error err = { 0 };
  ts_backend be;
  float y[4];

  g_unsetenv ("TESSERA_CHECK_INJECT");
  g_assert_cmpint (ts_backend_new_by_name (&be, "check:cpu", 1, &err), ==, TS_OK);
  g_assert_cmpstr (be.ops->name, ==, "check:cpu");
  g_assert_cmpuint (be.ops->max_operand_bytes (be.impl), ==, SIZE_MAX);
  g_assert_cmpint (run_matmuls (&be, y, &err), ==, TS_OK);
  /* twice (the second accumulates) x w^T */
  g_assert_cmpfloat (y[0], ==, 2 * (0.25f - 2 + 6));
  g_assert_cmpfloat (y[3], ==, 2 * (-1 + 0.5f + 4));
  ts_backend_free (&be);
}

static void
test_inject_fails (void)
{
  ts_error err = { 0 };
  ts_backend be;
  float y[4];

  g_setenv ("TESSERA_CHECK_INJECT", "matmul:1", TRUE);
  g_assert_cmpint (ts_backend_new_by_name (&be, "check:cpu", 1, &err), ==, TS_OK);
  g_unsetenv ("TESSERA_CHECK_INJECT");
  g_assert_cmpint (run_matmuls (&be, y, &err), ==, TS_ERR_DEVICE);
  g_test_message ("%s", err.message);
  g_assert_true (g_str_has_prefix (err.message, "check: matmul in test layer 2 (m=2 n=2 k=3"));
  g_assert_nonnull (strstr (err.message, "weight 'w.test'"));
  g_assert_nonnull (strstr (err.message, "matmul call 1)"));
  g_assert_nonnull (strstr (err.message, "out of tolerance: max error at y[0, 0]"));
  ts_backend_free (&be);
}

static const ts_check_context ctx_matmul = { TS_CHECK_MATMUL, "matmul", 0, "here", "shapes" };
static const ts_check_context ctx_copy = { TS_CHECK_TRANSPOSE, "transpose", 0, "here", "shapes" };

/* A [rows, cols] output with row stride ld. */
static ts_check_operand
matrix (int64_t rows, int64_t cols, int64_t ld)
{
  ts_check_operand o = { .name = "y", .n_dims = 2, .dims = { rows, cols }, .strides = { ld, 1 } };
  return o;
}

static ts_status
compare (const ts_check_context *ctx, const ts_check_operand *o, const float *dev,
         const float *ref, double *worst)
{
  ts_check_result res = { 0 };
  ts_error err = { 0 };
  ts_status st = ts_check_compare_f32 (ctx, o, dev, ref, &res, &err);

  if (st != TS_OK)
    g_test_message ("%s", err.message);
  if (worst)
    *worst = res.worst;
  return st;
}

static void
test_compare_f32 (void)
{
  enum { N = 1000 };
  float ref[N], dev[N];
  ts_check_operand o = matrix (10, 100, 100);
  double worst, nmse_num = 0, nmse_den = 0;

  for (int i = 0; i < N; i++)
    ref[i] = dev[i] = sinf ((float) i);
  g_assert_cmpint (compare (&ctx_matmul, &o, dev, ref, &worst), ==, TS_OK);
  g_assert_cmpfloat (worst, ==, 0.0);

  /* rounding-sized differences everywhere pass */
  for (int i = 0; i < N; i++)
    dev[i] = ref[i] * (1.0f + 2e-6f);
  g_assert_cmpint (compare (&ctx_matmul, &o, dev, ref, &worst), ==, TS_OK);
  g_assert_cmpfloat (worst, >, 0.0);
  g_assert_cmpfloat (worst, <, 1e-5);

  /* one element wrong by 0.5 %: the kernel tests' NMSE bound of 1e-7 would let it through */
  memcpy (dev, ref, sizeof dev);
  dev[517] = ref[517] * 1.005f + 1e-4f;
  for (int i = 0; i < N; i++) {
    nmse_num += ((double) dev[i] - ref[i]) * ((double) dev[i] - ref[i]);
    nmse_den += (double) ref[i] * ref[i];
  }
  g_assert_cmpfloat (nmse_num / nmse_den, <, 1e-7);
  g_assert_cmpint (compare (&ctx_matmul, &o, dev, ref, &worst), ==, TS_ERR_DEVICE);

  /* a near-zero element of a cancelling sum: judged on the tensor's scale */
  memcpy (dev, ref, sizeof dev);
  ref[3] = 1e-9f;
  dev[3] = 1e-7f;
  g_assert_cmpint (compare (&ctx_matmul, &o, dev, ref, NULL), ==, TS_OK);

  /* NaN and Inf must agree */
  memcpy (dev, ref, sizeof dev);
  dev[10] = NAN;
  g_assert_cmpint (compare (&ctx_matmul, &o, dev, ref, NULL), ==, TS_ERR_DEVICE);
  ref[10] = NAN;
  g_assert_cmpint (compare (&ctx_matmul, &o, dev, ref, NULL), ==, TS_OK);
  ref[10] = dev[10] = INFINITY;
  g_assert_cmpint (compare (&ctx_matmul, &o, dev, ref, NULL), ==, TS_OK);
  dev[10] = -INFINITY;
  g_assert_cmpint (compare (&ctx_matmul, &o, dev, ref, NULL), ==, TS_ERR_DEVICE);
  ref[10] = dev[10] = 0.5f;

  /* ops that move data: bit for bit, -0 against +0 included */
  g_assert_cmpint (compare (&ctx_copy, &o, dev, ref, NULL), ==, TS_OK);
  ref[20] = 0.0f;
  dev[20] = -0.0f;
  g_assert_cmpint (compare (&ctx_copy, &o, dev, ref, NULL), ==, TS_ERR_DEVICE);
  dev[20] = nextafterf (0.0f, 1.0f);
  g_assert_cmpint (compare (&ctx_copy, &o, dev, ref, NULL), ==, TS_ERR_DEVICE);
}

static void
test_compare_gaps (void)
{
  /* 3 rows of 4 written elements, 6 apart: elements 4, 5, 10, 11 are not the op's */
  float ref[16], dev[16];
  ts_check_operand o = matrix (3, 4, 6);
  ts_check_result res;
  ts_error err = { 0 };

  g_assert_cmpint (ts_check_operand_span (&o), ==, 16);
  for (int i = 0; i < 16; i++)
    ref[i] = dev[i] = (float) i;
  g_assert_cmpint (compare (&ctx_matmul, &o, dev, ref, NULL), ==, TS_OK);
  dev[11] = 99.0f;
  g_assert_cmpint (ts_check_compare_f32 (&ctx_matmul, &o, dev, ref, &res, &err), ==,
                   TS_ERR_DEVICE);
  g_assert_nonnull (strstr (err.message, "wrote outside its output"));
  g_assert_nonnull (strstr (err.message, "element 11"));
}

/* ---- sample ---- */

typedef struct {
  ts_sample_args a;
  float logits[2];
  int32_t sample[1];
  int32_t ref_codes[1], dev_codes[1];
  float ref_conf[1], dev_conf[1];
  ts_buffer fake; /* stands for "recorded draws present" */
} sample_case;

/* One masked token over two codes with p(code 0) = p0; the draw of token 0 is u. */
static void
sample_init (sample_case *c, double p0, double *u)
{
  memset (c, 0, sizeof *c);
  c->a = (ts_sample_args) { .n_rows = 1, .mask_token_id = 2, .codebook_size = 2, .n_tokens = 1,
                            .seed = 1234, .image_index = 0, .step_index = 5 };
  c->logits[0] = (float) log (p0 / (1.0 - p0));
  c->logits[1] = 0.0f;
  c->sample[0] = 2;
  *u = ts_rng_uniform (c->a.seed, c->a.image_index, c->a.step_index, TS_RNG_PURPOSE_MULTINOMIAL,
                       0);
}

static ts_status
sample_compare (sample_case *c, ts_check_result *res)
{
  const ts_check_context ctx = { TS_CHECK_SAMPLE, "sample", 0, "sampler", "shapes" };
  ts_error err = { 0 };
  ts_status st = ts_check_compare_sample (&ctx, &c->a, c->logits, c->sample, c->dev_codes,
                                          c->ref_codes, c->dev_conf, c->ref_conf, res, &err);
  if (st != TS_OK)
    g_test_message ("%s", err.message);
  return st;
}

static void
test_compare_sample (void)
{
  sample_case c;
  ts_check_result res;
  double u;

  /* the CDF step sits on the draw: either code is a valid draw */
  sample_init (&c, 0.5, &u);
  sample_init (&c, u, &u);
  c.ref_codes[0] = 1;
  c.dev_codes[0] = 0;
  c.ref_conf[0] = (float) log (1.0 - u);
  c.dev_conf[0] = (float) log (u);
  g_assert_cmpint (sample_compare (&c, &res), ==, TS_OK);
  g_assert_cmpint (res.n_near_ties, ==, 1);
  /* ... but not with the confidence of the other code */
  c.dev_conf[0] = c.ref_conf[0] + 0.5f;
  g_assert_cmpint (sample_compare (&c, &res), ==, TS_ERR_DEVICE);
  /* ... nor with recorded draws, which are read as they are */
  c.dev_conf[0] = (float) log (u);
  c.a.draw_codes = ts_ref_at (&c.fake, 0);
  g_assert_cmpint (sample_compare (&c, &res), ==, TS_ERR_DEVICE);

  /* the draw is far from the step: the codes must agree */
  sample_init (&c, 0.5, &u);
  sample_init (&c, u < 0.5 ? u + 0.3 : u - 0.3, &u);
  c.ref_codes[0] = u < 0.5 ? 0 : 1;
  c.dev_codes[0] = 1 - c.ref_codes[0];
  c.ref_conf[0] = c.dev_conf[0] = -0.5f;
  g_assert_cmpint (sample_compare (&c, &res), ==, TS_ERR_DEVICE);
  c.dev_codes[0] = c.ref_codes[0];
  g_assert_cmpint (sample_compare (&c, &res), ==, TS_OK);
  g_assert_cmpint (res.n_near_ties, ==, 0);
  /* confidences: 2e-5 + 2e-6 |ref| */
  c.dev_conf[0] = -0.5f + 1e-5f;
  g_assert_cmpint (sample_compare (&c, &res), ==, TS_OK);
  c.dev_conf[0] = -0.5f + 1e-4f;
  g_assert_cmpint (sample_compare (&c, &res), ==, TS_ERR_DEVICE);
  c.dev_codes[0] = -1; /* the GPU's "could not sample" */
  c.dev_conf[0] = c.ref_conf[0];
  g_assert_cmpint (sample_compare (&c, &res), ==, TS_ERR_DEVICE);

  /* a known token keeps its id and FLT_MAX confidence, exactly */
  c.sample[0] = 1;
  c.ref_codes[0] = c.dev_codes[0] = 1;
  c.ref_conf[0] = c.dev_conf[0] = FLT_MAX;
  g_assert_cmpint (sample_compare (&c, &res), ==, TS_OK);
  c.dev_conf[0] = 1e30f;
  g_assert_cmpint (sample_compare (&c, &res), ==, TS_ERR_DEVICE);
  c.dev_conf[0] = FLT_MAX;
  c.dev_codes[0] = 0;
  g_assert_cmpint (sample_compare (&c, &res), ==, TS_ERR_DEVICE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/check-backend/names", test_names);
  g_test_add_func ("/check-backend/ops-pass", test_ops_pass);
  g_test_add_func ("/check-backend/inject-fails", test_inject_fails);
  g_test_add_func ("/check-backend/compare-f32", test_compare_f32);
  g_test_add_func ("/check-backend/compare-gaps", test_compare_gaps);
  g_test_add_func ("/check-backend/compare-sample", test_compare_sample);
  return g_test_run ();
}
