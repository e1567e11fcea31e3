// SPDX-License-Identifier: MIT
//
// embed.comp — embedding gather y[i, :] = table[ids[i], :], the twin of
// engine/backend/cpu/ts-cpu-embed.c. The host has checked every id against the table before the
// dispatch (an out-of-range id is an error, never a read out of bounds). The table is
// stored as the backend chose for 2-D weights (engine/backend/vk/ts-vk-memory.c): [rows, dim], or
// transposed [dim, rows] (specialization constant 1, KN) where matmul wants that layout;
// with TS_W16 defined (embed_w16) in 16 bits, f16 or bf16 (specialization constant 2).
// Push constants: ts_vk_embed_push.
#version 450
#include "common.glsl"
#ifdef TS_W16
#extension GL_EXT_shader_16bit_storage : require
#endif

layout(constant_id = 1) const uint KN = 0;
layout(constant_id = 2) const uint BF16 = 0;

#ifdef TS_W16
layout(std430, binding = 0) readonly buffer T { float16_t table[]; };
layout(std430, binding = 0) readonly buffer TB { uint16_t table_b[]; };
#else
layout(std430, binding = 0) readonly buffer T { float table[]; };
#endif
layout(std430, binding = 1) readonly buffer I { int ids[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
  uint t_off, ids_off, y_off, n, dim, n_rows;
} p;

float tload (uint i)
{
#ifdef TS_W16
  if (BF16 != 0u)
    return uintBitsToFloat (uint (table_b[i]) << 16);
  return float (table[i]);
#else
  return table[i];
#endif
}

void main ()
{
  uint total = p.n * p.dim;
  for (uint i = gl_GlobalInvocationID.x; i < total; i += ts_grid_stride ()) {
    uint r = i / p.dim, c = i - r * p.dim;
    uint id = uint (ids[p.ids_off + r]);
    y[p.y_off + i] = tload (p.t_off + (KN != 0u ? c * p.n_rows + id : id * p.dim + c));
  }
}
