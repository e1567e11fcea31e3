/* SPDX-License-Identifier: MIT
 *
 * test-gallery.c — issue 16's items 7, 8 and 9 in the real window (suite 'ui'): the
 * gallery's full-size viewer (Enter, Left/Right, zoom, nearest-neighbour, Escape), its
 * context menu, search, multi-select delete with undo and the selection after a delete,
 * thumbnails that fit their tiles; the canvas's zoom and the confidence legend on the
 * generate page; the inpainting brush's default size, the eraser tool, the mask after a
 * repaint and the preview confined to the masked cells. The gallery's images are PNGs
 * written here with the engine's writer (blocks of pure colour, so that any blur shows
 * as colours that are not in the image); the generate and inpaint pages use the bundled
 * demo model. Screenshots go to $TESSERA_SCREENSHOT_DIR.
 *
 * Skips (77) without a display.
 */
#define G_SETTINGS_ENABLE_BACKEND
#include <adwaita.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "tessera-application.h"
#include "tessera-canvas.h"
#include "tessera-engine-types.h"
#include "tessera-mask-editor.h"
#include "tessera-preview.h"
#include "tessera-window-private.h"
#include "ui-test-tmp.h"

#define SHOT_W 1280
#define SHOT_H 800
#define TIMEOUT_S 120
#define N_IMAGES 6

static const char *demo_model_dir;
static char *tmp_dir;
static GtkApplication *app;

/* The blocks' colours: every pixel of every test image is one of these. */
static const guint8 colours[4][3] = { { 0xe0, 0x1b, 0x24 }, { 0x1c, 0x71, 0xd8 }, { 0xf6, 0xd3, 0x2d }, { 0x26, 0xa2, 0x69 } };

static const struct {
  const char *prompt;
  guint w, h;
} images[N_IMAGES] = {
  { "a red fox in the snow", 128, 128 },
  { "a blue whale under a red sky", 128, 128 },
  { "a lighthouse at dusk", 256, 128 },
  { "green hills", 128, 128 },
  { "a red barn", 128, 128 },
  { "portrait of a cat", 128, 256 },
};

static gboolean
tick (gpointer data)
{
  (void) data;
  return G_SOURCE_CONTINUE;
}

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

static void
settle (guint ms)
{
  gint64 t0 = g_get_monotonic_time ();

  WAIT_FOR (g_get_monotonic_time () - t0 > (gint64) ms * 1000, 10);
}

static GSettings *
settings (void)
{
  return g_settings_new ("io.github.tessera.Tessera");
}

/* A gallery folder of its own for each test, holding the N_IMAGES images: 32 px blocks
 * of the four colours, the first a one-pixel checkerboard, written oldest first (image i is i minutes old, counted down). */
static char *
make_gallery (const char *name, GFile **files)
{
  g_autofree char *dir = g_build_filename (tmp_dir, name, NULL);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  for (guint i = 0; i < N_IMAGES; i++)
    {
      g_autofree char *base = g_strdup_printf ("test-%u.png", i);
      g_autofree char *path = g_build_filename (dir, base, NULL);
      g_autoptr (GFile) file = g_file_new_for_path (path);
      ts_image *img = ts_image_new (images[i].w, images[i].h, NULL);
      ts_image_meta meta;
      ts_error err;

      for (guint y = 0; y < img->height; y++)
        for (guint x = 0; x < img->width; x++)
          {
            /* The top-left block is a one-pixel checkerboard, where any blur shows. */
            guint c = x < 32 && y < 32 ? (x + y) % 2 : (x / 32 + 2 * (y / 32) + i) % 4;

            memcpy (img->pixels + ((gsize) y * img->width + x) * 3, colours[c], 3);
          }
      ts_image_meta_init (&meta);
      meta.prompt = (char *) images[i].prompt;
      meta.seed = 1000 + i;
      meta.steps = 12;
      meta.cfg = 9;
      meta.width = images[i].w;
      meta.height = images[i].h;
      g_assert_cmpint (ts_image_save_png (img, &meta, path, &err), ==, TS_OK);
      ts_image_free (img);
      g_assert_true (g_file_set_attribute_uint64 (file, G_FILE_ATTRIBUTE_TIME_MODIFIED, (guint64) (now - 600 + 60 * i),
                                                  G_FILE_QUERY_INFO_NONE, NULL, NULL));
      if (files)
        files[i] = g_object_ref (file);
    }
  return g_steal_pointer (&dir);
}

static TesseraWindow *
open_window (const char *model, const char *gallery)
{
  g_autoptr (GSettings) s = settings ();
  TesseraWindow *win;

  g_settings_set_string (s, "model-folder", model);
  g_settings_set_string (s, "gallery-folder", gallery);
  g_settings_set_string (s, "preview-mode", "tokens");
  win = tessera_window_new (ADW_APPLICATION (app));
  gtk_window_set_decorated (GTK_WINDOW (win), FALSE);
  gtk_window_set_default_size (GTK_WINDOW (win), SHOT_W, SHOT_H);
  gtk_window_present (GTK_WINDOW (win));
  WAIT_FOR (gtk_widget_get_mapped (GTK_WIDGET (win)) && gtk_widget_get_width (GTK_WIDGET (win)) > 0, 10);
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
show_page (TesseraWindow *win, const char *name)
{
  adw_view_stack_set_visible_child_name (win->view_stack, name);
}

/* widget as drawn now, through the window's renderer. */
static GdkTexture *
render_widget (GtkWidget *widget)
{
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  g_autoptr (GskRenderNode) node = NULL;
  int w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);

  for (int attempt = 0; attempt < 50 && !node; attempt++)
    {
      GtkSnapshot *snapshot = gtk_snapshot_new ();

      gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
      node = gtk_snapshot_free_to_node (snapshot);
      if (!node)
        settle (50);
    }
  g_assert_nonnull (node);
  return gsk_renderer_render_texture (gtk_native_get_renderer (gtk_widget_get_native (widget)), node,
                                      &GRAPHENE_RECT_INIT (0, 0, w, h));
}

static void
screenshot (gpointer widget, const char *name)
{
  const char *dir = g_getenv ("TESSERA_SCREENSHOT_DIR");
  g_autofree char *path = NULL;
  g_autoptr (GdkTexture) texture = NULL;

  if (!dir)
    return;
  g_mkdir_with_parents (dir, 0755);
  /* Transitions and animations (about 250 ms in libadwaita) settle first. */
  settle (700);
  texture = render_widget (GTK_WIDGET (widget));
  path = g_build_filename (dir, name, NULL);
  g_assert_true (gdk_texture_save_to_png (texture, path));
  g_test_message ("screenshot %s", path);
}

/* The pixel at (x, y) of a downloaded ARGB32 texture, as R, G, B. */
static void
pixel_at (const guint8 *px, gsize stride, int x, int y, guint8 rgb[3])
{
  const guint8 *p = px + (gsize) y * stride + (gsize) x * 4;

  rgb[0] = p[2];
  rgb[1] = p[1];
  rgb[2] = p[0];
}

/* How many pixels of the rectangle are not one of the test images' colours: 0 when the
 * image was scaled up with nearest-neighbour sampling, many when it was blurred. */
static guint
count_foreign_pixels (GdkTexture *texture, int x0, int y0, int x1, int y1)
{
  int w = gdk_texture_get_width (texture);
  g_autofree guint8 *px = g_malloc ((gsize) w * 4 * gdk_texture_get_height (texture));
  guint foreign = 0;

  gdk_texture_download (texture, px, (gsize) w * 4);
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++)
      {
        guint8 rgb[3];
        gboolean known = FALSE;

        pixel_at (px, (gsize) w * 4, x, y, rgb);
        for (guint c = 0; c < G_N_ELEMENTS (colours); c++)
          known |= memcmp (rgb, colours[c], 3) == 0;
        foreign += !known;
      }
  return foreign;
}

/* The image's middle half on the canvas, in canvas pixels (away from the on-screen
 * buttons in the corners). */
static guint
canvas_foreign_pixels (TesseraCanvas *canvas)
{
  g_autoptr (GdkTexture) shot = render_widget (GTK_WIDGET (canvas));
  GdkPaintable *p = tessera_canvas_get_paintable (canvas);
  double s = tessera_canvas_get_scale (canvas);
  int w = gtk_widget_get_width (GTK_WIDGET (canvas)), h = gtk_widget_get_height (GTK_WIDGET (canvas));
  int iw = (int) (gdk_paintable_get_intrinsic_width (p) * s), ih = (int) (gdk_paintable_get_intrinsic_height (p) * s);
  int x0 = MAX (0, (w - iw) / 2) + MIN (iw, w) / 4, y0 = MAX (0, (h - ih) / 2) + MIN (ih, h) / 4;

  /* Not an empty rectangle, which would pass whatever was drawn. */
  g_assert_cmpint (MIN (iw, w) / 2, >, 16);
  g_assert_cmpint (MIN (ih, h) / 2, >, 16);
  return count_foreign_pixels (shot, x0, y0, x0 + MIN (iw, w) / 2, y0 + MIN (ih, h) / 2);
}

static gboolean
gallery_ready (TesseraGallery *gallery, guint n)
{
  GListModel *model = tessera_gallery_get_shown_model (gallery);

  /* At least n: a run finishing meanwhile adds its image. */
  if (g_list_model_get_n_items (model) < n)
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (TesseraGalleryItem) item = g_list_model_get_item (model, i);

      if (!tessera_gallery_item_get_meta (item))
        {
          tessera_gallery_item_load (item);
          return FALSE;
        }
    }
  return TRUE;
}

static GFile *
shown_file (TesseraGallery *gallery, guint position)
{
  g_autoptr (TesseraGalleryItem) item = g_list_model_get_item (tessera_gallery_get_shown_model (gallery), position);

  return item ? tessera_gallery_item_get_file (item) : NULL;
}

/* A key press on widget through its class's key bindings, as GTK would deliver it to the
 * focused widget or its ancestors. */
static void
press_binding (GtkWidget *widget, guint keyval, GdkModifierType mods)
{
  for (GtkWidget *w = widget; w; w = gtk_widget_get_parent (w))
    {
      g_autoptr (GListModel) controllers = gtk_widget_observe_controllers (w);

      for (guint i = 0; i < g_list_model_get_n_items (controllers); i++)
        {
          g_autoptr (GObject) c = g_list_model_get_item (controllers, i);

          if (!GTK_IS_SHORTCUT_CONTROLLER (c))
            continue;
          for (guint j = 0; j < g_list_model_get_n_items (G_LIST_MODEL (c)); j++)
            {
              g_autoptr (GtkShortcut) sc = g_list_model_get_item (G_LIST_MODEL (c), j);
              GtkShortcutTrigger *trigger = gtk_shortcut_get_trigger (sc);

              if (GTK_IS_KEYVAL_TRIGGER (trigger) &&
                  gtk_keyval_trigger_get_keyval (GTK_KEYVAL_TRIGGER (trigger)) == keyval &&
                  gtk_keyval_trigger_get_modifiers (GTK_KEYVAL_TRIGGER (trigger)) == mods)
                {
                  g_assert_true (gtk_shortcut_action_activate (gtk_shortcut_get_action (sc),
                                                               GTK_SHORTCUT_ACTION_EXCLUSIVE, w,
                                                               gtk_shortcut_get_arguments (sc)));
                  return;
                }
            }
        }
    }
  g_error ("no binding for %s on %s or above", gdk_keyval_name (keyval), G_OBJECT_TYPE_NAME (widget));
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

static GtkWidget *
find_by_class (GtkWidget *widget, const char *css_class)
{
  if (gtk_widget_has_css_class (widget, css_class))
    return widget;
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c; c = gtk_widget_get_next_sibling (c))
    {
      GtkWidget *found = find_by_class (c, css_class);

      if (found)
        return found;
    }
  return NULL;
}

/* The menu's items (GtkModelButton) that can be activated now. */
static guint
count_sensitive_items (GtkWidget *widget)
{
  guint n = 0;

  if (g_str_equal (G_OBJECT_TYPE_NAME (widget), "GtkModelButton") && gtk_widget_is_sensitive (widget) &&
      gtk_widget_get_visible (widget))
    n++;
  for (GtkWidget *c = gtk_widget_get_first_child (widget); c; c = gtk_widget_get_next_sibling (c))
    n += count_sensitive_items (c);
  return n;
}

/* The darkest channel of any pixel of label as the window draws it (light theme: its
 * text's colour, after the opacity of the label and of everything around it). */
static guint
darkest_in (GtkWidget *win, GtkWidget *label)
{
  g_autoptr (GdkTexture) shot = render_widget (win);
  int w = gdk_texture_get_width (shot), h = gdk_texture_get_height (shot);
  g_autofree guint8 *px = g_malloc ((gsize) w * 4 * h);
  graphene_rect_t r;
  guint darkest = 255;

  g_assert_true (gtk_widget_compute_bounds (label, win, &r));
  gdk_texture_download (shot, px, (gsize) w * 4);
  for (int y = MAX (0, (int) r.origin.y); y < MIN (h, (int) (r.origin.y + r.size.height)); y++)
    for (int x = MAX (0, (int) r.origin.x); x < MIN (w, (int) (r.origin.x + r.size.width)); x++)
      for (int c = 0; c < 3; c++)
        darkest = MIN (darkest, px[(gsize) y * w * 4 + (gsize) x * 4 + c]);
  return darkest;
}

/* ---- the gallery ---- */

/* Enter opens the viewer; Left/Right walk the list and move the selection; plus, 1 and 0
 * zoom; the image is scaled up without blur; Escape closes. */
static void
test_viewer (void)
{
  GFile *files[N_IMAGES];
  g_autofree char *dir = make_gallery ("viewer", files);
  TesseraWindow *win = open_window ("", dir);
  TesseraGallery *gallery = _tessera_window_get_gallery (win);
  GtkWidget *grid = find_descendant (GTK_WIDGET (gallery), GTK_TYPE_GRID_VIEW);
  TesseraImageViewer *viewer;
  TesseraCanvas *canvas;
  double fit;

  show_page (win, "gallery");
  WAIT_FOR (gallery_ready (gallery, N_IMAGES), TIMEOUT_S);
  /* Newest first. */
  g_assert_true (g_file_equal (shown_file (gallery, 0), files[N_IMAGES - 1]));

  g_signal_emit_by_name (grid, "activate", 1u);
  viewer = tessera_gallery_get_viewer (gallery);
  g_assert_nonnull (viewer);
  g_assert_cmpuint (tessera_image_viewer_get_position (viewer), ==, 1);
  g_assert_true (g_file_equal (tessera_gallery_item_get_file (tessera_gallery_get_selected (gallery)), files[4]));
  canvas = tessera_image_viewer_get_canvas (viewer);
  g_assert_cmpint (gdk_paintable_get_intrinsic_width (tessera_canvas_get_paintable (canvas)), ==, 128);
  settle (300);
  fit = tessera_canvas_get_scale (canvas);
  g_test_message ("viewer: 128 px image fitted at %.2f", fit);
  g_assert_true (tessera_canvas_get_fit (canvas));
  g_assert_cmpfloat (fit, >, 2.0);
  g_assert_true (tessera_canvas_get_nearest (canvas));
  g_assert_cmpuint (canvas_foreign_pixels (canvas), ==, 0);
  screenshot (win, "viewer.png");

  /* Right: the next (older) image, and the gallery's selection follows. */
  press_binding (GTK_WIDGET (viewer), GDK_KEY_Right, 0);
  g_assert_cmpuint (tessera_image_viewer_get_position (viewer), ==, 2);
  g_assert_true (g_file_equal (tessera_gallery_item_get_file (tessera_gallery_get_selected (gallery)), files[3]));
  press_binding (GTK_WIDGET (viewer), GDK_KEY_Left, 0);
  press_binding (GTK_WIDGET (viewer), GDK_KEY_Left, 0);
  g_assert_cmpuint (tessera_image_viewer_get_position (viewer), ==, 0);
  /* The first has no previous. */
  g_assert_false (tessera_image_viewer_step (viewer, -1));
  g_assert_cmpint (gdk_paintable_get_intrinsic_height (tessera_canvas_get_paintable (canvas)), ==, 256);
  press_binding (GTK_WIDGET (viewer), GDK_KEY_Right, 0);

  /* Zoom: 1 is actual size, plus zooms in (and stays sharp), 0 fits again. */
  press_binding (GTK_WIDGET (viewer), GDK_KEY_1, 0);
  g_assert_cmpfloat (tessera_canvas_get_scale (canvas), ==, 1.0);
  g_assert_false (tessera_canvas_get_fit (canvas));
  for (int i = 0; i < 5; i++)
    press_binding (GTK_WIDGET (viewer), GDK_KEY_plus, 0);
  g_test_message ("zoomed to %.2f", tessera_canvas_get_scale (canvas));
  g_assert_cmpfloat (tessera_canvas_get_scale (canvas), ==, 6.0); /* 1, 1.5, 2, 3, 4, 6 */
  /* Pan: a drag's worth of moving the middle; zoomed in, the image fills the canvas. */
  tessera_canvas_zoom_to (canvas, 12, 0, 0);
  g_assert_cmpuint (canvas_foreign_pixels (canvas), ==, 0);
  screenshot (win, "viewer-zoom.png");
  press_binding (GTK_WIDGET (viewer), GDK_KEY_minus, 0);
  g_assert_cmpfloat (tessera_canvas_get_scale (canvas), <, 12.0);
  press_binding (GTK_WIDGET (viewer), GDK_KEY_0, 0);
  g_assert_true (tessera_canvas_get_fit (canvas));

  adw_style_manager_set_color_scheme (adw_style_manager_get_default (), ADW_COLOR_SCHEME_FORCE_DARK);
  screenshot (win, "viewer-dark.png");
  adw_style_manager_set_color_scheme (adw_style_manager_get_default (), ADW_COLOR_SCHEME_DEFAULT);

  /* Delete in the viewer trashes the image shown, and the viewer shows the next. */
  g_assert_cmpuint (tessera_image_viewer_get_position (viewer), ==, 1);
  press_binding (GTK_WIDGET (viewer), GDK_KEY_Delete, 0);
  WAIT_FOR (g_list_model_get_n_items (tessera_gallery_get_shown_model (gallery)) == N_IMAGES - 1, TIMEOUT_S);
  g_assert_false (g_file_query_exists (files[4], NULL));
  g_assert_nonnull (tessera_gallery_get_viewer (gallery));
  g_assert_cmpuint (tessera_image_viewer_get_position (viewer), ==, 1);
  g_assert_true (g_file_equal (tessera_gallery_item_get_file (tessera_gallery_get_selected (gallery)), files[3]));
  /* Undo puts it back before the one shown, which stays shown. */
  tessera_gallery_undo_delete (gallery);
  WAIT_FOR (g_list_model_get_n_items (tessera_gallery_get_shown_model (gallery)) == N_IMAGES, TIMEOUT_S);
  g_assert_cmpuint (tessera_image_viewer_get_position (viewer), ==, 2);
  g_assert_true (g_file_equal (tessera_gallery_item_get_file (tessera_gallery_get_selected (gallery)), files[3]));

  press_binding (GTK_WIDGET (viewer), GDK_KEY_Escape, 0);
  g_assert_null (tessera_gallery_get_viewer (gallery));
  g_assert_true (g_file_equal (tessera_gallery_item_get_file (tessera_gallery_get_selected (gallery)), files[3]));
  close_window (win);
  for (guint i = 0; i < N_IMAGES; i++)
    g_object_unref (files[i]);
}

/* Thumbnails fit inside their tiles; the parameters read in full contrast; the context
 * menu's actions follow the selection. */
static void
test_grid (void)
{
  GFile *files[N_IMAGES];
  g_autofree char *dir = make_gallery ("grid", files);
  TesseraWindow *win = open_window ("", dir);
  TesseraGallery *gallery = _tessera_window_get_gallery (win);
  GtkWidget *grid = find_descendant (GTK_WIDGET (gallery), GTK_TYPE_GRID_VIEW);
  GtkWidget *picture;
  GtkPopover *menu;

  show_page (win, "gallery");
  WAIT_FOR (gallery_ready (gallery, N_IMAGES), TIMEOUT_S);
  picture = find_descendant (grid, GTK_TYPE_PICTURE);
  g_assert_nonnull (picture);
  g_assert_cmpint (gtk_picture_get_content_fit (GTK_PICTURE (picture)), ==, GTK_CONTENT_FIT_CONTAIN);

  /* The wide lighthouse (256x128), whole in its tile: its thumbnail keeps 2:1. */
  tessera_gallery_select_file (gallery, files[2]);
  WAIT_FOR (tessera_gallery_get_selected (gallery) &&
            tessera_gallery_item_get_meta (tessera_gallery_get_selected (gallery)), TIMEOUT_S);
  /* The selected image beside the grid is scaled up without blur too. */
  {
    TesseraCanvas *detail = TESSERA_CANVAS (gtk_widget_get_template_child (GTK_WIDGET (gallery), TESSERA_TYPE_GALLERY,
                                                                           "detail_picture"));

    settle (300);
    g_test_message ("detail: 256 px wide image at %.2f", tessera_canvas_get_scale (detail));
    g_assert_true (tessera_canvas_get_nearest (detail));
    g_assert_cmpuint (canvas_foreign_pixels (detail), ==, 0);
  }
  screenshot (win, "gallery-grid.png");
  adw_style_manager_set_color_scheme (adw_style_manager_get_default (), ADW_COLOR_SCHEME_FORCE_DARK);
  screenshot (win, "gallery-grid-dark.png");
  adw_style_manager_set_color_scheme (adw_style_manager_get_default (), ADW_COLOR_SCHEME_DEFAULT);

  /* The parameter values (the rows' subtitles) are drawn in the full text colour: on the
   * light theme's white rows their darkest pixel is as dark as other text's (about 51,
   * libadwaita's 80 % black), where it was 133 when they were dimmed to 60 %. */
  {
    GtkWidget *params = GTK_WIDGET (gtk_widget_get_template_child (GTK_WIDGET (gallery), TESSERA_TYPE_GALLERY, "params_list"));
    GtkWidget *value = find_by_class (params, "subtitle");
    guint v;

    g_assert_nonnull (value);
    v = darkest_in (GTK_WIDGET (win), value);
    g_test_message ("parameter value '%s': darkest channel %u", gtk_label_get_label (GTK_LABEL (value)), v);
    g_assert_cmpuint (v, <=, 70);
  }

  /* The context menu on the first item: it becomes the selection; with one image selected
   * every action is there. */
  menu = tessera_gallery_popup_menu (gallery, 0);
  WAIT_FOR (gtk_widget_get_mapped (GTK_WIDGET (menu)), 10);
  g_assert_true (g_file_equal (tessera_gallery_item_get_file (tessera_gallery_get_selected (gallery)), files[5]));
  g_assert_cmpuint (count_sensitive_items (GTK_WIDGET (menu)), ==, 9);
  /* A popover is a surface of its own: the window's picture does not hold it. */
  screenshot (menu, "gallery-menu.png");
  gtk_popover_popdown (menu);
  /* With two selected, only Move to Trash applies. */
  gtk_selection_model_select_item (GTK_SELECTION_MODEL (tessera_gallery_get_shown_model (gallery)), 1, FALSE);
  g_assert_cmpuint (tessera_gallery_get_n_selected (gallery), ==, 2);
  gtk_popover_popup (menu);
  WAIT_FOR (gtk_widget_get_mapped (GTK_WIDGET (menu)), 10);
  g_assert_cmpuint (count_sensitive_items (GTK_WIDGET (menu)), ==, 1);
  screenshot (menu, "gallery-menu-many.png");
  gtk_popover_popdown (menu);
  close_window (win);
  for (guint i = 0; i < N_IMAGES; i++)
    g_object_unref (files[i]);
}

static void
test_search (void)
{
  g_autofree char *dir = make_gallery ("search", NULL);
  TesseraWindow *win = open_window ("", dir);
  TesseraGallery *gallery = _tessera_window_get_gallery (win);
  GListModel *shown = tessera_gallery_get_shown_model (gallery);
  GtkStack *results = GTK_STACK (gtk_widget_get_template_child (GTK_WIDGET (gallery), TESSERA_TYPE_GALLERY, "results_stack"));

  show_page (win, "gallery");
  WAIT_FOR (gallery_ready (gallery, N_IMAGES), TIMEOUT_S);
  tessera_gallery_set_search (gallery, "RED");
  g_assert_cmpuint (g_list_model_get_n_items (shown), ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr (TesseraGalleryItem) item = g_list_model_get_item (shown, i);
      g_autofree char *folded = g_utf8_casefold (tessera_gallery_item_get_meta (item)->prompt, -1);

      g_assert_nonnull (strstr (folded, "red"));
    }
  screenshot (win, "gallery-search.png");
  /* Every word must be there. */
  tessera_gallery_set_search (gallery, "red fox");
  g_assert_cmpuint (g_list_model_get_n_items (shown), ==, 1);
  tessera_gallery_set_search (gallery, "zebra");
  g_assert_cmpuint (g_list_model_get_n_items (shown), ==, 0);
  g_assert_cmpstr (gtk_stack_get_visible_child_name (results), ==, "no-results");
  /* Escape in the field (its stop-search) shows everything again. */
  g_signal_emit_by_name (gtk_widget_get_template_child (GTK_WIDGET (gallery), TESSERA_TYPE_GALLERY, "search_entry"),
                         "stop-search");
  g_assert_cmpuint (g_list_model_get_n_items (shown), ==, N_IMAGES);
  g_assert_cmpstr (gtk_stack_get_visible_child_name (results), ==, "grid");
  close_window (win);
}

static gboolean
file_exists (GFile *file)
{
  return g_file_query_exists (file, NULL);
}

/* Three selected, deleted together, the next one selected, all back with one undo; a
 * single delete selects the next image too. */
static void
test_multi_delete (void)
{
  GFile *files[N_IMAGES];
  g_autofree char *dir = make_gallery ("delete", files);
  TesseraWindow *win = open_window ("", dir);
  TesseraGallery *gallery = _tessera_window_get_gallery (win);
  GListModel *shown = tessera_gallery_get_shown_model (gallery);
  GtkSelectionModel *sel = GTK_SELECTION_MODEL (shown);

  show_page (win, "gallery");
  WAIT_FOR (gallery_ready (gallery, N_IMAGES), TIMEOUT_S);
  /* Positions 1-3: the barn, the hills, the lighthouse (files 4, 3, 2). */
  gtk_selection_model_select_item (sel, 1, TRUE);
  gtk_selection_model_select_item (sel, 2, FALSE);
  gtk_selection_model_select_item (sel, 3, FALSE);
  g_assert_cmpuint (tessera_gallery_get_n_selected (gallery), ==, 3);
  g_assert_null (tessera_gallery_get_selected (gallery));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (gallery), "gallery.delete", NULL));
  {
    GtkStack *detail = GTK_STACK (gtk_widget_get_template_child (GTK_WIDGET (gallery), TESSERA_TYPE_GALLERY, "detail_stack"));
    g_assert_cmpstr (gtk_stack_get_visible_child_name (detail), ==, "many");
  }
  WAIT_FOR (g_list_model_get_n_items (shown) == N_IMAGES - 3, TIMEOUT_S);
  g_assert_false (file_exists (files[4]) || file_exists (files[3]) || file_exists (files[2]));
  g_assert_true (tessera_gallery_can_undo_delete (gallery));
  /* The image after them (the whale, file 1) took their place. */
  g_assert_cmpuint (tessera_gallery_get_n_selected (gallery), ==, 1);
  g_assert_true (g_file_equal (tessera_gallery_item_get_file (tessera_gallery_get_selected (gallery)), files[1]));
  screenshot (win, "gallery-after-multi-delete.png");

  tessera_gallery_undo_delete (gallery);
  WAIT_FOR (g_list_model_get_n_items (shown) == N_IMAGES, TIMEOUT_S);
  g_assert_true (file_exists (files[4]) && file_exists (files[3]) && file_exists (files[2]));

  /* One image: the next one is selected after it goes. */
  tessera_gallery_select_file (gallery, files[5]);
  tessera_gallery_delete_selected (gallery);
  WAIT_FOR (g_list_model_get_n_items (shown) == N_IMAGES - 1, TIMEOUT_S);
  g_assert_true (g_file_equal (tessera_gallery_item_get_file (tessera_gallery_get_selected (gallery)), files[4]));
  /* The last one: the one before it. */
  tessera_gallery_select_file (gallery, files[0]);
  tessera_gallery_delete_selected (gallery);
  WAIT_FOR (g_list_model_get_n_items (shown) == N_IMAGES - 2, TIMEOUT_S);
  g_assert_true (g_file_equal (tessera_gallery_item_get_file (tessera_gallery_get_selected (gallery)), files[1]));
  close_window (win);
  for (guint i = 0; i < N_IMAGES; i++)
    g_object_unref (files[i]);
}

/* Shift-click style: a selection made with the grid's own modifiers is a multi-select
 * (the GtkMultiSelection behind the grid). Ctrl+A selects all, Delete trashes them. */

/* ---- the generate page: zoom, nearest-neighbour, the legend ---- */

static TesseraWindow *
open_demo_window (const char *gallery)
{
  TesseraWindow *win;

  g_assert_nonnull (demo_model_dir);
  win = open_window (demo_model_dir, gallery);
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "ready");
  return win;
}

static void
test_preview (void)
{
  GFile *files[N_IMAGES];
  g_autofree char *dir = make_gallery ("preview", files);
  TesseraWindow *win = open_demo_window (dir);
  TesseraGeneratePage *page = _tessera_window_get_generate_page (win);
  TesseraCanvas *canvas = TESSERA_CANVAS (find_descendant (GTK_WIDGET (page), TESSERA_TYPE_CANVAS));
  g_autoptr (GdkTexture) image = gdk_texture_new_from_file (files[0], NULL);
  g_autoptr (GSettings) s = settings ();
  TesseraModelInfo *info = _tessera_window_get_model_info (win);
  TesseraStep step = { 0 };
  int g = 128 / (int) info->vae_scale_factor, n = g * g;

  /* A 128 px result, scaled up on the canvas without blur. */
  tessera_generate_page_set_preview (page, GDK_PAINTABLE (image));
  settle (300);
  g_test_message ("generate canvas: 128 px at %.2f", tessera_canvas_get_scale (canvas));
  g_assert_cmpfloat (tessera_canvas_get_scale (canvas), >, 1.5);
  g_assert_true (tessera_canvas_get_nearest (canvas));
  g_assert_cmpuint (canvas_foreign_pixels (canvas), ==, 0);
  g_assert_false (tessera_canvas_get_legend_visible (canvas));
  screenshot (win, "canvas-nearest.png");
  tessera_canvas_zoom_step (canvas, +1);
  g_assert_false (tessera_canvas_get_fit (canvas));
  g_assert_cmpuint (canvas_foreign_pixels (canvas), ==, 0);
  screenshot (win, "canvas-zoom.png");
  /* A picture of the same shape and another size (the 512 px preview of a 128 px image)
   * keeps the zoom on screen: four times the pixels at a quarter of the scale. */
  {
    double before = tessera_canvas_get_scale (canvas);
    g_autoptr (GdkTexture) big = NULL;
    g_autoptr (GBytes) bytes = g_bytes_new_take (g_malloc0 (512 * 512 * 3), 512 * 512 * 3);

    big = gdk_memory_texture_new (512, 512, GDK_MEMORY_R8G8B8, bytes, 512 * 3);
    tessera_generate_page_set_preview (page, GDK_PAINTABLE (big));
    g_assert_false (tessera_canvas_get_fit (canvas));
    g_assert_cmpfloat_with_epsilon (tessera_canvas_get_scale (canvas), before / 4, 1e-9);
    tessera_generate_page_set_preview (page, GDK_PAINTABLE (image));
    g_assert_cmpfloat_with_epsilon (tessera_canvas_get_scale (canvas), before, 1e-9);
  }
  tessera_canvas_zoom_fit (canvas);

  /* A step in the confidence view: the legend shows with it, and goes with the next
   * tokens view. */
  g_settings_set_string (s, "preview-mode", "confidence");
  step.grid_w = step.grid_h = g;
  step.n_steps = 12;
  step.step = 5;
  step.mask_token_id = info->mask_token_id;
  step.tokens = g_new (int32_t, n);
  step.predicted = g_new0 (int32_t, n);
  step.confidence = g_new (float, n);
  for (int i = 0; i < n; i++)
    {
      step.tokens[i] = i % 3 ? (int32_t) (i % 50) : step.mask_token_id;
      step.n_masked += i % 3 == 0;
      step.confidence[i] = (float) ((i % g) + (i / g)) / (2 * g);
    }
  _tessera_window_render_step (win, &step);
  g_assert_true (tessera_preview_is_heat_map (tessera_canvas_get_paintable (canvas)));
  g_assert_true (tessera_canvas_get_legend_visible (canvas));
  screenshot (win, "preview-legend.png");
  adw_style_manager_set_color_scheme (adw_style_manager_get_default (), ADW_COLOR_SCHEME_FORCE_DARK);
  screenshot (win, "preview-legend-dark.png");
  adw_style_manager_set_color_scheme (adw_style_manager_get_default (), ADW_COLOR_SCHEME_DEFAULT);
  g_settings_set_string (s, "preview-mode", "tokens");
  _tessera_window_render_step (win, &step);
  g_assert_false (tessera_canvas_get_legend_visible (canvas));
  g_free (step.tokens);
  g_free (step.predicted);
  g_free (step.confidence);
  close_window (win);
  for (guint i = 0; i < N_IMAGES; i++)
    g_object_unref (files[i]);
}

/* Escape is the run's Cancel key, and the application's keys are taken before any
 * widget sees them: while the viewer shows, Escape closes it and the run goes on. */
static void
test_viewer_during_run (void)
{
  g_autofree char *dir = make_gallery ("during-run", NULL);
  TesseraWindow *win = open_demo_window (dir);
  TesseraGallery *gallery = _tessera_window_get_gallery (win);
  GActionGroup *actions = G_ACTION_GROUP (win);
  g_autoptr (GSettings) s = settings ();

  g_settings_set_int (s, "steps", 64);
  _tessera_window_set_prompt (win, "a large red circle");
  g_action_group_activate_action (actions, "generate", NULL);
  g_assert_true (_tessera_window_is_running (win));
  g_assert_true (g_action_group_get_action_enabled (actions, "cancel"));
  show_page (win, "gallery");
  WAIT_FOR (gallery_ready (gallery, N_IMAGES), TIMEOUT_S);
  tessera_gallery_view (gallery, 0);
  g_assert_false (g_action_group_get_action_enabled (actions, "cancel"));
  press_binding (GTK_WIDGET (tessera_gallery_get_viewer (gallery)), GDK_KEY_Escape, 0);
  g_assert_null (tessera_gallery_get_viewer (gallery));
  if (_tessera_window_is_running (win))
    {
      g_assert_true (g_action_group_get_action_enabled (actions, "cancel"));
      g_action_group_activate_action (actions, "cancel", NULL);
    }
  WAIT_FOR (!_tessera_window_is_running (win), TIMEOUT_S);
  close_window (win);
}

/* ---- inpainting: the brush ---- */

static void
test_brush (void)
{
  GFile *files[N_IMAGES];
  g_autofree char *dir = make_gallery ("brush", files);
  TesseraWindow *win = open_demo_window (dir);
  TesseraInpaintView *view = _tessera_window_get_inpaint_view (win);
  TesseraMaskEditor *editor = tessera_inpaint_view_get_editor (view);
  guint f = _tessera_window_get_model_info (win)->vae_scale_factor, g = 128 / f;
  double brush;
  guint cells;

  _tessera_window_inpaint_file (win, files[0]);
  WAIT_FOR (tessera_inpaint_view_get_source_image (view) != NULL, TIMEOUT_S);
  /* The 128 px image is scaled up without blur here too. */
  settle (300);
  {
    g_autoptr (GdkTexture) shot = render_widget (GTK_WIDGET (editor));
    int w = gtk_widget_get_width (GTK_WIDGET (editor)), h = gtk_widget_get_height (GTK_WIDGET (editor));
    int side = MIN (w, h);

    g_assert_cmpint (side, >, 64);
    g_assert_cmpuint (count_foreign_pixels (shot, (w - side / 2) / 2, (h - side / 2) / 2, (w + side / 2) / 2,
                                            (h + side / 2) / 2), ==, 0);
  }
  /* The brush is an eighth of the image, not 96 px: one short stroke masks a few tokens. */
  brush = tessera_inpaint_view_get_brush_size (view);
  g_test_message ("default brush on a 128 px image: %g px (cells of %u px)", brush, f);
  g_assert_cmpfloat (brush, ==, 16.0);
  tessera_mask_editor_begin_stroke (editor);
  tessera_mask_editor_paint_line (editor, 40, 40, 72, 40);
  cells = tessera_mask_editor_count_cells (editor);
  g_test_message ("one 32 px stroke masks %u of %u tokens", cells, g * g);
  g_assert_cmpuint (cells, >, 0);
  g_assert_cmpuint (cells, <=, 16);
  tessera_mask_editor_begin_stroke (editor);
  tessera_mask_editor_paint_line (editor, 88, 88, 88, 104);
  screenshot (win, "inpaint-brush.png");

  /* The eraser is a tool button (and E): the same stroke takes the cells out. */
  g_assert_false (tessera_inpaint_view_get_eraser (view));
  press_binding (GTK_WIDGET (view), GDK_KEY_e, 0);
  g_assert_true (tessera_inpaint_view_get_eraser (view));
  {
    GtkToggleButton *eraser = GTK_TOGGLE_BUTTON (gtk_widget_get_template_child (GTK_WIDGET (view), TESSERA_TYPE_INPAINT_VIEW,
                                                                                "eraser_button"));
    g_assert_true (gtk_toggle_button_get_active (eraser));
  }
  tessera_mask_editor_begin_stroke (editor);
  tessera_mask_editor_paint_line (editor, 40, 40, 72, 40);
  g_assert_cmpuint (tessera_mask_editor_count_cells (editor), <, cells + 10);
  g_assert_false (tessera_mask_editor_cell_is_masked (editor, 40 / f, 40 / f));
  screenshot (win, "inpaint-eraser.png");
  press_binding (GTK_WIDGET (view), GDK_KEY_b, 0);
  g_assert_false (tessera_inpaint_view_get_eraser (view));

  /* During a repaint only the masked cells show the preview: a preview of one flat colour
   * covers the masked cells and nothing else. */
  {
    static const guint8 magenta[3] = { 0xff, 0x00, 0xff };
    g_autofree guint8 *flat = g_malloc (128 * 128 * 3);
    g_autoptr (GBytes) bytes = NULL;
    g_autoptr (GdkTexture) preview = NULL;
    g_autoptr (GdkTexture) shot = NULL;
    g_autofree guint8 *px = NULL;
    int w = gtk_widget_get_width (GTK_WIDGET (editor)), h = gtk_widget_get_height (GTK_WIDGET (editor));
    double scale = MIN (w / 128.0, h / 128.0), ox = (w - 128 * scale) / 2, oy = (h - 128 * scale) / 2;
    guint inside = 0, outside = 0;

    for (int i = 0; i < 128 * 128; i++)
      memcpy (flat + 3 * i, magenta, 3);
    bytes = g_bytes_new_take (g_steal_pointer (&flat), 128 * 128 * 3);
    preview = gdk_memory_texture_new (128, 128, GDK_MEMORY_R8G8B8, bytes, 128 * 3);
    tessera_inpaint_view_set_running (view, TRUE);
    tessera_inpaint_view_set_preview (view, GDK_PAINTABLE (preview));
    shot = render_widget (GTK_WIDGET (editor));
    px = g_malloc ((gsize) w * 4 * h);
    gdk_texture_download (shot, px, (gsize) w * 4);
    for (guint gy = 0; gy < g; gy++)
      for (guint gx = 0; gx < g; gx++)
        {
          /* The middle of cell (gx, gy) on screen. */
          int x = (int) (ox + (gx + 0.5) * f * scale), y = (int) (oy + (gy + 0.5) * f * scale);
          guint8 rgb[3];
          gboolean is_magenta;

          pixel_at (px, (gsize) w * 4, x, y, rgb);
          is_magenta = memcmp (rgb, magenta, 3) == 0;
          if (tessera_mask_editor_cell_is_masked (editor, gx, gy))
            {
              g_assert_true (is_magenta);
              inside++;
            }
          else
            {
              g_assert_false (is_magenta);
              outside++;
            }
        }
    g_test_message ("preview: %u masked cells show it, %u others keep the image", inside, outside);
    g_assert_cmpuint (inside, >, 0);
    g_assert_false (tessera_inpaint_view_get_legend_visible (view));
    screenshot (win, "inpaint-running.png");

    /* A confidence heat map: its legend shows under the canvas. */
    {
      TesseraStep step = { 0 };
      int n = (int) (g * g);
      g_autoptr (GBytes) palette = g_bytes_new_take (g_malloc0 (256 * 3), 256 * 3);
      g_autoptr (GdkTexture) heat = NULL;

      step.grid_w = step.grid_h = (int) g;
      step.n_steps = 12;
      step.mask_token_id = _tessera_window_get_model_info (win)->mask_token_id;
      step.tokens = g_new0 (int32_t, n);
      step.predicted = g_new0 (int32_t, n);
      step.confidence = g_new (float, n);
      for (int i = 0; i < n; i++)
        step.confidence[i] = (float) (i % (int) g) / g;
      heat = tessera_preview_render (&step, TESSERA_PREVIEW_CONFIDENCE, palette);
      tessera_inpaint_view_set_preview (view, GDK_PAINTABLE (heat));
      g_assert_true (tessera_inpaint_view_get_legend_visible (view));
      screenshot (win, "inpaint-legend.png");
      g_free (step.tokens);
      g_free (step.predicted);
      g_free (step.confidence);
    }
    tessera_inpaint_view_set_preview (view, NULL);
    g_assert_false (tessera_inpaint_view_get_legend_visible (view));
    tessera_inpaint_view_set_running (view, FALSE);
  }
  close_window (win);
  for (guint i = 0; i < N_IMAGES; i++)
    g_object_unref (files[i]);
}

/* A real repaint with the demo model: afterwards the mask is clear, and one undo brings
 * it back. */
static void
test_mask_after_repaint (void)
{
  GFile *files[N_IMAGES];
  g_autofree char *dir = make_gallery ("repaint", files);
  TesseraWindow *win = open_demo_window (dir);
  TesseraInpaintView *view = _tessera_window_get_inpaint_view (win);
  TesseraMaskEditor *editor = tessera_inpaint_view_get_editor (view);
  g_autoptr (GSettings) s = settings ();
  guint saved, cells;

  g_settings_set_int (s, "steps", 4);
  _tessera_window_inpaint_file (win, files[0]);
  WAIT_FOR (tessera_inpaint_view_get_source_image (view) != NULL, TIMEOUT_S);
  tessera_mask_editor_begin_stroke (editor);
  tessera_mask_editor_paint_line (editor, 40, 40, 90, 40);
  cells = tessera_mask_editor_count_cells (editor);
  g_assert_cmpuint (cells, >, 0);
  tessera_inpaint_view_set_prompt (view, "a yellow square");
  saved = _tessera_window_get_n_saved (win);
  g_action_group_activate_action (G_ACTION_GROUP (win), "inpaint-run", NULL);
  WAIT_FOR (!_tessera_window_is_running (win) && _tessera_window_get_n_saved (win) > saved, TIMEOUT_S);
  g_assert_cmpuint (tessera_mask_editor_count_cells (editor), ==, 0);
  screenshot (win, "inpaint-after-repaint.png");
  g_assert_true (tessera_mask_editor_undo (editor));
  g_assert_cmpuint (tessera_mask_editor_count_cells (editor), ==, cells);
  close_window (win);
  for (guint i = 0; i < N_IMAGES; i++)
    g_object_unref (files[i]);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  demo_model_dir = g_getenv ("TESSERA_DEMO_MODEL_DIR");
  tmp_dir = g_dir_make_tmp ("tessera-gallery-XXXXXX", &error);
  g_assert_no_error (error);
  if (!gtk_init_check ())
    {
      g_printerr ("no display: skipping\n");
      return 77;
    }
  adw_init ();
  tessera_engine_init_logging ();
  /* Undecorated windows without the border a client-side-decorated window keeps for its
   * resize handles under Xvfb (see test-window.c's screenshots). */
  {
    g_autoptr (GtkCssProvider) css = gtk_css_provider_new ();
    gtk_css_provider_load_from_data (css, "window.csd, window.solid-csd { margin: 0; padding: 0; box-shadow: none; border-width: 0; }", -1);
    gtk_style_context_add_provider_for_display (gdk_display_get_default (), GTK_STYLE_PROVIDER (css),
                                                GTK_STYLE_PROVIDER_PRIORITY_USER);
  }

  app = g_object_new (TESSERA_TYPE_APPLICATION, "application-id", APP_ID, "resource-base-path", APP_RESOURCE_PATH,
                      "flags", G_APPLICATION_NON_UNIQUE, NULL);
  g_application_register (G_APPLICATION (app), NULL, &error);
  g_assert_no_error (error);

  g_test_add_func ("/gallery/viewer", test_viewer);
  g_test_add_func ("/gallery/grid", test_grid);
  g_test_add_func ("/gallery/search", test_search);
  g_test_add_func ("/gallery/multi-delete", test_multi_delete);
  g_test_add_func ("/gallery/viewer-during-run", test_viewer_during_run);
  g_test_add_func ("/canvas/preview", test_preview);
  g_test_add_func ("/inpaint/brush", test_brush);
  g_test_add_func ("/inpaint/mask-after-repaint", test_mask_after_repaint);
  ret = g_test_run ();

  g_clear_object (&app);
  ui_test_remove_tmp (tmp_dir);
  g_free (tmp_dir);
  return ret;
}
