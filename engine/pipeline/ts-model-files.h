/* SPDX-License-Identifier: MIT
 *
 * ts-model-files — opens a diffusers model folder (the layout of MeissonFlow/Meissonic):
 * model_index.json (model/ts-config), each component's config (parsed by the stage that
 * owns it: stages/ts-*-config) and each network's checkpoint (model/ts-safetensors), and
 * checks every tensor the official modules have against the checkpoint before any compute
 * stage sees it. This is the loading step between the files and the text encoder /
 * transformer / VQ decoder stages, which look their weights up here by component and
 * official name and widen them to f32/f16 themselves. It sits in pipeline/ because a
 * folder is the whole pipeline's: it needs every stage's config and checks them against
 * each other, while model/ only knows the file formats.
 *
 * Checking collects every problem of a checkpoint (missing tensors, wrong shapes,
 * non-float dtypes) into one readable error; tensors the model does not use are only
 * logged as warnings.
 */
#ifndef TS_MODEL_FILES_H
#define TS_MODEL_FILES_H

#include "tessera.h"
#include "model/ts-config.h"
#include "model/ts-safetensors.h"
#include "stages/ts-sampler-config.h"
#include "stages/ts-text-encoder-config.h"
#include "stages/ts-transformer-config.h"
#include "stages/ts-vq-config.h"

typedef struct ts_model_files ts_model_files;

/* Opens `dir`. flags: TS_LOAD_PREFER_FP16 picks `NAME.fp16.safetensors` where present;
 * TS_LOAD_CONFIGS_ONLY stops after the configs (no checkpoint is opened, no weight or
 * tokenizer file is needed). Without TS_LOAD_PREFER_FP16 a network whose folder only has
 * the fp16 variant uses it. Errors as ts_model_info_load() in tessera.h. */
ts_model_files *ts_model_files_open (const char *dir, ts_load_flags flags, ts_error *err);
/* ts_model_check_size and ts_model_info_check_size on the configs they share. */
ts_status ts_model_size_check (const ts_transformer_config *t, const ts_vq_config *vq,
                               uint32_t width, uint32_t height, ts_error *err);
/* NULL-safe; unmaps the checkpoints. */
void ts_model_files_free (ts_model_files *files);

/* ts_model_info_estimate_memory from the configs (width and height given, not 0), and the
 * same from the three configs and the model's parameter count. */
uint64_t ts_model_files_estimate_memory (const ts_model_files *files, uint32_t width,
                                         uint32_t height, ts_dtype compute_weights_dtype);
uint64_t ts_estimate_memory (const ts_transformer_config *t, const ts_vq_config *vq,
                             const ts_clip_text_config *clip, double n_params, uint32_t width,
                             uint32_t height, ts_dtype compute_weights_dtype);
/* The parameters of the three components, by their configs. */
double ts_model_files_n_params (const ts_model_files *files);
/* TS_ERR_NOMEM naming the size, the estimate `need` and ts_memory_limit when need exceeds
 * it (the message of ts_model_info_check_memory). */
ts_status ts_memory_check (uint64_t need, uint32_t width, uint32_t height, ts_error *err);

const ts_model_index *ts_model_files_index (const ts_model_files *files);
const ts_transformer_config *ts_model_files_transformer_config (const ts_model_files *files);
const ts_vq_config *ts_model_files_vq_config (const ts_model_files *files);
const ts_clip_text_config *ts_model_files_clip_text_config (const ts_model_files *files);
const ts_scheduler_config *ts_model_files_scheduler_config (const ts_model_files *files);

/* The tokenizer's vocab.json and merges.txt paths (borrowed; the files exist unless the
 * folder was opened with TS_LOAD_CONFIGS_ONLY). */
const char *ts_model_files_tokenizer_vocab (const ts_model_files *files);
const char *ts_model_files_tokenizer_merges (const ts_model_files *files);

/* The tensors the component's official module has (transformer, vqvae, text_encoder);
 * NULL for the tokenizer and scheduler. */
const ts_tensor_list *ts_model_files_expected (const ts_model_files *files,
                                               ts_component component);
/* The tokenizer, loaded from the tokenizer folder and checked against the text encoder's
 * vocab_size when the folder opened without TS_LOAD_CONFIGS_ONLY; the caller owns it
 * (ts_tokenizer_free) and later calls return NULL. */
ts_tokenizer *ts_model_files_steal_tokenizer (ts_model_files *files);

/* The opened, checked checkpoint; NULL for the tokenizer and scheduler and with
 * TS_LOAD_CONFIGS_ONLY. Borrowed until ts_model_files_free(). */
const ts_st_set *ts_model_files_checkpoint (const ts_model_files *files,
                                            ts_component component);

/* A checkpoint tensor by component and official name ("embed.embeddings.weight"), or
 * NULL. Every expected tensor is present with its expected shape and a float dtype once
 * the folder opened without TS_LOAD_CONFIGS_ONLY. Borrowed until ts_model_files_free(). */
const ts_st_tensor *ts_model_files_find (const ts_model_files *files, ts_component component,
                                         const char *name);
/* The same, failing with TS_ERR_NOT_FOUND ("transformer: no tensor 'x' in FILE") or
 * TS_ERR_INVALID_ARG when no checkpoint is open for the component. */
ts_status ts_model_files_get (const ts_model_files *files, ts_component component,
                              const char *name, const ts_st_tensor **out, ts_error *err);

/* Checks `set` against `expected`: every expected tensor present, with the expected shape
 * and dtype F32/F16/BF16. All problems go into one message (at most 20 listed, then
 * "... and N more"), prefixed with `component` and the checkpoint's file:
 * TS_ERR_NOT_FOUND when only tensors are missing, TS_ERR_FORMAT otherwise. Tensors not in
 * `expected` are logged with TS_LOG_W (at most 10 named). */
ts_status ts_model_files_check_tensors (const char *component, const ts_tensor_list *expected,
                                        const ts_st_set *set, ts_error *err);

#endif /* TS_MODEL_FILES_H */
