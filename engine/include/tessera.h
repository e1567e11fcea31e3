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

/* ---- model folders: configs, tensors, inspection (ts-config, ts-model-files) ------ */

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

/* ---- golden checks (ts-golden) --------------------------------------------------- */

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_H */
