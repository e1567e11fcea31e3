/* SPDX-License-Identifier: MIT
 *
 * ts-pipeline — internal entry to the sampling loop behind ts_model_generate and
 * ts_model_inpaint, with the hooks the golden pipeline replay needs: recorded random
 * draws per step and a look at every step's grids.
 */
#ifndef TS_PIPELINE_H
#define TS_PIPELINE_H

#include "tessera.h"

#include "backend/ts-backend.h"
#include "stages/ts-sampler.h"

typedef struct {
  int n_images;                /* images that go through the transformer together (0: 1);
                                * image k has seed p->seed + k; out holds n_images results */
  int first_image;             /* the batch index of image 0 (ts_step_info.image) */
  const int32_t *init_tokens;  /* NULL: start fully masked; else n_images grids */
  int start_step;              /* first step index to run (inpainting starts late) */
  float starting_mask_ratio;   /* scales the mask schedule (inpainting); 1 otherwise */
  bool decode;                 /* VQ-decode the final grid into out->image */
  float *image_float;          /* optional: the raw decoder output [3, H, W] */
  /* Optional: fills the draws of a step (the golden replay injects recorded ones); by
   * default the engine's Philox stream keyed by the seed is used. */
  ts_status (*draws) (void *data, int step, ts_sampler_draws *draws, ts_error *err);
  /* Optional: sees each step's prediction and resulting grid; an error stops the run. */
  ts_status (*step_done) (void *data, int step, const int32_t *predicted, const int32_t *tokens,
                          ts_error *err);
  /* Optional: sees each step's raw logits on the backend ([batch][codebook][n_tok], batch
   * [negative ; positive] with guidance) before the step samples from them. */
  ts_status (*logits_done) (void *data, int step, const ts_backend *be, ts_ref logits, int batch,
                            int codebook_size, int n_tok, ts_error *err);
  void *draws_data;
  bool linear_schedule;        /* the inpaint pipeline forces the linear masking schedule */
} ts_pipeline_run_args;

/* ---- image pipelines (ts-pipeline-image.c) ---- */

/* What the image pipelines computed before their sampling loop, for the golden checks. */
typedef struct {
  const ts_image *image;        /* the input at the generation size (after the resize) */
  const int32_t *image_tokens;  /* its VQ codes */
  const uint8_t *mask_levels;   /* inpaint: per token, the mask's L value after the resize */
  const int32_t *init_tokens;   /* the grid the loop starts from */
  int grid_h, grid_w;
  int start_step;               /* first step index that runs */
  float starting_mask_ratio;    /* inpaint */
  float add_noise_ratio;        /* img2img: the mask ratio of add_noise (NaN when unused) */
} ts_image_prepared;

typedef struct {
  ts_pipeline_run_args run;        /* draws, step_done, logits_done, image_float */
  const float *add_noise_uniform;  /* img2img: recorded uniforms per token (NULL: the seed's) */
  bool official_strength_one;      /* img2img at strength 1: mask as the official code does
                                    * (nothing) instead of everything */
  ts_status (*prepared) (void *data, const ts_image_prepared *prep, ts_error *err);
} ts_image_hooks;

ts_status ts_pipeline_img2img (ts_model *m, const ts_generate_params *p, const ts_image *image,
                               double strength, const ts_image_hooks *hooks, ts_result *out,
                               ts_error *err);
ts_status ts_pipeline_inpaint (ts_model *m, const ts_generate_params *p, const ts_image *image,
                               const ts_image *mask, double strength, const ts_image_hooks *hooks,
                               ts_result *out, ts_error *err);

/* Internals the image pipelines share with the sampling loop. */
void ts_pipeline_stats_reset (ts_model *m);
ts_masking_schedule ts_pipeline_schedule (const ts_model *m);
/* The multiple of which image sides must be: the VQ factor, twice that with downsampling. */
uint32_t ts_pipeline_size_step (const ts_model *m);
/* Polls p's abort hook inside long backend ops (NULL: stop polling). */
void ts_pipeline_set_abort (ts_model *m, const ts_generate_params *p);
const ts_backend *ts_pipeline_backend (const ts_model *m);

/* ts_model_load on an existing backend (borrowed; it must outlive the model). */
ts_model *ts_model_load_on_backend (const char *dir, const ts_backend *be, bool prefer_fp16,
                                    ts_error *err);

ts_status ts_pipeline_run (ts_model *m, const ts_generate_params *p, const ts_pipeline_run_args *run,
                           ts_result *out, ts_error *err);

#endif /* TS_PIPELINE_H */
