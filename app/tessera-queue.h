/* SPDX-License-Identifier: MIT
 *
 * tessera-queue.h — the app's job queue: TesseraJob, one image to make (a generation, an
 * inpainting, an img2img variation or an outpainting) with the parameters it was asked with, its state
 * and progress; and TesseraQueuePopover, the header's popover that lists the window's
 * jobs (a GListModel of TesseraJob) with a Cancel, Remove and Move Up button per row. The
 * window owns the list and runs the jobs one at a time on its worker; the buttons
 * activate win.queue-cancel, win.queue-remove and win.queue-up with the job's id, and
 * the footer's Clear Finished activates win.queue-clear.
 */
#pragma once

#include <adwaita.h>

#include "tessera-engine-types.h"
#include "tessera-generate-page.h"

G_BEGIN_DECLS

typedef enum {
  TESSERA_JOB_GENERATE,
  TESSERA_JOB_INPAINT,
  TESSERA_JOB_IMG2IMG,
  TESSERA_JOB_OUTPAINT,
} TesseraJobKind;

typedef enum {
  TESSERA_JOB_QUEUED,
  TESSERA_JOB_RUNNING,
  TESSERA_JOB_DONE,
  TESSERA_JOB_CANCELLED,
  TESSERA_JOB_FAILED,
} TesseraJobState;

#define TESSERA_TYPE_JOB (tessera_job_get_type ())
G_DECLARE_FINAL_TYPE (TesseraJob, tessera_job, TESSERA, JOB, GObject)

/* The fields are the window's to read and fill before the job is queued; state,
 * fraction and status change through the setters, which emit "changed" for the rows. */
struct _TesseraJob
{
  GObject parent_instance;

  guint id;
  TesseraJobKind kind;
  TesseraFormParams form;
  char *source;        /* inpaint, img2img: the source file's name, for the metadata */
  GFile *source_file;  /* inpaint: the file the inpainting page showed */
  double strength;     /* inpaint, img2img; -1 otherwise */
  ts_image *image;     /* inpaint, img2img: the source pixels */
  GBytes *mask;        /* inpaint: one byte per pixel, non-zero = repaint */
  guint32 extend[4];   /* outpaint: px to add left, top, right, bottom */
  char *source_hash;   /* "sha256:…" of the source file's bytes, NULL when unknown */

  TesseraJobState state;
  double fraction;
  char *status;
};

/* A queued job of kind with a copy of form (the strings are duplicated). */
TesseraJob *tessera_job_new (guint id, TesseraJobKind kind, const TesseraFormParams *form);
void tessera_job_set_state (TesseraJob *self, TesseraJobState state);
void tessera_job_set_progress (TesseraJob *self, double fraction, const char *status);
/* Queued or running. */
gboolean tessera_job_is_pending (TesseraJob *self);
/* "Generate · 128 × 128 · seed 42", for the row and the tests. */
char *tessera_job_dup_title (TesseraJob *self);

#define TESSERA_TYPE_QUEUE_POPOVER (tessera_queue_popover_get_type ())
G_DECLARE_FINAL_TYPE (TesseraQueuePopover, tessera_queue_popover, TESSERA, QUEUE_POPOVER, GtkPopover)

/* jobs: a GListModel of TesseraJob (held). */
void tessera_queue_popover_set_jobs (TesseraQueuePopover *self, GListModel *jobs);
/* The row of the job with id, NULL when it is not listed (for the tests). */
GtkWidget *tessera_queue_popover_get_row (TesseraQueuePopover *self, guint id);

G_END_DECLS
