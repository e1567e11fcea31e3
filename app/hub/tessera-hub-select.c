/* SPDX-License-Identifier: MIT
 *
 * tessera-hub-select — which files of a hub listing a download fetches: model_index.json,
 * each component's config and tokenizer files (the names engine/pipeline/ts-model-files.c
 * and engine/stages/ts-tokenizer.c open) and the safetensors weights of the chosen
 * variant, with their sharded index where there is one. Weight file names follow diffusers
 * and transformers: BASE[.VARIANT].safetensors, shards BASE[.VARIANT]-00001-of-00002
 * .safetensors or BASE-00001-of-00002[.VARIANT].safetensors, indexes
 * BASE[.VARIANT].safetensors.index.json or BASE.safetensors.index.VARIANT.json.
 */
#include "tessera-hub.h"

#include <json-glib/json-glib.h>
#include <string.h>

/* The files of a component folder the engine reads besides its weights. */
static const char *const engine_files[] = {
  "config.json",
  "scheduler_config.json",
  "vocab.json",
  "merges.txt",
  "tokenizer_config.json",
  "special_tokens_map.json",
  NULL,
};

void
tessera_hub_file_free (TesseraHubFile *file)
{
  if (!file)
    return;
  g_free (file->path);
  g_free (file->sha256);
  g_free (file);
}

gboolean
tessera_hub_variant_from_string (const char *s, TesseraHubVariant *out)
{
  g_return_val_if_fail (out != NULL, FALSE);

  if (g_strcmp0 (s, "fp16") == 0)
    *out = TESSERA_HUB_VARIANT_FP16;
  else if (g_strcmp0 (s, "fp32") == 0)
    *out = TESSERA_HUB_VARIANT_FP32;
  else if (g_strcmp0 (s, "all") == 0)
    *out = TESSERA_HUB_VARIANT_ALL;
  else
    return FALSE;
  return TRUE;
}

const char *
tessera_hub_variant_to_string (TesseraHubVariant variant)
{
  switch (variant) {
  case TESSERA_HUB_VARIANT_FP16:
    return "fp16";
  case TESSERA_HUB_VARIANT_FP32:
    return "fp32";
  case TESSERA_HUB_VARIANT_ALL:
    return "all";
  }
  return "fp16";
}

/* Removes every "-DIGITS-of-DIGITS" from s, in place. */
static void
strip_shard_marks (char *s)
{
  char *p = s;

  while ((p = strstr (p, "-of-")) != NULL) {
    char *start = p, *end = p + 4;
    while (start > s && g_ascii_isdigit (start[-1]))
      start--;
    while (g_ascii_isdigit (*end))
      end++;
    if (start > s && start[-1] == '-' && start < p && end > p + 4) {
      memmove (start - 1, end, strlen (end) + 1);
      p = start - 1;
    } else {
      p += 4;
    }
  }
}

/* Whether name is a safetensors weight or index file; *variant is its variant ("fp16"),
 * or NULL for the full-precision file. */
static gboolean
weight_variant (const char *name, char **variant)
{
  g_autofree char *stem = NULL;
  const char *dot;

  *variant = NULL;
  if (g_str_has_suffix (name, ".safetensors")) {
    stem = g_strndup (name, strlen (name) - strlen (".safetensors"));
  } else if (g_str_has_suffix (name, ".safetensors.index.json")) {
    stem = g_strndup (name, strlen (name) - strlen (".safetensors.index.json"));
  } else {
    const char *idx = strstr (name, ".safetensors.index.");
    if (!idx || !g_str_has_suffix (name, ".json"))
      return FALSE;
    /* BASE.safetensors.index.VARIANT.json */
    *variant = g_strndup (idx + strlen (".safetensors.index."),
                          strlen (idx + strlen (".safetensors.index.")) - strlen (".json"));
    return **variant != '\0' && !strchr (*variant, '.');
  }
  strip_shard_marks (stem);
  dot = strrchr (stem, '.');
  if (dot && dot[1] != '\0')
    *variant = g_strdup (dot + 1);
  return TRUE;
}

static gboolean
in_list (const char *const *list, const char *s)
{
  for (; list && *list; list++)
    if (strcmp (*list, s) == 0)
      return TRUE;
  return FALSE;
}

GPtrArray *
tessera_hub_select_files (GPtrArray *listing, const char *const *components,
                          TesseraHubVariant variant)
{
  g_autoptr(GHashTable) has_fp16 = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GHashTable) has_full = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GPtrArray *chosen = g_ptr_array_new ();
  TesseraHubFile *model_index = NULL;

  g_return_val_if_fail (listing != NULL, chosen);

  /* Which components have fp16 and full-precision weights. */
  for (guint i = 0; i < listing->len; i++) {
    const TesseraHubFile *f = g_ptr_array_index (listing, i);
    const char *slash = strchr (f->path, '/');
    g_autofree char *comp = NULL, *v = NULL;

    if (!slash || strchr (slash + 1, '/') || !weight_variant (slash + 1, &v))
      continue;
    comp = g_strndup (f->path, slash - f->path);
    if (v == NULL)
      g_hash_table_add (has_full, g_strdup (comp));
    else if (strcmp (v, "fp16") == 0)
      g_hash_table_add (has_fp16, g_strdup (comp));
  }

  for (guint i = 0; i < listing->len; i++) {
    TesseraHubFile *f = g_ptr_array_index (listing, i);
    const char *slash = strchr (f->path, '/');
    g_autofree char *comp = NULL, *v = NULL;
    gboolean fp16, full, want_fp16, want_full;

    if (strcmp (f->path, "model_index.json") == 0) {
      model_index = f;
      continue;
    }
    if (!slash || strchr (slash + 1, '/'))
      continue;
    comp = g_strndup (f->path, slash - f->path);
    if (!in_list (components, comp))
      continue;
    if (in_list (engine_files, slash + 1)) {
      g_ptr_array_add (chosen, f);
      continue;
    }
    if (!weight_variant (slash + 1, &v))
      continue;
    fp16 = g_hash_table_contains (has_fp16, comp);
    full = g_hash_table_contains (has_full, comp);
    switch (variant) {
    case TESSERA_HUB_VARIANT_FP16:
      want_fp16 = fp16;
      want_full = !fp16;
      break;
    case TESSERA_HUB_VARIANT_FP32:
      want_full = full;
      want_fp16 = !full;
      break;
    case TESSERA_HUB_VARIANT_ALL:
    default:
      want_full = want_fp16 = TRUE;
      break;
    }
    if ((v == NULL && want_full) || (g_strcmp0 (v, "fp16") == 0 && want_fp16))
      g_ptr_array_add (chosen, f);
  }
  if (model_index)
    g_ptr_array_add (chosen, model_index);
  return chosen;
}

char **
tessera_hub_components_from_model_index (const char *text, gsize len, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GStrvBuilder) names = g_strv_builder_new ();
  JsonObject *obj;
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;

  if (!json_parser_load_from_data (parser, text, (gssize) len, error))
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    g_set_error (error, TESSERA_HUB_ERROR, TESSERA_HUB_ERROR_NOT_A_MODEL,
                 "model_index.json is not a JSON object");
    return NULL;
  }
  obj = json_node_get_object (json_parser_get_root (parser));
  json_object_iter_init (&iter, obj);
  while (json_object_iter_next (&iter, &key, &value)) {
    JsonArray *a;
    if (key[0] == '_' || strchr (key, '/') || strcmp (key, "..") == 0 || strcmp (key, ".") == 0
        || !JSON_NODE_HOLDS_ARRAY (value))
      continue;
    a = json_node_get_array (value);
    /* diffusers writes [null, null] for a component the pipeline does without. */
    if (json_array_get_length (a) != 2 || json_node_is_null (json_array_get_element (a, 0)))
      continue;
    g_strv_builder_add (names, key);
  }
  return g_strv_builder_end (names);
}
