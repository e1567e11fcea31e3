/* SPDX-License-Identifier: MIT
 *
 * ts-json — reading config files and typed JSON key access for the config parsers. See
 * ts-json.h.
 */
#include "model/ts-json.h"

#include "core/ts-file.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#define CONFIG_MAX_FILE_BYTES (4u * 1024u * 1024u)

/* ---- reading and parsing ---------------------------------------------------------- */

ts_status
ts_json_read_file (const char *path, char **out_text, size_t *out_len, ts_error *err)
{
  FILE *f = NULL;
  char *text = NULL;
  uint64_t size = 0;
  ts_status st;

  /* A FIFO, a device or a directory is refused by name before anything is read. */
  if ((st = ts_file_fopen_regular (path, NULL, &f, &size, err)) != TS_OK)
    goto fail;
  if (size > CONFIG_MAX_FILE_BYTES) {
    st = ts_error_set (err, TS_ERR_FORMAT, "%s: %" PRIu64 " bytes is too large for a config file",
                       path, size);
    goto fail;
  }
  text = malloc ((size_t) size + 1);
  if (!text) {
    st = ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory", path);
    goto fail;
  }
  if (size > 0 && fread (text, 1, (size_t) size, f) != (size_t) size) {
    st = ts_error_set (err, TS_ERR_IO, "%s: read failed", path);
    goto fail;
  }
  text[size] = '\0';
  fclose (f);
  *out_text = text;
  *out_len = (size_t) size;
  return TS_OK;

fail:
  free (text);
  if (f)
    fclose (f);
  return st;
}

/* Parses a JSON object. Unlike cJSON alone it rejects trailing data (as Python's json
 * does) and reports where the syntax breaks as line:column. */
ts_status
ts_json_parse_object (const char *text, size_t len, const char *name, cJSON **out,
                      ts_error *err)
{
  char *copy = NULL;
  cJSON *root = NULL;
  const char *end = NULL;
  ts_status st;

  /* cJSON is given a NUL-terminated private copy, so no parse path can read past it. */
  copy = malloc (len + 1);
  if (!copy)
    return ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory", name);
  if (len > 0)
    memcpy (copy, text, len);
  copy[len] = '\0';

  root = cJSON_ParseWithLengthOpts (copy, len, &end, false);
  if (root && end) {
    size_t off = (size_t) (end - copy);
    while (off < len && (copy[off] == ' ' || copy[off] == '\t' || copy[off] == '\n' ||
                         copy[off] == '\r'))
      off++;
    if (off < len) {
      cJSON_Delete (root);
      root = NULL;
      end = copy + off;
    }
  }
  if (!root) {
    size_t off = end ? (size_t) (end - copy) : 0, line = 1, col = 1;
    if (off > len)
      off = len;
    for (size_t i = 0; i < off; i++) {
      if (copy[i] == '\n') {
        line++;
        col = 1;
      } else {
        col++;
      }
    }
    st = ts_error_set (err, TS_ERR_FORMAT, "%s: invalid JSON at line %zu, column %zu", name,
                       line, col);
    goto fail;
  }
  if (!cJSON_IsObject (root)) {
    st = ts_error_set (err, TS_ERR_FORMAT, "%s: expected a JSON object at the top level",
                       name);
    goto fail;
  }
  free (copy);
  *out = root;
  return TS_OK;

fail:
  cJSON_Delete (root);
  free (copy);
  return st;
}

/* ---- typed key access ------------------------------------------------------------- */

const char *
ts_json_type_name (const cJSON *item)
{
  if (cJSON_IsString (item))
    return "a string";
  if (cJSON_IsNumber (item))
    return "a number";
  if (cJSON_IsBool (item))
    return "a boolean";
  if (cJSON_IsNull (item))
    return "null";
  if (cJSON_IsArray (item))
    return "an array";
  if (cJSON_IsObject (item))
    return "an object";
  return "an invalid value";
}

/* The item for key, or NULL when absent; absent + TS_JSON_REQUIRED sets the error. */
ts_status
ts_json_lookup (const ts_json_ctx *c, const char *key, unsigned flags, const cJSON **item)
{
  *item = cJSON_GetObjectItemCaseSensitive (c->obj, key);
  if (!*item && (flags & TS_JSON_REQUIRED))
    return ts_error_set (c->err, TS_ERR_FORMAT,
                         "%s: missing key '%s' (%s has no default for it)", c->file, key,
                         c->cls);
  return TS_OK;
}

ts_status
ts_json_type_error (const ts_json_ctx *c, const char *key, const char *expected,
                    const cJSON *item)
{
  return ts_error_set (c->err, TS_ERR_FORMAT, "%s: key '%s': expected %s, got %s", c->file,
                       key, expected, ts_json_type_name (item));
}

static ts_status
item_to_int64 (const ts_json_ctx *c, const char *key, const cJSON *item, int64_t *out)
{
  double v;

  if (!cJSON_IsNumber (item))
    return ts_json_type_error (c, key, "an integer", item);
  v = item->valuedouble;
  /* Exact integers only (±2^53 is where doubles stop being exact). */
  if (!(fabs (v) <= 9007199254740992.0) || v != floor (v))
    return ts_error_set (c->err, TS_ERR_FORMAT, "%s: key '%s': expected an integer, got %g",
                         c->file, key, v);
  *out = (int64_t) v;
  return TS_OK;
}

/* Leaves *inout (the default) untouched when the key is absent. */
ts_status
ts_json_int64 (const ts_json_ctx *c, const char *key, unsigned flags, int64_t *inout,
               bool *is_null)
{
  const cJSON *item;
  ts_status st;

  if (is_null)
    *is_null = false;
  st = ts_json_lookup (c, key, flags, &item);
  if (st != TS_OK || !item)
    return st;
  if (cJSON_IsNull (item) && (flags & TS_JSON_NULLABLE)) {
    if (is_null)
      *is_null = true;
    return TS_OK;
  }
  return item_to_int64 (c, key, item, inout);
}

ts_status
ts_json_check_range (const ts_json_ctx *c, const char *key, int64_t v, int64_t lo, int64_t hi)
{
  if (v < lo || v > hi)
    return ts_error_set (c->err, TS_ERR_FORMAT, "%s: key '%s' is %" PRId64
                         ": must be between %" PRId64 " and %" PRId64,
                         c->file, key, v, lo, hi);
  return TS_OK;
}

/* A size: an integer in [1, TS_CONFIG_MAX_DIM] (layer counts: TS_CONFIG_MAX_LAYERS). */
ts_status
ts_json_size (const ts_json_ctx *c, const char *key, unsigned flags, int64_t max, int *inout)
{
  int64_t v = *inout;
  ts_status st;

  st = ts_json_int64 (c, key, flags, &v, NULL);
  if (st == TS_OK)
    st = ts_json_check_range (c, key, v, 1, max);
  if (st == TS_OK)
    *inout = (int) v;
  return st;
}

ts_status
ts_json_bool (const ts_json_ctx *c, const char *key, unsigned flags, bool *inout)
{
  const cJSON *item;
  ts_status st = ts_json_lookup (c, key, flags, &item);

  if (st != TS_OK || !item)
    return st;
  if (!cJSON_IsBool (item))
    return ts_json_type_error (c, key, "true or false", item);
  *inout = cJSON_IsTrue (item);
  return TS_OK;
}

ts_status
ts_json_number (const ts_json_ctx *c, const char *key, unsigned flags, double *inout)
{
  const cJSON *item;
  ts_status st = ts_json_lookup (c, key, flags, &item);

  if (st != TS_OK || !item)
    return st;
  if (!cJSON_IsNumber (item))
    return ts_json_type_error (c, key, "a number", item);
  *inout = item->valuedouble;
  return TS_OK;
}

/* Sets *value to the string (borrowed from the JSON tree); untouched when absent. */
ts_status
ts_json_string (const ts_json_ctx *c, const char *key, unsigned flags, const char **value)
{
  const cJSON *item;
  ts_status st = ts_json_lookup (c, key, flags, &item);

  if (st != TS_OK || !item)
    return st;
  if (!cJSON_IsString (item) || !item->valuestring)
    return ts_json_type_error (c, key, "a string", item);
  *value = item->valuestring;
  return TS_OK;
}

void
ts_json_copy_name (char *dst, const char *src)
{
  snprintf (dst, TS_CONFIG_NAME_MAX, "%s", src ? src : "");
}

/* An array of sizes, each in [1, TS_CONFIG_MAX_DIM]; at most max_n entries (more is
 * TS_ERR_UNSUPPORTED). Untouched when absent. */
ts_status
ts_json_size_array (const ts_json_ctx *c, const char *key, unsigned flags, int *values,
                    int max_n, int *n)
{
  const cJSON *item, *elem;
  ts_status st = ts_json_lookup (c, key, flags, &item);
  int count, i = 0;

  if (st != TS_OK || !item)
    return st;
  if (!cJSON_IsArray (item))
    return ts_json_type_error (c, key, "an array of integers", item);
  count = cJSON_GetArraySize (item);
  if (count == 0)
    return ts_error_set (c->err, TS_ERR_FORMAT, "%s: key '%s' is an empty array", c->file,
                         key);
  if (count > max_n)
    return ts_error_set (c->err, TS_ERR_UNSUPPORTED,
                         "%s: key '%s' has %d entries; at most %d are supported", c->file,
                         key, count, max_n);
  cJSON_ArrayForEach (elem, item)
  {
    char elem_key[96];
    int64_t v = 0;

    snprintf (elem_key, sizeof elem_key, "%s[%d]", key, i);
    st = item_to_int64 (c, elem_key, elem, &v);
    if (st == TS_OK)
      st = ts_json_check_range (c, elem_key, v, 1, TS_CONFIG_MAX_DIM);
    if (st != TS_OK)
      return st;
    values[i++] = (int) v;
  }
  *n = count;
  return TS_OK;
}
