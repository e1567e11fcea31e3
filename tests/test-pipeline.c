/* SPDX-License-Identifier: MIT
 *
 * Pipeline tests on the golden set's tiny model (fast on the CPU), through the public API:
 * generation is reproducible per seed and differs across seeds, inpainting changes only
 * the tokens under the mask, cancellation stops with TS_ERR_CANCELLED, sizes the model
 * cannot take are refused with a message naming what it can take, over-long prompts are
 * flagged, and the pipeline_replay golden case passes on both CPU paths.
 */
#include "devkit/golden/ts-golden.h"
#include "pipeline/ts-pipeline.h"
#include "model/ts-safetensors.h"
#include "devkit/ts-st-writer.h"

#include <glib.h>
#include <stdlib.h>
#include <unistd.h>
#include <math.h>
#include <string.h>

static char *model_dir;
static char *golden_dir;

static ts_model *
load_model (const char *backend)
{
  ts_model_load_params lp;
  ts_error err;
  ts_model *m;

  ts_model_load_params_init (&lp);
  lp.backend = backend;
  m = ts_model_load (model_dir, &lp, &err);
  if (!m)
    g_error ("cannot load %s: %s", model_dir, err.message);
  return m;
}

static void
params_small (ts_generate_params *p, uint64_t seed)
{
  ts_generate_params_init (p);
  p->prompt = "a red fox in the snow, photo";
  p->negative_prompt = "blurry";
  p->width = 256;
  p->height = 256;
  p->steps = 6;
  p->seed = seed;
}

static bool
skip_without_golden (void)
{
  if (!model_dir) {
    g_test_skip ("golden folder absent");
    return true;
  }
  return false;
}

static void
test_generate_reproducible (void)
{
  ts_model *m;
  ts_generate_params p;
  ts_result a = { 0 }, b = { 0 }, c = { 0 };
  ts_error err;
  int n;

  if (skip_without_golden ())
    return;
  m = load_model ("cpu");
  params_small (&p, 42);
  g_assert_cmpint (ts_model_generate (m, &p, &a, &err), ==, TS_OK);
  g_assert_cmpint (ts_model_generate (m, &p, &b, &err), ==, TS_OK);
  p.seed = 43;
  g_assert_cmpint (ts_model_generate (m, &p, &c, &err), ==, TS_OK);

  n = a.grid_h * a.grid_w;
  g_assert_cmpint (a.grid_h, ==, 16);
  g_assert_cmpint (a.grid_w, ==, 16);
  for (int i = 0; i < n; i++) {
    g_assert_cmpint (a.tokens[i], >=, 0);
    g_assert_cmpint (a.tokens[i], <, ts_model_codebook_size (m));
  }
  g_assert_cmpmem (a.tokens, n * sizeof (int32_t), b.tokens, n * sizeof (int32_t));
  g_assert_cmpmem (a.image->pixels, 256 * 256 * 3, b.image->pixels, 256 * 256 * 3);
  g_assert_true (memcmp (a.tokens, c.tokens, n * sizeof (int32_t)) != 0);
  ts_result_free (&a);
  ts_result_free (&b);
  ts_result_free (&c);
  ts_model_free (m);
}

typedef struct {
  int calls;
  int last_masked;
  int cancel_after;
  bool monotone;
} step_log;

static void
count_steps (void *user_data, const ts_step_info *info)
{
  step_log *l = user_data;
  if (l->calls > 0 && info->n_masked > l->last_masked)
    l->monotone = false;
  g_assert_cmpint (info->step, ==, l->calls);
  l->last_masked = info->n_masked;
  l->calls++;
}

static bool
cancel_when_told (void *user_data)
{
  step_log *l = user_data;
  return l->cancel_after >= 0 && l->calls >= l->cancel_after;
}

static void
test_steps_and_cancel (void)
{
  ts_model *m;
  ts_generate_params p;
  ts_result r = { 0 };
  step_log log = { .cancel_after = -1, .monotone = true };
  ts_error err;

  if (skip_without_golden ())
    return;
  m = load_model ("cpu");
  params_small (&p, 7);
  p.on_step = count_steps;
  p.step_data = &log;
  p.should_abort = cancel_when_told;
  p.abort_data = &log;
  g_assert_cmpint (ts_model_generate (m, &p, &r, &err), ==, TS_OK);
  g_assert_cmpint (log.calls, ==, p.steps);
  g_assert_true (log.monotone);
  g_assert_cmpint (log.last_masked, ==, 0);
  ts_result_free (&r);

  log = (step_log) { .cancel_after = 2, .monotone = true };
  g_assert_cmpint (ts_model_generate (m, &p, &r, &err), ==, TS_ERR_CANCELLED);
  g_assert_cmpint (err.code, ==, TS_ERR_CANCELLED);
  g_assert_cmpint (log.calls, ==, 2);
  g_assert_null (r.tokens);
  g_assert_null (r.image);
  ts_model_free (m);
}

static void
test_inpaint_only_masked (void)
{
  ts_model *m;
  ts_generate_params p;
  ts_result gen = { 0 }, inp = { 0 };
  int32_t *orig;
  ts_image *mask;
  ts_error err;
  int n, changed_inside = 0;

  if (skip_without_golden ())
    return;
  m = load_model ("cpu");
  params_small (&p, 11);
  g_assert_cmpint (ts_model_generate (m, &p, &gen, &err), ==, TS_OK);
  n = gen.grid_h * gen.grid_w;
  orig = g_new (int32_t, n);
  g_assert_cmpint (ts_model_encode (m, gen.image, orig, &err), ==, TS_OK);

  /* Repaint the left half, rows 4..11 (token cells of 16 px): a full-size mask, resized
   * to the token grid with LANCZOS as the official pipeline does. */
  mask = ts_image_new (256, 256, NULL);
  for (int y = 64; y < 192; y++)
    memset (mask->pixels + (size_t) y * 256 * 3, 255, 128 * 3);
  p.prompt = "a blue square";
  p.seed = 99;
  g_assert_cmpint (ts_model_inpaint (m, &p, gen.image, mask, 1.0, &inp, &err), ==, TS_OK);
  for (int gy = 0; gy < 16; gy++)
    for (int gx = 0; gx < 16; gx++) {
      int i = gy * 16 + gx;
      bool inside = gy >= 4 && gy < 12 && gx < 8;
      if (!inside)
        g_assert_cmpint (inp.tokens[i], ==, orig[i]);
      else
        changed_inside += inp.tokens[i] != orig[i];
    }
  g_assert_cmpint (changed_inside, >, 0);

  /* A mask that covers no token cell is refused with a message. */
  memset (mask->pixels, 0, 256 * 256 * 3);
  memset (mask->pixels, 255, 3);
  ts_result_free (&inp);
  g_assert_cmpint (ts_model_inpaint (m, &p, gen.image, mask, 1.0, &inp, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "covers no token"));
  g_assert_cmpint (ts_model_inpaint (m, &p, gen.image, mask, 0.0, &inp, &err), ==, TS_ERR_INVALID_ARG);

  ts_image_free (mask);
  g_free (orig);
  ts_result_free (&gen);
  ts_model_free (m);
}

static void
test_bad_sizes_and_long_prompt (void)
{
  ts_model *m;
  ts_generate_params p;
  ts_result r = { 0 };
  GString *longp = g_string_new ("");
  ts_error err;

  if (skip_without_golden ())
    return;
  m = load_model ("cpu");
  params_small (&p, 1);
  p.width = 250;
  g_assert_cmpint (ts_model_generate (m, &p, &r, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "multiples of 32"));
  p.width = 240; /* 15 tokens: odd, the 2x2 down/upsample cannot take it */
  g_assert_cmpint (ts_model_generate (m, &p, &r, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "multiples of 32"));

  for (int i = 0; i < 60; i++)
    g_string_append (longp, "red fox ");
  params_small (&p, 1);
  p.steps = 1;
  p.prompt = longp->str;
  g_assert_cmpint (ts_model_generate (m, &p, &r, &err), ==, TS_OK);
  g_assert_true (r.prompt_truncated);
  ts_result_free (&r);

  p.prompt = "\xff\xfe invalid";
  g_assert_cmpint (ts_model_generate (m, &p, &r, &err), ==, TS_ERR_INVALID_ARG);

  /* A guidance scale that would overflow the f32 logits is out of range, not "not finite". */
  params_small (&p, 1);
  p.guidance = 1e308;
  g_assert_cmpint (ts_model_generate (m, &p, &r, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "out of range"));
  g_string_free (longp, TRUE);
  ts_model_free (m);
}

static void
test_broken_folder (void)
{
  ts_model_load_params lp;
  ts_error err;

  ts_model_load_params_init (&lp);
  g_assert_null (ts_model_load ("/nonexistent/model", &lp, &err));
  g_assert_cmpint (err.code, <, 0);
  g_assert_nonnull (strstr (err.message, "/nonexistent/model"));
  lp.backend = "quantum";
  g_assert_null (ts_model_load ("/tmp", &lp, &err));
  g_assert_nonnull (strstr (err.message, "quantum"));
}


/* ---- a BF16 copy of the tiny model: the loader, the CPU paths and the whole pipeline on
 * bfloat16 weights (the real checkpoints come in f32, f16 and bf16). ---- */

static void
fill_bf16 (void *user_data, const char *name, ts_dtype dtype, size_t first, size_t n, void *dst)
{
  const ts_st_set *src = user_data;
  const ts_st_tensor *t = ts_st_set_find (src, name);
  float *all = g_new (float, t->n_elements);
  uint16_t *out = dst;

  g_assert_cmpint (dtype, ==, TS_DTYPE_BF16);
  g_assert_cmpint (ts_st_tensor_to_f32 (t, all, NULL), ==, TS_OK);
  for (size_t i = 0; i < n; i++)
    out[i] = ts_f32_to_bf16 (all[first + i]);
  g_free (all);
}

static void
write_bf16_component (const char *src_dir, const char *dst_dir, const char *component,
                      const char *base)
{
  g_autofree char *from = g_build_filename (src_dir, component, NULL);
  g_autofree char *to = g_build_filename (dst_dir, component, NULL);
  g_autofree char *cfg_from = g_build_filename (from, "config.json", NULL);
  g_autofree char *cfg_to = g_build_filename (to, "config.json", NULL);
  g_autofree char *file = g_strconcat (base, ".safetensors", NULL);
  g_autofree char *out = g_build_filename (to, file, NULL);
  ts_st_set *set;
  ts_st_writer_tensor *list;
  size_t n;
  ts_error err;

  g_assert_cmpint (g_mkdir_with_parents (to, 0700), ==, 0);
  g_assert_cmpint (symlink (cfg_from, cfg_to), ==, 0);
  set = ts_st_set_open (from, base, NULL, &err);
  g_assert_nonnull (set);
  n = ts_st_set_n_tensors (set);
  list = g_new0 (ts_st_writer_tensor, n);
  for (size_t i = 0; i < n; i++) {
    const ts_st_tensor *t = ts_st_set_tensor (set, i);
    list[i].name = t->name;
    list[i].dtype = TS_DTYPE_BF16;
    list[i].n_dims = t->n_dims;
    for (int d = 0; d < t->n_dims; d++)
      list[i].shape[d] = t->shape[d];
  }
  g_assert_cmpint (ts_st_write_file (out, list, n, NULL, fill_bf16, set, &err), ==, TS_OK);
  g_free (list);
  ts_st_set_free (set);
}

static void
test_bf16_weights (void)
{
  g_autofree char *tmp = NULL;
  static const char *links[] = { "model_index.json", "tokenizer", "scheduler" };
  ts_model_load_params lp;
  ts_generate_params p;
  ts_result r = { 0 }, ref = { 0 };
  ts_model *m, *m32;
  ts_error err;
  int n, same = 0;

  if (skip_without_golden ())
    return;
  tmp = g_dir_make_tmp ("tessera-bf16-XXXXXX", NULL);
  for (size_t i = 0; i < G_N_ELEMENTS (links); i++) {
    g_autofree char *from = g_build_filename (model_dir, links[i], NULL);
    g_autofree char *to = g_build_filename (tmp, links[i], NULL);
    g_assert_cmpint (symlink (from, to), ==, 0);
  }
  write_bf16_component (model_dir, tmp, "transformer", "diffusion_pytorch_model");
  write_bf16_component (model_dir, tmp, "vqvae", "diffusion_pytorch_model");
  write_bf16_component (model_dir, tmp, "text_encoder", "model");

  ts_model_load_params_init (&lp);
  lp.backend = "cpu";
  m = ts_model_load (tmp, &lp, &err);
  if (!m)
    g_error ("bf16 copy: %s", err.message);
  m32 = load_model ("cpu");
  params_small (&p, 5);
  g_assert_cmpint (ts_model_generate (m, &p, &r, &err), ==, TS_OK);
  g_assert_cmpint (ts_model_generate (m32, &p, &ref, &err), ==, TS_OK);
  n = r.grid_h * r.grid_w;
  for (int i = 0; i < n; i++) {
    g_assert_cmpint (r.tokens[i], >=, 0);
    g_assert_cmpint (r.tokens[i], <, ts_model_codebook_size (m));
    same += r.tokens[i] == ref.tokens[i];
  }
  /* bf16 keeps 8 bits of mantissa: the logits move by ~1e-2 relative, so sampling may pick
   * other codes where two are close; most of the grid must still agree. */
  g_test_message ("bf16 vs f32 weights: %d of %d tokens agree", same, n);
  g_assert_cmpint (same, >=, n / 2);
  ts_result_free (&r);
  ts_result_free (&ref);
  ts_model_free (m32);
  ts_model_free (m);

  {
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", tmp);
    g_assert_cmpint (system (cmd), ==, 0);
  }
}

typedef struct {
  int n_fail;
} report_state;

static void
report (void *ud, const char *case_name, const char *tensor, double max_abs_err, double tolerance,
        bool pass)
{
  report_state *s = ud;
  g_test_message ("%s %s: %g (tol %g) %s", case_name, tensor, max_abs_err, tolerance,
                  pass ? "ok" : "FAIL");
  if (!pass)
    s->n_fail++;
}

static void
run_replay (gconstpointer backend_name)
{
  g_autofree char *index_path = NULL;
  g_autofree char *text = NULL;
  cJSON *index;
  const cJSON *entry;
  ts_backend be;
  report_state s = { 0 };
  ts_error err;
  int n_cases = 0;

  if (skip_without_golden ())
    return;
  index_path = g_build_filename (golden_dir, "index.json", NULL);
  g_assert_true (g_file_get_contents (index_path, &text, NULL, NULL));
  index = cJSON_Parse (text);
  g_assert_cmpint (ts_backend_cpu_new (&be, strcmp (backend_name, "cpu-ref") == 0, 0, &err), ==, TS_OK);
  cJSON_ArrayForEach (entry, cJSON_GetObjectItem (index, "cases")) {
    const cJSON *kind = cJSON_GetObjectItem (entry, "kind");
    if (!cJSON_IsString (kind) || strcmp (kind->valuestring, "pipeline_replay") != 0)
      continue;
    n_cases++;
    ts_status st = ts_golden_run_pipeline_replay (golden_dir, entry, &be, report, &s, &err);
    if (st != TS_OK)
      g_test_message ("%s", err.message);
    g_assert_cmpint (st, ==, TS_OK);
  }
  g_assert_cmpint (n_cases, >, 0);
  g_assert_cmpint (s.n_fail, ==, 0);
  ts_backend_free (&be);
  cJSON_Delete (index);
}

/* ts_model_generate_batch: image k equals ts_model_generate with seed S+k, token for token
 * and pixel for pixel, and the step callback names each image of each step. */
typedef struct {
  int calls[4];
} batch_log;

static void
on_batch_step (void *user_data, const ts_step_info *info)
{
  batch_log *l = user_data;
  g_assert_cmpint (info->image, >=, 0);
  g_assert_cmpint (info->image, <, 3);
  l->calls[info->image]++;
}

static void
test_generate_batch (gconstpointer backend)
{
  ts_model *m;
  ts_generate_params p;
  ts_result batch[3], one = { 0 };
  batch_log log = { { 0 } };
  ts_model_stats stats;
  ts_error err;
  bool together = strcmp (backend, "cpu") != 0;

  if (skip_without_golden ())
    return;
  m = load_model (backend);
  params_small (&p, 1000);
  p.steps = 4;
  p.on_step = on_batch_step;
  p.step_data = &log;
  g_assert_cmpint (ts_model_generate_batch (m, &p, 3, batch, &err), ==, TS_OK);
  ts_model_get_stats (m, &stats);
  /* On cpu-ref the three images went through the transformer together: 4 forwards of
   * batch 6. The CPU fast path's GEMMs round differently with the batch's row count, so
   * there they go one at a time (12 forwards of batch 2) to stay identical. */
  g_assert_cmpint (stats.n_transformer_calls, ==, together ? 4 : 12);
  g_assert_cmpint (stats.transformer_batch, ==, together ? 6 : 2);
  for (int k = 0; k < 3; k++)
    g_assert_cmpint (log.calls[k], ==, 4);
  p.on_step = NULL;
  for (int k = 0; k < 3; k++) {
    p.seed = 1000 + (uint64_t) k;
    g_assert_cmpint (ts_model_generate (m, &p, &one, &err), ==, TS_OK);
    g_assert_cmpmem (one.tokens, 256 * sizeof (int32_t), batch[k].tokens, 256 * sizeof (int32_t));
    g_assert_cmpmem (one.image->pixels, 256 * 256 * 3, batch[k].image->pixels, 256 * 256 * 3);
    g_assert_cmpmem (one.reveal_prob, 256 * sizeof (float), batch[k].reveal_prob, 256 * sizeof (float));
    ts_result_free (&one);
  }
  g_assert_true (memcmp (batch[0].tokens, batch[1].tokens, 256 * sizeof (int32_t)) != 0);
  for (int k = 0; k < 3; k++)
    ts_result_free (&batch[k]);
  ts_model_free (m);
}

/* img2img: strength 0 gives the VQ reconstruction; strength 1 masks every token (a new
 * picture, unlike the official code), so with the same seed it is the text-to-image
 * result; in between only some tokens change. */
static void
test_img2img_strengths (void)
{
  ts_model *m;
  ts_generate_params p;
  ts_result gen = { 0 }, r = { 0 };
  int32_t *orig;
  ts_image *recon;
  ts_error err;
  int changed = 0;

  if (skip_without_golden ())
    return;
  m = load_model ("cpu");
  params_small (&p, 5);
  g_assert_cmpint (ts_model_generate (m, &p, &gen, &err), ==, TS_OK);
  orig = g_new (int32_t, 256);
  g_assert_cmpint (ts_model_encode (m, gen.image, orig, &err), ==, TS_OK);
  recon = ts_model_decode (m, orig, 16, 16, &err);
  g_assert_nonnull (recon);

  p.seed = 77;
  g_assert_cmpint (ts_model_img2img (m, &p, gen.image, 0.0, &r, &err), ==, TS_OK);
  g_assert_cmpmem (r.tokens, 256 * sizeof (int32_t), orig, 256 * sizeof (int32_t));
  g_assert_cmpmem (r.image->pixels, 256 * 256 * 3, recon->pixels, 256 * 256 * 3);
  ts_result_free (&r);

  g_assert_cmpint (ts_model_img2img (m, &p, gen.image, 0.5, &r, &err), ==, TS_OK);
  for (int i = 0; i < 256; i++)
    changed += r.tokens[i] != orig[i];
  g_assert_cmpint (changed, >, 0);
  g_assert_cmpint (changed, <, 256);
  ts_result_free (&r);

  {
    ts_result t2i = { 0 };
    g_assert_cmpint (ts_model_img2img (m, &p, gen.image, 1.0, &r, &err), ==, TS_OK);
    g_assert_cmpint (ts_model_generate (m, &p, &t2i, &err), ==, TS_OK);
    g_assert_cmpmem (r.tokens, 256 * sizeof (int32_t), t2i.tokens, 256 * sizeof (int32_t));
    ts_result_free (&t2i);
    ts_result_free (&r);
  }
  g_assert_cmpint (ts_model_img2img (m, &p, gen.image, 1.5, &r, &err), ==, TS_ERR_INVALID_ARG);
  p.width = 512;
  g_assert_cmpint (ts_model_img2img (m, &p, gen.image, 0.5, &r, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "parameters ask for"));

  ts_image_free (recon);
  g_free (orig);
  ts_result_free (&gen);
  ts_model_free (m);
}

/* Outpainting keeps the original's tokens where it was pasted, paints the border, and
 * rounds the extents up to the size step (32 px for the tiny downsampling model). */
static void
test_outpaint (void)
{
  ts_model *m;
  ts_generate_params p;
  ts_result gen = { 0 }, r = { 0 };
  const uint32_t ext[4] = { 20, 0, 32, 64 };
  uint32_t used[4];
  ts_error err;

  if (skip_without_golden ())
    return;
  m = load_model ("cpu");
  params_small (&p, 8);
  g_assert_cmpint (ts_model_generate (m, &p, &gen, &err), ==, TS_OK);
  p.width = p.height = 0;
  g_assert_cmpint (ts_model_outpaint (m, &p, gen.image, ext, 1.0, used, &r, &err), ==, TS_OK);
  g_assert_cmpuint (used[0], ==, 32);
  g_assert_cmpuint (used[1], ==, 0);
  g_assert_cmpuint (used[2], ==, 32);
  g_assert_cmpuint (used[3], ==, 64);
  g_assert_cmpuint (r.image->width, ==, 320);
  g_assert_cmpuint (r.image->height, ==, 320);
  g_assert_cmpint (r.grid_w, ==, 20);
  /* The kept region is the original pasted at (32, 0) on a grey 127 canvas, encoded as a
   * whole (the encoder sees the border, as in the official pipeline): exactly those
   * tokens, while the border is painted anew. */
  {
    ts_image *canvas = ts_image_new (320, 320, NULL);
    int32_t *ctok = g_new (int32_t, 400);
    int border_changed = 0;

    memset (canvas->pixels, 127, 320 * 320 * 3);
    for (int y = 0; y < 256; y++)
      memcpy (canvas->pixels + ((size_t) y * 320 + 32) * 3, gen.image->pixels + (size_t) y * 256 * 3,
              256 * 3);
    g_assert_cmpint (ts_model_encode (m, canvas, ctok, &err), ==, TS_OK);
    for (int y = 0; y < 20; y++)
      for (int x = 0; x < 20; x++) {
        bool kept = y < 16 && x >= 2 && x < 18;
        if (kept)
          g_assert_cmpint (r.tokens[y * 20 + x], ==, ctok[y * 20 + x]);
        else
          border_changed += r.tokens[y * 20 + x] != ctok[y * 20 + x];
      }
    g_assert_cmpint (border_changed, >, 0);
    g_free (ctok);
    ts_image_free (canvas);
  }
  {
    const uint32_t none[4] = { 0, 0, 0, 0 };
    ts_result_free (&r);
    g_assert_cmpint (ts_model_outpaint (m, &p, gen.image, none, 1.0, NULL, &r, &err), ==,
                     TS_ERR_INVALID_ARG);
  }
  ts_result_free (&gen);
  ts_model_free (m);
}

/* The state after step K, from a result's trajectory (the CLI's branch does the same). */
static void
state_after (const ts_result *r, int k, int32_t mask_id, int32_t *tokens)
{
  for (int i = 0; i < r->grid_h * r->grid_w; i++)
    tokens[i] = r->reveal_step[i] == 0 || r->reveal_step[i] <= k ? r->tokens[i] : mask_id;
}

/* Branch identity: resuming from the state after step K with the same parameters gives the
 * same tokens, pixels and trajectory; with another seed the first K steps' tokens stay and
 * the rest differ. Runs on "cpu" and on "vulkan:0" where a Vulkan device exists. */
static void
test_branch (gconstpointer backend)
{
  ts_model *m;
  ts_generate_params p;
  ts_result a = { 0 }, b = { 0 };
  int32_t tokens[256];
  ts_resume_state rs = { .tokens = tokens, .grid_h = 16, .grid_w = 16, .starting_mask_ratio = 1 };
  ts_error err;
  int kept = 0, changed = 0;

  if (skip_without_golden ())
    return;
  if (strcmp (backend, "cpu") != 0) {
    ts_vk_device_info info[4];
    int n = 0;
    if (ts_vulkan_list_devices (info, 4, &n, &err) != TS_OK || n == 0) {
      g_test_skip ("no Vulkan device");
      return;
    }
  }
  m = load_model (backend);
  params_small (&p, 31);
  p.steps = 8;
  g_assert_cmpint (ts_model_generate (m, &p, &a, &err), ==, TS_OK);
  /* Every token was masked at the start and revealed by one of the 8 steps, with a
   * probability in (0, 1]. */
  for (int i = 0; i < 256; i++) {
    g_assert_cmpint (a.reveal_step[i], >=, 1);
    g_assert_cmpint (a.reveal_step[i], <=, 8);
    g_assert_cmpfloat (a.reveal_prob[i], >, 0);
    g_assert_cmpfloat (a.reveal_prob[i], <=, 1.0f + 1e-6f);
  }
  for (int k = 0; k < 8; k += 3) {
    state_after (&a, k, ts_model_mask_token_id (m), tokens);
    rs.start_step = k;
    g_assert_cmpint (ts_model_resume (m, &p, &rs, &b, &err), ==, TS_OK);
    g_assert_cmpmem (a.tokens, sizeof tokens, b.tokens, sizeof tokens);
    g_assert_cmpmem (a.image->pixels, 256 * 256 * 3, b.image->pixels, 256 * 256 * 3);
    for (int i = 0; i < 256; i++)
      if (a.reveal_step[i] > k) {
        g_assert_cmpint (b.reveal_step[i], ==, a.reveal_step[i]);
        g_assert_cmpfloat (b.reveal_prob[i], ==, a.reveal_prob[i]);
      }
    ts_result_free (&b);
  }
  /* Another seed from step 3: the tokens of steps 1..3 stay, later ones change. */
  state_after (&a, 3, ts_model_mask_token_id (m), tokens);
  rs.start_step = 3;
  p.seed = 32;
  g_assert_cmpint (ts_model_resume (m, &p, &rs, &b, &err), ==, TS_OK);
  for (int i = 0; i < 256; i++) {
    if (a.reveal_step[i] <= 3) {
      g_assert_cmpint (b.tokens[i], ==, a.tokens[i]);
      kept++;
    } else {
      changed += b.tokens[i] != a.tokens[i];
    }
  }
  g_assert_cmpint (kept, >, 0);
  g_assert_cmpint (changed, >, 0);
  ts_result_free (&b);
  /* Nothing masked: refused. */
  memcpy (tokens, a.tokens, sizeof tokens);
  g_assert_cmpint (ts_model_resume (m, &p, &rs, &b, &err), ==, TS_ERR_INVALID_ARG);
  ts_result_free (&a);
  ts_model_free (m);
}

/* Each step's probability grid, kept for the tokens that step revealed. */
typedef struct {
  int32_t mask_id;
  int32_t prev[256];
  float prob[256];
  int n_checked;
} StepProbs;

static void
keep_step_probs (void *data, const ts_step_info *info)
{
  StepProbs *sp = data;

  for (int i = 0; i < 256; i++) {
    if (sp->prev[i] == sp->mask_id && info->tokens[i] != sp->mask_id) {
      sp->prob[i] = info->probability[i];
      sp->n_checked++;
    }
    sp->prev[i] = info->tokens[i];
  }
}

/* A steering plan for the test: at step `at` (0-based), these changes. */
typedef struct {
  int at;
  const char *prompt;
  double guidance;
  int calls;
  int first_step;
} SteerPlan;

static bool
steer_plan (void *data, int step, ts_steer_change *change)
{
  SteerPlan *plan = data;

  if (plan->calls++ == 0)
    plan->first_step = step;
  if (step != plan->at)
    return false;
  change->prompt = plan->prompt;
  change->guidance = plan->guidance;
  return true;
}

/* Steering: a change at step k is, token for token, a branch from the state after step k
 * with the new parameters; a steer that changes nothing is the unsteered run; a change out
 * of range stops the run with a named error. */
static void
test_steer (void)
{
  ts_model *m;
  ts_generate_params p;
  ts_result a = { 0 }, b = { 0 }, c = { 0 };
  int32_t tokens[256];
  ts_resume_state rs = { .tokens = tokens, .grid_h = 16, .grid_w = 16, .starting_mask_ratio = 1 };
  SteerPlan plan = { .at = 3, .guidance = NAN };
  ts_error err;
  int differ = 0;

  if (skip_without_golden ())
    return;
  m = load_model ("cpu");
  params_small (&p, 41);
  p.steps = 8;
  {
    /* The step callback's probabilities are what the trajectory records. */
    StepProbs sp = { .mask_id = ts_model_mask_token_id (m) };

    for (int i = 0; i < 256; i++)
      sp.prev[i] = sp.mask_id;
    p.on_step = keep_step_probs;
    p.step_data = &sp;
    g_assert_cmpint (ts_model_generate (m, &p, &a, &err), ==, TS_OK);
    p.on_step = NULL;
    g_assert_cmpint (sp.n_checked, ==, 256);
    g_assert_cmpmem (sp.prob, sizeof sp.prob, a.reveal_prob, sizeof sp.prob);
  }

  /* Called before each step but the first; nothing changed: the same image. */
  p.steer = steer_plan;
  p.steer_data = &plan;
  g_assert_cmpint (ts_model_generate (m, &p, &b, &err), ==, TS_OK);
  g_assert_cmpint (plan.calls, ==, 7);
  g_assert_cmpint (plan.first_step, ==, 1);
  g_assert_cmpmem (a.tokens, sizeof tokens, b.tokens, sizeof tokens);
  g_assert_cmpmem (a.image->pixels, 256 * 256 * 3, b.image->pixels, 256 * 256 * 3);
  ts_result_free (&b);

  /* A new prompt and guidance from step 4 (0-based 3). */
  plan = (SteerPlan) { .at = 3, .prompt = "a completely different prompt", .guidance = 2.5 };
  g_assert_cmpint (ts_model_generate (m, &p, &b, &err), ==, TS_OK);
  for (int i = 0; i < 256; i++) {
    if (a.reveal_step[i] <= 3)
      g_assert_cmpint (b.tokens[i], ==, a.tokens[i]);
    differ += b.tokens[i] != a.tokens[i];
  }
  g_assert_cmpint (differ, >, 0);
  /* ... which is the branch from the state after step 3 with those parameters. */
  state_after (&a, 3, ts_model_mask_token_id (m), tokens);
  rs.start_step = 3;
  {
    ts_generate_params q = p;
    q.steer = NULL;
    q.prompt = plan.prompt;
    q.guidance = plan.guidance;
    g_assert_cmpint (ts_model_resume (m, &q, &rs, &c, &err), ==, TS_OK);
  }
  g_assert_cmpmem (b.tokens, sizeof tokens, c.tokens, sizeof tokens);
  g_assert_cmpmem (b.image->pixels, 256 * 256 * 3, c.image->pixels, 256 * 256 * 3);
  for (int i = 0; i < 256; i++)
    g_assert_cmpint (b.reveal_step[i], ==, a.reveal_step[i] <= 3 ? a.reveal_step[i] : c.reveal_step[i]);
  ts_result_free (&b);
  ts_result_free (&c);

  /* Guidance turned off mid-run (one row instead of two) works too. */
  plan = (SteerPlan) { .at = 5, .guidance = 1.0 };
  g_assert_cmpint (ts_model_generate (m, &p, &b, &err), ==, TS_OK);
  for (int i = 0; i < 256; i++)
    if (a.reveal_step[i] <= 5)
      g_assert_cmpint (b.tokens[i], ==, a.tokens[i]);
  ts_result_free (&b);

  /* Out of range: refused, naming the step. */
  plan = (SteerPlan) { .at = 2, .guidance = 1e9 };
  g_assert_cmpint (ts_model_generate (m, &p, &b, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "step 3"));
  ts_result_free (&a);
  ts_model_free (m);
}

/* Loading is cancellable between weight tensors: an abort hook that says stop on its
 * n-th poll fails the load with TS_ERR_CANCELLED at any point (ASan checks that what was
 * loaded is freed); one that never does is polled once per tensor and more. */
static int abort_polls, abort_at;

static bool
abort_after (void *data)
{
  (void) data;
  return ++abort_polls >= abort_at;
}

static void
test_load_cancel (void)
{
  ts_model_load_params lp;
  ts_model *m;
  ts_error err;
  int total;

  if (skip_without_golden ())
    return;
  ts_model_load_params_init (&lp);
  lp.backend = "cpu";
  lp.should_abort = abort_after;
  abort_polls = 0;
  abort_at = 1 << 30;
  m = ts_model_load (model_dir, &lp, &err);
  g_assert_nonnull (m);
  ts_model_free (m);
  total = abort_polls;
  g_assert_cmpint (total, >, 100); /* the tiny model has hundreds of tensors */
  for (int at = 1; at <= total; at += total / 7 + 1) {
    abort_polls = 0;
    abort_at = at;
    m = ts_model_load (model_dir, &lp, &err);
    g_assert_null (m);
    g_assert_cmpint (err.code, ==, TS_ERR_CANCELLED);
    g_assert_nonnull (strstr (err.message, "cancelled"));
  }
  /* The hook is cleared after a load: a later one on this thread does not see it. */
  lp.should_abort = NULL;
  m = ts_model_load (model_dir, &lp, &err);
  g_assert_nonnull (m);
  ts_model_free (m);
}

/* A size over the memory limit is refused by name before any work (the app and the API
 * get the CLI's check too). */
static void
test_memory_refused (void)
{
  ts_model *m;
  ts_generate_params p;
  ts_result r = { 0 };
  ts_error err;

  if (skip_without_golden ())
    return;
  m = load_model ("cpu");
  params_small (&p, 1);
  p.width = p.height = 2048;
  g_setenv ("TESSERA_MAX_MEMORY", "64M", TRUE);
  g_assert_cmpint (ts_model_generate (m, &p, &r, &err), ==, TS_ERR_NOMEM);
  g_unsetenv ("TESSERA_MAX_MEMORY");
  g_assert_nonnull (strstr (err.message, "size 2048x2048 needs about"));
  g_assert_nonnull (strstr (err.message, "TESSERA_MAX_MEMORY"));
  g_assert_null (r.tokens);
  ts_model_free (m);
}

int
main (int argc, char **argv)
{
  const char *g = g_getenv ("TESSERA_GOLDEN_DIR");
  char dir[4096];

  g_test_init (&argc, &argv, NULL);
  if (g && g_file_test (g, G_FILE_TEST_IS_DIR)
      && ts_golden_pipeline_model_dir (g, dir, sizeof dir, NULL) == TS_OK) {
    golden_dir = g_strdup (g);
    model_dir = g_strdup (dir);
  }
  g_test_add_func ("/pipeline/generate-reproducible", test_generate_reproducible);
  g_test_add_func ("/pipeline/steps-and-cancel", test_steps_and_cancel);
  g_test_add_func ("/pipeline/inpaint-only-masked", test_inpaint_only_masked);
  g_test_add_data_func ("/pipeline/generate-batch/cpu", "cpu", test_generate_batch);
  g_test_add_data_func ("/pipeline/generate-batch/cpu-ref", "cpu-ref", test_generate_batch);
  g_test_add_func ("/pipeline/img2img-strengths", test_img2img_strengths);
  g_test_add_func ("/pipeline/outpaint", test_outpaint);
  g_test_add_func ("/pipeline/load-cancel", test_load_cancel);
  g_test_add_func ("/pipeline/memory-refused", test_memory_refused);
  g_test_add_data_func ("/pipeline/branch/cpu", "cpu", test_branch);
  g_test_add_data_func ("/pipeline/branch/vulkan", "vulkan:0", test_branch);
  g_test_add_func ("/pipeline/steer", test_steer);
  g_test_add_func ("/pipeline/bad-sizes-long-prompt", test_bad_sizes_and_long_prompt);
  g_test_add_func ("/pipeline/broken-folder", test_broken_folder);
  g_test_add_func ("/pipeline/bf16-weights", test_bf16_weights);
  g_test_add_data_func ("/pipeline/golden-replay/cpu", "cpu", run_replay);
  g_test_add_data_func ("/pipeline/golden-replay/cpu-ref", "cpu-ref", run_replay);
  return g_test_run ();
}
