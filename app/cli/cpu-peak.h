/* SPDX-License-Identifier: MIT
 *
 * cpu-peak — the CPU's vector features and measured fp32 peak, for `tessera-cli bench`
 * (cpu-peak.c).
 */
#ifndef CPU_PEAK_H
#define CPU_PEAK_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  bool known; /* /proc/cpuinfo had a flags line */
  bool avx2, fma, f16c, avx512f, avx512_bf16, amx_bf16;
} cpu_features;

void cpu_features_read (cpu_features *f);
/* "avx2 fma f16c; no avx512f avx512_bf16 amx_bf16" */
void cpu_features_format (const cpu_features *f, char *buf, size_t size);
/* Runs an FMA loop on n_threads threads at once (about a second) and returns the fp32
 * GFLOP/s they reached together; *how names the instructions. */
double cpu_fp32_peak_gflops (const cpu_features *f, int n_threads, const char **how);
/* vdpbf16ps's rate where the CPU has AVX512_BF16 (measured like the fp32 peak), else 0. */
double cpu_bf16_peak_gflops (const cpu_features *f, int n_threads);

#endif /* CPU_PEAK_H */
