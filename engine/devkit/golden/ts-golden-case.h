/* SPDX-License-Identifier: MIT
 *
 * ts-golden-case — the comparison machinery the golden runners (ts-golden-*.c) share: it
 * opens a case file named by an index.json entry, compares engine tensors with the
 * expected ones under the README's tolerance rule, serves as a ts_capture hook for
 * intermediates, and at the end reports every listed out./mid. tensor that was never
 * compared.
 *
 * Tolerance rule (golden README, "Tolerances"): an element passes when
 * |ours − ref| ≤ atol + rtol·|ref|. For intermediates (`mid.*`) atol is scaled by
 * max(1, max |ref|) of the tensor. Integer references (token ids, indices) must match
 * exactly. A captured name "<tensor>.<i>" that is not in the file compares against slice i
 * of <tensor>'s first dimension (stacked references such as mid.hidden_states_all).
 */
#ifndef TS_GOLDEN_CASE_H
#define TS_GOLDEN_CASE_H

#include "devkit/golden/ts-golden.h"
#include "model/ts-safetensors.h"
#include "stages/ts-stage.h"

typedef struct ts_golden_case ts_golden_case;

/* Opens golden_dir/<entry "file"> for an entry whose "kind" is `kind`. NULL on failure
 * (TS_ERR_INVALID_ARG for another kind, TS_ERR_FORMAT for an entry without "file", the
 * reader's error for the file). */
ts_golden_case *ts_golden_case_new (const char *golden_dir, const cJSON *case_entry,
                                      const char *kind, double atol, double rtol,
                                      ts_golden_report_fn report, void *ud, ts_error *err);
void ts_golden_case_free (ts_golden_case *gc);

/* The case name (the entry's key in "cases"). */
const char *ts_golden_case_case_name (const ts_golden_case *gc);

/* The model component folder: golden_dir/<entry "model"> or golden_dir/models/tiny-meissonic/
 * <component>. Written into buf; false when it does not fit. */
bool ts_golden_case_model_dir (const ts_golden_case *gc, const char *component, char *buf,
                                size_t size);

/* A tensor of the case file, NULL with err set (TS_ERR_FORMAT naming it) when absent. */
const ts_st_tensor *ts_golden_case_tensor (const ts_golden_case *gc, const char *name,
                                            ts_error *err);

/* Compares n floats with the reference `name` (or a slice, see above) and reports it. */
void ts_golden_case_compare (ts_golden_case *gc, const char *name, const float *ours,
                              size_t n);

/* Reports a check done by the runner itself (e.g. uint8 pixels with a boundary rule). */
void ts_golden_case_report (ts_golden_case *gc, const char *name, double max_abs_err,
                             double tolerance, bool pass);

/* A capture hook that calls ts_golden_case_compare for each captured tensor. */
ts_capture ts_golden_case_capture (ts_golden_case *gc);

/* Reports every out./mid. tensor of the entry that was never compared (a stacked one must
 * have had all its slices), then returns TS_OK when everything passed, otherwise
 * TS_ERR_MISMATCH with err naming the failed tensors. */
ts_status ts_golden_case_finish (ts_golden_case *gc, ts_error *err);

#endif /* TS_GOLDEN_CASE_H */
