/* SPDX-License-Identifier: MIT
 *
 * tessera-worker.c — the engine thread. The main thread queues jobs on a GAsyncQueue;
 * the thread runs them one by one against the model it owns and returns each job's GTask
 * (GTask then calls back in the main context). Per-step state is copied on this thread
 * and posted to the main context as an idle source holding a GWeakRef to the target and
 * the job id; the main thread drops it when the target is gone or a newer job started.
 * The thread never touches GTK. Jobs (and so their tasks, which hold the worker) are
 * always freed in the main context, so the worker's last reference, and with it dispose
 * and the thread join, is never dropped on the engine thread itself.
 *
 * The per-code colour table for the live preview runs here too, as a job queued right
 * after a load: tessera-palette.c reads it from its cache or decodes it chunk by chunk,
 * and between chunks the job yields to any job queued after it (run_palette).
 */
#include "tessera-worker.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "tessera-palette.h"

typedef enum {
  JOB_LOAD,
  JOB_GENERATE,
  JOB_INPAINT,
  JOB_IMG2IMG,
  JOB_OUTPAINT,
  JOB_DECODE,
  JOB_PALETTE,
  JOB_RESUME,
  JOB_QUIT,
} JobKind;

typedef struct {
  JobKind kind;
  guint id;
  GTask *task;
  GMainContext *context;
  GWeakRef worker;
  GWeakRef target;
  TesseraStepFunc step;
  TesseraProgressFunc progress;
  gint64 last_progress_us;

  char *dir;
  char *backend;
  int n_threads;
  ts_precision precision;

  TesseraGenerateParams params;
  char *prompt;
  char *negative_prompt;
  ts_image *image;
  GBytes *mask;
  double strength;
  guint32 extend[4]; /* JOB_OUTPAINT: asked for, then the values used */

  char *steer_prompt;          /* the newest steering change's strings, in use by the run */
  char *steer_negative_prompt;
  ts_image_steer *plan;        /* changes to make at their steps (a steered image reused) */
  guint n_plan;

  int32_t *tokens;
  int grid_h, grid_w;
  int start_step;            /* JOB_RESUME */
  float starting_mask_ratio; /* JOB_RESUME */

  /* JOB_PALETTE: the table so far, kept while the job yields to other jobs. */
  TesseraPaletteFunc palette_func;
  guint model_serial;
  guint8 *rgb;
  int n_codes, next_code;
  double palette_seconds;
  char *cache_path;
} Job;

struct _TesseraWorker
{
  GObject parent_instance;

  GThread *thread;
  GAsyncQueue *queue;
  GMainContext *context;
  guint next_job_id;
  guint progress_job_id; /* main thread: the newest job whose progress is shown */
  gint quitting;         /* atomic */

  /* Pausing and steering a generation: the main thread asks, the engine thread waits
   * between two steps until told to go on (or the job is cancelled). */
  GMutex steer_mutex;
  GCond steer_cond;
  gboolean pause_requested;
  gboolean go_on;
  ts_steer_change go_on_change; /* g_malloc'd strings; NaN numbers = unchanged */

  /* Engine thread only. */
  ts_model *model;
  char *model_dir;
  guint model_serial; /* bumped by every load */
};

G_DEFINE_FINAL_TYPE (TesseraWorker, tessera_worker, G_TYPE_OBJECT)

/* ---- boxed types ---- */

TesseraModelInfo *
tessera_model_info_ref (TesseraModelInfo *info)
{
  g_return_val_if_fail (info != NULL, NULL);
  return g_atomic_rc_box_acquire (info);
}

static void
model_info_clear (gpointer data)
{
  TesseraModelInfo *info = data;

  g_free (info->path);
  g_free (info->name);
  g_free (info->backend);
  g_free (info->precision);
  g_clear_pointer (&info->sizes, g_array_unref);
}

void
tessera_model_info_unref (TesseraModelInfo *info)
{
  if (info)
    g_atomic_rc_box_release_full (info, model_info_clear);
}

G_DEFINE_BOXED_TYPE (TesseraModelInfo, tessera_model_info, tessera_model_info_ref, tessera_model_info_unref)

void
tessera_generate_params_init (TesseraGenerateParams *p)
{
  ts_generate_params gp;

  g_return_if_fail (p != NULL);
  ts_generate_params_init (&gp);
  memset (p, 0, sizeof *p);
  p->prompt = "";
  p->negative_prompt = "";
  p->width = gp.width;
  p->height = gp.height;
  p->steps = gp.steps;
  p->guidance = gp.guidance;
  p->temperature_start = gp.temperature_start;
  p->temperature_end = gp.temperature_end;
  p->aesthetic_score = gp.aesthetic_score;
  p->seed = gp.seed;
}

void
tessera_result_free (TesseraResult *result)
{
  if (!result)
    return;
  g_free (result->tokens);
  g_free (result->reveal_step);
  g_free (result->reveal_prob);
  ts_image_free (result->image);
  g_free (result);
}

static void
step_free (TesseraStep *step)
{
  g_free (step->tokens);
  g_free (step->predicted);
  g_free (step->confidence);
  g_free (step->probability);
  g_free (step);
}

/* ---- posting to the main context ---- */

/* g_main_context_invoke() would run the function right here on the engine thread when
 * the main context happens to be free; an idle source always runs in the context. */
static void
post_to_context (GMainContext *context, GSourceFunc func, gpointer data, GDestroyNotify destroy)
{
  GSource *source = g_idle_source_new ();

  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, func, data, destroy);
  g_source_set_static_name (source, "[tessera] worker post");
  g_source_attach (source, context);
  g_source_unref (source);
}

static void
job_free (Job *job)
{
  g_clear_object (&job->task);
  g_clear_pointer (&job->context, g_main_context_unref);
  g_weak_ref_clear (&job->worker);
  g_weak_ref_clear (&job->target);
  g_free (job->dir);
  g_free (job->backend);
  g_free (job->prompt);
  g_free (job->negative_prompt);
  g_free (job->steer_prompt);
  g_free (job->steer_negative_prompt);
  if (job->plan)
    tessera_steer_records_clear (job->plan, job->n_plan);
  g_free (job->plan);
  ts_image_free (job->image);
  g_clear_pointer (&job->mask, g_bytes_unref);
  g_free (job->tokens);
  g_free (job->rgb);
  g_free (job->cache_path);
  g_free (job);
}

static gboolean
job_free_in_context (gpointer data)
{
  job_free (data);
  return G_SOURCE_REMOVE;
}

/* Engine thread: hands the job (its GTask holds the worker) back to the main context. */
static void
job_release (Job *job)
{
  GMainContext *context = g_main_context_ref (job->context);

  post_to_context (context, job_free_in_context, job, NULL);
  g_main_context_unref (context);
}

typedef struct {
  GWeakRef worker;
  GWeakRef target;
  guint job_id;
  TesseraStepFunc step_func;
  TesseraProgressFunc progress_func;
  TesseraPaletteFunc palette_func;
  TesseraStep *step;
  double fraction;
  char *what;
  GBytes *palette;
} Post;

static void
post_free (gpointer data)
{
  Post *post = data;

  g_weak_ref_clear (&post->worker);
  g_weak_ref_clear (&post->target);
  g_clear_pointer (&post->step, step_free);
  g_free (post->what);
  g_clear_pointer (&post->palette, g_bytes_unref);
  g_free (post);
}

static gboolean
post_dispatch (gpointer data)
{
  Post *post = data;
  g_autoptr (TesseraWorker) worker = g_weak_ref_get (&post->worker);
  g_autoptr (GObject) target = g_weak_ref_get (&post->target);

  if (!worker || !target)
    return G_SOURCE_REMOVE;
  /* The colour table runs beside generations, so it is not tied to the newest job. */
  if (post->palette_func)
    {
      post->palette_func (target, post->palette, post->fraction);
      return G_SOURCE_REMOVE;
    }
  if (worker->progress_job_id != post->job_id)
    return G_SOURCE_REMOVE;
  if (post->step_func)
    post->step_func (target, post->step);
  else if (post->progress_func)
    post->progress_func (target, post->fraction, post->what);
  return G_SOURCE_REMOVE;
}

static Post *
post_new (Job *job)
{
  Post *post = g_new0 (Post, 1);
  g_autoptr (GObject) worker = g_weak_ref_get (&job->worker);
  g_autoptr (GObject) target = g_weak_ref_get (&job->target);

  g_weak_ref_init (&post->worker, worker);
  g_weak_ref_init (&post->target, target);
  post->job_id = job->id;
  return post;
}

/* ---- engine callbacks (engine thread) ---- */

static bool
job_should_abort (void *user_data)
{
  Job *job = user_data;
  g_autoptr (TesseraWorker) worker = g_weak_ref_get (&job->worker);

  return g_cancellable_is_cancelled (g_task_get_cancellable (job->task)) ||
         (worker && g_atomic_int_get (&worker->quitting));
}

static void
job_report_progress (Job *job, double fraction, const char *what)
{
  gint64 now = g_get_monotonic_time ();
  Post *post;

  /* Keep the main loop free: at most ~30 updates a second, but always the last. */
  if (!job->progress || (fraction < 1.0 && now - job->last_progress_us < 33000))
    return;
  job->last_progress_us = now;
  post = post_new (job);
  post->progress_func = job->progress;
  post->fraction = fraction;
  post->what = g_strdup (what);
  post_to_context (job->context, post_dispatch, post, post_free);
}

static void
on_load_progress (void *user_data, double fraction, const char *what)
{
  Job *job = user_data;

  job_report_progress (job, fraction, what);
}

static void
on_step (void *user_data, const ts_step_info *info)
{
  Job *job = user_data;
  gsize n = (gsize) info->grid_h * info->grid_w;
  TesseraStep *step;
  Post *post;

  if (!job->step)
    return;
  step = g_new0 (TesseraStep, 1);
  step->step = info->step;
  step->n_steps = info->n_steps;
  step->grid_h = info->grid_h;
  step->grid_w = info->grid_w;
  step->n_masked = info->n_masked;
  step->mask_token_id = info->mask_token_id;
  step->seconds = info->seconds;
  step->tokens = g_memdup2 (info->tokens, n * sizeof *info->tokens);
  step->predicted = g_memdup2 (info->predicted, n * sizeof *info->predicted);
  step->confidence = g_memdup2 (info->confidence, n * sizeof *info->confidence);
  step->probability = info->probability ? g_memdup2 (info->probability, n * sizeof *info->probability) : NULL;
  post = post_new (job);
  post->step_func = job->step;
  post->step = step;
  post_to_context (job->context, post_dispatch, post, post_free);
}

/* ---- pausing and steering ---- */

enum {
  SIGNAL_PAUSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

typedef struct {
  GWeakRef worker;
  guint job_id;
  int step;
} PausedPost;

static void
paused_post_free (gpointer data)
{
  PausedPost *post = data;

  g_weak_ref_clear (&post->worker);
  g_free (post);
}

static gboolean
paused_dispatch (gpointer data)
{
  PausedPost *post = data;
  g_autoptr (TesseraWorker) worker = g_weak_ref_get (&post->worker);

  if (worker && worker->progress_job_id == post->job_id)
    g_signal_emit (worker, signals[SIGNAL_PAUSED], 0, post->step);
  return G_SOURCE_REMOVE;
}

static void
steer_change_clear (ts_steer_change *c)
{
  g_free ((char *) c->prompt);
  g_free ((char *) c->negative_prompt);
  ts_steer_change_init (c);
}

/* Engine thread, before each step after the first: where a pause was asked for, tell the
 * main thread and wait until it says go on (with the changes to make) or the job is
 * cancelled. The job's GTask holds the worker, so the worker outlives the wait. */
static bool
job_steer (void *user_data, int step, ts_steer_change *change)
{
  Job *job = user_data;
  g_autoptr (TesseraWorker) worker = g_weak_ref_get (&job->worker);
  bool changed = false;

  if (!worker)
    return false;
  /* A steered image reused: its recorded change for this (1-based) step. */
  for (guint i = 0; i < job->n_plan; i++)
    if (job->plan[i].step == (guint32) step + 1)
      {
        const ts_image_steer *c = &job->plan[i];

        change->prompt = c->prompt;
        change->negative_prompt = c->negative_prompt;
        change->guidance = c->cfg;
        change->temperature_start = c->temperature_start;
        change->temperature_end = c->temperature_end;
        changed = true;
      }
  g_mutex_lock (&worker->steer_mutex);
  if (worker->pause_requested)
    {
      PausedPost *post = g_new0 (PausedPost, 1);

      g_weak_ref_init (&post->worker, worker);
      post->job_id = job->id;
      post->step = step;
      post_to_context (job->context, paused_dispatch, post, paused_post_free);
      while (!worker->go_on && !job_should_abort (job))
        g_cond_wait_until (&worker->steer_cond, &worker->steer_mutex,
                           g_get_monotonic_time () + 50 * G_TIME_SPAN_MILLISECOND);
      if (worker->go_on)
        {
          ts_steer_change *c = &worker->go_on_change;

          /* The run reads the strings while it encodes them: the job keeps them. */
          if (c->prompt)
            {
              g_free (job->steer_prompt);
              job->steer_prompt = g_strdup (c->prompt);
            }
          if (c->negative_prompt)
            {
              g_free (job->steer_negative_prompt);
              job->steer_negative_prompt = g_strdup (c->negative_prompt);
            }
          /* On top of the plan's change for this step, where there is one. */
          if (c->prompt)
            change->prompt = job->steer_prompt;
          if (c->negative_prompt)
            change->negative_prompt = job->steer_negative_prompt;
          if (!isnan (c->guidance))
            change->guidance = c->guidance;
          if (!isnan (c->temperature_start))
            change->temperature_start = c->temperature_start;
          if (!isnan (c->temperature_end))
            change->temperature_end = c->temperature_end;
          changed = changed || c->prompt || c->negative_prompt || !isnan (c->guidance)
                    || !isnan (c->temperature_start) || !isnan (c->temperature_end);
        }
      steer_change_clear (&worker->go_on_change);
      worker->pause_requested = FALSE;
      worker->go_on = FALSE;
    }
  g_mutex_unlock (&worker->steer_mutex);
  return changed;
}

void
tessera_worker_pause (TesseraWorker *self, gboolean pause)
{
  g_return_if_fail (TESSERA_IS_WORKER (self));
  g_mutex_lock (&self->steer_mutex);
  self->pause_requested = pause;
  self->go_on = FALSE;
  steer_change_clear (&self->go_on_change);
  g_mutex_unlock (&self->steer_mutex);
}

void
tessera_worker_continue (TesseraWorker *self, const ts_steer_change *change)
{
  g_return_if_fail (TESSERA_IS_WORKER (self));
  g_mutex_lock (&self->steer_mutex);
  if (self->pause_requested)
    {
      steer_change_clear (&self->go_on_change);
      if (change)
        {
          self->go_on_change = *change;
          self->go_on_change.prompt = g_strdup (change->prompt);
          self->go_on_change.negative_prompt = g_strdup (change->negative_prompt);
        }
      self->go_on = TRUE;
      g_cond_broadcast (&self->steer_cond);
    }
  g_mutex_unlock (&self->steer_mutex);
}

/* ---- the colour table (tessera-palette.c computes it) ---- */

static void
palette_post (Job *job)
{
  Post *post;

  if (!job->palette_func)
    return;
  post = post_new (job);
  post->palette_func = job->palette_func;
  post->palette = g_bytes_new (job->rgb, (gsize) job->n_codes * 3);
  post->fraction = (double) job->next_code / job->n_codes;
  post_to_context (job->context, post_dispatch, post, post_free);
}

/* ---- jobs (engine thread) ---- */

static const TesseraSize candidate_sizes[] = {
  { 1024, 1024 }, { 768, 768 }, { 512, 512 }, { 256, 256 },
  { 1024, 768 }, { 768, 1024 }, { 1152, 896 }, { 896, 1152 },
  { 1216, 832 }, { 832, 1216 }, { 1344, 768 }, { 768, 1344 },
};

static void
run_load (TesseraWorker *self, Job *job)
{
  ts_model_load_params lp;
  ts_error err;
  g_autoptr (TesseraModelInfo) info = NULL;
  GError *error = NULL;
  TesseraSize def;

  ts_model_free (self->model);
  self->model = NULL;
  g_clear_pointer (&self->model_dir, g_free);
  self->model_serial++;

  ts_model_load_params_init (&lp);
  lp.backend = job->backend;
  lp.n_threads = job->n_threads;
  lp.precision = job->precision;
  lp.progress = on_load_progress;
  lp.progress_data = job;
  /* A model switched again, or the window closed, stops a load of gigabytes between two
   * tensors. */
  lp.should_abort = job_should_abort;
  lp.abort_data = job;
  self->model = ts_model_load (job->dir, &lp, &err);
  if (!self->model)
    {
      tessera_engine_error_from_ts (&err, &error);
      g_task_return_error (job->task, error);
      return;
    }
  self->model_dir = g_strdup (job->dir);

  info = g_atomic_rc_box_new0 (TesseraModelInfo);
  info->path = g_strdup (job->dir);
  info->name = g_strdup (ts_model_name (self->model));
  info->backend = g_strdup (ts_model_backend_name (self->model));
  info->precision = g_strdup (ts_precision_name (ts_model_precision (self->model)));
  ts_model_default_size (self->model, &info->default_width, &info->default_height);
  info->default_guidance = ts_model_default_guidance (self->model);
  info->vae_scale_factor = ts_model_vae_scale_factor (self->model);
  info->size_step = ts_model_size_step (self->model);
  info->codebook_size = ts_model_codebook_size (self->model);
  info->mask_token_id = ts_model_mask_token_id (self->model);
  info->sizes = g_array_new (FALSE, FALSE, sizeof (TesseraSize));
  def.width = info->default_width;
  def.height = info->default_height;
  if (ts_model_check_size (self->model, def.width, def.height, NULL) == TS_OK)
    g_array_append_val (info->sizes, def);
  for (gsize i = 0; i < G_N_ELEMENTS (candidate_sizes); i++)
    {
      const TesseraSize *s = &candidate_sizes[i];

      if ((s->width == def.width && s->height == def.height) ||
          ts_model_check_size (self->model, s->width, s->height, NULL) != TS_OK)
        continue;
      g_array_append_val (info->sizes, *s);
    }
  job_report_progress (job, 1.0, _("ready"));
  g_task_return_pointer (job->task, g_steal_pointer (&info), (GDestroyNotify) tessera_model_info_unref);
}

static void
fill_engine_params (Job *job, ts_generate_params *gp)
{
  ts_generate_params_init (gp);
  gp->prompt = job->prompt;
  gp->negative_prompt = job->negative_prompt;
  gp->width = job->params.width;
  gp->height = job->params.height;
  gp->steps = job->params.steps;
  gp->guidance = job->params.guidance;
  gp->temperature_start = job->params.temperature_start;
  gp->temperature_end = job->params.temperature_end;
  gp->aesthetic_score = job->params.aesthetic_score;
  gp->seed = job->params.seed;
  gp->finish_at = (int) job->params.finish_at;
  gp->on_step = on_step;
  gp->step_data = job;
  gp->should_abort = job_should_abort;
  gp->abort_data = job;
  /* Text to image, branch and refine can be paused and steered. */
  if (job->kind == JOB_GENERATE || job->kind == JOB_RESUME)
    {
      gp->steer = job_steer;
      gp->steer_data = job;
    }
}

/* The painted mask (one byte per pixel, non-zero = painted) as the engine's per-token
 * mask: a token-grid-sized RGB image, white where at least half of the token's cell is
 * painted. The brush snaps to cells, so this is exactly what the user painted, and at the
 * grid size the engine uses it as it is (no resize). */
static ts_image *
token_mask (TesseraWorker *self, const ts_image *image, GBytes *painted)
{
  const guint8 *px = g_bytes_get_data (painted, NULL);
  guint f = ts_model_vae_scale_factor (self->model);
  guint gw = image->width / f, gh = image->height / f;
  ts_image *mask = gw && gh ? ts_image_new (gw, gh, NULL) : NULL;

  if (!mask)
    return NULL;
  for (guint gy = 0; gy < gh; gy++)
    for (guint gx = 0; gx < gw; gx++)
      {
        guint set = 0;
        for (guint y = 0; y < f; y++)
          for (guint x = 0; x < f; x++)
            set += px[(gsize) (gy * f + y) * image->width + gx * f + x] != 0;
        memset (mask->pixels + ((gsize) gy * gw + gx) * 3, 2 * set >= f * f ? 255 : 0, 3);
      }
  return mask;
}

static ts_status
run_resume (TesseraWorker *self, Job *job, const ts_generate_params *gp, ts_result *r, ts_error *err)
{
  ts_resume_state rs = {
    .tokens = job->tokens,
    .grid_h = job->grid_h,
    .grid_w = job->grid_w,
    .start_step = job->start_step,
    .starting_mask_ratio = job->starting_mask_ratio,
    .linear_schedule = false,
  };

  return ts_model_resume (self->model, gp, &rs, r, err);
}

static void
run_generate (TesseraWorker *self, Job *job)
{
  ts_generate_params gp;
  ts_result r = { 0 };
  ts_error err;
  ts_status st;
  GError *error = NULL;
  TesseraResult *result;
  gint64 t0 = g_get_monotonic_time ();

  if (!self->model)
    {
      g_task_return_new_error (job->task, TESSERA_ENGINE_ERROR, TESSERA_ENGINE_ERROR_INVALID_ARG,
                               _("No model is loaded"));
      return;
    }
  fill_engine_params (job, &gp);
  if (job->kind == JOB_INPAINT)
    {
      ts_image *mask = token_mask (self, job->image, job->mask);
      if (mask)
        st = ts_model_inpaint (self->model, &gp, job->image, mask, job->strength, &r, &err);
      else
        {
          err.code = st = TS_ERR_NOMEM;
          g_strlcpy (err.message, "inpaint: out of memory for the mask", sizeof err.message);
        }
      ts_image_free (mask);
    }
  else if (job->kind == JOB_RESUME)
    st = run_resume (self, job, &gp, &r, &err);
  else if (job->kind == JOB_IMG2IMG)
    st = ts_model_img2img (self->model, &gp, job->image, job->strength, &r, &err);
  else if (job->kind == JOB_OUTPAINT)
    {
      uint32_t asked[4], used[4] = { 0 };

      memcpy (asked, job->extend, sizeof asked);
      st = ts_model_outpaint (self->model, &gp, job->image, asked, job->strength, used, &r, &err);
      memcpy (job->extend, used, sizeof used);
    }
  else
    st = ts_model_generate (self->model, &gp, &r, &err);
  if (st != TS_OK)
    {
      ts_result_free (&r);
      tessera_engine_error_from_ts (&err, &error);
      g_task_return_error (job->task, error);
      return;
    }
  result = g_new0 (TesseraResult, 1);
  result->grid_h = r.grid_h;
  result->grid_w = r.grid_w;
  result->tokens = g_memdup2 (r.tokens, (gsize) r.grid_h * r.grid_w * sizeof *r.tokens);
  if (r.reveal_step && r.reveal_prob)
    {
      result->reveal_step = g_memdup2 (r.reveal_step, (gsize) r.grid_h * r.grid_w * sizeof *r.reveal_step);
      result->reveal_prob = g_memdup2 (r.reveal_prob, (gsize) r.grid_h * r.grid_w * sizeof *r.reveal_prob);
    }
  result->image = g_steal_pointer (&r.image);
  result->prompt_truncated = r.prompt_truncated;
  memcpy (result->extend, job->extend, sizeof result->extend);
  result->seconds = (g_get_monotonic_time () - t0) / 1e6;
  ts_model_get_stats (self->model, &result->stats);
  ts_result_free (&r);
  g_task_return_pointer (job->task, result, (GDestroyNotify) tessera_result_free);
}

/* Returns TRUE when the job yielded to a waiting job and must be queued again. */
static gboolean
run_palette (TesseraWorker *self, Job *job)
{
  GError *error = NULL;
  gint64 t0;

  if (!self->model)
    {
      g_task_return_new_error (job->task, TESSERA_ENGINE_ERROR, TESSERA_ENGINE_ERROR_INVALID_ARG,
                               _("No model is loaded"));
      return FALSE;
    }
  if (!job->rgb)
    {
      GBytes *cached;

      job->model_serial = self->model_serial;
      job->n_codes = ts_model_codebook_size (self->model);
      job->cache_path = tessera_palette_cache_path (self->model_dir, job->n_codes);
      cached = tessera_palette_read_cache (job->cache_path, job->n_codes);
      if (cached)
        {
          g_task_return_pointer (job->task, cached, (GDestroyNotify) g_bytes_unref);
          return FALSE;
        }
      job->rgb = g_malloc ((gsize) job->n_codes * 3);
      tessera_palette_fill_fallback (job->rgb, job->n_codes);
      palette_post (job);
    }
  else if (job->model_serial != self->model_serial)
    {
      /* A newer load ran while this job waited: its model is gone. */
      g_task_return_new_error (job->task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
      return FALSE;
    }

  t0 = g_get_monotonic_time ();
  while (job->next_code < job->n_codes)
    {
      int count = MIN (TESSERA_PALETTE_CHUNK * TESSERA_PALETTE_CHUNK, job->n_codes - job->next_code);

      if (job_should_abort (job))
        {
          g_task_return_new_error (job->task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
          return FALSE;
        }
      if (g_async_queue_length (self->queue) > 0)
        {
          job->palette_seconds += (g_get_monotonic_time () - t0) / 1e6;
          return TRUE;
        }
      if (!tessera_palette_decode_chunk (self->model, job->rgb, job->next_code, count, &error))
        {
          g_task_return_error (job->task, error);
          return FALSE;
        }
      job->next_code += count;
      palette_post (job);
    }
  job->palette_seconds += (g_get_monotonic_time () - t0) / 1e6;
  g_debug ("colour table: %d codes in %.2f s of decoding", job->n_codes, job->palette_seconds);
  {
    GBytes *palette = g_bytes_new_take (g_steal_pointer (&job->rgb), (gsize) job->n_codes * 3);

    tessera_palette_write_cache (job->cache_path, palette);
    g_task_set_task_data (job->task, g_memdup2 (&job->palette_seconds, sizeof (double)), g_free);
    g_task_return_pointer (job->task, palette, (GDestroyNotify) g_bytes_unref);
  }
  return FALSE;
}

static void
run_decode (TesseraWorker *self, Job *job)
{
  ts_error err;
  ts_image *image;
  GError *error = NULL;

  if (!self->model)
    {
      g_task_return_new_error (job->task, TESSERA_ENGINE_ERROR, TESSERA_ENGINE_ERROR_INVALID_ARG,
                               _("No model is loaded"));
      return;
    }
  image = ts_model_decode (self->model, job->tokens, job->grid_h, job->grid_w, &err);
  if (!image)
    {
      tessera_engine_error_from_ts (&err, &error);
      g_task_return_error (job->task, error);
      return;
    }
  g_task_return_pointer (job->task, image, (GDestroyNotify) ts_image_free);
}

static gpointer
worker_thread (gpointer data)
{
  TesseraWorker *self = data;

  for (;;)
    {
      Job *job = g_async_queue_pop (self->queue);

      if (job->kind == JOB_QUIT)
        {
          job_free (job);
          break;
        }
      if (g_atomic_int_get (&self->quitting) ||
          g_cancellable_is_cancelled (g_task_get_cancellable (job->task)))
        g_task_return_new_error (job->task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
      else
        switch (job->kind)
          {
          case JOB_LOAD:
            run_load (self, job);
            break;
          case JOB_GENERATE:
          case JOB_INPAINT:
          case JOB_RESUME:
          case JOB_IMG2IMG:
          case JOB_OUTPAINT:
            run_generate (self, job);
            break;
          case JOB_DECODE:
            run_decode (self, job);
            break;
          case JOB_PALETTE:
            if (run_palette (self, job))
              {
                g_async_queue_push (self->queue, job);
                continue;
              }
            break;
          case JOB_QUIT:
            g_assert_not_reached ();
          }
      job_release (job);
    }
  ts_model_free (self->model);
  self->model = NULL;
  g_clear_pointer (&self->model_dir, g_free);
  return NULL;
}

/* ---- GObject ---- */

static void
tessera_worker_dispose (GObject *object)
{
  TesseraWorker *self = TESSERA_WORKER (object);

  if (self->thread)
    {
      Job *quit = g_new0 (Job, 1);

      /* Any job still queued is returned as cancelled; the running one stops within one
       * transformer block (should_abort reads `quitting`). */
      g_atomic_int_set (&self->quitting, 1);
      quit->kind = JOB_QUIT;
      g_weak_ref_init (&quit->worker, NULL);
      g_weak_ref_init (&quit->target, NULL);
      g_async_queue_push (self->queue, quit);
      g_thread_join (g_steal_pointer (&self->thread));
    }
  G_OBJECT_CLASS (tessera_worker_parent_class)->dispose (object);
}

static void
tessera_worker_finalize (GObject *object)
{
  TesseraWorker *self = TESSERA_WORKER (object);

  g_async_queue_unref (self->queue);
  g_main_context_unref (self->context);
  steer_change_clear (&self->go_on_change);
  g_mutex_clear (&self->steer_mutex);
  g_cond_clear (&self->steer_cond);
  G_OBJECT_CLASS (tessera_worker_parent_class)->finalize (object);
}

static void
tessera_worker_class_init (TesseraWorkerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = tessera_worker_dispose;
  object_class->finalize = tessera_worker_finalize;

  /* A run asked to pause (tessera_worker_pause) now waits before `step` (0-based: after
   * step `step` of 1-based numbering) until tessera_worker_continue or a cancel. */
  signals[SIGNAL_PAUSED] = g_signal_new ("paused", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                         NULL, G_TYPE_NONE, 1, G_TYPE_INT);
}

static void
tessera_worker_init (TesseraWorker *self)
{
  self->queue = g_async_queue_new ();
  g_mutex_init (&self->steer_mutex);
  g_cond_init (&self->steer_cond);
  ts_steer_change_init (&self->go_on_change);
  self->context = g_main_context_ref_thread_default ();
  self->thread = g_thread_new ("tessera-engine", worker_thread, self);
}

TesseraWorker *
tessera_worker_new (void)
{
  return g_object_new (TESSERA_TYPE_WORKER, NULL);
}

/* ---- public API (main thread) ---- */

static Job *
job_new (TesseraWorker *self, JobKind kind, GObject *target, GCancellable *cancellable,
         GAsyncReadyCallback callback, gpointer user_data, gpointer source_tag)
{
  Job *job = g_new0 (Job, 1);

  job->kind = kind;
  job->id = ++self->next_job_id;
  job->context = g_main_context_ref (self->context);
  job->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (job->task, source_tag);
  g_weak_ref_init (&job->worker, self);
  g_weak_ref_init (&job->target, target);
  return job;
}

void
tessera_worker_load_async (TesseraWorker *self, const char *dir, const char *backend,
                           const char *precision, int n_threads, GObject *target, TesseraProgressFunc progress,
                           GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data)
{
  Job *job;

  g_return_if_fail (TESSERA_IS_WORKER (self));
  g_return_if_fail (dir != NULL);

  job = job_new (self, JOB_LOAD, target, cancellable, callback, user_data, tessera_worker_load_async);
  job->dir = g_strdup (dir);
  job->backend = g_strdup (backend);
  job->n_threads = n_threads;
  /* an unknown name (a hand-edited setting) means auto */
  if (!precision || ts_precision_parse (precision, &job->precision, NULL) != TS_OK)
    job->precision = TS_PRECISION_AUTO;
  job->progress = progress;
  self->progress_job_id = job->id;
  g_async_queue_push (self->queue, job);
}

TesseraModelInfo *
tessera_worker_load_finish (TesseraWorker *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tessera_worker_load_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
job_set_params (Job *job, const TesseraGenerateParams *params)
{
  job->params = *params;
  job->prompt = g_strdup (params->prompt ? params->prompt : "");
  job->negative_prompt = g_strdup (params->negative_prompt ? params->negative_prompt : "");
  job->params.prompt = job->prompt;
  job->params.negative_prompt = job->negative_prompt;
  job->plan = params->n_steer && params->steer ? g_new0 (ts_image_steer, params->n_steer) : NULL;
  job->n_plan = job->plan ? params->n_steer : 0;
  if (job->plan)
    tessera_steer_records_copy (job->plan, params->steer, job->n_plan);
  job->params.steer = NULL;
  job->params.n_steer = 0;
}

void
tessera_worker_generate_async (TesseraWorker *self, const TesseraGenerateParams *params,
                               GObject *target, TesseraStepFunc step,
                               GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data)
{
  Job *job;

  g_return_if_fail (TESSERA_IS_WORKER (self));
  g_return_if_fail (params != NULL);

  job = job_new (self, JOB_GENERATE, target, cancellable, callback, user_data,
                 tessera_worker_generate_async);
  job_set_params (job, params);
  job->step = step;
  self->progress_job_id = job->id;
  g_async_queue_push (self->queue, job);
}

TesseraResult *
tessera_worker_generate_finish (TesseraWorker *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tessera_worker_generate_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
tessera_worker_inpaint_async (TesseraWorker *self, const TesseraGenerateParams *params,
                              ts_image *image, GBytes *mask, double strength, GObject *target,
                              TesseraStepFunc step, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  Job *job;

  g_return_if_fail (TESSERA_IS_WORKER (self));
  g_return_if_fail (params != NULL);
  g_return_if_fail (image != NULL);
  g_return_if_fail (mask != NULL);
  g_return_if_fail (g_bytes_get_size (mask) == (gsize) image->width * image->height);

  job = job_new (self, JOB_INPAINT, target, cancellable, callback, user_data,
                 tessera_worker_inpaint_async);
  job_set_params (job, params);
  job->image = image;
  job->mask = g_bytes_ref (mask);
  job->strength = strength;
  job->step = step;
  self->progress_job_id = job->id;
  g_async_queue_push (self->queue, job);
}

TesseraResult *
tessera_worker_inpaint_finish (TesseraWorker *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tessera_worker_inpaint_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
tessera_worker_resume_async (TesseraWorker *self, const TesseraGenerateParams *params, const int32_t *tokens,
                             int grid_h, int grid_w, int start_step, double starting_mask_ratio, GObject *target,
                             TesseraStepFunc step, GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data)
{
  Job *job;

  g_return_if_fail (TESSERA_IS_WORKER (self));
  g_return_if_fail (params != NULL);
  g_return_if_fail (tokens != NULL && grid_h > 0 && grid_w > 0);

  job = job_new (self, JOB_RESUME, target, cancellable, callback, user_data, tessera_worker_resume_async);
  job_set_params (job, params);
  job->tokens = g_memdup2 (tokens, (gsize) grid_h * grid_w * sizeof *tokens);
  job->grid_h = grid_h;
  job->grid_w = grid_w;
  job->start_step = start_step;
  job->starting_mask_ratio = (float) starting_mask_ratio;
  job->step = step;
  self->progress_job_id = job->id;
  g_async_queue_push (self->queue, job);
}

TesseraResult *
tessera_worker_resume_finish (TesseraWorker *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tessera_worker_resume_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
tessera_worker_decode_async (TesseraWorker *self, const int32_t *tokens, int grid_h, int grid_w,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data)
{
  Job *job;

  g_return_if_fail (TESSERA_IS_WORKER (self));
  g_return_if_fail (tokens != NULL && grid_h > 0 && grid_w > 0);

  job = job_new (self, JOB_DECODE, NULL, cancellable, callback, user_data, tessera_worker_decode_async);
  job->tokens = g_memdup2 (tokens, (gsize) grid_h * grid_w * sizeof *tokens);
  job->grid_h = grid_h;
  job->grid_w = grid_w;
  g_async_queue_push (self->queue, job);
}

ts_image *
tessera_worker_decode_finish (TesseraWorker *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tessera_worker_decode_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

void
tessera_worker_palette_async (TesseraWorker *self, GObject *target, TesseraPaletteFunc partial,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  Job *job;

  g_return_if_fail (TESSERA_IS_WORKER (self));

  job = job_new (self, JOB_PALETTE, target, cancellable, callback, user_data, tessera_worker_palette_async);
  job->palette_func = partial;
  g_async_queue_push (self->queue, job);
}

GBytes *
tessera_worker_palette_finish (TesseraWorker *self, GAsyncResult *result, double *seconds, GError **error)
{
  double *spent;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tessera_worker_palette_async, NULL);
  spent = g_task_get_task_data (G_TASK (result));
  if (seconds)
    *seconds = spent ? *spent : 0;
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Image to image and outpainting: the other two image jobs, finished with
 * tessera_worker_image_finish. */
static void
queue_image_job (TesseraWorker *self, JobKind kind, const TesseraGenerateParams *params, ts_image *image,
                 const guint32 extend[4], double strength, GObject *target, TesseraStepFunc step,
                 GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  Job *job = job_new (self, kind, target, cancellable, callback, user_data, tessera_worker_image_finish);

  job_set_params (job, params);
  job->image = image;
  job->strength = strength;
  if (extend)
    memcpy (job->extend, extend, sizeof job->extend);
  job->step = step;
  self->progress_job_id = job->id;
  g_async_queue_push (self->queue, job);
}

void
tessera_worker_img2img_async (TesseraWorker *self, const TesseraGenerateParams *params, ts_image *image,
                              double strength, GObject *target, TesseraStepFunc step, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (TESSERA_IS_WORKER (self));
  g_return_if_fail (params != NULL && image != NULL);

  queue_image_job (self, JOB_IMG2IMG, params, image, NULL, strength, target, step, cancellable, callback,
                   user_data);
}

void
tessera_worker_outpaint_async (TesseraWorker *self, const TesseraGenerateParams *params, ts_image *image,
                               const guint32 extend[4], double strength, GObject *target, TesseraStepFunc step,
                               GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (TESSERA_IS_WORKER (self));
  g_return_if_fail (params != NULL && image != NULL && extend != NULL);

  queue_image_job (self, JOB_OUTPAINT, params, image, extend, strength, target, step, cancellable, callback,
                   user_data);
}

TesseraResult *
tessera_worker_image_finish (TesseraWorker *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tessera_worker_image_finish, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
