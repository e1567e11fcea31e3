/* SPDX-License-Identifier: MIT
 *
 * ts-golden — runners that replay one case of the golden reference set (computed by the
 * official PyTorch code, see shared/golden/README.md) through an engine stage on a given
 * backend and report, tensor by tensor, how far the engine is from the expectation. The
 * golden tests and the CLI's check command drive them from index.json entries.
 */
#ifndef TS_GOLDEN_H
#define TS_GOLDEN_H

#include "ts-backend.h"
#include <cjson/cJSON.h>

typedef void (*ts_golden_report_fn)(void *ud, const char *case_name, const char *tensor, double max_abs_err, double tolerance, bool pass);

/* Kind "transformer_forward": runs the case's inputs through ts_transformer on `be`,
 * compares every listed intermediate (mid.*) and output (out.logits, out.cfg_logits_g<s>
 * through the backend's CFG op, out.logits_fp16_weights with the fp16 weight variant).
 * Each comparison goes to `report`. TS_ERR_MISMATCH when any comparison failed (after all
 * were reported); other codes when the case could not be run. */
ts_status ts_golden_run_transformer_forward (const char *golden_dir, const cJSON *case_entry,
                                             const ts_backend *be, ts_golden_report_fn report,
                                             void *ud, ts_error *err);

#endif /* TS_GOLDEN_H */
