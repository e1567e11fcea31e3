/* SPDX-License-Identifier: MIT
 *
 * libFuzzer harness for image/ts-image-*: the PNG reader and both metadata parsers on
 * hostile bytes. Besides crashes and sanitizer reports it checks two promises: whatever the
 * reader accepts, the writer writes and the reader reads back with the same pixels and
 * metadata; and the infotext the engine writes always parses again. Seeds: tests/fuzz/corpus/png/.
 *
 *     clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iengine -Iengine/include \
 *       engine/core/ts-common.c engine/image/ts-image-meta.c \
 *       engine/image/ts-image-png.c tests/fuzz/fuzz-png.c -lpng -lcjson -lm -o fuzz-png
 *     mkdir -p /tmp/png-corpus && ./fuzz-png -max_total_time=60 /tmp/png-corpus tests/fuzz/corpus/png
 */
#include "tessera.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Images up to this many pixels are re-encoded (bounded time per input). */
#define ROUNDTRIP_PIXELS_MAX (1u << 20)

static void
log_nothing (ts_log_level level, const char *message, void *user_data)
{
  (void) level, (void) message, (void) user_data;
}

static void
fail (const char *what, const char *detail)
{
  fprintf (stderr, "fuzz-png: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  abort ();
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc, (void) argv;
  /* Hostile metadata is logged at WARN; that is expected here and only slows fuzzing. */
  ts_log_set_handler (log_nothing, NULL);
  return 0;
}

static void
check_roundtrip (const ts_image *img, const ts_image_meta *meta)
{
  ts_image_meta meta2;
  ts_image *back;
  ts_error err;
  uint8_t *png = NULL;
  size_t png_size = 0;
  char *json1, *json2;

  if (ts_image_encode_png_memory (img, meta, &png, &png_size, &err) != TS_OK)
    fail ("cannot write what was read", err.message);
  back = ts_image_load_png_memory (png, png_size, &meta2, &err);
  if (!back)
    fail ("cannot read what was written", err.message);
  if (back->width != img->width || back->height != img->height ||
      memcmp (back->pixels, img->pixels, (size_t) img->width * img->height * 3) != 0)
    fail ("pixels changed in a write/read round trip", NULL);
  json1 = ts_image_meta_to_json (meta);
  json2 = ts_image_meta_to_json (&meta2);
  if (!json1 || !json2 || strcmp (json1, json2) != 0)
    fail ("metadata changed in a write/read round trip", json1);
  free (json1);
  free (json2);
  ts_image_meta_clear (&meta2);
  ts_image_free (back);
  free (png);
}

/* The input as text through both metadata parsers. */
static void
check_text (const uint8_t *data, size_t size)
{
  char *text = malloc (size + 1);
  ts_image_meta meta, meta2;
  ts_error err;

  if (!text)
    return;
  memcpy (text, data, size);
  text[size] = '\0';
  if (ts_image_meta_from_parameters (text, &meta, &err) == TS_OK) {
    char *again = ts_image_meta_to_parameters (&meta);
    if (!again)
      fail ("to_parameters failed", NULL);
    if (ts_image_meta_from_parameters (again, &meta2, &err) != TS_OK)
      fail ("written infotext does not parse", err.message);
    ts_image_meta_clear (&meta2);
    free (again);
    ts_image_meta_clear (&meta);
  }
  if (ts_image_meta_from_json (text, &meta, &err) == TS_OK)
    ts_image_meta_clear (&meta);
  free (text);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  ts_image_meta meta;
  ts_error err;
  ts_image *img = ts_image_load_png_memory (data, size, &meta, &err);

  if (img) {
    if ((uint64_t) img->width * img->height <= ROUNDTRIP_PIXELS_MAX)
      check_roundtrip (img, &meta);
    ts_image_meta_clear (&meta);
    ts_image_free (img);
  } else if (err.code != TS_ERR_FORMAT && err.code != TS_ERR_NOMEM) {
    fail ("unexpected error code", err.message);
  }
  check_text (data, size);
  return 0;
}
