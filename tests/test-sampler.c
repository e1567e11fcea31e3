/* SPDX-License-Identifier: MIT
 *
 * Tests for ts-sampler, the MaskGIT schedule and scheduler step. The golden tests replay
 * the reference's schedule tables (timesteps, fp32 temperatures bit for bit, mask_len and
 * masked counts), one Scheduler.step from its recorded draws (token grids exact), the
 * bookkeeping of the end-to-end run's steps and the CFG output bit for bit; the unit tests
 * pin the schedule's clamps, the draw sources (our Philox stream and recorded draws give
 * the same step), the inverse-CDF multinomial, re-masking, argument checks, the selection
 * and the CFG expression.
 */
#include "core/ts-rng.h"
#include "model/ts-safetensors.h"
#include "stages/ts-sampler.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MASK_ID 127

static uint32_t
f32_bits (float f)
{
  uint32_t u;
  memcpy (&u, &f, sizeof u);
  return u;
}

static float
f32_from_bits (uint32_t u)
{
  float f;
  memcpy (&f, &u, sizeof f);
  return f;
}

/* The golden folder, or NULL (and the test is skipped) when it is absent. */
static char *
golden_path (const char *relative)
{
  const char *dir = g_getenv ("TESSERA_GOLDEN_DIR");

  if (!dir || !g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_test_skip ("golden folder absent (TESSERA_GOLDEN_DIR)");
    return NULL;
  }
  return g_build_filename (dir, relative, NULL);
}

static int
count_id (const int32_t *grid, size_t n, int32_t id)
{
  int k = 0;
  for (size_t i = 0; i < n; i++)
    k += grid[i] == id;
  return k;
}

static void
fill_logits (GRand *rand, float *logits, size_t n)
{
  for (size_t i = 0; i < n; i++)
    logits[i] = (float) g_rand_double_range (rand, -4.0, 4.0);
}

static ts_sampler_step_args
step_args (int n_images, int codebook, int n_tokens, const float *logits,
           const int32_t *sample, int step_index, int n_steps, uint64_t seed,
           int32_t *pred, int32_t *prev)
{
  ts_sampler_step_args a = {
    .n_images = n_images,
    .codebook_size = codebook,
    .n_tokens = n_tokens,
    .logits = logits,
    .sample = sample,
    .mask_token_id = MASK_ID,
    .step_index = step_index,
    .n_steps = n_steps,
    .schedule = TS_MASKING_COSINE,
    .temperature = ts_sampler_temperature (2.0f, 0.0f, step_index, n_steps),
    .draws = { .kind = TS_SAMPLER_DRAWS_RNG, .seed = seed },
    .pred_original_sample = pred,
    .prev_sample = prev,
  };
  return a;
}

/* ---- golden: scheduler_tables.json ---- */

static int
json_int (const cJSON *obj, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (obj, key);
  g_assert_true (cJSON_IsNumber (v));
  return v->valueint;
}

/* Replays one (steps, seq_len) table: the schedule functions against every entry, and a
 * simulation from an all-masked grid with random logits and our RNG, which must re-mask
 * exactly mask_len tokens per step and fill everything at the last. */
static void
check_table (const cJSON *table, ts_masking_schedule schedule, GRand *rand)
{
  enum { CODEBOOK = 16 };
  const int n_steps = json_int (table, "num_inference_steps");
  const int seq_len = json_int (table, "seq_len");
  const cJSON *targ = cJSON_GetObjectItemCaseSensitive (table, "temperature_arg");
  const cJSON *steps = cJSON_GetObjectItemCaseSensitive (table, "steps");
  const cJSON *entry;
  float t_start, t_end, *logits;
  int32_t *grid, *pred, *prev;
  int step = 0;

  g_assert_true (cJSON_IsArray (targ) && cJSON_GetArraySize (targ) == 2);
  t_start = (float) cJSON_GetArrayItem (targ, 0)->valuedouble;
  t_end = (float) cJSON_GetArrayItem (targ, 1)->valuedouble;
  g_assert_cmpint (cJSON_GetArraySize (steps), ==, n_steps);

  logits = g_new (float, (size_t) CODEBOOK * seq_len);
  grid = g_new (int32_t, seq_len);
  pred = g_new (int32_t, seq_len);
  prev = g_new (int32_t, seq_len);
  for (int t = 0; t < seq_len; t++)
    grid[t] = MASK_ID;

  cJSON_ArrayForEach (entry, steps) {
    const cJSON *hex = cJSON_GetObjectItemCaseSensitive (entry, "temperature_f32_hex");
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive (entry, "mask_len");
    const int unknown_before = json_int (entry, "unknown_before");
    const int want_mask_len = cJSON_IsNull (ml) ? 0 : ml->valueint;
    float temperature = ts_sampler_temperature (t_start, t_end, step, n_steps);
    uint32_t want_bits;
    ts_sampler_step_args a;
    int got_mask_len = -1;
    ts_error err;

    g_test_message ("steps %d seq_len %d step %d", n_steps, seq_len, step);
    g_assert_cmpint (json_int (entry, "step_index"), ==, step);
    g_assert_cmpint (ts_sampler_timestep (step, n_steps), ==, json_int (entry, "timestep"));
    g_assert_true (cJSON_IsString (hex));
    want_bits = (uint32_t) strtoul (hex->valuestring, NULL, 16);
    g_assert_cmphex (f32_bits (temperature), ==, want_bits);
    g_assert_true (cJSON_IsNull (ml) == (step == n_steps - 1));
    g_assert_cmpint (ts_sampler_mask_len (schedule, step, n_steps, seq_len, unknown_before),
                     ==, want_mask_len);

    g_assert_cmpint (count_id (grid, seq_len, MASK_ID), ==, unknown_before);
    fill_logits (rand, logits, (size_t) CODEBOOK * seq_len);
    a = step_args (1, CODEBOOK, seq_len, logits, grid, step, n_steps, 2024, pred, prev);
    a.schedule = schedule;
    a.temperature = temperature;
    a.mask_len = &got_mask_len;
    g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
    g_assert_cmpint (got_mask_len, ==, want_mask_len);
    g_assert_cmpint (count_id (pred, seq_len, MASK_ID), ==, 0);
    g_assert_cmpint (count_id (prev, seq_len, MASK_ID), ==, json_int (entry, "masked_after"));
    for (int t = 0; t < seq_len; t++)
      if (grid[t] != MASK_ID)
        g_assert_cmpint (prev[t], ==, grid[t]);
    memcpy (grid, prev, seq_len * sizeof *grid);
    step++;
  }
  g_assert_cmpint (count_id (grid, seq_len, MASK_ID), ==, 0);
  g_free (logits);
  g_free (grid);
  g_free (pred);
  g_free (prev);
}

static void
test_golden_tables (void)
{
  char *path = golden_path ("cases/scheduler_tables.json");
  const cJSON *tables, *table, *schedule_name;
  ts_masking_schedule schedule;
  GError *error = NULL;
  char *text = NULL;
  cJSON *root;
  GRand *rand;
  int n = 0;

  if (!path)
    return;
  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  g_assert_no_error (error);
  root = cJSON_Parse (text);
  g_assert_nonnull (root);
  schedule_name = cJSON_GetObjectItemCaseSensitive (root, "masking_schedule");
  g_assert_true (cJSON_IsString (schedule_name));
  g_assert_cmpint (ts_masking_schedule_from_name (schedule_name->valuestring, &schedule,
                                                  NULL), ==, TS_OK);
  tables = cJSON_GetObjectItemCaseSensitive (root, "tables");
  rand = g_rand_new_with_seed (20241022);
  cJSON_ArrayForEach (table, tables) {
    check_table (table, schedule, rand);
    n++;
  }
  g_assert_cmpint (n, ==, 8);
  g_rand_free (rand);
  cJSON_Delete (root);
  g_free (text);
  g_free (path);
}

/* ---- golden: safetensors cases ---- */

static cJSON *
golden_index_case (const char *case_name, cJSON **root)
{
  char *path = golden_path ("index.json");
  GError *error = NULL;
  char *text = NULL;
  cJSON *c;

  g_assert_nonnull (path);
  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  g_assert_no_error (error);
  *root = cJSON_Parse (text);
  g_assert_nonnull (*root);
  c = cJSON_GetObjectItemCaseSensitive (cJSON_GetObjectItemCaseSensitive (*root, "cases"),
                                        case_name);
  g_assert_nonnull (c);
  g_free (text);
  g_free (path);
  return c;
}

static const ts_st_tensor *
golden_tensor (const ts_safetensors *st, const char *name, size_t n_elements)
{
  const ts_st_tensor *t = ts_safetensors_find (st, name);

  if (!t)
    g_test_message ("tensor '%s' missing", name);
  g_assert_nonnull (t);
  g_assert_cmpuint (t->n_elements, ==, n_elements);
  return t;
}

static float *
golden_f32 (const ts_safetensors *st, const char *name, size_t n)
{
  float *out = g_new (float, n);
  ts_error err;

  g_assert_cmpint (ts_st_tensor_to_f32 (golden_tensor (st, name, n), out, &err), ==, TS_OK);
  return out;
}

/* Token grids and draws are int64 in the golden files; every value fits int32. */
static int32_t *
golden_i32 (const ts_safetensors *st, const char *name, size_t n)
{
  int64_t *wide = g_new (int64_t, n);
  int32_t *out = g_new (int32_t, n);
  ts_error err;

  g_assert_cmpint (ts_st_tensor_to_i64 (golden_tensor (st, name, n), wide, &err), ==, TS_OK);
  for (size_t i = 0; i < n; i++) {
    g_assert_cmpint (wide[i], >=, INT32_MIN);
    g_assert_cmpint (wide[i], <=, INT32_MAX);
    out[i] = (int32_t) wide[i];
  }
  g_free (wide);
  return out;
}

/* |got - want| <= 1e-6 |want|. */
static void
assert_close_rel (const float *got, const float *want, size_t n, const char *what)
{
  for (size_t i = 0; i < n; i++) {
    if (!(fabsf (got[i] - want[i]) <= 1e-6f * fabsf (want[i])))
      g_test_message ("%s[%zu]: got %.9g, want %.9g", what, i, got[i], want[i]);
    g_assert_cmpfloat (fabsf (got[i] - want[i]), <=, 1e-6f * fabsf (want[i]));
  }
}

/* scheduler_masking: one Scheduler.step with known and unknown tokens, replayed from the
 * recorded multinomial draws and Gumbel noise (and once more from the uniform noise the
 * Gumbel noise was computed from). Token grids and mask_len must match exactly. */
static void
test_golden_masking (void)
{
  char *path = golden_path ("cases/scheduler_masking.safetensors");
  const ts_st_tensor *lt;
  ts_safetensors *st;
  cJSON *root, *c;
  int n_images, codebook, n_tokens, n_steps, step_index, mask_id, *mask_len;
  size_t n;
  float *logits, *gumbel, *uniform, *want_probs, *want_conf, *want_mask_len, *want_temp;
  float *probs, *conf;
  int32_t *sample, *draws, *want_pred, *want_prev, *pred, *prev;
  ts_error err;

  if (!path)
    return;
  c = golden_index_case ("scheduler_masking", &root);
  mask_id = json_int (c, "mask_token_id");
  n_steps = json_int (c, "num_inference_steps");
  step_index = json_int (c, "step_index");
  g_assert_cmpint (ts_sampler_timestep (step_index, n_steps), ==, json_int (c, "timestep"));

  st = ts_safetensors_open (path, &err);
  if (!st)
    g_test_message ("%s", err.message);
  g_assert_nonnull (st);
  lt = ts_safetensors_find (st, "in.logits");
  g_assert_nonnull (lt);
  g_assert_cmpint (lt->n_dims, ==, 4);
  n_images = (int) lt->shape[0];
  codebook = (int) lt->shape[1];
  n_tokens = (int) (lt->shape[2] * lt->shape[3]);
  n = (size_t) n_images * n_tokens;

  logits = golden_f32 (st, "in.logits", n * codebook);
  sample = golden_i32 (st, "in.sample", n);
  draws = golden_i32 (st, "in.multinomial_draws", n);
  gumbel = golden_f32 (st, "in.gumbel_noise", n);
  uniform = golden_f32 (st, "in.uniform_noise", n);
  want_pred = golden_i32 (st, "out.pred_original_sample", n);
  want_prev = golden_i32 (st, "out.prev_sample", n);
  want_probs = golden_f32 (st, "mid.selected_probs", n);
  want_conf = golden_f32 (st, "mid.confidence", n);
  want_mask_len = golden_f32 (st, "mid.mask_len", n_images);
  want_temp = golden_f32 (st, "mid.temperature", 1);

  pred = g_new (int32_t, n);
  prev = g_new (int32_t, n);
  probs = g_new (float, n);
  conf = g_new (float, n);
  mask_len = g_new (int, n_images);
  for (int pass = 0; pass < 2; pass++) {
    ts_sampler_step_args a = {
      .n_images = n_images,
      .codebook_size = codebook,
      .n_tokens = n_tokens,
      .logits = logits,
      .sample = sample,
      .mask_token_id = mask_id,
      .step_index = step_index,
      .n_steps = n_steps,
      .schedule = TS_MASKING_COSINE,
      .temperature = ts_sampler_temperature (2.0f, 0.0f, step_index, n_steps),
      .draws = { .kind = TS_SAMPLER_DRAWS_RECORDED, .multinomial = draws,
                 .gumbel = pass == 0 ? gumbel : NULL, .uniform = uniform },
      .pred_original_sample = pred,
      .prev_sample = prev,
      .selected_probs = probs,
      .confidence = conf,
      .mask_len = mask_len,
    };

    g_test_message ("pass %d: Gumbel noise %s", pass,
                    pass == 0 ? "recorded" : "from uniform");
    g_assert_cmphex (f32_bits (a.temperature), ==, f32_bits (want_temp[0]));
    g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
    g_assert_cmpmem (pred, n * sizeof *pred, want_pred, n * sizeof *want_pred);
    g_assert_cmpmem (prev, n * sizeof *prev, want_prev, n * sizeof *want_prev);
    for (int r = 0; r < n_images; r++)
      g_assert_cmpfloat ((float) mask_len[r], ==, want_mask_len[r]);
    assert_close_rel (probs, want_probs, n, "selected_probs");
    assert_close_rel (conf, want_conf, n, "confidence");
  }

  g_free (logits);
  g_free (sample);
  g_free (draws);
  g_free (gumbel);
  g_free (uniform);
  g_free (want_pred);
  g_free (want_prev);
  g_free (want_probs);
  g_free (want_conf);
  g_free (want_mask_len);
  g_free (want_temp);
  g_free (pred);
  g_free (prev);
  g_free (probs);
  g_free (conf);
  g_free (mask_len);
  ts_safetensors_free (st);
  cJSON_Delete (root);
  g_free (path);
}

/* pipeline_replay: the scheduler steps of an official end-to-end run. The logits are not
 * stored, but each step's recorded grids pin the schedule and the bookkeeping: mask_len
 * from the unknown count, sampled codes equal to the recorded draws, known tokens kept,
 * exactly mask_len tokens re-masked (none at the last step), and the chain of steps. */
static void
test_golden_pipeline_steps (void)
{
  char *path = golden_path ("cases/pipeline_replay.safetensors");
  const ts_st_tensor *t0;
  ts_safetensors *st;
  cJSON *root, *c;
  int n_steps;
  size_t n;
  int32_t *chain = NULL;
  ts_error err;

  if (!path)
    return;
  c = golden_index_case ("pipeline_replay", &root);
  n_steps = json_int (c, "steps");
  st = ts_safetensors_open (path, &err);
  if (!st)
    g_test_message ("%s", err.message);
  g_assert_nonnull (st);
  t0 = ts_safetensors_find (st, "step0.sample_in");
  g_assert_nonnull (t0);
  g_assert_cmpint (t0->shape[0], ==, 1);
  n = t0->n_elements;

  for (int k = 0; k < n_steps; k++) {
    char name[64];
    int32_t *in, *draws, *pred, *prev;
    int n_unknown, want_mask_len = 0, remasked = 0;

    g_test_message ("step %d", k);
    g_snprintf (name, sizeof name, "step%d.sample_in", k);
    in = golden_i32 (st, name, n);
    g_snprintf (name, sizeof name, "step%d.multinomial_draws", k);
    draws = golden_i32 (st, name, n);
    g_snprintf (name, sizeof name, "step%d.pred_original_sample", k);
    pred = golden_i32 (st, name, n);
    g_snprintf (name, sizeof name, "step%d.prev_sample", k);
    prev = golden_i32 (st, name, n);
    if (k < n_steps - 1) {
      float *ml;
      g_snprintf (name, sizeof name, "step%d.mask_len", k);
      ml = golden_f32 (st, name, 1);
      want_mask_len = (int) ml[0];
      g_assert_cmpfloat ((float) want_mask_len, ==, ml[0]);
      g_free (ml);
    }
    if (chain)
      g_assert_cmpmem (in, n * sizeof *in, chain, n * sizeof *chain);

    n_unknown = count_id (in, n, MASK_ID);
    g_assert_cmpint (ts_sampler_mask_len (TS_MASKING_COSINE, k, n_steps, (int) n,
                                          n_unknown), ==, want_mask_len);
    for (size_t t = 0; t < n; t++) {
      g_assert_cmpint (pred[t], ==, in[t] == MASK_ID ? draws[t] : in[t]);
      if (prev[t] == MASK_ID) {
        remasked++;
        g_assert_cmpint (in[t], ==, MASK_ID);
      } else {
        g_assert_cmpint (prev[t], ==, pred[t]);
      }
    }
    g_assert_cmpint (remasked, ==, want_mask_len);
    g_free (chain);
    chain = prev;
    g_free (in);
    g_free (draws);
    g_free (pred);
  }
  g_assert_cmpint (count_id (chain, n, MASK_ID), ==, 0);
  {
    int32_t *final = golden_i32 (st, "out.final_latents", n);
    g_assert_cmpmem (final, n * sizeof *final, chain, n * sizeof *chain);
    g_free (final);
  }
  g_free (chain);
  ts_safetensors_free (st);
  cJSON_Delete (root);
  g_free (path);
}

/* The transformer cases store the batch [uncond ; cond] logits and the pipeline's CFG
 * result with guidance 9: the combine must reproduce it bit for bit. */
static void
test_golden_cfg (void)
{
  const char *cases[] = { "cases/transformer_h1024.safetensors",
                          "cases/transformer_nodownsample_h256.safetensors" };

  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    char *path = golden_path (cases[i]);
    const ts_st_tensor *cfg;
    ts_safetensors *st;
    float *logits, *want, *out;
    ts_error err;
    size_t n;

    if (!path)
      return;
    g_test_message ("%s", cases[i]);
    st = ts_safetensors_open (path, &err);
    if (!st)
      g_test_message ("%s", err.message);
    g_assert_nonnull (st);
    cfg = ts_safetensors_find (st, "out.cfg_logits_g9");
    g_assert_nonnull (cfg);
    n = cfg->n_elements;
    logits = golden_f32 (st, "out.logits", 2 * n);
    want = golden_f32 (st, "out.cfg_logits_g9", n);
    out = g_new (float, n);
    ts_sampler_cfg_combine (logits, logits + n, 9.0f, out, n);
    for (size_t k = 0, shown = 0; k < n && shown < 5; k++) {
      if (f32_bits (out[k]) != f32_bits (want[k])) {
        g_test_message ("element %zu: got %a, want %a", k, out[k], want[k]);
        shown++;
      }
    }
    g_assert_cmpmem (out, n * sizeof *out, want, n * sizeof *want);
    g_free (logits);
    g_free (want);
    g_free (out);
    ts_safetensors_free (st);
    g_free (path);
  }
}

/* ---- schedule ---- */

static void
test_mask_len_small (void)
{
  const ts_masking_schedule cos_s = TS_MASKING_COSINE;

  /* seq_len 7, 8 steps: floor (7 cos (pi/16)) = 6, then the unknown - 1 clamp takes over
   * and the "at least one" clamp keeps step 6 at 1 with a single unknown token. */
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 0, 8, 7, 7), ==, 6);
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 1, 8, 7, 6), ==, 5);
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 4, 8, 7, 3), ==, 2);
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 5, 8, 7, 7), ==, 2); /* floor (7 * 0.383) */
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 5, 8, 7, 2), ==, 1);
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 6, 8, 7, 7), ==, 1); /* floor (7 * 0.195) */
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 6, 8, 7, 1), ==, 1);
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 6, 8, 7, 0), ==, 1);
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 7, 8, 7, 7), ==, 0);
  /* seq_len 16, 2 steps: floor (16 cos (pi/4)) = 11. */
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 0, 2, 16, 16), ==, 11);
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 0, 2, 16, 5), ==, 4);
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 0, 2, 16, 0), ==, 1);
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 1, 2, 16, 16), ==, 0);
  /* One step is the last step. */
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 0, 1, 64, 64), ==, 0);
  /* ratio 2/3 of 12 steps at seq_len 256: the fp32 cosine is 0.49999997, so 127, not 128
   * (the reference's table has 127). */
  g_assert_cmphex (f32_bits (ts_sampler_mask_ratio (cos_s, 7, 12)), ==, 0x3effffff);
  g_assert_cmpint (ts_sampler_mask_len (cos_s, 7, 12, 256, 256), ==, 127);
}

static void
test_schedule_linear (void)
{
  const ts_masking_schedule lin = TS_MASKING_LINEAR;
  ts_masking_schedule s = TS_MASKING_COSINE;
  ts_error err;

  g_assert_cmpfloat (ts_sampler_mask_ratio (lin, 0, 4), ==, 0.75f);
  g_assert_cmpfloat (ts_sampler_mask_ratio (lin, 1, 4), ==, 0.5f);
  g_assert_cmpfloat (ts_sampler_mask_ratio (lin, 2, 4), ==, 0.25f);
  g_assert_cmpfloat (ts_sampler_mask_ratio (lin, 3, 4), ==, 0.0f);
  g_assert_cmpint (ts_sampler_mask_len (lin, 0, 4, 100, 100), ==, 75);
  g_assert_cmpint (ts_sampler_mask_len (lin, 1, 4, 100, 75), ==, 50);

  g_assert_cmpint (ts_masking_schedule_from_name ("linear", &s, NULL), ==, TS_OK);
  g_assert_cmpint (s, ==, TS_MASKING_LINEAR);
  g_assert_cmpint (ts_masking_schedule_from_name ("cosine", &s, NULL), ==, TS_OK);
  g_assert_cmpint (s, ==, TS_MASKING_COSINE);
  g_assert_cmpint (ts_masking_schedule_from_name ("sigmoid", &s, &err), ==,
                   TS_ERR_UNSUPPORTED);
  g_assert_nonnull (strstr (err.message, "sigmoid"));
}

static void
test_temperature_linspace (void)
{
  const float five[] = { 2.0f, 1.5f, 1.0f, 0.5f, 0.0f };

  g_assert_cmpfloat (ts_sampler_temperature (2.0f, 0.0f, 0, 1), ==, 2.0f);
  for (int i = 0; i < 5; i++)
    g_assert_cmpfloat (ts_sampler_temperature (2.0f, 0.0f, i, 5), ==, five[i]);
  /* A single-value temperature T means linspace (T, 0.01, N): the ends are exact. */
  g_assert_cmpfloat (ts_sampler_temperature (3.0f, 0.01f, 0, 20), ==, 3.0f);
  g_assert_cmpfloat (ts_sampler_temperature (3.0f, 0.01f, 19, 20), ==, 0.01f);
  /* 64 steps, index 13: inside the first 8-lane vector of the second pair, so torch's
   * value is (start + 8 step) + 5 step = 0x3fcb2cb3 rather than start + 13 step rounded
   * twice (0x3fcb2cb2); the golden table holds the former. */
  g_assert_cmphex (f32_bits (ts_sampler_temperature (2.0f, 0.0f, 13, 64)), ==, 0x3fcb2cb3);
}

/* fmaf (a, b, c) rounded to nearest, computed without an FMA so that the emulation below
 * shares no code path with the engine. a * b is exact in double (24 + 24 significant bits
 * fit in 53). Rounding p + c to double and then to float could round twice the wrong way
 * (a sum just above a float midpoint lands on it, then ties to even), so the sum is
 * rounded to double *to odd* instead: TwoSum gives the exact error e of the double sum s
 * (s + e == p + c exactly, as p and c are doubles), and when e != 0 and s is even, s moves
 * one ulp towards p + c, onto its odd neighbour. Rounding to odd at 53 bits followed by
 * rounding to nearest at 24 bits is the correctly rounded result, as 53 >= 24 + 2
 * (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums: proved algorithms
 * using rounding to odd", IEEE Trans. Computers 57(4), 2008). */
static float
emulated_fmaf (float a, float b, float c)
{
  double p = (double) a * (double) b;
  double s = p + (double) c;
  double c_part = s - p;
  double p_part = s - c_part;
  double e = (p - p_part) + ((double) c - c_part);
  uint64_t u;

  memcpy (&u, &s, sizeof u);
  if (e != 0.0 && (u & 1) == 0)
    s = nextafter (s, e > 0.0 ? INFINITY : -INFINITY);
  return (float) s;
}

/* All of torch.linspace (start, end, n) in fp32, written as torch 1.13's AVX2 kernel
 * fills its output (see ts_sampler_temperature): pairs of 8-lane vectors while 16
 * elements remain, whose lane 0 is a fused multiply-add and whose lane k adds the
 * separately rounded k * step; then one fused multiply-add per remaining element. */
static void
torch_linspace_f32 (float start, float end, int n, float *out)
{
  float step, k_step[8];
  int halfway = n / 2, i = 0;

  if (n == 1) {
    out[0] = start;
    return;
  }
  step = (end - start) / (float) (n - 1);
  for (int k = 1; k < 8; k++)
    k_step[k] = (float) k * step;
  for (; i + 16 <= n; i += 16) {
    for (int v = i; v < i + 16; v += 8) {
      float lane0 = v < halfway ? emulated_fmaf (step, (float) v, start)
                                : emulated_fmaf (-step, (float) (n - 1 - v), end);
      out[v] = lane0;
      for (int k = 1; k < 8; k++)
        out[v + k] = lane0 + k_step[k];
    }
  }
  for (; i < n; i++)
    out[i] = i < halfway ? emulated_fmaf (step, (float) i, start)
                         : emulated_fmaf (-step, (float) (n - 1 - i), end);
}

static void
test_temperature_fma (void)
{
  /* (start, end): the default, the single-value forms T -> 0.01, and other ranges. */
  static const float pairs[][2] = {
    { 2.0f, 0.0f }, { 1.0f, 0.0f }, { 3.0f, 0.5f }, { 0.0f, 1.0f },
    { 3.0f, 0.01f }, { 2.5f, 1e-5f }, { 0.7f, 0.7f },
  };
  enum { MAX_STEPS = 200 };
  float want[MAX_STEPS];
  int checked = 0, mismatches = 0;

  /* The emulation on a case where double rounding goes wrong: a * b = 1 + 2^-11 + 2^-24
   * is a float midpoint and c = 2^-60 puts the sum just above it. */
  g_assert_cmphex (f32_bits (emulated_fmaf (0x1.001p+0f, 0x1.001p+0f, 0x1p-60f)), ==,
                   0x3f801001);

  /* The reported case: start + 3 step in one rounding is 0x3faaaaab, in two 0x3faaaaaa. */
  g_assert_cmphex (f32_bits (ts_sampler_temperature (2.0f, 0.0f, 3, 10)), ==, 0x3faaaaab);

  for (size_t p = 0; p < G_N_ELEMENTS (pairs); p++) {
    for (int n = 1; n <= MAX_STEPS; n++) {
      torch_linspace_f32 (pairs[p][0], pairs[p][1], n, want);
      for (int i = 0; i < n; i++) {
        uint32_t got = f32_bits (ts_sampler_temperature (pairs[p][0], pairs[p][1], i, n));

        checked++;
        if (got != f32_bits (want[i]) && mismatches++ == 0)
          g_test_message ("linspace (%a, %a, %d)[%d]: got 0x%08x, want 0x%08x", pairs[p][0],
                          pairs[p][1], n, i, got, f32_bits (want[i]));
      }
    }
  }
  g_test_message ("%d of %d linspace elements differ", mismatches, checked);
  g_assert_cmpint (mismatches, ==, 0);
}

/* ---- step ---- */

static void
test_single_step_fills_all (void)
{
  enum { C = 24, N = 64 };
  float logits[C * N];
  int32_t grid[N], pred[N], prev[N];
  ts_sampler_step_args a;
  int mask_len = -1;
  GRand *rand = g_rand_new_with_seed (1);
  ts_error err;

  fill_logits (rand, logits, C * N);
  for (int t = 0; t < N; t++)
    grid[t] = MASK_ID;
  a = step_args (1, C, N, logits, grid, 0, 1, 99, pred, prev);
  a.mask_len = &mask_len;
  g_assert_cmpfloat (a.temperature, ==, 2.0f);
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
  g_assert_cmpint (mask_len, ==, 0);
  for (int t = 0; t < N; t++) {
    g_assert_cmpint (pred[t], >=, 0);
    g_assert_cmpint (pred[t], <, C);
    g_assert_cmpint (prev[t], ==, pred[t]);
  }
  g_rand_free (rand);
}

static void
test_seed_reproducible (void)
{
  enum { C = 32, N = 256, STEPS = 8 };
  float *logits = g_new (float, C * N);
  int32_t grid[N], pred1[N], prev1[N], pred2[N], prev2[N];
  GRand *rand = g_rand_new_with_seed (2);
  ts_sampler_step_args a;
  int differ = 0;
  ts_error err;

  fill_logits (rand, logits, C * N);
  for (int t = 0; t < N; t++)
    grid[t] = MASK_ID;
  a = step_args (1, C, N, logits, grid, 0, STEPS, 1234, pred1, prev1);
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
  a.pred_original_sample = pred2;
  a.prev_sample = prev2;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
  g_assert_cmpmem (pred1, sizeof pred1, pred2, sizeof pred2);
  g_assert_cmpmem (prev1, sizeof prev1, prev2, sizeof prev2);

  a.draws.seed = 1235;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
  for (int t = 0; t < N; t++)
    differ += pred1[t] != pred2[t];
  /* 32 codes with random logits: two independent draws agree far less than half the
   * time. The re-masked set differs too, but its size is the same. */
  g_assert_cmpint (differ, >, N / 2);
  g_assert_cmpint (count_id (prev1, N, MASK_ID), ==, count_id (prev2, N, MASK_ID));
  g_assert_true (memcmp (prev1, prev2, sizeof prev1) != 0);
  g_rand_free (rand);
  g_free (logits);
}

/* A grid with a mix of known and unknown tokens. */
static void
mixed_grid (GRand *rand, int32_t *grid, int n, int codebook)
{
  for (int t = 0; t < n; t++)
    grid[t] = g_rand_int_range (rand, 0, 3) == 0 ? g_rand_int_range (rand, 0, codebook)
                                                 : MASK_ID;
}

static void
test_recorded_matches_rng (void)
{
  enum { C = 40, N = 300, STEPS = 12, STEP = 3, B = 2 };
  float *logits = g_new (float, B * C * N);
  int32_t grid[B * N], pred[B * N], prev[B * N], pred2[B * N], prev2[B * N];
  int32_t draws[B * N];
  float uniform[B * N], gumbel[B * N], conf[B * N], conf2[B * N], probs[B * N],
      probs2[B * N];
  int ml[B], ml2[B];
  GRand *rand = g_rand_new_with_seed (3);
  ts_sampler_step_args a, r;
  ts_error err;

  fill_logits (rand, logits, B * C * N);
  mixed_grid (rand, grid, B * N, C);
  a = step_args (B, C, N, logits, grid, STEP, STEPS, 77, pred, prev);
  a.draws.image_index = 5;
  a.confidence = conf;
  a.selected_probs = probs;
  a.mask_len = ml;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);

  /* The same draws, recorded: the codes the RNG picked and its Gumbel uniforms. */
  for (int b = 0; b < B; b++) {
    for (int t = 0; t < N; t++) {
      int i = b * N + t;
      draws[i] = grid[i] == MASK_ID ? pred[i] : g_rand_int_range (rand, 0, C);
      uniform[i] = ts_rng_uniform (77, 5 + b, STEP, TS_RNG_PURPOSE_GUMBEL, t);
      gumbel[i] = -logf (fmaxf (-logf (fmaxf (uniform[i], 1e-20f)), 1e-20f));
    }
  }
  r = a;
  r.draws = (ts_sampler_draws) { .kind = TS_SAMPLER_DRAWS_RECORDED, .multinomial = draws,
                                 .uniform = uniform };
  r.pred_original_sample = pred2;
  r.prev_sample = prev2;
  r.confidence = conf2;
  r.selected_probs = probs2;
  r.mask_len = ml2;
  g_assert_cmpint (ts_sampler_step (&r, &err), ==, TS_OK);
  g_assert_cmpmem (pred, sizeof pred, pred2, sizeof pred2);
  g_assert_cmpmem (prev, sizeof prev, prev2, sizeof prev2);
  g_assert_cmpmem (conf, sizeof conf, conf2, sizeof conf2);
  g_assert_cmpmem (probs, sizeof probs, probs2, sizeof probs2);
  g_assert_cmpmem (ml, sizeof ml, ml2, sizeof ml2);

  r.draws.gumbel = gumbel;
  r.draws.uniform = NULL;
  memset (prev2, 0, sizeof prev2);
  g_assert_cmpint (ts_sampler_step (&r, &err), ==, TS_OK);
  g_assert_cmpmem (prev, sizeof prev, prev2, sizeof prev2);
  g_assert_cmpmem (conf, sizeof conf, conf2, sizeof conf2);
  g_rand_free (rand);
  g_free (logits);
}

static void
test_multinomial_distribution (void)
{
  /* All tokens share p = (0.1, 0.2, 0.3, 0.4, 0): 20000 inverse-CDF draws land within
   * 0.015 of p (sd <= 0.0035), and the -inf code is never drawn. */
  enum { C = 5, N = 20000 };
  const float p[C] = { 0.1f, 0.2f, 0.3f, 0.4f, 0.0f };
  float *logits = g_new (float, C * N);
  int32_t *grid = g_new (int32_t, N), *pred = g_new (int32_t, N), *prev = g_new (int32_t, N);
  int counts[C] = { 0 };
  ts_sampler_step_args a;
  ts_error err;

  for (int c = 0; c < C; c++)
    for (int t = 0; t < N; t++)
      logits[c * N + t] = p[c] > 0 ? logf (p[c]) : -INFINITY;
  for (int t = 0; t < N; t++)
    grid[t] = MASK_ID;
  a = step_args (1, C, N, logits, grid, 0, 1, 5, pred, prev);
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
  for (int t = 0; t < N; t++) {
    g_assert_cmpint (pred[t], >=, 0);
    g_assert_cmpint (pred[t], <, C);
    counts[pred[t]]++;
  }
  for (int c = 0; c < C; c++)
    g_assert_cmpfloat (fabs ((double) counts[c] / N - p[c]), <, 0.015);
  g_assert_cmpint (counts[C - 1], ==, 0);
  g_free (logits);
  g_free (grid);
  g_free (pred);
  g_free (prev);
}

static void
test_remask_known_and_unknown (void)
{
  enum { C = 16, N = 200, STEPS = 10, STEP = 2 };
  float *logits = g_new (float, C * N);
  int32_t grid[N], pred[N], prev[N];
  float conf[N], probs[N];
  int n_unknown, mask_len = -1, remasked = 0;
  GRand *rand = g_rand_new_with_seed (4);
  ts_sampler_step_args a;
  float cut = -INFINITY;
  ts_error err;

  fill_logits (rand, logits, C * N);
  mixed_grid (rand, grid, N, C);
  n_unknown = count_id (grid, N, MASK_ID);
  a = step_args (1, C, N, logits, grid, STEP, STEPS, 11, pred, prev);
  a.confidence = conf;
  a.selected_probs = probs;
  a.mask_len = &mask_len;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
  g_assert_cmpint (mask_len, ==,
                   ts_sampler_mask_len (a.schedule, STEP, STEPS, N, n_unknown));
  for (int t = 0; t < N; t++) {
    if (grid[t] != MASK_ID) {
      /* Known: kept, probability FLT_MAX, confidence ln (FLT_MAX) + T * gumbel. */
      g_assert_cmpint (pred[t], ==, grid[t]);
      g_assert_cmpint (prev[t], ==, grid[t]);
      g_assert_cmpfloat (probs[t], ==, FLT_MAX);
      g_assert_cmpfloat (conf[t], >, 88.72f - 2.0f * 3.9f);
    } else {
      g_assert_cmpint (pred[t], !=, MASK_ID);
      g_assert_cmpfloat (probs[t], >, 0.0f);
      g_assert_cmpfloat (probs[t], <=, 1.0f);
      g_assert_cmpfloat (conf[t], <, 88.72f - 2.0f * 3.9f);
    }
    if (prev[t] == MASK_ID) {
      remasked++;
      g_assert_cmpint (grid[t], ==, MASK_ID);
      cut = fmaxf (cut, conf[t]);
    }
  }
  /* Exactly mask_len re-masked, and they are the least confident. */
  g_assert_cmpint (remasked, ==, mask_len);
  for (int t = 0; t < N; t++)
    if (prev[t] != MASK_ID)
      g_assert_cmpfloat (conf[t], >, cut);
  g_rand_free (rand);
  g_free (logits);
}

static void
test_no_unknown_quirk (void)
{
  /* The reference re-masks one token even when none is unknown (mask_len clamps to 1):
   * the known token with the lowest confidence. */
  enum { C = 8, N = 20 };
  float logits[C * N], conf[N];
  int32_t grid[N], pred[N], prev[N];
  GRand *rand = g_rand_new_with_seed (5);
  ts_sampler_step_args a;
  int mask_len = -1, lowest = 0;
  ts_error err;

  fill_logits (rand, logits, C * N);
  for (int t = 0; t < N; t++)
    grid[t] = t % C;
  a = step_args (1, C, N, logits, grid, 0, 4, 8, pred, prev);
  a.confidence = conf;
  a.mask_len = &mask_len;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
  g_assert_cmpint (mask_len, ==, 1);
  g_assert_cmpint (count_id (prev, N, MASK_ID), ==, 1);
  for (int t = 1; t < N; t++)
    if (conf[t] < conf[lowest])
      lowest = t;
  g_assert_cmpint (prev[lowest], ==, MASK_ID);
  g_rand_free (rand);
}

static void
test_in_place (void)
{
  enum { C = 16, N = 128, STEPS = 6, STEP = 1 };
  float logits[C * N];
  int32_t grid[N], pred[N], prev[N];
  GRand *rand = g_rand_new_with_seed (6);
  ts_sampler_step_args a;
  ts_error err;

  fill_logits (rand, logits, C * N);
  mixed_grid (rand, grid, N, C);
  a = step_args (1, C, N, logits, grid, STEP, STEPS, 3, pred, prev);
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
  /* Both outputs on top of the input. */
  a.pred_original_sample = grid;
  a.prev_sample = grid;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
  g_assert_cmpmem (grid, sizeof grid, prev, sizeof prev);
  g_rand_free (rand);
}

static void
test_batch_rows_independent (void)
{
  enum { C = 12, N = 90, STEPS = 5, STEP = 1 };
  float logits[2 * C * N];
  int32_t grid[2 * N], pred[2 * N], prev[2 * N], pred1[N], prev1[N];
  GRand *rand = g_rand_new_with_seed (7);
  ts_sampler_step_args a;
  ts_error err;

  fill_logits (rand, logits, 2 * C * N);
  mixed_grid (rand, grid, 2 * N, C);
  a = step_args (2, C, N, logits, grid, STEP, STEPS, 21, pred, prev);
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
  /* Row 1 alone, as image 1 of the stream. */
  a = step_args (1, C, N, logits + C * N, grid + N, STEP, STEPS, 21, pred1, prev1);
  a.draws.image_index = 1;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
  g_assert_cmpmem (pred + N, N * sizeof *pred, pred1, sizeof pred1);
  g_assert_cmpmem (prev + N, N * sizeof *prev, prev1, sizeof prev1);
  g_rand_free (rand);
}

static void
test_step_errors (void)
{
  enum { C = 4, N = 6 };
  float logits[C * N];
  int32_t grid[N], pred[N], prev[N], draws[N];
  ts_sampler_step_args a;
  ts_error err;

  for (int i = 0; i < C * N; i++)
    logits[i] = (float) (i % 7) * 0.25f;
  for (int t = 0; t < N; t++) {
    grid[t] = MASK_ID;
    draws[t] = 1;
  }

  a = step_args (1, C, N, logits, grid, 0, 4, 1, pred, prev);
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);

  a.step_index = 4;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_ERR_INVALID_ARG);
  a.step_index = 0;

  grid[2] = C; /* neither a code nor the mask id */
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "token 2"));
  grid[2] = MASK_ID;

  logits[1 * N + 3] = NAN;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "token 3"));
  logits[1 * N + 3] = INFINITY;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_ERR_INVALID_ARG);
  logits[1 * N + 3] = 0.0f;

  a.temperature = NAN;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_ERR_INVALID_ARG);
  a.temperature = 1.0f;

  a.draws = (ts_sampler_draws) { .kind = TS_SAMPLER_DRAWS_RECORDED, .multinomial = draws };
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_ERR_INVALID_ARG); /* no noise */
  a.step_index = 3; /* the last step needs no noise */
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);
  g_assert_cmpint (prev[0], ==, 1);
  draws[5] = C;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "token 5"));

  /* A single token can only be filled, not re-masked. */
  a = step_args (1, C, 1, logits, grid, 0, 4, 1, pred, prev);
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_ERR_INVALID_ARG);
  a.step_index = 3;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_OK);

  a.n_tokens = 0;
  g_assert_cmpint (ts_sampler_step (&a, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_cmpint (ts_sampler_step (NULL, &err), ==, TS_ERR_INVALID_ARG);
}

/* ---- helpers ---- */

static int
cmp_float (const void *pa, const void *pb)
{
  float a = *(const float *) pa, b = *(const float *) pb;
  return (a > b) - (a < b);
}

static void
test_kth_smallest (void)
{
  GRand *rand = g_rand_new_with_seed (8);
  float a[70], sorted[70], work[70];

  for (int trial = 0; trial < 200; trial++) {
    size_t n = (size_t) g_rand_int_range (rand, 1, 71);
    /* Few distinct values on odd trials, so runs of equal keys are common. */
    int range = trial % 2 ? 4 : 1000000;

    for (size_t i = 0; i < n; i++)
      a[i] = (float) g_rand_int_range (rand, 0, range) - range / 2;
    memcpy (sorted, a, n * sizeof *a);
    qsort (sorted, n, sizeof *sorted, cmp_float);
    for (size_t k = 0; k < n; k++) {
      memcpy (work, a, n * sizeof *a);
      g_assert_cmpfloat (ts_sampler_kth_smallest (work, n, k), ==, sorted[k]);
    }
  }
  g_rand_free (rand);
}

static void
test_cfg_combine (void)
{
  /* u + 9 (c - u) with each operation rounded gives 0xc0fea0e6; a fused multiply-add
   * would give 0xc0fea0e7. torch rounds after each tensor op. */
  float uncond[3] = { f32_from_bits (0x3f857c58), 1.0f, -2.0f };
  float cond[3] = { f32_from_bits (0x3d2f8b30), 3.0f, -2.0f };
  float out[3];

  ts_sampler_cfg_combine (uncond, cond, 9.0f, out, 3);
  g_assert_cmphex (f32_bits (out[0]), ==, 0xc0fea0e6);
  g_assert_cmpfloat (out[1], ==, 19.0f);
  g_assert_cmpfloat (out[2], ==, -2.0f);
  /* In place over the uncond input. */
  ts_sampler_cfg_combine (uncond, cond, 9.0f, uncond, 3);
  g_assert_cmpmem (uncond, sizeof uncond, out, sizeof out);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sampler/golden/tables", test_golden_tables);
  g_test_add_func ("/sampler/golden/masking", test_golden_masking);
  g_test_add_func ("/sampler/golden/pipeline-steps", test_golden_pipeline_steps);
  g_test_add_func ("/sampler/golden/cfg", test_golden_cfg);
  g_test_add_func ("/sampler/mask-len-small", test_mask_len_small);
  g_test_add_func ("/sampler/schedule-linear", test_schedule_linear);
  g_test_add_func ("/sampler/temperature-linspace", test_temperature_linspace);
  g_test_add_func ("/sampler/temperature-fma", test_temperature_fma);
  g_test_add_func ("/sampler/single-step-fills-all", test_single_step_fills_all);
  g_test_add_func ("/sampler/seed-reproducible", test_seed_reproducible);
  g_test_add_func ("/sampler/recorded-matches-rng", test_recorded_matches_rng);
  g_test_add_func ("/sampler/multinomial-distribution", test_multinomial_distribution);
  g_test_add_func ("/sampler/remask-known-and-unknown", test_remask_known_and_unknown);
  g_test_add_func ("/sampler/no-unknown-quirk", test_no_unknown_quirk);
  g_test_add_func ("/sampler/in-place", test_in_place);
  g_test_add_func ("/sampler/batch-rows-independent", test_batch_rows_independent);
  g_test_add_func ("/sampler/step-errors", test_step_errors);
  g_test_add_func ("/sampler/kth-smallest", test_kth_smallest);
  g_test_add_func ("/sampler/cfg-combine", test_cfg_combine);
  return g_test_run ();
}
