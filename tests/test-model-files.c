/* SPDX-License-Identifier: MIT
 *
 * test-model-files — opening model folders: the golden tiny Meissonic folder loads with
 * and without the fp16 preference and reports the right counts, sizes and dtypes; the
 * real configs assembled into a folder inspect with TS_LOAD_CONFIGS_ONLY and give the real
 * parameter counts; and broken folders built in a temporary directory (golden files
 * symlinked, checkpoints rewritten by a small safetensors writer below) fail with one
 * clear message naming the component, file and tensors.
 */
#include "pipeline/ts-model-files.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

static const char *golden_dir;

/* Exact element counts of the golden tiny checkpoints. */
#define TINY_TRANSFORMER_PARAMS 608512
#define TINY_VQ_PARAMS 315563
#define TINY_CLIP_PARAMS 1604800

static char *
golden_path (const char *rel)
{
  return g_build_filename (golden_dir, rel, NULL);
}

static void
assert_error (const ts_error *err, ts_status code, const char *needle1, const char *needle2)
{
  g_test_message ("%s: %s", ts_status_name (err->code), err->message);
  g_assert_cmpstr (ts_status_name (err->code), ==, ts_status_name (code));
  if (needle1 && !strstr (err->message, needle1))
    g_error ("'%s' not in the message", needle1);
  if (needle2 && !strstr (err->message, needle2))
    g_error ("'%s' not in the message", needle2);
}

/* ---- temporary model folders ---- */

static void
rm_rf (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK)) {
    GDir *d = g_dir_open (path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d))) {
      g_autofree char *child = g_build_filename (path, name, NULL);
      rm_rf (child);
    }
    if (d)
      g_dir_close (d);
    g_rmdir (path);
  } else {
    g_unlink (path);
  }
}

/* A temporary folder mirroring the golden tiny model: real subfolders whose files are
 * symlinks to the golden ones, so a test can replace single files. */
static char *
make_tiny_copy (void)
{
  g_autofree char *src = golden_path ("models/tiny-meissonic");
  char *dst = g_dir_make_tmp ("tessera-model-XXXXXX", NULL);
  GDir *top = g_dir_open (src, 0, NULL);
  const char *name;

  g_assert_nonnull (dst);
  g_assert_nonnull (top);
  while ((name = g_dir_read_name (top))) {
    g_autofree char *s = g_build_filename (src, name, NULL);
    g_autofree char *d = g_build_filename (dst, name, NULL);

    if (g_file_test (s, G_FILE_TEST_IS_DIR)) {
      GDir *sub = g_dir_open (s, 0, NULL);
      const char *file;
      g_assert_cmpint (g_mkdir (d, 0755), ==, 0);
      while ((file = g_dir_read_name (sub))) {
        g_autofree char *sf = g_build_filename (s, file, NULL);
        g_autofree char *df = g_build_filename (d, file, NULL);
        g_assert_cmpint (symlink (sf, df), ==, 0);
      }
      g_dir_close (sub);
    } else {
      g_assert_cmpint (symlink (s, d), ==, 0);
    }
  }
  g_dir_close (top);
  return dst;
}

static void
remove_file (const char *dir, const char *rel)
{
  g_autofree char *path = g_build_filename (dir, rel, NULL);
  g_assert_cmpint (g_unlink (path), ==, 0);
}

static void
write_file (const char *dir, const char *rel, const char *contents)
{
  g_autofree char *path = g_build_filename (dir, rel, NULL);
  g_unlink (path);
  g_assert_true (g_file_set_contents (path, contents, -1, NULL));
}

static void
link_golden (const char *dir, const char *rel, const char *golden_rel)
{
  g_autofree char *dst = g_build_filename (dir, rel, NULL);
  g_autofree char *src = golden_path (golden_rel);
  g_unlink (dst);
  g_assert_cmpint (symlink (src, dst), ==, 0);
}

/* Changes applied while writing a checkpoint from an expected table. */
typedef struct {
  const char *skip_prefix;   /* tensors whose name starts with this are left out */
  const char *skip;          /* this tensor is left out */
  const char *reshape;       /* this tensor gets `shape` instead */
  int64_t shape[4];
  int n_dims;
  const char *retype;        /* this tensor is stored as I64 */
  const char *extra;         /* an additional F16 tensor [4] */
} st_edit;

static void
header_add (GString *h, const char *name, const char *dtype, const int64_t *shape, int n_dims,
            uint64_t *offset, size_t elem_size)
{
  uint64_t n = 1;

  g_string_append_printf (h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", h->len > 1 ? "," : "",
                          name, dtype);
  for (int d = 0; d < n_dims; d++) {
    g_string_append_printf (h, "%s%" G_GINT64_FORMAT, d ? "," : "", shape[d]);
    n *= (uint64_t) shape[d];
  }
  g_string_append_printf (h, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}",
                          *offset, *offset + n * elem_size);
  *offset += n * elem_size;
}

/* Writes a safetensors file (8-byte LE header length, space-padded JSON header, zeroed
 * data) holding expected tensors [from, to) as F16, edited by `edit`. */
static void
write_checkpoint_range (const char *path, const ts_tensor_list *expected, const st_edit *edit,
                        size_t from, size_t to)
{
  GString *h = g_string_new ("{");
  uint64_t data_size = 0, hlen;
  uint8_t len_bytes[8];
  FILE *f;

  for (size_t i = from; i < to; i++) {
    const ts_tensor_spec *spec = &expected->items[i];
    if (edit->skip_prefix && g_str_has_prefix (spec->name, edit->skip_prefix))
      continue;
    if (edit->skip && strcmp (spec->name, edit->skip) == 0)
      continue;
    if (edit->reshape && strcmp (spec->name, edit->reshape) == 0)
      header_add (h, spec->name, "F16", edit->shape, edit->n_dims, &data_size, 2);
    else if (edit->retype && strcmp (spec->name, edit->retype) == 0)
      header_add (h, spec->name, "I64", spec->shape, spec->n_dims, &data_size, 8);
    else
      header_add (h, spec->name, "F16", spec->shape, spec->n_dims, &data_size, 2);
  }
  if (edit->extra)
    header_add (h, edit->extra, "F16", (int64_t[]) { 4 }, 1, &data_size, 2);
  g_string_append (h, ",\"__metadata__\":{\"format\":\"pt\"}}");
  while (h->len % 8 != 0)
    g_string_append_c (h, ' ');

  hlen = h->len;
  for (int i = 0; i < 8; i++)
    len_bytes[i] = (uint8_t) (hlen >> (8 * i));
  f = fopen (path, "wb");
  g_assert_nonnull (f);
  g_assert_cmpuint (fwrite (len_bytes, 1, 8, f), ==, 8);
  g_assert_cmpuint (fwrite (h->str, 1, h->len, f), ==, h->len);
  {
    static const uint8_t zeros[4096];
    uint64_t left = data_size;
    while (left) {
      size_t n = left < sizeof zeros ? (size_t) left : sizeof zeros;
      g_assert_cmpuint (fwrite (zeros, 1, n, f), ==, n);
      left -= n;
    }
  }
  g_assert_cmpint (fclose (f), ==, 0);
  g_string_free (h, TRUE);
}

static void
write_checkpoint (const char *path, const ts_tensor_list *expected, const st_edit *edit)
{
  write_checkpoint_range (path, expected, edit, 0, expected->n);
}

/* Replaces the tiny transformer checkpoint in `dir` with an edited one (and removes the
 * fp16 variant so only the edited file can be picked). */
static void
rewrite_transformer (const char *dir, const st_edit *edit)
{
  g_autofree char *cfg = golden_path ("models/tiny-meissonic/transformer/config.json");
  g_autofree char *path = g_build_filename (dir, "transformer",
                                            "diffusion_pytorch_model.safetensors", NULL);
  ts_transformer_config c;
  ts_tensor_list list;
  ts_error err;

  ts_tensor_list_init (&list);
  g_assert_cmpint (ts_transformer_config_from_file (cfg, &c, &err), ==, TS_OK);
  g_assert_cmpint (ts_transformer_config_tensors (&c, &list, &err), ==, TS_OK);
  remove_file (dir, "transformer/diffusion_pytorch_model.safetensors");
  remove_file (dir, "transformer/diffusion_pytorch_model.fp16.safetensors");
  write_checkpoint (path, &list, edit);
  ts_tensor_list_clear (&list);
}

static ts_status
load_status (const char *dir, ts_load_flags flags, ts_error *err)
{
  ts_model_info *info = ts_model_info_load (dir, flags, err);
  ts_status st = info ? TS_OK : err->code;
  ts_model_info_free (info);
  return st;
}

/* ---- the golden folder ---- */

static void
test_golden_default (void)
{
  g_autofree char *dir = golden_path ("models/tiny-meissonic");
  const ts_component_info *ci;
  ts_model_info *info;
  ts_error err;

  info = ts_model_info_load (dir, TS_LOAD_DEFAULT, &err);
  if (!info)
    g_error ("%s", err.message);
  g_assert_cmpstr (ts_model_info_pipeline_class (info), ==, "Pipeline");
  g_assert_cmpstr (ts_model_info_dir (info), ==, dir);

  ci = ts_model_info_component (info, TS_COMPONENT_TRANSFORMER);
  g_assert_cmpstr (ci->name, ==, "transformer");
  g_assert_cmpstr (ci->class_name, ==, "Transformer2DModel");
  g_assert_true (ci->present);
  g_assert_cmpuint (ci->n_params, ==, TINY_TRANSFORMER_PARAMS);
  g_assert_cmpuint (ci->n_tensors, ==, 119);
  g_assert_cmpint (ci->n_files, ==, 1);
  g_assert_cmpuint (ci->size_bytes_on_disk, ==, 2446640);
  g_assert_cmpint (ci->dtype, ==, TS_DTYPE_F32);
  g_assert_cmpuint (ci->dtype_counts[TS_DTYPE_F32], ==, 119);
  g_assert_cmpuint (ci->dtype_counts[TS_DTYPE_F16], ==, 0);
  g_assert_nonnull (strstr (ci->summary, "2 dual-stream + 2 single-stream blocks"));

  ci = ts_model_info_component (info, TS_COMPONENT_VQVAE);
  g_assert_cmpstr (ci->class_name, ==, "VQModel");
  g_assert_cmpuint (ci->n_params, ==, TINY_VQ_PARAMS);
  g_assert_cmpuint (ci->n_tensors, ==, 277);
  g_assert_cmpuint (ci->size_bytes_on_disk, ==, 1291572);
  g_assert_cmpint (ci->dtype, ==, TS_DTYPE_F32);
  g_assert_nonnull (strstr (ci->summary, "[8,16,16,24,32]"));

  ci = ts_model_info_component (info, TS_COMPONENT_TEXT_ENCODER);
  g_assert_cmpstr (ci->class_name, ==, "CLIPTextModelWithProjection");
  g_assert_cmpuint (ci->n_params, ==, TINY_CLIP_PARAMS);
  g_assert_cmpuint (ci->n_tensors, ==, 37);
  g_assert_cmpuint (ci->size_bytes_on_disk, ==, 3213760);
  g_assert_cmpint (ci->dtype, ==, TS_DTYPE_F16); /* the golden text encoder is stored F16 */
  g_assert_cmpuint (ci->dtype_counts[TS_DTYPE_F16], ==, 37);

  ci = ts_model_info_component (info, TS_COMPONENT_TOKENIZER);
  g_assert_cmpstr (ci->class_name, ==, "CLIPTokenizer");
  g_assert_true (ci->present);
  g_assert_cmpint (ci->n_files, ==, 2);
  g_assert_cmpuint (ci->size_bytes_on_disk, ==, 1059962 + 524619);
  g_assert_cmpuint (ci->n_params, ==, 0);

  ci = ts_model_info_component (info, TS_COMPONENT_SCHEDULER);
  g_assert_cmpstr (ci->class_name, ==, "Scheduler");
  g_assert_nonnull (strstr (ci->summary, "cosine"));
  g_assert_nonnull (strstr (ci->summary, "127"));

  g_assert_null (ts_model_info_component (info, TS_COMPONENT_COUNT));
  ts_model_info_free (info);
}

static void
test_golden_fp16 (void)
{
  g_autofree char *dir = golden_path ("models/tiny-meissonic");
  const ts_component_info *ci;
  ts_model_info *info;
  ts_error err;

  info = ts_model_info_load (dir, TS_LOAD_PREFER_FP16, &err);
  if (!info)
    g_error ("%s", err.message);
  ci = ts_model_info_component (info, TS_COMPONENT_TRANSFORMER);
  g_assert_cmpuint (ci->n_params, ==, TINY_TRANSFORMER_PARAMS);
  g_assert_cmpint (ci->dtype, ==, TS_DTYPE_F16);
  g_assert_cmpuint (ci->dtype_counts[TS_DTYPE_F16], ==, 119);
  g_assert_cmpuint (ci->size_bytes_on_disk, ==, 1229488);
  ci = ts_model_info_component (info, TS_COMPONENT_VQVAE);
  g_assert_cmpint (ci->dtype, ==, TS_DTYPE_F16);
  g_assert_cmpuint (ci->size_bytes_on_disk, ==, 660342);
  /* No model.fp16.safetensors in the golden text_encoder: the plain file is used. */
  ci = ts_model_info_component (info, TS_COMPONENT_TEXT_ENCODER);
  g_assert_cmpuint (ci->size_bytes_on_disk, ==, 3213760);
  ts_model_info_free (info);
}

static void
test_golden_lookup (void)
{
  g_autofree char *dir = golden_path ("models/tiny-meissonic");
  const ts_st_tensor *t;
  ts_model_files *mf;
  ts_error err;

  mf = ts_model_files_open (dir, TS_LOAD_DEFAULT, &err);
  if (!mf)
    g_error ("%s", err.message);
  t = ts_model_files_find (mf, TS_COMPONENT_TRANSFORMER, "embed.embeddings.weight");
  g_assert_nonnull (t);
  g_assert_cmpint (t->n_dims, ==, 2);
  g_assert_cmpint (t->shape[0], ==, 128);
  g_assert_cmpint (t->shape[1], ==, 64);
  g_assert_cmpint (t->dtype, ==, TS_DTYPE_F32);
  g_assert_cmpuint (t->size_bytes, ==, 128 * 64 * 4);

  g_assert_cmpint (ts_model_files_get (mf, TS_COMPONENT_VQVAE, "quantize.embedding.weight", &t,
                                       &err),
                   ==, TS_OK);
  g_assert_cmpint (t->shape[0], ==, 96);
  g_assert_cmpint (t->shape[1], ==, 16);
  g_assert_nonnull (ts_model_files_find (mf, TS_COMPONENT_TEXT_ENCODER, "text_projection.weight"));

  g_assert_null (ts_model_files_find (mf, TS_COMPONENT_TRANSFORMER, "no.such.weight"));
  g_assert_cmpint (ts_model_files_get (mf, TS_COMPONENT_TRANSFORMER, "no.such.weight", &t, &err),
                   ==, TS_ERR_NOT_FOUND);
  assert_error (&err, TS_ERR_NOT_FOUND, "transformer: no tensor 'no.such.weight'", NULL);
  g_assert_null (t);
  g_assert_cmpint (ts_model_files_get (mf, TS_COMPONENT_SCHEDULER, "x", &t, &err), ==,
                   TS_ERR_INVALID_ARG);

  g_assert_cmpint (ts_model_files_transformer_config (mf)->inner_dim, ==, 64);
  g_assert_cmpint (ts_model_files_vq_config (mf)->vae_scale_factor, ==, 16);
  g_assert_cmpint (ts_model_files_clip_text_config (mf)->hidden_size, ==, 32);
  g_assert_cmpint (ts_model_files_scheduler_config (mf)->mask_token_id, ==, 127);
  g_assert_true (g_str_has_suffix (ts_model_files_tokenizer_vocab (mf), "tokenizer/vocab.json"));
  g_assert_true (g_file_test (ts_model_files_tokenizer_merges (mf), G_FILE_TEST_IS_REGULAR));
  g_assert_cmpuint (ts_model_files_expected (mf, TS_COMPONENT_TRANSFORMER)->n, ==, 119);
  g_assert_null (ts_model_files_expected (mf, TS_COMPONENT_TOKENIZER));
  g_assert_null (ts_model_files_checkpoint (mf, TS_COMPONENT_SCHEDULER));
  ts_model_files_free (mf);
}

static void
test_memory_estimate (void)
{
  g_autofree char *dir = golden_path ("models/tiny-meissonic");
  ts_model_info *info;
  ts_error err;
  uint32_t w = 0, h = 0;
  uint64_t total_params, m32, m16, m_default, m_small;

  info = ts_model_info_load (dir, TS_LOAD_DEFAULT, &err);
  g_assert_nonnull (info);
  ts_model_info_default_size (info, &w, &h);
  /* The tiny model downsamples its token grid, like the real one: 1024 x 1024. */
  g_assert_cmpuint (w, ==, 1024);
  g_assert_cmpuint (h, ==, 1024);

  total_params = TINY_TRANSFORMER_PARAMS + TINY_VQ_PARAMS + TINY_CLIP_PARAMS;
  m32 = ts_model_info_estimate_memory (info, 1024, 1024, TS_DTYPE_F32);
  m16 = ts_model_info_estimate_memory (info, 1024, 1024, TS_DTYPE_F16);
  m_default = ts_model_info_estimate_memory (info, 0, 0, TS_DTYPE_F16);
  m_small = ts_model_info_estimate_memory (info, 1024, 128, TS_DTYPE_F16);
  g_test_message ("tiny model at 1024x1024: %" G_GUINT64_FORMAT " bytes (f16 weights)", m16);
  g_assert_cmpuint (m32 - m16, ==, 2 * total_params);
  g_assert_cmpuint (m_default, ==, m16);
  g_assert_cmpuint (m_small, <, m16);
  g_assert_cmpuint (m_small, >, 2 * total_params);
  /* VQ decoder at 1024^2: 3 x 16 channels x 1024^2 x 4 bytes (the upsampled level 1). */
  g_assert_cmpuint (m16, ==, 2 * total_params + 3ull * 16 * 1024 * 1024 * 4);
  /* Sizes off the token grid (32 px here) and non-float dtypes are refused. */
  g_assert_cmpuint (ts_model_info_estimate_memory (info, 1000, 1024, TS_DTYPE_F16), ==, 0);
  g_assert_cmpuint (ts_model_info_estimate_memory (info, 1024, 1024, TS_DTYPE_I64), ==, 0);
  ts_model_info_free (info);
}

/* Size and memory checks from the configs alone, before any weight loads (issue 17). */
static void
test_check_before_load (void)
{
  g_autofree char *dir = golden_path ("models/tiny-meissonic");
  ts_model_info *info = ts_model_info_load (dir, TS_LOAD_DEFAULT, NULL);
  const char *source = NULL;
  ts_error err;

  g_assert_nonnull (info);
  g_assert_cmpint (ts_model_info_check_size (info, 256, 512, &err), ==, TS_OK);
  g_assert_cmpint (ts_model_info_check_size (info, 250, 256, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "size 250x256: this model takes widths and heights "
                                         "that are multiples of 32 px"));
  g_assert_cmpint (ts_model_info_check_size (info, 16384, 256, &err), ==, TS_ERR_INVALID_ARG);

  g_setenv ("TESSERA_MAX_MEMORY", "1G", TRUE);
  g_assert_cmpuint (ts_memory_limit (&source), ==, 1ull << 30);
  g_assert_cmpstr (source, ==, "TESSERA_MAX_MEMORY");
  g_assert_cmpint (ts_model_info_check_memory (info, 256, 256, TS_DTYPE_F32, &err), ==, TS_OK);
  g_setenv ("TESSERA_MAX_MEMORY", "64M", TRUE);
  g_assert_cmpint (ts_model_info_check_memory (info, 2048, 2048, TS_DTYPE_F32, &err), ==,
                   TS_ERR_NOMEM);
  g_assert_cmpstr (err.message, ==, "size 2048x2048 needs about 0.8 GiB by the model's "
                                    "estimate, more than the 0.1 GiB of TESSERA_MAX_MEMORY");
  g_unsetenv ("TESSERA_MAX_MEMORY");
  g_assert_cmpuint (ts_memory_limit (&source), >, 0);
  g_assert_true (strcmp (source, "the machine's RAM") == 0
                 || strcmp (source, "the cgroup's memory.max") == 0);
  g_assert_cmpint (ts_model_info_check_memory (info, 256, 256, TS_DTYPE_F32, &err), ==, TS_OK);
  ts_model_info_free (info);
}

/* ---- broken folders ---- */

static void
test_missing_component_folder (void)
{
  g_autofree char *dir = make_tiny_copy ();
  g_autofree char *vq = g_build_filename (dir, "vqvae", NULL);
  ts_error err;

  rm_rf (vq);
  g_assert_cmpint (load_status (dir, TS_LOAD_DEFAULT, &err), ==, TS_ERR_NOT_FOUND);
  assert_error (&err, TS_ERR_NOT_FOUND, "vqvae: folder", "/vqvae not found");
  /* Even for inspection: the structure itself is broken. */
  g_assert_cmpint (load_status (dir, TS_LOAD_CONFIGS_ONLY, &err), ==, TS_ERR_NOT_FOUND);
  rm_rf (dir);
}

static void
test_missing_config (void)
{
  g_autofree char *dir = make_tiny_copy ();
  ts_error err;

  remove_file (dir, "scheduler/scheduler_config.json");
  g_assert_cmpint (load_status (dir, TS_LOAD_CONFIGS_ONLY, &err), ==, TS_ERR_NOT_FOUND);
  assert_error (&err, TS_ERR_NOT_FOUND, "scheduler: missing", "scheduler/scheduler_config.json");
  rm_rf (dir);
}

static void
test_not_a_model_folder (void)
{
  g_autofree char *dir = g_dir_make_tmp ("tessera-model-XXXXXX", NULL);
  g_autofree char *missing = g_build_filename (dir, "nope", NULL);
  ts_error err;

  g_assert_cmpint (load_status (dir, TS_LOAD_DEFAULT, &err), ==, TS_ERR_NOT_FOUND);
  assert_error (&err, TS_ERR_NOT_FOUND, "not a diffusers model folder", "model_index.json");
  g_assert_cmpint (load_status (missing, TS_LOAD_DEFAULT, &err), ==, TS_ERR_NOT_FOUND);
  assert_error (&err, TS_ERR_NOT_FOUND, "model folder", "nope not found");
  g_assert_null (ts_model_info_load ("", TS_LOAD_DEFAULT, &err));
  g_assert_cmpint (err.code, ==, TS_ERR_INVALID_ARG);
  rm_rf (dir);
}

static void
test_missing_tensor (void)
{
  g_autofree char *dir = make_tiny_copy ();
  st_edit edit = { .skip = "transformer_blocks.1.attn.to_q.weight" };
  ts_error err;

  rewrite_transformer (dir, &edit);
  g_assert_cmpint (load_status (dir, TS_LOAD_DEFAULT, &err), ==, TS_ERR_NOT_FOUND);
  assert_error (&err, TS_ERR_NOT_FOUND, "transformer: 1 problem in ",
                "diffusion_pytorch_model.safetensors: missing tensor "
                "'transformer_blocks.1.attn.to_q.weight' [64,64]");
  rm_rf (dir);
}

static void
test_wrong_shape (void)
{
  g_autofree char *dir = make_tiny_copy ();
  st_edit edit = {
    .skip = "transformer_blocks.1.attn.to_q.weight",
    .reshape = "embed.conv.weight",
    .shape = { 64, 32, 1, 1 },
    .n_dims = 4,
  };
  ts_error err;

  rewrite_transformer (dir, &edit);
  g_assert_cmpint (load_status (dir, TS_LOAD_DEFAULT, &err), ==, TS_ERR_FORMAT);
  assert_error (&err, TS_ERR_FORMAT, "transformer: 2 problems",
                "tensor 'embed.conv.weight': expected [64,64,1,1], got [64,32,1,1]");
  assert_error (&err, TS_ERR_FORMAT, "missing tensor 'transformer_blocks.1.attn.to_q.weight'",
                NULL);
  rm_rf (dir);
}

static void
test_wrong_dtype (void)
{
  g_autofree char *dir = make_tiny_copy ();
  st_edit edit = { .retype = "mlm_layer.conv2.weight" };
  ts_error err;

  rewrite_transformer (dir, &edit);
  g_assert_cmpint (load_status (dir, TS_LOAD_DEFAULT, &err), ==, TS_ERR_FORMAT);
  assert_error (&err, TS_ERR_FORMAT, "tensor 'mlm_layer.conv2.weight': dtype I64",
                "F32, F16 or BF16");
  rm_rf (dir);
}

static void
test_many_problems (void)
{
  g_autofree char *dir = make_tiny_copy ();
  st_edit edit = { .skip_prefix = "single_transformer_blocks." };
  ts_error err;

  rewrite_transformer (dir, &edit);
  g_assert_cmpint (load_status (dir, TS_LOAD_DEFAULT, &err), ==, TS_ERR_NOT_FOUND);
  /* 2 single blocks x 14 tensors: 20 listed, the rest counted. */
  assert_error (&err, TS_ERR_NOT_FOUND, "transformer: 28 problems", "\xe2\x80\xa6 and 8 more");
  g_assert_cmpuint (strlen (err.message), <, TS_ERROR_MESSAGE_MAX - 1);
  rm_rf (dir);
}

static GPtrArray *captured;

static void
capture_log (ts_log_level level, const char *message, void *user_data)
{
  (void) user_data;
  if (level <= TS_LOG_WARN)
    g_ptr_array_add (captured, g_strdup (message));
}

static void
test_extra_tensor_warns (void)
{
  g_autofree char *dir = make_tiny_copy ();
  st_edit edit = { .extra = "pos_embed.unexpected" };
  ts_model_info *info;
  ts_error err;
  bool seen = false;

  rewrite_transformer (dir, &edit);
  captured = g_ptr_array_new_with_free_func (g_free);
  ts_log_set_handler (capture_log, NULL);
  info = ts_model_info_load (dir, TS_LOAD_DEFAULT, &err);
  ts_log_set_handler (NULL, NULL);
  if (!info)
    g_error ("%s", err.message);
  for (guint i = 0; i < captured->len; i++)
    if (strstr (captured->pdata[i], "'pos_embed.unexpected'") &&
        strstr (captured->pdata[i], "not part of the model"))
      seen = true;
  g_assert_true (seen);
  g_assert_cmpuint (ts_model_info_component (info, TS_COMPONENT_TRANSFORMER)->n_tensors, ==, 120);
  g_assert_cmpuint (ts_model_info_component (info, TS_COMPONENT_TRANSFORMER)->n_params, ==,
                    TINY_TRANSFORMER_PARAMS);
  ts_model_info_free (info);
  g_ptr_array_free (captured, TRUE);
  rm_rf (dir);
}

static void
test_bad_json_config (void)
{
  g_autofree char *dir = make_tiny_copy ();
  ts_error err;

  write_file (dir, "vqvae/config.json", "{\n  \"block_out_channels\": [8, 16,\n");
  g_assert_cmpint (load_status (dir, TS_LOAD_CONFIGS_ONLY, &err), ==, TS_ERR_FORMAT);
  assert_error (&err, TS_ERR_FORMAT, "vqvae/config.json: invalid JSON", NULL);
  write_file (dir, "vqvae/config.json", "{\"mid_block_add_attention\": false, "
                                         "\"layers_per_block\": \"2\"}");
  g_assert_cmpint (load_status (dir, TS_LOAD_DEFAULT, &err), ==, TS_ERR_FORMAT);
  assert_error (&err, TS_ERR_FORMAT, "vqvae/config.json: key 'layers_per_block'", NULL);
  rm_rf (dir);
}

static void
test_corrupt_checkpoint (void)
{
  g_autofree char *dir = make_tiny_copy ();
  ts_error err;

  /* The reader's own error, prefixed with the component. */
  write_file (dir, "vqvae/diffusion_pytorch_model.safetensors", "not a safetensors file");
  g_assert_null (ts_model_info_load (dir, TS_LOAD_DEFAULT, &err));
  g_assert_cmpint (err.code, ==, TS_ERR_FORMAT);
  assert_error (&err, TS_ERR_FORMAT, "vqvae: ", "vqvae/diffusion_pytorch_model.safetensors");
  g_assert_true (g_str_has_prefix (err.message, "vqvae: "));
  rm_rf (dir);
}

static void
test_configs_disagree (void)
{
  g_autofree char *dir = make_tiny_copy ();
  ts_error err;

  link_golden (dir, "vqvae/config.json", "real-configs/vqvae_config.json");
  g_assert_cmpint (load_status (dir, TS_LOAD_CONFIGS_ONLY, &err), ==, TS_ERR_FORMAT);
  assert_error (&err, TS_ERR_FORMAT, "configs disagree",
                "codebook_size is 96 but vqvae num_vq_embeddings is 8192");
  rm_rf (dir);
}

static void
test_wrong_class (void)
{
  g_autofree char *dir = make_tiny_copy ();
  ts_error err;

  write_file (dir, "model_index.json",
              "{\"_class_name\": \"Pipeline\", \"scheduler\": [\"scheduler\", \"Scheduler\"],"
              " \"text_encoder\": [\"transformers\", \"CLIPTextModel\"],"
              " \"tokenizer\": [\"transformers\", \"CLIPTokenizer\"],"
              " \"transformer\": [\"transformer\", \"Transformer2DModel\"],"
              " \"vqvae\": [\"diffusers\", \"VQModel\"]}");
  g_assert_cmpint (load_status (dir, TS_LOAD_CONFIGS_ONLY, &err), ==, TS_ERR_UNSUPPORTED);
  assert_error (&err, TS_ERR_UNSUPPORTED, "'text_encoder' is [\"transformers\", \"CLIPTextModel\"]",
                "CLIPTextModelWithProjection");
  rm_rf (dir);
}

static void
test_missing_tokenizer_file (void)
{
  g_autofree char *dir = make_tiny_copy ();
  ts_model_info *info;
  ts_error err;

  remove_file (dir, "tokenizer/merges.txt");
  g_assert_cmpint (load_status (dir, TS_LOAD_DEFAULT, &err), ==, TS_ERR_NOT_FOUND);
  assert_error (&err, TS_ERR_NOT_FOUND, "tokenizer: missing", "tokenizer/merges.txt");
  info = ts_model_info_load (dir, TS_LOAD_CONFIGS_ONLY, &err);
  g_assert_nonnull (info);
  g_assert_false (ts_model_info_component (info, TS_COMPONENT_TOKENIZER)->present);
  ts_model_info_free (info);
  rm_rf (dir);
}

static void
test_only_fp16_weights (void)
{
  g_autofree char *dir = make_tiny_copy ();
  ts_model_info *info;
  ts_error err;

  /* A folder downloaded with variant="fp16" only has the .fp16 files. */
  remove_file (dir, "transformer/diffusion_pytorch_model.safetensors");
  info = ts_model_info_load (dir, TS_LOAD_DEFAULT, &err);
  if (!info)
    g_error ("%s", err.message);
  g_assert_cmpint (ts_model_info_component (info, TS_COMPONENT_TRANSFORMER)->dtype, ==,
                   TS_DTYPE_F16);
  g_assert_cmpint (ts_model_info_component (info, TS_COMPONENT_VQVAE)->dtype, ==, TS_DTYPE_F32);
  ts_model_info_free (info);
  rm_rf (dir);
}

/* A sharded transformer checkpoint (index + 2 shards), as large models are saved. */
static void
test_sharded_checkpoint (void)
{
  g_autofree char *dir = make_tiny_copy ();
  g_autofree char *cfg = golden_path ("models/tiny-meissonic/transformer/config.json");
  g_autofree char *shard1 = g_build_filename (dir, "transformer",
                                              "diffusion_pytorch_model-00001-of-00002.safetensors",
                                              NULL);
  g_autofree char *shard2 = g_build_filename (dir, "transformer",
                                              "diffusion_pytorch_model-00002-of-00002.safetensors",
                                              NULL);
  const st_edit none = { 0 }, skip = { .skip = "transformer_blocks.1.ff.net.2.bias" };
  const ts_component_info *ci;
  ts_transformer_config c;
  ts_tensor_list list;
  ts_model_info *info;
  GString *index;
  ts_error err;
  size_t half;

  ts_tensor_list_init (&list);
  g_assert_cmpint (ts_transformer_config_from_file (cfg, &c, &err), ==, TS_OK);
  g_assert_cmpint (ts_transformer_config_tensors (&c, &list, &err), ==, TS_OK);
  half = list.n / 2;
  remove_file (dir, "transformer/diffusion_pytorch_model.safetensors");
  remove_file (dir, "transformer/diffusion_pytorch_model.fp16.safetensors");
  write_checkpoint_range (shard1, &list, &none, 0, half);
  write_checkpoint_range (shard2, &list, &none, half, list.n);
  index = g_string_new ("{\"metadata\": {}, \"weight_map\": {");
  for (size_t i = 0; i < list.n; i++)
    g_string_append_printf (index, "%s\"%s\": \"diffusion_pytorch_model-0000%d-of-00002."
                            "safetensors\"", i ? ", " : "", list.items[i].name,
                            i < half ? 1 : 2);
  g_string_append (index, "}}");
  write_file (dir, "transformer/diffusion_pytorch_model.safetensors.index.json", index->str);

  info = ts_model_info_load (dir, TS_LOAD_DEFAULT, &err);
  if (!info)
    g_error ("%s", err.message);
  ci = ts_model_info_component (info, TS_COMPONENT_TRANSFORMER);
  g_assert_cmpint (ci->n_files, ==, 2);
  g_assert_cmpuint (ci->n_tensors, ==, 119);
  g_assert_cmpint (ci->dtype, ==, TS_DTYPE_F16);
  g_assert_cmpuint (ci->n_params, ==, TINY_TRANSFORMER_PARAMS);
  ts_model_info_free (info);

  /* A tensor missing from both the index and the shards: named, with the shard count. */
  write_checkpoint_range (shard2, &list, &skip, half, list.n);
  g_string_truncate (index, 0);
  g_string_append (index, "{\"weight_map\": {");
  for (size_t i = 0, n = 0; i < list.n; i++) {
    if (strcmp (list.items[i].name, skip.skip) == 0)
      continue;
    g_string_append_printf (index, "%s\"%s\": \"diffusion_pytorch_model-0000%d-of-00002."
                            "safetensors\"", n++ ? ", " : "", list.items[i].name,
                            i < half ? 1 : 2);
  }
  g_string_append (index, "}}");
  write_file (dir, "transformer/diffusion_pytorch_model.safetensors.index.json", index->str);
  g_assert_null (ts_model_info_load (dir, TS_LOAD_DEFAULT, &err));
  assert_error (&err, TS_ERR_NOT_FOUND, "and 1 more shard:",
                "missing tensor 'transformer_blocks.1.ff.net.2.bias' [64]");

  g_string_free (index, TRUE);
  ts_tensor_list_clear (&list);
  rm_rf (dir);
}

/* Only the configs of the tiny model: inspectable, not loadable. */
static void
test_configs_only_folder (void)
{
  g_autofree char *dir = make_tiny_copy ();
  const ts_component_info *ci;
  ts_model_info *info;
  ts_error err;

  remove_file (dir, "transformer/diffusion_pytorch_model.safetensors");
  remove_file (dir, "transformer/diffusion_pytorch_model.fp16.safetensors");
  remove_file (dir, "vqvae/diffusion_pytorch_model.safetensors");
  remove_file (dir, "vqvae/diffusion_pytorch_model.fp16.safetensors");
  remove_file (dir, "text_encoder/model.safetensors");

  g_assert_null (ts_model_info_load (dir, TS_LOAD_DEFAULT, &err));
  assert_error (&err, TS_ERR_NOT_FOUND,
                "transformer: no weights: neither diffusion_pytorch_model.safetensors nor "
                "diffusion_pytorch_model.fp16.safetensors",
                "vqvae, text_encoder have no weights either");

  info = ts_model_info_load (dir, TS_LOAD_CONFIGS_ONLY, &err);
  if (!info)
    g_error ("%s", err.message);
  ci = ts_model_info_component (info, TS_COMPONENT_TRANSFORMER);
  g_assert_true (ci->present);
  g_assert_cmpuint (ci->n_params, ==, TINY_TRANSFORMER_PARAMS);
  g_assert_cmpuint (ci->n_tensors, ==, 119);
  g_assert_cmpint (ci->n_files, ==, 0);
  g_assert_cmpuint (ci->size_bytes_on_disk, ==, 0);
  g_assert_cmpint (ci->dtype, ==, TS_DTYPE_COUNT);
  g_assert_cmpuint (ts_model_info_component (info, TS_COMPONENT_VQVAE)->n_params, ==,
                    TINY_VQ_PARAMS);
  g_assert_cmpuint (ts_model_info_component (info, TS_COMPONENT_TEXT_ENCODER)->n_params, ==,
                    TINY_CLIP_PARAMS);
  ts_model_info_free (info);

  /* One network without weights: the message names just that one. */
  link_golden (dir, "transformer/diffusion_pytorch_model.safetensors",
               "models/tiny-meissonic/transformer/diffusion_pytorch_model.safetensors");
  link_golden (dir, "text_encoder/model.safetensors",
               "models/tiny-meissonic/text_encoder/model.safetensors");
  g_assert_null (ts_model_info_load (dir, TS_LOAD_DEFAULT, &err));
  assert_error (&err, TS_ERR_NOT_FOUND, "vqvae: no weights", NULL);
  g_assert_null (strstr (err.message, "no weights either"));
  rm_rf (dir);
}

/* The real Meissonic configs, under their real names: real parameter counts. */
static void
test_real_configs_folder (void)
{
  g_autofree char *dir = g_dir_make_tmp ("tessera-model-XXXXXX", NULL);
  static const char *const subdirs[] = { "transformer", "vqvae", "text_encoder", "tokenizer",
                                         "scheduler" };
  static const char *const links[][2] = {
    { "model_index.json", "real-configs/model_index.json" },
    { "transformer/config.json", "real-configs/transformer_config.json" },
    { "vqvae/config.json", "real-configs/vqvae_config.json" },
    { "text_encoder/config.json", "real-configs/text_encoder_config.probable.json" },
    { "scheduler/scheduler_config.json", "real-configs/scheduler_config.reconstructed.json" },
    { "tokenizer/tokenizer_config.json", "real-configs/tokenizer_config.reconstructed.json" },
    { "tokenizer/special_tokens_map.json", "real-configs/tokenizer_special_tokens_map.json" },
  };
  const ts_component_info *ci;
  ts_model_info *info;
  ts_error err;
  uint32_t w, h;
  uint64_t m16;

  for (size_t i = 0; i < G_N_ELEMENTS (subdirs); i++) {
    g_autofree char *sub = g_build_filename (dir, subdirs[i], NULL);
    g_assert_cmpint (g_mkdir (sub, 0755), ==, 0);
  }
  for (size_t i = 0; i < G_N_ELEMENTS (links); i++)
    link_golden (dir, links[i][0], links[i][1]);

  info = ts_model_info_load (dir, TS_LOAD_CONFIGS_ONLY, &err);
  if (!info)
    g_error ("%s", err.message);
  ci = ts_model_info_component (info, TS_COMPONENT_TRANSFORMER);
  g_assert_cmpuint (ci->n_params, ==, 1006946304);
  g_assert_cmpuint (ci->n_tensors, ==, 14 * 32 + 28 * 14 + 27);
  ci = ts_model_info_component (info, TS_COMPONENT_VQVAE);
  g_assert_cmpuint (ci->n_params, ==, 146244675);
  ci = ts_model_info_component (info, TS_COMPONENT_TEXT_ENCODER);
  g_assert_cmpuint (ci->n_params, ==, 354032640);
  g_assert_false (ts_model_info_component (info, TS_COMPONENT_TOKENIZER)->present);
  ts_model_info_default_size (info, &w, &h);
  g_assert_cmpuint (w, ==, 1024);
  g_assert_cmpuint (h, ==, 1024);
  m16 = ts_model_info_estimate_memory (info, 0, 0, TS_DTYPE_F16);
  g_test_message ("real model at 1024x1024, f16 weights: %" G_GUINT64_FORMAT " bytes", m16);
  /* Weights alone are 2 x 1.507 B parameters; activations add a few GB at most. */
  g_assert_cmpuint (m16, >, 2ull * (1006946304 + 146244675 + 354032640));
  g_assert_cmpuint (m16, <, 8ull * 1000 * 1000 * 1000);
  ts_model_info_free (info);

  g_assert_null (ts_model_info_load (dir, TS_LOAD_DEFAULT, &err));
  assert_error (&err, TS_ERR_NOT_FOUND, "transformer: no weights",
                "vqvae, text_encoder have no weights either");
  rm_rf (dir);
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

  g_test_add_func ("/model-files/golden/default", test_golden_default);
  g_test_add_func ("/model-files/golden/prefer-fp16", test_golden_fp16);
  g_test_add_func ("/model-files/golden/lookup", test_golden_lookup);
  g_test_add_func ("/model-files/golden/memory-estimate", test_memory_estimate);
  g_test_add_func ("/model-files/golden/check-before-load", test_check_before_load);
  g_test_add_func ("/model-files/broken/missing-component-folder", test_missing_component_folder);
  g_test_add_func ("/model-files/broken/missing-config", test_missing_config);
  g_test_add_func ("/model-files/broken/not-a-model-folder", test_not_a_model_folder);
  g_test_add_func ("/model-files/broken/missing-tensor", test_missing_tensor);
  g_test_add_func ("/model-files/broken/wrong-shape", test_wrong_shape);
  g_test_add_func ("/model-files/broken/wrong-dtype", test_wrong_dtype);
  g_test_add_func ("/model-files/broken/many-problems", test_many_problems);
  g_test_add_func ("/model-files/broken/bad-json-config", test_bad_json_config);
  g_test_add_func ("/model-files/broken/corrupt-checkpoint", test_corrupt_checkpoint);
  g_test_add_func ("/model-files/broken/configs-disagree", test_configs_disagree);
  g_test_add_func ("/model-files/broken/wrong-class", test_wrong_class);
  g_test_add_func ("/model-files/broken/missing-tokenizer-file", test_missing_tokenizer_file);
  g_test_add_func ("/model-files/extra-tensor-warns", test_extra_tensor_warns);
  g_test_add_func ("/model-files/only-fp16-weights", test_only_fp16_weights);
  g_test_add_func ("/model-files/sharded-checkpoint", test_sharded_checkpoint);
  g_test_add_func ("/model-files/configs-only-folder", test_configs_only_folder);
  g_test_add_func ("/model-files/real-configs-folder", test_real_configs_folder);
  return g_test_run ();
}
