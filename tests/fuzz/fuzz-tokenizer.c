/* SPDX-License-Identifier: MIT
 *
 * libFuzzer harness for ts-tokenizer: feeds arbitrary bytes to the encoder as prompt
 * text (up to the first NUL) and checks its invariants. The tokenizer is loaded once
 * from $TESSERA_FUZZ_TOKENIZER_DIR, else $TESSERA_GOLDEN_DIR/models/tiny-meissonic/
 * tokenizer, else ../shared/golden/models/tiny-meissonic/tokenizer (relative to the
 * working directory). Checked for every input:
 *   - text is accepted exactly when it is valid UTF-8 (checked here independently),
 *     and rejected with TS_ERR_INVALID_ARG and a message otherwise;
 *   - the ids are bos … eos, every id has a token, and encoding is deterministic;
 *   - a smaller cap yields a prefix with the same total;
 *   - the padded form is the untruncated ids cut to 77 with eos last, then pad ids.
 */
#include "tessera.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ts_tokenizer *tok;
static int32_t bos_id, eos_id, pad_id;

#define CHECK(cond)                                                                                     \
  do {                                                                                                  \
    if (!(cond)) {                                                                                      \
      fprintf (stderr, "fuzz-tokenizer: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);         \
      abort ();                                                                                         \
    }                                                                                                   \
  } while (0)

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF. */
static int
utf8_valid (const unsigned char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    unsigned char b = s[i];
    size_t len;
    unsigned long c;
    if (b < 0x80) {
      i++;
      continue;
    }
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
      c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      c = b & 0x0F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      c = b & 0x07;
    } else {
      return 0;
    }
    if (i + len > n)
      return 0;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      c = (c << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF))
        || (c >= 0xD800 && c <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const unsigned char *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *dir = getenv ("TESSERA_FUZZ_TOKENIZER_DIR"), *golden = getenv ("TESSERA_GOLDEN_DIR");
  char path[4096];
  int32_t ids[TS_TOKENIZER_MAX_LENGTH];
  size_t n = 0;
  ts_error err;

  (void) argc;
  (void) argv;
  if (!dir) {
    snprintf (path, sizeof path, "%s/models/tiny-meissonic/tokenizer",
              golden ? golden : "../shared/golden");
    dir = path;
  }
  tok = ts_tokenizer_load (dir, &err);
  if (!tok) {
    fprintf (stderr, "fuzz-tokenizer: %s\n(set TESSERA_FUZZ_TOKENIZER_DIR or TESSERA_GOLDEN_DIR)\n",
             err.message);
    exit (1);
  }
  /* The special ids come from the folder, not from constants. */
  CHECK (ts_tokenizer_encode (tok, "", ids, TS_TOKENIZER_MAX_LENGTH, &n, &err) == TS_OK && n == 2);
  bos_id = ids[0];
  eos_id = ids[1];
  CHECK (ts_tokenizer_encode_padded (tok, "", ids, NULL, &err) == TS_OK);
  pad_id = ids[2];
  return 0;
}

int
LLVMFuzzerTestOneInput (const unsigned char *data, size_t size)
{
  size_t len = strnlen ((const char *) data, size), n = 0, n_again = 0, n_small = 0, small_cap;
  char *text = malloc (len + 1);
  int32_t *ids = NULL, *again = NULL, small[8], padded[TS_TOKENIZER_MAX_LENGTH];
  bool truncated = false;
  ts_error err = { 0 };
  ts_status st;

  CHECK (text);
  memcpy (text, data, len);
  text[len] = '\0';

  st = ts_tokenizer_encode (tok, text, NULL, 0, &n, &err);
  if (!utf8_valid ((const unsigned char *) text, len)) {
    CHECK (st == TS_ERR_INVALID_ARG && err.code == TS_ERR_INVALID_ARG && err.message[0]);
    CHECK (ts_tokenizer_encode_padded (tok, text, padded, &truncated, NULL) == TS_ERR_INVALID_ARG);
    free (text);
    return 0;
  }
  CHECK (st == TS_OK && n >= 2);

  ids = malloc (n * sizeof *ids);
  again = malloc (n * sizeof *again);
  CHECK (ids && again);
  CHECK (ts_tokenizer_encode (tok, text, ids, n, &n_again, &err) == TS_OK && n_again == n);
  CHECK (ts_tokenizer_encode (tok, text, again, n, &n_again, &err) == TS_OK && n_again == n);
  CHECK (memcmp (ids, again, n * sizeof *ids) == 0);
  CHECK (ids[0] == bos_id && ids[n - 1] == eos_id);
  for (size_t i = 0; i < n; i++)
    CHECK (ids[i] >= 0 && (size_t) ids[i] < ts_tokenizer_n_vocab (tok)
           && ts_tokenizer_id_to_token (tok, ids[i]));

  small_cap = size % (sizeof small / sizeof small[0]);
  CHECK (ts_tokenizer_encode (tok, text, small, small_cap, &n_small, &err) == TS_OK && n_small == n);
  CHECK (memcmp (small, ids, (small_cap < n ? small_cap : n) * sizeof *ids) == 0);

  CHECK (ts_tokenizer_encode_padded (tok, text, padded, &truncated, &err) == TS_OK);
  CHECK (truncated == (n > TS_TOKENIZER_MAX_LENGTH));
  for (size_t i = 0; i < TS_TOKENIZER_MAX_LENGTH; i++) {
    int32_t want = i < n ? ids[i] : pad_id;
    if (truncated && i == TS_TOKENIZER_MAX_LENGTH - 1)
      want = eos_id;
    CHECK (padded[i] == want);
  }

  free (ids);
  free (again);
  free (text);
  return 0;
}
