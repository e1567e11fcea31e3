/* SPDX-License-Identifier: MIT
 *
 * test-kernel-sample — the per-token part of the sampler step (ts_op_sample): the
 * reference against double-precision math (every drawn code is where the Philox uniform
 * falls in the double CDF, every confidence is log p + temperature * Gumbel), then the
 * backend under test against the reference on fixed logits, with and without guidance,
 * on the RNG stream and on recorded draws, the last step without noise; non-finite logits
 * and bad arguments.
 *
 * Tolerances. The reference sums in torch's order with libm's expf/logf; the Vulkan
 * kernel sums per code lane and uses the device's exp/log, so probabilities differ in the
 * last bits. Confidences must agree within 2e-5 + 2e-6 |c| (they are log p, about -10 to
 * 0, plus up to about 2 x 17 of noise: a few ulp of each term). A code may differ only
 * where the uniform lies within rounding (1e-5 of the total mass) of a step of the double
 * CDF, i.e. the backend's code must itself be a valid inverse-CDF draw in double; with
 * the fixed seed none does on lavapipe (the count is printed), and at most 1 % may.
 */
#include "kernel-common.h"
#include "core/ts-rng.h"
#include "stages/ts-sampler.h"

#include <float.h>
#include <math.h>

#define MASK_ID(C) ((int32_t) (C))

typedef struct {
  int64_t codebook, n_tokens;
  int n_rows;
  gboolean noise, recorded;
} sample_case;

typedef struct {
  float *logits;   /* [n_rows][C][n] */
  int32_t *sample; /* [n] */
  int32_t *draw_codes;
  float *draw_gumbel;
  float guidance, temperature;
  uint64_t seed;
  uint32_t image, step;
} sample_data;

static void
make_data (const sample_case *c, guint64 stream, sample_data *d)
{
  tk_rng rng;
  size_t n_logits = (size_t) (c->n_rows * c->codebook * c->n_tokens);

  tk_rng_init (&rng, stream);
  d->logits = g_new (float, n_logits);
  /* peaked enough that a few codes hold most of the mass, as a trained model's */
  tk_fill_normal (&rng, d->logits, n_logits, 0.0f, 3.0f);
  d->sample = g_new (int32_t, c->n_tokens);
  d->draw_codes = g_new (int32_t, c->n_tokens);
  d->draw_gumbel = g_new (float, c->n_tokens);
  for (int64_t t = 0; t < c->n_tokens; t++) {
    /* two thirds masked, the rest known codes */
    d->sample[t] = tk_uniform (&rng, 0, 1) < 0.67f
                       ? MASK_ID (c->codebook)
                       : (int32_t) (tk_uniform (&rng, 0, 1) * (float) c->codebook * 0.999f);
    d->draw_codes[t] = (int32_t) (tk_uniform (&rng, 0, 1) * (float) c->codebook * 0.999f);
    d->draw_gumbel[t] = ts_sampler_gumbel (tk_uniform (&rng, 0, 1));
  }
  d->guidance = c->n_rows == 2 ? 9.0f : 0.0f;
  d->temperature = 1.5f;
  d->seed = G_GUINT64_CONSTANT (0x123456789abcdef) + stream;
  d->image = 1;
  d->step = 3;
}

static void
data_free (sample_data *d)
{
  g_free (d->logits);
  g_free (d->sample);
  g_free (d->draw_codes);
  g_free (d->draw_gumbel);
}

static ts_buffer *
buffer_i32 (const ts_backend *be, const int32_t *data, int64_t n)
{
  return tk_buffer (be, (const float *) (const void *) data, (size_t) n);
}

/* Runs the op; codes and confidence come back in g_malloc'd arrays. */
static ts_status
sample_run (const ts_backend *be, const sample_case *c, const sample_data *d, int32_t **codes,
            float **conf, ts_error *err)
{
  int64_t n = c->n_tokens;
  ts_buffer *logits = tk_buffer (be, d->logits, (size_t) (c->n_rows * c->codebook * n));
  ts_buffer *grid = buffer_i32 (be, d->sample, n);
  ts_buffer *dc = buffer_i32 (be, d->draw_codes, n);
  ts_buffer *dg = tk_buffer (be, d->draw_gumbel, (size_t) n);
  ts_buffer *out = tk_buffer (be, NULL, (size_t) (2 * n));
  ts_sample_args a = {
    .logits = ts_ref_at (logits, 0), .n_rows = c->n_rows, .guidance_scale = d->guidance,
    .sample = ts_ref_at (grid, 0), .mask_token_id = MASK_ID (c->codebook),
    .codebook_size = c->codebook, .n_tokens = n, .temperature = d->temperature,
    .noise = c->noise, .seed = d->seed, .image_index = d->image, .step_index = d->step,
    .codes = ts_ref_at (out, 0), .confidence = ts_ref_f32 (ts_ref_at (out, 0), n),
  };
  ts_status st;

  if (c->recorded) {
    a.draw_codes = ts_ref_at (dc, 0);
    a.draw_gumbel = ts_ref_at (dg, 0);
  }
  st = ts_op_sample (be, &a, err);
  if (st == TS_OK) {
    *codes = (int32_t *) (void *) tk_download (be, out, 0, (size_t) n);
    *conf = tk_download (be, out, (size_t) n, (size_t) n);
  }
  tk_buffer_free (be, logits);
  tk_buffer_free (be, grid);
  tk_buffer_free (be, dc);
  tk_buffer_free (be, dg);
  tk_buffer_free (be, out);
  return st;
}

/* The logit the op samples from, in double (the fp32 guidance arithmetic first). */
static double
logit_at (const sample_case *c, const sample_data *d, int64_t code, int64_t t)
{
  size_t i = (size_t) (code * c->n_tokens + t);
  float u = d->logits[i];
  if (c->n_rows == 2) {
    float diff = d->logits[i + (size_t) (c->codebook * c->n_tokens)] - u;
    float scaled = d->guidance * diff;
    u = u + scaled;
  }
  return u;
}

/* The double CDF of token t: cdf[k] = sum of p over codes < k + 1 (cdf[C - 1] = 1). */
static void
token_cdf (const sample_case *c, const sample_data *d, int64_t t, double *cdf, double *p)
{
  double max = -INFINITY, sum = 0.0, run = 0.0;

  for (int64_t k = 0; k < c->codebook; k++)
    max = fmax (max, logit_at (c, d, k, t));
  for (int64_t k = 0; k < c->codebook; k++)
    sum += exp (logit_at (c, d, k, t) - max);
  for (int64_t k = 0; k < c->codebook; k++) {
    p[k] = exp (logit_at (c, d, k, t) - max) / sum;
    run += p[k];
    cdf[k] = run;
  }
}

/* Whether `code` is a valid inverse-CDF draw for uniform u within `slack`. */
static gboolean
valid_draw (const double *cdf, int64_t code, double u, double slack)
{
  double below = code > 0 ? cdf[code - 1] : 0.0;
  return below <= u + slack && u - slack < cdf[code];
}

static void
check_against_double (const sample_case *c, const sample_data *d, const int32_t *codes,
                      const float *conf, const char *what)
{
  double *cdf = g_new (double, c->codebook), *p = g_new (double, c->codebook);

  for (int64_t t = 0; t < c->n_tokens; t++) {
    gboolean unknown = d->sample[t] == MASK_ID (c->codebook);
    double want, g, u;

    if (!unknown) {
      g_assert_cmpint (codes[t], ==, d->sample[t]);
      want = log ((double) FLT_MAX);
    } else {
      g_assert_cmpint (codes[t], >=, 0);
      g_assert_cmpint (codes[t], <, c->codebook);
      token_cdf (c, d, t, cdf, p);
      if (c->recorded) {
        g_assert_cmpint (codes[t], ==, d->draw_codes[t]);
      } else {
        u = ts_rng_uniform (d->seed, d->image, d->step, TS_RNG_PURPOSE_MULTINOMIAL, (uint32_t) t);
        if (!valid_draw (cdf, codes[t], u, 1e-5))
          g_error ("%s: token %lld drew %d, outside the double CDF at u = %.9g (seed %"
                   G_GUINT64_FORMAT ")", what, (long long) t, codes[t], u, tk_seed ());
      }
      want = log (fmax (p[codes[t]], 1e-20));
    }
    if (c->noise) {
      u = ts_rng_uniform (d->seed, d->image, d->step, TS_RNG_PURPOSE_GUMBEL, (uint32_t) t);
      g = c->recorded ? d->draw_gumbel[t] : -log (fmax (-log (fmax (u, 1e-20)), 1e-20));
      want += d->temperature * g;
    }
    if (fabs (conf[t] - want) > 2e-5 + 2e-6 * fabs (want))
      g_error ("%s: confidence of token %lld is %.9g, want %.9g (seed %" G_GUINT64_FORMAT ")",
               what, (long long) t, conf[t], want, tk_seed ());
  }
  g_free (cdf);
  g_free (p);
}

static const sample_case cases[] = {
  { 8192, 300, 2, TRUE, FALSE },  /* the real codebook, guidance, a partial workgroup */
  { 8192, 64, 1, FALSE, FALSE },  /* the last step: no noise */
  { 97, 77, 2, TRUE, TRUE },      /* recorded draws */
  { 96, 256, 1, TRUE, FALSE },    /* the tiny model's sizes */
  { 5, 40, 1, TRUE, FALSE },      /* fewer codes than lanes */
  { 1, 33, 2, TRUE, FALSE },
};

static char *
case_name (const sample_case *c)
{
  return g_strdup_printf ("sample C=%lld n=%lld rows=%d%s%s", (long long) c->codebook,
                          (long long) c->n_tokens, c->n_rows, c->noise ? " noise" : "",
                          c->recorded ? " recorded" : "");
}

static void
test_reference_vs_double (void)
{
  tk_backends be;

  tk_backends_init (&be);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    sample_data d;
    int32_t *codes = NULL;
    float *conf = NULL;
    ts_error err = { 0 };
    g_autofree char *what = case_name (&cases[i]);

    make_data (&cases[i], 700 + i, &d);
    tk_check_status (what, sample_run (&be.ref, &cases[i], &d, &codes, &conf, &err), TS_OK, &err);
    check_against_double (&cases[i], &d, codes, conf, what);
    g_free (codes);
    g_free (conf);
    data_free (&d);
  }
  tk_backends_clear (&be);
}

static void
test_backend_vs_reference (void)
{
  tk_backends be;

  tk_backends_init (&be);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    const sample_case *c = &cases[i];
    sample_data d;
    int32_t *ref_codes = NULL, *codes = NULL;
    float *ref_conf = NULL, *conf = NULL;
    ts_error err = { 0 };
    g_autofree char *what = case_name (c);
    int64_t n_diff = 0;
    double max_err = 0.0;

    make_data (c, 700 + i, &d);
    tk_check_status (what, sample_run (&be.ref, c, &d, &ref_codes, &ref_conf, &err), TS_OK, &err);
    tk_check_status (what, sample_run (&be.fast, c, &d, &codes, &conf, &err), TS_OK, &err);
    /* Every code, matching or not, must be a valid draw and every confidence close to
     * the double value; then the two backends must agree token by token. */
    check_against_double (c, &d, codes, conf, what);
    for (int64_t t = 0; t < c->n_tokens; t++) {
      if (codes[t] != ref_codes[t]) {
        n_diff++;
        continue;
      }
      max_err = fmax (max_err, fabs ((double) conf[t] - ref_conf[t])
                                   / (1.0 + fabs ((double) ref_conf[t])));
    }
    g_test_message ("%s on %s: %lld of %lld codes differ from the reference, max confidence "
                    "error %.3g", what, ts_backend_name (&be.fast), (long long) n_diff,
                    (long long) c->n_tokens, max_err);
    if (!tk_testing_vulkan ()) {
      g_assert_cmpint (n_diff, ==, 0);
      tk_check_equal (what, conf, ref_conf, (size_t) c->n_tokens);
    }
    g_assert_cmpint (n_diff * 100, <=, c->n_tokens);
    g_assert_cmpfloat (max_err, <=, 2e-5);
    g_free (ref_codes);
    g_free (ref_conf);
    g_free (codes);
    g_free (conf);
    data_free (&d);
  }
  tk_backends_clear (&be);
}

/* Non-finite logits: the CPU fails, a GPU writes code -1, which the host's re-masking
 * turns into the same error. */
static void
test_not_finite (void)
{
  const sample_case c = { 50, 40, 1, TRUE, FALSE };
  tk_backends be;
  sample_data d;

  tk_backends_init (&be);
  make_data (&c, 790, &d);
  d.sample[7] = MASK_ID (c.codebook);
  d.logits[3 * c.n_tokens + 7] = NAN;
  for (int k = 0; k < 2; k++) {
    const ts_backend *b = k == 0 ? &be.ref : &be.fast;
    int32_t *codes = NULL;
    float *conf = NULL;
    ts_error err = { 0 };
    ts_status st = sample_run (b, &c, &d, &codes, &conf, &err);

    if (st == TS_OK) {
      ts_sampler_remask_args ra = {
        .codebook_size = (int) c.codebook, .n_tokens = (int) c.n_tokens, .n_unknown = 1,
        .mask_token_id = MASK_ID (c.codebook), .codes = codes, .confidence = conf,
        .step_index = 0, .n_steps = 4, .schedule = TS_MASKING_COSINE,
        .prev_sample = codes,
      };
      g_assert_cmpint (codes[7], ==, -1);
      st = ts_sampler_remask (&ra, NULL, &err);
    }
    tk_check_status ("non-finite logits", st, TS_ERR_INVALID_ARG, &err);
    g_free (codes);
    g_free (conf);
  }
  data_free (&d);
  tk_backends_clear (&be);
}

static void
check_invalid (const ts_backend *be)
{
  ts_error err = { 0 };
  ts_buffer *logits = tk_buffer (be, NULL, 2 * 10 * 4);
  ts_buffer *grid = tk_buffer (be, NULL, 4);
  ts_buffer *out = tk_buffer (be, NULL, 8);
  ts_sample_args a = {
    .logits = ts_ref_at (logits, 0), .n_rows = 2, .guidance_scale = 3.0f,
    .sample = ts_ref_at (grid, 0), .mask_token_id = 10, .codebook_size = 10, .n_tokens = 4,
    .temperature = 1.0f, .noise = true, .codes = ts_ref_at (out, 0),
    .confidence = ts_ref_f32 (ts_ref_at (out, 0), 4),
  };

  tk_check_status ("valid", ts_op_sample (be, &a, &err), TS_OK, &err);
  a.n_rows = 3;
  tk_check_status ("three rows", ts_op_sample (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a.n_rows = 2, a.n_tokens = 5;
  tk_check_status ("tokens beyond buffer", ts_op_sample (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a.n_tokens = 4, a.codebook_size = 0;
  tk_check_status ("empty codebook", ts_op_sample (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a.codebook_size = 10, a.draw_gumbel = ts_ref_at (grid, 0);
  tk_check_status ("noise without codes", ts_op_sample (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a.draw_gumbel.buf = NULL, a.codes.buf = NULL;
  tk_check_status ("absent codes", ts_op_sample (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  tk_buffer_free (be, logits);
  tk_buffer_free (be, grid);
  tk_buffer_free (be, out);
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
  g_test_add_func ("/kernels/sample/reference-vs-double", test_reference_vs_double);
  g_test_add_func ("/kernels/sample/backend-vs-reference", test_backend_vs_reference);
  g_test_add_func ("/kernels/sample/not-finite", test_not_finite);
  g_test_add_func ("/kernels/sample/invalid", test_invalid);
  return g_test_run ();
}
