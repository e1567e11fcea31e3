// SPDX-License-Identifier: MIT
//
// matmul.comp — y = (accumulate ? y : 0) + x w^T + bias with w in nn.Linear's [n, k]
// layout, f32 accumulation; the twin of engine/cpu/ts-cpu-matmul.c.
//
// Register-blocked: each invocation computes a TM x TN tile of y (specialization
// constants 1 and 2) straight from the storage buffers, with no shared memory and no
// barriers. That is the fast style on lavapipe (5x a shared-memory tiled kernel there,
// see ENVIRONMENT.md) and a reasonable one on GPUs. The invocations of a workgroup share
// their rows of x (same addresses: cache hits) and take consecutive column tiles.
// Specialization constant 3 (VEC4) selects vec4 loads along k; the host sets it only when
// k, the row strides and the operand offsets are multiples of 4. Specialization constant 4
// (KN) reads a transposed [k, n] copy of the weight instead, with vec4 loads along n
// (TN a multiple of 4, n a multiple of 4): neighbouring invocations then read neighbouring
// columns, which is 2.7x faster on lavapipe (ENVIRONMENT.md); the backend makes that copy
// on CPU-type devices. Tiles at the edges clamp their loads and skip their stores. Push
// constants: ts_vk_matmul_push.
#version 450
#include "common.glsl"

layout(constant_id = 1) const uint TM = 4;
layout(constant_id = 2) const uint TN = 4;
layout(constant_id = 3) const uint VEC4 = 0;
layout(constant_id = 4) const uint KN = 0;

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 1) readonly buffer W4 { vec4 w4[]; };
layout(std430, binding = 2) readonly buffer B { float bias[]; };
layout(std430, binding = 3) buffer Y { float y[]; };
layout(push_constant) uniform P {
  uint x_off, w_off, b_off, y_off;
  uint m, n, k, ldx, ldy;
  uint has_bias, accumulate;
} p;

void main ()
{
  uint tiles_n = (p.n + TN - 1u) / TN, tiles_m = (p.m + TM - 1u) / TM;
  uint tj = gl_GlobalInvocationID.x;
  if (tj >= tiles_n)
    return;
  uint j0 = tj * TN;
  uint wrow[TN];
  [[unroll]] for (uint c = 0; c < TN; c++)
    wrow[c] = min (j0 + c, p.n - 1u);

  for (uint ti = gl_WorkGroupID.y; ti < tiles_m; ti += gl_NumWorkGroups.y) {
    uint i0 = ti * TM;
    uint xrow[TM];
    [[unroll]] for (uint r = 0; r < TM; r++)
      xrow[r] = min (i0 + r, p.m - 1u);
    float acc[TM][TN];
    [[unroll]] for (uint r = 0; r < TM; r++)
      [[unroll]] for (uint c = 0; c < TN; c++)
        acc[r][c] = 0.0;

    if (KN != 0u) {
      const uint TN4 = TN / 4u;
      uint n4 = p.n / 4u, wo = p.w_off / 4u, c4[TN4];
      vec4 acc4[TM][TN4];
      [[unroll]] for (uint q = 0; q < TN4; q++)
        c4[q] = min (j0 / 4u + q, n4 - 1u);
      [[unroll]] for (uint r = 0; r < TM; r++)
        [[unroll]] for (uint q = 0; q < TN4; q++)
          acc4[r][q] = vec4 (0.0);
      for (uint kk = 0; kk < p.k; kk++) {
        vec4 wv[TN4];
        [[unroll]] for (uint q = 0; q < TN4; q++)
          wv[q] = w4[wo + kk * n4 + c4[q]];
        [[unroll]] for (uint r = 0; r < TM; r++) {
          float xv = x[p.x_off + xrow[r] * p.ldx + kk];
          [[unroll]] for (uint q = 0; q < TN4; q++)
            acc4[r][q] += xv * wv[q];
        }
      }
      [[unroll]] for (uint r = 0; r < TM; r++)
        [[unroll]] for (uint q = 0; q < TN4; q++)
          [[unroll]] for (uint e = 0; e < 4u; e++)
            acc[r][4u * q + e] = acc4[r][q][e];
    } else if (VEC4 != 0u) {
      uint k4 = p.k / 4u, xo = p.x_off / 4u, wo = p.w_off / 4u, ld4 = p.ldx / 4u, kw4 = p.k / 4u;
      for (uint kk = 0; kk < k4; kk++) {
        vec4 xv[TM], wv[TN];
        [[unroll]] for (uint r = 0; r < TM; r++)
          xv[r] = x4[xo + xrow[r] * ld4 + kk];
        [[unroll]] for (uint c = 0; c < TN; c++)
          wv[c] = w4[wo + wrow[c] * kw4 + kk];
        [[unroll]] for (uint r = 0; r < TM; r++)
          [[unroll]] for (uint c = 0; c < TN; c++)
            acc[r][c] += dot (xv[r], wv[c]);
      }
    } else {
      for (uint kk = 0; kk < p.k; kk++) {
        float xv[TM], wv[TN];
        [[unroll]] for (uint r = 0; r < TM; r++)
          xv[r] = x[p.x_off + xrow[r] * p.ldx + kk];
        [[unroll]] for (uint c = 0; c < TN; c++)
          wv[c] = w[p.w_off + wrow[c] * p.k + kk];
        [[unroll]] for (uint r = 0; r < TM; r++)
          [[unroll]] for (uint c = 0; c < TN; c++)
            acc[r][c] += xv[r] * wv[c];
      }
    }

    [[unroll]] for (uint r = 0; r < TM; r++) {
      uint i = i0 + r;
      if (i >= p.m)
        break;
      [[unroll]] for (uint c = 0; c < TN; c++) {
        uint j = j0 + c;
        if (j >= p.n)
          break;
        float v = acc[r][c];
        if (p.has_bias != 0u)
          v += bias[p.b_off + j];
        uint yi = p.y_off + i * p.ldy + j;
        if (p.accumulate != 0u)
          v += y[yi];
        y[yi] = v;
      }
    }
  }
}
