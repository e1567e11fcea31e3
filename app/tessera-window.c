/* SPDX-License-Identifier: MIT
 *
 * tessera-window.c — the main window. It drives every engine job through its
 * TesseraWorker: loading the model named in GSettings, generating, inpainting and the
 * "Finish now" decode. Step callbacks arrive on the main thread (the worker posts them)
 * and turn into a preview texture on the generate page (TesseraGeneratePage) or the
 * inpainting page; finished images go to the gallery, which writes them off the main
 * thread. Cancellation is a GCancellable per run; a cancelled run is silent and keeps its
 * partial preview on screen. The win.* actions that start and stop runs are in
 * tessera-window-actions.c.
 */
#include "tessera-window.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "tessera-gallery.h"
#include "tessera-generate-page.h"
#include "tessera-inpaint-view.h"
#include "tessera-model-picker.h"
#include "tessera-preview.h"
#include "tessera-window-private.h"
#include "tessera-worker.h"

G_DEFINE_FINAL_TYPE (TesseraWindow, tessera_window, ADW_TYPE_APPLICATION_WINDOW)

static void tessera_window_constructed (GObject *object);

/* ---- helpers ---- */

static void
run_params_clear (TesseraRunParams *p)
{
  tessera_form_params_clear (&p->form);
  g_clear_pointer (&p->source, g_free);
  g_clear_pointer (&p->source_hash, g_free);
}

static void
step_copy_free (TesseraStep *step)
{
  if (!step)
    return;
  g_free (step->tokens);
  g_free (step->predicted);
  g_free (step->confidence);
  g_free (step->probability);
  g_free (step);
}

static TesseraStep *
step_copy (const TesseraStep *step)
{
  TesseraStep *copy = g_memdup2 (step, sizeof *step);
  gsize n = (gsize) step->grid_h * step->grid_w;

  copy->tokens = g_memdup2 (step->tokens, n * sizeof *step->tokens);
  copy->predicted = g_memdup2 (step->predicted, n * sizeof *step->predicted);
  copy->confidence = g_memdup2 (step->confidence, n * sizeof *step->confidence);
  copy->probability = step->probability ? g_memdup2 (step->probability, n * sizeof *step->probability) : NULL;
  return copy;
}

/* The toasts shown and not yet finalized, held weakly: libadwaita owns them. */
static void
on_toast_finalized (gpointer data, GObject *where_the_object_was)
{
  TesseraWindow *self = data;

  g_ptr_array_remove (self->toasts, where_the_object_was);
}

/* Takes t. */
static void
show_toast (TesseraWindow *self, AdwToast *t)
{
  g_free (self->last_toast);
  self->last_toast = g_strdup (adw_toast_get_title (t));
  g_ptr_array_add (self->toasts, t);
  g_object_weak_ref (G_OBJECT (t), on_toast_finalized, self);
  adw_toast_overlay_add_toast (self->toast_overlay, t);
}

static void
toast (TesseraWindow *self, const char *message)
{
  show_toast (self, adw_toast_new (message));
}

void
_tessera_window_toast (TesseraWindow *self, const char *message)
{
  toast (self, message);
}

static void
toast_error (TesseraWindow *self, const char *what, const GError *error)
{
  g_autofree char *msg = g_strdup_printf ("%s: %s", what, error->message);

  toast (self, msg);
}

/* What the text encoder sees as no prompt at all (CLIP drops outer whitespace). */
static gboolean
prompt_is_empty (const char *prompt)
{
  for (; prompt && *prompt; prompt = g_utf8_next_char (prompt))
    if (!g_unichar_isspace (g_utf8_get_char (prompt)))
      return FALSE;
  return TRUE;
}

static GFile *
gallery_folder (TesseraWindow *self)
{
  g_autofree char *configured = g_settings_get_string (self->settings, "gallery-folder");
  const char *pictures;

  if (configured[0])
    return g_file_new_for_path (configured);
  pictures = g_get_user_special_dir (G_USER_DIRECTORY_PICTURES);
  if (pictures)
    return g_file_new_build_filename (pictures, "Tessera", NULL);
  return g_file_new_build_filename (g_get_home_dir (), "Pictures", "Tessera", NULL);
}

static char *
format_duration (double seconds)
{
  int s = (int) lround (seconds);

  if (s >= 3600)
    return g_strdup_printf ("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  return g_strdup_printf ("%d:%02d", s / 60, s % 60);
}

/* Fills the form from an image's parameters (values it does not record stay as they are)
 * and says so: done is the toast when every value was taken as recorded; otherwise the
 * toast names each value that changed. */
static void
apply_meta (TesseraWindow *self, const ts_image_meta *m, const char *done)
{
  g_autofree char *changes = tessera_generate_page_apply_meta (self->generate_page, m);
  g_autofree char *msg = NULL;

  if (!changes)
    {
      toast (self, done);
      return;
    }
  /* Translators: the values that did not fit the form, e.g. "steps 300 → 200, guidance 40 → 30" */
  msg = g_strdup_printf (_("Restored with changes: %s"), changes);
  toast (self, msg);
}

/* ---- model state ---- */

static void
set_model_state (TesseraWindow *self, TesseraModelState state)
{
  GtkWidget *focus;

  self->model_state = state;
  tessera_generate_page_set_model_state (self->generate_page, state);
  _tessera_window_update_actions (self);
  if (state == TESSERA_MODEL_READY)
    _tessera_window_start_next (self);
  /* The prompt only shows once a model is ready; until then the first focusable widget
   * is the header's Open button, where a space would open the file chooser. Move the
   * focus to the prompt, on the generate page, unless the user put it in another text
   * field meanwhile. */
  focus = gtk_root_get_focus (GTK_ROOT (self));
  if (state == TESSERA_MODEL_READY && !GTK_IS_TEXT (focus) && !GTK_IS_TEXT_VIEW (focus) &&
      g_strcmp0 (adw_view_stack_get_visible_child_name (self->view_stack), "generate") == 0)
    tessera_generate_page_focus_prompt (self->generate_page);
}

static void
on_load_progress (GObject *target, double fraction, const char *what)
{
  TesseraWindow *self = TESSERA_WINDOW (target);
  g_autofree char *text = g_strdup_printf (_("Loading %s… %d %%"), what ? what : "", (int) (fraction * 100));

  tessera_generate_page_set_load_progress (self->generate_page, fraction, text);
}

static void
on_palette_partial (GObject *target, GBytes *palette, double fraction)
{
  TesseraWindow *self = TESSERA_WINDOW (target);

  if (self->palette_fraction >= 1.0)
    return;
  g_clear_pointer (&self->palette, g_bytes_unref);
  self->palette = g_bytes_ref (palette);
  self->palette_fraction = MIN (fraction, 0.999);
}

static void
palette_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (TesseraWindow) self = user_data;
  g_autoptr (GError) error = NULL;
  double seconds = 0;
  GBytes *palette = tessera_worker_palette_finish (TESSERA_WORKER (source), result, &seconds, &error);

  if (!palette)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_warning ("the preview colours could not be computed: %s", error->message);
      return;
    }
  g_clear_pointer (&self->palette, g_bytes_unref);
  self->palette = palette;
  self->palette_fraction = 1.0;
  self->palette_seconds = seconds;
  g_debug ("preview colours ready (%.2f s of decoding)", seconds);
}

static void
load_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (TesseraWindow) self = user_data;
  g_autoptr (GError) error = NULL;
  TesseraModelInfo *info = tessera_worker_load_finish (TESSERA_WORKER (source), result, &error);

  if (!info)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      tessera_generate_page_set_error (self->generate_page, error->message);
      set_model_state (self, TESSERA_MODEL_ERROR);
      return;
    }
  g_clear_pointer (&self->model_info, tessera_model_info_unref);
  self->model_info = info;
  /* The sizes, and the model's own guidance unless the user set one. */
  tessera_generate_page_set_model_info (self->generate_page, info);
  /* The colour table follows the load on the engine thread, in chunks that yield to
   * generations; the load's cancellable also stops it. */
  tessera_worker_palette_async (self->worker, G_OBJECT (self), on_palette_partial, self->load_cancellable,
                                palette_done, g_object_ref (self));
  g_debug ("model %s ready on %s: %u sizes, %d codes", info->name, info->backend, info->sizes->len,
           info->codebook_size);
  set_model_state (self, TESSERA_MODEL_READY);
}

void
_tessera_window_load_model (TesseraWindow *self)
{
  g_autofree char *dir = g_settings_get_string (self->settings, "model-folder");
  g_autofree char *backend = g_settings_get_string (self->settings, "backend");
  g_autofree char *precision = NULL;
  g_autofree char *description = NULL;

  g_cancellable_cancel (self->load_cancellable);
  g_clear_object (&self->load_cancellable);
  g_clear_pointer (&self->model_info, tessera_model_info_unref);
  tessera_generate_page_set_model_info (self->generate_page, NULL);
  g_clear_pointer (&self->palette, g_bytes_unref);
  self->palette = g_bytes_new (NULL, 0);
  self->palette_fraction = 0;
  self->palette_seconds = 0;
  if (self->run != TESSERA_RUN_IDLE)
    g_cancellable_cancel (self->run_cancellable);
  if (!dir[0])
    {
      /* Nothing chosen: the bundled demo model, when it is installed. */
      const char *demo = ts_default_model_dir ();

      if (!demo)
        {
          set_model_state (self, TESSERA_MODEL_EMPTY);
          return;
        }
      g_free (dir);
      dir = g_strdup (demo);
    }
  self->load_cancellable = g_cancellable_new ();
  description = g_filename_display_name (dir);
  tessera_generate_page_set_loading (self->generate_page, description);
  set_model_state (self, TESSERA_MODEL_LOADING);
  precision = g_settings_get_string (self->settings, "precision");
  tessera_worker_load_async (self->worker, dir, backend, precision,
                             g_settings_get_int (self->settings, "threads"),
                             G_OBJECT (self), on_load_progress, self->load_cancellable, load_done,
                             g_object_ref (self));
}

/* Preferences never stop a run: a new model folder, device or thread count waits for the
 * image being made, and says so. */
static void
on_model_settings_changed (TesseraWindow *self)
{
  if (self->run != TESSERA_RUN_IDLE)
    {
      if (!self->reload_pending)
        toast (self, _("The new model settings apply once this image is done"));
      self->reload_pending = TRUE;
      return;
    }
  _tessera_window_load_model (self);
}

static gboolean
reload_after_run (gpointer data)
{
  TesseraWindow *self = data;

  if (self->run == TESSERA_RUN_IDLE && self->reload_pending)
    {
      self->reload_pending = FALSE;
      _tessera_window_load_model (self);
    }
  return G_SOURCE_REMOVE;
}

static void
on_gallery_folder_changed (TesseraWindow *self)
{
  g_autoptr (GFile) folder = gallery_folder (self);

  tessera_gallery_set_folder (self->gallery, folder);
}

/* ---- the preview ---- */

void
_tessera_window_render_step (TesseraWindow *self, const TesseraStep *step)
{
  g_autofree char *mode_nick = g_settings_get_string (self->settings, "preview-mode");
  gint64 t0 = g_get_monotonic_time ();
  g_autoptr (GdkTexture) texture = NULL;
  double ms;

  if (!self->model_info)
    return;
  texture = tessera_preview_render (step, tessera_preview_mode_from_string (mode_nick), self->palette);
  ms = (g_get_monotonic_time () - t0) / 1000.0;
  self->preview_ms_sum += ms;
  self->preview_ms_max = MAX (self->preview_ms_max, ms);
  self->preview_count++;
  g_debug ("preview: step %d/%d %dx%d tokens (%s) built in %.3f ms", step->step + 1, step->n_steps,
           step->grid_w, step->grid_h, mode_nick, ms);
  if (self->run == TESSERA_RUN_INPAINT)
    tessera_inpaint_view_set_preview (self->inpaint_view, GDK_PAINTABLE (texture));
  else
    tessera_generate_page_set_preview (self->generate_page, GDK_PAINTABLE (texture));
}

void
_tessera_window_set_progress (TesseraWindow *self, double fraction, const char *text)
{
  if (self->run == TESSERA_RUN_INPAINT)
    tessera_inpaint_view_set_progress (self->inpaint_view, fraction, text);
  else
    tessera_generate_page_set_progress (self->generate_page, fraction, text);
}

void
_tessera_window_on_step (GObject *target, const TesseraStep *step)
{
  TesseraWindow *self = TESSERA_WINDOW (target);
  int total = step->grid_h * step->grid_w;
  int revealed = total - step->n_masked;
  int done = step->step + 1;
  double per_step, ips;
  g_autofree char *eta = NULL;
  g_autofree char *text = NULL;

  /* After "Finish now" the grid on screen is final; a step that was already posted when
   * the run was cancelled must not replace it. */
  if (self->run == TESSERA_RUN_IDLE || self->finishing)
    return;
  step_copy_free (self->last_step);
  self->last_step = step_copy (step);
  self->n_step_updates++;
  _tessera_window_tokens_track_step (self, step);
  self->step_seconds += step->seconds;
  self->n_step_seconds++;
  _tessera_window_render_step (self, step);

  per_step = self->step_seconds / MAX (1, self->n_step_seconds);
  ips = per_step > 0 ? 1.0 / per_step : 0;
  eta = format_duration (per_step * (step->n_steps - done));
  /* Translators: tokens revealed / total · step k / N · iterations per second · time left */
  text = g_strdup_printf (_("%d / %d tokens · step %d / %d · %.1f it/s · %s left"), revealed, total, done,
                          step->n_steps, ips, eta);
  if (self->palette_fraction < 1.0)
    {
      g_autofree char *with_palette = NULL;

      /* Translators: the status line, then how much of the preview's colour table is ready */
      with_palette = g_strdup_printf (_("%s · preview colours %d %%"), text, (int) (self->palette_fraction * 100));
      g_free (text);
      text = g_steal_pointer (&with_palette);
    }
  _tessera_window_set_progress (self, (double) done / step->n_steps, text);
  if (self->job)
    tessera_job_set_progress (self->job, (double) done / step->n_steps, text);
  _tessera_window_update_queue (self);
  _tessera_window_update_actions (self);
}

static void
on_preview_mode_changed (TesseraWindow *self)
{
  if (self->last_step && (self->run != TESSERA_RUN_IDLE ||
                          tessera_generate_page_get_preview (self->generate_page) == NULL ||
                          self->current_file == NULL))
    _tessera_window_render_step (self, self->last_step);
}

void
_tessera_window_show_blank_grid (TesseraWindow *self, guint width, guint height, int steps)
{
  TesseraStep step = { 0 };
  guint f = self->model_info->vae_scale_factor;
  gsize n;

  if (!f || !width || !height)
    return;
  step.grid_w = (int) (width / f);
  step.grid_h = (int) (height / f);
  step.n_steps = steps;
  step.step = -1;
  n = (gsize) step.grid_w * step.grid_h;
  step.mask_token_id = self->model_info->mask_token_id;
  step.n_masked = (int) n;
  step.tokens = g_new (int32_t, n);
  step.predicted = g_new0 (int32_t, n);
  step.confidence = g_new0 (float, n);
  for (gsize i = 0; i < n; i++)
    step.tokens[i] = step.mask_token_id;
  _tessera_window_render_step (self, &step);
  g_free (step.tokens);
  g_free (step.predicted);
  g_free (step.confidence);
}

/* ---- saving ---- */

typedef struct {
  TesseraWindow *self; /* a reference */
  TesseraRunKind kind;
  ts_image *inpaint_source; /* inpainting: the result, the next source */
} SaveClosure;

static void
on_toast_show_in_gallery (AdwToast *t, gpointer user_data)
{
  TesseraWindow *self = user_data;
  GFile *file = g_object_get_data (G_OBJECT (t), "tessera-file");

  adw_view_stack_set_visible_child_name (self->view_stack, "gallery");
  tessera_gallery_select_file (self->gallery, file);
}

static void
save_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  SaveClosure *c = user_data;
  g_autoptr (TesseraWindow) self = c->self;
  g_autoptr (ts_image) inpaint_source = c->inpaint_source;
  TesseraRunKind kind = c->kind;
  g_autoptr (GError) error = NULL;
  g_autoptr (GFile) file = tessera_gallery_save_finish (TESSERA_GALLERY (source), result, &error);
  g_autofree char *base = NULL;
  g_autofree char *title = NULL;
  AdwToast *t;

  g_free (c);
  if (!file)
    {
      toast_error (self, _("The image could not be saved"), error);
      return;
    }
  g_set_object (&self->last_saved, file);
  self->n_saved++;
  if (kind == TESSERA_RUN_INPAINT)
    {
      if (inpaint_source)
        tessera_inpaint_view_replace_source (self->inpaint_view, file, g_steal_pointer (&inpaint_source));
    }
  else
    g_set_object (&self->current_file, file);
  base = g_file_get_basename (file);
  title = g_strdup_printf (_("Saved “%s”"), base);
  t = adw_toast_new (title);
  adw_toast_set_button_label (t, _("_Show"));
  g_object_set_data_full (G_OBJECT (t), "tessera-file", g_object_ref (file), g_object_unref);
  g_signal_connect_object (t, "button-clicked", G_CALLBACK (on_toast_show_in_gallery), self, 0);
  show_toast (self, t);
  _tessera_window_update_actions (self);
}

static gboolean
inpaint_source_is (TesseraWindow *self, const char *name, const ts_image *image)
{
  GFile *file = tessera_inpaint_view_get_source_file (self->inpaint_view);
  const ts_image *shown = tessera_inpaint_view_get_source_image (self->inpaint_view);
  g_autofree char *base = file ? g_file_get_basename (file) : NULL;

  return shown && shown->width == image->width && shown->height == image->height && g_strcmp0 (base, name) == 0;
}

/* Takes image; result (nullable) lends its trajectory; extend: an outpainting's border
 * (else zeros). */
static void
save_to_gallery (TesseraWindow *self, ts_image *image, const TesseraResult *result, TesseraRunKind kind,
                 const guint32 extend[4])
{
  SaveClosure *c = g_new0 (SaveClosure, 1);
  const TesseraRunParams *p = &self->params;
  ts_image_meta meta;

  c->self = g_object_ref (self);
  c->kind = kind;
  if (kind == TESSERA_RUN_INPAINT && inpaint_source_is (self, p->source, image))
    {
      /* The result becomes the inpainting page's source once it is saved, unless the page
       * moved on to another image while the job waited. */
      ts_error err;

      c->inpaint_source = ts_image_new (image->width, image->height, &err);
      if (c->inpaint_source)
        memcpy (c->inpaint_source->pixels, image->pixels, (gsize) image->width * image->height * 3);
    }
  /* Borrowed strings: the gallery copies the metadata. */
  ts_image_meta_init (&meta);
  meta.prompt = p->form.prompt;
  meta.negative_prompt = p->form.negative_prompt;
  meta.model = self->model_info ? self->model_info->name : NULL;
  meta.backend = self->model_info ? self->model_info->backend : NULL;
  meta.precision = self->model_info ? self->model_info->precision : NULL;
  meta.sampler = (char *) "MaskGIT";
  meta.source = p->source;
  meta.seed = p->form.seed;
  meta.steps = (uint32_t) p->form.steps;
  meta.finish_at = p->form.finish_at;
  meta.width = image->width;
  meta.height = image->height;
  meta.cfg = p->form.guidance;
  meta.temperature_start = p->form.temperature_start;
  meta.temperature_end = p->form.temperature_end;
  meta.aesthetic_score = p->form.aesthetic_score;
  meta.strength = p->strength;
  meta.mode = (char *) p->mode;
  meta.source_hash = p->source_hash;
  meta.extend_left = extend[0];
  meta.extend_top = extend[1];
  meta.extend_right = extend[2];
  meta.extend_bottom = extend[3];
  /* The trajectory, and a branch's or refine's own fields (mode, from step, remask). */
  _tessera_window_meta_set_trajectory (&meta, result);
  _tessera_window_tokens_fill_meta (self, &meta);
  _tessera_window_steer_fill_meta (self, &meta);
  tessera_gallery_save_async (self->gallery, image, &meta,
                              g_strcmp0 (meta.mode, "txt2img") == 0 || !meta.mode ? NULL : meta.mode, NULL,
                              save_done, c);
}

/* ---- runs ---- */

void
_tessera_window_begin_run (TesseraWindow *self, TesseraRunKind kind)
{
  self->run = kind;
  self->finishing = FALSE;
  self->run_cancellable = g_cancellable_new ();
  _tessera_window_tokens_begin_run (self);
  _tessera_window_steer_begin_run (self);
  step_copy_free (self->last_step);
  self->last_step = NULL;
  self->step_seconds = 0;
  self->n_step_seconds = 0;
  self->n_step_updates = 0;
  if (kind == TESSERA_RUN_GENERATE)
    tessera_generate_page_set_running (self->generate_page, TRUE);
  else
    tessera_inpaint_view_set_running (self->inpaint_view, TRUE);
  if (kind == TESSERA_RUN_GENERATE && prompt_is_empty (self->params.form.prompt))
    _tessera_window_set_progress (self, 0, _("No prompt: drawing an unconditional image…"));
  else
    _tessera_window_set_progress (self, 0, _("Encoding the prompt…"));
  _tessera_window_update_actions (self);
}

static void
end_run (TesseraWindow *self)
{
  TesseraRunKind kind = self->run;

  self->run = TESSERA_RUN_IDLE;
  self->finishing = FALSE;
  _tessera_window_steer_end_run (self);
  g_clear_object (&self->run_cancellable);
  /* After the result is saved with the model it was made with. */
  if (self->reload_pending)
    g_idle_add_full (G_PRIORITY_DEFAULT_IDLE, reload_after_run, g_object_ref (self), g_object_unref);
  tessera_generate_page_set_running (self->generate_page, FALSE);
  if (kind == TESSERA_RUN_INPAINT)
    tessera_inpaint_view_set_running (self->inpaint_view, FALSE);
  _tessera_window_update_actions (self);
}

static void
finish_result (TesseraWindow *self, TesseraResult *result, TesseraRunKind kind)
{
  g_autoptr (GdkTexture) texture = tessera_texture_from_image (result->image);
  g_autofree char *took = format_duration (result->seconds);
  g_autofree char *text = NULL;

  if (result->prompt_truncated)
    toast (self, _("The prompt was longer than 77 tokens; the end was left out"));
  if (self->params.form.finish_at)
    /* Translators: a run that "Finish Now" (or the form's finish-at step) ended early */
    text = g_strdup_printf (_("Finished at step %u of %d in %s · %d × %d tokens"), self->params.form.finish_at,
                            self->params.form.steps, took, result->grid_w, result->grid_h);
  else
    text = g_strdup_printf (_("Done in %s · %d × %d tokens"), took, result->grid_w, result->grid_h);
  if (kind == TESSERA_RUN_GENERATE && prompt_is_empty (self->params.form.prompt))
    {
      g_autofree char *unconditional = NULL;

      /* Translators: the status line of a run without a prompt */
      unconditional = g_strdup_printf (_("%s · no prompt: an unconditional image"), text);
      g_free (text);
      text = g_steal_pointer (&unconditional);
    }
  if (kind == TESSERA_RUN_INPAINT)
    {
      tessera_inpaint_view_set_preview (self->inpaint_view, GDK_PAINTABLE (texture));
      tessera_inpaint_view_set_progress (self->inpaint_view, 1.0, text);
    }
  else
    {
      tessera_generate_page_set_preview (self->generate_page, GDK_PAINTABLE (texture));
      tessera_generate_page_set_progress (self->generate_page, 1.0, text);
    }
  if (kind == TESSERA_RUN_GENERATE)
    _tessera_window_tokens_show_result (self, result);
  save_to_gallery (self, g_steal_pointer (&result->image), result, kind, result->extend);
  _tessera_window_tokens_end_run (self);
  tessera_result_free (self->last_result);
  self->last_result = result;
  _tessera_window_job_ended (self, TESSERA_JOB_DONE, text);
}

void
_tessera_window_run_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (TesseraWindow) self = user_data;
  g_autoptr (GError) error = NULL;
  TesseraRunKind kind = self->run;
  TesseraResult *result;

  if (g_task_get_source_tag (G_TASK (res)) == tessera_worker_inpaint_async)
    result = tessera_worker_inpaint_finish (TESSERA_WORKER (source), res, &error);
  else if (g_task_get_source_tag (G_TASK (res)) == tessera_worker_resume_async)
    {
      result = tessera_worker_resume_finish (TESSERA_WORKER (source), res, &error);
      if (result)
        _tessera_window_tokens_patch_result (self, result);
    }
  else if (g_task_get_source_tag (G_TASK (res)) == tessera_worker_image_finish)
    result = tessera_worker_image_finish (TESSERA_WORKER (source), res, &error);
  else
    result = tessera_worker_generate_finish (TESSERA_WORKER (source), res, &error);

  if (!result)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          /* "Finish now" has its decode queued behind this job; it ends the run. */
          if (self->finishing)
            return;
          if (self->last_step)
            {
              g_autofree char *text = g_strdup_printf (_("Cancelled at step %d / %d"), self->last_step->step + 1,
                                                       self->last_step->n_steps);
              _tessera_window_set_progress (self, (double) (self->last_step->step + 1) / self->last_step->n_steps,
                                            text);
            }
          else
            _tessera_window_set_progress (self, 0, _("Cancelled"));
          end_run (self);
          _tessera_window_job_ended (self, TESSERA_JOB_CANCELLED, NULL);
        }
      else
        {
          toast_error (self, kind == TESSERA_RUN_INPAINT ? _("Inpainting failed") : _("Generation failed"), error);
          _tessera_window_set_progress (self, 0, error->message);
          end_run (self);
          _tessera_window_job_ended (self, TESSERA_JOB_FAILED, error->message);
        }
      return;
    }
  end_run (self);
  finish_result (self, result, kind);
}

void
_tessera_window_finish_decode_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (TesseraWindow) self = user_data;
  g_autoptr (GError) error = NULL;
  ts_image *image = tessera_worker_decode_finish (TESSERA_WORKER (source), res, &error);
  TesseraResult *result;

  if (!image)
    {
      toast_error (self, _("Finishing failed"), error);
      end_run (self);
      _tessera_window_job_ended (self, TESSERA_JOB_FAILED, error->message);
      return;
    }
  result = g_new0 (TesseraResult, 1);
  result->image = image;
  result->grid_w = self->last_step->grid_w;
  result->grid_h = self->last_step->grid_h;
  result->tokens = g_memdup2 (self->last_step->tokens, (gsize) result->grid_w * result->grid_h * sizeof (int32_t));
  result->seconds = self->step_seconds;
  _tessera_window_tokens_finish_trajectory (self, result);
  end_run (self);
  finish_result (self, result, TESSERA_RUN_GENERATE);
}

/* ---- the queue ---- */

void
_tessera_window_update_queue (TesseraWindow *self)
{
  guint n = self->jobs ? g_list_model_get_n_items (G_LIST_MODEL (self->jobs)) : 0;
  guint pending = 0;
  double fraction;
  g_autofree char *label = NULL;
  g_autofree char *tooltip = NULL;

  /* A run's callback can arrive after dispose took the template's widgets. */
  if (!self->queue_button)
    return;
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (TesseraJob) job = g_list_model_get_item (G_LIST_MODEL (self->jobs), i);

      pending += tessera_job_is_pending (job);
    }
  if (!pending)
    self->n_jobs_finished = 0;
  fraction = (self->n_jobs_finished + (self->job ? self->job->fraction : 0)) / MAX (1, self->n_jobs_finished + pending);
  gtk_widget_set_visible (GTK_WIDGET (self->queue_button), n > 0);
  gtk_widget_set_visible (GTK_WIDGET (self->queue_progress), pending > 0);
  gtk_progress_bar_set_fraction (self->queue_progress, fraction);
  label = pending ? g_strdup_printf ("%u", pending) : g_strdup ("");
  gtk_label_set_label (self->queue_label, label);
  /* Translators: the queue button's tooltip; %u is how many jobs wait or run */
  tooltip = pending ? g_strdup_printf (ngettext ("Queue: %u image to make", "Queue: %u images to make", pending),
                                       pending)
                    : g_strdup (_("Queue"));
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->queue_button), tooltip);
}

static gboolean
start_next_idle (gpointer data)
{
  _tessera_window_start_next (data);
  return G_SOURCE_REMOVE;
}

void
_tessera_window_job_ended (TesseraWindow *self, TesseraJobState state, const char *status)
{
  g_autoptr (TesseraJob) job = g_steal_pointer (&self->job);

  if (job)
    {
      if (status)
        tessera_job_set_progress (job, job->fraction, status);
      tessera_job_set_state (job, state);
      self->n_jobs_finished++;
    }
  _tessera_window_update_queue (self);
  /* From the main loop, after the caller is done with the run's state. */
  g_idle_add_full (G_PRIORITY_DEFAULT, start_next_idle, g_object_ref (self), g_object_unref);
}

/* ---- opening images ---- */

typedef struct {
  ts_image *image;
  TesseraImageMeta *meta;
} Loaded;

static void
loaded_free (Loaded *l)
{
  ts_image_free (l->image);
  tessera_image_meta_free (l->meta);
  g_free (l);
}

static void
open_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GFile *file = task_data;
  g_autofree char *path = g_file_get_path (file);
  ts_image_meta meta;
  ts_error err;
  Loaded *l;
  GError *error = NULL;

  (void) source;
  (void) cancellable;
  if (!path)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, _("Only local files can be opened"));
      return;
    }
  ts_image_meta_init (&meta);
  l = g_new0 (Loaded, 1);
  l->image = ts_image_load_png (path, &meta, &err);
  if (!l->image)
    {
      loaded_free (l);
      tessera_engine_error_from_ts (&err, &error);
      g_task_return_error (task, error);
      return;
    }
  if ((meta.prompt && meta.prompt[0]) || meta.steps > 0)
    l->meta = tessera_image_meta_dup (&meta);
  ts_image_meta_clear (&meta);
  g_task_return_pointer (task, l, (GDestroyNotify) loaded_free);
}

static void
load_png_async (TesseraWindow *self, GFile *file, GAsyncReadyCallback cb)
{
  g_autoptr (GTask) task = g_task_new (self, NULL, cb, NULL);

  g_task_set_source_tag (task, load_png_async);
  g_task_set_task_data (task, g_object_ref (file), g_object_unref);
  g_task_run_in_thread (task, open_thread);
}

static void
open_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  TesseraWindow *self = TESSERA_WINDOW (source);
  GFile *file = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;
  Loaded *l = g_task_propagate_pointer (G_TASK (result), &error);
  g_autofree char *base = g_file_get_basename (file);
  g_autofree char *msg = NULL;
  g_autoptr (GdkTexture) texture = NULL;

  (void) user_data;
  if (!l)
    {
      msg = g_strdup_printf (_("Cannot open “%s”"), base);
      toast_error (self, msg, error);
      return;
    }
  if (l->meta)
    {
      msg = g_strdup_printf (_("Parameters from “%s” restored"), base);
      apply_meta (self, l->meta, msg);
    }
  else
    {
      msg = g_strdup_printf (_("“%s” carries no generation parameters"), base);
      toast (self, msg);
    }
  if (self->run == TESSERA_RUN_IDLE)
    {
      texture = tessera_texture_from_image (l->image);
      tessera_generate_page_set_preview (self->generate_page, GDK_PAINTABLE (texture));
      tessera_generate_page_set_progress (self->generate_page, 0, base);
      g_set_object (&self->current_file, file);
      _tessera_window_tokens_show_image (self, l->image, l->meta);
    }
  self->n_opened++;
  adw_view_stack_set_visible_child_name (self->view_stack, "generate");
  loaded_free (l);
  _tessera_window_update_actions (self);
}

void
tessera_window_open_file (TesseraWindow *self, GFile *file)
{
  g_return_if_fail (TESSERA_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (file));

  load_png_async (self, file, open_done);
}

static void
inpaint_load_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  TesseraWindow *self = TESSERA_WINDOW (source);
  GFile *file = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;
  Loaded *l = g_task_propagate_pointer (G_TASK (result), &error);
  g_autofree char *base = g_file_get_basename (file);
  guint cell = self->model_info ? self->model_info->vae_scale_factor : 16;

  (void) user_data;
  if (!l)
    {
      g_autofree char *msg = g_strdup_printf (_("Cannot open “%s”"), base);
      toast_error (self, msg, error);
      return;
    }
  {
    /* The page's settings start as the Generate page's defaults; the image's metadata
     * then overrides what it records. */
    g_autofree char *negative = g_settings_get_string (self->settings, "negative-prompt");
    TesseraFormParams defaults = {
      .negative_prompt = negative,
      .steps = g_settings_get_int (self->settings, "steps"),
      .guidance = g_settings_get_double (self->settings, "guidance"),
      .temperature_start = g_settings_get_double (self->settings, "temperature-start"),
      .temperature_end = g_settings_get_double (self->settings, "temperature-end"),
      .aesthetic_score = g_settings_get_double (self->settings, "aesthetic-score"),
      .seed = ((guint64) g_random_int () << 32) | g_random_int (),
    };

    tessera_inpaint_view_set_params (self->inpaint_view, &defaults);
    tessera_inpaint_view_set_extend_step (self->inpaint_view, self->model_info ? self->model_info->size_step : 0);
  }
  tessera_inpaint_view_set_source (self->inpaint_view, file, g_steal_pointer (&l->image), l->meta, cell);
  tessera_inpaint_view_set_strength (self->inpaint_view, g_settings_get_double (self->settings, "inpaint-strength"));
  adw_view_stack_set_visible_child_name (self->view_stack, "inpaint");
  loaded_free (l);
  _tessera_window_update_actions (self);
}

void
_tessera_window_inpaint_file (TesseraWindow *self, GFile *file)
{
  g_return_if_fail (TESSERA_IS_WINDOW (self));
  g_return_if_fail (G_IS_FILE (file));

  if (self->run == TESSERA_RUN_INPAINT)
    return;
  load_png_async (self, file, inpaint_load_done);
}

static gboolean
on_drop (GtkDropTarget *target, const GValue *value, double x, double y, gpointer user_data)
{
  TesseraWindow *self = user_data;
  GFile *file = NULL;

  (void) target;
  (void) x;
  (void) y;
  if (G_VALUE_HOLDS (value, GDK_TYPE_FILE_LIST))
    {
      GSList *files = g_value_get_boxed (value);
      file = files ? files->data : NULL;
    }
  else if (G_VALUE_HOLDS (value, G_TYPE_FILE))
    file = g_value_get_object (value);
  if (!file)
    return FALSE;
  if (g_strcmp0 (adw_view_stack_get_visible_child_name (self->view_stack), "inpaint") == 0)
    _tessera_window_inpaint_file (self, file);
  else
    tessera_window_open_file (self, file);
  return TRUE;
}

static void
on_gallery_reuse (TesseraWindow *self, const TesseraImageMeta *meta)
{
  apply_meta (self, meta, _("Parameters copied to the form"));
  adw_view_stack_set_visible_child_name (self->view_stack, "generate");
}

static void
on_gallery_inpaint (TesseraWindow *self, GFile *file)
{
  _tessera_window_inpaint_file (self, file);
}

static void
on_gallery_variations (TesseraWindow *self, GFile *file)
{
  _tessera_window_variations (self, file);
}

/* ---- GObject ---- */

static void
on_close_response (AdwMessageDialog *dialog, const char *response, gpointer user_data)
{
  TesseraWindow *self = user_data;

  (void) dialog;
  self->close_dialog = NULL;
  if (g_strcmp0 (response, "close") == 0)
    {
      self->close_confirmed = TRUE;
      gtk_window_close (GTK_WINDOW (self));
    }
}

static gboolean
tessera_window_close_request (GtkWindow *window)
{
  TesseraWindow *self = TESSERA_WINDOW (window);
  int w, h;

  guint n_jobs = g_list_model_get_n_items (G_LIST_MODEL (self->jobs));
  guint n_waiting = 0;

  for (guint i = 0; i < n_jobs; i++)
    {
      g_autoptr (TesseraJob) job = g_list_model_get_item (G_LIST_MODEL (self->jobs), i);

      n_waiting += job->state == TESSERA_JOB_QUEUED;
    }
  /* Closing mid-run loses the image being made, and the queue: ask first. */
  if ((self->run != TESSERA_RUN_IDLE || n_waiting > 0) && !self->close_confirmed)
    {
      AdwMessageDialog *dialog;
      g_autofree char *body = NULL;

      if (self->close_dialog)
        return TRUE;
      if (n_waiting == 0)
        body = g_strdup (_("The image being made is lost."));
      else if (self->run != TESSERA_RUN_IDLE)
        /* Translators: closing with a run and %u queued jobs */
        body = g_strdup_printf (ngettext ("The image being made and %u queued image are lost.",
                                          "The image being made and %u queued images are lost.", n_waiting),
                                n_waiting);
      else
        body = g_strdup_printf (ngettext ("%u queued image is lost.", "%u queued images are lost.", n_waiting),
                                n_waiting);
      dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (window, _("Stop and Close?"), body));
      adw_message_dialog_add_responses (dialog, "cancel", _("_Keep Going"), "close", _("_Stop and Close"), NULL);
      adw_message_dialog_set_response_appearance (dialog, "close", ADW_RESPONSE_DESTRUCTIVE);
      adw_message_dialog_set_default_response (dialog, "cancel");
      adw_message_dialog_set_close_response (dialog, "cancel");
      g_signal_connect_object (dialog, "response", G_CALLBACK (on_close_response), self, 0);
      self->close_dialog = dialog;
      gtk_window_present (GTK_WINDOW (dialog));
      return TRUE;
    }

  tessera_generate_page_save_prompts (self->generate_page);
  gtk_window_get_default_size (window, &w, &h);
  g_settings_set_int (self->settings, "window-width", w);
  g_settings_set_int (self->settings, "window-height", h);
  g_settings_set_boolean (self->settings, "window-maximized", gtk_window_is_maximized (window));
  return GTK_WINDOW_CLASS (tessera_window_parent_class)->close_request (window);
}

static void
tessera_window_dispose (GObject *object)
{
  TesseraWindow *self = TESSERA_WINDOW (object);

  g_cancellable_cancel (self->run_cancellable);
  g_cancellable_cancel (self->load_cancellable);
  _tessera_window_tokens_end_run (self);
  g_clear_pointer (&self->steer, g_array_unref);
  if (self->chooser)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);
  /* libadwaita 1.2 criticals when the view stack goes before its switchers let go. */
  if (self->switcher_bar)
    adw_view_switcher_bar_set_stack (self->switcher_bar, NULL);
  g_clear_handle_id (&self->narrow_idle, g_source_remove);
  if (self->switcher_title)
    adw_view_switcher_title_set_stack (self->switcher_title, NULL);
  if (self->view_stack)
    {
      GtkWidget *child;

      while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->view_stack))))
        adw_view_stack_remove (self->view_stack, child);
    }
  if (self->toasts)
    {
      for (guint i = 0; i < self->toasts->len; i++)
        g_object_weak_unref (self->toasts->pdata[i], on_toast_finalized, self);
      g_ptr_array_set_size (self->toasts, 0);
    }
  gtk_widget_dispose_template (GTK_WIDGET (self), TESSERA_TYPE_WINDOW);
  g_clear_pointer (&self->toasts, g_ptr_array_unref);
  g_clear_object (&self->worker);
  g_clear_object (&self->job);
  g_clear_object (&self->run_cancellable);
  g_clear_object (&self->load_cancellable);
  g_clear_object (&self->settings);
  g_clear_object (&self->current_file);
  g_clear_object (&self->last_saved);
  g_clear_pointer (&self->model_info, tessera_model_info_unref);
  g_clear_pointer (&self->palette, g_bytes_unref);
  g_clear_pointer (&self->last_step, step_copy_free);
  g_clear_pointer (&self->last_result, tessera_result_free);
  G_OBJECT_CLASS (tessera_window_parent_class)->dispose (object);
}

static void
tessera_window_finalize (GObject *object)
{
  TesseraWindow *self = TESSERA_WINDOW (object);

  run_params_clear (&self->params);
  g_clear_object (&self->jobs);
  g_free (self->last_toast);
  G_OBJECT_CLASS (tessera_window_parent_class)->finalize (object);
}

enum {
  PROP_0,
  PROP_SETTINGS,
};

static void
tessera_window_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  TesseraWindow *self = TESSERA_WINDOW (object);

  switch (prop_id)
    {
    case PROP_SETTINGS:
      g_set_object (&self->settings, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tessera_window_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  TesseraWindow *self = TESSERA_WINDOW (object);

  switch (prop_id)
    {
    case PROP_SETTINGS:
      g_value_set_object (value, self->settings);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tessera_window_class_init (TesseraWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->constructed = tessera_window_constructed;
  object_class->set_property = tessera_window_set_property;
  object_class->get_property = tessera_window_get_property;
  object_class->dispose = tessera_window_dispose;
  object_class->finalize = tessera_window_finalize;
  window_class->close_request = tessera_window_close_request;

  /* The settings the window reads and writes; NULL (the default) means the app's schema
   * on the default backend. Tests pass one on their own backend. */
  g_object_class_install_property (object_class, PROP_SETTINGS,
                                   g_param_spec_object ("settings", NULL, NULL, G_TYPE_SETTINGS,
                                                        G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                                                          G_PARAM_STATIC_STRINGS));

  g_type_ensure (TESSERA_TYPE_GENERATE_PAGE);
  g_type_ensure (TESSERA_TYPE_GALLERY);
  g_type_ensure (TESSERA_TYPE_INPAINT_VIEW);
  g_type_ensure (TESSERA_TYPE_MODEL_PICKER);
  g_type_ensure (TESSERA_TYPE_QUEUE_POPOVER);
  gtk_widget_class_set_template_from_resource (widget_class, APP_RESOURCE_PATH "/tessera-window.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, TesseraWindow, name)
  BIND (toast_overlay);
  BIND (view_stack);
  BIND (switcher_title);
  BIND (model_picker);
  BIND (switcher_bar);
  BIND (generate_page);
  BIND (gallery);
  BIND (inpaint_view);
  BIND (queue_button);
  BIND (queue_label);
  BIND (queue_popover);
  BIND (queue_progress);
#undef BIND
}

static void
tessera_window_init (TesseraWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->jobs = g_list_store_new (TESSERA_TYPE_JOB);
  self->variation_strength = 0.6;
  tessera_queue_popover_set_jobs (self->queue_popover, G_LIST_MODEL (self->jobs));
#ifdef DEVELOPMENT_BUILD
  gtk_widget_add_css_class (GTK_WIDGET (self), "devel");
#endif
}

static gboolean
apply_narrow (gpointer data)
{
  TesseraWindow *self = data;

  self->narrow_idle = 0;
  gtk_widget_set_visible (self->model_picker, !adw_view_switcher_title_get_title_visible (self->switcher_title));
  return G_SOURCE_REMOVE;
}

/* title-visible changes while the header is being allocated: change the header after. */
static void
narrow_changed (TesseraWindow *self)
{
  if (!self->narrow_idle)
    self->narrow_idle = g_idle_add (apply_narrow, self);
}

/* Everything that reads GSettings waits for the construct-only "settings" property. */
static void
tessera_window_constructed (GObject *object)
{
  TesseraWindow *self = TESSERA_WINDOW (object);
  GtkDropTarget *drop;
  GType drop_types[] = { GDK_TYPE_FILE_LIST, G_TYPE_FILE };
  g_autoptr (GFile) folder = NULL;

  G_OBJECT_CLASS (tessera_window_parent_class)->constructed (object);
  if (!self->settings)
    self->settings = g_settings_new ("io.github.tessera.Tessera");
  self->toasts = g_ptr_array_new ();
  self->worker = tessera_worker_new ();

  _tessera_window_add_actions (self);
  _tessera_window_tokens_init (self);
  _tessera_window_steer_init (self);
  /* A narrow window (the switcher has moved to the bottom) has no room in the header for
   * the model picker as well as the queue: the status area under Generate names the
   * model there. */
  g_signal_connect_object (self->switcher_title, "notify::title-visible",
                           G_CALLBACK (narrow_changed), self, G_CONNECT_SWAPPED);
  apply_narrow (self);

  gtk_window_set_default_size (GTK_WINDOW (self), g_settings_get_int (self->settings, "window-width"),
                               g_settings_get_int (self->settings, "window-height"));
  if (g_settings_get_boolean (self->settings, "window-maximized"))
    gtk_window_maximize (GTK_WINDOW (self));

  tessera_generate_page_set_settings (self->generate_page, self->settings);

  g_signal_connect_object (self->settings, "changed::model-folder", G_CALLBACK (on_model_settings_changed), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->settings, "changed::backend", G_CALLBACK (on_model_settings_changed), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->settings, "changed::precision", G_CALLBACK (on_model_settings_changed), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->settings, "changed::threads", G_CALLBACK (on_model_settings_changed), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->settings, "changed::gallery-folder", G_CALLBACK (on_gallery_folder_changed), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->settings, "changed::preview-mode", G_CALLBACK (on_preview_mode_changed), self,
                           G_CONNECT_SWAPPED);

  g_signal_connect_object (self->gallery, "reuse-parameters", G_CALLBACK (on_gallery_reuse), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->gallery, "inpaint", G_CALLBACK (on_gallery_inpaint), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->gallery, "variations", G_CALLBACK (on_gallery_variations), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->gallery, "notify::can-undo-delete", G_CALLBACK (_tessera_window_update_actions),
                           self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->gallery, "notify::viewing", G_CALLBACK (_tessera_window_update_actions), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->inpaint_view, "changed", G_CALLBACK (_tessera_window_update_actions), self,
                           G_CONNECT_SWAPPED);

  drop = gtk_drop_target_new (G_TYPE_INVALID, GDK_ACTION_COPY);
  gtk_drop_target_set_gtypes (drop, drop_types, G_N_ELEMENTS (drop_types));
  g_signal_connect (drop, "drop", G_CALLBACK (on_drop), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drop));

  folder = gallery_folder (self);
  tessera_gallery_set_folder (self->gallery, folder);
  _tessera_window_update_actions (self);
  _tessera_window_load_model (self);
}

TesseraWindow *
tessera_window_new (AdwApplication *application)
{
  return g_object_new (TESSERA_TYPE_WINDOW, "application", application, NULL);
}

GSettings *
tessera_window_get_settings (TesseraWindow *self)
{
  g_return_val_if_fail (TESSERA_IS_WINDOW (self), NULL);
  return self->settings;
}

/* ---- private API for the tests ---- */

const char *
_tessera_window_get_model_state (TesseraWindow *self)
{
  static const char *const names[] = { "empty", "loading", "error", "ready" };

  return names[tessera_generate_page_get_model_state (self->generate_page)];
}

gboolean
_tessera_window_is_running (TesseraWindow *self)
{
  return self->run != TESSERA_RUN_IDLE;
}

void
_tessera_window_set_prompt (TesseraWindow *self, const char *prompt)
{
  tessera_generate_page_set_prompt (self->generate_page, prompt);
}

char *
_tessera_window_dup_prompt (TesseraWindow *self)
{
  return tessera_generate_page_dup_prompt (self->generate_page);
}

gboolean
_tessera_window_select_size (TesseraWindow *self, guint width, guint height)
{
  return tessera_generate_page_select_size (self->generate_page, width, height);
}

guint
_tessera_window_get_n_step_updates (TesseraWindow *self)
{
  return self->n_step_updates;
}

GdkPaintable *
_tessera_window_get_canvas_paintable (TesseraWindow *self)
{
  return tessera_generate_page_get_preview (self->generate_page);
}

GFile *
_tessera_window_get_last_saved (TesseraWindow *self)
{
  return self->last_saved;
}

guint
_tessera_window_get_n_saved (TesseraWindow *self)
{
  return self->n_saved;
}

const TesseraResult *
_tessera_window_get_last_result (TesseraWindow *self)
{
  return self->last_result;
}

double
_tessera_window_get_preview_ms (TesseraWindow *self, double *max_ms, guint *count)
{
  if (max_ms)
    *max_ms = self->preview_ms_max;
  if (count)
    *count = self->preview_count;
  return self->preview_count ? self->preview_ms_sum / self->preview_count : 0;
}

const char *
_tessera_window_get_status_text (TesseraWindow *self)
{
  return tessera_generate_page_get_status (self->generate_page);
}

const char *
_tessera_window_get_error_text (TesseraWindow *self)
{
  return tessera_generate_page_get_error (self->generate_page);
}

TesseraGeneratePage *
_tessera_window_get_generate_page (TesseraWindow *self)
{
  return self->generate_page;
}

TesseraGallery *
_tessera_window_get_gallery (TesseraWindow *self)
{
  return self->gallery;
}

TesseraInpaintView *
_tessera_window_get_inpaint_view (TesseraWindow *self)
{
  return self->inpaint_view;
}

TesseraModelInfo *
_tessera_window_get_model_info (TesseraWindow *self)
{
  return self->model_info;
}

guint
_tessera_window_get_n_opened (TesseraWindow *self)
{
  return self->n_opened;
}

const char *
_tessera_window_get_last_toast (TesseraWindow *self)
{
  return self->last_toast;
}

AdwMessageDialog *
_tessera_window_get_close_dialog (TesseraWindow *self)
{
  return self->close_dialog;
}

gboolean
_tessera_window_get_reload_pending (TesseraWindow *self)
{
  return self->reload_pending;
}

guint
_tessera_window_get_n_toasts (TesseraWindow *self)
{
  return self->toasts->len;
}

double
_tessera_window_get_palette (TesseraWindow *self, GBytes **palette, double *seconds)
{
  if (palette)
    *palette = self->palette;
  if (seconds)
    *seconds = self->palette_seconds;
  return self->palette_fraction;
}

void
_tessera_window_get_selected_size (TesseraWindow *self, guint *width, guint *height)
{
  tessera_generate_page_get_size (self->generate_page, width, height);
}

GListModel *
_tessera_window_get_jobs (TesseraWindow *self)
{
  return G_LIST_MODEL (self->jobs);
}

TesseraQueuePopover *
_tessera_window_get_queue_popover (TesseraWindow *self)
{
  return self->queue_popover;
}

GtkMenuButton *
_tessera_window_get_queue_button (TesseraWindow *self)
{
  return self->queue_button;
}

GtkProgressBar *
_tessera_window_get_queue_progress (TesseraWindow *self)
{
  return self->queue_progress;
}

AdwMessageDialog *
_tessera_window_get_variations_dialog (TesseraWindow *self)
{
  return self->variations_dialog;
}
