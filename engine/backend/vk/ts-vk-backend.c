/* SPDX-License-Identifier: MIT
 *
 * ts-vk-backend — the Vulkan backend object: the compute pipelines, the binding ranges of
 * a dispatch, the constructor and the ops vtable. The command stream that dispatches are
 * recorded into is ts-vk-cmd.c.
 *
 * Pipelines: one descriptor-set layout (TS_VK_MAX_BINDINGS storage buffers) and one
 * 128-byte push-constant range shared by every shader; a pipeline per (shader,
 * specialization constants), created on first use through a VkPipelineCache that is kept on
 * disk in $XDG_CACHE_HOME/tessera (or ~/.cache/tessera), one file per device.
 *
 * Validation (TESSERA_VK_VALIDATION=1): the Khronos layer with a messenger; any warning or
 * error it reports makes the next sync fail (ts-vk-cmd.c), so tests cannot pass over one.
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

static bool
env_flag (const char *name)
{
  const char *v = getenv (name);
  return v && *v && strcmp (v, "0") != 0;
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
  VkDeviceSize align = vk->props.limits.minStorageBufferOffsetAlignment;
  VkPipeline pipeline = VK_NULL_HANDLE;
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
  }
  if ((st = pipeline_get (vk, d, &pipeline, err)) != TS_OK)
    return st;
  return ts_vk_record_dispatch (vk, pipeline, infos, d, err);
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
      ts_vk_wait_idle (vk, NULL);
    vkDeviceWaitIdle (vk->device);
    cache_save (vk);
    if (vk->gn_stats)
      ts_vk_buffer_free (vk, vk->gn_stats);
    if (vk->dummy)
      ts_vk_buffer_free (vk, vk->dummy);
    for (int i = 0; i < vk->n_pipelines; i++)
      vkDestroyPipeline (vk->device, vk->pipelines[i].pipeline, NULL);
    for (int i = 0; i < TS_VK_SHADER_COUNT; i++)
      if (vk->modules[i])
        vkDestroyShaderModule (vk->device, vk->modules[i], NULL);
    if (vk->cache)
      vkDestroyPipelineCache (vk->device, vk->cache, NULL);
    ts_vk_cmd_fini (vk);
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
  free (vk);
}

static size_t
vk_max_operand_bytes (void *impl)
{
  const ts_vk *vk = impl;
  return vk->max_operand;
}

static void
vk_device_memory (void *impl, uint64_t *in_use, uint64_t *peak)
{
  const ts_vk *vk = impl;
  *in_use = vk->device_bytes;
  *peak = vk->device_peak_bytes;
}

static const ts_backend_ops vk_ops = {
  .name = "vulkan",
  /* Every shader reduces in a fixed order per output element, whatever the batch. */
  .batch_invariant = true,
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
  .device_memory = vk_device_memory,
  .abort_set = ts_vk_abort_set,
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
  if ((st = ts_vk_cmd_init (vk, err)) != TS_OK)
    return st;
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

