/* SPDX-License-Identifier: MIT
 *
 * tessera-gallery.h — TesseraGallery, the view of the gallery folder: a grid of
 * thumbnails, newest first, kept up to date by a GFileMonitor, and the selected image
 * large with its parameters and actions (reuse, inpaint, variations, copy prompt, show
 * in folder, save as, move to the trash with undo), a search over the prompts, a context menu, and a
 * full-size viewer (TesseraImageViewer). New images are saved into the folder through it.
 */
#pragma once

#include <adwaita.h>

#include "tessera-gallery-item.h"
#include "tessera-image-viewer.h"

G_BEGIN_DECLS

#define TESSERA_TYPE_GALLERY (tessera_gallery_get_type ())
G_DECLARE_FINAL_TYPE (TesseraGallery, tessera_gallery, TESSERA, GALLERY, AdwBin)

/* Shows folder (created when missing) and watches it. */
void tessera_gallery_set_folder (TesseraGallery *self, GFile *folder);
GFile *tessera_gallery_get_folder (TesseraGallery *self);
/* Adds (or refreshes) a file now, without waiting for the file monitor. */
void tessera_gallery_add_file (TesseraGallery *self, GFile *file);
/* Writes image (taken) as a PNG carrying meta (copied) into the folder, on a thread with the
 * engine's atomic writer, and adds it: tessera-DATE-TIME-[KIND-]SEED.png, numbered when
 * that name is taken. kind (nullable) is a word for the name, such as "inpaint". _finish
 * returns the new file. */
void tessera_gallery_save_async (TesseraGallery *self, ts_image *image, const ts_image_meta *meta,
                                 const char *kind, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data);
GFile *tessera_gallery_save_finish (TesseraGallery *self, GAsyncResult *result, GError **error);
/* The items, newest first. */
GListModel *tessera_gallery_get_model (TesseraGallery *self);
void tessera_gallery_select_file (TesseraGallery *self, GFile *file);
/* The selected item when exactly one is selected, else NULL. */
TesseraGalleryItem *tessera_gallery_get_selected (TesseraGallery *self);
/* The images the grid shows (the search applied), newest first: a GtkSelectionModel
 * (several may be selected: Ctrl+click, Shift+click, rubberband). */
GListModel *tessera_gallery_get_shown_model (TesseraGallery *self);
guint tessera_gallery_get_n_selected (TesseraGallery *self);
gboolean tessera_gallery_get_folded (TesseraGallery *self);
gboolean tessera_gallery_get_showing_detail (TesseraGallery *self);
/* Shows only the images whose prompt (or file name) holds every word of text, ignoring
 * case; "" shows all. The search field's text becomes text. */
void tessera_gallery_set_search (TesseraGallery *self, const char *text);
/* Opens the full-size viewer on the shown model's item at position (Enter, double-click,
 * gallery.view); the viewer while it shows, else NULL. */
void tessera_gallery_view (TesseraGallery *self, guint position);
TesseraImageViewer *tessera_gallery_get_viewer (TesseraGallery *self);
/* The "viewing" property notifies when the viewer opens or closes. */
/* Selects the item at position and pops its context menu up (as a right click does). */
GtkPopover *tessera_gallery_popup_menu (TesseraGallery *self, guint position);
/* Moves the selected images to the trash (gallery.delete) and selects the image after
 * them; the toast's Undo calls tessera_gallery_undo_delete, which puts them all back. */
void tessera_gallery_delete_selected (TesseraGallery *self);
void tessera_gallery_undo_delete (TesseraGallery *self);
/* Whether the newest delete's toast still shows, so its Undo (Ctrl+Z) can run; notified
 * as the "can-undo-delete" property. */
gboolean tessera_gallery_can_undo_delete (TesseraGallery *self);

G_END_DECLS
