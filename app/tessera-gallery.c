/* SPDX-License-Identifier: MIT
 *
 * tessera-gallery.c — the gallery view. Items live in a GListStore sorted by
 * modification time (newest first); the folder is enumerated asynchronously and then
 * watched with a GFileMonitor (WATCH_MOVES, because the engine writes a temporary file and
 * renames it over the final name). Thumbnails load lazily, when a cell binds its item.
 * Deleting moves the file to the trash; the toast's Undo (or Ctrl+Z, the window's
 * win.undo-delete, while the toast shows: the "can-undo-delete" property) puts it back,
 * through GVfs's trash:/// when it is there, else by reading the freedesktop.org trash
 * folders directly. Activating an item (Enter, double-click) reuses its parameters.
 * New images are written into the folder here too, by a GTask thread with the engine's
 * atomic PNG writer (tessera_gallery_save_async).
 */
#include "tessera-gallery.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

struct _TesseraGallery
{
  AdwBin parent_instance;

  GtkStack *stack;
  AdwStatusPage *empty_page;
  GtkGridView *grid_view;
  GtkStack *detail_stack;
  GtkPicture *detail_picture;
  GtkListBox *params_list;

  GFile *folder;
  GFileMonitor *monitor;
  GCancellable *cancellable;
  GListStore *store;
  GtkSortListModel *sorted;
  GtkSingleSelection *selection;
  GHashTable *items; /* path → TesseraGalleryItem (borrowed from store) */
  TesseraGalleryItem *shown;
  gulong shown_handler;
  GtkFileChooserNative *save_chooser;
  GFile *last_trashed;
  AdwToast *undo_toast; /* the newest delete's toast while it shows */
};

enum {
  PROP_0,
  PROP_CAN_UNDO_DELETE,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

enum {
  SIGNAL_REUSE_PARAMETERS,
  SIGNAL_INPAINT,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (TesseraGallery, tessera_gallery, ADW_TYPE_BIN)

static void
add_toast (TesseraGallery *self, AdwToast *toast)
{
  GtkWidget *overlay = gtk_widget_get_ancestor (GTK_WIDGET (self), ADW_TYPE_TOAST_OVERLAY);

  if (overlay)
    adw_toast_overlay_add_toast (ADW_TOAST_OVERLAY (overlay), toast);
  else
    g_object_unref (g_object_ref_sink (toast));
}

static void
toast_message (TesseraGallery *self, const char *message)
{
  add_toast (self, adw_toast_new (message));
}

static gboolean
is_png_name (GFile *file)
{
  g_autofree char *base = g_file_get_basename (file);

  return base && base[0] != '.' && g_str_has_suffix (base, ".png");
}

static gint64
info_mtime_usec (GFileInfo *info)
{
  g_autoptr (GDateTime) dt = g_file_info_get_modification_date_time (info);

  return dt ? g_date_time_to_unix (dt) * G_USEC_PER_SEC + g_date_time_get_microsecond (dt) : 0;
}

static void
update_empty (TesseraGallery *self)
{
  gboolean empty = g_list_model_get_n_items (G_LIST_MODEL (self->store)) == 0;

  gtk_stack_set_visible_child_name (self->stack, empty ? "empty" : "grid");
}

/* ---- items ---- */

static void
remove_file (TesseraGallery *self, GFile *file)
{
  const char *path = g_file_peek_path (file);
  TesseraGalleryItem *item = path ? g_hash_table_lookup (self->items, path) : NULL;
  guint pos;

  if (!item)
    return;
  if (g_list_store_find (self->store, item, &pos))
    {
      g_hash_table_remove (self->items, path);
      g_list_store_remove (self->store, pos);
    }
  update_empty (self);
}

static void
insert_item (TesseraGallery *self, GFile *file, gint64 mtime)
{
  const char *path = g_file_peek_path (file);
  g_autoptr (TesseraGalleryItem) item = NULL;

  if (!path)
    return;
  if (g_hash_table_contains (self->items, path))
    remove_file (self, file);
  item = tessera_gallery_item_new (file, mtime);
  g_hash_table_insert (self->items, g_strdup (path), item);
  g_list_store_append (self->store, item);
  update_empty (self);
}

static void
query_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (TesseraGallery) self = user_data;
  g_autoptr (GFileInfo) info = g_file_query_info_finish (G_FILE (source), result, NULL);

  if (!info || g_file_info_get_file_type (info) != G_FILE_TYPE_REGULAR)
    return;
  insert_item (self, G_FILE (source), info_mtime_usec (info));
}

void
tessera_gallery_add_file (TesseraGallery *self, GFile *file)
{
  g_return_if_fail (TESSERA_IS_GALLERY (self));
  g_return_if_fail (G_IS_FILE (file));

  if (!is_png_name (file))
    return;
  g_file_query_info_async (file, G_FILE_ATTRIBUTE_STANDARD_TYPE "," G_FILE_ATTRIBUTE_TIME_MODIFIED ","
                           G_FILE_ATTRIBUTE_TIME_MODIFIED_USEC,
                           G_FILE_QUERY_INFO_NONE, G_PRIORITY_DEFAULT, self->cancellable, query_done,
                           g_object_ref (self));
}

static void
on_monitor_changed (GFileMonitor *monitor, GFile *file, GFile *other, GFileMonitorEvent event,
                    gpointer user_data)
{
  TesseraGallery *self = user_data;

  (void) monitor;
  switch (event)
    {
    case G_FILE_MONITOR_EVENT_CREATED:
    case G_FILE_MONITOR_EVENT_MOVED_IN:
    case G_FILE_MONITOR_EVENT_CHANGES_DONE_HINT:
      tessera_gallery_add_file (self, file);
      break;
    case G_FILE_MONITOR_EVENT_DELETED:
    case G_FILE_MONITOR_EVENT_MOVED_OUT:
      remove_file (self, file);
      break;
    case G_FILE_MONITOR_EVENT_RENAMED:
      remove_file (self, file);
      if (other)
        tessera_gallery_add_file (self, other);
      break;
    case G_FILE_MONITOR_EVENT_CHANGED:
    case G_FILE_MONITOR_EVENT_ATTRIBUTE_CHANGED:
    case G_FILE_MONITOR_EVENT_PRE_UNMOUNT:
    case G_FILE_MONITOR_EVENT_UNMOUNTED:
    case G_FILE_MONITOR_EVENT_MOVED:
      break;
    }
}

static void
next_files_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (TesseraGallery) self = user_data;
  GFileEnumerator *enumerator = G_FILE_ENUMERATOR (source);
  g_autoptr (GError) error = NULL;
  GList *files = g_file_enumerator_next_files_finish (enumerator, result, &error);

  if (error)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("gallery: enumerating: %s", error->message);
      return;
    }
  for (GList *l = files; l; l = l->next)
    {
      GFileInfo *info = l->data;
      g_autoptr (GFile) file = g_file_enumerator_get_child (enumerator, info);

      if (g_file_info_get_file_type (info) == G_FILE_TYPE_REGULAR && is_png_name (file))
        insert_item (self, file, info_mtime_usec (info));
    }
  if (files)
    g_file_enumerator_next_files_async (enumerator, 64, G_PRIORITY_DEFAULT, self->cancellable,
                                        next_files_done, g_object_ref (self));
  g_list_free_full (files, g_object_unref);
}

static void
enumerate_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (TesseraGallery) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GFileEnumerator) enumerator = g_file_enumerate_children_finish (G_FILE (source), result, &error);

  if (!enumerator)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("gallery: cannot list %s: %s", g_file_peek_path (G_FILE (source)), error->message);
      return;
    }
  g_file_enumerator_next_files_async (enumerator, 64, G_PRIORITY_DEFAULT, self->cancellable,
                                      next_files_done, g_object_ref (self));
}

void
tessera_gallery_set_folder (TesseraGallery *self, GFile *folder)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *name = NULL;
  g_autofree char *description = NULL;

  g_return_if_fail (TESSERA_IS_GALLERY (self));
  g_return_if_fail (G_IS_FILE (folder));

  if (self->folder && g_file_equal (self->folder, folder))
    return;
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  if (self->monitor)
    {
      g_signal_handlers_disconnect_by_data (self->monitor, self);
      g_file_monitor_cancel (self->monitor);
      g_clear_object (&self->monitor);
    }
  g_hash_table_remove_all (self->items);
  g_list_store_remove_all (self->store);
  g_set_object (&self->folder, folder);

  if (!g_file_make_directory_with_parents (folder, NULL, &error) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS))
    g_debug ("gallery: cannot create %s: %s", g_file_peek_path (folder), error->message);
  g_clear_error (&error);

  name = g_file_get_parse_name (folder);
  description = g_strdup_printf (_("Images you generate are saved here, in %s"), name);
  adw_status_page_set_description (self->empty_page, description);

  self->monitor = g_file_monitor_directory (folder, G_FILE_MONITOR_WATCH_MOVES, self->cancellable, &error);
  if (self->monitor)
    g_signal_connect (self->monitor, "changed", G_CALLBACK (on_monitor_changed), self);
  else
    g_debug ("gallery: cannot watch %s: %s", g_file_peek_path (folder), error->message);

  g_file_enumerate_children_async (folder,
                                   G_FILE_ATTRIBUTE_STANDARD_NAME "," G_FILE_ATTRIBUTE_STANDARD_TYPE ","
                                   G_FILE_ATTRIBUTE_TIME_MODIFIED "," G_FILE_ATTRIBUTE_TIME_MODIFIED_USEC,
                                   G_FILE_QUERY_INFO_NONE, G_PRIORITY_DEFAULT, self->cancellable,
                                   enumerate_done, g_object_ref (self));
  update_empty (self);
}

GFile *
tessera_gallery_get_folder (TesseraGallery *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY (self), NULL);
  return self->folder;
}

GListModel *
tessera_gallery_get_model (TesseraGallery *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY (self), NULL);
  return G_LIST_MODEL (self->sorted);
}

void
tessera_gallery_select_file (TesseraGallery *self, GFile *file)
{
  guint n;

  g_return_if_fail (TESSERA_IS_GALLERY (self));
  n = g_list_model_get_n_items (G_LIST_MODEL (self->sorted));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (TesseraGalleryItem) item = g_list_model_get_item (G_LIST_MODEL (self->sorted), i);

      if (g_file_equal (tessera_gallery_item_get_file (item), file))
        {
          gtk_single_selection_set_selected (self->selection, i);
          return;
        }
    }
}

TesseraGalleryItem *
tessera_gallery_get_selected (TesseraGallery *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY (self), NULL);
  return gtk_single_selection_get_selected_item (self->selection);
}

/* ---- detail ---- */

static void
add_param (TesseraGallery *self, const char *title, const char *value)
{
  GtkWidget *row;

  if (!value || !value[0])
    return;
  row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_action_row_set_subtitle (ADW_ACTION_ROW (row), value);
  adw_action_row_set_subtitle_lines (ADW_ACTION_ROW (row), 0);
  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
  gtk_widget_add_css_class (row, "tessera-param-row");
  gtk_list_box_append (self->params_list, row);
}

static char *
format_double (double v)
{
  return isnan (v) ? NULL : g_strdup_printf ("%g", v);
}

static void
show_detail (TesseraGallery *self)
{
  TesseraGalleryItem *item = self->shown;
  const TesseraImageMeta *m;
  GtkWidget *child;
  g_autofree char *size = NULL;
  g_autofree char *steps = NULL;
  g_autofree char *seed = NULL;
  g_autofree char *cfg = NULL;
  g_autofree char *temps = NULL;
  g_autofree char *aesthetic = NULL;
  g_autofree char *strength = NULL;
  g_autofree char *file_name = NULL;

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->params_list))))
    gtk_list_box_remove (self->params_list, child);
  if (!item)
    {
      gtk_stack_set_visible_child_name (self->detail_stack, "none");
      gtk_picture_set_paintable (self->detail_picture, NULL);
      return;
    }
  gtk_stack_set_visible_child_name (self->detail_stack, "detail");
  gtk_picture_set_file (self->detail_picture, tessera_gallery_item_get_file (item));

  file_name = g_file_get_basename (tessera_gallery_item_get_file (item));
  m = tessera_gallery_item_get_meta (item);
  if (!m)
    {
      add_param (self, _("File"), file_name);
      if (tessera_gallery_item_is_loaded (item))
        add_param (self, _("Parameters"), _("This image carries no generation parameters"));
      return;
    }
  if (m->width && m->height)
    size = g_strdup_printf ("%u × %u", m->width, m->height);
  else if (tessera_gallery_item_get_width (item))
    size = g_strdup_printf ("%u × %u", tessera_gallery_item_get_width (item), tessera_gallery_item_get_height (item));
  if (m->steps && m->finish_at && m->finish_at < m->steps)
    /* Translators: a "Finish Now" image's steps */
    steps = g_strdup_printf (_("Finished at step %u of %u"), m->finish_at, m->steps);
  else if (m->steps)
    steps = g_strdup_printf ("%u", m->steps);
  seed = g_strdup_printf ("%" G_GUINT64_FORMAT, m->seed);
  cfg = format_double (m->cfg);
  if (!isnan (m->temperature_start) && !isnan (m->temperature_end))
    temps = g_strdup_printf ("%g → %g", m->temperature_start, m->temperature_end);
  aesthetic = format_double (m->aesthetic_score);
  if (m->strength >= 0)
    strength = g_strdup_printf ("%g", m->strength);

  add_param (self, _("Prompt"), m->prompt);
  add_param (self, _("Negative Prompt"), m->negative_prompt);
  add_param (self, _("Size"), size);
  add_param (self, _("Steps"), steps);
  add_param (self, _("Guidance"), cfg);
  add_param (self, _("Seed"), seed);
  add_param (self, _("Temperature"), temps);
  add_param (self, _("Aesthetic Score"), aesthetic);
  add_param (self, _("Source Image"), m->source);
  add_param (self, _("Strength"), strength);
  add_param (self, _("Model"), m->model);
  add_param (self, _("Compute Device"), m->backend);
  add_param (self, _("File"), file_name);
}

static void
on_shown_meta (TesseraGallery *self)
{
  show_detail (self);
}

static void
update_actions (TesseraGallery *self)
{
  TesseraGalleryItem *item = self->shown;
  const TesseraImageMeta *m = item ? tessera_gallery_item_get_meta (item) : NULL;

  gtk_widget_action_set_enabled (GTK_WIDGET (self), "gallery.reuse", m != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "gallery.copy-prompt", m && m->prompt && m->prompt[0]);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "gallery.inpaint", item != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "gallery.show-in-folder", item != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "gallery.save-as", item != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "gallery.delete", item != NULL);
}

static void
on_meta_notify (TesseraGallery *self)
{
  show_detail (self);
  update_actions (self);
}

static void
on_selection_changed (TesseraGallery *self)
{
  TesseraGalleryItem *item = gtk_single_selection_get_selected_item (self->selection);

  if (self->shown)
    g_clear_signal_handler (&self->shown_handler, self->shown);
  g_set_object (&self->shown, item);
  if (item)
    {
      self->shown_handler = g_signal_connect_object (item, "notify::meta", G_CALLBACK (on_meta_notify),
                                                     self, G_CONNECT_SWAPPED);
      tessera_gallery_item_load (item);
    }
  on_shown_meta (self);
  update_actions (self);
}

/* ---- actions ---- */

static void
reuse_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  TesseraGallery *self = TESSERA_GALLERY (widget);
  const TesseraImageMeta *m = self->shown ? tessera_gallery_item_get_meta (self->shown) : NULL;

  (void) name;
  (void) param;
  if (m)
    g_signal_emit (self, signals[SIGNAL_REUSE_PARAMETERS], 0, m);
}

static void
inpaint_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  TesseraGallery *self = TESSERA_GALLERY (widget);

  (void) name;
  (void) param;
  if (self->shown)
    g_signal_emit (self, signals[SIGNAL_INPAINT], 0, tessera_gallery_item_get_file (self->shown));
}

static void
copy_prompt_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  TesseraGallery *self = TESSERA_GALLERY (widget);
  const TesseraImageMeta *m = self->shown ? tessera_gallery_item_get_meta (self->shown) : NULL;

  (void) name;
  (void) param;
  if (!m || !m->prompt)
    return;
  gdk_clipboard_set_text (gtk_widget_get_clipboard (widget), m->prompt);
  toast_message (self, _("Prompt copied"));
}

static void
launch_folder_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (TesseraGallery) self = user_data;
  g_autoptr (GError) error = NULL;

  (void) source;
  if (!g_app_info_launch_default_for_uri_finish (result, &error))
    {
      g_autofree char *msg = g_strdup_printf (_("Cannot open the folder: %s"), error->message);
      toast_message (self, msg);
    }
}

static void
show_items_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (TesseraGallery) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) ret = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  g_autofree char *uri = NULL;

  if (ret)
    return;
  /* No file manager implements org.freedesktop.FileManager1: open the folder itself. */
  g_debug ("FileManager1.ShowItems: %s", error->message);
  uri = g_file_get_uri (self->folder);
  g_app_info_launch_default_for_uri_async (uri, NULL, NULL, launch_folder_done, g_object_ref (self));
}

static void
show_in_folder_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  TesseraGallery *self = TESSERA_GALLERY (widget);
  g_autoptr (GDBusConnection) bus = NULL;
  g_autofree char *uri = NULL;
  const char *uris[2] = { NULL, NULL };

  (void) name;
  (void) param;
  if (!self->shown)
    return;
  bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  uri = g_file_get_uri (tessera_gallery_item_get_file (self->shown));
  if (!bus)
    {
      g_autofree char *folder_uri = g_file_get_uri (self->folder);
      g_app_info_launch_default_for_uri_async (folder_uri, NULL, NULL, launch_folder_done,
                                               g_object_ref (self));
      return;
    }
  uris[0] = uri;
  g_dbus_connection_call (bus, "org.freedesktop.FileManager1", "/org/freedesktop/FileManager1",
                          "org.freedesktop.FileManager1", "ShowItems",
                          g_variant_new ("(^ass)", uris, ""), NULL, G_DBUS_CALL_FLAGS_NONE, 5000,
                          NULL, show_items_done, g_object_ref (self));
}

static void
copy_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (TesseraGallery) self = user_data;
  g_autoptr (GError) error = NULL;

  if (!g_file_copy_finish (G_FILE (source), result, &error))
    {
      g_autofree char *msg = g_strdup_printf (_("Could not save the image: %s"), error->message);
      toast_message (self, msg);
    }
  else
    toast_message (self, _("Image saved"));
}

static void
save_as_response (GtkNativeDialog *dialog, int response, gpointer user_data)
{
  TesseraGallery *self = user_data;
  g_autoptr (GFile) dest = NULL;

  if (response == GTK_RESPONSE_ACCEPT && self->shown)
    {
      dest = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
      /* A byte copy keeps the metadata chunks as they are. */
      g_file_copy_async (tessera_gallery_item_get_file (self->shown), dest, G_FILE_COPY_OVERWRITE,
                         G_PRIORITY_DEFAULT, NULL, NULL, NULL, copy_done, g_object_ref (self));
    }
  g_clear_object (&self->save_chooser);
}

static void
save_as_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  TesseraGallery *self = TESSERA_GALLERY (widget);
  GtkRoot *root = gtk_widget_get_root (widget);
  g_autofree char *base = NULL;

  (void) name;
  (void) param;
  if (!self->shown)
    return;
  base = g_file_get_basename (tessera_gallery_item_get_file (self->shown));
  g_clear_object (&self->save_chooser);
  self->save_chooser = gtk_file_chooser_native_new (_("Save Image As"), GTK_WINDOW (root),
                                                    GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"), NULL);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (self->save_chooser), TRUE);
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (self->save_chooser), base);
  g_signal_connect (self->save_chooser, "response", G_CALLBACK (save_as_response), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (self->save_chooser));
}

/* Restoring from the trash. GLib's local trash follows the freedesktop.org spec: files
 * go to $XDG_DATA_HOME/Trash (same filesystem as home) or to $topdir/.Trash-$uid, with
 * an info/NAME.trashinfo holding "Path=" (absolute, or relative to $topdir) and
 * "DeletionDate=". Without GVfs there is no trash:/// to ask, so read those files. */
static gboolean
restore_from_trash_dir (const char *trash_dir, const char *wanted_path, GFile *orig, GError **error)
{
  g_autofree char *info_dir = g_build_filename (trash_dir, "info", NULL);
  g_autoptr (GDir) dir = g_dir_open (info_dir, 0, NULL);
  g_autofree char *best = NULL;
  g_autofree char *best_date = NULL;
  const char *name;

  if (!dir)
    return FALSE;
  while ((name = g_dir_read_name (dir)))
    {
      g_autofree char *info_path = NULL;
      g_autoptr (GKeyFile) kf = g_key_file_new ();
      g_autofree char *path = NULL;
      g_autofree char *unescaped = NULL;
      g_autofree char *date = NULL;

      if (!g_str_has_suffix (name, ".trashinfo"))
        continue;
      info_path = g_build_filename (info_dir, name, NULL);
      if (!g_key_file_load_from_file (kf, info_path, G_KEY_FILE_NONE, NULL))
        continue;
      path = g_key_file_get_string (kf, "Trash Info", "Path", NULL);
      unescaped = path ? g_uri_unescape_string (path, NULL) : NULL;
      date = g_key_file_get_string (kf, "Trash Info", "DeletionDate", NULL);
      if (!unescaped || g_strcmp0 (unescaped, wanted_path) != 0)
        continue;
      if (!best || g_strcmp0 (date, best_date) > 0)
        {
          g_free (best);
          g_free (best_date);
          best = g_strndup (name, strlen (name) - strlen (".trashinfo"));
          best_date = g_steal_pointer (&date);
        }
    }
  if (!best)
    return FALSE;
  {
    g_autofree char *trashed_path = g_build_filename (trash_dir, "files", best, NULL);
    g_autofree char *info_name = g_strconcat (best, ".trashinfo", NULL);
    g_autofree char *info_path = g_build_filename (info_dir, info_name, NULL);
    g_autoptr (GFile) trashed = g_file_new_for_path (trashed_path);
    g_autoptr (GFile) info = g_file_new_for_path (info_path);

    if (!g_file_move (trashed, orig, G_FILE_COPY_NONE, NULL, NULL, NULL, error))
      return FALSE;
    g_file_delete (info, NULL, NULL);
    return TRUE;
  }
}

static void
restore_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GFile *orig = task_data;
  g_autofree char *orig_path = g_file_get_path (orig);
  g_autofree char *home_trash = g_build_filename (g_get_user_data_dir (), "Trash", NULL);
  g_autofree char *trash_name = g_strdup_printf (".Trash-%u", (unsigned) getuid ());
  g_autoptr (GFile) dir = NULL;
  GError *error = NULL;

  (void) source;
  (void) cancellable;
  if (restore_from_trash_dir (home_trash, orig_path, orig, &error))
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (error)
    {
      g_task_return_error (task, error);
      return;
    }
  /* $topdir/.Trash-$uid holds paths relative to $topdir: try each ancestor. */
  dir = g_file_get_parent (orig);
  while (dir)
    {
      g_autofree char *top = g_file_get_path (dir);
      g_autofree char *trash = g_build_filename (top, trash_name, NULL);
      g_autofree char *rel = g_file_get_relative_path (dir, orig);
      GFile *parent;

      if (rel && restore_from_trash_dir (trash, rel, orig, &error))
        {
          g_task_return_boolean (task, TRUE);
          return;
        }
      if (error)
        {
          g_task_return_error (task, error);
          return;
        }
      parent = g_file_get_parent (dir);
      g_object_unref (dir);
      dir = parent;
    }
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _("The image is no longer in the trash"));
}

static void
restore_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  TesseraGallery *self = TESSERA_GALLERY (source);
  g_autoptr (GFile) orig = user_data;
  g_autoptr (GError) error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_autofree char *msg = g_strdup_printf (_("Could not restore the image: %s"), error->message);
      toast_message (self, msg);
      return;
    }
  tessera_gallery_add_file (self, orig);
}

static void
set_undo_toast (TesseraGallery *self, AdwToast *toast)
{
  if (self->undo_toast == toast)
    return;
  g_set_object (&self->undo_toast, toast);
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_CAN_UNDO_DELETE]);
}

static void
on_undo_toast_dismissed (AdwToast *toast, gpointer user_data)
{
  TesseraGallery *self = user_data;

  if (self->undo_toast == toast)
    set_undo_toast (self, NULL);
}

gboolean
tessera_gallery_can_undo_delete (TesseraGallery *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY (self), FALSE);
  return self->undo_toast != NULL && self->last_trashed != NULL;
}

void
tessera_gallery_undo_delete (TesseraGallery *self)
{
  g_autoptr (GFile) orig = NULL;
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (TESSERA_IS_GALLERY (self));
  /* From Ctrl+Z the toast still shows, and its Undo now does nothing (last_trashed is
   * gone). It is left to time out: libadwaita 1.2 aborts when a toast is dismissed while
   * the one before it is still animating out. */
  set_undo_toast (self, NULL);
  orig = g_steal_pointer (&self->last_trashed);
  if (!orig)
    return;
  task = g_task_new (self, NULL, restore_done, g_object_ref (orig));
  g_task_set_source_tag (task, tessera_gallery_undo_delete);
  g_task_set_task_data (task, g_object_ref (orig), g_object_unref);
  g_task_run_in_thread (task, restore_thread);
}

static void
on_undo_delete (AdwToast *toast, gpointer user_data)
{
  TesseraGallery *self = user_data;
  GFile *orig = g_object_get_data (G_OBJECT (toast), "tessera-file");

  /* Only the newest deletion's toast can undo: an older one's file was replaced. */
  if (self->last_trashed && g_file_equal (self->last_trashed, orig))
    {
      /* The toast dismisses itself after this signal. */
      if (self->undo_toast == toast)
        set_undo_toast (self, NULL);
      tessera_gallery_undo_delete (self);
    }
}

static void
trash_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (TesseraGallery) self = user_data;
  GFile *file = G_FILE (source);
  g_autoptr (GError) error = NULL;
  g_autofree char *base = g_file_get_basename (file);
  g_autofree char *title = NULL;
  AdwToast *toast;

  if (!g_file_trash_finish (file, result, &error))
    {
      g_autofree char *msg = NULL;

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED))
        msg = g_strdup_printf (_("“%s” was not deleted: there is no trash for this folder"), base);
      else
        msg = g_strdup_printf (_("“%s” was not deleted: %s"), base, error->message);
      toast_message (self, msg);
      return;
    }
  remove_file (self, file);
  g_set_object (&self->last_trashed, file);
  title = g_strdup_printf (_("“%s” moved to the trash"), base);
  toast = adw_toast_new (title);
  adw_toast_set_button_label (toast, _("_Undo"));
  adw_toast_set_priority (toast, ADW_TOAST_PRIORITY_HIGH);
  g_object_set_data_full (G_OBJECT (toast), "tessera-file", g_object_ref (file), g_object_unref);
  g_signal_connect_object (toast, "button-clicked", G_CALLBACK (on_undo_delete), self, 0);
  g_signal_connect_object (toast, "dismissed", G_CALLBACK (on_undo_toast_dismissed), self, 0);
  set_undo_toast (self, toast);
  add_toast (self, toast);
}

void
tessera_gallery_delete_selected (TesseraGallery *self)
{
  g_return_if_fail (TESSERA_IS_GALLERY (self));
  if (!self->shown)
    return;
  g_file_trash_async (tessera_gallery_item_get_file (self->shown), G_PRIORITY_DEFAULT, NULL,
                      trash_done, g_object_ref (self));
}

static void
delete_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) name;
  (void) param;
  tessera_gallery_delete_selected (TESSERA_GALLERY (widget));
}

/* Enter or a double-click on an item: select it and reuse its parameters (once they are
 * read; gallery.reuse is disabled until then). */
static void
on_grid_activate (TesseraGallery *self, guint position)
{
  gtk_single_selection_set_selected (self->selection, position);
  if (self->shown && tessera_gallery_item_get_meta (self->shown))
    gtk_widget_activate_action (GTK_WIDGET (self), "gallery.reuse", NULL);
}

/* ---- saving ---- */

typedef struct {
  ts_image *image;
  ts_image_meta meta; /* g_malloc'd strings */
  GFile *folder;
  char *kind;
} SaveData;

static void
save_data_free (SaveData *d)
{
  ts_image_free (d->image);
  tessera_image_meta_free_strings (&d->meta);
  g_clear_object (&d->folder);
  g_free (d->kind);
  g_free (d);
}

static void
save_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  SaveData *d = task_data;
  g_autofree char *dir = g_file_get_path (d->folder);
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *stamp = g_date_time_format (now, "%Y%m%d-%H%M%S");
  g_autofree char *infix = d->kind ? g_strconcat (d->kind, "-", NULL) : g_strdup ("");
  g_autofree char *path = NULL;
  ts_error err;
  GError *error = NULL;

  (void) source;
  (void) cancellable;
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int e = errno;
      g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (e), _("Cannot create %s: %s"), dir,
                               g_strerror (e));
      return;
    }
  for (int i = 1; i < 1000; i++)
    {
      g_autofree char *name = i == 1 ? g_strdup_printf ("tessera-%s-%s%" G_GUINT64_FORMAT ".png", stamp, infix,
                                                        d->meta.seed)
                                     : g_strdup_printf ("tessera-%s-%s%" G_GUINT64_FORMAT "-%d.png", stamp, infix,
                                                        d->meta.seed, i);
      g_free (path);
      path = g_build_filename (dir, name, NULL);
      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        break;
    }
  if (ts_image_save_png (d->image, &d->meta, path, &err) != TS_OK)
    {
      tessera_engine_error_from_ts (&err, &error);
      g_task_return_error (task, error);
      return;
    }
  g_task_return_pointer (task, g_file_new_for_path (path), g_object_unref);
}

/* Main thread: the write's task is done; show the file and complete the caller's task. */
static void
save_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  TesseraGallery *self = g_task_get_source_object (task);
  GError *error = NULL;
  GFile *file = g_task_propagate_pointer (G_TASK (result), &error);

  (void) source;
  if (!file)
    {
      g_task_return_error (task, error);
      return;
    }
  /* Not after dispose (the window closed while the image was written). */
  if (self->items)
    tessera_gallery_add_file (self, file);
  g_task_return_pointer (task, file, g_object_unref);
}

void
tessera_gallery_save_async (TesseraGallery *self, ts_image *image, const ts_image_meta *meta,
                            const char *kind, GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
  SaveData *d;
  GTask *task;
  g_autoptr (GTask) write = NULL;

  g_return_if_fail (TESSERA_IS_GALLERY (self));
  g_return_if_fail (image != NULL);
  g_return_if_fail (meta != NULL);
  g_return_if_fail (G_IS_FILE (self->folder));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, tessera_gallery_save_async);
  d = g_new0 (SaveData, 1);
  d->image = image;
  tessera_image_meta_copy (&d->meta, meta);
  d->folder = g_object_ref (self->folder);
  d->kind = g_strdup (kind);
  /* The thread's task has no source object: a thread never holds the widget. */
  write = g_task_new (NULL, cancellable, save_written, task);
  g_task_set_source_tag (write, save_thread);
  g_task_set_task_data (write, d, (GDestroyNotify) save_data_free);
  g_task_run_in_thread (write, save_thread);
}

GFile *
tessera_gallery_save_finish (TesseraGallery *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tessera_gallery_save_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- grid cells ---- */

static void
cell_setup (GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  GtkWidget *picture = gtk_picture_new ();

  (void) factory;
  (void) user_data;
  gtk_picture_set_can_shrink (GTK_PICTURE (picture), TRUE);
  gtk_picture_set_content_fit (GTK_PICTURE (picture), GTK_CONTENT_FIT_COVER);
  gtk_widget_set_size_request (picture, 180, 180);
  gtk_widget_set_overflow (picture, GTK_OVERFLOW_HIDDEN);
  gtk_widget_add_css_class (picture, "tessera-thumb");
  gtk_list_item_set_child (list_item, picture);
}

static void
cell_bind (GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  TesseraGalleryItem *item = gtk_list_item_get_item (list_item);
  GtkWidget *picture = gtk_list_item_get_child (list_item);
  GBinding *binding;
  g_autofree char *base = g_file_get_basename (tessera_gallery_item_get_file (item));

  (void) factory;
  (void) user_data;
  tessera_gallery_item_load (item);
  binding = g_object_bind_property (item, "thumbnail", picture, "paintable", G_BINDING_SYNC_CREATE);
  g_object_set_data (G_OBJECT (list_item), "tessera-binding", binding);
  gtk_widget_set_tooltip_text (picture, base);
}

static void
cell_unbind (GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  GBinding *binding = g_object_get_data (G_OBJECT (list_item), "tessera-binding");

  (void) factory;
  (void) user_data;
  if (binding)
    g_binding_unbind (binding);
  g_object_set_data (G_OBJECT (list_item), "tessera-binding", NULL);
}

static int
compare_items (gconstpointer a, gconstpointer b, gpointer user_data)
{
  TesseraGalleryItem *ia = (TesseraGalleryItem *) a, *ib = (TesseraGalleryItem *) b;
  gint64 ta = tessera_gallery_item_get_mtime (ia), tb = tessera_gallery_item_get_mtime (ib);

  (void) user_data;
  if (ta != tb)
    return ta > tb ? -1 : 1;
  return -g_strcmp0 (g_file_peek_path (tessera_gallery_item_get_file (ia)),
                     g_file_peek_path (tessera_gallery_item_get_file (ib)));
}

/* ---- GObject ---- */

static void
tessera_gallery_dispose (GObject *object)
{
  TesseraGallery *self = TESSERA_GALLERY (object);

  g_cancellable_cancel (self->cancellable);
  if (self->monitor)
    {
      g_signal_handlers_disconnect_by_data (self->monitor, self);
      g_file_monitor_cancel (self->monitor);
      g_clear_object (&self->monitor);
    }
  if (self->save_chooser)
    {
      gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (self->save_chooser));
      g_clear_object (&self->save_chooser);
    }
  if (self->shown)
    g_clear_signal_handler (&self->shown_handler, self->shown);
  g_clear_object (&self->shown);
  /* AdwBin keeps its own pointer to the template's root; let go of it first. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), TESSERA_TYPE_GALLERY);
  g_clear_object (&self->selection);
  g_clear_object (&self->sorted);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->folder);
  g_clear_object (&self->last_trashed);
  g_clear_object (&self->undo_toast);
  g_clear_pointer (&self->items, g_hash_table_unref);
  G_OBJECT_CLASS (tessera_gallery_parent_class)->dispose (object);
}

static void
tessera_gallery_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  TesseraGallery *self = TESSERA_GALLERY (object);

  switch (prop_id)
    {
    case PROP_CAN_UNDO_DELETE:
      g_value_set_boolean (value, tessera_gallery_can_undo_delete (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
tessera_gallery_class_init (TesseraGalleryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = tessera_gallery_dispose;
  object_class->get_property = tessera_gallery_get_property;

  props[PROP_CAN_UNDO_DELETE] =
    g_param_spec_boolean ("can-undo-delete", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  signals[SIGNAL_REUSE_PARAMETERS] =
    g_signal_new ("reuse-parameters", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, TESSERA_TYPE_IMAGE_META);
  signals[SIGNAL_INPAINT] =
    g_signal_new ("inpaint", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_FILE);

  gtk_widget_class_set_template_from_resource (widget_class, APP_RESOURCE_PATH "/tessera-gallery.ui");
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, stack);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, empty_page);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, grid_view);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, detail_stack);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, detail_picture);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, params_list);

  gtk_widget_class_install_action (widget_class, "gallery.reuse", NULL, reuse_activated);
  gtk_widget_class_install_action (widget_class, "gallery.inpaint", NULL, inpaint_activated);
  gtk_widget_class_install_action (widget_class, "gallery.copy-prompt", NULL, copy_prompt_activated);
  gtk_widget_class_install_action (widget_class, "gallery.show-in-folder", NULL, show_in_folder_activated);
  gtk_widget_class_install_action (widget_class, "gallery.save-as", NULL, save_as_activated);
  gtk_widget_class_install_action (widget_class, "gallery.delete", NULL, delete_activated);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Delete, 0, "gallery.delete", NULL);
}

static void
tessera_gallery_init (TesseraGallery *self)
{
  g_autoptr (GtkListItemFactory) factory = gtk_signal_list_item_factory_new ();
  g_autoptr (GtkSorter) sorter = NULL;

  gtk_widget_init_template (GTK_WIDGET (self));

  self->items = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->store = g_list_store_new (TESSERA_TYPE_GALLERY_ITEM);
  sorter = GTK_SORTER (gtk_custom_sorter_new (compare_items, NULL, NULL));
  self->sorted = gtk_sort_list_model_new (G_LIST_MODEL (self->store), g_steal_pointer (&sorter));
  self->selection = gtk_single_selection_new (G_LIST_MODEL (g_object_ref (self->sorted)));
  gtk_single_selection_set_autoselect (self->selection, FALSE);
  gtk_single_selection_set_can_unselect (self->selection, TRUE);
  g_signal_connect_swapped (self->selection, "notify::selected-item", G_CALLBACK (on_selection_changed), self);

  g_signal_connect (factory, "setup", G_CALLBACK (cell_setup), NULL);
  g_signal_connect (factory, "bind", G_CALLBACK (cell_bind), NULL);
  g_signal_connect (factory, "unbind", G_CALLBACK (cell_unbind), NULL);
  gtk_grid_view_set_factory (self->grid_view, factory);
  gtk_grid_view_set_model (self->grid_view, GTK_SELECTION_MODEL (self->selection));
  g_signal_connect_swapped (self->grid_view, "activate", G_CALLBACK (on_grid_activate), self);
  update_actions (self);
  update_empty (self);
}
