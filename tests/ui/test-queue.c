/* SPDX-License-Identifier: MIT
 *
 * test-queue.c — issue 18's app part end to end (suite 'ui'): the job queue (jobs added
 * while one runs, one cancelled, one moved up, the rest in the gallery as they finish,
 * progress in the header, closing asks first), the batch count (seeds S..S+N-1), the
 * inpainting page's own settings (and the repaint's metadata naming them), variations
 * of a gallery image (img2img with new seeds), extending the canvas (outpainting). The real
 * TesseraWindow and engine run on the bundled demo model (128 x 128, fast); each test
 * waits on the main loop, with a timeout, for the state it expects. Screenshots go to
 * $TESSERA_SCREENSHOT_DIR.
 *
 * Skips (77) without $TESSERA_DEMO_MODEL_DIR or without a display.
 */
#include <adwaita.h>
#include <glib/gstdio.h>
#include <string.h>

#include "tessera-application.h"
#include "tessera-engine-types.h"
#include "tessera-mask-editor.h"
#include "tessera-window-private.h"
#include "ui-test-tmp.h"

#define TIMEOUT_S 120

static const char *demo_model_dir;
static char *gallery_dir;
static char *tmp_dir;
static GtkApplication *app;

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

static TesseraWindow *
open_window (const char *model, int width, int height)
{
  g_autoptr (GSettings) s = settings ();
  TesseraWindow *win;

  g_settings_set_string (s, "model-folder", model);
  g_settings_set_string (s, "gallery-folder", gallery_dir);
  g_settings_set_int (s, "steps", 6);
  g_settings_set_boolean (s, "seed-locked", FALSE);
  g_settings_set_string (s, "preview-mode", "tokens");
  win = tessera_window_new (ADW_APPLICATION (app));
  /* Undecorated, as in test-window.c's screenshots: Xvfb has no compositor, and a
   * decorated window would keep a border for its resize handles inside its size. */
  gtk_window_set_decorated (GTK_WINDOW (win), FALSE);
  gtk_window_set_default_size (GTK_WINDOW (win), width, height);
  gtk_window_present (GTK_WINDOW (win));
  return win;
}

static TesseraWindow *
open_ready_window (const char *model, int width, int height, guint size)
{
  TesseraWindow *win = open_window (model, width, height);

  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "ready");
  if (size)
    g_assert_true (_tessera_window_select_size (win, size, size));
  return win;
}

static void
close_window (TesseraWindow *win)
{
  g_object_add_weak_pointer (G_OBJECT (win), (gpointer *) &win);
  gtk_window_destroy (GTK_WINDOW (win));
  WAIT_FOR (win == NULL, TIMEOUT_S);
}

static void
activate (TesseraWindow *win, const char *action)
{
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), action));
  g_action_group_activate_action (G_ACTION_GROUP (win), action, NULL);
}

static void
set_steps (int steps)
{
  g_autoptr (GSettings) s = settings ();

  g_settings_set_int (s, "steps", steps);
}

static ts_image *
load_png (GFile *file, ts_image_meta *meta)
{
  g_autofree char *path = g_file_get_path (file);
  ts_error err;
  ts_image *image = ts_image_load_png (path, meta, &err);

  if (!image)
    g_error ("%s: %s", path, err.message);
  return image;
}

/* Renders window (any GtkWindow) into $TESSERA_SCREENSHOT_DIR/name at its current size,
 * after layout and libadwaita's transitions (about 250 ms) have settled. */
static void
screenshot_widget (GtkWidget *widget, const char *name)
{
  const char *dir = g_getenv ("TESSERA_SCREENSHOT_DIR");
  g_autofree char *path = NULL;
  g_autoptr (GdkPaintable) paintable = NULL;
  g_autoptr (GskRenderNode) node = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  GdkFrameClock *clock;
  gint64 t0, f0;
  int w, h;

  if (!dir)
    return;
  g_mkdir_with_parents (dir, 0755);
  WAIT_FOR (gtk_widget_get_mapped (widget) && gtk_widget_get_width (widget) > 0, 10);
  t0 = g_get_monotonic_time ();
  WAIT_FOR (g_get_monotonic_time () - t0 > 700000, 10);
  clock = gtk_widget_get_frame_clock (widget);
  paintable = gtk_widget_paintable_new (widget);
  w = gtk_widget_get_width (widget);
  h = gtk_widget_get_height (widget);
  for (int attempt = 0; attempt < 50 && !node; attempt++)
    {
      g_autoptr (GtkSnapshot) snapshot = gtk_snapshot_new ();

      gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
      node = gtk_snapshot_free_to_node (g_steal_pointer (&snapshot));
      if (!node)
        {
          f0 = gdk_frame_clock_get_frame_counter (clock);
          gtk_widget_queue_draw (widget);
          WAIT_FOR (gdk_frame_clock_get_frame_counter (clock) > f0, 10);
        }
    }
  g_assert_nonnull (node);
  texture = gsk_renderer_render_texture (gtk_native_get_renderer (gtk_widget_get_native (widget)), node,
                                         &GRAPHENE_RECT_INIT (0, 0, w, h));
  path = g_build_filename (dir, name, NULL);
  g_assert_true (gdk_texture_save_to_png (texture, path));
  g_test_message ("screenshot %s (%dx%d)", path, w, h);
}

static void
screenshot (GtkWindow *window, const char *name)
{
  screenshot_widget (GTK_WIDGET (window), name);
}


/* Every PNG in the gallery folder with its metadata. */
static GPtrArray *
gallery_metas (void)
{
  g_autoptr (GDir) dir = g_dir_open (gallery_dir, 0, NULL);
  GPtrArray *metas = g_ptr_array_new_with_free_func ((GDestroyNotify) tessera_image_meta_free);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  while (dir && (name = g_dir_read_name (dir)))
    if (g_str_has_suffix (name, ".png"))
      g_ptr_array_add (names, g_build_filename (gallery_dir, name, NULL));
  for (guint i = 0; i < names->len; i++)
    {
      g_autoptr (GFile) file = g_file_new_for_path (names->pdata[i]);
      ts_image_meta meta;
      g_autoptr (ts_image) image = NULL;

      ts_image_meta_init (&meta);
      image = load_png (file, &meta);
      g_ptr_array_add (metas, tessera_image_meta_dup (&meta));
      ts_image_meta_clear (&meta);
    }
  return metas;
}

static const ts_image_meta *
find_meta (GPtrArray *metas, const char *prompt)
{
  for (guint i = 0; i < metas->len; i++)
    {
      const ts_image_meta *m = metas->pdata[i];

      if (g_strcmp0 (m->prompt, prompt) == 0)
        return m;
    }
  return NULL;
}

static TesseraJob *
job_at (TesseraWindow *win, guint position)
{
  TesseraJob *job = g_list_model_get_item (_tessera_window_get_jobs (win), position);

  g_object_unref (job); /* the list holds it */
  return job;
}

static guint
n_pending (TesseraWindow *win)
{
  GListModel *jobs = _tessera_window_get_jobs (win);
  guint n = 0;

  for (guint i = 0; i < g_list_model_get_n_items (jobs); i++)
    n += tessera_job_is_pending (job_at (win, i));
  return n;
}

/* A fresh gallery folder for each test, so that its files are this test's. */
static void
new_gallery (const char *name)
{
  g_free (gallery_dir);
  gallery_dir = g_build_filename (tmp_dir, name, NULL);
}

static TesseraWindow *
open_demo_window (const char *gallery)
{
  new_gallery (gallery);
  return open_ready_window (demo_model_dir, 1280, 800, 0);
}

static void
queue (TesseraWindow *win, const char *prompt)
{
  _tessera_window_set_prompt (win, prompt);
  activate (win, "generate");
}

/* ---- tests ---- */

static void
test_queue (void)
{
  TesseraWindow *win = open_demo_window ("gallery-queue");
  TesseraGeneratePage *page = _tessera_window_get_generate_page (win);
  TesseraQueuePopover *popover = _tessera_window_get_queue_popover (win);
  GListModel *jobs = _tessera_window_get_jobs (win);
  g_autoptr (GPtrArray) metas = NULL;
  AdwMessageDialog *dialog;
  TesseraJob *cancelled;

  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (_tessera_window_get_queue_button (win))));
  /* The first is slow enough to still run at the screenshots: 200 steps at 256 x 256, 4x
   * the demo model's tokens (200 steps at its own 128 x 128 took under 2 s on a Zen 5,
   * shorter than the screenshots). The others go back to 128 x 128. */
  g_assert_true (_tessera_window_select_size (win, 256, 256));
  set_steps (200);
  queue (win, "a red circle on a blue background");
  g_assert_true (_tessera_window_select_size (win, 128, 128));
  g_assert_true (_tessera_window_is_running (win));
  WAIT_FOR (_tessera_window_get_n_step_updates (win) >= 2, TIMEOUT_S);

  /* The form stays editable and Generate queues more while the first runs. */
  g_assert_true (gtk_widget_is_sensitive (GTK_WIDGET (page)));
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "generate"));
  g_assert_true (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "reroll-seed"));
  set_steps (24);
  queue (win, "a green square in the middle");
  queue (win, "a yellow triangle, cancelled");
  queue (win, "a blue circle on a red background");
  g_assert_cmpuint (g_list_model_get_n_items (jobs), ==, 4);
  g_assert_cmpuint (n_pending (win), ==, 4);
  g_assert_cmpint (job_at (win, 0)->state, ==, TESSERA_JOB_RUNNING);
  g_assert_cmpint (job_at (win, 1)->state, ==, TESSERA_JOB_QUEUED);
  g_assert_cmpint (job_at (win, 1)->form.steps, ==, 24);

  /* Generate reads Add to Queue during the run, beside the batch count. */
  g_assert_cmpstr (gtk_button_get_label (GTK_BUTTON (gtk_widget_get_template_child (
                     GTK_WIDGET (page), TESSERA_TYPE_GENERATE_PAGE, "generate_button"))),
                   ==, "Add to _Queue");
  screenshot (GTK_WINDOW (win), "queue-generate.png");
  g_assert_cmpint (job_at (win, 0)->state, ==, TESSERA_JOB_RUNNING);

  /* The header shows the queue on every page: a button with the count and a bar. */
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (_tessera_window_get_queue_button (win))));
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (_tessera_window_get_queue_progress (win))));
  adw_view_stack_set_visible_child_name (
    ADW_VIEW_STACK (gtk_widget_get_template_child (GTK_WIDGET (win), TESSERA_TYPE_WINDOW, "view_stack")), "gallery");
  g_assert_true (gtk_widget_get_mapped (GTK_WIDGET (_tessera_window_get_queue_progress (win))));

  /* The last moves up past the third; the third is cancelled and stays listed. */
  cancelled = job_at (win, 2);
  g_action_group_activate_action (G_ACTION_GROUP (win), "queue-up", g_variant_new_uint32 (job_at (win, 3)->id));
  g_assert_true (job_at (win, 3) == cancelled);
  g_action_group_activate_action (G_ACTION_GROUP (win), "queue-cancel", g_variant_new_uint32 (cancelled->id));
  g_assert_cmpint (cancelled->state, ==, TESSERA_JOB_CANCELLED);
  g_assert_cmpuint (n_pending (win), ==, 3);

  /* Closing with jobs left asks first. */
  gtk_window_close (GTK_WINDOW (win));
  dialog = _tessera_window_get_close_dialog (win);
  g_assert_nonnull (dialog);
  g_assert_nonnull (strstr (adw_message_dialog_get_body (dialog), "queued"));
  screenshot (GTK_WINDOW (dialog), "queue-close.png");
  adw_message_dialog_response (dialog, "cancel");
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (win)));

  gtk_menu_button_popup (_tessera_window_get_queue_button (win));
  g_assert_nonnull (tessera_queue_popover_get_row (popover, cancelled->id));
  screenshot_widget (GTK_WIDGET (popover), "queue-popover.png");
  screenshot (GTK_WINDOW (win), "queue-running.png");
  g_assert_cmpint (job_at (win, 0)->state, ==, TESSERA_JOB_RUNNING);
  gtk_popover_popdown (GTK_POPOVER (popover));

  /* The three land in the gallery one by one, the cancelled one never runs. */
  WAIT_FOR (n_pending (win) == 0 && _tessera_window_get_n_saved (win) == 3, 3 * TIMEOUT_S);
  g_assert_false (_tessera_window_is_running (win));
  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (_tessera_window_get_queue_progress (win))));
  g_assert_cmpint (job_at (win, 0)->state, ==, TESSERA_JOB_DONE);
  g_assert_cmpint (job_at (win, 1)->state, ==, TESSERA_JOB_DONE);
  g_assert_cmpint (job_at (win, 2)->state, ==, TESSERA_JOB_DONE);
  g_assert_cmpint (cancelled->state, ==, TESSERA_JOB_CANCELLED);
  metas = gallery_metas ();
  g_assert_cmpuint (metas->len, ==, 3);
  g_assert_nonnull (find_meta (metas, "a red circle on a blue background"));
  g_assert_cmpuint (find_meta (metas, "a red circle on a blue background")->steps, ==, 200);
  g_assert_cmpuint (find_meta (metas, "a red circle on a blue background")->width, ==, 256);
  g_assert_cmpuint (find_meta (metas, "a green square in the middle")->width, ==, 128);
  g_assert_cmpuint (find_meta (metas, "a green square in the middle")->steps, ==, 24);
  g_assert_nonnull (find_meta (metas, "a blue circle on a red background"));
  g_assert_null (find_meta (metas, "a yellow triangle, cancelled"));
  WAIT_FOR (g_list_model_get_n_items (tessera_gallery_get_model (_tessera_window_get_gallery (win))) == 3, TIMEOUT_S);
  screenshot (GTK_WINDOW (win), "queue-gallery.png");

  /* Clear Finished empties the list, and the button goes. */
  g_action_group_activate_action (G_ACTION_GROUP (win), "queue-clear", NULL);
  g_assert_cmpuint (g_list_model_get_n_items (jobs), ==, 0);
  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (_tessera_window_get_queue_button (win))));
  close_window (win);
}

/* Cancelling the running job (Esc) stops it, and the next one starts. */
static void
test_cancel_running (void)
{
  TesseraWindow *win = open_demo_window ("gallery-cancel");
  TesseraJob *first;

  set_steps (200);
  queue (win, "a slow one");
  set_steps (6);
  queue (win, "a quick one");
  first = job_at (win, 0);
  WAIT_FOR (_tessera_window_get_n_step_updates (win) >= 1, TIMEOUT_S);
  g_action_group_activate_action (G_ACTION_GROUP (win), "queue-cancel", g_variant_new_uint32 (first->id));
  WAIT_FOR (n_pending (win) == 0 && _tessera_window_get_n_saved (win) == 1, TIMEOUT_S);
  g_assert_cmpint (first->state, ==, TESSERA_JOB_CANCELLED);
  g_assert_cmpint (job_at (win, 1)->state, ==, TESSERA_JOB_DONE);
  /* A finished row's button removes it. */
  g_action_group_activate_action (G_ACTION_GROUP (win), "queue-remove", g_variant_new_uint32 (first->id));
  g_assert_cmpuint (g_list_model_get_n_items (_tessera_window_get_jobs (win)), ==, 1);
  close_window (win);
}

static void
test_batch (void)
{
  TesseraWindow *win = open_demo_window ("gallery-batch");
  TesseraGeneratePage *page = _tessera_window_get_generate_page (win);
  g_autoptr (GSettings) s = settings ();
  g_autoptr (GPtrArray) metas = NULL;
  guint64 seeds = 0;

  g_settings_set_boolean (s, "seed-locked", TRUE);
  gtk_editable_set_text (GTK_EDITABLE (gtk_widget_get_template_child (GTK_WIDGET (page), TESSERA_TYPE_GENERATE_PAGE,
                                                                     "seed_entry")),
                         "1000");
  g_assert_cmpuint (tessera_generate_page_get_seed (page), ==, 1000);
  set_steps (8);
  tessera_generate_page_set_batch_count (page, 4);
  queue (win, "a batch of circles");
  g_assert_cmpuint (g_list_model_get_n_items (_tessera_window_get_jobs (win)), ==, 4);
  WAIT_FOR (n_pending (win) == 0 && _tessera_window_get_n_saved (win) == 4, 4 * TIMEOUT_S);
  metas = gallery_metas ();
  g_assert_cmpuint (metas->len, ==, 4);
  for (guint i = 0; i < metas->len; i++)
    {
      const ts_image_meta *m = metas->pdata[i];

      g_assert_cmpstr (m->prompt, ==, "a batch of circles");
      g_assert_cmpuint (m->seed, >=, 1000);
      g_assert_cmpuint (m->seed, <, 1004);
      seeds |= 1u << (m->seed - 1000);
    }
  g_assert_cmpuint (seeds, ==, 0xf);
  adw_view_stack_set_visible_child_name (
    ADW_VIEW_STACK (gtk_widget_get_template_child (GTK_WIDGET (win), TESSERA_TYPE_WINDOW, "view_stack")), "gallery");
  WAIT_FOR (g_list_model_get_n_items (tessera_gallery_get_model (_tessera_window_get_gallery (win))) == 4, TIMEOUT_S);
  screenshot (GTK_WINDOW (win), "batch-gallery.png");
  tessera_generate_page_set_batch_count (page, 1);
  g_settings_set_boolean (s, "seed-locked", FALSE);
  close_window (win);
}

static GObject *
inpaint_child (TesseraWindow *win, const char *name)
{
  return gtk_widget_get_template_child (GTK_WIDGET (_tessera_window_get_inpaint_view (win)), TESSERA_TYPE_INPAINT_VIEW,
                                        name);
}

/* The inpainting page shows its own settings, filled from the source's metadata, and the
 * repaint uses them, not the Generate page's. */
static void
test_inpaint_settings (void)
{
  TesseraWindow *win = open_demo_window ("gallery-inpaint");
  TesseraInpaintView *view = _tessera_window_get_inpaint_view (win);
  TesseraMaskEditor *editor = tessera_inpaint_view_get_editor (view);
  GtkAdjustment *steps = GTK_ADJUSTMENT (inpaint_child (win, "steps_adjustment"));
  GtkAdjustment *guidance = GTK_ADJUSTMENT (inpaint_child (win, "guidance_adjustment"));
  GtkEditable *seed = GTK_EDITABLE (inpaint_child (win, "seed_entry"));
  GtkEditable *negative = GTK_EDITABLE (inpaint_child (win, "negative_row"));
  guint f = _tessera_window_get_model_info (win)->vae_scale_factor;
  g_autoptr (GFile) source = NULL;
  g_autofree char *seed_text = NULL;
  g_autofree char *out = NULL;
  ts_image_meta m;
  ts_error err;

  set_steps (9);
  queue (win, "a red circle on a blue background");
  WAIT_FOR (n_pending (win) == 0 && _tessera_window_get_n_saved (win) == 1, TIMEOUT_S);
  source = g_object_ref (_tessera_window_get_last_saved (win));
  seed_text = g_strdup_printf ("%" G_GUINT64_FORMAT, job_at (win, 0)->form.seed);

  _tessera_window_inpaint_file (win, source);
  WAIT_FOR (tessera_inpaint_view_get_source_image (view) != NULL, TIMEOUT_S);
  g_assert_cmpfloat (gtk_adjustment_get_value (steps), ==, 9);
  g_assert_cmpstr (gtk_editable_get_text (seed), ==, seed_text);

  /* The page's own values, unlike the Generate page's (9 steps there, another seed). */
  gtk_adjustment_set_value (steps, 5);
  gtk_adjustment_set_value (guidance, 2.5);
  gtk_editable_set_text (seed, "777");
  gtk_editable_set_text (negative, "blurry");
  tessera_inpaint_view_set_prompt (view, "a green square");
  tessera_mask_editor_set_brush_size (editor, 2.0 * f);
  tessera_mask_editor_begin_stroke (editor);
  tessera_mask_editor_paint_line (editor, 2.0 * f, 2.0 * f, 6.0 * f, 6.0 * f);
  g_assert_cmpuint (tessera_mask_editor_count_cells (editor), >, 0);
  screenshot (GTK_WINDOW (win), "inpaint-settings.png");
  activate (win, "inpaint-run");
  WAIT_FOR (n_pending (win) == 0 && _tessera_window_get_n_saved (win) == 2, TIMEOUT_S);
  g_assert_cmpint (job_at (win, 1)->state, ==, TESSERA_JOB_DONE);

  out = g_file_get_path (_tessera_window_get_last_saved (win));
  {
    g_autoptr (ts_image) img = ts_image_load_png (out, &m, &err);

    g_assert_nonnull (img);
  }
  g_assert_cmpstr (m.prompt, ==, "a green square");
  g_assert_cmpstr (m.negative_prompt, ==, "blurry");
  g_assert_cmpuint (m.steps, ==, 5);
  g_assert_cmpuint (m.seed, ==, 777);
  g_assert_cmpfloat_with_epsilon (m.cfg, 2.5, 1e-9);
  /* The source is named and hashed, as the CLI does. */
  g_assert_nonnull (m.source);
  g_assert_true (m.source_hash && g_str_has_prefix (m.source_hash, "sha256:") && strlen (m.source_hash) == 71);
  ts_image_meta_clear (&m);
  close_window (win);
}

/* The gallery's Variations…: a dialog with the strength and the count, then that many
 * img2img jobs with consecutive new seeds, each image naming its source. */
static void
test_variations (void)
{
  TesseraWindow *win = open_demo_window ("gallery-variations");
  TesseraGallery *gallery = _tessera_window_get_gallery (win);
  g_autoptr (GFile) source = NULL;
  g_autoptr (GPtrArray) metas = NULL;
  g_autofree char *base = NULL;
  AdwMessageDialog *dialog;
  guint n_img2img = 0;
  guint64 min_seed = G_MAXUINT64;
  guint seeds = 0;

  set_steps (10);
  queue (win, "a red circle on a blue background");
  WAIT_FOR (n_pending (win) == 0 && _tessera_window_get_n_saved (win) == 1, TIMEOUT_S);
  source = g_object_ref (_tessera_window_get_last_saved (win));
  base = g_file_get_basename (source);

  adw_view_stack_set_visible_child_name (
    ADW_VIEW_STACK (gtk_widget_get_template_child (GTK_WIDGET (win), TESSERA_TYPE_WINDOW, "view_stack")), "gallery");
  WAIT_FOR (g_list_model_get_n_items (tessera_gallery_get_model (gallery)) == 1, TIMEOUT_S);
  tessera_gallery_select_file (gallery, source);
  WAIT_FOR (tessera_gallery_get_selected (gallery) != NULL, TIMEOUT_S);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (gallery), "gallery.variations", NULL));
  WAIT_FOR (_tessera_window_get_variations_dialog (win) != NULL, TIMEOUT_S);
  dialog = _tessera_window_get_variations_dialog (win);
  gtk_adjustment_set_value (g_object_get_data (G_OBJECT (dialog), "tessera-strength"), 0.5);
  gtk_spin_button_set_value (g_object_get_data (G_OBJECT (dialog), "tessera-count"), 3);
  screenshot (GTK_WINDOW (dialog), "variations-dialog.png");
  adw_message_dialog_response (dialog, "queue");
  g_assert_null (_tessera_window_get_variations_dialog (win));
  g_assert_cmpuint (g_list_model_get_n_items (_tessera_window_get_jobs (win)), ==, 4);
  g_assert_cmpint (job_at (win, 1)->kind, ==, TESSERA_JOB_IMG2IMG);
  WAIT_FOR (n_pending (win) == 0 && _tessera_window_get_n_saved (win) == 4, 3 * TIMEOUT_S);

  metas = gallery_metas ();
  g_assert_cmpuint (metas->len, ==, 4);
  for (guint i = 0; i < metas->len; i++)
    {
      const ts_image_meta *m = metas->pdata[i];

      if (g_strcmp0 (m->mode, "img2img") != 0)
        continue;
      n_img2img++;
      g_assert_cmpstr (m->prompt, ==, "a red circle on a blue background");
      g_assert_cmpstr (m->source, ==, base);
      g_assert_true (g_str_has_prefix (m->source_hash, "sha256:"));
      g_assert_cmpfloat_with_epsilon (m->strength, 0.5, 1e-9);
      g_assert_cmpuint (m->steps, ==, 10);
      g_assert_cmpuint (m->width, ==, 128);
      min_seed = MIN (min_seed, m->seed);
    }
  g_assert_cmpuint (n_img2img, ==, 3);
  for (guint i = 0; i < metas->len; i++)
    {
      const ts_image_meta *m = metas->pdata[i];

      if (g_strcmp0 (m->mode, "img2img") == 0)
        seeds |= 1u << (m->seed - min_seed);
    }
  g_assert_cmpuint (seeds, ==, 0x7);
  WAIT_FOR (g_list_model_get_n_items (tessera_gallery_get_model (gallery)) == 4, TIMEOUT_S);
  tessera_gallery_select_file (gallery, source);
  screenshot (GTK_WINDOW (win), "variations-gallery.png");
  close_window (win);
}

/* Extend Canvas: the inpainting page previews the new canvas (the border rounded up to
 * whole tokens) and queues the outpainting, whose PNG records the extents. */
static void
test_extend_canvas (void)
{
  TesseraWindow *win = open_demo_window ("gallery-extend");
  TesseraInpaintView *view = _tessera_window_get_inpaint_view (win);
  guint f = _tessera_window_get_model_info (win)->size_step;
  GtkStack *canvas_stack = GTK_STACK (inpaint_child (win, "canvas_stack"));
  GdkPaintable *preview;
  g_autoptr (GFile) source = NULL;
  g_autoptr (ts_image) out = NULL;
  g_autofree char *path = NULL;
  guint32 e[4];
  ts_image_meta m;
  ts_error err;

  set_steps (8);
  queue (win, "a red circle on a blue background");
  WAIT_FOR (n_pending (win) == 0 && _tessera_window_get_n_saved (win) == 1, TIMEOUT_S);
  source = g_object_ref (_tessera_window_get_last_saved (win));
  _tessera_window_inpaint_file (win, source);
  WAIT_FOR (tessera_inpaint_view_get_source_image (view) != NULL, TIMEOUT_S);
  g_assert_false (g_action_group_get_action_enabled (G_ACTION_GROUP (win), "outpaint-run"));
  g_assert_cmpstr (gtk_stack_get_visible_child_name (canvas_stack), ==, "mask");

  /* 2.5 size steps on the right become 3; one on the left stays one. */
  gtk_adjustment_set_value (GTK_ADJUSTMENT (inpaint_child (win, "extend_right_adjustment")), 2.5 * f);
  gtk_adjustment_set_value (GTK_ADJUSTMENT (inpaint_child (win, "extend_left_adjustment")), f);
  tessera_inpaint_view_get_extend (view, e);
  g_assert_cmpuint (e[0], ==, f);
  g_assert_cmpuint (e[1], ==, 0);
  g_assert_cmpuint (e[2], ==, 3 * f);
  g_assert_cmpuint (e[3], ==, 0);
  g_assert_cmpstr (gtk_stack_get_visible_child_name (canvas_stack), ==, "extend");
  preview = gtk_picture_get_paintable (GTK_PICTURE (inpaint_child (win, "extend_picture")));
  g_assert_cmpint (gdk_paintable_get_intrinsic_width (preview), ==, 128 + 4 * f);
  g_assert_cmpint (gdk_paintable_get_intrinsic_height (preview), ==, 128);
  tessera_inpaint_view_set_prompt (view, "a red circle on a blue background");
  screenshot (GTK_WINDOW (win), "extend-canvas.png");

  activate (win, "outpaint-run");
  WAIT_FOR (n_pending (win) == 0, 2 * TIMEOUT_S);
  g_test_message ("outpainting: %s", job_at (win, 1)->status);
  g_assert_cmpint (job_at (win, 1)->kind, ==, TESSERA_JOB_OUTPAINT);
  g_assert_cmpint (job_at (win, 1)->state, ==, TESSERA_JOB_DONE);
  WAIT_FOR (_tessera_window_get_n_saved (win) == 2, TIMEOUT_S);
  path = g_file_get_path (_tessera_window_get_last_saved (win));
  out = ts_image_load_png (path, &m, &err);
  g_assert_nonnull (out);
  g_assert_cmpuint (out->width, ==, 128 + 4 * f);
  g_assert_cmpuint (out->height, ==, 128);
  g_assert_cmpstr (m.mode, ==, "outpaint");
  g_assert_cmpuint (m.extend_left, ==, f);
  g_assert_cmpuint (m.extend_right, ==, 3 * f);
  g_assert_cmpuint (m.extend_top, ==, 0);
  g_assert_true (m.source_hash && g_str_has_prefix (m.source_hash, "sha256:") && strlen (m.source_hash) == 71);
  ts_image_meta_clear (&m);
  adw_view_stack_set_visible_child_name (
    ADW_VIEW_STACK (gtk_widget_get_template_child (GTK_WIDGET (win), TESSERA_TYPE_WINDOW, "view_stack")), "generate");
  screenshot (GTK_WINDOW (win), "extend-canvas-result.png");
  close_window (win);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *tmp = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  demo_model_dir = g_getenv ("TESSERA_DEMO_MODEL_DIR");
  if (!demo_model_dir || !g_file_test (demo_model_dir, G_FILE_TEST_IS_DIR))
    {
      g_printerr ("TESSERA_DEMO_MODEL_DIR is not set or missing: skipping\n");
      return 77;
    }
  tmp = g_dir_make_tmp ("tessera-ui-XXXXXX", &error);
  g_assert_no_error (error);
  tmp_dir = g_strdup (tmp);
  gallery_dir = g_build_filename (tmp, "gallery", NULL);
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
  {
    /* The screenshots' windows have no border for resize handles (see open_window). */
    g_autoptr (GtkCssProvider) css = gtk_css_provider_new ();
    gtk_css_provider_load_from_data (css, "window.csd, window.solid-csd { margin: 0; padding: 0; box-shadow: none; border-width: 0; }", -1);
    gtk_style_context_add_provider_for_display (gdk_display_get_default (), GTK_STYLE_PROVIDER (css),
                                                GTK_STYLE_PROVIDER_PRIORITY_USER);
  }

  g_test_add_func ("/queue/queue", test_queue);
  g_test_add_func ("/queue/cancel-running", test_cancel_running);
  g_test_add_func ("/queue/batch", test_batch);
  g_test_add_func ("/queue/inpaint-settings", test_inpaint_settings);
  g_test_add_func ("/queue/variations", test_variations);
  g_test_add_func ("/queue/extend-canvas", test_extend_canvas);
  ret = g_test_run ();

  g_clear_object (&app);
  g_free (gallery_dir);
  ui_test_remove_tmp (tmp_dir);
  g_free (tmp_dir);
  return ret;
}
