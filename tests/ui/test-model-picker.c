/* SPDX-License-Identifier: MIT
 *
 * test-model-picker.c — the header's model picker in the real window (suite 'ui'): it lists
 * the bundled demo model and a model in a Hugging Face cache, downloads the catalogue's
 * MeissonFlow/Meissonic from a local stand-in for the hub (tests/hub-server.py on
 * 127.0.0.1, serving the demo model under that name) with its progress bar, pauses,
 * discards and resumes it, reports an unreachable hub, and switches the window to the new
 * model.
 * Screenshots (the popover mid-download, the window after the switch) go to
 * $TESSERA_SCREENSHOT_DIR.
 * Usage: test-model-picker --tap HUB_SERVER_PY SOURCE_ROOT. Skips (77) without a display.
 */
#define G_SETTINGS_ENABLE_BACKEND
#include <adwaita.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera-application.h"
#include "tessera-engine-types.h"
#include "tessera-model-picker.h"
#include "tessera-window-private.h"

#define SHOT_W 1280
#define SHOT_H 800
#define TIMEOUT_S 120
#define TW16 "transformer/diffusion_pytorch_model.fp16.safetensors"

static GtkApplication *app;
static char *tmp_dir, *endpoint, *demo_dir;

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
server_control (const char *query)
{
  g_autofree char *cmd = g_strdup_printf ("python3 -c \"import urllib.request; "
                                          "urllib.request.urlopen('%s/_control/%s').read()\"",
                                          endpoint, query);
  int status;

  g_assert_true (g_spawn_command_line_sync (cmd, NULL, NULL, &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
}

static TesseraModelPicker *
find_picker (GtkWidget *w)
{
  if (TESSERA_IS_MODEL_PICKER (w))
    return TESSERA_MODEL_PICKER (w);
  for (GtkWidget *c = gtk_widget_get_first_child (w); c; c = gtk_widget_get_next_sibling (c))
    {
      TesseraModelPicker *p = find_picker (c);
      if (p)
        return p;
    }
  return NULL;
}

static void
screenshot (GtkWidget *widget, const char *name)
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
  /* Let layout and animations settle, then draw a frame. */
  t0 = g_get_monotonic_time ();
  WAIT_FOR (g_get_monotonic_time () - t0 > 600000, 10);
  clock = gtk_widget_get_frame_clock (widget);
  f0 = gdk_frame_clock_get_frame_counter (clock);
  gtk_widget_queue_draw (widget);
  WAIT_FOR (gdk_frame_clock_get_frame_counter (clock) > f0, 10);
  w = gtk_widget_get_width (widget);
  h = gtk_widget_get_height (widget);
  paintable = gtk_widget_paintable_new (widget);
  for (int attempt = 0; attempt < 50 && !node; attempt++)
    {
      GtkSnapshot *snapshot = gtk_snapshot_new ();

      gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), w, h);
      node = gtk_snapshot_free_to_node (snapshot);
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

static TesseraWindow *
open_window (const char *model)
{
  g_autoptr (GSettings) s = g_settings_new ("io.github.tessera.Tessera");
  TesseraWindow *win;

  g_settings_set_string (s, "model-folder", model);
  win = tessera_window_new (ADW_APPLICATION (app));
  gtk_window_set_default_size (GTK_WINDOW (win), SHOT_W, SHOT_H);
  gtk_window_present (GTK_WINDOW (win));
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  return win;
}

static void
close_window (TesseraWindow *win)
{
  g_object_add_weak_pointer (G_OBJECT (win), (gpointer *) &win);
  gtk_window_destroy (GTK_WINDOW (win));
  WAIT_FOR (win == NULL, TIMEOUT_S);
}

static gboolean
lists (TesseraModelPicker *picker, const char *name)
{
  for (guint i = 0; i < _tessera_model_picker_get_n_models (picker); i++)
    if (g_strcmp0 (_tessera_model_picker_get_model_name (picker, i), name) == 0)
      return TRUE;
  return FALSE;
}

static void
test_picker (void)
{
  TesseraWindow *win = open_window ("");
  TesseraModelPicker *picker = find_picker (GTK_WIDGET (win));
  g_autofree char *dl_dir = g_build_filename (tmp_dir, "data", "tessera", "models", "Meissonic", NULL);
  g_autofree char *part = g_build_filename (dl_dir, TW16 ".incomplete", NULL);
  g_autofree char *bad = g_strdup ("http://127.0.0.1:1");
  GtkButton *download;
  guint cached = G_MAXUINT;

  g_assert_nonnull (picker);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "ready");
  /* The demo model in use, named in the header, and the cached model listed. */
  WAIT_FOR (g_strcmp0 (_tessera_model_picker_get_title (picker), "Bundled demo model") == 0, 10);
  g_assert_nonnull (strstr (_tessera_model_picker_get_subtitle (picker), "fp32"));
  /* The popover stays closed while its content changes: under Xvfb with no window
   * manager GTK 4.8 re-positions an open popover through a monitor lookup that finds
   * none (a Gdk critical). It opens for the screenshot, while nothing moves. */
  tessera_model_picker_rescan (picker);
  g_assert_true (lists (picker, "Bundled demo model"));
  g_assert_true (lists (picker, "test/cached"));
  g_assert_false (lists (picker, "MeissonFlow/Meissonic"));
  download = _tessera_model_picker_get_download_button (picker);
  g_assert_cmpstr (gtk_button_get_label (download), ==, "Download");

  /* No hub reachable: the error says so, with what to check. */
  g_setenv ("HF_ENDPOINT", bad, TRUE);
  g_signal_emit_by_name (download, "clicked");
  g_assert_true (_tessera_model_picker_is_downloading (picker));
  WAIT_FOR (!_tessera_model_picker_is_downloading (picker), 30);
  g_assert_nonnull (strstr (_tessera_model_picker_get_status (picker), "cannot reach http://127.0.0.1:1"));
  g_setenv ("HF_ENDPOINT", endpoint, TRUE);

  /* A slow download, caught mid-file: the bar moves; then pause. */
  server_control ("slow?path=" TW16 "&delay=0.03");
  g_signal_emit_by_name (download, "clicked");
  WAIT_FOR (g_file_test (part, G_FILE_TEST_EXISTS) && _tessera_model_picker_get_fraction (picker) > 0.3, 60);
  g_assert_cmpfloat (_tessera_model_picker_get_fraction (picker), <, 1.0);
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (_tessera_model_picker_get_pause_button (picker))));
  /* Stall the transfer (5 s a chunk) so the bar holds still for the screenshot. */
  server_control ("slow?path=" TW16 "&delay=5");
  {
    gint64 t0 = g_get_monotonic_time ();
    WAIT_FOR (g_get_monotonic_time () - t0 > 500000, 5);
  }
  gtk_menu_button_popup (GTK_MENU_BUTTON (gtk_widget_get_first_child (GTK_WIDGET (picker))));
  screenshot (GTK_WIDGET (_tessera_model_picker_get_popover (picker)), "model-download.png");
  gtk_popover_popdown (_tessera_model_picker_get_popover (picker));
  WAIT_FOR (!gtk_widget_get_mapped (GTK_WIDGET (_tessera_model_picker_get_popover (picker))), 10);
  g_signal_emit_by_name (_tessera_model_picker_get_pause_button (picker), "clicked");
  WAIT_FOR (!_tessera_model_picker_is_downloading (picker), 30);
  g_assert_nonnull (strstr (_tessera_model_picker_get_status (picker), "Paused"));
  g_assert_true (g_file_test (part, G_FILE_TEST_IS_REGULAR));
  g_assert_cmpstr (gtk_button_get_label (download), ==, "Resume");

  /* Discard: the partial folder goes and the next download starts over. */
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (_tessera_model_picker_get_discard_button (picker))));
  g_signal_emit_by_name (_tessera_model_picker_get_discard_button (picker), "clicked");
  g_assert_false (g_file_test (dl_dir, G_FILE_TEST_EXISTS));
  g_assert_cmpstr (gtk_button_get_label (download), ==, "Download");
  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (_tessera_model_picker_get_discard_button (picker))));
  server_control ("slow?path=" TW16 "&delay=0.03");
  g_signal_emit_by_name (download, "clicked");
  WAIT_FOR (g_file_test (part, G_FILE_TEST_EXISTS) && _tessera_model_picker_get_fraction (picker) > 0.3, 60);
  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (_tessera_model_picker_get_discard_button (picker))));
  g_signal_emit_by_name (_tessera_model_picker_get_pause_button (picker), "clicked");
  WAIT_FOR (!_tessera_model_picker_is_downloading (picker), 30);
  g_assert_cmpstr (gtk_button_get_label (download), ==, "Resume");

  /* Resume to the end: the new model is listed and offered. */
  server_control ("slow?path=" TW16 "&delay=0");
  g_signal_emit_by_name (download, "clicked");
  WAIT_FOR (!_tessera_model_picker_is_downloading (picker), 60);
  g_assert_nonnull (strstr (_tessera_model_picker_get_status (picker), "Downloaded"));
  g_assert_false (g_file_test (part, G_FILE_TEST_EXISTS));
  g_assert_true (lists (picker, "MeissonFlow/Meissonic"));
  g_assert_cmpuint (_tessera_model_picker_get_n_toasts (picker), ==, 1);
  g_assert_cmpstr (gtk_button_get_label (download), ==, "Downloaded");
  g_assert_false (gtk_widget_get_sensitive (GTK_WIDGET (download)));

  /* The notice's Switch loads it in the window. */
  g_assert_true (_tessera_model_picker_switch_to_download (picker));
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "ready");
  g_assert_cmpstr (_tessera_model_picker_get_title (picker), ==, "MeissonFlow/Meissonic");
  g_assert_nonnull (strstr (_tessera_model_picker_get_subtitle (picker), "· fp16"));
  g_assert_null (strstr (_tessera_model_picker_get_subtitle (picker), "fp32"));
  screenshot (GTK_WIDGET (win), "model-switched.png");

  /* One click on a listed model switches back (the cached one loads where it is). */
  for (guint i = 0; i < _tessera_model_picker_get_n_models (picker); i++)
    if (g_strcmp0 (_tessera_model_picker_get_model_name (picker, i), "test/cached") == 0)
      cached = i;
  g_assert_cmpuint (cached, !=, G_MAXUINT);
  _tessera_model_picker_activate_model (picker, cached);
  WAIT_FOR (g_strcmp0 (_tessera_model_picker_get_title (picker), "test/cached") == 0, 10);
  WAIT_FOR (g_strcmp0 (_tessera_window_get_model_state (win), "loading") != 0, TIMEOUT_S);
  g_assert_cmpstr (_tessera_window_get_model_state (win), ==, "ready");

  /* Toasts time out before the window goes (libadwaita 1.2 dislikes early dismissal). */
  WAIT_FOR (_tessera_model_picker_get_n_toasts (picker) == 0, 30);
  close_window (win);
}

/* The Hugging Face cache layout: models--ORG--NAME/snapshots/REV/ with links into blobs. */
static void
make_hf_cache (const char *cache)
{
  static const char *const files[] = {
    "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
    "text_encoder/model.safetensors", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "transformer/config.json",
    "transformer/diffusion_pytorch_model.safetensors", "vqvae/config.json",
    "vqvae/diffusion_pytorch_model.safetensors", NULL,
  };
  g_autofree char *snap = g_build_filename (cache, "models--test--cached", "snapshots",
                                            "0123456789abcdef0123456789abcdef01234567", NULL);

  for (guint i = 0; files[i]; i++)
    {
      g_autofree char *target = g_build_filename (demo_dir, files[i], NULL);
      g_autofree char *link = g_build_filename (snap, files[i], NULL);
      g_autofree char *parent = g_path_get_dirname (link);

      g_assert_cmpint (g_mkdir_with_parents (parent, 0755), ==, 0);
      g_assert_cmpint (symlink (target, link), ==, 0);
    }
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) server = NULL;
  g_autofree char *port_file = NULL, *port = NULL, *data = NULL, *cache = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  if (argc < 3)
    {
      g_printerr ("usage: test-model-picker HUB_SERVER_PY SOURCE_ROOT\n");
      return 2;
    }
  tmp_dir = g_dir_make_tmp ("tessera-picker-XXXXXX", &error);
  g_assert_no_error (error);
  demo_dir = g_build_filename (argv[2], "data", "demo-model", NULL);
  /* Before anything asks GLib for these folders (it keeps the first answer). */
  data = g_build_filename (tmp_dir, "data", NULL);
  cache = g_build_filename (tmp_dir, "hf-cache", NULL);
  g_setenv ("XDG_DATA_HOME", data, TRUE);
  g_setenv ("HF_HUB_CACHE", cache, TRUE);
  g_setenv ("TESSERA_DEFAULT_MODEL", demo_dir, TRUE);
  g_unsetenv ("HF_TOKEN");
  g_setenv ("HF_TOKEN_PATH", "/nonexistent", TRUE);
  /* See tests/meson.build: no libproxy under ASan; the server is on 127.0.0.1. */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  make_hf_cache (cache);

  if (!gtk_init_check ())
    {
      g_printerr ("no display: skipping\n");
      return 77;
    }
  adw_init ();
  tessera_engine_init_logging ();
  {
    g_autoptr (GtkCssProvider) css = gtk_css_provider_new ();
    gtk_css_provider_load_from_data (css, "window.csd, window.solid-csd { margin: 0; padding: 0; box-shadow: none; border-width: 0; }", -1);
    gtk_style_context_add_provider_for_display (gdk_display_get_default (), GTK_STYLE_PROVIDER (css), GTK_STYLE_PROVIDER_PRIORITY_USER);
  }

  port_file = g_build_filename (tmp_dir, "port", NULL);
  server = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error, "python3", argv[1], argv[2], port_file, NULL);
  g_assert_no_error (error);
  for (int i = 0; i < 600 && !g_file_get_contents (port_file, &port, NULL, NULL); i++)
    g_usleep (50000);
  g_assert_nonnull (port);
  endpoint = g_strdup_printf ("http://127.0.0.1:%d", atoi (port));

  app = g_object_new (TESSERA_TYPE_APPLICATION, "application-id", APP_ID, "resource-base-path", APP_RESOURCE_PATH,
                      "flags", G_APPLICATION_NON_UNIQUE, NULL);
  g_application_register (G_APPLICATION (app), NULL, &error);
  g_assert_no_error (error);

  g_test_add_func ("/model-picker/list-download-switch", test_picker);
  ret = g_test_run ();

  g_subprocess_force_exit (server);
  g_subprocess_wait (server, NULL, NULL);
  g_clear_object (&app);
  {
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", tmp_dir);
    g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
  }
  g_free (tmp_dir);
  g_free (endpoint);
  g_free (demo_dir);
  return ret;
}
