// SPDX-License-Identifier: MIT
//
// philox.glsl — the engine's counter-based generator, Philox4x32-10, and the sampler's
// stream layout, in 32-bit integer arithmetic: the twin of engine/core/ts-rng.c (see ts-rng.h
// for the layout: ctr = (token, image, step, purpose), key = the seed's two halves, word 0
// of the block mapped to [0, 1) with 24 bits). Same inputs, same bits as the CPU.

const uint TS_RNG_PURPOSE_MULTINOMIAL = 1u;
const uint TS_RNG_PURPOSE_GUMBEL = 2u;

// Word 0 of philox4x32(ctr, key) with 10 rounds.
uint ts_philox4x32_10_word0 (uvec4 x, uvec2 k)
{
  [[unroll]] for (int r = 0; r < 10; r++) {
    uint hi0, lo0, hi1, lo1;
    if (r > 0)
      k += uvec2 (0x9E3779B9u, 0xBB67AE85u);
    umulExtended (0xD2511F53u, x.x, hi0, lo0);
    umulExtended (0xCD9E8D57u, x.z, hi1, lo1);
    x = uvec4 (hi1 ^ x.y ^ k.x, lo1, hi0 ^ x.w ^ k.y, lo0);
  }
  return x.x;
}

// ts_rng_uniform: (x >> 8) * 2^-24, exact in fp32.
float ts_rng_uniform (uvec2 key, uint image, uint step, uint purpose, uint token)
{
  uint x = ts_philox4x32_10_word0 (uvec4 (token, image, step, purpose), key);
  return float (x >> 8u) * (1.0 / 16777216.0);
}
