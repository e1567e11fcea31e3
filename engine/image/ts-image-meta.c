/* SPDX-License-Identifier: MIT
 *
 * ts-image-meta — the generation parameters stored in a PNG, in their two text forms:
 * AUTOMATIC1111 "infotext" (the `parameters` chunk that A1111, ComfyUI, Civitai and most
 * viewers read; parsed leniently, including files written by other tools) and Tessera's
 * JSON (the `tessera` chunk, an exact round trip). ts-image-png puts them into and takes
 * them out of PNG files; this file only deals in text, and also holds the UTF-8 helpers
 * both share (ts-image-internal.h).
 */
#include "image/ts-image-internal.h"

#include "core/ts-common.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#define META_FORMAT_VERSION 1
#define DEFAULT_VERSION "Tessera " TS_VERSION_STRING

/* ---- text helpers ---------------------------------------------------------------------- */

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
bool
ts_image_utf8_valid (const char *str, size_t len)
{
  const unsigned char *s = (const unsigned char *) str;
  size_t i = 0;

  while (i < len) {
    unsigned c = s[i];
    size_t n;
    uint32_t cp, min;

    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (len - i - 1 < n)
      return false;
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

/* Python's str.strip() whitespace, restricted to ASCII. */
static bool
is_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

char *
ts_image_dup_range (const char *s, size_t len)
{
  char *out = malloc (len + 1);
  if (out) {
    memcpy (out, s, len);
    out[len] = '\0';
  }
  return out;
}

/* A growable NUL-terminated string; after an allocation failure every append is a no-op
 * and `failed` stays set, so callers check once at the end. */
typedef struct {
  char *data;
  size_t len, cap;
  bool failed;
} strbuf;

static void
strbuf_append_len (strbuf *b, const char *s, size_t n)
{
  size_t need;

  if (b->failed)
    return;
  if (!ts_add_size (b->len, n, &need) || !ts_add_size (need, 1, &need)) {
    b->failed = true;
    return;
  }
  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    char *p;
    while (cap < need)
      if (!ts_mul_size (cap, 2, &cap)) {
        b->failed = true;
        return;
      }
    p = realloc (b->data, cap);
    if (!p) {
      b->failed = true;
      return;
    }
    b->data = p;
    b->cap = cap;
  }
  memcpy (b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void
strbuf_append (strbuf *b, const char *s)
{
  strbuf_append_len (b, s, strlen (s));
}

/* Hands over the string ("" when nothing was appended), or NULL after a failure. */
static char *
strbuf_steal (strbuf *b)
{
  char *out;

  if (!b->failed && !b->data)
    strbuf_append_len (b, "", 0);
  if (b->failed) {
    free (b->data);
    out = NULL;
  } else {
    out = b->data;
  }
  b->data = NULL;
  b->len = b->cap = 0;
  return out;
}

char *
ts_image_latin1_to_utf8 (const char *s, size_t len)
{
  strbuf b = { 0 };

  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char) s[i];
    if (c < 0x80) {
      strbuf_append_len (&b, (const char *) &c, 1);
    } else {
      char two[2] = { (char) (0xc0 | (c >> 6)), (char) (0x80 | (c & 0x3f)) };
      strbuf_append_len (&b, two, 2);
    }
  }
  return strbuf_steal (&b);
}

/* ---- locale-independent numbers ------------------------------------------------------ */

/* The app calls setlocale (LC_ALL, ""), and in a locale with a decimal comma "%g" would
 * print "7,5": a comma is the infotext separator. Numbers are formatted and parsed in the C
 * locale, switched per thread with uselocale. */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void
c_locale_create (void)
{
  c_locale = newlocale (LC_NUMERIC_MASK, "C", (locale_t) 0);
}

static locale_t
c_locale_push (void)
{
  pthread_once (&c_locale_once, c_locale_create);
  return c_locale ? uselocale (c_locale) : (locale_t) 0;
}

static void
c_locale_pop (locale_t old)
{
  if (old)
    uselocale (old);
}

/* The shortest "%g" text that reads back as exactly v (so 9 prints as "9", 0.1 as "0.1"),
 * without an exponent where one is not needed: "%.1g" reads 40 back exactly as "4e+01",
 * which people (and A1111's own files) write "40". */
static void
format_double (double v, char *buf, size_t size)
{
  locale_t old = c_locale_push ();
  bool found = false;
  for (int pass = 0; pass < 2 && !found; pass++)
    for (int prec = 1; prec <= 17; prec++) {
      snprintf (buf, size, "%.*g", prec, v);
      if (strtod (buf, NULL) == v && (pass == 1 || !strchr (buf, 'e'))) {
        found = true;
        break;
      }
    }
  c_locale_pop (old);
}

/* Parses a finite double from the start of s; *end is where it stopped. */
static bool
parse_double_prefix (const char *s, double *out, const char **end)
{
  locale_t old;
  char *e;
  double v;

  if (!*s || is_space (*s))
    return false;
  old = c_locale_push ();
  errno = 0;
  v = strtod (s, &e);
  c_locale_pop (old);
  if (e == s || errno == ERANGE || !isfinite (v))
    return false;
  *out = v;
  *end = e;
  return true;
}

static bool
parse_double (const char *s, double *out)
{
  const char *end;
  return parse_double_prefix (s, out, &end) && *end == '\0';
}

/* Decimal digits only (no sign, no spaces), at most max. */
static bool
parse_uint_prefix (const char *s, uint64_t max, uint64_t *out, const char **end)
{
  uint64_t v = 0;
  const char *p = s;

  if (*p < '0' || *p > '9')
    return false;
  for (; *p >= '0' && *p <= '9'; p++) {
    unsigned d = (unsigned) (*p - '0');
    if (v > (max - d) / 10)
      return false;
    v = v * 10 + d;
  }
  *out = v;
  *end = p;
  return true;
}

static bool
parse_uint (const char *s, uint64_t max, uint64_t *out)
{
  const char *end;
  return parse_uint_prefix (s, max, out, &end) && *end == '\0';
}

/* ---- metadata struct ------------------------------------------------------------------- */

/* The string fields, with their JSON keys (= field names) and infotext keys (NULL for the
 * prompts, which are not "Key: value" pairs). */
static const struct {
  size_t offset;
  const char *json_key;
  const char *infotext_key;
} meta_strings[] = {
  { offsetof (ts_image_meta, prompt), "prompt", NULL },
  { offsetof (ts_image_meta, negative_prompt), "negative_prompt", NULL },
  { offsetof (ts_image_meta, sampler), "sampler", "Sampler" },
  { offsetof (ts_image_meta, model), "model", "Model" },
  { offsetof (ts_image_meta, mode), "mode", "Mode" },
  { offsetof (ts_image_meta, schedule), "schedule", "Schedule" },
  { offsetof (ts_image_meta, source), "source", "Source image" },
  { offsetof (ts_image_meta, source_hash), "source_hash", "Source hash" },
  { offsetof (ts_image_meta, backend), "backend", "Backend" },
  { offsetof (ts_image_meta, precision), "precision", "Precision" },
  { offsetof (ts_image_meta, version), "version", "Version" },
};
#define N_META_STRINGS (sizeof meta_strings / sizeof meta_strings[0])

static char **
meta_string (ts_image_meta *meta, size_t i)
{
  return (char **) ((char *) meta + meta_strings[i].offset);
}

static const char *
meta_string_const (const ts_image_meta *meta, size_t i)
{
  return *(char *const *) ((const char *) meta + meta_strings[i].offset);
}

void
ts_image_meta_init (ts_image_meta *meta)
{
  memset (meta, 0, sizeof *meta);
  for (size_t i = 0; i < N_META_STRINGS; i++)
    *meta_string (meta, i) = NULL;
  meta->cfg = NAN;
  meta->temperature_start = NAN;
  meta->temperature_end = NAN;
  meta->aesthetic_score = NAN;
  meta->strength = -1.0;
  meta->remask = -1.0;
  meta->starting_mask_ratio = -1.0;
}

void
ts_image_meta_clear (ts_image_meta *meta)
{
  if (!meta)
    return;
  for (size_t i = 0; i < N_META_STRINGS; i++)
    free (*meta_string (meta, i));
  for (uint32_t i = 0; i < meta->n_steer && meta->steer; i++) {
    free (meta->steer[i].prompt);
    free (meta->steer[i].negative_prompt);
  }
  free (meta->steer);
  ts_image_trajectory_clear (meta);
  ts_image_meta_init (meta);
}

/* Replaces a string field with a copy of [s, s+len), or NULL when empty. */
static bool
meta_set_string (char **field, const char *s, size_t len)
{
  char *copy = NULL;

  if (len > 0) {
    copy = ts_image_dup_range (s, len);
    if (!copy)
      return false;
  }
  free (*field);
  *field = copy;
  return true;
}

static const char *
meta_version (const ts_image_meta *meta)
{
  return ts_image_str_empty (meta->version) ? DEFAULT_VERSION : meta->version;
}

static bool
extend_recorded (const ts_image_meta *meta)
{
  return meta->extend_left || meta->extend_top || meta->extend_right || meta->extend_bottom;
}

static bool
strength_recorded (double strength)
{
  return isfinite (strength) && strength >= 0;
}

/* `what` starts the message: "image" or "image: '<path>'". */
ts_status
ts_image_meta_check_strings (const ts_image_meta *meta, const char *what, ts_error *err)
{
  for (size_t i = 0; i < N_META_STRINGS; i++) {
    const char *s = meta_string_const (meta, i);
    if (s && !ts_image_utf8_valid (s, strlen (s)))
      return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: metadata %s is not valid UTF-8", what,
                           meta_strings[i].json_key);
  }
  return TS_OK;
}

/* ---- A1111 infotext: writing ----------------------------------------------------------- */

/* A1111's quote() JSON-encodes values containing ',', '\n' or ':'. We also quote '"',
 * other control characters and outer whitespace, which A1111's reader would otherwise
 * strip or misread; its reader decodes any quoted value, so the text stays compatible. */
static bool
needs_quoting (const char *v)
{
  size_t n = strlen (v);

  if (n > 0 && (is_space (v[0]) || is_space (v[n - 1])))
    return true;
  for (const char *p = v; *p; p++)
    if (*p == ',' || *p == ':' || *p == '"' || (unsigned char) *p < 0x20)
      return true;
  return false;
}

static void
append_param_sep (strbuf *b, bool *first)
{
  if (!*first)
    strbuf_append (b, ", ");
  *first = false;
}

static void
append_param_string (strbuf *b, bool *first, const char *key, const char *value)
{
  if (ts_image_str_empty (value))
    return;
  append_param_sep (b, first);
  strbuf_append (b, key);
  strbuf_append (b, ": ");
  if (needs_quoting (value)) {
    /* cJSON escapes '"', '\\' and control characters and leaves UTF-8 as is, which is
     * Python's json.dumps (ensure_ascii=False). */
    cJSON *str = cJSON_CreateString (value);
    char *quoted = str ? cJSON_PrintUnformatted (str) : NULL;
    if (quoted)
      strbuf_append (b, quoted);
    else
      b->failed = true;
    free (quoted);
    cJSON_Delete (str);
  } else {
    strbuf_append (b, value);
  }
}

static void
append_param_double (strbuf *b, bool *first, const char *key, double v)
{
  char num[40];

  if (!isfinite (v))
    return;
  format_double (v, num, sizeof num);
  append_param_sep (b, first);
  strbuf_append (b, key);
  strbuf_append (b, ": ");
  strbuf_append (b, num);
}

static void
append_param_uint (strbuf *b, bool *first, const char *key, uint64_t v)
{
  char num[24];

  snprintf (num, sizeof num, "%" PRIu64, v);
  append_param_sep (b, first);
  strbuf_append (b, key);
  strbuf_append (b, ": ");
  strbuf_append (b, num);
}

char *
ts_image_meta_to_parameters (const ts_image_meta *meta)
{
  strbuf b = { 0 };
  bool first = true;
  char *text;
  size_t start = 0, end;

  if (!meta)
    return NULL;

  /* f"{prompt}{negative_prompt_text}\n{generation_params_text}".strip(), as in A1111's
   * create_infotext. */
  if (meta->prompt)
    strbuf_append (&b, meta->prompt);
  if (!ts_image_str_empty (meta->negative_prompt)) {
    strbuf_append (&b, "\nNegative prompt: ");
    strbuf_append (&b, meta->negative_prompt);
  }
  strbuf_append (&b, "\n");

  if (meta->steps > 0)
    append_param_uint (&b, &first, "Steps", meta->steps);
  append_param_string (&b, &first, "Sampler", meta->sampler);
  append_param_double (&b, &first, "CFG scale", meta->cfg);
  append_param_uint (&b, &first, "Seed", meta->seed);
  if (meta->width > 0 && meta->height > 0) {
    char size[32];
    snprintf (size, sizeof size, "%" PRIu32 "x%" PRIu32, meta->width, meta->height);
    append_param_string (&b, &first, "Size", size);
  }
  append_param_string (&b, &first, "Model", meta->model);
  if (isfinite (meta->temperature_start) && isfinite (meta->temperature_end)) {
    char t0[40], t1[40], both[84];
    format_double (meta->temperature_start, t0, sizeof t0);
    format_double (meta->temperature_end, t1, sizeof t1);
    snprintf (both, sizeof both, "%s-%s", t0, t1);
    append_param_string (&b, &first, "Temperature", both);
  }
  append_param_double (&b, &first, "Aesthetic score", meta->aesthetic_score);
  if (meta->crop_top > 0)
    append_param_uint (&b, &first, "Crop top", meta->crop_top);
  if (meta->crop_left > 0)
    append_param_uint (&b, &first, "Crop left", meta->crop_left);
  if (strength_recorded (meta->strength))
    append_param_double (&b, &first, "Denoising strength", meta->strength);
  append_param_string (&b, &first, "Mode", meta->mode);
  if (meta->finish_at > 0)
    append_param_uint (&b, &first, "Finished at step", meta->finish_at);
  if (extend_recorded (meta)) {
    char ext[64];
    snprintf (ext, sizeof ext, "%" PRIu32 ",%" PRIu32 ",%" PRIu32 ",%" PRIu32, meta->extend_left,
              meta->extend_top, meta->extend_right, meta->extend_bottom);
    append_param_string (&b, &first, "Extend", ext);
  }
  if (meta->from_step > 0)
    append_param_uint (&b, &first, "From step", meta->from_step);
  if (strength_recorded (meta->remask))
    append_param_double (&b, &first, "Remask", meta->remask);
  append_param_string (&b, &first, "Schedule", meta->schedule);
  if (strength_recorded (meta->starting_mask_ratio))
    append_param_double (&b, &first, "Starting mask ratio", meta->starting_mask_ratio);
  append_param_string (&b, &first, "Source image", meta->source);
  append_param_string (&b, &first, "Source hash", meta->source_hash);
  append_param_string (&b, &first, "Backend", meta->backend);
  append_param_string (&b, &first, "Precision", meta->precision);
  append_param_string (&b, &first, "Version", meta_version (meta));

  text = strbuf_steal (&b);
  if (!text)
    return NULL;
  end = strlen (text);
  while (start < end && is_space (text[start]))
    start++;
  while (end > start && is_space (text[end - 1]))
    end--;
  memmove (text, text + start, end - start);
  text[end - start] = '\0';
  return text;
}

/* ---- A1111 infotext: reading ------------------------------------------------------------ */

/* One match of A1111's re_param on the parameters line:
 *     \s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)
 * Non-ASCII bytes count as \w (Python's \w is Unicode-aware). */
typedef struct {
  const char *key, *value;
  size_t key_len, value_len;
} infotext_param;

static bool
is_word (char c)
{
  unsigned char u = (unsigned char) c;
  return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
         u == '_' || u >= 0x80;
}

/* Scans one line for re_param matches in linear time. A regex engine retrying at every
 * position is quadratic on a long line without separators (A1111 itself crawls on one);
 * here a failed attempt skips every start that would fail the same way. Searching for a
 * closing quote is linear overall: an opening quote follows ':' or a space, so it is never
 * escaped, and each search stops at or before the next opening quote. */
typedef struct {
  const char *s;
  size_t n, pos;
} param_scanner;

static void
param_scanner_init (param_scanner *sc, const char *s, size_t n, size_t pos)
{
  *sc = (param_scanner) { .s = s, .n = n, .pos = pos };
}

/* Position of the '"' closing the quoted value that opens at v, or where the search stopped
 * without one (no '"' there): "(?:\\.|[^\\"])+", a backslash escapes the next character. */
static size_t
quote_end (const param_scanner *sc, size_t v)
{
  const char *s = sc->s;
  size_t n = sc->n, j;

  for (j = v + 1; j < n && s[j] != '"';) {
    if (s[j] == '\\') {
      if (j + 1 >= n)
        break;
      j += 2;
    } else {
      j++;
    }
  }
  return j;
}

/* Tries a match at p. On success fills out and sets *next past the match; on failure sets
 * *next to the next start that could succeed. */
static bool
param_match_at (param_scanner *sc, size_t p, infotext_param *out, size_t *next)
{
  const char *s = sc->s;
  size_t n = sc->n, q = p, k, v, j, first;

  while (q < n && is_space (s[q]))
    q++;
  if (q >= n || !is_word (s[q])) {
    *next = q + 1; /* every start in [p, q] reaches this q */
    return false;
  }
  /* \w then at least one more character: the first may be several UTF-8 bytes. */
  first = 1;
  while (q + first < n && ((unsigned char) s[q + first] & 0xc0) == 0x80)
    first++;
  for (k = q + first; k < n && (is_word (s[k]) || s[k] == ' ' || s[k] == '-' || s[k] == '/');
       k++)
    ;
  if (k == q + first || k >= n || s[k] != ':') {
    *next = k; /* every start in [p, k) runs to this k and fails too */
    return false;
  }
  out->key = s + q;
  out->key_len = k - q;

  for (v = k + 1; v < n && is_space (s[v]); v++)
    ;
  if (v < n && s[v] == '"') {
    j = quote_end (sc, v);
    if (j < n && s[j] == '"' && j > v + 1 && (j + 1 == n || s[j + 1] == ',')) {
      out->value = s + v;
      out->value_len = j + 1 - v;
      *next = j + 1 < n ? j + 2 : n;
      return true;
    }
  }
  for (j = v; j < n && s[j] != ','; j++)
    ;
  out->value = s + v;
  out->value_len = j - v;
  *next = j < n ? j + 1 : n;
  return true;
}

/* re.findall: the next match at or after the scanner's position. */
static bool
param_next (param_scanner *sc, infotext_param *out)
{
  size_t p = sc->pos;

  while (p < sc->n) {
    size_t next;
    bool ok = param_match_at (sc, p, out, &next);
    p = next > p ? next : p + 1;
    if (ok) {
      sc->pos = p;
      return true;
    }
  }
  sc->pos = sc->n;
  return false;
}

static bool
key_is (const infotext_param *p, const char *key)
{
  return p->key_len == strlen (key) && memcmp (p->key, key, p->key_len) == 0;
}

/* A1111's unquote(): a value that starts and ends with '"' is decoded as a JSON string;
 * if that fails the raw text is kept. Returns a malloc'd copy, NULL when out of memory. */
static char *
param_value_dup (const infotext_param *p)
{
  size_t len = p->value_len;
  char *raw;

  /* [^,]* keeps the spaces before the next comma; A1111 keeps them, we drop them so that
   * "Steps: 20 , ..." still reads as 20. */
  while (len > 0 && is_space (p->value[len - 1]))
    len--;
  raw = ts_image_dup_range (p->value, len);
  if (raw && len >= 2 && raw[0] == '"' && raw[len - 1] == '"') {
    cJSON *json = cJSON_ParseWithOpts (raw, NULL, true);
    if (json && cJSON_IsString (json)) {
      char *decoded = strdup (json->valuestring);
      if (decoded) {
        free (raw);
        raw = decoded;
      } else {
        free (raw);
        raw = NULL;
      }
    }
    cJSON_Delete (json);
  }
  return raw;
}

/* Appends one stripped line to a prompt the way parse_generation_parameters does:
 * prompt += ("" if prompt == "" else "\n") + line. */
static void
prompt_append_line (strbuf *b, const char *line, size_t len)
{
  if (b->len > 0)
    strbuf_append_len (b, "\n", 1);
  strbuf_append_len (b, line, len);
}

/* Applies one known key; unknown keys and values that do not parse are skipped. Returns
 * false only when out of memory. */
static bool
meta_apply_param (ts_image_meta *meta, const infotext_param *p)
{
  char *value;
  uint64_t u, u2;
  double d, d2;
  const char *end;
  bool ok = true;

  value = param_value_dup (p);
  if (!value)
    return false;
  if (!*value) {
    free (value); /* A1111 skips empty values too (v[0] raises) */
    return true;
  }

  for (size_t i = 0; i < N_META_STRINGS; i++) {
    if (meta_strings[i].infotext_key && key_is (p, meta_strings[i].infotext_key)) {
      ok = meta_set_string (meta_string (meta, i), value, strlen (value));
      goto done;
    }
  }

  if (key_is (p, "Steps")) {
    if (parse_uint (value, UINT32_MAX, &u))
      meta->steps = (uint32_t) u;
  } else if (key_is (p, "Seed")) {
    if (parse_uint (value, UINT64_MAX, &u))
      meta->seed = u;
  } else if (key_is (p, "CFG scale")) {
    if (parse_double (value, &d))
      meta->cfg = d;
  } else if (key_is (p, "Size")) {
    /* re_imagesize: ^(\d+)x(\d+)$, width first */
    if (parse_uint_prefix (value, UINT32_MAX, &u, &end) && *end == 'x' &&
        parse_uint (end + 1, UINT32_MAX, &u2)) {
      meta->width = (uint32_t) u;
      meta->height = (uint32_t) u2;
    }
  } else if (key_is (p, "Temperature")) {
    /* "start-end"; strtod stops before the separating '-' ("2-0", "1e-05-0"). A single
     * value is a constant temperature. */
    if (parse_double_prefix (value, &d, &end)) {
      if (*end == '\0') {
        meta->temperature_start = meta->temperature_end = d;
      } else if (*end == '-' && parse_double (end + 1, &d2)) {
        meta->temperature_start = d;
        meta->temperature_end = d2;
      }
    }
  } else if (key_is (p, "Aesthetic score")) {
    if (parse_double (value, &d))
      meta->aesthetic_score = d;
  } else if (key_is (p, "Crop top")) {
    if (parse_uint (value, UINT32_MAX, &u))
      meta->crop_top = (uint32_t) u;
  } else if (key_is (p, "Crop left")) {
    if (parse_uint (value, UINT32_MAX, &u))
      meta->crop_left = (uint32_t) u;
  } else if (key_is (p, "Denoising strength")) {
    if (parse_double (value, &d))
      meta->strength = d;
  } else if (key_is (p, "From step")) {
    if (parse_uint (value, UINT32_MAX, &u))
      meta->from_step = (uint32_t) u;
  } else if (key_is (p, "Remask")) {
    if (parse_double (value, &d))
      meta->remask = d;
  } else if (key_is (p, "Starting mask ratio")) {
    if (parse_double (value, &d))
      meta->starting_mask_ratio = d;
  } else if (key_is (p, "Finished at step")) {
    if (parse_uint (value, UINT32_MAX, &u))
      meta->finish_at = (uint32_t) u;
  } else if (key_is (p, "Extend")) {
    uint64_t e[4];
    const char *q = value;
    int n = 0;
    while (n < 4 && parse_uint_prefix (q, UINT32_MAX, &e[n], &end)) {
      n++;
      if (n < 4 && *end != ',')
        break;
      q = end + 1;
    }
    if (n == 4 && *end == '\0') {
      meta->extend_left = (uint32_t) e[0];
      meta->extend_top = (uint32_t) e[1];
      meta->extend_right = (uint32_t) e[2];
      meta->extend_bottom = (uint32_t) e[3];
    }
  }

done:
  free (value);
  return ok;
}

ts_status
ts_image_meta_from_parameters (const char *text, ts_image_meta *meta, ts_error *err)
{
  strbuf prompt = { 0 }, negative = { 0 };
  size_t b = 0, e, last, lines_end, n_params = 0;
  bool done_with_prompt = false, have_lines;
  infotext_param param;
  param_scanner sc;

  if (!meta)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "image metadata: no output struct");
  ts_image_meta_init (meta);
  if (!text)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "image metadata: no parameters text");
  e = strlen (text);
  if (!ts_image_utf8_valid (text, e))
    return ts_error_set (err, TS_ERR_FORMAT, "image metadata: parameters text is not UTF-8");

  /* *lines, lastline = x.strip().split("\n") */
  while (b < e && is_space (text[b]))
    b++;
  while (e > b && is_space (text[e - 1]))
    e--;
  last = e;
  while (last > b && text[last - 1] != '\n')
    last--;
  param_scanner_init (&sc, text, e, last);
  while (n_params < 3 && param_next (&sc, &param))
    n_params++;
  if (n_params < 3) {
    lines_end = e; /* the last line is prompt text too */
    last = e;
    have_lines = true;
  } else {
    lines_end = last > b ? last - 1 : b;
    have_lines = last > b;
  }

  /* The lines are the '\n'-separated pieces of [b, lines_end), empty ones included, as
   * str.split gives them. */
  for (size_t ls = b; have_lines;) {
    size_t le = ls, s, t;
    while (le < lines_end && text[le] != '\n')
      le++;
    s = ls, t = le;
    while (s < t && is_space (text[s]))
      s++;
    while (t > s && is_space (text[t - 1]))
      t--;
    if (t - s >= 16 && memcmp (text + s, "Negative prompt:", 16) == 0) {
      done_with_prompt = true;
      s += 16;
      while (s < t && is_space (text[s]))
        s++;
    }
    prompt_append_line (done_with_prompt ? &negative : &prompt, text + s, t - s);
    if (le >= lines_end)
      break;
    ls = le + 1;
  }
  if (prompt.failed || negative.failed)
    goto nomem;
  if (!meta_set_string (&meta->prompt, prompt.data ? prompt.data : "", prompt.len) ||
      !meta_set_string (&meta->negative_prompt, negative.data ? negative.data : "",
                        negative.len))
    goto nomem;

  for (param_scanner_init (&sc, text, e, last); param_next (&sc, &param);)
    if (!meta_apply_param (meta, &param))
      goto nomem;

  free (prompt.data);
  free (negative.data);
  return TS_OK;

nomem:
  free (prompt.data);
  free (negative.data);
  ts_image_meta_clear (meta);
  return ts_error_set (err, TS_ERR_NOMEM, "image metadata: out of memory");
}

/* ---- JSON form ------------------------------------------------------------------------ */

/* cJSON 1.7.15 prints a double with "%1.15g" whenever that reads back equal within an
 * epsilon, so 0.1 + 0.2 would come back as 0.3. Numbers are written as raw JSON text from
 * format_double instead, which round-trips exactly (cJSON parses with strtod). */
static bool
json_add_number (cJSON *obj, const char *key, double v)
{
  char num[40];
  format_double (v, num, sizeof num);
  return cJSON_AddRawToObject (obj, key, num) != NULL;
}

static char *
meta_to_json (const ts_image_meta *meta, bool plain)
{
  cJSON *obj;
  char *text = NULL, seed[24];
  bool ok = true;

  if (!meta)
    return NULL;
  obj = cJSON_CreateObject ();
  if (!obj)
    return NULL;

  ok = ok && json_add_number (obj, "format", META_FORMAT_VERSION);
  for (size_t i = 0; i < N_META_STRINGS; i++) {
    const char *s = meta_strings[i].offset == offsetof (ts_image_meta, version)
                        ? meta_version (meta)
                        : meta_string_const (meta, i);
    if (!ts_image_str_empty (s))
      ok = ok && cJSON_AddStringToObject (obj, meta_strings[i].json_key, s);
  }
  /* JSON numbers are doubles in most readers: 2^64-1 would not survive as a number. */
  snprintf (seed, sizeof seed, "%" PRIu64, meta->seed);
  ok = ok && cJSON_AddStringToObject (obj, "seed", seed);
  ok = ok && json_add_number (obj, "steps", meta->steps);
  ok = ok && json_add_number (obj, "width", meta->width);
  ok = ok && json_add_number (obj, "height", meta->height);
  ok = ok && json_add_number (obj, "crop_top", meta->crop_top);
  ok = ok && json_add_number (obj, "crop_left", meta->crop_left);
  if (isfinite (meta->cfg))
    ok = ok && json_add_number (obj, "cfg", meta->cfg);
  if (isfinite (meta->temperature_start))
    ok = ok && json_add_number (obj, "temperature_start", meta->temperature_start);
  if (isfinite (meta->temperature_end))
    ok = ok && json_add_number (obj, "temperature_end", meta->temperature_end);
  if (isfinite (meta->aesthetic_score))
    ok = ok && json_add_number (obj, "aesthetic_score", meta->aesthetic_score);
  if (strength_recorded (meta->strength))
    ok = ok && json_add_number (obj, "strength", meta->strength);
  if (meta->finish_at > 0)
    ok = ok && json_add_number (obj, "finish_at", meta->finish_at);
  if (meta->from_step > 0)
    ok = ok && json_add_number (obj, "from_step", meta->from_step);
  if (strength_recorded (meta->remask))
    ok = ok && json_add_number (obj, "remask", meta->remask);
  if (strength_recorded (meta->starting_mask_ratio))
    ok = ok && json_add_number (obj, "starting_mask_ratio", meta->starting_mask_ratio);
  if (extend_recorded (meta)) {
    ok = ok && json_add_number (obj, "extend_left", meta->extend_left);
    ok = ok && json_add_number (obj, "extend_top", meta->extend_top);
    ok = ok && json_add_number (obj, "extend_right", meta->extend_right);
    ok = ok && json_add_number (obj, "extend_bottom", meta->extend_bottom);
  }

  if (ok && meta->n_steer > 0 && meta->steer) {
    cJSON *list = cJSON_AddArrayToObject (obj, "steer");
    ok = list != NULL;
    for (uint32_t i = 0; ok && i < meta->n_steer; i++) {
      const ts_image_steer *c = &meta->steer[i];
      cJSON *e = cJSON_CreateObject ();
      ok = e && cJSON_AddItemToArray (list, e);
      ok = ok && json_add_number (e, "step", c->step);
      if (ok && c->prompt)
        ok = cJSON_AddStringToObject (e, "prompt", c->prompt) != NULL;
      if (ok && c->negative_prompt)
        ok = cJSON_AddStringToObject (e, "negative_prompt", c->negative_prompt) != NULL;
      if (ok && isfinite (c->cfg))
        ok = json_add_number (e, "cfg", c->cfg);
      if (ok && isfinite (c->temperature_start))
        ok = json_add_number (e, "temperature_start", c->temperature_start);
      if (ok && isfinite (c->temperature_end))
        ok = json_add_number (e, "temperature_end", c->temperature_end);
    }
  }

  if (ok && meta->traj_grid_h > 0 && meta->traj_grid_w > 0 && meta->traj_codes
      && meta->traj_reveal_step && meta->traj_confidence) {
    cJSON *traj = ts_image_trajectory_to_json (meta, plain);
    ok = traj && cJSON_AddItemToObject (obj, "trajectory", traj);
  }

  if (ok)
    text = plain ? cJSON_Print (obj) : cJSON_PrintUnformatted (obj);
  cJSON_Delete (obj);
  return text;
}

char *
ts_image_meta_to_json (const ts_image_meta *meta)
{
  return meta_to_json (meta, false);
}

char *
ts_image_meta_to_json_plain (const ts_image_meta *meta)
{
  return meta_to_json (meta, true);
}

static ts_status
json_get_uint (const cJSON *obj, const char *key, uint64_t max, uint64_t *out, bool *found,
               ts_error *err)
{
  const cJSON *item = cJSON_GetObjectItemCaseSensitive (obj, key);
  double v;

  *found = item != NULL;
  if (!item)
    return TS_OK;
  v = item->valuedouble;
  if (!cJSON_IsNumber (item) || !(v >= 0) || v > (double) max || v != floor (v))
    return ts_error_set (err, TS_ERR_FORMAT,
                         "image metadata: \"%s\" must be an integer in [0, %" PRIu64 "]", key,
                         max);
  *out = (uint64_t) v;
  return TS_OK;
}

static ts_status
json_get_u32 (const cJSON *obj, const char *key, uint32_t *field, ts_error *err)
{
  uint64_t v;
  bool found;
  ts_status status = json_get_uint (obj, key, UINT32_MAX, &v, &found, err);
  if (status == TS_OK && found)
    *field = (uint32_t) v;
  return status;
}

static ts_status
json_get_double (const cJSON *obj, const char *key, double *field, ts_error *err)
{
  const cJSON *item = cJSON_GetObjectItemCaseSensitive (obj, key);

  if (!item)
    return TS_OK;
  if (!cJSON_IsNumber (item) || !isfinite (item->valuedouble))
    return ts_error_set (err, TS_ERR_FORMAT, "image metadata: \"%s\" must be a number", key);
  *field = item->valuedouble;
  return TS_OK;
}

/* "steer": [{step, prompt?, negative_prompt?, cfg?, temperature_start?, temperature_end?}],
 * steps increasing. */
static ts_status
steer_from_json (const cJSON *list, ts_image_meta *meta, ts_error *err)
{
  int n = cJSON_IsArray (list) ? cJSON_GetArraySize (list) : -1;
  uint32_t last = 0;

  if (n < 0 || n > 100000)
    return ts_error_set (err, TS_ERR_FORMAT, "image metadata: \"steer\" must be a list of changes");
  if (n == 0)
    return TS_OK;
  meta->steer = calloc ((size_t) n, sizeof *meta->steer);
  if (!meta->steer)
    return ts_error_set (err, TS_ERR_NOMEM, "image metadata: out of memory");
  for (int i = 0; i < n; i++) {
    const cJSON *e = cJSON_GetArrayItem (list, i);
    ts_image_steer *c = &meta->steer[i];
    const char *keys[2] = { "prompt", "negative_prompt" };
    char **fields[2] = { &c->prompt, &c->negative_prompt };
    ts_status st;

    c->cfg = c->temperature_start = c->temperature_end = NAN;
    meta->n_steer = (uint32_t) i + 1;
    if (!cJSON_IsObject (e))
      return ts_error_set (err, TS_ERR_FORMAT, "image metadata: \"steer\" item %d is not an object", i);
    if ((st = json_get_u32 (e, "step", &c->step, err)) != TS_OK
        || (st = json_get_double (e, "cfg", &c->cfg, err)) != TS_OK
        || (st = json_get_double (e, "temperature_start", &c->temperature_start, err)) != TS_OK
        || (st = json_get_double (e, "temperature_end", &c->temperature_end, err)) != TS_OK)
      return st;
    if (c->step <= last)
      return ts_error_set (err, TS_ERR_FORMAT,
                           "image metadata: \"steer\" item %d: steps must be 1 or more and increase", i);
    last = c->step;
    for (int k = 0; k < 2; k++) {
      const cJSON *v = cJSON_GetObjectItemCaseSensitive (e, keys[k]);
      if (!v)
        continue;
      if (!cJSON_IsString (v))
        return ts_error_set (err, TS_ERR_FORMAT, "image metadata: \"steer\" item %d: \"%s\" must be a string", i,
                             keys[k]);
      *fields[k] = strdup (v->valuestring);
      if (!*fields[k])
        return ts_error_set (err, TS_ERR_NOMEM, "image metadata: out of memory");
    }
  }
  return TS_OK;
}

ts_status
ts_image_meta_from_json (const char *json, ts_image_meta *meta, ts_error *err)
{
  cJSON *root = NULL;
  const cJSON *item;
  uint64_t format;
  bool found;
  ts_status status;

  if (!meta)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "image metadata: no output struct");
  ts_image_meta_init (meta);
  if (!json)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "image metadata: no JSON text");
  /* cJSON copies string bytes without checking them; the struct promises UTF-8. */
  if (!ts_image_utf8_valid (json, strlen (json)))
    return ts_error_set (err, TS_ERR_FORMAT, "image metadata: JSON text is not UTF-8");

  root = cJSON_ParseWithOpts (json, NULL, true);
  if (!root) {
    status = ts_error_set (err, TS_ERR_FORMAT, "image metadata: not valid JSON");
    goto fail;
  }
  if (!cJSON_IsObject (root)) {
    status = ts_error_set (err, TS_ERR_FORMAT, "image metadata: JSON is not an object");
    goto fail;
  }
  status = json_get_uint (root, "format", UINT32_MAX, &format, &found, err);
  if (status != TS_OK)
    goto fail;
  if (!found) {
    status = ts_error_set (err, TS_ERR_FORMAT, "image metadata: no \"format\" key");
    goto fail;
  }
  if (format != META_FORMAT_VERSION) {
    status = ts_error_set (err, TS_ERR_UNSUPPORTED,
                           "image metadata: format %" PRIu64 " (this engine reads format %d)",
                           format, META_FORMAT_VERSION);
    goto fail;
  }

  for (size_t i = 0; i < N_META_STRINGS; i++) {
    item = cJSON_GetObjectItemCaseSensitive (root, meta_strings[i].json_key);
    if (!item)
      continue;
    if (!cJSON_IsString (item)) {
      status = ts_error_set (err, TS_ERR_FORMAT, "image metadata: \"%s\" must be a string",
                             meta_strings[i].json_key);
      goto fail;
    }
    if (!meta_set_string (meta_string (meta, i), item->valuestring,
                          strlen (item->valuestring)))
      goto nomem;
  }

  item = cJSON_GetObjectItemCaseSensitive (root, "seed");
  if (item) {
    /* A decimal string (what we write) or, from other writers, an exact JSON integer. */
    if (cJSON_IsString (item)) {
      if (!parse_uint (item->valuestring, UINT64_MAX, &meta->seed)) {
        status = ts_error_set (err, TS_ERR_FORMAT,
                               "image metadata: \"seed\" must be a decimal uint64");
        goto fail;
      }
    } else if ((status = json_get_uint (root, "seed", (uint64_t) 1 << 53, &meta->seed, &found,
                                        err)) != TS_OK) {
      goto fail;
    }
  }
  if ((status = json_get_u32 (root, "steps", &meta->steps, err)) != TS_OK ||
      (status = json_get_u32 (root, "width", &meta->width, err)) != TS_OK ||
      (status = json_get_u32 (root, "height", &meta->height, err)) != TS_OK ||
      (status = json_get_u32 (root, "crop_top", &meta->crop_top, err)) != TS_OK ||
      (status = json_get_u32 (root, "crop_left", &meta->crop_left, err)) != TS_OK ||
      (status = json_get_u32 (root, "finish_at", &meta->finish_at, err)) != TS_OK ||
      (status = json_get_u32 (root, "from_step", &meta->from_step, err)) != TS_OK ||
      (status = json_get_double (root, "remask", &meta->remask, err)) != TS_OK ||
      (status = json_get_double (root, "starting_mask_ratio", &meta->starting_mask_ratio, err)) != TS_OK ||
      (status = json_get_u32 (root, "extend_left", &meta->extend_left, err)) != TS_OK ||
      (status = json_get_u32 (root, "extend_top", &meta->extend_top, err)) != TS_OK ||
      (status = json_get_u32 (root, "extend_right", &meta->extend_right, err)) != TS_OK ||
      (status = json_get_u32 (root, "extend_bottom", &meta->extend_bottom, err)) != TS_OK ||
      (status = json_get_double (root, "cfg", &meta->cfg, err)) != TS_OK ||
      (status = json_get_double (root, "temperature_start", &meta->temperature_start, err)) !=
          TS_OK ||
      (status = json_get_double (root, "temperature_end", &meta->temperature_end, err)) !=
          TS_OK ||
      (status = json_get_double (root, "aesthetic_score", &meta->aesthetic_score, err)) !=
          TS_OK ||
      (status = json_get_double (root, "strength", &meta->strength, err)) != TS_OK)
    goto fail;
  item = cJSON_GetObjectItemCaseSensitive (root, "steer");
  if (item && (status = steer_from_json (item, meta, err)) != TS_OK)
    goto fail;
  /* A damaged trajectory costs the trajectory, not the parameters. */
  item = cJSON_GetObjectItemCaseSensitive (root, "trajectory");
  if (item) {
    ts_error terr;
    if (ts_image_trajectory_from_json (item, meta, &terr) != TS_OK)
      TS_LOG_W ("%s; the trajectory is ignored", terr.message);
  }

  cJSON_Delete (root);
  return TS_OK;

nomem:
  status = ts_error_set (err, TS_ERR_NOMEM, "image metadata: out of memory");
fail:
  cJSON_Delete (root);
  ts_image_meta_clear (meta);
  return status;
}
