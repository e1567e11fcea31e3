// SPDX-License-Identifier: MIT
//
// softmax.comp — in-place, max-subtracted softmax over rows, the twin of
// engine/backend/cpu/ts-cpu-softmax.c. One workgroup per row (grid-stride over rows). Push
// constants: ts_vk_softmax_push.
#version 450
#include "common.glsl"
#include "reduce.glsl"

layout(std430, binding = 0) buffer X { float x[]; };
layout(push_constant) uniform P {
  uint x_off, rows, dim;
} p;

void main ()
{
  uint lid = gl_LocalInvocationID.x;
  for (uint r = gl_WorkGroupID.x; r < p.rows; r += gl_NumWorkGroups.x) {
    uint base = p.x_off + r * p.dim;
    float m = -1.0 / 0.0;
    for (uint j = lid; j < p.dim; j += WG)
      m = max (m, x[base + j]);
    m = ts_wg_max (m);
    float s = 0.0;
    for (uint j = lid; j < p.dim; j += WG) {
      float e = exp (x[base + j] - m);
      x[base + j] = e;
      s += e;
    }
    float inv = 1.0 / ts_wg_sum (s);
    for (uint j = lid; j < p.dim; j += WG)
      x[base + j] *= inv;
    barrier ();
  }
}
