/* SPDX-License-Identifier: MIT
 *
 * tessera-cli info / make-mask — small image utilities over the engine's PNG code: print
 * the generation parameters a PNG carries (ours or another tool's A1111 `parameters`), and
 * write a rectangular inpainting mask for scripts and tests. make-mask checks its size
 * against the PNG limits and its rectangle against the image before it allocates.
 */
#include "tessera-cli-commands.h"

#include "tessera.h"
#include "cli-options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_option no_options[] = { { .name = NULL } };

int
tessera_cli_info (int argc, char **argv)
{
  static const char usage[] =
    "Usage: tessera-cli info [--json] FILE.png...\n"
    "Prints the generation parameters of each PNG (A1111 infotext); with --json the whole\n"
    "`tessera` metadata object, the token trajectory as plain arrays.\n";
  bool json = false;
  const cli_option opts[] = {
    { "--json", CLI_FLAG, &json, NULL, .help = "print the tessera JSON object" },
    { .name = NULL },
  };
  int rc = 0, n_files;

  switch (cli_parse ("tessera-cli info", opts, argc, argv, &n_files)) {
  case CLI_PARSED:
    break;
  case CLI_HELP:
    fputs (usage, stdout);
    return 0;
  case CLI_BAD:
    return 2;
  }
  if (n_files < 1) {
    fputs (usage, stderr);
    return 2;
  }
  for (int i = 1; i <= n_files; i++) {
    ts_image_meta meta;
    ts_error err;
    ts_image *img = ts_image_load_png (argv[i], &meta, &err);
    char *text;

    if (!img) {
      fprintf (stderr, "tessera-cli: %s\n", err.message);
      rc = 1;
      continue;
    }
    if (json) {
      text = ts_image_meta_to_json_plain (&meta);
      printf ("%s\n", text ? text : "null");
      free (text);
      ts_image_meta_clear (&meta);
      ts_image_free (img);
      continue;
    }
    if (n_files > 1)
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
  static const char usage[] =
    "Usage: tessera-cli make-mask WxH X,Y,W,H OUT.png\n"
    "Writes a black WxH image with a white rectangle (white = repaint); the rectangle\n"
    "must lie inside the image.\n";
  uint32_t w, h, rect[4];
  ts_image *img;
  ts_error err;
  int n_args;

  switch (cli_parse ("tessera-cli make-mask", no_options, argc, argv, &n_args)) {
  case CLI_PARSED:
    break;
  case CLI_HELP:
    fputs (usage, stdout);
    return 0;
  case CLI_BAD:
    return 2;
  }
  if (n_args != 3) {
    fputs (usage, stderr);
    return 2;
  }
  if (!cli_parse_size (argv[1], &w, &h)) {
    fprintf (stderr, "tessera-cli make-mask: '%s' is not WIDTHxHEIGHT%s\n", argv[1],
             cli_size_problem (argv[1]));
    return 2;
  }
  /* The limits every PNG Tessera reads is held to, checked before the allocation. */
  if (w > TS_IMAGE_MAX_SIDE || h > TS_IMAGE_MAX_SIDE
      || (uint64_t) w * h > TS_IMAGE_MAX_PIXELS) {
    fprintf (stderr, "tessera-cli make-mask: %ux%u is over the limit of %u pixels a side and "
                     "%u pixels in all\n", w, h, TS_IMAGE_MAX_SIDE, TS_IMAGE_MAX_PIXELS);
    return 2;
  }
  if (!cli_parse_uint32_list (argv[2], ',', rect, 4)) {
    fprintf (stderr, "tessera-cli make-mask: '%s' is not X,Y,W,H (four numbers from 0)\n",
             argv[2]);
    return 2;
  }
  /* In 64 bits: X + W may pass 2^32. A rectangle that is empty or reaches outside would
   * give a mask that repaints less than asked, or nothing. */
  if (rect[2] == 0 || rect[3] == 0 || (uint64_t) rect[0] + rect[2] > w
      || (uint64_t) rect[1] + rect[3] > h) {
    fprintf (stderr, "tessera-cli make-mask: the rectangle %s is %s the %ux%u image\n",
             argv[2], rect[2] == 0 || rect[3] == 0 ? "empty: it covers nothing of"
                                                   : "not inside",
             w, h);
    return 2;
  }
  img = ts_image_new (w, h, &err);
  if (!img) {
    fprintf (stderr, "tessera-cli: %s\n", err.message);
    return 1;
  }
  for (uint64_t y = rect[1]; y < (uint64_t) rect[1] + rect[3]; y++)
    memset (img->pixels + 3 * (y * w + rect[0]), 255, 3 * (size_t) rect[2]);
  if (ts_image_save_png (img, NULL, argv[3], &err) != TS_OK) {
    fprintf (stderr, "tessera-cli: %s\n", err.message);
    ts_image_free (img);
    return 1;
  }
  ts_image_free (img);
  return 0;
}
