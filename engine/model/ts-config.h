/* SPDX-License-Identifier: MIT
 *
 * ts-config — turns the JSON configs of a diffusers model folder into C structs, the
 * step between the files on disk and every stage that builds a network. Each struct
 * mirrors the constructor of the official class (Meissonic `Transformer2DModel` and
 * `Scheduler`, diffusers `VQModel`, transformers `CLIPTextModelWithProjection`): a key
 * that is missing takes the class's default only where the class has one, a key of the
 * wrong type is a TS_ERR_FORMAT naming the key and the file, and values the engine cannot
 * run are a TS_ERR_UNSUPPORTED naming the value.
 *
 * From a parsed config this module also enumerates the tensors the official module's
 * `state_dict()` holds (names and shapes), which is what ts-model-files checks a
 * checkpoint against and what the parameter counts are computed from.
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

/* Meissonic's Transformer2DModel (src/transformer.py, viiika/Meissonic @ 9360def). */
typedef struct {
  char class_name[TS_CONFIG_NAME_MAX]; /* `_class_name`, "" when absent */
  int attention_head_dim;
  int num_attention_heads;
  int inner_dim;          /* num_attention_heads x attention_head_dim */
  int num_layers;         /* dual-stream (MMDiT) blocks */
  int num_single_layers;  /* single-stream blocks */
  int joint_attention_dim;   /* text hidden size entering context_embedder */
  int pooled_projection_dim; /* must equal inner_dim (README "Models") */
  int codebook_size;         /* logits per position */
  int vocab_size;            /* token embedding rows: codebook + mask and extra ids */
  int axes_dims_rope[3];     /* RoPE widths per position axis; sum = attention_head_dim */
  bool downsample;           /* 2x2 down_block before the blocks */
  bool upsample;             /* 2x2 up_block after them */
  int in_channels;           /* unused by the forward pass, kept for display */
  int patch_size;            /* unused by the forward pass, kept for display */
} ts_transformer_config;

#define TS_VQ_MAX_BLOCKS 8

/* diffusers VQModel (v0.31.0), restricted to what Meissonic uses. */
typedef struct {
  char class_name[TS_CONFIG_NAME_MAX];
  int in_channels;
  int out_channels;
  int latent_channels;
  int n_blocks;
  int block_out_channels[TS_VQ_MAX_BLOCKS];
  int layers_per_block;    /* encoder resnets per block; the decoder has one more */
  int norm_num_groups;
  int num_vq_embeddings;   /* codebook entries */
  int vq_embed_dim;        /* codebook width; `null` means latent_channels */
  int sample_size;
  bool mid_block_add_attention; /* always false here: true is TS_ERR_UNSUPPORTED */
  bool lookup_from_codebook;
  bool force_upcast;
  double scaling_factor;
  int vae_scale_factor;    /* 2^(n_blocks - 1): pixels per latent position */
} ts_vq_config;

typedef enum {
  TS_CLIP_ACT_GELU,       /* "gelu": exact erf GELU (Meissonic's CLIP-ViT-H) */
  TS_CLIP_ACT_QUICK_GELU, /* "quick_gelu": x * sigmoid(1.702 x) (the class default) */
  TS_CLIP_ACT_GELU_NEW,   /* "gelu_new": tanh approximation */
} ts_clip_act;

/* transformers CLIPTextConfig, as used by CLIPTextModelWithProjection. */
typedef struct {
  char class_name[TS_CONFIG_NAME_MAX]; /* `architectures[0]`, "" when absent */
  int vocab_size;
  int hidden_size;
  int intermediate_size;
  int num_hidden_layers;
  int num_attention_heads;
  int max_position_embeddings;
  int projection_dim;
  double layer_norm_eps;
  ts_clip_act hidden_act;
  int64_t eos_token_id; /* 2 in Meissonic's config: legacy argmax pooling (quirk 11) */
  int64_t bos_token_id; /* -1 when the config has null */
  int64_t pad_token_id; /* -1 when the config has null */
} ts_clip_text_config;

typedef enum {
  TS_MASKING_COSINE, /* mask_ratio = cos(ratio x pi/2) */
  TS_MASKING_LINEAR, /* mask_ratio = 1 - ratio */
} ts_masking_schedule;

/* Meissonic's Scheduler (src/scheduler.py; the same as diffusers' AmusedScheduler). */
typedef struct {
  char class_name[TS_CONFIG_NAME_MAX];
  int64_t mask_token_id;
  ts_masking_schedule masking_schedule;
} ts_scheduler_config;

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

/* Each parser: `path` is read and parsed; `_from_json_text` parses `len` bytes (no NUL
 * needed) and uses `name` in messages. On failure *out is unspecified and err names the
 * file and key. */
ts_status ts_transformer_config_from_file (const char *path, ts_transformer_config *out,
                                           ts_error *err);
ts_status ts_transformer_config_from_json_text (const char *text, size_t len,
                                                const char *name,
                                                ts_transformer_config *out, ts_error *err);
ts_status ts_vq_config_from_file (const char *path, ts_vq_config *out, ts_error *err);
ts_status ts_vq_config_from_json_text (const char *text, size_t len, const char *name,
                                       ts_vq_config *out, ts_error *err);
/* Also accepts a full CLIPConfig (the text tower is read from its `text_config`), as
 * transformers' CLIPTextConfig.from_pretrained does. */
ts_status ts_clip_text_config_from_file (const char *path, ts_clip_text_config *out,
                                         ts_error *err);
ts_status ts_clip_text_config_from_json_text (const char *text, size_t len, const char *name,
                                              ts_clip_text_config *out, ts_error *err);
ts_status ts_scheduler_config_from_file (const char *path, ts_scheduler_config *out,
                                         ts_error *err);
ts_status ts_scheduler_config_from_json_text (const char *text, size_t len, const char *name,
                                              ts_scheduler_config *out, ts_error *err);
/* Requires all five components with the classes Meissonic uses (Transformer2DModel,
 * VQModel, CLIPTextModelWithProjection, CLIPTokenizer or CLIPTokenizerFast, Scheduler);
 * another class is TS_ERR_UNSUPPORTED naming the component and class. */
ts_status ts_model_index_from_file (const char *path, ts_model_index *out, ts_error *err);
ts_status ts_model_index_from_json_text (const char *text, size_t len, const char *name,
                                         ts_model_index *out, ts_error *err);

/* "cosine" / "gelu" ... for messages and summaries. */
const char *ts_clip_act_name (ts_clip_act act);
const char *ts_masking_schedule_name (ts_masking_schedule schedule);

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

/* Appends every tensor of the component's state_dict, in module order, to `out` (which
 * is not cleared first). Only fails with TS_ERR_NOMEM. The config must come from one of
 * the parsers above (sizes within the TS_CONFIG_MAX_* bounds). */
ts_status ts_transformer_config_tensors (const ts_transformer_config *config,
                                         ts_tensor_list *out, ts_error *err);
ts_status ts_vq_config_tensors (const ts_vq_config *config, ts_tensor_list *out,
                                ts_error *err);
ts_status ts_clip_text_config_tensors (const ts_clip_text_config *config, ts_tensor_list *out,
                                       ts_error *err);

/* Parameter counts computed from the configs alone (the same enumeration, counted). */
uint64_t ts_transformer_config_n_params (const ts_transformer_config *config);
uint64_t ts_vq_config_n_params (const ts_vq_config *config);
uint64_t ts_clip_text_config_n_params (const ts_clip_text_config *config);

/* One-line summaries for `tessera-cli inspect`. */
void ts_transformer_config_summary (const ts_transformer_config *config, char *buf,
                                    size_t size);
void ts_vq_config_summary (const ts_vq_config *config, char *buf, size_t size);
void ts_clip_text_config_summary (const ts_clip_text_config *config, char *buf, size_t size);
void ts_scheduler_config_summary (const ts_scheduler_config *config, char *buf, size_t size);

#endif /* TS_CONFIG_H */
