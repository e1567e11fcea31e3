/* SPDX-License-Identifier: MIT
 *
 * tessera-preferences.h — TesseraPreferences, the preferences window: model folder,
 * gallery folder, compute device and CPU threads, all stored in GSettings (the main window
 * listens and reloads the model or the gallery).
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define TESSERA_TYPE_PREFERENCES (tessera_preferences_get_type ())
G_DECLARE_FINAL_TYPE (TesseraPreferences, tessera_preferences, TESSERA, PREFERENCES, AdwPreferencesWindow)

/* settings: the window's (tessera_window_get_settings); the preferences write to it. */
GtkWidget *tessera_preferences_new (GtkWindow *parent, GSettings *settings);

G_END_DECLS
