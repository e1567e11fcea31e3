/* SPDX-License-Identifier: MIT
 *
 * ts-backend — the backend-independent part of ts-backend.h: destroying a backend
 * through its vtable. Each backend's constructor lives with its implementation
 * (ts_backend_cpu_new in engine/backend/cpu/, ts_backend_vulkan_new in engine/backend/vk/); a build
 * without Vulkan gets the Vulkan entry points here, failing with TS_ERR_UNSUPPORTED.
 */
#include "backend/ts-backend.h"
#include "core/ts-common.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifdef TS_HAVE_VULKAN
#define VULKAN_NAMES ", vulkan, vulkan:N"
#define CHECK_VULKAN_NAMES ", check:vulkan, check:vulkan:N"
#else
#define VULKAN_NAMES ""
#define CHECK_VULKAN_NAMES ""
#endif

/* "check:" followed by the name of the backend under test. */
#define CHECK_PREFIX "check:"
#define CHECK_PREFIX_LEN 6

/* "vulkan:N" -> N, else -1 (plain "vulkan") or -2 (not a Vulkan name). */
static int
vulkan_index (const char *name)
{
  char *end;
  long v;

  if (strcmp (name, "vulkan") == 0)
    return -1;
  if (strncmp (name, "vulkan:", 7) != 0 || name[7] < '0' || name[7] > '9')
    return -2;
  v = strtol (name + 7, &end, 10);
  return *end == '\0' && v < 1000000 ? (int) v : -2;
}

/* The device part of a check backend's name ("cpu", "vulkan", "vulkan:N"), or NULL. */
static const char *
check_device (const char *name)
{
  const char *device;

  if (strncmp (name, CHECK_PREFIX, CHECK_PREFIX_LEN) != 0)
    return NULL;
  device = name + CHECK_PREFIX_LEN;
  return strcmp (device, "cpu") == 0 || vulkan_index (device) != -2 ? device : NULL;
}

bool
ts_backend_name_valid (const char *name)
{
  return name
         && (strcmp (name, "auto") == 0 || strcmp (name, "cpu") == 0
             || strcmp (name, "cpu-ref") == 0 || vulkan_index (name) != -2
             || check_device (name));
}

const char *
ts_backend_names (void)
{
  return "auto, cpu, cpu-ref" VULKAN_NAMES ", check:cpu" CHECK_VULKAN_NAMES;
}

ts_status
ts_backend_new_by_name (ts_backend *out, const char *name, int n_threads, ts_error *err)
{
  int index;

  if (!name || strcmp (name, "auto") == 0) {
    ts_error vk_err = { TS_OK, "" };
    if (ts_backend_vulkan_new (out, -1, &vk_err) == TS_OK) {
      TS_LOG_I ("backend: auto: using Vulkan");
      return TS_OK;
    }
    TS_LOG_I ("backend: auto: using the CPU (%s)", vk_err.message);
    return ts_backend_cpu_new (out, false, n_threads, err);
  }
  if (strcmp (name, "cpu") == 0 || strcmp (name, "cpu-ref") == 0)
    return ts_backend_cpu_new (out, strcmp (name, "cpu-ref") == 0, n_threads, err);
  index = vulkan_index (name);
  if (index != -2)
    return ts_backend_vulkan_new (out, index, err);
  if (check_device (name))
    return ts_backend_check_new (out, check_device (name), n_threads, err);
  return ts_error_set (err, TS_ERR_INVALID_ARG, "unknown backend '%s' (this build has: %s)", name,
                       ts_backend_names ());
}

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

/* ---- precision modes ---- */

static const char *const precision_names[] = { "auto", "fp32", "bf16" };

const char *
ts_precision_name (ts_precision precision)
{
  return (unsigned) precision < 3 ? precision_names[precision] : "?";
}

ts_status
ts_precision_parse (const char *name, ts_precision *out, ts_error *err)
{
  for (int i = 0; name && i < 3; i++)
    if (strcmp (name, precision_names[i]) == 0) {
      if (out)
        *out = (ts_precision) i;
      return TS_OK;
    }
  return ts_error_set (err, TS_ERR_INVALID_ARG, "unknown precision '%s' (choose auto, fp32 or bf16)",
                       name ? name : "(null)");
}

const char *
ts_bf16_support_name (ts_bf16_support support)
{
  switch (support) {
  case TS_BF16_NATIVE:
    return "native";
  case TS_BF16_EMULATED:
    return "emulated";
  case TS_BF16_NONE:
  default:
    return "none";
  }
}
