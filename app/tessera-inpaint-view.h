/* SPDX-License-Identifier: MIT
 *
 * tessera-inpaint-view.h — TesseraInpaintView, the inpainting page: the source image in a
 * TesseraMaskEditor, brush controls, prompt, its own settings and strength. The window runs the job (it owns
 * the worker) and feeds the live preview and progress back here.
 */
#pragma once

#include <adwaita.h>

#include "tessera-engine-types.h"
#include "tessera-generate-page.h"
#include "tessera-mask-editor.h"

G_BEGIN_DECLS

#define TESSERA_TYPE_INPAINT_VIEW (tessera_inpaint_view_get_type ())
G_DECLARE_FINAL_TYPE (TesseraInpaintView, tessera_inpaint_view, TESSERA, INPAINT_VIEW, AdwBin)

/* Takes ownership of image. meta (nullable) fills the prompt. cell: px per token. */
void tessera_inpaint_view_set_source (TesseraInpaintView *self, GFile *file, ts_image *image,
                                      const TesseraImageMeta *meta, guint cell);
/* After a run: the result becomes the new source, and the mask is cleared (one undo step,
 * which the toast's Restore or Ctrl+Z takes back). Takes image. */
void tessera_inpaint_view_replace_source (TesseraInpaintView *self, GFile *file, ts_image *image);
GFile *tessera_inpaint_view_get_source_file (TesseraInpaintView *self);
const ts_image *tessera_inpaint_view_get_source_image (TesseraInpaintView *self);
char *tessera_inpaint_view_dup_prompt (TesseraInpaintView *self);
void tessera_inpaint_view_set_prompt (TesseraInpaintView *self, const char *prompt);
double tessera_inpaint_view_get_strength (TesseraInpaintView *self);
void tessera_inpaint_view_set_strength (TesseraInpaintView *self, double strength);
/* The brush or the eraser (the Tool buttons; B and E). */
void tessera_inpaint_view_set_eraser (TesseraInpaintView *self, gboolean eraser);
gboolean tessera_inpaint_view_get_eraser (TesseraInpaintView *self);
/* The brush diameter in image pixels (the slider; `[` and `]` change it). A new source
 * sets it to an eighth of the image's long side. */
double tessera_inpaint_view_get_brush_size (TesseraInpaintView *self);
TesseraMaskEditor *tessera_inpaint_view_get_editor (TesseraInpaintView *self);
void tessera_inpaint_view_set_running (TesseraInpaintView *self, gboolean running);
gboolean tessera_inpaint_view_get_folded (TesseraInpaintView *self);
gboolean tessera_inpaint_view_get_showing_image (TesseraInpaintView *self);
void tessera_inpaint_view_set_progress (TesseraInpaintView *self, double fraction, const char *text);
/* The live preview, shown through the masked cells; a confidence heat map gets its
 * legend under the canvas. */
void tessera_inpaint_view_set_preview (TesseraInpaintView *self, GdkPaintable *preview);
gboolean tessera_inpaint_view_get_legend_visible (TesseraInpaintView *self);
/* The page's own settings (negative prompt, steps, guidance, seed, temperatures; the
 * aesthetic score unseen): set_source fills them from the image's metadata where it
 * records them; set_params sets them all (the window does, from the Generate page's
 * defaults, before a source without metadata). read_params reads them with the prompt
 * and the source's size into params (cleared first). */
void tessera_inpaint_view_set_params (TesseraInpaintView *self, const TesseraFormParams *params);
void tessera_inpaint_view_read_params (TesseraInpaintView *self, TesseraFormParams *params);
/* Extend Canvas: the pixels to add left, top, right and bottom, each rounded up to a
 * multiple of step (the model's size step; the cell of set_source until set), as
 * ts_model_outpaint rounds them. While any is set the page shows the new canvas, its
 * border shaded, instead of the mask editor. */
void tessera_inpaint_view_set_extend_step (TesseraInpaintView *self, guint step);
void tessera_inpaint_view_get_extend (TesseraInpaintView *self, guint32 extend[4]);

G_END_DECLS
