/* SPDX-License-Identifier: MIT
 *
 * tessera-cli generate / inpaint — text to image, and repainting the masked part of an
 * image, through the public pipeline API (ts_model_load, ts_model_generate,
 * ts_model_inpaint). Writes the PNG with its metadata, reports progress on stderr, and can
 * save a decoded frame of the model's prediction after every step (--preview-dir).
 */
#include "tessera-cli-commands.h"

#include "tessera.h"
#include "cli-options.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  const char *model_dir;
  const char *prompt;
  const char *negative;
  const char *out;
  const char *preview_dir;
  const char *backend;
  const char *image;     /* inpaint */
  const char *mask;      /* inpaint */
  double strength;       /* inpaint */
  uint32_t size[2];      /* width, height; 0: the model's */
  int steps;
  int finish_at;         /* 0: every step */
  double cfg;
  double temperature[2]; /* start, end */
  double aesthetic;
  uint64_t seed;
  bool have_seed;
  bool fp16;
  bool quiet;
  int threads;
} gen_options;

typedef struct {
  ts_model *model;
  const gen_options *o;
  double t_start;
  int n_total;
  bool quiet;
  bool tty;
  int preview_errors;
} progress_state;

/* The options of generate; inpaint's three come last, and generate's table ends before them. */
#define N_INPAINT_OPTIONS 3

static void
generate_usage (FILE *out, bool inpaint, const cli_option *opts)
{
  if (inpaint)
    fprintf (out, "Usage: tessera-cli inpaint [--model DIR] --image IN.png --mask MASK.png --prompt TEXT\n"
                  "                           [--strength X] [options]\n");
  else
    fprintf (out, "Usage: tessera-cli generate [--model DIR] --prompt TEXT [options]\n");
  fprintf (out, "\nOptions:\n");
  cli_print_options (out, opts);
}

/* Returns 0 when parsed, 2 on a usage error (already reported); exits after --help. */
static int
parse_options (int argc, char **argv, bool inpaint, gen_options *o)
{
  cli_option opts[] = {
    { "--model", CLI_STRING, &o->model_dir, "DIR",
      .help = "a Meissonic folder in the diffusers layout (default: the\n"
              "bundled demo model, a tiny model of synthetic shapes, or\n"
              "$TESSERA_DEFAULT_MODEL)" },
    { "--prompt", CLI_STRING, &o->prompt, "TEXT",
      .help = "what to draw (over 77 CLIP tokens is truncated, with a warning)" },
    { "--negative", CLI_STRING, &o->negative, "TEXT", .help = "what to avoid (default: none)" },
    { "--size", CLI_SIZE, o->size, "WxH",
      .help = "image size in pixels (default: the model's, 1024x1024 for\n"
              "Meissonic, 128x128 for the demo model)" },
    { "--steps", CLI_INT, &o->steps, "N", .help = "sampling steps (default 48)", .min = 1,
      .max = 1000 },
    { "--finish-at", CLI_INT, &o->finish_at, "K",
      .help = "stop after step K and give every token still masked that\n"
              "step's prediction (the app's Finish Now; default: all steps)",
      .min = 1, .max = 1000 },
    { "--cfg", CLI_DOUBLE, &o->cfg, "G",
      .help = "classifier-free guidance scale (default: the model's, 9 for\n"
              "Meissonic, 1.5 for the demo model; <= 1 turns it off)",
      .min = 0, .max = TS_GUIDANCE_MAX },
    { "--seed", CLI_UINT64, &o->seed, "S",
      .help = "random seed, 0 to 2^64-1 (default: a random one, printed)",
      .seen = &o->have_seed },
    { "--temperature", CLI_LIST, o->temperature, "A,B",
      .help = "sampling temperature from A to B (default 2,0)", .n = 2, .min = 0,
      .max = INFINITY },
    { "--aesthetic", CLI_DOUBLE, &o->aesthetic, "X",
      .help = "aesthetic-score micro-condition (default 6)" },
    { "--backend", CLI_STRING, &o->backend, "NAME",
      .help = "auto (default: Vulkan on a GPU, else cpu), cpu, cpu-ref (the\n"
              "scalar reference path), vulkan, vulkan:N (see `devices`),\n"
              "check:cpu, check:vulkan, check:vulkan:N (every op also on\n"
              "cpu-ref and compared; stops at the first op out of tolerance)" },
    { "--threads", CLI_INT, &o->threads, "N", .help = "CPU threads (default: every core)",
      .min = 0, .max = 1000000 },
    { "--fp16", CLI_FLAG, &o->fp16, NULL,
      .help = "load the *.fp16.safetensors weight variants when present" },
    { "--out", CLI_STRING, &o->out, "FILE.png",
      .help = "where to write the image (default tessera-SEED.png); - for\n"
              "standard output. Only a new or regular file is written: a\n"
              "symbolic link to a regular file replaces the file it points\n"
              "to (as cp does); a directory, FIFO, device or socket is\n"
              "refused, before the model loads" },
    { "--preview-dir", CLI_STRING, &o->preview_dir, "DIR",
      .help = "also save the decoded prediction after every step" },
    { "--quiet", CLI_FLAG, &o->quiet, NULL, .help = "no progress on stderr" },
    /* inpaint only: */
    { "--image", CLI_STRING, &o->image, "IN.png",
      .help = "the image to repaint (its size is the generation size)" },
    { "--mask", CLI_STRING, &o->mask, "MASK.png",
      .help = "same size; white (luminance >= 128) = repaint, black = keep" },
    { "--strength", CLI_DOUBLE, &o->strength, "X",
      .help = "0 < X <= 1: the share of the steps to run (default 1)", .min = 0,
      .min_open = true, .max = 1 },
    { .name = NULL },
  };
  const size_t n_opts = sizeof opts / sizeof opts[0] - 1;

  memset (o, 0, sizeof *o);
  o->steps = 48;
  o->cfg = -1.0; /* the model's */
  o->temperature[0] = 2.0;
  o->temperature[1] = 0.0;
  o->aesthetic = 6.0;
  o->strength = 1.0;
  o->backend = "auto";
  if (!inpaint)
    opts[n_opts - N_INPAINT_OPTIONS] = (cli_option) { .name = NULL };

  switch (cli_parse (inpaint ? "tessera-cli inpaint" : "tessera-cli generate", opts, argc, argv,
                     NULL)) {
  case CLI_PARSED:
    break;
  case CLI_HELP:
    generate_usage (stdout, inpaint, opts);
    exit (0);
  case CLI_BAD:
    return 2;
  }
  if (!o->prompt || (inpaint && (!o->image || !o->mask))) {
    fprintf (stderr, "tessera-cli: %s\n", inpaint ? "--image, --mask and --prompt are required"
                                                   : "--prompt is required");
    generate_usage (stderr, inpaint, opts);
    return 2;
  }
  if (o->finish_at > o->steps) {
    fprintf (stderr, "tessera-cli: --finish-at %d is after the last of %d steps\n", o->finish_at,
             o->steps);
    return 2;
  }
  if (!o->model_dir) {
    /* ts_default_model_dir prefers $TESSERA_DEFAULT_MODEL: say which one was taken, and
     * when the variable names no folder, say that rather than "not installed". */
    const char *env = getenv ("TESSERA_DEFAULT_MODEL");
    o->model_dir = ts_default_model_dir ();
    if (!o->model_dir) {
      if (env && env[0])
        fprintf (stderr, "tessera-cli: no --model given and $TESSERA_DEFAULT_MODEL (%s) is not a "
                         "folder\n", env);
      else
        fprintf (stderr, "tessera-cli: no --model given and the bundled demo model is not "
                         "installed (nor named by $TESSERA_DEFAULT_MODEL)\n");
      return 2;
    }
    if (env && strcmp (env, o->model_dir) == 0)
      fprintf (stderr, "model: %s (from $TESSERA_DEFAULT_MODEL)\n", o->model_dir);
    else
      fprintf (stderr, "model: the bundled demo model (%s)\n", o->model_dir);
  }
  if (!o->have_seed) {
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    /* splitmix64 of the clock: a random seed that is still printed and recorded. */
    uint64_t z = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec + 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    o->seed = z ^ (z >> 31);
  }
  return 0;
}

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + 1e-9 * (double) ts.tv_nsec;
}

static void
load_progress (void *user_data, double fraction, const char *what)
{
  const gen_options *o = user_data;
  bool tty = isatty (STDERR_FILENO) != 0;
  if (!o->quiet && (tty || fraction >= 1.0))
    fprintf (stderr, "%sloading %3.0f%% %-32s%s", tty ? "\r" : "", 100.0 * fraction, what,
             tty ? "" : "\n");
}

static void
on_step (void *user_data, const ts_step_info *info)
{
  progress_state *ps = user_data;
  int done = info->step + 1;
  double elapsed = now_s () - ps->t_start;
  double it_s = elapsed > 0 ? done / elapsed : 0;
  double eta = it_s > 0 ? (info->n_steps - done) / it_s : 0;
  int total = info->grid_h * info->grid_w;

  /* On a terminal the line rewrites itself; in a log each step gets its own line. */
  if (!ps->quiet)
    fprintf (stderr, "%sstep %d/%d  revealed %d/%d tokens  %.2f it/s  ETA %.0f s%s",
             ps->tty ? "\r" : "", done, info->n_steps, total - info->n_masked, total, it_s, eta,
             ps->tty ? "   " : "\n");

  if (ps->o->preview_dir) {
    char path[4096];
    ts_error err;
    ts_image *img = ts_model_decode (ps->model, info->predicted, info->grid_h, info->grid_w, &err);
    snprintf (path, sizeof path, "%s/step-%03d.png", ps->o->preview_dir, done);
    if (!img || ts_image_save_png (img, NULL, path, &err) != TS_OK) {
      if (ps->preview_errors++ == 0)
        fprintf (stderr, "\ntessera-cli: preview: %s\n", err.message);
    }
    ts_image_free (img);
  }
}

/* Ctrl+C cancels the run cleanly (the engine stops within one transformer block). */
static volatile sig_atomic_t interrupted;

static void
on_sigint (int sig)
{
  (void) sig;
  interrupted = 1;
}

static bool
should_abort (void *user_data)
{
  (void) user_data;
  return interrupted != 0;
}

/* Writes the PNG to standard output (--out -). Progress goes to stderr as always. */
static ts_status
write_png_stdout (const ts_image *img, const ts_image_meta *meta, ts_error *err)
{
  uint8_t *data = NULL;
  size_t size = 0;
  ts_status st = ts_image_encode_png_memory (img, meta, &data, &size, err);

  if (st != TS_OK)
    return st;
  if (fwrite (data, 1, size, stdout) != size || fflush (stdout) != 0) {
    snprintf (err->message, sizeof err->message, "--out -: cannot write to standard output: %s",
              strerror (errno));
    err->code = st = TS_ERR_IO;
  }
  free (data);
  return st;
}

/* The output path is checked before anything slow (loading, generating), so that a FIFO,
 * a device, a missing or read-only folder fails at once rather than after the run. */
static int
check_output (const char *out_path)
{
  ts_error err;

  if (strcmp (out_path, "-") == 0) {
    if (isatty (STDOUT_FILENO)) {
      fprintf (stderr, "tessera-cli: --out -: standard output is a terminal; redirect it to a "
                       "file or a pipe\n");
      return 2;
    }
    return 0;
  }
  if (ts_output_path_check (out_path, &err) != TS_OK) {
    fprintf (stderr, "tessera-cli: --out: %s%s\n", err.message,
             strncmp (out_path, "/dev/std", 8) == 0 || strncmp (out_path, "/proc/self/fd/", 14) == 0
                 ? " (use --out - for standard output)"
                 : "");
    return 1;
  }
  return 0;
}

/* The checks that need only the model's configs and weight headers, made before the
 * weights load (minutes with the real model) so that a bad size fails at once: the size
 * the model takes (width x height, 0 x 0 for its default) and the memory the model's
 * estimate says it needs against what the machine has (ts_model_info_check_memory). */
static bool
check_before_load (const gen_options *o, uint32_t width, uint32_t height)
{
  ts_model_info *info = ts_model_info_load (o->model_dir, TS_LOAD_DEFAULT, NULL);
  ts_error err;
  bool ok;

  if (!info)
    return true; /* ts_model_load reports what is wrong with the folder */
  if (width == 0 || height == 0)
    ts_model_info_default_size (info, &width, &height);
  ok = ts_model_info_check_size (info, width, height, &err) == TS_OK
       && ts_model_info_check_memory (info, width, height,
                                      o->fp16 ? TS_DTYPE_F16 : TS_DTYPE_F32, &err) == TS_OK;
  if (!ok)
    fprintf (stderr, "tessera-cli: %s\n", err.message);
  ts_model_info_free (info);
  return ok;
}

static int
run (int argc, char **argv, bool inpaint)
{
  gen_options o;
  ts_model_load_params lp;
  ts_generate_params gp;
  ts_model *model = NULL;
  ts_image *src = NULL, *mask_img = NULL;
  uint8_t *mask = NULL;
  ts_result res = { 0 };
  ts_image_meta meta;
  ts_error err;
  char out_path[4096];
  progress_state ps;
  ts_status st;
  int rc = 1;

  if ((rc = parse_options (argc, argv, inpaint, &o)) != 0)
    return rc;
  if (o.out)
    snprintf (out_path, sizeof out_path, "%s", o.out);
  else
    snprintf (out_path, sizeof out_path, "tessera-%" PRIu64 ".png", o.seed);
  if ((rc = check_output (out_path)) != 0)
    return rc;
  rc = 1;

  if (o.preview_dir && mkdir (o.preview_dir, 0777) != 0 && errno != EEXIST) {
    fprintf (stderr, "tessera-cli: --preview-dir %s: %s\n", o.preview_dir, strerror (errno));
    return 1;
  }
  if (inpaint) {
    src = ts_image_load_png (o.image, NULL, &err);
    if (!src) {
      fprintf (stderr, "tessera-cli: %s\n", err.message);
      goto out;
    }
    mask_img = ts_image_load_png (o.mask, NULL, &err);
    if (!mask_img) {
      fprintf (stderr, "tessera-cli: %s\n", err.message);
      goto out;
    }
    if (mask_img->width != src->width || mask_img->height != src->height) {
      fprintf (stderr, "tessera-cli: the mask is %ux%u but the image is %ux%u\n", mask_img->width,
               mask_img->height, src->width, src->height);
      goto out;
    }
    mask = malloc ((size_t) src->width * src->height);
    if (!mask) {
      fprintf (stderr, "tessera-cli: out of memory\n");
      goto out;
    }
    for (size_t i = 0; i < (size_t) src->width * src->height; i++) {
      const uint8_t *px = mask_img->pixels + 3 * i;
      mask[i] = (299 * px[0] + 587 * px[1] + 114 * px[2]) / 1000 >= 128;
    }
  }

  if (!check_before_load (&o, inpaint ? src->width : o.size[0], inpaint ? src->height : o.size[1]))
    goto out;

  ts_model_load_params_init (&lp);
  tessera_cli_show_check_log (o.backend);
  lp.backend = o.backend;
  lp.n_threads = o.threads;
  lp.prefer_fp16 = o.fp16;
  lp.progress = load_progress;
  lp.progress_data = &o;
  model = ts_model_load (o.model_dir, &lp, &err);
  if (!o.quiet && isatty (STDERR_FILENO))
    fprintf (stderr, "\n");
  if (!model) {
    fprintf (stderr, "tessera-cli: %s\n", err.message);
    goto out;
  }

  ts_generate_params_init (&gp);
  gp.prompt = o.prompt;
  gp.negative_prompt = o.negative;
  gp.width = inpaint ? src->width : o.size[0];
  gp.height = inpaint ? src->height : o.size[1];
  if (!inpaint && (o.size[0] == 0 || o.size[1] == 0))
    ts_model_default_size (model, &gp.width, &gp.height);
  gp.steps = o.steps;
  if (o.cfg < 0.0)
    o.cfg = ts_model_default_guidance (model);
  gp.guidance = o.cfg;
  gp.temperature_start = o.temperature[0];
  gp.temperature_end = o.temperature[1];
  gp.aesthetic_score = o.aesthetic;
  gp.seed = o.seed;
  gp.finish_at = o.finish_at;
  ps = (progress_state) { .model = model, .o = &o, .t_start = now_s (), .quiet = o.quiet,
                           .tty = isatty (STDERR_FILENO) != 0 };
  gp.on_step = on_step;
  gp.step_data = &ps;
  gp.should_abort = should_abort;
  {
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction (SIGINT, &sa, NULL);
  }

  if (!o.quiet)
    fprintf (stderr, "%s %ux%u, %d steps, CFG %g, seed %" PRIu64 ", backend %s\n",
             inpaint ? "inpainting" : "generating", gp.width, gp.height, gp.steps, gp.guidance,
             gp.seed, ts_model_backend_name (model));
  if (inpaint)
    st = ts_model_inpaint (model, &gp, src, mask, o.strength, &res, &err);
  else
    st = ts_model_generate (model, &gp, &res, &err);
  if (!o.quiet && ps.tty)
    fprintf (stderr, "\n");
  if (st == TS_ERR_CANCELLED) {
    fprintf (stderr, "tessera-cli: cancelled; nothing written\n");
    rc = 130;
    goto out;
  }
  if (st != TS_OK) {
    fprintf (stderr, "tessera-cli: %s\n", err.message);
    goto out;
  }

  ts_image_meta_init (&meta);
  meta.prompt = (char *) o.prompt;
  meta.negative_prompt = (char *) (o.negative ? o.negative : "");
  meta.model = (char *) ts_model_name (model);
  meta.sampler = "MaskGIT";
  meta.backend = (char *) ts_model_backend_name (model);
  meta.seed = o.seed;
  meta.steps = (uint32_t) o.steps;
  meta.finish_at = (uint32_t) o.finish_at;
  meta.width = gp.width;
  meta.height = gp.height;
  meta.cfg = o.cfg;
  meta.temperature_start = o.temperature[0];
  meta.temperature_end = o.temperature[1];
  meta.aesthetic_score = o.aesthetic;
  meta.crop_top = 0;
  meta.crop_left = 0;
  if (inpaint) {
    const char *base = strrchr (o.image, '/');
    meta.source = (char *) (base ? base + 1 : o.image);
    meta.strength = o.strength;
  }
  if (strcmp (out_path, "-") == 0)
    st = write_png_stdout (res.image, &meta, &err);
  else
    st = ts_image_save_png (res.image, &meta, out_path, &err);
  if (st != TS_OK) {
    fprintf (stderr, "tessera-cli: %s\n", err.message);
    goto out;
  }
  {
    ts_model_stats s;
    ts_model_get_stats (model, &s);
    if (!o.quiet)
      fprintf (stderr, "text encoder %.2f s, transformer %.2f s (%d calls), sampler %.2f s, "
                       "VQ decode %.2f s\n",
               s.text_encoder_s, s.transformer_s, s.n_transformer_calls, s.sampler_s,
               s.vq_decode_s);
  }
  if (strcmp (out_path, "-") != 0)
    printf ("%s\n", out_path);
  rc = 0;

out:
  ts_result_free (&res);
  ts_model_free (model);
  free (mask);
  ts_image_free (mask_img);
  ts_image_free (src);
  return rc;
}

int
tessera_cli_generate (int argc, char **argv)
{
  return run (argc, argv, false);
}

int
tessera_cli_inpaint (int argc, char **argv)
{
  return run (argc, argv, true);
}
