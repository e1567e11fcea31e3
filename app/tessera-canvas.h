/* SPDX-License-Identifier: MIT
 *
 * tessera-canvas.h — TesseraCanvas, a picture that zooms and pans: it fits its image to
 * the widget until zoomed (Ctrl+scroll, Ctrl+plus/minus, the on-screen zoom buttons), is
 * dragged to pan, and scales up with nearest-neighbour sampling, so that a 128 px image
 * shown at 512 px keeps its pixels square instead of blurring. The generate page shows
 * the live preview and the result in one, the gallery's viewer shows images in another.
 * A confidence heat map from tessera_preview_render gets its colour legend on top.
 */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define TESSERA_TYPE_CANVAS (tessera_canvas_get_type ())
G_DECLARE_FINAL_TYPE (TesseraCanvas, tessera_canvas, TESSERA, CANVAS, GtkWidget)

GtkWidget *tessera_canvas_new (void);
/* Shows paintable (nullable). A new image of another size goes back to fitting. */
void tessera_canvas_set_paintable (TesseraCanvas *self, GdkPaintable *paintable);
GdkPaintable *tessera_canvas_get_paintable (TesseraCanvas *self);
/* The scale the image is drawn at now (1 = one image pixel per widget pixel), 0 without
 * an image or before the first layout. The "scale" property notifies its changes. */
double tessera_canvas_get_scale (TesseraCanvas *self);
/* Whether the image is fitted to the widget (the default) rather than zoomed. */
gboolean tessera_canvas_get_fit (TesseraCanvas *self);
void tessera_canvas_zoom_fit (TesseraCanvas *self);
/* Sets the scale (clamped to 1/16 … 64), keeping the point under widget point (x, y)
 * in place; x < 0 keeps the middle. */
void tessera_canvas_zoom_to (TesseraCanvas *self, double scale, double x, double y);
/* One step up or down the zoom ladder (…, 50 %, 100 %, 200 %, 300 %, 400 %, …). */
void tessera_canvas_zoom_step (TesseraCanvas *self, int direction);
/* Whether the legend of a confidence heat map shows (the image is such a map). */
gboolean tessera_canvas_get_legend_visible (TesseraCanvas *self);
/* Whether nearest-neighbour sampling is used at the current scale. */
gboolean tessera_canvas_get_nearest (TesseraCanvas *self);

/* The confidence heat map's legend ("Unsure [ramp] Sure", an OSD box), as the canvas
 * shows it, for other places a heat map shows. */
GtkWidget *tessera_heat_legend_new (void);
/* The pixels of texture in a new cairo image surface, for tessera_snapshot_surface. */
cairo_surface_t *tessera_surface_from_texture (GdkTexture *texture);
/* Draws surface scaled into dest, only within clip (both in the snapshot's coordinates),
 * with nearest-neighbour sampling when scaling up and a smooth filter when scaling down. */
void tessera_snapshot_surface (GtkSnapshot *snapshot, cairo_surface_t *surface, const graphene_rect_t *dest,
                               const graphene_rect_t *clip);

G_END_DECLS
