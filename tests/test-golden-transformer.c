/* SPDX-License-Identifier: MIT
 *
 * test-golden-transformer — proves the Meissonic transformer stage (ts-transformer)
 * against the golden reference set: every "transformer_forward" case of index.json runs
 * through ts_golden_run_transformer_forward on both CPU backends (cpu-ref and cpu), and
 * every listed intermediate and output must be within the README tolerances. The per-
 * tensor max abs errors are printed as test messages. Further checks on the tiny golden
 * model: grid validation, abort polling, bad token ids, a checkpoint missing a tensor, and
 * that a batch entry's logits do not depend on the other entries.
 *
 * Skips when $TESSERA_GOLDEN_DIR does not exist.
 */
#include "devkit/golden/ts-golden.h"
#include "stages/ts-transformer.h"

#include <glib.h>
#include <math.h>
#include <string.h>

static const char *
golden_dir (void)
{
  const char *d = g_getenv ("TESSERA_GOLDEN_DIR");
  return d ? d : "../shared/golden";
}

static gboolean
golden_present (void)
{
  if (g_file_test (golden_dir (), G_FILE_TEST_IS_DIR))
    return TRUE;
  g_test_skip ("golden folder absent");
  return FALSE;
}

static cJSON *
load_index (void)
{
  g_autofree char *path = g_build_filename (golden_dir (), "index.json", NULL);
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  g_assert_no_error (error);
  cJSON *index = cJSON_Parse (text);
  g_assert_nonnull (index);
  return index;
}

/* ---- the golden cases ---- */

typedef struct {
  char *case_name;
  gboolean reference;
} GoldenCase;

typedef struct {
  int n_reported;
  int n_failed;
} ReportTally;

static void
report (void *ud, const char *case_name, const char *tensor, double max_abs_err,
        double tolerance, bool pass)
{
  ReportTally *tally = ud;
  g_test_message ("%s %-30s max abs err %.3g (tolerance %.3g)%s", case_name, tensor, max_abs_err,
                  tolerance, pass ? "" : "  FAILED");
  tally->n_reported++;
  if (!pass)
    tally->n_failed++;
}

static void
test_golden_case (gconstpointer data)
{
  const GoldenCase *gc = data;
  if (!golden_present ())
    return;
  cJSON *index = load_index ();
  const cJSON *entry
    = cJSON_GetObjectItemCaseSensitive (cJSON_GetObjectItemCaseSensitive (index, "cases"),
                                        gc->case_name);
  g_assert_nonnull (entry);

  ts_backend be;
  ts_error err;
  g_assert_cmpint (ts_backend_cpu_new (&be, gc->reference, 2, &err), ==, TS_OK);
  g_test_message ("backend %s", ts_backend_name (&be));
  ReportTally tally = { 0, 0 };
  ts_status st = ts_golden_run_transformer_forward (golden_dir (), entry, &be, report, &tally,
                                                    &err);
  if (st != TS_OK)
    g_test_message ("runner: %s", err.message);
  const cJSON *tensors = cJSON_GetObjectItemCaseSensitive (entry, "tensors");
  int n_expected = 0;
  const cJSON *t;
  cJSON_ArrayForEach (t, tensors)
    if (!g_str_has_prefix (t->string, "in."))
      n_expected++;
  g_assert_cmpint (tally.n_failed, ==, 0);
  g_assert_cmpint (st, ==, TS_OK);
  /* Every listed intermediate and output was compared exactly once. */
  g_assert_cmpint (tally.n_reported, ==, n_expected);
  ts_backend_free (&be);
  cJSON_Delete (index);
}

/* ---- checks on the tiny model ---- */

typedef struct {
  ts_transformer_config cfg;
  ts_st_set *weights;
  int32_t *tokens;
  float *enc, *pooled, *logits;
  float micro[TS_TRANSFORMER_N_MICRO_CONDS];
  int batch, grid_h, grid_w, text_len;
  int64_t timestep;
} TinyCase;

static float *
read_f32 (const ts_safetensors *file, const char *name, const ts_st_tensor **out)
{
  const ts_st_tensor *t = ts_safetensors_find (file, name);
  g_assert_nonnull (t);
  float *v = g_new (float, t->n_elements);
  g_assert_cmpint (ts_st_tensor_to_f32 (t, v, NULL), ==, TS_OK);
  *out = t;
  return v;
}

/* Loads the inputs of golden case `case_name` and the config + weights of `model` (a
 * folder under models/). */
static void
tiny_case_load (TinyCase *tc, const char *case_name, const char *model)
{
  ts_error err;
  g_autofree char *cfg_path
    = g_build_filename (golden_dir (), "models", model, "transformer", "config.json", NULL);
  g_autofree char *model_dir = g_build_filename (golden_dir (), "models", model, "transformer",
                                                 NULL);
  g_autofree char *file_name = g_strconcat (case_name, ".safetensors", NULL);
  g_autofree char *case_path = g_build_filename (golden_dir (), "cases", file_name, NULL);
  memset (tc, 0, sizeof *tc);
  g_assert_cmpint (ts_transformer_config_from_file (cfg_path, &tc->cfg, &err), ==, TS_OK);
  tc->weights = ts_st_set_open (model_dir, "diffusion_pytorch_model", NULL, &err);
  g_assert_nonnull (tc->weights);

  ts_safetensors *file = ts_safetensors_open (case_path, &err);
  g_assert_nonnull (file);
  const ts_st_tensor *hs = ts_safetensors_find (file, "in.hidden_states"), *t;
  g_assert_nonnull (hs);
  tc->batch = (int) hs->shape[0];
  tc->grid_h = (int) hs->shape[1];
  tc->grid_w = (int) hs->shape[2];
  g_autofree int64_t *ids = g_new (int64_t, hs->n_elements);
  g_assert_cmpint (ts_st_tensor_to_i64 (hs, ids, NULL), ==, TS_OK);
  tc->tokens = g_new (int32_t, hs->n_elements);
  for (size_t i = 0; i < hs->n_elements; i++)
    tc->tokens[i] = (int32_t) ids[i];
  tc->enc = read_f32 (file, "in.encoder_hidden_states", &t);
  tc->text_len = (int) t->shape[1];
  tc->pooled = read_f32 (file, "in.pooled_projections", &t);
  g_autofree float *micro = read_f32 (file, "in.micro_conds", &t);
  memcpy (tc->micro, micro, sizeof tc->micro);
  g_assert_cmpint (ts_st_tensor_to_i64 (ts_safetensors_find (file, "in.timestep"), &tc->timestep,
                                        NULL),
                   ==, TS_OK);
  tc->logits = g_new0 (float, (size_t) tc->batch * tc->cfg.codebook_size * tc->grid_h
                                * tc->grid_w);
  ts_safetensors_free (file);
}

static void
tiny_case_clear (TinyCase *tc)
{
  ts_st_set_free (tc->weights);
  g_free (tc->tokens);
  g_free (tc->enc);
  g_free (tc->pooled);
  g_free (tc->logits);
}

static ts_transformer_forward_args
tiny_case_args (const TinyCase *tc)
{
  ts_transformer_forward_args a = {
    .tokens = tc->tokens, .batch = tc->batch, .grid_h = tc->grid_h, .grid_w = tc->grid_w,
    .encoder_hidden_states = tc->enc, .text_len = tc->text_len,
    .pooled_projections = tc->pooled, .timestep = tc->timestep, .logits = tc->logits,
  };
  memcpy (a.micro_conds, tc->micro, sizeof a.micro_conds);
  return a;
}

static void
test_check_grid (void)
{
  if (!golden_present ())
    return;
  TinyCase down, flat;
  ts_error err;
  tiny_case_load (&down, "transformer_h1024", "tiny-meissonic");
  tiny_case_load (&flat, "transformer_nodownsample_h256", "tiny-nodownsample");
  g_assert_cmpint (ts_transformer_check_grid (&down.cfg, 64, 16, &err), ==, TS_OK);
  g_assert_cmpint (ts_transformer_check_grid (&down.cfg, 63, 16, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "63×16"));
  g_assert_nonnull (strstr (err.message, "even"));
  g_assert_cmpint (ts_transformer_check_grid (&down.cfg, 64, 15, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_cmpint (ts_transformer_check_grid (&flat.cfg, 15, 7, &err), ==, TS_OK);
  g_assert_cmpint (ts_transformer_check_grid (&flat.cfg, 0, 7, &err), ==, TS_ERR_INVALID_ARG);

  /* The forward refuses the same grid before touching the backend. */
  ts_backend be;
  g_assert_cmpint (ts_backend_cpu_new (&be, true, 1, &err), ==, TS_OK);
  ts_transformer *tf = ts_transformer_new (&be, &down.cfg, down.weights, &err);
  g_assert_nonnull (tf);
  ts_transformer_forward_args a = tiny_case_args (&down);
  a.grid_h = 63;
  a.batch = 1;
  g_assert_cmpint (ts_transformer_forward (tf, &a, NULL, NULL, &err), ==, TS_ERR_INVALID_ARG);
  ts_transformer_free (tf);
  ts_backend_free (&be);
  tiny_case_clear (&down);
  tiny_case_clear (&flat);
}

typedef struct {
  int n_polls;
  int stop_at; /* answer true on this poll (1-based); 0: never */
} AbortCounter;

static bool
abort_poll (void *user_data)
{
  AbortCounter *c = user_data;
  c->n_polls++;
  return c->stop_at && c->n_polls >= c->stop_at;
}

static void
test_abort (void)
{
  if (!golden_present ())
    return;
  TinyCase tc;
  ts_error err;
  ts_backend be;
  tiny_case_load (&tc, "transformer_nodownsample_h256", "tiny-nodownsample");
  g_assert_cmpint (ts_backend_cpu_new (&be, true, 1, &err), ==, TS_OK);
  ts_transformer *tf = ts_transformer_new (&be, &tc.cfg, tc.weights, &err);
  g_assert_nonnull (tf);
  ts_transformer_forward_args a = tiny_case_args (&tc);

  /* Polled before every block and once after the last one. */
  AbortCounter never = { 0, 0 };
  ts_abort ab = { abort_poll, &never };
  g_assert_cmpint (ts_transformer_forward (tf, &a, NULL, &ab, &err), ==, TS_OK);
  g_assert_cmpint (never.n_polls, ==, tc.cfg.num_layers + tc.cfg.num_single_layers + 1);

  for (int stop = 1; stop <= never.n_polls; stop++) {
    AbortCounter c = { 0, stop };
    ab.user_data = &c;
    g_assert_cmpint (ts_transformer_forward (tf, &a, NULL, &ab, &err), ==, TS_ERR_CANCELLED);
    g_assert_cmpint (c.n_polls, ==, stop);
  }
  ts_transformer_free (tf);
  ts_backend_free (&be);
  tiny_case_clear (&tc);
}

static void
test_bad_token (void)
{
  if (!golden_present ())
    return;
  TinyCase tc;
  ts_error err;
  ts_backend be;
  tiny_case_load (&tc, "transformer_nodownsample_h256", "tiny-nodownsample");
  g_assert_cmpint (ts_backend_cpu_new (&be, true, 1, &err), ==, TS_OK);
  ts_transformer *tf = ts_transformer_new (&be, &tc.cfg, tc.weights, &err);
  g_assert_nonnull (tf);
  ts_transformer_forward_args a = tiny_case_args (&tc);
  tc.tokens[5] = tc.cfg.vocab_size;
  g_assert_cmpint (ts_transformer_forward (tf, &a, NULL, NULL, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "vocabulary"));
  tc.tokens[5] = -1;
  g_assert_cmpint (ts_transformer_forward (tf, &a, NULL, NULL, &err), ==, TS_ERR_INVALID_ARG);
  /* The mask id (the last vocabulary entry) is a valid input. */
  tc.tokens[5] = tc.cfg.vocab_size - 1;
  g_assert_cmpint (ts_transformer_forward (tf, &a, NULL, NULL, &err), ==, TS_OK);
  ts_transformer_free (tf);
  ts_backend_free (&be);
  tiny_case_clear (&tc);
}

static void
test_missing_tensor (void)
{
  if (!golden_present ())
    return;
  /* A downsampling config over the no-downsample checkpoint lacks the down_block. */
  TinyCase down, flat;
  ts_error err;
  ts_backend be;
  tiny_case_load (&down, "transformer_h1024", "tiny-meissonic");
  tiny_case_load (&flat, "transformer_nodownsample_h256", "tiny-nodownsample");
  g_assert_cmpint (ts_backend_cpu_new (&be, true, 1, &err), ==, TS_OK);
  g_assert_null (ts_transformer_new (&be, &down.cfg, flat.weights, &err));
  g_assert_cmpint (err.code, ==, TS_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "'down_block.downsample.norm.weight'"));

  /* A config whose codebook disagrees with mlm_layer.conv2 names that tensor. */
  ts_transformer_config wrong = flat.cfg;
  wrong.codebook_size += 1;
  g_assert_null (ts_transformer_new (&be, &wrong, flat.weights, &err));
  g_assert_cmpint (err.code, ==, TS_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "'mlm_layer.conv2.weight'"));
  ts_backend_free (&be);
  tiny_case_clear (&down);
  tiny_case_clear (&flat);
}

/* Batch entry 1 run alone gives the same logits as inside the batch of 2: no state leaks
 * between batch entries (per-entry offsets of the text/image streams, modulation rows). */
static void
test_batch_independent (void)
{
  if (!golden_present ())
    return;
  TinyCase tc;
  ts_error err;
  ts_backend be;
  tiny_case_load (&tc, "transformer_h1024", "tiny-meissonic");
  g_assert_cmpint (tc.batch, ==, 2);
  g_assert_cmpint (ts_backend_cpu_new (&be, true, 1, &err), ==, TS_OK);
  ts_transformer *tf = ts_transformer_new (&be, &tc.cfg, tc.weights, &err);
  g_assert_nonnull (tf);
  ts_transformer_forward_args a = tiny_case_args (&tc);
  g_assert_cmpint (ts_transformer_forward (tf, &a, NULL, NULL, &err), ==, TS_OK);

  const size_t per_logits = (size_t) tc.cfg.codebook_size * tc.grid_h * tc.grid_w;
  const size_t per_tokens = (size_t) tc.grid_h * tc.grid_w;
  g_autofree float *single = g_new0 (float, per_logits);
  ts_transformer_forward_args one = a;
  one.batch = 1;
  one.tokens = tc.tokens + per_tokens;
  one.encoder_hidden_states = tc.enc + (size_t) tc.text_len * tc.cfg.joint_attention_dim;
  one.pooled_projections = tc.pooled + tc.cfg.pooled_projection_dim;
  one.logits = single;
  g_assert_cmpint (ts_transformer_forward (tf, &one, NULL, NULL, &err), ==, TS_OK);
  double max_err = 0.0;
  for (size_t i = 0; i < per_logits; i++)
    max_err = fmax (max_err, fabs ((double) single[i] - tc.logits[per_logits + i]));
  g_test_message ("batch-1 vs batch-2 row 1: max abs diff %.3g", max_err);
  g_assert_cmpfloat (max_err, <=, 1e-6);
  ts_transformer_free (tf);
  ts_backend_free (&be);
  tiny_case_clear (&tc);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/golden/transformer/check-grid", test_check_grid);
  g_test_add_func ("/golden/transformer/abort", test_abort);
  g_test_add_func ("/golden/transformer/bad-token", test_bad_token);
  g_test_add_func ("/golden/transformer/missing-tensor", test_missing_tensor);
  g_test_add_func ("/golden/transformer/batch-independent", test_batch_independent);

  /* One test per transformer_forward case of index.json and backend. Without the golden
   * folder the two shared cases are still registered, so that they show up as skipped. */
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  if (g_file_test (golden_dir (), G_FILE_TEST_IS_DIR)) {
    cJSON *index = load_index ();
    const cJSON *entry;
    cJSON_ArrayForEach (entry, cJSON_GetObjectItemCaseSensitive (index, "cases"))
    {
      const cJSON *kind = cJSON_GetObjectItemCaseSensitive (entry, "kind");
      if (cJSON_IsString (kind) && strcmp (kind->valuestring, "transformer_forward") == 0)
        g_ptr_array_add (names, g_strdup (entry->string));
    }
    cJSON_Delete (index);
  } else {
    g_ptr_array_add (names, g_strdup ("transformer_h1024"));
    g_ptr_array_add (names, g_strdup ("transformer_nodownsample_h256"));
  }
  GPtrArray *cases = g_ptr_array_new ();
  for (guint i = 0; i < names->len; i++)
    for (int ref = 1; ref >= 0; ref--) {
      GoldenCase *gc = g_new0 (GoldenCase, 1);
      gc->case_name = g_strdup (g_ptr_array_index (names, i));
      gc->reference = ref;
      g_ptr_array_add (cases, gc);
      g_autofree char *path = g_strdup_printf ("/golden/transformer/%s/%s", gc->case_name,
                                               ref ? "cpu-ref" : "cpu");
      g_test_add_data_func (path, gc, test_golden_case);
    }
  int status = g_test_run ();
  for (guint i = 0; i < cases->len; i++) {
    GoldenCase *gc = g_ptr_array_index (cases, i);
    g_free (gc->case_name);
    g_free (gc);
  }
  g_ptr_array_free (cases, TRUE);
  g_ptr_array_free (names, TRUE);
  return status;
}
