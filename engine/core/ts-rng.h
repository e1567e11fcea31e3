/* SPDX-License-Identifier: MIT
 *
 * ts-rng — the engine's seeded random numbers: a counter-based generator (Philox4x32-10,
 * Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the
 * generator of Random123 and cuRAND). The sampler (ts-sampler) draws its multinomial and
 * Gumbel noise from it. Every draw is a pure function of (seed, image, step, purpose,
 * token), so an image depends only on its seed and settings: not on the backend, the
 * thread count or the order in which tokens are visited, and a GPU shader can produce the
 * same numbers with 32-bit integer arithmetic.
 *
 * Stream layout (part of Tessera's reproducibility contract: changing anything below
 * changes every image generated from a seed, so it is versioned as TS_RNG_STREAM_VERSION):
 *
 *   key[0] = seed bits 0..31          key[1] = seed bits 32..63
 *   ctr[0] = token index within the image (row-major over the token grid)
 *   ctr[1] = image index within the batch
 *   ctr[2] = sampling step index (0 for the first step)
 *   ctr[3] = purpose (ts_rng_purpose)
 *
 *   x = word 0 of Philox4x32-10(ctr, key); words 1..3 are unused.
 *   u = (x >> 8) * 2^-24, a float in [0, 1) with 24 random bits, exactly representable.
 *
 * Thread-safety: every function here is pure and safe to call from any thread.
 */
#ifndef TS_RNG_H
#define TS_RNG_H

#include <stdint.h>

#define TS_RNG_STREAM_VERSION 1

/* What a draw is used for; the value is ctr[3], so it is part of the stream layout. */
typedef enum {
  TS_RNG_PURPOSE_MULTINOMIAL = 1, /* the code chosen for a masked token */
  TS_RNG_PURPOSE_GUMBEL = 2,      /* the Gumbel noise on a token's confidence */
  TS_RNG_PURPOSE_ADD_NOISE = 3,   /* img2img: whether a token of the input is masked (step 0) */
} ts_rng_purpose;

/* One Philox4x32-10 block: the Random123 function philox4x32(ctr, key) with 10 rounds. */
void ts_philox4x32_10 (const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Word 0 of the block for (seed, image, step, purpose, token), per the layout above. */
uint32_t ts_rng_u32 (uint64_t seed, uint32_t image, uint32_t step, ts_rng_purpose purpose,
                     uint32_t token);

/* The same draw as a float in [0, 1): (x >> 8) * 2^-24. */
float ts_rng_uniform (uint64_t seed, uint32_t image, uint32_t step, ts_rng_purpose purpose,
                      uint32_t token);

/* Maps 32 random bits to [0, 1) the way ts_rng_uniform does. */
static inline float
ts_rng_u32_to_uniform (uint32_t x)
{
  return (float) (x >> 8) * 0x1p-24f;
}

#endif /* TS_RNG_H */
