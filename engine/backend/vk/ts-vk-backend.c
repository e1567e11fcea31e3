/* SPDX-License-Identifier: MIT
 *
 * ts-vk-backend — the Vulkan backend object: the command stream, the compute pipelines,
 * per-kernel profiling, the constructor and the ops vtable.
 *
 * Command stream: two command buffers are used in turn. Ops record a dispatch followed by a
 * global memory barrier into the current one; after TS_VK_BATCH dispatches it is submitted
 * without waiting and the other one takes over (after its own fence), so the device works
 * while the host records. `sync`, downloads and large uploads submit and wait. A lost device
 * marks the backend dead: every later call fails with TS_ERR_DEVICE.
 *
 * Pipelines: one descriptor-set layout (TS_VK_MAX_BINDINGS storage buffers) and one
 * 128-byte push-constant range shared by every shader; a pipeline per (shader,
 * specialization constants), created on first use through a VkPipelineCache that is kept on
 * disk in $XDG_CACHE_HOME/tessera (or ~/.cache/tessera), one file per device.
 *
 * Profiling (TESSERA_VK_PROFILE=1): timestamps around every dispatch; the backend prints
 * per-kernel calls, time and GFLOP/s when it is destroyed. Validation
 * (TESSERA_VK_VALIDATION=1): the Khronos layer with a messenger; any warning or error it
 * reports makes the next sync fail, so tests cannot pass over one.
 */
#include "backend/vk/ts-vk.h"
#include "backend/vk/ts-vk-kernels.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ts_vk_pipeline {
  ts_vk_shader shader;
  uint32_t spec[TS_VK_MAX_SPEC];
  int n_spec;
  VkPipeline pipeline;
};

struct ts_vk_profile {
  const char *label;
  uint64_t calls;
  double ns, flops;
};

static bool
env_flag (const char *name)
{
  const char *v = getenv (name);
  return v && *v && strcmp (v, "0") != 0;
}

/* ---- profiling ---- */

static int
profile_slot (ts_vk *vk, const char *label)
{
  for (int i = 0; i < vk->n_prof; i++)
    if (strcmp (vk->prof[i].label, label) == 0)
      return i;
  if (vk->n_prof == vk->cap_prof) {
    int cap = vk->cap_prof ? 2 * vk->cap_prof : 32;
    ts_vk_profile *p = realloc (vk->prof, (size_t) cap * sizeof *p);
    if (!p)
      return -1;
    vk->prof = p;
    vk->cap_prof = cap;
  }
  vk->prof[vk->n_prof] = (ts_vk_profile) { .label = label };
  return vk->n_prof++;
}

static void
profile_collect (ts_vk *vk, int fi)
{
  ts_vk_frame *f = &vk->frames[fi];
  uint64_t stamps[2 * TS_VK_BATCH];

  if (!vk->profile || f->n_queries == 0)
    return;
  if (vkGetQueryPoolResults (vk->device, vk->queries[fi], 0, f->n_queries, sizeof stamps, stamps,
                             sizeof (uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT)
      != VK_SUCCESS)
    return;
  for (uint32_t q = 0; q + 1 < f->n_queries; q += 2) {
    int slot = f->prof_index[q / 2];
    if (slot < 0)
      continue;
    vk->prof[slot].calls++;
    vk->prof[slot].ns += (double) (stamps[q + 1] - stamps[q]) * vk->ts_period_ns;
    vk->prof[slot].flops += f->prof_flops[q / 2];
  }
  f->n_queries = 0;
}

static void
profile_print (ts_vk *vk)
{
  double total = 0.0;

  if (!vk->profile || vk->n_prof == 0)
    return;
  for (int i = 0; i < vk->n_prof; i++)
    total += vk->prof[i].ns;
  TS_LOG_W ("vk: profile on '%s' (%.1f ms in kernels):", vk->props.deviceName, total * 1e-6);
  for (int i = 0; i < vk->n_prof; i++) {
    const ts_vk_profile *p = &vk->prof[i];
    if (p->flops > 0)
      TS_LOG_W ("vk:   %-28s %7llu calls %10.3f ms %5.1f%% %8.2f GFLOP/s", p->label,
                (unsigned long long) p->calls, p->ns * 1e-6, 100.0 * p->ns / total,
                p->ns > 0 ? p->flops / p->ns : 0.0);
    else
      TS_LOG_W ("vk:   %-28s %7llu calls %10.3f ms %5.1f%%", p->label,
                (unsigned long long) p->calls, p->ns * 1e-6, 100.0 * p->ns / total);
  }
}

/* ---- command stream ---- */

static ts_status
frame_wait (ts_vk *vk, int fi, ts_error *err)
{
  ts_vk_frame *f = &vk->frames[fi];
  ts_status st = TS_OK;

  if (!f->submitted)
    return TS_OK;
  {
    VkResult r = vkWaitForFences (vk->device, 1, &f->fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS) {
      if (r == VK_ERROR_DEVICE_LOST)
        vk->dead = true;
      st = ts_vk_fail (r, "vkWaitForFences", __FILE__, __LINE__, err);
      goto fail;
    }
  }
  f->submitted = false;
  profile_collect (vk, fi);
  VK_TRY (vkResetFences (vk->device, 1, &f->fence));
  return TS_OK;

fail:
  return st;
}

ts_status
ts_vk_begin (ts_vk *vk, ts_error *err)
{
  ts_vk_frame *f = &vk->frames[vk->cur];
  VkCommandBufferBeginInfo bi = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
  };
  ts_status st;

  if (vk->dead)
    return ts_error_set (err, TS_ERR_DEVICE, "vk: the device was lost");
  if (f->recording)
    return TS_OK;
  if ((st = frame_wait (vk, vk->cur, err)) != TS_OK)
    return st;
  VK_TRY (vkResetDescriptorPool (vk->device, f->pool, 0));
  VK_TRY (vkResetCommandBuffer (f->cb, 0));
  VK_TRY (vkBeginCommandBuffer (f->cb, &bi));
  if (vk->profile)
    vkCmdResetQueryPool (f->cb, vk->queries[vk->cur], 0, 2 * TS_VK_BATCH);
  f->recording = true;
  f->n_dispatch = 0;
  f->n_queries = 0;
  return TS_OK;

fail:
  return st;
}

ts_status
ts_vk_submit (ts_vk *vk, ts_error *err)
{
  ts_vk_frame *f = &vk->frames[vk->cur];
  VkSubmitInfo si = {
    .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
    .commandBufferCount = 1,
    .pCommandBuffers = &f->cb,
  };
  ts_status st = TS_OK;

  if (!f->recording)
    return TS_OK;
  f->recording = false;
  VK_TRY (vkEndCommandBuffer (f->cb));
  {
    VkResult r = vkQueueSubmit (vk->queue, 1, &si, f->fence);
    if (r != VK_SUCCESS) {
      if (r == VK_ERROR_DEVICE_LOST)
        vk->dead = true;
      st = ts_vk_fail (r, "vkQueueSubmit", __FILE__, __LINE__, err);
      goto fail;
    }
  }
  f->submitted = true;
  vk->cur ^= 1;
  return TS_OK;

fail:
  return st;
}

ts_status
ts_vk_sync (void *impl, ts_error *err)
{
  ts_vk *vk = impl;
  ts_status st;

  if (vk->dead)
    return ts_error_set (err, TS_ERR_DEVICE, "vk: the device was lost");
  if ((st = ts_vk_submit (vk, err)) != TS_OK || (st = frame_wait (vk, vk->cur ^ 1, err)) != TS_OK
      || (st = frame_wait (vk, vk->cur, err)) != TS_OK)
    return st;
  if (vk->validation && vk->validation_messages > 0)
    return ts_error_set (err, TS_ERR_DEVICE,
                         "vk: the validation layer reported %d message(s) (see the log)",
                         vk->validation_messages);
  return TS_OK;
}

void
ts_vk_barrier (ts_vk *vk)
{
  VkMemoryBarrier mb = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT
                     | VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT
                     | VK_ACCESS_HOST_READ_BIT,
  };

  vkCmdPipelineBarrier (vk->frames[vk->cur].cb,
                        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT
                            | VK_PIPELINE_STAGE_HOST_BIT,
                        0, 1, &mb, 0, NULL, 0, NULL);
}

/* ---- pipelines ---- */

static ts_status
pipeline_get (ts_vk *vk, const ts_vk_dispatch_desc *d, VkPipeline *out, ts_error *err)
{
  VkSpecializationMapEntry entries[TS_VK_MAX_SPEC];
  VkSpecializationInfo si = {
    .mapEntryCount = (uint32_t) d->n_spec,
    .pMapEntries = entries,
    .dataSize = (size_t) d->n_spec * sizeof (uint32_t),
    .pData = d->spec,
  };
  VkComputePipelineCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
    .stage = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
      .pName = "main",
      .pSpecializationInfo = &si,
    },
    .layout = vk->pipeline_layout,
  };
  ts_vk_pipeline *p;
  char name[128];
  ts_status st = TS_OK;

  for (int i = 0; i < vk->n_pipelines; i++) {
    p = &vk->pipelines[i];
    if (p->shader == d->shader && p->n_spec == d->n_spec
        && memcmp (p->spec, d->spec, (size_t) d->n_spec * sizeof (uint32_t)) == 0) {
      *out = p->pipeline;
      return TS_OK;
    }
  }
  if (!vk->modules[d->shader]) {
    const ts_vk_spirv *spv = ts_vk_spirv_table[d->shader];
    VkShaderModuleCreateInfo mci = {
      .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
      .codeSize = spv->size_bytes,
      .pCode = spv->code,
    };
    VK_TRY (vkCreateShaderModule (vk->device, &mci, NULL, &vk->modules[d->shader]));
    ts_vk_set_name (vk, VK_OBJECT_TYPE_SHADER_MODULE, (uint64_t) vk->modules[d->shader],
                    spv->name);
  }
  if (vk->n_pipelines == vk->cap_pipelines) {
    int cap = vk->cap_pipelines ? 2 * vk->cap_pipelines : 32;
    ts_vk_pipeline *np = realloc (vk->pipelines, (size_t) cap * sizeof *np);
    if (!np)
      return ts_error_set (err, TS_ERR_NOMEM, "vk: out of host memory");
    vk->pipelines = np;
    vk->cap_pipelines = cap;
  }
  for (int i = 0; i < d->n_spec; i++)
    entries[i] = (VkSpecializationMapEntry) { (uint32_t) i, (uint32_t) (i * sizeof (uint32_t)),
                                              sizeof (uint32_t) };
  ci.stage.module = vk->modules[d->shader];
  p = &vk->pipelines[vk->n_pipelines];
  memset (p, 0, sizeof *p);
  VK_TRY (vkCreateComputePipelines (vk->device, vk->cache, 1, &ci, NULL, &p->pipeline));
  p->shader = d->shader;
  p->n_spec = d->n_spec;
  memcpy (p->spec, d->spec, sizeof p->spec);
  vk->n_pipelines++;
  snprintf (name, sizeof name, "%s", ts_vk_spirv_table[d->shader]->name);
  for (int i = 0; i < d->n_spec; i++) {
    size_t len = strlen (name);
    snprintf (name + len, sizeof name - len, "%s%u", i ? "," : "/", d->spec[i]);
  }
  ts_vk_set_name (vk, VK_OBJECT_TYPE_PIPELINE, (uint64_t) p->pipeline, name);
  *out = p->pipeline;
  return TS_OK;

fail:
  ts_error_prefix (err, "vk: creating the %s pipeline", ts_vk_spirv_table[d->shader]->name);
  return st;
}

static void
cache_path_init (ts_vk *vk)
{
  const char *xdg = getenv ("XDG_CACHE_HOME"), *home = getenv ("HOME");

  vk->cache_path[0] = '\0';
  if (xdg && *xdg)
    snprintf (vk->cache_path, sizeof vk->cache_path, "%s/tessera", xdg);
  else if (home && *home)
    snprintf (vk->cache_path, sizeof vk->cache_path, "%s/.cache/tessera", home);
}

static void
cache_file (const ts_vk *vk, char *out, size_t n)
{
  snprintf (out, n, "%s/vk-pipelines-%04x-%04x-%08x.bin", vk->cache_path, vk->props.vendorID,
            vk->props.deviceID, vk->props.driverVersion);
}

static ts_status
cache_load (ts_vk *vk, ts_error *err)
{
  VkPipelineCacheCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO };
  char path[1200];
  void *data = NULL;
  FILE *f = NULL;
  ts_status st = TS_OK;

  cache_path_init (vk);
  if (vk->cache_path[0]) {
    cache_file (vk, path, sizeof path);
    f = fopen (path, "rb");
  }
  if (f) {
    long size;
    if (fseek (f, 0, SEEK_END) == 0 && (size = ftell (f)) > 32 && size < (64L << 20)
        && fseek (f, 0, SEEK_SET) == 0 && (data = malloc ((size_t) size))
        && fread (data, 1, (size_t) size, f) == (size_t) size) {
      /* The header carries the device's pipelineCacheUUID: a stale file is ignored. */
      const unsigned char *h = data;
      if (memcmp (h + 16, vk->props.pipelineCacheUUID, VK_UUID_SIZE) == 0) {
        ci.initialDataSize = (size_t) size;
        ci.pInitialData = data;
      }
    }
    fclose (f);
  }
  VK_TRY (vkCreatePipelineCache (vk->device, &ci, NULL, &vk->cache));
  free (data);
  return TS_OK;

fail:
  free (data);
  return st;
}

static void
cache_save (ts_vk *vk)
{
  char path[1200], tmp[1300], *p;
  size_t size = 0;
  void *data = NULL;
  FILE *f;

  if (!vk->cache || !vk->cache_path[0] || vk->n_pipelines == 0)
    return;
  if (vkGetPipelineCacheData (vk->device, vk->cache, &size, NULL) != VK_SUCCESS || size == 0
      || !(data = malloc (size))
      || vkGetPipelineCacheData (vk->device, vk->cache, &size, data) != VK_SUCCESS)
    goto out;
  /* mkdir -p */
  for (p = vk->cache_path + 1; *p; p++) {
    if (*p == '/') {
      *p = '\0';
      mkdir (vk->cache_path, 0700);
      *p = '/';
    }
  }
  if (mkdir (vk->cache_path, 0700) != 0 && errno != EEXIST)
    goto out;
  cache_file (vk, path, sizeof path);
  snprintf (tmp, sizeof tmp, "%s.%ld.tmp", path, (long) getpid ());
  f = fopen (tmp, "wb");
  if (!f)
    goto out;
  if (fwrite (data, 1, size, f) != size) {
    fclose (f);
    remove (tmp);
    goto out;
  }
  if (fclose (f) != 0 || rename (tmp, path) != 0)
    remove (tmp);
out:
  free (data);
}

/* ---- dispatch ---- */

uint32_t
ts_vk_operand_offset (const ts_vk *vk, const ts_ref *ref)
{
  VkDeviceSize align = vk->props.limits.minStorageBufferOffsetAlignment;
  VkDeviceSize base = ref->offset / align * align;
  return (uint32_t) ((ref->offset - base) / 4);
}

ts_status
ts_vk_dispatch (ts_vk *vk, const ts_vk_dispatch_desc *d, ts_error *err)
{
  VkDescriptorBufferInfo infos[TS_VK_MAX_BINDINGS];
  VkWriteDescriptorSet writes[TS_VK_MAX_BINDINGS];
  VkDeviceSize align = vk->props.limits.minStorageBufferOffsetAlignment;
  VkPipeline pipeline = VK_NULL_HANDLE;
  VkDescriptorSet set;
  ts_vk_frame *f;
  ts_status st;

  if (d->groups[0] == 0 || d->groups[1] == 0 || d->groups[2] == 0)
    return TS_OK;
  for (int i = 0; i < 3; i++)
    if (d->groups[i] > vk->props.limits.maxComputeWorkGroupCount[i])
      return ts_error_set (err, TS_ERR_UNSUPPORTED,
                           "vk: %s: %u workgroups in dimension %d exceed the device's %u",
                           d->label, d->groups[i], i, vk->props.limits.maxComputeWorkGroupCount[i]);
  for (int i = 0; i < TS_VK_MAX_BINDINGS; i++) {
    const ts_vk_operand *o = &d->operands[i];
    infos[i] = (VkDescriptorBufferInfo) { ts_vk_buffer_handle (vk->dummy), 0, VK_WHOLE_SIZE };
    if (i < d->n_operands && o->ref.buf && o->bytes > 0) {
      VkDeviceSize base = o->ref.offset / align * align;
      VkDeviceSize range = (o->ref.offset - base + o->bytes + 3) / 4 * 4;
      VkDeviceSize avail = ((o->ref.buf->size + 3) / 4 * 4) - base;
      if (range > avail)
        range = avail;
      if (range > (o->weight ? vk->props.limits.maxStorageBufferRange : vk->max_operand))
        return ts_error_set (err, TS_ERR_UNSUPPORTED,
                             "vk: %s: operand %d spans %llu bytes, more than the %zu bytes "
                             "one binding may span (maxStorageBufferRange %u%s)",
                             d->label, i, (unsigned long long) range,
                             o->weight ? (size_t) vk->props.limits.maxStorageBufferRange
                                       : vk->max_operand,
                             vk->props.limits.maxStorageBufferRange,
                             vk->max_operand < vk->props.limits.maxStorageBufferRange
                               ? ", lowered by TESSERA_VK_MAX_OPERAND" : "");
      infos[i] = (VkDescriptorBufferInfo) { ts_vk_buffer_handle (o->ref.buf), base, range };
    }
    writes[i] = (VkWriteDescriptorSet) {
      .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
      .dstBinding = (uint32_t) i,
      .descriptorCount = 1,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .pBufferInfo = &infos[i],
    };
  }
  if ((st = pipeline_get (vk, d, &pipeline, err)) != TS_OK || (st = ts_vk_begin (vk, err)) != TS_OK)
    return st;
  f = &vk->frames[vk->cur];
  {
    VkDescriptorSetAllocateInfo ai = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
      .descriptorPool = f->pool,
      .descriptorSetCount = 1,
      .pSetLayouts = &vk->set_layout,
    };
    VK_TRY (vkAllocateDescriptorSets (vk->device, &ai, &set));
  }
  for (int i = 0; i < TS_VK_MAX_BINDINGS; i++)
    writes[i].dstSet = set;
  vkUpdateDescriptorSets (vk->device, TS_VK_MAX_BINDINGS, writes, 0, NULL);
  vkCmdBindPipeline (f->cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
  vkCmdBindDescriptorSets (f->cb, VK_PIPELINE_BIND_POINT_COMPUTE, vk->pipeline_layout, 0, 1, &set,
                           0, NULL);
  if (d->push_size)
    vkCmdPushConstants (f->cb, vk->pipeline_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                        (uint32_t) d->push_size, d->push);
  if (vk->profile) {
    f->prof_index[f->n_queries / 2] = profile_slot (vk, d->label);
    f->prof_flops[f->n_queries / 2] = d->flops;
    vkCmdWriteTimestamp (f->cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, vk->queries[vk->cur],
                         f->n_queries++);
  }
  vkCmdDispatch (f->cb, d->groups[0], d->groups[1], d->groups[2]);
  if (vk->profile)
    vkCmdWriteTimestamp (f->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, vk->queries[vk->cur],
                         f->n_queries++);
  ts_vk_barrier (vk);
  if (++f->n_dispatch >= TS_VK_BATCH)
    return ts_vk_submit (vk, err);
  return TS_OK;

fail:
  return st;
}

/* ---- the object ---- */

static void
vk_destroy (void *impl)
{
  ts_vk *vk = impl;

  if (!vk)
    return;
  if (vk->device) {
    if (!vk->dead)
      ts_vk_sync (vk, NULL);
    vkDeviceWaitIdle (vk->device);
    profile_print (vk);
    cache_save (vk);
    if (vk->dummy)
      ts_vk_buffer_free (vk, vk->dummy);
    for (int i = 0; i < vk->n_pipelines; i++)
      vkDestroyPipeline (vk->device, vk->pipelines[i].pipeline, NULL);
    for (int i = 0; i < TS_VK_SHADER_COUNT; i++)
      if (vk->modules[i])
        vkDestroyShaderModule (vk->device, vk->modules[i], NULL);
    if (vk->cache)
      vkDestroyPipelineCache (vk->device, vk->cache, NULL);
    for (int i = 0; i < 2; i++) {
      if (vk->frames[i].fence)
        vkDestroyFence (vk->device, vk->frames[i].fence, NULL);
      if (vk->frames[i].pool)
        vkDestroyDescriptorPool (vk->device, vk->frames[i].pool, NULL);
      if (vk->queries[i])
        vkDestroyQueryPool (vk->device, vk->queries[i], NULL);
    }
    if (vk->cmd_pool)
      vkDestroyCommandPool (vk->device, vk->cmd_pool, NULL);
    if (vk->pipeline_layout)
      vkDestroyPipelineLayout (vk->device, vk->pipeline_layout, NULL);
    if (vk->set_layout)
      vkDestroyDescriptorSetLayout (vk->device, vk->set_layout, NULL);
    ts_vk_memory_fini (vk);
  }
  if (vk->validation && vk->validation_messages > 0)
    TS_LOG_E ("vk: the validation layer reported %d message(s)", vk->validation_messages);
  ts_vk_device_close (vk);
  free (vk->pipelines);
  free (vk->prof);
  free (vk);
}

static size_t
vk_max_operand_bytes (void *impl)
{
  const ts_vk *vk = impl;
  return vk->max_operand;
}

static const ts_backend_ops vk_ops = {
  .name = "vulkan",
  .buffer_new = ts_vk_buffer_new,
  .buffer_free = ts_vk_buffer_free,
  .upload = ts_vk_upload,
  .download = ts_vk_download,
  .weight_upload = ts_vk_weight_upload,
  .weight_free = ts_vk_weight_free,
  .matmul = ts_vk_matmul,
  .norm = ts_vk_norm,
  .softmax = ts_vk_softmax,
  .attention = ts_vk_attention,
  .rope = ts_vk_rope,
  .act = ts_vk_act,
  .elementwise = ts_vk_elementwise,
  .transpose = ts_vk_transpose,
  .conv2d = ts_vk_conv2d,
  .conv_transpose2d = ts_vk_conv_transpose2d,
  .group_norm = ts_vk_group_norm,
  .upsample = ts_vk_upsample,
  .embed = ts_vk_embed,
  .sample = ts_vk_sample,
  .max_operand_bytes = vk_max_operand_bytes,
  .sync = ts_vk_sync,
  .destroy = vk_destroy,
};

static ts_status
objects_init (ts_vk *vk, ts_error *err)
{
  VkDescriptorSetLayoutBinding bindings[TS_VK_MAX_BINDINGS];
  VkDescriptorSetLayoutCreateInfo lci = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
    .bindingCount = TS_VK_MAX_BINDINGS,
    .pBindings = bindings,
  };
  VkPushConstantRange push = { VK_SHADER_STAGE_COMPUTE_BIT, 0, TS_VK_PUSH_MAX };
  VkPipelineLayoutCreateInfo plci = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
    .setLayoutCount = 1,
    .pSetLayouts = &vk->set_layout,
    .pushConstantRangeCount = 1,
    .pPushConstantRanges = &push,
  };
  VkCommandPoolCreateInfo cpci = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
    .queueFamilyIndex = vk->queue_family,
  };
  VkDescriptorPoolSize pool_size = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                     TS_VK_BATCH * TS_VK_MAX_BINDINGS };
  VkDescriptorPoolCreateInfo dpci = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
    .maxSets = TS_VK_BATCH,
    .poolSizeCount = 1,
    .pPoolSizes = &pool_size,
  };
  VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  ts_status st = TS_OK;

  if (vk->props.limits.maxPushConstantsSize < TS_VK_PUSH_MAX)
    return ts_error_set (err, TS_ERR_UNSUPPORTED, "vk: device '%s' has only %u bytes of push constants",
                         vk->props.deviceName, vk->props.limits.maxPushConstantsSize);
  for (int i = 0; i < TS_VK_MAX_BINDINGS; i++)
    bindings[i] = (VkDescriptorSetLayoutBinding) {
      .binding = (uint32_t) i,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .descriptorCount = 1,
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    };
  VK_TRY (vkCreateDescriptorSetLayout (vk->device, &lci, NULL, &vk->set_layout));
  VK_TRY (vkCreatePipelineLayout (vk->device, &plci, NULL, &vk->pipeline_layout));
  VK_TRY (vkCreateCommandPool (vk->device, &cpci, NULL, &vk->cmd_pool));
  for (int i = 0; i < 2; i++) {
    VkCommandBufferAllocateInfo cai = {
      .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
      .commandPool = vk->cmd_pool,
      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
      .commandBufferCount = 1,
    };
    VK_TRY (vkAllocateCommandBuffers (vk->device, &cai, &vk->frames[i].cb));
    VK_TRY (vkCreateFence (vk->device, &fci, NULL, &vk->frames[i].fence));
    VK_TRY (vkCreateDescriptorPool (vk->device, &dpci, NULL, &vk->frames[i].pool));
  }
  if (env_flag ("TESSERA_VK_PROFILE")) {
    uint32_t n_families = 0, valid_bits = 0;
    VkQueueFamilyProperties fam[16];
    vkGetPhysicalDeviceQueueFamilyProperties (vk->phys, &n_families, NULL);
    if (n_families > 16)
      n_families = 16;
    vkGetPhysicalDeviceQueueFamilyProperties (vk->phys, &n_families, fam);
    if (vk->queue_family < n_families)
      valid_bits = fam[vk->queue_family].timestampValidBits;
    if (valid_bits == 0 || vk->props.limits.timestampPeriod <= 0.0f) {
      TS_LOG_W ("vk: TESSERA_VK_PROFILE: the device has no timestamps on its compute queue");
    } else {
      VkQueryPoolCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
        .queryType = VK_QUERY_TYPE_TIMESTAMP,
        .queryCount = 2 * TS_VK_BATCH,
      };
      for (int i = 0; i < 2; i++)
        VK_TRY (vkCreateQueryPool (vk->device, &qci, NULL, &vk->queries[i]));
      vk->ts_period_ns = vk->props.limits.timestampPeriod;
      vk->profile = true;
    }
  }
  if ((st = cache_load (vk, err)) != TS_OK)
    return st;
  vk->dummy = ts_vk_buffer_new (vk, 16, err);
  if (!vk->dummy)
    return err ? err->code : TS_ERR_NOMEM;
  vk->total -= vk->dummy->size; /* not the caller's memory */
  ts_vk_set_name (vk, VK_OBJECT_TYPE_BUFFER, (uint64_t) ts_vk_buffer_handle (vk->dummy), "unused");
  return TS_OK;

fail:
  return st;
}

ts_status
ts_backend_vulkan_new (ts_backend *out, int device_index, ts_error *err)
{
  ts_vk *vk;
  ts_status st;

  if (!out)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "vk: output backend is NULL");
  out->ops = NULL;
  out->impl = NULL;
  vk = calloc (1, sizeof *vk);
  if (!vk)
    return ts_error_set (err, TS_ERR_NOMEM, "vk: cannot allocate the backend");
  if ((st = ts_vk_instance_new (vk, env_flag ("TESSERA_VK_VALIDATION"), err)) != TS_OK
      || (st = ts_vk_device_open (vk, device_index, err)) != TS_OK
      || (st = ts_vk_memory_init (vk, err)) != TS_OK || (st = objects_init (vk, err)) != TS_OK)
    goto fail;
  out->ops = &vk_ops;
  out->impl = vk;
  return TS_OK;

fail:
  vk_destroy (vk);
  return st;
}

