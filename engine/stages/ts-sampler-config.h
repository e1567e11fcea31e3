/* SPDX-License-Identifier: MIT
 *
 * ts-sampler-config — the sampler stage's config: Meissonic's Scheduler (src/scheduler.py;
 * the same as diffusers' AmusedScheduler) as read from scheduler/scheduler_config.json.
 * It has no weights, so no tensor table.
 */
#ifndef TS_SAMPLER_CONFIG_H
#define TS_SAMPLER_CONFIG_H

#include "model/ts-config.h"

typedef enum {
  TS_MASKING_COSINE, /* mask_ratio = cos(ratio x pi/2) */
  TS_MASKING_LINEAR, /* mask_ratio = 1 - ratio */
} ts_masking_schedule;

typedef struct {
  char class_name[TS_CONFIG_NAME_MAX];
  int64_t mask_token_id;
  ts_masking_schedule masking_schedule;
} ts_scheduler_config;

/* `path` is read and parsed; `_from_json_text` parses `len` bytes (no NUL needed) and
 * uses `name` in messages. On failure *out is unspecified and err names the file and key
 * (the rules are in model/ts-config.h). `mask_token_id` is required: the class has no
 * default for it. */
ts_status ts_scheduler_config_from_file (const char *path, ts_scheduler_config *out,
                                         ts_error *err);
ts_status ts_scheduler_config_from_json_text (const char *text, size_t len, const char *name,
                                              ts_scheduler_config *out, ts_error *err);

/* "cosine" or "linear"; TS_ERR_UNSUPPORTED names any other value. */
ts_status ts_masking_schedule_from_name (const char *name, ts_masking_schedule *out,
                                         ts_error *err);
/* "cosine" or "linear", for messages and summaries. */
const char *ts_masking_schedule_name (ts_masking_schedule schedule);

/* A one-line summary for `tessera-cli inspect`. */
void ts_scheduler_config_summary (const ts_scheduler_config *config, char *buf, size_t size);

#endif /* TS_SAMPLER_CONFIG_H */
