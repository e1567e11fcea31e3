// SPDX-License-Identifier: MIT
//
// transpose.comp — per-batch 2-D transpose y[b, c, r] = x[b, r, c] (NCHW <-> NHWC), the
// twin of ts_cpu_transpose in engine/cpu/ts-cpu-elementwise.c. One invocation per output
// element, so writes are contiguous. Push constants: ts_vk_transpose_push.
#version 450
#include "common.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
  uint x_off, y_off, batch, rows, cols;
} p;

void main ()
{
  uint plane = p.rows * p.cols, total = p.batch * plane;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += ts_grid_stride ()) {
    uint bi = i / plane, rest = i - bi * plane;
    uint c = rest / p.rows, r = rest - c * p.rows; // output index (b, c, r)
    y[p.y_off + i] = x[p.x_off + bi * plane + r * p.cols + c];
  }
}
