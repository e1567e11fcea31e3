/* SPDX-License-Identifier: MIT
 *
 * tessera-trash.c — putting a file that g_file_trash moved back where it was, for the
 * gallery's Undo. Blocking: the gallery calls it from a GTask thread.
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

