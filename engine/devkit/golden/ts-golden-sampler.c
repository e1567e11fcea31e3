/* SPDX-License-Identifier: MIT
 *
 * ts-golden-sampler — the golden runners of the MaskGIT sampler: `scheduler_tables` (every
 * step's timestep, fp32 temperature bits, mask_len and the masked counts of a simulated
 * run, for each (steps, seq_len) pair of the table file) and `scheduler_step` (one
 * Scheduler.step with the reference's recorded draws: exact token grids and mask_len,
 * probabilities and confidences to 1e-6 relative unless the entry's tolerance table says
 * otherwise).
 */
#include "devkit/golden/ts-golden-case.h"

#include "core/ts-common.h"
#include "core/ts-rng.h"
#include "stages/ts-sampler.h"

#include <math.h>
#include <string.h>

static bool
json_int (const cJSON *o, const char *key, long *out)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (o, key);
  if (!cJSON_IsNumber (v) || v->valuedouble != floor (v->valuedouble))
    return false;
  *out = (long) v->valuedouble;
  return true;
}

/* Simulates one table from an all-masked start with random logits over a small codebook
 * (the counts do not depend on the codebook), checking every listed value. Returns the
 * number of mismatching entries. */
static long
check_table (const cJSON *table, ts_masking_schedule schedule, int *n_steps_out, int *seq_len_out)
{
  const cJSON *steps = cJSON_GetObjectItemCaseSensitive (table, "steps");
  const cJSON *targ = cJSON_GetObjectItemCaseSensitive (table, "temperature_arg");
  long n_steps, seq_len, bad = 0;
  float t_start = 2.0f, t_end = 0.0f;
  const int codebook = 4;
  int32_t *sample = NULL;
  float *logits = NULL;
  const cJSON *s;

  if (!json_int (table, "num_inference_steps", &n_steps) || !json_int (table, "seq_len", &seq_len)
      || n_steps < 1 || seq_len < 1 || seq_len > (1 << 20) || !cJSON_IsArray (steps))
    return -1;
  if (cJSON_IsArray (targ) && cJSON_GetArraySize (targ) == 2) {
    t_start = (float) cJSON_GetArrayItem (targ, 0)->valuedouble;
    t_end = (float) cJSON_GetArrayItem (targ, 1)->valuedouble;
  }
  *n_steps_out = (int) n_steps;
  *seq_len_out = (int) seq_len;
  sample = malloc ((size_t) seq_len * sizeof *sample);
  logits = malloc ((size_t) seq_len * codebook * sizeof *logits);
  if (!sample || !logits) {
    free (sample);
    free (logits);
    return -1;
  }
  for (long i = 0; i < seq_len; i++)
    sample[i] = codebook; /* the mask id: any id outside the codebook */
  for (long i = 0; i < seq_len * codebook; i++)
    logits[i] = 4.0f * ts_rng_uniform (7, 0, 0, TS_RNG_PURPOSE_MULTINOMIAL, (uint32_t) i);

  cJSON_ArrayForEach (s, steps) {
    long step_index, timestep, unknown_before, masked_after, mask_len_want = -1;
    const cJSON *hex = cJSON_GetObjectItemCaseSensitive (s, "temperature_f32_hex");
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive (s, "mask_len");
    ts_sampler_step_args a;
    float temp;
    uint32_t bits;
    int n_unknown = 0, mask_len = 0;

    if (!json_int (s, "step_index", &step_index) || !json_int (s, "timestep", &timestep)
        || !json_int (s, "unknown_before", &unknown_before)
        || !json_int (s, "masked_after", &masked_after) || !cJSON_IsString (hex)
        || step_index < 0 || step_index >= n_steps) {
      bad++;
      break;
    }
    if (cJSON_IsNumber (ml))
      mask_len_want = (long) ml->valuedouble;
    for (long i = 0; i < seq_len; i++)
      n_unknown += sample[i] == codebook;
    temp = ts_sampler_temperature (t_start, t_end, (int) step_index, (int) n_steps);
    memcpy (&bits, &temp, sizeof bits);
    bad += ts_sampler_timestep ((int) step_index, (int) n_steps) != timestep;
    bad += bits != (uint32_t) strtoul (hex->valuestring, NULL, 16);
    bad += n_unknown != unknown_before;

    memset (&a, 0, sizeof a);
    a.n_images = 1;
    a.codebook_size = codebook;
    a.n_tokens = (int) seq_len;
    a.logits = logits;
    a.sample = sample;
    a.mask_token_id = codebook;
    a.step_index = (int) step_index;
    a.n_steps = (int) n_steps;
    a.schedule = schedule;
    a.temperature = temp;
    a.draws.kind = TS_SAMPLER_DRAWS_RNG;
    a.draws.seed = 1234;
    a.pred_original_sample = sample;
    a.prev_sample = sample;
    a.mask_len = &mask_len;
    if (ts_sampler_step (&a, NULL) != TS_OK) {
      bad++;
      break;
    }
    if (mask_len_want >= 0)
      bad += mask_len != mask_len_want;
    n_unknown = 0;
    for (long i = 0; i < seq_len; i++)
      n_unknown += sample[i] == codebook;
    bad += n_unknown != masked_after;
  }
  free (sample);
  free (logits);
  return bad;
}

ts_status
ts_golden_run_scheduler_tables (const char *golden_dir, const cJSON *entry, const ts_backend *be,
                                ts_golden_report_fn report, void *ud, ts_error *err)
{
  const char *case_name = entry->string ? entry->string : "scheduler_tables";
  const cJSON *file = cJSON_GetObjectItemCaseSensitive (entry, "file");
  const cJSON *tables, *sched_name, *table;
  ts_masking_schedule schedule = TS_MASKING_COSINE;
  char path[8192], *text;
  cJSON *root;
  long total_bad = 0;
  int n_tables = 0;
  ts_status st = TS_OK;

  (void) be;
  if (!cJSON_IsString (file))
    return ts_error_set (err, TS_ERR_FORMAT, "%s: index entry has no \"file\"", case_name);
  snprintf (path, sizeof path, "%s/%s", golden_dir, file->valuestring);
  if (!(text = ts_golden_read_file (path, NULL, err)))
    return err ? err->code : TS_ERR_IO;
  root = cJSON_Parse (text);
  free (text);
  tables = cJSON_GetObjectItemCaseSensitive (root, "tables");
  sched_name = cJSON_GetObjectItemCaseSensitive (root, "masking_schedule");
  if (!cJSON_IsArray (tables)) {
    cJSON_Delete (root);
    return ts_error_set (err, TS_ERR_FORMAT, "%s: no \"tables\" array", path);
  }
  if (cJSON_IsString (sched_name)
      && (st = ts_masking_schedule_from_name (sched_name->valuestring, &schedule, err)) != TS_OK) {
    cJSON_Delete (root);
    return st;
  }
  cJSON_ArrayForEach (table, tables) {
    int n_steps = 0, seq_len = 0;
    long bad = check_table (table, schedule, &n_steps, &seq_len);
    char name[96];
    snprintf (name, sizeof name, "steps %d, seq_len %d", n_steps, seq_len);
    report (ud, case_name, name, (double) bad, NAN, bad == 0);
    total_bad += bad != 0;
    n_tables++;
  }
  cJSON_Delete (root);
  if (total_bad || n_tables == 0)
    return ts_error_set (err, TS_ERR_MISMATCH, "%s: %ld of %d tables differ", case_name, total_bad,
                         n_tables);
  return TS_OK;
}

static ts_status
read_i32 (ts_golden_case *gc, const char *name, size_t n, int32_t *out, ts_error *err)
{
  const ts_st_tensor *t = ts_golden_case_tensor (gc, name, err);
  int64_t *tmp;
  ts_status st;

  if (!t)
    return err ? err->code : TS_ERR_FORMAT;
  if (t->n_elements != n)
    return ts_error_set (err, TS_ERR_FORMAT, "%s: %zu values, expected %zu", name, t->n_elements, n);
  if (!(tmp = malloc (n * sizeof *tmp)))
    return ts_error_set (err, TS_ERR_NOMEM, "out of memory");
  st = ts_st_tensor_to_i64 (t, tmp, err);
  for (size_t i = 0; st == TS_OK && i < n; i++)
    out[i] = (int32_t) tmp[i];
  free (tmp);
  return st;
}

static void
compare_ints (ts_golden_case *gc, const char *name, const int32_t *ours, size_t n)
{
  int32_t *want = malloc (n * sizeof *want);
  long bad = 0;
  if (!want || read_i32 (gc, name, n, want, NULL) != TS_OK) {
    ts_golden_case_report (gc, name, NAN, NAN, false);
  } else {
    for (size_t i = 0; i < n; i++)
      bad += ours[i] != want[i];
    ts_golden_case_report (gc, name, (double) bad, NAN, bad == 0);
  }
  free (want);
}

ts_status
ts_golden_run_scheduler_step (const char *golden_dir, const cJSON *entry, const ts_backend *be,
                              ts_golden_report_fn report, void *ud, ts_error *err)
{
  ts_golden_case *gc;
  const ts_st_tensor *logits_t, *gumbel_t;
  long mask_id, n_steps, step_index;
  int batch, codebook, n_tok;
  float *logits = NULL, *gumbel = NULL, *probs = NULL, *conf = NULL, temp;
  int32_t *sample = NULL, *draws = NULL, *pred = NULL, *prev = NULL;
  int mask_len[64];
  ts_sampler_step_args a;
  ts_status st;

  (void) be;
  /* Probabilities and confidences: rtol 1e-6 (the draws are replayed, the arithmetic is
   * fp32 in torch's order); token grids and mask_len are compared exactly. */
  gc = ts_golden_case_new (golden_dir, entry, "scheduler_step", 0.0, 1e-6, report, ud, err);
  if (!gc)
    return err ? err->code : TS_ERR_FORMAT;
  if (!json_int (entry, "mask_token_id", &mask_id) || !json_int (entry, "num_inference_steps", &n_steps)
      || !json_int (entry, "step_index", &step_index)) {
    st = ts_error_set (err, TS_ERR_FORMAT, "%s: entry lacks mask_token_id/num_inference_steps/step_index",
                       ts_golden_case_case_name (gc));
    goto out;
  }
  logits_t = ts_golden_case_tensor (gc, "in.logits", err);
  gumbel_t = ts_golden_case_tensor (gc, "in.gumbel_noise", err);
  if (!logits_t || !gumbel_t || logits_t->n_dims != 4) {
    st = err ? err->code : TS_ERR_FORMAT;
    goto out;
  }
  batch = (int) logits_t->shape[0];
  codebook = (int) logits_t->shape[1];
  n_tok = (int) (logits_t->shape[2] * logits_t->shape[3]);
  if (batch < 1 || batch > 64 || gumbel_t->n_elements != (size_t) batch * n_tok) {
    st = ts_error_set (err, TS_ERR_FORMAT, "%s: unexpected shapes", ts_golden_case_case_name (gc));
    goto out;
  }
  logits = malloc (logits_t->n_elements * sizeof *logits);
  gumbel = malloc ((size_t) batch * n_tok * sizeof *gumbel);
  probs = malloc ((size_t) batch * n_tok * sizeof *probs);
  conf = malloc ((size_t) batch * n_tok * sizeof *conf);
  sample = malloc ((size_t) batch * n_tok * sizeof *sample);
  draws = malloc ((size_t) batch * n_tok * sizeof *draws);
  pred = malloc ((size_t) batch * n_tok * sizeof *pred);
  prev = malloc ((size_t) batch * n_tok * sizeof *prev);
  if (!logits || !gumbel || !probs || !conf || !sample || !draws || !pred || !prev) {
    st = ts_error_set (err, TS_ERR_NOMEM, "out of memory");
    goto out;
  }
  if ((st = ts_st_tensor_to_f32 (logits_t, logits, err)) != TS_OK
      || (st = ts_st_tensor_to_f32 (gumbel_t, gumbel, err)) != TS_OK
      || (st = read_i32 (gc, "in.sample", (size_t) batch * n_tok, sample, err)) != TS_OK
      || (st = read_i32 (gc, "in.multinomial_draws", (size_t) batch * n_tok, draws, err)) != TS_OK)
    goto out;

  temp = ts_sampler_temperature (2.0f, 0.0f, (int) step_index, (int) n_steps);
  memset (&a, 0, sizeof a);
  a.n_images = batch;
  a.codebook_size = codebook;
  a.n_tokens = n_tok;
  a.logits = logits;
  a.sample = sample;
  a.mask_token_id = (int32_t) mask_id;
  a.step_index = (int) step_index;
  a.n_steps = (int) n_steps;
  a.schedule = TS_MASKING_COSINE;
  a.temperature = temp;
  a.draws.kind = TS_SAMPLER_DRAWS_RECORDED;
  a.draws.multinomial = draws;
  a.draws.gumbel = gumbel;
  a.pred_original_sample = pred;
  a.prev_sample = prev;
  a.selected_probs = probs;
  a.confidence = conf;
  a.mask_len = mask_len;
  if ((st = ts_sampler_step (&a, err)) != TS_OK)
    goto out;

  compare_ints (gc, "out.pred_original_sample", pred, (size_t) batch * n_tok);
  compare_ints (gc, "out.prev_sample", prev, (size_t) batch * n_tok);
  {
    float ml[64];
    for (int b = 0; b < batch; b++)
      ml[b] = (float) mask_len[b];
    /* stored as fp32, but a count: exact even where a tolerance table names it */
    ts_golden_case_compare_exact (gc, "mid.mask_len", ml, (size_t) batch);
  }
  ts_golden_case_compare (gc, "mid.temperature", &temp, 1);
  ts_golden_case_compare (gc, "mid.selected_probs", probs, (size_t) batch * n_tok);
  ts_golden_case_compare (gc, "mid.confidence", conf, (size_t) batch * n_tok);
  st = ts_golden_case_finish (gc, err);

out:
  free (prev);
  free (pred);
  free (draws);
  free (sample);
  free (conf);
  free (probs);
  free (gumbel);
  free (logits);
  ts_golden_case_free (gc);
  return st;
}
