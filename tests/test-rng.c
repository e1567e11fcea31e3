/* SPDX-License-Identifier: MIT
 *
 * Tests for ts-rng: Philox4x32-10 against Random123's known-answer vectors, the stream
 * layout that makes a seed reproduce the same image across versions (pinned values,
 * cross-checked with an independent Python implementation when written), seed/counter
 * independence and the uniform mapping.
 */
#include "core/ts-rng.h"

#include <glib.h>
#include <math.h>

/* Random123 tests/kat_vectors, "philox4x32 10" lines: counter[4] key[2] -> output[4]. */
static const struct {
  uint32_t ctr[4];
  uint32_t key[2];
  uint32_t out[4];
} kat[] = {
  { { 0x00000000, 0x00000000, 0x00000000, 0x00000000 }, { 0x00000000, 0x00000000 },
    { 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 } },
  { { 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff }, { 0xffffffff, 0xffffffff },
    { 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd } },
  { { 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344 }, { 0xa4093822, 0x299f31d0 },
    { 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1 } },
};

static void
test_philox_known_answers (void)
{
  for (size_t i = 0; i < G_N_ELEMENTS (kat); i++) {
    uint32_t out[4];
    ts_philox4x32_10 (kat[i].ctr, kat[i].key, out);
    for (int w = 0; w < 4; w++) {
      if (out[w] != kat[i].out[w])
        g_test_message ("vector %zu word %d: got %08x, want %08x", i, w, out[w],
                        kat[i].out[w]);
      g_assert_cmphex (out[w], ==, kat[i].out[w]);
    }
  }
}

static void
test_stream_layout (void)
{
  const uint64_t seed = UINT64_C (0x0123456789abcdef);
  const uint32_t key[2] = { 0x89abcdef, 0x01234567 };
  const uint32_t ctr[4] = { 4095, 1, 15, TS_RNG_PURPOSE_GUMBEL };
  uint32_t out[4];

  /* The documented mapping of (seed, image, step, purpose, token) onto key and counter. */
  ts_philox4x32_10 (ctr, key, out);
  g_assert_cmphex (ts_rng_u32 (seed, 1, 15, TS_RNG_PURPOSE_GUMBEL, 4095), ==, out[0]);

  /* Pinned values of the version-1 stream: a change here changes every seeded image. */
  g_assert_cmpint (TS_RNG_STREAM_VERSION, ==, 1);
  g_assert_cmphex (ts_rng_u32 (seed, 0, 0, TS_RNG_PURPOSE_MULTINOMIAL, 0), ==, 0xd0e1fe69);
  g_assert_cmphex (ts_rng_u32 (seed, 1, 15, TS_RNG_PURPOSE_GUMBEL, 4095), ==, 0x28334354);
  g_assert_cmphex (ts_rng_u32 (42, 0, 3, TS_RNG_PURPOSE_MULTINOMIAL, 100), ==, 0xfe3fc029);
  g_assert_cmpfloat (ts_rng_uniform (42, 0, 3, TS_RNG_PURPOSE_MULTINOMIAL, 100), ==,
                     0x1.fc7f8p-1f);
}

static void
test_uniform_mapping (void)
{
  g_assert_cmpfloat (ts_rng_u32_to_uniform (0), ==, 0.0f);
  g_assert_cmpfloat (ts_rng_u32_to_uniform (0xff), ==, 0.0f);
  g_assert_cmpfloat (ts_rng_u32_to_uniform (0x100), ==, 0x1p-24f);
  g_assert_cmpfloat (ts_rng_u32_to_uniform (0x80000000), ==, 0.5f);
  g_assert_cmpfloat (ts_rng_u32_to_uniform (0xffffffff), ==, 1.0f - 0x1p-24f);
  g_assert_cmpfloat (ts_rng_u32_to_uniform (0xffffffff), <, 1.0f);
}

static void
test_same_seed_same_draws (void)
{
  for (uint32_t t = 0; t < 1000; t++) {
    uint32_t a = ts_rng_u32 (7, 0, 2, TS_RNG_PURPOSE_MULTINOMIAL, t);
    uint32_t b = ts_rng_u32 (7, 0, 2, TS_RNG_PURPOSE_MULTINOMIAL, t);
    g_assert_cmphex (a, ==, b);
  }
}

/* Counts equal words between two 1000-draw streams that differ in one input. Two
 * independent 32-bit streams agree at a position with probability 2^-32. */
static int
count_equal (uint64_t s1, uint32_t i1, uint32_t st1, ts_rng_purpose p1, uint64_t s2,
             uint32_t i2, uint32_t st2, ts_rng_purpose p2)
{
  int n = 0;
  for (uint32_t t = 0; t < 1000; t++)
    n += ts_rng_u32 (s1, i1, st1, p1, t) == ts_rng_u32 (s2, i2, st2, p2, t);
  return n;
}

static void
test_inputs_decorrelate (void)
{
  const ts_rng_purpose m = TS_RNG_PURPOSE_MULTINOMIAL, g = TS_RNG_PURPOSE_GUMBEL;

  g_assert_cmpint (count_equal (1, 0, 0, m, 2, 0, 0, m), ==, 0);
  /* Seeds that differ only in the high word (key[1]). */
  g_assert_cmpint (count_equal (1, 0, 0, m, 1 | (UINT64_C (1) << 32), 0, 0, m), ==, 0);
  g_assert_cmpint (count_equal (1, 0, 0, m, 1, 1, 0, m), ==, 0);
  g_assert_cmpint (count_equal (1, 0, 0, m, 1, 0, 1, m), ==, 0);
  g_assert_cmpint (count_equal (1, 0, 0, m, 1, 0, 0, g), ==, 0);
  /* Neighbouring tokens within one stream differ too. */
  for (uint32_t t = 0; t < 1000; t++)
    g_assert_cmphex (ts_rng_u32 (1, 0, 0, m, t), !=, ts_rng_u32 (1, 0, 0, m, t + 1));
}

static void
test_uniform_statistics (void)
{
  /* 100000 uniforms: mean 0.5 (sd of the mean 0.0009) and 16 equal bins of expected
   * 6250 each (sd 77); the bounds are > 5 sd so the fixed stream cannot flake. */
  enum { N = 100000, BINS = 16 };
  int bins[BINS] = { 0 };
  double sum = 0.0;

  for (uint32_t t = 0; t < N; t++) {
    float u = ts_rng_uniform (12345, 0, 0, TS_RNG_PURPOSE_GUMBEL, t);
    g_assert_cmpfloat (u, >=, 0.0f);
    g_assert_cmpfloat (u, <, 1.0f);
    sum += u;
    bins[(int) (u * BINS)]++;
  }
  g_assert_cmpfloat (fabs (sum / N - 0.5), <, 0.005);
  for (int b = 0; b < BINS; b++) {
    g_assert_cmpint (bins[b], >, N / BINS - 400);
    g_assert_cmpint (bins[b], <, N / BINS + 400);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/rng/philox-known-answers", test_philox_known_answers);
  g_test_add_func ("/rng/stream-layout", test_stream_layout);
  g_test_add_func ("/rng/uniform-mapping", test_uniform_mapping);
  g_test_add_func ("/rng/same-seed-same-draws", test_same_seed_same_draws);
  g_test_add_func ("/rng/inputs-decorrelate", test_inputs_decorrelate);
  g_test_add_func ("/rng/uniform-statistics", test_uniform_statistics);
  return g_test_run ();
}
