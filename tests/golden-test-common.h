/* SPDX-License-Identifier: MIT
 *
 * Helpers the stage golden tests share: the golden folder from TESSERA_GOLDEN_DIR, its
 * index.json, and a report callback that prints every compared tensor and counts results.
 */
#ifndef GOLDEN_TEST_COMMON_H
#define GOLDEN_TEST_COMMON_H

#include "devkit/golden/ts-golden.h"

typedef struct {
  int n_pass, n_fail;
} counts;

/* ts_golden_report_fn: g_test_message per tensor; ud is a counts. */
void report_cb (void *ud, const char *case_name, const char *tensor, double max_abs_err,
                double tolerance, bool pass);
/* TESSERA_GOLDEN_DIR when it names a folder, else NULL (the test then skips). */
const char *golden_dir (void);
/* dir/index.json parsed; asserts on failure. Free with cJSON_Delete. */
cJSON *load_index (const char *dir);

#endif /* GOLDEN_TEST_COMMON_H */
