/* SPDX-License-Identifier: MIT
 *
 * ts-vq — the VQ-VAE stage (diffusers `VQModel`, v0.31): the last step of text-to-image
 * turns the sampled token grid into pixels (codebook lookup → post_quant_conv → decoder),
 * and img2img/inpainting go the other way (encoder → quant_conv → nearest codebook entry).
 * Compute runs through a ts_backend in fp32; weights are uploaded once from the checkpoint
 * (F32 or the fp16 variant).
 *
 * Thread-safety: Unsafe — one thread at a time per ts_vq (the backend is shared state too).
 */
#ifndef TS_VQ_H
#define TS_VQ_H

#include "model/ts-safetensors.h"
#include "stages/ts-stage.h"
#include "stages/ts-vq-config.h"

typedef struct ts_vq ts_vq;

/* Uploads every encoder, decoder, quant_conv/post_quant_conv and codebook weight the config
 * implies from `weights` (the vqvae checkpoint, keys as in the official state_dict). The
 * config and weights need not outlive the call; `be` must outlive the ts_vq. NULL on
 * failure: TS_ERR_FORMAT naming a missing tensor or one whose shape or dtype does not match
 * the config, TS_ERR_UNSUPPORTED for mid-block attention. */
ts_vq *ts_vq_new (const ts_backend *be, const ts_vq_config *cfg, const ts_st_set *weights,
                  ts_error *err);
/* Frees the activation buffers (the band temporaries of the decoder and the encoder),
 * which the next call allocates again, so a loaded model does not hold them between
 * generations. NULL-safe. */
void ts_vq_trim (ts_vq *vq);

/* NULL-safe; frees the backend weights and scratch buffers. */
void ts_vq_free (ts_vq *vq);

const ts_vq_config *ts_vq_get_config (const ts_vq *vq);
/* Pixels per token along each axis: 2^(number of blocks - 1). */
int ts_vq_scale_factor (const ts_vq *vq);

/* Decodes token grids ids [batch, h, w] (codebook indices) into the raw decoder output
 * image [batch, out_channels, h·f, w·f] (f = ts_vq_scale_factor), not yet clipped. With a
 * capture hook it reports "mid.quant", "mid.post_quant_conv_out", "mid.dec_conv_in_out",
 * "mid.dec_mid_block_out", "mid.dec_up_block<i>_out" and "mid.dec_conv_norm_out" (before
 * its SiLU), all NCHW. TS_ERR_INVALID_ARG for a non-positive size or an id outside
 * [0, num_vq_embeddings). */
ts_status ts_vq_decode (ts_vq *vq, const int32_t *ids, int batch, int h, int w, float *image,
                        const ts_capture *cap, ts_error *err);

/* The pipeline's post-processing (Meissonic pipeline + diffusers VaeImageProcessor with
 * do_normalize=False): clip to [0, 1], then (x·255).round() in fp32 with numpy's
 * round-half-to-even, as uint8; NCHW float [batch, 3, height, width] in, interleaved RGB
 * [batch, height, width, 3] out. NaN becomes 0. */
void ts_vq_to_uint8 (const float *image_nchw, int batch, int height, int width, uint8_t *rgb);
/* Checks a decoded image (NCHW float [batch, 3, height, width]) for NaN and Inf before
 * ts_vq_to_uint8() would turn them into black or white pixels: TS_ERR_FORMAT counting them
 * and naming the first (channel and pixel), which points at the VQ-VAE's weights. */
ts_status ts_vq_check_finite (const float *image_nchw, int batch, int height, int width,
                              ts_error *err);

/* Encodes images [batch, in_channels, height, width] with values in [0, 1] (no
 * normalisation, as the pipeline's image processor does) into codebook indices
 * ids [batch, height/f, width/f], nearest entry by Euclidean distance, the lowest index on
 * ties. latents (nullable) receives the quant_conv output [batch, vq_embed_dim, height/f,
 * width/f]. With a capture hook it reports "mid.enc_conv_in_out", "mid.enc_down_block<i>_out",
 * "mid.enc_mid_block_out", "mid.enc_conv_out_out", "out.quantized" (the
 * chosen entries, NCHW) and "mid.distance_margin_f64" (second-best minus best distance
 * per position, computed in double from the latents). TS_ERR_INVALID_ARG when height or
 * width is not a positive multiple of f. */
ts_status ts_vq_encode (ts_vq *vq, const float *image, int batch, int height, int width,
                        int32_t *ids, float *latents, const ts_capture *cap, ts_error *err);

#endif /* TS_VQ_H */
