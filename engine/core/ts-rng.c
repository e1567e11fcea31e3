/* SPDX-License-Identifier: MIT
 *
 * ts-rng — Philox4x32-10 and the sampler's stream layout. See ts-rng.h.
 *
 * Written from the published algorithm (Salmon et al. 2011, section 4.2): each round
 * multiplies counter words 0 and 2 by fixed odd constants into 64-bit products, mixes the
 * high halves with the other two words and the round key, and the key is bumped by the
 * Weyl constants (golden ratio and sqrt(3) - 1) between rounds. Random123's known-answer
 * vectors (its file tests/kat_vectors, not ours) are checked in tests/test-rng.c.
 */
#include "core/ts-rng.h"

#define PHILOX_M0 UINT32_C (0xD2511F53)
#define PHILOX_M1 UINT32_C (0xCD9E8D57)
#define PHILOX_W0 UINT32_C (0x9E3779B9)
#define PHILOX_W1 UINT32_C (0xBB67AE85)
#define PHILOX_ROUNDS 10

static inline void
philox_round (uint32_t x[4], const uint32_t k[2])
{
  uint64_t p0 = (uint64_t) PHILOX_M0 * x[0];
  uint64_t p1 = (uint64_t) PHILOX_M1 * x[2];
  uint32_t hi0 = (uint32_t) (p0 >> 32), lo0 = (uint32_t) p0;
  uint32_t hi1 = (uint32_t) (p1 >> 32), lo1 = (uint32_t) p1;
  uint32_t y0 = hi1 ^ x[1] ^ k[0];
  uint32_t y2 = hi0 ^ x[3] ^ k[1];

  x[0] = y0;
  x[1] = lo1;
  x[2] = y2;
  x[3] = lo0;
}

void
ts_philox4x32_10 (const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
  uint32_t x[4] = { ctr[0], ctr[1], ctr[2], ctr[3] };
  uint32_t k[2] = { key[0], key[1] };

  for (int r = 0; r < PHILOX_ROUNDS; r++) {
    if (r > 0) {
      k[0] += PHILOX_W0;
      k[1] += PHILOX_W1;
    }
    philox_round (x, k);
  }
  out[0] = x[0];
  out[1] = x[1];
  out[2] = x[2];
  out[3] = x[3];
}

uint32_t
ts_rng_u32 (uint64_t seed, uint32_t image, uint32_t step, ts_rng_purpose purpose,
            uint32_t token)
{
  const uint32_t key[2] = { (uint32_t) seed, (uint32_t) (seed >> 32) };
  const uint32_t ctr[4] = { token, image, step, (uint32_t) purpose };
  uint32_t out[4];

  ts_philox4x32_10 (ctr, key, out);
  return out[0];
}

float
ts_rng_uniform (uint64_t seed, uint32_t image, uint32_t step, ts_rng_purpose purpose,
                uint32_t token)
{
  return ts_rng_u32_to_uniform (ts_rng_u32 (seed, image, step, purpose, token));
}
