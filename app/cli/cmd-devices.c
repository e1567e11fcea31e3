/* SPDX-License-Identifier: MIT
 *
 * cmd-devices — `tessera-cli devices`: the Vulkan devices the loader reports, with the
 * index that backend "vulkan:N" and TESSERA_VK_DEVICE=N select, and which device the
 * default "auto" backend would use (CPU-type devices such as lavapipe never are).
 */
#include "tessera-cli-commands.h"

#include <tessera.h>
#include "cli-options.h"

#include <stdio.h>
#include <string.h>

#define MAX_DEVICES 16

int
tessera_cli_devices (int argc, char **argv)
{
  ts_vk_device_info info[MAX_DEVICES];
  ts_error err = { TS_OK, "" };
  int n = 0, best = -1, best_rank = 100;
  static const char *ranked[] = { "discrete", "integrated", "virtual", "other" };

  static const cli_option no_options[] = { { .name = NULL } };

  switch (cli_parse ("tessera-cli devices", no_options, argc, argv, NULL)) {
  case CLI_PARSED:
    break;
  case CLI_HELP:
    printf ("Usage: tessera-cli devices\n");
    return 0;
  case CLI_BAD:
    return 2;
  }
  /* the CPU backend's bf16 (precision modes, docs/precision.md) */
  printf ("cpu  bf16 %s\n", ts_bf16_support_name (ts_cpu_bf16_support ()));
  if (ts_vulkan_list_devices (info, MAX_DEVICES, &n, &err) != TS_OK) {
    printf ("no Vulkan devices: %s\n", err.message);
    printf ("the default backend is cpu\n");
    return 0;
  }
  if (n > MAX_DEVICES)
    n = MAX_DEVICES;
  for (int i = 0; i < n; i++) {
    for (int r = 0; r < 4; r++)
      if (strcmp (info[i].type, ranked[r]) == 0 && r < best_rank) {
        best_rank = r;
        best = i;
      }
    printf ("vulkan:%d  %s\n", i, info[i].name);
    printf ("    type %s, Vulkan %u.%u.%u, %.1f GiB device-local, subgroup %u\n", info[i].type,
            (info[i].api_version >> 22) & 0x7fu, (info[i].api_version >> 12) & 0x3ffu,
            info[i].api_version & 0xfffu, (double) info[i].device_local_bytes / (1u << 30),
            info[i].subgroup_size);
    printf ("    max storage buffer %u MiB, fp16 %s, int8 %s, 16-bit storage %s\n",
            info[i].max_storage_buffer_range >> 20, info[i].fp16 ? "yes" : "no",
            info[i].int8 ? "yes" : "no", info[i].storage16 ? "yes" : "no");
    printf ("    driver %s (version 0x%08x)\n", info[i].driver[0] ? info[i].driver : "unknown",
            info[i].driver_version);
  }
  if (n == 0)
    printf ("no Vulkan devices\n");
  if (best >= 0)
    printf ("the default backend (auto) uses vulkan:%d\n", best);
  else
    printf ("the default backend (auto) is cpu: no GPU (select a CPU-type device explicitly "
            "with --backend vulkan:N)\n");
  return 0;
}
