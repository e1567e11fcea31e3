/* SPDX-License-Identifier: MIT
 *
 * ts-file — the one way the engine opens a file it reads (configs, tokenizer files,
 * safetensors, PNG inputs) and the words it uses for what is at a path. Every file is
 * opened with O_NONBLOCK and checked with fstat to be a regular file before a byte is
 * read, so a FIFO, a device or a directory in a model folder is refused at once, by name,
 * instead of hanging the loader or reporting a nonsense size. Not part of the public API.
 */
#ifndef TS_FILE_H
#define TS_FILE_H

#include "tessera.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* "a directory", "a FIFO", "a character device", "a block device", "a socket", "a symbolic
 * link", "a regular file" or "a special file": what the S_IFMT bits of mode say. */
const char *ts_file_kind_name (mode_t mode);

/* Describes why path could not be used, from the errno of a failed open/stat of it, in the
 * words of issue 17: "not found" only when nothing is there (a dangling symbolic link is
 * named as such), a symbolic link loop, a permission problem. Writes "'<path>' <reason>"
 * to buf. Returns TS_ERR_NOT_FOUND for ENOENT/ENOTDIR, TS_ERR_IO otherwise. */
ts_status ts_file_describe_errno (const char *path, int errnum, char *buf, size_t size);

/* Opens path read-only, without waiting on a FIFO, and checks that it is a regular file;
 * stores a blocking descriptor (O_CLOEXEC) in *fd_out, or -1 on failure: TS_ERR_NOT_FOUND
 * when nothing is at path, TS_ERR_IO naming what is there instead ("'<path>' is a FIFO,
 * not a regular file") or why it cannot be opened. what prefixes the message
 * ("tokenizer"); NULL for none. If size_out is non-NULL it receives the file's size. */
ts_status ts_file_open_regular (const char *path, const char *what, int *fd_out,
                                uint64_t *size_out, ts_error *err);

/* ts_file_open_regular as a stdio stream ("rb"); *out is NULL on failure. */
ts_status ts_file_fopen_regular (const char *path, const char *what, FILE **out,
                                 uint64_t *size_out, ts_error *err);

/* Whether nothing at all is at path (lstat fails with ENOENT): not a dangling link, not
 * an unreadable file. For optional files, whose absence is fine but whose breakage is not. */
bool ts_file_absent (const char *path);

/* Checks without reading that path names a regular file the process may read, with the
 * messages of ts_file_open_regular. */
ts_status ts_file_check_regular (const char *path, const char *what, ts_error *err);

#endif /* TS_FILE_H */
