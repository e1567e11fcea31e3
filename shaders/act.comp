// SPDX-License-Identifier: MIT
//
// act.comp — y = act(x) over a strided rows x cols matrix (SiLU, GELU tanh, GELU erf);
// the twin of engine/backend/cpu/ts-cpu-act.c. Push constants: ts_vk_act_push.
#version 450
#include "common.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
  uint x_off, y_off, rows, cols, ldx, ldy, kind;
} p;

void main ()
{
  uint total = p.rows * p.cols;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += ts_grid_stride ()) {
    uint r = i / p.cols, c = i - r * p.cols;
    float v = x[p.x_off + r * p.ldx + c], o;
    if (p.kind == 0u)
      o = v / (1.0 + exp (-v));
    else if (p.kind == 1u)
      o = 0.5 * v * (1.0 + ts_tanh (0.7978845608028654 * (v + 0.044715 * v * v * v)));
    else
      o = 0.5 * v * (1.0 + ts_erf (v * 0.7071067811865476));
    y[p.y_off + r * p.ldy + c] = o;
  }
}
