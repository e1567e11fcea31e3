/* SPDX-License-Identifier: MIT
 *
 * tessera-image-viewer.c — the full-size viewer. It reads the whole file (the gallery's
 * items hold only a thumbnail) when an image is shown; the list it walks is the gallery's
 * filtered, sorted model, so the search applies. When that list changes under it, it
 * follows the image it shows; when that image is deleted, it shows the one that took its
 * place (the next).
 */
#include "tessera-image-viewer.h"

#include <glib/gi18n.h>
#include <string.h>

#include "tessera-gallery-item.h"

struct _TesseraImageViewer
{
  GtkWidget parent_instance;

  GtkWidget *box;
  GtkLabel *title;
  GtkLabel *counter;
  TesseraCanvas *canvas;
  GListModel *model;
  guint position;
  GFile *shown;
};

enum {
  PROP_0,
  PROP_POSITION,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

enum {
  SIGNAL_CLOSE,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (TesseraImageViewer, tessera_image_viewer, GTK_TYPE_WIDGET)

static void
update_buttons (TesseraImageViewer *self)
{
  guint n = self->model ? g_list_model_get_n_items (self->model) : 0;

  gtk_widget_action_set_enabled (GTK_WIDGET (self), "viewer.previous", n > 0 && self->position > 0);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "viewer.next", n > 0 && self->position + 1 < n);
}

static void
show_position (TesseraImageViewer *self)
{
  guint n = self->model ? g_list_model_get_n_items (self->model) : 0;
  g_autoptr (TesseraGalleryItem) item = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *base = NULL;
  g_autofree char *count = NULL;
  GFile *file;

  update_buttons (self);
  if (n == 0)
    {
      g_clear_object (&self->shown);
      tessera_canvas_set_paintable (self->canvas, NULL);
      gtk_label_set_label (self->title, "");
      gtk_label_set_label (self->counter, "");
      return;
    }
  self->position = MIN (self->position, n - 1);
  item = g_list_model_get_item (self->model, self->position);
  file = tessera_gallery_item_get_file (item);
  /* Translators: the viewer's place in the gallery, "3 of 12" */
  count = g_strdup_printf (_("%u of %u"), self->position + 1, n);
  gtk_label_set_label (self->counter, count);
  if (self->shown && g_file_equal (self->shown, file))
    return;
  g_set_object (&self->shown, file);
  base = g_file_get_basename (file);
  gtk_label_set_label (self->title, base);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->title), base);
  texture = gdk_texture_new_from_file (file, &error);
  if (!texture)
    g_debug ("viewer: %s: %s", base, error->message);
  tessera_canvas_set_paintable (self->canvas, GDK_PAINTABLE (texture));
}

/* The image shown stays shown where it moved to (a new image saved before it); when it
 * is gone, its place holds the next one. */
static void
on_items_changed (TesseraImageViewer *self)
{
  guint n = g_list_model_get_n_items (self->model);

  for (guint i = 0; self->shown && i < n; i++)
    {
      g_autoptr (TesseraGalleryItem) item = g_list_model_get_item (self->model, i);

      if (g_file_equal (tessera_gallery_item_get_file (item), self->shown))
        {
          if (i != self->position)
            {
              self->position = i;
              g_object_notify_by_pspec (G_OBJECT (self), props[PROP_POSITION]);
            }
          break;
        }
    }
  show_position (self);
}

void
tessera_image_viewer_set_model (TesseraImageViewer *self, GListModel *model)
{
  g_return_if_fail (TESSERA_IS_IMAGE_VIEWER (self));
  g_return_if_fail (model == NULL || G_IS_LIST_MODEL (model));

  if (self->model)
    g_signal_handlers_disconnect_by_data (self->model, self);
  g_set_object (&self->model, model);
  if (model)
    g_signal_connect_swapped (model, "items-changed", G_CALLBACK (on_items_changed), self);
  g_clear_object (&self->shown);
  show_position (self);
}

void
tessera_image_viewer_set_position (TesseraImageViewer *self, guint position)
{
  g_return_if_fail (TESSERA_IS_IMAGE_VIEWER (self));
  self->position = position;
  show_position (self);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_POSITION]);
}

guint
tessera_image_viewer_get_position (TesseraImageViewer *self)
{
  g_return_val_if_fail (TESSERA_IS_IMAGE_VIEWER (self), 0);
  return self->position;
}

gboolean
tessera_image_viewer_step (TesseraImageViewer *self, int delta)
{
  guint n;
  gint64 next;

  g_return_val_if_fail (TESSERA_IS_IMAGE_VIEWER (self), FALSE);
  n = self->model ? g_list_model_get_n_items (self->model) : 0;
  next = (gint64) self->position + delta;
  if (next < 0 || next >= n)
    return FALSE;
  tessera_image_viewer_set_position (self, (guint) next);
  return TRUE;
}

TesseraCanvas *
tessera_image_viewer_get_canvas (TesseraImageViewer *self)
{
  g_return_val_if_fail (TESSERA_IS_IMAGE_VIEWER (self), NULL);
  return self->canvas;
}

static void
viewer_action (GtkWidget *widget, const char *name, GVariant *param)
{
  TesseraImageViewer *self = TESSERA_IMAGE_VIEWER (widget);

  (void) param;
  if (g_str_equal (name, "viewer.previous"))
    tessera_image_viewer_step (self, -1);
  else if (g_str_equal (name, "viewer.next"))
    tessera_image_viewer_step (self, +1);
  else
    g_signal_emit (self, signals[SIGNAL_CLOSE], 0);
}

static GtkWidget *
bar_button (const char *icon, const char *tooltip, const char *action)
{
  GtkWidget *b = gtk_button_new_from_icon_name (icon);

  gtk_widget_set_tooltip_text (b, tooltip);
  gtk_actionable_set_action_name (GTK_ACTIONABLE (b), action);
  gtk_widget_set_valign (b, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (b, "flat");
  return b;
}

static void
tessera_image_viewer_dispose (GObject *object)
{
  TesseraImageViewer *self = TESSERA_IMAGE_VIEWER (object);

  if (self->model)
    g_signal_handlers_disconnect_by_data (self->model, self);
  g_clear_object (&self->model);
  g_clear_object (&self->shown);
  g_clear_pointer (&self->box, gtk_widget_unparent);
  G_OBJECT_CLASS (tessera_image_viewer_parent_class)->dispose (object);
}

static void
tessera_image_viewer_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  TesseraImageViewer *self = TESSERA_IMAGE_VIEWER (object);

  switch (prop_id)
    {
    case PROP_POSITION:
      g_value_set_uint (value, self->position);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

/* The zoom keys are bound here, where the focus is, and passed on to the canvas's own
 * actions: a binding looks for its action on this widget and its ancestors, not below. */
static void
forward_zoom (GtkWidget *widget, const char *name, GVariant *param)
{
  TesseraImageViewer *self = TESSERA_IMAGE_VIEWER (widget);

  g_autofree char *canvas_action = g_strconcat ("canvas.", name + strlen ("viewer."), NULL);

  gtk_widget_activate_action_variant (GTK_WIDGET (self->canvas), canvas_action, param);
}

static void
tessera_image_viewer_class_init (TesseraImageViewerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tessera_image_viewer_dispose;
  object_class->get_property = tessera_image_viewer_get_property;
  props[PROP_POSITION] = g_param_spec_uint ("position", NULL, NULL, 0, G_MAXUINT, 0,
                                            G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);
  signals[SIGNAL_CLOSE] = g_signal_new ("close", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                        NULL, G_TYPE_NONE, 0);

  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "tessera-image-viewer");
  gtk_widget_class_install_action (widget_class, "viewer.previous", NULL, viewer_action);
  gtk_widget_class_install_action (widget_class, "viewer.next", NULL, viewer_action);
  gtk_widget_class_install_action (widget_class, "viewer.close", NULL, viewer_action);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Left, 0, "viewer.previous", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Page_Up, 0, "viewer.previous", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Right, 0, "viewer.next", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Page_Down, 0, "viewer.next", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "viewer.close", NULL);
  for (const char *const *a = (const char *const[]) { "viewer.zoom-in", "viewer.zoom-out", "viewer.zoom-fit",
                                                     "viewer.zoom-original", NULL };
       *a; a++)
    gtk_widget_class_install_action (widget_class, *a, NULL, forward_zoom);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_plus, 0, "viewer.zoom-in", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_equal, 0, "viewer.zoom-in", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_KP_Add, 0, "viewer.zoom-in", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_minus, 0, "viewer.zoom-out", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_KP_Subtract, 0, "viewer.zoom-out", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_0, 0, "viewer.zoom-fit", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_1, 0, "viewer.zoom-original", NULL);
}

static void
tessera_image_viewer_init (TesseraImageViewer *self)
{
  GtkWidget *bar = gtk_center_box_new ();
  GtkWidget *start = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 0);
  GtkWidget *titles = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  GtkWidget *end = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 0);

  gtk_widget_set_focusable (GTK_WIDGET (self), TRUE);
  self->box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  gtk_widget_set_parent (self->box, GTK_WIDGET (self));

  gtk_widget_add_css_class (bar, "toolbar");
  gtk_box_append (GTK_BOX (start), bar_button ("go-previous-symbolic", _("Previous Image"), "viewer.previous"));
  gtk_box_append (GTK_BOX (start), bar_button ("go-next-symbolic", _("Next Image"), "viewer.next"));
  gtk_center_box_set_start_widget (GTK_CENTER_BOX (bar), start);

  self->title = GTK_LABEL (gtk_label_new (""));
  gtk_label_set_ellipsize (self->title, PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_add_css_class (GTK_WIDGET (self->title), "heading");
  self->counter = GTK_LABEL (gtk_label_new (""));
  gtk_widget_add_css_class (GTK_WIDGET (self->counter), "dim-label");
  gtk_widget_add_css_class (GTK_WIDGET (self->counter), "caption");
  gtk_widget_add_css_class (GTK_WIDGET (self->counter), "numeric");
  gtk_box_append (GTK_BOX (titles), GTK_WIDGET (self->title));
  gtk_box_append (GTK_BOX (titles), GTK_WIDGET (self->counter));
  gtk_widget_set_valign (titles, GTK_ALIGN_CENTER);
  gtk_center_box_set_center_widget (GTK_CENTER_BOX (bar), titles);

  gtk_box_append (GTK_BOX (end), bar_button ("window-close-symbolic", _("Back to the Gallery"), "viewer.close"));
  gtk_center_box_set_end_widget (GTK_CENTER_BOX (bar), end);
  gtk_box_append (GTK_BOX (self->box), bar);
  gtk_box_append (GTK_BOX (self->box), gtk_separator_new (GTK_ORIENTATION_HORIZONTAL));

  self->canvas = TESSERA_CANVAS (tessera_canvas_new ());
  gtk_widget_set_vexpand (GTK_WIDGET (self->canvas), TRUE);
  gtk_widget_set_hexpand (GTK_WIDGET (self->canvas), TRUE);
  gtk_widget_add_css_class (GTK_WIDGET (self->canvas), "tessera-viewer-canvas");
  gtk_box_append (GTK_BOX (self->box), GTK_WIDGET (self->canvas));
  update_buttons (self);
}
