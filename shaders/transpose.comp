// SPDX-License-Identifier: MIT
//
// transpose.comp — per-batch 2-D transpose y[b, c, r] = x[b, r, c] (NCHW <-> NHWC), the
// twin of ts_cpu_transpose in engine/backend/cpu/ts-cpu-elementwise.c. One invocation per output
// element, so writes are contiguous. Rows of x are ldx apart and rows of y ldy apart
// (cols and rows for the whole op, the full matrix's for a tile of it: ts-vk-ops.c splits
// a transpose too large for one binding into tiles); batches are dense in those strides.
// Push constants: ts_vk_transpose_push.
#version 450
#include "common.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
  uint x_off, y_off, batch, rows, cols, ldx, ldy;
} p;

void main ()
{
  uint plane = p.rows * p.cols, total = p.batch * plane;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += ts_grid_stride ()) {
    uint bi = i / plane, rest = i - bi * plane;
    uint c = rest / p.rows, r = rest - c * p.rows; // output index (b, c, r)
    y[p.y_off + (bi * p.cols + c) * p.ldy + r] = x[p.x_off + (bi * p.rows + r) * p.ldx + c];
  }
}
