/* SPDX-License-Identifier: MIT
 *
 * ts-golden — runs the golden set (reference data computed by the official PyTorch code,
 * see ../shared/golden/README.md) against this engine. Everything is driven by the index
 * files, GOLDEN_DIR/index.json and then every other GOLDEN_DIR/index*.json (later groups of
 * cases come as further index files): each case's "kind" picks a runner, and the runner reads the
 * case's parameters and file names from its index entry. A kind without a runner is
 * reported as not implemented and counts as a failure, never as a pass. A case whose
 * "tolerance" table is malformed fails with TS_ERR_FORMAT before it runs, whatever its kind
 * (the table's rules are in ts-golden-case.h).
 *
 * This file also holds the tokenizer runner, which needs no compute backend.
 */
#include "devkit/golden/ts-golden.h"

#include "core/ts-common.h"
#include "core/ts-file.h"
#include "devkit/golden/ts-golden-case.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

static const struct {
  const char *kind;
  ts_golden_runner_fn run;
  bool needs_backend;
} runners[] = {
  { "tokenizer", ts_golden_run_tokenizer, false },
  { "clip_text", ts_golden_run_clip_text, true },
  { "transformer_forward", ts_golden_run_transformer_forward, true },
  { "scheduler_tables", ts_golden_run_scheduler_tables, false },
  { "scheduler_step", ts_golden_run_scheduler_step, false },
  { "pipeline_replay", ts_golden_run_pipeline_replay, true },
  { "vq_decode", ts_golden_run_vq_decode, true },
  { "vq_encode", ts_golden_run_vq_encode, true },
  { "img2img_replay", ts_golden_run_image_replay, true },
  { "inpaint_replay", ts_golden_run_image_replay, true },
};

const char *
ts_golden_json_string (const cJSON *entry, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (entry, key);
  return cJSON_IsString (v) ? v->valuestring : NULL;
}

bool
ts_golden_json_number (const cJSON *entry, const char *key, double *out)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (entry, key);
  if (!cJSON_IsNumber (v))
    return false;
  *out = v->valuedouble;
  return true;
}

char *
ts_golden_read_file (const char *path, size_t *size_out, ts_error *err)
{
  FILE *f = NULL;
  char *buf = NULL;
  uint64_t size = 0;

  /* Regular files only: a FIFO in a golden folder must not block the checker (ts-file). */
  if (ts_file_fopen_regular (path, "golden", &f, &size, err) != TS_OK)
    return NULL;
  if (size >= SIZE_MAX) {
    ts_error_set (err, TS_ERR_NOMEM, "%s: too large", path);
    goto fail;
  }
  buf = malloc ((size_t) size + 1);
  if (!buf) {
    ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory reading %" PRIu64 " bytes", path, size);
    goto fail;
  }
  if (fread (buf, 1, (size_t) size, f) != (size_t) size) {
    ts_error_set (err, TS_ERR_IO, "%s: short read", path);
    free (buf);
    buf = NULL;
    goto fail;
  }
  buf[size] = '\0';
  if (size_out)
    *size_out = (size_t) size;
fail:
  fclose (f);
  return buf;
}

ts_status
ts_golden_pipeline_model_dir (const char *golden_dir, char *out, size_t out_size, ts_error *err)
{
  char models[4096], probe[4096 + 512];
  struct dirent *de;
  DIR *d;
  ts_status status = TS_ERR_NOT_FOUND;

  snprintf (models, sizeof models, "%s/models", golden_dir);
  d = opendir (models);
  if (!d)
    return ts_error_set (err, TS_ERR_NOT_FOUND, "%s: %s", models, strerror (errno));
  /* Pick the lexicographically first folder with a model_index.json, so the choice does
   * not depend on readdir order. */
  out[0] = '\0';
  while ((de = readdir (d))) {
    struct stat st;
    if (de->d_name[0] == '.')
      continue;
    snprintf (probe, sizeof probe, "%s/%s/model_index.json", models, de->d_name);
    if (stat (probe, &st) != 0)
      continue;
    if (out[0] == '\0' || strcmp (de->d_name, strrchr (out, '/') + 1) < 0) {
      snprintf (out, out_size, "%s/%s", models, de->d_name);
      status = TS_OK;
    }
  }
  closedir (d);
  if (status != TS_OK)
    ts_error_set (err, status, "%s: no model folder with a model_index.json", models);
  return status;
}

/* ---- tokenizer ---- */

static bool
ids_equal (const int32_t *got, size_t n_got, const cJSON *want)
{
  size_t i = 0;
  const cJSON *item;

  if (!cJSON_IsArray (want) || (size_t) cJSON_GetArraySize (want) != n_got)
    return false;
  cJSON_ArrayForEach (item, want) {
    if (!cJSON_IsNumber (item) || item->valuedouble != (double) got[i++])
      return false;
  }
  return true;
}

ts_status
ts_golden_run_tokenizer (const char *golden_dir, const cJSON *case_entry, const ts_backend *be,
                         ts_golden_report_fn report, void *ud, ts_error *err)
{
  const char *case_name = case_entry->string ? case_entry->string : "tokenizer";
  const cJSON *file = cJSON_GetObjectItemCaseSensitive (case_entry, "file");
  char model_dir[4096], path[8192];
  ts_tokenizer *tok = NULL;
  cJSON *root = NULL;
  char *text = NULL;
  int32_t *ids = NULL;
  size_t cap = 4096;
  int n_cases = 0, n_bad_padded = 0, n_bad_full = 0;
  ts_status status;

  (void) be;
  if (!cJSON_IsString (file))
    return ts_error_set (err, TS_ERR_FORMAT, "%s: index entry has no \"file\"", case_name);
  status = ts_golden_pipeline_model_dir (golden_dir, model_dir, sizeof model_dir, err);
  if (status != TS_OK)
    return status;
  snprintf (path, sizeof path, "%s/tokenizer", model_dir);
  tok = ts_tokenizer_load (path, err);
  if (!tok)
    return err ? err->code : TS_ERR_IO;

  snprintf (path, sizeof path, "%s/%s", golden_dir, file->valuestring);
  text = ts_golden_read_file (path, NULL, err);
  if (!text) {
    status = err ? err->code : TS_ERR_IO;
    goto out;
  }
  root = cJSON_Parse (text);
  const cJSON *cases = cJSON_GetObjectItemCaseSensitive (root, "cases");
  if (!cJSON_IsArray (cases)) {
    status = ts_error_set (err, TS_ERR_FORMAT, "%s: no \"cases\" array", path);
    goto out;
  }
  ids = malloc (cap * sizeof *ids);
  if (!ids) {
    status = ts_error_set (err, TS_ERR_NOMEM, "out of memory");
    goto out;
  }

  const cJSON *c;
  cJSON_ArrayForEach (c, cases) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive (c, "text");
    int32_t padded[TS_TOKENIZER_MAX_LENGTH];
    size_t n_total = 0;
    bool truncated;

    if (!cJSON_IsString (t)) {
      status = ts_error_set (err, TS_ERR_FORMAT, "%s: case %d has no \"text\"", path, n_cases);
      goto out;
    }
    n_cases++;
    if (ts_tokenizer_encode_padded (tok, t->valuestring, padded, &truncated, NULL) != TS_OK
        || !ids_equal (padded, TS_TOKENIZER_MAX_LENGTH,
                       cJSON_GetObjectItemCaseSensitive (c, "input_ids")))
      n_bad_padded++;
    if (ts_tokenizer_encode (tok, t->valuestring, ids, cap, &n_total, NULL) != TS_OK
        || n_total > cap
        || !ids_equal (ids, n_total, cJSON_GetObjectItemCaseSensitive (c, "untruncated_ids")))
      n_bad_full++;
  }
  /* Exact comparisons: the "error" is the number of prompts whose ids differ. */
  report (ud, case_name, "input_ids (77)", n_bad_padded, NAN, n_bad_padded == 0);
  report (ud, case_name, "untruncated_ids", n_bad_full, NAN, n_bad_full == 0);
  status = (n_bad_padded || n_bad_full) ? TS_ERR_MISMATCH : TS_OK;
  if (status != TS_OK)
    ts_error_set (err, status, "%s: %d of %d prompts differ (77-id form), %d (untruncated)",
                  case_name, n_bad_padded, n_cases, n_bad_full);

out:
  free (ids);
  cJSON_Delete (root);
  free (text);
  ts_tokenizer_free (tok);
  return status;
}

/* ---- the driver ---- */

static int
compare_names (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The index files of golden_dir: index.json first, then every other index*.json in name
 * order. Returns how many (at most max), each a malloc'd base name. */
static int
list_indexes (const char *golden_dir, char **names, int max)
{
  struct dirent *de;
  DIR *d = opendir (golden_dir);
  int n = 0;

  if (!d)
    return 0;
  while ((de = readdir (d)) && n < max) {
    size_t len = strlen (de->d_name);
    if (strncmp (de->d_name, "index", 5) != 0 || len < 10
        || strcmp (de->d_name + len - 5, ".json") != 0)
      continue;
    names[n] = malloc (len + 1);
    if (names[n])
      memcpy (names[n++], de->d_name, len + 1);
  }
  closedir (d);
  qsort (names, (size_t) n, sizeof *names, compare_names);
  for (int i = 0; i < n; i++)
    if (strcmp (names[i], "index.json") == 0) {
      char *first = names[i];
      memmove (names + 1, names, (size_t) i * sizeof *names);
      names[0] = first;
    }
  return n;
}

ts_status
ts_golden_check (const char *golden_dir, const char *backend, ts_golden_report_fn report,
                 ts_golden_case_fn case_done, void *user_data, ts_golden_summary *summary,
                 ts_error *err)
{
  return ts_golden_check_precision (golden_dir, backend, TS_PRECISION_FP32, report, case_done,
                                    user_data, summary, err);
}

ts_status
ts_golden_check_precision (const char *golden_dir, const char *backend, ts_precision precision,
                           ts_golden_report_fn report, ts_golden_case_fn case_done,
                           void *user_data, ts_golden_summary *summary, ts_error *err)
{
  ts_golden_summary sum = { 0 };
  ts_backend be = { 0 };
  bool have_backend = false;
  char path[4096];
  char *indexes[32];
  int n_indexes;
  ts_status status = TS_OK;

  if (!golden_dir || !report || !case_done)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "golden: missing argument");
  if (!backend)
    backend = "cpu";
  if (!ts_backend_name_valid (backend))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "golden: unknown backend '%s' (this build has: %s)",
                         backend, ts_backend_names ());

  n_indexes = list_indexes (golden_dir, indexes, 32);
  if (n_indexes == 0 || strcmp (indexes[0], "index.json") != 0) {
    for (int i = 0; i < n_indexes; i++)
      free (indexes[i]);
    n_indexes = 0;
    /* No index.json: say so with the reader's own error. */
    snprintf (path, sizeof path, "%s/index.json", golden_dir);
    free (ts_golden_read_file (path, NULL, err));
    return err && err->code != TS_OK ? err->code : TS_ERR_NOT_FOUND;
  }

  for (int ix = 0; ix < n_indexes && status == TS_OK; ix++) {
    const char *index_name = indexes[ix];
    const cJSON *cases, *entry;
    cJSON *index;
    char *text;

    snprintf (path, sizeof path, "%s/%s", golden_dir, index_name);
    text = ts_golden_read_file (path, NULL, err);
    if (!text) {
      status = err ? err->code : TS_ERR_IO;
      break;
    }
    index = cJSON_Parse (text);
    free (text);
    cases = cJSON_GetObjectItemCaseSensitive (index, "cases");
    if (!cJSON_IsObject (cases)) {
      cJSON_Delete (index);
      status = ts_error_set (err, TS_ERR_FORMAT, "%s: not a golden index (no \"cases\" object)",
                             path);
      break;
    }

    cJSON_ArrayForEach (entry, cases) {
      const cJSON *kind = cJSON_GetObjectItemCaseSensitive (entry, "kind");
      const char *kind_name = cJSON_IsString (kind) ? kind->valuestring : "(none)";
      ts_golden_runner_fn run = NULL;
      bool needs_backend = false;
      ts_error case_err = { TS_OK, "" };
      ts_status st;

      sum.n_cases++;
      for (size_t i = 0; i < sizeof runners / sizeof runners[0]; i++)
        if (strcmp (runners[i].kind, kind_name) == 0) {
          run = runners[i].run;
          needs_backend = runners[i].needs_backend;
        }
      if (!run) {
        sum.n_not_implemented++;
        case_done (user_data, index_name, entry->string, kind_name, TS_ERR_UNSUPPORTED,
                   "not implemented");
        continue;
      }
      if ((st = ts_golden_tolerance_validate (entry, &case_err)) != TS_OK) {
        sum.n_failed++;
        case_done (user_data, index_name, entry->string, kind_name, st, case_err.message);
        continue;
      }
      if (needs_backend && !have_backend) {
        st = ts_backend_new_by_name (&be, backend, 0, &case_err);
        if (st != TS_OK) {
          status = ts_error_set (err, st, "golden: cannot create backend '%s': %s", backend,
                                 case_err.message);
          break;
        }
        have_backend = true;
        if ((st = ts_backend_set_precision (&be, precision, NULL, &case_err)) != TS_OK) {
          status = ts_error_set (err, st, "golden: backend '%s': %s", backend, case_err.message);
          break;
        }
      }
      st = run (golden_dir, entry, have_backend ? &be : NULL, report, user_data, &case_err);
      if (st == TS_OK)
        sum.n_passed++;
      else
        sum.n_failed++;
      case_done (user_data, index_name, entry->string, kind_name, st,
                 st == TS_OK ? "" : case_err.message);
    }
    cJSON_Delete (index);
  }

  for (int i = 0; i < n_indexes; i++)
    free (indexes[i]);
  if (have_backend)
    ts_backend_free (&be);
  if (summary)
    *summary = sum;
  if (status != TS_OK)
    return status;
  if (sum.n_failed || sum.n_not_implemented)
    return ts_error_set (err, TS_ERR_MISMATCH, "golden: %d of %d cases failed, %d not implemented",
                         sum.n_failed, sum.n_cases, sum.n_not_implemented);
  return TS_OK;
}

const char *
ts_devkit_status_name (ts_status status)
{
  if (status == TS_ERR_MISMATCH)
    return "TS_ERR_MISMATCH";
  return ts_status_name (status);
}
