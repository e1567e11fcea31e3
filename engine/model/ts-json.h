/* SPDX-License-Identifier: MIT
 *
 * ts-json — the JSON reading every config parser shares (each stage's config in
 * stages/ts-*-config.c and model_index.json in ts-config.c): reading a config file with a
 * size cap, parsing one JSON object strictly, and typed key access whose errors name the
 * key, the file and, for a missing key, the official class that has no default for it.
 *
 * Internal to the config parsers: it exposes cJSON, which no other part of the engine
 * needs to see.
 */
#ifndef TS_JSON_H
#define TS_JSON_H

#include "core/ts-common.h"
#include "model/ts-config.h"

#include <cjson/cJSON.h>

/* Where a key is read from, and what its messages say. */
typedef struct {
  const cJSON *obj;
  const char *file;  /* for messages */
  const char *cls;   /* the official class, for "has no default" messages */
  ts_error *err;
} ts_json_ctx;

enum {
  TS_JSON_OPTIONAL = 0,
  TS_JSON_REQUIRED = 1 << 0, /* the official class has no default */
  TS_JSON_NULLABLE = 1 << 1, /* null is a meaningful value (reported through is_null) */
};

/* Reads a whole config file (at most 4 MiB) into a NUL-terminated buffer the caller
 * frees. A missing file is TS_ERR_NOT_FOUND naming the path. */
ts_status ts_json_read_file (const char *path, char **out_text, size_t *out_len, ts_error *err);
/* Parses `len` bytes (no NUL needed) as one JSON object, which the caller frees with
 * cJSON_Delete. Unlike cJSON alone it rejects trailing data (as Python's json does) and
 * reports where the syntax breaks as line:column; `name` starts every message. */
ts_status ts_json_parse_object (const char *text, size_t len, const char *name, cJSON **out,
                                ts_error *err);

/* "a string", "a number", ... for messages. */
const char *ts_json_type_name (const cJSON *item);
/* The item for key, or NULL when absent; absent + TS_JSON_REQUIRED sets the error. */
ts_status ts_json_lookup (const ts_json_ctx *c, const char *key, unsigned flags,
                          const cJSON **item);
/* "FILE: key 'KEY': expected EXPECTED, got <type of item>" as TS_ERR_FORMAT. */
ts_status ts_json_type_error (const ts_json_ctx *c, const char *key, const char *expected,
                              const cJSON *item);
/* TS_ERR_FORMAT naming the key unless lo <= v <= hi. */
ts_status ts_json_check_range (const ts_json_ctx *c, const char *key, int64_t v, int64_t lo,
                               int64_t hi);

/* Typed reads. Each leaves *inout (the default) untouched when the key is absent and
 * fails with TS_ERR_FORMAT naming the key on a value of the wrong type. */
/* An exact integer; with TS_JSON_NULLABLE a null sets *is_null and leaves *inout alone. */
ts_status ts_json_int64 (const ts_json_ctx *c, const char *key, unsigned flags, int64_t *inout,
                         bool *is_null);
/* A size: an integer in [1, max] (TS_CONFIG_MAX_DIM, or TS_CONFIG_MAX_LAYERS for layer
 * counts). */
ts_status ts_json_size (const ts_json_ctx *c, const char *key, unsigned flags, int64_t max,
                        int *inout);
ts_status ts_json_bool (const ts_json_ctx *c, const char *key, unsigned flags, bool *inout);
ts_status ts_json_number (const ts_json_ctx *c, const char *key, unsigned flags,
                          double *inout);
/* Sets *value to the string (borrowed from the JSON tree). */
ts_status ts_json_string (const ts_json_ctx *c, const char *key, unsigned flags,
                          const char **value);
/* An array of sizes, each in [1, TS_CONFIG_MAX_DIM]; at most max_n entries (more is
 * TS_ERR_UNSUPPORTED), and *n is set to how many. */
ts_status ts_json_size_array (const ts_json_ctx *c, const char *key, unsigned flags,
                              int *values, int max_n, int *n);

/* Copies a class name into a TS_CONFIG_NAME_MAX field, truncating; NULL gives "". */
void ts_json_copy_name (char *dst, const char *src);

/* Defines `ts_status fn (const char *path, type *out, ts_error *err)`, which reads `path`
 * and parses it with text_fn, the `_from_json_text` parser of the same config. */
#define TS_JSON_DEFINE_FROM_FILE(fn, text_fn, type)                                        \
  ts_status fn (const char *path, type *out, ts_error *err)                                \
  {                                                                                        \
    char *text = NULL;                                                                     \
    size_t len = 0;                                                                        \
    ts_status st = ts_json_read_file (path, &text, &len, err);                             \
    if (st == TS_OK)                                                                       \
      st = text_fn (text, len, path, out, err);                                            \
    free (text);                                                                           \
    return st;                                                                             \
  }

#endif /* TS_JSON_H */
