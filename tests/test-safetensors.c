/* SPDX-License-Identifier: MIT
 *
 * Unit tests for ts-safetensors, the reader every weight file goes through. Files are
 * written to a temporary folder: a table of malformed files, each of which must fail
 * with its own status and a message naming the problem and the tensor; valid files of
 * every dtype (unaligned data included); sharded and variant checkpoints; the
 * f16/bf16/f8 conversions against known bit patterns; and the tiny Meissonic transformer
 * of the golden set (skipped when TESSERA_GOLDEN_DIR is absent).
 */
#include "model/ts-safetensors.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

static char *tmp_dir;

/* ---- helpers ---- */

/* 8-byte little-endian header length + header + data (zeros when data is NULL). */
static GByteArray *
st_build (const char *header, const void *data, size_t data_len)
{
  GByteArray *b = g_byte_array_new ();
  guint64 n = strlen (header);
  guint8 len[8];
  guint8 *zeros;

  for (int i = 0; i < 8; i++)
    len[i] = (guint8) (n >> (8 * i));
  g_byte_array_append (b, len, 8);
  g_byte_array_append (b, (const guint8 *) header, (guint) n);
  if (data) {
    g_byte_array_append (b, data, (guint) data_len);
  } else {
    zeros = g_malloc0 (data_len + 1);
    g_byte_array_append (b, zeros, (guint) data_len);
    g_free (zeros);
  }
  return b;
}

/* Writes bytes to tmp_dir/name (creating sub-folders) and returns the path. */
static char *
write_file (const char *name, const void *bytes, size_t len)
{
  char *path = g_build_filename (tmp_dir, name, NULL);
  char *dir = g_path_get_dirname (path);
  GError *error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_file_set_contents (path, bytes, (gssize) len, &error);
  g_assert_no_error (error);
  g_free (dir);
  return path;
}

static char *
write_st (const char *name, const char *header, const void *data, size_t data_len)
{
  GByteArray *b = st_build (header, data, data_len);
  char *path = write_file (name, b->data, b->len);

  g_byte_array_unref (b);
  return path;
}

static void
remove_tree (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir) {
    while ((name = g_dir_read_name (dir))) {
      char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
      g_free (child);
    }
    g_dir_close (dir);
  }
  g_remove (path);
}

static void
assert_error (const ts_error *err, ts_status code, const char *prefix, const char *s1,
              const char *s2)
{
  if (err->code != code || !g_str_has_prefix (err->message, prefix)
      || (s1 && !strstr (err->message, s1)) || (s2 && !strstr (err->message, s2)))
    g_error ("expected %s starting with '%s' containing '%s' and '%s', got %s: %s",
             ts_status_name (code), prefix, s1 ? s1 : "", s2 ? s2 : "",
             ts_status_name (err->code), err->message);
}

/* ---- malformed files ---- */

typedef struct {
  const char *name;
  const char *raw;      /* a whole file, when non-NULL (raw_len bytes) */
  size_t raw_len;
  const char *header;   /* otherwise: this header ... */
  size_t data_len;      /* ... followed by this many zero bytes */
  ts_status code;
  const char *expect1;  /* substrings of the message: the problem ... */
  const char *expect2;  /* ... and the tensor (or NULL) */
} bad_case;

/* One header entry, spelled as a string literal. */
#define T(dtype, shape, b, e)                                                              \
  "{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" b "," e "]}"

static const bad_case bad_cases[] = {
  { "empty", "", 0, NULL, 0, TS_ERR_FORMAT, "file is 0 bytes, too short", NULL },
  { "truncated-length", "\x02\0\0\0\0", 5, NULL, 0, TS_ERR_FORMAT, "file is 5 bytes", NULL },
  { "length-past-end", "\xe8\x03\0\0\0\0\0\0{}", 10, NULL, 0, TS_ERR_FORMAT,
    "header length 1000 runs past the end of the file (10 bytes)", NULL },
  { "length-too-small", "\x01\0\0\0\0\0\0\0{", 9, NULL, 0, TS_ERR_FORMAT,
    "header length 1 is too small", NULL },
  { "length-zero", "\0\0\0\0\0\0\0\0", 8, NULL, 0, TS_ERR_FORMAT,
    "header length 0 is too small", NULL },
  { "length-huge", "\0\0\0\0\0\0\0\x01{}", 10, NULL, 0, TS_ERR_FORMAT,
    "header length 72057594037927936 exceeds the limit", NULL },
  { "nul-in-header", "\x04\0\0\0\0\0\0\0{}\0 ", 12, NULL, 0, TS_ERR_FORMAT,
    "byte 0x00 at header offset 2", NULL },
  { "not-utf8", NULL, 0, "{\"a\xff\":1}", 0, TS_ERR_FORMAT, "UTF-8",
    "byte 0xff at header offset 3" },
  { "not-object", NULL, 0, "[]", 0, TS_ERR_FORMAT, "header is not a JSON object", NULL },
  { "invalid-json", NULL, 0, "{\"a\": ", 0, TS_ERR_FORMAT, "header is not valid JSON", NULL },
  { "text-after-json", NULL, 0, "{}  x", 0, TS_ERR_FORMAT, "text after its JSON value",
    "offset 4" },
  { "duplicate-name", NULL, 0,
    "{\"a\":" T ("U8", "[2]", "0", "2") ",\"a\":" T ("U8", "[2]", "2", "4") "}", 4,
    TS_ERR_FORMAT, "duplicate tensor name", "'a'" },
  { "duplicate-metadata", NULL, 0, "{\"__metadata__\":{},\"__metadata__\":{}}", 0,
    TS_ERR_FORMAT, "\"__metadata__\" twice", NULL },
  { "duplicate-key-in-entry", NULL, 0,
    "{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
    TS_ERR_FORMAT, "key \"dtype\" appears twice", "'a'" },
  { "entry-not-object", NULL, 0, "{\"a\":[1]}", 0, TS_ERR_FORMAT,
    "entry is not a JSON object", "'a'" },
  { "missing-dtype", NULL, 0, "{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
    TS_ERR_FORMAT, "missing string \"dtype\"", "'a'" },
  { "unknown-dtype", NULL, 0, "{\"a.bias\":" T ("F31", "[1]", "0", "4") "}", 4, TS_ERR_FORMAT,
    "unknown dtype 'F31'", "tensor 'a.bias'" },
  { "unsupported-dtype", NULL, 0, "{\"c\":" T ("C64", "[1]", "0", "8") "}", 8,
    TS_ERR_UNSUPPORTED, "dtype 'C64' is not supported", "tensor 'c'" },
  { "missing-shape", NULL, 0, "{\"a\":{\"dtype\":\"U8\",\"shape\":3,\"data_offsets\":[0,1]}}", 1,
    TS_ERR_FORMAT, "missing array \"shape\"", "'a'" },
  { "negative-shape", NULL, 0, "{\"a\":" T ("U8", "[2,-1]", "0", "0") "}", 0, TS_ERR_FORMAT,
    "shape[1] is not a non-negative integer", "tensor 'a'" },
  { "fractional-shape", NULL, 0, "{\"a\":" T ("U8", "[1.5]", "0", "1") "}", 1, TS_ERR_FORMAT,
    "shape[0] is not a non-negative integer", "tensor 'a'" },
  { "string-shape", NULL, 0, "{\"a\":" T ("U8", "[\"2\"]", "0", "2") "}", 2, TS_ERR_FORMAT,
    "shape[0] is not a non-negative integer", "tensor 'a'" },
  { "shape-above-2^53", NULL, 0, "{\"a\":" T ("U8", "[0,1e300]", "0", "0") "}", 0,
    TS_ERR_FORMAT, "shape[1] is not a non-negative integer", "tensor 'a'" },
  { "too-many-dims", NULL, 0, "{\"a\":" T ("U8", "[1,1,1,1,1,1,1,1,1]", "0", "1") "}", 1,
    TS_ERR_UNSUPPORTED, "shape has 9 dimensions, at most 8", "tensor 'a'" },
  { "size-mismatch", NULL, 0, "{\"a.weight\":" T ("F32", "[3,4]", "0", "40") "}", 40,
    TS_ERR_FORMAT, "shape [3,4] F32 needs 48 bytes but data_offsets cover 40",
    "tensor 'a.weight'" },
  { "shape-product-overflow", NULL, 0,
    "{\"big\":" T ("U8", "[4294967296,4294967296,8]", "0", "0") "}", 0, TS_ERR_FORMAT,
    "shape [4294967296,4294967296,8] overflows the element count", "tensor 'big'" },
  { "byte-size-overflow", NULL, 0,
    "{\"big\":" T ("F64", "[4294967296,536870912]", "0", "0") "}", 0, TS_ERR_FORMAT,
    "F64 overflows the byte size", "tensor 'big'" },
  { "offsets-non-integer", NULL, 0, "{\"a\":" T ("U8", "[1]", "0", "1.5") "}", 2,
    TS_ERR_FORMAT, "\"data_offsets\" is not [begin, end]", "tensor 'a'" },
  { "offsets-negative", NULL, 0, "{\"a\":" T ("U8", "[1]", "-1", "0") "}", 0, TS_ERR_FORMAT,
    "\"data_offsets\" is not [begin, end]", "tensor 'a'" },
  { "offsets-three", NULL, 0,
    "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1, TS_ERR_FORMAT,
    "\"data_offsets\" is not [begin, end]", "tensor 'a'" },
  { "offsets-huge", NULL, 0, "{\"a\":" T ("U8", "[0]", "1e300", "1e300") "}", 0,
    TS_ERR_FORMAT, "\"data_offsets\" is not [begin, end]", "tensor 'a'" },
  { "offsets-reversed", NULL, 0, "{\"a\":" T ("U8", "[0]", "4", "0") "}", 4, TS_ERR_FORMAT,
    "data_offsets [4,0] begin after they end", "tensor 'a'" },
  { "overlap", NULL, 0,
    "{\"a\":" T ("U8", "[8]", "0", "8") ",\"b\":" T ("U8", "[8]", "4", "12") "}", 12,
    TS_ERR_FORMAT, "data_offsets [4,12] overlap tensor 'a' [0,8]", "tensor 'b'" },
  { "overlap-zero-size-inside", NULL, 0,
    "{\"a\":" T ("U8", "[8]", "0", "8") ",\"z\":" T ("U8", "[0]", "4", "4") "}", 8,
    TS_ERR_FORMAT, "overlap tensor 'a'", "tensor 'z'" },
  { "range-past-end", NULL, 0, "{\"a\":" T ("U8", "[4]", "100", "104") "}", 4, TS_ERR_FORMAT,
    "data_offsets [100,104] run past the end of the data section (4 bytes", "tensor 'a'" },
  { "data-shorter", NULL, 0,
    "{\"a\":" T ("F32", "[2]", "0", "8") ",\"b\":" T ("F32", "[2]", "8", "16") "}", 10,
    TS_ERR_FORMAT, "run past the end of the data section (10 bytes; is the file truncated?)",
    "tensor 'b'" },
  { "hole", NULL, 0,
    "{\"a\":" T ("U8", "[4]", "0", "4") ",\"b\":" T ("U8", "[4]", "6", "10") "}", 10,
    TS_ERR_FORMAT, "gap in the data section: bytes [4,6)", "tensor 'b'" },
  { "hole-at-start", NULL, 0, "{\"a\":" T ("U8", "[4]", "2", "6") "}", 6, TS_ERR_FORMAT,
    "gap in the data section: bytes [0,2)", "tensor 'a'" },
  { "trailing-bytes", NULL, 0, "{\"a\":" T ("U8", "[4]", "0", "4") "}", 6, TS_ERR_FORMAT,
    "2 trailing bytes in the data section after the last tensor 'a'", NULL },
  { "trailing-bytes-no-tensors", NULL, 0, "{}", 3, TS_ERR_FORMAT,
    "3 trailing bytes in the data section but the header has no tensors", NULL },
  { "metadata-not-object", NULL, 0, "{\"__metadata__\":[\"pt\"]}", 0, TS_ERR_FORMAT,
    "__metadata__ is not a JSON object", NULL },
  { "metadata-not-string", NULL, 0, "{\"__metadata__\":{\"format\":1}}", 0, TS_ERR_FORMAT,
    "__metadata__ value for key 'format' is not a string", NULL },
  { "metadata-duplicate-key", NULL, 0, "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0,
    TS_ERR_FORMAT, "__metadata__ has key 'k' twice", NULL },
};

static void
test_bad_file (gconstpointer data)
{
  const bad_case *c = data;
  GByteArray *b = c->raw ? NULL : st_build (c->header, NULL, c->data_len);
  const void *bytes = c->raw ? (const void *) c->raw : b->data;
  size_t len = c->raw ? c->raw_len : b->len;
  char *name = g_strdup_printf ("bad/%s.safetensors", c->name);
  char *path = write_file (name, bytes, len);
  ts_error err = { 0 };
  ts_safetensors *st;

  st = ts_safetensors_open (path, &err);
  g_assert_null (st);
  assert_error (&err, c->code, path, c->expect1, c->expect2);

  /* The same from memory, from an exact-size heap copy so ASan sees any over-read. */
  {
    void *copy = g_memdup2 (bytes, len);
    memset (&err, 0, sizeof err);
    st = ts_safetensors_open_memory (copy, len, "mem.safetensors", &err);
    g_assert_null (st);
    assert_error (&err, c->code, "mem.safetensors: ", c->expect1, c->expect2);
    /* A NULL err is allowed. */
    g_assert_null (ts_safetensors_open_memory (copy, len, "mem", NULL));
    g_free (copy);
  }

  g_free (path);
  g_free (name);
  if (b)
    g_byte_array_unref (b);
}

static void
test_open_missing (void)
{
  ts_error err = { 0 };
  char *path = g_build_filename (tmp_dir, "no-such.safetensors", NULL);

  /* "not found" only when nothing is there; anything else is named as what it is. */
  g_assert_null (ts_safetensors_open (path, &err));
  assert_error (&err, TS_ERR_NOT_FOUND, "safetensors: '", path, "' not found");
  g_assert_null (ts_safetensors_open (tmp_dir, &err));
  assert_error (&err, TS_ERR_IO, "safetensors: '", tmp_dir, "is a directory, not a regular file");
  g_free (path);

  /* A dangling symbolic link and a link loop say so, rather than "not found". */
  path = g_build_filename (tmp_dir, "dangling.safetensors", NULL);
  g_assert_cmpint (symlink ("no-such-target", path), ==, 0);
  g_assert_null (ts_safetensors_open (path, &err));
  assert_error (&err, TS_ERR_NOT_FOUND, "safetensors: '", path, "dangling symbolic link");
  g_free (path);
  path = g_build_filename (tmp_dir, "loop.safetensors", NULL);
  g_assert_cmpint (symlink ("loop.safetensors", path), ==, 0);
  g_assert_null (ts_safetensors_open (path, &err));
  assert_error (&err, TS_ERR_IO, "safetensors: '", path, "symbolic link loop");
  g_free (path);

  /* A FIFO is refused at once instead of blocking until a writer appears. */
  path = g_build_filename (tmp_dir, "fifo.safetensors", NULL);
  g_assert_cmpint (mkfifo (path, 0600), ==, 0);
  g_assert_null (ts_safetensors_open (path, &err));
  assert_error (&err, TS_ERR_IO, "safetensors: '", path, "is a FIFO, not a regular file");
  g_free (path);
}

/* ---- valid files ---- */

typedef struct {
  const char *name;
  const char *dtype;
  size_t elem;
  guint8 bytes[6 * 8];
  gint64 ints[6];      /* expected ts_st_tensor_to_i64 values, for integer dtypes */
} dtype_case;

static const float float_values[6] = { 0.0f, 1.0f, -2.0f, 0.5f, 3.0f, -0.25f };

/* Names are not in file order, and "a.odd" (1 byte) first makes every later tensor's
 * data unaligned. */
static const dtype_case dtype_cases[] = {
  { "t.bool", "BOOL", 1, { 0, 1, 1, 0, 1, 0 }, { 0, 1, 1, 0, 1, 0 } },
  { "t.u8", "U8", 1, { 0, 1, 2, 3, 254, 255 }, { 0, 1, 2, 3, 254, 255 } },
  { "t.i8", "I8", 1, { 0, 1, 0xfe, 3, 0x80, 0x7f }, { 0, 1, -2, 3, -128, 127 } },
  { "t.f8e4m3", "F8_E4M3", 1, { 0x00, 0x38, 0xc0, 0x30, 0x44, 0xa8 }, { 0 } },
  { "t.f8e5m2", "F8_E5M2", 1, { 0x00, 0x3c, 0xc0, 0x38, 0x42, 0xb4 }, { 0 } },
  { "t.i16", "I16", 2, { 0, 0, 1, 0, 0xfe, 0xff, 3, 0, 0, 0x80, 0xff, 0x7f },
    { 0, 1, -2, 3, -32768, 32767 } },
  { "t.u16", "U16", 2, { 0, 0, 1, 0, 2, 0, 3, 0, 0xfe, 0xff, 0xff, 0xff },
    { 0, 1, 2, 3, 65534, 65535 } },
  { "t.f16", "F16", 2, { 0, 0, 0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0x00, 0x42, 0x00, 0xb4 },
    { 0 } },
  { "t.bf16", "BF16", 2, { 0, 0, 0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f, 0x40, 0x40, 0x80, 0xbe },
    { 0 } },
  { "t.i32", "I32", 4,
    { 0, 0, 0, 0, 1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 3, 0, 0, 0, 0, 0, 0, 0x80,
      0xff, 0xff, 0xff, 0x7f },
    { 0, 1, -2, 3, INT32_MIN, INT32_MAX } },
  { "t.u32", "U32", 4,
    { 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff },
    { 0, 1, 2, 3, 0x80000000ll, 0xffffffffll } },
  { "t.f32", "F32", 4,
    { 0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0, 0, 0, 0x3f, 0, 0, 0x40, 0x40,
      0, 0, 0x80, 0xbe },
    { 0 } },
  { "t.i64", "I64", 8,
    { 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0x7f },
    { 0, 1, -2, 3, INT64_MIN, INT64_MAX } },
  { "t.u64", "U64", 8,
    { 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0,
      0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
    { 0, 1, 2, 3, 4, INT64_MAX } },
  { "t.f64", "F64", 8,
    { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0xc0,
      0, 0, 0, 0, 0, 0, 0xe0, 0x3f, 0, 0, 0, 0, 0, 0, 0x08, 0x40, 0, 0, 0, 0, 0, 0, 0xd0,
      0xbf },
    { 0 } },
};

static bool
dtype_is_float (const char *dtype)
{
  return dtype[0] == 'F' || strcmp (dtype, "BF16") == 0;
}

static long
rss_file_kb (void)
{
  g_autofree char *status = NULL;
  const char *line;

  g_assert_true (g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  line = strstr (status, "RssFile:");
  g_assert_nonnull (line);
  return strtol (line + strlen ("RssFile:"), NULL, 10);
}

/* ts_st_tensor_release drops a mapped tensor's pages from the resident set and leaves its
 * data readable; on a tensor of a memory buffer it does nothing (the caller's memory must
 * never be discarded). */
static void
test_release (void)
{
  const size_t n = 1024 * 1024; /* 4 MiB of F32, after one byte: unaligned */
  g_autofree char *header = g_strdup_printf (
    "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
    "\"w\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[1,%zu]}}",
    n, 1 + 4 * n);
  guint8 *data = g_malloc (1 + 4 * n);
  GByteArray *file;
  g_autofree char *path = NULL;
  ts_error err = { 0 };
  ts_safetensors *st, *mem;
  const ts_st_tensor *t;
  volatile guint sum = 0;
  long before, touched, released;

  for (size_t i = 0; i < 1 + 4 * n; i++)
    data[i] = (guint8) (i * 7 + 1);
  file = st_build (header, data, 1 + 4 * n);
  path = write_file ("release/w.safetensors", file->data, file->len);
  st = ts_safetensors_open (path, &err);
  g_assert_nonnull (st);
  t = ts_safetensors_find (st, "w");
  g_assert_true (t->mapped);
  before = rss_file_kb ();
  for (size_t i = 0; i < t->size_bytes; i += 512)
    sum += ((const guint8 *) t->data)[i];
  touched = rss_file_kb ();
  ts_st_tensor_release (t);
  released = rss_file_kb ();
  g_test_message ("RssFile %ld kB, touched %ld kB, released %ld kB", before, touched, released);
  /* every page of w is resident once touched (fault-around may have mapped some before) */
  g_assert_cmpint (touched, >=, 4 * 1024);
  g_assert_cmpint (touched - released, >=, 3 * 1024);
  g_assert_cmpmem (t->data, t->size_bytes, data + 1, 4 * n); /* reads back from the file */
  ts_safetensors_free (st);

  mem = ts_safetensors_open_memory (file->data, file->len, "memory", &err);
  g_assert_nonnull (mem);
  t = ts_safetensors_find (mem, "w");
  g_assert_false (t->mapped);
  ts_st_tensor_release (t);
  g_assert_cmpmem (t->data, t->size_bytes, data + 1, 4 * n);
  ts_safetensors_free (mem);
  g_byte_array_unref (file);
  g_free (data);
  (void) sum;
}

static void
test_all_dtypes (void)
{
  GString *header = g_string_new ("{\"a.odd\":{\"dtype\":\"U8\",\"shape\":[1],"
                                  "\"data_offsets\":[0,1]}");
  GByteArray *data = g_byte_array_new ();
  guint8 odd = 0x5a;
  ts_error err = { 0 };
  ts_safetensors *st;
  GByteArray *file;
  char *path;
  const size_t n = G_N_ELEMENTS (dtype_cases);

  g_byte_array_append (data, &odd, 1);
  /* Reverse order in the file, so that file order differs from name order. */
  for (size_t k = n; k-- > 0;) {
    const dtype_case *c = &dtype_cases[k];
    g_string_append_printf (header,
                            ",\"%s\":{\"shape\":[2,3],\"dtype\":\"%s\",\"data_offsets\":[%u,%u]}",
                            c->name, c->dtype, data->len, (unsigned) (data->len + 6 * c->elem));
    g_byte_array_append (data, c->bytes, (guint) (6 * c->elem));
  }
  g_string_append (header, "}");
  /* Pad with spaces to a multiple of 8, as writers do. */
  while ((header->len + 8) % 8)
    g_string_append_c (header, ' ');

  file = st_build (header->str, data->data, data->len);
  path = write_file ("valid/dtypes.safetensors", file->data, file->len);
  st = ts_safetensors_open (path, &err);
  g_assert_nonnull (st);
  g_assert_cmpuint (ts_safetensors_n_tensors (st), ==, n + 1);
  g_assert_cmpuint (ts_safetensors_size_bytes (st), ==, file->len);
  g_assert_null (ts_safetensors_tensor (st, n + 1));

  for (size_t i = 1; i < n + 1; i++)
    g_assert_cmpint (strcmp (ts_safetensors_tensor (st, i - 1)->name,
                             ts_safetensors_tensor (st, i)->name), <, 0);
  g_assert_cmpstr (ts_safetensors_tensor (st, 0)->name, ==, "a.odd");
  g_assert_cmpint (*(const guint8 *) ts_safetensors_tensor (st, 0)->data, ==, odd);

  for (size_t k = 0; k < n; k++) {
    const dtype_case *c = &dtype_cases[k];
    const ts_st_tensor *t = ts_safetensors_find (st, c->name);
    float f[6];
    gint64 v[6];
    ts_status s;

    g_assert_nonnull (t);
    g_assert_cmpstr (t->name, ==, c->name);
    g_assert_cmpstr (ts_dtype_name (t->dtype), ==, c->dtype);
    g_assert_cmpint (t->n_dims, ==, 2);
    g_assert_cmpint (t->shape[0], ==, 2);
    g_assert_cmpint (t->shape[1], ==, 3);
    g_assert_cmpuint (t->n_elements, ==, 6);
    g_assert_cmpuint (t->size_bytes, ==, 6 * c->elem);
    g_assert_cmpstr (t->file, ==, path);
    g_assert_cmpmem (t->data, t->size_bytes, c->bytes, 6 * c->elem);

    if (dtype_is_float (c->dtype)) {
      g_assert_cmpint (ts_st_tensor_to_f32 (t, f, &err), ==, TS_OK);
      for (int i = 0; i < 6; i++)
        g_assert_cmpfloat (f[i], ==, float_values[i]);
      s = ts_st_tensor_to_i64 (t, v, &err);
      g_assert_cmpint (s, ==, TS_ERR_UNSUPPORTED);
      assert_error (&err, TS_ERR_UNSUPPORTED, path, "cannot read", c->name);
    } else {
      g_assert_cmpint (ts_st_tensor_to_i64 (t, v, &err), ==, TS_OK);
      for (int i = 0; i < 6; i++)
        g_assert_cmpint (v[i], ==, c->ints[i]);
      s = ts_st_tensor_to_f32 (t, f, &err);
      g_assert_cmpint (s, ==, TS_ERR_UNSUPPORTED);
      assert_error (&err, TS_ERR_UNSUPPORTED, path, "cannot read", c->name);
    }
  }
  g_assert_null (ts_safetensors_find (st, "t"));
  g_assert_null (ts_safetensors_find (st, "t.f32x"));
  g_assert_null (ts_safetensors_find (st, ""));
  g_assert_null (ts_safetensors_metadata (st, "format"));
  ts_safetensors_free (st);

  g_free (path);
  g_byte_array_unref (file);
  g_byte_array_unref (data);
  g_string_free (header, TRUE);
}

static void
test_u64_out_of_range (void)
{
  guint8 data[8] = { 0, 0, 0, 0, 0, 0, 0, 0x80 };
  GByteArray *file = st_build ("{\"u\":" T ("U64", "[1]", "0", "8") "}", data, 8);
  ts_error err = { 0 };
  ts_safetensors *st = ts_safetensors_open_memory (file->data, file->len, "u.safetensors", &err);
  gint64 v;

  g_assert_nonnull (st);
  g_assert_cmpint (ts_st_tensor_to_i64 (ts_safetensors_find (st, "u"), &v, &err), ==,
                   TS_ERR_UNSUPPORTED);
  assert_error (&err, TS_ERR_UNSUPPORTED, "u.safetensors: tensor 'u'",
                "9223372036854775808 does not fit", NULL);
  ts_safetensors_free (st);
  g_byte_array_unref (file);
}

static void
test_zero_size_and_scalar (void)
{
  const float one = 1.5f;
  /* Zero-size tensors at the start, between and after the scalar; they may share an
   * offset. An empty shape is a scalar of one element. */
  const char *header =
    "{\"empty\":" T ("U8", "[0]", "0", "0") ","
    "\"empty2\":" T ("F32", "[3,0,5]", "0", "0") ","
    "\"scalar\":" T ("F32", "[]", "0", "4") ","
    "\"tail\":" T ("I64", "[0]", "4", "4") ","
    "\"huge_but_empty\":" T ("F64", "[0,9007199254740992,9007199254740992]", "4", "4") "}";
  GByteArray *file = st_build (header, &one, sizeof one);
  ts_error err = { 0 };
  ts_safetensors *st = ts_safetensors_open_memory (file->data, file->len, "z", &err);
  const ts_st_tensor *t;
  float f;
  gint64 v;

  if (!st)
    g_error ("%s", err.message);
  g_assert_cmpuint (ts_safetensors_n_tensors (st), ==, 5);
  t = ts_safetensors_find (st, "scalar");
  g_assert_cmpint (t->n_dims, ==, 0);
  g_assert_cmpuint (t->n_elements, ==, 1);
  g_assert_cmpint (ts_st_tensor_to_f32 (t, &f, &err), ==, TS_OK);
  g_assert_cmpfloat (f, ==, 1.5f);
  t = ts_safetensors_find (st, "empty2");
  g_assert_cmpint (t->n_dims, ==, 3);
  g_assert_cmpuint (t->n_elements, ==, 0);
  g_assert_cmpuint (t->size_bytes, ==, 0);
  g_assert_cmpint (ts_st_tensor_to_f32 (t, &f, &err), ==, TS_OK);
  t = ts_safetensors_find (st, "tail");
  g_assert_cmpint (ts_st_tensor_to_i64 (t, &v, &err), ==, TS_OK);
  t = ts_safetensors_find (st, "huge_but_empty");
  g_assert_cmpuint (t->n_elements, ==, 0);
  ts_safetensors_free (st);
  g_byte_array_unref (file);

  /* No tensors at all. */
  file = st_build ("{}", NULL, 0);
  st = ts_safetensors_open_memory (file->data, file->len, "none", &err);
  g_assert_nonnull (st);
  g_assert_cmpuint (ts_safetensors_n_tensors (st), ==, 0);
  g_assert_null (ts_safetensors_tensor (st, 0));
  g_assert_null (ts_safetensors_find (st, "x"));
  ts_safetensors_free (st);
  g_byte_array_unref (file);
}

static void
test_metadata (void)
{
  const char *header = " {\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\xc3\xa9\"},"
                       "\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2],"
                       "\"extra\":\"ignored\"}}\n\t ";
  GByteArray *file = st_build (header, "ab", 2);
  char *path = write_file ("valid/meta.safetensors", file->data, file->len);
  ts_error err = { 0 };
  ts_safetensors *st = ts_safetensors_open (path, &err);

  if (!st)
    g_error ("%s", err.message);
  g_assert_cmpstr (ts_safetensors_metadata (st, "format"), ==, "pt");
  g_assert_cmpstr (ts_safetensors_metadata (st, "note"), ==, "caf\xc3\xa9");
  g_assert_null (ts_safetensors_metadata (st, "missing"));
  g_assert_cmpuint (ts_safetensors_n_tensors (st), ==, 1);
  g_assert_cmpmem (ts_safetensors_find (st, "w")->data, 2, "ab", 2);
  g_assert_null (ts_safetensors_find (st, "__metadata__"));
  ts_safetensors_free (st);
  g_free (path);
  g_byte_array_unref (file);
}

/* ---- checkpoints ---- */

/* A one-tensor F32 file holding `value`, or an F16 one when f16 is set. */
static char *
write_one (const char *name, const char *tensor, float value, bool f16)
{
  char *header;
  char *path;

  if (f16) {
    guint16 h = ts_f32_to_f16 (value);
    header = g_strdup_printf ("{\"%s\":" T ("F16", "[1]", "0", "2") "}", tensor);
    path = write_st (name, header, &h, 2);
  } else {
    header = g_strdup_printf ("{\"%s\":" T ("F32", "[1]", "0", "4") "}", tensor);
    path = write_st (name, header, &value, 4);
  }
  g_free (header);
  return path;
}

static size_t
file_size (const char *path)
{
  GStatBuf sb;
  g_assert_cmpint (g_stat (path, &sb), ==, 0);
  return (size_t) sb.st_size;
}

static void
write_text (const char *name, const char *text)
{
  g_free (write_file (name, text, strlen (text)));
}

static void
test_sharded (void)
{
  char *dir = g_build_filename (tmp_dir, "sharded", NULL);
  char *s1 = write_st ("sharded/model-00001-of-00002.safetensors",
                       "{\"a\":" T ("F32", "[1]", "0", "4") ",\"c\":" T ("F32", "[1]", "4", "8")
                       "}", NULL, 8);
  char *s2 = write_one ("sharded/model-00002-of-00002.safetensors", "b", 2.0f, false);
  ts_error err = { 0 };
  ts_st_set *set;
  const ts_st_tensor *t;
  float f;

  write_text ("sharded/model.safetensors.index.json",
              "{\"metadata\":{\"total_size\":12},\"weight_map\":{"
              "\"c\":\"model-00001-of-00002.safetensors\","
              "\"b\":\"model-00002-of-00002.safetensors\","
              "\"a\":\"model-00001-of-00002.safetensors\"}}");
  set = ts_st_set_open (dir, "model", NULL, &err);
  if (!set)
    g_error ("%s", err.message);
  g_assert_cmpuint (ts_st_set_n_files (set), ==, 2);
  g_assert_cmpstr (ts_st_set_file (set, 0), ==, s1);
  g_assert_cmpstr (ts_st_set_file (set, 1), ==, s2);
  g_assert_null (ts_st_set_file (set, 2));
  g_assert_cmpuint (ts_st_set_n_tensors (set), ==, 3);
  g_assert_cmpstr (ts_st_set_tensor (set, 0)->name, ==, "a");
  g_assert_cmpstr (ts_st_set_tensor (set, 1)->name, ==, "b");
  g_assert_cmpstr (ts_st_set_tensor (set, 2)->name, ==, "c");
  g_assert_null (ts_st_set_tensor (set, 3));
  t = ts_st_set_find (set, "b");
  g_assert_cmpstr (t->file, ==, s2);
  g_assert_cmpint (ts_st_tensor_to_f32 (t, &f, &err), ==, TS_OK);
  g_assert_cmpfloat (f, ==, 2.0f);
  g_assert_cmpstr (ts_st_set_find (set, "c")->file, ==, s1);
  g_assert_null (ts_st_set_find (set, "d"));
  g_assert_cmpuint (ts_st_set_size_bytes (set), ==, file_size (s1) + file_size (s2));
  ts_st_set_free (set);

  g_free (s1);
  g_free (s2);
  g_free (dir);
}

typedef struct {
  const char *name;
  const char *index;   /* contents of bad-index/NAME/m.safetensors.index.json */
  ts_status code;
  const char *expect1, *expect2;
} bad_index_case;

#define SH1 "m-1.safetensors"
#define SH2 "m-2.safetensors"

static const bad_index_case bad_index_cases[] = {
  { "invalid-json", "{\"weight_map\":", TS_ERR_FORMAT, "not valid JSON", NULL },
  { "not-object", "[1]", TS_ERR_FORMAT, "not a JSON object", NULL },
  { "no-weight-map", "{\"metadata\":{}}", TS_ERR_FORMAT, "\"weight_map\"", NULL },
  { "empty-weight-map", "{\"weight_map\":{}}", TS_ERR_FORMAT, "\"weight_map\"", NULL },
  { "value-not-string", "{\"weight_map\":{\"a\":1}}", TS_ERR_FORMAT,
    "not a plain file name", "tensor 'a'" },
  { "slash", "{\"weight_map\":{\"a\":\"sub/" SH1 "\"}}", TS_ERR_FORMAT,
    "not a plain file name", "tensor 'a'" },
  { "absolute", "{\"weight_map\":{\"a\":\"/etc/passwd\"}}", TS_ERR_FORMAT,
    "not a plain file name", "tensor 'a'" },
  { "dotdot", "{\"weight_map\":{\"a\":\"..\"}}", TS_ERR_FORMAT, "not a plain file name",
    "tensor 'a'" },
  { "empty-name", "{\"weight_map\":{\"a\":\"\"}}", TS_ERR_FORMAT, "not a plain file name",
    "tensor 'a'" },
  { "missing-shard", "{\"weight_map\":{\"a\":\"" SH1 "\",\"b\":\"m-9.safetensors\"}}",
    TS_ERR_NOT_FOUND, "shard 'm-9.safetensors'", "not found" },
  { "wrong-shard", "{\"weight_map\":{\"a\":\"" SH2 "\",\"b\":\"" SH2 "\"}}", TS_ERR_FORMAT,
    "tensor 'a' is mapped to shard '" SH2 "', which has no such tensor", NULL },
  { "listed-twice", "{\"weight_map\":{\"a\":\"" SH1 "\",\"b\":\"" SH2 "\",\"a\":\"" SH2 "\"}}",
    TS_ERR_FORMAT, "tensor 'a' is listed twice in weight_map", NULL },
  { "unlisted", "{\"weight_map\":{\"a\":\"" SH1 "\"}}", TS_ERR_FORMAT,
    "tensor 'x' in", "is not listed in weight_map" },
};

static void
test_bad_index (gconstpointer data)
{
  const bad_index_case *c = data;
  char *sub = g_build_filename ("bad-index", c->name, NULL);
  char *dir = g_build_filename (tmp_dir, sub, NULL);
  char *name;
  char *index_path = g_build_filename (dir, "m.safetensors.index.json", NULL);
  ts_error err = { 0 };

  name = g_build_filename (sub, SH1, NULL);
  g_free (write_st (name, "{\"a\":" T ("U8", "[1]", "0", "1") ",\"x\":" T ("U8", "[1]", "1", "2")
                    "}", NULL, 2));
  g_free (name);
  name = g_build_filename (sub, SH2, NULL);
  g_free (write_st (name, "{\"b\":" T ("U8", "[1]", "0", "1") "}", NULL, 1));
  g_free (name);
  name = g_build_filename (sub, "m.safetensors.index.json", NULL);
  write_text (name, c->index);
  g_free (name);

  g_assert_null (ts_st_set_open (dir, "m", NULL, &err));
  assert_error (&err, c->code, index_path, c->expect1, c->expect2);
  g_assert_null (ts_st_set_open (dir, "m", NULL, NULL));

  g_free (index_path);
  g_free (dir);
  g_free (sub);
}

static void
test_shard_duplicate (void)
{
  char *dir = g_build_filename (tmp_dir, "dup-shards", NULL);
  char *index = g_build_filename (dir, "m.safetensors.index.json", NULL);
  ts_error err = { 0 };

  g_free (write_one ("dup-shards/" SH1, "a", 1.0f, false));
  g_free (write_one ("dup-shards/" SH2, "a", 1.0f, false));
  write_text ("dup-shards/m.safetensors.index.json",
              "{\"weight_map\":{\"a\":\"" SH1 "\",\"b\":\"" SH2 "\"}}");
  g_assert_null (ts_st_set_open (dir, "m", NULL, &err));
  /* 'b' is checked first: it is mapped to SH2, which lacks it. */
  assert_error (&err, TS_ERR_FORMAT, index, "tensor 'b' is mapped to shard", NULL);

  /* Both shards hold 'a' and the weight_map lists only one of them. */
  g_free (write_st ("dup-shards/" SH2, "{\"a\":" T ("F32", "[1]", "0", "4") ",\"b\":"
                    T ("F32", "[1]", "4", "8") "}", NULL, 8));
  g_assert_null (ts_st_set_open (dir, "m", NULL, &err));
  assert_error (&err, TS_ERR_FORMAT, index, "tensor 'a' appears in two shards", SH2);

  /* A broken shard: the shard's own message, under the index's name. */
  g_free (write_st ("dup-shards/" SH2, "{\"b\":" T ("F32", "[2]", "0", "4") "}", NULL, 4));
  g_assert_null (ts_st_set_open (dir, "m", NULL, &err));
  assert_error (&err, TS_ERR_FORMAT, index, "F32 needs 8 bytes but data_offsets cover 4",
                "tensor 'b'");

  g_free (index);
  g_free (dir);
}

static const char *
set_basename (const ts_st_set *set, size_t i)
{
  const char *p = ts_st_set_file (set, i);
  const char *slash = strrchr (p, '/');
  return slash ? slash + 1 : p;
}

static float
set_value (const ts_st_set *set, const char *name)
{
  float f = NAN;
  ts_error err;
  g_assert_cmpint (ts_st_tensor_to_f32 (ts_st_set_find (set, name), &f, &err), ==, TS_OK);
  return f;
}

static void
test_variants (void)
{
  char *dir = g_build_filename (tmp_dir, "variant", NULL);
  char *empty = g_build_filename (tmp_dir, "variant-none", NULL);
  ts_error err = { 0 };
  ts_st_set *set;

  g_free (write_one ("variant/w.safetensors", "x", 1.0f, false));
  g_free (write_one ("variant/w.fp16.safetensors", "x", 2.0f, true));

  set = ts_st_set_open (dir, "w", "fp16", &err);
  g_assert_nonnull (set);
  g_assert_cmpuint (ts_st_set_n_files (set), ==, 1);
  g_assert_cmpstr (set_basename (set, 0), ==, "w.fp16.safetensors");
  g_assert_cmpint (ts_st_set_find (set, "x")->dtype, ==, TS_DTYPE_F16);
  g_assert_cmpfloat (set_value (set, "x"), ==, 2.0f);
  ts_st_set_free (set);

  set = ts_st_set_open (dir, "w", NULL, &err);
  g_assert_cmpstr (set_basename (set, 0), ==, "w.safetensors");
  g_assert_cmpfloat (set_value (set, "x"), ==, 1.0f);
  ts_st_set_free (set);

  set = ts_st_set_open (dir, "w", "", &err);
  g_assert_cmpstr (set_basename (set, 0), ==, "w.safetensors");
  ts_st_set_free (set);

  /* An absent variant falls back to the plain file. */
  set = ts_st_set_open (dir, "w", "bf16", &err);
  g_assert_nonnull (set);
  g_assert_cmpstr (set_basename (set, 0), ==, "w.safetensors");
  ts_st_set_free (set);

  /* Sharded fp16 variant, diffusers' spelling, beats the plain single file. */
  g_free (write_one ("variant/s.safetensors", "x", 1.0f, false));
  g_free (write_one ("variant/s-1.fp16.safetensors", "x", 3.0f, true));
  write_text ("variant/s.safetensors.index.fp16.json",
              "{\"weight_map\":{\"x\":\"s-1.fp16.safetensors\"}}");
  set = ts_st_set_open (dir, "s", "fp16", &err);
  if (!set)
    g_error ("%s", err.message);
  g_assert_cmpstr (set_basename (set, 0), ==, "s-1.fp16.safetensors");
  g_assert_cmpfloat (set_value (set, "x"), ==, 3.0f);
  ts_st_set_free (set);

  /* ... and transformers' spelling. */
  g_free (write_one ("variant/t-1.fp16.safetensors", "y", 4.0f, true));
  write_text ("variant/t.fp16.safetensors.index.json",
              "{\"weight_map\":{\"y\":\"t-1.fp16.safetensors\"}}");
  set = ts_st_set_open (dir, "t", "fp16", &err);
  if (!set)
    g_error ("%s", err.message);
  g_assert_cmpfloat (set_value (set, "y"), ==, 4.0f);
  ts_st_set_free (set);

  /* Without the variant, the plain sharded index. */
  g_free (write_one ("variant/t-1.safetensors", "y", 5.0f, false));
  write_text ("variant/t.safetensors.index.json", "{\"weight_map\":{\"y\":\"t-1.safetensors\"}}");
  set = ts_st_set_open (dir, "t", NULL, &err);
  if (!set)
    g_error ("%s", err.message);
  g_assert_cmpfloat (set_value (set, "y"), ==, 5.0f);
  ts_st_set_free (set);

  /* A present but broken variant is an error, not a silent fallback. */
  g_free (write_st ("variant/w.bad.safetensors", "[]", NULL, 0));
  g_assert_null (ts_st_set_open (dir, "w", "bad", &err));
  assert_error (&err, TS_ERR_FORMAT, dir, "w.bad.safetensors: header is not a JSON object",
                NULL);

  g_assert_cmpint (g_mkdir_with_parents (empty, 0700), ==, 0);
  g_assert_null (ts_st_set_open (empty, "w", "fp16", &err));
  assert_error (&err, TS_ERR_NOT_FOUND, empty, "no w.safetensors (nor its fp16 variant)", NULL);
  g_assert_null (ts_st_set_open (empty, "w", NULL, &err));
  assert_error (&err, TS_ERR_NOT_FOUND, empty, "no w.safetensors or its sharded index", NULL);
  g_assert_null (ts_st_set_open (NULL, "w", NULL, &err));
  g_assert_cmpint (err.code, ==, TS_ERR_INVALID_ARG);

  g_free (empty);
  g_free (dir);
}

/* ---- conversions ---- */

static guint32
bits_of (float f)
{
  guint32 u;
  memcpy (&u, &f, 4);
  return u;
}

static float
float_of (guint32 u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

static void
test_f16 (void)
{
  static const struct {
    guint16 h;
    guint32 f;
  } exact[] = {
    { 0x0000, 0x00000000 }, { 0x8000, 0x80000000 }, /* +-0 */
    { 0x3c00, 0x3f800000 }, { 0xc000, 0xc0000000 }, /* 1, -2 */
    { 0x3555, 0x3eaaa000 },                         /* 0.333251953125 */
    { 0x0001, 0x33800000 },                         /* 2^-24, smallest subnormal */
    { 0x03ff, 0x387fc000 },                         /* largest subnormal */
    { 0x0400, 0x38800000 },                         /* 2^-14, smallest normal */
    { 0x8001, 0xb3800000 },
    { 0x7bff, 0x477fe000 },                         /* 65504 */
    { 0x7c00, 0x7f800000 }, { 0xfc00, 0xff800000 }, /* +-inf */
    { 0x7e00, 0x7fc00000 },                         /* quiet NaN */
  };
  static const struct {
    guint32 f;
    guint16 h;
  } rounding[] = {
    { 0x477fefff, 0x7bff }, /* just below 65520 */
    { 0x477ff000, 0x7c00 }, /* 65520: tie, rounds to even = inf */
    { 0x7f7fffff, 0x7c00 }, /* FLT_MAX */
    { 0x3f801000, 0x3c00 }, /* 1 + 2^-11: tie, to even 1.0 */
    { 0x3f801001, 0x3c01 }, /* just above the tie */
    { 0x3f803000, 0x3c02 }, /* 1 + 3*2^-11: tie, to even 1 + 2^-9 */
    { 0x33000000, 0x0000 }, /* 2^-25: tie between 0 and 2^-24, to even 0 */
    { 0x33000001, 0x0001 },
    { 0x33c00000, 0x0002 }, /* 1.5 * 2^-24: tie, to even 2 */
    { 0x34200000, 0x0002 }, /* 2.5 * 2^-24: tie, to even 2 */
    { 0x387fe000, 0x0400 }, /* 2^-14 - 2^-25: tie between 0x3ff and 0x400, to even */
    { 0x2edbe6ff, 0x0000 }, /* 1e-10 */
    { 0xaedbe6ff, 0x8000 }, /* -1e-10 keeps its sign */
    { 0x80000000, 0x8000 },
    { 0xff800000, 0xfc00 },
  };

  for (size_t i = 0; i < G_N_ELEMENTS (exact); i++) {
    g_assert_cmphex (bits_of (ts_f16_to_f32 (exact[i].h)), ==, exact[i].f);
    g_assert_cmphex (ts_f32_to_f16 (float_of (exact[i].f)), ==, exact[i].h);
  }
  for (size_t i = 0; i < G_N_ELEMENTS (rounding); i++)
    g_assert_cmphex (ts_f32_to_f16 (float_of (rounding[i].f)), ==, rounding[i].h);

  /* Every f16 widens exactly and narrows back to itself; NaNs stay NaN. */
  for (guint32 h = 0; h < 0x10000; h++) {
    float f = ts_f16_to_f32 ((guint16) h);
    guint16 back = ts_f32_to_f16 (f);
    bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);

    if (nan) {
      g_assert_true (isnan (f));
      g_assert_cmphex (back & 0x7e00, ==, 0x7e00);
      g_assert_cmphex (back & 0x8000, ==, h & 0x8000);
    } else {
      g_assert_cmphex (back, ==, h);
    }
  }
  /* Signalling NaN with payload only in the low bits stays NaN, not inf. */
  g_assert_cmphex (ts_f32_to_f16 (float_of (0x7f800001)) & 0x7e00, ==, 0x7e00);

#ifdef __FLT16_MAX__
  /* The compiler's own conversion (IEEE round to nearest even) on many floats. */
  {
    GRand *rand = g_rand_new_with_seed (1234);
    for (int i = 0; i < 1000000; i++) {
      guint32 u = g_rand_int (rand);
      float f = float_of (u);
      _Float16 ref = (_Float16) f;
      guint16 ref_bits;

      memcpy (&ref_bits, &ref, 2);
      if (isnan (f))
        continue;
      if (ts_f32_to_f16 (f) != ref_bits)
        g_error ("f32 0x%08x: ts_f32_to_f16 0x%04x, compiler 0x%04x (seed 1234)", u,
                 ts_f32_to_f16 (f), ref_bits);
    }
    g_rand_free (rand);
  }
#endif
}

static void
test_bf16 (void)
{
  static const struct {
    guint32 f;
    guint16 h;
  } cases[] = {
    { 0x3f800000, 0x3f80 }, /* 1 */
    { 0x3f808000, 0x3f80 }, /* 1 + 2^-8: tie, to even */
    { 0x3f818000, 0x3f82 }, /* 1 + 3*2^-8: tie, to even */
    { 0x3f808001, 0x3f81 },
    { 0x7f7fffff, 0x7f80 }, /* FLT_MAX rounds to inf */
    { 0x7f7f7fff, 0x7f7f },
    { 0x7f800000, 0x7f80 }, { 0xff800000, 0xff80 },
    { 0x00000001, 0x0000 }, /* smallest subnormal rounds to zero */
    { 0x00018000, 0x0002 }, /* subnormal tie, to even */
    { 0x80000000, 0x8000 },
  };

  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_cmphex (ts_f32_to_bf16 (float_of (cases[i].f)), ==, cases[i].h);
  g_assert_cmphex (ts_f32_to_bf16 (float_of (0x7f800001)), ==, 0x7fc0); /* NaN, not inf */
  g_assert_cmphex (ts_f32_to_bf16 (float_of (0xffffffff)), ==, 0xffff);
  g_assert_cmphex (bits_of (ts_bf16_to_f32 (0xc049)), ==, 0xc0490000);

  for (guint32 h = 0; h < 0x10000; h++) {
    float f = ts_bf16_to_f32 ((guint16) h);
    guint16 back = ts_f32_to_bf16 (f);

    g_assert_cmphex (bits_of (f), ==, h << 16);
    if ((h & 0x7f80) == 0x7f80 && (h & 0x7f))
      g_assert_cmphex (back, ==, h | 0x40);
    else
      g_assert_cmphex (back, ==, h);
  }
}

static void
test_f8 (void)
{
  static const struct {
    const char *dtype;
    guint8 b;
    float f;
  } cases[] = {
    { "F8_E4M3", 0x01, 0x1p-9f },  /* smallest subnormal */
    { "F8_E4M3", 0x07, 0x7p-9f },
    { "F8_E4M3", 0x08, 0x1p-6f },  /* smallest normal */
    { "F8_E4M3", 0x7e, 448.0f },   /* largest */
    { "F8_E4M3", 0xfe, -448.0f },
    { "F8_E4M3", 0x78, 256.0f },   /* exponent 15 is a normal binade, not inf */
    { "F8_E4M3", 0x80, -0.0f },
    { "F8_E5M2", 0x01, 0x1p-16f },
    { "F8_E5M2", 0x7b, 57344.0f },
    { "F8_E5M2", 0x7c, INFINITY },
    { "F8_E5M2", 0xfc, -INFINITY },
  };
  char header[160];

  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    GByteArray *file;
    ts_safetensors *st;
    ts_error err = { 0 };
    float f;

    g_snprintf (header, sizeof header,
                "{\"v\":{\"dtype\":\"%s\",\"shape\":[],\"data_offsets\":[0,1]}}", cases[i].dtype);
    file = st_build (header, &cases[i].b, 1);
    st = ts_safetensors_open_memory (file->data, file->len, "f8", &err);
    g_assert_nonnull (st);
    g_assert_cmpint (ts_st_tensor_to_f32 (ts_safetensors_find (st, "v"), &f, &err), ==, TS_OK);
    g_assert_cmphex (bits_of (f), ==, bits_of (cases[i].f));
    ts_safetensors_free (st);
    g_byte_array_unref (file);
  }
  for (guint8 b = 0x7f;; b = 0xff) {
    GByteArray *file;
    ts_safetensors *st;
    float f;

    file = st_build ("{\"v\":{\"dtype\":\"F8_E4M3\",\"shape\":[],\"data_offsets\":[0,1]}}", &b,
                     1);
    st = ts_safetensors_open_memory (file->data, file->len, "f8", NULL);
    g_assert_cmpint (ts_st_tensor_to_f32 (ts_safetensors_find (st, "v"), &f, NULL), ==, TS_OK);
    g_assert_true (isnan (f));
    ts_safetensors_free (st);
    g_byte_array_unref (file);
    if (b == 0xff)
      break;
  }
}

/* ---- the golden model ---- */

static char *
golden_transformer_dir (void)
{
  const char *golden = g_getenv ("TESSERA_GOLDEN_DIR");
  char *dir;

  if (!golden)
    return NULL;
  dir = g_build_filename (golden, "models", "tiny-meissonic", "transformer", NULL);
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_free (dir);
    return NULL;
  }
  return dir;
}

static void
test_golden (void)
{
  char *dir = golden_transformer_dir ();
  char *path;
  ts_error err = { 0 };
  ts_safetensors *st;
  const ts_st_tensor *t;
  float *f;

  if (!dir) {
    g_test_skip ("TESSERA_GOLDEN_DIR/models/tiny-meissonic/transformer is absent");
    return;
  }
  path = g_build_filename (dir, "diffusion_pytorch_model.safetensors", NULL);
  st = ts_safetensors_open (path, &err);
  if (!st)
    g_error ("%s", err.message);
  /* 120 header entries: 119 tensors (as the golden README says) and __metadata__. */
  g_assert_cmpuint (ts_safetensors_n_tensors (st), ==, 119);
  g_assert_cmpstr (ts_safetensors_metadata (st, "format"), ==, "pt");
  t = ts_safetensors_find (st, "embed.embeddings.weight");
  g_assert_nonnull (t);
  g_assert_cmpint (t->dtype, ==, TS_DTYPE_F32);
  g_assert_cmpint (t->n_dims, ==, 2);
  g_assert_cmpint (t->shape[0], ==, 128);
  g_assert_cmpint (t->shape[1], ==, 64);
  g_assert_cmpuint (t->size_bytes, ==, 128 * 64 * 4);
  f = g_new (float, t->n_elements);
  g_assert_cmpint (ts_st_tensor_to_f32 (t, f, &err), ==, TS_OK);
  for (size_t i = 0; i < t->n_elements; i++)
    g_assert_true (isfinite (f[i]));
  g_free (f);
  for (size_t i = 1; i < ts_safetensors_n_tensors (st); i++)
    g_assert_cmpint (strcmp (ts_safetensors_tensor (st, i - 1)->name,
                             ts_safetensors_tensor (st, i)->name), <, 0);
  ts_safetensors_free (st);
  g_free (path);
  g_free (dir);
}

static void
test_golden_fp16 (void)
{
  char *dir = golden_transformer_dir ();
  ts_error err = { 0 };
  ts_st_set *f32_set, *f16_set;

  if (!dir) {
    g_test_skip ("TESSERA_GOLDEN_DIR/models/tiny-meissonic/transformer is absent");
    return;
  }
  f16_set = ts_st_set_open (dir, "diffusion_pytorch_model", "fp16", &err);
  if (!f16_set)
    g_error ("%s", err.message);
  f32_set = ts_st_set_open (dir, "diffusion_pytorch_model", NULL, &err);
  if (!f32_set)
    g_error ("%s", err.message);
  g_assert_cmpstr (set_basename (f16_set, 0), ==, "diffusion_pytorch_model.fp16.safetensors");
  g_assert_cmpstr (set_basename (f32_set, 0), ==, "diffusion_pytorch_model.safetensors");
  g_assert_cmpuint (ts_st_set_n_tensors (f16_set), ==, 119);
  g_assert_cmpuint (ts_st_set_n_tensors (f32_set), ==, 119);

  /* The fp16 file holds the f32 weights rounded to nearest even: reproduce every bit. */
  for (size_t i = 0; i < ts_st_set_n_tensors (f32_set); i++) {
    const ts_st_tensor *a = ts_st_set_tensor (f32_set, i);
    const ts_st_tensor *b = ts_st_set_find (f16_set, a->name);
    float *fa, *fb;

    g_assert_nonnull (b);
    g_assert_cmpint (a->dtype, ==, TS_DTYPE_F32);
    g_assert_cmpint (b->dtype, ==, TS_DTYPE_F16);
    g_assert_cmpint (a->n_dims, ==, b->n_dims);
    g_assert_cmpmem (a->shape, sizeof a->shape, b->shape, sizeof b->shape);
    fa = g_new (float, a->n_elements + 1);
    fb = g_new (float, b->n_elements + 1);
    g_assert_cmpint (ts_st_tensor_to_f32 (a, fa, &err), ==, TS_OK);
    g_assert_cmpint (ts_st_tensor_to_f32 (b, fb, &err), ==, TS_OK);
    for (size_t k = 0; k < a->n_elements; k++) {
      guint16 h;
      memcpy (&h, (const guint8 *) b->data + 2 * k, 2);
      if (ts_f32_to_f16 (fa[k]) != h)
        g_error ("%s[%zu]: f32 %a rounds to 0x%04x, the fp16 file has 0x%04x", a->name, k,
                 (double) fa[k], ts_f32_to_f16 (fa[k]), h);
      g_assert_cmpfloat (fb[k], ==, ts_f16_to_f32 (h));
    }
    g_free (fa);
    g_free (fb);
  }
  ts_st_set_free (f16_set);
  ts_st_set_free (f32_set);
  g_free (dir);
}

/* ---- header size limit ---- */

/* A header one byte over the limit, present in full, is refused from its length alone
 * (before any parse: a hostile 100 MB header used to cost 1.7 GB of RSS); one exactly at
 * the limit parses. */
static void
test_header_limit (void)
{
  const size_t limit = TS_ST_MAX_HEADER;
  char *header = g_malloc (limit + 2);
  char *path, *want;
  ts_error err = { 0 };
  ts_safetensors *st;
  GByteArray *b;
  gint64 t0;

  memset (header, ' ', limit + 1);
  header[0] = '{';
  header[1] = '}';
  header[limit + 1] = '\0';
  b = st_build (header, NULL, 0);
  path = write_file ("limit/over.safetensors", b->data, b->len);
  t0 = g_get_monotonic_time ();
  g_assert_null (ts_safetensors_open (path, &err));
  g_assert_cmpint (g_get_monotonic_time () - t0, <, G_USEC_PER_SEC);
  want = g_strdup_printf ("header length %zu exceeds the limit of %zu bytes", limit + 1, limit);
  assert_error (&err, TS_ERR_FORMAT, path, want, NULL);
  g_byte_array_unref (b);
  g_free (path);

  header[limit] = '\0';
  b = st_build (header, NULL, 0);
  path = write_file ("limit/at.safetensors", b->data, b->len);
  st = ts_safetensors_open (path, &err);
  g_assert_nonnull (st);
  g_assert_cmpuint (ts_safetensors_n_tensors (st), ==, 0);
  ts_safetensors_free (st);
  g_byte_array_unref (b);
  g_free (path);
  g_free (want);
  g_free (header);
}

/* ---- non-finite check ---- */

typedef struct {
  const char *dtype;
  size_t elem;
  guint64 max_finite, nan, pos_inf, neg_inf; /* bit patterns; inf 0 when there is none */
} finite_case;

static const finite_case finite_cases[] = {
  { "F16", 2, 0x7BFF, 0x7E01, 0x7C00, 0xFC00 },
  { "BF16", 2, 0x7F7F, 0x7FC1, 0x7F80, 0xFF80 },
  { "F32", 4, 0x7F7FFFFF, 0x7FC00001, 0x7F800000, 0xFF800000 },
  { "F64", 8, 0x7FEFFFFFFFFFFFFF, 0x7FF8000000000001, 0x7FF0000000000000,
    0xFFF0000000000000 },
  { "F8_E5M2", 1, 0x7B, 0x7E, 0x7C, 0xFC },
  { "F8_E4M3", 1, 0x7E, 0x7F, 0, 0 },
};

/* A tensor 'w' of n elements, all max_finite (negated in odd places), with `bad` at
 * element `at` (none when at == n). */
static ts_safetensors *
finite_tensor (const finite_case *c, size_t n, size_t at, guint64 bad, GByteArray **out)
{
  char *header = g_strdup_printf ("{\"w\":{\"dtype\":\"%s\",\"shape\":[%zu],"
                                  "\"data_offsets\":[0,%zu]}}", c->dtype, n, n * c->elem);
  guint8 *data = g_malloc (n * c->elem + 1);
  const guint64 sign = (guint64) 1 << (8 * c->elem - 1);
  ts_error err = { 0 };
  ts_safetensors *st;

  for (size_t i = 0; i < n; i++) {
    guint64 v = i == at ? bad : (i % 2 ? c->max_finite | sign : c->max_finite);
    memcpy (data + i * c->elem, &v, c->elem); /* little-endian host */
  }
  *out = st_build (header, data, n * c->elem);
  st = ts_safetensors_open_memory ((*out)->data, (*out)->len, "finite.safetensors", &err);
  g_assert_nonnull (st);
  g_free (data);
  g_free (header);
  return st;
}

static void
test_check_finite (void)
{
  /* Sizes around the 8-byte words and the scan's 16 KiB blocks, tails included. */
  const size_t sizes[] = { 1, 3, 8, 9, 8191, 8192, 8193, 20001 };

  for (size_t k = 0; k < G_N_ELEMENTS (finite_cases); k++) {
    const finite_case *c = &finite_cases[k];
    for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++) {
      const size_t n = sizes[s];
      const size_t where[] = { 0, n / 2, n - 1 };
      const guint64 bads[] = { c->nan, c->pos_inf, c->neg_inf };
      const char *kinds[] = { "NaN", "+inf", "-inf" };
      GByteArray *b;
      ts_error err = { 0 };
      ts_safetensors *st = finite_tensor (c, n, n, 0, &b);

      g_assert_cmpint (ts_st_tensor_check_finite (ts_safetensors_find (st, "w"), &err), ==,
                       TS_OK);
      ts_safetensors_free (st);
      g_byte_array_unref (b);
      for (size_t j = 0; j < G_N_ELEMENTS (bads); j++) {
        if (j > 0 && !c->pos_inf)
          break;
        for (size_t w = 0; w < G_N_ELEMENTS (where); w++) {
          char *want = g_strdup_printf ("tensor 'w': element %zu of %zu is %s", where[w], n,
                                        kinds[j]);
          st = finite_tensor (c, n, where[w], bads[j], &b);
          g_assert_cmpint (ts_st_tensor_check_finite (ts_safetensors_find (st, "w"), &err),
                           ==, TS_ERR_FORMAT);
          assert_error (&err, TS_ERR_FORMAT, "finite.safetensors: ", want, "non-finite");
          ts_safetensors_free (st);
          g_byte_array_unref (b);
          g_free (want);
        }
      }
    }
  }
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  tmp_dir = g_dir_make_tmp ("tessera-st-XXXXXX", &error);
  g_assert_no_error (error);

  for (size_t i = 0; i < G_N_ELEMENTS (bad_cases); i++) {
    char *name = g_strdup_printf ("/safetensors/bad/%s", bad_cases[i].name);
    g_test_add_data_func (name, &bad_cases[i], test_bad_file);
    g_free (name);
  }
  g_test_add_func ("/safetensors/open-missing", test_open_missing);
  g_test_add_func ("/safetensors/release", test_release);
  g_test_add_func ("/safetensors/all-dtypes", test_all_dtypes);
  g_test_add_func ("/safetensors/u64-out-of-range", test_u64_out_of_range);
  g_test_add_func ("/safetensors/zero-size-and-scalar", test_zero_size_and_scalar);
  g_test_add_func ("/safetensors/metadata", test_metadata);
  g_test_add_func ("/safetensors/set/sharded", test_sharded);
  for (size_t i = 0; i < G_N_ELEMENTS (bad_index_cases); i++) {
    char *name = g_strdup_printf ("/safetensors/set/bad-index/%s", bad_index_cases[i].name);
    g_test_add_data_func (name, &bad_index_cases[i], test_bad_index);
    g_free (name);
  }
  g_test_add_func ("/safetensors/set/shard-duplicate", test_shard_duplicate);
  g_test_add_func ("/safetensors/set/variants", test_variants);
  g_test_add_func ("/safetensors/convert/f16", test_f16);
  g_test_add_func ("/safetensors/convert/bf16", test_bf16);
  g_test_add_func ("/safetensors/convert/f8", test_f8);
  g_test_add_func ("/safetensors/header-limit", test_header_limit);
  g_test_add_func ("/safetensors/check-finite", test_check_finite);
  g_test_add_func ("/safetensors/golden/transformer", test_golden);
  g_test_add_func ("/safetensors/golden/transformer-fp16", test_golden_fp16);

  status = g_test_run ();
  remove_tree (tmp_dir);
  g_free (tmp_dir);
  return status;
}
