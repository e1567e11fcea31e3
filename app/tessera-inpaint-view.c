/* SPDX-License-Identifier: MIT
 *
 * tessera-inpaint-view.c — the inpainting page. Holds the source (file, decoded image,
 * metadata) and the mask editor; emits "changed" when the source or the mask changes so
 * the window can update whether a run is possible.
 */
#include "tessera-inpaint-view.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "tessera-canvas.h"
#include "tessera-preview.h"

struct _TesseraInpaintView
{
  AdwBin parent_instance;

  GtkStack *stack;
  GtkTextView *prompt_view;
  GtkAdjustment *brush_adjustment;
  GtkAdjustment *strength_adjustment;
  GtkWidget *tool_box;
  GtkToggleButton *brush_button;
  GtkToggleButton *eraser_button;
  GtkLabel *cells_label;
  GtkStack *run_stack;
  AdwLeaflet *leaflet;
  GtkWidget *sidebar;
  GtkWidget *sidebar_separator;
  GtkWidget *canvas_page;
  GtkWidget *back_button;
  GtkWidget *forward_button;
  GtkStack *narrow_run_stack;
  TesseraMaskEditor *editor;
  GtkLabel *source_label;
  GtkLabel *status_label;
  GtkProgressBar *progress_bar;
  GtkWidget *legend; /* the confidence heat map's, beside the status */
  AdwEntryRow *negative_row;
  GtkAdjustment *steps_adjustment;
  GtkAdjustment *guidance_adjustment;
  GtkAdjustment *temp_start_adjustment;
  GtkAdjustment *temp_end_adjustment;
  GtkEntry *seed_entry;
  GtkButton *reroll_button;
  double aesthetic_score;
  GtkStack *canvas_stack;
  GtkPicture *extend_picture;
  GtkLabel *extend_label;
  GtkAdjustment *extend_adjustment[4]; /* left, top, right, bottom */
  guint cell;
  guint extend_step; /* the extents' multiple: the model's size step */

  GFile *file;
  ts_image *image;
  TesseraImageMeta *meta;
  gboolean running;
};

enum {
  SIGNAL_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (TesseraInpaintView, tessera_inpaint_view, ADW_TYPE_BIN)

static void
update_state (TesseraInpaintView *self)
{
  guint n = tessera_mask_editor_count_cells (self->editor);
  g_autofree char *text = NULL;

  text = g_strdup_printf ("%u", n);
  gtk_label_set_label (self->cells_label, text);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "inpaint.undo",
                                 !self->running && tessera_mask_editor_can_undo (self->editor));
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "inpaint.clear", !self->running && self->image);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "inpaint.invert", !self->running && self->image);
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

static void
undo_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  TesseraInpaintView *self = TESSERA_INPAINT_VIEW (widget);

  (void) name;
  (void) param;
  tessera_mask_editor_undo (self->editor);
}

static void
clear_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) name;
  (void) param;
  tessera_mask_editor_clear (TESSERA_INPAINT_VIEW (widget)->editor);
}

static void
invert_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) name;
  (void) param;
  tessera_mask_editor_invert (TESSERA_INPAINT_VIEW (widget)->editor);
}

/* `[` and `]`: a fifth smaller or larger, in the slider's steps, at least one step. The
 * bindings are on this view, so a text field that has the focus takes the key first. */
static void
brush_step (TesseraInpaintView *self, int direction)
{
  double value = gtk_adjustment_get_value (self->brush_adjustment);
  double step = gtk_adjustment_get_step_increment (self->brush_adjustment);
  double delta = MAX (step, round (value * 0.2 / step) * step);

  gtk_adjustment_set_value (self->brush_adjustment, value + direction * delta);
}

static void
brush_grow_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) name;
  (void) param;
  brush_step (TESSERA_INPAINT_VIEW (widget), +1);
}

static void
brush_shrink_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) name;
  (void) param;
  brush_step (TESSERA_INPAINT_VIEW (widget), -1);
}

double
tessera_inpaint_view_get_brush_size (TesseraInpaintView *self)
{
  g_return_val_if_fail (TESSERA_IS_INPAINT_VIEW (self), 0);
  return gtk_adjustment_get_value (self->brush_adjustment);
}

static void
on_brush_changed (TesseraInpaintView *self)
{
  tessera_mask_editor_set_brush_size (self->editor, gtk_adjustment_get_value (self->brush_adjustment));
}

static void
on_eraser_changed (TesseraInpaintView *self)
{
  tessera_mask_editor_set_eraser (self->editor, gtk_toggle_button_get_active (self->eraser_button));
}

void
tessera_inpaint_view_set_eraser (TesseraInpaintView *self, gboolean eraser)
{
  g_return_if_fail (TESSERA_IS_INPAINT_VIEW (self));
  gtk_toggle_button_set_active (eraser ? self->eraser_button : self->brush_button, TRUE);
}

gboolean
tessera_inpaint_view_get_eraser (TesseraInpaintView *self)
{
  g_return_val_if_fail (TESSERA_IS_INPAINT_VIEW (self), FALSE);
  return gtk_toggle_button_get_active (self->eraser_button);
}

/* B and E pick the tool, as in image editors. */
static void
tool_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) param;
  tessera_inpaint_view_set_eraser (TESSERA_INPAINT_VIEW (widget), g_str_equal (name, "inpaint.eraser"));
}

static void
tessera_inpaint_view_dispose (GObject *object)
{
  TesseraInpaintView *self = TESSERA_INPAINT_VIEW (object);

  /* AdwBin keeps its own pointer to the template's root; let go of it first. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), TESSERA_TYPE_INPAINT_VIEW);
  g_clear_object (&self->file);
  g_clear_pointer (&self->image, ts_image_free);
  g_clear_pointer (&self->meta, tessera_image_meta_free);
  G_OBJECT_CLASS (tessera_inpaint_view_parent_class)->dispose (object);
}

static void
tessera_inpaint_view_class_init (TesseraInpaintViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tessera_inpaint_view_dispose;

  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                          NULL, NULL, NULL, G_TYPE_NONE, 0);

  g_type_ensure (TESSERA_TYPE_MASK_EDITOR);
  gtk_widget_class_set_template_from_resource (widget_class, APP_RESOURCE_PATH "/tessera-inpaint-view.ui");
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, stack);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, prompt_view);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, brush_adjustment);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, strength_adjustment);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, tool_box);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, brush_button);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, eraser_button);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, cells_label);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, run_stack);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, leaflet);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, sidebar);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, sidebar_separator);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, canvas_page);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, back_button);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, forward_button);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, narrow_run_stack);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, editor);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, source_label);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, status_label);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, negative_row);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, steps_adjustment);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, guidance_adjustment);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, temp_start_adjustment);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, temp_end_adjustment);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, seed_entry);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, reroll_button);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, canvas_stack);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, extend_picture);
  gtk_widget_class_bind_template_child (widget_class, TesseraInpaintView, extend_label);
  gtk_widget_class_bind_template_child_full (widget_class, "extend_left_adjustment", FALSE,
                                             G_STRUCT_OFFSET (TesseraInpaintView, extend_adjustment[0]));
  gtk_widget_class_bind_template_child_full (widget_class, "extend_top_adjustment", FALSE,
                                             G_STRUCT_OFFSET (TesseraInpaintView, extend_adjustment[1]));
  gtk_widget_class_bind_template_child_full (widget_class, "extend_right_adjustment", FALSE,
                                             G_STRUCT_OFFSET (TesseraInpaintView, extend_adjustment[2]));
  gtk_widget_class_bind_template_child_full (widget_class, "extend_bottom_adjustment", FALSE,
                                             G_STRUCT_OFFSET (TesseraInpaintView, extend_adjustment[3]));

  gtk_widget_class_install_action (widget_class, "inpaint.undo", NULL, undo_activated);
  gtk_widget_class_install_action (widget_class, "inpaint.clear", NULL, clear_activated);
  gtk_widget_class_install_action (widget_class, "inpaint.invert", NULL, invert_activated);
  gtk_widget_class_install_action (widget_class, "inpaint.brush-grow", NULL, brush_grow_activated);
  gtk_widget_class_install_action (widget_class, "inpaint.brush-shrink", NULL, brush_shrink_activated);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_z, GDK_CONTROL_MASK, "inpaint.undo", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_bracketright, 0, "inpaint.brush-grow", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_bracketleft, 0, "inpaint.brush-shrink", NULL);
  gtk_widget_class_install_action (widget_class, "inpaint.brush", NULL, tool_activated);
  gtk_widget_class_install_action (widget_class, "inpaint.eraser", NULL, tool_activated);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_b, 0, "inpaint.brush", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_e, 0, "inpaint.eraser", NULL);
}

/* ---- extending the canvas ---- */

void
tessera_inpaint_view_get_extend (TesseraInpaintView *self, guint32 extend[4])
{
  guint cell;

  g_return_if_fail (TESSERA_IS_INPAINT_VIEW (self));
  cell = MAX (1, self->extend_step ? self->extend_step : self->cell);
  for (int i = 0; i < 4; i++)
    {
      guint px = (guint) gtk_adjustment_get_value (self->extend_adjustment[i]);

      /* Whole size steps, as ts_model_outpaint rounds them. */
      extend[i] = (px + cell - 1) / cell * cell;
    }
}

/* The new canvas: the image on grey 127 (what ts_model_outpaint pads with), the border
 * shaded in the mask's blue with its token cells outlined. */
static void
update_extend (TesseraInpaintView *self)
{
  guint32 e[4];
  guint w, h, cell = MAX (1, self->cell);
  g_autofree guint8 *rgb = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  g_autofree char *text = NULL;

  tessera_inpaint_view_get_extend (self, e);
  if (!self->image || e[0] + e[1] + e[2] + e[3] == 0)
    {
      gtk_label_set_label (self->extend_label, "");
      gtk_picture_set_paintable (self->extend_picture, NULL);
      gtk_stack_set_visible_child_name (self->canvas_stack, "mask");
      g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
      return;
    }
  w = self->image->width + e[0] + e[2];
  h = self->image->height + e[1] + e[3];
  rgb = g_malloc ((gsize) w * h * 3);
  for (guint y = 0; y < h; y++)
    for (guint x = 0; x < w; x++)
      {
        guint8 *px = rgb + ((gsize) y * w + x) * 3;
        gboolean inside = x >= e[0] && x < e[0] + self->image->width && y >= e[1] && y < e[1] + self->image->height;

        if (inside)
          memcpy (px, self->image->pixels + ((gsize) (y - e[1]) * self->image->width + (x - e[0])) * 3, 3);
        else
          {
            /* The extents are whole cells, so the token grid starts at the corner. */
            gboolean edge = x % cell == 0 || y % cell == 0;
            guint8 shade[3] = { 127 / 2 + 0x35 / 2, 127 / 2 + 0x84 / 2, 127 / 2 + 0xe4 / 2 };

            for (int c = 0; c < 3; c++)
              px[c] = edge ? shade[c] * 3 / 4 : shade[c];
          }
      }
  bytes = g_bytes_new_take (g_steal_pointer (&rgb), (gsize) w * h * 3);
  texture = gdk_memory_texture_new ((int) w, (int) h, GDK_MEMORY_R8G8B8, bytes, (gsize) w * 3);
  gtk_picture_set_paintable (self->extend_picture, GDK_PAINTABLE (texture));
  gtk_stack_set_visible_child_name (self->canvas_stack, "extend");
  text = g_strdup_printf ("%u × %u", w, h);
  gtk_label_set_label (self->extend_label, text);
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

static void
set_seed (TesseraInpaintView *self, guint64 seed)
{
  g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT, seed);

  gtk_editable_set_text (GTK_EDITABLE (self->seed_entry), text);
}

static void
on_reroll (TesseraInpaintView *self)
{
  set_seed (self, ((guint64) g_random_int () << 32) | g_random_int ());
}

/* ---- folding (narrow windows) ---- */

static void
update_fold (TesseraInpaintView *self)
{
  gboolean folded = adw_leaflet_get_folded (self->leaflet);

  gtk_widget_set_visible (self->back_button, folded);
  gtk_widget_set_visible (self->forward_button, folded);
  gtk_widget_set_visible (GTK_WIDGET (self->narrow_run_stack), folded);
}

static void
on_forward_clicked (TesseraInpaintView *self)
{
  adw_leaflet_set_visible_child (self->leaflet, self->canvas_page);
}

static void
on_back_clicked (TesseraInpaintView *self)
{
  adw_leaflet_set_visible_child (self->leaflet, self->sidebar);
}

gboolean
tessera_inpaint_view_get_folded (TesseraInpaintView *self)
{
  g_return_val_if_fail (TESSERA_IS_INPAINT_VIEW (self), FALSE);
  return adw_leaflet_get_folded (self->leaflet);
}

gboolean
tessera_inpaint_view_get_showing_image (TesseraInpaintView *self)
{
  g_return_val_if_fail (TESSERA_IS_INPAINT_VIEW (self), FALSE);
  return adw_leaflet_get_visible_child (self->leaflet) == self->canvas_page;
}

static void
tessera_inpaint_view_init (TesseraInpaintView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  adw_leaflet_page_set_navigatable (adw_leaflet_get_page (self->leaflet, self->sidebar_separator), FALSE);
  g_signal_connect_object (self->leaflet, "notify::folded", G_CALLBACK (update_fold), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->back_button, "clicked", G_CALLBACK (on_back_clicked), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->forward_button, "clicked", G_CALLBACK (on_forward_clicked), self,
                           G_CONNECT_SWAPPED);
  update_fold (self);
  self->aesthetic_score = 6.0;
  g_signal_connect_object (self->reroll_button, "clicked", G_CALLBACK (on_reroll), self, G_CONNECT_SWAPPED);
  for (int i = 0; i < 4; i++)
    g_signal_connect_object (self->extend_adjustment[i], "value-changed", G_CALLBACK (update_extend), self,
                             G_CONNECT_SWAPPED);
  on_reroll (self);
  self->legend = tessera_heat_legend_new ();
  gtk_widget_set_visible (self->legend, FALSE);
  gtk_widget_set_valign (self->legend, GTK_ALIGN_CENTER);
  gtk_box_insert_child_after (GTK_BOX (gtk_widget_get_parent (GTK_WIDGET (self->status_label))), self->legend,
                              GTK_WIDGET (self->source_label));
  g_signal_connect_object (self->editor, "changed", G_CALLBACK (update_state), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->brush_adjustment, "value-changed", G_CALLBACK (on_brush_changed), self,
                           G_CONNECT_SWAPPED);
  g_signal_connect_object (self->eraser_button, "notify::active", G_CALLBACK (on_eraser_changed), self,
                           G_CONNECT_SWAPPED);
  on_brush_changed (self);
  update_state (self);
}

/* The brush follows the image: an eighth of its long side (16 px on a 128 px image, two
 * cells of the demo model; 128 px on a 1024 px one), in steps of a quarter cell, up to
 * the whole image. */
static void
scale_brush (TesseraInpaintView *self, const ts_image *image, guint cell)
{
  double side = MAX (image->width, image->height);
  double step = MAX (1.0, cell / 4.0);
  double size = MAX (step, round (side / 8 / step) * step);

  gtk_adjustment_configure (self->brush_adjustment, size, step, MAX (side, size), step, MAX (step, 4 * step), 0);
}

static void
on_restore_mask (AdwToast *toast, gpointer user_data)
{
  TesseraInpaintView *self = user_data;

  (void) toast;
  if (!self->running)
    tessera_mask_editor_undo (self->editor);
}

/* After a repaint the mask has done its work: it is cleared, and the toast (or Ctrl+Z)
 * brings it back for another try. */
static void
clear_mask_after_run (TesseraInpaintView *self)
{
  GtkWidget *overlay = gtk_widget_get_ancestor (GTK_WIDGET (self), ADW_TYPE_TOAST_OVERLAY);
  AdwToast *toast;

  if (tessera_mask_editor_count_cells (self->editor) == 0)
    return;
  tessera_mask_editor_clear (self->editor);
  if (!overlay)
    return;
  toast = adw_toast_new (_("Mask cleared for the next repaint"));
  adw_toast_set_button_label (toast, _("_Restore"));
  g_signal_connect_object (toast, "button-clicked", G_CALLBACK (on_restore_mask), self, 0);
  adw_toast_overlay_add_toast (ADW_TOAST_OVERLAY (overlay), toast);
}

static void
set_source_label (TesseraInpaintView *self)
{
  g_autofree char *name = self->file ? g_file_get_basename (self->file) : NULL;
  g_autofree char *text = NULL;

  if (name && self->image)
    text = g_strdup_printf ("%s · %u × %u", name, self->image->width, self->image->height);
  gtk_label_set_label (self->source_label, text ? text : "");
}

void
tessera_inpaint_view_set_source (TesseraInpaintView *self, GFile *file, ts_image *image,
                                 const TesseraImageMeta *meta, guint cell)
{
  g_autoptr (GdkTexture) texture = NULL;

  g_return_if_fail (TESSERA_IS_INPAINT_VIEW (self));
  g_return_if_fail (image != NULL);

  g_set_object (&self->file, file);
  g_clear_pointer (&self->image, ts_image_free);
  self->image = image;
  g_clear_pointer (&self->meta, tessera_image_meta_free);
  self->meta = meta ? tessera_image_meta_dup (meta) : NULL;
  tessera_inpaint_view_set_prompt (self, meta && meta->prompt ? meta->prompt : "");
  /* The settings the image was made with, where it records them. */
  if (meta)
    {
      if (meta->negative_prompt)
        gtk_editable_set_text (GTK_EDITABLE (self->negative_row), meta->negative_prompt);
      if (meta->steps > 0)
        gtk_adjustment_set_value (self->steps_adjustment, meta->steps);
      if (meta->cfg >= 0)
        gtk_adjustment_set_value (self->guidance_adjustment, meta->cfg);
      if (meta->temperature_start >= 0)
        gtk_adjustment_set_value (self->temp_start_adjustment, meta->temperature_start);
      if (meta->temperature_end >= 0)
        gtk_adjustment_set_value (self->temp_end_adjustment, meta->temperature_end);
      if (meta->aesthetic_score >= 0)
        self->aesthetic_score = meta->aesthetic_score;
      if (meta->steps > 0)
        set_seed (self, meta->seed);
    }
  texture = tessera_texture_from_image (image);
  tessera_mask_editor_set_image (self->editor, texture, cell);
  scale_brush (self, image, cell);
  self->cell = cell;
  for (int i = 0; i < 4; i++)
    {
      gtk_adjustment_set_step_increment (self->extend_adjustment[i], MAX (cell, self->extend_step));
      gtk_adjustment_set_value (self->extend_adjustment[i], 0);
    }
  update_extend (self);
  tessera_inpaint_view_set_preview (self, NULL);
  gtk_progress_bar_set_fraction (self->progress_bar, 0);
  gtk_label_set_label (self->status_label, "");
  set_source_label (self);
  gtk_stack_set_visible_child_name (self->stack, "edit");
  /* Folded, a new image comes up to be painted on. */
  adw_leaflet_set_visible_child (self->leaflet, self->canvas_page);
  update_state (self);
}

void
tessera_inpaint_view_replace_source (TesseraInpaintView *self, GFile *file, ts_image *image)
{
  g_autoptr (GdkTexture) texture = NULL;

  g_return_if_fail (TESSERA_IS_INPAINT_VIEW (self));
  g_return_if_fail (image != NULL && self->image != NULL);
  g_return_if_fail (image->width == self->image->width && image->height == self->image->height);

  g_set_object (&self->file, file);
  g_clear_pointer (&self->image, ts_image_free);
  self->image = image;
  texture = tessera_texture_from_image (image);
  tessera_mask_editor_replace_image (self->editor, texture);
  tessera_inpaint_view_set_preview (self, NULL);
  clear_mask_after_run (self);
  set_source_label (self);
  update_state (self);
}

GFile *
tessera_inpaint_view_get_source_file (TesseraInpaintView *self)
{
  g_return_val_if_fail (TESSERA_IS_INPAINT_VIEW (self), NULL);
  return self->file;
}

const ts_image *
tessera_inpaint_view_get_source_image (TesseraInpaintView *self)
{
  g_return_val_if_fail (TESSERA_IS_INPAINT_VIEW (self), NULL);
  return self->image;
}


char *
tessera_inpaint_view_dup_prompt (TesseraInpaintView *self)
{
  GtkTextBuffer *buffer;
  GtkTextIter start, end;

  g_return_val_if_fail (TESSERA_IS_INPAINT_VIEW (self), NULL);
  buffer = gtk_text_view_get_buffer (self->prompt_view);
  gtk_text_buffer_get_bounds (buffer, &start, &end);
  return gtk_text_buffer_get_text (buffer, &start, &end, FALSE);
}

void
tessera_inpaint_view_set_prompt (TesseraInpaintView *self, const char *prompt)
{
  g_return_if_fail (TESSERA_IS_INPAINT_VIEW (self));
  gtk_text_buffer_set_text (gtk_text_view_get_buffer (self->prompt_view), prompt ? prompt : "", -1);
}

double
tessera_inpaint_view_get_strength (TesseraInpaintView *self)
{
  g_return_val_if_fail (TESSERA_IS_INPAINT_VIEW (self), 1.0);
  return gtk_adjustment_get_value (self->strength_adjustment);
}

void
tessera_inpaint_view_set_strength (TesseraInpaintView *self, double strength)
{
  g_return_if_fail (TESSERA_IS_INPAINT_VIEW (self));
  gtk_adjustment_set_value (self->strength_adjustment, strength);
}

TesseraMaskEditor *
tessera_inpaint_view_get_editor (TesseraInpaintView *self)
{
  g_return_val_if_fail (TESSERA_IS_INPAINT_VIEW (self), NULL);
  return self->editor;
}

void
tessera_inpaint_view_set_running (TesseraInpaintView *self, gboolean running)
{
  g_return_if_fail (TESSERA_IS_INPAINT_VIEW (self));
  self->running = running;
  gtk_stack_set_visible_child_name (self->run_stack, running ? "running" : "idle");
  gtk_stack_set_visible_child_name (self->narrow_run_stack, running ? "running" : "idle");
  /* Folded, the image comes forward as the run starts. */
  if (running)
    adw_leaflet_set_visible_child (self->leaflet, self->canvas_page);
  tessera_mask_editor_set_editable (self->editor, !running);
  gtk_text_view_set_editable (self->prompt_view, !running);
  gtk_widget_set_sensitive (self->tool_box, !running);
  update_state (self);
}

void
tessera_inpaint_view_set_progress (TesseraInpaintView *self, double fraction, const char *text)
{
  g_return_if_fail (TESSERA_IS_INPAINT_VIEW (self));
  gtk_progress_bar_set_fraction (self->progress_bar, CLAMP (fraction, 0.0, 1.0));
  gtk_label_set_label (self->status_label, text ? text : "");
}

void
tessera_inpaint_view_set_preview (TesseraInpaintView *self, GdkPaintable *preview)
{
  g_return_if_fail (TESSERA_IS_INPAINT_VIEW (self));
  tessera_mask_editor_set_preview (self->editor, preview);
  gtk_widget_set_visible (self->legend, preview && tessera_preview_is_heat_map (preview));
}

gboolean
tessera_inpaint_view_get_legend_visible (TesseraInpaintView *self)
{
  g_return_val_if_fail (TESSERA_IS_INPAINT_VIEW (self), FALSE);
  return gtk_widget_get_visible (self->legend);
}

void
tessera_inpaint_view_set_params (TesseraInpaintView *self, const TesseraFormParams *params)
{
  g_return_if_fail (TESSERA_IS_INPAINT_VIEW (self));
  g_return_if_fail (params != NULL);

  gtk_editable_set_text (GTK_EDITABLE (self->negative_row), params->negative_prompt ? params->negative_prompt : "");
  gtk_adjustment_set_value (self->steps_adjustment, params->steps);
  gtk_adjustment_set_value (self->guidance_adjustment, params->guidance);
  gtk_adjustment_set_value (self->temp_start_adjustment, params->temperature_start);
  gtk_adjustment_set_value (self->temp_end_adjustment, params->temperature_end);
  self->aesthetic_score = params->aesthetic_score;
  set_seed (self, params->seed);
}

void
tessera_inpaint_view_read_params (TesseraInpaintView *self, TesseraFormParams *params)
{
  const char *seed_text;
  guint64 seed = 0;

  g_return_if_fail (TESSERA_IS_INPAINT_VIEW (self));
  g_return_if_fail (params != NULL);

  tessera_form_params_clear (params);
  memset (params, 0, sizeof *params);
  params->prompt = tessera_inpaint_view_dup_prompt (self);
  params->negative_prompt = g_strdup (gtk_editable_get_text (GTK_EDITABLE (self->negative_row)));
  params->steps = (int) gtk_adjustment_get_value (self->steps_adjustment);
  params->guidance = gtk_adjustment_get_value (self->guidance_adjustment);
  params->temperature_start = gtk_adjustment_get_value (self->temp_start_adjustment);
  params->temperature_end = gtk_adjustment_get_value (self->temp_end_adjustment);
  params->aesthetic_score = self->aesthetic_score;
  /* A seed that does not parse is replaced by a new one, shown in the entry. */
  seed_text = gtk_editable_get_text (GTK_EDITABLE (self->seed_entry));
  if (!g_ascii_string_to_unsigned (seed_text, 10, 0, G_MAXUINT64, &seed, NULL))
    {
      on_reroll (self);
      g_ascii_string_to_unsigned (gtk_editable_get_text (GTK_EDITABLE (self->seed_entry)), 10, 0, G_MAXUINT64, &seed,
                                  NULL);
    }
  params->seed = seed;
  if (self->image)
    {
      params->width = self->image->width;
      params->height = self->image->height;
    }
}

void
tessera_inpaint_view_set_extend_step (TesseraInpaintView *self, guint step)
{
  g_return_if_fail (TESSERA_IS_INPAINT_VIEW (self));
  self->extend_step = step;
  update_extend (self);
}
