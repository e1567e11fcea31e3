/* SPDX-License-Identifier: MIT
 *
 * tessera-engine-types.c — engine errors to GError, engine log to GLib log, and small
 * copies of engine structs. The only file besides the worker that calls into the engine's
 * non-pipeline API from both threads; every function here is thread-safe.
 */
#include "tessera-engine-types.h"

#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK (tessera-engine-error-quark, tessera_engine_error)

gboolean
tessera_engine_error_from_ts (const ts_error *e, GError **error)
{
  TesseraEngineError code = TESSERA_ENGINE_ERROR_FAILED;

  g_return_val_if_fail (e != NULL, FALSE);

  switch (e->code)
    {
    case TS_ERR_CANCELLED:
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, e->message[0] ? e->message : "cancelled");
      return FALSE;
    case TS_ERR_INVALID_ARG: code = TESSERA_ENGINE_ERROR_INVALID_ARG; break;
    case TS_ERR_IO: code = TESSERA_ENGINE_ERROR_IO; break;
    case TS_ERR_FORMAT: code = TESSERA_ENGINE_ERROR_FORMAT; break;
    case TS_ERR_NOMEM: code = TESSERA_ENGINE_ERROR_NOMEM; break;
    case TS_ERR_UNSUPPORTED: code = TESSERA_ENGINE_ERROR_UNSUPPORTED; break;
    case TS_ERR_NOT_FOUND: code = TESSERA_ENGINE_ERROR_NOT_FOUND; break;
    case TS_ERR_DEVICE: code = TESSERA_ENGINE_ERROR_DEVICE; break;
    case TS_OK: code = TESSERA_ENGINE_ERROR_FAILED; break;
    }
  if (e->message[0])
    g_set_error_literal (error, TESSERA_ENGINE_ERROR, code, e->message);
  else
    g_set_error (error, TESSERA_ENGINE_ERROR, code, "engine error %s", ts_status_name (e->code));
  return FALSE;
}

/* Engine warnings reach the user as returned errors (shown in the window); logging them
 * as GLib warnings would also make them fatal under G_DEBUG=fatal-warnings, so ERROR and
 * WARN become messages. May run on any engine thread: g_log is thread-safe. */
static void
forward_engine_log (ts_log_level level, const char *message, void *user_data)
{
  GLogLevelFlags flags = G_LOG_LEVEL_DEBUG;

  (void) user_data;
  switch (level)
    {
    case TS_LOG_ERROR:
    case TS_LOG_WARN:
      flags = G_LOG_LEVEL_MESSAGE;
      break;
    case TS_LOG_INFO:
      flags = G_LOG_LEVEL_INFO;
      break;
    case TS_LOG_DEBUG:
    case TS_LOG_TRACE:
      flags = G_LOG_LEVEL_DEBUG;
      break;
    }
  g_log ("Tessera-engine", flags, "%s", message);
}

void
tessera_engine_init_logging (void)
{
  ts_log_set_handler (forward_engine_log, NULL);
}


void
tessera_image_meta_copy (ts_image_meta *dst, const ts_image_meta *src)
{
  *dst = *src;
  dst->prompt = g_strdup (src->prompt);
  dst->negative_prompt = g_strdup (src->negative_prompt);
  dst->model = g_strdup (src->model);
  dst->sampler = g_strdup (src->sampler);
  dst->backend = g_strdup (src->backend);
  dst->precision = g_strdup (src->precision);
  dst->source = g_strdup (src->source);
  dst->version = g_strdup (src->version);
  dst->source_hash = g_strdup (src->source_hash);
  dst->mode = g_strdup (src->mode);
  dst->schedule = g_strdup (src->schedule);
  dst->steer = src->n_steer && src->steer ? g_new0 (ts_image_steer, src->n_steer) : NULL;
  dst->n_steer = dst->steer ? src->n_steer : 0;
  tessera_steer_records_copy (dst->steer, src->steer, dst->n_steer);
  if (src->traj_grid_h && src->traj_grid_w && src->traj_codes && src->traj_reveal_step && src->traj_confidence)
    {
      gsize n = (gsize) src->traj_grid_h * src->traj_grid_w;

      dst->traj_codes = g_memdup2 (src->traj_codes, n * sizeof *src->traj_codes);
      dst->traj_reveal_step = g_memdup2 (src->traj_reveal_step, n * sizeof *src->traj_reveal_step);
      dst->traj_confidence = g_memdup2 (src->traj_confidence, n * sizeof *src->traj_confidence);
    }
  else
    {
      dst->traj_grid_h = dst->traj_grid_w = 0;
      dst->traj_codes = NULL;
      dst->traj_reveal_step = NULL;
      dst->traj_confidence = NULL;
    }
}

void
tessera_steer_records_copy (ts_image_steer *dst, const ts_image_steer *src, guint n)
{
  for (guint i = 0; i < n; i++)
    {
      dst[i] = src[i];
      dst[i].prompt = g_strdup (src[i].prompt);
      dst[i].negative_prompt = g_strdup (src[i].negative_prompt);
    }
}

void
tessera_steer_record_clear (gpointer record)
{
  ts_image_steer *c = record;

  g_clear_pointer (&c->prompt, g_free);
  g_clear_pointer (&c->negative_prompt, g_free);
}

void
tessera_steer_records_clear (ts_image_steer *records, guint n)
{
  for (guint i = 0; i < n; i++)
    tessera_steer_record_clear (&records[i]);
}

void
tessera_image_meta_free_strings (ts_image_meta *meta)
{
  g_clear_pointer (&meta->prompt, g_free);
  g_clear_pointer (&meta->negative_prompt, g_free);
  g_clear_pointer (&meta->model, g_free);
  g_clear_pointer (&meta->sampler, g_free);
  g_clear_pointer (&meta->backend, g_free);
  g_clear_pointer (&meta->precision, g_free);
  g_clear_pointer (&meta->source, g_free);
  g_clear_pointer (&meta->version, g_free);
  g_clear_pointer (&meta->source_hash, g_free);
  g_clear_pointer (&meta->mode, g_free);
  g_clear_pointer (&meta->schedule, g_free);
  if (meta->steer)
    tessera_steer_records_clear (meta->steer, meta->n_steer);
  g_clear_pointer (&meta->steer, g_free);
  meta->n_steer = 0;
  g_clear_pointer (&meta->traj_codes, g_free);
  g_clear_pointer (&meta->traj_reveal_step, g_free);
  g_clear_pointer (&meta->traj_confidence, g_free);
  meta->traj_grid_h = meta->traj_grid_w = 0;
}

TesseraImageMeta *
tessera_image_meta_dup (const ts_image_meta *meta)
{
  TesseraImageMeta *copy;

  g_return_val_if_fail (meta != NULL, NULL);
  copy = g_new0 (TesseraImageMeta, 1);
  tessera_image_meta_copy (copy, meta);
  return copy;
}

void
tessera_image_meta_free (TesseraImageMeta *meta)
{
  if (meta == NULL)
    return;
  tessera_image_meta_free_strings (meta);
  g_free (meta);
}

G_DEFINE_BOXED_TYPE (TesseraImageMeta, tessera_image_meta, tessera_image_meta_dup, tessera_image_meta_free)

char *
tessera_file_sha256 (GFile *file)
{
  g_autofree char *data = NULL;
  g_autofree char *hex = NULL;
  gsize size;

  if (!file || !g_file_load_contents (file, NULL, &data, &size, NULL, NULL))
    return NULL;
  hex = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, size);
  return g_strconcat ("sha256:", hex, NULL);
}
