/* SPDX-License-Identifier: MIT
 *
 * ts-vk-cmd — the Vulkan backend's command stream: the lifecycle of its command buffers
 * (begin, record, barrier, submit, wait) and the per-kernel profile that rides on it.
 *
 * Two command buffers ("frames", each with its fence and descriptor pool) are used in turn.
 * Ops record a dispatch followed by a global memory barrier into the current one; after
 * TS_VK_BATCH dispatches it is submitted without waiting and the other one takes over
 * (after its own fence), so the device works while the host records. `sync`, downloads and
 * large uploads submit and wait. A lost device marks the backend dead: every later call
 * fails with TS_ERR_DEVICE.
 *
 * Profiling (TESSERA_VK_PROFILE=1): timestamps around every dispatch, collected when a
 * frame's fence is waited for; the per-kernel calls, time and GFLOP/s are printed when the
 * backend is freed. Validation (TESSERA_VK_VALIDATION=1): any message the layer reported
 * makes the next sync fail, so tests cannot pass over one.
 *
 * Below ts-vk-memory.c (which records fills and copies here) and ts-vk-backend.c (which
 * records dispatches here); it calls neither.
 */
#include "backend/vk/ts-vk.h"

#include <stdlib.h>
#include <string.h>

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

/* How long one wait for a fence lasts before the abort hook is polled again. */
#define ABORT_POLL_NS 20000000ull

/* Waits for frame fi. abortable: poll the abort hook every ABORT_POLL_NS and fail with
 * TS_ERR_CANCELLED when it fires, leaving the frame submitted (a later wait finishes it). */
static ts_status
frame_wait (ts_vk *vk, int fi, bool abortable, ts_error *err)
{
  ts_vk_frame *f = &vk->frames[fi];
  ts_status st = TS_OK;

  if (!f->submitted)
    return TS_OK;
  abortable = abortable && vk->abort_fn;
  for (;;) {
    VkResult r = vkWaitForFences (vk->device, 1, &f->fence, VK_TRUE,
                                  abortable ? ABORT_POLL_NS : UINT64_MAX);
    if (r == VK_TIMEOUT && abortable) {
      if (vk->abort_fn (vk->abort_data))
        return ts_error_set (err, TS_ERR_CANCELLED, "vk: cancelled");
      continue;
    }
    if (r != VK_SUCCESS) {
      if (r == VK_ERROR_DEVICE_LOST)
        vk->dead = true;
      st = ts_vk_fail (r, "vkWaitForFences", __FILE__, __LINE__, err);
      goto fail;
    }
    break;
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
  if ((st = frame_wait (vk, vk->cur, false, err)) != TS_OK)
    return st;
  VK_TRY (vkResetDescriptorPool (vk->device, f->pool, 0));
  VK_TRY (vkResetCommandBuffer (f->cb, 0));
  VK_TRY (vkBeginCommandBuffer (f->cb, &bi));
  if (vk->profile)
    vkCmdResetQueryPool (f->cb, vk->queries[vk->cur], 0, 2 * TS_VK_BATCH);
  f->recording = true;
  f->n_dispatch = 0;
  f->flops = 0.0;
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

static ts_status
sync_frames (ts_vk *vk, bool abortable, ts_error *err)
{
  ts_status st;

  if (vk->dead)
    return ts_error_set (err, TS_ERR_DEVICE, "vk: the device was lost");
  if ((st = ts_vk_submit (vk, err)) != TS_OK
      || (st = frame_wait (vk, vk->cur ^ 1, abortable, err)) != TS_OK
      || (st = frame_wait (vk, vk->cur, abortable, err)) != TS_OK)
    return st;
  if (vk->validation && vk->validation_messages > 0)
    return ts_error_set (err, TS_ERR_DEVICE,
                         "vk: the validation layer reported %d message(s) (see the log)",
                         vk->validation_messages);
  return TS_OK;
}

ts_status
ts_vk_sync (void *impl, ts_error *err)
{
  return sync_frames (impl, true, err);
}

ts_status
ts_vk_wait_idle (ts_vk *vk, ts_error *err)
{
  return sync_frames (vk, false, err);
}

void
ts_vk_abort_set (void *impl, ts_should_abort_fn fn, void *data)
{
  ts_vk *vk = impl;

  vk->abort_fn = fn;
  vk->abort_data = data;
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

ts_status
ts_vk_record_dispatch (ts_vk *vk, VkPipeline pipeline,
                       const VkDescriptorBufferInfo infos[TS_VK_MAX_BINDINGS],
                       const ts_vk_dispatch_desc *d, ts_error *err)
{
  VkWriteDescriptorSet writes[TS_VK_MAX_BINDINGS];
  VkDescriptorSet set;
  ts_vk_frame *f;
  ts_status st = TS_OK;

  /* The cancel point between submissions: before recording, and while waiting for the
   * frame this dispatch goes into (submitted two batches ago). */
  f = &vk->frames[vk->cur];
  if (vk->abort_fn && !f->recording
      && (vk->abort_fn (vk->abort_data)
          || (st = frame_wait (vk, vk->cur, true, err)) == TS_ERR_CANCELLED))
    return ts_error_set (err, TS_ERR_CANCELLED, "vk: cancelled");
  if (st != TS_OK || (st = ts_vk_begin (vk, err)) != TS_OK)
    return st;
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
    writes[i] = (VkWriteDescriptorSet) {
      .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
      .dstSet = set,
      .dstBinding = (uint32_t) i,
      .descriptorCount = 1,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .pBufferInfo = &infos[i],
    };
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
  f->flops += d->cost > 0 ? d->cost : d->flops;
  if (++f->n_dispatch >= TS_VK_BATCH
      || f->flops >= (vk->cpu_type ? TS_VK_BATCH_FLOP_CPU : TS_VK_BATCH_FLOP))
    return ts_vk_submit (vk, err);
  return TS_OK;

fail:
  return st;
}

/* ---- setup ---- */

ts_status
ts_vk_cmd_init (ts_vk *vk, ts_error *err)
{
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
  return TS_OK;

fail:
  return st;
}

void
ts_vk_cmd_fini (ts_vk *vk)
{
  profile_print (vk);
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
  free (vk->prof);
  vk->prof = NULL;
}
