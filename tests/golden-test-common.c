/* SPDX-License-Identifier: MIT
 *
 * Helpers the stage golden tests share. See golden-test-common.h.
 */
#include "golden-test-common.h"

#include <glib.h>

void
report_cb (void *ud, const char *case_name, const char *tensor, double max_abs_err,
           double tolerance, bool pass)
{
  counts *c = ud;
  g_test_message ("%s %-28s max abs err %.3e  tolerance %.3e  %s", case_name, tensor,
                  max_abs_err, tolerance, pass ? "ok" : "FAIL");
  if (pass)
    c->n_pass++;
  else
    c->n_fail++;
}

const char *
golden_dir (void)
{
  const char *dir = g_getenv ("TESSERA_GOLDEN_DIR");
  if (!dir || !g_file_test (dir, G_FILE_TEST_IS_DIR))
    return NULL;
  return dir;
}

cJSON *
load_index (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, "index.json", NULL);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  cJSON *index = cJSON_Parse (text);
  g_assert_nonnull (index);
  return index;
}
