/* SPDX-License-Identifier: MIT
 *
 * ts-op-check — the argument checks of every op, transfer and weight upload, run by the
 * wrappers of ts-backend-ops.c before any backend sees the arguments. See ts-op-check.h.
 */
#include "backend/ts-op-check.h"
#include "core/ts-common.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

/* ---- building blocks ---- */

/* Fails unless every value is >= 0, naming the first negative one. `names` is a
 * comma-separated list matching the values ("m,n,k"). */
static ts_status
check_sizes (const char *op, const char *names, const int64_t *values, int n, ts_error *err)
{
  const char *name = names;

  for (int i = 0; i < n; i++) {
    const char *comma = strchr (name, ',');
    int len = comma ? (int) (comma - name) : (int) strlen (name);
    if (values[i] < 0)
      return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %.*s = %lld is negative", op, len,
                           name, (long long) values[i]);
    name = comma ? comma + 1 : name + len;
  }
  return TS_OK;
}

/* Checks a strided region of `elem_size`-byte elements at r: `n_dims` dimensions with
 * counts[i] elements `strides[i]` elements apart (the innermost stride is normally 1).
 * Counts and strides must be >= 0; nothing is accessed when a count is 0, but the ref must
 * still be present. Fails when the last byte touched lies outside the buffer or the offset
 * is not a multiple of elem_size. */
static ts_status
check_region (const char *op, const char *arg, ts_ref r, size_t elem_size, int n_dims,
              const int64_t *counts, const int64_t *strides, ts_error *err)
{
  uint64_t last = 0; /* index of the last element touched */
  size_t end;

  if (!r.buf)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %s is absent (NULL buffer)", op, arg);
  if (r.offset % elem_size != 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "%s: %s offset %zu is not a multiple of the element size %zu", op, arg,
                         r.offset, elem_size);
  for (int i = 0; i < n_dims; i++) {
    uint64_t span;
    if (counts[i] < 0 || strides[i] < 0)
      return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %s has a negative size or stride",
                           op, arg);
    if (counts[i] == 0)
      return TS_OK;
    if (__builtin_mul_overflow ((uint64_t) (counts[i] - 1), (uint64_t) strides[i], &span)
        || __builtin_add_overflow (last, span, &last))
      goto too_big;
  }
  if (last >= SIZE_MAX || !ts_mul_size ((size_t) last + 1, elem_size, &end)
      || !ts_add_size (end, r.offset, &end))
    goto too_big;
  if (end > r.buf->size)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "%s: %s needs bytes [%zu, %zu) but its buffer holds %zu bytes", op, arg,
                         r.offset, end, r.buf->size);
  return TS_OK;

too_big:
  return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %s: extent overflows the address space", op,
                       arg);
}

/* batch x rows x cols F32 tensor with batch stride bs (>= 0) and row stride ld (>= cols). */
static ts_status
check_batched (const char *op, const char *arg, ts_ref r, int64_t batch, int64_t bs,
               int64_t rows, int64_t cols, int64_t ld, ts_error *err)
{
  int64_t counts[3] = { batch, rows, cols };
  int64_t strides[3] = { bs, ld, 1 };

  if (ld < cols)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "%s: %s row stride %lld is smaller than its %lld columns", op, arg,
                         (long long) ld, (long long) cols);
  if (bs < 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %s batch stride %lld is negative", op,
                         arg, (long long) bs);
  return check_region (op, arg, r, sizeof (float), 3, counts, strides, err);
}

/* rows x cols F32 matrix with row stride ld (>= cols). */
static ts_status
check_matrix (const char *op, const char *arg, ts_ref r, int64_t rows, int64_t cols,
              int64_t ld, ts_error *err)
{
  return check_batched (op, arg, r, 1, 0, rows, cols, ld, err);
}

/* A dense (contiguous) F32 tensor with dimensions dims[0..n_dims). */
static ts_status
check_dense (const char *op, const char *arg, ts_ref r, int n_dims, const int64_t *dims,
             ts_error *err)
{
  int64_t total = 1, stride = 1;

  for (int i = 0; i < n_dims; i++) {
    if (dims[i] < 0)
      return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %s has a negative dimension", op, arg);
    if (__builtin_mul_overflow (total, dims[i], &total))
      return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: %s: size overflows", op, arg);
  }
  return check_region (op, arg, r, sizeof (float), 1, &total, &stride, err);
}

/* A weight of exactly n_elements elements whose storage (F32, F16 or BF16) fits its
 * buffer. Optional weights are checked by the caller only when non-NULL. */
static ts_status
check_weight (const char *op, const char *arg, const ts_weight *w, int64_t n_elements,
              ts_error *err)
{
  size_t need;
  const char *name;

  if (!w)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: weight %s is NULL", op, arg);
  name = w->name ? w->name : "(unnamed)";
  if (!w->buf)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: weight %s '%s' has no buffer", op, arg,
                         name);
  if (w->dtype != TS_DTYPE_F32 && w->dtype != TS_DTYPE_F16 && w->dtype != TS_DTYPE_BF16)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: weight %s '%s' is stored as %s", op, arg,
                         name, ts_dtype_name (w->dtype) ? ts_dtype_name (w->dtype) : "?");
  if (w->n_elements != n_elements)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "%s: weight %s '%s' has %lld elements, the op needs %lld", op, arg,
                         name, (long long) w->n_elements, (long long) n_elements);
  if (n_elements < 0 || !ts_mul_size ((size_t) n_elements, ts_dtype_size (w->dtype), &need)
      || need > w->buf->size)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: weight %s '%s' does not fit its buffer",
                         op, arg, name);
  return TS_OK;
}

static const char *
weight_label (const ts_weight *w)
{
  return w->name ? w->name : "(unnamed)";
}

static const char *
ew_name (ts_ew_kind kind)
{
  switch (kind) {
  case TS_EW_ADD: return "elementwise(add)";
  case TS_EW_MUL: return "elementwise(mul)";
  case TS_EW_GATED_ADD: return "elementwise(gated_add)";
  case TS_EW_CFG: return "elementwise(cfg)";
  case TS_EW_COPY: return "elementwise(copy)";
  case TS_EW_BIAS_ADD: return "elementwise(bias_add)";
  }
  return "elementwise";
}

/* ---- the ops ---- */

ts_status
ts_op_check_matmul (const ts_matmul_args *a, ts_error *err)
{
  int64_t sizes[5];
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "matmul: args is NULL");
  sizes[0] = a->m, sizes[1] = a->n, sizes[2] = a->k, sizes[3] = a->ldx, sizes[4] = a->ldy;
  if ((st = check_sizes ("matmul", "m,n,k,ldx,ldy", sizes, 5, err)) != TS_OK
      || (st = check_matrix ("matmul", "x", a->x, a->m, a->k, a->ldx, err)) != TS_OK
      || (st = check_matrix ("matmul", "y", a->y, a->m, a->n, a->ldy, err)) != TS_OK)
    return st;
  if (a->k > 0 && a->n > INT64_MAX / a->k)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "matmul: n * k overflows");
  if ((st = check_weight ("matmul", "w", a->w, a->n * a->k, err)) != TS_OK)
    return st;
  if (a->w->n_dims >= 2 && a->w->shape[0] != a->n)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "matmul: weight '%s' has %lld rows (outputs), the op needs n = %lld",
                         a->w->name ? a->w->name : "(unnamed)", (long long) a->w->shape[0],
                         (long long) a->n);
  if (a->bias && (st = check_weight ("matmul", "bias", a->bias, a->n, err)) != TS_OK)
    return st;
  return TS_OK;
}

ts_status
ts_op_check_norm (const ts_norm_args *a, ts_error *err)
{
  int64_t sizes[4];
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "norm: args is NULL");
  if (a->kind != TS_NORM_LAYER && a->kind != TS_NORM_RMS)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "norm: unknown kind %d", (int) a->kind);
  sizes[0] = a->rows, sizes[1] = a->dim, sizes[2] = a->ldx, sizes[3] = a->ldy;
  if ((st = check_sizes ("norm", "rows,dim,ldx,ldy", sizes, 4, err)) != TS_OK
      || (st = check_matrix ("norm", "x", a->x, a->rows, a->dim, a->ldx, err)) != TS_OK
      || (st = check_matrix ("norm", "y", a->y, a->rows, a->dim, a->ldy, err)) != TS_OK)
    return st;
  if (a->weight && (st = check_weight ("norm", "weight", a->weight, a->dim, err)) != TS_OK)
    return st;
  if (a->bias && (st = check_weight ("norm", "bias", a->bias, a->dim, err)) != TS_OK)
    return st;
  if (!a->shift.buf != !a->scale.buf)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "norm: shift and scale must be both present or both absent");
  if (a->shift.buf) {
    int64_t n_batches;
    if (a->rows_per_batch <= 0)
      return ts_error_set (err, TS_ERR_INVALID_ARG,
                           "norm: rows_per_batch = %lld must be positive with a modulation",
                           (long long) a->rows_per_batch);
    n_batches = a->rows / a->rows_per_batch + (a->rows % a->rows_per_batch != 0);
    if ((st = check_matrix ("norm", "shift", a->shift, n_batches, a->dim, a->mod_stride, err))
            != TS_OK
        || (st = check_matrix ("norm", "scale", a->scale, n_batches, a->dim, a->mod_stride,
                               err))
               != TS_OK)
      return st;
  }
  return TS_OK;
}

ts_status
ts_op_check_softmax (const ts_softmax_args *a, ts_error *err)
{
  int64_t sizes[2];
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "softmax: args is NULL");
  sizes[0] = a->rows, sizes[1] = a->dim;
  if ((st = check_sizes ("softmax", "rows,dim", sizes, 2, err)) != TS_OK)
    return st;
  return check_matrix ("softmax", "x", a->x, a->rows, a->dim, a->dim, err);
}

ts_status
ts_op_check_attention (const ts_attention_args *a, ts_error *err)
{
  int64_t sizes[13], width;
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "attention: args is NULL");
  sizes[0] = a->batch, sizes[1] = a->heads, sizes[2] = a->seq_q, sizes[3] = a->seq_kv;
  sizes[4] = a->d_head, sizes[5] = a->ldq, sizes[6] = a->ldk, sizes[7] = a->ldv;
  sizes[8] = a->ldo, sizes[9] = a->bs_q, sizes[10] = a->bs_k, sizes[11] = a->bs_v;
  sizes[12] = a->bs_o;
  if ((st = check_sizes ("attention",
                         "batch,heads,seq_q,seq_kv,d_head,ldq,ldk,ldv,ldo,bs_q,bs_k,bs_v,bs_o",
                         sizes, 13, err))
      != TS_OK)
    return st;
  if (__builtin_mul_overflow (a->heads, a->d_head, &width))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "attention: heads * d_head overflows");
  if (a->seq_kv == 0 && a->seq_q > 0 && width > 0 && a->batch > 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "attention: seq_kv is 0 (nothing to attend)");
  if ((st = check_batched ("attention", "q", a->q, a->batch, a->bs_q, a->seq_q, width, a->ldq,
                           err))
          != TS_OK
      || (st = check_batched ("attention", "k", a->k, a->batch, a->bs_k, a->seq_kv, width,
                              a->ldk, err))
             != TS_OK
      || (st = check_batched ("attention", "v", a->v, a->batch, a->bs_v, a->seq_kv, width,
                              a->ldv, err))
             != TS_OK
      || (st = check_batched ("attention", "out", a->out, a->batch, a->bs_o, a->seq_q, width,
                              a->ldo, err))
             != TS_OK)
    return st;
  return TS_OK;
}

ts_status
ts_op_check_rope (const ts_rope_args *a, ts_error *err)
{
  int64_t sizes[6], width;
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "rope: args is NULL");
  sizes[0] = a->batch, sizes[1] = a->seq, sizes[2] = a->heads, sizes[3] = a->d_head;
  sizes[4] = a->ldx, sizes[5] = a->bs_x;
  if ((st = check_sizes ("rope", "batch,seq,heads,d_head,ldx,bs_x", sizes, 6, err)) != TS_OK)
    return st;
  if (a->d_head % 2 != 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "rope: d_head = %lld is odd",
                         (long long) a->d_head);
  if (__builtin_mul_overflow (a->heads, a->d_head, &width))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "rope: heads * d_head overflows");
  if ((st = check_batched ("rope", "x", a->x, a->batch, a->bs_x, a->seq, width, a->ldx, err))
          != TS_OK
      || (st = check_matrix ("rope", "cos", a->cos, a->seq, a->d_head, a->d_head, err))
             != TS_OK
      || (st = check_matrix ("rope", "sin", a->sin, a->seq, a->d_head, a->d_head, err))
             != TS_OK)
    return st;
  return TS_OK;
}

ts_status
ts_op_check_act (const ts_act_args *a, ts_error *err)
{
  int64_t sizes[4];
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "act: args is NULL");
  if (a->kind != TS_ACT_SILU && a->kind != TS_ACT_GELU_TANH && a->kind != TS_ACT_GELU_ERF)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "act: unknown kind %d", (int) a->kind);
  sizes[0] = a->rows, sizes[1] = a->cols, sizes[2] = a->ldx, sizes[3] = a->ldy;
  if ((st = check_sizes ("act", "rows,cols,ldx,ldy", sizes, 4, err)) != TS_OK
      || (st = check_matrix ("act", "x", a->x, a->rows, a->cols, a->ldx, err)) != TS_OK
      || (st = check_matrix ("act", "y", a->y, a->rows, a->cols, a->ldy, err)) != TS_OK)
    return st;
  return TS_OK;
}

ts_status
ts_op_check_elementwise (const ts_elementwise_args *a, ts_error *err)
{
  int64_t sizes[5];
  const char *op;
  bool need_b, need_gate;
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "elementwise: args is NULL");
  if (a->kind != TS_EW_ADD && a->kind != TS_EW_MUL && a->kind != TS_EW_GATED_ADD
      && a->kind != TS_EW_CFG && a->kind != TS_EW_COPY && a->kind != TS_EW_BIAS_ADD)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "elementwise: unknown kind %d", (int) a->kind);
  op = ew_name (a->kind);
  need_b = a->kind == TS_EW_ADD || a->kind == TS_EW_MUL || a->kind == TS_EW_GATED_ADD
           || a->kind == TS_EW_CFG;
  need_gate = a->kind == TS_EW_GATED_ADD || a->kind == TS_EW_BIAS_ADD;
  sizes[0] = a->rows, sizes[1] = a->cols, sizes[2] = a->lda, sizes[3] = a->ldy;
  sizes[4] = need_b ? a->ldb : 0;
  if ((st = check_sizes (op, "rows,cols,lda,ldy,ldb", sizes, 5, err)) != TS_OK
      || (st = check_matrix (op, "a", a->a, a->rows, a->cols, a->lda, err)) != TS_OK
      || (st = check_matrix (op, "y", a->y, a->rows, a->cols, a->ldy, err)) != TS_OK)
    return st;
  if (need_b && (st = check_matrix (op, "b", a->b, a->rows, a->cols, a->ldb, err)) != TS_OK)
    return st;
  if (need_gate) {
    int64_t n_batches;
    if (a->rows_per_batch <= 0)
      return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: rows_per_batch = %lld must be positive",
                           op, (long long) a->rows_per_batch);
    n_batches = a->rows / a->rows_per_batch + (a->rows % a->rows_per_batch != 0);
    if ((st = check_matrix (op, "gate", a->gate, n_batches, a->cols, a->gate_stride, err))
        != TS_OK)
      return st;
  }
  return TS_OK;
}

ts_status
ts_op_check_transpose (const ts_transpose_args *a, ts_error *err)
{
  int64_t dims[3];
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "transpose: args is NULL");
  dims[0] = a->batch, dims[1] = a->rows, dims[2] = a->cols;
  if ((st = check_sizes ("transpose", "batch,rows,cols", dims, 3, err)) != TS_OK
      || (st = check_dense ("transpose", "x", a->x, 3, dims, err)) != TS_OK
      || (st = check_dense ("transpose", "y", a->y, 3, dims, err)) != TS_OK)
    return st;
  return TS_OK;
}

ts_status
ts_op_check_conv2d (const ts_conv2d_args *a, ts_error *err)
{
  int64_t sizes[7], dims[4], kernel[4], n_w, h_exp, w_exp;
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "conv2d: args is NULL");
  sizes[0] = a->batch, sizes[1] = a->c_in, sizes[2] = a->h, sizes[3] = a->w_in;
  sizes[4] = a->c_out, sizes[5] = a->h_out, sizes[6] = a->w_out;
  if ((st = check_sizes ("conv2d", "batch,c_in,h,w_in,c_out,h_out,w_out", sizes, 7, err))
      != TS_OK)
    return st;
  if (a->kh < 1 || a->kw < 1 || a->stride < 1)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "conv2d: kernel %dx%d and stride %d must be positive", a->kh, a->kw,
                         a->stride);
  if (a->pad_top < 0 || a->pad_left < 0 || a->pad_bottom < 0 || a->pad_right < 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "conv2d: negative padding");
  if (a->h > INT64_MAX / 4 || a->w_in > INT64_MAX / 4)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "conv2d: input too large");
  h_exp = a->h + a->pad_top + a->pad_bottom - a->kh;
  w_exp = a->w_in + a->pad_left + a->pad_right - a->kw;
  if (h_exp < 0 || w_exp < 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "conv2d: kernel %dx%d is larger than the padded %lldx%lld input", a->kh,
                         a->kw, (long long) (a->h + a->pad_top + a->pad_bottom),
                         (long long) (a->w_in + a->pad_left + a->pad_right));
  h_exp = h_exp / a->stride + 1;
  w_exp = w_exp / a->stride + 1;
  if (a->h_out != h_exp || a->w_out != w_exp)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "conv2d: output %lldx%lld given, the geometry gives %lldx%lld",
                         (long long) a->h_out, (long long) a->w_out, (long long) h_exp,
                         (long long) w_exp);
  dims[0] = a->batch, dims[1] = a->c_in, dims[2] = a->h, dims[3] = a->w_in;
  if ((st = check_dense ("conv2d", "x", a->x, 4, dims, err)) != TS_OK)
    return st;
  dims[1] = a->c_out, dims[2] = a->h_out, dims[3] = a->w_out;
  if ((st = check_dense ("conv2d", "y", a->y, 4, dims, err)) != TS_OK)
    return st;
  kernel[0] = a->c_out, kernel[1] = a->c_in, kernel[2] = a->kh, kernel[3] = a->kw;
  if (__builtin_mul_overflow (a->c_out, a->c_in, &n_w)
      || __builtin_mul_overflow (n_w, (int64_t) a->kh * a->kw, &n_w))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "conv2d: weight size overflows");
  if ((st = check_weight ("conv2d", "w", a->w, n_w, err)) != TS_OK)
    return st;
  if (a->w->n_dims == 4) {
    for (int i = 0; i < 4; i++)
      if (a->w->shape[i] != kernel[i])
        return ts_error_set (err, TS_ERR_INVALID_ARG,
                             "conv2d: weight '%s' is [%lld, %lld, %lld, %lld], the op needs "
                             "[c_out %lld, c_in %lld, %lld, %lld]",
                             weight_label (a->w), (long long) a->w->shape[0],
                             (long long) a->w->shape[1], (long long) a->w->shape[2],
                             (long long) a->w->shape[3], (long long) kernel[0],
                             (long long) kernel[1], (long long) kernel[2], (long long) kernel[3]);
  }
  if (a->bias && (st = check_weight ("conv2d", "bias", a->bias, a->c_out, err)) != TS_OK)
    return st;
  return TS_OK;
}

ts_status
ts_op_check_conv_transpose2d (const ts_conv_transpose2d_args *a, ts_error *err)
{
  int64_t sizes[5], dims[4], kernel[4], n_w;
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "conv_transpose2d: args is NULL");
  sizes[0] = a->batch, sizes[1] = a->c_in, sizes[2] = a->h, sizes[3] = a->w_in;
  sizes[4] = a->c_out;
  if ((st = check_sizes ("conv_transpose2d", "batch,c_in,h,w_in,c_out", sizes, 5, err))
      != TS_OK)
    return st;
  if (a->k < 1)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "conv_transpose2d: k = %d must be positive",
                         a->k);
  dims[0] = a->batch, dims[1] = a->c_in, dims[2] = a->h, dims[3] = a->w_in;
  if ((st = check_dense ("conv_transpose2d", "x", a->x, 4, dims, err)) != TS_OK)
    return st;
  if (__builtin_mul_overflow (a->h, (int64_t) a->k, &dims[2])
      || __builtin_mul_overflow (a->w_in, (int64_t) a->k, &dims[3]))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "conv_transpose2d: output size overflows");
  dims[1] = a->c_out;
  if ((st = check_dense ("conv_transpose2d", "y", a->y, 4, dims, err)) != TS_OK)
    return st;
  kernel[0] = a->c_in, kernel[1] = a->c_out, kernel[2] = a->k, kernel[3] = a->k;
  if (__builtin_mul_overflow (a->c_in, a->c_out, &n_w)
      || __builtin_mul_overflow (n_w, (int64_t) a->k * a->k, &n_w))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "conv_transpose2d: weight size overflows");
  if ((st = check_weight ("conv_transpose2d", "w", a->w, n_w, err)) != TS_OK)
    return st;
  if (a->w->n_dims == 4) {
    for (int i = 0; i < 4; i++)
      if (a->w->shape[i] != kernel[i])
        return ts_error_set (err, TS_ERR_INVALID_ARG,
                             "conv_transpose2d: weight '%s' is [%lld, %lld, %lld, %lld], the op "
                             "needs [c_in %lld, c_out %lld, %lld, %lld]",
                             weight_label (a->w), (long long) a->w->shape[0],
                             (long long) a->w->shape[1], (long long) a->w->shape[2],
                             (long long) a->w->shape[3], (long long) kernel[0],
                             (long long) kernel[1], (long long) kernel[2], (long long) kernel[3]);
  }
  if (a->bias
      && (st = check_weight ("conv_transpose2d", "bias", a->bias, a->c_out, err)) != TS_OK)
    return st;
  return TS_OK;
}

ts_status
ts_op_check_group_norm (const ts_group_norm_args *a, ts_error *err)
{
  int64_t dims[3];
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "group_norm: args is NULL");
  if (a->pass != TS_GN_FULL && a->pass != TS_GN_STATS && a->pass != TS_GN_APPLY)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "group_norm: unknown pass %d", (int) a->pass);
  dims[0] = a->batch, dims[1] = a->c, dims[2] = a->hw;
  if ((st = check_sizes ("group_norm", "batch,c,hw", dims, 3, err)) != TS_OK)
    return st;
  if (a->groups < 1 || a->c % a->groups != 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "group_norm: %d groups do not divide %lld channels", a->groups,
                         (long long) a->c);
  if ((st = check_dense ("group_norm", "x", a->x, 3, dims, err)) != TS_OK)
    return st;
  if (a->pass != TS_GN_STATS
      && (st = check_dense ("group_norm", "y", a->y, 3, dims, err)) != TS_OK)
    return st;
  if (a->pass != TS_GN_FULL) {
    int64_t sdims[3] = { a->batch, a->groups, 2 };
    if ((st = check_dense ("group_norm", "stats", a->stats, 3, sdims, err)) != TS_OK)
      return st;
  }
  if (a->pass == TS_GN_STATS && a->hw_done < 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "group_norm: hw_done %lld is negative",
                         (long long) a->hw_done);
  if (a->weight && (st = check_weight ("group_norm", "weight", a->weight, a->c, err)) != TS_OK)
    return st;
  if (a->bias && (st = check_weight ("group_norm", "bias", a->bias, a->c, err)) != TS_OK)
    return st;
  return TS_OK;
}

ts_status
ts_op_check_upsample (const ts_upsample_args *a, ts_error *err)
{
  int64_t dims[4];
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "upsample: args is NULL");
  dims[0] = a->batch, dims[1] = a->c, dims[2] = a->h, dims[3] = a->w;
  if ((st = check_sizes ("upsample", "batch,c,h,w", dims, 4, err)) != TS_OK
      || (st = check_dense ("upsample", "x", a->x, 4, dims, err)) != TS_OK)
    return st;
  if (a->h > INT64_MAX / 2 || a->w > INT64_MAX / 2)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "upsample: output size overflows");
  dims[2] = 2 * a->h, dims[3] = 2 * a->w;
  return check_dense ("upsample", "y", a->y, 4, dims, err);
}

ts_status
ts_op_check_embed (const ts_embed_args *a, ts_error *err)
{
  int64_t sizes[2], one = 1, n_elements;
  const char *name;
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "embed: args is NULL");
  sizes[0] = a->n, sizes[1] = a->dim;
  if ((st = check_sizes ("embed", "n,dim", sizes, 2, err)) != TS_OK)
    return st;
  if (!a->table)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "embed: table is NULL");
  name = a->table->name ? a->table->name : "(unnamed)";
  if (a->table->n_dims != 2 || a->table->shape[1] != a->dim)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "embed: table '%s' must be [n_rows, dim = %lld] (it has %d dimensions, "
                         "last %lld)",
                         name, (long long) a->dim, a->table->n_dims,
                         (long long) a->table->shape[a->table->n_dims >= 1 && a->table->n_dims <= 4
                                                         ? a->table->n_dims - 1
                                                         : 0]);
  if (__builtin_mul_overflow (a->table->shape[0], a->dim, &n_elements))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "embed: table '%s' size overflows", name);
  if ((st = check_weight ("embed", "table", a->table, n_elements, err)) != TS_OK
      || (st = check_region ("embed", "ids", a->ids, sizeof (int32_t), 1, &a->n, &one, err))
             != TS_OK
      || (st = check_matrix ("embed", "y", a->y, a->n, a->dim, a->dim, err)) != TS_OK)
    return st;
  return TS_OK;
}

ts_status
ts_op_check_sample (const ts_sample_args *a, ts_error *err)
{
  int64_t sizes[2], one = 1, dims[3];
  ts_status st;

  if (!a)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sample: args is NULL");
  sizes[0] = a->codebook_size, sizes[1] = a->n_tokens;
  if ((st = check_sizes ("sample", "codebook_size,n_tokens", sizes, 2, err)) != TS_OK)
    return st;
  if (a->codebook_size < 1 || a->codebook_size > INT_MAX || a->n_tokens < 1
      || a->n_tokens > INT_MAX)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sample: codebook_size %lld and n_tokens "
                         "%lld must be 1 to %d", (long long) a->codebook_size,
                         (long long) a->n_tokens, INT_MAX);
  if (a->step_index > INT_MAX)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sample: step index %u is too large",
                         (unsigned) a->step_index);
  if (a->n_rows != 1 && a->n_rows != 2)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sample: n_rows is %d, not 1 or 2 (with "
                         "guidance)", a->n_rows);
  if (a->draw_codes.buf == NULL && a->draw_gumbel.buf != NULL)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "sample: recorded Gumbel noise without "
                         "recorded codes");
  dims[0] = a->n_rows, dims[1] = a->codebook_size, dims[2] = a->n_tokens;
  if ((st = check_dense ("sample", "logits", a->logits, 3, dims, err)) != TS_OK
      || (st = check_region ("sample", "sample", a->sample, sizeof (int32_t), 1, &a->n_tokens,
                             &one, err)) != TS_OK
      || (st = check_region ("sample", "codes", a->codes, sizeof (int32_t), 1, &a->n_tokens,
                             &one, err)) != TS_OK
      || (st = check_dense ("sample", "confidence", a->confidence, 1, &a->n_tokens, err))
             != TS_OK)
    return st;
  if (a->draw_codes.buf
      && ((st = check_region ("sample", "draw_codes", a->draw_codes, sizeof (int32_t), 1,
                              &a->n_tokens, &one, err)) != TS_OK
          || (a->noise
              && (st = check_dense ("sample", "draw_gumbel", a->draw_gumbel, 1, &a->n_tokens,
                                    err)) != TS_OK)))
    return st;
  return TS_OK;
}

/* ---- transfers and weights ---- */

ts_status
ts_op_check_transfer (const char *op, ts_ref r, const void *host, size_t size_bytes,
                      ts_error *err)
{
  size_t end;

  if (!r.buf)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: buffer is NULL", op);
  if (!host && size_bytes > 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: host pointer is NULL", op);
  if (!ts_add_size (r.offset, size_bytes, &end) || end > r.buf->size)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "%s: %zu bytes at offset %zu exceed the buffer's %zu bytes", op,
                         size_bytes, r.offset, r.buf->size);
  return TS_OK;
}

ts_status
ts_op_check_weight_upload (const ts_weight *w, const char *name, ts_dtype src_dtype,
                           const void *data, int n_dims, const int64_t *shape, ts_error *err)
{
  const char *label = name ? name : "(unnamed)";
  int64_t n = 1;

  if (!w)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "weight_upload: '%s': weight is NULL", label);
  if (src_dtype != TS_DTYPE_F32 && src_dtype != TS_DTYPE_F16 && src_dtype != TS_DTYPE_BF16)
    return ts_error_set (err, TS_ERR_UNSUPPORTED,
                         "weight_upload: '%s': dtype %s is not F32, F16 or BF16", label,
                         ts_dtype_name (src_dtype) ? ts_dtype_name (src_dtype) : "?");
  if (n_dims < 1 || n_dims > 4 || !shape)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "weight_upload: '%s': %d dimensions (1 to 4)",
                         label, n_dims);
  for (int i = 0; i < n_dims; i++)
    if (shape[i] < 0 || __builtin_mul_overflow (n, shape[i], &n))
      return ts_error_set (err, TS_ERR_INVALID_ARG, "weight_upload: '%s': bad shape", label);
  if (!data && n > 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "weight_upload: '%s': data is NULL", label);
  return TS_OK;
}
