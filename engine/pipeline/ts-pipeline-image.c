/* SPDX-License-Identifier: MIT
 *
 * ts-pipeline-image — the pipelines that start from an image: image to image
 * (src/pipeline_img2img.py), inpainting (src/pipeline_inpaint.py) and outpainting (the
 * inpaint pipeline on a padded canvas, as inpaint.py --mode outpaint). Each brings the image
 * to the generation size as VaeImageProcessor does, VQ-encodes it, builds the starting grid
 * (img2img: the scheduler's add_noise; inpaint: the mask resized to the token grid) and runs
 * the sampling loop of ts-pipeline from the starting step. The golden README's sections
 * `img2img_replay` and `inpaint_replay` list what the official code does step by step;
 * where this file departs from it (strength 1 in img2img, sizes that are not multiples of
 * 256 px in inpainting) the public header says so.
 */
#include "pipeline/ts-pipeline.h"

#include "core/ts-common.h"
#include "core/ts-rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

uint32_t
ts_model_size_step (const ts_model *m)
{
  return ts_pipeline_size_step (m);
}

ts_status
ts_model_image_size (const ts_model *m, uint32_t width, uint32_t height, uint32_t *gen_width,
                     uint32_t *gen_height, ts_error *err)
{
  uint32_t step = ts_pipeline_size_step (m);
  uint32_t w = width - width % step, h = height - height % step;

  if (w == 0 || h == 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "the image is %ux%u; this model needs at least %u px on each side",
                         width, height, step);
  if (ts_model_check_size (m, w, h, err) != TS_OK)
    return TS_ERR_INVALID_ARG;
  *gen_width = w;
  *gen_height = h;
  return TS_OK;
}

/* The image at the generation size: the floored size, resized with LANCZOS when that
 * changes it (VaeImageProcessor.preprocess), and checked against params' width/height. */
static ts_image *
prepare_image (ts_model *m, const ts_generate_params *p, const ts_image *image, const char *what,
               ts_error *err)
{
  uint32_t w, h;

  if (!image || !image->pixels || image->width == 0 || image->height == 0) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "%s: no image", what);
    return NULL;
  }
  if (ts_model_image_size (m, image->width, image->height, &w, &h, err) != TS_OK) {
    ts_error_prefix (err, "%s", what);
    return NULL;
  }
  if ((p->width && p->width != w) || (p->height && p->height != h)) {
    ts_error_set (err, TS_ERR_INVALID_ARG,
                  "%s: the image is %ux%u (generation size %ux%u) but the parameters ask for "
                  "%ux%u",
                  what, image->width, image->height, w, h, p->width, p->height);
    return NULL;
  }
  if (w != image->width || h != image->height)
    TS_LOG_I ("%s: the %ux%u image is resized to %ux%u", what, image->width, image->height, w, h);
  return ts_image_resize_lanczos (image, w, h, err);
}

static ts_status
check_steps (const ts_generate_params *p, double strength, bool zero_ok, const char *what,
             int *n_run, ts_error *err)
{
  if (p->steps < 1 || p->steps > 1000)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: steps must be 1 to 1000, not %d", what,
                         p->steps);
  if (!(strength >= 0.0 && strength <= 1.0) || (!zero_ok && strength == 0.0))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: strength must be in %s, not %g", what,
                         zero_ok ? "[0, 1]" : "(0, 1]", strength);
  /* As the official pipelines: int(N * strength), a double product truncated. */
  *n_run = (int) (p->steps * strength);
  if (*n_run < 1 && !zero_ok)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "%s: strength %g of %d steps runs no step (needs at least %.3g)", what,
                         strength, p->steps, 1.0 / p->steps);
  return TS_OK;
}

/* The encoder's tokens of the prepared image (abortable through p's hook). */
static ts_status
encode (ts_model *m, const ts_generate_params *p, const ts_image *image, int32_t **tokens,
        ts_error *err)
{
  uint32_t f = ts_model_vae_scale_factor (m);
  ts_status st;

  *tokens = malloc ((size_t) (image->width / f) * (image->height / f) * sizeof **tokens);
  if (!*tokens)
    return ts_error_set (err, TS_ERR_NOMEM, "encode: out of memory");
  ts_pipeline_set_abort (m, p);
  st = ts_model_encode (m, image, *tokens, err);
  ts_pipeline_set_abort (m, NULL);
  return st;
}

/* The result when no step runs: the decoded grid. */
static ts_status
decode_only (ts_model *m, const int32_t *tokens, int grid_h, int grid_w, ts_result *out,
             ts_error *err)
{
  size_t n = (size_t) grid_h * grid_w;

  out->tokens = malloc (n * sizeof *out->tokens);
  if (!out->tokens)
    return ts_error_set (err, TS_ERR_NOMEM, "decode: out of memory");
  memcpy (out->tokens, tokens, n * sizeof *tokens);
  out->grid_h = grid_h;
  out->grid_w = grid_w;
  out->image = ts_model_decode (m, tokens, grid_h, grid_w, err);
  if (!out->image) {
    ts_result_free (out);
    return err ? err->code : TS_ERR_NOMEM;
  }
  return TS_OK;
}

ts_status
ts_pipeline_img2img (ts_model *m, const ts_generate_params *p, const ts_image *image,
                     double strength, const ts_image_hooks *hooks, ts_result *out, ts_error *err)
{
  static const ts_image_hooks no_hooks = { .run = { .decode = true } };
  ts_generate_params q;
  ts_pipeline_run_args run;
  ts_image *prepared = NULL;
  int32_t *image_tokens = NULL, *init = NULL;
  int32_t mask_id;
  int n_run, start, grid_h, grid_w, n_tok;
  uint32_t f;
  float ratio = NAN;
  ts_status st;

  if (!m || !p || !image || !out)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "img2img: missing argument");
  memset (out, 0, sizeof *out);
  if (!hooks)
    hooks = &no_hooks;
  if ((st = check_steps (p, strength, true, "img2img", &n_run, err)) != TS_OK)
    return st;
  if (!(prepared = prepare_image (m, p, image, "img2img", err)))
    return err ? err->code : TS_ERR_INVALID_ARG;
  ts_pipeline_stats_reset (m);
  if ((st = encode (m, p, prepared, &image_tokens, err)) != TS_OK)
    goto out;

  f = ts_model_vae_scale_factor (m);
  grid_h = (int) (prepared->height / f);
  grid_w = (int) (prepared->width / f);
  n_tok = grid_h * grid_w;
  mask_id = ts_model_mask_token_id (m);
  start = p->steps - n_run;
  init = malloc ((size_t) n_tok * sizeof *init);
  if (!init) {
    st = ts_error_set (err, TS_ERR_NOMEM, "img2img: out of memory");
    goto out;
  }
  /* Scheduler.add_noise (tokens, timesteps[start - 1]): step_idx = start - 1, so the ratio
   * is start / N; with start = 0, timesteps[-1] is timestep 0, step_idx N - 1. */
  ratio = ts_sampler_mask_ratio (ts_pipeline_schedule (m), start > 0 ? start - 1 : p->steps - 1,
                                 p->steps);
  for (int i = 0; i < n_tok; i++) {
    float u = hooks->add_noise_uniform
                  ? hooks->add_noise_uniform[i]
                  : ts_rng_uniform (p->seed, 0, 0, TS_RNG_PURPOSE_ADD_NOISE, (uint32_t) i);
    bool masked = u < ratio;
    /* At strength 1 the official code masks nothing (cos(pi/2) < 0 in fp32) and returns
     * almost the input; what the user means is a new picture: mask everything. */
    if (start == 0 && !hooks->official_strength_one)
      masked = true;
    init[i] = masked ? mask_id : image_tokens[i];
  }
  if (hooks->prepared) {
    ts_image_prepared prep = {
      .image = prepared,
      .image_tokens = image_tokens,
      .init_tokens = init,
      .grid_h = grid_h,
      .grid_w = grid_w,
      .start_step = start,
      .starting_mask_ratio = 1.0f,
      .add_noise_ratio = ratio,
    };
    if ((st = hooks->prepared (hooks->run.draws_data, &prep, err)) != TS_OK)
      goto out;
  }
  if (n_run == 0) {
    st = decode_only (m, init, grid_h, grid_w, out, err);
    goto out;
  }

  q = *p;
  q.width = prepared->width;
  q.height = prepared->height;
  run = hooks->run;
  run.init_tokens = init;
  run.start_step = start;
  run.starting_mask_ratio = 1.0f;
  run.decode = true;
  st = ts_pipeline_run (m, &q, &run, out, err);

out:
  free (init);
  free (image_tokens);
  ts_image_free (prepared);
  if (st != TS_OK)
    ts_result_free (out);
  return st;
}

ts_status
ts_model_img2img (ts_model *m, const ts_generate_params *p, const ts_image *image,
                  double strength, ts_result *out, ts_error *err)
{
  return ts_pipeline_img2img (m, p, image, strength, NULL, out, err);
}

/* The mask's luminance per token: LANCZOS from its own size straight to the grid, then
 * PIL's convert("L") (L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16). */
static ts_status
mask_levels (const ts_image *mask, int grid_h, int grid_w, uint8_t *levels, ts_error *err)
{
  ts_image *small = ts_image_resize_lanczos (mask, (uint32_t) grid_w, (uint32_t) grid_h, err);

  if (!small)
    return err ? err->code : TS_ERR_NOMEM;
  for (int i = 0; i < grid_h * grid_w; i++) {
    const uint8_t *px = small->pixels + 3 * i;
    levels[i] = (uint8_t) ((px[0] * 19595u + px[1] * 38470u + px[2] * 7471u + 0x8000u) >> 16);
  }
  ts_image_free (small);
  return TS_OK;
}

ts_status
ts_pipeline_inpaint (ts_model *m, const ts_generate_params *p, const ts_image *image,
                     const ts_image *mask, double strength, const ts_image_hooks *hooks,
                     ts_result *out, ts_error *err)
{
  static const ts_image_hooks no_hooks = { .run = { .decode = true } };
  ts_generate_params q;
  ts_pipeline_run_args run;
  ts_image *prepared = NULL;
  int32_t *image_tokens = NULL, *init = NULL;
  uint8_t *levels = NULL;
  int n_run, grid_h, grid_w, n_tok, n_masked = 0;
  uint32_t f;
  ts_status st;

  if (!m || !p || !image || !mask || !out)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "inpaint: missing argument");
  memset (out, 0, sizeof *out);
  if (!hooks)
    hooks = &no_hooks;
  if (!mask->pixels || mask->width == 0 || mask->height == 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "inpaint: empty mask");
  if ((st = check_steps (p, strength, false, "inpaint", &n_run, err)) != TS_OK)
    return st;
  if (!(prepared = prepare_image (m, p, image, "inpaint", err)))
    return err ? err->code : TS_ERR_INVALID_ARG;

  f = ts_model_vae_scale_factor (m);
  grid_h = (int) (prepared->height / f);
  grid_w = (int) (prepared->width / f);
  n_tok = grid_h * grid_w;
  init = malloc ((size_t) n_tok * sizeof *init);
  levels = malloc ((size_t) n_tok);
  if (!init || !levels) {
    st = ts_error_set (err, TS_ERR_NOMEM, "inpaint: out of memory");
    goto out;
  }
  if ((st = mask_levels (mask, grid_h, grid_w, levels, err)) != TS_OK)
    goto out;
  for (int i = 0; i < n_tok; i++)
    n_masked += levels[i] >= 128; /* level / 255 >= 0.5 */
  if (n_masked == 0) {
    st = ts_error_set (err, TS_ERR_INVALID_ARG,
                       "inpaint: the mask covers no token (paint at least about half of a "
                       "%ux%u cell white)",
                       f, f);
    goto out;
  }

  ts_pipeline_stats_reset (m);
  if ((st = encode (m, p, prepared, &image_tokens, err)) != TS_OK)
    goto out;
  for (int i = 0; i < n_tok; i++)
    init[i] = levels[i] >= 128 ? ts_model_mask_token_id (m) : image_tokens[i];

  q = *p;
  q.width = prepared->width;
  q.height = prepared->height;
  run = hooks->run;
  run.init_tokens = init;
  run.start_step = p->steps - n_run;
  /* mask.sum() / latents.numel(): both to fp32, then an fp32 division. */
  run.starting_mask_ratio = (float) n_masked / (float) n_tok;
  run.linear_schedule = true;
  run.decode = true;
  if (hooks->prepared) {
    ts_image_prepared prep = {
      .image = prepared,
      .image_tokens = image_tokens,
      .mask_levels = levels,
      .init_tokens = init,
      .grid_h = grid_h,
      .grid_w = grid_w,
      .start_step = run.start_step,
      .starting_mask_ratio = run.starting_mask_ratio,
      .add_noise_ratio = NAN,
    };
    if ((st = hooks->prepared (hooks->run.draws_data, &prep, err)) != TS_OK)
      goto out;
  }
  st = ts_pipeline_run (m, &q, &run, out, err);

out:
  free (levels);
  free (init);
  free (image_tokens);
  ts_image_free (prepared);
  if (st != TS_OK)
    ts_result_free (out);
  return st;
}

ts_status
ts_model_inpaint (ts_model *m, const ts_generate_params *p, const ts_image *image,
                  const ts_image *mask, double strength, ts_result *out, ts_error *err)
{
  return ts_pipeline_inpaint (m, p, image, mask, strength, NULL, out, err);
}

ts_status
ts_model_outpaint (ts_model *m, const ts_generate_params *p, const ts_image *image,
                   const uint32_t extend[4], double strength, uint32_t extend_out[4],
                   ts_result *out, ts_error *err)
{
  ts_generate_params q;
  ts_image *prepared = NULL, *canvas = NULL, *mask = NULL;
  uint32_t ext[4], step, f, w, h, cw, ch;
  ts_status st;

  if (!m || !p || !image || !extend || !out)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "outpaint: missing argument");
  memset (out, 0, sizeof *out);
  step = ts_pipeline_size_step (m);
  f = ts_model_vae_scale_factor (m);
  for (int i = 0; i < 4; i++) {
    if (extend[i] > 8192)
      return ts_error_set (err, TS_ERR_INVALID_ARG, "outpaint: an extent of %u px is too large",
                           extend[i]);
    ext[i] = (extend[i] + step - 1) / step * step;
  }
  if (ext[0] + ext[1] + ext[2] + ext[3] == 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "outpaint: nothing to extend");
  if ((st = ts_model_image_size (m, image->width, image->height, &w, &h, err)) != TS_OK) {
    ts_error_prefix (err, "outpaint");
    return st;
  }
  cw = w + ext[0] + ext[2];
  ch = h + ext[1] + ext[3];
  if ((p->width && p->width != cw) || (p->height && p->height != ch))
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "outpaint: the canvas is %ux%u but the parameters ask for %ux%u", cw, ch,
                         p->width, p->height);
  if ((st = ts_model_check_size (m, cw, ch, err)) != TS_OK) {
    ts_error_prefix (err, "outpaint: the extended canvas");
    return st;
  }

  q = *p;
  q.width = q.height = 0;
  if (!(prepared = ts_image_resize_lanczos (image, w, h, err))
      || !(canvas = ts_image_new (cw, ch, err))
      || !(mask = ts_image_new (cw / f, ch / f, err))) {
    st = err ? err->code : TS_ERR_NOMEM;
    goto out;
  }
  /* The canvas: grey 127 (the official outpaint assets' fill), the image pasted in. */
  memset (canvas->pixels, 127, (size_t) cw * ch * 3);
  for (uint32_t y = 0; y < h; y++)
    memcpy (canvas->pixels + ((size_t) (y + ext[1]) * cw + ext[0]) * 3,
            prepared->pixels + (size_t) y * w * 3, (size_t) w * 3);
  /* The mask at the token grid (used as it is): white over the border's whole tokens. */
  memset (mask->pixels, 255, (size_t) mask->width * mask->height * 3);
  for (uint32_t gy = ext[1] / f; gy < (ext[1] + h) / f; gy++)
    memset (mask->pixels + ((size_t) gy * mask->width + ext[0] / f) * 3, 0, (size_t) (w / f) * 3);
  if (extend_out)
    memcpy (extend_out, ext, sizeof ext);
  st = ts_pipeline_inpaint (m, &q, canvas, mask, strength, NULL, out, err);
  if (st != TS_OK)
    ts_error_prefix (err, "outpaint");

out:
  ts_image_free (mask);
  ts_image_free (canvas);
  ts_image_free (prepared);
  return st;
}

ts_status
ts_model_resume (ts_model *m, const ts_generate_params *p, const ts_resume_state *s,
                 ts_result *out, ts_error *err)
{
  ts_pipeline_run_args run = { .decode = true };
  ts_generate_params q;
  uint32_t f;
  int n_tok, n_masked = 0;
  int32_t mask_id, codebook;

  if (!m || !p || !s || !s->tokens || !out)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "resume: missing argument");
  memset (out, 0, sizeof *out);
  f = ts_model_vae_scale_factor (m);
  if (s->grid_h < 1 || s->grid_w < 1 || s->grid_h > 8192 / (int) f || s->grid_w > 8192 / (int) f)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "resume: bad token grid %dx%d", s->grid_w,
                         s->grid_h);
  q = *p;
  if ((q.width && q.width != (uint32_t) s->grid_w * f)
      || (q.height && q.height != (uint32_t) s->grid_h * f))
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "resume: the token grid is %dx%d (%ux%u px) but the parameters ask for "
                         "%ux%u",
                         s->grid_w, s->grid_h, s->grid_w * f, s->grid_h * f, q.width, q.height);
  q.width = (uint32_t) s->grid_w * f;
  q.height = (uint32_t) s->grid_h * f;
  n_tok = s->grid_h * s->grid_w;
  mask_id = ts_model_mask_token_id (m);
  codebook = ts_model_codebook_size (m);
  for (int i = 0; i < n_tok; i++) {
    if (s->tokens[i] == mask_id)
      n_masked++;
    else if (s->tokens[i] < 0 || s->tokens[i] >= codebook)
      return ts_error_set (err, TS_ERR_INVALID_ARG,
                           "resume: token %d holds code %d, outside the codebook of %d", i,
                           s->tokens[i], codebook);
  }
  if (n_masked == 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "resume: no token is masked: nothing to draw");
  if (!(s->starting_mask_ratio >= 0.0f && s->starting_mask_ratio <= 1.0f))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "resume: starting mask ratio %g outside [0, 1]",
                         (double) s->starting_mask_ratio);
  run.init_tokens = s->tokens;
  run.start_step = s->start_step;
  run.starting_mask_ratio = s->starting_mask_ratio > 0.0f ? s->starting_mask_ratio : 1.0f;
  run.linear_schedule = s->linear_schedule;
  ts_pipeline_stats_reset (m);
  return ts_pipeline_run (m, &q, &run, out, err);
}
