/* SPDX-License-Identifier: MIT
 *
 * ts-golden — runners that replay one case of the golden reference set (computed by the
 * official PyTorch code, see shared/golden/README.md) through an engine stage on a given
 * backend and report, tensor by tensor, how far the engine is from the expectation.
 * ts_golden_check (ts-golden.c) reads index.json and dispatches every case to the runner
 * of its kind; the golden tests call the runners directly.
 */
#ifndef TS_GOLDEN_H
#define TS_GOLDEN_H

#include "backend/ts-backend.h"
#include "tessera-devkit.h"
#include "model/ts-safetensors.h"
#include "stages/ts-sampler.h"

#include <cjson/cJSON.h>

/* A runner: case_entry is the case's object in index.json (its ->string is the case
 * name). Returns TS_OK when every output passed, TS_ERR_MISMATCH when any failed (each
 * reported through report), another code when the case could not be run. */
typedef ts_status (*ts_golden_runner_fn) (const char *golden_dir, const cJSON *case_entry,
                                          const ts_backend *be, ts_golden_report_fn report,
                                          void *ud, ts_error *err);

ts_status ts_golden_run_tokenizer (const char *golden_dir, const cJSON *case_entry,
                                   const ts_backend *be, ts_golden_report_fn report, void *ud,
                                   ts_error *err);

ts_status ts_golden_run_pipeline_replay (const char *golden_dir, const cJSON *case_entry,
                                         const ts_backend *be, ts_golden_report_fn report,
                                         void *ud, ts_error *err);

ts_status ts_golden_run_image_replay (const char *golden_dir, const cJSON *case_entry,
                                      const ts_backend *be, ts_golden_report_fn report,
                                      void *ud, ts_error *err);

/* The replay of recorded draws that the pipeline runners share (ts-golden-pipeline.c):
 * feeds stepK.multinomial_draws / gumbel_noise to the sampling loop, and compares each
 * step's stepK.pred_original_sample and prev_sample exactly. */
typedef struct {
  const ts_safetensors *st;
  const char *case_name;
  int n_tokens;
  int32_t *multinomial;
  float *gumbel;
  ts_golden_report_fn report;
  void *ud;
  int n_bad_steps;
  int n_bad_checks; /* failed checks of the runner's own (intermediates) */
  bool bf16; /* precision bf16's rule: tokens and what is decoded from them are reported;
              * the image is required (by normalised RMS) only where every token matched */
} ts_golden_replay;

ts_status ts_golden_replay_draws (void *data, int step, ts_sampler_draws *draws, ts_error *err);
ts_status ts_golden_replay_step_done (void *data, int step, const int32_t *predicted,
                                      const int32_t *tokens, ts_error *err);
ts_status ts_golden_check_outputs (ts_golden_replay *r, const cJSON *case_entry,
                                   const ts_result *res, const float *image_f, ts_error *err);
/* Positions where got differs from the integer tensor want, or -1 when it is absent or
 * not n values. */
long ts_golden_count_mismatch (const ts_st_tensor *want, const int32_t *got, size_t n);

/* The golden set's pipeline model: the folder under GOLDEN_DIR/models holding a
 * model_index.json (cases that name no "model" run on it). */
ts_status ts_golden_pipeline_model_dir (const char *golden_dir, char *out, size_t out_size,
                                        ts_error *err);

/* An index entry's string value (borrowed; NULL when absent or not a string) and number
 * value (false when absent or not a number). */
const char *ts_golden_json_string (const cJSON *entry, const char *key);
bool ts_golden_json_number (const cJSON *entry, const char *key, double *out);

/* Reads a whole (small) file; NUL-terminated. Caller frees. */
char *ts_golden_read_file (const char *path, size_t *size_out, ts_error *err);

/* Kind "transformer_forward": runs the case's inputs through ts_transformer on `be`,
 * compares every listed intermediate (mid.*) and output (out.logits, out.cfg_logits_g<s>
 * through the backend's CFG op, out.logits_fp16_weights with the fp16 weight variant).
 * Each comparison goes to `report`. TS_ERR_MISMATCH when any comparison failed (after all
 * were reported); other codes when the case could not be run. */
ts_status ts_golden_run_transformer_forward (const char *golden_dir, const cJSON *case_entry,
                                             const ts_backend *be, ts_golden_report_fn report,
                                             void *ud, ts_error *err);

ts_status ts_golden_run_scheduler_tables (const char *golden_dir, const cJSON *case_entry,
                                          const ts_backend *be, ts_golden_report_fn report,
                                          void *ud, ts_error *err);
ts_status ts_golden_run_scheduler_step (const char *golden_dir, const cJSON *case_entry,
                                        const ts_backend *be, ts_golden_report_fn report,
                                        void *ud, ts_error *err);

/* Each runner: `golden_dir` is the golden folder (holding index.json), `case_entry` the
 * case's value in index.json's "cases" object (its key is the case name). The model folder
 * is the entry's "model" when present, else models/tiny-meissonic/<component>. Every
 * out./mid. tensor listed in the entry is compared or reported as missing. Returns TS_OK
 * when all pass, TS_ERR_MISMATCH naming the failures otherwise, or the error that stopped
 * the run. */
ts_status ts_golden_run_clip_text (const char *golden_dir, const cJSON *case_entry,
                                   const ts_backend *be, ts_golden_report_fn report, void *ud,
                                   ts_error *err);
ts_status ts_golden_run_vq_decode (const char *golden_dir, const cJSON *case_entry,
                                   const ts_backend *be, ts_golden_report_fn report, void *ud,
                                   ts_error *err);
ts_status ts_golden_run_vq_encode (const char *golden_dir, const cJSON *case_entry,
                                   const ts_backend *be, ts_golden_report_fn report, void *ud,
                                   ts_error *err);

#endif /* TS_GOLDEN_H */
