/* SPDX-License-Identifier: MIT
 *
 * The image-pipeline replays of the golden set (index-image.json: img2img_replay,
 * inpaint_replay, outpaint_replay) through ts_golden_check: a temporary golden folder
 * links the shared set's models/ and cases/ and holds an empty index.json and a copy of
 * index-image.json. Unchanged, every case passes and is reported as coming from
 * index-image.json. With one parameter of a case changed (guidance, strength, steps, the
 * prompt) the same case must fail with TS_ERR_MISMATCH and the others still pass: the
 * runner really compares what the engine computed with what the official code did.
 */
#include "devkit/golden/ts-golden.h"
#include "golden-test-common.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  GHashTable *status; /* case name → ts_status */
  int n_fail_reports;
  bool wrong_index_file;
} run_log;

static void
log_report (void *ud, const char *case_name, const char *tensor, double max_abs_err,
            double tolerance, bool pass)
{
  run_log *l = ud;
  if (!pass) {
    l->n_fail_reports++;
    g_test_message ("FAIL %s %s: %g (tol %g)", case_name, tensor, max_abs_err, tolerance);
  }
}

static void
log_case (void *ud, const char *index_file, const char *case_name, const char *kind,
          ts_status status, const char *message)
{
  run_log *l = ud;
  g_test_message ("%s (%s, %s): %s %s", case_name, kind, index_file, ts_devkit_status_name (status),
                  message);
  if (strcmp (index_file, "index-image.json") != 0)
    l->wrong_index_file = true;
  g_hash_table_insert (l->status, g_strdup (case_name), GINT_TO_POINTER (status));
}

/* A golden folder with the shared models/ and cases/, an empty index.json and
 * index-image.json = the shared one with `edit` applied to case `name` (NULL: unchanged). */
static char *
make_folder (const char *golden, const char *name, const char *key, cJSON *value)
{
  char *dir = g_dir_make_tmp ("tessera-golden-image-XXXXXX", NULL);
  g_autofree char *models = g_build_filename (golden, "models", NULL);
  g_autofree char *cases = g_build_filename (golden, "cases", NULL);
  g_autofree char *link_models = g_build_filename (dir, "models", NULL);
  g_autofree char *link_cases = g_build_filename (dir, "cases", NULL);
  g_autofree char *src = g_build_filename (golden, "index-image.json", NULL);
  g_autofree char *dst = g_build_filename (dir, "index-image.json", NULL);
  g_autofree char *dst0 = g_build_filename (dir, "index.json", NULL);
  g_autofree char *text = NULL;
  char *out;
  cJSON *index;

  g_assert_nonnull (dir);
  g_assert_cmpint (symlink (models, link_models), ==, 0);
  g_assert_cmpint (symlink (cases, link_cases), ==, 0);
  g_assert_true (g_file_set_contents (dst0, "{\"cases\": {}}", -1, NULL));
  g_assert_true (g_file_get_contents (src, &text, NULL, NULL));
  index = cJSON_Parse (text);
  g_assert_nonnull (index);
  if (name) {
    cJSON *entry = cJSON_GetObjectItemCaseSensitive (cJSON_GetObjectItemCaseSensitive (index, "cases"), name);
    g_assert_nonnull (entry);
    g_assert_true (cJSON_ReplaceItemInObjectCaseSensitive (entry, key, value));
  } else {
    cJSON_Delete (value);
  }
  out = cJSON_Print (index);
  g_assert_true (g_file_set_contents (dst, out, -1, NULL));
  free (out);
  cJSON_Delete (index);
  return dir;
}

static void
remove_folder (char *dir)
{
  const char *names[] = { "models", "cases", "index.json", "index-image.json" };
  for (size_t i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree char *p = g_build_filename (dir, names[i], NULL);
    g_unlink (p);
  }
  g_rmdir (dir);
  g_free (dir);
}

static ts_status
run (const char *dir, run_log *l)
{
  ts_golden_summary sum;
  ts_error err;
  ts_status st;

  l->status = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  l->n_fail_reports = 0;
  l->wrong_index_file = false;
  st = ts_golden_check (dir, "cpu", log_report, log_case, l, &sum, &err);
  g_assert_cmpint (sum.n_cases, ==, 3);
  g_assert_false (l->wrong_index_file);
  return st;
}

static ts_status
case_status (run_log *l, const char *name)
{
  gpointer v;
  g_assert_true (g_hash_table_lookup_extended (l->status, name, NULL, &v));
  return (ts_status) GPOINTER_TO_INT (v);
}

static void
test_unchanged (void)
{
  const char *golden = golden_dir ();
  run_log l;
  char *dir;

  if (!golden) {
    g_test_skip ("no golden set");
    return;
  }
  dir = make_folder (golden, NULL, NULL, NULL);
  g_assert_cmpint (run (dir, &l), ==, TS_OK);
  g_assert_cmpint (case_status (&l, "img2img_replay"), ==, TS_OK);
  g_assert_cmpint (case_status (&l, "inpaint_replay"), ==, TS_OK);
  g_assert_cmpint (case_status (&l, "outpaint_replay"), ==, TS_OK);
  g_assert_cmpint (l.n_fail_reports, ==, 0);
  g_hash_table_destroy (l.status);
  remove_folder (dir);
}

typedef struct {
  const char *name, *key;
  double number;
  const char *string;
  bool computed; /* the case runs and its results differ (else: it asks for data the
                  * file does not have, a step that was never recorded) */
} edit;

static void
test_edited (gconstpointer data)
{
  const edit *e = data;
  const char *golden = golden_dir ();
  const char *others[] = { "img2img_replay", "inpaint_replay", "outpaint_replay" };
  run_log l;
  char *dir;

  if (!golden) {
    g_test_skip ("no golden set");
    return;
  }
  dir = make_folder (golden, e->name, e->key,
                     e->string ? cJSON_CreateString (e->string) : cJSON_CreateNumber (e->number));
  g_assert_cmpint (run (dir, &l), ==, TS_ERR_MISMATCH);
  if (e->computed) {
    g_assert_cmpint (case_status (&l, e->name), ==, TS_ERR_MISMATCH);
    g_assert_cmpint (l.n_fail_reports, >, 0);
  } else {
    g_assert_cmpint (case_status (&l, e->name), !=, TS_OK);
  }
  for (size_t i = 0; i < G_N_ELEMENTS (others); i++)
    if (strcmp (others[i], e->name) != 0)
      g_assert_cmpint (case_status (&l, others[i]), ==, TS_OK);
  g_hash_table_destroy (l.status);
  remove_folder (dir);
}

int
main (int argc, char **argv)
{
  static const edit edits[] = {
    { "img2img_replay", "strength", 0.7, NULL, false }, /* 4 steps from index 2, not 3 */
    { "img2img_replay", "guidance_scale", 7.0, NULL, true },
    { "inpaint_replay", "guidance_scale", 8.0, NULL, true },
    { "inpaint_replay", "prompt", 0, "A stylish cat wearing sunglasses.", true },
    { "inpaint_replay", "strength", 0.5, NULL, false }, /* 4 of 8 steps */
    { "outpaint_replay", "num_inference_steps", 7, NULL, false },
  };
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/golden-image/unchanged", test_unchanged);
  for (size_t i = 0; i < G_N_ELEMENTS (edits); i++) {
    char *path = g_strdup_printf ("/golden-image/edited/%s/%s", edits[i].name, edits[i].key);
    g_test_add_data_func (path, &edits[i], test_edited);
    g_free (path);
  }
  return g_test_run ();
}
