/* SPDX-License-Identifier: MIT
 *
 * ts-vk — internals shared by the files of the Vulkan compute backend (engine/backend/vk/), which
 * implements every op of ts-backend.h with the compute shaders in shaders/:
 *
 *   - ts-vk-device.c: instance, device listing and selection (discrete GPU, then
 *     integrated, then others; a CPU-type device such as lavapipe only when asked for by
 *     index or name), the validation messenger, VkResult names.
 *   - ts-vk-memory.c: a block sub-allocator for device memory, buffers, uploads and
 *     downloads (mapped directly when host-visible, through a staging buffer otherwise),
 *     weights (2-D ones in the layout the device's GEMM wants, f16/bf16 kept in 16 bits
 *     when the device can read them; the rest widened to f32).
 *   - ts-vk-cmd.c: the command stream (two command buffers used in turn, a barrier after
 *     every dispatch, submitted in pieces of at most TS_VK_BATCH dispatches; `sync` waits)
 *     and timestamp profiling (TESSERA_VK_PROFILE=1). It calls no other file of the
 *     backend but ts-vk-device.c's error helpers.
 *   - ts-vk-backend.c: the pipelines (created on first use, kept in an on-disk pipeline
 *     cache), binding ranges and dispatches, the constructor and the vtable.
 *   - ts-vk-ops.c: one function per op (its arguments checked above the backends, in
 *     ts-op-check.c): push constants, bindings and a dispatch.
 *
 * Every buffer binding covers only the bytes the op touches (aligned down to the device's
 * storage-buffer offset alignment), so no bound range exceeds maxStorageBufferRange even
 * when a ts_buffer is larger; shaders get the element offset of each operand inside its
 * binding as a push constant. An op whose activation operands would span more than that
 * (ts_vk.max_operand: the range, or less with TESSERA_VK_MAX_OPERAND) runs as several
 * dispatches over pieces of its rows, batches or tokens (ts-vk-ops.c); weights are bound
 * whole.
 */
#ifndef TS_VK_H
#define TS_VK_H

#include "backend/ts-backend.h"
#include "core/ts-common.h"

#include <vulkan/vulkan.h>

/* Dispatches recorded before a command buffer is submitted (without waiting). */
#define TS_VK_BATCH 64
/* A command buffer is also submitted once its dispatches add up to this much work
 * (flop), so that the host waits, and polls the abort hook (ts_backend_set_abort), every
 * few hundred milliseconds even on a slow device (lavapipe runs a few GFLOP/s per core);
 * on a GPU it costs one submission per few hundred microseconds of work. The split does
 * not change what runs, nor its order. */
#define TS_VK_BATCH_FLOP 4e9
/* The same on a CPU-type device (lavapipe: a few GFLOP/s on two cores), where 4 GFLOP in
 * flight is seconds of work that a cancel must wait for. */
#define TS_VK_BATCH_FLOP_CPU 0.1e9
/* On a CPU-type device attention (about 0.5 GFLOP/s on lavapipe) runs in pieces of query
 * rows of about this much work, so that no one dispatch outlasts a cancel by much. */
#define TS_VK_ATTENTION_FLOP_CPU 0.05e9
/* The same for a convolution (conv2d.comp), in pieces of output pixels: 25 to 50 ms of
 * the lane-sharing form on lavapipe (1 to 2 GFLOP/s on two cores), and two pieces fill a
 * submission. */
#define TS_VK_CONV_FLOP_CPU 0.05e9
/* On a CPU-type device an op that moves data rather than computing (elementwise, act,
 * norm, group_norm, upsample, transpose, rope) takes about as long per element as this
 * many flop of conv2d (lavapipe: 20 to 60 ns per element, conv2d 1.5 to 2 GFLOP/s): what
 * its dispatches count against TS_VK_BATCH_FLOP_CPU, which their flops (none) would not
 * fill. */
#define TS_VK_ELEMENT_FLOP_CPU 50.0
/* ... and the large ones (a VQ decoder band is up to 8 M elements, 0.2 to 0.5 s for one
 * op) run in pieces of about this many elements (20 to 60 ms). */
#define TS_VK_PIECE_ELEMENTS_CPU ((int64_t) 1 << 20)
/* llvmpipe (lavapipe) ends a shader's loops once an invocation has run 65535 iterations
 * of them in all, and the results are silently cut. On a CPU-type device the kernels
 * whose invocations loop over a range that grows with the image (group_norm's
 * statistics) run in pieces of at most this many iterations per invocation, half the
 * limit. */
#define TS_VK_LOOP_ITERATIONS_CPU 32768
/* Storage-buffer bindings of the one descriptor-set layout every pipeline shares. */
#define TS_VK_MAX_BINDINGS 7
#define TS_VK_MAX_SPEC 7

const char *ts_vk_result_name (VkResult r);
/* The engine status for a failed call: DEVICE_LOST -> TS_ERR_DEVICE, out of memory ->
 * TS_ERR_NOMEM, anything else -> TS_ERR_DEVICE. */
ts_status ts_vk_result_status (VkResult r);
/* Logs and fills err for a failed call (VK_TRY's slow path). */
ts_status ts_vk_fail (VkResult r, const char *call, const char *file, int line, ts_error *err);

/* VK_TRY (call): on failure logs the call text, the VkResult name and file:line, sets `st`
 * (which the function declares) and jumps to `fail`. */
#define VK_TRY(call)                                                                       \
  do {                                                                                     \
    VkResult vk_try_r_ = (call);                                                           \
    if (vk_try_r_ != VK_SUCCESS) {                                                         \
      st = ts_vk_fail (vk_try_r_, #call, __FILE__, __LINE__, err);                         \
      goto fail;                                                                           \
    }                                                                                      \
  } while (0)

/* ---- shaders (generated by shaders/meson.build from shaders/<family>.comp) ---- */

typedef enum {
  TS_VK_SHADER_MATMUL,
  TS_VK_SHADER_NORM,
  TS_VK_SHADER_SOFTMAX,
  TS_VK_SHADER_ATTENTION,
  TS_VK_SHADER_ROPE,
  TS_VK_SHADER_ACT,
  TS_VK_SHADER_ELEMENTWISE,
  TS_VK_SHADER_TRANSPOSE,
  TS_VK_SHADER_CONV2D,
  TS_VK_SHADER_GROUP_NORM,
  TS_VK_SHADER_UPSAMPLE,
  TS_VK_SHADER_EMBED,
  TS_VK_SHADER_SAMPLE,
  TS_VK_SHADER_MATMUL_W16, /* matmul.comp with TS_W16: 16-bit weights */
  TS_VK_SHADER_EMBED_W16,  /* embed.comp with TS_W16 */
  TS_VK_SHADER_COUNT
} ts_vk_shader;

typedef struct {
  const char *name;
  const uint32_t *code;
  size_t size_bytes;
} ts_vk_spirv;

/* The embedded SPIR-V of each shader (ts-vk-spirv-table.c). */
extern const ts_vk_spirv *const ts_vk_spirv_table[TS_VK_SHADER_COUNT];

/* ---- memory ---- */

typedef struct ts_vk_block ts_vk_block;

/* ts_buffer.impl on this backend. */
typedef struct {
  VkBuffer buffer;
  ts_vk_block *block;
  VkDeviceSize offset; /* inside the block's memory */
  VkDeviceSize size;   /* bytes reserved in the block */
  bool kn;             /* a 2-D weight [n, k] stored transposed as [k, n] (ts_vk_gemm) */
} ts_vk_alloc;

/* The GEMM kernel family of a device (shaders/matmul.comp), which also decides how 2-D
 * weights are stored. TESSERA_VK_GEMM=rows|tiled|blocked overrides the default. */
typedef enum {
  TS_VK_GEMM_ROWS,    /* CPU-type devices: 2-D weights stored [k, n], rows per lane */
  TS_VK_GEMM_TILED,   /* GPUs: weights [n, k], shared-memory tiles (blocked for tiny m) */
  TS_VK_GEMM_BLOCKED, /* weights [n, k], register tiles only */
} ts_vk_gemm;

typedef struct ts_vk_pipeline ts_vk_pipeline;
typedef struct ts_vk_profile ts_vk_profile;

/* One of the two command buffers used in turn. */
typedef struct {
  VkCommandBuffer cb;
  VkFence fence;
  VkDescriptorPool pool;
  bool recording, submitted;
  uint32_t n_dispatch;
  double flops; /* the recorded dispatches' work (their cost) */
  uint32_t n_queries;
  int prof_index[TS_VK_BATCH]; /* profile entry of each timed dispatch */
  double prof_flops[TS_VK_BATCH];
} ts_vk_frame;

typedef struct {
  /* device */
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  PFN_vkSetDebugUtilsObjectNameEXT set_name;
  PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger;
  VkPhysicalDevice phys;
  VkPhysicalDeviceProperties props;
  VkPhysicalDeviceMemoryProperties mem_props;
  VkDevice device;
  VkQueue queue;
  uint32_t queue_family;
  bool cpu_type;           /* lavapipe and other software devices */
  bool storage16;          /* storageBuffer16BitAccess enabled: 2-D f16/bf16 weights stay 16-bit */
  uint32_t subgroup_size;
  ts_vk_gemm gemm;
  bool validation;         /* TESSERA_VK_VALIDATION: layer + messenger enabled */
  int validation_messages; /* warnings and errors the messenger has seen */

  /* memory */
  uint32_t mem_type;
  bool host_visible; /* the chosen type is mapped: uploads and downloads are memcpy */
  VkDeviceSize block_size;
  uint64_t device_bytes;      /* device memory allocated now (blocks and staging) */
  uint64_t device_peak_bytes; /* the most device_bytes has been */
  uint64_t staging_bytes;     /* the staging buffer's allocation */
  VkDeviceSize max_alloc;
  uint64_t max_total; /* TESSERA_VK_MAX_MEMORY, 0 = unlimited */
  size_t max_operand; /* bytes an activation operand of one dispatch may span: the device's
                       * maxStorageBufferRange, or less with TESSERA_VK_MAX_OPERAND */
  uint64_t total;     /* bytes of live ts_buffers */
  ts_vk_block *blocks;
  ts_buffer *staging; /* host-visible, for devices without host-visible device memory */
  VkDeviceMemory staging_mem;
  void *staging_map;
  VkDeviceSize staging_size;
  ts_buffer *dummy; /* bound to unused binding slots */
  ts_buffer *gn_stats; /* scratch statistics of a group_norm full pass run in pieces */

  /* pipelines */
  VkDescriptorSetLayout set_layout;
  VkPipelineLayout pipeline_layout;
  VkPipelineCache cache;
  char cache_path[1024];
  VkShaderModule modules[TS_VK_SHADER_COUNT];
  ts_vk_pipeline *pipelines;
  int n_pipelines, cap_pipelines;

  /* command stream */
  VkCommandPool cmd_pool;
  ts_vk_frame frames[2];
  int cur;
  bool dead; /* the device was lost: every later call fails */
  /* ts_backend_set_abort: polled before each dispatch is recorded and while the vtable's
   * sync waits; the waits that must finish (frees, transfers, teardown) ignore it. */
  ts_should_abort_fn abort_fn;
  void *abort_data;

  /* profiling */
  bool profile;
  VkQueryPool queries[2];
  double ts_period_ns;
  ts_vk_profile *prof;
  int n_prof, cap_prof;
} ts_vk;

/* ---- ts-vk-device.c ---- */

/* The device list, instance-wide facts included (for ts_vulkan_list_devices). */
ts_status ts_vk_instance_new (ts_vk *vk, bool validation, ts_error *err);
/* Picks the physical device (device_index >= 0, TESSERA_VK_DEVICE, else the best GPU)
 * and creates the logical device and queue. */
ts_status ts_vk_device_open (ts_vk *vk, int device_index, ts_error *err);
void ts_vk_device_close (ts_vk *vk);
void ts_vk_set_name (ts_vk *vk, VkObjectType type, uint64_t handle, const char *name);

/* ---- ts-vk-memory.c ---- */

ts_status ts_vk_memory_init (ts_vk *vk, ts_error *err);
void ts_vk_memory_fini (ts_vk *vk);
ts_buffer *ts_vk_buffer_new (void *impl, size_t size_bytes, ts_error *err);
void ts_vk_buffer_free (void *impl, ts_buffer *buf);
ts_status ts_vk_upload (void *impl, ts_ref dst, const void *src, size_t size_bytes, ts_error *err);
ts_status ts_vk_download (void *impl, ts_ref src, void *dst, size_t size_bytes, ts_error *err);
ts_status ts_vk_weight_upload (void *impl, ts_weight *w, const char *name, ts_dtype src_dtype,
                               const void *data, int n_dims, const int64_t *shape, ts_error *err);
void ts_vk_weight_free (void *impl, ts_weight *w);

static inline VkBuffer
ts_vk_buffer_handle (const ts_buffer *buf)
{
  return ((const ts_vk_alloc *) buf->impl)->buffer;
}

/* ---- ts-vk-cmd.c: the command stream ---- */

/* The command pool, the two frames (command buffer, fence, descriptor pool) and, with
 * TESSERA_VK_PROFILE=1, the timestamp query pools. */
ts_status ts_vk_cmd_init (ts_vk *vk, ts_error *err);
/* Prints the profile and destroys what ts_vk_cmd_init made (NULL-safe per object); the
 * device must be idle. */
void ts_vk_cmd_fini (ts_vk *vk);
/* Makes sure the current command buffer is recording. */
ts_status ts_vk_begin (ts_vk *vk, ts_error *err);
/* Submits what was recorded (no wait). */
ts_status ts_vk_submit (ts_vk *vk, ts_error *err);
/* Submits and waits for everything: the vtable's sync, which fails with TS_ERR_CANCELLED
 * when the abort hook fires while it waits (the work then stays in flight, and a later
 * ts_vk_wait_idle waits for it). */
ts_status ts_vk_sync (void *impl, ts_error *err);
/* Submits and waits for everything, whatever the abort hook says: for frees, transfers
 * and teardown, which must not go on while the device still uses the memory. */
ts_status ts_vk_wait_idle (ts_vk *vk, ts_error *err);
/* The vtable's abort_set. */
void ts_vk_abort_set (void *impl, ts_should_abort_fn fn, void *data);
/* The barrier every recorded command is followed by. */
void ts_vk_barrier (ts_vk *vk);

/* One operand of a dispatch: `bytes` bytes starting at ref (the op's extent). A weight is
 * held to maxStorageBufferRange, the rest to ts_vk.max_operand. */
typedef struct {
  ts_ref ref;
  size_t bytes;
  bool weight;
} ts_vk_operand;

/* One dispatch: shader, specialization constants (constant_id 0..n_spec-1), operands bound
 * to bindings 0..n_operands-1, push constants, workgroup counts, for the profile a label
 * and the flop count, and what the dispatch counts against the submission cap
 * (TS_VK_BATCH_FLOP, TS_VK_BATCH_FLOP_CPU) when its flops say too little of its time. */
typedef struct {
  ts_vk_shader shader;
  uint32_t spec[TS_VK_MAX_SPEC];
  int n_spec;
  ts_vk_operand operands[TS_VK_MAX_BINDINGS];
  int n_operands;
  const void *push;
  size_t push_size;
  uint32_t groups[3];
  const char *label;
  double flops;
  double cost; /* flop-equivalents for the submission cap; 0: flops */
} ts_vk_dispatch_desc;

/* ts-vk-cmd.c: records d's dispatch into the current command buffer with `pipeline` and
 * the buffer ranges `infos` bound to bindings 0..TS_VK_MAX_BINDINGS-1 (a descriptor set
 * from the frame's pool), then the barrier; timestamps around it when profiling; submits
 * after TS_VK_BATCH dispatches. */
ts_status ts_vk_record_dispatch (ts_vk *vk, VkPipeline pipeline,
                                 const VkDescriptorBufferInfo infos[TS_VK_MAX_BINDINGS],
                                 const ts_vk_dispatch_desc *d, ts_error *err);

/* ---- ts-vk-backend.c: pipelines and dispatches ---- */

/* The element offset (4-byte units) of operand i inside its binding: what the shader adds
 * to its indices. Depends only on the device's offset alignment. */
uint32_t ts_vk_operand_offset (const ts_vk *vk, const ts_ref *ref);

/* Checks the workgroup counts and every operand's range against the device's limits,
 * finds or creates the pipeline, and records the dispatch (ts_vk_record_dispatch). */
ts_status ts_vk_dispatch (ts_vk *vk, const ts_vk_dispatch_desc *d, ts_error *err);

/* ---- ts-vk-ops.c ---- */

ts_status ts_vk_matmul (void *impl, const ts_matmul_args *a, ts_error *err);
ts_status ts_vk_norm (void *impl, const ts_norm_args *a, ts_error *err);
ts_status ts_vk_softmax (void *impl, const ts_softmax_args *a, ts_error *err);
ts_status ts_vk_attention (void *impl, const ts_attention_args *a, ts_error *err);
ts_status ts_vk_rope (void *impl, const ts_rope_args *a, ts_error *err);
ts_status ts_vk_act (void *impl, const ts_act_args *a, ts_error *err);
ts_status ts_vk_elementwise (void *impl, const ts_elementwise_args *a, ts_error *err);
ts_status ts_vk_transpose (void *impl, const ts_transpose_args *a, ts_error *err);
ts_status ts_vk_conv2d (void *impl, const ts_conv2d_args *a, ts_error *err);
ts_status ts_vk_conv_transpose2d (void *impl, const ts_conv_transpose2d_args *a, ts_error *err);
ts_status ts_vk_group_norm (void *impl, const ts_group_norm_args *a, ts_error *err);
ts_status ts_vk_upsample (void *impl, const ts_upsample_args *a, ts_error *err);
ts_status ts_vk_embed (void *impl, const ts_embed_args *a, ts_error *err);
ts_status ts_vk_sample (void *impl, const ts_sample_args *a, ts_error *err);

#endif /* TS_VK_H */
