// SPDX-License-Identifier: MIT
//
// norm.comp — LayerNorm / RMSNorm over rows with optional affine weight and bias and the
// optional AdaLN modulation y = y * (1 + scale[b]) + shift[b]; the twin of
// engine/backend/cpu/ts-cpu-norm.c. One workgroup per row (grid-stride over rows): the statistics
// are fp32 workgroup sums of Kahan-compensated per-invocation partials (the reference
// accumulates in double; compensation keeps long rows within the fp32 tolerances), the
// variance is the two-pass sum of squared deviations. x and y may alias: every element is
// read by the same invocation that later writes it. Push constants: ts_vk_norm_push.
#version 450
#include "common.glsl"
#include "reduce.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer W { float w[]; };
layout(std430, binding = 3) readonly buffer B { float bias[]; };
layout(std430, binding = 4) readonly buffer SH { float shift[]; };
layout(std430, binding = 5) readonly buffer SC { float scale[]; };
layout(push_constant) uniform P {
  uint x_off, y_off, w_off, b_off, shift_off, scale_off;
  uint rows, dim, ldx, ldy, rows_per_batch, mod_stride;
  uint kind, has_w, has_b, has_mod;
  float eps;
} p;

void main ()
{
  uint lid = gl_LocalInvocationID.x;
  for (uint r = gl_WorkGroupID.x; r < p.rows; r += gl_NumWorkGroups.x) {
    uint xr = p.x_off + r * p.ldx, yr = p.y_off + r * p.ldy;
    float mean = 0.0, rstd;
    precise float s = 0.0, comp = 0.0;
    if (p.kind == 0u) {
      for (uint j = lid; j < p.dim; j += WG) {
        precise float t = x[xr + j] - comp;
        precise float u = s + t;
        comp = (u - s) - t;
        s = u;
      }
      mean = ts_wg_sum (s) / float (p.dim);
      s = 0.0;
      comp = 0.0;
      for (uint j = lid; j < p.dim; j += WG) {
        float d = x[xr + j] - mean;
        precise float t = d * d - comp;
        precise float u = s + t;
        comp = (u - s) - t;
        s = u;
      }
    } else {
      for (uint j = lid; j < p.dim; j += WG) {
        float v = x[xr + j];
        precise float t = v * v - comp;
        precise float u = s + t;
        comp = (u - s) - t;
        s = u;
      }
    }
    rstd = inversesqrt (ts_wg_sum (s) / float (p.dim) + p.eps);
    uint mb = (r / max (p.rows_per_batch, 1u)) * p.mod_stride;
    for (uint j = lid; j < p.dim; j += WG) {
      float v = (x[xr + j] - mean) * rstd;
      if (p.has_w != 0u)
        v *= w[p.w_off + j];
      if (p.has_b != 0u)
        v += bias[p.b_off + j];
      if (p.has_mod != 0u)
        v = v * (1.0 + scale[p.scale_off + mb + j]) + shift[p.shift_off + mb + j];
      y[yr + j] = v;
    }
    barrier ();
  }
}
