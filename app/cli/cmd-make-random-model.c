/* SPDX-License-Identifier: MIT
 *
 * cmd-make-random-model — `tessera-cli make-random-model`: writes a full-size Meissonic
 * folder with seeded random weights from a folder of configs (ts_make_random_model), so
 * `tessera-cli bench` can measure speed and memory at the real size without the real
 * checkpoint. This file picks the tokenizer folder, parses the options and shows progress.
 */
#include "tessera.h"
#include "tessera-devkit.h"
#include "tessera-cli-commands.h"
#include "cli-options.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_SIZE 4096

static void
usage (FILE *out, const cli_option *opts)
{
  fputs ("Usage: tessera-cli make-random-model --configs DIR --out DIR [--dtype f16|f32|bf16]\n"
         "                                     [--seed S] [--tokenizer DIR]\n"
         "\n"
         "Writes a Meissonic model folder (diffusers layout) with random weights, at the size the\n"
         "configs give, for measuring speed and memory without the real weights.\n"
         "\n",
         out);
  cli_print_options (out, opts);
  fputs ("\n"
         "The real Meissonic configs at f16 write about 3 GB (transformer 2 GB, text encoder\n"
         "0.7 GB, VQ-VAE 0.3 GB). Progress goes to stderr.\n",
         out);
}

static bool
is_dir (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

static bool
is_file (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISREG (st.st_mode);
}

static int
cmp_names (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The default tokenizer folder: CONFIGS/tokenizer, else the first (in name order)
 * CONFIGS/../models/NAME/tokenizer holding vocab.json. False when there is none. */
static bool
find_tokenizer (const char *configs, char *out, size_t size)
{
  char models[PATH_SIZE], probe[PATH_SIZE];
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  DIR *dir;
  bool found = false;

  if ((size_t) snprintf (out, size, "%s/tokenizer", configs) >= size)
    return false;
  if (is_dir (out))
    return true;
  if ((size_t) snprintf (models, sizeof models, "%s/../models", configs) >= sizeof models)
    return false;
  dir = opendir (models);
  if (!dir)
    return false;
  while ((e = readdir (dir))) {
    if (e->d_name[0] == '.')
      continue;
    if (n == cap) {
      size_t new_cap = cap ? 2 * cap : 16;
      char **grown = realloc (names, new_cap * sizeof *names);
      if (!grown)
        break;
      names = grown;
      cap = new_cap;
    }
    names[n] = strdup (e->d_name);
    if (names[n])
      n++;
  }
  closedir (dir);
  if (n)
    qsort (names, n, sizeof *names, cmp_names);
  for (size_t i = 0; i < n && !found; i++) {
    int n_probe = snprintf (probe, sizeof probe, "%s/%s/tokenizer/vocab.json", models, names[i]);
    if (n_probe > 0 && (size_t) n_probe < sizeof probe && is_file (probe)
        && (size_t) snprintf (out, size, "%s/%s/tokenizer", models, names[i]) < size)
      found = true;
  }
  for (size_t i = 0; i < n; i++)
    free (names[i]);
  free (names);
  return found;
}

typedef struct {
  bool tty;
  int last_decile;
} progress_state;

static void
on_progress (void *user_data, double fraction, const char *what)
{
  progress_state *p = user_data;
  int decile = (int) (fraction * 10);

  if (p->tty) {
    fprintf (stderr, "\r%5.1f%%  %-72s", 100 * fraction, what);
  } else if (decile != p->last_decile) {
    p->last_decile = decile;
    fprintf (stderr, "%5.1f%%  %s\n", 100 * fraction, what);
  }
  fflush (stderr);
}

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

int
tessera_cli_make_random_model (int argc, char **argv)
{
  static const char *const dtype_names[] = { "f16", "f32", "bf16", NULL };
  static const ts_dtype dtypes[] = { TS_DTYPE_F16, TS_DTYPE_F32, TS_DTYPE_BF16 };
  const char *configs = NULL, *out = NULL, *tokenizer = NULL;
  int dtype_index = 0;
  char tok_dir[PATH_SIZE];
  uint64_t seed = 0;
  ts_dtype dtype;
  progress_state progress = { .tty = isatty (fileno (stderr)), .last_decile = -1 };
  ts_error err;
  ts_status st;
  double t0;
  const cli_option opts[] = {
    { "--configs", CLI_STRING, &configs, "DIR",
      .help = "the configs: a diffusers-layout folder (transformer/config.json, ...)\n"
              "or the golden set's real-configs naming (transformer_config.json,\n"
              "vqvae_config.json, text_encoder_config*.json, model_index.json,\n"
              "scheduler_config*.json, tokenizer_config*.json,\n"
              "tokenizer_special_tokens_map*.json); copied byte for byte" },
    { "--out", CLI_STRING, &out, "DIR",
      .help = "the folder to write (created; existing files are replaced)" },
    { "--dtype", CLI_CHOICE, &dtype_index, "T", .help = "f16 (default), f32 or bf16",
      .choices = dtype_names },
    { "--seed", CLI_UINT64, &seed, "S",
      .help = "random seed (default 0); the same seed writes the same files" },
    { "--tokenizer", CLI_STRING, &tokenizer, "DIR",
      .help = "where vocab.json and merges.txt come from. Default: CONFIGS/tokenizer\n"
              "when it exists, else the first ../models/*/tokenizer next to the\n"
              "configs folder (where the golden set keeps the real CLIP vocabulary)" },
    { .name = NULL },
  };

  switch (cli_parse ("tessera-cli make-random-model", opts, argc, argv, NULL)) {
  case CLI_PARSED:
    break;
  case CLI_HELP:
    usage (stdout, opts);
    return 0;
  case CLI_BAD:
    return 2;
  }
  if (!configs || !out) {
    fprintf (stderr, "tessera-cli make-random-model: --configs and --out are required\n");
    usage (stderr, opts);
    return 2;
  }
  dtype = dtypes[dtype_index];
  if (tokenizer) {
    snprintf (tok_dir, sizeof tok_dir, "%s", tokenizer);
  } else if (!find_tokenizer (configs, tok_dir, sizeof tok_dir)) {
    fprintf (stderr,
             "tessera-cli: no tokenizer folder: neither %s/tokenizer nor %s/../models/*/tokenizer "
             "exists; pass --tokenizer DIR (vocab.json + merges.txt)\n",
             configs, configs);
    return 1;
  }
  fprintf (stderr, "configs %s, tokenizer %s, dtype %s, seed %" PRIu64 "\n", configs, tok_dir,
           ts_dtype_name (dtype), seed);

  t0 = now_s ();
  st = ts_make_random_model (configs, tok_dir, out, dtype, seed, on_progress, &progress, &err);
  if (progress.tty)
    fputc ('\n', stderr);
  if (st != TS_OK) {
    fprintf (stderr, "tessera-cli: %s\n", err.message);
    return 1;
  }
  printf ("wrote %s (random %s weights, seed %" PRIu64 ") in %.1f s\n", out,
          ts_dtype_name (dtype), seed, now_s () - t0);
  return 0;
}
