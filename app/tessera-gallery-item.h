/* SPDX-License-Identifier: MIT
 *
 * tessera-gallery-item.h — one PNG in the gallery folder: its file, modification time and,
 * once loaded off the main thread, a thumbnail and the generation parameters stored in it.
 */
#pragma once

#include <gtk/gtk.h>

#include "tessera-engine-types.h"

G_BEGIN_DECLS

#define TESSERA_TYPE_GALLERY_ITEM (tessera_gallery_item_get_type ())
G_DECLARE_FINAL_TYPE (TesseraGalleryItem, tessera_gallery_item, TESSERA, GALLERY_ITEM, GObject)

TesseraGalleryItem *tessera_gallery_item_new (GFile *file, gint64 mtime);
GFile *tessera_gallery_item_get_file (TesseraGalleryItem *self);
gint64 tessera_gallery_item_get_mtime (TesseraGalleryItem *self);
/* NULL until loaded; tessera_gallery_item_load starts that (once). "notify::thumbnail". */
/* NULL until loaded or when the file carries no parameters. */
const TesseraImageMeta *tessera_gallery_item_get_meta (TesseraGalleryItem *self);
guint tessera_gallery_item_get_width (TesseraGalleryItem *self);
guint tessera_gallery_item_get_height (TesseraGalleryItem *self);
gboolean tessera_gallery_item_is_loaded (TesseraGalleryItem *self);
void tessera_gallery_item_load (TesseraGalleryItem *self);

G_END_DECLS
