/* SPDX-License-Identifier: MIT
 *
 * ts-image — the end of the pipeline: the RGB8 image the VQ decoder produces, and PNG files
 * with the generation parameters in them. PNG goes through libpng; the parameters are
 * written twice, as AUTOMATIC1111 "infotext" in a `parameters` chunk (what A1111, ComfyUI,
 * Civitai and most viewers read) and as JSON in a `tessera` iTXt chunk (exact round trip).
 * Reading converts any PNG to RGB8 and accepts either metadata form, including A1111 files
 * written by other tools. Files are written atomically (temporary file, fsync, rename) and
 * read with hard limits on every size a hostile file controls.
 *
 * libpng reports errors by longjmp. Every setjmp here sits in a small function
 * (png_guarded) that has no local variables of its own: whatever the guarded code
 * allocates is stored in a png_job the caller owns, so after a longjmp nothing depends on
 * the value of a non-volatile local (C11 7.13.2.1p3) and the caller frees it all on one
 * cleanup path.
 */
#include "core/ts-common.h"

#include <cjson/cJSON.h>
#include <png.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stddef.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Per-chunk cap for the reader: the stored size of text chunks (enforced by png_track_chunks:
 * libpng 1.6.39 only warns about a chunk over png_set_chunk_malloc_max and then allocates
 * it anyway), and their size after decompression (enforced by libpng, which drops the
 * chunk). IDAT is streamed and not affected; other ancillary chunks are skipped unread. */
#define PNG_CHUNK_BYTES_MAX ((size_t) 8 << 20)
/* How many ancillary chunks libpng keeps (text chunks count against it), so that a file
 * cannot pile up CHUNK_BYTES_MAX-sized text chunks without bound. */
#define PNG_TEXT_CHUNKS_MAX 32

#define META_FORMAT_VERSION 1
#define DEFAULT_VERSION "Tessera " TS_VERSION_STRING

/* ---- images -------------------------------------------------------------------------- */

ts_image *
ts_image_new (uint32_t width, uint32_t height, ts_error *err)
{
  ts_image *img = NULL;
  size_t n_bytes;

  if (width == 0 || height == 0) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "image: %" PRIu32 "x%" PRIu32 " has a zero side",
                  width, height);
    return NULL;
  }
  if (!ts_mul_size (width, height, &n_bytes) || !ts_mul_size (n_bytes, 3, &n_bytes)) {
    ts_error_set (err, TS_ERR_NOMEM, "image: %" PRIu32 "x%" PRIu32 " is too large", width,
                  height);
    return NULL;
  }
  img = calloc (1, sizeof *img);
  if (!img)
    goto fail;
  img->pixels = calloc (n_bytes, 1);
  if (!img->pixels)
    goto fail;
  img->width = width;
  img->height = height;
  return img;

fail:
  free (img);
  ts_error_set (err, TS_ERR_NOMEM, "image: out of memory for %" PRIu32 "x%" PRIu32 " pixels",
                width, height);
  return NULL;
}

void
ts_image_free (ts_image *img)
{
  if (!img)
    return;
  free (img->pixels);
  free (img);
}

/* ---- text helpers ---------------------------------------------------------------------- */

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool
utf8_valid (const char *str, size_t len)
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

static bool
is_ascii (const char *s)
{
  for (; *s; s++)
    if ((unsigned char) *s >= 0x80)
      return false;
  return true;
}

/* Python's str.strip() whitespace, restricted to ASCII. */
static bool
is_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static char *
dup_range (const char *s, size_t len)
{
  char *out = malloc (len + 1);
  if (out) {
    memcpy (out, s, len);
    out[len] = '\0';
  }
  return out;
}

static bool
str_empty (const char *s)
{
  return !s || !*s;
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

/* The shortest "%g" text that reads back as exactly v (so 9 prints as "9", 0.1 as "0.1"). */
static void
format_double (double v, char *buf, size_t size)
{
  locale_t old = c_locale_push ();
  for (int prec = 1; prec <= 17; prec++) {
    snprintf (buf, size, "%.*g", prec, v);
    if (strtod (buf, NULL) == v)
      break;
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
  { offsetof (ts_image_meta, source), "source", "Source image" },
  { offsetof (ts_image_meta, backend), "backend", "Backend" },
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
}

void
ts_image_meta_clear (ts_image_meta *meta)
{
  if (!meta)
    return;
  for (size_t i = 0; i < N_META_STRINGS; i++)
    free (*meta_string (meta, i));
  ts_image_meta_init (meta);
}

/* Replaces a string field with a copy of [s, s+len), or NULL when empty. */
static bool
meta_set_string (char **field, const char *s, size_t len)
{
  char *copy = NULL;

  if (len > 0) {
    copy = dup_range (s, len);
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
  return str_empty (meta->version) ? DEFAULT_VERSION : meta->version;
}

static bool
strength_recorded (double strength)
{
  return isfinite (strength) && strength >= 0;
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
  if (str_empty (value))
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
  if (!str_empty (meta->negative_prompt)) {
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
  append_param_string (&b, &first, "Source image", meta->source);
  append_param_string (&b, &first, "Backend", meta->backend);
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
  raw = dup_range (p->value, len);
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
  if (!utf8_valid (text, e))
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

char *
ts_image_meta_to_json (const ts_image_meta *meta)
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
    if (!str_empty (s))
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

  if (ok)
    text = cJSON_PrintUnformatted (obj);
  cJSON_Delete (obj);
  return text;
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
  if (!utf8_valid (json, strlen (json)))
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
      (status = json_get_double (root, "cfg", &meta->cfg, err)) != TS_OK ||
      (status = json_get_double (root, "temperature_start", &meta->temperature_start, err)) !=
          TS_OK ||
      (status = json_get_double (root, "temperature_end", &meta->temperature_end, err)) !=
          TS_OK ||
      (status = json_get_double (root, "aesthetic_score", &meta->aesthetic_score, err)) !=
          TS_OK ||
      (status = json_get_double (root, "strength", &meta->strength, err)) != TS_OK)
    goto fail;

  cJSON_Delete (root);
  return TS_OK;

nomem:
  status = ts_error_set (err, TS_ERR_NOMEM, "image metadata: out of memory");
fail:
  cJSON_Delete (root);
  ts_image_meta_clear (meta);
  return status;
}

/* ---- libpng plumbing ---------------------------------------------------------------- */

typedef struct {
  jmp_buf jmp;
  png_structp png;
  png_infop info;
  const char *name;  /* for messages: the path, or "PNG data" */
  ts_status code;    /* set by our callbacks before they raise; else default_code */
  ts_status default_code;
  char message[512];
  char warning[256]; /* the first libpng warning, added to the error message */

  /* writing */
  const ts_image *img;
  png_text text[2];
  int n_text;
  uint8_t *out;
  size_t out_len, out_cap;

  /* reading */
  FILE *file;
  const uint8_t *src;
  size_t src_len, src_pos;
  uint64_t stream_pos, next_chunk; /* bytes read so far; offset of the next chunk header */
  uint8_t chunk_header[8];
  uint8_t *pixels; /* width*height*channels while decoding, then width*height*3 */
  png_bytep *rows;
  uint32_t width, height;
  int channels;
} png_job;

static void
png_on_error (png_structp png, png_const_charp msg)
{
  png_job *job = png_get_error_ptr (png);

  if (job->code == TS_OK) {
    job->code = job->default_code;
    if (job->warning[0])
      snprintf (job->message, sizeof job->message, "%s (after: %s)", msg, job->warning);
    else
      snprintf (job->message, sizeof job->message, "%s", msg);
  }
  longjmp (job->jmp, 1);
}

static void
png_on_warning (png_structp png, png_const_charp msg)
{
  png_job *job = png_get_error_ptr (png);

  TS_LOG_D ("image: %s: libpng: %s", job->name, msg);
  if (!job->warning[0])
    snprintf (job->warning, sizeof job->warning, "%s", msg);
}

/* Raises an error of our own through libpng's error path. */
static _Noreturn void job_fail (png_job *job, ts_status code, const char *fmt, ...)
    TS_PRINTF (3, 4);

static _Noreturn void
job_fail (png_job *job, ts_status code, const char *fmt, ...)
{
  va_list ap;

  if (job->code == TS_OK) {
    job->code = code;
    va_start (ap, fmt);
    vsnprintf (job->message, sizeof job->message, fmt, ap);
    va_end (ap);
  }
  png_error (job->png, job->message);
}

/* Runs fn under setjmp. No locals here and none used after a longjmp: see the top. Kept out
 * of line so that the setjmp stays in this frame rather than in the caller's. */
#if defined(__GNUC__)
__attribute__ ((noinline))
#endif
static bool
png_guarded (png_job *job, void (*fn) (png_job *))
{
  if (setjmp (job->jmp))
    return false;
  fn (job);
  return true;
}

/* ---- PNG writing --------------------------------------------------------------------- */

static void
png_write_memory (png_structp png, png_bytep data, size_t n)
{
  png_job *job = png_get_io_ptr (png);

  if (n > job->out_cap - job->out_len) {
    size_t need, cap = job->out_cap ? job->out_cap : 64 * 1024;
    uint8_t *p;
    if (!ts_add_size (job->out_len, n, &need))
      job_fail (job, TS_ERR_NOMEM, "encoded PNG is too large");
    while (cap < need)
      if (!ts_mul_size (cap, 2, &cap))
        job_fail (job, TS_ERR_NOMEM, "encoded PNG is too large");
    p = realloc (job->out, cap);
    if (!p)
      job_fail (job, TS_ERR_NOMEM, "out of memory for %zu bytes of PNG", cap);
    job->out = p;
    job->out_cap = cap;
  }
  memcpy (job->out + job->out_len, data, n);
  job->out_len += n;
}

static void
png_flush_nothing (png_structp png)
{
  (void) png;
}

static void
png_write_body (png_job *job)
{
  const ts_image *img = job->img;

  png_set_write_fn (job->png, job, png_write_memory, png_flush_nothing);
  png_set_IHDR (job->png, job->info, img->width, img->height, 8, PNG_COLOR_TYPE_RGB,
                PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  /* Text goes before IDAT: PIL (A1111, ComfyUI) only sees chunks before the image data
   * unless the pixels are loaded too. */
  if (job->n_text > 0)
    png_set_text (job->png, job->info, job->text, job->n_text);
  png_write_info (job->png, job->info);
  for (uint32_t y = 0; y < img->height; y++)
    png_write_row (job->png, img->pixels + (size_t) y * img->width * 3);
  png_write_end (job->png, job->info);
}

/* `what` starts every message: "image" or "image: '<path>'". */
static ts_status
check_image (const ts_image *img, const char *what, ts_error *err)
{
  if (!img || !img->pixels || img->width == 0 || img->height == 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: no pixels to write", what);
  if (img->width > TS_IMAGE_MAX_SIDE || img->height > TS_IMAGE_MAX_SIDE ||
      (uint64_t) img->width * img->height > TS_IMAGE_MAX_PIXELS)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "%s: %" PRIu32 "x%" PRIu32 " is larger than the PNG files this engine "
                         "reads (%u per side, %u pixels)",
                         what, img->width, img->height, TS_IMAGE_MAX_SIDE, TS_IMAGE_MAX_PIXELS);
  return TS_OK;
}

static ts_status
check_meta_strings (const ts_image_meta *meta, const char *what, ts_error *err)
{
  for (size_t i = 0; i < N_META_STRINGS; i++) {
    const char *s = meta_string_const (meta, i);
    if (s && !utf8_valid (s, strlen (s)))
      return ts_error_set (err, TS_ERR_INVALID_ARG, "%s: metadata %s is not valid UTF-8", what,
                           meta_strings[i].json_key);
  }
  return TS_OK;
}

static ts_status
encode_png (const ts_image *img, const ts_image_meta *meta, const char *what,
            uint8_t **out_data, size_t *out_size, ts_error *err)
{
  static char key_parameters[] = "parameters", key_tessera[] = "tessera";
  png_job job = { .name = what, .default_code = TS_ERR_NOMEM, .img = img };
  char *parameters = NULL, *json = NULL;
  ts_status status;

  *out_data = NULL;
  *out_size = 0;
  if ((status = check_image (img, what, err)) != TS_OK)
    return status;
  if (meta && (status = check_meta_strings (meta, what, err)) != TS_OK)
    return status;

  if (meta) {
    parameters = ts_image_meta_to_parameters (meta);
    json = ts_image_meta_to_json (meta);
    if (!parameters || !json) {
      status = ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory for metadata", what);
      goto done;
    }
    /* `parameters` mirrors PIL's PngInfo.add_text, which A1111 and ComfyUI use: tEXt when
     * the text fits tEXt's Latin-1, iTXt (UTF-8) otherwise; their readers accept both. We
     * switch at ASCII rather than Latin-1 so that a tEXt chunk is never ambiguous: readers
     * that wrongly assume UTF-8 in tEXt and readers that follow the spec agree on it.
     * Neither chunk is compressed, so `strings` and simple tools can read them. */
    job.text[0].compression = is_ascii (parameters) ? PNG_TEXT_COMPRESSION_NONE
                                                    : PNG_ITXT_COMPRESSION_NONE;
    job.text[0].key = key_parameters;
    job.text[0].text = parameters;
    job.text[1].compression = PNG_ITXT_COMPRESSION_NONE;
    job.text[1].key = key_tessera;
    job.text[1].text = json;
    job.n_text = 2;
  }

  job.png = png_create_write_struct (PNG_LIBPNG_VER_STRING, &job, png_on_error, png_on_warning);
  if (!job.png || !(job.info = png_create_info_struct (job.png))) {
    status = ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory for the PNG encoder", what);
    goto done;
  }
  /* After check_image and check_meta_strings, what libpng can still fail on is memory
   * (zlib state, buffers): hence default_code TS_ERR_NOMEM. */
  if (!png_guarded (&job, png_write_body)) {
    status = ts_error_set (err, job.code, "%s: cannot encode PNG: %s", what, job.message);
    goto done;
  }
  *out_data = job.out;
  *out_size = job.out_len;
  job.out = NULL;
  status = TS_OK;

done:
  png_destroy_write_struct (&job.png, &job.info);
  free (job.out);
  free (parameters);
  free (json);
  return status;
}

ts_status
ts_image_encode_png_memory (const ts_image *img, const ts_image_meta *meta, uint8_t **out_data,
                            size_t *out_size, ts_error *err)
{
  if (!out_data || !out_size)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "image: no output buffer");
  return encode_png (img, meta, "image", out_data, out_size, err);
}

/* ---- atomic file writing ------------------------------------------------------------ */

/* Creates "<path>.tmp-XXXXXX" exclusively, like mkstemp, but with mode 0666 so that the
 * kernel applies the umask: mkstemp's 0600 would make saved images private, and reading
 * the umask (umask () twice) is racy with other threads. O_EXCL makes the name ours. */
static int
create_temp (const char *path, char **tmp_out)
{
  static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  size_t len = strlen (path);
  char *tmp = malloc (len + sizeof ".tmp-XXXXXX");
  int fd = -1;

  *tmp_out = NULL;
  if (!tmp) {
    errno = ENOMEM;
    return -1;
  }
  for (int attempt = 0; attempt < 100; attempt++) {
    unsigned char rnd[6];
    if (getrandom (rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t) sizeof rnd) {
      uint64_t x = (uint64_t) (ts_time_now () * 1e9) ^ ((uint64_t) getpid () << 32) ^
                   (uint64_t) attempt * 0x9e3779b97f4a7c15u;
      for (size_t i = 0; i < sizeof rnd; i++, x >>= 8)
        rnd[i] = (unsigned char) x;
    }
    memcpy (tmp, path, len);
    memcpy (tmp + len, ".tmp-", 5);
    for (size_t i = 0; i < sizeof rnd; i++)
      tmp[len + 5 + i] = chars[rnd[i] % (sizeof chars - 1)];
    tmp[len + 11] = '\0';
    fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST)
      break;
  }
  if (fd < 0) {
    int saved = errno;
    free (tmp);
    errno = saved;
    return -1;
  }
  *tmp_out = tmp;
  return fd;
}

static bool
write_all (int fd, const uint8_t *data, size_t size)
{
  while (size > 0) {
    ssize_t n = write (fd, data, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (n == 0) {
      errno = EIO;
      return false;
    }
    data += n;
    size -= (size_t) n;
  }
  return true;
}

/* Makes the rename durable. The file is already complete and in place, so a failure here
 * is logged rather than reported. */
static void
sync_parent_dir (const char *path)
{
  const char *slash = strrchr (path, '/');
  char *dir = slash ? dup_range (path, slash == path ? 1 : (size_t) (slash - path)) : strdup (".");
  int fd;

  if (!dir)
    return;
  fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || (fsync (fd) != 0 && errno != EINVAL))
    TS_LOG_W ("image: '%s': cannot sync directory '%s': %s", path, dir, strerror (errno));
  if (fd >= 0)
    close (fd);
  free (dir);
}

static ts_status
write_file_atomic (const char *path, const uint8_t *data, size_t size, ts_error *err)
{
  char *tmp = NULL;
  const char *what;
  int fd, saved;

  fd = create_temp (path, &tmp);
  if (fd < 0) {
    what = "cannot create a temporary file";
    goto fail;
  }
  what = "cannot write";
  if (!write_all (fd, data, size))
    goto fail;
  what = "cannot sync";
  if (fsync (fd) != 0)
    goto fail;
  what = "cannot write"; /* close reports deferred write errors (NFS, quota) */
  saved = close (fd);
  fd = -1;
  if (saved != 0)
    goto fail;
  what = "cannot rename the temporary file over it";
  if (rename (tmp, path) != 0)
    goto fail;
  free (tmp);
  sync_parent_dir (path);
  return TS_OK;

fail:
  saved = errno;
  if (fd >= 0)
    close (fd);
  if (tmp) {
    unlink (tmp);
    free (tmp);
  }
  return ts_error_set (err, TS_ERR_IO, "image: '%s': %s: %s", path, what, strerror (saved));
}

ts_status
ts_image_save_png (const ts_image *img, const ts_image_meta *meta, const char *path,
                   ts_error *err)
{
  uint8_t *data = NULL;
  size_t size = 0;
  char what[1024];
  ts_status status;

  if (str_empty (path))
    return ts_error_set (err, TS_ERR_INVALID_ARG, "image: no file name to save to");
  snprintf (what, sizeof what, "image: '%s'", path);
  status = encode_png (img, meta, what, &data, &size, err);
  if (status != TS_OK)
    return status;
  status = write_file_atomic (path, data, size, err);
  free (data);
  return status;
}

/* ---- PNG reading ---------------------------------------------------------------------- */

/* Follows the chunk layout (length, type, data, CRC after the 8-byte signature) in the bytes
 * libpng reads, whatever pieces it reads them in, and stops at a text chunk over the cap
 * before libpng allocates it. */
static void
png_track_chunks (png_job *job, const uint8_t *data, size_t n)
{
  uint64_t begin = job->stream_pos, end = begin + n;

  while (job->next_chunk < end) {
    uint64_t h = job->next_chunk;
    uint32_t length;
    const uint8_t *type = job->chunk_header + 4;

    for (uint64_t i = h > begin ? h : begin; i < h + 8 && i < end; i++)
      job->chunk_header[i - h] = data[i - begin];
    if (h + 8 > end)
      break; /* the rest of the header comes with the next read */
    length = (uint32_t) job->chunk_header[0] << 24 | (uint32_t) job->chunk_header[1] << 16 |
             (uint32_t) job->chunk_header[2] << 8 | job->chunk_header[3];
    if ((memcmp (type, "tEXt", 4) == 0 || memcmp (type, "zTXt", 4) == 0 ||
         memcmp (type, "iTXt", 4) == 0) &&
        length > PNG_CHUNK_BYTES_MAX)
      job_fail (job, TS_ERR_FORMAT, "%.4s chunk of %" PRIu32 " bytes is too large (limit %zu)",
                (const char *) type, length, PNG_CHUNK_BYTES_MAX);
    job->next_chunk = h + 12 + length;
  }
  job->stream_pos = end;
}

static void
png_read_file (png_structp png, png_bytep out, size_t n)
{
  png_job *job = png_get_io_ptr (png);

  if (fread (out, 1, n, job->file) != n) {
    if (ferror (job->file))
      job_fail (job, TS_ERR_IO, "read error: %s", strerror (errno));
    job_fail (job, TS_ERR_FORMAT, "file is truncated");
  }
  png_track_chunks (job, out, n);
}

static void
png_read_memory (png_structp png, png_bytep out, size_t n)
{
  png_job *job = png_get_io_ptr (png);

  if (n > job->src_len - job->src_pos)
    job_fail (job, TS_ERR_FORMAT, "data is truncated");
  memcpy (out, job->src + job->src_pos, n);
  job->src_pos += n;
  png_track_chunks (job, out, n);
}

static void
png_read_body (png_job *job)
{
  png_structp png = job->png;
  png_infop info = job->info;
  png_uint_32 width, height;
  size_t n_bytes, row_bytes;
  int depth, color_type;

  /* Limits first: libpng checks IHDR against user limits and every chunk length against
   * the malloc cap as it reads them. */
  png_set_user_limits (png, TS_IMAGE_MAX_SIDE, TS_IMAGE_MAX_SIDE);
  png_set_chunk_cache_max (png, PNG_TEXT_CHUNKS_MAX);
  png_set_chunk_malloc_max (png, PNG_CHUNK_BYTES_MAX);
  /* Skip every ancillary chunk unread except text (IHDR, PLTE, tRNS, IDAT and IEND are
   * always handled): less of libpng is exposed to hostile data, and we ignore colour
   * management anyway. */
  png_set_keep_unknown_chunks (png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
  png_set_keep_unknown_chunks (png, PNG_HANDLE_CHUNK_AS_DEFAULT,
                               (png_const_bytep) "tEXt\0zTXt\0iTXt", 3);

  png_read_info (png, info);
  png_get_IHDR (png, info, &width, &height, &depth, &color_type, NULL, NULL, NULL);
  if ((uint64_t) width * height > TS_IMAGE_MAX_PIXELS)
    job_fail (job, TS_ERR_FORMAT,
              "%" PRIu32 "x%" PRIu32 " pixels is over the limit of %u pixels per image",
              (uint32_t) width, (uint32_t) height, TS_IMAGE_MAX_PIXELS);

  /* Everything becomes 8-bit RGB or RGBA: palette -> RGB, gray < 8 bits -> 8, tRNS ->
   * alpha, 16 -> 8 bits with rounding, gray -> RGB; libpng deinterlaces. */
  png_set_expand (png);
  png_set_scale_16 (png);
  png_set_gray_to_rgb (png);
  png_set_interlace_handling (png);
  png_read_update_info (png, info);

  job->width = width;
  job->height = height;
  job->channels = png_get_channels (png, info);
  row_bytes = png_get_rowbytes (png, info);
  if (png_get_bit_depth (png, info) != 8 || (job->channels != 3 && job->channels != 4) ||
      row_bytes != (size_t) width * (size_t) job->channels)
    job_fail (job, TS_ERR_FORMAT, "unexpected layout after conversion (%d channels)",
              job->channels);

  /* At most 64 Mi pixels * 4 bytes, so no overflow on 64-bit size_t; checked anyway. */
  if (!ts_mul_size (row_bytes, height, &n_bytes))
    job_fail (job, TS_ERR_FORMAT, "image too large");
  job->pixels = malloc (n_bytes);
  job->rows = malloc ((size_t) height * sizeof *job->rows);
  if (!job->pixels || !job->rows)
    job_fail (job, TS_ERR_NOMEM, "out of memory for %" PRIu32 "x%" PRIu32 " pixels",
              (uint32_t) width, (uint32_t) height);
  for (png_uint_32 y = 0; y < height; y++)
    job->rows[y] = job->pixels + (size_t) y * row_bytes;
  png_read_image (png, job->rows);
  /* Reads up to IEND (a file without it is truncated) and collects text chunks that
   * follow the image data. */
  png_read_end (png, info);
}

/* Text of a chunk as UTF-8: iTXt is UTF-8 by definition; tEXt/zTXt are Latin-1 by the
 * spec, but tools that write UTF-8 there exist, and Latin-1 text that happens to be valid
 * UTF-8 with non-ASCII in it ("Ã©") is rare in prompts: valid UTF-8 is taken as is. */
static char *
png_text_to_utf8 (const png_text *t)
{
  bool is_itxt =
      t->compression == PNG_ITXT_COMPRESSION_NONE || t->compression == PNG_ITXT_COMPRESSION_zTXt;
  size_t len;
  strbuf b = { 0 };

  if (!t->text)
    return strdup ("");
  len = strnlen (t->text, is_itxt ? t->itxt_length : t->text_length);
  if (is_itxt || utf8_valid (t->text, len))
    return dup_range (t->text, len);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char) t->text[i];
    if (c < 0x80) {
      strbuf_append_len (&b, (const char *) &c, 1);
    } else {
      char two[2] = { (char) (0xc0 | (c >> 6)), (char) (0x80 | (c & 0x3f)) };
      strbuf_append_len (&b, two, 2);
    }
  }
  return strbuf_steal (&b);
}

/* Fills meta from the text chunks. Only running out of memory is an error; metadata that
 * does not parse is logged and skipped. */
static ts_status
png_read_meta (png_job *job, ts_image_meta *meta, ts_error *err)
{
  png_textp texts = NULL;
  int n_texts = 0;
  const png_text *tessera = NULL, *parameters = NULL;
  const png_text *order[2];
  ts_error sub;

  png_get_text (job->png, job->info, &texts, &n_texts);
  for (int i = 0; i < n_texts; i++) {
    if (!tessera && texts[i].key && strcmp (texts[i].key, "tessera") == 0)
      tessera = &texts[i];
    if (!parameters && texts[i].key && strcmp (texts[i].key, "parameters") == 0)
      parameters = &texts[i];
  }
  order[0] = tessera;
  order[1] = parameters;
  for (int i = 0; i < 2; i++) {
    char *text;
    ts_status status;
    if (!order[i])
      continue;
    text = png_text_to_utf8 (order[i]);
    if (!text)
      return ts_error_set (err, TS_ERR_NOMEM, "image: %s: out of memory for metadata",
                           job->name);
    status = i == 0 ? ts_image_meta_from_json (text, meta, &sub)
                    : ts_image_meta_from_parameters (text, meta, &sub);
    free (text);
    if (status == TS_OK)
      return TS_OK;
    if (status == TS_ERR_NOMEM)
      return ts_error_set (err, TS_ERR_NOMEM, "image: %s: %s", job->name, sub.message);
    TS_LOG_W ("image: %s: ignoring the '%s' text chunk: %s", job->name, order[i]->key,
              sub.message);
  }
  return TS_OK;
}

/* RGBA -> RGB in place, compositing onto black. */
static void
composite_on_black (uint8_t *px, size_t n_pixels)
{
  for (size_t i = 0; i < n_pixels; i++) {
    unsigned a = px[4 * i + 3];
    for (int c = 0; c < 3; c++)
      px[3 * i + c] = (uint8_t) ((px[4 * i + c] * a + 127) / 255);
  }
}

static ts_image *
png_load (png_job *job, ts_image_meta *meta_out, ts_error *err)
{
  ts_image *img = NULL;
  ts_status status;

  if (meta_out)
    ts_image_meta_init (meta_out);
  job->default_code = TS_ERR_FORMAT;
  job->next_chunk = 8; /* after the signature */
  job->png = png_create_read_struct (PNG_LIBPNG_VER_STRING, job, png_on_error, png_on_warning);
  if (!job->png || !(job->info = png_create_info_struct (job->png))) {
    ts_error_set (err, TS_ERR_NOMEM, "image: %s: out of memory for the PNG decoder", job->name);
    goto fail;
  }
  if (job->file)
    png_set_read_fn (job->png, job, png_read_file);
  else
    png_set_read_fn (job->png, job, png_read_memory);

  if (!png_guarded (job, png_read_body)) {
    ts_error_set (err, job->code, "image: %s: %s", job->name, job->message);
    goto fail;
  }

  if (job->channels == 4) {
    uint8_t *smaller;
    composite_on_black (job->pixels, (size_t) job->width * job->height);
    smaller = realloc (job->pixels, (size_t) job->width * job->height * 3);
    if (smaller)
      job->pixels = smaller;
  }
  if (meta_out && (status = png_read_meta (job, meta_out, err)) != TS_OK)
    goto fail;

  img = malloc (sizeof *img);
  if (!img) {
    ts_error_set (err, TS_ERR_NOMEM, "image: %s: out of memory", job->name);
    goto fail;
  }
  img->width = job->width;
  img->height = job->height;
  img->pixels = job->pixels;
  job->pixels = NULL;

fail:
  png_destroy_read_struct (&job->png, &job->info, NULL);
  free (job->rows);
  free (job->pixels);
  if (!img && meta_out)
    ts_image_meta_clear (meta_out);
  return img;
}

ts_image *
ts_image_load_png (const char *path, ts_image_meta *meta_out, ts_error *err)
{
  png_job job = { 0 };
  ts_image *img;
  char name[1024];

  if (meta_out)
    ts_image_meta_init (meta_out);
  if (str_empty (path)) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "image: no file name to load");
    return NULL;
  }
  job.file = fopen (path, "rbe");
  if (!job.file) {
    ts_error_set (err, errno == ENOENT ? TS_ERR_NOT_FOUND : TS_ERR_IO, "image: '%s': %s", path,
                  strerror (errno));
    return NULL;
  }
  snprintf (name, sizeof name, "'%s'", path);
  job.name = name;
  img = png_load (&job, meta_out, err);
  fclose (job.file);
  return img;
}

ts_image *
ts_image_load_png_memory (const void *data, size_t size, ts_image_meta *meta_out,
                          ts_error *err)
{
  png_job job = { .name = "PNG data", .src = data, .src_len = size };

  if (!data && size > 0) {
    if (meta_out)
      ts_image_meta_init (meta_out);
    ts_error_set (err, TS_ERR_INVALID_ARG, "image: PNG data is NULL");
    return NULL;
  }
  return png_load (&job, meta_out, err);
}
