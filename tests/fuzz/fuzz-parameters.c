/* SPDX-License-Identifier: MIT
 *
 * fuzz-parameters — libFuzzer harness for the A1111 infotext parser
 * (image/ts-image-meta: ts_image_meta_from_parameters), the text other tools put in a PNG's
 * `parameters` chunk and the CLI's `info` reads. fuzz-png reaches it too, but only with
 * inputs that are PNGs first; here the input is the text itself, seeded with real
 * infotexts (tests/fuzz/corpus/parameters, from tools/make-fuzz-seeds.py). Whatever
 * parses must write back with ts_image_meta_to_parameters and parse again.
 */
#include "tessera.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
log_nothing (ts_log_level level, const char *message, void *user_data)
{
  (void) level, (void) message, (void) user_data;
}

static void
fail (const char *what, const char *detail)
{
  fprintf (stderr, "fuzz-parameters: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  abort ();
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc, (void) argv;
  ts_log_set_handler (log_nothing, NULL);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  char *text = malloc (size + 1);
  ts_image_meta meta, meta2;
  ts_error err;

  if (!text)
    return 0;
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
  } else if (err.code != TS_ERR_FORMAT && err.code != TS_ERR_NOMEM) {
    fail ("unexpected error code", err.message);
  }
  free (text);
  return 0;
}
