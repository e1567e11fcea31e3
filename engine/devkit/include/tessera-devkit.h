/* SPDX-License-Identifier: MIT
 *
 * tessera-devkit — what developers use beside the run-time engine: the golden checks that
 * replay the reference set (../shared/golden, computed by the official PyTorch code)
 * through the engine's stages, and the writer of model folders with random weights for
 * measuring speed and memory at the real size. It is a library of its own
 * (libtessera-devkit), linked by tessera-cli, the tools and the tests, never by the app;
 * the engine library (tessera.h) knows nothing of it.
 *
 * Usage:
 *
 *     ts_golden_summary sum;
 *     ts_error err;
 *     ts_status st = ts_golden_check ("../shared/golden", "cpu", report, case_done, NULL,
 *                                     &sum, &err);
 *     // st == TS_OK: every case passed; TS_ERR_MISMATCH: some output out of tolerance
 */
#ifndef TESSERA_DEVKIT_H
#define TESSERA_DEVKIT_H

#include "tessera.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A check against reference data failed. tessera.h leaves -9 free for it. */
#define TS_ERR_MISMATCH ((ts_status) -9)

/* ts_status_name, plus "TS_ERR_MISMATCH". Never NULL. */
const char *ts_devkit_status_name (ts_status status);

/* ---- golden checks (devkit/golden) ------------------------------------------------- */

/* The golden set (../shared/golden) holds reference data computed by the official PyTorch
 * code. ts_golden_check runs every case listed in GOLDEN_DIR/index.json and then in every
 * other GOLDEN_DIR/index*.json (in name order), driven only by the indexes: kinds,
 * parameters and file names. A case kind this build cannot run is
 * reported as not implemented (TS_ERR_UNSUPPORTED) and counts as a failure. A case's
 * "tolerance": {tensor: {"atol": a, "rtol": r}} replaces the built-in check of each tensor
 * it names with |ours − ref| ≤ a + r·|ref| (integer tensors and counts stay exact); a
 * malformed table fails that case with TS_ERR_FORMAT naming the case and the tensor. */

/* One compared output: its max abs error against the tolerance (NAN tolerance for exact
 * comparisons, where max_abs_err counts mismatching elements). Under the bf16 rule
 * (ts_golden_check_precision) a float output reports its normalised RMS error against the
 * rule, and INFINITY as tolerance where it is only reported. */
typedef void (*ts_golden_report_fn) (void *user_data, const char *case_name, const char *tensor,
                                     double max_abs_err, double tolerance, bool pass);
/* A finished case of the index file index_file (a base name, "index-image.json"):
 * TS_OK (passed), TS_ERR_MISMATCH (an output out of tolerance), TS_ERR_UNSUPPORTED (kind
 * not implemented) or another error with its message. */
typedef void (*ts_golden_case_fn) (void *user_data, const char *index_file, const char *case_name,
                                   const char *kind, ts_status status, const char *message);

typedef struct {
  int n_cases, n_passed, n_failed, n_not_implemented;
} ts_golden_summary;

/* backend: "cpu", "cpu-ref", "vulkan", "vulkan:N", "auto" (NULL = "cpu"). Returns TS_OK
 * when every case passed, TS_ERR_MISMATCH when any failed or was not implemented, other
 * codes when the index itself cannot be read. Thread-safety: Unsafe. */
ts_status ts_golden_check (const char *golden_dir, const char *backend, ts_golden_report_fn report,
                           ts_golden_case_fn case_done, void *user_data, ts_golden_summary *summary,
                           ts_error *err);

/* ts_golden_check in a precision mode (ts_golden_check is FP32). In BF16 (or AUTO resolved
 * to it) the cases run under the bf16 rule of docs/precision.md: every float tensor within
 * a normalised RMS error ||ours - ref|| / ||ref|| of 1e-2; token counts and other integer
 * outputs downstream of the bf16 logits are reported but not required; a replay's image is
 * held to the rule only when all its final tokens match. A backend that cannot compute
 * the mode fails the call (TS_ERR_UNSUPPORTED) at the first case that needs it. */
ts_status ts_golden_check_precision (const char *golden_dir, const char *backend,
                                     ts_precision precision, ts_golden_report_fn report,
                                     ts_golden_case_fn case_done, void *user_data,
                                     ts_golden_summary *summary, ts_error *err);

/* ---- random model folders (devkit/ts-random-model.c) -------------------------------- */

/* Writes a full-size model folder with random weights (diffusers layout, dtype F32, F16 or
 * BF16 weights) from a folder of configs: either the diffusers layout (component/config.json)
 * or the golden set's real-configs naming (transformer_config.json, vqvae_config.json,
 * text_encoder_config*.json, model_index.json, scheduler_config*.json, tokenizer_*.json).
 * tokenizer_dir (vocab.json + merges.txt) is copied into OUT/tokenizer. Weights are drawn
 * from the engine's seeded generator so the same seed writes the same files. For measuring
 * speed and memory at the real size without the real weights. */
ts_status ts_make_random_model (const char *configs_dir, const char *tokenizer_dir,
                                const char *out_dir, ts_dtype dtype, uint64_t seed,
                                ts_progress_fn progress, void *progress_data, ts_error *err);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_DEVKIT_H */
