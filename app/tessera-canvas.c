/* SPDX-License-Identifier: MIT
 *
 * tessera-canvas.c — GTK 4.8 has no way to ask the renderer for nearest-neighbour
 * scaling (gtk_snapshot_append_scaled_texture is 4.10), so a texture is drawn through a
 * cairo node: the image is downloaded once into a cairo surface, and only the visible part
 * of the widget is painted, with CAIRO_FILTER_NEAREST when scaling up and
 * CAIRO_FILTER_GOOD when scaling down. Other paintables are drawn as GtkPicture would.
 * The zoom buttons and the heat map's legend are two on-screen-display children, laid out
 * in the bottom corners.
 */
#include "tessera-canvas.h"

#include <glib/gi18n.h>
#include <math.h>

#include "tessera-preview.h"

#define MIN_SCALE (1.0 / 16)
#define MAX_SCALE 64.0
#define OSD_MARGIN 12

struct _TesseraCanvas
{
  GtkWidget parent_instance;

  GdkPaintable *paintable;
  cairo_surface_t *surface; /* the texture's pixels, NULL for other paintables */
  int iw, ih;
  gboolean fit;
  double scale;      /* when not fitting */
  double cx, cy;     /* the image point at the widget's middle, when not fitting */
  double drag_cx, drag_cy;
  double pinch_scale; /* the scale when a pinch began */

  gboolean show_controls;
  GtkWidget *zoom_box;
  GtkLabel *zoom_label;
  GtkWidget *legend;
};

enum {
  PROP_0,
  PROP_PAINTABLE,
  PROP_SCALE,
  PROP_SHOW_CONTROLS,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

G_DEFINE_FINAL_TYPE (TesseraCanvas, tessera_canvas, GTK_TYPE_WIDGET)

cairo_surface_t *
tessera_surface_from_texture (GdkTexture *texture)
{
  cairo_surface_t *surface;

  g_return_val_if_fail (GDK_IS_TEXTURE (texture), NULL);
  surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, gdk_texture_get_width (texture),
                                        gdk_texture_get_height (texture));
  gdk_texture_download (texture, cairo_image_surface_get_data (surface), cairo_image_surface_get_stride (surface));
  cairo_surface_mark_dirty (surface);
  return surface;
}

void
tessera_snapshot_surface (GtkSnapshot *snapshot, cairo_surface_t *surface, const graphene_rect_t *dest,
                          const graphene_rect_t *clip)
{
  int sw = cairo_image_surface_get_width (surface);
  double s = sw > 0 ? dest->size.width / sw : 1;
  /* Whole widget pixels, so that the cairo node is not resampled again. */
  graphene_rect_t px = GRAPHENE_RECT_INIT (floor (clip->origin.x), floor (clip->origin.y),
                                           ceil (clip->origin.x + clip->size.width) - floor (clip->origin.x),
                                           ceil (clip->origin.y + clip->size.height) - floor (clip->origin.y));
  cairo_t *cr;
  cairo_pattern_t *pattern;

  if (px.size.width <= 0 || px.size.height <= 0)
    return;
  cr = gtk_snapshot_append_cairo (snapshot, &px);
  cairo_rectangle (cr, clip->origin.x, clip->origin.y, clip->size.width, clip->size.height);
  cairo_clip (cr);
  cairo_translate (cr, dest->origin.x, dest->origin.y);
  cairo_scale (cr, s, dest->size.height / cairo_image_surface_get_height (surface));
  cairo_set_source_surface (cr, surface, 0, 0);
  pattern = cairo_get_source (cr);
  cairo_pattern_set_filter (pattern, s > 1.0 ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
  cairo_pattern_set_extend (pattern, CAIRO_EXTEND_PAD);
  cairo_paint (cr);
  cairo_destroy (cr);
}

static double
fit_scale (TesseraCanvas *self)
{
  int w = gtk_widget_get_width (GTK_WIDGET (self)), h = gtk_widget_get_height (GTK_WIDGET (self));

  if (self->iw <= 0 || self->ih <= 0 || w <= 0 || h <= 0)
    return 0;
  return MIN ((double) w / self->iw, (double) h / self->ih);
}

double
tessera_canvas_get_scale (TesseraCanvas *self)
{
  g_return_val_if_fail (TESSERA_IS_CANVAS (self), 0);
  if (!self->paintable)
    return 0;
  return self->fit ? fit_scale (self) : self->scale;
}

gboolean
tessera_canvas_get_fit (TesseraCanvas *self)
{
  g_return_val_if_fail (TESSERA_IS_CANVAS (self), TRUE);
  return self->fit;
}

gboolean
tessera_canvas_get_nearest (TesseraCanvas *self)
{
  g_return_val_if_fail (TESSERA_IS_CANVAS (self), FALSE);
  return self->surface != NULL && tessera_canvas_get_scale (self) > 1.0;
}

gboolean
tessera_canvas_get_legend_visible (TesseraCanvas *self)
{
  g_return_val_if_fail (TESSERA_IS_CANVAS (self), FALSE);
  return gtk_widget_get_visible (self->legend);
}

/* Keeps the image over the widget: a side larger than the widget may not leave a gap,
 * a smaller one is centred. */
static void
clamp_centre (TesseraCanvas *self)
{
  double w = gtk_widget_get_width (GTK_WIDGET (self)), h = gtk_widget_get_height (GTK_WIDGET (self));
  double hw = w / 2 / self->scale, hh = h / 2 / self->scale;

  if (self->fit || w <= 0 || h <= 0)
    return;
  self->cx = self->iw <= 2 * hw ? self->iw / 2.0 : CLAMP (self->cx, hw, self->iw - hw);
  self->cy = self->ih <= 2 * hh ? self->ih / 2.0 : CLAMP (self->cy, hh, self->ih - hh);
}

/* Where the image's top-left corner lies in the widget, at scale s. */
static void
get_origin (TesseraCanvas *self, double s, double *ox, double *oy)
{
  double w = gtk_widget_get_width (GTK_WIDGET (self)), h = gtk_widget_get_height (GTK_WIDGET (self));

  if (self->fit)
    {
      *ox = (w - self->iw * s) / 2;
      *oy = (h - self->ih * s) / 2;
    }
  else
    {
      *ox = w / 2 - self->cx * s;
      *oy = h / 2 - self->cy * s;
    }
}

static void
update_osd (TesseraCanvas *self)
{
  double s = tessera_canvas_get_scale (self);
  g_autofree char *text = g_strdup_printf ("%.0f %%", s * 100);

  gtk_label_set_label (self->zoom_label, text);
  gtk_widget_set_visible (self->zoom_box, self->paintable != NULL && self->show_controls);
  gtk_widget_set_visible (self->legend, self->paintable && tessera_preview_is_heat_map (self->paintable));
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "canvas.zoom-fit", self->paintable && !self->fit);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "canvas.zoom-in", self->paintable && s < MAX_SCALE);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "canvas.zoom-out", self->paintable && s > MIN_SCALE);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "canvas.zoom-original", self->paintable != NULL);
}

static void
scale_changed (TesseraCanvas *self)
{
  update_osd (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_SCALE]);
}

void
tessera_canvas_zoom_fit (TesseraCanvas *self)
{
  g_return_if_fail (TESSERA_IS_CANVAS (self));
  self->fit = TRUE;
  scale_changed (self);
}

void
tessera_canvas_zoom_to (TesseraCanvas *self, double scale, double x, double y)
{
  double w, h, s, ox, oy, ix, iy;

  g_return_if_fail (TESSERA_IS_CANVAS (self));
  if (!self->paintable || self->iw <= 0)
    return;
  w = gtk_widget_get_width (GTK_WIDGET (self));
  h = gtk_widget_get_height (GTK_WIDGET (self));
  if (x < 0)
    {
      x = w / 2;
      y = h / 2;
    }
  s = tessera_canvas_get_scale (self);
  if (s <= 0)
    s = 1;
  get_origin (self, s, &ox, &oy);
  ix = (x - ox) / s;
  iy = (y - oy) / s;
  self->fit = FALSE;
  self->scale = CLAMP (scale, MIN_SCALE, MAX_SCALE);
  /* The image point (ix, iy) stays under (x, y). */
  self->cx = ix + (w / 2 - x) / self->scale;
  self->cy = iy + (h / 2 - y) / self->scale;
  clamp_centre (self);
  scale_changed (self);
}

void
tessera_canvas_zoom_step (TesseraCanvas *self, int direction)
{
  static const double ladder[] = { 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0 / 3, 0.5, 2.0 / 3, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64 };
  double s;
  double next;

  g_return_if_fail (TESSERA_IS_CANVAS (self));
  s = tessera_canvas_get_scale (self);
  if (s <= 0)
    return;
  next = direction > 0 ? MAX_SCALE : MIN_SCALE;
  if (direction > 0)
    {
      for (guint i = 0; i < G_N_ELEMENTS (ladder); i++)
        if (ladder[i] > s * 1.001)
          {
            next = ladder[i];
            break;
          }
    }
  else
    for (int i = G_N_ELEMENTS (ladder) - 1; i >= 0; i--)
      if (ladder[i] < s / 1.001)
        {
          next = ladder[i];
          break;
        }
  tessera_canvas_zoom_to (self, next, -1, -1);
}

static void
set_image (TesseraCanvas *self, GdkPaintable *paintable)
{
  int iw = 0, ih = 0;

  g_clear_pointer (&self->surface, cairo_surface_destroy);
  if (paintable)
    {
      iw = gdk_paintable_get_intrinsic_width (paintable);
      ih = gdk_paintable_get_intrinsic_height (paintable);
    }
  if (GDK_IS_TEXTURE (paintable) && iw > 0 && ih > 0)
    self->surface = tessera_surface_from_texture (GDK_TEXTURE (paintable));
  /* A picture of the same shape keeps the view: the next step of the preview, or the
   * finished image after the preview (512 px of token blocks for a 128 px image), shows
   * the same part at the same size on screen. Another shape starts fitted. */
  if (!self->fit && self->iw > 0 && iw > 0 && (gint64) iw * self->ih == (gint64) ih * self->iw)
    {
      double k = (double) iw / self->iw;

      self->scale = CLAMP (self->scale / k, MIN_SCALE, MAX_SCALE);
      self->cx *= k;
      self->cy *= k;
    }
  else if (iw != self->iw || ih != self->ih)
    self->fit = TRUE;
  self->iw = iw;
  self->ih = ih;
}

void
tessera_canvas_set_paintable (TesseraCanvas *self, GdkPaintable *paintable)
{
  g_return_if_fail (TESSERA_IS_CANVAS (self));
  g_return_if_fail (paintable == NULL || GDK_IS_PAINTABLE (paintable));

  if (self->paintable)
    g_signal_handlers_disconnect_by_data (self->paintable, self);
  g_set_object (&self->paintable, paintable);
  if (paintable)
    g_signal_connect_swapped (paintable, "invalidate-contents", G_CALLBACK (gtk_widget_queue_draw), self);
  set_image (self, paintable);
  update_osd (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_PAINTABLE]);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_SCALE]);
}

GdkPaintable *
tessera_canvas_get_paintable (TesseraCanvas *self)
{
  g_return_val_if_fail (TESSERA_IS_CANVAS (self), NULL);
  return self->paintable;
}

static void
tessera_canvas_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  TesseraCanvas *self = TESSERA_CANVAS (widget);
  double w = gtk_widget_get_width (widget), h = gtk_widget_get_height (widget);
  double s = tessera_canvas_get_scale (self), ox, oy;
  graphene_rect_t img, view, vis;

  if (self->paintable && s > 0)
    {
      get_origin (self, s, &ox, &oy);
      img = GRAPHENE_RECT_INIT (ox, oy, self->iw * s, self->ih * s);
      view = GRAPHENE_RECT_INIT (0, 0, w, h);
      if (self->surface && graphene_rect_intersection (&img, &view, &vis))
        tessera_snapshot_surface (snapshot, self->surface, &img, &vis);
      else if (!self->surface)
        {
          gtk_snapshot_push_clip (snapshot, &GRAPHENE_RECT_INIT (0, 0, w, h));
          gtk_snapshot_save (snapshot);
          gtk_snapshot_translate (snapshot, &GRAPHENE_POINT_INIT (ox, oy));
          gdk_paintable_snapshot (self->paintable, snapshot, img.size.width, img.size.height);
          gtk_snapshot_restore (snapshot);
          gtk_snapshot_pop (snapshot);
        }
    }
  gtk_widget_snapshot_child (widget, self->legend, snapshot);
  gtk_widget_snapshot_child (widget, self->zoom_box, snapshot);
}

static void
tessera_canvas_measure (GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum, int *natural,
                        int *minimum_baseline, int *natural_baseline)
{
  (void) widget;
  (void) orientation;
  (void) for_size;
  *minimum = 32;
  *natural = 256;
  *minimum_baseline = *natural_baseline = -1;
}

static void
place_osd (GtkWidget *child, int width, int height, gboolean right)
{
  int w, h;

  if (!gtk_widget_should_layout (child))
    return;
  gtk_widget_measure (child, GTK_ORIENTATION_HORIZONTAL, -1, NULL, &w, NULL, NULL);
  gtk_widget_measure (child, GTK_ORIENTATION_VERTICAL, w, NULL, &h, NULL, NULL);
  w = MIN (w, MAX (0, width - 2 * OSD_MARGIN));
  gtk_widget_size_allocate (child,
                            &(GtkAllocation) { .x = right ? width - w - OSD_MARGIN : OSD_MARGIN,
                                               .y = height - h - OSD_MARGIN, .width = w, .height = h },
                            -1);
}

static void
tessera_canvas_size_allocate (GtkWidget *widget, int width, int height, int baseline)
{
  TesseraCanvas *self = TESSERA_CANVAS (widget);

  (void) baseline;
  clamp_centre (self);
  /* First: the fitted scale's label, and which children show. */
  update_osd (self);
  place_osd (self->zoom_box, width, height, TRUE);
  place_osd (self->legend, width, height, FALSE);
}

/* ---- input ---- */

static gboolean
on_scroll (GtkEventControllerScroll *controller, double dx, double dy, TesseraCanvas *self)
{
  GdkModifierType mods = gtk_event_controller_get_current_event_state (GTK_EVENT_CONTROLLER (controller));
  double s = tessera_canvas_get_scale (self);

  if (!self->paintable || s <= 0)
    return FALSE;
  if (mods & GDK_CONTROL_MASK)
    {
      double x = -1, y = -1;
      GdkEvent *event = gtk_event_controller_get_current_event (GTK_EVENT_CONTROLLER (controller));

      if (event)
        {
          gdk_event_get_position (event, &x, &y);
          gtk_widget_translate_coordinates (GTK_WIDGET (gtk_native_get_for_surface (gdk_event_get_surface (event))),
                                            GTK_WIDGET (self), x, y, &x, &y);
        }
      tessera_canvas_zoom_to (self, s * pow (1.25, -dy), x, y);
      return TRUE;
    }
  if (self->fit)
    return FALSE;
  self->cx += dx * 32 / s;
  self->cy += dy * 32 / s;
  clamp_centre (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  return TRUE;
}

static void
on_drag_begin (GtkGestureDrag *gesture, double x, double y, TesseraCanvas *self)
{
  (void) x;
  (void) y;
  if (self->fit || !self->paintable)
    {
      gtk_gesture_set_state (GTK_GESTURE (gesture), GTK_EVENT_SEQUENCE_DENIED);
      return;
    }
  self->drag_cx = self->cx;
  self->drag_cy = self->cy;
  gtk_widget_set_cursor_from_name (GTK_WIDGET (self), "grabbing");
}

static void
on_drag_update (GtkGestureDrag *gesture, double dx, double dy, TesseraCanvas *self)
{
  (void) gesture;
  if (self->fit || self->scale <= 0)
    return;
  self->cx = self->drag_cx - dx / self->scale;
  self->cy = self->drag_cy - dy / self->scale;
  clamp_centre (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_drag_end (GtkGestureDrag *gesture, double dx, double dy, TesseraCanvas *self)
{
  (void) gesture;
  (void) dx;
  (void) dy;
  gtk_widget_set_cursor (GTK_WIDGET (self), NULL);
}

static void
on_zoom_begin (GtkGesture *gesture, GdkEventSequence *sequence, TesseraCanvas *self)
{
  (void) gesture;
  (void) sequence;
  self->pinch_scale = tessera_canvas_get_scale (self);
}

static void
on_zoom_gesture (GtkGestureZoom *gesture, double delta, TesseraCanvas *self)
{
  double x, y;

  if (self->pinch_scale <= 0 || !gtk_gesture_get_bounding_box_center (GTK_GESTURE (gesture), &x, &y))
    return;
  tessera_canvas_zoom_to (self, self->pinch_scale * delta, x, y);
}

static void
zoom_action (GtkWidget *widget, const char *name, GVariant *param)
{
  TesseraCanvas *self = TESSERA_CANVAS (widget);

  (void) param;
  if (g_str_equal (name, "canvas.zoom-in"))
    tessera_canvas_zoom_step (self, +1);
  else if (g_str_equal (name, "canvas.zoom-out"))
    tessera_canvas_zoom_step (self, -1);
  else if (g_str_equal (name, "canvas.zoom-original"))
    tessera_canvas_zoom_to (self, 1, -1, -1);
  else
    tessera_canvas_zoom_fit (self);
}

/* ---- the on-screen children ---- */

static GtkWidget *
osd_button (const char *icon, const char *tooltip, const char *action)
{
  GtkWidget *b = gtk_button_new_from_icon_name (icon);

  gtk_widget_set_tooltip_text (b, tooltip);
  gtk_actionable_set_action_name (GTK_ACTIONABLE (b), action);
  return b;
}

static GtkWidget *
make_zoom_box (TesseraCanvas *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 0);
  GtkWidget *label = gtk_label_new ("100 %");

  gtk_widget_add_css_class (box, "osd");
  gtk_widget_add_css_class (box, "toolbar");
  gtk_widget_add_css_class (box, "tessera-canvas-osd");
  gtk_box_append (GTK_BOX (box), osd_button ("zoom-out-symbolic", _("Zoom Out"), "canvas.zoom-out"));
  gtk_label_set_width_chars (GTK_LABEL (label), 6);
  gtk_widget_add_css_class (label, "numeric");
  gtk_box_append (GTK_BOX (box), label);
  gtk_box_append (GTK_BOX (box), osd_button ("zoom-in-symbolic", _("Zoom In"), "canvas.zoom-in"));
  gtk_box_append (GTK_BOX (box), osd_button ("zoom-original-symbolic", _("Actual Size"), "canvas.zoom-original"));
  gtk_box_append (GTK_BOX (box), osd_button ("zoom-fit-best-symbolic", _("Fit to Window"), "canvas.zoom-fit"));
  self->zoom_label = GTK_LABEL (label);
  return box;
}

GtkWidget *
tessera_heat_legend_new (void)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *ramp = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 0);
  GtkWidget *lo = gtk_label_new (C_ ("confidence legend", "Unsure"));
  GtkWidget *hi = gtk_label_new (C_ ("confidence legend", "Sure"));

  gtk_widget_add_css_class (box, "osd");
  gtk_widget_add_css_class (box, "tessera-canvas-osd");
  gtk_widget_add_css_class (box, "tessera-heat-legend");
  gtk_widget_add_css_class (ramp, "tessera-heat-ramp");
  gtk_widget_set_valign (ramp, GTK_ALIGN_CENTER);
  gtk_widget_set_tooltip_text (box, _("The model’s confidence in each token, relative to the others at this step"));
  gtk_box_append (GTK_BOX (box), lo);
  gtk_box_append (GTK_BOX (box), ramp);
  gtk_box_append (GTK_BOX (box), hi);
  return box;
}

/* ---- GObject ---- */

static void
tessera_canvas_dispose (GObject *object)
{
  TesseraCanvas *self = TESSERA_CANVAS (object);

  if (self->paintable)
    g_signal_handlers_disconnect_by_data (self->paintable, self);
  g_clear_object (&self->paintable);
  g_clear_pointer (&self->surface, cairo_surface_destroy);
  g_clear_pointer (&self->zoom_box, gtk_widget_unparent);
  g_clear_pointer (&self->legend, gtk_widget_unparent);
  G_OBJECT_CLASS (tessera_canvas_parent_class)->dispose (object);
}

static void
tessera_canvas_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  TesseraCanvas *self = TESSERA_CANVAS (object);

  switch (prop_id)
    {
    case PROP_PAINTABLE:
      g_value_set_object (value, self->paintable);
      break;
    case PROP_SCALE:
      g_value_set_double (value, tessera_canvas_get_scale (self));
      break;
    case PROP_SHOW_CONTROLS:
      g_value_set_boolean (value, self->show_controls);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tessera_canvas_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  TesseraCanvas *self = TESSERA_CANVAS (object);

  switch (prop_id)
    {
    case PROP_PAINTABLE:
      tessera_canvas_set_paintable (self, g_value_get_object (value));
      break;
    case PROP_SHOW_CONTROLS:
      self->show_controls = g_value_get_boolean (value);
      update_osd (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tessera_canvas_class_init (TesseraCanvasClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tessera_canvas_dispose;
  object_class->get_property = tessera_canvas_get_property;
  object_class->set_property = tessera_canvas_set_property;
  widget_class->snapshot = tessera_canvas_snapshot;
  widget_class->measure = tessera_canvas_measure;
  widget_class->size_allocate = tessera_canvas_size_allocate;

  props[PROP_PAINTABLE] = g_param_spec_object ("paintable", NULL, NULL, GDK_TYPE_PAINTABLE,
                                               G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  props[PROP_SCALE] = g_param_spec_double ("scale", NULL, NULL, 0, MAX_SCALE, 0,
                                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  /* The zoom buttons; Ctrl+scroll and dragging work without them. */
  props[PROP_SHOW_CONTROLS] = g_param_spec_boolean ("show-controls", NULL, NULL, TRUE,
                                                    G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  gtk_widget_class_install_action (widget_class, "canvas.zoom-in", NULL, zoom_action);
  gtk_widget_class_install_action (widget_class, "canvas.zoom-out", NULL, zoom_action);
  gtk_widget_class_install_action (widget_class, "canvas.zoom-original", NULL, zoom_action);
  gtk_widget_class_install_action (widget_class, "canvas.zoom-fit", NULL, zoom_action);
  gtk_widget_class_set_css_name (widget_class, "tessera-canvas");
}

static void
tessera_canvas_init (TesseraCanvas *self)
{
  GtkEventController *scroll = gtk_event_controller_scroll_new (GTK_EVENT_CONTROLLER_SCROLL_VERTICAL |
                                                                GTK_EVENT_CONTROLLER_SCROLL_HORIZONTAL);
  GtkGesture *drag = gtk_gesture_drag_new ();
  GtkGesture *zoom = gtk_gesture_zoom_new ();

  self->fit = TRUE;
  self->scale = 1;
  self->show_controls = TRUE;
  gtk_widget_set_overflow (GTK_WIDGET (self), GTK_OVERFLOW_HIDDEN);
  self->zoom_box = make_zoom_box (self);
  gtk_widget_set_parent (self->zoom_box, GTK_WIDGET (self));
  self->legend = tessera_heat_legend_new ();
  gtk_widget_set_parent (self->legend, GTK_WIDGET (self));

  g_signal_connect (scroll, "scroll", G_CALLBACK (on_scroll), self);
  gtk_widget_add_controller (GTK_WIDGET (self), scroll);
  g_signal_connect (drag, "drag-begin", G_CALLBACK (on_drag_begin), self);
  g_signal_connect (drag, "drag-update", G_CALLBACK (on_drag_update), self);
  g_signal_connect (drag, "drag-end", G_CALLBACK (on_drag_end), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drag));
  g_signal_connect (zoom, "begin", G_CALLBACK (on_zoom_begin), self);
  g_signal_connect (zoom, "scale-changed", G_CALLBACK (on_zoom_gesture), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (zoom));
  update_osd (self);
}

GtkWidget *
tessera_canvas_new (void)
{
  return g_object_new (TESSERA_TYPE_CANVAS, NULL);
}
