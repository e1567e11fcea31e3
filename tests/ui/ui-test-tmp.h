/* SPDX-License-Identifier: MIT
 *
 * ui-test-tmp — the UI tests' temporary folder goes when the test ends (each run wrote a
 * gallery of PNGs into /tmp and left it there).
 */
#ifndef UI_TEST_TMP_H
#define UI_TEST_TMP_H

#include <glib.h>

/* Removes dir and everything under it (a g_dir_make_tmp folder); unless
 * TESSERA_KEEP_TEST_DIR is set, for looking at what a failing run left. */
static inline void
ui_test_remove_tmp (const char *dir)
{
  const char *argv[] = { "rm", "-rf", "--", dir, NULL };

  if (!dir || g_getenv ("TESSERA_KEEP_TEST_DIR"))
    return;
  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                NULL);
}

#endif /* UI_TEST_TMP_H */
