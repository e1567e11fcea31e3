/* SPDX-License-Identifier: MIT
 *
 * ts-backend — the one interface through which every engine stage (text encoder,
 * transformer, VQ-VAE) runs compute. A backend is a vtable of ops plus an opaque impl
 * pointer, in the manner of ggml's backends: `engine/backend/cpu/` implements it (a scalar
 * reference path and a fast path), `engine/backend/vk/` implements it with Vulkan compute shaders.
 * A new op lands in every backend together with its test against the CPU reference.
 *
 * Memory model: a ts_buffer is backend-owned memory (host memory on the CPU, a device
 * buffer on Vulkan). Ops address it through ts_ref = (buffer, byte offset); all tensors are
 * dense and row-major, activations are F32 unless an argument says otherwise, and token
 * ids are I32. Weights are uploaded once into ts_weight objects; the backend chooses how
 * to store them (the CPU fast path keeps f16/bf16 matrices 16-bit and widens them per
 * GEMM, a GPU may keep f16), so stages never look inside a weight.
 *
 * Ops are enqueued in order and may run asynchronously; `download` and `sync` wait. Every
 * call goes through the functions below the vtable, which check the arguments once for all
 * backends (ts-op-check.h) before the backend runs. Every op returns a ts_status
 * (TS_ERR_INVALID_ARG for bad arguments, TS_ERR_DEVICE for a lost device, TS_ERR_NOMEM for
 * out of memory). Thread-safety: Unsafe — one thread drives a backend instance; the backend may
 * use its own worker threads internally.
 *
 * Layout conventions used in the argument comments: [a, b, c] lists dimensions outermost
 * first; "row" means the innermost dimension. Strides are in elements.
 */
#ifndef TS_BACKEND_H
#define TS_BACKEND_H

#include "tessera.h"

typedef struct ts_buffer ts_buffer;

/* Backend memory. Stages treat it as opaque and go through the ops; the fields are shared
 * by the backends so that argument checks (bounds against `size`) are written once. */
struct ts_buffer {
  unsigned char *data; /* host address of byte 0 when the memory is mapped (always on the
                        * CPU; host-visible Vulkan memory), else NULL */
  size_t size;         /* bytes */
  void *impl;          /* the backend's own state (the Vulkan allocation); NULL on the CPU */
};

typedef struct {
  ts_buffer *buf; /* NULL means "absent" where an argument is optional */
  size_t offset;  /* bytes */
} ts_ref;

/* A weight tensor owned by the backend. `dtype` is the storage dtype the backend chose. */
typedef struct {
  ts_buffer *buf;
  ts_dtype dtype;
  int n_dims;
  int64_t shape[4];
  int64_t n_elements;
  const char *name; /* checkpoint key, borrowed from the loader; for errors and profiling */
} ts_weight;

/* ---- op arguments ---- */

/* y[m, n] = (accumulate ? y[m, n] : 0) + sum_k x[m, k] * w[n, k] + bias[n]
 * w has nn.Linear's layout [n, k]; bias (optional) [n]. Rows of x and y are ldx / ldy
 * elements apart (>= k and >= n). A 1x1 convolution over NHWC data is this op too. */
typedef struct {
  ts_ref x;
  int64_t ldx;
  const ts_weight *w;
  const ts_weight *bias; /* NULL: no bias */
  ts_ref y;
  int64_t ldy;
  int64_t m, n, k;
  bool accumulate;
} ts_matmul_args;

typedef enum {
  TS_NORM_LAYER, /* (x - mean) / sqrt(var + eps), biased variance, fp32 statistics */
  TS_NORM_RMS,   /* x * rsqrt(mean(x^2) + eps), fp32 statistics */
} ts_norm_kind;

/* For each of `rows` rows of `dim` elements: y = norm(x) [* weight] [+ bias], then the
 * optional AdaLN modulation y = y * (1 + scale[b]) + shift[b], where b = row / rows_per_batch
 * and shift/scale are [n_batches, dim] vectors with row stride mod_stride. x and y may alias.
 * x rows are ldx apart, y rows ldy apart. */
typedef struct {
  ts_norm_kind kind;
  ts_ref x;
  int64_t ldx;
  ts_ref y;
  int64_t ldy;
  int64_t rows, dim;
  float eps;
  const ts_weight *weight; /* NULL: no affine weight */
  const ts_weight *bias;   /* NULL: no bias */
  ts_ref shift, scale;     /* both absent, or both present */
  int64_t rows_per_batch;
  int64_t mod_stride;
} ts_norm_args;

/* In place softmax over rows of `dim` elements (max-subtracted, fp32). */
typedef struct {
  ts_ref x;
  int64_t rows, dim;
} ts_softmax_args;

/* Scaled dot-product attention, no n x n matrix in memory:
 * out[b, i, h*d_head + :] = sum_j softmax_j(scale * q[b,i,h] . k[b,j,h]) v[b,j,h]
 * q, k, v, out are [batch, seq, heads * d_head] with row strides ld*, and batch strides
 * (in elements) bs_* so that packed qkv or [text ; image] concatenations can be addressed.
 * causal: key j > query i is masked (CLIP). */
typedef struct {
  ts_ref q, k, v, out;
  int64_t ldq, ldk, ldv, ldo;
  int64_t bs_q, bs_k, bs_v, bs_o;
  int64_t batch, heads, seq_q, seq_kv, d_head;
  float scale;
  bool causal;
} ts_attention_args;

/* Rotary embedding on x [batch, seq, heads * d_head] (row stride ldx, batch stride bs_x), in
 * place, with tables cos/sin [seq, d_head] (F32). Adjacent pairs rotate (interleaved):
 * x'[2j] = x[2j] cos - x[2j+1] sin, x'[2j+1] = x[2j+1] cos + x[2j] sin (cos/sin at 2j). */
typedef struct {
  ts_ref x;
  int64_t ldx, bs_x;
  ts_ref cos, sin;
  int64_t batch, seq, heads, d_head;
} ts_rope_args;

typedef enum {
  TS_ACT_SILU,
  TS_ACT_GELU_TANH, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
  TS_ACT_GELU_ERF,  /* 0.5 x (1 + erf(x / sqrt(2))) */
} ts_act_kind;

/* y = act(x) over rows x cols with row strides ldx / ldy; x and y may alias. */
typedef struct {
  ts_act_kind kind;
  ts_ref x, y;
  int64_t rows, cols, ldx, ldy;
} ts_act_args;

typedef enum {
  TS_EW_ADD,       /* y = a + b */
  TS_EW_MUL,       /* y = a * b */
  TS_EW_GATED_ADD, /* y = a + b * gate[row / rows_per_batch]   (gate: [n_batches, cols], stride gate_stride) */
  TS_EW_CFG,       /* y = a + s * (b - a)   (classifier-free guidance: a = uncond, b = cond) */
  TS_EW_COPY,      /* y = a  (strided 2-D copy: concatenation, splitting, packing) */
  TS_EW_BIAS_ADD,  /* y = a + bias[col]  (bias given as gate with rows_per_batch = rows) */
} ts_ew_kind;

/* Element-wise over a rows x cols matrix: a, b and y rows are lda, ldb, ldy apart. Unused
 * operands are absent. y may alias a or b exactly (same ref and stride). */
typedef struct {
  ts_ew_kind kind;
  ts_ref a, b, y, gate;
  int64_t rows, cols, lda, ldb, ldy;
  int64_t rows_per_batch, gate_stride;
  float s;
} ts_elementwise_args;

/* Per-batch 2-D transpose: y[b, c, r] = x[b, r, c] for x [batch, rows, cols]
 * (NCHW <-> NHWC with rows = C, cols = H*W or the other way round). */
typedef struct {
  ts_ref x, y;
  int64_t batch, rows, cols;
} ts_transpose_args;

/* 2-D convolution, NCHW. weight [c_out, c_in, kh, kw]; bias [c_out] optional. Zero padding
 * may be asymmetric (the VQ encoder's downsample pads right and bottom only). Output size
 * h_out = (h + pad_top + pad_bottom - kh) / stride + 1, likewise w_out. */
typedef struct {
  ts_ref x, y;
  const ts_weight *w;
  const ts_weight *bias;
  int64_t batch, c_in, h, w_in, c_out, h_out, w_out;
  int kh, kw, stride;
  int pad_top, pad_left, pad_bottom, pad_right;
} ts_conv2d_args;

/* Transposed convolution with kernel k and stride k (no overlap), NCHW, as
 * nn.ConvTranspose2d(k, stride=k, padding=0): weight [c_in, c_out, k, k]; bias optional.
 * y[b, o, i*k + p, j*k + q] = sum_c x[b, c, i, j] w[c, o, p, q] (+ bias[o]). */
typedef struct {
  ts_ref x, y;
  const ts_weight *w;
  const ts_weight *bias;
  int64_t batch, c_in, h, w_in, c_out;
  int k;
} ts_conv_transpose2d_args;

typedef enum {
  TS_GN_FULL,  /* statistics of x, then y = x normalised with them */
  TS_GN_STATS, /* statistics only: x's merge into `stats`; y is unused */
  TS_GN_APPLY, /* y = x normalised with the statistics in `stats` */
} ts_gn_pass;

/* GroupNorm over NCHW with `groups` groups (fp32 statistics, biased variance), affine
 * weight/bias [c], then SiLU when silu is set. x and y may alias.
 *
 * A tensor too large for one op is normalised in parts along hw (the VQ decoder's row
 * bands, each a dense [batch, c, hw] tensor of its own): TS_GN_STATS over each part in turn
 * keeps the running per-(batch, group) mean and biased variance in stats [batch, groups, 2]
 * (F32), merging the part into the statistics of the `hw_done` positions per channel seen
 * before (0 for the first part, which overwrites stats); then TS_GN_APPLY normalises each
 * part with them. */
typedef struct {
  ts_gn_pass pass;
  ts_ref x, y;
  const ts_weight *weight, *bias;
  int64_t batch, c, hw;
  int groups;
  float eps;
  bool silu;
  ts_ref stats;    /* TS_GN_STATS and TS_GN_APPLY */
  int64_t hw_done; /* TS_GN_STATS */
} ts_group_norm_args;

/* Nearest-neighbour 2x upsample, NCHW: y [batch, c, 2h, 2w]. */
typedef struct {
  ts_ref x, y;
  int64_t batch, c, h, w;
} ts_upsample_args;

/* Embedding gather: y[i, :] = table[ids[i], :] for n ids (I32). An id outside
 * [0, table rows) is an error (TS_ERR_INVALID_ARG) rather than a read out of bounds. */
typedef struct {
  const ts_weight *table; /* [n_rows, dim] */
  ts_ref ids;
  ts_ref y;
  int64_t n, dim;
} ts_embed_args;

/* The per-token part of one MaskGIT sampler step for one image (ts-sample-math.h,
 * ts_sampler_sample_tokens; the re-masking, which needs the whole grid, is
 * ts_sampler_remask on the host, so only `codes` and `confidence` leave the device).
 * logits is [n_rows, codebook_size, n_tokens]: the transformer's output for one image, or
 * with n_rows = 2 the [unconditional ; conditional] pair, sampled from as
 * uncond + guidance_scale * (cond - uncond) rounded after each operation. Per token:
 * softmax over the codebook; an unknown token (sample == mask_token_id) draws its code,
 * from the Philox stream (ts-rng.h: key `seed`, image image_index, step step_index) by
 * inverse CDF, or from draw_codes when present (recorded draws); a known token keeps its
 * id. confidence = log (max (p, 1e-20)) of the chosen code's probability p (FLT_MAX at
 * known tokens), plus temperature * Gumbel noise when `noise` is set (from the Philox
 * stream, or draw_gumbel with draw_codes).
 *
 * The CPU backend runs ts_sampler_sample_tokens, summing in torch's order, and fails with
 * TS_ERR_INVALID_ARG on non-finite logits, known ids outside the codebook or recorded
 * draws outside it. A GPU sums in its own order (exp and log to its own precision, so a
 * draw that lands within rounding of a CDF step may pick the neighbouring code) and cannot
 * fail on data: it writes code -1 for such a token, which ts_sampler_remask rejects. */
typedef struct {
  ts_ref logits;         /* F32 [n_rows, codebook_size, n_tokens] */
  int n_rows;            /* 1, or 2 with guidance */
  float guidance_scale;
  ts_ref sample;         /* I32 [n_tokens] */
  int32_t mask_token_id;
  int64_t codebook_size, n_tokens;
  float temperature;
  bool noise;
  uint64_t seed;
  uint32_t image_index, step_index;
  ts_ref draw_codes;     /* absent, or I32 [n_tokens] recorded codes (read at unknown tokens) */
  ts_ref draw_gumbel;    /* with draw_codes and noise: F32 [n_tokens] recorded Gumbel noise */
  ts_ref codes;          /* out: I32 [n_tokens] */
  ts_ref confidence;     /* out: F32 [n_tokens] */
} ts_sample_args;

/* ---- the vtable ----
 * What a backend implements. Only ts-backend-ops.c calls it, after the checks of
 * ts-op-check.h, so every entry may assume valid arguments (it still fails on data it alone
 * sees, on device limits and on lost devices). */

typedef struct ts_backend_ops {
  const char *name; /* "cpu", "cpu-ref", "vulkan" */
  /* Every op computes each batch element with the same arithmetic whatever the batch size,
   * so images that share a transformer forward come out bit for bit as they would alone
   * (ts_model_generate_batch batches only on such backends). */
  bool batch_invariant;

  ts_buffer *(*buffer_new) (void *impl, size_t size_bytes, ts_error *err);
  void (*buffer_free) (void *impl, ts_buffer *buf);
  ts_status (*upload) (void *impl, ts_ref dst, const void *src, size_t size_bytes, ts_error *err);
  ts_status (*download) (void *impl, ts_ref src, void *dst, size_t size_bytes, ts_error *err);

  /* Creates a weight from host data of dtype src_dtype (F32, F16 or BF16); the host data
   * may be freed or unmapped after the call. The backend picks the storage dtype. */
  ts_status (*weight_upload) (void *impl, ts_weight *w, const char *name, ts_dtype src_dtype,
                              const void *data, int n_dims, const int64_t *shape, ts_error *err);
  void (*weight_free) (void *impl, ts_weight *w);

  ts_status (*matmul) (void *impl, const ts_matmul_args *a, ts_error *err);
  ts_status (*norm) (void *impl, const ts_norm_args *a, ts_error *err);
  ts_status (*softmax) (void *impl, const ts_softmax_args *a, ts_error *err);
  ts_status (*attention) (void *impl, const ts_attention_args *a, ts_error *err);
  ts_status (*rope) (void *impl, const ts_rope_args *a, ts_error *err);
  ts_status (*act) (void *impl, const ts_act_args *a, ts_error *err);
  ts_status (*elementwise) (void *impl, const ts_elementwise_args *a, ts_error *err);
  ts_status (*transpose) (void *impl, const ts_transpose_args *a, ts_error *err);
  ts_status (*conv2d) (void *impl, const ts_conv2d_args *a, ts_error *err);
  ts_status (*conv_transpose2d) (void *impl, const ts_conv_transpose2d_args *a, ts_error *err);
  ts_status (*group_norm) (void *impl, const ts_group_norm_args *a, ts_error *err);
  ts_status (*upsample) (void *impl, const ts_upsample_args *a, ts_error *err);
  ts_status (*embed) (void *impl, const ts_embed_args *a, ts_error *err);
  ts_status (*sample) (void *impl, const ts_sample_args *a, ts_error *err);

  /* The most bytes one operand of one op may span (a Vulkan device's
   * maxStorageBufferRange); SIZE_MAX when there is no such limit. Stages that could exceed
   * it split their tensors (ts-vq's row bands). */
  size_t (*max_operand_bytes) (void *impl);

  /* Optional (NULL: ignored): the stage and layer whose ops follow, for messages that
   * name where an op came from (the check backend's). See ts_backend_scope_set. */
  void (*scope_set) (void *impl, const char *stage, int layer);

  /* Optional (NULL on backends whose memory is the process's): the device memory this
   * backend holds now and the most it has held at once, in bytes, counting every
   * allocation it made from the device (weights, activations, staging). */
  void (*device_memory) (void *impl, uint64_t *in_use, uint64_t *peak);
  /* Optional (NULL: ops cannot be stopped part way): see ts_backend_set_abort. fn NULL
   * clears it. */
  void (*abort_set) (void *impl, ts_should_abort_fn fn, void *data);

  /* Optional (NULL: the backend computes fp32 only): sets the precision mode before the
   * first weight is uploaded, resolving TS_PRECISION_AUTO; *resolved gets FP32 or BF16.
   * TS_ERR_UNSUPPORTED, saying why, for a mode the backend cannot compute. */
  ts_status (*precision_set) (void *impl, ts_precision requested, ts_precision *resolved,
                              ts_error *err);
  /* With precision_set: the mode in force (FP32 until it is set). */
  ts_precision (*precision_get) (void *impl);

  /* Waits for everything enqueued. */
  ts_status (*sync) (void *impl, ts_error *err);
  void (*destroy) (void *impl);
} ts_backend_ops;

typedef struct {
  const ts_backend_ops *ops;
  void *impl;
} ts_backend;

/* ---- the calls stages make ----
 *
 * Stages, the pipeline, the devkit and tests reach a backend only through these functions
 * (ts-backend-ops.c), never through `be->ops` directly: each checks its arguments
 * (ts-op-check.h) and only then calls the backend, so the checks are written once and every
 * backend refuses the same arguments with the same TS_ERR_INVALID_ARG message. Backends
 * assume the arguments they get are valid. */

/* A new buffer of size_bytes, zero-filled. NULL with err filled (TS_ERR_NOMEM) on failure. */
ts_buffer *ts_buffer_new (const ts_backend *be, size_t size_bytes, ts_error *err);
/* NULL-safe. The buffer may still be in use by enqueued ops: the backend waits as needed. */
void ts_buffer_free (const ts_backend *be, ts_buffer *buf);
/* Copies size_bytes from host memory into the buffer at dst (in order with the ops). */
ts_status ts_buffer_upload (const ts_backend *be, ts_ref dst, const void *src, size_t size_bytes,
                            ts_error *err);
/* Waits for the enqueued ops, then copies size_bytes at src into host memory. */
ts_status ts_buffer_download (const ts_backend *be, ts_ref src, void *dst, size_t size_bytes,
                              ts_error *err);
/* The vtable's weight_upload: w is cleared first, so a failed upload leaves it empty. */
ts_status ts_weight_upload (const ts_backend *be, ts_weight *w, const char *name,
                            ts_dtype src_dtype, const void *data, int n_dims,
                            const int64_t *shape, ts_error *err);
/* NULL-safe; clears w. Freeing a cleared weight again is harmless. */
void ts_weight_free (const ts_backend *be, ts_weight *w);
/* Waits for everything enqueued. */
ts_status ts_backend_sync (const ts_backend *be, ts_error *err);
/* The vtable's name: "cpu", "cpu-ref", "vulkan". */
const char *ts_backend_name (const ts_backend *be);
/* ts_backend_ops.batch_invariant of the backend. */
bool ts_backend_batch_invariant (const ts_backend *be);
/* The vtable's max_operand_bytes. */
size_t ts_backend_max_operand_bytes (const ts_backend *be);
/* The vtable's device_memory; false (and zeros) for a backend without device memory. */
bool ts_backend_device_memory (const ts_backend *be, uint64_t *in_use, uint64_t *peak);
/* The vtable's precision_set; without one, FP32 and AUTO give FP32 and BF16 fails. Call
 * before the first weight upload. */
ts_status ts_backend_set_precision (const ts_backend *be, ts_precision requested,
                                    ts_precision *resolved, ts_error *err);
/* The mode in force: FP32 or BF16. */
ts_precision ts_backend_precision (const ts_backend *be);
/* Makes long ops stoppable: until it is called again with fn NULL, the backend polls
 * fn (data) inside its ops (the CPU between blocks of rows, pixels or queries, every few
 * milliseconds of work; Vulkan between command-buffer submissions) and, when it returns
 * true, abandons the op, which fails with TS_ERR_CANCELLED (its outputs are then
 * incomplete, and so is anything enqueued after it). fn is called on the thread that
 * calls the ops, and must be cheap. The pipeline sets it to the generate call's
 * should_abort for the duration of the call. A backend without the vtable entry ignores
 * it: its ops then run to the end. */
void ts_backend_set_abort (const ts_backend *be, ts_should_abort_fn fn, void *data);

ts_status ts_op_matmul (const ts_backend *be, const ts_matmul_args *a, ts_error *err);
ts_status ts_op_norm (const ts_backend *be, const ts_norm_args *a, ts_error *err);
ts_status ts_op_softmax (const ts_backend *be, const ts_softmax_args *a, ts_error *err);
ts_status ts_op_attention (const ts_backend *be, const ts_attention_args *a, ts_error *err);
ts_status ts_op_rope (const ts_backend *be, const ts_rope_args *a, ts_error *err);
ts_status ts_op_act (const ts_backend *be, const ts_act_args *a, ts_error *err);
ts_status ts_op_elementwise (const ts_backend *be, const ts_elementwise_args *a, ts_error *err);
ts_status ts_op_transpose (const ts_backend *be, const ts_transpose_args *a, ts_error *err);
ts_status ts_op_conv2d (const ts_backend *be, const ts_conv2d_args *a, ts_error *err);
ts_status ts_op_conv_transpose2d (const ts_backend *be, const ts_conv_transpose2d_args *a,
                                  ts_error *err);
ts_status ts_op_group_norm (const ts_backend *be, const ts_group_norm_args *a, ts_error *err);
ts_status ts_op_upsample (const ts_backend *be, const ts_upsample_args *a, ts_error *err);
ts_status ts_op_embed (const ts_backend *be, const ts_embed_args *a, ts_error *err);
ts_status ts_op_sample (const ts_backend *be, const ts_sample_args *a, ts_error *err);

/* Labels the ops that follow with the stage that runs them and the layer (or block) within
 * it, -1 for none: stages call it at entry and per layer. `stage` names the unit `layer`
 * counts ("text encoder layer", "transformer single block") and must stay valid until the
 * next call (a string literal). Backends that do not report where an op came from leave
 * the vtable entry NULL, which makes this a test and a branch. */
static inline void
ts_backend_scope_set (const ts_backend *be, const char *stage, int layer)
{
  if (be->ops->scope_set)
    be->ops->scope_set (be->impl, stage, layer);
}

static inline ts_ref
ts_ref_at (ts_buffer *buf, size_t offset)
{
  ts_ref r = { buf, offset };
  return r;
}

/* A ref `n_floats` F32 elements further into the same buffer. */
static inline ts_ref
ts_ref_f32 (ts_ref r, int64_t n_floats)
{
  r.offset += (size_t) n_floats * sizeof (float);
  return r;
}

/* Creates the CPU backend: reference = true gives the plain scalar path ("cpu-ref"),
 * false the fast path ("cpu": BLAS GEMM, threaded loops). n_threads <= 0 uses every core.
 * TS_CPU_REFERENCE=1 in the environment forces the reference path. Implemented in
 * engine/backend/cpu/. */
ts_status ts_backend_cpu_new (ts_backend *out, bool reference, int n_threads, ts_error *err);
/* Creates the Vulkan backend ("vulkan", engine/backend/vk/) on device `device_index` (the index in
 * ts_vulkan_list_devices), or with -1 on the device TESSERA_VK_DEVICE names (an index or a
 * name substring) or else the best GPU: discrete, then integrated, then others. A CPU-type
 * device (lavapipe) is never picked by -1 alone: the CPU backend serves such a machine
 * better. Fails with TS_ERR_DEVICE when no driver loads or no device exists,
 * TS_ERR_UNSUPPORTED when only CPU-type devices exist or the build has no Vulkan, and
 * TS_ERR_NOT_FOUND for an index or name that matches no device. Environment:
 * TESSERA_VK_VALIDATION=1 (Khronos validation layer; any message fails the next sync),
 * TESSERA_VK_PROFILE=1 (per-kernel timestamps, printed when the backend is freed),
 * TESSERA_VK_MAX_MEMORY=<bytes|K|M|G> (caps device memory), TESSERA_VK_STAGING=1 (never
 * map device memory). */
ts_status ts_backend_vulkan_new (ts_backend *out, int device_index, ts_error *err);

/* Creates the check backend ("check:<device>", engine/backend/check/, docs/check-backend.md)
 * for bringing up a device: it runs every op on the backend `device` names ("cpu",
 * "vulkan" or "vulkan:N", made by ts_backend_new_by_name) and on the CPU reference,
 * compares the outputs with a per-op tolerance and fails the first op out of tolerance
 * with TS_ERR_DEVICE, naming the op, its stage and layer, the shapes and the error. */
ts_status ts_backend_check_new (ts_backend *out, const char *device, int n_threads,
                                ts_error *err);

/* Creates a backend from its user-facing name: "cpu", "cpu-ref", "vulkan" (the best GPU, or
 * the TESSERA_VK_DEVICE one), "vulkan:N" (device N of ts_vulkan_list_devices, CPU-type
 * devices included), "auto" (Vulkan on a real GPU, else the CPU fast path, logging why) or
 * "check:cpu", "check:vulkan", "check:vulkan:N" (that backend checked against cpu-ref op by
 * op: ts_backend_check_new). n_threads is for the CPU backend. TS_ERR_INVALID_ARG for an
 * unknown name, naming the valid ones. */
ts_status ts_backend_new_by_name (ts_backend *out, const char *name, int n_threads,
                                  ts_error *err);
/* Whether ts_backend_new_by_name knows `name` (it may still fail to create it). */
bool ts_backend_name_valid (const char *name);
/* The valid names for messages: "auto, cpu, cpu-ref, vulkan, vulkan:N, check:cpu,
 * check:vulkan, check:vulkan:N". */
const char *ts_backend_names (void);

void ts_backend_free (ts_backend *be);

#endif /* TS_BACKEND_H */
