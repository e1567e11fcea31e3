/* SPDX-License-Identifier: MIT
 *
 * ts-config — model_index.json, component names and the expected-tensor tables the
 * stages' configs fill. See ts-config.h.
 */
#include "model/ts-config.h"

#include "core/ts-common.h"
#include "model/ts-json.h"

#include <inttypes.h>
#include <string.h>

/* ---- model_index.json ------------------------------------------------------------- */

static const char *const index_expected_classes[TS_COMPONENT_COUNT][2] = {
  [TS_COMPONENT_TRANSFORMER] = { "Transformer2DModel", NULL },
  [TS_COMPONENT_VQVAE] = { "VQModel", NULL },
  [TS_COMPONENT_TEXT_ENCODER] = { "CLIPTextModelWithProjection", NULL },
  [TS_COMPONENT_TOKENIZER] = { "CLIPTokenizer", "CLIPTokenizerFast" },
  /* diffusers' AmusedScheduler is the class Meissonic's Scheduler was copied from. */
  [TS_COMPONENT_SCHEDULER] = { "Scheduler", "AmusedScheduler" },
};

ts_status
ts_model_index_from_json_text (const char *text, size_t len, const char *name,
                               ts_model_index *out, ts_error *err)
{
  ts_model_index idx;
  cJSON *root = NULL;
  const char *class_name = "";
  ts_status st;
  ts_json_ctx c;

  memset (&idx, 0, sizeof idx);
  TS_TRY (ts_json_parse_object (text, len, name, &root, err));
  c = (ts_json_ctx) { root, name, "model_index.json", err };
  TS_TRY (ts_json_string (&c, "_class_name", TS_JSON_OPTIONAL, &class_name));
  ts_json_copy_name (idx.class_name, class_name);
  TS_TRY (ts_json_number (&c, "_tessera_guidance_scale", TS_JSON_OPTIONAL, &idx.guidance_scale));
  if (!(idx.guidance_scale >= 0.0 && idx.guidance_scale <= 100.0)) {
    st = ts_error_set (err, TS_ERR_FORMAT, "%s: '_tessera_guidance_scale' must be from 0 to 100",
                       name);
    goto fail;
  }

  for (int i = 0; i < TS_COMPONENT_COUNT; i++) {
    const char *key = ts_component_name ((ts_component) i);
    const char *const *expected = index_expected_classes[i];
    const cJSON *item = cJSON_GetObjectItemCaseSensitive (root, key), *lib, *cls;

    if (!item) {
      st = ts_error_set (err, TS_ERR_FORMAT,
                         "%s: no '%s' component (Meissonic needs transformer, vqvae, "
                         "text_encoder, tokenizer and scheduler)",
                         name, key);
      goto fail;
    }
    if (!cJSON_IsArray (item) || cJSON_GetArraySize (item) != 2) {
      st = ts_error_set (err, TS_ERR_FORMAT,
                         "%s: key '%s': expected [library, class], got %s", name, key,
                         cJSON_IsArray (item) ? "an array of another length"
                                              : ts_json_type_name (item));
      goto fail;
    }
    lib = cJSON_GetArrayItem (item, 0);
    cls = cJSON_GetArrayItem (item, 1);
    if (cJSON_IsNull (lib) || cJSON_IsNull (cls)) {
      st = ts_error_set (err, TS_ERR_FORMAT,
                         "%s: component '%s' is null: the pipeline needs it", name, key);
      goto fail;
    }
    if (!cJSON_IsString (lib) || !cJSON_IsString (cls)) {
      st = ts_error_set (err, TS_ERR_FORMAT,
                         "%s: key '%s': expected [library, class] strings, got [%s, %s]",
                         name, key, ts_json_type_name (lib), ts_json_type_name (cls));
      goto fail;
    }
    if (strcmp (cls->valuestring, expected[0]) != 0 &&
        !(expected[1] && strcmp (cls->valuestring, expected[1]) == 0)) {
      st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                         "%s: component '%s' is [\"%s\", \"%s\"]: this engine runs %s%s%s",
                         name, key, lib->valuestring, cls->valuestring, expected[0],
                         expected[1] ? " or " : "", expected[1] ? expected[1] : "");
      goto fail;
    }
    ts_json_copy_name (idx.components[i].library, lib->valuestring);
    ts_json_copy_name (idx.components[i].class_name, cls->valuestring);
  }
  cJSON_Delete (root);
  *out = idx;
  return TS_OK;

fail:
  cJSON_Delete (root);
  return st;
}

TS_JSON_DEFINE_FROM_FILE (ts_model_index_from_file, ts_model_index_from_json_text,
                          ts_model_index)

const char *
ts_component_name (ts_component component)
{
  switch (component) {
  case TS_COMPONENT_TRANSFORMER: return "transformer";
  case TS_COMPONENT_VQVAE: return "vqvae";
  case TS_COMPONENT_TEXT_ENCODER: return "text_encoder";
  case TS_COMPONENT_TOKENIZER: return "tokenizer";
  case TS_COMPONENT_SCHEDULER: return "scheduler";
  case TS_COMPONENT_COUNT: break;
  }
  return NULL;
}


/* ---- tensor lists ----------------------------------------------------------------- */

void
ts_tensor_list_init (ts_tensor_list *list)
{
  list->items = NULL;
  list->n = 0;
  list->capacity = 0;
}

void
ts_tensor_list_clear (ts_tensor_list *list)
{
  if (!list)
    return;
  free (list->items);
  ts_tensor_list_init (list);
}

static uint64_t
spec_n_elements (const ts_tensor_spec *spec)
{
  uint64_t n = 1;
  for (int d = 0; d < spec->n_dims; d++)
    n *= (uint64_t) spec->shape[d];
  return n;
}

uint64_t
ts_tensor_list_n_params (const ts_tensor_list *list)
{
  uint64_t n = 0;
  for (size_t i = 0; i < list->n; i++)
    n += spec_n_elements (&list->items[i]);
  return n;
}

const ts_tensor_spec *
ts_tensor_list_find (const ts_tensor_list *list, const char *name)
{
  for (size_t i = 0; i < list->n; i++)
    if (strcmp (list->items[i].name, name) == 0)
      return &list->items[i];
  return NULL;
}

char *
ts_tensor_shape_format (const int64_t *shape, int n_dims, char *buf, size_t size)
{
  size_t used = 0;

  if (size == 0)
    return buf;
  buf[0] = '\0';
  used += (size_t) snprintf (buf, size, "[");
  for (int d = 0; d < n_dims && used < size; d++)
    used += (size_t) snprintf (buf + used, size - used, "%s%" PRId64, d ? "," : "", shape[d]);
  if (used < size)
    snprintf (buf + used, size - used, "]");
  return buf;
}

/* ---- enumerating ---- */

void
ts_spec_add (ts_spec_sink *s, const char *prefix, const char *leaf, int n_dims,
             const int64_t *shape)
{
  ts_tensor_spec spec;
  int written;

  if (s->status != TS_OK)
    return;
  spec.n_dims = n_dims;
  for (int d = 0; d < TS_TENSOR_MAX_DIMS; d++)
    spec.shape[d] = d < n_dims ? shape[d] : 0;
  written = snprintf (spec.name, sizeof spec.name, "%s%s%s", prefix, prefix[0] ? "." : "",
                      leaf);
  /* Names come from the stages' fixed formats with bounded integers. */
  TS_ASSERT (written > 0 && (size_t) written < sizeof spec.name);
  s->n_params += spec_n_elements (&spec);
  s->n_tensors++;
  if (!s->list)
    return;
  if (s->list->n == s->list->capacity) {
    size_t cap = s->list->capacity ? 2 * s->list->capacity : 256;
    ts_tensor_spec *items = realloc (s->list->items, cap * sizeof *items);
    if (!items) {
      s->status = ts_error_set (s->err, TS_ERR_NOMEM, "out of memory for the tensor table");
      return;
    }
    s->list->items = items;
    s->list->capacity = cap;
  }
  s->list->items[s->list->n++] = spec;
}

void
ts_spec_add_1d (ts_spec_sink *s, const char *prefix, const char *leaf, int64_t n)
{
  ts_spec_add (s, prefix, leaf, 1, (int64_t[]) { n });
}

void
ts_spec_add_2d (ts_spec_sink *s, const char *prefix, const char *leaf, int64_t a, int64_t b)
{
  ts_spec_add (s, prefix, leaf, 2, (int64_t[]) { a, b });
}

/* nn.Linear(in, out): weight [out, in], bias [out]. */
void
ts_spec_add_linear (ts_spec_sink *s, const char *prefix, const char *module, int64_t out,
                    int64_t in, bool bias)
{
  char p[TS_TENSOR_NAME_MAX];

  snprintf (p, sizeof p, "%s%s%s", prefix, prefix[0] ? "." : "", module);
  ts_spec_add_2d (s, p, "weight", out, in);
  if (bias)
    ts_spec_add_1d (s, p, "bias", out);
}

/* nn.Conv2d(in, out, k): weight [out, in, k, k] (ConvTranspose2d: [in, out, k, k]). */
void
ts_spec_add_conv (ts_spec_sink *s, const char *prefix, const char *module, int64_t d0,
                  int64_t d1, int64_t k, bool bias)
{
  char p[TS_TENSOR_NAME_MAX];

  snprintf (p, sizeof p, "%s%s%s", prefix, prefix[0] ? "." : "", module);
  ts_spec_add (s, p, "weight", 4, (int64_t[]) { d0, d1, k, k });
  if (bias)
    ts_spec_add_1d (s, p, "bias", d0);
}

/* Affine norms: GroupNorm / LayerNorm (weight and bias) or RMSNorm (weight only). */
void
ts_spec_add_norm (ts_spec_sink *s, const char *prefix, const char *module, int64_t n, bool bias)
{
  char p[TS_TENSOR_NAME_MAX];

  snprintf (p, sizeof p, "%s%s%s", prefix, prefix[0] ? "." : "", module);
  ts_spec_add_1d (s, p, "weight", n);
  if (bias)
    ts_spec_add_1d (s, p, "bias", n);
}

