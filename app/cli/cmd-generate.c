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

#include <glib.h>

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

typedef enum {
  MODE_GENERATE,
  MODE_IMG2IMG,
  MODE_INPAINT,
  MODE_OUTPAINT,
  MODE_BRANCH,
  MODE_REFINE,
} gen_mode;

static const char *const mode_names[] = { "generate", "img2img", "inpaint", "outpaint",
                                          "branch",   "refine" };

/* branch and refine start from an image Tessera made and take its parameters by default. */
#define FROM_TRAJECTORY(mode) ((mode) == MODE_BRANCH || (mode) == MODE_REFINE)

typedef struct {
  gen_mode mode;
  const char *model_dir;
  const char *prompt;
  const char *negative;
  const char *out;
  const char *preview_dir;
  const char *backend;
  const char *image;     /* img2img, inpaint, outpaint */
  const char *mask;      /* inpaint */
  double strength;       /* img2img, inpaint, outpaint */
  double extend[4];      /* outpaint: left, top, right, bottom */
  uint32_t size[2];      /* width, height; 0: the model's */
  int steps;
  int finish_at;         /* 0: every step */
  int batch;             /* images, seeds seed .. seed + batch - 1 */
  double cfg;
  double temperature[2]; /* start, end */
  double aesthetic;
  uint64_t seed;
  bool have_seed;
  int from_step;         /* branch */
  double remask;         /* refine */
  bool seen_prompt, seen_negative, seen_steps, seen_cfg, seen_temperature, seen_aesthetic;
  bool fp16;
  bool quiet;
  int threads;
  int precision; /* ts_precision */
} gen_options;

typedef struct {
  ts_model *model;
  const gen_options *o;
  double t_start;
  int n_total;
  int image_index;       /* 1-based within the batch */
  int first_step;        /* the first step reported (-1 before it); image pipelines start late */
  bool quiet;
  bool tty;
  int preview_errors;
} progress_state;

static const char *const usage_lines[] = {
  [MODE_GENERATE] = "Usage: tessera-cli generate [--model DIR] --prompt TEXT [options]\n",
  [MODE_IMG2IMG] = "Usage: tessera-cli img2img [--model DIR] --image IN.png --prompt TEXT\n"
                   "                           [--strength X] [options]\n",
  [MODE_INPAINT] = "Usage: tessera-cli inpaint [--model DIR] --image IN.png --mask MASK.png --prompt TEXT\n"
                   "                           [--strength X] [options]\n",
  [MODE_OUTPAINT] = "Usage: tessera-cli outpaint [--model DIR] --image IN.png --extend L,T,R,B\n"
                    "                            --prompt TEXT [options]\n",
  [MODE_BRANCH] = "Usage: tessera-cli branch --image X.png --from-step K [--seed S] [--prompt P]\n"
                  "                          [--negative N] [--cfg G] [--temperature A,B]\n"
                  "                          [--steps N] --out Y.png\n",
  [MODE_REFINE] = "Usage: tessera-cli refine --image X.png --remask F [--steps M] [--seed S]\n"
                  "                          [prompt options] --out Y.png\n",
};

static const char *const mode_notes[] = {
  [MODE_GENERATE] = "",
  [MODE_IMG2IMG] =
      "\nAs the official Img2ImgPipeline: of N steps the last int(N * strength) run,\n"
      "with the full schedule's temperatures, after each token of the image was\n"
      "masked with probability cos(pi/2 * (N - run) / N). The image is brought to a\n"
      "size the model takes by flooring each side to its size step (16 or 32 px)\n"
      "and resizing with LANCZOS. Unlike the official code, strength 1 gives a new\n"
      "picture from the prompt (the official code masks nothing at 1 and returns\n"
      "almost the input); strength 0 (or int(N * strength) = 0) returns the VQ\n"
      "reconstruction of the image, as the official code does.\n",
  [MODE_INPAINT] =
      "\nAs the official InpaintPipeline: the mask (any size) is resized with LANCZOS\n"
      "to the token grid and a token is repainted where its luminance is >= 128;\n"
      "the linear masking schedule is always used. Unlike the official code, which\n"
      "works only at multiples of 256 px, every size the model takes works. Kept\n"
      "regions come back as the VQ reconstruction of the image, as in the official\n"
      "code.\n",
  [MODE_OUTPAINT] =
      "\nAs the official inpaint.py --mode outpaint: the image is placed on a canvas\n"
      "of grey 127 and the new border is inpainted. Each extent is rounded up to a\n"
      "whole number of the model's size step (16 px, or 32 px for Meissonic), so\n"
      "that the border is whole tokens; the output says so when it rounds.\n",
  [MODE_BRANCH] =
      "\nX.png must carry a token trajectory (every image Tessera makes does). The state\n"
      "after step K is restored (each token revealed at or before step K keeps its code,\n"
      "the rest is masked) and steps K+1 .. N run. Every option defaults to X's own\n"
      "value: with none changed the result is X again, token for token; with a new seed\n"
      "or prompt the first K steps' tokens stay and the rest is new.\n",
  [MODE_REFINE] =
      "\nX.png must carry a token trajectory. The round(F * h * w) tokens the model was\n"
      "least sure of (lowest probability when they were revealed) are masked again and\n"
      "redrawn over M steps (default: X's step count) with the model's schedule scaled\n"
      "to start at mask ratio F; every other token stays exactly. Options default to\n"
      "X's own values.\n",
};

static void
generate_usage (FILE *out, gen_mode mode, const cli_option *opts)
{
  fputs (usage_lines[mode], out);
  fprintf (out, "\nOptions:\n");
  cli_print_options (out, opts);
  fputs (mode_notes[mode], out);
}

/* Returns 0 when parsed, 2 on a usage error (already reported); exits after --help. */
static int
parse_options (int argc, char **argv, gen_mode mode, gen_options *o)
{
  static const char *const precisions[] = { "auto", "fp32", "bf16", NULL };
  const cli_option common[] = {
    { "--model", CLI_STRING, &o->model_dir, "DIR",
      .help = "a Meissonic folder in the diffusers layout (default: the\n"
              "bundled demo model, a tiny model of synthetic shapes, or\n"
              "$TESSERA_DEFAULT_MODEL)" },
    { "--prompt", CLI_STRING, &o->prompt, "TEXT",
      .help = "what to draw (over 77 CLIP tokens is truncated, with a warning)",
      .seen = &o->seen_prompt },
    { "--negative", CLI_STRING, &o->negative, "TEXT", .help = "what to avoid (default: none)",
      .seen = &o->seen_negative },
    { "--steps", CLI_INT, &o->steps, "N", .help = "sampling steps (default 48)", .min = 1,
      .max = 1000, .seen = &o->seen_steps },
    { "--cfg", CLI_DOUBLE, &o->cfg, "G",
      .help = "classifier-free guidance scale (default: the model's, 9 for\n"
              "Meissonic, 1.5 for the demo model; <= 1 turns it off)",
      .min = 0, .max = TS_GUIDANCE_MAX, .seen = &o->seen_cfg },
    { "--seed", CLI_UINT64, &o->seed, "S",
      .help = "random seed, 0 to 2^64-1 (default: a random one, printed)",
      .seen = &o->have_seed },
    { "--batch", CLI_INT, &o->batch, "N",
      .help = "make N images with seeds S, S+1, ..., S+N-1, written as\n"
              "OUT-1.png ... OUT-N.png; image k is the same as a single run\n"
              "with seed S+k-1 (default 1)",
      .min = 1, .max = 10000 },
    { "--temperature", CLI_LIST, o->temperature, "A,B",
      .help = "sampling temperature from A to B (default 2,0)", .n = 2, .min = 0,
      .max = INFINITY, .seen = &o->seen_temperature },
    { "--aesthetic", CLI_DOUBLE, &o->aesthetic, "X",
      .help = "aesthetic-score micro-condition (default 6)", .seen = &o->seen_aesthetic },
    { "--backend", CLI_STRING, &o->backend, "NAME",
      .help = "auto (default: Vulkan on a GPU, else cpu), cpu, cpu-ref (the\n"
              "scalar reference path), vulkan, vulkan:N (see `devices`),\n"
              "check:cpu, check:vulkan, check:vulkan:N (every op also on\n"
              "cpu-ref and compared; stops at the first op out of tolerance)" },
    { "--threads", CLI_INT, &o->threads, "N", .help = "CPU threads (default: every core)",
      .min = 0, .max = 1000000 },
    { "--precision", CLI_CHOICE, &o->precision, "auto|fp32|bf16", .choices = precisions,
      .help = "the linear layers' arithmetic on the CPU: fp32 (the official),\n"
              "bf16 (needs AVX-512, or cpu-ref's emulation; see\n"
              "docs/precision.md) or auto (default: bf16 where the CPU has\n"
              "native bf16 dot products, else fp32)" },
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
  };
  const cli_option size_opt = { "--size", CLI_SIZE, o->size, "WxH",
    .help = "image size in pixels (default: the model's, 1024x1024 for\n"
            "Meissonic, 128x128 for the demo model)" };
  const cli_option finish_opt = { "--finish-at", CLI_INT, &o->finish_at, "K",
    .help = "stop after step K and give every token still masked that\n"
            "step's prediction (the app's Finish Now; default: all steps)",
    .min = 1, .max = 1000 };
  const cli_option image_opt = { "--image", CLI_STRING, &o->image, "IN.png",
    .help = mode == MODE_OUTPAINT        ? "the image to extend"
            : FROM_TRAJECTORY (mode)     ? "an image Tessera made (it carries its trajectory)"
                                         : "the source image (any size: each side is floored to the\n"
                                           "model's size step and the image resized with LANCZOS)" };
  const cli_option from_opt = { "--from-step", CLI_INT, &o->from_step, "K",
    .help = "keep the state after step K (0 = from the start)", .min = 0, .max = 1000 };
  const cli_option remask_opt = { "--remask", CLI_DOUBLE, &o->remask, "F",
    .help = "0 < F <= 1: the share of tokens to redraw, least confident first", .min = 0,
    .min_open = true, .max = 1 };
  const cli_option mask_opt = { "--mask", CLI_STRING, &o->mask, "MASK.png",
    .help = "any size; white (luminance >= 128 after the resize to the\n"
            "token grid) = repaint, black = keep" };
  const cli_option strength_opt = { "--strength", CLI_DOUBLE, &o->strength, "X",
    .help = mode == MODE_IMG2IMG ? "0 <= X <= 1: how much to change (default 0.5; 1 = a new\n"
                                   "picture, 0 = the image's VQ reconstruction)"
                                 : "0 < X <= 1: the share of the steps to run (default 1)",
    .min = 0, .min_open = mode != MODE_IMG2IMG, .max = 1 };
  const cli_option extend_opt = { "--extend", CLI_LIST, o->extend, "L,T,R,B",
    .help = "pixels to add at the left, top, right and bottom (rounded up\n"
            "to whole tokens)",
    .n = 4, .min = 0, .max = 8192 };
  cli_option opts[32];
  size_t n = 0;

  memset (o, 0, sizeof *o);
  o->mode = mode;
  o->steps = 48;
  o->cfg = -1.0; /* the model's */
  o->temperature[0] = 2.0;
  o->temperature[1] = 0.0;
  o->aesthetic = 6.0;
  o->strength = mode == MODE_IMG2IMG ? 0.5 : 1.0;
  o->batch = 1;
  o->backend = "auto";
  for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) {
    opts[n++] = common[i];
    if (i == 2 && mode != MODE_GENERATE)
      opts[n++] = image_opt;
    if (i == 2 && mode == MODE_INPAINT)
      opts[n++] = mask_opt;
    if (i == 2 && mode == MODE_OUTPAINT)
      opts[n++] = extend_opt;
    if (i == 2 && mode == MODE_BRANCH)
      opts[n++] = from_opt;
    if (i == 2 && mode == MODE_REFINE)
      opts[n++] = remask_opt;
    if (i == 2 && mode != MODE_GENERATE && !FROM_TRAJECTORY (mode))
      opts[n++] = strength_opt;
    if (i == 2 && mode == MODE_GENERATE)
      opts[n++] = size_opt;
    if (i == 3 && !FROM_TRAJECTORY (mode))
      opts[n++] = finish_opt;
  }
  opts[n] = (cli_option) { .name = NULL };

  {
    char prog[64];
    snprintf (prog, sizeof prog, "tessera-cli %s", mode_names[mode]);
    switch (cli_parse (prog, opts, argc, argv, NULL)) {
    case CLI_PARSED:
      break;
    case CLI_HELP:
      generate_usage (stdout, mode, opts);
      exit (0);
    case CLI_BAD:
      return 2;
    }
  }
  if (FROM_TRAJECTORY (mode) && (!o->image || (mode == MODE_REFINE && o->remask <= 0))) {
    fprintf (stderr, "tessera-cli: %s\n", mode == MODE_BRANCH ? "--image and --from-step are required"
                                                             : "--image and --remask are required");
    generate_usage (stderr, mode, opts);
    return 2;
  }
  if (!FROM_TRAJECTORY (mode) && (!o->prompt || (mode != MODE_GENERATE && !o->image) || (mode == MODE_INPAINT && !o->mask)
      || (mode == MODE_OUTPAINT && !o->extend[0] && !o->extend[1] && !o->extend[2]
          && !o->extend[3]))) {
    fprintf (stderr, "tessera-cli: %s\n",
             mode == MODE_GENERATE  ? "--prompt is required"
             : mode == MODE_IMG2IMG ? "--image and --prompt are required"
             : mode == MODE_INPAINT ? "--image, --mask and --prompt are required"
                                    : "--image, --prompt and a non-zero --extend are required");
    generate_usage (stderr, mode, opts);
    return 2;
  }
  for (int i = 0; i < 4; i++)
    if (o->extend[i] != floor (o->extend[i])) {
      fprintf (stderr, "tessera-cli: --extend takes whole pixels, not %g\n", o->extend[i]);
      return 2;
    }
  if (o->finish_at > o->steps) {
    fprintf (stderr, "tessera-cli: --finish-at %d is after the last of %d steps\n", o->finish_at,
             o->steps);
    return 2;
  }
  if (o->batch > 1 && o->out && strcmp (o->out, "-") == 0) {
    fprintf (stderr, "tessera-cli: --batch writes several files; --out - is one stream\n");
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
  double it_s;

  if (ps->first_step < 0)
    ps->first_step = info->step;
  it_s = elapsed > 0 ? (done - ps->first_step) / elapsed : 0;
  double eta = it_s > 0 ? (info->n_steps - done) / it_s : 0;
  int total = info->grid_h * info->grid_w;

  /* On a terminal the line rewrites itself; in a log each step gets its own line. Images
   * of a batch that run together report each step once per image. */
  if (!ps->quiet) {
    char which[32] = "";
    if (ps->o->batch > 1)
      snprintf (which, sizeof which, "image %d/%d  ", ps->image_index + info->image, ps->o->batch);
    fprintf (stderr, "%s%sstep %d/%d  revealed %d/%d tokens  %.2f it/s  ETA %.0f s%s",
             ps->tty ? "\r" : "", which, done, info->n_steps, total - info->n_masked, total, it_s,
             eta, ps->tty ? "   " : "\n");
  }

  if (ps->o->preview_dir) {
    char path[4096];
    ts_error err;
    ts_image *img = ts_model_decode (ps->model, info->predicted, info->grid_h, info->grid_w, &err);
    if (ps->o->batch > 1)
      snprintf (path, sizeof path, "%s/step-%03d-%d.png", ps->o->preview_dir, done,
                ps->image_index + info->image);
    else
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
check_before_load (const gen_options *o, uint32_t width, uint32_t height, bool floor_to_step)
{
  ts_model_info *info = ts_model_info_load (o->model_dir, TS_LOAD_DEFAULT, NULL);
  ts_error err;
  bool ok;

  if (!info)
    return true; /* ts_model_load reports what is wrong with the folder */
  if (width == 0 || height == 0)
    ts_model_info_default_size (info, &width, &height);
  if (floor_to_step) {
    /* An input image is floored to the model's size step (see ts_model_image_size). */
    uint32_t step = ts_model_info_size_step (info);
    width -= width % step;
    height -= height % step;
  }
  ok = ts_model_info_check_size (info, width, height, &err) == TS_OK
       && ts_model_info_check_memory (info, width, height,
                                      o->fp16 ? TS_DTYPE_F16 : TS_DTYPE_F32, &err) == TS_OK;
  if (!ok)
    fprintf (stderr, "tessera-cli: %s\n", err.message);
  ts_model_info_free (info);
  return ok;
}

/* "out.png" → "out-3.png" for image 3 of a batch (before the extension, if any). */
static void
batch_path (char *buf, size_t size, const char *out_path, int k)
{
  const char *slash = strrchr (out_path, '/');
  const char *dot = strrchr (out_path, '.');

  if (!dot || (slash && dot < slash) || dot == (slash ? slash + 1 : out_path))
    snprintf (buf, size, "%s-%d", out_path, k);
  else
    snprintf (buf, size, "%.*s-%d%s", (int) (dot - out_path), out_path, k, dot);
}

/* "sha256:<hex>" of a file's bytes (the source image), or NULL when it cannot be read. */
static char *
file_sha256 (const char *path)
{
  gchar *data = NULL, *hex, *tagged;
  gsize len = 0;

  if (!g_file_get_contents (path, &data, &len, NULL))
    return NULL;
  hex = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
  tagged = g_strconcat ("sha256:", hex, NULL);
  g_free (hex);
  g_free (data);
  return tagged;
}

static ts_image *
load_input (const char *path, const char *what)
{
  ts_error err;
  ts_image *img = ts_image_load_png (path, NULL, &err);

  if (!img)
    fprintf (stderr, "tessera-cli: %s: %s\n", what, err.message);
  return img;
}

/* branch / refine: the source's parameters for every option not given. The strings stay
 * owned by src. */
static void
resolve_from_source (gen_options *o, const ts_image_meta *src)
{
  if (!o->seen_prompt)
    o->prompt = src->prompt ? src->prompt : "";
  if (!o->seen_negative)
    o->negative = src->negative_prompt;
  if (!o->seen_steps && src->steps > 0 && src->steps <= 1000)
    o->steps = (int) src->steps;
  if (!o->seen_cfg && isfinite (src->cfg) && src->cfg >= 0 && src->cfg <= TS_GUIDANCE_MAX)
    o->cfg = src->cfg;
  if (!o->seen_temperature && isfinite (src->temperature_start) && isfinite (src->temperature_end)) {
    o->temperature[0] = src->temperature_start;
    o->temperature[1] = src->temperature_end;
  }
  if (!o->seen_aesthetic && isfinite (src->aesthetic_score))
    o->aesthetic = src->aesthetic_score;
  if (!o->have_seed)
    o->seed = src->seed;
  /* A Finish Now image is reproduced only if the branch finishes where it did. */
  if (o->mode == MODE_BRANCH && src->finish_at > (uint32_t) o->from_step
      && src->finish_at <= (uint32_t) o->steps)
    o->finish_at = (int) src->finish_at;
}

typedef struct {
  const float *conf;
} by_confidence;

static by_confidence sort_ctx;

/* Lowest probability first; tokens without one (NaN) last; ties by position. */
static int
compare_confidence (const void *a, const void *b)
{
  int i = *(const int *) a, j = *(const int *) b;
  float x = sort_ctx.conf[i], y = sort_ctx.conf[j];
  bool xn = isnan (x), yn = isnan (y);

  if (xn != yn)
    return xn ? 1 : -1;
  if (!xn && x != y)
    return x < y ? -1 : 1;
  return (i > j) - (i < j);
}

/* The grid branch / refine start from, into tokens; fills the resume state. Returns false
 * (reported) when there is nothing to draw. */
static bool
build_resume_state (const gen_options *o, const ts_image_meta *src, int32_t mask_id,
                    int32_t *tokens, ts_resume_state *rs, int *n_redrawn)
{
  int n = (int) (src->traj_grid_h * src->traj_grid_w), n_masked = 0;

  memset (rs, 0, sizeof *rs);
  rs->tokens = tokens;
  rs->grid_h = (int) src->traj_grid_h;
  rs->grid_w = (int) src->traj_grid_w;
  if (o->mode == MODE_BRANCH) {
    if (o->from_step >= o->steps) {
      fprintf (stderr, "tessera-cli: --from-step %d leaves nothing to run of %d steps\n",
               o->from_step, o->steps);
      return false;
    }
    for (int i = 0; i < n; i++) {
      uint16_t r = src->traj_reveal_step[i];
      bool keep = r == 0 || r <= o->from_step;
      tokens[i] = keep ? src->traj_codes[i] : mask_id;
      n_masked += !keep;
    }
    rs->start_step = o->from_step;
    rs->linear_schedule = src->schedule && strcmp (src->schedule, "linear") == 0;
    rs->starting_mask_ratio = src->starting_mask_ratio > 0 && src->starting_mask_ratio <= 1
                                  ? (float) src->starting_mask_ratio : 1.0f;
  } else {
    int *order = malloc ((size_t) n * sizeof *order), n_cand = 0, want;
    if (!order) {
      fprintf (stderr, "tessera-cli: out of memory\n");
      return false;
    }
    for (int i = 0; i < n; i++) {
      tokens[i] = src->traj_codes[i];
      if (src->traj_reveal_step[i] > 0)
        order[n_cand++] = i;
    }
    sort_ctx.conf = src->traj_confidence;
    qsort (order, (size_t) n_cand, sizeof *order, compare_confidence);
    want = (int) lround (o->remask * n);
    if (want > n_cand)
      want = n_cand;
    for (int k = 0; k < want; k++)
      tokens[order[k]] = mask_id;
    n_masked = want;
    free (order);
    rs->start_step = 0;
    rs->starting_mask_ratio = (float) want / (float) n;
  }
  if (n_masked == 0) {
    fprintf (stderr, "tessera-cli: %s\n",
             o->mode == MODE_BRANCH ? "every token was revealed by that step: nothing to draw"
                                    : "--remask picks no token: nothing to draw");
    return false;
  }
  *n_redrawn = n_masked;
  return true;
}

static int
run (int argc, char **argv, gen_mode mode)
{
  gen_options o;
  ts_model_load_params lp;
  ts_generate_params gp;
  ts_model *model = NULL;
  ts_image *src = NULL, *mask = NULL;
  ts_image_meta meta;
  ts_error err;
  char out_path[4096], path[4200];
  char *source_hash = NULL;
  ts_image_meta src_meta;
  int32_t *resume_tokens = NULL;
  ts_resume_state resume;
  int n_redrawn = 0;
  ts_result *batch_results = NULL;
  ts_status batch_status = TS_OK;
  uint32_t extend[4] = { 0 }, extended[4] = { 0 };
  uint32_t check_w, check_h;
  progress_state ps;
  ts_status st;
  int rc = 1;

  if ((rc = parse_options (argc, argv, mode, &o)) != 0)
    return rc;
  ts_image_meta_init (&src_meta);
  if (FROM_TRAJECTORY (mode)) {
    src = ts_image_load_png (o.image, &src_meta, &err);
    if (!src) {
      fprintf (stderr, "tessera-cli: --image: %s\n", err.message);
      return 1;
    }
    if (src_meta.traj_grid_h == 0 || !src_meta.traj_codes) {
      fprintf (stderr, "tessera-cli: --image: %s carries no token trajectory (only images made by "
                       "this version of Tessera do)\n", o.image);
      rc = 1;
      goto out;
    }
    resolve_from_source (&o, &src_meta);
    source_hash = file_sha256 (o.image);
  }
  if (o.out)
    snprintf (out_path, sizeof out_path, "%s", o.out);
  else
    snprintf (out_path, sizeof out_path, "tessera-%" PRIu64 ".png", o.seed);
  for (int k = 1; k <= o.batch; k++) {
    if (o.batch > 1)
      batch_path (path, sizeof path, out_path, k);
    if ((rc = check_output (o.batch > 1 ? path : out_path)) != 0)
      return rc;
  }
  rc = 1;

  if (o.preview_dir && mkdir (o.preview_dir, 0777) != 0 && errno != EEXIST) {
    fprintf (stderr, "tessera-cli: --preview-dir %s: %s\n", o.preview_dir, strerror (errno));
    return 1;
  }
  for (int i = 0; i < 4; i++)
    extend[i] = (uint32_t) o.extend[i];
  if (mode != MODE_GENERATE && !FROM_TRAJECTORY (mode)) {
    if (!(src = load_input (o.image, "--image")))
      goto out;
    source_hash = file_sha256 (o.image);
    if (mode == MODE_INPAINT && !(mask = load_input (o.mask, "--mask")))
      goto out;
  }

  /* Checked before the weights load: the size the model will draw at. */
  check_w = o.size[0];
  check_h = o.size[1];
  if (src) {
    check_w = src->width + (mode == MODE_OUTPAINT ? extend[0] + extend[2] : 0);
    check_h = src->height + (mode == MODE_OUTPAINT ? extend[1] + extend[3] : 0);
  }
  if (!check_before_load (&o, check_w, check_h, src != NULL))
    goto out;

  /* Ctrl+C cancels from here on: loading (between weight tensors), then the run. */
  {
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction (SIGINT, &sa, NULL);
  }
  ts_model_load_params_init (&lp);
  tessera_cli_show_check_log (o.backend);
  lp.backend = o.backend;
  lp.n_threads = o.threads;
  lp.precision = (ts_precision) o.precision;
  lp.prefer_fp16 = o.fp16;
  lp.progress = load_progress;
  lp.progress_data = &o;
  lp.should_abort = should_abort;
  model = ts_model_load (o.model_dir, &lp, &err);
  if (!o.quiet && isatty (STDERR_FILENO))
    fprintf (stderr, "\n");
  if (!model) {
    if (err.code == TS_ERR_CANCELLED) {
      fprintf (stderr, "tessera-cli: cancelled while loading; nothing written\n");
      rc = 130;
    } else {
      fprintf (stderr, "tessera-cli: %s\n", err.message);
    }
    goto out;
  }

  ts_generate_params_init (&gp);
  gp.prompt = o.prompt;
  gp.negative_prompt = o.negative;
  if (mode == MODE_GENERATE) {
    gp.width = o.size[0];
    gp.height = o.size[1];
    if (o.size[0] == 0 || o.size[1] == 0)
      ts_model_default_size (model, &gp.width, &gp.height);
  } else if (FROM_TRAJECTORY (mode)) {
    uint32_t f = ts_model_vae_scale_factor (model);
    gp.width = src_meta.traj_grid_w * f;
    gp.height = src_meta.traj_grid_h * f;
    if (gp.width != src->width || gp.height != src->height) {
      fprintf (stderr, "tessera-cli: --image: its %ux%u token trajectory does not fit this "
                       "model (%u px per token) and its %ux%u pixels: it was made with another "
                       "model\n", src_meta.traj_grid_w, src_meta.traj_grid_h, f, src->width,
               src->height);
      goto out;
    }
    resume_tokens = malloc ((size_t) src_meta.traj_grid_w * src_meta.traj_grid_h
                            * sizeof *resume_tokens);
    if (!resume_tokens) {
      fprintf (stderr, "tessera-cli: out of memory\n");
      goto out;
    }
    for (size_t i = 0; i < (size_t) src_meta.traj_grid_w * src_meta.traj_grid_h; i++)
      if (src_meta.traj_codes[i] < 0 || src_meta.traj_codes[i] >= ts_model_codebook_size (model)) {
        fprintf (stderr, "tessera-cli: --image: its trajectory holds code %d, outside this "
                         "model's codebook of %d: it was made with another model\n",
                 src_meta.traj_codes[i], ts_model_codebook_size (model));
        goto out;
      }
    if (!build_resume_state (&o, &src_meta, ts_model_mask_token_id (model), resume_tokens,
                             &resume, &n_redrawn))
      goto out;
    if (!o.quiet)
      fprintf (stderr, "%s: %d of %d tokens to draw\n", mode_names[mode], n_redrawn,
               (int) (src_meta.traj_grid_w * src_meta.traj_grid_h));
  } else if (ts_model_image_size (model, src->width, src->height, &gp.width, &gp.height, &err)
             != TS_OK) {
    fprintf (stderr, "tessera-cli: --image: %s\n", err.message);
    goto out;
  } else if (gp.width != src->width || gp.height != src->height) {
    fprintf (stderr, "note: the %ux%u image is resized to %ux%u (sides floored to multiples of "
                     "%u px, as the official pipeline does)\n",
             src->width, src->height, gp.width, gp.height, ts_model_size_step (model));
  }
  if (mode == MODE_OUTPAINT) {
    uint32_t step = ts_model_size_step (model);
    bool rounded = false;
    for (int i = 0; i < 4; i++) {
      uint32_t r = (extend[i] + step - 1) / step * step;
      rounded = rounded || r != extend[i];
      extended[i] = r;
    }
    if (rounded)
      fprintf (stderr, "note: --extend %u,%u,%u,%u rounded up to whole tokens of %u px: "
                       "%u,%u,%u,%u\n",
               extend[0], extend[1], extend[2], extend[3], step, extended[0], extended[1],
               extended[2], extended[3]);
    gp.width += extended[0] + extended[2];
    gp.height += extended[1] + extended[3];
  }
  gp.steps = o.steps;
  if (FROM_TRAJECTORY (mode)) {
    gp.crop_top = src_meta.crop_top;
    gp.crop_left = src_meta.crop_left;
  }
  if (o.cfg < 0.0)
    o.cfg = ts_model_default_guidance (model);
  gp.guidance = o.cfg;
  gp.temperature_start = o.temperature[0];
  gp.temperature_end = o.temperature[1];
  gp.aesthetic_score = o.aesthetic;
  gp.finish_at = o.finish_at;
  gp.on_step = on_step;
  gp.step_data = &ps;
  gp.should_abort = should_abort;

  /* A generate batch runs through ts_model_generate_batch (the images go through the
   * transformer together where memory allows); the image pipelines run image by image. */
  if (mode == MODE_GENERATE && o.batch > 1) {
    batch_results = calloc ((size_t) o.batch, sizeof *batch_results);
    if (!batch_results) {
      fprintf (stderr, "tessera-cli: out of memory\n");
      goto out;
    }
    gp.seed = o.seed;
    ps = (progress_state) { .model = model, .o = &o, .t_start = now_s (), .quiet = o.quiet,
                             .tty = isatty (STDERR_FILENO) != 0, .image_index = 1,
                             .first_step = -1 };
    if (!o.quiet)
      fprintf (stderr, "generating %d images %ux%u, %d steps, CFG %g, seeds %" PRIu64 "..%" PRIu64
                       ", backend %s, %s\n",
               o.batch, gp.width, gp.height, gp.steps, gp.guidance, o.seed,
               o.seed + (uint64_t) (o.batch - 1), ts_model_backend_name (model),
               ts_precision_name (ts_model_precision (model)));
    batch_status = ts_model_generate_batch (model, &gp, o.batch, batch_results, &err);
    if (!o.quiet && ps.tty)
      fprintf (stderr, "\n");
  }

  for (int k = 1; k <= o.batch; k++) {
    ts_result res = { 0 };
    const char *dest = out_path;

    gp.seed = o.seed + (uint64_t) (k - 1);
    if (o.batch > 1) {
      batch_path (path, sizeof path, out_path, k);
      dest = path;
    }
    if (batch_results) {
      st = batch_status;
      res = batch_results[k - 1];
      memset (&batch_results[k - 1], 0, sizeof res);
      goto have_result;
    }
    ps = (progress_state) { .model = model, .o = &o, .t_start = now_s (), .quiet = o.quiet,
                             .tty = isatty (STDERR_FILENO) != 0, .image_index = k,
                             .first_step = -1 };
    if (!o.quiet) {
      if (o.batch > 1)
        fprintf (stderr, "image %d/%d: ", k, o.batch);
      fprintf (stderr, "%s %ux%u, %d steps, CFG %g, seed %" PRIu64 ", backend %s, %s\n",
               mode == MODE_GENERATE  ? "generating"
               : mode == MODE_IMG2IMG ? "image to image"
               : mode == MODE_INPAINT ? "inpainting"
                                      : "outpainting",
               gp.width, gp.height, gp.steps, gp.guidance, gp.seed, ts_model_backend_name (model),
               ts_precision_name (ts_model_precision (model)));
    }
    switch (mode) {
    case MODE_GENERATE:
      st = ts_model_generate (model, &gp, &res, &err);
      break;
    case MODE_IMG2IMG:
      st = ts_model_img2img (model, &gp, src, o.strength, &res, &err);
      break;
    case MODE_INPAINT:
      st = ts_model_inpaint (model, &gp, src, mask, o.strength, &res, &err);
      break;
    case MODE_BRANCH:
    case MODE_REFINE:
      st = ts_model_resume (model, &gp, &resume, &res, &err);
      /* A branch keeps the history of the tokens it kept. */
      if (st == TS_OK && mode == MODE_BRANCH)
        for (int i = 0; i < res.grid_h * res.grid_w; i++)
          if (resume_tokens[i] != ts_model_mask_token_id (model)) {
            res.reveal_step[i] = src_meta.traj_reveal_step[i];
            res.reveal_prob[i] = src_meta.traj_confidence[i];
          }
      break;
    case MODE_OUTPAINT:
    default:
      gp.width = gp.height = 0;
      st = ts_model_outpaint (model, &gp, src, extend, o.strength, extended, &res, &err);
      break;
    }
    if (!o.quiet && ps.tty)
      fprintf (stderr, "\n");
  have_result:
    if (st == TS_ERR_CANCELLED) {
      fprintf (stderr, "tessera-cli: cancelled; %s\n",
               k > 1 ? "the images written so far are kept" : "nothing written");
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
    meta.precision = (char *) ts_precision_name (ts_model_precision (model));
    meta.seed = gp.seed;
    meta.steps = (uint32_t) o.steps;
    meta.finish_at = (uint32_t) o.finish_at;
    meta.width = res.image->width;
    meta.height = res.image->height;
    meta.cfg = o.cfg;
    meta.temperature_start = o.temperature[0];
    meta.temperature_end = o.temperature[1];
    meta.aesthetic_score = o.aesthetic;
    meta.mode = mode == MODE_GENERATE ? NULL : (char *) mode_names[mode];
    meta.crop_top = gp.crop_top;
    meta.crop_left = gp.crop_left;
    if (mode == MODE_INPAINT || mode == MODE_OUTPAINT) {
      int n_drawn = 0;
      for (int i = 0; i < res.grid_h * res.grid_w; i++)
        n_drawn += res.reveal_step[i] > 0;
      meta.schedule = "linear";
      meta.starting_mask_ratio = (float) n_drawn / (float) (res.grid_h * res.grid_w);
    } else if (mode == MODE_BRANCH) {
      meta.schedule = src_meta.schedule;
      meta.starting_mask_ratio = src_meta.starting_mask_ratio;
      meta.from_step = (uint32_t) o.from_step;
    } else if (mode == MODE_REFINE) {
      meta.starting_mask_ratio = resume.starting_mask_ratio;
      meta.remask = o.remask;
    }
    if (src) {
      const char *base = strrchr (o.image, '/');
      meta.source = (char *) (base ? base + 1 : o.image);
      meta.source_hash = source_hash;
      if (!FROM_TRAJECTORY (mode))
        meta.strength = o.strength;
    }
    meta.traj_grid_h = (uint32_t) res.grid_h;
    meta.traj_grid_w = (uint32_t) res.grid_w;
    meta.traj_codes = res.tokens;
    meta.traj_reveal_step = res.reveal_step;
    meta.traj_confidence = res.reveal_prob;
    if (mode == MODE_OUTPAINT) {
      meta.extend_left = extended[0];
      meta.extend_top = extended[1];
      meta.extend_right = extended[2];
      meta.extend_bottom = extended[3];
    }
    if (strcmp (dest, "-") == 0)
      st = write_png_stdout (res.image, &meta, &err);
    else
      st = ts_image_save_png (res.image, &meta, dest, &err);
    ts_result_free (&res);
    if (st != TS_OK) {
      fprintf (stderr, "tessera-cli: %s\n", err.message);
      goto out;
    }
    if (!batch_results || k == o.batch) {
      ts_model_stats s;
      ts_model_get_stats (model, &s);
      if (!o.quiet)
        fprintf (stderr, "text encoder %.2f s, transformer %.2f s (%d calls), sampler %.2f s, "
                         "VQ decode %.2f s\n",
                 s.text_encoder_s, s.transformer_s, s.n_transformer_calls, s.sampler_s,
                 s.vq_decode_s);
    }
    if (strcmp (dest, "-") != 0)
      printf ("%s\n", dest);
    fflush (stdout);
  }
  rc = 0;

out:
  free (resume_tokens);
  ts_image_meta_clear (&src_meta);
  if (batch_results)
    for (int k = 0; k < o.batch; k++)
      ts_result_free (&batch_results[k]);
  free (batch_results);
  g_free (source_hash);
  ts_model_free (model);
  ts_image_free (mask);
  ts_image_free (src);
  return rc;
}

int
tessera_cli_generate (int argc, char **argv)
{
  return run (argc, argv, MODE_GENERATE);
}

int
tessera_cli_img2img (int argc, char **argv)
{
  return run (argc, argv, MODE_IMG2IMG);
}

int
tessera_cli_inpaint (int argc, char **argv)
{
  return run (argc, argv, MODE_INPAINT);
}

int
tessera_cli_outpaint (int argc, char **argv)
{
  return run (argc, argv, MODE_OUTPAINT);
}

int
tessera_cli_branch (int argc, char **argv)
{
  return run (argc, argv, MODE_BRANCH);
}

int
tessera_cli_refine (int argc, char **argv)
{
  return run (argc, argv, MODE_REFINE);
}
