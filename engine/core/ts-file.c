/* SPDX-License-Identifier: MIT
 *
 * ts-file — opening input files safely and naming what is at a path. See ts-file.h.
 */
#include "core/ts-file.h"

#include "core/ts-common.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *
ts_file_kind_name (mode_t mode)
{
  switch (mode & S_IFMT) {
  case S_IFREG: return "a regular file";
  case S_IFDIR: return "a directory";
  case S_IFIFO: return "a FIFO";
  case S_IFCHR: return "a character device";
  case S_IFBLK: return "a block device";
  case S_IFSOCK: return "a socket";
  case S_IFLNK: return "a symbolic link";
  default: return "a special file";
  }
}

ts_status
ts_file_describe_errno (const char *path, int errnum, char *buf, size_t size)
{
  struct stat sb;

  switch (errnum) {
  case ENOENT:
    /* open follows links: ENOENT with a link there means it points nowhere. */
    if (lstat (path, &sb) == 0 && S_ISLNK (sb.st_mode)) {
      snprintf (buf, size, "'%s' is a dangling symbolic link (its target does not exist)",
                path);
      return TS_ERR_NOT_FOUND;
    }
    snprintf (buf, size, "'%s' not found", path);
    return TS_ERR_NOT_FOUND;
  case ENOTDIR:
    snprintf (buf, size, "'%s' not found (a folder on its path is not a folder)", path);
    return TS_ERR_NOT_FOUND;
  case ELOOP:
    snprintf (buf, size, "'%s' is a symbolic link loop", path);
    return TS_ERR_IO;
  case EACCES:
  case EPERM:
    snprintf (buf, size, "'%s' is unreadable: %s", path, strerror (errnum));
    return TS_ERR_IO;
  default:
    snprintf (buf, size, "'%s' cannot be opened: %s", path, strerror (errnum));
    return TS_ERR_IO;
  }
}

static ts_status
fail_with (ts_error *err, ts_status code, const char *what, const char *msg)
{
  if (what)
    return ts_error_set (err, code, "%s: %s", what, msg);
  return ts_error_set (err, code, "%s", msg);
}

ts_status
ts_file_open_regular (const char *path, const char *what, int *fd_out, uint64_t *size_out,
                      ts_error *err)
{
  char msg[1024];
  struct stat sb;
  int fd, flags;

  *fd_out = -1;
  if (!path || !path[0])
    return fail_with (err, TS_ERR_INVALID_ARG, what, "no file name");
  /* O_NONBLOCK: opening a FIFO must not wait for a writer (it would, for ever); fstat then
   * refuses it. The flag is cleared again so that reads of the regular file behave as
   * usual (it has no effect on regular files on Linux, but other systems differ). */
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    ts_status code = ts_file_describe_errno (path, errno, msg, sizeof msg);
    return fail_with (err, code, what, msg);
  }
  if (fstat (fd, &sb) != 0) {
    snprintf (msg, sizeof msg, "'%s' cannot be examined: %s", path, strerror (errno));
    goto fail;
  }
  if (!S_ISREG (sb.st_mode)) {
    snprintf (msg, sizeof msg, "'%s' is %s, not a regular file", path,
              ts_file_kind_name (sb.st_mode));
    goto fail;
  }
  if ((flags = fcntl (fd, F_GETFL)) < 0 || fcntl (fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    snprintf (msg, sizeof msg, "'%s' cannot be opened: %s", path, strerror (errno));
    goto fail;
  }
  if (size_out)
    *size_out = (uint64_t) sb.st_size;
  *fd_out = fd;
  return TS_OK;

fail:
  close (fd);
  return fail_with (err, TS_ERR_IO, what, msg);
}

ts_status
ts_file_fopen_regular (const char *path, const char *what, FILE **out, uint64_t *size_out,
                       ts_error *err)
{
  ts_status st;
  int fd;

  *out = NULL;
  st = ts_file_open_regular (path, what, &fd, size_out, err);
  if (st != TS_OK)
    return st;
  *out = fdopen (fd, "rb");
  if (!*out) {
    char msg[1024];
    snprintf (msg, sizeof msg, "'%s' cannot be opened: %s", path, strerror (errno));
    close (fd);
    return fail_with (err, TS_ERR_NOMEM, what, msg);
  }
  return TS_OK;
}

bool
ts_file_absent (const char *path)
{
  struct stat sb;
  return lstat (path, &sb) != 0 && errno == ENOENT;
}

ts_status
ts_file_check_regular (const char *path, const char *what, ts_error *err)
{
  int fd;
  ts_status st = ts_file_open_regular (path, what, &fd, NULL, err);

  if (st == TS_OK)
    close (fd);
  return st;
}
