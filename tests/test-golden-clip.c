/* SPDX-License-Identifier: MIT
 *
 * Golden test of the CLIP text encoder: runs the `clip_text` case of
 * $TESSERA_GOLDEN_DIR/index.json through ts_golden_run_clip_text on both CPU backends
 * (cpu-ref and cpu) and prints every tensor's max abs error; plus the argument checks and
 * both pooling rules of transformers (argmax for eos_token_id 2, first eos otherwise).
 * Skips when the golden folder is absent.
 */
#include "backend/ts-backend.h"
#include "golden-test-common.h"
#include "stages/ts-text-encoder-config.h"
#include "stages/ts-text-encoder.h"

#include <glib.h>
#include <string.h>

static void
test_case (gconstpointer data)
{
  const bool reference = GPOINTER_TO_INT (data);
  const char *dir = golden_dir ();
  if (!dir) {
    g_test_skip ("golden folder absent (TESSERA_GOLDEN_DIR)");
    return;
  }
  cJSON *index = load_index (dir);
  const cJSON *entry = cJSON_GetObjectItem (cJSON_GetObjectItem (index, "cases"), "clip_text");
  g_assert_nonnull (entry);

  ts_backend be;
  ts_error err = { 0 };
  g_assert_cmpint (ts_backend_cpu_new (&be, reference, 2, &err), ==, TS_OK);
  g_test_message ("backend %s", ts_backend_name (&be));
  counts c = { 0, 0 };
  ts_status st = ts_golden_run_clip_text (dir, entry, &be, report_cb, &c, &err);
  if (st != TS_OK)
    g_test_message ("%s", err.message);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_cmpint (c.n_fail, ==, 0);
  /* 3 outputs, embeddings, 3 hidden states, pooled output and index */
  g_assert_cmpint (c.n_pass, >=, 9);
  ts_backend_free (&be);
  cJSON_Delete (index);
}

typedef struct {
  int batch;
  float index[8];
  bool got;
} pooled_capture;

static void
pooled_cb (void *ud, const char *name, const float *data, int n_dims, const int64_t *shape)
{
  pooled_capture *p = ud;
  if (strcmp (name, "mid.pooled_index") == 0) {
    g_assert_cmpint (n_dims, ==, 1);
    g_assert_cmpint (shape[0], ==, p->batch);
    memcpy (p->index, data, (size_t) p->batch * sizeof *data);
    p->got = true;
  }
}

/* Opens the tiny text encoder with `cfg` possibly edited by the caller. */
static ts_text_encoder *
open_encoder (const char *dir, ts_backend *be, ts_clip_text_config *cfg, bool edit_eos,
              int64_t eos, ts_error *err)
{
  g_autofree char *te_dir
      = g_build_filename (dir, "models", "tiny-meissonic", "text_encoder", NULL);
  g_autofree char *cfg_path = g_build_filename (te_dir, "config.json", NULL);
  g_assert_cmpint (ts_clip_text_config_from_file (cfg_path, cfg, err), ==, TS_OK);
  if (edit_eos)
    cfg->eos_token_id = eos;
  ts_st_set *set = ts_st_set_open (te_dir, "model", NULL, err);
  g_assert_nonnull (set);
  ts_text_encoder *te = ts_text_encoder_new (be, cfg, set, err);
  ts_st_set_free (set);
  return te;
}

static void
test_pooling (void)
{
  const char *dir = golden_dir ();
  if (!dir) {
    g_test_skip ("golden folder absent (TESSERA_GOLDEN_DIR)");
    return;
  }
  ts_backend be;
  ts_error err = { 0 };
  g_assert_cmpint (ts_backend_cpu_new (&be, true, 1, &err), ==, TS_OK);

  /* row 0: largest id at 5, first 500 at 3; row 1: no 500, largest id first at 2 */
  int32_t ids[2 * TS_TEXT_ENCODER_SEQ_LEN] = { 0 };
  const int32_t r0[] = { 49406, 320, 1125, 500, 500, 49407, 49407 };
  const int32_t r1[] = { 49406, 320, 49407, 49407 };
  memcpy (ids, r0, sizeof r0);
  memcpy (ids + TS_TEXT_ENCODER_SEQ_LEN, r1, sizeof r1);

  float embeds[2 * 4096];
  float *m2 = g_new (float, 2 * TS_TEXT_ENCODER_SEQ_LEN * 4096);
  const struct {
    bool edit;
    int64_t eos;
    float expect[2];
  } cases[] = {
    { false, 0, { 5, 2 } },   /* config's eos_token_id 2: argmax, first occurrence */
    { true, 500, { 3, 0 } },  /* first eos position, 0 when absent */
  };
  for (size_t k = 0; k < G_N_ELEMENTS (cases); k++) {
    ts_clip_text_config cfg;
    ts_text_encoder *te = open_encoder (dir, &be, &cfg, cases[k].edit, cases[k].eos, &err);
    g_assert_nonnull (te);
    g_assert_cmpint (cfg.projection_dim, <=, 4096);
    g_assert_cmpint (cfg.hidden_size, <=, 4096);
    pooled_capture p = { .batch = 2 };
    ts_capture cap = { pooled_cb, &p };
    g_assert_cmpint (ts_text_encoder_forward (te, ids, 2, embeds, m2, NULL, &cap, &err), ==,
                     TS_OK);
    g_assert_true (p.got);
    g_assert_cmpfloat (p.index[0], ==, cases[k].expect[0]);
    g_assert_cmpfloat (p.index[1], ==, cases[k].expect[1]);
    ts_text_encoder_free (te);
  }
  g_free (m2);
  ts_backend_free (&be);
}

static void
test_invalid (void)
{
  const char *dir = golden_dir ();
  if (!dir) {
    g_test_skip ("golden folder absent (TESSERA_GOLDEN_DIR)");
    return;
  }
  ts_backend be;
  ts_error err = { 0 };
  g_assert_cmpint (ts_backend_cpu_new (&be, true, 1, &err), ==, TS_OK);
  ts_clip_text_config cfg;
  ts_text_encoder *te = open_encoder (dir, &be, &cfg, false, 0, &err);
  g_assert_nonnull (te);

  int32_t ids[TS_TEXT_ENCODER_SEQ_LEN] = { 49406, 49407 };
  float embeds[4096];
  float *m2 = g_new (float, TS_TEXT_ENCODER_SEQ_LEN * 4096);
  ids[5] = cfg.vocab_size;
  g_assert_cmpint (ts_text_encoder_forward (te, ids, 1, embeds, m2, NULL, NULL, &err), ==,
                   TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "49408"));
  ids[5] = -1;
  g_assert_cmpint (ts_text_encoder_forward (te, ids, 1, embeds, m2, NULL, NULL, &err), ==,
                   TS_ERR_INVALID_ARG);
  ids[5] = 0;
  g_assert_cmpint (ts_text_encoder_forward (te, ids, 0, embeds, m2, NULL, NULL, &err), ==,
                   TS_ERR_INVALID_ARG);
  ts_text_encoder_free (te);

  /* quick_gelu has no backend op */
  g_autofree char *te_dir
      = g_build_filename (dir, "models", "tiny-meissonic", "text_encoder", NULL);
  ts_st_set *set = ts_st_set_open (te_dir, "model", NULL, &err);
  g_assert_nonnull (set);
  cfg.hidden_act = TS_CLIP_ACT_QUICK_GELU;
  g_assert_null (ts_text_encoder_new (&be, &cfg, set, &err));
  g_assert_cmpint (err.code, ==, TS_ERR_UNSUPPORTED);
  g_assert_nonnull (strstr (err.message, "quick_gelu"));

  /* a shape that disagrees with the config names the tensor */
  cfg.hidden_act = TS_CLIP_ACT_GELU;
  cfg.intermediate_size += 1;
  g_assert_null (ts_text_encoder_new (&be, &cfg, set, &err));
  g_assert_cmpint (err.code, ==, TS_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "text_model.encoder.layers.0.mlp.fc1.weight"));
  ts_st_set_free (set);

  /* the runner refuses an entry of another kind */
  cJSON *index = load_index (dir);
  const cJSON *other = cJSON_GetObjectItem (cJSON_GetObjectItem (index, "cases"), "vq_decode");
  g_assert_nonnull (other);
  g_assert_cmpint (ts_golden_run_clip_text (dir, other, &be, NULL, NULL, &err), ==,
                   TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "vq_decode"));
  cJSON_Delete (index);
  g_free (m2);
  ts_backend_free (&be);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_data_func ("/golden/clip_text/cpu-ref", GINT_TO_POINTER (1), test_case);
  g_test_add_data_func ("/golden/clip_text/cpu", GINT_TO_POINTER (0), test_case);
  g_test_add_func ("/golden/clip_text/pooling", test_pooling);
  g_test_add_func ("/golden/clip_text/invalid", test_invalid);
  return g_test_run ();
}
