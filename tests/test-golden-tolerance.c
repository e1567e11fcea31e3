/* SPDX-License-Identifier: MIT
 *
 * Per-case tolerance tables of the golden index (golden README, "Tolerances": an entry's
 * "tolerance": {tensor: {"atol": a, "rtol": r}} replaces the suggested check for that
 * tensor). A tiny scheduler_step case is written into a temporary golden folder, its
 * references computed by the engine's own sampler and then moved by known amounts:
 * mid.confidence by 1e-3 at one token, mid.selected_probs by two ulps at one token. Through
 * ts_golden_check it must fail with the default tolerance, pass with a looser table, fail
 * again with a tighter one (whose atol is not scaled by the intermediate's magnitude), fail
 * when a table is stricter than the default, keep integer tensors exact, and refuse a
 * malformed table with TS_ERR_FORMAT naming the case and the tensor. With
 * $TESSERA_GOLDEN_DIR present the shared set's cases run once more with tables that tighten
 * one or two float tensors of every kind to zero: exactly those tensors may fail, reported
 * at tolerance 0.
 */
#include "core/ts-common.h"
#include "devkit/golden/ts-golden.h"
#include "devkit/ts-st-writer.h"
#include "golden-test-common.h"
#include "stages/ts-sampler.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

/* ---- the synthetic case ---- */

#define CODEBOOK 8
#define MASK_ID 15
#define GRID_H 2
#define GRID_W 4
#define N_TOK (GRID_H * GRID_W)
#define N_STEPS 4
#define STEP_INDEX 1
#define CONF_SHIFT 1e-3 /* added to mid.confidence at CONF_TOKEN */
#define CONF_TOKEN 1    /* a masked token: its confidence is O(1) */
#define PROBS_TOKEN 3   /* mid.selected_probs is moved by two ulps there */

typedef struct {
  float logits[CODEBOOK * N_TOK], gumbel[N_TOK], probs[N_TOK], conf[N_TOK], temperature;
  float mask_len; /* fp32 in the shared set too: a count the README holds exact */
  int64_t sample[N_TOK], draws[N_TOK], pred[N_TOK], prev[N_TOK];
} step_case;

static void
fill_case (void *user_data, const char *name, ts_dtype dtype, size_t first, size_t n, void *dst)
{
  const step_case *c = user_data;
  const void *src = NULL;
  if (strcmp (name, "in.logits") == 0)
    src = c->logits;
  else if (strcmp (name, "in.gumbel_noise") == 0)
    src = c->gumbel;
  else if (strcmp (name, "in.sample") == 0)
    src = c->sample;
  else if (strcmp (name, "in.multinomial_draws") == 0)
    src = c->draws;
  else if (strcmp (name, "out.pred_original_sample") == 0)
    src = c->pred;
  else if (strcmp (name, "out.prev_sample") == 0)
    src = c->prev;
  else if (strcmp (name, "mid.mask_len") == 0)
    src = &c->mask_len;
  else if (strcmp (name, "mid.temperature") == 0)
    src = &c->temperature;
  else if (strcmp (name, "mid.selected_probs") == 0)
    src = c->probs;
  else if (strcmp (name, "mid.confidence") == 0)
    src = c->conf;
  g_assert_nonnull (src);
  const size_t size = dtype == TS_DTYPE_I64 ? 8 : 4;
  memcpy (dst, (const char *) src + first * size, n * size);
}

/* Computes the case with the engine's sampler, then moves the references. int_off: also
 * mid.mask_len by one (a count, exact whatever a table says). */
static void
make_case (step_case *c, bool int_off)
{
  int32_t sample[N_TOK], draws[N_TOK], pred[N_TOK], prev[N_TOK];
  int mask_len = 0;
  ts_sampler_step_args a;
  ts_error err;

  memset (c, 0, sizeof *c);
  for (int i = 0; i < CODEBOOK * N_TOK; i++)
    c->logits[i] = 2.0f * sinf (0.7f * (float) i + 0.3f);
  for (int t = 0; t < N_TOK; t++) {
    /* tokens 0, 4 known (their confidence is ~88.7 + T·g: the tensor's magnitude), the
     * others masked */
    sample[t] = t % 4 == 0 ? (int32_t) (t / 4 + 2) : MASK_ID;
    draws[t] = (int32_t) ((3 * t + 1) % CODEBOOK);
    c->gumbel[t] = 0.25f * (float) t - 0.6f;
  }
  c->temperature = ts_sampler_temperature (2.0f, 0.0f, STEP_INDEX, N_STEPS);
  memset (&a, 0, sizeof a);
  a.n_images = 1;
  a.codebook_size = CODEBOOK;
  a.n_tokens = N_TOK;
  a.logits = c->logits;
  a.sample = sample;
  a.mask_token_id = MASK_ID;
  a.step_index = STEP_INDEX;
  a.n_steps = N_STEPS;
  a.schedule = TS_MASKING_COSINE;
  a.temperature = c->temperature;
  a.draws.kind = TS_SAMPLER_DRAWS_RECORDED;
  a.draws.multinomial = draws;
  a.draws.gumbel = c->gumbel;
  a.pred_original_sample = pred;
  a.prev_sample = prev;
  a.selected_probs = c->probs;
  a.confidence = c->conf;
  a.mask_len = &mask_len;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
  for (int t = 0; t < N_TOK; t++) {
    c->sample[t] = sample[t];
    c->draws[t] = draws[t];
    c->pred[t] = pred[t];
    c->prev[t] = prev[t];
  }
  c->mask_len = (float) (mask_len + (int_off ? 1 : 0));
  g_assert_true (sample[CONF_TOKEN] == MASK_ID && fabsf (c->conf[CONF_TOKEN]) < 20.0f);
  g_assert_cmpfloat (c->conf[0], >, 50.0f);
  c->conf[CONF_TOKEN] += (float) CONF_SHIFT;
  /* Two ulps: at most 2.4e-7 relative, inside the default rtol 1e-6. */
  c->probs[PROBS_TOKEN] = nextafterf (nextafterf (c->probs[PROBS_TOKEN], 2.0f), 2.0f);
}

static void
write_case (const char *dir, const char *file, bool int_off)
{
  static const ts_st_writer_tensor tensors[] = {
    { "in.logits", TS_DTYPE_F32, 4, { 1, CODEBOOK, GRID_H, GRID_W } },
    { "in.gumbel_noise", TS_DTYPE_F32, 2, { 1, N_TOK } },
    { "in.sample", TS_DTYPE_I64, 3, { 1, GRID_H, GRID_W } },
    { "in.multinomial_draws", TS_DTYPE_I64, 2, { 1, N_TOK } },
    { "out.pred_original_sample", TS_DTYPE_I64, 3, { 1, GRID_H, GRID_W } },
    { "out.prev_sample", TS_DTYPE_I64, 3, { 1, GRID_H, GRID_W } },
    { "mid.mask_len", TS_DTYPE_F32, 2, { 1, 1 } },
    { "mid.temperature", TS_DTYPE_F32, 1, { 1 } },
    { "mid.selected_probs", TS_DTYPE_F32, 2, { 1, N_TOK } },
    { "mid.confidence", TS_DTYPE_F32, 2, { 1, N_TOK } },
  };
  g_autofree char *path = g_build_filename (dir, file, NULL);
  step_case c;
  ts_error err;
  make_case (&c, int_off);
  g_assert_cmpint (ts_st_write_file (path, tensors, G_N_ELEMENTS (tensors), NULL, fill_case, &c,
                                     &err),
                   ==, TS_OK);
}

/* Writes dir/index.json with the case "step" on `file`, with `tolerance` (JSON text, NULL
 * for none) as its table. */
static void
write_index (const char *dir, const char *file, const char *tolerance)
{
  g_autofree char *tol = tolerance ? g_strdup_printf (",\n\"tolerance\": %s", tolerance)
                                   : g_strdup ("");
  g_autofree char *text = g_strdup_printf (
      "{\"cases\": {\"step\": {\"kind\": \"scheduler_step\", \"file\": \"%s\",\n"
      "\"mask_token_id\": %d, \"num_inference_steps\": %d, \"step_index\": %d,\n"
      "\"tensors\": {\"in.logits\": {}, \"in.gumbel_noise\": {}, \"in.sample\": {},\n"
      "  \"in.multinomial_draws\": {}, \"out.pred_original_sample\": {},\n"
      "  \"out.prev_sample\": {}, \"mid.mask_len\": {}, \"mid.temperature\": {},\n"
      "  \"mid.selected_probs\": {}, \"mid.confidence\": {}}%s}}}\n",
      file, MASK_ID, N_STEPS, STEP_INDEX, tol);
  g_autofree char *path = g_build_filename (dir, "index.json", NULL);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
}

/* ---- running ts_golden_check and keeping what it reported ---- */

typedef struct {
  char case_name[64], tensor[64];
  double max_abs_err, tolerance;
  bool pass;
} reported;

typedef struct {
  reported rows[256];
  int n_rows;
  char case_status[16][64];
  ts_status status[16];
  char message[16][TS_ERROR_MESSAGE_MAX];
  int n_cases;
} run_log;

static void
log_report (void *ud, const char *case_name, const char *tensor, double max_abs_err,
            double tolerance, bool pass)
{
  run_log *l = ud;
  g_test_message ("  %-4s %-28s %-28s max abs err %.3e (tol %.3e)", pass ? "ok" : "FAIL",
                  case_name, tensor, max_abs_err, tolerance);
  g_assert_cmpint (l->n_rows, <, (int) G_N_ELEMENTS (l->rows));
  reported *r = &l->rows[l->n_rows++];
  g_strlcpy (r->case_name, case_name, sizeof r->case_name);
  g_strlcpy (r->tensor, tensor, sizeof r->tensor);
  r->max_abs_err = max_abs_err;
  r->tolerance = tolerance;
  r->pass = pass;
}

static void
log_case (void *ud, const char *index_file, const char *case_name, const char *kind,
          ts_status status, const char *message)
{
  run_log *l = ud;
  g_assert_cmpstr (index_file, ==, "index.json");
  g_test_message ("%s (%s): %s %s", case_name, kind, ts_devkit_status_name (status), message);
  g_assert_cmpint (l->n_cases, <, 16);
  g_strlcpy (l->case_status[l->n_cases], case_name, sizeof l->case_status[0]);
  l->status[l->n_cases] = status;
  g_strlcpy (l->message[l->n_cases], message, sizeof l->message[0]);
  l->n_cases++;
}

static void
run_check (const char *dir, run_log *l)
{
  ts_golden_summary sum;
  ts_error err;
  memset (l, 0, sizeof *l);
  ts_status st = ts_golden_check (dir, "cpu", log_report, log_case, l, &sum, &err);
  g_assert_true (st == TS_OK || st == TS_ERR_MISMATCH);
  g_assert_cmpint (sum.n_cases, ==, l->n_cases);
}

static const reported *
find_row (const run_log *l, const char *case_name, const char *tensor)
{
  for (int i = 0; i < l->n_rows; i++)
    if (strcmp (l->rows[i].case_name, case_name) == 0 && strcmp (l->rows[i].tensor, tensor) == 0)
      return &l->rows[i];
  g_error ("no report for %s / %s", case_name, tensor);
  return NULL;
}

static ts_status
case_status (const run_log *l, const char *case_name, const char **message)
{
  for (int i = 0; i < l->n_cases; i++)
    if (strcmp (l->case_status[i], case_name) == 0) {
      if (message)
        *message = l->message[i];
      return l->status[i];
    }
  g_error ("case %s did not run", case_name);
  return TS_OK;
}

/* ---- the synthetic tests ---- */

static char *tmp_dir; /* the synthetic golden folder */

static void
test_default (void)
{
  run_log l;
  write_index (tmp_dir, "cases/step.safetensors", NULL);
  run_check (tmp_dir, &l);
  g_assert_cmpint (case_status (&l, "step", NULL), ==, TS_ERR_MISMATCH);
  const reported *conf = find_row (&l, "step", "mid.confidence");
  g_assert_false (conf->pass);
  g_assert_cmpfloat (fabs (conf->max_abs_err - CONF_SHIFT), <, 1e-5);
  /* the runner's default: atol 0, rtol 1e-6 */
  g_assert_cmpfloat (conf->tolerance, <, 1e-4);
  g_assert_true (find_row (&l, "step", "mid.selected_probs")->pass);
  g_assert_true (find_row (&l, "step", "mid.mask_len")->pass);
  g_assert_true (find_row (&l, "step", "out.prev_sample")->pass);
}

static void
test_looser (void)
{
  run_log l;
  write_index (tmp_dir, "cases/step.safetensors",
               "{\"mid.confidence\": {\"atol\": 2e-3, \"rtol\": 0}}");
  run_check (tmp_dir, &l);
  g_assert_cmpint (case_status (&l, "step", NULL), ==, TS_OK);
  const reported *conf = find_row (&l, "step", "mid.confidence");
  g_assert_true (conf->pass);
  g_assert_cmpfloat (conf->tolerance, ==, 2e-3);
}

static void
test_tighter (void)
{
  run_log l;
  /* Looser than the default but under the error. The tensor's magnitude is ~88 (the known
   * tokens), so an atol scaled like the default intermediates' would pass. */
  write_index (tmp_dir, "cases/step.safetensors",
               "{\"mid.confidence\": {\"atol\": 5e-4, \"rtol\": 0}}");
  run_check (tmp_dir, &l);
  g_assert_cmpint (case_status (&l, "step", NULL), ==, TS_ERR_MISMATCH);
  const reported *conf = find_row (&l, "step", "mid.confidence");
  g_assert_false (conf->pass);
  g_assert_cmpfloat (conf->tolerance, ==, 5e-4);

  /* rtol alone: 1e-5 of the shifted O(1) value is far under the 1e-3 shift. */
  write_index (tmp_dir, "cases/step.safetensors",
               "{\"mid.confidence\": {\"atol\": 0, \"rtol\": 1e-5}}");
  run_check (tmp_dir, &l);
  g_assert_cmpint (case_status (&l, "step", NULL), ==, TS_ERR_MISMATCH);
  g_assert_false (find_row (&l, "step", "mid.confidence")->pass);
}

static void
test_stricter_than_default (void)
{
  run_log l;
  /* mid.selected_probs passes the default (two ulps) but not a table without slack. */
  write_index (tmp_dir, "cases/step.safetensors",
               "{\"mid.confidence\": {\"atol\": 2e-3, \"rtol\": 0},"
               " \"mid.selected_probs\": {\"atol\": 0, \"rtol\": 1e-8}}");
  run_check (tmp_dir, &l);
  g_assert_cmpint (case_status (&l, "step", NULL), ==, TS_ERR_MISMATCH);
  g_assert_true (find_row (&l, "step", "mid.confidence")->pass);
  const reported *probs = find_row (&l, "step", "mid.selected_probs");
  g_assert_false (probs->pass);
  g_assert_cmpfloat (probs->tolerance, <, 1e-8);
}

static void
test_integers_exact (void)
{
  run_log l;
  write_index (tmp_dir, "cases/step-int.safetensors",
               "{\"mid.confidence\": {\"atol\": 2e-3, \"rtol\": 0},"
               " \"mid.mask_len\": {\"atol\": 10, \"rtol\": 1},"
               " \"out.prev_sample\": {\"atol\": 10, \"rtol\": 1}}");
  run_check (tmp_dir, &l);
  g_assert_cmpint (case_status (&l, "step", NULL), ==, TS_ERR_MISMATCH);
  const reported *ml = find_row (&l, "step", "mid.mask_len");
  g_assert_false (ml->pass);
  g_assert_cmpfloat (ml->tolerance, ==, 0.0);
  g_assert_true (find_row (&l, "step", "mid.confidence")->pass);
}

static void
test_malformed (void)
{
  static const struct {
    const char *table, *names; /* the tensor the message must name, "" for none */
  } bad[] = {
    { "5", "" },
    { "[]", "" },
    { "{\"mid.confidence\": 1e-3}", "mid.confidence" },
    { "{\"mid.confidence\": [1e-3, 0]}", "mid.confidence" },
    { "{\"mid.confidence\": {\"atol\": -1e-3, \"rtol\": 0}}", "mid.confidence" },
    { "{\"mid.confidence\": {\"atol\": 1e-3, \"rtol\": -0.5}}", "mid.confidence" },
    { "{\"mid.confidence\": {\"atol\": 1e999, \"rtol\": 0}}", "mid.confidence" },
    { "{\"mid.confidence\": {\"atol\": \"1e-3\", \"rtol\": 0}}", "mid.confidence" },
    { "{\"mid.confidence\": {\"atol\": null, \"rtol\": 0}}", "mid.confidence" },
    { "{\"mid.confidence\": {\"atol\": 1e-3}}", "mid.confidence" },
    { "{\"mid.confidence\": {\"rtol\": 1e-3}}", "mid.confidence" },
    { "{\"mid.confidence\": {}}", "mid.confidence" },
    { "{\"mid.confidence\": {\"atol\": 1e-3, \"rtol\": 0, \"scale\": 1}}", "mid.confidence" },
    { "{\"mid.confidence\": {\"atol\": 1e-3, \"atol\": 2e-3, \"rtol\": 0}}", "mid.confidence" },
    { "{\"mid.confidence\": {\"atol\": 1e-3, \"rtol\": 0},"
      " \"mid.confidence\": {\"atol\": 1, \"rtol\": 0}}", "mid.confidence" },
    /* exact names only: no prefixes, patterns or slices */
    { "{\"mid.conf\": {\"atol\": 1, \"rtol\": 0}}", "mid.conf" },
    { "{\"mid.*\": {\"atol\": 1, \"rtol\": 0}}", "mid.*" },
    { "{\"mid.confidence.0\": {\"atol\": 1, \"rtol\": 0}}", "mid.confidence.0" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (bad); i++) {
    run_log l;
    const char *message = NULL;
    g_test_message ("tolerance %s", bad[i].table);
    write_index (tmp_dir, "cases/step.safetensors", bad[i].table);
    run_check (tmp_dir, &l);
    g_assert_cmpint (case_status (&l, "step", &message), ==, TS_ERR_FORMAT);
    g_assert_nonnull (strstr (message, "'step'"));
    if (bad[i].names[0]) {
      g_autofree char *quoted = g_strdup_printf ("'%s'", bad[i].names);
      g_assert_nonnull (strstr (message, quoted));
    }
    g_assert_cmpint (l.n_rows, ==, 0); /* refused before it ran */
  }

  /* A runner called directly refuses it as well. */
  write_index (tmp_dir, "cases/step.safetensors",
               "{\"mid.confidence\": {\"atol\": -1, \"rtol\": 0}}");
  cJSON *index = load_index (tmp_dir);
  const cJSON *entry = cJSON_GetObjectItem (cJSON_GetObjectItem (index, "cases"), "step");
  counts c = { 0, 0 };
  ts_error err = { 0 };
  g_assert_cmpint (ts_golden_run_scheduler_step (tmp_dir, entry, NULL, report_cb, &c, &err), ==,
                   TS_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "'mid.confidence'"));
  cJSON_Delete (index);

  /* An empty table is a table with nothing to replace. */
  run_log l;
  write_index (tmp_dir, "cases/step.safetensors", "{}");
  run_check (tmp_dir, &l);
  g_assert_cmpint (case_status (&l, "step", NULL), ==, TS_ERR_MISMATCH);
  g_assert_false (find_row (&l, "step", "mid.confidence")->pass);
}

/* ---- the shared golden set with tightened tables ---- */

/* Per case, the tensors whose table is atol 0, rtol 0 (float tensors the engine computes
 * in another order than PyTorch, so at least one of each case differs), and integer tensors
 * given a loose table that must stay exact. */
static const struct {
  const char *case_name;
  const char *tight[3];
  const char *loose_int;
} shared_tables[] = {
  { "clip_text", { "mid.hidden_states_all", "out.last_hidden_state" }, "mid.pooled_index" },
  { "transformer_h1024", { "out.logits", "mid.single_block1" }, NULL },
  { "transformer_nodownsample_h256", { "out.logits", "out.cfg_logits_g9" }, NULL },
  { "scheduler_masking", { "mid.confidence", "mid.selected_probs" }, "mid.mask_len" },
  { "pipeline_replay", { "out.image_float" }, "out.final_latents" },
  { "vq_decode", { "out.sample", "mid.dec_up_block4_out" }, "out.image_uint8" },
  { "vq_encode", { "out.latents", "mid.enc_mid_block_out" }, "out.indices" },
};

/* The table entry `tensor` reported as (a slice of) it. */
static bool
names (const char *table_name, const char *reported_name)
{
  size_t n = strlen (table_name);
  if (strncmp (table_name, reported_name, n) != 0)
    return false;
  if (reported_name[n] == '\0')
    return true;
  if (reported_name[n] != '.' || !reported_name[n + 1])
    return false;
  for (const char *p = reported_name + n + 1; *p; p++)
    if (!g_ascii_isdigit (*p))
      return false;
  return true;
}

static void
test_shared_set (void)
{
  const char *dir = golden_dir ();
  if (!dir) {
    g_test_skip ("golden folder absent (TESSERA_GOLDEN_DIR)");
    return;
  }
  g_autofree char *abs_dir = g_canonicalize_filename (dir, NULL);
  g_autofree char *work = g_dir_make_tmp ("ts-golden-tol-XXXXXX", NULL);
  g_assert_nonnull (work);
  static const char *links[] = { "cases", "models" };
  for (size_t i = 0; i < G_N_ELEMENTS (links); i++) {
    g_autofree char *from = g_build_filename (abs_dir, links[i], NULL);
    g_autofree char *to = g_build_filename (work, links[i], NULL);
    g_assert_cmpint (symlink (from, to), ==, 0);
  }

  cJSON *index = load_index (dir);
  cJSON *cases = cJSON_GetObjectItem (index, "cases");
  for (size_t i = 0; i < G_N_ELEMENTS (shared_tables); i++) {
    cJSON *entry = cJSON_GetObjectItem (cases, shared_tables[i].case_name);
    g_assert_nonnull (entry);
    cJSON *table = cJSON_AddObjectToObject (entry, "tolerance");
    for (int k = 0; k < 3 && shared_tables[i].tight[k]; k++) {
      cJSON *v = cJSON_AddObjectToObject (table, shared_tables[i].tight[k]);
      cJSON_AddNumberToObject (v, "atol", 0.0);
      cJSON_AddNumberToObject (v, "rtol", 0.0);
    }
    if (shared_tables[i].loose_int) {
      cJSON *v = cJSON_AddObjectToObject (table, shared_tables[i].loose_int);
      cJSON_AddNumberToObject (v, "atol", 100.0);
      cJSON_AddNumberToObject (v, "rtol", 1.0);
    }
  }
  /* The kinds without tensors take an empty table and refuse a name. */
  cJSON_AddObjectToObject (cJSON_GetObjectItem (cases, "scheduler_tables"), "tolerance");
  cJSON *tok_table = cJSON_AddObjectToObject (cJSON_GetObjectItem (cases, "tokenizer"),
                                              "tolerance");
  cJSON *tok_v = cJSON_AddObjectToObject (tok_table, "input_ids");
  cJSON_AddNumberToObject (tok_v, "atol", 1.0);
  cJSON_AddNumberToObject (tok_v, "rtol", 0.0);
  char *text = cJSON_Print (index);
  g_autofree char *index_path = g_build_filename (work, "index.json", NULL);
  g_assert_true (g_file_set_contents (index_path, text, -1, NULL));
  cJSON_free (text);

  run_log *l = g_new0 (run_log, 1);
  run_check (work, l);
  const char *message = NULL;
  g_assert_cmpint (case_status (l, "tokenizer", &message), ==, TS_ERR_FORMAT);
  g_assert_nonnull (strstr (message, "'input_ids'"));
  g_assert_cmpint (case_status (l, "scheduler_tables", NULL), ==, TS_OK);
  for (size_t i = 0; i < G_N_ELEMENTS (shared_tables); i++) {
    const char *cn = shared_tables[i].case_name;
    int n_tight_failed = 0, n_tight = 0;
    g_assert_cmpint (case_status (l, cn, NULL), ==, TS_ERR_MISMATCH);
    for (int r = 0; r < l->n_rows; r++) {
      const reported *row = &l->rows[r];
      /* The transformer runner reports under the case file's base name, which the shared
       * set gives the case's name. */
      if (strcmp (row->case_name, cn) != 0)
        continue;
      bool tight = false;
      for (int k = 0; k < 3 && shared_tables[i].tight[k]; k++)
        tight = tight || names (shared_tables[i].tight[k], row->tensor);
      if (tight) {
        n_tight++;
        g_assert_cmpfloat (row->tolerance, ==, 0.0);
        g_assert_true (row->pass == (row->max_abs_err == 0.0));
        n_tight_failed += !row->pass;
      } else {
        g_assert_true (row->pass);
      }
      /* exact (NAN or 0); uint8 pixels keep their ±1 at a rounding boundary */
      if (shared_tables[i].loose_int && strcmp (row->tensor, shared_tables[i].loose_int) == 0)
        g_assert_true (isnan (row->tolerance) || row->tolerance == 0.0
                       || (strcmp (row->tensor, "out.image_uint8") == 0 && row->tolerance == 1.0));
    }
    g_assert_cmpint (n_tight, >=, 1);
    g_assert_cmpint (n_tight_failed, >=, 1);
  }
  g_free (l);
  cJSON_Delete (index);

  for (size_t i = 0; i < G_N_ELEMENTS (links); i++) {
    g_autofree char *to = g_build_filename (work, links[i], NULL);
    g_assert_cmpint (g_unlink (to), ==, 0);
  }
  g_assert_cmpint (g_unlink (index_path), ==, 0);
  g_assert_cmpint (g_rmdir (work), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  tmp_dir = g_dir_make_tmp ("ts-golden-tol-XXXXXX", NULL);
  g_assert_nonnull (tmp_dir);
  g_autofree char *cases_dir = g_build_filename (tmp_dir, "cases", NULL);
  g_assert_cmpint (g_mkdir (cases_dir, 0700), ==, 0);
  write_case (tmp_dir, "cases/step.safetensors", false);
  write_case (tmp_dir, "cases/step-int.safetensors", true);

  g_test_add_func ("/golden-tolerance/default", test_default);
  g_test_add_func ("/golden-tolerance/looser", test_looser);
  g_test_add_func ("/golden-tolerance/tighter", test_tighter);
  g_test_add_func ("/golden-tolerance/stricter-than-default", test_stricter_than_default);
  g_test_add_func ("/golden-tolerance/integers-exact", test_integers_exact);
  g_test_add_func ("/golden-tolerance/malformed", test_malformed);
  g_test_add_func ("/golden-tolerance/shared-set", test_shared_set);
  int rc = g_test_run ();

  static const char *files[] = { "cases/step.safetensors", "cases/step-int.safetensors",
                                 "index.json" };
  for (size_t i = 0; i < G_N_ELEMENTS (files); i++) {
    g_autofree char *path = g_build_filename (tmp_dir, files[i], NULL);
    g_unlink (path);
  }
  g_rmdir (cases_dir);
  g_rmdir (tmp_dir);
  g_free (tmp_dir);
  return rc;
}
