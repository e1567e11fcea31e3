/* SPDX-License-Identifier: MIT
 *
 * tessera-model-picker.h — the model button in the main window's header: it shows the
 * model in use (name, size, precision) and opens a list of every model found (the bundled
 * demo model, Tessera's models folder, a folder chosen by hand, the Hugging Face cache),
 * where one click switches, and a catalogue of known repositories with a Download button
 * (app/hub) and its progress. It reads and writes the "model-folder" setting; the window
 * loads whatever that names.
 */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define TESSERA_TYPE_MODEL_PICKER (tessera_model_picker_get_type ())
G_DECLARE_FINAL_TYPE (TesseraModelPicker, tessera_model_picker, TESSERA, MODEL_PICKER, GtkWidget)

GtkWidget *tessera_model_picker_new (void);

/* Scans the model folders again (the popover does it each time it opens). */
void tessera_model_picker_rescan (TesseraModelPicker *self);

/* For tests: the models listed, the header's two lines, the catalogue's download
 * (started, paused, discarded, finished) and the switch a finished download offers. */
guint _tessera_model_picker_get_n_models (TesseraModelPicker *self);
const char *_tessera_model_picker_get_model_name (TesseraModelPicker *self, guint i);
const char *_tessera_model_picker_get_model_dir (TesseraModelPicker *self, guint i);
void _tessera_model_picker_activate_model (TesseraModelPicker *self, guint i);
const char *_tessera_model_picker_get_title (TesseraModelPicker *self);
const char *_tessera_model_picker_get_subtitle (TesseraModelPicker *self);
GtkPopover *_tessera_model_picker_get_popover (TesseraModelPicker *self);
GtkButton *_tessera_model_picker_get_download_button (TesseraModelPicker *self);
GtkButton *_tessera_model_picker_get_pause_button (TesseraModelPicker *self);
GtkButton *_tessera_model_picker_get_discard_button (TesseraModelPicker *self);
gboolean _tessera_model_picker_is_downloading (TesseraModelPicker *self);
double _tessera_model_picker_get_fraction (TesseraModelPicker *self);
const char *_tessera_model_picker_get_status (TesseraModelPicker *self);
gboolean _tessera_model_picker_switch_to_download (TesseraModelPicker *self);
guint _tessera_model_picker_get_n_toasts (TesseraModelPicker *self);

G_END_DECLS
