/* SPDX-License-Identifier: MIT
 *
 * tessera-image-viewer.h — TesseraImageViewer, the gallery's full-size view of one image:
 * a TesseraCanvas (zoom, pan, nearest-neighbour when scaled up) under a bar with the file
 * name, its place in the list, and previous / next / close. Left and Right (or Page Up and
 * Page Down) go through the list, plus, minus, 0 and 1 zoom, Escape closes.
 */
#pragma once

#include <gtk/gtk.h>

#include "tessera-canvas.h"

G_BEGIN_DECLS

#define TESSERA_TYPE_IMAGE_VIEWER (tessera_image_viewer_get_type ())
G_DECLARE_FINAL_TYPE (TesseraImageViewer, tessera_image_viewer, TESSERA, IMAGE_VIEWER, GtkWidget)

/* model: a list of TesseraGalleryItem (borrowed: it must outlive the viewer's use). */
void tessera_image_viewer_set_model (TesseraImageViewer *self, GListModel *model);
/* Shows the item at position (loads its file); "notify::position" follows Left / Right. */
void tessera_image_viewer_set_position (TesseraImageViewer *self, guint position);
guint tessera_image_viewer_get_position (TesseraImageViewer *self);
/* Moves by delta within the model; FALSE at either end. */
gboolean tessera_image_viewer_step (TesseraImageViewer *self, int delta);
TesseraCanvas *tessera_image_viewer_get_canvas (TesseraImageViewer *self);
/* The "close" signal is emitted for Escape and the close button. */

G_END_DECLS
