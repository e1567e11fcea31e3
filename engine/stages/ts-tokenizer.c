/* SPDX-License-Identifier: MIT
 *
 * ts-tokenizer — CLIP's byte-level BPE tokenizer, the first stage of the pipeline: it
 * turns the prompt into the 77 token ids that the text encoder embeds. It mirrors
 * transformers' slow `CLIPTokenizer` (src/transformers/models/clip/tokenization_clip.py,
 * with `PreTrainedTokenizer.tokenize` and `Trie.split` from tokenization_utils.py,
 * transformers main @ f0e640a) as Meissonic runs it, without ftfy:
 *
 *   1. added tokens (`<|startoftext|>`, `<|endoftext|>` and Meissonic's pad token `!`)
 *      are split out of the raw text first, leftmost and longest first;
 *   2. each remaining piece goes through BERT's BasicTokenizer(strip_accents=False,
 *      do_split_on_punc=False): NUL, U+FFFD and category C* characters other than
 *      \t \n \r are dropped, whitespace becomes a space, CJK ideographs get spaces
 *      around them, the text is NFC-normalised, split on whitespace and each word is
 *      lower-cased as Python's str.lower() does;
 *   3. each word is split by CLIP's regex, every match is mapped byte by byte through
 *      GPT-2's bytes_to_unicode table, BPE-merged by merges.txt rank with "</w>" on its
 *      last symbol, and looked up (added tokens, then vocab.json, then the unk token).
 *
 * Unicode properties (categories, NFC, case mappings) come from utf8proc. Debian 12's
 * utf8proc implements Unicode 15.0 while the golden reference ran Python 3.11's Unicode
 * 14.0 tables, so characters first assigned in Unicode 15 are the one known source of
 * difference (Python drops them as unassigned, we keep them).
 */
#include "core/ts-common.h"
#include "core/ts-file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <utf8proc.h>

/* CLIPTokenizer keeps only the first `49152 - 256 - 2` lines after merges.txt's header. */
#define TS_TOKENIZER_MAX_MERGES (49152 - 256 - 2)
/* Upper bound on token ids, so a corrupt vocab.json cannot ask for a huge id table. */
#define TS_TOKENIZER_MAX_ID (1 << 24)
/* Size limits per file, checked before reading, so that a hostile file cannot cost a
 * parse of hundreds of MB (a 100 MB vocab.json took 1.1 GB of RSS in cJSON nodes). The
 * real CLIP files are vocab.json 1,059,962 bytes (49,408 tokens), merges.txt 524,619,
 * tokenizer_config.json 855 and special_tokens_map.json 460: the limits leave 16x. */
#define TS_TOKENIZER_MAX_VOCAB_SIZE ((size_t) 16 << 20)
#define TS_TOKENIZER_MAX_MERGES_SIZE ((size_t) 8 << 20)
#define TS_TOKENIZER_MAX_JSON_SIZE ((size_t) 1 << 20)

static size_t
file_size_limit (const char *name)
{
  if (strcmp (name, "vocab.json") == 0)
    return TS_TOKENIZER_MAX_VOCAB_SIZE;
  if (strcmp (name, "merges.txt") == 0)
    return TS_TOKENIZER_MAX_MERGES_SIZE;
  return TS_TOKENIZER_MAX_JSON_SIZE;
}

#define POOL_NONE UINT32_MAX

/* ---- string → int32 hash map over a shared string pool --------------------------- */

typedef struct {
  uint64_t hash;
  uint32_t off; /* key offset in the pool, POOL_NONE for an empty slot */
  uint32_t len;
  int32_t value;
} strmap_slot;

typedef struct {
  strmap_slot *slots;
  size_t cap; /* a power of two, or 0 */
  size_t count;
} strmap;

typedef struct {
  uint32_t off, len; /* content in the pool */
  int32_t id;
} added_token;

struct ts_tokenizer {
  char *pool; /* NUL-terminated strings, referenced by offset */
  size_t pool_len, pool_cap;
  strmap vocab;  /* token → id (vocab.json) */
  strmap merges; /* "first second" → rank (merges.txt) */
  strmap added;  /* added token content → id */
  added_token *added_list;
  size_t n_added, added_cap;
  bool added_first[256]; /* first bytes of added tokens, to skip most positions fast */
  uint32_t *decoder;     /* id → token offset in the pool, POOL_NONE for a hole */
  size_t n_decoder;
  int32_t bos_id, eos_id, pad_id, unk_id;
  char byte_chars[256][3]; /* bytes_to_unicode as UTF-8 */
  uint8_t byte_chars_len[256];
};

static uint64_t
hash_bytes (uint64_t h, const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    h ^= (uint8_t) s[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

/* The hash of a || " " || b when b is non-NULL, of a alone otherwise: merges are stored
 * as "first second" and looked up from the two symbols without building the key. */
static uint64_t
hash_key (const char *a, size_t alen, const char *b, size_t blen)
{
  uint64_t h = hash_bytes (0xcbf29ce484222325ull, a, alen);
  if (b) {
    h = hash_bytes (h, " ", 1);
    h = hash_bytes (h, b, blen);
  }
  return h;
}

static bool
slot_matches (const strmap_slot *s, const char *pool, uint64_t h, const char *a, size_t alen,
              const char *b, size_t blen)
{
  const char *key = pool + s->off;
  if (s->hash != h)
    return false;
  if (!b)
    return s->len == alen && memcmp (key, a, alen) == 0;
  return s->len == alen + 1 + blen && memcmp (key, a, alen) == 0 && key[alen] == ' '
         && memcmp (key + alen + 1, b, blen) == 0;
}

static const strmap_slot *
strmap_find (const strmap *m, const char *pool, const char *a, size_t alen, const char *b, size_t blen)
{
  uint64_t h;
  if (m->cap == 0)
    return NULL;
  h = hash_key (a, alen, b, blen);
  for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    const strmap_slot *s = &m->slots[i];
    if (s->off == POOL_NONE)
      return NULL;
    if (slot_matches (s, pool, h, a, alen, b, blen))
      return s;
  }
}

static bool
strmap_init (strmap *m, size_t n_expected)
{
  size_t cap = 16;
  while (cap < 2 * n_expected + 16)
    cap *= 2;
  m->slots = malloc (cap * sizeof *m->slots);
  if (!m->slots)
    return false;
  for (size_t i = 0; i < cap; i++)
    m->slots[i].off = POOL_NONE;
  m->cap = cap;
  m->count = 0;
  return true;
}

/* Inserts the pool string at off, or overwrites the value of an equal key (the last
 * entry wins, as with Python's dict). The table never exceeds half full. */
static bool
strmap_set (strmap *m, const char *pool, uint32_t off, uint32_t len, int32_t value)
{
  uint64_t h;
  size_t i;

  if (2 * (m->count + 1) > m->cap) {
    strmap grown;
    if (!strmap_init (&grown, m->count + 1))
      return false;
    for (size_t j = 0; j < m->cap; j++) {
      const strmap_slot *s = &m->slots[j];
      if (s->off == POOL_NONE)
        continue;
      for (i = s->hash & (grown.cap - 1); grown.slots[i].off != POOL_NONE; i = (i + 1) & (grown.cap - 1))
        ;
      grown.slots[i] = *s;
    }
    grown.count = m->count;
    free (m->slots);
    *m = grown;
  }
  h = hash_key (pool + off, len, NULL, 0);
  for (i = h & (m->cap - 1); m->slots[i].off != POOL_NONE; i = (i + 1) & (m->cap - 1)) {
    strmap_slot *s = &m->slots[i];
    if (s->hash == h && s->len == len && memcmp (pool + s->off, pool + off, len) == 0) {
      s->value = value;
      return true;
    }
  }
  m->slots[i] = (strmap_slot){ .hash = h, .off = off, .len = len, .value = value };
  m->count++;
  return true;
}

/* ---- small helpers ------------------------------------------------------------------ */

static bool
grow (void **p, size_t *cap, size_t need, size_t elem_size)
{
  size_t n = *cap ? *cap : 64, bytes;
  void *q;
  if (need <= *cap)
    return true;
  while (n < need) {
    if (!ts_mul_size (n, 2, &n))
      return false;
  }
  if (!ts_mul_size (n, elem_size, &bytes) || !(q = realloc (*p, bytes)))
    return false;
  *p = q;
  *cap = n;
  return true;
}

/* Reserves len bytes plus a terminating NUL in the pool; *off receives their offset. */
static ts_status
pool_reserve (ts_tokenizer *tok, size_t len, uint32_t *off, ts_error *err)
{
  size_t need;
  if (!ts_add_size (tok->pool_len, len, &need) || !ts_add_size (need, 1, &need) || need >= POOL_NONE)
    return ts_error_set (err, TS_ERR_FORMAT, "tokenizer: vocabulary too large");
  if (!grow ((void **) &tok->pool, &tok->pool_cap, need, 1))
    return ts_error_set (err, TS_ERR_NOMEM, "tokenizer: out of memory");
  tok->pool[need - 1] = '\0';
  *off = (uint32_t) tok->pool_len;
  tok->pool_len = need;
  return TS_OK;
}

static ts_status
pool_add (ts_tokenizer *tok, const char *s, size_t len, uint32_t *off, ts_error *err)
{
  ts_status st = pool_reserve (tok, len, off, err);
  if (st == TS_OK)
    memcpy (tok->pool + *off, s, len);
  return st;
}

/* Adds the merge key "a b". */
static ts_status
pool_add_pair (ts_tokenizer *tok, const char *a, size_t alen, const char *b, size_t blen, uint32_t *off,
               ts_error *err)
{
  ts_status st = pool_reserve (tok, alen + 1 + blen, off, err);
  if (st != TS_OK)
    return st;
  memcpy (tok->pool + *off, a, alen);
  tok->pool[*off + alen] = ' ';
  memcpy (tok->pool + *off + alen + 1, b, blen);
  return TS_OK;
}

/* Returns the offset of the first byte that is not valid UTF-8, or n when all are. */
static size_t
utf8_invalid_at (const char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    utf8proc_int32_t c;
    utf8proc_ssize_t l =
        utf8proc_iterate ((const utf8proc_uint8_t *) s + i, (utf8proc_ssize_t) (n - i), &c);
    if (l <= 0)
      return i;
    i += (size_t) l;
  }
  return n;
}

/* Decodes one code point of already validated UTF-8. */
static size_t
utf8_next (const char *s, size_t n, int32_t *c)
{
  utf8proc_ssize_t l = utf8proc_iterate ((const utf8proc_uint8_t *) s, (utf8proc_ssize_t) n, c);
  TS_ASSERT (l > 0);
  return (size_t) l;
}

static ts_status
read_file (const char *dir, const char *name, bool required, char **out, size_t *out_len,
           char **out_path, ts_error *err)
{
  ts_status st = TS_OK;
  size_t path_len = strlen (dir) + strlen (name) + 2;
  char *path = malloc (path_len), *buf = NULL;
  FILE *f = NULL;
  uint64_t size = 0;

  *out = NULL;
  *out_len = 0;
  *out_path = path;
  if (!path)
    return ts_error_set (err, TS_ERR_NOMEM, "tokenizer: out of memory");
  snprintf (path, path_len, "%s/%s", dir, name);
  /* Only a plain absence makes an optional file optional: a directory, a FIFO, a dangling
   * link or an unreadable file in its place is an error naming it (ts-file). */
  if (!required && ts_file_absent (path))
    return TS_OK;
  st = ts_file_fopen_regular (path, "tokenizer", &f, &size, err);
  if (st != TS_OK)
    goto fail;
  if (size > file_size_limit (name)) {
    st = ts_error_set (err, TS_ERR_FORMAT, "tokenizer: '%s' is %" PRIu64 " bytes, over the limit "
                       "of %zu bytes for %s", path, size, file_size_limit (name), name);
    goto fail;
  }
  buf = malloc ((size_t) size + 1);
  if (!buf) {
    st = ts_error_set (err, TS_ERR_NOMEM, "tokenizer: out of memory reading '%s'", path);
    goto fail;
  }
  if (fread (buf, 1, (size_t) size, f) != (size_t) size) {
    st = ts_error_set (err, TS_ERR_IO, "tokenizer: cannot read '%s': %s", path,
                       ferror (f) ? strerror (errno) : "file shrank while reading");
    goto fail;
  }
  buf[size] = '\0';
  fclose (f);
  *out = buf;
  *out_len = (size_t) size;
  return TS_OK;

fail:
  if (f)
    fclose (f);
  free (buf);
  return st;
}

static ts_status
check_utf8_file (const char *path, const char *buf, size_t len, ts_error *err)
{
  size_t bad = utf8_invalid_at (buf, len);
  if (bad < len)
    return ts_error_set (err, TS_ERR_FORMAT, "tokenizer: '%s' is not valid UTF-8 (byte %zu)", path, bad);
  return TS_OK;
}

static cJSON *
parse_json (const char *path, const char *buf, size_t len, ts_error *err)
{
  const char *at = NULL;
  cJSON *root;
  if (check_utf8_file (path, buf, len, err) != TS_OK)
    return NULL;
  root = cJSON_ParseWithLengthOpts (buf, len, &at, false);
  if (!root) {
    ts_error_set (err, TS_ERR_FORMAT, "tokenizer: '%s' is not valid JSON (near byte %td)", path,
                  at && at >= buf && at <= buf + len ? at - buf : (ptrdiff_t) -1);
    return NULL;
  }
  if (!cJSON_IsObject (root)) {
    ts_error_set (err, TS_ERR_FORMAT, "tokenizer: '%s' is not a JSON object", path);
    cJSON_Delete (root);
    return NULL;
  }
  return root;
}

/* ---- loading ------------------------------------------------------------------------ */

static ts_status
load_vocab (ts_tokenizer *tok, const char *dir, ts_error *err)
{
  ts_status st;
  char *buf = NULL, *path = NULL;
  size_t len;
  cJSON *root = NULL, *item;

  if ((st = read_file (dir, "vocab.json", true, &buf, &len, &path, err)) != TS_OK)
    goto fail;
  if (!(root = parse_json (path, buf, len, err))) {
    st = err ? err->code : TS_ERR_FORMAT;
    goto fail;
  }
  if (!strmap_init (&tok->vocab, (size_t) cJSON_GetArraySize (root))) {
    st = ts_error_set (err, TS_ERR_NOMEM, "tokenizer: out of memory");
    goto fail;
  }
  cJSON_ArrayForEach (item, root) {
    double v = item->valuedouble;
    uint32_t off;
    if (!cJSON_IsNumber (item) || !(v >= 0 && v < TS_TOKENIZER_MAX_ID) || v != (double) (int32_t) v) {
      st = ts_error_set (
          err, TS_ERR_FORMAT,
          "tokenizer: '%s': token '%.64s' has no valid id (an integer in [0, %d) is required)", path,
          item->string, TS_TOKENIZER_MAX_ID);
      goto fail;
    }
    if ((st = pool_add (tok, item->string, strlen (item->string), &off, err)) != TS_OK)
      goto fail;
    if (!strmap_set (&tok->vocab, tok->pool, off, (uint32_t) strlen (item->string), (int32_t) v)) {
      st = ts_error_set (err, TS_ERR_NOMEM, "tokenizer: out of memory");
      goto fail;
    }
  }
  if (tok->vocab.count == 0) {
    st = ts_error_set (err, TS_ERR_FORMAT, "tokenizer: '%s' has no tokens", path);
    goto fail;
  }

fail:
  cJSON_Delete (root);
  free (buf);
  free (path);
  return st;
}

static bool
is_space_ascii (char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* merges.txt: a "#version" line, then one "first second" pair per line, ranked by line.
 * CLIPTokenizer reads `read().strip().split("\n")[1 : 49152 - 256 - 2 + 1]`. */
static ts_status
load_merges (ts_tokenizer *tok, const char *dir, ts_error *err)
{
  ts_status st;
  char *buf = NULL, *path = NULL, *p, *end;
  size_t len, line_no = 1;
  int32_t rank = 0;

  if ((st = read_file (dir, "merges.txt", true, &buf, &len, &path, err)) != TS_OK)
    goto fail;
  if ((st = check_utf8_file (path, buf, len, err)) != TS_OK)
    goto fail;
  p = buf;
  end = buf + len;
  while (p < end && is_space_ascii (*p))
    p++;
  while (end > p && is_space_ascii (end[-1]))
    end--;
  if ((size_t) (end - p) < 8 || memcmp (p, "#version", 8) != 0) {
    st =
        ts_error_set (err, TS_ERR_FORMAT, "tokenizer: '%s' does not start with a '#version' line", path);
    goto fail;
  }
  if (!strmap_init (&tok->merges, TS_TOKENIZER_MAX_MERGES)) {
    st = ts_error_set (err, TS_ERR_NOMEM, "tokenizer: out of memory");
    goto fail;
  }
  p = memchr (p, '\n', (size_t) (end - p));
  while (p && p < end && rank < TS_TOKENIZER_MAX_MERGES) {
    char *line = p + 1, *eol = memchr (line, '\n', (size_t) (end - line)), *q;
    const char *field[3];
    size_t field_len[3], n_fields = 0;
    uint32_t off;

    if (!eol)
      eol = end;
    line_no++;
    for (q = line; q < eol;) {
      char *s;
      while (q < eol && is_space_ascii (*q))
        q++;
      if (q == eol)
        break;
      for (s = q; q < eol && !is_space_ascii (*q); q++)
        ;
      if (n_fields < 3) {
        field[n_fields] = s;
        field_len[n_fields] = (size_t) (q - s);
      }
      n_fields++;
    }
    if (n_fields != 2) {
      st = ts_error_set (err, TS_ERR_FORMAT, "tokenizer: '%s' line %zu: expected two symbols, found %zu",
                         path, line_no, n_fields);
      goto fail;
    }
    if ((st = pool_add_pair (tok, field[0], field_len[0], field[1], field_len[1], &off, err)) != TS_OK)
      goto fail;
    if (!strmap_set (&tok->merges, tok->pool, off, (uint32_t) (field_len[0] + 1 + field_len[1]),
                     rank++)) {
      st = ts_error_set (err, TS_ERR_NOMEM, "tokenizer: out of memory");
      goto fail;
    }
    p = eol;
  }

fail:
  free (buf);
  free (path);
  return st;
}

/* A token value in tokenizer_config.json / special_tokens_map.json: a string, an
 * AddedToken object with "content", or null (absent). */
static ts_status
token_content (const cJSON *root, const char *key, const char *path, const char **out, ts_error *err)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive (root, key), *c;
  if (!v || cJSON_IsNull (v))
    return TS_OK;
  if (cJSON_IsString (v)) {
    *out = v->valuestring;
    return TS_OK;
  }
  c = cJSON_GetObjectItemCaseSensitive (v, "content");
  if (cJSON_IsObject (v) && cJSON_IsString (c)) {
    *out = c->valuestring;
    return TS_OK;
  }
  return ts_error_set (err, TS_ERR_FORMAT,
                       "tokenizer: '%s': \"%s\" must be a string or an object with a \"content\" string",
                       path, key);
}

static ts_status
add_token (ts_tokenizer *tok, const char *content, int32_t id, ts_error *err)
{
  ts_status st;
  size_t len = strlen (content);
  added_token *t;
  uint32_t off;

  if (len == 0)
    return ts_error_set (err, TS_ERR_FORMAT, "tokenizer: added token %d has empty content", (int) id);
  if (!grow ((void **) &tok->added_list, &tok->added_cap, tok->n_added + 1, sizeof *t))
    return ts_error_set (err, TS_ERR_NOMEM, "tokenizer: out of memory");
  if ((st = pool_add (tok, content, len, &off, err)) != TS_OK)
    return st;
  if (!strmap_set (&tok->added, tok->pool, off, (uint32_t) len, id))
    return ts_error_set (err, TS_ERR_NOMEM, "tokenizer: out of memory");
  t = &tok->added_list[tok->n_added++];
  *t = (added_token){ .off = off, .len = (uint32_t) len, .id = id };
  tok->added_first[(uint8_t) content[0]] = true;
  return TS_OK;
}

/* added_tokens_decoder: {"<id>": {"content": ..., "lstrip": ..., ...}}. lstrip/rstrip
 * only strip whitespace next to the token, which the BasicTokenizer discards anyway, so
 * they cannot change ids; single_word would, and is refused rather than mis-handled. */
static ts_status
load_added_tokens (ts_tokenizer *tok, const cJSON *decoder, const char *path, ts_error *err)
{
  const cJSON *item;
  if (!cJSON_IsObject (decoder))
    return ts_error_set (err, TS_ERR_FORMAT,
                         "tokenizer: '%s': \"added_tokens_decoder\" is not an object", path);
  cJSON_ArrayForEach (item, decoder) {
    const cJSON *content = cJSON_GetObjectItemCaseSensitive (item, "content");
    const cJSON *single_word = cJSON_GetObjectItemCaseSensitive (item, "single_word");
    char *endp;
    long id;
    ts_status st;

    errno = 0;
    id = strtol (item->string, &endp, 10);
    if (errno || endp == item->string || *endp || id < 0 || id >= TS_TOKENIZER_MAX_ID)
      return ts_error_set (err, TS_ERR_FORMAT,
                           "tokenizer: '%s': added token key '%.64s' is not a valid id", path,
                           item->string);
    if (!cJSON_IsObject (item) || !cJSON_IsString (content))
      return ts_error_set (err, TS_ERR_FORMAT,
                           "tokenizer: '%s': added token %ld has no \"content\" string", path, id);
    if (cJSON_IsTrue (single_word))
      return ts_error_set (
          err, TS_ERR_UNSUPPORTED,
          "tokenizer: '%s': added token '%.64s' sets single_word, which is not supported", path,
          content->valuestring);
    if ((st = add_token (tok, content->valuestring, (int32_t) id, err)) != TS_OK)
      return st;
  }
  return TS_OK;
}

/* Resolves a special token (bos/eos/unk/pad) to its id. transformers adds every special
 * token to the added tokens, taking its id from vocab.json when it is not one already. */
static ts_status
resolve_special (ts_tokenizer *tok, const char *name, const char *content, int32_t *id, ts_error *err)
{
  const strmap_slot *s = strmap_find (&tok->added, tok->pool, content, strlen (content), NULL, 0);
  if (s) {
    *id = s->value;
    return TS_OK;
  }
  s = strmap_find (&tok->vocab, tok->pool, content, strlen (content), NULL, 0);
  if (!s)
    return ts_error_set (err, TS_ERR_FORMAT,
                         "tokenizer: %s '%.64s' is neither an added token nor in vocab.json", name,
                         content);
  *id = s->value;
  return add_token (tok, content, *id, err);
}

static ts_status
load_special_tokens (ts_tokenizer *tok, const char *dir, ts_error *err)
{
  /* CLIPTokenizer's defaults, used when neither file names a token. */
  static const struct {
    const char *key, *fallback;
  } specials[] = {
    { "bos_token", "<|startoftext|>" },
    { "eos_token", "<|endoftext|>" },
    { "unk_token", "<|endoftext|>" },
    { "pad_token", "<|endoftext|>" },
  };
  int32_t *ids[] = { &tok->bos_id, &tok->eos_id, &tok->unk_id, &tok->pad_id };
  ts_status st;
  char *cfg_buf = NULL, *cfg_path = NULL, *map_buf = NULL, *map_path = NULL;
  size_t cfg_len, map_len;
  cJSON *cfg = NULL, *map = NULL;
  const cJSON *decoder;

  if (!strmap_init (&tok->added, 8)) {
    st = ts_error_set (err, TS_ERR_NOMEM, "tokenizer: out of memory");
    goto fail;
  }
  if ((st = read_file (dir, "tokenizer_config.json", false, &cfg_buf, &cfg_len, &cfg_path, err))
      != TS_OK)
    goto fail;
  if ((st = read_file (dir, "special_tokens_map.json", false, &map_buf, &map_len, &map_path, err))
      != TS_OK)
    goto fail;
  if (!cfg_buf)
    TS_LOG_I ("tokenizer: no tokenizer_config.json in '%s', %s", dir,
              map_buf ? "special tokens from special_tokens_map.json" : "CLIP's default special tokens");
  if (cfg_buf && !(cfg = parse_json (cfg_path, cfg_buf, cfg_len, err))) {
    st = err ? err->code : TS_ERR_FORMAT;
    goto fail;
  }
  if (map_buf && !(map = parse_json (map_path, map_buf, map_len, err))) {
    st = err ? err->code : TS_ERR_FORMAT;
    goto fail;
  }
  if (cfg && (decoder = cJSON_GetObjectItemCaseSensitive (cfg, "added_tokens_decoder"))
      && (st = load_added_tokens (tok, decoder, cfg_path, err)) != TS_OK)
    goto fail;

  /* tokenizer_config.json's value wins (transformers ≥ 4.34 maps it through
   * added_tokens_decoder); special_tokens_map.json fills in what it lacks. */
  for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
    const char *content = NULL;
    if (cfg && (st = token_content (cfg, specials[i].key, cfg_path, &content, err)) != TS_OK)
      goto fail;
    if (!content && map && (st = token_content (map, specials[i].key, map_path, &content, err)) != TS_OK)
      goto fail;
    if (!content)
      content = specials[i].fallback;
    if ((st = resolve_special (tok, specials[i].key, content, ids[i], err)) != TS_OK)
      goto fail;
  }

fail:
  cJSON_Delete (cfg);
  cJSON_Delete (map);
  free (cfg_buf);
  free (cfg_path);
  free (map_buf);
  free (map_path);
  return st;
}

/* id → token, for ts_tokenizer_id_to_token: vocab.json inverted (the last token of an
 * id wins, as with Python's dict), then the added tokens on top. */
static ts_status
build_decoder (ts_tokenizer *tok, ts_error *err)
{
  size_t n = 0;
  for (size_t i = 0; i < tok->vocab.cap; i++)
    if (tok->vocab.slots[i].off != POOL_NONE && (size_t) tok->vocab.slots[i].value + 1 > n)
      n = (size_t) tok->vocab.slots[i].value + 1;
  for (size_t i = 0; i < tok->n_added; i++)
    if ((size_t) tok->added_list[i].id + 1 > n)
      n = (size_t) tok->added_list[i].id + 1;
  tok->decoder = malloc (n * sizeof *tok->decoder);
  if (!tok->decoder)
    return ts_error_set (err, TS_ERR_NOMEM, "tokenizer: out of memory");
  tok->n_decoder = n;
  for (size_t i = 0; i < n; i++)
    tok->decoder[i] = POOL_NONE;
  /* Slots are not in file order, so for duplicate ids prefer the later pool offset,
   * which is the later vocab.json entry. */
  for (size_t i = 0; i < tok->vocab.cap; i++) {
    const strmap_slot *s = &tok->vocab.slots[i];
    uint32_t *d;
    if (s->off == POOL_NONE)
      continue;
    d = &tok->decoder[s->value];
    if (*d == POOL_NONE || *d < s->off)
      *d = s->off;
  }
  for (size_t i = 0; i < tok->n_added; i++)
    tok->decoder[tok->added_list[i].id] = tok->added_list[i].off;
  return TS_OK;
}

/* GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100.. in byte order, so that no BPE symbol is whitespace or a control. */
static void
build_byte_chars (ts_tokenizer *tok)
{
  int next = 256;
  for (int b = 0; b < 256; b++) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    int32_t c = printable ? b : next++;
    tok->byte_chars_len[b] = (uint8_t) utf8proc_encode_char (c, (utf8proc_uint8_t *) tok->byte_chars[b]);
  }
}

ts_tokenizer *
ts_tokenizer_load (const char *dir, ts_error *err)
{
  ts_tokenizer *tok;

  if (!dir) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "tokenizer: no folder given");
    return NULL;
  }
  tok = calloc (1, sizeof *tok);
  if (!tok) {
    ts_error_set (err, TS_ERR_NOMEM, "tokenizer: out of memory");
    return NULL;
  }
  if (load_vocab (tok, dir, err) != TS_OK || load_merges (tok, dir, err) != TS_OK
      || load_special_tokens (tok, dir, err) != TS_OK || build_decoder (tok, err) != TS_OK)
    goto fail;
  build_byte_chars (tok);
  TS_LOG_D ("tokenizer: loaded '%s': %zu tokens, %zu merges, %zu added tokens", dir, tok->vocab.count,
            tok->merges.count, tok->n_added);
  return tok;

fail:
  ts_tokenizer_free (tok);
  return NULL;
}

void
ts_tokenizer_free (ts_tokenizer *tok)
{
  if (!tok)
    return;
  free (tok->vocab.slots);
  free (tok->merges.slots);
  free (tok->added.slots);
  free (tok->added_list);
  free (tok->decoder);
  free (tok->pool);
  free (tok);
}

const char *
ts_tokenizer_id_to_token (const ts_tokenizer *tok, int32_t id)
{
  if (!tok || id < 0 || (size_t) id >= tok->n_decoder || tok->decoder[id] == POOL_NONE)
    return NULL;
  return tok->pool + tok->decoder[id];
}

size_t
ts_tokenizer_n_vocab (const ts_tokenizer *tok)
{
  return tok ? tok->n_decoder : 0;
}

/* ---- Unicode predicates ------------------------------------------------------------- */

static bool
is_letter (utf8proc_category_t cat)
{
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}

static bool
is_number (utf8proc_category_t cat)
{
  return cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO;
}

/* Python's str.isspace(): bidirectional class WS/B/S or category Zs. */
static bool
is_py_space (int32_t c)
{
  utf8proc_category_t cat = utf8proc_category (c);
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || cat == UTF8PROC_CATEGORY_ZS
         || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

/* The regex module's \s: the White_Space property. */
static bool
is_regex_space (int32_t c)
{
  utf8proc_category_t cat = utf8proc_category (c);
  return (c >= 0x09 && c <= 0x0D) || c == 0x85 || cat == UTF8PROC_CATEGORY_ZS
         || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

/* BERT's _is_chinese_char: the CJK Unified Ideographs blocks and their extensions and
 * compatibility forms, as listed in BasicTokenizer (not kana, not Hangul). */
static bool
is_cjk (int32_t c)
{
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF)
         || (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F)
         || (c >= 0x2B820 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF)
         || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Unicode's Case_Ignorable: categories Mn Me Cf Lm Sk, plus the Word_Break classes
 * MidLetter, MidNumLet and Single_Quote (DerivedCoreProperties.txt), which utf8proc does
 * not expose; those 16 code points are listed here. */
static bool
is_case_ignorable (int32_t c)
{
  static const int32_t word_break_mid[] = {
    0x0027, 0x002E, 0x003A, 0x00B7, 0x0387, 0x055F, 0x05F4, 0x2018, 0x2019,
    0x2024, 0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A,
  };
  utf8proc_category_t cat = utf8proc_category (c);
  if (cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME || cat == UTF8PROC_CATEGORY_CF
      || cat == UTF8PROC_CATEGORY_LM || cat == UTF8PROC_CATEGORY_SK)
    return true;
  for (size_t i = 0; i < sizeof word_break_mid / sizeof word_break_mid[0]; i++)
    if (c == word_break_mid[i])
      return true;
  return false;
}

/* Unicode's Cased: Lu Ll Lt plus Other_Lowercase/Other_Uppercase. utf8proc has no such
 * property; a case mapping covers those that have one, and the rest that are not also
 * case-ignorable (and so never consulted) are ª º and the squared/circled Latin capitals. */
static bool
is_cased (int32_t c)
{
  utf8proc_category_t cat = utf8proc_category (c);
  if (cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT)
    return true;
  if (utf8proc_tolower (c) != c || utf8proc_toupper (c) != c)
    return true;
  return c == 0xAA || c == 0xBA || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169)
         || (c >= 0x1F170 && c <= 0x1F189);
}

/* CPython's handle_capital_sigma (Objects/unicodeobject.c): U+03A3 lowers to final ς
 * when a cased letter precedes it and none follows, skipping case-ignorables. */
static bool
is_final_sigma (const int32_t *w, size_t n, size_t i)
{
  size_t j = i;
  while (j > 0 && is_case_ignorable (w[j - 1]))
    j--;
  if (j == 0 || !is_cased (w[j - 1]))
    return false;
  for (j = i + 1; j < n && is_case_ignorable (w[j]); j++)
    ;
  return j == n || !is_cased (w[j]);
}

/* Case-insensitive equality with a lowercase ASCII letter or symbol, as the regex
 * module's IGNORECASE compares literals (simple case folding: 'ſ' matches 's'). */
static bool
ci_equal (int32_t c, char lit)
{
  return c == lit || utf8proc_tolower (c) == lit || utf8proc_tolower (utf8proc_toupper (c)) == lit;
}

enum char_class { CLASS_NONE, CLASS_LETTER, CLASS_NUMBER, CLASS_OTHER };

/* Which of CLIP's character classes matches c: [\p{L}], [\p{N}] or [^\s\p{L}\p{N}].
 * Under IGNORECASE the regex module tests a negated class against every case of the
 * character, so a non-letter whose other case is a letter (U+0345 ↔ Ι) matches none
 * and is skipped, like whitespace. */
static enum char_class
classify (int32_t c)
{
  utf8proc_category_t cat = utf8proc_category (c);
  int32_t variants[3];
  if (is_letter (cat))
    return CLASS_LETTER;
  if (is_number (cat))
    return CLASS_NUMBER;
  if (is_regex_space (c))
    return CLASS_NONE;
  variants[0] = utf8proc_tolower (c);
  variants[1] = utf8proc_toupper (c);
  variants[2] = utf8proc_totitle (c);
  for (int i = 0; i < 3; i++) {
    utf8proc_category_t vc = utf8proc_category (variants[i]);
    if (variants[i] != c && (is_letter (vc) || is_number (vc)))
      return CLASS_NONE;
  }
  return CLASS_OTHER;
}

/* ---- encoding ----------------------------------------------------------------------- */

typedef struct {
  uint32_t start, end; /* span of the symbol in the mapped word */
  int32_t prev, next;
  bool alive;
} bpe_sym;

typedef struct {
  int32_t rank;
  uint32_t pos; /* start of the left symbol: ties go left to right */
  int32_t left, right;
  uint32_t right_end; /* detects a right symbol that grew since the pair was queued */
} bpe_pair;

/* Per-call scratch: encode never writes to the tokenizer, so it is safe to share. */
typedef struct {
  const ts_tokenizer *tok;
  int32_t *ids;
  size_t n_ids, cap_ids;
  char *clean; /* a piece after cleaning and CJK spacing */
  size_t clean_len, clean_cap;
  int32_t *word; /* one whitespace-separated word, as code points */
  size_t word_len, word_cap;
  char *lower; /* the word lower-cased, UTF-8 */
  size_t lower_len, lower_cap;
  char *mapped; /* a regex match, byte-mapped, with "</w>" */
  size_t mapped_cap;
  bpe_sym *syms;
  size_t syms_cap;
  bpe_pair *heap, *batch;
  size_t heap_cap, batch_cap;
} encoder;

static void
encoder_clear (encoder *e)
{
  free (e->ids);
  free (e->clean);
  free (e->word);
  free (e->lower);
  free (e->mapped);
  free (e->syms);
  free (e->heap);
  free (e->batch);
}

static ts_status
nomem (ts_error *err)
{
  return ts_error_set (err, TS_ERR_NOMEM, "tokenizer: out of memory");
}

static ts_status
push_id (encoder *e, int32_t id, ts_error *err)
{
  if (!grow ((void **) &e->ids, &e->cap_ids, e->n_ids + 1, sizeof *e->ids))
    return nomem (err);
  e->ids[e->n_ids++] = id;
  return TS_OK;
}

/* Appends code point c as UTF-8 to a growable byte buffer. */
static bool
put_char (char **buf, size_t *len, size_t *cap, int32_t c)
{
  if (!grow ((void **) buf, cap, *len + 4, 1))
    return false;
  *len += (size_t) utf8proc_encode_char (c, (utf8proc_uint8_t *) *buf + *len);
  return true;
}

/* _convert_token_to_id_with_added_voc: added tokens, then the vocabulary, then unk. */
static int32_t
token_id (const ts_tokenizer *tok, const char *s, size_t n)
{
  const strmap_slot *slot = strmap_find (&tok->added, tok->pool, s, n, NULL, 0);
  if (!slot)
    slot = strmap_find (&tok->vocab, tok->pool, s, n, NULL, 0);
  return slot ? slot->value : tok->unk_id;
}

static bool
pair_less (const bpe_pair *a, const bpe_pair *b)
{
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void
heap_push (bpe_pair *h, size_t *n, bpe_pair p)
{
  size_t i = (*n)++;
  while (i > 0 && pair_less (&p, &h[(i - 1) / 2])) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = p;
}

static bpe_pair
heap_pop (bpe_pair *h, size_t *n)
{
  bpe_pair top = h[0], last = h[--(*n)];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n)
      break;
    if (c + 1 < *n && pair_less (&h[c + 1], &h[c]))
      c++;
    if (!pair_less (&h[c], &last))
      break;
    h[i] = h[c];
    i = c;
  }
  if (*n > 0)
    h[i] = last;
  return top;
}

/* Queues the pair (left, right) when merges.txt ranks it. */
static void
queue_pair (encoder *e, size_t *n_heap, int32_t left, int32_t right)
{
  const bpe_sym *l, *r;
  const strmap_slot *s;
  if (left < 0 || right < 0)
    return;
  l = &e->syms[left];
  r = &e->syms[right];
  s = strmap_find (&e->tok->merges, e->tok->pool, e->mapped + l->start, l->end - l->start,
                   e->mapped + r->start, r->end - r->start);
  if (s)
    heap_push (
        e->heap, n_heap,
        (bpe_pair){
            .rank = s->value, .pos = l->start, .left = left, .right = right, .right_end = r->end });
}

/* CLIPTokenizer.bpe() on one regex match, emitting the ids of the resulting symbols.
 * The reference repeatedly takes the lowest-ranked adjacent pair and merges all its
 * occurrences left to right; here a heap yields each rank's occurrences in order, which
 * is the same result in O(n log n). Pairs a merge creates always differ from the pair
 * being merged (they are longer), so they can only join a later round. */
static ts_status
bpe_encode (encoder *e, const char *s, size_t n, ts_error *err)
{
  const ts_tokenizer *tok = e->tok;
  size_t len = 0, n_syms = n, n_heap = 0, cap;

  /* CLIPTokenizer's cache is seeded with the two literal special tokens, which the
   * regex matches whole and which then map to themselves without "</w>". */
  if ((n == 15 && memcmp (s, "<|startoftext|>", 15) == 0)
      || (n == 13 && memcmp (s, "<|endoftext|>", 13) == 0))
    return push_id (e, token_id (tok, s, n), err);

  /* Symbols are indexed with int32_t and spans with uint32_t. */
  if (n > INT32_MAX / 4)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "tokenizer: a single word of %zu bytes is too long",
                         n);
  if (!ts_mul_size (n, 2, &cap) || !ts_add_size (cap, 4, &cap)
      || !grow ((void **) &e->mapped, &e->mapped_cap, cap, 1)
      || !grow ((void **) &e->syms, &e->syms_cap, n_syms, sizeof *e->syms)
      || !ts_mul_size (n_syms, 3, &cap) || !grow ((void **) &e->heap, &e->heap_cap, cap, sizeof *e->heap)
      || !grow ((void **) &e->batch, &e->batch_cap, cap, sizeof *e->batch))
    return nomem (err);
  for (size_t i = 0; i < n; i++) {
    uint8_t b = (uint8_t) s[i];
    e->syms[i] = (bpe_sym){ .start = (uint32_t) len,
                            .prev = (int32_t) i - 1,
                            .next = i + 1 < n ? (int32_t) i + 1 : -1,
                            .alive = true };
    memcpy (e->mapped + len, tok->byte_chars[b], tok->byte_chars_len[b]);
    len += tok->byte_chars_len[b];
    e->syms[i].end = (uint32_t) len;
  }
  memcpy (e->mapped + len, "</w>", 4);
  len += 4;
  e->syms[n - 1].end = (uint32_t) len;

  for (size_t i = 0; i + 1 < n; i++)
    queue_pair (e, &n_heap, (int32_t) i, (int32_t) i + 1);
  while (n_heap > 0) {
    int32_t rank = e->heap[0].rank;
    size_t n_batch = 0;
    while (n_heap > 0 && e->heap[0].rank == rank)
      e->batch[n_batch++] = heap_pop (e->heap, &n_heap);
    for (size_t k = 0; k < n_batch; k++) {
      const bpe_pair *p = &e->batch[k];
      bpe_sym *l = &e->syms[p->left], *r = &e->syms[p->right];
      if (!l->alive || !r->alive || l->next != p->right || r->end != p->right_end)
        continue;
      l->end = r->end;
      l->next = r->next;
      if (r->next >= 0)
        e->syms[r->next].prev = p->left;
      r->alive = false;
      queue_pair (e, &n_heap, l->prev, p->left);
      queue_pair (e, &n_heap, p->left, l->next);
    }
  }
  for (int32_t i = 0; i >= 0; i = e->syms[i].next) {
    ts_status st = push_id (
        e, token_id (tok, e->mapped + e->syms[i].start, e->syms[i].end - e->syms[i].start), err);
    if (st != TS_OK)
      return st;
  }
  return TS_OK;
}

/* Matches the lowercase ASCII literal at s case-insensitively; returns its length in
 * bytes of s, or 0. */
static size_t
match_literal (const char *s, size_t n, const char *lit)
{
  size_t p = 0;
  for (; *lit; lit++) {
    int32_t c;
    if (p >= n)
      return 0;
    p += utf8_next (s + p, n - p, &c);
    if (!ci_equal (c, *lit))
      return 0;
  }
  return p;
}

/* CLIP's pattern, applied with regex.findall to one lower-cased word:
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * with IGNORECASE. Alternatives are tried in order at each position; a position where
 * none matches is skipped. */
static ts_status
split_word (encoder *e, const char *s, size_t n, ts_error *err)
{
  static const char *const contractions[] = { "'s", "'t", "'re", "'ve", "'m", "'ll", "'d" };
  size_t p = 0;
  while (p < n) {
    int32_t c;
    size_t cl = utf8_next (s + p, n - p, &c), m = 0;
    ts_status st;

    if (c == '<') {
      m = match_literal (s + p, n - p, "<|startoftext|>");
      if (!m)
        m = match_literal (s + p, n - p, "<|endoftext|>");
    }
    for (size_t i = 0; c == '\'' && !m && i < sizeof contractions / sizeof contractions[0]; i++)
      m = match_literal (s + p, n - p, contractions[i]);
    if (!m) {
      enum char_class cls = classify (c);
      if (cls == CLASS_NONE) {
        p += cl;
        continue;
      }
      m = cl;
      while (cls != CLASS_NUMBER && p + m < n) {
        int32_t d;
        size_t dl = utf8_next (s + p + m, n - p - m, &d);
        if (classify (d) != cls)
          break;
        m += dl;
      }
    }
    if ((st = bpe_encode (e, s + p, m, err)) != TS_OK)
      return st;
    p += m;
  }
  return TS_OK;
}

/* Python's str.lower() on one word: full lowercase mappings (only U+0130 maps to more
 * than one code point) and the Final_Sigma context. */
static ts_status
lower_word (encoder *e, ts_error *err)
{
  e->lower_len = 0;
  for (size_t i = 0; i < e->word_len; i++) {
    int32_t c = e->word[i];
    bool ok;
    if (c == 0x130)
      ok = put_char (&e->lower, &e->lower_len, &e->lower_cap, 'i')
           && put_char (&e->lower, &e->lower_len, &e->lower_cap, 0x307);
    else if (c == 0x3A3)
      ok = put_char (&e->lower, &e->lower_len, &e->lower_cap,
                     is_final_sigma (e->word, e->word_len, i) ? 0x3C2 : 0x3C3);
    else
      ok = put_char (&e->lower, &e->lower_len, &e->lower_cap, utf8proc_tolower (c));
    if (!ok)
      return nomem (err);
  }
  return TS_OK;
}

/* CLIPTokenizer._tokenize on one piece of text between added tokens. */
static ts_status
encode_piece (encoder *e, const char *s, size_t n, ts_error *err)
{
  ts_status st = TS_OK;
  utf8proc_uint8_t *nfc = NULL;
  const char *text;
  size_t text_len, p = 0;
  bool ascii = true;

  /* BasicTokenizer._clean_text and _tokenize_chinese_chars. */
  e->clean_len = 0;
  while (p < n) {
    int32_t c;
    utf8proc_category_t cat;
    bool ok = true;
    p += utf8_next (s + p, n - p, &c);
    cat = utf8proc_category (c);
    if (c == 0 || c == 0xFFFD)
      continue;
    if (c == '\t' || c == '\n' || c == '\r' || c == ' ' || cat == UTF8PROC_CATEGORY_ZS)
      c = ' ';
    else if (cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF || cat == UTF8PROC_CATEGORY_CS
             || cat == UTF8PROC_CATEGORY_CO || cat == UTF8PROC_CATEGORY_CN)
      continue;
    if (is_cjk (c))
      ok = put_char (&e->clean, &e->clean_len, &e->clean_cap, ' ')
           && put_char (&e->clean, &e->clean_len, &e->clean_cap, c)
           && put_char (&e->clean, &e->clean_len, &e->clean_cap, ' ');
    else
      ok = put_char (&e->clean, &e->clean_len, &e->clean_cap, c);
    if (!ok)
      return nomem (err);
    ascii = ascii && c < 0x80;
  }
  if (e->clean_len == 0)
    return TS_OK;

  /* NFC (ASCII is already normalised). */
  text = e->clean;
  text_len = e->clean_len;
  if (!ascii) {
    utf8proc_ssize_t r =
        utf8proc_map ((const utf8proc_uint8_t *) e->clean, (utf8proc_ssize_t) e->clean_len, &nfc,
                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (r < 0)
      return r == UTF8PROC_ERROR_NOMEM ? nomem (err)
                                       : ts_error_set (err, TS_ERR_INVALID_ARG,
                                                       "tokenizer: NFC failed: %s", utf8proc_errmsg (r));
    text = (const char *) nfc;
    text_len = (size_t) r;
  }

  /* whitespace_tokenize, then lower() and the regex on each word. */
  p = 0;
  while (p < text_len) {
    int32_t c;
    size_t cl = utf8_next (text + p, text_len - p, &c);
    if (is_py_space (c)) {
      p += cl;
      continue;
    }
    e->word_len = 0;
    while (p < text_len) {
      cl = utf8_next (text + p, text_len - p, &c);
      if (is_py_space (c))
        break;
      if (!grow ((void **) &e->word, &e->word_cap, e->word_len + 1, sizeof *e->word)) {
        st = nomem (err);
        goto out;
      }
      e->word[e->word_len++] = c;
      p += cl;
    }
    if ((st = lower_word (e, err)) != TS_OK
        || (st = split_word (e, e->lower, e->lower_len, err)) != TS_OK)
      goto out;
  }

out:
  free (nfc);
  return st;
}

/* PreTrainedTokenizer.tokenize: split on added tokens (leftmost, longest), encode the
 * text between them, and wrap the result in bos/eos. */
static ts_status
encode_all (encoder *e, const char *text, size_t len, ts_error *err)
{
  const ts_tokenizer *tok = e->tok;
  size_t piece = 0, i = 0;
  ts_status st;

  if ((st = push_id (e, tok->bos_id, err)) != TS_OK)
    return st;
  while (i < len) {
    const added_token *best = NULL;
    if (tok->added_first[(uint8_t) text[i]]) {
      for (size_t k = 0; k < tok->n_added; k++) {
        const added_token *t = &tok->added_list[k];
        if (t->len <= len - i && (!best || t->len > best->len)
            && memcmp (text + i, tok->pool + t->off, t->len) == 0)
          best = t;
      }
    }
    if (!best) {
      i++;
      continue;
    }
    if ((st = encode_piece (e, text + piece, i - piece, err)) != TS_OK
        || (st = push_id (e, best->id, err)) != TS_OK)
      return st;
    i += best->len;
    piece = i;
  }
  if ((st = encode_piece (e, text + piece, len - piece, err)) != TS_OK)
    return st;
  return push_id (e, tok->eos_id, err);
}

static ts_status
encode_checked (const ts_tokenizer *tok, const char *text, encoder *e, ts_error *err)
{
  size_t len, bad;
  if (!tok || !text)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "tokenizer: %s is NULL", tok ? "text" : "tokenizer");
  len = strlen (text);
  bad = utf8_invalid_at (text, len);
  if (bad < len)
    return ts_error_set (err, TS_ERR_INVALID_ARG,
                         "tokenizer: prompt is not valid UTF-8 (byte %zu of %zu)", bad, len);
  e->tok = tok;
  return encode_all (e, text, len, err);
}

ts_status
ts_tokenizer_encode (const ts_tokenizer *tok, const char *text, int32_t *ids, size_t cap,
                     size_t *n_total, ts_error *err)
{
  encoder e = { 0 };
  ts_status st;

  if (!ids && cap > 0)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "tokenizer: ids is NULL but cap is %zu", cap);
  st = encode_checked (tok, text, &e, err);
  if (st == TS_OK) {
    if (cap > 0)
      memcpy (ids, e.ids, (e.n_ids < cap ? e.n_ids : cap) * sizeof *ids);
    if (n_total)
      *n_total = e.n_ids;
  }
  encoder_clear (&e);
  return st;
}

ts_status
ts_tokenizer_encode_padded (const ts_tokenizer *tok, const char *text,
                            int32_t ids[TS_TOKENIZER_MAX_LENGTH], bool *truncated, ts_error *err)
{
  encoder e = { 0 };
  ts_status st;
  size_t n;

  if (!ids)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "tokenizer: ids is NULL");
  st = encode_checked (tok, text, &e, err);
  if (st == TS_OK) {
    /* Truncation drops prompt tokens, never the eos that build_inputs_with_special_tokens
     * appends afterwards. */
    n = e.n_ids;
    if (n > TS_TOKENIZER_MAX_LENGTH) {
      e.ids[TS_TOKENIZER_MAX_LENGTH - 1] = tok->eos_id;
      n = TS_TOKENIZER_MAX_LENGTH;
    }
    memcpy (ids, e.ids, n * sizeof *ids);
    for (size_t i = n; i < TS_TOKENIZER_MAX_LENGTH; i++)
      ids[i] = tok->pad_id;
    if (truncated)
      *truncated = e.n_ids > TS_TOKENIZER_MAX_LENGTH;
  }
  encoder_clear (&e);
  return st;
}
