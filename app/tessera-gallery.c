/* SPDX-License-Identifier: MIT
 *
 * tessera-gallery.c — the gallery view. Items live in a GListStore sorted by
 * modification time (newest first); the folder is enumerated asynchronously and then
 * watched with a GFileMonitor (WATCH_MOVES, because the engine writes a temporary file and
 * renames it over the final name). Thumbnails load lazily, when a cell binds its item.
 * The grid shows sorted → filtered (the prompt search) → a GtkMultiSelection; the
 * detail pane shows the one selected image, or how many are selected. Deleting moves
 * the selected files to the trash on a thread; the toast's Undo (or Ctrl+Z, the window's
 * win.undo-delete, while the toast shows: the "can-undo-delete" property) puts them all
 * back (tessera-trash.c), and the image after them is selected. Activating an item
 * (Enter, double-click) opens the viewer page (TesseraImageViewer) on the same filtered
 * list; a right click opens the item menu (a GtkPopoverMenu on this widget). New images are written into the folder here too, by a GTask thread with the engine's
 * atomic PNG writer (tessera_gallery_save_async).
 */
#include "tessera-gallery.h"

#include "tessera-trash.h"

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
  GtkSearchEntry *search_entry;
  GtkStack *results_stack;
  GtkGridView *grid_view;
  AdwStatusPage *many_page;
  TesseraImageViewer *viewer;
  GMenuModel *item_menu;
  GtkWidget *menu_popover;
  AdwLeaflet *leaflet;
  GtkWidget *browse_page;
  GtkWidget *detail_separator;
  GtkWidget *detail_page;
  GtkWidget *back_button;
  GtkStack *detail_stack;
  TesseraCanvas *detail_picture;
  GtkListBox *params_list;

  GFile *folder;
  GFileMonitor *monitor;
  GCancellable *cancellable;
  GListStore *store;
  GtkSortListModel *sorted;
  GtkCustomFilter *filter;
  GtkFilterListModel *filtered; /* what the grid and the viewer show: the search applied */
  GtkMultiSelection *selection;
  char **search_terms;
  guint n_selected;             /* as last shown in the detail pane */
  GHashTable *items; /* path → TesseraGalleryItem (borrowed from store) */
  TesseraGalleryItem *shown;
  gulong shown_handler;
  GtkFileChooserNative *save_chooser;
  GPtrArray *last_trashed; /* of GFile: the newest delete's files, for its Undo */
  guint delete_serial;      /* which delete the newest toast belongs to */
  AdwToast *undo_toast;     /* the newest delete's toast while it shows */
};

enum {
  PROP_0,
  PROP_CAN_UNDO_DELETE,
  PROP_VIEWING,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

enum {
  SIGNAL_REUSE_PARAMETERS,
  SIGNAL_INPAINT,
  SIGNAL_VARIATIONS,
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
  const char *page = gtk_stack_get_visible_child_name (self->stack);

  if (empty)
    gtk_stack_set_visible_child_name (self->stack, "empty");
  else if (g_strcmp0 (page, "viewer") != 0)
    gtk_stack_set_visible_child_name (self->stack, "grid");
  if (empty && g_strcmp0 (page, "viewer") == 0)
    g_object_notify_by_pspec (G_OBJECT (self), props[PROP_VIEWING]);
  gtk_stack_set_visible_child_name (self->results_stack,
                                    g_list_model_get_n_items (G_LIST_MODEL (self->filtered)) || !self->search_terms
                                      ? "grid" : "no-results");
}

/* ---- search ---- */

static gboolean
filter_item (gpointer object, gpointer user_data)
{
  TesseraGallery *self = user_data;
  TesseraGalleryItem *item = object;
  const TesseraImageMeta *m;
  g_autofree char *base = NULL;
  g_autofree char *text = NULL;

  if (!self->search_terms)
    return TRUE;
  m = tessera_gallery_item_get_meta (item);
  base = g_file_get_basename (tessera_gallery_item_get_file (item));
  {
    g_autofree char *all = g_strconcat (m && m->prompt ? m->prompt : "", "\n", base, NULL);
    text = g_utf8_casefold (all, -1);
  }
  for (char **t = self->search_terms; *t; t++)
    if (!strstr (text, *t))
      return FALSE;
  return TRUE;
}

/* An item's parameters arrived: while searching it may match now. */
static void
on_item_meta (TesseraGallery *self)
{
  if (self->search_terms)
    gtk_filter_changed (GTK_FILTER (self->filter), GTK_FILTER_CHANGE_DIFFERENT);
  update_empty (self);
}

static void
on_search_changed (TesseraGallery *self)
{
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->search_entry));
  g_autofree char *folded = g_utf8_casefold (text, -1);
  g_auto (GStrv) words = g_strsplit_set (g_strstrip (folded), " \t\n", -1);
  GPtrArray *terms = g_ptr_array_new ();

  for (char **w = words; *w; w++)
    if (**w)
      g_ptr_array_add (terms, g_strdup (*w));
  g_ptr_array_add (terms, NULL);
  g_clear_pointer (&self->search_terms, g_strfreev);
  self->search_terms = (char **) g_ptr_array_free (terms, FALSE);
  if (!self->search_terms[0])
    g_clear_pointer (&self->search_terms, g_strfreev);
  /* Prompts are read when a thumbnail first shows: a search needs them all. */
  if (self->search_terms)
    for (guint i = 0; i < g_list_model_get_n_items (G_LIST_MODEL (self->store)); i++)
      {
        g_autoptr (TesseraGalleryItem) item = g_list_model_get_item (G_LIST_MODEL (self->store), i);
        tessera_gallery_item_load (item);
      }
  gtk_filter_changed (GTK_FILTER (self->filter), GTK_FILTER_CHANGE_DIFFERENT);
  update_empty (self);
}

/* Escape in the search field: everything again, and the grid has the focus. */
static void
on_stop_search (TesseraGallery *self)
{
  tessera_gallery_set_search (self, "");
  gtk_widget_grab_focus (GTK_WIDGET (self->grid_view));
}

void
tessera_gallery_set_search (TesseraGallery *self, const char *text)
{
  g_return_if_fail (TESSERA_IS_GALLERY (self));
  gtk_editable_set_text (GTK_EDITABLE (self->search_entry), text ? text : "");
  /* GtkSearchEntry delays "search-changed"; filter now. */
  on_search_changed (self);
}

GListModel *
tessera_gallery_get_shown_model (TesseraGallery *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY (self), NULL);
  return G_LIST_MODEL (self->selection);
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
  /* A save is announced twice, by the save itself and by the folder monitor (created,
   * moved in, changes done): an unchanged file keeps its item, and with it the selection
   * and the metadata already read. */
  {
    TesseraGalleryItem *known = g_hash_table_lookup (self->items, path);
    if (known && tessera_gallery_item_get_mtime (known) == mtime)
      return;
  }
  {
    TesseraGalleryItem *known = g_hash_table_lookup (self->items, path);
    gboolean was_shown = known && known == self->shown;

    if (known)
      remove_file (self, file);
    item = tessera_gallery_item_new (file, mtime);
    g_signal_connect_object (item, "notify::meta", G_CALLBACK (on_item_meta), self, G_CONNECT_SWAPPED);
    if (self->search_terms)
      tessera_gallery_item_load (item);
    g_hash_table_insert (self->items, g_strdup (path), item);
    g_list_store_append (self->store, item);
    update_empty (self);
    /* A file rewritten in place stays selected as its new item. */
    if (was_shown)
      tessera_gallery_select_file (self, file);
  }
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
  for (int attempt = 0; attempt < 2; attempt++)
    {
      n = g_list_model_get_n_items (G_LIST_MODEL (self->filtered));
      for (guint i = 0; i < n; i++)
        {
          g_autoptr (TesseraGalleryItem) item = g_list_model_get_item (G_LIST_MODEL (self->filtered), i);

          if (g_file_equal (tessera_gallery_item_get_file (item), file))
            {
              gtk_selection_model_select_item (GTK_SELECTION_MODEL (self->selection), i, TRUE);
              return;
            }
        }
      /* Hidden by the search: show everything and look again. */
      if (!self->search_terms)
        return;
      tessera_gallery_set_search (self, "");
    }
}

guint
tessera_gallery_get_n_selected (TesseraGallery *self)
{
  g_autoptr (GtkBitset) set = NULL;

  g_return_val_if_fail (TESSERA_IS_GALLERY (self), 0);
  set = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  return (guint) gtk_bitset_get_size (set);
}

TesseraGalleryItem *
tessera_gallery_get_selected (TesseraGallery *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY (self), NULL);
  return self->shown;
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
  if (!item && tessera_gallery_get_n_selected (self) > 1)
    {
      guint n = tessera_gallery_get_n_selected (self);
      g_autofree char *title = g_strdup_printf (ngettext ("%u Image Selected", "%u Images Selected", n), n);

      adw_status_page_set_title (self->many_page, title);
      gtk_stack_set_visible_child_name (self->detail_stack, "many");
      tessera_canvas_set_paintable (self->detail_picture, NULL);
      return;
    }
  if (!item)
    {
      gtk_stack_set_visible_child_name (self->detail_stack, "none");
      tessera_canvas_set_paintable (self->detail_picture, NULL);
      return;
    }
  gtk_stack_set_visible_child_name (self->detail_stack, "detail");
  {
    g_autoptr (GdkTexture) texture = gdk_texture_new_from_file (tessera_gallery_item_get_file (item), NULL);

    tessera_canvas_set_paintable (self->detail_picture, GDK_PAINTABLE (texture));
  }

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
  /* A steered run's changes, after the parameters it started with. */
  if (m->n_steer && m->steer)
    {
      g_autoptr (GString) text = g_string_new (NULL);

      for (guint i = 0; i < m->n_steer; i++)
        {
          const ts_image_steer *c = &m->steer[i];
          g_autoptr (GString) what = g_string_new (NULL);

          if (c->prompt)
            g_string_append_printf (what, _("prompt “%s”"), c->prompt);
          if (c->negative_prompt)
            g_string_append_printf (what, "%s%s", what->len ? ", " : "", _("negative prompt"));
          if (!isnan (c->cfg))
            g_string_append_printf (what, "%s%s %g", what->len ? ", " : "", _("guidance"), c->cfg);
          if (!isnan (c->temperature_start) || !isnan (c->temperature_end))
            g_string_append_printf (what, "%s%s", what->len ? ", " : "", _("temperature"));
          /* Translators: a steering change: "from step 5: prompt “…”, guidance 3" */
          if (text->len)
            g_string_append_c (text, '\n');
          g_string_append_printf (text, _("from step %u: %s"), c->step, what->str);
        }
      add_param (self, _("Steered"), text->str);
    }
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
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "gallery.variations", item != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "gallery.show-in-folder", item != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "gallery.save-as", item != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "gallery.delete", tessera_gallery_get_n_selected (self) > 0);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "gallery.view", item != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "gallery.copy-image", item != NULL);
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
  g_autoptr (GtkBitset) set = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  g_autoptr (TesseraGalleryItem) item = NULL;

  if (gtk_bitset_get_size (set) == 1)
    item = g_list_model_get_item (G_LIST_MODEL (self->filtered), gtk_bitset_get_minimum (set));
  /* The list changes (items-changed) far more often than what is selected. */
  if (item == self->shown && gtk_bitset_get_size (set) == self->n_selected)
    return;
  self->n_selected = (guint) gtk_bitset_get_size (set);
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
  /* Folded, one image picked shows its detail; nothing picked, the grid. */
  if (adw_leaflet_get_folded (self->leaflet))
    {
      if (item)
        adw_leaflet_set_visible_child (self->leaflet, self->detail_page);
      else if (self->n_selected == 0)
        adw_leaflet_set_visible_child (self->leaflet, self->browse_page);
    }
}

/* ---- folding (narrow windows) ---- */

static void
update_fold (TesseraGallery *self)
{
  gtk_widget_set_visible (self->back_button, adw_leaflet_get_folded (self->leaflet));
}

static void
on_back_clicked (TesseraGallery *self)
{
  adw_leaflet_set_visible_child (self->leaflet, self->browse_page);
  gtk_widget_grab_focus (GTK_WIDGET (self->grid_view));
}

gboolean
tessera_gallery_get_folded (TesseraGallery *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY (self), FALSE);
  return adw_leaflet_get_folded (self->leaflet);
}

gboolean
tessera_gallery_get_showing_detail (TesseraGallery *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY (self), FALSE);
  return adw_leaflet_get_visible_child (self->leaflet) == self->detail_page;
}

/* Folded, a tap on the image already picked (back from its detail) shows it again. */
static void
cell_left_release (GtkGestureClick *gesture, int n_press, double x, double y, GtkListItem *list_item)
{
  GtkWidget *picture = gtk_event_controller_get_widget (GTK_EVENT_CONTROLLER (gesture));
  TesseraGallery *self = TESSERA_GALLERY (gtk_widget_get_ancestor (picture, TESSERA_TYPE_GALLERY));
  GdkModifierType mods = gtk_event_controller_get_current_event_state (GTK_EVENT_CONTROLLER (gesture));

  (void) n_press;
  (void) x;
  (void) y;
  if (!self || !adw_leaflet_get_folded (self->leaflet) || (mods & (GDK_CONTROL_MASK | GDK_SHIFT_MASK)))
    return;
  if (self->shown && self->shown == gtk_list_item_get_item (list_item))
    adw_leaflet_set_visible_child (self->leaflet, self->detail_page);
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
variations_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  TesseraGallery *self = TESSERA_GALLERY (widget);

  (void) name;
  (void) param;
  if (self->shown)
    g_signal_emit (self, signals[SIGNAL_VARIATIONS], 0, tessera_gallery_item_get_file (self->shown));
}

static void
copy_image_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  TesseraGallery *self = TESSERA_GALLERY (widget);
  g_autoptr (GdkTexture) texture = NULL;
  g_autoptr (GError) error = NULL;

  (void) name;
  (void) param;
  if (!self->shown)
    return;
  texture = gdk_texture_new_from_file (tessera_gallery_item_get_file (self->shown), &error);
  if (!texture)
    {
      g_autofree char *msg = g_strdup_printf (_("Could not copy the image: %s"), error->message);
      toast_message (self, msg);
      return;
    }
  gdk_clipboard_set_texture (gtk_widget_get_clipboard (widget), texture);
  toast_message (self, _("Image copied"));
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

static void
restore_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  TesseraGallery *self = TESSERA_GALLERY (source);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) restored = tessera_trash_restore_files_finish (result, &error);

  (void) user_data;
  if (!restored)
    {
      g_autofree char *msg = g_strdup_printf (_("Could not restore the image: %s"), error->message);
      toast_message (self, msg);
      return;
    }
  for (guint i = 0; i < restored->len; i++)
    tessera_gallery_add_file (self, restored->pdata[i]);
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
  g_autoptr (GPtrArray) files = NULL;

  g_return_if_fail (TESSERA_IS_GALLERY (self));
  /* From Ctrl+Z the toast still shows, and its Undo now does nothing (last_trashed is
   * gone). It is left to time out: libadwaita 1.2 aborts when a toast is dismissed while
   * the one before it is still animating out. */
  set_undo_toast (self, NULL);
  files = g_steal_pointer (&self->last_trashed);
  if (!files)
    return;
  tessera_trash_restore_files_async (files, self, restore_done, NULL);
}

static void
on_undo_delete (AdwToast *toast, gpointer user_data)
{
  TesseraGallery *self = user_data;
  guint serial = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (toast), "tessera-delete"));

  /* Only the newest deletion's toast can undo: an older one's files were replaced. */
  if (self->last_trashed && serial == self->delete_serial)
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
  TesseraGallery *self = TESSERA_GALLERY (source);
  g_autoptr (GFile) failed = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) trashed = tessera_trash_files_finish (result, &failed, &error);
  guint first = GPOINTER_TO_UINT (user_data), n;
  g_autofree char *title = NULL;
  AdwToast *toast;

  if (!self->items) /* disposed meanwhile */
    return;
  if (error)
    {
      g_autofree char *base = g_file_get_basename (failed);
      g_autofree char *msg = NULL;

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED))
        msg = g_strdup_printf (_("“%s” was not deleted: there is no trash for this folder"), base);
      else
        msg = g_strdup_printf (_("“%s” was not deleted: %s"), base, error->message);
      toast_message (self, msg);
    }
  if (trashed->len == 0)
    return;
  for (guint i = 0; i < trashed->len; i++)
    remove_file (self, trashed->pdata[i]);
  /* The image after the (first) deleted one takes its place in the selection. */
  n = g_list_model_get_n_items (G_LIST_MODEL (self->filtered));
  if (n > 0 && tessera_gallery_get_n_selected (self) == 0)
    gtk_selection_model_select_item (GTK_SELECTION_MODEL (self->selection), MIN (first, n - 1), TRUE);

  g_clear_pointer (&self->last_trashed, g_ptr_array_unref);
  self->last_trashed = g_ptr_array_ref (trashed);
  self->delete_serial++;
  if (trashed->len == 1)
    {
      g_autofree char *base = g_file_get_basename (trashed->pdata[0]);
      title = g_strdup_printf (_("“%s” moved to the trash"), base);
    }
  else
    title = g_strdup_printf (ngettext ("%u image moved to the trash", "%u images moved to the trash", trashed->len),
                             trashed->len);
  toast = adw_toast_new (title);
  adw_toast_set_button_label (toast, _("_Undo"));
  adw_toast_set_priority (toast, ADW_TOAST_PRIORITY_HIGH);
  g_object_set_data (G_OBJECT (toast), "tessera-delete", GUINT_TO_POINTER (self->delete_serial));
  g_signal_connect_object (toast, "button-clicked", G_CALLBACK (on_undo_delete), self, 0);
  g_signal_connect_object (toast, "dismissed", G_CALLBACK (on_undo_toast_dismissed), self, 0);
  set_undo_toast (self, toast);
  add_toast (self, toast);
}

void
tessera_gallery_delete_selected (TesseraGallery *self)
{
  g_autoptr (GtkBitset) set = NULL;
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_object_unref);
  GtkBitsetIter iter;
  guint pos;

  g_return_if_fail (TESSERA_IS_GALLERY (self));
  set = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));
  if (gtk_bitset_is_empty (set))
    return;
  for (gboolean ok = gtk_bitset_iter_init_first (&iter, set, &pos); ok; ok = gtk_bitset_iter_next (&iter, &pos))
    {
      g_autoptr (TesseraGalleryItem) item = g_list_model_get_item (G_LIST_MODEL (self->filtered), pos);

      g_ptr_array_add (files, g_object_ref (tessera_gallery_item_get_file (item)));
    }
  tessera_trash_files_async (files, self, trash_done, GUINT_TO_POINTER (gtk_bitset_get_minimum (set)));
}

static void
delete_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) name;
  (void) param;
  tessera_gallery_delete_selected (TESSERA_GALLERY (widget));
}

/* ---- the viewer ---- */

void
tessera_gallery_view (TesseraGallery *self, guint position)
{
  g_return_if_fail (TESSERA_IS_GALLERY (self));
  if (position >= g_list_model_get_n_items (G_LIST_MODEL (self->filtered)))
    return;
  gtk_selection_model_select_item (GTK_SELECTION_MODEL (self->selection), position, TRUE);
  tessera_image_viewer_set_position (self->viewer, position);
  gtk_stack_set_visible_child_name (self->stack, "viewer");
  gtk_widget_grab_focus (GTK_WIDGET (self->viewer));
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_VIEWING]);
}

TesseraImageViewer *
tessera_gallery_get_viewer (TesseraGallery *self)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY (self), NULL);
  return g_strcmp0 (gtk_stack_get_visible_child_name (self->stack), "viewer") == 0 ? self->viewer : NULL;
}

static void
on_viewer_close (TesseraGallery *self)
{
  gtk_stack_set_visible_child_name (self->stack, "grid");
  update_empty (self);
  gtk_widget_grab_focus (GTK_WIDGET (self->grid_view));
  g_object_notify_by_pspec (G_OBJECT (self), props[PROP_VIEWING]);
}

/* Left and Right in the viewer move the gallery's selection along. */
static void
on_viewer_position (TesseraGallery *self)
{
  guint pos = tessera_image_viewer_get_position (self->viewer);

  if (tessera_gallery_get_viewer (self) && pos < g_list_model_get_n_items (G_LIST_MODEL (self->filtered)))
    gtk_selection_model_select_item (GTK_SELECTION_MODEL (self->selection), pos, TRUE);
}

static void
view_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  TesseraGallery *self = TESSERA_GALLERY (widget);
  g_autoptr (GtkBitset) set = gtk_selection_model_get_selection (GTK_SELECTION_MODEL (self->selection));

  (void) name;
  (void) param;
  if (!gtk_bitset_is_empty (set))
    tessera_gallery_view (self, gtk_bitset_get_minimum (set));
}

/* Enter or a double-click on an item: the viewer. */
static void
on_grid_activate (TesseraGallery *self, guint position)
{
  tessera_gallery_view (self, position);
}

/* ---- grid cells ---- */

/* A right click (or a long press) on a cell: its menu, for the selection when the cell is
 * part of it, else for the cell alone. */
static void
cell_menu (GtkGesture *gesture, double x, double y, GtkListItem *list_item)
{
  GtkWidget *picture = gtk_event_controller_get_widget (GTK_EVENT_CONTROLLER (gesture));
  TesseraGallery *self = TESSERA_GALLERY (gtk_widget_get_ancestor (picture, TESSERA_TYPE_GALLERY));
  guint pos = gtk_list_item_get_position (list_item);
  double gx, gy;

  if (!self || pos == GTK_INVALID_LIST_POSITION)
    return;
  gtk_gesture_set_state (gesture, GTK_EVENT_SEQUENCE_CLAIMED);
  if (!gtk_selection_model_is_selected (GTK_SELECTION_MODEL (self->selection), pos))
    gtk_selection_model_select_item (GTK_SELECTION_MODEL (self->selection), pos, TRUE);
  if (!gtk_widget_translate_coordinates (picture, GTK_WIDGET (self), x, y, &gx, &gy))
    gx = gy = 0;
  gtk_popover_set_pointing_to (GTK_POPOVER (self->menu_popover), &(GdkRectangle) { .x = (int) gx, .y = (int) gy,
                                                                                 .width = 1, .height = 1 });
  gtk_popover_popup (GTK_POPOVER (self->menu_popover));
}

static void
cell_right_click (GtkGestureClick *gesture, int n_press, double x, double y, GtkListItem *list_item)
{
  (void) n_press;
  cell_menu (GTK_GESTURE (gesture), x, y, list_item);
}

static void
cell_long_press (GtkGestureLongPress *gesture, double x, double y, GtkListItem *list_item)
{
  cell_menu (GTK_GESTURE (gesture), x, y, list_item);
}

/* The menu key: the menu under the focused cell, else the grid's corner. */
static void
menu_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  TesseraGallery *self = TESSERA_GALLERY (widget);
  GtkWidget *focus = gtk_root_get_focus (gtk_widget_get_root (widget));
  graphene_rect_t r = GRAPHENE_RECT_INIT (24, 24, 1, 1);

  (void) name;
  (void) param;
  if (tessera_gallery_get_n_selected (self) == 0)
    return;
  if (focus && gtk_widget_is_ancestor (focus, GTK_WIDGET (self->grid_view)) &&
      gtk_widget_compute_bounds (focus, widget, &r))
    r = GRAPHENE_RECT_INIT (r.origin.x + r.size.width / 2, r.origin.y + r.size.height / 2, 1, 1);
  else if (!gtk_widget_compute_bounds (GTK_WIDGET (self->grid_view), widget, &r))
    r = GRAPHENE_RECT_INIT (0, 0, 1, 1);
  gtk_popover_set_pointing_to (GTK_POPOVER (self->menu_popover),
                               &(GdkRectangle) { .x = (int) r.origin.x + 24, .y = (int) r.origin.y + 24, .width = 1,
                                                 .height = 1 });
  gtk_popover_popup (GTK_POPOVER (self->menu_popover));
}

GtkPopover *
tessera_gallery_popup_menu (TesseraGallery *self, guint position)
{
  g_return_val_if_fail (TESSERA_IS_GALLERY (self), NULL);
  gtk_selection_model_select_item (GTK_SELECTION_MODEL (self->selection), position, TRUE);
  menu_activated (GTK_WIDGET (self), "gallery.menu", NULL);
  return GTK_POPOVER (self->menu_popover);
}

static void
cell_setup (GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  GtkWidget *picture = gtk_picture_new ();
  GtkGesture *click = gtk_gesture_click_new ();
  GtkGesture *left = gtk_gesture_click_new ();
  GtkGesture *press = gtk_gesture_long_press_new ();

  (void) factory;
  (void) user_data;
  /* The whole image inside the tile, however its sides compare. */
  gtk_picture_set_can_shrink (GTK_PICTURE (picture), TRUE);
  gtk_picture_set_content_fit (GTK_PICTURE (picture), GTK_CONTENT_FIT_CONTAIN);
  gtk_gesture_single_set_button (GTK_GESTURE_SINGLE (click), GDK_BUTTON_SECONDARY);
  g_signal_connect (click, "pressed", G_CALLBACK (cell_right_click), list_item);
  gtk_widget_add_controller (picture, GTK_EVENT_CONTROLLER (click));
  gtk_gesture_single_set_button (GTK_GESTURE_SINGLE (left), GDK_BUTTON_PRIMARY);
  g_signal_connect (left, "released", G_CALLBACK (cell_left_release), list_item);
  gtk_widget_add_controller (picture, GTK_EVENT_CONTROLLER (left));
  gtk_gesture_single_set_touch_only (GTK_GESTURE_SINGLE (press), TRUE);
  g_signal_connect (press, "pressed", G_CALLBACK (cell_long_press), list_item);
  gtk_widget_add_controller (picture, GTK_EVENT_CONTROLLER (press));
  /* Two columns fit a 360 px window. */
  gtk_widget_set_size_request (picture, 150, 150);
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
  g_clear_pointer (&self->menu_popover, gtk_widget_unparent);
  /* AdwBin keeps its own pointer to the template's root; let go of it first. */
  adw_bin_set_child (ADW_BIN (self), NULL);
  gtk_widget_dispose_template (GTK_WIDGET (self), TESSERA_TYPE_GALLERY);
  g_clear_object (&self->selection);
  g_clear_object (&self->filtered);
  g_clear_object (&self->filter);
  g_clear_object (&self->sorted);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->folder);
  g_clear_pointer (&self->last_trashed, g_ptr_array_unref);
  g_clear_pointer (&self->search_terms, g_strfreev);
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
    case PROP_VIEWING:
      g_value_set_boolean (value, tessera_gallery_get_viewer (self) != NULL);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
search_activated (GtkWidget *widget, const char *name, GVariant *param)
{
  (void) name;
  (void) param;
  gtk_widget_grab_focus (GTK_WIDGET (TESSERA_GALLERY (widget)->search_entry));
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
  /* Whether the viewer shows (tessera_gallery_get_viewer); Escape is its key then. */
  props[PROP_VIEWING] = g_param_spec_boolean ("viewing", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, props);

  signals[SIGNAL_REUSE_PARAMETERS] =
    g_signal_new ("reuse-parameters", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, TESSERA_TYPE_IMAGE_META);
  signals[SIGNAL_INPAINT] =
    g_signal_new ("inpaint", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_FILE);
  signals[SIGNAL_VARIATIONS] =
    g_signal_new ("variations", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_FILE);

  g_type_ensure (TESSERA_TYPE_IMAGE_VIEWER);
  g_type_ensure (TESSERA_TYPE_CANVAS);
  gtk_widget_class_set_template_from_resource (widget_class, APP_RESOURCE_PATH "/tessera-gallery.ui");
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, stack);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, empty_page);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, grid_view);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, search_entry);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, results_stack);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, many_page);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, viewer);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, item_menu);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, leaflet);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, browse_page);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, detail_separator);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, detail_page);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, back_button);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, detail_stack);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, detail_picture);
  gtk_widget_class_bind_template_child (widget_class, TesseraGallery, params_list);

  gtk_widget_class_install_action (widget_class, "gallery.reuse", NULL, reuse_activated);
  gtk_widget_class_install_action (widget_class, "gallery.inpaint", NULL, inpaint_activated);
  gtk_widget_class_install_action (widget_class, "gallery.variations", NULL, variations_activated);
  gtk_widget_class_install_action (widget_class, "gallery.copy-prompt", NULL, copy_prompt_activated);
  gtk_widget_class_install_action (widget_class, "gallery.show-in-folder", NULL, show_in_folder_activated);
  gtk_widget_class_install_action (widget_class, "gallery.save-as", NULL, save_as_activated);
  gtk_widget_class_install_action (widget_class, "gallery.delete", NULL, delete_activated);
  gtk_widget_class_install_action (widget_class, "gallery.view", NULL, view_activated);
  gtk_widget_class_install_action (widget_class, "gallery.copy-image", NULL, copy_image_activated);
  gtk_widget_class_install_action (widget_class, "gallery.search", NULL, search_activated);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Delete, 0, "gallery.delete", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_f, GDK_CONTROL_MASK, "gallery.search", NULL);
  gtk_widget_class_install_action (widget_class, "gallery.menu", NULL, menu_activated);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Menu, 0, "gallery.menu", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_F10, GDK_SHIFT_MASK, "gallery.menu", NULL);
}

static void
tessera_gallery_init (TesseraGallery *self)
{
  g_autoptr (GtkListItemFactory) factory = gtk_signal_list_item_factory_new ();
  g_autoptr (GtkSorter) sorter = NULL;

  gtk_widget_init_template (GTK_WIDGET (self));

  adw_leaflet_page_set_navigatable (adw_leaflet_get_page (self->leaflet, self->detail_separator), FALSE);
  g_signal_connect_object (self->leaflet, "notify::folded", G_CALLBACK (update_fold), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->back_button, "clicked", G_CALLBACK (on_back_clicked), self, G_CONNECT_SWAPPED);
  update_fold (self);

  self->items = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->store = g_list_store_new (TESSERA_TYPE_GALLERY_ITEM);
  sorter = GTK_SORTER (gtk_custom_sorter_new (compare_items, NULL, NULL));
  self->sorted = gtk_sort_list_model_new (G_LIST_MODEL (self->store), g_steal_pointer (&sorter));
  self->filter = gtk_custom_filter_new (filter_item, self, NULL);
  self->filtered = gtk_filter_list_model_new (G_LIST_MODEL (g_object_ref (self->sorted)),
                                              GTK_FILTER (g_object_ref (self->filter)));
  self->selection = gtk_multi_selection_new (G_LIST_MODEL (g_object_ref (self->filtered)));
  g_signal_connect_swapped (self->selection, "selection-changed", G_CALLBACK (on_selection_changed), self);
  g_signal_connect_swapped (self->selection, "items-changed", G_CALLBACK (on_selection_changed), self);
  g_signal_connect_swapped (self->search_entry, "search-changed", G_CALLBACK (on_search_changed), self);
  g_signal_connect_swapped (self->search_entry, "stop-search", G_CALLBACK (on_stop_search), self);
  tessera_image_viewer_set_model (self->viewer, G_LIST_MODEL (self->filtered));
  g_signal_connect_swapped (self->viewer, "close", G_CALLBACK (on_viewer_close), self);
  g_signal_connect_swapped (self->viewer, "notify::position", G_CALLBACK (on_viewer_position), self);
  self->menu_popover = gtk_popover_menu_new_from_model (self->item_menu);
  gtk_popover_set_has_arrow (GTK_POPOVER (self->menu_popover), FALSE);
  gtk_widget_set_halign (self->menu_popover, GTK_ALIGN_START);
  gtk_widget_set_parent (self->menu_popover, GTK_WIDGET (self));

  g_signal_connect (factory, "setup", G_CALLBACK (cell_setup), NULL);
  g_signal_connect (factory, "bind", G_CALLBACK (cell_bind), NULL);
  g_signal_connect (factory, "unbind", G_CALLBACK (cell_unbind), NULL);
  gtk_grid_view_set_factory (self->grid_view, factory);
  gtk_grid_view_set_model (self->grid_view, GTK_SELECTION_MODEL (self->selection));
  g_signal_connect_swapped (self->grid_view, "activate", G_CALLBACK (on_grid_activate), self);
  update_actions (self);
  update_empty (self);
}
