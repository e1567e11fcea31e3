/* SPDX-License-Identifier: MIT
 *
 * ts-vk-kernels — the C twins of the shaders' push-constant blocks (shaders/<family>.comp).
 * Field order and types must match the GLSL `layout(push_constant)` block exactly: all
 * fields are 32-bit, so std430 and C agree without padding. Every `*_off` is the element
 * offset of an operand inside its binding (ts_vk_operand_offset), every other index is in
 * elements too. Each struct fits the 128 bytes every device guarantees.
 */
#ifndef TS_VK_KERNELS_H
#define TS_VK_KERNELS_H

#include <stdint.h>

#define TS_VK_PUSH_MAX 128

/* shaders/matmul.comp (and its matmul_w16 variant) */
typedef struct {
  uint32_t x_off, w_off, b_off, y_off;
  uint32_t m, n, k, ldx, ldy;
  uint32_t has_bias, accumulate;
} ts_vk_matmul_push;
_Static_assert (sizeof (ts_vk_matmul_push) <= TS_VK_PUSH_MAX, "matmul.comp push constants");

/* shaders/norm.comp */
typedef struct {
  uint32_t x_off, y_off, w_off, b_off, shift_off, scale_off;
  uint32_t rows, dim, ldx, ldy, rows_per_batch, mod_stride;
  uint32_t kind, has_w, has_b, has_mod;
  float eps;
} ts_vk_norm_push;
_Static_assert (sizeof (ts_vk_norm_push) <= TS_VK_PUSH_MAX, "norm.comp push constants");

/* shaders/softmax.comp */
typedef struct {
  uint32_t x_off, rows, dim;
} ts_vk_softmax_push;
_Static_assert (sizeof (ts_vk_softmax_push) <= TS_VK_PUSH_MAX, "softmax.comp push constants");

/* shaders/attention.comp */
typedef struct {
  uint32_t q_off, k_off, v_off, o_off;
  uint32_t ldq, ldk, ldv, ldo;
  uint32_t bs_q, bs_k, bs_v, bs_o;
  uint32_t batch, heads, seq_q, seq_kv;
  float scale;
  uint32_t causal;
} ts_vk_attention_push;
_Static_assert (sizeof (ts_vk_attention_push) <= TS_VK_PUSH_MAX, "attention.comp push constants");

/* shaders/rope.comp */
typedef struct {
  uint32_t x_off, cos_off, sin_off;
  uint32_t ldx, bs_x, batch, seq, heads, d_head;
} ts_vk_rope_push;
_Static_assert (sizeof (ts_vk_rope_push) <= TS_VK_PUSH_MAX, "rope.comp push constants");

/* shaders/act.comp */
typedef struct {
  uint32_t x_off, y_off;
  uint32_t rows, cols, ldx, ldy, kind;
} ts_vk_act_push;
_Static_assert (sizeof (ts_vk_act_push) <= TS_VK_PUSH_MAX, "act.comp push constants");

/* shaders/elementwise.comp */
typedef struct {
  uint32_t a_off, b_off, y_off, g_off;
  uint32_t rows, cols, lda, ldb, ldy, rows_per_batch, gate_stride, kind;
  float s;
} ts_vk_elementwise_push;
_Static_assert (sizeof (ts_vk_elementwise_push) <= TS_VK_PUSH_MAX,
                "elementwise.comp push constants");

/* shaders/transpose.comp */
typedef struct {
  uint32_t x_off, y_off;
  uint32_t batch, rows, cols, ldx, ldy;
} ts_vk_transpose_push;
_Static_assert (sizeof (ts_vk_transpose_push) <= TS_VK_PUSH_MAX, "transpose.comp push constants");

/* shaders/conv2d.comp, both modes (specialization constant 1: 0 = conv2d,
 * 1 = conv_transpose2d with kh = kw = stride = k and h_out = h * k). The dispatch computes
 * the items g0 <= g < g1 of each output plane (pixels, or runs of 4 pixels in the
 * lane-sharing form). */
typedef struct {
  uint32_t x_off, w_off, b_off, y_off;
  uint32_t batch, c_in, h, w_in, c_out, h_out, w_out;
  uint32_t kh, kw, stride, pad_top, pad_left, has_bias;
  uint32_t g0, g1;
} ts_vk_conv2d_push;
_Static_assert (sizeof (ts_vk_conv2d_push) <= TS_VK_PUSH_MAX, "conv2d.comp push constants");

/* shaders/group_norm.comp. The dispatch normalises the elements i0 <= i < i1 of every
 * (batch, group) pair (c / groups x hw of them; all of them when it computes
 * statistics). */
typedef struct {
  uint32_t x_off, y_off, w_off, b_off, s_off;
  uint32_t batch, c, hw, groups, has_w, has_b, silu, pass;
  float eps, hw_done;
  uint32_t i0, i1;
} ts_vk_group_norm_push;
_Static_assert (sizeof (ts_vk_group_norm_push) <= TS_VK_PUSH_MAX,
                "group_norm.comp push constants");

/* shaders/upsample.comp */
typedef struct {
  uint32_t x_off, y_off;
  uint32_t batch, c, h, w;
} ts_vk_upsample_push;
_Static_assert (sizeof (ts_vk_upsample_push) <= TS_VK_PUSH_MAX, "upsample.comp push constants");

/* shaders/embed.comp (and its embed_w16 variant) */
typedef struct {
  uint32_t t_off, ids_off, y_off;
  uint32_t n, dim, n_rows;
} ts_vk_embed_push;
_Static_assert (sizeof (ts_vk_embed_push) <= TS_VK_PUSH_MAX, "embed.comp push constants");

/* shaders/sample.comp */
typedef struct {
  uint32_t l_off, s_off, dc_off, dg_off, c_off, f_off, lc_off;
  uint32_t codebook, n_tokens, n_rows, mask_id, noise, recorded;
  uint32_t seed_lo, seed_hi, image, step;
  float guidance, temperature;
} ts_vk_sample_push;
_Static_assert (sizeof (ts_vk_sample_push) <= TS_VK_PUSH_MAX, "sample.comp push constants");

#endif /* TS_VK_KERNELS_H */
