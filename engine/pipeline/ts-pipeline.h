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
  const int32_t *init_tokens;  /* NULL: start fully masked */
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
  void *draws_data;
} ts_pipeline_run_args;

/* ts_model_load on an existing backend (borrowed; it must outlive the model). */
ts_model *ts_model_load_on_backend (const char *dir, const ts_backend *be, bool prefer_fp16,
                                    ts_error *err);

ts_status ts_pipeline_run (ts_model *m, const ts_generate_params *p, const ts_pipeline_run_args *run,
                           ts_result *out, ts_error *err);

#endif /* TS_PIPELINE_H */
