/* SPDX-License-Identifier: MIT
 *
 * ts-vk-ops — the ops of the Vulkan backend: each takes arguments already checked above
 * the backends (ts-op-check.h), computes the byte extent of every operand (what the
 * binding must cover), fills the shader's push constants (ts-vk-kernels.h) and records one
 * dispatch. Workgroup counts of the 1-D kernels are capped at 65535; those kernels loop
 * grid-stride over the rest.
 *
 * An op whose activation operands would span more than one binding may (ts_vk.max_operand)
 * runs as the same op over pieces, each a call of its own with refs moved to the piece. One
 * splitter (run_split) does that for every op from a description the op gives of itself
 * (split_dim: the count it splits, the refs that move and by how much): rows (matmul,
 * norm, softmax, act, elementwise, embed; a row of act and elementwise in column pieces
 * when one row is too large; never across a batch boundary of a per-batch modulation or
 * gate), batches (attention, rope, conv2d, conv_transpose2d, group_norm), then query rows
 * (non-causal attention) or sequence positions (rope), channel planes (upsample). Transpose
 * alone tiles by itself, through the shader's strides rather than its arguments. Every
 * output element is computed by the same arithmetic as in one dispatch. On a CPU-type
 * device, where one dispatch can be seconds that a cancel must wait for, attention and the
 * convolutions also run in pieces of bounded work (TS_VK_ATTENTION_FLOP_CPU,
 * TS_VK_CONV_FLOP_CPU), the same way. What stays whole:
 * weights, a batch entry's keys and values in attention, a batch entry's input of a
 * convolution, one row of the sample op's logits (the two rows of guidance are bound
 * separately).
 */
#include "backend/vk/ts-vk.h"
#include "backend/vk/ts-vk-kernels.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define WG_1D 256u
#define WG_ROW(vk) ((vk)->cpu_type ? 32u : 256u)
#define MAX_GROUPS 65535u

/* Bytes spanned by a batch x rows x cols F32 region with strides bs and ld. */
static size_t
extent (int64_t batch, int64_t bs, int64_t rows, int64_t ld, int64_t cols)
{
  if (batch <= 0 || rows <= 0 || cols <= 0)
    return 0;
  return (size_t) ((batch - 1) * bs + (rows - 1) * ld + cols) * sizeof (float);
}

static ts_vk_operand
operand (ts_ref r, size_t bytes)
{
  ts_vk_operand o = { r, bytes, false };
  return o;
}

static ts_vk_operand
weight_operand (const ts_weight *w)
{
  ts_vk_operand o = { { NULL, 0 }, 0, true };
  if (w) {
    o.ref = ts_ref_at (w->buf, 0);
    o.bytes = (size_t) w->n_elements * ts_dtype_size (w->dtype);
  }
  return o;
}

/* ---- pieces ---- */

/* The elements an activation operand of one piece may span: the cap less the slack of
 * aligning its binding down to minStorageBufferOffsetAlignment. */
static int64_t
cap_elems (const ts_vk *vk)
{
  const size_t align = vk->props.limits.minStorageBufferOffsetAlignment;
  return vk->max_operand > align ? (int64_t) ((vk->max_operand - align) / sizeof (float)) : 0;
}

/* Whether every activation operand of d fits one binding. */
static bool
fits (const ts_vk *vk, const ts_vk_dispatch_desc *d)
{
  for (int i = 0; i < d->n_operands; i++)
    if (!d->operands[i].weight && d->operands[i].bytes > (size_t) cap_elems (vk) * sizeof (float))
      return false;
  return true;
}

/* The end of the piece of at most `per` units that starts at unit u0 of n. With units in
 * batches of rpb (rpb > 0: a modulation or gate row per batch) a piece is whole batches or
 * part of one batch, so that the piece's unit i belongs to batch u0 / rpb + i / rpb. */
static int64_t
piece_end (int64_t u0, int64_t per, int64_t n, int64_t rpb)
{
  int64_t len = per;
  if (rpb > 0)
    len = per >= rpb ? per / rpb * rpb : per < rpb - u0 % rpb ? per : rpb - u0 % rpb;
  return len < n - u0 ? u0 + len : n;
}

/* ---- the generic splitter ----
 *
 * Every op that runs in pieces describes, per call, how: which count of its arguments is
 * the dimension it splits (rows, batches, query rows, positions, planes), which refs move
 * and by how many elements per unit, which of them limit how many units fit one binding,
 * and whether a unit too large for one binding goes in column pieces. run_split then runs
 * the op itself on a copy of its arguments moved to each piece. Elements are 4 bytes
 * (F32 activations, I32 ids). */

/* A ref of the op's arguments that the pieces move. */
typedef struct {
  size_t ref;     /* offsetof the ts_ref in the op's argument struct */
  int64_t unit;   /* elements it moves per unit (per batch of rpb units when per_batch) */
  int64_t span;   /* elements one unit spans, for a ref that limits how many units fit
                   * one binding; 0 for one that does not */
  bool per_batch; /* one row per batch of rpb units (a modulation or a gate) */
  bool skip;      /* unused by this call (an operand the kind or pass does not read) */
} split_ref;

#define SPLIT_MAX_REFS 4

/* How an op splits along one dimension of its units. */
typedef struct {
  size_t count;         /* offsetof the int64_t number of units (m, rows, batch, ...) */
  bool fold;            /* the units are planes: `outer` x count (upsample's batch x c),
                         * and a piece sets outer to 1 */
  size_t outer;
  bool columns;         /* a unit too large for one binding runs in column pieces */
  size_t cols;          /* offsetof the int64_t number of columns (with `columns`) */
  int64_t per;          /* units per piece, or 0: as many as the spans allow */
  int64_t rpb;          /* units per batch of the per_batch refs (0: none) */
  int n_refs;
  split_ref refs[SPLIT_MAX_REFS];
} split_dim;

/* The ops that run in pieces, and a copy of any of their arguments. */
typedef enum {
  OP_MATMUL,
  OP_NORM,
  OP_SOFTMAX,
  OP_ATTENTION,
  OP_ROPE,
  OP_ACT,
  OP_ELEMENTWISE,
  OP_CONV2D,
  OP_CONV_TRANSPOSE2D,
  OP_GROUP_NORM,
  OP_UPSAMPLE,
  OP_EMBED,
} split_op;

typedef union {
  ts_matmul_args matmul;
  ts_norm_args norm;
  ts_softmax_args softmax;
  ts_attention_args attention;
  ts_rope_args rope;
  ts_act_args act;
  ts_elementwise_args elementwise;
  ts_conv2d_args conv2d;
  ts_conv_transpose2d_args conv_transpose2d;
  ts_group_norm_args group_norm;
  ts_upsample_args upsample;
  ts_embed_args embed;
} any_args;

static ts_status
run_op (ts_vk *vk, split_op op, const any_args *a, ts_error *err)
{
  switch (op) {
  case OP_MATMUL: return ts_vk_matmul (vk, &a->matmul, err);
  case OP_NORM: return ts_vk_norm (vk, &a->norm, err);
  case OP_SOFTMAX: return ts_vk_softmax (vk, &a->softmax, err);
  case OP_ATTENTION: return ts_vk_attention (vk, &a->attention, err);
  case OP_ROPE: return ts_vk_rope (vk, &a->rope, err);
  case OP_ACT: return ts_vk_act (vk, &a->act, err);
  case OP_ELEMENTWISE: return ts_vk_elementwise (vk, &a->elementwise, err);
  case OP_CONV2D: return ts_vk_conv2d (vk, &a->conv2d, err);
  case OP_CONV_TRANSPOSE2D: return ts_vk_conv_transpose2d (vk, &a->conv_transpose2d, err);
  case OP_GROUP_NORM: return ts_vk_group_norm (vk, &a->group_norm, err);
  case OP_UPSAMPLE: return ts_vk_upsample (vk, &a->upsample, err);
  case OP_EMBED: return ts_vk_embed (vk, &a->embed, err);
  }
  TS_ASSERT (!"unknown split_op");
  return TS_ERR_INVALID_ARG;
}

static int64_t *
field_i64 (any_args *p, size_t offset)
{
  return (int64_t *) (void *) ((unsigned char *) p + offset);
}

static ts_ref *
field_ref (any_args *p, size_t offset)
{
  return (ts_ref *) (void *) ((unsigned char *) p + offset);
}

/* The most units per piece such that every limiting ref fits one binding; 0 when a single
 * unit does not. */
static int64_t
split_per (const ts_vk *vk, const split_dim *s, int64_t n)
{
  const int64_t cap = cap_elems (vk);
  int64_t per = n;

  for (int i = 0; i < s->n_refs; i++) {
    const split_ref *r = &s->refs[i];
    int64_t fit;
    if (r->skip || r->per_batch || r->span <= 0)
      continue;
    fit = r->span > cap ? 0 : r->unit > 0 ? (cap - r->span) / r->unit + 1 : n;
    if (fit < per)
      per = fit;
  }
  return per;
}

/* Runs the op `op` with arguments `args` (of `size` bytes) over pieces along s and returns
 * true with the status in *st; false when the split does not apply: one unit does not fit
 * (without column pieces) or all of them do (the units are not what is too large), so that
 * the op tries its next split or goes as one dispatch and reports the operand. */
static bool
run_split (ts_vk *vk, split_op op, const void *args, size_t size, const split_dim *s,
           ts_status *st, ts_error *err)
{
  const int64_t cap = cap_elems (vk);
  any_args base, p;
  int64_t n, per, rows, n_cols = 1, cols = 1;

  TS_ASSERT (size <= sizeof base && s->n_refs <= SPLIT_MAX_REFS);
  memcpy (&base, args, size);
  n = *field_i64 (&base, s->count) * (s->fold ? *field_i64 (&base, s->outer) : 1);
  per = s->per > 0 ? s->per : split_per (vk, s, n);
  if (per >= n || (per <= 0 && !s->columns) || (s->columns && cap <= 0))
    return false;
  rows = per > 0 ? per : 1;
  if (s->columns) {
    /* one row at a time in column pieces when a row is too large */
    n_cols = *field_i64 (&base, s->cols);
    cols = per > 0 ? n_cols : cap;
  }
  *st = TS_OK;
  for (int64_t u0 = 0, u1; *st == TS_OK && u0 < n; u0 = u1) {
    u1 = piece_end (u0, rows, n, s->rpb);
    for (int64_t c0 = 0; *st == TS_OK && c0 < n_cols; c0 += cols) {
      p = base;
      for (int i = 0; i < s->n_refs; i++) {
        const split_ref *r = &s->refs[i];
        ts_ref *ref = field_ref (&p, r->ref);
        if (r->skip)
          continue;
        TS_ASSERT (!r->per_batch || s->rpb > 0);
        *ref = ts_ref_f32 (*ref, (r->per_batch ? u0 / s->rpb : u0) * r->unit + c0);
      }
      *field_i64 (&p, s->count) = u1 - u0;
      if (s->fold)
        *field_i64 (&p, s->outer) = 1;
      if (s->columns)
        *field_i64 (&p, s->cols) = cols < n_cols - c0 ? cols : n_cols - c0;
      *st = run_op (vk, op, &p, err);
    }
  }
  return true;
}

static uint32_t
groups_1d (uint64_t n, uint32_t wg)
{
  uint64_t g = (n + wg - 1) / wg;
  return (uint32_t) (g > MAX_GROUPS ? MAX_GROUPS : g);
}

/* What a dispatch of an op that moves n elements counts against the submission cap: on a
 * CPU-type device TS_VK_ELEMENT_FLOP_CPU per element; elsewhere nothing (its flops). */
static double
elements_cost (const ts_vk *vk, double n)
{
  return vk->cpu_type ? n * TS_VK_ELEMENT_FLOP_CPU : 0.0;
}

/* Units per piece of an op whose units are `elems` elements each (rows, planes): on a
 * CPU-type device pieces of about TS_VK_PIECE_ELEMENTS_CPU elements, at least one unit;
 * elsewhere 0 (one dispatch). */
static int64_t
piece_units (const ts_vk *vk, int64_t elems)
{
  if (!vk->cpu_type || elems <= 0)
    return 0;
  return TS_VK_PIECE_ELEMENTS_CPU / elems > 1 ? TS_VK_PIECE_ELEMENTS_CPU / elems : 1;
}

/* Most element-wise kernels: one invocation per element, WG_1D invocations a group. */
static ts_status
dispatch_1d (ts_vk *vk, ts_vk_dispatch_desc *d, const void *push, size_t push_size, uint64_t n,
             ts_error *err)
{
  d->cost = elements_cost (vk, (double) n);
  d->spec[0] = WG_1D;
  d->n_spec = 1;
  d->push = push;
  d->push_size = push_size;
  d->groups[0] = groups_1d (n, WG_1D);
  d->groups[1] = d->groups[2] = 1;
  return ts_vk_dispatch (vk, d, err);
}

static uint32_t
cap_groups (uint64_t g)
{
  return (uint32_t) (g > MAX_GROUPS ? MAX_GROUPS : g);
}

/* Element offset of an operand inside its binding (0 for an absent one). */
static uint32_t
off (const ts_vk *vk, const ts_vk_operand *o)
{
  return o->ref.buf ? ts_vk_operand_offset (vk, &o->ref) : 0;
}

static bool
weight_kn (const ts_weight *w)
{
  return ((const ts_vk_alloc *) w->buf->impl)->kn;
}

/* The shader reading a 2-D weight (matmul or embed), and its BF16 specialization. */
static ts_vk_shader
weight_shader (const ts_weight *w, ts_vk_shader f32, ts_vk_shader w16, uint32_t *bf16)
{
  *bf16 = w->dtype == TS_DTYPE_BF16;
  return w->dtype == TS_DTYPE_F32 ? f32 : w16;
}

/* Four kernels (shaders/matmul.comp explains them): ROWS for weights stored [k, n]
 * (CPU-type devices; COLS for those when m <= 16), TILED for weights [n, k] on GPUs with enough rows to fill 64 x 64
 * tiles, BLOCKED for the rest. The ROWS tile was measured on lavapipe (docs/benchmarks.md):
 * 16 rows per lane and 4 x subgroup-size columns per workgroup of two subgroups, fewer
 * rows per lane when m is small (clamped rows are wasted work). */
ts_status
ts_vk_matmul (void *impl, const ts_matmul_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st = TS_OK;
  ts_vk_dispatch_desc d = { .label = "matmul" };
  ts_vk_matmul_push pc;
  uint32_t tm = 4, tn = 4, wg = 64, mode = 0, bf16;
  bool x4, y4 = false;

  if (a->m == 0 || a->n == 0)
    return TS_OK;
  d.shader = weight_shader (a->w, TS_VK_SHADER_MATMUL, TS_VK_SHADER_MATMUL_W16, &bf16);
  d.operands[0] = operand (a->x, extent (1, 0, a->m, a->ldx, a->k));
  d.operands[1] = weight_operand (a->w);
  d.operands[2] = weight_operand (a->bias);
  d.operands[3] = operand (a->y, extent (1, 0, a->m, a->ldy, a->n));
  d.n_operands = 4;
  if (!fits (vk, &d)) {
    const split_dim rows = {
      .count = offsetof (ts_matmul_args, m), .n_refs = 2,
      .refs = { { .ref = offsetof (ts_matmul_args, x), .unit = a->ldx, .span = a->k },
                { .ref = offsetof (ts_matmul_args, y), .unit = a->ldy, .span = a->n } },
    };
    if (run_split (vk, OP_MATMUL, a, sizeof *a, &rows, &st, err))
      return st;
  }
  pc = (ts_vk_matmul_push) {
    .x_off = off (vk, &d.operands[0]), .w_off = off (vk, &d.operands[1]),
    .b_off = off (vk, &d.operands[2]), .y_off = off (vk, &d.operands[3]),
    .m = (uint32_t) a->m, .n = (uint32_t) a->n, .k = (uint32_t) a->k,
    .ldx = (uint32_t) a->ldx, .ldy = (uint32_t) a->ldy,
    .has_bias = a->bias != NULL, .accumulate = a->accumulate,
  };
  x4 = a->k % 4 == 0 && a->ldx % 4 == 0 && pc.x_off % 4 == 0;
  if (weight_kn (a->w) && a->m <= 16) {
    mode = 3;
    tm = a->m < 8 ? (uint32_t) a->m : 8;
    d.groups[0] = (uint32_t) (((uint64_t) a->n / 4 + wg - 1) / wg);
    d.groups[1] = cap_groups (((uint64_t) a->m + tm - 1) / tm);
  } else if (weight_kn (a->w)) {
    mode = 1;
    y4 = a->ldy % 4 == 0 && pc.y_off % 4 == 0 && pc.b_off % 4 == 0;
    tn = 4 * vk->subgroup_size;
    wg = 2 * vk->subgroup_size;
    /* scalar stores at 16 rows per lane would take LLVM ~25 s to compile on lavapipe */
    tm = a->m >= 512 && y4 ? (vk->subgroup_size <= 8 ? 16 : 8) : a->m >= 64 ? 4 : 2;
    d.groups[0] = (uint32_t) (((uint64_t) a->n + tn - 1) / tn);
    d.groups[1] = cap_groups (((uint64_t) a->m + tm * wg - 1) / (tm * wg));
  } else if (vk->gemm == TS_VK_GEMM_TILED && a->m > 16) {
    mode = 2;
    wg = 256;
    d.groups[0] = (uint32_t) (((uint64_t) a->n + 63) / 64);
    d.groups[1] = cap_groups (((uint64_t) a->m + 63) / 64);
  } else {
    x4 = x4 && pc.w_off % 4 == 0;
    d.groups[0] = (uint32_t) (((uint64_t) a->n + tn - 1) / tn + wg - 1) / wg;
    d.groups[1] = cap_groups (((uint64_t) a->m + tm - 1) / tm);
  }
  d.groups[2] = 1;
  d.spec[0] = wg;
  d.spec[1] = tm;
  d.spec[2] = tn;
  d.spec[3] = x4;
  d.spec[4] = mode;
  d.spec[5] = bf16;
  d.spec[6] = y4;
  d.n_spec = 7;
  d.push = &pc;
  d.push_size = sizeof pc;
  d.flops = 2.0 * (double) a->m * (double) a->n * (double) a->k;
  return ts_vk_dispatch (vk, &d, err);
}

ts_status
ts_vk_norm (void *impl, const ts_norm_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st = TS_OK;
  ts_vk_dispatch_desc d = { .shader = TS_VK_SHADER_NORM, .label = "norm" };
  ts_vk_norm_push pc;
  bool mod;
  int64_t n_batches;

  if (a->rows == 0 || a->dim == 0)
    return TS_OK;
  mod = a->shift.buf != NULL;
  n_batches = mod ? (a->rows + a->rows_per_batch - 1) / a->rows_per_batch : 0;
  d.operands[0] = operand (a->x, extent (1, 0, a->rows, a->ldx, a->dim));
  d.operands[1] = operand (a->y, extent (1, 0, a->rows, a->ldy, a->dim));
  d.operands[2] = weight_operand (a->weight);
  d.operands[3] = weight_operand (a->bias);
  if (mod) {
    d.operands[4] = operand (a->shift, extent (1, 0, n_batches, a->mod_stride, a->dim));
    d.operands[5] = operand (a->scale, extent (1, 0, n_batches, a->mod_stride, a->dim));
  }
  d.n_operands = 6;
  if (!fits (vk, &d)) {
    /* never across a batch boundary of the modulation */
    const split_dim rows = {
      .count = offsetof (ts_norm_args, rows), .rpb = mod ? a->rows_per_batch : 0, .n_refs = 4,
      .refs = { { .ref = offsetof (ts_norm_args, x), .unit = a->ldx, .span = a->dim },
                { .ref = offsetof (ts_norm_args, y), .unit = a->ldy, .span = a->dim },
                { .ref = offsetof (ts_norm_args, shift), .unit = a->mod_stride, .per_batch = true,
                  .skip = !mod },
                { .ref = offsetof (ts_norm_args, scale), .unit = a->mod_stride, .per_batch = true,
                  .skip = !mod } },
    };
    if (run_split (vk, OP_NORM, a, sizeof *a, &rows, &st, err))
      return st;
  }
  pc = (ts_vk_norm_push) {
    .x_off = off (vk, &d.operands[0]), .y_off = off (vk, &d.operands[1]),
    .w_off = off (vk, &d.operands[2]), .b_off = off (vk, &d.operands[3]),
    .shift_off = off (vk, &d.operands[4]), .scale_off = off (vk, &d.operands[5]),
    .rows = (uint32_t) a->rows, .dim = (uint32_t) a->dim, .ldx = (uint32_t) a->ldx,
    .ldy = (uint32_t) a->ldy, .rows_per_batch = mod ? (uint32_t) a->rows_per_batch : 1,
    .mod_stride = mod ? (uint32_t) a->mod_stride : 0,
    .kind = a->kind == TS_NORM_RMS, .has_w = a->weight != NULL, .has_b = a->bias != NULL,
    .has_mod = mod, .eps = a->eps,
  };
  d.spec[0] = WG_ROW (vk);
  d.n_spec = 1;
  d.push = &pc;
  d.push_size = sizeof pc;
  d.groups[0] = cap_groups ((uint64_t) a->rows);
  d.groups[1] = d.groups[2] = 1;
  d.cost = elements_cost (vk, (double) a->rows * (double) a->dim);
  return ts_vk_dispatch (vk, &d, err);
}

ts_status
ts_vk_softmax (void *impl, const ts_softmax_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st = TS_OK;
  ts_vk_dispatch_desc d = { .shader = TS_VK_SHADER_SOFTMAX, .label = "softmax" };
  ts_vk_softmax_push pc;

  if (a->rows == 0 || a->dim == 0)
    return TS_OK;
  d.operands[0] = operand (a->x, extent (1, 0, a->rows, a->dim, a->dim));
  d.n_operands = 1;
  if (!fits (vk, &d)) {
    const split_dim rows = {
      .count = offsetof (ts_softmax_args, rows), .n_refs = 1,
      .refs = { { .ref = offsetof (ts_softmax_args, x), .unit = a->dim, .span = a->dim } },
    };
    if (run_split (vk, OP_SOFTMAX, a, sizeof *a, &rows, &st, err))
      return st;
  }
  pc = (ts_vk_softmax_push) { off (vk, &d.operands[0]), (uint32_t) a->rows, (uint32_t) a->dim };
  d.spec[0] = WG_ROW (vk);
  d.n_spec = 1;
  d.push = &pc;
  d.push_size = sizeof pc;
  d.groups[0] = cap_groups ((uint64_t) a->rows);
  d.groups[1] = d.groups[2] = 1;
  return ts_vk_dispatch (vk, &d, err);
}

ts_status
ts_vk_attention (void *impl, const ts_attention_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st = TS_OK;
  ts_vk_dispatch_desc d = { .shader = TS_VK_SHADER_ATTENTION, .label = "attention" };
  ts_vk_attention_push pc;
  int64_t width;
  const uint32_t wg = 32;

  if (a->batch == 0 || a->heads == 0 || a->seq_q == 0 || a->d_head == 0)
    return TS_OK;
  if (a->d_head > 256)
    return ts_error_set (err, TS_ERR_UNSUPPORTED,
                         "vk: attention: d_head = %lld is larger than the kernel's 256",
                         (long long) a->d_head);
  width = a->heads * a->d_head;
  /* On a CPU-type device the whole op in one dispatch is seconds that a cancel cannot
   * interrupt: pieces of whole workgroups of query rows (each row is computed alone, so the
   * results are the same). */
  if (vk->cpu_type && !a->causal) {
    double per_row = 4.0 * (double) a->batch * (double) a->heads * (double) a->seq_kv * (double) a->d_head;
    int64_t rows = (int64_t) (TS_VK_ATTENTION_FLOP_CPU / per_row) / wg * wg;
    const split_dim pieces = {
      .count = offsetof (ts_attention_args, seq_q), .per = rows > (int64_t) wg ? rows : (int64_t) wg,
      .n_refs = 2,
      .refs = { { .ref = offsetof (ts_attention_args, q), .unit = a->ldq, .span = width },
                { .ref = offsetof (ts_attention_args, out), .unit = a->ldo, .span = width } },
    };
    if (run_split (vk, OP_ATTENTION, a, sizeof *a, &pieces, &st, err))
      return st;
  }
  d.operands[0] = operand (a->q, extent (a->batch, a->bs_q, a->seq_q, a->ldq, width));
  d.operands[1] = operand (a->k, extent (a->batch, a->bs_k, a->seq_kv, a->ldk, width));
  d.operands[2] = operand (a->v, extent (a->batch, a->bs_v, a->seq_kv, a->ldv, width));
  d.operands[3] = operand (a->out, extent (a->batch, a->bs_o, a->seq_q, a->ldo, width));
  d.n_operands = 4;
  if (!fits (vk, &d)) {
    /* batches, then query rows; every query piece reads all keys (the causal mask would
     * need the offset) */
    const split_dim batches = {
      .count = offsetof (ts_attention_args, batch), .per = 1, .n_refs = 4,
      .refs = { { .ref = offsetof (ts_attention_args, q), .unit = a->bs_q },
                { .ref = offsetof (ts_attention_args, k), .unit = a->bs_k },
                { .ref = offsetof (ts_attention_args, v), .unit = a->bs_v },
                { .ref = offsetof (ts_attention_args, out), .unit = a->bs_o } },
    };
    const split_dim queries = {
      .count = offsetof (ts_attention_args, seq_q), .n_refs = 2,
      .refs = { { .ref = offsetof (ts_attention_args, q), .unit = a->ldq, .span = width },
                { .ref = offsetof (ts_attention_args, out), .unit = a->ldo, .span = width } },
    };
    if (run_split (vk, OP_ATTENTION, a, sizeof *a, &batches, &st, err)
        || (!a->causal && run_split (vk, OP_ATTENTION, a, sizeof *a, &queries, &st, err)))
      return st;
  }
  pc = (ts_vk_attention_push) {
    .q_off = off (vk, &d.operands[0]), .k_off = off (vk, &d.operands[1]),
    .v_off = off (vk, &d.operands[2]), .o_off = off (vk, &d.operands[3]),
    .ldq = (uint32_t) a->ldq, .ldk = (uint32_t) a->ldk, .ldv = (uint32_t) a->ldv,
    .ldo = (uint32_t) a->ldo, .bs_q = (uint32_t) a->bs_q, .bs_k = (uint32_t) a->bs_k,
    .bs_v = (uint32_t) a->bs_v, .bs_o = (uint32_t) a->bs_o, .batch = (uint32_t) a->batch,
    .heads = (uint32_t) a->heads, .seq_q = (uint32_t) a->seq_q, .seq_kv = (uint32_t) a->seq_kv,
    .scale = a->scale, .causal = a->causal,
  };
  d.spec[0] = wg;
  d.spec[1] = (uint32_t) a->d_head;
  d.n_spec = 2;
  d.push = &pc;
  d.push_size = sizeof pc;
  d.groups[0] = (uint32_t) ((a->seq_q + wg - 1) / wg);
  d.groups[1] = (uint32_t) a->heads;
  d.groups[2] = (uint32_t) a->batch;
  d.flops = 4.0 * (double) a->batch * (double) a->heads * (double) a->seq_q
            * (double) a->seq_kv * (double) a->d_head * (a->causal ? 0.5 : 1.0);
  return ts_vk_dispatch (vk, &d, err);
}

ts_status
ts_vk_rope (void *impl, const ts_rope_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st = TS_OK;
  ts_vk_dispatch_desc d = { .shader = TS_VK_SHADER_ROPE, .label = "rope" };
  ts_vk_rope_push pc;

  if (a->batch == 0 || a->seq == 0 || a->heads == 0 || a->d_head < 2)
    return TS_OK;
  d.operands[0] = operand (a->x, extent (a->batch, a->bs_x, a->seq, a->ldx, a->heads * a->d_head));
  d.operands[1] = operand (a->cos, extent (1, 0, a->seq, a->d_head, a->d_head));
  d.operands[2] = operand (a->sin, extent (1, 0, a->seq, a->d_head, a->d_head));
  d.n_operands = 3;
  if (!fits (vk, &d)) {
    /* batches, then sequence positions */
    const split_dim batches = {
      .count = offsetof (ts_rope_args, batch), .per = 1, .n_refs = 1,
      .refs = { { .ref = offsetof (ts_rope_args, x), .unit = a->bs_x } },
    };
    const split_dim positions = {
      .count = offsetof (ts_rope_args, seq), .n_refs = 3,
      .refs = { { .ref = offsetof (ts_rope_args, x), .unit = a->ldx, .span = a->heads * a->d_head },
                { .ref = offsetof (ts_rope_args, cos), .unit = a->d_head, .span = a->d_head },
                { .ref = offsetof (ts_rope_args, sin), .unit = a->d_head, .span = a->d_head } },
    };
    if (run_split (vk, OP_ROPE, a, sizeof *a, &batches, &st, err)
        || run_split (vk, OP_ROPE, a, sizeof *a, &positions, &st, err))
      return st;
  }
  pc = (ts_vk_rope_push) {
    .x_off = off (vk, &d.operands[0]), .cos_off = off (vk, &d.operands[1]),
    .sin_off = off (vk, &d.operands[2]), .ldx = (uint32_t) a->ldx, .bs_x = (uint32_t) a->bs_x,
    .batch = (uint32_t) a->batch, .seq = (uint32_t) a->seq, .heads = (uint32_t) a->heads,
    .d_head = (uint32_t) a->d_head,
  };
  return dispatch_1d (vk, &d, &pc, sizeof pc, (uint64_t) (a->batch * a->seq * a->heads * (a->d_head / 2)), err);
}

ts_status
ts_vk_act (void *impl, const ts_act_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st = TS_OK;
  ts_vk_dispatch_desc d = { .shader = TS_VK_SHADER_ACT, .label = "act" };
  ts_vk_act_push pc;

  if (a->rows == 0 || a->cols == 0)
    return TS_OK;
  d.operands[0] = operand (a->x, extent (1, 0, a->rows, a->ldx, a->cols));
  d.operands[1] = operand (a->y, extent (1, 0, a->rows, a->ldy, a->cols));
  d.n_operands = 2;
  /* rows, or one row at a time in column pieces when a row is too large; on a CPU-type
   * device then rows of about TS_VK_PIECE_ELEMENTS_CPU elements */
  split_dim rows = {
    .count = offsetof (ts_act_args, rows), .columns = true,
    .cols = offsetof (ts_act_args, cols), .n_refs = 2,
    .refs = { { .ref = offsetof (ts_act_args, x), .unit = a->ldx, .span = a->cols },
              { .ref = offsetof (ts_act_args, y), .unit = a->ldy, .span = a->cols } },
  };
  if (!fits (vk, &d) && run_split (vk, OP_ACT, a, sizeof *a, &rows, &st, err))
    return st;
  rows.columns = false;
  if ((rows.per = piece_units (vk, a->cols)) > 0
      && run_split (vk, OP_ACT, a, sizeof *a, &rows, &st, err))
    return st;
  pc = (ts_vk_act_push) {
    .x_off = off (vk, &d.operands[0]), .y_off = off (vk, &d.operands[1]),
    .rows = (uint32_t) a->rows, .cols = (uint32_t) a->cols, .ldx = (uint32_t) a->ldx,
    .ldy = (uint32_t) a->ldy,
    .kind = a->kind == TS_ACT_SILU ? 0u : a->kind == TS_ACT_GELU_TANH ? 1u : 2u,
  };
  return dispatch_1d (vk, &d, &pc, sizeof pc, (uint64_t) (a->rows * a->cols), err);
}

ts_status
ts_vk_elementwise (void *impl, const ts_elementwise_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st = TS_OK;
  ts_vk_dispatch_desc d = { .shader = TS_VK_SHADER_ELEMENTWISE, .label = "elementwise" };
  ts_vk_elementwise_push pc;
  bool need_b, need_g;
  uint32_t kind = 0;

  if (a->rows == 0 || a->cols == 0)
    return TS_OK;
  switch (a->kind) {
  case TS_EW_ADD: kind = 0; break;
  case TS_EW_MUL: kind = 1; break;
  case TS_EW_GATED_ADD: kind = 2; break;
  case TS_EW_CFG: kind = 3; break;
  case TS_EW_COPY: kind = 4; break;
  case TS_EW_BIAS_ADD: kind = 5; break;
  }
  need_b = kind <= 3;
  need_g = kind == 2 || kind == 5;
  d.operands[0] = operand (a->a, extent (1, 0, a->rows, a->lda, a->cols));
  if (need_b)
    d.operands[1] = operand (a->b, extent (1, 0, a->rows, a->ldb, a->cols));
  d.operands[2] = operand (a->y, extent (1, 0, a->rows, a->ldy, a->cols));
  if (need_g)
    d.operands[3] = operand (a->gate, extent (1, 0, (a->rows + a->rows_per_batch - 1)
                                                       / a->rows_per_batch,
                                              a->gate_stride, a->cols));
  d.n_operands = 4;
  /* rows (whole batches of the gate, or part of one), or one row at a time in column
   * pieces when a row is too large; on a CPU-type device then rows of about
   * TS_VK_PIECE_ELEMENTS_CPU elements */
  split_dim rows = {
    .count = offsetof (ts_elementwise_args, rows), .columns = true,
    .cols = offsetof (ts_elementwise_args, cols), .rpb = need_g ? a->rows_per_batch : 0,
    .n_refs = 4,
    .refs = { { .ref = offsetof (ts_elementwise_args, a), .unit = a->lda, .span = a->cols },
              { .ref = offsetof (ts_elementwise_args, y), .unit = a->ldy, .span = a->cols },
              { .ref = offsetof (ts_elementwise_args, b), .unit = a->ldb, .span = a->cols,
                .skip = !need_b },
              { .ref = offsetof (ts_elementwise_args, gate), .unit = a->gate_stride,
                .per_batch = true, .skip = !need_g } },
  };
  if (!fits (vk, &d) && run_split (vk, OP_ELEMENTWISE, a, sizeof *a, &rows, &st, err))
    return st;
  rows.columns = false;
  if ((rows.per = piece_units (vk, a->cols)) > 0
      && run_split (vk, OP_ELEMENTWISE, a, sizeof *a, &rows, &st, err))
    return st;
  pc = (ts_vk_elementwise_push) {
    .a_off = off (vk, &d.operands[0]), .b_off = off (vk, &d.operands[1]),
    .y_off = off (vk, &d.operands[2]), .g_off = off (vk, &d.operands[3]),
    .rows = (uint32_t) a->rows, .cols = (uint32_t) a->cols, .lda = (uint32_t) a->lda,
    .ldb = need_b ? (uint32_t) a->ldb : 0, .ldy = (uint32_t) a->ldy,
    .rows_per_batch = need_g ? (uint32_t) a->rows_per_batch : 1,
    .gate_stride = need_g ? (uint32_t) a->gate_stride : 0, .kind = kind, .s = a->s,
  };
  return dispatch_1d (vk, &d, &pc, sizeof pc, (uint64_t) (a->rows * a->cols), err);
}

/* y[b, c, r] = x[b, r, c] for a batch x rows x cols block whose rows are ldx (x) and ldy
 * (y) elements apart. */
static ts_status
transpose_tile (ts_vk *vk, ts_ref x, ts_ref y, int64_t batch, int64_t rows, int64_t cols,
                int64_t ldx, int64_t ldy, ts_error *err)
{
  ts_vk_dispatch_desc d = { .shader = TS_VK_SHADER_TRANSPOSE, .label = "transpose" };
  ts_vk_transpose_push pc;

  d.operands[0] = operand (x, extent (1, 0, batch * rows, ldx, cols));
  d.operands[1] = operand (y, extent (1, 0, batch * cols, ldy, rows));
  d.n_operands = 2;
  pc = (ts_vk_transpose_push) { off (vk, &d.operands[0]), off (vk, &d.operands[1]),
                                (uint32_t) batch, (uint32_t) rows, (uint32_t) cols,
                                (uint32_t) ldx, (uint32_t) ldy };
  return dispatch_1d (vk, &d, &pc, sizeof pc, (uint64_t) (batch * rows * cols), err);
}

ts_status
ts_vk_transpose (void *impl, const ts_transpose_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st = TS_OK;
  const int64_t cap = cap_elems (vk), plane = a->rows * a->cols;
  int64_t tr, tc;

  if (a->batch == 0 || a->rows == 0 || a->cols == 0)
    return TS_OK;
  if (a->batch * plane <= cap)
    return transpose_tile (vk, a->x, a->y, a->batch, a->rows, a->cols, a->cols, a->rows, err);
  /* tiles of tr x tc of each batch entry: x spans (tr - 1) cols + tc <= tr cols, y spans
   * (tc - 1) rows + tr */
  tr = cap / a->cols < 1 ? 1 : cap / a->cols > a->rows ? a->rows : cap / a->cols;
  tc = cap < tr ? 1 : (cap - tr) / a->rows + 1;
  tc = tc > a->cols ? a->cols : tc;
  for (int64_t b = 0; st == TS_OK && b < a->batch; b++)
    for (int64_t r0 = 0; st == TS_OK && r0 < a->rows; r0 += tr)
      for (int64_t c0 = 0; st == TS_OK && c0 < a->cols; c0 += tc)
        st = transpose_tile (vk, ts_ref_f32 (a->x, b * plane + r0 * a->cols + c0),
                             ts_ref_f32 (a->y, b * plane + c0 * a->rows + r0), 1,
                             tr < a->rows - r0 ? tr : a->rows - r0,
                             tc < a->cols - c0 ? tc : a->cols - c0, a->cols, a->rows, err);
  return st;
}

/* The plain form of conv2d.comp (every transposed convolution) runs about 8 times fewer
 * flop/s on lavapipe than the lane-sharing form (TESSERA_VK_PROFILE, tiny model at 1024²:
 * conv_transpose2d 0.2 GFLOP/s, conv2d 1.5 to 2), so on a CPU-type device its pieces and
 * submissions count its flops 8 times. */
#define CONV_PLAIN_COST_CPU 8.0

/* On CPU-type devices with subgroup broadcast (the ROWS GEMM's condition) conv2d runs the
 * shader's lane-sharing form: 4 pixels x 2 subgroups' worth of channels per invocation.
 * d->flops is the whole op's. One dispatch covers every item (pixel, or run of 4 pixels)
 * of the output planes; on a CPU-type device, where that is seconds that a cancel cannot
 * interrupt, consecutive items go in dispatches of whole workgroups of about
 * TS_VK_CONV_FLOP_CPU each (every item is computed alone, so the results are the same). */
static ts_status
conv_dispatch (ts_vk *vk, ts_vk_dispatch_desc *d, ts_vk_conv2d_push *pc, uint32_t transposed,
               ts_error *err)
{
  uint32_t oc = 8, wg = 64, sg = 0;
  uint64_t items = (uint64_t) pc->h_out * pc->w_out, per;
  const double flops = d->flops;
  double cost = flops;
  ts_status st = TS_OK;

  if (!transposed && vk->cpu_type && vk->gemm == TS_VK_GEMM_ROWS) {
    sg = vk->subgroup_size;
    oc = 2 * sg;
    wg = 4 * sg;
    items = (uint64_t) pc->h_out * ((pc->w_out + 3) / 4);
  }
  d->spec[0] = wg;
  d->spec[1] = transposed;
  d->spec[2] = oc;
  d->spec[3] = sg;
  d->spec[4] = sg && pc->w_out % 4 == 0 && pc->y_off % 4 == 0;
  d->n_spec = 5;
  d->push = pc;
  d->push_size = sizeof *pc;
  d->groups[1] = (pc->c_out + oc - 1) / oc;
  d->groups[2] = pc->batch;
  per = items;
  if (vk->cpu_type && flops > 0) {
    cost = sg ? flops : flops * CONV_PLAIN_COST_CPU;
    per = (uint64_t) (TS_VK_CONV_FLOP_CPU / (cost / (double) items)) / wg * wg;
    per = per > wg ? per : wg;
  }
  for (uint64_t g0 = 0; st == TS_OK && g0 < items; g0 += per) {
    const uint64_t n = per < items - g0 ? per : items - g0;
    pc->g0 = (uint32_t) g0;
    pc->g1 = (uint32_t) (g0 + n);
    d->groups[0] = groups_1d (n, wg);
    d->flops = flops * (double) n / (double) items;
    d->cost = cost * (double) n / (double) items;
    st = ts_vk_dispatch (vk, d, err);
  }
  return st;
}

ts_status
ts_vk_conv2d (void *impl, const ts_conv2d_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st = TS_OK;
  ts_vk_dispatch_desc d = { .shader = TS_VK_SHADER_CONV2D, .label = "conv2d" };
  ts_vk_conv2d_push pc;

  if (a->batch == 0 || a->c_out == 0 || a->h_out == 0 || a->w_out == 0)
    return TS_OK;
  d.operands[0] = operand (a->x, (size_t) (a->batch * a->c_in * a->h * a->w_in) * sizeof (float));
  d.operands[1] = weight_operand (a->w);
  d.operands[2] = weight_operand (a->bias);
  d.operands[3] = operand (a->y, (size_t) (a->batch * a->c_out * a->h_out * a->w_out)
                                     * sizeof (float));
  d.n_operands = 4;
  if (!fits (vk, &d)) {
    const split_dim batches = {
      .count = offsetof (ts_conv2d_args, batch), .per = 1, .n_refs = 2,
      .refs = { { .ref = offsetof (ts_conv2d_args, x), .unit = a->c_in * a->h * a->w_in },
                { .ref = offsetof (ts_conv2d_args, y), .unit = a->c_out * a->h_out * a->w_out } },
    };
    if (run_split (vk, OP_CONV2D, a, sizeof *a, &batches, &st, err))
      return st;
  }
  pc = (ts_vk_conv2d_push) {
    .x_off = off (vk, &d.operands[0]), .w_off = off (vk, &d.operands[1]),
    .b_off = off (vk, &d.operands[2]), .y_off = off (vk, &d.operands[3]),
    .batch = (uint32_t) a->batch, .c_in = (uint32_t) a->c_in, .h = (uint32_t) a->h,
    .w_in = (uint32_t) a->w_in, .c_out = (uint32_t) a->c_out, .h_out = (uint32_t) a->h_out,
    .w_out = (uint32_t) a->w_out, .kh = (uint32_t) a->kh, .kw = (uint32_t) a->kw,
    .stride = (uint32_t) a->stride, .pad_top = (uint32_t) a->pad_top,
    .pad_left = (uint32_t) a->pad_left, .has_bias = a->bias != NULL,
  };
  d.flops = 2.0 * (double) a->batch * (double) a->c_out * (double) a->h_out * (double) a->w_out
            * (double) a->c_in * a->kh * a->kw;
  return conv_dispatch (vk, &d, &pc, 0, err);
}

ts_status
ts_vk_conv_transpose2d (void *impl, const ts_conv_transpose2d_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st = TS_OK;
  ts_vk_dispatch_desc d = { .shader = TS_VK_SHADER_CONV2D, .label = "conv_transpose2d" };
  ts_vk_conv2d_push pc;
  int64_t h_out, w_out;

  h_out = a->h * a->k;
  w_out = a->w_in * a->k;
  if (a->batch == 0 || a->c_out == 0 || h_out == 0 || w_out == 0)
    return TS_OK;
  d.operands[0] = operand (a->x, (size_t) (a->batch * a->c_in * a->h * a->w_in) * sizeof (float));
  d.operands[1] = weight_operand (a->w);
  d.operands[2] = weight_operand (a->bias);
  d.operands[3] = operand (a->y, (size_t) (a->batch * a->c_out * h_out * w_out) * sizeof (float));
  d.n_operands = 4;
  if (!fits (vk, &d)) {
    const split_dim batches = {
      .count = offsetof (ts_conv_transpose2d_args, batch), .per = 1, .n_refs = 2,
      .refs = { { .ref = offsetof (ts_conv_transpose2d_args, x), .unit = a->c_in * a->h * a->w_in },
                { .ref = offsetof (ts_conv_transpose2d_args, y),
                  .unit = a->c_out * h_out * w_out } },
    };
    if (run_split (vk, OP_CONV_TRANSPOSE2D, a, sizeof *a, &batches, &st, err))
      return st;
  }
  pc = (ts_vk_conv2d_push) {
    .x_off = off (vk, &d.operands[0]), .w_off = off (vk, &d.operands[1]),
    .b_off = off (vk, &d.operands[2]), .y_off = off (vk, &d.operands[3]),
    .batch = (uint32_t) a->batch, .c_in = (uint32_t) a->c_in, .h = (uint32_t) a->h,
    .w_in = (uint32_t) a->w_in, .c_out = (uint32_t) a->c_out, .h_out = (uint32_t) h_out,
    .w_out = (uint32_t) w_out, .kh = (uint32_t) a->k, .kw = (uint32_t) a->k,
    .stride = (uint32_t) a->k, .has_bias = a->bias != NULL,
  };
  d.flops = 2.0 * (double) a->batch * (double) a->c_out * (double) h_out * (double) w_out
            * (double) a->c_in;
  return conv_dispatch (vk, &d, &pc, 1, err);
}

/* The scratch statistics ([batch, groups, 2] floats, `bytes` of them at least) of a
 * group_norm full pass whose statistics run in pieces; kept for later calls and grown
 * when too small (freeing waits until the device is done with it). */
static ts_status
gn_stats_scratch (ts_vk *vk, size_t bytes, ts_error *err)
{
  if (vk->gn_stats && vk->gn_stats->size >= bytes)
    return TS_OK;
  if (vk->gn_stats) {
    vk->total += vk->gn_stats->size;
    ts_vk_buffer_free (vk, vk->gn_stats);
  }
  vk->gn_stats = ts_vk_buffer_new (vk, bytes > 4096 ? bytes : 4096, err);
  if (!vk->gn_stats)
    return err ? err->code : TS_ERR_NOMEM;
  vk->total -= vk->gn_stats->size; /* not the caller's memory */
  ts_vk_set_name (vk, VK_OBJECT_TYPE_BUFFER, (uint64_t) ts_vk_buffer_handle (vk->gn_stats),
                  "group_norm stats");
  return TS_OK;
}

/* Dispatches `pass` over the elements [0, n) of every (batch, group) pair in pieces of
 * `per` of them (statistics merge piece by piece: the shader counts the i0 elements
 * before a piece as done). */
static ts_status
gn_pieces (ts_vk *vk, ts_vk_dispatch_desc *d, ts_vk_group_norm_push *pc, ts_gn_pass pass,
           int64_t pairs, int64_t n, int64_t per, ts_error *err)
{
  ts_status st = TS_OK;

  pc->pass = (uint32_t) pass;
  for (int64_t i0 = 0; st == TS_OK && i0 < n; i0 += per) {
    pc->i0 = (uint32_t) i0;
    pc->i1 = (uint32_t) (per < n - i0 ? i0 + per : n);
    d->cost = elements_cost (vk, (double) pairs * (double) (pc->i1 - pc->i0));
    st = ts_vk_dispatch (vk, d, err);
  }
  return st;
}

ts_status
ts_vk_group_norm (void *impl, const ts_group_norm_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st = TS_OK;
  ts_vk_dispatch_desc d = { .shader = TS_VK_SHADER_GROUP_NORM, .label = "group_norm" };
  ts_vk_group_norm_push pc;
  size_t bytes;
  int64_t n, pairs, per_stats, per_apply, per_full;
  uint32_t wg = WG_ROW (vk);

  if (a->batch == 0 || a->c == 0 || a->hw == 0)
    return TS_OK;
  bytes = (size_t) (a->batch * a->c * a->hw) * sizeof (float);
  d.operands[0] = operand (a->x, bytes);
  if (a->pass != TS_GN_STATS)
    d.operands[1] = operand (a->y, bytes);
  d.operands[2] = weight_operand (a->weight);
  d.operands[3] = weight_operand (a->bias);
  if (a->pass != TS_GN_FULL)
    d.operands[4] = operand (a->stats, (size_t) (a->batch * a->groups) * 2 * sizeof (float));
  d.n_operands = 5;
  if (!fits (vk, &d)) {
    const split_dim batches = {
      .count = offsetof (ts_group_norm_args, batch), .per = 1, .n_refs = 3,
      .refs = { { .ref = offsetof (ts_group_norm_args, x), .unit = a->c * a->hw },
                { .ref = offsetof (ts_group_norm_args, y), .unit = a->c * a->hw,
                  .skip = a->pass == TS_GN_STATS },
                { .ref = offsetof (ts_group_norm_args, stats), .unit = (int64_t) a->groups * 2,
                  .skip = a->pass == TS_GN_FULL } },
    };
    if (run_split (vk, OP_GROUP_NORM, a, sizeof *a, &batches, &st, err))
      return st;
  }
  n = a->c / a->groups * a->hw;
  pairs = a->batch * a->groups;
  pc = (ts_vk_group_norm_push) {
    .x_off = off (vk, &d.operands[0]), .y_off = off (vk, &d.operands[1]),
    .w_off = off (vk, &d.operands[2]), .b_off = off (vk, &d.operands[3]),
    .s_off = off (vk, &d.operands[4]), .batch = (uint32_t) a->batch, .c = (uint32_t) a->c,
    .hw = (uint32_t) a->hw, .groups = (uint32_t) a->groups, .has_w = a->weight != NULL,
    .has_b = a->bias != NULL, .silu = a->silu, .eps = a->eps, .hw_done = (float) a->hw_done,
  };
  d.spec[0] = wg;
  d.n_spec = 1;
  d.push = &pc;
  d.push_size = sizeof pc;
  d.groups[0] = cap_groups ((uint64_t) pairs);
  d.groups[1] = d.groups[2] = 1;
  /* One workgroup reduces a whole (batch, group) pair, so elsewhere every pass is one
   * dispatch. On a CPU-type device llvmpipe's loop limit holds each invocation to
   * TS_VK_LOOP_ITERATIONS_CPU iterations (less a margin for the reductions' loops) over
   * the pairs its workgroup takes: the statistics (two loops over the elements) and a
   * full pass (three) run in pieces of elements, merged piece by piece, and the
   * normalising pass with kept statistics in pieces of about TS_VK_PIECE_ELEMENTS_CPU
   * elements of every pair at once, so that each piece keeps all the workgroups. */
  per_stats = per_apply = per_full = n;
  if (vk->cpu_type) {
    int64_t rounds = (pairs + d.groups[0] - 1) / d.groups[0];
    int64_t iters = TS_VK_LOOP_ITERATIONS_CPU / rounds - 64;
    iters = iters > 3 ? iters : 3;
    per_stats = (int64_t) wg * (iters / 2);
    per_full = (int64_t) wg * (iters / 3);
    per_apply = piece_units (vk, pairs);
    per_apply = per_apply < (int64_t) wg * iters ? per_apply : (int64_t) wg * iters;
  }
  switch (a->pass) {
  case TS_GN_FULL:
    if (n <= per_full)
      return gn_pieces (vk, &d, &pc, TS_GN_FULL, pairs, n, n, err);
    /* statistics into the scratch, then normalised with them */
    if ((st = gn_stats_scratch (vk, (size_t) pairs * 2 * sizeof (float), err)) != TS_OK)
      return st;
    d.operands[4] = operand (ts_ref_at (vk->gn_stats, 0), (size_t) pairs * 2 * sizeof (float));
    pc.s_off = off (vk, &d.operands[4]);
    pc.hw_done = 0.0f;
    if ((st = gn_pieces (vk, &d, &pc, TS_GN_STATS, pairs, n, per_stats, err)) != TS_OK)
      return st;
    return gn_pieces (vk, &d, &pc, TS_GN_APPLY, pairs, n, per_apply, err);
  case TS_GN_STATS: return gn_pieces (vk, &d, &pc, TS_GN_STATS, pairs, n, per_stats, err);
  case TS_GN_APPLY: return gn_pieces (vk, &d, &pc, TS_GN_APPLY, pairs, n, per_apply, err);
  }
  return ts_error_set (err, TS_ERR_INVALID_ARG, "group_norm: unknown pass %d", (int) a->pass);
}

ts_status
ts_vk_upsample (void *impl, const ts_upsample_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st = TS_OK;
  ts_vk_dispatch_desc d = { .shader = TS_VK_SHADER_UPSAMPLE, .label = "upsample" };
  ts_vk_upsample_push pc;
  const int64_t hw = a->h * a->w;
  int64_t n_in;

  n_in = a->batch * a->c * hw;
  if (n_in == 0)
    return TS_OK;
  d.operands[0] = operand (a->x, (size_t) n_in * sizeof (float));
  d.operands[1] = operand (a->y, (size_t) n_in * 4 * sizeof (float));
  d.n_operands = 2;
  /* channel planes of the batch x c planes; on a CPU-type device then planes of about
   * TS_VK_PIECE_ELEMENTS_CPU output elements */
  split_dim planes = {
    .count = offsetof (ts_upsample_args, c), .fold = true,
    .outer = offsetof (ts_upsample_args, batch), .n_refs = 2,
    .refs = { { .ref = offsetof (ts_upsample_args, x), .unit = hw, .span = hw },
              { .ref = offsetof (ts_upsample_args, y), .unit = 4 * hw, .span = 4 * hw } },
  };
  if (!fits (vk, &d) && run_split (vk, OP_UPSAMPLE, a, sizeof *a, &planes, &st, err))
    return st;
  if ((planes.per = piece_units (vk, 4 * hw)) > 0
      && run_split (vk, OP_UPSAMPLE, a, sizeof *a, &planes, &st, err))
    return st;
  pc = (ts_vk_upsample_push) { off (vk, &d.operands[0]), off (vk, &d.operands[1]),
                               (uint32_t) a->batch, (uint32_t) a->c, (uint32_t) a->h,
                               (uint32_t) a->w };
  d.spec[0] = WG_1D;
  d.n_spec = 1;
  d.push = &pc;
  d.push_size = sizeof pc;
  d.groups[0] = groups_1d ((uint64_t) n_in * 4, WG_1D);
  d.groups[1] = d.groups[2] = 1;
  d.cost = elements_cost (vk, 4.0 * (double) n_in);
  return ts_vk_dispatch (vk, &d, err);
}

/* The ids are read back and checked on the host first: an id outside the table is an
 * error (as on the CPU), never an out-of-bounds read on the device. Embeddings run a few
 * times per generation, so the wait this costs does not matter. */
ts_status
ts_vk_embed (void *impl, const ts_embed_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st = TS_OK;
  ts_vk_dispatch_desc d = { .label = "embed" };
  ts_vk_embed_push pc;
  int32_t *ids = NULL;
  uint32_t bf16;

  if (a->n == 0)
    return TS_OK;
  if (a->n * a->dim > cap_elems (vk)) {
    const split_dim positions = {
      .count = offsetof (ts_embed_args, n), .n_refs = 2,
      .refs = { { .ref = offsetof (ts_embed_args, ids), .unit = 1, .span = 1 },
                { .ref = offsetof (ts_embed_args, y), .unit = a->dim, .span = a->dim } },
    };
    if (run_split (vk, OP_EMBED, a, sizeof *a, &positions, &st, err))
      return st;
  }
  ids = malloc ((size_t) a->n * sizeof *ids);
  if (!ids)
    return ts_error_set (err, TS_ERR_NOMEM, "embed: out of host memory");
  if ((st = ts_vk_download (vk, a->ids, ids, (size_t) a->n * sizeof *ids, err)) != TS_OK)
    goto out;
  for (int64_t i = 0; i < a->n; i++)
    if (ids[i] < 0 || ids[i] >= a->table->shape[0]) {
      st = ts_error_set (err, TS_ERR_INVALID_ARG,
                         "embed: id %d at position %lld is outside table '%s' of %lld rows",
                         (int) ids[i], (long long) i,
                         a->table->name ? a->table->name : "(unnamed)",
                         (long long) a->table->shape[0]);
      goto out;
    }
  if (a->dim == 0)
    goto out;
  d.operands[0] = weight_operand (a->table);
  d.operands[1] = operand (a->ids, (size_t) a->n * sizeof (int32_t));
  d.operands[2] = operand (a->y, (size_t) (a->n * a->dim) * sizeof (float));
  d.n_operands = 3;
  pc = (ts_vk_embed_push) { off (vk, &d.operands[0]), off (vk, &d.operands[1]),
                            off (vk, &d.operands[2]), (uint32_t) a->n, (uint32_t) a->dim,
                            (uint32_t) a->table->shape[0] };
  d.shader = weight_shader (a->table, TS_VK_SHADER_EMBED, TS_VK_SHADER_EMBED_W16, &bf16);
  d.spec[0] = WG_1D;
  d.spec[1] = weight_kn (a->table);
  d.spec[2] = bf16;
  d.n_spec = 3;
  d.push = &pc;
  d.push_size = sizeof pc;
  d.groups[0] = groups_1d ((uint64_t) (a->n * a->dim), WG_1D);
  d.groups[1] = d.groups[2] = 1;
  st = ts_vk_dispatch (vk, &d, err);
out:
  free (ids);
  return st;
}

/* shaders/sample.comp: 32 neighbouring tokens x 8 code lanes a workgroup. */
ts_status
ts_vk_sample (void *impl, const ts_sample_args *a, ts_error *err)
{
  ts_vk *vk = impl;
  ts_vk_dispatch_desc d = { .shader = TS_VK_SHADER_SAMPLE, .label = "sample" };
  ts_vk_sample_push pc;
  const uint32_t lanes = 8, tokens = 32;
  const size_t grid = (size_t) a->n_tokens * sizeof (int32_t);

  d.operands[0] = operand (a->logits, (size_t) (a->codebook_size * a->n_tokens) * sizeof (float));
  if (a->n_rows == 2)
    d.operands[6] = operand (ts_ref_f32 (a->logits, a->codebook_size * a->n_tokens),
                             (size_t) (a->codebook_size * a->n_tokens) * sizeof (float));
  d.operands[1] = operand (a->sample, grid);
  if (a->draw_codes.buf) {
    d.operands[2] = operand (a->draw_codes, grid);
    if (a->noise)
      d.operands[3] = operand (a->draw_gumbel, grid);
  }
  d.operands[4] = operand (a->codes, grid);
  d.operands[5] = operand (a->confidence, grid);
  d.n_operands = 7;
  pc = (ts_vk_sample_push) {
    .l_off = off (vk, &d.operands[0]), .s_off = off (vk, &d.operands[1]),
    .dc_off = off (vk, &d.operands[2]), .dg_off = off (vk, &d.operands[3]),
    .c_off = off (vk, &d.operands[4]), .f_off = off (vk, &d.operands[5]),
    .lc_off = off (vk, &d.operands[6]), .codebook = (uint32_t) a->codebook_size, .n_tokens = (uint32_t) a->n_tokens,
    .n_rows = (uint32_t) a->n_rows, .mask_id = (uint32_t) a->mask_token_id,
    .noise = a->noise, .recorded = a->draw_codes.buf != NULL,
    .seed_lo = (uint32_t) a->seed, .seed_hi = (uint32_t) (a->seed >> 32),
    .image = a->image_index, .step = a->step_index,
    .guidance = a->guidance_scale, .temperature = a->temperature,
  };
  d.spec[0] = lanes * tokens;
  d.spec[1] = lanes;
  d.n_spec = 2;
  d.push = &pc;
  d.push_size = sizeof pc;
  d.groups[0] = cap_groups (((uint64_t) a->n_tokens + tokens - 1) / tokens);
  d.groups[1] = d.groups[2] = 1;
  return ts_vk_dispatch (vk, &d, err);
}
