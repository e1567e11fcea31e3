/* SPDX-License-Identifier: MIT
 *
 * tessera-window-private.h — what the ui tests look at inside TesseraWindow. Not for the
 * rest of the app.
 */
#pragma once

#include "tessera-gallery.h"
#include "tessera-generate-page.h"
#include "tessera-inpaint-view.h"
#include "tessera-window.h"
#include "tessera-worker.h"

G_BEGIN_DECLS

/* "empty", "loading", "error" or "ready". */
const char *_tessera_window_get_model_state (TesseraWindow *self);
gboolean _tessera_window_is_running (TesseraWindow *self);
void _tessera_window_set_prompt (TesseraWindow *self, const char *prompt);
char *_tessera_window_dup_prompt (TesseraWindow *self);
gboolean _tessera_window_select_size (TesseraWindow *self, guint width, guint height);
/* Step callbacks that reached the window during the current or last run. */
guint _tessera_window_get_n_step_updates (TesseraWindow *self);
/* The generate page's canvas texture, NULL before anything was shown. */
GdkPaintable *_tessera_window_get_canvas_paintable (TesseraWindow *self);
/* The last file saved to the gallery, NULL before the first. */
GFile *_tessera_window_get_last_saved (TesseraWindow *self);
guint _tessera_window_get_n_saved (TesseraWindow *self);
const TesseraResult *_tessera_window_get_last_result (TesseraWindow *self);
/* Mean and max time to build one step's preview texture, in ms. */
double _tessera_window_get_preview_ms (TesseraWindow *self, double *max_ms, guint *count);
const char *_tessera_window_get_status_text (TesseraWindow *self);
const char *_tessera_window_get_error_text (TesseraWindow *self);
TesseraGeneratePage *_tessera_window_get_generate_page (TesseraWindow *self);
TesseraGallery *_tessera_window_get_gallery (TesseraWindow *self);
TesseraInpaintView *_tessera_window_get_inpaint_view (TesseraWindow *self);
TesseraModelInfo *_tessera_window_get_model_info (TesseraWindow *self);
/* Loads file as the inpainting source (as the gallery's Inpaint button does). */
void _tessera_window_inpaint_file (TesseraWindow *self, GFile *file);
/* Incremented when an opened file's parameters were applied to the form. */
guint _tessera_window_get_n_opened (TesseraWindow *self);
/* Total toasts shown and the last title. */
const char *_tessera_window_get_last_toast (TesseraWindow *self);
/* Toasts shown or queued (screenshots wait for them to time out). */
guint _tessera_window_get_n_toasts (TesseraWindow *self);
/* The size selected in the form (0 x 0 without a model). */
void _tessera_window_get_selected_size (TesseraWindow *self, guint *width, guint *height);
/* The preview's colour table (borrowed) and the seconds its decoding took (0 from the
 * cache); returns the share of it computed, 1 when complete. */
double _tessera_window_get_palette (TesseraWindow *self, GBytes **palette, double *seconds);

G_END_DECLS
