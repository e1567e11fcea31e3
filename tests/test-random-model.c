/* SPDX-License-Identifier: MIT
 *
 * Unit tests for ts-random-model (ts_make_random_model), the random-weight folders the
 * benchmarks run on. Models are made from the golden tiny Meissonic's configs into a
 * temporary folder and read back with the safetensors reader: each checkpoint must hold
 * exactly the tensors of the stages' expected tables with the asked dtype, every element
 * must equal the documented Philox stream under the initialisation rule, the value
 * statistics must follow the rule (checked against the test's own reading of it), the
 * same seed must give byte-identical files and another seed different ones, configs must
 * be copied byte for byte from either config layout, and bad arguments must fail with a
 * message naming the problem. Skipped (77) when TESSERA_GOLDEN_DIR is absent.
 */
#include "devkit/ts-random-model.h"
#include "model/ts-safetensors.h"
#include "stages/ts-text-encoder-config.h"
#include "stages/ts-transformer-config.h"
#include "stages/ts-vq-config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static const char *golden_dir;
static char *tiny_dir;  /* golden_dir/models/tiny-meissonic */
static char *tmp_dir;

typedef struct {
  ts_component component;
  const char *folder;
  const char *file;
} checkpoint;

static const checkpoint checkpoints[] = {
  { TS_COMPONENT_TRANSFORMER, "transformer", "diffusion_pytorch_model.safetensors" },
  { TS_COMPONENT_VQVAE, "vqvae", "diffusion_pytorch_model.safetensors" },
  { TS_COMPONENT_TEXT_ENCODER, "text_encoder", "model.safetensors" },
};

/* Every file a random model folder has besides the weights, and where the tiny model
 * keeps its original. */
static const char *const copied_files[] = {
  "model_index.json",
  "transformer/config.json",
  "vqvae/config.json",
  "text_encoder/config.json",
  "scheduler/scheduler_config.json",
  "tokenizer/vocab.json",
  "tokenizer/merges.txt",
  "tokenizer/tokenizer_config.json",
  "tokenizer/special_tokens_map.json",
};

/* ---- helpers ---- */

static void
remove_tree (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir) {
    while ((name = g_dir_read_name (dir))) {
      char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
      g_free (child);
    }
    g_dir_close (dir);
  }
  g_remove (path);
}

static GBytes *
read_bytes (const char *path)
{
  GError *error = NULL;
  char *data = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &data, &len, &error))
    g_error ("%s", error->message);
  return g_bytes_new_take (data, len);
}

static gboolean
files_equal (const char *a, const char *b)
{
  GBytes *x = read_bytes (a), *y = read_bytes (b);
  gboolean eq = g_bytes_equal (x, y);

  g_bytes_unref (x);
  g_bytes_unref (y);
  return eq;
}

static char *
make_model (const char *name, const char *configs, const char *tokenizer, ts_dtype dtype,
            uint64_t seed)
{
  char *out = g_build_filename (tmp_dir, name, NULL);
  ts_error err;
  ts_status st = ts_make_random_model (configs, tokenizer, out, dtype, seed, NULL, NULL, &err);

  if (st != TS_OK)
    g_error ("ts_make_random_model (%s): %s: %s", name, ts_status_name (st), err.message);
  return out;
}

static void
expected_tensors (ts_component component, ts_tensor_list *list)
{
  char *path = NULL;
  ts_error err;
  ts_status st = TS_ERR_INVALID_ARG;

  ts_tensor_list_init (list);
  switch (component) {
  case TS_COMPONENT_TRANSFORMER: {
    ts_transformer_config c;
    path = g_build_filename (tiny_dir, "transformer", "config.json", NULL);
    st = ts_transformer_config_from_file (path, &c, &err);
    if (st == TS_OK)
      st = ts_transformer_config_tensors (&c, list, &err);
    break;
  }
  case TS_COMPONENT_VQVAE: {
    ts_vq_config c;
    path = g_build_filename (tiny_dir, "vqvae", "config.json", NULL);
    st = ts_vq_config_from_file (path, &c, &err);
    if (st == TS_OK)
      st = ts_vq_config_tensors (&c, list, &err);
    break;
  }
  case TS_COMPONENT_TEXT_ENCODER: {
    ts_clip_text_config c;
    path = g_build_filename (tiny_dir, "text_encoder", "config.json", NULL);
    st = ts_clip_text_config_from_file (path, &c, &err);
    if (st == TS_OK)
      st = ts_clip_text_config_tensors (&c, list, &err);
    break;
  }
  case TS_COMPONENT_TOKENIZER:
  case TS_COMPONENT_SCHEDULER:
  case TS_COMPONENT_COUNT:
    g_assert_not_reached ();
  }
  if (st != TS_OK)
    g_error ("%s", err.message);
  g_free (path);
}

static ts_safetensors *
open_checkpoint (const char *model, const checkpoint *c)
{
  char *path = g_build_filename (model, c->folder, c->file, NULL);
  ts_error err;
  ts_safetensors *st = ts_safetensors_open (path, &err);

  if (!st)
    g_error ("%s", err.message);
  g_free (path);
  return st;
}

/* The test's own reading of the initialisation rule (README "Models" of the golden set
 * for matrices and embeddings; small noise for biases and norm weights). */
static void
rule_of (ts_component component, const ts_tensor_spec *s, double *mean, double *std)
{
  double fan_in = 1;

  *mean = 0;
  if (s->n_dims == 1) {
    *mean = g_str_has_suffix (s->name, ".bias") ? 0 : 1;
    *std = 0.02;
  } else if (component == TS_COMPONENT_VQVAE && g_str_equal (s->name, "quantize.embedding.weight")) {
    *std = 1;
  } else if (strstr (s->name, "embedding")) {
    *std = 0.5;
  } else {
    for (int d = 1; d < s->n_dims; d++)
      fan_in *= (double) s->shape[d];
    *std = CLAMP (0.8 / sqrt (fan_in), 0.02, 0.2);
  }
}

/* Checks one checkpoint of a made model: the exact tensor set with dtype, and every element
 * equal to the stream's value under the rule, converted to dtype. */
static void
check_checkpoint (const char *model, const checkpoint *c, ts_dtype dtype, uint64_t seed)
{
  ts_tensor_list list;
  ts_safetensors *st = open_checkpoint (model, c);
  char seed_text[32];

  expected_tensors (c->component, &list);
  g_assert_cmpuint (list.n, >, 10);
  g_assert_cmpuint (ts_safetensors_n_tensors (st), ==, list.n);
  g_snprintf (seed_text, sizeof seed_text, "%" G_GUINT64_FORMAT, seed);
  g_assert_cmpstr (ts_safetensors_metadata (st, "tessera.random_seed"), ==, seed_text);

  for (size_t i = 0; i < list.n; i++) {
    const ts_tensor_spec *s = &list.items[i];
    const ts_st_tensor *t = ts_safetensors_find (st, s->name);
    float mean, std;
    float *want;
    guint8 *bytes;

    if (!t)
      g_error ("%s/%s: tensor '%s' missing", c->folder, c->file, s->name);
    g_assert_cmpint (t->dtype, ==, dtype);
    g_assert_cmpint (t->n_dims, ==, s->n_dims);
    for (int d = 0; d < s->n_dims; d++)
      g_assert_cmpint (t->shape[d], ==, s->shape[d]);

    ts_random_model_init_rule (c->component, s, &mean, &std);
    want = g_new (float, t->n_elements);
    bytes = g_malloc (t->size_bytes);
    ts_random_model_fill_normal (seed, c->component, (uint32_t) i, 0, t->n_elements, mean, std,
                                 want);
    for (size_t k = 0; k < t->n_elements; k++) {
      uint16_t h;
      if (dtype == TS_DTYPE_F32) {
        memcpy (bytes + 4 * k, &want[k], 4);
      } else {
        g_assert_true (dtype == TS_DTYPE_F16 || dtype == TS_DTYPE_BF16);
        h = dtype == TS_DTYPE_F16 ? ts_f32_to_f16 (want[k]) : ts_f32_to_bf16 (want[k]);
        memcpy (bytes + 2 * k, &h, 2);
      }
    }
    if (memcmp (bytes, t->data, t->size_bytes) != 0)
      g_error ("%s/%s: tensor '%s' is not the stream's values", c->folder, c->file, s->name);
    g_free (bytes);
    g_free (want);
  }
  ts_tensor_list_clear (&list);
  ts_safetensors_free (st);
}

/* ---- tests ---- */

static void
test_values_follow_rule (void)
{
  char *model = make_model ("stats", tiny_dir, NULL, TS_DTYPE_F32, 11);
  int n_checked = 0;
  /* Small tensors (biases, norm weights) are pooled as (v - mean) / std. */
  double pool_sum = 0, pool_sum2 = 0, pool_n = 0;

  for (size_t c = 0; c < G_N_ELEMENTS (checkpoints); c++) {
    ts_tensor_list list;
    ts_safetensors *st = open_checkpoint (model, &checkpoints[c]);

    expected_tensors (checkpoints[c].component, &list);
    for (size_t i = 0; i < list.n; i++) {
      const ts_st_tensor *t = ts_safetensors_find (st, list.items[i].name);
      double mean, std, sum = 0, sum2 = 0, m, s;
      float *v;

      g_assert_nonnull (t);
      rule_of (checkpoints[c].component, &list.items[i], &mean, &std);
      v = g_new (float, t->n_elements);
      g_assert_cmpint (ts_st_tensor_to_f32 (t, v, NULL), ==, TS_OK);
      for (size_t k = 0; k < t->n_elements; k++) {
        double z = (v[k] - mean) / std;
        g_assert_true (isfinite (v[k]));
        sum += v[k];
        sum2 += (double) v[k] * v[k];
        if (t->n_elements < 2000) {
          pool_sum += z;
          pool_sum2 += z * z;
          pool_n++;
        }
      }
      g_free (v);
      if (t->n_elements < 2000)
        continue;
      m = sum / (double) t->n_elements;
      s = sqrt (sum2 / (double) t->n_elements - m * m);
      if (fabs (m - mean) > 6 * std / sqrt ((double) t->n_elements) || fabs (s / std - 1) > 0.1)
        g_error ("%s: mean %g std %g, rule N(%g, %g)", t->name, m, s, mean, std);
      n_checked++;
    }
    ts_tensor_list_clear (&list);
    ts_safetensors_free (st);
  }
  /* The tiny model has enough large tensors for this to mean something: embeddings,
   * codebook, matrices and convolutions. */
  g_assert_cmpint (n_checked, >=, 20);
  g_assert_cmpfloat (pool_n, >, 5000);
  if (fabs (pool_sum / pool_n) > 6 / sqrt (pool_n) || fabs (pool_sum2 / pool_n - 1) > 0.1)
    g_error ("small tensors: standardised mean %g, variance %g", pool_sum / pool_n,
             pool_sum2 / pool_n);
  remove_tree (model);
  g_free (model);
}

static void
test_tensor_sets_and_configs (void)
{
  const ts_dtype dtypes[] = { TS_DTYPE_F16, TS_DTYPE_F32, TS_DTYPE_BF16 };

  for (size_t d = 0; d < G_N_ELEMENTS (dtypes); d++) {
    char *name = g_strdup_printf ("set-%s", ts_dtype_name (dtypes[d]));
    char *model = make_model (name, tiny_dir, NULL, dtypes[d], 1234567890123ull);

    ts_model_info *info;
    ts_error err;

    for (size_t c = 0; c < G_N_ELEMENTS (checkpoints); c++)
      check_checkpoint (model, &checkpoints[c], dtypes[d], 1234567890123ull);
    /* The model-folder loader accepts it: every component, tensor, shape and dtype. */
    info = ts_model_info_load (model, TS_LOAD_DEFAULT, &err);
    if (!info)
      g_error ("ts_model_info_load (%s): %s", model, err.message);
    ts_model_info_free (info);
    for (size_t f = 0; f < G_N_ELEMENTS (copied_files); f++) {
      char *a = g_build_filename (tiny_dir, copied_files[f], NULL);
      char *b = g_build_filename (model, copied_files[f], NULL);
      if (!files_equal (a, b))
        g_error ("%s differs from %s", b, a);
      g_free (a);
      g_free (b);
    }
    remove_tree (model);
    g_free (model);
    g_free (name);
  }
}

static void
test_seeds (void)
{
  char *a = make_model ("seed-a", tiny_dir, NULL, TS_DTYPE_F16, 5);
  char *b = make_model ("seed-b", tiny_dir, NULL, TS_DTYPE_F16, 5);
  char *c = make_model ("seed-c", tiny_dir, NULL, TS_DTYPE_F16, 6);

  for (size_t k = 0; k < G_N_ELEMENTS (checkpoints); k++) {
    char *pa = g_build_filename (a, checkpoints[k].folder, checkpoints[k].file, NULL);
    char *pb = g_build_filename (b, checkpoints[k].folder, checkpoints[k].file, NULL);
    char *pc = g_build_filename (c, checkpoints[k].folder, checkpoints[k].file, NULL);
    ts_safetensors *sa = ts_safetensors_open (pa, NULL), *sc = ts_safetensors_open (pc, NULL);

    g_assert_true (files_equal (pa, pb));
    g_assert_false (files_equal (pa, pc));
    /* Another seed changes every tensor of more than a few elements, not just some. */
    g_assert_nonnull (sa);
    g_assert_nonnull (sc);
    for (size_t i = 0; i < ts_safetensors_n_tensors (sa); i++) {
      const ts_st_tensor *x = ts_safetensors_tensor (sa, i);
      const ts_st_tensor *y = ts_safetensors_find (sc, x->name);
      g_assert_nonnull (y);
      g_assert_cmpuint (x->size_bytes, ==, y->size_bytes);
      if (x->n_elements >= 8 && memcmp (x->data, y->data, x->size_bytes) == 0)
        g_error ("%s: tensor '%s' is the same for seeds 5 and 6", pc, x->name);
    }
    ts_safetensors_free (sa);
    ts_safetensors_free (sc);
    g_free (pa);
    g_free (pb);
    g_free (pc);
  }
  remove_tree (a);
  remove_tree (b);
  remove_tree (c);
  g_free (a);
  g_free (b);
  g_free (c);
}

/* Tensors of one checkpoint differ from each other (the stream includes the tensor index),
 * and so do components (it includes the component). */
static void
test_streams_distinct (void)
{
  float a[64], b[64], c[64];

  ts_random_model_fill_normal (1, TS_COMPONENT_TRANSFORMER, 0, 0, 64, 0, 1, a);
  ts_random_model_fill_normal (1, TS_COMPONENT_TRANSFORMER, 1, 0, 64, 0, 1, b);
  ts_random_model_fill_normal (1, TS_COMPONENT_VQVAE, 0, 0, 64, 0, 1, c);
  g_assert_true (memcmp (a, b, sizeof a) != 0);
  g_assert_true (memcmp (a, c, sizeof a) != 0);
  /* The high word of the seed counts as well. */
  ts_random_model_fill_normal (1ull | (1ull << 32), TS_COMPONENT_TRANSFORMER, 0, 0, 64, 0, 1, b);
  g_assert_true (memcmp (a, b, sizeof a) != 0);
}

/* Values depend on the element index only, not on how a range is split. */
static void
test_chunking (void)
{
  enum { N = 1003 };
  static float whole[N], parts[N];
  const size_t cuts[] = { 0, 1, 3, 4, 5, 130, 131, 512, 1000, N };
  const uint64_t base = (1ull << 34) + 2; /* block counter above 32 bits, odd lane start */

  ts_random_model_fill_normal (99, TS_COMPONENT_TEXT_ENCODER, 7, base, N, 0.5f, 2.0f, whole);
  for (size_t i = 0; i + 1 < G_N_ELEMENTS (cuts); i++)
    ts_random_model_fill_normal (99, TS_COMPONENT_TEXT_ENCODER, 7, base + cuts[i],
                                 cuts[i + 1] - cuts[i], 0.5f, 2.0f, parts + cuts[i]);
  g_assert_true (memcmp (whole, parts, sizeof whole) == 0);
  for (size_t i = 0; i < N; i++)
    g_assert_true (isfinite (whole[i]));
}

/* The golden set's real-configs naming, rebuilt from the tiny configs in a temporary
 * folder (the real configs would write gigabytes): the output must equal the one made from
 * the diffusers layout, and the configs must be copied from the flat names. */
static void
test_flat_configs (void)
{
  static const char *const map[][2] = {
    { "model_index.json", "model_index.json" },
    { "transformer/config.json", "transformer_config.json" },
    { "vqvae/config.json", "vqvae_config.json" },
    { "text_encoder/config.json", "text_encoder_config.probable.json" },
    { "scheduler/scheduler_config.json", "scheduler_config.reconstructed.json" },
    { "tokenizer/tokenizer_config.json", "tokenizer_config.reconstructed.json" },
    { "tokenizer/special_tokens_map.json", "tokenizer_special_tokens_map.json" },
  };
  char *flat = g_build_filename (tmp_dir, "flat-configs", NULL);
  char *tok = g_build_filename (tiny_dir, "tokenizer", NULL);
  char *decoy = g_build_filename (flat, "laion_CLIP-ViT-H-14_text_config.partial.json", NULL);
  char *from_flat, *from_layout;
  GError *error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (flat, 0700), ==, 0);
  for (size_t i = 0; i < G_N_ELEMENTS (map); i++) {
    char *src = g_build_filename (tiny_dir, map[i][0], NULL);
    char *dst = g_build_filename (flat, map[i][1], NULL);
    GBytes *bytes = read_bytes (src);
    gsize len;
    const char *data = g_bytes_get_data (bytes, &len);

    g_file_set_contents (dst, data, (gssize) len, &error);
    g_assert_no_error (error);
    g_bytes_unref (bytes);
    g_free (src);
    g_free (dst);
  }
  /* Not a text_encoder_config*.json: must be ignored. */
  g_file_set_contents (decoy, "{\"text_config\": {}}", -1, &error);
  g_assert_no_error (error);

  from_flat = make_model ("from-flat", flat, tok, TS_DTYPE_F16, 3);
  from_layout = make_model ("from-layout", tiny_dir, NULL, TS_DTYPE_F16, 3);
  for (size_t i = 0; i < G_N_ELEMENTS (copied_files); i++) {
    char *a = g_build_filename (from_flat, copied_files[i], NULL);
    char *b = g_build_filename (from_layout, copied_files[i], NULL);
    g_assert_true (files_equal (a, b));
    g_free (a);
    g_free (b);
  }
  for (size_t k = 0; k < G_N_ELEMENTS (checkpoints); k++) {
    char *a = g_build_filename (from_flat, checkpoints[k].folder, checkpoints[k].file, NULL);
    char *b = g_build_filename (from_layout, checkpoints[k].folder, checkpoints[k].file, NULL);
    g_assert_true (files_equal (a, b));
    g_free (a);
    g_free (b);
  }
  remove_tree (from_flat);
  remove_tree (from_layout);
  remove_tree (flat);
  g_free (from_flat);
  g_free (from_layout);
  g_free (decoy);
  g_free (tok);
  g_free (flat);
}

typedef struct {
  int n_calls;
  double last;
  gboolean monotonic;
  char what[256];
} progress_log;

static void
on_progress (void *user_data, double fraction, const char *what)
{
  progress_log *log = user_data;

  if (fraction < log->last || fraction > 1)
    log->monotonic = FALSE;
  log->last = fraction;
  log->n_calls++;
  g_strlcpy (log->what, what, sizeof log->what);
}

/* Progress rises from 0 to exactly 1 and names the file and the megabytes written. */
static void
test_progress (void)
{
  char *out = g_build_filename (tmp_dir, "progress", NULL);
  progress_log log = { .monotonic = TRUE };
  ts_error err;

  g_assert_cmpint (ts_make_random_model (tiny_dir, NULL, out, TS_DTYPE_F16, 1, on_progress, &log,
                                         &err),
                   ==, TS_OK);
  g_assert_true (log.monotonic);
  g_assert_cmpint (log.n_calls, >=, 10);
  g_assert_cmpfloat (log.last, ==, 1.0);
  g_assert_true (g_str_has_prefix (log.what, "text_encoder/model.safetensors ("));
  g_assert_nonnull (strstr (log.what, " MB)"));
  remove_tree (out);
  g_free (out);
}

static void
expect_failure (const char *configs, const char *tokenizer, ts_dtype dtype, ts_status code,
                const char *needle)
{
  char *out = g_build_filename (tmp_dir, "failed", NULL);
  char *index = g_build_filename (out, "model_index.json", NULL);
  ts_error err;
  ts_status st = ts_make_random_model (configs, tokenizer, out, dtype, 1, NULL, NULL, &err);

  if (st != code || err.code != code || !strstr (err.message, needle))
    g_error ("expected %s naming '%s', got %s: %s", ts_status_name (code), needle,
             ts_status_name (st), st ? err.message : "");
  /* A failed run never leaves a loadable folder. */
  g_assert_false (g_file_test (index, G_FILE_TEST_EXISTS));
  remove_tree (out);
  g_free (index);
  g_free (out);
}

static void
test_errors (void)
{
  char *missing = g_build_filename (tmp_dir, "no-such-folder", NULL);
  char *partial = g_build_filename (tmp_dir, "partial-configs", NULL);
  char *src = g_build_filename (tiny_dir, "model_index.json", NULL);
  char *dst = g_build_filename (partial, "model_index.json", NULL);
  GBytes *bytes = read_bytes (src);
  GError *error = NULL;
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);

  expect_failure (tiny_dir, NULL, TS_DTYPE_I32, TS_ERR_INVALID_ARG, "I32");
  expect_failure (tiny_dir, NULL, TS_DTYPE_F64, TS_ERR_INVALID_ARG, "F32, F16 or BF16");
  expect_failure (missing, NULL, TS_DTYPE_F16, TS_ERR_NOT_FOUND, "no-such-folder");
  /* A tokenizer folder without vocab.json. */
  expect_failure (tiny_dir, tmp_dir, TS_DTYPE_F16, TS_ERR_NOT_FOUND, "vocab.json");
  /* Only model_index.json: the first missing config is named. */
  g_assert_cmpint (g_mkdir_with_parents (partial, 0700), ==, 0);
  g_file_set_contents (dst, data, (gssize) len, &error);
  g_assert_no_error (error);
  expect_failure (partial, NULL, TS_DTYPE_F16, TS_ERR_NOT_FOUND, "transformer/config.json");
  remove_tree (partial);
  g_bytes_unref (bytes);
  g_free (src);
  g_free (dst);
  g_free (partial);
  g_free (missing);
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  golden_dir = g_getenv ("TESSERA_GOLDEN_DIR");
  if (!golden_dir || !g_file_test (golden_dir, G_FILE_TEST_IS_DIR)) {
    g_printerr ("TESSERA_GOLDEN_DIR is not set or not a folder: skipping\n");
    return 77;
  }
  tiny_dir = g_build_filename (golden_dir, "models", "tiny-meissonic", NULL);
  tmp_dir = g_dir_make_tmp ("tessera-random-model-XXXXXX", NULL);
  g_assert_nonnull (tmp_dir);

  g_test_add_func ("/random-model/tensor-sets-and-configs", test_tensor_sets_and_configs);
  g_test_add_func ("/random-model/values-follow-rule", test_values_follow_rule);
  g_test_add_func ("/random-model/seeds", test_seeds);
  g_test_add_func ("/random-model/streams-distinct", test_streams_distinct);
  g_test_add_func ("/random-model/chunking", test_chunking);
  g_test_add_func ("/random-model/flat-configs", test_flat_configs);
  g_test_add_func ("/random-model/progress", test_progress);
  g_test_add_func ("/random-model/errors", test_errors);
  rc = g_test_run ();
  remove_tree (tmp_dir);
  g_free (tmp_dir);
  g_free (tiny_dir);
  return rc;
}
