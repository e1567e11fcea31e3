/* SPDX-License-Identifier: MIT
 *
 * tessera-preview.h — the live preview of a generation: turns one sampling step's token
 * grid into a texture. Revealed tokens take their code's colour from the model's colour
 * table, still-masked ones a neutral diagonal hatch; the other modes show the model's full
 * prediction or a heat map of its per-token confidence. Main thread (creates GdkTextures).
 */
#pragma once

#include <gtk/gtk.h>

#include "tessera-worker.h"

G_BEGIN_DECLS

typedef enum {
  TESSERA_PREVIEW_TOKENS,
  TESSERA_PREVIEW_PREDICTED,
  TESSERA_PREVIEW_CONFIDENCE,
} TesseraPreviewMode;

TesseraPreviewMode tessera_preview_mode_from_string (const char *nick);

/* A texture of the step (about 512 px on the long side, whole pixels per token). palette
 * holds n_codes RGB triplets. */
GdkTexture *tessera_preview_render (const TesseraStep *step, TesseraPreviewMode mode,
                                    GBytes *palette);

/* The heat map's colour for t in [0, 1] (0 = least sure, 1 = surest). */
void tessera_preview_heat_colour (double t, guint8 rgb[3]);
/* Whether paintable is a confidence heat map made by tessera_preview_render. */
gboolean tessera_preview_is_heat_map (GdkPaintable *paintable);

/* An RGB8 engine image as a texture. */
GdkTexture *tessera_texture_from_image (const ts_image *image);

G_END_DECLS
