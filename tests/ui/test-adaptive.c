/* SPDX-License-Identifier: MIT
 *
 * test-adaptive.c — the app as issue 16 found it, end to end (suite 'ui'): the window at
 * 360 x 640 (the generate page folds, the view switcher moves to the bottom, the status
 * line keeps its words), faithful reuse (a 64-bit seed, values the form cannot take named
 * in the toast, an empty prompt, "Finish Now" images that regenerate pixel for pixel),
 * the loaded model named in the status area, the sizes a model was not trained at, the
 * live token count, closing and changing preferences mid-run. The real TesseraWindow and
 * engine run on the tiny golden model (and the bundled demo model where named); each test
 * waits on the main loop, with a timeout, for the state it expects. Screenshots go to
 * $TESSERA_SCREENSHOT_DIR.
 *
 * Skips (77) without $TESSERA_GOLDEN_DIR or without a display.
 */
#include <adwaita.h>
#include <glib/gstdio.h>
#include <string.h>

#include "tessera-application.h"
#include "tessera-engine-types.h"
#include "tessera-preferences.h"
#include "tessera-window-private.h"
#include "ui-test-tmp.h"

#define SIZE 256
#define TIMEOUT_S 120

static char *model_dir;
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

static GtkWidget *
page_child (TesseraWindow *win, const char *name)
{
  return GTK_WIDGET (gtk_widget_get_template_child (GTK_WIDGET (_tessera_window_get_generate_page (win)),
                                                    TESSERA_TYPE_GENERATE_PAGE, name));
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

static GFile *
generate (TesseraWindow *win, const char *prompt, int steps)
{
  guint saved = _tessera_window_get_n_saved (win);

  _tessera_window_set_prompt (win, prompt);
  set_steps (steps);
  activate (win, "generate");
  g_assert_true (_tessera_window_is_running (win));
  WAIT_FOR (!_tessera_window_is_running (win) && _tessera_window_get_n_saved (win) > saved, TIMEOUT_S);
  return g_object_ref (_tessera_window_get_last_saved (win));
}

static void
reopen (TesseraWindow *win, GFile *file)
{
  guint opened = _tessera_window_get_n_opened (win);

  tessera_window_open_file (win, file);
  WAIT_FOR (_tessera_window_get_n_opened (win) > opened, TIMEOUT_S);
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

static void
assert_same_pixels (GFile *a, GFile *b)
{
  g_autoptr (ts_image) ia = load_png (a, NULL);
  g_autoptr (ts_image) ib = load_png (b, NULL);

  g_assert_cmpuint (ia->width, ==, ib->width);
  g_assert_cmpuint (ia->height, ==, ib->height);
  g_assert_cmpmem (ia->pixels, (gsize) ia->width * ia->height * 3, ib->pixels, (gsize) ib->width * ib->height * 3);
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
select_default_size (TesseraWindow *win)
{
  TesseraModelInfo *info = _tessera_window_get_model_info (win);

  g_assert_true (_tessera_window_select_size (win, info->default_width, info->default_height));
}

static void
wait_toasts_gone (TesseraWindow *win)
{
  /* Toasts time out after 5 s; dismissing them early trips a libadwaita 1.2 crash. */
  WAIT_FOR (_tessera_window_get_n_toasts (win) == 0, 30);
}

/* ---- 360 px wide ---- */

/* Names the widgets under w that need more than max_width px (to say what to fix). */
static void
report_wide (GtkWidget *w, int max_width, int depth)
{
  int min = 0;

  if (!gtk_widget_get_visible (w))
    return;
  gtk_widget_measure (w, GTK_ORIENTATION_HORIZONTAL, -1, &min, NULL, NULL, NULL);
  if (min <= max_width)
    return;
  g_test_message ("%*s%s #%s: %d px", depth * 2, "", G_OBJECT_TYPE_NAME (w), gtk_widget_get_name (w), min);
  for (GtkWidget *c = gtk_widget_get_first_child (w); c; c = gtk_widget_get_next_sibling (c))
    report_wide (c, max_width, depth + 1);
}

static void
test_narrow (void)
{
  TesseraWindow *win = open_ready_window (model_dir, 360, 640, SIZE);
  TesseraGeneratePage *page = _tessera_window_get_generate_page (win);
  AdwViewStack *stack = ADW_VIEW_STACK (gtk_widget_get_template_child (GTK_WIDGET (win), TESSERA_TYPE_WINDOW,
                                                                       "view_stack"));
  AdwViewSwitcherBar *bar = ADW_VIEW_SWITCHER_BAR (gtk_widget_get_template_child (GTK_WIDGET (win),
                                                                                  TESSERA_TYPE_WINDOW,
                                                                                  "switcher_bar"));
  AdwLeaflet *leaflet = ADW_LEAFLET (page_child (win, "leaflet"));
  GtkLabel *status = GTK_LABEL (page_child (win, "status_label"));
  g_autoptr (GFile) file = NULL;

  /* The window takes the size asked for: no page needs more than 360 px. */
  WAIT_FOR (gtk_widget_get_width (GTK_WIDGET (win)) > 0, 10);
  WAIT_FOR (tessera_generate_page_get_folded (page), 10);
  if (gtk_widget_get_width (GTK_WIDGET (win)) != 360)
    report_wide (GTK_WIDGET (win), 360, 0);
  g_assert_cmpint (gtk_widget_get_width (GTK_WIDGET (win)), ==, 360);
  g_assert_cmpint (gtk_widget_get_height (GTK_WIDGET (win)), ==, 640);
  WAIT_FOR (adw_view_switcher_bar_get_reveal (bar), 10);
  g_assert_true (adw_leaflet_get_visible_child (leaflet) == page_child (win, "sidebar"));
  wait_toasts_gone (win);
  screenshot (GTK_WINDOW (win), "narrow-form.png");

  /* Generate brings the canvas forward, with Cancel and Finish Now on it. */
  /* At the model's own size (64 x 64 tokens) a step is slow enough to catch mid-run. */
  select_default_size (win);
  _tessera_window_set_prompt (win, "a lighthouse on a cliff at dusk");
  set_steps (200);
  activate (win, "generate");
  g_assert_true (adw_leaflet_get_visible_child (leaflet) == page_child (win, "canvas_page"));
  g_assert_true (gtk_widget_get_visible (page_child (win, "narrow_run_box")));
  WAIT_FOR (_tessera_window_get_n_step_updates (win) >= 3, TIMEOUT_S);
  screenshot (GTK_WINDOW (win), "narrow-generating.png");
  activate (win, "cancel");
  WAIT_FOR (!_tessera_window_is_running (win), TIMEOUT_S);
  g_assert_false (gtk_widget_get_visible (page_child (win, "narrow_run_box")));

  g_assert_true (_tessera_window_select_size (win, SIZE, SIZE));
  file = generate (win, "a lighthouse on a cliff at dusk", 4);
  /* The status line wraps instead of shrinking to "D…". */
  g_assert_true (g_str_has_prefix (gtk_label_get_label (status), "Done in"));
  g_assert_false (pango_layout_is_ellipsized (gtk_label_get_layout (status)));
  g_assert_cmpint (gtk_widget_get_width (GTK_WIDGET (status)), <=, 360);
  wait_toasts_gone (win);
  screenshot (GTK_WINDOW (win), "narrow-canvas.png");
  adw_style_manager_set_color_scheme (adw_style_manager_get_default (), ADW_COLOR_SCHEME_FORCE_DARK);
  screenshot (GTK_WINDOW (win), "narrow-canvas-dark.png");
  adw_style_manager_set_color_scheme (adw_style_manager_get_default (), ADW_COLOR_SCHEME_DEFAULT);

  /* The back button returns to the form. */
  g_assert_true (gtk_widget_get_visible (page_child (win, "back_button")));
  g_signal_emit_by_name (page_child (win, "back_button"), "clicked");
  g_assert_true (adw_leaflet_get_visible_child (leaflet) == page_child (win, "sidebar"));

  /* The gallery folds too: the grid, and a picked image's detail behind it. */
  adw_view_stack_set_visible_child_name (stack, "gallery");
  {
    TesseraGallery *gallery = _tessera_window_get_gallery (win);
    GtkWidget *back = GTK_WIDGET (gtk_widget_get_template_child (GTK_WIDGET (gallery), TESSERA_TYPE_GALLERY,
                                                                 "back_button"));

    WAIT_FOR (gallery_has (gallery, file), TIMEOUT_S);
    WAIT_FOR (tessera_gallery_get_folded (gallery), 10);
    g_assert_true (gtk_widget_get_visible (back));
    g_assert_false (tessera_gallery_get_showing_detail (gallery));
    g_assert_cmpint (gtk_widget_get_width (GTK_WIDGET (win)), ==, 360);
    screenshot (GTK_WINDOW (win), "narrow-gallery.png");
    tessera_gallery_select_file (gallery, file);
    g_assert_true (tessera_gallery_get_showing_detail (gallery));
    WAIT_FOR (tessera_gallery_get_selected (gallery) && tessera_gallery_item_get_meta (tessera_gallery_get_selected (gallery)),
              TIMEOUT_S);
    screenshot (GTK_WINDOW (win), "narrow-gallery-detail.png");
    g_assert_cmpint (gtk_widget_get_width (GTK_WIDGET (win)), ==, 360);
    g_signal_emit_by_name (back, "clicked");
    g_assert_false (tessera_gallery_get_showing_detail (gallery));
  }

  /* Inpainting folds: the image to paint on first, Repaint under it, the settings behind
   * the back button; a run brings the image forward again. */
  {
    TesseraInpaintView *view = _tessera_window_get_inpaint_view (win);
    TesseraMaskEditor *editor = tessera_inpaint_view_get_editor (view);
    GtkWidget *back = GTK_WIDGET (gtk_widget_get_template_child (GTK_WIDGET (view), TESSERA_TYPE_INPAINT_VIEW,
                                                                 "back_button"));
    GtkStack *narrow_run = GTK_STACK (gtk_widget_get_template_child (GTK_WIDGET (view), TESSERA_TYPE_INPAINT_VIEW,
                                                                     "narrow_run_stack"));
    guint saved;

    _tessera_window_inpaint_file (win, file);
    WAIT_FOR (tessera_inpaint_view_get_source_image (view) != NULL, TIMEOUT_S);
    WAIT_FOR (tessera_inpaint_view_get_folded (view), 10);
    g_assert_cmpstr (adw_view_stack_get_visible_child_name (stack), ==, "inpaint");
    g_assert_true (tessera_inpaint_view_get_showing_image (view));
    g_assert_true (gtk_widget_get_visible (back));
    g_assert_true (gtk_widget_get_visible (GTK_WIDGET (narrow_run)));
    g_assert_cmpstr (gtk_stack_get_visible_child_name (narrow_run), ==, "idle");
    tessera_mask_editor_set_brush_size (editor, SIZE / 4.0);
    tessera_mask_editor_begin_stroke (editor);
    tessera_mask_editor_paint_line (editor, SIZE / 4.0, SIZE / 2.0, SIZE * 0.75, SIZE / 2.0);
    g_assert_cmpuint (tessera_mask_editor_count_cells (editor), >, 0);
    g_assert_cmpint (gtk_widget_get_width (GTK_WIDGET (win)), ==, 360);
    wait_toasts_gone (win);
    screenshot (GTK_WINDOW (win), "narrow-inpaint.png");
    g_signal_emit_by_name (back, "clicked");
    g_assert_false (tessera_inpaint_view_get_showing_image (view));
    screenshot (GTK_WINDOW (win), "narrow-inpaint-settings.png");
    g_assert_cmpint (gtk_widget_get_width (GTK_WIDGET (win)), ==, 360);
    /* ... and the forward button (or a swipe) goes back to the image. */
    g_signal_emit_by_name (gtk_widget_get_template_child (GTK_WIDGET (view), TESSERA_TYPE_INPAINT_VIEW,
                                                          "forward_button"), "clicked");
    g_assert_true (tessera_inpaint_view_get_showing_image (view));
    g_signal_emit_by_name (back, "clicked");
    saved = _tessera_window_get_n_saved (win);
    tessera_inpaint_view_set_prompt (view, "a window");
    activate (win, "inpaint-run");
    g_assert_true (tessera_inpaint_view_get_showing_image (view));
    g_assert_cmpstr (gtk_stack_get_visible_child_name (narrow_run), ==, "running");
    WAIT_FOR (!_tessera_window_is_running (win) && _tessera_window_get_n_saved (win) > saved, TIMEOUT_S);
    g_assert_cmpstr (gtk_stack_get_visible_child_name (narrow_run), ==, "idle");
  }
  close_window (win);

  /* Wide, the form and the canvas sit side by side. */
  win = open_ready_window (model_dir, 1280, 800, SIZE);
  WAIT_FOR (gtk_widget_get_width (GTK_WIDGET (win)) > 0, 10);
  g_assert_false (tessera_generate_page_get_folded (_tessera_window_get_generate_page (win)));
  g_assert_false (gtk_widget_get_visible (page_child (win, "back_button")));
  {
    int form, canvas;

    gtk_widget_measure (page_child (win, "sidebar"), GTK_ORIENTATION_HORIZONTAL, -1, &form, NULL, NULL, NULL);
    gtk_widget_measure (page_child (win, "canvas_page"), GTK_ORIENTATION_HORIZONTAL, -1, &canvas, NULL, NULL, NULL);
    g_test_message ("folds below %d px: the form %d px, the canvas %d px", form + canvas + 1, form, canvas);
  }
  close_window (win);
}

/* ---- reuse ---- */

static void
set_seed_text (TesseraWindow *win, const char *text)
{
  gtk_editable_set_text (GTK_EDITABLE (page_child (win, "seed_entry")), text);
}

static void
test_seed64 (void)
{
  TesseraWindow *win = open_ready_window (model_dir, 1280, 800, SIZE);
  TesseraGeneratePage *page = _tessera_window_get_generate_page (win);
  g_autoptr (GSettings) s = settings ();
  g_autoptr (GFile) first = NULL;
  g_autoptr (GFile) again = NULL;
  ts_image_meta meta;
  const guint64 big = G_GUINT64_CONSTANT (18446744073709551615);

  /* Not a seed: marked, and Generate keeps the last good one. */
  set_seed_text (win, "12345");
  g_assert_cmpuint (tessera_generate_page_get_seed (page), ==, 12345);
  set_seed_text (win, "18446744073709551616");
  g_assert_true (gtk_widget_has_css_class (page_child (win, "seed_entry"), "error"));
  g_assert_cmpuint (tessera_generate_page_get_seed (page), ==, 12345);
  set_seed_text (win, "18446744073709551615");
  g_assert_false (gtk_widget_has_css_class (page_child (win, "seed_entry"), "error"));
  g_assert_cmpuint (tessera_generate_page_get_seed (page), ==, big);

  g_settings_set_boolean (s, "seed-locked", TRUE);
  first = generate (win, "a paper boat on a pond", 4);
  g_autoptr (ts_image) image = load_png (first, &meta);
  g_assert_cmpuint (meta.seed, ==, big);
  g_assert_cmpuint (g_settings_get_uint64 (s, "seed"), ==, big);
  ts_image_meta_clear (&meta);

  /* A new seed, then the image's parameters back: its 64-bit seed, exactly. */
  g_settings_set_boolean (s, "seed-locked", FALSE);
  activate (win, "reroll-seed");
  g_assert_cmpuint (tessera_generate_page_get_seed (page), !=, big);
  reopen (win, first);
  g_assert_cmpuint (tessera_generate_page_get_seed (page), ==, big);
  g_assert_cmpstr (gtk_editable_get_text (GTK_EDITABLE (page_child (win, "seed_entry"))), ==,
                   "18446744073709551615");
  g_assert_true (g_settings_get_boolean (s, "seed-locked"));
  wait_toasts_gone (win);
  screenshot (GTK_WINDOW (win), "seed64.png");
  again = generate (win, "a paper boat on a pond", 4);
  assert_same_pixels (first, again);
  close_window (win);
}

/* A PNG with the given parameters (an A1111-style image from elsewhere). */
static GFile *
write_png (const char *name, const ts_image_meta *meta)
{
  g_autofree char *path = g_build_filename (tmp_dir, name, NULL);
  ts_error err;
  g_autoptr (ts_image) image = ts_image_new (SIZE, SIZE, &err);

  g_assert_nonnull (image);
  memset (image->pixels, 0x80, (gsize) SIZE * SIZE * 3);
  g_assert_cmpint (ts_image_save_png (image, meta, path, &err), ==, TS_OK);
  return g_file_new_for_path (path);
}

static void
test_clamp (void)
{
  TesseraWindow *win = open_ready_window (model_dir, 1280, 800, SIZE);
  g_autoptr (GSettings) s = settings ();
  g_autoptr (GFile) wild = NULL;
  g_autoptr (GFile) plain = NULL;
  g_autoptr (GFile) unconditional = NULL;
  g_autofree char *prompt = NULL;
  ts_image_meta m;

  ts_image_meta_init (&m);
  m.prompt = (char *) "a castle in the clouds";
  m.steps = 300;
  m.cfg = 40;
  m.seed = 7;
  m.width = m.height = SIZE;
  wild = write_png ("wild.png", &m);
  reopen (win, wild);
  g_assert_cmpstr (_tessera_window_get_last_toast (win), ==,
                   "Restored with changes: steps 300 → 200, guidance 40 → 30");
  g_assert_cmpint (g_settings_get_int (s, "steps"), ==, 200);
  g_assert_cmpfloat (g_settings_get_double (s, "guidance"), ==, 30);
  screenshot (GTK_WINDOW (win), "clamp-toast.png");

  /* Values the form takes restore without a word of change. */
  m.steps = 12;
  m.cfg = 4.5;
  plain = write_png ("plain.png", &m);
  reopen (win, plain);
  g_assert_cmpstr (_tessera_window_get_last_toast (win), ==, "Parameters from “plain.png” restored");
  g_assert_cmpint (g_settings_get_int (s, "steps"), ==, 12);

  /* An image made without a prompt empties the prompt. */
  m.prompt = (char *) "";
  unconditional = write_png ("unconditional.png", &m);
  reopen (win, unconditional);
  prompt = _tessera_window_dup_prompt (win);
  g_assert_cmpstr (prompt, ==, "");
  g_assert_cmpstr (tessera_generate_page_get_token_text (_tessera_window_get_generate_page (win)), ==,
                   "Empty prompt: an unconditional image");
  /* ... and the status says what it draws. */
  set_steps (4);
  activate (win, "generate");
  g_assert_cmpstr (_tessera_window_get_status_text (win), ==, "No prompt: drawing an unconditional image…");
  WAIT_FOR (!_tessera_window_is_running (win), TIMEOUT_S);
  g_assert_true (g_str_has_suffix (_tessera_window_get_status_text (win), "no prompt: an unconditional image"));
  wait_toasts_gone (win);
  close_window (win);
}

/* "Finish Now" is recorded, restored and reproduced pixel for pixel. */
static void
test_finish_at (void)
{
  TesseraWindow *win = open_ready_window (model_dir, 1280, 800, SIZE);
  TesseraGeneratePage *page = _tessera_window_get_generate_page (win);
  AdwViewStack *stack = ADW_VIEW_STACK (gtk_widget_get_template_child (GTK_WIDGET (win), TESSERA_TYPE_WINDOW,
                                                                       "view_stack"));
  g_autoptr (GFile) finished = NULL;
  g_autoptr (GFile) again = NULL;
  g_autoptr (GFile) full = NULL;
  ts_image_meta meta;
  guint k;

  _tessera_window_set_prompt (win, "a bowl of lemons");
  set_steps (60);
  activate (win, "generate");
  WAIT_FOR (_tessera_window_get_n_step_updates (win) >= 3, TIMEOUT_S);
  activate (win, "finish-now");
  WAIT_FOR (!_tessera_window_is_running (win) && _tessera_window_get_n_saved (win) == 1, TIMEOUT_S);
  finished = g_object_ref (_tessera_window_get_last_saved (win));
  {
    g_autoptr (ts_image) image = load_png (finished, &meta);
    k = meta.finish_at;
    g_assert_cmpuint (k, >=, 3);
    g_assert_cmpuint (k, <, 60);
    g_assert_cmpuint (meta.steps, ==, 60);
    ts_image_meta_clear (&meta);
  }
  {
    g_autofree char *want = g_strdup_printf ("Finished at step %u of 60 in", k);
    g_assert_true (g_str_has_prefix (_tessera_window_get_status_text (win), want));
  }
  /* The gallery says where it finished. */
  {
    TesseraGallery *gallery = _tessera_window_get_gallery (win);
    /* The gallery lists the file once its folder monitor sees it. */
    WAIT_FOR (gallery_has (gallery, finished), TIMEOUT_S);
    tessera_gallery_select_file (gallery, finished);
    WAIT_FOR (tessera_gallery_get_selected (gallery) && tessera_gallery_item_get_meta (tessera_gallery_get_selected (gallery)),
              TIMEOUT_S);
    g_assert_cmpuint (tessera_gallery_item_get_meta (tessera_gallery_get_selected (gallery))->finish_at, ==, k);
    adw_view_stack_set_visible_child_name (stack, "gallery");
    wait_toasts_gone (win);
    screenshot (GTK_WINDOW (win), "gallery-finished-at.png");
    adw_view_stack_set_visible_child_name (stack, "generate");
  }

  /* Reuse: the form's finish-at row, then the same pixels. */
  activate (win, "reroll-seed");
  reopen (win, finished);
  g_assert_cmpuint (tessera_generate_page_get_finish_at (page), ==, k);
  g_assert_true (gtk_widget_get_visible (page_child (win, "finish_row")));
  {
    g_autofree char *title = g_strdup_printf ("Finish at Step %u", k);
    g_assert_cmpstr (adw_preferences_row_get_title (ADW_PREFERENCES_ROW (page_child (win, "finish_row"))), ==, title);
  }
  wait_toasts_gone (win);
  screenshot (GTK_WINDOW (win), "finish-at.png");
  activate (win, "generate");
  WAIT_FOR (!_tessera_window_is_running (win) && _tessera_window_get_n_saved (win) == 2, TIMEOUT_S);
  again = g_object_ref (_tessera_window_get_last_saved (win));
  assert_same_pixels (finished, again);
  {
    g_autoptr (ts_image) image = load_png (again, &meta);
    g_autoptr (ts_image) image0 = NULL;
    ts_image_meta meta0;
    guint n;

    g_assert_cmpuint (meta.finish_at, ==, k);
    /* Finish Now's trajectory (built by the app from the steps) is the one the engine
     * records for a run with finish-at K: the tokens still masked revealed at step K. */
    image0 = load_png (finished, &meta0);
    n = meta.traj_grid_h * meta.traj_grid_w;
    g_assert_cmpuint (n, >, 0);
    g_assert_cmpuint (meta0.traj_grid_h * meta0.traj_grid_w, ==, n);
    g_assert_cmpmem (meta0.traj_codes, n * sizeof (int32_t), meta.traj_codes, n * sizeof (int32_t));
    g_assert_cmpmem (meta0.traj_reveal_step, n * sizeof (guint16), meta.traj_reveal_step, n * sizeof (guint16));
    g_assert_cmpmem (meta0.traj_confidence, n * sizeof (float), meta.traj_confidence, n * sizeof (float));
    for (guint i = 0; i < n; i++)
      {
        g_assert_cmpuint (meta0.traj_reveal_step[i], >=, 1);
        g_assert_cmpuint (meta0.traj_reveal_step[i], <=, k);
      }
    ts_image_meta_clear (&meta0);
    ts_image_meta_clear (&meta);
  }

  /* Cleared, every step runs again. */
  gtk_widget_activate_action (GTK_WIDGET (page), "generate-page.clear-finish-at", NULL);
  g_assert_cmpuint (tessera_generate_page_get_finish_at (page), ==, 0);
  g_assert_false (gtk_widget_get_visible (page_child (win, "finish_row")));
  activate (win, "generate");
  WAIT_FOR (!_tessera_window_is_running (win) && _tessera_window_get_n_saved (win) == 3, TIMEOUT_S);
  full = g_object_ref (_tessera_window_get_last_saved (win));
  {
    g_autoptr (ts_image) image = load_png (full, &meta);
    g_assert_cmpuint (meta.finish_at, ==, 0);
    ts_image_meta_clear (&meta);
  }
  wait_toasts_gone (win);
  close_window (win);
}

/* ---- the model, its sizes, the prompt's tokens ---- */

static void
test_model_status (void)
{
  TesseraWindow *win = open_ready_window (model_dir, 1280, 800, 0);
  TesseraGeneratePage *page = _tessera_window_get_generate_page (win);
  g_autoptr (GSettings) s = settings ();
  AdwComboRow *size_row;
  GListModel *sizes;
  guint n_untrained = 0;

  g_assert_cmpstr (tessera_generate_page_get_model_text (page), ==, "Model: tiny-meissonic on cpu");
  close_window (win);

  /* The demo model (trained at 128 px): the status names it and its other sizes are marked. */
  g_assert_nonnull (demo_model_dir);
  g_settings_reset (s, "image-sizes");
  g_setenv ("TESSERA_DEFAULT_MODEL", demo_model_dir, TRUE);
  win = open_ready_window ("", 1280, 800, 0);
  page = _tessera_window_get_generate_page (win);
  g_assert_cmpstr (tessera_generate_page_get_model_text (page), ==, "Model: demo-model on cpu");
  size_row = ADW_COMBO_ROW (page_child (win, "size_row"));
  sizes = adw_combo_row_get_model (size_row);
  g_assert_cmpuint (g_list_model_get_n_items (sizes), >, 1);
  for (guint i = 0; i < g_list_model_get_n_items (sizes); i++)
    {
      const char *label = gtk_string_list_get_string (GTK_STRING_LIST (sizes), i);

      if (g_str_has_prefix (label, "128 × 128"))
        g_assert_cmpstr (label, ==, "128 × 128");
      else
        {
          g_assert_true (g_str_has_suffix (label, "(not trained: expect noise)"));
          n_untrained++;
        }
    }
  g_assert_cmpuint (n_untrained, ==, g_list_model_get_n_items (sizes) - 1);

  /* The live token count: the tokenizer's, with the start and end tokens. */
  _tessera_window_set_prompt (win, "a red circle");
  WAIT_FOR (tessera_generate_page_get_token_count (page) >= 0, TIMEOUT_S);
  g_assert_cmpint (tessera_generate_page_get_token_count (page), ==, 5);
  g_assert_cmpstr (tessera_generate_page_get_token_text (page), ==, "5 / 77 tokens");
  {
    g_autoptr (GString) longer = g_string_new (NULL);

    for (int i = 0; i < 40; i++)
      g_string_append (longer, "red circle ");
    _tessera_window_set_prompt (win, longer->str);
    WAIT_FOR (tessera_generate_page_get_token_count (page) >= 0, TIMEOUT_S);
    g_assert_cmpint (tessera_generate_page_get_token_count (page), ==, 82);
    g_assert_cmpstr (tessera_generate_page_get_token_text (page), ==, "82 / 77 tokens: the end is left out");
    g_assert_true (gtk_widget_has_css_class (page_child (win, "token_label"), "warning"));
  }
  _tessera_window_set_prompt (win, "a large red circle on the left, blue background");
  WAIT_FOR (tessera_generate_page_get_token_count (page) >= 0, TIMEOUT_S);
  wait_toasts_gone (win);
  screenshot (GTK_WINDOW (win), "model-status.png");
  adw_style_manager_set_color_scheme (adw_style_manager_get_default (), ADW_COLOR_SCHEME_FORCE_DARK);
  screenshot (GTK_WINDOW (win), "model-status-dark.png");
  adw_style_manager_set_color_scheme (adw_style_manager_get_default (), ADW_COLOR_SCHEME_DEFAULT);

  /* Preferences: the way back to the demo model, and devices named in full. */
  {
    GtkWidget *prefs;

    g_settings_set_string (s, "model-folder", model_dir);
    WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "ready") == 0 &&
              g_strcmp0 (tessera_generate_page_get_model_text (page), "Model: tiny-meissonic on cpu") == 0,
              TIMEOUT_S);
    prefs = tessera_preferences_new (GTK_WINDOW (win), s);
    gtk_window_present (GTK_WINDOW (prefs));
    g_assert_true (gtk_widget_get_visible (GTK_WIDGET (gtk_widget_get_template_child (prefs, TESSERA_TYPE_PREFERENCES,
                                                                                      "demo_row"))));
    {
      AdwComboRow *backend_row = ADW_COMBO_ROW (gtk_widget_get_template_child (prefs, TESSERA_TYPE_PREFERENCES,
                                                                               "backend_row"));
      GListModel *labels = adw_combo_row_get_model (backend_row);
      for (guint i = 0; i < g_list_model_get_n_items (labels); i++)
        {
          const char *label = gtk_string_list_get_string (GTK_STRING_LIST (labels), i);
          g_test_message ("device: %s", label);
          if (g_str_has_prefix (label, "llvmpipe"))
            g_assert_nonnull (strstr (label, "software renderer: slower than Processor"));
        }
      g_assert_true (adw_combo_row_get_use_subtitle (backend_row));
    }
    {
      /* Precision: the row and the setting move together; the subtitle says what this
       * processor offers. */
      AdwComboRow *row = ADW_COMBO_ROW (gtk_widget_get_template_child (prefs, TESSERA_TYPE_PREFERENCES,
                                                                       "precision_row"));
      const char *subtitle = adw_action_row_get_subtitle (ADW_ACTION_ROW (row));

      g_assert_cmpuint (adw_combo_row_get_selected (row), ==, 0);
      g_assert_nonnull (subtitle);
      g_assert_nonnull (strstr (subtitle, ts_cpu_bf16_support () == TS_BF16_NONE ? "AVX-512" : "bf16"));
      adw_combo_row_set_selected (row, 1);
      {
        g_autofree char *value = g_settings_get_string (s, "precision");
        g_assert_cmpstr (value, ==, "fp32");
      }
      g_settings_reset (s, "precision");
      g_assert_cmpuint (adw_combo_row_get_selected (row), ==, 0);
      /* each change reloads the model: wait for it */
      WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "ready") == 0, TIMEOUT_S);
    }
    screenshot (GTK_WINDOW (prefs), "preferences.png");
    {
      /* The device list as it opens: names in full, wrapped where long. */
      GtkWidget *row = GTK_WIDGET (gtk_widget_get_template_child (prefs, TESSERA_TYPE_PREFERENCES, "backend_row"));
      GtkWidget *popover = NULL;

      gtk_widget_activate (row);
      for (GtkWidget *c = gtk_widget_get_first_child (row); c && !popover; c = gtk_widget_get_next_sibling (c))
        if (GTK_IS_POPOVER (c))
          popover = c;
      if (!popover)
        {
          /* AdwComboRow keeps its popover deeper, next to the arrow. */
          GtkWidget *stack[64];
          int top = 0;

          stack[top++] = row;
          while (top > 0 && !popover)
            {
              GtkWidget *w = stack[--top];
              for (GtkWidget *c = gtk_widget_get_first_child (w); c; c = gtk_widget_get_next_sibling (c))
                if (GTK_IS_POPOVER (c))
                  popover = c;
                else if (top < (int) G_N_ELEMENTS (stack))
                  stack[top++] = c;
            }
        }
      g_assert_nonnull (popover);
      WAIT_FOR (gtk_widget_get_mapped (popover), 10);
      screenshot_widget (popover, "preferences-devices.png");
      gtk_popover_popdown (GTK_POPOVER (popover));
    }
    gtk_widget_activate_action (prefs, "prefs.use-demo-model", NULL);
    WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "ready") == 0 &&
              g_strcmp0 (tessera_generate_page_get_model_text (page), "Model: demo-model on cpu") == 0,
              TIMEOUT_S);
    {
      g_autofree char *folder = g_settings_get_string (s, "model-folder");
      g_assert_cmpstr (folder, ==, "");
    }
    gtk_window_destroy (GTK_WINDOW (prefs));
  }
  close_window (win);
  g_setenv ("TESSERA_DEFAULT_MODEL", "", TRUE);
}

/* ---- mid-run: closing, preferences ---- */

static void
test_mid_run (void)
{
  TesseraWindow *win = open_ready_window (model_dir, 1280, 800, SIZE);
  g_autoptr (GSettings) s = settings ();
  AdwMessageDialog *dialog;
  guint steps;

  select_default_size (win);
  _tessera_window_set_prompt (win, "a slow image");
  set_steps (200);
  activate (win, "generate");
  WAIT_FOR (_tessera_window_get_n_step_updates (win) >= 2, TIMEOUT_S);

  /* Changing the threads does not stop the run: it applies after it. */
  g_settings_set_int (s, "threads", 1);
  g_assert_true (_tessera_window_is_running (win));
  g_assert_true (_tessera_window_get_reload_pending (win));
  g_assert_cmpstr (_tessera_window_get_last_toast (win), ==, "The new model settings apply once this image is done");
  steps = _tessera_window_get_n_step_updates (win);
  WAIT_FOR (_tessera_window_get_n_step_updates (win) > steps + 2, TIMEOUT_S);
  g_assert_true (_tessera_window_is_running (win));

  /* Closing asks first; keeping going keeps the run. */
  gtk_window_close (GTK_WINDOW (win));
  dialog = _tessera_window_get_close_dialog (win);
  g_assert_nonnull (dialog);
  g_assert_true (_tessera_window_is_running (win));
  screenshot (GTK_WINDOW (dialog), "close-mid-run.png");
  adw_message_dialog_response (dialog, "cancel");
  g_assert_null (_tessera_window_get_close_dialog (win));
  g_assert_true (_tessera_window_is_running (win));
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (win)));
  /* Quitting (Ctrl+Q) asks the same, and does not quit behind the question. */
  g_action_group_activate_action (G_ACTION_GROUP (app), "quit", NULL);
  dialog = _tessera_window_get_close_dialog (win);
  g_assert_nonnull (dialog);
  adw_message_dialog_response (dialog, "cancel");
  g_assert_true (_tessera_window_is_running (win));
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (win)));

  /* The run ends (here: cancelled), then the model reloads with the new threads. */
  activate (win, "cancel");
  WAIT_FOR (!_tessera_window_is_running (win), TIMEOUT_S);
  WAIT_FOR (!_tessera_window_get_reload_pending (win), TIMEOUT_S);
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "ready") == 0, TIMEOUT_S);
  g_settings_reset (s, "threads");
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "ready") == 0, TIMEOUT_S);

  /* Idle, closing does not ask. */
  g_object_add_weak_pointer (G_OBJECT (win), (gpointer *) &win);
  gtk_window_close (GTK_WINDOW (win));
  WAIT_FOR (win == NULL, TIMEOUT_S);
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

  g_test_add_func ("/adaptive/narrow", test_narrow);
  g_test_add_func ("/adaptive/seed64", test_seed64);
  g_test_add_func ("/adaptive/clamp", test_clamp);
  g_test_add_func ("/adaptive/finish-at", test_finish_at);
  g_test_add_func ("/adaptive/model-status", test_model_status);
  g_test_add_func ("/adaptive/mid-run", test_mid_run);
  ret = g_test_run ();

  g_clear_object (&app);
  g_free (model_dir);
  g_free (gallery_dir);
  ui_test_remove_tmp (tmp_dir);
  g_free (tmp_dir);
  return ret;
}
