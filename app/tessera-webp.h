/* SPDX-License-Identifier: MIT
 *
 * tessera-webp.h — the unmasking of an image as an animated WebP (libwebp's
 * WebPAnimEncoder), from the image and the trajectory in its metadata: one frame per
 * step, each showing the tokens revealed by then. Plain C (no GLib), shared by the app's
 * export and `tessera-cli animate`. Thread-safety: safe (no shared state).
 */
#ifndef TESSERA_WEBP_H
#define TESSERA_WEBP_H

#include <stddef.h>
#include <stdint.h>

#include "tessera.h"

typedef enum {
  TESSERA_UNMASK_PICTURE,  /* the decoded final picture, tokens not yet revealed grey */
  TESSERA_UNMASK_CODEBOOK, /* each revealed token a flat cell of its code's colour */
} tessera_unmask_style;

/* The grey of a token not yet revealed. */
#define TESSERA_UNMASK_GREY 0x80

/* How many steps the unmasking of meta's trajectory has: the larger of meta->steps and
 * the highest reveal step; 0 without a trajectory. */
int tessera_unmask_n_steps (const ts_image_meta *meta);

/* Frame `step` (0 .. n_steps; tokens with reveal step 0, never masked, show from step 0)
 * into rgb (image->width * image->height * 3 bytes). palette: n_codes RGB triplets, the
 * codebook's colours (the app's preview table); NULL in the codebook style takes each
 * token's colour as the mean of its cell in the final picture. */
void tessera_unmask_render (const ts_image *image, const ts_image_meta *meta, tessera_unmask_style style,
                            const uint8_t *palette, int n_codes, int step, uint8_t *rgb);

/* Encodes the frames of steps 1 .. n_steps, frame_ms each (the last held 1 s longer), as
 * a lossless animated WebP that loops. *out gets the file's bytes (free() them).
 * libwebp merges a frame identical to the one before into it (a step that revealed
 * nothing). Returns false with a message in err (err_size bytes) when the image has no
 * trajectory, its grid does not divide the image, or libwebp fails. */
bool tessera_unmask_encode_webp (const ts_image *image, const ts_image_meta *meta, tessera_unmask_style style,
                                 const uint8_t *palette, int n_codes, int frame_ms, uint8_t **out,
                                 size_t *out_size, char *err, size_t err_size);

#endif
