/* SPDX-License-Identifier: MIT
 *
 * ts-image-trajectory — an image's token history in its `tessera` JSON metadata: the final
 * codes, the step that revealed each token and the model's probability for it then
 * (ts_result's trajectory). In the PNG it is compact: each array is little-endian binary,
 * deflated with zlib and written in base64, with its dtype named:
 *
 *     "trajectory": {"grid": [h, w], "encoding": "zlib+base64",
 *                    "codes": {"dtype": "u16", "data": "..."},
 *                    "reveal_step": {"dtype": "u16", "data": "..."},
 *                    "confidence": {"dtype": "f16", "data": "..."}}
 *
 * codes are u16 when the codebook fits (Meissonic's has 8192 codes), else i32; confidence
 * is IEEE half precision (probabilities in [0, 1] keep 11 significant bits; NaN marks
 * tokens that were never masked). The plain form (ts_image_meta_to_json_plain, for
 * `tessera-cli info --json`) writes the same as JSON arrays. Base64 is written here (RFC
 * 4648, with padding): 40 lines do not justify a dependency the engine does not have.
 */
#include "image/ts-image-internal.h"

#include "core/ts-common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MAX_TOKENS (1u << 20) /* 16384 px / 16 squared: the largest grid an image can have */

static const char b64_alphabet[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *
b64_encode (const uint8_t *data, size_t n)
{
  char *out = malloc ((n + 2) / 3 * 4 + 1), *o = out;

  if (!out)
    return NULL;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t) data[i] << 16 | (i + 1 < n ? (uint32_t) data[i + 1] << 8 : 0)
                 | (i + 2 < n ? data[i + 2] : 0);
    *o++ = b64_alphabet[v >> 18 & 63];
    *o++ = b64_alphabet[v >> 12 & 63];
    *o++ = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
    *o++ = i + 2 < n ? b64_alphabet[v & 63] : '=';
  }
  *o = '\0';
  return out;
}

/* NULL for anything that is not padded base64. */
static uint8_t *
b64_decode (const char *s, size_t *n_out)
{
  size_t len = strlen (s), n = 0;
  uint8_t *out;

  if (len % 4 != 0)
    return NULL;
  out = malloc (len / 4 * 3 + 1);
  if (!out)
    return NULL;
  for (size_t i = 0; i < len; i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (int k = 0; k < 4; k++) {
      const char *p = s[i + k] ? strchr (b64_alphabet, s[i + k]) : NULL;
      if (s[i + k] == '=' && i + 4 == len && k >= 2) {
        pad++;
        v <<= 6;
        continue;
      }
      if (!p || pad) {
        free (out);
        return NULL;
      }
      v = v << 6 | (uint32_t) (p - b64_alphabet);
    }
    out[n++] = (uint8_t) (v >> 16);
    if (pad < 2)
      out[n++] = (uint8_t) (v >> 8);
    if (pad < 1)
      out[n++] = (uint8_t) v;
  }
  *n_out = n;
  return out;
}

static uint16_t
f32_to_f16 (float f)
{
  uint32_t x;
  uint16_t sign;
  int32_t e;
  uint32_t m;

  memcpy (&x, &f, 4);
  sign = (uint16_t) (x >> 16 & 0x8000);
  if ((x & 0x7fffffff) > 0x7f800000)
    return sign | 0x7e00; /* NaN */
  e = (int32_t) (x >> 23 & 0xff) - 127 + 15;
  m = x & 0x7fffff;
  if (e >= 31)
    return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10)
      return sign;
    m |= 0x800000;
    uint32_t shift = (uint32_t) (14 - e);
    uint32_t half = m >> shift, rest = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rest > mid || (rest == mid && (half & 1)))
      half++;
    return sign | (uint16_t) half;
  }
  {
    uint32_t half = (uint32_t) e << 10 | m >> 13, rest = m & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1)))
      half++; /* may carry into the exponent, and into infinity: both right */
    return sign | (uint16_t) half;
  }
}

static float
f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000) << 16, e = h >> 10 & 31, m = h & 1023, x;
  float f;

  if (e == 0) {
    f = ldexpf ((float) m, -24);
    return sign ? -f : f;
  }
  if (e == 31)
    x = sign | 0x7f800000 | m << 13;
  else
    x = sign | (e - 15 + 127) << 23 | m << 13;
  memcpy (&f, &x, 4);
  return f;
}

/* One array as {"dtype": ..., "data": base64 (zlib (bytes))}. */
static cJSON *
packed_array (const char *dtype, const uint8_t *bytes, size_t n)
{
  uLongf cap = compressBound ((uLong) n);
  uint8_t *z = malloc (cap ? cap : 1);
  char *text = NULL;
  cJSON *obj = NULL;

  if (z && compress2 (z, &cap, bytes, (uLong) n, 9) == Z_OK && (text = b64_encode (z, cap))) {
    obj = cJSON_CreateObject ();
    if (obj && (!cJSON_AddStringToObject (obj, "dtype", dtype)
                || !cJSON_AddStringToObject (obj, "data", text))) {
      cJSON_Delete (obj);
      obj = NULL;
    }
  }
  free (text);
  free (z);
  return obj;
}

cJSON *
ts_image_trajectory_to_json (const ts_image_meta *meta, bool plain)
{
  size_t n = (size_t) meta->traj_grid_h * meta->traj_grid_w;
  bool wide = false;
  cJSON *obj = cJSON_CreateObject (), *grid = cJSON_CreateArray ();
  uint8_t *buf = malloc (n * 4 + 1);
  bool ok = obj && grid && buf;

  for (size_t i = 0; i < n; i++)
    wide = wide || meta->traj_codes[i] < 0 || meta->traj_codes[i] > 65535;
  ok = ok && cJSON_AddItemToArray (grid, cJSON_CreateNumber (meta->traj_grid_h))
       && cJSON_AddItemToArray (grid, cJSON_CreateNumber (meta->traj_grid_w))
       && cJSON_AddItemToObject (obj, "grid", grid);
  if (!ok) {
    cJSON_Delete (grid);
    goto fail;
  }
  if (plain) {
    cJSON *codes = cJSON_CreateArray (), *steps = cJSON_CreateArray (), *conf = cJSON_CreateArray ();
    ok = codes && steps && conf && cJSON_AddItemToObject (obj, "codes", codes)
         && cJSON_AddItemToObject (obj, "reveal_step", steps)
         && cJSON_AddItemToObject (obj, "confidence", conf);
    if (!ok) {
      cJSON_Delete (codes);
      cJSON_Delete (steps);
      cJSON_Delete (conf);
      goto fail;
    }
    for (size_t i = 0; ok && i < n; i++) {
      float c = meta->traj_confidence[i];
      ok = cJSON_AddItemToArray (codes, cJSON_CreateNumber (meta->traj_codes[i]))
           && cJSON_AddItemToArray (steps, cJSON_CreateNumber (meta->traj_reveal_step[i]))
           && cJSON_AddItemToArray (conf, isfinite (c) ? cJSON_CreateNumber (c) : cJSON_CreateNull ());
    }
    if (!ok)
      goto fail;
    free (buf);
    return obj;
  }
  if (!cJSON_AddStringToObject (obj, "encoding", "zlib+base64"))
    goto fail;
  for (size_t i = 0; i < n; i++) {
    uint32_t v = (uint32_t) meta->traj_codes[i];
    if (wide)
      for (int b = 0; b < 4; b++)
        buf[4 * i + b] = (uint8_t) (v >> (8 * b));
    else
      buf[2 * i] = (uint8_t) v, buf[2 * i + 1] = (uint8_t) (v >> 8);
  }
  ok = cJSON_AddItemToObject (obj, "codes", packed_array (wide ? "i32" : "u16", buf, n * (wide ? 4 : 2)));
  for (size_t i = 0; i < n; i++)
    buf[2 * i] = (uint8_t) meta->traj_reveal_step[i], buf[2 * i + 1] = (uint8_t) (meta->traj_reveal_step[i] >> 8);
  ok = ok && cJSON_AddItemToObject (obj, "reveal_step", packed_array ("u16", buf, n * 2));
  for (size_t i = 0; i < n; i++) {
    uint16_t h = f32_to_f16 (meta->traj_confidence[i]);
    buf[2 * i] = (uint8_t) h, buf[2 * i + 1] = (uint8_t) (h >> 8);
  }
  ok = ok && cJSON_AddItemToObject (obj, "confidence", packed_array ("f16", buf, n * 2));
  if (!ok)
    goto fail;
  free (buf);
  return obj;

fail:
  free (buf);
  cJSON_Delete (obj);
  return NULL;
}

/* Unpacks {"dtype", "data"} into n values of `want_size` bytes per dtype. */
static uint8_t *
unpack (const cJSON *item, const char *const *dtypes, const size_t *sizes, int n_dtypes,
        size_t n, int *which)
{
  const cJSON *dtype = cJSON_GetObjectItemCaseSensitive (item, "dtype");
  const cJSON *data = cJSON_GetObjectItemCaseSensitive (item, "data");
  uint8_t *z, *out;
  size_t zn = 0;
  uLongf len;

  if (!cJSON_IsString (dtype) || !cJSON_IsString (data))
    return NULL;
  for (*which = 0; *which < n_dtypes && strcmp (dtype->valuestring, dtypes[*which]) != 0; (*which)++)
    ;
  if (*which == n_dtypes || !(z = b64_decode (data->valuestring, &zn)))
    return NULL;
  len = (uLongf) (n * sizes[*which]);
  out = malloc (len + 1);
  if (!out || uncompress (out, &len, z, (uLong) zn) != Z_OK || len != n * sizes[*which]) {
    free (out);
    out = NULL;
  }
  free (z);
  return out;
}

ts_status
ts_image_trajectory_from_json (const cJSON *obj, ts_image_meta *meta, ts_error *err)
{
  static const char *const code_dtypes[] = { "u16", "i32" };
  static const size_t code_sizes[] = { 2, 4 };
  static const char *const u16[] = { "u16" }, *const f16[] = { "f16" };
  static const size_t two[] = { 2 };
  const cJSON *grid = cJSON_GetObjectItemCaseSensitive (obj, "grid");
  const cJSON *enc = cJSON_GetObjectItemCaseSensitive (obj, "encoding");
  uint8_t *codes = NULL, *steps = NULL, *conf = NULL;
  double h, w;
  size_t n;
  int which;

  if (!cJSON_IsObject (obj) || !cJSON_IsArray (grid) || cJSON_GetArraySize (grid) != 2
      || !cJSON_IsNumber (cJSON_GetArrayItem (grid, 0)) || !cJSON_IsNumber (cJSON_GetArrayItem (grid, 1)))
    return ts_error_set (err, TS_ERR_FORMAT, "image metadata: \"trajectory\" has no [h, w] grid");
  h = cJSON_GetArrayItem (grid, 0)->valuedouble;
  w = cJSON_GetArrayItem (grid, 1)->valuedouble;
  if (!(h >= 1 && w >= 1 && h == floor (h) && w == floor (w) && h * w <= MAX_TOKENS))
    return ts_error_set (err, TS_ERR_FORMAT, "image metadata: trajectory grid out of range");
  if (!cJSON_IsString (enc) || strcmp (enc->valuestring, "zlib+base64") != 0)
    return ts_error_set (err, TS_ERR_FORMAT,
                         "image metadata: trajectory encoding is not \"zlib+base64\"");
  n = (size_t) h * (size_t) w;
  codes = unpack (cJSON_GetObjectItemCaseSensitive (obj, "codes"), code_dtypes, code_sizes, 2, n, &which);
  {
    int dummy;
    steps = unpack (cJSON_GetObjectItemCaseSensitive (obj, "reveal_step"), u16, two, 1, n, &dummy);
    conf = unpack (cJSON_GetObjectItemCaseSensitive (obj, "confidence"), f16, two, 1, n, &dummy);
  }
  meta->traj_codes = malloc (n * sizeof *meta->traj_codes);
  meta->traj_reveal_step = malloc (n * sizeof *meta->traj_reveal_step);
  meta->traj_confidence = malloc (n * sizeof *meta->traj_confidence);
  if (!codes || !steps || !conf || !meta->traj_codes || !meta->traj_reveal_step
      || !meta->traj_confidence) {
    free (codes);
    free (steps);
    free (conf);
    ts_image_trajectory_clear (meta);
    return ts_error_set (err, TS_ERR_FORMAT,
                         "image metadata: trajectory arrays are not %zu values of their dtype "
                         "(zlib, base64)",
                         n);
  }
  for (size_t i = 0; i < n; i++) {
    if (which == 0)
      meta->traj_codes[i] = codes[2 * i] | codes[2 * i + 1] << 8;
    else
      meta->traj_codes[i] = (int32_t) ((uint32_t) codes[4 * i] | (uint32_t) codes[4 * i + 1] << 8
                                       | (uint32_t) codes[4 * i + 2] << 16
                                       | (uint32_t) codes[4 * i + 3] << 24);
    meta->traj_reveal_step[i] = (uint16_t) (steps[2 * i] | steps[2 * i + 1] << 8);
    meta->traj_confidence[i] = f16_to_f32 ((uint16_t) (conf[2 * i] | conf[2 * i + 1] << 8));
  }
  meta->traj_grid_h = (uint32_t) h;
  meta->traj_grid_w = (uint32_t) w;
  free (codes);
  free (steps);
  free (conf);
  return TS_OK;
}

void
ts_image_trajectory_clear (ts_image_meta *meta)
{
  free (meta->traj_codes);
  free (meta->traj_reveal_step);
  free (meta->traj_confidence);
  meta->traj_codes = NULL;
  meta->traj_reveal_step = NULL;
  meta->traj_confidence = NULL;
  meta->traj_grid_h = meta->traj_grid_w = 0;
}
