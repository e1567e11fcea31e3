/* SPDX-License-Identifier: MIT
 *
 * tessera-cli info / make-mask — small image utilities over the engine's PNG code: print
 * the generation parameters a PNG carries (ours or another tool's A1111 `parameters`), and
 * write a rectangular inpainting mask for scripts and tests.
 */
#include "tessera-cli-commands.h"

#include "tessera.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
tessera_cli_info (int argc, char **argv)
{
  int rc = 0;

  if (argc < 2) {
    fprintf (stderr, "Usage: tessera-cli info FILE.png...\n");
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    ts_image_meta meta;
    ts_error err;
    ts_image *img = ts_image_load_png (argv[i], &meta, &err);
    char *text;

    if (!img) {
      fprintf (stderr, "tessera-cli: %s\n", err.message);
      rc = 1;
      continue;
    }
    if (argc > 2)
      printf ("== %s\n", argv[i]);
    printf ("# %ux%u pixels\n", img->width, img->height);
    text = ts_image_meta_to_parameters (&meta);
    if (meta.prompt || meta.steps)
      printf ("%s\n", text ? text : "(out of memory)");
    else
      printf ("# no generation parameters\n");
    free (text);
    ts_image_meta_clear (&meta);
    ts_image_free (img);
  }
  return rc;
}

int
tessera_cli_make_mask (int argc, char **argv)
{
  unsigned w, h, rx, ry, rw, rh;
  char tail;
  ts_image *img;
  ts_error err;

  if (argc != 4 || sscanf (argv[1], "%ux%u%c", &w, &h, &tail) != 2
      || sscanf (argv[2], "%u,%u,%u,%u%c", &rx, &ry, &rw, &rh, &tail) != 4) {
    fprintf (stderr, "Usage: tessera-cli make-mask WxH X,Y,W,H OUT.png\n"
                     "Writes a black WxH image with a white rectangle (white = repaint).\n");
    return 2;
  }
  img = ts_image_new (w, h, &err);
  if (!img) {
    fprintf (stderr, "tessera-cli: %s\n", err.message);
    return 1;
  }
  for (unsigned y = ry; y < ry + rh && y < h; y++)
    for (unsigned x = rx; x < rx + rw && x < w; x++)
      memset (img->pixels + 3 * ((size_t) y * w + x), 255, 3);
  if (ts_image_save_png (img, NULL, argv[3], &err) != TS_OK) {
    fprintf (stderr, "tessera-cli: %s\n", err.message);
    ts_image_free (img);
    return 1;
  }
  ts_image_free (img);
  return 0;
}
