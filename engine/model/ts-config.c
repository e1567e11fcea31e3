/* SPDX-License-Identifier: MIT
 *
 * ts-config — JSON configs → config structs, and the expected tensor tables. See
 * ts-config.h.
 *
 * The defaults mirror the constructors of the official classes: Meissonic
 * `Transformer2DModel.__init__` (src/transformer.py, viiika/Meissonic @ 9360def),
 * diffusers `VQModel.__init__` (v0.31.0), transformers `CLIPTextConfig.__init__`
 * (4.46) and Meissonic `Scheduler.__init__` (whose `mask_token_id` has no default).
 * The tensor tables mirror the modules those constructors build; their names are the
 * `state_dict()` keys of the checkpoints.
 */
#include "model/ts-config.h"

#include "core/ts-common.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#define CONFIG_MAX_FILE_BYTES (4u * 1024u * 1024u)

/* ---- reading and parsing ---------------------------------------------------------- */

static ts_status
read_text_file (const char *path, char **out_text, size_t *out_len, ts_error *err)
{
  FILE *f = NULL;
  char *text = NULL;
  long size;
  ts_status st;

  f = fopen (path, "rb");
  if (!f) {
    if (errno == ENOENT)
      st = ts_error_set (err, TS_ERR_NOT_FOUND, "%s: not found", path);
    else
      st = ts_error_set (err, TS_ERR_IO, "%s: cannot open: %s", path, strerror (errno));
    goto fail;
  }
  if (fseek (f, 0, SEEK_END) != 0 || (size = ftell (f)) < 0 || fseek (f, 0, SEEK_SET) != 0) {
    st = ts_error_set (err, TS_ERR_IO, "%s: cannot read: %s", path, strerror (errno));
    goto fail;
  }
  if ((unsigned long) size > CONFIG_MAX_FILE_BYTES) {
    st = ts_error_set (err, TS_ERR_FORMAT, "%s: %ld bytes is too large for a config file",
                       path, size);
    goto fail;
  }
  text = malloc ((size_t) size + 1);
  if (!text) {
    st = ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory", path);
    goto fail;
  }
  if (size > 0 && fread (text, 1, (size_t) size, f) != (size_t) size) {
    st = ts_error_set (err, TS_ERR_IO, "%s: read failed", path);
    goto fail;
  }
  text[size] = '\0';
  fclose (f);
  *out_text = text;
  *out_len = (size_t) size;
  return TS_OK;

fail:
  free (text);
  if (f)
    fclose (f);
  return st;
}

/* Parses a JSON object. Unlike cJSON alone it rejects trailing data (as Python's json
 * does) and reports where the syntax breaks as line:column. */
static ts_status
parse_json_object (const char *text, size_t len, const char *name, cJSON **out, ts_error *err)
{
  char *copy = NULL;
  cJSON *root = NULL;
  const char *end = NULL;
  ts_status st;

  /* cJSON is given a NUL-terminated private copy, so no parse path can read past it. */
  copy = malloc (len + 1);
  if (!copy)
    return ts_error_set (err, TS_ERR_NOMEM, "%s: out of memory", name);
  if (len > 0)
    memcpy (copy, text, len);
  copy[len] = '\0';

  root = cJSON_ParseWithLengthOpts (copy, len, &end, false);
  if (root && end) {
    size_t off = (size_t) (end - copy);
    while (off < len && (copy[off] == ' ' || copy[off] == '\t' || copy[off] == '\n' ||
                         copy[off] == '\r'))
      off++;
    if (off < len) {
      cJSON_Delete (root);
      root = NULL;
      end = copy + off;
    }
  }
  if (!root) {
    size_t off = end ? (size_t) (end - copy) : 0, line = 1, col = 1;
    if (off > len)
      off = len;
    for (size_t i = 0; i < off; i++) {
      if (copy[i] == '\n') {
        line++;
        col = 1;
      } else {
        col++;
      }
    }
    st = ts_error_set (err, TS_ERR_FORMAT, "%s: invalid JSON at line %zu, column %zu", name,
                       line, col);
    goto fail;
  }
  if (!cJSON_IsObject (root)) {
    st = ts_error_set (err, TS_ERR_FORMAT, "%s: expected a JSON object at the top level",
                       name);
    goto fail;
  }
  free (copy);
  *out = root;
  return TS_OK;

fail:
  cJSON_Delete (root);
  free (copy);
  return st;
}

/* ---- typed key access ------------------------------------------------------------- */

typedef struct {
  const cJSON *obj;
  const char *file;  /* for messages */
  const char *cls;   /* the official class, for "has no default" messages */
  ts_error *err;
} json_ctx;

enum {
  KEY_OPTIONAL = 0,
  KEY_REQUIRED = 1 << 0, /* the official class has no default */
  KEY_NULLABLE = 1 << 1, /* null is a meaningful value (reported through is_null) */
};

static const char *
json_type_name (const cJSON *item)
{
  if (cJSON_IsString (item))
    return "a string";
  if (cJSON_IsNumber (item))
    return "a number";
  if (cJSON_IsBool (item))
    return "a boolean";
  if (cJSON_IsNull (item))
    return "null";
  if (cJSON_IsArray (item))
    return "an array";
  if (cJSON_IsObject (item))
    return "an object";
  return "an invalid value";
}

/* The item for key, or NULL when absent; absent + KEY_REQUIRED sets the error. */
static ts_status
json_lookup (const json_ctx *c, const char *key, unsigned flags, const cJSON **item)
{
  *item = cJSON_GetObjectItemCaseSensitive (c->obj, key);
  if (!*item && (flags & KEY_REQUIRED))
    return ts_error_set (c->err, TS_ERR_FORMAT,
                         "%s: missing key '%s' (%s has no default for it)", c->file, key,
                         c->cls);
  return TS_OK;
}

static ts_status
type_error (const json_ctx *c, const char *key, const char *expected, const cJSON *item)
{
  return ts_error_set (c->err, TS_ERR_FORMAT, "%s: key '%s': expected %s, got %s", c->file,
                       key, expected, json_type_name (item));
}

static ts_status
item_to_int64 (const json_ctx *c, const char *key, const cJSON *item, int64_t *out)
{
  double v;

  if (!cJSON_IsNumber (item))
    return type_error (c, key, "an integer", item);
  v = item->valuedouble;
  /* Exact integers only (±2^53 is where doubles stop being exact). */
  if (!(fabs (v) <= 9007199254740992.0) || v != floor (v))
    return ts_error_set (c->err, TS_ERR_FORMAT, "%s: key '%s': expected an integer, got %g",
                         c->file, key, v);
  *out = (int64_t) v;
  return TS_OK;
}

/* Leaves *inout (the default) untouched when the key is absent. */
static ts_status
json_int64 (const json_ctx *c, const char *key, unsigned flags, int64_t *inout, bool *is_null)
{
  const cJSON *item;
  ts_status st;

  if (is_null)
    *is_null = false;
  st = json_lookup (c, key, flags, &item);
  if (st != TS_OK || !item)
    return st;
  if (cJSON_IsNull (item) && (flags & KEY_NULLABLE)) {
    if (is_null)
      *is_null = true;
    return TS_OK;
  }
  return item_to_int64 (c, key, item, inout);
}

static ts_status
check_range (const json_ctx *c, const char *key, int64_t v, int64_t lo, int64_t hi)
{
  if (v < lo || v > hi)
    return ts_error_set (c->err, TS_ERR_FORMAT, "%s: key '%s' is %" PRId64
                         ": must be between %" PRId64 " and %" PRId64,
                         c->file, key, v, lo, hi);
  return TS_OK;
}

/* A size: an integer in [1, TS_CONFIG_MAX_DIM] (layer counts: TS_CONFIG_MAX_LAYERS). */
static ts_status
json_size (const json_ctx *c, const char *key, unsigned flags, int64_t max, int *inout)
{
  int64_t v = *inout;
  ts_status st;

  st = json_int64 (c, key, flags, &v, NULL);
  if (st == TS_OK)
    st = check_range (c, key, v, 1, max);
  if (st == TS_OK)
    *inout = (int) v;
  return st;
}

static ts_status
json_bool (const json_ctx *c, const char *key, unsigned flags, bool *inout)
{
  const cJSON *item;
  ts_status st = json_lookup (c, key, flags, &item);

  if (st != TS_OK || !item)
    return st;
  if (!cJSON_IsBool (item))
    return type_error (c, key, "true or false", item);
  *inout = cJSON_IsTrue (item);
  return TS_OK;
}

static ts_status
json_number (const json_ctx *c, const char *key, unsigned flags, double *inout)
{
  const cJSON *item;
  ts_status st = json_lookup (c, key, flags, &item);

  if (st != TS_OK || !item)
    return st;
  if (!cJSON_IsNumber (item))
    return type_error (c, key, "a number", item);
  *inout = item->valuedouble;
  return TS_OK;
}

/* Sets *value to the string (borrowed from the JSON tree); untouched when absent. */
static ts_status
json_string (const json_ctx *c, const char *key, unsigned flags, const char **value)
{
  const cJSON *item;
  ts_status st = json_lookup (c, key, flags, &item);

  if (st != TS_OK || !item)
    return st;
  if (!cJSON_IsString (item) || !item->valuestring)
    return type_error (c, key, "a string", item);
  *value = item->valuestring;
  return TS_OK;
}

static void
copy_name (char *dst, const char *src)
{
  snprintf (dst, TS_CONFIG_NAME_MAX, "%s", src ? src : "");
}

/* An array of sizes, each in [1, TS_CONFIG_MAX_DIM]; at most max_n entries (more is
 * TS_ERR_UNSUPPORTED). Untouched when absent. */
static ts_status
json_size_array (const json_ctx *c, const char *key, unsigned flags, int *values, int max_n,
                 int *n)
{
  const cJSON *item, *elem;
  ts_status st = json_lookup (c, key, flags, &item);
  int count, i = 0;

  if (st != TS_OK || !item)
    return st;
  if (!cJSON_IsArray (item))
    return type_error (c, key, "an array of integers", item);
  count = cJSON_GetArraySize (item);
  if (count == 0)
    return ts_error_set (c->err, TS_ERR_FORMAT, "%s: key '%s' is an empty array", c->file,
                         key);
  if (count > max_n)
    return ts_error_set (c->err, TS_ERR_UNSUPPORTED,
                         "%s: key '%s' has %d entries; at most %d are supported", c->file,
                         key, count, max_n);
  cJSON_ArrayForEach (elem, item)
  {
    char elem_key[96];
    int64_t v = 0;

    snprintf (elem_key, sizeof elem_key, "%s[%d]", key, i);
    st = item_to_int64 (c, elem_key, elem, &v);
    if (st == TS_OK)
      st = check_range (c, elem_key, v, 1, TS_CONFIG_MAX_DIM);
    if (st != TS_OK)
      return st;
    values[i++] = (int) v;
  }
  *n = count;
  return TS_OK;
}

/* Checks an array of block type names: n entries, each equal to `expected`. Absent →
 * the class default, a single `expected`. */
static ts_status
json_block_types (const json_ctx *c, const char *key, const char *expected, int n)
{
  const cJSON *item, *elem;
  ts_status st = json_lookup (c, key, KEY_OPTIONAL, &item);
  int count = 1, i = 0;

  if (st != TS_OK)
    return st;
  if (item) {
    if (!cJSON_IsArray (item))
      return type_error (c, key, "an array of strings", item);
    count = cJSON_GetArraySize (item);
    cJSON_ArrayForEach (elem, item)
    {
      if (!cJSON_IsString (elem) || !elem->valuestring)
        return ts_error_set (c->err, TS_ERR_FORMAT,
                             "%s: key '%s[%d]': expected a string, got %s", c->file, key, i,
                             json_type_name (elem));
      if (strcmp (elem->valuestring, expected) != 0)
        return ts_error_set (c->err, TS_ERR_UNSUPPORTED,
                             "%s: %s[%d] is '%s': only %s is supported", c->file, key, i,
                             elem->valuestring, expected);
      i++;
    }
  }
  if (count != n)
    return ts_error_set (c->err, TS_ERR_FORMAT,
                         "%s: key '%s' has %d entr%s but block_out_channels has %d%s",
                         c->file, key, count, count == 1 ? "y" : "ies", n,
                         item ? "" : " (absent: the default is 1)");
  return TS_OK;
}

/* ---- Transformer2DModel ----------------------------------------------------------- */

ts_status
ts_transformer_config_from_json_text (const char *text, size_t len, const char *name,
                                      ts_transformer_config *out, ts_error *err)
{
  /* Defaults of Meissonic's Transformer2DModel.__init__. */
  ts_transformer_config cfg = {
    .attention_head_dim = 128,
    .num_attention_heads = 24,
    .num_layers = 19,
    .num_single_layers = 38,
    .joint_attention_dim = 4096,
    .pooled_projection_dim = 768,
    .codebook_size = 8192,
    .vocab_size = 8256,
    .axes_dims_rope = { 16, 56, 56 },
    .downsample = false,
    .upsample = false,
    .in_channels = 64,
    .patch_size = 1,
  };
  cJSON *root = NULL;
  const char *class_name = "";
  bool guidance_embeds = false;
  int n_axes = 3, axes_sum;
  int64_t inner;
  ts_status st;
  json_ctx c;

  TS_TRY (parse_json_object (text, len, name, &root, err));
  c = (json_ctx) { root, name, "Transformer2DModel", err };

  TS_TRY (json_string (&c, "_class_name", KEY_OPTIONAL, &class_name));
  copy_name (cfg.class_name, class_name);
  TS_TRY (json_size (&c, "attention_head_dim", KEY_OPTIONAL, TS_CONFIG_MAX_DIM,
                     &cfg.attention_head_dim));
  TS_TRY (json_size (&c, "num_attention_heads", KEY_OPTIONAL, TS_CONFIG_MAX_DIM,
                     &cfg.num_attention_heads));
  TS_TRY (json_size (&c, "num_layers", KEY_OPTIONAL, TS_CONFIG_MAX_LAYERS, &cfg.num_layers));
  TS_TRY (json_size (&c, "num_single_layers", KEY_OPTIONAL, TS_CONFIG_MAX_LAYERS,
                     &cfg.num_single_layers));
  TS_TRY (json_size (&c, "joint_attention_dim", KEY_OPTIONAL, TS_CONFIG_MAX_DIM,
                     &cfg.joint_attention_dim));
  TS_TRY (json_size (&c, "pooled_projection_dim", KEY_OPTIONAL, TS_CONFIG_MAX_DIM,
                     &cfg.pooled_projection_dim));
  TS_TRY (json_size (&c, "codebook_size", KEY_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.codebook_size));
  TS_TRY (json_size (&c, "vocab_size", KEY_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.vocab_size));
  TS_TRY (json_size_array (&c, "axes_dims_rope", KEY_OPTIONAL, cfg.axes_dims_rope, 3, &n_axes));
  TS_TRY (json_bool (&c, "downsample", KEY_OPTIONAL, &cfg.downsample));
  TS_TRY (json_bool (&c, "upsample", KEY_OPTIONAL, &cfg.upsample));
  TS_TRY (json_bool (&c, "guidance_embeds", KEY_OPTIONAL, &guidance_embeds));
  TS_TRY (json_size (&c, "in_channels", KEY_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.in_channels));
  TS_TRY (json_size (&c, "patch_size", KEY_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.patch_size));

  inner = (int64_t) cfg.num_attention_heads * cfg.attention_head_dim;
  if (inner > TS_CONFIG_MAX_DIM) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "%s: num_attention_heads x attention_head_dim = %" PRId64
                       " is larger than %d",
                       name, inner, TS_CONFIG_MAX_DIM);
    goto fail;
  }
  cfg.inner_dim = (int) inner;
  if (n_axes != 3) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "%s: axes_dims_rope has %d entries; the position ids have 3 axes",
                       name, n_axes);
    goto fail;
  }
  axes_sum = cfg.axes_dims_rope[0] + cfg.axes_dims_rope[1] + cfg.axes_dims_rope[2];
  for (int i = 0; i < 3; i++) {
    if (cfg.axes_dims_rope[i] % 2 != 0) {
      st = ts_error_set (err, TS_ERR_FORMAT,
                         "%s: axes_dims_rope[%d] is %d: each RoPE axis needs an even width",
                         name, i, cfg.axes_dims_rope[i]);
      goto fail;
    }
  }
  if (axes_sum != cfg.attention_head_dim) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "%s: axes_dims_rope [%d,%d,%d] sums to %d but attention_head_dim is %d",
                       name, cfg.axes_dims_rope[0], cfg.axes_dims_rope[1],
                       cfg.axes_dims_rope[2], axes_sum, cfg.attention_head_dim);
    goto fail;
  }
  if (cfg.pooled_projection_dim != cfg.inner_dim) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "%s: pooled_projection_dim (%d) must equal num_attention_heads x "
                       "attention_head_dim (%d): cond_embed's output feeds "
                       "time_text_embed.text_embedder",
                       name, cfg.pooled_projection_dim, cfg.inner_dim);
    goto fail;
  }
  if (cfg.vocab_size <= cfg.codebook_size) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "%s: vocab_size (%d) must be larger than codebook_size (%d): the mask "
                       "token id lies above the codebook",
                       name, cfg.vocab_size, cfg.codebook_size);
    goto fail;
  }
  if (guidance_embeds) {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                       "%s: guidance_embeds is true: guidance-distilled Meissonic models are "
                       "not supported",
                       name);
    goto fail;
  }
  cJSON_Delete (root);
  *out = cfg;
  return TS_OK;

fail:
  cJSON_Delete (root);
  return st;
}

/* ---- VQModel ---------------------------------------------------------------------- */

ts_status
ts_vq_config_from_json_text (const char *text, size_t len, const char *name, ts_vq_config *out,
                             ts_error *err)
{
  /* Defaults of diffusers VQModel.__init__ (v0.31.0). */
  ts_vq_config cfg = {
    .in_channels = 3,
    .out_channels = 3,
    .latent_channels = 3,
    .n_blocks = 1,
    .block_out_channels = { 64 },
    .layers_per_block = 1,
    .norm_num_groups = 32,
    .num_vq_embeddings = 256,
    .vq_embed_dim = 0,
    .sample_size = 32,
    .mid_block_add_attention = true,
    .lookup_from_codebook = false,
    .force_upcast = false,
    .scaling_factor = 0.18215,
  };
  cJSON *root = NULL;
  const char *class_name = "", *act_fn = "silu", *norm_type = "group";
  int64_t vq_embed_dim;
  bool vq_embed_dim_null;
  ts_status st;
  json_ctx c;

  TS_TRY (parse_json_object (text, len, name, &root, err));
  c = (json_ctx) { root, name, "VQModel", err };

  TS_TRY (json_string (&c, "_class_name", KEY_OPTIONAL, &class_name));
  copy_name (cfg.class_name, class_name);
  TS_TRY (json_size (&c, "in_channels", KEY_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.in_channels));
  TS_TRY (json_size (&c, "out_channels", KEY_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.out_channels));
  TS_TRY (json_size (&c, "latent_channels", KEY_OPTIONAL, TS_CONFIG_MAX_DIM,
                     &cfg.latent_channels));
  TS_TRY (json_size_array (&c, "block_out_channels", KEY_OPTIONAL, cfg.block_out_channels,
                           TS_VQ_MAX_BLOCKS, &cfg.n_blocks));
  TS_TRY (json_block_types (&c, "down_block_types", "DownEncoderBlock2D", cfg.n_blocks));
  TS_TRY (json_block_types (&c, "up_block_types", "UpDecoderBlock2D", cfg.n_blocks));
  /* 256 resnets per block is far beyond any VQ-VAE and keeps the counts bounded. */
  TS_TRY (json_size (&c, "layers_per_block", KEY_OPTIONAL, 256, &cfg.layers_per_block));
  TS_TRY (json_size (&c, "norm_num_groups", KEY_OPTIONAL, TS_CONFIG_MAX_DIM,
                     &cfg.norm_num_groups));
  TS_TRY (json_size (&c, "num_vq_embeddings", KEY_OPTIONAL, TS_CONFIG_MAX_DIM,
                     &cfg.num_vq_embeddings));
  /* Absent or null: the codebook is latent_channels wide. */
  vq_embed_dim = cfg.latent_channels;
  TS_TRY (json_int64 (&c, "vq_embed_dim", KEY_NULLABLE, &vq_embed_dim, &vq_embed_dim_null));
  if (vq_embed_dim_null)
    vq_embed_dim = cfg.latent_channels;
  TS_TRY (check_range (&c, "vq_embed_dim", vq_embed_dim, 1, TS_CONFIG_MAX_DIM));
  cfg.vq_embed_dim = (int) vq_embed_dim;
  TS_TRY (json_size (&c, "sample_size", KEY_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.sample_size));
  TS_TRY (json_bool (&c, "mid_block_add_attention", KEY_OPTIONAL, &cfg.mid_block_add_attention));
  TS_TRY (json_bool (&c, "lookup_from_codebook", KEY_OPTIONAL, &cfg.lookup_from_codebook));
  TS_TRY (json_bool (&c, "force_upcast", KEY_OPTIONAL, &cfg.force_upcast));
  TS_TRY (json_number (&c, "scaling_factor", KEY_OPTIONAL, &cfg.scaling_factor));
  TS_TRY (json_string (&c, "act_fn", KEY_OPTIONAL, &act_fn));
  TS_TRY (json_string (&c, "norm_type", KEY_OPTIONAL, &norm_type));

  if (strcmp (act_fn, "silu") != 0) {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                       "%s: act_fn is '%s': only silu is supported", name, act_fn);
    goto fail;
  }
  if (strcmp (norm_type, "group") != 0) {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                       "%s: norm_type is '%s': only group is supported", name, norm_type);
    goto fail;
  }
  if (cfg.mid_block_add_attention) {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                       "%s: mid_block_add_attention is %s: VQ mid-block attention is not "
                       "supported yet (Meissonic's VQ-VAE has none)",
                       name, cJSON_GetObjectItemCaseSensitive (root, "mid_block_add_attention")
                               ? "true"
                               : "absent (default true)");
    goto fail;
  }
  for (int i = 0; i < cfg.n_blocks; i++) {
    if (cfg.block_out_channels[i] % cfg.norm_num_groups != 0) {
      st = ts_error_set (err, TS_ERR_FORMAT,
                         "%s: block_out_channels[%d] = %d is not a multiple of "
                         "norm_num_groups (%d)",
                         name, i, cfg.block_out_channels[i], cfg.norm_num_groups);
      goto fail;
    }
  }
  if (!isfinite (cfg.scaling_factor)) {
    st = ts_error_set (err, TS_ERR_FORMAT, "%s: scaling_factor is not finite", name);
    goto fail;
  }
  cfg.vae_scale_factor = 1 << (cfg.n_blocks - 1);
  cJSON_Delete (root);
  *out = cfg;
  return TS_OK;

fail:
  cJSON_Delete (root);
  return st;
}

/* ---- CLIPTextConfig --------------------------------------------------------------- */

ts_status
ts_clip_text_config_from_json_text (const char *text, size_t len, const char *name,
                                    ts_clip_text_config *out, ts_error *err)
{
  /* Defaults of transformers CLIPTextConfig.__init__. */
  ts_clip_text_config cfg = {
    .vocab_size = 49408,
    .hidden_size = 512,
    .intermediate_size = 2048,
    .num_hidden_layers = 12,
    .num_attention_heads = 8,
    .max_position_embeddings = 77,
    .projection_dim = 512,
    .layer_norm_eps = 1e-5,
    .hidden_act = TS_CLIP_ACT_QUICK_GELU,
    .eos_token_id = 49407,
    .bos_token_id = 49406,
    .pad_token_id = 1,
  };
  cJSON *root = NULL;
  const cJSON *obj, *text_config, *arch;
  const char *act = "quick_gelu";
  char sub_name[512];
  bool is_null;
  ts_status st;
  json_ctx c;

  TS_TRY (parse_json_object (text, len, name, &root, err));
  obj = root;
  /* A full CLIPConfig: transformers reads the text tower from "text_config". */
  text_config = cJSON_GetObjectItemCaseSensitive (root, "text_config");
  if (text_config) {
    if (!cJSON_IsObject (text_config)) {
      c = (json_ctx) { root, name, "CLIPConfig", err };
      st = type_error (&c, "text_config", "an object", text_config);
      goto fail;
    }
    obj = text_config;
    snprintf (sub_name, sizeof sub_name, "%s (text_config)", name);
    name = sub_name;
  }
  c = (json_ctx) { obj, name, "CLIPTextConfig", err };

  {
    const char *model_type = NULL;
    json_ctx top = { root, name, "CLIPTextConfig", err };
    TS_TRY (json_string (&top, "model_type", KEY_OPTIONAL, &model_type));
    if (model_type && strcmp (model_type, "clip_text_model") != 0 &&
        strcmp (model_type, "clip") != 0) {
      st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                         "%s: model_type is '%s': expected a CLIP text model (clip_text_model)",
                         name, model_type);
      goto fail;
    }
  }
  arch = cJSON_GetObjectItemCaseSensitive (root, "architectures");
  if (arch) {
    const cJSON *first = cJSON_IsArray (arch) ? cJSON_GetArrayItem (arch, 0) : NULL;
    if (!cJSON_IsArray (arch) || (first && !cJSON_IsString (first))) {
      c.obj = root;
      st = type_error (&c, "architectures", "an array of strings", arch);
      goto fail;
    }
    if (first)
      copy_name (cfg.class_name, first->valuestring);
  }

  TS_TRY (json_size (&c, "vocab_size", KEY_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.vocab_size));
  TS_TRY (json_size (&c, "hidden_size", KEY_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.hidden_size));
  TS_TRY (json_size (&c, "intermediate_size", KEY_OPTIONAL, TS_CONFIG_MAX_DIM,
                     &cfg.intermediate_size));
  TS_TRY (json_size (&c, "num_hidden_layers", KEY_OPTIONAL, TS_CONFIG_MAX_LAYERS,
                     &cfg.num_hidden_layers));
  TS_TRY (json_size (&c, "num_attention_heads", KEY_OPTIONAL, TS_CONFIG_MAX_DIM,
                     &cfg.num_attention_heads));
  TS_TRY (json_size (&c, "max_position_embeddings", KEY_OPTIONAL, TS_CONFIG_MAX_DIM,
                     &cfg.max_position_embeddings));
  TS_TRY (json_size (&c, "projection_dim", KEY_OPTIONAL, TS_CONFIG_MAX_DIM, &cfg.projection_dim));
  TS_TRY (json_number (&c, "layer_norm_eps", KEY_OPTIONAL, &cfg.layer_norm_eps));
  TS_TRY (json_string (&c, "hidden_act", KEY_OPTIONAL, &act));
  TS_TRY (json_int64 (&c, "eos_token_id", KEY_NULLABLE, &cfg.eos_token_id, &is_null));
  if (is_null)
    cfg.eos_token_id = -1;
  TS_TRY (json_int64 (&c, "bos_token_id", KEY_NULLABLE, &cfg.bos_token_id, &is_null));
  if (is_null)
    cfg.bos_token_id = -1;
  TS_TRY (json_int64 (&c, "pad_token_id", KEY_NULLABLE, &cfg.pad_token_id, &is_null));
  if (is_null)
    cfg.pad_token_id = -1;

  if (strcmp (act, "gelu") == 0) {
    cfg.hidden_act = TS_CLIP_ACT_GELU;
  } else if (strcmp (act, "quick_gelu") == 0) {
    cfg.hidden_act = TS_CLIP_ACT_QUICK_GELU;
  } else if (strcmp (act, "gelu_new") == 0) {
    cfg.hidden_act = TS_CLIP_ACT_GELU_NEW;
  } else {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                       "%s: hidden_act is '%s': supported are gelu, quick_gelu and gelu_new",
                       name, act);
    goto fail;
  }
  if (cfg.hidden_size % cfg.num_attention_heads != 0) {
    st = ts_error_set (err, TS_ERR_FORMAT,
                       "%s: hidden_size (%d) is not a multiple of num_attention_heads (%d)",
                       name, cfg.hidden_size, cfg.num_attention_heads);
    goto fail;
  }
  if (!(cfg.layer_norm_eps > 0.0) || !isfinite (cfg.layer_norm_eps)) {
    st = ts_error_set (err, TS_ERR_FORMAT, "%s: layer_norm_eps is %g: must be positive", name,
                       cfg.layer_norm_eps);
    goto fail;
  }
  cJSON_Delete (root);
  *out = cfg;
  return TS_OK;

fail:
  cJSON_Delete (root);
  return st;
}

/* ---- Scheduler -------------------------------------------------------------------- */

ts_status
ts_scheduler_config_from_json_text (const char *text, size_t len, const char *name,
                                    ts_scheduler_config *out, ts_error *err)
{
  ts_scheduler_config cfg = { .masking_schedule = TS_MASKING_COSINE };
  cJSON *root = NULL;
  const char *class_name = "", *schedule = "cosine";
  ts_status st;
  json_ctx c;

  TS_TRY (parse_json_object (text, len, name, &root, err));
  c = (json_ctx) { root, name, "Scheduler", err };

  TS_TRY (json_string (&c, "_class_name", KEY_OPTIONAL, &class_name));
  copy_name (cfg.class_name, class_name);
  TS_TRY (json_int64 (&c, "mask_token_id", KEY_REQUIRED, &cfg.mask_token_id, NULL));
  TS_TRY (check_range (&c, "mask_token_id", cfg.mask_token_id, 0, TS_CONFIG_MAX_DIM));
  TS_TRY (json_string (&c, "masking_schedule", KEY_OPTIONAL, &schedule));
  if (strcmp (schedule, "cosine") == 0) {
    cfg.masking_schedule = TS_MASKING_COSINE;
  } else if (strcmp (schedule, "linear") == 0) {
    cfg.masking_schedule = TS_MASKING_LINEAR;
  } else {
    st = ts_error_set (err, TS_ERR_UNSUPPORTED,
                       "%s: masking_schedule is '%s': supported are cosine and linear", name,
                       schedule);
    goto fail;
  }
  cJSON_Delete (root);
  *out = cfg;
  return TS_OK;

fail:
  cJSON_Delete (root);
  return st;
}

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
  json_ctx c;

  memset (&idx, 0, sizeof idx);
  TS_TRY (parse_json_object (text, len, name, &root, err));
  c = (json_ctx) { root, name, "model_index.json", err };
  TS_TRY (json_string (&c, "_class_name", KEY_OPTIONAL, &class_name));
  copy_name (idx.class_name, class_name);
  TS_TRY (json_number (&c, "_tessera_guidance_scale", KEY_OPTIONAL, &idx.guidance_scale));
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
                                              : json_type_name (item));
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
                         name, key, json_type_name (lib), json_type_name (cls));
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
    copy_name (idx.components[i].library, lib->valuestring);
    copy_name (idx.components[i].class_name, cls->valuestring);
  }
  cJSON_Delete (root);
  *out = idx;
  return TS_OK;

fail:
  cJSON_Delete (root);
  return st;
}

/* ---- from files ------------------------------------------------------------------- */

#define DEFINE_FROM_FILE(fn, text_fn, type)                                                \
  ts_status fn (const char *path, type *out, ts_error *err)                                \
  {                                                                                        \
    char *text = NULL;                                                                     \
    size_t len = 0;                                                                        \
    ts_status st = read_text_file (path, &text, &len, err);                                \
    if (st == TS_OK)                                                                       \
      st = text_fn (text, len, path, out, err);                                            \
    free (text);                                                                           \
    return st;                                                                             \
  }

DEFINE_FROM_FILE (ts_transformer_config_from_file, ts_transformer_config_from_json_text,
                  ts_transformer_config)
DEFINE_FROM_FILE (ts_vq_config_from_file, ts_vq_config_from_json_text, ts_vq_config)
DEFINE_FROM_FILE (ts_clip_text_config_from_file, ts_clip_text_config_from_json_text,
                  ts_clip_text_config)
DEFINE_FROM_FILE (ts_scheduler_config_from_file, ts_scheduler_config_from_json_text,
                  ts_scheduler_config)
DEFINE_FROM_FILE (ts_model_index_from_file, ts_model_index_from_json_text, ts_model_index)

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

const char *
ts_clip_act_name (ts_clip_act act)
{
  switch (act) {
  case TS_CLIP_ACT_GELU: return "gelu";
  case TS_CLIP_ACT_QUICK_GELU: return "quick_gelu";
  case TS_CLIP_ACT_GELU_NEW: return "gelu_new";
  }
  return "?";
}

const char *
ts_masking_schedule_name (ts_masking_schedule schedule)
{
  switch (schedule) {
  case TS_MASKING_COSINE: return "cosine";
  case TS_MASKING_LINEAR: return "linear";
  }
  return "?";
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

/* Where the enumeration goes: appended to a list, or only counted. */
typedef struct {
  ts_tensor_list *list; /* NULL: count only */
  uint64_t n_params;
  size_t n_tensors;
  ts_status status;
  ts_error *err;
} spec_sink;

static void
sink_add (spec_sink *s, const char *prefix, const char *leaf, int n_dims, const int64_t *shape)
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
  /* Names come from this file's formats with bounded integers. */
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

static void
add_1d (spec_sink *s, const char *prefix, const char *leaf, int64_t n)
{
  sink_add (s, prefix, leaf, 1, (int64_t[]) { n });
}

static void
add_2d (spec_sink *s, const char *prefix, const char *leaf, int64_t a, int64_t b)
{
  sink_add (s, prefix, leaf, 2, (int64_t[]) { a, b });
}

/* nn.Linear(in, out): weight [out, in], bias [out]. */
static void
add_linear (spec_sink *s, const char *prefix, const char *module, int64_t out, int64_t in,
            bool bias)
{
  char p[TS_TENSOR_NAME_MAX];

  snprintf (p, sizeof p, "%s%s%s", prefix, prefix[0] ? "." : "", module);
  add_2d (s, p, "weight", out, in);
  if (bias)
    add_1d (s, p, "bias", out);
}

/* nn.Conv2d(in, out, k): weight [out, in, k, k] (ConvTranspose2d: [in, out, k, k]). */
static void
add_conv (spec_sink *s, const char *prefix, const char *module, int64_t d0, int64_t d1,
          int64_t k, bool bias)
{
  char p[TS_TENSOR_NAME_MAX];

  snprintf (p, sizeof p, "%s%s%s", prefix, prefix[0] ? "." : "", module);
  sink_add (s, p, "weight", 4, (int64_t[]) { d0, d1, k, k });
  if (bias)
    add_1d (s, p, "bias", d0);
}

/* Affine norms: GroupNorm / LayerNorm (weight and bias) or RMSNorm (weight only). */
static void
add_norm (spec_sink *s, const char *prefix, const char *module, int64_t n, bool bias)
{
  char p[TS_TENSOR_NAME_MAX];

  snprintf (p, sizeof p, "%s%s%s", prefix, prefix[0] ? "." : "", module);
  add_1d (s, p, "weight", n);
  if (bias)
    add_1d (s, p, "bias", n);
}

/* ---- transformer tensors ---- */

static void
enumerate_transformer (const ts_transformer_config *c, spec_sink *s)
{
  const int64_t inner = c->inner_dim, hd = c->attention_head_dim, mlp = 4 * inner;
  /* Micro-conditioning: 5 values x 256 sinusoidal channels (quirk 3). */
  const int64_t micro_cond_dim = 5 * 256, timestep_channels = 256;
  char p[TS_TENSOR_NAME_MAX];

  /* CombinedTimestepTextProjEmbeddings */
  add_linear (s, "time_text_embed.timestep_embedder", "linear_1", inner, timestep_channels,
              true);
  add_linear (s, "time_text_embed.timestep_embedder", "linear_2", inner, inner, true);
  add_linear (s, "time_text_embed.text_embedder", "linear_1", inner, c->pooled_projection_dim,
              true);
  add_linear (s, "time_text_embed.text_embedder", "linear_2", inner, inner, true);
  add_linear (s, "", "context_embedder", inner, c->joint_attention_dim, true);

  for (int i = 0; i < c->num_layers; i++) {
    snprintf (p, sizeof p, "transformer_blocks.%d", i);
    /* AdaLayerNormZero: Linear(inner, 6 inner) */
    add_linear (s, p, "norm1.linear", 6 * inner, inner, true);
    add_linear (s, p, "norm1_context.linear", 6 * inner, inner, true);
    snprintf (p, sizeof p, "transformer_blocks.%d.attn", i);
    add_norm (s, p, "norm_q", hd, false);
    add_norm (s, p, "norm_k", hd, false);
    add_linear (s, p, "to_q", inner, inner, true);
    add_linear (s, p, "to_k", inner, inner, true);
    add_linear (s, p, "to_v", inner, inner, true);
    add_linear (s, p, "add_k_proj", inner, inner, true);
    add_linear (s, p, "add_v_proj", inner, inner, true);
    add_linear (s, p, "add_q_proj", inner, inner, true);
    add_norm (s, p, "norm_added_q", hd, false);
    add_norm (s, p, "norm_added_k", hd, false);
    add_linear (s, p, "to_out.0", inner, inner, true);
    add_linear (s, p, "to_add_out", inner, inner, true);
    snprintf (p, sizeof p, "transformer_blocks.%d", i);
    /* FeedForward(gelu-approximate): net.0 = GELU(proj), net.2 = Linear */
    add_linear (s, p, "ff.net.0.proj", mlp, inner, true);
    add_linear (s, p, "ff.net.2", inner, mlp, true);
    add_linear (s, p, "ff_context.net.0.proj", mlp, inner, true);
    add_linear (s, p, "ff_context.net.2", inner, mlp, true);
  }
  for (int i = 0; i < c->num_single_layers; i++) {
    snprintf (p, sizeof p, "single_transformer_blocks.%d", i);
    /* AdaLayerNormZeroSingle: Linear(inner, 3 inner) */
    add_linear (s, p, "norm.linear", 3 * inner, inner, true);
    add_linear (s, p, "proj_mlp", mlp, inner, true);
    add_linear (s, p, "proj_out", inner, inner + mlp, true);
    snprintf (p, sizeof p, "single_transformer_blocks.%d.attn", i);
    add_norm (s, p, "norm_q", hd, false);
    add_norm (s, p, "norm_k", hd, false);
    add_linear (s, p, "to_q", inner, inner, true);
    add_linear (s, p, "to_k", inner, inner, true);
    add_linear (s, p, "to_v", inner, inner, true);
  }

  /* UVit2DConvEmbed(inner, inner, vocab_size, affine, 1e-6, bias=False) */
  add_2d (s, "embed", "embeddings.weight", c->vocab_size, inner);
  add_norm (s, "embed", "layer_norm", inner, false);
  add_conv (s, "embed", "conv", inner, inner, 1, false);
  /* ConvMlmLayer(inner, inner, bias=False, ..., codebook_size) */
  add_conv (s, "mlm_layer", "conv1", inner, inner, 1, false);
  add_norm (s, "mlm_layer", "layer_norm", inner, false);
  add_conv (s, "mlm_layer", "conv2", c->codebook_size, inner, 1, false);
  /* TimestepEmbedding(1280 + pooled_projection_dim, inner, sample_proj_bias=False) */
  add_linear (s, "cond_embed", "linear_1", inner, micro_cond_dim + c->pooled_projection_dim,
              false);
  add_linear (s, "cond_embed", "linear_2", inner, inner, false);
  add_norm (s, "", "encoder_proj_layer_norm", inner, false);
  add_norm (s, "", "project_to_hidden_norm", inner, false);
  add_linear (s, "", "project_to_hidden", inner, inner, false);
  add_norm (s, "", "project_from_hidden_norm", inner, false);
  add_linear (s, "", "project_from_hidden", inner, inner, false);
  if (c->downsample) {
    /* Downsample2D(rms_norm, kernel 2, bias=False) */
    add_norm (s, "down_block.downsample", "norm", inner, false);
    add_conv (s, "down_block.downsample", "conv", inner, inner, 2, false);
  }
  if (c->upsample) {
    /* Upsample2D(rms_norm, conv transpose kernel 2, bias=False): weight [in, out, 2, 2] */
    add_norm (s, "up_block.upsample", "norm", inner, false);
    add_conv (s, "up_block.upsample", "conv", inner, inner, 2, false);
  }
}

/* ---- VQ tensors ---- */

/* ResnetBlock2D(in, out, groups): GroupNorm → conv3x3 → GroupNorm → conv3x3, plus a 1x1
 * conv shortcut when the channel count changes. */
static void
add_resnet (spec_sink *s, const char *prefix, int64_t in, int64_t out)
{
  add_norm (s, prefix, "norm1", in, true);
  add_conv (s, prefix, "conv1", out, in, 3, true);
  add_norm (s, prefix, "norm2", out, true);
  add_conv (s, prefix, "conv2", out, out, 3, true);
  if (in != out)
    add_conv (s, prefix, "conv_shortcut", out, in, 1, true);
}

/* UNetMidBlock2D without attention: two resnets at the deepest width. */
static void
add_mid_block (spec_sink *s, const char *prefix, int64_t ch)
{
  char p[TS_TENSOR_NAME_MAX];

  for (int j = 0; j < 2; j++) {
    snprintf (p, sizeof p, "%s.mid_block.resnets.%d", prefix, j);
    add_resnet (s, p, ch, ch);
  }
}

static void
enumerate_vq (const ts_vq_config *c, spec_sink *s)
{
  const int n = c->n_blocks;
  char p[TS_TENSOR_NAME_MAX];
  int64_t prev;

  /* Encoder */
  add_conv (s, "encoder", "conv_in", c->block_out_channels[0], c->in_channels, 3, true);
  prev = c->block_out_channels[0];
  for (int i = 0; i < n; i++) {
    const int64_t out = c->block_out_channels[i];
    /* DownEncoderBlock2D(layers_per_block resnets, Downsample2D on all but the last) */
    for (int j = 0; j < c->layers_per_block; j++) {
      snprintf (p, sizeof p, "encoder.down_blocks.%d.resnets.%d", i, j);
      add_resnet (s, p, j == 0 ? prev : out, out);
    }
    if (i != n - 1) {
      snprintf (p, sizeof p, "encoder.down_blocks.%d.downsamplers.0", i);
      add_conv (s, p, "conv", out, out, 3, true);
    }
    prev = out;
  }
  add_mid_block (s, "encoder", c->block_out_channels[n - 1]);
  add_norm (s, "encoder", "conv_norm_out", c->block_out_channels[n - 1], true);
  add_conv (s, "encoder", "conv_out", c->latent_channels, c->block_out_channels[n - 1], 3,
            true);

  add_conv (s, "", "quant_conv", c->vq_embed_dim, c->latent_channels, 1, true);
  add_2d (s, "quantize", "embedding.weight", c->num_vq_embeddings, c->vq_embed_dim);
  add_conv (s, "", "post_quant_conv", c->latent_channels, c->vq_embed_dim, 1, true);

  /* Decoder: up blocks walk block_out_channels in reverse. */
  add_conv (s, "decoder", "conv_in", c->block_out_channels[n - 1], c->latent_channels, 3, true);
  add_mid_block (s, "decoder", c->block_out_channels[n - 1]);
  prev = c->block_out_channels[n - 1];
  for (int i = 0; i < n; i++) {
    const int64_t out = c->block_out_channels[n - 1 - i];
    /* UpDecoderBlock2D(layers_per_block + 1 resnets, Upsample2D on all but the last) */
    for (int j = 0; j < c->layers_per_block + 1; j++) {
      snprintf (p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
      add_resnet (s, p, j == 0 ? prev : out, out);
    }
    if (i != n - 1) {
      snprintf (p, sizeof p, "decoder.up_blocks.%d.upsamplers.0", i);
      add_conv (s, p, "conv", out, out, 3, true);
    }
    prev = out;
  }
  add_norm (s, "decoder", "conv_norm_out", c->block_out_channels[0], true);
  add_conv (s, "decoder", "conv_out", c->out_channels, c->block_out_channels[0], 3, true);
}

/* ---- CLIP tensors ---- */

static void
enumerate_clip (const ts_clip_text_config *c, spec_sink *s)
{
  const int64_t h = c->hidden_size;
  char p[TS_TENSOR_NAME_MAX];

  add_2d (s, "text_model.embeddings", "token_embedding.weight", c->vocab_size, h);
  add_2d (s, "text_model.embeddings", "position_embedding.weight", c->max_position_embeddings,
          h);
  for (int i = 0; i < c->num_hidden_layers; i++) {
    snprintf (p, sizeof p, "text_model.encoder.layers.%d", i);
    add_linear (s, p, "self_attn.k_proj", h, h, true);
    add_linear (s, p, "self_attn.v_proj", h, h, true);
    add_linear (s, p, "self_attn.q_proj", h, h, true);
    add_linear (s, p, "self_attn.out_proj", h, h, true);
    add_norm (s, p, "layer_norm1", h, true);
    add_linear (s, p, "mlp.fc1", c->intermediate_size, h, true);
    add_linear (s, p, "mlp.fc2", h, c->intermediate_size, true);
    add_norm (s, p, "layer_norm2", h, true);
  }
  add_norm (s, "text_model", "final_layer_norm", h, true);
  add_linear (s, "", "text_projection", c->projection_dim, h, false);
}

ts_status
ts_transformer_config_tensors (const ts_transformer_config *config, ts_tensor_list *out,
                               ts_error *err)
{
  spec_sink s = { .list = out, .err = err };
  enumerate_transformer (config, &s);
  return s.status;
}

ts_status
ts_vq_config_tensors (const ts_vq_config *config, ts_tensor_list *out, ts_error *err)
{
  spec_sink s = { .list = out, .err = err };
  enumerate_vq (config, &s);
  return s.status;
}

ts_status
ts_clip_text_config_tensors (const ts_clip_text_config *config, ts_tensor_list *out,
                             ts_error *err)
{
  spec_sink s = { .list = out, .err = err };
  enumerate_clip (config, &s);
  return s.status;
}

uint64_t
ts_transformer_config_n_params (const ts_transformer_config *config)
{
  spec_sink s = { 0 };
  enumerate_transformer (config, &s);
  return s.n_params;
}

uint64_t
ts_vq_config_n_params (const ts_vq_config *config)
{
  spec_sink s = { 0 };
  enumerate_vq (config, &s);
  return s.n_params;
}

uint64_t
ts_clip_text_config_n_params (const ts_clip_text_config *config)
{
  spec_sink s = { 0 };
  enumerate_clip (config, &s);
  return s.n_params;
}

/* ---- summaries -------------------------------------------------------------------- */

void
ts_transformer_config_summary (const ts_transformer_config *c, char *buf, size_t size)
{
  const char *resample = c->downsample && c->upsample ? "2x down/upsampled token grid"
                         : c->downsample              ? "2x downsampled token grid"
                         : c->upsample                ? "2x upsampled token grid"
                                                      : "full-resolution token grid";

  snprintf (buf, size,
            "%d dual-stream + %d single-stream blocks, %d heads x %d = %d wide, text %d -> %d, "
            "codebook %d (vocab %d), RoPE axes [%d,%d,%d], %s",
            c->num_layers, c->num_single_layers, c->num_attention_heads, c->attention_head_dim,
            c->inner_dim, c->joint_attention_dim, c->inner_dim, c->codebook_size,
            c->vocab_size, c->axes_dims_rope[0], c->axes_dims_rope[1], c->axes_dims_rope[2],
            resample);
}

void
ts_vq_config_summary (const ts_vq_config *c, char *buf, size_t size)
{
  char channels[TS_VQ_MAX_BLOCKS * 12 + 4];
  size_t used = 0;

  channels[0] = '\0';
  for (int i = 0; i < c->n_blocks; i++)
    used += (size_t) snprintf (channels + used, sizeof channels - used, "%s%d", i ? "," : "",
                               c->block_out_channels[i]);
  snprintf (buf, size,
            "%d blocks [%s] x %d resnets, %d groups, latent %d, %d codes x %d, "
            "%dx downscale, sample size %d",
            c->n_blocks, channels, c->layers_per_block, c->norm_num_groups, c->latent_channels,
            c->num_vq_embeddings, c->vq_embed_dim, c->vae_scale_factor, c->sample_size);
}

void
ts_clip_text_config_summary (const ts_clip_text_config *c, char *buf, size_t size)
{
  snprintf (buf, size,
            "%d layers, hidden %d, %d heads, MLP %d (%s), projection %d, vocab %d, "
            "%d positions, eos id %" PRId64,
            c->num_hidden_layers, c->hidden_size, c->num_attention_heads, c->intermediate_size,
            ts_clip_act_name (c->hidden_act), c->projection_dim, c->vocab_size,
            c->max_position_embeddings, c->eos_token_id);
}

void
ts_scheduler_config_summary (const ts_scheduler_config *c, char *buf, size_t size)
{
  snprintf (buf, size, "%s masking schedule, mask token id %" PRId64,
            ts_masking_schedule_name (c->masking_schedule), c->mask_token_id);
}
