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
  GtkAdjustment *seed_adjustment;
  GtkToggleButton *seed_lock;
  GtkAdjustment *temp_start_adjustment;
  GtkAdjustment *temp_end_adjustment;
  GtkAdjustment *aesthetic_adjustment;
  GtkStack *run_stack;
  GtkStack *canvas_stack;
  TesseraCanvas *canvas;
  GtkLabel *status_label;
  GtkProgressBar *progress_bar;

  GSettings *settings;
  TesseraModelInfo *model_info;
  GtkStringList *size_list;
  TesseraModelState model_state;
};

G_DEFINE_FINAL_TYPE (TesseraGeneratePage, tessera_generate_page, ADW_TYPE_BIN)

void
tessera_form_params_clear (TesseraFormParams *params)
{
  g_clear_pointer (&params->prompt, g_free);
  g_clear_pointer (&params->negative_prompt, g_free);
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
      g_ptr_array_add (labels, g_strdup_printf ("%u × %u", s->width, s->height));
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
  g_clear_object (&self->settings);
  g_clear_object (&self->size_list);
  g_clear_pointer (&self->model_info, tessera_model_info_unref);
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
  BIND (seed_adjustment);
  BIND (seed_lock);
  BIND (temp_start_adjustment);
  BIND (temp_end_adjustment);
  BIND (aesthetic_adjustment);
  BIND (run_stack);
  BIND (canvas_stack);
  BIND (canvas);
  BIND (status_label);
  BIND (progress_bar);
#undef BIND
}

static void
tessera_generate_page_init (TesseraGeneratePage *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->size_list = gtk_string_list_new (NULL);
  adw_combo_row_set_model (self->size_row, G_LIST_MODEL (self->size_list));
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
  gtk_adjustment_set_value (self->seed_adjustment,
                            (double) MIN (g_settings_get_uint64 (settings, "seed"), (guint64) G_MAXUINT32));
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
  if (!info)
    return;
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

gboolean
tessera_generate_page_apply_meta (TesseraGeneratePage *self, const TesseraImageMeta *m)
{
  gboolean size_ok = TRUE;

  g_return_val_if_fail (TESSERA_IS_GENERATE_PAGE (self), FALSE);
  g_return_val_if_fail (m != NULL, FALSE);

  if (m->prompt)
    text_view_set_text (self->prompt_view, m->prompt);
  text_view_set_text (self->negative_view, m->negative_prompt);
  if (m->steps > 0)
    gtk_adjustment_set_value (self->steps_adjustment, m->steps);
  if (!isnan (m->cfg))
    gtk_adjustment_set_value (self->guidance_adjustment, m->cfg);
  if (!isnan (m->temperature_start))
    gtk_adjustment_set_value (self->temp_start_adjustment, m->temperature_start);
  if (!isnan (m->temperature_end))
    gtk_adjustment_set_value (self->temp_end_adjustment, m->temperature_end);
  if (!isnan (m->aesthetic_score))
    gtk_adjustment_set_value (self->aesthetic_adjustment, m->aesthetic_score);
  gtk_adjustment_set_value (self->seed_adjustment, (double) MIN (m->seed, (guint64) G_MAXUINT32));
  if (m->seed > G_MAXUINT32)
    g_debug ("seed %" G_GUINT64_FORMAT " is above the form's range; using %u", m->seed, G_MAXUINT32);
  /* Reusing parameters means reusing the seed too. */
  gtk_toggle_button_set_active (self->seed_lock, TRUE);
  if (m->width && m->height && self->model_info && !select_size (self, m->width, m->height))
    size_ok = FALSE;
  gtk_expander_set_expanded (self->negative_expander, m->negative_prompt && m->negative_prompt[0]);
  return size_ok;
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
  if (!gtk_toggle_button_get_active (self->seed_lock))
    gtk_adjustment_set_value (self->seed_adjustment, g_random_int ());
  p->seed = (guint64) gtk_adjustment_get_value (self->seed_adjustment);
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
  gtk_adjustment_set_value (self->seed_adjustment, g_random_int ());
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
  gtk_stack_set_visible_child_name (self->run_stack, running ? "running" : "idle");
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
