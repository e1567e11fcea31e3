/* SPDX-License-Identifier: MIT
 *
 * ts-vk-device — the Vulkan instance and device of the compute backend: creating the
 * instance (with VK_EXT_debug_utils for object names when present, and the Khronos
 * validation layer plus a messenger that counts every warning and error when
 * TESSERA_VK_VALIDATION=1), listing the physical devices for ts_vulkan_list_devices and
 * `tessera-cli devices`, choosing one (discrete GPU, then integrated, then virtual, then
 * others; a CPU-type device such as lavapipe only when asked for explicitly, since a user
 * without a GPU is better served by the CPU backend) and opening it with one compute queue.
 * Failures are engine errors with a message, never crashes: a broken ICD makes
 * vkCreateInstance or the enumeration fail, which is TS_ERR_DEVICE naming the VkResult.
 */
#include "backend/vk/ts-vk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

const char *
ts_vk_result_name (VkResult r)
{
  switch ((int) r) {
  case VK_SUCCESS: return "VK_SUCCESS";
  case VK_NOT_READY: return "VK_NOT_READY";
  case VK_TIMEOUT: return "VK_TIMEOUT";
  case VK_EVENT_SET: return "VK_EVENT_SET";
  case VK_EVENT_RESET: return "VK_EVENT_RESET";
  case VK_INCOMPLETE: return "VK_INCOMPLETE";
  case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
  case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
  case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
  case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
  case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
  case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
  case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
  case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
  case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
  case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
  case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
  case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
  case VK_ERROR_UNKNOWN: return "VK_ERROR_UNKNOWN";
  case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
  case VK_ERROR_INVALID_EXTERNAL_HANDLE: return "VK_ERROR_INVALID_EXTERNAL_HANDLE";
  case VK_ERROR_FRAGMENTATION: return "VK_ERROR_FRAGMENTATION";
  case VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS: return "VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS";
  case VK_PIPELINE_COMPILE_REQUIRED: return "VK_PIPELINE_COMPILE_REQUIRED";
  default: return "VkResult (unknown)";
  }
}

ts_status
ts_vk_result_status (VkResult r)
{
  switch ((int) r) {
  case VK_SUCCESS:
    return TS_OK;
  case VK_ERROR_OUT_OF_HOST_MEMORY:
  case VK_ERROR_OUT_OF_DEVICE_MEMORY:
  case VK_ERROR_OUT_OF_POOL_MEMORY:
  case VK_ERROR_FRAGMENTED_POOL:
  case VK_ERROR_FRAGMENTATION:
    return TS_ERR_NOMEM;
  case VK_ERROR_LAYER_NOT_PRESENT:
  case VK_ERROR_EXTENSION_NOT_PRESENT:
  case VK_ERROR_FEATURE_NOT_PRESENT:
  case VK_ERROR_FORMAT_NOT_SUPPORTED:
    return TS_ERR_UNSUPPORTED;
  default:
    return TS_ERR_DEVICE;
  }
}

ts_status
ts_vk_fail (VkResult r, const char *call, const char *file, int line, ts_error *err)
{
  ts_status st = ts_vk_result_status (r);

  TS_LOG_E ("vk: %s failed: %s (%d) at %s:%d", call, ts_vk_result_name (r), (int) r, file, line);
  return ts_error_set (err, st, "vk: %s failed: %s%s", call, ts_vk_result_name (r),
                       r == VK_ERROR_DEVICE_LOST ? " (the device is lost; retry on the CPU)" : "");
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
messenger_cb (VkDebugUtilsMessageSeverityFlagBitsEXT severity,
              VkDebugUtilsMessageTypeFlagsEXT types,
              const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
  ts_vk *vk = user;

  (void) types;
  if (severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT
                  | VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT)) {
    vk->validation_messages++;
    TS_LOG_E ("vk: validation: %s", data && data->pMessage ? data->pMessage : "(no message)");
  }
  return VK_FALSE;
}

static bool
has_layer (const char *name)
{
  uint32_t n = 0;
  VkLayerProperties *props;
  bool found = false;

  if (vkEnumerateInstanceLayerProperties (&n, NULL) != VK_SUCCESS || n == 0)
    return false;
  props = calloc (n, sizeof *props);
  if (props && vkEnumerateInstanceLayerProperties (&n, props) == VK_SUCCESS)
    for (uint32_t i = 0; i < n; i++)
      if (strcmp (props[i].layerName, name) == 0)
        found = true;
  free (props);
  return found;
}

static bool
has_instance_extension (const char *name)
{
  uint32_t n = 0;
  VkExtensionProperties *props;
  bool found = false;

  if (vkEnumerateInstanceExtensionProperties (NULL, &n, NULL) != VK_SUCCESS || n == 0)
    return false;
  props = calloc (n, sizeof *props);
  if (props && vkEnumerateInstanceExtensionProperties (NULL, &n, props) == VK_SUCCESS)
    for (uint32_t i = 0; i < n; i++)
      if (strcmp (props[i].extensionName, name) == 0)
        found = true;
  free (props);
  return found;
}

ts_status
ts_vk_instance_new (ts_vk *vk, bool validation, ts_error *err)
{
  VkApplicationInfo app = {
    .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
    .pApplicationName = "tessera",
    .pEngineName = "tessera",
    .apiVersion = VK_API_VERSION_1_2,
  };
  const char *layers[1] = { VALIDATION_LAYER };
  const char *exts[1] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME };
  bool debug_utils = has_instance_extension (VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  VkInstanceCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
    .pApplicationInfo = &app,
    .enabledExtensionCount = debug_utils ? 1 : 0,
    .ppEnabledExtensionNames = exts,
  };
  uint32_t version = VK_API_VERSION_1_0;
  ts_status st = TS_OK;

  if (vkEnumerateInstanceVersion (&version) != VK_SUCCESS || version < VK_API_VERSION_1_1)
    return ts_error_set (err, TS_ERR_UNSUPPORTED,
                         "vk: the Vulkan loader offers version %u.%u; 1.1 or newer is needed",
                         VK_API_VERSION_MAJOR (version), VK_API_VERSION_MINOR (version));
  if (validation) {
    if (!has_layer (VALIDATION_LAYER))
      return ts_error_set (err, TS_ERR_UNSUPPORTED,
                           "vk: TESSERA_VK_VALIDATION is set but %s is not installed "
                           "(Debian: vulkan-validationlayers)",
                           VALIDATION_LAYER);
    if (!debug_utils)
      return ts_error_set (err, TS_ERR_UNSUPPORTED,
                           "vk: TESSERA_VK_VALIDATION is set but %s is missing",
                           VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    ci.enabledLayerCount = 1;
    ci.ppEnabledLayerNames = layers;
  }
  {
    VkResult r = vkCreateInstance (&ci, NULL, &vk->instance);
    if (r != VK_SUCCESS) {
      TS_LOG_I ("vk: vkCreateInstance failed: %s (%d)", ts_vk_result_name (r), (int) r);
      vk->instance = VK_NULL_HANDLE;
      return ts_error_set (err, r == VK_ERROR_LAYER_NOT_PRESENT ? TS_ERR_UNSUPPORTED : TS_ERR_DEVICE,
                           "vk: no usable Vulkan driver: vkCreateInstance failed with %s "
                           "(is a Vulkan driver installed? VK_DRIVER_FILES / VK_ICD_FILENAMES "
                           "may name a missing one)",
                           ts_vk_result_name (r));
    }
  }
  if (debug_utils) {
    vk->set_name = (PFN_vkSetDebugUtilsObjectNameEXT) vkGetInstanceProcAddr (
        vk->instance, "vkSetDebugUtilsObjectNameEXT");
    vk->destroy_messenger = (PFN_vkDestroyDebugUtilsMessengerEXT) vkGetInstanceProcAddr (
        vk->instance, "vkDestroyDebugUtilsMessengerEXT");
  }
  if (validation) {
    PFN_vkCreateDebugUtilsMessengerEXT create = (PFN_vkCreateDebugUtilsMessengerEXT)
        vkGetInstanceProcAddr (vk->instance, "vkCreateDebugUtilsMessengerEXT");
    VkDebugUtilsMessengerCreateInfoEXT mci = {
      .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
      .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT
                         | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
      .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT
                     | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT
                     | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
      .pfnUserCallback = messenger_cb,
      .pUserData = vk,
    };
    if (!create || !vk->destroy_messenger) {
      st = ts_error_set (err, TS_ERR_UNSUPPORTED, "vk: cannot install the validation messenger");
      goto fail;
    }
    VK_TRY (create (vk->instance, &mci, NULL, &vk->messenger));
    vk->validation = true;
  }
  return TS_OK;

fail:
  if (vk->instance)
    vkDestroyInstance (vk->instance, NULL);
  vk->instance = VK_NULL_HANDLE;
  return st;
}

static const char *
type_name (VkPhysicalDeviceType t)
{
  switch (t) {
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
  case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
  case VK_PHYSICAL_DEVICE_TYPE_OTHER:
  case VK_PHYSICAL_DEVICE_TYPE_MAX_ENUM:
  default: return "other";
  }
}

/* Lower is better; CPU-type devices are never chosen automatically. */
static int
type_rank (VkPhysicalDeviceType t)
{
  switch (t) {
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
  case VK_PHYSICAL_DEVICE_TYPE_OTHER: return 3;
  case VK_PHYSICAL_DEVICE_TYPE_CPU:
  case VK_PHYSICAL_DEVICE_TYPE_MAX_ENUM:
  default: return 100;
  }
}

static void
describe (VkPhysicalDevice pd, ts_vk_device_info *info)
{
  VkPhysicalDeviceSubgroupProperties sub = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES };
  VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sub };
  VkPhysicalDeviceDriverProperties drv = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES };
  VkPhysicalDevice16BitStorageFeatures s16 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES };
  VkPhysicalDeviceShaderFloat16Int8Features f16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES, .pNext = &s16 };
  VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f16 };
  VkPhysicalDeviceMemoryProperties mem;

  VkPhysicalDeviceProperties plain;

  /* VkPhysicalDeviceDriverProperties is core in Vulkan 1.2; older devices must not see it
   * in the chain. */
  vkGetPhysicalDeviceProperties (pd, &plain);
  if (plain.apiVersion >= VK_API_VERSION_1_2)
    sub.pNext = &drv;
  vkGetPhysicalDeviceProperties2 (pd, &p2);
  memset (info, 0, sizeof *info);
  snprintf (info->name, sizeof info->name, "%s", p2.properties.deviceName);
  snprintf (info->type, sizeof info->type, "%s", type_name (p2.properties.deviceType));
  info->api_version = p2.properties.apiVersion;
  info->max_storage_buffer_range = p2.properties.limits.maxStorageBufferRange;
  info->subgroup_size = sub.subgroupSize;
  info->driver_version = p2.properties.driverVersion;
  if (sub.pNext == &drv)
    snprintf (info->driver, sizeof info->driver, "%s %s", drv.driverName, drv.driverInfo);
  if (p2.properties.apiVersion >= VK_API_VERSION_1_2) {
    vkGetPhysicalDeviceFeatures2 (pd, &f2);
    info->fp16 = f16.shaderFloat16;
    info->int8 = f16.shaderInt8;
  } else {
    f2.pNext = &s16;
    vkGetPhysicalDeviceFeatures2 (pd, &f2);
  }
  info->storage16 = s16.storageBuffer16BitAccess;
  vkGetPhysicalDeviceMemoryProperties (pd, &mem);
  for (uint32_t h = 0; h < mem.memoryHeapCount; h++)
    if (mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      info->device_local_bytes += mem.memoryHeaps[h].size;
}

/* The physical devices of vk->instance in a malloc'd array. */
static ts_status
enumerate (ts_vk *vk, VkPhysicalDevice **out, uint32_t *n, ts_error *err)
{
  ts_status st = TS_OK;

  *out = NULL;
  *n = 0;
  VK_TRY (vkEnumeratePhysicalDevices (vk->instance, n, NULL));
  if (*n == 0)
    return TS_OK;
  *out = calloc (*n, sizeof **out);
  if (!*out)
    return ts_error_set (err, TS_ERR_NOMEM, "vk: out of memory");
  VK_TRY (vkEnumeratePhysicalDevices (vk->instance, n, *out));
  return TS_OK;

fail:
  free (*out);
  *out = NULL;
  *n = 0;
  ts_error_prefix (err, "vk: cannot list the devices (broken driver?)");
  return st;
}

ts_status
ts_vulkan_list_devices (ts_vk_device_info *out, int cap, int *n, ts_error *err)
{
  ts_vk vk = { 0 };
  VkPhysicalDevice *pds = NULL;
  uint32_t count = 0;
  ts_status st;

  if (!n || cap < 0 || (cap > 0 && !out))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "vk: bad arguments to ts_vulkan_list_devices");
  *n = 0;
  if ((st = ts_vk_instance_new (&vk, false, err)) != TS_OK)
    return st;
  st = enumerate (&vk, &pds, &count, err);
  if (st == TS_OK) {
    for (uint32_t i = 0; i < count && (int) i < cap; i++)
      describe (pds[i], &out[i]);
    *n = (int) count;
  }
  free (pds);
  vkDestroyInstance (vk.instance, NULL);
  return st;
}

/* Which device to open: `device_index` when >= 0, else TESSERA_VK_DEVICE (an index or a
 * name substring), else the best GPU. */
static ts_status
choose (VkPhysicalDevice *pds, uint32_t n, int device_index, uint32_t *pick, ts_error *err)
{
  const char *env = getenv ("TESSERA_VK_DEVICE");
  ts_vk_device_info info;
  int best = -1, best_rank = 1000;
  char cpu_names[512] = "";

  if (n == 0)
    return ts_error_set (err, TS_ERR_DEVICE,
                         "vk: the Vulkan loader found no device (no driver installed, or "
                         "VK_DRIVER_FILES / VK_ICD_FILENAMES points at a missing one)");
  if (device_index < 0 && env && *env) {
    char *end;
    long v = strtol (env, &end, 10);
    if (*end == '\0') {
      device_index = (int) v;
    } else {
      for (uint32_t i = 0; i < n; i++) {
        describe (pds[i], &info);
        if (strstr (info.name, env)) {
          *pick = i;
          return TS_OK;
        }
      }
      return ts_error_set (err, TS_ERR_NOT_FOUND,
                           "vk: TESSERA_VK_DEVICE='%s' matches none of the %u device(s) "
                           "(see `tessera-cli devices`)",
                           env, n);
    }
  }
  if (device_index >= 0) {
    if ((uint32_t) device_index >= n)
      return ts_error_set (err, TS_ERR_NOT_FOUND,
                           "vk: device %d requested but there are only %u device(s)", device_index,
                           n);
    *pick = (uint32_t) device_index;
    return TS_OK;
  }
  for (uint32_t i = 0; i < n; i++) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties (pds[i], &p);
    if (type_rank (p.deviceType) < best_rank) {
      best_rank = type_rank (p.deviceType);
      best = (int) i;
    }
    if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) {
      size_t len = strlen (cpu_names);
      snprintf (cpu_names + len, sizeof cpu_names - len, "%s%u: %s", len ? ", " : "", i,
                p.deviceName);
    }
  }
  if (best < 0 || best_rank >= 100)
    return ts_error_set (err, TS_ERR_UNSUPPORTED,
                         "vk: no GPU found, only CPU-type Vulkan devices (%s); the CPU backend "
                         "is faster there. Select one explicitly with TESSERA_VK_DEVICE=N or "
                         "backend \"vulkan:N\"",
                         cpu_names);
  *pick = (uint32_t) best;
  return TS_OK;
}

ts_status
ts_vk_device_open (ts_vk *vk, int device_index, ts_error *err)
{
  VkPhysicalDevice *pds = NULL;
  uint32_t n = 0, pick = 0, n_families = 0;
  VkQueueFamilyProperties *families = NULL;
  float priority = 1.0f;
  int family = -1;
  ts_status st;

  if ((st = enumerate (vk, &pds, &n, err)) != TS_OK)
    return st;
  if ((st = choose (pds, n, device_index, &pick, err)) != TS_OK)
    goto out;
  vk->phys = pds[pick];
  vkGetPhysicalDeviceProperties (vk->phys, &vk->props);
  vkGetPhysicalDeviceMemoryProperties (vk->phys, &vk->mem_props);
  vk->cpu_type = vk->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
  if (vk->props.apiVersion < VK_API_VERSION_1_1) {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED, "vk: device '%s' supports only Vulkan %u.%u",
                       vk->props.deviceName, VK_API_VERSION_MAJOR (vk->props.apiVersion),
                       VK_API_VERSION_MINOR (vk->props.apiVersion));
    goto out;
  }

  vkGetPhysicalDeviceQueueFamilyProperties (vk->phys, &n_families, NULL);
  families = calloc (n_families ? n_families : 1, sizeof *families);
  if (!families) {
    st = ts_error_set (err, TS_ERR_NOMEM, "vk: out of memory");
    goto out;
  }
  vkGetPhysicalDeviceQueueFamilyProperties (vk->phys, &n_families, families);
  /* A compute-only family first (async compute on discrete GPUs), else any with compute. */
  for (uint32_t i = 0; i < n_families && family < 0; i++)
    if ((families[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
        && !(families[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
      family = (int) i;
  for (uint32_t i = 0; i < n_families && family < 0; i++)
    if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT)
      family = (int) i;
  if (family < 0) {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED, "vk: device '%s' has no compute queue",
                       vk->props.deviceName);
    goto out;
  }
  vk->queue_family = (uint32_t) family;
  {
    VkDeviceQueueCreateInfo qci = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
      .queueFamilyIndex = vk->queue_family,
      .queueCount = 1,
      .pQueuePriorities = &priority,
    };
    VkPhysicalDevice16BitStorageFeatures s16 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                     .pNext = &s16 };
    VkPhysicalDevice16BitStorageFeatures s16_on = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES };
    VkDeviceCreateInfo dci = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
      .queueCreateInfoCount = 1,
      .pQueueCreateInfos = &qci,
    };
    VkPhysicalDeviceSubgroupProperties sub = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES };
    VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                       .pNext = &sub };
    const char *gemm = getenv ("TESSERA_VK_GEMM");
    bool broadcast;

    vkGetPhysicalDeviceFeatures2 (vk->phys, &f2);
    vkGetPhysicalDeviceProperties2 (vk->phys, &p2);
    /* Only the one feature the _w16 shaders need (reading 16-bit storage buffers). */
    if (s16.storageBuffer16BitAccess) {
      s16_on.storageBuffer16BitAccess = VK_TRUE;
      dci.pNext = &s16_on;
      vk->storage16 = true;
    }
    vk->subgroup_size = sub.subgroupSize;
    broadcast = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT)
                && (sub.supportedOperations & VK_SUBGROUP_FEATURE_BALLOT_BIT)
                && sub.subgroupSize >= 1 && sub.subgroupSize <= 16;
    /* ROWS needs subgroupBroadcast and a fixed subgroup size (TN = 4 x subgroup size). */
    vk->gemm = vk->cpu_type && broadcast ? TS_VK_GEMM_ROWS : TS_VK_GEMM_TILED;
    if (gemm && strcmp (gemm, "tiled") == 0)
      vk->gemm = TS_VK_GEMM_TILED;
    else if (gemm && strcmp (gemm, "blocked") == 0)
      vk->gemm = TS_VK_GEMM_BLOCKED;
    else if (gemm && strcmp (gemm, "rows") == 0 && broadcast)
      vk->gemm = TS_VK_GEMM_ROWS;
    else if (gemm && *gemm)
      TS_LOG_W ("vk: TESSERA_VK_GEMM=%s is not usable here (rows, tiled or blocked): ignored",
                gemm);
    VK_TRY (vkCreateDevice (vk->phys, &dci, NULL, &vk->device));
  }
  vkGetDeviceQueue (vk->device, vk->queue_family, 0, &vk->queue);
  TS_LOG_I ("vk: using device %u '%s' (%s, Vulkan %u.%u)", pick, vk->props.deviceName,
            type_name (vk->props.deviceType), VK_API_VERSION_MAJOR (vk->props.apiVersion),
            VK_API_VERSION_MINOR (vk->props.apiVersion));
  goto out;

fail:
  ts_error_prefix (err, "vk: cannot open device '%s'", vk->props.deviceName);
out:
  free (families);
  free (pds);
  return st;
}

void
ts_vk_device_close (ts_vk *vk)
{
  if (vk->device)
    vkDestroyDevice (vk->device, NULL);
  if (vk->messenger && vk->destroy_messenger)
    vk->destroy_messenger (vk->instance, vk->messenger, NULL);
  if (vk->instance)
    vkDestroyInstance (vk->instance, NULL);
  vk->device = VK_NULL_HANDLE;
  vk->messenger = VK_NULL_HANDLE;
  vk->instance = VK_NULL_HANDLE;
}

void
ts_vk_set_name (ts_vk *vk, VkObjectType type, uint64_t handle, const char *name)
{
  VkDebugUtilsObjectNameInfoEXT info = {
    .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_OBJECT_NAME_INFO_EXT,
    .objectType = type,
    .objectHandle = handle,
    .pObjectName = name,
  };

  if (vk->set_name && name && handle)
    vk->set_name (vk->device, &info);
}
