// SPDX-License-Identifier: MIT
//
// embed.comp — embedding gather y[i, :] = table[ids[i], :], the twin of
// engine/cpu/ts-cpu-embed.c. The host has checked every id against the table before the
// dispatch (an out-of-range id is an error, never a read out of bounds). Push constants:
// ts_vk_embed_push.
#version 450
#include "common.glsl"

layout(std430, binding = 0) readonly buffer T { float table[]; };
layout(std430, binding = 1) readonly buffer I { int ids[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
  uint t_off, ids_off, y_off, n, dim;
} p;

void main ()
{
  uint total = p.n * p.dim;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += ts_grid_stride ()) {
    uint r = i / p.dim, c = i - r * p.dim;
    y[p.y_off + i] = table[p.t_off + uint (ids[p.ids_off + r]) * p.dim + c];
  }
}
