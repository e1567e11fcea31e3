/* SPDX-License-Identifier: MIT
 *
 * ts-check — internals of the check backend (engine/backend/check/): the backend that
 * brings up a new device or driver by running every op twice, on the device under test
 * and on the CPU reference (cpu-ref), and comparing the outputs op by op. The object and
 * the ops live in ts-check-backend.c; the comparison rules and the per-op tolerance table
 * in ts-check-compare.c. docs/check-backend.md explains the tolerances and the use.
 *
 * Memory model: a check buffer is a ts_buffer whose impl pairs a buffer of the device with
 * one of the reference; uploads go to both, and after every op the device's output is
 * copied into the reference's buffer. So between ops both hold the same bytes everywhere,
 * every op is checked in isolation on identical inputs, and errors never accumulate. A
 * check weight is a ts_weight whose buffer's impl pairs the two backends' weights.
 */
#ifndef TS_CHECK_H
#define TS_CHECK_H

#include "backend/ts-backend.h"
#include "core/ts-common.h"

#include <stdint.h>

/* The impl of a check buffer's ts_buffer. */
typedef struct {
  ts_buffer *dev, *ref;
} ts_check_buf;

/* The impl of a check weight's ts_buffer. */
typedef struct {
  ts_weight dev, ref;
} ts_check_weight;

/* What is compared, one row of the tolerance table each. An op family can have several
 * (the element-wise copy is exact, the other element-wise kinds round). */
typedef enum {
  TS_CHECK_MATMUL,
  TS_CHECK_NORM,
  TS_CHECK_SOFTMAX,
  TS_CHECK_ATTENTION,
  TS_CHECK_ROPE,
  TS_CHECK_ACT,
  TS_CHECK_ELEMENTWISE,
  TS_CHECK_COPY,
  TS_CHECK_TRANSPOSE,
  TS_CHECK_CONV2D,
  TS_CHECK_CONV_TRANSPOSE2D,
  TS_CHECK_GROUP_NORM,
  TS_CHECK_UPSAMPLE,
  TS_CHECK_EMBED,
  TS_CHECK_SAMPLE,
  TS_CHECK_N_KINDS,
} ts_check_kind;

typedef struct {
  const char *name; /* for messages and the summary */
  double tolerance; /* bound on the relative error (below); 0: bit for bit */
} ts_check_rule;

/* Indexed by ts_check_kind. The relative error of an element is
 * |device - ref| / (|ref| + scale) with scale the RMS of the reference output (the
 * sampler's confidence: a fixed 10), see ts-check-compare.c. */
extern const ts_check_rule ts_check_rules[TS_CHECK_N_KINDS];

/* One output of an op: up to 4 dimensions, strides in elements (F32 or I32). */
typedef struct {
  const char *name; /* the argument: "y", "out", "stats", "codes", ... */
  ts_ref at;        /* as the stage passed it (in a check buffer) */
  bool i32;
  int n_dims;
  int64_t dims[4];
  int64_t strides[4];
} ts_check_operand;

/* The outcome of comparing one op. */
typedef struct {
  double worst;     /* largest relative error over the outputs (0 when exact) */
  int64_t n_near_ties; /* sample: codes that differ only by a draw on a CDF step */
} ts_check_result;

/* Where the op came from and what it was, for the message of a failure. */
typedef struct {
  ts_check_kind kind;
  const char *op;     /* the vtable entry: "matmul" */
  int64_t call;       /* how many calls of `op` came before (TESSERA_CHECK_INJECT's N) */
  const char *where;  /* "transformer single block 3" */
  const char *shapes; /* "m=77 n=768 k=768, weight 'x'" */
} ts_check_context;

/* Compares output `o` of an op: `dev` and `ref` hold its span (from its first element to
 * its last, gaps included) as downloaded from the device and the reference. Elements the
 * op writes are held to the kind's rule; the gaps between them must be bit for bit equal
 * (both held the same bytes before the op, so a difference is a write out of bounds).
 * Fills res->worst; on failure returns TS_ERR_DEVICE with the message. */
ts_status ts_check_compare_f32 (const ts_check_context *ctx, const ts_check_operand *o,
                                const float *dev, const float *ref, ts_check_result *res,
                                ts_error *err);

/* The sample op: codes exact, except a drawn code that differs from the reference's only
 * because the draw lies within rounding of a step of the CDF (checked in double against
 * the Philox uniform, from `logits`, the reference's logits); confidence within
 * 2e-5 + 2e-6 |ref|, FLT_MAX (known tokens) exactly. `sample` is the input token grid. */
ts_status ts_check_compare_sample (const ts_check_context *ctx, const ts_sample_args *a,
                                   const float *logits, const int32_t *sample,
                                   const int32_t *dev_codes, const int32_t *ref_codes,
                                   const float *dev_conf, const float *ref_conf,
                                   ts_check_result *res, ts_error *err);

/* Elements from the first to the last element of o (0 when a dimension is empty). */
int64_t ts_check_operand_span (const ts_check_operand *o);

#endif /* TS_CHECK_H */
