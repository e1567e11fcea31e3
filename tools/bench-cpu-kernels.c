/* SPDX-License-Identifier: MIT
 *
 * bench-cpu-kernels — throughput of a backend's heavy ops at the real models' shapes, for
 * the CPU fast path ("cpu", or any backend named by --backend, e.g. vulkan:0 for lavapipe)
 * and, on the smaller shapes, the CPU reference path ("cpu-ref"): GEMM in GFLOP/s (Meissonic's 1024-px branch has 2 x (77 + 32*32) = 2202
 * tokens, the no-downsample branch 2 x (77 + 64*64) = 8346), attention and the VQ
 * decoder's 3x3 convolutions in milliseconds. A development tool, not a test: numbers depend on the
 * machine and its load, so it prints the median of several runs.
 *
 * Usage: bench-cpu-kernels [--threads N] [--quick] [--backend NAME] [--dtype f16|bf16|f32]
 *                          [--precision fp32|bf16] [--gemm MxKxN]...
 * --gemm replaces the built-in GEMM list by the given shapes (and skips attention and
 * convolution); --dtype picks the weights' dtype (f16 by default, as the checkpoints ship);
 * --precision bf16 times the bf16 matmul (oneDNN, on CPUs with AVX-512) against the bf16
 * peak. On the "cpu" backend of a build with oneDNN, each GEMM is also timed through
 * oneDNN's fp32 matmul, the comparison behind the fp32 path's choice of OpenBLAS.
 */
#include "backend/cpu/ts-cpu.h"
#include "backend/ts-backend.h"
#include "cli-options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return (double) t.tv_sec + 1e-9 * (double) t.tv_nsec;
}

/* CPU seconds of the whole process (every thread): on a loaded machine wall time swings
 * with the neighbours, CPU time much less, so GFLOP per CPU-second compares kernels. */
static double
cpu_now (void)
{
  struct timespec t;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double) t.tv_sec + 1e-9 * (double) t.tv_nsec;
}

static double last_cpu_s; /* median CPU seconds of the last time_matmul */

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static void
die (const char *what, const ts_error *err)
{
  fprintf (stderr, "bench-cpu-kernels: %s: %s\n", what, err->message);
  exit (1);
}

static ts_buffer *
filled_buffer (const ts_backend *be, size_t n, float scale)
{
  ts_error err = { 0 };
  ts_buffer *buf = ts_buffer_new (be, n * sizeof (float), &err);
  float *host = malloc (n * sizeof (float));

  if (!buf || !host)
    die ("buffer", &err);
  for (size_t i = 0; i < n; i++)
    host[i] = scale * (float) ((int) (i * 2654435761u % 2001u) - 1000) / 1000.0f;
  if (ts_buffer_upload (be, ts_ref_at (buf, 0), host, n * sizeof (float), &err) != TS_OK)
    die ("upload", &err);
  free (host);
  return buf;
}

static ts_dtype weight_dtype = TS_DTYPE_F16;

static void
random_weight (const ts_backend *be, ts_weight *w, int n_dims, const int64_t *shape)
{
  ts_error err = { 0 };
  size_t n = 1;
  uint16_t *host;
  float *host32 = NULL;
  const void *data;

  for (int i = 0; i < n_dims; i++)
    n *= (size_t) shape[i];
  host = malloc (n * sizeof *host);
  if (!host)
    die ("weight", &err);
  for (size_t i = 0; i < n; i++) /* f16 values in about [-0.06, 0.06], as the checkpoints ship */
    host[i] = (uint16_t) (0x2000u + (i * 40503u) % 0x0c00u) | (uint16_t) ((i & 1u) << 15);
  data = host;
  if (weight_dtype == TS_DTYPE_F32) {
    host32 = malloc (n * sizeof *host32);
    if (!host32)
      die ("weight", &err);
    for (size_t i = 0; i < n; i++)
      host32[i] = (float) (int) (i % 97u - 48u) * 1e-3f;
    data = host32;
  }
  /* the same bits read as bf16 are values around 1e-19: fine for timing */
  if (ts_weight_upload (be, w, "bench.weight", weight_dtype, data, n_dims, shape,
                        &err)
      != TS_OK)
    die ("weight_upload", &err);
  free (host);
  free (host32);
}

/* Median seconds of `reps` runs of the matmul (after one warm-up). */
static double
time_matmul (const ts_backend *be, int64_t m, int64_t k, int64_t n, int reps)
{
  ts_error err = { 0 };
  int64_t shape[2] = { n, k };
  ts_weight w;
  ts_buffer *x = filled_buffer (be, (size_t) (m * k), 1.0f);
  ts_buffer *y = filled_buffer (be, (size_t) (m * n), 0.0f);
  ts_matmul_args a = { .x = ts_ref_at (x, 0), .ldx = k, .w = &w, .y = ts_ref_at (y, 0),
                       .ldy = n, .m = m, .n = n, .k = k };
  double t[16], c[16], med;

  random_weight (be, &w, 2, shape);
  for (int r = -1; r < reps; r++) {
    double t0 = now (), c0 = cpu_now ();
    if (ts_op_matmul (be, &a, &err) != TS_OK || ts_backend_sync (be, &err) != TS_OK)
      die ("matmul", &err);
    if (r >= 0) {
      t[r] = now () - t0;
      c[r] = cpu_now () - c0;
    }
  }
  qsort (t, (size_t) reps, sizeof t[0], cmp_double);
  qsort (c, (size_t) reps, sizeof c[0], cmp_double);
  med = t[reps / 2];
  last_cpu_s = c[reps / 2];
  ts_weight_free (be, &w);
  ts_buffer_free (be, x);
  ts_buffer_free (be, y);
  return med;
}

/* Median seconds of `reps` runs of the same product through oneDNN's fp32 matmul
 * (ts-cpu-dnnl.c) on `cpu`'s threads; 0 when the build has no oneDNN. */
static double
time_dnnl_f32 (ts_cpu *cpu, int64_t m, int64_t k, int64_t n, int reps)
{
  ts_error err = { 0 };
  float *x = malloc ((size_t) (m * k) * sizeof *x), *w = malloc ((size_t) (n * k) * sizeof *w);
  float *y = calloc ((size_t) (m * n), sizeof *y);
  double t[16];

  if (!x || !w || !y)
    die ("oneDNN buffers", &err);
  for (int64_t i = 0; i < m * k; i++)
    x[i] = (float) (i % 89) * 1e-2f;
  for (int64_t i = 0; i < n * k; i++)
    w[i] = (float) (int) (i % 97u - 48u) * 1e-3f;
  for (int r = -1; r < reps; r++) {
    double t0 = now ();
    if (ts_cpu_dnnl_matmul (cpu, TS_DTYPE_F32, x, k, w, NULL, y, n, m, n, k, false, &err) != TS_OK)
      die ("oneDNN matmul", &err);
    if (r >= 0)
      t[r] = now () - t0;
  }
  qsort (t, (size_t) reps, sizeof t[0], cmp_double);
  free (x);
  free (w);
  free (y);
  return t[reps / 2];
}

static double
time_attention (const ts_backend *be, int64_t batch, int64_t heads, int64_t seq, int64_t d,
                bool causal, int reps)
{
  ts_error err = { 0 };
  int64_t width = heads * d;
  ts_buffer *qkv = filled_buffer (be, (size_t) (batch * seq * 3 * width), 1.0f);
  ts_buffer *out = filled_buffer (be, (size_t) (batch * seq * width), 0.0f);
  ts_attention_args a = {
    .q = ts_ref_at (qkv, 0), .k = ts_ref_f32 (ts_ref_at (qkv, 0), width),
    .v = ts_ref_f32 (ts_ref_at (qkv, 0), 2 * width), .out = ts_ref_at (out, 0),
    .ldq = 3 * width, .ldk = 3 * width, .ldv = 3 * width, .ldo = width,
    .bs_q = seq * 3 * width, .bs_k = seq * 3 * width, .bs_v = seq * 3 * width,
    .bs_o = seq * width, .batch = batch, .heads = heads, .seq_q = seq, .seq_kv = seq,
    .d_head = d, .scale = 0.088388f, .causal = causal,
  };
  double t[16];

  for (int r = -1; r < reps; r++) {
    double t0 = now ();
    if (ts_op_attention (be, &a, &err) != TS_OK || ts_backend_sync (be, &err) != TS_OK)
      die ("attention", &err);
    if (r >= 0)
      t[r] = now () - t0;
  }
  qsort (t, (size_t) reps, sizeof t[0], cmp_double);
  ts_buffer_free (be, qkv);
  ts_buffer_free (be, out);
  return t[reps / 2];
}

static double
time_conv3x3 (const ts_backend *be, int64_t c_in, int64_t c_out, int64_t h, int64_t w_in,
              int reps)
{
  ts_error err = { 0 };
  int64_t shape[4] = { c_out, c_in, 3, 3 };
  ts_weight w;
  ts_buffer *x = filled_buffer (be, (size_t) (c_in * h * w_in), 1.0f);
  ts_buffer *y = filled_buffer (be, (size_t) (c_out * h * w_in), 0.0f);
  ts_conv2d_args a = {
    .x = ts_ref_at (x, 0), .y = ts_ref_at (y, 0), .w = &w, .batch = 1, .c_in = c_in, .h = h,
    .w_in = w_in, .c_out = c_out, .h_out = h, .w_out = w_in, .kh = 3, .kw = 3, .stride = 1,
    .pad_top = 1, .pad_left = 1, .pad_bottom = 1, .pad_right = 1,
  };
  double t[16];

  random_weight (be, &w, 4, shape);
  for (int r = -1; r < reps; r++) {
    double t0 = now ();
    if (ts_op_conv2d (be, &a, &err) != TS_OK || ts_backend_sync (be, &err) != TS_OK)
      die ("conv2d", &err);
    if (r >= 0)
      t[r] = now () - t0;
  }
  qsort (t, (size_t) reps, sizeof t[0], cmp_double);
  ts_weight_free (be, &w);
  ts_buffer_free (be, x);
  ts_buffer_free (be, y);
  return t[reps / 2];
}

typedef struct {
  int64_t m, k, n;
  const char *what;
  bool ref; /* small enough for the scalar reference */
} gemm_shape;

typedef struct {
  gemm_shape shapes[16];
  size_t n;
} gemm_list;

/* --gemm MxKxN, repeatable: appends to a gemm_list. */
static bool
parse_gemm (const char *value, void *dest)
{
  gemm_list *list = dest;
  uint32_t mkn[3];

  if (list->n >= sizeof list->shapes / sizeof list->shapes[0]
      || !cli_parse_uint32_list (value, 'x', mkn, 3) || !mkn[0] || !mkn[1] || !mkn[2])
    return false;
  list->shapes[list->n++] = (gemm_shape) { mkn[0], mkn[1], mkn[2], value, false };
  return true;
}

int
main (int argc, char **argv)
{
  static const gemm_shape builtin[] = {
    { 8346, 1024, 4096, "no-downsample FF up (2 x 4173 tokens)", false },
    { 2202, 1024, 4096, "FF up (2 x 1101 tokens)", false },
    { 2202, 4096, 1024, "FF down", false },
    { 2202, 1024, 1024, "attention projection", false },
    { 154, 1024, 1024, "text stream (2 x 77 tokens)", true },
    { 2, 1024, 6144, "AdaLN modulation (batch 2)", true },
  };
  static const char *const dtype_names[] = { "f16", "bf16", "f32", NULL };
  static const ts_dtype dtypes[] = { TS_DTYPE_F16, TS_DTYPE_BF16, TS_DTYPE_F32 };
  gemm_list custom = { .n = 0 };
  const gemm_shape *gemms = builtin;
  size_t n_gemms = sizeof builtin / sizeof builtin[0], n_custom;
  static const char *const precision_names[] = { "fp32", "bf16", NULL };
  int n_threads = 0, reps = 5, dtype_index = 0, precision_index = 0;
  ts_cpu *dnnl_cpu = NULL;
  bool quick = false;
  const char *backend = "cpu";
  ts_backend fast, ref;
  ts_error err = { 0 };
  const cli_option opts[] = {
    { "--threads", CLI_INT, &n_threads, "N", .help = "threads (default 0: every core)",
      .min = 0, .max = 4096 },
    { "--quick", CLI_FLAG, &quick, NULL,
      .help = "3 runs instead of 5, and no GEMM over 2202 rows" },
    { "--backend", CLI_STRING, &backend, "NAME", .help = "the backend (default cpu)" },
    { "--dtype", CLI_CHOICE, &dtype_index, "T", .help = "the weights: f16 (default), bf16, f32",
      .choices = dtype_names },
    { "--precision", CLI_CHOICE, &precision_index, "P",
      .help = "fp32 (default) or bf16 (AVX-512 only: oneDNN)", .choices = precision_names },
    { "--gemm", CLI_CALLBACK, &custom, "MxKxN",
      .help = "time this GEMM instead of the built-in list (up to 16 times)",
      .parse = parse_gemm, .wants = "MxKxN with sizes from 1 (at most 16 of them)" },
    { .name = NULL },
  };

  switch (cli_parse ("bench-cpu-kernels", opts, argc, argv, NULL)) {
  case CLI_PARSED:
    break;
  case CLI_HELP:
    printf ("Usage: bench-cpu-kernels [--threads N] [--quick] [--backend NAME] "
            "[--dtype f16|bf16|f32] [--precision fp32|bf16] [--gemm MxKxN]...\n\n");
    cli_print_options (stdout, opts);
    return 0;
  case CLI_BAD:
    return 2;
  }
  weight_dtype = dtypes[dtype_index];
  n_custom = custom.n;
  if (n_custom > 0) {
    gemms = custom.shapes;
    n_gemms = n_custom;
  }
  if (quick)
    reps = 3;
  if (ts_backend_new_by_name (&fast, backend, n_threads, &err) != TS_OK)
    die (backend, &err);
  if (ts_backend_set_precision (&fast, precision_index ? TS_PRECISION_BF16 : TS_PRECISION_FP32,
                                NULL, &err) != TS_OK)
    die (backend, &err);
  if (ts_backend_cpu_new (&ref, true, 1, &err) != TS_OK)
    die ("cpu-ref backend", &err);
  if (precision_index
      && ts_backend_set_precision (&ref, TS_PRECISION_BF16, NULL, &err) != TS_OK)
    die ("cpu-ref backend", &err);
  /* oneDNN's fp32 matmul beside the fast path's OpenBLAS, on the same threads */
  if (strcmp (ts_backend_name (&fast), "cpu") == 0 && ts_cpu_dnnl_version ()) {
    dnnl_cpu = fast.impl;
    if (!dnnl_cpu->dnnl && !(dnnl_cpu->dnnl = ts_cpu_dnnl_new (dnnl_cpu->n_threads, &err)))
      die ("oneDNN", &err);
  }
  if (n_threads > 0)
    printf ("backend %s, %d threads, %s weights\n", ts_backend_name (&fast), n_threads,
            ts_dtype_name (weight_dtype));
  else
    printf ("backend %s, one thread per online core, %s weights\n", ts_backend_name (&fast),
            ts_dtype_name (weight_dtype));

  printf ("precision %s; %s\n", precision_names[precision_index],
          dnnl_cpu ? ts_cpu_dnnl_version () : "no oneDNN column");
  printf ("%-40s %6s %6s %6s %12s %12s %12s %12s\n", "y = x w^T", "M", "K", "N", "GFLOP/s",
          "GFLOP/cpu-s", "ref GFLOP/s", "oneDNN f32");
  for (size_t i = 0; i < n_gemms; i++) {
    double flops = 2.0 * (double) gemms[i].m * (double) gemms[i].k * (double) gemms[i].n;
    double tf, tr = 0.0;
    if (quick && gemms[i].m > 2202 && n_custom == 0)
      continue;
    double cf;
    tf = time_matmul (&fast, gemms[i].m, gemms[i].k, gemms[i].n, reps);
    cf = last_cpu_s;
    if (gemms[i].ref)
      tr = time_matmul (&ref, gemms[i].m, gemms[i].k, gemms[i].n, 1);
    printf ("%-40s %6lld %6lld %6lld %12.1f %12.1f", gemms[i].what, (long long) gemms[i].m,
            (long long) gemms[i].k, (long long) gemms[i].n, flops / tf * 1e-9,
            flops / cf * 1e-9);
    if (gemms[i].ref)
      printf (" %12.2f", flops / tr * 1e-9);
    else
      printf (" %12s", "-");
    if (dnnl_cpu)
      printf (" %12.1f\n",
              flops / time_dnnl_f32 (dnnl_cpu, gemms[i].m, gemms[i].k, gemms[i].n, reps) * 1e-9);
    else
      printf (" %12s\n", "-");
    fflush (stdout);
  }

  if (n_custom == 0) {
    double t = time_attention (&fast, 2, 8, 1101, 128, false, reps);
    double flops = 2.0 * 8 * 2.0 * 2.0 * 1101.0 * 1101.0 * 128.0;
    printf ("attention 2 x 8 heads x 1101 x 128: %.1f ms (%.1f GFLOP/s)\n", t * 1e3,
            flops / t * 1e-9);
    t = time_attention (&fast, 2, 16, 77, 64, true, reps);
    printf ("attention CLIP-like causal 2 x 16 x 77 x 64: %.2f ms\n", t * 1e3);
    /* The VQ decoder's 3x3 convolutions at 1024x1024 (block_out_channels 128, 256, 256,
     * 512, 768 from the full resolution down to 64x64), the larger ones at the size of a
     * row band rather than the whole image. GFLOP/s count the direct convolution's work. */
    static const int64_t convs[][3] = { { 768, 64, 64 },   { 512, 128, 128 }, { 256, 256, 128 },
                                        { 256, 128, 256 }, { 128, 256, 256 } };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
      int64_t c = convs[i][0], h = convs[i][1], w_in = convs[i][2];
      t = time_conv3x3 (&fast, c, c, h, w_in, reps);
      printf ("conv3x3 %lld -> %lld at %lldx%lld: %.1f ms (%.1f GFLOP/s)\n", (long long) c,
              (long long) c, (long long) w_in, (long long) h, t * 1e3,
              2.0 * (double) (c * c * 9 * h * w_in) / t * 1e-9);
    }
  }
  ts_backend_free (&fast);
  ts_backend_free (&ref);
  return 0;
}
