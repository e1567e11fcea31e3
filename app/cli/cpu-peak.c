/* SPDX-License-Identifier: MIT
 *
 * cpu-peak — what `tessera-cli bench` compares the CPU backend's GFLOP/s with: the CPU's
 * vector features (from /proc/cpuinfo's flags) and its measured fp32 FMA peak, a loop of
 * independent fused multiply-adds on every thread at once (12 accumulators, more than
 * latency x pipes on current x86 cores), in the widest form the CPU runs: AVX-512, AVX2 +
 * FMA, or plain SSE multiply and add.
 */
#include "cpu-peak.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define HAVE_X86 1
#endif

void
cpu_features_read (cpu_features *f)
{
  FILE *file = fopen ("/proc/cpuinfo", "r");
  char line[8192];

  memset (f, 0, sizeof *f);
  if (!file)
    return;
  while (fgets (line, sizeof line, file)) {
    if (strncmp (line, "flags", 5) != 0)
      continue;
    /* whole words: " avx512f" must not match " avx512fp16" */
    line[strcspn (line, "\n")] = ' ';
#define HAS(word) (strstr (line, " " word " ") != NULL)
    f->avx2 = HAS ("avx2");
    f->fma = HAS ("fma");
    f->f16c = HAS ("f16c");
    f->avx512f = HAS ("avx512f");
    f->avx512_bf16 = HAS ("avx512_bf16");
    f->amx_bf16 = HAS ("amx_bf16");
#undef HAS
    f->known = true;
    break;
  }
  fclose (file);
}

void
cpu_features_format (const cpu_features *f, char *buf, size_t size)
{
  static const char *const names[] = { "avx2", "fma", "f16c", "avx512f", "avx512_bf16",
                                       "amx_bf16" };
  bool has[] = { f->avx2, f->fma, f->f16c, f->avx512f, f->avx512_bf16, f->amx_bf16 };
  size_t used = 0;

  if (!f->known) {
    snprintf (buf, size, "unknown (no flags in /proc/cpuinfo)");
    return;
  }
  buf[0] = '\0';
  for (int pass = 0; pass < 2; pass++) {
    bool first = true;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
      if (has[i] != (pass == 0))
        continue;
      used += (size_t) snprintf (buf + used, used < size ? size - used : 0, "%s%s%s",
                                 first && pass == 1 ? (used ? "; no " : "no ") : "",
                                 first ? "" : " ", names[i]);
      first = false;
    }
  }
}

#define ITERS 60000000L /* about 0.1-0.2 s at 3 GHz */

/* Twelve named accumulators, so that they live in registers (an array with an inner loop
 * stayed in memory at -O2). */
#define FMA12(fma, a, b, c)                                                                 \
  do {                                                                                      \
    a##0 = fma (a##0, b, c); a##1 = fma (a##1, b, c); a##2 = fma (a##2, b, c);              \
    a##3 = fma (a##3, b, c); a##4 = fma (a##4, b, c); a##5 = fma (a##5, b, c);              \
    a##6 = fma (a##6, b, c); a##7 = fma (a##7, b, c); a##8 = fma (a##8, b, c);              \
    a##9 = fma (a##9, b, c); a##10 = fma (a##10, b, c); a##11 = fma (a##11, b, c);          \
  } while (0)

#ifdef HAVE_X86
__attribute__ ((target ("avx512f"))) static float
fma_loop_avx512 (float seed)
{
  __m512 b = _mm512_set1_ps (0.999999f), c = _mm512_set1_ps (1e-7f);
  /* distinct starting values, or the compiler folds the twelve chains into one */
  __m512 a0 = _mm512_set1_ps (seed), a1 = _mm512_set1_ps (seed + 1), a2 = _mm512_set1_ps (seed + 2);
  __m512 a3 = _mm512_set1_ps (seed + 3), a4 = _mm512_set1_ps (seed + 4), a5 = _mm512_set1_ps (seed + 5);
  __m512 a6 = _mm512_set1_ps (seed + 6), a7 = _mm512_set1_ps (seed + 7), a8 = _mm512_set1_ps (seed + 8);
  __m512 a9 = _mm512_set1_ps (seed + 9), a10 = _mm512_set1_ps (seed + 10);
  __m512 a11 = _mm512_set1_ps (seed + 11);
  float out[16];

  for (long n = 0; n < ITERS; n++)
    FMA12 (_mm512_fmadd_ps, a, b, c);
  a0 = _mm512_add_ps (_mm512_add_ps (_mm512_add_ps (a0, a1), _mm512_add_ps (a2, a3)),
                      _mm512_add_ps (_mm512_add_ps (a4, a5), _mm512_add_ps (a6, a7)));
  a0 = _mm512_add_ps (a0, _mm512_add_ps (_mm512_add_ps (a8, a9), _mm512_add_ps (a10, a11)));
  _mm512_storeu_ps (out, a0);
  return out[0];
}

/* vdpbf16ps: each lane adds two bf16 products, 4 flops per lane per instruction. */
__attribute__ ((target ("avx512f,avx512bf16"))) static float
dpbf16_loop_avx512 (float seed)
{
  __m512bh b = (__m512bh) _mm512_set1_epi16 (0x3f80), c = (__m512bh) _mm512_set1_epi16 (0x3380);
  __m512 a0 = _mm512_set1_ps (seed), a1 = _mm512_set1_ps (seed + 1), a2 = _mm512_set1_ps (seed + 2);
  __m512 a3 = _mm512_set1_ps (seed + 3), a4 = _mm512_set1_ps (seed + 4), a5 = _mm512_set1_ps (seed + 5);
  __m512 a6 = _mm512_set1_ps (seed + 6), a7 = _mm512_set1_ps (seed + 7), a8 = _mm512_set1_ps (seed + 8);
  __m512 a9 = _mm512_set1_ps (seed + 9), a10 = _mm512_set1_ps (seed + 10);
  __m512 a11 = _mm512_set1_ps (seed + 11);
  float out[16];

  for (long n = 0; n < ITERS; n++)
    FMA12 (_mm512_dpbf16_ps, a, b, c);
  a0 = _mm512_add_ps (_mm512_add_ps (_mm512_add_ps (a0, a1), _mm512_add_ps (a2, a3)),
                      _mm512_add_ps (_mm512_add_ps (a4, a5), _mm512_add_ps (a6, a7)));
  a0 = _mm512_add_ps (a0, _mm512_add_ps (_mm512_add_ps (a8, a9), _mm512_add_ps (a10, a11)));
  _mm512_storeu_ps (out, a0);
  return out[0];
}

__attribute__ ((target ("avx2,fma"))) static float
fma_loop_avx2 (float seed)
{
  __m256 b = _mm256_set1_ps (0.999999f), c = _mm256_set1_ps (1e-7f);
  /* distinct starting values, or the compiler folds the twelve chains into one */
  __m256 a0 = _mm256_set1_ps (seed), a1 = _mm256_set1_ps (seed + 1), a2 = _mm256_set1_ps (seed + 2);
  __m256 a3 = _mm256_set1_ps (seed + 3), a4 = _mm256_set1_ps (seed + 4), a5 = _mm256_set1_ps (seed + 5);
  __m256 a6 = _mm256_set1_ps (seed + 6), a7 = _mm256_set1_ps (seed + 7), a8 = _mm256_set1_ps (seed + 8);
  __m256 a9 = _mm256_set1_ps (seed + 9), a10 = _mm256_set1_ps (seed + 10);
  __m256 a11 = _mm256_set1_ps (seed + 11);
  float out[8];

  for (long n = 0; n < ITERS; n++)
    FMA12 (_mm256_fmadd_ps, a, b, c);
  a0 = _mm256_add_ps (_mm256_add_ps (_mm256_add_ps (a0, a1), _mm256_add_ps (a2, a3)),
                      _mm256_add_ps (_mm256_add_ps (a4, a5), _mm256_add_ps (a6, a7)));
  a0 = _mm256_add_ps (a0, _mm256_add_ps (_mm256_add_ps (a8, a9), _mm256_add_ps (a10, a11)));
  _mm256_storeu_ps (out, a0);
  return out[0];
}
#endif

/* Without FMA: a multiply and an add per lane (4 lanes of SSE), which is what a compiler
 * makes of a*b + c here. */
static float
mul_add_loop (float seed)
{
  float a[12][4], s = 0.0f;

  for (int i = 0; i < 12; i++)
    for (int l = 0; l < 4; l++)
      a[i][l] = seed + (float) (i + l);
  for (long n = 0; n < ITERS; n++)
    for (int i = 0; i < 12; i++)
      for (int l = 0; l < 4; l++)
        a[i][l] = a[i][l] * 0.999999f + 1e-7f;
  for (int i = 0; i < 12; i++)
    for (int l = 0; l < 4; l++)
      s += a[i][l];
  return s;
}

typedef struct {
  int kind; /* 3: AVX512_BF16 dot products, 2: AVX-512, 1: AVX2 + FMA, 0: plain */
  float sink;
} peak_thread;

static void *
peak_run (void *data)
{
  peak_thread *t = data;
#ifdef HAVE_X86
  if (t->kind == 3)
    t->sink = dpbf16_loop_avx512 (t->sink);
  else if (t->kind == 2)
    t->sink = fma_loop_avx512 (t->sink);
  else if (t->kind == 1)
    t->sink = fma_loop_avx2 (t->sink);
  else
#endif
    t->sink = mul_add_loop (t->sink);
  return NULL;
}

/* ITERS x 12 instructions of `kind` on each of n_threads threads, in GFLOP/s. */
static double
peak_measure (int kind, int n_threads, double flop_per_instruction)
{
  pthread_t tid[256];
  peak_thread th[256];
  struct timespec t0, t1;
  int started = 0;
  double seconds;

  if (n_threads < 1)
    n_threads = 1;
  if (n_threads > 256)
    n_threads = 256;
  clock_gettime (CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < n_threads; i++) {
    th[i].kind = kind;
    th[i].sink = (float) i;
    if (pthread_create (&tid[i], NULL, peak_run, &th[i]) != 0)
      break;
    started++;
  }
  for (int i = 0; i < started; i++)
    pthread_join (tid[i], NULL);
  clock_gettime (CLOCK_MONOTONIC, &t1);
  seconds = (double) (t1.tv_sec - t0.tv_sec) + 1e-9 * (double) (t1.tv_nsec - t0.tv_nsec);
  if (started == 0 || seconds <= 0)
    return 0;
  return (double) started * ITERS * 12.0 * flop_per_instruction / seconds / 1e9;
}

double
cpu_fp32_peak_gflops (const cpu_features *f, int n_threads, const char **how)
{
  int kind = f->avx512f ? 2 : f->avx2 && f->fma ? 1 : 0;
  double lanes = kind == 2 ? 16 : kind == 1 ? 8 : 4, flop_per_lane = 2; /* mul + add */

#ifndef HAVE_X86
  kind = 0;
  lanes = 4;
#endif
  *how = kind == 2 ? "AVX-512 FMA" : kind == 1 ? "AVX2 FMA" : "SSE multiply + add";
  return peak_measure (kind, n_threads, lanes * flop_per_lane);
}

double
cpu_bf16_peak_gflops (const cpu_features *f, int n_threads)
{
#ifdef HAVE_X86
  if (f->avx512f && f->avx512_bf16)
    return peak_measure (3, n_threads, 16 * 4); /* 16 lanes, two products and two adds */
#endif
  (void) f, (void) n_threads;
  return 0;
}
