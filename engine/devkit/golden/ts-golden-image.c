/* SPDX-License-Identifier: MIT
 *
 * ts-golden-image — the `img2img_replay` and `inpaint_replay` golden runners: the official
 * Img2ImgPipeline and InpaintPipeline end to end (inpaint also in the outpaint-shaped
 * case), replayed through ts_pipeline_img2img / ts_pipeline_inpaint with the random draws
 * the reference recorded: img2img's add_noise uniforms and every step's draws. Checked
 * exactly, as the golden README asks:
 *   - in.image: the LANCZOS resize of in.image_uint8 to the generation size (as uint8/255);
 *   - mid.image_tokens: the VQ codes of the whole image;
 *   - img2img: add_noise.mask_ratio (bits), add_noise.mask and add_noise.sample_out;
 *   - inpaint: mid.mask_lanczos (the mask resized to the token grid, /255),
 *     mid.mask_tokens and mid.starting_mask_ratio (bits);
 *   - stepS.sample_in (the grid the loop starts from) and, each step,
 *     pred_original_sample and prev_sample; out.final_latents; out.image_uint8 (±1 only
 *     at a rounding boundary).
 * stepS.model_output (the CFG-combined logits of the first step) is held to atol 1e-4 and
 * out.image_float to 5e-5, unless the entry's tolerance table names them. Not compared:
 * mid.vq_latents (torch's channels-last GroupNorm put 2e-3 of error into them; the tokens
 * they give are checked), and the text conditioning, micro-conditions and position ids
 * (mid.encoder_hidden_states, mid.pooled_projections, mid.micro_conds, mid.img_ids), which
 * the clip_text and transformer cases check; here they are covered through the exact
 * per-step tokens.
 *
 * The cases name their transformer ("model") apart from the other components
 * ("other_modules": "models/tiny-meissonic/{vqvae,text_encoder,tokenizer,scheduler}"), so
 * the runner assembles a model folder of symbolic links in a temporary directory.
 */
#include "devkit/golden/ts-golden.h"

#include "core/ts-common.h"
#include "devkit/golden/ts-golden-case.h"
#include "pipeline/ts-pipeline.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  ts_golden_replay r;
  const cJSON *entry;
  bool img2img;
  float *add_noise_u;
  bool checked_model_output;
} image_replay;

/* ---- the model folder ---- */

typedef struct {
  char dir[4096];
  char links[8][4352];
  int n_links;
} temp_model;

static void
temp_model_remove (temp_model *t)
{
  for (int i = 0; i < t->n_links; i++)
    unlink (t->links[i]);
  if (t->dir[0])
    rmdir (t->dir);
}

static ts_status
temp_link (temp_model *t, const char *target, const char *name, ts_error *err)
{
  char path[sizeof t->links[0]];
  int n = snprintf (path, sizeof path, "%s/%s", t->dir, name);

  if (n < 0 || (size_t) n >= sizeof path)
    return ts_error_set (err, TS_ERR_IO, "golden: path too long");
  if (symlink (target, path) != 0)
    return ts_error_set (err, TS_ERR_IO, "golden: cannot link %s: %s", path, strerror (errno));
  memcpy (t->links[t->n_links++], path, (size_t) n + 1);
  return TS_OK;
}

/* golden/<model> as transformer/, each of golden/<prefix>/{a,b,...} as itself, and the
 * prefix's model_index.json. */
static ts_status
temp_model_build (temp_model *t, const char *golden_dir, const cJSON *entry, const char *case_name,
                  ts_error *err)
{
  const char *model = ts_golden_json_string (entry, "model");
  const char *others = ts_golden_json_string (entry, "other_modules");
  const char *brace = others ? strchr (others, '{') : NULL;
  char prefix[4096], target[8192], list[256];
  const char *tmp = getenv ("TMPDIR");
  ts_status st;

  memset (t, 0, sizeof *t);
  if (!model || !brace || brace == others || brace[-1] != '/' || !strchr (brace, '}'))
    return ts_error_set (err, TS_ERR_FORMAT,
                         "%s: index entry lacks \"model\" or \"other_modules\" of the form "
                         "\"dir/{a,b}\"",
                         case_name);
  if (snprintf (list, sizeof list, "%.*s", (int) (strchr (brace, '}') - brace - 1), brace + 1)
      >= (int) sizeof list)
    return ts_error_set (err, TS_ERR_FORMAT, "%s: \"other_modules\" too long", case_name);
  snprintf (t->dir, sizeof t->dir, "%s/tessera-golden-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  if (!mkdtemp (t->dir)) {
    t->dir[0] = '\0';
    return ts_error_set (err, TS_ERR_IO, "golden: cannot make a temporary folder: %s",
                         strerror (errno));
  }
  /* Absolute targets, so the links work whatever the working directory. */
  {
    char abs_golden[4096];
    if (!realpath (golden_dir, abs_golden))
      return ts_error_set (err, TS_ERR_IO, "golden: %s: %s", golden_dir, strerror (errno));
    int n1 = snprintf (prefix, sizeof prefix, "%s/%.*s", abs_golden, (int) (brace - others - 1),
                       others);
    int n2 = snprintf (target, sizeof target, "%s/%s", abs_golden, model);
    if (n1 < 0 || n1 >= (int) sizeof prefix || n2 < 0 || n2 >= (int) sizeof target)
      return ts_error_set (err, TS_ERR_FORMAT, "%s: model paths too long", case_name);
    if ((st = temp_link (t, target, "transformer", err)) != TS_OK)
      return st;
  }
  if (snprintf (target, sizeof target, "%s/model_index.json", prefix) >= (int) sizeof target)
    return ts_error_set (err, TS_ERR_FORMAT, "%s: model paths too long", case_name);
  if ((st = temp_link (t, target, "model_index.json", err)) != TS_OK)
    return st;
  for (char *save = NULL, *name = strtok_r (list, ",", &save); name;
       name = strtok_r (NULL, ",", &save)) {
    if (t->n_links >= 8 || strcmp (name, "transformer") == 0)
      return ts_error_set (err, TS_ERR_FORMAT, "%s: bad \"other_modules\"", case_name);
    if (snprintf (target, sizeof target, "%s/%s", prefix, name) >= (int) sizeof target)
      return ts_error_set (err, TS_ERR_FORMAT, "%s: model paths too long", case_name);
    if ((st = temp_link (t, target, name, err)) != TS_OK)
      return st;
  }
  return TS_OK;
}

/* ---- checks ---- */

static void
check (image_replay *ir, const char *name, long bad)
{
  /* bf16: counts of differing tokens are reported, not required (the VQ encoder's
   * attention runs bf16 linear layers); a missing tensor (-1) still fails */
  bool pass = bad == 0 || (ir->r.bf16 && bad > 0);
  ir->r.report (ir->r.ud, ir->r.case_name, name, (double) bad, NAN, pass);
  if (!pass)
    ir->r.n_bad_checks++;
}

/* Mismatches between n floats and the float tensor `name`, bit for bit; -1 when absent. */
static long
count_float_mismatch (image_replay *ir, const char *name, const float *got, size_t n)
{
  const ts_st_tensor *t = ts_safetensors_find (ir->r.st, name);
  float *want;
  long bad = 0;

  if (!t || t->n_elements != n || !(want = malloc (n * sizeof *want)))
    return -1;
  if (ts_st_tensor_to_f32 (t, want, NULL) != TS_OK) {
    free (want);
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    bad += memcmp (&want[i], &got[i], sizeof (float)) != 0;
  free (want);
  return bad;
}

static ts_status
check_prepared (void *data, const ts_image_prepared *prep, ts_error *err)
{
  image_replay *ir = data;
  size_t n_tok = (size_t) prep->grid_h * prep->grid_w;
  size_t n_px = (size_t) prep->image->width * prep->image->height;
  float *f = malloc ((3 * n_px > n_tok ? 3 * n_px : n_tok) * sizeof *f);
  int32_t *i32 = malloc (n_tok * sizeof *i32);
  char name[64];

  (void) err;
  if (!f || !i32) {
    free (f);
    free (i32);
    return ts_error_set (err, TS_ERR_NOMEM, "out of memory");
  }
  /* in.image is (1, 3, H, W) = uint8 / 255 in fp32. */
  for (size_t i = 0; i < n_px; i++)
    for (int c = 0; c < 3; c++)
      f[c * n_px + i] = (float) prep->image->pixels[3 * i + c] / 255.0f;
  check (ir, "in.image", count_float_mismatch (ir, "in.image", f, 3 * n_px));
  check (ir, "mid.image_tokens",
         ts_golden_count_mismatch (ts_safetensors_find (ir->r.st, "mid.image_tokens"),
                                   prep->image_tokens, n_tok));
  if (ir->img2img) {
    const ts_st_tensor *t = ts_safetensors_find (ir->r.st, "add_noise.mask");
    long bad = -1;

    check (ir, "add_noise.mask_ratio",
           count_float_mismatch (ir, "add_noise.mask_ratio", &prep->add_noise_ratio, 1));
    /* add_noise.mask (uint8) is 1 where u < mask_ratio masked the token. */
    if (t && t->n_elements == n_tok && t->dtype == TS_DTYPE_U8) {
      const uint8_t *w = t->data;
      bad = 0;
      for (size_t i = 0; i < n_tok; i++)
        bad += (w[i] != 0) != (ir->add_noise_u[i] < prep->add_noise_ratio);
    }
    check (ir, "add_noise.mask", bad);
    check (ir, "add_noise.sample_out",
           ts_golden_count_mismatch (ts_safetensors_find (ir->r.st, "add_noise.sample_out"),
                                     prep->init_tokens, n_tok));
  } else {
    for (size_t i = 0; i < n_tok; i++)
      f[i] = (float) prep->mask_levels[i] / 255.0f;
    check (ir, "mid.mask_lanczos", count_float_mismatch (ir, "mid.mask_lanczos", f, n_tok));
    for (size_t i = 0; i < n_tok; i++)
      i32[i] = prep->mask_levels[i] >= 128;
    check (ir, "mid.mask_tokens",
           ts_golden_count_mismatch (ts_safetensors_find (ir->r.st, "mid.mask_tokens"), i32, n_tok));
    check (ir, "mid.starting_mask_ratio",
           count_float_mismatch (ir, "mid.starting_mask_ratio", &prep->starting_mask_ratio, 1));
  }
  snprintf (name, sizeof name, "step%d.sample_in", prep->start_step);
  check (ir, name, ts_golden_count_mismatch (ts_safetensors_find (ir->r.st, name),
                                             prep->init_tokens, n_tok));
  free (f);
  free (i32);
  return TS_OK;
}

/* stepS.model_output (1, codebook, h, w) = uncond + g (cond - uncond) of the first step. */
static ts_status
check_logits (void *data, int step, const ts_backend *be, ts_ref logits, int batch,
              int codebook_size, int n_tok, ts_error *err)
{
  image_replay *ir = data;
  char name[64];
  const ts_st_tensor *t;
  size_t n = (size_t) codebook_size * n_tok;
  float *raw, *want;
  double g = 0, atol = 1e-4, rtol = 0, max_err = 0, tol = atol;
  bool pass = true;
  ts_status st;

  snprintf (name, sizeof name, "step%d.model_output", step);
  if (!(t = ts_safetensors_find (ir->r.st, name)))
    return TS_OK; /* only the first executed step has one */
  ts_golden_json_number (ir->entry, "guidance_scale", &g);
  ts_golden_tolerance_lookup (ir->entry, name, &atol, &rtol);
  raw = malloc ((size_t) batch * n * sizeof *raw);
  want = malloc (n * sizeof *want);
  if (!raw || !want || t->n_elements != n) {
    free (raw);
    free (want);
    return ts_error_set (err, TS_ERR_FORMAT, "%s: %s missing memory or shape", ir->r.case_name,
                         name);
  }
  if ((st = ts_buffer_download (be, logits, raw, (size_t) batch * n * sizeof *raw, err)) != TS_OK
      || (st = ts_st_tensor_to_f32 (t, want, err)) != TS_OK) {
    free (raw);
    free (want);
    return st;
  }
  if (ir->r.bf16) {
    /* the bf16 rule, carried through the guidance combination */
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
      float guided = batch == 2 ? raw[i] + (float) g * (raw[n + i] - raw[i]) : raw[i];
      num += ((double) guided - want[i]) * ((double) guided - want[i]);
      den += (double) want[i] * want[i];
    }
    max_err = den > 0 ? sqrt (num / den) : sqrt (num / (double) n);
    tol = ts_golden_bf16_cfg_rule (batch == 2 ? g : 1.0);
    pass = max_err <= tol;
  } else {
    for (size_t i = 0; i < n; i++) {
      float guided = batch == 2 ? raw[i] + (float) g * (raw[n + i] - raw[i]) : raw[i];
      double e = fabs ((double) guided - want[i]), lim = atol + rtol * fabs (want[i]);
      if (e > max_err) {
        max_err = e;
        tol = lim;
      }
      pass = pass && e <= lim;
    }
  }
  ir->r.report (ir->r.ud, ir->r.case_name, name, max_err, tol, pass);
  if (!pass)
    ir->r.n_bad_checks++;
  ir->checked_model_output = true;
  free (raw);
  free (want);
  return TS_OK;
}

ts_status
ts_golden_run_image_replay (const char *golden_dir, const cJSON *entry, const ts_backend *be,
                            ts_golden_report_fn report, void *ud, ts_error *err)
{
  const char *case_name = entry->string ? entry->string : "image_replay";
  const char *kind = ts_golden_json_string (entry, "kind");
  const char *file = ts_golden_json_string (entry, "file");
  double steps, guidance, strength;
  char path[8192];
  temp_model tm = { .dir = "" };
  ts_safetensors *st = NULL;
  ts_model *model = NULL;
  ts_image *image = NULL, *mask = NULL;
  ts_generate_params p;
  ts_image_hooks hooks = { .run = { .decode = true } };
  ts_result res = { 0 };
  image_replay ir = { .entry = entry };
  float *image_f = NULL;
  const ts_st_tensor *img_t, *mask_t;
  ts_status status;

  ir.img2img = kind && strcmp (kind, "img2img_replay") == 0;
  if (!file || !ts_golden_json_number (entry, "num_inference_steps", &steps)
      || !ts_golden_json_number (entry, "guidance_scale", &guidance)
      || !ts_golden_json_number (entry, "strength", &strength) || !ts_golden_json_string (entry, "prompt"))
    return ts_error_set (err, TS_ERR_FORMAT,
                         "%s: index entry lacks file/num_inference_steps/guidance_scale/"
                         "strength/prompt",
                         case_name);
  snprintf (path, sizeof path, "%s/%s", golden_dir, file);
  if (!(st = ts_safetensors_open (path, err)))
    return err ? err->code : TS_ERR_IO;
  if ((status = temp_model_build (&tm, golden_dir, entry, case_name, err)) != TS_OK)
    goto out;
  if (!(model = ts_model_load_on_backend (tm.dir, be, false, err))) {
    status = err ? err->code : TS_ERR_IO;
    goto out;
  }

  /* The input image (and mask) as the official call got them: uint8 HWC. */
  img_t = ts_safetensors_find (st, "in.image_uint8");
  mask_t = ts_safetensors_find (st, "in.mask_uint8");
  if (!img_t || img_t->dtype != TS_DTYPE_U8 || img_t->n_dims != 3 || img_t->shape[2] != 3
      || (!ir.img2img && (!mask_t || mask_t->dtype != TS_DTYPE_U8 || mask_t->n_dims != 2))) {
    status = ts_error_set (err, TS_ERR_FORMAT, "%s: in.image_uint8 / in.mask_uint8 missing or "
                                               "misshapen", case_name);
    goto out;
  }
  if (!(image = ts_image_new ((uint32_t) img_t->shape[1], (uint32_t) img_t->shape[0], err))) {
    status = err ? err->code : TS_ERR_NOMEM;
    goto out;
  }
  memcpy (image->pixels, img_t->data, img_t->n_elements);
  if (!ir.img2img) {
    /* The mask went in as RGB with R = G = B (inpaint.py converts its masks to RGB). */
    if (!(mask = ts_image_new ((uint32_t) mask_t->shape[1], (uint32_t) mask_t->shape[0], err))) {
      status = err ? err->code : TS_ERR_NOMEM;
      goto out;
    }
    for (size_t i = 0; i < mask_t->n_elements; i++)
      memset (mask->pixels + 3 * i, ((const uint8_t *) mask_t->data)[i], 3);
  }

  ts_generate_params_init (&p);
  p.prompt = ts_golden_json_string (entry, "prompt");
  p.negative_prompt = ts_golden_json_string (entry, "negative_prompt"); /* null: "" as the pipeline */
  p.steps = (int) steps;
  p.guidance = guidance;

  {
    uint32_t w, h;
    if ((status = ts_model_image_size (model, image->width, image->height, &w, &h, err)) != TS_OK)
      goto out;
    ir.r.n_tokens = (int) ((w / ts_model_vae_scale_factor (model)) * (h / ts_model_vae_scale_factor (model)));
    image_f = malloc ((size_t) 3 * w * h * sizeof *image_f);
  }
  ir.r.st = st;
  ir.r.case_name = case_name;
  ir.r.report = report;
  ir.r.bf16 = ts_golden_bf16_rule (be);
  ir.r.ud = ud;
  ir.r.multinomial = malloc ((size_t) ir.r.n_tokens * sizeof *ir.r.multinomial);
  ir.r.gumbel = malloc ((size_t) ir.r.n_tokens * sizeof *ir.r.gumbel);
  if (!ir.r.multinomial || !ir.r.gumbel || !image_f) {
    status = ts_error_set (err, TS_ERR_NOMEM, "out of memory");
    goto out;
  }
  if (ir.img2img) {
    const ts_st_tensor *u = ts_safetensors_find (st, "add_noise.uniform");
    ir.add_noise_u = malloc ((size_t) ir.r.n_tokens * sizeof *ir.add_noise_u);
    if (!ir.add_noise_u || !u || u->n_elements != (size_t) ir.r.n_tokens
        || ts_st_tensor_to_f32 (u, ir.add_noise_u, err) != TS_OK) {
      status = ts_error_set (err, TS_ERR_FORMAT, "%s: add_noise.uniform missing or not %d values",
                             case_name, ir.r.n_tokens);
      goto out;
    }
    hooks.add_noise_uniform = ir.add_noise_u;
    /* The replay reproduces the official code, strength 1 included. */
    hooks.official_strength_one = true;
  }
  hooks.run.image_float = image_f;
  hooks.run.draws = ts_golden_replay_draws;
  hooks.run.step_done = ts_golden_replay_step_done;
  hooks.run.logits_done = check_logits;
  hooks.run.draws_data = &ir;
  hooks.prepared = check_prepared;
  /* ir.r is the first member, so the shared replay callbacks see a ts_golden_replay. */
  status = ir.img2img ? ts_pipeline_img2img (model, &p, image, strength, &hooks, &res, err)
                      : ts_pipeline_inpaint (model, &p, image, mask, strength, &hooks, &res, err);
  if (status != TS_OK)
    goto out;
  if (!ir.checked_model_output) {
    report (ud, case_name, "stepS.model_output", NAN, NAN, false);
    ir.r.n_bad_checks++;
  }
  status = ts_golden_check_outputs (&ir.r, entry, &res, image_f, err);

out:
  ts_result_free (&res);
  free (image_f);
  free (ir.add_noise_u);
  free (ir.r.gumbel);
  free (ir.r.multinomial);
  ts_image_free (mask);
  ts_image_free (image);
  ts_model_free (model);
  temp_model_remove (&tm);
  ts_safetensors_free (st);
  return status;
}
