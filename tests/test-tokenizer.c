/* SPDX-License-Identifier: MIT
 *
 * Tests for ts-tokenizer, the pipeline's first stage. The golden part encodes every
 * prompt of $TESSERA_GOLDEN_DIR/cases/tokenizer.json (ids produced by transformers' slow
 * CLIPTokenizer) and requires the same 77 padded ids, the same untruncated ids and the
 * same token strings; it is skipped only when the golden folder is absent. The rest
 * builds small tokenizer folders in a temporary directory to check the load errors
 * (missing, malformed files) and the encoder's argument checks.
 */
#include "tessera.h"

#include <cjson/cJSON.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

static const char *golden_dir;

static char *
golden_path (const char *rel)
{
  return g_build_filename (golden_dir, rel, NULL);
}

static gboolean
golden_present (void)
{
  g_autofree char *p = NULL;
  if (!golden_dir) {
    g_test_skip ("TESSERA_GOLDEN_DIR is not set");
    return FALSE;
  }
  p = golden_path ("cases/tokenizer.json");
  if (!g_file_test (p, G_FILE_TEST_EXISTS)) {
    g_test_skip_printf ("golden folder absent: %s", p);
    return FALSE;
  }
  return TRUE;
}

static ts_tokenizer *
load_golden_tokenizer (void)
{
  g_autofree char *dir = golden_path ("models/tiny-meissonic/tokenizer");
  ts_error err = { 0 };
  ts_tokenizer *tok = ts_tokenizer_load (dir, &err);
  if (!tok)
    g_error ("%s", err.message);
  return tok;
}

static void
expect_ids (const char *what, const char *text, const int32_t *got, size_t n_got, const cJSON *want)
{
  size_t n_want = (size_t) cJSON_GetArraySize (want);
  for (size_t i = 0; i < MAX (n_got, n_want); i++) {
    const cJSON *w = cJSON_GetArrayItem (want, (int) i);
    if (i >= n_got || i >= n_want || (int32_t) w->valuedouble != got[i])
      g_error ("%s of %s: id %zu: got %d, want %d (%zu ids, want %zu)", what, text, i,
               i < n_got ? got[i] : -1, i < n_want ? (int) w->valuedouble : -1, n_got, n_want);
  }
}

static void
test_golden_cases (void)
{
  g_autofree char *path = NULL, *json = NULL;
  g_autoptr (GError) error = NULL;
  cJSON *root, *cases, *c;
  ts_tokenizer *tok;
  int n_cases = 0;

  if (!golden_present ())
    return;
  path = golden_path ("cases/tokenizer.json");
  g_assert_true (g_file_get_contents (path, &json, NULL, &error));
  g_assert_no_error (error);
  root = cJSON_Parse (json);
  g_assert_nonnull (root);
  cases = cJSON_GetObjectItemCaseSensitive (root, "cases");
  g_assert_true (cJSON_IsArray (cases));
  tok = load_golden_tokenizer ();
  g_assert_cmpuint (ts_tokenizer_n_vocab (tok), ==, 49408);

  cJSON_ArrayForEach (c, cases) {
    const char *text = cJSON_GetObjectItemCaseSensitive (c, "text")->valuestring;
    const cJSON *want_padded = cJSON_GetObjectItemCaseSensitive (c, "input_ids");
    const cJSON *want_full = cJSON_GetObjectItemCaseSensitive (c, "untruncated_ids");
    const cJSON *want_tokens = cJSON_GetObjectItemCaseSensitive (c, "tokens");
    g_autofree char *label = g_strescape (text, NULL);
    g_autofree int32_t *full = NULL;
    int32_t padded[TS_TOKENIZER_MAX_LENGTH];
    size_t n_full = 0, n_again = 0;
    bool truncated = true;
    ts_error err = { 0 };

    g_assert_cmpint (ts_tokenizer_encode_padded (tok, text, padded, &truncated, &err), ==, TS_OK);
    expect_ids ("padded ids", label, padded, TS_TOKENIZER_MAX_LENGTH, want_padded);

    /* Size query first, then the real call: the count must not depend on cap. */
    g_assert_cmpint (ts_tokenizer_encode (tok, text, NULL, 0, &n_full, &err), ==, TS_OK);
    full = g_new (int32_t, n_full);
    g_assert_cmpint (ts_tokenizer_encode (tok, text, full, n_full, &n_again, &err), ==, TS_OK);
    g_assert_cmpuint (n_again, ==, n_full);
    expect_ids ("untruncated ids", label, full, n_full, want_full);
    g_assert_cmpint (truncated, ==, n_full > TS_TOKENIZER_MAX_LENGTH);

    g_assert_cmpuint ((size_t) cJSON_GetArraySize (want_tokens), ==, n_full);
    for (size_t i = 0; i < n_full; i++) {
      const char *want = cJSON_GetArrayItem (want_tokens, (int) i)->valuestring;
      const char *got = ts_tokenizer_id_to_token (tok, full[i]);
      if (!got || strcmp (got, want) != 0)
        g_error ("tokens of %s: token %zu (id %d): got '%s', want '%s'", label, i, full[i],
                 got ? got : "(null)", want);
    }
    n_cases++;
  }
  g_test_message ("%d golden prompts match", n_cases);
  g_assert_cmpint (n_cases, ==, 32);
  ts_tokenizer_free (tok);
  cJSON_Delete (root);
}

/* A long prompt's padded form is a prefix of the full ids with eos put back last, and a
 * small cap gets a prefix of the same ids. */
static void
test_truncation (void)
{
  g_autoptr (GString) text = g_string_new ("a photo of");
  int32_t padded[TS_TOKENIZER_MAX_LENGTH], full[200], prefix[5];
  size_t n = 0, n_prefix = 0;
  bool truncated = false;
  ts_tokenizer *tok;

  if (!golden_present ())
    return;
  tok = load_golden_tokenizer ();
  for (int i = 0; i < 100; i++)
    g_string_append (text, " cat");
  g_assert_cmpint (ts_tokenizer_encode (tok, text->str, full, G_N_ELEMENTS (full), &n, NULL), ==, TS_OK);
  g_assert_cmpuint (n, ==, 105);
  g_assert_cmpint (ts_tokenizer_encode_padded (tok, text->str, padded, &truncated, NULL), ==, TS_OK);
  g_assert_true (truncated);
  g_assert_cmpmem (padded, 76 * sizeof (int32_t), full, 76 * sizeof (int32_t));
  g_assert_cmpint (padded[76], ==, 49407);
  g_assert_cmpint (ts_tokenizer_encode (tok, text->str, prefix, G_N_ELEMENTS (prefix), &n_prefix, NULL),
                   ==, TS_OK);
  g_assert_cmpuint (n_prefix, ==, 105);
  g_assert_cmpmem (prefix, sizeof prefix, full, sizeof prefix);
  ts_tokenizer_free (tok);
}

/* Behaviour of Python's str.lower() and the regex that the golden prompts do not reach;
 * the expected ids were produced by the reference CLIPTokenizer code path. */
static void
test_unicode_corners (void)
{
  static const struct {
    const char *text;
    size_t n;
    int32_t ids[16];
  } cases[] = {
    /* Final sigma: "ΟΔΟΣ" lowers to "οδος" (ς = CF 82 → 'Ï' 'Ĥ</w>'). */
    { "\xce\x9f\xce\x94\xce\x9f\xce\xa3", 10, { 49406, 138, 123, 138, 112, 138, 123, 139, 480, 49407 } },
    /* A medial Σ lowers to σ (CF 83 → 'Ï' 'ĥ'); '.' is case-ignorable, so "ΑΣ." ends in ς. */
    { "\xce\xa3\xce\x91\xce\xa3 \xce\x91\xce\xa3.",
      13,
      { 49406, 139, 225, 138, 109, 139, 480, 138, 109, 139, 480, 269, 49407 } },
    /* U+0130 lowers to "i" + U+0307, and the combining dot is a separate regex match. */
    { "\xc4\xb0stanbul", 5, { 49406, 328, 16384, 11231, 49407 } },
    /* U+0345 after a letter survives cleaning but matches no class of CLIP's regex. */
    { "a\xcd\x85", 3, { 49406, 320, 49407 } },
    /* ZWJ (format) and U+E000 (private use) are dropped, U+3000 is a space. */
    { "a\xe2\x80\x8d"
      "b\xee\x80\x80"
      "c\xe3\x80\x80"
      "d",
      4,
      { 49406, 5334, 323, 49407 } },
    /* U+FFFD and U+0085 (a control) are dropped; U+2028 (Zl) is not whitespace to BERT's
     * cleaner but Python's str.split() splits on it. */
    { "a\xef\xbf\xbd"
      "b\xe2\x80\xa8"
      "c\xc2\x85"
      "d",
      4,
      { 49406, 3937, 4480, 49407 } },
  };
  ts_tokenizer *tok;

  if (!golden_present ())
    return;
  tok = load_golden_tokenizer ();
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    int32_t ids[16];
    size_t n = 0, n_want = cases[i].n;
    g_autofree char *label = g_strescape (cases[i].text, NULL);
    ts_error err = { 0 };
    g_assert_cmpint (ts_tokenizer_encode (tok, cases[i].text, ids, G_N_ELEMENTS (ids), &n, &err), ==,
                     TS_OK);
    for (size_t k = 0; k < MAX (n, n_want); k++)
      if (k >= n || k >= n_want || ids[k] != cases[i].ids[k])
        g_error ("%s: id %zu: got %d, want %d", label, k, k < n ? ids[k] : -1,
                 k < n_want ? cases[i].ids[k] : -1);
  }
  ts_tokenizer_free (tok);
}

/* ---- synthetic folders ---- */

static const char tiny_vocab[] =
    "{\"!\": 0, \"a\": 1, \"b\": 2, \"a</w>\": 3, \"b</w>\": 4, \"ab</w>\": 5, \"ab\": 6,"
    " \"<|startoftext|>\": 7, \"<|endoftext|>\": 8}";
static const char tiny_merges[] = "#version: 0.2\na b</w>\na b\n";
static const char tiny_config[] =
    "{\"added_tokens_decoder\": {\"0\": {\"content\": \"!\", \"lstrip\": false, \"rstrip\": false,"
    " \"single_word\": false, \"special\": true}}, \"bos_token\": \"<|startoftext|>\","
    " \"eos_token\": \"<|endoftext|>\", \"pad_token\": \"!\", \"unk_token\": \"<|endoftext|>\"}";

typedef struct {
  char *dir;
} folder;

static void
write_file (const char *dir, const char *name, const char *contents, gssize len)
{
  g_autofree char *p = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_set_contents (p, contents, len, &error));
  g_assert_no_error (error);
}

static void
folder_setup (folder *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  (void) data;
  f->dir = g_dir_make_tmp ("tessera-tokenizer-XXXXXX", &error);
  g_assert_no_error (error);
  write_file (f->dir, "vocab.json", tiny_vocab, -1);
  write_file (f->dir, "merges.txt", tiny_merges, -1);
  write_file (f->dir, "tokenizer_config.json", tiny_config, -1);
}

static void
folder_teardown (folder *f, gconstpointer data)
{
  static const char *const names[] = { "vocab.json", "merges.txt", "tokenizer_config.json",
                                       "special_tokens_map.json" };
  (void) data;
  for (size_t i = 0; i < G_N_ELEMENTS (names); i++) {
    g_autofree char *p = g_build_filename (f->dir, names[i], NULL);
    g_unlink (p);
  }
  g_rmdir (f->dir);
  g_free (f->dir);
}

static void
expect_load_error (const folder *f, ts_status code, const char *needle)
{
  ts_error err = { 0 };
  ts_tokenizer *tok = ts_tokenizer_load (f->dir, &err);
  g_assert_null (tok);
  if (err.code != code || !strstr (err.message, needle))
    g_error ("expected %s mentioning '%s', got %s: %s", ts_status_name (code), needle,
             ts_status_name (err.code), err.message);
}

static void
test_invalid_utf8 (folder *f, gconstpointer data)
{
  static const char *const bad[] = {
    "caf\xc3",          /* truncated sequence */
    "\xc0\xaf",         /* overlong '/' */
    "a\xed\xa0\x80z",   /* UTF-16 surrogate */
    "\xf4\x90\x80\x80", /* above U+10FFFF */
    "ok \xff",          /* never valid */
  };
  ts_tokenizer *tok;
  (void) data;

  tok = ts_tokenizer_load (f->dir, NULL);
  g_assert_nonnull (tok);
  for (size_t i = 0; i < G_N_ELEMENTS (bad); i++) {
    int32_t ids[TS_TOKENIZER_MAX_LENGTH];
    size_t n = 12345;
    ts_error err = { 0 };
    g_assert_cmpint (ts_tokenizer_encode (tok, bad[i], ids, G_N_ELEMENTS (ids), &n, &err), ==,
                     TS_ERR_INVALID_ARG);
    g_assert_nonnull (strstr (err.message, "UTF-8"));
    g_assert_cmpuint (n, ==, 12345);
    err = (ts_error){ 0 };
    g_assert_cmpint (ts_tokenizer_encode_padded (tok, bad[i], ids, NULL, &err), ==, TS_ERR_INVALID_ARG);
    g_assert_nonnull (strstr (err.message, "UTF-8"));
  }
  g_assert_cmpint (ts_tokenizer_encode (tok, NULL, NULL, 0, NULL, NULL), ==, TS_ERR_INVALID_ARG);
  g_assert_cmpint (ts_tokenizer_encode (tok, "x", NULL, 3, NULL, NULL), ==, TS_ERR_INVALID_ARG);
  g_assert_cmpint (
      ts_tokenizer_encode_padded (NULL, "x", (int32_t[TS_TOKENIZER_MAX_LENGTH]){ 0 }, NULL, NULL), ==,
      TS_ERR_INVALID_ARG);
  g_assert_null (ts_tokenizer_id_to_token (tok, -1));
  g_assert_null (ts_tokenizer_id_to_token (tok, 9));
  g_assert_cmpstr (ts_tokenizer_id_to_token (tok, 0), ==, "!");
  ts_tokenizer_free (tok);
  ts_tokenizer_free (NULL);
}

static void
test_synthetic_ok (folder *f, gconstpointer data)
{
  ts_error err = { 0 };
  ts_tokenizer *tok;
  int32_t ids[TS_TOKENIZER_MAX_LENGTH];
  size_t n = 0;
  (void) data;

  tok = ts_tokenizer_load (f->dir, &err);
  g_assert_nonnull (tok);
  /* "ab" merges to "ab</w>" (rank 0 beats rank 1), "!" is the pad token, the unknown
   * "c" becomes unk. */
  g_assert_cmpint (ts_tokenizer_encode (tok, "AB!c", ids, G_N_ELEMENTS (ids), &n, &err), ==, TS_OK);
  g_assert_cmpuint (n, ==, 5);
  g_assert_cmpint (ids[0], ==, 7);
  g_assert_cmpint (ids[1], ==, 5);
  g_assert_cmpint (ids[2], ==, 0);
  g_assert_cmpint (ids[3], ==, 8);
  g_assert_cmpint (ids[4], ==, 8);
  g_assert_cmpint (ts_tokenizer_encode_padded (tok, "ab ab", ids, NULL, &err), ==, TS_OK);
  g_assert_cmpint (ids[0], ==, 7);
  g_assert_cmpint (ids[1], ==, 5);
  g_assert_cmpint (ids[2], ==, 5);
  g_assert_cmpint (ids[3], ==, 8);
  g_assert_cmpint (ids[4], ==, 0);
  g_assert_cmpint (ids[76], ==, 0);
  g_assert_cmpuint (ts_tokenizer_n_vocab (tok), ==, 9);
  ts_tokenizer_free (tok);
}

static void
test_missing_files (folder *f, gconstpointer data)
{
  g_autofree char *vocab = g_build_filename (f->dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (f->dir, "merges.txt", NULL);
  ts_error err = { 0 };
  (void) data;

  g_assert_null (ts_tokenizer_load (NULL, &err));
  g_assert_cmpint (err.code, ==, TS_ERR_INVALID_ARG);
  g_unlink (vocab);
  expect_load_error (f, TS_ERR_NOT_FOUND, "vocab.json");
  write_file (f->dir, "vocab.json", tiny_vocab, -1);
  g_unlink (merges);
  expect_load_error (f, TS_ERR_NOT_FOUND, "merges.txt");
}

static void
test_malformed_vocab (folder *f, gconstpointer data)
{
  (void) data;
  write_file (f->dir, "vocab.json", "{\"a\": 1, \"b\": ", -1);
  expect_load_error (f, TS_ERR_FORMAT, "vocab.json");
  write_file (f->dir, "vocab.json", "[1, 2]", -1);
  expect_load_error (f, TS_ERR_FORMAT, "not a JSON object");
  write_file (f->dir, "vocab.json", "{\"a\": \"one\"}", -1);
  expect_load_error (f, TS_ERR_FORMAT, "'a'");
  write_file (f->dir, "vocab.json", "{\"a\": -3}", -1);
  expect_load_error (f, TS_ERR_FORMAT, "'a'");
  write_file (f->dir, "vocab.json", "{\"a\": 1.5}", -1);
  expect_load_error (f, TS_ERR_FORMAT, "'a'");
  write_file (f->dir, "vocab.json", "{}", -1);
  expect_load_error (f, TS_ERR_FORMAT, "no tokens");
  write_file (f->dir, "vocab.json", "{\"\xff\": 1}", -1);
  expect_load_error (f, TS_ERR_FORMAT, "UTF-8");
}

static void
test_malformed_merges (folder *f, gconstpointer data)
{
  (void) data;
  write_file (f->dir, "merges.txt", "a b\n", -1);
  expect_load_error (f, TS_ERR_FORMAT, "#version");
  write_file (f->dir, "merges.txt", "#version: 0.2\na b\nab\n", -1);
  expect_load_error (f, TS_ERR_FORMAT, "line 3");
  write_file (f->dir, "merges.txt", "#version: 0.2\na b c\n", -1);
  expect_load_error (f, TS_ERR_FORMAT, "line 2");
  write_file (f->dir, "merges.txt", "#version: 0.2\na \xc3\n", -1);
  expect_load_error (f, TS_ERR_FORMAT, "UTF-8");
}

static void
test_malformed_config (folder *f, gconstpointer data)
{
  (void) data;
  write_file (f->dir, "tokenizer_config.json", "{\"pad_token\": 3}", -1);
  expect_load_error (f, TS_ERR_FORMAT, "pad_token");
  write_file (f->dir, "tokenizer_config.json", "{\"pad_token\": \"<pad>\"}", -1);
  expect_load_error (f, TS_ERR_FORMAT, "<pad>");
  write_file (f->dir, "tokenizer_config.json",
              "{\"added_tokens_decoder\": {\"x\": {\"content\": \"!\"}}}", -1);
  expect_load_error (f, TS_ERR_FORMAT, "'x'");
  write_file (f->dir, "tokenizer_config.json",
              "{\"added_tokens_decoder\": {\"0\": {\"content\": \"\"}}}", -1);
  expect_load_error (f, TS_ERR_FORMAT, "empty");
  write_file (f->dir, "tokenizer_config.json",
              "{\"added_tokens_decoder\": {\"0\": {\"content\": \"!\", \"single_word\": true}}}", -1);
  expect_load_error (f, TS_ERR_UNSUPPORTED, "single_word");
  write_file (f->dir, "tokenizer_config.json", "{\"added_tokens_decoder\": 1", -1);
  expect_load_error (f, TS_ERR_FORMAT, "tokenizer_config.json");
  write_file (f->dir, "special_tokens_map.json", "nope", -1);
  write_file (f->dir, "tokenizer_config.json", tiny_config, -1);
  expect_load_error (f, TS_ERR_FORMAT, "special_tokens_map.json");
}

/* Without tokenizer_config.json the special tokens come from special_tokens_map.json,
 * and without both from CLIPTokenizer's defaults (pad = <|endoftext|>). */
static void
test_special_token_sources (folder *f, gconstpointer data)
{
  g_autofree char *cfg = g_build_filename (f->dir, "tokenizer_config.json", NULL);
  int32_t ids[TS_TOKENIZER_MAX_LENGTH];
  ts_error err = { 0 };
  ts_tokenizer *tok;
  (void) data;

  g_unlink (cfg);
  tok = ts_tokenizer_load (f->dir, &err);
  g_assert_nonnull (tok);
  g_assert_cmpint (ts_tokenizer_encode_padded (tok, "a", ids, NULL, &err), ==, TS_OK);
  g_assert_cmpint (ids[1], ==, 3);
  g_assert_cmpint (ids[3], ==, 8);
  ts_tokenizer_free (tok);

  write_file (f->dir, "special_tokens_map.json", "{\"pad_token\": {\"content\": \"!\"}}", -1);
  tok = ts_tokenizer_load (f->dir, &err);
  g_assert_nonnull (tok);
  g_assert_cmpint (ts_tokenizer_encode_padded (tok, "a", ids, NULL, &err), ==, TS_OK);
  g_assert_cmpint (ids[3], ==, 0);
  ts_tokenizer_free (tok);
}

/* Each file one byte over its size limit is refused before it is read, with a message
 * naming the file and the limit; the real CLIP files are 16x below them. */
static void
test_size_limits (folder *f, gconstpointer data)
{
  static const struct {
    const char *name;
    size_t limit;
  } files[] = {
    { "vocab.json", (size_t) 16 << 20 },
    { "merges.txt", (size_t) 8 << 20 },
    { "tokenizer_config.json", (size_t) 1 << 20 },
    { "special_tokens_map.json", (size_t) 1 << 20 },
  };
  (void) data;

  for (size_t i = 0; i < G_N_ELEMENTS (files); i++) {
    g_autofree char *big = g_malloc (files[i].limit + 1);
    g_autofree char *want = g_strdup_printf ("is %zu bytes, over the limit of %zu bytes for %s",
                                             files[i].limit + 1, files[i].limit, files[i].name);
    g_autofree char *saved = NULL;
    g_autofree char *path = g_build_filename (f->dir, files[i].name, NULL);
    gsize saved_len = 0;
    gint64 t0;

    g_file_get_contents (path, &saved, &saved_len, NULL);
    memset (big, ' ', files[i].limit + 1);
    write_file (f->dir, files[i].name, big, (gssize) files[i].limit + 1);
    t0 = g_get_monotonic_time ();
    expect_load_error (f, TS_ERR_FORMAT, want);
    g_assert_cmpint (g_get_monotonic_time () - t0, <, G_USEC_PER_SEC);
    if (saved)
      write_file (f->dir, files[i].name, saved, (gssize) saved_len);
    else
      g_unlink (path);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  golden_dir = g_getenv ("TESSERA_GOLDEN_DIR");
  g_test_add_func ("/tokenizer/golden-cases", test_golden_cases);
  g_test_add_func ("/tokenizer/truncation", test_truncation);
  g_test_add_func ("/tokenizer/unicode-corners", test_unicode_corners);
  g_test_add ("/tokenizer/synthetic", folder, NULL, folder_setup, test_synthetic_ok, folder_teardown);
  g_test_add ("/tokenizer/invalid-utf8", folder, NULL, folder_setup, test_invalid_utf8, folder_teardown);
  g_test_add ("/tokenizer/missing-files", folder, NULL, folder_setup, test_missing_files,
              folder_teardown);
  g_test_add ("/tokenizer/malformed-vocab", folder, NULL, folder_setup, test_malformed_vocab,
              folder_teardown);
  g_test_add ("/tokenizer/malformed-merges", folder, NULL, folder_setup, test_malformed_merges,
              folder_teardown);
  g_test_add ("/tokenizer/malformed-config", folder, NULL, folder_setup, test_malformed_config,
              folder_teardown);
  g_test_add ("/tokenizer/size-limits", folder, NULL, folder_setup, test_size_limits,
              folder_teardown);
  g_test_add ("/tokenizer/special-token-sources", folder, NULL, folder_setup, test_special_token_sources,
              folder_teardown);
  return g_test_run ();
}
