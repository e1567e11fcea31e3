/* SPDX-License-Identifier: MIT
 *
 * ts-random-model — writes a model folder with random weights (ts_make_random_model in
 * tessera.h), so speed and memory can be measured at the real size without the real
 * checkpoint. This header exposes the value generator and the initialisation rule to the
 * unit tests, which check that a file's contents are exactly what they say.
 *
 * Random stream: element i of a tensor is normal number (i mod 4) of the Philox4x32-10
 * block (ts-rng) with
 *
 *   key = seed (low word, high word)
 *   ctr = { i / 4 (low 32 bits), i / 4 (high 32 bits), tensor,
 *           TS_RANDOM_MODEL_PURPOSE + component }
 *   tensor = the index of the tensor in its component's expected-tensor table
 *            (stages/ts-*-config, module order); component = its ts_component value
 *
 * and the block's words w0..w3 become four normals by Box-Muller:
 *   u = ((w >> 8) + 1) x 2^-24 for w0 and w2 (in (0, 1], so the log is finite),
 *   v = (w >> 8) x 2^-24 for w1 and w3,
 *   (z0, z1) = sqrt(-2 ln u0) (cos 2 pi v1, sin 2 pi v1), (z2, z3) likewise from w2, w3.
 * A value depends only on (seed, component, tensor, element), never on how the writer
 * chunks the file. The float arithmetic uses libm (logf, cosf, sinf), so files are
 * byte-identical on one machine; another libm may differ in the last bit.
 */
#ifndef TS_RANDOM_MODEL_H
#define TS_RANDOM_MODEL_H

#include "model/ts-config.h"
#include "tessera-devkit.h"

/* ctr[3] base of the random-weight draws ("WG" + 0x0000): far from the sampler's small
 * ts_rng_purpose values. */
#define TS_RANDOM_MODEL_PURPOSE UINT32_C (0x57470000)

/* Writes mean + std x z_i for the n elements i = first .. first + n - 1 of the tensor's
 * stream. */
void ts_random_model_fill_normal (uint64_t seed, ts_component component, uint32_t tensor,
                                  uint64_t first, size_t n, float mean, float std, float *dst);

/* The initialisation rule for one tensor, from its name and shape:
 *   1-D "*.bias"                      N(0, 0.02)
 *   other 1-D (norm weights)          1 + N(0, 0.02)
 *   VQ "quantize.embedding.weight"    N(0, 1)      (the codebook)
 *   2-D "*embedding*"                 N(0, 0.5)    (token, position, code embeddings)
 *   any other (linear, conv)          N(0, clamp(0.8 / sqrt(fan_in), 0.02, 0.2)),
 *                                     fan_in = product of the dimensions after the first
 * (the golden set's initialisation, README "Models", with smaller bias and norm noise). */
void ts_random_model_init_rule (ts_component component, const ts_tensor_spec *spec,
                                float *mean, float *std);

#endif /* TS_RANDOM_MODEL_H */
