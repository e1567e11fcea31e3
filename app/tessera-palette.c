/* SPDX-License-Identifier: MIT
 *
 * tessera-palette.c — the per-code colour table of the live preview and its cache. The
 * codes are decoded together, a few grids of about an image's size holding a small block
 * of each code, and the colour of each block's centre cell is kept (see
 * tessera_palette_decode_chunk). The table is cached under
 * $XDG_CACHE_HOME/tessera/palettes, keyed by the model path and the mtimes and sizes of
 * its vqvae/ files. TesseraWorker calls these on its engine thread, right after a load.
 */
#include "tessera-palette.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

/* 002: centre cells of per-code blocks decoded together (001 decoded each code alone). */
#define PALETTE_MAGIC "TSPAL002"

/* g_ptr_array_sort passes pointers to the elements. */
static int
compare_names (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *) a, *(char *const *) b);
}

char *
tessera_palette_cache_path (const char *model_dir, int n_codes)
{
  g_autofree char *vq_dir = g_build_filename (model_dir, "vqvae", NULL);
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (GDir) d = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *canonical = g_canonicalize_filename (model_dir, NULL);
  g_autofree char *file = NULL;
  const char *name;

  g_checksum_update (sum, (const guchar *) canonical, -1);
  d = g_dir_open (vq_dir, 0, NULL);
  while (d && (name = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (vq_dir, names->pdata[i], NULL);
      g_autofree char *line = NULL;
      GStatBuf st;

      if (g_stat (path, &st) != 0)
        continue;
      line = g_strdup_printf ("\n%s %" G_GINT64_FORMAT " %" G_GINT64_FORMAT, (char *) names->pdata[i],
                              (gint64) st.st_mtime, (gint64) st.st_size);
      g_checksum_update (sum, (const guchar *) line, -1);
    }
  file = g_strdup_printf ("%s-%d.rgb", g_checksum_get_string (sum), n_codes);
  return g_build_filename (g_get_user_cache_dir (), "tessera", "palettes", file, NULL);
}

GBytes *
tessera_palette_read_cache (const char *path, int n_codes)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  gsize header = strlen (PALETTE_MAGIC);

  if (!g_file_get_contents (path, &data, &len, NULL))
    return NULL;
  if (len != header + (gsize) n_codes * 3 || memcmp (data, PALETTE_MAGIC, header) != 0)
    {
      g_debug ("palette cache %s has the wrong size or magic; recomputing", path);
      return NULL;
    }
  return g_bytes_new (data + header, (gsize) n_codes * 3);
}

void
tessera_palette_write_cache (const char *path, GBytes *palette)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr (GByteArray) out = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  gsize len;
  const guint8 *rgb = g_bytes_get_data (palette, &len);

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      g_debug ("cannot create %s: %s", dir, g_strerror (errno));
      return;
    }
  g_byte_array_append (out, (const guint8 *) PALETTE_MAGIC, strlen (PALETTE_MAGIC));
  g_byte_array_append (out, rgb, len);
  if (!g_file_set_contents (path, (const char *) out->data, out->len, &error))
    g_debug ("cannot write the palette cache: %s", error->message);
}

/* The cost of the table is the VQ decoder's, and that is per pixel: decoding each code as
 * its own 1x1 grid (one call per code) costs as much as decoding all of them side by side
 * in one grid, about 8192 tokens' worth of decoding for Meissonic, or two 1024 px images.
 * On two CPU cores that is minutes (measured: 11 s per 16x16 tokens with the real
 * decoder), on a GPU about a second. So the table is computed in chunks of
 * TESSERA_PALETTE_CHUNK x TESSERA_PALETTE_CHUNK codes, one decode each, after the model
 * is ready; between chunks the worker's job yields to any other job waiting (a generation
 * does not wait for the table, it starts within one chunk), checks for cancellation and
 * posts the table so far to the window. Codes not reached yet keep a fallback grey.
 *
 * Each code fills a PALETTE_TILE x PALETTE_TILE block of copies of itself and the mean
 * colour of the block's centre cell is kept. With one copy per code the neighbouring
 * cells bleed into each other through the decoder's stacked 3x3 convs and upsampling, and
 * the codes of one grid share GroupNorm statistics. That is acceptable for a preview: a
 * token's colour inside a real image depends on its neighbours in the same way, and the
 * final decode replaces the preview. Blocks of 3x3 copies would cut the bleed but cost
 * nine times as much decoding, so a tile of 1 is used. */
#define PALETTE_TILE 1

/* Darker or lighter by code, so that tokens revealed before their colour is known still
 * show as a texture (masked tokens are hatched). */
void
tessera_palette_fill_fallback (guint8 *rgb, int n_codes)
{
  for (int code = 0; code < n_codes; code++)
    {
      guint32 h = (guint32) code * 2654435761u;
      guint8 v = (guint8) (0x70 + (h >> 24) % 0x30);

      rgb[3 * code] = rgb[3 * code + 1] = rgb[3 * code + 2] = v;
    }
}

gboolean
tessera_palette_decode_chunk (ts_model *model, guint8 *rgb, int first, int count, GError **error)
{
  int f = (int) ts_model_vae_scale_factor (model);
  int cols = 1, rows, grid_w, grid_h;
  g_autoptr (ts_image) img = NULL;
  g_autofree int32_t *tokens = NULL;
  ts_error err;

  while (cols * cols < count)
    cols++;
  rows = (count + cols - 1) / cols;
  grid_w = cols * PALETTE_TILE;
  grid_h = rows * PALETTE_TILE;
  tokens = g_new (int32_t, (gsize) grid_w * grid_h);
  /* Slots past the last code (only in the last chunk) repeat codes of the same chunk
   * rather than leaving holes. */
  for (int gy = 0; gy < grid_h; gy++)
    for (int gx = 0; gx < grid_w; gx++)
      tokens[(gsize) gy * grid_w + gx] = first + ((gy / PALETTE_TILE) * cols + gx / PALETTE_TILE) % count;
  img = ts_model_decode (model, tokens, grid_h, grid_w, &err);
  if (!img)
    return tessera_engine_error_from_ts (&err, error), FALSE;
  g_assert (img->width == (uint32_t) (grid_w * f) && img->height == (uint32_t) (grid_h * f));
  for (int k = 0; k < count; k++)
    {
      /* The centre cell of code k's block, in pixels. */
      gsize x0 = (gsize) ((k % cols) * PALETTE_TILE + PALETTE_TILE / 2) * f;
      gsize y0 = (gsize) ((k / cols) * PALETTE_TILE + PALETTE_TILE / 2) * f;
      guint64 sum[3] = { 0, 0, 0 };
      gsize n_px = (gsize) f * f;

      for (gsize y = y0; y < y0 + (gsize) f; y++)
        for (gsize x = x0; x < x0 + (gsize) f; x++)
          for (int c = 0; c < 3; c++)
            sum[c] += img->pixels[3 * (y * img->width + x) + c];
      for (int c = 0; c < 3; c++)
        rgb[3 * (first + k) + c] = (guint8) ((sum[c] + n_px / 2) / n_px);
    }
  return TRUE;
}
