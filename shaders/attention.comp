// SPDX-License-Identifier: MIT
//
// attention.comp — fused scaled dot-product attention with an online softmax
// (flash-attention style): no seq_q x seq_kv matrix is ever stored. One invocation per
// (query, head, batch): the query (pre-scaled) and the output accumulator live in
// registers, the keys and values stream from memory; the running maximum rescales the
// accumulator whenever it grows. causal masks keys j > i (CLIP). The twin of
// engine/backend/cpu/ts-cpu-attention.c. Specialization constant 1 is d_head (so the per-invocation
// arrays have a fixed size). Push constants: ts_vk_attention_push.
#version 450
#include "common.glsl"

layout(constant_id = 1) const uint D = 64;

layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K { float k[]; };
layout(std430, binding = 2) readonly buffer V { float v[]; };
layout(std430, binding = 3) writeonly buffer O { float o[]; };
layout(push_constant) uniform P {
  uint q_off, k_off, v_off, o_off;
  uint ldq, ldk, ldv, ldo;
  uint bs_q, bs_k, bs_v, bs_o;
  uint batch, heads, seq_q, seq_kv;
  float scale;
  uint causal;
} p;

void main ()
{
  uint i = gl_GlobalInvocationID.x, h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
  if (i >= p.seq_q)
    return;
  float qv[D], acc[D];
  uint qb = p.q_off + b * p.bs_q + i * p.ldq + h * D;
  [[unroll]] for (uint d = 0; d < D; d++) {
    qv[d] = q[qb + d] * p.scale;
    acc[d] = 0.0;
  }
  float m = -1.0 / 0.0, l = 0.0;
  uint n_kv = p.causal != 0u ? min (p.seq_kv, i + 1u) : p.seq_kv;
  uint kb = p.k_off + b * p.bs_k + h * D, vb = p.v_off + b * p.bs_v + h * D;
  for (uint j = 0; j < n_kv; j++) {
    float s = 0.0;
    [[unroll]] for (uint d = 0; d < D; d++)
      s += qv[d] * k[kb + j * p.ldk + d];
    float m_new = max (m, s);
    float corr = exp (m - m_new), e = exp (s - m_new);
    l = l * corr + e;
    [[unroll]] for (uint d = 0; d < D; d++)
      acc[d] = acc[d] * corr + e * v[vb + j * p.ldv + d];
    m = m_new;
  }
  float inv = 1.0 / l;
  uint ob = p.o_off + b * p.bs_o + i * p.ldo + h * D;
  [[unroll]] for (uint d = 0; d < D; d++)
    o[ob + d] = acc[d] * inv;
}
