/* SPDX-License-Identifier: MIT
 *
 * tessera-window-private.h — TesseraWindow's insides: the instance struct and the
 * _tessera_window_*() functions that tessera-window.c (models, runs, the preview, opening
 * files) and tessera-window-actions.c (the win.* actions) share, then what the ui tests
 * look at. Not for the rest of the app.
 */
#pragma once

#include "tessera-gallery.h"
#include "tessera-generate-page.h"
#include "tessera-inpaint-view.h"
#include "tessera-queue.h"
#include "tessera-window.h"
#include "tessera-worker.h"

G_BEGIN_DECLS

typedef enum {
  TESSERA_RUN_IDLE,
  TESSERA_RUN_GENERATE,
  TESSERA_RUN_INPAINT,
} TesseraRunKind;

/* What a run was asked to do, kept for the PNG metadata. */
typedef struct {
  TesseraFormParams form;
  char *source; /* inpainting, img2img, outpainting: the source file's name */
  char *source_hash; /* its "sha256:…", or NULL */
  const char *mode; /* the PNG's mode: "txt2img", "inpaint", "img2img", "outpaint" */
  double strength; /* inpainting, img2img, outpainting; -1 otherwise */
} TesseraRunParams;

typedef struct _TesseraTokenRun TesseraTokenRun;
typedef struct _TesseraScrubber TesseraScrubber;

struct _TesseraWindow
{
  AdwApplicationWindow parent_instance;

  /* template */
  AdwToastOverlay *toast_overlay;
  AdwViewStack *view_stack;
  AdwViewSwitcherTitle *switcher_title;
  GtkWidget *model_picker;
  guint narrow_idle;
  AdwViewSwitcherBar *switcher_bar;
  TesseraGeneratePage *generate_page;
  TesseraGallery *gallery;
  TesseraInpaintView *inpaint_view;
  GtkMenuButton *queue_button;
  GtkLabel *queue_label;
  TesseraQueuePopover *queue_popover;
  GtkProgressBar *queue_progress;

  GSettings *settings;
  TesseraWorker *worker;

  TesseraModelState model_state;
  TesseraModelInfo *model_info;
  GCancellable *load_cancellable;
  GBytes *palette;          /* the live preview's colour table, partial while computing */
  double palette_fraction;  /* 1 once complete */
  double palette_seconds;

  GListStore *jobs;      /* TesseraJob, in the order they run */
  TesseraJob *job;       /* the running one, NULL while idle */
  guint next_job_id;
  guint n_jobs_finished; /* since the queue was last empty, for the header's progress */
  AdwMessageDialog *variations_dialog; /* while it shows */
  double variation_strength;          /* the last one chosen */

  TesseraRunKind run;
  gboolean finishing;
  gboolean reload_pending; /* the model settings changed during a run: reload after it */
  gboolean close_confirmed;
  AdwMessageDialog *close_dialog;
  GCancellable *run_cancellable;
  TesseraRunParams params;
  TesseraStep *last_step;
  double step_seconds;
  int n_step_seconds;
  guint n_step_updates;
  double preview_ms_sum, preview_ms_max;
  guint preview_count;

  GFile *current_file;     /* the image on the canvas, for win.inpaint-current */
  GFile *last_saved;
  guint n_saved;
  guint n_opened;
  TesseraResult *last_result;
  char *last_toast;
  GPtrArray *toasts; /* shown and not yet dismissed */
  GtkFileChooserNative *chooser;
  TesseraScrubber *scrubber;  /* tessera-window-tokens.c */
  TesseraTokenRun *token_run; /* the branch or refine run going on */
  /* The running generation's trajectory so far, from its steps (for Finish Now). */
  int live_n;                 /* 0: none yet this run */
  int32_t *live_tokens;       /* the grid after the newest step */
  guint16 *live_reveal;
  float *live_prob;
  /* tessera-window-steer.c: pausing and steering the running generation */
  gboolean pausing;           /* asked the worker to pause; not yet paused */
  gboolean paused;
  int paused_step;            /* steps done when it paused */
  GArray *steer;              /* ts_image_steer: this run's changes, for its metadata */
  guint n_exported;           /* unmasking exports finished (written or failed) */
};

/* ---- shared by the window's files ---- */

/* tessera-window-actions.c: adds the win.* actions, and enables each one that can run now. */
void _tessera_window_add_actions (TesseraWindow *self);
void _tessera_window_update_actions (TesseraWindow *self);

/* tessera-window.c: (re)loads the model named in the settings, cancelling any run. */
void _tessera_window_load_model (TesseraWindow *self);
/* Starts a run's bookkeeping and UI; the caller then queues the job with
 * _tessera_window_on_step and _tessera_window_run_done (user data: a window reference). */
void _tessera_window_begin_run (TesseraWindow *self, TesseraRunKind kind);
void _tessera_window_on_step (GObject *target, const TesseraStep *step);
void _tessera_window_run_done (GObject *source, GAsyncResult *result, gpointer user_data);
/* "Finish now": the decode of the completed grid ends the run (user data: a reference). */
void _tessera_window_finish_decode_done (GObject *source, GAsyncResult *result, gpointer user_data);
/* An all-masked grid right away, so a run shows the grid before its first step ends. */
void _tessera_window_show_blank_grid (TesseraWindow *self, guint width, guint height, int steps);
/* To the canvas of the page that runs: the generate page, or the inpainting page. */
void _tessera_window_render_step (TesseraWindow *self, const TesseraStep *step);
void _tessera_window_set_progress (TesseraWindow *self, double fraction, const char *text);

void _tessera_window_toast (TesseraWindow *self, const char *message);

/* tessera-window-steer.c: win.pause (Pause, and Continue while paused), the worker's
 * "paused", and the changes for the image's metadata (borrowed until the next run). */
void _tessera_window_steer_init (TesseraWindow *self);
void _tessera_window_steer_begin_run (TesseraWindow *self);
void _tessera_window_steer_end_run (TesseraWindow *self);
gboolean _tessera_window_steer_can_pause (TesseraWindow *self);
void _tessera_window_steer_fill_meta (TesseraWindow *self, ts_image_meta *meta);
void _tessera_window_pause_activated (GSimpleAction *action, GVariant *param, gpointer user_data);

/* tessera-window-tokens.c: the step scrubber under the canvas and the branch and refine
 * runs (win.branch-from-step, win.refine-tokens). init after the template; begin_run and
 * end_run from the window's; fill_meta and set_trajectory for a saved result's metadata
 * (borrowing); patch_result gives a branch's kept tokens their source's history. */
void _tessera_window_tokens_init (TesseraWindow *self);
void _tessera_window_tokens_update_actions (TesseraWindow *self);
void _tessera_window_tokens_begin_run (TesseraWindow *self);
void _tessera_window_tokens_end_run (TesseraWindow *self);
void _tessera_window_token_run_free (TesseraTokenRun *run);
void _tessera_window_meta_set_trajectory (ts_image_meta *meta, const TesseraResult *result);
void _tessera_window_tokens_fill_meta (TesseraWindow *self, ts_image_meta *meta);
void _tessera_window_tokens_patch_result (TesseraWindow *self, TesseraResult *result);
/* Each step of a run, then on Finish Now the result (whose tokens are the last step's
 * with the prediction where still masked) gets the trajectory: those tokens revealed at
 * that step with its probabilities, as ts_generate_params.finish_at records them. */
void _tessera_window_tokens_track_step (TesseraWindow *self, const TesseraStep *step);
void _tessera_window_tokens_finish_trajectory (TesseraWindow *self, TesseraResult *result);
void _tessera_window_tokens_show_result (TesseraWindow *self, const TesseraResult *result);
void _tessera_window_tokens_show_image (TesseraWindow *self, const ts_image *image, const ts_image_meta *meta);
/* Writes the scrubber's image's unmasking to file as an animated WebP (in a thread; a toast
 * says how it went and n_exported counts it): the decoded picture, or with codebook the
 * preview's codebook colours. win.export-unmasking('picture'|'codebook') asks for file. */
void _tessera_window_tokens_export (TesseraWindow *self, GFile *file, gboolean codebook);
/* The queue (tessera-window-actions.c): appends job (taken) and starts it when nothing
 * runs; _start_next starts the first waiting job when idle with a model ready. */
void _tessera_window_enqueue (TesseraWindow *self, TesseraJob *job);
void _tessera_window_start_next (TesseraWindow *self);
/* tessera-window.c: the running job ended as state (status: its row's last line), then the
 * next one starts. */
void _tessera_window_job_ended (TesseraWindow *self, TesseraJobState state, const char *status);
/* The header's button and progress bar from the list. */
void _tessera_window_update_queue (TesseraWindow *self);
/* The gallery's Variations…: loads file and asks for the strength and the number of
 * images, then queues that many img2img jobs with new seeds (tessera-window-actions.c). */
void _tessera_window_variations (TesseraWindow *self, GFile *file);

/* ---- what the ui tests look at ---- */

TesseraScrubber *_tessera_window_get_scrubber (TesseraWindow *self);

/* "empty", "loading", "error" or "ready". */
const char *_tessera_window_get_model_state (TesseraWindow *self);
gboolean _tessera_window_is_running (TesseraWindow *self);
void _tessera_window_set_prompt (TesseraWindow *self, const char *prompt);
char *_tessera_window_dup_prompt (TesseraWindow *self);
gboolean _tessera_window_select_size (TesseraWindow *self, guint width, guint height);
/* Step callbacks that reached the window during the current or last run. */
guint _tessera_window_get_n_step_updates (TesseraWindow *self);
gboolean _tessera_window_is_paused (TesseraWindow *self);
/* The generate page's canvas texture, NULL before anything was shown. */
GdkPaintable *_tessera_window_get_canvas_paintable (TesseraWindow *self);
/* The last file saved to the gallery, NULL before the first. */
GFile *_tessera_window_get_last_saved (TesseraWindow *self);
guint _tessera_window_get_n_saved (TesseraWindow *self);
const TesseraResult *_tessera_window_get_last_result (TesseraWindow *self);
/* Mean and max time to build one step's preview texture, in ms. */
double _tessera_window_get_preview_ms (TesseraWindow *self, double *max_ms, guint *count);
const char *_tessera_window_get_status_text (TesseraWindow *self);
const char *_tessera_window_get_error_text (TesseraWindow *self);
TesseraGeneratePage *_tessera_window_get_generate_page (TesseraWindow *self);
TesseraGallery *_tessera_window_get_gallery (TesseraWindow *self);
TesseraInpaintView *_tessera_window_get_inpaint_view (TesseraWindow *self);
TesseraModelInfo *_tessera_window_get_model_info (TesseraWindow *self);
/* The queue: every job still listed (TesseraJob), and the header's popover. */
GListModel *_tessera_window_get_jobs (TesseraWindow *self);
TesseraQueuePopover *_tessera_window_get_queue_popover (TesseraWindow *self);
GtkMenuButton *_tessera_window_get_queue_button (TesseraWindow *self);
GtkProgressBar *_tessera_window_get_queue_progress (TesseraWindow *self);
/* The Variations dialog while it shows (its data: "tessera-strength", a GtkAdjustment,
 * and "tessera-count", a GtkSpinButton), else NULL. */
AdwMessageDialog *_tessera_window_get_variations_dialog (TesseraWindow *self);
/* Loads file as the inpainting source (as the gallery's Inpaint button does). */
void _tessera_window_inpaint_file (TesseraWindow *self, GFile *file);
/* Incremented when an opened file's parameters were applied to the form. */
guint _tessera_window_get_n_opened (TesseraWindow *self);
/* Total toasts shown and the last title. */
const char *_tessera_window_get_last_toast (TesseraWindow *self);
/* The "stop and close?" dialog while it shows, else NULL. */
AdwMessageDialog *_tessera_window_get_close_dialog (TesseraWindow *self);
/* Whether changed model settings wait for the current run to end. */
gboolean _tessera_window_get_reload_pending (TesseraWindow *self);
/* Toasts shown or queued (screenshots wait for them to time out). */
guint _tessera_window_get_n_toasts (TesseraWindow *self);
/* The size selected in the form (0 x 0 without a model). */
void _tessera_window_get_selected_size (TesseraWindow *self, guint *width, guint *height);
/* The preview's colour table (borrowed) and the seconds its decoding took (0 from the
 * cache); returns the share of it computed, 1 when complete. */
double _tessera_window_get_palette (TesseraWindow *self, GBytes **palette, double *seconds);

G_END_DECLS
