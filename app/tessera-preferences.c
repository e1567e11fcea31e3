/* SPDX-License-Identifier: MIT
 *
 * tessera-preferences.c — the preferences window. Everything writes GSettings straight
 * away; the main window reacts to the changes. The compute device list is the engine's:
 * "auto", every Vulkan device ts_vulkan_list_devices reports (as "vulkan:N"), "cpu" and
 * "cpu-ref".
 */
#include "tessera-preferences.h"

#include <glib/gi18n.h>

#include "tessera-engine-types.h"

struct _TesseraPreferences
{
  AdwPreferencesWindow parent_instance;

  AdwActionRow *model_row;
  AdwActionRow *gallery_row;
  AdwComboRow *backend_row;
  AdwActionRow *demo_row;
  GtkAdjustment *threads_adjustment;
  AdwComboRow *precision_row;

  GSettings *settings;
  GtkFileChooserNative *chooser;
  GPtrArray *backends; /* backend names, parallel to backend_row's model */
  GtkStringList *backend_labels;
};

G_DEFINE_FINAL_TYPE (TesseraPreferences, tessera_preferences, ADW_TYPE_PREFERENCES_WINDOW)

static void
add_backend (TesseraPreferences *self, const char *name, const char *label)
{
  g_ptr_array_add (self->backends, g_strdup (name));
  gtk_string_list_append (self->backend_labels, label);
}

static void
fill_backends (TesseraPreferences *self)
{
  ts_vk_device_info devices[16];
  ts_error err;
  int n = 0;

  add_backend (self, "auto", _("Automatic"));
  if (ts_vulkan_list_devices (devices, G_N_ELEMENTS (devices), &n, &err) == TS_OK)
    for (int i = 0; i < MIN (n, (int) G_N_ELEMENTS (devices)); i++)
      {
        g_autofree char *name = g_strdup_printf ("vulkan:%d", i);
        g_autofree char *label = NULL;

        /* A CPU-type device (Mesa's llvmpipe) runs the shaders in software: it is there to
         * test Vulkan, and slower than the processor backend. */
        if (g_strcmp0 (devices[i].type, "cpu") == 0)
          /* Translators: a Vulkan device that is a software renderer (llvmpipe) */
          label = g_strdup_printf (_("%s (Vulkan software renderer: slower than Processor)"), devices[i].name);
        else
          /* Translators: a Vulkan device's name and its kind ("discrete", "integrated", …) */
          label = g_strdup_printf (_("%s (Vulkan, %s)"), devices[i].name, devices[i].type);

        add_backend (self, name, label);
      }
  else
    g_debug ("no Vulkan devices: %s", err.message);
  add_backend (self, "cpu", _("Processor"));
  add_backend (self, "cpu-ref", _("Processor (reference, slow)"));
}

static void
update_rows (TesseraPreferences *self)
{
  g_autofree char *model = g_settings_get_string (self->settings, "model-folder");
  g_autofree char *gallery = g_settings_get_string (self->settings, "gallery-folder");
  g_autofree char *backend = g_settings_get_string (self->settings, "backend");

  gtk_widget_set_visible (GTK_WIDGET (self->demo_row), ts_default_model_dir () != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "prefs.use-demo-model", model[0] != '\0');
  if (model[0])
    adw_action_row_set_subtitle (self->model_row, model);
  else if (ts_default_model_dir ())
    adw_action_row_set_subtitle (self->model_row, _("The bundled demo model (synthetic shapes)"));
  else
    adw_action_row_set_subtitle (self->model_row, _("None chosen"));
  if (gallery[0])
    adw_action_row_set_subtitle (self->gallery_row, gallery);
  else
    {
      const char *pictures = g_get_user_special_dir (G_USER_DIRECTORY_PICTURES);
      g_autofree char *def = pictures ? g_build_filename (pictures, "Tessera", NULL)
                                      : g_build_filename (g_get_home_dir (), "Pictures", "Tessera", NULL);
      g_autofree char *text = g_strdup_printf (_("%s (default)"), def);
      adw_action_row_set_subtitle (self->gallery_row, text);
    }
  for (guint i = 0; i < self->backends->len; i++)
    if (g_strcmp0 (backend, self->backends->pdata[i]) == 0)
      {
        if (adw_combo_row_get_selected (self->backend_row) != i)
          adw_combo_row_set_selected (self->backend_row, i);
        return;
      }
  /* A device that is gone (or a name typed elsewhere): show it rather than pretend. */
  {
    g_autofree char *label = g_strdup_printf (_("%s (not available)"), backend);

    add_backend (self, backend, label);
    adw_combo_row_set_selected (self->backend_row, self->backends->len - 1);
  }
}

static void
on_backend_selected (TesseraPreferences *self)
{
  guint i = adw_combo_row_get_selected (self->backend_row);
  g_autofree char *current = g_settings_get_string (self->settings, "backend");

  if (i < self->backends->len && g_strcmp0 (current, self->backends->pdata[i]) != 0)
    g_settings_set_string (self->settings, "backend", self->backends->pdata[i]);
}

static void
chooser_response (GtkNativeDialog *dialog, int response, gpointer user_data)
{
  TesseraPreferences *self = user_data;
  const char *key = g_object_get_data (G_OBJECT (dialog), "tessera-key");

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr (GFile) folder = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      g_autofree char *path = g_file_get_path (folder);

      if (path)
        g_settings_set_string (self->settings, key, path);
      else
        adw_preferences_window_add_toast (ADW_PREFERENCES_WINDOW (self),
                                          adw_toast_new (_("Only local folders can be used")));
    }
  g_clear_object (&self->chooser);
}

static void
choose_folder (TesseraPreferences *self, const char *title, const char *key)
{
  if (self->chooser)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);
  self->chooser = gtk_file_chooser_native_new (title, GTK_WINDOW (self), GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
                                               _("_Select"), NULL);
  g_object_set_data (G_OBJECT (self->chooser), "tessera-key", (gpointer) key);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (self->chooser), TRUE);
  g_signal_connect (self->chooser, "response", G_CALLBACK (chooser_response), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->chooser));
}

static void
choose_model_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) name;
  (void) param;
  choose_folder (TESSERA_PREFERENCES (widget), _("Choose the Meissonic Folder"), "model-folder");
}

static void
choose_gallery_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) name;
  (void) param;
  choose_folder (TESSERA_PREFERENCES (widget), _("Choose the Gallery Folder"), "gallery-folder");
}

/* The bundled demo model is what an empty model folder means. */
static void
use_demo_model_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) name;
  (void) param;
  g_settings_reset (TESSERA_PREFERENCES (widget)->settings, "model-folder");
}

/* The device list's rows wrap rather than cut a long device name off; a check marks the
 * selected one, as in AdwComboRow's own list. */
static void
setup_backend_item (GtkSignalListItemFactory *factory, GtkListItem *item, gpointer user_data)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *label = gtk_label_new (NULL);
  GtkWidget *check = gtk_image_new_from_icon_name ("object-select-symbolic");

  (void) factory;
  (void) user_data;
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_max_width_chars (GTK_LABEL (label), 40);
  gtk_widget_set_hexpand (label, TRUE);
  gtk_box_append (GTK_BOX (box), label);
  gtk_box_append (GTK_BOX (box), check);
  gtk_list_item_set_child (item, box);
}

static void
bind_backend_item (GtkSignalListItemFactory *factory, GtkListItem *item, gpointer user_data)
{
  AdwComboRow *row = user_data;
  GtkStringObject *string = gtk_list_item_get_item (item);
  GtkWidget *box = gtk_list_item_get_child (item);

  (void) factory;
  gtk_label_set_label (GTK_LABEL (gtk_widget_get_first_child (box)), gtk_string_object_get_string (string));
  gtk_widget_set_opacity (gtk_widget_get_last_child (box),
                          adw_combo_row_get_selected (row) == gtk_list_item_get_position (item) ? 1 : 0);
}

static void
reset_gallery_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) name;
  (void) param;
  g_settings_reset (TESSERA_PREFERENCES (widget)->settings, "gallery-folder");
}

static void
tessera_preferences_dispose (GObject *object)
{
  TesseraPreferences *self = TESSERA_PREFERENCES (object);

  if (self->chooser)
    gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->chooser));
  g_clear_object (&self->chooser);
  gtk_widget_dispose_template (GTK_WIDGET (self), TESSERA_TYPE_PREFERENCES);
  g_clear_object (&self->settings);
  g_clear_object (&self->backend_labels);
  g_clear_pointer (&self->backends, g_ptr_array_unref);
  G_OBJECT_CLASS (tessera_preferences_parent_class)->dispose (object);
}

static void
tessera_preferences_class_init (TesseraPreferencesClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tessera_preferences_dispose;
  gtk_widget_class_set_template_from_resource (widget_class, APP_RESOURCE_PATH "/tessera-preferences.ui");
  gtk_widget_class_bind_template_child (widget_class, TesseraPreferences, model_row);
  gtk_widget_class_bind_template_child (widget_class, TesseraPreferences, gallery_row);
  gtk_widget_class_bind_template_child (widget_class, TesseraPreferences, backend_row);
  gtk_widget_class_bind_template_child (widget_class, TesseraPreferences, demo_row);
  gtk_widget_class_bind_template_child (widget_class, TesseraPreferences, threads_adjustment);
  gtk_widget_class_bind_template_child (widget_class, TesseraPreferences, precision_row);
  gtk_widget_class_install_action (widget_class, "prefs.choose-model", NULL, choose_model_activated);
  gtk_widget_class_install_action (widget_class, "prefs.choose-gallery", NULL, choose_gallery_activated);
  gtk_widget_class_install_action (widget_class, "prefs.reset-gallery", NULL, reset_gallery_activated);
  gtk_widget_class_install_action (widget_class, "prefs.use-demo-model", NULL, use_demo_model_activated);
}

static void
tessera_preferences_init (TesseraPreferences *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->backends = g_ptr_array_new_with_free_func (g_free);
  self->backend_labels = gtk_string_list_new (NULL);
  fill_backends (self);
  adw_combo_row_set_model (self->backend_row, G_LIST_MODEL (self->backend_labels));
  {
    g_autoptr (GtkListItemFactory) factory = gtk_signal_list_item_factory_new ();

    g_signal_connect (factory, "setup", G_CALLBACK (setup_backend_item), NULL);
    g_signal_connect (factory, "bind", G_CALLBACK (bind_backend_item), self->backend_row);
    adw_combo_row_set_list_factory (self->backend_row, factory);
  }
}

/* The precision setting ("auto", "fp32", "bf16") as the row's index, both ways. */
static const char *const precision_names[] = { "auto", "fp32", "bf16" };

static gboolean
precision_get_mapping (GValue *value, GVariant *variant, gpointer user_data)
{
  const char *name = g_variant_get_string (variant, NULL);

  (void) user_data;
  for (guint i = 0; i < G_N_ELEMENTS (precision_names); i++)
    if (g_strcmp0 (name, precision_names[i]) == 0)
      {
        g_value_set_uint (value, i);
        return TRUE;
      }
  return FALSE;
}

static GVariant *
precision_set_mapping (const GValue *value, const GVariantType *type, gpointer user_data)
{
  guint i = g_value_get_uint (value);

  (void) type;
  (void) user_data;
  return i < G_N_ELEMENTS (precision_names) ? g_variant_new_string (precision_names[i]) : NULL;
}

/* What this processor offers, under the row. */
static void
set_precision_subtitle (TesseraPreferences *self)
{
  const char *text;

  switch (ts_cpu_bf16_support ())
    {
    case TS_BF16_NATIVE:
      text = _("This processor has native bf16: Automatic uses it");
      break;
    case TS_BF16_EMULATED:
      text = _("bf16 is emulated on this processor: Automatic uses fp32");
      break;
    case TS_BF16_NONE:
    default:
      text = _("bf16 needs AVX-512, which this processor lacks");
      break;
    }
  adw_action_row_set_subtitle (ADW_ACTION_ROW (self->precision_row), text);
}

GtkWidget *
tessera_preferences_new (GtkWindow *parent, GSettings *settings)
{
  TesseraPreferences *self;

  g_return_val_if_fail (G_IS_SETTINGS (settings), NULL);

  self = g_object_new (TESSERA_TYPE_PREFERENCES, "transient-for", parent, NULL);
  self->settings = g_object_ref (settings);
  g_settings_bind (self->settings, "threads", self->threads_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind_with_mapping (self->settings, "precision", self->precision_row, "selected",
                                G_SETTINGS_BIND_DEFAULT, precision_get_mapping,
                                precision_set_mapping, NULL, NULL);
  set_precision_subtitle (self);
  g_signal_connect_object (self->settings, "changed", G_CALLBACK (update_rows), self, G_CONNECT_SWAPPED);
  update_rows (self);
  g_signal_connect_object (self->backend_row, "notify::selected", G_CALLBACK (on_backend_selected), self,
                           G_CONNECT_SWAPPED);
  return GTK_WIDGET (self);
}
