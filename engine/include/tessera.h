/* SPDX-License-Identifier: MIT
 *
 * tessera.h — the public API of the Tessera engine.
 *
 * The engine turns a text prompt into an image with Meissonic, a masked-image-modeling
 * transformer. It loads the official Hugging Face folder of MeissonFlow/Meissonic as it
 * is (diffusers layout, safetensors, config.json, tokenizer files). This is the only
 * header the app, the CLI and the app's tests include; everything else in engine/ is
 * internal.
 *
 * Usage:
 *
 *     ts_error err;
 *     ts_model_info *info = ts_model_info_load ("/path/to/Meissonic", TS_LOAD_DEFAULT, &err);
 *     if (!info) { fprintf (stderr, "%s\n", err.message); return 1; }
 *     printf ("%llu transformer parameters\n",
 *             (unsigned long long) ts_model_info_component (info, TS_COMPONENT_TRANSFORMER)->n_params);
 *     ts_model_info_free (info);
 *
 * Conventions: functions that can fail return ts_status (TS_OK = 0, errors are negative)
 * and take an optional `ts_error *err` last, filled on failure with the code and a
 * one-line English message naming the object. Constructors return NULL on failure.
 * Destructors are NULL-safe. Unless stated otherwise an object is "Thread-safety:
 * Unsafe": use it from one thread at a time; distinct objects may be used concurrently.
 */
#ifndef TESSERA_H
#define TESSERA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TS_VERSION_STRING "0.1.0"

/* ---- errors ------------------------------------------------------------------------ */

typedef enum {
  TS_OK = 0,
  TS_ERR_INVALID_ARG = -1, /* a caller passed something the API does not accept */
  TS_ERR_IO = -2,          /* a file could not be opened, read, mapped or written */
  TS_ERR_FORMAT = -3,      /* a file's contents break its format or the model's shapes */
  TS_ERR_NOMEM = -4,       /* out of host memory */
  TS_ERR_UNSUPPORTED = -5, /* valid, but not something this engine can do (yet) */
  TS_ERR_NOT_FOUND = -6,   /* a file, tensor or component is missing */
  TS_ERR_CANCELLED = -7,   /* the caller's abort callback asked to stop */
  TS_ERR_DEVICE = -8,      /* the compute device failed or was lost */
  TS_ERR_MISMATCH = -9,    /* a check against reference data failed */
} ts_status;

#define TS_ERROR_MESSAGE_MAX 2048

typedef struct {
  ts_status code;
  char message[TS_ERROR_MESSAGE_MAX];
} ts_error;

/* A short constant name for a status ("TS_ERR_FORMAT"). Never NULL. */
const char *ts_status_name (ts_status status);

/* ---- logging ----------------------------------------------------------------------- */

typedef enum {
  TS_LOG_ERROR = 0,
  TS_LOG_WARN = 1,
  TS_LOG_INFO = 2,
  TS_LOG_DEBUG = 3,
  TS_LOG_TRACE = 4,
} ts_log_level;

/* Receives every engine message at or above the threshold. Messages start with the
 * module ("safetensors: ") and have no trailing newline. May be called from any engine
 * thread; the handler must be thread-safe. */
typedef void (*ts_log_fn) (ts_log_level level, const char *message, void *user_data);

/* Installs a log handler (NULL restores the default: stderr) and the threshold (default
 * TS_LOG_WARN, or the value of TESSERA_LOG=error|warn|info|debug|trace). Thread-safety:
 * call before using the engine from several threads. */
void ts_log_set_handler (ts_log_fn fn, void *user_data);
void ts_log_set_level (ts_log_level level);
ts_log_level ts_log_get_level (void);

/* ---- tensors on disk --------------------------------------------------------------- */

typedef enum {
  TS_DTYPE_BOOL,
  TS_DTYPE_U8,
  TS_DTYPE_I8,
  TS_DTYPE_F8_E4M3,
  TS_DTYPE_F8_E5M2,
  TS_DTYPE_I16,
  TS_DTYPE_U16,
  TS_DTYPE_F16,
  TS_DTYPE_BF16,
  TS_DTYPE_I32,
  TS_DTYPE_U32,
  TS_DTYPE_F32,
  TS_DTYPE_I64,
  TS_DTYPE_U64,
  TS_DTYPE_F64,
  TS_DTYPE_COUNT
} ts_dtype;

/* The safetensors spelling ("F16"), or NULL for an out-of-range value. */
const char *ts_dtype_name (ts_dtype dtype);
/* Bytes per element (1 for BOOL and the F8 types), 0 for an out-of-range value. */
size_t ts_dtype_size (ts_dtype dtype);

/* ---- tokenizer (ts-tokenizer) --------------------------------------------------- */

/* ---- images and PNG metadata (ts-image) ------------------------------------------ */

/* Images are 8-bit RGB buffers. PNG files are read and written with libpng; the
 * generation parameters travel in two text chunks: `parameters`, in the exact format of
 * AUTOMATIC1111's web UI (so A1111, ComfyUI, Civitai and image viewers show them), and
 * `tessera`, the same values as JSON (exact: full UTF-8 prompts, 64-bit seeds). */

/* The largest image the PNG reader accepts (and the writer produces): at most
 * TS_IMAGE_MAX_SIDE pixels per side and TS_IMAGE_MAX_PIXELS pixels in all. */
#define TS_IMAGE_MAX_SIDE 16384u
#define TS_IMAGE_MAX_PIXELS (64u * 1024u * 1024u)

typedef struct {
  uint32_t width, height;
  uint8_t *pixels; /* width*height*3 bytes: R, G, B per pixel, row-major, top row first */
} ts_image;

/* A zero-filled (black) width x height image. Fails (NULL, TS_ERR_INVALID_ARG) for a zero
 * side and (TS_ERR_NOMEM) when the buffer cannot be allocated. Free with ts_image_free. */
ts_image *ts_image_new (uint32_t width, uint32_t height, ts_error *err);
void ts_image_free (ts_image *img);

/* How an image was made. All strings are UTF-8; NULL and "" both mean "not recorded".
 * Numbers that were not recorded hold the values ts_image_meta_init sets: 0 for the
 * integers, NaN for the doubles and -1 for strength (seed has no "unknown" value: a missing
 * seed reads as 0).
 *
 * Ownership: a struct filled by the engine (the PNG reader, ts_image_meta_from_*) owns its
 * strings; release them with ts_image_meta_clear. A struct you pass to the writer is only
 * read, so it may point at any strings you like (then do not call ts_image_meta_clear on it
 * unless you malloc'd them). */
typedef struct {
  char *prompt;
  char *negative_prompt;
  char *model;   /* model name, e.g. "Meissonic" */
  char *sampler; /* e.g. "MaskGIT" */
  char *backend; /* compute backend that ran the model, e.g. "cpu" */
  char *source;  /* file name of the source image (inpainting, image-to-image); NULL if none */
  char *version; /* software that made the image; NULL when writing means this engine,
                  * "Tessera " TS_VERSION_STRING */
  uint64_t seed;
  uint32_t steps;
  uint32_t width, height;        /* generation size (A1111's "Size: WxH") */
  uint32_t crop_top, crop_left;  /* micro-conditioning crop coordinates */
  double cfg;                    /* guidance scale (A1111's "CFG scale") */
  double temperature_start, temperature_end; /* sampler temperature schedule */
  double aesthetic_score;        /* micro-conditioning aesthetic score */
  double strength;               /* inpainting / image-to-image strength; < 0 when n/a */
} ts_image_meta;

/* Sets every field to "not recorded" (see above). Never fails. */
void ts_image_meta_init (ts_image_meta *meta);
/* Frees the strings and re-initialises the struct. NULL-safe. */
void ts_image_meta_clear (ts_image_meta *meta);

/* The A1111 infotext for meta (the text of the `parameters` chunk), malloc'd (free()), or
 * NULL when out of memory:
 *
 *     <prompt lines>
 *     Negative prompt: <negative prompt lines>      (omitted when empty)
 *     Steps: 48, Sampler: MaskGIT, CFG scale: 9, Seed: 42, Size: 1024x1024, ...
 *
 * The last line is "Key: value" pairs joined by ", "; a value that contains a comma, colon,
 * quote, control character or outer whitespace is written as a JSON string (A1111 quotes
 * commas, colons and newlines; quoting the rest keeps A1111's reader from altering the
 * value). Numbers use the C locale and the shortest text that reads back exactly. Keys, in
 * order, each omitted when not recorded: Steps, Sampler, CFG scale, Seed (always), Size,
 * Model, Temperature ("start-end"), Aesthetic score, Crop top, Crop left, Denoising
 * strength, Source image, Backend, Version (always). The format is lossy where A1111's is:
 * outer whitespace of each prompt line, empty leading prompt lines and lines that start
 * with "Negative prompt:" do not survive, and a line with fewer than three pairs (nothing
 * recorded but Seed and Version) reads back as prompt text. Thread-safety: safe. */
char *ts_image_meta_to_parameters (const ts_image_meta *meta);

/* Parses A1111 infotext (UTF-8) with A1111's rules (modules/infotext_utils.py,
 * parse_generation_parameters): the last line holds the parameters only if at least three
 * "Key: value" pairs are found in it, otherwise every line is prompt text. Known keys are
 * those listed above; other keys ("Model hash", ...) and values that do not parse as their
 * type are ignored. *meta is overwritten (its old strings are not freed). Fails with
 * TS_ERR_INVALID_ARG (NULL argument), TS_ERR_FORMAT (text is not valid UTF-8) or
 * TS_ERR_NOMEM, leaving *meta initialised and empty. Thread-safety: safe. */
ts_status ts_image_meta_from_parameters (const char *text, ts_image_meta *meta, ts_error *err);

/* The exact form: a JSON object {"format": 1, "prompt": ..., "seed": "<decimal string>", ...}
 * with the struct's field names as keys (seed as a string because JSON numbers cannot hold
 * every uint64_t; unrecorded values omitted). Every value survives exactly, doubles
 * included. malloc'd, NULL when out of memory. Thread-safety: safe. */
char *ts_image_meta_to_json (const ts_image_meta *meta);

/* Parses the JSON form. *meta is overwritten (its old strings are not freed). Fails with
 * TS_ERR_FORMAT (not JSON, not UTF-8, no "format", or a known key of the wrong type or
 * range, named in the message), TS_ERR_UNSUPPORTED ("format" newer than 1), TS_ERR_NOMEM or
 * TS_ERR_INVALID_ARG, leaving *meta initialised and empty. Unknown keys are ignored.
 * Thread-safety: safe. */
ts_status ts_image_meta_from_json (const char *json, ts_image_meta *meta, ts_error *err);

/* Encodes img as an 8-bit RGB PNG, with the `parameters` and `tessera` text chunks when meta
 * is non-NULL (none when it is NULL). On success *out_data is a malloc'd buffer of *out_size
 * bytes (free()). Fails with TS_ERR_INVALID_ARG (bad image, a side over TS_IMAGE_MAX_SIDE,
 * more than TS_IMAGE_MAX_PIXELS pixels, a meta string that is not valid UTF-8) or
 * TS_ERR_NOMEM. Thread-safety: safe. */
ts_status ts_image_encode_png_memory (const ts_image *img, const ts_image_meta *meta,
                                      uint8_t **out_data, size_t *out_size, ts_error *err);

/* Writes img (and meta, nullable) to path as PNG, atomically: the data goes to a new
 * "<path>.tmp-XXXXXX" in the same directory, is fsync'd and then renamed over path, so path
 * holds either its old contents or the complete new file, never a partial one. The new file
 * gets mode 0666 minus the umask. On failure the temporary file is removed and the result
 * is TS_ERR_IO with a message naming path and the system error (a missing directory, a
 * full disk, a file size limit), or one of the errors of ts_image_encode_png_memory.
 * Thread-safety: safe (for distinct paths). */
ts_status ts_image_save_png (const ts_image *img, const ts_image_meta *meta, const char *path,
                             ts_error *err);

/* Reads any PNG (gray, gray+alpha, palette, RGB, RGBA; 1 to 16 bits; interlaced or not) and
 * converts it to RGB8: 16-bit samples are scaled to 8 bits with rounding, and alpha
 * (including tRNS transparency) is composited onto black, c * a / 255 rounded, without
 * gamma handling. gAMA, cHRM, iCCP and sRGB are ignored: pixel values are used as stored.
 *
 * Metadata (when meta_out is non-NULL; it is overwritten, old strings not freed): the
 * `tessera` chunk wins; when it is absent or cannot be parsed, an A1111 `parameters` chunk
 * (tEXt, zTXt or iTXt, from Tessera or another tool) is parsed instead. tEXt/zTXt text is
 * Latin-1 by the PNG spec, but some tools store UTF-8 there: text that is valid UTF-8 is
 * taken as UTF-8, anything else is converted from Latin-1. A metadata chunk that cannot be
 * parsed is logged (WARN) and skipped; it does not fail the load.
 *
 * Hostile files are bounded: at most TS_IMAGE_MAX_SIDE per side and TS_IMAGE_MAX_PIXELS in
 * all (checked from the header, before any pixel memory is allocated); a text chunk over
 * 8 MiB as stored fails the load, compressed text that inflates past 8 MiB is dropped, and
 * at most 32 text chunks are kept; other ancillary chunks are skipped unread. Fails with
 * TS_ERR_FORMAT naming the file for anything that is not a complete, valid PNG within those
 * limits (truncated files, missing IEND, bad CRCs in critical chunks), TS_ERR_NOT_FOUND /
 * TS_ERR_IO when the file cannot be opened or read, or TS_ERR_NOMEM. libpng's warnings go
 * to the engine log at DEBUG. Returns a new image (ts_image_free). Thread-safety: safe. */
ts_image *ts_image_load_png (const char *path, ts_image_meta *meta_out, ts_error *err);
/* The same from a buffer; messages say "PNG data" instead of a file name. */
ts_image *ts_image_load_png_memory (const void *data, size_t size, ts_image_meta *meta_out,
                                    ts_error *err);

/* ---- model folders: configs, tensors, inspection (ts-config, ts-model-files) ------ */

/* ---- golden checks (ts-golden) --------------------------------------------------- */

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_H */
