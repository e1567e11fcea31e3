/* SPDX-License-Identifier: MIT
 *
 * ts-check-compare — how the check backend (ts-check.h) decides whether an op's output on
 * the device under test matches the CPU reference: the per-op tolerance table and the
 * comparisons. docs/check-backend.md carries the same table for readers.
 *
 * The rule. For every element the op writes, with r the reference's value and d the
 * device's:
 *
 *   relative error e = |d - r| / (|r| + s),   s = RMS of the reference output
 *
 * and the op passes when e <= tolerance everywhere. Near the typical magnitude of the
 * output this is a relative error; for elements far smaller than the typical magnitude
 * (a sum that cancels, a near-zero activation) it becomes an absolute error scaled to the
 * tensor, which is what summation-order differences produce: an f32 dot product of k terms
 * is off by about sqrt(k) ulp of the terms' magnitude, not of the (possibly tiny) result.
 * Unlike an NMSE it catches a single wrong element, and unlike a plain relative error it
 * does not fail on cancellation. NaN or Inf where the other side has a different value is
 * always a failure. Ops that only move data must match bit for bit (tolerance 0).
 *
 * The tolerances are set from what legitimately differs between a correct GPU kernel and
 * cpu-ref (summation order, fused multiply-add contraction, the device's exp/log/tanh/erf,
 * which Vulkan lets be a few ulp off, more for large arguments) with a margin of 10-100x
 * over the worst seen on lavapipe and the fast CPU path over the golden set and the demo
 * model (docs/check-backend.md lists them), while a real bug (a wrong index, a missing
 * bias, an f16 accumulator, a stale buffer) gives errors of 1e-3 to 1. The kernel tests
 * (tests/test-kernel-*.c) hold the same kernels to an NMSE of 1e-7 on random data; the
 * check here runs on the model's own activations, whose outliers make a per-element bound
 * the stricter test.
 */
#include "backend/check/ts-check.h"
#include "core/ts-rng.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const ts_check_rule ts_check_rules[TS_CHECK_N_KINDS] = {
  /* f32 accumulation over k <= a few thousand products in another order (tiles, split-k):
   * about sqrt(k) ulp, 1e-6 at k = 4096. */
  [TS_CHECK_MATMUL] = { "matmul", 1e-4 },
  /* fp32 statistics over a row (the reference sums in double), then the affine and AdaLN
   * modulation: a few ulp, more where (1 + scale) amplifies. */
  [TS_CHECK_NORM] = { "norm", 1e-4 },
  /* exp on the device: Vulkan allows 3 + 2|x| ulp, so large negative logits lose
   * relative accuracy; the row sum is reordered. */
  [TS_CHECK_SOFTMAX] = { "softmax", 1e-4 },
  /* two reordered reductions (q.k over d_head, p.v over the keys) and the device's exp in
   * an online softmax. */
  [TS_CHECK_ATTENTION] = { "attention", 1e-4 },
  /* x cos - y sin: one or two roundings, which a device may contract into an fma. */
  [TS_CHECK_ROPE] = { "rope", 1e-5 },
  /* the device's exp, tanh and erf (SiLU, GELU). */
  [TS_CHECK_ACT] = { "act", 1e-4 },
  /* add, mul, gated add, CFG, bias add: one or two roundings, fma contraction. */
  [TS_CHECK_ELEMENTWISE] = { "elementwise", 1e-5 },
  /* moves data: bit for bit. */
  [TS_CHECK_COPY] = { "elementwise copy", 0.0 },
  [TS_CHECK_TRANSPOSE] = { "transpose", 0.0 },
  /* f32 accumulation over c_in * kh * kw products (4608 for the VQ decoder's 3x3 convs
   * at 512 channels), as matmul. */
  [TS_CHECK_CONV2D] = { "conv2d", 1e-4 },
  [TS_CHECK_CONV_TRANSPOSE2D] = { "conv_transpose2d", 1e-4 },
  /* statistics over up to channels/groups * h * w elements (millions in the VQ decoder)
   * reduced in another order, merged across row bands, then the affine and SiLU. */
  [TS_CHECK_GROUP_NORM] = { "group_norm", 1e-4 },
  [TS_CHECK_UPSAMPLE] = { "upsample", 0.0 },
  /* a gather of stored weights widened to f32: exact. */
  [TS_CHECK_EMBED] = { "embed", 0.0 },
  /* the confidence, log p + temperature * Gumbel noise: the log p part as
   * tests/test-kernel-sample.c, |d - r| <= 2e-5 + 2e-6 |r|, which is e <= 2e-6 with the
   * fixed scale s = 10 (log-probabilities lie in about [-10, 0]); the noise part per
   * draw (sample_noise_scale); codes exact but for near-ties (ts_check_compare_sample). */
  [TS_CHECK_SAMPLE] = { "sample", 2e-6 },
};

/* The sampler's confidence is compared on a fixed scale (see the table). */
#define SAMPLE_CONF_SCALE 10.0
/* A drawn code may differ where the uniform lies within this much probability mass of a
 * step of the double CDF, as in tests/test-kernel-sample.c. */
#define SAMPLE_TIE_SLACK 1e-5

int64_t
ts_check_operand_span (const ts_check_operand *o)
{
  int64_t last = 0;

  for (int i = 0; i < o->n_dims; i++) {
    if (o->dims[i] <= 0)
      return 0;
    last += (o->dims[i] - 1) * o->strides[i];
  }
  return last + 1;
}

/* The offset of the idx-th written element (row-major over dims) and its coordinates. */
static int64_t
operand_offset (const ts_check_operand *o, int64_t idx, int64_t *coords)
{
  int64_t off = 0;

  for (int i = o->n_dims - 1; i >= 0; i--) {
    int64_t c = idx % o->dims[i];
    idx /= o->dims[i];
    if (coords)
      coords[i] = c;
    off += c * o->strides[i];
  }
  return off;
}

static int64_t
operand_count (const ts_check_operand *o)
{
  int64_t n = 1;

  for (int i = 0; i < o->n_dims; i++)
    n *= o->dims[i];
  return n;
}

/* "y[3, 17]" */
static void
format_element (const ts_check_operand *o, int64_t idx, char *buf, size_t size)
{
  int64_t coords[4] = { 0 };
  size_t len;

  operand_offset (o, idx, coords);
  len = (size_t) snprintf (buf, size, "%s[", o->name);
  for (int i = 0; i < o->n_dims && len < size; i++)
    len += (size_t) snprintf (buf + len, size - len, "%s%" PRId64, i ? ", " : "", coords[i]);
  if (len < size)
    snprintf (buf + len, size - len, "]");
}

static bool
same_bits (float a, float b)
{
  return memcmp (&a, &b, sizeof a) == 0;
}

static ts_status
fail_prefix (const ts_check_context *ctx, ts_error *err, const char *fmt, ...) TS_PRINTF (3, 4);

/* "check: matmul in transformer dual block 0 (m=... , call 12) " + the rest. */
static ts_status
fail_prefix (const ts_check_context *ctx, ts_error *err, const char *fmt, ...)
{
  char detail[1024];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (detail, sizeof detail, fmt, ap);
  va_end (ap);
  return ts_error_set (err, TS_ERR_DEVICE, "check: %s in %s (%s; %s call %" PRId64 ") %s",
                       ctx->op, ctx->where, ctx->shapes, ctx->op, ctx->call, detail);
}

/* The bytes between the written elements must not have changed. Writes are dense along
 * the last dimension, so a gap is whatever lies between the end of one innermost run and
 * the start of the next. Outputs whose runs do not ascend (a batch stride smaller than a
 * batch entry's rows) have no such gaps to check. */
static ts_status
compare_gaps (const ts_check_context *ctx, const ts_check_operand *o, const float *dev,
              const float *ref, ts_error *err)
{
  const int64_t n = operand_count (o), run = o->dims[o->n_dims - 1];
  int64_t end = 0;

  for (int64_t idx = 0; idx < n; idx += run) {
    const int64_t start = operand_offset (o, idx, NULL);
    if (start < end)
      return TS_OK;
    end = start + run;
  }
  end = 0;
  for (int64_t idx = 0; idx < n; idx += run) {
    const int64_t start = operand_offset (o, idx, NULL);
    for (int64_t i = end; i < start; i++)
      if (!same_bits (dev[i], ref[i]))
        return fail_prefix (ctx, err, "wrote outside its output: element %" PRId64 " of the "
                            "span of %s, between written rows, changed from %.9g to %.9g", i,
                            o->name, (double) ref[i], (double) dev[i]);
    end = start + run;
  }
  return TS_OK;
}

ts_status
ts_check_compare_f32 (const ts_check_context *ctx, const ts_check_operand *o, const float *dev,
                      const float *ref, ts_check_result *res, ts_error *err)
{
  const double tol = ts_check_rules[ctx->kind].tolerance;
  const int64_t n = operand_count (o);
  double sum_sq = 0.0, scale, worst = 0.0;
  int64_t n_finite = 0, n_over = 0, n_diff = 0, worst_idx = -1, first_diff = -1;
  char elem[96];

  res->worst = 0.0;
  if (n == 0)
    return TS_OK;

  /* Pass 1: the RMS of the reference, the scale that relative errors are measured on. */
  for (int64_t idx = 0; idx < n; idx++) {
    const double r = ref[operand_offset (o, idx, NULL)];
    if (isfinite (r)) {
      sum_sq += r * r;
      n_finite++;
    }
  }
  scale = n_finite ? sqrt (sum_sq / (double) n_finite) : 0.0;

  /* Pass 2: every written element. */
  for (int64_t idx = 0; idx < n; idx++) {
    const int64_t off = operand_offset (o, idx, NULL);
    const float r = ref[off], d = dev[off];
    double e;

    if (same_bits (r, d) || (isnan (r) && isnan (d)))
      continue;
    if (!isfinite (r) || !isfinite (d)) {
      format_element (o, idx, elem, sizeof elem);
      return fail_prefix (ctx, err, "gave a non-finite value where the reference did not "
                          "(or the other way round): %s: reference %.9g, device %.9g",
                          elem, (double) r, (double) d);
    }
    e = fabs ((double) d - (double) r) / (fabs ((double) r) + scale);
    if (first_diff < 0)
      first_diff = idx; /* -0 against +0 fails an exact op too */
    n_diff++;
    if (e > tol)
      n_over++;
    if (e > worst || worst_idx < 0) {
      worst = e;
      worst_idx = idx;
    }
  }
  res->worst = worst;
  if (tol == 0.0 && first_diff >= 0) {
    const int64_t off = operand_offset (o, first_diff, NULL);
    format_element (o, first_diff, elem, sizeof elem);
    return fail_prefix (ctx, err, "differs from the reference, which it must match bit for "
                        "bit: %s: reference %.9g, device %.9g (%" PRId64 " of %" PRId64
                        " elements differ)", elem, (double) ref[off], (double) dev[off],
                        n_diff, n);
  }
  if (worst > tol) {
    const int64_t off = operand_offset (o, worst_idx, NULL);
    format_element (o, worst_idx, elem, sizeof elem);
    return fail_prefix (ctx, err, "out of tolerance: max error at %s: reference %.9g, device "
                        "%.9g, abs err %.3g, relative error %.3g > tolerance %.0e (relative "
                        "= abs err / (|reference| + RMS %.3g of the reference)); %" PRId64
                        " of %" PRId64 " elements out of tolerance",
                        elem, (double) ref[off], (double) dev[off],
                        fabs ((double) dev[off] - (double) ref[off]), worst, tol, scale, n_over,
                        n);
  }
  return compare_gaps (ctx, o, dev, ref, err);
}

/* ---- sample ---- */

/* What the device's Gumbel noise adds to token t's scale. The noise is
 * -log (-log u) of the Philox uniform u, and Vulkan lets log be off by 2^-21 absolute on
 * [0.5, 2] (3 ulp elsewhere): for u near 1, g = -log u is tiny and the noise is off by
 * about 2^-21 / g, times the temperature. The term below allows 2e-6 (the tolerance)
 * times temperature * (1 + 1/g + |noise|), four times that bound. Recorded noise is read,
 * not computed, and adds nothing. */
static double
sample_noise_scale (const ts_sample_args *a, int64_t t)
{
  double u, g;

  if (!a->noise || a->draw_codes.buf)
    return 0.0;
  u = ts_rng_uniform (a->seed, a->image_index, a->step_index, TS_RNG_PURPOSE_GUMBEL,
                      (uint32_t) t);
  g = fmax (-log (fmax (u, 1e-20)), 1e-20);
  return fabs ((double) a->temperature) * (1.0 + 1.0 / g + fabs (log (g)));
}

/* The logit the op samples from for (code, token), the fp32 guidance arithmetic first, as
 * ts_sampler_sample_tokens computes it. */
static double
sample_logit (const ts_sample_args *a, const float *logits, int64_t code, int64_t t)
{
  const size_t i = (size_t) (code * a->n_tokens + t);
  float u = logits[i];

  if (a->n_rows == 2) {
    const float diff = logits[i + (size_t) (a->codebook_size * a->n_tokens)] - u;
    const float scaled = a->guidance_scale * diff;
    u = u + scaled;
  }
  return u;
}

/* Token t's probabilities in double, into p[codebook_size]. */
static void
sample_probs (const ts_sample_args *a, const float *logits, int64_t t, double *p)
{
  double max = -INFINITY, sum = 0.0;

  for (int64_t k = 0; k < a->codebook_size; k++)
    max = fmax (max, sample_logit (a, logits, k, t));
  for (int64_t k = 0; k < a->codebook_size; k++)
    sum += p[k] = exp (sample_logit (a, logits, k, t) - max);
  for (int64_t k = 0; k < a->codebook_size; k++)
    p[k] /= sum;
}

/* Whether `code` is an inverse-CDF draw for uniform u in the double CDF within the slack. */
static bool
valid_draw (const double *p, int64_t code, double u, double slack)
{
  double below = 0.0;

  for (int64_t k = 0; k < code; k++)
    below += p[k];
  return below <= u + slack && u - slack < below + p[code];
}

ts_status
ts_check_compare_sample (const ts_check_context *ctx, const ts_sample_args *a,
                         const float *logits, const int32_t *sample, const int32_t *dev_codes,
                         const int32_t *ref_codes, const float *dev_conf,
                         const float *ref_conf, ts_check_result *res, ts_error *err)
{
  const double tol = ts_check_rules[TS_CHECK_SAMPLE].tolerance;
  double *p = NULL;
  ts_status st = TS_OK;

  res->worst = 0.0;
  res->n_near_ties = 0;
  for (int64_t t = 0; t < a->n_tokens; t++) {
    const int32_t rc = ref_codes[t], dc = dev_codes[t];
    const bool drawn = sample[t] == a->mask_token_id;
    double want = ref_conf[t], e, scale = 0.0;

    if (dc != rc) {
      double u;
      /* Only a code drawn from the RNG stream can land on the other side of a CDF step;
       * a known token keeps its id and a recorded draw is read as it is. */
      if (!drawn || a->draw_codes.buf || dc < 0 || dc >= a->codebook_size) {
        st = fail_prefix (ctx, err, "out of tolerance: codes[%" PRId64 "]: reference %d, "
                          "device %d (%s: codes must match exactly)", t, (int) rc, (int) dc,
                          !drawn ? "a known token" : a->draw_codes.buf ? "a recorded draw"
                                                                       : "not a code");
        goto out;
      }
      if (!p && !(p = malloc ((size_t) a->codebook_size * sizeof *p))) {
        st = ts_error_set (err, TS_ERR_NOMEM, "check: sample: out of memory");
        goto out;
      }
      sample_probs (a, logits, t, p);
      u = ts_rng_uniform (a->seed, a->image_index, a->step_index, TS_RNG_PURPOSE_MULTINOMIAL,
                          (uint32_t) t);
      if (!valid_draw (p, dc, u, SAMPLE_TIE_SLACK)) {
        st = fail_prefix (ctx, err, "out of tolerance: codes[%" PRId64 "]: reference %d, "
                          "device %d, and the device's code is no inverse-CDF draw for the "
                          "uniform %.9g within %.0e of the mass (p = %.3g, reference's p = "
                          "%.3g)", t, (int) rc, (int) dc, u, SAMPLE_TIE_SLACK, p[dc], p[rc]);
        goto out;
      }
      /* A near-tie: the confidence belongs to the device's code; the noise term is the
       * same for both. */
      res->n_near_ties++;
      want += log (fmax (p[dc], 1e-20)) - log (fmax (p[rc], 1e-20));
    }
    if (want == FLT_MAX || dev_conf[t] == FLT_MAX || !isfinite (want)
        || !isfinite (dev_conf[t])) {
      /* known tokens carry FLT_MAX; NaN and Inf must agree */
      if (dev_conf[t] == (float) want || (isnan (dev_conf[t]) && isnan (want)))
        continue;
      st = fail_prefix (ctx, err, "out of tolerance: confidence[%" PRId64 "] (code %d): "
                        "reference %.9g, device %.9g (FLT_MAX, at known tokens, NaN and Inf "
                        "must match exactly)", t, (int) dc, want, (double) dev_conf[t]);
      goto out;
    } else {
      scale = SAMPLE_CONF_SCALE + sample_noise_scale (a, t);
      e = fabs ((double) dev_conf[t] - want) / (fabs (want) + scale);
    }
    if (e > res->worst)
      res->worst = e;
    if (e > tol) {
      st = fail_prefix (ctx, err, "out of tolerance: confidence[%" PRId64 "] (code %d): "
                        "reference %.9g, device %.9g, relative error %.3g > tolerance %.0e "
                        "(relative = abs err / (|reference| + %.3g, the scale of log p and "
                        "the noise))", t, (int) dc, want, (double) dev_conf[t], e, tol, scale);
      goto out;
    }
  }

out:
  free (p);
  return st;
}
