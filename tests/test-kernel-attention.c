/* SPDX-License-Identifier: MIT
 *
 * test-kernel-attention — scaled dot-product attention (ts_op_attention) with the layouts
 * the stages use: q, k and v packed in one [batch, seq, 3 * width] buffer (CLIP), separate
 * tensors with gaps between rows and batches, the joint [text ; image] length 77 + 33,
 * causal masking, seq_q != seq_kv, and sequences longer than the fast path's query chunk.
 * Precision bf16: the reference against double sums of bf16-rounded operands (q, k, the
 * softmax weights and v), and oneDNN's path, where the CPU has bf16, against the reference.
 */
#include "kernel-common.h"

#include <math.h>
#include <string.h>

#define SENTINEL -777.0f

typedef struct {
  int64_t batch, heads, seq_q, seq_kv, d_head;
  gboolean causal, packed;
} attn_case;

typedef struct {
  int64_t width, ldq, ldk, ldv, ldo, bs_q, bs_k, bs_v, bs_o;
  size_t off_q, off_k, off_v; /* in floats, within `in` */
  size_t n_in, n_out;
  float *in;  /* every input tensor, laid out as described */
  float *out; /* initial output contents (sentinels) */
} attn_layout;

static void
attn_layout_init (attn_layout *l, const attn_case *c, guint64 stream)
{
  tk_rng rng;

  tk_rng_init (&rng, stream);
  l->width = c->heads * c->d_head;
  if (c->packed) { /* [batch, seq, q | k | v], as one QKV projection writes it */
    g_assert (c->seq_q == c->seq_kv);
    l->ldq = l->ldk = l->ldv = 3 * l->width;
    l->bs_q = l->bs_k = l->bs_v = c->seq_q * 3 * l->width;
    l->off_q = 0, l->off_k = l->width, l->off_v = 2 * l->width;
    l->n_in = c->batch * l->bs_q;
  } else { /* separate tensors with row and batch gaps */
    l->ldq = l->width + 3, l->ldk = l->width + 1, l->ldv = l->width + 5;
    l->bs_q = c->seq_q * l->ldq + 7;
    l->bs_k = c->seq_kv * l->ldk + 2;
    l->bs_v = c->seq_kv * l->ldv;
    l->off_q = 0;
    l->off_k = c->batch * l->bs_q;
    l->off_v = l->off_k + c->batch * l->bs_k;
    l->n_in = l->off_v + c->batch * l->bs_v;
  }
  l->ldo = l->width + 2;
  l->bs_o = c->seq_q * l->ldo + 1;
  l->n_out = c->batch * l->bs_o;
  l->in = g_new (float, l->n_in);
  l->out = g_new (float, l->n_out);
  tk_fill_normal (&rng, l->in, l->n_in, 0.0f, 1.0f);
  for (size_t i = 0; i < l->n_out; i++)
    l->out[i] = SENTINEL;
}

static void
attn_layout_clear (attn_layout *l)
{
  g_free (l->in);
  g_free (l->out);
}

static float *
attn_run (const ts_backend *be, const attn_case *c, const attn_layout *l)
{
  ts_error err = { 0 };
  ts_buffer *in = tk_buffer (be, l->in, l->n_in), *out = tk_buffer (be, l->out, l->n_out);
  ts_attention_args a = {
    .q = ts_ref_f32 (ts_ref_at (in, 0), l->off_q), .k = ts_ref_f32 (ts_ref_at (in, 0), l->off_k),
    .v = ts_ref_f32 (ts_ref_at (in, 0), l->off_v), .out = ts_ref_at (out, 0),
    .ldq = l->ldq, .ldk = l->ldk, .ldv = l->ldv, .ldo = l->ldo,
    .bs_q = l->bs_q, .bs_k = l->bs_k, .bs_v = l->bs_v, .bs_o = l->bs_o,
    .batch = c->batch, .heads = c->heads, .seq_q = c->seq_q, .seq_kv = c->seq_kv,
    .d_head = c->d_head, .scale = 1.0f / sqrtf ((float) c->d_head), .causal = c->causal,
  };
  float *res;

  if (ts_op_attention (be, &a, &err) != TS_OK)
    g_error ("%s: attention: %s", ts_backend_name (be), err.message);
  res = tk_download (be, out, 0, l->n_out);
  tk_buffer_free (be, in);
  tk_buffer_free (be, out);
  return res;
}

static float
bf16_round (float f)
{
  guint32 bits = (guint32) tk_f32_to_bf16 (f) << 16;
  float r;
  memcpy (&r, &bits, sizeof r);
  return r;
}

/* The expected output in double sums; bf16: of q, k, the softmax weights (each rounded
 * from its float value, as the op computes it) and v rounded to bf16. */
static void
attn_expected (const attn_case *c, const attn_layout *l, gboolean bf16, double *want)
{
  double scale = (double) (1.0f / sqrtf ((float) c->d_head)); /* the scale the op receives */
  double *p = g_new (double, c->seq_kv);

  for (size_t i = 0; i < l->n_out; i++)
    want[i] = SENTINEL;
  for (int64_t b = 0; b < c->batch; b++)
    for (int64_t h = 0; h < c->heads; h++)
      for (int64_t i = 0; i < c->seq_q; i++) {
        const float *q = l->in + l->off_q + b * l->bs_q + i * l->ldq + h * c->d_head;
        double max = -INFINITY, sum = 0.0;
        int64_t n_kv = c->causal ? MIN (i + 1, c->seq_kv) : c->seq_kv;
        for (int64_t j = 0; j < n_kv; j++) {
          const float *k = l->in + l->off_k + b * l->bs_k + j * l->ldk + h * c->d_head;
          double dot = 0.0;
          for (int64_t e = 0; e < c->d_head; e++)
            dot += bf16 ? (double) bf16_round (q[e]) * bf16_round (k[e]) : (double) q[e] * k[e];
          p[j] = dot * scale;
          max = fmax (max, p[j]);
        }
        for (int64_t j = 0; j < n_kv; j++)
          sum += (p[j] = exp (p[j] - max));
        for (int64_t e = 0; e < c->d_head; e++) {
          double o = 0.0;
          for (int64_t j = 0; j < n_kv; j++) {
            float v = l->in[l->off_v + b * l->bs_v + j * l->ldv + h * c->d_head + e];
            o += bf16 ? (double) bf16_round ((float) (p[j] / sum)) * bf16_round (v)
                      : p[j] / sum * v;
          }
          want[b * l->bs_o + i * l->ldo + h * c->d_head + e] = o;
        }
      }
  g_free (p);
}

static const attn_case cases[] = {
  { 2, 3, 77 + 33, 77 + 33, 16, FALSE, TRUE },  /* joint [text ; image], packed */
  { 2, 2, 77, 77, 16, TRUE, TRUE },             /* CLIP: causal */
  { 1, 3, 37, 110, 8, FALSE, FALSE },           /* seq_q != seq_kv, gaps everywhere */
  { 2, 1, 45, 29, 6, TRUE, FALSE },             /* causal with seq_q > seq_kv */
  { 1, 2, 1, 5, 4, FALSE, FALSE },
};

static void
test_reference_vs_double (void)
{
  tk_backends be;

  tk_backends_init (&be);
  for (guint ci = 0; ci < G_N_ELEMENTS (cases); ci++) {
    const attn_case *c = &cases[ci];
    attn_layout l;
    double *want;
    float *got;
    g_autofree char *what = g_strdup_printf ("attention ref case %u", ci);

    attn_layout_init (&l, c, 600 + ci);
    want = g_new (double, l.n_out);
    got = attn_run (&be.ref, c, &l);
    attn_expected (c, &l, FALSE, want);
    /* outputs are convex combinations of N(0,1) values; fp32 dot products over d_head and
     * an fp32 softmax give errors of a few 1e-7 */
    tk_check_close (what, got, want, l.n_out, 3e-6, 1e-5);
    g_free (want);
    g_free (got);
    attn_layout_clear (&l);
  }
  tk_backends_clear (&be);
}

/* got against ref by NMSE over the outputs only (the sentinels in the gaps would swamp the
 * norm), and the gaps untouched. */
static void
check_outputs (const char *what, const float *ref, const float *got, size_t n, double tol)
{
  float *r = g_new (float, n), *g = g_new (float, n);
  size_t m = 0;

  tk_check_finite (what, got, n);
  for (size_t i = 0; i < n; i++) {
    if (ref[i] == SENTINEL) {
      g_assert_cmpfloat (got[i], ==, SENTINEL);
      continue;
    }
    r[m] = ref[i];
    g[m++] = got[i];
  }
  tk_check_nmse (what, r, g, m, tol);
  g_free (r);
  g_free (g);
}

static void
test_fast_vs_reference (void)
{
  static const attn_case big[] = {
    { 2, 2, 300, 300, 64, FALSE, TRUE },  /* several query chunks, a partial one last */
    { 1, 2, 260, 260, 32, TRUE, FALSE }, /* causal, 260 queries: oneDNN in fp32 too */
    { 1, 1, 130, 257, 40, FALSE, FALSE },
  };
  tk_backends be;

  tk_backends_init (&be);
  for (guint ci = 0; ci < G_N_ELEMENTS (cases) + G_N_ELEMENTS (big); ci++) {
    const attn_case *c = ci < G_N_ELEMENTS (cases) ? &cases[ci] : &big[ci - G_N_ELEMENTS (cases)];
    attn_layout l;
    float *ref, *fast;
    g_autofree char *what = g_strdup_printf ("attention fast case %u", ci);

    attn_layout_init (&l, c, 700 + ci);
    ref = attn_run (&be.ref, c, &l);
    fast = attn_run (&be.fast, c, &l);
    check_outputs (what, ref, fast, l.n_out, 1e-9);
    g_free (ref);
    g_free (fast);
    attn_layout_clear (&l);
  }
  tk_backends_clear (&be);
}

/* Precision bf16 on the reference path, against double sums of the rounded operands; and
 * the mode took effect: the result moves from fp32's by bf16 rounding's size. */
static void
test_bf16_reference (void)
{
  ts_backend ref, ref32;

  tk_cpu_backend_new (&ref, TRUE, TS_PRECISION_BF16);
  tk_cpu_backend_new (&ref32, TRUE, TS_PRECISION_FP32);
  for (guint ci = 0; ci < G_N_ELEMENTS (cases); ci++) {
    const attn_case *c = &cases[ci];
    attn_layout l;
    double *want, num = 0.0, den = 0.0;
    float *got, *fp32;
    g_autofree char *what = g_strdup_printf ("attention bf16 ref case %u", ci);

    attn_layout_init (&l, c, 800 + ci);
    want = g_new (double, l.n_out);
    got = attn_run (&ref, c, &l);
    fp32 = attn_run (&ref32, c, &l);
    attn_expected (c, &l, TRUE, want);
    /* the f32 sums, and the f32 softmax before each weight's rounding: a weight near a
     * rounding boundary may round the other way, moving its term by up to 2^-8 (the
     * difference from fp32 is about 10x larger, checked below) */
    tk_check_close (what, got, want, l.n_out, 2e-4, 1e-4);
    for (size_t i = 0; i < l.n_out; i++)
      if (fp32[i] != SENTINEL) {
        num += ((double) got[i] - fp32[i]) * ((double) got[i] - fp32[i]);
        den += (double) fp32[i] * fp32[i];
      }
    if (!(num / den > 1e-9 && num / den < 1e-3))
      g_error ("%s: NMSE %g against fp32, expected bf16 rounding's 1e-9..1e-3", what, num / den);
    g_free (want);
    g_free (got);
    g_free (fp32);
    attn_layout_clear (&l);
  }
  ts_backend_free (&ref);
  ts_backend_free (&ref32);
}

/* Precision bf16 on the fast path (oneDNN), where the CPU has bf16, against the reference:
 * the same rounded operands, summed in another order (and the softmax's exp approximated,
 * which can move a weight across a bf16 rounding boundary). */
static void
test_bf16_fast (void)
{
  static const attn_case big[] = {
    { 2, 2, 300, 300, 64, FALSE, TRUE },
    { 1, 2, 260, 260, 32, TRUE, FALSE }, /* causal, 260 queries: oneDNN in fp32 too */
    { 1, 1, 130, 257, 40, FALSE, FALSE },
  };
  ts_backend fast, ref;

  if (ts_cpu_bf16_support () == TS_BF16_NONE) {
    g_test_skip ("this CPU has no AVX-512: oneDNN offers no bf16 (/kernels/matmul/bf16-fast "
                 "checks the refusal)");
    return;
  }
  tk_cpu_backend_new (&fast, FALSE, TS_PRECISION_BF16);
  tk_cpu_backend_new (&ref, TRUE, TS_PRECISION_BF16);
  for (guint ci = 0; ci < G_N_ELEMENTS (cases) + G_N_ELEMENTS (big); ci++) {
    const attn_case *c = ci < G_N_ELEMENTS (cases) ? &cases[ci] : &big[ci - G_N_ELEMENTS (cases)];
    attn_layout l;
    float *r, *f;
    g_autofree char *what = g_strdup_printf ("attention bf16 fast case %u", ci);

    attn_layout_init (&l, c, 900 + ci);
    r = attn_run (&ref, c, &l);
    f = attn_run (&fast, c, &l);
    check_outputs (what, r, f, l.n_out, 1e-7);
    g_free (r);
    g_free (f);
    attn_layout_clear (&l);
  }
  ts_backend_free (&fast);
  ts_backend_free (&ref);
}

static void
check_invalid (const ts_backend *be)
{
  ts_error err = { 0 };
  ts_buffer *qkv = tk_buffer (be, NULL, 2 * 5 * 24), *out = tk_buffer (be, NULL, 2 * 5 * 8);
  ts_attention_args ok = {
    .q = ts_ref_at (qkv, 0), .k = ts_ref_f32 (ts_ref_at (qkv, 0), 8),
    .v = ts_ref_f32 (ts_ref_at (qkv, 0), 16), .out = ts_ref_at (out, 0),
    .ldq = 24, .ldk = 24, .ldv = 24, .ldo = 8, .bs_q = 120, .bs_k = 120, .bs_v = 120,
    .bs_o = 40, .batch = 2, .heads = 2, .seq_q = 5, .seq_kv = 5, .d_head = 4, .scale = 0.5f,
  };
  ts_attention_args a;

  tk_check_status ("valid", ts_op_attention (be, &ok, &err), TS_OK, &err);
  a = ok, a.seq_kv = 6;
  tk_check_status ("k beyond buffer", ts_op_attention (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.bs_o = 41;
  tk_check_status ("out batch stride", ts_op_attention (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.ldo = 7;
  tk_check_status ("ldo < width", ts_op_attention (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.seq_kv = 0;
  tk_check_status ("empty kv", ts_op_attention (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.v.buf = NULL;
  tk_check_status ("absent v", ts_op_attention (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  a = ok, a.d_head = -4;
  tk_check_status ("negative d_head", ts_op_attention (be, &a, &err), TS_ERR_INVALID_ARG, &err);
  tk_buffer_free (be, qkv);
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
  g_test_add_func ("/kernels/attention/reference-vs-double", test_reference_vs_double);
  g_test_add_func ("/kernels/attention/fast-vs-reference", test_fast_vs_reference);
  g_test_add_func ("/kernels/attention/bf16-reference", test_bf16_reference);
  g_test_add_func ("/kernels/attention/bf16-fast", test_bf16_fast);
  g_test_add_func ("/kernels/attention/invalid", test_invalid);
  return g_test_run ();
}
