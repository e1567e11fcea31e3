/* SPDX-License-Identifier: MIT
 *
 * ts-backend-ops — the calls stages make on a backend (ts-backend.h: ts_op_*, the buffer
 * and weight calls, sync). Each one runs the argument check of ts-op-check.h and only then
 * goes through the vtable, so the checks sit above the backends, written once: a backend
 * never sees arguments that would make it touch memory outside its buffers.
 */
#include "backend/ts-backend.h"
#include "core/ts-common.h"
#include "backend/ts-op-check.h"

#include <string.h>

ts_buffer *
ts_buffer_new (const ts_backend *be, size_t size_bytes, ts_error *err)
{
  return be->ops->buffer_new (be->impl, size_bytes, err);
}

void
ts_buffer_free (const ts_backend *be, ts_buffer *buf)
{
  if (buf)
    be->ops->buffer_free (be->impl, buf);
}

ts_status
ts_buffer_upload (const ts_backend *be, ts_ref dst, const void *src, size_t size_bytes,
                  ts_error *err)
{
  ts_status st = ts_op_check_transfer ("upload", dst, src, size_bytes, err);
  return st != TS_OK ? st : be->ops->upload (be->impl, dst, src, size_bytes, err);
}

ts_status
ts_buffer_download (const ts_backend *be, ts_ref src, void *dst, size_t size_bytes,
                    ts_error *err)
{
  ts_status st = ts_op_check_transfer ("download", src, dst, size_bytes, err);
  return st != TS_OK ? st : be->ops->download (be->impl, src, dst, size_bytes, err);
}

ts_status
ts_weight_upload (const ts_backend *be, ts_weight *w, const char *name, ts_dtype src_dtype,
                  const void *data, int n_dims, const int64_t *shape, ts_error *err)
{
  ts_status st;

  if (w)
    memset (w, 0, sizeof *w);
  st = ts_op_check_weight_upload (w, name, src_dtype, data, n_dims, shape, err);
  return st != TS_OK ? st
                     : be->ops->weight_upload (be->impl, w, name, src_dtype, data, n_dims, shape,
                                               err);
}

void
ts_weight_free (const ts_backend *be, ts_weight *w)
{
  if (w)
    be->ops->weight_free (be->impl, w);
}

ts_status
ts_backend_sync (const ts_backend *be, ts_error *err)
{
  return be->ops->sync (be->impl, err);
}

const char *
ts_backend_name (const ts_backend *be)
{
  return be->ops->name;
}

size_t
ts_backend_max_operand_bytes (const ts_backend *be)
{
  return be->ops->max_operand_bytes (be->impl);
}

bool
ts_backend_device_memory (const ts_backend *be, uint64_t *in_use, uint64_t *peak)
{
  *in_use = *peak = 0;
  if (!be->ops->device_memory)
    return false;
  be->ops->device_memory (be->impl, in_use, peak);
  return true;
}

/* Every op: its check, then the backend. */
#define TS_OP(NAME, ARGS)                                                                    \
  ts_status ts_op_##NAME (const ts_backend *be, const ARGS *a, ts_error *err)                \
  {                                                                                          \
    ts_status st = ts_op_check_##NAME (a, err);                                              \
    return st != TS_OK ? st : be->ops->NAME (be->impl, a, err);                              \
  }

TS_OP (matmul, ts_matmul_args)
TS_OP (norm, ts_norm_args)
TS_OP (softmax, ts_softmax_args)
TS_OP (attention, ts_attention_args)
TS_OP (rope, ts_rope_args)
TS_OP (act, ts_act_args)
TS_OP (elementwise, ts_elementwise_args)
TS_OP (transpose, ts_transpose_args)
TS_OP (conv2d, ts_conv2d_args)
TS_OP (conv_transpose2d, ts_conv_transpose2d_args)
TS_OP (group_norm, ts_group_norm_args)
TS_OP (upsample, ts_upsample_args)
TS_OP (embed, ts_embed_args)
TS_OP (sample, ts_sample_args)

void
ts_backend_set_abort (const ts_backend *be, ts_should_abort_fn fn, void *data)
{
  if (be->ops->abort_set)
    be->ops->abort_set (be->impl, fn, data);
}

bool
ts_backend_batch_invariant (const ts_backend *be)
{
  return be->ops->batch_invariant;
}

ts_status
ts_backend_set_precision (const ts_backend *be, ts_precision requested, ts_precision *resolved,
                          ts_error *err)
{
  if (be->ops->precision_set)
    return be->ops->precision_set (be->impl, requested, resolved, err);
  if (requested == TS_PRECISION_BF16)
    return ts_error_set (err, TS_ERR_UNSUPPORTED,
                         "%s: precision bf16 is a CPU mode; this backend computes fp32 only",
                         be->ops->name);
  if (resolved)
    *resolved = TS_PRECISION_FP32;
  return TS_OK;
}

ts_precision
ts_backend_precision (const ts_backend *be)
{
  return be->ops->precision_get ? be->ops->precision_get (be->impl) : TS_PRECISION_FP32;
}
