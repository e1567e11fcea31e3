/* SPDX-License-Identifier: MIT
 *
 * tessera-window-tokens.c — the window's token-native editing: the trajectory in saved
 * images, the step scrubber under the canvas (for the last result and for opened images
 * that carry a trajectory), and its two runs, win.branch-from-step and win.refine-tokens,
 * which continue the image with ts_model_resume through the worker (as tessera-cli branch
 * and refine do).
 */
#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "tessera-scrubber.h"
#include "tessera-webp.h"
#include "tessera-window-private.h"

/* What a branch or refine run records in the result's metadata. */
struct _TesseraTokenRun
{
  const char *mode; /* "branch" or "refine" (static) */
  guint from_step;
  double remask;
  double starting_mask_ratio;
  char *source_hash;
  /* branch: the source's trajectory, for the tokens the branch kept */
  int n;
  int32_t *kept; /* the resume state: mask id where drawn */
  int32_t mask_token_id;
  guint16 *reveal_step;
  float *reveal_prob;
};

void
_tessera_window_token_run_free (TesseraTokenRun *run)
{
  if (!run)
    return;
  g_free (run->source_hash);
  g_free (run->kept);
  g_free (run->reveal_step);
  g_free (run->reveal_prob);
  g_free (run);
}

void
_tessera_window_meta_set_trajectory (ts_image_meta *meta, const TesseraResult *result)
{
  if (!result || !result->reveal_step || !result->reveal_prob || !result->tokens)
    return;
  meta->traj_grid_h = (uint32_t) result->grid_h;
  meta->traj_grid_w = (uint32_t) result->grid_w;
  meta->traj_codes = result->tokens;
  meta->traj_reveal_step = result->reveal_step;
  meta->traj_confidence = result->reveal_prob;
}

void
_tessera_window_tokens_fill_meta (TesseraWindow *self, ts_image_meta *meta)
{
  TesseraTokenRun *run = self->token_run;

  if (!run)
    return;
  meta->mode = (char *) run->mode;
  meta->source_hash = run->source_hash;
  meta->starting_mask_ratio = run->starting_mask_ratio;
  if (g_strcmp0 (run->mode, "branch") == 0)
    meta->from_step = run->from_step;
  else
    meta->remask = run->remask;
}

void
_tessera_window_tokens_patch_result (TesseraWindow *self, TesseraResult *result)
{
  TesseraTokenRun *run = self->token_run;

  /* A branch keeps the history of the tokens it kept, as tessera-cli branch does. */
  if (!run || g_strcmp0 (run->mode, "branch") != 0 || !result->reveal_step || !run->reveal_step ||
      result->grid_h * result->grid_w != run->n)
    return;
  for (int i = 0; i < run->n; i++)
    if (run->kept[i] != run->mask_token_id)
      {
        result->reveal_step[i] = run->reveal_step[i];
        result->reveal_prob[i] = run->reveal_prob[i];
      }
}

static void
show (TesseraWindow *self, const ts_image *image, const ts_image_meta *meta)
{
  tessera_scrubber_set_palette (self->scrubber, self->palette);
  tessera_scrubber_set_image (self->scrubber, image, meta, self->model_info ? self->model_info->mask_token_id : -1);
  _tessera_window_update_actions (self);
}

void
_tessera_window_tokens_show_image (TesseraWindow *self, const ts_image *image, const ts_image_meta *meta)
{
  show (self, image, meta);
}

void
_tessera_window_tokens_show_result (TesseraWindow *self, const TesseraResult *result)
{
  ts_image_meta meta;

  ts_image_meta_init (&meta);
  meta.prompt = self->params.form.prompt;
  meta.negative_prompt = self->params.form.negative_prompt;
  meta.seed = self->params.form.seed;
  meta.steps = (uint32_t) self->params.form.steps;
  meta.cfg = self->params.form.guidance;
  meta.temperature_start = self->params.form.temperature_start;
  meta.temperature_end = self->params.form.temperature_end;
  meta.aesthetic_score = self->params.form.aesthetic_score;
  _tessera_window_meta_set_trajectory (&meta, result);
  show (self, result->image, &meta);
}

void
_tessera_window_tokens_end_run (TesseraWindow *self)
{
  g_clear_pointer (&self->token_run, _tessera_window_token_run_free);
  self->live_n = 0;
  g_clear_pointer (&self->live_tokens, g_free);
  g_clear_pointer (&self->live_reveal, g_free);
  g_clear_pointer (&self->live_prob, g_free);
}

void
_tessera_window_tokens_begin_run (TesseraWindow *self)
{
  _tessera_window_tokens_end_run (self);
  show (self, NULL, NULL);
}

void
_tessera_window_tokens_track_step (TesseraWindow *self, const TesseraStep *step)
{
  int n = step->grid_h * step->grid_w;

  if (!step->probability || (self->live_n && self->live_n != n))
    return;
  if (!self->live_n)
    {
      /* Before the first step: everything masked, but what a branch or refine keeps. */
      TesseraTokenRun *run = self->token_run;

      self->live_n = n;
      self->live_tokens = g_new (int32_t, n);
      self->live_reveal = g_new0 (guint16, n);
      self->live_prob = g_new (float, n);
      for (int i = 0; i < n; i++)
        {
          self->live_tokens[i] = run && run->kept && run->n == n ? run->kept[i] : step->mask_token_id;
          self->live_prob[i] = NAN;
        }
    }
  for (int i = 0; i < n; i++)
    {
      if (self->live_tokens[i] == step->mask_token_id && step->tokens[i] != step->mask_token_id)
        {
          self->live_reveal[i] = (guint16) (step->step + 1);
          self->live_prob[i] = step->probability[i];
        }
      self->live_tokens[i] = step->tokens[i];
    }
}

void
_tessera_window_tokens_finish_trajectory (TesseraWindow *self, TesseraResult *result)
{
  const TesseraStep *last = self->last_step;
  int n = result->grid_h * result->grid_w;

  if (!last || !last->probability || self->live_n != n || last->grid_h * last->grid_w != n)
    return;
  result->reveal_step = g_memdup2 (self->live_reveal, n * sizeof *self->live_reveal);
  result->reveal_prob = g_memdup2 (self->live_prob, n * sizeof *self->live_prob);
  /* The tokens still masked took the last step's prediction. */
  for (int i = 0; i < n; i++)
    if (self->live_tokens[i] == last->mask_token_id)
      {
        result->reveal_step[i] = (guint16) (last->step + 1);
        result->reveal_prob[i] = last->probability[i];
      }
  _tessera_window_tokens_patch_result (self, result);
}

/* Starts a resume run from tokens (taken) with the form's prompt and seed and the source's
 * size and number of steps; run (taken) is recorded in the result's metadata. */
static void
start_resume (TesseraWindow *self, int32_t *tokens, int start_step, double ratio, TesseraTokenRun *run)
{
  const ts_image_meta *src = tessera_scrubber_get_meta (self->scrubber);
  int gw = (int) src->traj_grid_w, gh = (int) src->traj_grid_h;
  guint f = self->model_info->vae_scale_factor;
  GFile *source_file = self->current_file;
  TesseraGenerateParams gp;
  int n_steps = tessera_scrubber_get_n_steps (self->scrubber);

  run->source_hash = tessera_file_sha256 (source_file);
  tessera_generate_page_read_params (self->generate_page, &self->params.form);
  self->params.form.steps = n_steps;
  self->params.form.width = (guint) gw * f;
  self->params.form.height = (guint) gh * f;
  self->params.form.finish_at = 0;
  /* A branch or refine starts from its own step: a steering plan is not replayed. */
  g_clear_pointer (&self->params.form.steer, g_array_unref);
  g_clear_pointer (&self->params.source, g_free);
  self->params.source = source_file ? g_file_get_basename (source_file) : NULL;
  self->params.strength = -1;

  tessera_generate_params_init (&gp);
  gp.prompt = self->params.form.prompt;
  gp.negative_prompt = self->params.form.negative_prompt;
  gp.width = self->params.form.width;
  gp.height = self->params.form.height;
  gp.steps = self->params.form.steps;
  gp.guidance = self->params.form.guidance;
  gp.temperature_start = self->params.form.temperature_start;
  gp.temperature_end = self->params.form.temperature_end;
  gp.aesthetic_score = self->params.form.aesthetic_score;
  gp.seed = self->params.form.seed;

  _tessera_window_begin_run (self, TESSERA_RUN_GENERATE);
  self->token_run = run;
  tessera_worker_resume_async (self->worker, &gp, tokens, gh, gw, start_step, ratio, G_OBJECT (self),
                               _tessera_window_on_step, self->run_cancellable, _tessera_window_run_done,
                               g_object_ref (self));
  g_free (tokens);
}

static gboolean
can_resume (TesseraWindow *self)
{
  return self->model_state == TESSERA_MODEL_READY && self->run == TESSERA_RUN_IDLE && self->model_info &&
         tessera_scrubber_has_trajectory (self->scrubber);
}

static void
branch_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;
  const ts_image_meta *src;
  TesseraTokenRun *run;
  int step, n;
  int32_t *tokens;

  (void) action;
  (void) param;
  if (!can_resume (self))
    return;
  src = tessera_scrubber_get_meta (self->scrubber);
  step = tessera_scrubber_get_step (self->scrubber);
  n = (int) (src->traj_grid_h * src->traj_grid_w);
  tokens = g_new (int32_t, n);
  if (step >= tessera_scrubber_get_n_steps (self->scrubber) ||
      tessera_scrubber_fill_branch (self->scrubber, step, tokens) == 0)
    {
      g_free (tokens);
      _tessera_window_toast (self, _("Every token was revealed by this step: nothing to draw"));
      return;
    }
  run = g_new0 (TesseraTokenRun, 1);
  run->mode = "branch";
  run->from_step = (guint) step;
  run->remask = -1;
  run->starting_mask_ratio = -1;
  run->n = n;
  run->kept = g_memdup2 (tokens, (gsize) n * sizeof *tokens);
  run->mask_token_id = self->model_info->mask_token_id;
  run->reveal_step = g_memdup2 (src->traj_reveal_step, (gsize) n * sizeof *src->traj_reveal_step);
  run->reveal_prob = g_memdup2 (src->traj_confidence, (gsize) n * sizeof *src->traj_confidence);
  start_resume (self, tokens, step, 1.0, run);
}

static void
refine_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;
  const ts_image_meta *src;
  TesseraTokenRun *run;
  double remask, ratio = 1;
  int32_t *tokens;

  (void) action;
  (void) param;
  if (!can_resume (self))
    return;
  src = tessera_scrubber_get_meta (self->scrubber);
  remask = tessera_scrubber_get_remask (self->scrubber);
  tokens = g_new (int32_t, (gsize) src->traj_grid_h * src->traj_grid_w);
  if (tessera_scrubber_fill_refine (self->scrubber, remask, tokens, &ratio) == 0)
    {
      g_free (tokens);
      _tessera_window_toast (self, _("This share picks no token: nothing to draw"));
      return;
    }
  run = g_new0 (TesseraTokenRun, 1);
  run->mode = "refine";
  run->remask = remask;
  run->starting_mask_ratio = ratio;
  start_resume (self, tokens, 0, ratio, run);
}

/* ---- exporting the unmasking ---- */

typedef struct {
  ts_image *image;
  ts_image_meta meta; /* g_malloc'd copy */
  GBytes *palette;    /* codebook style; NULL for the picture */
  GFile *file;
} ExportData;

static void
export_data_free (ExportData *d)
{
  ts_image_free (d->image);
  tessera_image_meta_free_strings (&d->meta);
  g_clear_pointer (&d->palette, g_bytes_unref);
  g_clear_object (&d->file);
  g_free (d);
}

static void
export_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  ExportData *d = task_data;
  const guint8 *palette = d->palette ? g_bytes_get_data (d->palette, NULL) : NULL;
  int n_codes = d->palette ? (int) (g_bytes_get_size (d->palette) / 3) : 0;
  guint8 *data = NULL;
  size_t size = 0;
  char message[256];
  GError *error = NULL;

  (void) source;
  if (!tessera_unmask_encode_webp (d->image, &d->meta, d->palette ? TESSERA_UNMASK_CODEBOOK : TESSERA_UNMASK_PICTURE,
                                   palette, n_codes, 150, &data, &size, message, sizeof message))
    {
      g_task_return_new_error (task, TESSERA_ENGINE_ERROR, TESSERA_ENGINE_ERROR_FAILED, "%s", message);
      return;
    }
  if (!g_file_replace_contents (d->file, (const char *) data, size, NULL, FALSE, G_FILE_CREATE_NONE, NULL,
                                cancellable, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
  free (data);
}

static void
export_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  TesseraWindow *self = TESSERA_WINDOW (source);
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  ExportData *d = g_task_get_task_data (G_TASK (result));
  g_autofree char *base = g_file_get_basename (d->file);

  (void) user_data;
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    text = g_strdup_printf (_("Cannot export the unmasking: %s"), error->message);
  else
    text = g_strdup_printf (_("Exported “%s”"), base);
  _tessera_window_toast (self, text);
  self->n_exported++;
}

void
_tessera_window_tokens_export (TesseraWindow *self, GFile *file, gboolean codebook)
{
  const ts_image_meta *meta = tessera_scrubber_get_meta (self->scrubber);
  const ts_image *image = tessera_scrubber_get_image (self->scrubber);
  g_autoptr (GTask) task = NULL;
  ExportData *d;
  ts_error err;

  g_return_if_fail (meta != NULL && image != NULL);
  d = g_new0 (ExportData, 1);
  d->image = ts_image_new (image->width, image->height, &err);
  if (d->image)
    memcpy (d->image->pixels, image->pixels, (gsize) image->width * image->height * 3);
  tessera_image_meta_copy (&d->meta, meta);
  d->palette = codebook && self->palette ? g_bytes_ref (self->palette) : NULL;
  d->file = g_object_ref (file);
  task = g_task_new (self, NULL, export_done, NULL);
  g_task_set_task_data (task, d, (GDestroyNotify) export_data_free);
  g_task_run_in_thread (task, export_thread);
}

static void
export_response (GtkNativeDialog *dialog, int response, gpointer user_data)
{
  TesseraWindow *self = user_data;
  gboolean codebook = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (dialog), "tessera-codebook"));

  if (response == GTK_RESPONSE_ACCEPT && tessera_scrubber_has_trajectory (self->scrubber))
    {
      g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));

      if (file)
        _tessera_window_tokens_export (self, file, codebook);
    }
  gtk_native_dialog_destroy (dialog);
  g_object_unref (dialog);
}

static void
export_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;
  GtkFileChooserNative *chooser;
  gboolean codebook = g_strcmp0 (g_variant_get_string (param, NULL), "codebook") == 0;

  (void) action;
  if (!tessera_scrubber_has_trajectory (self->scrubber))
    return;
  chooser = gtk_file_chooser_native_new (_("Export the Unmasking"), GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_SAVE,
                                         _("_Export"), NULL);
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (chooser), "unmasking.webp");
  g_object_set_data (G_OBJECT (chooser), "tessera-codebook", GINT_TO_POINTER (codebook));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (chooser), TRUE);
  g_signal_connect (chooser, "response", G_CALLBACK (export_response), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
}

static const GActionEntry token_entries[] = {
  { .name = "branch-from-step", .activate = branch_activated },
  { .name = "refine-tokens", .activate = refine_activated },
  { .name = "export-unmasking", .activate = export_activated, .parameter_type = "s" },
};

void
_tessera_window_tokens_init (TesseraWindow *self)
{
  self->scrubber = TESSERA_SCRUBBER (tessera_scrubber_new ());
  tessera_scrubber_set_canvas (self->scrubber, tessera_generate_page_get_canvas (self->generate_page));
  tessera_generate_page_add_under_canvas (self->generate_page, GTK_WIDGET (self->scrubber));
  g_action_map_add_action_entries (G_ACTION_MAP (self), token_entries, G_N_ELEMENTS (token_entries), self);
}

void
_tessera_window_tokens_update_actions (TesseraWindow *self)
{
  gboolean ok = can_resume (self);
  GAction *action;

  action = g_action_map_lookup_action (G_ACTION_MAP (self), "branch-from-step");
  if (action)
    g_simple_action_set_enabled (G_SIMPLE_ACTION (action), ok);
  action = g_action_map_lookup_action (G_ACTION_MAP (self), "refine-tokens");
  if (action)
    g_simple_action_set_enabled (G_SIMPLE_ACTION (action), ok);
  action = g_action_map_lookup_action (G_ACTION_MAP (self), "export-unmasking");
  if (action)
    g_simple_action_set_enabled (G_SIMPLE_ACTION (action), tessera_scrubber_has_trajectory (self->scrubber));
}

TesseraScrubber *
_tessera_window_get_scrubber (TesseraWindow *self)
{
  return self->scrubber;
}
