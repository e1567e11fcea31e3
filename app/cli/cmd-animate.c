/* SPDX-License-Identifier: MIT
 *
 * cmd-animate.c — `tessera-cli animate`: the unmasking of a Tessera PNG (the trajectory
 * in its metadata) as an animated WebP, one frame per step (app/tessera-webp.c, the
 * encoder the app's export uses).
 */
#include "tessera-cli-commands.h"

#include "tessera.h"
#include "cli-options.h"
#include "tessera-webp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
tessera_cli_animate (int argc, char **argv)
{
  static const char usage[] =
    "Usage: tessera-cli animate --image X.png --out Y.webp [--codebook] [--frame-ms MS]\n"
    "Writes the unmasking of a Tessera PNG as an animated WebP: one frame per step, the\n"
    "decoded picture with the tokens not yet revealed grey, or with --codebook each\n"
    "revealed token as a flat cell of its colour (its mean in the final picture).\n"
    "The PNG must record its trajectory (tessera-cli info --json FILE.png shows it).\n\n"
    "Options:\n";
  const char *image_path = NULL, *out_path = NULL;
  bool codebook = false;
  int frame_ms = 150;
  const cli_option options[] = {
    { .name = "--image", .kind = CLI_STRING, .dest = &image_path, .metavar = "X.png",
      .help = "a PNG made by Tessera" },
    { .name = "--out", .kind = CLI_STRING, .dest = &out_path, .metavar = "Y.webp",
      .help = "the animation to write" },
    { .name = "--codebook", .kind = CLI_FLAG, .dest = &codebook,
      .help = "flat token colours instead of the decoded picture" },
    { .name = "--frame-ms", .kind = CLI_INT, .dest = &frame_ms, .metavar = "MS",
      .help = "how long each step shows (150; the last is held 1 s longer)", .min = 10,
      .max = 10000 },
    { .name = NULL },
  };
  ts_image_meta meta;
  ts_image *img;
  ts_error err;
  uint8_t *data = NULL;
  size_t size = 0;
  char message[256];
  FILE *f;
  int rc = 1;

  switch (cli_parse ("tessera-cli animate", options, argc, argv, NULL)) {
  case CLI_PARSED:
    break;
  case CLI_HELP:
    fputs (usage, stdout);
    cli_print_options (stdout, options);
    return 0;
  case CLI_BAD:
    return 2;
  }
  if (!image_path || !out_path) {
    fputs ("tessera-cli animate: --image and --out are required\n", stderr);
    return 2;
  }
  ts_image_meta_init (&meta);
  img = ts_image_load_png (image_path, &meta, &err);
  if (!img) {
    fprintf (stderr, "tessera-cli animate: %s\n", err.message);
    return 1;
  }
  if (!tessera_unmask_encode_webp (img, &meta, codebook ? TESSERA_UNMASK_CODEBOOK : TESSERA_UNMASK_PICTURE,
                                   NULL, 0, frame_ms, &data, &size, message, sizeof message)) {
    fprintf (stderr, "tessera-cli animate: %s: %s\n", image_path, message);
    goto out;
  }
  f = fopen (out_path, "wb");
  if (!f || fwrite (data, 1, size, f) != size || fclose (f) != 0) {
    fprintf (stderr, "tessera-cli animate: cannot write %s\n", out_path);
    goto out;
  }
  printf ("%s: %d steps, %zu bytes\n", out_path, tessera_unmask_n_steps (&meta), size);
  rc = 0;
out:
  free (data);
  ts_image_free (img);
  ts_image_meta_clear (&meta);
  return rc;
}
