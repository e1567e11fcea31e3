/* SPDX-License-Identifier: MIT
 *
 * fuzz-config — libFuzzer harness for the config parsers (model/ts-config and the
 * stages' ts-*-config): the input is parsed as each kind of config the model folder holds
 * (transformer, VQModel, CLIP text, scheduler, model_index.json). Whatever parses must
 * satisfy the invariants later stages rely on, and its tensor table must enumerate (the
 * list and the counting paths agreeing), so a config that slips past validation with
 * sizes that overflow shows up here. The sharded checkpoint index is not fuzzed here:
 * ts-safetensors has no parse-from-memory entry for it.
 */
#include "model/ts-config.h"
#include "stages/ts-sampler-config.h"
#include "stages/ts-text-encoder-config.h"
#include "stages/ts-transformer-config.h"
#include "stages/ts-vq-config.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check (bool ok)
{
  if (!ok)
    abort ();
}

static void
check_tensors (ts_status st, const ts_tensor_list *list, uint64_t counted)
{
  check (st == TS_OK);
  check (ts_tensor_list_n_params (list) == counted);
  for (size_t i = 0; i < list->n; i++) {
    check (list->items[i].n_dims >= 1 && list->items[i].n_dims <= TS_TENSOR_MAX_DIMS);
    for (int d = 0; d < list->items[i].n_dims; d++)
      check (list->items[i].shape[d] >= 1);
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *text = (const char *) data;
  ts_transformer_config t;
  ts_vq_config v;
  ts_clip_text_config c;
  ts_scheduler_config s;
  ts_model_index mi;
  ts_tensor_list list;
  ts_error err;
  char summary[512];

  ts_log_set_level (TS_LOG_ERROR);
  ts_tensor_list_init (&list);

  if (ts_transformer_config_from_json_text (text, size, "fuzz", &t, &err) == TS_OK) {
    check (t.inner_dim == t.num_attention_heads * t.attention_head_dim);
    check (t.axes_dims_rope[0] + t.axes_dims_rope[1] + t.axes_dims_rope[2] ==
           t.attention_head_dim);
    check (t.pooled_projection_dim == t.inner_dim && t.vocab_size > t.codebook_size);
    check_tensors (ts_transformer_config_tensors (&t, &list, &err), &list,
                   ts_transformer_config_n_params (&t));
    ts_transformer_config_summary (&t, summary, sizeof summary);
    ts_tensor_list_clear (&list);
  } else {
    check (err.code < 0 && err.message[0] != '\0');
  }

  if (ts_vq_config_from_json_text (text, size, "fuzz", &v, &err) == TS_OK) {
    check (v.n_blocks >= 1 && v.n_blocks <= TS_VQ_MAX_BLOCKS);
    check (v.vae_scale_factor == 1 << (v.n_blocks - 1));
    check (!v.mid_block_add_attention && v.vq_embed_dim >= 1);
    check_tensors (ts_vq_config_tensors (&v, &list, &err), &list, ts_vq_config_n_params (&v));
    ts_vq_config_summary (&v, summary, sizeof summary);
    ts_tensor_list_clear (&list);
  } else {
    check (err.code < 0 && err.message[0] != '\0');
  }

  if (ts_clip_text_config_from_json_text (text, size, "fuzz", &c, &err) == TS_OK) {
    check (c.hidden_size % c.num_attention_heads == 0 && c.layer_norm_eps > 0.0);
    check_tensors (ts_clip_text_config_tensors (&c, &list, &err), &list,
                   ts_clip_text_config_n_params (&c));
    ts_clip_text_config_summary (&c, summary, sizeof summary);
    ts_tensor_list_clear (&list);
  } else {
    check (err.code < 0 && err.message[0] != '\0');
  }

  if (ts_scheduler_config_from_json_text (text, size, "fuzz", &s, &err) == TS_OK) {
    check (s.mask_token_id >= 0);
    ts_scheduler_config_summary (&s, summary, sizeof summary);
  } else {
    check (err.code < 0 && err.message[0] != '\0');
  }

  if (ts_model_index_from_json_text (text, size, "fuzz", &mi, &err) == TS_OK) {
    for (int i = 0; i < TS_COMPONENT_COUNT; i++)
      check (mi.components[i].class_name[0] != '\0');
  } else {
    check (err.code < 0 && err.message[0] != '\0');
  }
  return 0;
}
