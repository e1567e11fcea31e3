/* SPDX-License-Identifier: MIT
 *
 * tessera-trash.c — the gallery's delete and its Undo: moving files to the trash on a
 * thread, and putting a file that g_file_trash moved back where it was.
 */
#include "tessera-trash.h"

#include <glib/gi18n.h>
#include <string.h>
#include <unistd.h>

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

gboolean
tessera_trash_restore (GFile *orig, GError **error)
{
  g_autofree char *orig_path = g_file_get_path (orig);
  g_autofree char *home_trash = g_build_filename (g_get_user_data_dir (), "Trash", NULL);
  g_autofree char *trash_name = g_strdup_printf (".Trash-%u", (unsigned) getuid ());
  GFile *dir;
  GError *local = NULL;

  if (restore_from_trash_dir (home_trash, orig_path, orig, &local))
    return TRUE;
  if (local)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  /* $topdir/.Trash-$uid holds paths relative to $topdir: try each ancestor. */
  dir = g_file_get_parent (orig);
  while (dir)
    {
      g_autofree char *top = g_file_get_path (dir);
      g_autofree char *trash = g_build_filename (top, trash_name, NULL);
      g_autofree char *rel = g_file_get_relative_path (dir, orig);
      GFile *parent;

      if (rel && restore_from_trash_dir (trash, rel, orig, &local))
        {
          g_object_unref (dir);
          return TRUE;
        }
      if (local)
        {
          g_object_unref (dir);
          g_propagate_error (error, local);
          return FALSE;
        }
      parent = g_file_get_parent (dir);
      g_object_unref (dir);
      dir = parent;
    }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _("The image is no longer in the trash"));
  return FALSE;
}


/* ---- many files, on a thread ---- */

typedef struct {
  GPtrArray *files;   /* of GFile, to trash */
  GPtrArray *trashed; /* of GFile */
  GError *error;      /* the first failure */
  GFile *failed;      /* its file */
} TrashJob;

static void
trash_job_free (TrashJob *job)
{
  g_ptr_array_unref (job->files);
  g_ptr_array_unref (job->trashed);
  g_clear_error (&job->error);
  g_clear_object (&job->failed);
  g_free (job);
}

static void
trash_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  TrashJob *job = task_data;

  (void) source;
  for (guint i = 0; i < job->files->len; i++)
    {
      GError *error = NULL;

      if (g_file_trash (job->files->pdata[i], cancellable, &error))
        g_ptr_array_add (job->trashed, g_object_ref (job->files->pdata[i]));
      else if (!job->error)
        {
          job->error = error;
          job->failed = g_object_ref (job->files->pdata[i]);
        }
      else
        g_error_free (error);
    }
  g_task_return_boolean (task, TRUE);
}

void
tessera_trash_files_async (GPtrArray *files, gpointer source_object, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (source_object, NULL, callback, user_data);
  TrashJob *job = g_new0 (TrashJob, 1);

  job->files = g_ptr_array_ref (files);
  job->trashed = g_ptr_array_new_with_free_func (g_object_unref);
  g_task_set_source_tag (task, tessera_trash_files_async);
  g_task_set_task_data (task, job, (GDestroyNotify) trash_job_free);
  g_task_run_in_thread (task, trash_thread);
}

GPtrArray *
tessera_trash_files_finish (GAsyncResult *result, GFile **failed, GError **error)
{
  TrashJob *job;

  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tessera_trash_files_async, NULL);
  job = g_task_get_task_data (G_TASK (result));
  if (job->error)
    {
      if (failed)
        *failed = g_object_ref (job->failed);
      g_propagate_error (error, g_error_copy (job->error));
    }
  return g_ptr_array_ref (job->trashed);
}


static void
restore_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GPtrArray *files = task_data;
  GPtrArray *restored = g_ptr_array_new_with_free_func (g_object_unref);
  GError *first = NULL;

  (void) source;
  (void) cancellable;
  for (guint i = 0; i < files->len; i++)
    {
      GError *error = NULL;

      if (tessera_trash_restore (files->pdata[i], &error))
        g_ptr_array_add (restored, g_object_ref (files->pdata[i]));
      else if (!first)
        first = error;
      else
        g_error_free (error);
    }
  if (first && restored->len == 0)
    {
      g_ptr_array_unref (restored);
      g_task_return_error (task, first);
      return;
    }
  if (first)
    {
      g_debug ("trash: restoring: %s", first->message);
      g_error_free (first);
    }
  g_task_return_pointer (task, restored, (GDestroyNotify) g_ptr_array_unref);
}

void
tessera_trash_restore_files_async (GPtrArray *files, gpointer source_object, GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (source_object, NULL, callback, user_data);

  g_task_set_source_tag (task, tessera_trash_restore_files_async);
  g_task_set_task_data (task, g_ptr_array_ref (files), (GDestroyNotify) g_ptr_array_unref);
  g_task_run_in_thread (task, restore_thread);
}

GPtrArray *
tessera_trash_restore_files_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tessera_trash_restore_files_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
