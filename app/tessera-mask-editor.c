/* SPDX-License-Identifier: MIT
 *
 * tessera-mask-editor.c — the mask is kept at image resolution (one byte per pixel, the
 * array ts_model_inpaint takes); the snapped cell overlay is recomputed from it with the
 * engine's half-cell rule whenever it changes, so what the user sees is exactly what the
 * engine will repaint.
 */
#include "tessera-mask-editor.h"

#include <math.h>
#include <string.h>

#include "tessera-canvas.h"

#define MAX_UNDO 32

struct _TesseraMaskEditor
{
  GtkWidget parent_instance;

  GdkTexture *image;
  GdkPaintable *preview;
  cairo_surface_t *image_surface;   /* their pixels, drawn nearest-neighbour when scaled up */
  cairo_surface_t *preview_surface;
  guint width, height, cell;
  guint8 *mask;
  guint8 *cells; /* grid of 0/1, the snapped cells */
  GdkTexture *overlay;
  gboolean overlay_dirty;
  GQueue undo;   /* of GBytes */
  double brush;
  gboolean eraser;
  gboolean editable;

  double last_x, last_y;     /* image px, during a drag */
  double drag_x, drag_y;     /* widget px, drag start */
  double pointer_x, pointer_y;
  gboolean pointer_inside;
};

enum {
  SIGNAL_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (TesseraMaskEditor, tessera_mask_editor, GTK_TYPE_WIDGET)

/* Where the image sits in the widget: scale and offset. */
static gboolean
get_layout (TesseraMaskEditor *self, double *scale, double *ox, double *oy)
{
  double w = gtk_widget_get_width (GTK_WIDGET (self));
  double h = gtk_widget_get_height (GTK_WIDGET (self));

  if (!self->image || self->width == 0 || self->height == 0 || w <= 0 || h <= 0)
    return FALSE;
  *scale = MIN (w / self->width, h / self->height);
  *ox = (w - self->width * *scale) / 2;
  *oy = (h - self->height * *scale) / 2;
  return TRUE;
}

static void
update_cells (TesseraMaskEditor *self)
{
  guint gw, gh, c = self->cell;

  if (!self->mask || c == 0)
    return;
  gw = self->width / c;
  gh = self->height / c;
  for (guint gy = 0; gy < gh; gy++)
    for (guint gx = 0; gx < gw; gx++)
      {
        guint set = 0;

        for (guint y = 0; y < c; y++)
          {
            const guint8 *row = self->mask + (gsize) (gy * c + y) * self->width + gx * c;

            for (guint x = 0; x < c; x++)
              set += row[x] != 0;
          }
        self->cells[gy * gw + gx] = 2 * set >= c * c;
      }
}

static void
mask_changed (TesseraMaskEditor *self)
{
  update_cells (self);
  self->overlay_dirty = TRUE;
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

static void
ensure_overlay (TesseraMaskEditor *self)
{
  gsize n = (gsize) self->width * self->height;
  guint8 *px;
  g_autoptr (GBytes) bytes = NULL;

  if (!self->overlay_dirty && self->overlay)
    return;
  self->overlay_dirty = FALSE;
  g_clear_object (&self->overlay);
  if (!self->mask)
    return;
  px = g_malloc (n * 4);
  for (gsize i = 0; i < n; i++)
    {
      /* The painted strokes: a translucent warm red, like a felt marker. */
      px[4 * i + 0] = 0xe0;
      px[4 * i + 1] = 0x1b;
      px[4 * i + 2] = 0x24;
      px[4 * i + 3] = self->mask[i] ? 0x70 : 0;
    }
  bytes = g_bytes_new_take (px, n * 4);
  self->overlay = gdk_memory_texture_new ((int) self->width, (int) self->height, GDK_MEMORY_R8G8B8A8,
                                          bytes, (gsize) self->width * 4);
}

static void
draw_preview (TesseraMaskEditor *self, GtkSnapshot *snapshot, const graphene_rect_t *r, const graphene_rect_t *clip)
{
  if (self->preview_surface)
    {
      tessera_snapshot_surface (snapshot, self->preview_surface, r, clip);
      return;
    }
  gtk_snapshot_push_clip (snapshot, clip);
  gtk_snapshot_save (snapshot);
  gtk_snapshot_translate (snapshot, &r->origin);
  gdk_paintable_snapshot (self->preview, snapshot, r->size.width, r->size.height);
  gtk_snapshot_restore (snapshot);
  gtk_snapshot_pop (snapshot);
}

/* During a repaint only the masked cells change: the preview (the whole token grid) shows
 * through them, one clip per run of masked cells in a row, and the rest stays the source
 * image, outlined where it will not change. Without a mask (a result shown as it is) the
 * whole preview shows. */
static void
snapshot_preview (TesseraMaskEditor *self, GtkSnapshot *snapshot, const graphene_rect_t *r, double scale)
{
  guint gw = self->cell ? self->width / self->cell : 0, gh = self->cell ? self->height / self->cell : 0;
  double cs = self->cell * scale;
  gboolean any = tessera_mask_editor_count_cells (self) > 0;
  GdkRGBA edge = { 1, 1, 1, 0.6 };

  for (guint gy = 0; any && gy < gh; gy++)
    for (guint gx = 0; gx < gw;)
      {
        guint end = gx;
        graphene_rect_t run;

        while (end < gw && self->cells[gy * gw + end])
          end++;
        if (end == gx)
          {
            gx++;
            continue;
          }
        run = GRAPHENE_RECT_INIT (r->origin.x + gx * cs, r->origin.y + gy * cs, (end - gx) * cs, cs);
        draw_preview (self, snapshot, r, &run);
        gx = end;
      }
  if (!any)
    {
      draw_preview (self, snapshot, r, r);
      return;
    }
  /* A thin line around the repainted area, where it meets the kept image. */
  for (guint gy = 0; gy < gh; gy++)
    for (guint gx = 0; gx < gw; gx++)
      {
        double x = r->origin.x + gx * cs, y = r->origin.y + gy * cs;

        if (!self->cells[gy * gw + gx])
          continue;
        if (gy == 0 || !self->cells[(gy - 1) * gw + gx])
          gtk_snapshot_append_color (snapshot, &edge, &GRAPHENE_RECT_INIT (x, y, cs, 1));
        if (gy + 1 == gh || !self->cells[(gy + 1) * gw + gx])
          gtk_snapshot_append_color (snapshot, &edge, &GRAPHENE_RECT_INIT (x, y + cs - 1, cs, 1));
        if (gx == 0 || !self->cells[gy * gw + gx - 1])
          gtk_snapshot_append_color (snapshot, &edge, &GRAPHENE_RECT_INIT (x, y, 1, cs));
        if (gx + 1 == gw || !self->cells[gy * gw + gx + 1])
          gtk_snapshot_append_color (snapshot, &edge, &GRAPHENE_RECT_INIT (x + cs - 1, y, 1, cs));
      }
}

static void
tessera_mask_editor_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  TesseraMaskEditor *self = TESSERA_MASK_EDITOR (widget);
  double scale, ox, oy;
  graphene_rect_t r;

  if (!get_layout (self, &scale, &ox, &oy))
    return;
  r = GRAPHENE_RECT_INIT (ox, oy, self->width * scale, self->height * scale);
  tessera_snapshot_surface (snapshot, self->image_surface, &r, &r);
  if (self->preview)
    {
      snapshot_preview (self, snapshot, &r, scale);
      return;
    }

  ensure_overlay (self);
  if (self->overlay)
    gtk_snapshot_append_texture (snapshot, self->overlay, &r);

  if (self->cell > 0 && self->cells)
    {
      guint gw = self->width / self->cell, gh = self->height / self->cell;
      double cs = self->cell * scale;
      GdkRGBA fill = { 0.21, 0.52, 0.89, 0.28 };
      GdkRGBA edge = { 1, 1, 1, 0.75 };
      GdkRGBA edges[4] = { edge, edge, edge, edge };
      float widths[4] = { 1, 1, 1, 1 };

      for (guint gy = 0; gy < gh; gy++)
        for (guint gx = 0; gx < gw; gx++)
          {
            GskRoundedRect rr;
            graphene_rect_t cr;

            if (!self->cells[gy * gw + gx])
              continue;
            cr = GRAPHENE_RECT_INIT (ox + gx * cs, oy + gy * cs, cs, cs);
            gtk_snapshot_append_color (snapshot, &fill, &cr);
            gsk_rounded_rect_init_from_rect (&rr, &cr, 0);
            gtk_snapshot_append_border (snapshot, &rr, widths, edges);
          }
    }

  if (self->editable && self->pointer_inside && !self->preview)
    {
      double rad = self->brush / 2 * scale;
      graphene_rect_t br = GRAPHENE_RECT_INIT (self->pointer_x - rad, self->pointer_y - rad, 2 * rad, 2 * rad);
      GskRoundedRect rr;
      GdkRGBA c = { 1, 1, 1, 0.9 };
      GdkRGBA cs4[4] = { c, c, c, c };
      float w4[4] = { 1.5, 1.5, 1.5, 1.5 };

      gsk_rounded_rect_init_from_rect (&rr, &br, rad);
      gtk_snapshot_append_border (snapshot, &rr, w4, cs4);
    }
}

static void
tessera_mask_editor_measure (GtkWidget *widget, GtkOrientation orientation, int for_size,
                             int *minimum, int *natural, int *minimum_baseline, int *natural_baseline)
{
  (void) widget;
  (void) orientation;
  (void) for_size;
  *minimum = 64;
  *natural = 512;
  *minimum_baseline = *natural_baseline = -1;
}

static void
stamp (TesseraMaskEditor *self, double cx, double cy)
{
  double r = self->brush / 2;
  int x0 = MAX (0, (int) floor (cx - r)), x1 = MIN ((int) self->width - 1, (int) ceil (cx + r));
  int y0 = MAX (0, (int) floor (cy - r)), y1 = MIN ((int) self->height - 1, (int) ceil (cy + r));
  guint8 v = self->eraser ? 0 : 255;

  for (int y = y0; y <= y1; y++)
    for (int x = x0; x <= x1; x++)
      {
        double dx = x + 0.5 - cx, dy = y + 0.5 - cy;

        if (dx * dx + dy * dy <= r * r)
          self->mask[(gsize) y * self->width + x] = v;
      }
}

void
tessera_mask_editor_paint_line (TesseraMaskEditor *self, double x0, double y0, double x1, double y1)
{
  double len, step;
  int n;

  g_return_if_fail (TESSERA_IS_MASK_EDITOR (self));
  if (!self->mask)
    return;
  len = hypot (x1 - x0, y1 - y0);
  step = MAX (1.0, self->brush / 4);
  n = MAX (1, (int) ceil (len / step));
  for (int i = 0; i <= n; i++)
    stamp (self, x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n);
  mask_changed (self);
}

static void
push_undo (TesseraMaskEditor *self)
{
  g_queue_push_tail (&self->undo, g_bytes_new (self->mask, (gsize) self->width * self->height));
  while (g_queue_get_length (&self->undo) > MAX_UNDO)
    g_bytes_unref (g_queue_pop_head (&self->undo));
}

void
tessera_mask_editor_begin_stroke (TesseraMaskEditor *self)
{
  g_return_if_fail (TESSERA_IS_MASK_EDITOR (self));
  if (self->mask)
    push_undo (self);
}

static void
drag_begin (GtkGestureDrag *gesture, double x, double y, TesseraMaskEditor *self)
{
  double scale, ox, oy;

  if (!self->editable || !get_layout (self, &scale, &ox, &oy))
    {
      gtk_gesture_set_state (GTK_GESTURE (gesture), GTK_EVENT_SEQUENCE_DENIED);
      return;
    }
  self->drag_x = x;
  self->drag_y = y;
  self->last_x = (x - ox) / scale;
  self->last_y = (y - oy) / scale;
  tessera_mask_editor_begin_stroke (self);
  tessera_mask_editor_paint_line (self, self->last_x, self->last_y, self->last_x, self->last_y);
}

static void
drag_update (GtkGestureDrag *gesture, double dx, double dy, TesseraMaskEditor *self)
{
  double scale, ox, oy, x, y;

  (void) gesture;
  if (!get_layout (self, &scale, &ox, &oy))
    return;
  x = (self->drag_x + dx - ox) / scale;
  y = (self->drag_y + dy - oy) / scale;
  self->pointer_x = self->drag_x + dx;
  self->pointer_y = self->drag_y + dy;
  tessera_mask_editor_paint_line (self, self->last_x, self->last_y, x, y);
  self->last_x = x;
  self->last_y = y;
}

static void
motion (GtkEventControllerMotion *controller, double x, double y, TesseraMaskEditor *self)
{
  (void) controller;
  self->pointer_x = x;
  self->pointer_y = y;
  self->pointer_inside = TRUE;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
leave (GtkEventControllerMotion *controller, TesseraMaskEditor *self)
{
  (void) controller;
  self->pointer_inside = FALSE;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
clear_undo (TesseraMaskEditor *self)
{
  g_queue_clear_full (&self->undo, (GDestroyNotify) g_bytes_unref);
}

static void
tessera_mask_editor_dispose (GObject *object)
{
  TesseraMaskEditor *self = TESSERA_MASK_EDITOR (object);

  g_clear_object (&self->image);
  g_clear_object (&self->preview);
  g_clear_object (&self->overlay);
  g_clear_pointer (&self->image_surface, cairo_surface_destroy);
  g_clear_pointer (&self->preview_surface, cairo_surface_destroy);
  clear_undo (self);
  G_OBJECT_CLASS (tessera_mask_editor_parent_class)->dispose (object);
}

static void
tessera_mask_editor_finalize (GObject *object)
{
  TesseraMaskEditor *self = TESSERA_MASK_EDITOR (object);

  g_free (self->mask);
  g_free (self->cells);
  G_OBJECT_CLASS (tessera_mask_editor_parent_class)->finalize (object);
}

static void
tessera_mask_editor_class_init (TesseraMaskEditorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tessera_mask_editor_dispose;
  object_class->finalize = tessera_mask_editor_finalize;
  widget_class->snapshot = tessera_mask_editor_snapshot;
  widget_class->measure = tessera_mask_editor_measure;

  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                          NULL, NULL, NULL, G_TYPE_NONE, 0);
  gtk_widget_class_set_css_name (widget_class, "tessera-mask-editor");
}

static void
tessera_mask_editor_init (TesseraMaskEditor *self)
{
  GtkGesture *drag = gtk_gesture_drag_new ();
  GtkEventController *motion_controller = gtk_event_controller_motion_new ();

  g_queue_init (&self->undo);
  self->brush = 64;
  self->editable = TRUE;
  gtk_gesture_single_set_button (GTK_GESTURE_SINGLE (drag), GDK_BUTTON_PRIMARY);
  g_signal_connect (drag, "drag-begin", G_CALLBACK (drag_begin), self);
  g_signal_connect (drag, "drag-update", G_CALLBACK (drag_update), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drag));
  g_signal_connect (motion_controller, "motion", G_CALLBACK (motion), self);
  g_signal_connect (motion_controller, "leave", G_CALLBACK (leave), self);
  gtk_widget_add_controller (GTK_WIDGET (self), motion_controller);
  gtk_widget_set_cursor_from_name (GTK_WIDGET (self), "crosshair");
}

GtkWidget *
tessera_mask_editor_new (void)
{
  return g_object_new (TESSERA_TYPE_MASK_EDITOR, NULL);
}

void
tessera_mask_editor_set_image (TesseraMaskEditor *self, GdkTexture *texture, guint cell)
{
  g_return_if_fail (TESSERA_IS_MASK_EDITOR (self));
  g_return_if_fail (texture == NULL || GDK_IS_TEXTURE (texture));

  g_set_object (&self->image, texture);
  g_clear_pointer (&self->image_surface, cairo_surface_destroy);
  if (texture)
    self->image_surface = tessera_surface_from_texture (texture);
  g_clear_pointer (&self->mask, g_free);
  g_clear_pointer (&self->cells, g_free);
  clear_undo (self);
  self->cell = cell;
  self->width = texture ? (guint) gdk_texture_get_width (texture) : 0;
  self->height = texture ? (guint) gdk_texture_get_height (texture) : 0;
  if (texture)
    {
      self->mask = g_malloc0 ((gsize) self->width * self->height);
      self->cells = g_malloc0 (cell ? (gsize) (self->width / cell) * (self->height / cell) + 1 : 1);
    }
  mask_changed (self);
}

void
tessera_mask_editor_replace_image (TesseraMaskEditor *self, GdkTexture *texture)
{
  g_return_if_fail (TESSERA_IS_MASK_EDITOR (self));
  g_return_if_fail (GDK_IS_TEXTURE (texture));
  g_return_if_fail ((guint) gdk_texture_get_width (texture) == self->width &&
                    (guint) gdk_texture_get_height (texture) == self->height);

  g_set_object (&self->image, texture);
  g_clear_pointer (&self->image_surface, cairo_surface_destroy);
  self->image_surface = tessera_surface_from_texture (texture);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
tessera_mask_editor_set_preview (TesseraMaskEditor *self, GdkPaintable *preview)
{
  g_return_if_fail (TESSERA_IS_MASK_EDITOR (self));
  g_set_object (&self->preview, preview);
  g_clear_pointer (&self->preview_surface, cairo_surface_destroy);
  if (GDK_IS_TEXTURE (preview))
    self->preview_surface = tessera_surface_from_texture (GDK_TEXTURE (preview));
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
tessera_mask_editor_set_brush_size (TesseraMaskEditor *self, double px)
{
  g_return_if_fail (TESSERA_IS_MASK_EDITOR (self));
  self->brush = MAX (1.0, px);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
tessera_mask_editor_set_eraser (TesseraMaskEditor *self, gboolean eraser)
{
  g_return_if_fail (TESSERA_IS_MASK_EDITOR (self));
  self->eraser = eraser;
}

void
tessera_mask_editor_set_editable (TesseraMaskEditor *self, gboolean editable)
{
  g_return_if_fail (TESSERA_IS_MASK_EDITOR (self));
  self->editable = editable;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
tessera_mask_editor_clear (TesseraMaskEditor *self)
{
  g_return_if_fail (TESSERA_IS_MASK_EDITOR (self));
  if (!self->mask)
    return;
  push_undo (self);
  memset (self->mask, 0, (gsize) self->width * self->height);
  mask_changed (self);
}

void
tessera_mask_editor_invert (TesseraMaskEditor *self)
{
  gsize n;

  g_return_if_fail (TESSERA_IS_MASK_EDITOR (self));
  if (!self->mask)
    return;
  push_undo (self);
  n = (gsize) self->width * self->height;
  for (gsize i = 0; i < n; i++)
    self->mask[i] = self->mask[i] ? 0 : 255;
  mask_changed (self);
}

gboolean
tessera_mask_editor_undo (TesseraMaskEditor *self)
{
  g_autoptr (GBytes) prev = NULL;

  g_return_val_if_fail (TESSERA_IS_MASK_EDITOR (self), FALSE);
  prev = g_queue_pop_tail (&self->undo);
  if (!prev || !self->mask)
    return FALSE;
  memcpy (self->mask, g_bytes_get_data (prev, NULL), (gsize) self->width * self->height);
  mask_changed (self);
  return TRUE;
}

gboolean
tessera_mask_editor_can_undo (TesseraMaskEditor *self)
{
  g_return_val_if_fail (TESSERA_IS_MASK_EDITOR (self), FALSE);
  return !g_queue_is_empty (&self->undo);
}

GBytes *
tessera_mask_editor_get_mask (TesseraMaskEditor *self)
{
  g_return_val_if_fail (TESSERA_IS_MASK_EDITOR (self), NULL);
  if (!self->mask)
    return NULL;
  return g_bytes_new (self->mask, (gsize) self->width * self->height);
}

guint
tessera_mask_editor_count_cells (TesseraMaskEditor *self)
{
  guint n = 0;

  g_return_val_if_fail (TESSERA_IS_MASK_EDITOR (self), 0);
  if (!self->cells || !self->cell)
    return 0;
  for (gsize i = 0; i < (gsize) (self->width / self->cell) * (self->height / self->cell); i++)
    n += self->cells[i];
  return n;
}

gboolean
tessera_mask_editor_cell_is_masked (TesseraMaskEditor *self, guint gx, guint gy)
{
  g_return_val_if_fail (TESSERA_IS_MASK_EDITOR (self), FALSE);
  if (!self->cells || !self->cell || gx >= self->width / self->cell || gy >= self->height / self->cell)
    return FALSE;
  return self->cells[gy * (self->width / self->cell) + gx];
}
