/* SPDX-License-Identifier: MIT
 *
 * tessera-scrubber.c — the step scrubber and the refine picker (see the header).
 */
#include "tessera-scrubber.h"

#include <glib/gi18n.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tessera-preview.h"

#define REMASK_MIN 0.05
#define REMASK_MAX 0.5
#define REMASK_DEFAULT 0.15
#define MASKED_GREY 0x80

struct _TesseraScrubber
{
  GtkBox parent_instance;

  GtkScale *step_scale;
  GtkLabel *step_label;
  GtkButton *branch_button;
  GtkScale *remask_scale;
  GtkLabel *remask_label;

  TesseraCanvas *canvas; /* borrowed */
  GBytes *palette;
  ts_image *image;
  ts_image_meta meta; /* g_malloc'd copy; traj_grid_h == 0 when hidden */
  int32_t mask_token_id;
  int n_steps;
  const char *view;
  guint rest_id;
  gboolean updating;
};

G_DEFINE_FINAL_TYPE (TesseraScrubber, tessera_scrubber, GTK_TYPE_BOX)

static int
n_tokens (TesseraScrubber *self)
{
  return (int) (self->meta.traj_grid_h * self->meta.traj_grid_w);
}

static gboolean
revealed_by (TesseraScrubber *self, int i, int step)
{
  guint16 r = self->meta.traj_reveal_step[i];

  return r == 0 || r <= step;
}

static void
show (TesseraScrubber *self, GdkTexture *texture, const char *view)
{
  self->view = view;
  if (self->canvas)
    tessera_canvas_set_paintable (self->canvas, GDK_PAINTABLE (texture));
}

/* The token grid after step, in the codebook colours, masked tokens hatched. */
static void
show_tokens (TesseraScrubber *self, int step)
{
  int n = n_tokens (self);
  g_autofree int32_t *tokens = g_new (int32_t, n);
  g_autoptr (GBytes) empty = g_bytes_new (NULL, 0);
  g_autoptr (GdkTexture) texture = NULL;
  TesseraStep s = {
    .step = MAX (step - 1, 0),
    .n_steps = self->n_steps,
    .grid_h = (int) self->meta.traj_grid_h,
    .grid_w = (int) self->meta.traj_grid_w,
    .mask_token_id = self->mask_token_id,
    .tokens = tokens,
    .predicted = self->meta.traj_codes,
    .confidence = self->meta.traj_confidence,
  };

  for (int i = 0; i < n; i++)
    {
      gboolean keep = revealed_by (self, i, step);

      tokens[i] = keep ? self->meta.traj_codes[i] : self->mask_token_id;
      s.n_masked += !keep;
    }
  texture = tessera_preview_render (&s, TESSERA_PREVIEW_TOKENS, self->palette ? self->palette : empty);
  show (self, texture, "tokens");
}

/* The final picture with the tokens not revealed by step greyed out. */
static void
show_picture (TesseraScrubber *self, int step)
{
  const ts_image *img = self->image;
  int gw = (int) self->meta.traj_grid_w, gh = (int) self->meta.traj_grid_h;
  gsize size = (gsize) img->width * img->height * 3;
  guint8 *px = g_memdup2 (img->pixels, size);
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GdkTexture) texture = NULL;

  for (guint y = 0; y < img->height; y++)
    for (guint x = 0; x < img->width; x++)
      {
        int gx = MIN ((int) (x * gw / img->width), gw - 1), gy = MIN ((int) (y * gh / img->height), gh - 1);

        if (!revealed_by (self, gy * gw + gx, step))
          memset (px + ((gsize) y * img->width + x) * 3, MASKED_GREY, 3);
      }
  bytes = g_bytes_new_take (px, size);
  texture = gdk_memory_texture_new ((int) img->width, (int) img->height, GDK_MEMORY_R8G8B8, bytes,
                                    (gsize) img->width * 3);
  show (self, texture, "picture");
}

typedef struct {
  const float *conf;
} ByConfidence;

/* qsort has no context argument: the refine order is computed on the main thread only. */
static ByConfidence by_confidence;

/* Lowest probability first; tokens without one (NaN) last; ties by position (as the CLI). */
static int
compare_confidence (const void *a, const void *b)
{
  int i = *(const int *) a, j = *(const int *) b;
  float ci = by_confidence.conf[i], cj = by_confidence.conf[j];
  gboolean ni = isnan (ci), nj = isnan (cj);

  if (ni != nj)
    return ni ? 1 : -1;
  if (!ni && ci != cj)
    return ci < cj ? -1 : 1;
  return (i > j) - (i < j);
}

/* Sets picked[i] for the tokens refine redraws; returns how many. */
static int
pick_refine (TesseraScrubber *self, double remask, gboolean *picked)
{
  int n = n_tokens (self), n_cand = 0, want;
  g_autofree int *order = g_new (int, n);

  for (int i = 0; i < n; i++)
    {
      picked[i] = FALSE;
      if (self->meta.traj_reveal_step[i] > 0)
        order[n_cand++] = i;
    }
  by_confidence.conf = self->meta.traj_confidence;
  qsort (order, (size_t) n_cand, sizeof *order, compare_confidence);
  want = MIN ((int) lround (remask * n), n_cand);
  for (int k = 0; k < want; k++)
    picked[order[k]] = TRUE;
  return want;
}

/* The confidence heat map with the tokens that refine would redraw striped in white. */
static void
show_refine (TesseraScrubber *self)
{
  int gw = (int) self->meta.traj_grid_w, gh = (int) self->meta.traj_grid_h, n = gw * gh;
  int cell = MAX (4, (512 + MAX (gw, gh) - 1) / MAX (gw, gh));
  int w = gw * cell, h = gh * cell;
  gsize stride = (gsize) w * 3;
  guint8 *px = g_malloc ((gsize) h * stride);
  g_autofree gboolean *picked = g_new (gboolean, n);
  float lo = INFINITY, hi = -INFINITY;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GdkTexture) texture = NULL;

  pick_refine (self, tessera_scrubber_get_remask (self), picked);
  for (int i = 0; i < n; i++)
    if (isfinite (self->meta.traj_confidence[i]))
      {
        lo = MIN (lo, self->meta.traj_confidence[i]);
        hi = MAX (hi, self->meta.traj_confidence[i]);
      }
  for (int gy = 0; gy < gh; gy++)
    for (int gx = 0; gx < gw; gx++)
      {
        int i = gy * gw + gx;
        float c = self->meta.traj_confidence[i];
        double t = !isfinite (c) ? 1.0 : hi > lo ? (c - lo) / (hi - lo) : 1.0;
        guint8 rgb[3];

        tessera_preview_heat_colour (t, rgb);
        for (int y = 0; y < cell; y++)
          for (int x = 0; x < cell; x++)
            {
              guint8 *p = px + (gsize) (gy * cell + y) * stride + (gsize) (gx * cell + x) * 3;
              gboolean edge = x < 2 || y < 2 || x >= cell - 2 || y >= cell - 2;

              if (picked[i] && (edge || ((x + y) / 4) % 3 == 0))
                p[0] = p[1] = p[2] = 0xff;
              else
                memcpy (p, rgb, 3);
            }
      }
  bytes = g_bytes_new_take (px, (gsize) h * stride);
  texture = gdk_memory_texture_new (w, h, GDK_MEMORY_R8G8B8, bytes, stride);
  /* The canvas adds the heat map's legend. */
  g_object_set_data (G_OBJECT (texture), "tessera-heat-map", GINT_TO_POINTER (1));
  show (self, texture, "refine");
}

static void
update_labels (TesseraScrubber *self)
{
  int step = tessera_scrubber_get_step (self);
  g_autofree char *text = g_strdup_printf (_("Step %d / %d"), step, self->n_steps);
  g_autofree char *branch = g_strdup_printf (_("_Branch from Step %d"), step);
  g_autofree char *remask = NULL;
  g_autofree gboolean *picked = NULL;
  int count = 0;

  if (n_tokens (self) > 0)
    {
      picked = g_new (gboolean, n_tokens (self));
      count = pick_refine (self, tessera_scrubber_get_remask (self), picked);
    }
  /* Translators: the share of tokens refine redraws and how many that is */
  remask = g_strdup_printf (_("%.0f %% · %d tokens"), 100 * tessera_scrubber_get_remask (self), count);
  gtk_label_set_text (self->step_label, text);
  gtk_button_set_label (self->branch_button, branch);
  gtk_label_set_text (self->remask_label, remask);
}

static gboolean
rest_done (gpointer user_data)
{
  TesseraScrubber *self = user_data;

  self->rest_id = 0;
  if (self->image)
    show_picture (self, tessera_scrubber_get_step (self));
  return G_SOURCE_REMOVE;
}

static void
on_step_changed (TesseraScrubber *self)
{
  if (self->updating || !tessera_scrubber_has_trajectory (self))
    return;
  update_labels (self);
  show_tokens (self, tessera_scrubber_get_step (self));
  g_clear_handle_id (&self->rest_id, g_source_remove);
  self->rest_id = g_timeout_add (TESSERA_SCRUBBER_REST_MS, rest_done, self);
}

static void
on_remask_changed (TesseraScrubber *self)
{
  if (self->updating || !tessera_scrubber_has_trajectory (self))
    return;
  g_clear_handle_id (&self->rest_id, g_source_remove);
  update_labels (self);
  show_refine (self);
}

static void
tessera_scrubber_dispose (GObject *object)
{
  TesseraScrubber *self = TESSERA_SCRUBBER (object);

  g_clear_handle_id (&self->rest_id, g_source_remove);
  g_clear_pointer (&self->palette, g_bytes_unref);
  g_clear_pointer (&self->image, ts_image_free);
  tessera_image_meta_free_strings (&self->meta);
  G_OBJECT_CLASS (tessera_scrubber_parent_class)->dispose (object);
}

static void
tessera_scrubber_class_init (TesseraScrubberClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = tessera_scrubber_dispose;
}

static GtkWidget *
dim_label (const char *text)
{
  GtkWidget *label = gtk_label_new (text);

  gtk_widget_add_css_class (label, "dim-label");
  gtk_widget_add_css_class (label, "numeric");
  return label;
}

/* A child of the flow box that is not a focus stop of its own (its widget is). */
static void
flow_append (GtkWidget *flow, GtkWidget *child)
{
  GtkWidget *item = gtk_flow_box_child_new ();

  gtk_flow_box_child_set_child (GTK_FLOW_BOX_CHILD (item), child);
  gtk_widget_set_focusable (item, FALSE);
  gtk_widget_set_valign (child, GTK_ALIGN_CENTER);
  gtk_flow_box_append (GTK_FLOW_BOX (flow), item);
}

static void
tessera_scrubber_init (TesseraScrubber *self)
{
  GtkWidget *row, *refine;

  ts_image_meta_init (&self->meta);
  self->view = "";
  gtk_orientable_set_orientation (GTK_ORIENTABLE (self), GTK_ORIENTATION_VERTICAL);
  gtk_box_set_spacing (GTK_BOX (self), 6);
  gtk_widget_set_margin_start (GTK_WIDGET (self), 12);
  gtk_widget_set_margin_end (GTK_WIDGET (self), 12);
  gtk_widget_set_margin_bottom (GTK_WIDGET (self), 6);

  row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  self->step_scale = GTK_SCALE (gtk_scale_new_with_range (GTK_ORIENTATION_HORIZONTAL, 0, 1, 1));
  gtk_widget_set_hexpand (GTK_WIDGET (self->step_scale), TRUE);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->step_scale),
                               _("The tokens after this step; the picture follows when you let go"));
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->step_scale), GTK_ACCESSIBLE_PROPERTY_LABEL, _("Step"), -1);
  self->step_label = GTK_LABEL (dim_label (""));
  gtk_label_set_width_chars (self->step_label, 14);
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->step_scale));
  gtk_box_append (GTK_BOX (row), GTK_WIDGET (self->step_label));
  {
    g_autoptr (GMenu) menu = g_menu_new ();
    GtkWidget *button = gtk_menu_button_new ();

    g_menu_append (menu, _("As Decoded Pictures…"), "win.export-unmasking::picture");
    g_menu_append (menu, _("In Codebook Colours…"), "win.export-unmasking::codebook");
    gtk_menu_button_set_menu_model (GTK_MENU_BUTTON (button), G_MENU_MODEL (menu));
    gtk_menu_button_set_icon_name (GTK_MENU_BUTTON (button), "document-save-as-symbolic");
    gtk_widget_set_tooltip_text (button, _("Export the unmasking as an animated WebP, one frame per step"));
    gtk_accessible_update_property (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                    _("Export the Unmasking"), -1);
    gtk_box_append (GTK_BOX (row), button);
  }
  gtk_box_append (GTK_BOX (self), row);

  /* The buttons and the refine controls wrap onto more lines in a narrow window. */
  row = gtk_flow_box_new ();
  gtk_flow_box_set_selection_mode (GTK_FLOW_BOX (row), GTK_SELECTION_NONE);
  gtk_flow_box_set_max_children_per_line (GTK_FLOW_BOX (row), 8);
  gtk_flow_box_set_column_spacing (GTK_FLOW_BOX (row), 6);
  gtk_flow_box_set_row_spacing (GTK_FLOW_BOX (row), 6);
  self->branch_button = GTK_BUTTON (gtk_button_new_with_mnemonic (""));
  gtk_button_set_use_underline (self->branch_button, TRUE);
  gtk_actionable_set_action_name (GTK_ACTIONABLE (self->branch_button), "win.branch-from-step");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->branch_button),
                               _("Keep the tokens of this step and draw the rest with the form’s seed and prompt"));
  flow_append (row, GTK_WIDGET (self->branch_button));

  refine = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_box_append (GTK_BOX (refine), dim_label (_("Redraw")));
  self->remask_scale = GTK_SCALE (gtk_scale_new_with_range (GTK_ORIENTATION_HORIZONTAL, REMASK_MIN, REMASK_MAX, 0.05));
  gtk_range_set_value (GTK_RANGE (self->remask_scale), REMASK_DEFAULT);
  gtk_widget_set_size_request (GTK_WIDGET (self->remask_scale), 120, -1);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->remask_scale),
                               _("The share of the least confident tokens to redraw (shown white on the heat map)"));
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->remask_scale), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Share of tokens to redraw"), -1);
  gtk_box_append (GTK_BOX (refine), GTK_WIDGET (self->remask_scale));
  flow_append (row, refine);
  self->remask_label = GTK_LABEL (dim_label (""));
  flow_append (row, GTK_WIDGET (self->remask_label));
  {
    GtkWidget *button = gtk_button_new_with_mnemonic (_("_Refine Weak Tokens"));

    gtk_actionable_set_action_name (GTK_ACTIONABLE (button), "win.refine-tokens");
    gtk_widget_set_tooltip_text (button, _("Redraw the least confident tokens and keep the rest"));
    flow_append (row, button);
  }
  gtk_box_append (GTK_BOX (self), row);

  g_signal_connect_swapped (self->step_scale, "value-changed", G_CALLBACK (on_step_changed), self);
  g_signal_connect_swapped (self->remask_scale, "value-changed", G_CALLBACK (on_remask_changed), self);
  gtk_widget_set_visible (GTK_WIDGET (self), FALSE);
}

GtkWidget *
tessera_scrubber_new (void)
{
  return g_object_new (TESSERA_TYPE_SCRUBBER, NULL);
}

void
tessera_scrubber_set_canvas (TesseraScrubber *self, TesseraCanvas *canvas)
{
  g_return_if_fail (TESSERA_IS_SCRUBBER (self));
  self->canvas = canvas;
}

void
tessera_scrubber_set_palette (TesseraScrubber *self, GBytes *palette)
{
  g_return_if_fail (TESSERA_IS_SCRUBBER (self));
  if (palette)
    g_bytes_ref (palette);
  g_clear_pointer (&self->palette, g_bytes_unref);
  self->palette = palette;
}

void
tessera_scrubber_set_image (TesseraScrubber *self, const ts_image *image, const ts_image_meta *meta,
                            int32_t mask_token_id)
{
  int top = 0;

  g_return_if_fail (TESSERA_IS_SCRUBBER (self));
  g_clear_handle_id (&self->rest_id, g_source_remove);
  g_clear_pointer (&self->image, ts_image_free);
  tessera_image_meta_free_strings (&self->meta);
  ts_image_meta_init (&self->meta);
  self->view = "";
  if (image && meta && meta->traj_grid_h > 0 && meta->traj_grid_w > 0 && meta->traj_codes)
    {
      ts_error err;

      tessera_image_meta_copy (&self->meta, meta);
      self->image = ts_image_new (image->width, image->height, &err);
      if (self->image)
        memcpy (self->image->pixels, image->pixels, (gsize) image->width * image->height * 3);
    }
  self->mask_token_id = mask_token_id;
  for (int i = 0; i < n_tokens (self); i++)
    top = MAX (top, self->meta.traj_reveal_step[i]);
  self->n_steps = MAX (top, (int) self->meta.steps);
  gtk_widget_set_visible (GTK_WIDGET (self), tessera_scrubber_has_trajectory (self));
  if (!tessera_scrubber_has_trajectory (self))
    return;
  self->updating = TRUE;
  gtk_range_set_range (GTK_RANGE (self->step_scale), 0, MAX (self->n_steps, 1));
  gtk_range_set_value (GTK_RANGE (self->step_scale), self->n_steps);
  self->updating = FALSE;
  update_labels (self);
}

gboolean
tessera_scrubber_has_trajectory (TesseraScrubber *self)
{
  g_return_val_if_fail (TESSERA_IS_SCRUBBER (self), FALSE);
  return n_tokens (self) > 0 && self->image != NULL;
}

const ts_image_meta *
tessera_scrubber_get_meta (TesseraScrubber *self)
{
  g_return_val_if_fail (TESSERA_IS_SCRUBBER (self), NULL);
  return tessera_scrubber_has_trajectory (self) ? &self->meta : NULL;
}

const ts_image *
tessera_scrubber_get_image (TesseraScrubber *self)
{
  g_return_val_if_fail (TESSERA_IS_SCRUBBER (self), NULL);
  return tessera_scrubber_has_trajectory (self) ? self->image : NULL;
}

int
tessera_scrubber_get_n_steps (TesseraScrubber *self)
{
  g_return_val_if_fail (TESSERA_IS_SCRUBBER (self), 0);
  return self->n_steps;
}

int
tessera_scrubber_get_step (TesseraScrubber *self)
{
  g_return_val_if_fail (TESSERA_IS_SCRUBBER (self), 0);
  return (int) lround (gtk_range_get_value (GTK_RANGE (self->step_scale)));
}

void
tessera_scrubber_set_step (TesseraScrubber *self, int step)
{
  g_return_if_fail (TESSERA_IS_SCRUBBER (self));
  gtk_range_set_value (GTK_RANGE (self->step_scale), CLAMP (step, 0, self->n_steps));
}

double
tessera_scrubber_get_remask (TesseraScrubber *self)
{
  g_return_val_if_fail (TESSERA_IS_SCRUBBER (self), REMASK_DEFAULT);
  return gtk_range_get_value (GTK_RANGE (self->remask_scale));
}

void
tessera_scrubber_set_remask (TesseraScrubber *self, double remask)
{
  g_return_if_fail (TESSERA_IS_SCRUBBER (self));
  gtk_range_set_value (GTK_RANGE (self->remask_scale), CLAMP (remask, REMASK_MIN, REMASK_MAX));
}

int
tessera_scrubber_fill_branch (TesseraScrubber *self, int step, int32_t *tokens)
{
  int n_masked = 0;

  g_return_val_if_fail (tessera_scrubber_has_trajectory (self), 0);
  for (int i = 0; i < n_tokens (self); i++)
    {
      gboolean keep = revealed_by (self, i, step);

      tokens[i] = keep ? self->meta.traj_codes[i] : self->mask_token_id;
      n_masked += !keep;
    }
  return n_masked;
}

int
tessera_scrubber_fill_refine (TesseraScrubber *self, double remask, int32_t *tokens, double *ratio)
{
  int n = n_tokens (self), want;
  g_autofree gboolean *picked = NULL;

  g_return_val_if_fail (tessera_scrubber_has_trajectory (self), 0);
  picked = g_new (gboolean, n);
  want = pick_refine (self, remask, picked);
  for (int i = 0; i < n; i++)
    tokens[i] = picked[i] ? self->mask_token_id : self->meta.traj_codes[i];
  if (ratio)
    *ratio = (double) want / n;
  return want;
}

const char *
tessera_scrubber_get_view (TesseraScrubber *self)
{
  g_return_val_if_fail (TESSERA_IS_SCRUBBER (self), "");
  return tessera_scrubber_has_trajectory (self) ? self->view : "";
}
