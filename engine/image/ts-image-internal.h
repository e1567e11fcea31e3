/* SPDX-License-Identifier: MIT
 *
 * ts-image-internal — what the two halves of the image module share: ts-image-meta (the
 * metadata's text forms, and the UTF-8 helpers) and ts-image-png (libpng, files), which
 * needs those helpers to check the metadata it writes and to read text chunks.
 */
#ifndef TS_IMAGE_INTERNAL_H
#define TS_IMAGE_INTERNAL_H

#include "tessera.h"

#include <cjson/cJSON.h>

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
bool ts_image_utf8_valid (const char *str, size_t len);
/* A NUL-terminated copy of [s, s+len) (malloc), or NULL when out of memory. */
char *ts_image_dup_range (const char *s, size_t len);
/* [s, s+len) read as Latin-1, as a NUL-terminated UTF-8 string (malloc), or NULL when out
 * of memory. */
char *ts_image_latin1_to_utf8 (const char *s, size_t len);

/* TS_ERR_INVALID_ARG naming the field when a string of meta is not valid UTF-8; `what`
 * starts the message ("image" or "image: '<path>'"). */
ts_status ts_image_meta_check_strings (const ts_image_meta *meta, const char *what,
                                       ts_error *err);

/* The trajectory of meta as the JSON object of the `tessera` chunk (plain: arrays instead
 * of zlib+base64); NULL when out of memory. (ts-image-trajectory.c) */
cJSON *ts_image_trajectory_to_json (const ts_image_meta *meta, bool plain);
/* Parses that object into meta's traj_* fields (malloc'd); TS_ERR_FORMAT naming what is
 * wrong, leaving them empty. */
ts_status ts_image_trajectory_from_json (const cJSON *obj, ts_image_meta *meta, ts_error *err);
/* Frees meta's trajectory arrays and zeroes the grid. */
void ts_image_trajectory_clear (ts_image_meta *meta);

static inline bool
ts_image_str_empty (const char *s)
{
  return !s || !*s;
}

#endif /* TS_IMAGE_INTERNAL_H */
