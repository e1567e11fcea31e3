/* SPDX-License-Identifier: MIT
 *
 * ts-golden — runners that check engine stages against the golden reference cases
 * (shared/golden: tensors computed by the official PyTorch code on a tiny model). Each
 * runner is driven by one entry of the golden index.json, runs the stage on a backend and
 * reports every compared tensor through a callback; the tests and the golden CLI use them.
 */
#ifndef TS_GOLDEN_H
#define TS_GOLDEN_H

#include "ts-backend.h"
#include <cjson/cJSON.h>

typedef void (*ts_golden_report_fn)(void *ud, const char *case_name, const char *tensor, double max_abs_err, double tolerance, bool pass);

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
