/* SPDX-License-Identifier: MIT
 *
 * tessera-worker.h — TesseraWorker, the app's one engine thread. It owns the loaded
 * ts_model and runs jobs (load, generate, inpaint, img2img, outpaint, decode, colour table) queued from the main thread;
 * each job carries a GTask whose callback runs in the main context. Step and load
 * progress are copied on the engine thread and posted to the main loop, where they are
 * dropped when their target object is gone or a newer job has started. All public
 * functions are main-thread only.
 */
#pragma once

#include <gio/gio.h>

#include "tessera-engine-types.h"

G_BEGIN_DECLS

/* What a loaded model can do, copied from the engine on the worker thread. */
typedef struct {
  guint width, height;
} TesseraSize;

typedef struct {
  char *path;
  char *name;
  char *backend;
  char *precision; /* "fp32" or "bf16": what the model computes in */
  guint default_width, default_height;
  double default_guidance; /* the model's recommended guidance scale */
  guint vae_scale_factor;
  guint size_step; /* image sides are multiples of it (ts_model_size_step) */
  int codebook_size;
  int mask_token_id;
  GArray *sizes;   /* TesseraSize, the default size first */
} TesseraModelInfo;

#define TESSERA_TYPE_MODEL_INFO (tessera_model_info_get_type ())
GType tessera_model_info_get_type (void) G_GNUC_CONST;
TesseraModelInfo *tessera_model_info_ref (TesseraModelInfo *info);
void tessera_model_info_unref (TesseraModelInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TesseraModelInfo, tessera_model_info_unref)

/* One sampling step as the engine reported it; arrays are grid_h * grid_w. Owned by the
 * worker; valid during the step callback only. */
typedef struct {
  int step, n_steps;
  int grid_h, grid_w;
  int n_masked;
  int32_t mask_token_id;
  double seconds;
  int32_t *tokens;
  int32_t *predicted;
  float *confidence;
  float *probability; /* of each predicted code, without the noise (ts_step_info's) */
} TesseraStep;

typedef void (*TesseraStepFunc) (GObject *target, const TesseraStep *step);
typedef void (*TesseraProgressFunc) (GObject *target, double fraction, const char *what);

/* Generation parameters; the worker copies them. */
typedef struct {
  const char *prompt;
  const char *negative_prompt;
  guint width, height;
  int steps;
  double guidance;
  double temperature_start, temperature_end;
  double aesthetic_score;
  guint64 seed;
  guint finish_at; /* 0: every step; K: stop after step K as "Finish now" does */
  const ts_image_steer *steer; /* changes to make at their steps (text to image); copied */
  guint n_steer;
} TesseraGenerateParams;

void tessera_generate_params_init (TesseraGenerateParams *p);

/* A finished generation: the final tokens and the decoded image. */
typedef struct {
  int grid_h, grid_w;
  int32_t *tokens;
  ts_image *image;
  gboolean prompt_truncated;
  guint32 extend[4]; /* outpainting: the pixels added left, top, right, bottom */
  double seconds;
  ts_model_stats stats;
  /* The trajectory (grid_h * grid_w each, NULL when not known): the 1-based step that fixed
   * each token (0 = never masked) and the model's probability of its code then. */
  guint16 *reveal_step;
  float *reveal_prob;
} TesseraResult;

void tessera_result_free (TesseraResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TesseraResult, tessera_result_free)

#define TESSERA_TYPE_WORKER (tessera_worker_get_type ())
G_DECLARE_FINAL_TYPE (TesseraWorker, tessera_worker, TESSERA, WORKER, GObject)

TesseraWorker *tessera_worker_new (void);

/* Pausing and steering the running text-to-image, branch or refine job: with pause TRUE
 * the run stops before its next step and the worker emits "paused" (the 0-based step
 * about to run) in the main context; it waits until tessera_worker_continue, which may
 * change the prompts, guidance and temperatures from that step on (change nullable; the
 * worker copies it), or until the job is cancelled. FALSE withdraws a request not yet
 * taken up (call it when a run ends). */
void tessera_worker_pause (TesseraWorker *self, gboolean pause);
void tessera_worker_continue (TesseraWorker *self, const ts_steer_change *change);

/* Frees the current model (if any) and loads dir. progress runs on the main thread while
 * target is alive. */
void tessera_worker_load_async (TesseraWorker *self, const char *dir, const char *backend,
                                const char *precision,
                                int n_threads, GObject *target, TesseraProgressFunc progress,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data);
TesseraModelInfo *tessera_worker_load_finish (TesseraWorker *self, GAsyncResult *result,
                                              GError **error);

/* Text to image. step runs on the main thread after every sampling step while target is
 * alive and this is the newest generate/inpaint job. */
void tessera_worker_generate_async (TesseraWorker *self, const TesseraGenerateParams *params,
                                    GObject *target, TesseraStepFunc step,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data);
TesseraResult *tessera_worker_generate_finish (TesseraWorker *self, GAsyncResult *result,
                                               GError **error);

/* Repaints the tokens under mask (image->width * image->height bytes, non-zero = repaint).
 * Takes ownership of image. */
void tessera_worker_inpaint_async (TesseraWorker *self, const TesseraGenerateParams *params,
                                   ts_image *image, GBytes *mask, double strength,
                                   GObject *target, TesseraStepFunc step,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data);
TesseraResult *tessera_worker_inpaint_finish (TesseraWorker *self, GAsyncResult *result,
                                              GError **error);

/* Image to image (ts_model_img2img): a new image from image and the prompt, keeping more
 * of image the lower strength is. Outpainting (ts_model_outpaint): image on a canvas
 * extended by extend (left, top, right, bottom, px; rounded up to whole tokens, the
 * result's extend says by how much) whose border is painted. Both take image and finish
 * with tessera_worker_image_finish. */
void tessera_worker_img2img_async (TesseraWorker *self, const TesseraGenerateParams *params,
                                   ts_image *image, double strength, GObject *target,
                                   TesseraStepFunc step, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data);
void tessera_worker_outpaint_async (TesseraWorker *self, const TesseraGenerateParams *params,
                                    ts_image *image, const guint32 extend[4], double strength,
                                    GObject *target, TesseraStepFunc step,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data);
TesseraResult *tessera_worker_image_finish (TesseraWorker *self, GAsyncResult *result,
                                            GError **error);

/* The live preview's colour table for the loaded model: codebook_size RGB triplets, the
 * colour of each code, read from the cache or computed in chunks (minutes on a CPU for
 * Meissonic). Between chunks the job yields to any job queued after it and then resumes,
 * and partial runs on the main thread with the table so far (codes not reached yet have
 * a fallback grey) while target is alive. It fails as cancelled when another model was
 * loaded in between. _finish sets seconds to the decoding time (0 from the cache). */
typedef void (*TesseraPaletteFunc) (GObject *target, GBytes *palette, double fraction);

void tessera_worker_palette_async (TesseraWorker *self, GObject *target, TesseraPaletteFunc partial,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data);
GBytes *tessera_worker_palette_finish (TesseraWorker *self, GAsyncResult *result, double *seconds,
                                       GError **error);

/* Continues a generation from a token grid (branch, refine): tokens holds the kept codes
 * and ts_model_mask_token_id where a token is to be drawn; steps start_step .. steps - 1
 * (0-based) run, the schedule scaled by starting_mask_ratio (1 = the model's own). step as
 * for generating. */
void tessera_worker_resume_async (TesseraWorker *self, const TesseraGenerateParams *params,
                                  const int32_t *tokens, int grid_h, int grid_w, int start_step,
                                  double starting_mask_ratio, GObject *target, TesseraStepFunc step,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data);
TesseraResult *tessera_worker_resume_finish (TesseraWorker *self, GAsyncResult *result,
                                             GError **error);

/* VQ-decodes a token grid (no mask ids). */
void tessera_worker_decode_async (TesseraWorker *self, const int32_t *tokens, int grid_h,
                                  int grid_w, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data);
ts_image *tessera_worker_decode_finish (TesseraWorker *self, GAsyncResult *result,
                                        GError **error);

G_END_DECLS
