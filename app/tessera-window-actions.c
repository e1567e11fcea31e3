/* SPDX-License-Identifier: MIT
 *
 * tessera-window-actions.c — TesseraWindow's win.* actions: generate, inpaint-run,
 * cancel and finish-now start and stop engine runs (the run's bookkeeping, the step
 * callback and the completion are in tessera-window.c); open, choose-model and
 * reload-model pick files and models; reroll-seed and inpaint-current act on the generate
 * page; show-page switches pages (Alt+1/2/3) and undo-delete is the gallery delete
 * toast's Undo (Ctrl+Z); preview-mode is the GSettings key as an action.
 * _tessera_window_update_actions enables each action while it can run, and is called
 * whenever the model or run state changes.
 */
#include <glib/gi18n.h>
#include <string.h>

#include "tessera-generate-page.h"
#include "tessera-inpaint-view.h"
#include "tessera-mask-editor.h"
#include "tessera-window-private.h"
#include "tessera-worker.h"

/* ---- runs ---- */

static void
to_worker_params (const TesseraRunParams *p, TesseraGenerateParams *gp)
{
  tessera_generate_params_init (gp);
  gp->prompt = p->form.prompt;
  gp->negative_prompt = p->form.negative_prompt;
  gp->width = p->form.width;
  gp->height = p->form.height;
  gp->steps = p->form.steps;
  gp->guidance = p->form.guidance;
  gp->temperature_start = p->form.temperature_start;
  gp->temperature_end = p->form.temperature_end;
  gp->aesthetic_score = p->form.aesthetic_score;
  gp->seed = p->form.seed;
  gp->finish_at = p->form.finish_at;
  if (p->form.steer)
    {
      gp->steer = (const ts_image_steer *) (void *) p->form.steer->data;
      gp->n_steer = p->form.steer->len;
    }
}

static ts_image *
image_copy (const ts_image *src)
{
  ts_image *copy = ts_image_new (src->width, src->height, NULL);

  if (copy)
    memcpy (copy->pixels, src->pixels, (gsize) src->width * src->height * 3);
  return copy;
}

/* Generate adds the batch count's jobs to the queue, with seeds S, S+1, ... (each the
 * image a single run with that seed makes); the form stays editable for the next. */
static void
generate_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;
  TesseraFormParams form = { 0 };
  guint n;

  (void) action;
  (void) param;
  if (self->model_state != TESSERA_MODEL_READY)
    return;
  tessera_generate_page_read_params (self->generate_page, &form);
  n = tessera_generate_page_get_batch_count (self->generate_page);
  for (guint k = 0; k < n; k++)
    {
      TesseraJob *job = tessera_job_new (++self->next_job_id, TESSERA_JOB_GENERATE, &form);

      job->form.seed = form.seed + k;
      _tessera_window_enqueue (self, job);
    }
  tessera_form_params_clear (&form);
}

static void
inpaint_run_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;
  TesseraMaskEditor *editor = tessera_inpaint_view_get_editor (self->inpaint_view);
  const ts_image *src = tessera_inpaint_view_get_source_image (self->inpaint_view);
  GFile *src_file = tessera_inpaint_view_get_source_file (self->inpaint_view);
  g_autoptr (GBytes) mask = NULL;
  TesseraFormParams form = { 0 };
  TesseraJob *job;
  ts_image *copy;

  (void) action;
  (void) param;
  if (self->model_state != TESSERA_MODEL_READY || !src)
    return;
  mask = tessera_mask_editor_get_mask (editor);
  copy = image_copy (src);
  if (!copy || !mask)
    {
      ts_image_free (copy);
      return;
    }
  /* The inpainting page's own settings, at the source's size. */
  tessera_inpaint_view_read_params (self->inpaint_view, &form);
  form.width = src->width;
  form.height = src->height;
  form.finish_at = 0;
  job = tessera_job_new (++self->next_job_id, TESSERA_JOB_INPAINT, &form);
  tessera_form_params_clear (&form);
  job->strength = tessera_inpaint_view_get_strength (self->inpaint_view);
  job->source = src_file ? g_file_get_basename (src_file) : NULL;
  job->source_hash = tessera_file_sha256 (src_file);
  job->source_file = src_file ? g_object_ref (src_file) : NULL;
  job->image = copy;
  job->mask = g_steal_pointer (&mask);
  g_settings_set_double (self->settings, "inpaint-strength", job->strength);
  _tessera_window_enqueue (self, job);
}

/* Extend Canvas: outpaints the inpainting page's source on a canvas extended by the
 * page's extents, with the page's prompt and settings. */
static void
outpaint_run_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;
  const ts_image *src = tessera_inpaint_view_get_source_image (self->inpaint_view);
  GFile *src_file = tessera_inpaint_view_get_source_file (self->inpaint_view);
  TesseraFormParams form = { 0 };
  TesseraJob *job;
  ts_image *copy;

  (void) action;
  (void) param;
  if (self->model_state != TESSERA_MODEL_READY || !src || !(copy = image_copy (src)))
    return;
  tessera_inpaint_view_read_params (self->inpaint_view, &form);
  job = tessera_job_new (++self->next_job_id, TESSERA_JOB_OUTPAINT, &form);
  tessera_form_params_clear (&form);
  tessera_inpaint_view_get_extend (self->inpaint_view, job->extend);
  /* ts_model_outpaint's size: the new canvas's. */
  job->form.width = src->width + job->extend[0] + job->extend[2];
  job->form.height = src->height + job->extend[1] + job->extend[3];
  job->strength = tessera_inpaint_view_get_strength (self->inpaint_view);
  job->source = src_file ? g_file_get_basename (src_file) : NULL;
  job->source_hash = tessera_file_sha256 (src_file);
  job->image = copy;
  _tessera_window_enqueue (self, job);
}

void
_tessera_window_enqueue (TesseraWindow *self, TesseraJob *job)
{
  g_list_store_append (self->jobs, job);
  g_object_unref (job);
  _tessera_window_update_queue (self);
  _tessera_window_start_next (self);
  _tessera_window_update_actions (self);
}

static TesseraJob *
find_job (TesseraWindow *self, guint id, guint *position)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->jobs));

  for (guint i = 0; i < n; i++)
    {
      g_autoptr (TesseraJob) job = g_list_model_get_item (G_LIST_MODEL (self->jobs), i);

      if (job->id == id)
        {
          if (position)
            *position = i;
          return job; /* the list holds it */
        }
    }
  return NULL;
}

void
_tessera_window_start_next (TesseraWindow *self)
{
  guint n = self->jobs ? g_list_model_get_n_items (G_LIST_MODEL (self->jobs)) : 0;
  TesseraGenerateParams gp;
  TesseraJob *job = NULL;
  ts_image *copy;

  if (!self->worker || self->run != TESSERA_RUN_IDLE || self->model_state != TESSERA_MODEL_READY ||
      self->reload_pending)
    return;
  for (guint i = 0; i < n && !job; i++)
    {
      g_autoptr (TesseraJob) j = g_list_model_get_item (G_LIST_MODEL (self->jobs), i);

      if (j->state == TESSERA_JOB_QUEUED)
        job = j;
    }
  if (!job)
    {
      _tessera_window_update_queue (self);
      return;
    }
  g_set_object (&self->job, job);
  /* The run's parameters, for the step texts and the PNG metadata. */
  tessera_form_params_clear (&self->params.form);
  tessera_form_params_copy (&self->params.form, &job->form);
  g_free (self->params.source);
  self->params.source = g_strdup (job->source);
  g_free (self->params.source_hash);
  self->params.source_hash = g_strdup (job->source_hash);
  self->params.strength = job->strength;
  to_worker_params (&self->params, &gp);
  tessera_job_set_state (job, TESSERA_JOB_RUNNING);
  switch (job->kind)
    {
    case TESSERA_JOB_INPAINT:
      self->params.mode = "inpaint";
      break;
    case TESSERA_JOB_IMG2IMG:
      self->params.mode = "img2img";
      break;
    case TESSERA_JOB_OUTPAINT:
      self->params.mode = "outpaint";
      break;
    case TESSERA_JOB_GENERATE:
      self->params.mode = "txt2img";
      break;
    }
  /* The worker takes its own copy of the source. */
  copy = job->image ? image_copy (job->image) : NULL;
  if (job->image && !copy)
    {
      _tessera_window_job_ended (self, TESSERA_JOB_FAILED, _("Out of memory"));
      return;
    }
  switch (job->kind)
    {
    case TESSERA_JOB_IMG2IMG:
    case TESSERA_JOB_OUTPAINT:
      /* On the generate page's canvas: an outpainting is larger than its source. */
      _tessera_window_begin_run (self, TESSERA_RUN_GENERATE);
      g_clear_object (&self->current_file);
      if (job->kind == TESSERA_JOB_IMG2IMG)
        tessera_worker_img2img_async (self->worker, &gp, copy, job->strength, G_OBJECT (self),
                                      _tessera_window_on_step, self->run_cancellable, _tessera_window_run_done,
                                      g_object_ref (self));
      else
        tessera_worker_outpaint_async (self->worker, &gp, copy, job->extend, job->strength, G_OBJECT (self),
                                       _tessera_window_on_step, self->run_cancellable, _tessera_window_run_done,
                                       g_object_ref (self));
      break;
    case TESSERA_JOB_INPAINT:
      _tessera_window_begin_run (self, TESSERA_RUN_INPAINT);
      tessera_worker_inpaint_async (self->worker, &gp, copy, job->mask, self->params.strength, G_OBJECT (self),
                                    _tessera_window_on_step, self->run_cancellable, _tessera_window_run_done,
                                    g_object_ref (self));
      break;
    case TESSERA_JOB_GENERATE:
      _tessera_window_begin_run (self, TESSERA_RUN_GENERATE);
      g_clear_object (&self->current_file);
      _tessera_window_show_blank_grid (self, self->params.form.width, self->params.form.height,
                                       self->params.form.steps);
      tessera_worker_generate_async (self->worker, &gp, G_OBJECT (self), _tessera_window_on_step,
                                     self->run_cancellable, _tessera_window_run_done, g_object_ref (self));
      break;
    }
  _tessera_window_update_queue (self);
}

/* ---- variations: img2img of a gallery image, with new seeds ---- */

typedef struct {
  GFile *file;
  ts_image *image;
  TesseraImageMeta *meta;
  char *hash;
} SourceImage;

static void
source_image_free (SourceImage *src)
{
  g_clear_object (&src->file);
  ts_image_free (src->image);
  tessera_image_meta_free (src->meta);
  g_free (src->hash);
  g_free (src);
}

/* The image, its metadata and the sha256 of its bytes (the PNG's source hash). */
static void
source_image_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GFile *file = task_data;
  g_autofree char *path = g_file_get_path (file);
  g_autofree char *bytes = NULL;
  g_autofree char *digest = NULL;
  gsize length = 0;
  GError *error = NULL;
  ts_image_meta meta;
  ts_error err;
  SourceImage *src;

  (void) source;
  if (!path || !g_file_load_contents (file, cancellable, &bytes, &length, NULL, &error))
    {
      if (!error)
        error = g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, _("Only local files can be opened"));
      g_task_return_error (task, error);
      return;
    }
  src = g_new0 (SourceImage, 1);
  src->file = g_object_ref (file);
  ts_image_meta_init (&meta);
  src->image = ts_image_load_png (path, &meta, &err);
  if (!src->image)
    {
      source_image_free (src);
      tessera_engine_error_from_ts (&err, &error);
      g_task_return_error (task, error);
      return;
    }
  src->meta = tessera_image_meta_dup (&meta);
  ts_image_meta_clear (&meta);
  digest = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) bytes, length);
  src->hash = g_strconcat ("sha256:", digest, NULL);
  g_task_return_pointer (task, src, (GDestroyNotify) source_image_free);
}

static void
source_image_load_async (TesseraWindow *self, GFile *file, GAsyncReadyCallback callback)
{
  g_autoptr (GTask) task = g_task_new (self, NULL, callback, NULL);

  g_task_set_task_data (task, g_object_ref (file), g_object_unref);
  g_task_run_in_thread (task, source_image_thread);
}

/* The settings an image was made with, where it records them, else the Generate page's
 * saved ones; the seed is new. */
static void
form_from_meta (TesseraWindow *self, const ts_image_meta *m, TesseraFormParams *form)
{
  memset (form, 0, sizeof *form);
  form->prompt = g_strdup (m->prompt ? m->prompt : "");
  form->negative_prompt = m->negative_prompt ? g_strdup (m->negative_prompt)
                                             : g_settings_get_string (self->settings, "negative-prompt");
  form->steps = m->steps > 0 ? (int) m->steps : g_settings_get_int (self->settings, "steps");
  form->guidance = m->cfg >= 0 ? m->cfg : g_settings_get_double (self->settings, "guidance");
  form->temperature_start =
    m->temperature_start >= 0 ? m->temperature_start : g_settings_get_double (self->settings, "temperature-start");
  form->temperature_end =
    m->temperature_end >= 0 ? m->temperature_end : g_settings_get_double (self->settings, "temperature-end");
  form->aesthetic_score =
    m->aesthetic_score >= 0 ? m->aesthetic_score : g_settings_get_double (self->settings, "aesthetic-score");
  form->seed = ((guint64) g_random_int () << 32) | g_random_int ();
}

static void
on_variations_response (AdwMessageDialog *dialog, const char *response, gpointer user_data)
{
  TesseraWindow *self = user_data;
  SourceImage *src = g_object_get_data (G_OBJECT (dialog), "tessera-source");
  GtkAdjustment *strength = g_object_get_data (G_OBJECT (dialog), "tessera-strength");
  GtkSpinButton *count = g_object_get_data (G_OBJECT (dialog), "tessera-count");
  TesseraFormParams form;
  guint n;

  if (self->variations_dialog == dialog)
    self->variations_dialog = NULL;
  if (g_strcmp0 (response, "queue") != 0 || !src)
    return;
  n = (guint) gtk_spin_button_get_value_as_int (count);
  form_from_meta (self, src->meta, &form);
  form.width = src->image->width;
  form.height = src->image->height;
  self->variation_strength = gtk_adjustment_get_value (strength);
  for (guint k = 0; k < n; k++)
    {
      TesseraJob *job = tessera_job_new (++self->next_job_id, TESSERA_JOB_IMG2IMG, &form);
      ts_image *copy = image_copy (src->image);

      if (!copy)
        {
          g_object_unref (job);
          break;
        }
      job->form.seed = form.seed + k;
      job->strength = self->variation_strength;
      job->image = copy;
      job->source = g_file_get_basename (src->file);
      job->source_hash = g_strdup (src->hash);
      _tessera_window_enqueue (self, job);
    }
  tessera_form_params_clear (&form);
}

static GtkWidget *
row_with (const char *title, const char *subtitle, GtkWidget *suffix)
{
  GtkWidget *row = adw_action_row_new ();

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  if (subtitle)
    adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
  gtk_widget_set_valign (suffix, GTK_ALIGN_CENTER);
  adw_action_row_add_suffix (ADW_ACTION_ROW (row), suffix);
  return row;
}

static void
variations_loaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  TesseraWindow *self = TESSERA_WINDOW (source);
  g_autoptr (GError) error = NULL;
  SourceImage *src = g_task_propagate_pointer (G_TASK (result), &error);
  g_autofree char *base = NULL;
  g_autofree char *body = NULL;
  AdwMessageDialog *dialog;
  GtkAdjustment *strength;
  GtkWidget *scale, *count, *list;

  (void) user_data;
  if (!src)
    {
      g_warning ("variations: %s", error->message);
      return;
    }
  base = g_file_get_basename (src->file);
  /* Translators: the Variations dialog's text; %s is the image's file name */
  body = g_strdup_printf (_("New images from “%s” and its prompt, each with a new seed. They are queued."), base);
  dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (GTK_WINDOW (self), _("Variations"), body));
  strength = gtk_adjustment_new (self->variation_strength, 0.05, 1.0, 0.05, 0.1, 0);
  scale = gtk_scale_new (GTK_ORIENTATION_HORIZONTAL, strength);
  gtk_scale_set_digits (GTK_SCALE (scale), 2);
  gtk_scale_set_draw_value (GTK_SCALE (scale), TRUE);
  gtk_scale_set_value_pos (GTK_SCALE (scale), GTK_POS_RIGHT);
  gtk_widget_set_size_request (scale, 160, -1);
  count = gtk_spin_button_new_with_range (1, 16, 1);
  gtk_spin_button_set_value (GTK_SPIN_BUTTON (count), 4);
  list = gtk_list_box_new ();
  gtk_list_box_set_selection_mode (GTK_LIST_BOX (list), GTK_SELECTION_NONE);
  gtk_widget_add_css_class (list, "boxed-list");
  gtk_list_box_append (GTK_LIST_BOX (list),
                       row_with (_("Strength"), _("How much may change: lower keeps more of the image"), scale));
  gtk_list_box_append (GTK_LIST_BOX (list), row_with (_("Images"), NULL, count));
  adw_message_dialog_set_extra_child (dialog, list);
  adw_message_dialog_add_responses (dialog, "cancel", _("_Cancel"), "queue", _("_Queue Variations"), NULL);
  adw_message_dialog_set_response_appearance (dialog, "queue", ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (dialog, "queue");
  adw_message_dialog_set_close_response (dialog, "cancel");
  g_object_set_data_full (G_OBJECT (dialog), "tessera-source", src, (GDestroyNotify) source_image_free);
  g_object_set_data (G_OBJECT (dialog), "tessera-strength", strength);
  g_object_set_data (G_OBJECT (dialog), "tessera-count", count);
  g_signal_connect_object (dialog, "response", G_CALLBACK (on_variations_response), self, 0);
  self->variations_dialog = dialog;
  gtk_window_present (GTK_WINDOW (dialog));
}

void
_tessera_window_variations (TesseraWindow *self, GFile *file)
{
  g_return_if_fail (TESSERA_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (file));

  source_image_load_async (self, file, variations_loaded);
}

/* A queue row's Cancel: a waiting job is marked cancelled (it stays listed until removed),
 * the running one stops as win.cancel stops it. */
static void
queue_cancel_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;
  TesseraJob *job = find_job (self, g_variant_get_uint32 (param), NULL);

  (void) action;
  if (!job)
    return;
  if (job == self->job && !self->finishing)
    {
      /* As win.cancel, which is off while the gallery's viewer shows. */
      g_cancellable_cancel (self->run_cancellable);
      _tessera_window_set_progress (self, tessera_generate_page_get_progress (self->generate_page), _("Stopping…"));
      _tessera_window_update_actions (self);
    }
  else if (job->state == TESSERA_JOB_QUEUED)
    tessera_job_set_state (job, TESSERA_JOB_CANCELLED);
  _tessera_window_update_queue (self);
}

static void
queue_remove_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;
  guint position;
  TesseraJob *job = find_job (self, g_variant_get_uint32 (param), &position);

  (void) action;
  if (!job || job == self->job)
    return;
  g_list_store_remove (self->jobs, position);
  _tessera_window_update_queue (self);
}

/* Moves a waiting job before the waiting job ahead of it. */
static void
queue_up_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;
  guint position;
  TesseraJob *job = find_job (self, g_variant_get_uint32 (param), &position);

  (void) action;
  if (!job || job->state != TESSERA_JOB_QUEUED)
    return;
  for (guint i = position; i-- > 0;)
    {
      g_autoptr (TesseraJob) ahead = g_list_model_get_item (G_LIST_MODEL (self->jobs), i);

      if (ahead->state == TESSERA_JOB_QUEUED)
        {
          g_object_ref (job);
          g_list_store_remove (self->jobs, position);
          g_list_store_insert (self->jobs, i, job);
          g_object_unref (job);
          return;
        }
    }
}

static void
queue_clear_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;

  (void) action;
  (void) param;
  for (guint i = g_list_model_get_n_items (G_LIST_MODEL (self->jobs)); i-- > 0;)
    {
      g_autoptr (TesseraJob) job = g_list_model_get_item (G_LIST_MODEL (self->jobs), i);

      if (!tessera_job_is_pending (job))
        g_list_store_remove (self->jobs, i);
    }
  _tessera_window_update_queue (self);
}

static void
cancel_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;

  (void) action;
  (void) param;
  if (self->run != TESSERA_RUN_IDLE && !self->finishing)
    {
      g_cancellable_cancel (self->run_cancellable);
      _tessera_window_set_progress (self, tessera_generate_page_get_progress (self->generate_page), _("Stopping…"));
      _tessera_window_update_actions (self);
    }
}

/* "Finish now" through the public API: the last step's `predicted` grid has a prediction
 * at every position, so take the revealed tokens as they are and the prediction for every
 * still-masked one, cancel the run (it stops within one transformer block) and VQ-decode
 * that combined grid with ts_model_decode. The decode job queues behind the cancelled run
 * on the engine thread. */
static void
finish_now_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;
  g_autofree int32_t *grid = NULL;
  gsize n;

  (void) action;
  (void) param;
  if (self->run != TESSERA_RUN_GENERATE || self->finishing || !self->last_step)
    return;
  n = (gsize) self->last_step->grid_w * self->last_step->grid_h;
  grid = g_new (int32_t, n);
  for (gsize i = 0; i < n; i++)
    grid[i] = self->last_step->tokens[i] == self->last_step->mask_token_id ? self->last_step->predicted[i]
                                                                           : self->last_step->tokens[i];
  self->finishing = TRUE;
  /* Recorded in the image, so that reusing it finishes at the same step (ts_generate_params's
   * finish_at does what this does, inside the run). */
  self->params.form.finish_at =
    self->last_step->step + 1 < self->last_step->n_steps ? (guint) self->last_step->step + 1 : 0;
  g_cancellable_cancel (self->run_cancellable);
  memcpy (self->last_step->tokens, grid, n * sizeof *grid);
  self->last_step->n_masked = 0;
  _tessera_window_render_step (self, self->last_step);
  _tessera_window_set_progress (self, 1.0, _("Finishing: decoding every token…"));
  tessera_worker_decode_async (self->worker, grid, self->last_step->grid_h, self->last_step->grid_w, NULL,
                               _tessera_window_finish_decode_done, g_object_ref (self));
  _tessera_window_update_actions (self);
}

static void
reroll_seed_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;

  (void) action;
  (void) param;
  tessera_generate_page_reroll_seed (self->generate_page);
}

static void
inpaint_current_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;

  (void) action;
  (void) param;
  if (self->current_file)
    _tessera_window_inpaint_file (self, self->current_file);
}

/* Alt+1/2/3: the view stack's page by name (generate, gallery, inpaint). */
static void
show_page_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;
  const char *name = g_variant_get_string (param, NULL);

  (void) action;
  if (adw_view_stack_get_child_by_name (self->view_stack, name))
    adw_view_stack_set_visible_child_name (self->view_stack, name);
}

/* Ctrl+Z while the gallery's delete toast shows. */
static void
undo_delete_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;

  (void) action;
  (void) param;
  if (tessera_gallery_can_undo_delete (self->gallery))
    tessera_gallery_undo_delete (self->gallery);
}

/* ---- files and models ---- */

static void
open_response (GtkNativeDialog *dialog, int response, gpointer user_data)
{
  TesseraWindow *self = user_data;

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));

      if (g_strcmp0 (adw_view_stack_get_visible_child_name (self->view_stack), "inpaint") == 0)
        _tessera_window_inpaint_file (self, file);
      else
        tessera_window_open_file (self, file);
    }
  g_clear_object (&self->chooser);
}

static void
show_chooser (TesseraWindow *self, GtkFileChooserNative *chooser, GCallback response)
{
  if (self->chooser)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);
  self->chooser = chooser;
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  g_signal_connect (chooser, "response", response, self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
}

static void
open_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;
  GtkFileChooserNative *chooser;
  g_autoptr (GtkFileFilter) filter = gtk_file_filter_new ();
  /* The folder from the settings, which the gallery shows. */
  GFile *folder = tessera_gallery_get_folder (self->gallery);

  (void) action;
  (void) param;
  chooser = gtk_file_chooser_native_new (_("Open Image"), GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_OPEN,
                                         _("_Open"), NULL);
  gtk_file_filter_set_name (filter, _("PNG images"));
  gtk_file_filter_add_mime_type (filter, "image/png");
  gtk_file_filter_add_suffix (filter, "png");
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (chooser), filter);
  gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (chooser), folder, NULL);
  show_chooser (self, chooser, G_CALLBACK (open_response));
}

static void
model_folder_response (GtkNativeDialog *dialog, int response, gpointer user_data)
{
  TesseraWindow *self = user_data;

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr (GFile) folder = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (folder);
      g_autofree char *old = g_settings_get_string (self->settings, "model-folder");

      if (path && g_strcmp0 (path, old) == 0)
        _tessera_window_load_model (self);
      else if (path)
        g_settings_set_string (self->settings, "model-folder", path);
    }
  g_clear_object (&self->chooser);
}

static void
choose_model_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;
  GtkFileChooserNative *chooser;

  (void) action;
  (void) param;
  chooser = gtk_file_chooser_native_new (_("Choose the Meissonic Folder"), GTK_WINDOW (self),
                                         GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Select"), NULL);
  show_chooser (self, chooser, G_CALLBACK (model_folder_response));
}

static void
reload_model_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  (void) action;
  (void) param;
  _tessera_window_load_model (TESSERA_WINDOW (user_data));
}

/* ---- setup and state ---- */

static const GActionEntry win_entries[] = {
  { .name = "generate", .activate = generate_activated },
  { .name = "cancel", .activate = cancel_activated },
  { .name = "finish-now", .activate = finish_now_activated },
  { .name = "pause", .activate = _tessera_window_pause_activated },
  { .name = "open", .activate = open_activated },
  { .name = "choose-model", .activate = choose_model_activated },
  { .name = "reload-model", .activate = reload_model_activated },
  { .name = "reroll-seed", .activate = reroll_seed_activated },
  { .name = "inpaint-current", .activate = inpaint_current_activated },
  { .name = "inpaint-run", .activate = inpaint_run_activated },
  { .name = "outpaint-run", .activate = outpaint_run_activated },
  { .name = "show-page", .activate = show_page_activated, .parameter_type = "s" },
  { .name = "undo-delete", .activate = undo_delete_activated },
  { .name = "queue-cancel", .activate = queue_cancel_activated, .parameter_type = "u" },
  { .name = "queue-remove", .activate = queue_remove_activated, .parameter_type = "u" },
  { .name = "queue-up", .activate = queue_up_activated, .parameter_type = "u" },
  { .name = "queue-clear", .activate = queue_clear_activated },
};

void
_tessera_window_add_actions (TesseraWindow *self)
{
  g_autoptr (GAction) preview_mode = NULL;

  g_action_map_add_action_entries (G_ACTION_MAP (self), win_entries, G_N_ELEMENTS (win_entries), self);
  preview_mode = g_settings_create_action (self->settings, "preview-mode");
  g_action_map_add_action (G_ACTION_MAP (self), preview_mode);
}

static void
set_enabled (TesseraWindow *self, const char *name, gboolean enabled)
{
  GAction *action = g_action_map_lookup_action (G_ACTION_MAP (self), name);

  g_simple_action_set_enabled (G_SIMPLE_ACTION (action), enabled);
}

void
_tessera_window_update_actions (TesseraWindow *self)
{
  gboolean ready = self->model_state == TESSERA_MODEL_READY;
  gboolean idle = self->run == TESSERA_RUN_IDLE;
  TesseraMaskEditor *editor = tessera_inpaint_view_get_editor (self->inpaint_view);

  /* Generate adds to the queue, so it stays enabled during a run. */
  set_enabled (self, "generate", ready);
  /* Escape (win.cancel's key, taken before any widget sees it) closes the gallery's
   * viewer rather than stopping a run behind it. */
  set_enabled (self, "cancel", !idle && !self->finishing && !tessera_gallery_get_viewer (self->gallery));
  set_enabled (self, "finish-now", self->run == TESSERA_RUN_GENERATE && !self->finishing && self->last_step != NULL);
  set_enabled (self, "pause", _tessera_window_steer_can_pause (self));
  set_enabled (self, "open", idle);
  set_enabled (self, "choose-model", idle);
  set_enabled (self, "reload-model", idle);
  /* The form stays editable during runs, the seed with it. */
  set_enabled (self, "reroll-seed", TRUE);
  set_enabled (self, "inpaint-current", idle && self->current_file != NULL);
  set_enabled (self, "undo-delete", tessera_gallery_can_undo_delete (self->gallery));
  _tessera_window_tokens_update_actions (self);
  {
    guint32 e[4];

    tessera_inpaint_view_get_extend (self->inpaint_view, e);
    set_enabled (self, "outpaint-run",
                 ready && tessera_inpaint_view_get_source_image (self->inpaint_view) && e[0] + e[1] + e[2] + e[3] > 0);
  }
  set_enabled (self, "inpaint-run", ready && tessera_inpaint_view_get_source_image (self->inpaint_view) &&
                                      tessera_mask_editor_count_cells (editor) > 0);
}
