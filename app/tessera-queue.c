/* SPDX-License-Identifier: MIT
 *
 * tessera-queue.c — TesseraJob (one image to make, its state and progress) and
 * TesseraQueuePopover (the header's list of jobs). Rows are built here from the window's
 * GListStore and follow their job through its "changed" signal; their buttons are win.* actions that
 * take the job's id, so the window alone decides what cancelling or removing means.
 */
#include "tessera-queue.h"

#include <glib/gi18n.h>

/* ---- TesseraJob ---- */

G_DEFINE_FINAL_TYPE (TesseraJob, tessera_job, G_TYPE_OBJECT)

static void
tessera_job_finalize (GObject *object)
{
  TesseraJob *self = TESSERA_JOB (object);

  tessera_form_params_clear (&self->form);
  g_free (self->source);
  g_free (self->source_hash);
  g_clear_object (&self->source_file);
  ts_image_free (self->image);
  g_clear_pointer (&self->mask, g_bytes_unref);
  g_free (self->status);
  G_OBJECT_CLASS (tessera_job_parent_class)->finalize (object);
}

static guint job_changed_signal;

static void
tessera_job_class_init (TesseraJobClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = tessera_job_finalize;
  /* State, progress or status changed. */
  job_changed_signal = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                     G_TYPE_NONE, 0);
}

static void
tessera_job_init (TesseraJob *self)
{
  self->strength = -1;
}

TesseraJob *
tessera_job_new (guint id, TesseraJobKind kind, const TesseraFormParams *form)
{
  TesseraJob *self;

  g_return_val_if_fail (form != NULL, NULL);

  self = g_object_new (TESSERA_TYPE_JOB, NULL);
  self->id = id;
  self->kind = kind;
  tessera_form_params_copy (&self->form, form);
  self->status = g_strdup (_("Waiting"));
  return self;
}

static void
job_changed (TesseraJob *self)
{
  g_signal_emit (self, job_changed_signal, 0);
}

void
tessera_job_set_state (TesseraJob *self, TesseraJobState state)
{
  g_return_if_fail (TESSERA_IS_JOB (self));

  self->state = state;
  if (state == TESSERA_JOB_DONE)
    self->fraction = 1.0;
  job_changed (self);
}

void
tessera_job_set_progress (TesseraJob *self, double fraction, const char *status)
{
  g_return_if_fail (TESSERA_IS_JOB (self));

  self->fraction = CLAMP (fraction, 0.0, 1.0);
  if (status)
    {
      g_free (self->status);
      self->status = g_strdup (status);
    }
  job_changed (self);
}

gboolean
tessera_job_is_pending (TesseraJob *self)
{
  g_return_val_if_fail (TESSERA_IS_JOB (self), FALSE);
  return self->state == TESSERA_JOB_QUEUED || self->state == TESSERA_JOB_RUNNING;
}

char *
tessera_job_dup_title (TesseraJob *self)
{
  const char *what;

  g_return_val_if_fail (TESSERA_IS_JOB (self), NULL);
  switch (self->kind)
    {
    case TESSERA_JOB_INPAINT:
      what = _("Inpaint");
      break;
    case TESSERA_JOB_IMG2IMG:
      what = _("Variation");
      break;
    case TESSERA_JOB_OUTPAINT:
      what = _("Extend");
      break;
    case TESSERA_JOB_GENERATE:
    default:
      what = _("Generate");
      break;
    }
  /* Translators: a queue row's title: the kind of job, its size and seed */
  return g_strdup_printf (_("%s · %u × %u · seed %" G_GUINT64_FORMAT), what, self->form.width, self->form.height,
                          self->form.seed);
}

/* ---- TesseraQueuePopover ---- */

struct _TesseraQueuePopover
{
  GtkPopover parent_instance;

  GtkListBox *list;
  GListModel *jobs;
};

G_DEFINE_FINAL_TYPE (TesseraQueuePopover, tessera_queue_popover, GTK_TYPE_POPOVER)

typedef struct {
  GtkLabel *title;
  GtkLabel *prompt;
  GtkLabel *status;
  GtkProgressBar *progress;
  GtkButton *up;
  GtkButton *stop;
} RowWidgets;

static void
update_row (GtkWidget *row)
{
  TesseraJob *job = g_object_get_data (G_OBJECT (row), "tessera-job");
  RowWidgets *w = g_object_get_data (G_OBJECT (row), "tessera-row");
  gboolean pending = tessera_job_is_pending (job);
  const char *status = job->status;

  switch (job->state)
    {
    case TESSERA_JOB_QUEUED:
      status = _("Waiting");
      break;
    case TESSERA_JOB_CANCELLED:
      status = _("Cancelled");
      break;
    case TESSERA_JOB_RUNNING:
    case TESSERA_JOB_DONE:
    case TESSERA_JOB_FAILED:
      break;
    }
  gtk_label_set_label (w->status, status ? status : "");
  gtk_progress_bar_set_fraction (w->progress, job->fraction);
  gtk_widget_set_visible (GTK_WIDGET (w->progress), job->state == TESSERA_JOB_RUNNING);
  gtk_widget_set_visible (GTK_WIDGET (w->up), job->state == TESSERA_JOB_QUEUED);
  gtk_actionable_set_action_name (GTK_ACTIONABLE (w->stop), pending ? "win.queue-cancel" : "win.queue-remove");
  gtk_button_set_icon_name (w->stop, pending ? "process-stop-symbolic" : "window-close-symbolic");
  gtk_widget_set_tooltip_text (GTK_WIDGET (w->stop), pending ? _("Cancel") : _("Remove"));
}

static GtkWidget *
create_row (gpointer item, gpointer user_data)
{
  TesseraJob *job = item;
  RowWidgets *w = g_new0 (RowWidgets, 1);
  GtkWidget *row = gtk_list_box_row_new ();
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *text = gtk_box_new (GTK_ORIENTATION_VERTICAL, 3);
  g_autofree char *title = tessera_job_dup_title (job);
  GVariant *target = g_variant_new_uint32 (job->id);

  (void) user_data;
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (row), FALSE);
  gtk_widget_set_margin_start (box, 12);
  gtk_widget_set_margin_end (box, 6);
  gtk_widget_set_margin_top (box, 6);
  gtk_widget_set_margin_bottom (box, 6);
  gtk_widget_set_hexpand (text, TRUE);

  w->title = GTK_LABEL (gtk_label_new (title));
  gtk_label_set_xalign (w->title, 0);
  gtk_label_set_ellipsize (w->title, PANGO_ELLIPSIZE_END);
  w->prompt = GTK_LABEL (gtk_label_new (job->form.prompt[0] ? job->form.prompt : _("No prompt")));
  gtk_label_set_xalign (w->prompt, 0);
  gtk_label_set_ellipsize (w->prompt, PANGO_ELLIPSIZE_END);
  gtk_widget_add_css_class (GTK_WIDGET (w->prompt), "caption");
  w->status = GTK_LABEL (gtk_label_new (NULL));
  gtk_label_set_xalign (w->status, 0);
  gtk_label_set_ellipsize (w->status, PANGO_ELLIPSIZE_END);
  gtk_widget_add_css_class (GTK_WIDGET (w->status), "caption");
  gtk_widget_add_css_class (GTK_WIDGET (w->status), "dim-label");
  gtk_widget_add_css_class (GTK_WIDGET (w->status), "numeric");
  w->progress = GTK_PROGRESS_BAR (gtk_progress_bar_new ());
  gtk_box_append (GTK_BOX (text), GTK_WIDGET (w->title));
  gtk_box_append (GTK_BOX (text), GTK_WIDGET (w->prompt));
  gtk_box_append (GTK_BOX (text), GTK_WIDGET (w->progress));
  gtk_box_append (GTK_BOX (text), GTK_WIDGET (w->status));

  w->up = GTK_BUTTON (gtk_button_new_from_icon_name ("go-up-symbolic"));
  gtk_widget_set_tooltip_text (GTK_WIDGET (w->up), _("Move Up"));
  gtk_actionable_set_action_name (GTK_ACTIONABLE (w->up), "win.queue-up");
  gtk_actionable_set_action_target_value (GTK_ACTIONABLE (w->up), target);
  w->stop = GTK_BUTTON (gtk_button_new ());
  gtk_actionable_set_action_target_value (GTK_ACTIONABLE (w->stop), target);
  for (GtkWidget *b = GTK_WIDGET (w->up); b; b = b == GTK_WIDGET (w->up) ? GTK_WIDGET (w->stop) : NULL)
    {
      gtk_widget_set_valign (b, GTK_ALIGN_CENTER);
      gtk_widget_add_css_class (b, "flat");
      gtk_widget_add_css_class (b, "circular");
    }
  gtk_box_append (GTK_BOX (box), text);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (w->up));
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (w->stop));
  gtk_list_box_row_set_child (GTK_LIST_BOX_ROW (row), box);

  g_object_set_data_full (G_OBJECT (row), "tessera-job", g_object_ref (job), g_object_unref);
  g_object_set_data_full (G_OBJECT (row), "tessera-row", w, g_free);
  g_signal_connect_object (job, "changed", G_CALLBACK (update_row), row, G_CONNECT_SWAPPED);
  update_row (row);
  return row;
}

static void
tessera_queue_popover_dispose (GObject *object)
{
  TesseraQueuePopover *self = TESSERA_QUEUE_POPOVER (object);

  if (self->list)
    gtk_list_box_bind_model (self->list, NULL, NULL, NULL, NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), TESSERA_TYPE_QUEUE_POPOVER);
  g_clear_object (&self->jobs);
  G_OBJECT_CLASS (tessera_queue_popover_parent_class)->dispose (object);
}

static void
tessera_queue_popover_class_init (TesseraQueuePopoverClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tessera_queue_popover_dispose;
  gtk_widget_class_set_template_from_resource (widget_class, APP_RESOURCE_PATH "/tessera-queue.ui");
  gtk_widget_class_bind_template_child (widget_class, TesseraQueuePopover, list);
}

static void
tessera_queue_popover_init (TesseraQueuePopover *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

void
tessera_queue_popover_set_jobs (TesseraQueuePopover *self, GListModel *jobs)
{
  g_return_if_fail (TESSERA_IS_QUEUE_POPOVER (self));

  g_set_object (&self->jobs, jobs);
  gtk_list_box_bind_model (self->list, jobs, create_row, NULL, NULL);
}

GtkWidget *
tessera_queue_popover_get_row (TesseraQueuePopover *self, guint id)
{
  g_return_val_if_fail (TESSERA_IS_QUEUE_POPOVER (self), NULL);

  for (GtkWidget *row = gtk_widget_get_first_child (GTK_WIDGET (self->list)); row;
       row = gtk_widget_get_next_sibling (row))
    {
      TesseraJob *job = g_object_get_data (G_OBJECT (row), "tessera-job");

      if (job && job->id == id)
        return row;
    }
  return NULL;
}
