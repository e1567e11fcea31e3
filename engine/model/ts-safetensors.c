/* SPDX-License-Identifier: MIT
 *
 * ts-safetensors — the safetensors reader, the first stage of model loading (see
 * ts-safetensors.h). A file is mmap'd and its JSON header parsed with cJSON into a table
 * of ts_st_tensor whose data pointers point into the mapping. The checks follow the
 * format's reference implementation (huggingface/safetensors, `Metadata::validate`):
 * the tensors, ordered by offset, must tile the data section exactly, each one's byte
 * range matching shape x dtype size. It adds what serde does implicitly there (unique
 * keys, integral non-negative numbers) and rejects what it cannot represent exactly (a
 * number above 2^53, more than TS_ST_MAX_DIMS dimensions).
 */
#include "model/ts-safetensors.h"

#include "core/ts-common.h"
#include "core/ts-file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ts-safetensors reads little-endian tensor data in place: a little-endian host is required"
#endif

/* The largest integer a JSON number parsed into a double still holds exactly. */
#define ST_MAX_EXACT_INT 9007199254740992.0

/* An index JSON is one "name": "shard file" line per tensor, about as long as the tensor's
 * header entry; the same bound as the header keeps a hostile index from costing hundreds
 * of MB in cJSON nodes. */
#define ST_MAX_INDEX_BYTES TS_ST_MAX_HEADER

typedef struct {
  char *key;
  char *value;
} st_meta;

struct ts_safetensors {
  char *path;                  /* name in messages and ts_st_tensor.file */
  const unsigned char *bytes;  /* the whole file */
  size_t size;
  void *map;                   /* non-NULL when this object owns an mmap of `size` bytes */
  size_t n_tensors;
  ts_st_tensor *tensors;       /* sorted by name */
  char *names;                 /* one allocation holding every tensor name */
  size_t n_meta;
  st_meta *meta;
};

/* Fills err with "path: message". */
static ts_status st_fail (ts_error *err, ts_status code, const char *path, const char *fmt, ...)
  TS_PRINTF (4, 5);

static ts_status
st_fail (ts_error *err, ts_status code, const char *path, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  ts_error_setv (err, code, fmt, ap);
  va_end (ap);
  ts_error_prefix (err, "%s", path);
  return code;
}

/* ---- header parsing ---- */

static const char *const unsupported_dtypes[] = {
  /* Valid in newer safetensors versions, no ts_dtype for them. */
  "F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "C64",
};

static bool
dtype_from_name (const char *name, ts_dtype *out)
{
  for (int i = 0; i < TS_DTYPE_COUNT; i++) {
    if (strcmp (name, ts_dtype_name ((ts_dtype) i)) == 0) {
      *out = (ts_dtype) i;
      return true;
    }
  }
  return false;
}

/* A JSON number that is an exact non-negative integer. */
static bool
json_to_index (const cJSON *item, uint64_t *out)
{
  double d;

  if (!cJSON_IsNumber (item))
    return false;
  d = item->valuedouble;
  if (!(d >= 0.0 && d <= ST_MAX_EXACT_INT) || d != floor (d))
    return false;
  *out = (uint64_t) d;
  return true;
}

static void
format_shape (char *buf, size_t size, const int64_t *shape, int n_dims)
{
  size_t len = 0;

  buf[len++] = '[';
  for (int i = 0; i < n_dims && len < size; i++)
    len += (size_t) snprintf (buf + len, size - len, "%s%lld", i ? "," : "",
                              (long long) shape[i]);
  if (len + 2 <= size) {
    buf[len++] = ']';
    buf[len] = '\0';
  } else {
    buf[size - 1] = '\0';
  }
}

/* Checks UTF-8 (RFC 3629: no overlongs, no surrogates, at most U+10FFFF) and the absence
 * of NUL bytes, which cJSON would read as the end of its input. Returns the offset of
 * the first bad byte, or len when the buffer is fine. */
static size_t
utf8_check (const unsigned char *s, size_t len)
{
  size_t i = 0;

  while (i < len) {
    unsigned c = s[i];
    size_t n;
    uint32_t cp, min;

    if (c == 0)
      return i;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
      min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
      min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
      min = 0x10000;
    } else {
      return i;
    }
    if (len - i <= n)
      return i;
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return i;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return i;
    i += n + 1;
  }
  return len;
}

static int
compare_meta (const void *a, const void *b)
{
  const st_meta *x = a, *y = b;
  return strcmp (x->key, y->key);
}

/* bsearch: a key string against an st_meta. */
static int
compare_meta_key (const void *key, const void *elem)
{
  const st_meta *m = elem;
  return strcmp (key, m->key);
}

/* Copies the `__metadata__` pairs, sorted by key (a repeated key is an error). */
static ts_status
parse_metadata (ts_safetensors *st, const cJSON *obj, ts_error *err)
{
  size_t n = 0;
  const cJSON *item;

  if (!cJSON_IsObject (obj))
    return st_fail (err, TS_ERR_FORMAT, st->path, "__metadata__ is not a JSON object");
  cJSON_ArrayForEach (item, obj)
    n++;
  if (n == 0)
    return TS_OK;
  st->meta = calloc (n, sizeof *st->meta);
  if (!st->meta)
    return st_fail (err, TS_ERR_NOMEM, st->path, "out of memory for __metadata__");
  cJSON_ArrayForEach (item, obj) {
    st_meta *m = &st->meta[st->n_meta];

    if (!cJSON_IsString (item))
      return st_fail (err, TS_ERR_FORMAT, st->path,
                      "__metadata__ value for key '%s' is not a string", item->string);
    m->key = strdup (item->string);
    m->value = strdup (item->valuestring);
    st->n_meta++;
    if (!m->key || !m->value)
      return st_fail (err, TS_ERR_NOMEM, st->path, "out of memory for __metadata__");
  }
  qsort (st->meta, n, sizeof *st->meta, compare_meta);
  for (size_t i = 1; i < n; i++)
    if (strcmp (st->meta[i - 1].key, st->meta[i].key) == 0)
      return st_fail (err, TS_ERR_FORMAT, st->path, "__metadata__ has key '%s' twice",
                      st->meta[i].key);
  return TS_OK;
}

/* Parses one header entry into t (name not yet set). begin/end are the data_offsets. */
static ts_status
parse_tensor (const ts_safetensors *st, const cJSON *entry, ts_st_tensor *t, uint64_t *begin,
              uint64_t *end, size_t data_size, ts_error *err)
{
  const char *name = entry->string;
  const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL, *item;
  char shape_str[256];
  size_t n = 1, bytes;
  int n_dims = 0;
  bool zero = false;

  if (!cJSON_IsObject (entry))
    return st_fail (err, TS_ERR_FORMAT, st->path, "tensor '%s': entry is not a JSON object",
                    name);
  cJSON_ArrayForEach (item, entry) {
    const cJSON **slot = NULL;

    if (strcmp (item->string, "dtype") == 0)
      slot = &dtype;
    else if (strcmp (item->string, "shape") == 0)
      slot = &shape;
    else if (strcmp (item->string, "data_offsets") == 0)
      slot = &offsets;
    if (!slot)
      continue;
    if (*slot)
      return st_fail (err, TS_ERR_FORMAT, st->path, "tensor '%s': key \"%s\" appears twice",
                      name, item->string);
    *slot = item;
  }

  if (!cJSON_IsString (dtype))
    return st_fail (err, TS_ERR_FORMAT, st->path, "tensor '%s': missing string \"dtype\"",
                    name);
  if (!dtype_from_name (dtype->valuestring, &t->dtype)) {
    for (size_t i = 0; i < sizeof unsupported_dtypes / sizeof unsupported_dtypes[0]; i++)
      if (strcmp (dtype->valuestring, unsupported_dtypes[i]) == 0)
        return st_fail (err, TS_ERR_UNSUPPORTED, st->path,
                        "tensor '%s': dtype '%s' is not supported", name,
                        dtype->valuestring);
    return st_fail (err, TS_ERR_FORMAT, st->path, "tensor '%s': unknown dtype '%s'", name,
                    dtype->valuestring);
  }

  if (!cJSON_IsArray (shape))
    return st_fail (err, TS_ERR_FORMAT, st->path, "tensor '%s': missing array \"shape\"", name);
  cJSON_ArrayForEach (item, shape) {
    uint64_t dim;

    if (n_dims == TS_ST_MAX_DIMS)
      return st_fail (err, TS_ERR_UNSUPPORTED, st->path,
                      "tensor '%s': shape has %d dimensions, at most %d are supported", name,
                      cJSON_GetArraySize (shape), TS_ST_MAX_DIMS);
    if (!json_to_index (item, &dim))
      return st_fail (err, TS_ERR_FORMAT, st->path,
                      "tensor '%s': shape[%d] is not a non-negative integer (at most 2^53)",
                      name, n_dims);
    t->shape[n_dims++] = (int64_t) dim;
    zero = zero || dim == 0;
  }
  t->n_dims = n_dims;
  format_shape (shape_str, sizeof shape_str, t->shape, n_dims);

  if (!cJSON_IsArray (offsets) || cJSON_GetArraySize (offsets) != 2
      || !json_to_index (offsets->child, begin) || !json_to_index (offsets->child->next, end))
    return st_fail (err, TS_ERR_FORMAT, st->path,
                    "tensor '%s': \"data_offsets\" is not [begin, end] with non-negative "
                    "integers (at most 2^53)", name);
  if (*begin > *end)
    return st_fail (err, TS_ERR_FORMAT, st->path,
                    "tensor '%s': data_offsets [%llu,%llu] begin after they end", name,
                    (unsigned long long) *begin, (unsigned long long) *end);

  /* The product is 0 as soon as one dimension is, however large the others. */
  if (zero) {
    n = 0;
  } else {
    for (int i = 0; i < n_dims; i++)
      if (!ts_mul_size (n, (size_t) t->shape[i], &n))
        return st_fail (err, TS_ERR_FORMAT, st->path,
                        "tensor '%s': shape %s overflows the element count", name, shape_str);
  }
  if (!ts_mul_size (n, ts_dtype_size (t->dtype), &bytes))
    return st_fail (err, TS_ERR_FORMAT, st->path,
                    "tensor '%s': shape %s %s overflows the byte size", name, shape_str,
                    dtype->valuestring);
  if ((uint64_t) bytes != *end - *begin)
    return st_fail (err, TS_ERR_FORMAT, st->path,
                    "tensor '%s': shape %s %s needs %zu bytes but data_offsets cover %llu",
                    name, shape_str, dtype->valuestring, bytes,
                    (unsigned long long) (*end - *begin));
  if (*end > (uint64_t) data_size)
    return st_fail (err, TS_ERR_FORMAT, st->path,
                    "tensor '%s': data_offsets [%llu,%llu] run past the end of the data "
                    "section (%zu bytes; is the file truncated?)", name,
                    (unsigned long long) *begin, (unsigned long long) *end, data_size);
  t->n_elements = n;
  t->size_bytes = bytes;
  t->file = st->path;
  return TS_OK;
}

typedef struct {
  uint64_t begin, end;
  const char *name;
} st_range;

static int
compare_range (const void *a, const void *b)
{
  const st_range *x = a, *y = b;

  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return 0;
}

static int
compare_tensor_name (const void *a, const void *b)
{
  const ts_st_tensor *x = a, *y = b;
  return strcmp (x->name, y->name);
}

/* The format's rule: ordered by offset, the tensors cover the data section exactly,
 * with no overlap, no gap and no trailing bytes. Zero-size tensors may sit anywhere a
 * tensor starts or ends. */
static ts_status
check_tiling (const ts_safetensors *st, st_range *ranges, size_t n, size_t data_size,
              ts_error *err)
{
  uint64_t cursor = 0;
  const st_range *prev = NULL;

  qsort (ranges, n, sizeof *ranges, compare_range);
  for (size_t i = 0; i < n; i++) {
    const st_range *r = &ranges[i];
    const char *name = r->name;

    if (r->begin < cursor)
      return st_fail (err, TS_ERR_FORMAT, st->path,
                      "tensor '%s': data_offsets [%llu,%llu] overlap tensor '%s' [%llu,%llu]",
                      name, (unsigned long long) r->begin, (unsigned long long) r->end,
                      prev->name, (unsigned long long) prev->begin,
                      (unsigned long long) prev->end);
    if (r->begin > cursor)
      return st_fail (err, TS_ERR_FORMAT, st->path,
                      "tensor '%s': gap in the data section: bytes [%llu,%llu) before it "
                      "belong to no tensor", name, (unsigned long long) cursor,
                      (unsigned long long) r->begin);
    if (r->end > cursor || !prev) {
      cursor = r->end;
      prev = r;
    }
  }
  if (cursor != (uint64_t) data_size) {
    if (prev)
      return st_fail (err, TS_ERR_FORMAT, st->path,
                      "%llu trailing bytes in the data section after the last tensor '%s' "
                      "(it ends at %llu, the data section is %zu bytes)",
                      (unsigned long long) (data_size - cursor),
                      prev->name, (unsigned long long) cursor, data_size);
    return st_fail (err, TS_ERR_FORMAT, st->path,
                    "%zu trailing bytes in the data section but the header has no tensors",
                    data_size);
  }
  return TS_OK;
}

/* Validates st->bytes[0..size) and fills the tensor table and metadata. */
static ts_status
st_parse (ts_safetensors *st, ts_error *err)
{
  ts_status status;
  uint64_t header_len = 0;
  size_t data_size, bad, n_entries = 0, n = 0, names_size = 0, names_len = 0;
  char *header = NULL;
  const char *parse_end = NULL;
  cJSON *root = NULL;
  const cJSON *item;
  bool seen_metadata = false;
  st_range *ranges = NULL;
  const unsigned char *data;

  if (st->size < 8)
    return st_fail (err, TS_ERR_FORMAT, st->path,
                    "file is %zu bytes, too short for the 8-byte header length", st->size);
  for (int i = 7; i >= 0; i--)
    header_len = (header_len << 8) | st->bytes[i];
  if (header_len < 2)
    return st_fail (err, TS_ERR_FORMAT, st->path,
                    "header length %llu is too small (a JSON object needs at least 2 bytes)",
                    (unsigned long long) header_len);
  if (header_len > TS_ST_MAX_HEADER)
    return st_fail (err, TS_ERR_FORMAT, st->path,
                    "header length %llu exceeds the limit of %u bytes (real checkpoints "
                    "need about 120 bytes per tensor)",
                    (unsigned long long) header_len, TS_ST_MAX_HEADER);
  if (header_len > st->size - 8)
    return st_fail (err, TS_ERR_FORMAT, st->path,
                    "header length %llu runs past the end of the file (%zu bytes)",
                    (unsigned long long) header_len, st->size);
  data_size = st->size - 8 - (size_t) header_len;
  data = st->bytes + 8 + header_len;

  bad = utf8_check (st->bytes + 8, (size_t) header_len);
  if (bad != (size_t) header_len)
    return st_fail (err, TS_ERR_FORMAT, st->path,
                    "header is not NUL-free UTF-8 text (byte 0x%02x at header offset %zu)",
                    st->bytes[8 + bad], bad);

  /* A NUL-terminated copy, so that no cJSON code path can read past the header. */
  header = malloc ((size_t) header_len + 1);
  if (!header) {
    status = st_fail (err, TS_ERR_NOMEM, st->path, "out of memory for a %llu-byte header",
                      (unsigned long long) header_len);
    goto fail;
  }
  memcpy (header, st->bytes + 8, (size_t) header_len);
  header[header_len] = '\0';

  root = cJSON_ParseWithLengthOpts (header, (size_t) header_len, &parse_end, false);
  if (!root) {
    status = st_fail (err, TS_ERR_FORMAT, st->path,
                      "header is not valid JSON (error at header offset %td)",
                      parse_end ? parse_end - header : (ptrdiff_t) 0);
    goto fail;
  }
  for (const char *p = parse_end; p < header + header_len; p++) {
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
      status = st_fail (err, TS_ERR_FORMAT, st->path,
                        "header has text after its JSON value (at header offset %td)",
                        p - header);
      goto fail;
    }
  }
  if (!cJSON_IsObject (root)) {
    status = st_fail (err, TS_ERR_FORMAT, st->path, "header is not a JSON object");
    goto fail;
  }

  cJSON_ArrayForEach (item, root) {
    n_entries++;
    if (strcmp (item->string, "__metadata__") != 0
        && !ts_add_size (names_size, strlen (item->string) + 1, &names_size)) {
      status = st_fail (err, TS_ERR_NOMEM, st->path, "tensor names too large");
      goto fail;
    }
  }
  st->tensors = calloc (n_entries ? n_entries : 1, sizeof *st->tensors);
  ranges = calloc (n_entries ? n_entries : 1, sizeof *ranges);
  st->names = malloc (names_size ? names_size : 1);
  if (!st->tensors || !ranges || !st->names) {
    status = st_fail (err, TS_ERR_NOMEM, st->path, "out of memory for %zu tensors", n_entries);
    goto fail;
  }

  cJSON_ArrayForEach (item, root) {
    ts_st_tensor *t = &st->tensors[n];
    size_t len;

    if (strcmp (item->string, "__metadata__") == 0) {
      if (seen_metadata) {
        status = st_fail (err, TS_ERR_FORMAT, st->path, "header has \"__metadata__\" twice");
        goto fail;
      }
      seen_metadata = true;
      status = parse_metadata (st, item, err);
      if (status != TS_OK)
        goto fail;
      continue;
    }
    status = parse_tensor (st, item, t, &ranges[n].begin, &ranges[n].end, data_size, err);
    if (status != TS_OK)
      goto fail;
    len = strlen (item->string) + 1;
    memcpy (st->names + names_len, item->string, len);
    t->name = st->names + names_len;
    names_len += len;
    t->data = data + ranges[n].begin;
    t->mapped = st->map != NULL;
    ranges[n].name = t->name;
    n++;
  }
  st->n_tensors = n;

  /* cJSON keeps a repeated key as a second member: after sorting, neighbours show it. */
  qsort (st->tensors, n, sizeof *st->tensors, compare_tensor_name);
  for (size_t i = 1; i < n; i++) {
    if (strcmp (st->tensors[i - 1].name, st->tensors[i].name) == 0) {
      status = st_fail (err, TS_ERR_FORMAT, st->path, "duplicate tensor name '%s'",
                        st->tensors[i].name);
      goto fail;
    }
  }

  status = check_tiling (st, ranges, n, data_size, err);
  if (status != TS_OK)
    goto fail;

  free (ranges);
  cJSON_Delete (root);
  free (header);
  return TS_OK;

fail:
  free (ranges);
  cJSON_Delete (root);
  free (header);
  return status;
}

static ts_safetensors *
st_new (const char *name, ts_error *err)
{
  ts_safetensors *st = calloc (1, sizeof *st);

  if (!st || !(st->path = strdup (name))) {
    free (st);
    ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory", name);
    return NULL;
  }
  return st;
}

ts_safetensors *
ts_safetensors_open_memory (const void *data, size_t size, const char *name, ts_error *err)
{
  ts_safetensors *st;

  if (!data && size > 0) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "safetensors: NULL buffer of %zu bytes", size);
    return NULL;
  }
  st = st_new (name ? name : "<memory>", err);
  if (!st)
    return NULL;
  st->bytes = data;
  st->size = size;
  if (st_parse (st, err) != TS_OK) {
    ts_safetensors_free (st);
    return NULL;
  }
  return st;
}

ts_safetensors *
ts_safetensors_open (const char *path, ts_error *err)
{
  ts_safetensors *st = NULL;
  uint64_t file_size = 0;
  int fd = -1;

  if (!path) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "safetensors: NULL path");
    return NULL;
  }
  st = st_new (path, err);
  if (!st)
    return NULL;
  /* A FIFO or device is refused before anything waits on it (ts-file). */
  if (ts_file_open_regular (path, "safetensors", &fd, &file_size, err) != TS_OK)
    goto fail;
  if (file_size > SIZE_MAX) {
    st_fail (err, TS_ERR_UNSUPPORTED, path, "file too large for this address space");
    goto fail;
  }
  st->size = (size_t) file_size;
  /* mmap of 0 bytes fails; an empty file is reported by st_parse as too short. */
  if (st->size > 0) {
    st->map = mmap (NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (st->map == MAP_FAILED) {
      st->map = NULL;
      st_fail (err, TS_ERR_IO, path, "cannot mmap %zu bytes: %s", st->size, strerror (errno));
      goto fail;
    }
    st->bytes = st->map;
  }
  close (fd);
  fd = -1;
  if (st_parse (st, err) != TS_OK)
    goto fail;
  TS_LOG_D ("safetensors: %s: %zu tensors, %zu bytes", path, st->n_tensors, st->size);
  return st;

fail:
  if (fd >= 0)
    close (fd);
  ts_safetensors_free (st);
  return NULL;
}

void
ts_safetensors_free (ts_safetensors *st)
{
  if (!st)
    return;
  if (st->map)
    munmap (st->map, st->size);
  for (size_t i = 0; i < st->n_meta; i++) {
    free (st->meta[i].key);
    free (st->meta[i].value);
  }
  free (st->meta);
  free (st->tensors);
  free (st->names);
  free (st->path);
  free (st);
}

size_t
ts_safetensors_n_tensors (const ts_safetensors *st)
{
  return st->n_tensors;
}

const ts_st_tensor *
ts_safetensors_tensor (const ts_safetensors *st, size_t i)
{
  return i < st->n_tensors ? &st->tensors[i] : NULL;
}

const ts_st_tensor *
ts_safetensors_find (const ts_safetensors *st, const char *name)
{
  size_t lo = 0, hi = st->n_tensors;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp (name, st->tensors[mid].name);

    if (c == 0)
      return &st->tensors[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

const char *
ts_safetensors_metadata (const ts_safetensors *st, const char *key)
{
  const st_meta *m = st->n_meta ? bsearch (key, st->meta, st->n_meta, sizeof *st->meta,
                                           compare_meta_key)
                                : NULL;

  return m ? m->value : NULL;
}

size_t
ts_safetensors_size_bytes (const ts_safetensors *st)
{
  return st->size;
}

/* ---- checkpoints ---- */

struct ts_st_set {
  size_t n_files;
  ts_safetensors **files;
  size_t n_tensors;
  const ts_st_tensor **tensors;  /* sorted by name, into files[] */
};

typedef struct {
  const char *tensor;
  const char *shard;
} st_map_entry;

static char *
path_join (const char *dir, const char *name)
{
  size_t len = strlen (dir) + strlen (name) + 2;
  char *p = malloc (len);

  if (p)
    snprintf (p, len, "%s/%s", dir, name);
  return p;
}

static bool
path_exists (const char *path)
{
  struct stat sb;
  return stat (path, &sb) == 0;
}

static int
compare_tensor_ptr (const void *a, const void *b)
{
  const ts_st_tensor *const *x = a, *const *y = b;
  return strcmp ((*x)->name, (*y)->name);
}

static int
compare_map_entry (const void *a, const void *b)
{
  const st_map_entry *x = a, *y = b;
  return strcmp (x->tensor, y->tensor);
}

static bool
shard_name_ok (const char *s)
{
  return s[0] != '\0' && !strchr (s, '/') && !strstr (s, "..") && strcmp (s, ".") != 0;
}

/* Collects every tensor of every file, sorted by name; a name in two files is an error. */
static ts_status
set_collect (ts_st_set *set, ts_error *err)
{
  size_t n = 0;

  for (size_t i = 0; i < set->n_files; i++)
    n += ts_safetensors_n_tensors (set->files[i]);
  set->tensors = calloc (n ? n : 1, sizeof *set->tensors);
  if (!set->tensors)
    return ts_error_set (err, TS_ERR_NOMEM, "safetensors: out of memory for %zu tensors", n);
  for (size_t i = 0; i < set->n_files; i++)
    for (size_t k = 0; k < ts_safetensors_n_tensors (set->files[i]); k++)
      set->tensors[set->n_tensors++] = ts_safetensors_tensor (set->files[i], k);
  qsort (set->tensors, n, sizeof *set->tensors, compare_tensor_ptr);
  for (size_t i = 1; i < n; i++)
    if (strcmp (set->tensors[i - 1]->name, set->tensors[i]->name) == 0)
      return ts_error_set (err, TS_ERR_FORMAT, "tensor '%s' appears in two shards: %s and %s",
                           set->tensors[i]->name, set->tensors[i - 1]->file,
                           set->tensors[i]->file);
  return TS_OK;
}

static char *
read_small_file (const char *path, size_t max, size_t *size_out, ts_error *err)
{
  char *buf = NULL;
  uint64_t file_size = 0;
  size_t size, got = 0;
  int fd;

  if (ts_file_open_regular (path, "safetensors", &fd, &file_size, err) != TS_OK)
    return NULL;
  if (file_size > max) {
    st_fail (err, TS_ERR_FORMAT, path, "file is %" PRIu64 " bytes, more than the %zu allowed",
             file_size, max);
    goto fail;
  }
  size = (size_t) file_size;
  buf = malloc (size + 1);
  if (!buf) {
    st_fail (err, TS_ERR_NOMEM, path, "out of memory");
    goto fail;
  }
  while (got < size) {
    ssize_t r = read (fd, buf + got, size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      st_fail (err, TS_ERR_IO, path, "read failed: %s", r < 0 ? strerror (errno) : "short file");
      goto fail;
    }
    got += (size_t) r;
  }
  buf[size] = '\0';
  close (fd);
  *size_out = size;
  return buf;

fail:
  free (buf);
  close (fd);
  return NULL;
}

/* bsearch: a string against a `const char *` element. */
static int
compare_name_key (const void *key, const void *elem)
{
  const char *const *name = elem;
  return strcmp (key, *name);
}

static int
compare_name (const void *a, const void *b)
{
  const char *const *x = a, *const *y = b;
  return strcmp (*x, *y);
}

/* bsearch: a tensor name against an st_map_entry. */
static int
compare_map_entry_key (const void *key, const void *elem)
{
  const st_map_entry *e = elem;
  return strcmp (key, e->tensor);
}

/* Opens the shards named by a `*.safetensors.index*.json` and checks that the weight_map
 * and the shards agree exactly. err is never NULL here. Everything is sorted and
 * searched, so a hostile index with a million entries costs O(n log n), not O(n^2). */
static ts_status
set_load_index (ts_st_set *set, const char *dir, const char *index_path, ts_error *err)
{
  ts_status status;
  char *text = NULL, *shard_path = NULL;
  size_t size = 0, n = 0, n_shards = 0;
  cJSON *root = NULL;
  const cJSON *map, *item;
  st_map_entry *entries = NULL;
  const char **shards = NULL;  /* distinct shard names, sorted; set->files in this order */

  text = read_small_file (index_path, ST_MAX_INDEX_BYTES, &size, err);
  if (!text)
    return err->code;
  root = cJSON_ParseWithLength (text, size);
  if (!cJSON_IsObject (root)) {
    status = st_fail (err, TS_ERR_FORMAT, index_path,
                      root ? "not a JSON object" : "not valid JSON");
    goto fail;
  }
  map = cJSON_GetObjectItemCaseSensitive (root, "weight_map");
  if (!cJSON_IsObject (map) || !map->child) {
    status = st_fail (err, TS_ERR_FORMAT, index_path,
                      "missing or empty object \"weight_map\"");
    goto fail;
  }
  cJSON_ArrayForEach (item, map)
    n++;
  entries = calloc (n, sizeof *entries);
  shards = calloc (n, sizeof *shards);
  set->files = calloc (n, sizeof *set->files);
  if (!entries || !shards || !set->files) {
    status = st_fail (err, TS_ERR_NOMEM, index_path, "out of memory");
    goto fail;
  }
  n = 0;
  cJSON_ArrayForEach (item, map) {
    if (!cJSON_IsString (item) || !shard_name_ok (item->valuestring)) {
      status = st_fail (err, TS_ERR_FORMAT, index_path,
                        "tensor '%s': weight_map value is not a plain file name in the "
                        "index's folder", item->string);
      goto fail;
    }
    entries[n].tensor = item->string;
    entries[n].shard = item->valuestring;
    shards[n] = item->valuestring;
    n++;
  }
  qsort (entries, n, sizeof *entries, compare_map_entry);
  for (size_t i = 1; i < n; i++) {
    if (strcmp (entries[i - 1].tensor, entries[i].tensor) == 0) {
      status = st_fail (err, TS_ERR_FORMAT, index_path,
                        "tensor '%s' is listed twice in weight_map ('%s' and '%s')",
                        entries[i].tensor, entries[i - 1].shard, entries[i].shard);
      goto fail;
    }
  }
  qsort (shards, n, sizeof *shards, compare_name);
  for (size_t i = 0; i < n; i++)
    if (n_shards == 0 || strcmp (shards[n_shards - 1], shards[i]) != 0)
      shards[n_shards++] = shards[i];

  for (size_t i = 0; i < n_shards; i++) {
    shard_path = path_join (dir, shards[i]);
    if (!shard_path) {
      status = st_fail (err, TS_ERR_NOMEM, index_path, "out of memory");
      goto fail;
    }
    set->files[i] = ts_safetensors_open (shard_path, err);
    if (!set->files[i]) {
      status = err->code;
      ts_error_prefix (err, "%s: shard '%s'", index_path, shards[i]);
      goto fail;
    }
    set->n_files++;
    free (shard_path);
    shard_path = NULL;
  }

  for (size_t i = 0; i < n; i++) {
    const char **shard = bsearch (entries[i].shard, shards, n_shards, sizeof *shards,
                                  compare_name_key);

    TS_ASSERT (shard);
    if (!ts_safetensors_find (set->files[shard - shards], entries[i].tensor)) {
      status = st_fail (err, TS_ERR_FORMAT, index_path,
                        "tensor '%s' is mapped to shard '%s', which has no such tensor",
                        entries[i].tensor, entries[i].shard);
      goto fail;
    }
  }

  status = set_collect (set, err);
  if (status != TS_OK) {
    ts_error_prefix (err, "%s", index_path);
    goto fail;
  }
  /* Every weight_map entry was found in its shard and no name is in two shards, so any
   * extra tensor in a shard is one the index does not list. */
  for (size_t i = 0; i < set->n_tensors; i++) {
    if (!bsearch (set->tensors[i]->name, entries, n, sizeof *entries, compare_map_entry_key)) {
      status = st_fail (err, TS_ERR_FORMAT, index_path,
                        "tensor '%s' in %s is not listed in weight_map", set->tensors[i]->name,
                        set->tensors[i]->file);
      goto fail;
    }
  }

  free (shards);
  free (entries);
  cJSON_Delete (root);
  free (text);
  return TS_OK;

fail:
  free (shard_path);
  free (shards);
  free (entries);
  cJSON_Delete (root);
  free (text);
  return status;
}

ts_st_set *
ts_st_set_open (const char *dir, const char *base, const char *variant, ts_error *err)
{
  ts_st_set *set = NULL;
  char names[5][512];
  bool is_index[5];
  int n_names = 0, chosen = -1;
  char *path = NULL;
  ts_error local_err;

  if (!err)
    err = &local_err;
  if (!dir || !base || !*base) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "safetensors: a folder and a checkpoint name are "
                                           "required");
    return NULL;
  }
  if (variant && !*variant)
    variant = NULL;
  if (variant && (strchr (variant, '/') || strlen (variant) > 64)) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "safetensors: bad variant name '%s'", variant);
    return NULL;
  }
  if (strlen (base) > 256) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "safetensors: checkpoint name too long");
    return NULL;
  }

  /* Preference order: the variant (single file, then the diffusers and transformers
   * spellings of its sharded index), then the plain checkpoint. */
  if (variant) {
    snprintf (names[n_names], sizeof names[0], "%s.%s.safetensors", base, variant);
    is_index[n_names++] = false;
    snprintf (names[n_names], sizeof names[0], "%s.safetensors.index.%s.json", base, variant);
    is_index[n_names++] = true;
    snprintf (names[n_names], sizeof names[0], "%s.%s.safetensors.index.json", base, variant);
    is_index[n_names++] = true;
  }
  snprintf (names[n_names], sizeof names[0], "%s.safetensors", base);
  is_index[n_names++] = false;
  snprintf (names[n_names], sizeof names[0], "%s.safetensors.index.json", base);
  is_index[n_names++] = true;

  for (int i = 0; i < n_names && chosen < 0; i++) {
    path = path_join (dir, names[i]);
    if (!path) {
      ts_error_set (err, TS_ERR_NOMEM, "safetensors: out of memory");
      return NULL;
    }
    if (path_exists (path))
      chosen = i;
    else {
      free (path);
      path = NULL;
    }
  }
  if (chosen < 0) {
    ts_error_set (err, TS_ERR_NOT_FOUND, "%s: no %s.safetensors%s%s%s or its sharded index",
                  dir, base, variant ? " (nor its " : "", variant ? variant : "",
                  variant ? " variant)" : "");
    return NULL;
  }
  if (variant && chosen >= 3)
    TS_LOG_I ("safetensors: %s: no %s variant of %s, using %s", dir, variant, base,
              names[chosen]);

  set = calloc (1, sizeof *set);
  if (!set) {
    ts_error_set (err, TS_ERR_NOMEM, "safetensors: out of memory");
    goto fail;
  }
  if (is_index[chosen]) {
    if (set_load_index (set, dir, path, err) != TS_OK)
      goto fail;
  } else {
    set->files = calloc (1, sizeof *set->files);
    if (!set->files) {
      ts_error_set (err, TS_ERR_NOMEM, "safetensors: out of memory");
      goto fail;
    }
    set->files[0] = ts_safetensors_open (path, err);
    if (!set->files[0])
      goto fail;
    set->n_files = 1;
    if (set_collect (set, err) != TS_OK)
      goto fail;
  }
  free (path);
  return set;

fail:
  free (path);
  ts_st_set_free (set);
  return NULL;
}

void
ts_st_set_free (ts_st_set *set)
{
  if (!set)
    return;
  for (size_t i = 0; i < set->n_files; i++)
    ts_safetensors_free (set->files[i]);
  free (set->files);
  free (set->tensors);
  free (set);
}

const ts_st_tensor *
ts_st_set_find (const ts_st_set *set, const char *name)
{
  size_t lo = 0, hi = set->n_tensors;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp (name, set->tensors[mid]->name);

    if (c == 0)
      return set->tensors[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

size_t
ts_st_set_n_tensors (const ts_st_set *set)
{
  return set->n_tensors;
}

const ts_st_tensor *
ts_st_set_tensor (const ts_st_set *set, size_t i)
{
  return i < set->n_tensors ? set->tensors[i] : NULL;
}

size_t
ts_st_set_n_files (const ts_st_set *set)
{
  return set->n_files;
}

const char *
ts_st_set_file (const ts_st_set *set, size_t i)
{
  return i < set->n_files ? set->files[i]->path : NULL;
}

size_t
ts_st_set_size_bytes (const ts_st_set *set)
{
  size_t total = 0;

  for (size_t i = 0; i < set->n_files; i++)
    total += set->files[i]->size;
  return total;
}

/* ---- element conversion ---- */

static uint32_t
f32_bits (float f)
{
  uint32_t u;
  memcpy (&u, &f, sizeof u);
  return u;
}

static float
bits_f32 (uint32_t u)
{
  float f;
  memcpy (&f, &u, sizeof f);
  return f;
}

float
ts_f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;

  if (exp == 0) {
    uint32_t e = 113; /* f32 biased exponent of 2^-14, the f16 subnormal scale */

    if (mant == 0)
      return bits_f32 (sign);
    while (!(mant & 0x400u)) {
      mant <<= 1;
      e--;
    }
    return bits_f32 (sign | (e << 23) | ((mant & 0x3ffu) << 13));
  }
  if (exp == 31)
    return bits_f32 (sign | 0x7f800000u | (mant << 13));
  return bits_f32 (sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t
ts_f32_to_f16 (float f)
{
  uint32_t x = f32_bits (f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp, mant, r, rem, half, shift;

  x &= 0x7fffffffu;
  if (x > 0x7f800000u) /* NaN: keep the top payload bits, force quiet */
    return (uint16_t) (sign | 0x7e00u | ((x >> 13) & 0x3ffu));
  if (x >= 0x477ff000u) /* >= 65520 rounds to infinity (and infinity stays) */
    return (uint16_t) (sign | 0x7c00u);
  exp = x >> 23;
  mant = x & 0x7fffffu;
  if (exp >= 113) { /* normal f16 */
    r = ((exp - 112) << 10) | (mant >> 13);
    rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))
      r++;
    return (uint16_t) (sign | r);
  }
  if (exp < 102) /* below 2^-25 (half the smallest subnormal): rounds to zero */
    return (uint16_t) sign;
  /* Subnormal: value = m * 2^(exp-150), in units of 2^-24 that is m >> (126 - exp). */
  mant |= 0x800000u;
  shift = 126 - exp;
  r = mant >> shift;
  rem = mant & ((1u << shift) - 1);
  half = 1u << (shift - 1);
  if (rem > half || (rem == half && (r & 1u)))
    r++;
  return (uint16_t) (sign | r);
}

float
ts_bf16_to_f32 (uint16_t h)
{
  return bits_f32 ((uint32_t) h << 16);
}

uint16_t
ts_f32_to_bf16 (float f)
{
  uint32_t x = f32_bits (f);

  if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: truncate and force quiet */
    return (uint16_t) ((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t) (x >> 16);
}

/* F8_E5M2 is the top byte of an f16. */
static float
f8e5m2_to_f32 (uint8_t b)
{
  return ts_f16_to_f32 ((uint16_t) (b << 8));
}

/* F8_E4M3 is the "FN" flavour (OCP / torch.float8_e4m3fn): bias 7, no infinities,
 * S.1111.111 is NaN. */
static float
f8e4m3_to_f32 (uint8_t b)
{
  uint32_t exp = (b >> 3) & 0xfu;
  uint32_t mant = b & 0x7u;
  float v;

  if (exp == 15 && mant == 7)
    v = NAN;
  else if (exp == 0)
    v = ldexpf ((float) mant, -9);
  else
    v = bits_f32 (((exp + 120) << 23) | (mant << 20));
  return (b & 0x80u) ? -v : v;
}

ts_status
ts_st_tensor_to_f32 (const ts_st_tensor *t, float *out, ts_error *err)
{
  const unsigned char *p = t->data;
  size_t n = t->n_elements;

  switch (t->dtype) {
  case TS_DTYPE_F32:
    if (n)
      memcpy (out, p, n * sizeof *out);
    return TS_OK;
  case TS_DTYPE_F16:
  case TS_DTYPE_BF16:
    for (size_t i = 0; i < n; i++) {
      uint16_t h;
      memcpy (&h, p + 2 * i, sizeof h);
      out[i] = t->dtype == TS_DTYPE_F16 ? ts_f16_to_f32 (h) : ts_bf16_to_f32 (h);
    }
    return TS_OK;
  case TS_DTYPE_F64:
    for (size_t i = 0; i < n; i++) {
      double d;
      memcpy (&d, p + 8 * i, sizeof d);
      out[i] = (float) d;
    }
    return TS_OK;
  case TS_DTYPE_F8_E4M3:
    for (size_t i = 0; i < n; i++)
      out[i] = f8e4m3_to_f32 (p[i]);
    return TS_OK;
  case TS_DTYPE_F8_E5M2:
    for (size_t i = 0; i < n; i++)
      out[i] = f8e5m2_to_f32 (p[i]);
    return TS_OK;
  case TS_DTYPE_BOOL:
  case TS_DTYPE_U8:
  case TS_DTYPE_I8:
  case TS_DTYPE_I16:
  case TS_DTYPE_U16:
  case TS_DTYPE_I32:
  case TS_DTYPE_U32:
  case TS_DTYPE_I64:
  case TS_DTYPE_U64:
  case TS_DTYPE_COUNT:
    break;
  }
  return ts_error_set (err, TS_ERR_UNSUPPORTED, "%s: tensor '%s': cannot read %s as f32",
                       t->file, t->name, ts_dtype_name (t->dtype) ? ts_dtype_name (t->dtype)
                                                                   : "?");
}

ts_status
ts_st_tensor_to_i64 (const ts_st_tensor *t, int64_t *out, ts_error *err)
{
  const unsigned char *p = t->data;
  size_t n = t->n_elements;

  switch (t->dtype) {
  case TS_DTYPE_BOOL:
    for (size_t i = 0; i < n; i++)
      out[i] = p[i] != 0;
    return TS_OK;
  case TS_DTYPE_U8:
    for (size_t i = 0; i < n; i++)
      out[i] = p[i];
    return TS_OK;
  case TS_DTYPE_I8:
    for (size_t i = 0; i < n; i++)
      out[i] = (int8_t) p[i];
    return TS_OK;
#define ST_READ_INT(T)                                                                     \
  for (size_t i = 0; i < n; i++) {                                                         \
    T v;                                                                                   \
    memcpy (&v, p + sizeof v * i, sizeof v);                                               \
    out[i] = (int64_t) v;                                                                  \
  }                                                                                        \
  return TS_OK
  case TS_DTYPE_I16:
    ST_READ_INT (int16_t);
  case TS_DTYPE_U16:
    ST_READ_INT (uint16_t);
  case TS_DTYPE_I32:
    ST_READ_INT (int32_t);
  case TS_DTYPE_U32:
    ST_READ_INT (uint32_t);
  case TS_DTYPE_I64:
    ST_READ_INT (int64_t);
#undef ST_READ_INT
  case TS_DTYPE_U64:
    for (size_t i = 0; i < n; i++) {
      uint64_t v;
      memcpy (&v, p + 8 * i, sizeof v);
      if (v > (uint64_t) INT64_MAX)
        return ts_error_set (err, TS_ERR_UNSUPPORTED,
                             "%s: tensor '%s': U64 element %zu = %llu does not fit in int64",
                             t->file, t->name, i, (unsigned long long) v);
      out[i] = (int64_t) v;
    }
    return TS_OK;
  case TS_DTYPE_F8_E4M3:
  case TS_DTYPE_F8_E5M2:
  case TS_DTYPE_F16:
  case TS_DTYPE_BF16:
  case TS_DTYPE_F32:
  case TS_DTYPE_F64:
  case TS_DTYPE_COUNT:
    break;
  }
  return ts_error_set (err, TS_ERR_UNSUPPORTED, "%s: tensor '%s': cannot read %s as integers",
                       t->file, t->name, ts_dtype_name (t->dtype) ? ts_dtype_name (t->dtype)
                                                                   : "?");
}

/* ---- non-finite check ---- */

/* SWAR over 64-bit words: every lane of `lane_bytes` holds one element whose exponent (or,
 * for F8_E4M3, exponent and mantissa) field is `field`. (x & field) + lowest bit of field
 * carries into the lane's top bit exactly when the field is all ones, and never past the
 * lane, since the masked value has the top bit clear. So one AND, ADD, AND per 8 bytes
 * tests 4 halves or 2 floats at once, branch-free; the OR of a block is tested once. */
static uint64_t
st_lanes (uint64_t lane_value, size_t lane_bytes)
{
  uint64_t r = 0;
  for (size_t i = 0; i < 8; i += lane_bytes)
    r |= lane_value << (8 * i);
  return r;
}

ts_status
ts_st_tensor_check_finite (const ts_st_tensor *t, ts_error *err)
{
  enum { BLOCK_WORDS = 2048 };
  uint64_t field, top;
  size_t lane_bytes;
  const unsigned char *p = t->data;

  switch (t->dtype) {
  case TS_DTYPE_F16: lane_bytes = 2; field = 0x7C00u; break;
  case TS_DTYPE_BF16: lane_bytes = 2; field = 0x7F80u; break;
  case TS_DTYPE_F32: lane_bytes = 4; field = 0x7F800000u; break;
  case TS_DTYPE_F64: lane_bytes = 8; field = 0x7FF0000000000000u; break;
  case TS_DTYPE_F8_E5M2: lane_bytes = 1; field = 0x7Cu; break;
  case TS_DTYPE_F8_E4M3: lane_bytes = 1; field = 0x7Fu; break; /* "fn": only NaN */
  case TS_DTYPE_BOOL:
  case TS_DTYPE_U8:
  case TS_DTYPE_I8:
  case TS_DTYPE_I16:
  case TS_DTYPE_U16:
  case TS_DTYPE_I32:
  case TS_DTYPE_U32:
  case TS_DTYPE_I64:
  case TS_DTYPE_U64:
  case TS_DTYPE_COUNT:
  default:
    return TS_OK; /* integers are always finite */
  }
  top = (field + (field & -field)) & ~field; /* the lane's sign bit */
  const uint64_t mask = st_lanes (field, lane_bytes), one = st_lanes (field & -field, lane_bytes),
                 sign = st_lanes (top, lane_bytes);
  const size_t n_words = t->size_bytes / 8;

  for (size_t w0 = 0; w0 <= n_words; w0 += BLOCK_WORDS) {
    const size_t w1 = w0 + BLOCK_WORDS < n_words ? w0 + BLOCK_WORDS : n_words;
    uint64_t bad = 0;
    for (size_t w = w0; w < w1; w++) {
      uint64_t x;
      memcpy (&x, p + 8 * w, sizeof x);
      bad |= ((x & mask) + one) & sign;
    }
    if (w1 == n_words && t->size_bytes % 8) { /* the tail, zero-padded (zero is finite) */
      uint64_t x = 0;
      memcpy (&x, p + 8 * n_words, t->size_bytes % 8);
      bad |= ((x & mask) + one) & sign;
    }
    if (!bad)
      continue;
    /* Rare: find the first offending element of this block for the message. */
    const size_t e0 = w0 * 8 / lane_bytes, e1 = t->n_elements;
    for (size_t e = e0; e < e1; e++) {
      uint64_t v = 0;
      memcpy (&v, p + e * lane_bytes, lane_bytes);
      if ((v & field) != field)
        continue;
      /* all-ones exponent: a zero mantissa is an infinity (not for F8_E4M3, all NaN) */
      const uint64_t mant = (top - 1) & ~field;
      const char *kind = t->dtype == TS_DTYPE_F8_E4M3 || (v & mant) ? "NaN"
                         : (v & top) ? "-inf" : "+inf";
      return ts_error_set (err, TS_ERR_FORMAT,
                           "%s: tensor '%s': element %zu of %zu is %s (the checkpoint holds "
                           "non-finite weights)", t->file, t->name, e, t->n_elements, kind);
    }
  }
  return TS_OK;
}

void
ts_st_tensor_release (const ts_st_tensor *t)
{
  long page = sysconf (_SC_PAGESIZE);
  uintptr_t begin, end;

  if (!t || !t->mapped || page <= 0 || t->size_bytes == 0)
    return;
  begin = ((uintptr_t) t->data + (uintptr_t) page - 1) / (uintptr_t) page * (uintptr_t) page;
  end = ((uintptr_t) t->data + t->size_bytes) / (uintptr_t) page * (uintptr_t) page;
  /* MADV_DONTNEED on a private read-only file mapping that was never written drops the
   * pages from this process only; a later read faults them back in from the file. */
  if (end > begin)
    (void) madvise ((void *) begin, end - begin, MADV_DONTNEED);
}
