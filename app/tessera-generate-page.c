/* SPDX-License-Identifier: MIT
 *
 * tessera-generate-page.c — the Generate page. A stack shows the model's state; its
 * "ready" page holds the form and the canvas. The form is bound to GSettings (the size
 * per model folder, in "image-sizes", by hand), and read into a TesseraFormParams when the
 * window starts a run. The page runs no jobs: TesseraWindow sets the model state, the
 * preview texture and the progress, and the buttons activate its win.* actions.
 */
#include "tessera-generate-page.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "tessera-canvas.h"

/* A loaded tokenizer shared with the threads that count with it (ts_tokenizer is
 * immutable once loaded, so any number of threads may read it; the last reference frees it). */
typedef struct {
  ts_tokenizer *tok;
} Tokenizer;

static void
tokenizer_clear (gpointer data)
{
  ts_tokenizer_free (((Tokenizer *) data)->tok);
}

static Tokenizer *
tokenizer_ref (Tokenizer *t)
{
  return g_atomic_rc_box_acquire (t);
}

static void
tokenizer_unref (Tokenizer *t)
{
  g_atomic_rc_box_release_full (t, tokenizer_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Tokenizer, tokenizer_unref)

struct _TesseraGeneratePage
{
  AdwBin parent_instance;

  /* template */
  GtkStack *model_stack;
  AdwStatusPage *loading_page;
  GtkProgressBar *load_progress;
  GtkLabel *load_label;
  GtkLabel *error_label;
  GtkWidget *form;
  GtkTextView *prompt_view;
  GtkTextView *negative_view;
  GtkExpander *negative_expander;
  AdwComboRow *size_row;
  GtkAdjustment *steps_adjustment;
  GtkAdjustment *guidance_adjustment;
  GtkEntry *seed_entry;
  GtkToggleButton *seed_lock;
  AdwActionRow *finish_row;
  AdwActionRow *steer_row;
  GtkLabel *token_label;
  GtkLabel *model_label;
  AdwLeaflet *leaflet;
  GtkButton *pause_button;
  GtkButton *narrow_pause_button;
  GtkWidget *sidebar;
  GtkWidget *sidebar_separator;
  GtkWidget *canvas_page;
  GtkWidget *narrow_run_box;
  GtkButton *back_button;
  GtkAdjustment *temp_start_adjustment;
  GtkAdjustment *temp_end_adjustment;
  GtkAdjustment *aesthetic_adjustment;
  GtkWidget *running_box;
  GtkButton *generate_button;
  GtkSpinButton *batch_spin;
  GtkStack *canvas_stack;
  TesseraCanvas *canvas;
  GtkLabel *status_label;
  GtkProgressBar *progress_bar;

  GSettings *settings;
  TesseraModelInfo *model_info;
  GtkStringList *size_list;
  TesseraModelState model_state;
  guint64 seed;          /* the last valid seed in the entry */
  guint finish_at;       /* 0: every step */
  GArray *steer;         /* the steering plan to replay (ts_image_steer), or NULL */
  gboolean running;
  /* The live token count: the model's tokenizer, loaded and used off the main thread. */
  Tokenizer *tokenizer;
  GCancellable *tokenizer_cancellable;
  GCancellable *count_cancellable;
  guint count_source;
  int n_tokens; /* with the start and end tokens; -1 while unknown */
};

G_DEFINE_FINAL_TYPE (TesseraGeneratePage, tessera_generate_page, ADW_TYPE_BIN)

static void update_token_label (TesseraGeneratePage *self);

void
tessera_form_params_clear (TesseraFormParams *params)
{
  g_clear_pointer (&params->prompt, g_free);
  g_clear_pointer (&params->negative_prompt, g_free);
  g_clear_pointer (&params->steer, g_array_unref);
}

void
tessera_form_params_copy (TesseraFormParams *dst, const TesseraFormParams *src)
{
  *dst = *src;
  dst->prompt = g_strdup (src->prompt ? src->prompt : "");
  dst->negative_prompt = g_strdup (src->negative_prompt ? src->negative_prompt : "");
  dst->steer = src->steer ? g_array_ref (src->steer) : NULL;
}

GArray *
tessera_steer_plan_new (const ts_image_steer *records, guint n)
{
  GArray *plan;

  if (!records || n == 0)
    return NULL;
  plan = g_array_sized_new (FALSE, TRUE, sizeof (ts_image_steer), n);
  g_array_set_clear_func (plan, tessera_steer_record_clear);
  g_array_set_size (plan, n);
  tessera_steer_records_copy ((ts_image_steer *) (void *) plan->data, records, n);
  return plan;
}

static char *
text_view_dup_text (GtkTextView *view)
{
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (view);
  GtkTextIter start, end;

  gtk_text_buffer_get_bounds (buffer, &start, &end);
  return gtk_text_buffer_get_text (buffer, &start, &end, FALSE);
}

static void
text_view_set_text (GtkTextView *view, const char *text)
{
  gtk_text_buffer_set_text (gtk_text_view_get_buffer (view), text ? text : "", -1);
}

/* ---- sizes ---- */

static gboolean
select_size (TesseraGeneratePage *self, guint width, guint height)
{
  if (!self->model_info)
    return FALSE;
  for (guint i = 0; i < self->model_info->sizes->len; i++)
    {
      TesseraSize *s = &g_array_index (self->model_info->sizes, TesseraSize, i);

      if (s->width == width && s->height == height)
        {
          adw_combo_row_set_selected (self->size_row, i);
          return TRUE;
        }
    }
  return FALSE;
}

/* The size last chosen for each model folder ("image-sizes"): a size is only good for the
 * model it was chosen with (the bundled demo model, trained at 128 px, draws noise at the
 * 256 px that suits another), so each model gets back its own, or else its default. */
static gboolean
lookup_saved_size (TesseraGeneratePage *self, const char *model_path, guint *width, guint *height)
{
  g_autoptr (GVariant) sizes = g_settings_get_value (self->settings, "image-sizes");

  return g_variant_lookup (sizes, model_path, "(uu)", width, height);
}

static void
save_size (TesseraGeneratePage *self, const char *model_path, guint width, guint height)
{
  g_autoptr (GVariant) old = g_settings_get_value (self->settings, "image-sizes");
  GVariantBuilder b;
  GVariantIter iter;
  const char *key;
  guint w, h;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{s(uu)}"));
  g_variant_iter_init (&iter, old);
  while (g_variant_iter_next (&iter, "{&s(uu)}", &key, &w, &h))
    if (strcmp (key, model_path) != 0)
      g_variant_builder_add (&b, "{s(uu)}", key, w, h);
  g_variant_builder_add (&b, "{s(uu)}", model_path, width, height);
  g_settings_set_value (self->settings, "image-sizes", g_variant_builder_end (&b));
}

static void
fill_sizes (TesseraGeneratePage *self)
{
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->size_list));
  g_autoptr (GPtrArray) labels = g_ptr_array_new_with_free_func (g_free);
  guint want_w = 0, want_h = 0;
  gboolean saved;

  /* Read before the splice: filling the list selects its first row, which is saved. */
  saved = lookup_saved_size (self, self->model_info->path, &want_w, &want_h);
  for (guint i = 0; i < self->model_info->sizes->len; i++)
    {
      TesseraSize *s = &g_array_index (self->model_info->sizes, TesseraSize, i);

      /* The model's own size is the one it was trained at (ts_model_default_size: the
       * VQ model's sample_size when it names one, 128 for the demo model); it draws the
       * others, but what it never saw comes out as noise. */
      if (s->width == self->model_info->default_width && s->height == self->model_info->default_height)
        g_ptr_array_add (labels, g_strdup_printf ("%u × %u", s->width, s->height));
      else
        /* Translators: an image size the loaded model was not trained at */
        g_ptr_array_add (labels, g_strdup_printf (_("%u × %u (not trained: expect noise)"), s->width, s->height));
    }
  g_ptr_array_add (labels, NULL);
  gtk_string_list_splice (self->size_list, 0, n, (const char *const *) labels->pdata);
  if (!saved || !select_size (self, want_w, want_h))
    adw_combo_row_set_selected (self->size_row, 0);
}

static void
on_size_selected (TesseraGeneratePage *self)
{
  guint w, h;

  tessera_generate_page_get_size (self, &w, &h);
  if (w && h)
    save_size (self, self->model_info->path, w, h);
}

/* ---- the seed: 64 bits, typed ---- */

static gboolean
parse_seed (const char *text, guint64 *seed)
{
  g_autofree char *stripped = g_strstrip (g_strdup (text));

  return stripped[0] && g_ascii_string_to_unsigned (stripped, 10, 0, G_MAXUINT64, seed, NULL);
}

static void
set_seed (TesseraGeneratePage *self, guint64 seed)
{
  g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT, seed);

  self->seed = seed;
  gtk_editable_set_text (GTK_EDITABLE (self->seed_entry), text);
}

static void
on_seed_changed (TesseraGeneratePage *self)
{
  guint64 seed;

  if (parse_seed (gtk_editable_get_text (GTK_EDITABLE (self->seed_entry)), &seed))
    {
      self->seed = seed;
      gtk_widget_remove_css_class (GTK_WIDGET (self->seed_entry), "error");
      gtk_widget_set_tooltip_text (GTK_WIDGET (self->seed_entry), NULL);
    }
  else
    {
      g_autofree char *tip = g_strdup_printf (_("A seed is a whole number from 0 to %" G_GUINT64_FORMAT
                                                "; Generate uses %" G_GUINT64_FORMAT),
                                              G_MAXUINT64, self->seed);

      gtk_widget_add_css_class (GTK_WIDGET (self->seed_entry), "error");
      gtk_widget_set_tooltip_text (GTK_WIDGET (self->seed_entry), tip);
    }
}

static guint64
draw_seed (void)
{
  return ((guint64) g_random_int () << 32) | g_random_int ();
}

/* ---- finishing early ---- */

static void
update_finish_row (TesseraGeneratePage *self)
{
  int steps = (int) gtk_adjustment_get_value (self->steps_adjustment);
  g_autofree char *title = NULL;
  g_autofree char *subtitle = NULL;

  gtk_widget_set_visible (GTK_WIDGET (self->finish_row), self->finish_at > 0);
  if (!self->finish_at)
    return;
  /* Translators: the form row that "Finish Now" images restore */
  title = g_strdup_printf (_("Finish at Step %u"), self->finish_at);
  if ((int) self->finish_at < steps)
    subtitle = g_strdup_printf (_("Of %d: every token still masked then takes that step’s prediction, "
                                  "as Finish Now did"), steps);
  else
    subtitle = g_strdup_printf (_("Not before the last of %d steps: every step runs"), steps);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->finish_row), title);
  adw_action_row_set_subtitle (self->finish_row, subtitle);
}

/* ---- replaying a steered image's changes ---- */

static void
update_steer_row (TesseraGeneratePage *self)
{
  g_autoptr (GString) steps = g_string_new (NULL);
  g_autofree char *title = NULL;

  gtk_widget_set_visible (GTK_WIDGET (self->steer_row), self->steer != NULL);
  if (!self->steer)
    return;
  for (guint i = 0; i < self->steer->len; i++)
    g_string_append_printf (steps, "%s%u", i ? ", " : "", g_array_index (self->steer, ts_image_steer, i).step);
  /* Translators: the form row that a steered image restores; %s: "7" or "7, 12" */
  title = g_strdup_printf (ngettext ("Steered from Step %s", "Steered at Steps %s", self->steer->len), steps->str);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (self->steer_row), title);
  adw_action_row_set_subtitle (self->steer_row, _("The prompt and settings change there as they did in the image"));
}

void
tessera_generate_page_set_steer (TesseraGeneratePage *self, GArray *plan)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  if (plan && plan->len == 0)
    plan = NULL;
  if (plan)
    g_array_ref (plan);
  g_clear_pointer (&self->steer, g_array_unref);
  self->steer = plan;
  update_steer_row (self);
}

GArray *
tessera_generate_page_get_steer (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), NULL);
  return self->steer;
}

static void
clear_steer_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) name;
  (void) param;
  tessera_generate_page_set_steer (TESSERA_GENERATE_PAGE (widget), NULL);
}

static void
clear_finish_at_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) name;
  (void) param;
  tessera_generate_page_set_finish_at (TESSERA_GENERATE_PAGE (widget), 0);
}

/* ---- the live token count ---- */

static void
tokenizer_load_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  g_autofree char *dir = g_build_filename (task_data, "tokenizer", NULL);
  GError *error = NULL;
  ts_error err;
  ts_tokenizer *tok;
  Tokenizer *t;

  (void) source;
  (void) cancellable;
  tok = ts_tokenizer_load (dir, &err);
  if (!tok)
    {
      tessera_engine_error_from_ts (&err, &error);
      g_task_return_error (task, error);
      return;
    }
  t = g_atomic_rc_box_new0 (Tokenizer);
  t->tok = tok;
  g_task_return_pointer (task, t, (GDestroyNotify) tokenizer_unref);
}

static void
tokenizer_load_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  TesseraGeneratePage *self = TESSERA_GENERATE_PAGE (source);
  g_autoptr (GError) error = NULL;
  Tokenizer *t = g_task_propagate_pointer (G_TASK (result), &error);

  (void) user_data;
  if (!t)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("no token count: %s", error->message);
      return;
    }
  g_clear_pointer (&self->tokenizer, tokenizer_unref);
  self->tokenizer = t;
  g_signal_emit_by_name (gtk_text_view_get_buffer (self->prompt_view), "changed");
}

typedef struct {
  Tokenizer *tokenizer;
  char *text;
} CountJob;

static void
count_job_free (CountJob *job)
{
  tokenizer_unref (job->tokenizer);
  g_free (job->text);
  g_free (job);
}

static void
count_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  CountJob *job = task_data;
  size_t n = 0;
  ts_error err;
  GError *error = NULL;

  (void) source;
  (void) cancellable;
  if (ts_tokenizer_encode (job->tokenizer->tok, job->text, NULL, 0, &n, &err) != TS_OK)
    {
      tessera_engine_error_from_ts (&err, &error);
      g_task_return_error (task, error);
      return;
    }
  g_task_return_int (task, (gssize) MIN (n, (size_t) G_MAXINT));
}

static void
count_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  TesseraGeneratePage *self = TESSERA_GENERATE_PAGE (source);
  g_autoptr (GError) error = NULL;
  gssize n = g_task_propagate_int (G_TASK (result), &error);

  (void) user_data;
  /* A cancelled count (the text changed since) fails as cancelled: GTask checks. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  self->n_tokens = error ? -1 : (int) n;
  update_token_label (self);
}

static gboolean
count_now (gpointer data)
{
  TesseraGeneratePage *self = data;
  g_autoptr (GTask) task = NULL;
  CountJob *job;

  self->count_source = 0;
  g_cancellable_cancel (self->count_cancellable);
  g_clear_object (&self->count_cancellable);
  if (!self->tokenizer)
    return G_SOURCE_REMOVE;
  self->count_cancellable = g_cancellable_new ();
  job = g_new0 (CountJob, 1);
  job->tokenizer = tokenizer_ref (self->tokenizer);
  job->text = text_view_dup_text (self->prompt_view);
  task = g_task_new (self, self->count_cancellable, count_done, NULL);
  g_task_set_source_tag (task, count_now);
  g_task_set_task_data (task, job, (GDestroyNotify) count_job_free);
  g_task_run_in_thread (task, count_thread);
  return G_SOURCE_REMOVE;
}

static void
update_token_label (TesseraGeneratePage *self)
{
  g_autofree char *prompt = text_view_dup_text (self->prompt_view);
  g_autofree char *text = NULL;
  gboolean over = FALSE;

  g_strstrip (prompt);
  if (!prompt[0])
    text = g_strdup (_("Empty prompt: an unconditional image"));
  else if (self->n_tokens >= 0)
    {
      over = self->n_tokens > TS_TOKENIZER_MAX_LENGTH;
      if (over)
        /* Translators: CLIP tokens in the prompt (with its start and end tokens) / the most it takes */
        text = g_strdup_printf (_("%d / %d tokens: the end is left out"), self->n_tokens, TS_TOKENIZER_MAX_LENGTH);
      else
        text = g_strdup_printf (_("%d / %d tokens"), self->n_tokens, TS_TOKENIZER_MAX_LENGTH);
    }
  gtk_label_set_label (self->token_label, text ? text : "");
  if (over)
    gtk_widget_add_css_class (GTK_WIDGET (self->token_label), "warning");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (self->token_label), "warning");
}

static void
on_prompt_changed (TesseraGeneratePage *self)
{
  /* The count waits for a pause in typing, then runs off the main thread. */
  self->n_tokens = -1;
  update_token_label (self);
  g_clear_handle_id (&self->count_source, g_source_remove);
  self->count_source = g_timeout_add (120, count_now, self);
}

/* ---- folding (narrow windows) ---- */

static void
update_fold (TesseraGeneratePage *self)
{
  gboolean folded = adw_leaflet_get_folded (self->leaflet);

  gtk_widget_set_visible (GTK_WIDGET (self->back_button), folded);
  gtk_widget_set_visible (self->narrow_run_box, folded && self->running);
}

static void
on_back_clicked (TesseraGeneratePage *self)
{
  adw_leaflet_set_visible_child (self->leaflet, self->sidebar);
}

static void
on_seed_lock_toggled (TesseraGeneratePage *self)
{
  gboolean locked = gtk_toggle_button_get_active (self->seed_lock);

  gtk_button_set_icon_name (GTK_BUTTON (self->seed_lock),
                            locked ? "changes-prevent-symbolic" : "changes-allow-symbolic");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->seed_lock),
                               locked ? _("The seed is kept for the next image")
                                      : _("A new random seed is drawn for every image"));
}

/* ---- GObject ---- */

static void
tessera_generate_page_dispose (GObject *object)
{
  TesseraGeneratePage *self = TESSERA_GENERATE_PAGE (object);

  /* AdwBin keeps its own pointer to the template's root; let go of it first. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), TESSERA_TYPE_GENERATE_PAGE);
  g_clear_handle_id (&self->count_source, g_source_remove);
  g_cancellable_cancel (self->count_cancellable);
  g_clear_object (&self->count_cancellable);
  g_cancellable_cancel (self->tokenizer_cancellable);
  g_clear_object (&self->tokenizer_cancellable);
  g_clear_pointer (&self->tokenizer, tokenizer_unref);
  g_clear_object (&self->settings);
  g_clear_object (&self->size_list);
  g_clear_pointer (&self->model_info, tessera_model_info_unref);
  g_clear_pointer (&self->steer, g_array_unref);
  G_OBJECT_CLASS (tessera_generate_page_parent_class)->dispose (object);
}

static void
tessera_generate_page_class_init (TesseraGeneratePageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tessera_generate_page_dispose;

  g_type_ensure (TESSERA_TYPE_CANVAS);
  gtk_widget_class_set_template_from_resource (widget_class, APP_RESOURCE_PATH "/tessera-generate-page.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, TesseraGeneratePage, name)
  BIND (model_stack);
  BIND (loading_page);
  BIND (load_progress);
  BIND (load_label);
  BIND (error_label);
  BIND (form);
  BIND (prompt_view);
  BIND (negative_view);
  BIND (negative_expander);
  BIND (size_row);
  BIND (steps_adjustment);
  BIND (guidance_adjustment);
  BIND (seed_entry);
  BIND (seed_lock);
  BIND (finish_row);
  BIND (steer_row);
  BIND (token_label);
  BIND (model_label);
  BIND (leaflet);
  BIND (pause_button);
  BIND (narrow_pause_button);
  BIND (sidebar);
  BIND (sidebar_separator);
  BIND (canvas_page);
  BIND (narrow_run_box);
  BIND (back_button);
  BIND (temp_start_adjustment);
  BIND (temp_end_adjustment);
  BIND (aesthetic_adjustment);
  BIND (running_box);
  BIND (generate_button);
  BIND (batch_spin);
  BIND (canvas_stack);
  BIND (canvas);
  BIND (status_label);
  BIND (progress_bar);
#undef BIND
  gtk_widget_class_install_action (widget_class, "generate-page.clear-finish-at", NULL, clear_finish_at_activated);
  gtk_widget_class_install_action (widget_class, "generate-page.clear-steer", NULL, clear_steer_activated);
}

static void
tessera_generate_page_init (TesseraGeneratePage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->size_list = gtk_string_list_new (NULL);
  self->n_tokens = -1;
  adw_combo_row_set_model (self->size_row, G_LIST_MODEL (self->size_list));
  adw_leaflet_page_set_navigatable (adw_leaflet_get_page (self->leaflet, self->sidebar_separator), FALSE);
  g_signal_connect_object (self->leaflet, "notify::folded", G_CALLBACK (update_fold), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->back_button, "clicked", G_CALLBACK (on_back_clicked), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->seed_entry, "changed", G_CALLBACK (on_seed_changed), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (gtk_text_view_get_buffer (self->prompt_view), "changed", G_CALLBACK (on_prompt_changed),
                           self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->steps_adjustment, "value-changed", G_CALLBACK (update_finish_row), self,
                           G_CONNECT_SWAPPED);
  update_fold (self);
  update_token_label (self);
}

/* ---- public API ---- */

void
tessera_generate_page_set_settings (TesseraGeneratePage *self, GSettings *settings)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  g_return_if_fail (G_IS_SETTINGS (settings));
  g_return_if_fail (self->settings == NULL);

  self->settings = g_object_ref (settings);
  g_settings_bind (settings, "steps", self->steps_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "guidance", self->guidance_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "temperature-start", self->temp_start_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "temperature-end", self->temp_end_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "aesthetic-score", self->aesthetic_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "seed-locked", self->seed_lock, "active", G_SETTINGS_BIND_DEFAULT);
  set_seed (self, g_settings_get_uint64 (settings, "seed"));
  {
    g_autofree char *prompt = g_settings_get_string (settings, "prompt");
    g_autofree char *negative = g_settings_get_string (settings, "negative-prompt");

    text_view_set_text (self->prompt_view, prompt);
    text_view_set_text (self->negative_view, negative);
    gtk_expander_set_expanded (self->negative_expander, negative[0] != '\0');
  }
  g_signal_connect_object (self->seed_lock, "notify::active", G_CALLBACK (on_seed_lock_toggled), self, G_CONNECT_SWAPPED);
  on_seed_lock_toggled (self);
  g_signal_connect_object (self->size_row, "notify::selected", G_CALLBACK (on_size_selected), self, G_CONNECT_SWAPPED);
}

void
tessera_generate_page_set_model_state (TesseraGeneratePage *self, TesseraModelState state)
{
  static const char *const names[] = { "empty", "loading", "error", "ready" };

  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  g_return_if_fail ((guint) state < G_N_ELEMENTS (names));

  self->model_state = state;
  gtk_stack_set_visible_child_name (self->model_stack, names[state]);
}

TesseraModelState
tessera_generate_page_get_model_state (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), TESSERA_MODEL_EMPTY);
  return self->model_state;
}

void
tessera_generate_page_set_loading (TesseraGeneratePage *self, const char *description)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));

  adw_status_page_set_description (self->loading_page, description);
  gtk_progress_bar_set_fraction (self->load_progress, 0);
  gtk_label_set_label (self->load_label, "");
}

void
tessera_generate_page_set_load_progress (TesseraGeneratePage *self, double fraction, const char *text)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));

  gtk_progress_bar_set_fraction (self->load_progress, fraction);
  gtk_label_set_label (self->load_label, text);
}

void
tessera_generate_page_set_error (TesseraGeneratePage *self, const char *message)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  gtk_label_set_label (self->error_label, message);
}

const char *
tessera_generate_page_get_error (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), NULL);
  return gtk_label_get_label (self->error_label);
}

void
tessera_generate_page_set_model_info (TesseraGeneratePage *self, TesseraModelInfo *info)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  g_return_if_fail (self->settings != NULL);

  if (info)
    tessera_model_info_ref (info);
  g_clear_pointer (&self->model_info, tessera_model_info_unref);
  self->model_info = info;
  g_cancellable_cancel (self->tokenizer_cancellable);
  g_clear_object (&self->tokenizer_cancellable);
  g_clear_pointer (&self->tokenizer, tokenizer_unref);
  self->n_tokens = -1;
  update_token_label (self);
  if (!info)
    {
      gtk_label_set_label (self->model_label, "");
      return;
    }
  {
    /* Translators: the loaded model's name and the device it runs on */
    g_autofree char *text = g_strdup_printf (_("Model: %s on %s"), info->name, info->backend);
    g_autofree char *path = g_filename_display_name (info->path);
    g_autoptr (GTask) task = NULL;

    gtk_label_set_label (self->model_label, text);
    gtk_widget_set_tooltip_text (GTK_WIDGET (self->model_label), path);
    self->tokenizer_cancellable = g_cancellable_new ();
    task = g_task_new (self, self->tokenizer_cancellable, tokenizer_load_done, NULL);
    g_task_set_source_tag (task, tessera_generate_page_set_model_info);
    g_task_set_task_data (task, g_strdup (info->path), g_free);
    g_task_run_in_thread (task, tokenizer_load_thread);
  }
  fill_sizes (self);
  /* A model made for another guidance scale than the official 9 (the bundled demo model:
   * 2) gets it, unless the user has set a guidance of their own. */
  if (info->default_guidance != 9.0 && gtk_adjustment_get_value (self->guidance_adjustment) == 9.0)
    gtk_adjustment_set_value (self->guidance_adjustment, info->default_guidance);
}

gboolean
tessera_generate_page_select_size (TesseraGeneratePage *self, guint width, guint height)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), FALSE);
  return select_size (self, width, height);
}

void
tessera_generate_page_get_size (TesseraGeneratePage *self, guint *width, guint *height)
{
  guint i;

  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  g_return_if_fail (width != NULL && height != NULL);

  i = adw_combo_row_get_selected (self->size_row);
  *width = *height = 0;
  if (self->model_info && i < self->model_info->sizes->len)
    {
      TesseraSize *s = &g_array_index (self->model_info->sizes, TesseraSize, i);
      *width = s->width;
      *height = s->height;
    }
}

void
tessera_generate_page_set_prompt (TesseraGeneratePage *self, const char *prompt)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  text_view_set_text (self->prompt_view, prompt);
}

char *
tessera_generate_page_dup_prompt (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), NULL);
  return text_view_dup_text (self->prompt_view);
}

gboolean
tessera_generate_page_focus_prompt (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), FALSE);
  return gtk_widget_grab_focus (GTK_WIDGET (self->prompt_view));
}

gboolean
tessera_generate_page_prompt_has_focus (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), FALSE);
  return gtk_widget_has_focus (GTK_WIDGET (self->prompt_view));
}

/* Sets adj to v or, when v is out of its range, to the nearest value it takes, and names
 * that change in changes ("guidance 40 → 30"). */
static void
set_clamped (GtkAdjustment *adj, double v, const char *name, GString *changes)
{
  double c = CLAMP (v, gtk_adjustment_get_lower (adj), gtk_adjustment_get_upper (adj));

  gtk_adjustment_set_value (adj, c);
  if (c != v)
    {
      if (changes->len)
        g_string_append (changes, ", ");
      /* Translators: a restored value that had to change: "guidance 40 → 30" */
      g_string_append_printf (changes, _("%s %g → %g"), name, v, c);
    }
}

char *
tessera_generate_page_apply_meta (TesseraGeneratePage *self, const TesseraImageMeta *m)
{
  g_autoptr (GString) changes = g_string_new (NULL);

  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), NULL);
  g_return_val_if_fail (m != NULL, NULL);

  /* An image made without a prompt gets none: it was an unconditional one. */
  text_view_set_text (self->prompt_view, m->prompt);
  text_view_set_text (self->negative_view, m->negative_prompt);
  if (m->steps > 0)
    set_clamped (self->steps_adjustment, m->steps, _("steps"), changes);
  if (!isnan (m->cfg))
    set_clamped (self->guidance_adjustment, m->cfg, _("guidance"), changes);
  if (!isnan (m->temperature_start))
    set_clamped (self->temp_start_adjustment, m->temperature_start, _("temperature at start"), changes);
  if (!isnan (m->temperature_end))
    set_clamped (self->temp_end_adjustment, m->temperature_end, _("temperature at end"), changes);
  if (!isnan (m->aesthetic_score))
    set_clamped (self->aesthetic_adjustment, m->aesthetic_score, _("aesthetic score"), changes);
  set_seed (self, m->seed);
  /* Reusing parameters means reusing the seed too. */
  gtk_toggle_button_set_active (self->seed_lock, TRUE);
  /* "Finish Now" images finish at the same step again; others run every step. */
  tessera_generate_page_set_finish_at (self, m->steps > 0 && m->finish_at < m->steps ? m->finish_at : 0);
  if (m->finish_at && (double) m->finish_at >= gtk_adjustment_get_value (self->steps_adjustment) &&
      m->finish_at < m->steps)
    {
      if (changes->len)
        g_string_append (changes, ", ");
      /* Translators: a "Finish Now" image whose step the form cannot reach */
      g_string_append_printf (changes, _("finish at step %u → every step"), m->finish_at);
    }
  /* A steered image's changes are replayed at their steps. */
  {
    g_autoptr (GArray) plan = tessera_steer_plan_new (m->steer, m->n_steer);
    int steps = (int) gtk_adjustment_get_value (self->steps_adjustment);

    tessera_generate_page_set_steer (self, plan);
    if (plan && (int) g_array_index (plan, ts_image_steer, plan->len - 1).step > steps)
      {
        if (changes->len)
          g_string_append (changes, ", ");
        /* Translators: a steered image's change past the steps the form can run */
        g_string_append_printf (changes, _("steering at step %u → not reached"),
                                g_array_index (plan, ts_image_steer, plan->len - 1).step);
      }
  }
  if (m->width && m->height && self->model_info && !select_size (self, m->width, m->height))
    {
      guint w, h;

      tessera_generate_page_get_size (self, &w, &h);
      if (changes->len)
        g_string_append (changes, ", ");
      /* Translators: a restored size this model does not make, and the size kept */
      g_string_append_printf (changes, _("size %u × %u → %u × %u"), m->width, m->height, w, h);
    }
  gtk_expander_set_expanded (self->negative_expander, m->negative_prompt && m->negative_prompt[0]);
  return changes->len ? g_string_free (g_steal_pointer (&changes), FALSE) : NULL;
}

void
tessera_generate_page_read_params (TesseraGeneratePage *self, TesseraFormParams *p)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  g_return_if_fail (p != NULL);
  g_return_if_fail (self->settings != NULL);

  tessera_form_params_clear (p);
  p->prompt = text_view_dup_text (self->prompt_view);
  p->negative_prompt = text_view_dup_text (self->negative_view);
  tessera_generate_page_get_size (self, &p->width, &p->height);
  p->steps = (int) gtk_adjustment_get_value (self->steps_adjustment);
  p->guidance = gtk_adjustment_get_value (self->guidance_adjustment);
  p->temperature_start = gtk_adjustment_get_value (self->temp_start_adjustment);
  p->temperature_end = gtk_adjustment_get_value (self->temp_end_adjustment);
  p->aesthetic_score = gtk_adjustment_get_value (self->aesthetic_adjustment);
  /* What is typed and not a seed goes back to the seed that is used. */
  set_seed (self, gtk_toggle_button_get_active (self->seed_lock) ? self->seed : draw_seed ());
  p->seed = self->seed;
  p->finish_at = self->finish_at > 0 && (int) self->finish_at < p->steps ? self->finish_at : 0;
  p->steer = self->steer ? g_array_ref (self->steer) : NULL;
  g_settings_set_uint64 (self->settings, "seed", p->seed);
  g_settings_set_string (self->settings, "prompt", p->prompt);
  g_settings_set_string (self->settings, "negative-prompt", p->negative_prompt);
}

void
tessera_generate_page_save_prompts (TesseraGeneratePage *self)
{
  g_autofree char *prompt = NULL;
  g_autofree char *negative = NULL;

  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  g_return_if_fail (self->settings != NULL);

  prompt = text_view_dup_text (self->prompt_view);
  negative = text_view_dup_text (self->negative_view);
  g_settings_set_string (self->settings, "prompt", prompt);
  g_settings_set_string (self->settings, "negative-prompt", negative);
}

void
tessera_generate_page_reroll_seed (TesseraGeneratePage *self)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  set_seed (self, draw_seed ());
}

void
tessera_generate_page_set_form_sensitive (TesseraGeneratePage *self, gboolean sensitive)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  gtk_widget_set_sensitive (self->form, sensitive);
}

void
tessera_generate_page_set_running (TesseraGeneratePage *self, gboolean running)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  gtk_widget_set_visible (self->running_box, running);
  /* During a run Generate queues the next image. */
  gtk_button_set_label (self->generate_button, running ? _("Add to _Queue") : _("_Generate"));
  self->running = running;
  /* Folded, the canvas comes forward as the run starts. */
  if (running)
    adw_leaflet_set_visible_child (self->leaflet, self->canvas_page);
  update_fold (self);
}

void
tessera_generate_page_set_paused (TesseraGeneratePage *self, gboolean paused)
{
  GtkButton *buttons[2] = { self->pause_button, self->narrow_pause_button };

  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  for (int i = 0; i < 2; i++)
    {
      gtk_button_set_icon_name (buttons[i], paused ? "media-playback-start-symbolic" : "media-playback-pause-symbolic");
      gtk_widget_set_tooltip_text (GTK_WIDGET (buttons[i]),
                                   paused ? _("Continue from here with the form’s prompt and settings")
                                          : _("Pause after this step, to change the prompt, guidance or temperatures"));
      if (paused)
        gtk_widget_add_css_class (GTK_WIDGET (buttons[i]), "suggested-action");
      else
        gtk_widget_remove_css_class (GTK_WIDGET (buttons[i]), "suggested-action");
    }
}

void
tessera_generate_page_add_under_canvas (TesseraGeneratePage *self, GtkWidget *widget)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  gtk_box_insert_child_after (GTK_BOX (gtk_widget_get_parent (GTK_WIDGET (self->status_label))), widget,
                              GTK_WIDGET (self->status_label));
}

TesseraCanvas *
tessera_generate_page_get_canvas (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), NULL);
  return self->canvas;
}

void
tessera_generate_page_set_preview (TesseraGeneratePage *self, GdkPaintable *preview)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));

  tessera_canvas_set_paintable (self->canvas, preview);
  gtk_stack_set_visible_child_name (self->canvas_stack, "canvas");
}

GdkPaintable *
tessera_generate_page_get_preview (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), NULL);
  return tessera_canvas_get_paintable (self->canvas);
}

void
tessera_generate_page_set_progress (TesseraGeneratePage *self, double fraction, const char *text)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));

  gtk_progress_bar_set_fraction (self->progress_bar, CLAMP (fraction, 0.0, 1.0));
  gtk_label_set_label (self->status_label, text);
}

double
tessera_generate_page_get_progress (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), 0);
  return gtk_progress_bar_get_fraction (self->progress_bar);
}

const char *
tessera_generate_page_get_status (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), NULL);
  return gtk_label_get_label (self->status_label);
}

guint64
tessera_generate_page_get_seed (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), 0);
  return self->seed;
}

void
tessera_generate_page_set_finish_at (TesseraGeneratePage *self, guint step)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  self->finish_at = step;
  update_finish_row (self);
}

guint
tessera_generate_page_get_finish_at (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), 0);
  return self->finish_at;
}

int
tessera_generate_page_get_token_count (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), -1);
  return self->n_tokens;
}

const char *
tessera_generate_page_get_token_text (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), NULL);
  return gtk_label_get_label (self->token_label);
}

gboolean
tessera_generate_page_get_folded (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), FALSE);
  return adw_leaflet_get_folded (self->leaflet);
}

const char *
tessera_generate_page_get_model_text (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), NULL);
  return gtk_label_get_label (self->model_label);
}

guint
tessera_generate_page_get_batch_count (TesseraGeneratePage *self)
{
  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), 1);
  return (guint) gtk_spin_button_get_value_as_int (self->batch_spin);
}

void
tessera_generate_page_set_batch_count (TesseraGeneratePage *self, guint count)
{
  g_return_if_fail (TESSERA_IS_GENERATE_PAGE (self));
  gtk_spin_button_set_value (self->batch_spin, CLAMP (count, 1, 16));
}
