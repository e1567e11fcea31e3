/* SPDX-License-Identifier: MIT
 *
 * tessera-webp.c — the unmasking as an animated WebP (see the header).
 */
#include "tessera-webp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <webp/encode.h>
#include <webp/mux.h>

int
tessera_unmask_n_steps (const ts_image_meta *meta)
{
  int n = 0;

  if (!meta || !meta->traj_grid_h || !meta->traj_grid_w || !meta->traj_reveal_step)
    return 0;
  for (uint32_t i = 0; i < meta->traj_grid_h * meta->traj_grid_w; i++)
    if (meta->traj_reveal_step[i] > n)
      n = meta->traj_reveal_step[i];
  return (int) meta->steps > n ? (int) meta->steps : n;
}

/* The mean colour of token i's cell in the final picture. */
static void
cell_mean (const ts_image *image, const ts_image_meta *meta, uint32_t i, uint8_t rgb[3])
{
  uint32_t gw = meta->traj_grid_w, cw = image->width / gw, ch = image->height / meta->traj_grid_h;
  uint32_t x0 = (i % gw) * cw, y0 = (i / gw) * ch;
  uint64_t sum[3] = { 0, 0, 0 };

  for (uint32_t y = y0; y < y0 + ch; y++)
    for (uint32_t x = x0; x < x0 + cw; x++)
      for (int c = 0; c < 3; c++)
        sum[c] += image->pixels[((size_t) y * image->width + x) * 3 + c];
  for (int c = 0; c < 3; c++)
    rgb[c] = (uint8_t) ((sum[c] + (uint64_t) cw * ch / 2) / ((uint64_t) cw * ch));
}

void
tessera_unmask_render (const ts_image *image, const ts_image_meta *meta, tessera_unmask_style style,
                       const uint8_t *palette, int n_codes, int step, uint8_t *rgb)
{
  uint32_t gw = meta->traj_grid_w, gh = meta->traj_grid_h;
  uint32_t cw = image->width / gw, ch = image->height / gh;

  for (uint32_t i = 0; i < gw * gh; i++)
    {
      uint16_t r = meta->traj_reveal_step[i];
      int shown = r == 0 || r <= step;
      uint32_t x0 = (i % gw) * cw, y0 = (i / gw) * ch;
      uint8_t flat[3] = { TESSERA_UNMASK_GREY, TESSERA_UNMASK_GREY, TESSERA_UNMASK_GREY };
      int copy = shown && style == TESSERA_UNMASK_PICTURE;

      if (shown && style == TESSERA_UNMASK_CODEBOOK)
        {
          int32_t code = meta->traj_codes[i];

          if (palette && code >= 0 && code < n_codes)
            memcpy (flat, palette + 3 * (size_t) code, 3);
          else
            cell_mean (image, meta, i, flat);
        }
      for (uint32_t y = y0; y < y0 + ch; y++)
        {
          size_t at = ((size_t) y * image->width + x0) * 3;

          if (copy)
            memcpy (rgb + at, image->pixels + at, (size_t) cw * 3);
          else
            for (uint32_t x = 0; x < cw; x++)
              memcpy (rgb + at + (size_t) x * 3, flat, 3);
        }
    }
}

static bool
fail (char *err, size_t err_size, const char *message)
{
  snprintf (err, err_size, "%s", message);
  return false;
}

bool
tessera_unmask_encode_webp (const ts_image *image, const ts_image_meta *meta, tessera_unmask_style style,
                            const uint8_t *palette, int n_codes, int frame_ms, uint8_t **out, size_t *out_size,
                            char *err, size_t err_size)
{
  int n_steps = tessera_unmask_n_steps (meta);
  WebPAnimEncoderOptions options;
  WebPAnimEncoder *enc = NULL;
  WebPConfig config;
  WebPPicture pic;
  WebPData data = { 0 };
  uint8_t *rgb = NULL;
  int w, h, t = 0;
  bool ok = false;

  *out = NULL;
  *out_size = 0;
  if (!image || n_steps == 0 || !meta->traj_codes)
    return fail (err, err_size, "the image records no trajectory");
  if (image->width % meta->traj_grid_w || image->height % meta->traj_grid_h)
    return fail (err, err_size, "the trajectory's token grid does not divide the image");
  w = (int) image->width;
  h = (int) image->height;
  if (!WebPAnimEncoderOptionsInit (&options) || !WebPConfigInit (&config) || !WebPPictureInit (&pic))
    return fail (err, err_size, "libwebp: version mismatch");
  options.anim_params.loop_count = 0;
  config.lossless = 1;
  config.quality = 50;
  pic.use_argb = 1;
  pic.width = w;
  pic.height = h;
  rgb = malloc ((size_t) w * h * 3);
  enc = WebPAnimEncoderNew (w, h, &options);
  if (!rgb || !enc || !WebPPictureAlloc (&pic))
    {
      fail (err, err_size, "out of memory");
      goto out;
    }
  for (int step = 1; step <= n_steps; step++)
    {
      tessera_unmask_render (image, meta, style, palette, n_codes, step, rgb);
      if (!WebPPictureImportRGB (&pic, rgb, w * 3) || !WebPAnimEncoderAdd (enc, &pic, t, &config))
        {
          snprintf (err, err_size, "libwebp: frame %d: %s", step, WebPAnimEncoderGetError (enc));
          goto out;
        }
      t += frame_ms + (step == n_steps ? 1000 : 0);
    }
  if (!WebPAnimEncoderAdd (enc, NULL, t, NULL) || !WebPAnimEncoderAssemble (enc, &data))
    {
      snprintf (err, err_size, "libwebp: %s", WebPAnimEncoderGetError (enc));
      goto out;
    }
  *out = malloc (data.size);
  if (!*out)
    {
      fail (err, err_size, "out of memory");
      goto out;
    }
  memcpy (*out, data.bytes, data.size);
  *out_size = data.size;
  ok = true;
out:
  WebPDataClear (&data);
  WebPPictureFree (&pic);
  WebPAnimEncoderDelete (enc);
  free (rgb);
  return ok;
}
