/* SPDX-License-Identifier: MIT
 *
 * cmd-inspect — `tessera-cli inspect [--fp16] MODEL_DIR`: shows what a model folder
 * holds before anything is computed: each component's class and config, parameter counts,
 * weight dtypes and bytes on disk, and the estimated memory to generate at the default
 * size. A folder whose weights are missing or broken is still shown from its configs
 * (parameter counts computed from them), followed by the engine's error and exit
 * status 1. Uses only the public API (tessera.h).
 */
#include "tessera-cli-commands.h"

#include "tessera.h"
#include "cli-options.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* 1234567 → "1,234,567". */
static const char *
format_thousands (uint64_t v, char *buf, size_t size)
{
  char digits[32];
  int n = snprintf (digits, sizeof digits, "%" PRIu64, v);
  size_t out = 0;

  for (int i = 0; i < n && out + 2 < size; i++) {
    if (i > 0 && (n - i) % 3 == 0)
      buf[out++] = ',';
    buf[out++] = digits[i];
  }
  buf[out] = '\0';
  return buf;
}

/* 1006946304 → "1.01 B", 608512 → "608.51 K". */
static const char *
format_count (uint64_t v, char *buf, size_t size)
{
  if (v >= 1000000000u)
    snprintf (buf, size, "%.2f B", (double) v / 1e9);
  else if (v >= 1000000u)
    snprintf (buf, size, "%.2f M", (double) v / 1e6);
  else if (v >= 1000u)
    snprintf (buf, size, "%.2f K", (double) v / 1e3);
  else
    snprintf (buf, size, "%" PRIu64, v);
  return buf;
}

/* Decimal units, as the Hugging Face hub lists file sizes ("4.03 GB"). */
static const char *
format_bytes (uint64_t v, char *buf, size_t size)
{
  if (v >= 1000000000u)
    snprintf (buf, size, "%.2f GB", (double) v / 1e9);
  else if (v >= 1000000u)
    snprintf (buf, size, "%.2f MB", (double) v / 1e6);
  else if (v >= 1000u)
    snprintf (buf, size, "%.2f kB", (double) v / 1e3);
  else
    snprintf (buf, size, "%" PRIu64 " B", v);
  return buf;
}

static void
print_dtypes (const ts_component_info *ci)
{
  bool first = true;

  for (int d = 0; d < TS_DTYPE_COUNT; d++) {
    if (!ci->dtype_counts[d])
      continue;
    printf ("%s%s x%" PRIu32, first ? "" : ", ", ts_dtype_name ((ts_dtype) d),
            ci->dtype_counts[d]);
    first = false;
  }
}

static void
print_component (const ts_component_info *ci, ts_component c, bool weights_opened)
{
  const bool network = c == TS_COMPONENT_TRANSFORMER || c == TS_COMPONENT_VQVAE ||
                       c == TS_COMPONENT_TEXT_ENCODER;
  char a[48], b[48];

  printf ("%-14s %-30s %s\n", ci->name, ci->class_name, ci->present ? "present" : "missing");
  printf ("  %-12s %s\n", c == TS_COMPONENT_TOKENIZER ? "files" : "config", ci->summary);
  if (network) {
    printf ("  %-12s %s (%s)\n", "parameters", format_thousands (ci->n_params, a, sizeof a),
            format_count (ci->n_params, b, sizeof b));
    if (weights_opened) {
      printf ("  %-12s %" PRIu64 " tensors in %d file%s, %s bytes (%s), ", "weights",
              ci->n_tensors, ci->n_files, ci->n_files == 1 ? "" : "s",
              format_thousands (ci->size_bytes_on_disk, a, sizeof a),
              format_bytes (ci->size_bytes_on_disk, b, sizeof b));
      print_dtypes (ci);
      printf ("\n");
    } else {
      printf ("  %-12s not opened (configs only): %" PRIu64 " tensors expected\n", "weights",
              ci->n_tensors);
    }
  } else if (ci->n_files > 0) {
    printf ("  %-12s %d file%s, %s bytes (%s)\n", "on disk", ci->n_files,
            ci->n_files == 1 ? "" : "s", format_thousands (ci->size_bytes_on_disk, a, sizeof a),
            format_bytes (ci->size_bytes_on_disk, b, sizeof b));
  }
}

static void
print_info (const ts_model_info *info, bool weights_opened)
{
  static const ts_dtype weight_dtypes[] = { TS_DTYPE_F16, TS_DTYPE_F32 };
  uint64_t total_params = 0, total_bytes = 0;
  uint32_t width = 0, height = 0;
  char a[48], b[48];

  printf ("Model folder: %s\n", ts_model_info_dir (info));
  printf ("Pipeline:     %s\n\n", ts_model_info_pipeline_class (info));
  for (int c = 0; c < TS_COMPONENT_COUNT; c++) {
    const ts_component_info *ci = ts_model_info_component (info, (ts_component) c);

    print_component (ci, (ts_component) c, weights_opened);
    printf ("\n");
    total_params += ci->n_params;
    total_bytes += ci->size_bytes_on_disk;
  }
  printf ("Total parameters: %s (%s)\n", format_thousands (total_params, a, sizeof a),
          format_count (total_params, b, sizeof b));
  if (weights_opened)
    printf ("Total on disk:    %s bytes (%s)\n", format_thousands (total_bytes, a, sizeof a),
            format_bytes (total_bytes, b, sizeof b));

  ts_model_info_default_size (info, &width, &height);
  printf ("Estimated memory to generate at %" PRIu32 "x%" PRIu32
          " (default size; CFG batch 2, f32 activations):\n",
          width, height);
  for (size_t i = 0; i < sizeof weight_dtypes / sizeof weight_dtypes[0]; i++) {
    uint64_t m = ts_model_info_estimate_memory (info, width, height, weight_dtypes[i]);
    printf ("  with %s weights: %s bytes (%.2f GiB)\n", ts_dtype_name (weight_dtypes[i]),
            format_thousands (m, a, sizeof a), (double) m / (1024.0 * 1024.0 * 1024.0));
  }
}

static void
usage (FILE *out, const cli_option *opts)
{
  fprintf (out,
           "Usage: tessera-cli inspect [--fp16] MODEL_DIR\n"
           "\n"
           "Shows a diffusers model folder (the layout of MeissonFlow/Meissonic): components,\n"
           "configs, parameter counts, weight dtypes and sizes, and the estimated memory to\n"
           "generate an image. Every tensor is checked against the configs.\n"
           "\n");
  cli_print_options (out, opts);
  fprintf (out,
           "\n"
           "Exit status: 0 if the folder loads, 1 if it does not (the error is printed),\n"
           "2 for usage errors.\n");
}

int
tessera_cli_inspect (int argc, char **argv)
{
  ts_load_flags flags = TS_LOAD_DEFAULT;
  const char *dir = NULL;
  ts_model_info *info;
  ts_error err, configs_err;
  bool fp16 = false;
  int n_args;
  const cli_option opts[] = {
    { "--fp16", CLI_FLAG, &fp16, NULL,
      .help = "open the .fp16.safetensors variants where present" },
    { .name = NULL },
  };

  switch (cli_parse ("tessera-cli inspect", opts, argc, argv, &n_args)) {
  case CLI_PARSED:
    break;
  case CLI_HELP:
    usage (stdout, opts);
    return 0;
  case CLI_BAD:
    return 2;
  }
  if (n_args != 1) {
    fprintf (stderr, "tessera-cli inspect: %s\n",
             n_args ? "more than one MODEL_DIR" : "no MODEL_DIR given");
    usage (stderr, opts);
    return 2;
  }
  dir = argv[1];
  if (fp16)
    flags |= TS_LOAD_PREFER_FP16;

  info = ts_model_info_load (dir, flags, &err);
  if (info) {
    print_info (info, true);
    ts_model_info_free (info);
    return 0;
  }

  /* Show what the configs say, then why the folder cannot be used. */
  info = ts_model_info_load (dir, flags | TS_LOAD_CONFIGS_ONLY, &configs_err);
  if (info) {
    print_info (info, false);
    ts_model_info_free (info);
    fflush (stdout);
    fprintf (stderr, "\n");
  }
  fprintf (stderr, "tessera-cli inspect: %s\n", err.message);
  return 1;
}
