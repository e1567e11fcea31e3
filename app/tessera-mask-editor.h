/* SPDX-License-Identifier: MIT
 *
 * tessera-mask-editor.h — TesseraMaskEditor, the inpainting canvas: shows an image, lets
 * the user paint a mask on it with a round brush (or erase), and overlays the token cells
 * the engine will repaint, with the engine's rule: a cell counts when at least half of its
 * pixels are painted. During a run the live preview shows through the masked cells only:
 * the rest of the image is not repainted, so it does not change on screen either.
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define TESSERA_TYPE_MASK_EDITOR (tessera_mask_editor_get_type ())
G_DECLARE_FINAL_TYPE (TesseraMaskEditor, tessera_mask_editor, TESSERA, MASK_EDITOR, GtkWidget)

GtkWidget *tessera_mask_editor_new (void);
/* Shows texture (width x height px, cell px per token) and clears the mask and its undo
 * history. */
void tessera_mask_editor_set_image (TesseraMaskEditor *self, GdkTexture *texture, guint cell);
/* Keeps the mask; for showing a result of the same size. */
void tessera_mask_editor_replace_image (TesseraMaskEditor *self, GdkTexture *texture);
void tessera_mask_editor_set_preview (TesseraMaskEditor *self, GdkPaintable *preview);
void tessera_mask_editor_set_brush_size (TesseraMaskEditor *self, double px);
void tessera_mask_editor_set_eraser (TesseraMaskEditor *self, gboolean eraser);
void tessera_mask_editor_set_editable (TesseraMaskEditor *self, gboolean editable);
/* A stroke in image pixels, as the pointer paints it; one undo step per call of
 * tessera_mask_editor_begin_stroke. */
void tessera_mask_editor_begin_stroke (TesseraMaskEditor *self);
void tessera_mask_editor_paint_line (TesseraMaskEditor *self, double x0, double y0, double x1, double y1);
void tessera_mask_editor_clear (TesseraMaskEditor *self);
void tessera_mask_editor_invert (TesseraMaskEditor *self);
gboolean tessera_mask_editor_undo (TesseraMaskEditor *self);
gboolean tessera_mask_editor_can_undo (TesseraMaskEditor *self);
/* width * height bytes, 255 = repaint. NULL without an image. */
GBytes *tessera_mask_editor_get_mask (TesseraMaskEditor *self);
/* Token cells that will be repainted. */
guint tessera_mask_editor_count_cells (TesseraMaskEditor *self);
/* Whether token cell (gx, gy) will be repainted. */
gboolean tessera_mask_editor_cell_is_masked (TesseraMaskEditor *self, guint gx, guint gy);

G_END_DECLS
