// SPDX-License-Identifier: MIT
//
// elementwise.comp — add, multiply, gated add, classifier-free guidance, strided copy and
// bias add over a rows x cols matrix; the twin of engine/backend/cpu/ts-cpu-elementwise.c. Results
// are `precise` so that no multiply-add is fused: the CPU computes the same expressions
// unfused and the kernel tests compare bit for bit. y may alias a or b (each element is
// read before it is written, by the same invocation). Push constants: ts_vk_elementwise_push.
#version 450
#include "common.glsl"

layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer G { float g[]; };
layout(push_constant) uniform P {
  uint a_off, b_off, y_off, g_off;
  uint rows, cols, lda, ldb, ldy, rows_per_batch, gate_stride, kind;
  float s;
} p;

void main ()
{
  uint total = p.rows * p.cols;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += ts_grid_stride ()) {
    uint r = i / p.cols, c = i - r * p.cols;
    float va = a[p.a_off + r * p.lda + c];
    precise float o;
    if (p.kind == 0u) {
      o = va + b[p.b_off + r * p.ldb + c];
    } else if (p.kind == 1u) {
      o = va * b[p.b_off + r * p.ldb + c];
    } else if (p.kind == 2u) {
      precise float t = b[p.b_off + r * p.ldb + c] * g[p.g_off + (r / p.rows_per_batch) * p.gate_stride + c];
      o = va + t;
    } else if (p.kind == 3u) {
      precise float d = b[p.b_off + r * p.ldb + c] - va;
      precise float t = p.s * d;
      o = va + t;
    } else if (p.kind == 4u) {
      o = va;
    } else {
      o = va + g[p.g_off + (r / p.rows_per_batch) * p.gate_stride + c];
    }
    y[p.y_off + r * p.ldy + c] = o;
  }
}
