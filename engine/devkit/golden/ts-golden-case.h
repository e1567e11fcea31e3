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
 *
 * Per-case tolerance tables (same README section): an index entry may carry
 * "tolerance": {tensor: {"atol": a, "rtol": r}}. For a tensor it names, the check is
 * |ours − ref| ≤ a + r·|ref| element by element, replacing the runner's default and the
 * magnitude scaling of intermediates: sets at the real widths and depths carry tolerances
 * measured per tensor, and scaling them again would loosen them. Names are exact tensor
 * names as the entry's "tensors" lists them (no patterns); a slice of a stacked reference
 * uses its tensor's row. Integer references stay exact whatever the table says.
 */
#ifndef TS_GOLDEN_CASE_H
#define TS_GOLDEN_CASE_H

#include "devkit/golden/ts-golden.h"
#include "model/ts-safetensors.h"
#include "stages/ts-stage.h"

typedef struct ts_golden_case ts_golden_case;

/* TS_OK when the entry has no "tolerance" or a well-formed one. TS_ERR_FORMAT naming the
 * case and the tensor when the table or a tensor's value is not an object, a value has a
 * key other than "atol" and "rtol", lacks one of them or holds one that is not a finite
 * number ≥ 0, or a tensor is named twice or is not in the entry's "tensors". */
ts_status ts_golden_tolerance_validate (const cJSON *case_entry, ts_error *err);

/* The entry's table values for tensor `name` (exact name) into *atol and *rtol; false,
 * leaving them untouched, when the table has no such tensor. The entry must have passed
 * ts_golden_tolerance_validate. */
bool ts_golden_tolerance_lookup (const cJSON *case_entry, const char *name, double *atol,
                                 double *rtol);

/* Opens golden_dir/<entry "file"> for an entry whose "kind" is `kind`; atol and rtol are
 * the runner's defaults, which the entry's tolerance table overrides per tensor. NULL on
 * failure (TS_ERR_INVALID_ARG for another kind, TS_ERR_FORMAT for an entry without "file"
 * or with a malformed tolerance table, the reader's error for the file). */
ts_golden_case *ts_golden_case_new (const char *golden_dir, const cJSON *case_entry,
                                      const char *kind, double atol, double rtol,
                                      ts_golden_report_fn report, void *ud, ts_error *err);
void ts_golden_case_free (ts_golden_case *gc);

/* Precision bf16's rule (docs/precision.md), in force when `be` computes bf16: every float
 * tensor passes when its normalised RMS error ||ours - ref|| / ||ref|| is at most
 * TS_GOLDEN_BF16_NRMS; integer tensors (and exact ones) are compared and reported, but do
 * not fail the case, being downstream of bf16 logits. */
#define TS_GOLDEN_BF16_NRMS 1e-2
bool ts_golden_bf16_rule (const ts_backend *be);
void ts_golden_case_use_backend (ts_golden_case *gc, const ts_backend *be);
/* The rule for guided logits u + g (c - u): the error of each input within the rule
 * gives at most (|g| + |g - 1|) times it in the combination (TS_GOLDEN_BF16_NRMS for
 * g = 1, 0.17 for the official g = 9). */
double ts_golden_bf16_cfg_rule (double g);
/* ||ours - ref|| / ||ref|| (the RMS of ours - ref when ref is all zeros); NaN anywhere
 * gives NaN. */
double ts_golden_nrms (const float *ours, const double *ref, size_t n);

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

/* As ts_golden_case_compare, but every element must match exactly whatever the defaults
 * and the tolerance table say: for integer quantities the reference stores as floats
 * (mid.mask_len), which the README holds exact like the integer tensors. */
void ts_golden_case_compare_exact (ts_golden_case *gc, const char *name, const float *ours,
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
