/* SPDX-License-Identifier: MIT
 *
 * tessera-trash.h — trashing files and restoring them from the freedesktop.org trash
 * (the gallery's delete and Undo).
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Moves the newest trashed copy of orig back to orig. Blocking; any thread. Fails with
 * G_IO_ERROR_NOT_FOUND when the trash holds no such file. */
gboolean tessera_trash_restore (GFile *orig, GError **error);

/* Moves each of files (GFile) to the trash, on a thread. source_object (nullable) is
 * the GTask's, for callback. _finish returns the files trashed (maybe none); when one
 * was not, *failed (nullable) and error tell the first such. */
void tessera_trash_files_async (GPtrArray *files, gpointer source_object, GAsyncReadyCallback callback,
                                gpointer user_data);
GPtrArray *tessera_trash_files_finish (GAsyncResult *result, GFile **failed, GError **error);
/* tessera_trash_restore for each of files, on a thread. _finish returns those restored,
 * or NULL with the first error when none was. */
void tessera_trash_restore_files_async (GPtrArray *files, gpointer source_object, GAsyncReadyCallback callback,
                                        gpointer user_data);
GPtrArray *tessera_trash_restore_files_finish (GAsyncResult *result, GError **error);

G_END_DECLS
