/* SPDX-License-Identifier: MIT
 *
 * ts-sampler-config — the scheduler's scheduler_config.json → ts_scheduler_config. See
 * ts-sampler-config.h.
 *
 * The defaults mirror Meissonic `Scheduler.__init__` (src/scheduler.py, viiika/Meissonic @
 * 9360def), whose `mask_token_id` has no default.
 */
#include "stages/ts-sampler-config.h"

#include "model/ts-json.h"

#include <inttypes.h>
#include <string.h>

/* ---- Scheduler -------------------------------------------------------------------- */

ts_status
ts_scheduler_config_from_json_text (const char *text, size_t len, const char *name,
                                    ts_scheduler_config *out, ts_error *err)
{
  ts_scheduler_config cfg = { .masking_schedule = TS_MASKING_COSINE };
  cJSON *root = NULL;
  const char *class_name = "", *schedule = "cosine";
  ts_status st;
  ts_json_ctx c;

  TS_TRY (ts_json_parse_object (text, len, name, &root, err));
  c = (ts_json_ctx) { root, name, "Scheduler", err };

  TS_TRY (ts_json_string (&c, "_class_name", TS_JSON_OPTIONAL, &class_name));
  ts_json_copy_name (cfg.class_name, class_name);
  TS_TRY (ts_json_int64 (&c, "mask_token_id", TS_JSON_REQUIRED, &cfg.mask_token_id, NULL));
  TS_TRY (ts_json_check_range (&c, "mask_token_id", cfg.mask_token_id, 0, TS_CONFIG_MAX_DIM));
  TS_TRY (ts_json_string (&c, "masking_schedule", TS_JSON_OPTIONAL, &schedule));
  if (ts_masking_schedule_from_name (schedule, &cfg.masking_schedule, NULL) != TS_OK) {
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

TS_JSON_DEFINE_FROM_FILE (ts_scheduler_config_from_file, ts_scheduler_config_from_json_text,
                          ts_scheduler_config)

ts_status
ts_masking_schedule_from_name (const char *name, ts_masking_schedule *out, ts_error *err)
{
  if (name && strcmp (name, "cosine") == 0) {
    *out = TS_MASKING_COSINE;
    return TS_OK;
  }
  if (name && strcmp (name, "linear") == 0) {
    *out = TS_MASKING_LINEAR;
    return TS_OK;
  }
  return ts_error_set (err, TS_ERR_UNSUPPORTED,
                       "sampler: unknown masking_schedule '%s' (expected cosine or linear)",
                       name ? name : "(null)");
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

void
ts_scheduler_config_summary (const ts_scheduler_config *c, char *buf, size_t size)
{
  snprintf (buf, size, "%s masking schedule, mask token id %" PRId64,
            ts_masking_schedule_name (c->masking_schedule), c->mask_token_id);
}
