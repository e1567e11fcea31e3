/* SPDX-License-Identifier: MIT
 *
 * ts-golden-vq — the golden runners for the VQ-VAE (case kinds "vq_decode" and
 * "vq_encode"): load the case's vqvae folder (config.json + diffusion_pytorch_model
 * .safetensors), run ts_vq_decode / ts_vq_encode on the case inputs and compare with the
 * README's tolerances: decode sample atol 5e-5, uint8 pixels exact except ±1 where the
 * reference float is within 1e-4 of a rounding boundary; encode latents atol 2e-5 and
 * indices exact. Intermediates get the same atol scaled by their magnitude.
 */
#include "devkit/golden/ts-golden.h"

#include "core/ts-common.h"
#include "devkit/golden/ts-golden-case.h"
#include "stages/ts-vq-config.h"
#include "stages/ts-vq.h"

#include <math.h>
#include <string.h>

#define VQ_DECODE_ATOL 5e-5
#define VQ_ENCODE_ATOL 2e-5
#define VQ_PIXEL_BOUNDARY 1e-4

static ts_vq *
golden_vq_open (ts_golden_case *gc, const ts_backend *be, ts_error *err)
{
  char dir[1536], path[1600];
  ts_vq_config cfg;
  if (!ts_golden_case_model_dir (gc, "vqvae", dir, sizeof dir)) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "golden: model path too long");
    return NULL;
  }
  snprintf (path, sizeof path, "%s/config.json", dir);
  if (ts_vq_config_from_file (path, &cfg, err) != TS_OK)
    return NULL;
  ts_st_set *set = ts_st_set_open (dir, "diffusion_pytorch_model", NULL, err);
  if (!set)
    return NULL;
  ts_vq *vq = ts_vq_new (be, &cfg, set, err);
  ts_st_set_free (set);
  return vq;
}

/* Reads an integer case tensor into int32. */
static int32_t *
golden_read_ids (const ts_st_tensor *t, ts_error *err)
{
  int64_t *wide = malloc (t->n_elements * sizeof *wide);
  int32_t *ids = malloc (t->n_elements * sizeof *ids);
  if (!wide || !ids) {
    ts_error_set (err, TS_ERR_NOMEM, "golden: out of memory");
    goto fail;
  }
  if (ts_st_tensor_to_i64 (t, wide, err) != TS_OK)
    goto fail;
  for (size_t i = 0; i < t->n_elements; i++) {
    if (wide[i] < INT32_MIN || wide[i] > INT32_MAX) {
      ts_error_set (err, TS_ERR_FORMAT, "golden: '%s'[%zu] out of range", t->name, i);
      goto fail;
    }
    ids[i] = (int32_t) wide[i];
  }
  free (wide);
  return ids;

fail:
  free (wide);
  free (ids);
  return NULL;
}

/* Distance of x from the nearest rounding boundary of round(255·x), in x units. */
static double
golden_boundary_distance (double x)
{
  const double t = x * 255.0;
  return fabs (t - floor (t) - 0.5) / 255.0;
}

ts_status
ts_golden_run_vq_decode (const char *golden_dir, const cJSON *case_entry, const ts_backend *be,
                         ts_golden_report_fn report, void *ud, ts_error *err)
{
  ts_golden_case *gc = NULL;
  ts_vq *vq = NULL;
  int32_t *ids = NULL;
  float *sample = NULL, *ref_clip = NULL;
  uint8_t *rgb = NULL, *ref_rgb = NULL;
  ts_status st;

  gc = ts_golden_case_new (golden_dir, case_entry, "vq_decode", VQ_DECODE_ATOL, 0.0, report, ud,
                            err);
  if (!gc)
    return err ? err->code : TS_ERR_FORMAT;
  ts_golden_case_use_backend (gc, be);
  vq = golden_vq_open (gc, be, err);
  if (!vq) {
    st = err ? err->code : TS_ERR_FORMAT;
    goto fail;
  }

  const ts_st_tensor *t_ids = ts_golden_case_tensor (gc, "in.indices", err);
  if (!t_ids) {
    st = TS_ERR_FORMAT;
    goto fail;
  }
  if (t_ids->n_dims != 3 || t_ids->n_elements == 0 || t_ids->shape[1] > 4096
      || t_ids->shape[2] > 4096 || t_ids->shape[0] > 4096) {
    st = ts_error_set (err, TS_ERR_FORMAT, "golden: in.indices must be [batch, h, w]");
    goto fail;
  }
  const int batch = (int) t_ids->shape[0], h = (int) t_ids->shape[1], w = (int) t_ids->shape[2];
  const int f = ts_vq_scale_factor (vq), C = ts_vq_get_config (vq)->out_channels;
  const int H = h * f, W = w * f;
  const size_t n_pix = (size_t) batch * (size_t) H * (size_t) W;
  const cJSON *size = cJSON_GetObjectItemCaseSensitive (case_entry, "image_size");
  if (cJSON_GetArraySize (size) == 2
      && (cJSON_GetArrayItem (size, 0)->valuedouble != H
          || cJSON_GetArrayItem (size, 1)->valuedouble != W)) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "golden: image_size [%g, %g] disagrees with a %d x %d grid at factor %d",
                       cJSON_GetArrayItem (size, 0)->valuedouble,
                       cJSON_GetArrayItem (size, 1)->valuedouble, h, w, f);
    goto fail;
  }
  if (!(ids = golden_read_ids (t_ids, err))) {
    st = err ? err->code : TS_ERR_FORMAT;
    goto fail;
  }
  sample = malloc (n_pix * (size_t) C * sizeof *sample);
  ref_clip = malloc (n_pix * (size_t) C * sizeof *ref_clip);
  rgb = malloc (n_pix * 3);
  ref_rgb = malloc (n_pix * 3);
  if (!sample || !ref_clip || !rgb || !ref_rgb) {
    st = ts_error_set (err, TS_ERR_NOMEM, "golden: out of memory");
    goto fail;
  }

  const ts_capture cap = ts_golden_case_capture (gc);
  if ((st = ts_vq_decode (vq, ids, batch, h, w, sample, &cap, err)) != TS_OK)
    goto fail;
  ts_golden_case_compare (gc, "out.sample", sample, n_pix * (size_t) C);

  /* The pipeline's .clip(0, 1) */
  float *clipped = ref_clip; /* reused below for the reference */
  for (size_t i = 0; i < n_pix * (size_t) C; i++)
    clipped[i] = sample[i] < 0.0f ? 0.0f : sample[i] > 1.0f ? 1.0f : sample[i];
  ts_golden_case_compare (gc, "out.sample_clipped", clipped, n_pix * (size_t) C);

  if (C != 3) {
    st = ts_error_set (err, TS_ERR_FORMAT, "golden: out_channels %d, RGB needs 3", C);
    goto fail;
  }
  ts_vq_to_uint8 (sample, batch, H, W, rgb);

  /* uint8: exact, except ±1 where the reference float is within 1e-4 of a boundary. */
  const ts_st_tensor *t_rgb = ts_golden_case_tensor (gc, "out.image_uint8", err);
  const ts_st_tensor *t_clip = ts_golden_case_tensor (gc, "out.sample_clipped", err);
  if (!t_rgb || !t_clip || t_rgb->n_elements != n_pix * 3 || t_clip->n_elements != n_pix * 3
      || t_rgb->dtype != TS_DTYPE_U8) {
    ts_golden_case_report (gc, "out.image_uint8", NAN, 0.0, false);
  } else {
    memcpy (ref_rgb, t_rgb->data, n_pix * 3);
    if ((st = ts_st_tensor_to_f32 (t_clip, ref_clip, err)) != TS_OK)
      goto fail;
    int max_diff = 0, n_boundary = 0;
    bool pass = true;
    for (int b = 0; b < batch; b++)
      for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
          for (int ch = 0; ch < 3; ch++) {
            const size_t i = (((size_t) b * H + y) * W + x) * 3 + ch;
            const int d = abs ((int) rgb[i] - (int) ref_rgb[i]);
            if (d == 0)
              continue;
            const double v = ref_clip[(((size_t) b * 3 + ch) * H + y) * W + x];
            if (d == 1 && golden_boundary_distance (v) <= VQ_PIXEL_BOUNDARY) {
              n_boundary++;
            } else {
              if (pass)
                TS_LOG_W ("golden: %s: out.image_uint8[%d,%d,%d,%d]: %d, expected %d (float %.9g)",
                          ts_golden_case_case_name (gc), b, y, x, ch, rgb[i], ref_rgb[i], v);
              pass = false;
            }
            if (d > max_diff)
              max_diff = d;
          }
    if (n_boundary)
      TS_LOG_I ("golden: out.image_uint8: %d pixel(s) off by one at a rounding boundary",
                n_boundary);
    /* bf16: integers are reported, not required */
    ts_golden_case_report (gc, "out.image_uint8", max_diff, n_boundary ? 1.0 : 0.0,
                           pass || ts_golden_bf16_rule (be));
  }
  st = ts_golden_case_finish (gc, err);

fail:
  free (ids);
  free (sample);
  free (ref_clip);
  free (rgb);
  free (ref_rgb);
  ts_vq_free (vq);
  ts_golden_case_free (gc);
  return st;
}

ts_status
ts_golden_run_vq_encode (const char *golden_dir, const cJSON *case_entry, const ts_backend *be,
                         ts_golden_report_fn report, void *ud, ts_error *err)
{
  ts_golden_case *gc = NULL;
  ts_vq *vq = NULL;
  float *image = NULL, *latents = NULL, *ids_f = NULL;
  int32_t *ids = NULL;
  ts_status st;

  gc = ts_golden_case_new (golden_dir, case_entry, "vq_encode", VQ_ENCODE_ATOL, 0.0, report, ud,
                            err);
  if (!gc)
    return err ? err->code : TS_ERR_FORMAT;
  ts_golden_case_use_backend (gc, be);
  vq = golden_vq_open (gc, be, err);
  if (!vq) {
    st = err ? err->code : TS_ERR_FORMAT;
    goto fail;
  }
  const ts_vq_config *cfg = ts_vq_get_config (vq);

  const ts_st_tensor *t_img = ts_golden_case_tensor (gc, "in.image", err);
  if (!t_img) {
    st = TS_ERR_FORMAT;
    goto fail;
  }
  if (t_img->n_dims != 4 || t_img->shape[1] != cfg->in_channels || t_img->n_elements == 0
      || t_img->shape[0] > 4096 || t_img->shape[2] > 65536 || t_img->shape[3] > 65536) {
    st = ts_error_set (err, TS_ERR_FORMAT, "golden: in.image must be [batch, %d, H, W]",
                       cfg->in_channels);
    goto fail;
  }
  const int batch = (int) t_img->shape[0], H = (int) t_img->shape[2], W = (int) t_img->shape[3];
  const int f = ts_vq_scale_factor (vq);
  const int D = cfg->vq_embed_dim > 0 ? cfg->vq_embed_dim : cfg->latent_channels;
  const size_t n_ids = (size_t) batch * (size_t) (H / f) * (size_t) (W / f);
  image = malloc (t_img->n_elements * sizeof *image);
  latents = malloc (n_ids * (size_t) D * sizeof *latents);
  ids = malloc (n_ids * sizeof *ids);
  ids_f = malloc (n_ids * sizeof *ids_f);
  if (!image || !latents || !ids || !ids_f) {
    st = ts_error_set (err, TS_ERR_NOMEM, "golden: out of memory");
    goto fail;
  }
  if ((st = ts_st_tensor_to_f32 (t_img, image, err)) != TS_OK)
    goto fail;

  const ts_capture cap = ts_golden_case_capture (gc);
  if ((st = ts_vq_encode (vq, image, batch, H, W, ids, latents, &cap, err)) != TS_OK)
    goto fail;
  ts_golden_case_compare (gc, "out.latents", latents, n_ids * (size_t) D);
  for (size_t i = 0; i < n_ids; i++)
    ids_f[i] = (float) ids[i];
  ts_golden_case_compare (gc, "out.indices", ids_f, n_ids);
  st = ts_golden_case_finish (gc, err);

fail:
  free (image);
  free (latents);
  free (ids);
  free (ids_f);
  ts_vq_free (vq);
  ts_golden_case_free (gc);
  return st;
}
