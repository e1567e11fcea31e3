/* SPDX-License-Identifier: MIT
 *
 * test-config — the config parsers (model/ts-config and the stages' ts-*-config) against
 * the golden set: the tiny configs and the real Meissonic configs parse to the expected
 * values, the expected tensor tables equal the tensor sets of the golden safetensors
 * files exactly (names and shapes, read here straight from the files' JSON headers), the
 * real configs give the real parameter counts, and every kind of broken config (bad JSON,
 * wrong types, missing keys without a default, invalid or unsupported values) is an error
 * that names the key and the file.
 */
#include "model/ts-config.h"
#include "stages/ts-sampler-config.h"
#include "stages/ts-text-encoder-config.h"
#include "stages/ts-transformer-config.h"
#include "stages/ts-vq-config.h"

#include <cjson/cJSON.h>
#include <glib.h>
#include <string.h>

static const char *golden_dir;

static char *
golden_path (const char *rel)
{
  return g_build_filename (golden_dir, rel, NULL);
}

static char *
read_golden (const char *rel, size_t *len)
{
  g_autofree char *path = golden_path (rel);
  char *text = NULL;
  gsize n = 0;

  g_assert_true (g_file_get_contents (path, &text, &n, NULL));
  *len = n;
  return text;
}

/* The golden config `rel` with `key` replaced by `value` (NULL: removed). */
static char *
mutate (const char *rel, const char *key, cJSON *value)
{
  size_t len;
  g_autofree char *text = read_golden (rel, &len);
  cJSON *root = cJSON_ParseWithLength (text, len);
  char *out;

  g_assert_nonnull (root);
  cJSON_DeleteItemFromObjectCaseSensitive (root, key);
  if (value)
    cJSON_AddItemToObject (root, key, value);
  out = cJSON_PrintUnformatted (root);
  cJSON_Delete (root);
  return out;
}

static void
assert_error (ts_status st, const ts_error *err, ts_status code, const char *needle1,
              const char *needle2)
{
  g_test_message ("%s: %s", ts_status_name (st), err->message);
  g_assert_cmpstr (ts_status_name (st), ==, ts_status_name (code));
  g_assert_cmpint (err->code, ==, code);
  if (needle1)
    g_assert_nonnull (strstr (err->message, needle1));
  if (needle2)
    g_assert_nonnull (strstr (err->message, needle2));
}

/* ---- golden tiny configs ---- */

static void
test_tiny_transformer (void)
{
  g_autofree char *path = golden_path ("models/tiny-meissonic/transformer/config.json");
  g_autofree char *nd_path = golden_path ("models/tiny-nodownsample/transformer/config.json");
  ts_transformer_config c, nd;
  ts_error err;

  g_assert_cmpint (ts_transformer_config_from_file (path, &c, &err), ==, TS_OK);
  g_assert_cmpstr (c.class_name, ==, "Transformer2DModel");
  g_assert_cmpint (c.attention_head_dim, ==, 32);
  g_assert_cmpint (c.num_attention_heads, ==, 2);
  g_assert_cmpint (c.inner_dim, ==, 64);
  g_assert_cmpint (c.num_layers, ==, 2);
  g_assert_cmpint (c.num_single_layers, ==, 2);
  g_assert_cmpint (c.joint_attention_dim, ==, 32);
  g_assert_cmpint (c.pooled_projection_dim, ==, 64);
  g_assert_cmpint (c.codebook_size, ==, 96);
  g_assert_cmpint (c.vocab_size, ==, 128);
  g_assert_cmpint (c.axes_dims_rope[0], ==, 4);
  g_assert_cmpint (c.axes_dims_rope[1], ==, 14);
  g_assert_cmpint (c.axes_dims_rope[2], ==, 14);
  g_assert_true (c.downsample && c.upsample);
  g_assert_cmpint (c.in_channels, ==, 64);
  g_assert_cmpint (c.patch_size, ==, 1);

  g_assert_cmpint (ts_transformer_config_from_file (nd_path, &nd, &err), ==, TS_OK);
  g_assert_false (nd.downsample || nd.upsample);
}

static void
test_tiny_vq (void)
{
  g_autofree char *path = golden_path ("models/tiny-meissonic/vqvae/config.json");
  static const int channels[5] = { 8, 16, 16, 24, 32 };
  ts_vq_config c;
  ts_error err;

  g_assert_cmpint (ts_vq_config_from_file (path, &c, &err), ==, TS_OK);
  g_assert_cmpstr (c.class_name, ==, "VQModel");
  g_assert_cmpint (c.n_blocks, ==, 5);
  for (int i = 0; i < 5; i++)
    g_assert_cmpint (c.block_out_channels[i], ==, channels[i]);
  g_assert_cmpint (c.in_channels, ==, 3);
  g_assert_cmpint (c.out_channels, ==, 3);
  g_assert_cmpint (c.latent_channels, ==, 16);
  g_assert_cmpint (c.vq_embed_dim, ==, 16); /* null → latent_channels */
  g_assert_cmpint (c.layers_per_block, ==, 2);
  g_assert_cmpint (c.norm_num_groups, ==, 4);
  g_assert_cmpint (c.num_vq_embeddings, ==, 96);
  g_assert_cmpint (c.sample_size, ==, 32);
  g_assert_cmpint (c.vae_scale_factor, ==, 16);
  g_assert_false (c.mid_block_add_attention);
  g_assert_true (c.lookup_from_codebook);
  g_assert_true (c.force_upcast);
  g_assert_cmpfloat_with_epsilon (c.scaling_factor, 0.18215, 1e-12);
}

static void
test_tiny_clip (void)
{
  g_autofree char *path = golden_path ("models/tiny-meissonic/text_encoder/config.json");
  ts_clip_text_config c;
  ts_error err;

  g_assert_cmpint (ts_clip_text_config_from_file (path, &c, &err), ==, TS_OK);
  g_assert_cmpstr (c.class_name, ==, "CLIPTextModelWithProjection");
  g_assert_cmpint (c.vocab_size, ==, 49408);
  g_assert_cmpint (c.hidden_size, ==, 32);
  g_assert_cmpint (c.intermediate_size, ==, 80);
  g_assert_cmpint (c.num_hidden_layers, ==, 2);
  g_assert_cmpint (c.num_attention_heads, ==, 2);
  g_assert_cmpint (c.max_position_embeddings, ==, 77);
  g_assert_cmpint (c.projection_dim, ==, 64);
  g_assert_cmpint (c.hidden_act, ==, TS_CLIP_ACT_GELU);
  g_assert_cmpfloat_with_epsilon (c.layer_norm_eps, 1e-5, 1e-15);
  g_assert_cmpint (c.eos_token_id, ==, 2);
  g_assert_cmpint (c.bos_token_id, ==, 0);
  g_assert_cmpint (c.pad_token_id, ==, 1);
}

static void
test_tiny_scheduler_and_index (void)
{
  g_autofree char *sched = golden_path ("models/tiny-meissonic/scheduler/scheduler_config.json");
  g_autofree char *index = golden_path ("models/tiny-meissonic/model_index.json");
  ts_scheduler_config s;
  ts_model_index mi;
  ts_error err;

  g_assert_cmpint (ts_scheduler_config_from_file (sched, &s, &err), ==, TS_OK);
  g_assert_cmpint (s.mask_token_id, ==, 127);
  g_assert_cmpint (s.masking_schedule, ==, TS_MASKING_COSINE);
  g_assert_cmpstr (s.class_name, ==, "Scheduler");

  g_assert_cmpint (ts_model_index_from_file (index, &mi, &err), ==, TS_OK);
  g_assert_cmpstr (mi.class_name, ==, "Pipeline");
  g_assert_true (mi.guidance_scale == 0.0); /* no Tessera hint: the official default */
  g_assert_cmpstr (mi.components[TS_COMPONENT_TRANSFORMER].library, ==, "transformer");
  g_assert_cmpstr (mi.components[TS_COMPONENT_TRANSFORMER].class_name, ==,
                   "Transformer2DModel");
  g_assert_cmpstr (mi.components[TS_COMPONENT_VQVAE].library, ==, "diffusers");
  g_assert_cmpstr (mi.components[TS_COMPONENT_VQVAE].class_name, ==, "VQModel");
  g_assert_cmpstr (mi.components[TS_COMPONENT_TEXT_ENCODER].class_name, ==,
                   "CLIPTextModelWithProjection");
  g_assert_cmpstr (mi.components[TS_COMPONENT_TOKENIZER].class_name, ==, "CLIPTokenizer");
  g_assert_cmpstr (mi.components[TS_COMPONENT_SCHEDULER].class_name, ==, "Scheduler");
}

/* ---- expected tensors == golden files ---- */

/* The JSON header of a safetensors file (8-byte LE length + JSON), parsed by cJSON here so
 * this test does not depend on the reader under test elsewhere. */
static cJSON *
read_st_header (const char *rel)
{
  size_t len;
  g_autofree char *data = read_golden (rel, &len);
  uint64_t n = 0;

  g_assert_cmpuint (len, >=, 8);
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | (uint8_t) data[i];
  g_assert_cmpuint (n, <=, len - 8);
  return cJSON_ParseWithLength (data + 8, (size_t) n);
}

/* Asserts that `list` and the file's tensors are the same set of (name, shape); returns
 * the number of elements in the file. */
static uint64_t
assert_same_tensors (const ts_tensor_list *list, const char *rel, size_t expected_n)
{
  cJSON *header = read_st_header (rel), *item;
  size_t n_file = 0;
  uint64_t n_elements = 0;

  g_assert_nonnull (header);
  cJSON_ArrayForEach (item, header)
  {
    const ts_tensor_spec *spec;
    const cJSON *shape, *dim;
    int d = 0;
    uint64_t numel = 1;

    if (strcmp (item->string, "__metadata__") == 0)
      continue;
    n_file++;
    spec = ts_tensor_list_find (list, item->string);
    if (!spec)
      g_error ("%s: tensor '%s' is not in the expected table", rel, item->string);
    shape = cJSON_GetObjectItemCaseSensitive (item, "shape");
    g_assert_cmpint (cJSON_GetArraySize (shape), ==, spec->n_dims);
    cJSON_ArrayForEach (dim, shape)
    {
      if ((int64_t) dim->valuedouble != spec->shape[d])
        g_error ("%s: tensor '%s' dim %d: file %g, expected %" G_GINT64_FORMAT, rel,
                 item->string, d, dim->valuedouble, spec->shape[d]);
      numel *= (uint64_t) dim->valuedouble;
      d++;
    }
    n_elements += numel;
  }
  cJSON_Delete (header);
  g_assert_cmpuint (n_file, ==, expected_n);
  /* Same count and every file name found: the sets are equal (names are unique in both). */
  g_assert_cmpuint (list->n, ==, n_file);
  return n_elements;
}

static void
test_transformer_tensors (void)
{
  static const char *const dirs[] = { "models/tiny-meissonic/transformer",
                                      "models/tiny-nodownsample/transformer" };
  static const size_t counts[] = { 119, 115 };

  for (int k = 0; k < 2; k++) {
    g_autofree char *cfg_rel = g_build_filename (dirs[k], "config.json", NULL);
    g_autofree char *cfg_path = golden_path (cfg_rel);
    g_autofree char *st_rel = g_build_filename (dirs[k], "diffusion_pytorch_model.safetensors",
                                                NULL);
    ts_transformer_config c;
    ts_tensor_list list;
    ts_error err;
    uint64_t n_file;

    ts_tensor_list_init (&list);
    g_assert_cmpint (ts_transformer_config_from_file (cfg_path, &c, &err), ==, TS_OK);
    g_assert_cmpint (ts_transformer_config_tensors (&c, &list, &err), ==, TS_OK);
    n_file = assert_same_tensors (&list, st_rel, counts[k]);
    g_assert_cmpuint (ts_tensor_list_n_params (&list), ==, n_file);
    g_assert_cmpuint (ts_transformer_config_n_params (&c), ==, n_file);
    if (k == 0)
      assert_same_tensors (&list,
                           "models/tiny-meissonic/transformer/"
                           "diffusion_pytorch_model.fp16.safetensors",
                           119);
    ts_tensor_list_clear (&list);
  }
}

static void
test_vq_tensors (void)
{
  g_autofree char *cfg_path = golden_path ("models/tiny-meissonic/vqvae/config.json");
  ts_vq_config c;
  ts_tensor_list list;
  ts_error err;
  uint64_t n_file;

  ts_tensor_list_init (&list);
  g_assert_cmpint (ts_vq_config_from_file (cfg_path, &c, &err), ==, TS_OK);
  g_assert_cmpint (ts_vq_config_tensors (&c, &list, &err), ==, TS_OK);
  n_file = assert_same_tensors (&list,
                                "models/tiny-meissonic/vqvae/diffusion_pytorch_model.safetensors",
                                277);
  assert_same_tensors (&list,
                       "models/tiny-meissonic/vqvae/diffusion_pytorch_model.fp16.safetensors",
                       277);
  g_assert_cmpuint (ts_vq_config_n_params (&c), ==, n_file);
  ts_tensor_list_clear (&list);
}

static void
test_clip_tensors (void)
{
  g_autofree char *cfg_path = golden_path ("models/tiny-meissonic/text_encoder/config.json");
  ts_clip_text_config c;
  ts_tensor_list list;
  ts_error err;
  uint64_t n_file;

  ts_tensor_list_init (&list);
  g_assert_cmpint (ts_clip_text_config_from_file (cfg_path, &c, &err), ==, TS_OK);
  g_assert_cmpint (ts_clip_text_config_tensors (&c, &list, &err), ==, TS_OK);
  n_file = assert_same_tensors (&list, "models/tiny-meissonic/text_encoder/model.safetensors",
                                37);
  g_assert_cmpuint (ts_clip_text_config_n_params (&c), ==, n_file);
  ts_tensor_list_clear (&list);
}

static void
test_shape_format (void)
{
  char buf[64];
  const int64_t shape[4] = { 64, 32, 1, 1 };

  g_assert_cmpstr (ts_tensor_shape_format (shape, 4, buf, sizeof buf), ==, "[64,32,1,1]");
  g_assert_cmpstr (ts_tensor_shape_format (shape, 0, buf, sizeof buf), ==, "[]");
  g_assert_cmpstr (ts_tensor_shape_format (shape, 4, buf, 5), ==, "[64,");
}

/* ---- the real Meissonic configs ---- */

/* Real checkpoint sizes from the hub listing (real-configs/PROVENANCE.md), 3 significant
 * digits: F32 bytes = 4 x parameters must fall within their rounding. */
static void
assert_f32_size_near (uint64_t n_params, double hub_bytes)
{
  double bytes = 4.0 * (double) n_params;
  g_assert_cmpfloat (bytes, >=, hub_bytes * 0.995);
  g_assert_cmpfloat (bytes, <=, hub_bytes * 1.005);
}

static void
test_real_configs (void)
{
  g_autofree char *tr = golden_path ("real-configs/transformer_config.json");
  g_autofree char *vq = golden_path ("real-configs/vqvae_config.json");
  g_autofree char *te = golden_path ("real-configs/text_encoder_config.probable.json");
  g_autofree char *laion = golden_path (
    "real-configs/laion_CLIP-ViT-H-14-laion2B-s32B-b79K_text_config.partial.json");
  g_autofree char *sched = golden_path ("real-configs/scheduler_config.reconstructed.json");
  g_autofree char *index = golden_path ("real-configs/model_index.json");
  ts_transformer_config t;
  ts_vq_config v;
  ts_clip_text_config c, cl;
  ts_scheduler_config s;
  ts_model_index mi;
  ts_error err;
  uint64_t n;

  g_assert_cmpint (ts_transformer_config_from_file (tr, &t, &err), ==, TS_OK);
  g_assert_cmpint (t.inner_dim, ==, 1024);
  g_assert_cmpint (t.num_layers, ==, 14);
  g_assert_cmpint (t.num_single_layers, ==, 28);
  g_assert_cmpint (t.codebook_size, ==, 8192);
  g_assert_cmpint (t.vocab_size, ==, 8256);
  n = ts_transformer_config_n_params (&t);
  g_test_message ("real transformer: %" G_GUINT64_FORMAT " parameters", n);
  g_assert_cmpuint (n, ==, 1006946304);
  g_assert_cmpuint (n, >, 950000000);
  g_assert_cmpuint (n, <, 1100000000);
  assert_f32_size_near (n, 4.03e9);

  g_assert_cmpint (ts_vq_config_from_file (vq, &v, &err), ==, TS_OK);
  g_assert_cmpint (v.num_vq_embeddings, ==, 8192);
  g_assert_cmpint (v.vq_embed_dim, ==, 64);
  g_assert_cmpint (v.vae_scale_factor, ==, 16);
  n = ts_vq_config_n_params (&v);
  g_test_message ("real VQ-VAE: %" G_GUINT64_FORMAT " parameters", n);
  g_assert_cmpuint (n, ==, 146244675);
  assert_f32_size_near (n, 585e6);

  g_assert_cmpint (ts_clip_text_config_from_file (te, &c, &err), ==, TS_OK);
  g_assert_cmpint (c.hidden_size, ==, 1024);
  g_assert_cmpint (c.num_hidden_layers, ==, 24);
  g_assert_cmpint (c.hidden_act, ==, TS_CLIP_ACT_GELU);
  n = ts_clip_text_config_n_params (&c);
  g_test_message ("real CLIP-ViT-H text encoder: %" G_GUINT64_FORMAT " parameters", n);
  g_assert_cmpuint (n, ==, 354032640);
  g_assert_cmpuint (n, >, 340000000);
  g_assert_cmpuint (n, <, 370000000);
  assert_f32_size_near (n, 1.42e9);

  /* The laion CLIPConfig (text tower under "text_config", vocab_size absent → 49408). */
  g_assert_cmpint (ts_clip_text_config_from_file (laion, &cl, &err), ==, TS_OK);
  g_assert_cmpint (cl.vocab_size, ==, 49408);
  g_assert_cmpint (cl.hidden_act, ==, TS_CLIP_ACT_GELU);
  g_assert_cmpuint (ts_clip_text_config_n_params (&cl), ==, 354032640);

  g_assert_cmpint (ts_scheduler_config_from_file (sched, &s, &err), ==, TS_OK);
  g_assert_cmpint (s.mask_token_id, ==, 8255);
  g_assert_cmpint (s.masking_schedule, ==, TS_MASKING_COSINE);

  g_assert_cmpint (ts_model_index_from_file (index, &mi, &err), ==, TS_OK);
  g_assert_cmpstr (mi.components[TS_COMPONENT_VQVAE].class_name, ==, "VQModel");
}

/* ---- errors ---- */

static void
test_bad_json (void)
{
  static const char broken[] = "{\n  \"num_layers\": 2,\n  \"vocab_size\": }\n";
  static const char trailing[] = "{\"mask_token_id\": 1} x";
  static const char not_object[] = "[1, 2]";
  ts_transformer_config t;
  ts_scheduler_config s;
  ts_vq_config v;
  ts_error err;
  ts_status st;

  st = ts_transformer_config_from_json_text (broken, strlen (broken), "bad.json", &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "bad.json: invalid JSON at line 3", NULL);
  st = ts_scheduler_config_from_json_text (trailing, strlen (trailing), "trail.json", &s, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "trail.json: invalid JSON at line 1, column 22", NULL);
  st = ts_vq_config_from_json_text (not_object, strlen (not_object), "arr.json", &v, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "arr.json", "object");
  st = ts_vq_config_from_json_text ("", 0, "empty.json", &v, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "empty.json: invalid JSON", NULL);
  /* Not NUL-terminated: only `len` bytes count. */
  st = ts_scheduler_config_from_json_text ("{\"mask_token_id\": 5}garbage", 20, "n.json", &s,
                                           &err);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_cmpint (s.mask_token_id, ==, 5);
}

static void
test_missing_file (void)
{
  ts_transformer_config t;
  ts_error err;
  ts_status st = ts_transformer_config_from_file ("/nonexistent/transformer/config.json", &t,
                                                  &err);
  assert_error (st, &err, TS_ERR_NOT_FOUND, "/nonexistent/transformer/config.json", NULL);
}

static const char *const TR = "models/tiny-meissonic/transformer/config.json";
static const char *const VQ = "models/tiny-meissonic/vqvae/config.json";
static const char *const TE = "models/tiny-meissonic/text_encoder/config.json";
static const char *const SC = "models/tiny-meissonic/scheduler/scheduler_config.json";
static const char *const MI = "models/tiny-meissonic/model_index.json";

static ts_status
parse_transformer (const char *key, cJSON *value, ts_transformer_config *out, ts_error *err)
{
  g_autofree char *text = mutate (TR, key, value);
  return ts_transformer_config_from_json_text (text, strlen (text), "transformer/config.json",
                                               out, err);
}

static ts_status
parse_vq (const char *key, cJSON *value, ts_vq_config *out, ts_error *err)
{
  g_autofree char *text = mutate (VQ, key, value);
  return ts_vq_config_from_json_text (text, strlen (text), "vqvae/config.json", out, err);
}

static ts_status
parse_clip (const char *key, cJSON *value, ts_clip_text_config *out, ts_error *err)
{
  g_autofree char *text = mutate (TE, key, value);
  return ts_clip_text_config_from_json_text (text, strlen (text), "text_encoder/config.json",
                                             out, err);
}

static ts_status
parse_scheduler (const char *key, cJSON *value, ts_scheduler_config *out, ts_error *err)
{
  g_autofree char *text = mutate (SC, key, value);
  return ts_scheduler_config_from_json_text (text, strlen (text), "scheduler_config.json", out,
                                             err);
}

static ts_status
parse_index (const char *key, cJSON *value, ts_model_index *out, ts_error *err)
{
  g_autofree char *text = mutate (MI, key, value);
  return ts_model_index_from_json_text (text, strlen (text), "model_index.json", out, err);
}

static cJSON *
int_array (int a, int b, int c)
{
  const int v[3] = { a, b, c };
  return cJSON_CreateIntArray (v, 3);
}

static void
test_wrong_types (void)
{
  ts_transformer_config t;
  ts_vq_config v;
  ts_clip_text_config c;
  ts_scheduler_config s;
  ts_error err;
  ts_status st;

  st = parse_transformer ("num_layers", cJSON_CreateString ("2"), &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "transformer/config.json: key 'num_layers'",
                "expected an integer, got a string");
  st = parse_transformer ("attention_head_dim", cJSON_CreateNumber (32.5), &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'attention_head_dim'", "32.5");
  st = parse_transformer ("downsample", cJSON_CreateNumber (1), &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'downsample'", "true or false");
  st = parse_transformer ("axes_dims_rope", cJSON_CreateNumber (32), &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'axes_dims_rope'", "array");
  {
    cJSON *arr = int_array (4, 14, 14);
    cJSON_ReplaceItemInArray (arr, 1, cJSON_CreateString ("14"));
    st = parse_transformer ("axes_dims_rope", arr, &t, &err);
    assert_error (st, &err, TS_ERR_FORMAT, "key 'axes_dims_rope[1]'", "got a string");
  }
  st = parse_transformer ("_class_name", cJSON_CreateNumber (3), &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key '_class_name'", "a string");

  st = parse_vq ("block_out_channels", cJSON_CreateString ("8,16"), &v, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "vqvae/config.json: key 'block_out_channels'", NULL);
  st = parse_vq ("scaling_factor", cJSON_CreateString ("0.18"), &v, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'scaling_factor'", "a number");
  st = parse_vq ("vq_embed_dim", cJSON_CreateTrue (), &v, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'vq_embed_dim'", "a boolean");
  st = parse_vq ("mid_block_add_attention", cJSON_CreateNull (), &v, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'mid_block_add_attention'", "got null");

  st = parse_clip ("hidden_size", cJSON_CreateObject (), &c, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "text_encoder/config.json: key 'hidden_size'",
                "an object");
  st = parse_clip ("hidden_act", cJSON_CreateNumber (1), &c, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'hidden_act'", "a string");
  st = parse_clip ("text_config", cJSON_CreateString ("x"), &c, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'text_config'", NULL);

  st = parse_scheduler ("mask_token_id", cJSON_CreateString ("127"), &s, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "scheduler_config.json: key 'mask_token_id'", NULL);
  st = parse_scheduler ("masking_schedule", cJSON_CreateFalse (), &s, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'masking_schedule'", NULL);
}

static void
test_missing_keys (void)
{
  ts_transformer_config t;
  ts_vq_config v;
  ts_clip_text_config c;
  ts_scheduler_config s;
  ts_error err;
  ts_status st;

  /* No default in the official class → error naming key and file. */
  st = parse_scheduler ("mask_token_id", NULL, &s, &err);
  assert_error (st, &err, TS_ERR_FORMAT,
                "scheduler_config.json: missing key 'mask_token_id'", "no default");

  /* Defaults where the class has them. */
  st = parse_scheduler ("masking_schedule", NULL, &s, &err);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_cmpint (s.masking_schedule, ==, TS_MASKING_COSINE);
  st = parse_transformer ("in_channels", NULL, &t, &err);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_cmpint (t.in_channels, ==, 64);
  st = parse_transformer ("downsample", NULL, &t, &err);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_false (t.downsample); /* the class default */
  st = parse_vq ("vq_embed_dim", NULL, &v, &err);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_cmpint (v.vq_embed_dim, ==, 16);
  st = parse_clip ("hidden_act", NULL, &c, &err);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_cmpint (c.hidden_act, ==, TS_CLIP_ACT_QUICK_GELU);
  st = parse_clip ("eos_token_id", NULL, &c, &err);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_cmpint (c.eos_token_id, ==, 49407);
  st = parse_clip ("pad_token_id", cJSON_CreateNull (), &c, &err);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_cmpint (c.pad_token_id, ==, -1);

  /* A default that then contradicts the rest is caught by validation, naming the key. */
  st = parse_transformer ("pooled_projection_dim", NULL, &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "pooled_projection_dim (768)", "(64)");
  /* VQModel's default mid_block_add_attention is true: unsupported. */
  st = parse_vq ("mid_block_add_attention", NULL, &v, &err);
  assert_error (st, &err, TS_ERR_UNSUPPORTED, "mid_block_add_attention", "default true");
  /* VQModel's default block types have one entry, not five. */
  st = parse_vq ("down_block_types", NULL, &v, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "down_block_types", "has 1 entry");
}

static void
test_invalid_values (void)
{
  ts_transformer_config t;
  ts_vq_config v;
  ts_clip_text_config c;
  ts_scheduler_config s;
  ts_error err;
  ts_status st;
  cJSON *types;

  st = parse_transformer ("attention_head_dim", cJSON_CreateNumber (0), &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'attention_head_dim' is 0", "between 1 and");
  st = parse_transformer ("num_layers", cJSON_CreateNumber (-2), &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'num_layers' is -2", NULL);
  st = parse_transformer ("vocab_size", cJSON_CreateNumber (1e12), &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'vocab_size'", NULL);
  st = parse_transformer ("axes_dims_rope", int_array (4, 14, 12), &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "sums to 30", "attention_head_dim is 32");
  st = parse_transformer ("axes_dims_rope", int_array (4, 13, 15), &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "axes_dims_rope[1] is 13", "even");
  {
    const int two[2] = { 16, 16 };
    st = parse_transformer ("axes_dims_rope", cJSON_CreateIntArray (two, 2), &t, &err);
    assert_error (st, &err, TS_ERR_FORMAT, "axes_dims_rope has 2 entries", NULL);
  }
  st = parse_transformer ("pooled_projection_dim", cJSON_CreateNumber (32), &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "pooled_projection_dim (32) must equal", NULL);
  st = parse_transformer ("vocab_size", cJSON_CreateNumber (96), &t, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "vocab_size (96) must be larger than codebook_size",
                NULL);
  st = parse_transformer ("guidance_embeds", cJSON_CreateTrue (), &t, &err);
  assert_error (st, &err, TS_ERR_UNSUPPORTED, "guidance_embeds", NULL);

  types = cJSON_CreateArray ();
  for (int i = 0; i < 5; i++)
    cJSON_AddItemToArray (types, cJSON_CreateString (i == 2 ? "AttnDownEncoderBlock2D"
                                                            : "DownEncoderBlock2D"));
  st = parse_vq ("down_block_types", types, &v, &err);
  assert_error (st, &err, TS_ERR_UNSUPPORTED, "down_block_types[2] is 'AttnDownEncoderBlock2D'",
                "vqvae/config.json");
  types = cJSON_CreateArray ();
  cJSON_AddItemToArray (types, cJSON_CreateString ("UpDecoderBlock2D"));
  st = parse_vq ("up_block_types", types, &v, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "up_block_types' has 1 entry", "has 5");
  st = parse_vq ("mid_block_add_attention", cJSON_CreateTrue (), &v, &err);
  assert_error (st, &err, TS_ERR_UNSUPPORTED, "mid_block_add_attention is true",
                "not supported");
  st = parse_vq ("norm_type", cJSON_CreateString ("spatial"), &v, &err);
  assert_error (st, &err, TS_ERR_UNSUPPORTED, "norm_type is 'spatial'", NULL);
  st = parse_vq ("act_fn", cJSON_CreateString ("relu"), &v, &err);
  assert_error (st, &err, TS_ERR_UNSUPPORTED, "act_fn is 'relu'", NULL);
  st = parse_vq ("norm_num_groups", cJSON_CreateNumber (3), &v, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "block_out_channels[0] = 8", "norm_num_groups (3)");
  {
    const int nine[9] = { 8, 8, 8, 8, 8, 8, 8, 8, 8 };
    st = parse_vq ("block_out_channels", cJSON_CreateIntArray (nine, 9), &v, &err);
    assert_error (st, &err, TS_ERR_UNSUPPORTED, "block_out_channels' has 9 entries", NULL);
  }
  st = parse_vq ("block_out_channels", cJSON_CreateArray (), &v, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "block_out_channels' is an empty array", NULL);
  st = parse_vq ("vq_embed_dim", cJSON_CreateNumber (0), &v, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'vq_embed_dim' is 0", NULL);
  st = parse_vq ("vq_embed_dim", cJSON_CreateNumber (12), &v, &err);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_cmpint (v.vq_embed_dim, ==, 12);
  {
    ts_tensor_list list;
    const ts_tensor_spec *spec;
    ts_tensor_list_init (&list);
    g_assert_cmpint (ts_vq_config_tensors (&v, &list, &err), ==, TS_OK);
    spec = ts_tensor_list_find (&list, "quantize.embedding.weight");
    g_assert_nonnull (spec);
    g_assert_cmpint (spec->shape[0], ==, 96);
    g_assert_cmpint (spec->shape[1], ==, 12);
    spec = ts_tensor_list_find (&list, "post_quant_conv.weight");
    g_assert_cmpint (spec->shape[1], ==, 12);
    ts_tensor_list_clear (&list);
  }

  st = parse_clip ("hidden_act", cJSON_CreateString ("relu"), &c, &err);
  assert_error (st, &err, TS_ERR_UNSUPPORTED, "hidden_act is 'relu'", NULL);
  st = parse_clip ("hidden_act", cJSON_CreateString ("gelu_new"), &c, &err);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_cmpint (c.hidden_act, ==, TS_CLIP_ACT_GELU_NEW);
  st = parse_clip ("model_type", cJSON_CreateString ("t5"), &c, &err);
  assert_error (st, &err, TS_ERR_UNSUPPORTED, "model_type is 't5'", NULL);
  st = parse_clip ("num_attention_heads", cJSON_CreateNumber (3), &c, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "hidden_size (32)", "num_attention_heads (3)");
  st = parse_clip ("layer_norm_eps", cJSON_CreateNumber (0), &c, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "layer_norm_eps", "positive");

  st = parse_scheduler ("masking_schedule", cJSON_CreateString ("arccos"), &s, &err);
  assert_error (st, &err, TS_ERR_UNSUPPORTED, "masking_schedule is 'arccos'", NULL);
  st = parse_scheduler ("masking_schedule", cJSON_CreateString ("linear"), &s, &err);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_cmpint (s.masking_schedule, ==, TS_MASKING_LINEAR);
  st = parse_scheduler ("mask_token_id", cJSON_CreateNumber (-1), &s, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'mask_token_id' is -1", NULL);
}

static void
test_model_index_errors (void)
{
  ts_model_index mi;
  ts_error err;
  ts_status st;
  cJSON *pair;

  st = parse_index ("vqvae", NULL, &mi, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "model_index.json: no 'vqvae' component", NULL);

  pair = cJSON_CreateArray ();
  cJSON_AddItemToArray (pair, cJSON_CreateString ("diffusers"));
  cJSON_AddItemToArray (pair, cJSON_CreateString ("AutoencoderKL"));
  st = parse_index ("vqvae", pair, &mi, &err);
  assert_error (st, &err, TS_ERR_UNSUPPORTED, "'vqvae' is [\"diffusers\", \"AutoencoderKL\"]",
                "VQModel");

  pair = cJSON_CreateArray ();
  cJSON_AddItemToArray (pair, cJSON_CreateNull ());
  cJSON_AddItemToArray (pair, cJSON_CreateNull ());
  st = parse_index ("text_encoder", pair, &mi, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "'text_encoder' is null", NULL);

  st = parse_index ("scheduler", cJSON_CreateString ("Scheduler"), &mi, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "key 'scheduler'", "[library, class]");

  /* Tessera's guidance hint: a number from 0 to 100. */
  st = parse_index ("_tessera_guidance_scale", cJSON_CreateNumber (2.5), &mi, &err);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_true (mi.guidance_scale == 2.5);
  st = parse_index ("_tessera_guidance_scale", cJSON_CreateNumber (-1), &mi, &err);
  assert_error (st, &err, TS_ERR_FORMAT, "'_tessera_guidance_scale' must be from 0 to 100", NULL);
  st = parse_index ("_tessera_guidance_scale", cJSON_CreateString ("high"), &mi, &err);
  g_assert_cmpint (st, ==, TS_ERR_FORMAT);

  pair = cJSON_CreateArray ();
  cJSON_AddItemToArray (pair, cJSON_CreateString ("transformers"));
  cJSON_AddItemToArray (pair, cJSON_CreateString ("CLIPTokenizerFast"));
  st = parse_index ("tokenizer", pair, &mi, &err);
  g_assert_cmpint (st, ==, TS_OK);
  g_assert_cmpstr (mi.components[TS_COMPONENT_TOKENIZER].class_name, ==, "CLIPTokenizerFast");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  golden_dir = g_getenv ("TESSERA_GOLDEN_DIR");
  if (!golden_dir || !g_file_test (golden_dir, G_FILE_TEST_IS_DIR)) {
    g_printerr ("TESSERA_GOLDEN_DIR is not set or not a folder: skipping\n");
    return 77;
  }

  g_test_add_func ("/config/tiny/transformer", test_tiny_transformer);
  g_test_add_func ("/config/tiny/vq", test_tiny_vq);
  g_test_add_func ("/config/tiny/clip", test_tiny_clip);
  g_test_add_func ("/config/tiny/scheduler-and-index", test_tiny_scheduler_and_index);
  g_test_add_func ("/config/tensors/transformer", test_transformer_tensors);
  g_test_add_func ("/config/tensors/vq", test_vq_tensors);
  g_test_add_func ("/config/tensors/clip", test_clip_tensors);
  g_test_add_func ("/config/tensors/shape-format", test_shape_format);
  g_test_add_func ("/config/real", test_real_configs);
  g_test_add_func ("/config/errors/bad-json", test_bad_json);
  g_test_add_func ("/config/errors/missing-file", test_missing_file);
  g_test_add_func ("/config/errors/wrong-types", test_wrong_types);
  g_test_add_func ("/config/errors/missing-keys", test_missing_keys);
  g_test_add_func ("/config/errors/invalid-values", test_invalid_values);
  g_test_add_func ("/config/errors/model-index", test_model_index_errors);
  return g_test_run ();
}
