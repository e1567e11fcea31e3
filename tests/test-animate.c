/* SPDX-License-Identifier: MIT
 *
 * test-animate.c — the unmasking animation (app/tessera-webp.c), decoded back with
 * libwebp's WebPAnimDecoder. Without arguments: a synthetic 8x8-token trajectory over
 * N steps gives N frames, frame k grey exactly where the tokens came after step k, the
 * last frame the picture itself, the codebook style flat cells of the given colours, a
 * step that revealed nothing merges into the frame before, and an image without a
 * trajectory is refused. With FILE.webp N [W H]: that file (written by
 * `tessera-cli animate`, tests/test-animate.sh) has N frames of W x H.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <webp/demux.h>

#include "tessera-webp.h"

static int failures;

#define CHECK(cond)                                                       \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                         \
    }                                                                     \
  } while (0)

/* Decodes data; returns the number of frames (-1 on error), the size, and a copy of
 * frame `want` (RGBA, 0-based) in *frame when frame is not NULL. */
static int
decode (const uint8_t *data, size_t size, int *w, int *h, int want, uint8_t **frame)
{
  WebPAnimDecoderOptions opt;
  WebPAnimDecoder *dec;
  WebPAnimInfo info;
  WebPData wd = { .bytes = data, .size = size };
  int n = 0;

  if (!WebPAnimDecoderOptionsInit (&opt))
    return -1;
  opt.color_mode = MODE_RGBA;
  dec = WebPAnimDecoderNew (&wd, &opt);
  if (!dec)
    return -1;
  if (!WebPAnimDecoderGetInfo (dec, &info)) {
    WebPAnimDecoderDelete (dec);
    return -1;
  }
  *w = (int) info.canvas_width;
  *h = (int) info.canvas_height;
  while (WebPAnimDecoderHasMoreFrames (dec)) {
    uint8_t *buf;
    int ts;

    if (!WebPAnimDecoderGetNext (dec, &buf, &ts)) {
      n = -1;
      break;
    }
    if (frame && n == want) {
      *frame = malloc ((size_t) *w * *h * 4);
      memcpy (*frame, buf, (size_t) *w * *h * 4);
    }
    n++;
  }
  /* The frame count the container states agrees with what decodes. */
  if (n >= 0 && (int) info.frame_count != n)
    n = -1;
  WebPAnimDecoderDelete (dec);
  return n;
}

static int
check_file (const char *path, int want_frames, int want_w, int want_h)
{
  FILE *f = fopen (path, "rb");
  uint8_t *data;
  long size;
  int n, w = 0, h = 0;

  if (!f) {
    fprintf (stderr, "cannot open %s\n", path);
    return 1;
  }
  fseek (f, 0, SEEK_END);
  size = ftell (f);
  fseek (f, 0, SEEK_SET);
  data = malloc ((size_t) size);
  if (fread (data, 1, (size_t) size, f) != (size_t) size) {
    fclose (f);
    free (data);
    return 1;
  }
  fclose (f);
  n = decode (data, (size_t) size, &w, &h, 0, NULL);
  free (data);
  printf ("%s: %d frames of %dx%d\n", path, n, w, h);
  if (n != want_frames || (want_w && (w != want_w || h != want_h)))
    return 1;
  return 0;
}

int
main (int argc, char **argv)
{
  enum { G = 8, CELL = 4, SIDE = G * CELL, STEPS = 6 };
  ts_image *img;
  ts_image_meta meta;
  int32_t codes[G * G];
  uint16_t reveal[G * G];
  float conf[G * G];
  uint8_t palette[G * G * 3];
  uint8_t *data = NULL, *frame = NULL;
  size_t size = 0;
  char err[256];
  int w, h, k = 3;

  if (argc >= 3)
    return check_file (argv[1], atoi (argv[2]), argc >= 5 ? atoi (argv[3]) : 0, argc >= 5 ? atoi (argv[4]) : 0);

  img = ts_image_new (SIDE, SIDE, NULL);
  for (int i = 0; i < SIDE * SIDE * 3; i++)
    img->pixels[i] = (uint8_t) (i * 7 % 251); /* never the mask grey in a whole cell */
  ts_image_meta_init (&meta);
  for (int i = 0; i < G * G; i++) {
    codes[i] = i;
    reveal[i] = (uint16_t) (1 + i % STEPS); /* every step reveals some */
    conf[i] = 0.5f;
    palette[3 * i] = (uint8_t) (i * 4);
    palette[3 * i + 1] = 200;
    palette[3 * i + 2] = 10;
  }
  meta.steps = STEPS;
  meta.traj_grid_h = meta.traj_grid_w = G;
  meta.traj_codes = codes;
  meta.traj_reveal_step = reveal;
  meta.traj_confidence = conf;
  CHECK (tessera_unmask_n_steps (&meta) == STEPS);

  /* The picture style: STEPS frames; frame k grey exactly where tokens came later. */
  CHECK (tessera_unmask_encode_webp (img, &meta, TESSERA_UNMASK_PICTURE, NULL, 0, 100, &data, &size, err,
                                     sizeof err));
  CHECK (decode (data, size, &w, &h, k - 1, &frame) == STEPS);
  CHECK (w == SIDE && h == SIDE);
  for (int i = 0; frame && i < G * G; i++) {
    int x = (i % G) * CELL + 1, y = (i / G) * CELL + 1;
    const uint8_t *p = frame + ((size_t) y * SIDE + x) * 4;
    const uint8_t *q = img->pixels + ((size_t) y * SIDE + x) * 3;

    if (reveal[i] > k)
      CHECK (p[0] == TESSERA_UNMASK_GREY && p[1] == TESSERA_UNMASK_GREY && p[2] == TESSERA_UNMASK_GREY);
    else
      CHECK (p[0] == q[0] && p[1] == q[1] && p[2] == q[2]); /* lossless */
  }
  free (frame);
  frame = NULL;
  /* The last frame is the picture. */
  CHECK (decode (data, size, &w, &h, STEPS - 1, &frame) == STEPS);
  for (int i = 0; frame && i < SIDE * SIDE; i++)
    CHECK (memcmp (frame + 4 * i, img->pixels + 3 * i, 3) == 0);
  free (frame);
  frame = NULL;
  free (data);

  /* The codebook style with a palette: flat cells of the code's colour. */
  CHECK (tessera_unmask_encode_webp (img, &meta, TESSERA_UNMASK_CODEBOOK, palette, G * G, 100, &data, &size, err,
                                     sizeof err));
  CHECK (decode (data, size, &w, &h, STEPS - 1, &frame) == STEPS);
  for (int i = 0; frame && i < G * G; i++)
    for (int y = 0; y < CELL; y++)
      for (int x = 0; x < CELL; x++)
        CHECK (memcmp (frame + ((size_t) ((i / G) * CELL + y) * SIDE + (i % G) * CELL + x) * 4, palette + 3 * i, 3)
               == 0);
  free (frame);
  free (data);

  /* A step that revealed nothing (step 3 here) is merged into the frame before it. */
  for (int i = 0; i < G * G; i++)
    if (reveal[i] == 3)
      reveal[i] = 4;
  CHECK (tessera_unmask_encode_webp (img, &meta, TESSERA_UNMASK_PICTURE, NULL, 0, 100, &data, &size, err,
                                     sizeof err));
  CHECK (decode (data, size, &w, &h, 0, NULL) == STEPS - 1);
  free (data);
  data = NULL;

  /* No trajectory: refused with a message. */
  meta.traj_grid_h = meta.traj_grid_w = 0;
  err[0] = 0;
  CHECK (!tessera_unmask_encode_webp (img, &meta, TESSERA_UNMASK_PICTURE, NULL, 0, 100, &data, &size, err,
                                      sizeof err));
  CHECK (data == NULL && strstr (err, "trajectory") != NULL);

  ts_image_free (img);
  if (failures)
    fprintf (stderr, "%d checks failed\n", failures);
  else
    printf ("ok: %d frames decode as expected\n", STEPS);
  return failures ? 1 : 0;
}
