/* SPDX-License-Identifier: MIT
 *
 * test-hub — libtessera-hub (app/hub) on its own: which files each variant picks from a
 * listing (single files, shards and their indexes, other variants, files the engine never
 * reads), the components of a model_index.json, and tessera_hub_download() against the
 * local stand-in for the hub (tests/hub-server.py, 127.0.0.1): the progress callback's
 * events and totals, cancellation through the GCancellable leaving a .incomplete file that
 * the next call resumes, and the GError codes of a wrong sha256, a missing token and a
 * missing repository.
 * Usage: test-hub --tap HUB_SERVER_PY SOURCE_ROOT (the server runs under python3).
 */
#include "tessera-hub.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

static const char *server_py, *source_root;
static GSubprocess *server;
static char *endpoint;
static char *tmp_dir;

static TesseraHubFile *
file_new (const char *path, guint64 size, const char *sha)
{
  TesseraHubFile *f = g_new0 (TesseraHubFile, 1);
  f->path = g_strdup (path);
  f->size = size;
  f->sha256 = g_strdup (sha);
  return f;
}

/* The chosen paths, joined by spaces. */
static char *
chosen_paths (GPtrArray *listing, TesseraHubVariant variant)
{
  static const char *const components[] = { "transformer", "vqvae", "text_encoder",
                                            "tokenizer", "scheduler", NULL };
  g_autoptr(GPtrArray) chosen = tessera_hub_select_files (listing, components, variant);
  g_autoptr(GString) s = g_string_new (NULL);

  for (guint i = 0; i < chosen->len; i++)
    g_string_append_printf (s, "%s%s", i ? " " : "",
                            ((TesseraHubFile *) g_ptr_array_index (chosen, i))->path);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static void
test_select (void)
{
  static const char *const paths[] = {
    "model_index.json", "README.md", "assets/sample.png",
    "transformer/config.json", "transformer/transformer.py",
    "transformer/diffusion_pytorch_model.safetensors",
    "transformer/diffusion_pytorch_model.fp16.safetensors",
    "transformer/diffusion_pytorch_model.bf16.safetensors",
    "transformer/diffusion_pytorch_model.bin",
    "vqvae/config.json", "vqvae/diffusion_pytorch_model.safetensors",
    "vqvae/diffusion_pytorch_model.onnx",
    /* transformers-style shards, full and fp16, with their indexes */
    "text_encoder/config.json",
    "text_encoder/model-00001-of-00002.safetensors",
    "text_encoder/model-00002-of-00002.safetensors",
    "text_encoder/model.safetensors.index.json",
    "text_encoder/model.fp16-00001-of-00002.safetensors",
    "text_encoder/model.fp16-00002-of-00002.safetensors",
    "text_encoder/model.safetensors.index.fp16.json",
    "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json",
    "tokenizer/special_tokens_map.json", "tokenizer/tokenizer.json",
    "scheduler/scheduler_config.json", "scheduler/scheduler.py",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
    "transformer/nested/config.json",
    NULL,
  };
  g_autoptr(GPtrArray) listing = g_ptr_array_new_with_free_func ((GDestroyNotify) tessera_hub_file_free);
  g_autofree char *fp16 = NULL, *fp32 = NULL, *all = NULL;

  for (guint i = 0; paths[i]; i++)
    g_ptr_array_add (listing, file_new (paths[i], 10, NULL));
  fp16 = chosen_paths (listing, TESSERA_HUB_VARIANT_FP16);
  fp32 = chosen_paths (listing, TESSERA_HUB_VARIANT_FP32);
  all = chosen_paths (listing, TESSERA_HUB_VARIANT_ALL);
  g_assert_cmpstr (fp16, ==,
                   "transformer/config.json transformer/diffusion_pytorch_model.fp16.safetensors "
                   "vqvae/config.json vqvae/diffusion_pytorch_model.safetensors "
                   "text_encoder/config.json text_encoder/model.fp16-00001-of-00002.safetensors "
                   "text_encoder/model.fp16-00002-of-00002.safetensors "
                   "text_encoder/model.safetensors.index.fp16.json "
                   "tokenizer/vocab.json tokenizer/merges.txt tokenizer/tokenizer_config.json "
                   "tokenizer/special_tokens_map.json scheduler/scheduler_config.json "
                   "model_index.json");
  g_assert_cmpstr (fp32, ==,
                   "transformer/config.json transformer/diffusion_pytorch_model.safetensors "
                   "vqvae/config.json vqvae/diffusion_pytorch_model.safetensors "
                   "text_encoder/config.json text_encoder/model-00001-of-00002.safetensors "
                   "text_encoder/model-00002-of-00002.safetensors "
                   "text_encoder/model.safetensors.index.json "
                   "tokenizer/vocab.json tokenizer/merges.txt tokenizer/tokenizer_config.json "
                   "tokenizer/special_tokens_map.json scheduler/scheduler_config.json "
                   "model_index.json");
  g_assert_nonnull (strstr (all, "transformer/diffusion_pytorch_model.safetensors "
                                 "transformer/diffusion_pytorch_model.fp16.safetensors"));
  g_assert_nonnull (strstr (all, "text_encoder/model.safetensors.index.json"));
  g_assert_nonnull (strstr (all, "text_encoder/model.safetensors.index.fp16.json"));
  g_assert_null (strstr (all, "bf16"));
  g_assert_null (strstr (all, ".bin"));
  g_assert_null (strstr (all, ".py"));
  g_assert_null (strstr (all, "unet"));
  g_assert_null (strstr (all, "nested"));
  g_assert_null (strstr (all, "tokenizer.json"));
}

/* A component with only fp16 weights still gets them with --variant fp32. */
static void
test_select_fp16_only (void)
{
  g_autoptr(GPtrArray) listing = g_ptr_array_new_with_free_func ((GDestroyNotify) tessera_hub_file_free);
  g_autofree char *fp32 = NULL;

  g_ptr_array_add (listing, file_new ("vqvae/diffusion_pytorch_model.fp16.safetensors", 1, NULL));
  g_ptr_array_add (listing, file_new ("vqvae/diffusion_pytorch_model-00001-of-00002.fp16.safetensors", 1, NULL));
  fp32 = chosen_paths (listing, TESSERA_HUB_VARIANT_FP32);
  g_assert_cmpstr (fp32, ==, "vqvae/diffusion_pytorch_model.fp16.safetensors "
                             "vqvae/diffusion_pytorch_model-00001-of-00002.fp16.safetensors");
}

static void
test_components (void)
{
  static const char text[] =
    "{\"_class_name\": \"Pipeline\", \"transformer\": [\"transformer\", \"T\"],"
    " \"vqvae\": [\"diffusers\", \"VQModel\"], \"safety_checker\": [null, null],"
    " \"../evil\": [\"a\", \"b\"], \"_tessera_guidance_scale\": 1.5, \"n\": 3}";
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = tessera_hub_components_from_model_index (text, strlen (text), &error);
  g_auto(GStrv) none = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (names), ==, 2);
  g_assert_cmpstr (names[0], ==, "transformer");
  g_assert_cmpstr (names[1], ==, "vqvae");
  none = tessera_hub_components_from_model_index ("[1]", 3, &error);
  g_assert_null (none);
  g_assert_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NOT_A_MODEL);
}

static void
test_default_dir (void)
{
  g_autofree char *dir = tessera_hub_default_dir ("MeissonFlow/Meissonic");
  g_autofree char *want = g_build_filename (g_get_user_data_dir (), "tessera", "models",
                                            "Meissonic", NULL);
  g_assert_cmpstr (dir, ==, want);
}

/* ---- against the server ----------------------------------------------------------- */

typedef struct {
  guint n_listed, n_done, n_present, n_progress;
  guint64 last_total, total_size, present_bytes;
  gboolean monotonic, saw_rate;
  guint64 cancel_after; /* cancel once this many bytes of the fp16 transformer arrived */
  GCancellable *cancellable;
} Events;

static void
on_progress (const TesseraHubProgress *p, gpointer user_data)
{
  Events *ev = user_data;

  if (p->total_done < ev->last_total)
    ev->monotonic = FALSE;
  ev->last_total = p->total_done;
  g_assert_cmpuint (p->total_done, <=, p->total_size);
  switch (p->event) {
  case TESSERA_HUB_EVENT_LISTED:
    g_assert_cmpuint (ev->n_done + ev->n_present, ==, 0);
    ev->n_listed++;
    ev->total_size = p->total_size;
    break;
  case TESSERA_HUB_EVENT_FILE_DONE:
    g_assert_cmpuint (p->file_done, ==, p->file_size);
    ev->n_done++;
    break;
  case TESSERA_HUB_EVENT_FILE_PRESENT:
    ev->n_present++;
    ev->present_bytes += p->file_size;
    break;
  case TESSERA_HUB_EVENT_PROGRESS:
    ev->n_progress++;
    g_assert_cmpuint (p->file_done, <=, p->file_size);
    if (p->rate > 0 && p->eta_s >= 0)
      ev->saw_rate = TRUE;
    if (ev->cancel_after && g_str_has_suffix (p->path, ".fp16.safetensors")
        && p->file_done >= ev->cancel_after)
      g_cancellable_cancel (ev->cancellable);
    break;
  case TESSERA_HUB_EVENT_FILE_START:
  case TESSERA_HUB_EVENT_VERIFYING:
  case TESSERA_HUB_EVENT_RETRY:
    break;
  }
}

static void
server_control (const char *query)
{
  g_autofree char *cmd = g_strdup_printf ("python3 -c \"import urllib.request; "
                                          "urllib.request.urlopen('%s/_control/%s').read()\"",
                                          endpoint, query);
  int status;
  g_assert_true (g_spawn_command_line_sync (cmd, NULL, NULL, &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

static void
test_download (void)
{
  g_autofree char *dir = g_build_filename (tmp_dir, "lib", NULL);
  g_autofree char *part = g_build_filename (dir, "transformer",
                                            "diffusion_pytorch_model.fp16.safetensors.incomplete",
                                            NULL);
  g_autofree char *final = g_build_filename (dir, "transformer",
                                             "diffusion_pytorch_model.fp16.safetensors", NULL);
  g_autofree char *index = g_build_filename (dir, "model_index.json", NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Events ev = { .monotonic = TRUE, .cancel_after = 300000, .cancellable = cancellable };
  TesseraHubOptions opts = { .endpoint = endpoint, .progress = on_progress,
                             .progress_data = &ev };
  TesseraHubResult result = { .commit = NULL };
  g_autoptr(GError) error = NULL;
  GStatBuf st;

  /* Slow enough that the cancel lands mid-file. */
  server_control ("slow?path=transformer/diffusion_pytorch_model.fp16.safetensors&delay=0.02");
  g_assert_false (tessera_hub_download ("test/demo", dir, &opts, &result, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_cmpint (g_stat (part, &st), ==, 0);
  g_assert_cmpint (st.st_size, >=, 300000);
  g_assert_false (g_file_test (final, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (index, G_FILE_TEST_EXISTS));
  server_control ("slow?path=transformer/diffusion_pytorch_model.fp16.safetensors&delay=0");

  /* The next call resumes: it transfers less than the whole. */
  ev = (Events) { .monotonic = TRUE };
  g_assert_true (tessera_hub_download ("test/demo", dir, &opts, &result, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (ev.n_listed, ==, 1);
  g_assert_cmpuint (result.n_files, ==, 12);
  g_assert_cmpuint (ev.n_done + ev.n_present, ==, 12);
  g_assert_cmpuint (ev.n_present, >=, 1);
  g_assert_true (ev.monotonic);
  g_assert_cmpuint (ev.last_total, ==, ev.total_size);
  g_assert_cmpuint (result.total_size, ==, ev.total_size);
  /* Exactly what was missing: the files not in place less the .incomplete file's bytes. */
  g_assert_cmpuint (result.bytes_fetched, ==, result.total_size - ev.present_bytes
                                               - (guint64) st.st_size);
  g_assert_cmpstr (result.commit, ==, "c0ffee0123456789abcdef0123456789abcdef01");
  g_assert_false (g_file_test (part, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (final, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (index, G_FILE_TEST_IS_REGULAR));
  tessera_hub_result_clear (&result);

  /* Everything in place: nothing fetched. */
  ev = (Events) { .monotonic = TRUE };
  g_assert_true (tessera_hub_download ("test/demo", dir, &opts, &result, NULL, &error));
  g_assert_cmpuint (result.n_fetched, ==, 0);
  g_assert_cmpuint (result.bytes_fetched, ==, 0);
  g_assert_cmpuint (ev.n_present, ==, 12);
  tessera_hub_result_clear (&result);
}

static void
test_errors (void)
{
  TesseraHubOptions opts = { .endpoint = endpoint, .token = "" };
  g_autofree char *d1 = g_build_filename (tmp_dir, "e1", NULL);
  g_autofree char *d2 = g_build_filename (tmp_dir, "e2", NULL);
  g_autofree char *d3 = g_build_filename (tmp_dir, "e3", NULL);
  g_autofree char *vq = g_build_filename (d1, "vqvae", "diffusion_pytorch_model.safetensors",
                                          NULL);
  g_autoptr(GError) error = NULL;

  g_assert_false (tessera_hub_download ("test/badsha", d1, &opts, NULL, NULL, &error));
  g_assert_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_CHECKSUM);
  g_assert_false (g_file_test (vq, G_FILE_TEST_EXISTS));
  g_clear_error (&error);

  /* An empty token is no token (the token file is not read either). */
  g_assert_false (tessera_hub_download ("test/private", d2, &opts, NULL, NULL, &error));
  g_assert_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_AUTH);
  g_assert_nonnull (strstr (error->message, "this repository needs a token: set HF_TOKEN"));
  g_clear_error (&error);

  g_assert_false (tessera_hub_download ("test/missing", d3, &opts, NULL, NULL, &error));
  g_assert_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "repository not found: test/missing"));
}

int
main (int argc, char **argv)
{
  g_autofree char *port_file = NULL, *port = NULL;
  g_autoptr(GError) error = NULL;
  int rc;

  g_test_init (&argc, &argv, NULL);
  if (argc < 3) {
    g_printerr ("usage: test-hub HUB_SERVER_PY SOURCE_ROOT\n");
    return 2;
  }
  server_py = argv[1];
  source_root = argv[2];
  tmp_dir = g_dir_make_tmp ("tessera-test-hub-XXXXXX", &error);
  g_assert_no_error (error);
  port_file = g_build_filename (tmp_dir, "port", NULL);
  server = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error, "python3", server_py, source_root,
                             port_file, NULL);
  g_assert_no_error (error);
  for (int i = 0; i < 600 && !g_file_get_contents (port_file, &port, NULL, NULL); i++)
    g_usleep (50000);
  g_assert_nonnull (port);
  endpoint = g_strdup_printf ("http://127.0.0.1:%d", atoi (port));

  g_test_add_func ("/hub/select", test_select);
  g_test_add_func ("/hub/select-fp16-only", test_select_fp16_only);
  g_test_add_func ("/hub/components", test_components);
  g_test_add_func ("/hub/default-dir", test_default_dir);
  g_test_add_func ("/hub/download", test_download);
  g_test_add_func ("/hub/errors", test_errors);
  rc = g_test_run ();

  g_subprocess_force_exit (server);
  g_subprocess_wait (server, NULL, NULL);
  g_clear_object (&server);
  {
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", tmp_dir);
    g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
  }
  g_free (tmp_dir);
  g_free (endpoint);
  return rc;
}
