/* SPDX-License-Identifier: MIT
 *
 * ts-config — what the configs of a diffusers model folder share, as opposed to what one
 * stage owns. Each stage parses its own component's config and enumerates its own tensors
 * (stages/ts-transformer-config.h, ts-vq-config.h, ts-text-encoder-config.h,
 * ts-sampler-config.h); this module holds the ground they stand on: the sanity bounds
 * every parser enforces, the expected-tensor table each stage's config fills (the names
 * and shapes of the official module's `state_dict()`, which the model folder's checkpoints
 * are checked against and parameter counts are computed from), and model_index.json, the
 * folder's own config that names the five components.
 *
 * Parsing follows one rule for every config: a key that is missing takes the official
 * class's default only where the class has one, a key of the wrong type is a TS_ERR_FORMAT
 * naming the key and the file, and values the engine cannot run are a TS_ERR_UNSUPPORTED
 * naming the value. The JSON helpers for that are in ts-json.h.
 */
#ifndef TS_CONFIG_H
#define TS_CONFIG_H

#include "tessera.h"

/* Sanity bounds for any size read from a config: far above the real model (largest
 * dimension 49408, 28 layers), low enough that parameter counts and shape products can
 * never overflow 64 bits. */
#define TS_CONFIG_MAX_DIM (1 << 20)
#define TS_CONFIG_MAX_LAYERS 1024
#define TS_CONFIG_NAME_MAX 64

/* ---- model_index.json ---- */

/* model_index.json: the pipeline class and, per component, [library, class]. */
typedef struct {
  char library[TS_CONFIG_NAME_MAX];
  char class_name[TS_CONFIG_NAME_MAX];
} ts_model_index_entry;

typedef struct {
  char class_name[TS_CONFIG_NAME_MAX]; /* "Pipeline" */
  ts_model_index_entry components[TS_COMPONENT_COUNT];
  /* Tessera's private "_tessera_guidance_scale" (diffusers ignores keys starting with
   * '_'): the guidance scale the model was made for; 0 when absent (the official 9). */
  double guidance_scale;
} ts_model_index;

/* Requires all five components with the classes Meissonic uses (Transformer2DModel,
 * VQModel, CLIPTextModelWithProjection, CLIPTokenizer or CLIPTokenizerFast, Scheduler);
 * another class is TS_ERR_UNSUPPORTED naming the component and class. `path` is read and
 * parsed; `_from_json_text` parses `len` bytes (no NUL needed) and uses `name` in
 * messages. On failure *out is unspecified and err names the file and key. */
ts_status ts_model_index_from_file (const char *path, ts_model_index *out, ts_error *err);
ts_status ts_model_index_from_json_text (const char *text, size_t len, const char *name,
                                         ts_model_index *out, ts_error *err);

/* ---- expected tensors ---- */

#define TS_TENSOR_NAME_MAX 128
#define TS_TENSOR_MAX_DIMS 4

typedef struct {
  char name[TS_TENSOR_NAME_MAX]; /* the official state_dict key */
  int n_dims;
  int64_t shape[TS_TENSOR_MAX_DIMS];
} ts_tensor_spec;

/* A growable list of specs. Zero-initialise (or ts_tensor_list_init) before use. */
typedef struct {
  ts_tensor_spec *items;
  size_t n;
  size_t capacity;
} ts_tensor_list;

void ts_tensor_list_init (ts_tensor_list *list);
/* Frees the items; the list can be reused. NULL-safe. */
void ts_tensor_list_clear (ts_tensor_list *list);
/* Sum of the element counts. */
uint64_t ts_tensor_list_n_params (const ts_tensor_list *list);
/* The spec named `name`, or NULL (linear search). */
const ts_tensor_spec *ts_tensor_list_find (const ts_tensor_list *list, const char *name);
/* "[64,64,1,1]" into buf; returns buf. */
char *ts_tensor_shape_format (const int64_t *shape, int n_dims, char *buf, size_t size);

/* ---- enumerating a module's tensors (for the stages' config modules) ---- */

/* Where a stage's enumeration goes: appended to a list, or only counted. A stage's
 * `_config_tensors` starts from { .list = out, .err = err } and returns .status; its
 * `_config_n_params` starts from { 0 } and returns .n_params. */
typedef struct {
  ts_tensor_list *list; /* NULL: count only */
  uint64_t n_params;
  size_t n_tensors;
  ts_status status; /* the first failure (TS_ERR_NOMEM); later adds do nothing */
  ts_error *err;
} ts_spec_sink;

/* Adds the tensor "PREFIX.LEAF" ("LEAF" when prefix is "") of n_dims dimensions. The
 * name must fit TS_TENSOR_NAME_MAX: the stages build names from fixed formats and
 * bounded integers. */
void ts_spec_add (ts_spec_sink *s, const char *prefix, const char *leaf, int n_dims,
                  const int64_t *shape);
void ts_spec_add_1d (ts_spec_sink *s, const char *prefix, const char *leaf, int64_t n);
void ts_spec_add_2d (ts_spec_sink *s, const char *prefix, const char *leaf, int64_t a,
                     int64_t b);
/* The modules below are "PREFIX.MODULE". */
/* nn.Linear(in, out): weight [out, in], bias [out]. */
void ts_spec_add_linear (ts_spec_sink *s, const char *prefix, const char *module, int64_t out,
                         int64_t in, bool bias);
/* nn.Conv2d(in, out, k): weight [out, in, k, k] (ConvTranspose2d: [in, out, k, k]), bias
 * [d0]. */
void ts_spec_add_conv (ts_spec_sink *s, const char *prefix, const char *module, int64_t d0,
                       int64_t d1, int64_t k, bool bias);
/* Affine norms: GroupNorm / LayerNorm (weight and bias) or RMSNorm (weight only). */
void ts_spec_add_norm (ts_spec_sink *s, const char *prefix, const char *module, int64_t n,
                       bool bias);

#endif /* TS_CONFIG_H */
