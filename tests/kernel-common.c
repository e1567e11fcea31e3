/* SPDX-License-Identifier: MIT
 *
 * kernel-common — see kernel-common.h.
 */
#include "kernel-common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TK_DEFAULT_SEED G_GUINT64_CONSTANT (0x7e55e4a5eed0001)

guint64
tk_seed (void)
{
  static guint64 seed;
  static gboolean done;

  if (!done) {
    const char *env = g_getenv ("TESSERA_TEST_SEED");
    seed = env && *env ? g_ascii_strtoull (env, NULL, 0) : TK_DEFAULT_SEED;
    done = TRUE;
  }
  return seed;
}

/* splitmix64: small, good enough, and the same on every platform. */
static guint64
rng_next (tk_rng *rng)
{
  guint64 z = (rng->state += G_GUINT64_CONSTANT (0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  return z ^ (z >> 31);
}

void
tk_rng_init (tk_rng *rng, guint64 stream)
{
  rng->state = tk_seed () ^ (stream * G_GUINT64_CONSTANT (0xd1342543de82ef95));
  rng_next (rng);
}

float
tk_uniform (tk_rng *rng, float lo, float hi)
{
  double u = (double) (rng_next (rng) >> 11) * 0x1p-53;
  return (float) (lo + (hi - lo) * u);
}

float
tk_normal (tk_rng *rng)
{
  double u1 = ((double) (rng_next (rng) >> 11) + 0.5) * 0x1p-53;
  double u2 = (double) (rng_next (rng) >> 11) * 0x1p-53;
  return (float) (sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2));
}

void
tk_fill_uniform (tk_rng *rng, float *p, size_t n, float lo, float hi)
{
  for (size_t i = 0; i < n; i++)
    p[i] = tk_uniform (rng, lo, hi);
}

void
tk_fill_normal (tk_rng *rng, float *p, size_t n, float mean, float std)
{
  for (size_t i = 0; i < n; i++)
    p[i] = mean + std * tk_normal (rng);
}

void
tk_init (int *argc, char ***argv)
{
  g_test_init (argc, argv, NULL);
  g_unsetenv ("TS_CPU_REFERENCE");
  g_test_message ("seed %" G_GUINT64_FORMAT " (set TESSERA_TEST_SEED to change it)", tk_seed ());
}

gboolean
tk_testing_vulkan (void)
{
  return g_strcmp0 (g_getenv ("TESSERA_TEST_BACKEND"), "vulkan") == 0;
}

/* The Vulkan backend under test: the best GPU when there is one, else the first device,
 * CPU-type included (CI runs lavapipe). Exits 77 (skip) only when no device exists. */
static void
vulkan_new (ts_backend *be)
{
  ts_error err = { 0 };
  ts_vk_device_info info[8];
  int n = 0;
  ts_status st;

  if (ts_vulkan_list_devices (info, G_N_ELEMENTS (info), &n, &err) != TS_OK || n == 0) {
    g_printerr ("SKIP: no Vulkan device (%s)\n", err.message[0] ? err.message : "none listed");
    exit (77);
  }
  st = ts_backend_vulkan_new (be, -1, &err);
  if (st == TS_ERR_UNSUPPORTED)
    st = ts_backend_vulkan_new (be, 0, &err);
  if (st != TS_OK)
    g_error ("vulkan backend: %s", err.message);
}

void
tk_cpu_backend_new (ts_backend *be, gboolean reference, ts_precision precision)
{
  ts_error err = { 0 };
  ts_precision got;

  if (ts_backend_cpu_new (be, reference, 2, &err) != TS_OK)
    g_error ("cpu backend: %s", err.message);
  if (ts_backend_set_precision (be, precision, &got, &err) != TS_OK)
    g_error ("precision %s: %s", ts_precision_name (precision), err.message);
  g_assert_cmpint (got, ==, precision);
  g_assert_cmpint (ts_backend_precision (be), ==, precision);
}

void
tk_backends_init (tk_backends *b)
{
  ts_error err = { 0 };

  if (ts_backend_cpu_new (&b->ref, true, 1, &err) != TS_OK)
    g_error ("cpu-ref backend: %s", err.message);
  g_assert_cmpstr (ts_backend_name (&b->ref), ==, "cpu-ref");
  if (tk_testing_vulkan ()) {
    vulkan_new (&b->fast);
    g_assert_cmpstr (ts_backend_name (&b->fast), ==, "vulkan");
    return;
  }
  /* Two threads: the pool and the parallel split are exercised even on one core. */
  if (ts_backend_cpu_new (&b->fast, false, 2, &err) != TS_OK)
    g_error ("cpu backend: %s", err.message);
  g_assert_cmpstr (ts_backend_name (&b->fast), ==, "cpu");
}

void
tk_backends_clear (tk_backends *b)
{
  ts_backend_free (&b->ref);
  ts_backend_free (&b->fast);
}

ts_buffer *
tk_buffer (const ts_backend *be, const float *data, size_t n)
{
  ts_error err = { 0 };
  ts_buffer *buf = ts_buffer_new (be, n * sizeof (float), &err);

  if (!buf)
    g_error ("%s: buffer_new (%zu floats): %s", ts_backend_name (be), n, err.message);
  if (data && ts_buffer_upload (be, ts_ref_at (buf, 0), data, n * sizeof (float), &err))
    g_error ("%s: upload: %s", ts_backend_name (be), err.message);
  return buf;
}

float *
tk_download (const ts_backend *be, ts_buffer *buf, size_t at, size_t n)
{
  ts_error err = { 0 };
  float *out = g_new (float, n ? n : 1);

  if (ts_backend_sync (be, &err) != TS_OK
      || ts_buffer_download (be, ts_ref_at (buf, at * sizeof (float)), out,
                             n * sizeof (float), &err)
             != TS_OK)
    g_error ("%s: download: %s", ts_backend_name (be), err.message);
  return out;
}

void
tk_buffer_free (const ts_backend *be, ts_buffer *buf)
{
  ts_buffer_free (be, buf);
}

/* Round to nearest even, written from the definition (not shared with the engine). */
uint16_t
tk_f32_to_f16 (float f)
{
  guint32 bits, sign, mant;
  int expo;

  memcpy (&bits, &f, sizeof bits);
  sign = (bits >> 16) & 0x8000u;
  expo = (int) ((bits >> 23) & 0xff) - 127;
  mant = bits & 0x7fffffu;
  if (expo == 128) /* inf or NaN */
    return (uint16_t) (sign | 0x7c00u | (mant ? 0x200u : 0));
  if (expo > 15)
    return (uint16_t) (sign | 0x7c00u);
  if (expo >= -14) {
    guint32 h = ((guint32) (expo + 15) << 10) | (mant >> 13);
    guint32 rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
      h++; /* may carry into the exponent, which is correct (up to inf) */
    return (uint16_t) (sign | h);
  }
  if (expo >= -25) {
    /* subnormal: value = (1.mant) * 2^expo = m * 2^-24 with m possibly fractional */
    guint32 full = mant | 0x800000u;
    int shift = -expo - 14 + 13; /* bits to drop from the 24-bit significand */
    guint32 h = full >> shift;
    guint32 rest = full & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (h & 1u)))
      h++;
    return (uint16_t) (sign | h);
  }
  return (uint16_t) sign;
}

uint16_t
tk_f32_to_bf16 (float f)
{
  guint32 bits;

  memcpy (&bits, &f, sizeof bits);
  if (isnan (f))
    return (uint16_t) ((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return (uint16_t) (bits >> 16);
}

static float
f16_value (uint16_t h)
{
  int expo = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v;

  if (expo == 31)
    v = mant ? NAN : INFINITY;
  else if (expo == 0)
    v = ldexp (mant, -24);
  else
    v = ldexp (mant + 1024, expo - 25);
  return (float) ((h & 0x8000u) ? -v : v);
}

static float
bf16_value (uint16_t h)
{
  guint32 bits = (guint32) h << 16;
  float f;
  memcpy (&f, &bits, sizeof f);
  return f;
}

void
tk_round_to (ts_dtype dtype, float *values, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (dtype == TS_DTYPE_F16)
      values[i] = f16_value (tk_f32_to_f16 (values[i]));
    else if (dtype == TS_DTYPE_BF16)
      values[i] = bf16_value (tk_f32_to_bf16 (values[i]));
  }
}

void
tk_weight (const ts_backend *be, ts_weight *w, const char *name, ts_dtype dtype, float *values,
           int n_dims, const int64_t *shape)
{
  ts_error err = { 0 };
  size_t n = 1;
  void *host;

  for (int i = 0; i < n_dims; i++)
    n *= (size_t) shape[i];
  tk_round_to (dtype, values, n);
  if (dtype == TS_DTYPE_F32) {
    host = g_memdup2 (values, n * sizeof (float));
  } else {
    uint16_t *h = g_new (uint16_t, n ? n : 1);
    for (size_t i = 0; i < n; i++)
      h[i] = dtype == TS_DTYPE_F16 ? tk_f32_to_f16 (values[i]) : tk_f32_to_bf16 (values[i]);
    host = h;
  }
  if (ts_weight_upload (be, w, name, dtype, host, n_dims, shape, &err) != TS_OK)
    g_error ("%s: weight_upload '%s': %s", ts_backend_name (be), name, err.message);
  /* The backend must not keep pointers into the host data. */
  if (host)
    memset (host, 0xff, n * (dtype == TS_DTYPE_F32 ? 4 : 2));
  g_free (host);
}

double
tk_nmse (const float *ref, const float *got, size_t n)
{
  double num = 0.0, den = 0.0;

  for (size_t i = 0; i < n; i++) {
    if (!isfinite (ref[i]) || !isfinite (got[i]))
      continue;
    num += ((double) got[i] - ref[i]) * ((double) got[i] - ref[i]);
    den += (double) ref[i] * ref[i];
  }
  return den > 0.0 ? num / den : num;
}

static void
fail_with_seed (void)
{
  g_printerr ("(random inputs from seed %" G_GUINT64_FORMAT "; rerun with TESSERA_TEST_SEED=%"
              G_GUINT64_FORMAT ")\n",
              tk_seed (), tk_seed ());
}

void
tk_check_nmse (const char *what, const float *ref, const float *got, size_t n, double tol)
{
  double nmse;

  for (size_t i = 0; i < n; i++) {
    gboolean ref_nan = isnan (ref[i]), got_nan = isnan (got[i]);
    gboolean ref_inf = isinf (ref[i]), got_inf = isinf (got[i]);
    if (ref_nan != got_nan || ref_inf != got_inf || (ref_inf && ref[i] != got[i])) {
      g_printerr ("%s: element %zu: reference %g, got %g\n", what, i, ref[i], got[i]);
      fail_with_seed ();
      g_assert_not_reached ();
    }
  }
  nmse = tk_nmse (ref, got, n);
  if (!(nmse <= tol)) {
    g_printerr ("%s: NMSE %.3g > %.3g over %zu elements\n", what, nmse, tol, n);
    fail_with_seed ();
  }
  g_assert_cmpfloat (nmse, <=, tol);
}

void
tk_check_finite (const char *what, const float *p, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (!isfinite (p[i])) {
      g_printerr ("%s: element %zu is %g\n", what, i, p[i]);
      fail_with_seed ();
      g_assert_not_reached ();
    }
  }
}

void
tk_check_close (const char *what, const float *got, const double *want, size_t n, double atol,
                double rtol)
{
  for (size_t i = 0; i < n; i++) {
    double diff = fabs ((double) got[i] - want[i]);
    if (!(diff <= atol + rtol * fabs (want[i]))) {
      g_printerr ("%s: element %zu: got %.9g, double precision gives %.9g (|diff| %.3g > %.3g)\n",
                  what, i, got[i], want[i], diff, atol + rtol * fabs (want[i]));
      fail_with_seed ();
      g_assert_not_reached ();
    }
  }
}

void
tk_check_equal (const char *what, const float *got, const float *want, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (memcmp (&got[i], &want[i], sizeof (float)) != 0) {
      g_printerr ("%s: element %zu: got %.9g, expected %.9g\n", what, i, got[i], want[i]);
      fail_with_seed ();
      g_assert_not_reached ();
    }
  }
}

void
tk_check_status (const char *what, ts_status status, ts_status expected, const ts_error *err)
{
  if (status != expected)
    g_printerr ("%s: got %s, expected %s (%s)\n", what, ts_status_name (status),
                ts_status_name (expected), err ? err->message : "");
  g_assert_cmpint (status, ==, expected);
  if (expected != TS_OK) {
    g_assert_nonnull (err);
    g_assert_cmpint (err->code, ==, expected);
    g_assert_cmpstr (err->message, !=, "");
    g_test_message ("%s: %s", what, err->message);
  }
}
