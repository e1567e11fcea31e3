/* SPDX-License-Identifier: MIT
 *
 * ts-check-backend — the check backend ("check:cpu", "check:vulkan", "check:vulkan:N"),
 * for bringing up a new GPU or driver: it implements ts_backend_ops over two inner
 * backends, the device under test and the CPU reference (cpu-ref), both created through
 * ts-backend.h. Every op runs on the device and then on the reference with the arguments
 * translated to the reference's buffers and weights; each output the op writes is
 * downloaded from both and compared (ts-check-compare.c, whose table gives the per-op
 * tolerances), and the device's output is then copied into the reference's buffer, so
 * the next op starts from identical inputs and every op is judged on its own. The first op
 * out of tolerance fails with TS_ERR_DEVICE and a message naming the op, the stage and
 * layer it came from (ts_backend_scope_set), its shapes and weight, and the worst element.
 * When the backend is freed after a run with no failure, the number of ops checked and the
 * worst relative error per op kind go to the log at INFO.
 *
 * Downloads, sync and max_operand_bytes are the device's; uploads and weights go to both.
 * Everything runs twice and every op waits for the device, so timings with a check
 * backend measure the checking, not the device.
 *
 * Test hook: TESSERA_CHECK_INJECT=OP[:N] (OP a vtable entry such as "matmul", N counting
 * that op's calls from 0, default 0) perturbs the first output element of that call on
 * the device before the comparison, so tests can prove that a wrong result fails with a
 * readable message. It is meant for tests only and logs a warning when it fires.
 */
#include "backend/check/ts-check.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK_MAX_OUTS 2

typedef struct {
  ts_backend_ops ops; /* this instance's vtable: a copy of check_ops with its own name */
  char name[48];      /* "check:vulkan" */
  ts_backend dev;     /* the device under test */
  ts_backend ref;     /* cpu-ref */

  const char *stage; /* ts_backend_scope_set */
  int layer;

  int64_t n_ops;
  int64_t calls[TS_CHECK_N_KINDS];   /* per vtable entry (copies count as elementwise) */
  int64_t checked[TS_CHECK_N_KINDS]; /* per row of the tolerance table */
  double worst[TS_CHECK_N_KINDS];
  int64_t n_near_ties;
  bool failed;

  char inject_op[32]; /* TESSERA_CHECK_INJECT; empty when unset */
  int64_t inject_call;

  void *host[CK_MAX_OUTS]; /* the device's outputs, downloaded */
  size_t host_size[CK_MAX_OUTS];
} ts_check;

/* One op in flight: what it is, where it came from, what it writes. */
typedef struct {
  ts_check_context ctx;
  char where[96];
  char shapes[512];
  ts_check_operand outs[CK_MAX_OUTS];
  int n_outs;
  const ts_sample_args *sample; /* the sample op's arguments (as the stage passed them) */
} ck_op;

/* ---- translating arguments ---- */

static ts_ref
dev_ref (ts_ref r)
{
  ts_ref out = { r.buf ? ((ts_check_buf *) r.buf->impl)->dev : NULL, r.offset };
  return out;
}

static ts_ref
ref_ref (ts_ref r)
{
  ts_ref out = { r.buf ? ((ts_check_buf *) r.buf->impl)->ref : NULL, r.offset };
  return out;
}

/* A weight without a buffer goes through as it is, for the inner backend to refuse. */
static const ts_weight *
dev_w (const ts_weight *w)
{
  return w && w->buf ? &((ts_check_weight *) w->buf->impl)->dev : w;
}

static const ts_weight *
ref_w (const ts_weight *w)
{
  return w && w->buf ? &((ts_check_weight *) w->buf->impl)->ref : w;
}

static const char *
weight_name (const ts_weight *w)
{
  return w && w->name ? w->name : "(unnamed)";
}

/* The reference's bytes at r: cpu-ref memory is always host memory. */
static void *
ref_host (ts_ref r)
{
  ts_buffer *buf = ((ts_check_buf *) r.buf->impl)->ref;
  TS_ASSERT (buf->data);
  return buf->data + r.offset;
}

/* ---- buffers and weights ---- */

static ts_buffer *
ck_buffer_new (void *impl, size_t size_bytes, ts_error *err)
{
  ts_check *ck = impl;
  ts_buffer *buf = calloc (1, sizeof *buf);
  ts_check_buf *cb = calloc (1, sizeof *cb);

  if (!buf || !cb) {
    ts_error_set (err, TS_ERR_NOMEM, "check: cannot allocate a buffer");
    goto fail;
  }
  if (!(cb->dev = ck->dev.ops->buffer_new (ck->dev.impl, size_bytes, err))
      || !(cb->ref = ck->ref.ops->buffer_new (ck->ref.impl, size_bytes, err)))
    goto fail;
  buf->size = size_bytes;
  buf->impl = cb;
  return buf;

fail:
  if (cb && cb->dev)
    ck->dev.ops->buffer_free (ck->dev.impl, cb->dev);
  free (cb);
  free (buf);
  return NULL;
}

static void
ck_buffer_free (void *impl, ts_buffer *buf)
{
  ts_check *ck = impl;
  ts_check_buf *cb;

  if (!buf)
    return;
  cb = buf->impl;
  ck->dev.ops->buffer_free (ck->dev.impl, cb->dev);
  ck->ref.ops->buffer_free (ck->ref.impl, cb->ref);
  free (cb);
  free (buf);
}

static ts_status
ck_upload (void *impl, ts_ref dst, const void *src, size_t size_bytes, ts_error *err)
{
  ts_check *ck = impl;
  ts_status st = ck->dev.ops->upload (ck->dev.impl, dev_ref (dst), src, size_bytes, err);

  if (st != TS_OK)
    return st;
  return ck->ref.ops->upload (ck->ref.impl, ref_ref (dst), src, size_bytes, err);
}

static ts_status
ck_download (void *impl, ts_ref src, void *dst, size_t size_bytes, ts_error *err)
{
  ts_check *ck = impl;

  return ck->dev.ops->download (ck->dev.impl, dev_ref (src), dst, size_bytes, err);
}

/* The stage's ts_weight describes the device's weight; its buffer is a wrapper whose
 * impl holds both backends' weights. */
static ts_status
ck_weight_upload (void *impl, ts_weight *w, const char *name, ts_dtype src_dtype,
                  const void *data, int n_dims, const int64_t *shape, ts_error *err)
{
  ts_check *ck = impl;
  ts_check_weight *cw = NULL;
  ts_buffer *wrap = NULL;
  ts_status st;

  if (!w)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "weight_upload: '%s': weight is NULL",
                         name ? name : "(unnamed)");
  memset (w, 0, sizeof *w);
  cw = calloc (1, sizeof *cw);
  wrap = calloc (1, sizeof *wrap);
  if (!cw || !wrap) {
    st = ts_error_set (err, TS_ERR_NOMEM, "check: weight_upload: '%s': out of memory",
                       name ? name : "(unnamed)");
    goto fail;
  }
  st = ck->dev.ops->weight_upload (ck->dev.impl, &cw->dev, name, src_dtype, data, n_dims, shape,
                                   err);
  if (st != TS_OK)
    goto fail;
  st = ck->ref.ops->weight_upload (ck->ref.impl, &cw->ref, name, src_dtype, data, n_dims, shape,
                                   err);
  if (st != TS_OK) {
    ck->dev.ops->weight_free (ck->dev.impl, &cw->dev);
    goto fail;
  }
  wrap->size = cw->dev.buf ? cw->dev.buf->size : 0;
  wrap->impl = cw;
  *w = cw->dev;
  w->buf = wrap;
  return TS_OK;

fail:
  free (cw);
  free (wrap);
  return st;
}

static void
ck_weight_free (void *impl, ts_weight *w)
{
  ts_check *ck = impl;
  ts_check_weight *cw;

  if (!w || !w->buf)
    return;
  cw = w->buf->impl;
  ck->dev.ops->weight_free (ck->dev.impl, &cw->dev);
  ck->ref.ops->weight_free (ck->ref.impl, &cw->ref);
  free (cw);
  free (w->buf);
  memset (w, 0, sizeof *w);
}

/* ---- running and comparing one op ---- */

static void *
host_reserve (ts_check *ck, int i, size_t bytes, ts_error *err)
{
  if (ck->host_size[i] < bytes) {
    void *p = malloc (bytes ? bytes : 1);
    if (!p) {
      ts_error_set (err, TS_ERR_NOMEM, "check: cannot allocate %zu bytes to compare outputs",
                    bytes);
      return NULL;
    }
    free (ck->host[i]);
    ck->host[i] = p;
    ck->host_size[i] = bytes;
  }
  return ck->host[i];
}

static void
op_begin (ts_check *ck, ck_op *op, ts_check_kind kind, const char *name, const char *fmt, ...)
  TS_PRINTF (5, 6);

/* Fills op's context: the call index of its vtable entry, the scope, the shapes. */
static void
op_begin (ts_check *ck, ck_op *op, ts_check_kind kind, const char *name, const char *fmt, ...)
{
  const ts_check_kind counter = kind == TS_CHECK_COPY ? TS_CHECK_ELEMENTWISE : kind;
  va_list ap;

  memset (op, 0, sizeof *op);
  if (!ck->stage)
    snprintf (op->where, sizeof op->where, "no labelled stage");
  else if (ck->layer >= 0)
    snprintf (op->where, sizeof op->where, "%s %d", ck->stage, ck->layer);
  else
    snprintf (op->where, sizeof op->where, "%s", ck->stage);
  va_start (ap, fmt);
  vsnprintf (op->shapes, sizeof op->shapes, fmt, ap);
  va_end (ap);
  op->ctx = (ts_check_context) { .kind = kind, .op = name, .call = ck->calls[counter]++,
                                 .where = op->where, .shapes = op->shapes };
}

static void
op_out (ck_op *op, const char *name, ts_ref at, bool i32, int n_dims, const int64_t *dims,
        const int64_t *strides)
{
  ts_check_operand *o = &op->outs[op->n_outs++];

  TS_ASSERT (op->n_outs <= CK_MAX_OUTS && n_dims >= 1 && n_dims <= 4);
  *o = (ts_check_operand) { .name = name, .at = at, .i32 = i32, .n_dims = n_dims };
  for (int i = 0; i < n_dims; i++) {
    o->dims[i] = dims[i];
    o->strides[i] = strides[i];
  }
}

/* A dense output: strides from the dimensions. */
static void
op_out_dense (ck_op *op, const char *name, ts_ref at, bool i32, int n_dims, const int64_t *dims)
{
  int64_t strides[4];

  strides[n_dims - 1] = 1;
  for (int i = n_dims - 2; i >= 0; i--)
    strides[i] = strides[i + 1] * dims[i + 1];
  op_out (op, name, at, i32, n_dims, dims, strides);
}

/* TESSERA_CHECK_INJECT: makes the device's first output element wrong, on the device. */
static ts_status
maybe_inject (ts_check *ck, const ck_op *op, ts_error *err)
{
  const ts_check_operand *o = &op->outs[0];
  ts_ref at = dev_ref (o->at);
  uint32_t bits;
  ts_status st;

  if (strcmp (ck->inject_op, op->ctx.op) != 0 || ck->inject_call != op->ctx.call
      || ts_check_operand_span (o) == 0)
    return TS_OK;
  TS_LOG_W ("check: TESSERA_CHECK_INJECT: perturbing %s[0] of %s call %" PRId64 " on the device",
            o->name, op->ctx.op, op->ctx.call);
  if ((st = ck->dev.ops->download (ck->dev.impl, at, &bits, sizeof bits, err)) != TS_OK)
    return st;
  if (o->i32) {
    int32_t v;
    memcpy (&v, &bits, sizeof v);
    v = v == -1 ? -2 : -1;
    memcpy (&bits, &v, sizeof v);
  } else {
    float v;
    memcpy (&v, &bits, sizeof v);
    v = isfinite (v) ? v + 1e6f * (1.0f + fabsf (v)) : 0.0f;
    memcpy (&bits, &v, sizeof v);
  }
  return ck->dev.ops->upload (ck->dev.impl, at, &bits, sizeof bits, err);
}

/* Downloads output i from the device into host[i]; its span's byte count in *bytes. */
static ts_status
fetch_device (ts_check *ck, const ts_check_operand *o, int i, size_t *bytes, ts_error *err)
{
  const int64_t span = ts_check_operand_span (o);

  *bytes = (size_t) span * sizeof (float); /* F32 and I32 alike */
  if (!host_reserve (ck, i, *bytes, err))
    return TS_ERR_NOMEM;
  return span ? ck->dev.ops->download (ck->dev.impl, dev_ref (o->at), ck->host[i], *bytes, err)
              : TS_OK;
}

/* After both backends ran the op: compare each output (or report the reference's
 * failure), then make the reference's copy the device's (the whole span: the gaps are
 * equal unless the comparison failed, and then the reference follows the device so that
 * later ops, as the next golden case, still start equal). */
static ts_status
op_end (ts_check *ck, ck_op *op, ts_status ref_st, const ts_error *ref_err, ts_error *err)
{
  ts_check_result res = { 0 };
  size_t bytes[CK_MAX_OUTS] = { 0 };
  ts_status st = TS_OK;

  ck->n_ops++;
  if (ref_st == TS_OK && ck->inject_op[0] && (st = maybe_inject (ck, op, err)) != TS_OK)
    return st;
  for (int i = 0; i < op->n_outs; i++)
    if ((st = fetch_device (ck, &op->outs[i], i, &bytes[i], err)) != TS_OK)
      return st;

  if (ref_st != TS_OK) {
    st = ts_error_set (err, ref_st, "check: %s in %s (%s; %s call %" PRId64 "): the device "
                       "ran it but the reference failed: %s", op->ctx.op, op->ctx.where,
                       op->ctx.shapes, op->ctx.op, op->ctx.call, ref_err->message);
  } else if (op->sample) {
    const ts_sample_args *a = op->sample;
    st = ts_check_compare_sample (&op->ctx, a, ref_host (a->logits), ref_host (a->sample),
                                  ck->host[0], ref_host (a->codes), ck->host[1],
                                  ref_host (a->confidence), &res, err);
  } else {
    for (int i = 0; i < op->n_outs && st == TS_OK; i++) {
      ts_check_result one = { 0 };
      st = ts_check_compare_f32 (&op->ctx, &op->outs[i], ck->host[i], ref_host (op->outs[i].at),
                                 &one, err);
      res.worst = fmax (res.worst, one.worst);
    }
  }

  for (int i = 0; i < op->n_outs; i++)
    if (bytes[i])
      memcpy (ref_host (op->outs[i].at), ck->host[i], bytes[i]);
  if (st != TS_OK) {
    ck->failed = true;
    return st;
  }
  ck->checked[op->ctx.kind]++;
  ck->worst[op->ctx.kind] = fmax (ck->worst[op->ctx.kind], res.worst);
  ck->n_near_ties += res.n_near_ties;
  return TS_OK;
}

/* The device, then the reference with its own buffers, then the comparison. d and r are
 * the argument structs translated to each backend. A cancel (ts_backend_set_abort) that
 * stops the reference is passed on as it is: there is nothing to compare. */
#define RUN(NAME)                                                            \
  do {                                                                       \
    ts_error ref_err_ = { TS_OK, "" };                                       \
    ts_status st_ = ck->dev.ops->NAME (ck->dev.impl, &d, err);               \
    if (st_ != TS_OK)                                                        \
      return st_;                                                            \
    st_ = ck->ref.ops->NAME (ck->ref.impl, &r, &ref_err_);                   \
    if (st_ == TS_ERR_CANCELLED)                                             \
      return ts_error_set (err, st_, "%s", ref_err_.message);                \
    return op_end (ck, &op, st_, &ref_err_, err);                            \
  } while (0)

#define SPLIT(FIELD)              \
  do {                            \
    d.FIELD = dev_ref (a->FIELD); \
    r.FIELD = ref_ref (a->FIELD); \
  } while (0)

#define SPLIT_W(FIELD)          \
  do {                          \
    d.FIELD = dev_w (a->FIELD); \
    r.FIELD = ref_w (a->FIELD); \
  } while (0)

#define NEED_ARGS(NAME)                                                            \
  do {                                                                             \
    if (!a)                                                                        \
      return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: args is NULL", NAME);     \
  } while (0)

typedef long long ll; /* for the shape strings */

/* ---- the ops ---- */

static ts_status
ck_matmul (void *impl, const ts_matmul_args *a, ts_error *err)
{
  ts_check *ck = impl;
  ts_matmul_args d, r;
  ck_op op;

  NEED_ARGS ("matmul");
  d = r = *a;
  SPLIT (x);
  SPLIT (y);
  SPLIT_W (w);
  SPLIT_W (bias);
  op_begin (ck, &op, TS_CHECK_MATMUL, "matmul", "m=%lld n=%lld k=%lld%s, weight '%s'",
            (ll) a->m, (ll) a->n, (ll) a->k, a->accumulate ? ", accumulating" : "",
            weight_name (a->w));
  op_out (&op, "y", a->y, false, 2, (int64_t[]) { a->m, a->n }, (int64_t[]) { a->ldy, 1 });
  RUN (matmul);
}

static ts_status
ck_norm (void *impl, const ts_norm_args *a, ts_error *err)
{
  ts_check *ck = impl;
  ts_norm_args d, r;
  ck_op op;

  NEED_ARGS ("norm");
  d = r = *a;
  SPLIT (x);
  SPLIT (y);
  SPLIT (shift);
  SPLIT (scale);
  SPLIT_W (weight);
  SPLIT_W (bias);
  op_begin (ck, &op, TS_CHECK_NORM, "norm", "%s, rows=%lld dim=%lld%s%s%s%s",
            a->kind == TS_NORM_RMS ? "RMS" : "layer", (ll) a->rows, (ll) a->dim,
            a->weight ? ", weight '" : "", a->weight ? weight_name (a->weight) : "",
            a->weight ? "'" : "", a->shift.buf ? ", modulated" : "");
  op_out (&op, "y", a->y, false, 2, (int64_t[]) { a->rows, a->dim }, (int64_t[]) { a->ldy, 1 });
  RUN (norm);
}

static ts_status
ck_softmax (void *impl, const ts_softmax_args *a, ts_error *err)
{
  ts_check *ck = impl;
  ts_softmax_args d, r;
  ck_op op;

  NEED_ARGS ("softmax");
  d = r = *a;
  SPLIT (x);
  op_begin (ck, &op, TS_CHECK_SOFTMAX, "softmax", "rows=%lld dim=%lld", (ll) a->rows,
            (ll) a->dim);
  op_out_dense (&op, "x", a->x, false, 2, (int64_t[]) { a->rows, a->dim });
  RUN (softmax);
}

static ts_status
ck_attention (void *impl, const ts_attention_args *a, ts_error *err)
{
  ts_check *ck = impl;
  ts_attention_args d, r;
  ck_op op;

  NEED_ARGS ("attention");
  d = r = *a;
  SPLIT (q);
  SPLIT (k);
  SPLIT (v);
  SPLIT (out);
  op_begin (ck, &op, TS_CHECK_ATTENTION, "attention",
            "batch=%lld heads=%lld seq_q=%lld seq_kv=%lld d_head=%lld%s", (ll) a->batch,
            (ll) a->heads, (ll) a->seq_q, (ll) a->seq_kv, (ll) a->d_head,
            a->causal ? ", causal" : "");
  op_out (&op, "out", a->out, false, 3, (int64_t[]) { a->batch, a->seq_q, a->heads * a->d_head },
          (int64_t[]) { a->bs_o, a->ldo, 1 });
  RUN (attention);
}

static ts_status
ck_rope (void *impl, const ts_rope_args *a, ts_error *err)
{
  ts_check *ck = impl;
  ts_rope_args d, r;
  ck_op op;

  NEED_ARGS ("rope");
  d = r = *a;
  SPLIT (x);
  SPLIT (cos);
  SPLIT (sin);
  op_begin (ck, &op, TS_CHECK_ROPE, "rope", "batch=%lld seq=%lld heads=%lld d_head=%lld",
            (ll) a->batch, (ll) a->seq, (ll) a->heads, (ll) a->d_head);
  op_out (&op, "x", a->x, false, 3, (int64_t[]) { a->batch, a->seq, a->heads * a->d_head },
          (int64_t[]) { a->bs_x, a->ldx, 1 });
  RUN (rope);
}

static ts_status
ck_act (void *impl, const ts_act_args *a, ts_error *err)
{
  static const char *const kinds[] = { "SiLU", "GELU (tanh)", "GELU (erf)" };
  ts_check *ck = impl;
  ts_act_args d, r;
  ck_op op;

  NEED_ARGS ("act");
  d = r = *a;
  SPLIT (x);
  SPLIT (y);
  op_begin (ck, &op, TS_CHECK_ACT, "act", "%s, rows=%lld cols=%lld",
            (unsigned) a->kind < 3 ? kinds[a->kind] : "?", (ll) a->rows, (ll) a->cols);
  op_out (&op, "y", a->y, false, 2, (int64_t[]) { a->rows, a->cols }, (int64_t[]) { a->ldy, 1 });
  RUN (act);
}

static ts_status
ck_elementwise (void *impl, const ts_elementwise_args *a, ts_error *err)
{
  static const char *const kinds[] = { "add", "mul", "gated add", "CFG", "copy", "bias add" };
  ts_check *ck = impl;
  ts_elementwise_args d, r;
  ck_op op;

  NEED_ARGS ("elementwise");
  d = r = *a;
  SPLIT (a);
  SPLIT (b);
  SPLIT (y);
  SPLIT (gate);
  op_begin (ck, &op, a->kind == TS_EW_COPY ? TS_CHECK_COPY : TS_CHECK_ELEMENTWISE,
            "elementwise", "%s, rows=%lld cols=%lld", (unsigned) a->kind < 6 ? kinds[a->kind] : "?",
            (ll) a->rows, (ll) a->cols);
  op_out (&op, "y", a->y, false, 2, (int64_t[]) { a->rows, a->cols }, (int64_t[]) { a->ldy, 1 });
  RUN (elementwise);
}

static ts_status
ck_transpose (void *impl, const ts_transpose_args *a, ts_error *err)
{
  ts_check *ck = impl;
  ts_transpose_args d, r;
  ck_op op;

  NEED_ARGS ("transpose");
  d = r = *a;
  SPLIT (x);
  SPLIT (y);
  op_begin (ck, &op, TS_CHECK_TRANSPOSE, "transpose", "batch=%lld rows=%lld cols=%lld",
            (ll) a->batch, (ll) a->rows, (ll) a->cols);
  op_out_dense (&op, "y", a->y, false, 3, (int64_t[]) { a->batch, a->cols, a->rows });
  RUN (transpose);
}

static ts_status
ck_conv2d (void *impl, const ts_conv2d_args *a, ts_error *err)
{
  ts_check *ck = impl;
  ts_conv2d_args d, r;
  ck_op op;

  NEED_ARGS ("conv2d");
  d = r = *a;
  SPLIT (x);
  SPLIT (y);
  SPLIT_W (w);
  SPLIT_W (bias);
  op_begin (ck, &op, TS_CHECK_CONV2D, "conv2d",
            "x [%lld, %lld, %lld, %lld] -> y [%lld, %lld, %lld, %lld], %dx%d stride %d, "
            "weight '%s'", (ll) a->batch, (ll) a->c_in, (ll) a->h, (ll) a->w_in, (ll) a->batch,
            (ll) a->c_out, (ll) a->h_out, (ll) a->w_out, a->kh, a->kw, a->stride,
            weight_name (a->w));
  op_out_dense (&op, "y", a->y, false, 4,
                (int64_t[]) { a->batch, a->c_out, a->h_out, a->w_out });
  RUN (conv2d);
}

static ts_status
ck_conv_transpose2d (void *impl, const ts_conv_transpose2d_args *a, ts_error *err)
{
  ts_check *ck = impl;
  ts_conv_transpose2d_args d, r;
  ck_op op;

  NEED_ARGS ("conv_transpose2d");
  d = r = *a;
  SPLIT (x);
  SPLIT (y);
  SPLIT_W (w);
  SPLIT_W (bias);
  op_begin (ck, &op, TS_CHECK_CONV_TRANSPOSE2D, "conv_transpose2d",
            "x [%lld, %lld, %lld, %lld] -> c_out=%lld, k=%d, weight '%s'", (ll) a->batch,
            (ll) a->c_in, (ll) a->h, (ll) a->w_in, (ll) a->c_out, a->k, weight_name (a->w));
  op_out_dense (&op, "y", a->y, false, 4,
                (int64_t[]) { a->batch, a->c_out, a->h * a->k, a->w_in * a->k });
  RUN (conv_transpose2d);
}

static ts_status
ck_group_norm (void *impl, const ts_group_norm_args *a, ts_error *err)
{
  static const char *const passes[] = { "full", "statistics", "apply" };
  ts_check *ck = impl;
  ts_group_norm_args d, r;
  ck_op op;

  NEED_ARGS ("group_norm");
  d = r = *a;
  SPLIT (x);
  SPLIT (y);
  SPLIT (stats);
  SPLIT_W (weight);
  SPLIT_W (bias);
  op_begin (ck, &op, TS_CHECK_GROUP_NORM, "group_norm",
            "%s pass, batch=%lld c=%lld hw=%lld groups=%d%s, weight '%s'",
            (unsigned) a->pass < 3 ? passes[a->pass] : "?", (ll) a->batch, (ll) a->c,
            (ll) a->hw, a->groups, a->silu ? ", SiLU" : "", weight_name (a->weight));
  if (a->pass == TS_GN_STATS)
    op_out_dense (&op, "stats", a->stats, false, 3, (int64_t[]) { a->batch, a->groups, 2 });
  else
    op_out_dense (&op, "y", a->y, false, 3, (int64_t[]) { a->batch, a->c, a->hw });
  RUN (group_norm);
}

static ts_status
ck_upsample (void *impl, const ts_upsample_args *a, ts_error *err)
{
  ts_check *ck = impl;
  ts_upsample_args d, r;
  ck_op op;

  NEED_ARGS ("upsample");
  d = r = *a;
  SPLIT (x);
  SPLIT (y);
  op_begin (ck, &op, TS_CHECK_UPSAMPLE, "upsample", "x [%lld, %lld, %lld, %lld]", (ll) a->batch,
            (ll) a->c, (ll) a->h, (ll) a->w);
  op_out_dense (&op, "y", a->y, false, 4, (int64_t[]) { a->batch, a->c, 2 * a->h, 2 * a->w });
  RUN (upsample);
}

static ts_status
ck_embed (void *impl, const ts_embed_args *a, ts_error *err)
{
  ts_check *ck = impl;
  ts_embed_args d, r;
  ck_op op;

  NEED_ARGS ("embed");
  d = r = *a;
  SPLIT (ids);
  SPLIT (y);
  SPLIT_W (table);
  op_begin (ck, &op, TS_CHECK_EMBED, "embed", "n=%lld dim=%lld, table '%s'", (ll) a->n,
            (ll) a->dim, weight_name (a->table));
  op_out_dense (&op, "y", a->y, false, 2, (int64_t[]) { a->n, a->dim });
  RUN (embed);
}

static ts_status
ck_sample (void *impl, const ts_sample_args *a, ts_error *err)
{
  ts_check *ck = impl;
  ts_sample_args d, r;
  ck_op op;

  NEED_ARGS ("sample");
  d = r = *a;
  SPLIT (logits);
  SPLIT (sample);
  SPLIT (draw_codes);
  SPLIT (draw_gumbel);
  SPLIT (codes);
  SPLIT (confidence);
  op_begin (ck, &op, TS_CHECK_SAMPLE, "sample",
            "codebook=%lld tokens=%lld rows=%d%s, step %u", (ll) a->codebook_size,
            (ll) a->n_tokens, a->n_rows, a->draw_codes.buf ? ", recorded draws" : "",
            (unsigned) a->step_index);
  op_out_dense (&op, "codes", a->codes, true, 1, &a->n_tokens);
  op_out_dense (&op, "confidence", a->confidence, false, 1, &a->n_tokens);
  op.sample = a;
  RUN (sample);
}

/* ---- the object ---- */

static size_t
ck_max_operand_bytes (void *impl)
{
  ts_check *ck = impl;

  return ck->dev.ops->max_operand_bytes (ck->dev.impl);
}

/* The device's memory; the reference's copy lives in host memory. */
static void
ck_device_memory (void *impl, uint64_t *in_use, uint64_t *peak)
{
  ts_check *ck = impl;

  ts_backend_device_memory (&ck->dev, in_use, peak);
}

static void
ck_scope_set (void *impl, const char *stage, int layer)
{
  ts_check *ck = impl;

  ck->stage = stage;
  ck->layer = layer;
}

/* Both backends poll it: the device's ops and the reference's, which take longer. */
static void
ck_abort_set (void *impl, ts_should_abort_fn fn, void *data)
{
  ts_check *ck = impl;

  ts_backend_set_abort (&ck->dev, fn, data);
  ts_backend_set_abort (&ck->ref, fn, data);
}

/* The device resolves the mode; the reference (cpu-ref, which computes either) follows. */
static ts_status
ck_precision_set (void *impl, ts_precision requested, ts_precision *resolved, ts_error *err)
{
  ts_check *ck = impl;
  ts_precision p;
  ts_status st;

  if ((st = ts_backend_set_precision (&ck->dev, requested, &p, err)) != TS_OK
      || (st = ts_backend_set_precision (&ck->ref, p, NULL, err)) != TS_OK)
    return st;
  if (resolved)
    *resolved = p;
  return TS_OK;
}

static ts_precision
ck_precision_get (void *impl)
{
  return ts_backend_precision (&((ts_check *) impl)->dev);
}

static ts_status
ck_sync (void *impl, ts_error *err)
{
  ts_check *ck = impl;

  return ck->dev.ops->sync (ck->dev.impl, err);
}

/* The run's summary, when nothing failed: what was checked and how close it came. */
static void
log_summary (const ts_check *ck)
{
  if (ck->failed || ck->n_ops == 0)
    return;
  TS_LOG_I ("check: %" PRId64 " ops on %s matched cpu-ref within tolerance; worst relative "
            "error per op kind:", ck->n_ops, ck->dev.ops->name);
  for (int k = 0; k < TS_CHECK_N_KINDS; k++) {
    char ties[48] = "";
    if (!ck->checked[k])
      continue;
    if (k == TS_CHECK_SAMPLE)
      snprintf (ties, sizeof ties, ", %" PRId64 " near-tie code%s", ck->n_near_ties,
                ck->n_near_ties == 1 ? "" : "s");
    TS_LOG_I ("check:   %-16s %8" PRId64 " ops  worst %.2e  (tolerance %.0e%s)",
              ts_check_rules[k].name, ck->checked[k], ck->worst[k], ts_check_rules[k].tolerance,
              ties);
  }
}

static void
ck_destroy (void *impl)
{
  ts_check *ck = impl;

  if (!ck)
    return;
  log_summary (ck);
  ts_backend_free (&ck->dev);
  ts_backend_free (&ck->ref);
  for (int i = 0; i < CK_MAX_OUTS; i++)
    free (ck->host[i]);
  free (ck);
}

static const ts_backend_ops check_ops = {
  .name = "check",
  .buffer_new = ck_buffer_new,
  .buffer_free = ck_buffer_free,
  .upload = ck_upload,
  .download = ck_download,
  .weight_upload = ck_weight_upload,
  .weight_free = ck_weight_free,
  .matmul = ck_matmul,
  .norm = ck_norm,
  .softmax = ck_softmax,
  .attention = ck_attention,
  .rope = ck_rope,
  .act = ck_act,
  .elementwise = ck_elementwise,
  .transpose = ck_transpose,
  .conv2d = ck_conv2d,
  .conv_transpose2d = ck_conv_transpose2d,
  .group_norm = ck_group_norm,
  .upsample = ck_upsample,
  .embed = ck_embed,
  .sample = ck_sample,
  .max_operand_bytes = ck_max_operand_bytes,
  .device_memory = ck_device_memory,
  .scope_set = ck_scope_set,
  .abort_set = ck_abort_set,
  .precision_set = ck_precision_set,
  .precision_get = ck_precision_get,
  .sync = ck_sync,
  .destroy = ck_destroy,
};

/* TESSERA_CHECK_INJECT=OP[:N] */
static void
parse_inject (ts_check *ck)
{
  const char *v = getenv ("TESSERA_CHECK_INJECT");
  const char *colon;
  size_t len;

  if (!v || !*v)
    return;
  colon = strchr (v, ':');
  len = colon ? (size_t) (colon - v) : strlen (v);
  if (len >= sizeof ck->inject_op) {
    TS_LOG_W ("check: TESSERA_CHECK_INJECT='%s' names no op; ignored", v);
    return;
  }
  memcpy (ck->inject_op, v, len);
  ck->inject_op[len] = '\0';
  ck->inject_call = colon ? strtoll (colon + 1, NULL, 10) : 0;
}

ts_status
ts_backend_check_new (ts_backend *out, const char *device, int n_threads, ts_error *err)
{
  ts_check *ck = NULL;
  ts_status st;

  if (!out || !device)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "check: output backend or device is NULL");
  out->ops = NULL;
  out->impl = NULL;
  ck = calloc (1, sizeof *ck);
  if (!ck)
    return ts_error_set (err, TS_ERR_NOMEM, "check: cannot allocate the backend");
  ck->layer = -1;
  if ((st = ts_backend_new_by_name (&ck->dev, device, n_threads, err)) != TS_OK) {
    ts_error_prefix (err, "check: device '%s'", device);
    goto fail;
  }
  if ((st = ts_backend_cpu_new (&ck->ref, true, 1, err)) != TS_OK) {
    ts_error_prefix (err, "check: reference");
    goto fail;
  }
  ck->ops = check_ops;
  snprintf (ck->name, sizeof ck->name, "check:%s", ck->dev.ops->name);
  ck->ops.name = ck->name;
  parse_inject (ck);
  TS_LOG_I ("check: every op runs on %s and on cpu-ref and is compared", ck->dev.ops->name);
  out->ops = &ck->ops;
  out->impl = ck;
  return TS_OK;

fail:
  ts_backend_free (&ck->dev);
  free (ck);
  return st;
}
