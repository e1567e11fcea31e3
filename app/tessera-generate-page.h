/* SPDX-License-Identifier: MIT
 *
 * tessera-generate-page.h — TesseraGeneratePage, the window's Generate page: what the
 * model is doing (none chosen, loading, failed, ready) and, once it is ready, the form
 * (prompt, negative prompt, size, steps, guidance, seed, advanced sampler settings) beside
 * the live canvas with its progress bar and status line. The form keeps itself in
 * GSettings. The window runs the jobs (it owns the worker) and feeds the model state,
 * preview and progress here; the page's buttons activate the window's actions
 * (win.generate, win.cancel, win.finish-now, win.reroll-seed, win.preview-mode, ...).
 */
#pragma once

#include <adwaita.h>

#include "tessera-canvas.h"
#include "tessera-engine-types.h"
#include "tessera-worker.h"

G_BEGIN_DECLS

typedef enum {
  TESSERA_MODEL_EMPTY,   /* none chosen: how to get one */
  TESSERA_MODEL_LOADING,
  TESSERA_MODEL_ERROR,
  TESSERA_MODEL_READY,
} TesseraModelState;

/* The form's values when a run starts; strings are g_malloc'd. */
typedef struct {
  char *prompt;
  char *negative_prompt;
  guint width, height;
  int steps;
  double guidance;
  double temperature_start, temperature_end;
  double aesthetic_score;
  guint64 seed;
  guint finish_at; /* 0: every step; else stop after this 1-based step (below steps) */
  GArray *steer;   /* nullable, ref'd: ts_image_steer, a steered image's changes to replay */
} TesseraFormParams;

void tessera_form_params_clear (TesseraFormParams *params);
/* dst = src, with copies of the strings and a reference to the steering plan. */
void tessera_form_params_copy (TesseraFormParams *dst, const TesseraFormParams *src);
/* A new steering plan (ts_image_steer, strings copied) from n records; NULL when n is 0. */
GArray *tessera_steer_plan_new (const ts_image_steer *records, guint n);

#define TESSERA_TYPE_GENERATE_PAGE (tessera_generate_page_get_type ())
G_DECLARE_FINAL_TYPE (TesseraGeneratePage, tessera_generate_page, TESSERA, GENERATE_PAGE, AdwBin)

/* Binds the form to settings (steps, guidance, temperatures, aesthetic score, seed lock,
 * the size per model) and fills the prompts and seed from it. Call once, before the first
 * model loads. */
void tessera_generate_page_set_settings (TesseraGeneratePage *self, GSettings *settings);

/* Shows state: the how-to, the loading page, the error page or the form and canvas. */
void tessera_generate_page_set_model_state (TesseraGeneratePage *self, TesseraModelState state);
TesseraModelState tessera_generate_page_get_model_state (TesseraGeneratePage *self);
/* The loading page: the folder being loaded (resets the progress), then its progress. */
void tessera_generate_page_set_loading (TesseraGeneratePage *self, const char *description);
void tessera_generate_page_set_load_progress (TesseraGeneratePage *self, double fraction,
                                              const char *text);
/* The error page's message. */
void tessera_generate_page_set_error (TesseraGeneratePage *self, const char *message);
const char *tessera_generate_page_get_error (TesseraGeneratePage *self);

/* The loaded model (nullable, ref'd): fills the sizes with the one last chosen for this
 * model folder (else the model's own) and gives the model its default guidance unless the
 * user set one. Without a model the selected size is 0 x 0. */
void tessera_generate_page_set_model_info (TesseraGeneratePage *self, TesseraModelInfo *info);
/* Selects a size of the model; FALSE (the size unchanged) when it has none such. */
gboolean tessera_generate_page_select_size (TesseraGeneratePage *self, guint width, guint height);
void tessera_generate_page_get_size (TesseraGeneratePage *self, guint *width, guint *height);

void tessera_generate_page_set_prompt (TesseraGeneratePage *self, const char *prompt);
char *tessera_generate_page_dup_prompt (TesseraGeneratePage *self);
/* Puts the keyboard focus in the prompt (the window does at start); FALSE when it could
 * not (the form is insensitive). */
gboolean tessera_generate_page_focus_prompt (TesseraGeneratePage *self);
gboolean tessera_generate_page_prompt_has_focus (TesseraGeneratePage *self);
/* Fills the form from an image's parameters; values it does not record stay as they are,
 * an empty prompt empties the prompt, the seed gets locked and a "Finish Now" image's step
 * becomes the form's finish-at step. Returns NULL when every value was taken as recorded,
 * else what had to change, for the user ("steps 300 → 200, guidance 40 → 30": values out
 * of the form's range, a size the model does not make); free with g_free. */
char *tessera_generate_page_apply_meta (TesseraGeneratePage *self, const TesseraImageMeta *meta);
/* The seed Generate uses when the seed is kept (the entry's, when it holds a valid one). */
guint64 tessera_generate_page_get_seed (TesseraGeneratePage *self);
/* The step at which the next generation finishes as "Finish Now" would (0: every step).
 * Reusing a "Finish Now" image sets it; the form shows it in a row the user can clear. */
void tessera_generate_page_set_finish_at (TesseraGeneratePage *self, guint step);
/* The steering plan the next generation replays (nullable; the page takes a reference). */
void tessera_generate_page_set_steer (TesseraGeneratePage *self, GArray *plan);
GArray *tessera_generate_page_get_steer (TesseraGeneratePage *self);
guint tessera_generate_page_get_finish_at (TesseraGeneratePage *self);
/* The live token count under the prompt: tokens with the start and end ones, -1 while
 * unknown (no tokenizer yet, or counting), and the label's text. */
int tessera_generate_page_get_token_count (TesseraGeneratePage *self);
const char *tessera_generate_page_get_token_text (TesseraGeneratePage *self);
/* Whether the window is too narrow for the form beside the canvas (one shows at a time). */
gboolean tessera_generate_page_get_folded (TesseraGeneratePage *self);
/* The status area's "Model: NAME on BACKEND". */
const char *tessera_generate_page_get_model_text (TesseraGeneratePage *self);
/* Reads the form into params (cleared first) for a run: draws a new seed unless it is
 * locked, and stores the seed and prompts in the settings. */
void tessera_generate_page_read_params (TesseraGeneratePage *self, TesseraFormParams *params);
/* Stores the prompts in the settings (the window does on close). */
void tessera_generate_page_save_prompts (TesseraGeneratePage *self);
void tessera_generate_page_reroll_seed (TesseraGeneratePage *self);
/* The batch count beside Generate, 1 to 16: how many images one Generate queues, with
 * seeds S, S+1, ... */
guint tessera_generate_page_get_batch_count (TesseraGeneratePage *self);
void tessera_generate_page_set_batch_count (TesseraGeneratePage *self, guint count);

/* The form stays editable during runs (Generate queues); while a generation runs, Cancel
 * and Finish Now show under Generate, which reads "Add to Queue". */
void tessera_generate_page_set_form_sensitive (TesseraGeneratePage *self, gboolean sensitive);
void tessera_generate_page_set_running (TesseraGeneratePage *self, gboolean running);
/* While a run is paused its Pause buttons (⏸) become Continue (▶). */
void tessera_generate_page_set_paused (TesseraGeneratePage *self, gboolean paused);
/* A widget under the canvas, below the status line (the step scrubber), and the canvas. */
void tessera_generate_page_add_under_canvas (TesseraGeneratePage *self, GtkWidget *widget);
TesseraCanvas *tessera_generate_page_get_canvas (TesseraGeneratePage *self);
/* The canvas (it replaces the placeholder), the progress bar and the status line. */
void tessera_generate_page_set_preview (TesseraGeneratePage *self, GdkPaintable *preview);
GdkPaintable *tessera_generate_page_get_preview (TesseraGeneratePage *self);
void tessera_generate_page_set_progress (TesseraGeneratePage *self, double fraction, const char *text);
double tessera_generate_page_get_progress (TesseraGeneratePage *self);
const char *tessera_generate_page_get_status (TesseraGeneratePage *self);

G_END_DECLS
