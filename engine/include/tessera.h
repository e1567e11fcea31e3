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
  /* -9 is taken by TS_ERR_MISMATCH of tessera-devkit.h (golden checks) */
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

/* CLIP's byte-level BPE tokenizer, reproducing transformers' slow `CLIPTokenizer` as
 * Meissonic runs it (ftfy absent: BERT's BasicTokenizer cleans the text). Token ids are
 * exact, including the pad token "!" (id 0) that Meissonic's tokenizer folder declares.
 *
 * Thread-safety: a loaded ts_tokenizer is immutable. The encode functions and
 * ts_tokenizer_id_to_token only read it, so any number of threads may use one tokenizer
 * at the same time; ts_tokenizer_free must not race with them. */
typedef struct ts_tokenizer ts_tokenizer;

/* The sequence length of the pipeline (`max_length=77` in the reference). */
#define TS_TOKENIZER_MAX_LENGTH 77

/* Loads the tokenizer folder `dir` (a model's `tokenizer/`): vocab.json and merges.txt
 * are required; tokenizer_config.json (added_tokens_decoder, bos/eos/unk/pad) and
 * special_tokens_map.json are read when present, otherwise CLIP's defaults apply.
 * Returns NULL and fills err on failure: TS_ERR_NOT_FOUND for a missing required file,
 * TS_ERR_IO when a file cannot be read, TS_ERR_FORMAT for malformed contents,
 * TS_ERR_UNSUPPORTED for an added token with single_word set. The message names the
 * file. Free with ts_tokenizer_free. */
ts_tokenizer *ts_tokenizer_load (const char *dir, ts_error *err);
/* NULL-safe. */
void ts_tokenizer_free (ts_tokenizer *tok);

/* Encodes NUL-terminated UTF-8 `text` into `[bos] + ids + [eos]` without truncation or
 * padding. Writes the first min(n, cap) ids to `ids` (which may be NULL when cap is 0)
 * and stores n, the full count, in *n_total when n_total is non-NULL. Fails with
 * TS_ERR_INVALID_ARG for NULL arguments or text that is not valid UTF-8 (the message
 * gives the byte offset), TS_ERR_NOMEM when out of memory. */
ts_status ts_tokenizer_encode (const ts_tokenizer *tok, const char *text, int32_t *ids,
                               size_t cap, size_t *n_total, ts_error *err);
/* The pipeline's form (`padding="max_length", truncation=True, max_length=77`): exactly
 * TS_TOKENIZER_MAX_LENGTH ids, `[bos] + ids[:75] + [eos]` followed by pad ids.
 * *truncated (when non-NULL) is set to whether prompt tokens were cut. Fails as
 * ts_tokenizer_encode does. */
ts_status ts_tokenizer_encode_padded (const ts_tokenizer *tok, const char *text,
                                      int32_t ids[TS_TOKENIZER_MAX_LENGTH], bool *truncated,
                                      ts_error *err);
/* The token string of an id (added tokens first, then vocab.json), e.g. "photo</w>";
 * borrowed until the tokenizer is freed. NULL for an id with no token. */
const char *ts_tokenizer_id_to_token (const ts_tokenizer *tok, int32_t id);
/* One more than the largest token id (49408 for CLIP), to check against the text
 * encoder's embedding table. */
size_t ts_tokenizer_n_vocab (const ts_tokenizer *tok);

/* ---- images and PNG metadata (ts-image-png, ts-image-meta) ----------------------- */

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

/* A new width x height copy of img resized with Pillow's LANCZOS filter, bit for bit as
 * Pillow 9.4's Image.resize((width, height), Image.LANCZOS) on an RGB image (the filter the
 * official img2img and inpaint pipelines resize images and masks with). The same size gives
 * an exact copy. NULL with TS_ERR_INVALID_ARG (no image, a side of 0, larger than
 * TS_IMAGE_MAX_SIDE / TS_IMAGE_MAX_PIXELS) or TS_ERR_NOMEM. Thread-safety: safe. */
ts_image *ts_image_resize_lanczos (const ts_image *img, uint32_t width, uint32_t height,
                                   ts_error *err);

/* How an image was made. All strings are UTF-8; NULL and "" both mean "not recorded".
 * Numbers that were not recorded hold the values ts_image_meta_init sets: 0 for the
 * integers, NaN for the doubles and -1 for strength (seed has no "unknown" value: a missing
 * seed reads as 0).
 *
 * Ownership: a struct filled by the engine (the PNG reader, ts_image_meta_from_*) owns its
 * strings; release them with ts_image_meta_clear. A struct you pass to the writer is only
 * read, so it may point at any strings you like (then do not call ts_image_meta_clear on it
 * unless you malloc'd them). */
/* One steering change of a generation (ts_steer_change, as recorded): from the 1-based
 * step `step` on, these values (NULL strings and NaN numbers: unchanged). */
typedef struct {
  uint32_t step;
  char *prompt;
  char *negative_prompt;
  double cfg;
  double temperature_start, temperature_end;
} ts_image_steer;

typedef struct {
  char *prompt;
  char *negative_prompt;
  char *model;   /* model name, e.g. "Meissonic" */
  char *sampler; /* e.g. "MaskGIT" */
  char *backend; /* compute backend that ran the model, e.g. "cpu" */
  char *precision; /* its linear layers' arithmetic, "fp32" or "bf16"; NULL = not recorded */
  char *source;  /* file name of the source image (inpainting, image-to-image); NULL if none */
  char *source_hash; /* "sha256:<64 hex digits>" of the source image file's bytes */
  char *mode;    /* how it was made: "txt2img", "img2img", "inpaint", "outpaint", "branch",
                  * "refine"; NULL or "" = not recorded (read as txt2img) */
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
  uint32_t finish_at;            /* "Finish now" at this 1-based step of `steps` (every token
                                  * still masked took that step's prediction); 0 = all steps ran */
  uint32_t extend_left, extend_top, extend_right, extend_bottom; /* outpainting: pixels added */
  char *schedule;                /* "linear" when the inpainting pipeline's forced linear
                                  * schedule ran; NULL = the model's own */
  double starting_mask_ratio;    /* the schedule's scale (inpainting, refine); < 0 = 1 */
  uint32_t from_step;            /* branch: the state after this step of the source was kept */
  double remask;                 /* refine: the share of tokens redrawn; < 0 when n/a */
  /* Steering: the run started with the parameters above and changed them n_steer times, in
   * order of step (owned like the strings; only in the `tessera` JSON, as "steer"). */
  uint32_t n_steer;
  ts_image_steer *steer;
  /* The trajectory (ts_result's; only in the `tessera` JSON, compactly encoded): a grid of
   * traj_grid_h x traj_grid_w tokens (0 x 0: not recorded) and three arrays of that many
   * values, owned like the strings. */
  uint32_t traj_grid_h, traj_grid_w;
  int32_t *traj_codes;
  uint16_t *traj_reveal_step;
  float *traj_confidence;
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
 * strength, Mode, Finished at step, Extend ("left,top,right,bottom"), From step, Remask,
 * Schedule, Starting mask ratio, Source image, Source hash, Backend, Precision, Version (always). The format is lossy where A1111's is:
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
/* The same with the trajectory's arrays written as plain JSON arrays (codes, reveal_step,
 * confidence with null for tokens never masked), indented: what `tessera-cli info --json`
 * prints. Not read back by ts_image_meta_from_json. */
char *ts_image_meta_to_json_plain (const ts_image_meta *meta);

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
 * holds either its old contents or the complete new file, never a partial one.
 *
 * What is at path is never destroyed: path must be absent or a regular file (see
 * ts_output_path_check). A symbolic link to a regular file is written through, as cp does:
 * the file it points to is replaced (with a temporary file in that file's folder) and the
 * link is kept. A replaced file keeps its permission bits; a new one gets 0666 minus the
 * umask. (Hard links to a replaced file keep the old contents: rename makes a new inode.)
 *
 * The temporary file is flock'ed while it is written. A temporary file of ours that a
 * killed save left behind ("<name>.png.tmp-XXXXXX", a regular file of this user, over 2 s
 * old, not locked) is removed by the next save into the same folder.
 *
 * On failure the temporary file is removed, path is untouched, and the result is TS_ERR_IO
 * with a message naming path and the problem (a special file, a missing or read-only
 * folder, a full disk, a file size limit), or one of the errors of
 * ts_image_encode_png_memory. Thread-safety: safe (for distinct paths). */
ts_status ts_image_save_png (const ts_image *img, const ts_image_meta *meta, const char *path,
                             ts_error *err);

/* Checks, without writing anything, that ts_image_save_png could write to path: path is
 * absent, a regular file the process may write, or a symbolic link to one; its folder
 * exists and the process may create files in it (on a writable file system). Fails with
 * TS_ERR_IO naming path and what is wrong: "is a FIFO, not a regular file; refusing to
 * replace it", a directory, a device, a socket, a dangling link or a link loop, a missing
 * folder, no permission. TS_ERR_INVALID_ARG for an empty path. Call it before long work
 * (loading a model, generating) so a bad destination fails at once; the save checks again.
 * Thread-safety: safe. */
ts_status ts_output_path_check (const char *path, ts_error *err);

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

/* ---- pipeline: load a model, generate, inpaint, decode (ts-pipeline) --------------- */

typedef struct ts_model ts_model;

/* Load progress: fraction in [0, 1] and what is being loaded ("transformer"). */
typedef void (*ts_progress_fn) (void *user_data, double fraction, const char *what);
/* Returns true to stop the current call, which then fails with TS_ERR_CANCELLED. Polled
 * before each sampling step, between transformer blocks and inside long backend ops
 * (between blocks of a few milliseconds of work on the CPU, between command-buffer
 * submissions on Vulkan), so a cancel takes effect within a second at any image size;
 * called on the calling thread, and so often that it must be cheap (an atomic load). */
typedef bool (*ts_should_abort_fn) (void *user_data);

/* The arithmetic of the linear layers (every matmul of the text encoder and transformer;
 * docs/precision.md). Attention, normalisations, softmax, convolutions and the sampler
 * stay fp32 in every mode. */
typedef enum {
  TS_PRECISION_AUTO = 0, /* bf16 on the "cpu" backend where the CPU multiplies bf16
                          * natively (AVX512_BF16, AMX-BF16); fp32 everywhere else */
  TS_PRECISION_FP32,     /* the official fp32 arithmetic, on every backend */
  TS_PRECISION_BF16,     /* weights of 2 dimensions stored bf16, each matmul's input rounded
                          * to bf16, products accumulated in fp32: "cpu" on CPUs with
                          * AVX-512 (oneDNN), "cpu-ref" anywhere (emulated, slow) */
} ts_precision;

/* "auto", "fp32", "bf16"; "?" for a value outside the enum. */
const char *ts_precision_name (ts_precision precision);
/* Parses a name of ts_precision_name. TS_ERR_INVALID_ARG naming the choices otherwise. */
ts_status ts_precision_parse (const char *name, ts_precision *out, ts_error *err);

/* What this CPU offers the "cpu" backend for bf16 (oneDNN 2.6 decides): */
typedef enum {
  TS_BF16_NONE,     /* no AVX-512: bf16 is not offered (precision bf16 fails, auto = fp32) */
  TS_BF16_EMULATED, /* AVX-512 without bf16 dot products: offered, about fp32's speed */
  TS_BF16_NATIVE,   /* AVX512_BF16 or AMX-BF16: twice the fp32 rate; auto picks it */
} ts_bf16_support;
ts_bf16_support ts_cpu_bf16_support (void);
/* "none", "emulated", "native". */
const char *ts_bf16_support_name (ts_bf16_support support);

typedef struct {
  const char *backend;   /* "auto" (default when NULL: Vulkan on a GPU, else "cpu"), "cpu",
                          * "cpu-ref", "vulkan" (best GPU), "vulkan:N" (device N of
                          * ts_vulkan_list_devices, lavapipe included) */
  int n_threads;         /* <= 0: every core */
  ts_precision precision; /* TS_PRECISION_AUTO by default ($TESSERA_PRECISION, fp32 or bf16,
                           * decides what auto means when set); bf16 where the backend
                           * cannot compute it fails with TS_ERR_UNSUPPORTED saying why */
  bool prefer_fp16;      /* load *.fp16.safetensors variants when present */
  ts_progress_fn progress;
  void *progress_data;
  /* Optional: polled before each weight tensor is read and uploaded, so that a load of
   * gigabytes stops within a fraction of a second; ts_model_load then fails with
   * TS_ERR_CANCELLED and frees what it loaded. Called on the loading thread. */
  ts_should_abort_fn should_abort;
  void *abort_data;
} ts_model_load_params;

void ts_model_load_params_init (ts_model_load_params *p);

/* Loads and validates a diffusers-layout Meissonic folder and uploads every weight to the
 * backend. NULL on failure with err naming the file, tensor or component. The model stays
 * loaded between generations. Thread-safety: Unsafe (one thread at a time per model). */
ts_model *ts_model_load (const char *dir, const ts_model_load_params *p, ts_error *err);
void ts_model_free (ts_model *model);

/* The bundled demo model (a tiny model trained on synthetic shapes, see
 * docs/demo-model.md), used when no other model is configured: the folder named by
 * $TESSERA_DEFAULT_MODEL when that is set (set it to an empty string or a missing path to
 * have none), else the installed copy (<datadir>/tessera/demo-model), else the source
 * tree's data/demo-model for an uninstalled build. NULL when that folder does not exist.
 * The string is static or from the environment: do not free it. */
const char *ts_default_model_dir (void);

/* Sizes: the default (width = height = 0 in params) and a check. A size must be a multiple
 * of the VQ factor and give a token grid the transformer's down/upsample can take;
 * otherwise TS_ERR_INVALID_ARG with a message naming the sizes it can take. */
void ts_model_default_size (const ts_model *model, uint32_t *width, uint32_t *height);
/* The guidance scale the model was made for: the official 9, unless model_index.json has
 * Tessera's "_tessera_guidance_scale" (the bundled demo model does). */
double ts_model_default_guidance (const ts_model *model);
ts_status ts_model_check_size (const ts_model *model, uint32_t width, uint32_t height,
                               ts_error *err);
uint32_t ts_model_vae_scale_factor (const ts_model *model);
int32_t ts_model_mask_token_id (const ts_model *model);
int32_t ts_model_codebook_size (const ts_model *model);
const char *ts_model_name (const ts_model *model); /* the folder's base name, borrowed */
const char *ts_model_backend_name (const ts_model *model);
/* The precision the model computes in: TS_PRECISION_FP32 or TS_PRECISION_BF16 (auto
 * resolved at load). */
ts_precision ts_model_precision (const ts_model *model);

/* What the step callback sees after each sampling step. All arrays are grid_h * grid_w,
 * row-major, borrowed for the duration of the call. */
typedef struct {
  int step;                  /* 0-based step just finished */
  int n_steps;
  int grid_h, grid_w;
  const int32_t *tokens;     /* the grid after this step; still-masked = mask_token_id */
  const int32_t *predicted;  /* the model's full prediction this step (every position) */
  const float *confidence;   /* per token (log-probability + temperature * gumbel) */
  const float *probability;  /* per token: the softmax probability of `predicted`'s code
                              * after guidance, without the noise (what a trajectory
                              * records for a token revealed at this step); NaN when the
                              * draws were recorded ones */
  int n_masked;              /* tokens still masked after this step */
  int32_t mask_token_id;
  double seconds;            /* wall time of this step */
  int image;                 /* 0-based index within a batch (ts_model_generate_batch); 0 */
} ts_step_info;

typedef void (*ts_step_fn) (void *user_data, const ts_step_info *info);

/* Steering a running generation: what changes from a step on. NULL strings and NaN
 * numbers stay as they were. */
typedef struct {
  const char *prompt;
  const char *negative_prompt;
  double guidance;
  double temperature_start, temperature_end;
} ts_steer_change;

/* Called before each step after the first that runs, with the 0-based step about to run.
 * Returning true with *change filled makes the change take effect from that step on (the
 * prompts are encoded again; the strings need only live until the call returns). The
 * callback may block, for a paused run: the engine polls should_abort only once it
 * returns. The random draws depend only on seed, step and token, so a run steered at step
 * k is, token for token, ts_model_resume from the state after step k with the new
 * parameters. */
typedef bool (*ts_steer_fn) (void *user_data, int step, ts_steer_change *change);

/* Fills a change that changes nothing. */
void ts_steer_change_init (ts_steer_change *c);

/* The largest guidance scale ts_generate_params takes. Useful scales are below 30; far
 * larger ones overflow the f32 guided logits (cfg * (cond - uncond)) into infinities, so
 * they are refused as out of range instead of failing later as "not finite". */
#define TS_GUIDANCE_MAX 1000.0

typedef struct {
  const char *prompt;
  const char *negative_prompt;     /* NULL or "" = the official default "" */
  uint32_t width, height;          /* 0 = ts_model_default_size */
  int steps;                       /* 48 */
  double guidance;                 /* 9; <= 1 disables classifier-free guidance; at most
                                      TS_GUIDANCE_MAX */
  double temperature_start;        /* 2 */
  double temperature_end;          /* 0 */
  uint64_t seed;
  double aesthetic_score;          /* 6 */
  uint32_t crop_top, crop_left;    /* 0, 0 */
  int finish_at;                   /* 0 (all steps); 1..steps-1: stop after this 1-based step
                                    * and give every still-masked token that step's prediction
                                    * (the app's "Finish now", reproducible) */
  ts_step_fn on_step;
  void *step_data;
  ts_should_abort_fn should_abort;
  void *abort_data;
  ts_steer_fn steer;               /* NULL: the parameters hold for the whole run */
  void *steer_data;
} ts_generate_params;

/* Fills the official pipeline's defaults (48 steps, CFG 9, temperature 2 -> 0, aesthetic
 * 6, seed 0, model default size). */
void ts_generate_params_init (ts_generate_params *p);

/* The result of a generation: the final token grid and the decoded image. */
typedef struct {
  int grid_h, grid_w;
  int32_t *tokens;        /* grid_h * grid_w, owned */
  ts_image *image;        /* owned; NULL when decoding was not asked for */
  bool prompt_truncated;  /* the prompt was longer than 77 tokens */
  /* The trajectory (owned, grid_h * grid_w each): the 1-based step whose output first fixed
   * each token (0 for tokens that were never masked: kept by inpainting or img2img), and
   * the softmax probability the model gave that code at that step, after guidance and
   * before any noise (NaN for tokens never masked, and for replays of recorded draws). A
   * token never changes once revealed, so this and the final tokens are the whole history
   * of the image (ts_model_resume restores any step from it). */
  uint16_t *reveal_step;
  float *reveal_prob;
} ts_result;

void ts_result_free (ts_result *r); /* frees the members, not r itself */

/* Text to image. On TS_ERR_CANCELLED the result is left empty; the last step callback
 * carried the partial state. */
ts_status ts_model_generate (ts_model *model, const ts_generate_params *p, ts_result *out,
                             ts_error *err);

/* n images with seeds p->seed, p->seed + 1, ..., p->seed + n - 1 into out[0 .. n-1]: image k
 * is identical, token for token and pixel for pixel, to ts_model_generate with seed
 * p->seed + k (the random draws are counter-based per seed). Where memory allows and the
 * backend computes each image of a batch with the same arithmetic as alone (Vulkan and
 * cpu-ref), the images go through the transformer together (as many as keep the
 * transformer's activations, by the model's estimate, under a quarter of ts_memory_limit;
 * at most 8), which is faster per image on a GPU. The CPU fast path's GEMMs round
 * differently with the batch's row count, so there the images run one after another. The step callback is called
 * for each image of a step, with ts_step_info.image naming it. On an error every result is
 * left empty. */
ts_status ts_model_generate_batch (ts_model *model, const ts_generate_params *p, int n,
                                   ts_result *out, ts_error *err);

/* The image pipelines (img2img, inpaint, outpaint) take an RGB image of any size and bring it
 * to the generation size as the official VaeImageProcessor does: each side is floored to a
 * size the model takes (a multiple of the VQ factor, 16 px, or of 32 px for a model with
 * the 2x down/upsample, such as Meissonic) and, when that changes the size, the whole image
 * is resized with Pillow's LANCZOS filter (ts_image_resize_lanczos), not cropped. The
 * params' width and height must be 0 or that size. The result is decoded from tokens
 * alone: kept regions are the VQ reconstruction of the input, as in the official code. */

/* Image to image, as the official Img2ImgPipeline (src/pipeline_img2img.py): of
 * params->steps = N steps, the last int(N * strength) run, with the ratios and temperatures
 * of the full N-step schedule. Before the first of them, each VQ token of the image is
 * masked independently with probability cos(pi/2 * start/N) (the model's masking
 * schedule at the starting step; the scheduler's add_noise), the draws taken from the seed.
 * strength is in [0, 1]. Where the official code is broken for a user it is not followed:
 * at strength 1 it masks nothing (its mask ratio is cos(pi/2) < 0 in fp32), which returns
 * almost the input; here every token is masked and the result is a new picture from the
 * prompt. When int(N * strength) is 0 no step runs and the result is the input's VQ
 * reconstruction, as in the official code. */
ts_status ts_model_img2img (ts_model *model, const ts_generate_params *p, const ts_image *image,
                            double strength, ts_result *out, ts_error *err);

/* Regenerates only the tokens under mask, as the official InpaintPipeline
 * (src/pipeline_inpaint.py): mask is an RGB image of any size (white = repaint, black =
 * keep), resized with LANCZOS straight to the token grid, converted to luminance as PIL's
 * convert("L") does, and a token is repainted where that is >= 128. A mask the size of the
 * token grid is used as it is (an exact per-token mask). The inpaint pipeline always uses
 * the linear masking schedule, scaled by the masked share of the tokens; strength in
 * (0, 1] runs the last int(N * strength) of the N steps. Unlike the official code, which
 * floors the mask's token grid to multiples of 16 and so only works at multiples of 256 px,
 * every size the model takes works. Fails with TS_ERR_INVALID_ARG when the mask covers no
 * token. */
ts_status ts_model_inpaint (ts_model *model, const ts_generate_params *p, const ts_image *image,
                            const ts_image *mask, double strength, ts_result *out, ts_error *err);

/* Outpainting, as the official inpaint.py --mode outpaint does it: the (prepared) image is
 * placed on a larger canvas of grey 127 and the new border is inpainted. extend holds the
 * pixels to add at the left, top, right and bottom; each is rounded up to a whole number of
 * the model's size step (ts_model_size_step) so that the border is whole tokens, and
 * extend_out (nullable) receives the values used. strength as for inpainting. */
ts_status ts_model_outpaint (ts_model *model, const ts_generate_params *p, const ts_image *image,
                             const uint32_t extend[4], double strength, uint32_t extend_out[4],
                             ts_result *out, ts_error *err);

/* Continues a generation from a token grid: the state after some step, as the
 * trajectory of an image records it (a token never changes once revealed, so the state
 * after step K is every token revealed at or before K; the rest masked). Runs steps
 * start_step .. p->steps - 1 (0-based) with p's parameters: with the parameters and seed of
 * the image it came from, the result is that image again, token for token. */
typedef struct {
  const int32_t *tokens;      /* grid_h * grid_w codes; ts_model_mask_token_id = to draw */
  int grid_h, grid_w;
  int start_step;             /* 0-based index of the first step to run */
  float starting_mask_ratio;  /* scales the schedule: 1 for text to image and img2img, the
                               * masked share of the tokens for inpainting (0 means 1) */
  bool linear_schedule;       /* the inpainting pipeline's schedule instead of the model's */
} ts_resume_state;

ts_status ts_model_resume (ts_model *model, const ts_generate_params *p, const ts_resume_state *s,
                           ts_result *out, ts_error *err);

/* The multiple of which image sides must be for this model: the VQ factor (16 px), or twice
 * that for a model with the 2x down/upsample (Meissonic: 32 px). */
uint32_t ts_model_size_step (const ts_model *model);

/* The generation size an image pipeline will use for an input of width x height: each
 * side floored to a multiple of ts_model_size_step. Fails (TS_ERR_INVALID_ARG) when a side
 * is below one step or the model cannot take the result. */
ts_status ts_model_image_size (const ts_model *model, uint32_t width, uint32_t height,
                               uint32_t *gen_width, uint32_t *gen_height, ts_error *err);

/* VQ-decodes any token grid (no mask ids) to an RGB8 image. */
ts_image *ts_model_decode (ts_model *model, const int32_t *tokens, int grid_h, int grid_w,
                           ts_error *err);
/* VQ-encodes an RGB8 image (size a multiple of the VQ factor) to nearest-code token ids,
 * written to tokens (grid_h * grid_w). */
ts_status ts_model_encode (ts_model *model, const ts_image *image, int32_t *tokens, ts_error *err);

/* Per-stage timings of the last ts_model_generate / ts_model_inpaint call, for benchmarks
 * and the app's status line. Seconds are wall time summed over the call. */
typedef struct {
  double load_s;             /* ts_model_load, whole */
  double tokenize_s;
  double text_encoder_s;
  double transformer_s;      /* every transformer forward of the call */
  double sampler_s;          /* CFG combine + scheduler steps */
  double vq_decode_s;
  double vq_encode_s;        /* inpainting only */
  int n_transformer_calls;   /* forwards (one per step, batch 2 with CFG) */
  int transformer_batch;     /* 2 with CFG, else 1 */
  double transformer_flop;   /* floating-point operations of one forward at this size and batch */
  uint64_t device_memory_peak_bytes; /* the most device memory the backend has held at once
                                      * since the model loaded (weights included); 0 on the
                                      * CPU backend, whose memory is the process's RSS */
  double transformer_first_s; /* the call's first forward alone (part of transformer_s): it
                               * carries one-time costs (fresh buffers' page faults, scratch
                               * growth), which a benchmark keeps out of its mean */
} ts_model_stats;

void ts_model_get_stats (const ts_model *model, ts_model_stats *stats);

/* A model folder is the official diffusers layout of MeissonFlow/Meissonic:
 *
 *     model_index.json
 *     transformer/   config.json + diffusion_pytorch_model[.fp16].safetensors
 *     vqvae/         config.json + diffusion_pytorch_model[.fp16].safetensors
 *     text_encoder/  config.json + model[.fp16].safetensors
 *     tokenizer/     vocab.json + merges.txt (+ tokenizer_config.json, special_tokens_map.json)
 *     scheduler/     scheduler_config.json
 *
 * Sharded checkpoints (`NAME.safetensors.index.json` + shards) work too. Every
 * configuration value comes from the JSON files; every tensor is checked against the
 * name and shape the official module would give it. */

typedef enum {
  TS_COMPONENT_TRANSFORMER,  /* Meissonic Transformer2DModel (transformer/) */
  TS_COMPONENT_VQVAE,        /* diffusers VQModel (vqvae/) */
  TS_COMPONENT_TEXT_ENCODER, /* transformers CLIPTextModelWithProjection (text_encoder/) */
  TS_COMPONENT_TOKENIZER,    /* transformers CLIPTokenizer (tokenizer/) */
  TS_COMPONENT_SCHEDULER,    /* Meissonic Scheduler (scheduler/) */
  TS_COMPONENT_COUNT
} ts_component;

/* The component's folder and model_index.json key ("text_encoder"), or NULL for an
 * out-of-range value. */
const char *ts_component_name (ts_component component);

typedef enum {
  TS_LOAD_DEFAULT = 0,
  /* Open `NAME.fp16.safetensors` where the folder has it (plain file otherwise). */
  TS_LOAD_PREFER_FP16 = 1 << 0,
  /* Read only the JSON configs: no weight or tokenizer file is needed, and parameter
   * counts come from the configs. For inspecting a folder whose weights are missing. */
  TS_LOAD_CONFIGS_ONLY = 1 << 1,
} ts_load_flags;

typedef struct {
  const char *name;       /* "transformer", as in ts_component_name() */
  const char *class_name; /* from model_index.json ("Transformer2DModel") */
  bool present;           /* its folder and config (tokenizer: vocab.json + merges.txt) exist */
  uint64_t n_params;      /* computed from the config (0 for the tokenizer and scheduler) */
  uint64_t n_tensors;     /* tensors in the opened checkpoint, or expected from the config
                           * when no weights were opened */
  uint64_t size_bytes_on_disk; /* weight files (tokenizer: vocab + merges); 0 if not opened */
  int n_files;                 /* files counted in size_bytes_on_disk */
  ts_dtype dtype;              /* the dtype holding most parameters; TS_DTYPE_COUNT when no
                                * weights were opened */
  uint32_t dtype_counts[TS_DTYPE_COUNT]; /* tensors per dtype */
  char summary[512];           /* one line describing the config */
} ts_component_info;

typedef struct ts_model_info ts_model_info;

/* Opens the model folder `dir`: reads model_index.json and every component's config,
 * checks the component classes and that the configs agree with each other, then (unless
 * TS_LOAD_CONFIGS_ONLY) opens the weights and checks that every tensor the official
 * modules have is present with the expected shape and a float dtype (F32/F16/BF16).
 * Returns NULL on failure with err naming the component, file and tensors:
 * TS_ERR_NOT_FOUND for a missing folder, file or tensor (all missing tensors listed in
 * one message), TS_ERR_FORMAT for broken JSON, wrong types, wrong shapes or configs that
 * disagree, TS_ERR_UNSUPPORTED for valid configs this engine cannot run (e.g. VQ mid-block
 * attention). Tensors the model does not use are logged as warnings. The weights are
 * memory-mapped, not read. Free with ts_model_info_free(). */
ts_model_info *ts_model_info_load (const char *dir, ts_load_flags flags, ts_error *err);

/* The folder as passed to ts_model_info_load, trailing slashes removed (borrowed). */
const char *ts_model_info_dir (const ts_model_info *info);
/* model_index.json's `_class_name` ("Pipeline") (borrowed). */
const char *ts_model_info_pipeline_class (const ts_model_info *info);
/* Borrowed until ts_model_info_free(); NULL for an out-of-range component. */
const ts_component_info *ts_model_info_component (const ts_model_info *info,
                                                  ts_component component);

/* The default image size, derived from the configs: 1024x1024 when the transformer
 * downsamples its token grid (the official pipeline only accepts height 1024 for such a
 * model, README quirk 1), otherwise the VQ `sample_size` x vae scale factor (32 x 16 =
 * 512 for Monetico-like models). The tiny golden model downsamples, so it also gets
 * 1024x1024. */
void ts_model_info_default_size (const ts_model_info *info, uint32_t *width, uint32_t *height);
/* As ts_model_size_step, from the configs alone. */
uint32_t ts_model_info_size_step (const ts_model_info *info);

/* Estimated peak bytes to generate one image of width x height (0 x 0: the default
 * size) with the network weights held as compute_weights_dtype (F32, F16 or BF16):
 *
 *     weights + max(text encoder, transformer, VQ decoder activations)
 *
 *   weights     = (transformer + text encoder + VQ-VAE parameters) x dtype size
 *   text        = 4 B x 2 x S x (4 hidden + intermediate) + 4 B x 2 x heads x S^2,
 *                 S = max_position_embeddings (77)
 *   transformer = 4 B x 2 x L x inner x 16 + 4 B x 2 x 2 x codebook x h x w
 *                 L = S + tokens; tokens = h x w latent tokens (/4 with downsample);
 *                 16 = residual, modulated input, Q, K, V, attention out, 4x MLP and the
 *                 5x single-block concat; the last term is the CFG logits and the
 *                 scheduler's probabilities. Attention is fused on every backend (no
 *                 L x L scores are held), so it adds no L^2 term.
 *   VQ decoder  = 4 B x 3 x the largest decoder feature map (channels x pixels), batch 1
 *
 * Batch 2 is the [negative ; positive] CFG batch; activations are f32. Returns 0 when
 * the size is not a multiple of the VQ scale factor (x2 with downsample) or the dtype is
 * not a float type. Thread-safety: safe (reads only). */
uint64_t ts_model_info_estimate_memory (const ts_model_info *info, uint32_t width,
                                        uint32_t height, ts_dtype compute_weights_dtype);

/* As ts_model_check_size, from the configs alone: whether the model takes width x height,
 * so that a caller can refuse a size before loading the weights. TS_ERR_INVALID_ARG with
 * a message naming the sizes it takes. Thread-safety: safe (reads only). */
ts_status ts_model_info_check_size (const ts_model_info *info, uint32_t width, uint32_t height,
                                    ts_error *err);

/* The memory a generation may use, in bytes: TESSERA_MAX_MEMORY (bytes, or with a K, M or
 * G suffix) when set, else the machine's physical RAM, or the cgroup v2 memory.max of the
 * process when that is lower. Total RAM rather than MemAvailable: what is available
 * changes from moment to moment (page cache, other programs), and a size refused on it
 * would be refused at random; a size over the total can never run without swapping.
 * *source (optional) receives a static string naming where the figure came from.
 * UINT64_MAX when none is known. Thread-safety: safe. */
uint64_t ts_memory_limit (const char **source);

/* Refuses a size whose ts_model_info_estimate_memory exceeds ts_memory_limit, before
 * anything is loaded: TS_ERR_NOMEM with a message giving the estimate, the limit and
 * where the limit came from. TS_OK for a size the estimate cannot price (0).
 * Thread-safety: safe (reads only). */
ts_status ts_model_info_check_memory (const ts_model_info *info, uint32_t width, uint32_t height,
                                      ts_dtype compute_weights_dtype, ts_error *err);

/* NULL-safe. Unmaps the weights. */
void ts_model_info_free (ts_model_info *info);

/* ---- Vulkan devices (engine/backend/vk) ---------------------------------------------------- */

/* One Vulkan physical device as the loader reports it. */
typedef struct {
  char name[256];
  char type[16];                     /* "discrete", "integrated", "virtual", "cpu", "other" */
  uint32_t api_version;              /* VK_MAKE_API_VERSION encoding */
  uint64_t device_local_bytes;       /* sum of the device-local heaps */
  uint32_t max_storage_buffer_range; /* bytes */
  uint32_t subgroup_size;
  bool fp16, int8, storage16; /* shaderFloat16, shaderInt8, storageBuffer16BitAccess */
  char driver[512];           /* driver name and info ("NVIDIA 550.54.15"); "" before 1.2 */
  uint32_t driver_version;    /* vendor-specific encoding */
} ts_vk_device_info;

/* Lists the Vulkan devices: fills out[0 .. min(cap, *n)) and sets *n to the number of
 * devices (which may exceed cap). The index of a device is what backend "vulkan:N" and
 * TESSERA_VK_DEVICE=N select; a CPU-type device (lavapipe) is only ever used when selected
 * that way. Fails with TS_ERR_DEVICE when no Vulkan driver loads, TS_ERR_UNSUPPORTED in a
 * build without Vulkan. Thread-safety: Safe (creates and destroys its own instance). */
ts_status ts_vulkan_list_devices (ts_vk_device_info *out, int cap, int *n, ts_error *err);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_H */
