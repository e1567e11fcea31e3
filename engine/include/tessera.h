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

/* ---- images and PNG metadata (ts-image) ------------------------------------------ */

/* ---- model folders: configs, tensors, inspection (ts-config, ts-model-files) ------ */

/* ---- golden checks (ts-golden) --------------------------------------------------- */

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_H */
