/* SPDX-License-Identifier: MIT
 *
 * ts-vk-memory — device memory for the Vulkan backend. Buffers are VkBuffers placed in
 * large VkDeviceMemory blocks by a first-fit sub-allocator (a buffer larger than a block
 * gets a block of its own; no allocation exceeds maxMemoryAllocationSize). The memory type
 * is device-local; when a device-local type is also host-visible and coherent and lives in
 * the main device-local heap (lavapipe, integrated GPUs, resizable BAR) the blocks are
 * mapped once and uploads and downloads are memcpy, otherwise they go through a staging
 * buffer (TESSERA_VK_STAGING=1 forces that path so that it can be tested on lavapipe).
 *
 * Ordering: ops run later than they are recorded, so a host write must not overtake them.
 * Small uploads are recorded into the command stream (vkCmdUpdateBuffer) and keep their
 * place; larger ones wait for the queue first. Downloads always wait.
 *
 * TESSERA_VK_MAX_MEMORY=<bytes|NNNK|NNNM|NNNG> caps the bytes of live buffers, so that the
 * out-of-memory path can be exercised: the error names the bytes requested.
 * TESSERA_VK_MAX_OPERAND=<bytes|K|M|G> lowers the bytes one activation operand of a dispatch
 * may span below maxStorageBufferRange, so that tests run the ops' split paths (ts-vk-ops.c)
 * and the stages' bands on small tensors.
 */
#include "backend/vk/ts-vk.h"

#include <stdlib.h>
#include <string.h>

#define TS_VK_BLOCK_DEFAULT ((VkDeviceSize) 256 << 20)
#define TS_VK_STAGING_SIZE ((VkDeviceSize) 16 << 20)
#define TS_VK_UPDATE_MAX 65536 /* vkCmdUpdateBuffer's limit */

typedef struct ts_vk_range {
  VkDeviceSize offset, size;
  struct ts_vk_range *next;
} ts_vk_range;

struct ts_vk_block {
  VkDeviceMemory memory;
  VkDeviceSize size;
  unsigned char *map; /* NULL unless host-visible */
  ts_vk_range *used;  /* sorted by offset */
  ts_vk_block *next;
};

static uint64_t
parse_bytes (const char *s)
{
  char *end;
  unsigned long long v = strtoull (s, &end, 10);

  switch (*end) {
  case 'k': case 'K': return (uint64_t) v << 10;
  case 'm': case 'M': return (uint64_t) v << 20;
  case 'g': case 'G': return (uint64_t) v << 30;
  default: return (uint64_t) v;
  }
}

static bool
env_flag (const char *name)
{
  const char *v = getenv (name);
  return v && *v && strcmp (v, "0") != 0;
}

static int
find_type (const ts_vk *vk, uint32_t bits, VkMemoryPropertyFlags want)
{
  for (uint32_t i = 0; i < vk->mem_props.memoryTypeCount; i++)
    if ((bits & (1u << i)) && (vk->mem_props.memoryTypes[i].propertyFlags & want) == want)
      return (int) i;
  return -1;
}

ts_status
ts_vk_memory_init (ts_vk *vk, ts_error *err)
{
  VkPhysicalDeviceMaintenance3Properties m3 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES };
  VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3 };
  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = 256,
    .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT
             | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
  };
  VkMemoryRequirements req;
  VkBuffer probe = VK_NULL_HANDLE;
  VkDeviceSize main_heap = 0;
  uint32_t main_heap_index = 0;
  const char *cap = getenv ("TESSERA_VK_MAX_MEMORY");
  const char *operand_cap = getenv ("TESSERA_VK_MAX_OPERAND");
  int t;
  ts_status st = TS_OK;

  vkGetPhysicalDeviceProperties2 (vk->phys, &p2);
  vk->max_alloc = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : ((VkDeviceSize) 1 << 30);
  vk->block_size = TS_VK_BLOCK_DEFAULT < vk->max_alloc ? TS_VK_BLOCK_DEFAULT : vk->max_alloc;
  vk->max_total = cap && *cap ? parse_bytes (cap) : 0;
  vk->max_operand = vk->props.limits.maxStorageBufferRange;
  if (operand_cap && *operand_cap && parse_bytes (operand_cap) < vk->max_operand)
    vk->max_operand = (size_t) parse_bytes (operand_cap);

  VK_TRY (vkCreateBuffer (vk->device, &bci, NULL, &probe));
  vkGetBufferMemoryRequirements (vk->device, probe, &req);
  vkDestroyBuffer (vk->device, probe, NULL);

  for (uint32_t h = 0; h < vk->mem_props.memoryHeapCount; h++)
    if ((vk->mem_props.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
        && vk->mem_props.memoryHeaps[h].size > main_heap) {
      main_heap = vk->mem_props.memoryHeaps[h].size;
      main_heap_index = h;
    }
  t = find_type (vk, req.memoryTypeBits,
                 VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT
                     | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
  if (t >= 0 && vk->mem_props.memoryTypes[t].heapIndex == main_heap_index
      && !env_flag ("TESSERA_VK_STAGING")) {
    vk->host_visible = true;
  } else {
    t = find_type (vk, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (t < 0)
      t = find_type (vk, req.memoryTypeBits, 0);
  }
  if (t < 0)
    return ts_error_set (err, TS_ERR_UNSUPPORTED, "vk: device '%s' has no memory type for storage buffers",
                         vk->props.deviceName);
  vk->mem_type = (uint32_t) t;
  TS_LOG_D ("vk: memory type %d (%s), blocks of %llu MiB, max allocation %llu MiB%s", t,
            vk->host_visible ? "mapped" : "staged", (unsigned long long) (vk->block_size >> 20),
            (unsigned long long) (vk->max_alloc >> 20),
            vk->max_total ? ", capped by TESSERA_VK_MAX_MEMORY" : "");
  return TS_OK;

fail:
  return st;
}

/* Device memory accounting for `bench` and the GPU report (ts_model_stats). */
static void
count_alloc (ts_vk *vk, VkDeviceSize size)
{
  vk->device_bytes += size;
  if (vk->device_bytes > vk->device_peak_bytes)
    vk->device_peak_bytes = vk->device_bytes;
}

static void
block_free (ts_vk *vk, ts_vk_block *b)
{
  if (b->map)
    vkUnmapMemory (vk->device, b->memory);
  vkFreeMemory (vk->device, b->memory, NULL);
  vk->device_bytes -= b->size;
  free (b);
}

/* Reserves `size` bytes aligned to `align`, in an existing block or a new one. */
static ts_status
reserve (ts_vk *vk, VkDeviceSize size, VkDeviceSize align, ts_vk_block **out_block,
         VkDeviceSize *out_offset, ts_error *err)
{
  ts_vk_range *r = NULL;
  ts_vk_block *b;
  ts_status st = TS_OK;

  for (b = vk->blocks; b; b = b->next) {
    ts_vk_range **link = &b->used;
    VkDeviceSize start = 0;
    for (;;) {
      ts_vk_range *next = *link;
      VkDeviceSize off = (start + align - 1) / align * align;
      VkDeviceSize limit = next ? next->offset : b->size;
      if (off <= limit && limit - off >= size) {
        r = malloc (sizeof *r);
        if (!r)
          return ts_error_set (err, TS_ERR_NOMEM, "vk: out of host memory");
        r->offset = off;
        r->size = size;
        r->next = next;
        *link = r;
        *out_block = b;
        *out_offset = off;
        return TS_OK;
      }
      if (!next)
        break;
      start = next->offset + next->size;
      link = &next->next;
    }
  }

  if (size > vk->max_alloc)
    return ts_error_set (err, TS_ERR_NOMEM,
                         "vk: a buffer of %llu bytes exceeds the device's largest allocation "
                         "(%llu bytes)",
                         (unsigned long long) size, (unsigned long long) vk->max_alloc);
  b = calloc (1, sizeof *b);
  r = malloc (sizeof *r);
  if (!b || !r) {
    st = ts_error_set (err, TS_ERR_NOMEM, "vk: out of host memory");
    goto fail;
  }
  b->size = size > vk->block_size ? size : vk->block_size;
  {
    VkMemoryAllocateInfo ai = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
      .allocationSize = b->size,
      .memoryTypeIndex = vk->mem_type,
    };
    VkResult res = vkAllocateMemory (vk->device, &ai, NULL, &b->memory);
    if (res == VK_ERROR_OUT_OF_DEVICE_MEMORY && b->size > size) {
      /* Not enough for a whole block: try the exact size. */
      b->size = ai.allocationSize = size;
      res = vkAllocateMemory (vk->device, &ai, NULL, &b->memory);
    }
    if (res != VK_SUCCESS) {
      st = ts_vk_fail (res, "vkAllocateMemory", __FILE__, __LINE__, err);
      ts_error_prefix (err, "vk: allocating %llu bytes of device memory",
                       (unsigned long long) b->size);
      goto fail;
    }
    count_alloc (vk, b->size);
  }
  if (vk->host_visible) {
    void *map = NULL;
    VK_TRY (vkMapMemory (vk->device, b->memory, 0, VK_WHOLE_SIZE, 0, &map));
    b->map = map;
  }
  r->offset = 0;
  r->size = size;
  r->next = NULL;
  b->used = r;
  b->next = vk->blocks;
  vk->blocks = b;
  *out_block = b;
  *out_offset = 0;
  return TS_OK;

fail:
  if (b && b->memory) {
    vkFreeMemory (vk->device, b->memory, NULL);
    vk->device_bytes -= b->size;
  }
  free (b);
  free (r);
  return st;
}

static void
release (ts_vk *vk, ts_vk_block *block, VkDeviceSize offset)
{
  ts_vk_range **link = &block->used;

  while (*link && (*link)->offset != offset)
    link = &(*link)->next;
  if (*link) {
    ts_vk_range *r = *link;
    *link = r->next;
    free (r);
  }
  if (!block->used) {
    ts_vk_block **bl = &vk->blocks;
    while (*bl && *bl != block)
      bl = &(*bl)->next;
    if (*bl)
      *bl = block->next;
    block_free (vk, block);
  }
}

/* A new buffer; `zero` records a fill so that it reads as zeros (as on the CPU, which keeps
 * runs reproducible). Weights skip it: they are written right away. */
static ts_buffer *
buffer_alloc (ts_vk *vk, size_t size_bytes, bool zero, ts_error *err)
{
  ts_buffer *buf = NULL;
  ts_vk_alloc *al = NULL;
  VkMemoryRequirements req;
  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    /* Rounded up to whole floats, and never 0 (a VkBuffer cannot be empty). */
    .size = size_bytes ? (size_bytes + 3) / 4 * 4 : 4,
    .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT
             | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
  };
  ts_status st = TS_OK;

  if (vk->dead) {
    ts_error_set (err, TS_ERR_DEVICE, "vk: the device was lost");
    return NULL;
  }
  if (vk->max_total && (size_bytes > vk->max_total || vk->total > vk->max_total - size_bytes)) {
    ts_error_set (err, TS_ERR_NOMEM,
                  "vk: out of device memory: a buffer of %zu bytes was requested with %llu of "
                  "the %llu bytes allowed by TESSERA_VK_MAX_MEMORY in use",
                  size_bytes, (unsigned long long) vk->total,
                  (unsigned long long) vk->max_total);
    return NULL;
  }
  buf = calloc (1, sizeof *buf);
  al = calloc (1, sizeof *al);
  if (!buf || !al) {
    st = ts_error_set (err, TS_ERR_NOMEM, "vk: out of host memory");
    goto fail;
  }
  VK_TRY (vkCreateBuffer (vk->device, &bci, NULL, &al->buffer));
  vkGetBufferMemoryRequirements (vk->device, al->buffer, &req);
  if ((st = reserve (vk, req.size, req.alignment, &al->block, &al->offset, err)) != TS_OK)
    goto fail;
  al->size = req.size;
  VK_TRY (vkBindBufferMemory (vk->device, al->buffer, al->block->memory, al->offset));
  buf->data = al->block->map ? al->block->map + al->offset : NULL;
  buf->size = size_bytes;
  buf->impl = al;
  vk->total += size_bytes;
  if (zero) {
    if ((st = ts_vk_begin (vk, err)) != TS_OK) {
      ts_vk_buffer_free (vk, buf);
      return NULL;
    }
    vkCmdFillBuffer (vk->frames[vk->cur].cb, al->buffer, 0, VK_WHOLE_SIZE, 0);
    ts_vk_barrier (vk);
  }
  return buf;

fail:
  if (al && al->block)
    release (vk, al->block, al->offset);
  if (al && al->buffer)
    vkDestroyBuffer (vk->device, al->buffer, NULL);
  free (al);
  free (buf);
  if (st == TS_ERR_NOMEM)
    ts_error_prefix (err, "vk: cannot allocate a buffer of %zu bytes", size_bytes);
  return NULL;
}

ts_buffer *
ts_vk_buffer_new (void *impl, size_t size_bytes, ts_error *err)
{
  return buffer_alloc (impl, size_bytes, true, err);
}

void
ts_vk_buffer_free (void *impl, ts_buffer *buf)
{
  ts_vk *vk = impl;
  ts_vk_alloc *al;

  if (!buf)
    return;
  al = buf->impl;
  /* The buffer may still be read by recorded work. */
  if (vk->frames[0].submitted || vk->frames[1].submitted || vk->frames[vk->cur].recording)
    ts_vk_wait_idle (vk, NULL);
  vkDestroyBuffer (vk->device, al->buffer, NULL);
  release (vk, al->block, al->offset);
  vk->total -= buf->size;
  free (al);
  free (buf);
}

/* The staging buffer, created on first use (only on devices without mapped memory). */
static ts_status
staging_get (ts_vk *vk, ts_error *err)
{
  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = TS_VK_STAGING_SIZE,
    .usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
  };
  VkMemoryRequirements req;
  ts_vk_alloc *al = NULL;
  int t;
  ts_status st = TS_OK;

  if (vk->staging)
    return TS_OK;
  vk->staging = calloc (1, sizeof *vk->staging);
  al = calloc (1, sizeof *al);
  if (!vk->staging || !al) {
    st = ts_error_set (err, TS_ERR_NOMEM, "vk: out of host memory");
    goto fail;
  }
  vk->staging->impl = al;
  VK_TRY (vkCreateBuffer (vk->device, &bci, NULL, &al->buffer));
  vkGetBufferMemoryRequirements (vk->device, al->buffer, &req);
  t = find_type (vk, req.memoryTypeBits,
                 VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
                     | VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
  if (t < 0)
    t = find_type (vk, req.memoryTypeBits,
                   VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
  if (t < 0) {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED, "vk: no host-visible memory for staging");
    goto fail;
  }
  {
    VkMemoryAllocateInfo ai = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
      .allocationSize = req.size,
      .memoryTypeIndex = (uint32_t) t,
    };
    VK_TRY (vkAllocateMemory (vk->device, &ai, NULL, &vk->staging_mem));
    vk->staging_bytes = req.size;
    count_alloc (vk, req.size);
  }
  VK_TRY (vkBindBufferMemory (vk->device, al->buffer, vk->staging_mem, 0));
  VK_TRY (vkMapMemory (vk->device, vk->staging_mem, 0, VK_WHOLE_SIZE, 0, &vk->staging_map));
  vk->staging->size = TS_VK_STAGING_SIZE;
  vk->staging_size = TS_VK_STAGING_SIZE;
  ts_vk_set_name (vk, VK_OBJECT_TYPE_BUFFER, (uint64_t) al->buffer, "staging");
  return TS_OK;

fail:
  if (al && al->buffer)
    vkDestroyBuffer (vk->device, al->buffer, NULL);
  if (vk->staging_mem) {
    vkFreeMemory (vk->device, vk->staging_mem, NULL);
    vk->device_bytes -= vk->staging_bytes;
  }
  vk->staging_mem = VK_NULL_HANDLE;
  free (al);
  free (vk->staging);
  vk->staging = NULL;
  return st;
}

/* Copies size bytes between the staging buffer (at 0) and ref, waiting for completion. */
static ts_status
staging_copy (ts_vk *vk, ts_ref ref, size_t size, bool to_device, ts_error *err)
{
  VkBufferCopy region = { .size = size };
  ts_status st;

  if ((st = ts_vk_begin (vk, err)) != TS_OK)
    return st;
  if (to_device) {
    region.dstOffset = ref.offset;
    vkCmdCopyBuffer (vk->frames[vk->cur].cb, ts_vk_buffer_handle (vk->staging),
                     ts_vk_buffer_handle (ref.buf), 1, &region);
  } else {
    region.srcOffset = ref.offset;
    vkCmdCopyBuffer (vk->frames[vk->cur].cb, ts_vk_buffer_handle (ref.buf),
                     ts_vk_buffer_handle (vk->staging), 1, &region);
  }
  ts_vk_barrier (vk);
  return ts_vk_wait_idle (vk, err);
}

ts_status
ts_vk_upload (void *impl, ts_ref dst, const void *src, size_t size_bytes, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st;

  if (size_bytes == 0)
    return TS_OK;
  if (size_bytes <= TS_VK_UPDATE_MAX && size_bytes % 4 == 0 && dst.offset % 4 == 0) {
    if ((st = ts_vk_begin (vk, err)) != TS_OK)
      return st;
    vkCmdUpdateBuffer (vk->frames[vk->cur].cb, ts_vk_buffer_handle (dst.buf), dst.offset,
                       size_bytes, src);
    ts_vk_barrier (vk);
    return TS_OK;
  }
  if ((st = ts_vk_wait_idle (vk, err)) != TS_OK)
    return st;
  if (dst.buf->data) {
    memcpy (dst.buf->data + dst.offset, src, size_bytes);
    return TS_OK;
  }
  if ((st = staging_get (vk, err)) != TS_OK)
    return st;
  for (size_t done = 0; done < size_bytes;) {
    size_t n = size_bytes - done < vk->staging_size ? size_bytes - done : vk->staging_size;
    memcpy (vk->staging_map, (const unsigned char *) src + done, n);
    if ((st = staging_copy (vk, ts_ref_at (dst.buf, dst.offset + done), n, true, err)) != TS_OK)
      return st;
    done += n;
  }
  return TS_OK;
}

ts_status
ts_vk_download (void *impl, ts_ref src, void *dst, size_t size_bytes, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st;

  if ((st = ts_vk_wait_idle (vk, err)) != TS_OK || size_bytes == 0)
    return st;
  if (src.buf->data) {
    memcpy (dst, src.buf->data + src.offset, size_bytes);
    return TS_OK;
  }
  if ((st = staging_get (vk, err)) != TS_OK)
    return st;
  for (size_t done = 0; done < size_bytes;) {
    size_t n = size_bytes - done < vk->staging_size ? size_bytes - done : vk->staging_size;
    if ((st = staging_copy (vk, ts_ref_at (src.buf, src.offset + done), n, false, err)) != TS_OK)
      return st;
    memcpy ((unsigned char *) dst + done, vk->staging_map, n);
    done += n;
  }
  return TS_OK;
}

static float
f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000u) << 16, expo = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t bits;
  float f;

  if (expo == 0) {
    f = (float) mant * 0x1p-24f;
    return sign ? -f : f;
  }
  bits = sign | (expo == 31 ? 0x7f800000u | (mant << 13) : ((expo + 112u) << 23) | (mant << 13));
  memcpy (&f, &bits, sizeof f);
  return f;
}

static void
widen (void *dst_, const void *src, ts_dtype dtype, int64_t n)
{
  float *dst = dst_;
  const unsigned char *s = src;

  if (dtype == TS_DTYPE_F32) {
    memcpy (dst, src, (size_t) n * sizeof (float));
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    uint16_t h;
    memcpy (&h, s + 2 * i, sizeof h);
    if (dtype == TS_DTYPE_F16) {
      dst[i] = f16_to_f32 (h);
    } else {
      uint32_t bits = (uint32_t) h << 16;
      memcpy (&dst[i], &bits, sizeof bits);
    }
  }
}

/* Element e of the source in the storage dtype `dst_dtype` (F32 or the source's own 16-bit
 * dtype) at element `at` of dst. */
static void
put (void *dst, int64_t at, const unsigned char *src, int64_t e, ts_dtype src_dtype,
     ts_dtype dst_dtype)
{
  if (dst_dtype != TS_DTYPE_F32)
    memcpy ((unsigned char *) dst + 2 * at, src + 2 * e, 2);
  else if (src_dtype == TS_DTYPE_F32)
    memcpy ((float *) dst + at, src + 4 * e, 4);
  else
    widen ((float *) dst + at, src + 2 * e, src_dtype, 1);
}

/* Converts (and for a [k, n] layout transposes) the host data into dst. */
static void
store_weight (void *dst, const void *data, ts_dtype src_dtype, ts_dtype dst_dtype, int64_t n,
              bool kn, int64_t rows, int64_t cols)
{
  if (!kn) {
    if (src_dtype == dst_dtype)
      memcpy (dst, data, (size_t) n * ts_dtype_size (dst_dtype));
    else
      widen (dst, data, src_dtype, n);
    return;
  }
  /* Blocks of 64 x 64 keep both sides of the transpose in cache. */
  for (int64_t r0 = 0; r0 < rows; r0 += 64)
    for (int64_t c0 = 0; c0 < cols; c0 += 64)
      for (int64_t r = r0; r < r0 + 64 && r < rows; r++)
        for (int64_t c = c0; c < c0 + 64 && c < cols; c++)
          put (dst, c * rows + r, data, r * cols + c, src_dtype, dst_dtype);
}

/* How weights are stored: a 2-D weight [n, k] (a linear layer's, or an embedding table) in
 * the layout the device's GEMM kernel reads (transposed to [k, n] for TS_VK_GEMM_ROWS when n
 * is a multiple of 4, so that only one copy exists), and kept in 16 bits when it is F16 or
 * BF16 and the device reads 16-bit storage buffers; the shaders that read 2-D weights
 * (matmul, embed) have _w16 variants. Every other weight is widened to f32 (exact for F16
 * and BF16), so the remaining shaders read one format. */
ts_status
ts_vk_weight_upload (void *impl, ts_weight *w, const char *name, ts_dtype src_dtype,
                     const void *data, int n_dims, const int64_t *shape, ts_error *err)
{
  ts_vk *vk = impl;
  const char *label = name ? name : "(unnamed)";
  int64_t n = 1;
  size_t n_bytes;
  void *tmp = NULL;
  ts_dtype dtype = TS_DTYPE_F32;
  bool kn;
  ts_status st;

  memset (w, 0, sizeof *w);
  for (int i = 0; i < n_dims; i++)
    n *= shape[i];
  if (n_dims == 2 && src_dtype != TS_DTYPE_F32 && vk->storage16)
    dtype = src_dtype;
  kn = n_dims == 2 && vk->gemm == TS_VK_GEMM_ROWS && shape[0] % 4 == 0 && shape[1] > 1;
  if (!ts_mul_size ((size_t) n, ts_dtype_size (dtype), &n_bytes))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "weight_upload: '%s': too large", label);

  w->buf = buffer_alloc (vk, n_bytes, false, err);
  if (!w->buf) {
    ts_error_prefix (err, "weight_upload: '%s'", label);
    return err ? err->code : TS_ERR_NOMEM;
  }
  ((ts_vk_alloc *) w->buf->impl)->kn = kn;
  ts_vk_set_name (vk, VK_OBJECT_TYPE_BUFFER, (uint64_t) ts_vk_buffer_handle (w->buf), label);
  if (n > 0) {
    if (w->buf->data) {
      /* A fresh buffer: no recorded work can touch it yet, so no wait is needed. */
      store_weight (w->buf->data, data, src_dtype, dtype, n, kn, shape[0],
                    n_dims == 2 ? shape[1] : 1);
    } else {
      tmp = malloc (n_bytes);
      if (!tmp) {
        st = ts_error_set (err, TS_ERR_NOMEM, "weight_upload: '%s': out of host memory", label);
        goto fail;
      }
      store_weight (tmp, data, src_dtype, dtype, n, kn, shape[0], n_dims == 2 ? shape[1] : 1);
      if ((st = ts_vk_upload (impl, ts_ref_at (w->buf, 0), tmp, n_bytes, err)) != TS_OK)
        goto fail;
      free (tmp);
    }
  }
  w->dtype = dtype;
  w->n_dims = n_dims;
  for (int i = 0; i < 4; i++)
    w->shape[i] = i < n_dims ? shape[i] : 1;
  w->n_elements = n;
  w->name = name;
  return TS_OK;

fail:
  free (tmp);
  ts_vk_buffer_free (impl, w->buf);
  memset (w, 0, sizeof *w);
  return st;
}

void
ts_vk_weight_free (void *impl, ts_weight *w)
{
  if (!w)
    return;
  ts_vk_buffer_free (impl, w->buf);
  memset (w, 0, sizeof *w);
}

void
ts_vk_memory_fini (ts_vk *vk)
{
  if (vk->staging) {
    ts_vk_alloc *al = vk->staging->impl;
    vkDestroyBuffer (vk->device, al->buffer, NULL);
    vkFreeMemory (vk->device, vk->staging_mem, NULL);
    vk->device_bytes -= vk->staging_bytes;
    free (al);
    free (vk->staging);
    vk->staging = NULL;
  }
  while (vk->blocks) {
    ts_vk_block *b = vk->blocks;
    vk->blocks = b->next;
    while (b->used) {
      ts_vk_range *r = b->used;
      b->used = r->next;
      free (r);
    }
    block_free (vk, b);
  }
}
