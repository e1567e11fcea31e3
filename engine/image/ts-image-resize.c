/* SPDX-License-Identifier: MIT
 *
 * ts-image-resize — Pillow's LANCZOS resize of 8-bit images, bit for bit. The official
 * image pipelines (src/pipeline_img2img.py, src/pipeline_inpaint.py) resize the input image
 * and the inpainting mask with PIL's Image.resize(size, Image.LANCZOS) through diffusers'
 * VaeImageProcessor, and which tokens get repainted depends on the exact uint8 values that
 * come out (the mask is thresholded at 128 after the resize), so this repeats Pillow 9.4's
 * libImaging/Resample.c as the golden README describes it:
 *
 *   - separable: a horizontal pass, then a vertical one; a pass runs only when its side
 *     changes, and the horizontal pass only produces the rows the vertical one reads;
 *   - output pixel i of a pass: center = (i + 0.5) * in / out, filter scale
 *     s = max (in / out, 1), support 3 s; taps j = (int) (center - 3s + 0.5) ...
 *     (int) (center + 3s + 0.5) - 1 clipped to the image; weight
 *     lanczos3 ((j - center + 0.5) / s) = sinc (x) sinc (x / 3), normalised to sum 1;
 *   - the weights become 22-bit fixed point, rounded half away from zero; each pass sums
 *     integers from 2^21 and stores clip (acc >> 22, 0, 255), so the horizontal result is
 *     uint8 again before the vertical pass.
 */
#include "image/ts-image-internal.h"

#include "core/ts-common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)
#define LANCZOS_SUPPORT 3.0

static double
sinc (double x)
{
  if (x == 0.0)
    return 1.0;
  x = x * M_PI;
  return sin (x) / x;
}

static double
lanczos (double x)
{
  if (-3.0 <= x && x < 3.0)
    return sinc (x) * sinc (x / 3.0);
  return 0.0;
}

/* One pass's taps: for each output index its first input index and tap count (bounds) and
 * ksize fixed-point weights. Returns ksize, or 0 when out of memory. */
static int
precompute_coeffs (uint32_t in_size, uint32_t out_size, int **bounds_out, int32_t **kk_out)
{
  double scale = (double) in_size / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = LANCZOS_SUPPORT * filterscale;
  int ksize = (int) ceil (support) * 2 + 1;
  double *pre = malloc ((size_t) out_size * ksize * sizeof *pre);
  int32_t *kk = malloc ((size_t) out_size * ksize * sizeof *kk);
  int *bounds = malloc ((size_t) out_size * 2 * sizeof *bounds);

  if (!pre || !kk || !bounds) {
    free (pre);
    free (kk);
    free (bounds);
    return 0;
  }
  for (uint32_t xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale;
    double ww = 0.0, ss = 1.0 / filterscale;
    int xmin = (int) (center - support + 0.5);
    int xmax = (int) (center + support + 0.5);
    double *k = pre + (size_t) xx * ksize;
    int x;

    if (xmin < 0)
      xmin = 0;
    if (xmax > (int) in_size)
      xmax = (int) in_size;
    xmax -= xmin;
    for (x = 0; x < xmax; x++) {
      double w = lanczos ((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (x = 0; x < xmax; x++)
      if (ww != 0.0)
        k[x] /= ww;
    for (; x < ksize; x++)
      k[x] = 0;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  for (size_t i = 0; i < (size_t) out_size * ksize; i++)
    kk[i] = pre[i] < 0 ? (int32_t) (-0.5 + pre[i] * (1 << PRECISION_BITS))
                       : (int32_t) (0.5 + pre[i] * (1 << PRECISION_BITS));
  free (pre);
  *bounds_out = bounds;
  *kk_out = kk;
  return ksize;
}

static uint8_t
clip8 (int32_t in)
{
  if (in >= (1 << PRECISION_BITS << 8))
    return 255;
  if (in <= 0)
    return 0;
  return (uint8_t) (in >> PRECISION_BITS);
}

static ts_status
resize_u8 (const uint8_t *in, uint32_t in_w, uint32_t in_h, int channels,
                            uint8_t *out, uint32_t out_w, uint32_t out_h, ts_error *err)
{
  int *bh = NULL, *bv = NULL;
  int32_t *kh = NULL, *kv = NULL;
  int ksh = 0, ksv = 0, first = 0, last = (int) in_h;
  uint8_t *tmp = NULL;
  const uint8_t *src = in;
  uint32_t src_h = in_h;
  bool need_h = out_w != in_w, need_v = out_h != in_h;
  ts_status st = TS_OK;

  if (!in || !out || in_w == 0 || in_h == 0 || out_w == 0 || out_h == 0 || channels < 1
      || channels > 4)
    return ts_error_set (err, TS_ERR_INVALID_ARG, "resize: bad arguments");
  if (!need_h && !need_v) {
    memcpy (out, in, (size_t) in_w * in_h * channels);
    return TS_OK;
  }
  if (need_h && !(ksh = precompute_coeffs (in_w, out_w, &bh, &kh)))
    goto nomem;
  if (!(ksv = precompute_coeffs (in_h, out_h, &bv, &kv)))
    goto nomem;

  if (need_h) {
    /* Only the rows the vertical pass reads (all of them when it does not run). */
    if (need_v) {
      first = bv[0];
      last = bv[(out_h - 1) * 2] + bv[(out_h - 1) * 2 + 1];
      for (uint32_t i = 0; i < out_h; i++)
        bv[i * 2] -= first;
    }
    src_h = (uint32_t) (last - first);
    tmp = need_v ? malloc ((size_t) out_w * src_h * channels) : NULL;
    if (need_v && !tmp)
      goto nomem;
    uint8_t *dst = need_v ? tmp : out;
    for (uint32_t y = 0; y < src_h; y++) {
      const uint8_t *row = in + (size_t) (y + first) * in_w * channels;
      for (uint32_t xx = 0; xx < out_w; xx++) {
        int xmin = bh[xx * 2], xmax = bh[xx * 2 + 1];
        const int32_t *k = kh + (size_t) xx * ksh;
        for (int c = 0; c < channels; c++) {
          int32_t ss = 1 << (PRECISION_BITS - 1);
          for (int x = 0; x < xmax; x++)
            ss += (int32_t) row[(size_t) (x + xmin) * channels + c] * k[x];
          dst[((size_t) y * out_w + xx) * channels + c] = clip8 (ss);
        }
      }
    }
    if (!need_v)
      goto out;
    src = tmp;
  }

  {
    uint32_t w = need_h ? out_w : in_w;
    for (uint32_t yy = 0; yy < out_h; yy++) {
      int ymin = bv[yy * 2], ymax = bv[yy * 2 + 1];
      const int32_t *k = kv + (size_t) yy * ksv;
      for (uint32_t x = 0; x < w; x++)
        for (int c = 0; c < channels; c++) {
          int32_t ss = 1 << (PRECISION_BITS - 1);
          for (int y = 0; y < ymax; y++)
            ss += (int32_t) src[((size_t) (y + ymin) * w + x) * channels + c] * k[y];
          out[((size_t) yy * w + x) * channels + c] = clip8 (ss);
        }
    }
  }
  goto out;

nomem:
  st = ts_error_set (err, TS_ERR_NOMEM, "resize: out of memory for %ux%u -> %ux%u", in_w, in_h,
                     out_w, out_h);
out:
  free (tmp);
  free (bh);
  free (bv);
  free (kh);
  free (kv);
  return st;
}

ts_image *
ts_image_resize_lanczos (const ts_image *img, uint32_t width, uint32_t height, ts_error *err)
{
  ts_image *out;

  if (!img || !img->pixels) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "resize: no image");
    return NULL;
  }
  if (width > TS_IMAGE_MAX_SIDE || height > TS_IMAGE_MAX_SIDE
      || (uint64_t) width * height > TS_IMAGE_MAX_PIXELS) {
    ts_error_set (err, TS_ERR_INVALID_ARG, "resize: %ux%u is larger than an image may be", width,
                  height);
    return NULL;
  }
  out = ts_image_new (width, height, err);
  if (!out)
    return NULL;
  if (resize_u8 (img->pixels, img->width, img->height, 3, out->pixels, width,
                                  height, err) != TS_OK) {
    ts_image_free (out);
    return NULL;
  }
  return out;
}
