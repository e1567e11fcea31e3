// SPDX-License-Identifier: MIT
//
// upsample.comp — nearest-neighbour 2x upsampling over NCHW, the twin of
// engine/backend/cpu/ts-cpu-upsample.c. One invocation per output element. Push constants:
// ts_vk_upsample_push.
#version 450
#include "common.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
  uint x_off, y_off, batch, c, h, w;
} p;

void main ()
{
  uint w2 = 2u * p.w, plane2 = 4u * p.h * p.w, total = p.batch * p.c * plane2;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += ts_grid_stride ()) {
    uint bc = i / plane2, rest = i - bc * plane2;
    uint oy = rest / w2, ox = rest - oy * w2;
    y[p.y_off + i] = x[p.x_off + bc * p.h * p.w + (oy >> 1) * p.w + (ox >> 1)];
  }
}
