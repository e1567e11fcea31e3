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

struct _TesseraWindow
{
  AdwApplicationWindow parent_instance;

  /* template */
  AdwToastOverlay *toast_overlay;
  AdwViewStack *view_stack;
  AdwViewSwitcherTitle *switcher_title;
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

/* "empty", "loading", "error" or "ready". */
const char *_tessera_window_get_model_state (TesseraWindow *self);
gboolean _tessera_window_is_running (TesseraWindow *self);
void _tessera_window_set_prompt (TesseraWindow *self, const char *prompt);
char *_tessera_window_dup_prompt (TesseraWindow *self);
gboolean _tessera_window_select_size (TesseraWindow *self, guint width, guint height);
/* Step callbacks that reached the window during the current or last run. */
guint _tessera_window_get_n_step_updates (TesseraWindow *self);
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
