/* SPDX-License-Identifier: MIT
 *
 * ts-backend — the backend-independent part of ts-backend.h: destroying a backend
 * through its vtable. Each backend's constructor lives with its implementation
 * (ts_backend_cpu_new in engine/cpu/, ts_backend_vulkan_new in engine/vk/); a build
 * without Vulkan gets the Vulkan entry points here, failing with TS_ERR_UNSUPPORTED.
 */
#include "ts-backend.h"
#include "ts-common.h"

#include <stddef.h>

void
ts_backend_free (ts_backend *be)
{
  if (!be || !be->ops)
    return;
  if (be->ops->destroy)
    be->ops->destroy (be->impl);
  be->ops = NULL;
  be->impl = NULL;
}

#ifndef TS_HAVE_VULKAN
ts_status
ts_backend_vulkan_new (ts_backend *out, int device_index, ts_error *err)
{
  (void) device_index;
  if (out)
    out->ops = NULL, out->impl = NULL;
  return ts_error_set (err, TS_ERR_UNSUPPORTED, "vk: this build has no Vulkan support");
}

ts_status
ts_vulkan_list_devices (ts_vk_device_info *out, int cap, int *n, ts_error *err)
{
  (void) out;
  (void) cap;
  if (n)
    *n = 0;
  return ts_error_set (err, TS_ERR_UNSUPPORTED, "vk: this build has no Vulkan support");
}
#endif
