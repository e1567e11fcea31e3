/* SPDX-License-Identifier: MIT
 *
 * tessera-gallery-save.c — tessera_gallery_save_async: writes a result as
 * "tessera-<date>-<time>-[<kind>-]<seed>.png" with its metadata into the gallery's folder
 * on a worker thread (ts_image_save_png's atomic write), then lists it in the gallery.
 */
#include "tessera-gallery.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>

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
  /* Not after dispose (the window closed while the image was written): the folder is
   * gone then. */
  if (tessera_gallery_get_folder (self))
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
  g_return_if_fail (G_IS_FILE (tessera_gallery_get_folder (self)));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, tessera_gallery_save_async);
  d = g_new0 (SaveData, 1);
  d->image = image;
  tessera_image_meta_copy (&d->meta, meta);
  d->folder = g_object_ref (tessera_gallery_get_folder (self));
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
