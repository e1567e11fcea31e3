/* SPDX-License-Identifier: MIT
 *
 * ts-op-check — the argument checks of every op and transfer of ts-backend.h, written once
 * above the backends. The ts_op_* wrappers and the buffer and weight calls
 * (ts-backend-ops.c) run them before a backend sees the arguments, so every backend refuses
 * exactly the same arguments with the same messages, and a backend may assume what they
 * establish: refs present, sizes and strides non-negative, strides at least a row, offsets
 * aligned to the element, every byte an op touches inside its buffer (overflow-checked),
 * weights of the right size in a dtype backends store (F32, F16, BF16), kinds and passes
 * known. A failure is TS_ERR_INVALID_ARG with a message naming the op and the argument
 * ("matmul: x needs bytes [0, 4096) but its buffer holds 2048 bytes").
 *
 * What the checks cannot know stays with the backends: the data (embed's ids against the
 * table, the sampler's finite logits) and device limits (Vulkan's attention head size,
 * workgroup counts, bindings).
 */
#ifndef TS_OP_CHECK_H
#define TS_OP_CHECK_H

#include "backend/ts-backend.h"

ts_status ts_op_check_matmul (const ts_matmul_args *a, ts_error *err);
ts_status ts_op_check_norm (const ts_norm_args *a, ts_error *err);
ts_status ts_op_check_softmax (const ts_softmax_args *a, ts_error *err);
ts_status ts_op_check_attention (const ts_attention_args *a, ts_error *err);
ts_status ts_op_check_rope (const ts_rope_args *a, ts_error *err);
ts_status ts_op_check_act (const ts_act_args *a, ts_error *err);
ts_status ts_op_check_elementwise (const ts_elementwise_args *a, ts_error *err);
ts_status ts_op_check_transpose (const ts_transpose_args *a, ts_error *err);
ts_status ts_op_check_conv2d (const ts_conv2d_args *a, ts_error *err);
ts_status ts_op_check_conv_transpose2d (const ts_conv_transpose2d_args *a, ts_error *err);
ts_status ts_op_check_group_norm (const ts_group_norm_args *a, ts_error *err);
ts_status ts_op_check_upsample (const ts_upsample_args *a, ts_error *err);
ts_status ts_op_check_embed (const ts_embed_args *a, ts_error *err);
ts_status ts_op_check_sample (const ts_sample_args *a, ts_error *err);

/* An upload or download (`op` names it in messages) of size_bytes between host memory and
 * the buffer bytes at r: the buffer present, the host pointer unless nothing moves, the
 * range inside the buffer. */
ts_status ts_op_check_transfer (const char *op, ts_ref r, const void *host, size_t size_bytes,
                                ts_error *err);

/* A weight upload: w present, src_dtype F32, F16 or BF16 (else TS_ERR_UNSUPPORTED), 1 to 4
 * dimensions with non-negative sizes whose product does not overflow, data present unless
 * the weight is empty. `name` labels messages. */
ts_status ts_op_check_weight_upload (const ts_weight *w, const char *name, ts_dtype src_dtype,
                                     const void *data, int n_dims, const int64_t *shape,
                                     ts_error *err);

#endif /* TS_OP_CHECK_H */
