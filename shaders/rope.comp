// SPDX-License-Identifier: MIT
//
// rope.comp — rotary embedding in place on x [batch, seq, heads * d_head], adjacent pairs
// rotated with cos/sin [seq, d_head] taken at the even index; the twin of
// engine/backend/cpu/ts-cpu-rope.c. One invocation per pair. Push constants: ts_vk_rope_push.
#version 450
#include "common.glsl"

layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer C { float cos_t[]; };
layout(std430, binding = 2) readonly buffer S { float sin_t[]; };
layout(push_constant) uniform P {
  uint x_off, cos_off, sin_off, ldx, bs_x, batch, seq, heads, d_head;
} p;

void main ()
{
  uint half_d = p.d_head / 2u, per_row = p.heads * half_d, per_batch = p.seq * per_row;
  uint total = p.batch * per_batch;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += ts_grid_stride ()) {
    uint bi = i / per_batch, rest = i - bi * per_batch;
    uint s = rest / per_row, rest2 = rest - s * per_row;
    uint h = rest2 / half_d, j = 2u * (rest2 - h * half_d);
    uint xi = p.x_off + bi * p.bs_x + s * p.ldx + h * p.d_head + j;
    float c = cos_t[p.cos_off + s * p.d_head + j], sn = sin_t[p.sin_off + s * p.d_head + j];
    float x0 = x[xi], x1 = x[xi + 1u];
    precise float a0 = x0 * c, b0 = x1 * sn, a1 = x1 * c, b1 = x0 * sn;
    x[xi] = a0 - b0;
    x[xi + 1u] = a1 + b1;
  }
}
