// SPDX-License-Identifier: MIT
//
// group_norm.comp — GroupNorm over NCHW (fp32 two-pass statistics per (batch, group),
// affine weight and bias per channel, optional SiLU), the twin of
// engine/backend/cpu/ts-cpu-group-norm.c. One workgroup per (batch, group); per-invocation partial
// sums are Kahan-compensated since a group can hold millions of elements. x and y may
// alias. pass (ts_gn_pass): 0 computes the statistics and normalises; 1 only merges the
// statistics of this part into stats [batch, groups, 2] = (mean, biased variance) of the
// hw_done positions per channel and the i0 elements of this part seen before (Chan et
// al.'s pairwise update, in fp32); 2 normalises with the kept statistics. Of each (batch,
// group) pair the dispatch takes the elements i0 <= i < i1: pass 0 all of them, passes 1
// and 2 can run in pieces of them, since llvmpipe cuts an invocation's loops after 65535
// iterations in all (ts_vk_group_norm). Push constants: ts_vk_group_norm_push.
#version 450
#include "common.glsl"
#include "reduce.glsl"

layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) buffer Y { float y[]; };
layout(std430, binding = 2) readonly buffer W { float w[]; };
layout(std430, binding = 3) readonly buffer B { float bias[]; };
layout(std430, binding = 4) buffer S { float stats[]; };
layout(push_constant) uniform P {
  uint x_off, y_off, w_off, b_off, s_off;
  uint batch, c, hw, groups, has_w, has_b, silu, pass;
  float eps, hw_done;
  uint i0, i1;
} p;

void main ()
{
  uint lid = gl_LocalInvocationID.x;
  uint cg = p.c / p.groups;
  for (uint bg = gl_WorkGroupID.x; bg < p.batch * p.groups; bg += gl_NumWorkGroups.x) {
    uint bi = bg / p.groups, g = bg - bi * p.groups;
    uint base = (bi * p.c + g * cg) * p.hw;
    uint si = p.s_off + bg * 2u;
    float mean, var;
    if (p.pass == 2u) {
      mean = stats[si];
      var = stats[si + 1u];
    } else {
      precise float s = 0.0, comp = 0.0;
      for (uint i = p.i0 + lid; i < p.i1; i += WG) {
        precise float t = x[p.x_off + base + i] - comp;
        precise float u = s + t;
        comp = (u - s) - t;
        s = u;
      }
      mean = ts_wg_sum (s) / float (p.i1 - p.i0);
      s = 0.0;
      comp = 0.0;
      for (uint i = p.i0 + lid; i < p.i1; i += WG) {
        float d = x[p.x_off + base + i] - mean;
        precise float t = d * d - comp;
        precise float u = s + t;
        comp = (u - s) - t;
        s = u;
      }
      var = ts_wg_sum (s) / float (p.i1 - p.i0);
    }
    if (p.pass == 1u) {
      if (lid == 0u) {
        float n_a = float (cg) * p.hw_done + float (p.i0);
        if (n_a > 0.0) {
          float n_b = float (p.i1 - p.i0), n_ab = n_a + n_b;
          float mean_a = stats[si], delta = mean - mean_a;
          float m2 = stats[si + 1u] * n_a + var * n_b + delta * delta * (n_a / n_ab) * n_b;
          mean = mean_a + delta * (n_b / n_ab);
          var = m2 / n_ab;
        }
        stats[si] = mean;
        stats[si + 1u] = var;
      }
      barrier ();
      continue;
    }
    float rstd = inversesqrt (var + p.eps);
    for (uint i = p.i0 + lid; i < p.i1; i += WG) {
      uint ch = g * cg + i / p.hw;
      float wv = p.has_w != 0u ? w[p.w_off + ch] : 1.0;
      float bv = p.has_b != 0u ? bias[p.b_off + ch] : 0.0;
      float v = (x[p.x_off + base + i] - mean) * rstd * wv + bv;
      if (p.silu != 0u)
        v = v / (1.0 + exp (-v));
      y[p.y_off + base + i] = v;
    }
    barrier ();
  }
}
