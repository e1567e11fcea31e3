/* SPDX-License-Identifier: MIT
 *
 * tessera-application.c — the AdwApplication: sets up gettext and the engine log
 * forwarding, registers the accelerators, and provides app.quit, app.preferences and
 * app.about. The shortcuts window (win.show-help-overlay, Ctrl+?) comes from
 * gtk/help-overlay.ui in the resources, which GtkApplication loads by itself.
 */
#include "tessera-application.h"

#include <glib/gi18n.h>

#include "tessera-engine-types.h"
#include "tessera-preferences.h"
#include "tessera-window.h"

struct _TesseraApplication
{
  AdwApplication parent_instance;
};

G_DEFINE_FINAL_TYPE (TesseraApplication, tessera_application, ADW_TYPE_APPLICATION)

static TesseraWindow *
get_window (TesseraApplication *self)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (self));

  if (!window)
    window = GTK_WINDOW (tessera_window_new (ADW_APPLICATION (self)));
  return TESSERA_WINDOW (window);
}

static void
tessera_application_activate (GApplication *app)
{
  gtk_window_present (GTK_WINDOW (get_window (TESSERA_APPLICATION (app))));
}

static void
tessera_application_open (GApplication *app, GFile **files, int n_files, const char *hint)
{
  TesseraWindow *window = get_window (TESSERA_APPLICATION (app));

  (void) hint;
  if (n_files > 0)
    tessera_window_open_file (window, files[0]);
  gtk_window_present (GTK_WINDOW (window));
}

static void
quit_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  GtkApplication *app = user_data;
  GList *windows = gtk_application_get_windows (app);

  (void) action;
  (void) param;
  /* Closing the windows saves their state; the worker stops with the last one. */
  while (windows)
    {
      GList *next = windows->next;
      gtk_window_close (windows->data);
      windows = next;
    }
  /* A window making an image asks first and stays open; the app then ends when the user
   * closes it (the last window going ends a GtkApplication). */
  for (GList *l = gtk_application_get_windows (app); l; l = l->next)
    if (TESSERA_IS_WINDOW (l->data))
      return;
  g_application_quit (G_APPLICATION (app));
}

static void
preferences_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraApplication *self = user_data;
  TesseraWindow *window = get_window (self);
  GtkWidget *prefs = tessera_preferences_new (GTK_WINDOW (window), tessera_window_get_settings (window));

  (void) action;
  (void) param;
  gtk_window_present (GTK_WINDOW (prefs));
}

static void
about_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraApplication *self = user_data;
  const char *developers[] = { "The Tessera developers", NULL };
  GtkWidget *about;

  (void) action;
  (void) param;
  about = g_object_new (ADW_TYPE_ABOUT_WINDOW,
                        "transient-for", get_window (self),
                        "application-icon", APP_ID,
                        "application-name", _("Tessera"),
                        "developer-name", _("The Tessera developers"),
                        "version", PACKAGE_VERSION,
                        "comments", _("Turn text into images with Meissonic, a masked image model, on your own computer."),
                        "website", "https://github.com/tessera/tessera",
                        "issue-url", "https://github.com/tessera/tessera/issues",
                        "license-type", GTK_LICENSE_MIT_X11,
                        "developers", developers,
                        "copyright", "© 2026 The Tessera developers",
                        NULL);
  adw_about_window_add_credit_section (ADW_ABOUT_WINDOW (about), _("Model"),
                                       (const char *[]) { "Meissonic by MeissonFlow https://huggingface.co/MeissonFlow/Meissonic", NULL });
  gtk_window_present (GTK_WINDOW (about));
}

static const GActionEntry app_entries[] = {
  { .name = "quit", .activate = quit_activated },
  { .name = "preferences", .activate = preferences_activated },
  { .name = "about", .activate = about_activated },
};

static void
tessera_application_startup (GApplication *app)
{
  static const struct {
    const char *action;
    const char *accels[3];
  } accels[] = {
    { "app.quit", { "<Control>q", NULL } },
    { "app.preferences", { "<Control>comma", NULL } },
    { "win.generate", { "<Control>Return", "<Control>KP_Enter", NULL } },
    { "win.cancel", { "Escape", NULL } },
    { "win.open", { "<Control>o", NULL } },
    { "win.show-help-overlay", { "<Control>question", NULL } },
    { "win.show-page::generate", { "<Alt>1", NULL } },
    { "win.show-page::gallery", { "<Alt>2", NULL } },
    { "win.show-page::inpaint", { "<Alt>3", NULL } },
    /* Enabled only while a gallery delete's toast shows, so that Ctrl+Z reaches the
     * mask editor and text fields the rest of the time. */
    { "win.undo-delete", { "<Control>z", NULL } },
  };

  G_APPLICATION_CLASS (tessera_application_parent_class)->startup (app);

  tessera_engine_init_logging ();
  g_action_map_add_action_entries (G_ACTION_MAP (app), app_entries, G_N_ELEMENTS (app_entries), app);
  for (gsize i = 0; i < G_N_ELEMENTS (accels); i++)
    gtk_application_set_accels_for_action (GTK_APPLICATION (app), accels[i].action, accels[i].accels);
}

static void
tessera_application_class_init (TesseraApplicationClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  app_class->activate = tessera_application_activate;
  app_class->open = tessera_application_open;
  app_class->startup = tessera_application_startup;
}

static void
tessera_application_init (TesseraApplication *self)
{
  (void) self;
}

TesseraApplication *
tessera_application_new (void)
{
  return g_object_new (TESSERA_TYPE_APPLICATION,
                       "application-id", APP_ID,
                       "resource-base-path", APP_RESOURCE_PATH,
                       "flags", G_APPLICATION_HANDLES_OPEN,
                       NULL);
}
