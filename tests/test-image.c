/* SPDX-License-Identifier: MIT
 *
 * Tests for image/ts-image-*: RGB8 images, PNG reading and writing, and the two metadata
 * forms (A1111 infotext in `parameters`, JSON in `tessera`). Foreign and hostile PNG files
 * are built here with libpng directly or byte by byte (chunks with valid CRCs), so the
 * reader is checked against files it did not write: A1111-style tEXt/zTXt/iTXt chunks,
 * every colour type and bit depth, interlacing, truncation, garbage, huge declared sizes
 * and oversized text. Atomic saving is checked for a missing directory, replacement of an
 * existing file, a directory in the way and a write that fails midway (RLIMIT_FSIZE, which
 * makes write() fail with EFBIG just as a full disk fails with ENOSPC). What is at the
 * path is never destroyed: FIFOs, directories and links to them are refused by
 * ts_output_path_check and by the save alike, a link to a regular file is written through,
 * and a stale temporary file is removed while a locked one is kept.
 */
#include "tessera.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <png.h>

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------- */

static ts_image *
make_image (uint32_t w, uint32_t h, uint32_t seed)
{
  ts_error err;
  ts_image *img = ts_image_new (w, h, &err);
  uint32_t x = seed * 2654435761u + 1;

  g_assert_nonnull (img);
  for (size_t i = 0; i < (size_t) w * h * 3; i++) {
    x = x * 1664525u + 1013904223u;
    img->pixels[i] = (uint8_t) (x >> 24);
  }
  return img;
}

static void
assert_same_pixels (const ts_image *a, const ts_image *b)
{
  g_assert_cmpuint (a->width, ==, b->width);
  g_assert_cmpuint (a->height, ==, b->height);
  g_assert_cmpmem (a->pixels, (gsize) a->width * a->height * 3, b->pixels,
                   (gsize) b->width * b->height * 3);
}

static const char *
nonnull (const char *s)
{
  return s ? s : "";
}

static void
assert_same_double (double a, double b)
{
  if (isnan (a) || isnan (b))
    g_assert_true (isnan (a) && isnan (b));
  else
    g_assert_cmpfloat (a, ==, b);
}

/* NULL and "" are the same "not recorded"; NaN equals NaN; version NULL means ours. */
static void
assert_same_meta (const ts_image_meta *a, const ts_image_meta *b)
{
  g_assert_cmpstr (nonnull (a->prompt), ==, nonnull (b->prompt));
  g_assert_cmpstr (nonnull (a->negative_prompt), ==, nonnull (b->negative_prompt));
  g_assert_cmpstr (nonnull (a->model), ==, nonnull (b->model));
  g_assert_cmpstr (nonnull (a->sampler), ==, nonnull (b->sampler));
  g_assert_cmpstr (nonnull (a->backend), ==, nonnull (b->backend));
  g_assert_cmpstr (nonnull (a->source), ==, nonnull (b->source));
  g_assert_cmpstr (nonnull (a->source_hash), ==, nonnull (b->source_hash));
  g_assert_cmpstr (nonnull (a->mode), ==, nonnull (b->mode));
  g_assert_cmpuint (a->finish_at, ==, b->finish_at);
  g_assert_cmpuint (a->extend_left, ==, b->extend_left);
  g_assert_cmpuint (a->extend_top, ==, b->extend_top);
  g_assert_cmpuint (a->extend_right, ==, b->extend_right);
  g_assert_cmpuint (a->extend_bottom, ==, b->extend_bottom);
  g_assert_cmpstr (a->version ? a->version : "Tessera " TS_VERSION_STRING, ==,
                   b->version ? b->version : "Tessera " TS_VERSION_STRING);
  g_assert_cmpuint (a->seed, ==, b->seed);
  g_assert_cmpuint (a->steps, ==, b->steps);
  g_assert_cmpuint (a->width, ==, b->width);
  g_assert_cmpuint (a->height, ==, b->height);
  g_assert_cmpuint (a->crop_top, ==, b->crop_top);
  g_assert_cmpuint (a->crop_left, ==, b->crop_left);
  assert_same_double (a->cfg, b->cfg);
  assert_same_double (a->temperature_start, b->temperature_start);
  assert_same_double (a->temperature_end, b->temperature_end);
  assert_same_double (a->aesthetic_score, b->aesthetic_score);
  if (a->strength < 0 || b->strength < 0)
    g_assert_true (a->strength < 0 && b->strength < 0);
  else
    g_assert_cmpfloat (a->strength, ==, b->strength);
}

/* The hard case for both forms: UTF-8, newlines, commas, colons, quotes, backslashes,
 * an empty negative prompt, the largest seed and values that need quoting. */
static ts_image_meta
tricky_meta (void)
{
  ts_image_meta m;
  ts_image_meta_init (&m);
  m.prompt = "ein Café, \"golden hour\" — 猫 🐈\nsecond line: with a colon, and C:\\path";
  m.negative_prompt = "";
  m.model = "MeissonFlow/Meissonic, 1024";
  m.sampler = "MaskGIT";
  m.backend = "cpu";
  m.source = " in:put \"1\".png";
  m.seed = UINT64_MAX;
  m.steps = 48;
  m.width = 1024;
  m.height = 768;
  m.crop_top = 16;
  m.crop_left = 8;
  m.cfg = 0.1 + 0.2; /* needs 17 digits */
  m.temperature_start = 2.5;
  m.temperature_end = 1e-05;
  m.aesthetic_score = 6;
  m.strength = 0.75;
  m.mode = "outpaint";
  m.source_hash = "sha256:00ff";
  m.finish_at = 41;
  m.extend_left = 16;
  m.extend_top = 0;
  m.extend_right = 4294967295u;
  m.extend_bottom = 7;
  return m;
}

static ts_image_meta
simple_meta (void)
{
  ts_image_meta m;
  ts_image_meta_init (&m);
  m.prompt = "a cat";
  m.negative_prompt = "blurry";
  m.steps = 48;
  m.sampler = "MaskGIT";
  m.cfg = 9;
  m.seed = 42;
  m.width = 1024;
  m.height = 1024;
  m.model = "Meissonic";
  m.temperature_start = 2;
  m.temperature_end = 0;
  m.aesthetic_score = 6;
  return m;
}

static char *
make_tmpdir (void)
{
  GError *error = NULL;
  char *dir = g_dir_make_tmp ("tessera-image-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Sorted, comma-separated names in dir: what the atomic-write tests expect to find. */
static char *
list_dir (const char *dir)
{
  GError *error = NULL;
  GDir *d = g_dir_open (dir, 0, &error);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  char *out;

  g_assert_no_error (error);
  while ((name = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (name));
  g_dir_close (d);
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  out = g_strjoinv (",", (char **) names->pdata);
  g_ptr_array_unref (names);
  return out;
}

static void
remove_tree (const char *path)
{
  GDir *d = g_dir_open (path, 0, NULL);
  if (d) {
    const char *name;
    while ((name = g_dir_read_name (d))) {
      char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
      g_free (child);
    }
    g_dir_close (d);
  }
  g_remove (path);
}

static void
write_file (const char *path, const void *data, size_t size)
{
  GError *error = NULL;
  g_file_set_contents (path, data, (gssize) size, &error);
  g_assert_no_error (error);
}

static GBytes *
read_file (const char *path)
{
  GError *error = NULL;
  char *data;
  gsize size;
  g_file_get_contents (path, &data, &size, &error);
  g_assert_no_error (error);
  return g_bytes_new_take (data, size);
}

/* needle is a string literal, possibly with NULs inside. */
#define contains(data, size, needle) (memmem (data, size, needle, sizeof needle - 1) != NULL)

/* Engine log messages at WARN and above, captured so tests can assert on them. */
static GString *captured_log;

static void
capture_log (ts_log_level level, const char *message, void *user_data)
{
  (void) user_data;
  if (level <= TS_LOG_WARN) {
    g_string_append (captured_log, message);
    g_string_append_c (captured_log, '\n');
  }
}

static void
capture_log_start (void)
{
  captured_log = g_string_new (NULL);
  ts_log_set_handler (capture_log, NULL);
}

static char *
capture_log_stop (void)
{
  ts_log_set_handler (NULL, NULL);
  return g_string_free (g_steal_pointer (&captured_log), FALSE);
}

/* ---- raw PNG building (chunks and libpng), for files ts-image did not write ---------- */

static uint32_t
crc32_png (const uint8_t *data, size_t n, uint32_t crc)
{
  crc = ~crc;
  for (size_t i = 0; i < n; i++) {
    crc ^= data[i];
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
  }
  return ~crc;
}

static void
put_be32 (GByteArray *out, uint32_t v)
{
  uint8_t b[4] = { (uint8_t) (v >> 24), (uint8_t) (v >> 16), (uint8_t) (v >> 8), (uint8_t) v };
  g_byte_array_append (out, b, 4);
}

static uint32_t
get_be32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static void
append_chunk (GByteArray *out, const char type[4], const void *data, uint32_t len)
{
  uint32_t crc;
  put_be32 (out, len);
  g_byte_array_append (out, (const guint8 *) type, 4);
  if (len)
    g_byte_array_append (out, data, len);
  crc = crc32_png ((const uint8_t *) type, 4, 0);
  crc = crc32_png (data, len, crc);
  put_be32 (out, crc);
}

static const uint8_t png_signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

/* Copies a PNG chunk by chunk; filter(type, data, len, user) returns FALSE to drop a chunk
 * and may hand back replacement data in *new_data / *new_len (owned by the filter). */
typedef gboolean (*chunk_filter) (const char *type, const uint8_t *data, uint32_t len,
                                  const uint8_t **new_data, uint32_t *new_len, void *user);

static GByteArray *
rewrite_chunks (const uint8_t *png, size_t size, chunk_filter filter, void *user)
{
  GByteArray *out = g_byte_array_new ();
  size_t pos = 8;

  g_assert_cmpuint (size, >=, 8);
  g_assert_cmpmem (png, 8, png_signature, 8);
  g_byte_array_append (out, png, 8);
  while (pos + 12 <= size) {
    uint32_t len = get_be32 (png + pos);
    char type[5] = { 0 };
    const uint8_t *data = png + pos + 8, *new_data = data;
    uint32_t new_len = len;
    memcpy (type, png + pos + 4, 4);
    g_assert_cmpuint (pos + 12 + len, <=, size);
    if (filter (type, data, len, &new_data, &new_len, user))
      append_chunk (out, type, new_data, new_len);
    pos += 12 + len;
  }
  return out;
}

static void
test_png_error (png_structp png, png_const_charp msg)
{
  (void) png;
  g_error ("libpng (test writer): %s", msg);
}

static void
bytes_write (png_structp png, png_bytep data, size_t n)
{
  g_byte_array_append (png_get_io_ptr (png), data, (guint) n);
}

static void
bytes_flush (png_structp png)
{
  (void) png;
}

/* What a foreign PNG writer puts in a file. rows: height rows of png row bytes each. */
typedef struct {
  uint32_t width, height;
  int color_type, bit_depth, interlace;
  const uint8_t *rows;
  const png_color *palette;
  int n_palette;
  const uint8_t *trns_alpha;     /* palette transparency */
  int n_trns;
  const png_color_16 *trns_key;  /* gray / RGB colour key */
  png_text *texts;               /* before IDAT */
  int n_texts;
  png_text *late_texts;          /* after IDAT */
  int n_late_texts;
} raw_png;

static GByteArray *
raw_png_encode (const raw_png *r)
{
  GByteArray *out = g_byte_array_new ();
  png_structp png = png_create_write_struct (PNG_LIBPNG_VER_STRING, NULL, test_png_error, NULL);
  png_infop info = png_create_info_struct (png);
  size_t row_bytes;
  int n_pass;

  png_set_write_fn (png, out, bytes_write, bytes_flush);
  png_set_IHDR (png, info, r->width, r->height, r->bit_depth, r->color_type, r->interlace,
                PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (r->palette)
    png_set_PLTE (png, info, r->palette, r->n_palette);
  if (r->trns_alpha || r->trns_key)
    png_set_tRNS (png, info, r->trns_alpha, r->n_trns, r->trns_key);
  if (r->n_texts)
    png_set_text (png, info, r->texts, r->n_texts);
  png_write_info (png, info);
  n_pass = png_set_interlace_handling (png);
  row_bytes = png_get_rowbytes (png, info);
  for (int pass = 0; pass < n_pass; pass++)
    for (uint32_t y = 0; y < r->height; y++)
      png_write_row (png, r->rows + y * row_bytes);
  if (r->n_late_texts)
    png_set_text (png, info, r->late_texts, r->n_late_texts);
  png_write_end (png, info);
  png_destroy_write_struct (&png, &info);
  return out;
}

static png_text
text_chunk (int compression, const char *key, const char *text)
{
  png_text t = { 0 };
  t.compression = compression;
  t.key = (png_charp) key;
  t.text = (png_charp) text;
  return t;
}

/* ---- images ------------------------------------------------------------------------- */

static void
test_image_new (void)
{
  ts_error err = { 0 };
  ts_image *img = ts_image_new (3, 2, &err);

  g_assert_nonnull (img);
  g_assert_cmpuint (img->width, ==, 3);
  g_assert_cmpuint (img->height, ==, 2);
  for (int i = 0; i < 18; i++)
    g_assert_cmpuint (img->pixels[i], ==, 0);
  ts_image_free (img);
  ts_image_free (NULL);

  g_assert_null (ts_image_new (0, 5, &err));
  g_assert_cmpint (err.code, ==, TS_ERR_INVALID_ARG);
  g_assert_null (ts_image_new (5, 0, NULL));
}

/* ---- A1111 infotext ------------------------------------------------------------------ */

static void
test_parameters_format (void)
{
  ts_image_meta m = simple_meta ();
  char *text = ts_image_meta_to_parameters (&m);

  g_assert_cmpstr (text, ==,
                   "a cat\nNegative prompt: blurry\n"
                   "Steps: 48, Sampler: MaskGIT, CFG scale: 9, Seed: 42, Size: 1024x1024, "
                   "Model: Meissonic, Temperature: 2-0, Aesthetic score: 6, "
                   "Version: Tessera " TS_VERSION_STRING);
  g_free (text);

  /* No negative prompt line when empty; extras in their place; quoting like A1111. */
  m.negative_prompt = "";
  m.cfg = 7.5;
  m.crop_top = 16;
  m.crop_left = 8;
  m.strength = 0.75;
  m.source = "in, put.png";
  m.backend = "cpu";
  m.version = "Tessera \"dev\"";
  m.mode = "outpaint";
  m.finish_at = 41;
  m.extend_left = 16;
  m.extend_bottom = 32;
  m.source_hash = "sha256:ab";
  text = ts_image_meta_to_parameters (&m);
  g_assert_cmpstr (text, ==,
                   "a cat\n"
                   "Steps: 48, Sampler: MaskGIT, CFG scale: 7.5, Seed: 42, Size: 1024x1024, "
                   "Model: Meissonic, Temperature: 2-0, Aesthetic score: 6, Crop top: 16, "
                   "Crop left: 8, Denoising strength: 0.75, Mode: outpaint, Finished at step: 41, "
                   "Extend: \"16,0,0,32\", Source image: \"in, put.png\", Source hash: \"sha256:ab\", "
                   "Backend: cpu, Version: \"Tessera \\\"dev\\\"\"");
  g_free (text);

  /* Round numbers without an exponent (issue 16: "%.1g" read 40 back as "4e+01"), and the
   * exponent only where it is the short form. */
  m.cfg = 40;
  m.aesthetic_score = 100;
  m.strength = 1e-20;
  text = ts_image_meta_to_parameters (&m);
  g_assert_nonnull (strstr (text, "CFG scale: 40,"));
  g_assert_nonnull (strstr (text, "Aesthetic score: 100,"));
  g_assert_nonnull (strstr (text, "Denoising strength: 1e-20,"));
  g_free (text);

  /* Nothing recorded: only the seed and the version, and no prompt lines. */
  ts_image_meta_init (&m);
  text = ts_image_meta_to_parameters (&m);
  g_assert_cmpstr (text, ==, "Seed: 0, Version: Tessera " TS_VERSION_STRING);
  g_free (text);
}

static void
test_parameters_roundtrip (void)
{
  ts_image_meta m = tricky_meta (), back;
  ts_error err = { 0 };
  char *text = ts_image_meta_to_parameters (&m);

  g_assert_nonnull (text);
  /* The value with a comma is quoted; the seed prints in full. */
  g_assert_nonnull (strstr (text, "Model: \"MeissonFlow/Meissonic, 1024\""));
  g_assert_nonnull (strstr (text, "Seed: 18446744073709551615,"));
  g_assert_nonnull (strstr (text, "Temperature: 2.5-1e-05,"));
  g_assert_null (strstr (text, "Negative prompt"));
  g_assert_cmpint (ts_image_meta_from_parameters (text, &back, &err), ==, TS_OK);
  assert_same_meta (&m, &back);
  ts_image_meta_clear (&back);
  g_free (text);
}

static void
test_parameters_a1111 (void)
{
  ts_image_meta m;
  ts_error err = { 0 };

  g_assert_cmpint (ts_image_meta_from_parameters (
                       "  a cat,\n  sitting  \nNegative prompt: blurry,\nlow quality\n"
                       "Steps: 20, Sampler: Euler a, CFG scale: 7.0, Seed: 1234, "
                       "Size: 512x768, Model hash: abc, Model: sd15, "
                       "Lora hashes: \"a: 1, b: 2\", Denoising strength: 0.5, "
                       "Version: v1.6.0\n",
                       &m, &err),
                   ==, TS_OK);
  g_assert_cmpstr (m.prompt, ==, "a cat,\nsitting");
  g_assert_cmpstr (m.negative_prompt, ==, "blurry,\nlow quality");
  g_assert_cmpuint (m.steps, ==, 20);
  g_assert_cmpstr (m.sampler, ==, "Euler a");
  g_assert_cmpfloat (m.cfg, ==, 7.0);
  g_assert_cmpuint (m.seed, ==, 1234);
  g_assert_cmpuint (m.width, ==, 512);
  g_assert_cmpuint (m.height, ==, 768);
  g_assert_cmpstr (m.model, ==, "sd15");
  g_assert_cmpfloat (m.strength, ==, 0.5);
  g_assert_cmpstr (m.version, ==, "v1.6.0");
  g_assert_true (isnan (m.temperature_start));
  g_assert_true (isnan (m.aesthetic_score));
  g_assert_null (m.source);
  ts_image_meta_clear (&m);

  /* Fewer than three pairs on the last line: A1111 reads it as prompt text. */
  g_assert_cmpint (ts_image_meta_from_parameters ("a cat\nSteps: 20, Seed: 5", &m, &err), ==,
                   TS_OK);
  g_assert_cmpstr (m.prompt, ==, "a cat\nSteps: 20, Seed: 5");
  g_assert_cmpuint (m.steps, ==, 0);
  ts_image_meta_clear (&m);

  /* str.split keeps the empty line before the parameters: the prompt ends in "\n". */
  g_assert_cmpint (ts_image_meta_from_parameters ("a cat\n\nSteps: 1, Seed: 2, Size: 3x4", &m,
                                                  &err),
                   ==, TS_OK);
  g_assert_cmpstr (m.prompt, ==, "a cat\n");
  g_assert_cmpuint (m.steps, ==, 1);
  ts_image_meta_clear (&m);

  /* A key is two characters or more, not bytes: "é" alone is no key, so this line has two
   * pairs only and is prompt text. */
  g_assert_cmpint (ts_image_meta_from_parameters ("\xc3\xa9: 1, Steps: 1, Seed: 2", &m, &err), ==,
                   TS_OK);
  g_assert_cmpstr (m.prompt, ==, "\xc3\xa9: 1, Steps: 1, Seed: 2");
  g_assert_cmpuint (m.steps, ==, 0);
  ts_image_meta_clear (&m);

  /* Only parameters; bad values are skipped, good ones kept, unknown keys ignored. */
  g_assert_cmpint (ts_image_meta_from_parameters (
                       "Steps: many, Seed: 18446744073709551616, CFG scale: nan, "
                       "Size: 5x, Sampler: DDIM, Temperature: 1.5, Aesthetic score: 5.5",
                       &m, &err),
                   ==, TS_OK);
  g_assert_null (m.prompt);
  g_assert_cmpuint (m.steps, ==, 0);
  g_assert_cmpuint (m.seed, ==, 0);
  g_assert_true (isnan (m.cfg));
  g_assert_cmpuint (m.width, ==, 0);
  g_assert_cmpstr (m.sampler, ==, "DDIM");
  g_assert_cmpfloat (m.temperature_start, ==, 1.5);
  g_assert_cmpfloat (m.temperature_end, ==, 1.5);
  g_assert_cmpfloat (m.aesthetic_score, ==, 5.5);
  ts_image_meta_clear (&m);

  g_assert_cmpint (ts_image_meta_from_parameters ("", &m, &err), ==, TS_OK);
  g_assert_null (m.prompt);

  /* Key- or quote-heavy lines of a few MiB parse in linear time (a regex retried at every
   * position is quadratic here: hours instead of milliseconds). */
  {
    static const char *units[] = { "a", "k: \"v, ", "a b-c/d e" };
    for (size_t u = 0; u < G_N_ELEMENTS (units); u++) {
      GString *big = g_string_new ("prompt\n");
      gint64 t0 = g_get_monotonic_time ();
      while (big->len < (4u << 20))
        g_string_append (big, units[u]);
      g_assert_cmpint (ts_image_meta_from_parameters (big->str, &m, &err), ==, TS_OK);
      g_assert_cmpfloat ((double) (g_get_monotonic_time () - t0) / 1e6, <, 5.0);
      ts_image_meta_clear (&m);
      g_string_free (big, TRUE);
    }
  }

  g_assert_cmpint (ts_image_meta_from_parameters ("caf\xe9\nSteps: 1, Seed: 2, Size: 3x4", &m,
                                                  &err),
                   ==, TS_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "UTF-8"));
  g_assert_null (m.prompt);
  g_assert_cmpint (ts_image_meta_from_parameters (NULL, &m, &err), ==, TS_ERR_INVALID_ARG);
}

/* Numbers are written and read in the C locale even when the process uses a locale with
 * a decimal comma (a GTK app calls setlocale (LC_ALL, "")). */
static void
test_parameters_locale (void)
{
  static const char *locales[] = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8" };
  char *old = g_strdup (setlocale (LC_NUMERIC, NULL));
  const char *found = NULL;
  ts_image_meta m = simple_meta (), back;
  char *text;

  for (size_t i = 0; i < G_N_ELEMENTS (locales) && !found; i++)
    if (setlocale (LC_NUMERIC, locales[i]))
      found = locales[i];
  if (!found) {
    g_free (old);
    g_test_skip ("no locale with a decimal comma is installed");
    return;
  }
  m.cfg = 7.5;
  text = ts_image_meta_to_parameters (&m);
  g_assert_nonnull (strstr (text, "CFG scale: 7.5,"));
  g_assert_cmpint (ts_image_meta_from_parameters (text, &back, NULL), ==, TS_OK);
  g_assert_cmpfloat (back.cfg, ==, 7.5);
  ts_image_meta_clear (&back);
  g_free (text);
  setlocale (LC_NUMERIC, old);
  g_free (old);
}

/* ---- JSON ------------------------------------------------------------------------------ */

static void
test_json_roundtrip (void)
{
  ts_image_meta m = tricky_meta (), back;
  ts_error err = { 0 };
  char *json = ts_image_meta_to_json (&m);

  g_assert_nonnull (json);
  g_assert_true (g_str_has_prefix (json, "{\"format\":1,"));
  g_assert_nonnull (strstr (json, "\"seed\":\"18446744073709551615\""));
  g_assert_null (strstr (json, "negative_prompt"));
  g_assert_cmpint (ts_image_meta_from_json (json, &back, &err), ==, TS_OK);
  assert_same_meta (&m, &back);
  /* The prompt survives byte for byte, outer whitespace included. */
  ts_image_meta_clear (&back);
  g_free (json);

  m.prompt = "  leading and trailing  \n\n";
  json = ts_image_meta_to_json (&m);
  g_assert_cmpint (ts_image_meta_from_json (json, &back, &err), ==, TS_OK);
  g_assert_cmpstr (back.prompt, ==, m.prompt);
  ts_image_meta_clear (&back);
  g_free (json);
}

static void
test_json_errors (void)
{
  ts_image_meta m;
  ts_error err = { 0 };

  g_assert_cmpint (ts_image_meta_from_json ("{\"format\":1,\"seed\":42,\"steps\":3}", &m, &err),
                   ==, TS_OK);
  g_assert_cmpuint (m.seed, ==, 42);
  g_assert_cmpuint (m.steps, ==, 3);
  g_assert_true (isnan (m.cfg));
  g_assert_cmpfloat (m.strength, <, 0);
  ts_image_meta_clear (&m);

  g_assert_cmpint (ts_image_meta_from_json ("{\"format\":2}", &m, &err), ==,
                   TS_ERR_UNSUPPORTED);
  g_assert_cmpint (ts_image_meta_from_json ("{\"prompt\":\"x\"}", &m, &err), ==, TS_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "format"));
  g_assert_cmpint (ts_image_meta_from_json ("{\"format\":1,\"steps\":\"3\"}", &m, &err), ==,
                   TS_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "\"steps\""));
  g_assert_cmpint (ts_image_meta_from_json ("{\"format\":1,\"steps\":-1}", &m, &err), ==,
                   TS_ERR_FORMAT);
  g_assert_cmpint (ts_image_meta_from_json ("{\"format\":1,\"width\":1.5}", &m, &err), ==,
                   TS_ERR_FORMAT);
  g_assert_cmpint (ts_image_meta_from_json ("{\"format\":1,\"seed\":\"-1\"}", &m, &err), ==,
                   TS_ERR_FORMAT);
  g_assert_cmpint (ts_image_meta_from_json ("{\"format\":1,\"prompt\":7}", &m, &err), ==,
                   TS_ERR_FORMAT);
  g_assert_null (m.prompt);
  g_assert_cmpint (ts_image_meta_from_json ("{\"format\":1} trailing", &m, &err), ==,
                   TS_ERR_FORMAT);
  g_assert_cmpint (ts_image_meta_from_json ("[1]", &m, &err), ==, TS_ERR_FORMAT);
  g_assert_cmpint (ts_image_meta_from_json ("{\"format\":1,\"prompt\":\"\xff\"}", &m, &err), ==,
                   TS_ERR_FORMAT);
}

/* ---- PNG round trips ------------------------------------------------------------------ */

static void
test_png_roundtrip (void)
{
  ts_image *img = make_image (37, 23, 1), *back;
  ts_image_meta m = tricky_meta (), got;
  ts_error err = { 0 };
  uint8_t *png = NULL;
  size_t size = 0;

  /* Non-ASCII metadata: `parameters` is iTXt. */
  g_assert_cmpint (ts_image_encode_png_memory (img, &m, &png, &size, &err), ==, TS_OK);
  g_assert_true (contains (png, size, "iTXtparameters\0"));
  g_assert_true (contains (png, size, "iTXttessera\0"));
  back = ts_image_load_png_memory (png, size, &got, &err);
  g_assert_nonnull (back);
  assert_same_pixels (img, back);
  assert_same_meta (&m, &got);
  ts_image_meta_clear (&got);
  ts_image_free (back);
  free (png);

  /* ASCII metadata: `parameters` is tEXt, readable by anything. */
  m = simple_meta ();
  g_assert_cmpint (ts_image_encode_png_memory (img, &m, &png, &size, &err), ==, TS_OK);
  g_assert_true (contains (png, size, "tEXtparameters\0a cat\nNegative prompt: blurry\n"));
  back = ts_image_load_png_memory (png, size, &got, &err);
  g_assert_nonnull (back);
  assert_same_meta (&m, &got);
  ts_image_meta_clear (&got);
  ts_image_free (back);
  free (png);

  /* No metadata: no text chunks, and the reader reports nothing recorded. */
  g_assert_cmpint (ts_image_encode_png_memory (img, NULL, &png, &size, &err), ==, TS_OK);
  g_assert_false (contains (png, size, "parameters"));
  back = ts_image_load_png_memory (png, size, &got, &err);
  g_assert_nonnull (back);
  assert_same_pixels (img, back);
  g_assert_null (got.prompt);
  g_assert_null (got.version);
  g_assert_cmpuint (got.seed, ==, 0);
  ts_image_free (back);
  free (png);

  /* meta_out may be NULL. */
  g_assert_cmpint (ts_image_encode_png_memory (img, &m, &png, &size, &err), ==, TS_OK);
  back = ts_image_load_png_memory (png, size, NULL, &err);
  g_assert_nonnull (back);
  ts_image_free (back);
  free (png);
  ts_image_free (img);
}

static gboolean
drop_tessera (const char *type, const uint8_t *data, uint32_t len, const uint8_t **new_data,
              uint32_t *new_len, void *user)
{
  (void) new_data, (void) new_len, (void) user;
  return !(strcmp (type, "iTXt") == 0 && len >= 8 && memcmp (data, "tessera\0", 8) == 0);
}

static gboolean
break_tessera (const char *type, const uint8_t *data, uint32_t len, const uint8_t **new_data,
               uint32_t *new_len, void *user)
{
  static const uint8_t broken[] = "tessera\0\0\0\0\0{\"format\":1,\"prompt\":";
  (void) user;
  if (strcmp (type, "iTXt") == 0 && len >= 8 && memcmp (data, "tessera\0", 8) == 0) {
    *new_data = broken;
    *new_len = sizeof broken - 1;
  }
  return TRUE;
}

/* The parameters form alone carries everything (for text that A1111's format can hold),
 * and a tessera chunk that does not parse falls back to it. */
static void
test_png_parameters_only (void)
{
  ts_image *img = make_image (8, 8, 2), *back;
  ts_image_meta m = tricky_meta (), got;
  ts_error err = { 0 };
  chunk_filter filters[] = { drop_tessera, break_tessera };
  uint8_t *png = NULL;
  size_t size = 0;

  g_assert_cmpint (ts_image_encode_png_memory (img, &m, &png, &size, &err), ==, TS_OK);
  for (size_t i = 0; i < G_N_ELEMENTS (filters); i++) {
    GByteArray *edited = rewrite_chunks (png, size, filters[i], NULL);
    char *log;
    g_assert_cmpuint (edited->len, !=, size);
    capture_log_start ();
    back = ts_image_load_png_memory (edited->data, edited->len, &got, &err);
    log = capture_log_stop ();
    /* A broken tessera chunk is reported, a missing one is not. */
    if (filters[i] == break_tessera)
      g_assert_nonnull (strstr (log, "ignoring the 'tessera' text chunk: image metadata: not valid JSON"));
    else
      g_assert_cmpstr (log, ==, "");
    g_free (log);
    g_assert_nonnull (back);
    assert_same_pixels (img, back);
    assert_same_meta (&m, &got);
    ts_image_meta_clear (&got);
    ts_image_free (back);
    g_byte_array_unref (edited);
  }
  free (png);
  ts_image_free (img);
}

/* The tessera chunk wins over a parameters chunk that says something else. */
static void
test_png_tessera_wins (void)
{
  uint8_t rows[3] = { 1, 2, 3 };
  png_text texts[2] = {
    text_chunk (PNG_TEXT_COMPRESSION_NONE, "parameters",
                "dog\nSteps: 1, Sampler: x, Seed: 7, Size: 1x1"),
    text_chunk (PNG_ITXT_COMPRESSION_NONE, "tessera",
                "{\"format\":1,\"prompt\":\"cat\",\"seed\":\"9\"}"),
  };
  raw_png r = { .width = 1, .height = 1, .color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8,
                .rows = rows, .texts = texts, .n_texts = 2 };
  GByteArray *png = raw_png_encode (&r);
  ts_image_meta got;
  ts_image *img = ts_image_load_png_memory (png->data, png->len, &got, NULL);

  g_assert_nonnull (img);
  g_assert_cmpstr (got.prompt, ==, "cat");
  g_assert_cmpuint (got.seed, ==, 9);
  g_assert_cmpuint (got.steps, ==, 0);
  ts_image_meta_clear (&got);
  ts_image_free (img);
  g_byte_array_unref (png);
}

/* Files written by other tools: A1111 (PIL) writes tEXt in Latin-1 when the text fits,
 * iTXt otherwise; some tools compress (zTXt) or put text after the image data. */
static void
test_png_a1111_foreign (void)
{
  static const char a1111[] =
      "a caf\xe9 cat\nNegative prompt: blurry\n"
      "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, Model hash: abc, "
      "Model: sd15";
  static const char utf8[] = "a café 猫\nNegative prompt: blurry\n"
                             "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, "
                             "Size: 512x512, Model hash: abc, Model: sd15";
  uint8_t rows[2 * 2 * 3];
  struct {
    int compression;
    const char *text;
    gboolean late;
    const char *prompt;
  } cases[] = {
    { PNG_TEXT_COMPRESSION_NONE, a1111, FALSE, "a café cat" },
    { PNG_TEXT_COMPRESSION_zTXt, a1111, FALSE, "a café cat" },
    { PNG_ITXT_COMPRESSION_NONE, utf8, FALSE, "a café 猫" },
    { PNG_ITXT_COMPRESSION_zTXt, utf8, TRUE, "a café 猫" },
    /* UTF-8 stored in tEXt, against the spec, by some tools */
    { PNG_TEXT_COMPRESSION_NONE, utf8, TRUE, "a café 猫" },
  };

  for (size_t i = 0; i < sizeof rows; i++)
    rows[i] = (uint8_t) (i * 20);
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    png_text t = text_chunk (cases[i].compression, "parameters", cases[i].text);
    raw_png r = { .width = 2, .height = 2, .color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8,
                  .rows = rows };
    GByteArray *png;
    ts_image_meta m;
    ts_error err = { 0 };
    ts_image *img;
    char *dir, *path;

    if (cases[i].late)
      r.late_texts = &t, r.n_late_texts = 1;
    else
      r.texts = &t, r.n_texts = 1;
    png = raw_png_encode (&r);
    dir = make_tmpdir ();
    path = g_build_filename (dir, "a1111.png", NULL);
    write_file (path, png->data, png->len);
    img = ts_image_load_png (path, &m, &err);
    g_assert_nonnull (img);
    g_assert_cmpmem (img->pixels, sizeof rows, rows, sizeof rows);
    g_assert_cmpstr (m.prompt, ==, cases[i].prompt);
    g_assert_cmpstr (m.negative_prompt, ==, "blurry");
    g_assert_cmpuint (m.steps, ==, 20);
    g_assert_cmpstr (m.sampler, ==, "Euler a");
    g_assert_cmpfloat (m.cfg, ==, 7);
    g_assert_cmpuint (m.seed, ==, 1234);
    g_assert_cmpuint (m.width, ==, 512);
    g_assert_cmpuint (m.height, ==, 512);
    g_assert_cmpstr (m.model, ==, "sd15");
    g_assert_null (m.version);
    g_assert_true (isnan (m.aesthetic_score));
    ts_image_meta_clear (&m);
    ts_image_free (img);
    g_byte_array_unref (png);
    remove_tree (dir);
    g_free (path);
    g_free (dir);
  }
}

/* ---- colour conversion -------------------------------------------------------------- */

static uint8_t
over_black (unsigned c, unsigned a)
{
  return (uint8_t) ((c * a + 127) / 255);
}

static void
check_convert (const raw_png *r, const uint8_t *expect)
{
  GByteArray *png = raw_png_encode (r);
  ts_error err = { 0 };
  ts_image *img = ts_image_load_png_memory (png->data, png->len, NULL, &err);

  if (!img)
    g_error ("color type %d, %d bits: %s", r->color_type, r->bit_depth, err.message);
  g_assert_cmpuint (img->width, ==, r->width);
  g_assert_cmpuint (img->height, ==, r->height);
  g_test_message ("color type %d, %d bits, interlace %d", r->color_type, r->bit_depth, r->interlace);
  g_assert_cmpmem (img->pixels, (gsize) r->width * r->height * 3, expect,
                   (gsize) r->width * r->height * 3);
  ts_image_free (img);
  g_byte_array_unref (png);
}

static void
test_png_convert (void)
{
  enum { W = 9, H = 5, N = W * H };
  uint8_t rows[N * 8], expect[N * 3];

  /* gray, 1 bit: rows are 2 bytes (9 bits used) */
  memset (rows, 0, sizeof rows);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      int bit = (x + y) % 3 == 0;
      rows[y * 2 + x / 8] |= (uint8_t) (bit << (7 - x % 8));
      memset (expect + (y * W + x) * 3, bit ? 255 : 0, 3);
    }
  check_convert (&(raw_png) { .width = W, .height = H, .color_type = PNG_COLOR_TYPE_GRAY,
                              .bit_depth = 1, .rows = rows },
                 expect);

  /* gray 8 */
  for (int i = 0; i < N; i++) {
    rows[i] = (uint8_t) (i * 5);
    memset (expect + i * 3, i * 5, 3);
  }
  check_convert (&(raw_png) { .width = W, .height = H, .color_type = PNG_COLOR_TYPE_GRAY,
                              .bit_depth = 8, .rows = rows },
                 expect);

  /* gray 16: v * 257 scales back to v exactly */
  for (int i = 0; i < N; i++) {
    unsigned v = (unsigned) (i * 5) * 257;
    rows[2 * i] = (uint8_t) (v >> 8), rows[2 * i + 1] = (uint8_t) v;
  }
  check_convert (&(raw_png) { .width = W, .height = H, .color_type = PNG_COLOR_TYPE_GRAY,
                              .bit_depth = 16, .rows = rows },
                 expect);

  /* gray + alpha 8 */
  for (int i = 0; i < N; i++) {
    unsigned g = (unsigned) (i * 5), a = (unsigned) (255 - i * 4);
    rows[2 * i] = (uint8_t) g, rows[2 * i + 1] = (uint8_t) a;
    memset (expect + i * 3, over_black (g, a), 3);
  }
  check_convert (&(raw_png) { .width = W, .height = H, .color_type = PNG_COLOR_TYPE_GRAY_ALPHA,
                              .bit_depth = 8, .rows = rows },
                 expect);

  /* palette, 4 bits, with tRNS for the first entries; rows are 5 bytes */
  {
    png_color pal[16];
    uint8_t alpha[4] = { 0, 64, 128, 200 };
    memset (rows, 0, sizeof rows);
    for (int k = 0; k < 16; k++)
      pal[k] = (png_color) { (png_byte) (k * 16), (png_byte) (255 - k * 10), (png_byte) (k * 7) };
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        int k = (x * 3 + y) % 16;
        unsigned a = k < 4 ? alpha[k] : 255;
        rows[y * 5 + x / 2] |= (uint8_t) (k << (x % 2 ? 0 : 4));
        expect[(y * W + x) * 3 + 0] = over_black (pal[k].red, a);
        expect[(y * W + x) * 3 + 1] = over_black (pal[k].green, a);
        expect[(y * W + x) * 3 + 2] = over_black (pal[k].blue, a);
      }
    check_convert (&(raw_png) { .width = W, .height = H, .color_type = PNG_COLOR_TYPE_PALETTE,
                                .bit_depth = 4, .rows = rows, .palette = pal, .n_palette = 16,
                                .trns_alpha = alpha, .n_trns = 4 },
                   expect);
  }

  /* RGB 16, Adam7-interlaced */
  for (int i = 0; i < N * 3; i++) {
    unsigned v = (unsigned) ((i * 37) % 256) * 257;
    rows[2 * i] = (uint8_t) (v >> 8), rows[2 * i + 1] = (uint8_t) v;
    expect[i] = (uint8_t) ((i * 37) % 256);
  }
  check_convert (&(raw_png) { .width = W, .height = H, .color_type = PNG_COLOR_TYPE_RGB,
                              .bit_depth = 16, .interlace = PNG_INTERLACE_ADAM7, .rows = rows },
                 expect);

  /* RGBA 8 */
  for (int i = 0; i < N; i++) {
    unsigned a = (unsigned) (i * 5); /* up to 220 */
    for (int c = 0; c < 3; c++) {
      rows[4 * i + c] = (uint8_t) (i * 3 + c * 50);
      expect[3 * i + c] = over_black (rows[4 * i + c], a);
    }
    rows[4 * i + 3] = (uint8_t) a;
  }
  check_convert (&(raw_png) { .width = W, .height = H, .color_type = PNG_COLOR_TYPE_RGB_ALPHA,
                              .bit_depth = 8, .rows = rows },
                 expect);

  /* RGB 8 with a tRNS colour key: that colour becomes transparent, hence black */
  {
    png_color_16 key = { .red = 10, .green = 20, .blue = 30 };
    for (int i = 0; i < N; i++) {
      gboolean keyed = i % 4 == 0;
      uint8_t px[3] = { keyed ? 10 : (uint8_t) i, keyed ? 20 : 99, keyed ? 30 : 7 };
      memcpy (rows + 3 * i, px, 3);
      if (keyed)
        memset (expect + 3 * i, 0, 3);
      else
        memcpy (expect + 3 * i, px, 3);
    }
    check_convert (&(raw_png) { .width = W, .height = H, .color_type = PNG_COLOR_TYPE_RGB,
                                .bit_depth = 8, .rows = rows, .trns_key = &key },
                   expect);
  }
}

/* ---- hostile and broken files --------------------------------------------------------- */

static void
expect_format_error (const char *dir, const char *name, const void *data, size_t size,
                     const char *message_part)
{
  char *path = g_build_filename (dir, name, NULL);
  ts_error err = { 0 };
  ts_image_meta m;
  ts_image *img;

  write_file (path, data, size);
  img = ts_image_load_png (path, &m, &err);
  if (img)
    g_error ("%s: loaded, expected an error", name);
  g_assert_cmpint (err.code, ==, TS_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, path));
  if (message_part && !strstr (err.message, message_part))
    g_error ("%s: message \"%s\" lacks \"%s\"", name, err.message, message_part);
  g_assert_null (m.prompt);

  /* The memory reader agrees. */
  g_assert_null (ts_image_load_png_memory (data, size, NULL, &err));
  g_assert_cmpint (err.code, ==, TS_ERR_FORMAT);
  g_assert_nonnull (strstr (err.message, "PNG data"));
  g_free (path);
}

static GByteArray *
header_only_png (uint32_t w, uint32_t h)
{
  GByteArray *out = g_byte_array_new ();
  uint8_t ihdr[13] = { 0 };
  ihdr[0] = (uint8_t) (w >> 24), ihdr[1] = (uint8_t) (w >> 16), ihdr[2] = (uint8_t) (w >> 8),
  ihdr[3] = (uint8_t) w;
  ihdr[4] = (uint8_t) (h >> 24), ihdr[5] = (uint8_t) (h >> 16), ihdr[6] = (uint8_t) (h >> 8),
  ihdr[7] = (uint8_t) h;
  ihdr[8] = 8, ihdr[9] = PNG_COLOR_TYPE_RGB;
  g_byte_array_append (out, png_signature, 8);
  append_chunk (out, "IHDR", ihdr, 13);
  append_chunk (out, "IDAT", NULL, 0);
  append_chunk (out, "IEND", NULL, 0);
  return out;
}

static void
test_png_hostile (void)
{
  char *dir = make_tmpdir ();
  ts_image *img = make_image (64, 48, 3);
  ts_image_meta m = simple_meta ();
  ts_error err = { 0 };
  uint8_t *png = NULL;
  size_t size = 0;
  GByteArray *huge;
  char *path, *listing;

  g_assert_cmpint (ts_image_encode_png_memory (img, &m, &png, &size, &err), ==, TS_OK);

  expect_format_error (dir, "half.png", png, size / 2, NULL);
  expect_format_error (dir, "no-iend.png", png, size - 12, NULL);
  expect_format_error (dir, "signature.png", png, 8, NULL);
  expect_format_error (dir, "empty.png", "", 0, NULL);
  expect_format_error (dir, "garbage.png", "this is not a PNG file at all, just text\n", 41, NULL);

  {
    /* A flipped byte in the pixel data: the IDAT CRC no longer matches. */
    uint8_t *copy = g_memdup2 (png, size);
    uint8_t *idat = memmem (copy, size, "IDAT", 4);
    g_assert_nonnull (idat);
    idat[10] ^= 0x55;
    expect_format_error (dir, "bad-crc.png", copy, size, NULL);
    g_free (copy);
  }

  /* Declared sizes past the limits fail at the header, before any pixel allocation. */
  huge = header_only_png (100000, 100000);
  expect_format_error (dir, "huge.png", huge->data, huge->len, "user limit");
  g_byte_array_unref (huge);
  huge = header_only_png (TS_IMAGE_MAX_SIDE, TS_IMAGE_MAX_SIDE / 2);
  expect_format_error (dir, "many-pixels.png", huge->data, huge->len, "limit");
  g_byte_array_unref (huge);

  {
    /* A 9 MiB tEXt chunk is over the 8 MiB per-chunk cap. */
    size_t n = 9u << 20;
    char *big = g_malloc (n + 1);
    uint8_t px[3] = { 0 };
    png_text t;
    raw_png r = { .width = 1, .height = 1, .color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8,
                  .rows = px, .texts = &t, .n_texts = 1 };
    GByteArray *out;
    memset (big, 'a', n);
    big[n] = '\0';
    t = text_chunk (PNG_TEXT_COMPRESSION_NONE, "parameters", big);
    out = raw_png_encode (&r);
    expect_format_error (dir, "big-text.png", out->data, out->len, "too large");
    g_byte_array_unref (out);

    /* The same text compressed (a few KiB in the file): decompression stops at the cap,
     * the chunk is dropped with a warning, and the image still loads. */
    t = text_chunk (PNG_TEXT_COMPRESSION_zTXt, "parameters", big);
    out = raw_png_encode (&r);
    g_assert_cmpuint (out->len, <, 64 * 1024);
    {
      ts_image_meta got;
      ts_image *loaded = ts_image_load_png_memory (out->data, out->len, &got, &err);
      g_assert_nonnull (loaded);
      g_assert_null (got.prompt);
      ts_image_free (loaded);
    }
    g_byte_array_unref (out);
    g_free (big);
  }

  {
    /* Many text chunks: those past the cache limit are dropped, the image loads. */
    png_text texts[100];
    uint8_t px[3] = { 0 };
    raw_png r = { .width = 1, .height = 1, .color_type = PNG_COLOR_TYPE_RGB, .bit_depth = 8,
                  .rows = px, .texts = texts, .n_texts = 100 };
    GByteArray *out;
    ts_image *loaded;
    for (int i = 0; i < 100; i++)
      texts[i] = text_chunk (PNG_TEXT_COMPRESSION_NONE, "Comment", "hello");
    out = raw_png_encode (&r);
    loaded = ts_image_load_png_memory (out->data, out->len, NULL, &err);
    g_assert_nonnull (loaded);
    ts_image_free (loaded);
    g_byte_array_unref (out);
  }

  path = g_build_filename (dir, "missing.png", NULL);
  g_assert_null (ts_image_load_png (path, NULL, &err));
  g_assert_cmpint (err.code, ==, TS_ERR_NOT_FOUND);
  g_assert_nonnull (strstr (err.message, path));
  g_free (path);

  g_assert_null (ts_image_load_png (dir, NULL, &err));
  g_assert_cmpint (err.code, ==, TS_ERR_IO);

  listing = list_dir (dir);
  g_assert_cmpstr (listing, ==,
                   "bad-crc.png,big-text.png,empty.png,garbage.png,half.png,huge.png,"
                   "many-pixels.png,no-iend.png,signature.png");
  g_free (listing);
  free (png);
  ts_image_free (img);
  remove_tree (dir);
  g_free (dir);
}

/* ---- atomic saving -------------------------------------------------------------------- */

static void
test_save_atomic (void)
{
  char *dir = make_tmpdir ();
  char *path = g_build_filename (dir, "out.png", NULL);
  char *missing = g_build_filename (dir, "no-such-dir", "out.png", NULL);
  ts_image *img = make_image (16, 16, 4), *img2 = make_image (20, 10, 5), *back;
  ts_image_meta m = simple_meta (), got;
  ts_error err = { 0 };
  struct stat st;
  mode_t old_umask;
  char *listing;

  /* A missing directory: TS_ERR_IO naming the path, nothing created anywhere. */
  g_assert_cmpint (ts_image_save_png (img, &m, missing, &err), ==, TS_ERR_IO);
  g_assert_cmpint (err.code, ==, TS_ERR_IO);
  g_assert_nonnull (strstr (err.message, missing));
  g_assert_nonnull (strstr (err.message, g_strerror (ENOENT)));
  listing = list_dir (dir);
  g_assert_cmpstr (listing, ==, "");
  g_free (listing);

  /* A new file, with the umask applied to 0666. */
  old_umask = umask (022);
  g_assert_cmpint (ts_image_save_png (img, &m, path, &err), ==, TS_OK);
  umask (old_umask);
  g_assert_cmpint (stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0644);
  back = ts_image_load_png (path, &got, &err);
  g_assert_nonnull (back);
  assert_same_pixels (img, back);
  assert_same_meta (&m, &got);
  ts_image_meta_clear (&got);
  ts_image_free (back);

  /* Over an existing file: replaced, and no temporary file left behind. */
  write_file (path, "old contents", 12);
  g_assert_cmpint (ts_image_save_png (img2, NULL, path, &err), ==, TS_OK);
  back = ts_image_load_png (path, &got, &err);
  g_assert_nonnull (back);
  assert_same_pixels (img2, back);
  g_assert_null (got.prompt);
  ts_image_free (back);
  listing = list_dir (dir);
  g_assert_cmpstr (listing, ==, "out.png");
  g_free (listing);

  /* A directory in the way: rename fails, the temporary file is removed. */
  {
    char *sub = g_build_filename (dir, "taken", NULL);
    g_assert_cmpint (g_mkdir (sub, 0755), ==, 0);
    g_assert_cmpint (ts_image_save_png (img, &m, sub, &err), ==, TS_ERR_IO);
    g_assert_nonnull (strstr (err.message, sub));
    listing = list_dir (dir);
    g_assert_cmpstr (listing, ==, "out.png,taken");
    g_free (listing);
    g_free (sub);
  }

  /* Invalid arguments write nothing. */
  m.prompt = "bad \xc3\x28 UTF-8";
  g_assert_cmpint (ts_image_save_png (img, &m, path, &err), ==, TS_ERR_INVALID_ARG);
  g_assert_nonnull (strstr (err.message, "prompt"));
  g_assert_cmpint (ts_image_save_png (NULL, NULL, path, &err), ==, TS_ERR_INVALID_ARG);
  {
    ts_image wide = { .width = TS_IMAGE_MAX_SIDE + 1, .height = 1, .pixels = img->pixels };
    g_assert_cmpint (ts_image_save_png (&wide, NULL, path, &err), ==, TS_ERR_INVALID_ARG);
  }
  listing = list_dir (dir);
  g_assert_cmpstr (listing, ==, "out.png,taken");
  g_free (listing);
  back = ts_image_load_png (path, NULL, &err);
  assert_same_pixels (img2, back);
  ts_image_free (back);

  ts_image_free (img);
  ts_image_free (img2);
  remove_tree (dir);
  g_free (missing);
  g_free (path);
  g_free (dir);
}

/* A write that fails midway. tmpfs cannot be mounted here to fill a disk, so a file size
 * limit stands in: past RLIMIT_FSIZE write() fails with EFBIG, through the same code path
 * as ENOSPC. The old file must survive untouched and the temporary file must go. */
static void
test_save_write_fails (void)
{
  char *dir = make_tmpdir ();
  char *path = g_build_filename (dir, "keep.png", NULL);
  ts_image *img = make_image (128, 128, 6); /* noise: ~48 KiB of PNG */
  ts_error err = { 0 };
  struct rlimit old_limit, limit;
  void (*old_handler) (int);
  GBytes *before, *after;
  char *listing;

  write_file (path, "previous image", 14);
  before = read_file (path);

  g_assert_cmpint (getrlimit (RLIMIT_FSIZE, &old_limit), ==, 0);
  limit = old_limit;
  limit.rlim_cur = 4096;
  old_handler = signal (SIGXFSZ, SIG_IGN);
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &limit), ==, 0);
  g_assert_cmpint (ts_image_save_png (img, NULL, path, &err), ==, TS_ERR_IO);
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &old_limit), ==, 0);
  signal (SIGXFSZ, old_handler);

  g_test_message ("error: %s", err.message);
  g_assert_nonnull (strstr (err.message, path));
  g_assert_nonnull (strstr (err.message, g_strerror (EFBIG)));
  after = read_file (path);
  g_assert_true (g_bytes_equal (before, after));
  listing = list_dir (dir);
  g_assert_cmpstr (listing, ==, "keep.png");
  g_free (listing);

  /* With the limit lifted the same save succeeds. */
  g_assert_cmpint (ts_image_save_png (img, NULL, path, &err), ==, TS_OK);

  g_bytes_unref (before);
  g_bytes_unref (after);
  ts_image_free (img);
  remove_tree (dir);
  g_free (path);
  g_free (dir);
}

/* Special files are refused by the check and by the save, and left as they were. */
static void
test_save_special (void)
{
  char *dir = make_tmpdir ();
  char *fifo = g_build_filename (dir, "fifo.png", NULL);
  char *link = g_build_filename (dir, "link.png", NULL);
  char *target = g_build_filename (dir, "target.png", NULL);
  char *null_link = g_build_filename (dir, "null.png", NULL);
  char *stale = g_build_filename (dir, "old.png.tmp-Ab12Cd", NULL);
  char *locked = g_build_filename (dir, "live.png.tmp-Zz9Yy8", NULL);
  char *foreign = g_build_filename (dir, "notes.txt.tmp-abc123", NULL);
  ts_image *img = make_image (16, 16, 7), *back;
  ts_error err = { 0 };
  struct stat st;
  struct timespec old_times[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000 } };
  char *listing;
  int lock_fd;

  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  g_assert_cmpint (ts_output_path_check (fifo, &err), ==, TS_ERR_IO);
  g_assert_nonnull (strstr (err.message, fifo));
  g_assert_nonnull (strstr (err.message, "is a FIFO, not a regular file"));
  g_assert_cmpint (ts_image_save_png (img, NULL, fifo, &err), ==, TS_ERR_IO);
  g_assert_nonnull (strstr (err.message, "is a FIFO"));
  g_assert_cmpint (lstat (fifo, &st), ==, 0);
  g_assert_true (S_ISFIFO (st.st_mode));

  g_assert_cmpint (symlink ("/dev/null", null_link), ==, 0);
  g_assert_cmpint (ts_image_save_png (img, NULL, null_link, &err), ==, TS_ERR_IO);
  g_assert_nonnull (strstr (err.message, "symbolic link to a character device"));
  g_assert_cmpint (lstat (null_link, &st), ==, 0);
  g_assert_true (S_ISLNK (st.st_mode));

  g_assert_cmpint (ts_output_path_check ("", &err), ==, TS_ERR_INVALID_ARG);
  g_assert_cmpint (ts_output_path_check (target, &err), ==, TS_OK);

  /* Through a link: the target replaced, the link kept. */
  write_file (target, "old", 3);
  g_assert_cmpint (symlink ("target.png", link), ==, 0);
  g_assert_cmpint (ts_image_save_png (img, NULL, link, &err), ==, TS_OK);
  g_assert_cmpint (lstat (link, &st), ==, 0);
  g_assert_true (S_ISLNK (st.st_mode));
  back = ts_image_load_png (target, NULL, &err);
  g_assert_nonnull (back);
  assert_same_pixels (img, back);
  ts_image_free (back);

  /* A stale temporary file of ours goes; a locked one and another program's stay. */
  write_file (stale, "partial", 7);
  write_file (locked, "live", 4);
  write_file (foreign, "notes", 5);
  g_assert_cmpint (utimensat (AT_FDCWD, stale, old_times, 0), ==, 0);
  g_assert_cmpint (utimensat (AT_FDCWD, locked, old_times, 0), ==, 0);
  g_assert_cmpint (utimensat (AT_FDCWD, foreign, old_times, 0), ==, 0);
  lock_fd = open (locked, O_RDONLY);
  g_assert_cmpint (lock_fd, >=, 0);
  g_assert_cmpint (flock (lock_fd, LOCK_EX), ==, 0);
  g_assert_cmpint (ts_image_save_png (img, NULL, target, &err), ==, TS_OK);
  close (lock_fd);
  listing = list_dir (dir);
  g_assert_cmpstr (listing, ==,
                   "fifo.png,link.png,live.png.tmp-Zz9Yy8,notes.txt.tmp-abc123,null.png,target.png");
  g_free (listing);

  ts_image_free (img);
  remove_tree (dir);
  g_free (fifo);
  g_free (link);
  g_free (target);
  g_free (null_link);
  g_free (stale);
  g_free (locked);
  g_free (foreign);
  g_free (dir);
}

/* Steering changes round-trip through the JSON; a bad list is a named error. */
static void
test_json_steer (void)
{
  ts_image_meta m, back;
  ts_image_steer changes[2] = {
    { .step = 5, .prompt = (char *) "a \"quoted\" prompt", .negative_prompt = NULL, .cfg = 2.5,
      .temperature_start = NAN, .temperature_end = NAN },
    { .step = 9, .prompt = NULL, .negative_prompt = (char *) "blurry", .cfg = NAN,
      .temperature_start = 1.5, .temperature_end = 0.25 },
  };
  const char *bad[] = {
    "{\"format\": 1, \"steer\": 3}",
    "{\"format\": 1, \"steer\": [1]}",
    "{\"format\": 1, \"steer\": [{\"prompt\": \"no step\"}]}",
    "{\"format\": 1, \"steer\": [{\"step\": 5}, {\"step\": 5}]}",
    "{\"format\": 1, \"steer\": [{\"step\": 5, \"prompt\": 7}]}",
  };
  char *json;
  ts_error err;

  ts_image_meta_init (&m);
  m.prompt = (char *) "start";
  m.steps = 12;
  m.n_steer = 2;
  m.steer = changes;
  json = ts_image_meta_to_json (&m);
  g_assert_nonnull (json);
  ts_image_meta_init (&back);
  g_assert_cmpint (ts_image_meta_from_json (json, &back, &err), ==, TS_OK);
  g_assert_cmpuint (back.n_steer, ==, 2);
  g_assert_cmpuint (back.steer[0].step, ==, 5);
  g_assert_cmpstr (back.steer[0].prompt, ==, "a \"quoted\" prompt");
  g_assert_null (back.steer[0].negative_prompt);
  g_assert_cmpfloat (back.steer[0].cfg, ==, 2.5);
  g_assert_true (isnan (back.steer[0].temperature_start));
  g_assert_cmpuint (back.steer[1].step, ==, 9);
  g_assert_null (back.steer[1].prompt);
  g_assert_cmpstr (back.steer[1].negative_prompt, ==, "blurry");
  g_assert_true (isnan (back.steer[1].cfg));
  g_assert_cmpfloat (back.steer[1].temperature_start, ==, 1.5);
  g_assert_cmpfloat (back.steer[1].temperature_end, ==, 0.25);
  ts_image_meta_clear (&back);
  free (json);
  for (size_t i = 0; i < G_N_ELEMENTS (bad); i++) {
    ts_image_meta_init (&back);
    g_assert_cmpint (ts_image_meta_from_json (bad[i], &back, &err), ==, TS_ERR_FORMAT);
    g_test_message ("%s", err.message);
    g_assert_nonnull (strstr (err.message, "steer"));
    g_assert_cmpuint (back.n_steer, ==, 0);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/image/new", test_image_new);
  g_test_add_func ("/image/parameters/format", test_parameters_format);
  g_test_add_func ("/image/parameters/roundtrip", test_parameters_roundtrip);
  g_test_add_func ("/image/parameters/a1111", test_parameters_a1111);
  g_test_add_func ("/image/parameters/locale", test_parameters_locale);
  g_test_add_func ("/image/json/roundtrip", test_json_roundtrip);
  g_test_add_func ("/image/json/errors", test_json_errors);
  g_test_add_func ("/image/json/steer", test_json_steer);
  g_test_add_func ("/image/png/roundtrip", test_png_roundtrip);
  g_test_add_func ("/image/png/parameters-only", test_png_parameters_only);
  g_test_add_func ("/image/png/tessera-wins", test_png_tessera_wins);
  g_test_add_func ("/image/png/a1111-foreign", test_png_a1111_foreign);
  g_test_add_func ("/image/png/convert", test_png_convert);
  g_test_add_func ("/image/png/hostile", test_png_hostile);
  g_test_add_func ("/image/save/atomic", test_save_atomic);
  g_test_add_func ("/image/save/write-fails", test_save_write_fails);
  g_test_add_func ("/image/save/special", test_save_special);
  return g_test_run ();
}
