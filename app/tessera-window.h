/* SPDX-License-Identifier: MIT
 *
 * tessera-window.h — TesseraWindow, the main window: the generate page
 * (TesseraGeneratePage: form, live preview, progress), the gallery and the inpainting page,
 * a toast overlay for errors, and the window actions (win.generate, win.cancel,
 * win.finish-now, win.open, ...; see tessera-window-actions.c). It owns the TesseraWorker
 * and the loaded model's state.
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define TESSERA_TYPE_WINDOW (tessera_window_get_type ())
G_DECLARE_FINAL_TYPE (TesseraWindow, tessera_window, TESSERA, WINDOW, AdwApplicationWindow)

TesseraWindow *tessera_window_new (AdwApplication *application);
/* Fills the form from a PNG's parameters (Tessera's or A1111's) and shows the image. */
void tessera_window_open_file (TesseraWindow *self, GFile *file);
/* The settings the window uses (borrowed). */
GSettings *tessera_window_get_settings (TesseraWindow *self);

G_END_DECLS
