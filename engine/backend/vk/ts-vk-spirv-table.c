/* SPDX-License-Identifier: MIT
 *
 * ts-vk-spirv-table — the embedded SPIR-V of every compute shader, indexed by
 * ts_vk_shader. Each ts_vk_spirv_<family> is generated at build time from
 * shaders/<family>.comp by shaders/embed-spirv.py; the _w16 variants from the same source
 * with TS_W16 defined (shaders/meson.build).
 */
#include "backend/vk/ts-vk.h"

extern const ts_vk_spirv ts_vk_spirv_matmul, ts_vk_spirv_norm, ts_vk_spirv_softmax,
    ts_vk_spirv_attention, ts_vk_spirv_rope, ts_vk_spirv_act, ts_vk_spirv_elementwise,
    ts_vk_spirv_transpose, ts_vk_spirv_conv2d, ts_vk_spirv_group_norm, ts_vk_spirv_upsample,
    ts_vk_spirv_embed, ts_vk_spirv_sample, ts_vk_spirv_matmul_w16, ts_vk_spirv_embed_w16;

const ts_vk_spirv *const ts_vk_spirv_table[TS_VK_SHADER_COUNT] = {
  [TS_VK_SHADER_MATMUL] = &ts_vk_spirv_matmul,
  [TS_VK_SHADER_NORM] = &ts_vk_spirv_norm,
  [TS_VK_SHADER_SOFTMAX] = &ts_vk_spirv_softmax,
  [TS_VK_SHADER_ATTENTION] = &ts_vk_spirv_attention,
  [TS_VK_SHADER_ROPE] = &ts_vk_spirv_rope,
  [TS_VK_SHADER_ACT] = &ts_vk_spirv_act,
  [TS_VK_SHADER_ELEMENTWISE] = &ts_vk_spirv_elementwise,
  [TS_VK_SHADER_TRANSPOSE] = &ts_vk_spirv_transpose,
  [TS_VK_SHADER_CONV2D] = &ts_vk_spirv_conv2d,
  [TS_VK_SHADER_GROUP_NORM] = &ts_vk_spirv_group_norm,
  [TS_VK_SHADER_UPSAMPLE] = &ts_vk_spirv_upsample,
  [TS_VK_SHADER_EMBED] = &ts_vk_spirv_embed,
  [TS_VK_SHADER_SAMPLE] = &ts_vk_spirv_sample,
  [TS_VK_SHADER_MATMUL_W16] = &ts_vk_spirv_matmul_w16,
  [TS_VK_SHADER_EMBED_W16] = &ts_vk_spirv_embed_w16,
};
