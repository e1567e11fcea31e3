/* SPDX-License-Identifier: MIT
 *
 * test-window.c — the desktop app end to end (suite 'ui'): the real TesseraWindow and
 * the real engine on the tiny golden model (random weights, so images are noise, but the
 * pipeline is the real one). Every test drives the window through its actions and waits
 * on the main loop, with a timeout, for the state it expects. The last test renders
 * screenshots of the main views at 1280x800 into $TESSERA_SCREENSHOT_DIR.
 *
 * Skips (77) without $TESSERA_GOLDEN_DIR or without a display.
 */
#define G_SETTINGS_ENABLE_BACKEND
#include <adwaita.h>
#include <gio/gsettingsbackend.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tessera-application.h"
#include "tessera-engine-types.h"
#include "tessera-mask-editor.h"
#include "tessera-window-private.h"
#include "ui-test-tmp.h"

#define SIZE 256
#define SHOT_W 1280
#define SHOT_H 800
#define TIMEOUT_S 120

static char *model_dir;
static const char *demo_model_dir; /* the source tree's data/demo-model */
static char *gallery_dir;
static char *tmp_dir;
static GtkApplication *app;
static gboolean undecorated; /* the screenshot test's windows, see test_screenshots */

static gboolean
tick (gpointer data)
{
  (void) data;
  return G_SOURCE_CONTINUE;
}

/* Iterates the main loop until cond holds or timeout_s passes; no sleeps. */
#define WAIT_FOR(cond, timeout_s)                                                     \
  G_STMT_START                                                                        \
  {                                                                                   \
    gint64 end_ = g_get_monotonic_time () + (gint64) ((timeout_s) * G_USEC_PER_SEC);  \
    guint tick_ = g_timeout_add (20, tick, NULL);                                     \
    while (!(cond) && g_get_monotonic_time () < end_)                                 \
      g_main_context_iteration (NULL, TRUE);                                          \
    g_source_remove (tick_);                                                          \
    if (!(cond))                                                                      \
      g_error ("timed out after %g s waiting for %s", (double) (timeout_s), #cond);   \
  }                                                                                   \
  G_STMT_END

static GSettings *
settings (void)
{
  return g_settings_new ("io.github.tessera.Tessera");
}

static guint
count_pngs (void)
{
  g_autoptr (GDir) dir = g_dir_open (gallery_dir, 0, NULL);
  const char *name;
  guint n = 0;

  while (dir && (name = g_dir_read_name (dir)))
    n += g_str_has_suffix (name, ".png");
  return n;
}

static TesseraWindow *
open_window (const char *model)
{
  g_autoptr (GSettings) s = settings ();
  TesseraWindow *win;

  g_settings_set_string (s, "model-folder", model);
  g_settings_set_string (s, "gallery-folder", gallery_dir);
  g_settings_set_int (s, "steps", 6);
  g_settings_set_boolean (s, "seed-locked", FALSE);
  g_settings_set_string (s, "preview-mode", "tokens");
  win = tessera_window_new (ADW_APPLICATION (app));
  gtk_window_set_decorated (GTK_WINDOW (win), !undecorated);
  gtk_window_set_default_size (GTK_WINDOW (win), SHOT_W, SHOT_H);
  gtk_window_present (GTK_WINDOW (win));
  return win;
}

static TesseraWindow *
open_ready_window (void)
{
  TesseraWindow *win = open_window (model_dir);

  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "ready");
  g_assert_true (_tessera_window_select_size (win, SIZE, SIZE));
  return win;
}

static void
close_window (TesseraWindow *win)
{
  /* Pending jobs hold the window until they return; the worker joins its thread in its
   * dispose. Wait for both to go. */
  g_object_add_weak_pointer (G_OBJECT (win), (gpointer *) &win);
  gtk_window_destroy (GTK_WINDOW (win));
  WAIT_FOR (win == NULL, TIMEOUT_S);
}

static void
activate_with (TesseraWindow *win, const char *action, GVariant *param)
{
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), action));
  g_action_group_activate_action (G_ACTION_GROUP (win), action, param);
}

static void
activate (TesseraWindow *win, const char *action)
{
  activate_with (win, action, NULL);
}

static void
set_steps (TesseraWindow *win, int steps)
{
  g_autoptr (GSettings) s = settings ();

  (void) win;
  g_settings_set_int (s, "steps", steps);
}

static GFile *
generate (TesseraWindow *win, const char *prompt, int steps)
{
  guint saved = _tessera_window_get_n_saved (win);

  _tessera_window_set_prompt (win, prompt);
  set_steps (win, steps);
  activate (win, "generate");
  g_assert_true (_tessera_window_is_running (win));
  WAIT_FOR (!_tessera_window_is_running (win) && _tessera_window_get_n_saved (win) > saved, TIMEOUT_S);
  return g_object_ref (_tessera_window_get_last_saved (win));
}

/* ---- tests ---- */

static void
test_broken_model (void)
{
  g_autofree char *broken = g_build_filename (gallery_dir, "..", "broken-model", NULL);
  g_autofree char *index = g_build_filename (broken, "model_index.json", NULL);
  g_autoptr (GSettings) s = settings ();
  TesseraWindow *win;

  g_assert_cmpint (g_mkdir_with_parents (broken, 0755), ==, 0);
  g_assert_true (g_file_set_contents (index, "{ not json", -1, NULL));
  win = open_window (broken);
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "error");
  g_test_message ("engine message: %s", _tessera_window_get_error_text (win));
  g_assert_cmpuint (strlen (_tessera_window_get_error_text (win)), >, 10);
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "generate"));

  /* The app stays alive and recovers when pointed at a good folder. */
  g_settings_set_string (s, "model-folder", model_dir);
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "ready") == 0, TIMEOUT_S);
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "generate"));

  /* No model chosen and no bundled one (the suite sets TESSERA_DEFAULT_MODEL to ""):
   * the how-to page. */
  g_settings_set_string (s, "model-folder", "");
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "empty") == 0, TIMEOUT_S);
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "generate"));

  /* No model chosen but a bundled one: it loads without being asked for. */
  g_setenv ("TESSERA_DEFAULT_MODEL", model_dir, TRUE);
  g_settings_set_string (s, "model-folder", model_dir);
  g_settings_set_string (s, "model-folder", "");
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "ready") == 0, TIMEOUT_S);
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "generate"));
  g_setenv ("TESSERA_DEFAULT_MODEL", "", TRUE);
  close_window (win);
}

/* A copy of the tiny model whose files are links to the originals, but for the component
 * named `broken`, whose folder is copied; returns the copy's path. */
static char *
model_copy_with (const char *name, const char *broken)
{
  static const char *const parts[] = { "model_index.json", "scheduler", "text_encoder", "tokenizer",
                                       "transformer", "vqvae" };
  g_autofree char *dst = g_build_filename (tmp_dir, name, NULL);

  g_assert_cmpint (g_mkdir_with_parents (dst, 0755), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      g_autofree char *from = g_build_filename (model_dir, parts[i], NULL);
      g_autofree char *to = g_build_filename (dst, parts[i], NULL);

      if (g_strcmp0 (parts[i], broken) != 0)
        {
          g_assert_cmpint (symlink (from, to), ==, 0);
          continue;
        }
      g_assert_cmpint (g_mkdir_with_parents (to, 0755), ==, 0);
      {
        g_autoptr (GDir) dir = g_dir_open (from, 0, NULL);
        const char *f;

        g_assert_nonnull (dir);
        while ((f = g_dir_read_name (dir)))
          {
            g_autofree char *a = g_build_filename (from, f, NULL);
            g_autofree char *b = g_build_filename (to, f, NULL);
            g_autofree char *data = NULL;
            gsize len;

            g_assert_true (g_file_get_contents (a, &data, &len, NULL));
            g_assert_true (g_file_set_contents (b, data, (gssize) len, NULL));
          }
      }
    }
  return g_steal_pointer (&dst);
}

/* Opens a window on `model` and waits for its load to fail; returns the message shown. */
static char *
model_error (const char *model)
{
  TesseraWindow *win = open_window (model);
  char *text;

  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "error");
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "generate"));
  text = g_strdup (_tessera_window_get_error_text (win));
  g_test_message ("%s: %s", model, text);
  close_window (win);
  return text;
}

/* The app survives what the CLI survives (issue 17): a FIFO named *.png (which used to
 * block the loading thread for ever), a checkpoint cut short and weights holding NaN.
 * Each is a clear message naming the file, and the app goes on. */
static void
test_hostile_inputs (void)
{
  g_autofree char *fifo = g_build_filename (tmp_dir, "fifo.png", NULL);
  g_autoptr (GFile) fifo_file = g_file_new_for_path (fifo);
  g_autofree char *truncated = model_copy_with ("truncated-model", "vqvae");
  g_autofree char *nan = model_copy_with ("nan-model", "vqvae");
  g_autofree char *message = NULL;
  TesseraWindow *win;
  guint toasts;

  /* A FIFO opened as an image: a toast names it, within seconds, with nobody writing. */
  g_assert_cmpint (mkfifo (fifo, 0644), ==, 0);
  win = open_ready_window ();
  toasts = _tessera_window_get_n_toasts (win);
  tessera_window_open_file (win, fifo_file);
  WAIT_FOR (_tessera_window_get_n_toasts (win) > toasts, 20);
  g_test_message ("toast: %s", _tessera_window_get_last_toast (win));
  g_assert_nonnull (strstr (_tessera_window_get_last_toast (win), "fifo.png"));
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "generate"));
  close_window (win);

  /* Both VQ-VAE checkpoints cut to half their size. */
  for (int fp16 = 0; fp16 < 2; fp16++)
    {
      g_autofree char *path = g_build_filename (truncated, "vqvae", fp16 ? "diffusion_pytorch_model.fp16.safetensors"
                                                                       : "diffusion_pytorch_model.safetensors", NULL);
      struct stat st;

      g_assert_cmpint (g_stat (path, &st), ==, 0);
      g_assert_cmpint (truncate (path, st.st_size / 2), ==, 0);
    }
  message = model_error (truncated);
  g_assert_nonnull (strstr (message, "diffusion_pytorch_model"));
  g_clear_pointer (&message, g_free);

  /* A NaN in the last element of the VQ-VAE's last tensor: the bytes 00 00 c0 7f are a NaN
   * as F32, and two elements of which the second is a NaN as F16 or BF16. */
  for (int fp16 = 0; fp16 < 2; fp16++)
    {
      g_autofree char *path = g_build_filename (nan, "vqvae", fp16 ? "diffusion_pytorch_model.fp16.safetensors"
                                                                 : "diffusion_pytorch_model.safetensors", NULL);
      static const unsigned char nan_bytes[4] = { 0x00, 0x00, 0xc0, 0x7f };
      FILE *f = fopen (path, "r+b");

      g_assert_nonnull (f);
      g_assert_cmpint (fseek (f, -4, SEEK_END), ==, 0);
      g_assert_cmpuint (fwrite (nan_bytes, 1, 4, f), ==, 4);
      g_assert_cmpint (fclose (f), ==, 0);
    }
  message = model_error (nan);
  g_assert_nonnull (strstr (message, "diffusion_pytorch_model"));
  g_assert_true (strstr (message, "NaN") || strstr (message, "non-finite") || strstr (message, "not finite"));
}

static void
test_generate (void)
{
  TesseraWindow *win = open_ready_window ();
  g_autoptr (GFile) file = NULL;
  g_autofree char *path = NULL;
  g_autoptr (ts_image) img = NULL;
  ts_image_meta meta;
  ts_error err;
  TesseraModelInfo *info = _tessera_window_get_model_info (win);
  const TesseraResult *result;
  GListModel *gallery;
  gboolean found = FALSE;
  double max_ms;
  guint count;
  double mean_ms;
  guint before = count_pngs ();

  file = generate (win, "a red fox in the snow", 6);
  g_assert_cmpuint (_tessera_window_get_n_step_updates (win), ==, 6);
  g_assert_nonnull (_tessera_window_get_canvas_paintable (win));
  g_assert_cmpuint (count_pngs (), ==, before + 1);

  result = _tessera_window_get_last_result (win);
  g_assert_nonnull (result);
  g_assert_cmpint (result->grid_w, ==, SIZE / (int) info->vae_scale_factor);
  for (int i = 0; i < result->grid_w * result->grid_h; i++)
    g_assert_cmpint (result->tokens[i], !=, info->mask_token_id);

  path = g_file_get_path (file);
  ts_image_meta_init (&meta);
  img = ts_image_load_png (path, &meta, &err);
  g_assert_nonnull (img);
  g_assert_cmpuint (img->width, ==, SIZE);
  g_assert_cmpuint (img->height, ==, SIZE);
  g_assert_cmpstr (meta.prompt, ==, "a red fox in the snow");
  g_assert_cmpuint (meta.steps, ==, 6);
  g_assert_cmpuint (meta.width, ==, SIZE);
  g_assert_cmpfloat_with_epsilon (meta.cfg, 9.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (meta.temperature_start, 2.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (meta.aesthetic_score, 6.0, 1e-9);
  g_assert_cmpstr (meta.model, ==, info->name);
  g_assert_cmpstr (meta.backend, ==, info->backend);
  /* the precision in force (auto means fp32 in the tests, TESSERA_PRECISION) */
  g_assert_cmpstr (meta.precision, ==, info->precision);
  g_assert_cmpstr (meta.precision, ==, "fp32");
  {
    g_autoptr (GSettings) s = settings ();
    g_assert_cmpuint (meta.seed, ==, g_settings_get_uint64 (s, "seed"));
  }
  ts_image_meta_clear (&meta);

  /* The gallery picks it up, newest first. */
  gallery = tessera_gallery_get_model (_tessera_window_get_gallery (win));
  WAIT_FOR (g_list_model_get_n_items (gallery) > before, TIMEOUT_S);
  {
    g_autoptr (TesseraGalleryItem) first = g_list_model_get_item (gallery, 0);
    found = g_file_equal (tessera_gallery_item_get_file (first), file);
  }
  g_assert_true (found);

  mean_ms = _tessera_window_get_preview_ms (win, &max_ms, &count);
  g_test_message ("preview texture per step: mean %.3f ms, max %.3f ms over %u builds (%dx%d tokens)",
                  mean_ms, max_ms, count, result->grid_w, result->grid_h);
  close_window (win);
}

static void
test_cancel (void)
{
  TesseraWindow *win = open_ready_window ();
  guint before = count_pngs ();
  guint updates;

  /* Cancel at once: the worker polls before every step, so it stops within a step or
   * two however busy the machine is (waiting for step updates first raced a starved
   * main loop on a loaded machine: the worker could finish before the cancel arrived). */
  _tessera_window_set_prompt (win, "a lighthouse at dusk");
  set_steps (win, 200);
  activate (win, "generate");
  g_assert_true (_tessera_window_is_running (win));
  /* Generate queues the next image during a run (tests/ui/test-queue.c). */
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "generate"));
  activate (win, "cancel");
  WAIT_FOR (!_tessera_window_is_running (win), TIMEOUT_S);
  updates = _tessera_window_get_n_step_updates (win);
  g_assert_cmpuint (updates, <, 200);
  g_test_message ("cancelled after %u of 200 steps: %s", updates, _tessera_window_get_status_text (win));
  g_assert_nonnull (strstr (_tessera_window_get_status_text (win), "Cancelled"));
  /* The partial state stays on screen and nothing is written. */
  g_assert_nonnull (_tessera_window_get_canvas_paintable (win));
  g_assert_cmpuint (_tessera_window_get_n_saved (win), ==, 0);
  g_assert_cmpuint (count_pngs (), ==, before);
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "generate"));
  close_window (win);
}

static void
test_finish_now (void)
{
  TesseraWindow *win = open_ready_window ();
  TesseraModelInfo *info = _tessera_window_get_model_info (win);
  const TesseraResult *result;

  _tessera_window_set_prompt (win, "a bowl of lemons");
  set_steps (win, 60);
  activate (win, "generate");
  WAIT_FOR (_tessera_window_get_n_step_updates (win) >= 2, TIMEOUT_S);
  activate (win, "finish-now");
  WAIT_FOR (!_tessera_window_is_running (win) && _tessera_window_get_n_saved (win) == 1, TIMEOUT_S);
  g_assert_cmpuint (_tessera_window_get_n_step_updates (win), <, 60);
  result = _tessera_window_get_last_result (win);
  g_assert_nonnull (result);
  for (int i = 0; i < result->grid_w * result->grid_h; i++)
    g_assert_cmpint (result->tokens[i], !=, info->mask_token_id);
  close_window (win);
}

static void
test_reopen (void)
{
  TesseraWindow *win = open_ready_window ();
  g_autoptr (GFile) file = generate (win, "a paper boat on a pond", 5);
  g_autoptr (GSettings) s = settings ();
  guint64 seed = g_settings_get_uint64 (s, "seed");
  g_autofree char *prompt = NULL;
  guint opened = _tessera_window_get_n_opened (win);

  _tessera_window_set_prompt (win, "something else");
  set_steps (win, 17);
  g_settings_set_boolean (s, "seed-locked", FALSE);
  tessera_window_open_file (win, file);
  WAIT_FOR (_tessera_window_get_n_opened (win) > opened, TIMEOUT_S);
  prompt = _tessera_window_dup_prompt (win);
  g_assert_cmpstr (prompt, ==, "a paper boat on a pond");
  g_assert_cmpint (g_settings_get_int (s, "steps"), ==, 5);
  g_assert_true (g_settings_get_boolean (s, "seed-locked"));

  /* Generating again reuses the seed: the same image. */
  {
    g_autoptr (GFile) again = generate (win, "a paper boat on a pond", 5);
    g_autofree char *a = NULL, *b = NULL;
    gsize la, lb;
    ts_image_meta m;
    ts_error err;
    g_autofree char *p1 = g_file_get_path (file), *p2 = g_file_get_path (again);
    g_autoptr (ts_image) i1 = ts_image_load_png (p1, NULL, &err);
    g_autoptr (ts_image) i2 = ts_image_load_png (p2, &m, &err);

    (void) a; (void) b; (void) la; (void) lb;
    g_assert_nonnull (i1);
    g_assert_nonnull (i2);
    g_assert_cmpuint (m.seed, ==, seed);
    g_assert_cmpmem (i1->pixels, (gsize) SIZE * SIZE * 3, i2->pixels, (gsize) SIZE * SIZE * 3);
    ts_image_meta_clear (&m);
  }
  close_window (win);
}

static void
test_inpaint (void)
{
  TesseraWindow *win = open_ready_window ();
  g_autoptr (GFile) source = generate (win, "a quiet street", 5);
  TesseraInpaintView *view = _tessera_window_get_inpaint_view (win);
  TesseraMaskEditor *editor = tessera_inpaint_view_get_editor (view);
  TesseraModelInfo *info = _tessera_window_get_model_info (win);
  guint f = info->vae_scale_factor, g = SIZE / f;
  g_autofree char *src_path = g_file_get_path (source);
  g_autoptr (ts_image) src = NULL;
  g_autofree int32_t *src_tokens = NULL;
  const TesseraResult *result;
  guint saved;
  int changed = 0;
  ts_error err;
  ts_model_load_params lp;
  ts_model *model;

  _tessera_window_inpaint_file (win, source);
  WAIT_FOR (tessera_inpaint_view_get_source_image (view) != NULL, TIMEOUT_S);
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "inpaint-run"));

  /* A stroke along the top-left: a brush of 1.5 cells paints whole cells in the first two
   * rows and columns; exactly the cells with at least half their pixels set count. */
  tessera_mask_editor_set_brush_size (editor, 1.5 * f);
  tessera_mask_editor_begin_stroke (editor);
  tessera_mask_editor_paint_line (editor, 0.75 * f, 0.75 * f, 3.25 * f, 0.75 * f);
  g_assert_cmpuint (tessera_mask_editor_count_cells (editor), >, 0);
  g_assert_true (tessera_mask_editor_cell_is_masked (editor, 0, 0));
  g_assert_false (tessera_mask_editor_cell_is_masked (editor, g - 1, g - 1));
  /* Undo and redo the stroke. */
  g_assert_true (tessera_mask_editor_undo (editor));
  g_assert_cmpuint (tessera_mask_editor_count_cells (editor), ==, 0);
  tessera_mask_editor_begin_stroke (editor);
  tessera_mask_editor_paint_line (editor, 0.75 * f, 0.75 * f, 3.25 * f, 0.75 * f);

  tessera_inpaint_view_set_prompt (view, "a red door");
  tessera_inpaint_view_set_strength (view, 1.0);
  saved = _tessera_window_get_n_saved (win);
  activate (win, "inpaint-run");
  WAIT_FOR (!_tessera_window_is_running (win) && _tessera_window_get_n_saved (win) > saved, TIMEOUT_S);
  g_assert_cmpuint (_tessera_window_get_n_step_updates (win), >, 0);
  result = _tessera_window_get_last_result (win);
  g_assert_nonnull (result);
  /* The mask was cleared for the next repaint, as one undo step: take it back. */
  g_assert_cmpuint (tessera_mask_editor_count_cells (editor), ==, 0);
  g_assert_true (tessera_mask_editor_undo (editor));
  g_assert_cmpuint (tessera_mask_editor_count_cells (editor), >, 0);

  /* Compare with the source's own tokens, encoded by the engine as ts_model_inpaint does. */
  ts_model_load_params_init (&lp);
  model = ts_model_load (model_dir, &lp, &err);
  g_assert_nonnull (model);
  src = ts_image_load_png (src_path, NULL, &err);
  g_assert_nonnull (src);
  src_tokens = g_new (int32_t, g * g);
  g_assert_cmpint (ts_model_encode (model, src, src_tokens, &err), ==, TS_OK);
  ts_model_free (model);
  for (guint gy = 0; gy < g; gy++)
    for (guint gx = 0; gx < g; gx++)
      {
        guint i = gy * g + gx;

        if (tessera_mask_editor_cell_is_masked (editor, gx, gy))
          changed += result->tokens[i] != src_tokens[i];
        else
          g_assert_cmpint (result->tokens[i], ==, src_tokens[i]);
      }
  g_test_message ("inpainting changed %d of %u masked tokens", changed, tessera_mask_editor_count_cells (editor));
  g_assert_cmpint (changed, >, 0);

  {
    g_autofree char *out = g_file_get_path (_tessera_window_get_last_saved (win));
    g_autofree char *base = g_file_get_basename (source);
    ts_image_meta m;
    g_autoptr (ts_image) img = ts_image_load_png (out, &m, &err);

    g_assert_nonnull (img);
    g_assert_cmpstr (m.source, ==, base);
    g_assert_cmpfloat_with_epsilon (m.strength, 1.0, 1e-9);
    g_assert_cmpstr (m.prompt, ==, "a red door");
    ts_image_meta_clear (&m);
  }
  close_window (win);
}

static gboolean
gallery_has (TesseraGallery *gallery, GFile *file)
{
  GListModel *model = tessera_gallery_get_model (gallery);

  for (guint i = 0; i < g_list_model_get_n_items (model); i++)
    {
      g_autoptr (TesseraGalleryItem) item = g_list_model_get_item (model, i);

      if (g_file_equal (tessera_gallery_item_get_file (item), file))
        return TRUE;
    }
  return FALSE;
}

static void
test_gallery_delete (void)
{
  TesseraWindow *win = open_ready_window ();
  TesseraGallery *gallery = _tessera_window_get_gallery (win);
  g_autoptr (GFile) file = generate (win, "a small cactus", 4);
  g_autofree char *path = g_file_get_path (file);

  WAIT_FOR (gallery_has (gallery, file), TIMEOUT_S);
  tessera_gallery_select_file (gallery, file);
  g_assert_nonnull (tessera_gallery_get_selected (gallery));
  tessera_gallery_delete_selected (gallery);
  WAIT_FOR (!gallery_has (gallery, file), TIMEOUT_S);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  g_test_message ("toast: %s", _tessera_window_get_last_toast (win));

  /* Undo puts the very file back, and the gallery shows it again. */
  tessera_gallery_undo_delete (gallery);
  WAIT_FOR (gallery_has (gallery, file), TIMEOUT_S);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  close_window (win);
}

/* What a key press does through the application's accelerators: the action that
 * gtk_application_set_accels_for_action gave the key, activated as the window's shortcut
 * controller would, which it only does when the action is enabled. */
static void
press_accel (TesseraWindow *win, const char *accel)
{
  g_auto (GStrv) actions = gtk_application_get_actions_for_accel (app, accel);
  g_autofree char *name = NULL;
  g_autoptr (GVariant) target = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_nonnull (actions);
  g_assert_cmpuint (g_strv_length (actions), ==, 1);
  g_assert_true (g_action_parse_detailed_name (actions[0], &name, &target, &error));
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (name, "win."));
  activate_with (win, name + 4, target);
}

static gboolean
accel_enabled (TesseraWindow *win, const char *accel)
{
  g_auto (GStrv) actions = gtk_application_get_actions_for_accel (app, accel);
  g_autofree char *name = NULL;
  g_autoptr (GVariant) target = NULL;

  g_assert_true (actions && actions[0]);
  g_assert_true (g_action_parse_detailed_name (actions[0], &name, &target, NULL));
  return g_action_group_get_action_enabled (G_ACTION_GROUP (win), name + 4);
}

/* A key press on widget through its class's key bindings (GtkWidgetClass shortcuts, which
 * a focused text field would take first): the binding for keyval without modifiers. */
static void
press_binding (GtkWidget *widget, guint keyval)
{
  g_autoptr (GListModel) controllers = gtk_widget_observe_controllers (widget);

  for (guint i = 0; i < g_list_model_get_n_items (controllers); i++)
    {
      g_autoptr (GObject) c = g_list_model_get_item (controllers, i);

      if (!GTK_IS_SHORTCUT_CONTROLLER (c))
        continue;
      for (guint j = 0; j < g_list_model_get_n_items (G_LIST_MODEL (c)); j++)
        {
          g_autoptr (GtkShortcut) sc = g_list_model_get_item (G_LIST_MODEL (c), j);
          GtkShortcutTrigger *trigger = gtk_shortcut_get_trigger (sc);

          if (GTK_IS_KEYVAL_TRIGGER (trigger) && gtk_keyval_trigger_get_keyval (GTK_KEYVAL_TRIGGER (trigger)) == keyval &&
              gtk_keyval_trigger_get_modifiers (GTK_KEYVAL_TRIGGER (trigger)) == 0)
            {
              g_assert_true (gtk_shortcut_action_activate (gtk_shortcut_get_action (sc), GTK_SHORTCUT_ACTION_EXCLUSIVE,
                                                           widget, gtk_shortcut_get_arguments (sc)));
              return;
            }
        }
    }
  g_error ("no binding for %s on %s", gdk_keyval_name (keyval), G_OBJECT_TYPE_NAME (widget));
}

static GtkWidget *
find_descendant (GtkWidget *widget, GType type)
{
  if (G_TYPE_CHECK_INSTANCE_TYPE (widget, type))
    return widget;
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c; c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *found = find_descendant (c, type);

      if (found)
        return found;
    }
  return NULL;
}

/* The accelerators a shortcuts window shows, each followed by ';'. */
static void
collect_accels (GtkWidget *widget, GString *out)
{
  if (GTK_IS_SHORTCUTS_SHORTCUT (widget))
    {
      g_autofree char *accel = NULL;

      g_object_get (widget, "accelerator", &accel, NULL);
      if (accel)
        g_string_append_printf (out, "%s;", accel);
    }
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c; c = gtk_widget_get_next_sibling (c))
    collect_accels (c, out);
}

static gboolean
selected_with_meta (TesseraGallery *gallery, GFile *file)
{
  TesseraGalleryItem *item;

  tessera_gallery_select_file (gallery, file);
  item = tessera_gallery_get_selected (gallery);
  return item && tessera_gallery_item_get_meta (item) != NULL;
}

static const char *
visible_page (TesseraWindow *win)
{
  GtkWidget *stack = gtk_widget_get_ancestor (GTK_WIDGET (_tessera_window_get_gallery (win)), ADW_TYPE_VIEW_STACK);

  return adw_view_stack_get_visible_child_name (ADW_VIEW_STACK (stack));
}

/* Issue 16, item 4: focus starts in the prompt; Alt+1/2/3; Enter on a gallery item;
 * Ctrl+Z after a delete; `[` and `]`. */
static void
test_keyboard (void)
{
  TesseraWindow *win = open_ready_window ();
  TesseraGallery *gallery = _tessera_window_get_gallery (win);
  TesseraInpaintView *view = _tessera_window_get_inpaint_view (win);
  GtkWidget *focus;
  g_autoptr (GFile) file = NULL;
  g_autofree char *path = NULL;
  double brush;

  /* Not the header's Open button: typing goes into the prompt. */
  WAIT_FOR (tessera_generate_page_prompt_has_focus (_tessera_window_get_generate_page (win)), 10);
  focus = gtk_root_get_focus (GTK_ROOT (win));
  g_assert_true (GTK_IS_TEXT_VIEW (focus));
  g_assert_true (gtk_widget_is_ancestor (focus, GTK_WIDGET (_tessera_window_get_generate_page (win))));

  press_accel (win, "<Alt>2");
  g_assert_cmpstr (visible_page (win), ==, "gallery");
  press_accel (win, "<Alt>3");
  g_assert_cmpstr (visible_page (win), ==, "inpaint");
  press_accel (win, "<Alt>1");
  g_assert_cmpstr (visible_page (win), ==, "generate");

  /* Ctrl+Z is free for text fields and the mask editor until something is deleted. */
  g_assert_false (accel_enabled (win, "<Control>z"));
  file = generate (win, "a small cactus", 4);
  path = g_file_get_path (file);
  WAIT_FOR (gallery_has (gallery, file), TIMEOUT_S);

  /* Enter (the grid's "activate") opens the item in the viewer; Escape closes it. */
  press_accel (win, "<Alt>2");
  {
    GtkWidget *grid = find_descendant (GTK_WIDGET (gallery), GTK_TYPE_GRID_VIEW);

    g_assert_nonnull (grid);
    /* The file monitor may refresh the new item (and drop the selection) meanwhile. */
    WAIT_FOR (selected_with_meta (gallery, file), TIMEOUT_S);
    g_signal_emit_by_name (grid, "activate", 0u);
    g_assert_nonnull (tessera_gallery_get_viewer (gallery));
    press_binding (GTK_WIDGET (tessera_gallery_get_viewer (gallery)), GDK_KEY_Escape);
    g_assert_null (tessera_gallery_get_viewer (gallery));
  }

  /* Ctrl+Z while the delete toast shows puts the file back. */
  tessera_gallery_select_file (gallery, file);
  tessera_gallery_delete_selected (gallery);
  WAIT_FOR (!gallery_has (gallery, file) && accel_enabled (win, "<Control>z"), TIMEOUT_S);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  press_accel (win, "<Control>z");
  WAIT_FOR (gallery_has (gallery, file), TIMEOUT_S);
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  g_assert_false (accel_enabled (win, "<Control>z"));

  /* `]` grows the brush and `[` shrinks it. */
  press_accel (win, "<Alt>3");
  brush = tessera_inpaint_view_get_brush_size (view);
  press_binding (GTK_WIDGET (view), GDK_KEY_bracketright);
  g_test_message ("brush %g -> %g", brush, tessera_inpaint_view_get_brush_size (view));
  g_assert_cmpfloat (tessera_inpaint_view_get_brush_size (view), >, brush);
  press_binding (GTK_WIDGET (view), GDK_KEY_bracketleft);
  press_binding (GTK_WIDGET (view), GDK_KEY_bracketleft);
  g_assert_cmpfloat (tessera_inpaint_view_get_brush_size (view), <, brush);

  /* The shortcuts window lists them, and no raw key name such as "KP_Enter". */
  {
    GtkShortcutsWindow *help = gtk_application_window_get_help_overlay (GTK_APPLICATION_WINDOW (win));
    g_autoptr (GString) all = g_string_new ("");

    g_assert_nonnull (help);
    collect_accels (GTK_WIDGET (help), all);
    g_test_message ("shortcuts window: %s", all->str);
    g_assert_null (strstr (all->str, "KP_"));
    for (const char *const *a = (const char *const[]) { "<Control>Return", "<Alt>2", "bracketright", "bracketleft",
                                                       "<Control>z", "Return;", NULL };
         *a; a++)
      g_assert_nonnull (strstr (all->str, *a));
  }
  close_window (win);
}

static void
test_dialogs (void)
{
  TesseraWindow *win = open_window ("");
  GtkWindow *other;
  guint n_before = g_list_length (gtk_application_get_windows (app));

  g_action_group_activate_action (G_ACTION_GROUP (app), "preferences", NULL);
  WAIT_FOR (g_list_length (gtk_application_get_windows (app)) > n_before ||
            g_list_model_get_n_items (gtk_window_get_toplevels ()) > 1, 10);
  g_action_group_activate_action (G_ACTION_GROUP (app), "about", NULL);
  g_action_group_activate_action (G_ACTION_GROUP (win), "show-help-overlay", NULL);
  WAIT_FOR (g_list_model_get_n_items (gtk_window_get_toplevels ()) >= 4, 10);
  /* Close every window but the main one. */
  while (g_list_model_get_n_items (gtk_window_get_toplevels ()) > 1)
    {
      GListModel *tops = gtk_window_get_toplevels ();

      for (guint i = 0; i < g_list_model_get_n_items (tops); i++)
        {
          other = g_list_model_get_item (tops, i);
          g_object_unref (other);
          if (other != GTK_WINDOW (win))
            {
              gtk_window_destroy (other);
              break;
            }
        }
      g_main_context_iteration (NULL, FALSE);
    }
  close_window (win);
}

/* The colour table: computed after the load without holding up a generation queued right
 * behind it (the table's job yields between chunks), then read back from the cache. */
static void
test_palette (void)
{
  TesseraWindow *win = open_ready_window ();
  TesseraModelInfo *info = _tessera_window_get_model_info (win);
  g_autoptr (GBytes) first = NULL;
  g_autoptr (GHashTable) colours = g_hash_table_new (NULL, NULL);
  GBytes *palette = NULL;
  double seconds = 0;
  const guint8 *rgb;
  gsize len;

  /* The fresh cache (main() points XDG_CACHE_HOME at a new folder) means the table is
   * still being computed: the generation queues behind its first chunk at most. */
  g_assert_cmpfloat (_tessera_window_get_palette (win, NULL, NULL), <, 1.0);
  g_autoptr (GFile) file = generate (win, "a field of sunflowers", 4);
  WAIT_FOR (_tessera_window_get_palette (win, NULL, NULL) >= 1.0, TIMEOUT_S);
  _tessera_window_get_palette (win, &palette, &seconds);
  rgb = g_bytes_get_data (palette, &len);
  g_assert_cmpuint (len, ==, (gsize) info->codebook_size * 3);
  for (int i = 0; i < info->codebook_size; i++)
    g_hash_table_add (colours, GUINT_TO_POINTER (rgb[3 * i] << 16 | rgb[3 * i + 1] << 8 | rgb[3 * i + 2]));
  g_test_message ("colour table: %d codes, %u distinct colours, %.3f s of VQ decoding", info->codebook_size,
                  g_hash_table_size (colours), seconds);
  g_assert_cmpfloat (seconds, >, 0);
  /* Codes decode to different colours (random weights, but not a constant table). */
  g_assert_cmpuint (g_hash_table_size (colours), >, (guint) info->codebook_size / 4);
  first = g_bytes_ref (palette);
  close_window (win);

  /* From the cache: the same table, no decoding. */
  win = open_ready_window ();
  WAIT_FOR (_tessera_window_get_palette (win, NULL, NULL) >= 1.0, TIMEOUT_S);
  _tessera_window_get_palette (win, &palette, &seconds);
  g_assert_cmpfloat (seconds, ==, 0);
  g_assert_true (g_bytes_equal (palette, first));
  close_window (win);
}

/* "Restart the app to find everything still there": settings on a keyfile backend in a
 * temporary folder, a window that is configured and generates, then a new backend read
 * from that file (what a new process would see) and a new window on it. */
static void
test_restart (void)
{
  g_autofree char *keyfile = g_build_filename (tmp_dir, "restart", "settings.ini", NULL);
  g_autofree char *gallery2 = g_build_filename (tmp_dir, "restart-gallery", NULL);
  g_autofree char *keyfile_text = NULL;
  g_autofree char *prompt = NULL;
  g_autofree char *negative = NULL;
  g_autoptr (GSettingsBackend) backend = g_keyfile_settings_backend_new (keyfile, "/", NULL);
  g_autoptr (GSettings) s = g_settings_new_with_backend ("io.github.tessera.Tessera", backend);
  g_autoptr (GFile) file = NULL;
  TesseraWindow *win;
  GListModel *gallery;
  guint64 seed;
  guint w = 0, h = 0;

  /* What a user sets in the preferences and the form. */
  g_settings_set_string (s, "model-folder", model_dir);
  g_settings_set_string (s, "gallery-folder", gallery2);
  g_settings_set_int (s, "steps", 5);
  g_settings_set_double (s, "guidance", 7.5);
  g_settings_set_double (s, "temperature-start", 1.5);
  g_settings_set_double (s, "aesthetic-score", 5.5);
  g_settings_set_boolean (s, "seed-locked", TRUE);
  g_settings_set_string (s, "preview-mode", "confidence");
  win = g_object_new (TESSERA_TYPE_WINDOW, "application", app, "settings", s, NULL);
  gtk_window_present (GTK_WINDOW (win));
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "ready");
  g_assert_true (_tessera_window_select_size (win, SIZE, SIZE));
  {
    GtkTextView *neg = GTK_TEXT_VIEW (gtk_widget_get_template_child (GTK_WIDGET (_tessera_window_get_generate_page (win)),
                                                                     TESSERA_TYPE_GENERATE_PAGE, "negative_view"));
    gtk_text_buffer_set_text (gtk_text_view_get_buffer (neg), "blurry", -1);
  }
  _tessera_window_set_prompt (win, "an old tram in the rain");
  activate (win, "generate");
  WAIT_FOR (!_tessera_window_is_running (win) && _tessera_window_get_n_saved (win) > 0, TIMEOUT_S);
  file = g_object_ref (_tessera_window_get_last_saved (win));
  seed = g_settings_get_uint64 (s, "seed");
  close_window (win);
  g_settings_sync ();
  g_clear_object (&s);
  g_clear_object (&backend);

  g_assert_true (g_file_get_contents (keyfile, &keyfile_text, NULL, NULL));
  g_assert_nonnull (strstr (keyfile_text, "model-folder"));

  /* The restart. */
  backend = g_keyfile_settings_backend_new (keyfile, "/", NULL);
  s = g_settings_new_with_backend ("io.github.tessera.Tessera", backend);
  win = g_object_new (TESSERA_TYPE_WINDOW, "application", app, "settings", s, NULL);
  gtk_window_present (GTK_WINDOW (win));
  /* The model loads from the remembered folder by itself. */
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "loading");
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "ready");
  g_assert_cmpstr (_tessera_window_get_model_info (win)->path, ==, model_dir);
  /* The form as it was. */
  prompt = _tessera_window_dup_prompt (win);
  g_assert_cmpstr (prompt, ==, "an old tram in the rain");
  negative = g_settings_get_string (s, "negative-prompt");
  g_assert_cmpstr (negative, ==, "blurry");
  _tessera_window_get_selected_size (win, &w, &h);
  g_assert_cmpuint (w, ==, SIZE);
  g_assert_cmpuint (h, ==, SIZE);
  g_assert_cmpint (g_settings_get_int (s, "steps"), ==, 5);
  g_assert_cmpfloat (g_settings_get_double (s, "guidance"), ==, 7.5);
  g_assert_cmpfloat (g_settings_get_double (s, "temperature-start"), ==, 1.5);
  g_assert_cmpfloat (g_settings_get_double (s, "aesthetic-score"), ==, 5.5);
  g_assert_true (g_settings_get_boolean (s, "seed-locked"));
  g_assert_cmpuint (g_settings_get_uint64 (s, "seed"), ==, seed);
  {
    g_autofree char *mode = g_settings_get_string (s, "preview-mode");
    g_assert_cmpstr (mode, ==, "confidence");
  }
  {
    GtkWidget *page = GTK_WIDGET (_tessera_window_get_generate_page (win));
    GtkAdjustment *steps = GTK_ADJUSTMENT (gtk_widget_get_template_child (page, TESSERA_TYPE_GENERATE_PAGE,
                                                                          "steps_adjustment"));
    g_assert_cmpfloat (gtk_adjustment_get_value (steps), ==, 5);
    g_assert_cmpuint (tessera_generate_page_get_seed (TESSERA_GENERATE_PAGE (page)), ==, seed);
  }
  /* The gallery lists the image with its parameters. */
  gallery = tessera_gallery_get_model (_tessera_window_get_gallery (win));
  WAIT_FOR (gallery_has (_tessera_window_get_gallery (win), file), TIMEOUT_S);
  {
    g_autoptr (TesseraGalleryItem) item = g_list_model_get_item (gallery, 0);
    const TesseraImageMeta *meta;

    g_assert_true (g_file_equal (tessera_gallery_item_get_file (item), file));
    WAIT_FOR ((meta = tessera_gallery_item_get_meta (item)) != NULL, TIMEOUT_S);
    g_assert_cmpstr (meta->prompt, ==, "an old tram in the rain");
    g_assert_cmpstr (meta->negative_prompt, ==, "blurry");
    g_assert_cmpuint (meta->steps, ==, 5);
    g_assert_cmpfloat (meta->cfg, ==, 7.5);
    g_assert_cmpuint (meta->seed, ==, seed);
  }
  close_window (win);
}

/* ---- screenshots ---- */

static void
screenshot (TesseraWindow *win, const char *name)
{
  const char *dir = g_getenv ("TESSERA_SCREENSHOT_DIR");
  g_autofree char *path = NULL;
  g_autoptr (GdkPaintable) paintable = NULL;
  g_autoptr (GtkSnapshot) snapshot = NULL;
  g_autoptr (GskRenderNode) node = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  int w, h;
  guint frames = 0;
  GdkFrameClock *clock;

  GtkStack *model_stack = GTK_STACK (gtk_widget_get_template_child (GTK_WIDGET (_tessera_window_get_generate_page (win)),
                                                                    TESSERA_TYPE_GENERATE_PAGE, "model_stack"));
  gint64 frame0, t0;

  if (!dir)
    return;
  g_mkdir_with_parents (dir, 0755);
  WAIT_FOR (gtk_widget_get_mapped (GTK_WIDGET (win)) && gtk_widget_get_width (GTK_WIDGET (win)) > 0, 10);
  g_assert_cmpint (gtk_widget_get_width (GTK_WIDGET (win)), ==, SHOT_W);
  g_assert_cmpint (gtk_widget_get_height (GTK_WIDGET (win)), ==, SHOT_H);
  /* Toasts time out after 5 s; dismissing them early trips a libadwaita 1.2 crash. */
  WAIT_FOR (_tessera_window_get_n_toasts (win) == 0, 30);
  /* Let layout, transitions and animations (about 250 ms in libadwaita) settle. */
  clock = gtk_widget_get_frame_clock (GTK_WIDGET (win));
  frame0 = gdk_frame_clock_get_frame_counter (clock);
  t0 = g_get_monotonic_time ();
  WAIT_FOR (!gtk_stack_get_transition_running (model_stack) && g_get_monotonic_time () - t0 > 600000, 10);
  gtk_widget_queue_draw (GTK_WIDGET (win));
  WAIT_FOR ((frames = (guint) (gdk_frame_clock_get_frame_counter (clock) - frame0)) >= 1, 10);
  WAIT_FOR (gtk_widget_get_mapped (GTK_WIDGET (win)), 10);
  w = gtk_widget_get_width (GTK_WIDGET (win));
  h = gtk_widget_get_height (GTK_WIDGET (win));
  paintable = gtk_widget_paintable_new (GTK_WIDGET (win));
  /* The paintable is empty until the window has drawn once: give it frames until then. */
  for (int attempt = 0; attempt < 50 && !node; attempt++)
    {
      snapshot = gtk_snapshot_new ();
      gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
      node = gtk_snapshot_free_to_node (g_steal_pointer (&snapshot));
      if (!node)
        {
          gint64 f0 = gdk_frame_clock_get_frame_counter (clock);

          gtk_widget_queue_draw (GTK_WIDGET (win));
          WAIT_FOR (gdk_frame_clock_get_frame_counter (clock) > f0, 10);
        }
    }
  g_assert_nonnull (node);
  texture = gsk_renderer_render_texture (gtk_native_get_renderer (GTK_NATIVE (win)), node,
                                         &GRAPHENE_RECT_INIT (0, 0, w, h));
  path = g_build_filename (dir, name, NULL);
  g_assert_true (gdk_texture_save_to_png (texture, path));
  g_test_message ("screenshot %s (%dx%d)", path, w, h);
}

static void
test_screenshots (void)
{
  TesseraWindow *win;
  TesseraInpaintView *view;
  TesseraMaskEditor *editor;
  g_autoptr (GFile) last = NULL;
  g_autoptr (GSettings) s = settings ();
  guint f;

  if (!g_getenv ("TESSERA_SCREENSHOT_DIR"))
    {
      g_test_skip ("TESSERA_SCREENSHOT_DIR not set");
      return;
    }
  /* Screenshots are of the window at exactly SHOT_W x SHOT_H. Without a compositor
   * (Xvfb) a client-side-decorated window keeps a 5 px border for its resize handles
   * inside its size, and GTK keeps a window within the monitor (1280x800 here), so the
   * window would draw its content at 1270x790. This test's windows are undecorated, as a
   * maximized window is (the header bar and its window buttons are the app's own), and a
   * user style sheet drops the border's CSS. */
  undecorated = TRUE;
  {
    g_autoptr (GtkCssProvider) css = gtk_css_provider_new ();
    gtk_css_provider_load_from_data (css, "window.csd, window.solid-csd { margin: 0; padding: 0; box-shadow: none; border-width: 0; }", -1);
    gtk_style_context_add_provider_for_display (gdk_display_get_default (), GTK_STYLE_PROVIDER (css), GTK_STYLE_PROVIDER_PRIORITY_USER);
  }
  win = open_window ("");
  WAIT_FOR (gtk_widget_get_width (GTK_WIDGET (win)) > 0, 10);
  screenshot (win, "empty.png");
  close_window (win);

  win = open_ready_window ();
  /* The model's default size (1024 px, 64x64 tokens) for the live view: slow enough to
   * catch mid-run, and the preview timing at the real grid size. */
  {
    TesseraModelInfo *info = _tessera_window_get_model_info (win);
    g_assert_true (_tessera_window_select_size (win, info->default_width, info->default_height));
  }
  _tessera_window_set_prompt (win, "a watercolor lighthouse on a cliff at dusk, seagulls, soft light");
  set_steps (win, 48);
  activate (win, "generate");
  WAIT_FOR (_tessera_window_get_n_step_updates (win) >= 12, TIMEOUT_S);
  screenshot (win, "generating.png");
  activate (win, "cancel");
  WAIT_FOR (!_tessera_window_is_running (win), TIMEOUT_S);

  g_settings_set_string (s, "preview-mode", "confidence");
  screenshot (win, "cancelled-confidence.png");
  g_settings_set_string (s, "preview-mode", "predicted");
  screenshot (win, "cancelled-prediction.png");
  g_settings_set_string (s, "preview-mode", "tokens");
  {
    double max_ms;
    guint count;
    double mean = _tessera_window_get_preview_ms (win, &max_ms, &count);
    g_test_message ("preview texture at 64x64 tokens: mean %.3f ms, max %.3f ms over %u builds", mean, max_ms, count);
  }
  g_assert_true (_tessera_window_select_size (win, SIZE, SIZE));

  g_clear_object (&last);
  last = generate (win, "a watercolor lighthouse on a cliff at dusk", 6);
  screenshot (win, "generated.png");

  adw_view_stack_set_visible_child_name (ADW_VIEW_STACK (gtk_widget_get_template_child (GTK_WIDGET (win), TESSERA_TYPE_WINDOW, "view_stack")), "gallery");
  tessera_gallery_select_file (_tessera_window_get_gallery (win), last);
  WAIT_FOR (tessera_gallery_get_selected (_tessera_window_get_gallery (win)) &&
            tessera_gallery_item_get_meta (tessera_gallery_get_selected (_tessera_window_get_gallery (win))), TIMEOUT_S);
  screenshot (win, "gallery.png");
  adw_style_manager_set_color_scheme (adw_style_manager_get_default (), ADW_COLOR_SCHEME_FORCE_DARK);
  screenshot (win, "gallery-dark.png");
  adw_style_manager_set_color_scheme (adw_style_manager_get_default (), ADW_COLOR_SCHEME_DEFAULT);

  view = _tessera_window_get_inpaint_view (win);
  editor = tessera_inpaint_view_get_editor (view);
  _tessera_window_inpaint_file (win, last);
  WAIT_FOR (tessera_inpaint_view_get_source_image (view) != NULL, TIMEOUT_S);
  f = _tessera_window_get_model_info (win)->vae_scale_factor;
  tessera_mask_editor_set_brush_size (editor, 2.2 * f);
  tessera_mask_editor_begin_stroke (editor);
  tessera_mask_editor_paint_line (editor, 4.0 * f, 5.0 * f, 11.0 * f, 9.0 * f);
  screenshot (win, "inpainting.png");
  close_window (win);

  /* The bundled demo model, as a first start sees it: no folder chosen and no size or
   * guidance set, so it loads with its own size and guidance, and draws its shapes. */
  g_assert_nonnull (demo_model_dir);
  g_settings_reset (s, "image-sizes");
  g_settings_reset (s, "guidance");
  g_setenv ("TESSERA_DEFAULT_MODEL", demo_model_dir, TRUE);
  win = open_window ("");
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "ready");
  g_assert_cmpfloat (g_settings_get_double (s, "guidance"), ==, 1.5);
  {
    guint w, h;
    _tessera_window_get_selected_size (win, &w, &h);
    g_assert_cmpuint (w, ==, 128);
    g_assert_cmpuint (h, ==, 128);
  }
  g_clear_object (&last);
  last = generate (win, "a large red circle on the left, blue background", 48);
  screenshot (win, "demo-model.png");
  close_window (win);
  g_setenv ("TESSERA_DEFAULT_MODEL", "", TRUE);
}

/* Each model gets back the size last chosen with it, or its own default: 256 px chosen
 * for the tiny golden model does not carry over to the demo model (trained at 128 px,
 * noise at 256), and comes back with the tiny model. */
static void
test_size_per_model (void)
{
  g_autoptr (GSettings) s = settings ();
  TesseraWindow *win;
  guint w, h;

  g_assert_nonnull (demo_model_dir);
  g_settings_reset (s, "image-sizes");
  win = open_ready_window (); /* selects SIZE x SIZE */
  close_window (win);

  g_setenv ("TESSERA_DEFAULT_MODEL", demo_model_dir, TRUE);
  win = open_window ("");
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "ready");
  _tessera_window_get_selected_size (win, &w, &h);
  g_assert_cmpuint (w, ==, 128);
  g_assert_cmpuint (h, ==, 128);
  /* The demo model can take 256 px; a size it cannot take (200 px is no multiple of 16)
   * leaves the size as it is. The last choice, 128, is what it gets back below. */
  g_assert_true (_tessera_window_select_size (win, SIZE, SIZE));
  g_assert_false (_tessera_window_select_size (win, 200, 200));
  _tessera_window_get_selected_size (win, &w, &h);
  g_assert_cmpuint (w, ==, SIZE);
  g_assert_true (_tessera_window_select_size (win, 128, 128));
  close_window (win);
  g_setenv ("TESSERA_DEFAULT_MODEL", "", TRUE);

  win = open_window (model_dir);
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "ready");
  _tessera_window_get_selected_size (win, &w, &h);
  g_assert_cmpuint (w, ==, SIZE);
  g_assert_cmpuint (h, ==, SIZE);
  close_window (win);

  g_setenv ("TESSERA_DEFAULT_MODEL", demo_model_dir, TRUE);
  win = open_window ("");
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  _tessera_window_get_selected_size (win, &w, &h);
  g_assert_cmpuint (w, ==, 128);
  close_window (win);
  g_setenv ("TESSERA_DEFAULT_MODEL", "", TRUE);
}

int
main (int argc, char **argv)
{
  const char *golden = g_getenv ("TESSERA_GOLDEN_DIR");
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  if (!golden || !g_file_test (golden, G_FILE_TEST_IS_DIR))
    {
      g_printerr ("TESSERA_GOLDEN_DIR is not set or missing: skipping\n");
      return 77;
    }
  model_dir = g_build_filename (golden, "models", "tiny-meissonic", NULL);
  demo_model_dir = g_getenv ("TESSERA_DEMO_MODEL_DIR");
  tmp = g_dir_make_tmp ("tessera-ui-XXXXXX", &error);
  g_assert_no_error (error);
  tmp_dir = g_strdup (tmp);
  gallery_dir = g_build_filename (tmp, "gallery", NULL);
  /* A fresh cache, so that /window/palette computes the colour table. Set before anything
   * asks GLib for the cache folder (GLib keeps the first answer). */
  {
    g_autofree char *cache = g_build_filename (tmp, "cache", NULL);
    g_setenv ("XDG_CACHE_HOME", cache, TRUE);
  }
  if (!gtk_init_check ())
    {
      g_printerr ("no display: skipping\n");
      return 77;
    }
  adw_init ();

  tessera_engine_init_logging ();

  app = g_object_new (TESSERA_TYPE_APPLICATION, "application-id", APP_ID, "resource-base-path", APP_RESOURCE_PATH,
                      "flags", G_APPLICATION_NON_UNIQUE, NULL);
  g_application_register (G_APPLICATION (app), NULL, &error);
  g_assert_no_error (error);

  g_test_add_func ("/window/palette", test_palette);
  g_test_add_func ("/window/broken-model", test_broken_model);
  g_test_add_func ("/window/hostile-inputs", test_hostile_inputs);
  g_test_add_func ("/window/restart", test_restart);
  g_test_add_func ("/window/generate", test_generate);
  g_test_add_func ("/window/cancel", test_cancel);
  g_test_add_func ("/window/finish-now", test_finish_now);
  g_test_add_func ("/window/reopen", test_reopen);
  g_test_add_func ("/window/inpaint", test_inpaint);
  g_test_add_func ("/window/gallery-delete", test_gallery_delete);
  g_test_add_func ("/window/keyboard", test_keyboard);
  g_test_add_func ("/window/dialogs", test_dialogs);
  g_test_add_func ("/window/size-per-model", test_size_per_model);
  g_test_add_func ("/window/screenshots", test_screenshots);
  ret = g_test_run ();

  g_clear_object (&app);
  g_free (model_dir);
  g_free (gallery_dir);
  ui_test_remove_tmp (tmp_dir);
  g_free (tmp_dir);
  return ret;
}
