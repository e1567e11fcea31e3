/* SPDX-License-Identifier: MIT
 *
 * ts-golden-clip — the golden runner for the CLIP text encoder (case kind "clip_text"):
 * loads the case's text encoder (config.json + model.safetensors), runs the case's
 * in.input_ids through ts_text_encoder_forward and compares text_embeds, hidden_states[-2],
 * last_hidden_state and every captured intermediate with the README's CLIP tolerances
 * (atol 1e-5, rtol 1e-4; intermediates scaled by their magnitude).
 */
#include "devkit/golden/ts-golden.h"

#include "core/ts-common.h"
#include "devkit/golden/ts-golden-case.h"
#include "stages/ts-text-encoder-config.h"
#include "stages/ts-text-encoder.h"

#include <string.h>

#define CLIP_ATOL 1e-5
#define CLIP_RTOL 1e-4

ts_status
ts_golden_run_clip_text (const char *golden_dir, const cJSON *case_entry, const ts_backend *be,
                         ts_golden_report_fn report, void *ud, ts_error *err)
{
  ts_golden_case *gc = NULL;
  ts_st_set *set = NULL;
  ts_text_encoder *te = NULL;
  int64_t *ids64 = NULL;
  int32_t *ids = NULL;
  float *embeds = NULL, *m2 = NULL, *last = NULL;
  ts_status st;
  char dir[1536], path[1600];

  gc = ts_golden_case_new (golden_dir, case_entry, "clip_text", CLIP_ATOL, CLIP_RTOL, report,
                            ud, err);
  if (!gc)
    return err ? err->code : TS_ERR_FORMAT;
  ts_golden_case_use_backend (gc, be);

  if (!ts_golden_case_model_dir (gc, "text_encoder", dir, sizeof dir)) {
    st = ts_error_set (err, TS_ERR_INVALID_ARG, "golden: model path too long");
    goto fail;
  }
  ts_clip_text_config cfg;
  snprintf (path, sizeof path, "%s/config.json", dir);
  if ((st = ts_clip_text_config_from_file (path, &cfg, err)) != TS_OK)
    goto fail;
  set = ts_st_set_open (dir, "model", NULL, err);
  if (!set) {
    st = err ? err->code : TS_ERR_IO;
    goto fail;
  }
  te = ts_text_encoder_new (be, &cfg, set, err);
  if (!te) {
    st = err ? err->code : TS_ERR_FORMAT;
    goto fail;
  }

  const ts_st_tensor *t_ids = ts_golden_case_tensor (gc, "in.input_ids", err);
  if (!t_ids) {
    st = TS_ERR_FORMAT;
    goto fail;
  }
  if (t_ids->n_dims != 2 || t_ids->shape[1] != TS_TEXT_ENCODER_SEQ_LEN || t_ids->shape[0] < 1
      || t_ids->shape[0] > 4096) {
    st = ts_error_set (err, TS_ERR_FORMAT, "golden: in.input_ids must be [batch, %d]",
                       TS_TEXT_ENCODER_SEQ_LEN);
    goto fail;
  }
  const int batch = (int) t_ids->shape[0];
  const size_t n_ids = t_ids->n_elements;
  const size_t n_hidden = n_ids * (size_t) cfg.hidden_size;
  ids64 = malloc (n_ids * sizeof *ids64);
  ids = malloc (n_ids * sizeof *ids);
  embeds = malloc ((size_t) batch * (size_t) cfg.projection_dim * sizeof *embeds);
  m2 = malloc (n_hidden * sizeof *m2);
  last = malloc (n_hidden * sizeof *last);
  if (!ids64 || !ids || !embeds || !m2 || !last) {
    st = ts_error_set (err, TS_ERR_NOMEM, "golden: out of memory");
    goto fail;
  }
  if ((st = ts_st_tensor_to_i64 (t_ids, ids64, err)) != TS_OK)
    goto fail;
  for (size_t i = 0; i < n_ids; i++) {
    if (ids64[i] < INT32_MIN || ids64[i] > INT32_MAX) {
      st = ts_error_set (err, TS_ERR_FORMAT, "golden: in.input_ids[%zu] out of range", i);
      goto fail;
    }
    ids[i] = (int32_t) ids64[i];
  }

  const ts_capture cap = ts_golden_case_capture (gc);
  if ((st = ts_text_encoder_forward (te, ids, batch, embeds, m2, last, &cap, err)) != TS_OK)
    goto fail;

  ts_golden_case_compare (gc, "out.text_embeds", embeds,
                           (size_t) batch * (size_t) cfg.projection_dim);
  ts_golden_case_compare (gc, "out.hidden_states_m2", m2, n_hidden);
  ts_golden_case_compare (gc, "out.last_hidden_state", last, n_hidden);
  st = ts_golden_case_finish (gc, err);

fail:
  free (ids64);
  free (ids);
  free (embeds);
  free (m2);
  free (last);
  ts_text_encoder_free (te);
  ts_st_set_free (set);
  ts_golden_case_free (gc);
  return st;
}
