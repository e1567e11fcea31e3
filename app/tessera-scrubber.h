/* SPDX-License-Identifier: MIT
 *
 * tessera-scrubber.h — TesseraScrubber, the step scrubber under the generate page's
 * canvas for an image that carries its trajectory (the step that revealed each token and
 * the model's confidence then). Dragging the step slider shows the token grid after that
 * step on the canvas in the codebook colours (masked tokens hatched), at once at any size;
 * once the slider rests, the decoded picture follows: the final image with the tokens not
 * yet revealed greyed out (the whole picture at the last step). The "Redraw" slider picks
 * the share F of the least confident tokens that "Refine Weak Tokens" redraws and shows
 * them over the confidence heat map. Its buttons activate win.branch-from-step and
 * win.refine-tokens; the window reads the state from here. Main thread only.
 */
#pragma once

#include <gtk/gtk.h>

#include "tessera-canvas.h"
#include "tessera-engine-types.h"

G_BEGIN_DECLS

#define TESSERA_TYPE_SCRUBBER (tessera_scrubber_get_type ())
G_DECLARE_FINAL_TYPE (TesseraScrubber, tessera_scrubber, TESSERA, SCRUBBER, GtkBox)

GtkWidget *tessera_scrubber_new (void);

/* The canvas it draws on (borrowed: it must outlive the scrubber, as a sibling does). */
void tessera_scrubber_set_canvas (TesseraScrubber *self, TesseraCanvas *canvas);
/* The colour table (n_codes RGB triplets; ref'd), for the token view. */
void tessera_scrubber_set_palette (TesseraScrubber *self, GBytes *palette);

/* Shows the scrubber for image (copied; the final picture) and meta's trajectory (copied),
 * with meta->steps steps (at least the highest reveal step), at the last step. An image
 * without a trajectory (traj_grid_h == 0), or NULL, hides it. */
void tessera_scrubber_set_image (TesseraScrubber *self, const ts_image *image, const ts_image_meta *meta,
                                 int32_t mask_token_id);
gboolean tessera_scrubber_has_trajectory (TesseraScrubber *self);
/* The meta given to set_image (its trajectory and parameters), NULL when hidden. */
const ts_image_meta *tessera_scrubber_get_meta (TesseraScrubber *self);

/* The final picture given to set_image, NULL when hidden. */
const ts_image *tessera_scrubber_get_image (TesseraScrubber *self);

int tessera_scrubber_get_n_steps (TesseraScrubber *self);
/* The step shown: 0 (nothing revealed yet) .. n_steps. Setting it redraws the canvas as a
 * drag does (the token grid now, the picture once it rests). */
int tessera_scrubber_get_step (TesseraScrubber *self);
void tessera_scrubber_set_step (TesseraScrubber *self, int step);
/* The picture follows this long after the last move of the step slider. */
#define TESSERA_SCRUBBER_REST_MS 250

/* The refine share F (0.05 … 0.5). Setting it shows the tokens it picks on the heat map. */
double tessera_scrubber_get_remask (TesseraScrubber *self);
void tessera_scrubber_set_remask (TesseraScrubber *self, double remask);

/* The state to resume from, in tokens (grid_h * grid_w): branch keeps every token revealed
 * at or before step (or never masked) and masks the rest; refine masks the round(F * n)
 * lowest-confidence tokens among those the model drew. Returns how many tokens are masked
 * (to draw); *ratio (nullable) gets the refine schedule's starting mask ratio. */
int tessera_scrubber_fill_branch (TesseraScrubber *self, int step, int32_t *tokens);
int tessera_scrubber_fill_refine (TesseraScrubber *self, double remask, int32_t *tokens, double *ratio);

/* What the canvas shows now: "tokens" (the grid at the step), "picture" (the decoded
 * picture at the step), "refine" (the heat map with the tokens to redraw) or "" (hidden). */
const char *tessera_scrubber_get_view (TesseraScrubber *self);

G_END_DECLS
