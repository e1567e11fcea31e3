/* SPDX-License-Identifier: MIT
 *
 * tessera-window-steer.c — pausing a running generation and steering it: Pause stops the
 * run before its next step (the worker waits), the form stays editable, and Continue
 * hands the changed prompt, negative prompt, guidance and temperatures to the run from
 * that step on. Each change and its step go into the image's metadata ("steer"), after
 * the parameters the run started with. The engine's draws depend only on seed, step and
 * token, so a run steered at step K is, token for token, a branch from step K of the
 * unsteered run with the new parameters.
 */
#include <glib/gi18n.h>
#include <math.h>

#include "tessera-window-private.h"

/* The values in force at (1-based) step `step`: the run's own, then each change up to it. */
static void
in_force (TesseraWindow *self, guint step, const char **prompt, const char **negative, double *guidance, double *t0,
          double *t1)
{
  const TesseraFormParams *f = &self->params.form;

  *prompt = f->prompt ? f->prompt : "";
  *negative = f->negative_prompt ? f->negative_prompt : "";
  *guidance = f->guidance;
  *t0 = f->temperature_start;
  *t1 = f->temperature_end;
  for (guint i = 0; self->steer && i < self->steer->len; i++)
    {
      const ts_image_steer *c = &g_array_index (self->steer, ts_image_steer, i);

      if (c->step > step)
        break;
      if (c->prompt)
        *prompt = c->prompt;
      if (c->negative_prompt)
        *negative = c->negative_prompt;
      if (!isnan (c->cfg))
        *guidance = c->cfg;
      if (!isnan (c->temperature_start))
        *t0 = c->temperature_start;
      if (!isnan (c->temperature_end))
        *t1 = c->temperature_end;
    }
}

static void
on_paused (TesseraWorker *worker, int step, gpointer user_data)
{
  TesseraWindow *self = user_data;
  g_autofree char *text = NULL;

  if (!self->pausing || self->run != TESSERA_RUN_GENERATE)
    {
      /* Not ours any more (cancelled or ended meanwhile): let it go. */
      tessera_worker_continue (worker, NULL);
      return;
    }
  self->pausing = FALSE;
  self->paused = TRUE;
  self->paused_step = step;
  tessera_generate_page_set_paused (self->generate_page, TRUE);
  /* Translators: the status line of a paused run; %d: steps done, %d: all steps */
  text = g_strdup_printf (_("Paused after step %d of %d: change the prompt, guidance or temperatures, then "
                            "continue (▶)"),
                          step, self->params.form.steps);
  _tessera_window_set_progress (self, (double) step / MAX (1, self->params.form.steps), text);
  if (self->job)
    tessera_job_set_progress (self->job, (double) step / MAX (1, self->params.form.steps), text);
  _tessera_window_update_actions (self);
}

void
_tessera_window_steer_init (TesseraWindow *self)
{
  self->steer = g_array_new (FALSE, TRUE, sizeof (ts_image_steer));
  g_array_set_clear_func (self->steer, tessera_steer_record_clear);
  g_signal_connect_object (self->worker, "paused", G_CALLBACK (on_paused), self, 0);
}

/* A run starts: its record begins as the plan it replays (a steered image reused). */
void
_tessera_window_steer_begin_run (TesseraWindow *self)
{
  if (self->steer)
    {
      GArray *plan = self->params.form.steer;

      g_array_set_size (self->steer, 0);
      guint n = 0;

      /* Past the last step the run never gets there. */
      while (plan && n < plan->len && (int) g_array_index (plan, ts_image_steer, n).step <= self->params.form.steps)
        n++;
      g_array_set_size (self->steer, n);
      if (n)
        tessera_steer_records_copy ((ts_image_steer *) (void *) self->steer->data,
                                    (const ts_image_steer *) (void *) plan->data, n);
    }
  self->pausing = self->paused = FALSE;
  if (self->worker)
    tessera_worker_pause (self->worker, FALSE);
}

/* The run ended (done, cancelled, failed): the changes stay for its image's metadata. */
void
_tessera_window_steer_end_run (TesseraWindow *self)
{
  self->pausing = self->paused = FALSE;
  if (self->worker)
    tessera_worker_pause (self->worker, FALSE);
  if (self->generate_page)
    tessera_generate_page_set_paused (self->generate_page, FALSE);
}

gboolean
_tessera_window_steer_can_pause (TesseraWindow *self)
{
  /* The run asks before each step but its first: one must be left to run. */
  return self->run == TESSERA_RUN_GENERATE && !self->finishing && self->last_step != NULL && !self->pausing
         && (self->paused || self->last_step->step + 1 < self->last_step->n_steps);
}

/* Borrows the changes: valid until the next run begins. */
void
_tessera_window_steer_fill_meta (TesseraWindow *self, ts_image_meta *meta)
{
  if (!self->steer || self->steer->len == 0)
    return;
  meta->n_steer = self->steer->len;
  meta->steer = (ts_image_steer *) (void *) self->steer->data;
}

gboolean
_tessera_window_is_paused (TesseraWindow *self)
{
  return self->paused;
}

/* Into the record, in step order; on a replayed change of the same step, over it. */
static void
record_change (GArray *list, ts_image_steer *record)
{
  guint i = 0;

  while (i < list->len && g_array_index (list, ts_image_steer, i).step < record->step)
    i++;
  if (i < list->len && g_array_index (list, ts_image_steer, i).step == record->step)
    {
      ts_image_steer *c = &g_array_index (list, ts_image_steer, i);

      if (record->prompt)
        {
          g_free (c->prompt);
          c->prompt = g_steal_pointer (&record->prompt);
        }
      if (record->negative_prompt)
        {
          g_free (c->negative_prompt);
          c->negative_prompt = g_steal_pointer (&record->negative_prompt);
        }
      if (!isnan (record->cfg))
        c->cfg = record->cfg;
      if (!isnan (record->temperature_start))
        c->temperature_start = record->temperature_start;
      if (!isnan (record->temperature_end))
        c->temperature_end = record->temperature_end;
      return;
    }
  g_array_insert_val (list, i, *record);
  record->prompt = record->negative_prompt = NULL;
}

static void
continue_run (TesseraWindow *self)
{
  TesseraFormParams form = { 0 };
  const char *prompt, *negative;
  double guidance, t0, t1;
  ts_steer_change change;
  ts_image_steer record = { 0 };
  gboolean changed = FALSE;
  g_autofree char *text = NULL;

  tessera_generate_page_read_params (self->generate_page, &form);
  record.step = (uint32_t) self->paused_step + 1;
  in_force (self, record.step, &prompt, &negative, &guidance, &t0, &t1);
  ts_steer_change_init (&change);
  record.cfg = record.temperature_start = record.temperature_end = NAN;
  if (g_strcmp0 (form.prompt ? form.prompt : "", prompt) != 0)
    {
      change.prompt = form.prompt ? form.prompt : "";
      record.prompt = g_strdup (change.prompt);
    }
  if (g_strcmp0 (form.negative_prompt ? form.negative_prompt : "", negative) != 0)
    {
      change.negative_prompt = form.negative_prompt ? form.negative_prompt : "";
      record.negative_prompt = g_strdup (change.negative_prompt);
    }
  if (form.guidance != guidance)
    change.guidance = record.cfg = form.guidance;
  if (form.temperature_start != t0)
    change.temperature_start = record.temperature_start = form.temperature_start;
  if (form.temperature_end != t1)
    change.temperature_end = record.temperature_end = form.temperature_end;
  changed = record.prompt || record.negative_prompt || !isnan (record.cfg) || !isnan (record.temperature_start)
            || !isnan (record.temperature_end);
  if (changed)
    record_change (self->steer, &record);
  tessera_worker_continue (self->worker, changed ? &change : NULL);
  tessera_form_params_clear (&form);
  self->paused = FALSE;
  tessera_generate_page_set_paused (self->generate_page, FALSE);
  if (changed)
    /* Translators: %d: the 1-based step from which the changed settings apply */
    text = g_strdup_printf (_("Continuing with the changed settings from step %d…"), self->paused_step + 1);
  else
    text = g_strdup (_("Continuing…"));
  _tessera_window_set_progress (self, (double) self->paused_step / MAX (1, self->params.form.steps), text);
  _tessera_window_update_actions (self);
}

void
_tessera_window_pause_activated (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  TesseraWindow *self = user_data;

  (void) action;
  (void) param;
  if (self->paused)
    {
      continue_run (self);
      return;
    }
  if (!_tessera_window_steer_can_pause (self))
    return;
  self->pausing = TRUE;
  tessera_worker_pause (self->worker, TRUE);
  _tessera_window_set_progress (self, tessera_generate_page_get_progress (self->generate_page),
                                _("Pausing after this step…"));
  _tessera_window_update_actions (self);
}
