/* SPDX-License-Identifier: MIT
 *
 * demo-eval — the demo model's quality score, computed in C without Python. For each
 * caption of a prompt list and each of N fixed seeds it generates an image with the engine
 * (or, with --images, reads the PNGs that a captions.tsv lists, e.g. ground-truth renders
 * from tools/demo-model/make_dataset.py), judges it with demo-checker and prints one line
 * per image and a table of accuracy per attribute. --require-all makes it exit 1 unless
 * every image gets every stated attribute right (the CI test's criterion).
 */
#include "tessera.h"
#include "demo-checker.h"
#include "cli-options.h"

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void
usage (FILE *out, const cli_option *opts)
{
  fputs ("Usage: demo-eval --model DIR --prompts FILE [--seeds N] [--size WxH] [--steps N]\n"
         "                 [--cfg G] [--temperature A,B] [--threads N] [--backend NAME]\n"
         "                 [--precision auto|fp32|bf16] [--save DIR] [--require-all]\n"
         "       demo-eval --images DIR [--require-all]\n"
         "                 (scores DIR/captions.tsv: NAME<TAB>CAPTION)\n"
         "\n",
         out);
  cli_print_options (out, opts);
}

enum { T_COLOUR, T_SHAPE, T_SIZE, T_POSITION, T_BACKGROUND, T_ALL, T_N };

typedef struct {
  int single[T_N], n_single;
  int two_colour, two_shape, two_both, two_background, n_two;
  int n_perfect, n_images;
} tally;

static void
describe (const demo_scene *s, char *buf, size_t size)
{
  int n = snprintf (buf, size, "bg %s:", demo_colour_name (s->background));
  for (int i = 0; i < s->n_objects && n > 0 && (size_t) n < size; i++) {
    const demo_object *o = &s->objects[i];
    n += snprintf (buf + n, size - (size_t) n, " [%s %s %s %s fill %.2f sol %.2f]",
                   demo_size_name (o->size), demo_colour_name (o->colour),
                   demo_shape_name (o->shape), demo_position_name (o->position), o->fill,
                   o->solidity);
  }
}

/* Scores one image; returns true when every stated attribute is right. */
static bool
judge (tally *t, const char *caption, const char *label, const ts_image *img)
{
  demo_scene want, found;
  demo_score s;
  char desc[512];
  bool perfect;

  if (!demo_scene_parse (caption, &want)) {
    fprintf (stderr, "demo-eval: cannot parse caption \"%s\"\n", caption);
    return false;
  }
  if (!demo_image_analyse (img->pixels, (int) img->width, (int) img->height, &found)) {
    fprintf (stderr, "demo-eval: out of memory\n");
    return false;
  }
  demo_scene_score (&want, &found, &s);
  t->n_images++;
  if (want.n_objects == 1) {
    const bool ok[T_N] = { s.colour, s.shape, s.size, s.position, s.background,
                           s.colour && s.shape && s.size && s.position };
    for (int k = 0; k < T_N; k++)
      t->single[k] += ok[k];
    t->n_single++;
    perfect = ok[T_ALL] && s.background;
  } else {
    t->two_colour += s.colour;
    t->two_shape += s.shape;
    t->two_both += s.both;
    t->two_background += s.background;
    t->n_two++;
    perfect = s.both && s.background;
  }
  t->n_perfect += perfect;
  describe (&found, desc, sizeof desc);
  printf ("%-4s %-8s %-58s -> %s\n", perfect ? "ok" : "FAIL", label, caption, desc);
  return perfect;
}

static void
row (const char *name, int ok, int n)
{
  if (n > 0)
    printf ("  %-26s %4d / %-4d %6.1f %%\n", name, ok, n, 100.0 * ok / n);
}

static void
print_table (const tally *t)
{
  printf ("\n  %-26s %11s %8s\n", "attribute", "correct", "accuracy");
  row ("one object: colour", t->single[T_COLOUR], t->n_single);
  row ("one object: shape", t->single[T_SHAPE], t->n_single);
  row ("one object: size", t->single[T_SIZE], t->n_single);
  row ("one object: position", t->single[T_POSITION], t->n_single);
  row ("one object: background", t->single[T_BACKGROUND], t->n_single);
  row ("one object: all four", t->single[T_ALL], t->n_single);
  row ("two objects: colours", t->two_colour, t->n_two);
  row ("two objects: shapes", t->two_shape, t->n_two);
  row ("two objects: both right", t->two_both, t->n_two);
  row ("two objects: background", t->two_background, t->n_two);
  row ("images fully right", t->n_perfect, t->n_images);
}

static char *
trim (char *s)
{
  size_t n = strlen (s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
    s[--n] = '\0';
  return s;
}

static int
score_images (const char *dir, tally *t)
{
  char path[4096], line[1024];
  FILE *f;
  int failures = 0;

  snprintf (path, sizeof path, "%s/captions.tsv", dir);
  if (!(f = fopen (path, "r"))) {
    fprintf (stderr, "demo-eval: cannot open %s\n", path);
    return -1;
  }
  while (fgets (line, sizeof line, f)) {
    char *tab = strchr (trim (line), '\t');
    ts_error err = { 0 };
    ts_image *img;

    if (!tab)
      continue;
    *tab = '\0';
    snprintf (path, sizeof path, "%s/%s", dir, line);
    if (!(img = ts_image_load_png (path, NULL, &err))) {
      fprintf (stderr, "demo-eval: %s: %s\n", path, err.message);
      failures++;
      continue;
    }
    failures += !judge (t, tab + 1, line, img);
    ts_image_free (img);
  }
  fclose (f);
  return failures;
}

static int
score_generated (const char *model_dir, const char *prompts, ts_generate_params *base,
                 const ts_model_load_params *lp, int n_seeds, const char *save_dir, tally *t)
{
  char line[1024], label[32], path[4096];
  ts_error err = { 0 };
  ts_model *model;
  FILE *f;
  int failures = 0, n_gen = 0;
  double seconds = 0.0;
  ts_precision precision;

  if (!(model = ts_model_load (model_dir, lp, &err))) {
    fprintf (stderr, "demo-eval: %s\n", err.message);
    return -1;
  }
  if (!(f = fopen (prompts, "r"))) {
    fprintf (stderr, "demo-eval: cannot open %s\n", prompts);
    ts_model_free (model);
    return -1;
  }
  if (base->guidance < 0.0)
    base->guidance = ts_model_default_guidance (model);
  for (int index = 0; fgets (line, sizeof line, f); index++) {
    if (!*trim (line) || line[0] == '#')
      continue;
    for (int seed = 1; seed <= n_seeds; seed++) {
      ts_generate_params p = *base;
      ts_result r = { 0 };
      struct timespec a, b;

      p.prompt = line;
      p.seed = (uint64_t) seed;
      clock_gettime (CLOCK_MONOTONIC, &a);
      if (ts_model_generate (model, &p, &r, &err) != TS_OK) {
        fprintf (stderr, "demo-eval: \"%s\": %s\n", line, err.message);
        failures++;
        continue;
      }
      clock_gettime (CLOCK_MONOTONIC, &b);
      seconds += (double) (b.tv_sec - a.tv_sec) + 1e-9 * (double) (b.tv_nsec - a.tv_nsec);
      n_gen++;
      snprintf (label, sizeof label, "#%d s%d", index, seed);
      failures += !judge (t, line, label, r.image);
      if (save_dir) {
        snprintf (path, sizeof path, "%s/%03d-s%d.png", save_dir, index, seed);
        if (ts_image_save_png (r.image, NULL, path, &err) != TS_OK)
          fprintf (stderr, "demo-eval: %s\n", err.message);
      }
      ts_result_free (&r);
    }
  }
  fclose (f);
  precision = ts_model_precision (model);
  ts_model_free (model);
  if (n_gen > 0)
    printf ("\n  %d images, %.2f s per image (%d steps, cfg %g, %ux%u, %s)\n", n_gen,
            seconds / n_gen, base->steps, base->guidance, base->width, base->height,
            ts_precision_name (precision));
  return failures;
}

int
main (int argc, char **argv)
{
  const char *model_dir = NULL, *prompts = NULL, *images = NULL, *save_dir = NULL;
  ts_generate_params gp;
  ts_model_load_params lp;
  tally t = { 0 };
  static const char *const precisions[] = { "auto", "fp32", "bf16", NULL };
  int n_seeds = 1, failures, precision = TS_PRECISION_AUTO;
  bool require_all = false;
  uint32_t size[2] = { 128, 128 };
  double temperature[2];
  const cli_option opts[] = {
    { "--model", CLI_STRING, &model_dir, "DIR", .help = "the model folder" },
    { "--prompts", CLI_STRING, &prompts, "FILE",
      .help = "one caption a line; empty lines and # comments are skipped" },
    { "--images", CLI_STRING, &images, "DIR",
      .help = "score DIR/captions.tsv's PNGs instead of generating" },
    { "--save", CLI_STRING, &save_dir, "DIR", .help = "also write each generated image" },
    { "--seeds", CLI_INT, &n_seeds, "N", .help = "seeds 1 to N per caption (default 1)",
      .min = 1, .max = 1000000 },
    { "--size", CLI_SIZE, size, "WxH", .help = "image size (default 128x128)" },
    { "--steps", CLI_INT, &gp.steps, "N", .help = "sampling steps (default 48)", .min = 1,
      .max = 1000 },
    { "--cfg", CLI_DOUBLE, &gp.guidance, "G",
      .help = "classifier-free guidance (default: the model's)", .min = 0, .max = INFINITY },
    { "--temperature", CLI_LIST, temperature, "A,B",
      .help = "sampling temperature from A to B (default 2,0)", .n = 2, .min = 0,
      .max = INFINITY },
    { "--threads", CLI_INT, &lp.n_threads, "N", .help = "CPU threads (default: every core)",
      .min = 0, .max = 4096 },
    { "--backend", CLI_STRING, &lp.backend, "NAME", .help = "the engine backend (default cpu)" },
    { "--precision", CLI_CHOICE, &precision, "auto|fp32|bf16", .choices = precisions,
      .help = "the linear layers' arithmetic (default auto; docs/precision.md)" },
    { "--require-all", CLI_FLAG, &require_all, NULL,
      .help = "exit 1 unless every image gets every stated attribute right" },
    { .name = NULL },
  };

  ts_generate_params_init (&gp);
  gp.guidance = -1.0; /* the model's, unless --cfg */
  temperature[0] = gp.temperature_start;
  temperature[1] = gp.temperature_end;
  ts_model_load_params_init (&lp);
  lp.backend = "cpu";
  switch (cli_parse ("demo-eval", opts, argc, argv, NULL)) {
  case CLI_PARSED:
    break;
  case CLI_HELP:
    usage (stdout, opts);
    return 0;
  case CLI_BAD:
    return 2;
  }
  lp.precision = (ts_precision) precision;
  gp.width = size[0];
  gp.height = size[1];
  gp.temperature_start = temperature[0];
  gp.temperature_end = temperature[1];
  if (save_dir && mkdir (save_dir, 0755) != 0 && errno != EEXIST) {
    fprintf (stderr, "demo-eval: cannot create '%s': %s\n", save_dir, strerror (errno));
    return 1;
  }
  if (images)
    failures = score_images (images, &t);
  else if (model_dir && prompts && n_seeds > 0)
    failures = score_generated (model_dir, prompts, &gp, &lp, n_seeds, save_dir, &t);
  else {
    usage (stderr, opts);
    return 2;
  }
  if (failures < 0)
    return 2;
  print_table (&t);
  return require_all && (failures > 0 || t.n_images == 0) ? 1 : 0;
}
