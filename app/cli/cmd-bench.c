/* SPDX-License-Identifier: MIT
 *
 * cmd-bench — `tessera-cli bench`: loads a model folder (real, or random weights from
 * `make-random-model`), runs one generation through the public pipeline API and prints
 * what it cost: per-stage wall times from ts_model_get_stats, the transformer's GFLOP/s,
 * the estimated time of a full-length generation, and memory (RSS after loading, which
 * is the weights in memory, and the peak during the generation). A full 48-step run at
 * 1024x1024 on a few CPU cores takes far too long, so it runs a few steps (default 2)
 * and extrapolates. One more step runs first, untimed: the first forward carries one-time
 * costs (fresh buffers' page faults, scratch growth) that the mean would otherwise hold.
 * On the CPU backends it also prints the CPU's vector features and its fp32 peak,
 * measured, against which the transformer's GFLOP/s are given.
 */
#include "tessera.h"
#include "tessera-cli-commands.h"
#include "cli-options.h"
#include "cpu-peak.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Meissonic's transformer at 1024x1024 (64x64 token grid, downsampled to 32x32): about
 * 1.48 TFLOP per sample per step, by the count; CFG runs batch 2. */
#define REFERENCE_TFLOP_1024 1.48

static void
usage (FILE *out, const cli_option *opts)
{
  fputs ("Usage: tessera-cli bench --model DIR [--size WxH] [--steps N] [--backend NAME]\n"
         "                         [--threads N] [--precision auto|fp32|bf16] [--fp16]\n"
         "                         [--guidance G] [--seed S] [--prompt TEXT]\n"
         "\n"
         "Loads the model, runs one text-to-image generation and prints per-stage times (load,\n"
         "tokenize, text encoder, transformer step, sampler step, VQ decode), the transformer's\n"
         "GFLOP/s, an estimate for a full-length generation and peak memory; with --throughput\n"
         "also images per minute one at a time and in a batch of 4. The first step is an\n"
         "untimed warm-up. On the CPU it prints the CPU's vector features, the precision in\n"
         "use, its measured fp32 peak (and the bf16 peak where the CPU has native bf16), and\n"
         "the transformer's share of those peaks.\n"
         "\n",
         out);
  cli_print_options (out, opts);
}

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

/* A "VmRSS:"-style line of /proc/self/status in bytes, or -1. */
static double
proc_status_bytes (const char *key)
{
  FILE *f = fopen ("/proc/self/status", "r");
  char line[256];
  size_t len = strlen (key);
  double v = -1;

  if (!f)
    return -1;
  while (fgets (line, sizeof line, f))
    if (strncmp (line, key, len) == 0 && line[len] == ':') {
      v = 1024.0 * strtod (line + len + 1, NULL); /* "  123456 kB" */
      break;
    }
  fclose (f);
  return v;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0: "5" to clear_refs), so the next reading
 * is the peak of what follows. */
static bool
reset_peak_rss (void)
{
  FILE *f = fopen ("/proc/self/clear_refs", "w");
  bool ok;

  if (!f)
    return false;
  ok = fputs ("5", f) >= 0;
  ok = fclose (f) == 0 && ok;
  return ok;
}

static double
max_rss_bytes (void)
{
  struct rusage ru;
  if (getrusage (RUSAGE_SELF, &ru) != 0)
    return -1;
  return 1024.0 * (double) ru.ru_maxrss; /* kilobytes on Linux */
}

static void
cpu_model_name (char *buf, size_t size)
{
  FILE *f = fopen ("/proc/cpuinfo", "r");
  char line[512];

  snprintf (buf, size, "unknown CPU");
  if (!f)
    return;
  while (fgets (line, sizeof line, f)) {
    char *colon = strchr (line, ':');
    if (strncmp (line, "model name", 10) == 0 && colon) {
      colon += 1 + (colon[1] == ' ');
      colon[strcspn (colon, "\n")] = '\0';
      snprintf (buf, size, "%s", colon);
      break;
    }
  }
  fclose (f);
}

static double
file_size (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISREG (st.st_mode) ? (double) st.st_size : -1;
}

/* Bytes of the weight files the loader picks (the .fp16 variant with --fp16 when present).
 * Sharded checkpoints are not summed: -1 when a component's single file is absent. */
static double
weights_on_disk (const char *dir, bool fp16)
{
  static const char *const files[][2] = {
    { "transformer", "diffusion_pytorch_model" },
    { "vqvae", "diffusion_pytorch_model" },
    { "text_encoder", "model" },
  };
  double total = 0;

  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char path[4096];
    double s = -1;
    if (fp16) {
      snprintf (path, sizeof path, "%s/%s/%s.fp16.safetensors", dir, files[i][0], files[i][1]);
      s = file_size (path);
    }
    if (s < 0) {
      snprintf (path, sizeof path, "%s/%s/%s.safetensors", dir, files[i][0], files[i][1]);
      s = file_size (path);
    }
    if (s < 0)
      return -1;
    total += s;
  }
  return total;
}

static void
on_load_progress (void *user_data, double fraction, const char *what)
{
  (void) user_data;
  fprintf (stderr, "\rloading %5.1f%% %-40s", 100 * fraction, what ? what : "");
  fflush (stderr);
}

/* Random weights only have to be numerically sane: a NaN or an overflow anywhere in the
 * transformer reaches the sampler's confidences, so they are counted every step. */
static void
on_step (void *user_data, const ts_step_info *info)
{
  long *n_non_finite = user_data;
  long n = 0;

  for (int i = 0; i < info->grid_h * info->grid_w; i++)
    n += !isfinite (info->confidence[i]);
  *n_non_finite += n;
  fprintf (stderr, "step %d/%d: %.2f s, %d tokens still masked%s\n", info->step + 1,
           info->n_steps, info->seconds, info->n_masked,
           n ? ", NaN/Inf confidences" : "");
}

static void
print_bytes (const char *label, double bytes, const char *note)
{
  if (bytes < 0)
    printf ("  %-34s %10s%s%s\n", label, "n/a", note[0] ? "  " : "", note);
  else
    printf ("  %-34s %7.3f GB%s%s\n", label, bytes / 1e9, note[0] ? "  " : "", note);
}

int
tessera_cli_bench (int argc, char **argv)
{
  const char *dir = NULL, *backend = "cpu",
             *prompt = "a photo of a red fox in the snow";
  static const char *const precisions[] = { "auto", "fp32", "bf16", NULL };
  int threads = 0, steps = 2, precision = TS_PRECISION_AUTO;
  uint32_t size[2] = { 0, 0 }, width, height;
  double guidance = 9;
  uint64_t seed = 0;
  bool fp16 = false, peak_reset, throughput = false;
  ts_model_load_params lp;
  ts_generate_params gp;
  ts_model_stats stats;
  ts_result result = { 0 };
  ts_model *model = NULL;
  ts_error err;
  ts_status st;
  char cpu[256], feature_text[160];
  cpu_features features;
  double peak = 0, peak_bf16 = 0;
  ts_bf16_support bf16;
  double rss_before, rss_loaded, t_load, t_gen, peak_gen, tf_step, sampler_step, estimate, on_disk;
  long n_non_finite = 0;
  int full_steps, rc = 1;
  const cli_option opts[] = {
    { "--model", CLI_STRING, &dir, "DIR",
      .help = "a model folder (e.g. from tessera-cli make-random-model)" },
    { "--size", CLI_SIZE, size, "WxH",
      .help = "image size (default: the model's, 1024x1024 for Meissonic)" },
    { "--steps", CLI_INT, &steps, "N",
      .help = "timed sampling steps (default 2), after one untimed warm-up\n"
              "step; the estimate scales to the official step count",
      .min = 1, .max = 1000 },
    { "--backend", CLI_STRING, &backend, "B",
      .help = "cpu (default), cpu-ref, vulkan or vulkan:N (tessera-cli devices\n"
              "lists N; TESSERA_VK_PROFILE=1 prints per-kernel GFLOP/s), or\n"
              "check:cpu, check:vulkan, check:vulkan:N (every op also checked\n"
              "against cpu-ref: the times then include the checking)" },
    { "--threads", CLI_INT, &threads, "N",
      .help = "worker threads (default 0: every core)", .min = 0, .max = 4096 },
    { "--precision", CLI_CHOICE, &precision, "auto|fp32|bf16", .choices = precisions,
      .help = "the linear layers' arithmetic (default auto: bf16 where the\n"
              "CPU has native bf16 dot products, else fp32; docs/precision.md)" },
    { "--fp16", CLI_FLAG, &fp16, NULL,
      .help = "load *.fp16.safetensors variants when present" },
    { "--guidance", CLI_DOUBLE, &guidance, "G",
      .help = "classifier-free guidance (default 9: batch 2; <= 1: batch 1)" },
    { "--seed", CLI_UINT64, &seed, "S", .help = "sampling seed (default 0)" },
    { "--prompt", CLI_STRING, &prompt, "TEXT",
      .help = "the prompt (default \"a photo of a red fox in the snow\")" },
    { "--throughput", CLI_FLAG, &throughput, NULL,
      .help = "also time whole images (at --steps steps) one at a time and\n"
              "as a batch of 4 (ts_model_generate_batch), in images per minute" },
    { .name = NULL },
  };

  switch (cli_parse ("tessera-cli bench", opts, argc, argv, NULL)) {
  case CLI_PARSED:
    break;
  case CLI_HELP:
    usage (stdout, opts);
    return 0;
  case CLI_BAD:
    return 2;
  }
  if (!dir) {
    fprintf (stderr, "tessera-cli bench: --model is required\n");
    usage (stderr, opts);
    return 2;
  }
  width = size[0];
  height = size[1];

  /* ---- load ---- */
  ts_model_load_params_init (&lp);
  tessera_cli_show_check_log (backend);
  lp.backend = backend;
  lp.n_threads = threads;
  lp.precision = (ts_precision) precision;
  lp.prefer_fp16 = fp16;
  lp.progress = isatty (fileno (stderr)) ? on_load_progress : NULL;
  rss_before = proc_status_bytes ("VmRSS");
  t_load = now_s ();
  model = ts_model_load (dir, &lp, &err);
  t_load = now_s () - t_load;
  if (lp.progress)
    fputc ('\n', stderr);
  if (!model) {
    fprintf (stderr, "tessera-cli: %s\n", err.message);
    goto fail;
  }
  rss_loaded = proc_status_bytes ("VmRSS");

  /* ---- generate ---- */
  ts_generate_params_init (&gp);
  full_steps = gp.steps;
  gp.prompt = prompt;
  gp.width = width;
  gp.height = height;
  gp.steps = steps + 1; /* the first is the untimed warm-up */
  gp.guidance = guidance;
  gp.seed = seed;
  gp.on_step = on_step;
  gp.step_data = &n_non_finite;
  if (!gp.width || !gp.height)
    ts_model_default_size (model, &gp.width, &gp.height);
  if (ts_model_check_size (model, gp.width, gp.height, &err) != TS_OK) {
    fprintf (stderr, "tessera-cli: %s\n", err.message);
    goto fail;
  }
  cpu_model_name (cpu, sizeof cpu);
  printf ("tessera-cli bench %s\n", TS_VERSION_STRING);
  printf ("  model      %s (%s)\n", dir, ts_model_name (model));
  printf ("  device     %s, %ld CPUs online\n", cpu, sysconf (_SC_NPROCESSORS_ONLN));
  printf ("  backend    %s, threads %d%s\n", ts_model_backend_name (model), threads,
          threads == 0 ? " (every core)" : "");
  if (strncmp (backend, "check:", 6) == 0)
    printf ("             every op also runs on cpu-ref and is compared: the times below\n"
            "             include the checking and do not measure the device\n");
  printf ("  size       %ux%u, steps %d + 1 untimed warm-up, guidance %g (batch %d)%s\n",
          gp.width, gp.height, steps, guidance, guidance > 1 ? 2 : 1,
          fp16 ? ", fp16 variants preferred" : "");
  cpu_features_read (&features);
  cpu_features_format (&features, feature_text, sizeof feature_text);
  printf ("  cpu        %s\n", feature_text);
  bf16 = ts_cpu_bf16_support ();
  printf ("  precision  %s (asked: %s; oneDNN bf16 on this CPU: %s)\n",
          ts_precision_name (ts_model_precision (model)), precisions[precision],
          bf16 == TS_BF16_NATIVE     ? "native"
          : bf16 == TS_BF16_EMULATED ? "emulated on AVX-512, about the fp32 rate"
                                     : "none, it needs AVX-512");
  if (strncmp (ts_model_backend_name (model), "cpu", 3) == 0) {
    long online = sysconf (_SC_NPROCESSORS_ONLN);
    int n = threads > 0 ? threads : online > 0 ? (int) online : 1;
    const char *how;
    peak = cpu_fp32_peak_gflops (&features, n, &how);
    printf ("  fp32 peak  %.1f GFLOP/s on %d thread%s (%s loop, measured now)\n", peak, n,
            n == 1 ? "" : "s", how);
    /* AVX512_BF16's vdpbf16ps: two products per fp32 lane, measured like the FMA loop;
     * AMX without AVX512_BF16 (no loop for it here) is taken at twice the fp32 rate. */
    if (bf16 == TS_BF16_NATIVE && (peak_bf16 = cpu_bf16_peak_gflops (&features, n)) > 0) {
      printf ("  bf16 peak  %.1f GFLOP/s on %d thread%s (AVX512_BF16 vdpbf16ps loop, measured "
              "now)\n", peak_bf16, n, n == 1 ? "" : "s");
    } else if (bf16 == TS_BF16_NATIVE) {
      peak_bf16 = 2.0 * peak;
      printf ("  bf16 peak  %.1f GFLOP/s (2 x fp32, not measured: no AVX512_BF16 loop for "
              "this CPU)\n", peak_bf16);
    } else {
      printf ("  bf16 peak  n/a (no native bf16 dot products)\n");
    }
  }
  fflush (stdout);

  peak_reset = reset_peak_rss ();
  t_gen = now_s ();
  st = ts_model_generate (model, &gp, &result, &err);
  t_gen = now_s () - t_gen;
  peak_gen = proc_status_bytes ("VmHWM");
  if (st != TS_OK) {
    fprintf (stderr, "tessera-cli: %s\n", err.message);
    goto fail;
  }
  ts_model_get_stats (model, &stats);

  /* Every forward but the warm-up's; with several images per forward chunk (the batch
   * mode) every chunk has a first forward, but only the call's first is left out. */
  tf_step = stats.n_transformer_calls > 1
              ? (stats.transformer_s - stats.transformer_first_s) / (stats.n_transformer_calls - 1)
              : stats.transformer_s;
  sampler_step = stats.sampler_s / (double) (steps + 1);
  estimate = stats.tokenize_s + stats.text_encoder_s
             + full_steps * (tf_step + sampler_step) + stats.vq_decode_s;

  printf ("\n  %-34s %10s\n", "stage", "seconds");
  printf ("  %-34s %10.3f\n", "load", t_load);
  printf ("  %-34s %10.3f\n", "tokenize", stats.tokenize_s);
  printf ("  %-34s %10.3f\n", "text encoder", stats.text_encoder_s);
  printf ("  %-34s %10.3f  (mean of %d, batch %d)\n", "transformer step", tf_step,
          stats.n_transformer_calls - 1, stats.transformer_batch);
  printf ("  %-34s %10.3f  (the first forward, not in the mean)\n", "warm-up step",
          stats.transformer_first_s);
  printf ("  %-34s %10.3f  (mean of %d)\n", "sampler step (CFG + scheduler)", sampler_step,
          steps + 1);
  printf ("  %-34s %10.3f\n", "VQ decode", stats.vq_decode_s);
  printf ("  %-34s %10.3f  (%dx%d tokens)\n", "generate, whole call", t_gen, result.grid_w,
          result.grid_h);
  printf ("  %-34s %10.3f  (%.1f min: tokenize + text encoder + %d x (transformer step\n"
          "  %-34s %10s   + sampler step) + VQ decode)\n",
          "estimate for a full image", estimate, estimate / 60, full_steps, "", "");

  printf ("  %-34s %10s  %s\n", "numerics", n_non_finite ? "NOT FINITE" : "finite",
          n_non_finite ? "(NaN/Inf reached the sampler's confidences)"
                       : "(every sampler confidence of every step)");
  printf ("\n  transformer step\n");
  if (stats.transformer_flop > 0 && tf_step > 0)
  {
    printf ("  %-34s %10.1f  GFLOP per step, batch %d (engine count): %.1f GFLOP/s\n", "work",
            stats.transformer_flop / 1e9, stats.transformer_batch,
            stats.transformer_flop / tf_step / 1e9);
    if (peak > 0)
      printf ("  %-34s %10.1f  %% of the measured fp32 peak\n", "against the peak",
              100.0 * stats.transformer_flop / tf_step / 1e9 / peak);
    if (peak_bf16 > 0)
      printf ("  %-34s %10.1f  %% of the bf16 peak (linear layers %s)\n", "",
              100.0 * stats.transformer_flop / tf_step / 1e9 / peak_bf16,
              ts_precision_name (ts_model_precision (model)));
  }
  else
    printf ("  %-34s %10s  (the engine reported no FLOP count)\n", "work", "n/a");
  if (gp.width == 1024 && gp.height == 1024 && tf_step > 0)
    printf ("  %-34s %10.1f  GFLOP per step (%.2f TFLOP per sample x batch %d): %.1f GFLOP/s\n",
            "reference figure", 1e3 * REFERENCE_TFLOP_1024 * stats.transformer_batch,
            REFERENCE_TFLOP_1024, stats.transformer_batch,
            1e3 * REFERENCE_TFLOP_1024 * stats.transformer_batch / tf_step);
  else
    printf ("  %-34s %10.1f  GFLOP per sample per step, at 1024x1024 only\n", "reference figure",
            1e3 * REFERENCE_TFLOP_1024);

  on_disk = weights_on_disk (dir, fp16);
  printf ("\n  memory\n");
  print_bytes ("weights on disk", on_disk, "(the safetensors files loaded)");
  print_bytes ("RSS before load", rss_before, "");
  print_bytes ("RSS after load", rss_loaded, "(= weights in memory + runtime)");
  print_bytes (peak_reset ? "peak RSS during generate" : "peak RSS (VmHWM, whole run)", peak_gen,
               peak_reset ? "(VmHWM, reset after load)" : "(could not reset VmHWM)");
  print_bytes ("peak RSS, whole run", max_rss_bytes (), "(getrusage ru_maxrss, load included)");
  if (stats.device_memory_peak_bytes > 0)
    print_bytes ("peak device memory", (double) stats.device_memory_peak_bytes,
                 "(the backend's device allocations, load included)");
  if (peak_gen >= 0 && rss_loaded >= 0)
    print_bytes ("generate peak over loaded", peak_gen - rss_loaded,
                 peak_gen - rss_loaded <= 1.5e9 ? "(goal <= 1.5 GB: met)"
                                                : "(goal <= 1.5 GB: NOT met)");
  if (throughput) {
    ts_result batch[4] = { { 0 } };
    double t1, t4;

    gp.on_step = NULL;
    ts_result_free (&result);
    t1 = now_s ();
    st = ts_model_generate (model, &gp, &result, &err);
    t1 = now_s () - t1;
    if (st == TS_OK) {
      t4 = now_s ();
      st = ts_model_generate_batch (model, &gp, 4, batch, &err);
      t4 = now_s () - t4;
      for (int k = 0; k < 4; k++)
        ts_result_free (&batch[k]);
    }
    if (st != TS_OK) {
      fprintf (stderr, "tessera-cli: %s\n", err.message);
      goto fail;
    }
    ts_model_get_stats (model, &stats);
    printf ("\n  throughput (whole images of %d steps)\n", steps);
    printf ("  %-34s %10.2f  images per minute (%.2f s per image)\n", "N = 1", 60.0 / t1, t1);
    printf ("  %-34s %10.2f  images per minute (%.2f s per image; transformer batch %d)\n",
            "N = 4 (ts_model_generate_batch)", 4 * 60.0 / t4, t4 / 4, stats.transformer_batch);
  }
  rc = 0;

fail:
  ts_result_free (&result);
  ts_model_free (model);
  return rc;
}
