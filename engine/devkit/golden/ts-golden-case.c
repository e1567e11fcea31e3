/* SPDX-License-Identifier: MIT
 *
 * ts-golden-case — shared comparison machinery of the golden runners; see the header for
 * the tolerance rule. Failures are also logged at WARN with the element index, so a test
 * log shows where a tensor went wrong and not only by how much.
 */
#include "devkit/golden/ts-golden-case.h"

#include "core/ts-common.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

typedef struct {
  char name[128];
  int n_slices; /* compared slices of a stacked reference */
  bool whole;   /* compared as a whole */
} gc_seen;

struct ts_golden_case {
  char golden_dir[1024];
  const cJSON *entry;
  const char *case_name;
  ts_safetensors *file;
  double atol, rtol;
  ts_golden_report_fn report;
  void *ud;
  bool bf16; /* precision bf16's rule (ts_golden_case_use_backend) */

  gc_seen *seen;
  size_t n_seen, cap_seen;
  int n_fail;
  char failures[TS_ERROR_MESSAGE_MAX / 2];
};

/* One tensor's value of the tolerance table: {"atol": a, "rtol": r}, both finite and ≥ 0,
 * nothing else. */
static ts_status
tolerance_check_value (const char *case_name, const cJSON *value, ts_error *err)
{
  bool have_atol = false, have_rtol = false;
  const cJSON *item;

  if (!cJSON_IsObject (value))
    return ts_error_set (err, TS_ERR_FORMAT,
                         "golden: case '%s': tolerance for '%s' is not an object "
                         "{\"atol\": a, \"rtol\": r}", case_name, value->string);
  cJSON_ArrayForEach (item, value)
  {
    const char *key = item->string ? item->string : "";
    bool *have = strcmp (key, "atol") == 0 ? &have_atol : strcmp (key, "rtol") == 0 ? &have_rtol
                                                                                  : NULL;
    if (!have)
      return ts_error_set (err, TS_ERR_FORMAT,
                           "golden: case '%s': tolerance for '%s' has an unknown key '%s' "
                           "(only \"atol\" and \"rtol\")", case_name, value->string, key);
    if (*have)
      return ts_error_set (err, TS_ERR_FORMAT,
                           "golden: case '%s': tolerance for '%s' gives %s twice", case_name,
                           value->string, key);
    *have = true;
    if (!cJSON_IsNumber (item) || !isfinite (item->valuedouble) || item->valuedouble < 0)
      return ts_error_set (err, TS_ERR_FORMAT,
                           "golden: case '%s': tolerance for '%s': %s must be a finite number "
                           ">= 0", case_name, value->string, key);
  }
  if (!have_atol || !have_rtol)
    return ts_error_set (err, TS_ERR_FORMAT, "golden: case '%s': tolerance for '%s' lacks \"%s\"",
                         case_name, value->string, have_atol ? "rtol" : "atol");
  return TS_OK;
}

ts_status
ts_golden_tolerance_validate (const cJSON *case_entry, ts_error *err)
{
  const char *case_name = case_entry->string ? case_entry->string : "(unnamed case)";
  const cJSON *table = cJSON_GetObjectItemCaseSensitive (case_entry, "tolerance");
  const cJSON *tensors = cJSON_GetObjectItemCaseSensitive (case_entry, "tensors");
  const cJSON *value;
  ts_status st;

  if (!table)
    return TS_OK;
  if (!cJSON_IsObject (table))
    return ts_error_set (err, TS_ERR_FORMAT,
                         "golden: case '%s': \"tolerance\" is not an object "
                         "{tensor: {\"atol\": a, \"rtol\": r}}", case_name);
  cJSON_ArrayForEach (value, table)
  {
    const char *name = value->string ? value->string : "";
    /* A name the case does not list would silently leave the default in force; a name given
     * twice would make the table's meaning depend on which one a reader takes. */
    if (!cJSON_IsObject (tensors) || !cJSON_GetObjectItemCaseSensitive (tensors, name))
      return ts_error_set (err, TS_ERR_FORMAT,
                           "golden: case '%s': tolerance for '%s', a tensor the case does not "
                           "list", case_name, name);
    for (const cJSON *prev = table->child; prev != value; prev = prev->next)
      if (prev->string && strcmp (prev->string, name) == 0)
        return ts_error_set (err, TS_ERR_FORMAT,
                             "golden: case '%s': tolerance for '%s' is given twice", case_name,
                             name);
    if ((st = tolerance_check_value (case_name, value, err)) != TS_OK)
      return st;
  }
  return TS_OK;
}

bool
ts_golden_tolerance_lookup (const cJSON *case_entry, const char *name, double *atol,
                            double *rtol)
{
  const cJSON *table = cJSON_GetObjectItemCaseSensitive (case_entry, "tolerance");
  const cJSON *value = cJSON_IsObject (table) ? cJSON_GetObjectItemCaseSensitive (table, name)
                                              : NULL;
  const cJSON *a = cJSON_GetObjectItemCaseSensitive (value, "atol");
  const cJSON *r = cJSON_GetObjectItemCaseSensitive (value, "rtol");

  if (!cJSON_IsNumber (a) || !cJSON_IsNumber (r))
    return false;
  *atol = a->valuedouble;
  *rtol = r->valuedouble;
  return true;
}

ts_golden_case *
ts_golden_case_new (const char *golden_dir, const cJSON *case_entry, const char *kind,
                     double atol, double rtol, ts_golden_report_fn report, void *ud,
                     ts_error *err)
{
  TS_ASSERT (golden_dir && case_entry && kind);
  const char *name = case_entry->string ? case_entry->string : "(unnamed case)";
  const cJSON *entry_kind = cJSON_GetObjectItemCaseSensitive (case_entry, "kind");
  if (!cJSON_IsString (entry_kind) || strcmp (entry_kind->valuestring, kind) != 0) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "golden: case '%s' is of kind '%s', not '%s'", name,
                  cJSON_IsString (entry_kind) ? entry_kind->valuestring : "(none)", kind);
    return NULL;
  }
  const cJSON *file = cJSON_GetObjectItemCaseSensitive (case_entry, "file");
  if (!cJSON_IsString (file)) {
    ts_error_set (err, TS_ERR_FORMAT, "golden: case '%s': no \"file\" in its index entry", name);
    return NULL;
  }
  if (ts_golden_tolerance_validate (case_entry, err) != TS_OK)
    return NULL;
  ts_golden_case *gc = calloc (1, sizeof *gc);
  if (!gc) {
    ts_error_set (err, TS_ERR_NOMEM, "golden: out of memory");
    return NULL;
  }
  gc->entry = case_entry;
  gc->case_name = name;
  gc->atol = atol;
  gc->rtol = rtol;
  gc->report = report;
  gc->ud = ud;
  if ((size_t) snprintf (gc->golden_dir, sizeof gc->golden_dir, "%s", golden_dir)
      >= sizeof gc->golden_dir) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "golden: folder path too long");
    goto fail;
  }
  char path[2048];
  snprintf (path, sizeof path, "%s/%s", golden_dir, file->valuestring);
  gc->file = ts_safetensors_open (path, err);
  if (!gc->file) {
    ts_error_prefix (err, "golden: case '%s'", name);
    goto fail;
  }
  return gc;

fail:
  ts_golden_case_free (gc);
  return NULL;
}

bool
ts_golden_bf16_rule (const ts_backend *be)
{
  return be && be->ops && ts_backend_precision (be) == TS_PRECISION_BF16;
}

void
ts_golden_case_use_backend (ts_golden_case *gc, const ts_backend *be)
{
  gc->bf16 = ts_golden_bf16_rule (be);
}

double
ts_golden_bf16_cfg_rule (double g)
{
  return TS_GOLDEN_BF16_NRMS * (fabs (g) + fabs (g - 1.0));
}

double
ts_golden_nrms (const float *ours, const double *ref, size_t n)
{
  double num = 0.0, den = 0.0;

  for (size_t i = 0; i < n; i++) {
    double d = (double) ours[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  if (n == 0)
    return 0.0;
  return den > 0.0 ? sqrt (num / den) : sqrt (num / (double) n);
}

void
ts_golden_case_free (ts_golden_case *gc)
{
  if (!gc)
    return;
  ts_safetensors_free (gc->file);
  free (gc->seen);
  free (gc);
}

const char *
ts_golden_case_case_name (const ts_golden_case *gc)
{
  return gc->case_name;
}

bool
ts_golden_case_model_dir (const ts_golden_case *gc, const char *component, char *buf,
                           size_t size)
{
  const cJSON *model = cJSON_GetObjectItemCaseSensitive (gc->entry, "model");
  char pipeline_dir[4096];
  int n;
  if (cJSON_IsString (model)) {
    n = snprintf (buf, size, "%s/%s", gc->golden_dir, model->valuestring);
  } else {
    /* Cases that name no model run on the set's pipeline model. */
    if (ts_golden_pipeline_model_dir (gc->golden_dir, pipeline_dir, sizeof pipeline_dir, NULL) != TS_OK)
      return false;
    n = snprintf (buf, size, "%s/%s", pipeline_dir, component);
  }
  return n >= 0 && (size_t) n < size;
}

const ts_st_tensor *
ts_golden_case_tensor (const ts_golden_case *gc, const char *name, ts_error *err)
{
  const ts_st_tensor *t = ts_safetensors_find (gc->file, name);
  if (!t)
    ts_error_set (err, TS_ERR_FORMAT, "golden: case '%s': tensor '%s' is not in the case file",
                  gc->case_name, name);
  return t;
}

static gc_seen *
gc_mark (ts_golden_case *gc, const char *name)
{
  for (size_t i = 0; i < gc->n_seen; i++)
    if (strcmp (gc->seen[i].name, name) == 0)
      return &gc->seen[i];
  if (gc->n_seen == gc->cap_seen) {
    size_t cap = gc->cap_seen ? 2 * gc->cap_seen : 16;
    gc_seen *grown = realloc (gc->seen, cap * sizeof *grown);
    if (!grown)
      return NULL;
    gc->seen = grown;
    gc->cap_seen = cap;
  }
  gc_seen *s = &gc->seen[gc->n_seen++];
  memset (s, 0, sizeof *s);
  snprintf (s->name, sizeof s->name, "%s", name);
  return s;
}

void
ts_golden_case_report (ts_golden_case *gc, const char *name, double max_abs_err,
                        double tolerance, bool pass)
{
  gc_seen *seen = gc_mark (gc, name);
  if (seen)
    seen->whole = true;
  if (!pass) {
    gc->n_fail++;
    size_t len = strlen (gc->failures);
    if (len + strlen (name) + 3 < sizeof gc->failures)
      snprintf (gc->failures + len, sizeof gc->failures - len, "%s%s", len ? ", " : "", name);
  }
  if (gc->report)
    gc->report (gc->ud, gc->case_name, name, max_abs_err, tolerance, pass);
}

static void
gc_compare (ts_golden_case *gc, const char *name, const float *ours, size_t n, bool exact)
{
  const ts_st_tensor *ref = ts_safetensors_find (gc->file, name);
  long slice = -1;
  char base[128];

  if (!ref) {
    /* "<tensor>.<i>": slice i of a stacked reference */
    const char *dot = strrchr (name, '.');
    if (dot && dot[1] && (size_t) (dot - name) < sizeof base) {
      bool digits = true;
      for (const char *p = dot + 1; *p; p++)
        digits = digits && isdigit ((unsigned char) *p);
      if (digits) {
        memcpy (base, name, (size_t) (dot - name));
        base[dot - name] = '\0';
        ref = ts_safetensors_find (gc->file, base);
        slice = strtol (dot + 1, NULL, 10);
      }
    }
  }
  if (!ref) {
    TS_LOG_W ("golden: %s: %s: no such reference tensor", gc->case_name, name);
    ts_golden_case_report (gc, name, NAN, 0.0, false);
    return;
  }

  size_t n_ref = ref->n_elements, offset = 0;
  if (slice >= 0) {
    if (ref->n_dims < 1 || slice >= ref->shape[0]) {
      TS_LOG_W ("golden: %s: %s: slice %ld outside the reference's first dimension",
                gc->case_name, name, slice);
      ts_golden_case_report (gc, name, NAN, 0.0, false);
      return;
    }
    n_ref /= (size_t) ref->shape[0];
    offset = (size_t) slice * n_ref;
  }
  if (slice >= 0) {
    gc_seen *seen = gc_mark (gc, base);
    if (seen)
      seen->n_slices++;
  }
  if (n != n_ref) {
    TS_LOG_W ("golden: %s: %s: %zu elements, the reference has %zu", gc->case_name, name, n,
              n_ref);
    ts_golden_case_report (gc, name, NAN, 0.0, false);
    return;
  }

  const bool is_int = ref->dtype != TS_DTYPE_F32 && ref->dtype != TS_DTYPE_F16
                      && ref->dtype != TS_DTYPE_BF16 && ref->dtype != TS_DTYPE_F64;
  double *r = malloc (n_ref * sizeof *r);
  void *raw = malloc (ref->n_elements * (is_int ? sizeof (int64_t) : sizeof (float)));
  ts_error e;
  ts_status st = TS_ERR_NOMEM;
  if (r && raw)
    st = is_int ? ts_st_tensor_to_i64 (ref, raw, &e) : ts_st_tensor_to_f32 (ref, raw, &e);
  if (st != TS_OK) {
    TS_LOG_W ("golden: %s: %s: cannot read the reference", gc->case_name, name);
    ts_golden_case_report (gc, name, NAN, 0.0, false);
    free (r);
    free (raw);
    return;
  }
  double max_ref = 0;
  for (size_t i = 0; i < n_ref; i++) {
    r[i] = is_int ? (double) ((int64_t *) raw)[offset + i] : (double) ((float *) raw)[offset + i];
    if (fabs (r[i]) > max_ref)
      max_ref = fabs (r[i]);
  }
  free (raw);

  const bool is_mid = strncmp (name, "mid.", 4) == 0;
  double atol = is_mid ? gc->atol * fmax (1.0, max_ref) : gc->atol, rtol = gc->rtol;
  /* A slice "<tensor>.<i>" takes <tensor>'s row of the table. */
  if (!ts_golden_tolerance_lookup (gc->entry, name, &atol, &rtol) && slice >= 0)
    ts_golden_tolerance_lookup (gc->entry, base, &atol, &rtol);
  if (is_int || exact)
    atol = rtol = 0.0;
  if (gc->bf16 && !is_int && !exact) {
    double nrms = ts_golden_nrms (ours, r, n);
    bool pass = nrms <= TS_GOLDEN_BF16_NRMS;
    if (!pass)
      TS_LOG_W ("golden: %s: %s: normalised RMS error %.3g over the bf16 rule's %.3g",
                gc->case_name, name, nrms, TS_GOLDEN_BF16_NRMS);
    free (r);
    ts_golden_case_report (gc, name, nrms, TS_GOLDEN_BF16_NRMS, pass);
    return;
  }
  double max_err = 0, tol_at_max = atol;
  size_t worst = 0, n_bad = 0, first_bad = 0;
  for (size_t i = 0; i < n; i++) {
    const double d = fabs ((double) ours[i] - r[i]);
    const double tol = atol + rtol * fabs (r[i]);
    if (!(d <= tol)) { /* NaN fails too */
      if (!n_bad)
        first_bad = i;
      n_bad++;
    }
    if (!(d <= max_err)) {
      max_err = d;
      worst = i;
      tol_at_max = tol;
    }
  }
  if (n_bad)
    TS_LOG_W ("golden: %s: %s: %zu of %zu elements out of tolerance; max abs err %.3g at index "
              "%zu (ours %.9g, ref %.9g), tolerance there %.3g; first bad index %zu",
              gc->case_name, name, n_bad, n, max_err, worst, (double) ours[worst], r[worst],
              tol_at_max, first_bad);
  free (r);
  /* bf16: integers are reported, not required (downstream of bf16 logits) */
  ts_golden_case_report (gc, name, max_err, tol_at_max, n_bad == 0 || gc->bf16);
}

void
ts_golden_case_compare (ts_golden_case *gc, const char *name, const float *ours, size_t n)
{
  gc_compare (gc, name, ours, n, false);
}

void
ts_golden_case_compare_exact (ts_golden_case *gc, const char *name, const float *ours, size_t n)
{
  gc_compare (gc, name, ours, n, true);
}

static void
gc_capture_fn (void *user_data, const char *name, const float *data, int n_dims,
               const int64_t *shape)
{
  size_t n = 1;
  for (int i = 0; i < n_dims; i++)
    n *= (size_t) shape[i];
  ts_golden_case_compare (user_data, name, data, n);
}

ts_capture
ts_golden_case_capture (ts_golden_case *gc)
{
  ts_capture cap = { gc_capture_fn, gc };
  return cap;
}

ts_status
ts_golden_case_finish (ts_golden_case *gc, ts_error *err)
{
  const cJSON *tensors = cJSON_GetObjectItemCaseSensitive (gc->entry, "tensors");
  const cJSON *t;
  cJSON_ArrayForEach (t, tensors)
  {
    const char *name = t->string;
    if (!name || (strncmp (name, "out.", 4) != 0 && strncmp (name, "mid.", 4) != 0))
      continue;
    const gc_seen *s = NULL;
    for (size_t i = 0; i < gc->n_seen && !s; i++)
      if (strcmp (gc->seen[i].name, name) == 0)
        s = &gc->seen[i];
    const ts_st_tensor *ref = ts_safetensors_find (gc->file, name);
    const bool complete
        = s && (s->whole || (ref && ref->n_dims > 0 && s->n_slices == ref->shape[0]));
    if (!complete) {
      TS_LOG_W ("golden: %s: %s is listed but the engine did not produce it%s", gc->case_name,
                name, s ? " completely" : "");
      ts_golden_case_report (gc, name, NAN, 0.0, false);
    }
  }
  if (gc->n_fail)
    return ts_error_set (err, TS_ERR_MISMATCH, "golden: case '%s': %d check(s) failed: %s",
                         gc->case_name, gc->n_fail, gc->failures);
  return TS_OK;
}
