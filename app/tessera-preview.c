/* SPDX-License-Identifier: MIT
 *
 * tessera-preview.c — step grid → texture. GTK 4.8 cannot scale a texture with nearest
 * filtering (gtk_snapshot_append_scaled_texture is 4.10), so every token is drawn as a
 * block of whole pixels, about 512 px in all, and linear scaling of that stays sharp.
 */
#include "tessera-preview.h"

#include <math.h>
#include <string.h>

#define PREVIEW_TARGET_PX 512
#define HATCH_DARK 0x48
#define HATCH_LIGHT 0x5c

TesseraPreviewMode
tessera_preview_mode_from_string (const char *nick)
{
  if (g_strcmp0 (nick, "predicted") == 0)
    return TESSERA_PREVIEW_PREDICTED;
  if (g_strcmp0 (nick, "confidence") == 0)
    return TESSERA_PREVIEW_CONFIDENCE;
  return TESSERA_PREVIEW_TOKENS;
}

/* A perceptually ordered ramp (dark violet → orange → pale yellow, after matplotlib's
 * "inferno"), sampled at 5 stops and interpolated linearly. */
void
tessera_preview_heat_colour (double t, guint8 rgb[3])
{
  static const guint8 stops[5][3] = {
    { 0x0c, 0x07, 0x2b }, { 0x56, 0x10, 0x6e }, { 0xbb, 0x37, 0x54 }, { 0xf9, 0x8c, 0x0a }, { 0xfc, 0xff, 0xa4 },
  };
  double x = CLAMP (t, 0.0, 1.0) * 4.0;
  int i = MIN ((int) x, 3);
  double f = x - i;

  for (int c = 0; c < 3; c++)
    rgb[c] = (guint8) lround (stops[i][c] * (1.0 - f) + stops[i + 1][c] * f);
}

static void
code_colour (GBytes *palette, int32_t code, guint8 rgb[3])
{
  gsize n;
  const guint8 *p = g_bytes_get_data (palette, &n);

  if (code >= 0 && (gsize) code * 3 + 2 < n)
    memcpy (rgb, p + 3 * code, 3);
  else
    rgb[0] = rgb[1] = rgb[2] = 0x80;
}

GdkTexture *
tessera_preview_render (const TesseraStep *step, TesseraPreviewMode mode, GBytes *palette)
{
  int gw = step->grid_w, gh = step->grid_h;
  int cell = MAX (2, (PREVIEW_TARGET_PX + MAX (gw, gh) - 1) / MAX (gw, gh));
  int w = gw * cell, h = gh * cell;
  gsize stride = (gsize) w * 3;
  guint8 *px = g_malloc ((gsize) h * stride);
  float lo = INFINITY, hi = -INFINITY;
  g_autoptr (GBytes) bytes = NULL;
  GdkTexture *texture;

  g_return_val_if_fail (palette != NULL, NULL);

  if (mode == TESSERA_PREVIEW_CONFIDENCE)
    for (int i = 0; i < gw * gh; i++)
      if (isfinite (step->confidence[i]))
        {
          lo = MIN (lo, step->confidence[i]);
          hi = MAX (hi, step->confidence[i]);
        }

  for (int gy = 0; gy < gh; gy++)
    for (int gx = 0; gx < gw; gx++)
      {
        int i = gy * gw + gx;
        gboolean masked = step->tokens[i] == step->mask_token_id;
        guint8 rgb[3];
        gboolean hatch = FALSE;

        switch (mode)
          {
          case TESSERA_PREVIEW_TOKENS:
            hatch = masked;
            if (!masked)
              code_colour (palette, step->tokens[i], rgb);
            break;
          case TESSERA_PREVIEW_PREDICTED:
            code_colour (palette, masked ? step->predicted[i] : step->tokens[i], rgb);
            break;
          case TESSERA_PREVIEW_CONFIDENCE:
            {
              float c = step->confidence[i];
              double t = !isfinite (c) ? (c > 0 ? 1.0 : 0.0) : hi > lo ? (c - lo) / (hi - lo) : 1.0;
              tessera_preview_heat_colour (t, rgb);
            }
            break;
          }

        for (int y = 0; y < cell; y++)
          {
            guint8 *row = px + (gsize) (gy * cell + y) * stride + (gsize) gx * cell * 3;

            for (int x = 0; x < cell; x++)
              {
                if (hatch)
                  {
                    int X = gx * cell + x, Y = gy * cell + y;
                    guint8 v = ((X + Y) / 3) % 2 ? HATCH_LIGHT : HATCH_DARK;
                    row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = v;
                  }
                else
                  memcpy (row + 3 * x, rgb, 3);
              }
          }
      }

  bytes = g_bytes_new_take (px, (gsize) h * stride);
  texture = gdk_memory_texture_new (w, h, GDK_MEMORY_R8G8B8, bytes, stride);
  /* So that a canvas showing it can add the legend (TesseraCanvas). */
  if (mode == TESSERA_PREVIEW_CONFIDENCE)
    g_object_set_data (G_OBJECT (texture), "tessera-heat-map", GINT_TO_POINTER (1));
  return texture;
}

gboolean
tessera_preview_is_heat_map (GdkPaintable *paintable)
{
  g_return_val_if_fail (GDK_IS_PAINTABLE (paintable), FALSE);
  return g_object_get_data (G_OBJECT (paintable), "tessera-heat-map") != NULL;
}

GdkTexture *
tessera_texture_from_image (const ts_image *image)
{
  g_autoptr (GBytes) bytes = NULL;

  g_return_val_if_fail (image != NULL, NULL);
  bytes = g_bytes_new (image->pixels, (gsize) image->width * image->height * 3);
  return gdk_memory_texture_new ((int) image->width, (int) image->height, GDK_MEMORY_R8G8B8, bytes,
                                 (gsize) image->width * 3);
}
