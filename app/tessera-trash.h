/* SPDX-License-Identifier: MIT
 *
 * tessera-trash.h — restoring a file from the freedesktop.org trash (the gallery's Undo).
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Moves the newest trashed copy of orig back to orig. Blocking; any thread. Fails with
 * G_IO_ERROR_NOT_FOUND when the trash holds no such file. */
gboolean tessera_trash_restore (GFile *orig, GError **error);

G_END_DECLS
